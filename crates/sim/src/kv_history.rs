//! The history of a KV test: every operation a clerk started, when (virtual time), and what it got back, in the
//! form `keel_lincheck` checks (6.824's porcupine `opLog`). Operations still unanswered at the check are timed
//! out: they may have taken effect at any instant after their call, or never.
//!
//! The model is `IndexedKvModel`: porcupine's key/value model (a get returns the current value, a put replaces
//! it, an append concatenates) plus keel-kv's last-modified indexes (a key's indexes only grow, a read reports the
//! index of the write it sees). It checks more than 6.824 does, and the indexes prune the search: with values
//! alone, many concurrent appends to one key admit so many orders that porcupine's search times out (6.824 leaves
//! its one-key test out of the linearizability check for that reason).
use std::collections::BTreeMap;

use keel_kv::{Op, Reply, Seq};
use keel_lincheck::{
    IndexedKvInput as KvInput, IndexedKvModel, IndexedKvOutput as KvOutput, Operation, Outcome, SearchLimits, Verdict,
    check,
};

/// Timestamps are virtual nanoseconds: the virtual millisecond, plus a counter within it, so that two events of
/// one millisecond (a return, then the next call) keep their order. A millisecond holds at most this many stamps
/// (far more than any test records in one virtual millisecond; past it the stamps stay ordered but share the last
/// value, which only makes operations look concurrent: never a false alarm).
const STAMPS_PER_MS: u64 = 1_000_000;

/// The history recorder.
#[derive(Default)]
pub struct History {
    ops: Vec<Operation<KvInput, KvOutput>>,
    /// The position in `ops` of each operation still in progress, by (clerk, seq).
    open: BTreeMap<(usize, Seq), usize>,
    last_stamp_ms: u64,
    stamps_this_ms: u64,
}

/// What a failed check found.
pub enum HistoryProblem {
    NotLinearizable(String),
    Malformed(String),
}

impl History {
    /// A strictly increasing timestamp for an event at `now_ms`.
    fn stamp(&mut self, now_ms: u64) -> u64 {
        if now_ms != self.last_stamp_ms {
            self.last_stamp_ms = now_ms;
            self.stamps_this_ms = 0;
        }
        self.stamps_this_ms = (self.stamps_this_ms + 1).min(STAMPS_PER_MS - 1);
        now_ms * STAMPS_PER_MS + self.stamps_this_ms
    }

    /// Clerk `clerk` called `op` as request `seq`.
    pub fn call(&mut self, now_ms: u64, clerk: usize, seq: Seq, op: &Op) -> Result<(), String> {
        let input = input_of(op)?;
        let call_ns = self.stamp(now_ms);
        self.open.insert((clerk, seq), self.ops.len());
        self.ops.push(Operation::timed_out(clerk as u64, call_ns, input));
        Ok(())
    }

