//! keel-kv: a linearizable key/value service on keel's Raft (6.824 Lab 3), sans-IO.
//!
//! - [`KvService`] is the replicated state machine, a `keel_replica::Service`: `get`, `put`, `append`, `delete`,
//!   `list` and compare-and-set `put`, every key stamped with the log index of its last change. Every operation,
//!   reads included, is a [`Command`] that goes through the Raft log, so every reply is linearizable.
//! - [`Sessions`] make each (client, seq) apply at most once across retries, leader changes and restarts
//!   (the table travels in snapshots). The contract and the rules are in `dedup.rs`.
//! - [`Clerk`] is the client's retry logic as a state machine: it says where to send, and is told what came back.
//!   A transport (the simulator, a network client) drives it.
//!
//! Nothing here does I/O, reads a clock or draws a random number.
mod clerk;
mod command;
mod dedup;
mod limits;
mod service;
mod snapshot;

pub use clerk::{Action, Answer, Attempt, Clerk, ClerkError, ServerId};
pub use command::{
    COMMAND_FORMAT_VERSION, ClientId, Command, DecodeError, ListedKey, NO_SESSION, Op, Rejection, Reply, Seq,
};
pub use dedup::{Admission, Session, Sessions};
pub use limits::{
    COMMAND_BYTES_MAX, KEY_BYTES_MAX, LIST_KEYS_MAX, LIST_REPLY_BYTES_MAX, SESSIONS_MAX, STORE_BYTES_MAX,
    STORED_ENTRY_OVERHEAD_BYTES, VALUE_BYTES_MAX, stored_bytes,
};
pub use service::KvService;
pub use snapshot::{RestoreError, SNAPSHOT_FORMAT_VERSION, Stored};
