//! Keyed commands on their way to the shard that owns their key, batched.
//!
//! A shard that parses a single-shard command whose key lives elsewhere does not send it
//! alone: it adds it to the [`Forward`] batch at the end of its outbox for the owner, which
//! collects every such command of the loop iteration (all connections) in request order.
//! The owner runs them in that order, writes the replies back to back into the same batch
//! and mails it back; the sender then settles each reply in its client's queue.
//!
//! Why one message for many commands: the cost of a forwarded command on a two-core
//! machine was mostly cache lines moving between cores (the message, its argument buffer,
//! its reply buffer, each touched by both cores) and allocator traffic between threads. A
//! batch packs the arguments and the replies densely in buffers that are reused (see
//! [`ForwardPool`]), so the cores exchange about as many lines as the bytes need.

use crate::commands::Command;
use crate::prefetch::WARM_KEYS;
use percore_net::reactor::ConnId;
use percore_net::resp::Protocol;

/// The most commands one batch carries; a further command starts a new batch (same
/// destination, queued behind it, so the order holds).
pub const FORWARD_BATCH_MAX_COMMANDS: usize = 1024;
/// The argument bytes after which a batch takes no more commands.
pub const FORWARD_BATCH_MAX_ARG_BYTES: usize = 256 * 1024;
/// Batches kept for reuse per shard, and the largest buffer a kept batch may hold.
pub const FORWARD_POOL_MAX_BATCHES: usize = 64;
pub const FORWARD_POOL_MAX_BUFFER_BYTES: usize = 1024 * 1024;

/// One forwarded command: whose it is and how to run it.
#[derive(Clone, Copy)]
pub struct Fwd {
    pub conn: ConnId,
    /// The client's id (CLIENT TRACKING's NOLOOP knows who wrote).
    pub client: u64,
    pub seq: u64,
    pub cmd: &'static Command,
    pub db: u16,
    pub proto: Protocol,
    /// The client is in CLIENT NO-TOUCH mode: the owner leaves the access times.
    pub no_touch: bool,
}

/// A command in a batch, with where its arguments are in [`Forward::args`].
struct Queued {
    fwd: Fwd,
    argc: u32,
    args_at: usize,
}

/// The next argument in a packed argument buffer (`u32` length, then the bytes).
fn next_arg<'a>(rest: &mut &'a [u8]) -> &'a [u8] {
    let (len, tail) = rest.split_at(4);
    let len = u32::from_ne_bytes([len[0], len[1], len[2], len[3]]) as usize;
    let (arg, tail) = tail.split_at(len);
    *rest = tail;
    arg
}

/// The next commands of a batch being run, for warming their key lookups.
pub struct Upcoming<'a> {
    cmds: &'a [Queued],
    args: &'a [u8],
}

impl<'a> Upcoming<'a> {
    /// Database and first key of each command that has a key.
    pub fn keys(&self) -> impl Iterator<Item = (usize, &'a [u8])> + use<'a> {
        let args = self.args;
        self.cmds.iter().filter_map(move |q| {
            let at = q.fwd.cmd.first_key as usize;
            if at == 0 || at >= q.argc as usize {
                return None;
            }
            let mut rest = &args[q.args_at..];
            for _ in 0..at {
                next_arg(&mut rest);
            }
            Some((usize::from(q.fwd.db), next_arg(&mut rest)))
        })
    }
}

/// A batch of forwarded commands and, on its way back, their replies.
#[derive(Default)]
pub struct Forward {
    cmds: Vec<Queued>,
    /// Per argument: its length (`u32`, native endian), then its bytes.
    args: Vec<u8>,
    /// Written by the owner: the replies back to back; `ends[i]` is where `cmds[i]`'s ends.
    replies: Vec<u8>,
    ends: Vec<usize>,
    /// Where the owner stopped: the next command to run and where its arguments start
    /// (a command whose key a transaction holds parks the batch until it is released).
    next: usize,
    next_arg_at: usize,
    /// Written by the owner: the commands slow enough for the slow log, with how long
    /// they took; the sender logs them with its client's address and name. Empty unless
    /// `slowlog-log-slower-than` is low.
    slow: Vec<(ConnId, u64, std::time::Duration)>,
    /// The sender's monotonic clock (ns) when the batch was started: its hop latency,
    /// measured when the answers are back, is the round trip (`ShardStats::record_hop`).
    pub sent_ns: u64,
}

impl Forward {
    /// How many commands the batch carries.
    #[must_use]
    pub fn commands(&self) -> usize {
        self.cmds.len()
    }

