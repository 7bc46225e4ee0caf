//! The outputs of the core, and the persistence contract that governs them.
use crate::message::Message;
use crate::types::{Entry, HardState, Index, Snapshot, Term};

/// Everything a node asks its driver to do, collected since the last [`crate::RaftNode::take_ready`].
///
/// # The persistence contract
///
/// A driver must handle a `Ready` in exactly this order:
///
/// 0. **Send** `early_messages` (may be sent before step 1, or while it runs). They are a leader's AppendEntries,
///    InstallSnapshot and CommitNotice, which depend on nothing in this Ready's persist: followers write the
///    entries to their disks while the leader writes them to its own (Raft thesis 10.2.1).
/// 1. **Persist** `persist` (if any), atomically, and wait until it is durable (fsynced); then report it with
///    [`crate::RaftNode::persisted`]`(`[`PersistUpdate::durable_through`]`)` (a leader counts itself in a commit
///    quorum only through what it was told is durable). Only then:
/// 2. **Send** `messages`. Every vote granted, every AppendEntries success and every term carried by these
///    messages relies on state in step 1: a vote sent before `voted_for` is durable could be cast twice after a
///    crash; an acknowledgement sent before its entries are durable could let a leader commit an entry that a
///    majority does not hold.
/// 3. **Apply** `applies`, in order. They are committed and durable (committed means a majority persisted them,
///    this node included, since its own entries were persisted in an earlier or this same step 1).
///
/// A crash at any point loses the whole `Ready` that was not yet durable; that is safe because nothing that
/// depends on it has left the node. On restart, build the node with [`crate::RaftNode::restart`] from the
/// durable state alone ([`DurableState`]); it will first re-deliver the snapshot (if any), then every
/// committed command after it as it learns they are committed.
#[derive(Debug, Default)]
pub struct Ready {
    pub persist: Option<PersistUpdate>,
    /// May leave before `persist` is durable (see step 0).
    pub early_messages: Vec<Message>,
    /// Must wait until `persist` is durable.
    pub messages: Vec<Message>,
    pub applies: Vec<Apply>,
}

impl Ready {
    pub fn is_empty(&self) -> bool {
        self.persist.is_none() && self.early_messages.is_empty() && self.messages.is_empty() && self.applies.is_empty()
    }
}

/// A change to durable state. Apply the parts in field order, as one atomic update.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersistUpdate {
    /// New term / vote.
    pub hard_state: Option<HardState>,
    /// Replaces the stored snapshot; stored entries at or below its index are discarded. Stored entries above it
    /// survive only if `truncate_from` does not remove them.
    pub snapshot: Option<Snapshot>,
    /// Stored entries at or after this index are discarded (a conflict was found, or the log was replaced).
    pub truncate_from: Option<Index>,
    /// Appended after the truncation; contiguous, and following the stored log.
    pub entries: Vec<Entry>,
}

impl PersistUpdate {
    /// The last log position this update makes durable: its last entry, else its snapshot. What the driver
    /// reports to [`crate::RaftNode::persisted`] once the update is durable.
    pub fn durable_through(&self) -> Option<(Index, Term)> {
        match (self.entries.last(), &self.snapshot) {
            (Some(entry), _) => Some((entry.index, entry.term)),
            (None, Some(snapshot)) => Some((snapshot.meta.index, snapshot.meta.term)),
            (None, None) => None,
        }
    }
}

/// Committed state handed to the service, in log order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Apply {
    Command {
        index: Index,
        term: Term,
        data: Vec<u8>,
    },
    /// The service must replace its state with this snapshot. No command at or below `index` follows it.
    Snapshot(Snapshot),
}

impl Apply {
    pub fn index(&self) -> Index {
        match self {
            Apply::Command { index, .. } => *index,
            Apply::Snapshot(s) => s.meta.index,
        }
    }
}

/// What survives a crash: the inputs to [`crate::RaftNode::restart`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DurableState {
    pub hard_state: HardState,
    pub snapshot: Option<Snapshot>,
    /// The entries after the snapshot, contiguous.
    pub entries: Vec<Entry>,
}

impl DurableState {
    /// Applies one update, in the order the contract gives. Storage implementations share this so the meaning of
    /// an update is written down once.
    pub fn apply(&mut self, update: &PersistUpdate) {
        if let Some(hard_state) = update.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(snapshot) = &update.snapshot {
            let covered = self.position_of(snapshot.meta.index.saturating_add(1));
            self.entries.drain(..covered);
            self.snapshot = Some(snapshot.clone());
        }
        if let Some(from) = update.truncate_from {
            let keep = self.position_of(from);
            self.entries.truncate(keep);
        }
        self.entries.extend(update.entries.iter().cloned());
    }

    /// How many stored entries precede `index`. Entries are contiguous, so this is arithmetic, not a scan: a
    /// persist costs what it changes, not the length of the log.
    fn position_of(&self, index: Index) -> usize {
        let Some(first) = self.entries.first().map(|e| e.index) else { return 0 };
        usize::try_from(index.saturating_sub(first)).map_or(self.entries.len(), |p| p.min(self.entries.len()))
    }
}
