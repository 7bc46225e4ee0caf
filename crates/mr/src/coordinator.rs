//! The coordinator process: a thin TCP server around the [`TaskTable`].
//!
//! One thread accepts connections, one thread per worker connection answers its requests, and the caller's
//! thread ([`Coordinator::run`]) waits for the job to end, publishes the output and cleans up. All decisions
//! are the task table's; this file only does the I/O they call for:
//! - `Verdict::Commit`: rename the attempt's files into their committed place (or, for a map held by a
//!   worker that shares nothing, record where it is) and journal it (outside the lock), then tell the table
//!   how it went.
//! - `Verdict::Retry` / `JobFailed`, and `Verdict::Ignore` when its reason says so: remove that attempt's
//!   files (never those of the attempt being committed).
//! - an attempt timed out: warn the user (the table doubles the task's timeout, and fails the job when one
//!   task has timed out too often).
//! - job succeeded: rename every committed `mr-out-<r>` into the output directory, fsync it, and only then
//!   tell workers to exit, so no process exits before the output is final.
use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::BuildHasher;
use std::io::{self, BufReader, BufWriter};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tracing::{debug, info, warn};

use crate::app::AppRegistry;
use crate::counters::Counters;
use crate::input::{InputSplit, plan_splits};
use crate::journal::{Journal, JournalRecord, JournaledJob, journal_path};
use crate::layout::{Layout, output_name};
use crate::map_file::locate_partition_in;
use crate::maps_file::{MapOutputRange, punch_hole};
use crate::output_lock::{LOCK_FILE_NAME, OutputLock};
use crate::protocol::{
    Assignment, CHUNK_BYTES_MAX, Chunk, HELD_OUTPUTS_PER_REGISTER_MAX, Hello, HelloReply, JobId, JobSpec,
    MAP_OUTPUTS_PER_REPLY_MAX, MapOutputAt, MapOutputLocation, PROTOCOL_MAGIC, PROTOCOL_VERSION, Registration, Reply,
    Report, ReportedOutcome, Request, SplitSpec, TaskStats,
};
use crate::publish::publish_outputs;
use crate::status::{
    DEPARTED_WORKERS_SHOWN_MAX, History, REEXECUTIONS_SHOWN_MAX, Recent, ReexecutionEvent, ReexecutionTotals,
    StatusSnapshot, WorkerStatus, eta, millis,
};
use crate::status_http::StatusServer;
use crate::streaming::StreamingSpec;
use crate::task_table::{
    AttemptId, BACKUP_SLOWER_THAN_MEDIAN_FACTOR, JobStatus, LossCause, Next, Outcome, TIMEOUTS_PER_TASK_MAX,
    TaskCounts, TaskId, TaskState, TaskTable, Verdict,
};
use crate::units::format_bytes;
use crate::wire::{self, WireError};

/// How long a `GetTask` is held when nothing is ready, so idle workers do not spin and a task freed by a
/// timeout or the end of the map phase is handed out at once (the condition variable wakes the holder).
const LONG_POLL: Duration = Duration::from_secs(1);
/// How often held requests and the main loop look at the clock to expire overdue attempts.
const TICK: Duration = Duration::from_millis(100);
/// How long a peer may take to send its `Hello` before it is dropped (a port scanner, a stuck client).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);
/// After the job ends, how long to wait for connected workers to hear so before exiting anyway. Bounded,
/// because a worker busy with a stale attempt only asks again when that attempt ends.
const EXIT_GRACE: Duration = Duration::from_secs(3);
/// Most worker connections served at once; each costs a thread.
const MAX_CONNECTIONS: usize = 512;
/// How often the accept loop checks whether the coordinator is shutting down.
const ACCEPT_POLL: Duration = Duration::from_millis(20);
/// How many times removing a scratch directory is tried. A create that had resolved its path before the
/// directory was renamed away can still add an entry once, making one `remove_dir_all` fail with "not
/// empty"; five tries 50 ms apart outlast that by far.
const CLEANUP_ATTEMPTS: u32 = 5;
const CLEANUP_RETRY_PAUSE: Duration = Duration::from_millis(50);
/// Most reduce tasks a job may have: twice the paper's typical R (5,000, for 2,000 machines). Every map
/// attempt keeps one buffer and one run (and index entry) per reduce task, and the table one entry each, so a typo
/// like `--reduces 1000000000` must be an error, not a 32 GB allocation.
pub const REDUCE_TASKS_MAX: u32 = 10_000;
/// Largest `--split-size`: a map task holds its whole split in memory as text, and the paper's splits are
/// 16-64 MB, so 1 GiB per worker is generous; beyond it is almost surely a typo (GB for MB).
pub const SPLIT_SIZE_BYTES_MAX: u64 = 1 << 30;
/// The test suite's way to kill the coordinator at moments no timing can hit reliably (like TiKV's fail
/// points): `KEEL_MR_FAILPOINT=abort-before-publish` aborts after the last commit, before the publish;
/// `abort-after-commits=N` aborts right after the Nth commit of this run is journaled (before the worker
/// hears of it). An abort is like kill -9: no cleanup, the journal and the committed outputs stay.
const FAILPOINT_ENV: &str = "KEEL_MR_FAILPOINT";
const FAILPOINT_ABORT_BEFORE_PUBLISH: &str = "abort-before-publish";
const FAILPOINT_ABORT_AFTER_COMMITS: &str = "abort-after-commits=";
/// A resumed coordinator whose journal lists map outputs held by workers (that share nothing) hands out no
/// task for this long after it starts, so that those workers, which reconnect every 100 ms, can announce
/// what they hold before the maps would be run again.
const CLAIM_GRACE: Duration = Duration::from_secs(2);
/// Name prefix of the job's scratch directories inside the output directory.
const SCRATCH_PREFIX: &str = ".keel-";
/// Workers' maps files the coordinator keeps open to check map outputs at commit (one per worker that
/// shares the file system, so normally a handful); past this many, they are closed and opened again as
/// needed, so a job whose workers are replaced again and again holds no more descriptors than this.
const MAPS_FILES_OPEN_MAX: usize = 64;

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct JobConfig {
    pub app: String,
    pub inputs: Vec<PathBuf>,
    pub reduce_tasks: u32,
    pub output_dir: PathBuf,
    pub task_timeout: Duration,
    /// Intermediate files go here (default: a hidden directory inside the output directory).
    pub work_dir: Option<PathBuf>,
    pub split_size_bytes: u64,
    pub memory_budget_bytes: u64,
    /// A streaming job's programs (then `app` is only a label).
    pub streaming: Option<StreamingSpec>,
}

/// Totals of a finished job. Byte counts include committed attempts only.
#[derive(Clone, Debug, Default)]
pub struct JobSummary {
    pub job: Option<JobId>,
    pub elapsed: Duration,
    pub map_tasks: u32,
    pub reduce_tasks: u32,
    pub counts: TaskCounts,
    pub input_bytes: u64,
    pub intermediate_bytes: u64,
    pub output_bytes: u64,
    pub spills: u64,
    pub worker_peak_rss_bytes: u64,
    pub workers_seen: u64,
    /// The app's user counters, summed over committed attempts only.
    pub counters: Counters,
    /// Tasks committed by an earlier run of the coordinator (kept from the journal, not run again).
    pub restored_tasks: u64,
}

/// A point-in-time view for progress displays.
#[derive(Clone, Debug, Default)]
pub struct Progress {
    pub summary: JobSummary,
    pub total_input_bytes: u64,
    pub connected_workers: usize,
    pub finished: bool,
}

struct Connection {
    stream: TcpStream,
    told_to_exit: bool,
    /// The attempt this worker is running, if any: abandoned if the connection drops.
    running: Option<(TaskId, AttemptId)>,
    /// For the status page; `None` until the peer's handshake made it a worker.
    worker: Option<WorkerRecord>,
    /// Where a worker that shares nothing serves its map outputs (from its `Register`); `None` for a
    /// shared-file-system worker.
    data_address: Option<String>,
}

/// Where a committed map output lives: a byte range of a worker's maps file (`stats.map_output`), in the
/// work directory, or, when workers share nothing, in the scratch directory of the worker of connection
/// `holder.0`, which serves it at `holder.1`. The task table's `Done { attempt }` says which attempt is
/// official. `stats` are what its commit added to the job's totals, taken back if it is lost (its map's
/// next commit adds them again).
#[derive(Clone, Debug)]
struct MapHome {
    attempt: AttemptId,
    holder: Option<(u64, String)>,
    stats: TaskStats,
}

