//! CLIENT TRACKING against a real `redis-server` 7.0: errors and CLIENT TRACKINGINFO /
//! GETREDIR byte for byte; random sequences of reads, writes, CLIENT CACHING,
//! transactions and FLUSHDB whose replies and invalidation pushes are compared byte for
//! byte (RESP3 on the tracking connection, and RESP2 with REDIRECT to a subscriber of
//! `__redis__:invalidate`), percore with 2 and 3 shards and keys on every shard.
//!
//! Synchronisation is by order, never by time: after each step the tracking connection
//! and then the redirect connection send PING, and everything before its PONG is what the
//! step caused (percore delivers an invalidation before it reads any request that came
//! after the write's reply; a redirect travels on when the tracking client's shard reads
//! its next request). Pushes arriving together are compared as a sorted run: shards send
//! their keys' invalidations independently.

mod common;

use common::{Conn, Rng, Server, show};

fn is_push(raw: &[u8]) -> bool {
    raw.first() == Some(&b'>')
        || raw.starts_with(b"*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n")
}

/// Reads frames until `end` (the PING reply), sorting each run of pushes.
fn collect(c: &mut Conn, end: &[u8]) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    let mut run: Vec<Vec<u8>> = Vec::new();
    loop {
        let f = c.read_raw();
        if is_push(&f) {
            run.push(f);
            continue;
        }
        run.sort();
        frames.append(&mut run);
        let done = f == end;
        frames.push(f);
        if done {
            return frames;
        }
    }
}

/// One server's connections: tracking `t`, writer `w`, redirect target `r`.
struct Side {
    t: Conn,
    w: Conn,
    r: Option<Conn>,
}

const T_PONG: &[u8] = b"+PONG\r\n";
const R_PONG: &[u8] = b"*2\r\n$4\r\npong\r\n$0\r\n\r\n";

impl Side {
    fn new(port: u16, resp3: bool, options: &[&str]) -> (Self, Vec<Vec<u8>>) {
        let mut t = Conn::connect(port);
        let w = Conn::connect(port);
        let mut log = Vec::new();
        let mut args: Vec<String> = vec!["CLIENT".into(), "TRACKING".into(), "on".into()];
        args.extend(options.iter().map(ToString::to_string));
        let r = if resp3 {
            // HELLO's reply names the server: not compared.
            t.cmd_raw(&["HELLO", "3"]);
            None
        } else {
            let mut r = Conn::connect(port);
            let id = String::from_utf8(r.cmd_raw(&["CLIENT", "ID"])).unwrap();
            let id = id.trim_start_matches(':').trim_end().to_string();
            log.push(r.cmd_raw(&["SUBSCRIBE", "__redis__:invalidate"]));
            args.push("REDIRECT".into());
            args.push(id);
            Some(r)
        };
        log.push(t.cmd_raw(&args));
        (Side { t, w, r }, log)
    }

