//! K-way merge of sorted record files ("runs"): how a reduce task reads its input and how a map task
//! combines its spills. Memory is bounded by the number of runs open at once, never by the data size.
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::app::Combiner;
use crate::map_file::{Segment, locate_partition};
use crate::records::{RecordError, RecordReader, RecordWriter};

/// A sorted run to merge: a whole records file, or one partition of a map output file
/// ([`crate::map_file`]), located when it is opened so that at most [`MERGE_FAN_IN_MAX`] files are open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Run {
    File(PathBuf),
    Partition {
        path: PathBuf,
        partition: u32,
        partitions: u32,
    },
    /// A partition already located (its index checked): its size is known, so many small ones can be merged
    /// at once.
    Segment {
        path: PathBuf,
        segment: Segment,
    },
    /// A small partition read into memory at once (`bytes` were at `offset_bytes` of `path`): opening it
    /// again costs nothing, and it holds no file descriptor, so any number of them merge in one pass.
    Memory {
        path: PathBuf,
        offset_bytes: u64,
        bytes: std::sync::Arc<Vec<u8>>,
    },
}

impl Run {
    fn open(&self) -> Result<RecordReader, RecordError> {
        match self {
            Run::File(path) => RecordReader::open(path),
            Run::Partition { path, partition, partitions } => {
                let (file, segment) = locate_partition(path, *partition, *partitions)?;
                RecordReader::from_segment(file, path, segment.offset_bytes, segment.len_bytes)
            }
            Run::Segment { path, segment } => {
                let file =
                    std::fs::File::open(path).map_err(|source| RecordError::Io { path: path.clone(), source })?;
                RecordReader::from_segment(file, path, segment.offset_bytes, segment.len_bytes)
            }
            Run::Memory { path, offset_bytes, bytes } => {
                RecordReader::from_bytes(Arc::clone(bytes), path, *offset_bytes)
            }
        }
    }

    /// Memory this run takes while open, at most.
    fn open_bytes(&self) -> u64 {
        match self {
            Run::Segment { segment, .. } => 2 * segment.len_bytes.min(RUN_BUFFER_BYTES_MAX / 2) + RUN_OVERHEAD_BYTES,
            // Its bytes are held already (counted by whoever read them); a reader adds a block buffer.
            Run::Memory { bytes, .. } => (bytes.len() as u64).min(RUN_BUFFER_BYTES_MAX / 2) + RUN_OVERHEAD_BYTES,
            Run::File(_) | Run::Partition { .. } => RUN_BUFFER_BYTES_MAX + RUN_OVERHEAD_BYTES,
        }
    }
}

/// Most runs of unknown size merged at once. Each open run costs up to two 64 KiB buffers and one file
/// descriptor, so 64 runs stay under 10 MiB and well inside the usual 1024-descriptor limit. More runs are
/// merged in passes.
pub const MERGE_FAN_IN_MAX: usize = 64;
/// Most runs of known size ([`Run::Segment`]) merged at once, if their buffers fit in
/// [`MERGE_BUFFER_BYTES_MAX`]: half the usual 1024-descriptor limit. A reduce over thousands of small maps
/// then writes a few scratch runs instead of one per 64 maps (each new file costs about a millisecond).
pub const MERGE_OPEN_RUNS_MAX: usize = 512;
/// Most buffer memory of the runs of one merge: what [`MERGE_FAN_IN_MAX`] runs of full buffers take.
pub const MERGE_BUFFER_BYTES_MAX: u64 = MERGE_FAN_IN_MAX as u64 * RUN_BUFFER_BYTES_MAX;
/// A reader's buffers at most: its read buffer and its block (both sized to the run when it is smaller).
const RUN_BUFFER_BYTES_MAX: u64 = 2 * 64 * 1024;
/// What an open run costs besides its buffers (reader, heap entry, file handle).
const RUN_OVERHEAD_BYTES: u64 = 1024;

