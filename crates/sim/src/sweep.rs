//! The randomized fault sweep: each seed generates its own cluster and fault schedule, checks the Raft safety
//! properties after every event, then heals everything and checks liveness.
//!
//! Safety, checked throughout: election safety (one leader per term) and leader completeness (on every new
//! leader), state machine safety and in-order, gap-free apply (on every applied entry), log matching (after every
//! schedule event). Liveness, after the heal: a new command commits on every server within
//! [`LIVENESS_LIMIT_MS`] of virtual time.
use keel_raft::Rng;

use crate::cluster::{Cluster, ClusterConfig, RaftOptions};

/// After the heal, a fresh command must be applied everywhere within this much virtual time: a few election
/// rounds (300-600 ms each) plus the 2.2 s that long-reordered replies may still be in flight.
pub const LIVENESS_LIMIT_MS: u64 = 10_000;
/// One liveness attempt: enough for an election and replication on a healed network.
const LIVENESS_ATTEMPT_MS: u64 = 2_000;
/// Clients offer a command to every live server this often.
const CLIENT_PERIOD_MS: u64 = 20;

#[derive(Clone, Debug)]
pub struct SweepOutcome {
    pub nodes: usize,
    pub events: u32,
    /// Crashes still armed when the faults were healed (and disarmed then).
    pub crashes_disarmed_at_heal: u32,
    /// Proposals the liveness check needed (more than one when a leader was deposed before committing).
    pub liveness_attempts: u32,
    /// Leaders elected in a term no newer than an existing commit (delayed votes).
    pub leaders_elected_behind_a_commit: u64,
    pub committed: u64,
    pub virtual_ms: u64,
}

/// The schedule's shape, drawn from the seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Schedule {
    /// Every kind of fault, at human-scale and burst spacing.
    Mixed,
    /// 6.824's Figure 8 pattern generalized: leaders crash or are cut off right after taking proposals, a few
    /// ms apart, while a majority is kept up.
    LeaderChurn,
}

#[derive(Clone, Debug)]
pub struct SweepShape {
    pub schedule: Schedule,
    pub nodes: usize,
    pub snapshot_interval: Option<u64>,
    /// Snapshot at random applied entries rather than every `snapshot_interval`-th.
    pub random_snapshots: bool,
    /// PreVote and CheckQuorum, each on in half the seeds.
    pub raft: RaftOptions,
    pub chaos_ms: u64,
}

impl SweepShape {
    pub fn from_seed(seed: u64) -> SweepShape {
        let mut rng = Rng::derive(seed, 0x5eed);
        SweepShape {
            schedule: if rng.chance(1, 3) { Schedule::LeaderChurn } else { Schedule::Mixed },
            nodes: [3, 5, 7][rng.range(0, 3) as usize],
            snapshot_interval: rng.chance(2, 3).then(|| rng.range(3, 30)),
            random_snapshots: rng.chance(1, 2),
            raft: RaftOptions { pre_vote: rng.chance(1, 2), check_quorum: rng.chance(1, 2) },
            chaos_ms: rng.range(4_000, 12_000),
        }
    }
}

/// Runs one seed. A violated property panics with the seed, the last events and the replay command.
pub fn run_seed(seed: u64) -> SweepOutcome {
    let shape = SweepShape::from_seed(seed);
    let n = shape.nodes;
    let mut rng = Rng::derive(seed, 0xfa17);
    let mut cluster = Cluster::new(ClusterConfig {
        nodes: n,
        seed,
        reliable: rng.chance(1, 2),
        snapshot_interval: shape.snapshot_interval,
        random_snapshots: shape.random_snapshots,
        raft: shape.raft,
    });
    cluster.trace.note(
        0,
        format!(
            "sweep: {n} nodes, snapshot interval {:?} (random: {})",
            shape.snapshot_interval, shape.random_snapshots
        ),
    );
    let mut command = 0u64;
    let mut events = 0u32;
    cluster.trace.note(0, format!("sweep schedule {:?}", shape.schedule));
    while cluster.now_ms() < shape.chaos_ms {
        match shape.schedule {
            Schedule::Mixed => {
                // Mostly human-scale gaps, sometimes bursts of faults a few ms apart.
                let step_ms = if rng.chance(1, 3) { rng.range(1, 30) } else { rng.range(10, 400) };
                run_with_clients(&mut cluster, step_ms, &mut command);
                inject_fault(&mut cluster, &mut rng);
            }
            Schedule::LeaderChurn => churn_leader(&mut cluster, &mut rng, &mut command),
        }
        events += 1;
        cluster.check_log_matching();
    }
    let crashes_disarmed_at_heal = heal(&mut cluster);
    cluster.check_log_matching();
    let liveness_attempts = check_liveness(&mut cluster, &mut command);
    cluster.check_log_matching();
    SweepOutcome {
        nodes: n,
        events,
        crashes_disarmed_at_heal,
        liveness_attempts,
        leaders_elected_behind_a_commit: cluster.stats.leaders_elected_behind_a_commit,
        committed: cluster.checker.max_index,
        virtual_ms: cluster.now_ms(),
    }
}

