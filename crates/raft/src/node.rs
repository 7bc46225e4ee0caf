//! The Raft peer as a deterministic state machine (extended Raft paper, Figures 2 and 13).
//!
//! Inputs: [`RaftNode::tick`], [`RaftNode::step`] (a peer's message), [`RaftNode::propose`],
//! [`RaftNode::snapshot`]. Outputs accumulate until [`RaftNode::take_ready`]; see [`Ready`] for the persistence
//! contract a driver must follow. The node never performs I/O, never reads a clock, and draws randomness only from
//! the generator seeded by its [`Config`].
use std::collections::{BTreeMap, BTreeSet};

use crate::config::Config;
use crate::error::{ConfigError, NotLeader, SnapshotError, StepError};
use crate::log::RaftLog;
use crate::message::{AppendReply, Message, MessageBody};
use crate::progress::Progress;
use crate::quorum;
use crate::ready::{Apply, DurableState, PersistUpdate, Ready};
use crate::rng::Rng;
use crate::types::{Entry, HardState, INDEX_LIMIT, Index, NodeId, Snapshot, SnapshotMeta, TERM_LIMIT, Term};

mod invariants;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    Follower,
    /// Asking for PreVotes (only with `Config::pre_vote`); its term is unchanged until it wins them.
    PreCandidate,
    Candidate,
    Leader,
}

pub struct RaftNode {
    config: Config,
    rng: Rng,

    // Persistent state (Figure 2), durable once the Ready that carries a change is persisted.
    hard_state: HardState,
    log: RaftLog,
    /// The latest snapshot (taken by the service or installed from a leader). Kept in memory so a leader can send
    /// it and so later persists never drop it.
    snapshot: Option<Snapshot>,

    // Volatile state.
    role: Role,
    leader_hint: Option<NodeId>,
    /// Votes for this node in its current term (as candidate).
    votes: BTreeSet<NodeId>,
    /// PreVotes for this node for the next term (as pre-candidate).
    pre_votes: BTreeSet<NodeId>,
    progress: BTreeMap<NodeId, Progress>,
    /// Followers heard from since the last quorum check (leader with `check_quorum` only).
    recently_active: BTreeSet<NodeId>,
    quorum_check_elapsed_ticks: u32,
    commit_index: Index,
    /// Highest log index known durable on this node's own storage (reported by [`RaftNode::persisted`]). A leader
    /// counts itself in a commit quorum only through here (Raft thesis 10.2.1: it may send entries before its own
    /// fsync, but not count them).
    durable_index: Index,
    /// Highest index handed to the service through `Ready::applies`.
    applied_index: Index,
    election_elapsed_ticks: u32,
    election_timeout_ticks: u32,
    heartbeat_elapsed_ticks: u32,

    // Outputs not yet taken.
    hard_state_dirty: bool,
    snapshot_dirty: bool,
    /// Lowest log index changed (truncated or appended) since the last Ready.
    log_dirty_from: Option<Index>,
    /// A snapshot that must reach the service before any later command.
    snapshot_to_apply: Option<Snapshot>,
    messages: Vec<Message>,
}

impl RaftNode {
    /// A brand-new node with empty durable state.
    pub fn new(config: Config) -> Result<RaftNode, ConfigError> {
        RaftNode::restart(config, DurableState::default())
    }

    /// A node rebuilt from what survived a crash. The persisted snapshot, if any, is the first thing it applies.
    pub fn restart(config: Config, durable: DurableState) -> Result<RaftNode, ConfigError> {
        config.validate()?;
        let snapshot_meta = durable.snapshot.as_ref().map(|s| s.meta).unwrap_or_default();
        let log = RaftLog::from_parts(snapshot_meta, durable.entries).map_err(ConfigError::CorruptState)?;
        if durable.hard_state.term < log.last_term() {
            return Err(ConfigError::CorruptState(format!(
                "term {} is below the last log term {}",
                durable.hard_state.term,
                log.last_term()
            )));
        }
        let rng = Rng::derive(config.seed, config.id);
        let durable_index = log.last_index();
        let mut node = RaftNode {
            rng,
            hard_state: durable.hard_state,
            log,
            snapshot_to_apply: durable.snapshot.clone(),
            snapshot: durable.snapshot,
            role: Role::Follower,
            leader_hint: None,
            votes: BTreeSet::new(),
            pre_votes: BTreeSet::new(),
            progress: BTreeMap::new(),
            recently_active: BTreeSet::new(),
            quorum_check_elapsed_ticks: 0,
            commit_index: snapshot_meta.index,
            durable_index,
            applied_index: snapshot_meta.index,
            election_elapsed_ticks: 0,
            election_timeout_ticks: 0,
            heartbeat_elapsed_ticks: 0,
            hard_state_dirty: false,
            snapshot_dirty: false,
            log_dirty_from: None,
            messages: Vec::new(),
            config,
        };
        node.reset_election_timer();
        Ok(node)
    }

