//! A recorded history: what each client asked, when, and what it got back (if it did).
//!
//! Times are whatever clock the recorder used (virtual time in the simulator, a monotonic clock in real-process
//! tests), in nanoseconds; only their order matters. An operation that returned was in effect at one instant
//! between its call and its return. An operation that timed out (its client never saw a reply) may have taken
//! effect at any instant after its call, or never.

/// One operation of a history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation<I, O> {
    /// The client that issued it (for the report; the check does not need one operation per client at a time).
    pub client_id: u64,
    /// When the client issued it.
    pub call_ns: u64,
    pub input: I,
    pub outcome: Outcome<O>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome<O> {
    /// The client got `output` at `return_ns`.
    Returned { return_ns: u64, output: O },
    /// The client never got a reply: the operation may have taken effect, at any instant after its call, or not.
    TimedOut,
}

impl<I, O> Operation<I, O> {
    pub fn returned(client_id: u64, call_ns: u64, return_ns: u64, input: I, output: O) -> Self {
        Operation { client_id, call_ns, input, outcome: Outcome::Returned { return_ns, output } }
    }

    pub fn timed_out(client_id: u64, call_ns: u64, input: I) -> Self {
        Operation { client_id, call_ns, input, outcome: Outcome::TimedOut }
    }

    pub fn return_ns(&self) -> Option<u64> {
        match &self.outcome {
            Outcome::Returned { return_ns, .. } => Some(*return_ns),
            Outcome::TimedOut => None,
        }
    }

    pub fn output(&self) -> Option<&O> {
        match &self.outcome {
            Outcome::Returned { output, .. } => Some(output),
            Outcome::TimedOut => None,
        }
    }
}

/// Why a history cannot be checked at all.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("operation {position} returns at {return_ns} ns, before its call at {call_ns} ns")]
    ReturnBeforeCall { position: usize, call_ns: u64, return_ns: u64 },
}

/// Checks what the search relies on.
pub fn validate<I, O>(history: &[Operation<I, O>]) -> Result<(), HistoryError> {
    for (position, op) in history.iter().enumerate() {
        if let Some(return_ns) = op.return_ns().filter(|&r| r < op.call_ns) {
            return Err(HistoryError::ReturnBeforeCall { position, call_ns: op.call_ns, return_ns });
        }
    }
    Ok(())
}
