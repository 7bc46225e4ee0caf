//! The worker loop: join the coordinator's job, then ask for a task, run it, report, until told to exit or
//! the coordinator is gone. Public so that a user's own binary can run it with its own apps.
//!
//! ```no_run
//! use keel_mr::{AppRegistry, worker::{WorkerOptions, run_worker}};
//! let apps = AppRegistry::builtin(); // plus `apps.register("mine", Arc::new(Mine))`
//! let options = WorkerOptions { coordinator: "127.0.0.1:7000".into(), job: None };
//! let exit = run_worker(&options, &apps)?;
//! # Ok::<(), anyhow::Error>(())
//! ```
use std::io::{BufReader, BufWriter};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use tracing::{debug, info};

use crate::app::{App, AppRegistry};
use crate::input::InputSplit;
use crate::layout::Layout;
use crate::protocol::{
    Assignment, Hello, HelloReply, JobId, JobSpec, PROTOCOL_MAGIC, PROTOCOL_VERSION, Reply, Report, ReportedOutcome,
    Request,
};
use crate::streaming::StreamingSpec;
use crate::task_exec::{TaskCode, run_map_code, run_reduce_code};
use crate::task_table::TaskId;
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
/// Pause after a `Wait` answer, in case the coordinator answers without holding the request.
const WAIT_PAUSE: Duration = Duration::from_millis(20);

#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// The coordinator's address, `host:port`.
    pub coordinator: String,
    /// Refuse to work for any other job than this one.
    pub job: Option<JobId>,
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
    info!("joined job {} (app {}, {} maps, {} reduces)", job.job, job.app, job.map_tasks, job.reduce_tasks);
    let layout = Layout { work_dir: PathBuf::from(&job.work_dir), staging_dir: PathBuf::from(&job.staging_dir) };
    let mut pending: Option<Request> = None;
    loop {
        let request = pending.take().unwrap_or(Request::GetTask);
        let reply = match session.call(&request) {
            Ok(reply) => reply,
            Err(e) if e.is_disconnect() => {
                debug!("lost the coordinator: {e}; reconnecting");
                match connect(&options.coordinator, Some(job.job))? {
                    Some((new_session, _)) => {
                        session = new_session;
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
                let timeout = Duration::from_millis(assignment.timeout_ms);
                let code = match &code {
                    JobCode::App(app) => TaskCode::App(app.as_ref()),
                    JobCode::Streaming(spec) => TaskCode::Streaming { spec, timeout: Some(timeout) },
                };
                pending = Some(Request::Report(execute(code, &job, &layout, assignment)));
            }
            Reply::Wait => thread::sleep(WAIT_PAUSE),
            Reply::Ack => {}
            Reply::Exit { failure: None } => {
                info!("job {} is done; exiting", job.job);
                return Ok(WorkerExit::JobDone);
            }
            Reply::Exit { failure: Some(reason) } => return Ok(WorkerExit::JobFailed(reason)),
            Reply::Error { reason } => bail!("the coordinator at {} refused: {reason}", options.coordinator),
        }
    }
}

fn execute(code: TaskCode<'_>, job: &JobSpec, layout: &Layout, assignment: Assignment) -> Report {
    let Assignment { task, attempt, input, .. } = assignment;
    info!("running {task} {attempt}");
    let started = Instant::now();
    let result = match (task, input) {
        (TaskId::Map(_), Some(split)) => {
            let split =
                InputSplit { path: PathBuf::from(split.path), name: split.name, offset: split.offset, len: split.len };
            run_map_code(code, job, layout, attempt, &split)
        }
        (TaskId::Map(_), None) => Err(crate::task_exec::TaskFailure {
            permanent: true,
            error: "coordinator sent a map task without input".into(),
        }),
        (TaskId::Reduce(r), _) => run_reduce_code(code, job, layout, attempt, r),
    };
    let outcome = match result {
        Ok(stats) => {
            debug!("{task} {attempt} done in {:?}", started.elapsed());
            ReportedOutcome::Succeeded(stats)
        }
        Err(failure) => {
            // The coordinator warns about failures (once, for every worker); here it is a detail.
            info!("{task} {attempt} failed: {}", failure.error);
            ReportedOutcome::Failed { permanent: failure.permanent, error: truncated(failure.error) }
        }
    };
    Report { task, attempt, outcome }
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
