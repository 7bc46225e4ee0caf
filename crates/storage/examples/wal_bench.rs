//! WAL append throughput against the disk's own: `DiskStorage<StdFs>` persisting batches of 128-byte entries (one
//! persist, so one fdatasync, per batch) against raw `write` + `fdatasync` of the same 128-byte payloads, in the
//! same program and directory, interleaved batch by batch so both see the same machine load. The median time of
//! one batch is the figure to compare on a shared machine (fsync latency has a long tail that other processes'
//! I/O drives); the mean is printed too.
//!
//! ```text
//! cargo run --release -p keel-storage --example wal_bench [-- <dir> [syncs per run] [rounds]]
//! ```
//!
//! The directory defaults to `target/wal_bench` (on the disk the repository is on); it is emptied first.
use std::error::Error;
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
/// (and which goes first), so that both see the same moments of this shared machine's load. Appends the time of
/// every raw append and every WAL persist to `raw_times` and `wal_times`. The updates are built before the clock
/// starts: building them is the core's work, not the storage's.
fn round(
    dir: &Path,
    batch: usize,
    syncs: usize,
    raw_times: &mut Vec<Duration>,
    wal_times: &mut Vec<Duration>,
) -> Result<(), Box<dyn Error>> {
    let raw_path = dir.join("raw.log");
    let wal_dir = dir.join("wal");
    let _ = fs::remove_file(&raw_path);
    let _ = fs::remove_dir_all(&wal_dir);
    let mut raw = OpenOptions::new().create(true).append(true).open(&raw_path)?;
    let mut wal = DiskStorage::open(StdFs, &wal_dir)?;
    let payload = vec![0xA5u8; ENTRY_SIZE_BYTES * batch];
    let updates = updates(batch, syncs);
    for (k, update) in updates.iter().enumerate() {
        let mut raw_op = || -> std::io::Result<Duration> {
            let start = Instant::now();
            raw.write_all(&payload)?;
            raw.sync_data()?;
            Ok(start.elapsed())
        };
        if k % 2 == 0 {
            raw_times.push(raw_op()?);
        }
        let start = Instant::now();
        wal.persist(update)?;
        wal_times.push(start.elapsed());
        if k % 2 == 1 {
            raw_times.push(raw_op()?);
        }
    }
    Ok(())
}

/// What the simulator will pay for running the real WAL on the simulated disk: persists per second of small
/// updates (a few entries, as a 6.824 test makes), and the cost of a restart (open + load) of the resulting log.
fn simulated_disk() -> Result<(), Box<dyn Error>> {
    const PERSISTS: usize = 20_000;
    let updates = updates(3, PERSISTS);
    let fs = SimFs::new(1);
    let mut storage = DiskStorage::open(fs.clone(), "/sim")?;
    let start = Instant::now();
    for update in &updates {
        storage.persist(update)?;
    }
    let persist_time = start.elapsed();
    drop(storage);
    let start = Instant::now();
    let state = DiskStorage::open(fs.clone(), "/sim")?.load()?;
    let restart_time = start.elapsed();
    assert_eq!(state.entries.len(), 3 * PERSISTS);
    println!(
        "DiskStorage<SimFs>: {:.0} persists/s of 3 entries; restart (open + load) of a {}-entry log: {:.1} ms",
        PERSISTS as f64 / persist_time.as_secs_f64(),
        state.entries.len(),
        restart_time.as_secs_f64() * 1e3
    );
    Ok(())
}

fn median(times: &mut [Duration]) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() -> Result<(), Box<dyn Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/wal_bench".into()));
    let syncs: usize = args.next().map_or(Ok(200), |s| s.parse().map_err(|e| format!("syncs per run {s:?}: {e}")))?;
    let rounds: usize = args.next().map_or(Ok(5), |s| s.parse().map_err(|e| format!("rounds {s:?}: {e}")))?;
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    println!("dir {}, {syncs} fdatasyncs per round, {rounds} rounds, {ENTRY_SIZE_BYTES}-byte entries", dir.display());
    println!("entries/s from the median time of one batch (write + fdatasync), and from the total time (mean):");
    println!(
        "{:>6} {:>12} {:>12} {:>7} {:>12} {:>12} {:>7}",
        "batch", "raw median", "wal median", "ratio", "raw mean", "wal mean", "ratio"
    );
    for batch in BATCH_SIZES {
        let (mut raw, mut wal) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            round(&dir, batch, syncs, &mut raw, &mut wal)?;
        }
        let rate = |time: Duration| batch as f64 / time.as_secs_f64();
        let mean = |times: &[Duration]| times.iter().sum::<Duration>() / times.len() as u32;
        let (raw_mean, wal_mean) = (rate(mean(&raw)), rate(mean(&wal)));
        let (raw_median, wal_median) = (rate(median(&mut raw)), rate(median(&mut wal)));
        println!(
            "{batch:>6} {raw_median:>12.0} {wal_median:>12.0} {:>7.2} {raw_mean:>12.0} {wal_mean:>12.0} {:>7.2}",
            wal_median / raw_median,
            wal_mean / raw_mean
        );
    }
    let _ = fs::remove_dir_all(&dir);
    simulated_disk()
}