    // ----- Accessors -------------------------------------------------------------------------------------------

    pub fn id(&self) -> NodeId {
        self.config.id
    }
    pub fn term(&self) -> Term {
        self.hard_state.term
    }
    pub fn voted_for(&self) -> Option<NodeId> {
        self.hard_state.voted_for
    }
    pub fn role(&self) -> Role {
        self.role
    }
    pub fn is_leader(&self) -> bool {
        self.role == Role::Leader
    }
    pub fn leader_hint(&self) -> Option<NodeId> {
        self.leader_hint
    }
    pub fn commit_index(&self) -> Index {
        self.commit_index
    }
    /// Highest log index this node knows to be on its own disk.
    pub fn durable_index(&self) -> Index {
        self.durable_index
    }
    pub fn applied_index(&self) -> Index {
        self.applied_index
    }
    pub fn log(&self) -> &RaftLog {
        &self.log
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// A leader's view of `peer`'s log (Figure 2's nextIndex and matchIndex); `None` unless this node leads.
    pub fn progress(&self, peer: NodeId) -> Option<&Progress> {
        self.progress.get(&peer)
    }

    // ----- Inputs ----------------------------------------------------------------------------------------------

    /// Advances logical time by one tick.
    pub fn tick(&mut self) {
        match self.role {
            Role::Leader => {
                self.heartbeat_elapsed_ticks += 1;
                if self.heartbeat_elapsed_ticks >= self.config.heartbeat_interval_ticks {
                    self.heartbeat_elapsed_ticks = 0;
                    self.broadcast_append(true);
                }
                if self.config.check_quorum {
                    self.check_quorum();
                }
            }
            Role::Follower | Role::PreCandidate | Role::Candidate => {
                self.election_elapsed_ticks += 1;
                if self.election_elapsed_ticks < self.election_timeout_ticks {
                    return; // Only a counter moved: nothing the invariants speak of.
                }
                if self.config.pre_vote {
                    self.start_pre_vote();
                } else {
                    self.campaign();
                }
            }
        }
        self.assert_invariants();
    }

    /// Appends a command if this node leads. Returns at once with the index and term the entry will have if it
    /// commits; it may never commit (the leader can lose its position first).
    pub fn propose(&mut self, data: Vec<u8>) -> Result<(Index, Term), NotLeader> {
        if self.role != Role::Leader {
            return Err(NotLeader { node: self.id(), term: self.term(), leader_hint: self.leader_hint });
        }
        let index = self.log.last_index() + 1;
        let term = self.term();
        self.log.push(Entry { index, term, data });
        self.mark_log_dirty(index);
        self.maybe_commit();
        self.broadcast_append(false);
        self.assert_invariants();
        Ok((index, term))
    }

    /// The service has folded everything through `index` into `data`: discard the log through `index`.
    /// Stale calls (at or below the current snapshot) are ignored. Safe to call while handling the applies of a
    /// Ready, for any index already handed out.
    pub fn snapshot(&mut self, index: Index, data: Vec<u8>) -> Result<(), SnapshotError> {
        if index <= self.log.snapshot_meta().index {
            return Ok(());
        }
        let Some(term) = self.log.term_at(index).filter(|_| index <= self.applied_index) else {
            return Err(SnapshotError::NotApplied { index, applied: self.applied_index });
        };
        let meta = SnapshotMeta { index, term };
        let kept = self.log.compact_to(meta);
        debug_assert!(kept, "the log holds every applied entry above the snapshot");
        self.snapshot = Some(Snapshot { meta, data });
        self.snapshot_dirty = true;
        self.assert_invariants();
        Ok(())
    }

    /// The driver made a `Ready::persist` durable that ended at `(index, term)` (see
    /// [`crate::PersistUpdate::durable_through`]). A leader may count itself in the commit quorum through there.
    /// Acknowledgements must arrive in the order of the persists. One for an entry this log no longer holds (it
    /// was replaced while the write was in flight: etcd's ABA race across a term change) is ignored.
    pub fn persisted(&mut self, index: Index, term: Term) {
        // `term_at` is `None` beyond the log's end, so an acknowledgement past it is ignored too.
        if index <= self.durable_index || self.log.term_at(index) != Some(term) {
            return;
        }
        self.durable_index = index;
        if self.role == Role::Leader && self.maybe_commit() {
            self.broadcast_commit(); // followers learn the commit at once
        }
        self.assert_invariants();
    }

    /// Handles one message from a peer. See [`StepError`] for what a refused message may have changed.
    pub fn step(&mut self, msg: Message) -> Result<(), StepError> {
        let result = self.step_checked(msg);
        self.assert_invariants();
        result
    }

    fn step_checked(&mut self, msg: Message) -> Result<(), StepError> {
        self.validate(&msg)?;
        // A PreVote, and a granted answer to one, speak of a term nobody has entered yet: they must not move
        // anyone's term (that is their whole point). Every other message with a newer term does.
        let about_a_future_term =
            matches!(msg.body, MessageBody::PreVote { .. } | MessageBody::PreVoteReply { granted: true });
        if msg.term > self.term() && !about_a_future_term {
            self.become_follower(msg.term, None);
        }
        if self.role == Role::Leader && msg.term == self.term() {
            self.recently_active.insert(msg.from);
        }
        let Message { from, term, body, .. } = msg;
        match body {
            MessageBody::RequestVote { last_log_index, last_log_term } => {
                self.handle_request_vote(from, term, last_log_index, last_log_term);
                Ok(())
            }
            MessageBody::RequestVoteReply { granted } => {
                self.handle_vote_reply(from, term, granted);
                Ok(())
            }
            MessageBody::PreVote { last_log_index, last_log_term } => {
                self.handle_pre_vote(from, term, last_log_index, last_log_term);
                Ok(())
            }
            MessageBody::PreVoteReply { granted } => {
                self.handle_pre_vote_reply(from, term, granted);
                Ok(())
            }
            MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, leader_commit } => {
                self.handle_append_entries(from, term, prev_log_index, prev_log_term, entries, leader_commit)
            }
            MessageBody::AppendEntriesReply(reply) => self.handle_append_reply(from, term, reply),
            MessageBody::InstallSnapshot { meta, data } => self.handle_install_snapshot(from, term, meta, data),
            MessageBody::InstallSnapshotReply { last_included_index } => {
                self.handle_install_snapshot_reply(from, term, last_included_index)
            }
            MessageBody::CommitNotice { match_index, match_term, leader_commit } => {
                self.handle_commit_notice(from, term, match_index, match_term, leader_commit)
            }
        }
    }

