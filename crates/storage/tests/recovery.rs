//! The recovery rules, one test each, and the write-path promises (group commit, fail-stop, compaction).
mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use common::{dir, states, tiny_segments};
use keel_raft::{DurableState, Entry, HardState, PersistUpdate, Snapshot, SnapshotMeta};
use keel_storage::{DiskStorage, Error, Faults, FileSystem, SimFs, StdFs, Storage, WalFile};

fn append(from: u64, count: u64, term: u64) -> PersistUpdate {
    let entries = (from..from + count).map(|index| Entry { index, term, data: vec![index as u8; 16] }).collect();
    PersistUpdate {
        hard_state: (from == 1).then_some(HardState { term, voted_for: Some(1) }),
        truncate_from: Some(from),
        entries,
        ..PersistUpdate::default()
    }
}

fn snapshot_at(index: u64, term: u64) -> PersistUpdate {
    let data = format!("service state through {index}").into_bytes();
    PersistUpdate { snapshot: Some(Snapshot { meta: SnapshotMeta { index, term }, data }), ..PersistUpdate::default() }
}

/// Five appends of two entries: five batch records after the segment header, in one segment.
fn five_appends() -> Vec<PersistUpdate> {
    (0..5).map(|k| append(1 + 2 * k, 2, 1)).collect()
}

fn open_std(path: &Path) -> Result<DiskStorage<StdFs>, Error> {
    DiskStorage::open(StdFs, path)
}

fn written_std(updates: &[PersistUpdate]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("raft");
    let mut storage = open_std(&path).unwrap();
    for update in updates {
        storage.persist(update).unwrap();
    }
    (tmp, path)
}

fn only_segment(dir: &Path) -> PathBuf {
    let segments: Vec<PathBuf> = common::segment_files(&StdFs, dir);
    assert_eq!(segments.len(), 1, "{segments:?}");
    segments[0].clone()
}

/// Where each record of a WAL file starts, read from the framing (14-byte header, length at bytes 4..8).
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 0;
    while at + 14 <= bytes.len() {
        offsets.push(at);
        at += 14 + u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
    }
    offsets
}

fn flip_byte(path: &Path, offset: usize) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[offset] ^= 0x10;
    std::fs::write(path, bytes).unwrap();
}

/// Collects the `tracing` events emitted while `f` runs, as text.
fn capture_warnings<T>(f: impl FnOnce() -> T) -> (T, Vec<String>) {
    struct Collector(Arc<Mutex<Vec<String>>>);
    struct Fields(String);
    impl tracing::field::Visit for Fields {
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            self.0.push_str(&format!(" {}={value:?}", field.name()));
        }
    }
    impl tracing::Subscriber for Collector {
        fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut fields = Fields(format!("{}", event.metadata().level()));
            event.record(&mut fields);
            self.0.lock().unwrap().push(fields.0);
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    let events = Arc::new(Mutex::new(Vec::new()));
    let result = tracing::subscriber::with_default(Collector(Arc::clone(&events)), f);
    let events = events.lock().unwrap().clone();
    (result, events)
}

#[test]
fn a_torn_last_record_is_cut_off_with_a_warning_naming_file_and_offset() {
    let updates = five_appends();
    let expected = states(&updates);
    let (_tmp, path) = written_std(&updates[..4]);
    let segment = only_segment(&path);
    let intact_len = std::fs::metadata(&segment).unwrap().len();
    // The fifth persist, as it would have been written, reaches the disk only in part.
    let (_tmp_full, full_path) = written_std(&updates);
    let full = std::fs::read(only_segment(&full_path)).unwrap();
    let fifth = &full[intact_len as usize..];
    // Cut short at several points, and (last) as zeros: a file system that made the new length durable but not
    // the data.
    let zeros = vec![0u8; fifth.len()];
    let torn_writes = [&fifth[..1], &fifth[..13], &fifth[..14], &fifth[..fifth.len() - 1], &zeros[..]];
    for torn_write in torn_writes {
        let torn_len = torn_write.len();
        let mut file = StdFs.open_append(&segment).unwrap();
        file.append(torn_write).unwrap();
        drop(file);
        let (storage, warnings) = capture_warnings(|| open_std(&path).unwrap());
        let torn = storage.recovery().torn_tail.clone().expect("the torn record is reported");
        assert_eq!((torn.path.as_path(), torn.offset), (segment.as_path(), intact_len));
        assert_eq!(std::fs::metadata(&segment).unwrap().len(), intact_len, "cut at the record boundary");
        let warning = warnings.iter().find(|w| w.starts_with("WARN")).expect("a warning");
        assert!(warning.contains(&segment.display().to_string()) && warning.contains(&format!("offset={intact_len}")));
        assert_eq!(storage.load().unwrap(), expected[4], "torn {torn_len} bytes");
    }
    // The log goes on from the cut.
    let mut storage = open_std(&path).unwrap();
    storage.persist(&updates[4]).unwrap();
    drop(storage);
    assert_eq!(open_std(&path).unwrap().load().unwrap(), expected[5]);
}