/// What the status page shows of one worker.
#[derive(Clone, Debug)]
struct WorkerRecord {
    address: String,
    pid: u32,
    joined: Duration,
    left: Option<Duration>,
    tasks_done: u64,
    input_bytes: u64,
}

impl WorkerRecord {
    fn status(&self, now: Duration, running: Option<(TaskId, AttemptId)>) -> WorkerStatus {
        let seconds = self.left.unwrap_or(now).saturating_sub(self.joined).as_secs_f64().max(1e-3);
        WorkerStatus {
            address: self.address.clone(),
            pid: self.pid,
            connected: self.left.is_none(),
            current: running.map(|(task, attempt)| format!("{task} {attempt}")),
            tasks_done: self.tasks_done,
            bytes_per_second: (self.input_bytes as f64 / seconds) as u64,
        }
    }
}

struct State {
    table: TaskTable,
    splits: Vec<InputSplit>,
    totals: JobSummary,
    connections: HashMap<u64, Connection>,
    next_connection: u64,
    /// Set once the output is published (`Ok`) or the job has failed (`Err`): from then on workers are told
    /// to exit.
    finished: Option<Result<(), String>>,
    /// For the status page: workers that left, the last reasons tasks ran again, the progress history.
    departed: Recent<WorkerRecord>,
    reexecution_log: Recent<ReexecutionEvent>,
    history: History,
    /// Whether the job's workers share nothing (`Some(true)`) or the file system (`Some(false)`): fixed by
    /// the first worker to register, since a reducer of one kind cannot read the other kind's map outputs.
    shares_nothing: Option<bool>,
    /// Per map: where its committed output is.
    map_homes: Vec<Option<MapHome>>,
    /// A resumed job's map commits (from the journal) whose outputs are not in the work directory: held by
    /// workers that share nothing, if they are still alive. Kept when such a worker announces it holds that
    /// very attempt; run again otherwise.
    unclaimed: HashMap<u32, (AttemptId, TaskStats)>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    started: Instant,
    job: JobSpec,
    layout: Layout,
    output_dir: PathBuf,
    total_input_bytes: u64,
    task_timeout: Duration,
    shutting_down: AtomicBool,
    /// Appended (and fsynced) by the thread that commits a task, before the worker hears its report was
    /// taken; `None` once the job is over and the journal removed.
    journal: Mutex<Option<Journal>>,
    /// Commits journaled by this run (for the `abort-after-commits` fail point).
    commits_journaled: AtomicU64,
    /// This run resumes a job an earlier, killed coordinator started.
    resumed: bool,
    /// Workers' maps files in the work directory, open for the check of each map output committed from
    /// them (see [`MAPS_FILES_OPEN_MAX`]).
    maps_files: Mutex<HashMap<u64, fs::File>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock is a bug in this file; the state is still the last consistent one
        // because every transition happens inside the task table, so keep serving.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn now(&self) -> Duration {
        self.started.elapsed()
    }
}

/// A job ready to serve: inputs checked and split, directories made, socket bound.
pub struct Coordinator {
    shared: Arc<Shared>,
    listener: TcpListener,
    created_dirs: Vec<PathBuf>,
    /// The output directory did not exist before this job: if the job fails it is removed again (when
    /// empty), so a failed job leaves nothing behind.
    output_dir_created: bool,
    /// Held until the job's scratch is gone: no other job may use the output directory meanwhile.
    lock: OutputLock,
    /// The status page, if one was asked for; it stops when `run` returns.
    status_server: Option<StatusServer>,
}

/// A handle to watch a running coordinator from another thread.
#[derive(Clone)]
pub struct ProgressHandle(Arc<Shared>);

impl ProgressHandle {
    pub fn progress(&self) -> Progress {
        let state = self.0.lock();
        Progress {
            summary: summary_of(&self.0, &state),
            total_input_bytes: self.0.total_input_bytes,
            connected_workers: state.connections.len(),
            finished: state.finished.is_some(),
        }
    }

    /// What the status page shows, copied under the lock.
    pub fn status(&self) -> StatusSnapshot {
        status_of(&self.0, &self.0.lock())
    }

    /// Fails the job (for example when no worker can be started); `run` then returns the error.
    pub fn abort(&self, reason: String) {
        let mut state = self.0.lock();
        state.table.fail(reason);
        self.0.changed.notify_all();
    }
}

impl Coordinator {
    /// Checks the job (known app, sane limits, readable non-empty regular inputs), takes the output
    /// directory's lock (one job per directory), checks it holds no previous results, plans the splits,
    /// creates the scratch directories and binds `listen`. Nothing is written to the output directory
    /// besides the lock file and hidden scratch directories, which are removed again on any error.
    pub fn prepare(config: &JobConfig, listen: &str, apps: &AppRegistry) -> anyhow::Result<Coordinator> {
        match &config.streaming {
            Some(spec) => spec.check()?,
            None => drop(apps.lookup(&config.app)?),
        }
        if config.reduce_tasks == 0 {
            bail!("--reduces must be at least 1");
        }
        if config.reduce_tasks > REDUCE_TASKS_MAX {
            bail!(
                "--reduces {} is more than {REDUCE_TASKS_MAX}: every map keeps a buffer and writes a run per reduce task; use a \
                 few times the number of workers",
                config.reduce_tasks
            );
        }
        if config.split_size_bytes > SPLIT_SIZE_BYTES_MAX {
            bail!(
                "--split-size {} is more than {}: a map task holds its whole split in memory; the paper uses \
                 16-64 MB",
                format_bytes(config.split_size_bytes),
                format_bytes(SPLIT_SIZE_BYTES_MAX)
            );
        }
        if config.inputs.is_empty() {
            bail!("no input files");
        }
        let splits = plan_splits(&config.inputs, config.split_size_bytes)?;
        let map_tasks = u32::try_from(splits.len()).context("too many input splits")?;
        let total_input_bytes = splits.iter().map(|s| s.len).sum();

        let output_dir = &config.output_dir;
        let output_dir_is_new = !output_dir.exists();
        fs::create_dir_all(output_dir)
            .with_context(|| format!("creating output directory {}", output_dir.display()))?;
        let output_dir = std::path::absolute(output_dir).context("resolving the output directory")?;
        let job = JobId(RandomState::new().hash_one((std::process::id(), Instant::now())));
        let lock = match OutputLock::acquire(&output_dir, job) {
            Ok(lock) => lock,
            Err(e) => {
                remove_if_new_and_empty(&output_dir, output_dir_is_new);
                return Err(e);
            }
        };
        let prepared =
            Coordinator::prepare_locked(config, listen, job, splits, map_tasks, total_input_bytes, &output_dir);
        match prepared {
            Ok((shared, listener, created_dirs)) => Ok(Coordinator {
                shared,
                listener,
                created_dirs,
                output_dir_created: output_dir_is_new,
                lock,
                status_server: None,
            }),
            Err(e) => {
                drop(lock);
                remove_if_new_and_empty(&output_dir, output_dir_is_new);
                Err(e)
            }
        }
    }

