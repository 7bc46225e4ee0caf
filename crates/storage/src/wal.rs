//! The write-ahead log as a whole: what its records mean, the checks every update passes on the way in and on the
//! way back out, and replay (reading every segment back into the durable state).
use std::path::{Path, PathBuf};

use keel_raft::{DurableState, Entry, HardState, Index, PersistUpdate, Snapshot, SnapshotMeta, Term};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::fs::FileSystem;
use crate::record::{self, EncodeError, Kind, WAL_RECORD_BODY_SIZE_BYTES_MAX};
use crate::segment::{self, SegmentName, Tail};
use crate::snapshot_file::SnapshotRef;

/// The first record of every segment: the state when the segment began. It is what lets whole segments be deleted
/// after a snapshot: the hard state and the snapshot reference never live only in a segment that may go.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentHeader {
    /// The log's next index when the segment began; also in the file name.
    pub first_index: Index,
    pub hard_state: HardState,
    pub snapshot: Option<SnapshotRef>,
}

/// One persist as read back. Applied exactly as `DurableState::apply` applies a `PersistUpdate`.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Batch {
    hard_state: Option<HardState>,
    snapshot: Option<SnapshotRef>,
    truncate_from: Option<Index>,
    entries: Vec<Entry>,
}

fn encode_error(e: EncodeError) -> Error {
    match e {
        EncodeError::TooLarge { size_bytes, size_bytes_max } => Error::UpdateTooLarge { size_bytes, size_bytes_max },
        EncodeError::Postcard(e) => Error::InvalidUpdate { reason: format!("does not encode: {e}") },
    }
}

pub fn encode_header(buf: &mut Vec<u8>, header: &SegmentHeader) -> Result<(), Error> {
    record::append(buf, Kind::SegmentHeader, header, WAL_RECORD_BODY_SIZE_BYTES_MAX).map_err(encode_error)
}

/// Appends one persist as a batch record. The body is exactly what postcard makes of a [`Batch`] (fields in order:
/// three options, then the entries as a sequence), but the entries are written by hand, their data with one copy
/// each: serde would hand postcard every byte of every entry one call at a time, which made encoding cost more
/// than the write itself for large batches. `hand_encoding_is_postcards_encoding` holds the two together.
pub fn encode_batch(buf: &mut Vec<u8>, update: &PersistUpdate, snapshot: Option<&SnapshotRef>) -> Result<(), Error> {
    record::append_with(buf, Kind::Batch, WAL_RECORD_BODY_SIZE_BYTES_MAX, |buf| {
        record::postcard_into(buf, &(update.hard_state.as_ref(), snapshot, update.truncate_from))?;
        record::varint_into(buf, update.entries.len() as u64);
        for entry in &update.entries {
            record::varint_into(buf, entry.index);
            record::varint_into(buf, entry.term);
            record::varint_into(buf, entry.data.len() as u64);
            buf.extend_from_slice(&entry.data);
        }
        Ok(())
    })
    .map_err(encode_error)
}

/// The end of the log, which is all an update is checked against (the storage keeps no entries in memory).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LogTip {
    /// The index the next appended entry must have.
    pub next_index: Index,
    /// The term of the entry before `next_index`, when known (it is not after a truncation cut into the log: the
    /// storage would have to read it back).
    pub last_term: Option<Term>,
    pub snapshot: SnapshotMeta,
    /// The current term (of the hard state).
    pub term: Term,
}

impl LogTip {
    /// The tip of an empty log.
    pub fn empty() -> LogTip {
        LogTip { next_index: 1, last_term: Some(0), snapshot: SnapshotMeta::default(), term: 0 }
    }
}

/// The parts of an update that checking needs, borrowed from either a `PersistUpdate` or a decoded batch.
pub struct UpdateView<'a> {
    pub hard_state: Option<&'a HardState>,
    pub snapshot: Option<&'a SnapshotMeta>,
    pub truncate_from: Option<Index>,
    pub entries: &'a [Entry],
}

impl<'a> From<&'a PersistUpdate> for UpdateView<'a> {
    fn from(u: &'a PersistUpdate) -> Self {
        UpdateView {
            hard_state: u.hard_state.as_ref(),
            snapshot: u.snapshot.as_ref().map(|s| &s.meta),
            truncate_from: u.truncate_from,
            entries: &u.entries,
        }
    }
}