#[test]
fn a_checksum_failure_before_the_tail_refuses_to_open_naming_file_offset_and_remedy() {
    let (_tmp, path) = written_std(&five_appends());
    let segment = only_segment(&path);
    let before = std::fs::read(&segment).unwrap();
    let second_batch = record_offsets(&before)[2];
    flip_byte(&segment, second_batch + 20);
    let Err(error) = open_std(&path) else { panic!("a damaged record must stop the node") };
    match &error {
        Error::CorruptRecord { path: p, offset, .. } => assert_eq!((p, *offset), (&segment, second_batch as u64)),
        other => panic!("expected CorruptRecord, got {other}"),
    }
    let message = error.to_string();
    assert!(message.contains(&segment.display().to_string()) && message.contains(&format!("offset {second_batch}")));
    assert!(message.contains("re-add"), "the message says what to do: {message}");
    assert_eq!(std::fs::read(&segment).unwrap().len(), before.len(), "nothing was cut");
}

/// A whole last record with a bad checksum is damage, not a torn write: it may have been acknowledged.
#[test]
fn a_damaged_but_complete_last_record_is_corruption_not_a_torn_write() {
    let (_tmp, path) = written_std(&five_appends());
    let segment = only_segment(&path);
    let last = *record_offsets(&std::fs::read(&segment).unwrap()).last().unwrap();
    flip_byte(&segment, last + 16);
    assert!(matches!(open_std(&path), Err(Error::CorruptRecord { offset, .. }) if offset == last as u64));
}

fn snapshot_file(dir: &Path) -> PathBuf {
    let names = StdFs.list_dir(dir).unwrap();
    let snaps: Vec<&String> = names.iter().filter(|n| n.starts_with("snap-")).collect();
    assert_eq!(snaps.len(), 1, "{names:?}");
    dir.join(snaps[0])
}

#[test]
fn a_missing_snapshot_file_is_a_clear_error() {
    let mut updates = five_appends();
    updates.push(snapshot_at(6, 1));
    let (_tmp, path) = written_std(&updates);
    let snap = snapshot_file(&path);
    std::fs::remove_file(&snap).unwrap();
    match open_std(&path) {
        Err(Error::SnapshotMissing { path: p, index: 6 }) => assert_eq!(p, snap),
        Err(other) => panic!("expected SnapshotMissing, got {other}"),
        Ok(_) => panic!("opened without its snapshot"),
    }
}

#[test]
fn a_damaged_snapshot_file_is_a_clear_error() {
    let mut updates = five_appends();
    updates.push(snapshot_at(6, 1));
    let (_tmp, path) = written_std(&updates);
    let snap = snapshot_file(&path);
    let len = std::fs::metadata(&snap).unwrap().len() as usize;
    flip_byte(&snap, len - 3);
    assert!(matches!(open_std(&path), Err(Error::SnapshotCorrupt { index: 6, .. })));
}

#[test]
fn an_unknown_format_version_is_a_clear_error() {
    let (_tmp, path) = written_std(&five_appends());
    let segment = only_segment(&path);
    let mut bytes = std::fs::read(&segment).unwrap();
    let last = *record_offsets(&bytes).last().unwrap();
    bytes[last + 12] = 2;
    let header_crc = crc32c::crc32c(&bytes[last + 4..last + 14]);
    bytes[last..last + 4].copy_from_slice(&header_crc.to_le_bytes());
    std::fs::write(&segment, bytes).unwrap();
    match open_std(&path) {
        Err(e @ Error::UnknownVersion { version: 2, supported: 1, .. }) => {
            assert!(e.to_string().contains(&format!("offset {last}")), "{e}");
        }
        Err(other) => panic!("expected UnknownVersion, got {other}"),
        Ok(_) => panic!("opened a format it does not know"),
    }
}

