//! Apps that exist only to test the engine, mirroring the 6.824 Lab 1 test plugins (`src/mrapps/*.go`), plus
//! `test-slow` (every map sleeps, for timeout, stop and interrupt tests) and `test-straggler` (the first
//! map attempt sleeps a minute, for backup tasks).
//! They sleep, crash and count processes on purpose. They are registered under the `test-` prefix and
//! left out of the app list users see, so nobody runs them by accident.
//!
//! Like the originals, they communicate through files in the worker's current directory
//! (`mr-worker-*`), so the test starts every worker in the same directory.
use std::sync::Arc;

use crate::app::AppRegistry;

mod crash;
mod early_exit;
mod jobcount;
mod mtiming;
mod parallel;
mod random;
mod rtiming;
mod slow;
pub mod straggler;

/// Prefix of every test app's name.
pub const TEST_APP_PREFIX: &str = "test-";

pub fn is_test_app(name: &str) -> bool {
    name.starts_with(TEST_APP_PREFIX)
}

pub(crate) fn register(registry: &mut AppRegistry) {
    registry.register("test-mtiming", Arc::new(mtiming::MapTiming));
    registry.register("test-rtiming", Arc::new(rtiming::ReduceTiming));
    registry.register("test-jobcount", Arc::new(jobcount::JobCount));
    registry.register("test-early-exit", Arc::new(early_exit::EarlyExit));
    registry.register("test-crash", Arc::new(crash::Crash { crashes: true }));
    registry.register("test-nocrash", Arc::new(crash::Crash { crashes: false }));
    registry.register("test-slow", Arc::new(slow::Slow));
    registry.register("test-straggler", Arc::new(straggler::Straggler));
}
