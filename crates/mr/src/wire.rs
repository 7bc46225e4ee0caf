//! Framing for the coordinator-worker protocol over TCP.
//!
//! ```text
//! frame = len:u32le crc32c(body):u32le body      body = postcard-encoded message, len <= MAX_FRAME_BYTES
//! ```
//! A frame that is too large, fails its checksum or does not decode is an error and the connection is
//! closed; nothing is ever trusted beyond the frame that failed.
use std::io::{self, ErrorKind, Read, Write};

use serde::Serialize;
use serde::de::DeserializeOwned;

/// Largest frame body. Messages are small (a task assignment names one input split), so 1 MiB is generous,
/// and it bounds what a reader allocates for a garbage length (say, an HTTP client on the wrong port).
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("connection closed")]
    Closed,
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("frame of {0} bytes exceeds the limit of {MAX_FRAME_BYTES} (not a keel mr peer?)")]
    TooLarge(usize),
    #[error("frame checksum mismatch")]
    Checksum,
    #[error("cannot decode message: {0}")]
    Decode(postcard::Error),
    #[error("cannot encode message: {0}")]
    Encode(postcard::Error),
}

impl WireError {
    /// True when the peer went away (closed, reset, timed out) rather than sent something bad.
    pub fn is_disconnect(&self) -> bool {
        match self {
            WireError::Closed => true,
            WireError::Io(e) => matches!(
                e.kind(),
                ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
                    | ErrorKind::UnexpectedEof
                    | ErrorKind::TimedOut
                    | ErrorKind::WouldBlock
            ),
            _ => false,
        }
    }
}

/// Encodes `message` and writes it as one frame.
pub fn send<T: Serialize>(out: &mut impl Write, message: &T) -> Result<(), WireError> {
    let body = postcard::to_stdvec(message).map_err(WireError::Encode)?;
    if body.len() > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(body.len()));
    }
    let mut frame = Vec::with_capacity(8 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
    frame.extend_from_slice(&body);
    out.write_all(&frame)?;
    out.flush()?;
    Ok(())
}

/// Reads one frame and decodes it. A clean end of stream before a frame is [`WireError::Closed`].
pub fn receive<T: DeserializeOwned>(input: &mut impl Read) -> Result<T, WireError> {
    let body = receive_frame(input)?;
    postcard::from_bytes(&body).map_err(WireError::Decode)
}

/// Reads one frame's body, checked.
pub fn receive_frame(input: &mut impl Read) -> Result<Vec<u8>, WireError> {
    let mut header = [0u8; 8];
    let mut filled = 0;
    while filled < header.len() {
        match input.read(&mut header[filled..]) {
            Ok(0) if filled == 0 => return Err(WireError::Closed),
            Ok(0) => return Err(WireError::Io(ErrorKind::UnexpectedEof.into())),
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if len > MAX_FRAME_BYTES {
        return Err(WireError::TooLarge(len));
    }
    let mut body = vec![0u8; len];
    input.read_exact(&mut body)?;
    if crc32c::crc32c(&body) != crc {
        return Err(WireError::Checksum);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_damage_is_detected() {
        let mut buf = Vec::new();
        send(&mut buf, &("hello".to_string(), 42u64)).unwrap();
        let got: (String, u64) = receive(&mut buf.as_slice()).unwrap();
        assert_eq!(got, ("hello".to_string(), 42));

        let mut damaged = buf.clone();
        let last = damaged.len() - 1;
        damaged[last] ^= 1;
        assert!(matches!(receive::<(String, u64)>(&mut damaged.as_slice()), Err(WireError::Checksum)));

        assert!(matches!(receive::<u64>(&mut &b""[..]), Err(WireError::Closed)));
        assert!(matches!(receive::<u64>(&mut &buf[..5]), Err(e) if e.is_disconnect()));
        let http = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(receive::<u64>(&mut &http[..]), Err(WireError::TooLarge(_))));
    }
}
