//! The client against an in-process server over a fake backend: round trips, failover, retries, and
//! exactly-once across a timeout.
use std::sync::Arc;
use std::time::Duration;

use keel_kv::{Command, NO_SESSION, Op, SESSIONS_MAX};
use keel_kv_client::{Client, ClientOptions, Deleted, Error, ListedKey, Versioned};
use keel_kv_http::{FakeBackend, Fault, HttpLimits, HttpMetrics, KvBackend, router, serve_with_limits};
use prometheus_client::registry::Registry;

struct Server {
    endpoint: String,
    backend: Arc<FakeBackend>,
}

async fn start(limits: HttpLimits) -> Server {
    let backend = Arc::new(FakeBackend::new(1));
    let mut registry = Registry::default();
    let metrics = HttpMetrics::register(&mut registry);
    let router = router(backend.clone(), metrics, Arc::new(registry), limits.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    // The server lives as long as the test's runtime.
    tokio::spawn(async move { serve_with_limits(listener, router, &limits, std::future::pending()).await });
    Server { endpoint, backend }
}

/// An address nothing listens on: bound, then closed.
async fn dead_endpoint() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    drop(listener);
    endpoint
}

/// Quick retries, so tests of retrying finish fast.
fn quick() -> ClientOptions {
    ClientOptions { retry_after_max_ms: 50, round_backoff_ms: 10, deadline_ms: 10_000, ..ClientOptions::default() }
}

#[tokio::test]
async fn values_round_trip() {
    let server = start(HttpLimits::default()).await;
    let mut client = Client::new(vec![server.endpoint.clone()], quick()).expect("client");
    let key = "dir/sub dir/ключ?&#%";
    let index = client.put(key, "välue 1").await.expect("put");
    assert_eq!(client.get(key).await.expect("get"), Some(Versioned { value: "välue 1".into(), index }));
    assert_eq!(server.backend.value(key).map(|(value, _)| value), Some("välue 1".to_string()), "the key as given");
    let appended = client.append(key, "+more").await.expect("append");
    assert!(appended > index);
    assert_eq!(client.get(key).await.expect("get").map(|versioned| versioned.value), Some("välue 1+more".into()));
    assert_eq!(client.get("absent").await.expect("get"), None);

    let swapped = client.put_if(key, "cas", appended).await.expect("put_if with the current index");
    match client.put_if(key, "late", appended).await {
        Err(Error::IndexMismatch { expected_index, current_index }) => {
            assert_eq!((expected_index, current_index), (appended, swapped));
        }
        other => panic!("expected IndexMismatch, got {other:?}"),
    }
    assert!(client.put_if("fresh", "new", 0).await.is_ok(), "index 0: only if absent");

    client.put("dir/a", "1").await.expect("put");
    client.put("dir/b", "2").await.expect("put");
    let page = client.list("dir/", None, 2).await.expect("list");
    assert_eq!(page.keys.iter().map(|listed| listed.key.as_str()).collect::<Vec<_>>(), ["dir/a", "dir/b"]);
    assert!(page.more);
    let rest = client.list("dir/", Some("dir/b"), 2).await.expect("list");
    assert_eq!(rest.keys, vec![ListedKey { key: key.to_string(), index: swapped, size: 3 }]);
    assert!(!rest.more);

    let deleted = client.delete("dir/a").await.expect("delete");
    assert!(deleted.deleted);
    let again = client.delete("dir/a").await.expect("delete");
    assert_eq!(again, Deleted { index: again.index, deleted: false });

    let status = client.status(&server.endpoint).await.expect("status");
    assert_eq!((status.id, status.role.as_str()), (1, "leader"));
}

#[tokio::test]
async fn a_dead_first_endpoint_is_skipped() {
    let server = start(HttpLimits::default()).await;
    let mut client = Client::new(vec![dead_endpoint().await, server.endpoint.clone()], quick()).expect("client");
    let index = client.put("k", "v").await.expect("put through the second node");
    assert_eq!(client.get("k").await.expect("get"), Some(Versioned { value: "v".into(), index }));
}

