//! A simulated node's durable storage: keel's real `DiskStorage` (WAL and snapshot files) on a simulated disk that
//! loses and tears unsynced writes at a crash, or plain memory; and a crash switch that kills the machine in the
//! middle of a persist.
//!
//! Either way the node also keeps the *acknowledged* state: every update whose persist returned, applied as the
//! contract says (`DurableState::apply`). The checks read it (cheap, every event), and every restart holds the
//! disk to it: what the WAL recovers after a power loss must be exactly the acknowledged state, or that plus the
//! one update that was in flight when the power went. Anything else (an acknowledged entry lost, a torn update
//! half-applied, a recovery that refuses to start) fails the run with its seed.
use std::cell::Cell;
use std::rc::Rc;

use keel_raft::{DurableState, PersistUpdate, Rng};
use keel_storage::{DiskStorage, Faults, Options, SimFs, Storage};

/// Where a node's WAL lives on its (simulated) disk.
const DATA_DIR: &str = "/var/lib/keel";
/// The power may go at any of the first this-many disk operations of a persist (its write, its fdatasync, a
/// segment rotation's create and directory sync): each cut leaves a different state for recovery to handle.
const CRASH_POINTS_PER_PERSIST: u64 = 4;

/// Why a persist failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeStorageError {
    /// The machine died while the update was on its way to the disk (the simulator's crash switch).
    #[error("the machine crashed before the update was durable")]
    CrashedBeforeDurable,
    /// The disk failed a write or an fdatasync (an injected I/O error); the WAL stopped (fail-stop).
    #[error("the disk failed (injected I/O error): {0}")]
    InjectedIoError(keel_storage::Error),
    /// The WAL failed without any injected fault: a bug.
    #[error("the WAL failed: {0}")]
    Disk(#[from] keel_storage::Error),
}

/// What the disk went through, for reports and for tests that assert a seed still exercises recovery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DiskCounts {
    /// Times the WAL was opened after a power loss and recovered the acknowledged state.
    pub recoveries: u64,
    /// Of those, with an update in flight at the power loss: found on disk, or not.
    pub in_flight_found: u64,
    pub in_flight_lost: u64,
    /// Recoveries that cut a torn last record.
    pub torn_tails_cut: u64,
    /// Injected I/O errors that stopped the node (counted by the cluster).
    pub disk_errors: u64,
}

impl std::ops::AddAssign for DiskCounts {
    fn add_assign(&mut self, other: DiskCounts) {
        self.recoveries += other.recoveries;
        self.in_flight_found += other.in_flight_found;
        self.in_flight_lost += other.in_flight_lost;
        self.torn_tails_cut += other.torn_tails_cut;
        self.disk_errors += other.disk_errors;
    }
}

/// The real WAL on a simulated disk.
struct Disk {
    fs: SimFs,
    /// `None` between a crash and the next restart.
    wal: Option<DiskStorage<SimFs>>,
    options: Options,
}

pub struct NodeStorage {
    /// The acknowledged state (see the module docs), kept by keel's in-memory storage.
    acknowledged: keel_storage::MemStorage,
    disk: Option<Disk>,
    /// An update whose persist the crash switch cut short: recovery may or may not find it.
    in_flight: Option<PersistUpdate>,
    /// Armed by the simulator: the next persist is cut short by a crash.
    crash_switch: Rc<Cell<bool>>,
    /// Armed by the simulator: the disk fails an operation of the next persist.
    io_error_switch: Rc<Cell<bool>>,
    /// Draws where in a persist the power goes.
    rng: Rng,
    counts: DiskCounts,
}

impl NodeStorage {
    /// In memory only.
    pub fn in_memory(seed: u64) -> NodeStorage {
        NodeStorage {
            acknowledged: keel_storage::MemStorage::default(),
            disk: None,
            in_flight: None,
            crash_switch: Rc::default(),
            io_error_switch: Rc::default(),
            rng: Rng::derive(seed, 0xd15c),
            counts: DiskCounts::default(),
        }
    }

    /// keel's `DiskStorage` on a simulated disk of its own, with segments of about `segment_size_bytes`.
    pub fn on_simulated_disk(seed: u64, segment_size_bytes: u64) -> Result<NodeStorage, String> {
        let fs = SimFs::new(seed);
        let options = Options { segment_size_bytes_target: segment_size_bytes };
        let wal = DiskStorage::open_with(fs.clone(), DATA_DIR, options)
            .map_err(|e| format!("cannot create the WAL on an empty disk: {e}"))?;
        Ok(NodeStorage { disk: Some(Disk { fs, wal: Some(wal), options }), ..NodeStorage::in_memory(seed) })
    }

    pub fn on_disk(&self) -> bool {
        self.disk.is_some()
    }

    pub fn disk_counts(&self) -> DiskCounts {
        self.counts
    }

    /// The acknowledged state: what survives a crash.
    pub fn state(&self) -> &DurableState {
        self.acknowledged.state()
    }

    /// Bytes of Raft state (term, vote, log) without the snapshot: the quantity 6.824 bounds (`RaftStateSize`).
    pub fn raft_state_size_bytes(&self) -> usize {
        self.acknowledged.raft_state_size_bytes()
    }

