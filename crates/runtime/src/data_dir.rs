//! A node's data directory: who it belongs to, and one process at a time.
//!
//! ```text
//!   DIR/
//!     LOCK           flock(2)ed by the running process; released by the kernel when it dies, even by kill -9
//!     identity.json  {"format": 1, "cluster_id": "...", "node_id": N}, written once when the directory is new
//!     raft/          the write-ahead log and snapshot files (keel-storage's DiskStorage)
//! ```
//!
//! Two processes on one directory would interleave their writes to the same WAL and destroy it; a node started
//! with another `--id` or `--cluster-id` on an existing directory would vote with someone else's log. Both are
//! refused at start, with the reason and what to do.
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use keel_raft::NodeId;
use serde::{Deserialize, Serialize};

const IDENTITY_FILE: &str = "identity.json";
const LOCK_FILE: &str = "LOCK";
const RAFT_DIR: &str = "raft";
const IDENTITY_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum DataDirError {
    #[error("data directory {dir}: cannot {action}: {source}")]
    Io {
        dir: PathBuf,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "data directory {dir} is in use by another keel process (its {LOCK_FILE} is locked); stop that process, or give this node its own --data-dir"
    )]
    Locked { dir: PathBuf },
    #[error(
        "data directory {dir} belongs to node {found_node} of cluster {found_cluster:?}, not node {node} of cluster {cluster:?}; start with the matching --id and --cluster-id, or use another --data-dir"
    )]
    WrongIdentity { dir: PathBuf, found_cluster: String, found_node: NodeId, cluster: String, node: NodeId },
    #[error("data directory {dir}: {IDENTITY_FILE} is unreadable ({what}); it was not written by keel, or was damaged")]
    BadIdentity { dir: PathBuf, what: String },
}

#[derive(Debug, Serialize, Deserialize)]
struct Identity {
    format: u32,
    cluster_id: String,
    node_id: NodeId,
}

/// An open, locked data directory. The lock lasts as long as this value (and the process).
#[derive(Debug)]
pub struct DataDir {
    dir: PathBuf,
    /// Holds the flock; closing the file releases it.
    _lock: File,
}

impl DataDir {
    /// Opens (creating if new) the data directory of node `node_id` of `cluster_id`, and locks it.
    pub fn open(dir: &Path, cluster_id: &str, node_id: NodeId) -> Result<DataDir, DataDirError> {
        let io = |action| move |source| DataDirError::Io { dir: dir.to_path_buf(), action, source };
        std::fs::create_dir_all(dir).map_err(io("create it"))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join(LOCK_FILE))
            .map_err(io("open its lock file"))?;
        // SAFETY: flock on a file descriptor we own; no memory is involved.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let error = std::io::Error::last_os_error();
            return Err(if error.raw_os_error() == Some(libc::EWOULDBLOCK) {
                DataDirError::Locked { dir: dir.to_path_buf() }
            } else {
                DataDirError::Io { dir: dir.to_path_buf(), action: "lock it", source: error }
            });
        }
        let identity_path = dir.join(IDENTITY_FILE);
        match std::fs::read(&identity_path) {
            Ok(bytes) => {
                let found: Identity = serde_json::from_slice(&bytes)
                    .map_err(|e| DataDirError::BadIdentity { dir: dir.to_path_buf(), what: e.to_string() })?;
                if found.format != IDENTITY_FORMAT {
                    return Err(DataDirError::BadIdentity {
                        dir: dir.to_path_buf(),
                        what: format!("format {} (this keel reads format {IDENTITY_FORMAT})", found.format),
                    });
                }
                if found.cluster_id != cluster_id || found.node_id != node_id {
                    return Err(DataDirError::WrongIdentity {
                        dir: dir.to_path_buf(),
                        found_cluster: found.cluster_id,
                        found_node: found.node_id,
                        cluster: cluster_id.to_string(),
                        node: node_id,
                    });
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                write_identity(dir, &Identity { format: IDENTITY_FORMAT, cluster_id: cluster_id.into(), node_id })
                    .map_err(io("write its identity file"))?;
            }
            Err(e) => return Err(io("read its identity file")(e)),
        }
        Ok(DataDir { dir: dir.to_path_buf(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }

    /// Where the WAL and snapshots live.
    pub fn raft_dir(&self) -> PathBuf {
        self.dir.join(RAFT_DIR)
    }
}

/// Written to a temporary file, synced, renamed, and the directory synced: a crash leaves either no identity
/// (the directory is still new) or the whole one.
fn write_identity(dir: &Path, identity: &Identity) -> std::io::Result<()> {
    let tmp = dir.join(format!("{IDENTITY_FILE}.tmp"));
    let mut file = File::create(&tmp)?;
    let json = serde_json::to_vec_pretty(identity).map_err(std::io::Error::other)?;
    file.write_all(&json)?;
    file.sync_all()?;
    std::fs::rename(&tmp, dir.join(IDENTITY_FILE))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_process_one_identity() {
        let tmp = tempfile::tempdir().expect("tempdir");
        let first = DataDir::open(tmp.path(), "c", 1).expect("a new directory opens");
        assert!(matches!(DataDir::open(tmp.path(), "c", 1), Err(DataDirError::Locked { .. })));
        drop(first);
        DataDir::open(tmp.path(), "c", 1).expect("the lock goes with its holder");
        let wrong = DataDir::open(tmp.path(), "c", 2).expect_err("another id");
        assert!(wrong.to_string().contains("belongs to node 1"), "{wrong}");
        assert!(matches!(DataDir::open(tmp.path(), "other", 1), Err(DataDirError::WrongIdentity { .. })));
        std::fs::write(tmp.path().join(IDENTITY_FILE), b"{not json").expect("write");
        assert!(matches!(DataDir::open(tmp.path(), "c", 1), Err(DataDirError::BadIdentity { .. })));
    }
}
