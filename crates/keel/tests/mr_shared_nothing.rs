//! Workers that share nothing with the coordinator (issue 12, item 1): each worker runs in a directory of
//! its own, outside the coordinator's, with its own scratch directory, and, where unprivileged user
//! namespaces work (`unshare -Urm`), in a mount namespace of its own in which the coordinator's directory
//! (inputs, output, work directory) is hidden under an empty tmpfs: it truly cannot see a byte of the
//! coordinator's files. Inputs come from the coordinator over TCP, map outputs stay on the worker that
//! made them and are fetched by reducers from it, reduce outputs go back to the coordinator.
//!
//! - the output equals `keel mr seq`'s, and the workers leave no scratch behind;
//! - a worker SIGKILLed after all its maps were committed and before any reducer fetched them: its map
//!   outputs are lost with it, every map runs again, the output equals `keel mr seq`'s;
//! - a chunk damaged in transit (a worker fail point flips a bit after the checksum was computed) is
//!   caught by its checksum, the map is run again, and the output equals `keel mr seq`'s;
//! - a map output damaged at rest on the worker holding it (a bit flipped in its maps file, so the chunks
//!   it serves carry checksums of damaged bytes) is caught by the reducer fetching it over the network as
//!   that map's output lost: the map is run again, and the output equals `keel mr seq`'s.
mod mr_support;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use mr_support::{KEEL, Scratch, read, send_signal, stat, wait_bounded, wc_totals};

const LIMIT: Duration = Duration::from_secs(60);
const MAPS: u64 = 8; // one per generated book (each smaller than the split size)

