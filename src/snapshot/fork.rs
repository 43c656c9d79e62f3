//! The fork child of a `fork` BGSAVE, and the process calls around it.
//!
//! The child is the forking shard thread alone. It unblocks signals (the parent blocks
//! SIGTERM/SIGINT for its signalfd), names itself, leaves its shard's CPU pin for the
//! server's whole CPU set (as Redis's `bgsave_cpulist` unset), writes every shard's keyspace through
//! its own io_uring ([`SnapshotFile`](percore_persist::file::SnapshotFile) creates one),
//! reports on a pipe and leaves with `_exit`: no destructors (they would touch, and so
//! copy, every page of the dataset) and no shared locks.
//!
//! The pipe carries fixed-size [`Report`]s, as Redis's `sendChildInfo`: a progress report
//! (keys serialized, the child's Private_Dirty and when it was measured) at the first key
//! and then at most every [`PROGRESS_INTERVAL`], and a final one with the bytes written.
//! Each is one `write` of less than `PIPE_BUF`, so reports never interleave or tear.
//!
//! # Teardown helper
//! A process's exit tears its address space down before its parent can reap it: for the
//! child of a 1.1 GB dataset that was 25–37 ms of CPU (every page table entry of the
//! shared dataset), and 90–150 ms once the parent had written every page during the save
//! (the child then owns and frees the original pages), all of it on the cancel barrier,
//! which reaps the child before it replies. So the child's first act is to clone a helper
//! that shares its memory (`CLONE_VM`, a process of its own, not a thread) and holds
//! nothing else: it closes every descriptor and waits for the child's death, announced
//! by `PR_SET_PDEATHSIG` (SIGUSR2, blocked and waited for). When the child dies, its exit
//! drops only its own reference to the memory and it becomes reapable at once (kill to
//! reaped 0.02–0.05 ms, any dataset); the helper, reparented away from the server (to
//! init), waits 50 ms more (so the teardown does not share the CPUs with the cancel
//! barrier still running) and exits, freeing the memory at nice 19. The helper never runs Rust or libc code that touches memory beyond
//! its stack: raw system calls only. The helper outlives the reply to a cancel by the time
//! the teardown takes (tens of ms, a process named `percore-rdb-mem` that holds no file
//! and is no longer the server's child); when the server is PID 1 of its namespace the
//! orphan would be reparented to the server itself, which reaps only its own children,
//! so then no helper is started and the cancel waits for the teardown instead.

#![allow(unsafe_code)]

use super::write::{SaveParams, write_keyspaces};
use percore_engine::keyspace::Keyspace;
use percore_net::sys::monotonic_ns;
use percore_persist::file::temp_file_name;
use std::io;
use std::os::fd::RawFd;
use std::path::Path;
use std::time::Duration;

/// Exit code of a child whose save failed.
pub const CHILD_FAILED_EXIT: i32 = 1;
/// Bytes of one [`Report`] on the child's pipe: five little-endian `u64`s.
pub const REPORT_BYTES: usize = 40;
/// Shortest time between two progress reports of the child (Redis's child sends its
/// current info about once a second).
pub const PROGRESS_INTERVAL: Duration = Duration::from_secs(1);
/// Reading Private_Dirty walks the child's page tables: the next reading waits at least
/// this many times as long as the last one took (Redis's `CHILD_COW_DUTY_CYCLE`), so a
/// huge dataset does not spend more than 1 % of the child's time measuring itself.
pub const COW_READ_DUTY_CYCLE: u64 = 100;
/// Reports the parent reads from the pipe per `read`.
const REPORTS_PER_READ: usize = 16;
/// Bytes of `/proc/self/smaps_rollup` read (the whole file is about 1 KiB).
const SMAPS_ROLLUP_MAX_BYTES: usize = 4096;

const REPORT_PROGRESS: u64 = 1;
const REPORT_DONE: u64 = 2;

/// One message of the child on its pipe.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// The last report: the file is complete.
    pub done: bool,
    /// Keys serialized so far.
    pub keys: u64,
    /// The child's Private_Dirty when last measured: the pages copied because either side
    /// wrote them (Redis's `current_cow_size`).
    pub cow_bytes: u64,
    /// `CLOCK_MONOTONIC` nanoseconds of that measurement (the clock is system-wide).
    pub cow_measured_ns: u64,
    /// Bytes written (the final report only).
    pub bytes: u64,
}

