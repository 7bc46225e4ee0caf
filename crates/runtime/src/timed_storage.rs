//! A `Storage` that reports how long each persist took (the write and the fdatasync), and how big snapshots are,
//! to `/metrics`. It changes nothing else: every call goes straight through.
use std::time::Instant;

use keel_raft::{DurableState, PersistUpdate};
use keel_storage::Storage;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

pub struct TimedStorage<St> {
    inner: St,
    persist_seconds: Histogram,
    snapshot_bytes_last: Gauge,
}

impl<St: Storage> TimedStorage<St> {
    pub fn new(inner: St, persist_seconds: Histogram, snapshot_bytes_last: Gauge) -> Self {
        TimedStorage { inner, persist_seconds, snapshot_bytes_last }
    }

    pub fn inner(&self) -> &St {
        &self.inner
    }
}

impl<St: Storage> Storage for TimedStorage<St> {
    type Error = St::Error;

    fn persist(&mut self, update: &PersistUpdate) -> Result<(), St::Error> {
        let started = Instant::now();
        let result = self.inner.persist(update);
        self.persist_seconds.observe(started.elapsed().as_secs_f64());
        if let Some(snapshot) = &update.snapshot {
            self.snapshot_bytes_last.set(i64::try_from(snapshot.data.len()).unwrap_or(i64::MAX));
        }
        result
    }

    fn load(&self) -> Result<DurableState, St::Error> {
        self.inner.load()
    }
}
