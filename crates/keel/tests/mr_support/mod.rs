//! Helpers for the MapReduce process tests: real `keel` processes over TCP on 127.0.0.1, input made by
//! keel's deterministic corpus generator, every process bounded in time and killed if the test fails.
#![allow(dead_code)] // each test file uses a different subset

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use keel_mr::corpus::{CorpusSpec, write_corpus};

pub const KEEL: &str = env!("CARGO_BIN_EXE_keel");

/// Names like 6.824's books; `sherlock` and `tom` matter to the early-exit app.
pub const BOOK_NAMES: [&str; 8] = [
    "pg-being_ernest.txt",
    "pg-dorian_gray.txt",
    "pg-frankenstein.txt",
    "pg-grimm.txt",
    "pg-huckleberry_finn.txt",
    "pg-metamorphosis.txt",
    "pg-sherlock_holmes.txt",
    "pg-tom_sawyer.txt",
];

/// A test's private directory; every process of the test runs in it (the test apps talk through files in
/// the current directory, as in 6.824). Processes started through it are killed when it is dropped.
pub struct Scratch {
    pub dir: tempfile::TempDir,
    children: Vec<(String, Child)>,
    next_log: usize,
}

impl Scratch {
    pub fn new() -> Scratch {
        Scratch { dir: tempfile::tempdir().expect("creating a temp dir"), children: Vec::new(), next_log: 0 }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Eight generated "books", `bytes_per_file` each (roughly), same content for the same seed.
    pub fn books(&self, bytes_per_file: u64, seed: u64) -> Vec<String> {
        let spec = CorpusSpec { bytes_per_file, vocabulary: 5_000, seed };
        write_corpus(self.path(), &BOOK_NAMES, &spec).expect("writing the corpus");
        // Relative names, as users type them; the indexer prints them.
        BOOK_NAMES.iter().map(|s| s.to_string()).collect()
    }

    fn log_file(&mut self, label: &str) -> (PathBuf, fs::File) {
        self.next_log += 1;
        let path = self.path().join(format!("log-{}-{label}.txt", self.next_log));
        let file = fs::File::create(&path).expect("creating a log file");
        (path, file)
    }

    /// `keel` with `args`, in the scratch directory, stderr to a log file.
    pub fn command(&mut self, label: &str, args: &[&str]) -> Command {
        let (_, log) = self.log_file(label);
        let mut command = Command::new(KEEL);
        command.args(args).current_dir(self.path()).stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        command
    }

    /// Starts `keel args` in the scratch directory, stderr to a log; returns it with the log's path. The
    /// process is not killed on drop: bound it with [`wait_bounded`].
    pub fn spawn(&mut self, label: &str, args: &[&str]) -> (Child, PathBuf) {
        let (log_path, log) = self.log_file(label);
        let child = Command::new(KEEL)
            .args(args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting keel");
        (child, log_path)
    }

    /// Runs `keel args` to completion (bounded) and returns (status, stderr).
    pub fn run(&mut self, args: &[&str], limit: Duration) -> (ExitStatus, String) {
        let (mut child, log_path) = self.spawn("run", args);
        let status = wait_bounded(&mut child, limit).unwrap_or_else(|| {
            let _ = child.kill();
            panic!("keel {args:?} did not finish in {limit:?}; stderr:\n{}", read(&log_path));
        });
        (status, read(&log_path))
    }

    /// Starts a coordinator on a free port and returns its address and job id.
    pub fn coordinator(&mut self, app: &str, output: &str, extra: &[&str], inputs: &[String]) -> Coordinator {
        // An empty `app`: the job's code is in `extra` (`--mapper`, `--reducer`).
        let mut args = vec!["mr", "coordinator", "--listen", "127.0.0.1:0", "--output", output];
        if !app.is_empty() {
            args.extend(["--app", app]);
        }
        args.extend_from_slice(extra);
        args.extend(inputs.iter().map(String::as_str));
        let (log_path, log) = self.log_file("coordinator");
        let mut child = Command::new(KEEL)
            .args(&args)
            .current_dir(self.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("starting the coordinator");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        // Reads every line to the end, so a later line (the status page's URL) never meets a closed pipe.
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
        let mut words = line.split_whitespace();
        let address = words.clone().skip_while(|w| *w != "on").nth(1).map(str::to_string);
        let job = words.by_ref().skip_while(|w| *w != "job").nth(1).map(str::to_string);
        let (Some(address), Some(job)) = (address, job) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("coordinator did not announce its address (got {line:?}); stderr:\n{}", read(&log_path));
        };
        let index = self.children.len();
        self.children.push(("coordinator".into(), child));
        Coordinator { index, address, job, log: log_path, stdout: rx }
    }

    /// Starts a worker for the coordinator at `address`; returns its index.
    pub fn worker(&mut self, address: &str) -> usize {
        let child =
            self.command("worker", &["mr", "worker", "--coordinator", address]).spawn().expect("starting a worker");
        self.children.push(("worker".into(), child));
        self.children.len() - 1
    }

    pub fn child(&mut self, index: usize) -> &mut Child {
        &mut self.children[index].1
    }

    /// Waits for process `index` to exit, at most `limit`; panics (killing everything) if it does not.
    pub fn wait(&mut self, index: usize, limit: Duration) -> ExitStatus {
        match wait_bounded(&mut self.children[index].1, limit) {
            Some(status) => status,
            None => panic!("{} did not exit within {limit:?}\n{}", self.children[index].0, self.logs()),
        }
    }

    /// Every log of this test, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut entries: Vec<_> =
            fs::read_dir(self.path()).map(|d| d.flatten().map(|e| e.path()).collect()).unwrap_or_default();
        entries.sort();
        for path in entries {
            if path.file_name().is_some_and(|n| n.to_string_lossy().starts_with("log-")) {
                let text = read(&path);
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                out.push_str(&format!("--- {}\n", path.display()));
                for line in tail.into_iter().rev() {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }

    /// The sequential reference, sorted, blank lines dropped.
    pub fn reference(&mut self, app: &str, inputs: &[String]) -> String {
        let output = format!("seq-{app}.txt");
        let mut args = vec!["mr", "seq", "--app", app, "--output", &output];
        args.extend(inputs.iter().map(String::as_str));
        let (status, stderr) = self.run(&args, Duration::from_secs(60));
        assert!(status.success(), "keel mr seq failed: {stderr}");
        sorted_lines(&read(&self.path().join(&output)))
    }

    /// `sort mr-out* | grep .` over `output`, and checks that each file is sorted by key.
    pub fn output(&self, output: &str) -> String {
        let dir = self.path().join(output);
        let mut all = String::new();
        let Ok(entries) = fs::read_dir(&dir) else { return all };
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with("mr-out") {
                let text = read(&entry.path());
                let keys: Vec<&str> = text.lines().map(|l| l.split(' ').next().unwrap_or("")).collect();
                assert!(keys.windows(2).all(|w| w[0] < w[1]), "{} is not sorted by key", entry.path().display());
                all.push_str(&text);
            }
        }
        sorted_lines(&all)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        for (_, child) in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub struct Coordinator {
    pub index: usize,
    pub address: String,
    pub job: String,
    pub log: PathBuf,
    /// The coordinator's stdout lines after the first.
    pub stdout: mpsc::Receiver<String>,
}

pub fn read(path: &Path) -> String {
    fs::read(path).map(|b| String::from_utf8_lossy(&b).into_owned()).unwrap_or_default()
}

pub fn sorted_lines(text: &str) -> String {
    let mut lines: Vec<&str> = text.lines().filter(|l| !l.is_empty()).collect();
    lines.sort_unstable();
    let mut out = lines.join("\n");
    out.push('\n');
    out
}

/// `None` if still running after `limit`.
pub fn wait_bounded(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The entries of `dir` whose names start with `prefix`.
pub fn entries_with_prefix(dir: &Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    names.retain(|n| n.starts_with(prefix));
    names.sort();
    names
}

/// `key value` pairs of a `--stats-file`.
pub fn stat(stats: &str, key: &str) -> u64 {
    stats
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.strip_prefix(' ')))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {key} in stats:\n{stats}"))
}

/// The pids of `pid`'s children (Linux `/proc`).
pub fn child_pids(pid: u32) -> Vec<u32> {
    let text = read(Path::new(&format!("/proc/{pid}/task/{pid}/children")));
    text.split_whitespace().filter_map(|p| p.parse().ok()).collect()
}

/// Waits until `pid` has `n` children (bounded); returns them.
pub fn wait_for_children(pid: u32, n: usize, limit: Duration) -> Vec<u32> {
    let deadline = Instant::now() + limit;
    loop {
        let children = child_pids(pid);
        if children.len() >= n {
            return children;
        }
        assert!(Instant::now() < deadline, "pid {pid} did not start {n} children within {limit:?}");
        thread::sleep(Duration::from_millis(10));
    }
}

/// Sends `signal` (a name such as `TERM`) to `pid` with kill(1).
pub fn send_signal(pid: u32, signal: &str) {
    let status = Command::new("kill").arg(format!("-{signal}")).arg(pid.to_string()).status().expect("running kill");
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// Whether a process with this pid exists (a reaped child does not).
pub fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// What `wc`'s counters must add up to for a (sorted) `word count` output: (sum of the counts, number of
/// distinct words).
pub fn wc_totals(output: &str) -> (u64, u64) {
    let mut words = 0;
    let mut distinct = 0;
    for line in output.lines().filter(|l| !l.is_empty()) {
        let count = line.rsplit(' ').next().and_then(|c| c.parse::<u64>().ok());
        words += count.unwrap_or_else(|| panic!("not a `word count` line: {line:?}"));
        distinct += 1;
    }
    (words, distinct)
}

/// Lines in the files `names` under `dir`, as `str::lines` counts them.
pub fn line_count(dir: &Path, names: &[String]) -> u64 {
    names.iter().map(|n| read(&dir.join(n)).lines().count() as u64).sum()
}
