//! Framing of every message on a peer connection.
//!
//! ```text
//! frame = length:u32le  crc32c(body):u32le  body        body = postcard, length <= the reader's limit
//! ```
//! The encoder is pure (it appends to a buffer, so a batch of frames goes out in one write); the reader checks
//! the length against its limit before allocating anything, then the checksum, and only then hands the body
//! to the decoder. Any failure is a [`FrameError`] that says what was wrong; the caller closes the connection.
use std::io::{self, ErrorKind};

use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt};

/// Bytes before the body: the length and the checksum.
pub const FRAME_HEADER_BYTES: usize = 8;

/// Messages at least this large are encoded and decoded on tokio's blocking pool rather than on an async
/// worker: byte sequences cost a few nanoseconds per byte through serde, so 1 MiB is a few milliseconds and a
/// 64 MiB snapshot a few hundred, too long to hold a worker that also runs timers and the Raft loop. The
/// receiver knows a body's size; the sender knows only what `send_sized` declared.
pub const BLOCKING_CODEC_BYTES_MIN: usize = 1024 * 1024;

/// What the reader allocates for a body before its bytes arrive; a larger body grows from there, doubling, up
/// to its announced length.
const BODY_FIRST_READ_BYTES: usize = 64 * 1024;

/// Why a frame could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended cleanly between frames: the peer closed the connection.
    #[error("connection closed by the peer")]
    Closed,
    /// The stream ended inside a frame (a half-written frame, then a close).
    #[error("stream ended inside a frame: {received_bytes} of {expected_bytes} bytes received")]
    Truncated { received_bytes: usize, expected_bytes: usize },
    /// The header announces a body above the limit: garbage, another protocol on this port, or a peer
    /// configured with a larger `frame_bytes_max`.
    #[error(
        "frame of {length_bytes} bytes exceeds the limit of {limit_bytes} bytes \
         (not a keel peer, or a peer with a larger frame_bytes_max?)"
    )]
    TooLarge { length_bytes: u64, limit_bytes: usize },
    /// The body does not match its checksum: corruption, or not a keel peer.
    #[error("frame checksum mismatch: header says {expected:#010x}, body hashes to {actual:#010x}")]
    Checksum { expected: u32, actual: u32 },
    /// The body is a valid frame but not a message of the expected type (another version of the message
    /// types, or garbage with a lucky checksum).
    #[error("frame body of {body_bytes} bytes does not decode: {source}")]
    Decode { body_bytes: usize, source: postcard::Error },
    /// The message could not be encoded (a serde implementation that fails).
    #[error("message does not encode: {0}")]
    Encode(postcard::Error),
    /// The socket failed (reset, timed out, ...).
    #[error("{0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// True when the peer sent something that is not a valid frame, as opposed to going away: these are the
    /// errors counted as `malformed_frames`.
    pub fn is_malformed(&self) -> bool {
        matches!(
            self,
            FrameError::Truncated { .. }
                | FrameError::TooLarge { .. }
                | FrameError::Checksum { .. }
                | FrameError::Decode { .. }
        )
    }
}

/// A postcard output that appends to an existing buffer, so that many frames share one allocation. It owns
/// the buffer while serialising (through a `&mut Vec` every pushed byte would go through two pointers, which
/// measured twice as slow for byte sequences).
struct AppendToVec(Vec<u8>);

impl postcard::ser_flavors::Flavor for AppendToVec {
    type Output = Vec<u8>;

    #[inline(always)]
    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.0.push(byte);
        Ok(())
    }

    #[inline(always)]
    fn try_extend(&mut self, bytes: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(bytes);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<Vec<u8>> {
        Ok(self.0)
    }
}

/// Appends one frame carrying `message` to `out` and returns the frame's size in bytes (header included).
///
/// A body above `body_bytes_max` is refused with [`FrameError::TooLarge`], and on any error `out` is left as
/// it was, so the frames already in it stay valid.
pub fn encode_frame<T: Serialize + ?Sized>(
    out: &mut Vec<u8>,
    message: &T,
    body_bytes_max: usize,
) -> Result<usize, FrameError> {
    let frame_start = out.len();
    out.extend_from_slice(&[0u8; FRAME_HEADER_BYTES]);
    let body_start = out.len();
    let mut serializer = postcard::Serializer { output: AppendToVec(std::mem::take(out)) };
    let encoded = message.serialize(&mut serializer);
    *out = serializer.output.0;
    if let Err(error) = encoded {
        out.truncate(frame_start);
        return Err(FrameError::Encode(error));
    }
    let body_bytes = out.len() - body_start;
    let length = match u32::try_from(body_bytes) {
        Ok(length) if body_bytes <= body_bytes_max => length,
        _ => {
            out.truncate(frame_start);
            return Err(FrameError::TooLarge { length_bytes: body_bytes as u64, limit_bytes: body_bytes_max });
        }
    };
    let checksum = crc32c::crc32c(&out[body_start..]);
    out[frame_start..frame_start + 4].copy_from_slice(&length.to_le_bytes());
    out[frame_start + 4..body_start].copy_from_slice(&checksum.to_le_bytes());
    debug_assert_eq!(out.len() - frame_start, FRAME_HEADER_BYTES + body_bytes);
    Ok(FRAME_HEADER_BYTES + body_bytes)
}

