//! The kvraft tester (6.824's kvraft `config.go`) in virtual time: servers are replicas running keel-kv's
//! `KvService`, clerks are `keel_kv::Clerk`s whose requests travel the simulated network.
//!
//! A request reaches a server (if the clerk can reach it: 6.824's `ConnectClient`, and the server is up and
//! connected); a server that leads proposes the command and answers when the replica hands out the proposal's
//! outcome (`Applied` with the service's reply; `NotApplied` or `Unknown` as "wrong leader"); one that does not
//! lead answers "wrong leader" with its hint at once. Requests and replies take the network's delays and, when
//! it is unreliable, its losses. A send to a server the clerk cannot reach fails quickly (labrpc's simulated
//! timeout); a request that gets no answer times out after [`CLERK_RPC_TIMEOUT_MS`]. Every operation a clerk
//! starts is recorded in a [`History`], which [`KvTester::end`] checks for linearizability. The transport, the
//! front end and the event loop are in `kv_front_end.rs`; this file is the API the tests use.
//!
//! Clients that run "concurrently" with the test's main line (6.824's client goroutines) are [`ClientLoop`]s: the
//! tester asks one for its next operation each time the previous one finishes.
use std::collections::BTreeMap;

use keel_kv::{Attempt, Clerk, Op, Reply, Seq};
use keel_raft::Rng;
use keel_replica::Proposal;

use crate::cluster::{Cluster, ClusterConfig, RaftOptions, Snapshots, StorageKind};
use crate::kv_front_end::KvEvent;
use crate::kv_history::{History, HistoryProblem};
use crate::sim_service::ServiceKind;
use crate::tester::TEST_LIMIT_MS;

/// A clerk gives up on a request that got no answer after this long and tries the next server. Several heartbeat
/// intervals (100 ms): a leader commits within one or two round trips, and even through a lossy network a lost
/// AppendEntries is sent again at the next heartbeat; yet a clerk stuck on a deposed leader in a minority (which
/// never answers) moves on well within the one-second partitions of the partition tests.
pub const CLERK_RPC_TIMEOUT_MS: u64 = 500;
/// A send to a server the clerk cannot reach (crashed, disconnected, or not linked to this clerk) fails within
/// this long: labrpc's simulated timeout for a disabled end in the kv tests ("many kv tests require the client to
/// try each server in fairly rapid succession").
pub const UNREACHABLE_FAILS_WITHIN_MS: u64 = 100;
/// After trying every server in vain, a clerk waits this long before the next round (6.824's clerks sleep 100 ms).
pub const CLERK_BACKOFF_MS: u64 = 100;

pub type ClerkId = usize;

/// What a KV tester runs with.
#[derive(Clone, Copy, Debug)]
pub struct KvTesterConfig {
    pub seed: u64,
    pub servers: usize,
    pub unreliable: bool,
    /// 6.824's maxraftstate: snapshot when the Raft state reaches this many bytes; `None` is 6.824's -1 (never).
    pub maxraftstate: Option<u64>,
    pub raft: RaftOptions,
}

/// A client goroutine of a 6.824 test, as a state machine.
pub trait ClientLoop {
    /// The next operation, given the reply to the previous one (`None` at the start) and whether the test asked
    /// its clients to stop; `None` when the client is finished. An error fails the test (a wrong value read).
    fn next(&mut self, rng: &mut Rng, last: Option<&Reply>, stop: bool) -> Result<Option<Op>, String>;
}

pub(crate) struct ClerkSlot {
    pub(crate) clerk: Clerk,
    /// `links[s]`: this clerk can reach server `s` (6.824's `ConnectClient`).
    pub(crate) links: Vec<bool>,
    /// The operation in progress.
    pub(crate) current: Option<Seq>,
    /// The reply to the last operation that finished.
    pub(crate) finished: Option<Reply>,
    /// The client loop driving this clerk, if it runs in the background.
    pub(crate) client: Option<Box<dyn ClientLoop>>,
    /// Its client loop said it is finished.
    pub(crate) client_done: bool,
}

