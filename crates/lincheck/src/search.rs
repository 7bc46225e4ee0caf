//! The search for a linearization of one partition: Wing & Gong's algorithm with Lowe's improvements and a
//! cache of visited configurations, as porcupine implements it.
//!
//! The history becomes a list of call and return events in time order (a call before a return at the same
//! instant: operations that touch are concurrent). The search walks the list: at a call, it tries to linearize
//! that operation now (the model accepts its output in the current state, and the configuration (set of
//! linearized operations, state) was not visited before); it then removes the operation's call and return from
//! the list and starts again from the head. Meeting a return means the operation returning there cannot be
//! linearized before everything pending is tried: the search backtracks to the last choice. An empty list is a
//! linearization; backtracking past the first choice means there is none.
//!
//! A timed-out operation's return is placed after every other event: it may be linearized anywhere after its
//! call; linearizing it last is the same as never applying it, since nothing observed follows.
use std::collections::HashSet;

use crate::history::Operation;
use crate::model::Model;

/// Most configurations (linearized set, state) one partition's search may visit before it answers `Unknown`.
/// The cache holds each one (a bitset of the partition's operations and a state), so this bounds the memory too:
/// a partition of 1,000 operations with states of a few KiB stays under about a GiB in the worst case. Histories
/// of well-behaved systems need about one configuration per operation; the limit is only met by
/// pathological concurrency (dozens of overlapping operations on one key).
pub const SEARCH_STATES_MAX: usize = 200_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SearchLimits {
    pub states_max: usize,
}

impl Default for SearchLimits {
    fn default() -> Self {
        SearchLimits { states_max: SEARCH_STATES_MAX }
    }
}

/// What the search found for one partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Found {
    Linearizable,
    NotLinearizable,
    /// The search visited `SearchLimits::states_max` configurations without an answer.
    Unknown,
}

/// One event of the list: the call or the return of operation `op` (a position in the partition).
#[derive(Clone, Copy, Debug)]
struct Event {
    op: usize,
    is_call: bool,
    /// `u128::MAX` for the return of a timed-out operation: after everything.
    time: u128,
}

/// A doubly linked list over events, with a sentinel at index `events.len()`; removal and reinsertion in stack
/// order are O(1) ("dancing links").
struct Events {
    events: Vec<Event>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// For a call event, the index of its return event.
    return_of: Vec<usize>,
}

impl Events {
    fn new<I, O>(ops: &[&Operation<I, O>]) -> Events {
        let mut events = Vec::with_capacity(ops.len() * 2);
        for (op, operation) in ops.iter().enumerate() {
            events.push(Event { op, is_call: true, time: u128::from(operation.call_ns) });
            let time = operation.return_ns().map_or(u128::MAX, u128::from);
            events.push(Event { op, is_call: false, time });
        }
        // Calls before returns at one instant; then by operation, so the order (and the search) is deterministic.
        events.sort_by_key(|e| (e.time, !e.is_call, e.op));
        let sentinel = events.len();
        let mut return_of = vec![usize::MAX; events.len()];
        let mut call_at = vec![usize::MAX; ops.len()];
        for (at, event) in events.iter().enumerate() {
            if event.is_call {
                call_at[event.op] = at;
            } else {
                return_of[call_at[event.op]] = at;
            }
        }
        let next = (0..=sentinel).map(|i| if i == sentinel { 0 } else { i + 1 }).collect();
        let prev = (0..=sentinel).map(|i| if i == 0 { sentinel } else { i - 1 }).collect();
        Events { events, next, prev, return_of }
    }

    fn sentinel(&self) -> usize {
        self.events.len()
    }

    fn first(&self) -> usize {
        self.next[self.sentinel()]
    }

    fn unlink(&mut self, at: usize) {
        let (prev, next) = (self.prev[at], self.next[at]);
        self.next[prev] = next;
        self.prev[next] = prev;
    }

    fn relink(&mut self, at: usize) {
        let (prev, next) = (self.prev[at], self.next[at]);
        self.next[prev] = at;
        self.prev[next] = at;
    }

    /// Removes a call and its return.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.return_of[call]);
    }

    /// Undoes the last `lift` of `call` (lifts are undone in reverse order).
    fn unlift(&mut self, call: usize) {
        self.relink(self.return_of[call]);
        self.relink(call);
    }
}

/// A set of operations, as bits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Bitset(Box<[u64]>);

impl Bitset {
    fn new(len: usize) -> Bitset {
        Bitset(vec![0; len.div_ceil(64)].into_boxed_slice())
    }
    fn set(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }
    fn clear(&mut self, i: usize) {
        self.0[i / 64] &= !(1 << (i % 64));
    }
}

/// Searches for a linearization of `ops` (one partition) under `model`.
pub fn search<M: Model>(model: &M, ops: &[&Operation<M::Input, M::Output>], limits: SearchLimits) -> Found {
    let mut events = Events::new(ops);
    let mut state = model.init();
    let mut linearized = Bitset::new(ops.len());
    // Once every operation that returned is linearized, the rest (all timed out) go last: a linearization.
    let mut returned_left = ops.iter().filter(|op| op.output().is_some()).count();
    let mut visited: HashSet<(Bitset, M::State)> = HashSet::new();
    // The choices made: the call linearized, and the state before it.
    let mut choices: Vec<(usize, M::State)> = Vec::new();
    let mut at = events.first();
    while returned_left > 0 {
        // The list always ends with a return (each remaining call has one after it), so the walk meets a return
        // before it could run off the end.
        let event = events.events[at];
        let op = ops[event.op];
        if event.is_call {
            if let Some(next_state) = model.step(&state, &op.input, op.output()) {
                let mut next_linearized = linearized.clone();
                next_linearized.set(event.op);
                if visited.insert((next_linearized.clone(), next_state.clone())) {
                    if visited.len() > limits.states_max {
                        return Found::Unknown;
                    }
                    choices.push((at, std::mem::replace(&mut state, next_state)));
                    linearized = next_linearized;
                    returned_left -= usize::from(op.output().is_some());
                    events.lift(at);
                    at = events.first();
                    continue;
                }
            }
            at = events.next[at];
        } else {
            // An operation returns here that is not linearized yet: undo the last choice and try the next call.
            let Some((call, previous_state)) = choices.pop() else { return Found::NotLinearizable };
            let undone = events.events[call].op;
            returned_left += usize::from(ops[undone].output().is_some());
            state = previous_state;
            linearized.clear(undone);
            events.unlift(call);
            at = events.next[call];
        }
    }
    Found::Linearizable
}
