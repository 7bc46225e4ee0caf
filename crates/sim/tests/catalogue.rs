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

keel_sim::with_catalogue!(catalogue_tests);
