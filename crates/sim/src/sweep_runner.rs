//! Runs many sweep seeds on several threads and summarizes them (`keel raft sweep`). Failures do not stop the
//! run: each is reported with its seed and replay command.
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::sweep::{SweepOutcome, run_seed};

#[derive(Debug, Default)]
pub struct SweepReport {
    pub seeds: u64,
    pub failures: Vec<(u64, String)>,
    pub events: u64,
    pub committed: u64,
    pub virtual_ms: u64,
    pub by_nodes: [u64; 3],
    /// Message copies the network duplicated, over all seeds.
    pub duplicated: u64,
    /// Nemesis strikes, over all seeds.
    pub nemesis_strikes: u64,
    /// The most events any seed produced in one virtual second (the event budget's margin).
    pub events_per_virtual_second_peak: u64,
    /// Risky deliveries the seeds produced (stale replies, outdated appends, commits beyond the verified).
    pub stale_acks_at_leader: u64,
    pub stale_snapshot_acks_at_leader: u64,
    /// InstallSnapshot messages delivered, and the seeds that delivered any.
    pub snapshots_installed: u64,
    pub seeds_with_snapshots_installed: u64,
    pub stale_votes_at_candidate: u64,
    pub outdated_appends: u64,
    pub commit_beyond_verified: u64,
    /// Unprompted (legal) messages sent on leaders' behalf, and very late copies of replies delivered.
    pub legal_appends_sent: u64,
    pub late_replies_delivered: u64,
    pub crashes_ahead_of_fsync: u64,
    /// Seeds on keel's WAL over a simulated disk, and what those disks went through.
    pub seeds_on_disk: u64,
    pub disk: crate::cluster::DiskCounts,
    pub wall: Duration,
}

impl SweepReport {
    pub fn seeds_per_minute(&self) -> f64 {
        self.seeds as f64 * 60.0 / self.wall.as_secs_f64().max(1e-9)
    }
}

/// Runs seeds `first..first + count` on `threads` threads. `progress` is called after every seed with the number done.
pub fn run_sweep(first: u64, count: u64, threads: usize, progress: &(dyn Fn(u64) + Sync)) -> SweepReport {
    let next = AtomicU64::new(first);
    let done = AtomicU64::new(0);
    let report = Mutex::new(SweepReport::default());
    let started = Instant::now();
    // Panics are reported as failures; keep the default hook from printing each one twice.
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            // Named like the test so a failure's replay command points at it.
            let worker = std::thread::Builder::new().name("fault_sweep".into());
            let spawned = worker.spawn_scoped(scope, || {
                loop {
                    let seed = next.fetch_add(1, Ordering::Relaxed);
                    if seed >= first + count {
                        break;
                    }
                    let outcome = catch_unwind(AssertUnwindSafe(|| run_seed(seed)));
                    record(&report, seed, outcome);
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1);
                }
            });
            if let Err(e) = spawned {
                report
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .failures
                    .push((0, format!("cannot start worker: {e}")));
            }
        }
    });
    std::panic::set_hook(hook);
    let mut report = report.into_inner().unwrap_or_else(|p| p.into_inner());
    report.wall = started.elapsed();
    report.failures.sort_by_key(|(seed, _)| *seed);
    report
}

fn record(report: &Mutex<SweepReport>, seed: u64, outcome: std::thread::Result<SweepOutcome>) {
    let mut report = report.lock().unwrap_or_else(|p| p.into_inner());
    report.seeds += 1;
    match outcome {
        Ok(o) => {
            report.events += u64::from(o.events);
            report.committed += o.committed;
            report.virtual_ms += o.virtual_ms;
            report.by_nodes[(o.nodes / 2).saturating_sub(1).min(2)] += 1;
            report.duplicated += o.duplicated;
            report.nemesis_strikes += o.nemesis_strikes;
            report.events_per_virtual_second_peak =
                report.events_per_virtual_second_peak.max(o.events_per_virtual_second_peak);
            report.stale_acks_at_leader += o.patterns.stale_acks_at_leader;
            report.stale_snapshot_acks_at_leader += o.patterns.stale_snapshot_acks_at_leader;
            report.snapshots_installed += o.snapshots_installed;
            report.seeds_with_snapshots_installed += u64::from(o.snapshots_installed > 0);
            report.stale_votes_at_candidate += o.patterns.stale_votes_at_candidate;
            report.outdated_appends += o.patterns.outdated_appends;
            report.commit_beyond_verified += o.patterns.commit_beyond_verified;
            report.legal_appends_sent += o.legal_appends_sent;
            report.late_replies_delivered += o.late_replies_delivered;
            report.crashes_ahead_of_fsync += o.crashes_ahead_of_fsync;
            report.seeds_on_disk += u64::from(matches!(o.storage, crate::cluster::StorageKind::SimulatedDisk { .. }));
            report.disk += o.disk;
        }
        Err(panic) => report.failures.push((seed, crate::seeds::panic_message(panic.as_ref()))),
    }
}
