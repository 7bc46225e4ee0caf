//! The deterministic cluster: N Raft cores driven by one virtual clock, one seeded generator and one message queue.
//!
//! The cluster is the simulator's driver: it follows the core's persistence contract (persist, then send, then
//! apply), runs the safety checkers on every applied entry, and models faults: disconnects, partitions, unreliable
//! links, long reordering, crashes that lose everything not yet durable, and restarts from durable state.
use std::time::{Duration, Instant};

use keel_raft::{Apply, Config, Index, Message, MessageBody, NodeId, RaftNode, Rng, Term};
use keel_replica::{Outcome, Proposal, Replica, ReplicaError, SnapshotPolicy};

use crate::checker::ApplyChecker;
use crate::event_queue::{Delivery, Event, EventQueue};
use crate::invariants::Invariants;
use crate::late_replies::LateReplies;
use crate::nemesis::{Moment, Nemesis, Strike};
use crate::network::{Fate, Network};
pub use crate::options::RaftOptions;
use crate::sim_service::{ServiceKind, SimOutput, SimService};
use crate::stats::count_patterns;
pub use crate::stats::{KIND_NAMES, KINDS, Patterns, Stats, kind_slot};
pub use crate::storage::DiskCounts;
use crate::storage::{NodeStorage, NodeStorageError};
use crate::tester_service::SnapshotImage;
use crate::timeline::{self, TimelineEvent};
use crate::trace::{Trace, TraceLine};

/// Virtual milliseconds per core tick.
pub const TICK_MS: u64 = 10;

/// A run may process at most this many events (ticks and deliveries) in one virtual second. A healthy 7-node
/// cluster at the shortest legal heartbeat, with duplicated messages and clients proposing every 20 ms, stays
/// well below a tenth of it (`Stats::events_per_virtual_second_peak`); a message storm (every reply answered
/// with two messages, say) passes it within a virtual second and is reported instead of hanging the sweep.
pub const EVENTS_PER_VIRTUAL_SECOND_MAX: u64 = 60_000;
/// A run may take at most this much wall time: the backstop for loops that do not advance virtual time.
pub const WALL_BUDGET: Duration = Duration::from_secs(60);
/// Wall time is read once per this many events (reading it costs more than most events).
const WALL_CHECK_EVERY_EVENTS: u64 = 4096;
/// Handling one event may produce at most this many Readies in a row (each apply may snapshot, which produces
/// another): a core that never goes quiet is a bug.
const READIES_PER_EVENT_MAX: u32 = 1000;

#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub nodes: usize,
    pub seed: u64,
    pub reliable: bool,
    /// When the tester's service snapshots.
    pub snapshots: Snapshots,
    pub raft: RaftOptions,
    /// Where nodes keep their Raft state.
    pub storage: StorageKind,
    /// The service the replicas run.
    pub service: ServiceKind,
}

/// A proposal's outcome, as the KV front end receives it: which node (and which life of it) proposed it.
#[derive(Clone, Debug)]
pub struct NodeOutcome {
    pub node: usize,
    pub incarnation: u64,
    pub proposal: Proposal,
    pub outcome: Outcome<SimOutput>,
}

/// When the tester's service snapshots (each becomes the replica's [`SnapshotPolicy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Snapshots {
    Never,
    /// After every this many applied entries (6.824's applierSnap uses 10).
    EveryEntries(u64),
    /// After any applied entry with probability 1/n: the fault sweep's "snapshots at random points".
    Randomly {
        one_in: u64,
    },
    /// When the Raft state reaches this many bytes: 6.824's maxraftstate, and what a deployment sets.
    RaftStateBytes(u64),
}

/// Where the simulated nodes keep their Raft state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageKind {
    /// In memory: a crash keeps exactly what was acknowledged.
    Memory,
    /// keel's `DiskStorage` (the real WAL) on a simulated disk that loses and tears unsynced writes at a crash,
    /// with segments of about this many bytes (small ones exercise rotation and compaction).
    SimulatedDisk { segment_size_bytes: u64 },
}

/// Events counted over the current virtual second, for the event budget.
#[derive(Default)]
struct EventWindow {
    start_ms: u64,
    ticks: u64,
    delivered_by_kind: [u64; KINDS],
    total: u64,
}

/// The replica the simulator runs: the real Ready loop, the tester's or the KV service, the node's storage.
type SimReplica = Replica<SimService, NodeStorage>;

struct Slot {
    /// The running replica, which holds the node's storage while it runs.
    replica: Option<SimReplica>,
    /// The node's durable state while it is down.
    stored: Option<NodeStorage>,
    /// Armed: the next persist fails, as a crash in the middle of it would.
    crash_switch: std::rc::Rc<std::cell::Cell<bool>>,
    /// Armed: the disk fails an operation of the next persist (only for a node on a simulated disk).
    io_error_switch: Option<std::rc::Rc<std::cell::Cell<bool>>>,
    /// Bumped on every crash, so ticks and messages meant for an earlier life are discarded.
    incarnation: u64,
}

