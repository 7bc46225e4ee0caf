//! The randomized fault sweep: each seed generates its own cluster, Raft configuration, network and fault
//! schedule, checks the Raft safety properties after every event, then heals everything and checks liveness.
//!
//! Safety, checked throughout: election safety (one leader per term) and leader completeness (on every new
//! leader and every new commit), state machine safety and in-order, gap-free apply (on every applied entry), the
//! invariants of `invariants.rs` (on every event that changed a node), the core's own assertions (on every
//! input), log matching (after every schedule event). Liveness, after the heal: a new command commits on every
//! server within [`liveness_limit_ms`] of virtual time.
use keel_raft::{DEFAULT_MAX_BYTES_PER_APPEND, DEFAULT_MAX_ENTRIES_PER_APPEND, Rng};

use crate::cluster::{Cluster, ClusterConfig, RaftOptions, Snapshots, StorageKind, TICK_MS};
use crate::nemesis::{Moment, Nemesis, Strike};
use crate::network::HarshFaults;

/// After the heal, a fresh command must be applied everywhere within this much virtual time, at the default
/// timing: a few election rounds (300-600 ms each) plus the 2.2 s that long-reordered messages may still be in
/// flight. Longer election timeouts stretch it (see [`liveness_limit_ms`]).
pub const LIVENESS_LIMIT_MS: u64 = 10_000;
/// One liveness attempt at the default timing: enough for an election and replication on a healed network.
const LIVENESS_ATTEMPT_MS: u64 = 2_000;
/// Election rounds the liveness limit allows for on top of [`LIVENESS_LIMIT_MS`] (split votes are likelier with
/// narrow timeout ranges).
const LIVENESS_ELECTION_ROUNDS: u64 = 20;
/// Clients offer a command to every live server this often.
const CLIENT_PERIOD_MS: u64 = 20;

#[derive(Clone, Debug)]
pub struct SweepOutcome {
    pub nodes: usize,
    pub events: u32,
    /// Crashes still armed when the faults were healed (and disarmed then).
    pub crashes_disarmed_at_heal: u32,
    /// Whether a nemesis strike was pending (its moment had come) when the faults were healed (cancelled then).
    pub strike_cancelled_at_heal: bool,
    /// Proposals the liveness check needed (more than one when a leader was deposed before committing).
    pub liveness_attempts: u32,
    /// Leaders elected in a term no newer than an existing commit (delayed votes).
    pub leaders_elected_behind_a_commit: u64,
    pub committed: u64,
    pub virtual_ms: u64,
    /// Message copies the network duplicated.
    pub duplicated: u64,
    /// Times an armed nemesis found its moment and struck.
    pub nemesis_strikes: u64,
    pub events_per_virtual_second_peak: u64,
    /// InstallSnapshot messages delivered.
    pub snapshots_installed: u64,
    /// What the simulated disks went through: recoveries after power loss, in-flight updates found or lost, torn
    /// WAL tails cut.
    pub disk: crate::cluster::DiskCounts,
    pub storage: StorageKind,
    /// Unprompted (legal) messages sent on leaders' behalf.
    pub legal_appends_sent: u64,
    /// Very late copies of old replies delivered to re-elected leaders.
    pub late_replies_delivered: u64,
    /// Leaders crashed between sending entries and their own fsync of them.
    pub crashes_ahead_of_fsync: u64,
    pub patterns: crate::stats::Patterns,
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
    /// Every n entries (down to every entry), at random points, or by Raft state size; or never.
    pub snapshots: Snapshots,
    /// Every field drawn: PreVote and CheckQuorum each on in half the seeds; timing and append limits at their
    /// defaults in a third of the seeds, anywhere a user may legally set them in the rest.
    pub raft: RaftOptions,
    /// Duplicates, reordered requests and in-flight delivery, each on in some seeds.
    pub harsh: HarshFaults,
    /// Keep a nemesis armed: after each fault event, if none is waiting, draw one; it strikes at its moment.
    pub nemesis: bool,
    /// Long reordering from the start (fault events toggle it later): replies, and with `harsh.reorder_requests`
    /// requests, arrive up to 2.2 s late, across elections.
    pub long_reordering: bool,
    /// Leaders also send what another correct leader might (`legal_traffic.rs`): while clients run, every
    /// client period, with this chance per mille, the newest leader sends a random follower an AppendEntries from
    /// a random point of its log, or its snapshot.
    pub unprompted_appends_per_mille: u64,
    /// keel's real WAL on a simulated disk (in most seeds, with segments from 512 bytes, so they rotate and are
    /// compacted away often), or memory.
    pub storage: StorageKind,
    pub chaos_ms: u64,
}

