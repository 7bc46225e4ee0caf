//! The coordinator's journal: what it must not forget if it is killed. An append-only file in the output
//! directory holding the job (its spec, once), one record per coordinator run, and one record per task
//! commit, each fsynced before the commit is acknowledged. `keel mr coordinator` started again on the same
//! output directory reads it and resumes the job: committed tasks whose output is still there are not run
//! again.
//!
//! ```text
//! file   = record*
//! record = len:u32le crc32c(body):u32le body            body = postcard(JournalRecord), len <= 16 MiB
//! ```
//! A crash can tear only the last record (appends are sequential and each is fsynced before the next); a
//! reader stops at the first incomplete or mismatching record and cuts the file there, so the next append
//! follows good data. A torn record was never acknowledged, so nothing acknowledged is lost.
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::layout::sync_dir;
use crate::protocol::{JobId, TaskStats};
use crate::streaming::StreamingSpec;
use crate::task_table::{AttemptId, TaskId};

/// The journal's name in the output directory: hidden, so `mr-out*` globs never see it.
pub const JOURNAL_FILE_NAME: &str = ".keel-journal";
/// Largest record: the job record lists every input path; 16 MiB holds over 100,000 long paths, and a
/// corrupt length must not make the reader allocate gigabytes.
const RECORD_BYTES_MAX: usize = 16 * 1024 * 1024;
const HEADER_BYTES: usize = 8;

/// What a resumed coordinator needs to run the same job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournaledJob {
    pub job: JobId,
    pub app: String,
    /// Absolute input paths, in the order given.
    pub inputs: Vec<String>,
    pub reduce_tasks: u32,
    pub split_size_bytes: u64,
    pub memory_budget_bytes: u64,
    pub streaming: Option<StreamingSpec>,
    pub work_dir: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JournalRecord {
    /// First record of every journal.
    Job(JournaledJob),
    /// A coordinator (re)started on this journal. Run `n` issues attempt ids from `n << 40`, so a resumed
    /// coordinator never reuses an attempt id (nor its file names) of an attempt still running from before.
    Run { run: u32 },
    /// `attempt` of `task` was committed (its files renamed into place); `stats` restores the job's totals.
    Committed { task: TaskId, attempt: AttemptId, stats: TaskStats },
}

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: {what}", path.display())]
    Corrupt { path: PathBuf, what: String },
}

pub struct Journal {
    file: File,
    path: PathBuf,
}

pub fn journal_path(output_dir: &Path) -> PathBuf {
    output_dir.join(JOURNAL_FILE_NAME)
}

impl Journal {
    /// Starts a journal for a new job: the job record and run 0, durable (file and directory) on return.
    pub fn create(output_dir: &Path, job: JournaledJob) -> Result<Journal, JournalError> {
        let path = journal_path(output_dir);
        let io_err = |source| JournalError::Io { path: path.clone(), source };
        let file = OpenOptions::new().write(true).create_new(true).open(&path).map_err(io_err)?;
        let mut journal = Journal { file, path: path.clone() };
        journal.append(&JournalRecord::Job(job))?;
        journal.append(&JournalRecord::Run { run: 0 })?;
        sync_dir(output_dir).map_err(io_err)?;
        Ok(journal)
    }

