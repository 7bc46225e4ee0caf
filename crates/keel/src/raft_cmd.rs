//! `keel raft ...`: the simulated-cluster demo, the fault sweep, one catalogue scenario, and the Raft benchmark.
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use keel_sim::RaftOptions;
use keel_sim::bench::{GO_REFERENCE_2A_TO_2C_S, GO_REFERENCE_2D_S, throughput, time_catalogue};
use keel_sim::demo::{DemoOptions, run_demo};
use keel_sim::sweep_runner::run_sweep;
use keel_sim::timeline::{self, TimelineEvent};
use keel_sim::timeline_html::{self, Page};

#[derive(Debug, Subcommand)]
pub enum RaftCommand {
    /// Run a simulated cluster under client load and faults, narrating elections, commits and faults.
    Demo(DemoArgs),
    /// Benchmark: wall time of the 6.824 catalogue in the simulator, commit throughput, sweep rate.
    Bench(BenchArgs),
    /// Randomized fault sweep: random clusters and fault schedules, safety checked after every event, liveness
    /// after the heal. Failures print their seed and replay command.
    Sweep(SweepArgs),
    /// Run one scenario of the 6.824 Raft test catalogue (2A-2D) with one seed, optionally drawing its timeline.
    Catalogue(CatalogueArgs),
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "seed")]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1, conflicts_with = "seed")]
    first_seed: u64,
    /// Run exactly this seed (a failing seed the sweep printed, say) and print its outcome.
    #[arg(long)]
    seed: Option<u64>,
    /// Draw the run as an HTML/SVG timeline into this file (needs --seed: one picture is one run).
    // clap counts a requirement as met when a conflicting argument is present, so the conflicts are spelled out.
    #[arg(long, value_name = "PATH", requires = "seed", conflicts_with_all = ["seeds", "first_seed", "threads"])]
    timeline: Option<PathBuf>,
    /// Worker threads (default: available cores).
    #[arg(long, conflicts_with = "seed")]
    threads: Option<usize>,
}

#[derive(Debug, Args)]
pub struct CatalogueArgs {
    /// The scenario, by its 6.824 test name.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(keel_sim::catalogue::ALL.iter().map(|s| s.name)), hide_possible_values = false)]
    scenario: String,
    /// Seed of the run: the same seed replays the same run exactly.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run with PreVote and CheckQuorum on (CI runs the catalogue both ways; the default is Figure 2 as written).
    #[arg(long)]
    pre_vote_check_quorum: bool,
    /// Draw the run as an HTML/SVG timeline into this file.
    #[arg(long, value_name = "PATH")]
    timeline: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the run: the same seed replays the same run exactly.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Number of Raft nodes (1 to 9).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=9))]
    nodes: u64,
    /// Virtual seconds of traffic and faults.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    seconds: u64,
    /// Use an unreliable network (10% loss each way, 0-26 ms extra delay).
    #[arg(long)]
    unreliable: bool,
    /// Run Figure 2 as written: no PreVote, no CheckQuorum (watch rejoining nodes raise the term).
    #[arg(long)]
    figure2: bool,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Seeds per catalogue scenario.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1000))]
    seeds: u64,
    /// Seeds for the sweep-rate figure.
    #[arg(long, default_value_t = 2000, value_parser = clap::value_parser!(u64).range(1..))]
    sweep_seeds: u64,
}

pub fn run(command: RaftCommand) -> anyhow::Result<()> {
    match command {
        RaftCommand::Demo(args) => {
            let options = DemoOptions {
                seed: args.seed,
                nodes: args.nodes as usize,
                duration_s: args.seconds,
                unreliable: args.unreliable,
                raft: RaftOptions::with_extensions(!args.figure2, !args.figure2),
            };
            let stdout = std::io::stdout();
            let summary = run_demo(&options, &mut stdout.lock())?;
            if summary.committed_everywhere == 0 {
                anyhow::bail!("no entry was applied on every node");
            }
            Ok(())
        }
        RaftCommand::Bench(args) => bench(args),
        RaftCommand::Sweep(args) => match args.seed {
            Some(seed) => sweep_one(seed, args.timeline.as_deref()),
            None => sweep(args),
        },
        RaftCommand::Catalogue(args) => catalogue(args),
    }
}