    /// Whether [`RaftNode::take_ready`] would return anything: a driver may skip the call (and its allocations)
    /// when it would not. Most ticks change nothing but a counter.
    pub fn has_ready(&self) -> bool {
        self.hard_state_dirty
            || self.snapshot_dirty
            || self.log_dirty_from.is_some()
            || !self.messages.is_empty()
            || self.snapshot_to_apply.is_some()
            || self.applied_index < self.commit_index
    }

    /// Collects the outputs produced since the last call. See [`Ready`] for the order a driver must follow.
    pub fn take_ready(&mut self) -> Ready {
        let had_ready = self.has_ready();
        let persist = if self.hard_state_dirty || self.snapshot_dirty || self.log_dirty_from.is_some() {
            Some(PersistUpdate {
                hard_state: self.hard_state_dirty.then_some(self.hard_state),
                snapshot: if self.snapshot_dirty { self.snapshot.clone() } else { None },
                truncate_from: self.log_dirty_from,
                entries: self.log_dirty_from.map(|from| self.log.entries_from(from).to_vec()).unwrap_or_default(),
            })
        } else {
            None
        };
        self.hard_state_dirty = false;
        self.snapshot_dirty = false;
        self.log_dirty_from = None;

        let mut applies = Vec::new();
        if let Some(snapshot) = self.snapshot_to_apply.take() {
            self.applied_index = snapshot.meta.index;
            applies.push(Apply::Snapshot(snapshot));
        }
        while self.applied_index < self.commit_index {
            let index = self.applied_index + 1;
            let Some(entry) = self.log.entry(index) else {
                // Unreachable by construction: applied >= snapshot index and commit <= last index.
                debug_assert!(false, "committed entry {index} missing from the log");
                break;
            };
            applies.push(Apply::Command { index, term: entry.term, data: entry.data.clone() });
            self.applied_index = index;
        }
        let mut messages = std::mem::take(&mut self.messages);
        // A leader's AppendEntries and InstallSnapshot may leave before this Ready's persist is durable (Raft
        // thesis 10.2.1): they vouch for nothing on this node's disk but its term, which is durable unless this
        // very persist changes it. Everything else (votes, every append answer) waits for the persist.
        let early_messages = match &persist {
            Some(update) if update.hard_state.is_none() => {
                let (early, late) = messages.into_iter().partition(|m| {
                    matches!(
                        m.body,
                        MessageBody::AppendEntries { .. }
                            | MessageBody::InstallSnapshot { .. }
                            | MessageBody::CommitNotice { .. }
                    )
                });
                messages = late;
                early
            }
            _ => Vec::new(),
        };
        let ready = Ready { persist, early_messages, messages, applies };
        // The same question asked two ways must get one answer, or drivers that skip empty Readies lose output.
        assert_eq!(had_ready, !ready.is_empty(), "node {}: has_ready disagrees with take_ready", self.id());
        // Taking an empty Ready changes nothing; checking after every non-empty one covers what `applies` moved.
        if had_ready {
            self.assert_invariants();
        }
        ready
    }

