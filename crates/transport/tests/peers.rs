//! Real transports over loopback: delivery, order, reconnects, coalescing, queue bounds, large messages.
mod common;

use std::collections::BTreeMap;

use common::*;
use keel_transport::{NodeId, SendError, Transport};

/// Sends `count` numbered messages from every node to every other node.
fn send_sequences(nodes: &[Node], count: u64) {
    for (index, (transport, _)) in nodes.iter().enumerate() {
        let from = index as NodeId + 1;
        for to in (1..=nodes.len() as NodeId).filter(|to| *to != from) {
            for n in 0..count {
                transport.send(to, TestMessage::Seq { from, n }).expect("the queue has room");
            }
        }
    }
}

/// Receives `count` messages from each other node and checks each sender's come in order with no gap.
async fn receive_sequences(
    node_id: NodeId,
    inbound: &mut keel_transport::Inbound<TestMessage>,
    senders: u64,
    count: u64,
) {
    let mut next: BTreeMap<NodeId, u64> = (1..=senders + 1).filter(|id| *id != node_id).map(|id| (id, 0)).collect();
    for _ in 0..senders * count {
        let (from, message) = receive(inbound, &format!("node {node_id}'s sequences")).await;
        let expected = next.get_mut(&from).unwrap_or_else(|| panic!("node {node_id} got a message from {from}"));
        assert_eq!(message, TestMessage::Seq { from, n: *expected }, "node {node_id}: out of order from {from}");
        *expected += 1;
    }
    assert!(next.values().all(|n| *n == count), "node {node_id} received {next:?}");
}