impl Slot {
    fn raft(&self) -> Option<&RaftNode> {
        self.replica.as_ref().map(|r| r.node())
    }
}

pub struct Cluster {
    config: ClusterConfig,
    /// `ids[slot]`: the Raft id of the node in each slot. Slots are the tester's server numbers (0-based, as in
    /// 6.824); ids are what nodes call each other (1-based, as etcd's). Keeping them apart means no code may
    /// take one for the other.
    ids: Vec<NodeId>,
    now_ms: u64,
    rng: Rng,
    slots: Vec<Slot>,
    queue: EventQueue,
    pub net: Network,
    pub checker: ApplyChecker,
    pub(crate) invariants: Invariants,
    pub stats: Stats,
    pub trace: Trace,
    window: EventWindow,
    /// Events allowed in one virtual second ([`EVENTS_PER_VIRTUAL_SECOND_MAX`] unless a test lowers it).
    event_budget_per_virtual_second: u64,
    events_total: u64,
    started: Instant,
    /// Armed by the sweep; strikes once at its moment.
    nemesis: Option<Nemesis>,
    /// A strike whose moment came during the current event, applied as soon as that event is handled.
    strike_now: Option<(usize, Strike)>,
    /// What the run is (the sweep's shape, say), printed with every failure.
    context: String,
    /// Replies kept for very late delivery (empty unless [`Cluster::keep_late_replies`] was called).
    late_replies: LateReplies,
    /// Per node, the role, term and commit index last put on the timeline (only kept while recording).
    recorded: Vec<(Option<(keel_raft::Role, Term)>, Index)>,
    /// Outcomes of proposals, kept for the KV front end until it takes them (only with the KV service: the
    /// tester's clients learn what committed from the logs).
    outcomes: Vec<NodeOutcome>,
}

fn role_name(role: keel_raft::Role) -> &'static str {
    match role {
        keel_raft::Role::Follower => "follower",
        keel_raft::Role::PreCandidate => "pre-candidate",
        keel_raft::Role::Candidate => "candidate",
        keel_raft::Role::Leader => "leader",
    }
}

impl Cluster {
    pub fn new(config: ClusterConfig) -> Cluster {
        let n = config.nodes;
        let mut net = Network::new(n);
        net.reliable = config.reliable;
        let mut cluster = Cluster {
            ids: (1..=n as NodeId).collect(),
            now_ms: 0,
            rng: Rng::derive(config.seed, u64::MAX),
            slots: (0..n)
                .map(|slot| {
                    let disk_seed = config.seed ^ (0xd15c_0000 + slot as u64);
                    let stored = match config.storage {
                        StorageKind::Memory => NodeStorage::in_memory(disk_seed),
                        StorageKind::SimulatedDisk { segment_size_bytes } => {
                            match NodeStorage::on_simulated_disk(disk_seed, segment_size_bytes) {
                                Ok(storage) => storage,
                                Err(e) => panic!("node {slot}: {e} (seed {})", config.seed),
                            }
                        }
                    };
                    Slot {
                        replica: None,
                        crash_switch: stored.crash_switch(),
                        io_error_switch: stored.io_error_switch(),
                        stored: Some(stored),
                        incarnation: 0,
                    }
                })
                .collect(),
            queue: EventQueue::default(),
            net,
            checker: ApplyChecker::new(n),
            invariants: Invariants::new(n),
            stats: Stats { rpcs_delivered: vec![0; n], ..Stats::default() },
            trace: Trace::default(),
            window: EventWindow::default(),
            event_budget_per_virtual_second: EVENTS_PER_VIRTUAL_SECOND_MAX,
            events_total: 0,
            started: Instant::now(),
            nemesis: None,
            strike_now: None,
            context: String::new(),
            recorded: vec![(None, 0); n],
            late_replies: LateReplies::default(),
            outcomes: Vec::new(),
            config,
        };
        let seed = cluster.config.seed;
        timeline::push(|| TimelineEvent::Run { nodes: n, seed, context: String::new() });
        for i in 0..n {
            cluster.restart(i);
        }
        cluster
    }

    /// The Raft id of the node in `slot`.
    pub fn id_of(&self, slot: usize) -> NodeId {
        self.ids[slot]
    }

    /// The slot of the node with Raft id `id`, if there is one.
    pub fn slot_of(&self, id: NodeId) -> Option<usize> {
        self.ids.iter().position(|&x| x == id)
    }

    pub fn seed(&self) -> u64 {
        self.config.seed
    }
    pub fn nodes(&self) -> usize {
        self.config.nodes
    }
    pub fn now_ms(&self) -> u64 {
        self.now_ms
    }
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
    pub fn raft(&self, i: usize) -> Option<&RaftNode> {
        self.slots[i].raft()
    }
    pub fn is_alive(&self, i: usize) -> bool {
        self.slots[i].replica.is_some()
    }
    /// Node i's durable state (held by its replica while it runs).
    pub fn storage(&self, i: usize) -> &NodeStorage {
        let slot = &self.slots[i];
        match (&slot.replica, &slot.stored) {
            (Some(replica), _) => replica.storage(),
            (None, Some(stored)) => stored,
            (None, None) => unreachable!("node {i} has neither a replica nor its stored state"),
        }
    }

