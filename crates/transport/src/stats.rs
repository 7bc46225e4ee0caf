//! Counters the transport keeps (atomics, updated by its tasks) and the plain snapshots `stats` returns.
//!
//! The runtime exports these (this crate has no metrics dependency). Every field only grows, except
//! `queued_messages` and `queued_bytes`, gauges.
use std::sync::atomic::{AtomicU64, Ordering};

use crate::queue::QueuedBytes;

/// One peer's counters as of the moment `Transport::stats` read them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Messages written to the outbound connection (a write that failed does not count them).
    pub messages_sent: u64,
    /// Frame bytes (headers included) written to the outbound connection.
    pub bytes_sent: u64,
    /// Socket writes of coalesced batches: `messages_sent / writes` is the coalescing factor.
    pub writes: u64,
    /// Messages received from the peer and decoded (then handed to the receiver, unless the connection was
    /// replaced or the receiver dropped meanwhile).
    pub messages_received: u64,
    /// Frame bytes (headers included) of those messages.
    pub bytes_received: u64,
    /// Messages refused by `send` because the peer's queue was full (of messages, or of declared bytes).
    pub dropped_queue_full: u64,
    /// Messages dropped by the connection task because their frame exceeded `frame_bytes_max`.
    pub dropped_too_large: u64,
    /// Messages dropped by the connection task because they did not encode (a failing `Serialize`).
    pub dropped_unencodable: u64,
    /// Messages that were in a batch whose write failed (the connection broke): their fate is unknown.
    pub dropped_write_failed: u64,
    /// Messages in the peer's queue right now (a gauge).
    pub queued_messages: u64,
    /// Bytes declared with `send_sized` for the messages in the queue right now (a gauge).
    pub queued_bytes: u64,
    /// Outbound connections that completed the handshake.
    pub connects: u64,
    /// Outbound attempts that did not end connected (refused, timed out, reset; refusals included).
    pub connect_failures: u64,
    /// Outbound connections lost after their handshake (write failed, peer closed).
    pub disconnects: u64,
    /// Inbound connections from the peer that completed the handshake.
    pub accepts: u64,
    /// `handshake_refusals_by_peer + handshake_refusals_of_peer`.
    pub handshake_refusals: u64,
    /// The peer refused our `Hello` (its reason is logged).
    pub handshake_refusals_by_peer: u64,
    /// We refused a `Hello` that claimed to come from this peer (reason logged).
    pub handshake_refusals_of_peer: u64,
    /// Frames from or about this peer that were not valid: bad checksum, oversized, undecodable, cut short.
    pub malformed_frames: u64,
}

/// Inbound connections that never identified as a configured peer (strangers, garbage, silence).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnidentifiedStats {
    /// Connections accepted by the listener (peers and strangers alike).
    pub connections_accepted: u64,
    /// Closed at once because `pending_handshakes_max` handshakes were already in progress.
    pub connections_over_limit: u64,
    /// Closed because no `Hello` arrived within `handshake_timeout_ms`.
    pub handshake_timeouts: u64,
    /// `Hello`s refused that did not name a configured peer as `from`.
    pub handshake_refusals: u64,
    /// First frames that were not a valid frame or not a `Hello`.
    pub malformed_frames: u64,
}

/// A counter that only grows.
#[derive(Debug, Default)]
pub(crate) struct Counter(AtomicU64);

impl Counter {
    pub(crate) fn add(&self, amount: u64) {
        // Relaxed: counters are statistics, nothing synchronises through them.
        self.0.fetch_add(amount, Ordering::Relaxed);
    }

    pub(crate) fn increment(&self) {
        self.add(1);
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// The live counters of one peer.
#[derive(Debug, Default)]
pub(crate) struct PeerCounters {
    pub(crate) messages_sent: Counter,
    pub(crate) bytes_sent: Counter,
    pub(crate) writes: Counter,
    pub(crate) messages_received: Counter,
    pub(crate) bytes_received: Counter,
    pub(crate) dropped_queue_full: Counter,
    pub(crate) dropped_too_large: Counter,
    pub(crate) dropped_unencodable: Counter,
    pub(crate) dropped_write_failed: Counter,
    pub(crate) connects: Counter,
    pub(crate) connect_failures: Counter,
    pub(crate) disconnects: Counter,
    pub(crate) queued_bytes: QueuedBytes,
    pub(crate) accepts: Counter,
    pub(crate) handshake_refusals_by_peer: Counter,
    pub(crate) handshake_refusals_of_peer: Counter,
    pub(crate) malformed_frames: Counter,
}

impl PeerCounters {
    pub(crate) fn snapshot(&self, queued_messages: u64) -> PeerStats {
        let handshake_refusals_by_peer = self.handshake_refusals_by_peer.get();
        let handshake_refusals_of_peer = self.handshake_refusals_of_peer.get();
        PeerStats {
            messages_sent: self.messages_sent.get(),
            bytes_sent: self.bytes_sent.get(),
            writes: self.writes.get(),
            messages_received: self.messages_received.get(),
            bytes_received: self.bytes_received.get(),
            dropped_queue_full: self.dropped_queue_full.get(),
            dropped_too_large: self.dropped_too_large.get(),
            dropped_unencodable: self.dropped_unencodable.get(),
            dropped_write_failed: self.dropped_write_failed.get(),
            queued_messages,
            queued_bytes: self.queued_bytes.get(),
            connects: self.connects.get(),
            connect_failures: self.connect_failures.get(),
            disconnects: self.disconnects.get(),
            accepts: self.accepts.get(),
            handshake_refusals: handshake_refusals_by_peer + handshake_refusals_of_peer,
            handshake_refusals_by_peer,
            handshake_refusals_of_peer,
            malformed_frames: self.malformed_frames.get(),
        }
    }
}

/// The live counters of unidentified inbound connections.
#[derive(Debug, Default)]
pub(crate) struct UnidentifiedCounters {
    pub(crate) connections_accepted: Counter,
    pub(crate) connections_over_limit: Counter,
    pub(crate) handshake_timeouts: Counter,
    pub(crate) handshake_refusals: Counter,
    pub(crate) malformed_frames: Counter,
}

impl UnidentifiedCounters {
    pub(crate) fn snapshot(&self) -> UnidentifiedStats {
        UnidentifiedStats {
            connections_accepted: self.connections_accepted.get(),
            connections_over_limit: self.connections_over_limit.get(),
            handshake_timeouts: self.handshake_timeouts.get(),
            handshake_refusals: self.handshake_refusals.get(),
            malformed_frames: self.malformed_frames.get(),
        }
    }
}