impl Report {
    fn encode(&self) -> [u8; REPORT_BYTES] {
        let kind = if self.done {
            REPORT_DONE
        } else {
            REPORT_PROGRESS
        };
        let mut buf = [0u8; REPORT_BYTES];
        for (slot, v) in buf.chunks_exact_mut(8).zip([
            kind,
            self.keys,
            self.cow_bytes,
            self.cow_measured_ns,
            self.bytes,
        ]) {
            slot.copy_from_slice(&v.to_le_bytes());
        }
        buf
    }

    fn decode(buf: &[u8]) -> Option<Self> {
        let mut words = buf
            .chunks_exact(8)
            .map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
        let done = match words.next()? {
            REPORT_PROGRESS => false,
            REPORT_DONE => true,
            _ => return None,
        };
        Some(Self {
            done,
            keys: words.next()?,
            cow_bytes: words.next()?,
            cow_measured_ns: words.next()?,
            bytes: words.next()?,
        })
    }
}

/// Forks a child that writes `keyspaces` to `dir/temp-<child pid>.rdb`. Returns the
/// child's pid and the read end of its report pipe.
pub fn spawn_child(
    keyspaces: &[&Keyspace],
    dir: &Path,
    params: &SaveParams,
    now_ms: i64,
    oom_score_adj: Option<i64>,
) -> io::Result<(i32, ReportPipe)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid array of two descriptors for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let cpus = process_cpus();
    // SAFETY: getpid has no arguments.
    let server_is_init = unsafe { libc::getpid() } == 1;
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
        let setup = ChildSetup {
            cpus,
            teardown_helper: !server_is_init,
            oom_score_adj,
        };
        child_main(keyspaces, dir, params, now_ms, fds[1], &setup);
    }
    close(fds[1]);
    Ok((pid, ReportPipe::new(fds[0])))
}

/// Writes `/proc/self/oom_score_adj` in the child, without allocating (a stack buffer);
/// a failure leaves the inherited value (Redis logs it and goes on).
fn write_oom_score_adj(value: i64) {
    let mut buf = [0u8; 24];
    let mut end = buf.len();
    end -= 1;
    buf[end] = b'\n';
    let mut n = value.unsigned_abs();
    loop {
        end -= 1;
        buf[end] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if value < 0 {
        end -= 1;
        buf[end] = b'-';
    }
    // SAFETY: a NUL-terminated path, a valid buffer and length, the descriptor closed.
    unsafe {
        let fd = libc::open(c"/proc/self/oom_score_adj".as_ptr(), libc::O_WRONLY);
        if fd >= 0 {
            libc::write(fd, buf[end..].as_ptr().cast(), buf.len() - end);
            libc::close(fd);
        }
    }
}

/// What the parent works out for the child before forking.
struct ChildSetup {
    /// The server's CPUs: its main thread's affinity, which shard pinning leaves alone.
    cpus: Option<libc::cpu_set_t>,
    /// Start the teardown helper: not when the server is its PID namespace's init, which
    /// the helper would be reparented to (and left a zombie of, as percore reaps only its
    /// own children).
    teardown_helper: bool,
    /// `oom-score-adj-values`' child value, when `oom-score-adj` is on (Redis's
    /// `setOOMScoreAdj(CONFIG_OOM_BGCHILD)` in the child).
    oom_score_adj: Option<i64>,
}

/// Moves the calling thread from its shard's CPU pin to the server's CPU set (the main
/// thread's affinity): for threads a shard spawns to work beside it (the forkless
/// snapshot's writer, which serializes large values), so the scheduler can run them
/// where a shard is idle instead of on the spawning shard's CPU.
pub fn leave_shard_pin() {
    if let Some(set) = process_cpus() {
        // SAFETY: `set` is a valid cpu_set_t; pid 0 is the calling thread.
        unsafe {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &raw const set);
        }
    }
}

/// The affinity of the process's main thread (tid = pid).
fn process_cpus() -> Option<libc::cpu_set_t> {
    // SAFETY: cpu_set_t is plain data, filled by the kernel; getpid has no arguments.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        (libc::sched_getaffinity(
            libc::getpid(),
            std::mem::size_of::<libc::cpu_set_t>(),
            &raw mut set,
        ) == 0)
            .then_some(set)
    }
}

