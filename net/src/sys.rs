//! Thin, checked wrappers over the few raw syscalls the reactor needs outside io_uring:
//! sockets, socket options, eventfd/signalfd, CPU pinning; and the CPU's prefetch hint.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::os::fd::RawFd;

fn cvt(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

/// Builds a `sockaddr_storage` for `addr`, returning it and its length.
fn sockaddr_of(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY-free: zeroed plain-old-data struct, filled field by field below.
    let mut storage: libc::sockaddr_storage = zeroed_storage();
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            write_storage(&mut storage, &sin);
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            write_storage(&mut storage, &sin6);
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

#[expect(
    unsafe_code,
    reason = "sockaddr_storage is plain old data; all-zero is valid"
)]
fn zeroed_storage() -> libc::sockaddr_storage {
    // SAFETY: sockaddr_storage is a C struct of integers; the all-zero pattern is valid.
    unsafe { std::mem::zeroed() }
}

#[expect(unsafe_code, reason = "copies a sockaddr_in/in6 into sockaddr_storage")]
fn write_storage<T: Copy>(storage: &mut libc::sockaddr_storage, value: &T) {
    assert!(std::mem::size_of::<T>() <= std::mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: T fits inside sockaddr_storage (asserted), storage is aligned for any sockaddr
    // type, and T is plain old data.
    unsafe { std::ptr::write_unaligned(std::ptr::from_mut(storage).cast::<T>(), *value) };
}

/// Decodes a peer address written by the kernel.
#[must_use]
#[expect(
    unsafe_code,
    reason = "reads sockaddr_in/in6 out of sockaddr_storage by family"
)]
pub fn sockaddr_to_std(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin: libc::sockaddr_in =
                unsafe { std::ptr::read_unaligned(std::ptr::from_ref(storage).cast()) };
            let ip = std::net::Ipv4Addr::from(sin.sin_addr.s_addr.to_ne_bytes());
            Some(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6: libc::sockaddr_in6 =
                unsafe { std::ptr::read_unaligned(std::ptr::from_ref(storage).cast()) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be(sin6.sin6_port),
            ))
        }
        _ => None,
    }
}

/// Whether `addr` is free for a new server: binds (and closes) a socket with
/// `SO_REUSEADDR` but without `SO_REUSEPORT`, which the kernel refuses with `EADDRINUSE`
/// while any socket listens on the address, `SO_REUSEPORT` or not. The shards' own
/// listeners would join another process's `SO_REUSEPORT` group of the same user instead of
/// failing. Returns the port bound (the one the kernel chose for port 0).
#[expect(unsafe_code, reason = "socket/bind syscalls")]
pub fn probe_port_free(addr: &SocketAddr) -> io::Result<u16> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain syscall; the fd is closed below.
    let fd = cvt(unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    let result = (|| {
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        if addr.is_ipv6() {
            set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
        }
        let (storage, len) = sockaddr_of(addr);
        // SAFETY: storage holds a valid sockaddr of `len` bytes.
        cvt(unsafe { libc::bind(fd, std::ptr::from_ref(&storage).cast(), len) })?;
        Ok(local_addr(fd)?.port())
    })();
    close(fd);
    result
}

/// An OS error's text alone, as `strerror` gives it (no "(os error N)").
#[must_use]
pub fn strerror(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// Opens a listening TCP socket with `SO_REUSEADDR` and `SO_REUSEPORT`, so every shard can
/// bind its own listener on the same address and the kernel spreads connections.
#[expect(unsafe_code, reason = "socket/bind/listen syscalls")]
pub fn listen_reuseport(addr: &SocketAddr, backlog: i32) -> io::Result<RawFd> {
    let family = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain syscall; the returned fd is owned by the caller.
    let fd = cvt(unsafe {
        libc::socket(
            family,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
            0,
        )
    })?;
    let result = (|| {
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
        if addr.is_ipv6() {
            set_int_opt(fd, libc::IPPROTO_IPV6, libc::IPV6_V6ONLY, 1)?;
        }
        let (storage, len) = sockaddr_of(addr);
        // SAFETY: storage holds a valid sockaddr of `len` bytes.
        cvt(unsafe { libc::bind(fd, std::ptr::from_ref(&storage).cast(), len) })?;
        // SAFETY: fd is a bound stream socket.
        cvt(unsafe { libc::listen(fd, backlog) })?;
        Ok(fd)
    })();
    if result.is_err() {
        close(fd);
    }
    result
}

/// The local address a socket is bound to (useful with port 0).
#[expect(unsafe_code, reason = "getsockname syscall")]
pub fn local_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut storage = zeroed_storage();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage is large enough for any address; len tells the kernel its size.
    cvt(unsafe { libc::getsockname(fd, std::ptr::from_mut(&mut storage).cast(), &raw mut len) })?;
    sockaddr_to_std(&storage).ok_or_else(|| io::Error::other("unknown address family"))
}