/// The log's invariants, checked on the way in (before an update is written) and on the way out (every batch
/// replayed): terms never go back, snapshots never go back, entries follow the log without a gap and their terms
/// never decrease nor exceed the current term. Returns the tip after the update, following the semantics of
/// `DurableState::apply` (hard state, then snapshot, then truncation, then entries).
pub fn check_update(tip: &LogTip, update: &UpdateView<'_>) -> Result<LogTip, String> {
    let mut tip = *tip;
    if let Some(hard_state) = update.hard_state {
        if hard_state.term < tip.term {
            return Err(format!("the term goes back from {} to {}", tip.term, hard_state.term));
        }
        tip.term = hard_state.term;
    }
    if let Some(meta) = update.snapshot {
        if meta.index < tip.snapshot.index {
            return Err(format!("the snapshot goes back from index {} to {}", tip.snapshot.index, meta.index));
        }
        tip.snapshot = *meta;
        if meta.index >= tip.next_index.saturating_sub(1) {
            tip.next_index = meta.index + 1;
            tip.last_term = Some(meta.term);
        }
    }
    if let Some(from) = update.truncate_from {
        let next = from.max(tip.snapshot.index + 1);
        if next < tip.next_index {
            tip.next_index = next;
            tip.last_term = (next == tip.snapshot.index + 1).then_some(tip.snapshot.term);
        }
    }
    for entry in update.entries {
        if entry.index != tip.next_index {
            return Err(format!("entry {} where {} was expected", entry.index, tip.next_index));
        }
        if let Some(last_term) = tip.last_term
            && entry.term < last_term
        {
            return Err(format!(
                "entry {} has term {} below the previous entry's {last_term}",
                entry.index, entry.term
            ));
        }
        if entry.term > tip.term {
            return Err(format!("entry {} has term {} above the current term {}", entry.index, entry.term, tip.term));
        }
        tip.next_index += 1;
        tip.last_term = Some(entry.term);
    }
    Ok(tip)
}

/// What replay learned about one segment.
#[derive(Clone, Debug)]
pub struct SegmentInfo {
    pub name: SegmentName,
    pub path: PathBuf,
    pub len_bytes: u64,
    /// The highest entry index ever written to it (0 if none): once a snapshot covers it, the segment holds
    /// nothing the log needs.
    pub entry_index_max: Index,
}

/// An incomplete record at the end of the last segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TornTail {
    pub path: PathBuf,
    /// Where the incomplete record starts: the length the file is cut to.
    pub offset: u64,
    pub len_bytes: u64,
    pub reason: String,
}

/// The durable state as the WAL holds it.
pub struct Replayed {
    /// The state, with the snapshot's data not yet read (empty): see `snapshot`.
    pub state: DurableState,
    pub snapshot: Option<SnapshotRef>,
    pub tip: LogTip,
    pub hard_state: HardState,
    pub segments: Vec<SegmentInfo>,
    pub torn_tail: Option<TornTail>,
    /// A last segment whose header never became durable: its creation did not finish, so it holds nothing.
    pub unfinished_segment: Option<PathBuf>,
}

