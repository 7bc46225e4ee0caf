//! What operations return.
use serde::Deserialize;

/// A value and the log index of its last change (the `if-index` for a later `put_if`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Versioned {
    pub value: String,
    pub index: u64,
}

/// What `delete` did: `deleted` is false when the key was absent; `index` is where the delete took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
pub struct Deleted {
    pub index: u64,
    pub deleted: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ListedKey {
    pub key: String,
    /// The key's last-modified index.
    pub index: u64,
    /// The value's length in bytes.
    pub size: u64,
}

/// One page of `list`: `more` says keys with the prefix remain after the last one (pass it as `after`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct ListPage {
    pub keys: Vec<ListedKey>,
    pub more: bool,
}

/// `GET /v1/status` of one node.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct NodeStatus {
    pub id: u64,
    /// `leader`, `follower`, `candidate` or `pre-candidate`.
    pub role: String,
    pub term: u64,
    pub leader: Option<u64>,
    pub commit_index: u64,
    pub applied_index: u64,
    pub members: Vec<u64>,
}

#[derive(Deserialize)]
pub(crate) struct WrittenBody {
    pub index: u64,
}

#[derive(Deserialize)]
pub(crate) struct ErrorBody {
    pub error: String,
    pub code: String,
    #[serde(default)]
    pub index: Option<u64>,
}
