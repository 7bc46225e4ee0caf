//! Three replicas in one process, in-memory storage, channels for a network, empty commands: how fast the
//! runtime and the Raft core go with no disk and no sockets (the shape of openraft's `benchmarks/minimal`).
//!
//! `cargo run --release -p keel-runtime --example in_process_bench -- [--client-threads N] [seconds] [clients...]`
//! (default: 3 s each at 1, 64, 256 and 1024 concurrent clients, each with one request outstanding).
//!
//! The clients are tasks on a tokio runtime of their own, as in openraft's benchmark, with one worker thread
//! by default: the replicas have a thread each, and on a 2-core machine a second client worker only adds
//! wake-ups (4 paired runs: 1 client 22-25k ops/s with two workers, 36-46k with one; 1,024 clients 1.02-1.09 M
//! with two, 1.03-1.51 M with one). `--client-threads 2` measures the other way.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use keel_raft::{Config, Index, NodeId, Role};
use keel_replica::{Replica, Service, SnapshotPolicy};
use keel_runtime::{InProcessNetwork, ReplicaHandle, ReplicaMetrics, RuntimeOptions};
use keel_storage::MemStorage;

/// Worker threads of the clients' runtime (see the module doc).
const CLIENT_THREADS_DEFAULT: usize = 1;

/// Applies nothing; answers nothing.
struct Noop;

impl Service for Noop {
    type Output = ();
    fn apply(&mut self, _index: Index, _command: &[u8]) {}
    fn snapshot(&self) -> Vec<u8> {
        Vec::new()
    }
    fn restore(&mut self, _index: Index, _snapshot: &[u8]) -> Result<(), String> {
        Ok(())
    }
}

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut client_threads = CLIENT_THREADS_DEFAULT;
    if let Some(at) = args.iter().position(|a| a == "--client-threads") {
        let value = args.get(at + 1).and_then(|v| v.parse().ok()).filter(|n| *n > 0);
        let Some(value) = value else {
            eprintln!("--client-threads takes a number of threads (1 or more)");
            std::process::exit(2);
        };
        client_threads = value;
        args.drain(at..at + 2);
    }
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(3);
    let mut clients: Vec<usize> = args.iter().skip(1).filter_map(|s| s.parse().ok()).collect();
    if clients.is_empty() {
        clients = vec![1, 64, 256, 1024];
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(client_threads)
        .enable_all()
        .build()
        .expect("runtime");
    println!("clients on {client_threads} thread(s)");
    println!("{:>8} {:>12} {:>10} {:>10} {:>10}", "clients", "ops/s", "p50 µs", "p99 µs", "max µs");
    for &n in &clients {
        runtime.block_on(run(n, Duration::from_secs(seconds)));
    }
}

async fn run(clients: usize, duration: Duration) {
    let network = InProcessNetwork::new();
    let members: Vec<NodeId> = vec![1, 2, 3];
    let mut handles = Vec::new();
    for &id in &members {
        let mut config = Config::new(id, members.clone(), id);
        config.pre_vote = true;
        config.check_quorum = true;
        let replica =
            Replica::open(config, Noop, MemStorage::default(), SnapshotPolicy::EveryEntries(100_000)).expect("open");
        let options = RuntimeOptions { tick_interval_ms: 10, ..RuntimeOptions::default() };
        let handle = Arc::new(
            ReplicaHandle::spawn(replica, network.sender(id), options, ReplicaMetrics::default()).expect("spawn"),
        );
        network.attach(handle.clone());
        handles.push(handle);
    }
    let leader = loop {
        if let Some(h) = handles.iter().find(|h| h.status().role == Role::Leader) {
            break h.clone();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (leader, stop, done) = (leader.clone(), stop.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies_us = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let started = Instant::now();
                let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
                if leader.execute(Vec::new(), deadline).await.is_ok() {
                    latencies_us.push(started.elapsed().as_micros() as u64);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies_us
        }));
    }
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let ops = done.load(Ordering::Relaxed);
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies: Vec<u64> = Vec::new();
    for task in tasks {
        latencies.extend(task.await.expect("client"));
    }
    latencies.sort_unstable();
    let at = |q: f64| latencies.get(((latencies.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0);
    println!("{clients:>8} {:>12.0} {:>10} {:>10} {:>10}", ops as f64 / elapsed, at(0.5), at(0.99), at(1.0));
    for handle in &handles {
        handle.shutdown();
    }
}
