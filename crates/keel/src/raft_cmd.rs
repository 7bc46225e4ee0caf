//! `keel raft ...`: the simulated-cluster demo and the Raft benchmark.
use std::io::Write;

use clap::{Args, Subcommand};
use keel_sim::RaftOptions;
use keel_sim::bench::{GO_REFERENCE_2A_TO_2C_S, GO_REFERENCE_2D_S, throughput, time_catalogue};
use keel_sim::demo::{DemoOptions, run_demo};
use keel_sim::sweep_runner::run_sweep;

#[derive(Debug, Subcommand)]
pub enum RaftCommand {
    /// Run a simulated cluster under client load and faults, narrating elections, commits and faults.
    Demo(DemoArgs),
    /// Benchmark: wall time of the 6.824 catalogue in the simulator, commit throughput, sweep rate.
    Bench(BenchArgs),
    /// Randomized fault sweep: random clusters and fault schedules, safety checked after every event, liveness
    /// after the heal. Failures print their seed and replay command.
    Sweep(SweepArgs),
}

#[derive(Debug, Args)]
pub struct SweepArgs {
    /// How many seeds to run.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
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
        RaftCommand::Sweep(args) => sweep(args),
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
    if !report.failures.is_empty() {
        anyhow::bail!("{} seed(s) violated a Raft property", report.failures.len());
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
