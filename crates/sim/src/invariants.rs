//! Safety properties checked on every simulator event that changed a node, beyond the per-apply checks of
//! `checker.rs`. The per-apply checks see a bug only once a wrong entry is applied; these see the step that
//! makes it possible: state a node acknowledged and later lost, a leader's record of a follower that the
//! follower's log does not back, a commit index that no majority's durable log supports.
//!
//! Checked after every event that produced output on node `i` ([`Cluster::check_after_event`]):
//! - **terms never decrease** on a node, across restarts too;
//! - **acknowledged entries stay**: while a node stays in term T, every entry it acknowledged to T's leader
//!   (AppendEntries success, InstallSnapshot answer) stays in its log (or its snapshot);
//! - **the leader's match indexes are true**: for the leader of term T, every match index it records for a
//!   follower was acknowledged by that follower in term T (not in an earlier term), every follower still
//!   in term T holds the leader's entry at that index, and it never moves back while the leader leads T (a
//!   late, shorter answer must not undo a longer one);
//! - **commits are durable on a majority**: the entry at a node's commit index is held with the same term by a
//!   majority of durable logs (crashed nodes' included), re-checked for every node whenever a log is truncated;
//! - **leader completeness, continuously**: whenever a commit is recorded, every live leader of a later term
//!   holds the newest entry committed in an earlier term (and at every election, every such entry);
//! - **one vote per term**: no node grants its vote to two candidates in one term (checked as the grants are
//!   sent, so a vote lost in a crash and cast again is caught even if the second candidate loses);
//! - **elected by a majority of this term**: a new leader of term T was granted votes, in term T, by a majority
//!   (itself included): a vote from an earlier term, or one vote counted twice, does not make a leader.
//!
//! Sent messages are checked too: the persistence contract (durable state equals memory before any message
//! leaves) and log matching (after every fault event, by the sweep).
use std::collections::BTreeMap;

use keel_raft::{AppendReply, DurableState, Index, Message, MessageBody, NodeId, RaftNode, Term};

use crate::cluster::Cluster;

/// What a node acknowledged to the leader of `term`: it held the entry of `entry_term` at `index`.
#[derive(Clone, Copy, Debug)]
struct Ack {
    term: Term,
    index: Index,
    entry_term: Term,
}

pub struct Invariants {
    /// Highest term each node has been seen in.
    max_term: Vec<Term>,
    /// The highest acknowledgement each node sent in its current term.
    acked: Vec<Option<Ack>>,
    /// (follower, term) -> the highest index it acknowledged in that term.
    acked_by_term: BTreeMap<(usize, Term), Index>,
    /// (term, voter) -> the candidate it granted its vote to.
    votes: BTreeMap<(Term, NodeId), NodeId>,
    /// `committed[index]` = (term of the entry, term of the leader that first committed it); index 0 unused.
    committed: Vec<(Term, Term)>,
    /// The highest index a leader of each term committed.
    highest_commit_by_term: BTreeMap<Term, Index>,
    /// New commits were recorded since leader completeness was last checked for every leader.
    commits_unchecked: bool,
    /// Per leader, the term it leads and the match index it last recorded for each follower.
    leader_matches: Vec<(Term, Vec<Index>)>,
}

impl Invariants {
    pub fn new(nodes: usize) -> Invariants {
        Invariants {
            max_term: vec![0; nodes],
            acked: vec![None; nodes],
            acked_by_term: BTreeMap::new(),
            votes: BTreeMap::new(),
            committed: vec![(0, 0)],
            highest_commit_by_term: BTreeMap::new(),
            commits_unchecked: false,
            leader_matches: vec![(0, vec![0; nodes]); nodes],
        }
    }

    /// A leader reports its commit index. A leader always commits an index before anyone else learns that it is
    /// committed, so the first report of each index names the term it was committed in. Returns whether this
    /// leader's commit index moved past anything recorded for its term.
    pub fn leader_committed(&mut self, leader: &RaftNode) -> bool {
        let (term, commit_index) = (leader.term(), leader.commit_index());
        while (self.committed.len() as u64) <= commit_index {
            let index = self.committed.len() as u64;
            // Below the leader's snapshot the term is unknown; those indexes were committed (and recorded) before.
            let entry_term = leader.log().term_at(index).unwrap_or(0);
            self.committed.push((entry_term, term));
            self.commits_unchecked = true;
        }
        let highest = self.highest_commit_by_term.entry(term).or_insert(0);
        let advanced = commit_index > *highest;
        *highest = (*highest).max(commit_index);
        advanced
    }