pub struct KvTester {
    pub cluster: Cluster,
    /// The test's own choices (client ids, server orders, partitions, operations).
    pub(crate) rng: Rng,
    pub(crate) maxraftstate: Option<u64>,
    pub(crate) clerks: Vec<ClerkSlot>,
    /// Client-side events by (virtual ms, order of scheduling).
    pub(crate) events: BTreeMap<(u64, u64), KvEvent>,
    pub(crate) events_scheduled: u64,
    /// Requests a server proposed, by (server, its incarnation, the proposal), waiting for the outcome.
    pub(crate) pending: BTreeMap<(usize, u64, Proposal), (ClerkId, Attempt)>,
    pub history: History,
    pub(crate) clients_stopped: bool,
    pub(crate) description: String,
    pub(crate) start_ms: u64,
    pub(crate) ops_at_begin: u64,
    pub(crate) rpcs_at_begin: u64,
    /// Operations finished so far.
    pub ops_completed: u64,
    /// A deliberately broken front end, off unless a test that shows the checks can fail turns it on.
    pub(crate) bug: FrontEndBug,
    /// How long a clerk waits for an answer ([`CLERK_RPC_TIMEOUT_MS`] unless the run sets another).
    pub(crate) rpc_timeout_ms: u64,
}

/// Bugs the front end can be told to have, so tests can show that the checks catch them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FrontEndBug {
    #[default]
    None,
    /// A server that believes it leads answers a get from its own state at once, without the log: the classic
    /// stale read of a deposed leader that has not heard of its successor.
    LocalReads,
}

impl KvTester {
    /// 6.824's make_config for kvraft: `servers` KV servers, all started and connected.
    pub fn new(config: &KvTesterConfig) -> KvTester {
        let cluster = Cluster::new(ClusterConfig {
            nodes: config.servers,
            seed: config.seed,
            reliable: !config.unreliable,
            snapshots: config.maxraftstate.map_or(Snapshots::Never, Snapshots::RaftStateBytes),
            raft: config.raft,
            storage: StorageKind::Memory,
            service: ServiceKind::Kv,
        });
        KvTester::from_cluster(cluster, config.maxraftstate)
    }

    /// A tester over a cluster built elsewhere (the KV sweep draws its shape and faults), which must run the KV
    /// service.
    pub fn from_cluster(cluster: Cluster, maxraftstate: Option<u64>) -> KvTester {
        let seed = cluster.seed();
        KvTester {
            cluster,
            rng: Rng::derive(seed, 2),
            maxraftstate,
            clerks: Vec::new(),
            events: BTreeMap::new(),
            events_scheduled: 0,
            pending: BTreeMap::new(),
            history: History::default(),
            clients_stopped: false,
            description: String::new(),
            start_ms: 0,
            ops_at_begin: 0,
            rpcs_at_begin: 0,
            ops_completed: 0,
            bug: FrontEndBug::None,
            rpc_timeout_ms: CLERK_RPC_TIMEOUT_MS,
        }
    }

    pub fn begin(&mut self, description: &str) {
        self.description = description.to_string();
        self.start_ms = self.now_ms();
        self.ops_at_begin = self.ops_completed;
        self.rpcs_at_begin = self.cluster.stats.rpcs_sent;
        self.cluster.set_context(description.to_string());
    }

    /// 6.824's end(), plus the linearizability check of the whole history so far (6.824 runs porcupine at the end
    /// of each test): a history that is not linearizable fails with its smallest offending window.
    pub fn end(&mut self) {
        self.check_linearizable();
        println!(
            "  {} ... Passed -- {:.1}s virtual, {} peers, {} raft rpcs, {} ops ({} in the history, {} unanswered) (seed {})",
            self.description,
            (self.now_ms() - self.start_ms) as f64 / 1000.0,
            self.servers(),
            self.cluster.stats.rpcs_sent - self.rpcs_at_begin,
            self.ops_completed - self.ops_at_begin,
            self.history.len(),
            self.history.unanswered(),
            self.cluster.seed(),
        );
    }

