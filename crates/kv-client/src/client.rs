//! The client: the clerk's contract over HTTP. One operation at a time (`&mut self`), each with a fresh seq; all
//! attempts of an operation carry the same (client id, seq), so however often it is retried, on whichever nodes,
//! the cluster applies it at most once and every attempt learns the original reply.
//!
//! Retries: a refused connection, a 503 (no leader, overloaded, node stopped) and a 504 or a lost answer (outcome
//! unknown) move on to the next node; after a round in which every node failed, the client pauses
//! (`round_backoff_ms`, or the longest `Retry-After` heard, at most `retry_after_max_ms`). It stops at the
//! operation's deadline, or early when no node accepted a connection for `unreachable_rounds_max` rounds.
//!
//! Routing: operations go to the leader once the client knows which endpoint it is, from the `Keel-Node` and
//! `Keel-Leader` headers of the answers (see `route_after`); any node would do, since followers forward, but the
//! leader saves a hop each way.
use hyper::body::Bytes;
use hyper::{Method, StatusCode};
use keel_kv::{ClientId, KEY_BYTES_MAX, Seq, VALUE_BYTES_MAX};
use tokio::time::Instant;

use crate::error::Error;
use crate::identity::random_client_id;
use crate::options::ClientOptions;
use crate::transport::{Answer, Call, Endpoint, Failure, Transport, percent_encode};
use crate::types::{Deleted, ErrorBody, ListPage, NodeStatus, Versioned, WrittenBody};

/// See the crate documentation.
pub struct Client {
    endpoints: Vec<Endpoint>,
    options: ClientOptions,
    transport: Transport,
    client_id: ClientId,
    next_seq: Seq,
    /// The slot the next operation starts at: the leader's when the client knows which endpoint that is (see
    /// `route_after`), otherwise the node that answered last (which skips nodes that are down).
    preferred: usize,
    /// The node id behind each endpoint, as its answers' `Keel-Node` header said (`None`: not heard from yet).
    node_ids: Vec<Option<u64>>,
}

/// What kind of operation, for what an unknown outcome means.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Effect {
    Read,
    Write,
}

impl Client {
    /// A client for the nodes at `endpoints` (`http://host:port`; `host:port` is taken as http). Needs no
    /// runtime until an operation runs.
    pub fn new(endpoints: Vec<String>, options: ClientOptions) -> Result<Client, Error> {
        if endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        let endpoints = endpoints.iter().map(|text| Endpoint::parse(text)).collect::<Result<Vec<_>, _>>()?;
        let transport = Transport::new(&options);
        let node_ids = vec![None; endpoints.len()];
        Ok(Client { endpoints, options, transport, client_id: random_client_id(), next_seq: 1, preferred: 0, node_ids })
    }

    /// This client's current id (it changes if the cluster forgets its session).
    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    /// The endpoints, normalized (`http://host:port`).
    pub fn endpoints(&self) -> Vec<String> {
        self.endpoints.iter().map(|endpoint| endpoint.0.clone()).collect()
    }

    /// The value of `key` and its last-modified index, or `None` if the key does not exist. Linearizable.
    pub async fn get(&mut self, key: &str) -> Result<Option<Versioned>, Error> {
        let call = self.call(Method::GET, &key_target(key, "")?, Bytes::new());
        let (endpoint, answer) = self.run(call, Effect::Read).await?;
        match answer.status {
            StatusCode::OK => {
                let index = header_u64(&answer, "keel-index")
                    .ok_or_else(|| protocol(&endpoint, "a value without a Keel-Index header", false))?;
                let value = String::from_utf8(answer.body.to_vec())
                    .map_err(|_| protocol(&endpoint, "a value that is not UTF-8", false))?;
                Ok(Some(Versioned { value, index }))
            }
            StatusCode::NOT_FOUND if error_code(&answer).as_deref() == Some("key_not_found") => Ok(None),
            _ => Err(self.refusal(&endpoint, &answer, Effect::Read)),
        }
    }

    /// Sets `key` to `value`; returns the index of the write.
    pub async fn put(&mut self, key: &str, value: &str) -> Result<u64, Error> {
        check_value(value)?;
        let call = self.call(Method::PUT, &key_target(key, "")?, Bytes::copy_from_slice(value.as_bytes()));
        self.write(call).await
    }