    /// Runs one step and returns everything it caused, in order.
    fn step(&mut self, who: usize, cmds: &[Vec<String>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if who == 0 {
            // The tracking connection, one command at a time (an invalidation a command
            // causes for its own client from another shard can follow replies pipelined
            // behind it: see docs/architecture.md).
            for cmd in cmds {
                self.t.send_cmd(cmd);
                loop {
                    let f = self.t.read_raw();
                    let push = is_push(&f);
                    out.push(f);
                    if !push {
                        break;
                    }
                }
            }
            self.t.send_cmd(&["PING"]);
            out.extend(collect(&mut self.t, T_PONG));
        } else {
            for cmd in cmds {
                self.w.send_cmd(cmd);
            }
            for _ in cmds {
                out.push(self.w.read_raw());
            }
            self.t.send_cmd(&["PING"]);
            out.extend(collect(&mut self.t, T_PONG));
        }
        if let Some(r) = self.r.as_mut() {
            r.send_cmd(&["PING"]);
            out.extend(collect(r, R_PONG));
        }
        out
    }
}

/// The keys of the random steps and scripts (on every shard with 2 and 3 shards).
const KEYS: &[&str] = &["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7"];

fn v(parts: &[&str]) -> Vec<String> {
    parts.iter().map(ToString::to_string).collect()
}

/// A random step: who runs it (0 tracking, 1 writer) and its commands.
fn random_step(rng: &mut Rng, optin_out: Option<&str>) -> (usize, Vec<Vec<String>>) {
    let k = |rng: &mut Rng| rng.pick(KEYS).to_string();
    match rng.below(100) {
        0..=29 => {
            let cmd = match rng.below(4) {
                0 => vec!["GET".into(), k(rng)],
                1 => vec!["MGET".into(), k(rng), k(rng)],
                2 => vec!["STRLEN".into(), k(rng)],
                _ => vec!["EXISTS".into(), k(rng)],
            };
            let mut cmds = Vec::new();
            if let Some(arg) = optin_out
                && rng.chance(50)
            {
                cmds.push(v(&["CLIENT", "CACHING", arg]));
            }
            cmds.push(cmd);
            (0, cmds)
        }
        30..=74 => {
            let key = k(rng);
            let cmd = match rng.below(7) {
                0 => vec!["SET".into(), key, "x".into()],
                1 => vec!["DEL".into(), key],
                2 => vec!["INCR".into(), key],
                3 => vec!["APPEND".into(), key, "y".into()],
                4 => vec!["SETNX".into(), key, "z".into()],
                5 => vec!["EXPIRE".into(), key, "1000".into()],
                _ => vec!["GETDEL".into(), key],
            };
            (1, vec![cmd])
        }
        75..=84 => (0, vec![vec!["SET".into(), k(rng), "self".into()]]),
        85..=92 => {
            let read = if rng.chance(30) {
                script(rng)
            } else {
                vec!["GET".into(), k(rng)]
            };
            (
                0,
                vec![
                    v(&["MULTI"]),
                    read,
                    vec!["SET".into(), k(rng), "m".into()],
                    v(&["EXEC"]),
                ],
            )
        }
        93..=96 => (
            0,
            vec![vec!["CLIENT".into(), "CACHING".into(), "yes".into()]],
        ),
        97 => (1, vec![v(&["FLUSHDB"])]),
        _ => (0, vec![script(rng)]),
    }
}

/// A script of the tracking client. Redis 7.0 remembers all its declared keys once it
/// calls a read-only command, and none when it calls none; its keys may live on the
/// client's shard, on another one, or on several (a transaction on another shard).
fn script(rng: &mut Rng) -> Vec<String> {
    let (a, b) = (rng.pick(KEYS).to_string(), rng.pick(KEYS).to_string());
    let (form, body) = match rng.below(6) {
        0 => ("EVAL", "return redis.call('get', KEYS[1])"),
        1 => ("EVAL", "redis.call('set', KEYS[1], 's') return 1"),
        2 => ("EVAL", "return redis.call('ping')"),
        3 => ("EVAL_RO", "return redis.call('exists', KEYS[2])"),
        4 => ("EVAL_RO", "return redis.call('echo', 'x')"),
        // A read of an undeclared key (of any shard): the declared keys are remembered.
        _ => ("EVAL", "return redis.call('strlen', 'k6')"),
    };
    vec![form.into(), body.into(), "2".into(), a, b]
}

#[test]
fn random_invalidations_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let modes: &[(&[&str], Option<&str>)] = &[
        (&[], None),
        (&["NOLOOP"], None),
        (&["OPTIN"], Some("yes")),
        (&["OPTOUT"], Some("no")),
    ];
    for threads in ["2", "3"] {
        let percore = Server::percore(&["--threads", threads]);
        for resp3 in [true, false] {
            for (i, (options, caching)) in modes.iter().enumerate() {
                let seed = 0x7ac0 + i as u64 * 31 + u64::from(resp3) * 7;
                let mut rng = Rng(seed);
                redis.conn().cmd_raw(&["FLUSHALL"]);
                percore.conn().cmd_raw(&["FLUSHALL"]);
                let (mut rs, rlog) = Side::new(redis.port(), resp3, options);
                let (mut ps, plog) = Side::new(percore.port(), resp3, options);
                assert_eq!(rlog, plog, "setup, {threads} shards");
                let mut history = String::new();
                for n in 0..150 {
                    let (who, cmds) = random_step(&mut rng, *caching);
                    let want = rs.step(who, &cmds);
                    let got = ps.step(who, &cmds);
                    let line = format!("{}: {cmds:?}", ["tracking", "writer"][who]);
                    assert!(
                        want == got,
                        "seed {seed:#x} step {n}, {threads} shards, resp3 {resp3}, {options:?}: {line}\n  redis:   {:?}\n  percore: {:?}\nhistory:\n{history}",
                        want.iter().map(|f| show(f)).collect::<Vec<_>>(),
                        got.iter().map(|f| show(f)).collect::<Vec<_>>(),
                    );
                    history.push_str("  ");
                    history.push_str(&line);
                    history.push('\n');
                }
            }
        }
    }
}