    /// Fails unless the history recorded so far is linearizable. An empty history fails too: a test that
    /// recorded nothing checked nothing.
    pub fn check_linearizable(&self) {
        if self.history.is_empty() {
            self.fail("the history is empty: no operation was checked");
        }
        match self.history.check() {
            Ok(unknown) if unknown.is_empty() => {}
            Ok(unknown) => println!(
                "  info: linearizability check of keys {unknown:?} met its search bound (porcupine's timeout: a pass)"
            ),
            Err(HistoryProblem::NotLinearizable(report)) => {
                self.fail(&format!("history is not linearizable\n{report}"))
            }
            Err(HistoryProblem::Malformed(e)) => self.fail(&format!("the history cannot be checked: {e}")),
        }
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
    pub fn all(&self) -> Vec<usize> {
        (0..self.servers()).collect()
    }
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }
    /// How long clerks wait for an answer before trying the next server.
    pub fn set_rpc_timeout_ms(&mut self, ms: u64) {
        self.rpc_timeout_ms = ms;
    }
    pub fn rpc_timeout_ms(&self) -> u64 {
        self.rpc_timeout_ms
    }

    /// Breaks the front end on purpose (tests of the checks only).
    pub fn set_bug(&mut self, bug: FrontEndBug) {
        self.bug = bug;
    }
    pub fn maxraftstate(&self) -> Option<u64> {
        self.maxraftstate
    }

    pub(crate) fn check_timeout(&self) {
        if self.now_ms() - self.start_ms > TEST_LIMIT_MS {
            self.fail(&format!("test took longer than {} seconds", TEST_LIMIT_MS / 1000));
        }
    }

    // ----- Clerks ----------------------------------------------------------------------------------------------

    /// 6.824's makeClient(to): a clerk with a fresh random id, knowing every server in a random order, able to
    /// reach the servers in `to`.
    pub fn make_clerk(&mut self, to: &[usize]) -> ClerkId {
        let mut servers: Vec<u64> = (0..self.servers()).map(|i| self.cluster.id_of(i)).collect();
        for i in (1..servers.len()).rev() {
            let j = self.rng.range(0, i as u64 + 1) as usize;
            servers.swap(i, j);
        }
        let client_id = self.rng.next_u64().max(1); // 0 is NO_SESSION
        let clerk = match Clerk::new(client_id, servers) {
            Ok(clerk) => clerk,
            Err(e) => self.fail(&format!("cannot make a clerk: {e}")),
        };
        let mut links = vec![false; self.servers()];
        for &s in to {
            links[s] = true;
        }
        self.clerks.push(ClerkSlot { clerk, links, current: None, finished: None, client: None, client_done: false });
        self.clerks.len() - 1
    }

    /// 6.824's ConnectClient(ck, to): the clerk can reach exactly the servers in `to`.
    pub fn connect_client(&mut self, clerk: ClerkId, to: &[usize]) {
        let links = &mut self.clerks[clerk].links;
        links.fill(false);
        for &s in to {
            links[s] = true;
        }
    }

    /// Starts an operation on `clerk` (which must be idle); it runs as virtual time passes.
    pub fn start(&mut self, clerk: ClerkId, op: Op) -> Seq {
        let now = self.now_ms();
        let slot = &mut self.clerks[clerk];
        let seq = slot.clerk.next_seq();
        let action = match slot.clerk.start(op.clone()) {
            Ok(action) => action,
            Err(e) => self.fail(&format!("clerk {clerk} cannot start {op:?}: {e}")),
        };
        slot.current = Some(seq);
        slot.finished = None;
        if let Err(e) = self.history.call(now, clerk, seq, &op) {
            self.fail(&e);
        }
        self.perform(clerk, action);
        seq
    }

