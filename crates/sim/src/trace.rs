//! A running hash of every event (to prove that a seed replays identically) and the last few events in words
//! (to explain a failure).
use std::collections::VecDeque;
use std::fmt::Write;

/// How many recent events a failure report shows.
pub const RECENT_EVENTS: usize = 40;

/// One remembered event. Deliveries are stored compactly and put into words only when a report is printed.
#[derive(Clone, Debug)]
pub enum TraceLine {
    Delivered { at_ms: u64, from: u64, to: u64, kind: &'static str, term: u64 },
    Note { at_ms: u64, what: String },
}

pub struct Trace {
    hash: u64,
    events: u64,
    recent: VecDeque<TraceLine>,
}

impl Default for Trace {
    fn default() -> Trace {
        Trace { hash: 0xcbf2_9ce4_8422_2325, events: 0, recent: VecDeque::with_capacity(RECENT_EVENTS) }
    }
}

impl Trace {
    /// Folds raw data into the hash: FNV-1a's step, eight bytes at a time (every delivered message passes
    /// through here, so a byte at a time was a visible share of a sweep).
    pub fn mix_bytes(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.fold(u64::from_le_bytes(word));
        }
        for b in chunks.remainder() {
            self.fold(u64::from(*b));
        }
    }

    fn fold(&mut self, value: u64) {
        self.hash ^= value;
        self.hash = self.hash.wrapping_mul(0x0100_0000_01b3);
    }

    pub fn mix(&mut self, value: u64) {
        self.mix_bytes(&value.to_le_bytes());
        self.events += 1;
    }

    /// Records a notable event in words (message deliveries, role changes, faults). Building the text costs a
    /// little, so the cluster does it only for events a reader needs.
    pub fn note(&mut self, at_ms: u64, what: String) {
        self.mix_bytes(what.as_bytes());
        self.remember(TraceLine::Note { at_ms, what });
    }

    pub fn remember(&mut self, line: TraceLine) {
        if self.recent.len() == RECENT_EVENTS {
            self.recent.pop_front();
        }
        self.recent.push_back(line);
    }

    pub fn hash(&self) -> u64 {
        self.hash
    }

    pub fn events(&self) -> u64 {
        self.events
    }

    pub fn render_recent(&self) -> String {
        let mut out = String::new();
        for line in &self.recent {
            let _ = match line {
                TraceLine::Delivered { at_ms, from, to, kind, term } => {
                    writeln!(out, "  {:>9.3}s  {from} -> {to}: {kind} (term {term})", *at_ms as f64 / 1000.0)
                }
                TraceLine::Note { at_ms, what } => writeln!(out, "  {:>9.3}s  {what}", *at_ms as f64 / 1000.0),
            };
        }
        out
    }
}
