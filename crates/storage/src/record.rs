//! Record framing: how one checksummed, versioned record is laid out in a WAL segment or a snapshot file.
//!
//! ```text
//!  0               4               8               12        13       14
//!  +---------------+---------------+---------------+---------+--------+---------------------+
//!  | header_crc32c | body_len      | body_crc32c   | version | kind   | body (postcard)     |
//!  | u32 LE        | u32 LE        | u32 LE        | u8      | u8     | body_len bytes      |
//!  +---------------+---------------+---------------+---------+--------+---------------------+
//!   header_crc32c covers bytes 4..14; body_crc32c covers the body.
//! ```
//!
//! The header has its own checksum so that a damaged length can never pass for a record that runs past the end
//! of the file: "runs past the end" is how a torn write looks, and a torn write is cut off, while damage is
//! refused. With the length protected, only missing bytes (never flipped ones) are read as a torn tail.
use serde::Serialize;

/// The version this build writes and the only one it reads. Bump it for any change to framing or bodies.
pub const FORMAT_VERSION: u8 = 1;

/// Bytes before the body.
pub const HEADER_SIZE_BYTES: usize = 14;

/// The largest WAL record body. A persist is one record (its one checksum is what makes it atomic), so this bounds
/// one `PersistUpdate`: the core caps what a follower receives per append at 1 MiB
/// (`DEFAULT_MAX_BYTES_PER_APPEND`) and a leader's Ready holds what was proposed since the last one, so 64 MiB is
/// far above any real update, while keeping what recovery holds in memory at once (one segment plus one record)
/// bounded.
pub const WAL_RECORD_BODY_SIZE_BYTES_MAX: usize = 64 << 20;

/// The largest snapshot file body. The core holds a snapshot in memory whole (it is one `Vec<u8>`), so the file is
/// read whole too; 1 GiB is far above the state machines keel runs and well below the 4 GiB the u32 length allows.
pub const SNAPSHOT_BODY_SIZE_BYTES_MAX: usize = 1 << 30;

/// What a record holds. The kind is covered by the header checksum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// First record of every WAL segment: the state the log had when the segment began.
    SegmentHeader = 1,
    /// One persist: hard state, snapshot reference, truncation and entries, all or nothing.
    Batch = 2,
    /// The whole body of a snapshot file.
    Snapshot = 3,
}

impl Kind {
    fn from_byte(byte: u8) -> Option<Kind> {
        match byte {
            1 => Some(Kind::SegmentHeader),
            2 => Some(Kind::Batch),
            3 => Some(Kind::Snapshot),
            _ => None,
        }
    }
}

/// A record that failed to encode: nothing was appended to the buffer.
#[derive(Debug)]
pub enum EncodeError {
    TooLarge { size_bytes: usize, size_bytes_max: usize },
    Postcard(postcard::Error),
}

/// A postcard output that appends to a borrowed `Vec` with `extend_from_slice` (postcard's own `to_extend` goes
/// byte by byte, and `to_stdvec` allocates a new vector per record).
struct AppendTo<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendTo<'_> {
    type Output = ();

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Appends `value`'s postcard encoding to `buf`.
pub fn postcard_into<T: Serialize + ?Sized>(buf: &mut Vec<u8>, value: &T) -> Result<(), postcard::Error> {
    postcard::serialize_with_flavor(value, AppendTo(buf))
}

/// Appends `value` as postcard encodes an unsigned integer (a LEB128 varint), for bodies encoded by hand.
pub fn varint_into(buf: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        buf.push(value as u8 | 0x80);
        value >>= 7;
    }
    buf.push(value as u8);
}

/// Appends one record holding `body` to `buf`, encoding the body in place (no intermediate allocation). On error
/// `buf` is left as it was.
pub fn append<T: Serialize + ?Sized>(
    buf: &mut Vec<u8>,
    kind: Kind,
    body: &T,
    size_bytes_max: usize,
) -> Result<(), EncodeError> {
    append_with(buf, kind, size_bytes_max, |buf| postcard_into(buf, body))
}

/// Appends one record whose body `encode` appends to the buffer it is given. On error `buf` is left as it was.
pub fn append_with(
    buf: &mut Vec<u8>,
    kind: Kind,
    size_bytes_max: usize,
    encode: impl FnOnce(&mut Vec<u8>) -> Result<(), postcard::Error>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.extend_from_slice(&[0; HEADER_SIZE_BYTES]);
    if let Err(e) = encode(buf) {
        buf.truncate(start);
        return Err(EncodeError::Postcard(e));
    }
    let body_len = buf.len() - start - HEADER_SIZE_BYTES;
    let body_len_u32 = match u32::try_from(body_len) {
        Ok(len) if body_len <= size_bytes_max => len,
        _ => {
            buf.truncate(start);
            return Err(EncodeError::TooLarge { size_bytes: body_len, size_bytes_max });
        }
    };
    let body_crc = crc32c::crc32c(&buf[start + HEADER_SIZE_BYTES..]);
    let header = &mut buf[start..start + HEADER_SIZE_BYTES];
    header[4..8].copy_from_slice(&body_len_u32.to_le_bytes());
    header[8..12].copy_from_slice(&body_crc.to_le_bytes());
    header[12] = FORMAT_VERSION;
    header[13] = kind as u8;
    let header_crc = crc32c::crc32c(&header[4..]);
    header[0..4].copy_from_slice(&header_crc.to_le_bytes());
    // The write path checks the record it is about to write with the very code the read path uses.
    assert!(
        matches!(decode(&buf[start..], size_bytes_max), Decoded::Record { kind: k, .. } if k == kind),
        "a freshly encoded record must decode"
    );
    Ok(())
}

