//! `keel kv bench` as a user runs it: against a real 1-node `keel kv serve` (ports picked by binding port 0,
//! data in a temporary directory), its table, its JSON and its plot say what was done; saved runs combine into
//! one table and one plot; a cluster that is not there is an error; `--failover` times real kills.
mod kv_support;

use std::path::Path;
use std::time::Duration;

use kv_support::{Cluster, free_ports, run_keel};

const BENCH_LIMIT: Duration = Duration::from_secs(120);

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the --json file is JSON")
}

/// The table's row for `label`, split on whitespace.
fn row<'a>(stdout: &'a str, label: &str) -> Vec<&'a str> {
    let line = stdout.lines().find(|l| l.starts_with(label)).unwrap_or_else(|| panic!("no row {label:?} in\n{stdout}"));
    line[label.len()..].split_whitespace().collect()
}

fn assert_percentiles_ordered(run: &serde_json::Value) {
    let latency = &run["latency"];
    let values: Vec<f64> = ["min_us", "p50_us", "p90_us", "p99_us", "p99.9_us", "max_us"]
        .iter()
        .map(|name| latency[*name].as_f64().unwrap_or_else(|| panic!("no {name} in {latency}")))
        .collect();
    assert!(values[0] > 0.0, "a request took no time at all: {latency}");
    assert!(values.windows(2).all(|pair| pair[0] <= pair[1]), "percentiles out of order: {latency}");
}

#[test]
fn bench_reports_what_it_did_and_plots_it() {
    let cluster = Cluster::start(1);
    let endpoint = format!("http://{}", cluster.node(1).http);
    let dir = tempfile::tempdir().expect("tempdir");
    let (writes_json, mixed_json) = (dir.path().join("writes.json"), dir.path().join("mixed.json"));
    let plot = dir.path().join("latency.html");

    // 300 puts from 4 clients through keel-kv-client.
    let (status, stdout, stderr) = run_keel(
        &args(&[
            "kv",
            "bench",
            "--endpoints",
            &endpoint,
            "--clients",
            "4",
            "--requests",
            "300",
            "--warmup-seconds",
            "0.2",
            "--label",
            "writes",
            "--json",
            writes_json.to_str().expect("utf-8 path"),
        ]),
        BENCH_LIMIT,
    );
    assert!(status.success(), "keel kv bench failed: {stderr}\n{}", cluster.logs());
    let cells = row(&stdout, "writes");
    // CLIENTS READ% REQUESTS ERRORS OPS/S p50 p90 p99 p99.9 max
    assert_eq!(&cells[..4], &["4", "0", "300", "0"], "row: {cells:?}");
    let runs = read_json(&writes_json);
    let run = &runs["runs"][0];
    assert_eq!(run["requests"], 300);
    assert_eq!(run["errors"], 0);
    assert_eq!(run["clients"], 4);
    assert_eq!(run["value_bytes"], 128);
    assert!(run["ops_per_second"].as_f64().is_some_and(|rate| rate > 0.0), "{run}");
    assert_percentiles_ordered(run);
    // The writes are really there: the node applied at least one entry per measured put.
    let applied = cluster.status(1).and_then(|s| s["applied_index"].as_u64()).expect("status");
    assert!(applied >= 300, "the node applied {applied} entries after 300 puts");

    // A timed 90%-read mix over raw HTTP.
    let (status, stdout, stderr) = run_keel(
        &args(&[
            "kv",
            "bench",
            "--endpoints",
            &endpoint,
            "--driver",
            "raw",
            "--clients",
            "2",
            "--seconds",
            "1",
            "--warmup-seconds",
            "0.2",
            "--read-percent",
            "90",
            "--keys",
            "10",
            "--label",
            "mixed",
            "--json",
            mixed_json.to_str().expect("utf-8 path"),
        ]),
        BENCH_LIMIT,
    );
    assert!(status.success(), "keel kv bench --driver raw failed: {stderr}\n{}", cluster.logs());
    let run = &read_json(&mixed_json)["runs"][0];
    assert_eq!(row(&stdout, "mixed")[1], "90");
    assert!(run["requests"].as_u64().is_some_and(|n| n > 0), "{run}");
    assert_eq!(run["errors"], 0, "{run}");
    assert_eq!(run["system"], "keel-raw");
    assert_percentiles_ordered(run);

    // Both saved runs: one table, one plot with a curve each.
    let (status, stdout, stderr) = run_keel(
        &args(&[
            "kv",
            "bench",
            "--report",
            &format!("{},{}", writes_json.display(), mixed_json.display()),
            "--plot",
            plot.to_str().expect("utf-8 path"),
        ]),
        BENCH_LIMIT,
    );
    assert!(status.success(), "keel kv bench --report failed: {stderr}");
    assert_eq!(row(&stdout, "writes")[2], "300", "the saved run keeps its request count:\n{stdout}");
    row(&stdout, "mixed");
    let html = std::fs::read_to_string(&plot).expect("the plot was written");
    assert!(html.contains("<svg"), "no SVG in the plot");
    assert_eq!(html.matches("<polyline").count(), 2, "one curve per run expected");
    assert!(html.contains(">writes<") && html.contains(">mixed<"), "the legend names both runs");
}

