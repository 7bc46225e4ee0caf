//! Messages between coordinator and workers.
//!
//! A worker connects and sends [`Hello`]; the coordinator answers [`HelloReply`]. `Hello` and
//! `HelloReply::Rejected` are frozen: every past and future version encodes them the same way, so a worker
//! of another version always gets a readable "wrong version" answer instead of a decode error. After a
//! `Welcome`, the worker sends [`Request`]s and gets one [`Reply`] each, on the same connection.
use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::maps_file::MapOutputRange;
use crate::streaming::StreamingSpec;
use crate::task_table::{AttemptId, TaskId};

/// Starts every `Hello`, so the coordinator can tell a keel worker from anything else on the port.
pub const PROTOCOL_MAGIC: [u8; 8] = *b"KEELMR\r\n";
/// Bumped on any change to the messages after the handshake (2: user counters in `TaskStats`, streaming jobs,
/// attempt timeouts; 3: workers that share nothing: `Register`, input and output over the connection, map
/// output locations, lost map outputs, and the worker-to-worker fetch protocol in `shuffle`; 4: map outputs
/// are byte ranges of a worker's maps file, reported in `TaskStats` and listed to every reducer).
pub const PROTOCOL_VERSION: u32 = 4;
/// Largest data chunk in one frame (an input chunk, a piece of reduce output, a piece of a fetched
/// partition): well under [`crate::wire::MAX_FRAME_BYTES`] with room for the rest of the message, and
/// large enough that a 64 MiB split is 256 round trips.
pub const CHUNK_BYTES_MAX: usize = 256 * 1024;
/// Most map output locations in one `MapOutputs` reply (about 30 bytes each): the 1 MiB frame bound.
pub const MAP_OUTPUTS_PER_REPLY_MAX: usize = 16 * 1024;
/// Most held map outputs a worker announces in one `Register`.
pub const HELD_OUTPUTS_PER_REGISTER_MAX: usize = 16 * 1024;

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
    /// Sent once after `Welcome` (and again after every reconnection) by workers of version 3. A worker
    /// that never sends it is a shared-file-system worker.
    Register(Registration),
    /// A shared-nothing worker reads its map attempt's split from the coordinator, chunk by chunk: bytes
    /// from `offset` (relative to the split's start). Answered `InputChunk` or `Stop`.
    ReadInput {
        task: TaskId,
        attempt: AttemptId,
        offset: u64,
    },
    /// A shared-nothing reducer asks where map outputs are, from map `first_map` on. Answered `MapOutputs`.
    MapOutputs {
        first_map: u32,
    },
    /// A shared-nothing reducer sends a piece of its attempt's output, in order, from offset 0 (a chunk at
    /// offset 0 starts the file over). Answered `Ack` or `Stop`.
    PutOutput {
        task: TaskId,
        attempt: AttemptId,
        chunk: Chunk,
    },
}

/// How a worker works and what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// `None`: the worker sees the coordinator's files (`--shared-fs`). `Some(host:port)`: it shares
    /// nothing, and serves its committed map outputs to reducers at this address.
    pub data_address: Option<String>,
    /// Committed map outputs this worker still holds (after a reconnection, say to a coordinator that was
    /// restarted): the coordinator keeps those its journal has on record and tells it to drop the others.
    pub held: Vec<HeldOutput>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldOutput {
    pub map: u32,
    pub attempt: AttemptId,
}

/// A piece of a file sent over a connection, checked end to end: `crc32c` is computed where the bytes are
/// read from disk and checked where they are used, so damage anywhere between is an error, never data.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    pub offset: u64,
    pub data: Vec<u8>,
    pub crc32c: u32,
}

impl Chunk {
    pub fn new(offset: u64, data: Vec<u8>) -> Chunk {
        let crc32c = crc32c::crc32c(&data);
        Chunk { offset, data, crc32c }
    }

    /// `Ok` if the data is what the sender read.
    pub fn check(&self) -> Result<(), String> {
        if self.data.len() > CHUNK_BYTES_MAX {
            return Err(format!(
                "chunk at offset {} is {} bytes, over the limit of {CHUNK_BYTES_MAX}",
                self.offset,
                self.data.len()
            ));
        }
        let actual = crc32c::crc32c(&self.data);
        if actual != self.crc32c {
            return Err(format!(
                "checksum mismatch in the {}-byte chunk at offset {} (crc32c {actual:08x}, sent {:08x})",
                self.data.len(),
                self.offset,
                self.crc32c
            ));
        }
        Ok(())
    }
}

/// Where map `map`'s committed output is. `None` when the output is not available right now (lost, its map
/// running again).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapOutputAt {
    pub map: u32,
    pub location: Option<MapOutputLocation>,
}

/// The committed attempt of a map and where its output is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MapOutputLocation {
    pub attempt: AttemptId,
    /// The byte range of the maps file that holds it (in the job's work directory when workers share the
    /// file system, in its worker's scratch directory otherwise). Always known for workers of this version.
    pub output: Option<MapOutputRange>,
    /// Workers that share nothing: the data address of the worker that holds it and serves it. `None` when
    /// workers share the file system: read it in place.
    pub address: Option<String>,
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
    Failed {
        permanent: bool,
        error: String,
    },
    /// A reduce attempt could not fetch map `map`'s output (`map_attempt`'s, on record): the worker holding
    /// it is gone, or sent damaged data. The coordinator runs that map again (the paper's section 3.3) and
    /// the reduce attempt ends without counting as a failure.
    InputLost {
        map: u32,
        map_attempt: AttemptId,
        reason: String,
    },
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
    /// A map attempt's output: where it is in its worker's maps file. Journaled with the commit, so a
    /// restarted coordinator finds it again.
    pub map_output: Option<MapOutputRange>,
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
    /// Answer to `Register`: map outputs the worker holds that are not (or no longer) on record; it deletes
    /// them and never serves them.
    Registered {
        drop: Vec<HeldOutput>,
    },
    InputChunk(Chunk),
    /// Locations of maps `first_map..`, in order, at most [`MAP_OUTPUTS_PER_REPLY_MAX`]; empty past the
    /// last map.
    MapOutputs {
        outputs: Vec<MapOutputAt>,
    },
    /// Answer to a shared-nothing worker's `Report`: whether its attempt is the task's committed one. A map
    /// worker serves a committed output and deletes any other.
    Reported {
        committed: bool,
    },
    /// The attempt this request is for no longer matters (or the request was malformed); stop it and
    /// report (the report will be ignored).
    Stop {
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
