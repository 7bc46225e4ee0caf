//! A reduce attempt's input: its partition of every map's output, one run per map, and which map is to
//! blame when some of it turns out to be damaged.
//!
//! A map output damaged at rest (a flipped byte, a file cut short) is found by the checksums, either while
//! its index and small runs are read here or later in the merge. Either way it is that map's output that is
//! lost, not the reduce that failed: the reduce reports it, the coordinator runs the map again (the paper's
//! section 3.3, as for a dead worker), and the reduce runs again with the new output. Runs are kept with
//! where their bytes are (file and byte range), so an error found in the merge, which names a file and a
//! byte, is traced back to the map.
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::map_file::{Region, Segment, locate_partition_in, locate_partition_in_bytes};
use crate::merge::Run;
use crate::records::RecordError;
use crate::task_table::AttemptId;

/// A reduce reads a map's partition into memory when it is at most this large ...
const MEMORY_RUN_BYTES_MAX: u64 = 64 * 1024;
/// ... and the partitions it holds in memory so far total at most this: half the merge's buffer budget, so a
/// reduce's memory stays bounded by constants whatever the number of maps.
const MEMORY_RUNS_BYTES_MAX: u64 = crate::merge::MERGE_BUFFER_BYTES_MAX / 2;

/// A map output region this small is read whole, with its neighbours, in one read of up to
/// [`WINDOW_BYTES_MAX`], instead of two reads of its own (index entry, then run): at thousands of small maps
/// a reduce would otherwise make two system calls per map, most of its time. Reading a whole region costs a
/// copy of at most this much per map for one partition's worth of data, about what a system call costs;
/// beyond it (many partitions make large indexes) reading what is needed is cheaper.
const SMALL_REGION_BYTES_MAX: u64 = 8 * 1024;
/// Largest read of consecutive small regions.
const WINDOW_BYTES_MAX: u64 = 256 * 1024;
/// Largest stretch between two regions read over rather than around (discarded outputs read as holes).
const WINDOW_GAP_BYTES_MAX: u64 = 4 * 1024;

/// One map output to read from a maps file.
#[derive(Clone, Copy, Debug)]
pub struct RegionOf {
    pub map: u32,
    pub attempt: AttemptId,
    pub region: Region,
}

/// Where one map's run came from.
#[derive(Clone, Debug)]
struct Source {
    map: u32,
    attempt: AttemptId,
    path: PathBuf,
    /// The bytes of `path` that are this map's: its whole region when read from a map outputs file (an
    /// error in its index is its own too), the run's segment when fetched into a scratch file.
    bytes: Segment,
}

/// Which map a damaged input belongs to (see [`ReduceInputs::into_runs`]).
#[derive(Clone, Debug, Default)]
pub struct Blame {
    sources: Vec<Source>,
}

impl Blame {
    /// The map (and its attempt) whose data `error` is about, if it is about a map output's data.
    pub fn map_of(&self, error: &RecordError) -> Option<(u32, AttemptId)> {
        let (path, offset) = error.damaged_at()?;
        self.sources.iter().find(|s| s.path == path && s.bytes.contains(offset)).map(|s| (s.map, s.attempt))
    }
}

/// The runs gathered so far.
#[derive(Default)]
pub struct ReduceInputs {
    runs: Vec<(u32, Run)>,
    blame: Blame,
    in_memory_bytes: u64,
}

impl ReduceInputs {
    /// Map `map`'s partition `partition` of `partitions` from its output at `region` of `file` (opened from
    /// `path`): its index entry checked, and the run read into memory if small.
    #[allow(clippy::too_many_arguments)]
    pub fn add_region(
        &mut self,
        (map, attempt): (u32, AttemptId),
        file: &File,
        path: &Path,
        region: Region,
        partition: u32,
        partitions: u32,
    ) -> Result<(), RecordError> {
        let segment = locate_partition_in(file, path, region, partition, partitions)?;
        let run = self.run_of(file, path, segment)?;
        let bytes = Segment { offset_bytes: region.offset_bytes, len_bytes: region.len_bytes };
        self.push((map, attempt), path, bytes, run);
        Ok(())
    }

    /// Map `map`'s run, already at `segment` of `file` (fetched from another worker into a scratch file).
    pub fn add_segment(
        &mut self,
        (map, attempt): (u32, AttemptId),
        file: &File,
        path: &Path,
        segment: Segment,
    ) -> Result<(), RecordError> {
        let run = self.run_of(file, path, segment)?;
        self.push((map, attempt), path, segment, run);
        Ok(())
    }

