//! Failures beyond 6.824's crash test: workers killed with SIGKILL in the middle of a larger job, map output
//! larger than the memory budget (spills and multi-pass merges), and `keel mr run` end to end.
mod mr_support;

use std::fs;
use std::thread;
use std::time::{Duration, Instant};

use mr_support::{Scratch, entries_with_prefix, line_count, read, stat, wait_bounded, wc_totals};

const PROCESS_LIMIT: Duration = Duration::from_secs(60);

#[test]
fn killing_workers_mid_job_leaves_the_output_identical_to_seq() {
    let mut scratch = Scratch::new();
    let books = scratch.books(3_000_000, 11);
    let reference = scratch.reference("wc", &books);
    // Small splits make ~48 map tasks, so kills land while tasks run; a short timeout keeps the test quick.
    let extra = ["--task-timeout", "1s", "--split-size", "512KiB", "--stats-file", "stats.txt"];
    let coordinator = scratch.coordinator("wc", "out", &extra, &books);
    let mut workers: Vec<usize> = (0..3).map(|_| scratch.worker(&coordinator.address)).collect();
    // A fixed-seed generator picks the victims, so a failure can be replayed.
    let mut seed: u64 = 0x5eed;
    let mut kills_while_running = 0;
    let deadline = Instant::now() + PROCESS_LIMIT;
    while kills_while_running < 12 {
        thread::sleep(Duration::from_millis(60));
        if let Ok(Some(_)) = scratch.child(coordinator.index).try_wait() {
            break;
        }
        assert!(Instant::now() < deadline, "job did not finish\n{}", scratch.logs());
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let victim = (seed >> 33) as usize % workers.len();
        let child = scratch.child(workers[victim]);
        // Child::kill sends SIGKILL: no cleanup, no goodbye, like kill -9.
        let _ = child.kill();
        let _ = child.wait();
        kills_while_running += 1;
        workers[victim] = scratch.worker(&coordinator.address);
    }
    let status = scratch.wait(coordinator.index, PROCESS_LIMIT);
    assert!(status.success(), "coordinator failed\n{}", scratch.logs());
    for worker in workers {
        let _ = wait_bounded(scratch.child(worker), Duration::from_secs(10));
    }
    assert!(kills_while_running >= 3, "the job ended before the test could kill workers");
    let output = scratch.output("out");
    assert!(output == reference, "output differs from keel mr seq\n{}", scratch.logs());
    let stats = read(&scratch.path().join("stats.txt"));
    // A killed worker's task is reassigned when its connection drops (or, failing that, at the timeout).
    let reassigned = stat(&stats, "abandoned") + stat(&stats, "timeouts");
    assert!(reassigned >= 1, "no kill hit a running task; the test proved nothing:\n{stats}");
    // Counters come from committed attempts only: killed and re-executed attempts never add to them.
    let (words, distinct) = wc_totals(&reference);
    assert_eq!(stat(&stats, "counter.words"), words, "{stats}");
    assert_eq!(stat(&stats, "counter.distinct_words"), distinct, "{stats}");
    assert_eq!(stat(&stats, "counter.lines"), line_count(scratch.path(), &books), "{stats}");
}

#[test]
fn map_output_beyond_the_memory_budget_spills_and_merges_to_the_same_result() {
    let mut scratch = Scratch::new();
    let books = scratch.books(400_000, 12);
    let reference = scratch.reference("indexer", &books);
    // 32 KiB splits give more map tasks than one merge takes at once (64), so reduces merge in passes; a
    // 64 KiB budget makes every map spill. The indexer has no combiner, so nothing shrinks the spills.
    let (status, stderr) = scratch.run(
        &[
            "mr",
            "run",
            "--workers",
            "2",
            "--quiet",
            "--app",
            "indexer",
            "--reduces",
            "3",
            "--output",
            "out",
            "--split-size",
            "32KiB",
            "--memory-budget",
            "64KiB",
            "--stats-file",
            "stats.txt",
            &books[0],
            &books[1],
            &books[2],
            &books[3],
            &books[4],
            &books[5],
            &books[6],
            &books[7],
        ],
        PROCESS_LIMIT,
    );
    assert!(status.success(), "keel mr run failed: {stderr}");
    let stats = read(&scratch.path().join("stats.txt"));
    assert!(stat(&stats, "map_tasks") > 64, "{stats}");
    assert!(stat(&stats, "spills") > 0, "{stats}");
    assert!(scratch.output("out") == reference, "output differs from keel mr seq");
}

