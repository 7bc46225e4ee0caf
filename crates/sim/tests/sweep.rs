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
