//! `keel mr ...` subcommands.
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum MrCommand {}

pub fn run(command: MrCommand) -> anyhow::Result<()> {
    match command {}
}
