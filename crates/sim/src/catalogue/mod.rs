//! The MIT 6.824 Raft test catalogue (2A-2D), scenario by scenario, as functions of a [`TesterConfig`] (a seed
//! and the Raft options). The integration tests
//! run each with the CI seeds; the benchmark times the whole list.
use crate::tester::TesterConfig;

pub mod election_2a;
pub mod persistence_2c;
pub mod replication_2b;
pub mod snapshots_2d;

/// One scenario: its test name (also the `cargo test` filter that replays it) and its body.
pub struct Scenario {
    pub name: &'static str,
    pub run: fn(&TesterConfig),
}

/// Calls `$callback! { module::scenario, ... }` with every scenario, in 6.824's order: the one list that both
/// [`ALL`] and the integration tests are generated from.
#[macro_export]
macro_rules! with_catalogue {
    ($callback:ident) => {
        $callback! {
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
        }
    };
}

macro_rules! scenarios {
    ($($module:ident :: $name:ident),* $(,)?) => {
        &[$(Scenario { name: stringify!($name), run: $module::$name }),*]
    };
}

/// Every scenario, in 6.824's order.
pub const ALL: &[Scenario] = with_catalogue!(scenarios);
