//! Very late copies of replies: the network delivers, long after the fact, a copy of a reply a node received in an
//! earlier term.
//!
//! Raft's network model lets any message be duplicated and delayed without bound, and a node must judge every
//! message by its own term, never by when it arrives. The riskiest moment is a node leading again in a later term:
//! an old AppendEntries success or InstallSnapshot answer, trusted, records a match the follower never made in
//! this term. The random delays of the network make that moment rare (a reply must be late by a whole election),
//! so the simulator keeps the last replies each node received and, when the nemesis says so, delivers them again.
use std::collections::VecDeque;

use keel_raft::Message;

/// Replies kept per node: enough to hold one answer from each peer of a 7-node cluster, twice over.
const LATE_REPLIES_KEPT_PER_NODE: usize = 16;

/// The last replies delivered to each node, kept only when a run asks for late copies (keeping costs a clone).
#[derive(Default)]
pub struct LateReplies {
    kept: Vec<VecDeque<Message>>,
}

impl LateReplies {
    pub fn enabled(nodes: usize) -> LateReplies {
        LateReplies { kept: vec![VecDeque::new(); nodes] }
    }

    /// Remembers a reply delivered to the node in slot `to` (a no-op unless enabled).
    pub fn remember(&mut self, to: usize, msg: &Message) {
        if msg.body.is_request() {
            return;
        }
        let Some(kept) = self.kept.get_mut(to) else { return };
        // A late copy delivered again is not news: keeping it twice would crowd out other replies.
        if kept.contains(msg) {
            return;
        }
        if kept.len() == LATE_REPLIES_KEPT_PER_NODE {
            kept.pop_front();
        }
        kept.push_back(msg.clone());
    }

    /// The kept replies to `node` from terms before `term`: the ones that must change nothing if delivered now.
    pub fn older_than(&self, node: usize, term: keel_raft::Term) -> Vec<Message> {
        self.kept.get(node).map_or_else(Vec::new, |kept| kept.iter().filter(|m| m.term < term).cloned().collect())
    }
}
