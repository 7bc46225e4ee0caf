//! The worker loop: join the coordinator's job, then ask for a task, run it, report, until told to exit or
//! the coordinator is gone. Public so that a user's own binary can run it with its own apps.
//!
//! ```no_run
//! use keel_mr::{AppRegistry, worker::{WorkerOptions, run_worker}};
//! let apps = AppRegistry::builtin(); // plus `apps.register("mine", Arc::new(Mine))`
//! let options = WorkerOptions::new("127.0.0.1:7000");
//! let exit = run_worker(&options, &apps)?;
//! # Ok::<(), anyhow::Error>(())
//! ```
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{BufReader, BufWriter, Read};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tracing::{debug, info};

use crate::app::{App, AppRegistry};
use crate::input::{InputSplit, text};
use crate::layout::Layout;
use crate::maps_file::MapsFile;
use crate::protocol::{
    Assignment, CHUNK_BYTES_MAX, Chunk, HeldOutput, Hello, HelloReply, JobId, JobSpec, MapOutputAt, PROTOCOL_MAGIC,
    PROTOCOL_VERSION, Registration, Reply, Report, ReportedOutcome, Request,
};
use crate::reduce_input::ReduceInputs;
use crate::shuffle::{Servable, ShuffleServer, fetch_partitions, worker_failpoint};
use crate::streaming::StreamingSpec;
use crate::task_exec::{Finished, TaskCode, TaskFailure, run_map_code, run_map_text, run_reduce_code, run_reduce_runs};
use crate::task_table::{AttemptId, TaskId};
use crate::wire::{self, WireError};

/// How long a worker keeps trying to reach the coordinator when it starts (scripts often start workers
/// right after the coordinator) and after a lost connection, before concluding the coordinator is gone: the
/// grace period for a coordinator that was killed and is started again on the same output directory (it
/// resumes the job from its journal, same job id, and the workers go on). 10 s covers a supervisor's
/// restart (systemd waits 100 ms by default) or a quick one by hand, and keeps orphaned workers short-lived.
const CONNECT_PATIENCE: Duration = Duration::from_secs(10);
const CONNECT_RETRY: Duration = Duration::from_millis(100);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// The coordinator answers every request within about a second (it holds `GetTask` at most that long);
/// no answer in this time means it is hung or gone.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest error message sent to the coordinator; a panic message can be arbitrarily long, and the whole
/// report must fit in one frame.
const ERROR_MESSAGE_BYTES_MAX: usize = 16 * 1024;
/// Worker fail point (see [`crate::shuffle`]): the worker stops itself (SIGSTOP) before its first reduce
/// attempt, so a test can kill it at a moment when its maps are committed and no reducer has fetched them.
const FAILPOINT_STOP_BEFORE_REDUCE: &str = "stop-before-reduce";
/// Pause after a `Wait` answer, in case the coordinator answers without holding the request.
const WAIT_PAUSE: Duration = Duration::from_millis(20);

#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The coordinator's address, `host:port`.
    pub coordinator: String,
    /// Refuse to work for any other job than this one.
    pub job: Option<JobId>,
    /// The worker sees the coordinator's files at the same paths: it reads inputs and map outputs and
    /// writes its outputs there directly. Otherwise it shares nothing with the coordinator (see
    /// [`WorkerOptions::scratch_dir`]).
    pub shared_fs: bool,
    /// Sharing nothing: where map outputs and fetched reduce inputs are kept (in a directory of the worker's
    /// own, made inside it and removed when the worker exits). `None`: the system's temporary directory.
    pub scratch_dir: Option<PathBuf>,
    /// Sharing nothing: the address map outputs are served on. `None`: this machine's address towards the
    /// coordinator, a free port.
    pub data_listen: Option<String>,
}

impl WorkerOptions {
    /// A worker that shares nothing with the coordinator at `coordinator`, for any job, with default
    /// scratch directory and data address.
    pub fn new(coordinator: impl Into<String>) -> WorkerOptions {
        WorkerOptions {
            coordinator: coordinator.into(),
            job: None,
            shared_fs: false,
            scratch_dir: None,
            data_listen: None,
        }
    }
}

/// A worker that shares nothing: its scratch directory, the map outputs it may serve, and its data server.
struct Local {
    scratch: ScratchDir,
    servable: Servable,
    server: ShuffleServer,
    data_address: String,
}

