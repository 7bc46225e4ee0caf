//! The 6.824 Raft catalogue (see `keel_sim::catalogue`), one test per scenario, each run with the CI seeds, or
//! `KEEL_SEED=<n>` / `KEEL_SEEDS=<n>`. A failure prints the seed and the command that replays it.
use keel_sim::catalogue::*;
use keel_sim::seeds::for_each_seed;
use keel_sim::tester::TesterConfig;

macro_rules! catalogue_tests {
    ($($module:ident :: $name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                for_each_seed(|seed| $module::$name(&TesterConfig::figure_2(seed)));
            }
        )*
    };
}

keel_sim::with_catalogue!(catalogue_tests);

/// The whole catalogue again with PreVote and CheckQuorum on: the 6.824 scenarios and bounds hold for the
/// extensions a production deployment would enable.
#[test]
fn catalogue_with_pre_vote_and_check_quorum() {
    let options = keel_sim::RaftOptions::with_extensions(true, true);
    for scenario in ALL {
        for_each_seed(|seed| (scenario.run)(&TesterConfig::figure_2(seed).with_raft(options)));
    }
}
