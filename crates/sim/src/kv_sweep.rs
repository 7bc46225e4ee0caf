//! The fault sweep with clients (issue 9, item 5): each seed draws the Raft sweep's shape (cluster size, every Raft
//! option, snapshot points, the harsh network, the nemesis, keel's WAL on a simulated disk) and its fault schedule,
//! runs keel-kv's service on the replicas, and has several clerks issue random gets, puts and appends throughout.
//! After the heal the clients must finish; a fresh clerk then reads every key. The whole history must be
//! linearizable, and the final read of the append-only key must hold every acknowledged append exactly once (and
//! every unacknowledged one at most once): no acknowledged write lost, none applied twice.
//!
//! A run of its own beside the Raft sweep (`sweep.rs`), which stays exactly as it was: the same seed there replays
//! the same run as before clients existed. The Raft safety checks of `cluster.rs` run here too, on every event.
use keel_kv::{Op, Reply};
use keel_raft::Rng;

use crate::kv_tester::{CLERK_BACKOFF_MS, CLERK_RPC_TIMEOUT_MS, ClerkId, ClientLoop, KvTester};
use crate::sim_service::ServiceKind;
use crate::sweep::{SweepShape, draw_nemesis, heal, inject_fault, liveness_limit_ms, send_unprompted_appends};

/// Clerks per seed: from this many ...
const CLIENTS_MIN: u64 = 2;
/// ... to this many (6.824's concurrent tests use five).
const CLIENTS_MAX: u64 = 5;
/// The keys the clients use: few, so that operations on one key overlap and the check has something to decide.
const KEYS: &[&str] = &["a", "b", "log"];
/// The key that only ever gets appends (and reads), so the final read can show every acknowledged append.
const LOG_KEY: &str = "log";
/// Per mille of operations on other keys that are gets, then puts (the rest are appends).
const GET_PER_MILLE: u64 = 400;
const PUT_PER_MILLE: u64 = 300;

/// The clerk timeouts a seed draws from: the catalogue's, and longer ones that outlast long reordering (answers up
/// to 2.2 s late), under which a short timeout would give up on most answers and the clients would do little.
const CLERK_RPC_TIMEOUTS_MS: &[u64] = &[CLERK_RPC_TIMEOUT_MS, 1_000, 2_500];

/// The gap between two fault events, outside bursts: from a moment to a few election timeouts.
const STEP_MS: (u64, u64) = (50, 1_500);
/// Long reordering from the start in one seed of this many (faults toggle it later in any seed): answers up to
/// 2.2 s late make most seeds' clients crawl, and the sweep wants many operations under the other faults too.
const LONG_REORDERING_ONE_IN: u64 = 4;

/// What one seed did.
#[derive(Clone, Debug)]
pub struct KvSweepOutcome {
    pub nodes: usize,
    pub clients: usize,
    pub rpc_timeout_ms: u64,
    /// Operations completed before the heal (the rest are the clients' last operations and the final reads).
    pub ops_during_faults: u64,
    pub ops_completed: u64,
    pub history_len: usize,
    pub appends_acknowledged: usize,
    pub virtual_ms: u64,
    pub snapshots_installed: u64,
    pub nemesis_strikes: u64,
    pub duplicated: u64,
    pub disk: crate::cluster::DiskCounts,
}

/// A client of the sweep: random operations until told to stop. Every written value is unique (client, count),
/// so a value seen twice was applied twice.
struct RandomClient {
    me: usize,
    written: u64,
}

impl ClientLoop for RandomClient {
    fn next(&mut self, rng: &mut Rng, reply: Option<&Reply>, stop: bool) -> Result<Option<Op>, String> {
        match reply {
            None | Some(Reply::Value { .. } | Reply::NotFound | Reply::Written { .. }) => {}
            Some(other) => return Err(format!("client {} got {other:?}", self.me)),
        }
        if stop {
            return Ok(None);
        }
        let key = KEYS[rng.range(0, KEYS.len() as u64) as usize].to_string();
        self.written += 1;
        let value = format!("<{}.{}>", self.me, self.written);
        let roll = rng.range(0, 1000);
        Ok(Some(if key == LOG_KEY {
            if roll < 500 { Op::Get { key } } else { Op::Append { key, value } }
        } else if roll < GET_PER_MILLE {
            Op::Get { key }
        } else if roll < GET_PER_MILLE + PUT_PER_MILLE {
            Op::Put { key, value }
        } else {
            Op::Append { key, value }
        }))
    }
}