    /// What the nodes' simulated disks went through (all zero with in-memory storage).
    pub fn disk_counts(&self) -> DiskCounts {
        let mut total = DiskCounts::default();
        for i in 0..self.nodes() {
            total += self.storage(i).disk_counts();
        }
        total
    }

    /// (term, is_leader) of a live node.
    pub fn state(&self, i: usize) -> Option<(Term, bool)> {
        self.raft(i).map(|r| (r.term(), r.is_leader()))
    }

    // ----- Running ---------------------------------------------------------------------------------------------

    /// Processes every event due up to `until_ms`, then sets the clock there.
    pub fn run_until(&mut self, until_ms: u64) {
        self.run_events(until_ms, false);
    }

    /// Like [`Cluster::run_until`], but stops right after an event that produced a proposal outcome (the clock
    /// stays at that event), so the front end answers its client at the instant the outcome became known.
    /// Returns whether it stopped early.
    pub fn run_until_outcome(&mut self, until_ms: u64) -> bool {
        self.run_events(until_ms, true)
    }

    fn run_events(&mut self, until_ms: u64, stop_at_outcome: bool) -> bool {
        while let Some((at_ms, event)) = self.queue.pop_due(until_ms) {
            self.now_ms = at_ms;
            self.count_event(&event);
            match event {
                Event::Tick { node, incarnation } => self.tick(node, incarnation),
                Event::Deliver(delivery) => self.deliver(*delivery),
            }
            self.strike_if_due();
            if stop_at_outcome && !self.outcomes.is_empty() {
                return true;
            }
        }
        self.now_ms = self.now_ms.max(until_ms);
        false
    }

    /// Takes the proposal outcomes produced since the last call (always empty with the tester's service).
    pub fn take_outcomes(&mut self) -> Vec<NodeOutcome> {
        std::mem::take(&mut self.outcomes)
    }

    /// How many times node `i` was started or crashed: a request handled by one life is never answered by the next.
    pub fn incarnation(&self, i: usize) -> u64 {
        self.slots[i].incarnation
    }

    /// The KV service node `i` runs, if it is alive and runs one.
    pub fn kv_service(&self, i: usize) -> Option<&keel_kv::KvService> {
        match self.slots[i].replica.as_ref()?.service() {
            SimService::Kv(service) => Some(service),
            SimService::Tester(_) => None,
        }
    }

    /// The event budget: a storm of messages, or a run that never ends, is a failure to report with its seed and
    /// the message counts, never a hung test.
    fn count_event(&mut self, event: &Event) {
        if self.now_ms >= self.window.start_ms + 1000 {
            self.window = EventWindow { start_ms: self.now_ms - self.now_ms % 1000, ..EventWindow::default() };
        }
        self.window.total += 1;
        // Kept as the window fills, so the run's last virtual second counts too.
        self.stats.events_per_virtual_second_peak = self.stats.events_per_virtual_second_peak.max(self.window.total);
        match event {
            Event::Tick { .. } => self.window.ticks += 1,
            Event::Deliver(delivery) => self.window.delivered_by_kind[kind_slot(&delivery.msg.body)] += 1,
        }
        if self.window.total > self.event_budget_per_virtual_second {
            self.fail(&format!(
                "event budget: more than {} events in the virtual second from {:.3}s (a message storm): {}",
                self.event_budget_per_virtual_second,
                self.window.start_ms as f64 / 1000.0,
                self.describe_window()
            ));
        }
        self.events_total += 1;
        if self.events_total.is_multiple_of(WALL_CHECK_EVERY_EVENTS) && self.started.elapsed() > WALL_BUDGET {
            self.fail(&format!(
                "wall budget: the run took more than {} s of wall time ({} events); this virtual second: {}",
                WALL_BUDGET.as_secs(),
                self.events_total,
                self.describe_window()
            ));
        }
    }

    fn describe_window(&self) -> String {
        let mut parts = vec![format!("{} ticks", self.window.ticks)];
        for (kind, count) in KIND_NAMES.iter().zip(self.window.delivered_by_kind) {
            if count > 0 {
                parts.push(format!("{count} {kind}"));
            }
        }
        parts.join(", ")
    }

    fn tick(&mut self, i: usize, incarnation: u64) {
        let slot = &mut self.slots[i];
        let Some(replica) = slot.replica.as_mut().filter(|_| slot.incarnation == incarnation) else { return };
        if let Err(e) = replica.tick() {
            self.fail(&format!("node {i} cannot tick: {e}"));
        }
        // Not mixed into the trace hash: ticks are a fixed schedule, and whatever a tick changes shows in the
        // messages and notes that are mixed in.
        self.process_ready(i);
        self.queue.push(self.now_ms + TICK_MS, Event::Tick { node: i, incarnation });
    }