fn child_main(
    keyspaces: &[&Keyspace],
    dir: &Path,
    params: &SaveParams,
    now_ms: i64,
    report: RawFd,
    setup: &ChildSetup,
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
        // The forking shard thread was pinned to its CPU: the child may run on any CPU the
        // server may (the scheduler puts it where a shard is idle).
        if let Some(set) = &setup.cpus {
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
        }
    }
    if let Some(value) = setup.oom_score_adj {
        write_oom_score_adj(value);
    }
    if setup.teardown_helper {
        spawn_teardown_helper();
    }
    let temp = temp_file_name(u64::from(std::process::id()));
    let mut reporter = Reporter {
        fd: report,
        next_report_ns: 0,
        next_cow_read_ns: 0,
        cow_bytes: 0,
        cow_measured_ns: 0,
    };
    let code = match write_keyspaces(keyspaces, dir, &temp, params, now_ms, &mut |keys| {
        reporter.progress(keys);
    }) {
        Ok(stats) => {
            let keys = keyspaces.iter().map(|k| k.total_keys() as u64).sum();
            reporter.finish(keys, stats.bytes);
            0
        }
        Err(_) => CHILD_FAILED_EXIT,
    };
    // SAFETY: ends the child without running destructors or atexit handlers.
    unsafe { libc::_exit(code) }
}

/// The child's side of the report pipe.
struct Reporter {
    fd: RawFd,
    next_report_ns: u64,
    next_cow_read_ns: u64,
    cow_bytes: u64,
    cow_measured_ns: u64,
}

impl Reporter {
    /// Called every few keys: sends a progress report when one is due (the first call,
    /// then every [`PROGRESS_INTERVAL`]). One clock read when none is.
    fn progress(&mut self, keys: u64) {
        let now = monotonic_ns();
        if now < self.next_report_ns {
            return;
        }
        self.next_report_ns = now + PROGRESS_INTERVAL.as_nanos() as u64;
        if now >= self.next_cow_read_ns {
            self.measure(now);
        }
        // Non-blocking: with the pipe full (a parent not reading) this report is dropped,
        // which costs nothing but freshness.
        self.send(&Report {
            done: false,
            keys,
            cow_bytes: self.cow_bytes,
            cow_measured_ns: self.cow_measured_ns,
            bytes: 0,
        });
    }

    /// The final report, with a fresh Private_Dirty. Blocking, so it is never dropped:
    /// the parent drains the pipe on every tick.
    fn finish(&mut self, keys: u64, bytes: u64) {
        self.measure(monotonic_ns());
        // SAFETY: fcntl on our own descriptor; clears O_NONBLOCK on the write end only
        // (the parent's read end is a separate open file description).
        unsafe { libc::fcntl(self.fd, libc::F_SETFL, 0) };
        self.send(&Report {
            done: true,
            keys,
            cow_bytes: self.cow_bytes,
            cow_measured_ns: self.cow_measured_ns,
            bytes,
        });
    }

    fn measure(&mut self, now: u64) {
        self.cow_bytes = private_dirty_bytes();
        let after = monotonic_ns();
        self.cow_measured_ns = after;
        let cost = after.saturating_sub(now);
        self.next_cow_read_ns =
            after + (PROGRESS_INTERVAL.as_nanos() as u64).max(cost * COW_READ_DUTY_CYCLE);
    }

    fn send(&self, r: &Report) {
        let buf = r.encode();
        loop {
            // SAFETY: writes from a valid buffer to our pipe.
            let n = unsafe { libc::write(self.fd, buf.as_ptr().cast(), buf.len()) };
            if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                return;
            }
        }
    }
}

/// The child's pid, for the helper to check that its parent is still the child.
static HELPER_PARENT: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);
/// Bytes of the helper's stack.
const HELPER_STACK_BYTES: usize = 64 << 10;
/// How long the helper waits after the child's death before it exits and frees the
/// memory (see `teardown_helper`).
const HELPER_TEARDOWN_DELAY_NS: libc::c_long = 50_000_000;
/// The kernel's signal set size for `rt_sig*` calls (64 signals).
const KERNEL_SIGSET_BYTES: usize = 8;

/// See "Teardown helper" in the module docs. Failing to start it only costs time.
fn spawn_teardown_helper() {
    // SAFETY: getpid has no arguments; mmap makes a private anonymous map for the helper's
    // stack; clone(CLONE_VM) runs `teardown_helper` on that stack in our address space.
    unsafe {
        HELPER_PARENT.store(libc::getpid(), std::sync::atomic::Ordering::Relaxed);
        let stack = libc::mmap(
            std::ptr::null_mut(),
            HELPER_STACK_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_STACK,
            -1,
            0,
        );
        if stack == libc::MAP_FAILED {
            return;
        }
        // No exit signal: nobody waits for the helper but init.
        libc::clone(
            teardown_helper,
            stack.cast::<u8>().add(HELPER_STACK_BYTES).cast(),
            libc::CLONE_VM,
            std::ptr::null_mut(),
        );
    }
}

