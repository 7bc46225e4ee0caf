//! Which seeds a simulation test runs.
//!
//! By default: the test's fixed seeds (the same in every run, so a regression shows up at once) plus fresh seeds
//! drawn from the clock (different in every run, so CI keeps exploring). `KEEL_SEED=<n>` replays one seed;
//! `KEEL_SEEDS=<n>` runs n seeds starting at `KEEL_SEED_BASE` (default 1) instead; `KEEL_FRESH_SEEDS=<n>` changes
//! how many fresh seeds join the fixed ones (0: the fixed seeds alone, for a deterministic run such as mutation
//! testing). A failure names its seed and the command that replays it, whichever way the seed was chosen.
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::time::{SystemTime, UNIX_EPOCH};

/// Fixed seeds every catalogue scenario runs in CI.
pub const CI_SEEDS: &[u64] = &[1, 2, 3];
/// Fresh seeds every catalogue scenario runs in CI, on top of the fixed ones (each run takes milliseconds).
pub const CI_FRESH_SEEDS_PER_SCENARIO: u64 = 24;

/// Fresh seeds are drawn below this, so that a replay command stays short enough to type.
const FRESH_SEED_LIMIT: u64 = 1 << 40;

/// The seeds to run: `KEEL_SEED`, or `KEEL_SEEDS` from `KEEL_SEED_BASE`, or else `fixed` plus `fresh` seeds from
/// the clock. Refuses to return no seed: a simulation test that ran nothing must not pass.
pub fn selected_seeds(fixed: &[u64], fresh: u64) -> Vec<u64> {
    let env_u64 = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
    let seeds: Vec<u64> = if let Some(seed) = env_u64("KEEL_SEED") {
        vec![seed]
    } else if let Some(count) = env_u64("KEEL_SEEDS") {
        let base = env_u64("KEEL_SEED_BASE").unwrap_or(1);
        (0..count).map(|i| base + i).collect()
    } else {
        let fresh = env_u64("KEEL_FRESH_SEEDS").unwrap_or(fresh);
        let base = fresh_base();
        fixed.iter().copied().chain((0..fresh).map(|i| base + i)).collect()
    };
    assert!(!seeds.is_empty(), "no seed selected (KEEL_SEEDS=0?): a simulation test that runs no seed is not a pass");
    seeds
}

/// A base for fresh seeds, from the clock.
fn fresh_base() -> u64 {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 finalizer: consecutive test starts get unrelated bases.
    let mut z = nanos.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) % FRESH_SEED_LIMIT
}

/// Runs `body` once per seed. A panic anywhere (a checker, or an assertion inside the core, which knows nothing
/// of seeds) is re-raised with the seed and the command that replays it.
pub fn run_seeds(seeds: &[u64], mut body: impl FnMut(u64)) {
    for &seed in seeds {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| body(seed))) {
            let test = std::thread::current().name().unwrap_or("<test name>").to_string();
            let test = test.rsplit("::").next().unwrap_or(&test).to_string();
            eprintln!(
                "simulation failed at seed {seed} ({} seeds were selected)\n  replay: KEEL_SEED={seed} cargo test --profile ci -p keel-sim -- {test} --exact",
                seeds.len()
            );
            resume_unwind(panic);
        }
    }
}

/// Runs `body` for the catalogue's fixed and fresh seeds.
pub fn for_each_seed(body: impl FnMut(u64)) {
    run_seeds(&selected_seeds(CI_SEEDS, CI_FRESH_SEEDS_PER_SCENARIO), body);
}

/// The text of a caught panic: a failed check's report (a `String`), an `assert!`'s message (a `&str`), or a note
/// that there was none.
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic without a message".into())
}

/// Fixed seeds every kvraft scenario runs in CI. Fewer than the Raft catalogue's: a kvraft scenario runs up to
/// a few hundred client operations per virtual second for about twenty virtual seconds, and checks the history.
pub const KV_CI_SEEDS: &[u64] = &[1, 2];
/// Fresh seeds every kvraft scenario runs in CI, on top of the fixed ones.
pub const KV_CI_FRESH_SEEDS_PER_SCENARIO: u64 = 4;

/// Runs `body` for the kvraft catalogue's fixed and fresh seeds.
pub fn for_each_kv_seed(body: impl FnMut(u64)) {
    run_seeds(&selected_seeds(KV_CI_SEEDS, KV_CI_FRESH_SEEDS_PER_SCENARIO), body);
}
