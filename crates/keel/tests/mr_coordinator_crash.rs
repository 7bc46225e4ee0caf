//! A coordinator that survives its own crash (issue 12): killed (an abort at a fail point, as abrupt as
//! kill -9: no cleanup) in the map phase, in the reduce phase, and between the last commit and the publish,
//! then started again with the same command. The job resumes from the journal in the output directory: the
//! output is identical to `keel mr seq`, every task committed before the crash is kept (counted from the
//! journal as the crash left it) and never handed out again, and the workers, which waited for the
//! coordinator to come back, finish the job. The workers share nothing with the coordinator (the default),
//! so committed map outputs live on them: the resumed coordinator keeps those that the workers, registering
//! again, say they still hold (and that the journal has on record), instead of running those maps again.
mod mr_support;

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::os::unix::process::ExitStatusExt;
use std::time::Duration;

use keel_mr::journal::{Journal, JournalRecord};
use keel_mr::task_table::TaskId;
use mr_support::{Scratch, entries_with_prefix, read, stat, wait_bounded, wc_totals};

const LIMIT: Duration = Duration::from_secs(60);
/// What `abort()` dies of on Linux.
const SIGABRT: i32 = 6;
/// Attempt ids of the coordinator's second run start here (`ATTEMPT_ID_RUN_SHIFT` in the task table).
const SECOND_RUN_FIRST_ATTEMPT: u64 = 1 << 40;
const MAPS: u64 = 8; // one per generated book (each smaller than the split size)
const REDUCES: &str = "5";

fn free_port_address() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binding a free port");
    listener.local_addr().expect("its address").to_string()
}

/// Runs the job with the coordinator aborting at `failpoint`, restarts it, and checks the result.
fn crash_and_resume(failpoint: &str, committed_before_crash_min: usize) {
    let mut scratch = Scratch::new();
    let books = scratch.books(20_000, 33);
    let reference = scratch.reference("wc", &books);
    let address = free_port_address();
    let mut args = vec!["mr", "coordinator", "--listen", &address, "--app", "wc", "--output", "out"];
    args.extend(["--reduces", REDUCES, "--stats-file", "stats.txt"]);
    args.extend(books.iter().map(String::as_str));

    let mut first = scratch.command("coordinator-1", &args).env("KEEL_MR_FAILPOINT", failpoint).spawn().unwrap();
    let workers: Vec<usize> = (0..2).map(|_| scratch.worker(&address)).collect();
    let status = wait_bounded(&mut first, LIMIT).expect("the first coordinator never reached its fail point");
    assert_eq!(status.signal(), Some(SIGABRT), "the first coordinator did not crash: {status:?}\n{}", scratch.logs());
    let out = scratch.path().join("out");
    assert_eq!(entries_with_prefix(&out, "mr-out"), Vec::<String>::new(), "a crashed job published output");

    // What the crash left: the journal's commits, read from a copy (opening cuts a torn tail).
    let copy = scratch.path().join("journal-copy");
    std::fs::copy(out.join(".keel-journal"), &copy).expect("the crash left no journal");
    let (_, records) = Journal::open(&copy).unwrap();
    let committed: BTreeSet<TaskId> = records
        .iter()
        .filter_map(|r| match r {
            JournalRecord::Committed { task, .. } => Some(*task),
            _ => None,
        })
        .collect();
    assert!(committed.len() >= committed_before_crash_min, "only {committed:?} committed before the crash");

    let mut second = scratch.command("coordinator-2", &args).spawn().unwrap();
    let status = wait_bounded(&mut second, LIMIT).expect("the resumed coordinator did not finish");
    assert!(status.success(), "the resumed job failed\n{}", scratch.logs());
    // Every worker exits; the ones that joined the job finish it cleanly (a worker started late may find the
    // job already over and no coordinator to reach, and says so).
    let succeeded = workers.into_iter().filter(|&w| scratch.wait(w, LIMIT).success()).count();
    assert!(succeeded >= 1, "no worker finished cleanly\n{}", scratch.logs());
    assert!(scratch.output("out") == reference, "resumed output differs from keel mr seq");
    assert!(!out.join(".keel-journal").exists(), "the journal outlived its job");
    let stats = read(&scratch.path().join("stats.txt"));
    assert_eq!(stat(&stats, "restored_tasks"), committed.len() as u64, "{stats}");
    // Counters come from each task's committed attempt once, restored ones from the journal: a task
    // committed twice would count its words twice.
    assert_eq!(stat(&stats, "counter.words"), wc_totals(&reference).0, "{stats}");
    // No task committed before the crash was handed out by the resumed coordinator.
    let logs = scratch.logs();
    let maps_committed = committed.iter().filter(|t| matches!(t, TaskId::Map(_))).count();
    if committed.len() - maps_committed < REDUCES.parse::<usize>().unwrap() {
        // The job still needs them: every committed map output was taken over from the worker holding it.
        let kept = logs.lines().filter(|l| l.contains("held by worker")).count();
        assert_eq!(kept, maps_committed, "map outputs held by live workers were not reused\n{logs}");
    }
    for line in logs.lines().filter(|l| l.contains("running ")) {
        let Some(rest) = line.split("running ").nth(1) else { continue };
        let words: Vec<&str> = rest.split_whitespace().collect();
        let (Some(kind), Some(number), Some(attempt)) = (words.first(), words.get(2), words.get(4)) else { continue };
        let (Ok(number), Ok(attempt)) = (number.parse::<u32>(), attempt.parse::<u64>()) else { continue };
        let task = if *kind == "map" { TaskId::Map(number) } else { TaskId::Reduce(number) };
        assert!(
            !(committed.contains(&task) && attempt >= SECOND_RUN_FIRST_ATTEMPT),
            "{task} was committed before the crash and ran again: {line}"
        );
    }
}

