//! A committed map output damaged at rest (a flipped byte in a worker's maps file) is that map's output
//! lost, as with a dead worker (the paper's section 3.3): the reduce that finds the damage says so, the map
//! runs again, the reduce runs again with the new output, and the job's output is `keel mr seq`'s. Without
//! this, the reduce would fail on the same damage at every retry and the job would fail.
//!
//! The damage is made at a moment no timing decides: the app holds the job's last map until the test lets
//! it go. The worker runs maps one after the other, and each is committed before it asks for the next, so
//! while the last map is held every other map's output is committed and no reduce has started (reduces
//! start when every map is done).
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use keel_mr::apps::WordCount;
use keel_mr::coordinator::{Coordinator, JobConfig, JobSummary};
use keel_mr::map_file::INDEX_MAGIC;
use keel_mr::worker::{WorkerExit, WorkerOptions, run_worker};
use keel_mr::{App, AppRegistry, Combiner, Counters};

const LIMIT: Duration = Duration::from_secs(60);
const MAPS: usize = 6;
const REDUCES: u32 = 3;

/// Whether the held map has started, and whether it may go on.
#[derive(Default)]
struct Gate {
    state: Mutex<(bool, bool)>,
    changed: Condvar,
}

impl Gate {
    fn wait_entered(&self) {
        let deadline = Instant::now() + LIMIT;
        let mut state = self.state.lock().unwrap();
        while !state.0 {
            let left = deadline.checked_duration_since(Instant::now()).expect("the last map never started");
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    fn release(&self) {
        self.state.lock().unwrap().1 = true;
        self.changed.notify_all();
    }
}

/// `wc`, except that a map of `last.txt` waits at the gate (its first attempt only).
struct HeldLastMap {
    gate: Arc<Gate>,
}

impl App for HeldLastMap {
    fn map(&self, name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        self.map_with_counters(name, contents, emit, &mut Counters::new());
    }

    fn reduce(&self, key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        WordCount.reduce(key, values)
    }

    fn map_with_counters(&self, name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str), c: &mut Counters) {
        if name.ends_with("last.txt") {
            let mut state = self.gate.state.lock().unwrap();
            state.0 = true;
            self.gate.changed.notify_all();
            while !state.1 {
                state = self.gate.changed.wait(state).unwrap();
            }
        }
        WordCount.map_with_counters(name, contents, emit, c);
    }

    fn reduce_with_counters(&self, key: &str, values: &mut dyn Iterator<Item = String>, c: &mut Counters) -> String {
        WordCount.reduce_with_counters(key, values, c)
    }

    fn combiner(&self) -> Option<&dyn Combiner> {
        WordCount.combiner()
    }
}

/// Input files, the last one named `last.txt`, each a map task.
fn inputs(dir: &Path) -> Vec<PathBuf> {
    (0..MAPS)
        .map(|i| {
            let name = if i + 1 == MAPS { "last.txt".to_string() } else { format!("book-{i}.txt") };
            let path = dir.join(name);
            let text: String =
                (0..400).map(|l| format!("the cat {l} sat on mat {} and hat {}\n", l % 7 + i, l % 13)).collect();
            fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

/// The maps files under `dir` (any depth).
fn maps_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            found.extend(maps_files(&path));
        } else if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("maps-")) {
            found.push(path);
        }
    }
    found
}

/// Flips a bit in the first block of records of the first map output in the worker's maps file (its
/// first partition's data, which one reducer reads and checks only as it merges).
fn damage_first_map_output(dir: &Path) {
    let files = maps_files(dir);
    assert_eq!(files.len(), 1, "one worker, one maps file: {files:?}");
    let mut bytes = fs::read(&files[0]).unwrap();
    let first_region_end =
        bytes.windows(INDEX_MAGIC.len()).position(|w| w == INDEX_MAGIC).expect("a finished map output") + 8;
    // Segment 0: 8 bytes of magic, an 8-byte block header, then the block's records.
    let at = 16 + 4;
    assert!(at < first_region_end - 16, "the first map output is too small to damage its records");
    bytes[at] ^= 0x20;
    fs::write(&files[0], &bytes).unwrap();
}

/// Runs the job with one worker (`shared_fs` or sharing nothing), damaging the first map output while the
/// last map is held; returns the summary, checking the output against `keel mr seq`'s.
fn run_with_damage(shared_fs: bool) -> JobSummary {
    let dir = tempfile::tempdir().unwrap();
    let inputs = inputs(dir.path());
    let gate = Arc::new(Gate::default());
    let mut apps = AppRegistry::builtin();
    apps.register("held", Arc::new(HeldLastMap { gate: Arc::clone(&gate) }));
    let apps = Arc::new(apps);
    let work = dir.path().join("work");
    let scratch = dir.path().join("scratch");
    fs::create_dir_all(&scratch).unwrap();
    let config = JobConfig {
        app: "held".into(),
        inputs: inputs.clone(),
        reduce_tasks: REDUCES,
        output_dir: dir.path().join("out"),
        task_timeout: Duration::from_secs(60),
        work_dir: Some(work.clone()),
        split_size_bytes: 1 << 20,
        memory_budget_bytes: 1 << 20,
        streaming: None,
    };
    let coordinator = Coordinator::prepare(&config, "127.0.0.1:0", &apps).unwrap();
    let options = WorkerOptions {
        job: Some(coordinator.job()),
        shared_fs,
        scratch_dir: Some(scratch.clone()),
        ..WorkerOptions::new(coordinator.local_addr().unwrap().to_string())
    };
    let serving = thread::spawn(move || coordinator.run());
    let worker = {
        let apps = Arc::clone(&apps);
        thread::spawn(move || run_worker(&options, &apps))
    };
    gate.wait_entered();
    damage_first_map_output(if shared_fs { &work } else { &scratch });
    gate.release();
    let summary = serving.join().unwrap().expect("the job must succeed despite the damage");
    assert_eq!(worker.join().unwrap().unwrap(), WorkerExit::JobDone);

    let reference = dir.path().join("seq.txt");
    keel_mr::seq::run_sequential(&WordCount, &inputs, &reference).unwrap();
    let mut expected: Vec<String> = fs::read_to_string(&reference).unwrap().lines().map(str::to_string).collect();
    expected.sort();
    let mut got: Vec<String> = (0..REDUCES)
        .flat_map(|r| {
            let text = fs::read_to_string(dir.path().join(format!("out/mr-out-{r}"))).unwrap();
            text.lines().map(str::to_string).collect::<Vec<_>>()
        })
        .collect();
    got.sort();
    assert_eq!(got, expected, "output differs from keel mr seq's");
    summary
}

fn assert_map_ran_again(summary: &JobSummary) {
    assert_eq!(summary.counts.lost_map_outputs, 1, "the damaged map output was not taken for lost: {summary:?}");
    assert!(summary.counts.reexecutions >= 1, "the map did not run again: {summary:?}");
    assert_eq!(summary.counts.released_attempts, 1, "the reduce that found it was not released: {summary:?}");
    assert_eq!(summary.counts.failed_attempts, 0, "damage in a map output failed an attempt: {summary:?}");
    // The lost output's figures were taken back and its new commit counted once.
    let words = summary.counters.get("words");
    assert_eq!(words, (MAPS as u64) * 400 * 7, "{summary:?}");
}

#[test]
fn a_map_output_damaged_on_a_shared_file_system_is_run_again() {
    assert_map_ran_again(&run_with_damage(true));
}

#[test]
fn a_map_output_damaged_on_a_worker_that_shares_nothing_is_run_again() {
    assert_map_ran_again(&run_with_damage(false));
}
