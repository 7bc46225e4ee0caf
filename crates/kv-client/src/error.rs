//! What can go wrong, typed; each error says whether the operation's outcome is unknown (a write that may or may
//! not have been applied) and what to do.

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no endpoints given: pass at least one node's HTTP address (for example http://127.0.0.1:7101)")]
    NoEndpoints,
    #[error("endpoint {endpoint:?} is not usable: {reason}")]
    BadEndpoint { endpoint: String, reason: String },
    /// Refused before anything was sent (an empty or oversized key, an oversized value).
    #[error("{0}")]
    InvalidRequest(String),
    /// No node accepted a connection, round after round.
    #[error("no node answered at {endpoints} ({detail}){}", unknown_note(*.outcome_unknown))]
    Unreachable { endpoints: String, detail: String, outcome_unknown: bool },
    /// The operation's deadline passed before any node gave an outcome.
    #[error(
        "no outcome within the {deadline_ms} ms deadline after {attempts} attempts (last: {last}){}",
        unknown_note(*.outcome_unknown)
    )]
    DeadlineExceeded { deadline_ms: u64, attempts: u32, last: String, outcome_unknown: bool },
    /// `put_if`: the key's index was not the expected one. Nothing was written.
    #[error(
        "the key's index is {current_index}, not the expected {expected_index}{}: read it again and retry",
        if *.current_index == 0 { " (it does not exist)" } else { "" }
    )]
    IndexMismatch { expected_index: u64, current_index: u64 },
    /// The cluster forgot this client's session (evicted by many newer clients): the request was not executed
    /// now, but may have been before. The client continues under a new identity.
    #[error("{message}")]
    SessionExpired { endpoint: String, message: String },
    /// A node refused the request (4xx, 5xx other than 503/504): nothing was applied.
    #[error("{endpoint} refused the request ({status} {code}): {message}")]
    Rejected { endpoint: String, status: u16, code: String, message: String },
    /// A node's response could not be understood (not this API, or a different version).
    #[error("{endpoint} sent a response this client cannot read: {detail}{}", unknown_note(*.outcome_unknown))]
    Protocol { endpoint: String, detail: String, outcome_unknown: bool },
}

fn unknown_note(outcome_unknown: bool) -> &'static str {
    if outcome_unknown { "; the write may or may not have been applied: read the key to find out" } else { "" }
}

impl Error {
    /// True when a write may or may not have been applied: the caller must find out (read the key) before
    /// assuming either. False for errors where nothing was applied, and for reads.
    pub fn is_outcome_unknown(&self) -> bool {
        match self {
            Error::Unreachable { outcome_unknown, .. }
            | Error::DeadlineExceeded { outcome_unknown, .. }
            | Error::Protocol { outcome_unknown, .. } => *outcome_unknown,
            Error::SessionExpired { .. } => true,
            Error::NoEndpoints
            | Error::BadEndpoint { .. }
            | Error::InvalidRequest(_)
            | Error::IndexMismatch { .. }
            | Error::Rejected { .. } => false,
        }
    }
}
