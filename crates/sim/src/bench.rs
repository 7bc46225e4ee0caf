//! Benchmarks of the simulator and the core (`keel raft bench`). Each figure comes with a baseline measured in
//! the same process, because wall-clock numbers on shared machines are noisy.
use std::time::{Duration, Instant};

use crate::catalogue::{ALL, Scenario};
use crate::cluster::{Cluster, ClusterConfig, Snapshots, StorageKind};
use crate::tester::TesterConfig;

/// Real time the Go reference spends on the same catalogue, from the 2023 6.824 handout's sample output
/// (see shared/reference/6824-tests.md, section 1.6): 2A 16.2 s, 2B 35.6 s, 2C 123.6 s, 2D 293.5 s.
pub const GO_REFERENCE_2A_TO_2C_S: f64 = 16.2 + 35.6 + 123.6;
pub const GO_REFERENCE_2D_S: f64 = 293.5;

pub struct CatalogueTiming {
    pub per_scenario: Vec<(&'static str, Duration)>,
    pub total_2a_to_2c: Duration,
    pub total_2d: Duration,
}

/// Runs every scenario once per seed in `seeds` and times it.
pub fn time_catalogue(seeds: &[u64]) -> CatalogueTiming {
    let mut per_scenario = Vec::new();
    let (mut total_2a_to_2c, mut total_2d) = (Duration::ZERO, Duration::ZERO);
    for Scenario { name, run } in ALL {
        let started = Instant::now();
        for &seed in seeds {
            run(&TesterConfig { quiet: true, ..TesterConfig::figure_2(seed) });
        }
        let elapsed = started.elapsed();
        if name.ends_with("_2d") {
            total_2d += elapsed;
        } else {
            total_2a_to_2c += elapsed;
        }
        per_scenario.push((*name, elapsed));
    }
    CatalogueTiming { per_scenario, total_2a_to_2c, total_2d }
}

pub struct Throughput {
    pub nodes: usize,
    pub committed: u64,
    pub virtual_s: f64,
    pub wall: Duration,
}

impl Throughput {
    pub fn per_wall_second(&self) -> f64 {
        self.committed as f64 / self.wall.as_secs_f64()
    }
    pub fn per_virtual_second(&self) -> f64 {
        self.committed as f64 / self.virtual_s
    }
}

/// A fault-free cluster whose leader receives `proposals_per_ms` new commands every virtual millisecond for
/// `virtual_s` seconds; counts the entries applied on every node.
pub fn throughput(nodes: usize, proposals_per_ms: u64, virtual_s: u64, seed: u64) -> Throughput {
    let mut cluster = Cluster::new(ClusterConfig {
        nodes,
        seed,
        reliable: true,
        snapshots: Snapshots::Never,
        raft: Default::default(),
        storage: StorageKind::Memory,
        service: crate::sim_service::ServiceKind::Tester,
    });
    // Let a leader emerge before the clock starts.
    cluster.run_until(2_000);
    let started_ms = cluster.now_ms();
    let start_applied = (0..nodes).map(|i| cluster.checker.last_applied(i)).min().unwrap_or(0);
    let wall_start = Instant::now();
    let mut command = 0u64;
    let mut leader = (0..nodes).find(|&i| cluster.state(i).is_some_and(|(_, l)| l)).unwrap_or(0);
    while cluster.now_ms() < started_ms + virtual_s * 1000 {
        for _ in 0..proposals_per_ms {
            command += 1;
            let data = command.to_le_bytes().to_vec();
            if cluster.propose(leader, data.clone()).is_none() {
                leader = (0..nodes).find(|&i| cluster.state(i).is_some_and(|(_, l)| l)).unwrap_or(leader);
                cluster.propose(leader, data);
            }
        }
        let next = cluster.now_ms() + 1;
        cluster.run_until(next);
    }
    let wall = wall_start.elapsed();
    let applied = (0..nodes).map(|i| cluster.checker.last_applied(i)).min().unwrap_or(0);
    Throughput { nodes, committed: applied - start_applied, virtual_s: virtual_s as f64, wall }
}
