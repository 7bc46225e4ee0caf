//! What the HTTP front end needs from a node: run a command through the replicated log, and say how the node is.
//! The runtime implements [`KvBackend`] over a real replica; the tests use [`crate::FakeBackend`].
use std::future::Future;

use serde::Serialize;

/// A node, as the front end sees it.
///
/// How a replica's proposal outcomes map (see `keel_replica`'s `proposals.rs`): `Applied` is `Ok(Executed)` with
/// the service's output (identical on every replica, so a follower may answer with its own once it has applied
/// the index); `NotApplied` (another entry won the index: certainly not applied) may be proposed again by the
/// backend or answered `NoLeader`, since a client retry is then safe; `Unknown` is `Unknown`. A follower forwards
/// the very same `Command` (same client id and seq), so the leader's dedup table sees one request.
///
/// Cancellation: the front end drops the future returned by [`KvBackend::execute`] when the request's deadline
/// passes (or the client goes away). Dropping it must not cancel the proposal itself (the command may still be
/// applied, and a retry with the same (client, seq) must then get the original reply from the service), and must
/// not leak anything unbounded.
pub trait KvBackend: Send + Sync + 'static {
    /// Runs `command` through the replicated log (forwarding to the leader when this node is not it) and resolves
    /// once THIS node has applied it, with the log index it was applied at and the service's reply.
    fn execute(&self, command: keel_kv::Command) -> impl Future<Output = Result<Executed, BackendError>> + Send;

    /// The node's current view of the cluster. Cheap and non-blocking: `/v1/status` calls it on every request.
    fn status(&self) -> NodeStatus;
}

/// A command applied by this node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// The log index the command was applied at (a read's linearization point; a retried write's reply carries
    /// the index of its first application, this one the index of the retry).
    pub index: keel_raft::Index,
    pub reply: keel_kv::Reply,
}

/// Why a command has no reply. Each variant maps to one HTTP status and code (see `reply_mapping.rs`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackendError {
    /// No leader is known (an election is under way, or this node is cut off). Nothing was proposed: 503 with
    /// `Retry-After`.
    NoLeader,
    /// The command was proposed but no outcome came in time: unknown, the write may still apply. 504.
    TimedOut,
    /// The command was proposed and its fate became unknowable (leadership lost, a snapshot installed over it):
    /// 504 too, with its own code.
    Unknown { reason: String },
    /// The node shut down or failed (a storage error): 503; another node may serve the request.
    Stopped { reason: String },
    /// Too many requests in flight on this node: nothing was proposed. 503 with `Retry-After`.
    Overloaded,
}

/// `GET /v1/status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeStatus {
    pub id: u64,
    pub role: Role,
    pub term: u64,
    pub leader: Option<u64>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub members: Vec<u64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    Leader,
    Follower,
    Candidate,
    PreCandidate,
}
