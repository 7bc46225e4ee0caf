//! Running one attempt of a task on a worker: read the input, call the app, write the attempt's output (a
//! reduce's under a name derived from the attempt id, fsynced; a map's appended to the worker's maps file,
//! not fsynced, as it is recomputable). The worker never renames anything into a committed place nor
//! decides which map output counts; the coordinator does that if, and only if, this attempt is still the
//! one on record.
use std::any::Any;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use crate::app::{App, Combiner};
use crate::counters::Counters;
use crate::input::{InputSplit, read_split};
use crate::layout::Layout;
use crate::map_output::MapOutput;
use crate::maps_file::MapsFile;
use crate::memory::own_peak_rss_bytes;
use crate::merge::{MERGE_OPEN_RUNS_MAX, MergedRuns, Run, fits_one_merge, narrow_runs};
use crate::protocol::{JobSpec, MapOutputAt, TaskStats};
use crate::records::RecordError;
use crate::reduce_input::{Blame, ReduceInputs, RegionOf};
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

/// How an attempt that did not fail ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finished {
    Succeeded(TaskStats),
    /// A reduce could not read map `map`'s output (`map_attempt`'s, the one on record): its worker is gone,
    /// or the output is damaged. The map must run again; the reduce did nothing wrong.
    InputLost {
        map: u32,
        map_attempt: AttemptId,
        reason: String,
    },
}

/// A map output a reduce needs that cannot be read: the map must run again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostInput {
    pub map: u32,
    pub map_attempt: AttemptId,
    pub reason: String,
}

impl From<LostInput> for Finished {
    fn from(lost: LostInput) -> Finished {
        Finished::InputLost { map: lost.map, map_attempt: lost.map_attempt, reason: lost.reason }
    }
}

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

/// Runs a map attempt of `app` over `split`, appending its output to `maps`; the stats say where
/// (`map_output`).
pub fn run_map(
    app: &dyn App,
    job: &JobSpec,
    layout: &Layout,
    maps: &mut MapsFile,
    attempt: AttemptId,
    split: &InputSplit,
) -> Result<TaskStats, TaskFailure> {
    run_map_code(TaskCode::App(app), job, layout, maps, attempt, split)
}

pub fn run_map_code(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    maps: &mut MapsFile,
    attempt: AttemptId,
    split: &InputSplit,
) -> Result<TaskStats, TaskFailure> {
    let contents = read_split(split).map_err(|e| TaskFailure { permanent: true, error: e.to_string() })?;
    run_map_text(code, job, layout, maps, attempt, &split.name, contents)
}

/// Runs a map attempt on a split already read (from a path, or from the coordinator by a worker that shares
/// nothing with it) and appends its output to `maps` (cut off again if the attempt fails).
pub fn run_map_text(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    maps: &mut MapsFile,
    attempt: AttemptId,
    name: &str,
    contents: String,
) -> Result<TaskStats, TaskFailure> {
    // Spills (rare) go into the attempt's scratch directory, made only if needed (and removed only then:
    // thousands of small maps would otherwise each pay a failing removal).
    let scratch = layout.attempt_dir(attempt);
    let mut spilled = false;
    let result = map_into(code, job, maps, name, contents, &scratch, &mut spilled);
    if spilled || result.is_err() {
        let _ = fs::remove_dir_all(&scratch);
    }
    result
}

