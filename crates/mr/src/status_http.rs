//! A tiny HTTP/1.1 server for the status page: `GET /` (HTML) and `GET /status.json`, nothing else.
//!
//! std threads, not a framework: two read-only routes do not earn an async runtime in a crate that has none.
//! Written for hostile input, since anyone who can reach the port can talk to it:
//! - the request head is read up to [`HEAD_BYTES_MAX`] (431 beyond), within [`HEAD_DEADLINE`] overall and
//!   [`IO_TIMEOUT`] per read or write (a slow client is dropped, it cannot hold a thread);
//! - at most [`CONNECTIONS_MAX`] connections are served at once (others get a 503 and are closed);
//! - anything but `GET`/`HEAD` is 405, an unknown path 404, a malformed request line 400; every response
//!   closes the connection; nothing on this path can panic on input;
//! - the page's data comes from `snapshot()`, which copies it under the coordinator's lock briefly;
//!   rendering and writing happen outside the lock, so a slow client never blocks the coordinator.
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use tracing::{debug, warn};

use crate::status::StatusSnapshot;
use crate::status_page::render_page;

/// Largest request head (request line and headers). Browsers send well under 2 KiB to a page like this
/// (no cookies are ever set); 8 KiB is the limit many servers use (nginx's default header buffer), and
/// bounds what one connection can make us buffer.
pub const HEAD_BYTES_MAX: usize = 8 * 1024;
/// Connections served at once. A person or two with a browser, plus a script; each costs a thread, so a
/// flood of connections must not turn into a flood of threads.
pub const CONNECTIONS_MAX: usize = 16;
/// Longest wait for one read or write: a peer that stops sending or reading is dropped.
pub const IO_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest time to receive a whole request head: a client trickling a byte a second (slowloris) is cut off.
pub const HEAD_DEADLINE: Duration = Duration::from_secs(5);
/// How often the accept loop looks at the stop flag.
const ACCEPT_POLL: Duration = Duration::from_millis(20);

type Snapshot = dyn Fn() -> StatusSnapshot + Send + Sync;

/// A running status server; stops (and joins its accept thread) when dropped.
pub struct StatusServer {
    address: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl StatusServer {
    /// Binds `listen` (`host:port`, or only a port for 127.0.0.1) and serves `snapshot()` until dropped.
    pub fn start(listen: &str, snapshot: Arc<Snapshot>) -> io::Result<StatusServer> {
        let address = parse_listen(listen)?;
        let listener = TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let stop = Arc::clone(&stop);
            thread::Builder::new()
                .name("mr-status-http".into())
                .spawn(move || accept_loop(&listener, &stop, &snapshot))?
        };
        Ok(StatusServer { address, stop, acceptor: Some(acceptor) })
    }

    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `http://ADDR/`, with a usable host when bound to all interfaces.
    pub fn url(&self) -> String {
        let mut address = self.address;
        if address.ip().is_unspecified() {
            address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        format!("http://{address}/")
    }
}

impl Drop for StatusServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// `host:port`, or a bare port meaning loopback (the page shows file names and errors: exposing it to the
/// network must be a choice, `--http 0.0.0.0:8080`).
fn parse_listen(listen: &str) -> io::Result<SocketAddr> {
    if let Ok(port) = listen.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    listen
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("{listen} resolves to no address")))
}

fn accept_loop(listener: &TcpListener, stop: &AtomicBool, snapshot: &Arc<Snapshot>) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if active.load(Ordering::SeqCst) >= CONNECTIONS_MAX {
                    debug!("status page: refusing {peer}, {CONNECTIONS_MAX} connections already");
                    refuse_busy(stream);
                    continue;
                }
                active.fetch_add(1, Ordering::SeqCst);
                let (active_here, snapshot) = (Arc::clone(&active), Arc::clone(snapshot));
                let spawned = thread::Builder::new().name("mr-status-conn".into()).spawn(move || {
                    if let Err(e) = serve(stream, snapshot.as_ref()) {
                        debug!("status page: {peer}: {e}");
                    }
                    active_here.fetch_sub(1, Ordering::SeqCst);
                });
                if let Err(e) = spawned {
                    active.fetch_sub(1, Ordering::SeqCst);
                    warn!("status page: cannot start a thread for {peer}: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) => {
                debug!("status page: accepting: {e}");
                thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

/// A 503 written without a thread, best effort, so that a flood is answered rather than left hanging.
fn refuse_busy(mut stream: TcpStream) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let _ = stream.write_all(&response(503, "Service Unavailable", "text/plain", b"too many connections\n", &[]));
    let _ = stream.shutdown(Shutdown::Both);
}

/// A parsed request line; headers are read (bounded) and ignored.
#[derive(Debug, PartialEq, Eq)]
struct Request {
    method: String,
    path: String,
}

#[derive(Debug, PartialEq, Eq)]
enum HeadError {
    TooLarge,
    Malformed,
}

fn serve(mut stream: TcpStream, snapshot: &Snapshot) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    let head = match read_head(&mut stream) {
        Ok(head) => head,
        Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut) => {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "request head too slow; dropped"));
        }
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let body = format!("request head larger than {HEAD_BYTES_MAX} bytes\n");
            let reply = response(431, "Request Header Fields Too Large", "text/plain", body.as_bytes(), &[]);
            return stream.write_all(&reply);
        }
        Err(e) => return Err(e),
    };
    let reply = match parse_head(&head) {
        Err(HeadError::TooLarge) | Err(HeadError::Malformed) => {
            response(400, "Bad Request", "text/plain", b"malformed request\n", &[])
        }
        Ok(request) => answer(&request, snapshot),
    };
    stream.write_all(&reply)?;
    stream.flush()?;
    let _ = stream.shutdown(Shutdown::Write);
    Ok(())
}