/// What the bytes at some offset hold.
#[derive(Debug)]
pub enum Decoded<'a> {
    /// A whole, valid record of `size_bytes` bytes (header included).
    Record { kind: Kind, body: &'a [u8], size_bytes: usize },
    /// The bytes end before the record does: the signature of a write cut short by a crash.
    Incomplete { reason: String },
    /// All the bytes are there but they are wrong: damage, never a crash.
    Corrupt { reason: String },
    /// A valid header from a format this build does not read.
    UnknownVersion { version: u8 },
}

/// Decodes the record at the start of `bytes` (which runs to the end of the file).
pub fn decode(bytes: &[u8], size_bytes_max: usize) -> Decoded<'_> {
    let Some(header) = bytes.get(..HEADER_SIZE_BYTES) else {
        return Decoded::Incomplete { reason: format!("{} of {HEADER_SIZE_BYTES} header bytes present", bytes.len()) };
    };
    let header_crc = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
    if crc32c::crc32c(&header[4..]) != header_crc {
        return Decoded::Corrupt { reason: "header checksum mismatch".into() };
    }
    let body_len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
    let body_crc = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    let version = header[12];
    if version != FORMAT_VERSION {
        return Decoded::UnknownVersion { version };
    }
    let Some(kind) = Kind::from_byte(header[13]) else {
        return Decoded::Corrupt { reason: format!("unknown record kind {}", header[13]) };
    };
    if body_len > size_bytes_max {
        return Decoded::Corrupt { reason: format!("body length {body_len} exceeds the limit {size_bytes_max}") };
    }
    let Some(body) = bytes.get(HEADER_SIZE_BYTES..HEADER_SIZE_BYTES + body_len) else {
        return Decoded::Incomplete {
            reason: format!("{} of {body_len} body bytes present", bytes.len() - HEADER_SIZE_BYTES),
        };
    };
    if crc32c::crc32c(body) != body_crc {
        return Decoded::Corrupt { reason: "body checksum mismatch".into() };
    }
    Decoded::Record { kind, body, size_bytes: HEADER_SIZE_BYTES + body_len }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_record() -> Vec<u8> {
        let mut buf = Vec::new();
        append(&mut buf, Kind::Batch, &(7u64, vec![1u8, 2, 3]), 1024).unwrap();
        buf
    }

    #[test]
    fn a_record_round_trips() {
        let buf = one_record();
        match decode(&buf, 1024) {
            Decoded::Record { kind, body, size_bytes } => {
                assert_eq!(kind, Kind::Batch);
                assert_eq!(size_bytes, buf.len());
                let back: (u64, Vec<u8>) = postcard::from_bytes(body).unwrap();
                assert_eq!(back, (7, vec![1, 2, 3]));
            }
            other => panic!("expected a record, got {other:?}"),
        }
    }

    /// Every strict prefix reads as incomplete (a torn write), never as corrupt and never as a record.
    #[test]
    fn every_prefix_is_incomplete() {
        let buf = one_record();
        for cut in 0..buf.len() {
            assert!(matches!(decode(&buf[..cut], 1024), Decoded::Incomplete { .. }), "cut at {cut}");
        }
    }

    /// Every single flipped bit is corruption, never incomplete (which would be cut off silently) and never data.
    #[test]
    fn every_flipped_bit_is_corrupt() {
        let buf = one_record();
        for bit in 0..buf.len() * 8 {
            let mut damaged = buf.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(matches!(decode(&damaged, 1024), Decoded::Corrupt { .. }), "bit {bit}");
        }
    }

    #[test]
    fn another_version_is_reported_as_such() {
        let mut buf = one_record();
        buf[12] = FORMAT_VERSION + 1;
        let crc = crc32c::crc32c(&buf[4..HEADER_SIZE_BYTES]);
        buf[0..4].copy_from_slice(&crc.to_le_bytes());
        assert!(matches!(decode(&buf, 1024), Decoded::UnknownVersion { version } if version == FORMAT_VERSION + 1));
    }

    #[test]
    fn an_oversized_body_is_refused_and_leaves_the_buffer_alone() {
        let mut buf = vec![9u8; 3];
        let err = append(&mut buf, Kind::Batch, &vec![0u8; 100], 50).unwrap_err();
        assert!(matches!(err, EncodeError::TooLarge { size_bytes: 101, size_bytes_max: 50 }));
        assert_eq!(buf, vec![9u8; 3]);
    }
}
