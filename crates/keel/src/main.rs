//! The `keel` command-line tool.
use clap::{Parser, Subcommand};

mod raft_cmd;

#[derive(Debug, Parser)]
#[command(name = "keel", version, about = "Fault-tolerant distributed systems toolkit: Raft, KV, MapReduce")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Raft tools: a simulated cluster demo.
    #[command(subcommand)]
    Raft(raft_cmd::RaftCommand),
    /// MapReduce: coordinator, workers, local runs, the sequential reference.
    #[command(subcommand)]
    Mr(keel_mr::cli::MrCommand),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Raft(cmd) => raft_cmd::run(cmd),
        Command::Mr(cmd) => keel_mr::cli::run(cmd),
    }
}
