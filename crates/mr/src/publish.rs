//! Publishing a finished job's output: every committed `mr-out-<r>` moves from the staging directory into
//! the output directory, all or nothing, and never over an existing file.
//!
//! Each output is hard-linked to its final name (`link` fails if the name exists, so nothing is ever
//! replaced, atomically), then the directory is fsynced; if any step fails, the links made so far are
//! removed again (the staged copies are untouched), so a failed publish leaves no `mr-out-*`. On a file
//! system without hard links the fallback is check-then-rename, rolled back by renaming back; there the
//! check and the rename are two steps, and the output-directory lock keeps only other keel jobs out of that
//! window. What stays non-atomic: the R names appear one after another, so a crash of the coordinator
//! (SIGKILL, power loss) in the middle of publishing, a few milliseconds, leaves a partial set. Publishing
//! a whole directory with one rename would close that, at the price of an output directory that must not
//! exist beforehand.
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use tracing::warn;

use crate::layout::{Layout, output_file, sync_dir};

enum Placed {
    /// `to` is a second name of the staged file.
    Linked { to: PathBuf },
    /// The staged file was renamed from `from` to `to`.
    Renamed { from: PathBuf, to: PathBuf },
}

/// Moves `mr-out-0..reduce_tasks` from staging into `output_dir`, all or nothing.
pub fn publish_outputs(layout: &Layout, output_dir: &Path, reduce_tasks: u32) -> anyhow::Result<()> {
    let mut placed = Vec::new();
    for reduce in 0..reduce_tasks {
        let (from, to) = (layout.reduce_committed(reduce), output_file(output_dir, reduce));
        match place_without_replacing(&from, &to) {
            Ok(done) => placed.push(done),
            Err(e) => {
                roll_back(placed);
                return Err(e);
            }
        }
    }
    if let Err(e) = sync_dir(output_dir) {
        roll_back(placed);
        return Err(e).with_context(|| format!("syncing {}", output_dir.display()));
    }
    Ok(())
}

fn place_without_replacing(from: &Path, to: &Path) -> anyhow::Result<Placed> {
    let exists = || {
        anyhow::anyhow!(
            "{} already exists: it appeared while the job ran, and results are never replaced; move it away \
             and run the job again",
            to.display()
        )
    };
    match fs::hard_link(from, to) {
        Ok(()) => Ok(Placed::Linked { to: to.to_path_buf() }),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(exists()),
        Err(link_error) => {
            // No hard links here (some network and FUSE file systems): check, then rename.
            match fs::symlink_metadata(to) {
                Ok(_) => return Err(exists()),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => bail!("checking {}: {e} (linking failed too: {link_error})", to.display()),
            }
            fs::rename(from, to).with_context(|| {
                format!("renaming {} to {} (linking failed: {link_error})", from.display(), to.display())
            })?;
            Ok(Placed::Renamed { from: from.to_path_buf(), to: to.to_path_buf() })
        }
    }
}

fn roll_back(placed: Vec<Placed>) {
    for done in placed.into_iter().rev() {
        let (result, name) = match &done {
            Placed::Linked { to } => (fs::remove_file(to), to),
            Placed::Renamed { from, to } => (fs::rename(to, from), to),
        };
        if let Err(e) = result {
            warn!("the job failed, but {} could not be taken back: {e}; remove it by hand", name.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn staged(dir: &Path, reduces: u32) -> Layout {
        let layout = Layout { work_dir: dir.join("work"), staging_dir: dir.join("staging") };
        fs::create_dir_all(&layout.staging_dir).unwrap();
        for r in 0..reduces {
            fs::write(layout.reduce_committed(r), format!("result {r}\n")).unwrap();
        }
        layout
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_failed_publish_leaves_no_output_and_replaces_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let layout = staged(dir.path(), 10);
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        // The reproduction: mr-out-7 became a directory while the job ran.
        fs::create_dir(out.join("mr-out-7")).unwrap();
        let error = publish_outputs(&layout, &out, 10).unwrap_err().to_string();
        assert!(error.contains("mr-out-7") && error.contains("already exists"), "{error}");
        assert_eq!(names(&out), ["mr-out-7"], "a failed publish must take back what it placed");
        // Someone else's file in the way is never replaced either.
        fs::remove_dir(out.join("mr-out-7")).unwrap();
        fs::write(out.join("mr-out-3"), "not ours\n").unwrap();
        assert!(publish_outputs(&layout, &out, 10).is_err());
        assert_eq!(fs::read_to_string(out.join("mr-out-3")).unwrap(), "not ours\n");
        assert_eq!(names(&out), ["mr-out-3"]);
        // With the way clear, everything is published, and the staged results were never lost.
        fs::remove_file(out.join("mr-out-3")).unwrap();
        publish_outputs(&layout, &out, 10).unwrap();
        assert_eq!(names(&out).len(), 10);
        assert_eq!(fs::read_to_string(out.join("mr-out-9")).unwrap(), "result 9\n");
    }
}
