//! One job at a time per output directory: a lock held for the job's whole life.
//!
//! Two jobs writing `mr-out-*` into one directory would mix their results silently (issue 14: both exit 0,
//! keys appear in two files). The coordinator takes an exclusive `flock` on `<output>/.keel-lock` before it
//! looks at the directory and holds it until the job's scratch is gone; a second job is refused with a
//! message naming the holder.
//!
//! A stale lock cannot happen: the kernel releases a `flock` when its holder dies, even by SIGKILL, so a
//! `.keel-lock` left by a killed job is simply taken over. On release the holder unlinks the file while still
//! holding the lock; a job that opened the old file just before and locks it afterwards notices that the
//! path no longer leads to the file it locked, and tries again.
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::protocol::JobId;

/// The lock file's name inside the output directory. Hidden, and not a scratch directory name (`.keel-`
/// followed by `work-` or `staging-`), so nothing mistakes it for a dead job's leftovers.
pub const LOCK_FILE_NAME: &str = ".keel-lock";
/// How many times to try when the lock file is replaced under us (only when another job releases it at that
/// very moment; twice in a row would take three jobs racing for one directory).
const LOCK_TRIES_MAX: u32 = 5;
/// Longest owner description read back from a lock file for an error message.
const OWNER_TEXT_BYTES_MAX: u64 = 200;

/// Held while a job uses its output directory; released (file removed, lock dropped) on drop.
#[derive(Debug)]
pub struct OutputLock {
    file: File,
    path: PathBuf,
}

impl OutputLock {
    /// Takes the lock on `output_dir` for `job`, or explains who holds it.
    pub fn acquire(output_dir: &Path, job: JobId) -> anyhow::Result<OutputLock> {
        let path = output_dir.join(LOCK_FILE_NAME);
        for _ in 0..LOCK_TRIES_MAX {
            let mut file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&path)
                .with_context(|| format!("opening the lock file {}", path.display()))?;
            if let Err(e) = try_lock_exclusive(&file) {
                if e.kind() == io::ErrorKind::WouldBlock {
                    let owner = owner_of(&mut file);
                    bail!(
                        "output directory {} is in use by another keel mr job ({owner}); wait for it to finish \
                         or choose another --output",
                        output_dir.display()
                    );
                }
                return Err(e)
                    .with_context(|| format!("locking {} (the file system must support flock)", path.display()));
            }
            if !still_at_path(&file, &path) {
                continue;
            }
            file.set_len(0)
                .and_then(|()| writeln!(file, "pid {} job {job}", std::process::id()))
                .with_context(|| format!("writing the lock file {}", path.display()))?;
            return Ok(OutputLock { file, path });
        }
        bail!("could not lock {}: the lock file kept being replaced; is another job starting?", path.display())
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        // Unlinked while still locked (the lock goes with the file descriptor, after this), see the module docs.
        if still_at_path(&self.file, &self.path) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn try_lock_exclusive(file: &File) -> io::Result<()> {
    // SAFETY: flock on a file descriptor this `File` owns and keeps open; no memory is passed.
    let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if result == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

/// Whether `path` still names the very file `file` has open.
fn still_at_path(file: &File, path: &Path) -> bool {
    match (file.metadata(), fs::metadata(path)) {
        (Ok(open), Ok(named)) => open.dev() == named.dev() && open.ino() == named.ino(),
        _ => false,
    }
}

fn owner_of(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.take(OWNER_TEXT_BYTES_MAX).read_to_string(&mut text);
    let text = text.trim();
    if text.is_empty() { "a job that is just starting".to_string() } else { text.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_job_is_refused_and_a_dead_job_s_lock_file_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let first = OutputLock::acquire(dir.path(), JobId(1)).unwrap();
        let error = OutputLock::acquire(dir.path(), JobId(2)).unwrap_err().to_string();
        assert!(error.contains("in use by another keel mr job"), "{error}");
        assert!(error.contains(&format!("pid {} job {}", std::process::id(), JobId(1))), "{error}");
        drop(first);
        assert!(!dir.path().join(LOCK_FILE_NAME).exists(), "released locks leave no file");
        // A job killed with SIGKILL leaves its lock file, but its flock died with it.
        fs::write(dir.path().join(LOCK_FILE_NAME), "pid 999999 job 0000000000000003\n").unwrap();
        let taken = OutputLock::acquire(dir.path(), JobId(4)).unwrap();
        let text = fs::read_to_string(dir.path().join(LOCK_FILE_NAME)).unwrap();
        assert_eq!(text, format!("pid {} job {}\n", std::process::id(), JobId(4)));
        drop(taken);
    }
}
