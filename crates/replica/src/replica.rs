//! The replica: a RaftNode, a Service and a Storage, and the Ready loop.
use keel_raft::{Apply, Config, Index, Message, NotLeader, RaftNode};
use keel_storage::Storage;

use crate::error::ReplicaError;
use crate::proposals::{Outcome, Pending, Proposal, UnknownReason};
use crate::service::Service;
use crate::snapshot_policy::{ENTRY_OVERHEAD_BYTES, SnapshotPolicy};

/// What one step of the Ready loop did. The driver sends `messages` (what they depend on is durable, or, in a
/// `persist_pending` step, they are a leader's AppendEntries that may go ahead of its fsync) and hands each
/// outcome to whoever proposed it.
#[derive(Debug)]
pub struct Advanced<O> {
    /// Messages to send, in order. Safe to send now: everything they depend on is durable (see `persist_pending`).
    pub messages: Vec<Message>,
    /// What was applied to the service, in log order (drivers that check or record applies read this).
    pub applied: Vec<Apply>,
    /// Outcomes of this node's proposals that became known.
    pub outcomes: Vec<(Proposal, Outcome<O>)>,
    /// Whether an update was made durable, and whether it removed entries (a conflict or a snapshot).
    pub persisted: bool,
    pub truncated: bool,
    /// The index of a snapshot the service took while applying (the policy said so). It is persisted by the next
    /// step, so until then the node's memory holds a newer snapshot than its storage.
    pub snapshotted: Option<Index>,
    /// This step handed out a leader's early messages (see `keel_raft::Ready`) and nothing else: the persist they
    /// were sent ahead of is made durable by the next step. A crash now loses it, with the messages already out.
    pub persist_pending: bool,
}

/// What a stopped replica gives back: its parts, and the outcome of every proposal still pending.
pub struct Stopped<S: Service, St> {
    pub service: S,
    pub storage: St,
    pub outcomes: Vec<(Proposal, Outcome<S::Output>)>,
}

/// One Raft replica. See the crate documentation for the loop it runs.
pub struct Replica<S: Service, St: Storage> {
    node: RaftNode,
    service: S,
    storage: St,
    policy: SnapshotPolicy,
    pending: Pending,
    /// Outcomes found outside the Ready loop (a proposal lost with its leadership), handed out by the next
    /// [`Replica::advance`].
    outcomes: Vec<(Proposal, Outcome<S::Output>)>,
    /// The term this node led when pending proposals were last checked against its leadership: they need
    /// checking again only when that changes (checking on every step would cost a pass over them per Ready).
    leading_when_checked: Option<keel_raft::Term>,
    /// A Ready whose early messages were handed out and whose persist is the next step's work.
    in_progress: Option<keel_raft::Ready>,
    /// Set by a fatal error: every later call fails.
    stopped: bool,
}

