//! Cross-shard mailbox round trip: one thread sends a batch to another through the
//! shards' inboxes and waits for the batch to come back, as a request and its reply do
//! between two shards (the io_uring wake-up is not part of this measure).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use percore_net::mailbox::{Mailboxes, Outbox};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn round_trip(c: &mut Criterion) {
    let mut group = c.benchmark_group("mailbox");
    for batch in [1usize, 16] {
        let boxes = Arc::new(Mailboxes::<u64>::new(2));
        let stop = Arc::new(AtomicBool::new(false));
        // Shard 1 echoes every message back to shard 0.
        let echo = {
            let boxes = Arc::clone(&boxes);
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut out = Outbox::new(2);
                while !stop.load(Ordering::Relaxed) {
                    boxes.clear_notified(1);
                    while let Some(batch) = boxes.pop(1) {
                        for m in batch {
                            out.send(0, m);
                        }
                    }
                    out.flush(&boxes, |_| {});
                    std::hint::spin_loop();
                }
            })
        };
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("round_trip_batch_{batch}"), |b| {
            let mut out = Outbox::new(2);
            b.iter(|| {
                for i in 0..batch {
                    out.send(1, i as u64);
                }
                out.flush(&boxes, |_| {});
                let mut got = 0;
                while got < batch {
                    boxes.clear_notified(0);
                    while let Some(batch) = boxes.pop(0) {
                        for m in batch {
                            black_box(m);
                            got += 1;
                        }
                    }
                }
            });
        });
        stop.store(true, Ordering::Relaxed);
        echo.join().expect("echo thread");
    }
    group.finish();
}

criterion_group!(benches, round_trip);
criterion_main!(benches);