/// Whether this machine lets an unprivileged process make a user and mount namespace and mount a tmpfs in
/// it (many CI containers do not); checked once.
fn namespaces_work() -> bool {
    static WORKS: OnceLock<bool> = OnceLock::new();
    *WORKS.get_or_init(|| {
        Command::new("unshare")
            .args(["-Urm", "sh", "-c", "mount -t tmpfs keel-test /mnt 2>/dev/null || mount -t tmpfs keel-test /tmp"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Workers of one test, each in a directory of its own outside the coordinator's; killed when dropped.
struct Workers {
    /// The coordinator's directory, which the workers must not see.
    hidden: PathBuf,
    root: tempfile::TempDir,
    started: Vec<(Child, PathBuf)>,
}

impl Workers {
    fn new(hidden: &Path) -> Workers {
        Workers {
            hidden: hidden.to_path_buf(),
            root: tempfile::tempdir().expect("a directory for the workers"),
            started: Vec::new(),
        }
    }

    /// Starts a worker (sharing nothing) with `env` set; returns its index.
    fn start(&mut self, address: &str, env: &[(&str, &str)]) -> usize {
        let n = self.started.len();
        let dir = self.root.path().join(format!("worker-{n}"));
        fs::create_dir_all(&dir).expect("a worker's directory");
        let log = dir.join("stderr.txt");
        let worker = [KEEL, "mr", "worker", "--coordinator", address, "--scratch-dir"];
        let mut command = if namespaces_work() {
            // The coordinator's directory disappears under an empty tmpfs, in this worker's namespace only.
            let mut command = Command::new("unshare");
            command.args(["-Urm", "sh", "-c", "mount -t tmpfs keel-hidden \"$1\" && shift && exec \"$@\"", "sh"]);
            command.arg(&self.hidden).args(worker).arg(&dir);
            command
        } else {
            let mut command = Command::new(KEEL);
            command.args(&worker[1..]).arg(&dir);
            command
        };
        command.current_dir(&dir).envs(env.iter().copied()).stdin(Stdio::null()).stdout(Stdio::null());
        command.stderr(fs::File::create(&log).expect("a worker's log"));
        let child = command.spawn().expect("starting a worker");
        self.started.push((child, dir));
        n
    }

    fn pid(&self, index: usize) -> u32 {
        self.started[index].0.id()
    }

    /// The maps file of worker `index` (in its scratch directory): where its map outputs are.
    fn maps_file(&self, index: usize) -> PathBuf {
        let mut found = Vec::new();
        for scratch in fs::read_dir(&self.started[index].1).into_iter().flatten().flatten() {
            for file in fs::read_dir(scratch.path()).into_iter().flatten().flatten() {
                if file.file_name().to_string_lossy().starts_with("maps-") {
                    found.push(file.path());
                }
            }
        }
        assert_eq!(found.len(), 1, "worker {index} has one maps file: {found:?}");
        found.remove(0)
    }

    fn logs(&self) -> String {
        let mut all = String::new();
        for (i, (_, dir)) in self.started.iter().enumerate() {
            all.push_str(&format!("--- worker {i} ---\n{}", read(&dir.join("stderr.txt"))));
        }
        all
    }

    /// Waits for every worker to exit (bounded); true if all exited.
    fn wait_all(&mut self, limit: Duration) -> bool {
        self.started.iter_mut().all(|(child, _)| wait_bounded(child, limit).is_some())
    }

    /// Scratch directories left in the directories of the workers not killed (a SIGKILLed worker cannot
    /// clean up; the next worker started on its scratch directory removes it).
    fn leftover_scratch(&self, killed: &[usize]) -> Vec<PathBuf> {
        let mut left = Vec::new();
        for (_, dir) in self.started.iter().enumerate().filter(|(i, _)| !killed.contains(i)).map(|(_, w)| w) {
            for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().starts_with("keel-mr-worker-") {
                    left.push(entry.path());
                }
            }
        }
        left
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for (child, _) in &mut self.started {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The coordinator of a wc job over the books, with `--reduces 4` and a stats file; waits until it is
/// done and returns its stats after checking the output against the reference.
fn finish(
    scratch: &mut Scratch,
    coordinator: usize,
    workers: &mut Workers,
    killed: &[usize],
    reference: &str,
) -> String {
    let status = wait_bounded(scratch.child(coordinator), LIMIT);
    let logs = |workers: &Workers| format!("{}\n{}", scratch.logs(), workers.logs());
    assert!(status.is_some_and(|s| s.success()), "the job did not succeed\n{}", logs(workers));
    assert!(scratch.output("out") == *reference, "output differs from keel mr seq\n{}", logs(workers));
    let stats = read(&scratch.path().join("stats.txt"));
    assert_eq!(stat(&stats, "counter.words"), wc_totals(reference).0, "{stats}");
    let exited = workers.wait_all(Duration::from_secs(15));
    assert!(exited, "a worker did not exit\n{}", logs(workers));
    let left = workers.leftover_scratch(killed);
    assert!(left.is_empty(), "workers left scratch behind: {left:?}");
    stats
}

fn start_coordinator(scratch: &mut Scratch, books: &[String]) -> (usize, String, PathBuf) {
    let coordinator = scratch.coordinator("wc", "out", &["--reduces", "4", "--stats-file", "stats.txt"], books);
    (coordinator.index, coordinator.address, coordinator.log)
}

/// Waits until the coordinator's log shows `n` reduce attempts handed out.
fn wait_for_reduces_handed_out(log: &Path, n: usize, workers: &Workers) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let text = read(log);
        if text.lines().filter(|l| l.contains("reduce task") && l.contains("-> worker")).count() >= n {
            return;
        }
        assert!(Instant::now() < deadline, "{n} reduces were never handed out\n{text}\n{}", workers.logs());
        thread::sleep(Duration::from_millis(10));
    }
}

/// Waits until `pid` is stopped (state `T` in `/proc/<pid>/stat`).
fn wait_until_stopped(pid: u32, workers: &Workers) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let stat = read(Path::new(&format!("/proc/{pid}/stat")));
        let state = stat.rsplit(") ").next().and_then(|rest| rest.split_whitespace().next());
        if state == Some("T") {
            return;
        }
        assert!(Instant::now() < deadline, "worker {pid} never stopped before its reduce\n{}", workers.logs());
        thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn workers_that_cannot_see_the_coordinators_files_produce_the_reference_output() {
    let mut scratch = Scratch::new();
    let books = scratch.books(60_000, 41);
    let reference = scratch.reference("wc", &books);
    let (coordinator, address, _) = start_coordinator(&mut scratch, &books);
    let mut workers = Workers::new(scratch.path());
    for _ in 0..2 {
        workers.start(&address, &[]);
    }
    let stats = finish(&mut scratch, coordinator, &mut workers, &[], &reference);
    assert_eq!(stat(&stats, "lost_map_outputs"), 0, "{stats}");
    assert_eq!(stat(&stats, "reexecutions"), 0, "{stats}");
    if namespaces_work() {
        // What the workers saw of the coordinator's directory: nothing (the same wrapper, asked to look).
        let book = scratch.path().join(&books[0]);
        let script = "mount -t tmpfs keel-hidden \"$1\" && test ! -e \"$2\" && test -z \"$(ls -A \"$1\")\"";
        let hidden = Command::new("unshare")
            .args(["-Urm", "sh", "-c", script, "sh"])
            .arg(scratch.path())
            .arg(&book)
            .status()
            .expect("running unshare");
        assert!(hidden.success() && book.exists(), "the workers' namespace did not hide the coordinator's files");
    } else {
        eprintln!("note: unshare -Urm does not work here; workers ran in directories of their own only");
    }
}

#[test]
fn a_worker_killed_after_its_maps_committed_takes_them_along_and_they_run_again() {
    let mut scratch = Scratch::new();
    let books = scratch.books(30_000, 42);
    let reference = scratch.reference("wc", &books);
    let (coordinator, address, _) = start_coordinator(&mut scratch, &books);
    let mut workers = Workers::new(scratch.path());
    // Alone, it runs every map; reduces start only when all maps are committed, and it stops itself before
    // its first one: all map outputs are committed, and no reducer has fetched any.
    let first = workers.start(&address, &[("KEEL_MR_WORKER_FAILPOINT", "stop-before-reduce")]);
    wait_until_stopped(workers.pid(first), &workers);
    send_signal(workers.pid(first), "KILL");
    workers.start(&address, &[]);
    let stats = finish(&mut scratch, coordinator, &mut workers, &[first], &reference);
    assert_eq!(stat(&stats, "lost_map_outputs"), MAPS, "every map output was on the killed worker\n{stats}");
    assert!(stat(&stats, "reexecutions") >= MAPS, "{stats}");
}

#[test]
fn a_chunk_damaged_in_transit_is_detected_by_its_checksum_and_never_used() {
    let mut scratch = Scratch::new();
    let books = scratch.books(30_000, 43);
    let reference = scratch.reference("wc", &books);
    let (coordinator, address, log) = start_coordinator(&mut scratch, &books);
    let mut workers = Workers::new(scratch.path());
    // The first worker runs every map, then stops; the second starts and takes reduces, which fetch from the
    // first once it goes on: the first chunk it serves has a bit flipped after its checksum was computed.
    let first = workers.start(&address, &[("KEEL_MR_WORKER_FAILPOINT", "stop-before-reduce,corrupt-first-chunk")]);
    wait_until_stopped(workers.pid(first), &workers);
    workers.start(&address, &[]);
    // The second reduce handed out went to the second worker (the first is stopped): it fetches from the
    // first, which answers once it goes on.
    wait_for_reduces_handed_out(&log, 2, &workers);
    send_signal(workers.pid(first), "CONT");
    let stats = finish(&mut scratch, coordinator, &mut workers, &[], &reference);
    assert!(stat(&stats, "lost_map_outputs") >= 1, "the damaged chunk went unnoticed\n{stats}");
    let logs = scratch.logs();
    assert!(
        logs.contains("checksum mismatch") && logs.contains("running the map again"),
        "the coordinator did not say why the map ran again\n{logs}"
    );
}

#[test]
fn a_map_output_damaged_at_rest_is_caught_by_the_reducer_fetching_it_and_the_map_runs_again() {
    use keel_mr::map_file::{INDEX_MAGIC, Region, locate_partition_in};
    let mut scratch = Scratch::new();
    let books = scratch.books(30_000, 44);
    let reference = scratch.reference("wc", &books);
    let (coordinator, address, log) = start_coordinator(&mut scratch, &books);
    let mut workers = Workers::new(scratch.path());
    // The first worker runs every map (map 0 first), then stops before its first reduce (reduce 0).
    let first = workers.start(&address, &[("KEEL_MR_WORKER_FAILPOINT", "stop-before-reduce")]);
    wait_until_stopped(workers.pid(first), &workers);
    // While it is stopped: a bit flipped in the records of map 0's partition 1 in its maps file, which
    // only the reducer of partition 1 reads, and only the first worker serves.
    let path = workers.maps_file(first);
    let mut bytes = fs::read(&path).expect("the maps file");
    let map_0_end = bytes.windows(8).position(|w| w == INDEX_MAGIC).expect("map 0's output") + 8;
    let file = fs::File::open(&path).expect("the maps file");
    let region = Region { offset_bytes: 0, len_bytes: map_0_end as u64 };
    let segment = locate_partition_in(&file, &path, region, 1, 4).expect("map 0's partition 1");
    // Past the run's magic and its first block's header.
    assert!(segment.len_bytes > 64, "map 0's partition 1 holds no records to damage");
    bytes[segment.offset_bytes as usize + 20] ^= 0x08;
    fs::write(&path, &bytes).expect("damaging the maps file");
    // The second worker takes the next reduce, 1, and fetches map 0's partition 1 from the first once it
    // goes on.
    workers.start(&address, &[]);
    wait_for_reduces_handed_out(&log, 2, &workers);
    send_signal(workers.pid(first), "CONT");
    let stats = finish(&mut scratch, coordinator, &mut workers, &[], &reference);
    assert_eq!(stat(&stats, "lost_map_outputs"), 1, "the damaged map output was not taken for lost\n{stats}");
    assert_eq!(stat(&stats, "failed_attempts"), 0, "damage in a map output failed an attempt\n{stats}");
    let logs = scratch.logs();
    let lost = logs.lines().find(|l| l.contains("map task 0's output") && l.contains("is lost")).unwrap_or_default();
    assert!(
        lost.contains("reduce task 1") && lost.contains("checksum mismatch") && lost.contains("running the map again"),
        "the coordinator did not say that reduce 1 found map 0's output damaged\n{logs}\n{}",
        workers.logs()
    );
}
