//! MapReduce engine (placeholder until the MapReduce issue lands).
pub mod cli;
