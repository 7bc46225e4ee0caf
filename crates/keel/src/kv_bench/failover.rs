//! `keel kv bench --failover`: how long a cluster refuses writes when its leader dies. It starts its own
//! cluster (`keel kv serve` processes, data in a temporary directory, default timeouts), keeps a light write
//! load on it, and for each trial: kills the leader with SIGKILL, times until a write sent to one of the
//! survivors succeeds, restarts the killed node and waits until it has caught up, then lets the cluster settle.
//!
//! The time is measured as a client sees it: from the kill to the first successful write. Probes (writes without
//! a session, to the survivors in turn) leave every `PROBE_INTERVAL_MS` whether or not earlier ones answered,
//! because a probe that reached a follower still loyal to the dead leader may wait a long time; the first probe
//! to succeed ends the trial.
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use hyper::body::Bytes;
use hyper::{Method, StatusCode};

use super::target::{Http, exchange, http_client};

/// A new probe leaves this often: the resolution of the measurement.
const PROBE_INTERVAL_MS: u64 = 5;
/// One probe waits at most this long (a probe forwarded to a dead leader fails or times out; later probes go on).
const PROBE_TIMEOUT_MS: u64 = 3_000;
/// A trial with no successful write for this long has failed: the cluster did not recover.
const RECOVERY_DEADLINE_MS: u64 = 30_000;
/// Starting, electing and catching up each get this long before the run gives up with the nodes' logs.
const CLUSTER_WAIT_MS: u64 = 30_000;
/// After a restarted node caught up, the cluster runs this long under load before the next kill, so a trial
/// starts from a steady cluster (heartbeats flowing, the restarted node a follower).
const SETTLE_MS: u64 = 500;
/// The background load pauses this long between writes: light, so the failover time is not a queueing effect.
const LOAD_PAUSE_MS: u64 = 10;

pub struct FailoverPlan {
    pub nodes: u64,
    pub trials: u32,
    pub json: Option<PathBuf>,
}

struct Node {
    id: u64,
    http: SocketAddr,
    raft: SocketAddr,
    child: Option<Child>,
}

/// The cluster this command started. Dropping it kills every node (SIGKILL, then reaped) before the temporary
/// directory goes, so nothing is left behind on any exit path, errors and Ctrl-C included.
struct OwnCluster {
    nodes: Vec<Node>,
    exe: PathBuf,
    // Declared last: dropped after the nodes are dead.
    dir: tempfile::TempDir,
}

impl Drop for OwnCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

fn free_addresses(n: usize) -> anyhow::Result<Vec<SocketAddr>> {
    // All bound at once so they differ; released just before the nodes bind them.
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").context("cannot bind a free port on 127.0.0.1"))
        .collect::<anyhow::Result<Vec<_>>>()?;
    listeners.iter().map(|l| l.local_addr().context("reading a bound port back")).collect()
}

impl OwnCluster {
    fn new(size: u64) -> anyhow::Result<OwnCluster> {
        let exe = std::env::current_exe().context("cannot find the keel binary to start the nodes with")?;
        let dir = tempfile::Builder::new()
            .prefix("keel-failover-")
            .tempdir()
            .context("cannot create a temporary directory")?;
        let addresses = free_addresses(2 * size as usize)?;
        let nodes = (1..=size)
            .map(|id| {
                let slot = 2 * (id - 1) as usize;
                Node { id, http: addresses[slot], raft: addresses[slot + 1], child: None }
            })
            .collect();
        Ok(OwnCluster { nodes, exe, dir })
    }