/// Reads every segment in order and rebuilds the durable state, checking every record on the way.
pub fn replay<F: FileSystem>(fs: &F, dir: &Path) -> Result<Replayed, Error> {
    let mut names: Vec<SegmentName> =
        fs.list_dir(dir).map_err(Error::io("list", dir))?.iter().filter_map(|n| SegmentName::parse(n)).collect();
    names.sort();
    let mut out = Replayed {
        state: DurableState::default(),
        snapshot: None,
        tip: LogTip::empty(),
        hard_state: HardState::default(),
        segments: Vec::new(),
        torn_tail: None,
        unfinished_segment: None,
    };
    for (i, name) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let path = dir.join(name.file_name());
        let bytes = fs.read(&path).map_err(Error::io("read", &path))?;
        let (records, tail) = segment::scan(&path, &bytes, last)?;
        let Some(first) = records.first() else {
            // Only the last segment can be found without a header (scan refuses incomplete records elsewhere).
            out.unfinished_segment = Some(path);
            continue;
        };
        let corrupt = |offset: u64, reason: String| Error::CorruptRecord { path: path.clone(), offset, reason };
        if first.kind != Kind::SegmentHeader {
            return Err(corrupt(0, format!("the segment begins with a {:?} record, not its header", first.kind)));
        }
        let header: SegmentHeader =
            postcard::from_bytes(first.body).map_err(|e| corrupt(0, format!("header does not decode: {e}")))?;
        if header.first_index != name.first_index {
            return Err(corrupt(
                0,
                format!("header says first index {}, the file name {}", header.first_index, name.first_index),
            ));
        }
        if out.segments.is_empty() || header.first_index != out.tip.next_index {
            // The first segment, or segments before this one were deleted by compaction while older ones
            // survived (a deletion a crash undid): the header, written when this segment began, is the authority
            // on where the log stood, so the log restarts here. What came before is needed only if the final
            // snapshot does not cover it, and that is checked at the end. (The log before can end past this
            // header's index: truncation is logical, and the record that cut the log back was in a deleted
            // segment.)
            out.state.entries.clear();
            out.tip.next_index = header.first_index;
            out.tip.last_term = None;
        }
        let header_update = PersistUpdate {
            hard_state: Some(header.hard_state),
            snapshot: header.snapshot.map(|r| Snapshot { meta: r.meta, data: Vec::new() }),
            truncate_from: None,
            entries: Vec::new(),
        };
        out.tip = check_update(&out.tip, &UpdateView::from(&header_update))
            .map_err(|reason| corrupt(0, format!("the header breaks the log: {reason}")))?;
        out.state.apply(&header_update);
        out.hard_state = header.hard_state;
        out.snapshot = header.snapshot.or(out.snapshot);
        let mut entry_index_max = 0;
        for scanned in &records[1..] {
            if scanned.kind != Kind::Batch {
                return Err(corrupt(scanned.offset, format!("a {:?} record inside a segment", scanned.kind)));
            }
            let batch: Batch = postcard::from_bytes(scanned.body)
                .map_err(|e| corrupt(scanned.offset, format!("batch does not decode: {e}")))?;
            let update = PersistUpdate {
                hard_state: batch.hard_state,
                snapshot: batch.snapshot.map(|r| Snapshot { meta: r.meta, data: Vec::new() }),
                truncate_from: batch.truncate_from,
                entries: batch.entries,
            };
            out.tip = check_update(&out.tip, &UpdateView::from(&update))
                .map_err(|reason| corrupt(scanned.offset, format!("the record breaks the log: {reason}")))?;
            out.state.apply(&update);
            if let Some(hard_state) = batch.hard_state {
                out.hard_state = hard_state;
            }
            if batch.snapshot.is_some() {
                out.snapshot = batch.snapshot;
            }
            if let Some(entry) = update.entries.last() {
                entry_index_max = entry_index_max.max(entry.index);
            }
        }
        let len_bytes = match &tail {
            Tail::Clean => bytes.len() as u64,
            Tail::Torn { offset, reason } => {
                out.torn_tail = Some(TornTail {
                    path: path.clone(),
                    offset: *offset,
                    len_bytes: bytes.len() as u64,
                    reason: reason.clone(),
                });
                *offset
            }
        };
        out.segments.push(SegmentInfo { name: *name, path, len_bytes, entry_index_max });
    }
    // Everything between the snapshot and the first entry must be there: a gap means a segment was lost.
    let snapshot_index = out.tip.snapshot.index;
    let first_held = out.state.entries.first().map_or(out.tip.next_index, |e| e.index);
    if first_held > snapshot_index + 1 {
        return Err(Error::MissingEntries {
            dir: dir.to_path_buf(),
            first_missing: snapshot_index + 1,
            last_missing: first_held - 1,
        });
    }
    // The read path re-checks what the write path checked: the log it hands back is contiguous and in term order.
    assert!(
        out.state.entries.windows(2).all(|w| w[1].index == w[0].index + 1 && w[1].term >= w[0].term),
        "replay produced a log with a gap or a term going back"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: Index, term: Term) -> Entry {
        Entry { index, term, data: vec![] }
    }

    fn view(update: &PersistUpdate) -> UpdateView<'_> {
        UpdateView::from(update)
    }

    /// The batch body written by hand decodes, with postcard, to the update it was written from, and is byte for
    /// byte what postcard would have written.
    #[test]
    fn hand_encoding_is_postcards_encoding() {
        let snapshot = SnapshotRef { meta: SnapshotMeta { index: 300, term: 9 }, body_size_bytes: 77, body_crc32c: 5 };
        let entries: Vec<Entry> = (0..40u64)
            .map(|i| Entry { index: (1 << 35) + i, term: 200 + i / 7, data: vec![i as u8; (i * 13) as usize] })
            .collect();
        let updates = [
            PersistUpdate::default(),
            PersistUpdate {
                hard_state: Some(HardState { term: 1 << 40, voted_for: Some(3) }),
                snapshot: None,
                truncate_from: Some(1 << 35),
                entries: entries.clone(),
            },
            PersistUpdate { truncate_from: Some(127), entries: entries[..1].to_vec(), ..Default::default() },
        ];
        for (k, update) in updates.iter().enumerate() {
            let with_snapshot = (k == 1).then_some(&snapshot);
            let mut by_hand = Vec::new();
            encode_batch(&mut by_hand, update, with_snapshot).unwrap();
            let expected = Batch {
                hard_state: update.hard_state,
                snapshot: with_snapshot.copied(),
                truncate_from: update.truncate_from,
                entries: update.entries.clone(),
            };
            let body = &by_hand[record::HEADER_SIZE_BYTES..];
            assert_eq!(body, postcard::to_stdvec(&expected).unwrap().as_slice(), "update {k}");
            assert_eq!(postcard::from_bytes::<Batch>(body).unwrap(), expected, "update {k}");
        }
    }

    #[test]
    fn check_update_follows_durable_state_apply() {
        let hs = HardState { term: 3, voted_for: None };
        let tip = LogTip::empty();
        let append =
            PersistUpdate { hard_state: Some(hs), entries: vec![entry(1, 1), entry(2, 3)], ..Default::default() };
        let tip = check_update(&tip, &view(&append)).unwrap();
        assert_eq!((tip.next_index, tip.last_term, tip.term), (3, Some(3), 3));
        let conflict = PersistUpdate { truncate_from: Some(2), entries: vec![entry(2, 2)], ..Default::default() };
        assert_eq!(check_update(&tip, &view(&conflict)).unwrap().next_index, 3);
        let gap = PersistUpdate { entries: vec![entry(5, 3)], ..Default::default() };
        assert!(check_update(&tip, &view(&gap)).unwrap_err().contains("entry 5 where 3"));
        let back = PersistUpdate { entries: vec![entry(3, 2)], ..Default::default() };
        assert!(check_update(&tip, &view(&back)).unwrap_err().contains("below the previous"));
        let ahead = PersistUpdate { entries: vec![entry(3, 4)], ..Default::default() };
        assert!(check_update(&tip, &view(&ahead)).unwrap_err().contains("above the current term"));
        let old_term = PersistUpdate { hard_state: Some(HardState { term: 2, voted_for: None }), ..Default::default() };
        assert!(check_update(&tip, &view(&old_term)).unwrap_err().contains("term goes back"));
        let with_snapshot = PersistUpdate {
            snapshot: Some(Snapshot { meta: SnapshotMeta { index: 2, term: 3 }, data: vec![] }),
            ..Default::default()
        };
        let tip_with_snapshot = check_update(&tip, &view(&with_snapshot)).unwrap();
        let older = PersistUpdate {
            snapshot: Some(Snapshot { meta: SnapshotMeta { index: 1, term: 1 }, data: vec![] }),
            ..Default::default()
        };
        assert!(check_update(&tip_with_snapshot, &view(&older)).unwrap_err().contains("snapshot goes back"));
        let snapshot_past_the_log = PersistUpdate {
            snapshot: Some(Snapshot { meta: SnapshotMeta { index: 10, term: 3 }, data: vec![] }),
            ..Default::default()
        };
        let after = check_update(&tip, &view(&snapshot_past_the_log)).unwrap();
        assert_eq!((after.next_index, after.last_term), (11, Some(3)));
    }
}
