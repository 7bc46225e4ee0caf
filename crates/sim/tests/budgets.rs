//! No run can hang the test suite: a run that produces more events per virtual second than its budget fails with
//! its seed and the message counts by kind, and a test that selected no seed fails instead of passing.
use keel_sim::Tester;
use keel_sim::seeds::selected_seeds;
use keel_sim::tester::u64_command;

/// Property: a message storm is reported, never waited out. A healthy 5-node cluster under client load produces
/// a few thousand events per virtual second; with the budget set below that, the run must stop at the first
/// virtual second that exceeds it and say what the events were.
#[test]
fn a_run_over_its_event_budget_fails_with_the_message_counts() {
    let outcome = std::panic::catch_unwind(|| {
        let mut t = Tester::new(&keel_sim::tester::TesterConfig::figure_2(11), 5, false, false);
        t.cluster.set_event_budget(600);
        for k in 0..200 {
            for i in 0..5 {
                t.start(i, u64_command(k));
            }
            t.sleep_ms(10);
        }
    });
    let Err(panic) = outcome else { panic!("a run far over its event budget finished without a failure") };
    let report = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(report.contains("event budget: more than 600 events"), "unexpected report: {report}");
    assert!(report.contains("ticks") && report.contains("AppendEntries"), "no counts by kind: {report}");
    assert!(report.contains("KEEL_SEED=11"), "no replay command: {report}");
}

/// Property: a test that ran no seed is not a pass (`KEEL_SEEDS=0`).
#[test]
fn selecting_no_seed_fails() {
    // This binary's only test that reads the seed variables, so setting one cannot race another test.
    // SAFETY: no other thread of this test binary reads or writes the environment concurrently.
    unsafe { std::env::set_var("KEEL_SEEDS", "0") };
    let outcome = std::panic::catch_unwind(|| selected_seeds(&[1, 2, 3], 5));
    unsafe { std::env::remove_var("KEEL_SEEDS") };
    assert!(outcome.is_err(), "KEEL_SEEDS=0 selected no seed and did not fail");
}
