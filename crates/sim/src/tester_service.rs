//! The tester's service: 6.824's applier, as a [`keel_replica::Service`]. Its state is every command applied so
//! far, in order; its snapshot is that list with its last index, so a restored node can be checked command by
//! command against every other.
use keel_raft::Index;
use keel_replica::Service;

/// The snapshot image: the last index and every command through it.
pub type SnapshotImage = (Index, Vec<Vec<u8>>);

#[derive(Default)]
pub struct TesterService {
    /// `commands[k]` is the command at index `k + 1`.
    commands: Vec<Vec<u8>>,
}

impl Service for TesterService {
    type Output = ();

    fn apply(&mut self, index: Index, command: &[u8]) {
        // The checker verifies the order of applies; here a gap or repeat only resizes, so the image stays
        // indexable and the checker, not a panic, reports the problem.
        let position = usize::try_from(index.saturating_sub(1)).unwrap_or(usize::MAX);
        self.commands.resize(position, Vec::new());
        self.commands.push(command.to_vec());
    }

    fn snapshot(&self) -> Vec<u8> {
        let image = (self.commands.len() as Index, &self.commands);
        postcard::to_stdvec(&image).unwrap_or_default()
    }

    fn restore(&mut self, index: Index, snapshot: &[u8]) -> Result<(), String> {
        let (image_index, commands) =
            postcard::from_bytes::<SnapshotImage>(snapshot).map_err(|e| format!("snapshot does not decode: {e}"))?;
        if image_index != index || commands.len() as Index != index {
            return Err(format!(
                "snapshot claims index {image_index} with {} commands, Raft says {index}",
                commands.len()
            ));
        }
        self.commands = commands;
        Ok(())
    }
}
