//! Cross-core mailboxes: one bounded lock-free queue per shard, filled by the other shards in
//! batches, with at most one wake-up per batch.
//!
//! A sender collects messages per destination during a loop iteration ([`Outbox`]) and pushes
//! them at the end of it as one queue element (a `Vec` of messages), so the cross-core
//! queue operations and cache-line transfers are paid per batch, not per message. It then wakes the destination only if nobody has since the
//! destination last looked (`notified` flag), with an `IORING_OP_MSG_RING` that rides in the
//! sender's own batch submit, so a wake-up costs no extra syscall. Under the epoll backend
//! the wake-up is a write to the destination's eventfd instead.

use crossbeam::queue::ArrayQueue;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};

/// Capacity of each shard's inbox, in batches. A sender that finds it full keeps its batch
/// and retries on its next loop iteration; nothing is dropped.
pub const MAILBOX_CAPACITY_BATCHES: usize = 4096;

/// The most batches a shard takes from its inbox in one loop iteration, so a flood from one
/// core cannot starve the connections of another.
pub const MAILBOX_DRAIN_BATCHES: usize = 64;

/// One queue element: the messages of one sender's iteration for one destination.
struct Batch<M> {
    msgs: Vec<M>,
    /// Monotonic nanoseconds when the batch was pushed, or 0 when the sender did not stamp
    /// it (the latency monitor is off): the receiver measures the mailbox wait from it.
    sent_ns: u64,
}

/// What one [`Outbox::flush_stamped`] pushed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pushed {
    pub batches: u64,
    pub messages: u64,
}

/// One shard's inbox.
pub struct Mailbox<M> {
    queue: ArrayQueue<Batch<M>>,
    /// Set by the first sender of a batch, cleared by the owner before it drains.
    notified: AtomicBool,
    /// The owner's io_uring fd, the target of `MSG_RING` wake-ups (-1 until registered).
    ring_fd: AtomicI32,
    /// The owner's eventfd, written to wake it when it runs the epoll backend (-1 until
    /// registered).
    event_fd: AtomicI32,
}

/// All shards' inboxes, shared by every shard thread.
pub struct Mailboxes<M> {
    boxes: Vec<Mailbox<M>>,
}

impl<M> Mailboxes<M> {
    #[must_use]
    pub fn new(shards: usize) -> Self {
        let boxes = (0..shards)
            .map(|_| Mailbox {
                queue: ArrayQueue::new(MAILBOX_CAPACITY_BATCHES),
                notified: AtomicBool::new(false),
                ring_fd: AtomicI32::new(-1),
                event_fd: AtomicI32::new(-1),
            })
            .collect();
        Self { boxes }
    }

    #[must_use]
    pub fn shards(&self) -> usize {
        self.boxes.len()
    }

    /// Records the ring fd of `shard`, so others can wake it.
    pub fn register_ring(&self, shard: usize, fd: i32) {
        self.boxes[shard].ring_fd.store(fd, Ordering::Release);
    }

    /// The ring fd of `shard`, or `None` if it has not started yet.
    #[must_use]
    pub fn ring_fd(&self, shard: usize) -> Option<i32> {
        let fd = self.boxes[shard].ring_fd.load(Ordering::Acquire);
        (fd >= 0).then_some(fd)
    }

    /// Records the eventfd of `shard` (epoll backend), so others can wake it.
    pub fn register_eventfd(&self, shard: usize, fd: i32) {
        self.boxes[shard].event_fd.store(fd, Ordering::Release);
    }

    /// The eventfd of `shard`, or `None` if it has not started yet or runs on io_uring.
    #[must_use]
    pub fn event_fd(&self, shard: usize) -> Option<i32> {
        let fd = self.boxes[shard].event_fd.load(Ordering::Acquire);
        (fd >= 0).then_some(fd)
    }

    /// Pushes `batch` into `shard`'s inbox as one element, leaving `batch` empty; if the
    /// inbox is full, `batch` is left as it was. Returns true if the caller must wake
    /// `shard` (it was not yet notified).
    pub fn push_batch(&self, shard: usize, batch: &mut Vec<M>) -> bool {
        self.push_batch_stamped(shard, batch, 0)
    }

