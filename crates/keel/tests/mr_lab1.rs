//! The seven tests of 6.824 Lab 1's test-mr.sh, against real `keel mr` processes over TCP on 127.0.0.1.
//! Input is generated (eight "books"), not shipped. Process time limits are 6.824's (45 s, 120 s for crash).
mod mr_support;

use std::thread;
use std::time::{Duration, Instant};

use mr_support::{Scratch, entries_with_prefix, wait_bounded};

const PROCESS_LIMIT: Duration = Duration::from_secs(45);
const CRASH_TEST_LIMIT: Duration = Duration::from_secs(120);
/// A book is this big; 6.824's are 140-600 KB.
const BOOK_BYTES: u64 = 200_000;

/// Runs `app` with a coordinator and `workers` workers and returns the sorted output.
fn run_job(scratch: &mut Scratch, app: &str, workers: usize, books: &[String]) -> String {
    let coordinator = scratch.coordinator(app, "out", &[], books);
    let mut started = Vec::new();
    for _ in 0..workers {
        started.push(scratch.worker(&coordinator.address));
    }
    let status = scratch.wait(coordinator.index, PROCESS_LIMIT);
    assert!(status.success(), "coordinator failed\n{}", scratch.logs());
    for worker in started {
        let status = scratch.wait(worker, PROCESS_LIMIT);
        assert!(status.success(), "worker failed\n{}", scratch.logs());
    }
    scratch.output("out")
}

#[test]
fn wc_matches_the_sequential_reference() {
    let mut scratch = Scratch::new();
    let books = scratch.books(BOOK_BYTES, 1);
    let reference = scratch.reference("wc", &books);
    let output = run_job(&mut scratch, "wc", 3, &books);
    assert!(reference.lines().count() > 1000, "the reference is substantial");
    assert!(output == reference, "wc output differs from the reference\n{}", scratch.logs());
    // The scratch directories are gone and nothing but the outputs is left.
    let left: Vec<String> = entries_with_prefix(&scratch.path().join("out"), "");
    assert_eq!(left, (0..10).map(|r| format!("mr-out-{r}")).collect::<Vec<_>>());
}

#[test]
fn indexer_matches_the_sequential_reference() {
    let mut scratch = Scratch::new();
    let books = scratch.books(BOOK_BYTES, 2);
    let reference = scratch.reference("indexer", &books);
    let output = run_job(&mut scratch, "indexer", 2, &books);
    assert!(output == reference, "indexer output differs from the reference\n{}", scratch.logs());
}

#[test]
fn map_tasks_run_in_parallel() {
    let mut scratch = Scratch::new();
    let books = scratch.books(10_000, 3);
    let output = run_job(&mut scratch, "test-mtiming", 2, &books);
    let workers = output.lines().filter(|l| l.starts_with("times-")).count();
    assert_eq!(workers, 2, "maps should have run on exactly the 2 workers:\n{output}");
    let overlapped = output.lines().any(|l| l.starts_with("parallel") && l.split(' ').skip(1).any(|v| v == "2"));
    assert!(overlapped, "no two maps overlapped:\n{output}");
}

#[test]
fn reduce_tasks_run_in_parallel() {
    let mut scratch = Scratch::new();
    let books = scratch.books(10_000, 4);
    let output = run_job(&mut scratch, "test-rtiming", 2, &books);
    let overlapping = output
        .lines()
        .filter(|l| {
            let mut parts = l.split(' ');
            let key = parts.next().unwrap_or("");
            key.len() == 1 && key.chars().all(|c| c.is_ascii_lowercase()) && parts.next() == Some("2")
        })
        .count();
    assert!(overlapping >= 2, "fewer than 2 reduces overlapped:\n{output}");
}

#[test]
fn every_map_runs_exactly_once_without_failures() {
    let mut scratch = Scratch::new();
    let books = scratch.books(10_000, 5);
    let output = run_job(&mut scratch, "test-jobcount", 4, &books);
    assert_eq!(output, "a 8\n", "map tasks ran more (or less) than once each");
}

#[test]
fn no_process_exits_before_the_output_is_final() {
    let mut scratch = Scratch::new();
    let books = scratch.books(10_000, 6);
    let coordinator = scratch.coordinator("test-early-exit", "out", &[], &books);
    let mut processes = vec![coordinator.index];
    for _ in 0..3 {
        processes.push(scratch.worker(&coordinator.address));
    }
    // Like `wait -n`: as soon as any process exits, look at the output.
    let deadline = Instant::now() + PROCESS_LIMIT;
    let at_first_exit = loop {
        let exited = processes.iter().any(|&i| matches!(scratch.child(i).try_wait(), Ok(Some(_))));
        if exited {
            break scratch.output("out");
        }
        assert!(Instant::now() < deadline, "nobody exited\n{}", scratch.logs());
        thread::sleep(Duration::from_millis(5));
    };
    for &i in &processes {
        assert!(scratch.wait(i, PROCESS_LIMIT).success(), "a process failed\n{}", scratch.logs());
    }
    let at_end = scratch.output("out");
    assert_eq!(at_end.lines().count(), 8, "one line per input file:\n{at_end}");
    assert_eq!(at_first_exit, at_end, "a process exited before the output was final");
}

#[test]
fn crashing_workers_do_not_change_the_output() {
    let mut scratch = Scratch::new();
    let books = scratch.books(10_000, 7);
    let reference = scratch.reference("test-nocrash", &books);
    // The crash app sleeps up to 4 s (6.824: 10 s); a 2 s timeout makes reassignment and late reports common.
    let coordinator = scratch.coordinator("test-crash", "out", &["--task-timeout", "2s"], &books);
    let first = scratch.worker(&coordinator.address);
    let address = coordinator.address.clone();
    let deadline = Instant::now() + CRASH_TEST_LIMIT;
    // Three loops that restart a worker whenever theirs exits, while the coordinator is alive (6.824 sleeps
    // 1 s between restarts too). Driven from this thread, one step per loop at a time.
    let mut loops: [Option<usize>; 3] = [None; 3];
    let mut next_start = [Instant::now(); 3];
    loop {
        if let Ok(Some(_)) = scratch.child(coordinator.index).try_wait() {
            break;
        }
        assert!(Instant::now() < deadline, "crash test did not finish\n{}", scratch.logs());
        for (slot, index) in loops.iter_mut().enumerate() {
            if let Some(i) = *index
                && let Ok(Some(_)) = scratch.child(i).try_wait()
            {
                *index = None;
                next_start[slot] = Instant::now() + Duration::from_secs(1);
            }
            if index.is_none() && Instant::now() >= next_start[slot] {
                *index = Some(scratch.worker(&address));
            }
        }
        thread::sleep(Duration::from_millis(20));
    }
    assert!(scratch.wait(coordinator.index, Duration::ZERO).success(), "coordinator failed\n{}", scratch.logs());
    let _ = wait_bounded(scratch.child(first), Duration::from_secs(10));
    let output = scratch.output("out");
    assert!(
        output == reference,
        "output differs from the no-crash reference:\n{output}\nvs\n{reference}\n{}",
        scratch.logs()
    );
}
