//! What a transport is told: who it is, whom it talks to, and its limits.
use std::collections::BTreeMap;

use crate::NodeId;
use crate::error::TransportError;
use crate::handshake::CLUSTER_ID_BYTES_MAX;

/// Messages queued per peer before `send` drops: at Raft's pace (a heartbeat every few tens of ms, an
/// append per proposal batch) 4096 is seconds of traffic, enough to ride out a reconnect, while bounding the
/// memory a dead peer can pin.
pub const QUEUE_MESSAGES_MAX_DEFAULT: usize = 4096;

/// Declared bytes (`Transport::send_sized`) queued per peer before sends drop: room for three snapshots of
/// 64 MiB, so that a peer catching up is not starved, while a dead peer cannot pin more than this.
pub const QUEUE_BYTES_MAX_DEFAULT: u64 = 256 * 1024 * 1024;

/// Received messages waiting for the runtime. When it is full the connection readers wait, so TCP pushes
/// back on the senders and their queues drop (counted) instead of this process buffering without bound.
pub const INBOUND_QUEUE_MESSAGES_MAX_DEFAULT: usize = 4096;

/// Largest frame body: a 64 MiB snapshot plus its message envelope and log entries, with room to spare.
pub const FRAME_BYTES_MAX_DEFAULT: usize = 80 * 1024 * 1024;

/// A dial that has not connected in this time is abandoned (and retried after a backoff).
pub const CONNECT_TIMEOUT_MS_DEFAULT: u64 = 1000;

/// A handshake not completed in this time is dropped, on either side: a silent or slow client cannot hold a
/// connection slot.
pub const HANDSHAKE_TIMEOUT_MS_DEFAULT: u64 = 2000;

/// Reconnect backoff bounds: the first retry comes quickly (a peer restarting), later ones at most once a
/// second (a peer that is down for long costs one connect attempt a second).
pub const BACKOFF_MIN_MS_DEFAULT: u64 = 20;
pub const BACKOFF_MAX_MS_DEFAULT: u64 = 1000;

/// Inbound connections still in their handshake at once; more are closed at once. With the handshake timeout
/// this bounds what strangers can hold; configured peers need only one connection each.
pub const PENDING_HANDSHAKES_MAX_DEFAULT: usize = 64;

/// Smallest `frame_bytes_max` accepted: below this even a heartbeat envelope might not fit.
pub const FRAME_BYTES_MAX_MIN: usize = 1024;

/// Configuration of one node's transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransportConfig {
    /// Peers whose `Hello` names another cluster are refused.
    pub cluster_id: String,
    /// This node.
    pub node_id: NodeId,
    /// The address ("host:port") this node dials for each peer; also the set of ids allowed to connect in.
    /// Must not contain `node_id`.
    pub peers: BTreeMap<NodeId, String>,
    /// Messages queued per peer; `send` drops (and counts) beyond it.
    pub queue_messages_max: usize,
    /// Bytes declared with `send_sized` queued per peer; `send_sized` drops (and counts) beyond it, except
    /// for a message alone in the queue.
    pub queue_bytes_max: u64,
    /// Capacity of the receiver `start` returns.
    pub inbound_queue_messages_max: usize,
    /// Largest frame body sent or accepted. Larger messages are dropped at the sender (counted as
    /// `dropped_too_large`); a larger announced frame closes the connection at the receiver.
    pub frame_bytes_max: usize,
    pub connect_timeout_ms: u64,
    pub handshake_timeout_ms: u64,
    pub backoff_min_ms: u64,
    pub backoff_max_ms: u64,
    /// Inbound connections allowed in their handshake at once.
    pub pending_handshakes_max: usize,
}