/// The helper's whole life. It shares the child's memory and thread-local storage, so it
/// makes raw system calls only (libc's `syscall` writes `errno` on failure alone).
extern "C" fn teardown_helper(_: *mut libc::c_void) -> libc::c_int {
    // SAFETY: system calls whose pointer arguments point at this stack frame's locals or
    // are null.
    unsafe {
        // Hold no file: not the temp file, not the server's sockets and rings.
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
        libc::syscall(
            libc::SYS_prctl,
            libc::PR_SET_NAME,
            c"percore-rdb-mem".as_ptr(),
        );
        // The child's death is announced by a signal the helper waits for (blocked, so it
        // neither kills nor interrupts anything else).
        let death: u64 = 1 << (libc::SIGUSR2 - 1);
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_BLOCK,
            &raw const death,
            std::ptr::null_mut::<u64>(),
            KERNEL_SIGSET_BYTES,
        );
        libc::syscall(libc::SYS_prctl, libc::PR_SET_PDEATHSIG, libc::SIGUSR2);
        // The freeing must not take CPU from the shards: lowest priority (on any of the
        // server's CPUs, as the child).
        libc::syscall(libc::SYS_setpriority, libc::PRIO_PROCESS, 0, 19);
        // Unless the child died before PR_SET_PDEATHSIG took effect, wait for its death.
        if libc::syscall(libc::SYS_getppid)
            == libc::c_long::from(HELPER_PARENT.load(std::sync::atomic::Ordering::Relaxed))
        {
            while libc::syscall(
                libc::SYS_rt_sigtimedwait,
                &raw const death,
                std::ptr::null_mut::<libc::siginfo_t>(),
                std::ptr::null::<libc::timespec>(),
                KERNEL_SIGSET_BYTES,
            ) != libc::c_long::from(libc::SIGUSR2)
            {}
        }
        // Let the cancel barrier that killed the child finish first: a teardown that
        // starts at once shares the shards' CPUs with the barrier (a woken shard waited
        // for the next scheduler tick, 3-5 ms, in 70 % of fork cancels).
        let delay = libc::timespec {
            tv_sec: 0,
            tv_nsec: HELPER_TEARDOWN_DELAY_NS,
        };
        libc::syscall(
            libc::SYS_nanosleep,
            &raw const delay,
            std::ptr::null_mut::<libc::timespec>(),
        );
        libc::syscall(libc::SYS_exit, 0);
        0
    }
}

/// Private dirty memory of this process (`/proc/self/smaps_rollup`): in a fork child,
/// the pages copied because one side wrote them (Redis's `zmalloc_get_private_dirty`).
/// Reads into a stack buffer: the child does not allocate for it.
fn private_dirty_bytes() -> u64 {
    let mut buf = [0u8; SMAPS_ROLLUP_MAX_BYTES];
    // SAFETY: opens a NUL-terminated path; reads into a valid buffer of the given length;
    // closes the descriptor it opened.
    let n = unsafe {
        let fd = libc::open(
            c"/proc/self/smaps_rollup".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        );
        if fd < 0 {
            return 0;
        }
        let n = libc::read(fd, buf.as_mut_ptr().cast(), buf.len());
        libc::close(fd);
        n
    };
    let Ok(n) = usize::try_from(n) else {
        return 0;
    };
    private_dirty_of(&buf[..n])
}

