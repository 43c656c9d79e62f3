//! The write gate: keeps barriers (snapshot cuts, cancels, whole-keyspace commands) out of
//! the middle of a write that spans shards.
//!
//! A multi-shard write (a cross-shard RENAME, RENAMENX, COPY or MSETNX, whose steps hop
//! from shard to shard; an MSET, DEL or UNLINK whose keys live on several shards, whose
//! parts travel as messages) changes one shard, then another after a trip through the
//! mail. A barrier that parked every shard in between would show a state no client could
//! observe (a renamed key under neither name, half an MSET). So such a write **enters**
//! the gate before its first part runs, counting its parts, and each part **leaves** once
//! applied on its shard. A shard that wants a barrier first **closes** the gate, then
//! mails the barrier only once the count is back to zero, running its loop meanwhile;
//! a write that finds the gate closed leaves at once and waits, unparsed, in its
//! connection's input until the barrier is over (see `shard::dispatch`).
//!
//! Single-shard requests never touch it. Two atomics per multi-shard write: `enter`
//! (increment, then look at the flag) and `leave` per part; `close` sets the flag, then
//! reads the count. Both sides use sequentially consistent operations, so either the
//! writer sees the gate closed or the barrier's shard sees the writer's count (Dekker).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// How often a shard waiting for the writes in flight to drain, or a shard holding
/// writes back at a closed gate, runs its loop again.
pub const GATE_POLL: Duration = Duration::from_micros(20);

/// See the module documentation.
#[derive(Debug, Default)]
pub struct WriteGate {
    /// Parts of multi-shard writes entered and not yet applied.
    in_flight: AtomicUsize,
    closed: AtomicBool,
}

impl WriteGate {
    /// A write of `parts` parts wants to start: true when it may (its parts are counted,
    /// each must [`leave`](Self::leave)), false when the gate is closed (nothing counted).
    pub fn enter(&self, parts: usize) -> bool {
        self.in_flight.fetch_add(parts, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            self.leave(parts);
            return false;
        }
        true
    }

    /// `parts` parts were applied on this shard.
    pub fn leave(&self, parts: usize) {
        let before = self.in_flight.fetch_sub(parts, Ordering::SeqCst);
        assert!(before >= parts, "write gate: more parts left than entered");
    }

    /// No new multi-shard write may start until [`open`](Self::open).
    pub fn close(&self) {
        self.closed.store(true, Ordering::SeqCst);
    }

    pub fn open(&self) {
        self.closed.store(false, Ordering::SeqCst);
    }

    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Closed and no part in flight: a barrier may park the shards now.
    #[must_use]
    pub fn drained(&self) -> bool {
        self.in_flight.load(Ordering::SeqCst) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_closed_gate_refuses_and_counts_nothing() {
        let g = WriteGate::default();
        assert!(g.enter(2));
        g.close();
        assert!(!g.drained());
        assert!(!g.enter(1));
        g.leave(1);
        assert!(!g.drained());
        g.leave(1);
        assert!(g.drained());
        g.open();
        assert!(g.enter(1));
        g.leave(1);
        assert!(g.drained());
    }

    /// Writers racing a closer: once the closer sees the count drained, no writer is
    /// inside, and none gets in until the gate opens.
    #[test]
    fn nothing_is_inside_once_drained() {
        let g = Arc::new(WriteGate::default());
        let inside = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let writers: Vec<_> = (0..3)
            .map(|_| {
                let (g, inside, stop) = (Arc::clone(&g), Arc::clone(&inside), Arc::clone(&stop));
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        if g.enter(1) {
                            inside.fetch_add(1, Ordering::SeqCst);
                            std::hint::spin_loop();
                            inside.fetch_sub(1, Ordering::SeqCst);
                            g.leave(1);
                        }
                    }
                })
            })
            .collect();
        for _ in 0..2000 {
            g.close();
            while !g.drained() {
                std::hint::spin_loop();
            }
            assert_eq!(inside.load(Ordering::SeqCst), 0);
            std::hint::spin_loop();
            assert_eq!(inside.load(Ordering::SeqCst), 0);
            g.open();
        }
        stop.store(true, Ordering::Relaxed);
        for w in writers {
            w.join().expect("writer");
        }
    }
}
