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

#[derive(Clone, Debug)]
pub struct ClusterConfig {
    pub nodes: usize,
    pub seed: u64,
    pub reliable: bool,
    /// Take a service snapshot after every this many applied entries (6.824's applierSnap uses 10).
    pub snapshot_interval: Option<u64>,
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
    /// Deliveries per message kind, and AppendEntries rejections.
    pub delivered_by_kind: std::collections::BTreeMap<&'static str, u64>,
    pub append_rejections: u64,
}

struct Slot {
    raft: Option<RaftNode>,
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
            slots: (0..n).map(|_| Slot { raft: None, incarnation: 0, storage: MemStorage::default() }).collect(),
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
    pub fn pending_events(&self) -> usize {
        self.queue.len()
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
        *self.stats.delivered_by_kind.entry(msg.body.kind()).or_default() += 1;
        if matches!(msg.body, keel_raft::MessageBody::AppendEntriesReply(keel_raft::AppendReply::Reject { .. })) {
            self.stats.append_rejections += 1;
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
            let ready: Ready = raft.take_ready();
            if ready.is_empty() {
                if let Some(term) = was_leader_term {
                    match self.checker.leader_elected(term, i as NodeId) {
                        Ok(true) => self.trace.note(self.now_ms, format!("{i} is leader of term {term}")),
                        Ok(false) => {}
                        Err(e) => self.fail(&e),
                    }
                }
                return;
            }
            if let Some(update) = &ready.persist {
                let Ok(()) = self.slots[i].storage.persist(update);
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
                if let Some(interval) = self.config.snapshot_interval
                    && (index + 1) % interval == 0
                {
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
        if slot.raft.take().is_some() {
            slot.incarnation += 1;
            self.trace.note(self.now_ms, format!("crash {i}"));
        }
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
        match RaftNode::restart(Config::new(i as NodeId, members, seed), durable) {
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

    /// Stops the run with a report a reader can act on: what went wrong, the seed, how to replay it, and the last
    /// events before it.
    pub fn fail(&self, what: &str) -> ! {
        let test = std::thread::current().name().unwrap_or("<test name>").to_string();
        let test = test.rsplit("::").next().unwrap_or(&test).to_string();
        panic!(
            "\n{what}\n  at virtual time {:.3}s, seed {seed}\n  replay: KEEL_SEED={seed} cargo test --release -p keel-sim -- {test} --exact\n  last events:\n{}",
            self.now_ms as f64 / 1000.0,
            self.trace.render_recent(),
            seed = self.config.seed,
        );
    }
}
