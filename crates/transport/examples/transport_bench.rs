//! Throughput of keel-transport over loopback, one direction between two transports, for small and 4 KiB
//! messages, against a baseline measured in the same run: the same number of bytes pushed through a bare
//! loopback TCP connection in 64 KiB writes (the ceiling this machine's loopback allows right now).
//!
//! ```text
//! cargo run --release -p keel-transport --example transport_bench [-- small_messages large_messages]
//! ```
//! The sender keeps the peer's queue full: on `QueueFull` it waits for the receiver to make progress and
//! sends again, so the figure is what the link carries, not how fast messages can be dropped. A third line per
//! size is the codec alone (frame encode + checksum + decode on one thread, no sockets): the part of the cost
//! that belongs to postcard and the message type rather than to the transport.
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use keel_transport::{Inbound, NodeId, SendError, Transport, TransportConfig};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Shaped like a Raft append: a few integers and an opaque payload (serialised as a sequence, as
/// `keel_raft::Message` does).
#[derive(Serialize, Deserialize)]
struct BenchMessage {
    term: u64,
    index: u64,
    payload: Vec<u8>,
}

const SMALL_PAYLOAD_BYTES: usize = 16;
const LARGE_PAYLOAD_BYTES: usize = 4096;
const BASELINE_WRITE_BYTES: usize = 64 * 1024;
/// How often the receiver tells a blocked sender that the queue has room again.
const PROGRESS_EVERY_MESSAGES: u64 = 256;

struct Measured {
    messages: u64,
    frame_bytes: u64,
    writes: u64,
    elapsed: Duration,
}

async fn two_nodes()
-> ((Transport<BenchMessage>, Inbound<BenchMessage>), (Transport<BenchMessage>, Inbound<BenchMessage>)) {
    let listener_1 = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let listener_2 = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = |l: &TcpListener| l.local_addr().expect("bound").to_string();
    let peers_1: BTreeMap<NodeId, String> = [(2, address(&listener_2))].into();
    let peers_2: BTreeMap<NodeId, String> = [(1, address(&listener_1))].into();
    let node_1 = Transport::start(TransportConfig::new("bench", 1, peers_1), listener_1).expect("starts");
    let node_2 = Transport::start(TransportConfig::new("bench", 2, peers_2), listener_2).expect("starts");
    (node_1, node_2)
}

async fn measure_transport(messages: u64, payload_bytes: usize) -> Measured {
    let ((sender, _inbound_1), (receiver, mut inbound_2)) = two_nodes().await;
    // Warm up: the link is connected before the clock starts.
    sender.send(2, BenchMessage { term: 0, index: 0, payload: Vec::new() }).expect("queued");
    inbound_2.recv().await.expect("the warm-up message arrives");
    // The sender counts a batch once its write returns, possibly after the receiver already has it.
    while sender.stats()[&2].messages_sent == 0 {
        tokio::task::yield_now().await;
    }
    let before = sender.stats()[&2];

    let progress = Arc::new(Notify::new());
    let start = Instant::now();
    let consumer = tokio::spawn({
        let progress = Arc::clone(&progress);
        async move {
            let mut bytes = 0u64;
            for received in 0..messages {
                let (_, message) = inbound_2.recv().await.expect("the transport delivers every message");
                bytes += message.payload.len() as u64;
                if received % PROGRESS_EVERY_MESSAGES == 0 {
                    progress.notify_one();
                }
            }
            bytes
        }
    });
    for index in 0..messages {
        let mut message = BenchMessage { term: 1, index, payload: vec![(index % 251) as u8; payload_bytes] };
        loop {
            match sender.send(2, message) {
                Ok(()) => break,
                Err(SendError::QueueFull { .. }) => {
                    // The queue is full: wait until the receiver has taken more. The message was dropped;
                    // send it again.
                    progress.notified().await;
                    message = BenchMessage { term: 1, index, payload: vec![(index % 251) as u8; payload_bytes] };
                }
                Err(other) => panic!("send failed: {other}"),
            }
        }
    }
    let payload_total = consumer.await.expect("the consumer finishes");
    let elapsed = start.elapsed();
    assert_eq!(payload_total, messages * payload_bytes as u64);
    let after = sender.stats()[&2];
    sender.shutdown().await;
    receiver.shutdown().await;
    Measured {
        messages: after.messages_sent - before.messages_sent,
        frame_bytes: after.bytes_sent - before.bytes_sent,
        writes: after.writes - before.writes,
        elapsed,
    }
}

/// Frame encode, checksum and decode of `messages` messages, one thread, no sockets.
fn measure_codec(messages: u64, payload_bytes: usize) -> Duration {
    let mut buffer = Vec::new();
    let start = Instant::now();
    for index in 0..messages {
        buffer.clear();
        let message = BenchMessage { term: 1, index, payload: vec![(index % 251) as u8; payload_bytes] };
        keel_transport::frame::encode_frame(&mut buffer, &message, usize::MAX).expect("encodes");
        let body = &buffer[keel_transport::frame::FRAME_HEADER_BYTES..];
        assert_eq!(crc32c::crc32c(body).to_le_bytes(), buffer[4..8]);
        let decoded: BenchMessage = keel_transport::frame::decode_body(body).expect("decodes");
        assert_eq!(decoded.index, index);
    }
    start.elapsed()
}

/// The same number of bytes through a bare loopback connection.
async fn measure_baseline(total_bytes: u64) -> Duration {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let address = listener.local_addr().expect("bound");
    let reader = tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.expect("accepts");
        let mut buffer = vec![0u8; BASELINE_WRITE_BYTES];
        let mut received = 0u64;
        while received < total_bytes {
            let n = stream.read(&mut buffer).await.expect("reads");
            assert!(n > 0, "the writer closed early");
            received += n as u64;
        }
    });
    let mut stream = TcpStream::connect(address).await.expect("connects");
    stream.set_nodelay(true).expect("nodelay");
    let chunk = vec![0x5au8; BASELINE_WRITE_BYTES];
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total_bytes {
        let n = (total_bytes - sent).min(chunk.len() as u64) as usize;
        stream.write_all(&chunk[..n]).await.expect("writes");
        sent += n as u64;
    }
    reader.await.expect("the reader finishes");
    start.elapsed()
}

