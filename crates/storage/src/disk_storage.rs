//! [`DiskStorage`]: Raft's durable state in a directory, as a segmented WAL plus snapshot files. The crate docs
//! describe the layout, the record format and the recovery rules.
use std::cell::Cell;
use std::path::{Path, PathBuf};

use keel_raft::{DurableState, HardState, PersistUpdate};

use crate::Storage;
use crate::error::Error;
use crate::fs::{FileSystem, WalFile};
use crate::segment::SegmentName;
use crate::snapshot_file::{self, SnapshotRef, TMP_SUFFIX};
use crate::wal::{self, LogTip, SegmentHeader, SegmentInfo, TornTail, UpdateView};

/// A new segment is started once the active one reaches this size. It is the granularity of prefix compaction (a
/// segment is deleted only when a snapshot covers all of it, so up to one segment of covered entries stays on
/// disk) and of what recovery reads into memory at once; 64 MiB keeps both small next to the snapshot, while
/// making rotation (a file create and a directory fsync) rare: once per 64 MiB of log.
pub const SEGMENT_SIZE_BYTES_TARGET: u64 = 64 << 20;

/// After a persist, the encoding buffer keeps at most this much capacity. Steady appends reuse it without
/// allocating; one unusually large update does not pin its size in memory for the node's life.
pub const WAL_BUFFER_CAPACITY_BYTES_RETAINED_MAX: usize = 4 << 20;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// See [`SEGMENT_SIZE_BYTES_TARGET`]; tests use tiny segments to exercise rotation and compaction.
    pub segment_size_bytes_target: u64,
}

impl Default for Options {
    fn default() -> Self {
        Options { segment_size_bytes_target: SEGMENT_SIZE_BYTES_TARGET }
    }
}

/// What [`DiskStorage::open`] found and repaired.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Recovery {
    /// An incomplete last record (a write cut short by a crash), cut off.
    pub torn_tail: Option<TornTail>,
    /// Files deleted as garbage: temporary files, snapshots the WAL no longer refers to, segments a snapshot
    /// covers, a segment whose creation never finished.
    pub removed: Vec<PathBuf>,
}

/// Raft's durable state on a [`FileSystem`]. See the crate docs.
pub struct DiskStorage<F: FileSystem> {
    fs: F,
    dir: PathBuf,
    options: Options,
    /// In creation order; the last one is `active`.
    segments: Vec<SegmentInfo>,
    active: F::File,
    tip: LogTip,
    hard_state: HardState,
    snapshot: Option<SnapshotRef>,
    /// Reused for every persist, so the steady path allocates nothing.
    wal_buf: Vec<u8>,
    /// Set by the first failure that leaves the disk's state unknown; every later call is refused (fail-stop).
    stopped: Option<String>,
    recovery: Recovery,
    /// The durable state exactly as `open` just read and checked it, handed to the first `load` if nothing was
    /// persisted in between: a restart then reads the WAL and the snapshot once, not twice (a 1 GB snapshot took
    /// 5.0 s to recover with the second read, see `recovery_bench`). Dropped by the first persist.
    recovered: Cell<Option<DurableState>>,
}

impl<F: FileSystem> DiskStorage<F> {
    /// Opens (or creates) the storage in `dir`, with default options.
    pub fn open(fs: F, dir: impl Into<PathBuf>) -> Result<Self, Error> {
        Self::open_with(fs, dir, Options::default())
    }

