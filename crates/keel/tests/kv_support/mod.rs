//! Real `keel kv serve` processes on loopback for tests: start, kill -9, SIGTERM, restart; and a raw HTTP/1.1
//! client on std sockets (so a test can send exactly the bytes it means, hostile ones included).
#![allow(dead_code)] // each test binary uses part of it

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// Ports nobody listens on right now: bound to port 0, read back, released. Another process could take one in
/// between; on loopback in a test run that is rare, and the node then fails to start with a clear error.
pub fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> =
        (0..n).map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port")).collect();
    listeners.iter().map(|l| l.local_addr().expect("address").port()).collect()
}

pub struct Node {
    pub id: u64,
    pub http: SocketAddr,
    pub raft: SocketAddr,
    pub data_dir: PathBuf,
    pub log: PathBuf,
    pub child: Option<Child>,
    pub starts: u32,
}

pub struct Cluster {
    pub nodes: Vec<Node>,
    pub cluster_id: String,
    pub dir: tempfile::TempDir,
    /// Extra flags every node gets.
    pub extra_args: Vec<String>,
}

impl Cluster {
    /// A cluster of `n` nodes, not started.
    pub fn new(n: u64) -> Cluster {
        let dir = tempfile::tempdir().expect("tempdir");
        let ports = free_ports(2 * n as usize);
        let nodes = (1..=n)
            .map(|id| {
                let slot = (id - 1) as usize;
                Node {
                    id,
                    http: SocketAddr::from(([127, 0, 0, 1], ports[2 * slot])),
                    raft: SocketAddr::from(([127, 0, 0, 1], ports[2 * slot + 1])),
                    data_dir: dir.path().join(format!("node-{id}")),
                    log: dir.path().join(format!("node-{id}.log")),
                    child: None,
                    starts: 0,
                }
            })
            .collect();
        Cluster { nodes, cluster_id: "test".into(), dir, extra_args: Vec::new() }
    }

    /// Starts every node and waits until each is ready and one leads.
    pub fn start(n: u64) -> Cluster {
        let mut cluster = Cluster::new(n);
        cluster.start_all();
        cluster
    }

    pub fn start_all(&mut self) {
        for id in 1..=self.nodes.len() as u64 {
            self.start_node(id);
        }
        self.wait_for_leader(Duration::from_secs(20));
    }

    pub fn node(&self, id: u64) -> &Node {
        &self.nodes[(id - 1) as usize]
    }