    /// The reply to the clerk's last operation, once it has finished.
    pub fn finished(&self, clerk: ClerkId) -> Option<&Reply> {
        let slot = &self.clerks[clerk];
        if slot.current.is_some() { None } else { slot.finished.as_ref() }
    }

    /// Runs one operation to its end (6.824's clerk calls block until done; the test's time limit bounds them).
    pub fn op(&mut self, clerk: ClerkId, op: Op) -> Reply {
        self.start(clerk, op.clone());
        let limit_ms = self.start_ms + TEST_LIMIT_MS;
        self.run(limit_ms, |t| t.finished(clerk).is_some());
        match self.finished(clerk) {
            Some(reply) => reply.clone(),
            None => self.fail(&format!("clerk {clerk}'s {op:?} did not finish")),
        }
    }

    /// Waits up to `ms` for the clerk's operation to finish; its reply, if it did.
    pub fn wait_op(&mut self, clerk: ClerkId, ms: u64) -> Option<Reply> {
        let target = self.now_ms() + ms;
        self.run(target, |t| t.finished(clerk).is_some());
        self.finished(clerk).cloned()
    }

    /// 6.824's Get: the value, "" for a missing key.
    pub fn get(&mut self, clerk: ClerkId, key: &str) -> String {
        match self.op(clerk, Op::Get { key: key.to_string() }) {
            Reply::Value { value, .. } => value,
            Reply::NotFound => String::new(),
            other => self.fail(&format!("Get({key:?}) got {other:?}")),
        }
    }

    pub fn put(&mut self, clerk: ClerkId, key: &str, value: &str) {
        let reply = self.op(clerk, Op::Put { key: key.to_string(), value: value.to_string() });
        if !matches!(reply, Reply::Written { .. }) {
            self.fail(&format!("Put({key:?}, {value:?}) got {reply:?}"));
        }
    }

    pub fn append(&mut self, clerk: ClerkId, key: &str, value: &str) {
        let reply = self.op(clerk, Op::Append { key: key.to_string(), value: value.to_string() });
        if !matches!(reply, Reply::Written { .. }) {
            self.fail(&format!("Append({key:?}, {value:?}) got {reply:?}"));
        }
    }

    /// 6.824's check(): Get(key) must return `value`.
    pub fn check(&mut self, clerk: ClerkId, key: &str, value: &str) {
        let got = self.get(clerk, key);
        if got != value {
            self.fail(&format!("Get({key:?}): expected {value:?}, got {got:?}"));
        }
    }

    // ----- Background clients ----------------------------------------------------------------------------------

    /// Runs `client` on `clerk` in the background, from now on.
    pub fn spawn_client(&mut self, clerk: ClerkId, client: Box<dyn ClientLoop>) {
        self.clerks[clerk].client = Some(client);
        self.clerks[clerk].client_done = false;
        self.drive_client(clerk, None);
    }

    /// Asks the clients to stop: each finishes the operation it is in, then stops (6.824's `done_clients`).
    pub fn stop_clients(&mut self) {
        self.clients_stopped = true;
    }

    /// Lets clients run again (a new round).
    pub fn resume_clients(&mut self) {
        self.clients_stopped = false;
    }

    pub fn client_done(&self, clerk: ClerkId) -> bool {
        self.clerks[clerk].client_done
    }

    /// Waits until every clerk in `clerks` has finished its client loop; fails at the test's time limit.
    pub fn join_clients(&mut self, clerks: &[ClerkId]) {
        let limit_ms = self.start_ms + TEST_LIMIT_MS;
        self.join_clients_by(clerks, limit_ms);
    }

