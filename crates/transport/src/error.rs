//! Errors of the transport's API.
use crate::NodeId;

/// Why a transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid transport configuration: {reason}")]
    InvalidConfig { reason: String },
    #[error("Transport::start must be called inside a tokio runtime")]
    NoRuntime,
    #[error("cannot read the listener's address: {0}")]
    Listener(std::io::Error),
}

/// Why `send` did not queue a message. The message is dropped in every case (Raft tolerates loss).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Not a configured peer. Sending to this node itself is refused too: deliver such messages locally.
    #[error("node {to} is not a configured peer of this node (messages to itself must be delivered locally)")]
    UnknownPeer { to: NodeId },
    /// The peer's queue holds `queue_messages_max` messages (the peer is down or slow): dropped and counted.
    #[error("queue for node {to} is full ({queue_messages_max} messages): message dropped")]
    QueueFull { to: NodeId, queue_messages_max: usize },
    /// The peer's queue holds `queue_bytes_max` declared bytes (`send_sized`): dropped and counted.
    #[error(
        "queue for node {to} holds {queued_bytes} declared bytes, and {size_bytes} more would exceed \
         queue_bytes_max ({queue_bytes_max}): message dropped"
    )]
    QueueBytesFull { to: NodeId, size_bytes: u64, queued_bytes: u64, queue_bytes_max: u64 },
    /// The transport was shut down.
    #[error("transport is shut down: message to node {to} dropped")]
    Stopped { to: NodeId },
}
