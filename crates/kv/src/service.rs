//! The replicated state machine: a sorted map from key to (value, last-modified index), and the sessions table
//! that makes retried requests apply once. Deterministic: no clocks, no randomness, only ordered maps, so every
//! replica that applies the same log holds the same bytes and answers the same replies.
use std::collections::BTreeMap;
use std::ops::Bound;

use keel_raft::Index;
use keel_replica::Service;

use crate::command::{Command, ListedKey, NO_SESSION, Op, Rejection, Reply};
use crate::dedup::{Admission, Sessions};
use crate::limits::{
    KEY_BYTES_MAX, LIST_KEYS_MAX, LIST_REPLY_BYTES_MAX, STORE_BYTES_MAX, VALUE_BYTES_MAX, stored_bytes,
};
use crate::snapshot::{self, RestoreError, Stored};

/// Bytes a listed key costs against `LIST_REPLY_BYTES_MAX` beyond its own length (its index and size).
const LISTED_KEY_OVERHEAD_BYTES: usize = 16;

/// The key/value service. Run it inside a `keel_replica::Replica`; propose [`Command::encode`]d commands.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct KvService {
    store: BTreeMap<String, Stored>,
    sessions: Sessions,
    /// What the map holds against `STORE_BYTES_MAX`: the sum of [`stored_bytes`] over its entries.
    store_bytes: usize,
    /// The index of the last command applied (or of the snapshot restored): the state is the log through it.
    applied_index: Index,
}

impl KvService {
    pub fn new() -> KvService {
        KvService::default()
    }

    /// A key's value and last-modified index, read locally (not linearizable: for tests and checks).
    pub fn get(&self, key: &str) -> Option<(&str, Index)> {
        self.store.get(key).map(|stored| (stored.value.as_str(), stored.modified_index))
    }

    pub fn applied_index(&self) -> Index {
        self.applied_index
    }

    pub fn keys_len(&self) -> usize {
        self.store.len()
    }

    /// The bytes the map holds, as `STORE_BYTES_MAX` counts them.
    pub fn store_bytes(&self) -> usize {
        self.store_bytes
    }

    pub fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Runs one admitted operation at `index`.
    fn execute(&mut self, index: Index, op: &Op) -> Reply {
        if let Err(reason) = check_limits(op) {
            return Reply::Rejected { reason };
        }
        match op {
            Op::Get { key } => match self.store.get(key) {
                Some(stored) => Reply::Value { value: stored.value.clone(), modified_index: stored.modified_index },
                None => Reply::NotFound,
            },
            Op::Put { key, value } => self.write(index, key, value.clone()),
            Op::Append { key, value } => {
                let current = self.store.get(key).map_or("", |stored| stored.value.as_str());
                let size_bytes = current.len() + value.len();
                if size_bytes > VALUE_BYTES_MAX {
                    return Reply::Rejected { reason: value_too_large(size_bytes) };
                }
                let appended = current.to_owned() + value;
                self.write(index, key, appended)
            }
            Op::Delete { key } => match self.store.remove(key) {
                Some(stored) => {
                    self.store_bytes -= stored_bytes(key, &stored.value);
                    Reply::Deleted { index }
                }
                None => Reply::NotFound,
            },
            Op::PutIf { key, value, expected_index } => {
                let current_index = self.store.get(key).map_or(0, |stored| stored.modified_index);
                if current_index == *expected_index {
                    self.write(index, key, value.clone())
                } else {
                    Reply::CasFailed { current_index }
                }
            }
            Op::List { prefix, start_after, limit } => self.list(prefix, start_after.as_deref(), *limit),
        }
    }

    fn write(&mut self, index: Index, key: &str, value: String) -> Reply {
        let old_bytes = self.store.get(key).map_or(0, |stored| stored_bytes(key, &stored.value));
        let new_total = self.store_bytes - old_bytes + stored_bytes(key, &value);
        if new_total > STORE_BYTES_MAX {
            let reason = Rejection::StoreFull { size_bytes: new_total as u64, limit_bytes: STORE_BYTES_MAX as u64 };
            return Reply::Rejected { reason };
        }
        self.store_bytes = new_total;
        self.store.insert(key.to_owned(), Stored { value, modified_index: index });
        Reply::Written { index }
    }