/// A directory this process made and removes when dropped (on every exit path but a kill).
struct ScratchDir(PathBuf);

impl ScratchDir {
    fn create(parent: Option<&Path>, job: JobId) -> anyhow::Result<ScratchDir> {
        let parent = parent.map(Path::to_path_buf).unwrap_or_else(std::env::temp_dir);
        // Unique per process and per worker in it (a program may run several worker loops).
        static WORKERS_STARTED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = WORKERS_STARTED.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        remove_dead_workers_scratch(&parent);
        let dir = parent.join(format!("{SCRATCH_PREFIX}{job}-{}-{n}", std::process::id()));
        fs::create_dir_all(&dir).with_context(|| format!("creating the scratch directory {}", dir.display()))?;
        Ok(ScratchDir(dir))
    }
}

/// Names of worker scratch directories: `keel-mr-worker-<job>-<pid>-<n>`.
const SCRATCH_PREFIX: &str = "keel-mr-worker-";

/// Removes scratch directories in `parent` left by workers that were killed (SIGKILL leaves no chance to
/// clean up): those whose pid is no longer running. One whose pid was reused by another process stays until
/// a later worker finds that pid gone.
fn remove_dead_workers_scratch(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = name.strip_prefix(SCRATCH_PREFIX) else { continue };
        let pid = rest.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if let Some(pid) = pid
            && !Path::new(&format!("/proc/{pid}")).exists()
        {
            debug!("removing {}, the scratch directory of a worker that is gone", entry.path().display());
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.0)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!("could not remove the scratch directory {}: {e}; remove it by hand", self.0.display());
        }
    }
}

/// Why the worker loop ended (errors aside).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WorkerExit {
    /// The job's output is final.
    JobDone,
    /// The coordinator reported the job failed.
    JobFailed(String),
    /// The coordinator stopped answering; it exits only after the job ends, or if it was killed.
    CoordinatorGone,
}

/// What this worker runs for the job.
enum JobCode {
    App(Arc<dyn App>),
    Streaming(StreamingSpec),
}

struct Session {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
}

impl Session {
    fn call(&mut self, request: &Request) -> Result<Reply, WireError> {
        wire::send(&mut self.writer, request)?;
        wire::receive(&mut self.reader)
    }
}

