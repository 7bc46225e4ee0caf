//! The front end's metrics: requests by route and status, and request latency by route. The runtime registers
//! its own metrics in the same registry; `/metrics` encodes the whole of it.
use std::time::Instant;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::request::KEY_PATH_PREFIX;

/// Latency buckets: 0.5 ms doubling 16 times, to about 16 s (past the default 5 s request deadline).
const LATENCY_BUCKET_FIRST_S: f64 = 0.0005;
const LATENCY_BUCKETS: u16 = 16;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
}

type LatencyFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// Handles to the front end's metrics (cheap to clone: they share the registered series).
#[derive(Clone, Debug)]
pub struct HttpMetrics {
    requests: Family<RequestLabels, Counter>,
    latency: LatencyFamily,
}

impl HttpMetrics {
    /// Registers `keel_http_requests_total{route,status}` and `keel_http_request_duration_seconds{route}`.
    pub fn register(registry: &mut Registry) -> HttpMetrics {
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("keel_http_requests", "HTTP requests answered, by route and status", requests.clone());
        let latency = LatencyFamily::new_with_constructor(|| {
            Histogram::new(exponential_buckets(LATENCY_BUCKET_FIRST_S, 2.0, LATENCY_BUCKETS))
        });
        registry.register(
            "keel_http_request_duration_seconds",
            "Time from a request's arrival at the router to its response, by route",
            latency.clone(),
        );
        HttpMetrics { requests, latency }
    }

    fn observe(&self, route: &'static str, status: u16, started: Instant) {
        self.requests.get_or_create(&RequestLabels { route, status }).inc();
        self.latency.get_or_create(&RouteLabels { route }).observe(started.elapsed().as_secs_f64());
    }
}

/// A bounded set of route names (never the raw path: a label per key would grow without bound).
fn route_of(method: &Method, path: &str, query: Option<&str>) -> &'static str {
    if path.starts_with(KEY_PATH_PREFIX) {
        match *method {
            Method::GET | Method::HEAD => "kv_get",
            Method::PUT if query.is_some_and(|query| query.contains("if-index")) => "kv_put_if",
            Method::PUT => "kv_put",
            Method::POST => "kv_append",
            Method::DELETE => "kv_delete",
            _ => "kv_other",
        }
    } else {
        match path {
            "/v1/kv" => "kv_list",
            "/v1/status" => "status",
            "/metrics" => "metrics",
            _ => "other",
        }
    }
}

/// Middleware: counts every response the router produces and times it.
pub async fn record(State(metrics): State<HttpMetrics>, request: Request, next: Next) -> Response {
    let route = route_of(request.method(), request.uri().path(), request.uri().query());
    let started = Instant::now();
    let response = next.run(request).await;
    metrics.observe(route, response.status().as_u16(), started);
    response
}
