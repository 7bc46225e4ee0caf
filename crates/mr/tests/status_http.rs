//! The coordinator's status page server against well-behaved and hostile clients: the two routes answer
//! with the job's data, everything else gets the right error, and garbage, oversized heads, slow clients and
//! connection floods neither crash it nor stop it from serving others.
use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::thread;
use std::time::{Duration, Instant};

use keel_mr::AppRegistry;
use keel_mr::coordinator::{Coordinator, JobConfig, ProgressHandle};
use keel_mr::status_http::{CONNECTIONS_MAX, HEAD_BYTES_MAX, HEAD_DEADLINE, IO_TIMEOUT};

struct Page {
    _dir: tempfile::TempDir,
    address: String,
    handle: ProgressHandle,
    serving: Option<thread::JoinHandle<anyhow::Result<keel_mr::coordinator::JobSummary>>>,
}

impl Drop for Page {
    fn drop(&mut self) {
        self.handle.abort("the test is over".into());
        if let Some(serving) = self.serving.take() {
            let _ = serving.join();
        }
    }
}

/// A coordinator with a status page and no workers: its job waits, so its numbers stay put.
fn start() -> Page {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("book.txt");
    fs::write(&input, "the cat and the hat\n").unwrap();
    let config = JobConfig {
        app: "wc".into(),
        inputs: vec![input],
        reduce_tasks: 3,
        output_dir: dir.path().join("out"),
        task_timeout: Duration::from_secs(10),
        work_dir: None,
        split_size_bytes: 1 << 20,
        memory_budget_bytes: 1 << 20,
        streaming: None,
    };
    let mut coordinator = Coordinator::prepare(&config, "127.0.0.1:0", &AppRegistry::builtin()).unwrap();
    let url = coordinator.serve_status("127.0.0.1:0").unwrap();
    let address = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    assert!(!address.ends_with(":0"), "the URL must carry the bound port: {url}");
    let handle = coordinator.progress_handle();
    let serving = Some(thread::spawn(move || coordinator.run()));
    Page { _dir: dir, address, handle, serving }
}

