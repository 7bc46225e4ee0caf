//! The 6.824 Raft catalogue (see `keel_sim::catalogue`), one test per scenario, each run with the CI seeds, or
//! `KEEL_SEED=<n>` / `KEEL_SEEDS=<n>`. A failure prints the seed and the command that replays it.
use keel_sim::catalogue::*;
use keel_sim::seeds::for_each_seed;

macro_rules! catalogue_tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                for_each_seed($module::$name);
            }
        )*
    };
}

catalogue_tests![
    election_2a::initial_election_2a,
    election_2a::re_election_2a,
    election_2a::many_elections_2a,
    replication_2b::basic_agree_2b,
    replication_2b::rpc_bytes_2b,
    replication_2b::follower_failure_2b,
    replication_2b::leader_failure_2b,
    replication_2b::fail_agree_2b,
    replication_2b::fail_no_agree_2b,
    replication_2b::concurrent_starts_2b,
    replication_2b::rejoin_2b,
    replication_2b::backup_2b,
    replication_2b::count_2b,
    persistence_2c::persist1_2c,
    persistence_2c::persist2_2c,
    persistence_2c::persist3_2c,
    persistence_2c::figure8_2c,
    persistence_2c::unreliable_agree_2c,
    persistence_2c::figure8_unreliable_2c,
    persistence_2c::reliable_churn_2c,
    persistence_2c::unreliable_churn_2c,
    snapshots_2d::snapshot_basic_2d,
    snapshots_2d::snapshot_install_2d,
    snapshots_2d::snapshot_install_unreliable_2d,
    snapshots_2d::snapshot_install_crash_2d,
    snapshots_2d::snapshot_install_uncrash_2d,
    snapshots_2d::snapshot_all_crash_2d,
    snapshots_2d::snapshot_init_2d,
];

/// Every scenario in the library's list has a test here (so the benchmark and the tests cover the same set).
#[test]
fn every_catalogue_scenario_is_tested() {
    let source = include_str!("catalogue.rs");
    for scenario in ALL {
        assert!(source.contains(&format!("::{},", scenario.name)), "{} has no test", scenario.name);
    }
}