    /// The part of [`Coordinator::prepare`] done under the output directory's lock. Removes what it created
    /// if it fails.
    fn prepare_locked(
        config: &JobConfig,
        listen: &str,
        job: JobId,
        splits: Vec<InputSplit>,
        map_tasks: u32,
        total_input_bytes: u64,
        output_dir: &Path,
    ) -> anyhow::Result<(Arc<Shared>, TcpListener, Vec<PathBuf>)> {
        check_no_previous_results(output_dir)?;
        let wanted = JournaledJob {
            job,
            app: config.app.clone(),
            inputs: splits_inputs(config)?,
            reduce_tasks: config.reduce_tasks,
            split_size_bytes: config.split_size_bytes,
            memory_budget_bytes: config.memory_budget_bytes,
            streaming: config.streaming.clone(),
            work_dir: config.work_dir.as_ref().map(|d| d.display().to_string()),
        };
        let (journal, job, run, committed, journal_is_new) = open_journal(output_dir, wanted)?;
        let result = Coordinator::prepare_journaled(
            config,
            listen,
            job,
            splits,
            map_tasks,
            total_input_bytes,
            output_dir,
            (journal, run, committed),
        );
        if result.is_err() && journal_is_new {
            let _ = fs::remove_file(journal_path(output_dir));
        }
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn prepare_journaled(
        config: &JobConfig,
        listen: &str,
        job: JobId,
        splits: Vec<InputSplit>,
        map_tasks: u32,
        total_input_bytes: u64,
        output_dir: &Path,
        (journal, run, committed): (Journal, u32, Vec<JournalRecord>),
    ) -> anyhow::Result<(Arc<Shared>, TcpListener, Vec<PathBuf>)> {
        let work_dir = match &config.work_dir {
            Some(dir) => std::path::absolute(dir).context("resolving --work-dir")?.join(format!("keel-mr-{job}")),
            None => output_dir.join(format!("{SCRATCH_PREFIX}work-{job}")),
        };
        let staging_dir = output_dir.join(format!("{SCRATCH_PREFIX}staging-{job}"));
        let utf8 =
            |p: &Path| p.to_str().map(str::to_string).with_context(|| format!("path {} is not UTF-8", p.display()));
        let spec = JobSpec {
            job,
            app: config.app.clone(),
            map_tasks,
            reduce_tasks: config.reduce_tasks,
            work_dir: utf8(&work_dir)?,
            staging_dir: utf8(&staging_dir)?,
            memory_budget_bytes: config.memory_budget_bytes,
            streaming: config.streaming.clone(),
        };
        // A resumed job's directories hold its committed outputs: if this run cannot start, they stay for the
        // next attempt to resume.
        let resumed = run > 0;
        let give_up = |dirs: &[PathBuf]| {
            if !resumed {
                remove_dirs(dirs);
            }
        };
        let mut created_dirs = Vec::new();
        for dir in [&work_dir, &staging_dir] {
            if let Err(e) = fs::create_dir_all(dir) {
                give_up(&created_dirs);
                return Err(e).with_context(|| format!("creating {}", dir.display()));
            }
            created_dirs.push(dir.clone());
        }
        let listener = match TcpListener::bind(listen).and_then(|l| l.set_nonblocking(true).map(|()| l)) {
            Ok(listener) => listener,
            Err(e) => {
                give_up(&created_dirs);
                return Err(e).with_context(|| format!("listening on {listen}"));
            }
        };
        let mut totals =
            JobSummary { job: Some(job), map_tasks, reduce_tasks: config.reduce_tasks, ..JobSummary::default() };
        let mut table = TaskTable::new(map_tasks, config.reduce_tasks, config.task_timeout);
        table.start_run(run);
        let layout = Layout { work_dir: work_dir.clone(), staging_dir: staging_dir.clone() };
        let mut restored = 0;
        let mut unclaimed = HashMap::new();
        let mut map_homes: Vec<Option<MapHome>> = vec![None; map_tasks as usize];
        for record in committed {
            let JournalRecord::Committed { task, attempt, stats } = record else { continue };
            let kept = match (task, stats.map_output) {
                (TaskId::Map(_), Some(range)) => check_map_output(&layout, None, range, config.reduce_tasks).is_ok(),
                (TaskId::Map(_), None) => false,
                (TaskId::Reduce(r), _) => layout.reduce_committed(r).is_file(),
            };
            if let (false, TaskId::Map(m)) = (kept, task) {
                // Perhaps on a worker that shares nothing: kept if it says it holds it (see `register_worker`).
                unclaimed.insert(m, (attempt, stats));
                continue;
            }
            if !kept {
                warn!(
                    "{task} was committed before the coordinator restarted, but its output is gone; running it again"
                );
                continue;
            }
            if table.state(task) == Some(TaskState::Idle) {
                table.restore_done(task, attempt);
                add_committed_stats(&mut totals, task, &stats)
                    .with_context(|| format!("the journal's record of {task}"))?;
                if let Some(home) = match task {
                    TaskId::Map(m) => map_homes.get_mut(m as usize),
                    TaskId::Reduce(_) => None,
                } {
                    *home = Some(MapHome { attempt, holder: None, stats });
                }
                restored += 1;
            }
        }
        if *table.status() == JobStatus::Succeeded {
            // Every reduce is committed: the map outputs, wherever they are, are needed no more.
            for (m, (attempt, stats)) in std::mem::take(&mut unclaimed) {
                table.restore_done(TaskId::Map(m), attempt);
                add_committed_stats(&mut totals, TaskId::Map(m), &stats)
                    .with_context(|| format!("the journal's record of map task {m}"))?;
                restored += 1;
            }
        }
        if run > 0 {
            info!("resuming job {job} (coordinator run {run}): {restored} committed tasks kept from the journal");
        }
        totals.restored_tasks = restored;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                table,
                splits,
                totals,
                connections: HashMap::new(),
                next_connection: 0,
                finished: None,
                departed: Recent::new(DEPARTED_WORKERS_SHOWN_MAX),
                reexecution_log: Recent::new(REEXECUTIONS_SHOWN_MAX),
                history: History::default(),
                shares_nothing: None,
                map_homes,
                unclaimed,
            }),
            changed: Condvar::new(),
            started: Instant::now(),
            job: spec,
            layout,
            output_dir: output_dir.to_path_buf(),
            total_input_bytes,
            task_timeout: config.task_timeout,
            shutting_down: AtomicBool::new(false),
            journal: Mutex::new(Some(journal)),
            commits_journaled: AtomicU64::new(0),
            resumed,
            maps_files: Mutex::new(HashMap::new()),
        });
        Ok((shared, listener, created_dirs))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn job(&self) -> JobId {
        self.shared.job.job
    }

    pub fn progress_handle(&self) -> ProgressHandle {
        ProgressHandle(Arc::clone(&self.shared))
    }

    /// Gives up a prepared job that will not run (for example when its status page cannot start): removes
    /// its scratch directories, releases the output directory's lock and removes the directory if this job
    /// created it, so nothing is left behind.
    /// A resumed job is left as it was (journal, committed outputs), to be resumed again.
    pub fn discard(self) {
        let Coordinator { shared, created_dirs, output_dir_created, lock, status_server, .. } = self;
        drop(status_server);
        if !shared.resumed {
            remove_dirs(&created_dirs);
            if let Some(journal) = shared.journal.lock().unwrap_or_else(|p| p.into_inner()).take() {
                let _ = fs::remove_file(journal.path());
            }
        }
        drop(lock);
        remove_if_new_and_empty(&shared.output_dir, output_dir_created);
    }

    /// Serves the status page (`/`) and `/status.json` on `listen` (a bare port means 127.0.0.1) until
    /// [`Coordinator::run`] returns; returns the page's URL (the actual port when `listen` asked for 0).
    pub fn serve_status(&mut self, listen: &str) -> anyhow::Result<String> {
        let handle = self.progress_handle();
        let server = StatusServer::start(listen, Arc::new(move || handle.status()))
            .with_context(|| format!("starting the status page on {listen}"))?;
        let url = server.url();
        self.status_server = Some(server);
        Ok(url)
    }

    /// Serves workers until the job ends, then publishes the output (or, if the job failed, leaves none),
    /// tells the workers, and removes the scratch directories.
    pub fn run(self) -> anyhow::Result<JobSummary> {
        let Coordinator { shared, listener, created_dirs, output_dir_created, lock, status_server } = self;
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::Builder::new()
                .name("mr-accept".into())
                .spawn(move || accept_loop(&shared, &listener))
                .context("starting the accept thread")?
        };
        let outcome = wait_for_job(&shared);
        if outcome.is_ok() && std::env::var(FAILPOINT_ENV).is_ok_and(|v| v == FAILPOINT_ABORT_BEFORE_PUBLISH) {
            std::process::abort();
        }
        let outcome = match outcome {
            Ok(()) => publish(&shared).map_err(|e| format!("publishing output: {e:#}")),
            Err(reason) => Err(reason),
        };
        // The job is over either way (published, or failed for good): nothing is left to resume.
        if let Some(journal) = shared.journal.lock().unwrap_or_else(|p| p.into_inner()).take()
            && let Err(e) = fs::remove_file(journal.path())
        {
            warn!("could not remove the job's journal {}: {e}; remove it by hand", journal.path().display());
        }
        {
            let mut state = shared.lock();
            state.finished = Some(outcome.clone());
            sample_history(&shared, &mut state, true);
            shared.changed.notify_all();
        }
        wait_for_workers_to_hear(&shared);
        shared.shutting_down.store(true, Ordering::SeqCst);
        {
            let state = shared.lock();
            for connection in state.connections.values() {
                let _ = connection.stream.shutdown(Shutdown::Both);
            }
        }
        let _ = acceptor.join();
        // Closed before the scratch goes, so its maps files' space is freed with it.
        shared.maps_files.lock().unwrap_or_else(|p| p.into_inner()).clear();
        remove_dirs(&created_dirs);
        drop(lock);
        drop(status_server);
        let summary = summary_of(&shared, &shared.lock());
        match outcome {
            Ok(()) => Ok(summary),
            Err(reason) => {
                remove_if_new_and_empty(&shared.output_dir, output_dir_created);
                bail!("job failed: {reason}")
            }
        }
    }
}

