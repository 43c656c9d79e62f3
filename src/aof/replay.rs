//! Reading AOF command files and replaying them into the shards' keyspaces, before the
//! shards start: every shard's data is here on one thread, so a command whose steps hop
//! between shards (RENAME, SMOVE, ...) simply continues on the next shard's data.

use crate::commands::{self, Ctx, Exec, Partial};
use crate::server::ServerShared;
use crate::shard::ShardData;
use percore_engine::keyspace::Keyspace;
use percore_net::resp::{Protocol, ReplyWriter};
use std::sync::Arc;

/// The most arguments one AOF command may have (Redis's loader takes what `int` holds;
/// this bounds what a corrupt count makes us allocate).
pub const AOF_MAX_ARGS: usize = 1 << 24;
/// The longest argument (Redis's `proto-max-bulk-len` ceiling).
pub const AOF_MAX_ARG_BYTES: usize = 1 << 32;

/// One parse result of a command file.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<'a> {
    /// A command and the offset after it.
    Command(Vec<&'a [u8]>, usize),
    /// The file ends inside a command (a crash while appending).
    Truncated,
    /// Not an AOF command here: why.
    Bad(&'static str),
}

/// Parses the command starting at `at`.
pub fn parse_at(buf: &[u8], at: usize) -> Parsed<'_> {
    fn line(buf: &[u8], at: usize) -> Option<(&[u8], usize)> {
        let rest = buf.get(at..)?;
        let nl = rest.windows(2).position(|w| w == b"\r\n")?;
        Some((&rest[..nl], at + nl + 2))
    }
    fn num(text: &[u8]) -> Option<usize> {
        if text.is_empty() || text.len() > 19 || !text.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(text).ok()?.parse().ok()
    }
    if buf.get(at) != Some(&b'*') {
        return Parsed::Bad("expected '*'");
    }
    let Some((head, mut pos)) = line(buf, at + 1) else {
        return Parsed::Truncated;
    };
    let Some(argc) = num(head).filter(|&n| (1..=AOF_MAX_ARGS).contains(&n)) else {
        return Parsed::Bad("invalid argument count");
    };
    let mut argv = Vec::with_capacity(argc.min(1024));
    for _ in 0..argc {
        match buf.get(pos) {
            None => return Parsed::Truncated,
            Some(b'$') => {}
            Some(_) => return Parsed::Bad("expected '$'"),
        }
        let Some((len, after)) = line(buf, pos + 1) else {
            return Parsed::Truncated;
        };
        let Some(len) = num(len).filter(|&n| n <= AOF_MAX_ARG_BYTES) else {
            return Parsed::Bad("invalid bulk length");
        };
        let end = after + len;
        if end + 2 > buf.len() {
            return Parsed::Truncated;
        }
        if &buf[end..end + 2] != b"\r\n" {
            return Parsed::Bad("bulk not followed by CRLF");
        }
        argv.push(&buf[after..end]);
        pos = end + 2;
    }
    Parsed::Command(argv, pos)
}

/// Every shard's data, for replaying commands.
pub struct Replayer {
    datas: Vec<ShardData>,
    db: usize,
}

impl Replayer {
    pub fn new(shared: &Arc<ServerShared>, keyspaces: Vec<Keyspace>) -> Self {
        let shards = shared.shards;
        let now = percore_net::reactor::unix_ms();
        let datas = keyspaces
            .into_iter()
            .enumerate()
            .map(|(id, ks)| {
                let mut d = ShardData::new(id, shards, Arc::clone(shared));
                d.keyspace = ks;
                d.now_ms = now;
                d
            })
            .collect();
        Self { datas, db: 0 }
    }

    pub fn into_keyspaces(self) -> Vec<Keyspace> {
        self.datas.into_iter().map(|d| d.keyspace).collect()
    }

