//! Running one attempt of a task on a worker: read the input, call the app, write the attempt's files
//! under names derived from the attempt id (a reduce's output fsynced; a map's one output file not, as it
//! is recomputable). The worker never renames anything into a committed
//! place; the coordinator does that if, and only if, this attempt is still the one on record.
use std::any::Any;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;
use std::time::Duration;

use crate::app::{App, Combiner};
use crate::counters::Counters;
use crate::input::{InputSplit, read_split};
use crate::layout::Layout;
use crate::map_file::{Segment, locate_partition};
use crate::map_output::MapOutput;
use crate::memory::own_peak_rss_bytes;
use crate::merge::{MERGE_OPEN_RUNS_MAX, MergedRuns, Run, fits_one_merge, narrow_runs};
use crate::protocol::{JobSpec, TaskStats};
use crate::records::RecordError;
use crate::streaming::{Program, StreamingSpec, run_mapper, run_reducer};
use crate::task_table::AttemptId;

/// Why an attempt failed. `permanent` failures (bad input) fail the job instead of being retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskFailure {
    pub permanent: bool,
    pub error: String,
}

impl TaskFailure {
    fn retryable(error: impl ToString) -> TaskFailure {
        TaskFailure { permanent: false, error: error.to_string() }
    }
}

/// A reduce reads a map's partition into memory when it is at most this large ...
const MEMORY_RUN_BYTES_MAX: u64 = 64 * 1024;
/// ... and the partitions it holds in memory so far total at most this: half the merge's buffer budget, so a
/// reduce's memory stays bounded by constants whatever the number of maps.
const MEMORY_RUNS_BYTES_MAX: u64 = crate::merge::MERGE_BUFFER_BYTES_MAX / 2;
/// Output buffer for reduce output files.
const OUTPUT_BUFFER_BYTES: usize = 256 * 1024;

/// The code a task runs: a registered app's functions, or a streaming job's programs.
#[derive(Clone, Copy)]
pub enum TaskCode<'a> {
    App(&'a dyn App),
    /// `timeout`: how long a program may run before it is killed (the attempt's timeout).
    Streaming {
        spec: &'a StreamingSpec,
        timeout: Option<Duration>,
    },
}

impl TaskCode<'_> {
    fn combiner(&self) -> Option<&dyn Combiner> {
        match self {
            TaskCode::App(app) => app.combiner(),
            // A program's output cannot be fed back to it as a value without a contract for that.
            TaskCode::Streaming { .. } => None,
        }
    }
}

pub fn run_map(
    app: &dyn App,
    job: &JobSpec,
    layout: &Layout,
    attempt: AttemptId,
    split: &InputSplit,
) -> Result<TaskStats, TaskFailure> {
    run_map_code(TaskCode::App(app), job, layout, attempt, split)
}

pub fn run_map_code(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    attempt: AttemptId,
    split: &InputSplit,
) -> Result<TaskStats, TaskFailure> {
    let contents = read_split(split).map_err(|e| TaskFailure { permanent: true, error: e.to_string() })?;
    run_map_text(code, job, layout, attempt, &split.name, contents)
}

/// Runs a map attempt on a split already read (from a path, or from the coordinator by a worker that shares
/// nothing with it) and writes its one output file, `layout.attempt_map_file(attempt)`.
pub fn run_map_text(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    attempt: AttemptId,
    name: &str,
    contents: String,
) -> Result<TaskStats, TaskFailure> {
    // Spills (rare) go into the attempt's scratch directory, made only if needed. Its output file is
    // created in the work directory without `create_dir_all`: if the work directory is gone the job is
    // over, and a late attempt must not bring it back.
    let scratch = layout.attempt_dir(attempt);
    let result = map_into(code, job, layout, attempt, name, contents, &scratch);
    let _ = fs::remove_dir_all(&scratch);
    if result.is_err() {
        // A failed attempt is never committed, and nobody else knows of its file until the job ends.
        let _ = fs::remove_file(layout.attempt_map_file(attempt));
    }
    result
}

