//! A map task's output: **one** region of a file holding one sorted run per reduce partition, followed by
//! an index of where each run is (Hadoop's map output file and its index, here in one region so the two can
//! never disagree or be committed apart). A region is a whole file (spills) or a stretch of a worker's map
//! outputs file (`maps_file`), to which every map attempt of that worker appends its own: no file is
//! created, renamed or removed per map. A map used to write R files and fsync each; at 2,000 small maps and
//! 50 reduces that was 100,000 files and fsyncs for 2 MB of text, and one file per map still cost most of
//! the job (ext4's inode allocation and the directory's lock).
//!
//! ```text
//! region  = segment[0] .. segment[R-1] entry[0] .. entry[R-1] trailer
//! segment = a records run (`records`: magic, checksummed blocks, end marker), empty partitions included
//! entry   = offset:u64le len:u64le crc32c(offset len r:u32le):u32le              20 bytes
//! trailer = partitions:u32le crc32c(partitions INDEX_MAGIC):u32le INDEX_MAGIC       16 bytes
//! ```
//! Offsets in entries are from the region's start, so a region reads the same wherever it lies. A reducer
//! reads the trailer and its own entry only (one small read, whatever R is), then its segment, whose blocks
//! and end marker are checked as any records file's. Each entry's checksum covers its partition number, so
//! an entry read from the wrong place is an error, not another partition's data; every byte of a region is
//! checked by some reducer, so damage anywhere is found.
//!
//! Not fsynced: intermediate data is recomputable. A map output lost to a crash is a re-executed map, as
//! with a dead worker (the paper's section 3.3; Hadoop does not sync map outputs either).
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::records::{RecordError, RecordWriter};

/// Identifies the index trailer of a keel map output file, format version 1.
pub const INDEX_MAGIC: [u8; 8] = *b"KEELMRX1";
const ENTRY_BYTES: u64 = 20;
const TRAILER_BYTES: u64 = 16;
/// An entry and the trailer are read at once when at most this far apart (a page).
const TAIL_READ_BYTES_MAX: u64 = 4096;
/// Largest write buffer: one per map attempt, so generous.
pub const WRITE_BUFFER_BYTES_MAX: usize = 256 * 1024;
/// Smallest write buffer.
const WRITE_BUFFER_BYTES_MIN: usize = 4 * 1024;

/// Where one partition's run is inside a file (offsets from the file's start).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub offset_bytes: u64,
    pub len_bytes: u64,
}

impl Segment {
    /// Whether file offset `offset` lies inside this segment.
    pub fn contains(&self, offset: u64) -> bool {
        offset >= self.offset_bytes && offset - self.offset_bytes < self.len_bytes
    }
}

/// Where one map output (segments, index and trailer) is inside a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Region {
    pub offset_bytes: u64,
    pub len_bytes: u64,
}

impl Region {
    pub fn end_bytes(&self) -> Option<u64> {
        self.offset_bytes.checked_add(self.len_bytes)
    }
}

/// Writes a map output region, partition after partition, in order.
pub struct MapFileWriter {
    out: Option<BufWriter<File>>,
    path: PathBuf,
    partitions: u32,
    index: Vec<Segment>,
    /// Bytes written so far, from the region's start.
    position_bytes: u64,
    /// The block buffer, passed from one partition's writer to the next.
    block: Vec<u8>,
}

impl MapFileWriter {
    /// A new file holding one region.
    pub fn create(path: &Path, partitions: u32) -> Result<MapFileWriter, RecordError> {
        let file = File::create(path).map_err(|source| RecordError::Io { path: path.to_path_buf(), source })?;
        Ok(MapFileWriter::starting_at(file, path, partitions, WRITE_BUFFER_BYTES_MAX))
    }

    /// A region written from `file`'s current position on (the caller placed it; `path` is for errors),
    /// through a buffer of about `buffer_bytes` (the expected output size: thousands of small maps would
    /// each allocate and free a large buffer for a few kilobytes).
    pub fn starting_at(file: File, path: &Path, partitions: u32, buffer_bytes: usize) -> MapFileWriter {
        let buffer_bytes = buffer_bytes.clamp(WRITE_BUFFER_BYTES_MIN, WRITE_BUFFER_BYTES_MAX);
        MapFileWriter {
            out: Some(BufWriter::with_capacity(buffer_bytes, file)),
            path: path.to_path_buf(),
            partitions,
            index: Vec::with_capacity(partitions as usize),
            position_bytes: 0,
            block: Vec::new(),
        }
    }

