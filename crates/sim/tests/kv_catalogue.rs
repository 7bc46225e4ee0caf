//! The 6.824 kvraft catalogue (see `keel_sim::kv_catalogue`), one test per scenario, each run with the CI seeds,
//! or `KEEL_SEED=<n>` / `KEEL_SEEDS=<n>`. A failure prints the seed and the command that replays it.
use keel_sim::kv_catalogue::*;
use keel_sim::seeds::for_each_kv_seed;
use keel_sim::tester::TesterConfig;

macro_rules! kv_catalogue_tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                for_each_kv_seed(|seed| $module::$name(&TesterConfig::figure_2(seed)));
            }
        )*
    };
}

keel_sim::with_kv_catalogue!(kv_catalogue_tests);

/// The whole kvraft catalogue again with PreVote and CheckQuorum on: 6.824's scenarios and bounds hold for the
/// extensions a production deployment would enable (a deposed leader in a minority steps down by itself, and
/// its clerks hear "wrong leader" instead of nothing).
#[test]
fn kv_catalogue_with_pre_vote_and_check_quorum() {
    let options = keel_sim::RaftOptions::with_extensions(true, true);
    for scenario in ALL {
        for_each_kv_seed(|seed| (scenario.run)(&TesterConfig::figure_2(seed).with_raft(options)));
    }
}
