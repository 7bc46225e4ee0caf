//! What a failed check returns: the key, and the shortest prefix in time of that key's operations that already
//! admits no linearization, formatted to be read.
//!
//! The prefix at time t holds every operation called by t; one that returned after t is pending at t (its output
//! unseen, as if it timed out). Linearizability is prefix-closed: if a history is linearizable, so is every such
//! prefix. So the prefixes fail from some instant on, and a binary search over the return times finds the first
//! instant, the return that made the history impossible.
use std::fmt;

use crate::history::{Operation, Outcome};
use crate::model::Model;
use crate::search::{Found, SearchLimits, search};

/// One operation of the offending window, rendered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WindowOp {
    pub client_id: u64,
    pub call_ns: u64,
    /// `None`: timed out, or returned after the window's end (its output is not part of the window).
    pub return_ns: Option<u64>,
    pub input: String,
    /// `None` when `return_ns` is.
    pub output: Option<String>,
    /// This operation returns at the window's end: with its output, the window stops being linearizable.
    pub breaks_it: bool,
}

/// Why a history is not linearizable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The partition (key) whose operations admit no linearization.
    pub key: String,
    /// How many operations the partition has.
    pub partition_len: usize,
    /// The window ends here: the instant of the return that made it impossible.
    pub end_ns: u64,
    /// The operations called by `end_ns`, by call time.
    pub window: Vec<WindowOp>,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "not linearizable: key {}: the {} operations called by {} ns (of the key's {}) already admit no order \
             that a sequential store could produce",
            self.key,
            self.window.len(),
            self.end_ns,
            self.partition_len
        )?;
        writeln!(f, "  {:>8} {:>14} {:>14}  {:<40} output", "client", "call ns", "return ns", "operation")?;
        for op in &self.window {
            let return_ns = op.return_ns.map_or_else(|| "pending".to_string(), |r| r.to_string());
            let output = op.output.as_deref().unwrap_or("?");
            let mark = if op.breaks_it { "   <- no linearization once this returns" } else { "" };
            writeln!(f, "  {:>8} {:>14} {:>14}  {:<40} {output}{mark}", op.client_id, op.call_ns, return_ns, op.input)?;
        }
        Ok(())
    }
}

/// The operations of `ops` as they stand at `end_ns`: those called by then, and those returning later made
/// pending. Pending reads are left out (they constrain nothing).
fn prefix<M: Model>(
    model: &M,
    ops: &[&Operation<M::Input, M::Output>],
    end_ns: u64,
) -> Vec<Operation<M::Input, M::Output>> {
    ops.iter()
        .filter(|op| op.call_ns <= end_ns)
        .map(|op| match op.return_ns() {
            Some(r) if r <= end_ns => (*op).clone(),
            _ => Operation::timed_out(op.client_id, op.call_ns, op.input.clone()),
        })
        .filter(|op| op.output().is_some() || !model.is_read_only(&op.input))
        .collect()
}

/// Builds the report for a partition the search found not linearizable: the shortest failing prefix.
pub fn shortest_failing_window<M: Model>(
    model: &M,
    key: &M::Key,
    ops: &[&Operation<M::Input, M::Output>],
    limits: SearchLimits,
) -> Report {
    let mut ends: Vec<u64> = ops.iter().filter_map(|op| op.return_ns()).collect();
    ends.sort_unstable();
    ends.dedup();
    let fails = |end_ns: u64| {
        let window = prefix(model, ops, end_ns);
        let refs: Vec<_> = window.iter().collect();
        search(model, &refs, limits) == Found::NotLinearizable
    };
    // The whole partition fails, and so does the prefix at its last return (operations called later are all
    // pending and follow every observation). Find the first end that fails; an `Unknown` probe counts as not
    // failing, which can only make the window longer, never wrong.
    let (mut lo, mut hi) = (0, ends.len().saturating_sub(1));
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if fails(ends[mid]) { hi = mid } else { lo = mid + 1 }
    }
    let end_ns = ends.get(lo).copied().unwrap_or(0);
    let mut window: Vec<WindowOp> = ops
        .iter()
        .filter(|op| op.call_ns <= end_ns)
        .map(|op| {
            let returned = match &op.outcome {
                Outcome::Returned { return_ns, output } if *return_ns <= end_ns => Some((*return_ns, output)),
                _ => None,
            };
            WindowOp {
                client_id: op.client_id,
                call_ns: op.call_ns,
                return_ns: returned.map(|(r, _)| r),
                input: format!("{:?}", op.input),
                output: returned.map(|(_, output)| format!("{output:?}")),
                breaks_it: returned.is_some_and(|(r, _)| r == end_ns),
            }
        })
        .collect();
    window.sort_by_key(|op| op.call_ns);
    Report { key: format!("{key:?}"), partition_len: ops.len(), end_ns, window }
}
