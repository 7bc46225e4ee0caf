//! The thread that owns a replica: the one place a running node's Raft state lives.
//!
//! ```text
//!   async side (HTTP handlers, transport)                       replica thread (std::thread, blocking)
//!   ──────────────────────────────────────                       ─────────────────────────────────────
//!   ReplicaHandle::execute(cmd) ──Input::Execute──┐             loop {
//!   ReplicaHandle::deliver(from, msg) ─Input::Peer┼──bounded──>   wait for an input or the next tick
//!                                                 │   queue       take every input already queued
//!                                                 │               tick when due
//!   oneshot: (index, output) | ExecuteError <─────┼───────────    advance() until quiet: persist (fsync here,
//!   watch: applied index <────────────────────────┤                 never on an async worker), then send, then
//!   status snapshot <─────────────────────────────┘                 apply; hand out outcomes
//!   PeerSender::send(to, msg) <──────────────────────────────────  }
//! ```
//!
//! Everything that decides anything runs inside `keel_replica::Replica` (the code the simulator runs); this file
//! only moves inputs in and outputs out, and routes each proposal's outcome to whoever asked: a local client or
//! a follower that forwarded the request (see `envelope.rs`).
//!
//! Batching comes for free: while the thread is in an fsync, new proposals wait in the queue, and the next
//! round takes all of them into one Ready, one write and one fdatasync (group commit).
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use keel_raft::{Apply, Index, NodeId, Role, Term};
use keel_replica::{Outcome, Proposal, Replica, ReplicaError, Service, UnknownReason};
use keel_storage::Storage;
use tokio::sync::{oneshot, watch};

use crate::envelope::{ForwardResult, PeerMessage};
use crate::metrics::ReplicaMetrics;

/// Where the replica thread sends messages to peers. Must not block: a transport queues or drops (Raft
/// tolerates loss).
pub trait PeerSender<M>: Send + 'static {
    fn send(&self, to: NodeId, message: M);
}

#[derive(Clone, Debug)]
pub struct RuntimeOptions {
    /// One Raft tick. The core's timeouts are in ticks (heartbeat 10, elections 30-60 by default).
    pub tick_interval_ms: u64,
    /// Inputs waiting for the replica thread; beyond it, requests get `Overloaded` and peer messages are dropped.
    pub inputs_queued_max: usize,
    /// How long a request waits for an election to produce a leader before it is answered `NoLeader`.
    pub leader_wait_ms: u64,
    /// A forwarded request with no answer after this long is given up as `Unknown` (its leader may be gone).
    pub forward_timeout_ms: u64,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            tick_interval_ms: 10,
            inputs_queued_max: 16_384,
            leader_wait_ms: 2_000,
            forward_timeout_ms: 10_000,
        }
    }
}

/// Why a request got no result. `NoLeader`, `NotApplied` and `Overloaded` mean nothing was applied; `Unknown` and
/// `TimedOut` mean it may still apply (retry with the same client id and seq to make that safe).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecuteError {
    #[error("no leader is known: an election is under way or a majority is unreachable")]
    NoLeader,
    #[error("another leader's entry took the command's place in the log; it was not applied")]
    NotApplied,
    #[error("the outcome is unknown ({reason}); it may still apply")]
    Unknown { reason: String },
    #[error("timed out; the outcome is unknown and it may still apply")]
    TimedOut,
    #[error("the node has too many requests queued")]
    Overloaded,
    #[error("the node has stopped: {reason}")]
    Stopped { reason: String },
}

/// A node's state as clients and operators see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    pub id: NodeId,
    pub role: Role,
    pub term: Term,
    pub leader: Option<NodeId>,
    pub commit_index: Index,
    pub applied_index: Index,
    pub members: Vec<NodeId>,
    /// Why the replica stopped, once it has.
    pub stopped: Option<String>,
}

type Reply<O> = oneshot::Sender<Result<(Index, O), ExecuteError>>;

enum Input<O> {
    Execute { command: Vec<u8>, reply: Reply<O> },
    Peer { from: NodeId, message: PeerMessage<O> },
}