    /// Opens an existing journal: its intact records (a torn tail is cut off), ready for appends.
    pub fn open(path: &Path) -> Result<(Journal, Vec<JournalRecord>), JournalError> {
        let io_err = |source| JournalError::Io { path: path.to_path_buf(), source };
        let mut file = OpenOptions::new().read(true).write(true).open(path).map_err(io_err)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_err)?;
        let (records, good_bytes) = decode_records(&bytes);
        if good_bytes < bytes.len() {
            tracing::warn!(
                "{}: cutting {} bytes of a torn last record (a crash during an append)",
                path.display(),
                bytes.len() - good_bytes
            );
            file.set_len(good_bytes as u64).map_err(io_err)?;
            file.sync_all().map_err(io_err)?;
        }
        let journal = Journal { file, path: path.to_path_buf() };
        Ok((journal, records))
    }

    /// Appends `record` and fsyncs: on return it survives a crash, and so does every record before it.
    pub fn append(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        self.append_unsynced(record)?;
        self.file.sync_data().map_err(|source| JournalError::Io { path: self.path.clone(), source })
    }

    /// Appends `record` without an fsync: it survives the coordinator's death (the kernel has it) but not
    /// the machine's, unless a later [`Journal::append`] syncs it along. For records whose loss only costs
    /// work again, such as a map's commit (its output is not fsynced either). A power loss may then cut the
    /// journal anywhere after the last synced record; the reader keeps the records before the first bad one.
    pub fn append_unsynced(&mut self, record: &JournalRecord) -> Result<(), JournalError> {
        let body = postcard::to_allocvec(record)
            .map_err(|e| JournalError::Corrupt { path: self.path.clone(), what: format!("encoding: {e}") })?;
        if body.len() > RECORD_BYTES_MAX {
            return Err(JournalError::Corrupt {
                path: self.path.clone(),
                what: format!("a record of {} bytes exceeds the limit of {RECORD_BYTES_MAX}", body.len()),
            });
        }
        let mut frame = Vec::with_capacity(HEADER_BYTES + body.len());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        let io_err = |source| JournalError::Io { path: self.path.clone(), source };
        self.file.write_all(&frame).map_err(io_err)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The intact records at the start of `bytes`, and how many bytes they take.
fn decode_records(bytes: &[u8]) -> (Vec<JournalRecord>, usize) {
    let mut records = Vec::new();
    let mut at = 0;
    while bytes.len() - at >= HEADER_BYTES {
        let len = u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]) as usize;
        let crc = u32::from_le_bytes([bytes[at + 4], bytes[at + 5], bytes[at + 6], bytes[at + 7]]);
        let start = at + HEADER_BYTES;
        if len > RECORD_BYTES_MAX || bytes.len() - start < len {
            break;
        }
        let body = &bytes[start..start + len];
        if crc32c::crc32c(body) != crc {
            break;
        }
        let Ok(record) = postcard::from_bytes::<JournalRecord>(body) else {
            break;
        };
        records.push(record);
        at = start + len;
    }
    (records, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> JournaledJob {
        JournaledJob {
            job: JobId(7),
            app: "wc".into(),
            inputs: vec!["/books/a.txt".into()],
            reduce_tasks: 3,
            split_size_bytes: 1 << 20,
            memory_budget_bytes: 1 << 20,
            streaming: None,
            work_dir: None,
        }
    }

    #[test]
    fn records_read_back_and_a_torn_tail_is_cut_so_appends_follow_good_data() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), job()).unwrap();
        let path = journal_path(dir.path());
        let before = std::fs::metadata(&path).unwrap().len() as usize;
        let committed =
            JournalRecord::Committed { task: TaskId::Map(0), attempt: AttemptId(1), stats: TaskStats::default() };
        journal.append(&committed).unwrap();
        drop(journal);
        let whole = std::fs::read(&path).unwrap();
        // Every cut inside the last record loses that record only.
        for cut in 1..=whole.len() - before {
            std::fs::write(&path, &whole[..whole.len() - cut]).unwrap();
            let (_, records) = Journal::open(&path).unwrap();
            assert_eq!(records, [JournalRecord::Job(job()), JournalRecord::Run { run: 0 }], "cut {cut}");
        }
        let (mut journal, _) = Journal::open(&path).unwrap();
        journal.append(&JournalRecord::Run { run: 1 }).unwrap();
        let (_, records) = Journal::open(&path).unwrap();
        assert_eq!(records, [JournalRecord::Job(job()), JournalRecord::Run { run: 0 }, JournalRecord::Run { run: 1 }]);
    }

    #[test]
    fn a_flipped_bit_ends_the_journal_there() {
        let dir = tempfile::tempdir().unwrap();
        let mut journal = Journal::create(dir.path(), job()).unwrap();
        journal.append(&JournalRecord::Run { run: 1 }).unwrap();
        drop(journal);
        let path = journal_path(dir.path());
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (_, records) = Journal::open(&path).unwrap();
        assert_eq!(records, [JournalRecord::Job(job()), JournalRecord::Run { run: 0 }]);
    }

    #[test]
    fn a_second_journal_in_one_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Journal::create(dir.path(), job()).unwrap();
        assert!(Journal::create(dir.path(), job()).is_err());
    }
}
