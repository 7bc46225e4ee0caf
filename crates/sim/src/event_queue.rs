//! Events ordered by virtual delivery time; ties broken by insertion order so runs are deterministic.
//!
//! Ticks are half of all events and each node has at most one pending, so they wait in a slot per node rather
//! than in the heap (a restarted node's first tick takes the slot of its previous incarnation's, which would
//! have done nothing); the next event is the earlier of the heap's top and the earliest slot, by the same
//! (time, insertion number) order as if all were in one heap.
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

/// A node's pending tick: when, its insertion number, and the incarnation it is for.
#[derive(Clone, Copy)]
struct PendingTick {
    at_ms: u64,
    seq: u64,
    incarnation: u64,
}

#[derive(Default)]
pub struct EventQueue {
    heap: BinaryHeap<Scheduled>,
    ticks: Vec<Option<PendingTick>>,
    next_seq: u64,
}

impl EventQueue {
    pub fn push(&mut self, at_ms: u64, event: Event) {
        let seq = self.next_seq;
        self.next_seq += 1;
        match event {
            Event::Tick { node, incarnation } => {
                if self.ticks.len() <= node {
                    self.ticks.resize(node + 1, None);
                }
                self.ticks[node] = Some(PendingTick { at_ms, seq, incarnation });
            }
            Event::Deliver(_) => self.heap.push(Scheduled { at_ms, seq, event }),
        }
    }

    /// The next event due at or before `until_ms`, if any.
    pub fn pop_due(&mut self, until_ms: u64) -> Option<(u64, Event)> {
        let tick = (0..self.ticks.len())
            .filter_map(|node| self.ticks[node].map(|t| (t, node)))
            .min_by_key(|(t, _)| (t.at_ms, t.seq));
        let heap_first = self.heap.peek().map(|s| (s.at_ms, s.seq));
        match (tick, heap_first) {
            (Some((t, node)), first) if first.is_none_or(|key| (t.at_ms, t.seq) < key) => {
                if t.at_ms > until_ms {
                    return None;
                }
                self.ticks[node] = None;
                Some((t.at_ms, Event::Tick { node, incarnation: t.incarnation }))
            }
            (_, Some((at_ms, _))) if at_ms <= until_ms => self.heap.pop().map(|s| (s.at_ms, s.event)),
            _ => None,
        }
    }
}
