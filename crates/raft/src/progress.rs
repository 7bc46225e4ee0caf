//! What a leader knows about each follower's log.
use crate::types::Index;

#[derive(Clone, Debug)]
pub struct Progress {
    /// Next index to send (Figure 2's nextIndex).
    pub next_index: Index,
    /// Highest index known to match the leader's log (Figure 2's matchIndex).
    pub match_index: Index,
    /// An AppendEntries or InstallSnapshot is on its way and unanswered. New proposals wait for its answer (or the
    /// next heartbeat) instead of sending a second copy of the same entries: this keeps each entry crossing the
    /// network about once (the 6.824 RPC-bytes bound) while a heartbeat still retransmits anything lost.
    pub awaiting_reply: bool,
}

impl Progress {
    pub fn new(last_index: Index) -> Progress {
        Progress { next_index: last_index + 1, match_index: 0, awaiting_reply: false }
    }

    /// Records a successful match through `index`. Stale successes never move anything backwards.
    pub fn record_match(&mut self, index: Index) {
        self.match_index = self.match_index.max(index);
        self.next_index = self.next_index.max(self.match_index + 1);
    }

    /// Moves `next_index` back after a rejection, but never to or below what is known to match (a stale rejection
    /// must not undo progress) and never below 1.
    pub fn back_off_to(&mut self, next_index: Index) {
        self.next_index = next_index.max(self.match_index + 1).max(1);
    }
}
