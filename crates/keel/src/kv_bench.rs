//! `keel kv bench`: a load generator for keel kv, and for etcd (its v3 JSON gateway) with the very same load, so
//! the two can be compared side by side; and `--failover`, the time a cluster refuses writes after its leader
//! is killed. It stays light so it measures the server: one async thread by default, one keep-alive HTTP/1.1
//! connection per benchmark client, latencies in a small log-linear histogram per client.
//!
//! Files: `load.rs` (the closed-loop clients and the measured window), `target.rs` (keel through
//! `keel-kv-client` or raw HTTP, etcd's gateway), `histogram.rs`, `report.rs` (table, JSON, HTML/SVG plot),
//! `failover.rs`.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use keel_kv_client::LOCAL_ENDPOINTS_DEFAULT;

mod failover;
mod histogram;
mod load;
mod report;
mod target;

pub use target::Driver;

/// Benchmark clients at most: each holds a connection and a task; more would measure the load generator.
const CLIENTS_MAX: u64 = 4096;

#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  keel kv bench --clients 16 --seconds 10\n  keel kv bench --etcd \
                        http://127.0.0.1:2379 --clients 64 --read-percent 90\n  keel kv bench --report keel.json,etcd.json \
                        --plot latency.html\n  keel kv bench --failover --trials 20")]
pub struct BenchArgs {
    /// keel nodes' HTTP endpoints, comma-separated.
    #[arg(long, env = "KEEL_ENDPOINTS", value_delimiter = ',', default_value = LOCAL_ENDPOINTS_DEFAULT)]
    endpoints: Vec<String>,
    /// Benchmark etcd instead: its members' client URLs (the v3 JSON gateway), comma-separated.
    #[arg(long, value_delimiter = ',', conflicts_with = "driver")]
    etcd: Option<Vec<String>>,
    /// How keel is driven: `client` (keel-kv-client, exactly-once, retries across nodes: what an application
    /// uses) or `raw` (HTTP with Keel-Client-Id/Keel-Seq headers, one node per benchmark client, no retries).
    #[arg(long, value_enum)]
    driver: Option<Driver>,
    /// Concurrent benchmark clients, each with one request outstanding.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=CLIENTS_MAX))]
    clients: u64,
    /// Measure for this long [default: 10 s unless --requests is given].
    #[arg(long, conflicts_with = "requests")]
    seconds: Option<f64>,
    /// Measure this many requests (in all) instead of a time.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    requests: Option<u64>,
    /// Run (unmeasured) this long first: connections open, caches and the leader warm up.
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
    /// Size of each written value.
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u64).range(0..=keel_kv::VALUE_BYTES_MAX as u64))]
    value_bytes: u64,
    /// Percentage of requests that are (linearizable) reads; the rest are puts.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=100))]
    read_percent: u8,
    /// Size of the key space (keys bench-00000000 ... ), chosen uniformly.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    keys: u64,
    /// Async worker threads of the load generator (1: a current-thread runtime).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=2))]
    threads: u64,
    /// Keep the endpoints' order (by default the leader's endpoint is put first, so one client talks to the
    /// leader on either system, and many clients spread from it).
    #[arg(long)]
    no_leader_first: bool,
    /// Every client talks to the leader only (found as for the leader-first order): no forwarding by followers.
    #[arg(long, conflicts_with = "no_leader_first")]
    leader_only: bool,
    /// The run's name in the table, the JSON and the plot [default: the system and the load].
    #[arg(long)]
    label: Option<String>,
    /// Write the results (with the latency histogram) as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write an HTML page with the latency distribution (an SVG plot, one curve per run) to this file.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Run nothing: show the runs saved in these --json files (comma-separated) as one table, and plot them
    /// with --plot.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["etcd", "failover"])]
    report: Vec<PathBuf>,
    /// Measure failover instead: start a cluster of --nodes `keel kv serve` processes in a temporary directory,
    /// kill -9 the leader --trials times under a light write load, and time until a write succeeds again.
    #[arg(long)]
    failover: bool,
    /// Failover trials.
    #[arg(long, default_value_t = 20, requires = "failover", value_parser = clap::value_parser!(u32).range(1..))]
    trials: u32,
    /// Nodes of the failover cluster.
    #[arg(long, default_value_t = 3, requires = "failover", value_parser = clap::value_parser!(u64).range(3..=9))]
    nodes: u64,
}

pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    if !args.report.is_empty() {
        return show_saved(&args);
    }
    let runtime = match args.threads {
        1 => tokio::runtime::Builder::new_current_thread().enable_all().build(),
        threads => tokio::runtime::Builder::new_multi_thread().worker_threads(threads as usize).enable_all().build(),
    }
    .context("could not start the async runtime")?;
    if args.failover {
        let plan = failover::FailoverPlan { nodes: args.nodes, trials: args.trials, json: args.json.clone() };
        return runtime.block_on(failover::run(&plan));
    }
    runtime.block_on(bench(args))
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let mut system = match &args.etcd {
        Some(endpoints) => target::System::Etcd { endpoints: endpoints.clone() },
        None => {
            target::System::Keel { endpoints: args.endpoints.clone(), driver: args.driver.unwrap_or(Driver::Client) }
        }
    };
    if !args.no_leader_first {
        let (ordered, leader) = target::leader_first(&system).await;
        let chosen = match (leader, args.leader_only) {
            (Some(leader), true) => vec![leader],
            (None, true) => anyhow::bail!(
                "--leader-only: no endpoint of {} says it leads (is the cluster up?)",
                system.endpoints().join(",")
            ),
            (None, false) => {
                eprintln!("keel kv bench: no endpoint says it leads (is the cluster up?); keeping the given order");
                ordered
            }
            (Some(_), false) => ordered,
        };
        match &mut system {
            target::System::Keel { endpoints, .. } | target::System::Etcd { endpoints } => *endpoints = chosen,
        }
    }
    let stop = match (args.requests, args.seconds) {
        (Some(requests), _) => load::Stop::Requests(requests),
        (None, seconds) => {
            let seconds = seconds.unwrap_or(10.0);
            anyhow::ensure!(seconds > 0.0 && seconds.is_finite(), "--seconds must be a positive number");
            load::Stop::After(Duration::from_secs_f64(seconds))
        }
    };
    anyhow::ensure!(
        args.warmup_seconds >= 0.0 && args.warmup_seconds.is_finite(),
        "--warmup-seconds must be 0 or more"
    );
    let label = args.label.clone().unwrap_or_else(|| {
        let on = if args.leader_only { " leader" } else { "" };
        format!("{} c={}{on} r={}% v={}B", system.name(), args.clients, args.read_percent, args.value_bytes)
    });
    let plan = load::Plan {
        system,
        label: label.clone(),
        clients: args.clients as usize,
        stop,
        warmup: Duration::from_secs_f64(args.warmup_seconds),
        value_bytes: args.value_bytes as usize,
        read_percent: args.read_percent,
        keys: args.keys,
    };
    let progress = indicatif::ProgressBar::new(0).with_prefix(label);
    progress.set_style(
        indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {percent:>3}% {msg}")
            .context("progress bar template")?
            .progress_chars("=> "),
    );
    progress.enable_steady_tick(Duration::from_millis(200));
    let outcome = tokio::select! {
        outcome = load::run(&plan, &progress) => outcome?,
        _ = tokio::signal::ctrl_c() => {
            progress.abandon();
            anyhow::bail!("interrupted");
        }
    };
    let outcomes = [outcome];
    print!("{}", report::table(&outcomes));
    for sample in &outcomes[0].error_samples {
        eprintln!("error: {sample}");
    }
    save(&args, &outcomes)?;
    // A run in which nothing succeeded measured nothing: say so with the exit status, so scripts notice.
    anyhow::ensure!(
        outcomes[0].requests > 0,
        "no request succeeded ({} failed; the first errors are above): is the cluster running at {}?",
        outcomes[0].errors,
        plan.system.endpoints().join(",")
    );
    Ok(())
}

fn save(args: &BenchArgs, outcomes: &[load::Outcome]) -> anyhow::Result<()> {
    if let Some(path) = &args.json {
        report::write_json(path, outcomes)?;
    }
    if let Some(path) = &args.plot {
        report::write_plot(path, outcomes, "keel kv bench: latency by percentile")?;
    }
    Ok(())
}

fn show_saved(args: &BenchArgs) -> anyhow::Result<()> {
    let mut outcomes = Vec::new();
    for path in &args.report {
        outcomes.extend(report::read_json(path)?);
    }
    print!("{}", report::table(&outcomes));
    let comparison = report::comparison(&outcomes);
    if !comparison.is_empty() {
        print!("\n{comparison}");
    }
    save(args, &outcomes)
}
