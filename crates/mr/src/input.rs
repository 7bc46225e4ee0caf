//! Input files: planning splits at line boundaries and reading one split as text.
//!
//! Non-UTF-8 input is an error, not lossily replaced: the apps count letters, and a Latin-1 or binary file
//! decoded lossily would produce plausible but wrong counts with no sign that anything was off. The error
//! names the file and the byte offset so the user can find and convert it.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Default largest split: the paper's 16-64 MB range, and what one map task holds in memory at once.
pub const SPLIT_SIZE_BYTES_DEFAULT: u64 = 64 * 1024 * 1024;
/// How much is read at a time when looking for a line boundary near a split point.
const BOUNDARY_SCAN_BYTES: usize = 64 * 1024;

/// One map task's input: bytes `offset..offset + len` of a file, always whole lines (except that a line
/// longer than the split size is not cut).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputSplit {
    /// Absolute path, so workers started in another directory find the file.
    pub path: PathBuf,
    /// The name as the user gave it; what the app's `map` sees (the indexer prints it).
    pub name: String,
    pub offset: u64,
    pub len: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("input {name}: {source}")]
    Unreadable { name: String, source: io::Error },
    #[error("input {name}: not a regular file (a directory, FIFO or device); give regular files only")]
    NotAFile { name: String },
    #[error(
        "input {name}: the file is empty (an empty input is usually a failed download or copy; remove it from the job if it is intended)"
    )]
    Empty { name: String },
    #[error(
        "input {name}: not valid UTF-8 at byte offset {offset} (convert it, for example with iconv, or leave it out)"
    )]
    NotUtf8 { name: String, offset: u64 },
    #[error("input {name}: file changed since the job was planned (expected at least {expected} bytes)")]
    Changed { name: String, expected: u64 },
    #[error("input {name}: path is not valid UTF-8")]
    PathNotUtf8 { name: String },
}

/// Checks every input (exists, readable, a non-empty regular file) and cuts the larger ones into splits of
/// at most `split_size` bytes at line boundaries. One file gives at least one split.
pub fn plan_splits(inputs: &[PathBuf], split_size: u64) -> Result<Vec<InputSplit>, InputError> {
    assert!(split_size > 0);
    let mut splits = Vec::new();
    for input in inputs {
        let name = input.to_str().ok_or_else(|| InputError::PathNotUtf8 { name: input.display().to_string() })?;
        let unreadable = |source| InputError::Unreadable { name: name.to_string(), source };
        // The type is checked before opening: opening a FIFO blocks until someone writes to it, which
        // would hang the coordinator before it printed anything.
        if !std::fs::metadata(input).map_err(unreadable)?.is_file() {
            return Err(InputError::NotAFile { name: name.to_string() });
        }
        let mut file = File::open(input).map_err(unreadable)?;
        // Checked again on the open file, in case the path was replaced in between.
        let meta = file.metadata().map_err(unreadable)?;
        if !meta.is_file() {
            return Err(InputError::NotAFile { name: name.to_string() });
        }
        let size = meta.len();
        if size == 0 {
            return Err(InputError::Empty { name: name.to_string() });
        }
        let path = std::path::absolute(input).map_err(unreadable)?;
        let mut offset = 0;
        while offset < size {
            let end = if size - offset <= split_size {
                size
            } else {
                line_boundary(&mut file, offset, offset + split_size, size).map_err(unreadable)?
            };
            splits.push(InputSplit { path: path.clone(), name: name.to_string(), offset, len: end - offset });
            offset = end;
        }
    }
    Ok(splits)
}

/// The end of a split that starts at `start` and should end at or before `target`: just after the last
/// newline in `start..target`, or, when a single line is longer than that, just after the first newline
/// past `target` (or the end of the file).
fn line_boundary(file: &mut File, start: u64, target: u64, size: u64) -> io::Result<u64> {
    let mut buf = vec![0u8; BOUNDARY_SCAN_BYTES];
    let mut window_end = target;
    while window_end > start {
        let window_start = window_end.saturating_sub(BOUNDARY_SCAN_BYTES as u64).max(start);
        let chunk = &mut buf[..(window_end - window_start) as usize];
        file.seek(SeekFrom::Start(window_start))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().rposition(|&b| b == b'\n') {
            return Ok(window_start + i as u64 + 1);
        }
        window_end = window_start;
    }
    let mut position = target;
    while position < size {
        let n = ((size - position) as usize).min(BOUNDARY_SCAN_BYTES);
        let chunk = &mut buf[..n];
        file.seek(SeekFrom::Start(position))?;
        file.read_exact(chunk)?;
        if let Some(i) = chunk.iter().position(|&b| b == b'\n') {
            return Ok(position + i as u64 + 1);
        }
        position += n as u64;
    }
    Ok(size)
}

/// Reads one split as text.
pub fn read_split(split: &InputSplit) -> Result<String, InputError> {
    let name = split.name.clone();
    let unreadable = |source| InputError::Unreadable { name: name.clone(), source };
    let mut file = File::open(&split.path).map_err(unreadable)?;
    file.seek(SeekFrom::Start(split.offset)).map_err(unreadable)?;
    let mut bytes = Vec::new();
    bytes.try_reserve_exact(split.len as usize).map_err(|e| unreadable(io::Error::other(e)))?;
    file.take(split.len).read_to_end(&mut bytes).map_err(unreadable)?;
    if (bytes.len() as u64) < split.len {
        return Err(InputError::Changed { name, expected: split.offset + split.len });
    }
    text(bytes, &split.name, split.offset)
}

/// Reads a whole input file as text, for the sequential reference.
pub fn read_whole(path: &Path) -> Result<String, InputError> {
    let name = path.to_str().ok_or_else(|| InputError::PathNotUtf8 { name: path.display().to_string() })?;
    let unreadable = |source| InputError::Unreadable { name: name.to_string(), source };
    let meta = std::fs::metadata(path).map_err(unreadable)?;
    if !meta.is_file() {
        return Err(InputError::NotAFile { name: name.to_string() });
    }
    let bytes = std::fs::read(path).map_err(unreadable)?;
    if bytes.is_empty() {
        return Err(InputError::Empty { name: name.to_string() });
    }
    text(bytes, name, 0)
}

pub fn text(bytes: Vec<u8>, name: &str, offset: u64) -> Result<String, InputError> {
    String::from_utf8(bytes).map_err(|e| InputError::NotUtf8 {
        name: name.to_string(),
        offset: offset + e.utf8_error().valid_up_to() as u64,
    })
}

#[cfg(test)]
mod tests;
