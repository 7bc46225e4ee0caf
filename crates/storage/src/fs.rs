//! The file-system calls [`crate::DiskStorage`] makes, and nothing more, so that the same WAL code runs on a real
//! disk ([`crate::StdFs`]) and on a simulated one that loses unsynced data at a crash ([`crate::SimFs`]).
//!
//! Durability is explicit, as on a real disk: bytes appended to a file are durable only after
//! [`WalFile::sync_data`]; a create, rename or remove is durable only after [`FileSystem::sync_dir`] on its
//! directory.
use std::io;
use std::path::Path;

pub trait FileSystem {
    type File: WalFile;

    /// Creates `dir` and its parents if missing.
    fn create_dir_all(&self, dir: &Path) -> io::Result<()>;
    /// The names of the files in `dir`, sorted.
    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>>;
    /// Creates `path` empty (truncating it if it exists), opened for appending.
    fn create(&self, path: &Path) -> io::Result<Self::File>;
    /// Opens the existing file `path` for appending at its end.
    fn open_append(&self, path: &Path) -> io::Result<Self::File>;
    /// The whole content of `path`.
    fn read(&self, path: &Path) -> io::Result<Vec<u8>>;
    /// Atomically replaces `to` with `from` (both in the same directory).
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    /// Makes the creates, renames and removes done in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
}

/// A file open for appending.
pub trait WalFile {
    /// Appends all of `bytes` at the end of the file, in one call (one `write` on a real disk).
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// Cuts the file to `len_bytes` (used to cut a torn tail off).
    fn set_len(&mut self, len_bytes: u64) -> io::Result<()>;
    /// Makes the file's data (and its length) durable: `fdatasync`.
    fn sync_data(&mut self) -> io::Result<()>;
}
