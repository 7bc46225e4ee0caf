//! Bad input and bad peers: each gets a clear error naming the culprit, no panic, and no partial output.
mod mr_support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use keel_mr::protocol::{Hello, HelloReply, PROTOCOL_MAGIC, PROTOCOL_VERSION};
use keel_mr::wire;
use mr_support::{Scratch, entries_with_prefix, process_exists, send_signal, wait_bounded, wait_for_children};

const LIMIT: Duration = Duration::from_secs(30);

fn assert_clean_failure(scratch: &mut Scratch, args: &[&str], expected: &[&str]) {
    let (status, stderr) = scratch.run(args, LIMIT);
    assert!(!status.success(), "keel {args:?} should fail");
    for needle in expected {
        assert!(stderr.contains(needle), "stderr of keel {args:?} should mention {needle:?}:\n{stderr}");
    }
    assert!(!stderr.contains("panicked"), "keel {args:?} panicked:\n{stderr}");
    // The output directory did not exist before, so nothing at all may be left.
    assert!(!scratch.path().join("out").exists(), "keel {args:?} left its output directory behind");
}

#[test]
fn missing_empty_and_non_utf8_inputs_are_refused_by_name() {
    let mut scratch = Scratch::new();
    let books = scratch.books(20_000, 21);
    fs::write(scratch.path().join("empty.txt"), b"").unwrap();
    fs::write(scratch.path().join("latin1.txt"), b"caf\xe9 au lait\n").unwrap();
    let made = std::process::Command::new("mkfifo").arg(scratch.path().join("fifo")).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    let good = books[0].as_str();
    for mode in [&["mr", "run", "--quiet"][..], &["mr", "coordinator", "--listen", "127.0.0.1:0"][..]] {
        let job = |input: &'static str| {
            let mut args: Vec<&str> = mode.to_vec();
            args.extend(["--app", "wc", "--output", "out", good, input]);
            args
        };
        assert_clean_failure(&mut scratch, &job("missing.txt"), &["missing.txt"]);
        assert_clean_failure(&mut scratch, &job("empty.txt"), &["empty.txt", "empty"]);
        // Opening a FIFO blocks until a writer comes: refused by its type, at once.
        assert_clean_failure(&mut scratch, &job("fifo"), &["fifo", "not a regular file"]);
    }
    // Encoding is checked when a map task reads its split: the job fails as a whole, with no output, and
    // says why once (not once per worker plus once).
    let args = ["mr", "run", "--workers", "3", "--quiet", "--app", "wc", "--output", "out", good, "latin1.txt"];
    assert_clean_failure(&mut scratch, &args, &["latin1.txt", "not valid UTF-8 at byte offset 3"]);
    let (_, stderr) = scratch.run(&args, LIMIT);
    assert_eq!(stderr.matches("not valid UTF-8").count(), 1, "the reason should be printed once:\n{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    for (input, needle) in [("missing.txt", "missing.txt"), ("empty.txt", "empty"), ("latin1.txt", "byte offset 3")] {
        let (status, stderr) = scratch.run(&["mr", "seq", "--app", "wc", "--output", "seq.txt", good, input], LIMIT);
        assert!(!status.success() && stderr.contains(needle), "seq on {input}: {stderr}");
        assert!(!scratch.path().join("seq.txt").exists(), "seq left partial output for {input}");
    }
}

#[test]
fn an_output_directory_with_results_is_left_alone() {
    let mut scratch = Scratch::new();
    let books = scratch.books(20_000, 22);
    fs::create_dir(scratch.path().join("out")).unwrap();
    fs::write(scratch.path().join("out/mr-out-0"), b"old results\n").unwrap();
    let (status, stderr) = scratch.run(&["mr", "run", "--quiet", "--app", "wc", "--output", "out", &books[0]], LIMIT);
    assert!(!status.success() && stderr.contains("already holds results"), "{stderr}");
    assert_eq!(fs::read(scratch.path().join("out/mr-out-0")).unwrap(), b"old results\n");
    assert_eq!(entries_with_prefix(&scratch.path().join("out"), ""), vec!["mr-out-0".to_string()]);

    fs::write(scratch.path().join("seq.txt"), b"old\n").unwrap();
    let (status, stderr) = scratch.run(&["mr", "seq", "--app", "wc", "--output", "seq.txt", &books[0]], LIMIT);
    assert!(!status.success() && stderr.contains("already exists"), "{stderr}");
    assert_eq!(fs::read(scratch.path().join("seq.txt")).unwrap(), b"old\n");
}

