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
    /// An incomplete record starting at `offset` (or zeros from there to the end): a write cut short by a crash.
    Torn { offset: u64, reason: String },
}

/// Pages are written whole or not at all by the file systems keel runs on (4 KiB is the page size of x86-64 and
/// most arm64 kernels); zeros that begin at a page boundary are a page that was never written.
pub const PAGE_SIZE_BYTES: usize = 4096;

/// Whether the damaged record at `offset` is a last write that never fully reached the disk although the file's
/// new length did (XFS and ext4 with `data=writeback` allow that): the bytes from some point inside this record to
/// the end of the file are zeros, and that point is where the write began (`offset`) or a page boundary, since
/// unwritten pages read as zeros. The zeros may begin before that page boundary: the written page before it may
/// end in zeros of the record's own (small integers, a value's padding), which is why the boundary taken is the
/// first one at or after the start of the zeros. A flipped bit cannot pass for this (it makes nothing zero); a record whose own
/// data ends in a page or more of zeros, damaged at the end of the log, would be cut like a torn write, which is
/// the price of restarting after a power loss on such file systems.
fn unwritten_tail(bytes: &[u8], offset: usize) -> bool {
    // The earlier record may end in zeros of its own: the run that counts starts at `offset` at the earliest.
    let zeros_from = (bytes.len() - bytes.iter().rev().take_while(|&&b| b == 0).count()).max(offset);
    // The record's length counts only if its header checksum holds: a damaged length must not stretch "this record"
    // over the records after it.
    let record_end = match bytes.get(offset..offset + record::HEADER_SIZE_BYTES) {
        Some(header)
            if crc32c::crc32c(&header[4..]) == u32::from_le_bytes([header[0], header[1], header[2], header[3]]) =>
        {
            offset
                + record::HEADER_SIZE_BYTES
                + u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize
        }
        _ => offset + record::HEADER_SIZE_BYTES,
    };
    // Where the write stopped reaching the disk: its start, or the first page boundary from which all is zeros.
    let unwritten_from = if zeros_from == offset { offset } else { zeros_from.next_multiple_of(PAGE_SIZE_BYTES) };
    unwritten_from < bytes.len() && unwritten_from < record_end
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
            Decoded::Corrupt { reason } if last_segment && unwritten_tail(bytes, offset) => {
                let reason = format!("{reason}, and zeros from there to the end of the file");
                return Ok((records, Tail::Torn { offset: at, reason }));
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

    fn two_records(second_body_len: usize) -> (Vec<u8>, usize) {
        let mut bytes = Vec::new();
        record::append(&mut bytes, Kind::Batch, &vec![7u8; 100], 1 << 20).unwrap();
        let second = bytes.len();
        record::append(&mut bytes, Kind::Batch, &vec![9u8; second_body_len], 1 << 20).unwrap();
        (bytes, second)
    }

    fn tail_of(bytes: &[u8]) -> Result<Tail, Error> {
        scan(Path::new("seg"), bytes, true).map(|(_, tail)| tail)
    }

    #[test]
    fn zeros_from_the_start_of_the_last_record_are_a_torn_write() {
        let (mut bytes, second) = two_records(50);
        bytes[second..].fill(0);
        assert!(matches!(tail_of(&bytes), Ok(Tail::Torn { offset, .. }) if offset == second as u64));
    }

    #[test]
    fn zeros_from_a_page_boundary_inside_the_last_record_are_a_torn_write() {
        let (mut bytes, second) = two_records(2 * PAGE_SIZE_BYTES);
        bytes[PAGE_SIZE_BYTES..].fill(0);
        assert!(matches!(tail_of(&bytes), Ok(Tail::Torn { offset, .. }) if offset == second as u64));
    }

    /// Found by the fault sweep (seed 700000258239): the record's header straddled a page boundary and its
    /// length field ended in zero bytes, so the zeros began a few bytes before the unwritten page.
    #[test]
    fn zeros_that_begin_inside_the_written_page_before_an_unwritten_one_are_a_torn_write() {
        let mut bytes = Vec::new();
        record::append(&mut bytes, Kind::Batch, &vec![7u8; PAGE_SIZE_BYTES - 200], 1 << 20).unwrap();
        let second = bytes.len();
        // The second record's last bytes before the page boundary are zeros of its own, then the page is unwritten.
        let mut body = vec![9u8; 2 * PAGE_SIZE_BYTES];
        let own_zeros = PAGE_SIZE_BYTES - second - record::HEADER_SIZE_BYTES - 10;
        body[own_zeros..own_zeros + 20].fill(0); // the body's length prefix shifts them by a byte or two
        record::append(&mut bytes, Kind::Batch, &body, 1 << 20).unwrap();
        bytes[PAGE_SIZE_BYTES..].fill(0);
        assert!(bytes[PAGE_SIZE_BYTES - 5..PAGE_SIZE_BYTES].iter().all(|&b| b == 0), "the zeros begin before the page");
        assert!(matches!(tail_of(&bytes), Ok(Tail::Torn { offset, .. }) if offset == second as u64));
    }

    #[test]
    fn zeros_that_no_unwritten_page_explains_are_corruption() {
        // Zeros from inside a page to the end of the file, without reaching the next page boundary: no page was
        // left unwritten, so something changed the data.
        let (mut bytes, _) = two_records(PAGE_SIZE_BYTES + 500);
        assert!(bytes.len() < 2 * PAGE_SIZE_BYTES);
        bytes[PAGE_SIZE_BYTES + 1..].fill(0);
        assert!(matches!(tail_of(&bytes), Err(Error::CorruptRecord { .. })));
        let (mut bytes, second) = two_records(50);
        bytes[second + 20] ^= 1;
        assert!(matches!(tail_of(&bytes), Err(Error::CorruptRecord { .. })), "a flip is not a torn write");
        assert!(scan(Path::new("seg"), &bytes[..second + 20], false).is_err(), "only the last segment is cut");
    }

    /// A damaged length in an earlier record cannot make the zeros at the end of the last one look like its own
    /// torn tail: the records in between would be cut with it.
    #[test]
    fn a_damaged_length_does_not_stretch_a_torn_tail_over_later_records() {
        let (mut bytes, second) = two_records(2 * PAGE_SIZE_BYTES);
        bytes[PAGE_SIZE_BYTES..].fill(0); // the second record really is torn from a page on
        bytes[6] ^= 0x40; // and the first record's length is damaged
        assert!(matches!(tail_of(&bytes), Err(Error::CorruptRecord { offset: 0, .. })), "second at {second}");
    }

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
