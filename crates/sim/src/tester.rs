//! The 6.824 tester API (config.go), over the deterministic cluster, in virtual time.
use std::collections::BTreeMap;

use keel_raft::{Index, Rng, Term};

use crate::cluster::{Cluster, ClusterConfig, RaftOptions, Snapshots, StorageKind};
use crate::tasks::{One, Poll, Task, TaskResult};

/// 6.824's RaftElectionTimeout: "generous", used for the tests' sleeps.
pub const ELECTION_TIMEOUT_MS: u64 = 1000;
/// Every test must finish within this much virtual time, as in 6.824.
pub const TEST_LIMIT_MS: u64 = 120_000;
/// 6.824's MAXLOGSIZE: persisted Raft state (without the snapshot) must stay below this in the 2D tests.
pub const MAX_LOG_SIZE_BYTES: usize = 2000;
/// 6.824's SnapShotInterval.
pub const SNAPSHOT_INTERVAL: u64 = 10;

/// What a tester runs with: the seed, the options its Raft nodes get, and whether `end` prints its summary.
#[derive(Clone, Copy, Debug)]
pub struct TesterConfig {
    pub seed: u64,
    pub raft: RaftOptions,
    /// `Tester::end` prints nothing (the benchmark runs the catalogue and wants a clean report).
    pub quiet: bool,
}

impl TesterConfig {
    /// Figure 2 as written (no PreVote, no CheckQuorum), printing summaries: 6.824's setting.
    pub fn figure_2(seed: u64) -> TesterConfig {
        TesterConfig { seed, raft: RaftOptions::FIGURE_2, quiet: false }
    }

    /// The same seed with other Raft options.
    pub fn with_raft(self, raft: RaftOptions) -> TesterConfig {
        TesterConfig { raft, ..self }
    }
}

/// The tester's integer commands travel as 8 little-endian bytes.
pub fn u64_command(x: u64) -> Vec<u8> {
    x.to_le_bytes().to_vec()
}

pub type TaskId = usize;

struct TaskSlot {
    wake_ms: u64,
    task: Option<Box<dyn Task>>,
    result: Option<TaskResult>,
}

pub struct Tester {
    pub cluster: Cluster,
    rng: Rng,
    start_ms: u64,
    tasks: Vec<TaskSlot>,
    clients_stopped: bool,
    quiet: bool,
    description: String,
    rpcs_at_begin: u64,
    bytes_at_begin: u64,
    max_index_at_begin: Index,
}

impl Tester {
    /// 6.824's make_config: `servers` nodes, all started and connected.
    pub fn new(config: &TesterConfig, servers: usize, unreliable: bool, snapshot: bool) -> Tester {
        let seed = config.seed;
        let cluster = Cluster::new(ClusterConfig {
            nodes: servers,
            seed,
            reliable: !unreliable,
            snapshots: if snapshot { Snapshots::EveryEntries(SNAPSHOT_INTERVAL) } else { Snapshots::Never },
            raft: config.raft,
            storage: StorageKind::Memory,
            service: crate::sim_service::ServiceKind::Tester,
        });
        Tester {
            cluster,
            rng: Rng::derive(seed, 1),
            start_ms: 0,
            tasks: Vec::new(),
            clients_stopped: false,
            quiet: config.quiet,
            description: String::new(),
            rpcs_at_begin: 0,
            bytes_at_begin: 0,
            max_index_at_begin: 0,
        }
    }

    pub fn begin(&mut self, description: &str) {
        self.description = description.to_string();
        self.start_ms = self.now_ms();
        self.rpcs_at_begin = self.rpc_total();
        self.bytes_at_begin = self.bytes_total();
        self.max_index_at_begin = self.cluster.checker.max_index;
    }

    /// 6.824's end(): checks the time limit and prints the summary line.
    pub fn end(&mut self) {
        self.check_timeout();
        if self.quiet {
            return;
        }
        println!(
            "  {} ... Passed -- {:.1}s virtual, {} peers, {} rpcs, {} bytes, {} agreements (seed {})",
            self.description,
            (self.now_ms() - self.start_ms) as f64 / 1000.0,
            self.servers(),
            self.rpc_total() - self.rpcs_at_begin,
            self.bytes_total() - self.bytes_at_begin,
            self.cluster.checker.max_index - self.max_index_at_begin,
            self.cluster.seed(),
        );
    }

