//! A map task's output: **one** file holding one sorted run per reduce partition, followed by an index of
//! where each run is (Hadoop's map output file and its index, here in one file so the two can never
//! disagree or be committed apart). A map used to write R files and fsync each; at 2,000 small maps and 50
//! reduces that was 100,000 files and fsyncs for 2 MB of text.
//!
//! ```text
//! file    = segment[0] .. segment[R-1] entry[0] .. entry[R-1] trailer
//! segment = a records file (`records`: magic, checksummed blocks, end marker), empty partitions included
//! entry   = offset:u64le len:u64le crc32c(offset len r:u32le):u32le              20 bytes
//! trailer = partitions:u32le crc32c(partitions INDEX_MAGIC):u32le INDEX_MAGIC       16 bytes
//! ```
//! A reducer reads the trailer and its own entry only (two small reads, whatever R is), then its segment,
//! whose blocks and end marker are checked as any records file's. Each entry's checksum covers its
//! partition number, so an entry read from the wrong place is an error, not another partition's data.
//!
//! Not fsynced: intermediate data is recomputable. A map output lost to a crash is a re-executed map, as
//! with a dead worker (the paper's section 3.3; Hadoop does not sync map outputs either).
use std::fs::File;
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::records::{RecordError, RecordWriter};

/// Identifies the index trailer of a keel map output file, format version 1.
pub const INDEX_MAGIC: [u8; 8] = *b"KEELMRX1";
const ENTRY_BYTES: u64 = 20;
const TRAILER_BYTES: u64 = 16;
/// An entry and the trailer are read at once when at most this far apart (a page).
const TAIL_READ_BYTES_MAX: u64 = 4096;
/// Write buffer: one per map attempt, so generous.
const WRITE_BUFFER_BYTES: usize = 256 * 1024;

/// Where one partition's run is inside a map output file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    pub offset_bytes: u64,
    pub len_bytes: u64,
}

/// Writes a map output file, partition after partition, in order.
pub struct MapFileWriter {
    out: Option<BufWriter<File>>,
    path: PathBuf,
    partitions: u32,
    index: Vec<Segment>,
    position_bytes: u64,
}

impl MapFileWriter {
    pub fn create(path: &Path, partitions: u32) -> Result<MapFileWriter, RecordError> {
        let file = File::create(path).map_err(|source| RecordError::Io { path: path.to_path_buf(), source })?;
        Ok(MapFileWriter {
            out: Some(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file)),
            path: path.to_path_buf(),
            partitions,
            index: Vec::with_capacity(partitions as usize),
            position_bytes: 0,
        })
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
        let mut writer = RecordWriter::segment(out, &self.path)?;
        write(&mut writer)?;
        let (out, len_bytes) = writer.finish_segment()?;
        self.out = Some(out);
        self.index.push(Segment { offset_bytes: self.position_bytes, len_bytes });
        self.position_bytes += len_bytes;
        Ok(())
    }

    /// Writes the index and flushes (no fsync, see the module comment). Returns the file's size in bytes.
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

/// Finds partition `partition` of a map output file written for `partitions` partitions, checking the
/// trailer and the entry. Returns the open file and the segment (read it with
/// [`crate::records::RecordReader::from_segment`]).
pub fn locate_partition(path: &Path, partition: u32, partitions: u32) -> Result<(File, Segment), RecordError> {
    let io_err = |source| RecordError::Io { path: path.to_path_buf(), source };
    let corrupt = |offset, what: String| RecordError::Corrupt { path: path.to_path_buf(), offset, what };
    assert!(partition < partitions, "partition {partition} of {partitions}");
    let file = File::open(path).map_err(io_err)?;
    let file_bytes = file.metadata().map_err(io_err)?.len();
    let index_bytes = ENTRY_BYTES * u64::from(partitions);
    let Some(index_offset) = file_bytes.checked_sub(TRAILER_BYTES + index_bytes) else {
        return Err(RecordError::Truncated { path: path.to_path_buf() });
    };
    let trailer_offset = index_offset + index_bytes;
    let entry_offset = index_offset + ENTRY_BYTES * u64::from(partition);
    // The entry and the trailer in one read when they are close (a reduce reads one per map: at 2,000 maps
    // and 50 reduces, 100,000 system calls saved), in two otherwise.
    let mut trailer = [0u8; TRAILER_BYTES as usize];
    let mut entry = [0u8; ENTRY_BYTES as usize];
    let tail_bytes = file_bytes - entry_offset;
    if tail_bytes <= TAIL_READ_BYTES_MAX {
        let mut tail = vec![0u8; tail_bytes as usize];
        file.read_exact_at(&mut tail, entry_offset).map_err(io_err)?;
        entry.copy_from_slice(&tail[..ENTRY_BYTES as usize]);
        trailer.copy_from_slice(&tail[tail.len() - TRAILER_BYTES as usize..]);
    } else {
        file.read_exact_at(&mut trailer, trailer_offset).map_err(io_err)?;
        file.read_exact_at(&mut entry, entry_offset).map_err(io_err)?;
    }
    if trailer[8..] != INDEX_MAGIC {
        return Err(RecordError::BadMagic { path: path.to_path_buf() });
    }
    if trailer != encode_trailer(u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]])) {
        return Err(RecordError::Checksum { path: path.to_path_buf(), offset: trailer_offset });
    }
    let written_for = u32::from_le_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
    if written_for != partitions {
        return Err(corrupt(trailer_offset, format!("written for {written_for} partitions, expected {partitions}")));
    }
    let crc = u32::from_le_bytes([entry[16], entry[17], entry[18], entry[19]]);
    if crc != entry_crc(&entry[..16], partition) {
        return Err(RecordError::Checksum { path: path.to_path_buf(), offset: entry_offset });
    }
    let le_u64 = |bytes: &[u8]| bytes.iter().rev().fold(0u64, |n, &b| (n << 8) | u64::from(b));
    let segment = Segment { offset_bytes: le_u64(&entry[..8]), len_bytes: le_u64(&entry[8..16]) };
    match segment.offset_bytes.checked_add(segment.len_bytes) {
        Some(end) if end <= index_offset => Ok((file, segment)),
        _ => Err(corrupt(entry_offset, format!("partition {partition}'s run lies outside the file's data"))),
    }
}

#[cfg(test)]
mod tests;
