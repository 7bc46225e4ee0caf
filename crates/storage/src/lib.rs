//! keel-storage: where a Raft node's durable state lives. The [`Storage`] trait, [`MemStorage`] (in memory, for
//! the simulator) and [`DiskStorage`] (a write-ahead log and snapshot files over a small [`FileSystem`] trait, run
//! on the real disk by [`StdFs`] and on a simulated one, [`SimFs`], that loses what was not synced at a crash).
//!
//! The contract being kept is the core's: `keel_raft::PersistUpdate` is applied as `keel_raft::DurableState::apply`
//! describes, durably, before `persist` returns; `load` returns exactly that state.
//!
//! # On-disk layout
//!
//! ```text
//! <dir>/
//!   wal-0000000000-00000000000000000001.log    segment: wal-<seq>-<first index>.log, zero-padded so names sort
//!   wal-0000000001-00000000000000052113.log    the last segment is the active one (appended to)
//!   snap-<index>-<term>-<crc32c>.snap          the snapshot the WAL refers to (one record)
//!   *.tmp                                      a snapshot being written; deleted at open
//! ```
//!
//! The sequence number orders segments; the first index (the log's next index when the segment began) is for the
//! reader and for compaction. Both are needed because truncation is logical (below): after the log is cut back, a
//! newer segment can begin at a lower index than an older one.
//!
//! # Records
//!
//! Every WAL record and every snapshot file uses one framing (see `record.rs`):
//!
//! ```text
//!  0               4               8               12        13       14
//!  +---------------+---------------+---------------+---------+--------+---------------------+
//!  | header_crc32c | body_len      | body_crc32c   | version | kind   | body (postcard)     |
//!  | u32 LE        | u32 LE        | u32 LE        | u8 = 1  | u8     | body_len bytes      |
//!  +---------------+---------------+---------------+---------+--------+---------------------+
//!   header_crc32c covers bytes 4..14, body_crc32c the body
//! ```
//!
//! Kinds: `1` segment header `{first_index, hard_state, snapshot_ref}` (the first record of every segment),
//! `2` batch `{hard_state?, snapshot_ref?, truncate_from?, entries}` (one per persist), `3` snapshot (a snapshot
//! file's only record). A snapshot reference is `{meta, body_size_bytes, body_crc32c}` of the snapshot file.
//! Bodies are postcard; a batch's entries are written by hand in postcard's own format (one copy of each entry's
//! data instead of one serde call per byte), so reading goes through postcard unchanged.
//!
//! # Writing
//!
//! - **One persist is one batch record, written with one `write` and made durable with one `fdatasync`**,
//!   however many entries it holds (group commit). Its one checksum is what makes the update atomic: after a
//!   crash a persist is either wholly there or wholly absent.
//! - **A new snapshot file** is written to `<name>.tmp`, fsynced, renamed into place and the directory fsynced
//!   before the batch that refers to it is written.
//! - **Suffix truncation is logical**: the batch carries `truncate_from` and replay applies it. It is not an
//!   `ftruncate` of the segment, deliberately: cutting the file first and appending second would make the cut
//!   durable on its own if a crash came between them, which can take a newer hard state (a vote) with it, or
//!   leave a half-applied update; with the truncation inside the batch it is durable exactly when the entries that
//!   replace the cut ones are, in the same fdatasync. The cost is that cut entries stay on disk until compaction
//!   deletes their segment. `ftruncate` is used only to cut a torn tail at recovery.
//! - **Rotation**: once the active segment reaches [`SEGMENT_SIZE_BYTES_TARGET`], the next persist goes to a new
//!   segment that begins with a header holding the current hard state and snapshot reference, so that no earlier
//!   segment is ever needed for them; the segment is created, written, fsynced, and the directory fsynced.
//! - **Prefix compaction**: after a persist that carries a new snapshot is durable, the segments at the front
//!   whose entries the snapshot covers are deleted whole (never the active one), and so is the old snapshot file.
//!
//! # Recovery rules (`DiskStorage::open`)
//!
//! - An incomplete record at the end of the last segment is a write a crash cut short (it was never
//!   acknowledged): it is cut off with a `tracing` warning naming the file and offset. Only missing bytes count,
//!   or a last record whose bytes are zeros from its start or from a page boundary inside it to the end of the
//!   file (a file system that made the new length durable before the data, as XFS may). The length is covered by
//!   the header checksum, so a flipped bit is never mistaken for a torn write, with one exception that the zero
//!   rule makes: damage in the last record whose own data ends in zeros from a page boundary on is cut like one.
//! - A checksum failure (or an impossible record) anywhere else is corruption: `open` refuses with
//!   [`Error::CorruptRecord`] naming the file, the offset and what to do. Entries after it may have been
//!   acknowledged, so they are never dropped silently.
//! - A snapshot file that is missing or does not match its reference is [`Error::SnapshotMissing`] or
//!   [`Error::SnapshotCorrupt`]; an unknown format version is [`Error::UnknownVersion`]; a segment missing from the
//!   middle of the log is [`Error::MissingEntries`]. (A segment whose header disagrees with the log before it
//!   restarts the log there: the header is the authority, written when the segment began, and older segments
//!   survive only when a crash undid their deletion; the final snapshot must then cover everything before.)
//! - Garbage (temporary files, unreferenced snapshots, covered segments, a segment whose creation never finished)
//!   is deleted.
//!
//! **Fail-stop**: a failed write or fsync stops the storage: the error is returned and every later call returns
//! [`Error::Stopped`]. An fsync is never retried (PostgreSQL's fsyncgate: after a failed fsync the kernel may
//! drop the dirty pages, and the next fsync succeeds without them). Restarting reads back what is really there.
//!
//! Every update is checked before it is written and every batch again after it is read, by the same function
//! (`wal::check_update`): terms and snapshots never go back, entries are contiguous, their terms never decrease.
mod disk_storage;
mod error;
mod fs;
mod mem_storage;
mod record;
mod segment;
pub mod sim_fs;
mod snapshot_file;
mod std_fs;
mod wal;

pub use disk_storage::{
    DiskStorage, Options, Recovery, SEGMENT_SIZE_BYTES_TARGET, WAL_BUFFER_CAPACITY_BYTES_RETAINED_MAX,
};
pub use error::Error;
pub use fs::{FileSystem, WalFile};
pub use mem_storage::MemStorage;
pub use record::{FORMAT_VERSION, SNAPSHOT_BODY_SIZE_BYTES_MAX, WAL_RECORD_BODY_SIZE_BYTES_MAX};
pub use sim_fs::{Faults, OpCounts, SimFs};
pub use std_fs::StdFs;
pub use wal::TornTail;

use keel_raft::{DurableState, PersistUpdate};

/// A place that keeps a node's [`DurableState`]. Drivers call it; the core never does.
///
/// `persist` takes the update by reference: the core hands its `Ready` over by value, but the driver still needs
/// nothing else from the update, and neither implementation needs to own it. `DiskStorage` encodes straight from
/// the borrowed entries into its reused buffer (no copy); `MemStorage` must copy them anyway, since it keeps them.
pub trait Storage {
    type Error: std::error::Error;

    /// Makes `update` durable, atomically, before returning: after `Ok`, a crash keeps all of it; a crash during
    /// the call keeps all of it or none of it.
    fn persist(&mut self, update: &PersistUpdate) -> Result<(), Self::Error>;

    /// Reads back everything that was made durable.
    fn load(&self) -> Result<DurableState, Self::Error>;
}