#[tokio::test]
async fn no_reachable_node_is_a_prompt_unreachable_error() {
    let mut client = Client::new(vec![dead_endpoint().await, dead_endpoint().await], quick()).expect("client");
    let started = std::time::Instant::now();
    match client.put("k", "v").await {
        Err(error @ Error::Unreachable { .. }) => {
            assert!(!error.is_outcome_unknown(), "no connection was made: nothing can have applied");
            assert!(error.to_string().contains("no node answered"), "{error}");
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "gave up after {:?}, not promptly", started.elapsed());
}

#[tokio::test]
async fn a_503_is_retried_until_the_node_answers() {
    let server = start(HttpLimits::default()).await;
    server.backend.inject(Fault::NoLeader);
    server.backend.inject(Fault::Overloaded);
    let mut client = Client::new(vec![server.endpoint.clone()], quick()).expect("client");
    client.put("k", "v").await.expect("put after two 503s");
    assert_eq!(server.backend.calls(), 3);
    assert_eq!(server.backend.value("k").map(|(value, _)| value), Some("v".to_string()));
}

#[tokio::test]
async fn a_write_that_timed_out_after_applying_is_not_applied_twice() {
    let server = start(HttpLimits::default()).await;
    let mut client = Client::new(vec![server.endpoint.clone()], quick()).expect("client");
    client.append("k", "a").await.expect("first append");
    // The next append is applied, but the node answers 504; then leadership is lost after another is applied.
    server.backend.inject(Fault::TimedOutAfterApplying);
    let index = client.append("k", "b").await.expect("append retried after a 504");
    assert_eq!(index, 2, "the retry got the original reply: the index of the first application");
    server.backend.inject(Fault::UnknownAfterApplying);
    client.append("k", "c").await.expect("append retried after an unknown outcome");
    assert_eq!(server.backend.value("k").map(|(value, _)| value), Some("abc".to_string()), "each append once");
    assert_eq!(server.backend.calls(), 5);
}

#[tokio::test]
async fn a_deadline_with_no_outcome_says_the_write_may_have_applied() {
    let limits = HttpLimits { request_timeout_ms: 100, ..HttpLimits::default() };
    let server = start(limits).await;
    for _ in 0..1_000 {
        server.backend.inject(Fault::Hang);
    }
    let options = ClientOptions { deadline_ms: 600, ..quick() };
    let mut client = Client::new(vec![server.endpoint.clone()], options).expect("client");
    match client.put("k", "v").await {
        Err(error @ Error::DeadlineExceeded { .. }) => {
            assert!(error.is_outcome_unknown(), "every attempt timed out: the write may have applied");
            assert!(error.to_string().contains("may or may not have been applied"), "{error}");
        }
        other => panic!("expected DeadlineExceeded, got {other:?}"),
    }
}

#[tokio::test]
async fn an_expired_session_is_an_unknown_outcome_and_the_client_goes_on_under_a_new_id() {
    let server = start(HttpLimits::default()).await;
    let mut client = Client::new(vec![server.endpoint.clone()], quick()).expect("client");
    client.put("k", "v").await.expect("put");
    let first_id = client.client_id();
    // SESSIONS_MAX other clients evict this one's session.
    for other in 1..=SESSIONS_MAX as u64 {
        let command =
            Command { client_id: first_id.wrapping_add(other).max(1), seq: 1, op: Op::Get { key: "x".into() } };
        server.backend.execute(command).await.expect("direct command");
    }
    match client.put("k", "w").await {
        Err(error @ Error::SessionExpired { .. }) => assert!(error.is_outcome_unknown()),
        other => panic!("expected SessionExpired, got {other:?}"),
    }
    assert_ne!(client.client_id(), first_id);
    assert_eq!(client.get("k").await.expect("get under the new id").map(|versioned| versioned.value), Some("v".into()));
    assert_ne!(client.client_id(), NO_SESSION);
}

#[tokio::test]
async fn invalid_requests_are_refused_before_sending() {
    let server = start(HttpLimits::default()).await;
    let mut client = Client::new(vec![server.endpoint.clone()], quick()).expect("client");
    assert!(matches!(client.get("").await, Err(Error::InvalidRequest(_))));
    assert!(matches!(client.put(&"k".repeat(keel_kv::KEY_BYTES_MAX + 1), "v").await, Err(Error::InvalidRequest(_))));
    assert!(matches!(client.put("k", &"v".repeat(keel_kv::VALUE_BYTES_MAX + 1)).await, Err(Error::InvalidRequest(_))));
    assert_eq!(server.backend.calls(), 0);
    assert!(matches!(Client::new(vec![], quick()), Err(Error::NoEndpoints)));
    assert!(matches!(Client::new(vec!["https://x:1".into()], quick()), Err(Error::BadEndpoint { .. })));
}

#[test]
fn the_error_codes_the_client_relies_on_are_the_servers() {
    use keel_kv_http::code;
    assert_eq!(
        [code::KEY_NOT_FOUND, code::INDEX_MISMATCH, code::SESSION_EXPIRED, code::STALE_SEQUENCE, code::SEQUENCE_REUSED],
        ["key_not_found", "index_mismatch", "session_expired", "stale_sequence", "sequence_reused"]
    );
}

/// One node of a pretend cluster: its own id and the leader its status names, over one shared state (so a
/// client's session is the same whichever node it reaches, as in a real cluster where followers forward).
struct ClusterNode {
    id: u64,
    leader: u64,
    shared: Arc<FakeBackend>,
    calls: std::sync::atomic::AtomicU64,
}

impl KvBackend for ClusterNode {
    async fn execute(&self, command: Command) -> Result<keel_kv_http::Executed, keel_kv_http::BackendError> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        self.shared.execute(command).await
    }

    fn status(&self) -> keel_kv_http::NodeStatus {
        let role = if self.id == self.leader { keel_kv_http::Role::Leader } else { keel_kv_http::Role::Follower };
        keel_kv_http::NodeStatus { id: self.id, role, leader: Some(self.leader), ..self.shared.status() }
    }
}

/// Answers name their node and the leader: a client whose endpoints start with followers goes to the leader after
/// at most one operation per follower, and stays there.
#[tokio::test]
async fn the_client_finds_the_leader_among_its_endpoints_and_sends_there() {
    let shared = Arc::new(FakeBackend::new(2));
    let mut nodes = Vec::new();
    let mut endpoints = Vec::new();
    for id in [1, 3, 2] {
        let node = Arc::new(ClusterNode { id, leader: 2, shared: shared.clone(), calls: Default::default() });
        let mut registry = Registry::default();
        let metrics = HttpMetrics::register(&mut registry);
        let limits = HttpLimits::default();
        let router = router(node.clone(), metrics, Arc::new(registry), limits.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        endpoints.push(format!("http://{}", listener.local_addr().expect("address")));
        tokio::spawn(async move { serve_with_limits(listener, router, &limits, std::future::pending()).await });
        nodes.push(node);
    }
    let mut client = Client::new(endpoints, quick()).expect("client");
    for k in 0..10 {
        client.put(&format!("k{k}"), "v").await.expect("put");
    }
    let calls: Vec<u64> = nodes.iter().map(|n| n.calls.load(std::sync::atomic::Ordering::SeqCst)).collect();
    assert_eq!(calls, [1, 1, 8], "each follower once (learning its id), then the leader only");
}