fn map_into(
    code: TaskCode<'_>,
    job: &JobSpec,
    maps: &mut MapsFile,
    name: &str,
    contents: String,
    dir: &std::path::Path,
    spilled: &mut bool,
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
    *spilled = output.spilled();
    check_counters(job, &counters)?;
    // No fsync: a map output lost to a crash is a re-executed map.
    let mut stats = None;
    let expected_bytes = output.expected_output_bytes();
    let range = maps
        .append(job.reduce_tasks, expected_bytes, |writer| {
            let written = output.finish(writer)?;
            stats = Some(written);
            Ok(written.bytes_written)
        })
        .map_err(|e| TaskFailure::retryable(format!("writing map output: {e}")))?;
    let stats = stats.unwrap_or_default();
    Ok(TaskStats {
        input_bytes,
        output_bytes: stats.bytes_written,
        records: stats.records_emitted,
        spills: stats.spills,
        worker_peak_rss_bytes: own_peak_rss_bytes(),
        counters,
        map_output: Some(range),
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

/// Runs a reduce attempt of `app` over the map outputs at `outputs` (every map's, from the coordinator's
/// `MapOutputs`), read in place from the job's work directory (workers that share the file system).
pub fn run_reduce(
    app: &dyn App,
    job: &JobSpec,
    layout: &Layout,
    attempt: AttemptId,
    reduce: u32,
    outputs: &[MapOutputAt],
) -> Result<Finished, TaskFailure> {
    run_reduce_code(TaskCode::App(app), job, layout, attempt, reduce, outputs)
}

pub fn run_reduce_code(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    attempt: AttemptId,
    reduce: u32,
    outputs: &[MapOutputAt],
) -> Result<Finished, TaskFailure> {
    // Every map's index is read and checked (and small runs read) before any merging starts, so a missing
    // or damaged map output is found at once, naming the map.
    let mut inputs = ReduceInputs::default();
    if let Err(lost) = read_map_outputs(job, layout, reduce, outputs, &mut inputs) {
        return Ok(lost.into());
    }
    let (runs, blame) = inputs.into_runs();
    run_reduce_runs(code, job, layout, attempt, reduce, runs, &blame)
}

/// Reads partition `reduce` of every map output in `outputs` from the maps files in `layout`'s work
/// directory, one open per file. `Err` names the first map whose output is missing or damaged.
pub fn read_map_outputs(
    job: &JobSpec,
    layout: &Layout,
    reduce: u32,
    outputs: &[MapOutputAt],
    inputs: &mut ReduceInputs,
) -> Result<(), LostInput> {
    let mut by_file: BTreeMap<u64, Vec<RegionOf>> = BTreeMap::new();
    for output in outputs {
        let Some(location) = &output.location else {
            let reason = "its output is not available now (the map is running again)".to_string();
            return Err(LostInput { map: output.map, map_attempt: AttemptId(0), reason });
        };
        let Some(range) = location.output else {
            let reason = "the coordinator knows no byte range for it".to_string();
            return Err(LostInput { map: output.map, map_attempt: location.attempt, reason });
        };
        let region = RegionOf { map: output.map, attempt: location.attempt, region: range.region };
        by_file.entry(range.file).or_default().push(region);
    }
    for (id, regions) in by_file {
        let path = layout.maps_file(id);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) => {
                let first = regions[0];
                let reason = format!("opening {}: {e}", path.display());
                return Err(LostInput { map: first.map, map_attempt: first.attempt, reason });
            }
        };
        inputs.add_regions(&file, &path, regions, reduce, job.reduce_tasks).map_err(|(lost, e)| LostInput {
            map: lost.map,
            map_attempt: lost.attempt,
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

/// Runs a reduce attempt over its partition's runs (one per map, in map order) and writes
/// `layout.reduce_attempt_output(attempt, reduce)`, fsynced. Damage found in a run that `blame` traces to a
/// map is that map's output lost, not a failure of this attempt.
pub fn run_reduce_runs(
    code: TaskCode<'_>,
    job: &JobSpec,
    layout: &Layout,
    attempt: AttemptId,
    reduce: u32,
    inputs: Vec<Run>,
    blame: &Blame,
) -> Result<Finished, TaskFailure> {
    let input_bytes = inputs
        .iter()
        .map(|run| match run {
            Run::Segment { segment, .. } => segment.len_bytes,
            Run::Memory { bytes, .. } => bytes.len() as u64,
            Run::File(_) | Run::Partition { .. } => 0,
        })
        .sum();
    let lost = |e: &RecordError| {
        blame.map_of(e).map(|(map, map_attempt)| Finished::InputLost { map, map_attempt, reason: e.to_string() })
    };
    let scratch = layout.attempt_dir(attempt);
    let runs = if !fits_one_merge(&inputs, MERGE_OPEN_RUNS_MAX) {
        fs::create_dir(&scratch).map_err(|e| TaskFailure::retryable(format!("creating {}: {e}", scratch.display())))?;
        match narrow_runs(inputs, MERGE_OPEN_RUNS_MAX, &scratch, "merge", None) {
            Ok(runs) => runs,
            Err(e) => {
                let _ = fs::remove_dir_all(&scratch);
                return match lost(&e) {
                    Some(lost) => Ok(lost),
                    None => Err(TaskFailure::retryable(format!("merging reduce input: {e}"))),
                };
            }
        }
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
    let (records, output_bytes) = match result {
        Ok(written) => written,
        Err(ReduceError::Record(e)) => {
            return match lost(&e) {
                Some(lost) => Ok(lost),
                None => Err(TaskFailure::retryable(format!("reading reduce input: {e}"))),
            };
        }
        Err(ReduceError::Write(e)) => {
            return Err(TaskFailure::retryable(format!("writing {}: {e}", out_path.display())));
        }
        Err(ReduceError::Panic(message)) => {
            return Err(TaskFailure::retryable(format!("app {:?} panicked in reduce: {message}", job.app)));
        }
        Err(ReduceError::Program(message)) => return Err(TaskFailure::retryable(message)),
    };
    if let Err(failure) = check_counters(job, &counters) {
        let _ = fs::remove_file(&out_path);
        return Err(failure);
    }
    Ok(Finished::Succeeded(TaskStats {
        input_bytes,
        output_bytes,
        records,
        spills: 0,
        worker_peak_rss_bytes: own_peak_rss_bytes(),
        counters,
        map_output: None,
    }))
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