    // ----- Validation ------------------------------------------------------------------------------------------

    /// Refuses anything a correct peer could not have sent, before any state changes.
    fn validate(&self, msg: &Message) -> Result<(), StepError> {
        let from = msg.from;
        if msg.to != self.id() {
            return Err(StepError::WrongRecipient { node: self.id(), from, to: msg.to });
        }
        if from == self.id() || !self.config.members.contains(&from) {
            return Err(StepError::UnknownPeer(from));
        }
        if msg.term > TERM_LIMIT {
            return Err(StepError::AbsurdTerm { from, term: msg.term });
        }
        let malformed = |what: String| Err(StepError::Malformed { from, what });
        let largest_index = match &msg.body {
            MessageBody::RequestVote { last_log_index, .. } | MessageBody::PreVote { last_log_index, .. } => {
                *last_log_index
            }
            MessageBody::AppendEntries { prev_log_index, entries, leader_commit, .. } => {
                (*prev_log_index).max(*leader_commit).saturating_add(entries.len() as u64)
            }
            MessageBody::AppendEntriesReply(AppendReply::Success { match_index }) => *match_index,
            MessageBody::AppendEntriesReply(AppendReply::Reject {
                prev_log_index,
                conflict_first_index,
                last_log_index,
                ..
            }) => (*prev_log_index).max(*conflict_first_index).max(*last_log_index),
            MessageBody::InstallSnapshot { meta, .. } => meta.index,
            MessageBody::InstallSnapshotReply { last_included_index } => *last_included_index,
            MessageBody::CommitNotice { match_index, leader_commit, .. } => (*match_index).max(*leader_commit),
            MessageBody::RequestVoteReply { .. } | MessageBody::PreVoteReply { .. } => 0,
        };
        if largest_index > INDEX_LIMIT {
            return malformed(format!("{} carries absurd index {largest_index}", msg.body.kind()));
        }
        match &msg.body {
            MessageBody::RequestVote { last_log_term, .. } | MessageBody::PreVote { last_log_term, .. }
                if *last_log_term > msg.term =>
            {
                malformed(format!("{} last_log_term {last_log_term} above its term {}", msg.body.kind(), msg.term))
            }
            MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, .. } => {
                if *prev_log_term > msg.term {
                    return malformed(format!("AppendEntries prev_log_term {prev_log_term} above its term"));
                }
                let mut previous_term = *prev_log_term;
                for (k, entry) in entries.iter().enumerate() {
                    let expected = prev_log_index.checked_add(1 + k as u64);
                    if expected != Some(entry.index) {
                        return malformed(format!(
                            "AppendEntries entry {k} has index {} after prev {prev_log_index}",
                            entry.index
                        ));
                    }
                    if entry.term < previous_term || entry.term > msg.term {
                        return malformed(format!(
                            "AppendEntries entry {} has out-of-order term {}",
                            entry.index, entry.term
                        ));
                    }
                    previous_term = entry.term;
                }
                Ok(())
            }
            MessageBody::InstallSnapshot { meta, .. } if meta.term > msg.term || meta.index == 0 => {
                malformed(format!("InstallSnapshot {meta:?} does not fit its term {}", msg.term))
            }
            MessageBody::CommitNotice { match_term, .. } if *match_term > msg.term => {
                malformed(format!("CommitNotice match_term {match_term} above its term {}", msg.term))
            }
            _ => Ok(()),
        }
    }

    // ----- Elections -------------------------------------------------------------------------------------------

    fn reset_election_timer(&mut self) {
        self.election_elapsed_ticks = 0;
        self.election_timeout_ticks = self
            .rng
            .range(u64::from(self.config.election_timeout_ticks_min), u64::from(self.config.election_timeout_ticks_max))
            as u32;
    }

    fn campaign(&mut self) {
        self.reset_election_timer();
        if self.term() >= TERM_LIMIT {
            return; // Only reachable if durable state was forged; refusing beats overflowing.
        }
        self.hard_state = HardState { term: self.term() + 1, voted_for: Some(self.id()) };
        self.hard_state_dirty = true;
        self.role = Role::Candidate;
        self.leader_hint = None;
        self.votes = BTreeSet::from([self.id()]);
        if self.votes.len() >= quorum::majority(self.config.members.len()) {
            self.become_leader();
            return;
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        for peer in self.peers() {
            self.send(peer, MessageBody::RequestVote { last_log_index, last_log_term });
        }
    }

    /// PreVote round: ask whether a majority would vote for us in the next term, without entering it.
    fn start_pre_vote(&mut self) {
        self.reset_election_timer();
        if self.term() >= TERM_LIMIT {
            return;
        }
        self.role = Role::PreCandidate;
        self.leader_hint = None;
        // `votes` is kept: if this node was the candidate of the current term, votes for it that arrive late
        // (replies can be delayed past a timeout) still count; see `handle_vote_reply`.
        self.pre_votes = BTreeSet::from([self.id()]);
        if self.pre_votes.len() >= quorum::majority(self.config.members.len()) {
            self.campaign();
            return;
        }
        let (last_log_index, last_log_term) = (self.log.last_index(), self.log.last_term());
        let next_term = self.term() + 1;
        for peer in self.peers() {
            self.send_in_term(peer, next_term, MessageBody::PreVote { last_log_index, last_log_term });
        }
    }

    /// Whether this node currently hears from a leader (or is one): then it refuses PreVotes, so a node that
    /// merely lost contact cannot start an election against a leader the rest of the cluster still follows.
    fn hears_from_a_leader(&self) -> bool {
        self.role == Role::Leader
            || (self.leader_hint.is_some() && self.election_elapsed_ticks < self.config.election_timeout_ticks_min)
    }

    fn handle_pre_vote(&mut self, from: NodeId, term: Term, last_log_index: Index, last_log_term: Term) {
        let granted =
            term > self.term() && !self.hears_from_a_leader() && self.is_up_to_date(last_log_index, last_log_term);
        // The vote and term stay untouched either way; a refusal tells the asker our term.
        let reply_term = if granted { term } else { self.term() };
        self.send_in_term(from, reply_term, MessageBody::PreVoteReply { granted });
    }

    fn handle_pre_vote_reply(&mut self, from: NodeId, term: Term, granted: bool) {
        if self.role != Role::PreCandidate || !granted || term != self.term() + 1 {
            return;
        }
        self.pre_votes.insert(from);
        if self.pre_votes.len() >= quorum::majority(self.config.members.len()) {
            self.campaign();
        }
    }

    /// CheckQuorum: once per minimum election timeout, a leader that did not hear from a majority steps down.
    fn check_quorum(&mut self) {
        self.quorum_check_elapsed_ticks += 1;
        if self.quorum_check_elapsed_ticks < self.config.election_timeout_ticks_min {
            return;
        }
        self.quorum_check_elapsed_ticks = 0;
        let heard = self.recently_active.len() + 1;
        self.recently_active.clear();
        if heard < quorum::majority(self.config.members.len()) {
            let term = self.term();
            self.become_follower(term, None);
        }
    }

    fn become_follower(&mut self, term: Term, leader: Option<NodeId>) {
        if term > self.term() {
            // votedFor changes only together with the term.
            self.hard_state = HardState { term, voted_for: None };
            self.hard_state_dirty = true;
        }
        if self.role != Role::Follower {
            self.role = Role::Follower;
            self.progress.clear();
            self.recently_active.clear();
            self.votes.clear();
            self.pre_votes.clear();
            self.reset_election_timer();
        }
        self.leader_hint = leader;
    }

    fn become_leader(&mut self) {
        self.role = Role::Leader;
        self.leader_hint = Some(self.id());
        self.votes.clear();
        let last_index = self.log.last_index();
        self.progress = self.peers().map(|p| (p, Progress::new(last_index))).collect();
        self.recently_active.clear();
        self.quorum_check_elapsed_ticks = 0;
        self.heartbeat_elapsed_ticks = 0;
        // Assert leadership at once so other candidates stand down.
        self.broadcast_append(true);
    }

    fn handle_request_vote(&mut self, from: NodeId, term: Term, last_log_index: Index, last_log_term: Term) {
        let granted = term == self.term() && {
            let free = self.hard_state.voted_for.is_none_or(|v| v == from);
            self.is_up_to_date(last_log_index, last_log_term) && free
        };
        if granted {
            self.hard_state.voted_for = Some(from);
            self.hard_state_dirty = true;
            self.reset_election_timer();
        }
        self.send(from, MessageBody::RequestVoteReply { granted });
    }

    /// Section 5.4.1: a candidate's log is at least as up to date as ours.
    fn is_up_to_date(&self, last_log_index: Index, last_log_term: Term) -> bool {
        last_log_term > self.log.last_term()
            || (last_log_term == self.log.last_term() && last_log_index >= self.log.last_index())
    }

    fn handle_vote_reply(&mut self, from: NodeId, term: Term, granted: bool) {
        // A pre-candidate that is still the self-voted candidate of this term keeps counting votes for it: with
        // PreVote the term does not move when a campaign times out, so a vote delayed past the timeout is still a
        // vote for this term, and election safety only needs each voter to vote once per term.
        let campaigning = self.role == Role::Candidate
            || (self.role == Role::PreCandidate
                && self.hard_state.voted_for == Some(self.id())
                && !self.votes.is_empty());
        if !campaigning || term != self.term() || !granted {
            return;
        }
        self.votes.insert(from);
        if self.votes.len() >= quorum::majority(self.config.members.len()) {
            self.become_leader();
        }
    }

    // ----- Replication: follower side --------------------------------------------------------------------------

    /// Accepts a message from the leader of `term`, which must be the current term.
    fn accept_leader(&mut self, from: NodeId, term: Term) -> Result<(), StepError> {
        if self.role == Role::Leader {
            return Err(StepError::TwoLeaders { from, term });
        }
        self.become_follower(term, Some(from));
        self.reset_election_timer();
        Ok(())
    }

    fn handle_append_entries(
        &mut self,
        from: NodeId,
        term: Term,
        prev_log_index: Index,
        prev_log_term: Term,
        mut entries: Vec<Entry>,
        leader_commit: Index,
    ) -> Result<(), StepError> {
        let last = self.log.last_index();
        // A rejection without a conflicting entry: the leader's probe is beyond our log (or the leader is stale).
        let reject_beyond_log = |prev_log_index| AppendReply::Reject {
            prev_log_index,
            conflict_term: None,
            conflict_first_index: last + 1,
            last_log_index: last,
        };
        if term < self.term() {
            // Our reply carries our newer term, which deposes the stale leader.
            self.send(from, MessageBody::AppendEntriesReply(reject_beyond_log(prev_log_index)));
            return Ok(());
        }
        self.accept_leader(from, term)?;

        // Entries at or below our snapshot are committed and so match the leader's (Log Matching plus Leader
        // Completeness): start the consistency check at the snapshot point instead.
        let snapshot = self.log.snapshot_meta();
        let (prev_log_index, prev_log_term) = if prev_log_index < snapshot.index {
            entries.retain(|e| e.index > snapshot.index);
            if entries.first().is_some_and(|e| e.term < snapshot.term) {
                return Err(StepError::Malformed {
                    from,
                    what: format!("AppendEntries entry after snapshot {} has an older term", snapshot.index),
                });
            }
            (snapshot.index, snapshot.term)
        } else {
            (prev_log_index, prev_log_term)
        };

        match self.log.term_at(prev_log_index) {
            None => {
                self.send(from, MessageBody::AppendEntriesReply(reject_beyond_log(prev_log_index)));
                return Ok(());
            }
            Some(term_here) if term_here != prev_log_term => {
                let reject = AppendReply::Reject {
                    prev_log_index,
                    conflict_term: Some(term_here),
                    conflict_first_index: self.log.first_index_of_term_at(prev_log_index),
                    last_log_index: last,
                };
                self.send(from, MessageBody::AppendEntriesReply(reject));
                return Ok(());
            }
            Some(_) => {}
        }

        // Find the first entry we do not already hold with the same term. Entries we hold are skipped: an outdated
        // or repeated AppendEntries must never take back entries that a newer one added.
        let last_new_index = prev_log_index + entries.len() as u64;
        let first_new = entries.iter().position(|e| self.log.term_at(e.index) != Some(e.term));
        if let Some(k) = first_new {
            let index = entries[k].index;
            if index <= self.log.last_index() {
                if index <= self.commit_index {
                    return Err(StepError::WouldTruncateCommitted { from, index, commit_index: self.commit_index });
                }
                self.log.truncate_from(index);
                self.durable_index = self.durable_index.min(index - 1);
            }
            self.mark_log_dirty(index);
            for entry in entries.drain(k..) {
                self.log.push(entry);
            }
        }
        let new_commit = leader_commit.min(last_new_index);
        if new_commit > self.commit_index {
            self.commit_index = new_commit;
        }
        self.send(from, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: last_new_index }));
        Ok(())
    }

    fn handle_install_snapshot(
        &mut self,
        from: NodeId,
        term: Term,
        meta: SnapshotMeta,
        data: Vec<u8>,
    ) -> Result<(), StepError> {
        if term < self.term() {
            let last_included_index = self.log.snapshot_meta().index;
            self.send(from, MessageBody::InstallSnapshotReply { last_included_index });
            return Ok(());
        }
        self.accept_leader(from, term)?;
        // A snapshot at or below our commit index brings nothing new: we already hold (and agree on) all of it.
        // Ignoring it is what keeps a stale or duplicate InstallSnapshot from moving the node backwards.
        if meta.index > self.commit_index {
            let kept_suffix = self.log.compact_to(meta);
            if !kept_suffix {
                self.mark_log_dirty(meta.index + 1);
                // The old entries above the snapshot are gone; the snapshot is durable once its persist is.
                self.durable_index = self.durable_index.min(meta.index);
            }
            let snapshot = Snapshot { meta, data };
            self.snapshot = Some(snapshot.clone());
            self.snapshot_dirty = true;
            self.snapshot_to_apply = Some(snapshot);
            self.commit_index = meta.index;
        }
        self.send(from, MessageBody::InstallSnapshotReply { last_included_index: meta.index });
        Ok(())
    }

    /// The commit index moves only through what this follower's log is known to share with the leader's: the
    /// entry (`match_index`, `match_term`) and so, by Log Matching, everything before it.
    fn handle_commit_notice(
        &mut self,
        from: NodeId,
        term: Term,
        match_index: Index,
        match_term: Term,
        leader_commit: Index,
    ) -> Result<(), StepError> {
        if term < self.term() {
            return Ok(()); // a deposed leader's: the next heartbeat's answer tells it of the newer term
        }
        self.accept_leader(from, term)?;
        if self.log.term_at(match_index) == Some(match_term) {
            self.commit_index = self.commit_index.max(leader_commit.min(match_index));
        }
        Ok(())
    }

    // ----- Replication: leader side ----------------------------------------------------------------------------

    fn handle_append_reply(&mut self, from: NodeId, term: Term, reply: AppendReply) -> Result<(), StepError> {
        if self.role != Role::Leader || term != self.term() {
            return Ok(()); // A stale reply from an earlier term or role.
        }
        let last_index = self.log.last_index();
        let Some(progress) = self.progress.get_mut(&from) else { return Ok(()) };
        let mut send_now = false;
        match reply {
            AppendReply::Success { match_index } => {
                if match_index > last_index {
                    return Err(StepError::Malformed {
                        from,
                        what: format!("claims a match at {match_index} beyond the leader's last index {last_index}"),
                    });
                }
                progress.record_match(match_index);
                send_now = progress.is_idle();
                if self.maybe_commit() {
                    // Followers learn the new commit index now, not at the next heartbeat (etcd's bcastAppend
                    // after maybeCommit): a follower answering a forwarded request waits until it applied it.
                    // Every idle follower gets one message (this one included): entries, or a CommitNotice.
                    self.broadcast_commit();
                    return Ok(());
                }
            }
            AppendReply::Reject { prev_log_index, conflict_term, conflict_first_index, last_log_index } => {
                let hinted = match conflict_term {
                    Some(t) => self.log.last_index_of_term(t).map_or(conflict_first_index, |i| i + 1),
                    None => last_log_index.saturating_add(1),
                };
                // Always move back at least one entry from the failed probe, never past the follower's log end.
                // and never past our own log end (a hostile or confused reply may name any index).
                let next = hinted.min(prev_log_index).min(last_log_index.saturating_add(1)).min(last_index + 1);
                if let Some(progress) = self.progress.get_mut(&from) {
                    send_now = progress.record_rejection(prev_log_index, next);
                }
            }
        }
        // More entries to send, or a commit this follower has not heard of (another follower's answer made it):
        // the follower would otherwise learn it only at the next heartbeat.
        let commit = self.commit_index;
        match self.progress.get(&from) {
            Some(p) if send_now && p.next_index <= last_index => self.send_append(from),
            Some(p) if send_now && p.lags_commit(commit) => self.send_commit(from),
            _ => {}
        }
        Ok(())
    }

    fn handle_install_snapshot_reply(&mut self, from: NodeId, term: Term, index: Index) -> Result<(), StepError> {
        if self.role != Role::Leader || term != self.term() {
            return Ok(());
        }
        let last_index = self.log.last_index();
        if index > last_index {
            return Err(StepError::Malformed {
                from,
                what: format!("acknowledges snapshot {index} beyond the leader's last index {last_index}"),
            });
        }
        let Some(progress) = self.progress.get_mut(&from) else { return Ok(()) };
        progress.record_match(index);
        let more = progress.is_idle() && progress.next_index <= last_index;
        if self.maybe_commit() {
            self.broadcast_commit(); // as after an AppendEntries success
            return Ok(());
        }
        if more {
            self.send_append(from);
        }
        Ok(())
    }

    /// Sends AppendEntries to every follower. Heartbeats go to all; otherwise only to followers with nothing in
    /// flight (the heartbeat retransmits whatever a lost message carried).
    fn broadcast_append(&mut self, heartbeat: bool) {
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            let Some(progress) = self.progress.get_mut(&peer) else { continue };
            if heartbeat {
                progress.forget_outstanding();
            }
            if progress.is_idle() {
                self.send_append(peer);
            }
        }
    }

    /// Tells every follower with nothing in flight of a new commit index (the others hear of it with the answer to
    /// what is in flight: see `handle_append_reply`).
    fn broadcast_commit(&mut self) {
        let peers: Vec<NodeId> = self.peers().collect();
        for peer in peers {
            if self.progress.get(&peer).is_some_and(Progress::is_idle) {
                self.send_commit(peer);
            }
        }
    }

    /// Tells `to` the commit index: with a [`MessageBody::CommitNotice`] if it already holds the whole log (nothing
    /// to send, nothing in flight to wait for), otherwise with AppendEntries.
    fn send_commit(&mut self, to: NodeId) {
        let last_index = self.log.last_index();
        let commit = self.commit_index;
        let Some(progress) = self.progress.get_mut(&to) else { return };
        let caught_up = progress.is_idle() && progress.match_index == last_index;
        match self.log.term_at(last_index) {
            Some(match_term) if caught_up => {
                progress.commit_sent = commit;
                let notice = MessageBody::CommitNotice { match_index: last_index, match_term, leader_commit: commit };
                self.send(to, notice);
            }
            _ => self.send_append(to),
        }
    }

    /// Sends `to` whatever it needs next: entries from its next index, or the snapshot if those were compacted.
    fn send_append(&mut self, to: NodeId) {
        let Some(next_index) = self.progress.get(&to).map(|p| p.next_index) else { return };
        let prev_log_index = next_index - 1;
        let (body, last_index) = match (self.log.term_at(prev_log_index), &self.snapshot) {
            (Some(prev_log_term), _) => {
                let limits = (self.config.max_entries_per_append, self.config.max_bytes_per_append);
                let entries = self.log.slice(next_index, limits.0, limits.1);
                let last_index = prev_log_index + entries.len() as u64;
                let leader_commit = self.commit_index;
                (MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, leader_commit }, last_index)
            }
            (None, Some(snapshot)) => {
                let body = MessageBody::InstallSnapshot { meta: snapshot.meta, data: snapshot.data.clone() };
                (body, snapshot.meta.index)
            }
            (None, None) => {
                // next_index is always within [1, last + 1] and the prefix is compacted only with a snapshot.
                debug_assert!(false, "no term at {prev_log_index} and no snapshot");
                return;
            }
        };
        let commit = self.commit_index;
        if let Some(progress) = self.progress.get_mut(&to) {
            progress.sent(prev_log_index, last_index, commit);
        }
        self.send(to, body);
    }

    /// Advances the commit index to the highest index a majority holds durably, but only through an entry of the
    /// current term (Figure 8: older entries commit indirectly, never by counting replicas). The leader counts
    /// itself through its durable index, not its last index: it sends entries before its own fsync ends.
    /// Returns whether the commit index moved.
    fn maybe_commit(&mut self) -> bool {
        let mut matches: Vec<Index> =
            self.config
                .members
                .iter()
                .map(|m| {
                    if *m == self.id() { self.durable_index } else { self.progress.get(m).map_or(0, |p| p.match_index) }
                })
                .collect();
        let majority_index = quorum::committed_index(&mut matches);
        if majority_index > self.commit_index && self.log.term_at(majority_index) == Some(self.term()) {
            self.commit_index = majority_index;
            return true;
        }
        false
    }

    // ----- Helpers ---------------------------------------------------------------------------------------------

    fn peers(&self) -> impl Iterator<Item = NodeId> + use<> {
        let me = self.id();
        self.config.members.clone().into_iter().filter(move |m| *m != me)
    }

    fn send(&mut self, to: NodeId, body: MessageBody) {
        let term = self.term();
        self.send_in_term(to, term, body);
    }

    fn send_in_term(&mut self, to: NodeId, term: Term, body: MessageBody) {
        self.messages.push(Message { from: self.id(), to, term, body });
    }

    fn mark_log_dirty(&mut self, index: Index) {
        self.log_dirty_from = Some(self.log_dirty_from.map_or(index, |d| d.min(index)));
    }
}
