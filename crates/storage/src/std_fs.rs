//! [`FileSystem`] over `std::fs`: the real disk.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

use crate::fs::{FileSystem, WalFile};

/// The real file system. `sync_data` is `fdatasync`; `sync_dir` opens the directory and `fsync`s it, which is how
/// POSIX makes a create, rename or unlink durable.
#[derive(Clone, Copy, Debug, Default)]
pub struct StdFs;

impl FileSystem for StdFs {
    type File = StdFile;

    fn create_dir_all(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir_all(dir)
    }

    fn list_dir(&self, dir: &Path) -> io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                // A name that is not UTF-8 cannot be one of ours; listing it would only be skipped later.
                if let Ok(name) = entry.file_name().into_string() {
                    names.push(name);
                }
            }
        }
        names.sort();
        Ok(names)
    }

    fn create(&self, path: &Path) -> io::Result<StdFile> {
        // Append mode (so a later `set_len` cannot leave the write position past the end), emptied by hand:
        // `truncate` and `append` cannot be combined in one open.
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        file.set_len(0)?;
        Ok(StdFile { file })
    }

    fn open_append(&self, path: &Path) -> io::Result<StdFile> {
        let file = OpenOptions::new().append(true).open(path)?;
        Ok(StdFile { file })
    }

    fn read(&self, path: &Path) -> io::Result<Vec<u8>> {
        fs::read(path)
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        fs::remove_file(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }
}

/// A file opened by [`StdFs`], always in append mode: every write goes to the current end.
#[derive(Debug)]
pub struct StdFile {
    file: File,
}

impl WalFile for StdFile {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)
    }

    fn set_len(&mut self, len_bytes: u64) -> io::Result<()> {
        self.file.set_len(len_bytes)
    }

    fn sync_data(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}
