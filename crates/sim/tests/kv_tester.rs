//! The KV tester itself: the same seed gives the same run, and its checks catch a broken server (so the kvraft
//! catalogue's passes mean something).
use std::panic::{AssertUnwindSafe, catch_unwind};

use keel_kv::Op;
use keel_sim::kv_catalogue::generic::{Generic, generic_test_summary};
use keel_sim::kv_tester::{FrontEndBug, KvTester, KvTesterConfig};
use keel_sim::seeds::panic_message;
use keel_sim::tester::TesterConfig;

/// Every fault GenericTest has: unreliable links, partitions, restarts, snapshots, random keys.
const ALL_FAULTS: Generic = Generic {
    part: "3B",
    clients: 4,
    servers: 5,
    unreliable: true,
    crash: true,
    partitions: true,
    maxraftstate: Some(1000),
    random_keys: true,
};

#[test]
fn same_seed_same_kv_run_different_seed_different_run() {
    let first = generic_test_summary(&TesterConfig::figure_2(7), ALL_FAULTS);
    let second = generic_test_summary(&TesterConfig::figure_2(7), ALL_FAULTS);
    assert_eq!(first, second, "seed 7 replayed differently");
    assert!(first.ops_completed > 50, "the run should be substantial: {first:?}");
    let other = generic_test_summary(&TesterConfig::figure_2(8), ALL_FAULTS);
    assert_ne!(first.trace_hash, other.trace_hash, "different seeds should give different runs");
}

/// A deposed leader in a minority that answers gets from its own state serves a stale value after the majority
/// moved on: the linearizability check must fail, with the offending window and the replay command.
#[test]
fn stale_local_reads_are_caught() {
    let run = || {
        let mut kv = KvTester::new(&KvTesterConfig {
            seed: 3,
            servers: 5,
            unreliable: false,
            maxraftstate: None,
            raft: keel_sim::RaftOptions::FIGURE_2,
        });
        kv.set_bug(FrontEndBug::LocalReads);
        kv.begin("stale local reads");
        let all = kv.all();
        let ck = kv.make_clerk(&all);
        kv.put(ck, "k", "1");
        let Some(old_leader) = kv.leader() else { panic!("a put completed, so someone leads") };
        let majority: Vec<usize> = all.iter().copied().filter(|&i| i != old_leader).collect();
        kv.partition(&majority, &[old_leader]);
        let ck_majority = kv.make_clerk(&majority);
        let ck_old = kv.make_clerk(&[old_leader]);
        kv.put(ck_majority, "k", "2");
        let stale = kv.op(ck_old, Op::Get { key: "k".into() });
        kv.check_linearizable();
        stale
    };
    let panic = match catch_unwind(AssertUnwindSafe(run)) {
        Ok(stale) => panic!("the check passed a history with a stale read ({stale:?})"),
        Err(panic) => panic_message(panic.as_ref()),
    };
    assert!(panic.contains("not linearizable"), "{panic}");
    assert!(panic.contains("<- no linearization once this returns"), "the window is shown: {panic}");
    assert!(panic.contains("replay: KEEL_SEED=3"), "the replay command is shown: {panic}");
}
