//! The snapshot image: the whole map, the sessions table, and the index they are the state at, behind a format
//! version byte. Restoring validates everything a later `apply` relies on, so a corrupt or foreign image is a
//! typed error (the replica then stops), never a panic and never a state that breaks the service's invariants.
use std::collections::BTreeMap;

use keel_raft::Index;
use serde::{Deserialize, Serialize};

use crate::command::ClientId;
use crate::dedup::{Session, Sessions};
use crate::limits::{KEY_BYTES_MAX, SESSIONS_MAX, STORE_BYTES_MAX, VALUE_BYTES_MAX, stored_bytes};

/// The first byte of every image. Bump it when the image changes shape; old images then fail to restore loudly.
pub const SNAPSHOT_FORMAT_VERSION: u8 = 1;

/// One key's value and the index of its last change.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    pub value: String,
    pub modified_index: Index,
}

/// The serialized shape. Maps are written as sorted lists and checked to be strictly increasing when read,
/// because deserializing into a map would silently keep the last of two duplicate keys.
#[derive(Serialize, Deserialize)]
struct Image {
    applied_index: Index,
    entries: Vec<(String, Stored)>,
    sessions: Vec<(ClientId, Session)>,
}

/// Why bytes are not a snapshot of this service at this index.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("empty snapshot")]
    Empty,
    #[error("snapshot format version {found} is not supported (this service reads {SNAPSHOT_FORMAT_VERSION})")]
    UnsupportedVersion { found: u8 },
    #[error("snapshot does not decode: {0}")]
    Decode(String),
    #[error("{count} bytes follow the snapshot image")]
    TrailingBytes { count: usize },
    #[error("snapshot image is the state at index {image_index}, but was restored as index {asked_index}")]
    IndexMismatch { image_index: Index, asked_index: Index },
    #[error("key at position {position} is out of order or repeated")]
    KeyOutOfOrder { position: usize },
    #[error("key at position {position} is {size_bytes} bytes, over KEY_BYTES_MAX")]
    KeyTooLarge { position: usize, size_bytes: usize },
    #[error("value of key at position {position} is {size_bytes} bytes, over VALUE_BYTES_MAX")]
    ValueTooLarge { position: usize, size_bytes: usize },
    #[error("key at position {position} was modified at index {modified_index}, outside 1..={applied_index}")]
    ModifiedIndexOutOfRange { position: usize, modified_index: Index, applied_index: Index },
    #[error("the map holds {size_bytes} bytes, over STORE_BYTES_MAX")]
    StoreTooLarge { size_bytes: usize },
    #[error("{count} sessions, over SESSIONS_MAX")]
    TooManySessions { count: usize },
    #[error("session of client {client_id} is out of order, repeated, or invalid: {what}")]
    BadSession { client_id: ClientId, what: String },
}

/// Encodes the state at `applied_index`.
pub fn encode(applied_index: Index, store: &BTreeMap<String, Stored>, sessions: &Sessions) -> Vec<u8> {
    let image = Image {
        applied_index,
        entries: store.iter().map(|(key, stored)| (key.clone(), stored.clone())).collect(),
        sessions: sessions.iter().map(|(client_id, session)| (client_id, session.clone())).collect(),
    };
    // Serializing to a Vec fails only for types postcard cannot size (none here): a failure is a bug.
    postcard::to_extend(&image, vec![SNAPSHOT_FORMAT_VERSION]).expect("postcard encodes every image")
}

