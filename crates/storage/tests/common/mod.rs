//! Shared by the storage tests: a seeded generator of Raft-like persist histories, and the states they pass through.
#![allow(dead_code)]
use std::path::PathBuf;

use keel_raft::{DurableState, Entry, HardState, Index, PersistUpdate, Snapshot, SnapshotMeta, Term};
use keel_storage::{DiskStorage, FileSystem, Options, SimFs, Storage};

/// SplitMix64, for test scripts (the disk has its own).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5EED_0F_57_0A6E)
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

    pub fn bytes(&mut self, len_max: u64) -> Vec<u8> {
        let len = self.below(len_max + 1);
        (0..len).map(|_| self.next_u64() as u8).collect()
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

/// A history of updates such as a Raft node makes: appends (each with `truncate_from` at its first entry, as the
/// core sends them), term and vote changes, conflicts that cut the log back and replace its tail with entries of
/// a newer term, service snapshots inside the log, and installed snapshots (which may reach past the log).
pub fn history(seed: u64, len: usize) -> Vec<PersistUpdate> {
    let mut rng = Rng::new(seed);
    let mut state = DurableState::default();
    let mut updates = Vec::with_capacity(len);
    while updates.len() < len {
        let hs = state.hard_state;
        let snapshot = state.snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
        let next = state.entries.last().map_or(snapshot.index + 1, |e| e.index + 1);
        let term_at = |state: &DurableState, index: Index| -> Term {
            state.entries.iter().find(|e| e.index == index).map_or(snapshot.term, |e| e.term)
        };
        let roll = rng.below(100);
        let update = if roll < 50 {
            // Append, sometimes in a new term.
            let hard_state = rng.chance(15).then(|| HardState { term: hs.term + 1, voted_for: Some(rng.below(3)) });
            let term = hard_state.map_or(hs.term, |h| h.term).max(1);
            let hard_state = if hs.term == 0 { Some(HardState { term, voted_for: None }) } else { hard_state };
            let count = rng.below(6) + 1;
            let entries = (0..count).map(|i| Entry { index: next + i, term, data: rng.bytes(24) }).collect();
            PersistUpdate { hard_state, snapshot: None, truncate_from: Some(next), entries }
        } else if roll < 65 {
            // A vote or a new term alone.
            let term = hs.term + rng.below(2);
            let voted_for = if term == hs.term { hs.voted_for.or(Some(rng.below(3))) } else { None };
            PersistUpdate { hard_state: Some(HardState { term, voted_for }), ..PersistUpdate::default() }
        } else if roll < 80 && next > snapshot.index + 1 {
            // A conflict: a newer leader replaces the tail from `from` on.
            let from = snapshot.index + 1 + rng.below(next - snapshot.index - 1);
            let term = hs.term + 1;
            let count = rng.below(4);
            let entries = (0..count).map(|i| Entry { index: from + i, term, data: rng.bytes(24) }).collect();
            PersistUpdate {
                hard_state: Some(HardState { term, voted_for: None }),
                snapshot: None,
                truncate_from: Some(from),
                entries,
            }
        } else if roll < 92 && next > snapshot.index + 1 {
            // The service snapshots a prefix of the log.
            let index = snapshot.index + 1 + rng.below(next - snapshot.index - 1);
            let meta = SnapshotMeta { index, term: term_at(&state, index) };
            PersistUpdate { snapshot: Some(Snapshot { meta, data: rng.bytes(64) }), ..PersistUpdate::default() }
        } else {
            // A leader installs a snapshot, possibly past the end of the log; the log after it goes.
            let index = snapshot.index + rng.below(next - snapshot.index + 3).max(1);
            let term = if index < next { term_at(&state, index) } else { hs.term.max(1) };
            let hard_state = (hs.term < term).then_some(HardState { term, voted_for: None });
            PersistUpdate {
                hard_state,
                snapshot: Some(Snapshot { meta: SnapshotMeta { index, term }, data: rng.bytes(64) }),
                truncate_from: Some(index + 1),
                entries: Vec::new(),
            }
        };
        state.apply(&update);
        updates.push(update);
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
