//! The acceptance test of `keel kv`: real processes, real clients (`keel-kv-client`), and kill -9 of the leader
//! in the middle of the load. Every operation's call and return are recorded; the history, final reads of every
//! key included, must be linearizable: so every acknowledged write is still there, once, and no read saw a value
//! that was never written or was already overwritten.
mod kv_support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keel_kv_client::{Client, ClientOptions};
use keel_lincheck::{KvInput, KvModel, KvOutput, Operation, SearchLimits, Verdict, check};
use kv_support::Cluster;

const CLIENTS: u64 = 5;
const KEYS: u64 = 4;

type History = Arc<Mutex<Vec<Operation<KvInput, KvOutput>>>>;

/// A tiny deterministic generator per client (the test's randomness need not be secure or shared).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

async fn client_load(id: u64, endpoints: Vec<String>, started: Instant, stop_at: Instant, history: History) -> u64 {
    let options = ClientOptions { deadline_ms: 8_000, ..ClientOptions::default() };
    let mut client = match Client::new(endpoints, options) {
        Ok(client) => client,
        Err(e) => panic!("client {id}: {e}"),
    };
    let mut rng = Rng(id);
    let mut acknowledged = 0;
    let mut n = 0;
    while Instant::now() < stop_at {
        n += 1;
        let key = format!("key-{}", rng.below(KEYS));
        let value = format!("[{id}.{n}]");
        let input = match rng.below(3) {
            0 => KvInput::Get { key: key.clone() },
            1 => KvInput::Put { key: key.clone(), value: value.clone() },
            _ => KvInput::Append { key: key.clone(), value: value.clone() },
        };
        let call_ns = started.elapsed().as_nanos() as u64;
        let result = match &input {
            KvInput::Get { .. } => client.get(&key).await.map(|v| KvOutput::Value(v.map(|v| v.value))),
            KvInput::Put { .. } => client.put(&key, &value).await.map(|_| KvOutput::Written),
            KvInput::Append { .. } => client.append(&key, &value).await.map(|_| KvOutput::Written),
            KvInput::Delete { .. } => unreachable!("the load sends no deletes"),
        };
        let return_ns = started.elapsed().as_nanos() as u64;
        let operation = match result {
            Ok(output) => {
                acknowledged += 1;
                Operation::returned(id, call_ns, return_ns, input, output)
            }
            // It may have applied, at any time after its call, or never.
            Err(e) if e.is_outcome_unknown() => Operation::timed_out(id, call_ns, input),
            // Definitely not applied (or a read): it constrains nothing.
            Err(_) => continue,
        };
        history.lock().expect("history").push(operation);
    }
    acknowledged
}

#[test]
fn kill_9_of_the_leader_under_load_loses_no_acknowledged_write_and_stays_linearizable() {
    let mut cluster = Cluster::start(3);
    let endpoints: Vec<String> = cluster.nodes.iter().map(|n| format!("http://{}", n.http)).collect();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let history: History = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let stop_at = started + Duration::from_secs(5);
    let clients: Vec<_> = (1..=CLIENTS)
        .map(|id| runtime.spawn(client_load(id, endpoints.clone(), started, stop_at, history.clone())))
        .collect();

    std::thread::sleep(Duration::from_millis(1_500));
    let leader = cluster.wait_for_leader(Duration::from_secs(10));
    cluster.kill9(leader);
    let killed_at = Instant::now();
    let new_leader = cluster.wait_for_leader(Duration::from_secs(10));
    let without_leader = killed_at.elapsed();
    assert_ne!(new_leader, leader);
    std::thread::sleep(Duration::from_millis(1_500));
    cluster.start_node(leader); // it rejoins with its data while the load goes on

    let acknowledged: u64 = clients.into_iter().map(|c| runtime.block_on(c).expect("client task")).sum();
    // Final reads of every key, through the restarted node.
    runtime.block_on(async {
        let mut reader = Client::new(vec![format!("http://{}", cluster.node(leader).http)], ClientOptions::default())
            .expect("reader");
        for k in 0..KEYS {
            let key = format!("key-{k}");
            let call_ns = started.elapsed().as_nanos() as u64;
            let value = reader.get(&key).await.unwrap_or_else(|e| panic!("final read of {key}: {e}"));
            let return_ns = started.elapsed().as_nanos() as u64;
            history.lock().expect("history").push(Operation::returned(
                0,
                call_ns,
                return_ns,
                KvInput::Get { key },
                KvOutput::Value(value.map(|v| v.value)),
            ));
        }
    });
    let history = history.lock().expect("history").clone();
    eprintln!(
        "{} operations ({acknowledged} acknowledged); leader {leader} killed, node {new_leader} led after {without_leader:?}",
        history.len()
    );
    assert!(acknowledged > 50, "the load barely ran: {acknowledged} operations acknowledged\n{}", cluster.logs());
    match check(&KvModel, &history, SearchLimits::default()).expect("a well-formed history") {
        Verdict::Linearizable => {}
        Verdict::NotLinearizable(report) => panic!("not linearizable: {report:?}\n{}", cluster.logs()),
        Verdict::Unknown { keys } => panic!("the checker could not decide keys {keys:?}; shorten the load"),
    }
}
