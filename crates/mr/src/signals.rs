//! SIGINT (Ctrl-C) and SIGTERM for `keel mr run` and `keel mr coordinator`: instead of dying on the spot,
//! leaving scratch directories behind and (for `run`) orphaned workers, the process notes the signal and its
//! supervising loop ends the job: workers stopped, scratch removed, no output, a one-line error and exit
//! status 128 + the signal number, as shells expect.
//!
//! The handler only stores the signal number in an atomic (async-signal-safe); everything else happens in
//! ordinary threads that poll [`received`].
use std::io;
use std::sync::atomic::{AtomicI32, Ordering};

static RECEIVED: AtomicI32 = AtomicI32::new(0);

extern "C" fn record(signal: libc::c_int) {
    RECEIVED.store(signal, Ordering::SeqCst);
}

/// Installs the handlers for SIGINT and SIGTERM. Child processes start with the default actions again
/// (exec resets handled signals).
pub fn install() -> io::Result<()> {
    for signal in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: a zeroed sigaction is a valid value; the handler only stores to an atomic, which is
        // async-signal-safe; SA_RESTART keeps blocking calls in other threads from failing with EINTR.
        let result = unsafe {
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = record as extern "C" fn(libc::c_int) as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(signal, &action, std::ptr::null_mut())
        };
        if result != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// The last SIGINT or SIGTERM received since [`install`], if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        signal => Some(signal),
    }
}

pub fn name(signal: i32) -> &'static str {
    match signal {
        libc::SIGINT => "SIGINT",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// The job was stopped by a signal. `main` exits with status 128 + `signal`.
#[derive(Debug, thiserror::Error)]
#[error("job interrupted by {}: workers stopped, scratch removed, no output written", name(*.signal))]
pub struct Interrupted {
    pub signal: i32,
}