fn report(label: &str, measured: &Measured, baseline: Duration) {
    let seconds = measured.elapsed.as_secs_f64();
    let megabytes = measured.frame_bytes as f64 / 1e6;
    let baseline_mb_s = megabytes / baseline.as_secs_f64();
    println!(
        "{label:<22} {:>9} msgs in {:>7.3} s: {:>10.0} msgs/s, {:>8.1} MB/s of frames ({:>5.1}% of bare loopback's \
         {:>7.1} MB/s), {:>6.1} messages per write",
        measured.messages,
        seconds,
        measured.messages as f64 / seconds,
        megabytes / seconds,
        100.0 * (megabytes / seconds) / baseline_mb_s,
        baseline_mb_s,
        measured.messages as f64 / measured.writes.max(1) as f64,
    );
}

fn main() {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<u64>().expect("message counts are integers"));
    let small_messages = args.next().unwrap_or(500_000);
    let large_messages = args.next().unwrap_or(100_000);
    let runtime =
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("a tokio runtime");
    runtime.block_on(async {
        for (label, messages, payload_bytes) in [
            ("small (16 B payload)", small_messages, SMALL_PAYLOAD_BYTES),
            ("4 KiB payload", large_messages, LARGE_PAYLOAD_BYTES),
        ] {
            let measured = measure_transport(messages, payload_bytes).await;
            let baseline = measure_baseline(measured.frame_bytes).await;
            report(label, &measured, baseline);
            let codec = measure_codec(messages, payload_bytes);
            println!(
                "{:<22} codec alone (encode + crc32c + decode, one thread): {:>10.0} msgs/s",
                "",
                messages as f64 / codec.as_secs_f64()
            );
        }
    });
}
