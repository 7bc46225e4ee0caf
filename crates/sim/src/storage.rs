//! In-memory durable storage: keel-storage's `MemStorage`. A crash keeps exactly what was persisted; the cluster
//! models "handed to storage but not yet durable" by dropping a Ready before it reaches `persist`.
pub use keel_storage::MemStorage;
