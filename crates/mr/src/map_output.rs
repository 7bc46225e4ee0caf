//! The map side of the shuffle: pairs emitted by a map task are partitioned, combined (if the app has a
//! combiner), sorted and written as one sorted run per reduce partition. If the buffered pairs outgrow the
//! memory budget they are spilled to disk as sorted runs and merged at the end (Hadoop's sort/spill), so a
//! map task's memory stays bounded whatever its output size.
use std::collections::HashMap;
use std::fs;
use std::mem;
use std::path::{Path, PathBuf};

use crate::app::Combiner;
use crate::fast_hash::FxBuildHasher;
use crate::merge::{Durability, MERGE_FAN_IN_MAX, merge_into, narrow_runs};
use crate::partition::partition_of;
use crate::records::{RecordError, RecordWriter};

/// Estimated memory per buffered pair beyond its key and value bytes: two `String` headers, their heap
/// slack and the hash table slot. Errs high so the budget is not overrun.
const ENTRY_OVERHEAD_BYTES: usize = 80;

enum Buffer<'a> {
    /// With a combiner: one accumulated value per key.
    Combined(HashMap<String, String, FxBuildHasher>, &'a dyn Combiner),
    /// Without: every pair, in emission order (the sort below is stable, which keeps value order
    /// deterministic).
    Plain(Vec<(String, String)>),
}

/// What a map task produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MapOutputStats {
    pub records_emitted: u64,
    pub bytes_written: u64,
    pub spills: u64,
}

pub struct MapOutput<'a> {
    combiner: Option<&'a dyn Combiner>,
    partitions: Vec<Buffer<'a>>,
    buffered_bytes: usize,
    budget_bytes: usize,
    scratch_dir: PathBuf,
    /// Spilled runs, per partition, in spill order.
    spilled: Vec<Vec<PathBuf>>,
    /// The first error while spilling; `emit` cannot return one (it is called from inside the app), so it
    /// is kept and returned by `finish`.
    error: Option<RecordError>,
    stats: MapOutputStats,
}

impl<'a> MapOutput<'a> {
    /// Buffers up to `budget_bytes` of pairs in memory; spills go into `scratch_dir`.
    pub fn new(
        reduce_tasks: u32,
        combiner: Option<&'a dyn Combiner>,
        budget_bytes: usize,
        scratch_dir: &Path,
    ) -> MapOutput<'a> {
        let partitions = (0..reduce_tasks)
            .map(|_| match combiner {
                Some(combiner) => Buffer::Combined(HashMap::with_hasher(FxBuildHasher), combiner),
                None => Buffer::Plain(Vec::new()),
            })
            .collect();
        MapOutput {
            combiner,
            partitions,
            buffered_bytes: 0,
            budget_bytes,
            scratch_dir: scratch_dir.to_path_buf(),
            spilled: (0..reduce_tasks).map(|_| Vec::new()).collect(),
            error: None,
            stats: MapOutputStats::default(),
        }
    }

    pub fn emit(&mut self, key: &str, value: &str) {
        if self.error.is_some() {
            return;
        }
        self.stats.records_emitted += 1;
        let partition = partition_of(key, self.partitions.len() as u32) as usize;
        match &mut self.partitions[partition] {
            Buffer::Combined(map, combiner) => match map.get_mut(key) {
                Some(accumulated) => {
                    let before = accumulated.len();
                    combiner.combine(key, accumulated, value);
                    self.buffered_bytes = (self.buffered_bytes + accumulated.len()).saturating_sub(before);
                }
                None => {
                    map.insert(key.to_string(), value.to_string());
                    self.buffered_bytes += key.len() + value.len() + ENTRY_OVERHEAD_BYTES;
                }
            },
            Buffer::Plain(pairs) => {
                pairs.push((key.to_string(), value.to_string()));
                self.buffered_bytes += key.len() + value.len() + ENTRY_OVERHEAD_BYTES;
            }
        }
        if self.buffered_bytes > self.budget_bytes
            && let Err(e) = self.spill()
        {
            self.error = Some(e);
        }
    }

    /// Writes every buffered partition as a sorted run and empties the buffers.
    fn spill(&mut self) -> Result<(), RecordError> {
        let spill_number = self.stats.spills;
        for (partition, buffer) in self.partitions.iter_mut().enumerate() {
            let path = self.scratch_dir.join(format!("spill-{spill_number}-part-{partition}"));
            write_sorted(buffer, &path, Durability::Scratch)?;
            self.spilled[partition].push(path);
        }
        self.stats.spills += 1;
        self.buffered_bytes = 0;
        Ok(())
    }

    /// Writes partition `r` to `part_path(r)` (a sorted run, fsynced) for every `r`, including empty ones,
    /// so a reduce task finds one file per map task.
    pub fn finish(mut self, part_path: impl Fn(u32) -> PathBuf) -> Result<MapOutputStats, RecordError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.stats.spills == 0 {
            for (partition, buffer) in self.partitions.iter_mut().enumerate() {
                self.stats.bytes_written += write_sorted(buffer, &part_path(partition as u32), Durability::Durable)?;
            }
            return Ok(self.stats);
        }
        self.spill()?;
        for partition in 0..self.partitions.len() {
            let runs = mem::take(&mut self.spilled[partition]);
            let prefix = format!("merge-part-{partition}");
            let narrowed = narrow_runs(runs.clone(), MERGE_FAN_IN_MAX, &self.scratch_dir, &prefix, self.combiner)?;
            self.stats.bytes_written +=
                merge_into(&narrowed, &part_path(partition as u32), self.combiner, Durability::Durable)?;
            for run in runs.iter().chain(&narrowed) {
                let _ = fs::remove_file(run);
            }
        }
        Ok(self.stats)
    }
}

/// Sorts and writes one partition's buffer, leaving it empty. Returns the bytes written.
fn write_sorted(buffer: &mut Buffer<'_>, path: &Path, durability: Durability) -> Result<u64, RecordError> {
    let mut writer = RecordWriter::create(path)?;
    match buffer {
        Buffer::Combined(map, _) => {
            let mut pairs: Vec<(String, String)> = mem::take(map).into_iter().collect();
            pairs.sort_unstable_by(|a, b| a.0.cmp(&b.0)); // keys are unique
            for (k, v) in &pairs {
                writer.append(k, v)?;
            }
        }
        Buffer::Plain(pairs) => {
            let mut pairs = mem::take(pairs);
            pairs.sort_by(|a, b| a.0.cmp(&b.0)); // stable: equal keys keep emission order
            for (k, v) in &pairs {
                writer.append(k, v)?;
            }
        }
    }
    match durability {
        Durability::Durable => writer.finish(),
        Durability::Scratch => writer.finish_scratch(),
    }
}

#[cfg(test)]
mod tests;
