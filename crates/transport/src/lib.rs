//! keel-transport: the TCP transport for Raft peer traffic, generic over the message type.
//!
//! Each node listens on one port and dials each peer once. A connection starts with a versioned handshake
//! (`handshake.rs`) and then carries checksummed, length-prefixed postcard frames (`frame.rs`) one way: from
//! the dialer to the acceptor. Each peer has a bounded queue drained by its own task (`outbound.rs`), which
//! reconnects with jittered exponential backoff (`backoff.rs`) and coalesces everything queued into one write;
//! the listener (`inbound.rs`) checks handshakes, bounds how long a stranger can stay, and delivers decoded
//! messages to one receiver. `Transport::send` never blocks: a full queue drops the message and counts it.
//!
//! The crate knows nothing of Raft: the runtime wraps its messages in whatever type it sends.
//!
//! For the driver:
//! - `Transport::start` must run inside a tokio runtime; it spawns one listener task and one task per peer.
//! - `send` to this node's own id is `SendError::UnknownPeer` (the configuration refuses a peer list that
//!   contains it): deliver messages to self locally.
//! - Use `send_sized` for anything that can be large (entries, snapshots) with an estimate of its bytes: the
//!   per-peer byte budget then bounds memory, and messages of 1 MiB or more are encoded off the async workers.
//! - Every `send` error means the message was dropped; none needs handling beyond counting (Raft retries).
//! - Read the receiver promptly: while it is full, the connections stop reading, TCP pushes back and the
//!   peers' queues drop.
//! - `shutdown().await` stops everything and returns once the listener's port is free; dropping the last
//!   handle also stops the tasks, without waiting. After either, `send` returns `SendError::Stopped`.
mod backoff;
mod config;
mod error;
pub mod frame;
pub mod handshake;
mod inbound;
mod outbound;
mod queue;
mod shared;
pub mod socket_options;
mod stats;
mod transport;

/// A node's id, as in `keel_raft`.
pub type NodeId = u64;

pub use config::{
    BACKOFF_MAX_MS_DEFAULT, BACKOFF_MIN_MS_DEFAULT, CONNECT_TIMEOUT_MS_DEFAULT, FRAME_BYTES_MAX_DEFAULT,
    HANDSHAKE_TIMEOUT_MS_DEFAULT, INBOUND_QUEUE_MESSAGES_MAX_DEFAULT, PENDING_HANDSHAKES_MAX_DEFAULT,
    QUEUE_BYTES_MAX_DEFAULT, QUEUE_MESSAGES_MAX_DEFAULT, TransportConfig,
};
pub use error::{SendError, TransportError};
pub use outbound::COALESCE_BYTES_MAX;
pub use stats::{PeerStats, UnidentifiedStats};
pub use transport::{Inbound, Transport};