    /// Writes the next partition's run: `write` appends its records, sorted by key.
    pub fn write_partition(
        &mut self,
        write: impl FnOnce(&mut RecordWriter) -> Result<(), RecordError>,
    ) -> Result<(), RecordError> {
        assert!(self.index.len() < self.partitions as usize, "more partitions written than declared");
        let out = self.out.take().ok_or_else(|| RecordError::Corrupt {
            path: self.path.clone(),
            offset: self.position_bytes,
            what: "an earlier partition failed to write".into(),
        })?;
        let mut writer = RecordWriter::segment(out, &self.path, std::mem::take(&mut self.block))?;
        write(&mut writer)?;
        let (out, len_bytes, block) = writer.finish_segment()?;
        self.out = Some(out);
        self.block = block;
        self.index.push(Segment { offset_bytes: self.position_bytes, len_bytes });
        self.position_bytes += len_bytes;
        Ok(())
    }

    /// Writes the index and flushes (no fsync, see the module comment). Returns the region's size in bytes.
    pub fn finish(mut self) -> Result<u64, RecordError> {
        assert_eq!(self.index.len(), self.partitions as usize, "every partition must be written, even empty");
        let io_err = |source| RecordError::Io { path: self.path.clone(), source };
        let mut out = self.out.take().ok_or_else(|| RecordError::Corrupt {
            path: self.path.clone(),
            offset: self.position_bytes,
            what: "a partition failed to write".into(),
        })?;
        for (r, segment) in self.index.iter().enumerate() {
            out.write_all(&encode_entry(*segment, r as u32)).map_err(io_err)?;
        }
        out.write_all(&encode_trailer(self.partitions)).map_err(io_err)?;
        out.into_inner().map_err(|e| io_err(e.into_error()))?;
        Ok(self.position_bytes + ENTRY_BYTES * u64::from(self.partitions) + TRAILER_BYTES)
    }
}

fn encode_entry(segment: Segment, partition: u32) -> [u8; ENTRY_BYTES as usize] {
    let mut entry = [0u8; ENTRY_BYTES as usize];
    entry[..8].copy_from_slice(&segment.offset_bytes.to_le_bytes());
    entry[8..16].copy_from_slice(&segment.len_bytes.to_le_bytes());
    let crc = entry_crc(&entry[..16], partition);
    entry[16..].copy_from_slice(&crc.to_le_bytes());
    entry
}

fn entry_crc(offset_and_len: &[u8], partition: u32) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(offset_and_len), &partition.to_le_bytes())
}

fn encode_trailer(partitions: u32) -> [u8; TRAILER_BYTES as usize] {
    let mut trailer = [0u8; TRAILER_BYTES as usize];
    trailer[..4].copy_from_slice(&partitions.to_le_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&trailer[..4]), &INDEX_MAGIC);
    trailer[4..8].copy_from_slice(&crc.to_le_bytes());
    trailer[8..].copy_from_slice(&INDEX_MAGIC);
    trailer
}

/// Finds partition `partition` of a map output file (one region, the whole file) written for `partitions`
/// partitions, checking the trailer and the entry. Returns the open file and the segment (read it with
/// [`crate::records::RecordReader::from_segment`]).
pub fn locate_partition(path: &Path, partition: u32, partitions: u32) -> Result<(File, Segment), RecordError> {
    let io_err = |source| RecordError::Io { path: path.to_path_buf(), source };
    let file = File::open(path).map_err(io_err)?;
    let file_bytes = file.metadata().map_err(io_err)?.len();
    let region = Region { offset_bytes: 0, len_bytes: file_bytes };
    let segment = locate_partition_in(&file, path, region, partition, partitions)?;
    Ok((file, segment))
}

/// Finds partition `partition` of the map output at `region` of `file` (opened from `path`, for errors),
/// written for `partitions` partitions, checking the trailer and the entry: one read when they are close.
/// Returns the segment, in file offsets. Every error about the data names a byte inside the region.
pub fn locate_partition_in(
    file: &File,
    path: &Path,
    region: Region,
    partition: u32,
    partitions: u32,
) -> Result<Segment, RecordError> {
    let io_err = |source| RecordError::Io { path: path.to_path_buf(), source };
    let at = IndexAt::of(path, region, partition, partitions)?;
    // The entry and the trailer in one read when they are close (a reduce reads one per map: at 2,000 maps
    // and 50 reduces, 100,000 system calls saved), in two otherwise.
    let mut trailer = [0u8; TRAILER_BYTES as usize];
    let mut entry = [0u8; ENTRY_BYTES as usize];
    let read_exact_at = |buffer: &mut [u8], offset: u64| {
        file.read_exact_at(buffer, offset).map_err(|e| match e.kind() {
            // The region runs past the file's end: the file was cut short.
            std::io::ErrorKind::UnexpectedEof => RecordError::Truncated { path: path.to_path_buf(), offset },
            _ => io_err(e),
        })
    };
    let tail_bytes = at.region_end - at.entry_offset;
    if tail_bytes <= TAIL_READ_BYTES_MAX {
        let mut tail = [0u8; TAIL_READ_BYTES_MAX as usize];
        let tail = &mut tail[..tail_bytes as usize];
        read_exact_at(tail, at.entry_offset)?;
        entry.copy_from_slice(&tail[..ENTRY_BYTES as usize]);
        trailer.copy_from_slice(&tail[tail.len() - TRAILER_BYTES as usize..]);
    } else {
        read_exact_at(&mut trailer, at.trailer_offset)?;
        read_exact_at(&mut entry, at.entry_offset)?;
    }
    at.segment(path, &entry, &trailer)
}

