//! What replicas say to each other over the transport: Raft's own messages, and a follower's requests forwarded
//! to the leader with the leader's answers.
//!
//! Forwarding is what lets a client use any node (etcd and Consul behave this way): a follower sends the encoded
//! command to the leader it knows, the leader proposes it as if a client had asked it directly, and answers with
//! the outcome once it has applied the entry. The follower then waits until it has applied that index itself
//! before it answers its client, so a client that next reads from the same follower sees its own write.
use keel_raft::{Index, Message, MessageBody, NodeId};
use serde::{Deserialize, Serialize};

/// One message between two replicas. `O` is the service's output (the reply to a command).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PeerMessage<O> {
    /// A Raft message; `Message::to` names the receiver.
    Raft(Message),
    /// A command a client gave the sender, for the receiver to propose as leader. `request_id` is the sender's,
    /// echoed in the answer.
    Forward { request_id: u64, command: Vec<u8> },
    /// The answer to a `Forward`.
    Forwarded { request_id: u64, result: ForwardResult<O> },
}

impl<O> PeerMessage<O> {
    /// Roughly how many bytes it takes on the wire: the payloads it carries (entries, a snapshot, a command) plus
    /// a fixed allowance. A transport bounds its queues by this, so a dead peer cannot pin gigabytes of snapshots.
    pub fn size_hint_bytes(&self) -> u64 {
        const FIXED_BYTES: u64 = 64;
        let payload = match self {
            PeerMessage::Raft(message) => match &message.body {
                MessageBody::AppendEntries { entries, .. } => {
                    entries.iter().map(|e| e.data.len() as u64 + 24).sum::<u64>()
                }
                MessageBody::InstallSnapshot { data, .. } => data.len() as u64,
                _ => 0,
            },
            PeerMessage::Forward { command, .. } => command.len() as u64,
            PeerMessage::Forwarded { .. } => 0,
        };
        FIXED_BYTES + payload
    }
}

/// How a forwarded command ended, as far as the leader knows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ForwardResult<O> {
    /// Committed and applied at `index`; the service answered `output` (every replica answers the same).
    Applied { index: Index, output: O },
    /// The receiver does not lead (any more): nothing was proposed. `leader` is who it thinks does.
    NotLeader { leader: Option<NodeId> },
    /// Proposed, but another entry won its index: it will never apply. Safe to propose again.
    NotApplied,
    /// Proposed, and the leader can no longer tell whether it will commit (it lost its leadership, or stopped).
    Unknown { reason: String },
}