    pub fn fail(&self, what: &str) -> ! {
        self.cluster.fail(&format!("{}: {what}", self.description))
    }

    pub fn now_ms(&self) -> u64 {
        self.cluster.now_ms()
    }
    pub fn servers(&self) -> usize {
        self.cluster.nodes()
    }
    pub fn rand_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
    pub fn rand_range(&mut self, lo: u64, hi: u64) -> u64 {
        self.rng.range(lo, hi)
    }
    /// A random command value, like 6.824's `rand.Int()` (kept below 2^31 so it reads well in reports).
    pub fn random_command(&mut self) -> u64 {
        self.rng.next_u64() >> 33
    }
    pub fn is_connected(&self, i: usize) -> bool {
        self.cluster.net.is_connected(i)
    }
    pub fn is_alive(&self, i: usize) -> bool {
        self.cluster.is_alive(i)
    }

    fn check_timeout(&self) {
        if self.now_ms() - self.start_ms > TEST_LIMIT_MS {
            self.fail("test took longer than 120 seconds");
        }
    }

    // ----- Time and tasks --------------------------------------------------------------------------------------

    /// Lets `ms` of virtual time pass, running background tasks as they come due.
    pub fn sleep_ms(&mut self, ms: u64) {
        let target = self.now_ms() + ms;
        loop {
            let next_wake = self.tasks.iter().filter(|s| s.task.is_some()).map(|s| s.wake_ms).min();
            let until = next_wake.map_or(target, |w| w.min(target));
            self.cluster.run_until(until);
            self.poll_due_tasks();
            if self.now_ms() >= target {
                break;
            }
        }
        self.check_timeout();
    }

    fn poll_due_tasks(&mut self) {
        let now = self.now_ms();
        for id in 0..self.tasks.len() {
            if self.tasks[id].wake_ms > now {
                continue;
            }
            let Some(mut task) = self.tasks[id].task.take() else { continue };
            match task.poll(self) {
                Poll::SleepMs(ms) => {
                    self.tasks[id].wake_ms = now + ms.max(1);
                    self.tasks[id].task = Some(task);
                }
                Poll::Done(result) => self.tasks[id].result = Some(result),
            }
        }
    }

    /// Starts a background task (a goroutine in the 6.824 tests); it first runs now.
    pub fn spawn(&mut self, task: Box<dyn Task>) -> TaskId {
        let wake_ms = self.now_ms();
        self.tasks.push(TaskSlot { wake_ms, task: Some(task), result: None });
        let id = self.tasks.len() - 1;
        self.poll_due_tasks();
        id
    }

    /// Runs until task `id` finishes and returns its result.
    pub fn join(&mut self, id: TaskId) -> TaskResult {
        loop {
            if let Some(result) = self.tasks[id].result.take() {
                return result;
            }
            let wait = self.tasks[id].wake_ms.saturating_sub(self.now_ms());
            self.sleep_ms(wait);
        }
    }

    pub fn stop_clients(&mut self) {
        self.clients_stopped = true;
    }
    pub fn clients_stopped(&self) -> bool {
        self.clients_stopped
    }

    // ----- Servers and network ---------------------------------------------------------------------------------

    /// 6.824's crash1: disconnect server i and kill it; its durable state survives.
    pub fn crash1(&mut self, i: usize) {
        self.cluster.disconnect(i);
        self.cluster.crash(i);
    }

    /// 6.824's start1: (re)start server i from its durable state. It stays disconnected until `connect(i)`.
    pub fn start1(&mut self, i: usize) {
        self.crash1(i);
        self.cluster.restart(i);
    }

    pub fn connect(&mut self, i: usize) {
        self.cluster.connect(i);
    }
    pub fn disconnect(&mut self, i: usize) {
        self.cluster.disconnect(i);
    }
    pub fn set_reliable(&mut self, reliable: bool) {
        self.cluster.set_reliable(reliable);
    }
    pub fn set_long_reordering(&mut self, on: bool) {
        self.cluster.set_long_reordering(on);
    }

    /// `Start(command)` on server i: Some((index, term)) if it is alive and leads.
    pub fn start(&mut self, i: usize, command: Vec<u8>) -> Option<(Index, Term)> {
        self.cluster.propose(i, command)
    }

