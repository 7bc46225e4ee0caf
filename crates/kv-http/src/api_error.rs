//! Every error the API answers: a status, a machine code, a sentence saying what to do, and sometimes the key's
//! current index (412) or a `Retry-After` (503). Rendered as `{"error": ..., "code": ..., "index": ...}`.
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// The machine codes of error bodies. Clients match on these, never on the sentences.
pub mod code {
    /// 400: the key in the path is not valid percent-encoded UTF-8, or is empty.
    pub const BAD_KEY: &str = "bad_key";
    /// 400: a `Keel-*` header is malformed, or only one of `Keel-Client-Id` / `Keel-Seq` is present.
    pub const BAD_HEADER: &str = "bad_header";
    /// 400: an unknown, repeated or malformed query parameter.
    pub const BAD_QUERY: &str = "bad_query";
    /// 400: the body is not UTF-8 (the store holds text) or could not be read.
    pub const BAD_BODY: &str = "bad_body";
    /// 404: `GET` of a key that does not exist.
    pub const KEY_NOT_FOUND: &str = "key_not_found";
    /// 404: no such route.
    pub const NO_ROUTE: &str = "no_route";
    /// 405.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// 408: the body did not arrive within the body read timeout.
    pub const BODY_TIMEOUT: &str = "body_timeout";
    /// 409: this (client, seq) is older than the client's last applied request: not executed.
    pub const STALE_SEQUENCE: &str = "stale_sequence";
    /// 409: the service forgot this client's session: not executed now, and whether it was applied before is
    /// unknown.
    pub const SESSION_EXPIRED: &str = "session_expired";
    /// 409: this (client, seq) was already used for a different kind of request.
    pub const SEQUENCE_REUSED: &str = "sequence_reused";
    /// 412: `if-index` did not match; `index` holds the key's current index (0: absent).
    pub const INDEX_MISMATCH: &str = "index_mismatch";
    /// 413.
    pub const KEY_TOO_LARGE: &str = "key_too_large";
    /// 413: the body, or the value an append would produce.
    pub const VALUE_TOO_LARGE: &str = "value_too_large";
    /// 413: the command as a whole.
    pub const COMMAND_TOO_LARGE: &str = "command_too_large";
    /// 507: the store is full.
    pub const STORE_FULL: &str = "store_full";
    /// 500: a bug (the service could not decode a command this node encoded).
    pub const INTERNAL: &str = "internal";
    /// 500: the node that applied the command speaks another command format (a mixed-version cluster).
    pub const UNSUPPORTED_VERSION: &str = "unsupported_version";
    /// 503: no leader known; retry after `Retry-After`.
    pub const NO_LEADER: &str = "no_leader";
    /// 503: too many requests in flight; retry after `Retry-After`.
    pub const OVERLOADED: &str = "overloaded";
    /// 503: the node stopped (shut down or failed); try another node.
    pub const NODE_STOPPED: &str = "node_stopped";
    /// 504: no outcome within the request's deadline: the write may still apply.
    pub const TIMED_OUT: &str = "timed_out";
    /// 504: the command was proposed and its fate became unknowable (leadership lost): it may still apply.
    pub const OUTCOME_UNKNOWN: &str = "outcome_unknown";
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// The key's current index, for 412.
    pub index: Option<u64>,
    pub retry_after_s: Option<u64>,
    /// `Allow`, for 405.
    pub allow: Option<&'static str>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError { status, code, message: message.into(), index: None, retry_after_s: None, allow: None }
    }

    pub fn with_index(mut self, index: u64) -> ApiError {
        self.index = Some(index);
        self
    }

    pub fn with_retry_after(mut self, seconds: u64) -> ApiError {
        self.retry_after_s = Some(seconds);
        self
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    pub fn method_not_allowed(allow: &'static str) -> ApiError {
        let mut error = ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            code::METHOD_NOT_ALLOWED,
            format!("this route takes {allow} only"),
        );
        error.allow = Some(allow);
        error
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody { error: &self.message, code: self.code, index: self.index };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after_s {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if let Some(allow) = self.allow {
            response.headers_mut().insert(header::ALLOW, HeaderValue::from_static(allow));
        }
        response
    }
}
