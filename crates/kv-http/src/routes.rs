//! The routes every node serves, over any [`KvBackend`]. Each KV request is parsed and checked completely
//! (key, query, session headers, body) before a command is built, then runs through the backend under the
//! request's deadline.
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use keel_kv::{Command, LIST_KEYS_MAX, Op};
use prometheus_client::registry::Registry;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::api_error::{ApiError, code};
use crate::backend::KvBackend;
use crate::limits::HttpLimits;
use crate::metrics::{self, HttpMetrics};
use crate::reply_mapping::{Shape, backend_error, render, timed_out};
use crate::request::{KEEL_LEADER_HEADER, KEEL_NODE_HEADER, Query, key_from_path, read_value, session};

/// `limit` of a list when the request gives none: the service's maximum page.
pub const LIST_LIMIT_DEFAULT: u32 = LIST_KEYS_MAX;

const KEY_METHODS: &str = "GET, HEAD, PUT, POST, DELETE";
const READ_METHODS: &str = "GET, HEAD";

struct App<B> {
    backend: Arc<B>,
    registry: Arc<Registry>,
    limits: HttpLimits,
    /// One permit per KV request being served (`requests_in_flight_max`).
    in_flight: Semaphore,
}

/// The API's router. `registry` is encoded whole by `/metrics`; `metrics` must have been registered in it.
/// Panics if `limits.requests_in_flight_max` is 0 (a configuration that could serve nothing).
pub fn router<B: KvBackend>(
    backend: Arc<B>,
    metrics: HttpMetrics,
    registry: Arc<Registry>,
    limits: HttpLimits,
) -> Router {
    assert!(limits.requests_in_flight_max > 0, "requests_in_flight_max must be at least 1");
    let in_flight = Semaphore::new(limits.requests_in_flight_max);
    let app = Arc::new(App { backend, registry, limits, in_flight });
    Router::new()
        .route("/v1/kv", get(list::<B>).fallback(|| async { ApiError::method_not_allowed(READ_METHODS) }))
        // `{*key}` does not match an empty key: answer that here rather than with "no route".
        .route("/v1/kv/", any(|| async { ApiError::bad_request(code::BAD_KEY, "the key is empty: use /v1/kv/{key}") }))
        .route(
            "/v1/kv/{*key}",
            get(single_key::<B>)
                .put(single_key::<B>)
                .post(single_key::<B>)
                .delete(single_key::<B>)
                .fallback(|| async { ApiError::method_not_allowed(KEY_METHODS) }),
        )
        .route("/v1/status", get(status::<B>).fallback(|| async { ApiError::method_not_allowed(READ_METHODS) }))
        .route("/metrics", get(encode_metrics::<B>).fallback(|| async { ApiError::method_not_allowed(READ_METHODS) }))
        .fallback(|| async {
            ApiError::new(
                StatusCode::NOT_FOUND,
                code::NO_ROUTE,
                "no such route: the API is /v1/kv/{key}, /v1/kv?prefix=, /v1/status and /metrics",
            )
        })
        .layer(axum::middleware::from_fn_with_state(metrics, metrics::record))
        .with_state(app)
}

async fn single_key<B: KvBackend>(State(app): State<Arc<App<B>>>, request: Request) -> Response {
    let deadline = Instant::now() + app.limits.request_timeout();
    respond(&app, handle_single_key(&app, request, deadline).await)
}

async fn list<B: KvBackend>(State(app): State<Arc<App<B>>>, request: Request) -> Response {
    let deadline = Instant::now() + app.limits.request_timeout();
    respond(&app, handle_list(&app, request, deadline).await)
}

/// The response, with `Keel-Node` and `Keel-Leader` (see the crate docs).
fn respond<B: KvBackend>(app: &App<B>, result: Result<Response, ApiError>) -> Response {
    let mut response = result.unwrap_or_else(IntoResponse::into_response);
    let status = app.backend.status();
    let headers = response.headers_mut();
    headers.insert(KEEL_NODE_HEADER, HeaderValue::from(status.id));
    if let Some(leader) = status.leader {
        headers.insert(KEEL_LEADER_HEADER, HeaderValue::from(leader));
    }
    response
}

