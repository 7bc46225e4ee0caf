//! `keel mr ...` subcommands. [`run_with_apps`] gives a user's own binary the same command line with its
//! own apps (see `examples/custom_app.rs`).
use std::io::Write;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};

use crate::app::AppRegistry;
use crate::coordinator::{Coordinator, JobConfig, JobSummary};
use crate::local_run::{LocalRun, run_local};
use crate::protocol::JobId;
use crate::seq::{run_sequential, run_sequential_streaming};
use crate::signals;
use crate::streaming::StreamingSpec;
use crate::summary;
use crate::test_apps::is_test_app;
use crate::units::{format_bytes, parse_bytes, parse_duration};
use crate::worker::{WorkerExit, WorkerOptions, run_worker};

/// Default bound on a map task's in-memory buffer before it spills sorted runs to disk.
pub const MEMORY_BUDGET_BYTES_DEFAULT: u64 = 256 * 1024 * 1024;
/// [`MEMORY_BUDGET_BYTES_DEFAULT`] as shown in `--help`.
const MEMORY_BUDGET_DEFAULT_TEXT: &str = "256MiB";
/// [`crate::input::SPLIT_SIZE_BYTES_DEFAULT`] as shown in `--help`.
const SPLIT_SIZE_DEFAULT_TEXT: &str = "64MiB";
/// How often `mr coordinator` looks for a SIGINT/SIGTERM: fast enough to feel immediate.
const SIGNAL_POLL: Duration = Duration::from_millis(100);
/// 6.824's reassignment timeout.
pub const TASK_TIMEOUT_DEFAULT: &str = "10s";

#[derive(Debug, Subcommand)]
pub enum MrCommand {
    /// Run a job's coordinator: split the input, hand tasks to workers that connect, commit their output.
    Coordinator(CoordinatorArgs),
    /// Work for the coordinator at ADDR until its job is done (the job, including the app, comes from it).
    Worker(WorkerArgs),
    /// Run a job on this machine: a coordinator plus N worker processes, with a progress bar.
    Run(RunArgs),
    /// The sequential reference: one process, no RPC; output FILE equals the sorted concatenation of a
    /// distributed run's mr-out-* files.
    Seq(SeqArgs),
    /// List the apps this binary knows.
    Apps,
}

/// What computes: a built-in app, or two programs (streaming).
#[derive(Debug, Args)]
pub struct CodeArgs {
    /// The app (map and reduce functions); see `apps`. Or give --mapper and --reducer instead.
    #[arg(long, required_unless_present_all = ["mapper", "reducer"], conflicts_with_all = ["mapper", "reducer"])]
    pub app: Option<String>,
    /// Streaming map: a command (run with `sh -c` in the worker's directory) that reads the split's lines
    /// on stdin and writes `key<TAB>value` lines (a line without a tab is a key with an empty value).
    #[arg(long, requires = "reducer")]
    pub mapper: Option<String>,
    /// Streaming reduce: a command that reads `key<TAB>value` lines sorted by key on stdin, one per value;
    /// the lines it writes are the output.
    #[arg(long, requires = "mapper")]
    pub reducer: Option<String>,
}

/// The app name shown for a streaming job.
pub const STREAMING_APP_LABEL: &str = "streaming";

impl CodeArgs {
    /// The app's name (a label for streaming jobs) and the streaming programs, if any.
    fn resolve(&self) -> (String, Option<StreamingSpec>) {
        match (&self.app, &self.mapper, &self.reducer) {
            (_, Some(mapper), Some(reducer)) => (
                STREAMING_APP_LABEL.to_string(),
                Some(StreamingSpec { mapper: mapper.clone(), reducer: reducer.clone() }),
            ),
            // clap guarantees --app otherwise; an empty name is refused by the registry lookup.
            (app, _, _) => (app.clone().unwrap_or_default(), None),
        }
    }
}

