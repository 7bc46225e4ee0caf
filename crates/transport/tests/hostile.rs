//! Refused handshakes, malformed frames, silent and replaced connections: each closes one connection, is
//! counted and logged, and never stops the transport from serving legitimate peers.
mod common;

use std::time::{Duration, Instant};

use common::*;
use keel_transport::handshake::{Hello, HelloReply, PROTOCOL_VERSION};
use keel_transport::{NodeId, Transport};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc::error::TryRecvError;

/// Node `id` of `cluster_id` listening on a fresh port and dialing `peers`.
async fn start_node(cluster_id: &str, id: NodeId, peers: &[(NodeId, String)]) -> Node {
    let listener = bind().await;
    Transport::start(fast_config(cluster_id, id, peers.iter().cloned().collect()), listener).expect("starts")
}

#[tokio::test]
async fn another_cluster_id_is_refused_both_ways_counted_and_logged() {
    let (logs, _guard) = Logs::capture();
    let (listener_1, listener_2) = (bind().await, bind().await);
    let (address_1, address_2) = (address_of(&listener_1), address_of(&listener_2));
    let mut node_1: Node =
        Transport::start(fast_config("cluster-a", 1, [(2, address_2.clone())].into()), listener_1).expect("starts");
    let mut node_2: Node =
        Transport::start(fast_config("cluster-b", 2, [(1, address_1)].into()), listener_2).expect("starts");
    node_1.0.send(2, TestMessage::Seq { from: 1, n: 0 }).expect("queued");
    node_2.0.send(1, TestMessage::Seq { from: 2, n: 0 }).expect("queued");

    wait_until("both sides have refused and been refused", || {
        [&node_1, &node_2].iter().all(|(transport, _)| {
            let peer = transport.stats().into_values().next().expect("one peer");
            peer.handshake_refusals_by_peer >= 1 && peer.handshake_refusals_of_peer >= 1
        })
    })
    .await;
    for (transport, inbound) in [&mut node_1, &mut node_2] {
        let peer = transport.stats().into_values().next().expect("one peer");
        assert_eq!((peer.connects, peer.accepts, peer.messages_sent, peer.messages_received), (0, 0, 0, 0));
        assert!(peer.handshake_refusals >= 2 && peer.connect_failures >= 1, "{peer:?}");
        assert_eq!(peer.queued_messages, 1, "the message waits for a connection that is never accepted");
        assert_eq!(inbound.try_recv(), Err(TryRecvError::Empty));
    }
    // The acceptor names the address it refused and the reason; the dialer names the peer it dialed.
    assert!(logs.has_line_with(&["refusing inbound handshake", "cluster id \"cluster-a\"", "127.0.0.1:"]));
    assert!(logs.has_line_with(&["the peer refused the handshake", "cluster id", &address_2]), "{}", logs.text());
    node_1.0.shutdown().await;
    node_2.0.shutdown().await;
}

#[tokio::test]
async fn a_dialer_that_wants_another_node_id_is_refused() {
    let (logs, _guard) = Logs::capture();
    let (_unserved, unserved_address) = unserved().await;
    let mut node_3 = start_node(CLUSTER, 3, &[(1, unserved_address)]).await;
    // Node 1's peer list has node 3's address under id 2.
    let node_1 = start_node(CLUSTER, 1, &[(2, node_3.0.local_address().to_string())]).await;
    node_1.0.send(2, TestMessage::Seq { from: 1, n: 0 }).expect("queued");
    wait_until("node 3 has refused node 1", || node_3.0.stats()[&1].handshake_refusals_of_peer >= 1).await;
    wait_until("node 1 has seen the refusal", || node_1.0.stats()[&2].handshake_refusals_by_peer >= 1).await;
    assert_eq!(node_3.0.stats()[&1].accepts, 0);
    assert_eq!(node_3.1.try_recv(), Err(TryRecvError::Empty));
    assert!(logs.has_line_with(&["refusing inbound handshake", "wants node 2 but this is node 3"]), "{}", logs.text());
    node_1.0.shutdown().await;
    node_3.0.shutdown().await;
}

#[tokio::test]
async fn a_dialer_that_is_not_a_configured_peer_is_refused() {
    let (logs, _guard) = Logs::capture();
    let (_unserved, unserved_address) = unserved().await;
    let mut node_1 = start_node(CLUSTER, 1, &[(2, unserved_address)]).await;
    let node_9 = start_node(CLUSTER, 9, &[(1, node_1.0.local_address().to_string())]).await;
    node_9.0.send(1, TestMessage::Seq { from: 9, n: 0 }).expect("queued");
    wait_until("node 1 has refused node 9", || node_1.0.unidentified_stats().handshake_refusals >= 1).await;
    wait_until("node 9 has seen the refusal", || node_9.0.stats()[&1].handshake_refusals_by_peer >= 1).await;
    assert_eq!(node_1.1.try_recv(), Err(TryRecvError::Empty));
    assert!(logs.has_line_with(&["refusing inbound handshake", "node 9 is not among", "[2]"]), "{}", logs.text());
    node_1.0.shutdown().await;
    node_9.0.shutdown().await;
}