/// Joins the job at `options.coordinator` and works until the job is over.
pub fn run_worker(options: &WorkerOptions, apps: &AppRegistry) -> anyhow::Result<WorkerExit> {
    let (mut session, job) = connect(&options.coordinator, options.job)?
        .with_context(|| format!("cannot reach the coordinator at {}", options.coordinator))?;
    // A streaming job needs no registered app: its programs come with the job.
    let code = match &job.streaming {
        Some(spec) => JobCode::Streaming(spec.clone()),
        None => JobCode::App(apps.get(&job.app).with_context(|| {
            format!(
                "the coordinator at {} runs app {:?}, which this worker does not have",
                options.coordinator, job.app
            )
        })?),
    };
    let local = if options.shared_fs { None } else { Some(start_local(options, &job, &session)?) };
    register(&mut session, local.as_ref(), None, &options.coordinator)?;
    info!("joined job {} (app {}, {} maps, {} reduces)", job.job, job.app, job.map_tasks, job.reduce_tasks);
    let layout = match &local {
        // Map outputs, reduce inputs and outputs all in the worker's own scratch directory.
        Some(local) => Layout { work_dir: local.scratch.0.clone(), staging_dir: local.scratch.0.clone() },
        None => Layout { work_dir: PathBuf::from(&job.work_dir), staging_dir: PathBuf::from(&job.staging_dir) },
    };
    // Created at this worker's first map attempt; every map attempt appends to it.
    let mut maps: Option<MapsFile> = None;
    let mut pending: Option<Request> = None;
    let mut stopped_once = false;
    loop {
        let request = pending.take().unwrap_or(Request::GetTask);
        let reply = match session.call(&request) {
            Ok(reply) => reply,
            Err(e) if e.is_disconnect() => {
                debug!("lost the coordinator: {e}; reconnecting");
                match connect(&options.coordinator, Some(job.job))? {
                    Some((new_session, _)) => {
                        session = new_session;
                        // Says again what this worker holds: a restarted coordinator keeps what its journal
                        // has on record.
                        match register(&mut session, local.as_ref(), maps.as_ref(), &options.coordinator) {
                            Ok(()) => {}
                            Err(e) if is_disconnect(&e) => {}
                            Err(e) => return Err(e),
                        }
                        // A report may have been lost with the connection; sending it again is safe because
                        // the coordinator ignores duplicates.
                        pending = Some(request);
                        continue;
                    }
                    None => {
                        info!("the coordinator at {} is gone; exiting", options.coordinator);
                        return Ok(WorkerExit::CoordinatorGone);
                    }
                }
            }
            Err(e) => return Err(e).with_context(|| format!("talking to the coordinator at {}", options.coordinator)),
        };
        match reply {
            Reply::Run(assignment) => {
                if matches!(assignment.task, TaskId::Reduce(_))
                    && !stopped_once
                    && worker_failpoint(FAILPOINT_STOP_BEFORE_REDUCE)
                {
                    stopped_once = true;
                    info!("fail point {FAILPOINT_STOP_BEFORE_REDUCE}: stopping before {}", assignment.task);
                    // SAFETY: raise has no memory-safety preconditions.
                    unsafe { libc::raise(libc::SIGSTOP) };
                }
                let timeout = Duration::from_millis(assignment.timeout_ms);
                let code = match &code {
                    JobCode::App(app) => TaskCode::App(app.as_ref()),
                    JobCode::Streaming(spec) => TaskCode::Streaming { spec, timeout: Some(timeout) },
                };
                let report = match &local {
                    None => execute(code, &job, &layout, &mut maps, &mut session, assignment),
                    Some(local) => {
                        execute_sharing_nothing(code, &job, &layout, local, &mut maps, &mut session, assignment)
                    }
                };
                pending = Some(Request::Report(report));
            }
            Reply::Wait => thread::sleep(WAIT_PAUSE),
            Reply::Ack => {}
            Reply::Reported { committed } => {
                if let (Some(local), Request::Report(report), false) = (&local, &request, committed)
                    && let TaskId::Map(m) = report.task
                {
                    // Not the official output: never served, and deleted.
                    forget_output(local, maps.as_ref(), HeldOutput { map: m, attempt: report.attempt });
                }
            }
            Reply::Exit { failure: None } => {
                info!("job {} is done; exiting", job.job);
                return Ok(WorkerExit::JobDone);
            }
            Reply::Exit { failure: Some(reason) } => return Ok(WorkerExit::JobFailed(reason)),
            Reply::Error { reason } => bail!("the coordinator at {} refused: {reason}", options.coordinator),
            other => {
                bail!("the coordinator at {} answered {} with {other:?}", options.coordinator, request_name(&request))
            }
        }
    }
}

fn request_name(request: &Request) -> &'static str {
    match request {
        Request::GetTask => "GetTask",
        Request::Report(_) => "Report",
        Request::Register(_) => "Register",
        Request::ReadInput { .. } => "ReadInput",
        Request::MapOutputs { .. } => "MapOutputs",
        Request::PutOutput { .. } => "PutOutput",
    }
}

fn is_disconnect(e: &anyhow::Error) -> bool {
    e.downcast_ref::<WireError>().is_some_and(WireError::is_disconnect)
}

/// Makes the scratch directory and starts the data server of a worker that shares nothing.
fn start_local(options: &WorkerOptions, job: &JobSpec, session: &Session) -> anyhow::Result<Local> {
    let scratch = ScratchDir::create(options.scratch_dir.as_deref(), job.job)?;
    // Reducers reach this worker the way it reaches the coordinator, unless told otherwise.
    let towards_coordinator = session.writer.get_ref().local_addr().context("reading this worker's address")?.ip();
    let listen =
        options.data_listen.clone().unwrap_or_else(|| std::net::SocketAddr::new(towards_coordinator, 0).to_string());
    let servable: Servable = Arc::new(Mutex::new(std::collections::HashMap::new()));
    let server = ShuffleServer::start(&listen, job.job, scratch.0.clone(), Arc::clone(&servable))
        .with_context(|| format!("serving map outputs on {listen}"))?;
    let mut address = server.address();
    if address.ip().is_unspecified() {
        address.set_ip(towards_coordinator);
    }
    info!("sharing nothing: scratch {}, serving map outputs on {address}", scratch.0.display());
    Ok(Local { scratch, servable, server, data_address: address.to_string() })
}

