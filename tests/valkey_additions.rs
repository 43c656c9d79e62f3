//! Options Redis 7.2+ and Valkey added to commands Redis 7.0 has, which Valkey's own test
//! suite uses (a 7.0 client never sends them): ZRANK/ZREVRANK WITHSCORE and XREAD's `+`
//! ID. Replies compared byte for byte with `../shared/peers/valkey/valkey-server`, RESP2
//! and RESP3, keys on both of percore's shards.

mod common;

use common::{Server, scratch_dir, show, split_args, start_valkey};

const SCRIPT: &str = "
    ZADD z 1.5 a inf b -2 c
    ZRANK z a WITHSCORE
    ZRANK z b withscore
    ZREVRANK z c WITHSCORE
    ZREVRANK z a
    ZRANK z missing WITHSCORE
    ZRANK nokey a WITHSCORE
    ZRANK nokey a
    ZRANK z a WITHSCORES
    ZRANK z a WITHSCORE extra
    ZREVRANK z a WITHSCORE extra
    SET str v
    ZRANK str a WITHSCORE
    XADD s 1-1 a b
    XADD s 2-5 c d
    XREAD STREAMS s +
    XREAD COUNT 10 STREAMS s +
    XREAD STREAMS nostream +
    XREAD STREAMS s nostream + +
    XREAD STREAMS s nostream + 0
    XREAD BLOCK 10 STREAMS nostream +
    XDEL s 2-5
    XREAD STREAMS s +
    XGROUP CREATE s g 0
    XREADGROUP GROUP g c STREAMS s +
    XREADGROUP GROUP nogroup c STREAMS s +
    XGROUP CREATE empty g $ MKSTREAM
    XREAD STREAMS empty +
    XREAD STREAMS str +
";

#[test]
fn additions_answer_as_valkey() {
    let dir = scratch_dir("valkey-additions");
    let Some((mut child, first)) = start_valkey(&dir) else {
        return;
    };
    let valkey_port = first.stream().peer_addr().expect("valkey's address").port();
    let percore = Server::percore_threads(2);
    let mut diffs = Vec::new();
    for resp3 in [false, true] {
        let mut v = common::Conn::connect(valkey_port);
        let mut p = percore.conn();
        for c in [&mut v, &mut p] {
            assert_eq!(c.cmd_raw(&["FLUSHALL"]), b"+OK\r\n");
            if resp3 {
                assert!(c.cmd_raw(&["HELLO", "3"]).starts_with(b"%"));
            }
        }
        for line in SCRIPT.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let args = split_args(line);
            let want = v.cmd_raw(&args);
            let got = p.cmd_raw(&args);
            if want != got {
                diffs.push(format!(
                    "[resp3={resp3}] {line}\n    valkey:  {}\n    percore: {}",
                    show(&want),
                    show(&got)
                ));
            }
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        diffs.is_empty(),
        "replies differ from valkey:\n{}",
        diffs.join("\n")
    );
}