/// Reads one frame and returns its checked body.
///
/// The length is compared with `body_bytes_max` before the body is allocated, so a garbage header cannot make
/// the reader allocate more than the limit. A clean end of stream before the first header byte is
/// [`FrameError::Closed`]; an end anywhere else is [`FrameError::Truncated`].
pub async fn read_frame<R: AsyncRead + Unpin>(input: &mut R, body_bytes_max: usize) -> Result<Vec<u8>, FrameError> {
    let mut header = [0u8; FRAME_HEADER_BYTES];
    let header_received = read_fully(input, &mut header).await?;
    if header_received == 0 {
        return Err(FrameError::Closed);
    }
    if header_received < FRAME_HEADER_BYTES {
        return Err(FrameError::Truncated { received_bytes: header_received, expected_bytes: FRAME_HEADER_BYTES });
    }
    let [l0, l1, l2, l3, c0, c1, c2, c3] = header;
    let length = u32::from_le_bytes([l0, l1, l2, l3]);
    let expected_checksum = u32::from_le_bytes([c0, c1, c2, c3]);
    let body_bytes = match usize::try_from(length) {
        Ok(body_bytes) if body_bytes <= body_bytes_max => body_bytes,
        _ => return Err(FrameError::TooLarge { length_bytes: u64::from(length), limit_bytes: body_bytes_max }),
    };
    // Grow the body as bytes arrive (doubling) rather than allocating the announced length up front: a peer
    // that announces a large frame and then stalls holds only about what it actually sent. Bodies up to
    // BODY_FIRST_READ_BYTES, nearly all of them, take one allocation of exactly their size.
    let mut body = Vec::new();
    while body.len() < body_bytes {
        let filled = body.len();
        let target = body_bytes.min(BODY_FIRST_READ_BYTES.max(2 * filled));
        body.resize(target, 0);
        let received = read_fully(input, &mut body[filled..]).await?;
        if received < target - filled {
            return Err(FrameError::Truncated {
                received_bytes: FRAME_HEADER_BYTES + filled + received,
                expected_bytes: FRAME_HEADER_BYTES + body_bytes,
            });
        }
    }
    let actual_checksum = crc32c::crc32c(&body);
    if actual_checksum != expected_checksum {
        return Err(FrameError::Checksum { expected: expected_checksum, actual: actual_checksum });
    }
    Ok(body)
}

/// Decodes a checked frame body.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    postcard::from_bytes(body).map_err(|source| FrameError::Decode { body_bytes: body.len(), source })
}

/// Reads one frame and decodes its body as a `T`.
pub async fn read_message<T: DeserializeOwned, R: AsyncRead + Unpin>(
    input: &mut R,
    body_bytes_max: usize,
) -> Result<(T, usize), FrameError> {
    let body = read_frame(input, body_bytes_max).await?;
    let message = decode_body(&body)?;
    Ok((message, FRAME_HEADER_BYTES + body.len()))
}