impl SweepShape {
    /// The cluster this shape describes, before any fault: its nodes, storage, snapshots, Raft options and
    /// network (the Raft sweep and the KV sweep differ only in the service and how they draw the rest).
    pub(crate) fn cluster(
        &self,
        seed: u64,
        reliable: bool,
        long_reordering: bool,
        service: crate::sim_service::ServiceKind,
    ) -> Cluster {
        let mut cluster = Cluster::new(ClusterConfig {
            nodes: self.nodes,
            seed,
            reliable,
            snapshots: self.snapshots,
            raft: self.raft,
            storage: self.storage,
            service,
        });
        cluster.net.harsh = self.harsh;
        cluster.net.long_reordering = long_reordering;
        if self.nemesis {
            cluster.keep_late_replies();
        }
        cluster
    }

    pub fn from_seed(seed: u64) -> SweepShape {
        let mut rng = Rng::derive(seed, 0x5eed);
        SweepShape {
            schedule: if rng.chance(1, 3) { Schedule::LeaderChurn } else { Schedule::Mixed },
            nodes: [3, 5, 7][rng.range(0, 3) as usize],
            snapshots: {
                let interval =
                    rng.chance(2, 3).then(|| if rng.chance(1, 4) { rng.range(1, 4) } else { rng.range(3, 50) });
                let at_random = rng.chance(1, 2);
                // Drawn from a stream of its own, so adding it left every other draw of the shape as it was.
                let by_size = Rng::derive(seed, 0x5a95).chance(1, 2);
                match interval {
                    None => Snapshots::Never,
                    Some(one_in) if at_random => Snapshots::Randomly { one_in },
                    // The sweep's commands are 8 bytes: a snapshot after about `n` entries.
                    Some(n) if by_size => Snapshots::RaftStateBytes(n * (8 + keel_replica::ENTRY_OVERHEAD_BYTES)),
                    Some(n) => Snapshots::EveryEntries(n),
                }
            },
            raft: random_raft_options(&mut rng),
            harsh: HarshFaults {
                duplicate_per_mille: if rng.chance(1, 3) { rng.range(10, 300) } else { 0 },
                reorder_requests: rng.chance(1, 3),
                deliver_in_flight: rng.chance(1, 2),
            },
            nemesis: rng.chance(1, 2),
            long_reordering: rng.chance(1, 3),
            unprompted_appends_per_mille: if rng.chance(1, 2) { rng.range(50, 500) } else { 0 },
            storage: if rng.chance(3, 4) {
                StorageKind::SimulatedDisk { segment_size_bytes: 512 << rng.range(0, 8) }
            } else {
                StorageKind::Memory
            },
            chaos_ms: rng.range(4_000, 12_000),
        }
    }
}

/// Any configuration a user may legally set (`Config::validate`: 0 < heartbeat < election min, and a range of at
/// least two election timeouts), weighted towards the extremes where bugs hide: one entry per message, a byte
/// limit below one entry, a heartbeat of one tick, an election range of two values.
fn random_raft_options(rng: &mut Rng) -> RaftOptions {
    let extensions = RaftOptions::with_extensions(rng.chance(1, 2), rng.chance(1, 2));
    if rng.chance(1, 3) {
        return extensions;
    }
    let heartbeat_interval_ticks = if rng.chance(1, 3) { 1 } else { rng.range(1, 21) as u32 };
    let election_timeout_ticks_min =
        heartbeat_interval_ticks + 1 + rng.range(0, 10 * heartbeat_interval_ticks as u64) as u32;
    let spread = if rng.chance(1, 4) { 2 } else { 2 + rng.range(0, 2 * election_timeout_ticks_min as u64) as u32 };
    let max_entries_per_append = match rng.range(0, 4) {
        0 => 1,
        1 => rng.range(2, 5) as usize,
        2 => rng.range(5, 100) as usize,
        _ => DEFAULT_MAX_ENTRIES_PER_APPEND,
    };
    // The sweep's commands are 8 bytes: below that, every message carries exactly one entry.
    let max_bytes_per_append = match rng.range(0, 4) {
        0 => rng.range(0, 8) as usize,
        1 => rng.range(8, 64) as usize,
        _ => DEFAULT_MAX_BYTES_PER_APPEND,
    };
    RaftOptions {
        heartbeat_interval_ticks,
        election_timeout_ticks_min,
        election_timeout_ticks_max: election_timeout_ticks_min + spread,
        max_entries_per_append,
        max_bytes_per_append,
        ..extensions
    }
}

