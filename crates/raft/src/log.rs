//! The in-memory log with its compacted prefix. Drivers read it (`RaftNode::log`); only the node changes it.
//!
//! This is the one place that knows the snapshot offset: every conversion from a Raft index to a vector position
//! goes through [`RaftLog::position`]. Everything else speaks in Raft indexes.
use crate::types::{Entry, Index, SnapshotMeta, Term};

#[derive(Clone, Debug, Default)]
pub struct RaftLog {
    /// The last entry folded into the snapshot (index 0, term 0 when nothing was compacted).
    snapshot: SnapshotMeta,
    /// `entries[k]` has index `snapshot.index + 1 + k`.
    entries: Vec<Entry>,
    /// Sum of the held entries' payload lengths, kept as entries come and go so a size policy costs nothing.
    payload_bytes: u64,
}

impl RaftLog {
    /// Rebuilds a log from durable parts, checking that the entries follow the snapshot without gaps.
    pub(crate) fn from_parts(snapshot: SnapshotMeta, entries: Vec<Entry>) -> Result<RaftLog, String> {
        for (k, entry) in entries.iter().enumerate() {
            let expected = snapshot.index + 1 + k as u64;
            if entry.index != expected {
                return Err(format!("log entry at position {k} has index {} but {expected} was expected", entry.index));
            }
            let previous_term = if k == 0 { snapshot.term } else { entries[k - 1].term };
            if entry.term < previous_term {
                return Err(format!(
                    "log entry {} has term {} below its predecessor's {previous_term}",
                    entry.index, entry.term
                ));
            }
        }
        let payload_bytes = entries.iter().map(|e| e.data.len() as u64).sum();
        Ok(RaftLog { snapshot, entries, payload_bytes })
    }

    /// Vector position of `index`, if that entry is held in memory (not compacted, not beyond the end).
    fn position(&self, index: Index) -> Option<usize> {
        if index <= self.snapshot.index {
            return None;
        }
        let position = usize::try_from(index - self.snapshot.index - 1).ok()?;
        (position < self.entries.len()).then_some(position)
    }

    pub fn snapshot_meta(&self) -> SnapshotMeta {
        self.snapshot
    }

    /// First index still held as an entry.
    pub fn first_index(&self) -> Index {
        self.snapshot.index + 1
    }

    /// Payload bytes of the entries held (not compacted into the snapshot).
    pub fn payload_bytes(&self) -> u64 {
        self.payload_bytes
    }

