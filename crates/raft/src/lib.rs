//! keel-raft: the Raft consensus algorithm as a deterministic state machine that does no I/O.
//!
//! The library implements only the algorithm (extended Raft paper, Figures 2 and 13). Network, disk, clocks and
//! threads belong to the driver: inputs are ticks, peer messages, proposals and service snapshots; outputs are
//! collected in a [`Ready`]: state to persist, messages to send, committed entries to apply. [`Ready`] documents
//! the persistence contract. Given the same inputs and seed, a node produces the same outputs, byte for byte.
mod bytes_serde;
mod config;
mod error;
mod log;
mod message;
mod node;
mod progress;
mod quorum;
mod ready;
mod rng;
mod types;

pub use config::{
    Config, DEFAULT_ELECTION_TIMEOUT_TICKS_MAX, DEFAULT_ELECTION_TIMEOUT_TICKS_MIN, DEFAULT_HEARTBEAT_INTERVAL_TICKS,
    DEFAULT_MAX_BYTES_PER_APPEND, DEFAULT_MAX_ENTRIES_PER_APPEND,
};
pub use error::{ConfigError, NotLeader, SnapshotError, StepError};
pub use log::RaftLog;
pub use message::{AppendReply, Message, MessageBody};
pub use node::{RaftNode, Role};
pub use progress::Progress;
pub use ready::{Apply, DurableState, PersistUpdate, Ready};
pub use rng::Rng;
pub use types::{Entry, HardState, INDEX_LIMIT, Index, NodeId, Snapshot, SnapshotMeta, TERM_LIMIT, Term};
