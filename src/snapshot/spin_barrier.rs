//! The snapshot barrier's rendezvous: a reusable barrier whose waiters spin for a short
//! while before they sleep.
//!
//! `std::sync::Barrier` puts every early arrival to sleep on a futex, so the last arrival
//! must wake it, and on a VM an idle vCPU takes a host round trip to wake (hundreds of
//! µs here). Shards meet at a snapshot barrier within microseconds of each other when
//! they are busy, so the waiters spin first ([`SPIN_LIMIT`]) and sleep only when a party
//! is late (a shard descheduled, a long fork at the release barrier).

use std::hint;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long a waiter spins before it sleeps.
pub const SPIN_LIMIT: Duration = Duration::from_millis(2);
/// Spins between two looks at the clock.
const SPINS_PER_CLOCK_READ: u32 = 256;

#[derive(Debug)]
pub struct SpinBarrier {
    parties: usize,
    arrived: AtomicUsize,
    /// Bumped by the last arrival of each round; waiters leave when it moves.
    generation: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
}

impl SpinBarrier {
    /// A barrier for `parties` threads (at least 1).
    pub fn new(parties: usize) -> Self {
        Self {
            parties: parties.max(1),
            arrived: AtomicUsize::new(0),
            generation: AtomicUsize::new(0),
            lock: Mutex::new(()),
            wake: Condvar::new(),
        }
    }

    /// Blocks until all parties have called `wait` in this round. Everything a party did
    /// before its `wait` is visible to every party after it. Returns true for one party
    /// per round (the last to arrive).
    pub fn wait(&self) -> bool {
        // The generation cannot move before this thread arrives, so this is this round's.
        let generation = self.generation.load(Ordering::Acquire);
        if self.arrived.fetch_add(1, Ordering::AcqRel) + 1 == self.parties {
            // Everyone else waits for the generation to move: reset for the next round
            // first, then release (under the lock, so a sleeper cannot miss the notify).
            self.arrived.store(0, Ordering::Relaxed);
            let guard = self.lock.lock().expect("barrier lock");
            self.generation
                .store(generation.wrapping_add(1), Ordering::Release);
            drop(guard);
            self.wake.notify_all();
            return true;
        }
        let released = || self.generation.load(Ordering::Acquire) != generation;
        let started = Instant::now();
        let mut spins = 0u32;
        while !released() {
            hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(SPINS_PER_CLOCK_READ) && started.elapsed() >= SPIN_LIMIT {
                let guard = self.lock.lock().expect("barrier lock");
                let _guard = self
                    .wake
                    .wait_while(guard, |()| !released())
                    .expect("barrier lock");
                break;
            }
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicU64;

    /// Rounds of a 3-party barrier: nobody leaves a round before everyone wrote its
    /// part of it, one leader per round; a late party (sleeping past the spin limit)
    /// still releases the others.
    #[test]
    fn rounds_are_separated_and_late_parties_wake_sleepers() {
        const PARTIES: usize = 3;
        const ROUNDS: u64 = 200;
        let barrier = Arc::new(SpinBarrier::new(PARTIES));
        let slots: Arc<Vec<AtomicU64>> =
            Arc::new((0..PARTIES).map(|_| AtomicU64::new(0)).collect());
        let leaders = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..PARTIES)
            .map(|me| {
                let (barrier, slots, leaders) = (
                    Arc::clone(&barrier),
                    Arc::clone(&slots),
                    Arc::clone(&leaders),
                );
                std::thread::spawn(move || {
                    for round in 1..=ROUNDS {
                        if me == 0 && round % 50 == 0 {
                            std::thread::sleep(SPIN_LIMIT * 2);
                        }
                        slots[me].store(round, Ordering::Relaxed);
                        if barrier.wait() {
                            leaders.fetch_add(1, Ordering::Relaxed);
                        }
                        for s in slots.iter() {
                            let seen = s.load(Ordering::Relaxed);
                            assert!(seen >= round, "party {me} left round {round} early");
                        }
                        // Nobody starts the next round until everyone checked this one.
                        barrier.wait();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("party panicked");
        }
        assert_eq!(leaders.load(Ordering::Relaxed), ROUNDS);
    }
}
