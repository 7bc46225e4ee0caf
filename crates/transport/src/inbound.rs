//! The listener and the inbound connections: peers' messages to this node.
//!
//! Each accepted connection gets a task: it holds one of `pending_handshakes_max` slots until its `Hello` is
//! checked (or `handshake_timeout_ms` passes), then reads frames and hands the decoded messages to the
//! receiver `Transport::start` returned, tagged with the peer's id. Every failure closes that connection only;
//! the listener keeps serving the others. A peer has at most one inbound connection: a newer one that
//! completes its handshake (a restarted peer) closes the older.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout};
use tracing::{debug, error, info, warn};

use crate::NodeId;
use crate::frame::{self, BLOCKING_CODEC_BYTES_MIN, FRAME_HEADER_BYTES, FrameError};
use crate::handshake::{self, AcceptorIdentity, HANDSHAKE_FRAME_BYTES_MAX, HelloReply, HelloVerdict};
use crate::shared::{Shared, stopped};
use crate::socket_options::tune_peer_socket;

/// Read buffer of an inbound connection: a frame header and a small body cost no system call of their own.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// Pause after a failed `accept` (out of file descriptors, typically) so the loop does not spin while the
/// condition lasts.
const ACCEPT_ERROR_PAUSE_MS: u64 = 100;

/// The inbound connection currently serving each peer, so that a newer one can close it.
#[derive(Default)]
struct Registry {
    next_connection_id: u64,
    current: BTreeMap<NodeId, (u64, oneshot::Sender<()>)>,
}

type SharedRegistry = Arc<Mutex<Registry>>;

/// Accepts connections until shutdown, then closes every inbound connection.
pub(crate) async fn run_listener<M: DeserializeOwned + Send + 'static>(
    shared: Arc<Shared>,
    listener: TcpListener,
    inbound: mpsc::Sender<(NodeId, M)>,
    mut shutdown: watch::Receiver<bool>,
) {
    let handshake_slots = Arc::new(Semaphore::new(shared.config.pending_handshakes_max));
    let registry = SharedRegistry::default();
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped(&mut shutdown) => break,
            Some(ended) = connections.join_next(), if !connections.is_empty() => {
                if let Err(join_error) = ended
                    && join_error.is_panic()
                {
                    error!("an inbound connection task panicked: {join_error}");
                }
            }
            accepted = listener.accept() => match accepted {
                Ok((stream, address)) => {
                    shared.unidentified.connections_accepted.increment();
                    let Ok(slot) = handshake_slots.clone().try_acquire_owned() else {
                        shared.unidentified.connections_over_limit.increment();
                        warn!(%address, "closing inbound connection: {} handshakes already pending \
                              (pending_handshakes_max)", shared.config.pending_handshakes_max);
                        continue;
                    };
                    connections.spawn(serve_connection(
                        shared.clone(), stream, address, slot, inbound.clone(), registry.clone(),
                    ));
                }
                Err(error) => {
                    warn!("accepting a connection failed: {error}; pausing {ACCEPT_ERROR_PAUSE_MS} ms");
                    tokio::select! {
                        _ = stopped(&mut shutdown) => break,
                        _ = sleep(Duration::from_millis(ACCEPT_ERROR_PAUSE_MS)) => {}
                    }
                }
            },
        }
    }
    // Dropping the listener here frees the port; aborting the connection tasks closes their sockets.
    drop(listener);
    connections.shutdown().await;
}

/// One inbound connection: handshake, then frames until it ends.
async fn serve_connection<M: DeserializeOwned + Send + 'static>(
    shared: Arc<Shared>,
    stream: TcpStream,
    address: SocketAddr,
    handshake_slot: OwnedSemaphorePermit,
    inbound: mpsc::Sender<(NodeId, M)>,
    registry: SharedRegistry,
) {
    if let Err(error) = tune_peer_socket(&stream) {
        warn!(%address, "cannot set an inbound connection's socket options: {error}");
    }
    // Buffered from the first byte, so that nothing a client sends right behind its Hello is lost.
    let mut stream = BufReader::with_capacity(READ_BUFFER_BYTES, stream);
    let handshake_timeout_ms = shared.config.handshake_timeout_ms;
    let from =
        match timeout(Duration::from_millis(handshake_timeout_ms), accept_handshake(&shared, &mut stream, address))
            .await
        {
            Ok(Some(from)) => from,
            Ok(None) => return,
            Err(_) => {
                shared.unidentified.handshake_timeouts.increment();
                warn!(%address, "closing inbound connection: no complete handshake within {handshake_timeout_ms} ms");
                return;
            }
        };
    drop(handshake_slot);
    let Some(counters) = shared.peer_counters(from) else {
        debug_assert!(false, "check_hello accepted node {from}, which is not a configured peer");
        return;
    };
    counters.accepts.increment();
    let (connection_id, mut replaced) = register(&registry, from);
    info!(peer = from, %address, "accepted connection from peer");
    let frame_bytes_max = shared.config.frame_bytes_max;
    loop {
        let read = tokio::select! {
            _ = &mut replaced => {
                info!(peer = from, %address, "closing inbound connection: the peer connected again");
                break;
            }
            read = read_message::<M>(&mut stream, frame_bytes_max) => read,
        };
        match read {
            Ok((message, frame_bytes)) => {
                counters.messages_received.increment();
                counters.bytes_received.add(frame_bytes as u64);
                // Waits while the receiver is full: TCP then pushes back on the peer, whose queue drops.
                let delivered = tokio::select! {
                    _ = &mut replaced => {
                        info!(peer = from, %address, "closing inbound connection: the peer connected again");
                        break;
                    }
                    delivered = inbound.send((from, message)) => delivered,
                };
                if delivered.is_err() {
                    debug!(peer = from, %address, "closing inbound connection: the receiver was dropped");
                    break;
                }
            }
            Err(FrameError::Closed) => {
                info!(peer = from, %address, "inbound connection closed by the peer");
                break;
            }
            Err(error) if error.is_malformed() => {
                counters.malformed_frames.increment();
                warn!(peer = from, %address, "closing inbound connection: malformed frame: {error}");
                break;
            }
            Err(error) => {
                warn!(peer = from, %address, "inbound connection failed: {error}");
                break;
            }
        }
    }
    unregister(&registry, from, connection_id);
}

