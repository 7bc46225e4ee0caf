//! Steps 1 to 5 of the demo: a 3-node keel kv cluster as real processes, clients under load, SIGKILL of the
//! leader, the failover timed from outside (polling every node's `/v1/status`), the first write after the
//! kill, the restart and catch-up of the killed node, and the linearizability check of everything the clients
//! saw.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use keel_lincheck::{KvModel, SearchLimits, Verdict, check};

use super::kv_cluster::KvCluster;
use super::kv_load::{Recorder, client_loop, final_reads, probe_first_write};
use super::narrator::{Narrator, human};
use super::processes::Processes;

const NODES: u64 = 3;
/// A first election takes one election timeout (300-600 ms by default) plus a round trip; the rest is room for
/// a machine busy with other work.
const LEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// How often every node's status is polled while waiting for a leader: the measured failover is at most this
/// (plus a loopback round trip) too long.
const FAILOVER_POLL: Duration = Duration::from_millis(2);
/// How often the restarted node and the leader are compared while it catches up.
const CATCH_UP_POLL: Duration = Duration::from_millis(5);
/// A restarted node replays its WAL and receives what it missed in a few hundred milliseconds; this is the
/// bound past which the demo says it did not.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(30);
/// Clients that have not stopped this long after being asked are stuck past their own deadlines.
const CLIENT_STOP_TIMEOUT: Duration = Duration::from_secs(30);

/// How long each phase of the load lasts.
#[derive(Clone, Copy, Debug)]
pub struct KvPlan {
    pub clients: u64,
    pub keys: u64,
    /// Load before the leader is killed.
    pub load_before_kill: Duration,
    /// After the first write following the kill, before the killed node is restarted: the cluster runs on two
    /// nodes and the dead one falls behind.
    pub degraded: Duration,
    /// The load runs at least this long in all...
    pub load_total_min: Duration,
    /// ...and at least this long after the restarted node caught up.
    pub load_after_catch_up: Duration,
}

/// How the linearizability check ended.
#[derive(Clone, Debug)]
pub enum CheckVerdict {
    Linearizable,
    NotLinearizable(String),
    Undecided(String),
}

/// What steps 1-5 measured.
#[derive(Clone, Debug)]
pub struct KvFigures {
    pub first_election: Duration,
    pub killed: u64,
    pub new_leader: u64,
    pub failover: Duration,
    pub first_write: Duration,
    pub catch_up: Duration,
    pub caught_up_applied: u64,
    pub caught_up_leader_commit: u64,
    pub operations: usize,
    pub unknown: u64,
    pub verdict: CheckVerdict,
    pub check_time: Duration,
}

