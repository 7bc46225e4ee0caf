//! `keel mr run`: a coordinator in this process plus N worker processes of this same binary on this
//! machine, a progress bar while it runs, and the summary at the end.
//!
//! Worker processes that die while the job runs are replaced (up to a limit), so a crash costs a task
//! timeout, not the job; the coordinator reassigns whatever the dead worker held. SIGINT or SIGTERM ends
//! the job: workers killed, scratch removed, no output, [`Interrupted`]. Once the job is over, workers get
//! [`WORKER_EXIT_GRACE`] to exit before they are killed, so a stopped or straggling worker cannot hold
//! `mr run` up.
use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tracing::{info, warn};

use crate::app::AppRegistry;
use crate::coordinator::{Coordinator, JobConfig, JobSummary, Progress};
use crate::memory::peak_rss_bytes_of;
use crate::signals::{self, Interrupted};
use crate::units::format_bytes;

/// How often the progress bar and the worker processes are looked at.
const SUPERVISE_EVERY: Duration = Duration::from_millis(100);
/// Replacement workers that may be started, per requested worker, without any task finishing in between:
/// a job that makes progress keeps getting replacements (the crash test app kills a third of its attempts),
/// while an app that kills every worker at once (say, a broken app) ends the job instead of a fork loop.
const RESPAWNS_PER_WORKER_WITHOUT_PROGRESS: usize = 3;
/// How long workers get to exit on their own once the job is over (output published or job failed) before
/// they are killed. An idle worker hears `Exit` within milliseconds (its held `GetTask` is woken), so one
/// still running after this is stopped (SIGSTOP) or busy with an attempt that no longer matters; nothing it
/// could do changes the output, and waiting longer only delays `mr run` (it used to take 8 s).
const WORKER_EXIT_GRACE: Duration = Duration::from_millis(500);

pub struct LocalRun<'a> {
    pub job: JobConfig,
    pub workers: usize,
    /// Arguments that make this binary act as a worker (`["mr", "worker"]` for `keel`).
    pub worker_command: &'a [&'a str],
    pub show_progress: bool,
    /// Serve the status page on this address (see [`Coordinator::serve_status`]); its URL goes to stdout.
    pub http: Option<String>,
}

