//! The front end's limits, each with the reason for its default. Key and value sizes are the service's own
//! (`keel_kv::KEY_BYTES_MAX`, `keel_kv::VALUE_BYTES_MAX`): the front end refuses oversized requests before
//! proposing anything, so they never cost a log entry.
use std::time::Duration;

/// Longest key, after percent-decoding: the service's limit.
pub const KEY_BYTES_MAX: usize = keel_kv::KEY_BYTES_MAX;

/// Longest request body (a value, or an append's suffix): the service's limit on a value. A larger body is
/// refused with 413 from its `Content-Length` or, without one, as soon as that many bytes have arrived.
pub const VALUE_BYTES_MAX: usize = keel_kv::VALUE_BYTES_MAX;

/// A request's deadline: past it, 504 (the outcome is unknown). Five seconds covers a leader election (keel's
/// election timeouts are a few hundred ms) plus a forwarded proposal, and is short enough for a client to retry.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 5_000;

/// How long a client may take to send a request's headers (hyper's `header_read_timeout`; the clock also runs
/// while a kept-alive connection waits for its next request). Defeats clients that trickle headers in to hold a
/// connection forever (slowloris); honest clients send headers in one packet.
pub const HEADER_READ_TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// How long a client may take to send a request's body once its headers are in. A body of `VALUE_BYTES_MAX`
/// takes milliseconds on any real link; a client that stops sending gets 408 and a closed connection.
pub const BODY_READ_TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// How long a connection's writes may make no progress (the client reads none of its responses) before the
/// connection is closed. hyper has no write timeout of its own; without this, a client that pipelines requests
/// and never reads would hold a connection slot forever.
pub const WRITE_STALL_TIMEOUT_MS_DEFAULT: u64 = 10_000;

/// Most bytes of a request's head (request line and headers). Keys travel in the path: a percent-encoded key of
/// `KEY_BYTES_MAX` bytes is at most 3 KiB, so 16 KiB leaves room for ordinary headers. hyper answers 431 above it.
pub const HEADER_BYTES_MAX_DEFAULT: usize = 16 * 1024;

/// Most headers in one request; hyper answers 431 above it. Clients of this API send fewer than 10.
pub const HEADERS_MAX_DEFAULT: usize = 64;

/// Most open connections. Each costs a task and its buffers (up to `HEADER_BYTES_MAX_DEFAULT` for the head and
/// `VALUE_BYTES_MAX` for a body): 1024 of them stay well under 100 MiB. A connection over the limit is closed at
/// once, so the ones being served keep their share.
pub const CONNECTIONS_MAX_DEFAULT: usize = 1024;

/// Most KV requests being served at once (reading a body, waiting for the log). More get 503 with
/// `Retry-After`, before their body is read, so a flood costs neither memory nor log entries.
pub const REQUESTS_IN_FLIGHT_MAX_DEFAULT: usize = 512;

/// `Retry-After` on 503: a leader election usually completes within a second.
pub const RETRY_AFTER_S: u64 = 1;

/// How long `serve` lets open connections finish their requests after shutdown is asked, before dropping them.
pub const SHUTDOWN_GRACE_MS_DEFAULT: u64 = 2_000;

/// hyper refuses read buffers under 8 KiB (it panics): the head limit cannot go below this.
const HYPER_BUFFER_BYTES_MIN: usize = 8 * 1024;

/// The limits one node's front end and server loop apply. `Default` gives the documented defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpLimits {
    pub request_timeout_ms: u64,
    pub header_read_timeout_ms: u64,
    pub body_read_timeout_ms: u64,
    pub write_stall_timeout_ms: u64,
    /// The head's limit (431 above it). The connection's read buffer is this, but at least 8 KiB (hyper's
    /// minimum).
    pub header_bytes_max: usize,
    pub headers_max: usize,
    pub connections_max: usize,
    pub requests_in_flight_max: usize,
    pub shutdown_grace_ms: u64,
}

impl Default for HttpLimits {
    fn default() -> HttpLimits {
        HttpLimits {
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            header_read_timeout_ms: HEADER_READ_TIMEOUT_MS_DEFAULT,
            body_read_timeout_ms: BODY_READ_TIMEOUT_MS_DEFAULT,
            write_stall_timeout_ms: WRITE_STALL_TIMEOUT_MS_DEFAULT,
            header_bytes_max: HEADER_BYTES_MAX_DEFAULT,
            headers_max: HEADERS_MAX_DEFAULT,
            connections_max: CONNECTIONS_MAX_DEFAULT,
            requests_in_flight_max: REQUESTS_IN_FLIGHT_MAX_DEFAULT,
            shutdown_grace_ms: SHUTDOWN_GRACE_MS_DEFAULT,
        }
    }
}

impl HttpLimits {
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.request_timeout_ms)
    }

    pub fn header_read_timeout(&self) -> Duration {
        Duration::from_millis(self.header_read_timeout_ms)
    }

    pub fn body_read_timeout(&self) -> Duration {
        Duration::from_millis(self.body_read_timeout_ms)
    }

    pub fn write_stall_timeout(&self) -> Duration {
        Duration::from_millis(self.write_stall_timeout_ms)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_millis(self.shutdown_grace_ms)
    }

    /// The read buffer's size: the head limit, but never below hyper's minimum.
    pub(crate) fn header_bytes_max_effective(&self) -> usize {
        self.header_bytes_max.max(HYPER_BUFFER_BYTES_MIN)
    }
}