#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(flatten)]
    pub code: CodeArgs,
    /// Number of reduce tasks, and of output files mr-out-0..R-1.
    #[arg(long = "reduces", default_value_t = 10)]
    pub reduce_tasks: u32,
    /// Output directory; created if missing, must not hold mr-out-* files already.
    #[arg(long)]
    pub output: PathBuf,
    /// A task not finished in this time is given to another worker (e.g. 10s, 500ms).
    #[arg(long, default_value = TASK_TIMEOUT_DEFAULT, value_parser = parse_duration)]
    pub task_timeout: Duration,
    /// Directory for intermediate files (default: hidden inside the output directory).
    #[arg(long)]
    pub work_dir: Option<PathBuf>,
    /// Largest map input split; larger files are cut at line boundaries (e.g. 64MiB).
    #[arg(long, default_value = SPLIT_SIZE_DEFAULT_TEXT, value_parser = parse_bytes)]
    pub split_size: u64,
    /// Memory a map task may buffer before spilling sorted runs to disk (e.g. 256MiB).
    #[arg(long, default_value = MEMORY_BUDGET_DEFAULT_TEXT, value_parser = parse_bytes)]
    pub memory_budget: u64,
    /// Write the summary as `key value` lines to this file.
    #[arg(long)]
    pub stats_file: Option<PathBuf>,
    /// Serve a status page on ADDR while the job runs: HTML that refreshes itself at `/`, the same data at
    /// `/status.json`. ADDR is host:port, or a port alone for 127.0.0.1; port 0 picks a free one. The URL is
    /// printed on stdout.
    #[arg(long, value_name = "ADDR")]
    pub http: Option<String>,
    /// Input files.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

impl JobArgs {
    fn config(&self) -> JobConfig {
        let (app, streaming) = self.code.resolve();
        JobConfig {
            app,
            streaming,
            inputs: self.inputs.clone(),
            reduce_tasks: self.reduce_tasks,
            output_dir: self.output.clone(),
            task_timeout: self.task_timeout,
            work_dir: self.work_dir.clone(),
            split_size_bytes: self.split_size,
            memory_budget_bytes: self.memory_budget,
        }
    }
}

#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// Address to listen on, e.g. 127.0.0.1:7000 (port 0 picks a free port; the address is printed).
    #[arg(long)]
    pub listen: String,
    #[command(flatten)]
    pub job: JobArgs,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// The coordinator's address, host:port.
    #[arg(long)]
    pub coordinator: String,
    /// Only work for this job (the id the coordinator prints).
    #[arg(long)]
    pub job: Option<JobId>,
    /// This worker sees the coordinator's files (inputs, work and output directories) at the same paths,
    /// as `mr run`'s workers do: read and write them directly. Without it the worker shares nothing with
    /// the coordinator: it reads inputs from the coordinator, keeps map outputs in its scratch directory and
    /// serves them to reducers, and sends reduce output back to the coordinator.
    #[arg(long)]
    pub shared_fs: bool,
    /// Without --shared-fs: where this worker keeps map outputs and fetched reduce inputs (a directory of
    /// its own is made inside and removed when it exits). Default: the system's temporary directory.
    #[arg(long, value_name = "DIR")]
    pub scratch_dir: Option<PathBuf>,
    /// Without --shared-fs: the address to serve map outputs to reducers on, announced to the coordinator.
    /// Default: this machine's address towards the coordinator, a free port.
    #[arg(long, value_name = "HOST:PORT")]
    pub data_listen: Option<String>,
    /// Set by `mr run` for the workers it starts: a failed job's reason is printed once, by `mr run`, not
    /// again by every worker.
    #[arg(long, hide = true)]
    pub supervised: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Number of worker processes.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// No progress bar.
    #[arg(long)]
    pub quiet: bool,
    #[command(flatten)]
    pub job: JobArgs,
}