pub fn run_local(run: &LocalRun<'_>, apps: &AppRegistry) -> anyhow::Result<JobSummary> {
    anyhow::ensure!(run.workers > 0, "--workers must be at least 1");
    signals::install().context("installing signal handlers")?;
    let mut coordinator = Coordinator::prepare(&run.job, "127.0.0.1:0", apps)?;
    if let Some(listen) = &run.http {
        let url = match coordinator.serve_status(listen) {
            Ok(url) => url,
            Err(e) => {
                coordinator.discard();
                return Err(e);
            }
        };
        // Not println!: a closed stdout must not panic the job.
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "keel mr run status page {url}").and_then(|()| stdout.flush());
    }
    let address = coordinator.local_addr().context("reading the coordinator's address")?.to_string();
    let job = coordinator.job().to_string();
    let handle = coordinator.progress_handle();
    let serving = thread::Builder::new()
        .name("mr-coordinator".into())
        .spawn(move || coordinator.run())
        .context("starting the coordinator")?;

    let exe = std::env::current_exe().context("finding this program's path to start workers")?;
    let spawn = || -> anyhow::Result<Child> {
        let mut command = Command::new(&exe);
        command.args(run.worker_command).args(["--coordinator", &address, "--job", &job, "--supervised"]);
        // Everything is on this machine: reading and writing the job's files directly is the fast path.
        command.arg("--shared-fs");
        if std::env::var_os("KEEL_LOG").is_none() {
            // Workers' info lines would tear the progress bar; warnings and errors still show.
            command.env("KEEL_LOG", "warn");
        }
        command.stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::inherit());
        command.spawn().with_context(|| format!("starting worker {}", exe.display()))
    };
    let mut children = Vec::with_capacity(run.workers);
    for _ in 0..run.workers {
        match spawn() {
            Ok(child) => children.push(child),
            Err(e) => {
                handle.abort(format!("{e:#}"));
                break;
            }
        }
    }

    let bar = progress_bar(run.show_progress);
    let respawn_budget = run.workers * RESPAWNS_PER_WORKER_WITHOUT_PROGRESS;
    let mut respawns_left = respawn_budget;
    let mut tasks_done = 0;
    let mut worker_peak_rss = 0u64;
    let mut interrupted = None;
    let mut over_since: Option<Instant> = None;
    while !serving.is_finished() {
        thread::sleep(SUPERVISE_EVERY);
        // Checked first: Ctrl-C also kills the workers (same process group), and they must not be replaced.
        if interrupted.is_none()
            && let Some(signal) = signals::received()
        {
            interrupted = Some(signal);
            handle.abort(format!("interrupted by {}", signals::name(signal)));
            stop_workers(&mut children);
        }
        let progress = handle.progress();
        update_bar(&bar, &progress);
        for child in &mut children {
            if let Some(peak) = peak_rss_bytes_of(child.id()) {
                worker_peak_rss = worker_peak_rss.max(peak);
            }
        }
        if progress.finished {
            let since = *over_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= WORKER_EXIT_GRACE {
                stop_workers(&mut children);
            }
            continue;
        }
        if interrupted.is_some() {
            continue;
        }
        if progress.summary.counts.done > tasks_done {
            tasks_done = progress.summary.counts.done;
            respawns_left = respawn_budget;
        }
        for child in &mut children {
            let Ok(Some(status)) = child.try_wait() else { continue };
            if status.success() || respawns_left == 0 {
                continue;
            }
            respawns_left -= 1;
            warn!("worker pid {} exited with {status}; starting a replacement", child.id());
            match spawn() {
                Ok(new) => *child = new,
                Err(e) => warn!("{e:#}"),
            }
        }
        let any_alive = children.iter_mut().any(|c| matches!(c.try_wait(), Ok(None)));
        if !any_alive && respawns_left == 0 {
            handle.abort(format!(
                "every worker process died, {respawn_budget} replacements in a row died too without finishing a \
                 task; is the app crashing?"
            ));
        }
    }
    let result = serving.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the coordinator thread panicked")));
    bar.finish_and_clear();
    // Workers heard `Exit` by now, or are stopped or busy with an attempt that no longer matters.
    let deadline = over_since.map_or_else(Instant::now, |since| since + WORKER_EXIT_GRACE);
    while Instant::now() < deadline && children.iter_mut().any(|c| matches!(c.try_wait(), Ok(None))) {
        thread::sleep(Duration::from_millis(20));
    }
    stop_workers(&mut children);
    if let Some(signal) = interrupted
        && result.is_err()
    {
        return Err(Interrupted { signal }.into());
    }
    let mut summary = result?;
    summary.worker_peak_rss_bytes = summary.worker_peak_rss_bytes.max(worker_peak_rss);
    Ok(summary)
}

/// Kills (SIGKILL, which also ends a stopped process) and reaps every worker still running.
fn stop_workers(children: &mut [Child]) {
    for child in children {
        if let Ok(None) = child.try_wait() {
            info!("stopping worker pid {}", child.id());
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn progress_bar(show: bool) -> ProgressBar {
    if !show {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(0);
    let style =
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} tasks  {msg}  ETA {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

fn update_bar(bar: &ProgressBar, progress: &Progress) {
    let s = &progress.summary;
    let c = &s.counts;
    bar.set_length(u64::from(c.total));
    bar.set_position(u64::from(c.done));
    let rate = s.input_bytes as f64 / s.elapsed.as_secs_f64().max(1e-9);
    bar.set_message(format!(
        "{} running, {} failed, {} re-run | {} / {} read ({}/s) | {} workers",
        c.in_progress,
        c.failed_attempts + c.timeouts + c.abandoned,
        c.reexecutions,
        format_bytes(s.input_bytes),
        format_bytes(progress.total_input_bytes),
        format_bytes(rate as u64),
        progress.connected_workers
    ));
}