/// Sends `request` raw and returns the whole answer (the server closes every connection).
fn exchange(address: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = stream.write_all(request);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

fn status_line(answer: &str) -> &str {
    answer.lines().next().unwrap_or("")
}

fn body(answer: &str) -> &str {
    answer.split_once("\r\n\r\n").map_or("", |(_, body)| body)
}

#[test]
fn the_page_and_the_json_show_the_job() {
    let page = start();
    let html = exchange(&page.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_line(&html), "HTTP/1.1 200 OK", "{html}");
    assert!(html.contains("Content-Type: text/html; charset=utf-8"), "{html}");
    let job = page.handle.status().job;
    assert!(body(&html).contains(&format!("<b id=\"job\">{job}</b>")), "{html}");
    assert!(body(&html).contains("<b id=\"tasks-total\">4</b>"), "1 map + 3 reduces: {html}");

    let json = exchange(&page.address, b"GET /status.json?t=1 HTTP/1.1\r\n\r\n");
    assert_eq!(status_line(&json), "HTTP/1.1 200 OK", "{json}");
    let value: serde_json::Value = serde_json::from_str(body(&json)).expect("status.json is JSON");
    assert_eq!(value["job"], job.as_str());
    assert_eq!(value["phase"], "map");
    assert_eq!(value["tasks_total"], 4);
    assert_eq!(value["map_tasks"]["idle"], 1);
    assert_eq!(value["reduce_tasks"]["idle"], 3);
    assert_eq!(value["input_bytes_total"], 20);

    let head = exchange(&page.address, b"HEAD / HTTP/1.0\r\n\r\n");
    assert_eq!(status_line(&head), "HTTP/1.1 200 OK");
    assert_eq!(body(&head), "", "HEAD has no body");
}

#[test]
fn wrong_methods_paths_and_garbage_get_the_right_errors() {
    let page = start();
    let cases: [(&[u8], &str); 8] = [
        (b"POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
        (b"DELETE /status.json HTTP/1.1\r\n\r\n", "HTTP/1.1 405 Method Not Allowed"),
        (b"GET /favicon.ico HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        (b"GET /../../etc/passwd HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found"),
        (b"\x00\x01\x02 garbage \xff\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (b"GET / SPDY/3\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (b"GET noslash HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"),
        (b"\r\n\r\n", "HTTP/1.1 400 Bad Request"),
    ];
    for (request, expected) in cases {
        let answer = exchange(&page.address, request);
        assert_eq!(status_line(&answer), expected, "for {:?}", String::from_utf8_lossy(request));
    }
    let answer = exchange(&page.address, b"PUT / HTTP/1.1\r\n\r\n");
    assert!(answer.contains("Allow: GET, HEAD"), "{answer}");

    // An oversized head: a header of twice the limit.
    let mut request = b"GET / HTTP/1.1\r\nX-Big: ".to_vec();
    request.extend(std::iter::repeat_n(b'a', 2 * HEAD_BYTES_MAX));
    request.extend_from_slice(b"\r\n\r\n");
    let answer = exchange(&page.address, &request);
    assert_eq!(status_line(&answer), "HTTP/1.1 431 Request Header Fields Too Large");

    // After all that, the page still works.
    assert_eq!(status_line(&exchange(&page.address, b"GET / HTTP/1.1\r\n\r\n")), "HTTP/1.1 200 OK");
}

#[test]
fn a_slow_client_is_dropped_and_does_not_hold_up_anyone_else() {
    let page = start();
    let mut slow = TcpStream::connect(&page.address).unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let started = Instant::now();
    // Others are served at once meanwhile.
    assert_eq!(status_line(&exchange(&page.address, b"GET /status.json HTTP/1.1\r\n\r\n")), "HTTP/1.1 200 OK");
    // Well under the 5 s the slow client may hold its connection (the margin is for a loaded machine).
    assert!(started.elapsed() < Duration::from_secs(3), "a slow client held up another: {:?}", started.elapsed());
    // A trickle of a byte now and then does not keep the connection alive past the head deadline.
    let trickle = thread::spawn(move || {
        let begun = Instant::now();
        let mut buffer = [0u8; 64];
        slow.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
        loop {
            if slow.write_all(b"X").is_err() {
                return begun.elapsed();
            }
            match slow.read(&mut buffer) {
                Ok(0) => return begun.elapsed(),
                Ok(_) => {}
                Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                Err(_) => return begun.elapsed(),
            }
            assert!(begun.elapsed() < Duration::from_secs(30), "the slow client was never dropped");
        }
    });
    let held = trickle.join().unwrap();
    assert!(held <= HEAD_DEADLINE + IO_TIMEOUT + Duration::from_secs(1), "held for {held:?}");
}

#[test]
fn a_flood_of_connections_is_refused_beyond_the_limit_and_the_server_recovers() {
    let page = start();
    // Idle connections that never send anything occupy every slot.
    let idle: Vec<TcpStream> = (0..CONNECTIONS_MAX).map(|_| TcpStream::connect(&page.address).unwrap()).collect();
    // The server accepts them within milliseconds; on a loaded machine a request may still slip in first.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let answer = exchange(&page.address, b"GET / HTTP/1.1\r\n\r\n");
        if status_line(&answer) == "HTTP/1.1 503 Service Unavailable" {
            break;
        }
        assert!(Instant::now() < deadline, "never refused with every slot taken: {answer}");
        thread::sleep(Duration::from_millis(20));
    }
    drop(idle);
    let deadline = Instant::now() + IO_TIMEOUT + Duration::from_secs(3);
    loop {
        let answer = exchange(&page.address, b"GET / HTTP/1.1\r\n\r\n");
        if status_line(&answer) == "HTTP/1.1 200 OK" {
            break;
        }
        assert!(Instant::now() < deadline, "the server did not recover: {answer}");
        thread::sleep(Duration::from_millis(50));
    }
}
