//! keel-kv-client: an async Rust client for keel kv over its HTTP API.
//!
//! A [`Client`] is 6.824's clerk over HTTP: it has a random nonzero client id and numbers its operations 1, 2,
//! 3...; every attempt of one operation carries the same (client id, seq) in `Keel-Client-Id` / `Keel-Seq`, so
//! the cluster applies it at most once however many times, and on however many nodes, it is retried. Operations
//! take `&mut self`: one at a time per client, which is the contract exactly-once rests on (use one `Client` per
//! task for concurrency). Runnable example: `examples/counter.rs`.
//!
//! It moves to the next node on a refused connection, a 503 (no leader, overloaded, stopped: honouring
//! `Retry-After` up to a bound) and a 504 or a lost answer (outcome unknown), with a timeout per attempt and a
//! deadline per operation ([`ClientOptions`]). Errors are typed; [`Error::is_outcome_unknown`] says whether a
//! failed write may nevertheless have been applied.
//!
//! ```no_run
//! use keel_kv_client::{Client, ClientOptions, local_endpoints};
//!
//! # async fn demo() -> Result<(), keel_kv_client::Error> {
//! // The nodes of `keel kv local` (http://127.0.0.1:7101..=7103).
//! let mut client = Client::new(local_endpoints(3), ClientOptions::default())?;
//! let index = client.put("config/mode", "fast").await?;
//! client.append("log", "started;").await?;
//! if let Some(current) = client.get("config/mode").await? {
//!     println!("{} (written at index {}, our put was {index})", current.value, current.index);
//!     // Compare-and-set: only if nobody wrote the key since we read it.
//!     match client.put_if("config/mode", "safe", current.index).await {
//!         Ok(_) => println!("switched"),
//!         Err(keel_kv_client::Error::IndexMismatch { current_index, .. }) => println!("lost a race: {current_index}"),
//!         Err(other) => return Err(other),
//!     }
//! }
//! let page = client.list("config/", None, 100).await?;
//! for listed in &page.keys {
//!     println!("{} (index {})", listed.key, listed.index);
//! }
//! client.delete("log").await?;
//! # Ok(())
//! # }
//! ```
//!
//! The local-cluster layout (`LOCAL_HTTP_PORT_BASE`, `LOCAL_RAFT_PORT_BASE`, [`local_endpoints`]) lives here so
//! the CLI, the runtime and clients agree on it.
mod client;
mod error;
mod identity;
mod local;
mod options;
mod transport;
mod types;

pub use client::Client;
pub use error::Error;
pub use identity::random_client_id;
pub use local::{
    LOCAL_ENDPOINTS_DEFAULT, LOCAL_HTTP_PORT_BASE, LOCAL_NODES_DEFAULT, LOCAL_NODES_MAX, LOCAL_RAFT_PORT_BASE,
    local_endpoints, local_http_addr, local_raft_addr,
};
pub use options::{
    ATTEMPT_TIMEOUT_MS_DEFAULT, CONNECT_TIMEOUT_MS_DEFAULT, ClientOptions, DEADLINE_MS_DEFAULT, POOL_IDLE_TIMEOUT_MS,
    RESPONSE_BYTES_MAX, RETRY_AFTER_MAX_MS_DEFAULT, ROUND_BACKOFF_MS_DEFAULT, UNREACHABLE_ROUNDS_MAX_DEFAULT,
};
pub use types::{Deleted, ListPage, ListedKey, NodeStatus, Versioned};