#[test]
fn mr_run_matches_seq_and_reports_a_summary() {
    let mut scratch = Scratch::new();
    let books = scratch.books(300_000, 13);
    let reference = scratch.reference("wc", &books);
    fs::create_dir(scratch.path().join("work")).unwrap();
    let mut args = vec!["mr", "run", "--workers", "2", "--app", "wc", "--output", "out", "--stats-file", "stats.txt"];
    args.extend(["--work-dir", "work"]);
    args.extend(books.iter().map(String::as_str));
    let (status, stderr) = scratch.run(&args, PROCESS_LIMIT);
    assert!(status.success(), "keel mr run failed: {stderr}");
    assert!(stderr.contains("re-executions") && stderr.contains("intermediate"), "summary missing: {stderr}");
    let (words, distinct) = wc_totals(&reference);
    let expected =
        format!("counters: distinct_words {distinct}, lines {}, words {words}", line_count(scratch.path(), &books));
    assert!(stderr.contains(&expected), "summary lacks {expected:?}: {stderr}");
    assert!(scratch.output("out") == reference, "output differs from keel mr seq");
    let stats = read(&scratch.path().join("stats.txt"));
    assert_eq!(stat(&stats, "map_tasks"), 8);
    assert_eq!(stat(&stats, "reexecutions"), 0);
    assert_eq!(stat(&stats, "workers_joined"), 2);
    let total: u64 = books.iter().map(|b| std::fs::metadata(scratch.path().join(b)).unwrap().len()).sum();
    assert_eq!(stat(&stats, "input_bytes"), total);
    // The combiner shrinks the intermediate data far below the input.
    assert!(stat(&stats, "intermediate_bytes") < total / 4, "{stats}");
    assert_eq!(entries_with_prefix(&scratch.path().join("work"), ""), Vec::<String>::new(), "work dir not cleaned");
}

#[test]
fn mr_run_replaces_crashed_workers() {
    let mut scratch = Scratch::new();
    let books = scratch.books(10_000, 14);
    let reference = scratch.reference("test-nocrash", &books);
    // A third of all attempts exit the worker process: `run` must keep starting replacements.
    let mut args = vec!["mr", "run", "--workers", "3", "--quiet", "--app", "test-crash", "--output", "out"];
    args.extend(["--task-timeout", "2s", "--stats-file", "stats.txt"]);
    args.extend(books.iter().map(String::as_str));
    let (status, stderr) = scratch.run(&args, Duration::from_secs(120));
    assert!(status.success(), "keel mr run failed: {stderr}");
    assert!(scratch.output("out") == reference, "output differs from the no-crash reference");
    let stats = read(&scratch.path().join("stats.txt"));
    assert!(stat(&stats, "workers_joined") > 3, "no worker was replaced (did none crash?):\n{stats}\n{stderr}");
    // A third of the calls crash and a third outlive the timeout, so tasks run several times; the counters
    // still count each map and each key once, from the attempt that was committed.
    assert!(stat(&stats, "reexecutions") >= 1, "nothing was re-executed; the counter check proves nothing:\n{stats}");
    assert_eq!(stat(&stats, "counter.map_calls"), stat(&stats, "map_tasks"), "{stats}");
    assert_eq!(stat(&stats, "counter.reduce_calls"), 4, "keys a, b, c and d:\n{stats}");
    assert_eq!(stat(&stats, "counter.map_bytes"), stat(&stats, "input_bytes"), "{stats}");
}

