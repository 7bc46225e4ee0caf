//! What a run counted: labrpc's message and byte counters, messages by kind, and the risky deliveries
//! (patterns) that tests assert a seed still produces.
use keel_raft::{AppendReply, Message, MessageBody, RaftNode, Role};

/// Message and byte counters, with labrpc's meanings.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Requests (RequestVote, AppendEntries, InstallSnapshot) delivered to each node.
    pub rpcs_delivered: Vec<u64>,
    /// Requests sent, delivered or not.
    pub rpcs_sent: u64,
    /// Request bytes at send plus reply bytes at delivery.
    pub bytes: u64,
    pub messages_delivered: u64,
    /// InstallSnapshot requests delivered: how often a follower was caught up from a snapshot.
    pub snapshots_installed: u64,
    /// Leaders elected in a term at or below a term that had already committed entries (a delayed vote).
    pub leaders_elected_behind_a_commit: u64,
    /// Messages delivered, by kind (in `MessageBody::kind` order, see [`kind_slot`]).
    pub delivered_by_kind: [u64; KINDS],
    /// Copies of messages the network duplicated.
    pub duplicated: u64,
    /// Most events seen in one virtual second (see [`EVENTS_PER_VIRTUAL_SECOND_MAX`]).
    pub events_per_virtual_second_peak: u64,
    /// Times the armed nemesis found its moment and struck.
    pub nemesis_strikes: u64,
    /// Unprompted messages sent on a leader's behalf (see `legal_traffic.rs`).
    pub legal_appends_sent: u64,
    /// Injected disk I/O errors that stopped a node (fail-stop).
    pub disk_errors: u64,
    /// Very late copies of replies delivered (see `late_replies.rs`).
    pub late_replies_delivered: u64,
    /// Leaders crashed after sending entries ahead of their own fsync, before it.
    pub crashes_ahead_of_fsync: u64,
    /// Risky patterns the run produced, so tests can assert that a seed still exercises what they rely on.
    pub patterns: Patterns,
}

/// Deliveries that only a correct node survives: each is the trigger of a classic Raft bug.
#[derive(Clone, Debug, Default)]
pub struct Patterns {
    /// An acknowledgement (AppendEntries success, InstallSnapshot answer) from an earlier term reached a node
    /// that leads a later term: trusting it would record a match the follower never made in this term.
    pub stale_acks_at_leader: u64,
    /// Of those, answers to an InstallSnapshot.
    pub stale_snapshot_acks_at_leader: u64,
    /// A granted vote from an earlier term reached a node campaigning in a later term: counting it would elect
    /// a leader without a majority of this term.
    pub stale_votes_at_candidate: u64,
    /// An AppendEntries whose `leader_commit` lies beyond the last entry it carries reached a follower that will
    /// accept it but holds a different entry than the leader just past that point: committing up to
    /// `leader_commit` there would commit an entry the message never verified, and that differs from the one
    /// the leader committed.
    /// Keel's fast backup lands the leader on the first differing entry, which the next AppendEntries replaces,
    /// so its own flow control never sends such a message (3 in 300,000 seeds, all by reordering); the sweep's
    /// unprompted appends (`legal_traffic.rs`) make it about 1 in 700 seeds. The rule it tests (Figure 2,
    /// AppendEntries rule 5) is also pinned by a unit test in `crates/raft/tests/rules.rs`.
    pub commit_beyond_verified: u64,
    /// An AppendEntries reached a follower that already held every entry it carried, and more after them.
    pub outdated_appends: u64,
}

/// Message kinds, for counting.
pub const KINDS: usize = 9;
pub const KIND_NAMES: [&str; KINDS] = [
    "RequestVote",
    "RequestVoteReply",
    "PreVote",
    "PreVoteReply",
    "AppendEntries",
    "AppendEntriesReply",
    "InstallSnapshot",
    "InstallSnapshotReply",
    "CommitNotice",
];

pub fn kind_slot(body: &MessageBody) -> usize {
    match body {
        MessageBody::RequestVote { .. } => 0,
        MessageBody::RequestVoteReply { .. } => 1,
        MessageBody::PreVote { .. } => 2,
        MessageBody::PreVoteReply { .. } => 3,
        MessageBody::AppendEntries { .. } => 4,
        MessageBody::AppendEntriesReply(_) => 5,
        MessageBody::InstallSnapshot { .. } => 6,
        MessageBody::InstallSnapshotReply { .. } => 7,
        MessageBody::CommitNotice { .. } => 8,
    }
}

pub(crate) fn count_patterns(patterns: &mut Patterns, receiver: &RaftNode, sender: Option<&RaftNode>, msg: &Message) {
    match &msg.body {
        MessageBody::AppendEntriesReply(AppendReply::Success { .. }) | MessageBody::InstallSnapshotReply { .. }
            if msg.term < receiver.term() && receiver.is_leader() =>
        {
            patterns.stale_acks_at_leader += 1;
            if matches!(msg.body, MessageBody::InstallSnapshotReply { .. }) {
                patterns.stale_snapshot_acks_at_leader += 1;
            }
        }
        MessageBody::RequestVoteReply { granted: true }
            if msg.term < receiver.term() && matches!(receiver.role(), Role::Candidate | Role::PreCandidate) =>
        {
            patterns.stale_votes_at_candidate += 1;
        }
        MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, leader_commit }
            if msg.term == receiver.term() =>
        {
            let log = receiver.log();
            let last_new = prev_log_index + entries.len() as u64;
            let matches = log.term_at(*prev_log_index) == Some(*prev_log_term)
                && entries.iter().all(|e| log.term_at(e.index) == Some(e.term));
            if matches && log.last_index() > last_new && !entries.is_empty() {
                patterns.outdated_appends += 1;
            }
            // The receiver will accept the message, holds a different entry than the (still leading) sender
            // just past what it verifies, and the sender says that index is committed.
            let sender_term_after =
                sender.filter(|s| s.is_leader() && s.term() == msg.term).and_then(|s| s.log().term_at(last_new + 1));
            if matches
                && *leader_commit > last_new
                && last_new >= receiver.commit_index()
                && log.term_at(last_new + 1).is_some_and(|t| Some(t) != sender_term_after)
            {
                patterns.commit_beyond_verified += 1;
            }
        }
        _ => {}
    }
}
