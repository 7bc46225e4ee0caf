//! Streaming jobs (`--mapper CMD --reducer CMD`, Hadoop Streaming's contract) with real `keel` processes and
//! small Python and awk programs: word count equal to the built-in `wc`, in `mr run`, in `mr seq` and with a
//! hand-started coordinator and workers; counters reported on stderr; a failing program's stderr in the
//! job's error; a hung program killed at the task timeout, with nothing left running, and a program taken
//! along when its worker is killed.
mod mr_support;

use std::fs;
use std::time::{Duration, Instant};

use mr_support::{Scratch, line_count, read, sorted_lines, stat, wait_bounded};

const PROCESS_LIMIT: Duration = Duration::from_secs(60);

/// Word count in Python, splitting words as `wc` does (maximal runs of letters, Unicode included), and
/// counting lines through Hadoop's stderr counter syntax.
const PY_MAPPER: &str = r#"import re, sys
lines = 0
out = sys.stdout
for line in sys.stdin.buffer:
    lines += 1
    for word in re.findall(r"[^\W\d_]+", line.decode("utf-8")):
        out.write(word + "\t1\n")
sys.stderr.write("reporter:counter:py,lines,%d\n" % lines)
"#;

/// Sums the values of each run of equal keys (its input is sorted by key), printing `word count` like `wc`.
const PY_REDUCER: &str = r#"import sys
key, total = None, 0
for line in sys.stdin:
    k, v = line.rstrip("\n").split("\t", 1)
    if k != key:
        if key is not None:
            print(key, total)
        key, total = k, 0
    total += int(v)
if key is not None:
    print(key, total)
"#;

/// The same in awk, on ASCII text (Debian's default awk, mawk, works on bytes).
const AWK_MAPPER: &str = r#"awk '{ gsub(/[^A-Za-z]+/, " "); for (i = 1; i <= NF; i++) print $i "\t1" }'"#;
const AWK_REDUCER: &str = r#"awk -F '\t' '$1 != k { if (NR > 1) print k " " n; k = $1; n = 0 } { n += $2 } END { if (NR > 0) print k " " n }'"#;

fn write_scripts(scratch: &Scratch) {
    fs::write(scratch.path().join("wc_map.py"), PY_MAPPER).unwrap();
    fs::write(scratch.path().join("wc_reduce.py"), PY_REDUCER).unwrap();
}

/// ASCII text with punctuation and digits between words, `files` files.
fn ascii_books(scratch: &Scratch, files: usize) -> Vec<String> {
    let words = ["alpha", "beta", "gamma", "delta", "Epsilon", "zeta", "eta", "theta"];
    (0..files)
        .map(|f| {
            let name = format!("ascii-{f}.txt");
            let text: String = (0..4000)
                .map(|i| {
                    let sep = [" ", ", ", "; ", "42 ", "-", "\n"][(i * 7 + f) % 6];
                    format!("{}{sep}", words[(i * i + f) % words.len()])
                })
                .collect();
            fs::write(scratch.path().join(&name), text).unwrap();
            name
        })
        .collect()
}

#[test]
fn python_streaming_word_count_equals_the_built_in_wc_in_run_and_seq() {
    let mut scratch = Scratch::new();
    let books = scratch.books(200_000, 21);
    let reference = scratch.reference("wc", &books);
    write_scripts(&scratch);
    let streaming = ["--mapper", "python3 wc_map.py", "--reducer", "python3 wc_reduce.py"];

    let mut args = vec!["mr", "run", "--workers", "2", "--quiet", "--output", "out", "--reduces", "3"];
    args.extend(streaming);
    args.extend(["--split-size", "64KiB", "--stats-file", "stats.txt"]);
    args.extend(books.iter().map(String::as_str));
    let (status, stderr) = scratch.run(&args, PROCESS_LIMIT);
    assert!(status.success(), "keel mr run failed: {stderr}");
    assert!(scratch.output("out") == reference, "streaming output differs from the built-in wc");
    let stats = read(&scratch.path().join("stats.txt"));
    assert!(stat(&stats, "map_tasks") > books.len() as u64, "files were not split:\n{stats}");
    // Counters reported on stderr by the committed attempts: every line of every split, once.
    assert_eq!(stat(&stats, "counter.py.lines"), line_count(scratch.path(), &books), "{stats}");

    let mut args = vec!["mr", "seq", "--output", "seq-streaming.txt"];
    args.extend(streaming);
    args.extend(books.iter().map(String::as_str));
    let (status, stderr) = scratch.run(&args, PROCESS_LIMIT);
    assert!(status.success(), "keel mr seq failed: {stderr}");
    let seq = sorted_lines(&read(&scratch.path().join("seq-streaming.txt")));
    assert!(seq == reference, "streaming seq differs from the built-in wc");
    assert!(stderr.contains(&format!("counters: py.lines {}", line_count(scratch.path(), &books))), "{stderr}");
}