/// The async side's handle on the replica thread. Cheap to share behind an `Arc`.
pub struct ReplicaHandle<O> {
    id: NodeId,
    inputs: SyncSender<Input<O>>,
    status: Arc<Mutex<Status>>,
    applied: watch::Receiver<Index>,
    stopped: watch::Receiver<Option<String>>,
    stop: Arc<AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
    options: RuntimeOptions,
    metrics: ReplicaMetrics,
}

impl<O: Clone + Send + 'static> ReplicaHandle<O> {
    /// Starts the replica thread. Messages for peers go to `peers`; messages from peers come in by
    /// [`ReplicaHandle::deliver`].
    pub fn spawn<S, St, P>(
        replica: Replica<S, St>,
        peers: P,
        options: RuntimeOptions,
        metrics: ReplicaMetrics,
    ) -> std::io::Result<ReplicaHandle<O>>
    where
        S: Service<Output = O> + Send + 'static,
        St: Storage + Send + 'static,
        St::Error: Send + 'static,
        P: PeerSender<PeerMessage<O>>,
    {
        let (inputs, receiver) = std::sync::mpsc::sync_channel(options.inputs_queued_max);
        let status = Arc::new(Mutex::new(status_of(&replica, None)));
        let (applied_tx, applied) = watch::channel(replica.node().applied_index());
        let (stopped_tx, stopped) = watch::channel(None);
        let stop = Arc::new(AtomicBool::new(false));
        let id = replica.node().id();
        let thread = ReplicaThread {
            replica: Some(replica),
            peers,
            inputs: receiver,
            status: status.clone(),
            applied: applied_tx,
            stopped: stopped_tx,
            stop: stop.clone(),
            options: options.clone(),
            metrics: metrics.clone(),
            proposals: BTreeMap::new(),
            forwards: BTreeMap::new(),
            next_request_id: 1,
            published: None,
        };
        let thread = std::thread::Builder::new().name(format!("replica-{id}")).spawn(move || thread.run())?;
        Ok(ReplicaHandle {
            id,
            inputs,
            status,
            applied,
            stopped,
            stop,
            thread: Mutex::new(Some(thread)),
            options,
            metrics,
        })
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn metrics(&self) -> &ReplicaMetrics {
        &self.metrics
    }

    /// Proposes `command` through the log (through the leader, if this node is not it) and resolves once this
    /// node has applied it: with its index and the service's output. Gives up at `deadline`.
    pub async fn execute(&self, command: Vec<u8>, deadline: tokio::time::Instant) -> Result<(Index, O), ExecuteError> {
        let leader_wait_until = tokio::time::Instant::now() + Duration::from_millis(self.options.leader_wait_ms);
        let mut backoff = Duration::from_millis(5);
        loop {
            let (reply, answer) = oneshot::channel();
            match self.inputs.try_send(Input::Execute { command: command.clone(), reply }) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err(ExecuteError::Overloaded),
                Err(TrySendError::Disconnected(_)) => return Err(self.stopped_error()),
            }
            let result = match tokio::time::timeout_at(deadline, answer).await {
                Err(_) => return Err(ExecuteError::TimedOut),
                Ok(Err(_)) => return Err(self.stopped_error()),
                Ok(Ok(result)) => result,
            };
            match result {
                Ok((index, output)) => {
                    // Applied by the leader; answer once this node has applied it too, so that this client's next
                    // request to this node sees it.
                    let mut applied = self.applied.clone();
                    return match tokio::time::timeout_at(deadline, applied.wait_for(|&a| a >= index)).await {
                        Ok(Ok(_)) => Ok((index, output)),
                        Ok(Err(_)) => Err(self.stopped_error()),
                        Err(_) => Err(ExecuteError::TimedOut),
                    };
                }
                // Nothing was applied: safe to try again, while an election may still produce a leader.
                Err(ExecuteError::NoLeader | ExecuteError::NotApplied) => {
                    let now = tokio::time::Instant::now();
                    if now + backoff >= deadline.min(leader_wait_until) {
                        return Err(ExecuteError::NoLeader);
                    }
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_millis(50));
                }
                Err(other) => return Err(other),
            }
        }
    }

    /// A message from a peer. Never blocks: on a full queue the message is dropped, as the network might.
    pub fn deliver(&self, from: NodeId, message: PeerMessage<O>) {
        if let Err(TrySendError::Full(_)) = self.inputs.try_send(Input::Peer { from, message }) {
            self.metrics.inputs_dropped.inc();
        }
    }

    pub fn status(&self) -> Status {
        match self.status.lock() {
            Ok(status) => status.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// The highest index this node has applied, as it changes.
    pub fn applied(&self) -> watch::Receiver<Index> {
        self.applied.clone()
    }

    /// Resolves with the reason once the replica thread has stopped (a shutdown, or a fatal storage error).
    pub async fn stopped(&self) -> String {
        let mut stopped = self.stopped.clone();
        match stopped.wait_for(|reason| reason.is_some()).await {
            Ok(reason) => reason.clone().unwrap_or_default(),
            Err(_) => "the replica thread is gone".to_string(),
        }
    }

    /// Stops the replica thread and waits for it: it finishes the round it is in (a persist is never cut in
    /// half), answers every pending request as `Stopped`, and closes its storage.
    pub fn shutdown(&self) {
        self.stop.store(true, Ordering::SeqCst);
        let thread = match self.thread.lock() {
            Ok(mut thread) => thread.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some(thread) = thread
            && thread.join().is_err()
        {
            tracing::error!(node = self.id, "the replica thread panicked");
        }
    }

    fn stopped_error(&self) -> ExecuteError {
        let reason = self.status().stopped.unwrap_or_else(|| "the replica thread is gone".to_string());
        ExecuteError::Stopped { reason }
    }
}

impl<O> Drop for ReplicaHandle<O> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

/// Who is waiting for a proposal's outcome.
enum Origin<O> {
    Local(Reply<O>),
    Remote { peer: NodeId, request_id: u64 },
}

/// A request this node forwarded to `leader`, waiting for its answer.
struct ForwardOut<O> {
    leader: NodeId,
    reply: Reply<O>,
    sent_at: Instant,
}

struct ReplicaThread<S: Service, St: Storage, P> {
    /// `None` once stopped.
    replica: Option<Replica<S, St>>,
    peers: P,
    inputs: Receiver<Input<S::Output>>,
    status: Arc<Mutex<Status>>,
    applied: watch::Sender<Index>,
    stopped: watch::Sender<Option<String>>,
    stop: Arc<AtomicBool>,
    options: RuntimeOptions,
    metrics: ReplicaMetrics,
    proposals: BTreeMap<Proposal, Origin<S::Output>>,
    forwards: BTreeMap<u64, ForwardOut<S::Output>>,
    next_request_id: u64,
    /// What `publish` last made visible (role, term, leader, commit, applied): it is called after every step and
    /// every round, and does nothing when none of these moved.
    published: Option<(Role, Term, Option<NodeId>, Index, Index)>,
}

/// How long the replica thread polls for its next input before it blocks (see `next_input`).
const SPIN_BEFORE_BLOCKING: Duration = Duration::from_micros(100);

/// How many queued inputs one round takes before it advances (bounds the latency of the first of them).
const INPUTS_PER_ROUND_MAX: usize = 4_096;

impl<S, St, P> ReplicaThread<S, St, P>
where
    S: Service + Send + 'static,
    S::Output: Clone + Send + 'static,
    St: Storage + Send + 'static,
    St::Error: Send + 'static,
    P: PeerSender<PeerMessage<S::Output>>,
{
    fn run(mut self) {
        let tick = Duration::from_millis(self.options.tick_interval_ms.max(1));
        let mut next_tick = Instant::now() + tick;
        let reason = loop {
            if self.stop.load(Ordering::SeqCst) {
                break "shut down".to_string();
            }
            let wait = next_tick.saturating_duration_since(Instant::now());
            let result = match self.next_input(wait) {
                Ok(input) => self.take_inputs(input),
                Err(RecvTimeoutError::Timeout) => Ok(()),
                Err(RecvTimeoutError::Disconnected) => break "every handle is gone".to_string(),
            };
            let result = result.and_then(|()| self.tick_if_due(&mut next_tick, tick)).and_then(|()| self.drive());
            if let Err(error) = result {
                tracing::error!(%error, "the replica stopped");
                break error;
            }
            self.expire_forwards();
            self.publish();
        };
        self.finish(reason);
    }

    /// The next input, waiting at most `wait`. Polls (yielding the CPU) for a few microseconds before it blocks:
    /// an answer often follows within them (a follower's acknowledgement, the next request of a client that just
    /// got its answer), and a thread that sleeps pays a wake-up (tens of µs on a VM) on every hop.
    fn next_input(&self, wait: Duration) -> Result<Input<S::Output>, RecvTimeoutError> {
        let spin_until = Instant::now() + SPIN_BEFORE_BLOCKING.min(wait);
        loop {
            match self.inputs.try_recv() {
                Ok(input) => return Ok(input),
                Err(std::sync::mpsc::TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(std::sync::mpsc::TryRecvError::Empty) if Instant::now() < spin_until => std::thread::yield_now(),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
            }
        }
        self.inputs.recv_timeout(wait.saturating_sub(SPIN_BEFORE_BLOCKING))
    }

    fn replica(&mut self) -> &mut Replica<S, St> {
        // Only `finish` takes it, and nothing runs after `finish`.
        self.replica.as_mut().expect("the replica is present until the thread finishes")
    }

    fn take_inputs(&mut self, first: Input<S::Output>) -> Result<(), String> {
        self.handle(first)?;
        for _ in 1..INPUTS_PER_ROUND_MAX {
            match self.inputs.try_recv() {
                Ok(input) => self.handle(input)?,
                Err(_) => break,
            }
        }
        Ok(())
    }

    fn tick_if_due(&mut self, next_tick: &mut Instant, tick: Duration) -> Result<(), String> {
        let now = Instant::now();
        if now < *next_tick {
            return Ok(());
        }
        self.replica().tick().map_err(|e| e.to_string())?;
        *next_tick += tick;
        if *next_tick < now {
            // Far behind (a long fsync, a stalled machine): skip the missed ticks rather than fire them in a burst
            // that would time out every election at once.
            *next_tick = now + tick;
        }
        Ok(())
    }

    fn handle(&mut self, input: Input<S::Output>) -> Result<(), String> {
        match input {
            Input::Execute { command, reply } => self.execute(command, reply),
            Input::Peer { from, message } => match message {
                PeerMessage::Raft(message) => {
                    if message.from != from || message.to != self.replica().node().id() {
                        tracing::warn!(
                            peer = from,
                            from = message.from,
                            to = message.to,
                            "dropped a misaddressed Raft message"
                        );
                        return Ok(());
                    }
                    match self.replica().step(message) {
                        Ok(()) => Ok(()),
                        Err(ReplicaError::Step { source, .. }) => {
                            tracing::warn!(peer = from, error = %source, "refused a Raft message");
                            Ok(())
                        }
                        Err(other) => Err(other.to_string()),
                    }
                }
                PeerMessage::Forward { request_id, command } => self.forwarded_in(from, request_id, command),
                PeerMessage::Forwarded { request_id, result } => {
                    self.forwarded_back(request_id, result);
                    Ok(())
                }
            },
        }
    }

    /// A client of this node asks: propose it if this node leads, else forward it to the leader it knows.
    fn execute(&mut self, command: Vec<u8>, reply: Reply<S::Output>) -> Result<(), String> {
        let id = self.replica().node().id();
        match self.replica().propose(command.clone()).map_err(|e| e.to_string())? {
            Ok(proposal) => {
                self.metrics.proposals.inc();
                self.proposals.insert(proposal, Origin::Local(reply));
            }
            Err(_) => match self.replica().node().leader_hint() {
                Some(leader) if leader != id => {
                    let request_id = self.next_request_id;
                    self.next_request_id += 1;
                    self.metrics.forwarded_out.inc();
                    self.peers.send(leader, PeerMessage::Forward { request_id, command });
                    self.forwards.insert(request_id, ForwardOut { leader, reply, sent_at: Instant::now() });
                }
                _ => {
                    let _ = reply.send(Err(ExecuteError::NoLeader));
                }
            },
        }
        Ok(())
    }

    /// A follower forwarded its client's command to this node.
    fn forwarded_in(&mut self, from: NodeId, request_id: u64, command: Vec<u8>) -> Result<(), String> {
        match self.replica().propose(command).map_err(|e| e.to_string())? {
            Ok(proposal) => {
                self.metrics.proposals.inc();
                self.metrics.forwarded_in.inc();
                self.proposals.insert(proposal, Origin::Remote { peer: from, request_id });
            }
            Err(_) => {
                let leader = self.replica().node().leader_hint();
                self.peers
                    .send(from, PeerMessage::Forwarded { request_id, result: ForwardResult::NotLeader { leader } });
            }
        }
        Ok(())
    }

    /// The leader answered a request this node forwarded.
    fn forwarded_back(&mut self, request_id: u64, result: ForwardResult<S::Output>) {
        let Some(forward) = self.forwards.remove(&request_id) else {
            return; // given up already (timed out, or its leader changed)
        };
        let result = match result {
            ForwardResult::Applied { index, output } => Ok((index, output)),
            ForwardResult::NotLeader { .. } => Err(ExecuteError::NoLeader),
            ForwardResult::NotApplied => Err(ExecuteError::NotApplied),
            ForwardResult::Unknown { reason } => Err(ExecuteError::Unknown { reason }),
        };
        let _ = forward.reply.send(result);
    }

    /// Forwarded requests whose leader is no longer the leader, or that waited too long, end as `Unknown`: the
    /// old leader may have proposed them, so they may still commit.
    fn expire_forwards(&mut self) {
        if self.forwards.is_empty() {
            return;
        }
        let leader = self.replica.as_ref().and_then(|r| r.node().leader_hint());
        let timeout = Duration::from_millis(self.options.forward_timeout_ms);
        let expired: Vec<u64> = self
            .forwards
            .iter()
            .filter(|(_, f)| Some(f.leader) != leader || f.sent_at.elapsed() > timeout || f.reply.is_closed())
            .map(|(&id, _)| id)
            .collect();
        for id in expired {
            if let Some(forward) = self.forwards.remove(&id) {
                let reason = if Some(forward.leader) != leader {
                    format!("the leader changed from node {} while the request was forwarded to it", forward.leader)
                } else {
                    format!("node {} did not answer a forwarded request", forward.leader)
                };
                let _ = forward.reply.send(Err(ExecuteError::Unknown { reason }));
            }
        }
    }

    /// Runs the Ready loop until the replica is quiet.
    fn drive(&mut self) -> Result<(), String> {
        while let Some(advanced) = self.replica().advance().map_err(|e| e.to_string())? {
            for message in advanced.messages {
                self.peers.send(message.to, PeerMessage::Raft(message));
            }
            for apply in &advanced.applied {
                if let Apply::Snapshot(_) = apply {
                    self.metrics.snapshots_installed.inc();
                }
            }
            if advanced.snapshotted.is_some() {
                self.metrics.snapshots_taken.inc();
            }
            for (proposal, outcome) in advanced.outcomes {
                self.resolve(proposal, outcome);
            }
            // Status first: whoever wakes on the applied index and then reads the status sees it there too.
            self.publish();
            let applied = self.replica().node().applied_index();
            self.applied.send_if_modified(|a| std::mem::replace(a, applied) != applied);
        }
        Ok(())
    }

    fn resolve(&mut self, proposal: Proposal, outcome: Outcome<S::Output>) {
        let Some(origin) = self.proposals.remove(&proposal) else {
            return; // proposed before a restart: nobody is waiting
        };
        match origin {
            Origin::Local(reply) => {
                let result = match outcome {
                    Outcome::Applied(output) => Ok((proposal.index, output)),
                    Outcome::NotApplied => Err(ExecuteError::NotApplied),
                    Outcome::Unknown(reason) => Err(ExecuteError::Unknown { reason: unknown_reason(reason) }),
                };
                let _ = reply.send(result);
            }
            Origin::Remote { peer, request_id } => {
                let result = match outcome {
                    Outcome::Applied(output) => ForwardResult::Applied { index: proposal.index, output },
                    Outcome::NotApplied => ForwardResult::NotApplied,
                    Outcome::Unknown(reason) => ForwardResult::Unknown { reason: unknown_reason(reason) },
                };
                self.peers.send(peer, PeerMessage::Forwarded { request_id, result });
            }
        }
    }

    fn publish(&mut self) {
        let Some(replica) = self.replica.as_ref() else { return };
        let node = replica.node();
        let now = (node.role(), node.term(), node.leader_hint(), node.commit_index(), node.applied_index());
        let before = self.published.replace(now);
        if before == Some(now) {
            return;
        }
        let status = status_of(replica, None);
        if before.map(|(role, term, ..)| (role, term)) != Some((status.role, status.term)) {
            match status.role {
                Role::Leader => tracing::info!(node = status.id, term = status.term, "became the leader"),
                role => tracing::debug!(node = status.id, term = status.term, ?role, "role changed"),
            }
        }
        let m = &self.metrics;
        m.term.set(as_i64(status.term));
        m.role.set(match status.role {
            Role::Follower => 0,
            Role::PreCandidate => 1,
            Role::Candidate => 2,
            Role::Leader => 3,
        });
        m.is_leader.set(i64::from(status.role == Role::Leader));
        m.commit_index.set(as_i64(status.commit_index));
        m.applied_index.set(as_i64(status.applied_index));
        match self.status.lock() {
            Ok(mut shared) => *shared = status,
            Err(poisoned) => *poisoned.into_inner() = status,
        }
    }

    /// Stops the replica: every waiting request hears `Stopped`, the storage is closed.
    fn finish(mut self, reason: String) {
        if let Some(replica) = self.replica.take() {
            let mut status = status_of(&replica, Some(reason.clone()));
            let stopped = replica.stop();
            for (proposal, outcome) in stopped.outcomes {
                self.resolve(proposal, outcome);
            }
            drop(stopped.storage);
            status.stopped = Some(reason.clone());
            match self.status.lock() {
                Ok(mut shared) => *shared = status,
                Err(poisoned) => *poisoned.into_inner() = status,
            }
        }
        for (_, forward) in std::mem::take(&mut self.forwards) {
            let _ = forward.reply.send(Err(ExecuteError::Stopped { reason: reason.clone() }));
        }
        for (_, origin) in std::mem::take(&mut self.proposals) {
            if let Origin::Local(reply) = origin {
                let _ = reply.send(Err(ExecuteError::Stopped { reason: reason.clone() }));
            }
        }
        self.stopped.send_replace(Some(reason));
    }
}

fn status_of<S: Service, St: Storage>(replica: &Replica<S, St>, stopped: Option<String>) -> Status
where
    St::Error: 'static,
{
    let node = replica.node();
    Status {
        id: node.id(),
        role: node.role(),
        term: node.term(),
        leader: node.leader_hint(),
        commit_index: node.commit_index(),
        applied_index: node.applied_index(),
        members: node.config().members.clone(),
        stopped,
    }
}

fn unknown_reason(reason: UnknownReason) -> String {
    match reason {
        UnknownReason::LeadershipLost => "the leader lost its leadership before the entry committed".to_string(),
        UnknownReason::SnapshotInstalled => "a snapshot from a newer leader replaced the entry".to_string(),
        UnknownReason::Stopped => "the leader stopped".to_string(),
    }
}

fn as_i64(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
