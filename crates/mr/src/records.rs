//! Intermediate files: (key, value) records in checksummed blocks. Compact (varint lengths, raw UTF-8
//! bytes) and self-checking, unlike the JSON the 6.824 handout suggests.
//!
//! ```text
//! file   = MAGIC block* end
//! block  = len:u32le (> 0) crc32c(payload):u32le payload        payload = record+
//! record = key_len:varint key:bytes value_len:varint value:bytes
//! end    = 0:u32le crc32c(count):u32le count:u64le               count = records in the file
//! ```
//! A file without its end marker (a writer that died) or with a bad checksum is an error, never silently
//! short data. Files are written once, by one attempt. The same format is also a *segment* of a larger file
//! (a map's one output file holds one segment per partition, see [`crate::map_file`]): a reader then reads
//! a byte range, and the range must end exactly at the segment's end marker.
use std::fs::File;
use std::io::{self, BufReader, BufWriter, ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

/// Identifies keel intermediate files, format version 1.
pub const FILE_MAGIC: [u8; 8] = *b"KEELMRI1";
/// A block is flushed once its payload reaches this size: large enough to amortise the header and the
/// checksum, small enough that a merge of [`crate::merge::MERGE_FAN_IN_MAX`] files stays in a few MiB.
pub const BLOCK_TARGET_BYTES: usize = 64 * 1024;
/// Largest key plus value of one record. Bounds what a reader allocates on a corrupt length.
pub const MAX_RECORD_BYTES: usize = 32 * 1024 * 1024;
/// Largest block payload a reader accepts: one maximal record on top of a nearly full block.
pub const MAX_BLOCK_BYTES: usize = BLOCK_TARGET_BYTES + MAX_RECORD_BYTES + 16;
/// Buffer size for reading and writing record files.
const IO_BUFFER_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: at byte {offset}: not a keel intermediate run (bad magic)", path.display())]
    BadMagic { path: PathBuf, offset: u64 },
    #[error("{}: block at byte {offset}: checksum mismatch", path.display())]
    Checksum { path: PathBuf, offset: u64 },
    #[error("{}: at byte {offset}: {what}", path.display())]
    Corrupt { path: PathBuf, offset: u64, what: String },
    /// `offset`: where the run that ends too early starts.
    #[error("{}: the run at byte {offset} is truncated (no end marker)", path.display())]
    Truncated { path: PathBuf, offset: u64 },
    #[error("record too large: key {key_bytes} + value {value_bytes} bytes (limit {MAX_RECORD_BYTES})")]
    RecordTooLarge { key_bytes: usize, value_bytes: usize },
}

impl RecordError {
    /// Where stored data failed its checks (the file, and a byte inside the run or index that is damaged or
    /// cut short), so a reader of many runs can tell whose data it was. `None` for errors that are not
    /// about the data (I/O, a record too large to write).
    pub fn damaged_at(&self) -> Option<(&Path, u64)> {
        match self {
            RecordError::BadMagic { path, offset }
            | RecordError::Checksum { path, offset }
            | RecordError::Corrupt { path, offset, .. }
            | RecordError::Truncated { path, offset } => Some((path, *offset)),
            RecordError::Io { .. } | RecordError::RecordTooLarge { .. } => None,
        }
    }
}

/// Writes one record file. Call [`RecordWriter::finish`]; a writer dropped without it leaves a file that
/// every reader rejects.
pub struct RecordWriter {
    out: BufWriter<File>,
    path: PathBuf,
    block: Vec<u8>,
    records: u64,
    bytes_written: u64,
}

impl RecordWriter {
    pub fn create(path: &Path) -> Result<RecordWriter, RecordError> {
        let file = File::create(path).map_err(|source| RecordError::Io { path: path.to_path_buf(), source })?;
        RecordWriter::segment(BufWriter::with_capacity(IO_BUFFER_BYTES, file), path, Vec::new())
    }

    /// Starts a segment at the current end of `out` (a file being written front to back); end it with
    /// [`RecordWriter::finish_segment`], which hands `out` back for the next segment. `block` is a buffer for
    /// blocks (any contents; handed back too, so that a map writing hundreds of small partitions does not
    /// allocate and free a block buffer for each).
    pub fn segment(mut out: BufWriter<File>, path: &Path, mut block: Vec<u8>) -> Result<RecordWriter, RecordError> {
        out.write_all(&FILE_MAGIC).map_err(|source| RecordError::Io { path: path.to_path_buf(), source })?;
        block.clear();
        Ok(RecordWriter { out, path: path.to_path_buf(), block, records: 0, bytes_written: FILE_MAGIC.len() as u64 })
    }

    /// Writes the segment's end marker and returns the file (for the next segment), the segment's size and
    /// the block buffer.
    pub fn finish_segment(mut self) -> Result<(BufWriter<File>, u64, Vec<u8>), RecordError> {
        self.write_end()?;
        Ok((self.out, self.bytes_written, self.block))
    }

