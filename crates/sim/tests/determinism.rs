//! The same seed gives the identical run, event for event: the basis of `KEEL_SEED=<n>` replay.
use keel_sim::Tester;
use keel_sim::tester::u64_command;

/// A short run that exercises every source of nondeterminism the simulator controls: elections, unreliable
/// links, long reordering, crashes and restarts, and client proposals.
fn faulty_run(seed: u64) -> (u64, u64, u64) {
    let mut t = Tester::new(&keel_sim::tester::TesterConfig::figure_2(seed), 5, true, false);
    t.set_long_reordering(true);
    let mut victim = 0;
    for round in 0..40u64 {
        for i in 0..5 {
            t.start(i, u64_command(round * 10 + i as u64));
        }
        if round % 4 == 0 {
            victim = t.rand_range(0, 5) as usize;
        }
        match round % 4 {
            0 => t.crash1(victim),
            1 => {
                t.start1(victim);
                t.connect(victim);
            }
            2 => t.disconnect(victim),
            _ => t.connect(victim),
        }
        let pause_ms = t.rand_range(0, 300);
        t.sleep_ms(pause_ms);
    }
    (t.cluster.trace.hash(), t.cluster.trace.events(), t.cluster.checker.max_index)
}

#[test]
fn same_seed_same_trace_different_seed_different_trace() {
    let first = faulty_run(7);
    let second = faulty_run(7);
    assert_eq!(first, second, "seed 7 replayed differently");
    assert!(first.1 > 200, "the run should be substantial, got {} hashed events", first.1);
    assert!(first.2 > 0, "something should commit");
    let other = faulty_run(8);
    assert_ne!(first.0, other.0, "different seeds should give different runs");
}
