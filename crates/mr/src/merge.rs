//! K-way merge of sorted record files ("runs"): how a reduce task reads its input and how a map task
//! combines its spills. Memory is bounded by the number of runs open at once, never by the data size.
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::app::Combiner;
use crate::records::{RecordError, RecordReader, RecordWriter};

/// Most runs merged at once. Each open run costs about two 64 KiB buffers and one file descriptor, so 64
/// runs stay under 10 MiB and well inside the usual 1024-descriptor limit. More runs are merged in passes.
pub const MERGE_FAN_IN_MAX: usize = 64;

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
    pub fn open(paths: &[PathBuf]) -> Result<MergedRuns, RecordError> {
        let mut merged = MergedRuns { runs: Vec::with_capacity(paths.len()), heap: BinaryHeap::new() };
        for path in paths {
            merged.runs.push(RecordReader::open(path)?);
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
                    offset: 0,
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
    runs: &[PathBuf],
    out: &Path,
    combiner: Option<&dyn Combiner>,
    durability: Durability,
) -> Result<u64, RecordError> {
    let mut merged = MergedRuns::open(runs)?;
    let mut writer = RecordWriter::create(out)?;
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
    match durability {
        Durability::Durable => writer.finish(),
        Durability::Scratch => writer.finish_scratch(),
    }
}

/// Merges runs in passes of at most `fan_in` until at most `fan_in` remain, writing intermediate runs into
/// `scratch_dir`. Consecutive runs are merged together, so run order, and with it the order of equal keys,
/// is kept. Intermediate runs made here are deleted once merged again; the caller's own runs are left alone.
pub fn narrow_runs(
    mut runs: Vec<PathBuf>,
    fan_in: usize,
    scratch_dir: &Path,
    scratch_prefix: &str,
    combiner: Option<&dyn Combiner>,
) -> Result<Vec<PathBuf>, RecordError> {
    assert!(fan_in >= 2, "a merge needs at least two inputs at a time");
    let mut pass = 0;
    let mut ours: Vec<PathBuf> = Vec::new();
    while runs.len() > fan_in {
        let mut next = Vec::with_capacity(runs.len().div_ceil(fan_in));
        for (i, group) in runs.chunks(fan_in).enumerate() {
            let out = scratch_dir.join(format!("{scratch_prefix}-pass{pass}-{i}"));
            merge_into(group, &out, combiner, Durability::Scratch)?;
            next.push(out);
        }
        for old in ours.drain(..) {
            let _ = fs::remove_file(old);
        }
        ours = next.clone();
        runs = next;
        pass += 1;
    }
    Ok(runs)
}

#[cfg(test)]
mod tests;
