//! In-memory durable storage, with a switch that crashes the machine in the middle of a persist.
//!
//! A crash keeps exactly what was persisted. "Handed to storage but not yet durable" is modelled by a persist
//! that fails when the node's crash switch is armed: the update is lost, and the replica stops before anything
//! that depended on it leaves the node.
use std::cell::Cell;
use std::rc::Rc;

use keel_raft::{DurableState, PersistUpdate, Storage};

#[derive(Clone, Default)]
pub struct MemStorage {
    state: DurableState,
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
        let encoded = postcard::to_stdvec(&(&self.state.hard_state, &self.state.entries));
        encoded.map_or(usize::MAX, |bytes| bytes.len())
    }

    pub fn state(&self) -> &DurableState {
        &self.state
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
        self.state.apply(update);
        Ok(())
    }

    fn load(&self) -> Result<DurableState, Self::Error> {
        Ok(self.state.clone())
    }
}