    /// [`Self::push_batch`] with the sender's monotonic time (0: unstamped), which
    /// [`Self::pop_stamped`] hands to the receiver.
    pub fn push_batch_stamped(&self, shard: usize, batch: &mut Vec<M>, sent_ns: u64) -> bool {
        if batch.is_empty() {
            return false;
        }
        let mb = &self.boxes[shard];
        // The next batch starts with room for as many messages as this one.
        let next = Vec::with_capacity(batch.len());
        let msgs = std::mem::replace(batch, next);
        match mb.queue.push(Batch { msgs, sent_ns }) {
            Ok(()) => {}
            Err(back) => {
                *batch = back.msgs;
                return false;
            }
        }
        // The push happens before the swap, and the owner clears `notified` (an RMW, so it
        // reads our store) before draining: if we see `true` the owner has not drained yet and
        // will see our messages.
        !mb.notified.swap(true, Ordering::AcqRel)
    }

    /// Called by the owner before draining: re-arms notifications.
    pub fn clear_notified(&self, shard: usize) {
        self.boxes[shard].notified.swap(false, Ordering::AcqRel);
    }

    /// Marks `shard` as notified and returns whether it was not already (for wake-ups that
    /// carry no message, such as shutdown).
    pub fn mark_notified(&self, shard: usize) -> bool {
        !self.boxes[shard].notified.swap(true, Ordering::AcqRel)
    }

    /// Takes one batch from `shard`'s inbox.
    pub fn pop(&self, shard: usize) -> Option<Vec<M>> {
        self.boxes[shard].queue.pop().map(|b| b.msgs)
    }

    /// Takes one batch and the monotonic time its sender stamped on it (0: unstamped).
    pub fn pop_stamped(&self, shard: usize) -> Option<(Vec<M>, u64)> {
        self.boxes[shard].queue.pop().map(|b| (b.msgs, b.sent_ns))
    }

    /// Whether `shard`'s inbox holds messages.
    #[must_use]
    pub fn has_messages(&self, shard: usize) -> bool {
        !self.boxes[shard].queue.is_empty()
    }
}

/// A shard's outgoing messages of the current loop iteration, one batch per destination.
pub struct Outbox<M> {
    per_shard: Vec<Vec<M>>,
    pending: usize,
}

impl<M> Outbox<M> {
    #[must_use]
    pub fn new(shards: usize) -> Self {
        Self {
            per_shard: (0..shards).map(|_| Vec::new()).collect(),
            pending: 0,
        }
    }

    /// Queues `msg` for `shard`; it leaves at the end of the loop iteration.
    pub fn send(&mut self, shard: usize, msg: M) {
        self.per_shard[shard].push(msg);
        self.pending += 1;
    }

