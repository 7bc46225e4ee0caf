//! `keel kv ...` as a user runs it, against an in-process node (the HTTP front end over a fake backend).
use std::io::Write;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;

use keel_kv_http::{FakeBackend, HttpLimits, HttpMetrics, router, serve_with_limits};
use prometheus_client::registry::Registry;

/// A node serving on 127.0.0.1 from a runtime of its own (the test's threads run the `keel` processes).
struct Node {
    endpoint: String,
    backend: Arc<FakeBackend>,
    _runtime: tokio::runtime::Runtime,
}

fn start_node() -> Node {
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().expect("runtime");
    let backend = Arc::new(FakeBackend::new(1));
    let mut registry = Registry::default();
    let metrics = HttpMetrics::register(&mut registry);
    let router = router(backend.clone(), metrics, Arc::new(registry), HttpLimits::default());
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).expect("bind");
    let endpoint = format!("http://{}", listener.local_addr().expect("address"));
    runtime.spawn(
        async move { serve_with_limits(listener, router, &HttpLimits::default(), std::future::pending()).await },
    );
    Node { endpoint, backend, _runtime: runtime }
}

fn keel(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .env_remove("KEEL_ENDPOINTS")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keel");
    // A keel that exits before reading (an argument error) closes the pipe: that is not this test's concern.
    if let Some(mut pipe) = child.stdin.take() {
        let _ = pipe.write_all(stdin);
    }
    child.wait_with_output().expect("keel output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn put_get_append_list_del_and_status_against_a_node() {
    let node = start_node();
    let at = ["--endpoints", node.endpoint.as_str()];
    let put = keel(&[&["kv", "put", "dir/k y", "hello"][..], &at].concat(), b"");
    assert!(put.status.success(), "{}", text(&put.stderr));
    assert_eq!(text(&put.stdout), "1\n", "put prints the write's index");

    let from_stdin = keel(&[&["kv", "append", "dir/k y"][..], &at].concat(), b" world\n");
    assert!(from_stdin.status.success(), "{}", text(&from_stdin.stderr));
    let get = keel(&[&["kv", "get", "dir/k y"][..], &at].concat(), b"");
    assert!(get.status.success(), "{}", text(&get.stderr));
    assert_eq!(get.stdout, b"hello world\n", "the value, raw");

    let cas = keel(&[&["kv", "put", "dir/k y", "x", "--if-index", "1"][..], &at].concat(), b"");
    assert_eq!(cas.status.code(), Some(1), "stale if-index fails");
    assert!(text(&cas.stderr).contains("index is 2, not the expected 1"), "{}", text(&cas.stderr));

    let list = keel(&[&["kv", "list", "--prefix", "dir/"][..], &at].concat(), b"");
    assert_eq!(text(&list.stdout), "dir/k y\t2\t12\n", "key, index, size (the value ends in a newline)");

    let del = keel(&[&["kv", "del", "dir/k y"][..], &at].concat(), b"");
    assert!(del.status.success());
    let missing = keel(&[&["kv", "get", "dir/k y"][..], &at].concat(), b"");
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("no key"), "{}", text(&missing.stderr));
    assert_eq!(node.backend.value("dir/k y"), None);

    let status = keel(&[&["kv", "status"][..], &at].concat(), b"");
    assert!(status.status.success(), "{}", text(&status.stderr));
    let table = text(&status.stdout);
    assert!(table.starts_with("ENDPOINT") && table.contains("leader"), "{table}");
}

#[test]
fn endpoints_come_from_the_environment_too() {
    let node = start_node();
    let out = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["kv", "put", "k", "v"])
        .env("KEEL_ENDPOINTS", &node.endpoint)
        .output()
        .expect("run keel");
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(node.backend.value("k").map(|(value, _)| value), Some("v".to_string()));
}

#[test]
fn a_cluster_that_is_not_running_gets_a_clear_error() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let endpoint = format!("http://{}", closed.local_addr().expect("address"));
    drop(closed);
    let out = keel(&["kv", "get", "k", "--endpoints", &endpoint], b"");
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("no node answered at {endpoint}")), "{stderr}");
    assert!(stderr.contains("keel kv local"), "says how to start a cluster: {stderr}");
}

#[test]
fn bad_arguments_get_a_clear_error_not_a_panic() {
    for args in [
        &["kv", "put"][..],
        &["kv", "get"],
        &["kv", "list", "--limit", "0"],
        &["kv", "put", "k", "v", "--if-index", "minus"],
        &["kv", "nope"],
    ] {
        let out = keel(args, b"");
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("error:") && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    let out = keel(&["kv", "get", "k", "--endpoints", "https://example:1"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("only http:// is supported"), "{}", text(&out.stderr));
    let out = keel(&["kv", "put", "k", "--endpoints", "http://127.0.0.1:1"], &[0xff, 0xfe]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("not UTF-8"), "{}", text(&out.stderr));
}
