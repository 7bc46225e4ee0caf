//! Helpers shared by the transport's integration tests: loopback clusters, deadlines, raw clients, logs.
#![allow(dead_code)] // each test binary uses a different subset

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use keel_transport::frame::{self, FRAME_HEADER_BYTES};
use keel_transport::handshake::{HANDSHAKE_FRAME_BYTES_MAX, Hello, HelloReply};
use keel_transport::{Inbound, NodeId, Transport, TransportConfig};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

/// How long any test waits for something that should happen: generous, since CI machines are shared.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub const CLUSTER: &str = "test-cluster";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TestMessage {
    /// The `n`th message `from` sent to one peer.
    Seq {
        from: NodeId,
        n: u64,
    },
    Blob(Vec<u8>),
}

pub type Node = (Transport<TestMessage>, Inbound<TestMessage>);

pub async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.expect("binding a loopback port")
}

/// A peer address that nobody serves (the kernel accepts connections, nobody answers): the test holds the
/// listener for as long as the address must stay its own.
pub async fn unserved() -> (TcpListener, String) {
    let listener = bind().await;
    let address = address_of(&listener);
    (listener, address)
}

pub fn address_of(listener: &TcpListener) -> String {
    listener.local_addr().expect("a bound listener has an address").to_string()
}

/// A configuration with short timeouts so that failures and retries happen within a test's patience.
pub fn fast_config(cluster_id: &str, node_id: NodeId, peers: BTreeMap<NodeId, String>) -> TransportConfig {
    let mut config = TransportConfig::new(cluster_id, node_id, peers);
    config.connect_timeout_ms = 1000;
    config.handshake_timeout_ms = 1000;
    config.backoff_min_ms = 5;
    config.backoff_max_ms = 100;
    config
}

/// Starts nodes 1..=n, each configured with every other node's address.
pub async fn cluster(n: u64) -> Vec<Node> {
    let mut listeners = BTreeMap::new();
    for id in 1..=n {
        listeners.insert(id, bind().await);
    }
    let addresses: BTreeMap<NodeId, String> = listeners.iter().map(|(id, l)| (*id, address_of(l))).collect();
    let mut nodes = Vec::new();
    for (id, listener) in listeners {
        let peers = addresses.iter().filter(|(peer, _)| **peer != id).map(|(p, a)| (*p, a.clone())).collect();
        nodes.push(Transport::start(fast_config(CLUSTER, id, peers), listener).expect("transport starts"));
    }
    nodes
}

/// The next inbound message, or a panic naming what was awaited.
pub async fn receive(inbound: &mut Inbound<TestMessage>, what: &str) -> (NodeId, TestMessage) {
    match tokio::time::timeout(DEADLINE, inbound.recv()).await {
        Ok(Some(received)) => received,
        Ok(None) => panic!("inbound channel closed while waiting for {what}"),
        Err(_) => panic!("no message within {DEADLINE:?} while waiting for {what}"),
    }
}

/// Polls `condition` until it holds, or panics after [`DEADLINE`] naming it.
pub async fn wait_until(what: &str, mut condition: impl FnMut() -> bool) {
    let start = Instant::now();
    while !condition() {
        assert!(start.elapsed() < DEADLINE, "timed out after {DEADLINE:?} waiting until {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Sends until the first message arrives: the link from `from` to `to` is up.
pub async fn await_link(from: &Node, to: &mut Node, from_id: NodeId, to_id: NodeId) {
    from.0.send(to_id, TestMessage::Seq { from: from_id, n: u64::MAX }).expect("queued");
    let (sender, message) = receive(&mut to.1, "the first message on a new link").await;
    assert_eq!((sender, message), (from_id, TestMessage::Seq { from: from_id, n: u64::MAX }));
}

/// Opens a raw connection and sends a `Hello`; returns the stream and the reply.
pub async fn raw_handshake(address: SocketAddr, hello: &Hello) -> (TcpStream, HelloReply) {
    let mut stream = TcpStream::connect(address).await.expect("connects to the transport");
    stream.write_all(&hello.to_frame().expect("a Hello encodes")).await.expect("writes the Hello");
    let (reply, _) =
        tokio::time::timeout(DEADLINE, frame::read_message::<HelloReply, _>(&mut stream, HANDSHAKE_FRAME_BYTES_MAX))
            .await
            .expect("a reply within the deadline")
            .expect("a valid reply frame");
    (stream, reply)
}

/// One frame carrying `message`, as a peer would send it.
pub fn frame_of(message: &TestMessage) -> Vec<u8> {
    let mut out = Vec::new();
    frame::encode_frame(&mut out, message, usize::MAX).expect("encodes");
    out
}

/// A frame with a correct header around an arbitrary body.
pub fn frame_around(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_HEADER_BYTES + body.len());
    out.extend_from_slice(&(body.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32c::crc32c(body).to_le_bytes());
    out.extend_from_slice(body);
    out
}

/// Waits until the server closes `stream` (a read returns end of stream or an error such as a reset).
pub async fn closed_by_server(stream: &mut TcpStream) {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 256];
    loop {
        match tokio::time::timeout(DEADLINE, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue,
            Err(_) => panic!("the server did not close the connection within {DEADLINE:?}"),
        }
    }
}

/// Captures this thread's log lines (the tests run on a current-thread runtime, so every task logs here).
#[derive(Clone, Default)]
pub struct Logs(Arc<Mutex<Vec<u8>>>);

impl Logs {
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        let guard = tracing::subscriber::set_default(subscriber);
        (logs, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap_or_else(PoisonError::into_inner)).into_owned()
    }

    /// True when one line contains every one of `parts`.
    pub fn has_line_with(&self, parts: &[&str]) -> bool {
        self.text().lines().any(|line| parts.iter().all(|part| line.contains(part)))
    }
}

impl Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
