//! Snapshot files: one record (kind `Snapshot`, body the postcard `Snapshot`) per file, published by atomic
//! rename, and referred to from the WAL by a [`SnapshotRef`] that names the file and checks its body.
use std::path::{Path, PathBuf};

use keel_raft::{Snapshot, SnapshotMeta};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fs::{FileSystem, WalFile};
use crate::record::{self, Decoded, Kind, SNAPSHOT_BODY_SIZE_BYTES_MAX};

/// Suffix of a file being written; such a file is never referred to, and recovery deletes it.
pub const TMP_SUFFIX: &str = ".tmp";

/// What the WAL stores about a snapshot: which one, and the checksum and size of its file's body, so a stale or
/// damaged file can never be taken for it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotRef {
    pub meta: SnapshotMeta,
    pub body_size_bytes: u64,
    pub body_crc32c: u32,
}

impl SnapshotRef {
    /// `snap-<index>-<term>-<crc>.snap`. The checksum is in the name so two different snapshots at the same
    /// position never share a file: renaming one over the other could otherwise break the reference an older
    /// (still durable) WAL record holds if a crash came before the new reference was durable.
    pub fn file_name(&self) -> String {
        format!("snap-{:020}-{:020}-{:08x}.snap", self.meta.index, self.meta.term, self.body_crc32c)
    }

    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(self.file_name())
    }
}

pub fn is_snapshot_file_name(name: &str) -> bool {
    name.starts_with("snap-") && name.ends_with(".snap")
}

/// Encodes `snapshot` as a whole file into `buf` (cleared first) and returns the reference to it.
pub fn encode(snapshot: &Snapshot, buf: &mut Vec<u8>) -> Result<SnapshotRef, Error> {
    buf.clear();
    record::append(buf, Kind::Snapshot, snapshot, SNAPSHOT_BODY_SIZE_BYTES_MAX).map_err(|e| match e {
        record::EncodeError::TooLarge { size_bytes, size_bytes_max } => {
            Error::UpdateTooLarge { size_bytes, size_bytes_max }
        }
        record::EncodeError::Postcard(e) => Error::InvalidUpdate { reason: format!("snapshot does not encode: {e}") },
    })?;
    let body_crc32c = u32::from_le_bytes([buf[8], buf[9], buf[10], buf[11]]);
    let body_size_bytes = (buf.len() - record::HEADER_SIZE_BYTES) as u64;
    Ok(SnapshotRef { meta: snapshot.meta, body_size_bytes, body_crc32c })
}

/// Publishes the file: write it under a temporary name, fsync it, rename it into place, fsync the directory. Only
/// then may a WAL record refer to it: a crash at any step leaves either no file under the final name or the whole
/// file.
pub fn write<F: FileSystem>(fs: &F, dir: &Path, reference: &SnapshotRef, bytes: &[u8]) -> Result<(), Error> {
    let path = reference.path(dir);
    let tmp = dir.join(format!("{}{TMP_SUFFIX}", reference.file_name()));
    let mut file = fs.create(&tmp).map_err(Error::io("create", &tmp))?;
    file.append(bytes).map_err(Error::io("write", &tmp))?;
    file.sync_data().map_err(Error::io("fdatasync", &tmp))?;
    fs.rename(&tmp, &path).map_err(Error::io("rename", &tmp))?;
    fs.sync_dir(dir).map_err(Error::io("fsync directory", dir))
}

/// Reads the snapshot `reference` names and checks that the file is exactly what was written.
pub fn read<F: FileSystem>(fs: &F, dir: &Path, reference: &SnapshotRef) -> Result<Snapshot, Error> {
    let path = reference.path(dir);
    let index = reference.meta.index;
    let bytes = match fs.read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Error::SnapshotMissing { path, index }),
        Err(e) => return Err(Error::Io { op: "read", path, source: e }),
    };
    let corrupt = |reason: String| Error::SnapshotCorrupt { path: path.clone(), index, reason };
    let body = match record::decode(&bytes, SNAPSHOT_BODY_SIZE_BYTES_MAX) {
        Decoded::Record { kind: Kind::Snapshot, body, size_bytes } if size_bytes == bytes.len() => body,
        Decoded::Record { kind: Kind::Snapshot, size_bytes, .. } => {
            return Err(corrupt(format!("{} bytes after the record", bytes.len() - size_bytes)));
        }
        Decoded::Record { kind, .. } => return Err(corrupt(format!("holds a {kind:?} record"))),
        Decoded::Incomplete { reason } => return Err(corrupt(format!("incomplete: {reason}"))),
        Decoded::Corrupt { reason } => return Err(corrupt(reason)),
        Decoded::UnknownVersion { version } => {
            return Err(Error::UnknownVersion { path, offset: 0, version, supported: record::FORMAT_VERSION });
        }
    };
    if body.len() as u64 != reference.body_size_bytes || crc32c::crc32c(body) != reference.body_crc32c {
        return Err(corrupt("the file is not the one the WAL refers to (size or checksum differ)".into()));
    }
    let snapshot: Snapshot = postcard::from_bytes(body).map_err(|e| corrupt(format!("does not decode: {e}")))?;
    if snapshot.meta != reference.meta {
        return Err(corrupt(format!("holds {:?}, the WAL expects {:?}", snapshot.meta, reference.meta)));
    }
    Ok(snapshot)
}