#[test]
fn a_job_whose_tasks_outlast_the_timeout_finishes_with_one_worker() {
    // Issue 14: every map takes 300 ms against a 100 ms timeout and there is one worker. The seed answered
    // each late success "stale", removed its files and ran the map again, forever.
    let mut scratch = Scratch::new();
    let books = scratch.books(5_000, 15);
    let books = &books[..3];
    let reference = scratch.reference("wc", books);
    let mut args = vec!["mr", "run", "--workers", "1", "--quiet", "--app", "test-slow", "--output", "out"];
    args.extend(["--task-timeout", "100ms", "--reduces", "2", "--stats-file", "stats.txt"]);
    args.extend(books.iter().map(String::as_str));
    let (status, stderr) = scratch.run(&args, Duration::from_secs(30));
    assert!(status.success(), "keel mr run failed: {stderr}");
    assert!(scratch.output("out") == reference, "output differs from keel mr seq");
    let stats = read(&scratch.path().join("stats.txt"));
    assert!(stat(&stats, "late_successes") >= 1, "{stats}");
    assert_eq!(stat(&stats, "reexecutions"), 0, "with one worker nothing can run twice:\n{stats}");
    assert_eq!(stat(&stats, "counter.words"), wc_totals(&reference).0, "{stats}");
    // The user hears about tasks slower than the timeout.
    assert!(stderr.contains("did not finish within") && stderr.contains("--task-timeout"), "{stderr}");
}

#[test]
fn a_straggler_is_backed_up_and_the_job_does_not_wait_for_it() {
    // The paper's section 3.6. The first map attempt sleeps a minute (`test-straggler`); every other attempt,
    // its backup included, counts words at full speed. Without backups the job would wait for the straggler
    // (or for the 60 s timeout): it must instead end within seconds, with exactly one backup, which finished
    // first, and the same output and counters as `wc`.
    let mut scratch = Scratch::new();
    let books = scratch.books(6_000, 16);
    let reference = scratch.reference("wc", &books);
    let mut args = vec!["mr", "run", "--workers", "2", "--quiet", "--app", "test-straggler", "--output", "out"];
    // About 24 maps of 2 KB: enough for the phase to pass 90% done while the straggler sleeps.
    args.extend(["--split-size", "2KiB", "--task-timeout", "60s", "--reduces", "3", "--stats-file", "stats.txt"]);
    args.extend(books.iter().map(String::as_str));
    let started = Instant::now();
    let (status, stderr) = scratch.run(&args, Duration::from_secs(50));
    let elapsed = started.elapsed();
    assert!(status.success(), "keel mr run failed: {stderr}");
    assert!(elapsed < Duration::from_secs(30), "the job waited for its straggler: {elapsed:?}\n{stderr}");
    assert!(scratch.output("out") == reference, "output differs from keel mr seq");
    let stats = read(&scratch.path().join("stats.txt"));
    assert_eq!(stat(&stats, "backups"), 1, "{stats}");
    assert_eq!(stat(&stats, "backup_wins"), 1, "{stats}");
    assert_eq!(stat(&stats, "reexecutions"), 0, "a backup is not a re-execution:\n{stats}");
    assert_eq!(stat(&stats, "counter.words"), wc_totals(&reference).0, "counted once:\n{stats}");
}

#[test]
fn without_a_straggler_nothing_is_backed_up() {
    // The same job with `wc`: maps of similar (tiny) length, so no task is far slower than the others.
    let mut scratch = Scratch::new();
    let books = scratch.books(6_000, 16);
    let reference = scratch.reference("wc", &books);
    let mut args = vec!["mr", "run", "--workers", "2", "--quiet", "--app", "wc", "--output", "out"];
    args.extend(["--split-size", "2KiB", "--reduces", "3", "--stats-file", "stats.txt"]);
    args.extend(books.iter().map(String::as_str));
    let (status, stderr) = scratch.run(&args, Duration::from_secs(50));
    assert!(status.success(), "keel mr run failed: {stderr}");
    assert!(scratch.output("out") == reference, "output differs from keel mr seq");
    let stats = read(&scratch.path().join("stats.txt"));
    assert_eq!((stat(&stats, "backups"), stat(&stats, "reexecutions")), (0, 0), "{stats}");
    assert!(stat(&stats, "map_tasks") >= 20, "{stats}");
}