/// Tells the coordinator how this worker works and what it holds; deletes what the coordinator does not
/// keep.
fn register(
    session: &mut Session,
    local: Option<&Local>,
    maps: Option<&MapsFile>,
    coordinator: &str,
) -> anyhow::Result<()> {
    let registration = match local {
        None => Registration { data_address: None, held: Vec::new() },
        Some(local) => {
            let servable = local.servable.lock().unwrap_or_else(|p| p.into_inner());
            let held = servable.iter().map(|(&map, &(attempt, _))| HeldOutput { map, attempt }).collect();
            Registration { data_address: Some(local.data_address.clone()), held }
        }
    };
    debug_assert!(local.is_none_or(|l| !l.server.address().ip().is_unspecified() || !l.data_address.is_empty()));
    match session.call(&Request::Register(registration))? {
        Reply::Registered { drop } => {
            if let Some(local) = local {
                for output in drop {
                    info!("dropping map task {} {}: not on the coordinator's record", output.map, output.attempt);
                    forget_output(local, maps, output);
                }
            }
            Ok(())
        }
        Reply::Error { reason } => bail!("the coordinator at {coordinator} refused this worker: {reason}"),
        other => bail!("the coordinator at {coordinator} answered Register with {other:?}"),
    }
}

/// Stops serving `output` and discards its bytes (if it is still the one held for its map).
fn forget_output(local: &Local, maps: Option<&MapsFile>, output: HeldOutput) {
    let mut servable = local.servable.lock().unwrap_or_else(|p| p.into_inner());
    let forgotten = match servable.get(&output.map) {
        Some(&(attempt, range)) if attempt == output.attempt => {
            servable.remove(&output.map);
            Some(range)
        }
        _ => None,
    };
    drop(servable);
    if let (Some(range), Some(maps)) = (forgotten, maps)
        && range.file == maps.id()
    {
        maps.discard(range.region);
    }
}

/// This worker's maps file, created at its first map attempt (named by that attempt's id).
fn maps_file<'a>(
    maps: &'a mut Option<MapsFile>,
    layout: &Layout,
    attempt: AttemptId,
) -> Result<&'a mut MapsFile, TaskFailure> {
    if maps.is_none() {
        let created = MapsFile::create(layout, attempt.0).map_err(|e| TaskFailure {
            permanent: false,
            error: format!("creating this worker's map outputs file: {e}"),
        })?;
        *maps = Some(created);
    }
    maps.as_mut().ok_or_else(|| TaskFailure { permanent: false, error: "no map outputs file".into() })
}

/// Runs an attempt on a worker that shares the coordinator's file system: inputs, map outputs and reduce
/// outputs are read and written in place.
fn execute(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    maps: &mut Option<MapsFile>,
    session: &mut Session,
    assignment: Assignment,
) -> Report {
    let Assignment { task, attempt, input, .. } = assignment;
    info!("running {task} {attempt}");
    let started = Instant::now();
    let result = match (task, input) {
        (TaskId::Map(_), Some(split)) => {
            let split =
                InputSplit { path: PathBuf::from(split.path), name: split.name, offset: split.offset, len: split.len };
            maps_file(maps, layout, attempt)
                .and_then(|maps| run_map_code(code, job, layout, maps, attempt, &split))
                .map(Finished::Succeeded)
        }
        (TaskId::Map(_), None) => {
            Err(TaskFailure { permanent: true, error: "coordinator sent a map task without input".into() })
        }
        (TaskId::Reduce(r), _) => map_locations(session, job.map_tasks)
            .map_err(|error| TaskFailure { permanent: false, error })
            .and_then(|outputs| run_reduce_code(code, job, layout, attempt, r, &outputs)),
    };
    report_of(task, attempt, started, result)
}

fn report_of(task: TaskId, attempt: AttemptId, started: Instant, result: Result<Finished, TaskFailure>) -> Report {
    let outcome = match result {
        Ok(Finished::Succeeded(stats)) => {
            debug!("{task} {attempt} done in {:?}", started.elapsed());
            ReportedOutcome::Succeeded(stats)
        }
        Ok(Finished::InputLost { map, map_attempt, reason }) => {
            info!("{task} {attempt}: map task {map}'s output ({map_attempt}) is lost: {reason}");
            ReportedOutcome::InputLost { map, map_attempt, reason: truncated(reason) }
        }
        Err(failure) => {
            // The coordinator warns about failures (once, for every worker); here it is a detail.
            info!("{task} {attempt} failed: {}", failure.error);
            ReportedOutcome::Failed { permanent: failure.permanent, error: truncated(failure.error) }
        }
    };
    Report { task, attempt, outcome }
}

