//! Appending to the AOF through io_uring: a write linked to an fdatasync in one submission
//! (`appendfsync always`), or a write alone and an fdatasync later (`everysec`).
//!
//! Runs on the effects merger thread, which does nothing else while the AOF waits: the
//! ring is that thread's own (one per AOF file, 4 entries), not a shard's, so a slow disk
//! never stalls a shard's loop except where `always` asks the shard to wait.

use io_uring::{IoUring, opcode, squeue, types};
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

/// Entries of the writer's ring: a write and an fsync at most are in flight.
const AOF_RING_ENTRIES: u32 = 4;
/// The most bytes one write SQE carries (the kernel caps a write at 2 GiB - 4 KiB).
const AOF_WRITE_MAX_BYTES: usize = 1 << 30;

/// An append-only file and the ring that writes it.
pub struct AofFile {
    file: File,
    ring: Option<IoUring>,
    /// Bytes in the file (where the next write goes).
    pub len: u64,
}

impl AofFile {
    /// Opens `file` for appending at `len`; without io_uring (refused by the kernel) it
    /// falls back to plain `pwrite`/`fdatasync`.
    pub fn new(file: File, len: u64) -> Self {
        Self {
            file,
            ring: IoUring::new(AOF_RING_ENTRIES).ok(),
            len,
        }
    }

    /// Appends `buf`; with `sync`, fdatasyncs in the same submission (linked after the
    /// write). Returns once both completed.
    pub fn append(&mut self, mut buf: &[u8], sync: bool) -> io::Result<()> {
        while !buf.is_empty() {
            // A short write leaves the rest (and the sync) for the next round.
            let n = buf.len().min(AOF_WRITE_MAX_BYTES);
            let last = n == buf.len();
            let written = self.write_at(&buf[..n], sync && last)?;
            self.len += written as u64;
            buf = &buf[written..];
        }
        Ok(())
    }

    /// fdatasync alone.
    pub fn sync(&mut self) -> io::Result<()> {
        let Some(ring) = self.ring.as_mut() else {
            return self.file.sync_data();
        };
        let fsync = opcode::Fsync::new(types::Fd(self.file.as_raw_fd()))
            .flags(types::FsyncFlags::DATASYNC)
            .build()
            .user_data(2);
        push(ring, &fsync);
        let [_, fsync] = reap(ring, 1)?;
        check(fsync).map(|_| ())
    }

    /// One write (and maybe a linked fsync); the bytes written (short writes happen).
    fn write_at(&mut self, buf: &[u8], sync: bool) -> io::Result<usize> {
        let Some(ring) = self.ring.as_mut() else {
            use std::os::unix::fs::FileExt;
            let n = self.file.write_at(buf, self.len)?;
            if sync && n == buf.len() {
                self.file.sync_data()?;
            }
            return Ok(n);
        };
        let fd = types::Fd(self.file.as_raw_fd());
        let mut write = opcode::Write::new(fd, buf.as_ptr(), buf.len() as u32)
            .offset(self.len)
            .build()
            .user_data(1);
        if sync {
            write = write.flags(squeue::Flags::IO_LINK);
        }
        push(ring, &write);
        if sync {
            let fsync = opcode::Fsync::new(fd)
                .flags(types::FsyncFlags::DATASYNC)
                .build()
                .user_data(2);
            push(ring, &fsync);
        }
        let [write, fsync] = reap(ring, if sync { 2 } else { 1 })?;
        let n = check(write)?;
        if sync && n == buf.len() {
            // A short write cancels the linked fsync (-ECANCELED): the caller writes the
            // rest and syncs then.
            check(fsync)?;
        }
        Ok(n)
    }
}

#[expect(
    unsafe_code,
    reason = "the kernel reads the SQE's buffer after push returns"
)]
fn push(ring: &mut IoUring, entry: &squeue::Entry) {
    // SAFETY: a write entry points into the caller's buffer, which outlives the call that
    // pushed it: `append`/`sync` reap every completion (`reap`) before they return, so the
    // kernel is done with the buffer before the borrow ends.
    let pushed = unsafe { ring.submission().push(entry) };
    assert!(
        pushed.is_ok(),
        "the ring holds AOF_RING_ENTRIES, at most two are pending"
    );
}

fn check(res: i32) -> io::Result<usize> {
    if res < 0 {
        Err(io::Error::from_raw_os_error(-res))
    } else {
        Ok(res as usize)
    }
}

/// Submits and waits for `n` completions: their results by user data (1: write, 2: fsync).
fn reap(ring: &mut IoUring, n: usize) -> io::Result<[i32; 2]> {
    let mut res = [0, 0];
    let mut got = 0;
    while got < n {
        match ring.submit_and_wait(n - got) {
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINTR) => continue,
            Err(e) => return Err(e),
        }
        for cqe in ring.completion() {
            let slot = usize::from(cqe.user_data() != 1);
            res[slot] = cqe.result();
            got += 1;
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_land_at_the_end_with_and_without_sync() {
        let dir = std::env::temp_dir().join(format!("percore-aofw-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("a.aof");
        std::fs::write(&path, b"head").unwrap();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let mut w = AofFile::new(f, 4);
        w.append(b"-one", true).unwrap();
        w.append(b"-two", false).unwrap();
        w.sync().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"head-one-two");
        assert_eq!(w.len, 12);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
