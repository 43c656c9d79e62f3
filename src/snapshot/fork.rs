//! The fork child of a `fork` BGSAVE, and the process calls around it.
//!
//! The child is the forking shard thread alone. It unblocks signals (the parent blocks
//! SIGTERM/SIGINT for its signalfd), names itself, writes every shard's keyspace through
//! its own io_uring ([`SnapshotFile`](percore_persist::file::SnapshotFile) creates one),
//! reports what it wrote on a pipe and leaves with `_exit`: no destructors (they would
//! touch, and so copy, every page of the dataset) and no shared locks.

#![allow(unsafe_code)]

use super::write::{SaveParams, write_keyspaces};
use percore_engine::keyspace::Keyspace;
use percore_persist::file::temp_file_name;
use std::io;
use std::os::fd::RawFd;
use std::path::Path;

/// Exit code of a child whose save failed.
pub const CHILD_FAILED_EXIT: i32 = 1;
/// Bytes of the child's report on its pipe: bytes written, copy-on-write bytes.
pub const CHILD_REPORT_BYTES: usize = 16;

/// Forks a child that writes `keyspaces` to `dir/temp-<child pid>.rdb`. Returns the
/// child's pid and the read end of its report pipe (non-blocking).
pub fn spawn_child(
    keyspaces: &[&Keyspace],
    dir: &Path,
    params: &SaveParams,
    now_ms: i64,
) -> io::Result<(i32, RawFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two descriptors for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: every other shard thread is parked at the snapshot barrier holding no lock;
    // the child runs only `child_main` on this thread's stack and leaves with `_exit`.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        let e = io::Error::last_os_error();
        close(fds[0]);
        close(fds[1]);
        return Err(e);
    }
    if pid == 0 {
        child_main(keyspaces, dir, params, now_ms, fds[1]);
    }
    close(fds[1]);
    Ok((pid, fds[0]))
}

fn child_main(
    keyspaces: &[&Keyspace],
    dir: &Path,
    params: &SaveParams,
    now_ms: i64,
    report: RawFd,
) -> ! {
    // SAFETY: plain syscalls on this process's own signal state and name.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&raw mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &raw const set, std::ptr::null_mut());
        libc::signal(libc::SIGUSR1, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::prctl(libc::PR_SET_NAME, c"percore-rdb-bgsave".as_ptr());
        // Die with the server: an orphan must not keep writing after a crash.
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    let temp = temp_file_name(u64::from(std::process::id()));
    let code = match write_keyspaces(keyspaces, dir, &temp, params, now_ms) {
        Ok(stats) => {
            let mut buf = [0u8; CHILD_REPORT_BYTES];
            buf[..8].copy_from_slice(&stats.bytes.to_le_bytes());
            buf[8..].copy_from_slice(&private_dirty_bytes().to_le_bytes());
            // SAFETY: writes from a valid buffer to our pipe.
            unsafe { libc::write(report, buf.as_ptr().cast(), buf.len()) };
            0
        }
        Err(_) => CHILD_FAILED_EXIT,
    };
    // SAFETY: ends the child without running destructors or atexit handlers.
    unsafe { libc::_exit(code) }
}

/// Private dirty memory of this process (`/proc/self/smaps_rollup`): in a fork child,
/// the pages copied because one side wrote them (Redis's `rdb_last_cow_size`).
fn private_dirty_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/self/smaps_rollup") else {
        return 0;
    };
    text.lines()
        .filter(|l| l.starts_with("Private_Dirty:"))
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * 1024
}

/// Reads the child's report (bytes written, copy-on-write bytes) once it has exited.
pub fn read_report(fd: RawFd) -> Option<(u64, u64)> {
    let mut buf = [0u8; CHILD_REPORT_BYTES];
    // SAFETY: reads into a valid buffer of the given length.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    (n == CHILD_REPORT_BYTES as isize).then(|| {
        (
            u64::from_le_bytes(buf[..8].try_into().expect("8 bytes")),
            u64::from_le_bytes(buf[8..].try_into().expect("8 bytes")),
        )
    })
}

/// A pidfd for `pid`: readable when the process exits.
pub fn pidfd_open(pid: i32) -> io::Result<RawFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fd as RawFd)
    }
}

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChildExit {
    Code(i32),
    Signal(i32),
    /// Not finished yet.
    Running,
}

/// Reaps `pid` without blocking.
pub fn try_reap(pid: i32) -> io::Result<ChildExit> {
    let mut status = 0;
    // SAFETY: waits for our own child with a valid status pointer.
    let r = unsafe { libc::waitpid(pid, &raw mut status, libc::WNOHANG) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    if r == 0 {
        return Ok(ChildExit::Running);
    }
    Ok(if libc::WIFEXITED(status) {
        ChildExit::Code(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        ChildExit::Signal(libc::WTERMSIG(status))
    } else {
        ChildExit::Code(-1)
    })
}

/// Sends `sig` to `pid`.
pub fn kill(pid: i32, sig: i32) {
    // SAFETY: kill has no memory arguments.
    unsafe { libc::kill(pid, sig) };
}

/// Closes a descriptor, ignoring errors.
pub fn close(fd: RawFd) {
    // SAFETY: the caller owns `fd` and does not use it again.
    unsafe { libc::close(fd) };
}
