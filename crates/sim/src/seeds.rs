//! Which seeds a simulation test runs: `KEEL_SEED=<n>` replays one, `KEEL_SEEDS=<n>` runs n (starting at
//! `KEEL_SEED_BASE`, default 1), otherwise the test's fixed CI seeds.

/// Fixed seeds every catalogue test runs in CI.
pub const CI_SEEDS: &[u64] = &[1, 2, 3];

pub fn selected_seeds(default_seeds: &[u64]) -> Vec<u64> {
    let env_u64 = |name: &str| std::env::var(name).ok().and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(seed) = env_u64("KEEL_SEED") {
        return vec![seed];
    }
    if let Some(count) = env_u64("KEEL_SEEDS") {
        let base = env_u64("KEEL_SEED_BASE").unwrap_or(1);
        return (0..count).map(|i| base + i).collect();
    }
    default_seeds.to_vec()
}

/// Runs `body` once per selected seed. The body's failure report names its seed.
pub fn for_each_seed(mut body: impl FnMut(u64)) {
    for seed in selected_seeds(CI_SEEDS) {
        body(seed);
    }
}