async fn handle_single_key<B: KvBackend>(
    app: &App<B>,
    request: Request,
    deadline: Instant,
) -> Result<Response, ApiError> {
    // Refuse before reading the body, so a flood costs neither memory nor log entries.
    let _permit = app.in_flight.try_acquire().map_err(|_| backend_error(crate::BackendError::Overloaded, 0))?;
    let (parts, body) = request.into_parts();
    let key = key_from_path(parts.uri.path())?;
    let (client_id, seq) = session(&parts.headers)?;
    let query = parts.uri.query();
    let (op, shape) = match parts.method {
        Method::GET | Method::HEAD => {
            Query::parse(query, &[])?;
            (Op::Get { key }, Shape::Value)
        }
        Method::PUT => {
            let query = Query::parse(query, &["if-index"])?;
            let expected_index = query.u64("if-index")?;
            let value = read_body(app, &parts.headers, body, deadline).await?;
            match expected_index {
                Some(expected_index) => (Op::PutIf { key, value, expected_index }, Shape::Written),
                None => (Op::Put { key, value }, Shape::Written),
            }
        }
        Method::POST => {
            let query = Query::parse(query, &["append"])?;
            if !query.has("append") {
                return Err(ApiError::bad_request(
                    code::BAD_QUERY,
                    "POST appends: use POST /v1/kv/{key}?append (PUT sets a value)",
                ));
            }
            let value = read_body(app, &parts.headers, body, deadline).await?;
            (Op::Append { key, value }, Shape::Written)
        }
        Method::DELETE => {
            Query::parse(query, &[])?;
            (Op::Delete { key }, Shape::Deleted)
        }
        // The router sends only the methods above here.
        _ => return Err(ApiError::method_not_allowed(KEY_METHODS)),
    };
    execute(app, Command { client_id, seq, op }, shape, deadline).await
}

async fn handle_list<B: KvBackend>(app: &App<B>, request: Request, deadline: Instant) -> Result<Response, ApiError> {
    let _permit = app.in_flight.try_acquire().map_err(|_| backend_error(crate::BackendError::Overloaded, 0))?;
    let (client_id, seq) = session(request.headers())?;
    let query = Query::parse(request.uri().query(), &["prefix", "after", "limit"])?;
    let prefix = query.key_like("prefix")?.unwrap_or_default();
    let start_after = query.key_like("after")?;
    let limit = match query.u64("limit")? {
        None => LIST_LIMIT_DEFAULT,
        Some(0) => return Err(ApiError::bad_request(code::BAD_QUERY, "bad query string: limit must be at least 1")),
        // The service clamps to LIST_KEYS_MAX; `more` tells the client to read on.
        Some(limit) => u32::try_from(limit).unwrap_or(u32::MAX),
    };
    let op = Op::List { prefix, start_after, limit };
    execute(app, Command { client_id, seq, op }, Shape::List, deadline).await
}

/// The body, within the body read timeout and the request's deadline.
async fn read_body<B>(
    app: &App<B>,
    headers: &axum::http::HeaderMap,
    body: Body,
    deadline: Instant,
) -> Result<String, ApiError> {
    let remaining = deadline.saturating_duration_since(Instant::now());
    read_value(headers, body, app.limits.body_read_timeout().min(remaining)).await
}

async fn execute<B: KvBackend>(
    app: &App<B>,
    command: Command,
    shape: Shape,
    deadline: Instant,
) -> Result<Response, ApiError> {
    let timeout_ms = app.limits.request_timeout_ms;
    match tokio::time::timeout_at(deadline, app.backend.execute(command)).await {
        Err(_elapsed) => Err(timed_out(timeout_ms)),
        Ok(Err(error)) => Err(backend_error(error, timeout_ms)),
        Ok(Ok(executed)) => render(shape, executed),
    }
}

async fn status<B: KvBackend>(State(app): State<Arc<App<B>>>) -> Response {
    Json(app.backend.status()).into_response()
}

async fn encode_metrics<B: KvBackend>(State(app): State<Arc<App<B>>>) -> Response {
    let mut text = String::new();
    match prometheus_client::encoding::text::encode(&mut text, &app.registry) {
        Ok(()) => {
            let mut response = text.into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            );
            response
        }
        Err(error) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL,
            format!("could not encode metrics: {error}"),
        )
        .into_response(),
    }
}
