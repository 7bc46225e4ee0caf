//! A client's random identity, without a random-number crate: std's `RandomState` is seeded from the operating
//! system's randomness once per process and varied per instance; the clock and pid are mixed in for good measure.
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};

use keel_kv::{ClientId, NO_SESSION};

/// A fresh nonzero client id (0 is `NO_SESSION`). Ids collide with probability about n^2 / 2^65 for n clients.
pub fn random_client_id() -> ClientId {
    static DRAWN: AtomicU64 = AtomicU64::new(0);
    loop {
        let mut hasher = RandomState::new().build_hasher();
        hasher.write_u64(DRAWN.fetch_add(1, Ordering::Relaxed));
        hasher.write_u32(std::process::id());
        if let Ok(since_epoch) = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            hasher.write_u128(since_epoch.as_nanos());
        }
        let id = hasher.finish();
        if id != NO_SESSION {
            return id;
        }
    }
}
