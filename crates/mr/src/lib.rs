//! keel's MapReduce engine: a coordinator and workers as separate processes over TCP, surviving worker
//! crashes and slow workers, as in the MapReduce paper (OSDI 2004) and MIT 6.824 Lab 1.
//!
//! See `README.md` in this crate for what a user runs, the design and its invariants.
pub mod app;
pub mod apps;
pub mod cli;
pub mod map_output;
pub mod merge;
pub mod partition;
pub mod records;
pub mod task_table;
pub mod test_apps;

pub use app::{App, AppRegistry, Combiner};