    fn deliver(&mut self, delivery: Delivery) {
        let Delivery { msg: sent, wire, to_incarnation, sent_ms } = delivery;
        let (Some(from), Some(to)) = (self.slot_of(sent.from), self.slot_of(sent.to)) else {
            self.fail(&format!("a message between unknown nodes {} -> {} was queued", sent.from, sent.to));
        };
        let alive = self.slots[to].replica.is_some() && self.slots[to].incarnation == to_incarnation;
        let arrives = alive && self.net.deliverable(from, to);
        let delivered_ms = arrives.then_some(self.now_ms);
        timeline::push(|| timeline::message(&sent, (from, to), sent_ms, delivered_ms));
        if !arrives {
            return;
        }
        let msg: Message = match postcard::from_bytes(&wire) {
            Ok(m) => m,
            Err(e) => self.fail(&format!("message from {from} to {to} does not decode: {e}")),
        };
        if msg != sent {
            self.fail(&format!("message from {from} to {to} changed on the wire"));
        }
        self.stats.messages_delivered += 1;
        self.stats.delivered_by_kind[kind_slot(&msg.body)] += 1;
        if let Some(receiver) = self.slots[to].raft() {
            count_patterns(&mut self.stats.patterns, receiver, self.slots[from].raft(), &msg);
        }
        if matches!(msg.body, keel_raft::MessageBody::InstallSnapshot { .. }) {
            self.stats.snapshots_installed += 1;
        }
        if msg.body.is_request() {
            self.stats.rpcs_delivered[to] += 1;
        } else {
            self.stats.bytes += wire.len() as u64;
        }
        self.trace.mix(self.now_ms);
        self.trace.mix_bytes(&wire);
        self.late_replies.remember(to, &msg);
        self.trace.remember(TraceLine::Delivered {
            at_ms: self.now_ms,
            from: msg.from,
            to: msg.to,
            kind: msg.body.kind(),
            term: msg.term,
        });
        let is_ack = matches!(msg.body, MessageBody::AppendEntriesReply(_) | MessageBody::InstallSnapshotReply { .. });
        let Some(replica) = self.slots[to].replica.as_mut() else { return };
        if let Err(e) = replica.step(msg) {
            // Every peer in the simulation is correct, so a refused message means a bug somewhere.
            self.fail(&format!("node {to} refused a message from {from}: {e}"));
        }
        // An answer that moves nothing produces no output, so the checks after the Ready would not see it.
        if is_ack && let Some(term) = self.raft(to).filter(|r| r.is_leader()).map(|r| r.term()) {
            self.check_match_never_regresses(to, from, term);
        }
        self.process_ready(to);
    }

    /// Runs node `i`'s replica through its Ready loop until it is quiet (persist, then send, then apply, then
    /// snapshot, all inside `Replica::advance`), sending what each step hands out and checking what each step
    /// did. Then the invariants that involve node `i` are checked, if anything happened.
    fn process_ready(&mut self, i: usize) {
        // Most ticks change only a counter. (A new leader always has a Ready: its first heartbeats.)
        if !self.slots[i].raft().is_some_and(|r| r.has_ready()) {
            return;
        }
        let mut readies = 0u32;
        let mut truncated = false;
        loop {
            let Some(replica) = self.slots[i].replica.as_mut() else { return };
            let raft = replica.node();
            let was_leader_term = raft.is_leader().then(|| raft.term());
            let commit_advanced = was_leader_term.is_some() && self.invariants.leader_committed(raft);
            let advanced = replica.advance();
            if commit_advanced {
                self.moment(i, Moment::CommitAdvanced);
            }
            let advanced = match advanced {
                Ok(Some(advanced)) => advanced,
                Ok(None) => {
                    if let Some(term) = was_leader_term {
                        match self.checker.leader_elected(term, self.id_of(i)) {
                            Ok(true) => {
                                self.trace.note(self.now_ms, format!("{i} is leader of term {term}"));
                                self.check_elected_by_majority(i);
                                self.check_leader_completeness(i);
                                self.moment(i, Moment::Elected);
                            }
                            Ok(false) => {}
                            Err(e) => self.fail(&e),
                        }
                    }
                    // At least one Ready was handled: the entry check above let only a node with output through.
                    self.check_after_event(i, truncated);
                    if timeline::is_recording() {
                        self.record_node(i);
                    }
                    return;
                }
                Err(ReplicaError::Storage { source: NodeStorageError::CrashedBeforeDurable, .. }) => {
                    // The update was handed to storage but the machine died before it was durable: it is lost,
                    // and so is everything in this Ready that depended on it (the replica handed out nothing).
                    self.note_fault(format!("{i} loses an update that was not yet durable"));
                    self.crash(i);
                    return;
                }
                Err(ReplicaError::Storage { source: NodeStorageError::InjectedIoError(e), .. }) => {
                    // Fail-stop: the node never carries on after a failed write or fdatasync; an operator (here,
                    // the schedule) restarts it from what the disk really holds.
                    self.note_fault(format!("{i}'s disk fails ({e}): its WAL stops, the node goes down"));
                    self.stats.disk_errors += 1;
                    self.crash(i);
                    return;
                }
                Err(e) => self.fail(&format!("node {i}'s replica stopped: {e}")),
            };
            readies += 1;
            if readies > READIES_PER_EVENT_MAX {
                self.fail(&format!(
                    "node {i} produced {READIES_PER_EVENT_MAX} Readies for one event without going quiet"
                ));
            }
            if advanced.persisted {
                truncated |= advanced.truncated;
                self.check_durable_matches_memory(i, advanced.snapshotted);
            }
            let early = advanced.persist_pending;
            for msg in advanced.messages {
                self.check_message_justified(i, &msg, early);
                self.send(msg);
            }
            if early && self.raft(i).is_some_and(|r| r.is_leader()) {
                self.moment(i, Moment::SentAheadOfFsync);
                // A crash strike lands now, between the send and the leader's own fsync (the next step).
                if let Some((node, strike @ (Strike::Crash | Strike::TornPersist))) = self.strike_now
                    && node == i
                {
                    self.strike_now = None;
                    self.stats.nemesis_strikes += 1;
                    self.stats.crashes_ahead_of_fsync += 1;
                    self.note_fault(format!(
                        "nemesis: {strike:?} on leader {i} after it sent entries, before its fsync"
                    ));
                    self.crash_before_next_persist(i);
                }
            }
            for apply in advanced.applied {
                self.check_apply(i, apply);
            }
            if self.config.service == ServiceKind::Kv {
                let incarnation = self.slots[i].incarnation;
                self.outcomes.extend(advanced.outcomes.into_iter().map(|(proposal, outcome)| NodeOutcome {
                    node: i,
                    incarnation,
                    proposal,
                    outcome,
                }));
            }
        }
    }

