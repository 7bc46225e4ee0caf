//! `keel raft demo`: a simulated cluster under a stream of client commands and faults, narrated as it runs.
use std::io::{self, Write};

use keel_raft::Index;

use crate::cluster::{Cluster, ClusterConfig, RaftOptions, Snapshots, StorageKind};

#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub seed: u64,
    pub nodes: usize,
    /// Virtual seconds of faults and traffic before the final heal.
    pub duration_s: u64,
    pub unreliable: bool,
    /// PreVote and CheckQuorum (see `keel_raft::Config`).
    pub raft: RaftOptions,
}

#[derive(Clone, Debug, Default)]
pub struct DemoSummary {
    pub elections: u64,
    pub final_term: u64,
    pub proposals_accepted: u64,
    /// Entries every node applied by the end (all agree: the checkers ran on every apply).
    pub committed_everywhere: Index,
    pub crashes: u64,
    pub partitions: u64,
    pub messages_delivered: u64,
    pub bytes: u64,
    pub virtual_ms: u64,
    pub trace_hash: u64,
}

/// Client commands are offered every this many virtual ms.
const CLIENT_PERIOD_MS: u64 = 50;
/// How long after the heal the demo waits for every node to catch up before it gives up.
const CATCH_UP_LIMIT_MS: u64 = 20_000;

enum Fault {
    None,
    Crashed(usize),
    Partitioned,
    Disconnected(usize),
}

pub fn run_demo(options: &DemoOptions, out: &mut dyn Write) -> io::Result<DemoSummary> {
    let n = options.nodes;
    let mut cluster = Cluster::new(ClusterConfig {
        nodes: n,
        seed: options.seed,
        reliable: !options.unreliable,
        snapshots: Snapshots::Never,
        raft: options.raft,
        storage: StorageKind::Memory,
        service: crate::sim_service::ServiceKind::Tester,
    });
    let mut summary = DemoSummary::default();
    let mut known_leader = None;
    let mut fault = Fault::None;
    let mut next_fault_ms = 3_000;
    let mut next_report_ms = 1_000;
    let mut command = 0u64;
    let end_ms = options.duration_s * 1000;
    let extensions = match (options.raft.pre_vote, options.raft.check_quorum) {
        (false, false) => "Figure 2 as written",
        (true, true) => "PreVote and CheckQuorum",
        (true, false) => "PreVote",
        (false, true) => "CheckQuorum",
    };
    writeln!(
        out,
        "keel raft demo: {n} simulated nodes, seed {}, {} network, {extensions}",
        options.seed,
        network(options)
    )?;

    while cluster.now_ms() < end_ms {
        let now = cluster.now_ms() + CLIENT_PERIOD_MS;
        cluster.run_until(now);
        summary.elections += narrate_leader(&cluster, &mut known_leader, out)?;
        // The client offers a few commands to whichever node currently accepts them.
        for _ in 0..3 {
            command += 1;
            if (0..n).any(|i| cluster.propose(i, command.to_le_bytes().to_vec()).is_some()) {
                summary.proposals_accepted += 1;
            }
        }
        if now >= next_report_ms {
            next_report_ms += 1_000;
            let committed = (0..n).map(|i| cluster.checker.last_applied(i)).max().unwrap_or(0);
            writeln!(out, "{}  committed through index {committed}", stamp(now))?;
        }
        if now >= next_fault_ms {
            next_fault_ms = now + cluster.rng().range(2_000, 5_000);
            fault = next_fault(&mut cluster, fault, &mut summary, out)?;
        }
    }
    heal(&mut cluster, fault, out)?;
    let target = (0..n).map(|i| cluster.checker.last_applied(i)).max().unwrap_or(0);
    let deadline = cluster.now_ms() + CATCH_UP_LIMIT_MS;
    // One more command: entries of earlier terms commit once the current leader commits one of its own.
    let final_command = u64::MAX.to_le_bytes().to_vec();
    let mut final_index = None;
    while cluster.now_ms() < deadline {
        let now = cluster.now_ms() + CLIENT_PERIOD_MS;
        cluster.run_until(now);
        summary.elections += narrate_leader(&cluster, &mut known_leader, out)?;
        if final_index.is_none() {
            final_index = (0..n).find_map(|i| cluster.propose(i, final_command.clone())).map(|(index, _)| index);
        }
        let everywhere = (0..n).map(|i| cluster.checker.last_applied(i)).min().unwrap_or(0);
        if final_index.is_some_and(|f| everywhere >= f.max(target)) {
            break;
        }
    }
    summary.committed_everywhere = (0..n).map(|i| cluster.checker.last_applied(i)).min().unwrap_or(0);
    summary.final_term = (0..n).filter_map(|i| cluster.state(i)).map(|(t, _)| t).max().unwrap_or(0);
    summary.messages_delivered = cluster.stats.messages_delivered;
    summary.bytes = cluster.stats.bytes;
    summary.virtual_ms = cluster.now_ms();
    summary.trace_hash = cluster.trace.hash();
    writeln!(out, "\nsummary")?;
    writeln!(out, "  virtual time        {:.1} s", summary.virtual_ms as f64 / 1000.0)?;
    writeln!(out, "  elections           {} (final term {})", summary.elections, summary.final_term)?;
    writeln!(out, "  faults              {} crashes, {} partitions", summary.crashes, summary.partitions)?;
    writeln!(out, "  commands accepted   {}", summary.proposals_accepted)?;
    writeln!(
        out,
        "  applied on all {n}    {} entries, identical on every node (checked on every apply)",
        summary.committed_everywhere
    )?;
    writeln!(out, "  messages delivered  {} ({} bytes of RPC traffic)", summary.messages_delivered, summary.bytes)?;
    writeln!(out, "  trace hash          {:016x} (same seed, same hash)", summary.trace_hash)?;
    Ok(summary)
}