fn run_with_clients(cluster: &mut Cluster, ms: u64, command: &mut u64) {
    let end = cluster.now_ms() + ms;
    while cluster.now_ms() < end {
        let next = (cluster.now_ms() + CLIENT_PERIOD_MS).min(end);
        cluster.run_until(next);
        *command += 1;
        for i in 0..cluster.nodes() {
            cluster.propose(i, unique_command(*command, i));
        }
    }
}

/// Every proposal carries its target, so no two leaders ever propose the same bytes: the checkers compare
/// commands, and identical commands from different terms would hide a divergence.
fn unique_command(counter: u64, node: usize) -> Vec<u8> {
    (counter * 16 + node as u64).to_le_bytes().to_vec()
}

fn inject_fault(cluster: &mut Cluster, rng: &mut Rng) {
    let n = cluster.nodes();
    let node = rng.range(0, n as u64) as usize;
    let leader = cluster.leader_terms().into_iter().max_by_key(|(_, term)| *term).map(|(i, _)| i);
    match rng.range(0, 100) {
        0..15 => {
            let groups: Vec<u32> = (0..n).map(|_| rng.range(0, 2) as u32).collect();
            cluster.partition(&groups);
        }
        15..23 => cluster.partition(&vec![0; n]),
        23..33 => cluster.crash(node),
        // Leaders crash right after appending: the Figure 8 pattern.
        33..45 => cluster.crash(leader.unwrap_or(node)),
        45..52 => cluster.crash_before_next_persist(leader.filter(|_| rng.chance(1, 2)).unwrap_or(node)),
        // A quick bounce loses exactly the volatile state (and tests what was made durable before replies).
        52..60 => cluster.restart(node),
        60..75 => {
            if let Some(down) = (0..n).map(|k| (node + k) % n).find(|&i| !cluster.is_alive(i)) {
                cluster.restart(down);
            }
        }
        75..83 => cluster.disconnect(node),
        83..92 => cluster.connect(node),
        92..96 => {
            let reliable = !cluster.net.reliable;
            cluster.set_reliable(reliable);
        }
        _ => {
            let on = !cluster.net.long_reordering;
            cluster.set_long_reordering(on);
        }
    }
}

/// One round of the Figure 8 pattern: offer commands, wait a moment (usually a few ms), then take down whoever
/// accepted them, by crash, torn persist or disconnect; bring nodes back while fewer than a majority are up.
fn churn_leader(cluster: &mut Cluster, rng: &mut Rng, command: &mut u64) {
    let n = cluster.nodes();
    *command += 1;
    let leaders: Vec<usize> = (0..n).filter(|&i| cluster.propose(i, unique_command(*command, i)).is_some()).collect();
    let pause_ms = if rng.chance(1, 10) { rng.range(0, 500) } else { rng.range(0, 13) };
    let until = cluster.now_ms() + pause_ms;
    cluster.run_until(until);
    if let Some(&leader) = leaders.last()
        && rng.chance(1, 2)
    {
        match rng.range(0, 3) {
            0 => cluster.crash(leader),
            1 => cluster.crash_before_next_persist(leader),
            _ => cluster.disconnect(leader),
        }
    }
    let up = |c: &Cluster, i: usize| c.is_alive(i) && c.net.is_connected(i);
    if (0..n).filter(|&i| up(cluster, i)).count() <= n / 2 {
        let i = rng.range(0, n as u64) as usize;
        if !cluster.is_alive(i) {
            cluster.restart(i);
        }
        cluster.connect(i);
    }
}

/// Ends every fault; returns how many crashes were still armed.
fn heal(cluster: &mut Cluster) -> u32 {
    let n = cluster.nodes();
    let disarmed = cluster.cancel_pending_crashes();
    cluster.partition(&vec![0; n]);
    cluster.set_reliable(true);
    cluster.set_long_reordering(false);
    for i in 0..n {
        if !cluster.is_alive(i) {
            cluster.restart(i);
        }
        cluster.connect(i);
    }
    disarmed
}

/// After the heal, one new command must reach every server's state machine within the limit. As in 6.824's
/// `one()`, an attempt that does not commit within [`LIVENESS_ATTEMPT_MS`] is proposed again (its leader may have
/// been deposed), until the overall limit.
fn check_liveness(cluster: &mut Cluster, command: &mut u64) -> u32 {
    let deadline = cluster.now_ms() + LIVENESS_LIMIT_MS;
    let mut attempt: Option<(u64, Vec<u8>, u64)> = None;
    let mut attempts = 0;
    while cluster.now_ms() < deadline {
        let next = cluster.now_ms() + CLIENT_PERIOD_MS;
        cluster.run_until(next);
        if attempt.as_ref().is_none_or(|(_, _, started)| cluster.now_ms() - started >= LIVENESS_ATTEMPT_MS) {
            *command += 1;
            attempts += 1;
            attempt = (0..cluster.nodes()).find_map(|i| {
                let data = unique_command(*command, i);
                cluster.propose(i, data.clone()).map(|(index, _)| (index, data, cluster.now_ms()))
            });
        }
        if let Some((index, data, _)) = &attempt
            && let Ok((count, Some(applied))) = cluster.checker.n_committed(*index)
            && applied == *data
            && count == cluster.nodes()
        {
            return attempts;
        }
    }
    cluster.fail(&format!(
        "liveness: no command proposed after the heal was applied everywhere within {LIVENESS_LIMIT_MS} ms"
    ));
}