/// The status page's copy of the job, taken under the lock: counts and short lists only (the per-task
/// states are counted in one pass over the table).
fn status_of(shared: &Shared, state: &State) -> StatusSnapshot {
    let now = shared.now();
    let counts = state.table.counts();
    let (map_tasks, reduce_tasks) = state.table.state_counts();
    let phase = match (&state.finished, state.table.status()) {
        (Some(Ok(())), _) => "succeeded",
        (Some(Err(_)), _) | (None, JobStatus::Failed { .. }) => "failed",
        (None, JobStatus::Succeeded) => "publishing",
        (None, JobStatus::Running) if map_tasks.done < shared.job.map_tasks => "map",
        (None, JobStatus::Running) => "reduce",
    };
    let failure = match (&state.finished, state.table.status()) {
        (Some(Err(reason)), _) => Some(reason.clone()),
        (_, JobStatus::Failed { reason }) => Some(reason.clone()),
        _ => None,
    };
    let over = phase == "succeeded" || phase == "failed";
    let mut workers: Vec<WorkerStatus> = state.departed.to_vec().iter().map(|w| w.status(now, None)).collect();
    let mut connected: Vec<(u64, WorkerStatus)> = state
        .connections
        .iter()
        .filter_map(|(id, c)| c.worker.as_ref().map(|w| (*id, w.status(now, c.running))))
        .collect();
    connected.sort_by_key(|(id, _)| *id);
    workers.extend(connected.into_iter().map(|(_, w)| w));
    let totals = &state.totals;
    StatusSnapshot {
        job: shared.job.job.to_string(),
        app: shared.job.app.clone(),
        phase,
        failure,
        elapsed_ms: millis(now),
        eta_ms: if over { None } else { eta(now, counts.done, counts.total).map(millis) },
        map_tasks,
        reduce_tasks,
        tasks_total: counts.total,
        tasks_done: counts.done,
        reexecutions: ReexecutionTotals {
            total: counts.reexecutions,
            timeouts: counts.timeouts,
            lost_workers: counts.abandoned,
            failed_attempts: counts.failed_attempts,
            backups: counts.backups,
            backup_wins: counts.backup_wins,
            lost_map_outputs: counts.lost_map_outputs,
        },
        recent_reexecutions: state.reexecution_log.to_vec(),
        input_bytes_total: shared.total_input_bytes,
        input_bytes: totals.input_bytes,
        intermediate_bytes: totals.intermediate_bytes,
        output_bytes: totals.output_bytes,
        input_bytes_per_second: (totals.input_bytes as f64 / now.as_secs_f64().max(1e-3)) as u64,
        counters: totals.counters.clone(),
        workers,
        history: state.history.points().to_vec(),
    }
}

fn summary_of(shared: &Shared, state: &State) -> JobSummary {
    let mut summary = state.totals.clone();
    summary.counts = state.table.counts();
    summary.elapsed = shared.now();
    summary
}

/// Refuses an output directory that already holds `mr-out-*` files: mixing two jobs' outputs is never
/// what the user meant, and overwriting results silently is worse.
fn check_no_previous_results(output_dir: &Path) -> anyhow::Result<()> {
    let entries =
        fs::read_dir(output_dir).with_context(|| format!("reading output directory {}", output_dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading output directory {}", output_dir.display()))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("mr-out-") {
            bail!(
                "output directory {} already holds results ({name}); remove them or choose another directory",
                output_dir.display()
            );
        }
        if name.starts_with(SCRATCH_PREFIX) && name != LOCK_FILE_NAME {
            // Left by a coordinator that was killed. Not removed automatically: it might belong to a job that
            // is still running against this directory (a mistake, but not one to make worse).
            warn!(
                "{} holds {name}, scratch space of an earlier job that did not finish; remove it if no job is running",
                output_dir.display()
            );
        }
    }
    Ok(())
}

fn remove_if_new_and_empty(dir: &Path, is_new: bool) {
    if is_new {
        // `remove_dir` refuses a non-empty directory, which is what we want.
        let _ = fs::remove_dir(dir);
    }
}

/// Removes the job's scratch directories. Each is first renamed out of the way, so that a straggling worker
/// still writing into it (a stopped worker resumed as the job ends) can create nothing more: its paths no
/// longer resolve, and `run_map` / `run_reduce` never recreate a missing job directory. Only a create
/// already past its path lookup can still land, which the retries absorb. A failure is a warning that
/// names the directory, because nothing of a finished job may stay behind unnoticed.
fn remove_dirs(dirs: &[PathBuf]) {
    for dir in dirs {
        if let Some(retired) = retire(dir) {
            remove_retired(&retired);
        }
    }
}

/// Renames `dir` out of the way (see [`remove_dirs`]) and returns where it went; `None` if it is gone
/// already. If the rename fails, the directory is removed where it is.
fn retire(dir: &Path) -> Option<PathBuf> {
    let doomed = doomed_name(dir);
    match fs::rename(dir, &doomed) {
        Ok(()) => Some(doomed),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => {
            debug!("renaming {} before removing it: {e}; removing it in place", dir.display());
            Some(dir.to_path_buf())
        }
    }
}

/// Removes a retired scratch directory, retrying briefly; warns if it cannot.
fn remove_retired(target: &Path) {
    if let Some(warning) = try_remove_retired(target) {
        warn!("{warning}");
    }
}

/// Removes `target`, retrying briefly; returns the warning the user must see if it is still there.
fn try_remove_retired(target: &Path) -> Option<String> {
    let mut last_error = None;
    for attempt in 0..CLEANUP_ATTEMPTS {
        if attempt > 0 {
            thread::sleep(CLEANUP_RETRY_PAUSE);
        }
        match fs::remove_dir_all(target) {
            Ok(()) => return None,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return None,
            Err(e) => last_error = Some(e),
        }
    }
    last_error.map(|e| {
        format!(
            "could not remove the job's scratch directory {}: {e}; no job uses it any more, remove it by hand",
            target.display()
        )
    })
}

/// The name a scratch directory is renamed to before removal: beside it (same file system), hidden, and
/// saying what it is if it is ever left behind.
fn doomed_name(dir: &Path) -> PathBuf {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = name.trim_start_matches('.');
    dir.with_file_name(format!(".{name}.removing"))
}

fn sample_history(shared: &Shared, state: &mut State, force: bool) {
    let (done, input) = (state.table.counts().done, state.totals.input_bytes);
    state.history.sample(shared.now(), done, input, force);
}

/// Blocks until the task table says the job is over. `Ok` if every reduce is committed.
fn wait_for_job(shared: &Shared) -> Result<(), String> {
    let mut state = shared.lock();
    loop {
        tick(shared, &mut state);
        sample_history(shared, &mut state, false);
        match state.table.status() {
            JobStatus::Running => {}
            JobStatus::Succeeded => return Ok(()),
            JobStatus::Failed { reason } => return Err(reason.clone()),
        }
        state = shared.changed.wait_timeout(state, TICK).unwrap_or_else(|p| p.into_inner()).0;
    }
}

/// Lets time pass in the task table and warns about every attempt that timed out: a task slower than
/// `--task-timeout` is something the user should hear about, not a silent re-run.
fn tick(shared: &Shared, state: &mut State) {
    let now = shared.now();
    for t in state.table.tick(now) {
        let detail = format!("no report within {:?}; the next attempt gets {:?}", t.timeout, t.next_timeout);
        state.reexecution_log.push(ReexecutionEvent::new(
            now,
            t.task.to_string(),
            t.attempt.to_string(),
            "timeout",
            detail,
        ));
        warn!(
            "{} {} did not finish within {:?} (timeout {} of {TIMEOUTS_PER_TASK_MAX} for this task); the task may \
             be handed out again, with {:?}, and whichever attempt succeeds first counts. If tasks take this \
             long, raise --task-timeout",
            t.task, t.attempt, t.timeout, t.timeouts, t.next_timeout
        );
    }
}

/// Moves every committed reduce output into the output directory, all or nothing, never over an existing
/// file (see [`crate::publish`]).
fn publish(shared: &Shared) -> anyhow::Result<()> {
    publish_outputs(&shared.layout, &shared.output_dir, shared.job.reduce_tasks)?;
    info!(
        "output published: {} files {}..{} in {}",
        shared.job.reduce_tasks,
        output_name(0),
        output_name(shared.job.reduce_tasks - 1),
        shared.output_dir.display()
    );
    Ok(())
}