fn available_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn sweep(args: SweepArgs) -> anyhow::Result<()> {
    let threads = args.threads.unwrap_or_else(available_threads).max(1);
    println!("fault sweep: seeds {}..{} on {threads} thread(s)", args.first_seed, args.first_seed + args.seeds - 1);
    let tenth = (args.seeds / 10).max(1);
    let progress = |done: u64| {
        if done.is_multiple_of(tenth) {
            eprintln!("  {done} of {} seeds done", args.seeds);
        }
    };
    let report = run_sweep(args.first_seed, args.seeds, threads, &progress);
    for (seed, failure) in &report.failures {
        println!("\nseed {seed} FAILED:{failure}");
    }
    println!(
        "\n{} seeds, {} failed, in {:.1} s: {:.0} seeds per minute",
        report.seeds,
        report.failures.len(),
        report.wall.as_secs_f64(),
        report.seeds_per_minute()
    );
    println!(
        "  clusters of 3/5/7 nodes: {}/{}/{}; {} fault events; {} entries committed; {:.0} s of virtual time",
        report.by_nodes[0],
        report.by_nodes[1],
        report.by_nodes[2],
        report.events,
        report.committed,
        report.virtual_ms as f64 / 1000.0
    );
    println!(
        "  {} InstallSnapshots delivered (in {} seeds), {} duplicated messages, {} nemesis strikes ({} leaders crashed between sending entries and their own fsync), {} unprompted appends from leaders, {} very late replies; risky deliveries: {} stale acknowledgements at leaders ({} of snapshots), {} stale votes at candidates, {} outdated appends, {} commits beyond the verified; busiest virtual second {} events",
        report.snapshots_installed,
        report.seeds_with_snapshots_installed,
        report.duplicated,
        report.nemesis_strikes,
        report.crashes_ahead_of_fsync,
        report.legal_appends_sent,
        report.late_replies_delivered,
        report.stale_acks_at_leader,
        report.stale_snapshot_acks_at_leader,
        report.stale_votes_at_candidate,
        report.outdated_appends,
        report.commit_beyond_verified,
        report.events_per_virtual_second_peak
    );
    println!(
        "  {} seeds on keel's WAL over a simulated disk: {} recoveries after power loss ({} with an update in flight: {} found on disk, {} lost), {} torn WAL tails cut, {} injected disk errors (fail-stop)",
        report.seeds_on_disk,
        report.disk.recoveries,
        report.disk.in_flight_found + report.disk.in_flight_lost,
        report.disk.in_flight_found,
        report.disk.in_flight_lost,
        report.disk.torn_tails_cut,
        report.disk.disk_errors
    );
    if !report.failures.is_empty() {
        anyhow::bail!("{} seed(s) violated a Raft property", report.failures.len());
    }
    Ok(())
}

/// One sweep seed, with its timeline if asked.
fn sweep_one(seed: u64, timeline: Option<&Path>) -> anyhow::Result<()> {
    // The sweep's worker threads carry the sweep test's name, so the replay command in a failure report points at
    // that test; this run does the same.
    let (events, outcome) = run_recorded("fault_sweep", move || keel_sim::sweep::run_seed(seed))?;
    let title = format!("sweep seed {seed}");
    let replay = replay_command(&format!("keel raft sweep --seed {seed}"), timeline);
    let (failure, said) = match &outcome {
        Ok(o) => (
            None,
            format!(
                "sweep seed {seed} passed: {} nodes, {} fault events, {} entries committed, {:.1} s of virtual time",
                o.nodes,
                o.events,
                o.committed,
                o.virtual_ms as f64 / 1000.0
            ),
        ),
        Err(report) => (Some(report.as_str()), format!("sweep seed {seed} FAILED:{report}")),
    };
    finish(&events, &title, &replay, failure, &said, timeline)
}

/// One catalogue scenario with one seed, with its timeline if asked.
fn catalogue(args: CatalogueArgs) -> anyhow::Result<()> {
    let Some(scenario) = keel_sim::catalogue::ALL.iter().find(|s| s.name == args.scenario) else {
        // clap only lets known names through; this is the belt to its braces.
        let names: Vec<&str> = keel_sim::catalogue::ALL.iter().map(|s| s.name).collect();
        anyhow::bail!("unknown scenario {:?}; the scenarios are: {}", args.scenario, names.join(", "));
    };
    let (run, seed, name) = (scenario.run, args.seed, scenario.name);
    let options =
        if args.pre_vote_check_quorum { RaftOptions::with_extensions(true, true) } else { RaftOptions::FIGURE_2 };
    // Named like the test so that a failure's replay command points at it.
    let config = keel_sim::tester::TesterConfig::figure_2(seed).with_raft(options);
    let (events, outcome) = run_recorded(name, move || run(&config))?;
    let flags = if args.pre_vote_check_quorum { " --pre-vote-check-quorum" } else { "" };
    let replay = replay_command(
        &format!("keel raft catalogue --scenario {name} --seed {seed}{flags}"),
        args.timeline.as_deref(),
    );
    let title =
        format!("{name} seed {seed}{}", if args.pre_vote_check_quorum { " (PreVote, CheckQuorum)" } else { "" });
    let (failure, said) = match &outcome {
        Ok(()) => (None, format!("{name} seed {seed} passed")),
        Err(report) => (Some(report.as_str()), format!("{name} seed {seed} FAILED:{report}")),
    };
    finish(&events, &title, &replay, failure, &said, args.timeline.as_deref())
}