#[test]
fn tracking_commands_match_redis() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let cmds: &[&[&str]] = &[
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "GETREDIR"],
        &["CLIENT", "CACHING", "yes"],
        &["CLIENT", "TRACKING"],
        &["CLIENT", "TRACKING", "maybe"],
        &["CLIENT", "TRACKING", "on", "REDIRECT", "abc"],
        &["CLIENT", "TRACKING", "on", "REDIRECT", "999999"],
        &["CLIENT", "TRACKING", "on", "REDIRECT"],
        &["CLIENT", "TRACKING", "on", "PREFIX", "a"],
        &["CLIENT", "TRACKING", "on", "BCAST", "OPTIN"],
        &["CLIENT", "TRACKING", "on", "OPTIN", "OPTOUT"],
        &["CLIENT", "TRACKING", "on", "BOGUS"],
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "FOOBAR", "PREFIX", "FOO",
        ],
        &[
            "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "FOO", "PREFIX", "BAR",
        ],
        &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "FO"],
        &["CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "BARB"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "TRACKING", "on"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKING", "on", "OPTIN", "NOLOOP"],
        &["CLIENT", "TRACKING", "on", "OPTOUT"],
        &["CLIENT", "CACHING", "no"],
        &["CLIENT", "CACHING", "maybe"],
        &["CLIENT", "CACHING", "yes"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "GETREDIR"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKING", "on", "OPTOUT"],
        &["CLIENT", "CACHING", "no"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "GETREDIR"],
        &["CLIENT", "TRACKING", "off"],
        &["CLIENT", "TRACKINGINFO"],
        &["CLIENT", "GETREDIR"],
    ];
    for threads in ["2", "3"] {
        let percore = Server::percore(&["--threads", threads]);
        for proto in ["2", "3"] {
            let (mut r, mut p) = (Conn::connect(redis.port()), Conn::connect(percore.port()));
            r.cmd_raw(&["HELLO", proto]);
            p.cmd_raw(&["HELLO", proto]);
            for cmd in cmds {
                assert_eq!(
                    show(&p.cmd_raw(cmd)),
                    show(&r.cmd_raw(cmd)),
                    "{cmd:?}, {threads} shards, RESP{proto}"
                );
            }
        }
    }
}

/// Reads pipelined behind a write of several shards (which gathers the requests behind
/// it into one transaction) are remembered as any read (percore remembered none, and
/// later writes of those keys sent no invalidation). Compared with Redis through INFO's
/// `tracking_total_keys` right after the replies: the remember is made before the read
/// runs, so the count is exact then, where the invalidations of later writes reach the
/// client by a delivery this test does not need to time.
#[test]
fn pipelined_reads_behind_a_multi_shard_write_are_tracked() {
    let Some(redis) = Server::redis() else {
        return;
    };
    let run = |port: u16| {
        let mut t = Conn::connect(port);
        let mut w = Conn::connect(port);
        t.cmd_raw(&["HELLO", "3"]);
        let mut log = vec![t.cmd_raw(&["CLIENT", "TRACKING", "on"])];
        let mut mset = vec!["MSET"];
        for k in KEYS {
            mset.extend([*k, "v"]);
        }
        let mut pipeline = common::encode_cmd(&mset);
        for k in KEYS {
            pipeline.extend(common::encode_cmd(&["GET", k]));
        }
        t.send(&pipeline);
        for _ in 0..=KEYS.len() {
            log.push(t.read_raw());
        }
        let keys = common::info_field(&mut w, "stats", "tracking_total_keys");
        log.push(keys.into_bytes());
        log
    };
    let want = run(redis.port());
    for threads in ["2", "3"] {
        let percore = Server::percore(&["--threads", threads]);
        let got = run(percore.port());
        assert_eq!(
            got.iter().map(|f| show(f)).collect::<Vec<_>>(),
            want.iter().map(|f| show(f)).collect::<Vec<_>>(),
            "{threads} shards"
        );
    }
}

