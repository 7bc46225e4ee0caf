//! `keel raft ...` as a user runs it.
use std::process::Command;

fn keel(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_keel")).args(args).output().expect("run keel")
}

#[test]
fn demo_narrates_and_replays_identically() {
    let first = keel(&["raft", "demo", "--seconds", "8", "--seed", "3"]);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let text = String::from_utf8_lossy(&first.stdout);
    assert!(text.contains("elected leader of term"), "{text}");
    assert!(text.contains("applied on all 5"), "{text}");
    let again = keel(&["raft", "demo", "--seconds", "8", "--seed", "3"]);
    assert_eq!(first.stdout, again.stdout, "the same seed must print the same run");
}

#[test]
fn bad_arguments_get_a_clear_error_not_a_panic() {
    for args in [&["raft", "demo", "--nodes", "0"][..], &["raft", "demo", "--seconds", "x"], &["raft", "nope"]] {
        let out = keel(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("error:") && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn a_short_sweep_passes_and_reports_its_rate() {
    let out = keel(&["raft", "sweep", "--seeds", "50", "--threads", "1"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("50 seeds, 0 failed") && text.contains("seeds per minute"), "{text}");
}

#[test]
fn a_reader_that_goes_away_is_not_an_error() {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = Command::new(env!("CARGO_BIN_EXE_keel"))
        .args(["raft", "demo", "--seconds", "3600"]) // prints far more than a pipe buffer holds
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run keel");
    let mut first = [0u8; 16];
    child.stdout.take().expect("stdout").read_exact(&mut first).expect("some output");
    // stdout is now closed on our side, as `| head -c 16` would do.
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}
