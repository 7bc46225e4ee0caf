//! The deterministic cluster: N Raft cores driven by one virtual clock, one seeded generator and one message queue.
//!
//! The cluster is the simulator's driver: it follows the core's persistence contract (persist, then send, then
//! apply), runs the safety checkers on every applied entry, and models faults: disconnects, partitions, unreliable
//! links, long reordering, crashes that lose everything not yet durable, and restarts from durable state.
use keel_raft::{Apply, Config, Index, Message, NodeId, RaftNode, Ready, Rng, Storage, Term};

use crate::checker::ApplyChecker;
use crate::event_queue::{Event, EventQueue};
use crate::network::{Fate, Network};
use crate::storage::MemStorage;
use crate::trace::{Trace, TraceLine};

/// Virtual milliseconds per core tick.
pub const TICK_MS: u64 = 10;

/// Optional Raft extensions the simulated nodes run with (both off: the paper's Figure 2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RaftOptions {
    pub pre_vote: bool,
    pub check_quorum: bool,
}

#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub nodes: usize,
    pub seed: u64,
    pub reliable: bool,
    /// Take a service snapshot after every this many applied entries (6.824's applierSnap uses 10).
    pub snapshot_interval: Option<u64>,
    /// Instead of every `snapshot_interval`-th entry, snapshot after any applied entry with probability
    /// 1/`snapshot_interval` (the fault sweep's "snapshots at random points").
    pub random_snapshots: bool,
    pub raft: RaftOptions,
}

/// Message and byte counters, with labrpc's meanings.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Requests (RequestVote, AppendEntries, InstallSnapshot) delivered to each node.
    pub rpcs_delivered: Vec<u64>,
    /// Requests sent, delivered or not.
    pub rpcs_sent: u64,
    /// Request bytes at send plus reply bytes at delivery.
    pub bytes: u64,
    pub messages_delivered: u64,
    /// InstallSnapshot requests delivered: how often a follower was caught up from a snapshot.
    pub snapshots_installed: u64,
    /// Leaders elected in a term at or below a term that had already committed entries (a delayed vote).
    pub leaders_elected_behind_a_commit: u64,
}

struct Slot {
    raft: Option<RaftNode>,
    /// Crash this node the next time it hands state to storage, before that state is durable.
    crash_before_durable: bool,
    /// Bumped on every crash, so ticks and messages meant for an earlier life are discarded.
    incarnation: u64,
    storage: MemStorage,
}

pub struct Cluster {
    config: ClusterConfig,
    now_ms: u64,
    rng: Rng,
    slots: Vec<Slot>,
    queue: EventQueue,
    pub net: Network,
    pub checker: ApplyChecker,
    pub stats: Stats,
    pub trace: Trace,
}

/// The service state the tester's snapshot applier stores: the index and every command through it.
type SnapshotImage = (Index, Vec<Vec<u8>>);

impl Cluster {
    pub fn new(config: ClusterConfig) -> Cluster {
        let n = config.nodes;
        let mut net = Network::new(n);
        net.reliable = config.reliable;
        let mut cluster = Cluster {
            now_ms: 0,
            rng: Rng::derive(config.seed, u64::MAX),
            slots: (0..n)
                .map(|_| Slot {
                    raft: None,
                    crash_before_durable: false,
                    incarnation: 0,
                    storage: MemStorage::default(),
                })
                .collect(),
            queue: EventQueue::default(),
            net,
            checker: ApplyChecker::new(n),
            stats: Stats { rpcs_delivered: vec![0; n], ..Stats::default() },
            trace: Trace::default(),
            config,
        };
        for i in 0..n {
            cluster.restart(i);
        }
        cluster
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
        self.slots[i].raft.as_ref()
    }
    pub fn is_alive(&self, i: usize) -> bool {
        self.slots[i].raft.is_some()
    }
    pub fn storage(&self, i: usize) -> &MemStorage {
        &self.slots[i].storage
    }

    /// (term, is_leader) of a live node.
    pub fn state(&self, i: usize) -> Option<(Term, bool)> {
        self.raft(i).map(|r| (r.term(), r.is_leader()))
    }

