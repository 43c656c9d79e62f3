//! The snapshot file writer: exact round trips (O_DIRECT and buffered), the O_DIRECT
//! fallback, injected and real ENOSPC, install, start-up cleanup, and the forkless
//! ChunkWriter (ordering, checksum trailer, cancel, failure).

use std::fs::{self, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use percore_persist::crc64::crc64;
use percore_persist::file::{
    ALLOCATE_AHEAD_BYTES, ChunkWriter, SnapshotFile, TrySendError, WriteOptions, install,
    measure_direct_write_throughput, remove_stale_temp_files, temp_file_name,
};
use proptest::prelude::*;

const SMALL_BUFFER_BYTES: usize = 16 * 1024;

fn small(direct: bool) -> WriteOptions {
    WriteOptions {
        direct,
        buffer_bytes: SMALL_BUFFER_BYTES,
        queue_depth: 2,
        ..WriteOptions::default()
    }
}

/// Bytes that differ at every offset modulo a large odd period, so a misplaced block shows.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i as u32).wrapping_mul(2_654_435_761) >> 13) as u8 ^ seed)
        .collect()
}

/// Whether `dir`'s filesystem accepts O_DIRECT.
fn accepts_direct(dir: &Path) -> bool {
    let probe = dir.join("probe-direct");
    let opened = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .custom_flags(libc::O_DIRECT)
        .open(&probe);
    let _ = fs::remove_file(&probe);
    match opened {
        Ok(_) => true,
        Err(err) if err.raw_os_error() == Some(libc::EINVAL) => false,
        Err(err) => panic!("probe {}: {err}", probe.display()),
    }
}

/// Writes `data` in pieces of the given sizes (cycled), the rest in one piece.
fn write_in_pieces(file: &mut SnapshotFile, data: &[u8], pieces: &[usize]) -> io::Result<()> {
    let mut rest = data;
    for &piece in pieces.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(piece.clamp(1, rest.len()));
        file.write(head)?;
        rest = tail;
    }
    Ok(())
}

fn round_trip(dir: &Path, opts: &WriteOptions, data: &[u8], pieces: &[usize]) {
    let name = temp_file_name(7);
    let mut file = SnapshotFile::create(dir, &name, opts).unwrap();
    let direct = file.is_direct();
    assert_eq!(direct, opts.direct && accepts_direct(dir));
    write_in_pieces(&mut file, data, pieces).unwrap();
    assert_eq!(file.bytes_written(), data.len() as u64);
    let stats = file.finish().unwrap();
    assert_eq!(stats.bytes, data.len() as u64);
    assert_eq!(stats.direct, direct);
    let written = fs::read(dir.join(&name)).unwrap();
    assert_eq!(written.len(), data.len(), "length, direct={direct}");
    assert!(written == data, "content differs, direct={direct}");
    fs::remove_file(dir.join(&name)).unwrap();
}

fn dir_entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

#[test]
fn round_trips_exactly_direct_and_buffered() {
    let dir = tempfile::tempdir().unwrap();
    let b = SMALL_BUFFER_BYTES;
    let sizes = [
        0,
        1,
        4095,
        4096,
        4097,
        b - 1,
        b,
        b + 1,
        5 * b + 4097,
        3_000_001,
    ];
    for direct in [true, false] {
        for &len in &sizes {
            let data = pattern(len, len as u8);
            round_trip(dir.path(), &small(direct), &data, &[len.max(1)]);
            round_trip(
                dir.path(),
                &small(direct),
                &data,
                &[1, 4095, 7, 20_000, 333],
            );
        }
    }
}

#[test]
fn round_trips_a_few_megabytes_with_default_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(12 * 1024 * 1024 + 12_345, 0x5a);
    for direct in [true, false] {
        let opts = WriteOptions {
            direct,
            ..WriteOptions::default()
        };
        round_trip(dir.path(), &opts, &data, &[65_536, 100_000, 3]);
    }
}

