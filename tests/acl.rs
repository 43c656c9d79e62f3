//! ACL against a real `redis-server` 7.0: the same scripts on both servers (percore with
//! two shards, so a user's connections and the ACL change may be on different shards),
//! replies compared byte for byte in RESP2 and RESP3; then the ACL file and the `user`
//! lines of the configuration, on percore alone.
//!
//! A script line runs on connection A unless it starts with `B:` or `C:`. Prefixes after
//! the connection: `~` compares ACL LOG with its timing and client-info values masked,
//! `#` compares only the length of a bulk reply (ACL GENPASS), `%` compares an array's
//! elements as a set (ACL CAT lists commands in Redis's hash order), `^` compares only
//! the reply's type (HELLO's client id differs), `!closed` asserts the server closed that
//! connection. Without `redis-server` the differential tests print
//! a notice and pass; `PERCORE_REQUIRE_REDIS=1` fails them.

mod common;

use common::{Conn, Server, show, split_args};
use percore_net::resp::Frame;
use std::collections::HashMap;

const CASES: &[(&str, &str)] = &[
    (
        "setuser-getuser-list",
        "
        ACL SETUSER u1 on >p1 +@hash +get ~k* &ch resetchannels
        ACL GETUSER u1
        ACL SETUSER u4 +select|0 (+get ~x*) (%R~y* +set)
        ACL GETUSER u4
        ACL LIST
        ACL SETUSER z reset
        ACL GETUSER z
        ACL SETUSER z %RW~a %R~b %W~b ~c %R~c &x &x &y +get|x +get|y
        ACL GETUSER z
        ACL SETUSER x ~a allkeys
        ACL GETUSER x
        ACL SETUSER y +@all -@dangerous
        ACL SETUSER y3 +@all -@write
        ACL SETUSER y4 -@all +@read +@write
        ACL SETUSER s +@all clearselectors (~a +get)
        ACL GETUSER s
        ACL SETUSER s clearselectors nopass >a >b <a
        ACL GETUSER s
        ACL SETUSER s #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 !5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 skip-sanitize-payload
        ACL GETUSER s
        ACL GETUSER default
        ACL GETUSER nobody
        ACL USERS
        ACL WHOAMI
        ACL DELUSER y y3 nope
        ACL USERS
        ACL LIST
        ",
    ),
    (
        "setuser-errors",
        "
        ACL SETUSER x +foo
        ACL SETUSER x +@foo
        ACL SETUSER x #abc
        ACL SETUSER x <nope
        ACL SETUSER x !nope
        ACL SETUSER x (+get
        ACL SETUSER x on (+get ~a) (~b
        ACL SETUSER x bogus
        ACL SETUSER x +get|a|b
        ACL SETUSER x +client|foo
        ACL SETUSER x +client|kill|x
        ACL SETUSER x -select|0
        ACL SETUSER x +debug|
        ACL SETUSER x %X~a
        ACL SETUSER x %~a
        ACL SETUSER x allkeys ~a
        ACL SETUSER x allchannels &a
        ACL SETUSER x (+nope)
        ACL USERS
        ACL SETUSER \"a b\"
        ACL DELUSER default
        ACL DELUSER default nope
        ACL FOO
        ACL
        ACL GETUSER
        ACL SETUSER
        ",
    ),
    (
        "dryrun",
        "
        ACL SETUSER u1 on nopass +@hash +get ~k* resetchannels &news.*
        ACL SETUSER w on nopass %W~* +@all
        ACL SETUSER r on nopass %R~src* %W~dst* +@all
        ACL SETUSER p on nopass +@all allkeys &foo*
        ACL SETUSER s on nopass +get ~a* (+set ~b*) (+publish &c*)
        ACL DRYRUN nobody get x
        ACL DRYRUN u1 set a b
        ACL DRYRUN u1 get z
        ACL DRYRUN u1 get k1
        ACL DRYRUN u1 hset k1 f v
        ACL DRYRUN u1 foo
        ACL DRYRUN u1 get
        ACL DRYRUN default client
        ACL DRYRUN default client xx
        ACL DRYRUN default client kill 1.2.3.4:5
        ACL DRYRUN w set a b
        ACL DRYRUN w set a b get
        ACL DRYRUN w exists a
        ACL DRYRUN w get a
        ACL DRYRUN w bitfield a get u8 0
        ACL DRYRUN w bitfield a set u8 0 1
        ACL DRYRUN r lmove src1 dst1 left right
        ACL DRYRUN r lmove dst1 src1 left right
        ACL DRYRUN r copy src1 dst1
        ACL DRYRUN r rename src1 dst1
        ACL DRYRUN r sunionstore dst src1 src2
        ACL DRYRUN r sunionstore src dst1 src2
        ACL DRYRUN r mset dst1 a dst2 b
        ACL DRYRUN r zunionstore dst1 2 src1 src2
        ACL DRYRUN r zunionstore dst1 2 src1 dst2
        ACL DRYRUN r eval x 2 src1 dst1
        ACL DRYRUN p publish foox b
        ACL DRYRUN p publish bar b
        ACL DRYRUN p psubscribe foo*
        ACL DRYRUN p psubscribe fo*
        ACL DRYRUN p subscribe foo1 bar
        ACL DRYRUN p ssubscribe foo1
        ACL DRYRUN p unsubscribe bar
        ACL DRYRUN s get a1
        ACL DRYRUN s set b1 v
        ACL DRYRUN s set a1 v
        ACL DRYRUN s publish c1 m
        ACL DRYRUN s publish d1 m
        ACL DRYRUN s auth x
        ",
    ),
    (
        "noperm-and-log",
        "
        ACL LOG RESET
        ACL SETUSER alice on >secret ~k* &ch* +@read +@write +@connection -flushall +subscribe
        B: AUTH alice wrong
        B: AUTH nobody secret
        B: AUTH alice secret
        B: ACL WHOAMI
        B: SET k1 v
        B: GET k1
        B: GET other
        B: MSET k2 a other b
        B: FLUSHALL
        B: FLUSHALL
        B: CONFIG GET maxmemory
        B: PUBLISH news m
        B: PUBLISH ch1 m
        B: CLIENT GETNAME
        B: HELLO 2 AUTH alice wrong
        ~ACL LOG
        ~ACL LOG 2
        ACL LOG 0
        ACL LOG -1
        ACL LOG x
        ACL LOG 1 2
        ACL LOG RESET
        ACL LOG
        ",
    ),
    (
        "auth",
        "
        AUTH x
        AUTH default x
        AUTH default
        ACL SETUSER bob on >pw +@all ~*
        B: AUTH bob pw
        B: ACL WHOAMI
        B: HELLO 2 AUTH bob nope
        C:^HELLO 2 AUTH bob pw
        C: ACL WHOAMI
        ACL SETUSER bob off
        B: PING
        C: AUTH bob pw
        C: ACL WHOAMI
        ACL SETUSER bob on
        ACL SETUSER default >dpass
        C: AUTH dpass
        C: ACL WHOAMI
        ACL SETUSER default nopass
        ",
    ),
    (
        "multi-and-scripts",
        "
        ACL SETUSER carol on nopass ~k* +@all -flushall -debug
        B: AUTH carol x
        B: MULTI
        B: SET k1 1
        B: SET other 1
        B: EXEC
        B: MULTI
        B: FLUSHALL
        B: EXEC
        B: EVAL \"return redis.call('get', KEYS[1])\" 1 k1
        B: EVAL \"return redis.call('get', 'other')\" 0
        B: EVAL \"return redis.pcall('flushall')\" 0
        B: EVAL \"return redis.call('set', KEYS[1], 'x')\" 1 k2
        ~ACL LOG 3
        ",
    ),
    (
        "channels-revoked-kill-subscribers",
        "
        ACL SETUSER dave on nopass +@all ~* allchannels
        B: AUTH dave x
        B: SUBSCRIBE chan
        C: AUTH dave x
        C: PING
        ACL SETUSER dave resetchannels &chan
        C: PING
        ACL SETUSER dave resetchannels &other
        B:!closed
        C: PING
        ACL DELUSER dave
        C:!closed
        ",
    ),
    (
        "categories",
        "
        ACL CAT
        %ACL CAT string
        %ACL CAT dangerous
        %ACL CAT connection
        ACL CAT nope
        ACL CAT a b
        #ACL GENPASS
        #ACL GENPASS 1
        #ACL GENPASS 5
        #ACL GENPASS 4096
        ACL GENPASS 0
        ACL GENPASS 4097
        ACL GENPASS abc
        ACL GENPASS 1 2
        ACL HELP
        ACL LOAD
        ACL SAVE
        ",
    ),
];

/// Masks what differs between runs in ACL LOG entries: the age and the client line.
fn mask(f: Frame) -> Frame {
    fn entry(items: Vec<Frame>) -> Vec<Frame> {
        let mut out = Vec::with_capacity(items.len());
        let mut blank = false;
        for i in items {
            if blank {
                out.push(Frame::Null);
                blank = false;
                continue;
            }
            blank = matches!(&i, Frame::Bulk(b) if b == b"age-seconds" || b == b"client-info");
            out.push(i);
        }
        out
    }
    match f {
        Frame::Array(list) => Frame::Array(
            list.into_iter()
                .map(|e| match e {
                    Frame::Array(items) => Frame::Array(entry(items)),
                    Frame::Map(pairs) => Frame::Map(
                        pairs
                            .into_iter()
                            .map(|(k, v)| {
                                let masked = matches!(&k, Frame::Bulk(b) if b == b"age-seconds" || b == b"client-info");
                                (k, if masked { Frame::Null } else { v })
                            })
                            .collect(),
                    ),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    }
}

fn sorted(f: Frame) -> Frame {
    match f {
        Frame::Array(mut list) | Frame::Set(mut list) => {
            list.sort_by_key(|x| format!("{x:?}"));
            Frame::Array(list)
        }
        other => other,
    }
}

/// Whether percore has the command or subcommand `name` (`get`, `client|kill`).
fn percore_knows(c: &mut Conn, name: &[u8]) -> bool {
    let name = String::from_utf8_lossy(name).into_owned();
    let top = name.split('|').next().unwrap_or_default();
    match c.cmd(&["COMMAND", "INFO", top]) {
        Frame::Array(items) => match items.first() {
            Some(Frame::Array(info)) => {
                !name.contains('|')
                    || matches!(info.get(9), Some(Frame::Array(subs)) if subs.iter().any(
                        |s| matches!(s, Frame::Array(f) if f.first() == Some(&common::bulk(&name)))
                    ))
            }
            _ => false,
        },
        _ => false,
    }
}

struct Side {
    port: u16,
    conns: HashMap<char, Conn>,
    resp3: bool,
}

impl Side {
    fn conn(&mut self, label: char) -> &mut Conn {
        let (port, resp3) = (self.port, self.resp3);
        self.conns.entry(label).or_insert_with(|| {
            let mut c = Conn::connect(port);
            if resp3 {
                c.cmd(&["HELLO", "3"]);
            }
            c
        })
    }
}

fn run_case(name: &str, script: &str, redis_port: u16, percore_port: u16, resp3: bool) {
    let mut redis = Side {
        port: redis_port,
        conns: HashMap::new(),
        resp3,
    };
    let mut percore = Side {
        port: percore_port,
        conns: HashMap::new(),
        resp3,
    };
    for raw in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let (label, line) = match raw.split_once(':') {
            Some((l, rest)) if l.len() == 1 && l.chars().all(|c| c.is_ascii_uppercase()) => {
                (l.chars().next().unwrap(), rest.trim())
            }
            _ => ('A', raw),
        };
        let what = format!("{name} (resp3={resp3}) {label}: {line}");
        if line == "!closed" {
            redis.conn(label).expect_closed();
            percore.conn(label).expect_closed();
            continue;
        }
        let (mode, cmdline) = match line.chars().next() {
            Some(m @ ('~' | '#' | '%' | '^')) => (m, &line[1..]),
            _ => (' ', line),
        };
        let args = split_args(cmdline);
        let want = redis.conn(label).cmd_raw(&args);
        let got = percore.conn(label).cmd_raw(&args);
        let decode = |b: &[u8]| percore_net::resp::decode_frame(b).unwrap().unwrap().0;
        match mode {
            '~' => assert_eq!(mask(decode(&want)), mask(decode(&got)), "{what}"),
            '%' => {
                // Redis may list commands percore does not have: compare what both know.
                let known: Vec<Frame> = match sorted(decode(&want)) {
                    Frame::Array(list) => list
                        .into_iter()
                        .filter(|f| match f {
                            Frame::Bulk(n) => percore_knows(percore.conn(label), n),
                            _ => true,
                        })
                        .collect(),
                    other => panic!("{what}: {other:?}"),
                };
                // Valkey's additions (CLIENT NO-TOUCH, CLIENT CAPA), which 7.0 lacks.
                let got = match sorted(decode(&got)) {
                    Frame::Array(list) => Frame::Array(
                        list.into_iter()
                            .filter(|f| {
                                !matches!(f, Frame::Bulk(n)
                                    if n.as_slice() == b"client|no-touch"
                                        || n.as_slice() == b"client|capa")
                            })
                            .collect(),
                    ),
                    other => other,
                };
                assert_eq!(Frame::Array(known), got, "{what}");
            }
            '^' => assert_eq!(want.first(), got.first(), "{what}"),
            '#' => match (decode(&want), decode(&got)) {
                (Frame::Bulk(a), Frame::Bulk(b)) => assert_eq!(a.len(), b.len(), "{what}"),
                (a, b) => assert_eq!(a, b, "{what}"),
            },
            _ => assert!(
                want == got,
                "{what}\n    redis:   {:?}\n    percore: {:?}",
                show(&want),
                show(&got)
            ),
        }
    }
}

#[test]
fn acl_replies_match_redis() {
    for resp3 in [false, true] {
        for (name, script) in CASES {
            // Fresh servers per case: the users and the log start empty.
            let Some(redis) = Server::redis() else {
                return;
            };
            let percore = Server::percore_threads(2);
            run_case(name, script, redis.port(), percore.port(), resp3);
        }
    }
}

/// Every command's and subcommand's ACL categories (COMMAND's seventh field, what the
/// `+@category` rules use) are redis-server's.
#[test]
fn categories_match_redis_for_every_command() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let percore = Server::percore(&[]);
    let table = |c: &mut Conn| {
        let mut m = HashMap::new();
        let Frame::Array(all) = c.cmd(&["COMMAND"]) else {
            panic!("COMMAND")
        };
        for cmd in all {
            let Frame::Array(info) = cmd else { continue };
            m.insert(format!("{:?}", info[0]), format!("{:?}", info[6]));
            if let Frame::Array(subs) = &info[9] {
                for sub in subs {
                    if let Frame::Array(s) = sub {
                        m.insert(format!("{:?}", s[0]), format!("{:?}", s[6]));
                    }
                }
            }
        }
        m
    };
    let want = table(&mut redis.conn());
    let got = table(&mut percore.conn());
    let mut compared = 0;
    for (name, cats) in &got {
        if let Some(w) = want.get(name) {
            assert_eq!(w, cats, "categories of {name}");
            compared += 1;
        }
    }
    assert!(compared > 200, "only {compared} commands compared");
}

/// `requirepass` is the default user's password, as Redis 7.0 maps it, at start and
/// through CONFIG SET.
#[test]
fn requirepass_is_the_default_users_password() {
    let Some(redis) = Server::redis_with(&["--requirepass", "pw"]) else {
        return;
    };
    let percore = Server::percore(&["--requirepass", "pw"]);
    let script = "
        PING
        AUTH default nope
        AUTH pw
        ACL GETUSER default
        CONFIG SET requirepass other
        ACL GETUSER default
        B: PING
        B: AUTH pw
        B: AUTH other
        CONFIG SET requirepass \"\"
        ACL GETUSER default
        C: PING
        C: AUTH x
    ";
    run_case("requirepass", script, redis.port(), percore.port(), false);
}

/// The ACL file: loaded at start, ACL SAVE writes what ACL LIST shows, ACL LOAD reads it
/// back (and refuses a broken file whole, with Redis's errors), and DELUSER / LOAD close
/// the connections of users that went away.
#[test]
fn aclfile_load_and_save_round_trip() {
    let dir = common::scratch_dir("aclfile");
    let path = dir.join("users.acl");
    std::fs::write(
        &path,
        "user default on nopass ~* &* +@all\n\
         # a comment\n\
         user eve on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 ~e:* resetchannels -@all +get +set\n\
         user frank off resetchannels -@all (~f* resetchannels -@all +get)\n",
    )
    .unwrap();
    let file = path.to_str().unwrap();
    let server = Server::percore(&["--aclfile", file]);
    let mut a = server.conn();
    let list = a.cmd(&["ACL", "LIST"]);
    let Frame::Array(lines) = list else {
        panic!("ACL LIST: {list:?}")
    };
    let lines: Vec<String> = lines
        .iter()
        .map(|l| match l {
            Frame::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        lines,
        [
            "user default on nopass ~* &* +@all",
            "user eve on #5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8 ~e:* resetchannels -@all +get +set",
            "user frank off resetchannels -@all (~f* resetchannels -@all +get)",
        ]
    );
    let mut b = server.conn();
    assert_eq!(b.cmd(&["AUTH", "eve", "password"]), common::ok());
    assert_eq!(b.cmd(&["SET", "e:1", "v"]), common::ok());
    assert_eq!(
        b.cmd(&["DEL", "e:1"]),
        common::err("NOPERM this user has no permissions to run the 'del' command")
    );
    assert_eq!(
        a.cmd(&["ACL", "SETUSER", "gina", "on", ">g", "+@all", "~*"]),
        common::ok()
    );
    assert_eq!(a.cmd(&["ACL", "SAVE"]), common::ok());
    let saved = std::fs::read_to_string(&path).unwrap();
    let listed: Vec<Frame> = saved.lines().map(common::bulk).collect::<Vec<_>>();
    assert_eq!(listed.len(), 4, "{saved}");
    assert_eq!(a.cmd(&["ACL", "LIST"]), Frame::Array(listed), "{saved}");
    assert!(saved.contains("\nuser gina on #"), "{saved}");
    // A broken file is refused whole: nothing changes.
    std::fs::write(
        &path,
        "user default on nopass ~* &* +@all\nuser eve on +nope\nnot a user line\n",
    )
    .unwrap();
    let e = a.cmd(&["ACL", "LOAD"]);
    assert_eq!(
        e,
        common::err(&format!(
            "ERR {file}:2: Unknown command or category name in ACL. {file}:3 should start with user keyword. "
        ))
    );
    assert_eq!(b.cmd(&["GET", "e:1"]), common::bulk("v"));
    // ACL LOAD of the saved users: eve's connection belonged to a user that is replaced.
    std::fs::write(&path, &saved).unwrap();
    assert_eq!(a.cmd(&["ACL", "LOAD"]), common::ok());
    b.expect_closed();
    let mut c = server.conn();
    assert_eq!(c.cmd(&["AUTH", "gina", "g"]), common::ok());
    assert_eq!(a.cmd(&["ACL", "DELUSER", "gina"]), Frame::Int(1));
    c.expect_closed();
    assert_eq!(a.cmd(&["ACL", "WHOAMI"]), common::bulk("default"));
}

/// `user` lines in the configuration file define users; with `aclfile` too the server
/// refuses to start, with Redis's message.
#[test]
fn user_lines_in_the_config_file() {
    let dir = common::scratch_dir("acluserlines");
    // As command-line options they are configuration lines too.
    let s = Server::percore(&[
        "--user", "hank", "on", ">h", "~h*", "+@all", "--user", "default", "on", ">d", "~*", "&*",
        "+@all",
    ]);
    let mut a = s.conn();
    assert_eq!(
        a.cmd(&["GET", "x"]),
        common::err("NOAUTH Authentication required.")
    );
    assert_eq!(a.cmd(&["AUTH", "hank", "h"]), common::ok());
    assert_eq!(
        a.cmd(&["GET", "x"]),
        common::err(
            "NOPERM this user has no permissions to access one of the keys used as arguments"
        )
    );
    assert_eq!(a.cmd(&["AUTH", "d"]), common::ok());
    assert_eq!(a.cmd(&["GET", "x"]), Frame::Null);
    drop(a);
    drop(s);

    let both = dir.join("both.conf");
    std::fs::write(
        &both,
        format!(
            "user hank on >h ~h* +@all\naclfile {}\n",
            dir.join("x.acl").display()
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_percore-server"))
        .arg(&both)
        .arg("--port")
        .arg(common::free_port().to_string())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("Configuring Redis with users defined in redis.conf and at the same setting an ACL file path is invalid."),
        "{text}"
    );
}