fn map_into(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    attempt: AttemptId,
    name: &str,
    contents: String,
    dir: &std::path::Path,
) -> Result<TaskStats, TaskFailure> {
    let input_bytes = contents.len() as u64;
    let budget = usize::try_from(job.memory_budget_bytes).unwrap_or(usize::MAX);
    let mut output = MapOutput::new(job.reduce_tasks, code.combiner(), budget, dir);
    let mut counters = Counters::new();
    match code {
        TaskCode::App(app) => catch_unwind(AssertUnwindSafe(|| {
            app.map_with_counters(name, &contents, &mut |k, v| output.emit(k, v), &mut counters)
        }))
        .map_err(|panic| {
            TaskFailure::retryable(format!("app {:?} panicked in map: {}", job.app, panic_message(&panic)))
        })?,
        TaskCode::Streaming { spec, timeout } => {
            let program = Program {
                role: "mapper",
                command: &spec.mapper,
                env: vec![("KEEL_MR_INPUT", name.to_string())],
                timeout,
            };
            counters = run_mapper(&program, contents.as_bytes(), &mut |k, v| output.emit(k, v))
                .map_err(TaskFailure::retryable)?;
        }
    }
    drop(contents);
    check_counters(job, &counters)?;
    // No fsync of the file or the directory: a map output lost to a crash is a re-executed map.
    let stats = output
        .finish(&layout.attempt_map_file(attempt))
        .map_err(|e| TaskFailure::retryable(format!("writing map output: {e}")))?;
    Ok(TaskStats {
        input_bytes,
        output_bytes: stats.bytes_written,
        records: stats.records_emitted,
        spills: stats.spills,
        worker_peak_rss_bytes: own_peak_rss_bytes(),
        counters,
    })
}

/// A misused counter fails the attempt for good: a deterministic app would misuse it again on any worker.
fn check_counters(job: &JobSpec, counters: &Counters) -> Result<(), TaskFailure> {
    match counters.error() {
        Some(e) => Err(TaskFailure { permanent: true, error: format!("app {:?}: {e}", job.app) }),
        None => Ok(()),
    }
}

enum ReduceError {
    Record(RecordError),
    Write(io::Error),
    Panic(String),
    /// A streaming program failed (the message says how).
    Program(String),
}

impl From<RecordError> for ReduceError {
    fn from(e: RecordError) -> Self {
        ReduceError::Record(e)
    }
}

pub fn run_reduce(
    app: &dyn App,
    job: &JobSpec,
    layout: &Layout,
    attempt: AttemptId,
    reduce: u32,
) -> Result<TaskStats, TaskFailure> {
    run_reduce_code(TaskCode::App(app), job, layout, attempt, reduce)
}

pub fn run_reduce_code(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    attempt: AttemptId,
    reduce: u32,
) -> Result<TaskStats, TaskFailure> {
    // Every map's index is read and checked before any merging starts, so a missing or damaged map output
    // fails the attempt at once, naming the file, and the runs' sizes are known to the merge.
    let mut inputs = Vec::with_capacity(job.map_tasks as usize);
    let mut in_memory_bytes = 0u64;
    for m in 0..job.map_tasks {
        let path = layout.map_file(m);
        let (file, segment) = locate_partition(&path, reduce, job.reduce_tasks)
            .map_err(|e| TaskFailure::retryable(format!("reduce input: {e}")))?;
        let run = reduce_input_run(&file, path, segment, &mut in_memory_bytes)
            .map_err(|e| TaskFailure::retryable(format!("reduce input: {e}")))?;
        inputs.push(run);
    }
    run_reduce_runs(code, job, layout, attempt, reduce, inputs)
}

/// One map's partition as a reduce's input run. Small ones (thousands of small maps) are read now, through
/// `file`, the descriptor their index was read with: each would otherwise be opened again by the merge, and
/// merged in passes for want of descriptors (about four system calls and a share of a scratch file per map
/// and reduce; at 2,000 maps and 50 reduces, most of the reduce phase). `in_memory_bytes` bounds them.
pub fn reduce_input_run(file: &File, path: PathBuf, segment: Segment, in_memory_bytes: &mut u64) -> io::Result<Run> {
    if segment.len_bytes > MEMORY_RUN_BYTES_MAX || *in_memory_bytes + segment.len_bytes > MEMORY_RUNS_BYTES_MAX {
        return Ok(Run::Segment { path, segment });
    }
    let mut bytes = vec![0u8; segment.len_bytes as usize];
    std::os::unix::fs::FileExt::read_exact_at(file, &mut bytes, segment.offset_bytes)
        .map_err(|e| io::Error::new(e.kind(), format!("reading {}: {e}", path.display())))?;
    *in_memory_bytes += segment.len_bytes;
    Ok(Run::Memory { path, offset_bytes: segment.offset_bytes, bytes: std::sync::Arc::new(bytes) })
}

