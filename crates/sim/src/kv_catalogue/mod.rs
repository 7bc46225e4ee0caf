//! The MIT 6.824 kvraft test catalogue (Lab 3A and 3B), scenario by scenario, on the real replica running
//! keel-kv's service, in virtual time. Every scenario's history goes through the linearizability checker
//! (`KvTester::end`). The integration tests (`tests/kv_catalogue.rs`) run each with the CI seeds.
use crate::tester::TesterConfig;

pub mod generic;
pub mod kvraft_3a;
pub mod kvraft_3b;

/// One scenario: its test name (also the `cargo test` filter that replays it) and its body.
pub struct KvScenario {
    pub name: &'static str,
    pub run: fn(&TesterConfig),
}

/// Calls `$callback! { module::scenario, ... }` with every scenario, in 6.824's order: the one list that both
/// [`ALL`] and the integration tests are generated from.
#[macro_export]
macro_rules! with_kv_catalogue {
    ($callback:ident) => {
        $callback! {
            kvraft_3a::basic_3a,
            kvraft_3a::speed_3a,
            kvraft_3a::concurrent_3a,
            kvraft_3a::unreliable_3a,
            kvraft_3a::unreliable_one_key_3a,
            kvraft_3a::one_partition_3a,
            kvraft_3a::many_partitions_one_client_3a,
            kvraft_3a::many_partitions_many_clients_3a,
            kvraft_3a::persist_one_client_3a,
            kvraft_3a::persist_concurrent_3a,
            kvraft_3a::persist_concurrent_unreliable_3a,
            kvraft_3a::persist_partition_3a,
            kvraft_3a::persist_partition_unreliable_3a,
            kvraft_3a::persist_partition_unreliable_linearizable_3a,
            kvraft_3b::snapshot_rpc_3b,
            kvraft_3b::snapshot_size_3b,
            kvraft_3b::speed_3b,
            kvraft_3b::snapshot_recover_3b,
            kvraft_3b::snapshot_recover_many_clients_3b,
            kvraft_3b::snapshot_unreliable_3b,
            kvraft_3b::snapshot_unreliable_recover_3b,
            kvraft_3b::snapshot_unreliable_recover_concurrent_partition_3b,
            kvraft_3b::snapshot_unreliable_recover_concurrent_partition_linearizable_3b,
        }
    };
}

macro_rules! kv_scenarios {
    ($($module:ident :: $name:ident),* $(,)?) => {
        &[$(KvScenario { name: stringify!($name), run: $module::$name }),*]
    };
}

/// Every scenario, in 6.824's order.
pub const ALL: &[KvScenario] = with_kv_catalogue!(kv_scenarios);