/// Reads and checks the `Hello`, answers it, and returns the peer's id if accepted. Every failure is counted
/// and logged here.
async fn accept_handshake(shared: &Shared, stream: &mut BufReader<TcpStream>, address: SocketAddr) -> Option<NodeId> {
    let body = match frame::read_frame(stream, HANDSHAKE_FRAME_BYTES_MAX).await {
        Ok(body) => body,
        Err(error) if error.is_malformed() => {
            shared.unidentified.malformed_frames.increment();
            warn!(%address, "closing inbound connection: its first frame is malformed: {error}");
            return None;
        }
        Err(error) => {
            debug!(%address, "inbound connection ended before its handshake: {error}");
            return None;
        }
    };
    let config = &shared.config;
    let identity = AcceptorIdentity { cluster_id: &config.cluster_id, node_id: config.node_id, peers: &config.peers };
    match handshake::check_hello(&body, &identity) {
        HelloVerdict::Accepted { from } => match write_reply(stream, &HelloReply::Accepted).await {
            Ok(()) => Some(from),
            Err(error) => {
                debug!(peer = from, %address, "inbound connection failed while accepting its handshake: {error}");
                None
            }
        },
        HelloVerdict::Refused { claimed_from, refusal } => {
            match claimed_from.and_then(|from| shared.peer_counters(from)) {
                Some(counters) => counters.handshake_refusals_of_peer.increment(),
                None => shared.unidentified.handshake_refusals.increment(),
            }
            warn!(%address, claimed_from, "refusing inbound handshake: {refusal}");
            let reply = HelloReply::Refused { reason: refusal.to_string() };
            if let Err(error) = write_reply(stream, &reply).await {
                debug!(%address, "could not send the refusal: {error}");
            }
            // Close our side cleanly so the refusal is read before the end of the stream.
            let _ = stream.shutdown().await;
            None
        }
        HelloVerdict::Malformed(error) => {
            shared.unidentified.malformed_frames.increment();
            warn!(%address, "closing inbound connection: its first frame is not a Hello: {error}");
            None
        }
    }
}

/// Reads one frame and decodes it, on the blocking pool when it is large (see [`BLOCKING_CODEC_BYTES_MIN`]).
async fn read_message<M: DeserializeOwned + Send + 'static>(
    stream: &mut BufReader<TcpStream>,
    frame_bytes_max: usize,
) -> Result<(M, usize), FrameError> {
    let body = frame::read_frame(stream, frame_bytes_max).await?;
    let frame_bytes = FRAME_HEADER_BYTES + body.len();
    if body.len() < BLOCKING_CODEC_BYTES_MIN {
        return Ok((frame::decode_body(&body)?, frame_bytes));
    }
    match tokio::task::spawn_blocking(move || frame::decode_body::<M>(&body)).await {
        Ok(decoded) => Ok((decoded?, frame_bytes)),
        // The message type's `Deserialize` panicked on this body: as far as this connection goes, the frame
        // is unreadable.
        Err(join_error) => Err(FrameError::Io(std::io::Error::other(format!("decoding panicked: {join_error}")))),
    }
}

async fn write_reply(stream: &mut BufReader<TcpStream>, reply: &HelloReply) -> Result<(), FrameError> {
    stream.write_all(&reply.to_frame()?).await?;
    Ok(())
}

/// Makes this connection the peer's current one and closes the previous one, if any.
fn register(registry: &SharedRegistry, peer: NodeId) -> (u64, oneshot::Receiver<()>) {
    // A poisoned lock only means another task panicked while holding it; the map is still consistent
    // (every update is a single insert or remove).
    let mut registry = registry.lock().unwrap_or_else(PoisonError::into_inner);
    registry.next_connection_id += 1;
    let connection_id = registry.next_connection_id;
    let (replace, replaced) = oneshot::channel();
    if let Some((_, previous)) = registry.current.insert(peer, (connection_id, replace)) {
        // The older connection's task may already be gone: then there is nobody to tell.
        let _ = previous.send(());
    }
    (connection_id, replaced)
}

/// Forgets this connection unless a newer one has replaced it already.
fn unregister(registry: &SharedRegistry, peer: NodeId, connection_id: u64) {
    let mut registry = registry.lock().unwrap_or_else(PoisonError::into_inner);
    if registry.current.get(&peer).is_some_and(|(current, _)| *current == connection_id) {
        registry.current.remove(&peer);
    }
}
