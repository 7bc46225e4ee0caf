//! The map side of the shuffle: pairs emitted by a map task are partitioned, combined (if the app has a
//! combiner), sorted and written as one sorted run per reduce partition, all in one map output file with an
//! index ([`crate::map_file`]). If the buffered pairs outgrow the memory budget they are spilled to disk
//! (each spill one such file) and merged partition by partition at the end (Hadoop's sort/spill), so a map
//! task's memory stays bounded whatever its output size.
use std::collections::HashMap;
use std::fs;
use std::mem;
use std::path::{Path, PathBuf};

use crate::app::Combiner;
use crate::fast_hash::FxBuildHasher;
use crate::map_file::MapFileWriter;
use crate::merge::{MERGE_FAN_IN_MAX, Run, merge_into_writer, narrow_runs};
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
    /// Spill files (map output files, one segment per partition), in spill order.
    spilled: Vec<PathBuf>,
    /// The first error while spilling; `emit` cannot return one (it is called from inside the app), so it
    /// is kept and returned by `finish`.
    error: Option<RecordError>,
    stats: MapOutputStats,
}

impl<'a> MapOutput<'a> {
    /// Buffers up to `budget_bytes` of pairs in memory; spills go into `scratch_dir`, created (not its
    /// parents) at the first spill.
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
            spilled: Vec::new(),
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

    /// About how large the output will be, at most (for the write buffer): the buffered pairs with their
    /// estimated overhead, plus each partition's framing and index entry; large if it spilled.
    pub fn expected_output_bytes(&self) -> usize {
        if self.stats.spills > 0 {
            return usize::MAX;
        }
        self.buffered_bytes.saturating_add(self.partitions.len().saturating_mul(64))
    }

    /// Whether the scratch directory may exist (a spill was started).
    pub fn spilled(&self) -> bool {
        self.stats.spills > 0 || self.error.is_some()
    }

    /// Writes every buffered partition as a sorted run into one spill file and empties the buffers.
    fn spill(&mut self) -> Result<(), RecordError> {
        if self.stats.spills == 0 {
            fs::create_dir(&self.scratch_dir)
                .map_err(|source| RecordError::Io { path: self.scratch_dir.clone(), source })?;
        }
        let path = self.scratch_dir.join(format!("spill-{}", self.stats.spills));
        self.write_buffers(&path)?;
        self.spilled.push(path);
        self.stats.spills += 1;
        self.buffered_bytes = 0;
        Ok(())
    }

    fn write_buffers(&mut self, path: &Path) -> Result<u64, RecordError> {
        let mut file = MapFileWriter::create(path, self.partitions.len() as u32)?;
        for buffer in &mut self.partitions {
            file.write_partition(|writer| write_sorted(buffer, writer))?;
        }
        file.finish()
    }

    /// Writes the map's output through `file` (a new file, or a region appended to a worker's maps file):
    /// every partition's sorted run, empty ones included, and the index. Not fsynced (see
    /// [`crate::map_file`]). `bytes_written` in the result is the output's size.
    pub fn finish(mut self, mut file: MapFileWriter) -> Result<MapOutputStats, RecordError> {
        if let Some(e) = self.error.take() {
            return Err(e);
        }
        if self.stats.spills == 0 {
            for buffer in &mut self.partitions {
                file.write_partition(|writer| write_sorted(buffer, writer))?;
            }
            self.stats.bytes_written += file.finish()?;
            return Ok(self.stats);
        }
        self.spill()?;
        let partitions = self.partitions.len() as u32;
        let spilled = mem::take(&mut self.spilled);
        for partition in 0..partitions {
            let runs: Vec<Run> =
                spilled.iter().map(|path| Run::Partition { path: path.clone(), partition, partitions }).collect();
            let prefix = format!("merge-part-{partition}");
            let narrowed = narrow_runs(runs, MERGE_FAN_IN_MAX, &self.scratch_dir, &prefix, self.combiner)?;
            file.write_partition(|writer| merge_into_writer(&narrowed, writer, self.combiner))?;
            // What narrowing made (the spills themselves are `Partition` runs, removed below).
            for run in &narrowed {
                if let Run::File(scratch) = run {
                    let _ = fs::remove_file(scratch);
                }
            }
        }
        self.stats.bytes_written += file.finish()?;
        for spill in &spilled {
            let _ = fs::remove_file(spill);
        }
        Ok(self.stats)
    }
}

/// Sorts one partition's buffer into `writer`, leaving the buffer empty.
fn write_sorted(buffer: &mut Buffer<'_>, writer: &mut RecordWriter) -> Result<(), RecordError> {
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
    Ok(())
}

#[cfg(test)]
mod tests;