/// Fills `buffer` unless the stream ends first; returns how many bytes were read (less than the buffer's
/// length only at the end of the stream).
async fn read_fully<R: AsyncRead + Unpin>(input: &mut R, buffer: &mut [u8]) -> Result<usize, FrameError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..]).await {
            Ok(0) => break,
            Ok(received) => filled += received,
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            Err(error) => return Err(FrameError::Io(error)),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde::Deserialize;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    enum Sample {
        Small(u64),
        Text(String),
        Blob(Vec<u8>),
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a current-thread runtime builds without I/O drivers")
            .block_on(future)
    }

    fn read_all(mut bytes: &[u8], limit: usize) -> Vec<Result<Sample, String>> {
        block_on(async {
            let mut out = Vec::new();
            loop {
                match read_message::<Sample, _>(&mut bytes, limit).await {
                    Ok((message, _)) => out.push(Ok(message)),
                    Err(FrameError::Closed) => return out,
                    Err(error) => {
                        out.push(Err(error.to_string()));
                        return out;
                    }
                }
            }
        })
    }

    #[test]
    fn frames_concatenated_in_one_buffer_read_back_in_order() {
        let messages = [Sample::Small(7), Sample::Text("hello".into()), Sample::Blob(vec![1, 2, 3])];
        let mut buffer = Vec::new();
        let mut total = 0;
        for message in &messages {
            total += encode_frame(&mut buffer, message, 1024).expect("small messages encode");
        }
        assert_eq!(total, buffer.len());
        let read: Vec<Sample> = read_all(&buffer, 1024).into_iter().map(|r| r.expect("valid frame")).collect();
        assert_eq!(read, messages);
    }

    #[test]
    fn header_is_length_then_crc32c_of_the_body_little_endian() {
        let mut buffer = Vec::new();
        encode_frame(&mut buffer, &Sample::Small(1), 1024).expect("encodes");
        let body = &buffer[FRAME_HEADER_BYTES..];
        assert_eq!(buffer[0..4], (body.len() as u32).to_le_bytes());
        assert_eq!(buffer[4..8], crc32c::crc32c(body).to_le_bytes());
        assert_eq!(body, postcard::to_stdvec(&Sample::Small(1)).expect("encodes"));
    }

    #[test]
    fn an_oversized_message_is_refused_and_leaves_the_buffer_as_it_was() {
        let mut buffer = Vec::new();
        encode_frame(&mut buffer, &Sample::Small(1), 64).expect("fits");
        let before = buffer.clone();
        let error = encode_frame(&mut buffer, &Sample::Blob(vec![0; 100]), 64).expect_err("too large");
        assert!(matches!(error, FrameError::TooLarge { limit_bytes: 64, .. }), "{error}");
        assert_eq!(buffer, before);
    }

    #[test]
    fn an_oversized_length_is_refused_before_allocating() {
        // u32::MAX bytes announced, nothing behind it: must fail on the length, not try to read 4 GiB.
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&0u32.to_le_bytes());
        let result = block_on(read_frame(&mut bytes.as_slice(), 1024));
        assert!(
            matches!(result, Err(FrameError::TooLarge { length_bytes, .. }) if length_bytes == u64::from(u32::MAX))
        );
    }

    #[test]
    fn a_flipped_body_bit_fails_the_checksum() {
        let mut buffer = Vec::new();
        encode_frame(&mut buffer, &Sample::Text("checksummed".into()), 1024).expect("encodes");
        let last = buffer.len() - 1;
        buffer[last] ^= 0x01;
        let result = block_on(read_frame(&mut buffer.as_slice(), 1024));
        let error = result.expect_err("corrupted");
        assert!(matches!(error, FrameError::Checksum { .. }) && error.is_malformed(), "{error}");
    }

    #[test]
    fn a_half_frame_is_truncated_and_a_clean_end_is_closed() {
        let mut buffer = Vec::new();
        encode_frame(&mut buffer, &Sample::Text("a longer message".into()), 1024).expect("encodes");
        for cut in 1..buffer.len() {
            let error = block_on(read_frame(&mut &buffer[..cut], 1024)).expect_err("cut short");
            assert!(matches!(error, FrameError::Truncated { .. }), "cut at {cut}: {error}");
            assert!(error.is_malformed());
        }
        let error = block_on(read_frame(&mut &buffer[..0], 1024)).expect_err("empty");
        assert!(matches!(error, FrameError::Closed) && !error.is_malformed());
    }

    #[test]
    fn bodies_larger_than_the_first_read_grow_and_round_trip_or_fail_when_cut() {
        let blob = Sample::Blob((0..300 * 1024).map(|i| (i % 253) as u8).collect());
        let mut buffer = Vec::new();
        encode_frame(&mut buffer, &blob, 1024 * 1024).expect("encodes");
        assert_eq!(read_all(&buffer, 1024 * 1024), vec![Ok(blob)]);
        let error = block_on(read_frame(&mut &buffer[..200 * 1024], 1024 * 1024)).expect_err("cut");
        assert!(
            matches!(error, FrameError::Truncated { received_bytes, .. } if received_bytes == 200 * 1024),
            "{error}"
        );
    }

    #[test]
    fn a_valid_frame_with_an_undecodable_body_is_a_decode_error() {
        let body = [0xff, 0xff, 0xff, 0xff, 0x0f]; // variant index 2^32-1: no such variant
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
        bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        bytes.extend_from_slice(&body);
        let error = block_on(read_message::<Sample, _>(&mut bytes.as_slice(), 1024)).expect_err("undecodable");
        assert!(matches!(error, FrameError::Decode { body_bytes: 5, .. }) && error.is_malformed(), "{error}");
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic_the_reader(bytes in proptest::collection::vec(any::<u8>(), 0..256), limit in 0usize..512) {
            // Any outcome is fine except a panic; a read that succeeds must have consumed whole frames.
            let _ = read_all(&bytes, limit);
        }

        #[test]
        fn arbitrary_bodies_behind_a_valid_header_never_panic_the_decoder(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let mut bytes = Vec::new();
            bytes.extend_from_slice(&(body.len() as u32).to_le_bytes());
            bytes.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
            bytes.extend_from_slice(&body);
            let _ = read_all(&bytes, 1024);
        }

        #[test]
        fn encoded_messages_read_back_identical(values in proptest::collection::vec(any::<u64>(), 1..20), text in ".{0,40}") {
            let messages: Vec<Sample> = values.iter().map(|v| Sample::Small(*v)).chain([Sample::Text(text)]).collect();
            let mut buffer = Vec::new();
            for message in &messages {
                encode_frame(&mut buffer, message, 1024).expect("small messages encode");
            }
            let read: Vec<Sample> = read_all(&buffer, 1024).into_iter().map(|r| r.expect("valid frame")).collect();
            prop_assert_eq!(read, messages);
        }
    }
}
