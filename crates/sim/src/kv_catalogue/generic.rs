//! 6.824's `GenericTest` and `GenericTestSpeed`, and the checks they share (`checkClntAppends`,
//! `checkConcurrentAppends`). Most of the kvraft catalogue is one call of [`generic_test`] with its parameters.
use std::cell::Cell;
use std::rc::Rc;

use keel_kv::{Op, Reply};
use keel_raft::Rng;

use crate::kv_tester::{ClerkId, ClientLoop, KvTester, KvTesterConfig};
use crate::tester::{ELECTION_TIMEOUT_MS, TesterConfig};

/// GenericTest runs this many rounds of clients (then faults, then checks).
pub const ROUNDS: usize = 3;
/// Each round's clients run this long (after the partitioner starts, in the partition tests).
pub const CLIENTS_RUN_MS: u64 = 5_000;
/// In the partition tests, the partitioner starts this long after the clients.
pub const PARTITIONER_DELAY_MS: u64 = 1_000;
/// The partitioner re-splits the servers every election timeout plus up to this much (6.824: rand(0..200) ms).
pub const PARTITION_JITTER_MS: u64 = 200;
/// 6.824's bound on the log after a round: `LogSize() <= 8 * maxraftstate` ("logs were not trimmed").
pub const LOG_SIZE_FACTOR_MAX: u64 = 8;
/// Per mille of a generic client's operations that are appends (6.824: `rand % 1000 < 500`).
const APPEND_PER_MILLE: u64 = 500;
/// With random keys, per mille of the remaining operations that are puts (6.824: `rand % 1000 < 100`).
const PUT_PER_MILLE: u64 = 100;

/// GenericTest's parameters.
#[derive(Clone, Copy, Debug)]
pub struct Generic {
    /// "3A" or "3B", for the title.
    pub part: &'static str,
    pub clients: usize,
    pub servers: usize,
    pub unreliable: bool,
    /// Restart every server at the end of each round.
    pub crash: bool,
    /// Re-split the servers into two random groups about every second while the clients run.
    pub partitions: bool,
    /// `None` is 6.824's -1: no snapshots (and the check that there are none).
    pub maxraftstate: Option<u64>,
    /// Clients use random keys (and some puts), so only the linearizability check can tell right from wrong.
    pub random_keys: bool,
}

impl Generic {
    /// One client, five servers, no faults, no snapshots: the base the catalogue's tests vary.
    pub const BASE: Generic = Generic {
        part: "3A",
        clients: 1,
        servers: 5,
        unreliable: false,
        crash: false,
        partitions: false,
        maxraftstate: None,
        random_keys: false,
    };

    /// 6.824's test title.
    fn title(&self) -> String {
        let mut title = String::from("Test: ");
        if self.unreliable {
            title += "unreliable net, ";
        }
        if self.crash {
            title += "restarts, ";
        }
        if self.partitions {
            title += "partitions, ";
        }
        if self.maxraftstate.is_some() {
            title += "snapshots, ";
        }
        if self.random_keys {
            title += "random keys, ";
        }
        title += if self.clients > 1 { "many clients" } else { "one client" };
        format!("{title} ({})", self.part)
    }
}

/// What a generic client's last operation was, so its reply can be accounted for.
enum Last {
    Nothing,
    InitialPut,
    Append(String),
    Put,
    Get,
}

/// One client goroutine of GenericTest: appends (counted, and predicted into `expected`), gets (checked against
/// the prediction without random keys) and, with random keys, puts.
struct GenericClient {
    cli: usize,
    clients: usize,
    random_keys: bool,
    /// Appends and puts done (6.824's `j`), shared with the test for `checkClntAppends`.
    done: Rc<Cell<usize>>,
    /// The value this client's key must have (without random keys: only this client writes it).
    expected: String,
    last: Last,
}

impl ClientLoop for GenericClient {
    fn next(&mut self, rng: &mut Rng, reply: Option<&Reply>, stop: bool) -> Result<Option<Op>, String> {
        match std::mem::replace(&mut self.last, Last::Nothing) {
            Last::Nothing | Last::InitialPut | Last::Put => {}
            Last::Append(value) => {
                if !self.random_keys {
                    self.expected += &value;
                }
            }
            Last::Get => {
                let got = value_of(reply)?;
                if !self.random_keys && got != self.expected {
                    return Err(format!("get wrong value, key {}, wanted:\n{}\n, got\n{got}", self.cli, self.expected));
                }
            }
        }
        if reply.is_none() && !self.random_keys {
            // The first operation, whatever `stop` says: the key starts empty.
            self.last = Last::InitialPut;
            return Ok(Some(Op::Put { key: self.cli.to_string(), value: String::new() }));
        }
        if stop {
            return Ok(None);
        }
        let key = if self.random_keys { rng.range(0, self.clients as u64).to_string() } else { self.cli.to_string() };
        let value = format!("x {} {} y", self.cli, self.done.get());
        if rng.range(0, 1000) < APPEND_PER_MILLE {
            self.done.set(self.done.get() + 1);
            self.last = Last::Append(value.clone());
            Ok(Some(Op::Append { key, value }))
        } else if self.random_keys && rng.range(0, 1000) < PUT_PER_MILLE {
            self.done.set(self.done.get() + 1);
            self.last = Last::Put;
            Ok(Some(Op::Put { key, value }))
        } else {
            self.last = Last::Get;
            Ok(Some(Op::Get { key }))
        }
    }
}