#[test]
fn short_writes_are_resubmitted_for_the_remainder() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(10 * SMALL_BUFFER_BYTES + 999, 3);
    for direct in [true, false] {
        let opts = WriteOptions {
            max_write_op_bytes: Some(5000),
            ..small(direct)
        };
        let name = temp_file_name(1);
        let mut file = SnapshotFile::create(dir.path(), &name, &opts).unwrap();
        file.write(&data).unwrap();
        let stats = file.finish().unwrap();
        // Every 16 KiB buffer goes out in several operations.
        assert!(stats.write_ops >= 4 * 10, "write_ops {}", stats.write_ops);
        assert_eq!(fs::read(dir.path().join(&name)).unwrap(), data);
    }
}

/// Where io_uring is refused the writer falls back to plain `pwrite`s: the same bytes, the
/// same resubmission of short writes, the same sticky ENOSPC that leaves no file.
#[test]
fn plain_writes_round_trip_resubmit_and_fail_as_the_ring_does() {
    let dir = tempfile::tempdir().unwrap();
    for direct in [true, false] {
        let plain = WriteOptions {
            plain_writes: true,
            ..small(direct)
        };
        for len in [
            0,
            1,
            4097,
            SMALL_BUFFER_BYTES,
            5 * SMALL_BUFFER_BYTES + 4097,
        ] {
            let data = pattern(len, len as u8);
            round_trip(dir.path(), &plain, &data, &[1, 4095, 7, 20_000, 333]);
        }
        let data = pattern(10 * SMALL_BUFFER_BYTES + 999, 3);
        let name = temp_file_name(1);
        let short = WriteOptions {
            max_write_op_bytes: Some(5000),
            ..plain.clone()
        };
        let mut file = SnapshotFile::create(dir.path(), &name, &short).unwrap();
        file.write(&data).unwrap();
        let stats = file.finish().unwrap();
        assert!(stats.write_ops >= 4 * 10, "write_ops {}", stats.write_ops);
        assert_eq!(fs::read(dir.path().join(&name)).unwrap(), data);
        fs::remove_file(dir.path().join(&name)).unwrap();
        for limit in [0, 5000, 2 * SMALL_BUFFER_BYTES as u64 + 4096 + 17] {
            let opts = WriteOptions {
                fail_after_bytes: Some(limit),
                ..plain.clone()
            };
            expect_enospc(write_and_finish(dir.path(), "temp-9.rdb", &opts, &data));
            assert_eq!(
                dir_entries(dir.path()),
                Vec::<String>::new(),
                "limit {limit}"
            );
        }
    }
}

#[test]
fn o_direct_falls_back_where_refused() {
    // /dev/shm: tmpfs refuses O_DIRECT before Linux 6.6 and accepts it since. Either way the
    // content must be right and is_direct must tell the truth.
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        let dir = tempfile::tempdir_in(shm).unwrap();
        let data = pattern(3 * SMALL_BUFFER_BYTES + 77, 9);
        round_trip(dir.path(), &small(true), &data, &[1000]);
        if accepts_direct(dir.path()) {
            println!("notice: tmpfs accepts O_DIRECT on this kernel; fallback checked on ramfs");
        }
    }
    // ramfs refuses O_DIRECT on every kernel; mounting it needs root.
    let Some(mount) = Mount::new("ramfs", "ramfs") else {
        return;
    };
    assert!(!accepts_direct(&mount.path));
    let data = pattern(3 * SMALL_BUFFER_BYTES + 77, 11);
    let name = temp_file_name(2);
    let mut file = SnapshotFile::create(&mount.path, &name, &small(true)).unwrap();
    assert!(!file.is_direct());
    file.write(&data).unwrap();
    let stats = file.finish().unwrap();
    assert!(!stats.direct);
    assert_eq!(fs::read(mount.path.join(&name)).unwrap(), data);
}

fn expect_enospc(result: io::Result<()>) {
    let err = result.expect_err("the write must fail");
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
}

/// Writes `data` and finishes; returns the first error, having aborted.
fn write_and_finish(dir: &Path, name: &str, opts: &WriteOptions, data: &[u8]) -> io::Result<()> {
    let mut file = SnapshotFile::create(dir, name, opts)?;
    match write_in_pieces(&mut file, data, &[10_000]) {
        Ok(()) => file.finish().map(|_| ()),
        Err(err) => {
            // Sticky: a second write says the same.
            let again = file.write(b"x").unwrap_err();
            assert_eq!(again.raw_os_error(), err.raw_os_error());
            file.abort();
            Err(err)
        }
    }
}

