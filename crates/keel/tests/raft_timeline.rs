//! `keel raft sweep --seed N --timeline PATH` and `keel raft catalogue ... --timeline PATH` as a user runs them.
use std::path::Path;
use std::process::{Command, Output};

fn keel(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_keel")).args(args).output().expect("run keel")
}

fn page(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn lanes(html: &str) -> usize {
    html.matches("<g class=\"lane\" data-node=").count()
}

#[test]
fn one_sweep_seed_draws_its_timeline() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("seed1.html");
    let out = keel(&["raft", "sweep", "--seed", "1", "--timeline", path.to_str().expect("utf-8 path")]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("sweep seed 1 passed") && stdout.contains("timeline written to"), "{stdout}");
    let html = page(&path);
    // The sweep draws the cluster's size from the seed; every lane from 0 up is there, and no more.
    let nodes = lanes(&html);
    assert!([3, 5, 7].contains(&nodes), "{nodes} lanes");
    for node in 0..nodes {
        assert!(html.contains(&format!("data-node=\"{node}\"")), "lane {node}");
    }
    assert!(html.contains("PASSED") && html.contains("keel raft sweep --seed 1 --timeline"));
    assert!(html.contains("<line class=\"m "), "messages are drawn");
    assert!(
        !dir.path().read_dir().expect("list").any(|e| e.is_ok_and(|e| e.file_name() != "seed1.html")),
        "no temporary file is left"
    );
}

#[test]
fn one_catalogue_scenario_draws_its_timeline() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("figure8.html");
    let args = ["raft", "catalogue", "--scenario", "figure8_unreliable_2c", "--seed", "1"];
    let out = keel(&[&args[..], &["--timeline", path.to_str().expect("utf-8 path")]].concat());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("figure8_unreliable_2c seed 1 passed"), "{stdout}");
    let html = page(&path);
    assert_eq!(lanes(&html), 5, "Figure 8 runs five servers");
    // The scenario disconnects leaders: the lanes show it (this pins the words the cluster records for it).
    assert!(html.contains("<rect class=\"cut\""), "disconnected nodes are marked");
    assert!(html.contains("<line class=\"m app lost\""), "lost messages are drawn as lost");
}

#[test]
fn bad_arguments_get_a_clear_error() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("x.html");
    let file = file.to_str().expect("utf-8 path");
    for (args, expected) in [
        (&["raft", "sweep", "--timeline", file][..], "--seed"),
        (&["raft", "sweep", "--seeds", "3", "--timeline", file], "cannot be used with"),
        (&["raft", "sweep", "--seed", "3", "--seeds", "3"], "cannot be used with"),
        (&["raft", "catalogue", "--scenario", "figure9_2c"], "figure8_unreliable_2c"),
    ] {
        let out = keel(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected) && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
    assert!(!Path::new(file).exists(), "no page is drawn for a rejected command");

    let unwritable = dir.path().join("missing").join("x.html");
    let out = keel(&["raft", "sweep", "--seed", "1", "--timeline", unwritable.to_str().expect("utf-8 path")]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(&format!("cannot write the timeline to {}", unwritable.display())), "{stderr}");
}
