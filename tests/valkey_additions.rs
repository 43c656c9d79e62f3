//! Options Redis 7.2+ and Valkey added to commands Redis 7.0 has, which Valkey's own test
//! suite uses (a 7.0 client never sends them): ZRANK/ZREVRANK WITHSCORE, XREAD's `+`
//! ID, BITCOUNT with a start alone, HSCAN NOVALUES, ZSCAN NOSCORES; and LPOS RANK with
//! the smallest 64-bit integer, which 7.0 answers by undefined behaviour and Valkey
//! refuses. Replies compared byte for byte with
//! `../shared/peers/valkey/valkey-server`, RESP2 and RESP3, keys on both of percore's
//! shards.

mod common;

use common::{Server, scratch_dir, show, split_args, start_valkey};
use percore_net::resp::Frame;

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
    SET bc foobar
    BITCOUNT bc 0
    BITCOUNT bc 1
    BITCOUNT bc 1000
    BITCOUNT bc -1
    BITCOUNT bc -2
    BITCOUNT bc -1000
    BITCOUNT bc x
    BITCOUNT bc 1 2 3
    BITCOUNT nokey 1
    BITCOUNT s 0
    HSET hs a 1 b 2 c 3
    HSCAN hs 0 NOVALUES
    HSCAN hs 0 novalues COUNT 10 MATCH b*
    HSCAN hs 0 NOVALUES NOVALUES
    HSCAN hs 0 NOSCORES
    HSCAN hs 0 COUNT 0 NOSCORES
    HSCAN nokey 0 NOSCORES
    ZADD zs 1 a 2.5 b
    ZSCAN zs 0 NOSCORES
    ZSCAN zs 0 NOSCORES MATCH a
    ZSCAN zs 0 NOVALUES
    SADD ss a
    SSCAN ss 0 NOVALUES
    SSCAN ss 0 NOSCORES
    SCAN 0 NOVALUES
    SCAN 0 NOSCORES
    CLIENT KILL MAXAGE str
    CLIENT KILL MAXAGE -1
    CLIENT KILL MAXAGE 9999999999999999999
    CLIENT KILL MAXAGE 1000000
    CLIENT KILL ID 99999 MAXAGE 0
    CLIENT KILL MAXAGE 1000000 SKIPME no
    RPUSH lp a b c c
    LPOS lp c RANK -9223372036854775808
    LPOS lp c RANK -9223372036854775807
    LPOS lp c RANK 9223372036854775807
    LPOS lp c RANK -1 COUNT 0
";

/// CLIENT NO-TOUCH, CLIENT CAPA, Valkey's config names. With `lfu-log-factor 0` every
/// access adds one to a key's LFU counter, so OBJECT FREQ shows exactly which commands
/// touched it: none from a NO-TOUCH client but TOUCH (keys k1..k4 spread over both
/// shards, so forwarded commands are covered).
const CONNECTION_SCRIPT: &str = "
    CONFIG SET maxmemory-policy allkeys-lfu
    CONFIG SET lfu-log-factor 0
    SET k1 v
    SET k2 v
    SET k3 v
    SET k4 v
    CLIENT NO-TOUCH ON
    GET k1
    GET k2
    MGET k3 k4
    STRLEN k3
    OBJECT FREQ k1
    OBJECT FREQ k2
    OBJECT FREQ k3
    OBJECT FREQ k4
    TOUCH k1 k2 k3 k4 nokey
    OBJECT FREQ k1
    OBJECT FREQ k2
    OBJECT FREQ k3
    OBJECT FREQ k4
    APPEND k4 x
    OBJECT FREQ k4
    CLIENT NO-TOUCH OFF
    GET k1
    GET k3
    OBJECT FREQ k1
    OBJECT FREQ k3
    CLIENT NO-TOUCH maybe
    CLIENT NO-TOUCH
    CLIENT NO-TOUCH on extra
    CLIENT CAPA redirect
    CLIENT CAPA whatever redirect
    CLIENT CAPA
    CONFIG SET primaryauth secret
    CONFIG GET primaryauth
    CONFIG GET masterauth
    CONFIG SET primaryuser someone
    CONFIG GET primaryuser
    CONFIG GET masteruser
    CONFIG SET primaryauth \"\"
    CONFIG SET primaryuser \"\"
    CONFIG SET availability-zone zone-a
    CONFIG GET availability-zone
    CONFIG SET availability-zone \"\"
    CONFIG SET maxmemory-policy noeviction
";

#[test]
fn additions_answer_as_valkey() {
    compare_with_valkey(SCRIPT);
}

#[test]
fn connection_additions_answer_as_valkey() {
    compare_with_valkey(CONNECTION_SCRIPT);
}