fn sim_with(updates: &[PersistUpdate]) -> (SimFs, DiskStorage<SimFs>) {
    let fs = SimFs::new(3);
    let mut storage = DiskStorage::open_with(fs.clone(), dir(), tiny_segments()).unwrap();
    for update in updates {
        storage.persist(update).unwrap();
    }
    (fs, storage)
}

/// Fail-stop: an fsync error is returned, every later call is refused, and the next start finds only what really
/// reached the disk (the simulated kernel dropped the pages whose writeback failed, as Linux does).
#[test]
fn an_fsync_error_stops_the_storage_for_good() {
    let updates = five_appends();
    let expected = states(&updates);
    let (fs, mut storage) = sim_with(&updates[..3]);
    // The fourth persist is one append then one fdatasync; the fdatasync fails.
    fs.set_faults(Faults { fail_op: Some(fs.ops() + 2), ..Faults::default() });
    let error = storage.persist(&updates[3]).unwrap_err();
    assert!(matches!(&error, Error::Io { op: "fdatasync", .. }), "{error}");
    assert!(storage.stopped().is_some());
    for _ in 0..3 {
        assert!(matches!(storage.persist(&updates[3]), Err(Error::Stopped { .. })), "never retried");
        assert!(matches!(storage.persist(&updates[4]), Err(Error::Stopped { .. })));
        assert!(matches!(storage.load(), Err(Error::Stopped { .. })));
    }
    drop(storage);
    fs.crash(11);
    let reopened = DiskStorage::open_with(fs.clone(), dir(), tiny_segments()).unwrap();
    assert_eq!(reopened.load().unwrap(), expected[3], "the failed persist is gone, the acknowledged ones are not");
}

#[test]
fn a_write_error_stops_the_storage_too() {
    let updates = five_appends();
    let (fs, mut storage) = sim_with(&updates[..3]);
    fs.set_faults(Faults { fail_op: Some(fs.ops() + 1), ..Faults::default() });
    assert!(matches!(storage.persist(&updates[3]), Err(Error::Io { op: "write", .. })));
    assert!(matches!(storage.persist(&updates[3]), Err(Error::Stopped { .. })));
}

/// Group commit: one write and one fdatasync per persist, whether it holds 1 entry or 256, and for a conflict
/// that truncates too (the truncation rides in the same record and the same fdatasync).
#[test]
fn one_persist_is_one_write_and_one_fdatasync_however_many_entries() {
    let fs = SimFs::new(3);
    let mut storage = DiskStorage::open(fs.clone(), dir()).unwrap();
    let conflict = PersistUpdate {
        hard_state: Some(HardState { term: 2, voted_for: None }),
        truncate_from: Some(100),
        entries: (100..400).map(|index| Entry { index, term: 2, data: vec![7; 128] }).collect(),
        ..PersistUpdate::default()
    };
    for update in [append(1, 1, 1), append(2, 256, 1), conflict] {
        let before = fs.op_counts();
        storage.persist(&update).unwrap();
        let after = fs.op_counts();
        assert_eq!((after.appends - before.appends, after.syncs_data - before.syncs_data), (1, 1));
        assert_eq!(after.total() - before.total(), 2, "nothing else: {before:?} -> {after:?}");
    }
}

/// A snapshot deletes the segments it covers and the old snapshot file; the hard state, written long before in a
/// segment now deleted, survives (each segment begins with it).
#[test]
fn compaction_deletes_covered_segments_and_the_hard_state_survives_them() {
    let mut updates =
        vec![PersistUpdate { hard_state: Some(HardState { term: 3, voted_for: Some(2) }), ..PersistUpdate::default() }];
    updates.extend((0..30).map(|k| {
        let mut u = append(1 + 3 * k, 3, 3);
        u.hard_state = None;
        u
    }));
    let (fs, mut storage) = sim_with(&updates);
    assert!(storage.segment_paths().len() > 5, "tiny segments rotate: {}", storage.segment_paths().len());
    storage.persist(&snapshot_at(40, 3)).unwrap();
    storage.persist(&snapshot_at(90, 3)).unwrap();
    assert_eq!(storage.segment_paths().len(), 1, "every segment but the active one is covered");
    let files = fs.list_dir(&dir()).unwrap();
    assert_eq!(files.iter().filter(|n| n.starts_with("snap-")).count(), 1, "the old snapshot is gone: {files:?}");
    drop(storage);
    fs.crash(5);
    let state = DiskStorage::open_with(fs.clone(), dir(), tiny_segments()).unwrap().load().unwrap();
    assert_eq!(state.hard_state, HardState { term: 3, voted_for: Some(2) });
    assert_eq!(state.snapshot.map(|s| s.meta), Some(SnapshotMeta { index: 90, term: 3 }));
    assert_eq!(state.entries, Vec::<Entry>::new());
}