/// How long liveness may take after the heal with these options.
pub fn liveness_limit_ms(raft: &RaftOptions) -> u64 {
    LIVENESS_LIMIT_MS + LIVENESS_ELECTION_ROUNDS * u64::from(raft.election_timeout_ticks_max) * TICK_MS
}

/// One liveness attempt: a few election rounds and a replication round trip.
fn liveness_attempt_ms(raft: &RaftOptions) -> u64 {
    LIVENESS_ATTEMPT_MS + 4 * u64::from(raft.election_timeout_ticks_max) * TICK_MS
}

/// Runs one seed. A violated property panics with the seed, the last events and the replay command.
pub fn run_seed(seed: u64) -> SweepOutcome {
    let shape = SweepShape::from_seed(seed);
    let n = shape.nodes;
    let mut rng = Rng::derive(seed, 0xfa17);
    let reliable = rng.chance(1, 2);
    let mut cluster = shape.cluster(seed, reliable, shape.long_reordering, crate::sim_service::ServiceKind::Tester);
    cluster.set_context(format!("{shape:?}"));
    let mut command = 0u64;
    let mut events = 0u32;
    cluster.trace.note(0, format!("sweep schedule {:?}", shape.schedule));
    while cluster.now_ms() < shape.chaos_ms {
        match shape.schedule {
            Schedule::Mixed => {
                // Mostly human-scale gaps, sometimes bursts of faults a few ms apart.
                let step_ms = if rng.chance(1, 3) { rng.range(1, 30) } else { rng.range(10, 400) };
                run_with_clients(&mut cluster, step_ms, &mut command, shape.unprompted_appends_per_mille);
                let healed = inject_fault(&mut cluster, &mut rng);
                if healed && shape.unprompted_appends_per_mille > 0 {
                    // Right after a heal, followers that were cut off may still hold an old leader's uncommitted
                    // entries: the moment a message covering less than that tail does harm, if any can.
                    send_unprompted_appends(&mut cluster);
                }
            }
            Schedule::LeaderChurn => churn_leader(&mut cluster, &mut rng, &mut command),
        }
        events += 1;
        // A nemesis waits for its moment (a snapshot being sent may take a while to come), then the next is drawn.
        if shape.nemesis && !cluster.nemesis_armed() {
            let nemesis = draw_nemesis(&mut rng);
            if nemesis.strike == Strike::FollowerTimesOut && !cluster.net.long_reordering {
                // The answers must still be on their way when the leader is re-elected.
                cluster.set_long_reordering(true);
            }
            cluster.arm_nemesis(Some(nemesis));
        }
        cluster.check_log_matching();
    }
    let (crashes_disarmed_at_heal, strike_cancelled_at_heal) = heal(&mut cluster);
    if shape.unprompted_appends_per_mille > 0 {
        send_unprompted_appends(&mut cluster);
    }
    cluster.check_log_matching();
    let liveness_attempts = check_liveness(&mut cluster, &mut command, &shape.raft);
    cluster.check_log_matching();
    SweepOutcome {
        duplicated: cluster.stats.duplicated,
        nemesis_strikes: cluster.stats.nemesis_strikes,
        events_per_virtual_second_peak: cluster.stats.events_per_virtual_second_peak,
        patterns: cluster.stats.patterns.clone(),
        snapshots_installed: cluster.stats.snapshots_installed,
        legal_appends_sent: cluster.stats.legal_appends_sent,
        disk: crate::cluster::DiskCounts { disk_errors: cluster.stats.disk_errors, ..cluster.disk_counts() },
        storage: shape.storage,
        late_replies_delivered: cluster.stats.late_replies_delivered,
        crashes_ahead_of_fsync: cluster.stats.crashes_ahead_of_fsync,
        nodes: n,
        events,
        crashes_disarmed_at_heal,
        strike_cancelled_at_heal,
        liveness_attempts,
        leaders_elected_behind_a_commit: cluster.stats.leaders_elected_behind_a_commit,
        committed: cluster.checker.max_index,
        virtual_ms: cluster.now_ms(),
    }
}