/// An EXPIRE-family time already past removes the key as an expiry, as Valkey 8.1 does
/// (`deleteExpiredKeyFromOverwriteAndPropagate`; the peer predates it and fires `del` as
/// Redis 7.0): an `expired` event and one more `expired_keys`, as Valkey 8.1.1's pubsub
/// and expire units expect. Keys on both shards.
#[test]
fn past_expire_is_an_expiry_as_valkey_8_1() {
    let percore = Server::percore_threads(2);
    let mut c = percore.conn();
    let mut sub = percore.conn();
    // Expired keys before CONFIG RESETSTAT are not counted after it.
    c.cmd_raw(&["SET", "gone", "v", "PX", "1"]);
    std::thread::sleep(std::time::Duration::from_millis(5));
    assert_eq!(c.cmd_raw(&["GET", "gone"]), b"$-1\r\n");
    assert_eq!(common::info_field(&mut c, "stats", "expired_keys"), "1");
    assert_eq!(c.cmd_raw(&["CONFIG", "RESETSTAT"]), b"+OK\r\n");
    c.cmd_raw(&["CONFIG", "SET", "notify-keyspace-events", "KEgx"]);
    sub.cmd_raw(&["PSUBSCRIBE", "__key*__:*"]);
    for (i, args) in [
        &["EXPIRE", "k1", "-1"][..],
        &["PEXPIREAT", "k2", "1"][..],
        &["EXPIREAT", "k3", "1"][..],
        &["PEXPIRE", "k4", "-1000"][..],
    ]
    .into_iter()
    .enumerate()
    {
        let key = args[1];
        c.cmd_raw(&["SET", key, "v"]);
        assert_eq!(c.cmd_raw(args), b":1\r\n", "{args:?}");
        assert_eq!(c.cmd_raw(&["EXISTS", key]), b":0\r\n");
        c.cmd_raw(&["PUBLISH", "__keyspace@0__:~mark", &i.to_string()]);
        let mut frames = Vec::new();
        loop {
            let f = sub.read_raw();
            if f.windows(5).any(|w| w == b"~mark") {
                break;
            }
            frames.push(f);
        }
        let pmessage = |channel: &str, msg: &str| {
            format!(
                "*4\r\n$8\r\npmessage\r\n$10\r\n__key*__:*\r\n${}\r\n{channel}\r\n${}\r\n{msg}\r\n",
                channel.len(),
                msg.len()
            )
            .into_bytes()
        };
        assert_eq!(
            frames,
            [
                pmessage(&format!("__keyspace@0__:{key}"), "expired"),
                pmessage("__keyevent@0__:expired", key),
            ],
            "{args:?}"
        );
    }
    assert_eq!(common::info_field(&mut c, "stats", "expired_keys"), "4");
}