    /// The term in which `index` was committed, if it is known to be committed.
    pub fn committed_in(&self, index: Index) -> Option<Term> {
        self.committed.get(index as usize).map(|c| c.1).filter(|_| index > 0)
    }

    /// Records the acknowledgements and votes a node sends; fails on a second vote in one term.
    /// `from` is the sender's slot.
    pub fn on_send(&mut self, from: usize, sender: &RaftNode, msg: &Message) -> Result<(), String> {
        let acked_index = match msg.body {
            MessageBody::AppendEntriesReply(AppendReply::Success { match_index }) => match_index,
            MessageBody::InstallSnapshotReply { last_included_index } if msg.term == sender.term() => {
                last_included_index
            }
            MessageBody::RequestVoteReply { granted: true } => {
                let candidate = *self.votes.entry((msg.term, msg.from)).or_insert(msg.to);
                if candidate != msg.to {
                    return Err(format!(
                        "one vote per term: node {from} granted its vote in term {} to {candidate} and then to {}",
                        msg.term, msg.to
                    ));
                }
                return Ok(());
            }
            _ => return Ok(()),
        };
        let highest = self.acked_by_term.entry((from, msg.term)).or_insert(0);
        *highest = (*highest).max(acked_index);
        let log = sender.log();
        let entry_term = match log.term_at(acked_index) {
            Some(t) => t,
            // Acknowledged inside its snapshot: committed state, which the other checks cover.
            None if acked_index <= log.snapshot_meta().index => return Ok(()),
            None => {
                return Err(format!(
                    "node {from} acknowledged index {acked_index} in term {} but its log ends at {}",
                    msg.term,
                    log.last_index()
                ));
            }
        };
        let ack = Ack { term: msg.term, index: acked_index, entry_term };
        let slot = &mut self.acked[from];
        match slot {
            Some(previous) if previous.term == ack.term && previous.index >= ack.index => {}
            _ => *slot = Some(ack),
        }
        Ok(())
    }
}

/// Nodes that make a majority of `nodes`. Written out here rather than taken from the core: the checks must not
/// share the code they check.
fn majority(nodes: usize) -> usize {
    nodes / 2 + 1
}

/// Whether a durable state holds the entry of `term` at `index` (or has folded it into its snapshot).
fn durable_holds(durable: &DurableState, index: Index, term: Term) -> bool {
    let snapshot = durable.snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
    if index < snapshot.index || (index == snapshot.index && term == snapshot.term) {
        return true;
    }
    let Some(first) = durable.entries.first().map(|e| e.index) else { return false };
    let position = index.checked_sub(first).and_then(|p| usize::try_from(p).ok());
    position.and_then(|p| durable.entries.get(p)).is_some_and(|e| e.index == index && e.term == term)
}