pub async fn run(
    plan: KvPlan,
    exe: &Path,
    dir: &Path,
    processes: &mut Processes,
    narrator: &Narrator,
) -> Result<KvFigures> {
    let mut cluster = KvCluster::plan(exe, dir, NODES)?;
    narrator.say(format!(
        "step 1: starting a {NODES}-node keel kv cluster, one `keel kv serve` process per node, on free loopback ports"
    ));
    let start = Instant::now();
    for id in 1..=NODES {
        cluster.start_node(id, processes).await?;
        let node = cluster.node(id);
        narrator.say(format!("node {id} is up: pid {}, HTTP {}, Raft {}", node.pid.unwrap_or(0), node.http, node.raft));
    }
    let (leader, found_at) = cluster.wait_for_leader(LEADER_TIMEOUT, FAILOVER_POLL).await?;
    let first_election = found_at.duration_since(start);
    narrator.say(format!(
        "node {} leads (term {}), {} after the first start",
        leader.id,
        leader.term,
        human(first_election)
    ));

    // Step 2: the load.
    let recorder = Recorder::new();
    let stop = Arc::new(AtomicBool::new(false));
    let load_started = Instant::now();
    let clients: Vec<_> = (1..=plan.clients)
        .map(|id| tokio::spawn(client_loop(id, cluster.endpoints(), plan.keys, recorder.clone(), stop.clone())))
        .collect();
    narrator.say(format!(
        "step 2: {} clients (keel-kv-client) run gets, puts and appends on {} keys; every call and return is recorded",
        plan.clients, plan.keys
    ));
    let outcome = async {
        tokio::time::sleep(plan.load_before_kill).await;
        fail_over_and_catch_up(plan, &mut cluster, processes, &recorder, load_started, narrator).await
    }
    .await;
    // Stop the load whether or not the steps above worked: the clients must not outlive the cluster.
    stop.store(true, Ordering::Relaxed);
    let (failover, catch_up) = outcome?;
    let mut client_errors = Vec::new();
    for (slot, client) in clients.into_iter().enumerate() {
        match tokio::time::timeout(CLIENT_STOP_TIMEOUT, client).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(error))) => client_errors.push(format!("{error:#}")),
            Ok(Err(error)) => client_errors.push(format!("client {} crashed: {error}", slot + 1)),
            Err(_) => client_errors.push(format!("client {} did not stop within 30 s", slot + 1)),
        }
    }
    if !client_errors.is_empty() {
        bail!("the load failed: {}", client_errors.join("; "));
    }
    let load_time = load_started.elapsed();
    let acknowledged = recorder.acknowledged.load(Ordering::Relaxed);
    let unknown = recorder.unknown.load(Ordering::Relaxed);
    narrator.say(format!(
        "the load stopped after {}: {} operations ({:.0}/s), {acknowledged} acknowledged, {unknown} with an unknown outcome",
        human(load_time),
        recorder.operations(),
        recorder.operations() as f64 / load_time.as_secs_f64().max(1e-3),
    ));
    let read = final_reads(0, cluster.node(failover.killed).endpoint(), plan.keys, &recorder)
        .await
        .with_context(|| format!("after the load{}", cluster.logs()))?;
    narrator.say(format!("read all {read} keys back through node {}, the restarted one", failover.killed));

    // Step 5: the check.
    let history = recorder.history();
    // Every client has stopped: each counted operation is in the history, once.
    assert_eq!(history.len() as u64, recorder.operations(), "the history lost or doubled an operation");
    narrator.say(format!(
        "step 5: checking the {} recorded operations for linearizability (keel-lincheck, KvModel)",
        history.len()
    ));
    let operations = history.len();
    let check_started = Instant::now();
    let verdict = tokio::task::spawn_blocking(move || check(&KvModel, &history, SearchLimits::default()))
        .await
        .map_err(|e| anyhow!("the checker crashed: {e}"))?
        .map_err(|e| anyhow!("the recorded history is malformed: {e}"))?;
    let check_time = check_started.elapsed();
    let verdict = match verdict {
        Verdict::Linearizable => {
            narrator.say(format!("the checker says: linearizable ({operations} operations, {})", human(check_time)));
            CheckVerdict::Linearizable
        }
        Verdict::NotLinearizable(report) => {
            narrator.say(format!("the checker says: NOT linearizable\n{report}"));
            CheckVerdict::NotLinearizable(report.key.clone())
        }
        Verdict::Unknown { keys } => {
            let keys = keys.join(", ");
            narrator.say(format!("the checker could not decide keys {keys} within its search bound"));
            CheckVerdict::Undecided(keys)
        }
    };

    narrator.say("stopping the cluster (SIGTERM: each node finishes its round, closes its log and exits)");
    cluster.stop_all(processes).await?;
    narrator.say("every node stopped cleanly");
    Ok(KvFigures {
        first_election,
        killed: failover.killed,
        new_leader: failover.new_leader,
        failover: failover.without_leader,
        first_write: failover.first_write,
        catch_up: catch_up.took,
        caught_up_applied: catch_up.applied,
        caught_up_leader_commit: catch_up.leader_commit,
        operations,
        unknown,
        verdict,
        check_time,
    })
}

struct Failover {
    killed: u64,
    new_leader: u64,
    without_leader: Duration,
    first_write: Duration,
}

struct CatchUp {
    took: Duration,
    applied: u64,
    leader_commit: u64,
}

