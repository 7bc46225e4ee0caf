//! Hostile HTTP over raw TCP: garbage, oversized heads and bodies, slow clients. Each gets a 4xx or a closed
//! connection, and the node keeps serving everyone else.
mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use keel_kv_http::{HttpLimits, VALUE_BYTES_MAX};
use support::{PATIENCE, TestServer, exchange, parse, quick_limits};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The status of the response in `raw`, or `None` when the server closed without one.
fn status_of(raw: &[u8]) -> Option<u16> {
    parse(raw).map(|answer| answer.status)
}

async fn still_serving(server: &TestServer) {
    let answer = server.request("GET", "/v1/status", &[], b"").await;
    assert_eq!(answer.status, 200, "the node still serves others");
}

#[tokio::test]
async fn a_garbage_request_line_gets_400_or_a_close() {
    let server = TestServer::start(quick_limits()).await;
    for garbage in [
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..],
        b"HELLO THERE\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
    ] {
        let raw = exchange(server.addr, garbage).await.unwrap_or_default();
        let status = status_of(&raw);
        assert!(status.is_none() || status.is_some_and(|status| (400..500).contains(&status)), "{status:?}");
    }
    still_serving(&server).await;
}

#[tokio::test]
async fn a_head_over_the_limit_gets_431_or_a_close() {
    let server = TestServer::start(quick_limits()).await;
    let huge = format!("GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n", "p".repeat(64 * 1024));
    let raw = exchange(server.addr, huge.as_bytes()).await.unwrap_or_default();
    let status = status_of(&raw);
    assert!(status.is_none() || status == Some(431), "{status:?}");
    let many: String = (0..200).map(|n| format!("X-H{n}: v\r\n")).collect();
    let raw = exchange(server.addr, format!("GET /v1/status HTTP/1.1\r\nHost: x\r\n{many}\r\n").as_bytes())
        .await
        .unwrap_or_default();
    let status = status_of(&raw);
    assert!(status.is_none() || status == Some(431), "too many headers: {status:?}");
    still_serving(&server).await;
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_from_its_length_or_as_it_arrives() {
    let server = TestServer::start(quick_limits()).await;
    // The length alone decides: the body is never sent.
    let head = format!("PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", 10 * VALUE_BYTES_MAX);
    let raw = exchange(server.addr, head.as_bytes()).await.expect("an answer");
    assert_eq!(status_of(&raw), Some(413));
    // Chunked, no length: refused once more than the limit arrived.
    let chunk = vec![b'v'; 16 * 1024];
    let mut request = b"PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..=(VALUE_BYTES_MAX / chunk.len()) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(&chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    let raw = exchange(server.addr, &request).await.expect("an answer");
    assert_eq!(status_of(&raw), Some(413));
    assert_eq!(server.backend.calls(), 0, "nothing was proposed");
    still_serving(&server).await;
}

#[tokio::test]
async fn a_trickled_head_is_closed_after_the_timeout_while_others_are_served() {
    let limits = HttpLimits { header_read_timeout_ms: 2_000, ..quick_limits() };
    let server = TestServer::start(limits).await;
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n").await.expect("first bytes");
    let started = Instant::now();
    let trickle_ended = AtomicBool::new(false);
    // Keep trickling one header byte every 50 ms until the server closes the connection; meanwhile another
    // client is served.
    let trickle = async {
        while slow.write_all(b"X").await.is_ok() && started.elapsed() < PATIENCE {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        trickle_ended.store(true, Ordering::SeqCst);
    };
    let others = async {
        still_serving(&server).await;
        trickle_ended.load(Ordering::SeqCst)
    };
    let ((), trickle_ended_first) = tokio::join!(trickle, others);
    assert!(!trickle_ended_first, "another client was served only after the slow one was closed");
    let closed_after = started.elapsed();
    assert!(closed_after >= Duration::from_millis(1_500), "closed after {closed_after:?}, before the timeout");
    assert!(closed_after < PATIENCE, "the trickled connection was never closed");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, slow.read_to_end(&mut rest)).await.expect("the connection is closed");
    still_serving(&server).await;
}

#[tokio::test]
async fn a_body_never_finished_gets_408_and_a_close() {
    let server = TestServer::start(quick_limits()).await;
    let mut slow = TcpStream::connect(server.addr).await.expect("connect");
    slow.write_all(b"PUT /v1/kv/k HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this").await.expect("write");
    let other = server.request("PUT", "/v1/kv/other", &[], b"v").await;
    assert_eq!(other.status, 200, "served while the slow body is pending");
    let mut raw = Vec::new();
    tokio::time::timeout(PATIENCE, slow.read_to_end(&mut raw)).await.expect("closed").expect("read");
    assert_eq!(status_of(&raw), Some(408));
    assert_eq!(server.backend.value("k"), None, "nothing written");
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_and_service_resumes() {
    let limits = HttpLimits { connections_max: 1, header_read_timeout_ms: 60_000, ..quick_limits() };
    let server = TestServer::start(limits).await;
    let idle = TcpStream::connect(server.addr).await.expect("connect");
    // Wait until the idle connection holds the only slot: then a second connection is closed unanswered.
    let waited = Instant::now();
    loop {
        let raw = exchange(server.addr, b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap_or_default();
        if raw.is_empty() {
            break;
        }
        assert!(waited.elapsed() < PATIENCE, "a second connection was always served");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(idle);
    wait_until_status_is_served(server.addr, "service did not resume after the idle connection closed").await;
}

#[tokio::test]
async fn serve_returns_after_shutdown_even_with_an_idle_connection_open() {
    let limits = HttpLimits { header_read_timeout_ms: 60_000, shutdown_grace_ms: 200, ..quick_limits() };
    let server = TestServer::start(limits).await;
    let _idle = TcpStream::connect(server.addr).await.expect("connect");
    still_serving(&server).await;
    let started = Instant::now();
    server.stop().await;
    assert!(started.elapsed() < PATIENCE);
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_header_timeout() {
    let limits = HttpLimits { header_read_timeout_ms: 300, ..quick_limits() };
    let server = TestServer::start(limits).await;
    // Silent from the start.
    let mut silent = TcpStream::connect(server.addr).await.expect("connect");
    // Kept alive after one request, then silent.
    let mut kept_alive = TcpStream::connect(server.addr).await.expect("connect");
    kept_alive.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let started = Instant::now();
    let mut first = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, silent.read_to_end(&mut first)).await.expect("the silent one is closed");
    let mut second = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, kept_alive.read_to_end(&mut second)).await.expect("the idle one is closed");
    assert_eq!(status_of(&second), Some(200), "its request was answered first");
    assert!(started.elapsed() >= Duration::from_millis(250), "closed after {:?}", started.elapsed());
}

#[tokio::test]
async fn a_client_that_never_reads_its_responses_is_closed() {
    let limits = HttpLimits {
        connections_max: 1,
        write_stall_timeout_ms: 300,
        header_read_timeout_ms: 60_000,
        ..quick_limits()
    };
    let server = TestServer::start(limits).await;
    assert_eq!(server.request("PUT", "/v1/kv/big", &[], &vec![b'v'; VALUE_BYTES_MAX]).await.status, 200);
    // Pipeline far more response bytes (400 x 64 KiB) than the socket buffers hold, and read none of them.
    let mut greedy = TcpStream::connect(server.addr).await.expect("connect");
    let requests = "GET /v1/kv/big HTTP/1.1\r\nHost: x\r\n\r\n".repeat(400);
    greedy.write_all(requests.as_bytes()).await.expect("write the requests");
    // The greedy connection holds the only slot until the server gives up on it; then others are served.
    wait_until_status_is_served(server.addr, "the connection that never reads was never closed").await;
    drop(greedy);
}

/// Polls `GET /v1/status` on fresh connections until one is answered 200; fails with `never` after `PATIENCE`.
async fn wait_until_status_is_served(addr: std::net::SocketAddr, never: &str) {
    let waited = Instant::now();
    loop {
        let raw = exchange(addr, b"GET /v1/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap_or_default();
        if status_of(&raw) == Some(200) {
            return;
        }
        assert!(waited.elapsed() < PATIENCE, "{never}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
