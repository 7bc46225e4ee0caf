//! How patient a [`crate::Client`] is. Each default says why it has its value.
use std::time::Duration;

/// One attempt (one request to one node) waits at most this long. Longer than the server's own request deadline
/// (`keel_kv_http::REQUEST_TIMEOUT_MS_DEFAULT`, 5 s), so a slow node answers 504 rather than being cut off.
pub const ATTEMPT_TIMEOUT_MS_DEFAULT: u64 = 6_000;

/// An operation (all its attempts) gives up after this long: enough for a few leader elections and two full
/// rounds of server deadlines.
pub const DEADLINE_MS_DEFAULT: u64 = 15_000;

/// Connecting to a node waits at most this long: on loopback or a LAN a connection takes milliseconds, so a
/// node that does not accept within a second is down or cut off; try the next one.
pub const CONNECT_TIMEOUT_MS_DEFAULT: u64 = 1_000;

/// A `Retry-After` longer than this is cut to it: the server's hint is for crowds, and the operation has a
/// deadline of its own.
pub const RETRY_AFTER_MAX_MS_DEFAULT: u64 = 2_000;

/// Pause after a round in which every node was tried without success (6.824's clerks sleep 100 ms).
pub const ROUND_BACKOFF_MS_DEFAULT: u64 = 100;

/// Rounds in which no node accepted a connection before the client stops trying: a cluster that refuses
/// every connection three times over 200 ms is not running, and waiting the whole deadline would only delay the
/// message that says so.
pub const UNREACHABLE_ROUNDS_MAX_DEFAULT: u32 = 3;

/// A pooled connection idle this long is closed by the client. Below the server's header read timeout
/// (`keel_kv_http::HEADER_READ_TIMEOUT_MS_DEFAULT`, 10 s, which also closes idle connections), so the client
/// rarely sends on a connection the server is closing (a retry would cover it, but costs an attempt).
pub const POOL_IDLE_TIMEOUT_MS: u64 = 5_000;

/// Largest response body read: a list page is at most `keel_kv::LIST_REPLY_BYTES_MAX` (256 KiB) of keys plus JSON
/// framing, a value at most 64 KiB.
pub const RESPONSE_BYTES_MAX: usize = 4 * 1024 * 1024;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientOptions {
    pub attempt_timeout_ms: u64,
    pub deadline_ms: u64,
    pub connect_timeout_ms: u64,
    pub retry_after_max_ms: u64,
    pub round_backoff_ms: u64,
    pub unreachable_rounds_max: u32,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            attempt_timeout_ms: ATTEMPT_TIMEOUT_MS_DEFAULT,
            deadline_ms: DEADLINE_MS_DEFAULT,
            connect_timeout_ms: CONNECT_TIMEOUT_MS_DEFAULT,
            retry_after_max_ms: RETRY_AFTER_MAX_MS_DEFAULT,
            round_backoff_ms: ROUND_BACKOFF_MS_DEFAULT,
            unreachable_rounds_max: UNREACHABLE_ROUNDS_MAX_DEFAULT,
        }
    }
}

impl ClientOptions {
    pub(crate) fn attempt_timeout(&self) -> Duration {
        Duration::from_millis(self.attempt_timeout_ms)
    }

    pub(crate) fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }

    pub(crate) fn retry_after_max(&self) -> Duration {
        Duration::from_millis(self.retry_after_max_ms)
    }

    pub(crate) fn round_backoff(&self) -> Duration {
        Duration::from_millis(self.round_backoff_ms)
    }
}