    fn log_path(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("node-{id}.log"))
    }

    fn start(&mut self, id: u64) -> anyhow::Result<()> {
        let peers: Vec<String> =
            self.nodes.iter().filter(|p| p.id != id).map(|p| format!("{}={}", p.id, p.raft)).collect();
        let log_path = self.log_path(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .with_context(|| format!("cannot open {}", log_path.display()))?;
        let log_err = log.try_clone().context("cannot share the node's log file")?;
        let data_dir = self.dir.path().join(format!("node-{id}"));
        let node = &mut self.nodes[(id - 1) as usize];
        let mut command = Command::new(&self.exe);
        command
            .args(["kv", "serve", "--id", &id.to_string(), "--cluster-id", "keel-failover"])
            .arg("--data-dir")
            .arg(&data_dir)
            .args(["--listen", &node.raft.to_string(), "--http", &node.http.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        if !peers.is_empty() {
            command.arg("--peers").arg(peers.join(","));
        }
        let child = command.spawn().with_context(|| format!("cannot start node {id} ({})", self.exe.display()))?;
        node.child = Some(child);
        Ok(())
    }

    fn kill9(&mut self, id: u64) -> anyhow::Result<()> {
        let node = &mut self.nodes[(id - 1) as usize];
        let mut child = node.child.take().with_context(|| format!("node {id} is not running"))?;
        child.kill().with_context(|| format!("cannot kill node {id}"))?;
        child.wait().with_context(|| format!("cannot reap node {id}"))?;
        Ok(())
    }

    fn running(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|node| node.child.is_some())
    }

    /// The last lines of every node's log, for an error message.
    fn logs(&self) -> String {
        let mut text = String::new();
        for node in &self.nodes {
            let log = std::fs::read_to_string(self.log_path(node.id)).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            text.push_str(&format!("--- node {} (last lines of its log)\n", node.id));
            for line in &lines[lines.len().saturating_sub(8)..] {
                text.push_str(line);
                text.push('\n');
            }
        }
        text
    }
}

async fn status(http: &Http, address: SocketAddr) -> Option<serde_json::Value> {
    let uri = format!("http://{address}/v1/status");
    match exchange(http, Method::GET, &uri, &[], Bytes::new(), Duration::from_millis(500)).await {
        Ok((StatusCode::OK, body)) => serde_json::from_slice(&body).ok(),
        _ => None,
    }
}

/// The leader every running node names (the leader itself included), once there is one: (id, its commit index).
async fn wait_for_leader(http: &Http, cluster: &OwnCluster) -> anyhow::Result<(u64, u64)> {
    let until = Instant::now() + Duration::from_millis(CLUSTER_WAIT_MS);
    while Instant::now() < until {
        let mut named = Vec::new();
        let mut leader_commit = None;
        for node in cluster.running() {
            let status = status(http, node.http).await;
            named.push(status.as_ref().and_then(|s| s["leader"].as_u64()));
            if let Some(s) = status.filter(|s| s["role"] == "leader") {
                leader_commit = s["commit_index"].as_u64().map(|commit| (node.id, commit));
            }
        }
        if let Some((leader, commit)) = leader_commit
            && named.iter().all(|n| *n == Some(leader))
        {
            return Ok((leader, commit));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("no leader that every running node agrees on within {CLUSTER_WAIT_MS} ms\n{}", cluster.logs())
}

/// Waits until node `id` has applied at least `index`.
async fn wait_applied(http: &Http, cluster: &OwnCluster, id: u64, index: u64) -> anyhow::Result<()> {
    let address = cluster.nodes[(id - 1) as usize].http;
    let until = Instant::now() + Duration::from_millis(CLUSTER_WAIT_MS);
    while Instant::now() < until {
        if let Some(applied) = status(http, address).await.and_then(|s| s["applied_index"].as_u64())
            && applied >= index
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    bail!("node {id} did not apply index {index} within {CLUSTER_WAIT_MS} ms of its restart\n{}", cluster.logs())
}

/// From now until the first probe write to one of `survivors` succeeds.
async fn time_until_write(survivors: &[SocketAddr], started: Instant) -> anyhow::Result<Duration> {
    let (done_tx, mut done_rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    let mut probes = tokio::task::JoinSet::new();
    let http = http_client();
    let deadline = started + Duration::from_millis(RECOVERY_DEADLINE_MS);
    let mut sent: u64 = 0;
    let mut next_probe = tokio::time::interval(Duration::from_millis(PROBE_INTERVAL_MS));
    next_probe.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let outcome = loop {
        tokio::select! {
            finished = done_rx.recv() => match finished {
                Some(at) => break Ok(at.duration_since(started)),
                None => break Err(anyhow::anyhow!("the probes stopped reporting")),
            },
            _ = next_probe.tick() => {
                if Instant::now() >= deadline {
                    break Err(anyhow::anyhow!(
                        "no write succeeded within {RECOVERY_DEADLINE_MS} ms of the kill ({sent} probes sent)"
                    ));
                }
                let address = survivors[(sent as usize) % survivors.len()];
                sent += 1;
                let uri = format!("http://{address}/v1/kv/failover-probe");
                let (http, done_tx) = (http.clone(), done_tx.clone());
                probes.spawn(async move {
                    let timeout = Duration::from_millis(PROBE_TIMEOUT_MS);
                    let body = Bytes::from(format!("probe {sent}"));
                    if let Ok((status, _)) = exchange(&http, Method::PUT, &uri, &[], body, timeout).await
                        && status.is_success()
                    {
                        let _ = done_tx.send(Instant::now());
                    }
                });
            }
        }
    };
    probes.abort_all();
    outcome
}

/// The background load: one writer through `keel-kv-client` (which retries across nodes, as an application
/// would), pausing between writes. Returns (writes done, writes failed) when told to stop.
async fn light_load(endpoints: Vec<String>, mut stop: tokio::sync::watch::Receiver<bool>) -> (u64, u64) {
    let Ok(mut client) = keel_kv_client::Client::new(endpoints, keel_kv_client::ClientOptions::default()) else {
        return (0, 0);
    };
    let (mut done, mut failed) = (0, 0);
    let mut n: u64 = 0;
    while !*stop.borrow() {
        n += 1;
        let key = format!("load-{}", n % 100);
        let write = client.put(&key, "x");
        tokio::select! {
            result = write => if result.is_ok() { done += 1 } else { failed += 1 },
            _ = stop.changed() => break,
        }
        tokio::time::sleep(Duration::from_millis(LOAD_PAUSE_MS)).await;
    }
    (done, failed)
}

pub struct TrialResult {
    pub killed: u64,
    pub new_leader: u64,
    pub write_after: Duration,
}

pub async fn run(plan: &FailoverPlan) -> anyhow::Result<()> {
    anyhow::ensure!(plan.nodes >= 3, "--failover needs at least 3 nodes (a majority must survive the kill)");
    let mut cluster = OwnCluster::new(plan.nodes)?;
    println!(
        "keel kv bench --failover: {} nodes in {}, {} trials",
        plan.nodes,
        cluster.dir.path().display(),
        plan.trials
    );
    for id in 1..=plan.nodes {
        cluster.start(id)?;
    }
    let http = http_client();
    wait_for_leader(&http, &cluster).await?;
    let endpoints: Vec<String> = cluster.nodes.iter().map(|n| format!("http://{}", n.http)).collect();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let load = tokio::spawn(light_load(endpoints, stop_rx));

    let trials = async {
        let mut results = Vec::new();
        for trial in 1..=plan.trials {
            tokio::time::sleep(Duration::from_millis(SETTLE_MS)).await;
            let (leader, _) = wait_for_leader(&http, &cluster).await?;
            let survivors: Vec<SocketAddr> = cluster.running().filter(|n| n.id != leader).map(|n| n.http).collect();
            let killed_at = Instant::now();
            cluster.kill9(leader)?;
            let write_after = time_until_write(&survivors, killed_at).await.map_err(|e| {
                anyhow::anyhow!("trial {trial}: after killing leader {leader}: {e}\n{}", cluster.logs())
            })?;
            let (new_leader, _) = wait_for_leader(&http, &cluster).await?;
            println!(
                "trial {trial:>3}: killed leader {leader}; a write succeeded after {:>7.1} ms (new leader {new_leader})",
                write_after.as_secs_f64() * 1e3
            );
            results.push(TrialResult { killed: leader, new_leader, write_after });
            cluster.start(leader)?;
            let (_, commit) = wait_for_leader(&http, &cluster).await?;
            wait_applied(&http, &cluster, leader, commit).await?;
        }
        anyhow::Ok(results)
    };
    let results = tokio::select! {
        results = trials => results,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted; the cluster is stopped and its directory removed")),
    };
    let _ = stop_tx.send(true);
    let (writes, write_errors) = load.await.unwrap_or((0, 0));
    drop(cluster);
    let results = results?;
    print_summary(&results, writes, write_errors);
    if let Some(path) = &plan.json {
        write_json(path, &results, writes, write_errors)?;
    }
    Ok(())
}

/// The value at quantile `q` of sorted `values` (nearest rank).
fn nearest_rank(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn distribution(results: &[TrialResult]) -> [(&'static str, Duration); 4] {
    let mut times: Vec<Duration> = results.iter().map(|r| r.write_after).collect();
    times.sort();
    [
        ("min", times.first().copied().unwrap_or_default()),
        ("median", nearest_rank(&times, 0.5)),
        ("p90", nearest_rank(&times, 0.9)),
        ("max", times.last().copied().unwrap_or_default()),
    ]
}

fn print_summary(results: &[TrialResult], writes: u64, write_errors: u64) {
    let cells: Vec<String> =
        distribution(results).iter().map(|(name, d)| format!("{name} {:.1} ms", d.as_secs_f64() * 1e3)).collect();
    println!(
        "failover over {} trials (kill -9 of the leader to the first successful write): {}",
        results.len(),
        cells.join(", ")
    );
    println!("background load: {writes} writes through keel-kv-client, {write_errors} failed");
}

fn write_json(path: &Path, results: &[TrialResult], writes: u64, write_errors: u64) -> anyhow::Result<()> {
    let mut summary = serde_json::Map::new();
    for (name, duration) in distribution(results) {
        summary.insert(format!("{name}_ms"), serde_json::json!(duration.as_secs_f64() * 1e3));
    }
    let document = serde_json::json!({
        "failover": {
            "trials": results.iter().map(|r| serde_json::json!({
                "killed": r.killed,
                "new_leader": r.new_leader,
                "write_after_ms": r.write_after.as_secs_f64() * 1e3,
            })).collect::<Vec<_>>(),
            "summary": summary,
            "background_writes": writes,
            "background_write_errors": write_errors,
        }
    });
    let text = serde_json::to_string_pretty(&document).context("encoding the results")?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write the results to {}", path.display()))
}