#[tokio::test]
async fn another_protocol_version_or_magic_is_refused_with_its_reason() {
    let (logs, _guard) = Logs::capture();
    let (_unserved, unserved_address) = unserved().await;
    let mut node_1 = start_node(CLUSTER, 1, &[(2, unserved_address)]).await;
    let address = node_1.0.local_address();
    let newer = format!("protocol version {}", PROTOCOL_VERSION + 1);
    let cases = [
        (Hello { protocol_version: PROTOCOL_VERSION + 1, ..Hello::new(CLUSTER, 2, 1) }, newer.as_str()),
        (Hello { magic: *b"HTTP", ..Hello::new(CLUSTER, 2, 1) }, "bad magic"),
    ];
    for (hello, reason) in cases {
        let (mut stream, reply) = raw_handshake(address, &hello).await;
        assert!(matches!(&reply, HelloReply::Refused { reason: r } if r.contains(reason)), "{reply:?}");
        // Refused, then closed: whatever the client sends next goes nowhere.
        let _ = stream.write_all(&frame_of(&TestMessage::Seq { from: 2, n: 0 })).await;
        closed_by_server(&mut stream).await;
        assert!(logs.has_line_with(&["refusing inbound handshake", reason]), "{}", logs.text());
    }
    assert_eq!(node_1.0.unidentified_stats().handshake_refusals, 2);
    assert_eq!(node_1.1.try_recv(), Err(TryRecvError::Empty));
    node_1.0.shutdown().await;
}

/// What a hostile or broken client writes after connecting (and, for most, after a valid handshake as
/// node 2).
enum Attack {
    GarbageInsteadOfHello,
    BadChecksum,
    OversizedLength,
    UndecodableBody,
    HalfFrameThenClose,
}

#[tokio::test]
async fn malformed_frames_close_their_connection_are_counted_and_a_real_peer_still_delivers() {
    let (logs, _guard) = Logs::capture();
    let listener_2 = bind().await;
    let address_2 = address_of(&listener_2);
    let mut node_1 = start_node(CLUSTER, 1, &[(2, address_2.clone())]).await;
    let address_1 = node_1.0.local_address();

    let attacks = [
        (Attack::GarbageInsteadOfHello, "first frame is malformed"),
        (Attack::BadChecksum, "checksum mismatch"),
        (Attack::OversizedLength, "exceeds the limit"),
        (Attack::UndecodableBody, "does not decode"),
        (Attack::HalfFrameThenClose, "stream ended inside a frame"),
    ];
    for (attack, logged) in attacks {
        let mut stream = match attack {
            Attack::GarbageInsteadOfHello => TcpStream::connect(address_1).await.expect("connects"),
            _ => {
                let (stream, reply) = raw_handshake(address_1, &Hello::new(CLUSTER, 2, 1)).await;
                assert_eq!(reply, HelloReply::Accepted);
                stream
            }
        };
        let valid = frame_of(&TestMessage::Seq { from: 2, n: 0 });
        let bytes: Vec<u8> = match attack {
            Attack::GarbageInsteadOfHello => b"GET / HTTP/1.1\r\nHost: keel\r\n\r\n".to_vec(),
            Attack::BadChecksum => {
                let mut corrupted = valid.clone();
                corrupted[4] ^= 0xff;
                corrupted
            }
            Attack::OversizedLength => [u32::MAX.to_le_bytes(), 0u32.to_le_bytes()].concat(),
            Attack::UndecodableBody => frame_around(&[0xff, 0xff, 0xff, 0xff, 0x0f]),
            Attack::HalfFrameThenClose => valid[..valid.len() / 2].to_vec(),
        };
        stream.write_all(&bytes).await.expect("writes");
        if matches!(attack, Attack::HalfFrameThenClose) {
            stream.shutdown().await.expect("half-closes");
        }
        closed_by_server(&mut stream).await;
        assert!(logs.has_line_with(&[logged, "127.0.0.1:"]), "no {logged:?} in:\n{}", logs.text());
    }
    let stats = node_1.0.stats()[&2];
    assert_eq!(node_1.0.unidentified_stats().malformed_frames, 1, "the garbage before any Hello");
    assert_eq!(stats.malformed_frames, 4, "one per attack after a handshake as node 2: {stats:?}");
    assert_eq!(stats.messages_received, 0);
    assert_eq!(node_1.1.try_recv(), Err(TryRecvError::Empty));

    // The real node 2 still gets through, both ways.
    let mut node_2: Node =
        Transport::start(fast_config(CLUSTER, 2, [(1, address_1.to_string())].into()), listener_2).expect("starts");
    node_2.0.send(1, TestMessage::Seq { from: 2, n: 1 }).expect("queued");
    node_1.0.send(2, TestMessage::Seq { from: 1, n: 1 }).expect("queued");
    assert_eq!(receive(&mut node_1.1, "the real node 2's message").await, (2, TestMessage::Seq { from: 2, n: 1 }));
    assert_eq!(receive(&mut node_2.1, "node 1's message").await, (1, TestMessage::Seq { from: 1, n: 1 }));
    node_1.0.shutdown().await;
    node_2.0.shutdown().await;
}

