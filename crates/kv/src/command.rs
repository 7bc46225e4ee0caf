//! What a client asks (a [`Command`]: who, which request, which operation) and what the service answers (a
//! [`Reply`]). Both are serde types; a command crosses the Raft log as a format-version byte followed by its
//! postcard encoding, so any replica can decode every entry it applies, and an entry it cannot decode is applied
//! as [`Rejection::Malformed`] instead.
use keel_raft::Index;
use serde::{Deserialize, Serialize};

use crate::limits::COMMAND_BYTES_MAX;

/// A client's identity, chosen by the client (randomly, as 6.824's `nrand`): unique among the clients a cluster
/// serves.
pub type ClientId = u64;

/// The client id of a request that asks for no exactly-once guarantee (an HTTP request without `Keel-Client-Id`,
/// a `curl`): it is executed every time it is applied, and leaves no session behind, so a flood of such
/// requests cannot evict the sessions of clients that did ask. Its `seq` is ignored. Clerks never use it.
pub const NO_SESSION: ClientId = 0;

/// A client's request number. Starts at 1 and only grows; 0 is never valid.
pub type Seq = u64;

/// The first byte of every encoded command. A replica that meets another version rejects the entry (every
/// replica the same way) rather than guess at its meaning.
pub const COMMAND_FORMAT_VERSION: u8 = 1;

/// One request: the operation, and the identity (client, seq) that makes a retried request apply at most once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    pub client_id: ClientId,
    pub seq: Seq,
    pub op: Op,
}

/// The operations. Reads are commands too: they go through the log, so they are linearizable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Op {
    /// The value and its last-modified index, or `NotFound`.
    Get { key: String },
    /// Sets the value (creating the key).
    Put { key: String, value: String },
    /// Appends to the value (creating the key, as 6.824's Append does).
    Append { key: String, value: String },
    /// Removes the key: `Deleted`, or `NotFound` if it was absent.
    Delete { key: String },
    /// Compare-and-set: sets the value only if the key's last-modified index is `expected_index` (0: the key
    /// must not exist). Otherwise `CasFailed` with the current index (0 if absent).
    PutIf { key: String, value: String, expected_index: Index },
    /// Keys starting with `prefix`, in byte order, after `start_after` if given (to read the next page), at most
    /// `limit` of them (clamped to `LIST_KEYS_MAX` and `LIST_REPLY_BYTES_MAX`).
    List { prefix: String, start_after: Option<String>, limit: u32 },
}

impl Op {
    /// Reads change nothing, so the dedup table keeps no reply for them: a retried read is executed again (see
    /// `dedup.rs` for why that is still linearizable).
    pub fn is_read(&self) -> bool {
        matches!(self, Op::Get { .. } | Op::List { .. })
    }
}

/// What applying a command returns to its client.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    /// `Get` found the key.
    Value { value: String, modified_index: Index },
    /// `Get` or `Delete` of an absent key.
    NotFound,
    /// `Put`, `Append` or a successful `PutIf`: the key's new last-modified index (the command's log index).
    Written { index: Index },
    /// `Delete` removed the key at this index.
    Deleted { index: Index },
    /// `PutIf` found another last-modified index (0: the key is absent).
    CasFailed { current_index: Index },
    /// `List`: the keys found, in order; `more` says keys matching the prefix remain after the last one.
    Listed { keys: Vec<ListedKey>, more: bool },
    /// The command was not executed; the reason says why, and whether retrying can help.
    Rejected { reason: Rejection },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedKey {
    pub key: String,
    pub modified_index: Index,
    /// The value's length in bytes.
    pub size_bytes: u64,
}