    /// `GetState()` of a live server.
    pub fn get_state(&self, i: usize) -> Option<(Term, bool)> {
        self.cluster.state(i)
    }

    /// RPCs delivered to server i.
    pub fn rpc_count(&self, i: usize) -> u64 {
        self.cluster.stats.rpcs_delivered[i]
    }
    pub fn rpc_total(&self) -> u64 {
        self.cluster.stats.rpcs_sent
    }
    pub fn bytes_total(&self) -> u64 {
        self.cluster.stats.bytes
    }

    /// Largest persisted Raft state (without snapshot) over all servers.
    pub fn log_size(&self) -> usize {
        (0..self.servers()).map(|i| self.cluster.storage(i).raft_state_size_bytes()).max().unwrap_or(0)
    }

    // ----- Checks ----------------------------------------------------------------------------------------------

    /// Waits for exactly one connected leader (in the newest term) and returns it; fails after ~5 s without one
    /// or on two leaders in one term.
    pub fn check_one_leader(&mut self) -> usize {
        for _ in 0..10 {
            let ms = self.rand_range(450, 550);
            self.sleep_ms(ms);
            let mut leaders: BTreeMap<Term, Vec<usize>> = BTreeMap::new();
            for i in 0..self.servers() {
                if self.is_connected(i)
                    && let Some((term, true)) = self.get_state(i)
                {
                    leaders.entry(term).or_default().push(i);
                }
            }
            for (term, ids) in &leaders {
                if ids.len() > 1 {
                    self.fail(&format!("term {term} has {} (>1) leaders: {ids:?}", ids.len()));
                }
            }
            if let Some((_, ids)) = leaders.last_key_value() {
                return ids[0];
            }
        }
        self.fail("expected one leader, got none")
    }

    /// All connected servers agree on the term; returns it.
    pub fn check_terms(&self) -> Term {
        let mut term = None;
        for i in 0..self.servers() {
            if self.is_connected(i)
                && let Some((t, _)) = self.get_state(i)
            {
                match term {
                    None => term = Some(t),
                    Some(existing) if existing != t => self.fail("servers disagree on term"),
                    Some(_) => {}
                }
            }
        }
        term.unwrap_or(0)
    }

    /// No connected server believes it leads.
    pub fn check_no_leader(&self) {
        for i in 0..self.servers() {
            if self.is_connected(i) && self.get_state(i).is_some_and(|(_, leader)| leader) {
                self.fail(&format!("expected no leader among connected servers, but {i} claims to be leader"));
            }
        }
    }

    /// How many servers applied `index`, and what (failing if they disagree).
    pub fn n_committed(&self, index: Index) -> (usize, Option<Vec<u8>>) {
        match self.cluster.checker.n_committed(index) {
            Ok(r) => r,
            Err(e) => self.fail(&e),
        }
    }

    /// 6.824's one(): see [`One`]. Returns the index the command committed at.
    pub fn one(&mut self, command: Vec<u8>, expected: usize, retry: bool) -> Index {
        let id = self.spawn(Box::new(One::new(command, expected, retry)));
        match self.join(id) {
            TaskResult::Index(index) => index,
            TaskResult::Values(_) => self.fail("one() returned values"),
        }
    }

    /// `one` with an integer command.
    pub fn one_u64(&mut self, x: u64, expected: usize, retry: bool) -> Index {
        self.one(u64_command(x), expected, retry)
    }

    /// 6.824's wait(): waits (with backoff up to 1 s, 30 polls) for `n` servers to commit `index`. Returns None
    /// early if some server's term moved past `start_term`.
    pub fn wait(&mut self, index: Index, n: usize, start_term: Option<Term>) -> Option<Vec<u8>> {
        let mut backoff_ms = 10;
        for _ in 0..30 {
            if self.n_committed(index).0 >= n {
                break;
            }
            self.sleep_ms(backoff_ms);
            if backoff_ms < 1000 {
                backoff_ms *= 2;
            }
            if let Some(start_term) = start_term {
                for i in 0..self.servers() {
                    if self.get_state(i).is_some_and(|(t, _)| t > start_term) {
                        return None;
                    }
                }
            }
        }
        let (count, command) = self.n_committed(index);
        if count < n {
            self.fail(&format!("only {count} decided for index {index}; wanted {n}"));
        }
        command
    }
}
