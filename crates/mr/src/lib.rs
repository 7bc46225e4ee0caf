//! keel's MapReduce engine: a coordinator and workers as separate processes over TCP, surviving worker
//! crashes and slow workers, as in the MapReduce paper (OSDI 2004) and MIT 6.824 Lab 1.
//!
//! See `README.md` in this crate for what a user runs, the design and its invariants. The library API for
//! your own apps: implement [`App`], register it in an [`AppRegistry`], and run [`worker::run_worker`] or the
//! whole command line, [`cli::run_with_apps`], in your binary (`examples/custom_app.rs`).
pub mod app;
pub mod apps;
pub mod cli;
pub mod coordinator;
pub mod corpus;
pub mod counters;
pub mod fast_hash;
pub mod input;
pub mod journal;
pub mod layout;
pub mod local_run;
pub mod map_file;
pub mod map_output;
pub mod maps_file;
pub mod memory;
pub mod merge;
pub mod output_lock;
pub mod partition;
pub mod protocol;
pub mod publish;
pub mod records;
pub mod reduce_input;
pub mod seq;
pub mod shuffle;
pub mod signals;
pub mod status;
pub mod status_http;
pub mod status_page;
pub mod streaming;
pub mod summary;
pub mod task_exec;
pub mod task_table;
pub mod test_apps;
pub mod units;
pub mod wire;
pub mod worker;

pub use app::{App, AppRegistry, Combiner};
pub use counters::Counters;