impl TransportConfig {
    /// A configuration with every tunable at its default.
    pub fn new(cluster_id: impl Into<String>, node_id: NodeId, peers: BTreeMap<NodeId, String>) -> TransportConfig {
        TransportConfig {
            cluster_id: cluster_id.into(),
            node_id,
            peers,
            queue_messages_max: QUEUE_MESSAGES_MAX_DEFAULT,
            queue_bytes_max: QUEUE_BYTES_MAX_DEFAULT,
            inbound_queue_messages_max: INBOUND_QUEUE_MESSAGES_MAX_DEFAULT,
            frame_bytes_max: FRAME_BYTES_MAX_DEFAULT,
            connect_timeout_ms: CONNECT_TIMEOUT_MS_DEFAULT,
            handshake_timeout_ms: HANDSHAKE_TIMEOUT_MS_DEFAULT,
            backoff_min_ms: BACKOFF_MIN_MS_DEFAULT,
            backoff_max_ms: BACKOFF_MAX_MS_DEFAULT,
            pending_handshakes_max: PENDING_HANDSHAKES_MAX_DEFAULT,
        }
    }

    /// Checks every field; the error names the field and what would be valid.
    pub fn validate(&self) -> Result<(), TransportError> {
        let invalid = |reason: String| Err(TransportError::InvalidConfig { reason });
        if self.cluster_id.is_empty() || self.cluster_id.len() > CLUSTER_ID_BYTES_MAX {
            return invalid(format!(
                "cluster_id must be 1 to {CLUSTER_ID_BYTES_MAX} bytes long, got {}",
                self.cluster_id.len()
            ));
        }
        if self.peers.contains_key(&self.node_id) {
            return invalid(format!("peers contains this node's own id {}: list only the other nodes", self.node_id));
        }
        for (peer, address) in &self.peers {
            let port = address.rsplit_once(':').map(|(host, port)| (host, port.parse::<u16>()));
            if !matches!(port, Some((host, Ok(_))) if !host.is_empty()) {
                return invalid(format!("peer {peer}'s address {address:?} is not \"host:port\""));
            }
        }
        if self.queue_messages_max == 0 || self.inbound_queue_messages_max == 0 || self.queue_bytes_max == 0 {
            return invalid(
                "queue_messages_max, queue_bytes_max and inbound_queue_messages_max must be at least 1".into(),
            );
        }
        if self.frame_bytes_max < FRAME_BYTES_MAX_MIN || u32::try_from(self.frame_bytes_max).is_err() {
            return invalid(format!(
                "frame_bytes_max must be between {FRAME_BYTES_MAX_MIN} and {} (the frame header's u32), got {}",
                u32::MAX,
                self.frame_bytes_max
            ));
        }
        if self.connect_timeout_ms == 0 || self.handshake_timeout_ms == 0 {
            return invalid("connect_timeout_ms and handshake_timeout_ms must be at least 1".into());
        }
        if self.backoff_min_ms == 0 || self.backoff_min_ms > self.backoff_max_ms {
            return invalid(format!(
                "need 1 <= backoff_min_ms <= backoff_max_ms, got {} and {}",
                self.backoff_min_ms, self.backoff_max_ms
            ));
        }
        if self.pending_handshakes_max == 0 {
            return invalid("pending_handshakes_max must be at least 1".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> TransportConfig {
        TransportConfig::new("c", 1, [(2, "127.0.0.1:7002".to_owned()), (3, "node3:7003".to_owned())].into())
    }

    #[test]
    fn defaults_are_valid() {
        valid().validate().expect("the defaults are valid");
    }

    #[test]
    fn each_invalid_field_is_named() {
        type BreakIt = fn(&mut TransportConfig);
        let cases: [(BreakIt, &str); 7] = [
            (|c| c.cluster_id.clear(), "cluster_id"),
            (|c| drop(c.peers.insert(1, "127.0.0.1:1".into())), "own id 1"),
            (|c| drop(c.peers.insert(4, "no-port".into())), "peer 4"),
            (|c| c.queue_messages_max = 0, "queue_messages_max"),
            (|c| c.frame_bytes_max = 10, "frame_bytes_max"),
            (|c| c.handshake_timeout_ms = 0, "handshake_timeout_ms"),
            (|c| c.backoff_min_ms = c.backoff_max_ms + 1, "backoff_min_ms"),
        ];
        for (break_it, field) in cases {
            let mut config = valid();
            break_it(&mut config);
            let error = config.validate().expect_err("invalid").to_string();
            assert!(error.contains(field), "{field}: {error}");
        }
    }
}
