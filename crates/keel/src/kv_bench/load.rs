//! The load: N benchmark clients, each with one request outstanding (closed loop), for a time or a number of
//! requests, after a warm-up that opens the connections and is not counted. A request counts when it started
//! inside the measured window (and, in a timed run, finished inside it); its latency goes into the client's own
//! histogram, merged at the end, so clients share nothing but a few atomic counters.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::histogram::Histogram;
use super::target::{Connection, System};

/// Error messages kept per run (the first ones): enough to see what went wrong without flooding the report.
const ERROR_SAMPLES_MAX: usize = 5;
/// After a failed request a client pauses this long, so a node that refuses connections at once is not hammered
/// in a tight loop (which would also starve the other clients on the load generator's thread).
const ERROR_PAUSE_MS: u64 = 5;

#[derive(Clone, Debug)]
pub struct Plan {
    pub system: System,
    pub label: String,
    pub clients: usize,
    pub stop: Stop,
    pub warmup: Duration,
    pub value_bytes: usize,
    pub read_percent: u8,
    pub keys: u64,
}

impl Plan {
    /// How many nodes the clients spread over (1: all on the leader, with --leader-only).
    fn nodes_used(&self) -> usize {
        self.system.endpoints().len().min(self.clients)
    }
}

#[derive(Clone, Copy, Debug)]
pub enum Stop {
    After(Duration),
    Requests(u64),
}

/// What a run did.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub label: String,
    pub system: String,
    pub clients: usize,
    pub value_bytes: usize,
    pub read_percent: u8,
    pub keys: u64,
    /// How many nodes the clients talked to (runs are compared only with runs that used as many).
    pub nodes_used: usize,
    pub elapsed: Duration,
    pub requests: u64,
    pub errors: u64,
    pub error_samples: Vec<String>,
    pub latency: Histogram,
}

impl Outcome {
    pub fn ops_per_second(&self) -> f64 {
        let seconds = self.elapsed.as_secs_f64();
        if seconds > 0.0 { self.requests as f64 / seconds } else { 0.0 }
    }
}

struct Shared {
    measuring: AtomicBool,
    stopped: AtomicBool,
    /// Requests claimed in a run with `--requests` (a client claims one before sending it).
    claimed: AtomicU64,
    /// Measured requests done (for the progress bar).
    completed: AtomicU64,
    errors: AtomicU64,
}

struct ClientResult {
    latency: Histogram,
    errors: u64,
    error_samples: Vec<String>,
}

/// Runs `plan` on the current tokio runtime; `progress` is told how far the run is.
pub async fn run(plan: &Plan, progress: &indicatif::ProgressBar) -> anyhow::Result<Outcome> {
    let shared = Arc::new(Shared {
        measuring: AtomicBool::new(false),
        stopped: AtomicBool::new(false),
        claimed: AtomicU64::new(0),
        completed: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let mut tasks = Vec::with_capacity(plan.clients);
    for index in 0..plan.clients {
        let connection = Connection::open(&plan.system, index)?;
        tasks.push(tokio::spawn(client_loop(connection, index, plan.clone(), shared.clone())));
    }
    tokio::time::sleep(plan.warmup).await;
    let started = Instant::now();
    shared.measuring.store(true, Ordering::SeqCst);
    match plan.stop {
        Stop::After(duration) => {
            progress.set_length(duration.as_millis() as u64);
            while started.elapsed() < duration {
                tokio::time::sleep(Duration::from_millis(100).min(duration.saturating_sub(started.elapsed()))).await;
                progress.set_position(started.elapsed().as_millis() as u64);
                show_counts(progress, &shared, started);
            }
            shared.stopped.store(true, Ordering::SeqCst);
        }
        Stop::Requests(requests) => {
            progress.set_length(requests);
            while tasks.iter().any(|task| !task.is_finished()) {
                tokio::time::sleep(Duration::from_millis(100)).await;
                progress.set_position(shared.completed.load(Ordering::Relaxed) + shared.errors.load(Ordering::Relaxed));
                show_counts(progress, &shared, started);
            }
        }
    }
    let elapsed = match plan.stop {
        Stop::After(duration) => duration,
        Stop::Requests(_) => started.elapsed(),
    };
    let mut latency = Histogram::default();
    let (mut errors, mut error_samples) = (0, Vec::new());
    for task in tasks {
        let result = task.await.map_err(|e| anyhow::anyhow!("a benchmark client failed: {e}"))?;
        latency.merge(&result.latency);
        errors += result.errors;
        error_samples.extend(result.error_samples);
    }
    error_samples.truncate(ERROR_SAMPLES_MAX);
    progress.finish_and_clear();
    Ok(Outcome {
        label: plan.label.clone(),
        system: plan.system.name().to_string(),
        clients: plan.clients,
        value_bytes: plan.value_bytes,
        read_percent: plan.read_percent,
        keys: plan.keys,
        nodes_used: plan.nodes_used(),
        elapsed,
        requests: latency.count(),
        errors,
        error_samples,
        latency,
    })
}

fn show_counts(progress: &indicatif::ProgressBar, shared: &Shared, started: Instant) {
    let done = shared.completed.load(Ordering::Relaxed);
    let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-3);
    progress.set_message(format!("{done} requests, {rate:.0}/s, {} errors", shared.errors.load(Ordering::Relaxed)));
}

async fn client_loop(mut connection: Connection, index: usize, plan: Plan, shared: Arc<Shared>) -> ClientResult {
    let mut rng = XorShift::new(index as u64);
    let value = value_of(plan.value_bytes, index);
    let mut result = ClientResult { latency: Histogram::default(), errors: 0, error_samples: Vec::new() };
    loop {
        if shared.stopped.load(Ordering::Relaxed) {
            break;
        }
        let measured = shared.measuring.load(Ordering::Relaxed);
        if let (true, Stop::Requests(limit)) = (measured, plan.stop)
            && shared.claimed.fetch_add(1, Ordering::Relaxed) >= limit
        {
            break;
        }
        let key = format!("bench-{:08}", rng.next() % plan.keys);
        let read = rng.next() % 100 < u64::from(plan.read_percent);
        let sent = Instant::now();
        let answer = if read { connection.get(&key).await } else { connection.put(&key, &value).await };
        let latency_ns = u64::try_from(sent.elapsed().as_nanos()).unwrap_or(u64::MAX);
        // A timed run counts only what finished before the end, so ops/s divides by the window it fills.
        if !measured || shared.stopped.load(Ordering::Relaxed) {
            continue;
        }
        match answer {
            Ok(()) => {
                result.latency.record(latency_ns);
                shared.completed.fetch_add(1, Ordering::Relaxed);
            }
            Err(error) => {
                result.errors += 1;
                shared.errors.fetch_add(1, Ordering::Relaxed);
                if result.error_samples.len() < ERROR_SAMPLES_MAX {
                    result.error_samples.push(error);
                }
                tokio::time::sleep(Duration::from_millis(ERROR_PAUSE_MS)).await;
            }
        }
    }
    result
}

/// A value of `bytes` printable bytes, different per client (so no layer can dedupe equal writes).
fn value_of(bytes: usize, client: usize) -> String {
    let alphabet = b"abcdefghijklmnopqrstuvwxyz0123456789";
    (0..bytes).map(|i| char::from(alphabet[(i * 7 + client * 13) % alphabet.len()])).collect()
}

/// xorshift64*: keys and the read/write choice, seeded per client (no global randomness, no dependency).
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> XorShift {
        XorShift(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
