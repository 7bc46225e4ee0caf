//! How long a node takes to come back: `DiskStorage::open` (replay the WAL, check the snapshot file), `load`, and
//! `Replica::open` (the core rebuilt from it), for a node with a large log and for one with a large snapshot.
//! The page cache is warm (the files were just written), so this is the CPU cost of recovery, the floor under
//! what a cold start from disk costs.
//!
//! `cargo run --release -p keel-runtime --example recovery_bench -- [log_mb] [snapshot_mb] [dir]`
//! (default 1000 MB of log in 1 KiB entries, a 1000 MB snapshot, in a temporary directory).
use std::time::Instant;

use keel_raft::{Config, Entry, HardState, Index, PersistUpdate, Snapshot, SnapshotMeta};
use keel_replica::{Replica, Service, SnapshotPolicy};
use keel_storage::{DiskStorage, StdFs, Storage};

struct Noop;

impl Service for Noop {
    type Output = ();
    fn apply(&mut self, _index: Index, _command: &[u8]) {}
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }
    fn restore(&mut self, _index: Index, _snapshot: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

const ENTRY_BYTES: usize = 1024;
const ENTRIES_PER_PERSIST: u64 = 1024;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let log_mb: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(1000);
    let snapshot_mb: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(1000);
    let base = match args.get(2) {
        Some(dir) => std::path::PathBuf::from(dir),
        None => std::env::temp_dir().join(format!("keel-recovery-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&base)?;

    // A node with a long log.
    let dir = base.join("log");
    let entries = log_mb * 1_000_000 / ENTRY_BYTES as u64;
    let written = Instant::now();
    {
        let mut storage = DiskStorage::open(StdFs, &dir)?;
        storage.persist(&PersistUpdate {
            hard_state: Some(HardState { term: 1, voted_for: Some(1) }),
            ..Default::default()
        })?;
        let mut index = 1;
        while index <= entries {
            let last = (index + ENTRIES_PER_PERSIST - 1).min(entries);
            let batch =
                (index..=last).map(|i| Entry { index: i, term: 1, data: vec![(i % 251) as u8; ENTRY_BYTES] }).collect();
            storage.persist(&PersistUpdate { entries: batch, ..Default::default() })?;
            index = last + 1;
        }
    }
    println!(
        "wrote {log_mb} MB of log ({entries} entries of {ENTRY_BYTES} B) in {:.1} s",
        written.elapsed().as_secs_f64()
    );
    report("log", &dir)?;

    // A node with a large snapshot (and a short log after it).
    let dir = base.join("snapshot");
    let written = Instant::now();
    {
        let mut storage = DiskStorage::open(StdFs, &dir)?;
        let data: Vec<u8> = (0..snapshot_mb * 1_000_000).map(|i| (i % 251) as u8).collect();
        let snapshot = Snapshot { meta: SnapshotMeta { index: 1_000, term: 1 }, data };
        storage.persist(&PersistUpdate {
            hard_state: Some(HardState { term: 1, voted_for: Some(1) }),
            snapshot: Some(snapshot),
            ..Default::default()
        })?;
    }
    println!("wrote a {snapshot_mb} MB snapshot in {:.1} s", written.elapsed().as_secs_f64());
    report("snapshot", &dir)?;

    if args.get(2).is_none() {
        std::fs::remove_dir_all(&base)?;
    }
    Ok(())
}

fn report(what: &str, dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let storage = DiskStorage::open(StdFs, dir)?;
    let opened = started.elapsed();
    let mut replica = Replica::open(Config::new(1, vec![1, 2, 3], 1), Noop, storage, SnapshotPolicy::Never)
        .map_err(|e| e.to_string())?;
    // The snapshot (if any) reaches the service in the first step.
    while replica.advance().map_err(|e| e.to_string())?.is_some() {}
    let total = started.elapsed();
    println!(
        "restart with a large {what}: {:.2} s (DiskStorage::open {:.2} s, then load + Replica::open + restore {:.2} s)",
        total.as_secs_f64(),
        opened.as_secs_f64(),
        (total - opened).as_secs_f64()
    );
    Ok(())
}