/// Steps 3 and 4, while the load runs; returns when the load may stop.
async fn fail_over_and_catch_up(
    plan: KvPlan,
    cluster: &mut KvCluster,
    processes: &mut Processes,
    recorder: &Recorder,
    load_started: Instant,
    narrator: &Narrator,
) -> Result<(Failover, CatchUp)> {
    // Step 3: the kill.
    let (leader, _) = cluster.wait_for_leader(LEADER_TIMEOUT, FAILOVER_POLL).await?;
    let so_far = recorder.operations();
    narrator.say(format!(
        "step 3: {so_far} operations so far; killing the leader, node {} (pid {}), with SIGKILL",
        leader.id,
        cluster.node(leader.id).pid.unwrap_or(0)
    ));
    if so_far == 0 {
        bail!("the clients completed no operation in {} of load{}", human(plan.load_before_kill), cluster.logs());
    }
    cluster.kill9(leader.id, processes)?;
    let killed_at = Instant::now();
    let probe_id = plan.clients + 1;
    let probe = tokio::spawn(probe_first_write(probe_id, cluster.endpoints(), recorder.clone(), LEADER_TIMEOUT));
    let (new_leader, found_at) = cluster.wait_for_leader(LEADER_TIMEOUT, FAILOVER_POLL).await?;
    let without_leader = found_at.duration_since(killed_at);
    // The killed node is not polled (it is not running), so it cannot be the one found.
    assert_ne!(new_leader.id, leader.id, "a killed node reported itself leader");
    narrator.say(format!(
        "node {} leads (term {}): the cluster was without a leader for {} (every node polled every {} ms)",
        new_leader.id,
        new_leader.term,
        human(without_leader),
        FAILOVER_POLL.as_millis()
    ));
    let first_write_at = probe
        .await
        .map_err(|e| anyhow!("the probe crashed: {e}"))?
        .with_context(|| format!("after the kill of node {}{}", leader.id, cluster.logs()))?;
    let first_write = first_write_at.duration_since(killed_at);
    narrator.say(format!("the first write after the kill was acknowledged {} after it", human(first_write)));

    // Step 4: the restart.
    tokio::time::sleep(plan.degraded).await;
    let killed = leader.id;
    narrator.say(format!(
        "step 4: restarting node {killed} on its data directory ({} operations so far, it missed them since the kill)",
        recorder.operations()
    ));
    let restarted_at = Instant::now();
    cluster.start_node(killed, processes).await?;
    let ready = restarted_at.elapsed();
    let first = cluster.status(killed).await;
    narrator.say(format!(
        "node {killed} is back (pid {}) after {}{}",
        cluster.node(killed).pid.unwrap_or(0),
        human(ready),
        first.map(|s| format!(", applied index {}: catching up", s.applied_index)).unwrap_or_default()
    ));
    let catch_up = wait_for_catch_up(cluster, killed, restarted_at).await?;
    narrator.say(format!(
        "node {killed} caught up: applied index {} >= the leader's commit index {}, {} after its restart",
        catch_up.applied,
        catch_up.leader_commit,
        human(catch_up.took)
    ));

    let end = (load_started + plan.load_total_min).max(Instant::now() + plan.load_after_catch_up);
    tokio::time::sleep_until(end.into()).await;
    Ok((Failover { killed, new_leader: new_leader.id, without_leader, first_write }, catch_up))
}

/// Polls until the restarted node has applied everything the leader had committed a moment before (the load
/// goes on, so the leader's commit index is sampled first, then the node's applied index).
async fn wait_for_catch_up(cluster: &KvCluster, node: u64, restarted_at: Instant) -> Result<CatchUp> {
    let until = restarted_at + CATCH_UP_TIMEOUT;
    let mut last = String::from("no status yet");
    loop {
        let mut leader_commit = None;
        for other in cluster.nodes.iter().filter(|n| n.running && n.id != node) {
            if let Some(status) = cluster.status(other.id).await
                && status.role == "leader"
            {
                leader_commit = Some(status.commit_index);
            }
        }
        if let (Some(leader_commit), Some(status)) = (leader_commit, cluster.status(node).await) {
            if status.applied_index >= leader_commit {
                return Ok(CatchUp { took: restarted_at.elapsed(), applied: status.applied_index, leader_commit });
            }
            last = format!("applied index {}, the leader's commit index {leader_commit}", status.applied_index);
        }
        if Instant::now() >= until {
            bail!(
                "node {node} did not catch up within {} s of its restart ({last}){}",
                CATCH_UP_TIMEOUT.as_secs(),
                cluster.logs()
            );
        }
        tokio::time::sleep(CATCH_UP_POLL).await;
    }
}
