//! The per-peer task that owns this node's one outbound connection to a peer.
//!
//! ```text
//!        start                                        +-------------------+
//!          |               jittered delay elapsed     |                   |
//!          v   +--------------------------------------+    BackingOff     |
//!     Connecting ------ connect failed / timed out -------->  (delay from   |
//!          | TCP up                                        |  backoff_min,  |
//!          v                                               |  doubling up   |
//!     Handshaking ----- refused / timed out / bad reply -->|  to            |
//!          | Accepted (backoff reset)                      |  backoff_max)  |
//!          v                                               |                |
//!      Connected ------ write failed / peer closed ------->+----------------+
//!
//!   From every state: shutdown, or every Transport handle dropped -> the task ends, the connection closes.
//! ```
//! Messages wait in the bounded queue in every state; only `Connected` takes them out. There, each wake-up
//! drains every queued message (up to [`COALESCE_BYTES_MAX`]), encodes them back to back into one buffer and
//! writes it with one `write_all`: under load a burst costs one system call, not one per message.
use std::io;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::{sleep, timeout};
use tracing::{debug, error, info, warn};

use crate::NodeId;
use crate::backoff::Backoff;
use crate::frame::{self, BLOCKING_CODEC_BYTES_MIN, FrameError};
use crate::handshake::{HANDSHAKE_FRAME_BYTES_MAX, Hello, HelloReply};
use crate::queue::Queued;
use crate::shared::{Shared, stopped};
use crate::socket_options::tune_peer_socket;
use crate::stats::PeerCounters;

/// A batch stops taking messages from the queue once its frames reach this size, so one write never holds
/// more than this plus one frame in memory. Large enough that small messages coalesce by the thousand.
pub const COALESCE_BYTES_MAX: usize = 4 * 1024 * 1024;

/// Bytes the connected task reads from the acceptor at a time. The acceptor sends nothing after `Accepted`;
/// the task reads only to notice the connection closing (a restarted peer) without waiting for a write to
/// fail.
const PROBE_BYTES: usize = 64;

/// Why a dial did not end connected.
#[derive(Debug, thiserror::Error)]
enum DialFailure {
    #[error("connect failed: {0}")]
    Connect(io::Error),
    #[error("connect timed out after {0} ms")]
    ConnectTimeout(u64),
    #[error("handshake timed out after {0} ms (is this a keel node?)")]
    HandshakeTimeout(u64),
    #[error("the peer refused the handshake: {0}")]
    Refused(String),
    #[error("handshake failed: {0}")]
    Handshake(FrameError),
}

/// Why a connected period ended.
enum ConnectionEnd {
    /// Every `Transport` handle is gone: nothing more can be queued.
    QueueClosed,
    Lost(String),
}

/// Runs the link to `peer` until shutdown. Owns the peer's queue receiver.
pub(crate) async fn run_peer_link<M: Serialize + Send + 'static>(
    shared: Arc<Shared>,
    peer: NodeId,
    address: String,
    mut queue: mpsc::Receiver<Queued<M>>,
    mut shutdown: watch::Receiver<bool>,
    backoff_seed: u64,
) {
    let Some(counters) = shared.peer_counters(peer) else {
        error!(peer, "no counters for a configured peer: transport bug, link not started");
        return;
    };
    let config = &shared.config;
    let mut backoff = Backoff::new(config.backoff_min_ms, config.backoff_max_ms, backoff_seed);
    let mut failures_in_a_row: u64 = 0;
    loop {
        let attempt = tokio::select! {
            _ = stopped(&mut shutdown) => return,
            attempt = dial(&shared, counters, peer, &address) => attempt,
        };
        match attempt {
            Ok(stream) => {
                counters.connects.increment();
                backoff.reset();
                failures_in_a_row = 0;
                info!(peer, %address, "connected to peer");
                let end = tokio::select! {
                    _ = stopped(&mut shutdown) => return,
                    end = pump(&shared, counters, peer, stream, &mut queue) => end,
                };
                match end {
                    ConnectionEnd::QueueClosed => return,
                    ConnectionEnd::Lost(reason) => {
                        counters.disconnects.increment();
                        warn!(peer, %address, "connection to peer lost ({reason}); reconnecting")
                    }
                }
            }
            Err(failure) => {
                counters.connect_failures.increment();
                failures_in_a_row += 1;
                match &failure {
                    DialFailure::Refused(_) => warn!(peer, %address, "{failure}; retrying after a backoff"),
                    _ if failures_in_a_row == 1 => warn!(
                        peer, %address,
                        "cannot reach peer: {failure}; retrying with backoff (repeats logged at debug level)"
                    ),
                    _ => debug!(peer, %address, failures_in_a_row, "cannot reach peer: {failure}"),
                }
            }
        }
        let delay_ms = backoff.next_delay_ms();
        tokio::select! {
            _ = stopped(&mut shutdown) => return,
            _ = sleep(Duration::from_millis(delay_ms)) => {}
        }
    }
}