/// CLIENT LIST / CLIENT INFO carry Valkey's fields in Valkey's order, with the `T` flag
/// under NO-TOUCH and the traffic counters as Valkey counts them for a first command.
#[test]
fn client_list_fields_follow_valkey() {
    let dir = scratch_dir("valkey-client-list");
    let Some((mut child, first)) = start_valkey(&dir) else {
        return;
    };
    let valkey_port = first.stream().peer_addr().expect("valkey's address").port();
    let percore = Server::percore_threads(2);
    // Field names in order, with the values that do not depend on the process.
    let shape = |line: &[u8]| -> Vec<String> {
        let text = String::from_utf8_lossy(line).into_owned();
        // The calling connection's line (CLIENT LIST shows the harness's others too).
        let body = text
            .lines()
            .find(|l| l.contains(" cmd=client|"))
            .unwrap_or(&text);
        body.trim_end()
            .split(' ')
            .map(|f| {
                let (k, v) = f.split_once('=').unwrap_or((f, ""));
                match k {
                    "id" | "addr" | "laddr" | "fd" | "age" | "idle" | "qbuf-free" | "argv-mem"
                    | "rbs" | "rbp" | "tot-mem" => k.to_string(),
                    _ => format!("{k}={v}"),
                }
            })
            .collect()
    };
    let mut diffs = Vec::new();
    for script in [
        &[&["CLIENT", "INFO"][..]][..],
        &[&["CLIENT", "LIST"][..]][..],
        &[
            &["CLIENT", "NO-TOUCH", "ON"][..],
            &["CLIENT", "SETINFO", "LIB-NAME", "lib"][..],
            &["CLIENT", "SETINFO", "LIB-VER", "1.0"][..],
            &["CLIENT", "INFO"][..],
        ][..],
    ] {
        let mut v = common::Conn::connect(valkey_port);
        let mut p = percore.conn();
        let (mut want, mut got) = (Vec::new(), Vec::new());
        for args in script {
            want = v.cmd_raw(args);
            got = p.cmd_raw(args);
        }
        if shape(&want) != shape(&got) {
            diffs.push(format!(
                "{script:?}\n    valkey:  {}\n    percore: {}",
                show(&want),
                show(&got)
            ));
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        diffs.is_empty(),
        "lines differ from valkey:\n{}",
        diffs.join("\n")
    );
}

/// INFO clients: Valkey's lines, in its order, with the same counts for a subscriber,
/// a watcher and a blocked XREADGROUP, and the pause fields during a CLIENT PAUSE.
#[test]
fn info_clients_follows_valkey() {
    let dir = scratch_dir("valkey-info-clients");
    let Some((mut child, first)) = start_valkey(&dir) else {
        return;
    };
    let valkey_port = first.stream().peer_addr().expect("valkey's address").port();
    let percore = Server::percore_threads(2);
    let fields = |c: &mut common::Conn| -> Vec<String> {
        let raw = c.cmd_raw(&["INFO", "clients"]);
        String::from_utf8_lossy(&raw)
            .split("\r\n")
            .filter(|l| {
                [
                    "pubsub_clients",
                    "watching_clients",
                    "clients_in_timeout_table",
                    "total_watched_keys",
                    "total_blocking_keys",
                    "total_blocking_keys_on_nokey",
                    "blocked_clients",
                    "tracking_clients",
                ]
                .iter()
                .any(|k| l.starts_with(&format!("{k}:")))
            })
            .map(String::from)
            .collect()
    };
    let mut diffs = Vec::new();
    for port in [Some(valkey_port), None] {
        let connect = || match port {
            Some(p) => common::Conn::connect(p),
            None => percore.conn(),
        };
        let mut c = connect();
        let mut sub = connect();
        let mut watcher = connect();
        let mut blocked = connect();
        let mut timed = connect();
        assert_eq!(c.cmd_raw(&["FLUSHALL"]), b"+OK\r\n");
        sub.cmd_raw(&["SUBSCRIBE", "ch"]);
        watcher.cmd_raw(&["WATCH", "w1", "w2", "w3"]);
        // The client asking INFO watches too (it counts while it runs INFO).
        c.cmd_raw(&["WATCH", "w1", "own"]);
        c.cmd_raw(&["XGROUP", "CREATE", "s", "g", "$", "MKSTREAM"]);
        blocked.send_cmd(&[
            "XREADGROUP",
            "GROUP",
            "g",
            "c",
            "BLOCK",
            "0",
            "STREAMS",
            "s",
            ">",
        ]);
        timed.send_cmd(&["BLPOP", "l1", "l2", "100"]);
        common::wait_until("both clients blocked", || {
            fields(&mut c).contains(&"blocked_clients:2".to_string())
        });
        diffs.push(fields(&mut c));
        for cmd in ["xreadgroup", "blpop"] {
            let id = blocked_id(&mut c, cmd);
            c.cmd_raw(&["CLIENT", "UNBLOCK", &id]);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        diffs[0], diffs[1],
        "valkey (left) and percore (right) differ"
    );
}

/// The id of the client whose last command is `cmd`, from CLIENT LIST.
fn blocked_id(c: &mut common::Conn, cmd: &str) -> String {
    let raw = c.cmd_raw(&["CLIENT", "LIST"]);
    let text = String::from_utf8_lossy(&raw).into_owned();
    let line = text
        .lines()
        .find(|l| l.contains(&format!(" cmd={cmd} ")))
        .expect("the blocked client is listed");
    line.split(' ')
        .find_map(|f| f.strip_prefix("id="))
        .map(|id| id.trim_start_matches(|ch: char| !ch.is_ascii_digit()))
        .expect("an id")
        .to_string()
}

/// INFO clients' pause fields (Valkey 8.1's; the peer predates them, so they are checked
/// against Valkey's test expectations rather than the peer).
#[test]
fn info_clients_reports_the_pause() {
    let percore = Server::percore_threads(2);
    let mut c = percore.conn();
    let field = |c: &mut common::Conn, k: &str| -> String {
        let raw = c.cmd_raw(&["INFO", "clients"]);
        let text = String::from_utf8_lossy(&raw).into_owned();
        text.split("\r\n")
            .find_map(|l| l.strip_prefix(&format!("{k}:")).map(String::from))
            .unwrap_or_else(|| panic!("no {k} in {text}"))
    };
    assert_eq!(field(&mut c, "paused_reason"), "none");
    assert_eq!(field(&mut c, "paused_actions"), "none");
    assert_eq!(field(&mut c, "paused_timeout_milliseconds"), "0");
    assert_eq!(
        c.cmd_raw(&["CLIENT", "PAUSE", "10000", "WRITE"]),
        b"+OK\r\n"
    );
    assert_eq!(field(&mut c, "paused_reason"), "client_pause");
    assert_eq!(field(&mut c, "paused_actions"), "write");
    let left: i64 = field(&mut c, "paused_timeout_milliseconds")
        .parse()
        .unwrap();
    // Each shard computes the end from its own loop clock (the latest end holds), and
    // INFO reads a fresh one: a few ms either way.
    assert!(left > 0 && left <= 10_100, "{left}");
    assert_eq!(c.cmd_raw(&["CLIENT", "UNPAUSE"]), b"+OK\r\n");
    assert_eq!(field(&mut c, "paused_reason"), "none");
    assert_eq!(field(&mut c, "paused_timeout_milliseconds"), "0");
}

/// HELLO reports `availability_zone` while the option is set (Valkey 8.1).
#[test]
fn hello_reports_the_availability_zone() {
    let percore = Server::percore_threads(1);
    let mut c = percore.conn();
    let has_zone = |c: &mut common::Conn| {
        let raw = c.cmd_raw(&["HELLO", "3"]);
        show(&raw).contains("availability_zone")
    };
    assert!(!has_zone(&mut c));
    c.cmd_raw(&["CONFIG", "SET", "availability-zone", "myzone"]);
    let raw = c.cmd_raw(&["HELLO", "2"]);
    assert!(raw.starts_with(b"*16\r\n"), "{}", show(&raw));
    assert!(raw.ends_with(b"$17\r\navailability_zone\r\n$6\r\nmyzone\r\n"));
    c.cmd_raw(&["CONFIG", "SET", "availability-zone", ""]);
    assert!(!has_zone(&mut c));
}

/// Runs `script` line by line on the peer valkey-server and on a two-shard percore, in
/// RESP2 then RESP3, and fails on any reply that differs byte for byte.
fn compare_with_valkey(script: &str) {
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
        for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
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

/// Valkey 8.1's `PFDEBUG SIMD ON|OFF` (the peer predates it): percore has no AVX2 path, so
/// it answers as Valkey 8.1 does on a CPU without one, whatever the key arguments' shard.
#[test]
fn pfdebug_simd_answers_as_valkey_8_1() {
    let percore = Server::percore_threads(2);
    let mut c = percore.conn();
    for arg in ["on", "OFF", "On"] {
        assert_eq!(c.cmd_raw(&["PFDEBUG", "SIMD", arg]), b"+disabled\r\n");
    }
    assert_eq!(
        c.cmd_raw(&["PFDEBUG", "simd", "maybe"]),
        b"-ERR Argument must be ON or OFF\r\n"
    );
    // PFDEBUG's arity is 3 (Redis 7.0, the peer).
    assert_eq!(
        c.cmd_raw(&["PFDEBUG", "SIMD", "on", "x"]),
        b"-ERR wrong number of arguments for 'pfdebug' command\r\n"
    );
    // The other subcommands still look the key up.
    assert_eq!(
        c.cmd_raw(&["PFDEBUG", "ENCODING", "nokey"]),
        b"-ERR The specified key does not exist\r\n"
    );
}

/// Valkey 8.1's `SET ... IFEQ comparison-value` (the peer predates it; the replies are
/// those of Valkey 8.1.1's string unit and `setGenericCommand`), keys on both shards.
#[test]
fn set_ifeq_answers_as_valkey_8_1() {
    let percore = Server::percore_threads(2);
    let mut c = percore.conn();
    for key in ["k1", "k2", "k3", "k4"] {
        c.cmd_raw(&["SET", key, "initial"]);
        assert_eq!(
            c.cmd_raw(&["SET", key, "new", "IFEQ", "initial"]),
            b"+OK\r\n"
        );
        assert_eq!(c.cmd_raw(&["GET", key]), b"$3\r\nnew\r\n");
        assert_eq!(c.cmd_raw(&["SET", key, "no", "ifeq", "wrong"]), b"$-1\r\n");
        assert_eq!(c.cmd_raw(&["GET", key]), b"$3\r\nnew\r\n");
        // An integer-encoded value compares as its text.
        c.cmd_raw(&["SET", key, "12"]);
        assert_eq!(c.cmd_raw(&["SET", key, "13", "IFEQ", "12"]), b"+OK\r\n");
        // With GET: the old value whether or not it was set.
        assert_eq!(
            c.cmd_raw(&["SET", key, "14", "IFEQ", "13", "GET"]),
            b"$2\r\n13\r\n"
        );
        assert_eq!(
            c.cmd_raw(&["SET", key, "15", "GET", "IFEQ", "99"]),
            b"$2\r\n14\r\n"
        );
        assert_eq!(c.cmd_raw(&["GET", key]), b"$2\r\n14\r\n");
        // With an expiry.
        assert_eq!(
            c.cmd_raw(&["SET", key, "16", "IFEQ", "14", "PX", "100000"]),
            b"+OK\r\n"
        );
        assert!(c.cmd_raw(&["PTTL", key]) != b":-1\r\n");
        // No key: nothing set.
        c.cmd_raw(&["DEL", key]);
        assert_eq!(c.cmd_raw(&["SET", key, "v", "IFEQ", "x"]), b"$-1\r\n");
        assert_eq!(
            c.cmd_raw(&["SET", key, "v", "IFEQ", "x", "GET"]),
            b"$-1\r\n"
        );
        assert_eq!(c.cmd_raw(&["EXISTS", key]), b":0\r\n");
        // Another type.
        c.cmd_raw(&["SADD", key, "m"]);
        let wrongtype: &[u8] =
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
        assert_eq!(c.cmd_raw(&["SET", key, "v", "IFEQ", "m"]), wrongtype);
        assert_eq!(c.cmd_raw(&["SET", key, "v", "IFEQ", "m", "GET"]), wrongtype);
        c.cmd_raw(&["DEL", key]);
        // Not with NX, XX or a second IFEQ; IFEQ needs its value.
        for args in [
            &["SET", key, "v", "IFEQ", "x", "XX"][..],
            &["SET", key, "v", "NX", "IFEQ", "x"][..],
            &["SET", key, "v", "IFEQ", "x", "NX"][..],
            &["SET", key, "v", "IFEQ", "x", "IFEQ", "y"][..],
            &["SET", key, "v", "IFEQ"][..],
            &["GETEX", key, "IFEQ", "x"][..],
        ] {
            assert_eq!(c.cmd_raw(args), b"-ERR syntax error\r\n", "{args:?}");
        }
    }
}

/// Valkey 8.1's CLIENT LIST filters (ID with several ids, TYPE, ADDR, LADDR, USER,
/// SKIPME, MAXAGE, in any combination; the peer predates them), with Redis 7.0's forms
/// (`TYPE t`, `ID id...`) and their replies kept. Clients on both shards.
#[test]
fn client_list_filters_as_valkey_8_1() {
    let percore = Server::percore_threads(2);
    let mut me = percore.conn();
    let mut others: Vec<common::Conn> = (0..3).map(|_| percore.conn()).collect();
    let id_of = |c: &mut common::Conn| -> String {
        let raw = c.cmd_raw(&["CLIENT", "ID"]);
        String::from_utf8_lossy(&raw[1..raw.len() - 2]).into_owned()
    };
    let ids: Vec<String> = others.iter_mut().map(id_of).collect();
    let my_id = id_of(&mut me);
    // The ids of the lines CLIENT LIST answers, sorted.
    let list = |c: &mut common::Conn, args: &[&str]| -> Vec<String> {
        let mut full = vec!["CLIENT", "LIST"];
        full.extend_from_slice(args);
        let Frame::Bulk(text) = c.cmd(&full) else {
            panic!("CLIENT LIST {args:?}: {}", show(&c.cmd_raw(&full)));
        };
        let mut found: Vec<String> = String::from_utf8_lossy(&text)
            .lines()
            .map(|l| l["id=".len()..l.find(' ').unwrap()].to_string())
            .collect();
        found.sort();
        found
    };
    let sorted = |v: &[&String]| -> Vec<String> {
        let mut v: Vec<String> = v.iter().map(|s| (*s).clone()).collect();
        v.sort();
        v
    };
    let all = sorted(&[&ids[0], &ids[1], &ids[2], &my_id]);
    assert_eq!(list(&mut me, &[]), all);
    assert_eq!(
        list(&mut me, &["ID", &ids[0], &ids[1], "TYPE", "normal"]),
        sorted(&[&ids[0], &ids[1]])
    );
    assert_eq!(
        list(&mut me, &["TYPE", "normal", "ID", &ids[2], &my_id]),
        sorted(&[&ids[2], &my_id])
    );
    assert_eq!(
        list(&mut me, &["ID", &ids[0], "TYPE", "pubsub"]),
        Vec::<String>::new()
    );
    assert_eq!(
        list(&mut me, &["SKIPME", "yes", "USER", "default"]),
        sorted(&[&ids[0], &ids[1], &ids[2]])
    );
    assert_eq!(list(&mut me, &["SKIPME", "no", "USER", "default"]), all);
    assert_eq!(
        list(&mut me, &["MAXAGE", "1000000", "ID", &ids[0]]),
        Vec::<String>::new()
    );
    assert_eq!(list(&mut me, &["MAXAGE", "1000000"]), Vec::<String>::new());
    // ADDR and LADDR as CLIENT INFO shows them.
    let Frame::Bulk(info) = others[1].cmd(&["CLIENT", "INFO"]) else {
        panic!("CLIENT INFO");
    };
    let info = String::from_utf8_lossy(&info).into_owned();
    let field = |name: &str| -> String {
        let at = info.find(&format!(" {name}=")).unwrap() + name.len() + 2;
        info[at..].split(' ').next().unwrap().to_string()
    };
    assert_eq!(
        list(&mut me, &["ADDR", &field("addr")]),
        vec![ids[1].clone()]
    );
    assert_eq!(list(&mut me, &["LADDR", &field("laddr")]), all);
    assert_eq!(
        list(
            &mut me,
            &["LADDR", &field("laddr"), "SKIPME", "yes", "ID", &ids[0]]
        ),
        vec![ids[0].clone()]
    );
    // Errors: Valkey 8.1's for its form, Redis 7.0's for an ID argument.
    for (args, want) in [
        (&["USER", "nobody"][..], "-ERR No such user 'nobody'\r\n"),
        (&["ID", "10", "wrong"][..], "-ERR Invalid client ID\r\n"),
        (&["ID", "str"][..], "-ERR Invalid client ID\r\n"),
        // Redis 7.0 answers `Invalid client ID` (an `ID` list that is not all integers),
        // Valkey 8.1 `client-id should be greater than 0`: 7.0's text is kept.
        (
            &["ID", "0", "TYPE", "normal"][..],
            "-ERR Invalid client ID\r\n",
        ),
        (
            &["TYPE", "bad", "ID", "1"][..],
            "-ERR Unknown client type 'bad'\r\n",
        ),
        (&["TYPE", "bad"][..], "-ERR Unknown client type 'bad'\r\n"),
        (&["SKIPME", "maybe", "ID", "1"][..], "-ERR syntax error\r\n"),
        // 7.0's `Invalid client ID` too (Valkey 8.1: a syntax error).
        (&["ID", "1", "USER"][..], "-ERR Invalid client ID\r\n"),
        (&["FOO", "1"][..], "-ERR syntax error\r\n"),
        (&["FOO"][..], "-ERR syntax error\r\n"),
        (
            &["MAXAGE", "str"][..],
            "-ERR maxage is not an integer or out of range\r\n",
        ),
        (
            &["MAXAGE", "9999999999999999999"][..],
            "-ERR maxage is not an integer or out of range\r\n",
        ),
        (
            &["MAXAGE", "-1"][..],
            "-ERR maxage should be greater than 0\r\n",
        ),
    ] {
        let mut full = vec!["CLIENT", "LIST"];
        full.extend_from_slice(args);
        assert_eq!(show(&me.cmd_raw(&full)), show(want.as_bytes()), "{args:?}");
    }
    // Redis 7.0's ID form: any integers, ids below 1 match nothing.
    assert_eq!(
        list(&mut me, &["ID", "0", "-1", &ids[2]]),
        vec![ids[2].clone()]
    );
}

/// A RESP3 subscriber receives what it publishes itself from a script, and the
/// notification of its own write, after the command's reply (Valkey's order; Redis 7.0
/// sends them before it). Both were lost: the client is out of its slot while its command
/// runs. Compared byte for byte with the peer.
#[test]
fn messages_to_the_running_client_follow_its_reply_as_valkey() {
    let dir = scratch_dir("valkey-self-publish");
    let Some((mut child, first)) = start_valkey(&dir) else {
        return;
    };
    let valkey_port = first.stream().peer_addr().expect("valkey's address").port();
    let percore = Server::percore_threads(2);
    let script = "redis.call('ping','abc') redis.call('publish','foo','bar') \
                  redis.call('publish','foo','vaz') redis.call('ping','def') return 'bla'";
    let run = |mut c: common::Conn| -> Vec<String> {
        let mut got = Vec::new();
        c.cmd_raw(&["HELLO", "3"]);
        c.cmd_raw(&["CONFIG", "SET", "notify-keyspace-events", "KA"]);
        got.push(show(&c.cmd_raw(&["SUBSCRIBE", "foo"])));
        got.push(show(&c.cmd_raw(&["SUBSCRIBE", "__keyspace@0__:k"])));
        got.push(show(&c.cmd_raw(&["EVAL", script, "0"])));
        got.push(show(&c.read_raw()));
        got.push(show(&c.read_raw()));
        for k in ["k", "other"] {
            got.push(show(&c.cmd_raw(&["SET", k, "v"])));
        }
        // Only `k` is watched: its `set`, then the marker.
        got.push(show(&c.read_raw()));
        got.push(show(&c.cmd_raw(&["PING", "end"])));
        c.cmd_raw(&["CONFIG", "SET", "notify-keyspace-events", ""]);
        got
    };
    let want = run(common::Conn::connect(valkey_port));
    let got = run(percore.conn());
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(got, want);
}

/// Valkey 8.1's `rdb-version-check` (the peer predates it): `relaxed` lets RESTORE take a
/// payload of a newer RDB version, never one of the foreign range 12-79. The payloads are
/// Valkey 8.1.1's dump unit's: the string "bar" sealed as RDB version 222.
#[test]
fn rdb_version_check_as_valkey_8_1() {
    let percore = Server::percore_threads(2);
    let mut c = percore.conn();
    let future: &[u8] = b"\x00\x03\x62\x61\x72\xde\x00\x0fYUza\xd3\xec\xe0";
    let bad: &[u8] = b"-ERR DUMP payload version or checksum are wrong\r\n";
    let sealed = u64::from_le_bytes(future[7..].try_into().expect("8 bytes"));
    assert_eq!(crc64_jones(&future[..7]), sealed);
    assert_eq!(
        c.cmd_raw(&["CONFIG", "GET", "rdb-version-check"]),
        b"*2\r\n$17\r\nrdb-version-check\r\n$6\r\nstrict\r\n"
    );
    for key in ["k1", "k2", "k3"] {
        let restore = |c: &mut common::Conn, payload: &[u8]| {
            c.cmd_raw(&[
                b"RESTORE".as_slice(),
                key.as_bytes(),
                b"0",
                payload,
                b"REPLACE",
            ])
        };
        assert_eq!(restore(&mut c, future), bad);
        assert_eq!(
            c.cmd_raw(&["CONFIG", "SET", "rdb-version-check", "relaxed"]),
            b"+OK\r\n"
        );
        assert_eq!(restore(&mut c, future), b"+OK\r\n");
        assert_eq!(c.cmd_raw(&["GET", key]), b"$3\r\nbar\r\n");
        // A foreign version (here 12, the checksum made right) stays refused.
        let mut foreign = future[..5].to_vec();
        foreign.extend_from_slice(&12u16.to_le_bytes());
        let crc = crc64_jones(&foreign);
        foreign.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(restore(&mut c, &foreign), bad);
        assert_eq!(
            c.cmd_raw(&["CONFIG", "SET", "rdb-version-check", "strict"]),
            b"+OK\r\n"
        );
        assert_eq!(restore(&mut c, future), bad);
    }
    assert_eq!(
        c.cmd_raw(&["CONFIG", "SET", "rdb-version-check", "loose"]),
        b"-ERR CONFIG SET failed (possibly related to argument 'rdb-version-check') - argument(s) must be one of the following: strict, relaxed\r\n"
    );
}

/// Redis's CRC-64 (Jones, reflected), as DUMP payloads carry it.
fn crc64_jones(data: &[u8]) -> u64 {
    let mut crc = 0u64;
    for &b in data {
        crc ^= u64::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0x95ac_9329_ac4b_c9b5
            } else {
                crc >> 1
            };
        }
    }
    crc
}

/// CLIENT KILL MAXAGE (Redis 7.4, Valkey 8): only clients at least that many seconds old.
#[test]
fn client_kill_maxage_spares_young_clients() {
    let percore = Server::percore_threads(2);
    let mut me = percore.conn();
    let mut old = percore.conn();
    let id = |c: &mut common::Conn| -> String {
        let raw = c.cmd_raw(&["CLIENT", "ID"]);
        String::from_utf8_lossy(&raw[1..raw.len() - 2]).into_owned()
    };
    let old_id = id(&mut old);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let mut young = percore.conn();
    let young_id = id(&mut young);
    // Nobody is eleven days old; `old` has lived a second.
    assert_eq!(
        me.cmd_raw(&["CLIENT", "KILL", "ID", &young_id, "MAXAGE", "1000000"]),
        b":0\r\n"
    );
    assert_eq!(
        me.cmd_raw(&["CLIENT", "KILL", "ID", &old_id, "MAXAGE", "1"]),
        b":1\r\n"
    );
    old.expect_closed();
    assert_eq!(young.cmd_raw(&["PING"]), b"+PONG\r\n");
}

/// CLIENT LIST's filters and CLIENT KILL's several IDs and MAXAGE (Valkey 8.1's
/// `parseClientFiltersOrReply`; the peer predates them, so they are checked against
/// Valkey 8.1's code and tests): clients on both shards, Redis 7.0's `ID` replies kept.
#[test]
fn client_list_filters_and_kill_options_follow_valkey_8_1() {
    let percore = Server::percore_threads(2);
    let mut me = percore.conn();
    let mut others: Vec<common::Conn> = (0..3).map(|_| percore.conn()).collect();
    let field = |line: &str, k: &str| -> String {
        line.split(' ')
            .find_map(|f| f.strip_prefix(&format!("{k}=")))
            .unwrap_or_default()
            .to_string()
    };
    let text = |raw: Vec<u8>| -> String {
        let t = String::from_utf8_lossy(&raw).into_owned();
        assert!(t.starts_with('$'), "{t}");
        t
    };
    let lines = |raw: Vec<u8>| -> Vec<String> {
        text(raw)
            .lines()
            .skip(1)
            .filter(|l| l.starts_with("id="))
            .map(String::from)
            .collect()
    };
    let info = text(me.cmd_raw(&["CLIENT", "INFO"]));
    let info = info.lines().nth(1).unwrap().to_string();
    let (my_id, my_addr, my_laddr) = (
        field(&info, "id"),
        field(&info, "addr"),
        field(&info, "laddr"),
    );
    let ids: Vec<String> = others
        .iter_mut()
        .map(|c| {
            String::from_utf8_lossy(&c.cmd_raw(&["CLIENT", "ID"]))
                .trim_start_matches(':')
                .trim_end()
                .to_string()
        })
        .collect();

    let got = lines(me.cmd_raw(&["CLIENT", "LIST", "ADDR", &my_addr]));
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(field(&got[0], "id"), my_id);
    assert_eq!(
        lines(me.cmd_raw(&["CLIENT", "LIST", "LADDR", &my_laddr])).len(),
        4
    );
    assert_eq!(
        lines(me.cmd_raw(&["CLIENT", "LIST", "USER", "default"])).len(),
        4
    );
    assert_eq!(
        lines(me.cmd_raw(&["CLIENT", "LIST", "SKIPME", "no"])).len(),
        4
    );
    let skipped = lines(me.cmd_raw(&["CLIENT", "LIST", "SKIPME", "yes"]));
    assert_eq!(skipped.len(), 3);
    assert!(skipped.iter().all(|l| field(l, "id") != my_id));
    assert!(lines(me.cmd_raw(&["CLIENT", "LIST", "MAXAGE", "1000000"])).is_empty());
    let two = lines(me.cmd_raw(&["CLIENT", "LIST", "ID", &ids[0], &ids[1], "TYPE", "normal"]));
    let mut two: Vec<String> = two.iter().map(|l| field(l, "id")).collect();
    two.sort();
    let mut want = ids[..2].to_vec();
    want.sort();
    assert_eq!(two, want);
    // Redis 7.0's ID forms stay: any integer, else `Invalid client ID`.
    assert_eq!(lines(me.cmd_raw(&["CLIENT", "LIST", "ID", "0"])).len(), 0);
    for (args, error) in [
        (&["ID", "str"][..], "-ERR Invalid client ID\r\n"),
        (&["USER", "nobody"][..], "-ERR No such user 'nobody'\r\n"),
        (&["SKIPME", "maybe"][..], "-ERR syntax error\r\n"),
        (&["TYPE", "x"][..], "-ERR Unknown client type 'x'\r\n"),
        (
            &["MAXAGE", "str"][..],
            "-ERR maxage is not an integer or out of range\r\n",
        ),
        (
            &["MAXAGE", "-1"][..],
            "-ERR maxage should be greater than 0\r\n",
        ),
    ] {
        let mut argv = vec!["CLIENT", "LIST"];
        argv.extend_from_slice(args);
        assert_eq!(show(&me.cmd_raw(&argv)), show(error.as_bytes()), "{args:?}");
        argv[1] = "KILL";
        if args[0] != "ID" {
            assert_eq!(
                show(&me.cmd_raw(&argv)),
                show(error.as_bytes()),
                "KILL {args:?}"
            );
        }
    }
    assert_eq!(
        me.cmd_raw(&["CLIENT", "KILL", "MAXAGE", "1000000"]),
        b":0\r\n"
    );
    assert_eq!(
        me.cmd_raw(&["CLIENT", "KILL", "ID", &ids[0], &ids[1]]),
        b":2\r\n"
    );
    others[0].expect_closed();
    others[1].expect_closed();
    assert_eq!(others[2].cmd_raw(&["PING"]), b"+PONG\r\n");
}

/// CLIENT LIST `tot-cmds` of a client blocked in BLPOP: unchanged while it waits, one more
/// once it is served or times out (Valkey counts a blocked command when it ends), compared
/// with the Valkey peer.
#[test]
fn tot_cmds_counts_a_blocked_command_when_it_ends() {
    let dir = scratch_dir("valkey-tot-cmds");
    let Some((mut child, first)) = start_valkey(&dir) else {
        return;
    };
    let valkey_port = first.stream().peer_addr().expect("valkey's address").port();
    let percore = Server::percore_threads(2);
    let mut runs = Vec::new();
    for port in [Some(valkey_port), None] {
        let connect = || match port {
            Some(p) => common::Conn::connect(p),
            None => percore.conn(),
        };
        let mut c = connect();
        let mut waiter = connect();
        let id = String::from_utf8_lossy(&waiter.cmd_raw(&["CLIENT", "ID"]))
            .trim_start_matches(':')
            .trim_end()
            .to_string();
        let tot = |c: &mut common::Conn| -> String {
            let raw = c.cmd_raw(&["CLIENT", "LIST", "ID", &id]);
            let text = String::from_utf8_lossy(&raw).into_owned();
            text.split(' ')
                .find_map(|f| f.strip_prefix("tot-cmds="))
                .map(|v| v.trim_end().to_string())
                .unwrap_or_default()
        };
        let blocked = |c: &mut common::Conn| {
            common::wait_until("the client blocks", || {
                let raw = c.cmd_raw(&["CLIENT", "LIST", "ID", &id]);
                String::from_utf8_lossy(&raw).contains("cmd=blpop")
            });
        };
        let mut seen = vec![tot(&mut c)];
        waiter.send_cmd(&["BLPOP", "tl{x}", "0"]);
        blocked(&mut c);
        seen.push(tot(&mut c));
        c.cmd_raw(&["LPUSH", "tl{x}", "a"]);
        assert_eq!(
            waiter.read_raw(),
            b"*2\r\n$5\r\ntl{x}\r\n$1\r\na\r\n".to_vec()
        );
        seen.push(tot(&mut c));
        waiter.send_cmd(&["BLPOP", "other{y}", "0.05"]);
        assert_eq!(waiter.read_raw(), b"*-1\r\n".to_vec());
        seen.push(tot(&mut c));
        waiter.send_cmd(&["BLPOP", "other{y}", "0"]);
        blocked(&mut c);
        c.cmd_raw(&["CLIENT", "UNBLOCK", &id, "ERROR"]);
        waiter.read_raw();
        seen.push(tot(&mut c));
        runs.push(seen);
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(runs[0], runs[1], "valkey (left) and percore (right) differ");
}