/// Runs one seed. A violated property panics with the seed, the last events and the replay command.
pub fn run_kv_seed(seed: u64) -> KvSweepOutcome {
    let shape = SweepShape::from_seed(seed);
    let n = shape.nodes;
    // Streams of their own: the shape is the Raft sweep's, the schedule and the clients are this sweep's.
    let mut rng = Rng::derive(seed, 0x4b5f_fa17);
    let reliable = rng.chance(1, 2);
    let long_reordering = rng.chance(1, LONG_REORDERING_ONE_IN);
    let cluster = shape.cluster(seed, reliable, long_reordering, ServiceKind::Kv);
    let mut kv = KvTester::from_cluster(cluster, None);
    kv.set_rpc_timeout_ms(CLERK_RPC_TIMEOUTS_MS[rng.range(0, CLERK_RPC_TIMEOUTS_MS.len() as u64) as usize]);
    kv.begin(&format!("kv sweep {shape:?}"));
    let all = kv.all();
    let clients = rng.range(CLIENTS_MIN, CLIENTS_MAX + 1) as usize;
    let clerks: Vec<ClerkId> = (0..clients)
        .map(|me| {
            let clerk = kv.make_clerk(&all);
            kv.spawn_client(clerk, Box::new(RandomClient { me, written: 0 }));
            clerk
        })
        .collect();
    while kv.now_ms() < shape.chaos_ms {
        // Sometimes bursts of faults a few ms apart, mostly gaps long enough for an election and a few client
        // operations between faults (the Raft sweep's gaps are shorter: it proposes every 20 ms, and does not need
        // a round trip through a clerk to make progress).
        let step_ms = if rng.chance(1, 4) { rng.range(1, 30) } else { rng.range(STEP_MS.0, STEP_MS.1) };
        kv.sleep_ms(step_ms);
        let healed = inject_fault(&mut kv.cluster, &mut rng);
        if healed && shape.unprompted_appends_per_mille > 0 {
            send_unprompted_appends(&mut kv.cluster);
        }
        if shape.nemesis && !kv.cluster.nemesis_armed() {
            let nemesis = draw_nemesis(&mut rng);
            kv.cluster.arm_nemesis(Some(nemesis));
        }
        kv.cluster.check_log_matching();
    }
    let ops_during_faults = kv.ops_completed;
    heal(&mut kv.cluster);
    kv.stop_clients();
    // After the heal the cluster is live within the Raft sweep's limit; then each clerk needs at most a round of
    // timeouts over every server and a backoff to find the leader, twice over for an election in between.
    let clerk_rounds_ms = 2 * (n as u64 * kv.rpc_timeout_ms() + CLERK_BACKOFF_MS);
    let deadline_ms = kv.now_ms() + liveness_limit_ms(&shape.raft) + clerk_rounds_ms;
    kv.join_clients_by(&clerks, deadline_ms);
    let reader = kv.make_clerk(&all);
    let mut log = String::new();
    for key in KEYS {
        let value = kv.get(reader, key);
        if *key == LOG_KEY {
            log = value;
        }
    }
    kv.cluster.check_log_matching();
    check_no_append_lost_or_doubled(&kv, &log);
    kv.check_linearizable();
    KvSweepOutcome {
        nodes: n,
        clients,
        rpc_timeout_ms: kv.rpc_timeout_ms(),
        ops_during_faults,
        ops_completed: kv.ops_completed,
        history_len: kv.history.len(),
        appends_acknowledged: kv.history.appends(LOG_KEY).0.len(),
        virtual_ms: kv.now_ms(),
        snapshots_installed: kv.cluster.stats.snapshots_installed,
        nemesis_strikes: kv.cluster.stats.nemesis_strikes,
        duplicated: kv.cluster.stats.duplicated,
        disk: crate::cluster::DiskCounts { disk_errors: kv.cluster.stats.disk_errors, ..kv.cluster.disk_counts() },
    }
}

/// The final read of the append-only key holds every acknowledged append exactly once, and every unanswered one at
/// most once.
fn check_no_append_lost_or_doubled(kv: &KvTester, log: &str) {
    let (acknowledged, unanswered) = kv.history.appends(LOG_KEY);
    for value in acknowledged {
        match log.matches(value).count() {
            1 => {}
            0 => kv.fail(&format!("acknowledged append {value} to {LOG_KEY:?} is lost: final value {log:?}")),
            count => kv.fail(&format!("append {value} to {LOG_KEY:?} was applied {count} times: {log:?}")),
        }
    }
    for value in unanswered {
        let count = log.matches(value).count();
        if count > 1 {
            kv.fail(&format!("unanswered append {value} to {LOG_KEY:?} was applied {count} times: {log:?}"));
        }
    }
}