#[test]
fn a_coordinator_killed_in_the_map_phase_resumes_the_job() {
    crash_and_resume("abort-after-commits=3", 3);
}

#[test]
fn a_coordinator_killed_in_the_reduce_phase_resumes_the_job() {
    crash_and_resume(&format!("abort-after-commits={}", MAPS + 2), MAPS as usize + 2);
}

#[test]
fn a_coordinator_killed_between_the_last_commit_and_the_publish_publishes_on_restart() {
    crash_and_resume("abort-before-publish", MAPS as usize + 5);
}

#[test]
fn a_coordinator_killed_with_sigkill_mid_job_resumes_it() {
    // The same, with a real SIGKILL at a moment chosen by the clock: once the journal shows two commits of
    // `test-slow` maps (300 ms each), the coordinator is killed wherever it is.
    let mut scratch = Scratch::new();
    let books = scratch.books(20_000, 34);
    let reference = scratch.reference("wc", &books);
    let address = free_port_address();
    let mut args = vec!["mr", "coordinator", "--listen", &address, "--app", "test-slow", "--output", "out"];
    args.extend(["--reduces", REDUCES, "--stats-file", "stats.txt"]);
    args.extend(books.iter().map(String::as_str));
    let mut first = scratch.command("coordinator-1", &args).spawn().unwrap();
    let workers: Vec<usize> = (0..2).map(|_| scratch.worker(&address)).collect();
    let journal = scratch.path().join("out").join(".keel-journal");
    let copy = scratch.path().join("journal-copy");
    let commits =
        |records: &[JournalRecord]| records.iter().filter(|r| matches!(r, JournalRecord::Committed { .. })).count();
    let deadline = std::time::Instant::now() + LIMIT;
    loop {
        if std::fs::copy(&journal, &copy).is_ok() && commits(&Journal::open(&copy).unwrap().1) >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no commits\n{}", scratch.logs());
        std::thread::sleep(Duration::from_millis(10));
    }
    first.kill().unwrap(); // SIGKILL
    let _ = first.wait();
    std::fs::copy(&journal, &copy).unwrap();
    let before = commits(&Journal::open(&copy).unwrap().1) as u64;
    assert!(before < MAPS + 5, "the job finished before the kill\n{}", scratch.logs());

    let mut second = scratch.command("coordinator-2", &args).spawn().unwrap();
    let status = wait_bounded(&mut second, LIMIT).expect("the resumed coordinator did not finish");
    assert!(status.success(), "the resumed job failed\n{}", scratch.logs());
    for worker in workers {
        let _ = scratch.wait(worker, LIMIT);
    }
    assert!(scratch.output("out") == reference, "resumed output differs from keel mr seq");
    let stats = read(&scratch.path().join("stats.txt"));
    assert_eq!(stat(&stats, "restored_tasks"), before, "{stats}");
    assert_eq!(stat(&stats, "counter.words"), wc_totals(&reference).0, "{stats}");
}