fn network(options: &DemoOptions) -> &'static str {
    if options.unreliable { "unreliable (10% loss each way, 0-26 ms extra delay)" } else { "reliable" }
}

fn stamp(ms: u64) -> String {
    format!("[{:>6.2}s]", ms as f64 / 1000.0)
}

fn narrate_leader(cluster: &Cluster, known: &mut Option<(usize, u64)>, out: &mut dyn Write) -> io::Result<u64> {
    let newest = cluster.leader_terms().into_iter().max_by_key(|(_, term)| *term);
    if let Some((leader, term)) = newest
        && known.is_none_or(|(_, known_term)| term > known_term)
    {
        *known = Some((leader, term));
        writeln!(out, "{}  node {leader} elected leader of term {term}", stamp(cluster.now_ms()))?;
        return Ok(1);
    }
    Ok(0)
}

fn next_fault(cluster: &mut Cluster, previous: Fault, s: &mut DemoSummary, out: &mut dyn Write) -> io::Result<Fault> {
    heal(cluster, previous, out)?;
    let n = cluster.nodes();
    let leader = cluster.leader_terms().into_iter().max_by_key(|(_, t)| *t).map(|(i, _)| i);
    let now = cluster.now_ms();
    Ok(match cluster.rng().range(0, 3) {
        0 => {
            let victim = leader.unwrap_or(0);
            cluster.crash(victim);
            s.crashes += 1;
            writeln!(out, "{}  CRASH node {victim} (volatile state lost; durable state kept)", stamp(now))?;
            Fault::Crashed(victim)
        }
        1 => {
            // The leader and a minority on one side; the majority must elect a new leader.
            let mut groups = vec![1u32; n];
            let minority = (n - 1) / 2;
            let start = leader.unwrap_or(0);
            for k in 0..minority {
                groups[(start + k) % n] = 0;
            }
            cluster.partition(&groups);
            s.partitions += 1;
            writeln!(out, "{}  PARTITION {groups:?} (leader {start} cut off with a minority)", stamp(now))?;
            Fault::Partitioned
        }
        _ => {
            let victim = (leader.unwrap_or(0) + 1 + cluster.rng().range(0, n as u64 - 1) as usize) % n;
            cluster.disconnect(victim);
            writeln!(out, "{}  DISCONNECT follower {victim}", stamp(now))?;
            Fault::Disconnected(victim)
        }
    })
}

fn heal(cluster: &mut Cluster, fault: Fault, out: &mut dyn Write) -> io::Result<()> {
    let now = cluster.now_ms();
    match fault {
        Fault::None => {}
        Fault::Crashed(i) => {
            cluster.restart(i);
            writeln!(out, "{}  RESTART node {i} from its durable state", stamp(now))?;
        }
        Fault::Partitioned => {
            cluster.partition(&vec![0; cluster.nodes()]);
            writeln!(out, "{}  HEAL partition", stamp(now))?;
        }
        Fault::Disconnected(i) => {
            cluster.connect(i);
            writeln!(out, "{}  RECONNECT node {i}", stamp(now))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_elects_commits_everywhere_and_replays() {
        let options = DemoOptions { seed: 5, nodes: 5, duration_s: 20, unreliable: true, raft: RaftOptions::default() };
        let mut text = Vec::new();
        let first = run_demo(&options, &mut text).unwrap();
        let text = String::from_utf8(text).unwrap();
        assert!(first.elections >= 2, "faults should force re-elections:\n{text}");
        assert!(first.crashes + first.partitions >= 1, "{text}");
        assert!(first.committed_everywhere > 100, "all nodes should catch up after the heal:\n{text}");
        assert!(text.contains("elected leader") && text.contains("summary"));
        let again = run_demo(&options, &mut Vec::new()).unwrap();
        assert_eq!(first.trace_hash, again.trace_hash);
    }
}