    /// The armed nemesis strikes if this is its moment (on node `i`, a leader).
    fn moment(&mut self, i: usize, moment: Moment) {
        if let Some(nemesis) = self.nemesis.filter(|n| n.moment == moment) {
            self.nemesis = None;
            self.strike_now = Some((i, nemesis.strike));
        }
    }

    /// Keeps the last replies each node receives, so a [`Strike::LateReplies`] can deliver them again.
    pub fn keep_late_replies(&mut self) {
        self.late_replies = LateReplies::enabled(self.nodes());
    }

    /// Delivers to node `i`, now, copies of the replies it received in earlier terms.
    fn deliver_late_replies(&mut self, i: usize) {
        let Some(term) = self.raft(i).map(|r| r.term()) else { return };
        let to_incarnation = self.slots[i].incarnation;
        for msg in self.late_replies.older_than(i, term) {
            let wire = match postcard::to_stdvec(&msg) {
                Ok(w) => w,
                Err(e) => self.fail(&format!("a late copy of a reply to {i} does not encode: {e}")),
            };
            self.stats.late_replies_delivered += 1;
            let sent_ms = self.now_ms;
            self.deliver(Delivery { msg, wire, to_incarnation, sent_ms });
        }
    }

    /// Lowers (or raises) the event budget; tests use it to see the budget report a storm.
    pub fn set_event_budget(&mut self, events_per_virtual_second: u64) {
        self.event_budget_per_virtual_second = events_per_virtual_second;
    }

    /// Whether a nemesis is armed and still waiting for its moment.
    pub fn nemesis_armed(&self) -> bool {
        self.nemesis.is_some()
    }

    /// Arms a nemesis (replacing any armed one); it strikes once, at its moment.
    pub fn arm_nemesis(&mut self, nemesis: Option<Nemesis>) {
        self.nemesis = nemesis;
    }

    /// Disarms the nemesis, and cancels a strike whose moment came but that has not struck yet; returns whether
    /// one had. A moment can come outside an event (an unprompted snapshot sent by the schedule, say), and its
    /// strike would otherwise land on the first event after the heal.
    pub fn disarm_nemesis(&mut self) -> bool {
        self.nemesis = None;
        self.strike_now.take().is_some()
    }

    fn strike_if_due(&mut self) {
        let Some((leader, strike)) = self.strike_now.take() else { return };
        self.stats.nemesis_strikes += 1;
        self.note_fault(format!("nemesis: {strike:?} on leader {leader}"));
        match strike {
            Strike::Crash => self.crash(leader),
            Strike::TornPersist => self.crash_before_next_persist(leader),
            Strike::Disconnect => self.disconnect(leader),
            Strike::Restart => self.restart(leader),
            Strike::CutOffFollower => {
                let n = self.nodes();
                let follower = (leader + 1 + self.rng.range(0, n as u64 - 1) as usize) % n;
                self.cut_link(leader, follower, true);
                self.cut_link(follower, leader, true);
            }
            Strike::FollowerTimesOut => {
                let n = self.nodes();
                let follower = (leader + 1 + self.rng.range(0, n as u64 - 1) as usize) % n;
                self.time_out(follower);
            }
            Strike::UnpromptedAppends => {
                for follower in 0..self.nodes() {
                    self.send_legal_append(leader, follower);
                }
            }
            Strike::LateReplies => self.deliver_late_replies(leader),
        }
    }