/// REDIRECT to a connection of another shard, then that connection goes away: the next
/// invalidation is a `tracking-redir-broken` push (RESP3) and TRACKINGINFO says so.
#[test]
fn broken_redirect_is_reported() {
    for threads in ["2", "3"] {
        let percore = Server::percore(&["--threads", threads]);
        let mut t = Conn::connect(percore.port());
        let mut w = Conn::connect(percore.port());
        t.cmd_raw(&["HELLO", "3"]);
        // A target on another shard than `t` (connections are spread over the shards).
        let mut targets: Vec<Conn> = (0..6).map(|_| Conn::connect(percore.port())).collect();
        let mut target = targets.pop().unwrap();
        let id = String::from_utf8(target.cmd_raw(&["CLIENT", "ID"])).unwrap();
        let id = id.trim_start_matches(':').trim_end().to_string();
        assert_eq!(
            t.cmd_raw(&["CLIENT", "TRACKING", "on", "REDIRECT", &id]),
            b"+OK\r\n"
        );
        assert_eq!(t.cmd_raw(&["GET", "key1"]), b"_\r\n");
        assert_eq!(target.cmd_raw(&["QUIT"]), b"+OK\r\n");
        target.expect_closed();
        w.cmd_raw(&["SET", "key1", "2"]);
        let want = format!(">2\r\n$21\r\ntracking-redir-broken\r\n:{id}\r\n");
        // The notice comes back from the target's shard; PING until it arrived.
        let mut seen = false;
        for _ in 0..100 {
            t.send_cmd(&["PING"]);
            let frames = collect(&mut t, T_PONG);
            if frames.iter().any(|f| f == want.as_bytes()) {
                seen = true;
                break;
            }
        }
        assert!(seen, "{threads} shards: no tracking-redir-broken");
        let info = t.cmd_raw(&["CLIENT", "TRACKINGINFO"]);
        assert!(
            show(&info).contains("broken_redirect"),
            "{threads} shards: {}",
            show(&info)
        );
        drop(targets);
    }
}

/// BCAST with prefixes: keys of every shard reach the subscriber; a key under no prefix
/// does not; NOLOOP leaves out the client's own writes.
#[test]
fn bcast_prefixes_cover_every_shard() {
    for threads in ["2", "3"] {
        let percore = Server::percore(&["--threads", threads]);
        let mut t = Conn::connect(percore.port());
        let mut w = Conn::connect(percore.port());
        t.cmd_raw(&["HELLO", "3"]);
        assert_eq!(
            t.cmd_raw(&[
                "CLIENT", "TRACKING", "on", "BCAST", "PREFIX", "a:", "NOLOOP"
            ]),
            b"+OK\r\n"
        );
        let mut want: Vec<String> = Vec::new();
        for i in 0..12 {
            // NOLOOP: no push for these, so the replies are the next frames.
            assert_eq!(t.cmd_raw(&["SET", &format!("a:self{i}"), "1"]), b"+OK\r\n");
        }
        for i in 0..12 {
            let key = format!("a:{i}");
            w.cmd_raw(&["SET", &key, "1"]);
            want.push(key);
            w.cmd_raw(&["SET", &format!("b:{i}"), "1"]);
        }
        // A key of a third shard mails its invalidation to `t`'s shard while its reply
        // goes to `w`'s, so it may arrive after `t`'s next reply (a README known
        // difference): PING until every key came, for at most 5 s.
        want.sort();
        let mut frames = Vec::new();
        let mut got: Vec<String> = Vec::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            t.send_cmd(&["PING"]);
            let more = collect(&mut t, T_PONG);
            for f in &more {
                if let Some(rest) = f.strip_prefix(b">2\r\n$10\r\ninvalidate\r\n".as_slice()) {
                    let text = String::from_utf8_lossy(rest).to_string();
                    got.extend(
                        text.split("\r\n")
                            .filter(|l| !l.starts_with('*') && !l.starts_with('$') && !l.is_empty())
                            .map(str::to_string),
                    );
                }
            }
            frames.extend(more);
            got.sort();
            if got.len() >= want.len() || std::time::Instant::now() >= deadline {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(got, want, "{threads} shards: {frames:?}");
        let info = common::info_field(&mut w, "stats", "tracking_total_prefixes");
        assert_eq!(info, "1");
    }
}