    /// Opens (or creates) the storage in `dir`: replays the WAL, checks the snapshot file, cuts a torn tail off
    /// (with a warning) and deletes garbage. Refuses to open on any corruption (see [`Error`]).
    pub fn open_with(fs: F, dir: impl Into<PathBuf>, options: Options) -> Result<Self, Error> {
        let dir = dir.into();
        fs.create_dir_all(&dir).map_err(Error::io("create directory", &dir))?;
        let mut replayed = wal::replay(&fs, &dir)?;
        if let Some(reference) = &replayed.snapshot {
            // Read it whole now, so that a missing or damaged snapshot stops the node at start, not at its next
            // restart when the WAL that could explain it is long gone.
            replayed.state.snapshot = Some(snapshot_file::read(&fs, &dir, reference)?);
        }
        let mut recovery = Recovery::default();
        if let Some(torn) = &replayed.torn_tail {
            tracing::warn!(
                file = %torn.path.display(),
                offset = torn.offset,
                bytes_cut = torn.len_bytes - torn.offset,
                reason = %torn.reason,
                "WAL ends with an incomplete record (a write cut short by a crash, never acknowledged); cutting it off"
            );
            let mut file = fs.open_append(&torn.path).map_err(Error::io("open", &torn.path))?;
            file.set_len(torn.offset).map_err(Error::io("truncate", &torn.path))?;
            file.sync_data().map_err(Error::io("fdatasync", &torn.path))?;
            recovery.torn_tail = Some(torn.clone());
        }
        let mut segments = replayed.segments;
        let garbage = garbage(&fs, &dir, &segments, replayed.snapshot.as_ref(), replayed.unfinished_segment)?;
        for path in &garbage {
            fs.remove_file(path).map_err(Error::io("remove", path))?;
        }
        segments.retain(|s| !garbage.contains(&s.path));
        if !garbage.is_empty() {
            fs.sync_dir(&dir).map_err(Error::io("fsync directory", &dir))?;
        }
        recovery.removed = garbage;
        let (segments, active) = match segments.last() {
            Some(last) => {
                let active = fs.open_append(&last.path).map_err(Error::io("open", &last.path))?;
                (segments, active)
            }
            None => {
                let seq = recovery.removed.iter().filter_map(|p| segment_name(p)).map(|n| n.seq + 1).max();
                let name = SegmentName { seq: seq.unwrap_or(0), first_index: replayed.tip.next_index };
                let header = SegmentHeader {
                    first_index: name.first_index,
                    hard_state: replayed.hard_state,
                    snapshot: replayed.snapshot,
                };
                let mut buf = Vec::new();
                wal::encode_header(&mut buf, &header)?;
                let (info, active) = create_segment(&fs, &dir, name, &buf)?;
                (vec![info], active)
            }
        };
        Ok(DiskStorage {
            fs,
            dir,
            options,
            segments,
            active,
            tip: replayed.tip,
            hard_state: replayed.hard_state,
            snapshot: replayed.snapshot,
            wal_buf: Vec::new(),
            stopped: None,
            recovery,
            recovered: Cell::new(Some(replayed.state)),
        })
    }

    /// What opening found and repaired.
    pub fn recovery(&self) -> &Recovery {
        &self.recovery
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The segment files, oldest first.
    pub fn segment_paths(&self) -> Vec<PathBuf> {
        self.segments.iter().map(|s| s.path.clone()).collect()
    }

    /// Why the storage refuses calls, if it does.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.as_deref()
    }

    fn check_running(&self) -> Result<(), Error> {
        match &self.stopped {
            Some(cause) => Err(Error::Stopped { cause: cause.clone() }),
            None => Ok(()),
        }
    }

    /// The writes of one persist, in the order durability needs. Any error here leaves the disk's state unknown.
    fn write(
        &mut self,
        snapshot: Option<(&SnapshotRef, &[u8])>,
        new_segment: Option<SegmentName>,
    ) -> Result<(), Error> {
        if let Some((reference, bytes)) = snapshot {
            // Durable under its final name (file and directory fsynced) before the WAL record that refers to it.
            snapshot_file::write(&self.fs, &self.dir, reference, bytes)?;
        }
        match new_segment {
            Some(name) => {
                let (info, active) = create_segment(&self.fs, &self.dir, name, &self.wal_buf)?;
                self.segments.push(info);
                self.active = active;
            }
            None => {
                let active = self.segments.last_mut().expect("there is always an active segment");
                // One write and one fdatasync, however many entries: group commit.
                self.active.append(&self.wal_buf).map_err(Error::io("write", &active.path))?;
                self.active.sync_data().map_err(Error::io("fdatasync", &active.path))?;
                active.len_bytes += self.wal_buf.len() as u64;
            }
        }
        Ok(())
    }

    /// Deletes what a new snapshot made unnecessary. The snapshot reference is durable already; a deletion that a
    /// crash undoes leaves garbage that the next `open` deletes, never a wrong state, so nothing here is fsynced
    /// and a failure is only a warning.
    fn collect_garbage(&mut self, old_snapshot: Option<SnapshotRef>) {
        let mut paths = Vec::new();
        if let Some(old) = old_snapshot
            && Some(old.file_name()) != self.snapshot.map(|s| s.file_name())
        {
            paths.push(old.path(&self.dir));
        }
        let covered = covered_prefix(&self.segments, self.tip.snapshot.index);
        paths.extend(self.segments.drain(..covered).map(|s| s.path));
        for path in paths {
            if let Err(e) = self.fs.remove_file(&path) {
                tracing::warn!(file = %path.display(), error = %e, "could not delete a file the log no longer needs");
            }
        }
    }
}

impl<F: FileSystem> Storage for DiskStorage<F> {
    type Error = Error;

