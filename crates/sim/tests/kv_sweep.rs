//! The fault sweep with KV clients (see `keel_sim::kv_sweep`): fixed seeds plus fresh ones in CI;
//! `KEEL_SEEDS=1000 cargo test --profile ci -p keel-sim --test kv_sweep` runs a long one, `KEEL_SEED=<n>` replays.
use keel_sim::kv_sweep::{KvSweepOutcome, run_kv_seed};
use keel_sim::seeds::{run_seeds, selected_seeds};

/// Fixed seeds CI runs in every build.
const CI_KV_SWEEP_SEEDS: u64 = 40;
/// Fresh seeds CI runs on top, different in every build (about 20 ms each).
const CI_FRESH_KV_SWEEP_SEEDS: u64 = 200;

#[test]
fn kv_fault_sweep() {
    let fixed: Vec<u64> = (1..=CI_KV_SWEEP_SEEDS).collect();
    let mut ops = 0;
    run_seeds(&selected_seeds(&fixed, CI_FRESH_KV_SWEEP_SEEDS), |seed| ops += run_kv_seed(seed).ops_completed);
    assert!(ops > 0, "the KV sweep completed no operation at all");
}

/// The fixed seeds still reach what the sweep claims to test: acknowledged appends under faults, snapshots
/// installed, the nemesis, duplicated messages, recoveries of the WAL after a power loss, disk I/O errors.
#[test]
fn kv_sweep_exercises_clients_under_every_fault() {
    let outcomes: Vec<KvSweepOutcome> = (1..=CI_KV_SWEEP_SEEDS).map(run_kv_seed).collect();
    let total = |f: &dyn Fn(&KvSweepOutcome) -> u64| outcomes.iter().map(f).sum::<u64>();
    assert!(outcomes.iter().all(|o| o.ops_completed > 0), "a seed completed no operation");
    assert!(total(&|o| o.appends_acknowledged as u64) > 100, "few appends were acknowledged");
    assert!(total(&|o| o.snapshots_installed) > 0, "no snapshot was installed");
    assert!(total(&|o| o.nemesis_strikes) > 0, "the nemesis never struck");
    assert!(total(&|o| o.duplicated) > 0, "no message was duplicated");
    assert!(total(&|o| o.disk.recoveries) > 0, "no WAL recovered after a power loss");
    assert!(total(&|o| o.disk.disk_errors) > 0, "no disk I/O error was injected");
}
