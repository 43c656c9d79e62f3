//! The snapshot writer as the fork snapshot uses it: a fork child creates its own
//! SnapshotFile (own ring, own buffers) while the parent's writer, writes in flight at the
//! moment of the fork, carries on untouched.

use std::fs;
use std::path::Path;

use percore_persist::file::{SnapshotFile, WriteOptions};

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 11) as u8 ^ seed)
        .collect()
}

fn opts() -> WriteOptions {
    WriteOptions {
        buffer_bytes: 64 * 1024,
        queue_depth: 4,
        ..WriteOptions::default()
    }
}

/// What the fork child runs: exit code 0 on success, never returns into the test harness.
fn child_writes(dir: &Path, data: &[u8]) -> i32 {
    let Ok(mut file) = SnapshotFile::create(dir, "temp-child.rdb", &opts()) else {
        return 2;
    };
    if file.write(data).is_err() {
        return 3;
    }
    match file.finish() {
        Ok(stats) if stats.bytes == data.len() as u64 => 0,
        Ok(_) => 4,
        Err(_) => 5,
    }
}

/// Forks; the child runs `child` and `_exit`s with its result (101 if it panics), without
/// running destructors for anything it inherited. Returns the child's pid.
#[expect(unsafe_code, reason = "fork and _exit")]
fn fork_child(child: impl FnOnce() -> i32) -> libc::pid_t {
    // SAFETY: the child only runs `child`, which allocates (glibc resets malloc's locks at
    // fork) and makes system calls, then leaves with _exit: no destructor of the parent's
    // state, no other thread's lock, no return into the test harness.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid == 0 {
        let code = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child)).unwrap_or(101);
        // SAFETY: _exit is async-signal-safe and never returns.
        unsafe { libc::_exit(code) };
    }
    pid
}

#[expect(unsafe_code, reason = "waitpid with a pointer to a local")]
fn wait_exit_code(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    // SAFETY: `status` is a live local the kernel writes one int to.
    let reaped = unsafe { libc::waitpid(pid, &raw mut status, 0) };
    assert_eq!(reaped, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status), "child died: status {status:#x}");
    libc::WEXITSTATUS(status)
}

#[test]
fn fork_child_writes_with_its_own_ring_while_the_parent_writes_on() {
    let dir = tempfile::tempdir().unwrap();
    let parent_data = pattern(3 << 20, 1);
    let child_data = pattern((5 << 20) + 123, 2);
    let (first, second) = parent_data.split_at(parent_data.len() / 2);

    let mut parent = SnapshotFile::create(dir.path(), "temp-parent.rdb", &opts()).unwrap();
    parent.write(first).unwrap();
    let pid = fork_child(|| child_writes(dir.path(), &child_data));
    parent.write(second).unwrap();
    parent.finish().unwrap();

    assert_eq!(wait_exit_code(pid), 0);
    assert!(fs::read(dir.path().join("temp-parent.rdb")).unwrap() == parent_data);
    assert!(fs::read(dir.path().join("temp-child.rdb")).unwrap() == child_data);
}
