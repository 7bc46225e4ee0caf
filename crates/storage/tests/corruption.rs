//! Damage at rest: a flipped bit anywhere in a WAL segment or a snapshot file is always detected, never returned as
//! data, and never cut off as a torn write (the length is covered by the header checksum; the one exception, a
//! last record whose own data ends in zeros from a page boundary, does not arise in these small files).
mod common;

use std::path::PathBuf;

use common::{Rng, describe, dir, history, run_on_sim, states, tiny_segments};
use keel_storage::{DiskStorage, Error, FileSystem, SimFs, StdFs, Storage};

fn files(fs: &impl FileSystem, dir: &std::path::Path) -> Vec<PathBuf> {
    fs.list_dir(dir).unwrap().into_iter().map(|n| dir.join(n)).collect()
}

#[test]
fn a_flipped_bit_anywhere_is_always_detected_on_the_simulated_disk() {
    let mut detected = 0;
    for seed in 0..6 {
        let updates = history(seed, 50);
        let expected = states(&updates);
        let pristine = SimFs::new(seed);
        drop(run_on_sim(&pristine, &updates));
        let all = files(&pristine, &dir());
        let mut rng = Rng::new(seed);
        for trial in 0..150 {
            let fs = pristine.fork();
            let file = &all[rng.below(all.len() as u64) as usize];
            let len = fs.file_len(file).unwrap();
            let bit = rng.below(len * 8);
            assert!(fs.flip_bit(file, bit));
            let context = format!("seed {seed} trial {trial}: bit {bit} of {} ({len} bytes)", file.display());
            match DiskStorage::open_with(fs.clone(), dir(), tiny_segments()).and_then(|s| s.load()) {
                Ok(state) => panic!(
                    "{context}: the damage went unnoticed; loaded {} (the undamaged state is {})",
                    describe(&state),
                    describe(&expected[updates.len()])
                ),
                Err(Error::CorruptRecord { .. } | Error::SnapshotCorrupt { .. }) => detected += 1,
                Err(other) => panic!("{context}: detected, but reported as {other}"),
            }
        }
    }
    assert_eq!(detected, 6 * 150);
}

#[test]
fn a_flipped_bit_anywhere_is_always_detected_on_the_real_disk() {
    let updates = history(99, 40);
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("raft");
    let mut storage = DiskStorage::open_with(StdFs, &path, tiny_segments()).unwrap();
    for update in &updates {
        storage.persist(update).unwrap();
    }
    drop(storage);
    let all = files(&StdFs, &path);
    let mut rng = Rng::new(99);
    for trial in 0..60 {
        let file = &all[rng.below(all.len() as u64) as usize];
        let pristine = std::fs::read(file).unwrap();
        let bit = rng.below(pristine.len() as u64 * 8) as usize;
        let mut damaged = pristine.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        std::fs::write(file, &damaged).unwrap();
        let outcome = DiskStorage::open_with(StdFs, &path, tiny_segments()).and_then(|s| s.load());
        assert!(
            matches!(outcome, Err(Error::CorruptRecord { .. } | Error::SnapshotCorrupt { .. })),
            "trial {trial}: bit {bit} of {}: {:?}",
            file.display(),
            outcome.map(|s| describe(&s))
        );
        std::fs::write(file, &pristine).unwrap();
    }
    assert_eq!(DiskStorage::open_with(StdFs, &path, tiny_segments()).unwrap().load().unwrap(), states(&updates)[40]);
}
