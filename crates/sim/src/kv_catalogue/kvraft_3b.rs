//! 6.824's kvraft Lab 3B tests (snapshots at maxraftstate): instances of GenericTest, the speed test, and the two
//! special ones (InstallSnapshot to a lagging server; snapshot size).
use super::generic::{Generic, check_sizes, generic_test, speed_test};
use crate::kv_tester::{KvTester, KvTesterConfig};
use crate::tester::{ELECTION_TIMEOUT_MS, TesterConfig};

/// 6.824's maxraftstate in the 3B tests, bytes.
pub const MAXRAFTSTATE_BYTES: u64 = 1000;
/// 6.824's bound on a snapshot in TestSnapshotSize3B (one clerk, one key): the service's image must not carry
/// more than its state needs.
pub const SNAPSHOT_SIZE_BYTES_MAX: usize = 500;
/// Puts into the majority partition in TestSnapshotRPC3B: enough to pass maxraftstate several times over.
const SNAPSHOT_RPC_PUTS: usize = 50;
/// Rounds of TestSnapshotSize3B (two puts and two checks each).
const SNAPSHOT_SIZE_ROUNDS: usize = 200;

/// Generic with snapshots, with the given changes from [`Generic::BASE`].
const fn generic(clients: usize, unreliable: bool, crash: bool, partitions: bool) -> Generic {
    Generic {
        part: "3B",
        clients,
        unreliable,
        crash,
        partitions,
        maxraftstate: Some(MAXRAFTSTATE_BYTES),
        ..Generic::BASE
    }
}

fn three_servers(config: &TesterConfig) -> KvTester {
    KvTester::new(&KvTesterConfig {
        seed: config.seed,
        servers: 3,
        unreliable: false,
        maxraftstate: Some(MAXRAFTSTATE_BYTES),
        raft: config.raft,
    })
}

/// A server cut off while the majority snapshots must catch up by InstallSnapshot when the majority needs it.
pub fn snapshot_rpc_3b(config: &TesterConfig) {
    let mut kv = three_servers(config);
    kv.begin("Test: InstallSnapshot RPC (3B)");
    let all = kv.all();
    let ck = kv.make_clerk(&all);
    kv.put(ck, "a", "A");
    kv.check(ck, "a", "A");

    // A bunch of puts into the majority partition.
    kv.partition(&[0, 1], &[2]);
    let ck1 = kv.make_clerk(&[0, 1]);
    for i in 0..SNAPSHOT_RPC_PUTS {
        kv.put(ck1, &i.to_string(), &i.to_string());
    }
    kv.sleep_ms(ELECTION_TIMEOUT_MS);
    kv.put(ck1, "b", "B");

    // The majority has thrown away most of its log entries.
    check_sizes(&kv);

    // Now a group that needs the lagging server, so that it has to catch up.
    let installed_before = kv.cluster.stats.snapshots_installed;
    kv.partition(&[0, 2], &[1]);
    let ck2 = kv.make_clerk(&[0, 2]);
    kv.put(ck2, "c", "C");
    kv.put(ck2, "d", "D");
    kv.check(ck2, "a", "A");
    kv.check(ck2, "b", "B");
    kv.check(ck2, "1", "1");
    kv.check(ck2, "49", "49");
    if kv.cluster.stats.snapshots_installed == installed_before {
        kv.fail("the lagging server caught up without installing a snapshot: the test did not test InstallSnapshot");
    }

    // Now everybody.
    kv.partition(&[0, 1, 2], &[]);
    kv.put(ck, "e", "E");
    kv.check(ck, "c", "C");
    kv.check(ck, "e", "E");
    kv.check(ck, "1", "1");
    kv.end();
}

/// The servers throw away their logs and keep snapshots no bigger than the state needs.
pub fn snapshot_size_3b(config: &TesterConfig) {
    let mut kv = three_servers(config);
    kv.begin("Test: snapshot size is reasonable (3B)");
    let all = kv.all();
    let ck = kv.make_clerk(&all);
    for _ in 0..SNAPSHOT_SIZE_ROUNDS {
        kv.put(ck, "x", "0");
        kv.check(ck, "x", "0");
        kv.put(ck, "x", "1");
        kv.check(ck, "x", "1");
    }
    // The servers have thrown away most of their log entries.
    check_sizes(&kv);
    // The snapshots are not unreasonably large.
    let size = kv.snapshot_size();
    if size == 0 {
        kv.fail("no server took a snapshot: the size check would check nothing");
    }
    if size > SNAPSHOT_SIZE_BYTES_MAX {
        kv.fail(&format!("snapshot too large ({size} > {SNAPSHOT_SIZE_BYTES_MAX})"));
    }
    println!("  snapshot size: {size} bytes (bound {SNAPSHOT_SIZE_BYTES_MAX}), log size {} bytes", kv.log_size());
    kv.end();
}

pub fn speed_3b(config: &TesterConfig) {
    speed_test(config, "3B", Some(MAXRAFTSTATE_BYTES));
}

pub fn snapshot_recover_3b(config: &TesterConfig) {
    generic_test(config, generic(1, false, true, false));
}

pub fn snapshot_recover_many_clients_3b(config: &TesterConfig) {
    generic_test(config, generic(20, false, true, false));
}

pub fn snapshot_unreliable_3b(config: &TesterConfig) {
    generic_test(config, generic(5, true, false, false));
}

pub fn snapshot_unreliable_recover_3b(config: &TesterConfig) {
    generic_test(config, generic(5, true, true, false));
}

pub fn snapshot_unreliable_recover_concurrent_partition_3b(config: &TesterConfig) {
    generic_test(config, generic(5, true, true, true));
}

pub fn snapshot_unreliable_recover_concurrent_partition_linearizable_3b(config: &TesterConfig) {
    generic_test(config, Generic { servers: 7, random_keys: true, ..generic(15, true, true, true) });
}