#[test]
fn injected_enospc_fails_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(8 * SMALL_BUFFER_BYTES + 100, 1);
    for direct in [true, false] {
        for limit in [
            0,
            1,
            5000,
            2 * SMALL_BUFFER_BYTES as u64 + 4096 + 17,
            8 * SMALL_BUFFER_BYTES as u64 + 50,
        ] {
            let opts = WriteOptions {
                fail_after_bytes: Some(limit),
                ..small(direct)
            };
            let name = temp_file_name(limit);
            expect_enospc(write_and_finish(dir.path(), &name, &opts, &data));
            assert_eq!(
                dir_entries(dir.path()),
                Vec::<String>::new(),
                "limit {limit}"
            );
        }
        // A limit past the end (padding included) never triggers.
        let opts = WriteOptions {
            fail_after_bytes: Some(9 * SMALL_BUFFER_BYTES as u64),
            ..small(direct)
        };
        write_and_finish(dir.path(), "temp-ok.rdb", &opts, &data).unwrap();
        assert_eq!(fs::read(dir.path().join("temp-ok.rdb")).unwrap(), data);
        fs::remove_file(dir.path().join("temp-ok.rdb")).unwrap();
    }
}

#[test]
fn dropping_an_unfinished_file_aborts_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut file = SnapshotFile::create(dir.path(), "temp-9.rdb", &small(true)).unwrap();
    file.write(&pattern(5 * SMALL_BUFFER_BYTES + 3, 0)).unwrap();
    drop(file);
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn install_replaces_the_final_file_only_on_success() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    fs::write(d.join("dump.rdb"), b"old snapshot").unwrap();

    // No temp file: install fails, the old snapshot stays.
    assert!(install(d, "temp-1.rdb", "dump.rdb").is_err());
    assert_eq!(fs::read(d.join("dump.rdb")).unwrap(), b"old snapshot");

    // A failed snapshot never reaches install; the old snapshot stays.
    let opts = WriteOptions {
        fail_after_bytes: Some(0),
        ..small(true)
    };
    expect_enospc(write_and_finish(d, "temp-1.rdb", &opts, b"new snapshot"));
    assert_eq!(dir_entries(d), ["dump.rdb"]);

    let mut file = SnapshotFile::create(d, "temp-1.rdb", &small(true)).unwrap();
    file.write(b"new snapshot").unwrap();
    file.finish().unwrap();
    install(d, "temp-1.rdb", "dump.rdb").unwrap();
    assert_eq!(fs::read(d.join("dump.rdb")).unwrap(), b"new snapshot");
    assert_eq!(dir_entries(d), ["dump.rdb"]);
}

#[test]
fn remove_stale_temp_files_removes_only_temp_rdb_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    for name in [
        "temp-1.rdb",
        "temp-4242.rdb",
        "temp-direct-probe-7.rdb",
        "dump.rdb",
        "temp-1.rdb.bak",
        "temp-.rdb",
        "mytemp-1.rdb",
        "appendonly.aof",
    ] {
        fs::write(d.join(name), b"x").unwrap();
    }
    fs::create_dir(d.join("temp-dir.rdb")).unwrap();
    let mut removed = remove_stale_temp_files(d).unwrap();
    removed.sort();
    let expected: Vec<PathBuf> = ["temp-1.rdb", "temp-4242.rdb", "temp-direct-probe-7.rdb"]
        .iter()
        .map(|n| d.join(n))
        .collect();
    assert_eq!(removed, expected);
    assert_eq!(
        dir_entries(d),
        [
            "appendonly.aof",
            "dump.rdb",
            "mytemp-1.rdb",
            "temp-.rdb",
            "temp-1.rdb.bak",
            "temp-dir.rdb"
        ]
    );
    assert!(remove_stale_temp_files(d).unwrap().is_empty());
}