    /// Partition `partition` of every map output in `regions`, all in `file` (opened from `path`): small
    /// regions next to each other are read together (see [`SMALL_REGION_BYTES_MAX`]). `Err` names the first
    /// map whose output could not be read or is damaged.
    pub fn add_regions(
        &mut self,
        file: &File,
        path: &Path,
        mut regions: Vec<RegionOf>,
        partition: u32,
        partitions: u32,
    ) -> Result<(), (RegionOf, RecordError)> {
        regions.sort_by_key(|r| r.region.offset_bytes);
        let mut window: Vec<u8> = Vec::new();
        let mut i = 0;
        while i < regions.len() {
            let first = regions[i];
            let end_of = |r: &RegionOf| r.region.end_bytes().unwrap_or(u64::MAX);
            // Consecutive small regions, close together, within one window.
            let mut j = i;
            while j < regions.len()
                && regions[j].region.len_bytes <= SMALL_REGION_BYTES_MAX
                && end_of(&regions[j]).saturating_sub(first.region.offset_bytes) <= WINDOW_BYTES_MAX
                && (j == i
                    || regions[j].region.offset_bytes.saturating_sub(end_of(&regions[j - 1])) <= WINDOW_GAP_BYTES_MAX)
                && regions[j].region.offset_bytes >= first.region.offset_bytes
            {
                j += 1;
            }
            if j == i {
                // Large: its entry, then its run, read where they are.
                self.add_region((first.map, first.attempt), file, path, first.region, partition, partitions)
                    .map_err(|e| (first, e))?;
                i += 1;
                continue;
            }
            let window_end = regions[i..j].iter().map(end_of).max().unwrap_or(first.region.offset_bytes);
            window.resize((window_end - first.region.offset_bytes) as usize, 0);
            if file.read_exact_at(&mut window, first.region.offset_bytes).is_err() {
                // Cut short, or unreadable: each region on its own finds which map it is.
                for r in &regions[i..j] {
                    self.add_region((r.map, r.attempt), file, path, r.region, partition, partitions)
                        .map_err(|e| (*r, e))?;
                }
                i = j;
                continue;
            }
            for r in &regions[i..j] {
                self.add_from_window(r, &window, first.region.offset_bytes, path, partition, partitions)
                    .map_err(|e| (*r, e))?;
            }
            i = j;
        }
        Ok(())
    }

    /// One map's partition out of `window` (the file's bytes from `window_offset` on, holding its region).
    fn add_from_window(
        &mut self,
        r: &RegionOf,
        window: &[u8],
        window_offset: u64,
        path: &Path,
        partition: u32,
        partitions: u32,
    ) -> Result<(), RecordError> {
        let segment = locate_partition_in_bytes(window, window_offset, path, r.region, partition, partitions)?;
        let run = if segment.len_bytes <= MEMORY_RUN_BYTES_MAX
            && self.in_memory_bytes + segment.len_bytes <= MEMORY_RUNS_BYTES_MAX
        {
            // Inside the region, which is inside the window (checked by `locate_partition_in_bytes`).
            let start = (segment.offset_bytes - window_offset) as usize;
            let bytes = window[start..start + segment.len_bytes as usize].to_vec();
            self.in_memory_bytes += segment.len_bytes;
            Run::Memory { path: path.to_path_buf(), offset_bytes: segment.offset_bytes, bytes: Arc::new(bytes) }
        } else {
            Run::Segment { path: path.to_path_buf(), segment }
        };
        let bytes = Segment { offset_bytes: r.region.offset_bytes, len_bytes: r.region.len_bytes };
        self.push((r.map, r.attempt), path, bytes, run);
        Ok(())
    }

    fn push(&mut self, (map, attempt): (u32, AttemptId), path: &Path, bytes: Segment, run: Run) {
        self.runs.push((map, run));
        self.blame.sources.push(Source { map, attempt, path: path.to_path_buf(), bytes });
    }