    pub(crate) fn send(&mut self, msg: Message) {
        let Some(from) = self.slot_of(msg.from) else {
            self.fail(&format!("a message from unknown node {}", msg.from));
        };
        let Some(to) = self.slot_of(msg.to) else {
            self.fail(&format!("node {from} sent to unknown node {}", msg.to));
        };
        let wire = match postcard::to_stdvec(&msg) {
            Ok(w) => w,
            Err(e) => self.fail(&format!("message from {from} to {to} does not encode: {e}")),
        };
        if let Some(sender) = self.slots[from].raft()
            && let Err(e) = self.invariants.on_send(from, sender, &msg)
        {
            self.fail(&e);
        }
        if matches!(msg.body, MessageBody::InstallSnapshot { .. }) {
            self.moment(from, Moment::SnapshotSent);
        }
        let is_request = msg.body.is_request();
        if is_request {
            self.stats.rpcs_sent += 1;
            self.stats.bytes += wire.len() as u64;
        }
        let sent_ms = self.now_ms;
        let fate =
            if self.net.link_up(from, to) { self.net.fate(&mut self.rng, is_request, sent_ms) } else { Fate::Drop };
        match fate {
            Fate::Drop => timeline::push(|| timeline::message(&msg, (from, to), sent_ms, None)),
            Fate::DeliverAfterMs(delay_ms, copy_delay_ms) => {
                let to_incarnation = self.slots[to].incarnation;
                if let Some(copy_delay_ms) = copy_delay_ms {
                    self.stats.duplicated += 1;
                    let copy = Delivery { msg: msg.clone(), wire: wire.clone(), to_incarnation, sent_ms };
                    self.queue.push(sent_ms + copy_delay_ms, Event::Deliver(Box::new(copy)));
                }
                let delivery = Delivery { msg, wire, to_incarnation, sent_ms };
                self.queue.push(sent_ms + delay_ms, Event::Deliver(Box::new(delivery)));
            }
        }
    }

    /// The fate of a message between a client and a node's front end (not a Raft message): the network's delays,
    /// losses and duplicates, drawn from the run's generator so that one seed decides every message.
    pub fn client_message_fate(&mut self, is_request: bool) -> Fate {
        self.net.fate(&mut self.rng, is_request, self.now_ms)
    }

    /// Checks what node `i`'s replica applied (6.824's checkLogs): every command against every other server's at
    /// that index, in order and without gaps; every snapshot against the commands it claims to fold.
    fn check_apply(&mut self, i: usize, apply: Apply) {
        match apply {
            Apply::Command { index, data, .. } => {
                if let Err(e) = self.checker.apply_command(i, index, &data) {
                    self.fail(&e);
                }
            }
            Apply::Snapshot(snapshot) if self.config.service == ServiceKind::Kv => {
                // The KV image is the service's to read (it refuses a bad one and the replica stops); its
                // contents are checked through the clients' histories instead.
                if let Err(e) = self.checker.apply_opaque_snapshot(i, snapshot.meta.index) {
                    self.fail(&e);
                }
            }
            Apply::Snapshot(snapshot) => {
                let (index, commands) = match postcard::from_bytes::<SnapshotImage>(&snapshot.data) {
                    Ok(image) => image,
                    Err(e) => self.fail(&format!("server {i}: snapshot {} does not decode: {e}", snapshot.meta.index)),
                };
                if index != snapshot.meta.index {
                    self.fail(&format!("server {i}: snapshot claims index {index}, Raft says {}", snapshot.meta.index));
                }
                if let Err(e) = self.checker.apply_snapshot(i, index, commands) {
                    self.fail(&e);
                }
            }
        }
    }

    // ----- Client and fault control ----------------------------------------------------------------------------

    /// `Start(command)` on node i: Some((index, term)) if it is alive and leads.
    pub fn propose(&mut self, i: usize, command: Vec<u8>) -> Option<(Index, Term)> {
        let result = match self.slots[i].replica.as_mut()?.propose(command) {
            Ok(proposed) => proposed.ok().map(|p| (p.index, p.term)),
            Err(e) => self.fail(&format!("node {i} cannot take a proposal: {e}")),
        };
        self.process_ready(i);
        if result.is_some() && self.raft(i).is_some_and(|r| r.is_leader() && r.log().last_index() > r.commit_index()) {
            self.moment(i, Moment::Uncommitted);
        }
        self.strike_if_due();
        result
    }

