//! The `keel` command-line tool.
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod kv_bench;
mod kv_cmd;
mod kv_local;
mod kv_serve;
mod raft_cmd;

#[derive(Debug, Parser)]
#[command(name = "keel", version, about = "Fault-tolerant distributed systems toolkit: Raft, KV, MapReduce")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Raft tools: a simulated cluster demo, the fault sweep, one catalogue scenario (with its timeline), benchmarks.
    #[command(subcommand)]
    Raft(raft_cmd::RaftCommand),
    /// MapReduce: coordinator, workers, local runs, the sequential reference.
    #[command(subcommand)]
    Mr(keel_mr::cli::MrCommand),
    /// The replicated key/value store: get, put, append, del, list, status (over the nodes' HTTP API).
    #[command(subcommand)]
    Kv(kv_cmd::KvCommand),
    /// The real thing in one command: a 3-node keel kv cluster as processes, its leader killed under load, the
    /// history checked for linearizability, then a MapReduce word count with a worker killed mid-job.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Raft(cmd) => raft_cmd::run(cmd),
        Command::Mr(cmd) => keel_mr::cli::run(cmd),
        Command::Kv(cmd) => kv_cmd::run(cmd),
        Command::Demo(args) => demo::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`keel raft demo | head`): nothing is wrong, stop quietly like other tools do.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<keel_mr::signals::Interrupted>() {
                // `keel mr run` / `coordinator` stopped by SIGINT or SIGTERM: 128 + the signal, as shells expect.
                Some(interrupted) => ExitCode::from(u8::try_from(128 + interrupted.signal).unwrap_or(1)),
                None => ExitCode::FAILURE,
            }
        }
    }
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