    fn run_of(&mut self, file: &File, path: &Path, segment: Segment) -> Result<Run, RecordError> {
        reduce_input_run(file, path.to_path_buf(), segment, &mut self.in_memory_bytes).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                // The run's bytes are not all there: the file was cut short.
                RecordError::Truncated { path: path.to_path_buf(), offset: segment.offset_bytes }
            } else {
                RecordError::Io { path: path.to_path_buf(), source: e }
            }
        })
    }

    /// The runs in map order (as every reducer merges them, so equal keys' values come in the same order
    /// whatever the worker and the order of reading), and what to blame for damage found later.
    pub fn into_runs(mut self) -> (Vec<Run>, Blame) {
        self.runs.sort_by_key(|(m, _)| *m);
        (self.runs.into_iter().map(|(_, run)| run).collect(), self.blame)
    }
}

/// One map's partition as a reduce's input run. Small ones (thousands of small maps) are read now, through
/// `file`, the descriptor their index was read with: each would otherwise be opened again by the merge, and
/// merged in passes for want of descriptors. `in_memory_bytes` bounds them.
pub fn reduce_input_run(file: &File, path: PathBuf, segment: Segment, in_memory_bytes: &mut u64) -> io::Result<Run> {
    if segment.len_bytes > MEMORY_RUN_BYTES_MAX || *in_memory_bytes + segment.len_bytes > MEMORY_RUNS_BYTES_MAX {
        return Ok(Run::Segment { path, segment });
    }
    let mut bytes = vec![0u8; segment.len_bytes as usize];
    file.read_exact_at(&mut bytes, segment.offset_bytes)?;
    *in_memory_bytes += segment.len_bytes;
    Ok(Run::Memory { path, offset_bytes: segment.offset_bytes, bytes: Arc::new(bytes) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::Layout;
    use crate::maps_file::MapsFile;
    use crate::merge::MergedRuns;

    /// Two maps in one maps file, a byte of the second's run flipped: reading the index still works, the
    /// merge finds the damage, and the error is traced to the second map, not the first.
    #[test]
    fn damage_found_in_the_merge_is_blamed_on_the_map_whose_bytes_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout { work_dir: dir.path().to_path_buf(), staging_dir: dir.path().to_path_buf() };
        let mut maps = MapsFile::create(&layout, 1).unwrap();
        let mut ranges = Vec::new();
        for m in 0..2 {
            ranges.push(
                maps.append(1, 0, |mut writer| {
                    writer.write_partition(|w| {
                        (0..100).try_for_each(|i| w.append(&format!("k{i:03}"), &m.to_string()))
                    })?;
                    writer.finish()
                })
                .unwrap(),
            );
        }
        let path = maps.path().to_path_buf();
        let file = File::open(&path).unwrap();
        // A byte in the middle of the second map's run (past its magic and block header).
        let damaged_at = ranges[1].region.offset_bytes + 40;
        let mut byte = [0u8];
        file.read_exact_at(&mut byte, damaged_at).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .write_all_at(&[byte[0] ^ 0x20], damaged_at)
            .unwrap();
        let regions: Vec<RegionOf> = ranges
            .iter()
            .enumerate()
            .map(|(m, range)| RegionOf { map: m as u32, attempt: AttemptId(10 + m as u64), region: range.region })
            .collect();
        // Read both ways: region by region, and both in one read.
        let mut one_by_one = ReduceInputs::default();
        for r in &regions {
            one_by_one.add_region((r.map, r.attempt), &file, &path, r.region, 0, 1).unwrap();
        }
        let mut inputs = ReduceInputs::default();
        inputs.add_regions(&file, &path, regions.clone(), 0, 1).unwrap();
        assert_eq!(inputs.runs, one_by_one.runs);
        let (runs, blame) = inputs.into_runs();
        assert!(runs.iter().all(|run| matches!(run, Run::Memory { .. })));
        let error = MergedRuns::open(&runs)
            .and_then(|mut merged| {
                while merged.next_record()?.is_some() {}
                Ok(())
            })
            .expect_err("the damage went unnoticed");
        assert_eq!(blame.map_of(&error), Some((1, AttemptId(11))), "{error}");
        let elsewhere = RecordError::Checksum { path: dir.path().join("other"), offset: damaged_at };
        assert_eq!(blame.map_of(&elsewhere), None, "another file's damage is no map's");

        // The file cut short inside the second map's output: reading it names that map.
        let cut = ranges[1].region.offset_bytes + ranges[1].region.len_bytes / 2;
        std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
        let (lost, error) = ReduceInputs::default().add_regions(&file, &path, regions, 0, 1).unwrap_err();
        assert_eq!((lost.map, lost.attempt), (1, AttemptId(11)), "{error}");
    }
}