/// Any moment with any strike, but a third of the time a follower times out right after the leader sent
/// entries or a snapshot: the leader is deposed and often re-elected while the answers to what it sent are
/// still in flight, the setting in which an answer from an earlier term can be mistaken for one of this term.
/// And a third of the rest, a new leader gets very late answers from its earlier reigns, or sends unprompted
/// appends to followers that may still hold an old leader's entries.
pub(crate) fn draw_nemesis(rng: &mut Rng) -> Nemesis {
    // One in eight: the leader dies between sending entries and its own fsync of them.
    if rng.chance(1, 8) {
        let strike = if rng.chance(1, 2) { Strike::TornPersist } else { Strike::Crash };
        return Nemesis { moment: Moment::SentAheadOfFsync, strike };
    }
    if rng.chance(1, 3) {
        let moment = if rng.chance(1, 2) { Moment::SnapshotSent } else { Moment::Uncommitted };
        return Nemesis { moment, strike: Strike::FollowerTimesOut };
    }
    // A node that leads again, in a later term, while answers from its earlier reign are still around; or a new
    // leader whose followers still hold an old leader's entries.
    if rng.chance(1, 3) {
        let strike = if rng.chance(1, 2) { Strike::LateReplies } else { Strike::UnpromptedAppends };
        return Nemesis { moment: Moment::Elected, strike };
    }
    let moment = Nemesis::MOMENTS[rng.range(0, Nemesis::MOMENTS.len() as u64) as usize];
    let strike = Nemesis::STRIKES[rng.range(0, Nemesis::STRIKES.len() as u64) as usize];
    Nemesis { moment, strike }
}

fn run_with_clients(cluster: &mut Cluster, ms: u64, command: &mut u64, unprompted_appends_per_mille: u64) {
    let end = cluster.now_ms() + ms;
    while cluster.now_ms() < end {
        let next = (cluster.now_ms() + CLIENT_PERIOD_MS).min(end);
        cluster.run_until(next);
        *command += 1;
        for i in 0..cluster.nodes() {
            cluster.propose(i, unique_command(*command, i));
        }
        if unprompted_appends_per_mille > 0 && cluster.rng().chance(unprompted_appends_per_mille, 1000) {
            let newest_leader = cluster.leader_terms().into_iter().max_by_key(|(_, term)| *term).map(|(i, _)| i);
            if let Some(leader) = newest_leader {
                let n = cluster.nodes() as u64;
                let follower = (leader + 1 + cluster.rng().range(0, n - 1) as usize) % cluster.nodes();
                cluster.send_legal_append(leader, follower);
            }
        }
    }
}

/// Every proposal carries its target, so no two leaders ever propose the same bytes: the checkers compare
/// commands, and identical commands from different terms would hide a divergence.
fn unique_command(counter: u64, node: usize) -> Vec<u8> {
    (counter * 16 + node as u64).to_le_bytes().to_vec()
}

/// The newest leader sends every follower an unprompted (legal) AppendEntries or snapshot.
pub(crate) fn send_unprompted_appends(cluster: &mut Cluster) {
    let newest_leader = cluster.leader_terms().into_iter().max_by_key(|(_, term)| *term).map(|(i, _)| i);
    if let Some(leader) = newest_leader {
        for follower in 0..cluster.nodes() {
            cluster.send_legal_append(leader, follower);
        }
    }
}

