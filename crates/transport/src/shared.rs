//! What the transport's tasks share: the configuration, the counters, and the shutdown signal.
use std::collections::BTreeMap;
use std::sync::Arc;

use tokio::sync::watch;

use crate::NodeId;
use crate::config::TransportConfig;
use crate::stats::{PeerCounters, UnidentifiedCounters};

/// Read-only after start except for the counters (atomics). Tasks hold it through an `Arc`; it holds no
/// queue sender, so tasks never keep the transport alive on their own.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: TransportConfig,
    pub(crate) peers: BTreeMap<NodeId, PeerCounters>,
    pub(crate) unidentified: UnidentifiedCounters,
}

impl Shared {
    pub(crate) fn new(config: TransportConfig) -> Arc<Shared> {
        let peers = config.peers.keys().map(|peer| (*peer, PeerCounters::default())).collect();
        Arc::new(Shared { config, peers, unidentified: UnidentifiedCounters::default() })
    }

    /// The counters of a configured peer; `None` for any other id.
    pub(crate) fn peer_counters(&self, peer: NodeId) -> Option<&PeerCounters> {
        self.peers.get(&peer)
    }
}

/// Resolves once shutdown is signalled, or once the signal's sender is gone (every `Transport` handle dropped
/// without a shutdown): either way the task should end.
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}