    /// Whether another command may join this batch.
    #[must_use]
    pub fn has_room(&self) -> bool {
        self.cmds.len() < FORWARD_BATCH_MAX_COMMANDS
            && self.args.len() < FORWARD_BATCH_MAX_ARG_BYTES
    }

    /// Adds a command with its arguments (`argv[0]` is the command name).
    pub fn push(&mut self, fwd: Fwd, argv: &[&[u8]]) {
        let queued = Queued {
            fwd,
            argc: u32::try_from(argv.len()).expect("argument counts are under the multibulk limit"),
            args_at: self.args.len(),
        };
        let bytes: usize = argv.iter().map(|a| a.len() + 4).sum();
        self.args.reserve(bytes);
        for a in argv {
            let len = u32::try_from(a.len()).expect("arguments are under proto-max-bulk-len");
            self.args.extend_from_slice(&len.to_ne_bytes());
            self.args.extend_from_slice(a);
        }
        self.cmds.push(queued);
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// The owner's side: calls `run(fwd, argv, replies, upcoming)` for each command in
    /// order; `run` appends the command's reply to `replies`. Every [`WARM_KEYS`]
    /// commands, starting with the first, `upcoming` holds the commands from this one on
    /// (at most `WARM_KEYS`), so that `run` can warm their lookups. When `run` answers
    /// false the command did not run: the batch stops there (false) and a later call
    /// resumes with that command.
    pub fn run_each<'a>(
        &'a mut self,
        argv: &mut Vec<&'a [u8]>,
        mut run: impl FnMut(&Fwd, &[&'a [u8]], &mut Vec<u8>, Option<Upcoming<'a>>) -> bool,
    ) -> bool {
        let Self {
            cmds,
            args,
            replies,
            ends,
            next,
            next_arg_at,
            slow,
            sent_ns: _,
        } = self;
        if *next == 0 {
            replies.clear();
            ends.clear();
            slow.clear();
            ends.reserve(cmds.len());
        }
        let cmds: &'a [Queued] = cmds;
        let mut rest: &'a [u8] = &args[*next_arg_at..];
        for (i, q) in cmds.iter().enumerate().skip(*next) {
            let upcoming = (i.is_multiple_of(WARM_KEYS) || i == *next).then(|| Upcoming {
                cmds: &cmds[i..(i + WARM_KEYS).min(cmds.len())],
                args,
            });
            let start = rest;
            argv.clear();
            for _ in 0..q.argc {
                argv.push(next_arg(&mut rest));
            }
            if !run(&q.fwd, argv, replies, upcoming) {
                *next = i;
                *next_arg_at = args.len() - start.len();
                return false;
            }
            ends.push(replies.len());
        }
        *next = cmds.len();
        *next_arg_at = args.len();
        true
    }

    /// The sender's side, once the batch is back: each command with its reply.
    pub fn answers(&self) -> impl Iterator<Item = (&Fwd, &[u8])> {
        let mut start = 0usize;
        self.cmds.iter().zip(&self.ends).map(move |(q, &end)| {
            let reply = &self.replies[start..end];
            start = end;
            (&q.fwd, reply)
        })
    }

    /// The owner's side: the command of `conn`'s reply slot `seq` took `took`, enough for
    /// the slow log.
    #[cold]
    pub fn note_slow(&mut self, conn: ConnId, seq: u64, took: std::time::Duration) {
        self.slow.push((conn, seq, took));
    }

    /// The sender's side: the slow commands, with their arguments.
    pub fn slow(&self) -> Vec<(&Fwd, Vec<&[u8]>, std::time::Duration)> {
        let mut out = Vec::new();
        for &(conn, seq, took) in &self.slow {
            let Some(q) = self
                .cmds
                .iter()
                .find(|q| q.fwd.conn == conn && q.fwd.seq == seq)
            else {
                continue;
            };
            let mut rest = &self.args[q.args_at..];
            let argv = (0..q.argc).map(|_| next_arg(&mut rest)).collect();
            out.push((&q.fwd, argv, took));
        }
        out
    }

    fn clear(&mut self) {
        self.sent_ns = 0;
        self.slow.clear();
        self.cmds.clear();
        self.args.clear();
        self.replies.clear();
        self.ends.clear();
        self.next = 0;
        self.next_arg_at = 0;
    }

    fn small_enough_to_keep(&self) -> bool {
        self.args.capacity() <= FORWARD_POOL_MAX_BUFFER_BYTES
            && self.replies.capacity() <= FORWARD_POOL_MAX_BUFFER_BYTES
            && self.cmds.capacity() <= FORWARD_BATCH_MAX_COMMANDS
    }
}

/// A shard's batches for reuse: a batch comes back with its replies and is emptied here,
/// so in steady state forwarding allocates nothing.
#[derive(Default)]
pub struct ForwardPool {
    kept: Vec<Forward>,
}

impl ForwardPool {
    /// An empty batch.
    pub fn take(&mut self) -> Forward {
        self.kept.pop().unwrap_or_default()
    }