    /// The last message queued for `shard` this iteration, if any: a sender may add to it
    /// instead of queueing another (the message keeps its place in the order).
    pub fn last_mut(&mut self, shard: usize) -> Option<&mut M> {
        self.per_shard[shard].last_mut()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Moves every message of `other` to the end of this outbox's batches (each
    /// destination's messages keep their order).
    pub fn append(&mut self, other: &mut Self) {
        for (to, from) in self.per_shard.iter_mut().zip(&mut other.per_shard) {
            to.append(from);
        }
        self.pending += std::mem::take(&mut other.pending);
    }

    /// Pushes every batch into its inbox; calls `wake(shard)` once for each destination that
    /// needs a wake-up. Messages that did not fit stay queued.
    pub fn flush(&mut self, boxes: &Mailboxes<M>, wake: impl FnMut(usize)) {
        self.flush_stamped(boxes, 0, wake);
    }

    /// [`Self::flush`], stamping each batch with `sent_ns` (0: unstamped); returns what
    /// was pushed (batches that did not fit stay queued and are not counted).
    pub fn flush_stamped(
        &mut self,
        boxes: &Mailboxes<M>,
        sent_ns: u64,
        mut wake: impl FnMut(usize),
    ) -> Pushed {
        let mut pushed = Pushed::default();
        if self.pending == 0 {
            return pushed;
        }
        let mut left = 0;
        for (shard, batch) in self.per_shard.iter_mut().enumerate() {
            if batch.is_empty() {
                continue;
            }
            let n = batch.len();
            if boxes.push_batch_stamped(shard, batch, sent_ns) {
                wake(shard);
            }
            if batch.is_empty() {
                pushed.batches += 1;
                pushed.messages += n as u64;
            }
            left += batch.len();
        }
        self.pending = left;
        pushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(boxes: &Mailboxes<u32>, shard: usize) -> Vec<u32> {
        std::iter::from_fn(|| boxes.pop(shard)).flatten().collect()
    }

    #[test]
    fn batch_wakes_once_until_drained() {
        let boxes = Mailboxes::<u32>::new(2);
        let mut out = Outbox::new(2);
        out.send(1, 1);
        out.send(1, 2);
        let mut wakes = vec![];
        out.flush(&boxes, |s| wakes.push(s));
        assert_eq!(wakes, vec![1]);
        // A second batch before the owner drained: no second wake-up.
        out.send(1, 3);
        out.flush(&boxes, |s| wakes.push(s));
        assert_eq!(wakes, vec![1]);
        boxes.clear_notified(1);
        assert_eq!(drain(&boxes, 1), vec![1, 2, 3]);
        // After draining, the next batch wakes again.
        out.send(1, 4);
        out.flush(&boxes, |s| wakes.push(s));
        assert_eq!(wakes, vec![1, 1]);
    }

    #[test]
    fn last_message_can_grow_in_place() {
        let boxes = Mailboxes::<Vec<u32>>::new(2);
        let mut out = Outbox::new(2);
        assert!(out.last_mut(1).is_none());
        out.send(1, vec![1]);
        out.last_mut(1).expect("queued").push(2);
        out.send(1, vec![3]);
        out.flush(&boxes, |_| {});
        // Gone with the flush: the next iteration starts a new message.
        assert!(out.last_mut(1).is_none());
        assert_eq!(boxes.pop(1), Some(vec![vec![1, 2], vec![3]]));
    }

    #[test]
    fn stamps_and_counts_travel_with_batches() {
        let boxes = Mailboxes::<u32>::new(3);
        let mut out = Outbox::new(3);
        out.send(1, 1);
        out.send(1, 2);
        out.send(2, 3);
        let pushed = out.flush_stamped(&boxes, 42, |_| {});
        assert_eq!(
            pushed,
            Pushed {
                batches: 2,
                messages: 3
            }
        );
        assert_eq!(boxes.pop_stamped(1), Some((vec![1, 2], 42)));
        out.send(2, 4);
        out.flush(&boxes, |_| {});
        assert_eq!(boxes.pop_stamped(2), Some((vec![3], 42)));
        assert_eq!(boxes.pop_stamped(2), Some((vec![4], 0)));
        assert_eq!(boxes.pop_stamped(2), None);
    }

    #[test]
    fn full_inbox_keeps_the_rest_in_order() {
        let boxes = Mailboxes::<u32>::new(1);
        let mut out = Outbox::new(1);
        let mut sent = 0u32;
        for _ in 0..MAILBOX_CAPACITY_BATCHES {
            out.send(0, sent);
            sent += 1;
            out.flush(&boxes, |_| {});
            assert!(out.is_empty());
        }
        // The inbox is full: the next batch stays with the sender, whole and in order.
        out.send(0, sent);
        out.send(0, sent + 1);
        out.flush(&boxes, |_| {});
        assert!(!out.is_empty());
        boxes.clear_notified(0);
        let first = drain(&boxes, 0);
        assert_eq!(first, (0..sent).collect::<Vec<_>>());
        out.flush(&boxes, |_| {});
        assert!(out.is_empty());
        assert_eq!(drain(&boxes, 0), vec![sent, sent + 1]);
    }
}
