//! The replication locks' order, checked (see `primary`'s module doc): the stream's sinks
//! lock, then the replication state, then the primary state. Each is taken through
//! [`Ranked::lock`]; in a debug build a thread that takes one while it holds it or one
//! after it in the order panics at once, so a path that could deadlock fails the first
//! test that runs it rather than the rare run that hits the race. A release build only
//! locks.

use std::sync::{Condvar, Mutex, MutexGuard, WaitTimeoutResult};
use std::time::Duration;

/// A lock's place in the order: a thread takes a lock only while every lock it holds has
/// a lower rank.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Rank {
    /// `propagate::Hub`'s sinks (the merger holds it while it calls the sinks).
    Sinks = 0,
    /// `replication::Shared::lock`.
    Replication = 1,
    /// `replication::primary::Primary`'s state.
    Primary = 2,
}

#[cfg(debug_assertions)]
thread_local! {
    /// The ranks this thread holds, one bit each.
    static HELD: std::cell::Cell<u8> = const { std::cell::Cell::new(0) };
}

/// A guard of a lock of rank `rank`: the rank is held until it drops.
pub struct Ranked<'a, T> {
    guard: Option<MutexGuard<'a, T>>,
    #[cfg(debug_assertions)]
    rank: Rank,
}

impl<'a, T> Ranked<'a, T> {
    /// Locks `m`, of rank `rank` (`what` names it in the poisoning panic).
    pub fn lock(m: &'a Mutex<T>, rank: Rank, what: &'static str) -> Self {
        #[cfg(not(debug_assertions))]
        let _ = rank;
        #[cfg(debug_assertions)]
        HELD.with(|h| {
            let bit = 1u8 << rank as u8;
            assert!(
                h.get() & !(bit - 1) == 0,
                "lock order: {what} ({rank:?}) taken while holding ranks {:#05b}",
                h.get()
            );
            h.set(h.get() | bit);
        });
        Self {
            guard: Some(m.lock().expect(what)),
            #[cfg(debug_assertions)]
            rank,
        }
    }

    /// Waits on `cv` with the lock released meanwhile (the rank stays held: the thread
    /// takes nothing while it waits).
    pub fn wait_timeout(mut self, cv: &Condvar, d: Duration) -> (Self, WaitTimeoutResult) {
        let guard = self.guard.take().expect("a held guard");
        let (guard, r) = cv.wait_timeout(guard, d).expect("lock poisoned");
        self.guard = Some(guard);
        (self, r)
    }
}

impl<T> std::ops::Deref for Ranked<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.guard.as_ref().expect("a held guard")
    }
}

impl<T> std::ops::DerefMut for Ranked<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.guard.as_mut().expect("a held guard")
    }
}

impl<T> Drop for Ranked<'_, T> {
    fn drop(&mut self) {
        // The lock first, then the rank.
        self.guard = None;
        #[cfg(debug_assertions)]
        HELD.with(|h| h.set(h.get() & !(1u8 << self.rank as u8)));
    }
}

#[cfg(all(test, debug_assertions))]
mod tests {
    use super::*;

    #[test]
    fn in_order_and_again_after_release() {
        let (a, b, c) = (Mutex::new(1), Mutex::new(2), Mutex::new(3));
        let ga = Ranked::lock(&a, Rank::Sinks, "a");
        let gc = Ranked::lock(&c, Rank::Primary, "c");
        drop(gc);
        let gb = Ranked::lock(&b, Rank::Replication, "b");
        let gc = Ranked::lock(&c, Rank::Primary, "c");
        assert_eq!(*ga + *gb + *gc, 6);
        drop((ga, gb, gc));
        let gc = Ranked::lock(&c, Rank::Primary, "c");
        drop(gc);
        let ga = Ranked::lock(&a, Rank::Sinks, "a");
        drop(ga);
    }

    #[test]
    #[should_panic(expected = "lock order: sinks (Sinks) taken while holding")]
    fn an_earlier_rank_under_a_later_one_panics() {
        let (p, s) = (Mutex::new(()), Mutex::new(()));
        let _p = Ranked::lock(&p, Rank::Primary, "primary");
        let _s = Ranked::lock(&s, Rank::Sinks, "sinks");
    }

    #[test]
    fn a_wait_keeps_the_rank() {
        let (m, cv) = (Mutex::new(0), Condvar::new());
        let g = Ranked::lock(&m, Rank::Primary, "m");
        let (g, r) = g.wait_timeout(&cv, Duration::from_millis(1));
        assert!(r.timed_out());
        assert_eq!(*g, 0);
        let taken = std::panic::catch_unwind(|| {
            let r = Mutex::new(());
            drop(Ranked::lock(&r, Rank::Replication, "r"));
        });
        assert!(taken.is_err(), "a lower rank under a waited-on guard");
        drop(g);
    }
}
