//! Socket options of every peer connection, both directions: no Nagle delay, and a bound on how long a dead peer
//! (a machine powered off or cut off, which sends no FIN or RST) can hold a connection open.
//!
//! Without the bound, a connection to a vanished peer stays "established" for as long as the kernel keeps
//! retransmitting (about 15 minutes with Linux's defaults): the outbound task keeps writing into it and never
//! redials, and an inbound reader waits for frames that will never come. With it, the connection fails within
//! about [`DEAD_PEER_UNACKED_TIMEOUT_MS`] when data goes unacknowledged, or [`dead_peer_idle_detection_ms`] when
//! it is idle; the outbound task then redials with its backoff and reaches the peer when it is back.
use std::io;
use std::os::fd::AsRawFd;

use tokio::net::TcpStream;

/// An idle connection is probed after this long without traffic (Raft's heartbeats make this rare).
pub const KEEPALIVE_IDLE_S: u32 = 5;
/// Then probed this often...
pub const KEEPALIVE_INTERVAL_S: u32 = 1;
/// ...and given up after this many unanswered probes.
pub const KEEPALIVE_PROBES: u32 = 3;
/// Data unacknowledged this long fails the connection (`TCP_USER_TIMEOUT`). Far above any round trip between
/// live peers, and below the minutes the kernel would otherwise keep retransmitting.
pub const DEAD_PEER_UNACKED_TIMEOUT_MS: u32 = 10_000;

/// How long an idle connection to a dead peer lasts at most.
pub const fn dead_peer_idle_detection_ms() -> u64 {
    (KEEPALIVE_IDLE_S as u64 + KEEPALIVE_INTERVAL_S as u64 * KEEPALIVE_PROBES as u64) * 1000
}

/// Sets `TCP_NODELAY`, keepalive probes and `TCP_USER_TIMEOUT` on a peer connection. A failure leaves the
/// connection usable (only slower, or slower to notice a dead peer): callers log it and go on.
pub fn tune_peer_socket(stream: &TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let fd = stream.as_raw_fd();
    set_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE, 1)?;
    #[cfg(target_os = "linux")]
    {
        set_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE, KEEPALIVE_IDLE_S)?;
        set_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)?;
        set_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT, KEEPALIVE_PROBES)?;
        set_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT, DEAD_PEER_UNACKED_TIMEOUT_MS)?;
    }
    Ok(())
}

fn set_int(fd: libc::c_int, level: libc::c_int, name: libc::c_int, value: u32) -> io::Result<()> {
    let value = libc::c_int::try_from(value).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `fd` is an open socket borrowed from a live `TcpStream`; the option value is a c_int of the size
    // passed.
    let result = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&value as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if result == 0 { Ok(()) } else { Err(io::Error::last_os_error()) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_int(fd: libc::c_int, level: libc::c_int, name: libc::c_int) -> libc::c_int {
        let mut value: libc::c_int = -1;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: as in `set_int`, with room for one c_int.
        let result = unsafe { libc::getsockopt(fd, level, name, (&mut value as *mut libc::c_int).cast(), &mut len) };
        assert_eq!(result, 0, "getsockopt: {}", io::Error::last_os_error());
        value
    }

    #[tokio::test]
    async fn a_tuned_connection_probes_an_idle_peer_and_bounds_unacknowledged_data() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let fd = stream.as_raw_fd();
        assert_eq!(
            get_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE),
            0,
            "off by default: the test would prove nothing"
        );
        tune_peer_socket(&stream).unwrap();
        assert!(stream.nodelay().unwrap());
        assert_eq!(get_int(fd, libc::SOL_SOCKET, libc::SO_KEEPALIVE), 1);
        #[cfg(target_os = "linux")]
        {
            assert_eq!(get_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPIDLE), KEEPALIVE_IDLE_S as i32);
            assert_eq!(get_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPINTVL), KEEPALIVE_INTERVAL_S as i32);
            assert_eq!(get_int(fd, libc::IPPROTO_TCP, libc::TCP_KEEPCNT), KEEPALIVE_PROBES as i32);
            assert_eq!(get_int(fd, libc::IPPROTO_TCP, libc::TCP_USER_TIMEOUT), DEAD_PEER_UNACKED_TIMEOUT_MS as i32);
        }
        assert!(dead_peer_idle_detection_ms() <= 10_000);
    }
}
