//! The replica thread with the real KV service, three nodes joined in process: requests through any node,
//! forwarding to the leader, a leader's failure, no quorum, exactly-once across a forwarded retry, overload, and
//! a clean shutdown that answers everyone.
use std::sync::Arc;
use std::time::Duration;

use keel_kv::{Command, KvService, NO_SESSION, Op, Reply};
use keel_raft::{Config, Index, NodeId, Role};
use keel_replica::{Replica, SnapshotPolicy};
use keel_runtime::{ExecuteError, InProcessNetwork, ReplicaHandle, ReplicaMetrics, RuntimeOptions};
use keel_storage::MemStorage;

type Handle = Arc<ReplicaHandle<Reply>>;

fn options() -> RuntimeOptions {
    RuntimeOptions { tick_interval_ms: 2, leader_wait_ms: 3_000, ..RuntimeOptions::default() }
}

fn start(network: &Arc<InProcessNetwork<Reply>>, id: NodeId, members: &[NodeId], options: RuntimeOptions) -> Handle {
    let mut config = Config::new(id, members.to_vec(), 1000 + id);
    config.pre_vote = true;
    config.check_quorum = true;
    let replica = Replica::open(config, KvService::new(), MemStorage::default(), SnapshotPolicy::EveryEntries(50))
        .expect("a new replica opens");
    let handle =
        Arc::new(ReplicaHandle::spawn(replica, network.sender(id), options, ReplicaMetrics::default()).expect("spawn"));
    network.attach(handle.clone());
    handle
}

fn cluster(n: u64) -> (Arc<InProcessNetwork<Reply>>, Vec<Handle>) {
    let network = InProcessNetwork::new();
    let members: Vec<NodeId> = (1..=n).collect();
    let handles = members.iter().map(|&id| start(&network, id, &members, options())).collect();
    (network, handles)
}

fn deadline(ms: u64) -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_millis(ms)
}

async fn run(handle: &Handle, client_id: u64, seq: u64, op: Op) -> Result<(Index, Reply), ExecuteError> {
    handle.execute(Command { client_id, seq, op }.encode(), deadline(10_000)).await
}