/// Waits (at most [`EXIT_GRACE`]) until every connected worker was told to exit or has gone.
fn wait_for_workers_to_hear(shared: &Shared) {
    let deadline = Instant::now() + EXIT_GRACE;
    let mut state = shared.lock();
    while state.connections.values().any(|c| !c.told_to_exit) {
        let now = Instant::now();
        if now >= deadline {
            let busy = state.connections.values().filter(|c| !c.told_to_exit).count();
            info!("{busy} worker(s) still busy after the job ended; exiting without waiting for them");
            return;
        }
        state = shared.changed.wait_timeout(state, (deadline - now).min(TICK)).unwrap_or_else(|p| p.into_inner()).0;
    }
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    while !shared.shutting_down.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, peer)) => {
                let shared = Arc::clone(shared);
                let spawned =
                    thread::Builder::new().name(format!("mr-conn-{peer}")).spawn(move || serve(&shared, stream, peer));
                if let Err(e) = spawned {
                    warn!("cannot start a thread for worker {peer}: {e}");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => thread::sleep(ACCEPT_POLL),
            Err(e) => {
                warn!("accepting a connection: {e}");
                thread::sleep(ACCEPT_POLL);
            }
        }
    }
}

/// Serves one worker connection until it closes.
fn serve(shared: &Shared, stream: TcpStream, peer: SocketAddr) {
    let id = match register(shared, &stream) {
        Ok(id) => id,
        Err(e) => {
            warn!("worker {peer}: {e}");
            return;
        }
    };
    match serve_connection(shared, id, stream, peer) {
        Ok(()) => debug!("worker {peer} disconnected"),
        Err(e) if e.is_disconnect() => debug!("worker {peer} disconnected: {e}"),
        Err(e) => warn!("worker {peer}: {e}; closing the connection"),
    }
    let now = shared.now();
    let mut state = shared.lock();
    if let Some(connection) = state.connections.remove(&id) {
        if let Some((task, attempt)) = connection.running {
            info!("worker {peer} disconnected while running {task} {attempt}; reassigning it");
            let abandoned_before = state.table.counts().abandoned;
            state.table.abandon(task, attempt);
            if state.table.counts().abandoned > abandoned_before {
                let detail = format!("the connection of worker {peer} closed while it ran the task");
                let event = ReexecutionEvent::new(now, task.to_string(), attempt.to_string(), "lost worker", detail);
                state.reexecution_log.push(event);
            }
        }
        if let Some(address) = &connection.data_address {
            // Its map outputs went with it (the paper's section 3.3): run those maps again.
            let held: Vec<(u32, AttemptId)> = state
                .map_homes
                .iter()
                .enumerate()
                .filter_map(|(m, home)| {
                    home.as_ref()
                        .filter(|h| h.holder.as_ref().is_some_and(|(c, _)| *c == id))
                        .map(|h| (m as u32, h.attempt))
                })
                .collect();
            for (map, attempt) in held {
                let detail = format!("worker {peer}, which served it at {address}, disconnected");
                lose_map_output(shared, &mut state, (map, attempt), LossCause::WorkerGone, detail);
            }
        }
        if let Some(mut worker) = connection.worker {
            worker.left = Some(now);
            state.departed.push(worker);
        }
    }
    shared.changed.notify_all();
}

fn register(shared: &Shared, stream: &TcpStream) -> io::Result<u64> {
    stream.set_nonblocking(false)?;
    stream.set_nodelay(true)?;
    let clone = stream.try_clone()?;
    let mut state = shared.lock();
    let id = state.next_connection;
    state.next_connection += 1;
    let connection = Connection { stream: clone, told_to_exit: false, running: None, worker: None, data_address: None };
    state.connections.insert(id, connection);
    Ok(id)
}

fn serve_connection(shared: &Shared, id: u64, stream: TcpStream, peer: SocketAddr) -> Result<(), WireError> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = BufWriter::new(stream.try_clone()?);
    stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT))?;
    let hello: Hello = wire::receive(&mut reader)?;
    if let Some(reason) = refusal(shared, &hello) {
        warn!("refusing worker {peer} (pid {}): {reason}", hello.pid);
        wire::send(&mut writer, &HelloReply::Rejected { reason })?;
        return Ok(());
    }
    stream.set_read_timeout(None)?;
    wire::send(&mut writer, &HelloReply::Welcome { protocol_version: PROTOCOL_VERSION, job: shared.job.clone() })?;
    {
        let joined = shared.now();
        let mut state = shared.lock();
        state.totals.workers_seen += 1;
        if let Some(connection) = state.connections.get_mut(&id) {
            let address = peer.to_string();
            let record = WorkerRecord { address, pid: hello.pid, joined, left: None, tasks_done: 0, input_bytes: 0 };
            connection.worker = Some(record);
        }
    }
    info!("worker {peer} (pid {}) joined job {}", hello.pid, shared.job.job);
    loop {
        let request: Request = wire::receive(&mut reader)?;
        let reply = match request {
            Request::GetTask => {
                let reply = next_task(shared, peer);
                if let Reply::Run(assignment) = &reply {
                    set_running(shared, id, Some((assignment.task, assignment.attempt)));
                }
                reply
            }
            Request::Report(report) => {
                set_running(shared, id, None);
                handle_report(shared, report, id, peer)
            }
            Request::Register(registration) => register_worker(shared, id, peer, registration),
            Request::ReadInput { task, attempt, offset } => read_input(shared, task, attempt, offset),
            Request::MapOutputs { first_map } => map_outputs(shared, first_map),
            Request::PutOutput { task, attempt, chunk } => put_output(shared, id, task, attempt, &chunk),
        };
        wire::send(&mut writer, &reply)?;
        if let Reply::Exit { .. } = reply {
            // Counted only once the reply is written: the coordinator closes every connection when all
            // workers are told, and must not cut this one before the worker could read its `Exit`.
            let mut state = shared.lock();
            if let Some(connection) = state.connections.get_mut(&id) {
                connection.told_to_exit = true;
            }
            shared.changed.notify_all();
        }
    }
}

fn set_running(shared: &Shared, id: u64, running: Option<(TaskId, AttemptId)>) {
    if let Some(connection) = shared.lock().connections.get_mut(&id) {
        connection.running = running;
    }
}

fn refusal(shared: &Shared, hello: &Hello) -> Option<String> {
    if hello.magic != PROTOCOL_MAGIC {
        return Some("not a keel mr worker (bad magic)".to_string());
    }
    if hello.protocol_version != PROTOCOL_VERSION {
        return Some(format!(
            "protocol version mismatch: worker speaks version {}, this coordinator speaks version {PROTOCOL_VERSION}; \
             run workers from the same keel build as the coordinator",
            hello.protocol_version
        ));
    }
    if let Some(job) = hello.job
        && job != shared.job.job
    {
        return Some(format!("worker belongs to job {job}, but this coordinator runs job {}", shared.job.job));
    }
    if shared.lock().connections.len() > MAX_CONNECTIONS {
        return Some(format!("too many workers (limit {MAX_CONNECTIONS})"));
    }
    None
}

/// Answers `GetTask`, holding the request up to [`LONG_POLL`] while there is nothing to hand out.
fn next_task(shared: &Shared, peer: SocketAddr) -> Reply {
    let held_until = Instant::now() + LONG_POLL;
    let mut state = shared.lock();
    loop {
        if let Some(finished) = &state.finished {
            return Reply::Exit { failure: finished.clone().err() };
        }
        tick(shared, &mut state);
        let claims_pending = !state.unclaimed.is_empty() && shared.now() < CLAIM_GRACE;
        let next = if claims_pending { Next::Wait } else { state.table.request(shared.now()) };
        match next {
            Next::Run { task, attempt } => {
                let input = match task {
                    TaskId::Map(m) => state.splits.get(m as usize).map(split_spec),
                    TaskId::Reduce(_) => None,
                };
                let timeout = match state.table.state(task) {
                    Some(TaskState::InProgress { deadline, .. }) => deadline.saturating_sub(shared.now()),
                    _ => shared.task_timeout,
                };
                let timeout_ms = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
                if state.table.is_backup(task, attempt) {
                    info!("{task} {attempt} -> worker {peer}: a backup of a straggler");
                    let detail = format!(
                        "the phase is nearly done and the task's attempt has run over \
                         {BACKUP_SLOWER_THAN_MEDIAN_FACTOR}x the median of finished tasks; worker {peer} runs a \
                         second attempt, the first to finish counts"
                    );
                    let event =
                        ReexecutionEvent::new(shared.now(), task.to_string(), attempt.to_string(), "backup", detail);
                    state.reexecution_log.push(event);
                } else {
                    info!("{task} {attempt} -> worker {peer}");
                }
                return Reply::Run(Assignment { task, attempt, input, timeout_ms });
            }
            // `Exit` before `finished` is set: the job just ended and is being published; hold on.
            Next::Wait | Next::Exit => {}
        }
        let now = Instant::now();
        if now >= held_until {
            return Reply::Wait;
        }
        state = shared.changed.wait_timeout(state, (held_until - now).min(TICK)).unwrap_or_else(|p| p.into_inner()).0;
    }
}