/// The remote address of a connected socket.
#[expect(unsafe_code, reason = "getpeername syscall")]
pub fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    let mut storage = zeroed_storage();
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: storage is large enough for any address; len tells the kernel its size.
    cvt(unsafe { libc::getpeername(fd, std::ptr::from_mut(&mut storage).cast(), &raw mut len) })?;
    sockaddr_to_std(&storage).ok_or_else(|| io::Error::other("unknown address family"))
}

#[expect(unsafe_code, reason = "setsockopt syscall")]
pub fn set_int_opt(fd: RawFd, level: i32, name: i32, value: i32) -> io::Result<()> {
    // SAFETY: value lives for the call and its size is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    })?;
    Ok(())
}

/// `TCP_NODELAY`, and TCP keepalive probes every `keepalive_s` seconds (0 = off), as Redis's
/// `tcp-keepalive`.
pub fn tune_accepted(fd: RawFd, keepalive_s: u32) -> io::Result<()> {
    set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1)?;
    if keepalive_s > 0 {
        let secs = i32::try_from(keepalive_s).unwrap_or(i32::MAX);
        set_int_opt(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
        set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, secs)?;
        set_int_opt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_KEEPINTVL,
            (secs / 3).max(1),
        )?;
        set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, 3)?;
    }
    Ok(())
}

/// Closes a file descriptor, ignoring errors (nothing useful can be done with them).
#[expect(unsafe_code, reason = "close syscall")]
pub fn close(fd: RawFd) {
    // SAFETY: the caller owns fd and never uses it again.
    unsafe { libc::close(fd) };
}

/// A second descriptor for the same open file (the socket a replica's PSYNC arrived on,
/// kept past the connection's close by its shard).
#[expect(unsafe_code, reason = "dup syscall")]
pub fn dup(fd: RawFd) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: dup takes a descriptor number and touches no memory of ours.
    let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 0) };
    if new < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a fresh descriptor that nothing else owns.
    Ok(unsafe { std::os::fd::OwnedFd::from_raw_fd(new) })
}

/// Shuts a socket down both ways, ignoring errors: a send or receive waiting on it ends
/// (EPIPE, or end of input) instead of waiting for a peer that does not read.
#[expect(unsafe_code, reason = "shutdown syscall")]
pub fn shutdown_both(fd: RawFd) {
    // SAFETY: shutdown takes a descriptor and a constant; it touches no memory of ours, and
    // a descriptor that is not an open socket only makes it fail.
    unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
}

/// The process's descriptor limit, `RLIMIT_NOFILE`, as (soft, hard).
#[expect(unsafe_code, reason = "getrlimit syscall")]
pub fn nofile_limit() -> io::Result<(u64, u64)> {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `l` is a valid rlimit the kernel writes.
    cvt(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &raw mut l) })?;
    Ok((l.rlim_cur, l.rlim_max))
}

/// Sets `RLIMIT_NOFILE`'s soft and hard limits both to `limit` (as Redis does).
#[expect(unsafe_code, reason = "setrlimit syscall")]
pub fn set_nofile_limit(limit: u64) -> io::Result<()> {
    let l = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: `l` is a valid rlimit the kernel reads.
    cvt(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raw const l) })?;
    Ok(())
}