    /// Waits until every clerk in `clerks` has finished its client loop; fails if one has not by `deadline_ms`.
    pub fn join_clients_by(&mut self, clerks: &[ClerkId], deadline_ms: u64) {
        self.run(deadline_ms, |t| clerks.iter().all(|&c| t.client_done(c)));
        if let Some(c) = clerks.iter().find(|&&c| !self.client_done(c)) {
            self.fail(&format!("client on clerk {c} did not finish by {:.3}s", deadline_ms as f64 / 1000.0));
        }
    }

    pub(crate) fn drive_client(&mut self, clerk: ClerkId, last: Option<Reply>) {
        let Some(mut client) = self.clerks[clerk].client.take() else { return };
        match client.next(&mut self.rng, last.as_ref(), self.clients_stopped) {
            Ok(Some(op)) => {
                self.clerks[clerk].client = Some(client);
                self.start(clerk, op);
            }
            Ok(None) => self.clerks[clerk].client_done = true,
            Err(e) => self.fail(&format!("client on clerk {clerk}: {e}")),
        }
    }

    // ----- Time ------------------------------------------------------------------------------------------------

    /// Lets `ms` of virtual time pass; clients and servers run.
    pub fn sleep_ms(&mut self, ms: u64) {
        let target = self.now_ms() + ms;
        self.run(target, |_| false);
    }

    // ----- Servers and network ---------------------------------------------------------------------------------

    /// 6.824's ShutdownServer: disconnect server i and kill it; its storage survives. Requests it was handling
    /// are never answered.
    pub fn shutdown_server(&mut self, i: usize) {
        self.cluster.disconnect(i);
        self.cluster.crash(i);
        self.pending.retain(|&(server, _, _), _| server != i);
    }

    /// 6.824's StartServer: a fresh KV server from server i's storage (its Raft state and snapshot). It stays
    /// disconnected until [`KvTester::connect_all`] or a partition includes it.
    pub fn start_server(&mut self, i: usize) {
        self.shutdown_server(i);
        self.cluster.restart(i);
    }

    /// 6.824's ConnectAll: every server reaches every other (partitions healed).
    pub fn connect_all(&mut self) {
        let n = self.servers();
        self.cluster.partition(&vec![0; n]);
        for i in 0..n {
            self.cluster.connect(i);
        }
    }

    /// 6.824's partition(p1, p2): servers talk only within their group.
    pub fn partition(&mut self, p1: &[usize], p2: &[usize]) {
        let mut groups = vec![0; self.servers()];
        for &s in p2 {
            groups[s] = 1;
        }
        self.cluster.partition(&groups);
        for &s in p1.iter().chain(p2) {
            self.cluster.connect(s);
        }
    }

    /// 6.824's Leader(): a live server that believes it leads (the one in the newest term).
    pub fn leader(&self) -> Option<usize> {
        self.cluster.leader_terms().into_iter().max_by_key(|&(_, term)| term).map(|(i, _)| i)
    }

    /// 6.824's make_partition: a majority without the leader, and a minority with it.
    pub fn make_partition(&self) -> (Vec<usize>, Vec<usize>) {
        let leader = self.leader().unwrap_or(0);
        let majority = self.servers() / 2 + 1;
        let others: Vec<usize> = (0..self.servers()).filter(|&i| i != leader).collect();
        let p1 = others[..majority].to_vec();
        let mut p2 = others[majority..].to_vec();
        p2.push(leader);
        (p1, p2)
    }

    /// 6.824's LogSize: the largest persisted Raft state (without the snapshot) of any server.
    pub fn log_size(&self) -> usize {
        (0..self.servers()).map(|i| self.cluster.storage(i).raft_state_size_bytes()).max().unwrap_or(0)
    }

    /// 6.824's SnapshotSize: the largest persisted snapshot of any server.
    pub fn snapshot_size(&self) -> usize {
        (0..self.servers())
            .map(|i| self.cluster.storage(i).state().snapshot.as_ref().map_or(0, |s| s.data.len()))
            .max()
            .unwrap_or(0)
    }
}