fn split_spec(split: &InputSplit) -> SplitSpec {
    SplitSpec {
        // Checked to be UTF-8 when the splits were planned.
        path: split.path.to_string_lossy().into_owned(),
        name: split.name.clone(),
        offset: split.offset,
        len: split.len,
    }
}

/// Takes a report in; the answer is `Ack` for a shared-file-system worker, and for one that shares nothing
/// whether its attempt is the committed one (a map worker then serves its output, or deletes it).
fn handle_report(shared: &Shared, report: Report, connection: u64, peer: SocketAddr) -> Reply {
    let Report { task, attempt, outcome } = report;
    let data_address = shared.lock().connections.get(&connection).and_then(|c| c.data_address.clone());
    if let ReportedOutcome::InputLost { map, map_attempt, reason } = &outcome {
        input_lost(shared, task, attempt, (*map, *map_attempt), reason, peer);
        return Reply::Ack;
    }
    let (stats, outcome) = match outcome {
        ReportedOutcome::Succeeded(stats) => match stats.counters.validate() {
            Ok(()) => (Some(stats), Outcome::Succeeded),
            // Workers of this build never send bad counters (`task_exec` fails such attempts), so this is a
            // foreign or broken peer: refuse the result rather than let it into the totals.
            Err(e) => (None, Outcome::Failed { permanent: true, error: format!("reported counters: {e}") }),
        },
        ReportedOutcome::Failed { permanent, error } => (None, Outcome::Failed { permanent, error }),
        ReportedOutcome::InputLost { .. } => unreachable!("handled above"),
    };
    let failure = match &outcome {
        Outcome::Failed { error, .. } => Some(error.clone()),
        Outcome::Succeeded => None,
    };
    let verdict = {
        let mut state = shared.lock();
        // The table measures how long the committed attempt took by the latest time it heard of.
        tick(shared, &mut state);
        let verdict = state.table.report(task, attempt, outcome);
        if let Some(error) = &failure {
            let event = ReexecutionEvent::new(
                shared.now(),
                task.to_string(),
                attempt.to_string(),
                "failed attempt",
                format!("worker {peer}: {error}"),
            );
            state.reexecution_log.push(event);
        }
        verdict
    };
    if let Some(error) = failure {
        if matches!(verdict, Verdict::JobFailed { .. }) {
            // The job's error carries this reason; printing it here too would say it twice.
            info!("{task} {attempt} failed on worker {peer}: {error}");
        } else {
            warn!("{task} {attempt} failed on worker {peer}: {error}");
        }
    }
    match verdict {
        Verdict::Commit { task } => {
            let journaled = stats.clone().unwrap_or_default();
            let result = commit(shared, task, attempt, data_address.is_some(), &journaled)
                .and_then(|()| journal_commit(shared, task, attempt, journaled))
                .map_err(|e| format!("{e:#}"));
            if let Err(e) = &result {
                warn!("committing {task} {attempt}: {e}");
                remove_attempt_files(shared, task, attempt, discardable(&stats, &data_address));
            }
            let mut state = shared.lock();
            if result.is_ok()
                && let Some(stats) = &stats
            {
                // The only place counters enter the totals: the attempt being committed, once (or its
                // journal record, once, when a resumed coordinator keeps it).
                if let Err(e) = add_committed_stats(&mut state.totals, task, stats) {
                    state.table.fail(format!("{task} {attempt}: {e}"));
                }
                if let Some(worker) = state.connections.get_mut(&connection).and_then(|c| c.worker.as_mut()) {
                    worker.tasks_done += 1;
                    worker.input_bytes += stats.input_bytes;
                }
            }
            if let (Ok(()), TaskId::Map(m)) = (&result, task)
                && let Some(home) = state.map_homes.get_mut(m as usize)
            {
                let stats = stats.clone().unwrap_or_default();
                let holder = data_address.clone().map(|address| (connection, address));
                *home = Some(MapHome { attempt, holder, stats });
            }
            state.table.commit_finished(task, attempt, result);
            debug!("{task} {attempt} committed");
        }
        Verdict::Ignore { reason } if reason.discards_files() => {
            info!("ignoring report of {task} {attempt} from worker {peer}: {reason:?}; removing its files");
            remove_attempt_files(shared, task, attempt, discardable(&stats, &data_address));
        }
        Verdict::Ignore { reason } => {
            // A duplicate of the attempt being committed (its files are being renamed into place right now),
            // or a report naming another task's attempt: leave every file alone.
            info!("ignoring report of {task} {attempt} from worker {peer}: {reason:?}");
        }
        Verdict::Retry { .. } | Verdict::JobFailed { .. } => {
            remove_attempt_files(shared, task, attempt, discardable(&stats, &data_address))
        }
    }
    shared.changed.notify_all();
    if data_address.is_none() {
        return Reply::Ack;
    }
    let committed = matches!(
        shared.lock().table.state(task),
        Some(TaskState::Done { attempt: a } | TaskState::Committing { attempt: a }) if a == attempt
    );
    Reply::Reported { committed }
}

/// A reducer could not fetch map `map`'s output (`map_attempt`'s): if that is still the map's official
/// output, the map runs again. The reduce attempt is released either way (it will run again once every map
/// output is back), not failed.
fn input_lost(
    shared: &Shared,
    task: TaskId,
    attempt: AttemptId,
    (map, map_attempt): (u32, AttemptId),
    reason: &str,
    peer: SocketAddr,
) {
    if !matches!(task, TaskId::Reduce(_)) {
        warn!("worker {peer} reported a lost input for {task} {attempt}, which is not a reduce; ignored");
        return;
    }
    {
        let mut state = shared.lock();
        let detail = format!("reducer {peer} ({task} {attempt}) could not fetch it: {reason}");
        // Its holder may have died a moment ago without the coordinator knowing yet; then the loss is the
        // dead worker's, counted as such when its connection closes (this call changes nothing then).
        // A map output in the shared work directory has no holder that could die: it is damaged.
        let holder_alive =
            state.map_homes.get(map as usize).and_then(Option::as_ref).is_some_and(|home| match &home.holder {
                None => true,
                Some((connection, address)) => {
                    state.connections.get(connection).is_some_and(|c| c.data_address.as_deref() == Some(address))
                }
            });
        let cause = if holder_alive { LossCause::Unreadable } else { LossCause::WorkerGone };
        lose_map_output(shared, &mut state, (map, map_attempt), cause, detail);
        state.table.release(task, attempt);
    }
    remove_attempt_files(shared, task, attempt, None);
    shared.changed.notify_all();
}

/// Map `map`'s official output, `attempt`'s, is gone: the task table makes the map idle again (unless that
/// was known already, or it is not the official attempt), and the user and the status page hear why.
fn lose_map_output(
    shared: &Shared,
    state: &mut State,
    (map, attempt): (u32, AttemptId),
    cause: LossCause,
    detail: String,
) {
    if !state.table.map_output_lost(map, attempt, cause) {
        return;
    }
    if let Some(home) = state.map_homes.get_mut(map as usize).and_then(Option::take) {
        // The totals count each task's committed attempt once: the map's next commit adds its figures again.
        subtract_committed_stats(&mut state.totals, &home.stats);
    }
    warn!("map task {map}'s output ({attempt}) is lost: {detail}; running the map again");
    let event =
        ReexecutionEvent::new(shared.now(), TaskId::Map(map).to_string(), attempt.to_string(), "lost output", detail);
    state.reexecution_log.push(event);
}

