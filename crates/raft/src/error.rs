//! Errors the core reports. None of them is fatal: the node stays consistent and keeps running.
use crate::types::{Index, NodeId, Term};

/// `propose` on a node that is not the leader.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("node {node} is not the leader (term {term}, leader hint {leader_hint:?})")]
pub struct NotLeader {
    pub node: NodeId,
    pub term: Term,
    /// The leader this node last heard from in its current term, if any.
    pub leader_hint: Option<NodeId>,
}

/// A message the node refused. The message is dropped. Malformed messages (unknown peer, absurd term or index,
/// inconsistent entries) are refused before anything changes; the rest are refused by their handler after the
/// rules every message obeys (a higher term is adopted, a current leader is recognized), never after the log
/// or commit index changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("message from {from} to {to}, but this is node {node}")]
    WrongRecipient { node: NodeId, from: NodeId, to: NodeId },
    #[error("message from {0}, which is not a member of this cluster")]
    UnknownPeer(NodeId),
    #[error("message from {from} carries absurd term {term}")]
    AbsurdTerm { from: NodeId, term: Term },
    #[error("{from} claims leadership of term {term}, which this node leads")]
    TwoLeaders { from: NodeId, term: Term },
    #[error("message from {from}: {what}")]
    Malformed { from: NodeId, what: String },
    #[error("AppendEntries from {from} would remove committed entry {index} (commit index {commit_index})")]
    WouldTruncateCommitted { from: NodeId, index: Index, commit_index: Index },
}

/// `snapshot` called with an index the node cannot compact to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot index {index} is above the last applied index {applied}")]
    NotApplied { index: Index, applied: Index },
}

/// Configuration or durable state the node cannot start from.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("node {0} is not in the member list")]
    NotAMember(NodeId),
    #[error("the member list names a node twice")]
    DuplicateMember,
    #[error(
        "timeouts must satisfy 0 < heartbeat < election min and election min + 2 <= election max (the election timeout needs a range to randomize over)"
    )]
    BadTimeouts,
    #[error("max_entries_per_append must be at least 1")]
    BadAppendLimit,
    #[error("durable state is inconsistent: {0}")]
    CorruptState(String),
}