    /// Node i's election timer fires now: ticks it until it campaigns (or asks for PreVotes).
    pub fn time_out(&mut self, i: usize) {
        let Some(replica) = self.slots[i].replica.as_mut() else { return };
        let ticks_max = replica.node().config().election_timeout_ticks_max;
        for _ in 0..ticks_max {
            if replica.node().role() != keel_raft::Role::Follower {
                break;
            }
            if let Err(e) = replica.tick() {
                self.fail(&format!("node {i} cannot tick: {e}"));
            }
        }
        self.note_fault(format!("{i} times out"));
        self.process_ready(i);
    }

    /// Kills node i: volatile state and anything not yet durable is lost; in-flight messages to it are lost.
    pub fn crash(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.crash_switch.set(false);
        if let Some(replica) = slot.replica.take() {
            // Outcomes of proposals die with the node: the tester's clients learn them from the logs.
            let mut storage = replica.stop().storage;
            if storage.on_disk() {
                // What survives on the disk is the disk's to choose, from the run's generator (drawn only for
                // disks, so runs in memory stay as they were).
                storage.power_loss(self.rng.next_u64());
            }
            slot.stored = Some(storage);
            slot.incarnation += 1;
            self.trace.note(self.now_ms, format!("crash {i}"));
            let at_ms = self.now_ms;
            timeline::push(|| TimelineEvent::Crash { at_ms, node: i });
            self.recorded[i] = (None, 0);
        }
    }

    /// Arms a crash of node i at its next persist, before that persist becomes durable.
    pub fn crash_before_next_persist(&mut self, i: usize) {
        if self.slots[i].replica.is_some() {
            self.slots[i].crash_switch.set(true);
        }
    }

    /// Arms an I/O error of node i's disk at its next persist (a failed write or fdatasync): the WAL stops
    /// (fail-stop) and the node restarts from what its disk really holds. Returns false (and does nothing) for a
    /// node in memory.
    pub fn disk_error_at_next_persist(&mut self, i: usize) -> bool {
        match (&self.slots[i].replica, &self.slots[i].io_error_switch) {
            (Some(_), Some(switch)) => {
                switch.set(true);
                true
            }
            _ => false,
        }
    }

    /// Disarms every pending crash-before-durable and disk error (the fault schedule is over); returns how many
    /// were armed.
    pub fn cancel_pending_crashes(&mut self) -> u32 {
        let mut armed = 0;
        for slot in &mut self.slots {
            armed += u32::from(slot.crash_switch.replace(false));
            armed += slot.io_error_switch.as_ref().map_or(0, |s| u32::from(s.replace(false)));
        }
        armed
    }

    /// Crashes node i (if alive) and starts a fresh instance from its durable state alone.
    pub fn restart(&mut self, i: usize) {
        self.crash(i);
        let slot = &mut self.slots[i];
        slot.incarnation += 1;
        let members = self.ids.clone();
        let seed = self.config.seed ^ (slot.incarnation << 32);
        let mut config = Config::new(self.ids[i], members, seed);
        self.config.raft.apply_to(&mut config);
        let policy = match self.config.snapshots {
            Snapshots::Randomly { one_in } => {
                SnapshotPolicy::Randomly { one_in, rng: Rng::derive(seed, 0x5a4_5407 ^ i as u64) }
            }
            Snapshots::EveryEntries(interval) => SnapshotPolicy::EveryEntries(interval),
            Snapshots::RaftStateBytes(bytes) => SnapshotPolicy::RaftStateBytes(bytes),
            Snapshots::Never => SnapshotPolicy::Never,
        };
        let Some(mut storage) = slot.stored.take() else {
            unreachable!("node {i} was just crashed, so its storage is back in its slot")
        };
        if let Err(e) = storage.recover() {
            self.fail(&format!("node {i} cannot restart: {e}"));
        }
        match Replica::open(config, SimService::new(self.config.service), storage, policy) {
            Ok(replica) => slot.replica = Some(replica),
            Err(e) => self.fail(&format!("node {i} cannot restart from its durable state: {e}")),
        }
        let incarnation = self.slots[i].incarnation;
        self.checker.restart(i);
        self.trace.note(self.now_ms, format!("start {i} (incarnation {incarnation})"));
        let at_ms = self.now_ms;
        timeline::push(|| TimelineEvent::Start { at_ms, node: i });
        if timeline::is_recording() {
            self.record_node(i);
        }
        // A random phase keeps the nodes' ticks from marching in lockstep.
        let phase = self.rng.range(1, TICK_MS + 1);
        self.queue.push(self.now_ms + phase, Event::Tick { node: i, incarnation });
        self.process_ready(i);
    }

    pub fn connect(&mut self, i: usize) {
        self.net.set_connected(i, true);
        self.note_fault(format!("connect {i}"));
    }

    pub fn disconnect(&mut self, i: usize) {
        self.net.set_connected(i, false);
        self.note_fault(format!("disconnect {i}"));
    }

    pub fn partition(&mut self, groups: &[u32]) {
        self.net.set_partition(groups);
        self.note_fault(format!("partition {groups:?}"));
    }