#[test]
fn a_segment_missing_from_the_middle_is_a_clear_error() {
    let updates: Vec<PersistUpdate> = (0..30).map(|k| append(1 + 3 * k, 3, 1)).collect();
    let (fs, storage) = sim_with(&updates);
    let segments = storage.segment_paths();
    drop(storage);
    fs.remove_file(&segments[2]).unwrap();
    fs.sync_dir(&dir()).unwrap();
    match DiskStorage::open_with(fs.clone(), dir(), tiny_segments()) {
        Err(Error::MissingEntries { first_missing: 1, last_missing, .. }) => assert!(last_missing > 1),
        Err(other) => panic!("expected MissingEntries, got {other}"),
        Ok(_) => panic!("opened with a hole in the log"),
    }
}

#[test]
fn garbage_left_by_a_crash_is_deleted_at_open() {
    let mut updates = five_appends();
    updates.push(snapshot_at(4, 1));
    let (_tmp, path) = written_std(&updates);
    let stray_tmp = path.join("snap-00000000000000000009-00000000000000000001-00000000.snap.tmp");
    let stray_snap = path.join("snap-00000000000000000002-00000000000000000001-00000000.snap");
    std::fs::write(&stray_tmp, b"half a snapshot").unwrap();
    std::fs::write(&stray_snap, b"an old snapshot").unwrap();
    let storage = open_std(&path).unwrap();
    let mut removed = storage.recovery().removed.clone();
    removed.sort();
    assert_eq!(removed, vec![stray_snap.clone(), stray_tmp.clone()]);
    assert!(!stray_tmp.exists() && !stray_snap.exists());
    assert_eq!(storage.load().unwrap(), states(&updates)[6]);
}

/// An update that would break the log is refused before anything is written, and the storage carries on.
#[test]
fn an_invalid_update_is_refused_and_the_storage_keeps_working() {
    let updates = five_appends();
    let (_fs, mut storage) = sim_with(&updates[..2]);
    let gap = append(9, 1, 1);
    assert!(
        matches!(storage.persist(&gap), Err(Error::InvalidUpdate { reason }) if reason.contains("entry 9 where 5"))
    );
    let term_back = PersistUpdate { hard_state: Some(HardState { term: 0, voted_for: None }), ..Default::default() };
    assert!(matches!(storage.persist(&term_back), Err(Error::InvalidUpdate { .. })));
    storage.persist(&updates[2]).unwrap();
    assert_eq!(storage.load().unwrap(), states(&updates)[3]);
    assert_ne!(storage.load().unwrap(), DurableState::default());
}

/// A failed directory fsync (here, the one that makes a new segment's name durable) stops the storage like a
/// failed fdatasync: the segment may never be found again, so nothing written to it may be acknowledged.
#[test]
fn a_failed_directory_fsync_stops_the_storage_too() {
    let updates: Vec<PersistUpdate> = (0..40).map(|k| append(1 + 2 * k, 2, 1)).collect();
    let expected = states(&updates);
    let fs = SimFs::new(3);
    let mut storage = DiskStorage::open_with(fs.clone(), dir(), tiny_segments()).unwrap();
    for (k, update) in updates.iter().enumerate() {
        let active = storage.segment_paths().last().cloned().unwrap();
        if fs.file_len(&active).unwrap() >= tiny_segments().segment_size_bytes_target {
            // This persist starts a segment: create, write, fdatasync, then fsync the directory, which fails.
            fs.set_faults(Faults { fail_op: Some(fs.ops() + 4), ..Faults::default() });
            let error = storage.persist(update).unwrap_err();
            assert!(matches!(&error, Error::Io { op: "fsync directory", .. }), "{error}");
            assert!(matches!(storage.persist(update), Err(Error::Stopped { .. })));
            drop(storage);
            fs.crash(1);
            let reopened = DiskStorage::open_with(fs.clone(), dir(), tiny_segments()).unwrap();
            assert_eq!(reopened.load().unwrap(), expected[k], "the update whose segment was lost is not there");
            return;
        }
        storage.persist(update).unwrap();
    }
    panic!("no persist started a segment");
}