impl Cluster {
    /// The persistence contract, checked from the sender's side at the moment a message leaves: it vouches only
    /// for what is on the sender's disk then. Its term is durable; a granted vote is the durable vote; an append
    /// success or snapshot answer is backed by the durable log. `early`: sent ahead of the persist of its Ready
    /// (only a leader's AppendEntries and InstallSnapshot may be).
    pub(crate) fn check_message_justified(&self, i: usize, msg: &Message, early: bool) {
        let durable = self.storage(i).state();
        let kind = msg.body.kind();
        let may_go_early = matches!(
            msg.body,
            MessageBody::AppendEntries { .. } | MessageBody::InstallSnapshot { .. } | MessageBody::CommitNotice { .. }
        );
        if early && !may_go_early {
            self.fail(&format!("persistence contract: node {i} sent a {kind} ahead of its persist"));
        }
        // A PreVote, and a granted answer to one, speak of the term after the sender's: by design no one has
        // entered it.
        let about_a_future_term =
            matches!(msg.body, MessageBody::PreVote { .. } | MessageBody::PreVoteReply { granted: true });
        if msg.term > durable.hard_state.term && !about_a_future_term {
            self.fail(&format!(
                "persistence contract: node {i} sent a {kind} of term {} while only term {} is durable",
                msg.term, durable.hard_state.term
            ));
        }
        let backed_index = match msg.body {
            MessageBody::RequestVoteReply { granted: true } => {
                if durable.hard_state.term != msg.term || durable.hard_state.voted_for != Some(msg.to) {
                    self.fail(&format!(
                        "persistence contract: node {i} granted its term-{} vote to {} but its durable vote is {:?}",
                        msg.term, msg.to, durable.hard_state
                    ));
                }
                return;
            }
            MessageBody::AppendEntriesReply(AppendReply::Success { match_index }) => match_index,
            MessageBody::InstallSnapshotReply { last_included_index } => last_included_index,
            _ => return,
        };
        let Some(raft) = self.raft(i) else { return };
        let log = raft.log();
        let term = if backed_index == log.snapshot_meta().index {
            Some(log.snapshot_meta().term)
        } else {
            log.term_at(backed_index)
        };
        let backed = match term {
            Some(term) => durable_holds(durable, backed_index, term),
            // Inside this node's snapshot: committed state the durable snapshot covers.
            None => backed_index <= durable.snapshot.as_ref().map_or(0, |s| s.meta.index),
        };
        if !backed {
            self.fail(&format!(
                "persistence contract: node {i} answered {kind} for index {backed_index} that its durable log does not hold"
            ));
        }
    }

    /// Everything that involves node `i`, after an event that changed it. `truncated`: it dropped log entries
    /// (a conflict or a snapshot), so every node's commit is re-checked against the durable logs.
    pub(crate) fn check_after_event(&mut self, i: usize, truncated: bool) {
        let Some((term, is_leader)) = self.state(i) else { return };
        if term < self.invariants.max_term[i] {
            self.fail(&format!(
                "terms never decrease: node {i} is in term {term} after term {}",
                self.invariants.max_term[i]
            ));
        }
        self.invariants.max_term[i] = term;
        self.check_acknowledged(i);
        if is_leader {
            for follower in (0..self.nodes()).filter(|&f| f != i) {
                self.check_match_index(i, follower);
                self.check_match_never_regresses(i, follower, term);
            }
        } else if let Some(leader) = self.checker.leader_of(term).and_then(|id| self.slot_of(id))
            && self.raft(leader).is_some_and(|l| l.is_leader() && l.term() == term)
        {
            self.check_match_index(leader, i);
        }
        if truncated {
            for node in 0..self.nodes() {
                self.check_commit_quorum(node);
            }
        } else {
            self.check_commit_quorum(i);
        }
        if std::mem::take(&mut self.invariants.commits_unchecked) {
            for leader in (0..self.nodes()).filter(|&l| self.raft(l).is_some_and(|r| r.is_leader())) {
                self.check_holds_newest_earlier_commit(leader);
            }
        }
    }

    fn check_acknowledged(&mut self, i: usize) {
        let Some(ack) = self.invariants.acked[i] else { return };
        let Some(raft) = self.raft(i) else { return };
        if raft.term() > ack.term {
            self.invariants.acked[i] = None;
            return;
        }
        let log = raft.log();
        if ack.index > log.snapshot_meta().index && log.term_at(ack.index) != Some(ack.entry_term) {
            self.fail(&format!(
                "acknowledged entries stay: node {i}, still in term {}, acknowledged index {} (term {}) to that term's leader but now holds {:?} there (log ends at {})",
                ack.term,
                ack.index,
                ack.entry_term,
                log.term_at(ack.index),
                log.last_index()
            ));
        }
    }

