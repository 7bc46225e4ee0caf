//! keel-replica: one Raft replica, sans-IO. It owns a [`keel_raft::RaftNode`], a [`Service`] (the replicated state
//! machine) and a [`keel_storage::Storage`], and is the one implementation of the Ready loop that joins them:
//! hand out a leader's early messages (its AppendEntries may leave before its own fsync), persist, then hand out
//! the other messages, then apply, then snapshot when the policy says so.
//!
//! Every driver (the simulator, the tokio runtime) runs this loop and nothing else: a driver feeds inputs (ticks,
//! peer messages, proposals), calls [`Replica::advance`] until it returns `None`, sends the messages each step
//! hands out, and passes on the outcomes of proposals. No rule that correctness depends on lives in a driver, so
//! the simulator, which runs this code, tests what production runs.
//!
//! ```text
//!   driver:  tick / step(msg) / propose(cmd)
//!              |
//!              v
//!   Replica::advance() ── take_ready ──> early messages (a leader's AppendEntries) ──> returned to send at once
//!              |                           |          (then the next advance() goes on from here)
//!              |                           v
//!              |                      persist (storage; durable before any other message leaves)
//!              |                           |
//!              |                           v
//!              |                      messages  ──> returned to the driver to send
//!              |                           |
//!              |                           v
//!              |                      applies   ──> Service::apply / Service::restore
//!              |                           |            └─> outcome of the proposal at that index
//!              |                           v
//!              |                      snapshot policy ──> Service::snapshot ──> RaftNode::snapshot
//!              v
//!   Some(Advanced) until the node is quiet, then None
//! ```
mod error;
mod proposals;
mod replica;
mod service;
mod snapshot_policy;

pub use error::ReplicaError;
pub use proposals::{Outcome, Proposal, UnknownReason};
pub use replica::{Advanced, Replica, Stopped};
pub use service::Service;
pub use snapshot_policy::{ENTRY_OVERHEAD_BYTES, SnapshotPolicy};