fn answer(request: &Request, snapshot: &Snapshot) -> Vec<u8> {
    let head_only = request.method == "HEAD";
    if request.method != "GET" && !head_only {
        return response(405, "Method Not Allowed", "text/plain", b"only GET\n", &[("Allow", "GET, HEAD")]);
    }
    // The query string is ignored (a cache-busting `?t=` from a script is harmless).
    let path = request.path.split('?').next().unwrap_or("");
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", render_page(&snapshot()).into_bytes()),
        "/status.json" => match serde_json::to_vec_pretty(&snapshot()) {
            Ok(json) => ("application/json", json),
            Err(e) => {
                let body = format!("cannot encode the status: {e}\n");
                return response(500, "Internal Server Error", "text/plain", body.as_bytes(), &[]);
            }
        },
        _ => return response(404, "Not Found", "text/plain", b"not found; try / or /status.json\n", &[]),
    };
    let mut reply = response(200, "OK", content_type, &body, &[]);
    if head_only {
        reply.truncate(reply.len() - body.len());
    }
    reply
}

/// Reads until the blank line that ends the head. `InvalidData` when it exceeds [`HEAD_BYTES_MAX`],
/// `TimedOut` past [`HEAD_DEADLINE`].
fn read_head(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let started = Instant::now();
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if let Some(end) = find_head_end(&head) {
            head.truncate(end);
            return Ok(head);
        }
        if head.len() > HEAD_BYTES_MAX {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "head too large"));
        }
        if started.elapsed() > HEAD_DEADLINE {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "head too slow"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "closed before the end of the request head"));
        }
        head.extend_from_slice(&chunk[..n]);
    }
}

/// Where the head ends (`\r\n\r\n`, or a bare `\n\n` from a sloppy client), within the size limit.
fn find_head_end(buffer: &[u8]) -> Option<usize> {
    let limit = buffer.len().min(HEAD_BYTES_MAX + 4);
    let window = &buffer[..limit];
    let crlf = window.windows(4).position(|w| w == b"\r\n\r\n");
    let lf = window.windows(2).position(|w| w == b"\n\n");
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `METHOD SP PATH SP HTTP/1.x` then headers; only the request line matters.
fn parse_head(head: &[u8]) -> Result<Request, HeadError> {
    if head.len() > HEAD_BYTES_MAX {
        return Err(HeadError::TooLarge);
    }
    let text = std::str::from_utf8(head).map_err(|_| HeadError::Malformed)?;
    let line = text.split('\n').next().unwrap_or("").trim_end_matches('\r');
    let mut parts = line.split(' ');
    let (Some(method), Some(path), Some(version), None) = (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(HeadError::Malformed);
    };
    let method_ok = !method.is_empty() && method.bytes().all(|b| b.is_ascii_uppercase());
    if !method_ok || !path.starts_with('/') || !version.starts_with("HTTP/1.") {
        return Err(HeadError::Malformed);
    }
    Ok(Request { method: method.to_string(), path: path.to_string() })
}

fn response(code: u16, reason: &str, content_type: &str, body: &[u8], extra: &[(&str, &str)]) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\
         Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; \
         connect-src 'self'; img-src 'self' data:\r\n",
        body.len()
    );
    for (name, value) in extra {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut reply = head.into_bytes();
    reply.extend_from_slice(body);
    reply
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_are_parsed_strictly() {
        let ok = parse_head(b"GET /status.json HTTP/1.1\r\nHost: x").unwrap();
        assert_eq!(ok, Request { method: "GET".into(), path: "/status.json".into() });
        for bad in [
            &b""[..],
            b"GET",
            b"GET /",
            b"GET / HTTP/2",
            b"GET  / HTTP/1.1",
            b"get / HTTP/1.1",
            b"GET x HTTP/1.1",
            b"GET / HTTP/1.1 extra",
            b"\xff\xfe / HTTP/1.1",
        ] {
            assert_eq!(parse_head(bad), Err(HeadError::Malformed), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_head_ends_at_the_first_blank_line_within_the_limit() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n\r\nbody"), Some(20));
        assert_eq!(find_head_end(b"GET / HTTP/1.0\n\n"), Some(14));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nA: b\r\n"), None);
        let mut big = vec![b'a'; HEAD_BYTES_MAX + 100];
        big.extend_from_slice(b"\r\n\r\n");
        assert_eq!(find_head_end(&big), None, "a blank line past the limit does not count");
        let mut reader = &big[..];
        assert_eq!(read_head(&mut reader).unwrap_err().kind(), io::ErrorKind::InvalidData);
    }

    #[test]
    fn a_listen_address_that_is_only_a_port_is_loopback() {
        assert_eq!(parse_listen("8080").unwrap(), SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(parse_listen("0.0.0.0:0").unwrap(), SocketAddr::from(([0, 0, 0, 0], 0)));
        assert!(parse_listen("not an address").is_err());
    }
}