#[test]
fn measure_leaves_no_scratch_file() {
    let dir = tempfile::tempdir().unwrap();
    let rate = measure_direct_write_throughput(dir.path(), 8 << 20, &small(true)).unwrap();
    assert!(rate > 0.0);
    assert!(dir_entries(dir.path()).is_empty());
}

/// A chunk that says who sent it: producer id, sequence number, length, then filler.
fn tagged_chunk(mut buf: Vec<u8>, producer: u8, seq: u32, len: usize) -> Vec<u8> {
    buf.clear();
    buf.push(producer);
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(&(len as u32).to_le_bytes());
    buf.resize(9 + len, producer ^ seq as u8);
    buf
}

fn send_until_accepted(writer: &ChunkWriter, mut chunk: Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match writer.try_send(chunk) {
            Ok(()) => return,
            Err(TrySendError::Full(back)) => {
                assert!(Instant::now() < deadline, "writer stalled");
                chunk = back;
                std::thread::yield_now();
            }
            Err(TrySendError::Closed(_)) => panic!("closed while sending"),
        }
    }
}

#[test]
fn chunk_writer_writes_chunks_in_arrival_order_with_crc_trailer() {
    const CHUNKS_PER_PRODUCER: u32 = 500;
    let dir = tempfile::tempdir().unwrap();
    let name = temp_file_name(3);
    let file = SnapshotFile::create(dir.path(), &name, &small(true)).unwrap();
    let writer = ChunkWriter::spawn(file).unwrap();
    std::thread::scope(|scope| {
        for producer in 0..2u8 {
            let writer = &writer;
            scope.spawn(move || {
                for seq in 0..CHUNKS_PER_PRODUCER {
                    let len = (seq as usize * 7919 + usize::from(producer) * 13) % 40_000;
                    let buf = writer.recycle().unwrap_or_default();
                    send_until_accepted(writer, tagged_chunk(buf, producer, seq, len));
                }
            });
        }
    });
    let stats = writer.finish(true).unwrap();
    let content = fs::read(dir.path().join(&name)).unwrap();
    assert_eq!(stats.bytes, content.len() as u64);
    let (body, trailer) = content.split_at(content.len() - 8);
    assert_eq!(u64::from_le_bytes(trailer.try_into().unwrap()), crc64(body));

    // The body is whole chunks back to back; each producer's in its own order.
    let mut next_seq = [0u32; 2];
    let mut rest = body;
    while !rest.is_empty() {
        let producer = rest[0];
        let seq = u32::from_le_bytes(rest[1..5].try_into().unwrap());
        let len = u32::from_le_bytes(rest[5..9].try_into().unwrap()) as usize;
        assert_eq!(seq, next_seq[usize::from(producer)]);
        next_seq[usize::from(producer)] += 1;
        let expected = tagged_chunk(Vec::new(), producer, seq, len);
        assert_eq!(&rest[..expected.len()], &expected[..]);
        rest = &rest[expected.len()..];
    }
    assert_eq!(next_seq, [CHUNKS_PER_PRODUCER; 2]);
}

#[test]
fn chunk_writer_close_then_poll_then_finish() {
    let dir = tempfile::tempdir().unwrap();
    let name = temp_file_name(4);
    let file = SnapshotFile::create(dir.path(), &name, &small(false)).unwrap();
    let writer = ChunkWriter::spawn(file).unwrap();
    let sender = writer.sender();
    sender.try_send(b"REDIS0010".to_vec()).unwrap();
    sender.try_send(vec![0xff]).unwrap();
    writer.close(false);
    assert!(matches!(
        sender.try_send(b"late".to_vec()),
        Err(TrySendError::Closed(_))
    ));
    assert!(sender.is_closed());
    let deadline = Instant::now() + Duration::from_secs(30);
    while !writer.is_done() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    // The first close wins: no checksum.
    let stats = writer.finish(true).unwrap();
    assert_eq!(stats.bytes, 18);
    assert_eq!(
        fs::read(dir.path().join(&name)).unwrap(),
        b"REDIS0010\xff\0\0\0\0\0\0\0\0"
    );
}

