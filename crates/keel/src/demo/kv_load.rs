//! The demo's load: a few concurrent `keel-kv-client`s doing gets, puts and appends on a handful of keys, each
//! operation recorded with its call and return times for the linearizability checker, as the acceptance test
//! `crates/keel/tests/kv_linearizable.rs` does. Also the probe that times the first write after the kill.
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use keel_kv_client::{Client, ClientOptions};
use keel_lincheck::{KvInput, KvOutput, Operation};

/// An operation gives up after this long (all its attempts): long enough to ride out a leader election on a
/// busy machine; an operation that gives up is recorded as "outcome unknown", which the checker handles.
const LOAD_DEADLINE_MS: u64 = 10_000;
/// A short pause between one client's operations: it keeps the history a size the checker decides in a second
/// or so (thousands of operations, not tens of thousands) while the load still looks like load.
const PAUSE_BETWEEN_OPERATIONS: Duration = Duration::from_millis(2);
/// The probe retries a little faster than a clerk's 100 ms, so the time it measures is the cluster's, not its
/// own back-off.
const PROBE_ROUND_BACKOFF_MS: u64 = 10;
const PROBE_RETRY_AFTER_MAX_MS: u64 = 20;
const PROBE_ATTEMPT_TIMEOUT_MS: u64 = 2_000;
/// The key the probe writes; the load uses `key-0..`, so the probe's writes constrain nothing of theirs.
const PROBE_KEY: &str = "probe";

pub type KvOperation = Operation<KvInput, KvOutput>;

/// What every client shares: the history, the clock it is stamped against, and the counters the narration
/// reads while the load runs.
#[derive(Clone)]
pub struct Recorder {
    started: Instant,
    history: Arc<Mutex<Vec<KvOperation>>>,
    pub acknowledged: Arc<AtomicU64>,
    pub unknown: Arc<AtomicU64>,
    pub failed: Arc<AtomicU64>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            started: Instant::now(),
            history: Arc::new(Mutex::new(Vec::new())),
            acknowledged: Arc::new(AtomicU64::new(0)),
            unknown: Arc::new(AtomicU64::new(0)),
            failed: Arc::new(AtomicU64::new(0)),
        }
    }

    fn now_ns(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    fn push(&self, operation: KvOperation) {
        // A poisoned lock means a client task panicked while pushing; the history is still a valid list.
        let mut history = self.history.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        history.push(operation);
    }

    /// Runs one operation and records it: returned (with its output), timed out (a write that may or may not
    /// have applied), or nothing at all (a definite failure constrains nothing; a failed read neither).
    async fn run(&self, client_id: u64, client: &mut Client, input: KvInput) -> Option<KvOutput> {
        let call_ns = self.now_ns();
        let result = match &input {
            KvInput::Get { key } => client.get(key).await.map(|v| KvOutput::Value(v.map(|v| v.value))),
            KvInput::Put { key, value } => client.put(key, value).await.map(|_| KvOutput::Written),
            KvInput::Append { key, value } => client.append(key, value).await.map(|_| KvOutput::Written),
            KvInput::Delete { key } => client.delete(key).await.map(|d| KvOutput::Deleted { existed: d.deleted }),
        };
        let return_ns = self.now_ns();
        match result {
            Ok(output) => {
                self.acknowledged.fetch_add(1, Ordering::Relaxed);
                self.push(Operation::returned(client_id, call_ns, return_ns, input, output.clone()));
                Some(output)
            }
            Err(error) if error.is_outcome_unknown() => {
                self.unknown.fetch_add(1, Ordering::Relaxed);
                self.push(Operation::timed_out(client_id, call_ns, input));
                None
            }
            Err(_) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                None
            }
        }
    }

    pub fn operations(&self) -> u64 {
        self.acknowledged.load(Ordering::Relaxed) + self.unknown.load(Ordering::Relaxed)
    }

    /// The history so far (a copy).
    pub fn history(&self) -> Vec<KvOperation> {
        self.history.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }
}

/// A tiny generator per client: the load's choices need not be secure or shared, only varied.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

pub fn load_key(k: u64) -> String {
    format!("key-{k}")
}

/// One client's loop until `stop`: a random get, put or append on one of `keys` keys. Values name the client
/// and the operation (`[2.17]`), so every written value is distinct and a read shows which write it saw.
pub async fn client_loop(
    client_id: u64,
    endpoints: Vec<String>,
    keys: u64,
    recorder: Recorder,
    stop: Arc<AtomicBool>,
) -> Result<()> {
    let options = ClientOptions { deadline_ms: LOAD_DEADLINE_MS, ..ClientOptions::default() };
    let mut client = Client::new(endpoints, options).map_err(|e| anyhow!("client {client_id}: {e}"))?;
    let mut rng = Rng(client_id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let mut n: u64 = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let key = load_key(rng.below(keys));
        let value = format!("[{client_id}.{n}]");
        let input = match rng.below(3) {
            0 => KvInput::Get { key },
            1 => KvInput::Put { key, value },
            _ => KvInput::Append { key, value },
        };
        recorder.run(client_id, &mut client, input).await;
        tokio::time::sleep(PAUSE_BETWEEN_OPERATIONS).await;
    }
    Ok(())
}

/// Writes `probe` until one write is acknowledged; returns when that happened. Every attempt is recorded like
/// the load's operations.
pub async fn probe_first_write(
    client_id: u64,
    endpoints: Vec<String>,
    recorder: Recorder,
    limit: Duration,
) -> Result<Instant> {
    let options = ClientOptions {
        attempt_timeout_ms: PROBE_ATTEMPT_TIMEOUT_MS,
        deadline_ms: u64::try_from(limit.as_millis()).unwrap_or(u64::MAX),
        round_backoff_ms: PROBE_ROUND_BACKOFF_MS,
        retry_after_max_ms: PROBE_RETRY_AFTER_MAX_MS,
        ..ClientOptions::default()
    };
    let mut client = Client::new(endpoints, options).map_err(|e| anyhow!("probe client: {e}"))?;
    let until = Instant::now() + limit;
    let mut n = 0;
    while Instant::now() < until {
        n += 1;
        let input = KvInput::Put { key: PROBE_KEY.to_string(), value: format!("after-the-kill-{n}") };
        if recorder.run(client_id, &mut client, input).await.is_some() {
            return Ok(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(PROBE_ROUND_BACKOFF_MS)).await;
    }
    bail!("no write was acknowledged within {} s of the kill", limit.as_secs())
}

/// Reads every key once through `endpoint` (and records the reads): the checker then holds the final state
/// against every acknowledged write. Returns how many keys it read.
pub async fn final_reads(client_id: u64, endpoint: String, keys: u64, recorder: &Recorder) -> Result<u64> {
    let mut client =
        Client::new(vec![endpoint.clone()], ClientOptions::default()).map_err(|e| anyhow!("reader: {e}"))?;
    let mut read = 0;
    for k in 0..keys {
        let key = load_key(k);
        if recorder.run(client_id, &mut client, KvInput::Get { key: key.clone() }).await.is_none() {
            bail!("the final read of {key} through {endpoint} failed");
        }
        read += 1;
    }
    if recorder.run(client_id, &mut client, KvInput::Get { key: PROBE_KEY.to_string() }).await.is_none() {
        bail!("the final read of {PROBE_KEY} through {endpoint} failed");
    }
    Ok(read + 1)
}