    /// The leader's record of `follower` was acknowledged in the leader's term, and is backed by the follower's
    /// log if the follower is still in that term.
    fn check_match_index(&self, leader: usize, follower: usize) {
        let Some(l) = self.raft(leader) else { return };
        let Some(match_index) = l.progress(self.id_of(follower)).map(|p| p.match_index) else { return };
        if match_index == 0 {
            return;
        }
        let acked = self.invariants.acked_by_term.get(&(follower, l.term())).copied();
        if acked.is_none_or(|a| a < match_index) {
            self.fail(&format!(
                "leader's match index: leader {leader} of term {} records {follower} as matching through {match_index}, but {follower} acknowledged only {acked:?} in that term (a reply from an earlier term trusted?)",
                l.term()
            ));
        }
        let Some(f) = self.raft(follower) else { return };
        if f.term() != l.term() || match_index <= f.log().snapshot_meta().index {
            return;
        }
        // Below the leader's snapshot the entry is committed: the commit checks cover it.
        let Some(leader_term) = l.log().term_at(match_index) else { return };
        if f.log().term_at(match_index) != Some(leader_term) {
            self.fail(&format!(
                "leader's match index: leader {leader} of term {} records {follower} as matching through {match_index} (term {leader_term}), but {follower}, still in that term, holds {:?} there (log ends at {})",
                l.term(),
                f.log().term_at(match_index),
                f.log().last_index()
            ));
        }
    }

    /// Within one term, a leader's match index for a follower only grows. A regression is not unsafe by itself,
    /// but it resends what the follower holds, and a commit rule fed by it may count a stale view.
    pub(crate) fn check_match_never_regresses(&mut self, leader: usize, follower: usize, term: Term) {
        let Some(match_index) = self.raft(leader).and_then(|l| l.progress(self.id_of(follower))).map(|p| p.match_index)
        else {
            return;
        };
        let (recorded_term, matches) = &mut self.invariants.leader_matches[leader];
        if *recorded_term != term {
            *recorded_term = term;
            matches.fill(0);
        }
        let before = std::mem::replace(&mut matches[follower], match_index);
        if match_index < before {
            self.fail(&format!(
                "leader's match index: leader {leader} of term {term} recorded {follower} as matching through {before}, then moved it back to {match_index} (a late, shorter answer undid a longer one?)"
            ));
        }
    }

    /// The entry at node `i`'s commit index is held, with the same term, by a majority of durable logs.
    fn check_commit_quorum(&self, i: usize) {
        let Some(raft) = self.raft(i) else { return };
        let commit = raft.commit_index();
        if commit == 0 {
            return;
        }
        let Some(term) = raft.log().term_at(commit) else { return };
        let holders: Vec<usize> =
            (0..self.nodes()).filter(|&k| durable_holds(self.storage(k).state(), commit, term)).collect();
        if holders.len() < majority(self.nodes()) {
            self.fail(&format!(
                "commits are durable on a majority: node {i} has committed index {commit} (term {term}) but only nodes {holders:?} hold it durably"
            ));
        }
    }

    /// A live leader holds the newest entry committed in a term before its own.
    fn check_holds_newest_earlier_commit(&self, leader: usize) {
        let Some(raft) = self.raft(leader) else { return };
        let term = raft.term();
        let Some(index) = self.invariants.highest_commit_by_term.range(..term).map(|(_, &i)| i).max() else { return };
        let Some(&(entry_term, committed_in)) = self.invariants.committed.get(index as usize) else { return };
        if entry_term == 0 || index <= raft.log().snapshot_meta().index {
            return;
        }
        if raft.log().term_at(index) != Some(entry_term) {
            self.fail(&format!(
                "leader completeness: leader {leader} of term {term} holds {:?} at index {index}, committed in term {committed_in} with an entry of term {entry_term}",
                raft.log().term_at(index)
            ));
        }
    }

