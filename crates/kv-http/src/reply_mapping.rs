//! From what the node said to what the client hears: every `keel_kv::Reply`, `keel_kv::Rejection` and
//! [`BackendError`] maps to one status and code, deliberately (no catch-all arms).
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use keel_kv::{Rejection, Reply};
use serde::Serialize;

use crate::api_error::{ApiError, code};
use crate::backend::{BackendError, Executed};
use crate::limits::RETRY_AFTER_S;
use crate::request::KEEL_INDEX_HEADER;

/// What the request asked for, so the reply is rendered in that request's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `GET /v1/kv/{key}`: the raw value.
    Value,
    /// `PUT` (also with `if-index`) and `POST ?append`: `{"index"}`.
    Written,
    /// `DELETE`: `{"index", "deleted"}`.
    Deleted,
    /// `GET /v1/kv?prefix=`: `{"keys", "more"}`.
    List,
}

#[derive(Serialize)]
struct WrittenBody {
    index: u64,
}

#[derive(Serialize)]
struct DeletedBody {
    index: u64,
    deleted: bool,
}

#[derive(Serialize)]
struct ListedKeyBody {
    key: String,
    index: u64,
    /// The value's length in bytes.
    size: u64,
}

#[derive(Serialize)]
struct ListBody {
    keys: Vec<ListedKeyBody>,
    more: bool,
}

/// The response to an applied command.
pub fn render(shape: Shape, executed: Executed) -> Result<Response, ApiError> {
    let Executed { index: applied_index, reply } = executed;
    match (shape, reply) {
        (_, Reply::Rejected { reason }) => Err(rejection(reason)),
        (Shape::Value, Reply::Value { value, modified_index }) => {
            let mut response = value.into_response();
            response.headers_mut().insert(KEEL_INDEX_HEADER, HeaderValue::from(modified_index));
            response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
            Ok(response)
        }
        (Shape::Value, Reply::NotFound) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            code::KEY_NOT_FOUND,
            "no such key (create it with PUT /v1/kv/{key})",
        )),
        (Shape::Written, Reply::Written { index }) => Ok(Json(WrittenBody { index }).into_response()),
        (Shape::Written, Reply::CasFailed { current_index }) => Err(ApiError::new(
            StatusCode::PRECONDITION_FAILED,
            code::INDEX_MISMATCH,
            if current_index == 0 {
                "the key does not exist, so if-index did not match: read it again (its index is 0) and retry"
                    .to_string()
            } else {
                format!("the key was last modified at index {current_index}, not at if-index: read it again and retry")
            },
        )
        .with_index(current_index)),
        (Shape::Deleted, Reply::Deleted { index }) => Ok(Json(DeletedBody { index, deleted: true }).into_response()),
        // Nothing changed; the index is where the delete took effect (its linearization point).
        (Shape::Deleted, Reply::NotFound) => {
            Ok(Json(DeletedBody { index: applied_index, deleted: false }).into_response())
        }
        (Shape::List, Reply::Listed { keys, more }) => {
            let keys = keys
                .into_iter()
                .map(|listed| ListedKeyBody { key: listed.key, index: listed.modified_index, size: listed.size_bytes })
                .collect();
            Ok(Json(ListBody { keys, more }).into_response())
        }
        // The service answers a retried write's (client, seq) with its original reply whatever this request asks:
        // a reply of another kind means the client used one seq for two different requests.
        (
            Shape::Value | Shape::Written | Shape::Deleted | Shape::List,
            reply @ (Reply::Value { .. }
            | Reply::NotFound
            | Reply::Written { .. }
            | Reply::Deleted { .. }
            | Reply::CasFailed { .. }
            | Reply::Listed { .. }),
        ) => Err(ApiError::new(
            StatusCode::CONFLICT,
            code::SEQUENCE_REUSED,
            format!(
                "this Keel-Client-Id and Keel-Seq were already used for another request (whose reply was {reply:?}): \
                 give every new request a new Keel-Seq"
            ),
        )),
    }
}

/// A command the service refused to execute.
pub fn rejection(reason: Rejection) -> ApiError {
    let message = reason.to_string();
    match reason {
        Rejection::Malformed => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            format!("{message}: the node could not decode a command it encoded (a bug); please report it"),
        ),
        Rejection::UnsupportedVersion { .. } => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::UNSUPPORTED_VERSION,
            format!("{message}: the cluster's nodes run different keel versions; upgrade them all"),
        ),
        Rejection::CommandTooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::COMMAND_TOO_LARGE,
            format!("{message}: send a smaller key or value"),
        ),
        Rejection::KeyTooLarge { .. } => {
            ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, code::KEY_TOO_LARGE, format!("{message}: use a shorter key"))
        }
        Rejection::ValueTooLarge { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::VALUE_TOO_LARGE,
            format!("{message} (for an append: the value it would produce); nothing was written"),
        ),
        Rejection::StoreFull { .. } => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            code::STORE_FULL,
            format!("{message}; nothing was written: delete keys to make room"),
        ),
        // The front end refuses seq 0 before proposing; only a bug would get here.
        Rejection::InvalidSequence => ApiError::bad_request(code::BAD_HEADER, "Keel-Seq starts at 1"),
        Rejection::StaleSequence { seq, last_applied_seq } => ApiError::new(
            StatusCode::CONFLICT,
            code::STALE_SEQUENCE,
            format!(
                "{message}; it was not executed. A client sends one request at a time with an increasing Keel-Seq: \
                 use {} or more",
                last_applied_seq.max(seq) + 1
            ),
        ),
        Rejection::SessionExpired { .. } => ApiError::new(
            StatusCode::CONFLICT,
            code::SESSION_EXPIRED,
            format!(
                "{message}: it was not executed now but may have been before. Read the key to learn whether it \
                 applied, then continue with a new Keel-Client-Id starting at Keel-Seq 1"
            ),
        ),
    }
}

/// A command that got no reply.
pub fn backend_error(error: BackendError, request_timeout_ms: u64) -> ApiError {
    match error {
        BackendError::NoLeader => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::NO_LEADER,
            "no leader is known (an election is under way, or this node is cut off); nothing was proposed: retry \
             after Retry-After, here or on another node",
        )
        .with_retry_after(RETRY_AFTER_S),
        BackendError::Overloaded => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::OVERLOADED,
            "too many requests in flight on this node; nothing was proposed: retry after Retry-After",
        )
        .with_retry_after(RETRY_AFTER_S),
        BackendError::Stopped { reason } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::NODE_STOPPED,
            format!("this node stopped ({reason}): send the request to another node"),
        ),
        BackendError::TimedOut => timed_out(request_timeout_ms),
        BackendError::Unknown { reason } => ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            code::OUTCOME_UNKNOWN,
            format!(
                "the outcome is unknown ({reason}): the write may still apply. Retry with the same Keel-Client-Id \
                 and Keel-Seq to learn it without applying it twice"
            ),
        ),
    }
}

/// 504 past the request's deadline.
pub fn timed_out(request_timeout_ms: u64) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        code::TIMED_OUT,
        format!(
            "no outcome within {request_timeout_ms} ms: the write may still apply. Retry with the same \
             Keel-Client-Id and Keel-Seq to learn it without applying it twice"
        ),
    )
}
