//! WAL segment files: their names, and reading one back into records.
use std::path::Path;

use keel_raft::Index;

use crate::error::Error;
use crate::record::{self, Decoded, Kind, WAL_RECORD_BODY_SIZE_BYTES_MAX};

/// A segment's name: `wal-<seq>-<first_index>.log`, both zero-padded so that names sort in the order segments were
/// created. The sequence number orders them; the first index (the log's next index when the segment began) is
/// there for the reader and is checked against the segment's header record. The sequence number comes first
/// because truncation is logical (see the crate docs): after a log is cut back, a newer segment can begin at a
/// lower index than an older one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SegmentName {
    pub seq: u64,
    pub first_index: Index,
}

impl SegmentName {
    pub fn file_name(&self) -> String {
        format!("wal-{:010}-{:020}.log", self.seq, self.first_index)
    }

    pub fn parse(name: &str) -> Option<SegmentName> {
        let rest = name.strip_prefix("wal-")?.strip_suffix(".log")?;
        let (seq, first_index) = rest.split_once('-')?;
        if seq.len() != 10 || first_index.len() != 20 {
            return None;
        }
        Some(SegmentName { seq: seq.parse().ok()?, first_index: first_index.parse().ok()? })
    }
}

/// One whole, checksummed record found in a segment.
pub struct Scanned<'a> {
    pub offset: u64,
    pub kind: Kind,
    pub body: &'a [u8],
}

/// What follows the last whole record of a segment.
#[derive(Debug, PartialEq, Eq)]
pub enum Tail {
    /// Nothing: the segment ends at a record boundary.
    Clean,
    /// An incomplete record starting at `offset`: a write cut short by a crash.
    Torn { offset: u64, reason: String },
}

/// Splits a segment's bytes into records. Only the last segment may end torn (every earlier one was fsynced whole
/// before the next was created); any other damage anywhere is corruption.
pub fn scan<'a>(path: &Path, bytes: &'a [u8], last_segment: bool) -> Result<(Vec<Scanned<'a>>, Tail), Error> {
    let mut records = Vec::new();
    let mut offset = 0usize;
    while offset < bytes.len() {
        let at = offset as u64;
        match record::decode(&bytes[offset..], WAL_RECORD_BODY_SIZE_BYTES_MAX) {
            Decoded::Record { kind, body, size_bytes } => {
                records.push(Scanned { offset: at, kind, body });
                offset += size_bytes;
            }
            Decoded::Incomplete { reason } if last_segment => return Ok((records, Tail::Torn { offset: at, reason })),
            Decoded::Incomplete { reason } => {
                return Err(Error::CorruptRecord {
                    path: path.to_path_buf(),
                    offset: at,
                    reason: format!("incomplete record in a segment that is not the last ({reason})"),
                });
            }
            Decoded::Corrupt { reason } => {
                return Err(Error::CorruptRecord { path: path.to_path_buf(), offset: at, reason });
            }
            Decoded::UnknownVersion { version } => {
                return Err(Error::UnknownVersion {
                    path: path.to_path_buf(),
                    offset: at,
                    version,
                    supported: record::FORMAT_VERSION,
                });
            }
        }
    }
    Ok((records, Tail::Clean))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sort_by_sequence() {
        let a = SegmentName { seq: 9, first_index: 500 };
        let b = SegmentName { seq: 10, first_index: 20 };
        assert_eq!(SegmentName::parse(&a.file_name()), Some(a));
        assert!(a.file_name() < b.file_name(), "names must sort in creation order");
        assert_eq!(SegmentName::parse("wal-1-2.log"), None);
        assert_eq!(SegmentName::parse("snap-00000000000000000001.snap"), None);
    }
}
