//! What can go wrong with durable state, with enough context (file, offset, index) to act on it.
use std::io;
use std::path::PathBuf;

use keel_raft::Index;

/// Every error of [`crate::DiskStorage`]. The messages say what happened, where, and what an operator can do,
/// because a storage error on a Raft node is read by a person deciding whether data was lost.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system call failed. During `persist` this stops the storage (see [`Error::Stopped`]).
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// An earlier call failed in a way that leaves the durable state unknown (a failed write or fsync). The
    /// storage refuses every later call: retrying an fsync that failed can report success while the data is gone
    /// (the kernel may drop the dirty pages it could not write: PostgreSQL's "fsyncgate"). Stop the node and
    /// restart it from disk with `DiskStorage::open`, which reads back only what really is there.
    #[error("storage stopped after an earlier failure ({cause}); restart the node from disk")]
    Stopped { cause: String },

    /// A WAL record failed its checksum (or decoded to something impossible) before the end of the log. It is
    /// never skipped: the entries in and after it may have been acknowledged to a leader, so dropping them could
    /// lose committed data.
    #[error(
        "corrupt WAL record in {path} at offset {offset}: {reason}. The node refuses to start because entries at \
         or after this point may have been acknowledged. Restore this node's data directory from a backup, or \
         remove the node from the cluster and re-add it empty so it catches up from the leader"
    )]
    CorruptRecord { path: PathBuf, offset: u64, reason: String },

    /// A record carries a format version this build does not read (written by a newer keel, or damaged in a way
    /// its header checksum did not catch).
    #[error(
        "{path} at offset {offset} has format version {version}; this build reads version {supported} only. \
         Run the keel version that wrote it, or re-add this node empty"
    )]
    UnknownVersion { path: PathBuf, offset: u64, version: u8, supported: u8 },

    /// The WAL refers to a snapshot file that is not there.
    #[error(
        "snapshot file {path} (snapshot through index {index}) is missing although the WAL refers to it; \
         restore it from a backup or re-add this node empty"
    )]
    SnapshotMissing { path: PathBuf, index: Index },

    /// The snapshot file the WAL refers to does not match what was written.
    #[error("snapshot file {path} (snapshot through index {index}) is corrupt: {reason}")]
    SnapshotCorrupt { path: PathBuf, index: Index, reason: String },

    /// The segments on disk do not hold a contiguous log after the snapshot: a segment is missing.
    #[error(
        "the WAL in {dir} lacks entries {first_missing}..={last_missing} (a segment file is missing); \
         restore the data directory from a backup or re-add this node empty"
    )]
    MissingEntries { dir: PathBuf, first_missing: Index, last_missing: Index },

    /// The update breaks the log's invariants (a gap, a term going back). Nothing was written; this is a bug in
    /// the caller, reported rather than stored.
    #[error("refused an invalid update (nothing written): {reason}")]
    InvalidUpdate { reason: String },

    /// The update encodes to more than one record may hold. Nothing was written.
    #[error("an update of {size_bytes} bytes exceeds the {size_bytes_max}-byte record limit (nothing written)")]
    UpdateTooLarge { size_bytes: usize, size_bytes_max: usize },
}

impl Error {
    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { op, path, source }
    }
}
