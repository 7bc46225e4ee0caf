//! keel-sim: a deterministic simulator for keel-raft and a tester in the spirit of MIT 6.824's config.go.
//!
//! Virtual clock, one seeded generator, a message queue ordered by delivery time. The same seed gives the same
//! run, event for event; a failure prints its seed and the command that replays it (`KEEL_SEED=<n>`).
pub mod bench;
pub mod catalogue;
pub mod checker;
pub mod cluster;
pub mod demo;
pub mod event_queue;
pub mod invariants;
pub mod kv_catalogue;
pub mod kv_front_end;
pub mod kv_history;
pub mod kv_sweep;
pub mod kv_tester;
pub mod late_replies;
pub mod legal_traffic;
pub mod nemesis;
pub mod network;
pub mod options;
pub mod seeds;
pub mod sim_service;
pub mod stats;
pub mod storage;
pub mod sweep;
pub mod sweep_runner;
pub mod tasks;
pub mod tester;
pub mod tester_service;
pub mod timeline;
pub mod timeline_html;
pub mod trace;

pub use cluster::{Cluster, ClusterConfig, RaftOptions, Stats, TICK_MS};
pub use tester::Tester;
