//! `keel demo`: the real thing in one command, with nothing to set up and nothing left behind.
//!
//! 1. a 3-node keel kv cluster as real processes (this binary, `keel kv serve`) on free loopback ports, data in
//!    a temp dir; 2. concurrent clients under load, every operation recorded; 3. SIGKILL of the leader: how long
//!    the cluster had no leader, and when the first write succeeded again; 4. the killed node restarted and
//!    caught up; 5. the history checked for linearizability; 6. a MapReduce word count over texts embedded in
//!    the binary, one worker killed mid-job, the output compared with `keel mr seq`; 7. a summary. Exit code 0
//!    only if every check passed.
//!
//! Clean-up is not optional: every child is in [`processes::Processes`], which kills and reaps what still runs
//! when dropped, and the temp dir goes after it; Ctrl-C and SIGTERM drop the demo's future at its next await
//! and run the same clean-up, then exit with 128 + the signal.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, bail};

mod kv_cluster;
mod kv_load;
mod kv_part;
mod mr_part;
mod narrator;
mod processes;
mod summary;
mod texts;

use kv_part::KvPlan;
use narrator::Narrator;
use processes::Processes;

#[derive(clap::Args, Debug, Clone)]
pub struct DemoArgs {
    /// A shorter run (about half the load), for tests and the impatient.
    #[arg(long)]
    pub quick: bool,
}

impl DemoArgs {
    fn kv_plan(&self) -> KvPlan {
        if self.quick {
            KvPlan {
                clients: 4,
                keys: 6,
                load_before_kill: Duration::from_millis(1_500),
                degraded: Duration::from_millis(500),
                load_total_min: Duration::from_secs(4),
                load_after_catch_up: Duration::from_millis(500),
            }
        } else {
            KvPlan {
                clients: 4,
                keys: 6,
                load_before_kill: Duration::from_secs(4),
                degraded: Duration::from_secs(2),
                load_total_min: Duration::from_secs(12),
                load_after_catch_up: Duration::from_secs(1),
            }
        }
    }
}

/// What the demo owns: its children (declared first, so they are killed and reaped before the directory they
/// write in is removed) and its temp dir.
struct Stage {
    processes: Processes,
    dir: tempfile::TempDir,
}

pub fn run(args: DemoArgs) -> Result<()> {
    let exe = std::env::current_exe().context("cannot find the keel binary to start the nodes and workers with")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("keel-demo")
        .build()
        .context("cannot start the async runtime")?;
    let narrator = Narrator::new();
    let outcome = runtime.block_on(async {
        let dir = tempfile::Builder::new()
            .prefix("keel-demo-")
            .tempdir()
            .context("cannot create a temp dir (is $TMPDIR writable?)")?;
        let mut stage = Stage { processes: Processes::default(), dir };
        narrator
            .plain("keel demo: a replicated key/value store and a MapReduce job, as real processes on this machine");
        narrator.say(format!("working in {} (removed at the end)", stage.dir.path().display()));
        let result = tokio::select! {
            result = demo(&args, &exe, &mut stage, &narrator) => Ok(result),
            signal = interrupted() => Err(signal),
        };
        Ok::<_, anyhow::Error>((result, stage))
    });
    let (result, stage) = outcome?;
    // Every child first, then the directory.
    let Stage { mut processes, dir } = stage;
    let left = processes.kill_all();
    let path: PathBuf = dir.path().to_path_buf();
    let removed = dir.close().with_context(|| format!("cannot remove the temp dir {}", path.display()));
    runtime.shutdown_timeout(Duration::from_secs(2));
    match result {
        Err(signal) => {
            removed?;
            eprintln!(
                "keel demo: interrupted by {signal}; killed the {left} processes still running, removed {}",
                path.display()
            );
            std::process::exit(128 + signal_number(signal));
        }
        Ok(result) => {
            removed?;
            // Only a failed step leaves processes running (each step stops what it started).
            let killed = if left > 0 { format!("killed the {left} processes still running, ") } else { String::new() };
            narrator.say(format!("{killed}removed {}", path.display()));
            result
        }
    }
}

async fn demo(args: &DemoArgs, exe: &std::path::Path, stage: &mut Stage, narrator: &Narrator) -> Result<()> {
    let kv_dir = stage.dir.path().join("kv");
    std::fs::create_dir_all(&kv_dir).with_context(|| format!("cannot create {}", kv_dir.display()))?;
    let kv = kv_part::run(args.kv_plan(), exe, &kv_dir, &mut stage.processes, narrator).await?;
    let mr = mr_part::run(exe, stage.dir.path(), &mut stage.processes, narrator).await?;
    narrator.plain(summary::render(&kv, &mr));
    let failures = summary::failures(&kv, &mr);
    if failures.is_empty() {
        narrator.plain("every check passed");
        Ok(())
    } else {
        bail!("{} check(s) failed: {}", failures.len(), failures.join("; "))
    }
}

/// Resolves at the first SIGINT (Ctrl-C) or SIGTERM.
async fn interrupted() -> &'static str {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
            return "SIGINT";
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    }
}

fn signal_number(name: &str) -> i32 {
    if name == "SIGTERM" { libc::SIGTERM } else { libc::SIGINT }
}