#[derive(Debug, Args)]
pub struct SeqArgs {
    #[command(flatten)]
    pub code: CodeArgs,
    /// Output file; must not exist.
    #[arg(long)]
    pub output: PathBuf,
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

/// `keel mr ...` with keel's built-in apps.
pub fn run(command: MrCommand) -> anyhow::Result<()> {
    run_with_apps(command, &AppRegistry::builtin(), &["mr", "worker"])
}

/// The `mr` command line with `apps`. `worker_command` is what makes this binary a worker when `run` starts
/// worker processes (`["mr", "worker"]` for `keel`, `["worker"]` for a binary whose top-level command is
/// [`MrCommand`]).
pub fn run_with_apps(command: MrCommand, apps: &AppRegistry, worker_command: &[&str]) -> anyhow::Result<()> {
    match command {
        MrCommand::Coordinator(args) => {
            init_logging("info");
            signals::install().context("installing signal handlers")?;
            let mut coordinator = Coordinator::prepare(&args.job.config(), &args.listen, apps)?;
            let address = coordinator.local_addr().context("reading the listening address")?;
            let status_url = match &args.job.http {
                Some(listen) => match coordinator.serve_status(listen) {
                    Ok(url) => Some(url),
                    Err(e) => {
                        coordinator.discard();
                        return Err(e);
                    }
                },
                None => None,
            };
            // Scripts and tests read this line to find the port and the job id.
            println!("keel mr coordinator listening on {address} job {}", coordinator.job());
            if let Some(url) = status_url {
                // Not println!: a reader that stopped after the first line must not panic the coordinator.
                let _ = writeln!(std::io::stdout(), "keel mr coordinator status page {url}");
            }
            std::io::stdout().flush().context("writing to stdout")?;
            let handle = coordinator.progress_handle();
            // Ends the job on SIGINT/SIGTERM; detached, it ends with the process.
            thread::Builder::new()
                .name("mr-signals".into())
                .spawn(move || {
                    while !handle.progress().finished {
                        if let Some(signal) = signals::received() {
                            handle.abort(format!("interrupted by {}", signals::name(signal)));
                            return;
                        }
                        thread::sleep(SIGNAL_POLL);
                    }
                })
                .context("starting the signal watcher")?;
            let result = coordinator.run();
            if let (Err(_), Some(signal)) = (&result, signals::received()) {
                return Err(signals::Interrupted { signal }.into());
            }
            finish(&result?, args.job.stats_file.as_ref())
        }
        MrCommand::Worker(args) => {
            init_logging("info");
            let options = WorkerOptions {
                coordinator: args.coordinator,
                job: args.job,
                shared_fs: args.shared_fs,
                scratch_dir: args.scratch_dir,
                data_listen: args.data_listen,
            };
            match run_worker(&options, apps)? {
                WorkerExit::JobDone | WorkerExit::CoordinatorGone => Ok(()),
                WorkerExit::JobFailed(_) if args.supervised => Ok(()),
                WorkerExit::JobFailed(reason) => bail!("the job failed: {reason}"),
            }
        }
        MrCommand::Run(args) => {
            init_logging("warn");
            let run = LocalRun {
                job: args.job.config(),
                workers: args.workers,
                worker_command,
                show_progress: !args.quiet,
                http: args.job.http.clone(),
            };
            let summary = run_local(&run, apps)?;
            finish(&summary, args.job.stats_file.as_ref())
        }
        MrCommand::Seq(args) => {
            init_logging("warn");
            let started = std::time::Instant::now();
            let stats = match args.code.resolve() {
                (_, Some(spec)) => {
                    spec.check()?;
                    run_sequential_streaming(&spec, &args.inputs, &args.output)?
                }
                (app, None) => run_sequential(apps.lookup(&app)?.as_ref(), &args.inputs, &args.output)?,
            };
            eprintln!(
                "seq: {} in, {} keys, {} out in {:.2} s",
                format_bytes(stats.input_bytes),
                stats.keys,
                format_bytes(stats.output_bytes),
                started.elapsed().as_secs_f64()
            );
            if !stats.counters.is_empty() {
                eprintln!("counters: {}", stats.counters);
            }
            Ok(())
        }
        MrCommand::Apps => {
            let (tests, users): (Vec<&str>, Vec<&str>) = apps.names().partition(|n| is_test_app(n));
            println!("apps: {}", users.join(", "));
            println!("test apps (for keel's own tests): {}", tests.join(", "));
            Ok(())
        }
    }
}

fn finish(summary: &JobSummary, stats_file: Option<&PathBuf>) -> anyhow::Result<()> {
    eprintln!("{}", summary::human(summary));
    if let Some(path) = stats_file {
        std::fs::write(path, summary::machine(summary)).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// Logs to stderr; `KEEL_LOG` (e.g. `debug`, `keel_mr=debug`) overrides `default_level`.
fn init_logging(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KEEL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_shown_in_help_are_the_library_defaults() {
        assert_eq!(parse_bytes(SPLIT_SIZE_DEFAULT_TEXT), Ok(crate::input::SPLIT_SIZE_BYTES_DEFAULT));
        assert_eq!(parse_bytes(MEMORY_BUDGET_DEFAULT_TEXT), Ok(MEMORY_BUDGET_BYTES_DEFAULT));
        assert_eq!(parse_duration(TASK_TIMEOUT_DEFAULT), Ok(Duration::from_secs(10)));
    }
}
