//! Where every file of a job lives. Paths are pure functions of the job's directories and the task or
//! attempt, so the coordinator can find (and remove) any attempt's files from its id alone, without
//! trusting a path sent over the network.
//!
//! ```text
//! <work_dir>/maps-<a>.map               a worker's map outputs (maps_file), named by the attempt id of
//!                                       the first map it ran: each map attempt appends a region
//!                                       (map_file); a committed map is a byte range of such a file
//! <work_dir>/attempt-<a>/               attempt a's scratch space (map spills, reduce merge passes),
//!                                       created only when needed
//! <staging_dir>/attempt-<a>-mr-out-<r>  reduce attempt a's output
//! <staging_dir>/mr-out-<r>              committed output of reduce r
//! <output_dir>/mr-out-<r>               published when every reduce is committed
//! ```
//! Both scratch directories are hidden (`.keel-*`) inside the output directory by default, so renames stay
//! on one file system and `mr-out*` globs never match a partial file.
use std::path::{Path, PathBuf};

use crate::task_table::AttemptId;

#[derive(Clone, Debug)]
pub struct Layout {
    pub work_dir: PathBuf,
    pub staging_dir: PathBuf,
}

impl Layout {
    pub fn attempt_dir(&self, attempt: AttemptId) -> PathBuf {
        self.work_dir.join(format!("attempt-{}", attempt.0))
    }

    /// The map outputs file of the worker whose first map attempt was `first_attempt` (see
    /// [`crate::maps_file`]): one file per worker, not per map, since every file a small task creates costs
    /// about a millisecond on ext4 (creating it, and freeing its blocks at removal).
    pub fn maps_file(&self, first_attempt: u64) -> PathBuf {
        maps_file_in(&self.work_dir, first_attempt)
    }

    pub fn reduce_attempt_output(&self, attempt: AttemptId, reduce: u32) -> PathBuf {
        self.staging_dir.join(format!("attempt-{}-mr-out-{reduce}", attempt.0))
    }

    pub fn reduce_committed(&self, reduce: u32) -> PathBuf {
        self.staging_dir.join(output_name(reduce))
    }
}

/// The maps file named by `first_attempt` in `dir` (a work or scratch directory).
pub fn maps_file_in(dir: &Path, first_attempt: u64) -> PathBuf {
    dir.join(format!("maps-{first_attempt}.map"))
}

/// `mr-out-<r>`, the name of reduce task r's output.
pub fn output_name(reduce: u32) -> String {
    format!("mr-out-{reduce}")
}

pub fn output_file(output_dir: &Path, reduce: u32) -> PathBuf {
    output_dir.join(output_name(reduce))
}

/// Makes a rename or a new file in `dir` durable.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