/// Runs an attempt on a worker that shares nothing with the coordinator: the split comes over the
/// connection, map output stays here (served once committed), reduce input is fetched from the workers
/// holding the map outputs, and reduce output goes back over the connection.
fn execute_sharing_nothing(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    local: &Local,
    maps: &mut Option<MapsFile>,
    session: &mut Session,
    assignment: Assignment,
) -> Report {
    let Assignment { task, attempt, input, .. } = assignment;
    info!("running {task} {attempt}");
    let started = Instant::now();
    let result = match (task, input) {
        (TaskId::Map(m), Some(split)) => {
            let outcome = read_remote_split(session, task, attempt, split.len, &split.name).and_then(|contents| {
                let maps = maps_file(maps, layout, attempt)?;
                run_map_text(code, job, layout, maps, attempt, &split.name, contents)
            });
            if let Ok(stats) = &outcome
                && let Some(range) = stats.map_output
            {
                // Servable from now on: the coordinator may commit it and name it to reducers before this
                // worker reads its answer. If it is not committed, the answer says so and it is discarded.
                let previous = local.servable.lock().unwrap_or_else(|p| p.into_inner()).insert(m, (attempt, range));
                if let (Some((previous, old)), Some(maps)) = (previous, maps.as_ref())
                    && previous != attempt
                    && old.file == maps.id()
                {
                    maps.discard(old.region);
                }
            }
            outcome.map(Finished::Succeeded)
        }
        (TaskId::Map(_), None) => {
            Err(TaskFailure { permanent: true, error: "coordinator sent a map task without input".into() })
        }
        (TaskId::Reduce(r), _) => reduce_sharing_nothing(code, job, layout, local, session, attempt, r),
    };
    report_of(task, attempt, started, result)
}

/// Reads a map attempt's split from the coordinator, chunk by chunk, each checked.
fn read_remote_split(
    session: &mut Session,
    task: TaskId,
    attempt: AttemptId,
    len: u64,
    name: &str,
) -> Result<String, TaskFailure> {
    let retry = |error: String| TaskFailure { permanent: false, error };
    let mut bytes = Vec::new();
    bytes
        .try_reserve_exact(usize::try_from(len).unwrap_or(usize::MAX))
        .map_err(|e| retry(format!("input {name}: {e}")))?;
    while (bytes.len() as u64) < len {
        let offset = bytes.len() as u64;
        let reply = session
            .call(&Request::ReadInput { task, attempt, offset })
            .map_err(|e| retry(format!("reading input {name} from the coordinator: {e}")))?;
        let chunk = match reply {
            Reply::InputChunk(chunk) => chunk,
            Reply::Stop { reason } => return Err(retry(reason)),
            other => return Err(retry(format!("the coordinator answered ReadInput with {other:?}"))),
        };
        chunk.check().map_err(|e| retry(format!("input {name}: {e}")))?;
        if chunk.offset != offset || chunk.data.is_empty() || offset + chunk.data.len() as u64 > len {
            return Err(retry(format!(
                "input {name}: the coordinator sent {} bytes at offset {} when bytes {offset}..{len} were due",
                chunk.data.len(),
                chunk.offset
            )));
        }
        bytes.extend_from_slice(&chunk.data);
    }
    // The offset in the message is within the split; the coordinator's error names the file.
    text(bytes, name, 0).map_err(|e| TaskFailure { permanent: true, error: e.to_string() })
}

