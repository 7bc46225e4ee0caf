//! The node's own invariants, asserted at the end of every input (`tick`, `step`, `propose`, `snapshot`,
//! `take_ready`), in release builds too: each is a handful of comparisons per peer, and a violation caught at the
//! input that caused it is far easier to explain than a wrong answer three elections later.
use super::{RaftNode, Role};

impl RaftNode {
    pub(super) fn assert_invariants(&self) {
        let id = self.id();
        let term = self.term();
        let last_index = self.log.last_index();
        let snapshot_index = self.log.snapshot_meta().index;
        // The applied index trails the commit index, except while an installed snapshot waits in
        // `snapshot_to_apply` (then `applied` catches up to it at the next `take_ready`).
        assert!(
            self.applied_index <= self.commit_index || self.snapshot_to_apply.is_some(),
            "node {id}: applied {} above commit {}",
            self.applied_index,
            self.commit_index
        );
        assert!(
            self.commit_index <= last_index,
            "node {id}: commit {} beyond the last log index {last_index}",
            self.commit_index
        );
        assert!(
            snapshot_index <= self.commit_index,
            "node {id}: snapshot {snapshot_index} covers uncommitted entries (commit {})",
            self.commit_index
        );
        assert!(
            self.durable_index <= last_index,
            "node {id}: durable index {} beyond the last log index {last_index}",
            self.durable_index
        );
        assert!(
            self.log.last_term() <= term,
            "node {id}: last log term {} above its term {term}",
            self.log.last_term()
        );
        match self.role {
            Role::Leader => {
                assert_eq!(self.leader_hint, Some(id), "node {id}: a leader names another leader");
                assert_eq!(
                    self.hard_state.voted_for,
                    Some(id),
                    "node {id}: leader of term {term} did not vote for itself"
                );
                assert_eq!(
                    self.progress.len() + 1,
                    self.config.members.len(),
                    "node {id}: leader lacks a follower's progress"
                );
                for (peer, p) in &self.progress {
                    assert!(
                        p.match_index < p.next_index && p.next_index <= last_index + 1,
                        "node {id}: progress of {peer} breaks match {} < next {} <= last + 1 = {}",
                        p.match_index,
                        p.next_index,
                        last_index + 1
                    );
                }
            }
            Role::Candidate => {
                assert_eq!(
                    self.hard_state.voted_for,
                    Some(id),
                    "node {id}: candidate of term {term} did not vote for itself"
                );
                assert!(self.votes.contains(&id), "node {id}: candidate does not count its own vote");
                assert!(self.progress.is_empty(), "node {id}: a candidate keeps a leader's progress");
            }
            Role::Follower | Role::PreCandidate => {
                assert!(self.progress.is_empty(), "node {id}: a {:?} keeps a leader's progress", self.role);
            }
        }
        if let Some(snapshot) = &self.snapshot {
            assert_eq!(snapshot.meta, self.log.snapshot_meta(), "node {id}: kept snapshot and log disagree");
        }
    }
}
