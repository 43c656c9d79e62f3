//! Which reactor runs the shards, chosen once at start (`io-backend`): io_uring, or the
//! epoll readiness loop where io_uring is refused (Docker's default seccomp profile,
//! `kernel.io_uring_disabled`, kernels older than 5.19). Every shard runs the same one.

use crate::reactor::{
    EpollReactor, Reactor, ReactorError, RingFeatures, Service, Shared, build_ring,
};
use std::os::fd::RawFd;
use std::sync::Arc;

/// The `io-backend` setting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum IoBackend {
    /// io_uring, or epoll when io_uring cannot be set up.
    #[default]
    Auto,
    /// io_uring only: start fails where it is refused.
    IoUring,
    /// epoll, even where io_uring works.
    Epoll,
}

impl IoBackend {
    /// Every setting, in the order of [`Self::NAMES`].
    pub const ALL: [Self; 3] = [Self::Auto, Self::IoUring, Self::Epoll];
    /// The setting's names in the config file and CONFIG GET.
    pub const NAMES: [&'static str; 3] = ["auto", "io_uring", "epoll"];

    /// The name of the setting.
    #[must_use]
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

/// The backend the shards run on.
#[derive(Clone, Debug)]
pub enum Chosen {
    /// io_uring, with the features its probe ring offered.
    IoUring(RingFeatures),
    /// epoll; `why` says why io_uring was not used when `auto` fell back.
    Epoll { why: Option<String> },
}

impl Chosen {
    /// `io_uring` or `epoll` (INFO's `io_backend`).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::IoUring(_) => "io_uring",
            Self::Epoll { .. } => "epoll",
        }
    }
}

/// Picks the backend for `requested`: `auto` builds a probe ring (dropped again: a
/// single-issuer ring must be built by the thread that submits to it) and falls back to
/// epoll when io_uring is unavailable; `io_uring` fails there, with the cause.
pub fn choose(requested: IoBackend) -> Result<Chosen, ReactorError> {
    match requested {
        IoBackend::Epoll => Ok(Chosen::Epoll { why: None }),
        IoBackend::IoUring => build_ring().map(|(_, f)| Chosen::IoUring(f)),
        IoBackend::Auto => match build_ring() {
            Ok((_, f)) => Ok(Chosen::IoUring(f)),
            Err(ReactorError::IoUringUnavailable(why)) => Ok(Chosen::Epoll { why: Some(why) }),
            Err(e) => Err(e),
        },
    }
}

/// Runs shard `shard`'s loop on the chosen backend until a shutdown completes (on the
/// shard's own thread: the ring is built here).
pub fn run_shard<S: Service>(
    chosen: &Chosen,
    shard: usize,
    shared: Arc<Shared<S::Msg>>,
    listeners: Vec<RawFd>,
    signal_fd: Option<RawFd>,
    service: &mut S,
) -> Result<(), String> {
    match chosen {
        Chosen::IoUring(_) => {
            let ring = build_ring().map_err(|e| e.to_string())?.0;
            Reactor::new(ring, shard, shared, listeners, signal_fd)
                .run(service)
                .map_err(|e| format!("shard {shard}: {e}"))
        }
        Chosen::Epoll { .. } => EpollReactor::new(shard, shared, listeners, signal_fd)
            .and_then(|mut r| r.run(service))
            .map_err(|e| format!("shard {shard}: {e}")),
    }
}