/// A worker says how it works: sharing the file system or nothing (then where it serves map outputs, and
/// which committed map outputs it holds, for a coordinator that was restarted). A held output is kept if the
/// journal has that very attempt on record for its map and the map has not run again since; every other one
/// is for the worker to delete.
fn register_worker(shared: &Shared, id: u64, peer: SocketAddr, registration: Registration) -> Reply {
    let Registration { data_address, held } = registration;
    if held.len() > HELD_OUTPUTS_PER_REGISTER_MAX {
        return Reply::Error {
            reason: format!("{} held outputs announced, at most {HELD_OUTPUTS_PER_REGISTER_MAX}", held.len()),
        };
    }
    let shares_nothing = data_address.is_some();
    let mut state = shared.lock();
    match state.shares_nothing {
        None => state.shares_nothing = Some(shares_nothing),
        Some(mode) if mode != shares_nothing => {
            let (this, job) = if shares_nothing {
                ("shares nothing (no --shared-fs)", "share the coordinator's file system (--shared-fs)")
            } else {
                ("shares the file system (--shared-fs)", "share nothing (started without --shared-fs)")
            };
            return Reply::Error {
                reason: format!(
                    "this worker {this}, but this job's workers {job}; a job's reducers read map outputs one way                      only: start every worker of a job the same way"
                ),
            };
        }
        Some(_) => {}
    }
    if let Some(connection) = state.connections.get_mut(&id) {
        connection.data_address = data_address.clone();
    }
    let mut drop = Vec::new();
    for output in held {
        let m = output.map;
        let claimable = state.unclaimed.get(&m).is_some_and(|(a, _)| *a == output.attempt)
            && state.table.state(TaskId::Map(m)) == Some(TaskState::Idle);
        let (Some(address), true) = (&data_address, claimable) else {
            drop.push(output);
            continue;
        };
        state.table.restore_done(TaskId::Map(m), output.attempt);
        if state.table.state(TaskId::Map(m)) != Some(TaskState::Done { attempt: output.attempt }) {
            drop.push(output);
            continue;
        }
        let Some((_, stats)) = state.unclaimed.remove(&m) else {
            drop.push(output);
            continue;
        };
        if let Err(e) = add_committed_stats(&mut state.totals, TaskId::Map(m), &stats) {
            state.table.fail(format!("the journal's record of map task {m}: {e}"));
        }
        state.totals.restored_tasks += 1;
        let home = MapHome { attempt: output.attempt, holder: Some((id, address.clone())), stats };
        state.map_homes[m as usize] = Some(home);
        info!(
            "map task {m}: keeping {} held by worker {peer} (committed before the coordinator restarted)",
            output.attempt
        );
    }
    shared.changed.notify_all();
    Reply::Registered { drop }
}

/// A chunk of a map attempt's split, for a worker that cannot read the input itself.
fn read_input(shared: &Shared, task: TaskId, attempt: AttemptId, offset: u64) -> Reply {
    let TaskId::Map(m) = task else {
        return Reply::Stop { reason: format!("{task} has no input split") };
    };
    let split = {
        let state = shared.lock();
        if !state.table.is_live(task, attempt) {
            return Reply::Stop { reason: format!("{task} {attempt} is no longer needed") };
        }
        match state.splits.get(m as usize) {
            Some(split) => split.clone(),
            None => return Reply::Stop { reason: format!("{task} does not exist") },
        }
    };
    if offset >= split.len {
        return Reply::Stop {
            reason: format!("offset {offset} is past the end of {task}'s split ({} bytes)", split.len),
        };
    }
    let n = (split.len - offset).min(CHUNK_BYTES_MAX as u64) as usize;
    let mut data = vec![0u8; n];
    let read = fs::File::open(&split.path).and_then(|file| {
        use std::os::unix::fs::FileExt;
        file.read_exact_at(&mut data, split.offset + offset)
    });
    match read {
        Ok(()) => Reply::InputChunk(Chunk::new(offset, data)),
        Err(e) => Reply::Stop {
            reason: format!("the coordinator cannot read input {} at byte {}: {e}", split.name, split.offset + offset),
        },
    }
}

/// Where the map outputs from `first_map` on are (a page of them).
fn map_outputs(shared: &Shared, first_map: u32) -> Reply {
    let state = shared.lock();
    let end = (first_map as usize).saturating_add(MAP_OUTPUTS_PER_REPLY_MAX).min(state.map_homes.len());
    let outputs = (first_map as usize..end)
        .map(|m| {
            let location = match (state.table.state(TaskId::Map(m as u32)), &state.map_homes[m]) {
                (Some(TaskState::Done { attempt }), Some(home)) if home.attempt == attempt => Some(MapOutputLocation {
                    attempt,
                    output: home.stats.map_output,
                    address: home.holder.as_ref().map(|(_, address)| address.clone()),
                }),
                _ => None,
            };
            MapOutputAt { map: m as u32, location }
        })
        .collect();
    Reply::MapOutputs { outputs }
}

/// A piece of a reduce attempt's output from a worker that shares nothing: written into the staging
/// directory under the attempt's name, exactly as a shared-file-system worker would have. Only the attempt
/// this connection is running may write, and only in order.
fn put_output(shared: &Shared, id: u64, task: TaskId, attempt: AttemptId, chunk: &Chunk) -> Reply {
    use std::os::unix::fs::FileExt;
    let TaskId::Reduce(r) = task else {
        return Reply::Stop { reason: format!("{task} has no output to send") };
    };
    let running = shared.lock().connections.get(&id).and_then(|c| c.running);
    if running != Some((task, attempt)) {
        return Reply::Stop { reason: format!("{task} {attempt} is not this worker's current attempt") };
    }
    if let Err(e) = chunk.check() {
        return Reply::Stop { reason: format!("{task} {attempt}'s output: {e}") };
    }
    let path = shared.layout.reduce_attempt_output(attempt, r);
    let written = (|| -> io::Result<()> {
        let file = if chunk.offset == 0 {
            fs::File::create(&path)?
        } else {
            let file = fs::OpenOptions::new().write(true).open(&path)?;
            let len = file.metadata()?.len();
            if len != chunk.offset {
                return Err(io::Error::other(format!(
                    "chunk at offset {} but {len} bytes received so far",
                    chunk.offset
                )));
            }
            file
        };
        file.write_all_at(&chunk.data, chunk.offset)
    })();
    match written {
        Ok(()) => Reply::Ack,
        Err(e) => Reply::Stop { reason: format!("the coordinator cannot write {}: {e}", path.display()) },
    }
}

/// Commits an attempt's output. A map's stays where it is, a byte range of its worker's maps file: it must
/// be there with an index for every partition; checking that first (its trailer and last entry, one small
/// read) means a worker that reports success without its output cannot get a task marked done. Nothing
/// of it is fsynced (its output is recomputable, see [`crate::map_file`]). A reduce's output is renamed
/// to its committed name, and is durable, since it is the job's result.
fn commit(
    shared: &Shared,
    task: TaskId,
    attempt: AttemptId,
    shares_nothing: bool,
    stats: &TaskStats,
) -> anyhow::Result<()> {
    let layout = &shared.layout;
    match task {
        // The output stays on its worker, which serves it; the caller records where.
        TaskId::Map(_) if shares_nothing => {}
        TaskId::Map(_) => {
            let range = stats
                .map_output
                .with_context(|| format!("{task} {attempt}: the worker reported no byte range for its output"))?;
            check_map_output(layout, Some(&shared.maps_files), range, shared.job.reduce_tasks)
                .with_context(|| format!("{task} {attempt}"))?;
        }
        TaskId::Reduce(r) => {
            let (from, to) = (layout.reduce_attempt_output(attempt, r), layout.reduce_committed(r));
            // Whole, and durable before its name is: a worker that shares nothing sent it in pieces and left
            // the fsync to the coordinator; one that shares the file system fsynced it.
            let file = fs::File::open(&from).with_context(|| format!("opening {}", from.display()))?;
            let len = file.metadata().with_context(|| format!("reading {}", from.display()))?.len();
            if len != stats.output_bytes {
                bail!("{} holds {len} bytes, but the worker reported {}", from.display(), stats.output_bytes);
            }
            if shares_nothing {
                file.sync_all().with_context(|| format!("syncing {}", from.display()))?;
            }
            // The rename is not fsynced on its own: the commit's journal record is (on ext4 that commits the
            // rename along), and if a power cut still loses it, the resumed coordinator finds the output
            // missing and runs the reduce again; the publish fsyncs the names users see. One fsync fewer per
            // reduce, each several milliseconds on a busy disk, in every reduce's critical path.
            fs::rename(&from, &to).with_context(|| format!("renaming {} to {}", from.display(), to.display()))?;
        }
    }
    Ok(())
}