    /// The persistence contract, checked from the storage side: once a Ready's update is durable (and before its
    /// messages leave), durable term, vote and log tail equal the node's in-memory state. A change the core forgot
    /// to mark for persistence (say, a vote) shows up here in any run, not only when a crash happens to hit it.
    /// `snapshotted`: the service took a snapshot at that index after the update was persisted; memory may hold it
    /// before storage does (the next step persists it).
    pub(crate) fn check_durable_matches_memory(&self, i: usize, snapshotted: Option<Index>) {
        let Some(raft) = self.raft(i) else { return };
        let durable = self.storage(i).state();
        let memory = keel_raft::HardState { term: raft.term(), voted_for: raft.voted_for() };
        if durable.hard_state != memory {
            self.fail(&format!(
                "persistence contract: node {i} holds {memory:?} but only {:?} is durable",
                durable.hard_state
            ));
        }
        let durable_snapshot = durable.snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
        let durable_last =
            durable.entries.last().map_or((durable_snapshot.index, durable_snapshot.term), |e| (e.index, e.term));
        let memory_last = (raft.log().last_index(), raft.log().last_term());
        let memory_snapshot = raft.log().snapshot_meta();
        let snapshot_pending =
            snapshotted == Some(memory_snapshot.index) && durable_snapshot.index < memory_snapshot.index;
        if durable_last != memory_last || (durable_snapshot != memory_snapshot && !snapshot_pending) {
            self.fail(&format!(
                "persistence contract: node {i} log ends at {memory_last:?} (snapshot {:?}) but durable log ends at {durable_last:?} (snapshot {durable_snapshot:?})",
                raft.log().snapshot_meta()
            ));
        }
    }

    /// A new leader was granted votes in its own term by a majority, itself included.
    pub(crate) fn check_elected_by_majority(&self, leader: usize) {
        let Some(term) = self.raft(leader).map(|r| r.term()) else { return };
        let voters: Vec<NodeId> = self
            .invariants
            .votes
            .range((term, 0)..=(term, NodeId::MAX))
            .filter(|(_, candidate)| **candidate == self.id_of(leader))
            .map(|((_, voter), _)| *voter)
            .chain(std::iter::once(self.id_of(leader)))
            .collect();
        if voters.len() < majority(self.nodes()) {
            self.fail(&format!(
                "elected by a majority: node {leader} leads term {term} but only {voters:?} voted for it in that term"
            ));
        }
    }

    /// Leader Completeness at election: a new leader of term L holds every entry committed in a term before L
    /// (above its snapshot). Entries committed in L or later bind only later leaders: a long-delayed vote can
    /// still elect a leader of an old term after a newer leader committed more.
    pub(crate) fn check_leader_completeness(&mut self, leader: usize) {
        let Some(term) = self.raft(leader).map(|r| r.term()) else { return };
        let newest_commit_term = self.invariants.committed_in(self.checker.max_index).unwrap_or(0);
        if newest_commit_term >= term {
            self.stats.leaders_elected_behind_a_commit += 1;
        }
        let Some(raft) = self.raft(leader) else { return };
        let log = raft.log();
        for index in log.first_index()..=self.checker.max_index {
            if self.invariants.committed_in(index).is_none_or(|committed_in| committed_in >= term) {
                continue;
            }
            let Ok((_, Some(command))) = self.checker.n_committed(index) else { continue };
            match log.entry(index) {
                Some(entry) if entry.data == command => {}
                Some(_) => self.fail(&format!(
                    "leader completeness: new leader {leader} (term {term}) holds a different entry at index {index}, committed in term {}",
                    self.invariants.committed_in(index).unwrap_or_default()
                )),
                None => self.fail(&format!(
                    "leader completeness: new leader {leader} (term {term}) lacks index {index}, committed in term {} (its last index is {})",
                    self.invariants.committed_in(index).unwrap_or_default(),
                    log.last_index()
                )),
            }
        }
    }

    /// Log Matching: if two live logs hold an entry with the same index and term, they are identical up to there.
    pub fn check_log_matching(&self) {
        let live: Vec<(usize, &RaftNode)> = (0..self.nodes()).filter_map(|i| self.raft(i).map(|r| (i, r))).collect();
        for (a, ra) in &live {
            for (b, rb) in live.iter().filter(|(b, _)| b > a) {
                let (la, lb) = (ra.log(), rb.log());
                let low = la.first_index().max(lb.first_index());
                let mut index = la.last_index().min(lb.last_index());
                // The highest index where both hold an entry of the same term...
                while index >= low && la.term_at(index) != lb.term_at(index) {
                    index -= 1;
                }
                // ...and everything below it (that both still hold) must be identical.
                while index >= low {
                    if la.entry(index) != lb.entry(index) {
                        self.fail(&format!(
                            "log matching: nodes {a} and {b} agree on a later entry but differ at {index}"
                        ));
                    }
                    index -= 1;
                }
            }
        }
    }
}