    pub fn append(&mut self, key: &str, value: &str) -> Result<(), RecordError> {
        if key.len() + value.len() > MAX_RECORD_BYTES {
            return Err(RecordError::RecordTooLarge { key_bytes: key.len(), value_bytes: value.len() });
        }
        put_varint(&mut self.block, key.len() as u32);
        self.block.extend_from_slice(key.as_bytes());
        put_varint(&mut self.block, value.len() as u32);
        self.block.extend_from_slice(value.as_bytes());
        self.records += 1;
        if self.block.len() >= BLOCK_TARGET_BYTES {
            self.flush_block()?;
        }
        Ok(())
    }

    /// Writes the end marker and fsyncs: for files a commit will publish. Returns the file's size in bytes.
    pub fn finish(self) -> Result<u64, RecordError> {
        self.finish_with(true)
    }

    /// Writes the end marker without fsync: for scratch files (spills, merge passes) that live only as long
    /// as the attempt and are never committed. Returns the file's size in bytes.
    pub fn finish_scratch(self) -> Result<u64, RecordError> {
        self.finish_with(false)
    }

    fn finish_with(mut self, durable: bool) -> Result<u64, RecordError> {
        self.write_end()?;
        let io_err = |source| RecordError::Io { path: self.path.clone(), source };
        let file = self.out.into_inner().map_err(|e| io_err(e.into_error()))?;
        if durable {
            file.sync_all().map_err(io_err)?;
        }
        Ok(self.bytes_written)
    }

    fn write_end(&mut self) -> Result<(), RecordError> {
        self.flush_block()?;
        let count = self.records.to_le_bytes();
        let mut end = Vec::with_capacity(16);
        end.extend_from_slice(&0u32.to_le_bytes());
        end.extend_from_slice(&crc32c::crc32c(&count).to_le_bytes());
        end.extend_from_slice(&count);
        self.out.write_all(&end).map_err(|source| RecordError::Io { path: self.path.clone(), source })?;
        self.bytes_written += end.len() as u64;
        Ok(())
    }

    fn flush_block(&mut self) -> Result<(), RecordError> {
        if self.block.is_empty() {
            return Ok(());
        }
        debug_assert!(self.block.len() <= MAX_BLOCK_BYTES);
        let mut header = [0u8; 8];
        header[..4].copy_from_slice(&(self.block.len() as u32).to_le_bytes());
        header[4..].copy_from_slice(&crc32c::crc32c(&self.block).to_le_bytes());
        let io_err = |source| RecordError::Io { path: self.path.clone(), source };
        self.out.write_all(&header).map_err(io_err)?;
        self.out.write_all(&self.block).map_err(io_err)?;
        self.bytes_written += (header.len() + self.block.len()) as u64;
        self.block.clear();
        Ok(())
    }
}

/// Shared bytes as a `Cursor`'s buffer (runs kept in memory are shared by clones of their `Run`).
struct ArcBytes(std::sync::Arc<Vec<u8>>);

impl AsRef<[u8]> for ArcBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// Reads one record file front to back, checking every block.
pub struct RecordReader {
    /// Limited to the segment being read, so reading past its end is a truncation, not the next segment.
    input: BufReader<Box<dyn Read + Send>>,
    path: PathBuf,
    block: Vec<u8>,
    position_in_block: usize,
    /// File offset of the run's start (its magic), for errors about the run as a whole.
    start_offset: u64,
    /// File offset of the current block's header, for error messages.
    block_offset: u64,
    next_block_offset: u64,
    records: u64,
    ended: bool,
}

/// Every record of a file, in order (tests of this crate read whole files back).
#[cfg(test)]
pub(crate) fn read_all_records(path: &Path) -> Result<Vec<(String, String)>, RecordError> {
    let mut reader = RecordReader::open(path)?;
    let mut records = Vec::new();
    while let Some(record) = reader.next_record()? {
        records.push(record);
    }
    Ok(records)
}

impl RecordReader {
    pub fn open(path: &Path) -> Result<RecordReader, RecordError> {
        let file = File::open(path).map_err(|source| RecordError::Io { path: path.to_path_buf(), source })?;
        RecordReader::from_segment(file, path, 0, u64::MAX)
    }

    /// Reads the segment of `len_bytes` at `offset_bytes` of `file`, opened from `path` (offsets in errors
    /// stay file offsets).
    pub fn from_segment(
        mut file: File,
        path: &Path,
        offset_bytes: u64,
        len_bytes: u64,
    ) -> Result<RecordReader, RecordError> {
        let io_err = |source| RecordError::Io { path: path.to_path_buf(), source };
        if offset_bytes > 0 {
            file.seek(SeekFrom::Start(offset_bytes)).map_err(io_err)?;
        }
        // Segments are small when tasks are (a 1 KB input makes a few hundred bytes per partition): a
        // buffer the size of the segment, not 64 KiB, keeps thousands of them cheap to open.
        let buffer_bytes = usize::try_from(len_bytes).unwrap_or(usize::MAX).clamp(64, IO_BUFFER_BYTES);
        RecordReader::from_reader(Box::new(file.take(len_bytes)), buffer_bytes, path, offset_bytes)
    }