    /// Sets `key` to `value` only if the key's last-modified index is `expected_index` (0: only if the key does
    /// not exist); otherwise [`Error::IndexMismatch`] with the current index.
    pub async fn put_if(&mut self, key: &str, value: &str, expected_index: u64) -> Result<u64, Error> {
        check_value(value)?;
        let target = key_target(key, &format!("?if-index={expected_index}"))?;
        let call = self.call(Method::PUT, &target, Bytes::copy_from_slice(value.as_bytes()));
        let (endpoint, answer) = self.run(call, Effect::Write).await?;
        if answer.status == StatusCode::PRECONDITION_FAILED {
            let body: Option<ErrorBody> = serde_json::from_slice(&answer.body).ok();
            if let Some(ErrorBody { code, index: Some(current_index), .. }) = body
                && code == "index_mismatch"
            {
                return Err(Error::IndexMismatch { expected_index, current_index });
            }
        }
        written(self.answered(&endpoint, answer, Effect::Write)?, &endpoint)
    }

    /// Appends `suffix` to `key`'s value (creating the key); returns the index of the write.
    pub async fn append(&mut self, key: &str, suffix: &str) -> Result<u64, Error> {
        check_value(suffix)?;
        let call = self.call(Method::POST, &key_target(key, "?append")?, Bytes::copy_from_slice(suffix.as_bytes()));
        self.write(call).await
    }

    /// Deletes `key`.
    pub async fn delete(&mut self, key: &str) -> Result<Deleted, Error> {
        let call = self.call(Method::DELETE, &key_target(key, "")?, Bytes::new());
        let (endpoint, answer) = self.run(call, Effect::Write).await?;
        let answer = self.answered(&endpoint, answer, Effect::Write)?;
        serde_json::from_slice(&answer.body).map_err(|e| {
            protocol(&endpoint, &format!("a delete reply that is not {{\"index\", \"deleted\"}} ({e})"), true)
        })
    }

    /// Up to `limit` keys starting with `prefix`, in byte order, after `after` if given (the last key of the
    /// previous page). Linearizable.
    pub async fn list(&mut self, prefix: &str, after: Option<&str>, limit: u32) -> Result<ListPage, Error> {
        for (what, key) in [("prefix", Some(prefix)), ("after", after)] {
            if let Some(key) = key
                && key.len() > KEY_BYTES_MAX
            {
                return Err(Error::InvalidRequest(format!(
                    "the {what} is {} bytes long; the limit is {KEY_BYTES_MAX} bytes",
                    key.len()
                )));
            }
        }
        let mut target = format!("/v1/kv?prefix={}&limit={limit}", percent_encode(prefix, false));
        if let Some(after) = after {
            target.push_str(&format!("&after={}", percent_encode(after, false)));
        }
        let call = self.call(Method::GET, &target, Bytes::new());
        let (endpoint, answer) = self.run(call, Effect::Read).await?;
        let answer = self.answered(&endpoint, answer, Effect::Read)?;
        serde_json::from_slice(&answer.body)
            .map_err(|e| protocol(&endpoint, &format!("a list reply that is not {{\"keys\", \"more\"}} ({e})"), false))
    }

    /// The status of one node (`endpoint` need not be one of the client's), in one attempt.
    pub async fn status(&self, endpoint: &str) -> Result<NodeStatus, Error> {
        let endpoint = Endpoint::parse(endpoint)?;
        let call = Call { method: Method::GET, target: "/v1/status".to_string(), body: Bytes::new(), session: None };
        let answer = match self.transport.send(&endpoint, &call, self.options.attempt_timeout()).await {
            Ok(answer) => answer,
            Err(Failure::NotSent(detail) | Failure::Lost(detail)) => {
                return Err(Error::Unreachable { endpoints: endpoint.0, detail, outcome_unknown: false });
            }
        };
        if answer.status != StatusCode::OK {
            return Err(rejected(&endpoint, &answer));
        }
        serde_json::from_slice(&answer.body)
            .map_err(|e| protocol(&endpoint, &format!("a status that is not a node's ({e})"), false))
    }

    async fn write(&mut self, call: Call) -> Result<u64, Error> {
        let (endpoint, answer) = self.run(call, Effect::Write).await?;
        written(self.answered(&endpoint, answer, Effect::Write)?, &endpoint)
    }

