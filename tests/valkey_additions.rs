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