/// A reduce attempt on a worker that shares nothing: where is every map's output, fetch this partition of
/// each (from this worker's own maps file directly), reduce, send the output to the coordinator.
#[allow(clippy::too_many_arguments)]
fn reduce_sharing_nothing(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    local: &Local,
    session: &mut Session,
    attempt: AttemptId,
    reduce: u32,
) -> Result<Finished, TaskFailure> {
    let retry = |error: String| TaskFailure { permanent: false, error };
    let locations = map_locations(session, job.map_tasks).map_err(retry)?;
    let mut own: Vec<MapOutputAt> = Vec::new();
    let mut by_worker: BTreeMap<&str, Vec<HeldOutput>> = BTreeMap::new();
    for output in &locations {
        let Some(location) = &output.location else {
            return Ok(Finished::InputLost {
                map: output.map,
                map_attempt: AttemptId(0),
                reason: "its output is not available now (the map is running again)".into(),
            });
        };
        match location.address.as_deref() {
            // Held here: read in place, no copy.
            Some(address) if address == local.data_address => own.push(output.clone()),
            Some(address) => {
                by_worker.entry(address).or_default().push(HeldOutput { map: output.map, attempt: location.attempt })
            }
            None => {
                return Err(retry(format!(
                    "the coordinator listed map task {}'s output as on a shared file system, which this worker \
                     does not see",
                    output.map
                )));
            }
        }
    }
    let mut inputs = ReduceInputs::default();
    if let Err(lost) = crate::task_exec::read_map_outputs(job, layout, reduce, &own, &mut inputs) {
        let reason = format!("this worker's own copy: {}", lost.reason);
        return Ok(Finished::InputLost { map: lost.map, map_attempt: lost.map_attempt, reason });
    }
    let input_path = layout.work_dir.join(format!("attempt-{}.in", attempt.0));
    let fetched = (|| -> Result<Result<(), Finished>, TaskFailure> {
        if by_worker.is_empty() {
            return Ok(Ok(()));
        }
        // Fetched runs land here; small ones are read back into memory at once.
        let mut input = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&input_path)
            .map_err(|e| retry(format!("creating {}: {e}", input_path.display())))?;
        let mut position = 0u64;
        for (address, maps) in &by_worker {
            match fetch_partitions(address, job.job, reduce, job.reduce_tasks, maps, &mut input, &mut position) {
                Ok(fetched) => {
                    // In the order asked for.
                    for (held, (m, segment)) in maps.iter().zip(fetched) {
                        debug_assert_eq!(held.map, m);
                        inputs
                            .add_segment((m, held.attempt), &input, &input_path, segment)
                            .map_err(|e| retry(format!("reading fetched data back: {e}")))?;
                    }
                }
                Err(failure) => {
                    let lost =
                        Finished::InputLost { map: failure.map, map_attempt: failure.attempt, reason: failure.reason };
                    return Ok(Err(lost));
                }
            }
        }
        Ok(Ok(()))
    })();
    let result = match fetched {
        Ok(Ok(())) => {
            let (runs, blame) = inputs.into_runs();
            run_reduce_runs(code, job, layout, attempt, reduce, runs, &blame)
        }
        Ok(Err(lost)) => Ok(lost),
        Err(failure) => Err(failure),
    };
    let _ = fs::remove_file(&input_path);
    let stats = match result? {
        Finished::Succeeded(stats) => stats,
        lost @ Finished::InputLost { .. } => return Ok(lost),
    };
    let output_path = layout.reduce_attempt_output(attempt, reduce);
    let sent = send_output(session, TaskId::Reduce(reduce), attempt, &output_path);
    let _ = fs::remove_file(&output_path);
    sent.map_err(retry)?;
    Ok(Finished::Succeeded(stats))
}

/// Every map's output location, page by page.
fn map_locations(session: &mut Session, maps: u32) -> Result<Vec<MapOutputAt>, String> {
    let mut locations: Vec<MapOutputAt> = Vec::with_capacity(maps as usize);
    while (locations.len() as u64) < u64::from(maps) {
        let first_map = locations.len() as u32;
        let outputs = match session.call(&Request::MapOutputs { first_map }) {
            Ok(Reply::MapOutputs { outputs }) => outputs,
            Ok(other) => return Err(format!("the coordinator answered MapOutputs with {other:?}")),
            Err(e) => return Err(format!("asking the coordinator where map outputs are: {e}")),
        };
        if outputs.is_empty() {
            return Err(format!("the coordinator listed {first_map} of {maps} map outputs"));
        }
        for (i, output) in outputs.into_iter().enumerate() {
            if output.map != first_map + i as u32 {
                return Err(format!(
                    "the coordinator listed map {} where map {} was due",
                    output.map,
                    first_map + i as u32
                ));
            }
            locations.push(output);
        }
    }
    locations.truncate(maps as usize);
    Ok(locations)
}

