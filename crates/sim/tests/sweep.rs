//! The randomized fault sweep (see `keel_sim::sweep`). CI runs a few hundred seeds; `KEEL_SEEDS=10000` runs a long
//! sweep and `KEEL_SEED=<n>` replays one.
use keel_sim::seeds::selected_seeds;
use keel_sim::sweep::run_seed;

/// Seeds CI runs.
const CI_SWEEP_SEEDS: u64 = 300;

#[test]
fn fault_sweep() {
    let default: Vec<u64> = (1..=CI_SWEEP_SEEDS).collect();
    let mut committed = 0;
    for seed in selected_seeds(&default) {
        committed += run_seed(seed).committed;
    }
    assert!(committed > 0, "the sweep committed nothing at all");
}

/// Regression, seed 6: a crash armed during the fault schedule fired after the heal, leaving a node down during
/// the liveness check. The heal now disarms pending crashes.
#[test]
fn sweep_seed_6_no_fault_outlives_the_heal() {
    run_seed(6);
}

/// Regression, seed 18: the liveness command went to a leader that was deposed before committing it, and was
/// never proposed again. Liveness attempts now retry like 6.824's `one()`.
#[test]
fn sweep_seed_18_liveness_retries_after_a_deposed_leader() {
    run_seed(18);
}
