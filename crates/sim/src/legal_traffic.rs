//! Messages any correct Raft leader may send, sent on a leader's behalf: an AppendEntries from any index of its
//! log, a CommitNotice naming any entry of it, or its snapshot, at any time.
//!
//! Why: keel's leader has one flow-control policy (next index from the follower's hints, one message in flight),
//! and under it some follower rules are never exercised. A follower that commits past what an AppendEntries
//! verified, for instance, goes wrong only when a message covers less than the follower's stale tail, and keel's
//! leader never sends one. But Figure 2 allows it, other leaders send it (etcd after a probe reset, a leader with
//! a pipeline after a reconnect), and keel's own leader will send it once its flow control changes. A follower
//! must be right for every message a correct leader may send, so the simulator sends them.
//!
//! Every message is built from the leader's state at the moment it is sent (its term, log, commit index and
//! durable snapshot), so it is exactly one a correct leader could have sent then; it then takes the network like
//! any other message. Replies reach the leader, which must cope with answers to messages it does not remember.
use keel_raft::{Message, MessageBody};

use crate::cluster::Cluster;

/// The limits of a legal AppendEntries are the sender's choice: any number of entries up to this.
const LEGAL_APPEND_ENTRIES_MAX: u64 = 8;

impl Cluster {
    /// Leader `leader` sends `follower` an AppendEntries from a random point of its log (or, sometimes, its
    /// snapshot). Does nothing unless `leader` is a live leader.
    pub fn send_legal_append(&mut self, leader: usize, follower: usize) {
        if leader == follower || !self.raft(leader).is_some_and(|r| r.is_leader()) {
            return;
        }
        let snapshot_roll = self.rng().chance(1, 3);
        let point_roll = self.rng().next_u64();
        let max_entries = self.rng().range(0, LEGAL_APPEND_ENTRIES_MAX + 1) as usize;
        // From the same draw (its top bit), so adding notices did not shift the random stream of every seed.
        let notice_roll = point_roll >> 63 == 1;
        let Some(raft) = self.raft(leader) else { return };
        let log = raft.log();
        let (term, leader_commit) = (raft.term(), raft.commit_index());
        let snapshot = self.storage(leader).state().snapshot.as_ref();
        // A snapshot in a third of the messages when there is one; otherwise any next index the log can serve.
        let body = match snapshot {
            Some(snapshot) if snapshot_roll => {
                MessageBody::InstallSnapshot { meta: snapshot.meta, data: snapshot.data.clone() }
            }
            _ => {
                let (first, last) = (log.first_index(), log.last_index());
                let next = first + point_roll % (last + 2 - first);
                let prev_log_index = next - 1;
                let Some(prev_log_term) = log.term_at(prev_log_index) else { return };
                if max_entries == 0 && notice_roll {
                    // A notice may name any entry of the leader's log: the follower checks that it holds it.
                    MessageBody::CommitNotice { match_index: prev_log_index, match_term: prev_log_term, leader_commit }
                } else {
                    let entries = log.slice(next, max_entries, usize::MAX);
                    MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, leader_commit }
                }
            }
        };
        let kind = body.kind();
        self.note_fault(format!("leader {leader} (term {term}) sends {follower} an unprompted {kind}"));
        self.stats.legal_appends_sent += 1;
        let (from, to) = (self.id_of(leader), self.id_of(follower));
        self.send(Message { from, to, term, body });
    }
}
