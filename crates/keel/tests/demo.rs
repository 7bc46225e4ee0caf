//! `keel demo` as a user runs it: the whole story in quick mode, and Ctrl-C in the middle of it. Both must
//! leave nothing behind: no process and no temp dir.
mod kv_support;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

// Kills the demo if it overruns, so a hung demo fails the test instead of hanging it.
use kv_support::{stdout_lines, wait_bounded};

/// The quick demo takes about 6 s on an idle machine; a busy two-core CI machine gets plenty more.
const DEMO_LIMIT: Duration = Duration::from_secs(240);

fn start_demo() -> (Child, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["demo", "--quick"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start keel demo");
    let lines = stdout_lines(&mut child);
    (child, lines)
}

fn stderr_of(child: &mut Child) -> String {
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        let _ = pipe.read_to_string(&mut stderr);
    }
    stderr
}

/// The temp dir the demo announced ("working in PATH (removed at the end)").
fn temp_dir(narration: &str) -> PathBuf {
    let line = narration.lines().find(|l| l.contains("working in ")).expect("the demo names its temp dir");
    let rest = &line[line.find("working in ").expect("marker") + "working in ".len()..];
    PathBuf::from(rest.split(" (").next().expect("a path"))
}

/// Every pid the narration names ("pid 123", "pids 1, 2, 3").
fn pids(narration: &str) -> Vec<u32> {
    let mut found = Vec::new();
    for (at, _) in narration.match_indices("pid") {
        let rest = narration[at + 3..].trim_start_matches('s').trim_start();
        for part in rest.split(", ") {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            match digits.parse() {
                Ok(pid) => found.push(pid),
                Err(_) => break,
            }
            if digits.len() != part.len() {
                break;
            }
        }
    }
    found
}

/// The named processes that still run and belong to this demo run (their command line names its temp dir or
/// its MapReduce coordinator): a pid reused by an unrelated process since is not counted.
fn leftovers(narration: &str, dir: &std::path::Path) -> Vec<String> {
    let coordinator = narration
        .lines()
        .find_map(|l| l.split("coordinator at ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .map(str::to_string);
    pids(narration)
        .into_iter()
        .filter_map(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            let ours = cmdline.contains(&dir.display().to_string())
                || coordinator.as_deref().is_some_and(|address| cmdline.contains(address));
            ours.then(|| format!("pid {pid}: {cmdline}"))
        })
        .collect()
}

#[test]
fn the_demo_survives_a_killed_leader_and_a_killed_worker_checks_everything_and_leaves_nothing() {
    let (mut child, lines) = start_demo();
    let status = wait_bounded(&mut child, DEMO_LIMIT);
    let narration: String = lines.try_iter().map(|l| l + "\n").collect();
    let stderr = stderr_of(&mut child);
    let status = status.unwrap_or_else(|| panic!("the demo did not finish within {DEMO_LIMIT:?}\n{narration}{stderr}"));
    assert!(status.success(), "the demo failed ({status})\n{narration}\n{stderr}");

    // The story, as the user reads it.
    assert!(narration.contains("killing the leader, node") && narration.contains("with SIGKILL"), "{narration}");
    let failover = narration
        .lines()
        .find_map(|l| l.split("the cluster was without a leader for ").nth(1))
        .and_then(|rest| rest.split(" (").next())
        .unwrap_or_else(|| panic!("no failover time in the narration\n{narration}"));
    assert!(
        failover.ends_with(" ms") || failover.ends_with(" s"),
        "the failover is not a time: {failover:?}\n{narration}"
    );
    assert!(narration.contains("caught up: applied index"), "{narration}");
    assert!(narration.contains("the checker says: linearizable"), "{narration}");
    assert!(narration.contains("tasks done; killing mr worker") && narration.contains("with SIGKILL: "), "{narration}");
    assert!(narration.contains("keel mr seq's are identical, byte for byte"), "{narration}");
    assert!(narration.contains("every check passed"), "{narration}");

    // Nothing left behind.
    let dir = temp_dir(&narration);
    assert!(!dir.exists(), "the demo left its temp dir {}\n{narration}", dir.display());
    assert!(pids(&narration).len() >= 8, "the narration names too few processes\n{narration}");
    let left = leftovers(&narration, &dir);
    assert!(left.is_empty(), "processes left running: {left:?}\n{narration}");
}

#[test]
fn ctrl_c_in_the_middle_stops_every_process_and_removes_the_temp_dir() {
    let (mut child, lines) = start_demo();
    // Wait until the cluster runs under load.
    let until = Instant::now() + DEMO_LIMIT;
    let mut narration = String::new();
    while !narration.contains("step 2:") {
        match lines.recv_timeout(Duration::from_millis(100)) {
            Ok(line) => narration.push_str(&(line + "\n")),
            Err(mpsc::RecvTimeoutError::Timeout) if Instant::now() < until => {}
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the demo never reached its load step\n{narration}{}", stderr_of(&mut child));
            }
        }
    }
    // SAFETY: kill(2) on our own child, not yet reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let status = wait_bounded(&mut child, Duration::from_secs(60));
    narration.extend(lines.try_iter().map(|l| l + "\n"));
    let stderr = stderr_of(&mut child);
    let status = status.unwrap_or_else(|| panic!("the demo did not stop within 60 s of SIGINT\n{narration}{stderr}"));
    assert_eq!(status.code(), Some(130), "exit status after SIGINT\n{narration}{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    let dir = temp_dir(&narration);
    assert!(!dir.exists(), "the demo left its temp dir {}\n{narration}", dir.display());
    assert!(pids(&narration).len() >= 3, "the narration names too few processes\n{narration}");
    let left = leftovers(&narration, &dir);
    assert!(left.is_empty(), "processes left running: {left:?}\n{narration}");
}