/// A get's value as 6.824's clerk returns it ("" for a missing key).
pub fn value_of(reply: Option<&Reply>) -> Result<String, String> {
    match reply {
        Some(Reply::Value { value, .. }) => Ok(value.clone()),
        Some(Reply::NotFound) => Ok(String::new()),
        other => Err(format!("a get got {other:?}")),
    }
}

/// 6.824's checkClntAppends: client `cli`'s appends 0..count each appear in `value` exactly once, in order.
pub fn check_clnt_appends(cli: usize, value: &str, count: usize) -> Result<(), String> {
    let mut last_offset = None;
    for j in 0..count {
        let wanted = format!("x {cli} {j} y");
        let Some(offset) = value.find(&wanted) else {
            return Err(format!("{cli} missing element {wanted:?} in Append result {value:?}"));
        };
        if value.rfind(&wanted) != Some(offset) {
            return Err(format!("duplicate element {wanted:?} in Append result"));
        }
        if last_offset.is_some_and(|last| offset <= last) {
            return Err(format!("wrong order for element {wanted:?} in Append result"));
        }
        last_offset = Some(offset);
    }
    Ok(())
}

/// 6.824's checkConcurrentAppends: for every client i, its appends 0..counts[i] appear exactly once, in order.
pub fn check_concurrent_appends(value: &str, counts: &[usize]) -> Result<(), String> {
    for (cli, &count) in counts.iter().enumerate() {
        check_clnt_appends(cli, value, count)?;
    }
    Ok(())
}

/// What a run did, for the determinism test and reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KvRunSummary {
    pub trace_hash: u64,
    pub trace_events: u64,
    pub ops_completed: u64,
    pub history_len: usize,
}

/// 6.824's GenericTest: rounds of concurrent clients under the chosen faults; after each round every client's
/// appends are checked (exactly once, in order) and the log size bounded; the whole history is checked for
/// linearizability at the end.
pub fn generic_test(config: &TesterConfig, g: Generic) {
    generic_test_summary(config, g);
}

/// [`generic_test`], returning what the run did.
pub fn generic_test_summary(config: &TesterConfig, g: Generic) -> KvRunSummary {
    let mut kv = KvTester::new(&KvTesterConfig {
        seed: config.seed,
        servers: g.servers,
        unreliable: g.unreliable,
        maxraftstate: g.maxraftstate,
        raft: config.raft,
    });
    kv.begin(&g.title());
    let all = kv.all();
    let ck = kv.make_clerk(&all);
    for _round in 0..ROUNDS {
        kv.resume_clients();
        let mut clients: Vec<(ClerkId, Rc<Cell<usize>>)> = Vec::new();
        for cli in 0..g.clients {
            let clerk = kv.make_clerk(&all);
            let done = Rc::new(Cell::new(0));
            let client = GenericClient {
                cli,
                clients: g.clients,
                random_keys: g.random_keys,
                done: Rc::clone(&done),
                expected: String::new(),
                last: Last::Nothing,
            };
            kv.spawn_client(clerk, Box::new(client));
            clients.push((clerk, done));
        }
        if g.partitions {
            kv.sleep_ms(PARTITIONER_DELAY_MS);
            run_partitioner(&mut kv, CLIENTS_RUN_MS);
            kv.connect_all();
            kv.sleep_ms(ELECTION_TIMEOUT_MS);
        } else {
            kv.sleep_ms(CLIENTS_RUN_MS);
            kv.stop_clients();
        }
        if g.crash {
            for i in 0..g.servers {
                kv.shutdown_server(i);
            }
            // 6.824 waits here because its shutdown is not instantaneous; ours is, and the wait is kept so the
            // clients' last operations keep retrying against a cluster that is entirely down.
            kv.sleep_ms(ELECTION_TIMEOUT_MS);
            for i in 0..g.servers {
                kv.start_server(i);
            }
            kv.connect_all();
        }
        let clerks: Vec<ClerkId> = clients.iter().map(|(clerk, _)| *clerk).collect();
        kv.join_clients(&clerks);
        for (cli, (_, done)) in clients.iter().enumerate() {
            let value = kv.get(ck, &cli.to_string());
            if !g.random_keys
                && let Err(e) = check_clnt_appends(cli, &value, done.get())
            {
                kv.fail(&e);
            }
        }
        check_sizes(&kv);
    }
    kv.end();
    KvRunSummary {
        trace_hash: kv.cluster.trace.hash(),
        trace_events: kv.cluster.trace.events(),
        ops_completed: kv.ops_completed,
        history_len: kv.history.len(),
    }
}

