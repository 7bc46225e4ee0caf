//! When the replica asks its service for a snapshot.
use keel_raft::{Index, Rng};

/// When to snapshot. Checked after every applied command.
#[derive(Clone, Debug)]
pub enum SnapshotPolicy {
    /// Never: the log grows without bound (tests of the log itself).
    Never,
    /// When the Raft state (the log since the last snapshot, as stored) reaches this many bytes: 6.824's
    /// `maxraftstate`, and what a production deployment sets.
    RaftStateBytes(u64),
    /// After every applied index `i` with `(i + 1) % n == 0`: 6.824's Lab 2D tester (`applierSnap`, n = 10).
    EveryEntries(u64),
    /// After any applied command with probability `1/one_in`, from a seeded generator: the fault sweep's
    /// "snapshots at random points", reproducible from the seed.
    Randomly { one_in: u64, rng: Rng },
}

/// Bytes a stored entry costs beyond its payload (index, term, length, checksum), for
/// [`SnapshotPolicy::RaftStateBytes`].
pub const ENTRY_OVERHEAD_BYTES: u64 = 24;

impl SnapshotPolicy {
    /// Whether to snapshot now, right after applying `index`, with `raft_state_bytes` of log since the snapshot.
    pub(crate) fn snapshot_now(&mut self, index: Index, raft_state_bytes: u64) -> bool {
        match self {
            SnapshotPolicy::Never => false,
            SnapshotPolicy::RaftStateBytes(limit) => raft_state_bytes >= *limit,
            SnapshotPolicy::EveryEntries(n) => *n > 0 && (index + 1).is_multiple_of(*n),
            SnapshotPolicy::Randomly { one_in, rng } => rng.chance(1, (*one_in).max(1)),
        }
    }
}