async fn wait_for_leader(handles: &[Handle]) -> Handle {
    let until = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(leader) = handles.iter().find(|h| h.status().role == Role::Leader) {
            return leader.clone();
        }
        assert!(std::time::Instant::now() < until, "no leader within 10 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn put(key: &str, value: &str) -> Op {
    Op::Put { key: key.into(), value: value.into() }
}

fn get(key: &str) -> Op {
    Op::Get { key: key.into() }
}

fn shutdown_all(handles: &[Handle]) {
    for handle in handles {
        handle.shutdown();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn any_node_serves_writes_and_a_follower_reads_its_own_write() {
    let (_network, handles) = cluster(3);
    let leader = wait_for_leader(&handles).await;
    for (i, handle) in handles.iter().enumerate() {
        let key = format!("k{i}");
        let (index, reply) = run(handle, NO_SESSION, 0, put(&key, "v")).await.expect("a write through any node");
        assert_eq!(reply, Reply::Written { index });
        // The answer came after this node applied the write itself: a read through it sees the write.
        assert!(handle.status().applied_index >= index, "answered before applying it");
        let (_, read) = run(handle, NO_SESSION, 0, get(&key)).await.expect("a read");
        assert_eq!(read, Reply::Value { value: "v".into(), modified_index: index });
    }
    let followers: Vec<_> = handles.iter().filter(|h| h.id() != leader.id()).collect();
    assert!(followers.iter().all(|f| f.metrics().forwarded_out.get() >= 2), "followers forwarded their writes");
    assert!(leader.metrics().forwarded_in.get() >= 4, "the leader proposed the followers' requests");
    shutdown_all(&handles);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_leader_is_replaced_and_writes_go_on_through_the_others() {
    let (network, handles) = cluster(3);
    let leader = wait_for_leader(&handles).await;
    let follower = handles.iter().find(|h| h.id() != leader.id()).expect("a follower").clone();
    run(&follower, NO_SESSION, 0, put("a", "1")).await.expect("before the failure");
    network.set_cut(leader.id(), true);
    leader.shutdown();
    let started = std::time::Instant::now();
    // As a client does: the same (client, seq) again while the outcome is unknown (the request may have been
    // forwarded to the dead leader) or no leader is known yet.
    let reply = loop {
        match run(&follower, 7, 1, Op::Append { key: "a".into(), value: "2".into() }).await {
            Ok((_, reply)) => break reply,
            Err(ExecuteError::Unknown { .. } | ExecuteError::NoLeader) => continue,
            Err(other) => panic!("unexpected: {other}"),
        }
    };
    assert!(matches!(reply, Reply::Written { .. }));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
    let (_, read) = run(&follower, NO_SESSION, 0, get("a")).await.expect("a read");
    assert!(matches!(read, Reply::Value { ref value, .. } if value == "12"), "applied exactly once: {read:?}");
    let status = follower.status();
    assert!(status.leader.is_some() && status.leader != Some(leader.id()), "{status:?}");
    shutdown_all(&handles);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_majority_a_request_hears_no_leader_and_nothing_hangs() {
    let network = InProcessNetwork::new();
    let options = RuntimeOptions { leader_wait_ms: 300, ..options() };
    // Node 1 of 3 alone: it can never be elected.
    let lonely = start(&network, 1, &[1, 2, 3], options);
    let result = run(&lonely, NO_SESSION, 0, put("k", "v")).await;
    assert_eq!(result, Err(ExecuteError::NoLeader));
    lonely.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_request_through_another_node_applies_once() {
    let (_network, handles) = cluster(3);
    wait_for_leader(&handles).await;
    let append = || Op::Append { key: "log".into(), value: "x".into() };
    let (first_index, first) = run(&handles[0], 42, 1, append()).await.expect("first try");
    // The client did not hear the answer (say) and retries the same (client, seq) through another node.
    let (_, retried) = run(&handles[1], 42, 1, append()).await.expect("the retry");
    assert_eq!(retried, first, "the retry gets the original reply");
    assert_eq!(first, Reply::Written { index: first_index });
    let (_, read) = run(&handles[2], NO_SESSION, 0, get("log")).await.expect("a read");
    assert!(matches!(read, Reply::Value { ref value, .. } if value == "x"), "applied once: {read:?}");
    shutdown_all(&handles);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_every_waiting_request_and_later_ones() {
    let network = InProcessNetwork::new();
    let lonely = start(&network, 1, &[1, 2, 3], RuntimeOptions { leader_wait_ms: 60_000, ..options() });
    let waiting = {
        let lonely = lonely.clone();
        tokio::spawn(async move { run(&lonely, NO_SESSION, 0, put("k", "v")).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    lonely.shutdown();
    let result = tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("answered").expect("join");
    assert!(matches!(result, Err(ExecuteError::Stopped { .. })), "{result:?}");
    assert!(matches!(run(&lonely, NO_SESSION, 0, get("k")).await, Err(ExecuteError::Stopped { .. })));
    assert_eq!(lonely.stopped().await, "shut down");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_cluster_commits_alone() {
    let network = InProcessNetwork::new();
    let only = start(&network, 1, &[1], options());
    for i in 1..=200u64 {
        let (index, reply) = run(&only, 9, i, put("k", &i.to_string())).await.expect("a write");
        assert_eq!(reply, Reply::Written { index });
    }
    let (_, read) = run(&only, NO_SESSION, 0, get("k")).await.expect("a read");
    assert!(matches!(read, Reply::Value { ref value, .. } if value == "200"), "{read:?}");
    assert!(only.metrics().snapshots_taken.get() >= 3, "the policy snapshots every 50 entries");
    only.shutdown();
}
