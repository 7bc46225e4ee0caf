//! Messages between coordinator and workers.
//!
//! A worker connects and sends [`Hello`]; the coordinator answers [`HelloReply`]. `Hello` and
//! `HelloReply::Rejected` are frozen: every past and future version encodes them the same way, so a worker
//! of another version always gets a readable "wrong version" answer instead of a decode error. After a
//! `Welcome`, the worker sends [`Request`]s and gets one [`Reply`] each, on the same connection.
use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::streaming::StreamingSpec;
use crate::task_table::{AttemptId, TaskId};

/// Starts every `Hello`, so the coordinator can tell a keel worker from anything else on the port.
pub const PROTOCOL_MAGIC: [u8; 8] = *b"KEELMR\r\n";
/// Bumped on any change to the messages after the handshake (2: user counters in `TaskStats`, streaming jobs, attempt timeouts).
pub const PROTOCOL_VERSION: u32 = 2;

/// Names one job: chosen at random by the coordinator at start. A worker that was part of one job and
/// reconnects to a coordinator running another is refused, so it cannot mix files of two jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct JobId(pub u64);

impl std::fmt::Display for JobId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

impl std::str::FromStr for JobId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<JobId, Self::Err> {
        u64::from_str_radix(s, 16).map(JobId)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 8],
    pub protocol_version: u32,
    /// The job this worker belongs to, if it already knows (reconnecting, or started with `--job`).
    pub job: Option<JobId>,
    pub pid: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Frozen as variant 0 with a single string, see the module docs.
    Rejected {
        reason: String,
    },
    Welcome {
        protocol_version: u32,
        job: JobSpec,
    },
}

/// Everything a worker needs to know about the job. Paths are absolute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobSpec {
    pub job: JobId,
    pub app: String,
    pub map_tasks: u32,
    pub reduce_tasks: u32,
    /// Intermediate files (map outputs and attempts' scratch space).
    pub work_dir: String,
    /// Reduce attempts' output before commit; on the output directory's file system so a rename can
    /// publish it.
    pub staging_dir: String,
    pub memory_budget_bytes: u64,
    /// Set for a streaming job (`--mapper` / `--reducer`): workers run these programs instead of an app.
    pub streaming: Option<StreamingSpec>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Give me a task (the coordinator may hold the request a little while none is ready).
    GetTask,
    Report(Report),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub task: TaskId,
    pub attempt: AttemptId,
    pub outcome: ReportedOutcome,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportedOutcome {
    Succeeded(TaskStats),
    Failed { permanent: bool, error: String },
}

/// What one attempt read and wrote; counted in the job's totals only for attempts that were committed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskStats {
    pub input_bytes: u64,
    pub output_bytes: u64,
    pub records: u64,
    pub spills: u64,
    /// The worker process's peak resident memory so far (Linux `VmHWM`), 0 where unknown.
    pub worker_peak_rss_bytes: u64,
    /// The app's user counters of this attempt; added to the job's totals only if it is committed.
    pub counters: Counters,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Run(Assignment),
    /// Nothing to do right now; ask again.
    Wait,
    /// The job is over; exit. `failure` is set when it failed.
    Exit {
        failure: Option<String>,
    },
    /// The report was received (whatever became of it).
    Ack,
    /// The request was refused; the worker should give up.
    Error {
        reason: String,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub task: TaskId,
    pub attempt: AttemptId,
    /// For map tasks: the split to read.
    pub input: Option<SplitSpec>,
    /// The attempt's timeout (`--task-timeout`, doubled for each earlier timeout of the task), in ms: a
    /// streaming program still running after it is killed.
    pub timeout_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitSpec {
    pub path: String,
    pub name: String,
    pub offset: u64,
    pub len: u64,
}