    pub fn serve_args(&self, id: u64) -> Vec<String> {
        let node = self.node(id);
        let peers: Vec<String> =
            self.nodes.iter().filter(|p| p.id != id).map(|p| format!("{}={}", p.id, p.raft)).collect();
        let mut args = vec![
            "kv".to_string(),
            "serve".into(),
            "--id".into(),
            id.to_string(),
            "--data-dir".into(),
            node.data_dir.display().to_string(),
            "--listen".into(),
            node.raft.to_string(),
            "--http".into(),
            node.http.to_string(),
            "--cluster-id".into(),
            self.cluster_id.clone(),
        ];
        if !peers.is_empty() {
            args.push("--peers".into());
            args.push(peers.join(","));
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }

    /// Starts node `id` (again) and waits for its ready line. Its stderr is appended to its log file.
    pub fn start_node(&mut self, id: u64) {
        let args = self.serve_args(id);
        let node = &mut self.nodes[(id - 1) as usize];
        assert!(node.child.is_none(), "node {id} is already running");
        let (child, ready) = spawn_keel(&args, &node.log);
        node.child = Some(child);
        node.starts += 1;
        match ready.recv_timeout(READY_TIMEOUT) {
            Ok(line) if line.contains("ready") => {}
            other => panic!("node {id} did not become ready: {other:?}\n{}", self.logs()),
        }
    }

    /// kill -9: no clean-up of any kind.
    pub fn kill9(&mut self, id: u64) {
        let node = &mut self.nodes[(id - 1) as usize];
        let mut child = node.child.take().expect("running");
        child.kill().expect("kill -9");
        child.wait().expect("reap");
    }

    /// SIGTERM, and waits (bounded) for the exit.
    pub fn terminate(&mut self, id: u64) -> ExitStatus {
        let node = &mut self.nodes[(id - 1) as usize];
        let mut child = node.child.take().expect("running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
        wait_bounded(&mut child, Duration::from_secs(15)).expect("the node did not exit within 15 s of SIGTERM")
    }

    pub fn status(&self, id: u64) -> Option<serde_json::Value> {
        let response = request(self.node(id).http, "GET", "/v1/status", &[], b"").ok()?;
        if response.status != 200 {
            return None;
        }
        serde_json::from_slice(&response.body).ok()
    }

    /// The id of the node every running node agrees leads, once there is one.
    pub fn wait_for_leader(&self, limit: Duration) -> u64 {
        let until = Instant::now() + limit;
        loop {
            let running: Vec<u64> = self.nodes.iter().filter(|n| n.child.is_some()).map(|n| n.id).collect();
            for &id in &running {
                if let Some(status) = self.status(id)
                    && status["role"] == "leader"
                {
                    return id;
                }
            }
            assert!(Instant::now() < until, "no leader within {limit:?}\n{}", self.logs());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn running(&self) -> Vec<u64> {
        self.nodes.iter().filter(|n| n.child.is_some()).map(|n| n.id).collect()
    }

    /// Every node's log, for a failing assertion's message.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let log = std::fs::read_to_string(&node.log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            out.push_str(&format!("--- node {} (last lines of {}) ---\n", node.id, node.log.display()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

/// Starts `keel ARGS`; stdout lines arrive on the channel, stderr is appended to `log`.
pub fn spawn_keel(args: &[String], log: &Path) -> (Child, mpsc::Receiver<String>) {
    let stderr = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
    let mut child = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .env("KEEL_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .spawn()
        .expect("start keel");
    let lines = stdout_lines(&mut child);
    (child, lines)
}

/// The child's stdout (it must be piped), line by line, read on a thread of its own so a test can wait for a line
/// with a deadline.
pub fn stdout_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs `keel ARGS` to completion (bounded); returns (status, stdout, stderr).
pub fn run_keel(args: &[String], limit: Duration) -> (ExitStatus, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keel");
    let status = wait_bounded(&mut child, limit).expect("keel did not exit in time");
    let mut stdout = String::new();
    let mut stderr = String::new();
    child.stdout.take().expect("stdout").read_to_string(&mut stdout).expect("read stdout");
    child.stderr.take().expect("stderr").read_to_string(&mut stderr).expect("read stderr");
    (status, stdout, stderr)
}

pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

/// One HTTP/1.1 request on a fresh connection (`Connection: close`).
pub fn request(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<Response> {
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(body);
    raw(address, &bytes)
}

/// Sends `bytes` as they are and reads the response until the server closes.
pub fn raw(address: SocketAddr, bytes: &[u8]) -> std::io::Result<Response> {
    let mut stream = TcpStream::connect_timeout(&address, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    stream.write_all(bytes)?;
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    parse_response(&all)
}

pub fn parse_response(all: &[u8]) -> std::io::Result<Response> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let split = all.windows(4).position(|w| w == b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&all[..split]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status: u16 =
        status_line.split(' ').nth(1).and_then(|s| s.parse().ok()).ok_or_else(|| bad("no status code"))?;
    let mut headers = BTreeMap::new();
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
    }
    let mut body = all[split + 4..].to_vec();
    if headers.get("transfer-encoding").is_some_and(|t| t.eq_ignore_ascii_case("chunked")) {
        body = dechunk(&body).ok_or_else(|| bad("bad chunked body"))?;
    }
    Ok(Response { status, headers, body })
}

fn dechunk(mut bytes: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = bytes.windows(2).position(|w| w == b"\r\n")?;
        let size = usize::from_str_radix(std::str::from_utf8(&bytes[..line_end]).ok()?.trim(), 16).ok()?;
        bytes = &bytes[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(bytes.get(..size)?);
        bytes = bytes.get(size + 2..)?;
    }
}

/// PUT through `node`, retrying (bounded) while no leader is known; the response of the first definite answer.
pub fn put_retrying(address: SocketAddr, key: &str, value: &str, headers: &[(&str, &str)]) -> Response {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        match request(address, "PUT", &format!("/v1/kv/{key}"), headers, value.as_bytes()) {
            Ok(response) if response.status != 503 && response.status != 504 => return response,
            other => {
                assert!(Instant::now() < until, "PUT {key} never succeeded: {other:?}");
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}

pub fn get_value(address: SocketAddr, key: &str) -> Option<Response> {
    let until = Instant::now() + Duration::from_secs(20);
    loop {
        match request(address, "GET", &format!("/v1/kv/{key}"), &[], b"") {
            Ok(response) if response.status != 503 && response.status != 504 => return Some(response),
            other => {
                if Instant::now() > until {
                    eprintln!("GET {key}: {other:?}");
                    return None;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    }
}