#[test]
fn unknown_app_is_refused_with_the_list_of_apps() {
    let mut scratch = Scratch::new();
    let books = scratch.books(20_000, 23);
    assert_clean_failure(
        &mut scratch,
        &["mr", "run", "--quiet", "--app", "wordcount", "--output", "out", &books[0]],
        &["unknown app \"wordcount\"", "wc"],
    );
}

#[test]
fn strangers_wrong_versions_and_other_jobs_are_refused_and_the_job_goes_on() {
    let mut scratch = Scratch::new();
    let books = scratch.books(20_000, 24);
    let coordinator = scratch.coordinator("wc", "out", &[], &books);

    // Something that is not a keel worker: an HTTP request. The coordinator drops it.
    let mut http = TcpStream::connect(&coordinator.address).unwrap();
    http.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    http.write_all(b"GET / HTTP/1.1\r\nHost: keel\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    assert!(matches!(http.read(&mut buf), Ok(0) | Err(_)), "the coordinator should close the connection");

    // A worker speaking another protocol version gets a readable refusal.
    let mut old = TcpStream::connect(&coordinator.address).unwrap();
    old.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let hello = Hello { magic: PROTOCOL_MAGIC, protocol_version: PROTOCOL_VERSION + 1, job: None, pid: 1 };
    wire::send(&mut old, &hello).unwrap();
    match wire::receive::<HelloReply>(&mut old).unwrap() {
        HelloReply::Rejected { reason } => assert!(reason.contains("protocol version"), "{reason}"),
        other => panic!("expected a refusal, got {other:?}"),
    }

    // A worker of another job is refused and exits with an error that says so.
    let stranger = scratch
        .command("stranger", &["mr", "worker", "--coordinator", &coordinator.address, "--job", "1"])
        .spawn()
        .unwrap();
    let mut stranger = stranger;
    let status = wait_bounded(&mut stranger, LIMIT).expect("the stranger worker should give up");
    assert!(!status.success());
    assert!(scratch.logs().contains(&format!("runs job {}", coordinator.job)), "{}", scratch.logs());

    // The job itself is unaffected.
    let worker = scratch.worker(&coordinator.address);
    assert!(scratch.wait(coordinator.index, LIMIT).success(), "{}", scratch.logs());
    assert!(scratch.wait(worker, LIMIT).success(), "{}", scratch.logs());
    assert_eq!(scratch.reference("wc", &books), scratch.output("out"));
}

#[test]
fn workers_exit_on_their_own_when_the_coordinator_is_gone() {
    let mut scratch = Scratch::new();
    let books = scratch.books(10_000, 25);
    // jobcount's maps take 2-5 s, so the worker is mid-task when the coordinator dies.
    let coordinator = scratch.coordinator("test-jobcount", "out", &[], &books);
    let worker = scratch.worker(&coordinator.address);
    let started = Instant::now();
    while !scratch.logs().contains("running map task") {
        assert!(started.elapsed() < LIMIT, "worker never started a task\n{}", scratch.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = scratch.child(coordinator.index).kill();
    // The task ends within 5 s, the report fails, reconnecting gives up after 10 s (the grace period for a
    // coordinator that restarts).
    let status = scratch.wait(worker, Duration::from_secs(30));
    assert!(status.success(), "the worker should exit cleanly\n{}", scratch.logs());
    assert!(scratch.logs().contains("is gone"), "{}", scratch.logs());
    let out = scratch.path().join("out");
    assert_eq!(entries_with_prefix(&out, "mr-out"), Vec::<String>::new(), "partial output");
}

#[test]
fn absurd_reduce_counts_and_split_sizes_are_refused() {
    let mut scratch = Scratch::new();
    let books = scratch.books(20_000, 26);
    let base = ["mr", "run", "--quiet", "--app", "wc", "--output", "out"];
    let mut args = base.to_vec();
    args.extend(["--reduces", "1000000000", &books[0]]);
    assert_clean_failure(&mut scratch, &args, &["--reduces 1000000000", "more than 10000"]);
    let mut args = base.to_vec();
    args.extend(["--split-size", "64GB", &books[0]]);
    assert_clean_failure(&mut scratch, &args, &["--split-size", "more than 1.0 GiB"]);
}

#[test]
fn sigterm_and_ctrl_c_stop_mr_run_cleanly() {
    let mut scratch = Scratch::new();
    let books = scratch.books(5_000, 27);
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let mut args = vec!["mr", "run", "--workers", "2", "--quiet", "--app", "test-slow", "--output", "out"];
        args.extend(books.iter().map(String::as_str));
        let (mut child, log) = scratch.spawn("run", &args);
        // Signal handlers are installed before the workers start: once both run, the job is under way.
        let workers = wait_for_children(child.id(), 2, LIMIT);
        send_signal(child.id(), signal);
        let status = wait_bounded(&mut child, LIMIT).expect("keel mr run should stop after a signal");
        let stderr = mr_support::read(&log);
        assert_eq!(status.code(), Some(code), "exit status after SIG{signal}; stderr:\n{stderr}");
        assert_eq!(stderr.lines().count(), 1, "one line, please:\n{stderr}");
        assert!(stderr.contains(&format!("interrupted by SIG{signal}")), "{stderr}");
        assert!(!scratch.path().join("out").exists(), "scratch or output left behind after SIG{signal}");
        for worker in workers {
            assert!(!process_exists(worker), "worker {worker} outlived keel mr run after SIG{signal}");
        }
    }
}

#[test]
fn mr_run_exits_promptly_after_the_job_when_a_worker_is_stopped() {
    let mut scratch = Scratch::new();
    let books = scratch.books(5_000, 28);
    let mut args = vec!["mr", "run", "--workers", "2", "--quiet", "--app", "test-slow", "--output", "out"];
    args.extend(["--task-timeout", "200ms"]);
    args.extend(books[..3].iter().map(String::as_str));
    let started = Instant::now();
    let (mut child, log) = scratch.spawn("run", &args);
    let workers = wait_for_children(child.id(), 2, LIMIT);
    send_signal(workers[0], "STOP");
    let status = wait_bounded(&mut child, LIMIT).expect("keel mr run should finish");
    let wall = started.elapsed();
    let stderr = mr_support::read(&log);
    assert!(status.success(), "{stderr}");
    let done_in: f64 = stderr
        .lines()
        .find_map(|l| l.split(" done in ").nth(1))
        .and_then(|rest| rest.trim_end_matches(" s").parse().ok())
        .unwrap_or_else(|| panic!("no 'done in' in:\n{stderr}"));
    // The job's work takes about 1.5 s. The seed then waited 3 s for the stopped worker to hear (inside
    // "done in") and 5 s more for it to exit (after it): about 9 s in all.
    let after_done = wall.as_secs_f64() - done_in;
    assert!(after_done < 1.0, "keel mr run took {after_done:.2} s after 'done in'");
    assert!(wall < Duration::from_secs(6), "keel mr run took {wall:?} with a stopped worker");
    assert!(!process_exists(workers[0]), "the stopped worker was left behind");
}

#[test]
fn a_second_mr_run_on_the_same_output_directory_is_refused() {
    let mut scratch = Scratch::new();
    let books = scratch.books(5_000, 29);
    let reference = scratch.reference("wc", &books[..3]);
    let mut first = vec!["mr", "run", "--workers", "1", "--quiet", "--app", "test-slow", "--output", "out"];
    first.extend(["--reduces", "3"]);
    first.extend(books[..3].iter().map(String::as_str));
    let (mut child, log) = scratch.spawn("first", &first);
    let deadline = Instant::now() + LIMIT;
    while !scratch.path().join("out/.keel-lock").exists() {
        assert!(Instant::now() < deadline, "the first job never took its lock");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut second = vec!["mr", "run", "--workers", "1", "--quiet", "--app", "wc", "--output", "out"];
    second.extend(["--reduces", "10", &books[3]]);
    let (status, stderr) = scratch.run(&second, LIMIT);
    assert!(!status.success() && stderr.contains("in use by another keel mr job"), "{stderr}");
    let status = wait_bounded(&mut child, LIMIT).expect("the first job should finish");
    assert!(status.success(), "{}", mr_support::read(&log));
    assert_eq!(entries_with_prefix(&scratch.path().join("out"), ""), ["mr-out-0", "mr-out-1", "mr-out-2"]);
    assert!(scratch.output("out") == reference, "the first job's output is its own");
}