    /// A call under the next seq of this client.
    fn call(&mut self, method: Method, target: &str, body: Bytes) -> Call {
        let seq = self.next_seq;
        match self.next_seq.checked_add(1) {
            Some(next) => self.next_seq = next,
            // 2^64 requests later: a new identity keeps the sequence increasing for the cluster.
            None => self.new_identity(),
        }
        Call { method, target: target.to_string(), body, session: Some((self.client_id, seq)) }
    }

    fn new_identity(&mut self) {
        self.client_id = random_client_id();
        self.next_seq = 1;
    }

    /// Sends `call` until a node gives an outcome (any answer but 503 and 504), the deadline passes, or no node
    /// can be reached. Returns the node that answered and its answer.
    async fn run(&mut self, call: Call, effect: Effect) -> Result<(Endpoint, Answer), Error> {
        let started = Instant::now();
        let deadline = started + self.options.deadline();
        let nodes = self.endpoints.len();
        let mut slot = self.preferred;
        let mut attempts: u32 = 0;
        let mut outcome_unknown = false;
        let mut last = String::new();
        let mut rounds_unreachable: u32 = 0;
        loop {
            // One round: every node once, starting at `slot`.
            let mut round_pause = self.options.round_backoff();
            let mut round_all_refused = true;
            for _ in 0..nodes {
                let now = Instant::now();
                if now >= deadline {
                    return Err(Error::DeadlineExceeded {
                        deadline_ms: self.options.deadline_ms,
                        attempts,
                        last,
                        outcome_unknown: outcome_unknown && effect == Effect::Write,
                    });
                }
                let endpoint = self.endpoints[slot].clone();
                let timeout = self.options.attempt_timeout().min(deadline - now);
                attempts += 1;
                match self.transport.send(&endpoint, &call, timeout).await {
                    Err(Failure::NotSent(detail)) => last = format!("{endpoint}: {detail}"),
                    Err(Failure::Lost(detail)) => {
                        round_all_refused = false;
                        outcome_unknown = true;
                        last = format!("{endpoint}: {detail}");
                    }
                    Ok(answer) if answer.status == StatusCode::SERVICE_UNAVAILABLE => {
                        round_all_refused = false;
                        if let Some(seconds) = header_u64(&answer, "retry-after") {
                            let hinted = std::time::Duration::from_secs(seconds).min(self.options.retry_after_max());
                            round_pause = round_pause.max(hinted);
                        }
                        last = format!("{endpoint}: {}", describe(&answer));
                    }
                    Ok(answer) if answer.status == StatusCode::GATEWAY_TIMEOUT => {
                        round_all_refused = false;
                        outcome_unknown = true;
                        last = format!("{endpoint}: {}", describe(&answer));
                    }
                    Ok(answer) => {
                        self.preferred = self.route_after(slot, &answer);
                        return Ok((endpoint, answer));
                    }
                }
                slot = (slot + 1) % nodes;
            }
            rounds_unreachable = if round_all_refused { rounds_unreachable + 1 } else { 0 };
            if rounds_unreachable >= self.options.unreachable_rounds_max {
                let endpoints =
                    self.endpoints.iter().map(|endpoint| endpoint.0.as_str()).collect::<Vec<_>>().join(", ");
                return Err(Error::Unreachable {
                    endpoints,
                    detail: last,
                    outcome_unknown: outcome_unknown && effect == Effect::Write,
                });
            }
            let pause = round_pause.min(deadline.saturating_duration_since(Instant::now()));
            tokio::time::sleep(pause).await;
        }
    }

    /// Where the next operation starts, after an answer from `slot`. A follower forwards to the leader, which
    /// costs a hop each way, so the client goes to the leader itself once it knows which endpoint that is: the
    /// answers name their node (`Keel-Node`) and the leader (`Keel-Leader`). While the leader's endpoint is
    /// unknown, the next operation tries an endpoint not heard from yet, so a client whose list starts with
    /// followers finds the leader within one operation per node. Nothing is sent just to learn this.
    fn route_after(&mut self, slot: usize, answer: &Answer) -> usize {
        if let Some(id) = header_u64(answer, "keel-node") {
            self.node_ids[slot] = Some(id);
        }
        let Some(leader) = header_u64(answer, "keel-leader") else { return slot };
        if let Some(known) = self.node_ids.iter().position(|id| *id == Some(leader)) {
            return known;
        }
        let nodes = self.endpoints.len();
        (1..nodes).map(|step| (slot + step) % nodes).find(|k| self.node_ids[*k].is_none()).unwrap_or(slot)
    }