/// Runs a reduce attempt over its partition's runs (`Run::Segment`s, one per map: in the shared map files,
/// or fetched into the reducer's scratch) and writes `layout.reduce_attempt_output(attempt, reduce)`,
/// fsynced.
pub fn run_reduce_runs(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    attempt: AttemptId,
    reduce: u32,
    inputs: Vec<Run>,
) -> Result<TaskStats, TaskFailure> {
    let input_bytes = inputs
        .iter()
        .map(|run| match run {
            Run::Segment { segment, .. } => segment.len_bytes,
            Run::Memory { bytes, .. } => bytes.len() as u64,
            Run::File(_) | Run::Partition { .. } => 0,
        })
        .sum();
    let scratch = layout.attempt_dir(attempt);
    let runs = if !fits_one_merge(&inputs, MERGE_OPEN_RUNS_MAX) {
        fs::create_dir(&scratch).map_err(|e| TaskFailure::retryable(format!("creating {}: {e}", scratch.display())))?;
        narrow_runs(inputs, MERGE_OPEN_RUNS_MAX, &scratch, "merge", None).map_err(|e| {
            let _ = fs::remove_dir_all(&scratch);
            TaskFailure::retryable(format!("merging reduce input: {e}"))
        })?
    } else {
        inputs
    };
    let out_path = layout.reduce_attempt_output(attempt, reduce);
    let mut counters = Counters::new();
    let result = match code {
        TaskCode::App(app) => write_reduce_output(app, &runs, &out_path, &mut counters),
        TaskCode::Streaming { spec, timeout } => {
            let program = Program {
                role: "reducer",
                command: &spec.reducer,
                env: vec![("KEEL_MR_PARTITION", reduce.to_string())],
                timeout,
            };
            write_streaming_output(&program, &runs, &out_path, &mut counters)
        }
    };
    let _ = fs::remove_dir_all(&scratch);
    if result.is_err() {
        // A failed attempt is never committed: remove its partial output now rather than at the job's end.
        let _ = fs::remove_file(&out_path);
    }
    let (records, output_bytes) = result.map_err(|e| match e {
        ReduceError::Record(e) => TaskFailure::retryable(format!("reading reduce input: {e}")),
        ReduceError::Write(e) => TaskFailure::retryable(format!("writing {}: {e}", out_path.display())),
        ReduceError::Panic(message) => {
            TaskFailure::retryable(format!("app {:?} panicked in reduce: {message}", job.app))
        }
        ReduceError::Program(message) => TaskFailure::retryable(message),
    })?;
    if let Err(failure) = check_counters(job, &counters) {
        let _ = fs::remove_file(&out_path);
        return Err(failure);
    }
    Ok(TaskStats {
        input_bytes,
        output_bytes,
        records,
        spills: 0,
        worker_peak_rss_bytes: own_peak_rss_bytes(),
        counters,
    })
}

/// Streams the merged runs through `reduce`, one `key value` line per key. Returns (keys, bytes written).
fn write_reduce_output(
    app: &dyn App,
    runs: &[Run],
    out_path: &std::path::Path,
    counters: &mut Counters,
) -> Result<(u64, u64), ReduceError> {
    let mut merged = MergedRuns::open(runs)?;
    let file = File::create(out_path).map_err(ReduceError::Write)?;
    let mut out = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file);
    let (mut keys, mut bytes) = (0u64, 0u64);
    merged.for_each_group(|key, values| -> Result<(), ReduceError> {
        let value = catch_unwind(AssertUnwindSafe(|| app.reduce_with_counters(key, values, counters)))
            .map_err(|panic| ReduceError::Panic(panic_message(&panic)))?;
        out.write_all(key.as_bytes()).map_err(ReduceError::Write)?;
        out.write_all(b" ").map_err(ReduceError::Write)?;
        out.write_all(value.as_bytes()).map_err(ReduceError::Write)?;
        out.write_all(b"\n").map_err(ReduceError::Write)?;
        keys += 1;
        bytes += (key.len() + value.len() + 2) as u64;
        Ok(())
    })?;
    let file = out.into_inner().map_err(|e| ReduceError::Write(e.into_error()))?;
    file.sync_all().map_err(ReduceError::Write)?;
    Ok((keys, bytes))
}

/// Streams the merged runs through a reducer program; its output lines are the file. Returns (lines, bytes
/// written).
fn write_streaming_output(
    program: &Program<'_>,
    runs: &[Run],
    out_path: &std::path::Path,
    counters: &mut Counters,
) -> Result<(u64, u64), ReduceError> {
    let mut merged = MergedRuns::open(runs)?;
    let file = File::create(out_path).map_err(ReduceError::Write)?;
    let mut out = BufWriter::with_capacity(OUTPUT_BUFFER_BYTES, file);
    let (mut lines, mut bytes) = (0u64, 0u64);
    let mut write_error = None;
    let reported = run_reducer(program, || merged.next_record(), &mut |line| {
        out.write_all(line).map_err(|e| {
            let message = format!("writing {}: {e}", out_path.display());
            write_error = Some(e);
            message
        })?;
        lines += 1;
        bytes += line.len() as u64;
        Ok(())
    });
    if let Some(e) = write_error {
        return Err(ReduceError::Write(e));
    }
    *counters = reported.map_err(ReduceError::Program)?;
    let file = out.into_inner().map_err(|e| ReduceError::Write(e.into_error()))?;
    file.sync_all().map_err(ReduceError::Write)?;
    Ok((lines, bytes))
}

fn panic_message(panic: &Box<dyn Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "non-string panic payload".to_string()
    }
}
