//! Your own MapReduce app in your own binary, with keel's coordinator, workers, local runner and sequential
//! reference. This one counts letters (case-folded) and has a combiner.
//!
//! ```text
//! cargo run --release -p keel-mr --example custom_app -- run --workers 2 --app letters --output /tmp/letters book.txt
//! cargo run --release -p keel-mr --example custom_app -- seq --app letters --output /tmp/letters.txt book.txt
//! # or by hand, on any machines sharing a file system:
//! custom_app coordinator --listen 0.0.0.0:7000 --app letters --output out book.txt
//! custom_app worker --coordinator host:7000
//! ```
use std::sync::Arc;

use clap::Parser;
use keel_mr::cli::{MrCommand, run_with_apps};
use keel_mr::{App, AppRegistry, Combiner};

/// Emits (letter, "1") for every letter; the reduce sums.
struct LetterCount;

impl App for LetterCount {
    fn map(&self, _input_name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        let mut buf = [0u8; 4];
        for c in contents.chars().filter(|c| c.is_alphabetic()).flat_map(char::to_lowercase) {
            emit(c.encode_utf8(&mut buf), "1");
        }
    }

    fn reduce(&self, _key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        values.map(|v| v.parse::<u64>().unwrap_or(0)).sum::<u64>().to_string()
    }

    fn combiner(&self) -> Option<&dyn Combiner> {
        Some(self)
    }
}

impl Combiner for LetterCount {
    fn combine(&self, _key: &str, accumulated: &mut String, value: &str) {
        let sum = accumulated.parse::<u64>().unwrap_or(0) + value.parse::<u64>().unwrap_or(0);
        *accumulated = sum.to_string();
    }
}

#[derive(Parser)]
#[command(about = "keel MapReduce with a custom `letters` app")]
struct Cli {
    #[command(subcommand)]
    command: MrCommand,
}

fn main() -> anyhow::Result<()> {
    let mut apps = AppRegistry::builtin();
    apps.register("letters", Arc::new(LetterCount));
    // `run` starts workers as `<this binary> worker --coordinator ...`.
    run_with_apps(Cli::parse().command, &apps, &["worker"])
}