    /// Number of entries held (not compacted into the snapshot).
    pub fn len(&self) -> u64 {
        self.entries.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn last_index(&self) -> Index {
        self.snapshot.index + self.entries.len() as u64
    }

    pub fn last_term(&self) -> Term {
        self.entries.last().map_or(self.snapshot.term, |e| e.term)
    }

    /// The term at `index`: known for the snapshot point and every held entry; `None` when compacted away or
    /// beyond the end.
    pub fn term_at(&self, index: Index) -> Option<Term> {
        if index == self.snapshot.index {
            return Some(self.snapshot.term);
        }
        self.position(index).map(|p| self.entries[p].term)
    }

    pub fn entry(&self, index: Index) -> Option<&Entry> {
        self.position(index).map(|p| &self.entries[p])
    }

    /// Held entries from `from` (clamped to the first held one) to the end.
    pub fn entries_from(&self, from: Index) -> &[Entry] {
        let from = from.max(self.first_index());
        match self.position(from) {
            Some(p) => &self.entries[p..],
            None => &[],
        }
    }

    /// Up to `max_entries` entries starting at `from`, stopping before `max_bytes` of payload is exceeded (but always
    /// at least one entry, so a single large entry still makes progress).
    pub fn slice(&self, from: Index, max_entries: usize, max_bytes: usize) -> Vec<Entry> {
        let mut bytes = 0usize;
        let mut out = Vec::new();
        for entry in self.entries_from(from).iter().take(max_entries) {
            bytes += entry.data.len();
            if !out.is_empty() && bytes > max_bytes {
                break;
            }
            out.push(entry.clone());
        }
        out
    }

    /// Appends one entry; its index must be the next one.
    pub(crate) fn push(&mut self, entry: Entry) {
        assert_eq!(entry.index, self.last_index() + 1, "log append must be contiguous");
        assert!(entry.term >= self.last_term(), "log terms never decrease");
        self.payload_bytes += entry.data.len() as u64;
        self.entries.push(entry);
    }

    /// Drops every entry at or after `index`. Entries in the snapshot are never touched.
    pub(crate) fn truncate_from(&mut self, index: Index) {
        let keep = index.saturating_sub(self.snapshot.index + 1);
        let keep = usize::try_from(keep).unwrap_or(usize::MAX);
        let dropped: u64 = self.entries.iter().skip(keep).map(|e| e.data.len() as u64).sum();
        self.payload_bytes -= dropped;
        self.entries.truncate(keep);
    }

    /// The first index of the run of entries with the same term as the entry at `index` (never below the first
    /// held entry). Used for the fast-backup hint.
    pub fn first_index_of_term_at(&self, index: Index) -> Index {
        let Some(term) = self.term_at(index) else { return index };
        let mut first = index;
        while first > self.first_index() && self.term_at(first - 1) == Some(term) {
            first -= 1;
        }
        first
    }

    /// The last index holding an entry of `term`, searching held entries and the snapshot point.
    pub fn last_index_of_term(&self, term: Term) -> Option<Index> {
        // Terms are non-decreasing along the log, so search from the end and stop once below `term`.
        for entry in self.entries.iter().rev() {
            if entry.term == term {
                return Some(entry.index);
            }
            if entry.term < term {
                return None;
            }
        }
        (self.snapshot.term == term && self.snapshot.index > 0).then_some(self.snapshot.index)
    }

    /// Folds everything through `meta.index` into a snapshot. If the log holds the entry at `meta.index` with
    /// `meta.term`, the suffix after it is kept (Figure 13, step 6); otherwise the whole log is discarded (step 7).
    /// Returns whether the suffix was kept.
    pub(crate) fn compact_to(&mut self, meta: SnapshotMeta) -> bool {
        if meta.index <= self.snapshot.index {
            return true;
        }
        let keep_suffix = self.term_at(meta.index) == Some(meta.term);
        if keep_suffix {
            let drop = (meta.index - self.snapshot.index) as usize;
            let dropped: u64 = self.entries.drain(..drop).map(|e| e.data.len() as u64).sum();
            self.payload_bytes -= dropped;
        } else {
            self.entries.clear();
            self.payload_bytes = 0;
        }
        self.snapshot = meta;
        keep_suffix
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: Index, term: Term) -> Entry {
        Entry { index, term, data: vec![index as u8] }
    }

    fn log_with_terms(terms: &[Term]) -> RaftLog {
        let mut log = RaftLog::default();
        for (k, &t) in terms.iter().enumerate() {
            log.push(entry(k as u64 + 1, t));
        }
        log
    }

    #[test]
    fn payload_bytes_follow_appends_truncations_and_compactions() {
        let sum = |log: &RaftLog| log.entries_from(0).iter().map(|e| e.data.len() as u64).sum::<u64>();
        let mut log = RaftLog::default();
        for k in 1..=6u64 {
            log.push(Entry { index: k, term: 1, data: vec![0; k as usize] });
        }
        assert_eq!(log.payload_bytes(), 21);
        log.truncate_from(5);
        assert_eq!((log.payload_bytes(), sum(&log)), (10, 10));
        assert!(log.compact_to(SnapshotMeta { index: 2, term: 1 }));
        assert_eq!((log.payload_bytes(), sum(&log), log.len()), (7, 7, 2));
        assert!(!log.compact_to(SnapshotMeta { index: 9, term: 3 }));
        assert_eq!((log.payload_bytes(), log.len()), (0, 0));
        let rebuilt = RaftLog::from_parts(
            SnapshotMeta { index: 0, term: 0 },
            vec![Entry { index: 1, term: 1, data: vec![7; 5] }],
        );
        assert_eq!(rebuilt.map(|l| l.payload_bytes()), Ok(5));
    }

    #[test]
    fn index_arithmetic_survives_compaction() {
        let mut log = log_with_terms(&[1, 1, 2, 2, 2, 3]);
        assert_eq!((log.first_index(), log.last_index(), log.last_term()), (1, 6, 3));
        assert!(log.compact_to(SnapshotMeta { index: 3, term: 2 }));
        assert_eq!((log.first_index(), log.last_index()), (4, 6));
        assert_eq!(log.term_at(3), Some(2));
        assert_eq!(log.term_at(2), None);
        assert_eq!(log.term_at(7), None);
        assert_eq!(log.entry(5).map(|e| e.index), Some(5));
        assert_eq!(log.first_index_of_term_at(5), 4);
        assert_eq!(log.last_index_of_term(2), Some(5));
        assert_eq!(log.last_index_of_term(1), None);
        assert_eq!(log.slice(2, 10, 1 << 20).iter().map(|e| e.index).collect::<Vec<_>>(), vec![4, 5, 6]);
        // Once compacted, the snapshot point still answers for its term.
        let mut compacted = log.clone();
        assert!(compacted.compact_to(SnapshotMeta { index: 5, term: 2 }));
        assert_eq!(compacted.last_index_of_term(2), Some(5));
        assert_eq!(compacted.last_index_of_term(3), Some(6));
        assert_eq!(compacted.last_index_of_term(1), None);
        log.truncate_from(5);
        assert_eq!(log.last_index(), 4);
        log.truncate_from(1); // never reaches into the snapshot
        assert_eq!((log.last_index(), log.last_term()), (3, 2));
    }

    #[test]
    fn compaction_with_mismatching_term_discards_the_log() {
        let mut log = log_with_terms(&[1, 1, 2]);
        assert!(!log.compact_to(SnapshotMeta { index: 2, term: 5 }));
        assert_eq!((log.last_index(), log.last_term()), (2, 5));
        // A stale compaction is a no-op.
        assert!(log.compact_to(SnapshotMeta { index: 1, term: 1 }));
        assert_eq!(log.snapshot_meta().index, 2);
    }

    #[test]
    fn slice_respects_limits_but_always_makes_progress() {
        let mut log = RaftLog::default();
        for i in 1..=5 {
            log.push(Entry { index: i, term: 1, data: vec![0; 100] });
        }
        assert_eq!(log.slice(1, 2, 1 << 20).len(), 2);
        assert_eq!(log.slice(1, 10, 250).len(), 2);
        assert_eq!(log.slice(1, 10, 10).len(), 1);
        assert_eq!(log.slice(1, 10, 200).len(), 2, "the byte limit is inclusive: exactly 200 bytes fit");
    }

    #[test]
    fn from_parts_rejects_gaps_and_falling_terms() {
        let meta = SnapshotMeta { index: 2, term: 1 };
        assert!(RaftLog::from_parts(meta, vec![entry(3, 1), entry(4, 2)]).is_ok());
        assert!(RaftLog::from_parts(meta, vec![entry(4, 1)]).is_err());
        assert!(RaftLog::from_parts(meta, vec![entry(3, 0)]).is_err());
        assert!(RaftLog::from_parts(meta, vec![entry(3, 2), entry(4, 1)]).is_err(), "terms fall between entries");
    }
}
