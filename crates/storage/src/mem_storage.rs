//! In-memory durable storage. A crash keeps exactly what was persisted; the simulator models "handed to storage
//! but not yet durable" by dropping a Ready before it reaches `persist`.
use keel_raft::{DurableState, PersistUpdate};

use crate::Storage;

#[derive(Clone, Debug, Default)]
pub struct MemStorage {
    state: DurableState,
}

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
}

impl Storage for MemStorage {
    type Error = std::convert::Infallible;

    fn persist(&mut self, update: &PersistUpdate) -> Result<(), Self::Error> {
        self.state.apply(update);
        Ok(())
    }

    fn load(&self) -> Result<DurableState, Self::Error> {
        Ok(self.state.clone())
    }
}