#[test]
fn bench_against_nothing_fails_and_says_so() {
    let port = free_ports(1)[0];
    let (status, _stdout, stderr) = run_keel(
        &args(&[
            "kv",
            "bench",
            "--endpoints",
            &format!("http://127.0.0.1:{port}"),
            "--driver",
            "raw",
            "--requests",
            "5",
            "--warmup-seconds",
            "0",
        ]),
        BENCH_LIMIT,
    );
    assert!(!status.success(), "a bench where nothing answered must fail");
    assert!(stderr.contains("no request succeeded (5 failed"), "stderr: {stderr}");
}

#[test]
fn failover_trials_are_timed_and_summarized() {
    let dir = tempfile::tempdir().expect("tempdir");
    let json = dir.path().join("failover.json");
    let (status, stdout, stderr) = run_keel(
        &args(&["kv", "bench", "--failover", "--trials", "2", "--json", json.to_str().expect("utf-8 path")]),
        BENCH_LIMIT,
    );
    assert!(status.success(), "keel kv bench --failover failed: {stderr}\n{stdout}");
    assert_eq!(stdout.lines().filter(|l| l.starts_with("trial ")).count(), 2, "{stdout}");
    let failover = &read_json(&json)["failover"];
    let trials = failover["trials"].as_array().expect("trials");
    assert_eq!(trials.len(), 2);
    for trial in trials {
        // A new leader took over, and no write could succeed before the survivors noticed the leader was gone.
        assert_ne!(trial["killed"], trial["new_leader"], "{trial}");
        assert!(trial["write_after_ms"].as_f64().is_some_and(|ms| ms > 0.0), "{trial}");
    }
    let summary = &failover["summary"];
    let ordered: Vec<f64> = ["min_ms", "median_ms", "p90_ms", "max_ms"]
        .iter()
        .map(|name| summary[*name].as_f64().unwrap_or_else(|| panic!("no {name}")))
        .collect();
    assert!(ordered.windows(2).all(|pair| pair[0] <= pair[1]), "{summary}");
    assert_eq!(failover["background_write_errors"], 0, "the client rides through failovers: {failover}");
    // Its cluster's directory is gone (the nodes were killed before it was removed).
    let first = stdout.lines().next().unwrap_or_default();
    let path = first
        .split_once(" nodes in ")
        .and_then(|(_, rest)| rest.split_once(", "))
        .map(|(path, _)| path)
        .unwrap_or_else(|| panic!("the first line names no directory: {first:?}"));
    assert!(!Path::new(path).exists(), "{path} is left behind");
}
