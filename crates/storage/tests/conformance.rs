//! One suite, three storages: MemStorage, DiskStorage on the real disk, DiskStorage on the simulated disk. The
//! same operations must give the same `load()`, and for the disk ones the same again after a reopen (a restart),
//! and on the simulated disk after a crash too (everything persisted was fsynced, so a crash may take nothing).
mod common;

use common::{Rng, describe, dir, history, states, tiny_segments};
use keel_raft::{DurableState, Entry, HardState, PersistUpdate, Snapshot, SnapshotMeta};
use keel_storage::{DiskStorage, MemStorage, Options, SimFs, StdFs, Storage};

/// What the suite needs from a storage under test.
trait Subject {
    fn name(&self) -> String;
    fn persist(&mut self, update: &PersistUpdate);
    /// A restart: close and open again from what is durable.
    fn restart(&mut self);
    fn load(&self) -> DurableState;
}

struct Mem(MemStorage);

impl Subject for Mem {
    fn name(&self) -> String {
        "MemStorage".into()
    }
    fn persist(&mut self, update: &PersistUpdate) {
        let Ok(()) = self.0.persist(update);
    }
    fn restart(&mut self) {}
    fn load(&self) -> DurableState {
        let Ok(state) = self.0.load();
        state
    }
}

struct OnStdFs {
    tmp: tempfile::TempDir,
    options: Options,
    storage: Option<DiskStorage<StdFs>>,
}

impl OnStdFs {
    fn new(options: Options) -> OnStdFs {
        let tmp = tempfile::tempdir().unwrap();
        let storage = DiskStorage::open_with(StdFs, tmp.path().join("raft"), options).unwrap();
        OnStdFs { tmp, options, storage: Some(storage) }
    }
}

impl Subject for OnStdFs {
    fn name(&self) -> String {
        format!("DiskStorage<StdFs> {:?}", self.options)
    }
    fn persist(&mut self, update: &PersistUpdate) {
        self.storage.as_mut().unwrap().persist(update).unwrap();
    }
    fn restart(&mut self) {
        self.storage = None;
        self.storage = Some(DiskStorage::open_with(StdFs, self.tmp.path().join("raft"), self.options).unwrap());
    }
    fn load(&self) -> DurableState {
        self.storage.as_ref().unwrap().load().unwrap()
    }
}

struct OnSimFs {
    fs: SimFs,
    options: Options,
    storage: Option<DiskStorage<SimFs>>,
    crashes: u64,
}

impl OnSimFs {
    fn new(options: Options) -> OnSimFs {
        let fs = SimFs::new(7);
        let storage = DiskStorage::open_with(fs.clone(), dir(), options).unwrap();
        OnSimFs { fs, options, storage: Some(storage), crashes: 0 }
    }
}

impl Subject for OnSimFs {
    fn name(&self) -> String {
        format!("DiskStorage<SimFs> {:?}", self.options)
    }
    fn persist(&mut self, update: &PersistUpdate) {
        self.storage.as_mut().unwrap().persist(update).unwrap();
    }
    fn restart(&mut self) {
        self.storage = None;
        // A power cut, not a clean shutdown: what survives is only what was made durable.
        self.crashes += 1;
        self.fs.crash(self.crashes);
        self.storage = Some(DiskStorage::open_with(self.fs.clone(), dir(), self.options).unwrap());
    }
    fn load(&self) -> DurableState {
        self.storage.as_ref().unwrap().load().unwrap()
    }
}

fn subjects() -> Vec<Box<dyn Subject>> {
    vec![
        Box::new(Mem(MemStorage::default())),
        Box::new(OnStdFs::new(Options::default())),
        Box::new(OnStdFs::new(tiny_segments())),
        Box::new(OnSimFs::new(Options::default())),
        Box::new(OnSimFs::new(tiny_segments())),
    ]
}

/// The real disk costs a few real fsyncs per update; it runs fewer seeds than the others.
const STD_FS_SEEDS: u64 = 3;

#[test]
fn a_new_storage_holds_the_empty_state() {
    for mut subject in subjects() {
        assert_eq!(subject.load(), DurableState::default(), "{}", subject.name());
        subject.restart();
        assert_eq!(subject.load(), DurableState::default(), "{} after restart", subject.name());
    }
}

/// Random Raft-like histories (appends, votes, conflicts, snapshots, installs): after every update each storage
/// loads the model's state, and after random restarts too.
#[test]
fn every_storage_loads_what_the_model_says_through_random_histories() {
    for seed in 0..12 {
        let updates = history(seed, 60);
        let expected = states(&updates);
        let mut rng = Rng::new(seed);
        for mut subject in subjects() {
            if seed >= STD_FS_SEEDS && subject.name().contains("StdFs") {
                continue;
            }
            for (k, update) in updates.iter().enumerate() {
                subject.persist(update);
                if rng.chance(20) {
                    subject.restart();
                }
                let loaded = subject.load();
                assert!(
                    loaded == expected[k + 1],
                    "seed {seed}, {} after update {k}:\n  loaded   {}\n  expected {}",
                    subject.name(),
                    describe(&loaded),
                    describe(&expected[k + 1])
                );
            }
        }
    }
}

fn entries(from: u64, count: u64, term: u64) -> Vec<Entry> {
    (from..from + count).map(|index| Entry { index, term, data: format!("{index}@{term}").into_bytes() }).collect()
}

fn append(from: u64, count: u64, term: u64) -> PersistUpdate {
    PersistUpdate { truncate_from: Some(from), entries: entries(from, count, term), ..PersistUpdate::default() }
}

/// The story of a follower: it votes, takes entries, loses a conflicting tail to a new leader across several
/// segments, snapshots, and restarts in between; every storage tells the same story back.
#[test]
fn a_follower_story_reads_back_the_same_everywhere() {
    let story = vec![
        PersistUpdate { hard_state: Some(HardState { term: 1, voted_for: Some(2) }), ..PersistUpdate::default() },
        append(1, 20, 1),
        append(21, 20, 1),
        PersistUpdate {
            hard_state: Some(HardState { term: 2, voted_for: None }),
            truncate_from: Some(8),
            entries: entries(8, 3, 2),
            ..PersistUpdate::default()
        },
        PersistUpdate {
            snapshot: Some(Snapshot { meta: SnapshotMeta { index: 9, term: 2 }, data: b"state at 9".to_vec() }),
            ..PersistUpdate::default()
        },
        append(11, 5, 2),
        PersistUpdate {
            hard_state: Some(HardState { term: 3, voted_for: Some(1) }),
            snapshot: Some(Snapshot { meta: SnapshotMeta { index: 30, term: 3 }, data: b"state at 30".to_vec() }),
            truncate_from: Some(31),
            entries: Vec::new(),
        },
        append(31, 2, 3),
    ];
    let expected = states(&story);
    for mut subject in subjects() {
        for (k, update) in story.iter().enumerate() {
            subject.persist(update);
            subject.restart();
            assert_eq!(subject.load(), expected[k + 1], "{} after step {k}", subject.name());
        }
        let last = subject.load();
        assert_eq!(last.hard_state, HardState { term: 3, voted_for: Some(1) });
        assert_eq!(last.snapshot.as_ref().map(|s| (s.meta.index, s.data.clone())), Some((30, b"state at 30".to_vec())));
        assert_eq!(last.entries, entries(31, 2, 3));
    }
}
