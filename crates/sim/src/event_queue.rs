//! Events ordered by virtual delivery time; ties broken by insertion order so runs are deterministic.
use std::cmp::Ordering;
use std::collections::BinaryHeap;

use keel_raft::Message;

#[derive(Debug)]
pub enum Event {
    /// A logical clock tick for one incarnation of a node (a restarted node gets fresh ticks).
    Tick { node: usize, incarnation: u64 },
    /// A message arriving. Boxed: the heap moves events around on every push and pop, and a message is large.
    Deliver(Box<Delivery>),
}

#[derive(Debug)]
pub struct Delivery {
    pub msg: Message,
    /// Its encoded form: the receiver decodes it, so the codec is exercised on every delivery.
    pub wire: Vec<u8>,
    /// Pins the receiver: a message to a node that crashed since is lost.
    pub to_incarnation: u64,
    /// When it was sent (for the timeline).
    pub sent_ms: u64,
}

struct Scheduled {
    at_ms: u64,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at_ms, self.seq) == (other.at_ms, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    // Reversed: BinaryHeap is a max-heap and we want the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.at_ms, other.seq).cmp(&(self.at_ms, self.seq))
    }
}

#[derive(Default)]
pub struct EventQueue {
    heap: BinaryHeap<Scheduled>,
    next_seq: u64,
}

impl EventQueue {
    pub fn push(&mut self, at_ms: u64, event: Event) {
        self.heap.push(Scheduled { at_ms, seq: self.next_seq, event });
        self.next_seq += 1;
    }

    /// The next event due at or before `until_ms`, if any.
    pub fn pop_due(&mut self, until_ms: u64) -> Option<(u64, Event)> {
        if self.heap.peek().is_some_and(|s| s.at_ms <= until_ms) {
            self.heap.pop().map(|s| (s.at_ms, s.event))
        } else {
            None
        }
    }
}
