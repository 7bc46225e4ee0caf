//! WAL append throughput against the disk's own: `DiskStorage<StdFs>` persisting batches of 128-byte entries (one
//! persist, so one fdatasync, per batch) against raw `write` + `fdatasync` of the same 128-byte payloads, in the
//! same program and directory, interleaved batch by batch so both see the same machine load.
//!
//! ```text
//! cargo run --release -p keel-storage --example wal_bench [-- <dir> [syncs per run] [rounds]]
//! ```
//!
//! The directory defaults to `target/wal_bench` (on the disk the repository is on); it is emptied first.
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use keel_raft::{Entry, HardState, PersistUpdate};
use keel_storage::{DiskStorage, SimFs, StdFs, Storage};

const ENTRY_SIZE_BYTES: usize = 128;
const BATCH_SIZES: [usize; 3] = [1, 16, 256];

/// The updates a leader would persist for `syncs` batches of `batch` entries.
fn updates(batch: usize, syncs: usize) -> Vec<PersistUpdate> {
    (0..syncs)
        .map(|k| {
            let first = (k * batch) as u64 + 1;
            let entries = (0..batch as u64)
                .map(|i| Entry { index: first + i, term: 1, data: vec![0xA5; ENTRY_SIZE_BYTES] })
                .collect();
            PersistUpdate {
                hard_state: (k == 0).then_some(HardState { term: 1, voted_for: Some(0) }),
                snapshot: None,
                truncate_from: Some(first),
                entries,
            }
        })
        .collect()
}

/// One round: a fresh raw file and a fresh WAL directory, then `syncs` batches to each, alternating batch by batch
/// (and which goes first), so that both see the same moments of this shared machine's load. Returns the time
/// spent in raw appends and in WAL persists. The updates are built before the clock starts: building them is the
/// core's work, not the storage's.
fn round(dir: &Path, batch: usize, syncs: usize) -> (Duration, Duration) {
    let raw_path = dir.join("raw.log");
    let wal_dir = dir.join("wal");
    let _ = fs::remove_file(&raw_path);
    let _ = fs::remove_dir_all(&wal_dir);
    let mut raw = OpenOptions::new().create(true).append(true).open(&raw_path).unwrap();
    let mut wal = DiskStorage::open(StdFs, &wal_dir).unwrap();
    let payload = vec![0xA5u8; ENTRY_SIZE_BYTES * batch];
    let updates = updates(batch, syncs);
    let (mut raw_time, mut wal_time) = (Duration::ZERO, Duration::ZERO);
    for (k, update) in updates.iter().enumerate() {
        let mut raw_op = || {
            let start = Instant::now();
            raw.write_all(&payload).unwrap();
            raw.sync_data().unwrap();
            start.elapsed()
        };
        if k % 2 == 0 {
            raw_time += raw_op();
        }
        let start = Instant::now();
        wal.persist(update).unwrap();
        wal_time += start.elapsed();
        if k % 2 == 1 {
            raw_time += raw_op();
        }
    }
    (raw_time, wal_time)
}

/// What the simulator will pay for running the real WAL on the simulated disk: persists per second of small
/// updates (a few entries, as a 6.824 test makes), and the cost of a restart (open + load) of the resulting log.
fn simulated_disk() {
    const PERSISTS: usize = 20_000;
    let updates = updates(3, PERSISTS);
    let fs = SimFs::new(1);
    let mut storage = DiskStorage::open(fs.clone(), "/sim").unwrap();
    let start = Instant::now();
    for update in &updates {
        storage.persist(update).unwrap();
    }
    let persist_time = start.elapsed();
    drop(storage);
    let start = Instant::now();
    let state = DiskStorage::open(fs.clone(), "/sim").unwrap().load().unwrap();
    let restart_time = start.elapsed();
    assert_eq!(state.entries.len(), 3 * PERSISTS);
    println!(
        "DiskStorage<SimFs>: {:.0} persists/s of 3 entries; restart (open + load) of a {}-entry log: {:.1} ms",
        PERSISTS as f64 / persist_time.as_secs_f64(),
        state.entries.len(),
        restart_time.as_secs_f64() * 1e3
    );
}

fn median(mut rates: Vec<f64>) -> f64 {
    rates.sort_by(f64::total_cmp);
    rates[rates.len() / 2]
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/wal_bench".into()));
    let syncs: usize = args.next().map_or(200, |s| s.parse().expect("syncs per run"));
    let rounds: usize = args.next().map_or(5, |s| s.parse().expect("rounds"));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    println!(
        "dir {}, {syncs} fdatasyncs per run, {rounds} interleaved rounds, {ENTRY_SIZE_BYTES}-byte entries",
        dir.display()
    );
    println!("{:>6} {:>14} {:>14} {:>7}", "batch", "raw entries/s", "wal entries/s", "ratio");
    for batch in BATCH_SIZES {
        let (mut raw, mut wal) = (Vec::new(), Vec::new());
        let entries = (batch * syncs) as f64;
        for _ in 0..rounds {
            let (raw_time, wal_time) = round(&dir, batch, syncs);
            raw.push(entries / raw_time.as_secs_f64());
            wal.push(entries / wal_time.as_secs_f64());
        }
        let (raw, wal) = (median(raw), median(wal));
        println!("{batch:>6} {raw:>14.0} {wal:>14.0} {:>7.2}", wal / raw);
    }
    let _ = fs::remove_dir_all(&dir);
    simulated_disk();
}