#[test]
fn chunk_writer_recycles_buffers() {
    let dir = tempfile::tempdir().unwrap();
    let file = SnapshotFile::create(dir.path(), "temp-5.rdb", &small(true)).unwrap();
    let writer = ChunkWriter::spawn(file).unwrap();
    writer.try_send(Vec::with_capacity(1000)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let recycled = loop {
        if let Some(buf) = writer.recycle() {
            break buf;
        }
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    };
    assert!(recycled.is_empty());
    assert!(recycled.capacity() >= 1000);
    writer.finish(true).unwrap();
}

#[test]
fn chunk_writer_cancel_unlinks() {
    let dir = tempfile::tempdir().unwrap();
    let file = SnapshotFile::create(dir.path(), "temp-6.rdb", &small(true)).unwrap();
    let writer = ChunkWriter::spawn(file).unwrap();
    let sender = writer.sender();
    for _ in 0..10 {
        let _ = sender.try_send(pattern(50_000, 1));
    }
    writer.cancel();
    assert!(sender.is_closed());
    assert!(matches!(
        sender.try_send(vec![1]),
        Err(TrySendError::Closed(_))
    ));
    assert!(dir_entries(dir.path()).is_empty());

    // The shared flag, set from elsewhere, does the same; finish then reports it.
    let file = SnapshotFile::create(dir.path(), "temp-7.rdb", &small(true)).unwrap();
    let writer = ChunkWriter::spawn(file).unwrap();
    writer.try_send(pattern(50_000, 2)).unwrap();
    writer.cancel_flag().store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !writer.is_done() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    let err = writer.finish(true).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::Interrupted);
    assert!(dir_entries(dir.path()).is_empty());

    // Dropping an unfinished writer cancels it too.
    let file = SnapshotFile::create(dir.path(), "temp-8.rdb", &small(true)).unwrap();
    drop(ChunkWriter::spawn(file).unwrap());
    assert!(dir_entries(dir.path()).is_empty());
}

#[test]
fn chunk_writer_surfaces_write_errors_and_closes() {
    let dir = tempfile::tempdir().unwrap();
    let opts = WriteOptions {
        fail_after_bytes: Some(100_000),
        ..small(true)
    };
    let file = SnapshotFile::create(dir.path(), "temp-9.rdb", &opts).unwrap();
    let writer = ChunkWriter::spawn(file).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline);
        match writer.try_send(pattern(10_000, 3)) {
            Ok(()) | Err(TrySendError::Full(_)) => std::thread::yield_now(),
            Err(TrySendError::Closed(_)) => break,
        }
    }
    let err = writer.finish(true).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
    assert!(dir_entries(dir.path()).is_empty());
}

/// A filesystem mounted on a fresh directory for one test, unmounted on drop. `None`, with a
/// notice, when mounting is not possible (not root, no CAP_SYS_ADMIN).
struct Mount {
    path: PathBuf,
    _parent: tempfile::TempDir,
}

impl Mount {
    fn new(fstype: &str, options: &str) -> Option<Mount> {
        // `id -u` rather than geteuid(): keeps this file free of unsafe.
        let uid = Command::new("id").arg("-u").output().ok()?;
        if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
            println!("notice: not root, skipping the {fstype} mount test");
            return None;
        }
        let parent = tempfile::tempdir().ok()?;
        let path = parent.path().join("mnt");
        fs::create_dir(&path).ok()?;
        let status = Command::new("mount")
            .args(["-t", fstype, "-o", options, fstype])
            .arg(&path)
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            println!("notice: cannot mount {fstype}, skipping");
            return None;
        }
        Some(Mount {
            path,
            _parent: parent,
        })
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.path).status();
    }
}