/// Why a command was not executed. All are deterministic functions of the command and the replicated state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// The entry is not a command of any version this service knows: bad bytes, or bytes after the command.
    #[error("the entry is not a well-formed command")]
    Malformed,
    #[error("command format version {found} is not supported (this service speaks {COMMAND_FORMAT_VERSION})")]
    UnsupportedVersion { found: u8 },
    #[error("command of {size_bytes} bytes exceeds the limit of {limit_bytes}")]
    CommandTooLarge { size_bytes: u64, limit_bytes: u64 },
    #[error("key (or prefix, or list cursor) of {size_bytes} bytes exceeds the limit of {limit_bytes}")]
    KeyTooLarge { size_bytes: u64, limit_bytes: u64 },
    /// A value, or the value an append would produce, is too long. Nothing was written.
    #[error("value of {size_bytes} bytes exceeds the limit of {limit_bytes}")]
    ValueTooLarge { size_bytes: u64, limit_bytes: u64 },
    /// The write would take the map past `STORE_BYTES_MAX`. Nothing was written; deletes still apply.
    #[error("the store would hold {size_bytes} bytes, over the limit of {limit_bytes}")]
    StoreFull { size_bytes: u64, limit_bytes: u64 },
    /// Sequence numbers start at 1.
    #[error("sequence number 0 is not valid")]
    InvalidSequence,
    /// The client already applied a later request: this one is an old duplicate (a contract violation or a
    /// message the network kept very long). It was not executed again.
    #[error("request {seq} is older than the client's last applied request {last_applied_seq}")]
    StaleSequence { seq: Seq, last_applied_seq: Seq },
    /// The service no longer remembers this client (its session was evicted, oldest first, see `dedup.rs`) and
    /// the request is not the client's first: it may or may not have been applied before, so it is not executed
    /// at all. The client must treat the outcome of this request as unknown.
    #[error("the session of this client expired; the outcome of request {seq} is unknown")]
    SessionExpired { seq: Seq },
}

/// Why bytes are not a command.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("empty entry")]
    Empty,
    #[error(transparent)]
    Rejected(#[from] Rejection),
}

impl DecodeError {
    /// The rejection every replica applies for these bytes.
    pub fn rejection(&self) -> Rejection {
        match self {
            DecodeError::Empty => Rejection::Malformed,
            DecodeError::Rejected(rejection) => rejection.clone(),
        }
    }
}

impl Command {
    /// The bytes to propose: the format version, then postcard.
    pub fn encode(&self) -> Vec<u8> {
        // Serializing to a Vec fails only for types postcard cannot size (none here): a failure is a bug.
        postcard::to_extend(self, vec![COMMAND_FORMAT_VERSION]).expect("postcard encodes every Command")
    }

    /// Decodes an applied entry. Never panics: any bytes give a command or a typed error.
    pub fn decode(bytes: &[u8]) -> Result<Command, DecodeError> {
        if bytes.len() > COMMAND_BYTES_MAX {
            return Err(Rejection::CommandTooLarge {
                size_bytes: bytes.len() as u64,
                limit_bytes: COMMAND_BYTES_MAX as u64,
            }
            .into());
        }
        let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
        if version != COMMAND_FORMAT_VERSION {
            return Err(Rejection::UnsupportedVersion { found: version }.into());
        }
        match postcard::take_from_bytes::<Command>(body) {
            // Trailing bytes mean the writer and this reader disagree on the format: refuse rather than guess.
            Ok((command, [])) => Ok(command),
            Ok(_) | Err(_) => Err(Rejection::Malformed.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put() -> Command {
        Command { client_id: 7, seq: 3, op: Op::Put { key: "k".into(), value: "v".into() } }
    }

    #[test]
    fn round_trips() {
        assert_eq!(Command::decode(&put().encode()), Ok(put()));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert_eq!(Command::decode(&[]), Err(DecodeError::Empty));
        assert_eq!(Command::decode(&[9, 1, 2]), Err(Rejection::UnsupportedVersion { found: 9 }.into()));
        assert_eq!(Command::decode(&[COMMAND_FORMAT_VERSION, 0xff]), Err(Rejection::Malformed.into()));
        let mut trailing = put().encode();
        trailing.push(0);
        assert_eq!(Command::decode(&trailing), Err(Rejection::Malformed.into()));
        let huge = vec![COMMAND_FORMAT_VERSION; COMMAND_BYTES_MAX + 1];
        assert!(matches!(Command::decode(&huge), Err(DecodeError::Rejected(Rejection::CommandTooLarge { .. }))));
    }
}