    // ----- Running ---------------------------------------------------------------------------------------------

    /// Processes every event due up to `until_ms`, then sets the clock there.
    pub fn run_until(&mut self, until_ms: u64) {
        while let Some((at_ms, event)) = self.queue.pop_due(until_ms) {
            self.now_ms = at_ms;
            match event {
                Event::Tick { node, incarnation } => self.tick(node, incarnation),
                Event::Deliver { msg, wire, to_incarnation } => self.deliver(msg, wire, to_incarnation),
            }
        }
        self.now_ms = self.now_ms.max(until_ms);
    }

    fn tick(&mut self, i: usize, incarnation: u64) {
        let slot = &mut self.slots[i];
        let Some(raft) = slot.raft.as_mut().filter(|_| slot.incarnation == incarnation) else { return };
        raft.tick();
        self.trace.mix(self.now_ms);
        self.trace.mix(i as u64);
        self.process_ready(i);
        self.queue.push(self.now_ms + TICK_MS, Event::Tick { node: i, incarnation });
    }

    fn deliver(&mut self, sent: Message, wire: Vec<u8>, to_incarnation: u64) {
        let (from, to) = (sent.from as usize, sent.to as usize);
        let alive = self.slots[to].raft.is_some() && self.slots[to].incarnation == to_incarnation;
        if !alive || !self.net.link_up(from, to) {
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
        self.trace.remember(TraceLine::Delivered {
            at_ms: self.now_ms,
            from: msg.from,
            to: msg.to,
            kind: msg.body.kind(),
            term: msg.term,
        });
        let Some(raft) = self.slots[to].raft.as_mut() else { return };
        if let Err(e) = raft.step(msg) {
            // Every peer in the simulation is correct, so a refused message means a bug somewhere.
            self.fail(&format!("node {to} refused a message from {from}: {e}"));
        }
        self.process_ready(to);
    }

    /// Follows the persistence contract for everything node `i` produced: persist, then send, then apply. Applying
    /// may call back into the node (snapshots), which can produce more output, so this loops until quiet.
    fn process_ready(&mut self, i: usize) {
        loop {
            let Some(raft) = self.slots[i].raft.as_mut() else { return };
            let was_leader_term = raft.is_leader().then(|| raft.term());
            if let Some(term) = was_leader_term {
                self.checker.leader_committed(term, raft.commit_index());
            }
            let ready: Ready = raft.take_ready();
            if ready.is_empty() {
                if let Some(term) = was_leader_term {
                    match self.checker.leader_elected(term, i as NodeId) {
                        Ok(true) => {
                            self.trace.note(self.now_ms, format!("{i} is leader of term {term}"));
                            self.check_leader_completeness(i);
                        }
                        Ok(false) => {}
                        Err(e) => self.fail(&e),
                    }
                }
                return;
            }
            if let Some(update) = &ready.persist {
                if self.slots[i].crash_before_durable {
                    // The update was handed to storage but the machine died before it was durable: it is lost,
                    // and so is everything in this Ready that depended on it.
                    self.slots[i].crash_before_durable = false;
                    self.trace.note(self.now_ms, format!("{i} loses an update that was not yet durable"));
                    self.crash(i);
                    return;
                }
                let Ok(()) = self.slots[i].storage.persist(update);
                self.check_durable_matches_memory(i);
            }
            for msg in ready.messages {
                self.send(msg);
            }
            for apply in ready.applies {
                self.apply(i, apply);
            }
        }
    }

    fn send(&mut self, msg: Message) {
        let (from, to) = (msg.from as usize, msg.to as usize);
        if to >= self.slots.len() {
            self.fail(&format!("node {from} sent to unknown node {to}"));
        }
        let wire = match postcard::to_stdvec(&msg) {
            Ok(w) => w,
            Err(e) => self.fail(&format!("message from {from} to {to} does not encode: {e}")),
        };
        let is_request = msg.body.is_request();
        if is_request {
            self.stats.rpcs_sent += 1;
            self.stats.bytes += wire.len() as u64;
        }
        if !self.net.link_up(from, to) {
            return;
        }
        if let Fate::DeliverAfterMs(delay_ms) = self.net.fate(&mut self.rng, is_request) {
            let to_incarnation = self.slots[to].incarnation;
            self.queue.push(self.now_ms + delay_ms, Event::Deliver { msg, wire, to_incarnation });
        }
    }

    /// The tester's service: checks every command (6.824's checkLogs) and, in snapshot mode, snapshots every
    /// `snapshot_interval` entries from inside the apply loop, as 6.824's applierSnap does.
    fn apply(&mut self, i: usize, apply: Apply) {
        match apply {
            Apply::Command { index, data, .. } => {
                if let Err(e) = self.checker.apply_command(i, index, &data) {
                    self.fail(&e);
                }
                let snapshot_now = match self.config.snapshot_interval {
                    Some(interval) if self.config.random_snapshots => self.rng.chance(1, interval),
                    Some(interval) => (index + 1) % interval == 0,
                    None => false,
                };
                if snapshot_now {
                    let Some(commands) = self.checker.applied_prefix(i, index) else {
                        self.fail(&format!("server {i} cannot snapshot at {index}: its applied prefix has a gap"));
                    };
                    let image: SnapshotImage = (index, commands);
                    let data = postcard::to_stdvec(&image).unwrap_or_default();
                    if let Some(raft) = self.slots[i].raft.as_mut()
                        && let Err(e) = raft.snapshot(index, data)
                    {
                        self.fail(&format!("server {i}: snapshot({index}) refused: {e}"));
                    }
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
        let result = self.slots[i].raft.as_mut()?.propose(command).ok();
        self.process_ready(i);
        result
    }

    /// Kills node i: volatile state and anything not yet durable is lost; in-flight messages to it are lost.
    pub fn crash(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        slot.crash_before_durable = false;
        if slot.raft.take().is_some() {
            slot.incarnation += 1;
            self.trace.note(self.now_ms, format!("crash {i}"));
        }
    }

    /// Arms a crash of node i at its next persist, before that persist becomes durable.
    pub fn crash_before_next_persist(&mut self, i: usize) {
        if self.slots[i].raft.is_some() {
            self.slots[i].crash_before_durable = true;
        }
    }

    /// Disarms every pending crash-before-durable (the fault schedule is over); returns how many were armed.
    pub fn cancel_pending_crashes(&mut self) -> u32 {
        let mut armed = 0;
        for slot in &mut self.slots {
            armed += u32::from(std::mem::take(&mut slot.crash_before_durable));
        }
        armed
    }

    /// Crashes node i (if alive) and starts a fresh instance from its durable state alone.
    pub fn restart(&mut self, i: usize) {
        self.crash(i);
        let slot = &mut self.slots[i];
        slot.incarnation += 1;
        let members: Vec<NodeId> = (0..self.config.nodes as NodeId).collect();
        let seed = self.config.seed ^ (slot.incarnation << 32);
        let durable = match slot.storage.load() {
            Ok(d) => d,
            Err(e) => match e {},
        };
        let mut config = Config::new(i as NodeId, members, seed);
        config.pre_vote = self.config.raft.pre_vote;
        config.check_quorum = self.config.raft.check_quorum;
        match RaftNode::restart(config, durable) {
            Ok(raft) => slot.raft = Some(raft),
            Err(e) => self.fail(&format!("node {i} cannot restart from its durable state: {e}")),
        }
        let incarnation = self.slots[i].incarnation;
        self.checker.restart(i);
        self.trace.note(self.now_ms, format!("start {i} (incarnation {incarnation})"));
        // A random phase keeps the nodes' ticks from marching in lockstep.
        let phase = self.rng.range(1, TICK_MS + 1);
        self.queue.push(self.now_ms + phase, Event::Tick { node: i, incarnation });
        self.process_ready(i);
    }

    pub fn connect(&mut self, i: usize) {
        self.net.set_connected(i, true);
        self.trace.note(self.now_ms, format!("connect {i}"));
    }

    pub fn disconnect(&mut self, i: usize) {
        self.net.set_connected(i, false);
        self.trace.note(self.now_ms, format!("disconnect {i}"));
    }

    pub fn partition(&mut self, groups: &[u32]) {
        self.net.set_partition(groups);
        self.trace.note(self.now_ms, format!("partition {groups:?}"));
    }

    pub fn set_reliable(&mut self, reliable: bool) {
        self.net.reliable = reliable;
        self.trace.note(self.now_ms, format!("reliable = {reliable}"));
    }

    pub fn set_long_reordering(&mut self, on: bool) {
        self.net.long_reordering = on;
        self.trace.note(self.now_ms, format!("long reordering = {on}"));
    }

    /// Live nodes that believe they lead, with their terms.
    pub fn leader_terms(&self) -> Vec<(usize, Term)> {
        (0..self.nodes()).filter_map(|i| self.raft(i).filter(|r| r.is_leader()).map(|r| (i, r.term()))).collect()
    }

    // ----- Safety properties beyond the per-apply checks ---------------------------------------------------------

    /// The persistence contract, checked from the storage side: once a Ready's update is durable (and before its
    /// messages leave), durable term, vote and log tail equal the node's in-memory state. A change the core forgot
    /// to mark for persistence (say, a vote) shows up here in any run, not only when a crash happens to hit it.
    fn check_durable_matches_memory(&self, i: usize) {
        let Some(raft) = self.raft(i) else { return };
        let durable = self.slots[i].storage.state();
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
        if durable_last != memory_last || durable_snapshot != raft.log().snapshot_meta() {
            self.fail(&format!(
                "persistence contract: node {i} log ends at {memory_last:?} (snapshot {:?}) but durable log ends at {durable_last:?} (snapshot {durable_snapshot:?})",
                raft.log().snapshot_meta()
            ));
        }
    }

    /// Leader Completeness: a new leader of term L holds every entry committed in a term before L (above its
    /// snapshot). Entries committed in L or later bind only later leaders: a long-delayed vote can still elect a
    /// leader of an old term after a newer leader committed more.
    fn check_leader_completeness(&mut self, leader: usize) {
        let Some(term) = self.raft(leader).map(|r| r.term()) else { return };
        let newest_commit_term = self.checker.committed_in(self.checker.max_index).unwrap_or(0);
        if newest_commit_term >= term {
            self.stats.leaders_elected_behind_a_commit += 1;
        }
        let Some(raft) = self.raft(leader) else { return };
        let log = raft.log();
        for index in log.first_index()..=self.checker.max_index {
            if self.checker.committed_in(index).is_none_or(|committed_in| committed_in >= term) {
                continue;
            }
            let Ok((_, Some(command))) = self.checker.n_committed(index) else { continue };
            match log.entry(index) {
                Some(entry) if entry.data == command => {}
                Some(_) => self.fail(&format!(
                    "leader completeness: new leader {leader} (term {term}) holds a different entry at index {index}, committed in term {:?}",
                    self.checker.committed_in(index)
                )),
                None => self.fail(&format!(
                    "leader completeness: new leader {leader} (term {term}) lacks index {index}, committed in term {:?} (its last index is {})",
                    self.checker.committed_in(index),
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

    /// Stops the run with a report a reader can act on: what went wrong, the seed, how to replay it, and the last
    /// events before it.
    pub fn fail(&self, what: &str) -> ! {
        let test = std::thread::current().name().unwrap_or("<test name>").to_string();
        let test = test.rsplit("::").next().unwrap_or(&test).to_string();
        panic!(
            "\n{what}\n  at virtual time {:.3}s, seed {seed}\n  replay: KEEL_SEED={seed} cargo test --release -p keel-sim -- {test} --exact\n  nodes:\n{}  last events:\n{}",
            self.now_ms as f64 / 1000.0,
            self.describe_nodes(),
            self.trace.render_recent(),
            seed = self.config.seed,
        );
    }
}
