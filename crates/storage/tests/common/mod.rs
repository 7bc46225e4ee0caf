//! Shared by the storage tests: a seeded generator of Raft-like persist histories, and the states they pass through.
#![allow(dead_code)]
use std::path::PathBuf;

use keel_raft::{DurableState, Entry, HardState, Index, PersistUpdate, Snapshot, SnapshotMeta, Term};
use keel_storage::{DiskStorage, FileSystem, Options, SimFs, Storage};

/// SplitMix64, for test scripts (the disk has its own).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_0F57_0A6E)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Segments this small rotate every few persists, so short histories exercise rotation, compaction across
/// segments and truncation across segment boundaries.
pub fn tiny_segments() -> Options {
    Options { segment_size_bytes_target: 200 }
}

pub fn dir() -> PathBuf {
    PathBuf::from("/node/raft")
}

/// One thing a Raft node may persist, with its parameters free: [`update_for`] turns it into a valid update for the
/// state at hand (positions are taken modulo what the log holds), so any sequence of steps is a valid history.
#[derive(Clone, Debug)]
pub enum Step {
    /// Entries of the current term (of a new one, with a vote, if `new_term`).
    Append { count: u64, new_term: bool, data_len: u64 },
    /// A vote, or a new term alone.
    Vote { new_term: bool, candidate: u64 },
    /// A newer leader replaces the tail from some position on with `count` entries of its term.
    Conflict { at: u64, count: u64 },
    /// The service snapshots a prefix of the log.
    Snapshot { at: u64, data_len: u64 },
    /// A leader installs a snapshot at or past the end of the log; the log after it goes.
    Install { beyond: u64, data_len: u64 },
}

fn data(index: Index, term: Term, len: u64) -> Vec<u8> {
    (0..len).map(|i| (index.wrapping_mul(31) ^ term.wrapping_mul(7) ^ i) as u8).collect()
}

/// The update `step` makes from `state`, as the core would send it (appends carry `truncate_from` at their first
/// entry), or None if the step makes no sense here (nothing to conflict with or snapshot).
pub fn update_for(state: &DurableState, step: &Step) -> Option<PersistUpdate> {
    let hs = state.hard_state;
    let snapshot = state.snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
    let next = state.entries.last().map_or(snapshot.index + 1, |e| e.index + 1);
    let held = next - snapshot.index - 1;
    let term_at = |index: Index| state.entries.iter().find(|e| e.index == index).map_or(snapshot.term, |e| e.term);
    Some(match *step {
        Step::Append { count, new_term, data_len } => {
            let term = if new_term || hs.term == 0 { hs.term + 1 } else { hs.term };
            let hard_state = (term != hs.term).then_some(HardState { term, voted_for: Some(term % 3) });
            let entries =
                (0..count.max(1)).map(|i| Entry { index: next + i, term, data: data(next + i, term, data_len) });
            PersistUpdate { hard_state, snapshot: None, truncate_from: Some(next), entries: entries.collect() }
        }
        Step::Vote { new_term, candidate } => {
            let term = hs.term + u64::from(new_term);
            let voted_for = if term == hs.term { hs.voted_for.or(Some(candidate)) } else { None };
            PersistUpdate { hard_state: Some(HardState { term, voted_for }), ..PersistUpdate::default() }
        }
        Step::Conflict { at, count } => {
            if held == 0 {
                return None;
            }
            let from = snapshot.index + 1 + at % held;
            let term = hs.term + 1;
            let entries = (0..count).map(|i| Entry { index: from + i, term, data: data(from + i, term, 5) });
            PersistUpdate {
                hard_state: Some(HardState { term, voted_for: None }),
                snapshot: None,
                truncate_from: Some(from),
                entries: entries.collect(),
            }
        }
        Step::Snapshot { at, data_len } => {
            if held == 0 {
                return None;
            }
            let index = snapshot.index + 1 + at % held;
            let meta = SnapshotMeta { index, term: term_at(index) };
            let data = data(index, meta.term, data_len);
            PersistUpdate { snapshot: Some(Snapshot { meta, data }), ..PersistUpdate::default() }
        }
        Step::Install { beyond, data_len } => {
            let index = snapshot.index + 1 + (held + beyond) % (held + 3);
            let term = if index < next { term_at(index) } else { hs.term.max(1) };
            let hard_state = (hs.term < term).then_some(HardState { term, voted_for: None });
            PersistUpdate {
                hard_state,
                snapshot: Some(Snapshot { meta: SnapshotMeta { index, term }, data: data(index, term, data_len) }),
                truncate_from: Some(index + 1),
                entries: Vec::new(),
            }
        }
    })
}

/// A random step, weighted like a node's life: mostly appends, some votes, conflicts and snapshots.
pub fn random_step(rng: &mut Rng) -> Step {
    match rng.below(100) {
        0..50 => Step::Append { count: rng.below(6) + 1, new_term: rng.chance(15), data_len: rng.below(25) },
        50..65 => Step::Vote { new_term: rng.chance(50), candidate: rng.below(3) },
        65..80 => Step::Conflict { at: rng.next_u64(), count: rng.below(4) },
        80..92 => Step::Snapshot { at: rng.next_u64(), data_len: rng.below(65) },
        _ => Step::Install { beyond: rng.next_u64(), data_len: rng.below(65) },
    }
}

/// A seeded history of `len` updates.
pub fn history(seed: u64, len: usize) -> Vec<PersistUpdate> {
    let mut rng = Rng::new(seed);
    let mut state = DurableState::default();
    let mut updates = Vec::with_capacity(len);
    while updates.len() < len {
        if let Some(update) = update_for(&state, &random_step(&mut rng)) {
            state.apply(&update);
            updates.push(update);
        }
    }
    updates
}

/// The states a history passes through: `states[k]` is the durable state after the first k updates.
pub fn states(history: &[PersistUpdate]) -> Vec<DurableState> {
    let mut state = DurableState::default();
    let mut out = vec![state.clone()];
    for update in history {
        state.apply(update);
        out.push(state.clone());
    }
    out
}

/// Opens a storage on a simulated disk and runs `history` through it, all of it made durable.
pub fn run_on_sim(fs: &SimFs, history: &[PersistUpdate]) -> DiskStorage<SimFs> {
    let mut storage = DiskStorage::open_with(fs.clone(), dir(), tiny_segments()).unwrap();
    for (k, update) in history.iter().enumerate() {
        storage.persist(update).unwrap_or_else(|e| panic!("persist {k} of a valid history failed: {e}"));
    }
    storage
}

/// The WAL segment files of `dir`, oldest first.
pub fn segment_files<F: FileSystem>(fs: &F, dir: &std::path::Path) -> Vec<PathBuf> {
    fs.list_dir(dir).unwrap().into_iter().filter(|n| n.starts_with("wal-")).map(|n| dir.join(n)).collect()
}

/// Prints a state compactly, for failure messages.
pub fn describe(state: &DurableState) -> String {
    let entries: Vec<(Index, Term)> = state.entries.iter().map(|e| (e.index, e.term)).collect();
    format!("hard {:?} snapshot {:?} entries {entries:?}", state.hard_state, state.snapshot)
}
