//! CONFIG SET port / bind / tls-port at runtime, as Redis 7.0's `changeListenPort` and
//! `changeBindAddr`: the new listening sockets (one per shard and address, `SO_REUSEPORT`)
//! are bound first, on the shard running CONFIG SET; if any fails, the error is Redis's and
//! the old ones stay. Otherwise each shard gets its set and puts it in place of its old TCP
//! and TLS listeners at its next tick (the reactor's `Io::replace_listeners`); connections
//! already accepted stay open. Listener order in each shard is unchanged: the Unix socket
//! (if any), the plain TCP ones, then the TLS ones.

use crate::config::Config;
use crate::server::ServerShared;
use percore_net::reactor::Io;
use std::os::fd::RawFd;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};

/// New listeners for one shard: they replace its own from this index on.
type Swap = (usize, Vec<RawFd>);

/// The listeners' state shared by the shards.
pub struct Listeners {
    /// The plain TCP port listened on (INFO `tcp_port`, replicas' `listening-port`).
    port: AtomicU16,
    /// Per shard: the listeners to put in place from an index on, until its tick takes
    /// them.
    swaps: Mutex<Vec<Option<Swap>>>,
    /// Per shard: a swap waits in `swaps` (one load per tick when there is none).
    ready: Vec<AtomicBool>,
}

impl Listeners {
    pub fn new(shards: usize, port: u16) -> Self {
        Self {
            port: AtomicU16::new(port),
            swaps: Mutex::new((0..shards).map(|_| None).collect()),
            ready: (0..shards).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    /// The plain TCP port listened on (0: none).
    pub fn port(&self) -> u16 {
        self.port.load(Ordering::Relaxed)
    }
}

/// What decides the TCP and TLS listeners.
fn listen_key(c: &Config) -> (u16, u16, String) {
    let bind: Vec<String> = c
        .bind
        .iter()
        .map(|b| format!("{}{}", if b.optional { "-" } else { "" }, b.addr))
        .collect();
    (c.port, c.tls.port, bind.join(" "))
}

/// After CONFIG SET changed `before` into `after` (under the config lock): binds the new
/// listeners when port, tls-port or bind changed and hands them to the shards. `Err` is
/// Redis's error text (the caller restores `before`).
pub fn apply(shared: &ServerShared, before: &Config, after: &Config) -> Result<(), String> {
    let (old_port, old_tls, old_bind) = listen_key(before);
    let (port, tls_port, bind) = listen_key(after);
    if (old_port, old_tls, &old_bind) == (port, tls_port, &bind) {
        return Ok(());
    }
    let (option, reason) = if bind != old_bind {
        ("bind", "Failed to bind to specified addresses.")
    } else if port != old_port {
        ("port", "Unable to listen on this port. Check server logs.")
    } else {
        (
            "tls-port",
            "Unable to listen on this port. Check server logs.",
        )
    };
    let fail =
        || format!("ERR CONFIG SET failed (possibly related to argument '{option}') - {reason}");
    let mut per_shard: Vec<Vec<RawFd>> = vec![Vec::new(); shared.shards];
    // A port this server listens on already is not probed (it is ours, not another's).
    let ours = |p: u16| p == old_port || p == old_tls;
    if port != 0 {
        let mut p = port;
        crate::bind_port(after, &mut p, &mut per_shard, &shared.log, !ours(port))
            .map_err(|_| fail())?;
    }
    let plain = per_shard[0].len();
    if tls_port != 0 {
        let mut p = tls_port;
        if crate::bind_port(after, &mut p, &mut per_shard, &shared.log, !ours(tls_port)).is_err() {
            close_all(&mut per_shard);
            return Err(fail());
        }
    }
    if per_shard[0].is_empty() && !after.bind.is_empty() && (port != 0 || tls_port != 0) {
        return Err(fail());
    }
    let from = usize::from(after.unixsocket().is_some());
    shared.tls.set_first_listener(from + plain);
    shared.listen.port.store(port, Ordering::Relaxed);
    let mut swaps = shared.listen.swaps.lock().expect("listener swaps lock");
    for (shard, fds) in per_shard.into_iter().enumerate() {
        if let Some((_, old)) = swaps[shard].replace((from, fds)) {
            // A swap its shard had not taken yet: superseded.
            for fd in old {
                percore_net::sys::close(fd);
            }
        }
        shared.listen.ready[shard].store(true, Ordering::Release);
    }
    Ok(())
}

fn close_all(per_shard: &mut [Vec<RawFd>]) {
    for fds in per_shard {
        for fd in fds.drain(..) {
            percore_net::sys::close(fd);
        }
    }
}

/// Shard `shard`'s tick: takes its new listeners, if CONFIG SET left some.
#[inline]
pub fn on_tick<M, S>(shared: &ServerShared, shard: usize, io: &mut Io<M, S>) {
    if !shared.listen.ready[shard].load(Ordering::Acquire) {
        return;
    }
    shared.listen.ready[shard].store(false, Ordering::Release);
    let swap = shared.listen.swaps.lock().expect("listener swaps lock")[shard].take();
    if let Some((from, fds)) = swap {
        io.replace_listeners(from, fds);
    }
}
