//! What a benchmark client talks to, and how: keel through `keel-kv-client` (what a Rust user would write),
//! keel over raw HTTP with exactly-once headers (the same requests without the client's retry logic), or etcd's
//! v3 JSON gateway (`POST /v3/kv/put` and `/v3/kv/range`, keys and values in base64). Each connection is one
//! HTTP/1.1 keep-alive connection per benchmark client, with Nagle off, as the keel client's own transport.
use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode, header};
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use keel_kv_client::{Client, ClientOptions};

/// One raw request waits at most this long: longer than keel's server deadline (5 s), so a slow answer is
/// counted as what it is (a 504, or etcd's own timeout error) rather than cut off by the load generator.
pub const RAW_REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Largest answer body read (an etcd range of one key, a keel value of at most 64 KiB, or an error).
const ANSWER_BYTES_MAX: usize = 1 << 20;

/// How keel is driven.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Driver {
    /// `keel-kv-client`: retries across nodes with one identity (exactly-once); what applications use.
    Client,
    /// Raw HTTP with `Keel-Client-Id`/`Keel-Seq`, one node per benchmark client, no retries.
    Raw,
}

/// Which system a run measures.
#[derive(Clone, Debug)]
pub enum System {
    Keel { endpoints: Vec<String>, driver: Driver },
    Etcd { endpoints: Vec<String> },
}

impl System {
    pub fn name(&self) -> &'static str {
        match self {
            System::Keel { driver: Driver::Client, .. } => "keel",
            System::Keel { driver: Driver::Raw, .. } => "keel-raw",
            System::Etcd { .. } => "etcd",
        }
    }

    pub fn endpoints(&self) -> &[String] {
        match self {
            System::Keel { endpoints, .. } | System::Etcd { endpoints } => endpoints,
        }
    }
}

pub type Http = HyperClient<HttpConnector, Full<Bytes>>;

pub fn http_client() -> Http {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(1)));
    HyperClient::builder(TokioExecutor::new())
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        // One connection per benchmark client, kept for the whole run.
        .pool_max_idle_per_host(1)
        .build(connector)
}

/// One request, the whole answer read, within `timeout`: (status, body), or why no answer came.
pub async fn exchange(
    http: &Http,
    method: Method,
    uri: &str,
    headers: &[(&str, String)],
    body: Bytes,
    timeout: Duration,
) -> Result<(StatusCode, Bytes), String> {
    let mut request = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let request = request.body(Full::new(body)).map_err(|e| format!("{uri}: cannot build the request: {e}"))?;
    let answer = async {
        let response = http.request(request).await.map_err(|e| format!("{uri}: {:#}", anyhow::Error::new(e)))?;
        let status = response.status();
        let body = Limited::new(response.into_body(), ANSWER_BYTES_MAX)
            .collect()
            .await
            .map_err(|e| format!("{uri}: cannot read the answer: {e}"))?
            .to_bytes();
        Ok((status, body))
    };
    tokio::time::timeout(timeout, answer)
        .await
        .unwrap_or_else(|_| Err(format!("{uri}: no answer within {} ms", timeout.as_millis())))
}

/// One benchmark client's connection: one request outstanding at a time.
pub enum Connection {
    Client(Box<Client>),
    KeelRaw { http: Http, endpoint: String, client_id: u64, next_seq: u64 },
    Etcd { http: Http, endpoint: String },
}

impl Connection {
    /// Benchmark client number `index` starts at endpoint `index % n`, so clients spread over the nodes (the
    /// list's first endpoint is the leader's when the caller put it there). With the `client` driver, each then
    /// goes where `keel-kv-client` goes: to the leader, once its answers said which endpoint that is; the `raw`
    /// driver stays on its node, so followers forward (what a client without that logic, like curl, costs).
    pub fn open(system: &System, index: usize) -> anyhow::Result<Connection> {
        let endpoints = system.endpoints();
        anyhow::ensure!(!endpoints.is_empty(), "no endpoints to benchmark");
        let first = index % endpoints.len();
        Ok(match system {
            System::Keel { driver: Driver::Client, .. } => {
                let rotated: Vec<String> = endpoints[first..].iter().chain(&endpoints[..first]).cloned().collect();
                let client = Client::new(rotated, ClientOptions::default())
                    .map_err(|e| anyhow::anyhow!("bad --endpoints: {e}"))?;
                Connection::Client(Box::new(client))
            }
            System::Keel { driver: Driver::Raw, .. } => Connection::KeelRaw {
                http: http_client(),
                endpoint: base_url(&endpoints[first]),
                client_id: keel_kv_client::random_client_id(),
                next_seq: 1,
            },
            System::Etcd { .. } => Connection::Etcd { http: http_client(), endpoint: base_url(&endpoints[first]) },
        })
    }