/// Connects and handshakes, each step within its timeout.
async fn dial(shared: &Shared, counters: &PeerCounters, peer: NodeId, address: &str) -> Result<TcpStream, DialFailure> {
    let config = &shared.config;
    let mut stream = match timeout(Duration::from_millis(config.connect_timeout_ms), TcpStream::connect(address)).await
    {
        Ok(Ok(stream)) => stream,
        Ok(Err(error)) => return Err(DialFailure::Connect(error)),
        Err(_) => return Err(DialFailure::ConnectTimeout(config.connect_timeout_ms)),
    };
    if let Err(error) = tune_peer_socket(&stream) {
        // Still usable, only slower for small messages or to notice a dead peer: say so rather than fail.
        warn!(peer, %address, "cannot set the connection's socket options: {error}");
    }
    let hello = Hello::new(&config.cluster_id, config.node_id, peer);
    let exchange = async {
        stream.write_all(&hello.to_frame()?).await?;
        let (reply, _) = frame::read_message::<HelloReply, _>(&mut stream, HANDSHAKE_FRAME_BYTES_MAX).await?;
        Ok::<HelloReply, FrameError>(reply)
    };
    match timeout(Duration::from_millis(config.handshake_timeout_ms), exchange).await {
        Err(_) => Err(DialFailure::HandshakeTimeout(config.handshake_timeout_ms)),
        Ok(Ok(HelloReply::Accepted)) => Ok(stream),
        Ok(Ok(HelloReply::Refused { reason })) => {
            counters.handshake_refusals_by_peer.increment();
            Err(DialFailure::Refused(reason))
        }
        Ok(Err(error)) => {
            if error.is_malformed() {
                counters.malformed_frames.increment();
            }
            Err(DialFailure::Handshake(error))
        }
    }
}

/// Moves queued messages onto the connected stream until the connection ends.
async fn pump<M: Serialize + Send + 'static>(
    shared: &Shared,
    counters: &PeerCounters,
    peer: NodeId,
    mut stream: TcpStream,
    queue: &mut mpsc::Receiver<Queued<M>>,
) -> ConnectionEnd {
    let frame_bytes_max = shared.config.frame_bytes_max;
    let (mut reader, mut writer) = stream.split();
    let mut probe = [0u8; PROBE_BYTES];
    let mut batch: Vec<u8> = Vec::new();
    loop {
        let first = tokio::select! {
            message = queue.recv() => match message {
                Some(message) => message,
                None => return ConnectionEnd::QueueClosed,
            },
            read = reader.read(&mut probe) => return ConnectionEnd::Lost(match read {
                Ok(0) => "closed by the peer".to_owned(),
                Ok(received) => {
                    counters.malformed_frames.increment();
                    format!("the peer sent {received} bytes on a one-way connection (protocol violation)")
                }
                Err(error) => error.to_string(),
            }),
        };
        batch.clear();
        let mut messages_in_batch: u64 = 0;
        let mut next = Some(first);
        while let Some(Queued { message, size_bytes_hint }) = next.take() {
            counters.queued_bytes.release(size_bytes_hint);
            let encoded = if size_bytes_hint >= BLOCKING_CODEC_BYTES_MIN as u64 {
                // Declared large: encode on the blocking pool, the batch travelling with the message.
                let mut taken = std::mem::take(&mut batch);
                let encoding = tokio::task::spawn_blocking(move || {
                    let encoded = frame::encode_frame(&mut taken, &message, frame_bytes_max);
                    (taken, encoded)
                });
                match encoding.await {
                    Ok((returned, encoded)) => {
                        batch = returned;
                        encoded
                    }
                    Err(join_error) => {
                        // The message's `Serialize` panicked; the frames already in the batch went with it.
                        counters.dropped_unencodable.add(messages_in_batch + 1);
                        error!(
                            peer,
                            "encoding a large message failed ({join_error}): it and the {messages_in_batch} \
                             messages batched before it are dropped"
                        );
                        messages_in_batch = 0;
                        continue;
                    }
                }
            } else {
                frame::encode_frame(&mut batch, &message, frame_bytes_max)
            };
            match encoded {
                Ok(_) => messages_in_batch += 1,
                Err(FrameError::TooLarge { length_bytes, limit_bytes }) => {
                    counters.dropped_too_large.increment();
                    error!(
                        peer,
                        "message of {length_bytes} bytes exceeds frame_bytes_max ({limit_bytes}): dropped; raise \
                         frame_bytes_max on every node or send smaller messages (snapshot chunks)"
                    );
                }
                Err(other) => {
                    counters.dropped_unencodable.increment();
                    error!(peer, "message does not encode, dropped: {other}");
                }
            }
            if batch.len() < COALESCE_BYTES_MAX {
                next = queue.try_recv().ok();
            }
        }
        if messages_in_batch == 0 {
            continue;
        }
        match writer.write_all(&batch).await {
            Ok(()) => {
                counters.writes.increment();
                counters.messages_sent.add(messages_in_batch);
                counters.bytes_sent.add(batch.len() as u64);
            }
            Err(error) => {
                counters.dropped_write_failed.add(messages_in_batch);
                return ConnectionEnd::Lost(format!("write failed: {error}"));
            }
        }
        if batch.capacity() > 2 * COALESCE_BYTES_MAX {
            // A snapshot went through: give its buffer back rather than pin it for the connection's life.
            batch = Vec::new();
        }
    }
}
