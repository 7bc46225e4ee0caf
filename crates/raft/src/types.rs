//! Basic vocabulary shared by every part of the core.
use serde::{Deserialize, Serialize};

/// A node's identity within its cluster. Any value is allowed; the configuration lists the members.
pub type NodeId = u64;
/// A Raft term. Terms start at 0 and only grow.
pub type Term = u64;
/// A log position. The first entry has index 1; index 0 is the empty prefix.
pub type Index = u64;

/// Terms above this are refused as absurd. A peer that sends one is broken or hostile, and adopting it would leave
/// the cluster unable to start a new election (the term could not be incremented). 2^62 leaves room for a
/// thousand elections per second for a hundred million years.
pub const TERM_LIMIT: Term = 1 << 62;

/// Log indexes above this are refused as absurd, for the same reason and with the same margin as terms: index
/// arithmetic (`index + 1`, lengths) must never overflow, whatever a peer sends.
pub const INDEX_LIMIT: Index = 1 << 62;

/// One replicated log entry. The index is carried explicitly so storage and the wire can check contiguity on both
/// the write and the read path.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub index: Index,
    pub term: Term,
    #[serde(with = "crate::bytes_serde")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Entry(i{} t{} {}B)", self.index, self.term, self.data.len())
    }
}

/// The state that must be durable before a node answers anyone (Figure 2's "persistent state", minus the log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HardState {
    pub term: Term,
    pub voted_for: Option<NodeId>,
}

/// What a snapshot covers: everything through `index`, whose entry had term `term`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    pub index: Index,
    pub term: Term,
}

/// A service snapshot together with the log position it replaces.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    pub meta: SnapshotMeta,
    #[serde(with = "crate::bytes_serde")]
    pub data: Vec<u8>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Snapshot(i{} t{} {}B)", self.meta.index, self.meta.term, self.data.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Failure reports print entries and snapshots by position and size, never their (possibly huge) bytes.
    #[test]
    fn debug_output_names_the_position_and_size_not_the_bytes() {
        let entry = Entry { index: 7, term: 3, data: vec![0xAB; 4096] };
        assert_eq!(format!("{entry:?}"), "Entry(i7 t3 4096B)");
        let snapshot = Snapshot { meta: SnapshotMeta { index: 9, term: 2 }, data: vec![1; 10] };
        assert_eq!(format!("{snapshot:?}"), "Snapshot(i9 t2 10B)");
    }
}
