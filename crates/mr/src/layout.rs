//! Where every file of a job lives. Paths are pure functions of the job's directories and the task or
//! attempt, so the coordinator can find (and remove) any attempt's files from its id alone, without
//! trusting a path sent over the network.
//!
//! ```text
//! <work_dir>/attempt-<a>/part-<r>       map attempt a's output for reduce r (plus its spill files)
//! <work_dir>/map-<m>/part-<r>           committed output of map m (attempt-<a> renamed as a whole)
//! <work_dir>/attempt-<a>/               reduce attempt a's scratch space (merge passes)
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

    pub fn attempt_part(&self, attempt: AttemptId, reduce: u32) -> PathBuf {
        self.attempt_dir(attempt).join(format!("part-{reduce}"))
    }

    pub fn map_dir(&self, map: u32) -> PathBuf {
        self.work_dir.join(format!("map-{map}"))
    }

    pub fn map_part(&self, map: u32, reduce: u32) -> PathBuf {
        self.map_dir(map).join(format!("part-{reduce}"))
    }

    pub fn reduce_attempt_output(&self, attempt: AttemptId, reduce: u32) -> PathBuf {
        self.staging_dir.join(format!("attempt-{}-mr-out-{reduce}", attempt.0))
    }

    pub fn reduce_committed(&self, reduce: u32) -> PathBuf {
        self.staging_dir.join(output_name(reduce))
    }
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
