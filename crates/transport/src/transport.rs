//! The handle the runtime holds: start, send, stats, shutdown.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpListener;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{error, info};

use crate::NodeId;
use crate::config::TransportConfig;
use crate::error::{SendError, TransportError};
use crate::queue::Queued;
use crate::shared::Shared;
use crate::stats::{PeerStats, UnidentifiedStats};
use crate::{inbound, outbound};

/// What `Transport::start` hands back for receiving: every peer's messages to this node, as `(from, message)`.
pub type Inbound<M> = mpsc::Receiver<(NodeId, M)>;

/// A running transport: one listener, one outbound link per peer. Cheap to clone (an `Arc`); every clone
/// sends through the same queues. The tasks end on [`Transport::shutdown`], or when the last clone is dropped.
pub struct Transport<M> {
    inner: Arc<Inner<M>>,
}

impl<M> Clone for Transport<M> {
    fn clone(&self) -> Self {
        Transport { inner: Arc::clone(&self.inner) }
    }
}

struct Inner<M> {
    shared: Arc<Shared>,
    queues: BTreeMap<NodeId, mpsc::Sender<Queued<M>>>,
    shutdown: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    local_address: SocketAddr,
}

impl<M> Drop for Inner<M> {
    fn drop(&mut self) {
        // The last handle is gone without a shutdown: stop the tasks anyway (they hold the listener's port).
        self.shutdown.send_replace(true);
    }
}

impl<M: Serialize + DeserializeOwned + Send + 'static> Transport<M> {
    /// Starts accepting on `listener` and dialing every peer. Inbound messages arrive on the returned
    /// receiver as `(from, message)`, in order per peer connection. Must be called inside a tokio runtime.
    pub fn start(config: TransportConfig, listener: TcpListener) -> Result<(Transport<M>, Inbound<M>), TransportError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| TransportError::NoRuntime)?;
        let local_address = listener.local_addr().map_err(TransportError::Listener)?;
        let shared = Shared::new(config);
        let config = &shared.config;
        let (shutdown, shutdown_signal) = watch::channel(false);
        let (inbound_sender, inbound_receiver) = mpsc::channel(config.inbound_queue_messages_max);
        let mut tasks = Vec::with_capacity(config.peers.len() + 1);
        tasks.push(runtime.spawn(inbound::run_listener(
            Arc::clone(&shared),
            listener,
            inbound_sender,
            shutdown_signal.clone(),
        )));
        let time_seed = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_nanos() as u64);
        let mut queues = BTreeMap::new();
        for (peer, address) in &config.peers {
            let (sender, receiver) = mpsc::channel(config.queue_messages_max);
            queues.insert(*peer, sender);
            // Different per node, per peer and per start, so that nodes that lost a peer together do not
            // retry in step.
            let backoff_seed = time_seed ^ config.node_id.rotate_left(32) ^ peer.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            tasks.push(runtime.spawn(outbound::run_peer_link(
                Arc::clone(&shared),
                *peer,
                address.clone(),
                receiver,
                shutdown_signal.clone(),
                backoff_seed,
            )));
        }
        info!(node = config.node_id, %local_address, peers = ?config.peers, "transport started");
        let inner = Inner { shared: Arc::clone(&shared), queues, shutdown, tasks: Mutex::new(tasks), local_address };
        Ok((Transport { inner: Arc::new(inner) }, inbound_receiver))
    }
}

impl<M> Transport<M> {
    /// Queues `message` for peer `to`. Never blocks and never awaits. When the peer's queue is full the
    /// message is dropped and counted (`dropped_queue_full`); Raft tolerates the loss. Sending to this node
    /// itself is `UnknownPeer`: deliver such messages locally.
    pub fn send(&self, to: NodeId, message: M) -> Result<(), SendError> {
        self.send_sized(to, message, 0)
    }

    /// Like [`Transport::send`], declaring the message's approximate encoded size (say, the bytes of the
    /// entries or snapshot it carries), which counts against the peer's `queue_bytes_max` while the message
    /// waits. Use it for every message that can be large: the count bound alone lets a dead peer pin
    /// `queue_messages_max` snapshots. A size of 0 is not counted.
    pub fn send_sized(&self, to: NodeId, message: M, size_bytes: u64) -> Result<(), SendError> {
        let shared = &self.inner.shared;
        let (Some(queue), Some(counters)) = (self.inner.queues.get(&to), shared.peer_counters(to)) else {
            return Err(SendError::UnknownPeer { to });
        };
        if *self.inner.shutdown.borrow() {
            return Err(SendError::Stopped { to });
        }
        let queue_bytes_max = shared.config.queue_bytes_max;
        if let Err(queued_bytes) = counters.queued_bytes.try_reserve(size_bytes, queue_bytes_max) {
            counters.dropped_queue_full.increment();
            return Err(SendError::QueueBytesFull { to, size_bytes, queued_bytes, queue_bytes_max });
        }
        match queue.try_send(Queued { message, size_bytes_hint: size_bytes }) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => {
                counters.queued_bytes.release(size_bytes);
                counters.dropped_queue_full.increment();
                Err(SendError::QueueFull { to, queue_messages_max: shared.config.queue_messages_max })
            }
            Err(TrySendError::Closed(_)) => {
                counters.queued_bytes.release(size_bytes);
                Err(SendError::Stopped { to })
            }
        }
    }

    /// A snapshot of every configured peer's counters.
    pub fn stats(&self) -> BTreeMap<NodeId, PeerStats> {
        let shared = &self.inner.shared;
        self.inner
            .queues
            .iter()
            .filter_map(|(peer, queue)| {
                let queued_messages = (queue.max_capacity() - queue.capacity()) as u64;
                shared.peer_counters(*peer).map(|counters| (*peer, counters.snapshot(queued_messages)))
            })
            .collect()
    }

    /// Counters of inbound connections that never identified as a configured peer.
    pub fn unidentified_stats(&self) -> UnidentifiedStats {
        self.inner.shared.unidentified.snapshot()
    }

    /// The address the listener is bound to.
    pub fn local_address(&self) -> SocketAddr {
        self.inner.local_address
    }

    /// This node's configuration.
    pub fn config(&self) -> &TransportConfig {
        &self.inner.shared.config
    }

    /// Stops every task and closes every connection and the listener, and waits until they are gone (the
    /// listener's port can be bound again when this returns). Messages still queued are dropped. Other clones
    /// of this handle see `SendError::Stopped` from then on.
    pub async fn shutdown(self) {
        self.inner.shutdown.send_replace(true);
        let tasks = std::mem::take(&mut *self.inner.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        for task in tasks {
            if let Err(join_error) = task.await
                && join_error.is_panic()
            {
                error!("a transport task panicked: {join_error}");
            }
        }
        info!(node = self.inner.shared.config.node_id, "transport shut down");
    }
}