    /// The switch that makes the next persist fail as a crash in its middle would (shared with the simulator's
    /// slot, which keeps it while the storage is inside a running replica).
    pub fn crash_switch(&self) -> Rc<Cell<bool>> {
        Rc::clone(&self.crash_switch)
    }

    /// The switch that makes the disk fail one operation (a write, an fdatasync, a directory sync) of the next
    /// persist. Only a node on a simulated disk has one to arm (`None` in memory).
    pub fn io_error_switch(&self) -> Option<Rc<Cell<bool>>> {
        self.disk.as_ref().map(|_| Rc::clone(&self.io_error_switch))
    }

    /// The machine lost power: the disk keeps what was synced and a random part of what was not (chosen from
    /// `seed`); the WAL must be opened again before the node restarts.
    pub fn power_loss(&mut self, seed: u64) {
        self.crash_switch.set(false);
        self.io_error_switch.set(false);
        if let Some(disk) = &mut self.disk {
            disk.wal = None;
            disk.fs.crash(seed);
        }
    }

    /// Opens the WAL after a power loss and holds what it recovers to the acknowledged state: exactly it, or it
    /// plus the update that was in flight. Afterwards that recovered state is the acknowledged one.
    pub fn recover(&mut self) -> Result<(), String> {
        let in_flight = self.in_flight.take();
        let Some(disk) = &mut self.disk else { return Ok(()) };
        if disk.wal.is_some() {
            return Ok(()); // No power loss since it was opened.
        }
        let wal = DiskStorage::open_with(disk.fs.clone(), DATA_DIR, disk.options)
            .map_err(|e| format!("the WAL does not open after a power loss: {e}"))?;
        let recovered = wal.load().map_err(|e| format!("the WAL does not load after a power loss: {e}"))?;
        self.counts.torn_tails_cut += u64::from(wal.recovery().torn_tail.is_some());
        disk.wal = Some(wal);
        if &recovered == self.acknowledged.state() {
            self.counts.recoveries += 1;
            self.counts.in_flight_lost += u64::from(in_flight.is_some());
            return Ok(());
        }
        if let Some(update) = in_flight {
            let mut with_update = self.acknowledged.clone();
            let Ok(()) = with_update.persist(&update);
            if &recovered == with_update.state() {
                self.acknowledged = with_update;
                self.counts.recoveries += 1;
                self.counts.in_flight_found += 1;
                return Ok(());
            }
        }
        Err(format!(
            "the WAL recovered a state that was never acknowledged: {} (acknowledged: {})",
            describe(&recovered),
            describe(self.acknowledged.state())
        ))
    }
}

/// A durable state in a line: term, vote, snapshot point, log range.
fn describe(state: &DurableState) -> String {
    let snapshot = state.snapshot.as_ref().map(|s| (s.meta.index, s.meta.term));
    let first = state.entries.first().map(|e| (e.index, e.term));
    let last = state.entries.last().map(|e| (e.index, e.term));
    format!(
        "term {} vote {:?}, snapshot {snapshot:?}, entries {first:?}..={last:?} ({} entries)",
        state.hard_state.term,
        state.hard_state.voted_for,
        state.entries.len()
    )
}

impl Storage for NodeStorage {
    type Error = NodeStorageError;

    fn persist(&mut self, update: &PersistUpdate) -> Result<(), Self::Error> {
        if self.crash_switch.replace(false) {
            if let Some(disk) = &mut self.disk
                && let Some(wal) = &mut disk.wal
            {
                // The power goes partway through this persist: at its write, its fdatasync, or later.
                let cut = disk.fs.ops() + self.rng.range(0, CRASH_POINTS_PER_PERSIST);
                disk.fs.set_faults(Faults { halt_after_ops: Some(cut), ..Faults::default() });
                // Whatever the WAL says, the machine is dead before the replica hears back.
                let _ = wal.persist(update);
            }
            self.in_flight = Some(update.clone());
            return Err(NodeStorageError::CrashedBeforeDurable);
        }
        if let Some(disk) = &mut self.disk
            && let Some(wal) = &mut disk.wal
        {
            if self.io_error_switch.replace(false) {
                let op = disk.fs.ops() + 1 + self.rng.range(0, CRASH_POINTS_PER_PERSIST);
                disk.fs.set_faults(Faults { fail_op: Some(op), ..Faults::default() });
                let result = wal.persist(update);
                disk.fs.set_faults(Faults::default());
                if let Err(e) = result {
                    // Stopped: whether the update reached the disk is unknown, as after a real failed fsync.
                    self.in_flight = Some(update.clone());
                    return Err(NodeStorageError::InjectedIoError(e));
                }
                // The failing operation came after this persist's last one: it went through.
            } else {
                wal.persist(update)?;
            }
        }
        let Ok(()) = self.acknowledged.persist(update);
        Ok(())
    }

    fn load(&self) -> Result<DurableState, Self::Error> {
        Ok(self.acknowledged.state().clone())
    }
}