    fn persist(&mut self, update: &PersistUpdate) -> Result<(), Error> {
        self.check_running()?;
        self.recovered.take();
        // Checked before anything is written: a bad update is refused whole and the storage keeps running.
        let tip = wal::check_update(&self.tip, &UpdateView::from(update))
            .map_err(|reason| Error::InvalidUpdate { reason })?;
        let mut snapshot_bytes = Vec::new();
        let snapshot = match &update.snapshot {
            Some(s) => Some(snapshot_file::encode(s, &mut snapshot_bytes)?),
            None => None,
        };
        self.wal_buf.clear();
        let active = self.segments.last().expect("there is always an active segment");
        let new_segment = (active.len_bytes >= self.options.segment_size_bytes_target)
            .then_some(SegmentName { seq: active.name.seq + 1, first_index: self.tip.next_index });
        if let Some(name) = new_segment {
            let header =
                SegmentHeader { first_index: name.first_index, hard_state: self.hard_state, snapshot: self.snapshot };
            wal::encode_header(&mut self.wal_buf, &header)?;
        }
        wal::encode_batch(&mut self.wal_buf, update, snapshot.as_ref())?;

        if let Err(e) = self.write(snapshot.as_ref().map(|r| (r, snapshot_bytes.as_slice())), new_segment) {
            // Fail-stop: after a failed write or fsync nobody knows what is on disk, and a retried fsync can
            // succeed without the data (fsyncgate). Only a restart, which reads the disk back, is safe.
            self.stopped = Some(e.to_string());
            return Err(e);
        }
        self.tip = tip;
        if let Some(hard_state) = update.hard_state {
            self.hard_state = hard_state;
        }
        if let Some(entry) = update.entries.last()
            && let Some(active) = self.segments.last_mut()
        {
            active.entry_index_max = active.entry_index_max.max(entry.index);
        }
        if self.wal_buf.capacity() > WAL_BUFFER_CAPACITY_BYTES_RETAINED_MAX {
            self.wal_buf = Vec::new();
        }
        if snapshot.is_some() {
            let old = std::mem::replace(&mut self.snapshot, snapshot);
            self.collect_garbage(old);
        }
        Ok(())
    }

    /// Reads the durable state back from disk (not from memory), so it returns exactly what a restart would see;
    /// right after `open`, that is what `open` read.
    fn load(&self) -> Result<DurableState, Error> {
        self.check_running()?;
        if let Some(state) = self.recovered.take() {
            return Ok(state);
        }
        let replayed = wal::replay(&self.fs, &self.dir)?;
        let mut state = replayed.state;
        if let Some(reference) = &replayed.snapshot {
            state.snapshot = Some(snapshot_file::read(&self.fs, &self.dir, reference)?);
        }
        Ok(state)
    }
}

fn segment_name(path: &Path) -> Option<SegmentName> {
    path.file_name().and_then(|n| n.to_str()).and_then(SegmentName::parse)
}

/// How many segments at the front hold only entries the snapshot covers. The last (active) segment always stays:
/// it holds the newest hard state and snapshot reference.
fn covered_prefix(segments: &[SegmentInfo], snapshot_index: u64) -> usize {
    let candidates = segments.len().saturating_sub(1);
    segments[..candidates].iter().take_while(|s| s.entry_index_max <= snapshot_index).count()
}

/// Files in `dir` that hold nothing the durable state needs.
fn garbage<F: FileSystem>(
    fs: &F,
    dir: &Path,
    segments: &[SegmentInfo],
    snapshot: Option<&SnapshotRef>,
    unfinished_segment: Option<PathBuf>,
) -> Result<Vec<PathBuf>, Error> {
    let live_snapshot = snapshot.map(SnapshotRef::file_name);
    let mut garbage: Vec<PathBuf> = fs
        .list_dir(dir)
        .map_err(Error::io("list", dir))?
        .into_iter()
        .filter(|name| {
            name.ends_with(TMP_SUFFIX)
                || (snapshot_file::is_snapshot_file_name(name) && Some(name) != live_snapshot.as_ref())
        })
        .map(|name| dir.join(name))
        .collect();
    let snapshot_index = snapshot.map_or(0, |s| s.meta.index);
    garbage.extend(segments[..covered_prefix(segments, snapshot_index)].iter().map(|s| s.path.clone()));
    garbage.extend(unfinished_segment);
    Ok(garbage)
}

/// Creates a segment holding `bytes` (its header, and maybe a first batch) and makes it durable: data, then name.
fn create_segment<F: FileSystem>(
    fs: &F,
    dir: &Path,
    name: SegmentName,
    bytes: &[u8],
) -> Result<(SegmentInfo, F::File), Error> {
    let path = dir.join(name.file_name());
    let mut file = fs.create(&path).map_err(Error::io("create", &path))?;
    file.append(bytes).map_err(Error::io("write", &path))?;
    file.sync_data().map_err(Error::io("fdatasync", &path))?;
    fs.sync_dir(dir).map_err(Error::io("fsync directory", dir))?;
    let info = SegmentInfo { name, path, len_bytes: bytes.len() as u64, entry_index_max: 0 };
    Ok((info, file))
}