impl<S: Service, St: Storage> Replica<S, St>
where
    St::Error: 'static,
{
    /// Starts a replica from whatever `storage` holds (nothing, for a new node). The snapshot, if any, is restored
    /// into the service by the first [`Replica::advance`], before any command.
    pub fn open(
        config: Config,
        service: S,
        storage: St,
        policy: SnapshotPolicy,
    ) -> Result<Self, ReplicaError<St::Error>> {
        let node_id = config.id;
        let durable = storage.load().map_err(|source| ReplicaError::Storage { node: node_id, source })?;
        let node = RaftNode::restart(config, durable)
            .map_err(|e| ReplicaError::CorruptState { node: node_id, what: e.to_string() })?;
        Ok(Replica {
            node,
            service,
            storage,
            policy,
            pending: Pending::default(),
            outcomes: Vec::new(),
            leading_when_checked: None,
            in_progress: None,
            stopped: false,
        })
    }

    pub fn node(&self) -> &RaftNode {
        &self.node
    }

    pub fn service(&self) -> &S {
        &self.service
    }

    pub fn storage(&self) -> &St {
        &self.storage
    }

    /// Stops the replica and gives back its parts; every pending proposal is `Unknown(Stopped)`.
    pub fn stop(mut self) -> Stopped<S, St> {
        let mut outcomes = std::mem::take(&mut self.outcomes);
        outcomes.extend(self.pending.unknown_through(u64::MAX, UnknownReason::Stopped));
        Stopped { service: self.service, storage: self.storage, outcomes }
    }

    // ----- Inputs ----------------------------------------------------------------------------------------------

    /// One clock tick. Follow with [`Replica::advance`].
    pub fn tick(&mut self) -> Result<(), ReplicaError<St::Error>> {
        self.check_running()?;
        self.node.tick();
        Ok(())
    }

    /// A message from a peer. A refused message is reported and otherwise dropped; the replica runs on. Follow
    /// with [`Replica::advance`] either way (a refused message may still have moved the term).
    pub fn step(&mut self, msg: Message) -> Result<(), ReplicaError<St::Error>> {
        self.check_running()?;
        self.node.step(msg).map_err(|source| ReplicaError::Step { node: self.node.id(), source })
    }

    /// Proposes a command, if this node leads. Its outcome comes out of a later [`Replica::advance`]. Follow with
    /// [`Replica::advance`].
    pub fn propose(&mut self, command: Vec<u8>) -> Result<Result<Proposal, NotLeader>, ReplicaError<St::Error>> {
        self.check_running()?;
        Ok(self.node.propose(command).map(|(index, term)| {
            let proposal = Proposal { index, term };
            self.pending.insert(proposal);
            proposal
        }))
    }

    // ----- The Ready loop --------------------------------------------------------------------------------------

    /// Runs one Ready through the contract: hand out a leader's early messages, persist, then hand out the other
    /// messages, then apply (and snapshot when the policy says so). Returns `None` once the node has nothing more to do. A storage or service error
    /// stops the replica: nothing that depended on the failed update is handed out.
    ///
    /// A leader's Ready takes two steps: the first hands out only its early messages (AppendEntries, so that
    /// followers write while the leader does), the second persists and hands out the rest.
    pub fn advance(&mut self) -> Result<Option<Advanced<S::Output>>, ReplicaError<St::Error>> {
        self.check_running()?;
        if let Some(ready) = self.in_progress.take() {
            return self.finish(ready).map(Some);
        }
        let leading = self.leading_term();
        if leading != self.leading_when_checked {
            self.outcomes.extend(self.pending.lost_leadership(leading));
            self.leading_when_checked = leading;
        }
        if !self.node.has_ready() {
            if self.outcomes.is_empty() {
                return Ok(None);
            }
            let outcomes = std::mem::take(&mut self.outcomes);
            return Ok(Some(Advanced {
                messages: Vec::new(),
                applied: Vec::new(),
                outcomes,
                persisted: false,
                truncated: false,
                snapshotted: None,
                persist_pending: false,
            }));
        }
        let mut ready = self.node.take_ready();
        if !ready.early_messages.is_empty() {
            if ready.persist.is_some() {
                let early = std::mem::take(&mut ready.early_messages);
                self.in_progress = Some(ready);
                return Ok(Some(Advanced {
                    messages: early,
                    applied: Vec::new(),
                    outcomes: Vec::new(),
                    persisted: false,
                    truncated: false,
                    snapshotted: None,
                    persist_pending: true,
                }));
            }
            // Nothing to persist: nothing to get ahead of.
            let mut messages = std::mem::take(&mut ready.early_messages);
            messages.append(&mut ready.messages);
            ready.messages = messages;
        }
        self.finish(ready).map(Some)
    }

    /// Persists a Ready, reports it durable to the core, and applies it.
    fn finish(&mut self, ready: keel_raft::Ready) -> Result<Advanced<S::Output>, ReplicaError<St::Error>> {
        debug_assert!(ready.early_messages.is_empty(), "early messages are handed out before the persist");
        let node_id = self.node.id();
        let (persisted, truncated) = match &ready.persist {
            Some(update) => {
                if let Err(source) = self.storage.persist(update) {
                    self.stopped = true;
                    return Err(ReplicaError::Storage { node: node_id, source });
                }
                if let Some((index, term)) = update.durable_through() {
                    self.node.persisted(index, term);
                }
                (true, update.truncate_from.is_some() || update.snapshot.is_some())
            }
            None => (false, false),
        };
        let mut snapshotted = None;
        for apply in &ready.applies {
            snapshotted = self.apply(apply)?.or(snapshotted);
        }
        Ok(Advanced {
            messages: ready.messages,
            applied: ready.applies,
            outcomes: std::mem::take(&mut self.outcomes),
            persisted,
            truncated,
            snapshotted,
            persist_pending: false,
        })
    }

    /// Applies one entry or snapshot; returns the index of a snapshot the policy took after it.
    fn apply(&mut self, apply: &Apply) -> Result<Option<Index>, ReplicaError<St::Error>> {
        let node_id = self.node.id();
        match apply {
            Apply::Command { index, term, data } => {
                let output = self.service.apply(*index, data);
                self.outcomes.extend(self.pending.applied(*index, *term, output));
                let log = self.node.log();
                let raft_state_bytes = log.payload_bytes() + log.len() * ENTRY_OVERHEAD_BYTES;
                if self.policy.snapshot_now(*index, raft_state_bytes) {
                    let image = self.service.snapshot();
                    // Safe mid-Ready: the core accepts any index it has handed out for applying.
                    if let Err(source) = self.node.snapshot(*index, image) {
                        self.stopped = true;
                        return Err(ReplicaError::Snapshot { node: node_id, source });
                    }
                    return Ok(Some(*index));
                }
            }
            Apply::Snapshot(snapshot) => {
                let index = snapshot.meta.index;
                if let Err(what) = self.service.restore(index, &snapshot.data) {
                    self.stopped = true;
                    return Err(ReplicaError::Restore { node: node_id, index, what });
                }
                self.outcomes.extend(self.pending.unknown_through(index, UnknownReason::SnapshotInstalled));
            }
        }
        Ok(None)
    }

    /// The term this node leads, if it leads.
    fn leading_term(&self) -> Option<keel_raft::Term> {
        self.node.is_leader().then(|| self.node.term())
    }

    fn check_running(&self) -> Result<(), ReplicaError<St::Error>> {
        if self.stopped { Err(ReplicaError::Stopped { node: self.node.id() }) } else { Ok(()) }
    }
}