/// Writes a short message directly with a nonblocking `write`, used for the rare replies sent
/// to a connection that is refused at accept time (max clients).
#[expect(unsafe_code, reason = "write syscall")]
pub fn write_best_effort(fd: RawFd, bytes: &[u8]) {
    // SAFETY: bytes is a valid slice for the duration of the call.
    unsafe { libc::send(fd, bytes.as_ptr().cast(), bytes.len(), libc::MSG_DONTWAIT) };
}

/// Pins the calling thread to one CPU.
#[expect(unsafe_code, reason = "sched_setaffinity syscall")]
pub fn pin_to_cpu(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain data; CPU_SET writes inside it.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        cvt(libc::sched_setaffinity(
            0,
            std::mem::size_of::<libc::cpu_set_t>(),
            &raw const set,
        ))?;
    }
    Ok(())
}

/// The CPUs this process may run on, in order.
#[must_use]
#[expect(unsafe_code, reason = "sched_getaffinity syscall")]
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: cpu_set_t is plain data, filled by the kernel.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw mut set) != 0 {
            return vec![0];
        }
        (0..libc::CPU_SETSIZE as usize)
            .filter(|&c| libc::CPU_ISSET(c, &set))
            .collect()
    }
}

/// Redis's `daemonize`: forks (the parent exits at once with status 0), starts a new
/// session, and points stdin, stdout and stderr at /dev/null. Call it before any thread
/// is started: only the calling thread survives a fork.
#[expect(unsafe_code, reason = "fork, setsid, open and dup2 syscalls")]
pub fn daemonize() -> io::Result<()> {
    // SAFETY: no other thread runs yet (the caller's contract), so the child inherits a
    // consistent process; the parent only calls `_exit`.
    match cvt(unsafe { libc::fork() })? {
        0 => {}
        _ => unsafe { libc::_exit(0) },
    }
    // SAFETY: plain syscalls on the child's own descriptors.
    unsafe {
        libc::setsid();
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd >= 0 {
            libc::dup2(fd, libc::STDIN_FILENO);
            libc::dup2(fd, libc::STDOUT_FILENO);
            libc::dup2(fd, libc::STDERR_FILENO);
            if fd > libc::STDERR_FILENO {
                libc::close(fd);
            }
        }
    }
    Ok(())
}

/// Blocks SIGINT and SIGTERM in the calling thread (and the threads it spawns afterwards) and
/// returns a signalfd that reads them, so shutdown arrives as an io_uring completion.
#[expect(unsafe_code, reason = "sigprocmask and signalfd syscalls")]
pub fn block_shutdown_signals() -> io::Result<RawFd> {
    // SAFETY: sigset_t is plain data manipulated only through the libc helpers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::sigaddset(&raw mut set, libc::SIGINT);
        libc::sigaddset(&raw mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &raw const set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        // A write to a closed socket must be an EPIPE error, not a process-killing signal.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        cvt(libc::signalfd(-1, &raw const set, libc::SFD_CLOEXEC))
    }
}

/// Size of `struct signalfd_siginfo`: what one read of a signalfd returns.
pub const SIGNALFD_SIGINFO_BYTES: usize = 128;

/// `CLOCK_MONOTONIC` in nanoseconds: a cheaper clock read than `Instant` arithmetic for the
/// per-command timing on the hot path.
#[inline]
#[must_use]
#[expect(unsafe_code, reason = "clock_gettime syscall (vDSO)")]
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for the kernel (vDSO) to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &raw mut ts) };
    (ts.tv_sec as u64) * 1_000_000_000 + ts.tv_nsec as u64
}

/// Asks the CPU to bring the cache line holding `addr` into its caches; reads nothing and
/// never faults, whatever the address (the shards warm key lookups with it).
#[cfg(target_arch = "x86_64")]
#[inline]
#[expect(unsafe_code, reason = "the prefetch intrinsic")]
pub fn prefetch(addr: *const u8) {
    // SAFETY: a prefetch is a hint: it never faults and reads nothing into the program.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(addr.cast());
    }
}

/// Asks the CPU to bring the cache line holding `addr` in (a no-op on this architecture).
#[cfg(not(target_arch = "x86_64"))]
#[inline]
pub fn prefetch(_addr: *const u8) {}
