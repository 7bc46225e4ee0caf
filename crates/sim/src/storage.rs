//! In-memory durable storage (keel-storage's `MemStorage`), with a switch that crashes the machine in the middle of
//! a persist.
//!
//! A crash keeps exactly what was persisted. "Handed to storage but not yet durable" is modelled by a persist
//! that fails when the node's crash switch is armed: the update is lost, and the replica stops before anything
//! that depended on it leaves the node.
use std::cell::Cell;
use std::rc::Rc;

use keel_raft::{DurableState, PersistUpdate};
use keel_storage::Storage;

#[derive(Clone, Default)]
pub struct MemStorage {
    inner: keel_storage::MemStorage,
    /// Armed by the simulator: the next persist is lost with the machine.
    crash_switch: Rc<Cell<bool>>,
}

/// The machine died while an update was on its way to the disk.
#[derive(Debug, thiserror::Error)]
#[error("the machine crashed before the update was durable")]
pub struct CrashedBeforeDurable;

impl MemStorage {
    /// Bytes of Raft state (term, vote, log) as it would be encoded on disk, without the snapshot: the quantity
    /// 6.824 bounds (`RaftStateSize`).
    pub fn raft_state_size_bytes(&self) -> usize {
        self.inner.raft_state_size_bytes()
    }

    pub fn state(&self) -> &DurableState {
        self.inner.state()
    }

    /// The switch that makes the next persist fail as a crash would (shared with the simulator's slot, which
    /// keeps it while the storage is inside a running replica).
    pub fn crash_switch(&self) -> Rc<Cell<bool>> {
        Rc::clone(&self.crash_switch)
    }
}

impl Storage for MemStorage {
    type Error = CrashedBeforeDurable;

    fn persist(&mut self, update: &PersistUpdate) -> Result<(), Self::Error> {
        if self.crash_switch.replace(false) {
            return Err(CrashedBeforeDurable);
        }
        let Ok(()) = self.inner.persist(update);
        Ok(())
    }

    fn load(&self) -> Result<DurableState, Self::Error> {
        let Ok(state) = self.inner.load();
        Ok(state)
    }
}