    /// Keeps `batch` for reuse (emptied), unless the pool is full or its buffers grew big.
    pub fn give(&mut self, mut batch: Forward) {
        if self.kept.len() < FORWARD_POOL_MAX_BATCHES && batch.small_enough_to_keep() {
            batch.clear();
            self.kept.push(batch);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.kept.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fwd(seq: u64) -> Fwd {
        Fwd {
            conn: ConnId {
                index: 3,
                generation: 1,
            },
            client: 1,
            seq,
            cmd: crate::commands::lookup(b"GET").expect("GET"),
            db: 0,
            proto: Protocol::Resp2,
            no_touch: false,
        }
    }

    #[test]
    fn commands_arrive_in_order_with_their_arguments_and_replies_come_back() {
        let mut b = Forward::default();
        let first: Vec<&[u8]> = vec![b"GET", b"k1"];
        let second: Vec<&[u8]> = vec![b"SET", b"", &[0, 13, 10, 255]];
        let third: Vec<&[u8]> = vec![b"GET", b"k3"];
        b.push(fwd(7), &first);
        b.push(fwd(8), &second);
        b.push(fwd(11), &third);
        let mut seen = Vec::new();
        let mut argv = Vec::new();
        let mut windows = Vec::new();
        b.run_each(&mut argv, |f, args, out, upcoming| {
            if let Some(u) = upcoming {
                windows.push(u.keys().map(|(db, k)| (db, k.to_vec())).collect::<Vec<_>>());
            }
            seen.push((f.seq, args.iter().map(|a| a.to_vec()).collect::<Vec<_>>()));
            // A reply of a different length per command, one of them empty.
            if f.seq != 8 {
                out.extend_from_slice(format!("+{}\r\n", f.seq).as_bytes());
            }
            true
        });
        let to_vecs = |v: &[&[u8]]| v.iter().map(|a| a.to_vec()).collect::<Vec<_>>();
        assert_eq!(
            seen,
            vec![
                (7, to_vecs(&first)),
                (8, to_vecs(&second)),
                (11, to_vecs(&third))
            ]
        );
        // One window (three commands), with each command's first key (GET's position).
        assert_eq!(
            windows,
            vec![vec![
                (0, b"k1".to_vec()),
                (0, b"".to_vec()),
                (0, b"k3".to_vec())
            ]]
        );
        let answers: Vec<(u64, Vec<u8>)> = b.answers().map(|(f, r)| (f.seq, r.to_vec())).collect();
        assert_eq!(
            answers,
            vec![
                (7, b"+7\r\n".to_vec()),
                (8, Vec::new()),
                (11, b"+11\r\n".to_vec())
            ]
        );
    }

    #[test]
    fn a_full_batch_takes_no_more() {
        let mut b = Forward::default();
        for i in 0..FORWARD_BATCH_MAX_COMMANDS {
            assert!(b.has_room());
            b.push(fwd(i as u64), &[b"GET", b"k"]);
        }
        assert!(!b.has_room());
        let mut big = Forward::default();
        let value = vec![b'v'; FORWARD_BATCH_MAX_ARG_BYTES];
        big.push(fwd(0), &[b"SET", b"k", &value]);
        assert!(!big.has_room());
    }

    #[test]
    fn the_pool_reuses_batches_but_not_big_ones() {
        let mut pool = ForwardPool::default();
        let mut b = pool.take();
        b.push(fwd(1), &[b"GET", b"k"]);
        pool.give(b);
        assert_eq!(pool.len(), 1);
        let b = pool.take();
        assert!(b.is_empty(), "a reused batch starts empty");
        assert!(b.args.capacity() > 0, "and keeps its buffers");
        let mut big = Forward::default();
        let value = vec![b'v'; FORWARD_POOL_MAX_BUFFER_BYTES + 1];
        big.push(fwd(0), &[b"SET", b"k", &value]);
        pool.give(big);
        assert!(pool.is_empty());
    }
}