/// Adds a committed attempt's figures to the job's totals.
fn add_committed_stats(
    totals: &mut JobSummary,
    task: TaskId,
    stats: &crate::protocol::TaskStats,
) -> Result<(), crate::counters::CounterError> {
    match task {
        TaskId::Map(_) => {
            totals.input_bytes += stats.input_bytes;
            totals.intermediate_bytes += stats.output_bytes;
        }
        TaskId::Reduce(_) => totals.output_bytes += stats.output_bytes,
    }
    totals.spills += stats.spills;
    totals.worker_peak_rss_bytes = totals.worker_peak_rss_bytes.max(stats.worker_peak_rss_bytes);
    totals.counters.add_all(&stats.counters)
}

/// Takes a lost map output's figures back out of the job's totals (see [`MapHome`]).
fn subtract_committed_stats(totals: &mut JobSummary, stats: &TaskStats) {
    totals.input_bytes = totals.input_bytes.saturating_sub(stats.input_bytes);
    totals.intermediate_bytes = totals.intermediate_bytes.saturating_sub(stats.output_bytes);
    totals.spills = totals.spills.saturating_sub(stats.spills);
    totals.counters.subtract_all(&stats.counters);
}

/// Records the commit durably before anyone hears of it: a coordinator restarted after a crash keeps it.
fn journal_commit(
    shared: &Shared,
    task: TaskId,
    attempt: AttemptId,
    stats: crate::protocol::TaskStats,
) -> anyhow::Result<()> {
    let mut journal = shared.journal.lock().unwrap_or_else(|p| p.into_inner());
    match journal.as_mut() {
        // A map's commit is not fsynced, like its output: after a power loss the map runs again (the paper's
        // rule for lost map outputs), while a coordinator killed any other way finds the record. A reduce's
        // is, and with it every record before it. Thousands of small maps would otherwise wait for an fsync
        // each (2,000 of about a millisecond on this machine, in every map's critical path).
        Some(journal) => {
            let record = JournalRecord::Committed { task, attempt, stats };
            match task {
                TaskId::Map(_) => journal.append_unsynced(&record)?,
                TaskId::Reduce(_) => journal.append(&record)?,
            }
        }
        None => bail!("the job is over; {task} {attempt} is not committed"),
    }
    let commits = shared.commits_journaled.fetch_add(1, Ordering::SeqCst) + 1;
    let abort_after = std::env::var(FAILPOINT_ENV)
        .ok()
        .and_then(|v| v.strip_prefix(FAILPOINT_ABORT_AFTER_COMMITS).and_then(|n| n.parse::<u64>().ok()));
    if abort_after == Some(commits) {
        std::process::abort();
    }
    Ok(())
}

/// The inputs as the journal records them: absolute paths.
fn splits_inputs(config: &JobConfig) -> anyhow::Result<Vec<String>> {
    config
        .inputs
        .iter()
        .map(|p| {
            let absolute = std::path::absolute(p).with_context(|| format!("resolving {}", p.display()))?;
            Ok(absolute.display().to_string())
        })
        .collect()
}

/// The output directory's journal: a new one for `wanted`, or the one an earlier, killed coordinator left,
/// if it is of the same job (then its job id, its next run number and its commits).
fn open_journal(
    output_dir: &Path,
    wanted: JournaledJob,
) -> anyhow::Result<(Journal, JobId, u32, Vec<JournalRecord>, bool)> {
    let path = journal_path(output_dir);
    if !path.exists() {
        let job = wanted.job;
        let journal = Journal::create(output_dir, wanted)?;
        return Ok((journal, job, 0, Vec::new(), true));
    }
    let (mut journal, records) = Journal::open(&path)?;
    let Some(JournalRecord::Job(found)) = records.first() else {
        bail!("{} is not a keel job journal (or lost its first record); remove it to start a new job", path.display());
    };
    let same = JournaledJob { job: found.job, ..wanted };
    if &same != found {
        bail!(
            "{} holds the journal of an unfinished job ({} app {:?}, {} inputs, {} reduces) with other settings              than this command; run the same command to resume it, or remove the journal and the output              directory's .keel-* directories to start over",
            path.display(),
            found.job,
            found.app,
            found.inputs.len(),
            found.reduce_tasks
        );
    }
    let runs = records.iter().filter(|r| matches!(r, JournalRecord::Run { .. })).count();
    let run = u32::try_from(runs).context("too many coordinator runs in the journal")?;
    journal.append(&JournalRecord::Run { run })?;
    let job = found.job;
    let committed = records.into_iter().filter(|r| matches!(r, JournalRecord::Committed { .. })).collect();
    Ok((journal, job, run, committed, false))
}

/// Checks that a map output is where its worker said, whole enough to serve every reduce: the trailer and
/// the last partition's entry of `range` (one small read). `files` keeps maps files open across commits.
fn check_map_output(
    layout: &Layout,
    files: Option<&Mutex<HashMap<u64, fs::File>>>,
    range: MapOutputRange,
    partitions: u32,
) -> anyhow::Result<()> {
    let path = layout.maps_file(range.file);
    let check = |file: &fs::File| {
        locate_partition_in(file, &path, range.region, partitions - 1, partitions)
            .with_context(|| format!("checking its output at {:?} of {}", range.region, path.display()))
    };
    let Some(files) = files else {
        let file = fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        return check(&file).map(drop);
    };
    let mut files = files.lock().unwrap_or_else(|p| p.into_inner());
    if !files.contains_key(&range.file) {
        if files.len() >= MAPS_FILES_OPEN_MAX {
            files.clear();
        }
        let file = fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        files.insert(range.file, file);
    }
    match files.get(&range.file) {
        Some(file) => check(file).map(drop),
        None => bail!("{} was not kept open", path.display()),
    }
}

/// The map output range a report names, if its bytes are the coordinator's to discard: only in the shared
/// work directory (a worker that shares nothing discards its own, told by `Reported { committed: false }`).
fn discardable(stats: &Option<TaskStats>, data_address: &Option<String>) -> Option<MapOutputRange> {
    match data_address {
        None => stats.as_ref().and_then(|s| s.map_output),
        Some(_) => None,
    }
}

/// Removes whatever an attempt that will not be committed left behind: its scratch directory, a reduce's
/// staged output, and a map's output in its worker's maps file (`map_output`; its bytes are freed in place,
/// since the worker goes on appending to that file).
fn remove_attempt_files(shared: &Shared, task: TaskId, attempt: AttemptId, map_output: Option<MapOutputRange>) {
    let layout = &shared.layout;
    let _ = fs::remove_dir_all(layout.attempt_dir(attempt));
    match (task, map_output) {
        (TaskId::Map(_), Some(range)) => {
            let path = layout.maps_file(range.file);
            if let Err(e) = fs::OpenOptions::new().write(true).open(&path).and_then(|f| punch_hole(&f, range.region)) {
                debug!("discarding {task} {attempt}'s output at {:?} of {}: {e}", range.region, path.display());
            }
        }
        (TaskId::Map(_), None) => {}
        (TaskId::Reduce(r), _) => {
            let _ = fs::remove_file(layout.reduce_attempt_output(attempt, r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_straggler_cannot_write_into_scratch_once_its_removal_started() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join(".keel-work-1");
        let attempt = work.join("attempt-1");
        fs::create_dir_all(&attempt).unwrap();
        fs::write(attempt.join("spill-0"), b"x").unwrap();
        let retired = retire(&work).expect("the directory exists");
        // A straggler resuming now writes by the paths it knows: they no longer resolve, so nothing it
        // writes can outlive the removal (the seed removed in place, racing with such writes).
        assert!(fs::write(attempt.join("spill-1"), b"x").is_err(), "a straggler could still write");
        assert!(fs::create_dir(work.join("attempt-2")).is_err(), "a late attempt could recreate scratch");
        remove_retired(&retired);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert_eq!(retire(&work), None, "retiring a removed directory is a no-op");
    }

    /// A scratch directory that cannot be removed is a warning naming it, not a silent leftover (issue 14, item 4).
    #[test]
    fn scratch_that_cannot_be_removed_is_a_warning_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let gone = dir.path().join(".keel-work-1.removing");
        assert_eq!(try_remove_retired(&gone), None, "already gone is fine");
        fs::create_dir_all(gone.join("attempt-1")).unwrap();
        assert_eq!(try_remove_retired(&gone), None);
        assert!(!gone.exists());
        // Removal fails for a reason other than "not found", even for root: a path through a regular file.
        let file = dir.path().join("a-file");
        fs::write(&file, b"x").unwrap();
        let stuck = file.join(".keel-work-2.removing");
        let warning = try_remove_retired(&stuck).expect("a failed removal must produce a warning");
        assert!(warning.contains(".keel-work-2.removing") && warning.contains("remove it by hand"), "{warning}");
    }
}
