//! A worker's map outputs file: every map attempt the worker runs appends its output (one
//! [`crate::map_file`] region) to the same file, as Hadoop's map tasks append their spills to one file and
//! record byte ranges in an index. The coordinator records each committed map's byte range
//! ([`MapOutputRange`]); nothing is created, renamed or removed per map.
//!
//! Why: at thousands of small maps, one file per map was most of the job's time, nearly all of it in the
//! kernel (ext4 allocating an inode and scanning for recently deleted ones, the directory's lock taken by
//! every create, rename and unlink, and freeing each file's blocks at the end), and every reduce opened
//! every map's file. Now a worker creates one file, and a reduce opens one file per worker.
//!
//! Rules that keep it safe:
//! - One writer: the worker that created it (`create_new`; its name is derived from an attempt id, which
//!   the coordinator never issues twice, so two workers never share a file). Readers (reducers, the
//!   coordinator's check at commit, a worker's data server) only read ranges that were reported finished.
//! - A region is written once and never rewritten once reported: a failed attempt's partial region is cut
//!   off before anything else is appended, and a finished one that is not committed is discarded by
//!   punching a hole in it (its bytes read as zeros, which no check accepts), never by writing over it.
//! - Not fsynced, like every map output: a lost map output is a map run again.
use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::layout::Layout;
use crate::map_file::{MapFileWriter, Region};
use crate::records::RecordError;

/// Where a map attempt's output is: `region` of the maps file `file` of the worker that ran it
/// ([`Layout::maps_file`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MapOutputRange {
    pub file: u64,
    pub region: Region,
}

/// The maps file this worker appends to.
pub struct MapsFile {
    id: u64,
    path: PathBuf,
    file: File,
    /// Where the next region starts: the end of the last finished one.
    end_bytes: u64,
    /// The file's position is not at `end_bytes` (a failed append was cut off).
    reposition: bool,
}

impl MapsFile {
    /// Creates `layout.maps_file(id)`. `id` is the attempt id of the first map attempt written into it, so no
    /// other worker of the job ever uses the name. The work directory is not created: if it is gone the job
    /// is over, and a late attempt must not bring it back.
    pub fn create(layout: &Layout, id: u64) -> Result<MapsFile, RecordError> {
        let path = layout.maps_file(id);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|source| RecordError::Io { path: path.clone(), source })?;
        Ok(MapsFile { id, path, file, end_bytes: 0, reposition: false })
    }

    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one map output region: `write` writes its partitions through the writer it is given and
    /// returns the region's size (what [`MapFileWriter::finish`] returns). If it fails, whatever it wrote is
    /// cut off again, so the next region starts where this one would have. `expected_bytes` sizes the write
    /// buffer.
    pub fn append(
        &mut self,
        partitions: u32,
        expected_bytes: usize,
        write: impl FnOnce(MapFileWriter) -> Result<u64, RecordError>,
    ) -> Result<MapOutputRange, RecordError> {
        let io_err = |source| RecordError::Io { path: self.path.clone(), source };
        if self.reposition {
            self.file.seek(SeekFrom::Start(self.end_bytes)).map_err(io_err)?;
            self.reposition = false;
        }
        // A second descriptor of the same open file: it shares the position, so the writer appends here.
        let writer =
            MapFileWriter::starting_at(self.file.try_clone().map_err(io_err)?, &self.path, partitions, expected_bytes);
        let start = self.end_bytes;
        match write(writer) {
            Ok(len_bytes) => {
                self.end_bytes += len_bytes;
                debug_assert_eq!(self.file.stream_position().ok(), Some(self.end_bytes), "{}", self.path.display());
                Ok(MapOutputRange { file: self.id, region: Region { offset_bytes: start, len_bytes } })
            }
            Err(e) => {
                // Cut the partial region off (nobody knows of it); if that fails the next append still
                // starts at `end_bytes` and writes over it.
                let _ = self.file.set_len(start);
                self.reposition = true;
                Err(e)
            }
        }
    }

    /// Discards a finished region that will never be read (an attempt that was not committed).
    pub fn discard(&self, region: Region) {
        debug_assert!(region.end_bytes().is_some_and(|end| end <= self.end_bytes), "{region:?} is not finished");
        if let Err(e) = punch_hole(&self.file, region) {
            tracing::debug!("discarding {region:?} of {}: {e}", self.path.display());
        }
    }
}

/// Frees `region` of `file` (the file keeps its size; the region reads as zeros). Used for map outputs
/// that are not committed, so that they cannot be read by mistake and take no disk space.
pub fn punch_hole(file: &File, region: Region) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(region.offset_bytes), libc::off_t::try_from(region.len_bytes))
    else {
        return Err(io::Error::other(format!("{region:?} is beyond what a file can hold")));
    };
    if len == 0 {
        return Ok(());
    }
    // SAFETY: fallocate reads no memory of ours; the descriptor is open for writing for the call's length.
    let done = unsafe {
        libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE, offset, len)
    };
    if done == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map_file::locate_partition_in;
    use crate::records::RecordReader;

    fn layout(dir: &Path) -> Layout {
        Layout { work_dir: dir.to_path_buf(), staging_dir: dir.to_path_buf() }
    }

    fn records(file: &File, path: &Path, range: MapOutputRange, r: u32, partitions: u32) -> Vec<(String, String)> {
        let segment = locate_partition_in(file, path, range.region, r, partitions).unwrap();
        let mut reader =
            RecordReader::from_segment(file.try_clone().unwrap(), path, segment.offset_bytes, segment.len_bytes)
                .unwrap();
        let mut records = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            records.push(record);
        }
        records
    }

    fn write_map(maps: &mut MapsFile, key: &str) -> Result<MapOutputRange, RecordError> {
        maps.append(2, 0, |mut writer| {
            writer.write_partition(|w| w.append(key, "0"))?;
            writer.write_partition(|w| w.append(key, "1"))?;
            writer.finish()
        })
    }

    /// Several maps in one file, a failed one in between cut off, a discarded one unreadable: each committed
    /// region reads back exactly, wherever it lies.
    #[test]
    fn regions_append_read_back_and_failed_or_discarded_ones_never_read_as_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut maps = MapsFile::create(&layout(dir.path()), 7).unwrap();
        assert_eq!(maps.path(), dir.path().join("maps-7.map"));
        assert!(MapsFile::create(&layout(dir.path()), 7).is_err(), "a name is never taken twice");
        let first = write_map(&mut maps, "first").unwrap();
        let failed = maps.append(2, 0, |mut writer| {
            writer.write_partition(|w| w.append("half", "written"))?;
            Err(RecordError::Corrupt { path: PathBuf::from("app"), offset: 0, what: "the map failed".into() })
        });
        assert!(failed.is_err());
        let second = write_map(&mut maps, "second").unwrap();
        let discarded = write_map(&mut maps, "discarded").unwrap();
        let third = write_map(&mut maps, "third").unwrap();
        assert_eq!(first.region.offset_bytes, 0);
        assert_eq!(second.region.offset_bytes, first.region.len_bytes, "the failed map's bytes were cut off");
        maps.discard(discarded.region);
        let file = File::open(maps.path()).unwrap();
        for (range, key) in [(first, "first"), (second, "second"), (third, "third")] {
            for r in 0..2 {
                assert_eq!(records(&file, maps.path(), range, r, 2), [(key.to_string(), r.to_string())]);
            }
        }
        assert!(locate_partition_in(&file, maps.path(), discarded.region, 0, 2).is_err(), "a discarded map read");
    }
}
