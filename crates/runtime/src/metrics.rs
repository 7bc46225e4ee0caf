//! What a running node reports at `/metrics` about its replica (the HTTP front end and the transport add their
//! own). Registered once in the process's registry; updated by the replica thread as it goes.
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of per-peer series: `[("peer", "2")]`.
pub type PeerLabels = Vec<(String, String)>;

pub fn peer_labels(peer: keel_raft::NodeId) -> PeerLabels {
    vec![("peer".to_string(), peer.to_string())]
}

#[derive(Clone, Debug)]
pub struct ReplicaMetrics {
    pub term: Gauge,
    /// 0 follower, 1 pre-candidate, 2 candidate, 3 leader.
    pub role: Gauge,
    pub is_leader: Gauge,
    pub commit_index: Gauge,
    pub applied_index: Gauge,
    pub proposals: Counter,
    /// Requests this node sent to the leader, and requests it proposed for a follower.
    pub forwarded_out: Counter,
    pub forwarded_in: Counter,
    /// Seconds per persist (one write and one fdatasync of the WAL, or a snapshot file).
    pub fsync_seconds: Histogram,
    pub snapshots_taken: Counter,
    pub snapshots_installed: Counter,
    pub snapshot_bytes_last: Gauge,
    /// Inputs dropped because the replica's queue was full (peer messages: Raft tolerates the loss).
    pub inputs_dropped: Counter,
    pub messages_sent: Family<PeerLabels, Counter>,
    pub bytes_sent: Family<PeerLabels, Counter>,
    pub messages_received: Family<PeerLabels, Counter>,
    pub bytes_received: Family<PeerLabels, Counter>,
    pub messages_dropped: Family<PeerLabels, Counter>,
}

impl Default for ReplicaMetrics {
    /// Unregistered metrics (for tests and benchmarks that do not serve `/metrics`).
    fn default() -> Self {
        ReplicaMetrics {
            term: Gauge::default(),
            role: Gauge::default(),
            is_leader: Gauge::default(),
            commit_index: Gauge::default(),
            applied_index: Gauge::default(),
            proposals: Counter::default(),
            forwarded_out: Counter::default(),
            forwarded_in: Counter::default(),
            // 50 µs .. ~1.6 s.
            fsync_seconds: Histogram::new(exponential_buckets(0.000_05, 2.0, 16)),
            snapshots_taken: Counter::default(),
            snapshots_installed: Counter::default(),
            snapshot_bytes_last: Gauge::default(),
            inputs_dropped: Counter::default(),
            messages_sent: Family::default(),
            bytes_sent: Family::default(),
            messages_received: Family::default(),
            bytes_received: Family::default(),
            messages_dropped: Family::default(),
        }
    }
}

impl ReplicaMetrics {
    pub fn register(registry: &mut Registry) -> ReplicaMetrics {
        let metrics = ReplicaMetrics::default();
        let r = registry.sub_registry_with_prefix("keel_raft");
        r.register("term", "The node's current term", metrics.term.clone());
        r.register("role", "0 follower, 1 pre-candidate, 2 candidate, 3 leader", metrics.role.clone());
        r.register("is_leader", "1 while this node leads", metrics.is_leader.clone());
        r.register("commit_index", "Highest log index known committed", metrics.commit_index.clone());
        r.register("applied_index", "Highest log index applied to the service", metrics.applied_index.clone());
        r.register("proposals", "Commands this node proposed as leader", metrics.proposals.clone());
        r.register("forwarded_out", "Client requests this node forwarded to the leader", metrics.forwarded_out.clone());
        r.register("forwarded_in", "Requests this node proposed for a follower", metrics.forwarded_in.clone());
        r.register(
            "persist_seconds",
            "Time to make one update durable (write + fdatasync)",
            metrics.fsync_seconds.clone(),
        );
        r.register("snapshots_taken", "Snapshots this node's service took", metrics.snapshots_taken.clone());
        r.register("snapshots_installed", "Snapshots installed from a leader", metrics.snapshots_installed.clone());
        r.register("snapshot_bytes_last", "Size of the last snapshot taken", metrics.snapshot_bytes_last.clone());
        r.register("inputs_dropped", "Inputs dropped on a full replica queue", metrics.inputs_dropped.clone());
        r.register("peer_messages_sent", "Messages sent, by peer", metrics.messages_sent.clone());
        r.register("peer_bytes_sent", "Bytes sent, by peer", metrics.bytes_sent.clone());
        r.register("peer_messages_received", "Messages received, by peer", metrics.messages_received.clone());
        r.register("peer_bytes_received", "Bytes received, by peer", metrics.bytes_received.clone());
        r.register(
            "peer_messages_dropped",
            "Messages dropped on a full queue, by peer",
            metrics.messages_dropped.clone(),
        );
        metrics
    }
}