/// [`locate_partition_in`] for a region already read into memory: `bytes` are the file's bytes from offset
/// `bytes_offset` on and hold the whole region. Checks exactly the same things.
pub fn locate_partition_in_bytes(
    bytes: &[u8],
    bytes_offset: u64,
    path: &Path,
    region: Region,
    partition: u32,
    partitions: u32,
) -> Result<Segment, RecordError> {
    let at = IndexAt::of(path, region, partition, partitions)?;
    let slice = |offset: u64, len: u64| {
        offset
            .checked_sub(bytes_offset)
            .and_then(|start| usize::try_from(start).ok())
            .and_then(|start| bytes.get(start..start.checked_add(len as usize)?))
            .ok_or_else(|| RecordError::Truncated { path: path.to_path_buf(), offset })
    };
    let entry = slice(at.entry_offset, ENTRY_BYTES)?;
    let trailer = slice(at.trailer_offset, TRAILER_BYTES)?;
    at.segment(path, entry, trailer)
}

/// Where a partition's index entry and the trailer of a region are.
struct IndexAt {
    region: Region,
    partition: u32,
    partitions: u32,
    region_end: u64,
    /// Offset of the index from the region's start: where the segments' data ends.
    index_start: u64,
    entry_offset: u64,
    trailer_offset: u64,
}

impl IndexAt {
    fn of(path: &Path, region: Region, partition: u32, partitions: u32) -> Result<IndexAt, RecordError> {
        assert!(partition < partitions, "partition {partition} of {partitions}");
        let index_bytes = ENTRY_BYTES * u64::from(partitions);
        let (Some(region_end), Some(index_start)) =
            (region.end_bytes(), region.len_bytes.checked_sub(TRAILER_BYTES + index_bytes))
        else {
            return Err(RecordError::Truncated { path: path.to_path_buf(), offset: region.offset_bytes });
        };
        let index_offset = region.offset_bytes + index_start;
        Ok(IndexAt {
            region,
            partition,
            partitions,
            region_end,
            index_start,
            entry_offset: index_offset + ENTRY_BYTES * u64::from(partition),
            trailer_offset: index_offset + index_bytes,
        })
    }

    /// Checks the trailer and the entry (as read from the file) and returns the partition's segment.
    fn segment(&self, path: &Path, entry: &[u8], trailer: &[u8]) -> Result<Segment, RecordError> {
        let corrupt = |offset, what: String| RecordError::Corrupt { path: path.to_path_buf(), offset, what };
        debug_assert_eq!((entry.len() as u64, trailer.len() as u64), (ENTRY_BYTES, TRAILER_BYTES));
        let (partition, partitions) = (self.partition, self.partitions);
        if trailer[8..] != INDEX_MAGIC {
            return Err(RecordError::BadMagic { path: path.to_path_buf(), offset: self.trailer_offset });
        }
        let written_for = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        if trailer != encode_trailer(written_for) {
            return Err(RecordError::Checksum { path: path.to_path_buf(), offset: self.trailer_offset });
        }
        if written_for != partitions {
            return Err(corrupt(
                self.trailer_offset,
                format!("written for {written_for} partitions, expected {partitions}"),
            ));
        }
        let crc = u32::from_le_bytes([entry[16], entry[17], entry[18], entry[19]]);
        if crc != entry_crc(&entry[..16], partition) {
            return Err(RecordError::Checksum { path: path.to_path_buf(), offset: self.entry_offset });
        }
        let le_u64 = |bytes: &[u8]| bytes.iter().rev().fold(0u64, |n, &b| (n << 8) | u64::from(b));
        let (offset, len_bytes) = (le_u64(&entry[..8]), le_u64(&entry[8..16]));
        match offset.checked_add(len_bytes) {
            Some(end) if end <= self.index_start => {
                Ok(Segment { offset_bytes: self.region.offset_bytes + offset, len_bytes })
            }
            _ => Err(corrupt(
                self.entry_offset,
                format!("partition {partition}'s run lies outside the map output's data"),
            )),
        }
    }
}

#[cfg(test)]
mod tests;