#[test]
fn awk_streaming_word_count_runs_on_a_hand_started_coordinator_and_workers() {
    let mut scratch = Scratch::new();
    let books = ascii_books(&scratch, 4);
    let reference = scratch.reference("wc", &books);
    let extra = ["--mapper", AWK_MAPPER, "--reducer", AWK_REDUCER, "--reduces", "2"];
    let coordinator = scratch.coordinator("", "out", &extra, &books);
    let workers: Vec<usize> = (0..2).map(|_| scratch.worker(&coordinator.address)).collect();
    assert!(scratch.wait(coordinator.index, PROCESS_LIMIT).success(), "coordinator failed\n{}", scratch.logs());
    for worker in workers {
        let _ = wait_bounded(scratch.child(worker), Duration::from_secs(10));
    }
    assert!(scratch.output("out") == reference, "awk output differs from the built-in wc\n{}", scratch.logs());
}

#[test]
fn a_failing_program_fails_the_job_with_the_end_of_its_stderr() {
    let mut scratch = Scratch::new();
    let books = ascii_books(&scratch, 1);
    let mapper =
        "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do echo trace-$i >&2; done; echo 'ValueError: boom' >&2; exit 3";
    let mut args = vec!["mr", "run", "--workers", "1", "--quiet", "--output", "out"];
    args.extend(["--mapper", mapper, "--reducer", "cat", &books[0]]);
    let (status, stderr) = scratch.run(&args, PROCESS_LIMIT);
    assert!(!status.success(), "a failing mapper must fail the job: {stderr}");
    assert!(stderr.contains("exit status: 3") && stderr.contains("ValueError: boom"), "{stderr}");
    assert!(stderr.contains("trace-15") && !stderr.contains("trace-1\n"), "only the last lines: {stderr}");
    assert!(!scratch.path().join("out").exists(), "a failed job leaves no output directory");
}

#[test]
fn a_program_that_never_ends_is_killed_at_the_task_timeout_and_nothing_is_left_running() {
    let mut scratch = Scratch::new();
    let books = ascii_books(&scratch, 1);
    // A marker no other process has, to look for leftovers; a background child too, which must die with it.
    let mapper = "sleep 612.345 & sleep 612.345";
    let mut args = vec!["mr", "run", "--workers", "1", "--quiet", "--output", "out", "--task-timeout", "200ms"];
    args.extend(["--mapper", mapper, "--reducer", "cat", &books[0]]);
    let started = Instant::now();
    let (status, stderr) = scratch.run(&args, PROCESS_LIMIT);
    assert!(!status.success(), "a hung mapper must fail the job: {stderr}");
    assert!(stderr.contains("made no progress") && stderr.contains("was killed"), "{stderr}");
    // Four attempts, each killed at its (doubling) timeout: 0.2 + 0.4 + 0.8 + 1.6 s, plus overhead.
    assert!(started.elapsed() < Duration::from_secs(30), "took {:?}", started.elapsed());
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let left = processes_running_with("612.345");
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "programs left running: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_worker_killed_with_sigkill_takes_its_program_along() {
    let mut scratch = Scratch::new();
    let books = ascii_books(&scratch, 1);
    // A pipeline that ignores its pipes: nothing but a signal ends it.
    let extra = ["--mapper", "sleep 614.25 | sleep 614.25", "--reducer", "cat", "--task-timeout", "60s"];
    let coordinator = scratch.coordinator("", "out", &extra, &books);
    let worker = scratch.worker(&coordinator.address);
    let deadline = Instant::now() + Duration::from_secs(20);
    while processes_running_with("614.25").len() < 2 {
        assert!(Instant::now() < deadline, "the mapper never started\n{}", scratch.logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    // SIGKILL: the worker runs no code of its own on the way out.
    let child = scratch.child(worker);
    let _ = child.kill();
    let _ = child.wait();
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let left = processes_running_with("614.25");
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the killed worker's program is still running: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Pids of running (not zombie) `sleep` processes whose command line contains `marker` (the keel processes
/// carry it in their `--mapper` argument).
fn processes_running_with(marker: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let cmdline = read(&entry.path().join("cmdline")).replace('\0', " ");
        let stat = read(&entry.path().join("stat"));
        let zombie = stat.rsplit(')').next().and_then(|r| r.split_whitespace().next()) == Some("Z");
        let sleep = read(&entry.path().join("comm")).trim() == "sleep";
        if sleep && cmdline.contains(marker) && !zombie {
            found.push(pid);
        }
    }
    found
}