/// The `Private_Dirty:` total of an smaps text, in bytes.
fn private_dirty_of(text: &[u8]) -> u64 {
    text.split(|&b| b == b'\n')
        .filter_map(|l| l.strip_prefix(b"Private_Dirty:"))
        .filter_map(|rest| {
            std::str::from_utf8(rest)
                .ok()?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum::<u64>()
        * 1024
}

/// The parent's side of the report pipe: non-blocking reads of whole reports.
#[derive(Debug)]
pub struct ReportPipe {
    fd: RawFd,
    partial: [u8; REPORT_BYTES],
    partial_len: usize,
}

impl ReportPipe {
    /// Takes ownership of the (non-blocking) read end `fd`.
    pub fn new(fd: RawFd) -> Self {
        Self {
            fd,
            partial: [0; REPORT_BYTES],
            partial_len: 0,
        }
    }

    /// Hands every report waiting in the pipe to `f`, oldest first. Never blocks.
    pub fn drain(&mut self, mut f: impl FnMut(Report)) {
        let mut buf = [0u8; REPORT_BYTES * REPORTS_PER_READ];
        loop {
            let start = self.partial_len;
            buf[..start].copy_from_slice(&self.partial[..start]);
            // SAFETY: reads into the valid tail of `buf`.
            let n =
                unsafe { libc::read(self.fd, buf[start..].as_mut_ptr().cast(), buf.len() - start) };
            let Ok(n) = usize::try_from(n) else {
                // EAGAIN (nothing more), EINTR (next tick) or a real error: stop here.
                return;
            };
            if n == 0 {
                return;
            }
            let have = start + n;
            let whole = have - have % REPORT_BYTES;
            for r in buf[..whole].chunks_exact(REPORT_BYTES) {
                if let Some(r) = Report::decode(r) {
                    f(r);
                }
            }
            self.partial_len = have - whole;
            self.partial[..self.partial_len].copy_from_slice(&buf[whole..have]);
            if have < buf.len() {
                return;
            }
        }
    }

    /// Closes the pipe.
    pub fn close(self) {
        close(self.fd);
    }
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

impl ChildExit {
    /// The exit of a reaped child from its `waitpid` status.
    fn from_status(status: libc::c_int) -> Self {
        if libc::WIFEXITED(status) {
            Self::Code(libc::WEXITSTATUS(status))
        } else if libc::WIFSIGNALED(status) {
            Self::Signal(libc::WTERMSIG(status))
        } else {
            Self::Code(-1)
        }
    }
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
    Ok(ChildExit::from_status(status))
}

/// Reaps `pid`, waiting for it to exit.
pub fn reap_blocking(pid: i32) -> io::Result<ChildExit> {
    let mut status = 0;
    loop {
        // SAFETY: waits for our own child with a valid status pointer.
        let r = unsafe { libc::waitpid(pid, &raw mut status, 0) };
        if r >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    Ok(ChildExit::from_status(status))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn report(keys: u64, done: bool) -> Report {
        Report {
            done,
            keys,
            cow_bytes: keys.wrapping_mul(4096),
            cow_measured_ns: keys.wrapping_add(7),
            bytes: if done { 1 << 40 } else { 0 },
        }
    }

    #[test]
    fn reports_round_trip_and_reject_unknown_kinds() {
        for r in [report(0, false), report(u64::MAX, false), report(42, true)] {
            assert_eq!(Report::decode(&r.encode()), Some(r));
        }
        assert_eq!(Report::decode(&[0u8; REPORT_BYTES]), None);
    }

    #[test]
    fn private_dirty_sums_the_lines_in_bytes() {
        let text = b"55d0-7ffd ---p 00000000 00:00 0 [rollup]\nRss: 9000 kB\n\
            Private_Clean: 12 kB\nPrivate_Dirty:      1536 kB\nSwap: 0 kB\n";
        assert_eq!(private_dirty_of(text), 1536 * 1024);
        assert_eq!(private_dirty_of(b""), 0);
        assert!(private_dirty_bytes() > 0, "this process has dirty pages");
    }

    #[test]
    fn the_pipe_yields_whole_reports_across_partial_reads() {
        let mut fds = [0; 2];
        // SAFETY: `fds` is a valid array of two descriptors for pipe2 to fill.
        assert_eq!(
            unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
            0
        );
        let write = |bytes: &[u8]| {
            // SAFETY: writes from a valid buffer to our own pipe.
            let n = unsafe { libc::write(fds[1], bytes.as_ptr().cast(), bytes.len()) };
            assert_eq!(n, bytes.len() as isize);
        };
        let mut pipe = ReportPipe::new(fds[0]);
        let mut got = Vec::new();
        pipe.drain(|r| got.push(r));
        assert!(got.is_empty(), "an empty pipe does not block");
        // More reports than one read takes, then one split in two.
        let sent: Vec<Report> = (0..REPORTS_PER_READ as u64 + 3)
            .map(|k| report(k, false))
            .collect();
        for r in &sent {
            write(&r.encode());
        }
        let last = report(99, true).encode();
        write(&last[..13]);
        pipe.drain(|r| got.push(r));
        assert_eq!(got, sent);
        write(&last[13..]);
        pipe.drain(|r| got.push(r));
        assert_eq!(got.last(), Some(&report(99, true)));
        assert_eq!(got.len(), sent.len() + 1);
        close(fds[1]);
        pipe.drain(|r| got.push(r));
        pipe.close();
    }
}