#[test]
fn real_enospc_on_a_full_filesystem() {
    let Some(mount) = Mount::new("tmpfs", "size=1m") else {
        return;
    };
    for direct in [true, false] {
        let opts = WriteOptions {
            buffer_bytes: 64 * 1024,
            ..small(direct)
        };
        let data = pattern(4 << 20, 5);
        expect_enospc(write_and_finish(&mount.path, "temp-10.rdb", &opts, &data));
        assert!(dir_entries(&mount.path).is_empty());
        // The space is back: a small snapshot fits.
        write_and_finish(&mount.path, "temp-11.rdb", &opts, &data[..100_000]).unwrap();
        assert_eq!(
            fs::read(mount.path.join("temp-11.rdb")).unwrap(),
            &data[..100_000]
        );
        fs::remove_file(mount.path.join("temp-11.rdb")).unwrap();
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_split_round_trips(
        len in 0usize..200_000,
        pieces in proptest::collection::vec(1usize..50_000, 1..8),
        direct in any::<bool>(),
        depth in 1usize..4,
        split in proptest::option::of(1usize..20_000),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let opts = WriteOptions {
            direct,
            buffer_bytes: 8192,
            queue_depth: depth,
            max_write_op_bytes: split,
            ..WriteOptions::default()
        };
        round_trip(dir.path(), &opts, &pattern(len, len as u8), &pieces);
    }
}

#[test]
fn chunk_writer_close_races_producers_without_losing_accepted_chunks() {
    for round in 0..20u64 {
        let dir = tempfile::tempdir().unwrap();
        let name = temp_file_name(round);
        let file = SnapshotFile::create(dir.path(), &name, &small(round % 2 == 0)).unwrap();
        let writer = ChunkWriter::spawn(file).unwrap();
        let accepted: Vec<u32> = std::thread::scope(|scope| {
            let producers: Vec<_> = (0..2u8)
                .map(|producer| {
                    let sender = writer.sender();
                    scope.spawn(move || {
                        let mut seq = 0u32;
                        let mut chunk = tagged_chunk(Vec::new(), producer, seq, 100);
                        loop {
                            match sender.try_send(chunk) {
                                Ok(()) => {
                                    seq += 1;
                                    let buf = sender.recycle().unwrap_or_default();
                                    chunk = tagged_chunk(buf, producer, seq, 100);
                                }
                                Err(TrySendError::Full(back)) => chunk = back,
                                Err(TrySendError::Closed(_)) => return seq,
                            }
                        }
                    })
                })
                .collect();
            std::thread::sleep(Duration::from_millis(round % 5));
            writer.close(true);
            producers.into_iter().map(|p| p.join().unwrap()).collect()
        });
        writer.finish(true).unwrap();
        let content = fs::read(dir.path().join(&name)).unwrap();
        let (body, trailer) = content.split_at(content.len() - 8);
        assert_eq!(u64::from_le_bytes(trailer.try_into().unwrap()), crc64(body));
        let mut seen = [0u32; 2];
        for chunk in body.chunks(109) {
            let producer = usize::from(chunk[0]);
            assert_eq!(
                u32::from_le_bytes(chunk[1..5].try_into().unwrap()),
                seen[producer]
            );
            seen[producer] += 1;
        }
        assert_eq!(seen.to_vec(), accepted, "round {round}");
    }
}

/// An O_DIRECT file is allocated `ALLOCATE_AHEAD_BYTES` ahead of its writes (so no write
/// extends it; see file.rs "Allocating ahead") and trimmed to its length by `finish`.
#[test]
fn direct_files_are_allocated_ahead_and_trimmed() {
    let dir = tempfile::tempdir().unwrap();
    if !accepts_direct(dir.path()) {
        println!("notice: the temp dir refuses O_DIRECT; nothing is allocated ahead there");
        return;
    }
    let name = temp_file_name(5);
    let path = dir.path().join(&name);
    let mut file = SnapshotFile::create(dir.path(), &name, &small(true)).unwrap();
    let data = pattern(5 * SMALL_BUFFER_BYTES + 123, 3);
    file.write(&data).unwrap();
    let during = fs::metadata(&path).unwrap().len();
    if during != ALLOCATE_AHEAD_BYTES {
        // fallocate unsupported: the writes extend the file instead.
        assert!(during <= data.len() as u64, "{during}");
        println!("notice: fallocate refused here; the file grows by its writes");
    }
    file.finish().unwrap();
    assert_eq!(fs::read(&path).unwrap(), data);
}