/// Decodes and validates an image that must be the state at `asked_index`.
pub fn decode(bytes: &[u8], asked_index: Index) -> Result<(BTreeMap<String, Stored>, Sessions), RestoreError> {
    let (&version, body) = bytes.split_first().ok_or(RestoreError::Empty)?;
    if version != SNAPSHOT_FORMAT_VERSION {
        return Err(RestoreError::UnsupportedVersion { found: version });
    }
    let (image, rest) = postcard::take_from_bytes::<Image>(body).map_err(|e| RestoreError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(RestoreError::TrailingBytes { count: rest.len() });
    }
    if image.applied_index != asked_index {
        return Err(RestoreError::IndexMismatch { image_index: image.applied_index, asked_index });
    }
    let applied_index = image.applied_index;
    let mut store = BTreeMap::new();
    let mut previous: Option<&str> = None;
    let mut store_bytes = 0usize;
    for (position, (key, stored)) in image.entries.iter().enumerate() {
        if previous.is_some_and(|p| p >= key.as_str()) {
            return Err(RestoreError::KeyOutOfOrder { position });
        }
        previous = Some(key);
        if key.len() > KEY_BYTES_MAX {
            return Err(RestoreError::KeyTooLarge { position, size_bytes: key.len() });
        }
        if stored.value.len() > VALUE_BYTES_MAX {
            return Err(RestoreError::ValueTooLarge { position, size_bytes: stored.value.len() });
        }
        if stored.modified_index == 0 || stored.modified_index > applied_index {
            let modified_index = stored.modified_index;
            return Err(RestoreError::ModifiedIndexOutOfRange { position, modified_index, applied_index });
        }
        // Each entry is within KEY_BYTES_MAX + VALUE_BYTES_MAX (checked above): the sum stops at the limit, far from
        // overflowing.
        store_bytes += stored_bytes(key, &stored.value);
        if store_bytes > STORE_BYTES_MAX {
            return Err(RestoreError::StoreTooLarge { size_bytes: store_bytes });
        }
    }
    for (key, stored) in image.entries {
        store.insert(key, stored);
    }
    if image.sessions.len() > SESSIONS_MAX {
        return Err(RestoreError::TooManySessions { count: image.sessions.len() });
    }
    let mut previous_client: Option<ClientId> = None;
    for (client_id, session) in &image.sessions {
        let bad = |what: &str| RestoreError::BadSession { client_id: *client_id, what: what.into() };
        if previous_client.is_some_and(|p| p >= *client_id) {
            return Err(bad("out of order or repeated"));
        }
        previous_client = Some(*client_id);
        if session.last_seq == 0 {
            return Err(bad("sequence 0"));
        }
        if session.last_index == 0 || session.last_index > applied_index {
            return Err(bad("last active outside the applied log"));
        }
    }
    let sessions = Sessions::from_sessions(image.sessions)
        .map_err(|(client_id, what)| RestoreError::BadSession { client_id, what })?;
    Ok((store, sessions))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Reply;

    fn state() -> (BTreeMap<String, Stored>, Sessions) {
        let mut store = BTreeMap::new();
        store.insert("a".to_string(), Stored { value: "1".into(), modified_index: 3 });
        store.insert("b".to_string(), Stored { value: "2".into(), modified_index: 5 });
        let mut sessions = Sessions::default();
        sessions.record(9, 2, 5, Some(Reply::Written { index: 5 }));
        (store, sessions)
    }

    #[test]
    fn round_trips() {
        let (store, sessions) = state();
        let bytes = encode(5, &store, &sessions);
        assert_eq!(decode(&bytes, 5), Ok((store, sessions)));
    }

    #[test]
    fn refuses_inconsistent_images() {
        let (store, sessions) = state();
        let bytes = encode(5, &store, &sessions);
        assert_eq!(decode(&bytes, 6), Err(RestoreError::IndexMismatch { image_index: 5, asked_index: 6 }));
        assert_eq!(decode(&[], 5), Err(RestoreError::Empty));
        assert_eq!(decode(&[7], 5), Err(RestoreError::UnsupportedVersion { found: 7 }));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(decode(&trailing, 5), Err(RestoreError::TrailingBytes { count: 1 }));
        // A key modified after the image's index cannot be the state at that index.
        let mut future = store.clone();
        future.insert("c".into(), Stored { value: String::new(), modified_index: 9 });
        assert!(matches!(decode(&encode(5, &future, &sessions), 5), Err(RestoreError::ModifiedIndexOutOfRange { .. })));
        // Duplicate keys, written by hand since a map cannot hold them.
        let image = Image {
            applied_index: 5,
            entries: vec![("a".into(), Stored { value: String::new(), modified_index: 1 }); 2],
            sessions: vec![],
        };
        let dup = postcard::to_extend(&image, vec![SNAPSHOT_FORMAT_VERSION]).expect("encodes");
        assert_eq!(decode(&dup, 5), Err(RestoreError::KeyOutOfOrder { position: 1 }));
    }

    #[test]
    fn every_truncation_and_byte_flip_is_an_error_or_a_valid_state() {
        let (store, sessions) = state();
        let bytes = encode(5, &store, &sessions);
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len], 5).is_err(), "a truncated image of {len} bytes restored");
        }
        for position in 0..bytes.len() {
            let mut flipped = bytes.clone();
            flipped[position] ^= 0x5a;
            let _ = decode(&flipped, 5); // must not panic
        }
    }
}
