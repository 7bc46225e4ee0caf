//! What a peer's queue holds, and the byte budget that bounds it beside its message count.
//!
//! The count bound (`queue_messages_max`) is enforced by the channel itself. Bytes cannot be known without
//! encoding, which `send` must not do (a 64 MiB snapshot would stall the caller), so the byte budget
//! (`queue_bytes_max`) counts the size the caller declares with `Transport::send_sized`. It exists for the
//! messages that matter: a core that re-sends a whole snapshot with every heartbeat to an unreachable peer
//! would otherwise pin `queue_messages_max` snapshots.
use std::sync::atomic::{AtomicU64, Ordering};

/// One queued message and the size its sender declared for it (0 for `Transport::send`).
pub(crate) struct Queued<M> {
    pub(crate) message: M,
    pub(crate) size_bytes_hint: u64,
}

/// Declared bytes waiting in one peer's queue.
#[derive(Debug, Default)]
pub(crate) struct QueuedBytes(AtomicU64);

impl QueuedBytes {
    /// Reserves `size_bytes` if the budget allows. A message alone in the queue is always allowed (its size
    /// is bounded by `frame_bytes_max`, not by the queue): otherwise a snapshot larger than the budget could
    /// never be sent.
    pub(crate) fn try_reserve(&self, size_bytes: u64, budget_bytes: u64) -> Result<(), u64> {
        if size_bytes == 0 {
            return Ok(());
        }
        // Add first, then check, so that concurrent senders cannot both slip under the budget.
        let before = self.0.fetch_add(size_bytes, Ordering::AcqRel);
        if before > 0 && before.saturating_add(size_bytes) > budget_bytes {
            self.release(size_bytes);
            return Err(before);
        }
        Ok(())
    }

    /// Gives back what a message reserved, once it left the queue (or never entered it).
    pub(crate) fn release(&self, size_bytes: u64) {
        if size_bytes == 0 {
            return;
        }
        let before = self.0.fetch_sub(size_bytes, Ordering::AcqRel);
        assert!(before >= size_bytes, "queued bytes underflow: {before} - {size_bytes}");
    }

    pub(crate) fn get(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_admits_up_to_its_size_and_one_oversized_message_alone() {
        let bytes = QueuedBytes::default();
        assert_eq!(bytes.try_reserve(2000, 1000), Ok(()), "alone in the queue: admitted");
        assert_eq!(bytes.try_reserve(1, 1000), Err(2000));
        bytes.release(2000);
        assert_eq!(bytes.try_reserve(600, 1000), Ok(()));
        assert_eq!(bytes.try_reserve(400, 1000), Ok(()));
        assert_eq!(bytes.try_reserve(1, 1000), Err(1000));
        assert_eq!(bytes.try_reserve(0, 1000), Ok(()), "undeclared sizes are not counted");
        bytes.release(600);
        bytes.release(400);
        assert_eq!(bytes.get(), 0);
    }
}
