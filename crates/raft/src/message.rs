//! The messages Raft peers exchange. Every message carries the sender's term (Figure 2: "all servers").
use serde::{Deserialize, Serialize};

use crate::types::{Entry, Index, NodeId, SnapshotMeta, Term};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub from: NodeId,
    pub to: NodeId,
    pub term: Term,
    pub body: MessageBody,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum MessageBody {
    RequestVote {
        last_log_index: Index,
        last_log_term: Term,
    },
    RequestVoteReply {
        granted: bool,
    },
    /// PreVote (Raft thesis, section 9.6): "would you vote for me in the term in this message?" Asked before
    /// campaigning, answered without changing the voter's term or vote, so a node that cannot win never raises
    /// the cluster's term.
    PreVote {
        last_log_index: Index,
        last_log_term: Term,
    },
    /// A granted answer carries the term asked about; a refusal carries the voter's own term.
    PreVoteReply {
        granted: bool,
    },
    AppendEntries {
        prev_log_index: Index,
        prev_log_term: Term,
        entries: Vec<Entry>,
        leader_commit: Index,
    },
    AppendEntriesReply(AppendReply),
    InstallSnapshot {
        meta: SnapshotMeta,
        #[serde(with = "crate::bytes_serde")]
        data: Vec<u8>,
    },
    InstallSnapshotReply {
        /// The snapshot index the follower now holds (or already held): the leader may treat it as matched.
        last_included_index: Index,
    },
    /// The leader's commit index, for a follower whose log matches the leader's through `match_index` (whose
    /// entry there has `match_term`). Sent when the commit index moves, to a follower with nothing in flight and
    /// nothing more to receive, instead of an empty AppendEntries. It is not answered: it opens no window (see
    /// `Progress`), so the next entries leave at once instead of after the follower's answer, and the leader is
    /// not woken by an answer that tells it nothing. A follower that does not hold (`match_index`, `match_term`)
    /// ignores it; the next AppendEntries or heartbeat brings the commit index as before.
    CommitNotice {
        match_index: Index,
        match_term: Term,
        leader_commit: Index,
    },
}

/// A follower's answer to AppendEntries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendReply {
    /// The follower's log now matches the leader's through `match_index`.
    Success { match_index: Index },
    /// The consistency check failed at `prev_log_index`. The hints let the leader skip a whole term per round trip
    /// (the "fast backup" of the extended paper, section 5.3).
    Reject {
        prev_log_index: Index,
        /// The term of the follower's entry at `prev_log_index`, if it has one.
        conflict_term: Option<Term>,
        /// The first index the follower holds with `conflict_term` (or `last_log_index + 1` without one).
        conflict_first_index: Index,
        /// The follower's last log index: its log length.
        last_log_index: Index,
    },
}

impl MessageBody {
    /// Requests are what the 6.824 tester counts as RPCs; replies travel back on the same call.
    pub fn is_request(&self) -> bool {
        matches!(
            self,
            MessageBody::RequestVote { .. }
                | MessageBody::PreVote { .. }
                | MessageBody::AppendEntries { .. }
                | MessageBody::InstallSnapshot { .. }
                | MessageBody::CommitNotice { .. }
        )
    }

    pub fn kind(&self) -> &'static str {
        match self {
            MessageBody::RequestVote { .. } => "RequestVote",
            MessageBody::RequestVoteReply { .. } => "RequestVoteReply",
            MessageBody::PreVote { .. } => "PreVote",
            MessageBody::PreVoteReply { .. } => "PreVoteReply",
            MessageBody::AppendEntries { .. } => "AppendEntries",
            MessageBody::AppendEntriesReply(_) => "AppendEntriesReply",
            MessageBody::InstallSnapshot { .. } => "InstallSnapshot",
            MessageBody::InstallSnapshotReply { .. } => "InstallSnapshotReply",
            MessageBody::CommitNotice { .. } => "CommitNotice",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Traces, failure reports and the timeline name messages by `kind`: each kind is its variant's name, and
    /// exactly the requests count as RPCs (6.824's counters).
    #[test]
    fn kinds_name_their_variant_and_requests_are_the_rpcs() {
        let reply = AppendReply::Success { match_index: 1 };
        let meta = SnapshotMeta { index: 1, term: 1 };
        let bodies = [
            (MessageBody::RequestVote { last_log_index: 0, last_log_term: 0 }, "RequestVote", true),
            (MessageBody::RequestVoteReply { granted: true }, "RequestVoteReply", false),
            (MessageBody::PreVote { last_log_index: 0, last_log_term: 0 }, "PreVote", true),
            (MessageBody::PreVoteReply { granted: true }, "PreVoteReply", false),
            (
                MessageBody::AppendEntries { prev_log_index: 0, prev_log_term: 0, entries: vec![], leader_commit: 0 },
                "AppendEntries",
                true,
            ),
            (MessageBody::AppendEntriesReply(reply), "AppendEntriesReply", false),
            (MessageBody::InstallSnapshot { meta, data: vec![] }, "InstallSnapshot", true),
            (MessageBody::InstallSnapshotReply { last_included_index: 1 }, "InstallSnapshotReply", false),
            (MessageBody::CommitNotice { match_index: 1, match_term: 1, leader_commit: 1 }, "CommitNotice", true),
        ];
        for (body, kind, is_request) in bodies {
            assert_eq!((body.kind(), body.is_request()), (kind, is_request));
        }
    }
}