    /// Request `seq` of clerk `clerk` returned `reply`.
    pub fn returned(&mut self, now_ms: u64, clerk: usize, seq: Seq, reply: &Reply) -> Result<(), String> {
        let Some(position) = self.open.remove(&(clerk, seq)) else {
            return Err(format!("clerk {clerk} got a reply for request {seq}, which it never called"));
        };
        let return_ns = self.stamp(now_ms);
        let output = output_of(&self.ops[position].input, reply)?;
        self.ops[position].outcome = Outcome::Returned { return_ns, output };
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Operations that never returned (their clerk gave up, or the test ended first).
    pub fn unanswered(&self) -> usize {
        self.open.len()
    }

    /// The values of the appends to `key` that were acknowledged, and of those that were not (still unanswered).
    pub fn appends(&self, key: &str) -> (Vec<&str>, Vec<&str>) {
        let mut acknowledged = Vec::new();
        let mut unanswered = Vec::new();
        for op in &self.ops {
            if let KvInput::Append { key: k, value } = &op.input
                && k == key
            {
                if op.output().is_some() { acknowledged.push(value.as_str()) } else { unanswered.push(value.as_str()) }
            }
        }
        (acknowledged, unanswered)
    }

    /// Checks the whole history (partitioned by key, as porcupine does). Like 6.824, a
    /// search that meets its bound is not a failure (porcupine's timeout is "Unknown", reported as a pass).
    /// Returns the keys whose search met the bound.
    pub fn check(&self) -> Result<Vec<String>, HistoryProblem> {
        match check(&IndexedKvModel, &self.ops, SearchLimits::default()) {
            Ok(Verdict::Linearizable) => Ok(Vec::new()),
            Ok(Verdict::Unknown { keys }) => Ok(keys),
            Ok(Verdict::NotLinearizable(report)) => Err(HistoryProblem::NotLinearizable(report.to_string())),
            Err(e) => Err(HistoryProblem::Malformed(e.to_string())),
        }
    }
}

/// The model's view of an operation the tests issue (get, put, append: 6.824's operations).
fn input_of(op: &Op) -> Result<KvInput, String> {
    Ok(match op {
        Op::Get { key } => KvInput::Get { key: key.clone() },
        Op::Put { key, value } => KvInput::Put { key: key.clone(), value: value.clone() },
        Op::Append { key, value } => KvInput::Append { key: key.clone(), value: value.clone() },
        Op::Delete { key } => KvInput::Delete { key: key.clone() },
        other => return Err(format!("the KV history does not model {other:?}")),
    })
}

/// The model's view of a reply. A rejection is never a legal answer to the tests' operations (they stay within
/// every limit and keep 6.824's one-request-per-clerk contract), so it fails the test here.
fn output_of(input: &KvInput, reply: &Reply) -> Result<KvOutput, String> {
    Ok(match (input, reply) {
        (KvInput::Get { .. }, Reply::Value { value, modified_index }) => {
            KvOutput::Value { value: value.clone(), modified_index: *modified_index }
        }
        (KvInput::Get { .. } | KvInput::Delete { .. }, Reply::NotFound) => KvOutput::NotFound,
        (KvInput::Put { .. } | KvInput::Append { .. }, Reply::Written { index }) => KvOutput::Written { index: *index },
        (KvInput::Delete { .. }, Reply::Deleted { index }) => KvOutput::Deleted { index: *index },
        (input, reply) => return Err(format!("{input:?} got the reply {reply:?}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use keel_kv::Rejection;

    fn put(key: &str, value: &str) -> Op {
        Op::Put { key: key.into(), value: value.into() }
    }

    #[test]
    fn events_of_one_millisecond_keep_their_order() {
        let mut history = History::default();
        history.call(5, 0, 1, &put("k", "1")).expect("modelled");
        history.returned(5, 0, 1, &Reply::Written { index: 1 }).expect("called");
        // Called in the same virtual millisecond, after the put returned: it must see the put.
        history.call(5, 1, 1, &Op::Get { key: "k".into() }).expect("modelled");
        history.returned(6, 1, 1, &Reply::NotFound).expect("called");
        assert!(matches!(history.check(), Err(HistoryProblem::NotLinearizable(_))), "a stale read in one ms");
    }

    #[test]
    fn unanswered_operations_may_or_may_not_have_happened() {
        let mut history = History::default();
        history.call(1, 0, 1, &put("k", "1")).expect("modelled");
        history.call(2, 1, 1, &Op::Get { key: "k".into() }).expect("modelled");
        history.returned(3, 1, 1, &Reply::Value { value: "1".into(), modified_index: 4 }).expect("called");
        assert_eq!(history.unanswered(), 1);
        assert!(history.check().is_ok(), "the unanswered put may have taken effect");
    }

    #[test]
    fn replies_that_no_test_operation_can_get_are_errors() {
        let mut history = History::default();
        assert!(history.returned(1, 0, 1, &Reply::NotFound).is_err(), "a reply without a call");
        history.call(1, 0, 1, &put("k", "1")).expect("modelled");
        let rejected = Reply::Rejected { reason: Rejection::Malformed };
        assert!(history.returned(2, 0, 1, &rejected).is_err(), "a rejection");
        let list = Op::List { prefix: String::new(), start_after: None, limit: 1 };
        assert!(history.call(3, 0, 2, &list).is_err(), "list is not modelled");
    }
}