    /// Runs one command from the file. MULTI/EXEC only frame transactions (the caller
    /// checks they are complete); SELECT moves the database.
    pub fn exec(&mut self, argv: &[&[u8]]) -> Result<(), String> {
        let Some(cmd) = commands::lookup(argv[0]) else {
            return Err(format!(
                "Unknown command '{}' reading the append only file",
                String::from_utf8_lossy(argv[0])
            ));
        };
        if !cmd.arity_ok(argv.len()) {
            return Err(format!(
                "Wrong number of arguments for '{}' reading the append only file",
                cmd.name
            ));
        }
        let databases = self.datas[0].keyspace.databases();
        let mut out = Vec::new();
        match cmd.exec {
            Exec::Client(_) if cmd.name == "select" => {
                let db = commands::parse_i64(argv[1])
                    .and_then(|n| usize::try_from(n).ok())
                    .filter(|&n| n < databases)
                    .ok_or_else(|| "Invalid SELECT reading the append only file".to_owned())?;
                self.db = db;
            }
            Exec::Client(h) if cmd.name == "function" => {
                // FUNCTION LOAD/DELETE/FLUSH/RESTORE: the libraries are shared by every
                // shard; any shard's data runs it.
                let mut client = crate::scripting::script_client();
                let mut ctx = Ctx {
                    shard: &mut self.datas[0],
                    db: self.db,
                    proto: Protocol::Resp2,
                    client: Some(&mut client),
                };
                h(
                    &mut ctx,
                    argv,
                    &mut ReplyWriter::new(&mut out, Protocol::Resp2),
                );
                if out.first() == Some(&b'-') {
                    return Err(format!(
                        "{} reading the append only file",
                        String::from_utf8_lossy(&out).trim_end()
                    ));
                }
            }
            // MULTI/EXEC frame transactions; other connection commands change no data.
            Exec::Multi(_) | Exec::Client(_) => {}
            Exec::Keyed(h) => {
                let owner = crate::atomic::key_positions(cmd, argv)
                    .first()
                    .map_or(0, |&p| self.datas[0].owner(argv[p]));
                let mut ctx = Ctx {
                    shard: &mut self.datas[owner],
                    db: self.db,
                    proto: Protocol::Resp2,
                    client: None,
                };
                h(
                    &mut ctx,
                    argv,
                    &mut ReplyWriter::new(&mut out, Protocol::Resp2),
                );
            }
            Exec::Hop(first) => {
                let mut at = crate::atomic::key_positions(cmd, argv)
                    .first()
                    .map_or(0, |&p| self.datas[0].owner(argv[p]));
                let mut ctx = Ctx {
                    shard: &mut self.datas[at],
                    db: self.db,
                    proto: Protocol::Resp2,
                    client: None,
                };
                let mut result = first(&mut ctx, argv);
                while let Partial::Hop { shard, step, argv } = result {
                    at = shard;
                    let mut args = Vec::new();
                    argv.fill(&mut args);
                    let mut ctx = Ctx {
                        shard: &mut self.datas[at],
                        db: self.db,
                        proto: Protocol::Resp2,
                        client: None,
                    };
                    result = step(&mut ctx, &args);
                }
            }
            Exec::Split { part, .. } => {
                let (jobs, _, _) = crate::atomic::split_jobs(&self.datas[0], cmd, argv);
                for (s, sub) in jobs {
                    let mut args = Vec::new();
                    sub.fill(&mut args);
                    let mut ctx = Ctx {
                        shard: &mut self.datas[s],
                        db: self.db,
                        proto: Protocol::Resp2,
                        client: None,
                    };
                    part(&mut ctx, &args);
                }
            }
            Exec::All { part, .. } => {
                for d in &mut self.datas {
                    let mut ctx = Ctx {
                        shard: d,
                        db: self.db,
                        proto: Protocol::Resp2,
                        client: None,
                    };
                    part(&mut ctx, argv);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_and_truncation_is_told_from_corruption() {
        let file = b"*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nvv\r\n";
        let Parsed::Command(argv, next) = parse_at(file, 0) else {
            panic!("first command")
        };
        assert_eq!(argv, vec![&b"SELECT"[..], b"0"]);
        let Parsed::Command(argv, end) = parse_at(file, next) else {
            panic!("second command")
        };
        assert_eq!(argv, vec![&b"SET"[..], b"k", b"vv"]);
        assert_eq!(end, file.len());
        for cut in next + 1..file.len() {
            assert_eq!(
                parse_at(&file[..cut], next),
                Parsed::Truncated,
                "cut at {cut}"
            );
        }
        assert!(matches!(parse_at(b"+OK\r\n", 0), Parsed::Bad(_)));
        assert!(matches!(parse_at(b"*2\r\n$1\r\nab\r\n", 0), Parsed::Bad(_)));
        assert!(matches!(parse_at(b"*x\r\n", 0), Parsed::Bad(_)));
        assert!(matches!(parse_at(b"*1\r\n:1\r\n", 0), Parsed::Bad(_)));
    }
}