/// Injects one fault; returns whether it healed something (a partition, a node, a link).
pub(crate) fn inject_fault(cluster: &mut Cluster, rng: &mut Rng) -> bool {
    let n = cluster.nodes();
    let node = rng.range(0, n as u64) as usize;
    let leader = cluster.leader_terms().into_iter().max_by_key(|(_, term)| *term).map(|(i, _)| i);
    match rng.range(0, 100) {
        0..15 => {
            let groups: Vec<u32> = (0..n).map(|_| rng.range(0, 2) as u32).collect();
            cluster.partition(&groups);
        }
        15..23 => {
            cluster.partition(&vec![0; n]);
            return true;
        }
        23..33 => cluster.crash(node),
        // Leaders crash right after appending: the Figure 8 pattern.
        33..45 => cluster.crash(leader.unwrap_or(node)),
        45..52 => {
            let target = leader.filter(|_| rng.chance(1, 2)).unwrap_or(node);
            // On a simulated disk, a third of these are a failed write or fdatasync instead of a power cut.
            if !(rng.chance(1, 3) && cluster.disk_error_at_next_persist(target)) {
                cluster.crash_before_next_persist(target);
            }
        }
        // A quick bounce loses exactly the volatile state (and tests what was made durable before replies).
        52..60 => cluster.restart(node),
        60..75 => {
            if let Some(down) = (0..n).map(|k| (node + k) % n).find(|&i| !cluster.is_alive(i)) {
                cluster.restart(down);
                return true;
            }
        }
        75..81 => cluster.disconnect(node),
        81..88 => {
            cluster.connect(node);
            return true;
        }
        88..91 => {
            let reliable = !cluster.net.reliable;
            cluster.set_reliable(reliable);
        }
        91..94 => {
            let on = !cluster.net.long_reordering;
            cluster.set_long_reordering(on);
        }
        // One-way: `node` stops hearing someone (A hears B, B does not hear A).
        94..96 => {
            let other = (node + 1 + rng.range(0, n as u64 - 1) as usize) % n;
            cluster.cut_link(other, node, true);
        }
        // Cut off from the leader only: it still hears, and is heard by, everyone else.
        96 => {
            if let Some(leader) = leader.filter(|&l| l != node) {
                cluster.cut_link(leader, node, true);
                cluster.cut_link(node, leader, true);
            }
        }
        97 => {
            cluster.clear_cuts();
            return true;
        }
        _ => cluster.loss_burst(rng.range(50, 1500)),
    }
    false
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

/// Ends every fault; returns how many crashes were still armed, and whether a nemesis strike was pending.
pub(crate) fn heal(cluster: &mut Cluster) -> (u32, bool) {
    let n = cluster.nodes();
    let disarmed = cluster.cancel_pending_crashes();
    let strike_cancelled = cluster.disarm_nemesis();
    cluster.clear_cuts();
    cluster.loss_burst(0);
    cluster.partition(&vec![0; n]);
    cluster.set_reliable(true);
    cluster.set_long_reordering(false);
    for i in 0..n {
        if !cluster.is_alive(i) {
            cluster.restart(i);
        }
        cluster.connect(i);
    }
    (disarmed, strike_cancelled)
}

/// After the heal, one new command must reach every server's state machine within the limit. As in 6.824's
/// `one()`, an attempt that does not commit within [`liveness_attempt_ms`] is proposed again (its leader may have
/// been deposed), until the overall limit.
fn check_liveness(cluster: &mut Cluster, command: &mut u64, raft: &RaftOptions) -> u32 {
    let limit_ms = liveness_limit_ms(raft);
    let attempt_ms = liveness_attempt_ms(raft);
    let deadline = cluster.now_ms() + limit_ms;
    let mut attempt: Option<(u64, Vec<u8>, u64)> = None;
    let mut attempts = 0;
    while cluster.now_ms() < deadline {
        let next = cluster.now_ms() + CLIENT_PERIOD_MS;
        cluster.run_until(next);
        if attempt.as_ref().is_none_or(|(_, _, started)| cluster.now_ms() - started >= attempt_ms) {
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
    cluster.fail(&format!("liveness: no command proposed after the heal was applied everywhere within {limit_ms} ms"));
}