/// GenericTest's partitioner for `run_ms`: a random split into two groups, then an election timeout plus up to
/// 200 ms, again and again. The clients are told to stop when `run_ms` is over; the partitioner finishes its
/// last sleep (6.824's main line waits for it).
fn run_partitioner(kv: &mut KvTester, run_ms: u64) {
    let clients_end_ms = kv.now_ms() + run_ms;
    loop {
        let (mut p1, mut p2) = (Vec::new(), Vec::new());
        for i in 0..kv.servers() {
            if kv.rng().range(0, 2) == 0 { p1.push(i) } else { p2.push(i) }
        }
        kv.partition(&p1, &p2);
        let jitter_ms = kv.rng().range(0, PARTITION_JITTER_MS);
        let wake_ms = kv.now_ms() + ELECTION_TIMEOUT_MS + jitter_ms;
        if wake_ms >= clients_end_ms {
            kv.sleep_ms(clients_end_ms - kv.now_ms());
            kv.stop_clients();
            kv.sleep_ms(wake_ms - kv.now_ms());
            return;
        }
        kv.sleep_ms(wake_ms - kv.now_ms());
    }
}

/// After a round: with snapshots, the log is trimmed (`LogSize <= 8 * maxraftstate`); without, there is no
/// snapshot at all.
pub fn check_sizes(kv: &KvTester) {
    match kv.maxraftstate() {
        Some(maxraftstate) => {
            let size = kv.log_size() as u64;
            if size > LOG_SIZE_FACTOR_MAX * maxraftstate {
                kv.fail(&format!("logs were not trimmed ({size} > {LOG_SIZE_FACTOR_MAX}*{maxraftstate})"));
            }
        }
        None => {
            let size = kv.snapshot_size();
            if size > 0 {
                kv.fail(&format!("snapshot too large ({size}), should not be used when maxraftstate = -1"));
            }
        }
    }
}

/// Operations in the speed tests.
pub const SPEED_OPS: u64 = 1000;
/// 6.824's heartbeat interval assumption in the speed tests: "ops must commit better than 1 per heartbeat".
pub const SPEED_HEARTBEAT_INTERVAL_MS: u64 = 100;
/// ... at least this many operations per heartbeat interval: 33.3 ms per op.
pub const SPEED_OPS_PER_INTERVAL: u64 = 3;

/// 6.824's GenericTestSpeed: one clerk, three servers; after one get (a leader is ready), 1,000 sequential
/// appends must take no more than 1000 * 100 ms / 3 of virtual time; all must be present, in order. Returns the
/// virtual milliseconds per operation.
pub fn speed_test(config: &TesterConfig, part: &str, maxraftstate: Option<u64>) -> f64 {
    let mut kv = KvTester::new(&KvTesterConfig {
        seed: config.seed,
        servers: 3,
        unreliable: false,
        maxraftstate,
        raft: config.raft,
    });
    kv.begin(&format!("Test: ops complete fast enough ({part})"));
    let all = kv.all();
    let ck = kv.make_clerk(&all);
    // Wait until the first op completes, so a leader is elected and the servers are ready for clients.
    kv.get(ck, "x");
    let start_ms = kv.now_ms();
    for i in 0..SPEED_OPS {
        kv.append(ck, "x", &format!("x 0 {i} y"));
    }
    let duration_ms = kv.now_ms() - start_ms;
    let value = kv.get(ck, "x");
    if let Err(e) = check_clnt_appends(0, &value, SPEED_OPS as usize) {
        kv.fail(&e);
    }
    check_sizes(&kv);
    let per_op_ms = duration_ms as f64 / SPEED_OPS as f64;
    // Compared in integers: duration * ops_per_interval <= ops * interval, i.e. duration <= 1000 * 100 / 3 ms.
    if duration_ms * SPEED_OPS_PER_INTERVAL > SPEED_OPS * SPEED_HEARTBEAT_INTERVAL_MS {
        kv.fail(&format!(
            "operations completed too slowly {per_op_ms:.2} ms/op > {:.2} ms/op",
            SPEED_HEARTBEAT_INTERVAL_MS as f64 / SPEED_OPS_PER_INTERVAL as f64
        ));
    }
    println!(
        "  speed ({part}): {SPEED_OPS} appends in {duration_ms} virtual ms = {per_op_ms:.2} ms/op (bound {:.2} ms/op)",
        SPEED_HEARTBEAT_INTERVAL_MS as f64 / SPEED_OPS_PER_INTERVAL as f64
    );
    kv.end();
    per_op_ms
}