    fn list(&self, prefix: &str, start_after: Option<&str>, limit: u32) -> Reply {
        let limit = limit.min(LIST_KEYS_MAX) as usize;
        // Start at the prefix, or just after the cursor if the cursor is past the prefix's first key.
        let start = match start_after {
            Some(cursor) if cursor >= prefix => Bound::Excluded(cursor),
            _ => Bound::Included(prefix),
        };
        let mut matching = self
            .store
            .range::<str, _>((start, Bound::Unbounded))
            .take_while(|(key, _)| key.starts_with(prefix))
            .peekable();
        let mut keys = Vec::new();
        let mut reply_bytes = 0;
        while let Some((key, stored)) = matching.peek() {
            let key_bytes = key.len() + LISTED_KEY_OVERHEAD_BYTES;
            if keys.len() == limit || reply_bytes + key_bytes > LIST_REPLY_BYTES_MAX {
                break;
            }
            reply_bytes += key_bytes;
            let size_bytes = stored.value.len() as u64;
            keys.push(ListedKey { key: (*key).clone(), modified_index: stored.modified_index, size_bytes });
            matching.next();
        }
        Reply::Listed { keys, more: matching.peek().is_some() }
    }
}

/// Checks key and value sizes before anything changes, so an over-limit command writes nothing.
fn check_limits(op: &Op) -> Result<(), Rejection> {
    let (key, cursor, value) = match op {
        Op::Get { key } | Op::Delete { key } => (key, None, None),
        Op::Put { key, value } | Op::Append { key, value } | Op::PutIf { key, value, .. } => (key, None, Some(value)),
        Op::List { prefix, start_after, .. } => (prefix, start_after.as_ref(), None),
    };
    if let Some(key) = std::iter::once(key).chain(cursor).find(|key| key.len() > KEY_BYTES_MAX) {
        return Err(Rejection::KeyTooLarge { size_bytes: key.len() as u64, limit_bytes: KEY_BYTES_MAX as u64 });
    }
    match value {
        Some(value) if value.len() > VALUE_BYTES_MAX => Err(value_too_large(value.len())),
        _ => Ok(()),
    }
}

fn value_too_large(size_bytes: usize) -> Rejection {
    Rejection::ValueTooLarge { size_bytes: size_bytes as u64, limit_bytes: VALUE_BYTES_MAX as u64 }
}

impl Service for KvService {
    type Output = Reply;

    fn apply(&mut self, index: Index, command: &[u8]) -> Reply {
        // The replica applies each index once, in order: anything else is a bug below us, not bad input.
        assert!(index > self.applied_index, "apply of index {index} after {}", self.applied_index);
        self.applied_index = index;
        let command = match Command::decode(command) {
            Ok(command) => command,
            // Applied all the same: every replica answers the same rejection, and no session changes (there is
            // no trustworthy client id in bytes that do not decode).
            Err(error) => return Reply::Rejected { reason: error.rejection() },
        };
        let Command { client_id, seq, op } = command;
        if client_id == NO_SESSION {
            return self.execute(index, &op);
        }
        match self.sessions.admit(client_id, seq) {
            Admission::Refuse(reason) => Reply::Rejected { reason },
            Admission::Duplicate(reply) => reply,
            Admission::Execute => {
                let reply = self.execute(index, &op);
                let kept = if op.is_read() { None } else { Some(reply.clone()) };
                self.sessions.record(client_id, seq, index, kept);
                reply
            }
        }
    }

    fn snapshot(&self) -> Vec<u8> {
        snapshot::encode(self.applied_index, &self.store, &self.sessions)
    }

    fn restore(&mut self, index: Index, image: &[u8]) -> Result<(), String> {
        let (store, sessions) = snapshot::decode(image, index).map_err(|e: RestoreError| e.to_string())?;
        let store_bytes = store.iter().map(|(key, stored)| stored_bytes(key, &stored.value)).sum();
        *self = KvService { store, sessions, store_bytes, applied_index: index };
        Ok(())
    }
}
