//! One HTTP exchange with one node, and how its failure is classified: never sent (the connection was refused:
//! safe to send elsewhere, nothing can have applied) or lost (sent, no answer: it may have applied).
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::error::Error;
use crate::options::{ClientOptions, POOL_IDLE_TIMEOUT_MS, RESPONSE_BYTES_MAX};

/// A node's base URL, `http://host:port`, as given (normalized: scheme added if missing, no trailing `/`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint(pub String);

impl Endpoint {
    pub fn parse(text: &str) -> Result<Endpoint, Error> {
        let bad = |reason: &str| Error::BadEndpoint { endpoint: text.to_string(), reason: reason.to_string() };
        let trimmed = text.trim().trim_end_matches('/');
        if trimmed.is_empty() {
            return Err(bad("it is empty"));
        }
        let with_scheme = if trimmed.contains("://") { trimmed.to_string() } else { format!("http://{trimmed}") };
        let uri: hyper::Uri = with_scheme.parse().map_err(|e| bad(&format!("not a URL ({e})")))?;
        if uri.scheme_str() != Some("http") {
            return Err(bad("only http:// is supported"));
        }
        if uri.authority().is_none() {
            return Err(bad("it has no host"));
        }
        if uri.path() != "/" && !uri.path().is_empty() {
            return Err(bad("give the node's address only (http://host:port), without a path"));
        }
        Ok(Endpoint(with_scheme))
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A request, ready to send to any node.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: Method,
    /// Path and query, percent-encoded.
    pub target: String,
    pub body: Bytes,
    pub session: Option<(u64, u64)>,
}

/// What came back.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Bytes,
}

/// One attempt's outcome when no answer came.
#[derive(Debug)]
pub enum Failure {
    /// The connection was never made: the request cannot have reached the node.
    NotSent(String),
    /// The request may have reached the node (the connection broke, or no answer in time).
    Lost(String),
}

pub struct Transport {
    http: HyperClient<HttpConnector, Full<Bytes>>,
}

impl Transport {
    pub fn new(options: &ClientOptions) -> Transport {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_millis(options.connect_timeout_ms)));
        connector.set_nodelay(true);
        let http = HyperClient::builder(TokioExecutor::new())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_millis(POOL_IDLE_TIMEOUT_MS))
            .build(connector);
        Transport { http }
    }

    /// Sends `call` to `endpoint` and reads the whole answer, within `timeout`.
    pub async fn send(&self, endpoint: &Endpoint, call: &Call, timeout: Duration) -> Result<Answer, Failure> {
        let mut request = Request::builder().method(call.method.clone()).uri(format!("{}{}", endpoint.0, call.target));
        if let Some((client_id, seq)) = call.session {
            request = request.header("keel-client-id", client_id).header("keel-seq", seq);
        }
        let request = request
            .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(Full::new(call.body.clone()))
            // The endpoint was parsed as a URI and the target is percent-encoded: a failure here is a bug.
            .map_err(|e| Failure::NotSent(format!("could not build the request: {e}")))?;
        let exchange = async {
            let response = self.http.request(request).await.map_err(|error| {
                if error.is_connect() {
                    Failure::NotSent(format!("could not connect: {}", innermost_cause(&error)))
                } else {
                    Failure::Lost(format!("the connection failed: {}", source_chain(&error)))
                }
            })?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, RESPONSE_BYTES_MAX)
                .collect()
                .await
                .map_err(|e| Failure::Lost(format!("could not read the response: {e}")))?
                .to_bytes();
            Ok(Answer { status: parts.status, headers: parts.headers, body })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_elapsed) => Err(Failure::Lost(format!("no answer within {} ms", timeout.as_millis()))),
        }
    }
}

/// The root cause ("Connection refused (os error 111)"): what a reader needs to know about a failed connect.
fn innermost_cause(error: &dyn std::error::Error) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    cause.to_string()
}

/// `error: cause: cause`, since hyper's top-level messages ("client error (Connect)") say little alone.
fn source_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Percent-encodes `text` for a URL: every byte but the unreserved ones (and `/` in a path) is escaped.
pub fn percent_encode(text: &str, keep_slash: bool) -> String {
    let mut encoded = String::with_capacity(text.len());
    for &byte in text.as_bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') || (keep_slash && byte == b'/') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_normalized() {
        assert_eq!(Endpoint::parse("127.0.0.1:7101").unwrap().0, "http://127.0.0.1:7101");
        assert_eq!(Endpoint::parse(" http://localhost:80/ ").unwrap().0, "http://localhost:80");
        assert!(Endpoint::parse("https://x:1").is_err());
        assert!(Endpoint::parse("").is_err());
        assert!(Endpoint::parse("http://x:1/v1").is_err());
    }

    #[test]
    fn encodes() {
        assert_eq!(percent_encode("a/b c?é", true), "a/b%20c%3F%C3%A9");
        assert_eq!(percent_encode("a/b", false), "a%2Fb");
    }
}
