//! keel-kv-http: the HTTP/JSON API every keel kv node serves, over a [`KvBackend`] (the runtime's replica, or
//! [`FakeBackend`] in tests).
//!
//! | request | success | errors |
//! |---|---|---|
//! | `GET /v1/kv/{key}` | 200, the raw value, header `Keel-Index` | 404 `key_not_found` |
//! | `PUT /v1/kv/{key}` (body: value) | 200 `{"index"}` | with `?if-index=M`: 412 `index_mismatch` + `"index"` |
//! | `POST /v1/kv/{key}?append` (body: suffix) | 200 `{"index"}` | |
//! | `DELETE /v1/kv/{key}` | 200 `{"index", "deleted"}` | |
//! | `GET /v1/kv?prefix=P&after=K&limit=N` | 200 `{"keys": [{"key", "index"}], "more"}` | |
//! | `GET /v1/status` | 200, [`NodeStatus`] | |
//! | `GET /metrics` | 200, Prometheus/OpenMetrics text of the whole registry | |
//!
//! Every `/v1/kv` answer carries `Keel-Node` (the answering node's id) and, when it knows one, `Keel-Leader` (the
//! leader's id): a client that maps its endpoints to ids this way can send to the leader directly.
//!
//! Keys are the rest of the path, percent-decoded (so they may contain `/`). Optional `Keel-Client-Id` and
//! `Keel-Seq` headers make a request exactly-once (see `keel_kv`'s `dedup.rs`). Every error is
//! `{"error": sentence, "code": machine code}`; the codes and what they map from are in [`code`] and
//! `reply_mapping.rs`. Every request has a deadline ([`HttpLimits::request_timeout_ms`]): past it, 504.
mod api_error;
mod backend;
mod fake_backend;
mod limits;
mod metrics;
mod reply_mapping;
mod request;
mod routes;
mod server;
mod stall_guard;

pub use api_error::code;
pub use backend::{BackendError, Executed, KvBackend, NodeStatus, Role};
pub use fake_backend::{FakeBackend, Fault};
pub use limits::{
    BODY_READ_TIMEOUT_MS_DEFAULT, CONNECTIONS_MAX_DEFAULT, HEADER_BYTES_MAX_DEFAULT, HEADER_READ_TIMEOUT_MS_DEFAULT,
    HEADERS_MAX_DEFAULT, HttpLimits, KEY_BYTES_MAX, REQUEST_TIMEOUT_MS_DEFAULT, REQUESTS_IN_FLIGHT_MAX_DEFAULT,
    RETRY_AFTER_S, SHUTDOWN_GRACE_MS_DEFAULT, VALUE_BYTES_MAX, WRITE_STALL_TIMEOUT_MS_DEFAULT,
};
pub use metrics::HttpMetrics;
pub use request::{KEEL_CLIENT_ID_HEADER, KEEL_INDEX_HEADER, KEEL_LEADER_HEADER, KEEL_NODE_HEADER, KEEL_SEQ_HEADER};
pub use routes::{LIST_LIMIT_DEFAULT, router};
pub use server::{serve, serve_with_limits};