/// Sends a reduce attempt's output file to the coordinator in checked chunks (at least one, so an empty
/// output is a file too).
fn send_output(session: &mut Session, task: TaskId, attempt: AttemptId, path: &Path) -> Result<(), String> {
    let mut file = File::open(path).map_err(|e| format!("opening {}: {e}", path.display()))?;
    let mut offset = 0u64;
    loop {
        let mut data = vec![0u8; CHUNK_BYTES_MAX];
        let mut filled = 0;
        while filled < data.len() {
            match file.read(&mut data[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("reading {}: {e}", path.display())),
            }
        }
        data.truncate(filled);
        let chunk = Chunk::new(offset, data);
        match session.call(&Request::PutOutput { task, attempt, chunk }) {
            Ok(Reply::Ack) => {}
            Ok(Reply::Stop { reason }) => return Err(reason),
            Ok(other) => return Err(format!("the coordinator answered PutOutput with {other:?}")),
            Err(e) => return Err(format!("sending output to the coordinator: {e}")),
        }
        offset += filled as u64;
        if filled < CHUNK_BYTES_MAX {
            return Ok(());
        }
    }
}

fn truncated(mut message: String) -> String {
    if message.len() > ERROR_MESSAGE_BYTES_MAX {
        let mut end = ERROR_MESSAGE_BYTES_MAX;
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push_str("... (truncated)");
    }
    message
}

/// Connects and shakes hands, retrying for [`CONNECT_PATIENCE`]. `Ok(None)` if nobody answers; an error if
/// the coordinator refuses this worker (another job, another protocol version).
fn connect(address: &str, job: Option<JobId>) -> anyhow::Result<Option<(Session, JobSpec)>> {
    let give_up_at = Instant::now() + CONNECT_PATIENCE;
    loop {
        let error = match try_connect(address) {
            Ok(stream) => match handshake(stream, address, job) {
                Ok(joined) => return Ok(Some(joined)),
                // Connected, then cut off before an answer: a coordinator that is exiting (its socket still
                // accepts for a moment) or restarting. Same as not answering at all.
                Err(HandshakeError::Lost(e)) => e.to_string(),
                Err(HandshakeError::Refused(e)) => return Err(e),
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() >= give_up_at {
            debug!("connecting to {address}: {error}; giving up");
            return Ok(None);
        }
        debug!("connecting to {address}: {error}; retrying");
        thread::sleep(CONNECT_RETRY);
    }
}

enum HandshakeError {
    /// The connection broke during the handshake.
    Lost(WireError),
    /// The coordinator answered, and the answer means this worker cannot join.
    Refused(anyhow::Error),
}

impl From<WireError> for HandshakeError {
    fn from(e: WireError) -> Self {
        if e.is_disconnect() { HandshakeError::Lost(e) } else { HandshakeError::Refused(e.into()) }
    }
}

impl From<std::io::Error> for HandshakeError {
    fn from(e: std::io::Error) -> Self {
        HandshakeError::from(WireError::Io(e))
    }
}

fn try_connect(address: &str) -> std::io::Result<TcpStream> {
    let mut last_error = std::io::Error::other(format!("{address} resolves to no address"));
    for addr in address.to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
            Ok(stream) => return Ok(stream),
            Err(e) => last_error = e,
        }
    }
    Err(last_error)
}

fn handshake(stream: TcpStream, address: &str, job: Option<JobId>) -> Result<(Session, JobSpec), HandshakeError> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    let mut session = Session { reader: BufReader::new(stream.try_clone()?), writer: BufWriter::new(stream) };
    let hello = Hello { magic: PROTOCOL_MAGIC, protocol_version: PROTOCOL_VERSION, job, pid: std::process::id() };
    wire::send(&mut session.writer, &hello)?;
    let reply: HelloReply = wire::receive(&mut session.reader).map_err(|e| match HandshakeError::from(e) {
        HandshakeError::Refused(e) => {
            HandshakeError::Refused(e.context(format!("handshake with the coordinator at {address}")))
        }
        lost => lost,
    })?;
    let refused = |message: String| Err(HandshakeError::Refused(anyhow::anyhow!(message)));
    match reply {
        HelloReply::Rejected { reason } => {
            refused(format!("the coordinator at {address} refused this worker: {reason}"))
        }
        HelloReply::Welcome { protocol_version, job: spec } => {
            if protocol_version != PROTOCOL_VERSION {
                return refused(format!(
                    "the coordinator at {address} speaks protocol version {protocol_version}, this worker {PROTOCOL_VERSION}"
                ));
            }
            if let Some(job) = job
                && job != spec.job
            {
                return refused(format!("the coordinator at {address} runs job {}, not job {job}", spec.job));
            }
            Ok((session, spec))
        }
    }
}
