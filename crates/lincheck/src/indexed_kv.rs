//! A richer key/value model for stores that stamp each key with the log index of its last change (keel-kv):
//! replies carry indexes, and compare-and-set is by index. Besides what [`crate::KvModel`] checks, it checks
//! that a key's indexes only grow, that a read reports the index of the write it sees, and that compare-and-set
//! succeeds exactly when the expected index is the current one.
//!
//! A timed-out write leaves its index unknown; a timed-out compare-and-set whose outcome cannot be decided
//! leaves the whole key unknown. The next read of the key learns what it sees. This keeps the model a function
//! (one next state per step), at the price of checking less right after such an operation: never a false
//! violation, sometimes a missed one.
use crate::model::Model;

/// Last-modified indexes, as the store assigns them (0 is never one: "absent" for compare-and-set).
pub type Index = u64;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IndexedKvInput {
    Get {
        key: String,
    },
    Put {
        key: String,
        value: String,
    },
    Append {
        key: String,
        value: String,
    },
    Delete {
        key: String,
    },
    /// Sets the value if the key's last-modified index is `expected_index` (0: the key must be absent).
    PutIf {
        key: String,
        value: String,
        expected_index: Index,
    },
}

/// The replies, as keel-kv's `Reply` has them (the simulator maps one to the other).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum IndexedKvOutput {
    Value { value: String, modified_index: Index },
    NotFound,
    Written { index: Index },
    Deleted { index: Index },
    CasFailed { current_index: Index },
}

/// One key's state as far as the history tells.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeyState {
    Absent,
    /// `index` is `None` after a timed-out write (its index was never seen).
    Present {
        value: String,
        index: Option<Index>,
    },
    /// After a timed-out compare-and-set that may or may not have applied: anything.
    Unknown,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct IndexedKvModel;

/// Whether a write at `index` may follow a key last changed at `current` (indexes only grow).
fn later(current: Option<Index>, index: Index) -> bool {
    current.is_none_or(|current| index > current)
}

impl IndexedKvModel {
    /// The state after a write of `value` answered with `output` (`None`: timed out).
    fn written(current: Option<Index>, value: String, output: Option<&IndexedKvOutput>) -> Option<KeyState> {
        match output {
            None => Some(KeyState::Present { value, index: None }),
            Some(IndexedKvOutput::Written { index }) if later(current, *index) => {
                Some(KeyState::Present { value, index: Some(*index) })
            }
            Some(_) => None,
        }
    }
}

impl Model for IndexedKvModel {
    type State = KeyState;
    type Input = IndexedKvInput;
    type Output = IndexedKvOutput;
    type Key = String;

    fn init(&self) -> KeyState {
        KeyState::Absent
    }

    fn key(&self, input: &IndexedKvInput) -> String {
        match input {
            IndexedKvInput::Get { key }
            | IndexedKvInput::Put { key, .. }
            | IndexedKvInput::Append { key, .. }
            | IndexedKvInput::Delete { key }
            | IndexedKvInput::PutIf { key, .. } => key.clone(),
        }
    }

