//! Why a replica stopped.
use keel_raft::{Index, NodeId, SnapshotError, StepError};

/// A replica that returned one of these has stopped (fail-stop): every later call returns
/// [`ReplicaError::Stopped`]. Restart it from its storage.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError<E: std::error::Error + 'static> {
    /// Storage could not make an update durable, or could not be read at start. Nothing that depended on the
    /// update left the node. Never retried: after a failed fsync the page cache may hold data the disk does not
    /// (PostgreSQL's fsyncgate), so the only safe way on is a restart that reads what is really there.
    #[error("node {node}: storage failed: {source}")]
    Storage {
        node: NodeId,
        #[source]
        source: E,
    },
    /// The durable state does not make a valid Raft node (see the message).
    #[error("node {node}: cannot start from its durable state: {what}")]
    CorruptState { node: NodeId, what: String },
    /// The service could not restore a snapshot (see [`crate::Service::restore`]).
    #[error("node {node}: the service cannot restore the snapshot at index {index}: {what}")]
    Restore { node: NodeId, index: Index, what: String },
    /// The core refused the service's snapshot (a bug in the replica: it only snapshots applied indexes).
    #[error("node {node}: snapshot refused: {source}")]
    Snapshot {
        node: NodeId,
        #[source]
        source: SnapshotError,
    },
    /// A peer's message was refused. The replica keeps running: the message is dropped, as if lost.
    #[error("node {node}: {source}")]
    Step {
        node: NodeId,
        #[source]
        source: StepError,
    },
    /// An earlier error stopped this replica.
    #[error("node {node}: stopped after an earlier error; restart it from its storage")]
    Stopped { node: NodeId },
}
