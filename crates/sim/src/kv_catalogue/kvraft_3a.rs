//! 6.824's kvraft Lab 3A tests (no snapshots): instances of GenericTest, the speed test, and the two special ones
//! (concurrent appends to one key; one partition).
use keel_kv::{Op, Reply};
use keel_raft::Rng;

use super::generic::{Generic, check_concurrent_appends, generic_test, speed_test};
use crate::kv_tester::{ClientLoop, KvTester, KvTesterConfig};
use crate::tester::{ELECTION_TIMEOUT_MS, TesterConfig};

/// Generic with the given changes from [`Generic::BASE`].
const fn generic(clients: usize, unreliable: bool, crash: bool, partitions: bool) -> Generic {
    Generic { clients, unreliable, crash, partitions, ..Generic::BASE }
}

pub fn basic_3a(config: &TesterConfig) {
    generic_test(config, generic(1, false, false, false));
}

pub fn speed_3a(config: &TesterConfig) {
    speed_test(config, "3A", None);
}

pub fn concurrent_3a(config: &TesterConfig) {
    generic_test(config, generic(5, false, false, false));
}

pub fn unreliable_3a(config: &TesterConfig) {
    generic_test(config, generic(5, true, false, false));
}

/// Clients in the one-key test.
const ONE_KEY_CLIENTS: usize = 5;
/// Appends each of them makes.
const ONE_KEY_APPENDS: usize = 10;

/// One client of the one-key test: `ONE_KEY_APPENDS` appends to "k".
struct OneKeyClient {
    me: usize,
    appended: usize,
}

impl ClientLoop for OneKeyClient {
    fn next(&mut self, _rng: &mut Rng, reply: Option<&Reply>, _stop: bool) -> Result<Option<Op>, String> {
        match reply {
            None => {}
            Some(Reply::Written { .. }) => self.appended += 1,
            Some(other) => return Err(format!("an append got {other:?}")),
        }
        if self.appended == ONE_KEY_APPENDS {
            return Ok(None);
        }
        Ok(Some(Op::Append { key: "k".into(), value: format!("x {} {} y", self.me, self.appended) }))
    }
}

/// Five clients append ten values each to the same key over an unreliable network: every append appears exactly
/// once, and each client's in order.
pub fn unreliable_one_key_3a(config: &TesterConfig) {
    let mut kv = KvTester::new(&KvTesterConfig {
        seed: config.seed,
        servers: 3,
        unreliable: true,
        maxraftstate: None,
        raft: config.raft,
    });
    kv.begin("Test: concurrent append to same key, unreliable (3A)");
    let all = kv.all();
    let ck = kv.make_clerk(&all);
    kv.put(ck, "k", "");
    let clerks: Vec<_> = (0..ONE_KEY_CLIENTS)
        .map(|me| {
            let clerk = kv.make_clerk(&all);
            kv.spawn_client(clerk, Box::new(OneKeyClient { me, appended: 0 }));
            clerk
        })
        .collect();
    kv.join_clients(&clerks);
    let value = kv.get(ck, "k");
    if let Err(e) = check_concurrent_appends(&value, &[ONE_KEY_APPENDS; ONE_KEY_CLIENTS]) {
        kv.fail(&e);
    }
    kv.end();
}

/// How long the minority's operations must stay unfinished.
const MINORITY_STALL_MS: u64 = 1_000;
/// After the heal (and an election timeout), the minority's put must finish within this long.
const HEAL_COMPLETION_MS: u64 = 3_000;

/// A majority without the leader makes progress; a minority with the old leader does not; after the heal the
/// minority's put completes.
pub fn one_partition_3a(config: &TesterConfig) {
    let mut kv = KvTester::new(&KvTesterConfig {
        seed: config.seed,
        servers: 5,
        unreliable: false,
        maxraftstate: None,
        raft: config.raft,
    });
    kv.begin("Test: progress in majority (3A)");
    let all = kv.all();
    let ck = kv.make_clerk(&all);
    kv.put(ck, "1", "13");
    let (p1, p2) = kv.make_partition();
    kv.partition(&p1, &p2);
    let ckp1 = kv.make_clerk(&p1); // connect ckp1 to p1
    let ckp2a = kv.make_clerk(&p2); // connect ckp2a to p2
    let ckp2b = kv.make_clerk(&p2); // connect ckp2b to p2
    kv.put(ckp1, "1", "14");
    kv.check(ckp1, "1", "14");
    kv.end();

    kv.begin("Test: no progress in minority (3A)");
    kv.start(ckp2a, Op::Put { key: "1".into(), value: "15".into() });
    kv.start(ckp2b, Op::Get { key: "1".into() });
    kv.sleep_ms(MINORITY_STALL_MS);
    if kv.finished(ckp2a).is_some() {
        kv.fail("Put in minority completed");
    }
    if kv.finished(ckp2b).is_some() {
        kv.fail("Get in minority completed");
    }
    kv.check(ckp1, "1", "14");
    kv.put(ckp1, "1", "16");
    kv.check(ckp1, "1", "16");
    kv.end();

    kv.begin("Test: completion after heal (3A)");
    kv.connect_all();
    kv.connect_client(ckp2a, &all);
    kv.connect_client(ckp2b, &all);
    kv.sleep_ms(ELECTION_TIMEOUT_MS);
    if kv.wait_op(ckp2a, HEAL_COMPLETION_MS).is_none() {
        kv.fail("Put did not complete");
    }
    // The minority's get is only looked at, not waited for (as in 6.824); the history checks whatever it read.
    kv.check(ck, "1", "15");
    kv.end();
}

pub fn many_partitions_one_client_3a(config: &TesterConfig) {
    generic_test(config, generic(1, false, false, true));
}

pub fn many_partitions_many_clients_3a(config: &TesterConfig) {
    generic_test(config, generic(5, false, false, true));
}

pub fn persist_one_client_3a(config: &TesterConfig) {
    generic_test(config, generic(1, false, true, false));
}

pub fn persist_concurrent_3a(config: &TesterConfig) {
    generic_test(config, generic(5, false, true, false));
}

pub fn persist_concurrent_unreliable_3a(config: &TesterConfig) {
    generic_test(config, generic(5, true, true, false));
}

pub fn persist_partition_3a(config: &TesterConfig) {
    generic_test(config, generic(5, false, true, true));
}

pub fn persist_partition_unreliable_3a(config: &TesterConfig) {
    generic_test(config, generic(5, true, true, true));
}

pub fn persist_partition_unreliable_linearizable_3a(config: &TesterConfig) {
    generic_test(config, Generic { clients: 15, servers: 7, random_keys: true, ..generic(15, true, true, true) });
}
