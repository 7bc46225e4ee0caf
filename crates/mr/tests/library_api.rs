//! A user's own app through the public API: registry, coordinator and keel's worker loop, all in one process
//! (threads instead of processes; the protocol and files are the real ones).
use std::fs;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use keel_mr::coordinator::{Coordinator, JobConfig, JobSummary};
use keel_mr::worker::{WorkerExit, WorkerOptions, run_worker};
use keel_mr::{App, AppRegistry, Counters};

/// Line lengths: how many lines have each length.
struct LineLengths;

impl App for LineLengths {
    fn map(&self, _input_name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        for line in contents.lines() {
            emit(&format!("{:04}", line.chars().count()), "1");
        }
    }

    fn reduce(&self, _key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        values.count().to_string()
    }
}

/// Counts with user counters: lines seen in map, keys reduced, and, when `bad` is set, a counter whose name
/// is built from the data (the classic misuse the limits catch).
struct CountingLines {
    bad: bool,
}

impl App for CountingLines {
    fn map(&self, name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        self.map_with_counters(name, contents, emit, &mut Counters::new());
    }

    fn reduce(&self, key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        self.reduce_with_counters(key, values, &mut Counters::new())
    }

    fn map_with_counters(&self, _: &str, contents: &str, emit: &mut dyn FnMut(&str, &str), c: &mut Counters) {
        for line in contents.lines() {
            emit(&format!("{:04}", line.len()), "1");
            c.add("app.lines", 1);
            if self.bad {
                c.add(&format!("length {}", line.len()), 1);
            }
        }
    }

    fn reduce_with_counters(&self, _: &str, values: &mut dyn Iterator<Item = String>, c: &mut Counters) -> String {
        c.add("app.keys", 1);
        values.count().to_string()
    }
}

/// Runs `app` over 1000 lines (lengths 0..7) with two worker threads.
fn run_job(app: CountingLines) -> anyhow::Result<JobSummary> {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines.txt");
    let text: String = (0..1000).map(|i| format!("{}\n", "x".repeat(i % 7))).collect();
    fs::write(&input, text).unwrap();
    let mut apps = AppRegistry::builtin();
    apps.register("counting", Arc::new(app));
    let apps = Arc::new(apps);
    let config = JobConfig {
        app: "counting".into(),
        inputs: vec![input],
        reduce_tasks: 2,
        output_dir: dir.path().join("out"),
        task_timeout: Duration::from_secs(10),
        work_dir: None,
        split_size_bytes: 512,
        memory_budget_bytes: 1 << 20,
        streaming: None,
    };
    let coordinator = Coordinator::prepare(&config, "127.0.0.1:0", &apps).unwrap();
    // Workers that share nothing with the coordinator (the default), though they run in its process.
    let options = WorkerOptions {
        job: Some(coordinator.job()),
        ..WorkerOptions::new(coordinator.local_addr().unwrap().to_string())
    };
    let serving = thread::spawn(move || coordinator.run());
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (apps, options) = (Arc::clone(&apps), options.clone());
            thread::spawn(move || run_worker(&options, &apps))
        })
        .collect();
    let result = serving.join().unwrap();
    // A job that fails at its first map can be over before the second worker connects; that one then
    // looks for the coordinator for its grace period (10 s). Nothing to wait for.
    if result.is_ok() {
        for worker in workers {
            let _ = worker.join().unwrap();
        }
    }
    result
}

#[test]
fn a_user_app_s_counters_are_summed_over_the_job() {
    let summary = run_job(CountingLines { bad: false }).unwrap();
    assert!(summary.map_tasks > 2, "several maps, each counting its own lines: {summary:?}");
    assert_eq!(summary.counters.to_string(), "app.keys 7, app.lines 1000");
}

#[test]
fn a_counter_named_from_the_data_fails_the_job_with_a_message_naming_it() {
    let error = run_job(CountingLines { bad: true }).unwrap_err().to_string();
    // Whichever map reports first fails the job (two workers race), so the name's number varies.
    assert!(error.contains("counter name \"length ") && error.contains("\" is not allowed"), "{error}");
}

#[test]
fn a_user_app_runs_on_keels_worker_loop() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("lines.txt");
    let text: String = (0..1000).map(|i| format!("{}\n", "x".repeat(i % 7))).collect();
    fs::write(&input, text).unwrap();
    let mut apps = AppRegistry::builtin();
    apps.register("line-lengths", Arc::new(LineLengths));
    let apps = Arc::new(apps);

    let config = JobConfig {
        app: "line-lengths".into(),
        inputs: vec![input],
        reduce_tasks: 3,
        output_dir: dir.path().join("out"),
        task_timeout: Duration::from_secs(10),
        work_dir: None,
        // Small splits, so the job has several map tasks for the two workers.
        split_size_bytes: 512,
        memory_budget_bytes: 1 << 20,
        streaming: None,
    };
    let coordinator = Coordinator::prepare(&config, "127.0.0.1:0", &apps).unwrap();
    let options = WorkerOptions {
        job: Some(coordinator.job()),
        shared_fs: true,
        ..WorkerOptions::new(coordinator.local_addr().unwrap().to_string())
    };
    let serving = thread::spawn(move || coordinator.run());
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (apps, options) = (Arc::clone(&apps), options.clone());
            thread::spawn(move || run_worker(&options, &apps))
        })
        .collect();
    let summary = serving.join().unwrap().unwrap();
    assert!(summary.map_tasks > 2, "{summary:?}");
    for worker in workers {
        assert_eq!(worker.join().unwrap().unwrap(), WorkerExit::JobDone);
    }
    let mut lines: Vec<String> = (0..3)
        .flat_map(|r| {
            let text = fs::read_to_string(dir.path().join(format!("out/mr-out-{r}"))).unwrap();
            text.lines().map(str::to_string).collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    let expected: Vec<String> = (0..7).map(|n| format!("{n:04} {}", if n < 6 { 143 } else { 142 })).collect();
    assert_eq!(lines, expected);
}