    /// Sets `key` to `value`.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<(), String> {
        match self {
            Connection::Client(client) => client.put(key, value).await.map(drop).map_err(|e| e.to_string()),
            Connection::KeelRaw { http, endpoint, client_id, next_seq } => {
                let seq = *next_seq;
                *next_seq += 1;
                let headers = [("keel-client-id", client_id.to_string()), ("keel-seq", seq.to_string())];
                let uri = format!("{endpoint}/v1/kv/{key}");
                let body = Bytes::copy_from_slice(value.as_bytes());
                let (status, body) = exchange(http, Method::PUT, &uri, &headers, body, raw_timeout()).await?;
                expect_ok(status, &body, &uri)
            }
            Connection::Etcd { http, endpoint } => {
                let body = format!(r#"{{"key":"{}","value":"{}"}}"#, base64(key.as_bytes()), base64(value.as_bytes()));
                let uri = format!("{endpoint}/v3/kv/put");
                let (status, body) =
                    exchange(http, Method::POST, &uri, &json_type(), body.into(), raw_timeout()).await?;
                expect_ok(status, &body, &uri)
            }
        }
    }

    /// Reads `key` (linearizable on both systems: keel's reads go through the log, etcd's range is linearizable
    /// unless asked for serializable). A missing key is a successful read.
    pub async fn get(&mut self, key: &str) -> Result<(), String> {
        match self {
            Connection::Client(client) => client.get(key).await.map(drop).map_err(|e| e.to_string()),
            Connection::KeelRaw { http, endpoint, client_id, next_seq } => {
                let seq = *next_seq;
                *next_seq += 1;
                let headers = [("keel-client-id", client_id.to_string()), ("keel-seq", seq.to_string())];
                let uri = format!("{endpoint}/v1/kv/{key}");
                let (status, body) = exchange(http, Method::GET, &uri, &headers, Bytes::new(), raw_timeout()).await?;
                if status == StatusCode::NOT_FOUND && body.windows(13).any(|w| w == b"key_not_found") {
                    return Ok(());
                }
                expect_ok(status, &body, &uri)
            }
            Connection::Etcd { http, endpoint } => {
                let body = format!(r#"{{"key":"{}"}}"#, base64(key.as_bytes()));
                let uri = format!("{endpoint}/v3/kv/range");
                let (status, body) =
                    exchange(http, Method::POST, &uri, &json_type(), body.into(), raw_timeout()).await?;
                expect_ok(status, &body, &uri)
            }
        }
    }
}

fn raw_timeout() -> Duration {
    Duration::from_millis(RAW_REQUEST_TIMEOUT_MS)
}

fn json_type() -> [(&'static str, String); 1] {
    [(header::CONTENT_TYPE.as_str(), "application/json".to_string())]
}

fn expect_ok(status: StatusCode, body: &Bytes, uri: &str) -> Result<(), String> {
    if status.is_success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
    Err(format!("{uri}: {status}: {text}"))
}

/// `http://host:port` from `host:port` or a URL, without a trailing slash.
pub fn base_url(endpoint: &str) -> String {
    let trimmed = endpoint.trim().trim_end_matches('/');
    if trimmed.contains("://") { trimmed.to_string() } else { format!("http://{trimmed}") }
}

/// Standard base64 with padding (RFC 4648), as etcd's JSON gateway wants for bytes fields.
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut text = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let word = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for position in 0..4 {
            if position <= chunk.len() {
                text.push(char::from(ALPHABET[(word >> (18 - 6 * position)) as usize & 63]));
            } else {
                text.push('=');
            }
        }
    }
    text
}

/// Puts the leader's endpoint first (keel: `/v1/status`; etcd: `/v3/maintenance/status`), so that one
/// benchmark client talks to the leader, as a leader-aware client would, on both systems alike. Endpoints that do
/// not answer stay in place; if none leads, the order is kept.
pub async fn leader_first(system: &System) -> (Vec<String>, Option<String>) {
    let http = http_client();
    let mut endpoints = system.endpoints().to_vec();
    let timeout = Duration::from_secs(2);
    for (slot, endpoint) in endpoints.iter().enumerate() {
        let base = base_url(endpoint);
        let leads = match system {
            System::Keel { .. } => {
                let uri = format!("{base}/v1/status");
                match exchange(&http, Method::GET, &uri, &[], Bytes::new(), timeout).await {
                    Ok((StatusCode::OK, body)) => serde_json::from_slice::<serde_json::Value>(&body)
                        .is_ok_and(|status| status["role"] == "leader"),
                    _ => false,
                }
            }
            System::Etcd { .. } => {
                let uri = format!("{base}/v3/maintenance/status");
                match exchange(&http, Method::POST, &uri, &json_type(), Bytes::from_static(b"{}"), timeout).await {
                    Ok((StatusCode::OK, body)) => {
                        serde_json::from_slice::<serde_json::Value>(&body).is_ok_and(|status| {
                            let member = &status["header"]["member_id"];
                            !member.is_null() && *member == status["leader"]
                        })
                    }
                    _ => false,
                }
            }
        };
        if leads {
            let leader = endpoints.remove(slot);
            endpoints.insert(0, leader.clone());
            return (endpoints, Some(leader));
        }
    }
    (endpoints, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc_4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0x00]), "//4A");
    }
}