    /// A 2xx answer, or the error a non-2xx one means.
    fn answered(&mut self, endpoint: &Endpoint, answer: Answer, effect: Effect) -> Result<Answer, Error> {
        if answer.status.is_success() { Ok(answer) } else { Err(self.refusal(endpoint, &answer, effect)) }
    }

    /// The error an outcome other than success means. Session errors give the client a new identity: its old one
    /// can no longer be deduplicated (expired) or is out of step with the cluster (stale, reused).
    fn refusal(&mut self, endpoint: &Endpoint, answer: &Answer, effect: Effect) -> Error {
        let error = rejected(endpoint, answer);
        match &error {
            // A read changes nothing: nothing is unknown, it simply was not executed.
            Error::Rejected { code, .. } if code == "session_expired" && effect == Effect::Read => {
                self.new_identity();
                error
            }
            Error::Rejected { code, message, .. } if code == "session_expired" => {
                self.new_identity();
                let message = format!("{message} (the client continues under a new id)");
                Error::SessionExpired { endpoint: endpoint.0.clone(), message }
            }
            Error::Rejected { code, .. } if code == "stale_sequence" || code == "sequence_reused" => {
                self.new_identity();
                error
            }
            _ => error,
        }
    }
}

/// The error body of a non-2xx answer.
fn rejected(endpoint: &Endpoint, answer: &Answer) -> Error {
    match serde_json::from_slice::<ErrorBody>(&answer.body) {
        Ok(body) => Error::Rejected {
            endpoint: endpoint.0.clone(),
            status: answer.status.as_u16(),
            code: body.code,
            message: body.error,
        },
        Err(_) => Error::Rejected {
            endpoint: endpoint.0.clone(),
            status: answer.status.as_u16(),
            code: "unknown".to_string(),
            message: format!("an answer that is not this API's ({})", describe(answer)),
        },
    }
}

fn written(answer: Answer, endpoint: &Endpoint) -> Result<u64, Error> {
    serde_json::from_slice::<WrittenBody>(&answer.body)
        .map(|body| body.index)
        .map_err(|e| protocol(endpoint, &format!("a write reply that is not {{\"index\"}} ({e})"), true))
}

fn protocol(endpoint: &Endpoint, detail: &str, outcome_unknown: bool) -> Error {
    Error::Protocol { endpoint: endpoint.0.clone(), detail: format!("it sent {detail}"), outcome_unknown }
}

fn error_code(answer: &Answer) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(&answer.body).ok().map(|body| body.code)
}

fn header_u64(answer: &Answer, name: &str) -> Option<u64> {
    answer.headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// `503 no_leader: sentence`, for error messages.
fn describe(answer: &Answer) -> String {
    match serde_json::from_slice::<ErrorBody>(&answer.body) {
        Ok(body) => format!("{} {}: {}", answer.status.as_u16(), body.code, body.error),
        Err(_) => format!("{} with a body of {} bytes", answer.status, answer.body.len()),
    }
}

/// `/v1/kv/{key}{query}`, after checking the key as the server would.
fn key_target(key: &str, query: &str) -> Result<String, Error> {
    if key.is_empty() {
        return Err(Error::InvalidRequest("the key is empty: give a key of 1 to 1024 bytes".to_string()));
    }
    if key.len() > KEY_BYTES_MAX {
        return Err(Error::InvalidRequest(format!(
            "the key is {} bytes long; the limit is {KEY_BYTES_MAX} bytes",
            key.len()
        )));
    }
    Ok(format!("/v1/kv/{}{query}", percent_encode(key, true)))
}

fn check_value(value: &str) -> Result<(), Error> {
    if value.len() > VALUE_BYTES_MAX {
        return Err(Error::InvalidRequest(format!(
            "the value is {} bytes long; the limit is {VALUE_BYTES_MAX} bytes",
            value.len()
        )));
    }
    Ok(())
}
