//! Bad input and bad peers: each gets a clear error naming the culprit, no panic, and no partial output.
mod mr_support;

use std::fs;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use keel_mr::protocol::{Hello, HelloReply, PROTOCOL_MAGIC, PROTOCOL_VERSION};
use keel_mr::wire;
use mr_support::{Scratch, entries_with_prefix, wait_bounded};

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
    // Encoding is checked when a map task reads its split: the job fails as a whole, with no output.
    assert_clean_failure(
        &mut scratch,
        &["mr", "run", "--quiet", "--app", "wc", "--output", "out", good, "latin1.txt"],
        &["latin1.txt", "not valid UTF-8 at byte offset 3"],
    );
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
    // The task ends within 5 s, the report fails, reconnecting gives up after 3 s.
    let status = scratch.wait(worker, Duration::from_secs(20));
    assert!(status.success(), "the worker should exit cleanly\n{}", scratch.logs());
    assert!(scratch.logs().contains("is gone"), "{}", scratch.logs());
    let out = scratch.path().join("out");
    assert_eq!(entries_with_prefix(&out, "mr-out"), Vec::<String>::new(), "partial output");
}