#[tokio::test]
async fn a_silent_connection_does_not_block_others_and_is_dropped_after_the_timeout() {
    let (logs, _guard) = Logs::capture();
    let listener_1 = bind().await;
    let listener_2 = bind().await;
    let (address_1, address_2) = (address_of(&listener_1), address_of(&listener_2));
    let mut config_1 = fast_config(CLUSTER, 1, [(2, address_2)].into());
    config_1.handshake_timeout_ms = 400;
    let mut node_1: Node = Transport::start(config_1, listener_1).expect("starts");

    let silent_since = Instant::now();
    let mut silent = TcpStream::connect(&address_1).await.expect("connects");
    let node_2: Node = Transport::start(fast_config(CLUSTER, 2, [(1, address_1)].into()), listener_2).expect("starts");
    node_2.0.send(1, TestMessage::Seq { from: 2, n: 0 }).expect("queued");
    assert_eq!(
        receive(&mut node_1.1, "node 2's message past the silent one").await,
        (2, TestMessage::Seq { from: 2, n: 0 })
    );

    closed_by_server(&mut silent).await;
    let waited = silent_since.elapsed();
    assert!(waited >= Duration::from_millis(350), "dropped after {waited:?}, before the 400 ms timeout");
    assert_eq!(node_1.0.unidentified_stats().handshake_timeouts, 1);
    assert!(logs.has_line_with(&["no complete handshake within 400 ms", "127.0.0.1:"]), "{}", logs.text());
    node_1.0.shutdown().await;
    node_2.0.shutdown().await;
}

#[tokio::test]
async fn connections_beyond_the_pending_handshake_limit_are_closed_at_once() {
    let listener_1 = bind().await;
    let address_1 = listener_1.local_addr().expect("bound");
    let (_unserved, unserved_address) = unserved().await;
    let mut config_1 = fast_config(CLUSTER, 1, [(2, unserved_address)].into());
    config_1.pending_handshakes_max = 2;
    config_1.handshake_timeout_ms = 60_000;
    let node_1: Node = Transport::start(config_1, listener_1).expect("starts");

    let _silent_a = TcpStream::connect(address_1).await.expect("connects");
    let _silent_b = TcpStream::connect(address_1).await.expect("connects");
    wait_until("both silent connections are accepted", || node_1.0.unidentified_stats().connections_accepted == 2)
        .await;
    let mut third = TcpStream::connect(address_1).await.expect("the kernel accepts it");
    // Closed long before the 60 s handshake timeout.
    closed_by_server(&mut third).await;
    assert_eq!(node_1.0.unidentified_stats().connections_over_limit, 1);
    node_1.0.shutdown().await;
}

#[tokio::test]
async fn a_newer_connection_from_the_same_peer_replaces_the_older() {
    let (_unserved, unserved_address) = unserved().await;
    let mut node_1 = start_node(CLUSTER, 1, &[(2, unserved_address)]).await;
    let address_1 = node_1.0.local_address();
    let (mut older, reply) = raw_handshake(address_1, &Hello::new(CLUSTER, 2, 1)).await;
    assert_eq!(reply, HelloReply::Accepted);
    older.write_all(&frame_of(&TestMessage::Seq { from: 2, n: 0 })).await.expect("writes");
    assert_eq!(receive(&mut node_1.1, "the older connection's message").await, (2, TestMessage::Seq { from: 2, n: 0 }));

    let (mut newer, reply) = raw_handshake(address_1, &Hello::new(CLUSTER, 2, 1)).await;
    assert_eq!(reply, HelloReply::Accepted);
    closed_by_server(&mut older).await;
    newer.write_all(&frame_of(&TestMessage::Seq { from: 2, n: 1 })).await.expect("writes");
    assert_eq!(receive(&mut node_1.1, "the newer connection's message").await, (2, TestMessage::Seq { from: 2, n: 1 }));
    assert_eq!(node_1.0.stats()[&2].accepts, 2);
    node_1.0.shutdown().await;
}
