//! `keel raft ...` subcommands.
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum RaftCommand {}

pub fn run(command: RaftCommand) -> anyhow::Result<()> {
    match command {}
}