    fn step(&self, state: &KeyState, input: &IndexedKvInput, output: Option<&IndexedKvOutput>) -> Option<KeyState> {
        use IndexedKvInput as In;
        use IndexedKvOutput as Out;
        let current_index = match state {
            KeyState::Present { index, .. } => *index,
            KeyState::Absent | KeyState::Unknown => None,
        };
        match (input, state) {
            (In::Get { .. }, _) => match (output, state) {
                (None, _) => Some(state.clone()),
                (Some(Out::NotFound), KeyState::Absent | KeyState::Unknown) => Some(KeyState::Absent),
                (Some(Out::Value { value, modified_index }), KeyState::Present { value: v, index })
                    if v == value && index.is_none_or(|i| i == *modified_index) =>
                {
                    Some(KeyState::Present { value: value.clone(), index: Some(*modified_index) })
                }
                (Some(Out::Value { value, modified_index }), KeyState::Unknown) => {
                    Some(KeyState::Present { value: value.clone(), index: Some(*modified_index) })
                }
                _ => None,
            },
            (In::Put { value, .. }, _) => Self::written(current_index, value.clone(), output),
            // Appending to an unknown value gives an unknown value.
            (In::Append { .. }, KeyState::Unknown) => match output {
                None | Some(Out::Written { .. }) => Some(KeyState::Unknown),
                Some(_) => None,
            },
            (In::Append { value, .. }, _) => {
                let base = match state {
                    KeyState::Present { value, .. } => value.as_str(),
                    KeyState::Absent | KeyState::Unknown => "",
                };
                Self::written(current_index, base.to_owned() + value, output)
            }
            (In::Delete { .. }, _) => match (output, state) {
                (None, _) => Some(KeyState::Absent),
                (Some(Out::NotFound), KeyState::Absent | KeyState::Unknown) => Some(KeyState::Absent),
                (Some(Out::Deleted { index }), KeyState::Present { .. } | KeyState::Unknown)
                    if later(current_index, *index) =>
                {
                    Some(KeyState::Absent)
                }
                _ => None,
            },
            (In::PutIf { value, expected_index, .. }, _) => {
                // Whether the condition holds, if the state says.
                let holds = match state {
                    KeyState::Absent => Some(*expected_index == 0),
                    KeyState::Present { index: Some(index), .. } => Some(index == expected_index),
                    // Present with an unseen index: any index but 0 is possible.
                    KeyState::Present { index: None, .. } => (*expected_index == 0).then_some(false),
                    KeyState::Unknown => None,
                };
                match output {
                    None => match holds {
                        Some(true) => Some(KeyState::Present { value: value.clone(), index: None }),
                        Some(false) => Some(state.clone()),
                        None => Some(KeyState::Unknown),
                    },
                    Some(Out::Written { index }) if holds != Some(false) && later(current_index, *index) => {
                        Some(KeyState::Present { value: value.clone(), index: Some(*index) })
                    }
                    Some(Out::CasFailed { current_index: seen }) if holds != Some(true) && seen != expected_index => {
                        match state {
                            KeyState::Absent if *seen == 0 => Some(KeyState::Absent),
                            KeyState::Present { value, index } if *seen != 0 && index.is_none_or(|i| i == *seen) => {
                                Some(KeyState::Present { value: value.clone(), index: Some(*seen) })
                            }
                            // The key's existence is learned, not its value.
                            KeyState::Unknown if *seen == 0 => Some(KeyState::Absent),
                            KeyState::Unknown => Some(KeyState::Unknown),
                            _ => None,
                        }
                    }
                    Some(_) => None,
                }
            }
        }
    }

    fn is_read_only(&self, input: &IndexedKvInput) -> bool {
        matches!(input, IndexedKvInput::Get { .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndexedKvInput as In;
    use IndexedKvOutput as Out;

    fn present(value: &str, index: Option<Index>) -> KeyState {
        KeyState::Present { value: value.into(), index }
    }

    #[test]
    fn writes_and_reads_carry_growing_indexes() {
        let m = IndexedKvModel;
        let put = In::Put { key: "k".into(), value: "a".into() };
        let s = m.step(&KeyState::Absent, &put, Some(&Out::Written { index: 5 })).expect("legal");
        assert_eq!(s, present("a", Some(5)));
        assert!(m.step(&s, &put, Some(&Out::Written { index: 5 })).is_none(), "indexes only grow");
        let get = In::Get { key: "k".into() };
        assert!(m.step(&s, &get, Some(&Out::Value { value: "a".into(), modified_index: 5 })).is_some());
        assert!(m.step(&s, &get, Some(&Out::Value { value: "a".into(), modified_index: 4 })).is_none());
        // A timed-out write: its index is learned by the next read.
        let s = m.step(&s, &In::Append { key: "k".into(), value: "b".into() }, None).expect("legal");
        assert_eq!(s, present("ab", None));
        let read = Out::Value { value: "ab".into(), modified_index: 9 };
        assert_eq!(m.step(&s, &get, Some(&read)), Some(present("ab", Some(9))));
    }

    #[test]
    fn compare_and_set_by_index() {
        let m = IndexedKvModel;
        let cas = |expected_index| In::PutIf { key: "k".into(), value: "v".into(), expected_index };
        let s = present("a", Some(5));
        assert_eq!(m.step(&s, &cas(5), Some(&Out::Written { index: 7 })), Some(present("v", Some(7))));
        assert!(m.step(&s, &cas(4), Some(&Out::Written { index: 7 })).is_none(), "the condition did not hold");
        assert_eq!(m.step(&s, &cas(4), Some(&Out::CasFailed { current_index: 5 })), Some(s.clone()));
        assert!(m.step(&s, &cas(4), Some(&Out::CasFailed { current_index: 6 })).is_none(), "wrong current index");
        assert!(m.step(&s, &cas(5), Some(&Out::CasFailed { current_index: 5 })).is_none(), "it should have applied");
        assert_eq!(m.step(&KeyState::Absent, &cas(0), Some(&Out::Written { index: 1 })), Some(present("v", Some(1))));
        assert_eq!(m.step(&KeyState::Absent, &cas(3), None), Some(KeyState::Absent), "decided by the state");
        assert_eq!(m.step(&present("a", None), &cas(3), None), Some(KeyState::Unknown), "undecidable");
        // Unknown is learned by a read.
        let get = In::Get { key: "k".into() };
        assert_eq!(m.step(&KeyState::Unknown, &get, Some(&Out::NotFound)), Some(KeyState::Absent));
    }
}
