//! keel-runtime: the shell that runs a keel replica as a real process. It moves bytes and time, nothing else:
//! every rule correctness depends on lives in `keel_replica::Replica` and below, which the simulator runs.
//!
//! - [`ReplicaHandle`] owns a replica on its own thread (ticks, the Ready loop, and the blocking fsync, off the
//!   async worker threads), and routes each proposal's outcome to whoever asked, forwarding a follower's
//!   requests to the leader ([`PeerMessage`]).
//! - [`DataDir`]: a node's data directory, locked against a second process and stamped with its identity.
//! - [`ReplicaMetrics`] and [`TimedStorage`]: what the node reports at `/metrics`.
pub mod data_dir;
pub mod envelope;
pub mod in_process;
pub mod metrics;
pub mod replica_thread;
pub mod timed_storage;

pub use data_dir::{DataDir, DataDirError};
pub use envelope::{ForwardResult, PeerMessage};
pub use in_process::{InProcessNetwork, InProcessSender};
pub use metrics::ReplicaMetrics;
pub use replica_thread::{ExecuteError, PeerSender, ReplicaHandle, RuntimeOptions, Status};
pub use timed_storage::TimedStorage;