#[tokio::test]
async fn two_transports_exchange_messages_both_ways_in_order() {
    let mut nodes = cluster(2).await;
    send_sequences(&nodes, 500);
    for (index, (_, inbound)) in nodes.iter_mut().enumerate() {
        receive_sequences(index as NodeId + 1, inbound, 1, 500).await;
    }
    wait_until("every batch is counted", || nodes[0].0.stats()[&2].messages_sent == 500).await;
    let stats = nodes[0].0.stats();
    assert_eq!(stats[&2].messages_received, 500);
    assert_eq!((stats[&2].connects, stats[&2].accepts), (1, 1));
    assert!(stats[&2].bytes_sent > 500 * 8, "frame headers alone are 8 bytes: {:?}", stats[&2]);
    for (transport, _) in nodes {
        transport.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_transports_exchange_messages_pairwise_in_order() {
    let mut nodes = cluster(3).await;
    send_sequences(&nodes, 300);
    for (index, (_, inbound)) in nodes.iter_mut().enumerate() {
        receive_sequences(index as NodeId + 1, inbound, 2, 300).await;
    }
    for (transport, _) in nodes {
        // A sender counts a batch once its write returns, which may be after the receiver already has it.
        wait_until("every batch is counted", || transport.stats().values().all(|peer| peer.messages_sent == 300)).await;
        let stats = transport.stats();
        assert_eq!(stats.len(), 2);
        assert!(stats.values().all(|peer| peer.messages_received == 300), "{stats:?}");
        transport.shutdown().await;
    }
}

#[tokio::test]
async fn a_peer_that_starts_later_gets_the_messages_sent_once_it_is_up() {
    let listener_1 = bind().await;
    // Node 2's port is bound but nobody serves it yet: dials connect, then their handshakes time out.
    let listener_2 = bind().await;
    let (address_1, address_2) = (address_of(&listener_1), address_of(&listener_2));
    let mut config_1 = fast_config(CLUSTER, 1, [(2, address_2)].into());
    config_1.handshake_timeout_ms = 100;
    let node_1: Node = Transport::start(config_1, listener_1).expect("starts");
    wait_until("node 1 has failed to reach node 2", || node_1.0.stats()[&2].connect_failures >= 1).await;
    assert_eq!(node_1.0.stats()[&2].connects, 0);

    let mut node_2: Node =
        Transport::start(fast_config(CLUSTER, 2, [(1, address_1)].into()), listener_2).expect("starts");
    wait_until("node 1 has connected to node 2", || node_1.0.stats()[&2].connects == 1).await;
    for n in 0..50 {
        node_1.0.send(2, TestMessage::Seq { from: 1, n }).expect("queued");
    }
    for n in 0..50 {
        assert_eq!(receive(&mut node_2.1, "messages to the late node").await, (1, TestMessage::Seq { from: 1, n }));
    }
    node_1.0.shutdown().await;
    node_2.0.shutdown().await;
}

#[tokio::test]
async fn a_restarted_peer_on_the_same_address_is_reconnected() {
    let mut nodes = cluster(2).await;
    let mut node_2 = nodes.pop().expect("two nodes");
    let mut node_1 = nodes.pop().expect("two nodes");
    await_link(&node_1, &mut node_2, 1, 2).await;
    await_link(&node_2, &mut node_1, 2, 1).await;
    let address_2 = node_2.0.local_address();
    let config_2 = node_2.0.config().clone();

    node_2.0.shutdown().await;
    wait_until("node 1 has noticed node 2 went away", || node_1.0.stats()[&2].connect_failures >= 1).await;
    let listener = tokio::net::TcpListener::bind(address_2).await.expect("the port is free after shutdown");
    let mut node_2: Node = Transport::start(config_2, listener).expect("restarts");
    wait_until("node 1 has reconnected to the new node 2", || node_1.0.stats()[&2].connects == 2).await;

    for n in 0..20 {
        node_1.0.send(2, TestMessage::Seq { from: 1, n }).expect("queued");
        node_2.0.send(1, TestMessage::Seq { from: 2, n }).expect("queued");
    }
    for n in 0..20 {
        assert_eq!(receive(&mut node_2.1, "messages to the new node 2").await, (1, TestMessage::Seq { from: 1, n }));
        assert_eq!(receive(&mut node_1.1, "messages from the new node 2").await, (2, TestMessage::Seq { from: 2, n }));
    }
    // The new node 2's inbound connection to node 1 is its second accepted one there.
    let stats = node_1.0.stats()[&2];
    assert_eq!((stats.accepts, stats.disconnects), (2, 1));
    node_1.0.shutdown().await;
    node_2.0.shutdown().await;
}

#[tokio::test]
async fn a_burst_is_coalesced_into_few_writes_and_delivered_in_order() {
    let mut nodes = cluster(2).await;
    let mut node_2 = nodes.pop().expect("two nodes");
    let node_1 = nodes.pop().expect("two nodes");
    await_link(&node_1, &mut node_2, 1, 2).await;
    wait_until("the first message is counted", || node_1.0.stats()[&2].messages_sent == 1).await;
    let before = node_1.0.stats()[&2];

    const BURST: u64 = 1000;
    for n in 0..BURST {
        node_1.0.send(2, TestMessage::Seq { from: 1, n }).expect("queued");
    }
    for n in 0..BURST {
        assert_eq!(receive(&mut node_2.1, "the burst").await, (1, TestMessage::Seq { from: 1, n }));
    }
    wait_until("the burst is counted", || node_1.0.stats()[&2].messages_sent == before.messages_sent + BURST).await;
    let after = node_1.0.stats()[&2];
    let writes = after.writes - before.writes;
    assert_eq!(after.messages_sent - before.messages_sent, BURST);
    assert!(writes * 10 <= BURST, "{BURST} messages took {writes} writes: not coalesced");
    node_1.0.shutdown().await;
    node_2.0.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_drops_and_counts_exactly_the_excess() {
    let listener_1 = bind().await;
    // Node 2 never answers: connections to it are accepted by the kernel and never handshaken.
    let silent_2 = bind().await;
    let mut config = fast_config(CLUSTER, 1, [(2, address_of(&silent_2))].into());
    config.queue_messages_max = 16;
    let node_1: Node = Transport::start(config, listener_1).expect("starts");

    let results: Vec<Result<(), SendError>> =
        (0..26).map(|n| node_1.0.send(2, TestMessage::Seq { from: 1, n })).collect();
    assert!(results[..16].iter().all(Result::is_ok), "{results:?}");
    assert!(
        results[16..].iter().all(|r| *r == Err(SendError::QueueFull { to: 2, queue_messages_max: 16 })),
        "{results:?}"
    );
    let stats = node_1.0.stats()[&2];
    assert_eq!((stats.dropped_queue_full, stats.queued_messages, stats.messages_sent), (10, 16, 0));
    node_1.0.shutdown().await;
    drop(silent_2);
}

#[tokio::test]
async fn declared_sizes_are_bounded_by_the_byte_budget_and_released_when_sent() {
    let (listener_1, listener_2, silent_3) = (bind().await, bind().await, bind().await);
    let (address_1, address_2) = (address_of(&listener_1), address_of(&listener_2));
    let mut config_1 = fast_config(CLUSTER, 1, [(2, address_2), (3, address_of(&silent_3))].into());
    config_1.queue_bytes_max = 1000;
    let node_1: Node = Transport::start(config_1, listener_1).expect("starts");
    let mut node_2: Node =
        Transport::start(fast_config(CLUSTER, 2, [(1, address_1)].into()), listener_2).expect("starts");

    // Node 3 never answers: its queue only fills.
    let blob = || TestMessage::Blob(vec![1; 10]);
    assert_eq!(node_1.0.send_sized(3, blob(), 600), Ok(()));
    assert_eq!(
        node_1.0.send_sized(3, blob(), 600),
        Err(SendError::QueueBytesFull { to: 3, size_bytes: 600, queued_bytes: 600, queue_bytes_max: 1000 })
    );
    assert_eq!(node_1.0.send_sized(3, blob(), 400), Ok(()), "exactly up to the budget");
    assert_eq!(node_1.0.send(3, blob()), Ok(()), "undeclared sizes are bounded by the count only");
    let stats = node_1.0.stats()[&3];
    assert_eq!((stats.queued_bytes, stats.queued_messages, stats.dropped_queue_full), (1000, 3, 1));

    // Node 2 is up: what was declared is released as it leaves the queue, so the budget never runs out.
    for n in 0..20 {
        node_1.0.send_sized(2, TestMessage::Seq { from: 1, n }, 400).expect("the budget has room again");
        assert_eq!(receive(&mut node_2.1, "declared messages").await, (1, TestMessage::Seq { from: 1, n }));
    }
    assert_eq!(node_1.0.stats()[&2].queued_bytes, 0);
    node_1.0.shutdown().await;
    node_2.0.shutdown().await;
    drop(silent_3);
}

#[tokio::test]
async fn a_10_mib_message_round_trips() {
    let mut nodes = cluster(2).await;
    let mut node_2 = nodes.pop().expect("two nodes");
    let node_1 = nodes.pop().expect("two nodes");
    let blob: Vec<u8> = (0..10 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    // Declared large, so it is encoded on the blocking pool; the plain one after it is not, and both keep their
    // order. The receiver decodes the large one on the blocking pool too.
    node_1.0.send(2, TestMessage::Seq { from: 1, n: 0 }).expect("queued");
    node_1.0.send_sized(2, TestMessage::Blob(blob.clone()), blob.len() as u64).expect("queued");
    node_1.0.send(2, TestMessage::Blob(blob.clone())).expect("queued");
    node_1.0.send(2, TestMessage::Seq { from: 1, n: 1 }).expect("queued");
    assert_eq!(receive(&mut node_2.1, "the message before").await, (1, TestMessage::Seq { from: 1, n: 0 }));
    assert_eq!(receive(&mut node_2.1, "the declared 10 MiB blob").await, (1, TestMessage::Blob(blob.clone())));
    assert_eq!(receive(&mut node_2.1, "the undeclared 10 MiB blob").await, (1, TestMessage::Blob(blob)));
    assert_eq!(receive(&mut node_2.1, "the message after").await, (1, TestMessage::Seq { from: 1, n: 1 }));
    assert!(node_2.0.stats()[&1].bytes_received > 20 * 1024 * 1024);
    node_1.0.shutdown().await;
    node_2.0.shutdown().await;
}

#[tokio::test]
async fn a_message_above_frame_bytes_max_is_dropped_and_counted_and_the_link_survives() {
    let listener_1 = bind().await;
    let listener_2 = bind().await;
    let (address_1, address_2) = (address_of(&listener_1), address_of(&listener_2));
    let mut config_1 = fast_config(CLUSTER, 1, [(2, address_2)].into());
    config_1.frame_bytes_max = 64 * 1024;
    let node_1: Node = Transport::start(config_1, listener_1).expect("starts");
    let mut node_2: Node =
        Transport::start(fast_config(CLUSTER, 2, [(1, address_1)].into()), listener_2).expect("starts");

    node_1.0.send(2, TestMessage::Seq { from: 1, n: 0 }).expect("queued");
    node_1.0.send(2, TestMessage::Blob(vec![7; 100 * 1024])).expect("queued: the size is checked when encoded");
    // Declared large: refused by the encoder on the blocking pool the same way.
    node_1.0.send_sized(2, TestMessage::Blob(vec![7; 2 << 20]), 2 << 20).expect("queued");
    node_1.0.send(2, TestMessage::Seq { from: 1, n: 1 }).expect("queued");
    assert_eq!(receive(&mut node_2.1, "the message before").await, (1, TestMessage::Seq { from: 1, n: 0 }));
    assert_eq!(receive(&mut node_2.1, "the message after").await, (1, TestMessage::Seq { from: 1, n: 1 }));
    wait_until("both sent messages are counted", || node_1.0.stats()[&2].messages_sent == 2).await;
    let stats = node_1.0.stats()[&2];
    assert_eq!((stats.dropped_too_large, stats.connects), (2, 1));
    node_1.0.shutdown().await;
    node_2.0.shutdown().await;
}

#[tokio::test]
async fn sends_to_unknown_peers_to_itself_and_after_shutdown_are_refused() {
    let mut nodes = cluster(2).await;
    let node_2 = nodes.pop().expect("two nodes");
    let node_1 = nodes.pop().expect("two nodes");
    assert_eq!(node_1.0.send(1, TestMessage::Seq { from: 1, n: 0 }), Err(SendError::UnknownPeer { to: 1 }));
    assert_eq!(node_1.0.send(7, TestMessage::Seq { from: 1, n: 0 }), Err(SendError::UnknownPeer { to: 7 }));
    let clone = node_1.0.clone();
    node_1.0.shutdown().await;
    assert_eq!(clone.send(2, TestMessage::Seq { from: 1, n: 0 }), Err(SendError::Stopped { to: 2 }));
    node_2.0.shutdown().await;
}

#[tokio::test]
async fn dropping_every_handle_stops_the_transport_and_frees_its_port() {
    let mut nodes = cluster(2).await;
    let node_2 = nodes.pop().expect("two nodes");
    let node_1 = nodes.pop().expect("two nodes");
    let address_1 = node_1.0.local_address();
    drop(node_1);
    // The listener task ends on its own once it sees the signal; binding succeeds once it has.
    let mut rebound = None;
    wait_until("node 1's port is free", || {
        rebound = std::net::TcpListener::bind(address_1).ok();
        rebound.is_some()
    })
    .await;
    node_2.0.shutdown().await;
}

#[test]
fn the_handle_can_be_shared_across_tasks_and_threads() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Transport<TestMessage>>();
}
