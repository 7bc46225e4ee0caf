//! What the checked object is supposed to do, sequentially, and the key/value model.
use std::fmt::Debug;
use std::hash::Hash;

/// A sequential specification, split by key: operations on different keys never constrain each other, so each
/// key's operations are checked alone (P-compositionality, Herlihy & Wing; porcupine partitions KV histories the
/// same way). A model with one key is checked whole.
pub trait Model {
    /// The state of one partition. Compared and hashed to memoize the search.
    type State: Clone + Eq + Hash + Debug;
    type Input: Clone + Debug;
    type Output: Clone + Debug;
    /// The partition an operation belongs to.
    type Key: Clone + Ord + Debug;

    fn init(&self) -> Self::State;

    fn key(&self, input: &Self::Input) -> Self::Key;

    /// The state after `input` is applied to `state` and answers `output`, or `None` if it cannot answer that.
    /// `output` is `None` for an operation that timed out: it must then be legal in every state (nobody saw its
    /// answer), or timed-out operations could make a history fail.
    fn step(&self, state: &Self::State, input: &Self::Input, output: Option<&Self::Output>) -> Option<Self::State>;

    /// Whether the operation never changes the state: such an operation that timed out constrains nothing and is
    /// left out of the search.
    fn is_read_only(&self, input: &Self::Input) -> bool;
}

/// Key/value operations, as 6.824's porcupine model has them, plus delete.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvInput {
    Get { key: String },
    Put { key: String, value: String },
    Append { key: String, value: String },
    Delete { key: String },
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KvOutput {
    /// A get's answer: the value, or `None` for an absent key.
    Value(Option<String>),
    /// A put or an append succeeded.
    Written,
    /// A delete succeeded; whether the key existed.
    Deleted { existed: bool },
}

/// The key/value model: per key, the value (`None` = absent). A get returns the current value, a put replaces
/// it, an append concatenates (creating the key), a delete removes it.
#[derive(Clone, Copy, Debug, Default)]
pub struct KvModel;

impl Model for KvModel {
    type State = Option<String>;
    type Input = KvInput;
    type Output = KvOutput;
    type Key = String;

    fn init(&self) -> Option<String> {
        None
    }

    fn key(&self, input: &KvInput) -> String {
        match input {
            KvInput::Get { key } | KvInput::Put { key, .. } | KvInput::Append { key, .. } | KvInput::Delete { key } => {
                key.clone()
            }
        }
    }

    fn step(&self, state: &Option<String>, input: &KvInput, output: Option<&KvOutput>) -> Option<Option<String>> {
        let (next, expected) = match input {
            KvInput::Get { .. } => (state.clone(), KvOutput::Value(state.clone())),
            KvInput::Put { value, .. } => (Some(value.clone()), KvOutput::Written),
            KvInput::Append { value, .. } => {
                (Some(state.as_deref().unwrap_or_default().to_owned() + value), KvOutput::Written)
            }
            KvInput::Delete { .. } => (None, KvOutput::Deleted { existed: state.is_some() }),
        };
        match output {
            Some(output) if *output != expected => None,
            _ => Some(next),
        }
    }

    fn is_read_only(&self, input: &KvInput) -> bool {
        matches!(input, KvInput::Get { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        let m = KvModel;
        let append = KvInput::Append { key: "k".into(), value: "x".into() };
        let s = m.step(&None, &append, Some(&KvOutput::Written)).expect("legal");
        assert_eq!(s.as_deref(), Some("x"));
        let get = KvInput::Get { key: "k".into() };
        assert!(m.step(&s, &get, Some(&KvOutput::Value(Some("x".into())))).is_some());
        assert!(m.step(&s, &get, Some(&KvOutput::Value(None))).is_none());
        assert!(m.step(&s, &get, None).is_some(), "a timed-out operation is legal anywhere");
        let delete = KvInput::Delete { key: "k".into() };
        assert!(m.step(&None, &delete, Some(&KvOutput::Deleted { existed: true })).is_none());
    }
}
