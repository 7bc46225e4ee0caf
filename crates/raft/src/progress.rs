//! What a leader knows about each follower's log.
use crate::types::Index;

/// The most recent AppendEntries (or InstallSnapshot) sent to a follower and not yet answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Outstanding {
    prev_log_index: Index,
    /// The last index the message carried (its snapshot index for InstallSnapshot).
    last_index: Index,
}

#[derive(Clone, Debug)]
pub struct Progress {
    /// Next index to send (Figure 2's nextIndex).
    pub next_index: Index,
    /// Highest index known to match the leader's log (Figure 2's matchIndex).
    pub match_index: Index,
    /// At most one message is in flight per follower. Only the answer to *that* message (or the next heartbeat,
    /// which retransmits whatever may have been lost) lets the leader send again. If any answer reopened the
    /// window, every heartbeat would start another self-sustaining chain of messages repeating the same entries.
    outstanding: Option<Outstanding>,
    /// The commit index the last message to this follower carried: the follower may not know of a newer one.
    pub commit_sent: Index,
}

impl Progress {
    pub fn new(last_index: Index) -> Progress {
        Progress { next_index: last_index + 1, match_index: 0, outstanding: None, commit_sent: 0 }
    }

    /// Nothing is in flight: new entries may be sent now.
    pub fn is_idle(&self) -> bool {
        self.outstanding.is_none()
    }

    pub fn sent(&mut self, prev_log_index: Index, last_index: Index, commit: Index) {
        self.outstanding = Some(Outstanding { prev_log_index, last_index });
        self.commit_sent = commit;
    }

    /// Whether telling this follower `commit` would let it commit more: it holds entries past the commit index it
    /// was last sent (etcd's `CanBumpCommit`).
    pub fn lags_commit(&self, commit: Index) -> bool {
        self.commit_sent < commit.min(self.match_index)
    }

    /// A heartbeat is due: whatever is in flight may be lost, so the heartbeat takes its place.
    pub fn forget_outstanding(&mut self) {
        self.outstanding = None;
    }

    /// Records a successful match through `index`. Stale successes never move anything backwards.
    pub fn record_match(&mut self, index: Index) {
        self.match_index = self.match_index.max(index);
        self.next_index = self.next_index.max(self.match_index + 1);
        if self.outstanding.is_some_and(|o| index >= o.last_index) {
            self.outstanding = None;
        }
    }

    /// Moves `next_index` back after a rejection of the probe at `prev_log_index`, but never to or below what is
    /// known to match (a stale rejection must not undo progress) and never below 1. Returns whether this answered
    /// the message in flight (so the caller should probe again at once).
    pub fn record_rejection(&mut self, prev_log_index: Index, next_index: Index) -> bool {
        self.next_index = next_index.max(self.match_index + 1).max(1);
        let answers_outstanding = self.outstanding.is_some_and(|o| o.prev_log_index == prev_log_index);
        if answers_outstanding {
            self.outstanding = None;
        }
        answers_outstanding
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_answer_to_the_latest_message_reopens_the_window() {
        let mut p = Progress::new(10);
        p.sent(10, 15, 0);
        p.record_match(12); // an older, shorter message's answer
        assert!(!p.is_idle());
        assert_eq!((p.match_index, p.next_index), (12, 13));
        p.record_match(15);
        assert!(p.is_idle());
        p.record_match(13); // a duplicate of an older answer, delivered late
        assert_eq!((p.match_index, p.next_index), (15, 16), "a late answer never moves the match back");
        p.sent(15, 20, 0);
        assert!(!p.record_rejection(9, 3), "a stale rejection does not answer the message in flight");
        assert_eq!(p.next_index, 16, "and cannot move next below the match");
        assert!(p.record_rejection(15, 14));
        assert!(p.is_idle());
    }
}
