//! Property test against the model: `DurableState::apply` is what the contract says a persist means, so after any
//! sequence of updates, restarts and crashes (between persists, when everything acknowledged is durable),
//! `DiskStorage` on the simulated disk loads exactly the model's state, and so does `MemStorage`.
mod common;

use common::{Step, describe, dir, update_for};
use keel_raft::DurableState;
use keel_storage::{DiskStorage, MemStorage, Options, SimFs, Storage};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Action {
    Persist(Step),
    /// Close and open again.
    Restart,
    /// Lose power (nothing unsynced is pending between persists, so nothing may be lost), then open again.
    Crash(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        5 => (1..8u64, any::<bool>(), 0..40u64)
            .prop_map(|(count, new_term, data_len)| Step::Append { count, new_term, data_len }),
        2 => (any::<bool>(), 0..3u64).prop_map(|(new_term, candidate)| Step::Vote { new_term, candidate }),
        2 => (any::<u64>(), 0..5u64).prop_map(|(at, count)| Step::Conflict { at, count }),
        1 => (any::<u64>(), 0..100u64).prop_map(|(at, data_len)| Step::Snapshot { at, data_len }),
        1 => (any::<u64>(), 0..100u64).prop_map(|(beyond, data_len)| Step::Install { beyond, data_len }),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        10 => step().prop_map(Action::Persist),
        1 => Just(Action::Restart),
        1 => any::<u64>().prop_map(Action::Crash),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn disk_storage_loads_what_the_model_says(
        actions in prop::collection::vec(action(), 1..80),
        segment_size_bytes_target in prop_oneof![Just(150u64), Just(1000), Just(1 << 20)],
    ) {
        let options = Options { segment_size_bytes_target };
        let fs = SimFs::new(1);
        let mut disk = DiskStorage::open_with(fs.clone(), dir(), options).unwrap();
        let mut mem = MemStorage::default();
        let mut model = DurableState::default();
        for (k, action) in actions.iter().enumerate() {
            match action {
                Action::Persist(step) => {
                    let Some(update) = update_for(&model, step) else { continue };
                    model.apply(&update);
                    disk.persist(&update).unwrap();
                    let Ok(()) = mem.persist(&update);
                }
                Action::Restart => {
                    drop(disk);
                    disk = DiskStorage::open_with(fs.clone(), dir(), options).unwrap();
                }
                Action::Crash(seed) => {
                    drop(disk);
                    fs.crash(*seed);
                    disk = DiskStorage::open_with(fs.clone(), dir(), options).unwrap();
                }
            }
            let loaded = disk.load().unwrap();
            prop_assert!(loaded == model, "after action {k} ({action:?}):\n  disk  {}\n  model {}", describe(&loaded), describe(&model));
            let Ok(from_mem) = mem.load();
            prop_assert_eq!(&from_mem, &model);
        }
    }
}
