//! The replicated state machine, as the replica sees it.
use keel_raft::Index;

/// A deterministic state machine: every replica that applies the same commands in the same order reaches the
/// same state and returns the same outputs. 6.824's service API, made into a trait: apply a command, take a
/// snapshot, restore one.
pub trait Service {
    /// What applying a command returns to the client that proposed it (a read's value, a write's result).
    type Output;

    /// Applies the committed command at `index`. Must not fail: a command the service cannot apply (malformed,
    /// over a limit) is still applied, as an output that says so, so every replica stays identical.
    fn apply(&mut self, index: Index, command: &[u8]) -> Self::Output;

    /// The whole state, through the last applied index, as bytes.
    fn snapshot(&self) -> Vec<u8>;

    /// Replaces the whole state with a snapshot taken at `index`. An error means these bytes are not a snapshot
    /// of this service (a bug or corruption): the replica stops, it never runs on a state it cannot trust.
    fn restore(&mut self, index: Index, snapshot: &[u8]) -> Result<(), String>;
}