    pub fn set_reliable(&mut self, reliable: bool) {
        self.net.reliable = reliable;
        self.note_fault(format!("reliable = {reliable}"));
    }

    pub fn set_long_reordering(&mut self, on: bool) {
        self.net.long_reordering = on;
        self.note_fault(format!("long reordering = {on}"));
    }

    /// Cuts (or restores) the one-way link `from -> to`: `to` stops hearing `from`.
    pub fn cut_link(&mut self, from: usize, to: usize, cut: bool) {
        self.net.set_cut(from, to, cut);
        self.note_fault(format!("link {from} -> {to} {}", if cut { "cut" } else { "restored" }));
    }

    pub fn clear_cuts(&mut self) {
        self.net.clear_cuts();
        self.note_fault("every one-way link restored".into());
    }

    /// Most messages are lost for the next `ms` of virtual time.
    pub fn loss_burst(&mut self, ms: u64) {
        self.net.loss_burst_until_ms = self.now_ms + ms;
        self.note_fault(format!("burst of loss for {ms} ms"));
    }

    /// A fault or notable event in words: into the trace, and into the timeline if one is recorded.
    pub(crate) fn note_fault(&mut self, what: String) {
        let at_ms = self.now_ms;
        timeline::push(|| TimelineEvent::Fault { at_ms, what: what.clone() });
        self.trace.note(at_ms, what);
    }

    /// Sets what the run is (printed with every failure and shown on its timeline).
    pub fn set_context(&mut self, context: String) {
        let (nodes, seed) = (self.nodes(), self.seed());
        timeline::push(|| TimelineEvent::Run { nodes, seed, context: context.clone() });
        self.context = context;
    }

    /// Records node `i`'s role, term and commit index on the timeline when they changed.
    fn record_node(&mut self, i: usize) {
        let Some(raft) = self.raft(i) else { return };
        let (role, term, commit) = (raft.role(), raft.term(), raft.commit_index());
        let at_ms = self.now_ms;
        if self.recorded[i].0 != Some((role, term)) {
            timeline::push(|| TimelineEvent::Role { at_ms, node: i, role: role_name(role), term });
        }
        if self.recorded[i].1 < commit {
            timeline::push(|| TimelineEvent::Commit { at_ms, node: i, index: commit });
        }
        self.recorded[i] = (Some((role, term)), commit);
    }

    /// Live nodes that believe they lead, with their terms.
    pub fn leader_terms(&self) -> Vec<(usize, Term)> {
        (0..self.nodes()).filter_map(|i| self.raft(i).filter(|r| r.is_leader()).map(|r| (i, r.term()))).collect()
    }

    /// One line per node: what a reader of the Raft paper wants to know at a glance.
    pub fn describe_nodes(&self) -> String {
        let mut out = String::new();
        for i in 0..self.nodes() {
            let link = if self.net.is_connected(i) { "connected" } else { "disconnected" };
            let line = match self.raft(i) {
                None => format!("    {i}: crashed, {link}\n"),
                Some(r) => format!(
                    "    {i}: {:?} term {} voted {:?}, log {}..={} (last term {}), commit {}, applied {} (checker {}), {link}\n",
                    r.role(),
                    r.term(),
                    r.voted_for(),
                    r.log().first_index(),
                    r.log().last_index(),
                    r.log().last_term(),
                    r.commit_index(),
                    r.applied_index(),
                    self.checker.last_applied(i),
                ),
            };
            out.push_str(&line);
        }
        out
    }

    /// Every node's line, then the one-way links that are cut (a node that cannot hear its leader is otherwise
    /// a mystery in a report).
    fn describe_links(&self) -> String {
        let mut out = self.describe_nodes();
        let cuts = self.net.cuts();
        if !cuts.is_empty() {
            let cuts: Vec<String> = cuts.iter().map(|(from, to)| format!("{from} -> {to}")).collect();
            out.push_str(&format!("    one-way links cut: {}\n", cuts.join(", ")));
        }
        out
    }

    /// Stops the run with a report a reader can act on: what went wrong, the seed, how to replay it, and the last
    /// events before it.
    pub fn fail(&self, what: &str) -> ! {
        let at_ms = self.now_ms;
        timeline::push(|| TimelineEvent::Violation { at_ms, what: what.to_string() });
        let test = std::thread::current().name().unwrap_or("<test name>").to_string();
        let test = test.rsplit("::").next().unwrap_or(&test).to_string();
        panic!(
            "\n{what}\n  at virtual time {:.3}s, seed {seed}{}\n  replay: KEEL_SEED={seed} cargo test --profile ci -p keel-sim -- {test} --exact\n  nodes:\n{}  last events:\n{}",
            self.now_ms as f64 / 1000.0,
            if self.context.is_empty() { String::new() } else { format!("\n  run: {}", self.context) },
            self.describe_links(),
            self.trace.render_recent(),
            seed = self.config.seed,
        );
    }
}