/// The smallest head of each run, ordered by key and then by run index, so that equal keys come out in
/// run order and the merge is deterministic.
struct Head {
    key: String,
    run: usize,
    value: String,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key.as_str().cmp(other.key.as_str()).then(self.run.cmp(&other.run))
    }
}

/// All records of several sorted runs, in key order.
pub struct MergedRuns {
    runs: Vec<RecordReader>,
    heap: BinaryHeap<Reverse<Head>>,
}

impl MergedRuns {
    /// Opens every run. Callers keep `paths.len()` at most [`MERGE_FAN_IN_MAX`] (see [`narrow_runs`]).
    pub fn open(runs: &[Run]) -> Result<MergedRuns, RecordError> {
        let mut merged = MergedRuns { runs: Vec::with_capacity(runs.len()), heap: BinaryHeap::new() };
        for run in runs {
            merged.runs.push(run.open()?);
        }
        for run in 0..merged.runs.len() {
            merged.refill(run)?;
        }
        Ok(merged)
    }

    fn refill(&mut self, run: usize) -> Result<(), RecordError> {
        if let Some((key, value)) = self.runs[run].next_record()? {
            self.heap.push(Reverse(Head { key, run, value }));
        }
        Ok(())
    }

    pub fn peek_key(&self) -> Option<&str> {
        self.heap.peek().map(|Reverse(head)| head.key.as_str())
    }

    pub fn next_record(&mut self) -> Result<Option<(String, String)>, RecordError> {
        let Some(Reverse(head)) = self.heap.pop() else {
            return Ok(None);
        };
        if let Some((key, value)) = self.runs[head.run].next_record()? {
            // A run out of order would silently split a key's values over two reduce calls.
            if key < head.key {
                return Err(RecordError::Corrupt {
                    path: self.runs[head.run].path().to_path_buf(),
                    offset: self.runs[head.run].block_offset(),
                    what: format!("keys out of order: {key:?} after {:?}", head.key),
                });
            }
            self.heap.push(Reverse(Head { key, run: head.run, value }));
        }
        Ok(Some((head.key, head.value)))
    }

    /// Calls `f(key, values)` once per distinct key, in key order. `f` may stop reading values early; the
    /// rest are skipped. A read error while `f` consumes values ends the iteration and is returned.
    pub fn for_each_group<E: From<RecordError>>(
        &mut self,
        mut f: impl FnMut(&str, &mut dyn Iterator<Item = String>) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some((key, first)) = self.next_record()? {
            let mut values = GroupValues { merged: self, key: &key, first: Some(first), error: None };
            f(&key, &mut values)?;
            for _ in values.by_ref() {}
            if let Some(error) = values.error {
                return Err(error.into());
            }
        }
        Ok(())
    }
}

/// The values of one key, pulled lazily from the merge so a key with a huge number of values does not have
/// to fit in memory.
struct GroupValues<'a> {
    merged: &'a mut MergedRuns,
    key: &'a str,
    first: Option<String>,
    error: Option<RecordError>,
}