/// Runs `body` on a thread named `thread_name` with the timeline recorder on. A failed check panics with its
/// report; that comes back as `Err(report)` (printed by the caller, so the panic hook is silenced meanwhile).
fn run_recorded<T: Send>(
    thread_name: &str,
    body: impl FnOnce() -> T + Send,
) -> anyhow::Result<(Vec<TimelineEvent>, Result<T, String>)> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let joined = std::thread::scope(|scope| {
        let worker = std::thread::Builder::new().name(thread_name.to_string());
        worker.spawn_scoped(scope, || timeline::record(body)).map(|handle| handle.join())
    });
    std::panic::set_hook(hook);
    match joined {
        Ok(Ok(recorded)) => Ok(recorded),
        // `record` catches the body's panics; one escaping it is a bug in the recorder itself.
        Ok(Err(_)) => anyhow::bail!("the run's thread panicked outside the recorded body"),
        Err(e) => Err(e).context("cannot start the run's thread"),
    }
}

fn replay_command(command: &str, timeline: Option<&Path>) -> String {
    match timeline {
        Some(path) => format!("{command} --timeline {}", path.display()),
        None => command.to_string(),
    }
}

/// Writes the timeline if asked, prints the outcome (`said`), and turns a failed run into the command's error (a
/// non-zero exit). The picture is written first: it is wanted most when the run failed, and even if nobody reads
/// the output any more.
fn finish(
    events: &[TimelineEvent],
    title: &str,
    replay: &str,
    failure: Option<&str>,
    said: &str,
    timeline: Option<&Path>,
) -> anyhow::Result<()> {
    if let Some(path) = timeline {
        let html = timeline_html::render(events, &Page { title, replay, failure });
        write_atomically(path, html.as_bytes())?;
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "{}", said.trim_end())?;
    if let Some(path) = timeline {
        writeln!(out, "timeline written to {}", path.display())?;
    }
    if failure.is_some() {
        anyhow::bail!("{title} violated a Raft property");
    }
    Ok(())
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`: a reader never sees half a
/// page, and a failed write leaves any earlier file in place.
fn write_atomically(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let file_name = path.file_name().with_context(|| format!("{} does not name a file", path.display()))?;
    let mut temporary_name = std::ffi::OsString::from(".");
    temporary_name.push(file_name);
    temporary_name.push(format!(".{}.tmp", std::process::id()));
    let temporary = path.with_file_name(temporary_name);
    std::fs::write(&temporary, bytes).with_context(|| {
        format!("cannot write the timeline to {} (through {})", path.display(), temporary.display())
    })?;
    if let Err(e) = std::fs::rename(&temporary, path) {
        let _ = std::fs::remove_file(&temporary);
        return Err(e).with_context(|| format!("cannot move the timeline into place at {}", path.display()));
    }
    Ok(())
}

fn bench(args: BenchArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    if cfg!(debug_assertions) {
        writeln!(out, "warning: debug build; run `cargo run --release -p keel -- raft bench` for real figures")?;
    }
    let seeds: Vec<u64> = (1..=args.seeds).collect();
    writeln!(out, "6.824 catalogue in the simulator, {} seed(s) per scenario", seeds.len())?;
    let timing = time_catalogue(&seeds);
    for (name, elapsed) in &timing.per_scenario {
        writeln!(out, "  {name:<34} {:>8.1} ms", elapsed.as_secs_f64() * 1000.0)?;
    }
    let per_seed = |total: std::time::Duration| total.as_secs_f64() / seeds.len() as f64;
    let abc = per_seed(timing.total_2a_to_2c);
    let d = per_seed(timing.total_2d);
    writeln!(
        out,
        "  2A-2C: {abc:.3} s per seed (Go reference, real time: {GO_REFERENCE_2A_TO_2C_S:.0} s; {:.0}x faster)",
        GO_REFERENCE_2A_TO_2C_S / abc
    )?;
    writeln!(
        out,
        "  2A-2D: {:.3} s per seed (Go reference: {:.0} s; {:.0}x faster)",
        abc + d,
        GO_REFERENCE_2A_TO_2C_S + GO_REFERENCE_2D_S,
        (GO_REFERENCE_2A_TO_2C_S + GO_REFERENCE_2D_S) / (abc + d)
    )?;

    writeln!(out, "\ncommit throughput, fault-free simulation, 20 proposals per virtual ms")?;
    let baseline = throughput(1, 20, 20, 1);
    let three = throughput(3, 20, 20, 1);
    for t in [&baseline, &three] {
        writeln!(
            out,
            "  {} node(s): {:>9.0} entries per wall second ({:.0} per virtual second, {} entries in {:.2} s wall)",
            t.nodes,
            t.per_wall_second(),
            t.per_virtual_second(),
            t.committed,
            t.wall.as_secs_f64()
        )?;
    }
    writeln!(
        out,
        "  3-node / 1-node (no replication) baseline: {:.2}x the wall-clock rate",
        three.per_wall_second() / baseline.per_wall_second()
    )?;

    let threads = available_threads();
    let report = run_sweep(1, args.sweep_seeds, threads, &|_| {});
    writeln!(
        out,
        "\nfault sweep: {} seeds on {threads} thread(s) in {:.2} s: {:.0} seeds per minute ({} failed)",
        report.seeds,
        report.wall.as_secs_f64(),
        report.seeds_per_minute(),
        report.failures.len()
    )?;
    Ok(())
}