    /// Reads a segment already in memory (`bytes`, which were at `offset_bytes` of `path`, for errors):
    /// checked exactly as one read from the file.
    pub fn from_bytes(
        bytes: std::sync::Arc<Vec<u8>>,
        path: &Path,
        offset_bytes: u64,
    ) -> Result<RecordReader, RecordError> {
        let reader = io::Cursor::new(ArcBytes(bytes));
        RecordReader::from_reader(Box::new(reader), 64, path, offset_bytes)
    }

    fn from_reader(
        reader: Box<dyn Read + Send>,
        buffer_bytes: usize,
        path: &Path,
        offset_bytes: u64,
    ) -> Result<RecordReader, RecordError> {
        let io_err = |source| RecordError::Io { path: path.to_path_buf(), source };
        let mut input = BufReader::with_capacity(buffer_bytes, reader);
        let mut magic = [0u8; 8];
        match input.read_exact(&mut magic) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {
                return Err(RecordError::Truncated { path: path.to_path_buf(), offset: offset_bytes });
            }
            Err(e) => return Err(io_err(e)),
        }
        if magic != FILE_MAGIC {
            return Err(RecordError::BadMagic { path: path.to_path_buf(), offset: offset_bytes });
        }
        Ok(RecordReader {
            input,
            path: path.to_path_buf(),
            block: Vec::new(),
            position_in_block: 0,
            start_offset: offset_bytes,
            block_offset: offset_bytes,
            next_block_offset: offset_bytes + FILE_MAGIC.len() as u64,
            records: 0,
            ended: false,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// File offset of the block the last record came from (for errors about it).
    pub fn block_offset(&self) -> u64 {
        self.block_offset
    }

    /// The next record, or `None` after the last one (once the end marker has been verified).
    pub fn next_record(&mut self) -> Result<Option<(String, String)>, RecordError> {
        if self.position_in_block == self.block.len() && (self.ended || !self.read_block()?) {
            return Ok(None);
        }
        let key = self.take_string()?;
        let value = self.take_string()?;
        self.records += 1;
        Ok(Some((key, value)))
    }

    fn corrupt(&self, what: impl Into<String>) -> RecordError {
        RecordError::Corrupt { path: self.path.clone(), offset: self.block_offset, what: what.into() }
    }

    fn take_string(&mut self) -> Result<String, RecordError> {
        let rest = &self.block[self.position_in_block..];
        let Some((len, varint_bytes)) = get_varint(rest) else {
            return Err(self.corrupt("bad length"));
        };
        let len = len as usize;
        let start = varint_bytes;
        if rest.len() - start < len {
            return Err(self.corrupt("record runs past the end of its block"));
        }
        let bytes = rest[start..start + len].to_vec();
        self.position_in_block += start + len;
        String::from_utf8(bytes).map_err(|_| self.corrupt("record is not UTF-8"))
    }

    /// Loads the next block. Returns false at the (verified) end marker.
    fn read_block(&mut self) -> Result<bool, RecordError> {
        self.block_offset = self.next_block_offset;
        let mut header = [0u8; 8];
        self.read_exact(&mut header)?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
        if len == 0 {
            let mut count = [0u8; 8];
            self.read_exact(&mut count)?;
            if crc32c::crc32c(&count) != crc {
                return Err(RecordError::Checksum { path: self.path.clone(), offset: self.block_offset });
            }
            let count = u64::from_le_bytes(count);
            if count != self.records {
                return Err(self.corrupt(format!("end marker says {count} records, read {}", self.records)));
            }
            let mut extra = [0u8; 1];
            match self.input.read(&mut extra) {
                Ok(0) => {}
                Ok(_) => return Err(self.corrupt("data after the end marker")),
                Err(source) => return Err(RecordError::Io { path: self.path.clone(), source }),
            }
            self.ended = true;
            self.block.clear();
            self.position_in_block = 0;
            return Ok(false);
        }
        if len > MAX_BLOCK_BYTES {
            return Err(self.corrupt(format!("block of {len} bytes exceeds the limit of {MAX_BLOCK_BYTES}")));
        }
        self.block.resize(len, 0);
        let mut block = std::mem::take(&mut self.block);
        let read = self.read_exact(&mut block);
        self.block = block;
        read?;
        if crc32c::crc32c(&self.block) != crc {
            return Err(RecordError::Checksum { path: self.path.clone(), offset: self.block_offset });
        }
        self.position_in_block = 0;
        self.next_block_offset = self.block_offset + 8 + len as u64;
        Ok(true)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), RecordError> {
        self.input.read_exact(buf).map_err(|e| {
            if e.kind() == ErrorKind::UnexpectedEof {
                RecordError::Truncated { path: self.path.clone(), offset: self.start_offset }
            } else {
                RecordError::Io { path: self.path.clone(), source: e }
            }
        })
    }
}

fn put_varint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Decodes a LEB128 u32; returns the value and how many bytes it took.
fn get_varint(bytes: &[u8]) -> Option<(u32, usize)> {
    let mut value: u32 = 0;
    for (i, byte) in bytes.iter().take(5).enumerate() {
        let low = u32::from(byte & 0x7f);
        if i == 4 && low > 0x0f {
            return None;
        }
        value |= low << (7 * i);
        if byte & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

#[cfg(test)]
mod tests;
