//! keel-lincheck: is a recorded history of a concurrent object linearizable? Test support for the simulator's
//! KV catalogue and, later, real-process tests.
//!
//! Two models: [`KvModel`] (get/put/append/delete, as 6.824's porcupine model) and [`IndexedKvModel`] (the same
//! with keel-kv's last-modified indexes and compare-and-set by index).
//!
//! [`check`] splits the history by key ([`Model::key`]), and searches each key's operations for a linearization
//! (Wing & Gong / Lowe, with porcupine's cache of visited configurations). Operations that timed out may take
//! effect at any instant after their call, or never. Each search is bounded ([`SearchLimits`]): past the bound
//! the verdict is `Unknown`, never a hang. A failure comes back as a [`Report`] (not printed): the key and the
//! shortest prefix of its operations that is already impossible.
//!
//! ```
//! use keel_lincheck::{check, KvInput, KvModel, KvOutput, Operation, SearchLimits, Verdict};
//! let put = KvInput::Put { key: "k".into(), value: "1".into() };
//! let get = KvInput::Get { key: "k".into() };
//! let history = vec![
//!     Operation::returned(1, 0, 10, put, KvOutput::Written),
//!     Operation::returned(2, 20, 30, get, KvOutput::Value(None)), // stale: the put had returned
//! ];
//! let verdict = check(&KvModel, &history, SearchLimits::default()).unwrap();
//! assert!(matches!(verdict, Verdict::NotLinearizable(_)));
//! ```
mod history;
mod indexed_kv;
mod model;
mod partition;
mod report;
mod search;

pub use history::{HistoryError, Operation, Outcome};
pub use indexed_kv::{Index, IndexedKvInput, IndexedKvModel, IndexedKvOutput, KeyState};
pub use model::{KvInput, KvModel, KvOutput, Model};
pub use report::{Report, WindowOp};
pub use search::{Found, SEARCH_STATES_MAX, SearchLimits};

/// The answer for a whole history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Linearizable,
    /// The first key (in key order) whose operations admit no linearization.
    NotLinearizable(Box<Report>),
    /// No key failed, but the search of these keys met its bound.
    Unknown {
        keys: Vec<String>,
    },
}

/// Checks `history` against `model`.
pub fn check<M: Model>(
    model: &M,
    history: &[Operation<M::Input, M::Output>],
    limits: SearchLimits,
) -> Result<Verdict, HistoryError> {
    history::validate(history)?;
    let mut unknown = Vec::new();
    for (key, positions) in partition::by_key(model, history) {
        let ops: Vec<_> = positions.iter().map(|&p| &history[p]).collect();
        match search::search(model, &ops, limits) {
            Found::Linearizable => {}
            Found::Unknown => unknown.push(format!("{key:?}")),
            Found::NotLinearizable => {
                let report = report::shortest_failing_window(model, &key, &ops, limits);
                return Ok(Verdict::NotLinearizable(Box::new(report)));
            }
        }
    }
    Ok(if unknown.is_empty() { Verdict::Linearizable } else { Verdict::Unknown { keys: unknown } })
}