impl Iterator for GroupValues<'_> {
    type Item = String;

    fn next(&mut self) -> Option<String> {
        if let Some(first) = self.first.take() {
            return Some(first);
        }
        if self.error.is_some() || self.merged.peek_key() != Some(self.key) {
            return None;
        }
        match self.merged.next_record() {
            Ok(Some((_, value))) => Some(value),
            Ok(None) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

/// Whether a merged file must survive a machine crash once written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A file that will be committed: fsynced.
    Durable,
    /// A scratch file of the running attempt: not fsynced.
    Scratch,
}

/// Merges `runs` into one sorted run at `out`, folding equal keys with `combiner` if there is one. Returns
/// the size of `out` in bytes.
pub fn merge_into(
    runs: &[Run],
    out: &Path,
    combiner: Option<&dyn Combiner>,
    durability: Durability,
) -> Result<u64, RecordError> {
    let mut writer = RecordWriter::create(out)?;
    merge_into_writer(runs, &mut writer, combiner)?;
    match durability {
        Durability::Durable => writer.finish(),
        Durability::Scratch => writer.finish_scratch(),
    }
}

/// Merges `runs` into `writer` (which may be a segment of a larger file), folding equal keys with
/// `combiner` if there is one.
pub fn merge_into_writer(
    runs: &[Run],
    writer: &mut RecordWriter,
    combiner: Option<&dyn Combiner>,
) -> Result<(), RecordError> {
    let mut merged = MergedRuns::open(runs)?;
    match combiner {
        None => {
            while let Some((key, value)) = merged.next_record()? {
                writer.append(&key, &value)?;
            }
        }
        Some(combiner) => {
            merged.for_each_group(|key, values| {
                let mut accumulated = values.next().unwrap_or_default();
                for value in values {
                    combiner.combine(key, &mut accumulated, &value);
                }
                writer.append(key, &accumulated)
            })?;
        }
    }
    Ok(())
}

/// Merges runs in passes until one merge can take them all: at most `fan_in` runs whose buffers fit in
/// [`MERGE_BUFFER_BYTES_MAX`]. Intermediate runs are written into `scratch_dir`. Consecutive runs are merged
/// together, so run order, and with it the order of equal keys, is kept. Intermediate runs made here are
/// deleted once merged again; the caller's own runs are left alone.
pub fn narrow_runs(
    mut runs: Vec<Run>,
    fan_in: usize,
    scratch_dir: &Path,
    scratch_prefix: &str,
    combiner: Option<&dyn Combiner>,
) -> Result<Vec<Run>, RecordError> {
    assert!(fan_in >= 2, "a merge needs at least two inputs at a time");
    let mut pass = 0;
    // Scratch runs made by the previous pass: removed once merged again (a run passed through alone stays).
    let mut ours: Vec<PathBuf> = Vec::new();
    while !fits_one_merge(&runs, fan_in) {
        let groups = merge_groups(&runs, fan_in);
        let mut next = Vec::with_capacity(groups.len());
        let mut made = Vec::new();
        for (i, group) in groups.into_iter().enumerate() {
            if group.len() == 1 {
                next.push(runs[group.start].clone());
                continue;
            }
            let out = scratch_dir.join(format!("{scratch_prefix}-pass{pass}-{i}"));
            merge_into(&runs[group], &out, combiner, Durability::Scratch)?;
            made.push(out.clone());
            next.push(Run::File(out));
        }
        for old in ours.drain(..) {
            if next.contains(&Run::File(old.clone())) {
                made.push(old);
            } else {
                let _ = fs::remove_file(old);
            }
        }
        ours = made;
        runs = next;
        pass += 1;
    }
    Ok(runs)
}

/// Whether one merge may open all of `runs`: at most `fan_in` of them, within [`MERGE_BUFFER_BYTES_MAX`].
pub fn fits_one_merge(runs: &[Run], fan_in: usize) -> bool {
    // Runs in memory need no file descriptor: the fan-in bounds the others.
    let files = runs.iter().filter(|r| !matches!(r, Run::Memory { .. })).count();
    files <= fan_in && runs.iter().map(Run::open_bytes).sum::<u64>() <= MERGE_BUFFER_BYTES_MAX
}

/// Cuts `runs` into consecutive groups that each fit one merge (every group has at least one run, and at
/// least two while runs remain to pair, so each pass shrinks the list).
fn merge_groups(runs: &[Run], fan_in: usize) -> Vec<std::ops::Range<usize>> {
    let mut groups = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, run) in runs.iter().enumerate() {
        let cost = run.open_bytes();
        let group_len = i - start;
        if group_len >= 2 && (group_len >= fan_in || bytes + cost > MERGE_BUFFER_BYTES_MAX) {
            groups.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += cost;
    }
    groups.push(start..runs.len());
    groups
}

#[cfg(test)]
mod tests;
