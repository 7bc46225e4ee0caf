//! The versioned handshake that opens every peer connection.
//!
//! ```text
//! dialer                                   acceptor
//!   | -- frame: Hello { magic "KEEL", protocol_version, cluster_id, from, to } -->
//!   |                                        checks: magic, version, cluster id, to == own id,
//!   |                                                from is a configured peer (and not itself)
//!   | <-- frame: HelloReply::Accepted ---------|   then the dialer's messages flow, one way
//!   | <-- frame: HelloReply::Refused { reason } and close
//! ```
//! The acceptor decodes the magic and the version first (postcard lays the fields out in order, and a
//! decoder ignores bytes after what it asked for), so a peer that speaks another version of `Hello` gets a
//! refusal naming both versions rather than a decode error. Both sides bound the exchange with
//! `handshake_timeout_ms`.
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::NodeId;
use crate::frame::{self, FrameError};

/// The first four bytes of every `Hello` body: a connection from anything that is not a keel peer (an HTTP
/// client on the wrong port, a port scanner) is refused by name.
pub const MAGIC: [u8; 4] = *b"KEEL";

/// The version of this wire protocol (the handshake, the framing and the meaning of frames after it). A peer
/// speaking another version is refused: bump it whenever a change would make old and new nodes misread each
/// other. 2: Raft's `CommitNotice` message.
pub const PROTOCOL_VERSION: u16 = 2;

/// Largest handshake frame body either side accepts: a `Hello` is a few bytes plus the cluster id, a
/// refusal a sentence. Keeps a stranger from making us read megabytes before we know who it is.
pub const HANDSHAKE_FRAME_BYTES_MAX: usize = 4096;

/// Longest cluster id (bytes): it travels in every `Hello`, which must fit [`HANDSHAKE_FRAME_BYTES_MAX`].
pub const CLUSTER_ID_BYTES_MAX: usize = 256;

/// The dialer's first frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub magic: [u8; 4],
    pub protocol_version: u16,
    pub cluster_id: String,
    /// The dialing node.
    pub from: NodeId,
    /// The node the dialer believes it reached.
    pub to: NodeId,
}

impl Hello {
    /// The `Hello` this version of keel sends.
    pub fn new(cluster_id: &str, from: NodeId, to: NodeId) -> Hello {
        Hello { magic: MAGIC, protocol_version: PROTOCOL_VERSION, cluster_id: cluster_id.to_owned(), from, to }
    }

    /// This `Hello` as one frame.
    pub fn to_frame(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::new();
        frame::encode_frame(&mut out, self, HANDSHAKE_FRAME_BYTES_MAX)?;
        Ok(out)
    }
}

/// The beginning of every `Hello` of every version: what the acceptor reads first.
#[derive(Deserialize)]
struct HelloHead {
    magic: [u8; 4],
    protocol_version: u16,
}

/// The acceptor's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    Accepted,
    Refused { reason: String },
}

impl HelloReply {
    /// This reply as one frame.
    pub fn to_frame(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::new();
        frame::encode_frame(&mut out, self, HANDSHAKE_FRAME_BYTES_MAX)?;
        Ok(out)
    }
}

/// Who the acceptor is, for checking a `Hello`.
pub struct AcceptorIdentity<'a> {
    pub cluster_id: &'a str,
    pub node_id: NodeId,
    pub peers: &'a BTreeMap<NodeId, String>,
}

/// Why an acceptor refuses a `Hello`. Each says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    BadMagic { magic: [u8; 4] },
    ProtocolVersion { theirs: u16, ours: u16 },
    ClusterId { theirs: String, ours: String },
    WrongTarget { to: NodeId, own: NodeId },
    FromItself { from: NodeId },
    UnknownPeer { from: NodeId, known: Vec<NodeId> },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::BadMagic { magic } => {
                write!(f, "bad magic {magic:02x?} (expected {MAGIC:02x?} \"KEEL\"): not a keel peer")
            }
            Refusal::ProtocolVersion { theirs, ours } => write!(
                f,
                "protocol version {theirs} is not this node's {ours}: run the same keel version on every node"
            ),
            Refusal::ClusterId { theirs, ours } => write!(
                f,
                "cluster id {theirs:?} is not this node's {ours:?}: the dialer's peer list points into another \
                 cluster"
            ),
            Refusal::WrongTarget { to, own } => write!(
                f,
                "the dialer wants node {to} but this is node {own}: its peer list has a wrong address for {to}"
            ),
            Refusal::FromItself { from } => {
                write!(f, "the dialer claims to be node {from}, which is this node's own id: duplicate node ids?")
            }
            Refusal::UnknownPeer { from, known } => write!(
                f,
                "node {from} is not among this node's configured peers {known:?}: add it to the peer list of \
                 every node"
            ),
        }
    }
}

/// Why a `Hello` body was not accepted: a refusal (answered, then closed) or a body that is not a `Hello` at
/// all (closed without an answer, counted as a malformed frame).
#[derive(Debug)]
pub enum HelloVerdict {
    Accepted {
        from: NodeId,
    },
    /// `claimed_from` is the `from` of a `Hello` that decoded (whether or not it is a configured peer), so the
    /// refusal can be counted against that peer.
    Refused {
        claimed_from: Option<NodeId>,
        refusal: Refusal,
    },
    Malformed(FrameError),
}

/// Checks a `Hello` frame body against the acceptor's identity. Pure.
pub fn check_hello(body: &[u8], own: &AcceptorIdentity<'_>) -> HelloVerdict {
    let head: HelloHead = match frame::decode_body(body) {
        Ok(head) => head,
        Err(error) => return HelloVerdict::Malformed(error),
    };
    if head.magic != MAGIC {
        return HelloVerdict::Refused { claimed_from: None, refusal: Refusal::BadMagic { magic: head.magic } };
    }
    if head.protocol_version != PROTOCOL_VERSION {
        return HelloVerdict::Refused {
            claimed_from: None,
            refusal: Refusal::ProtocolVersion { theirs: head.protocol_version, ours: PROTOCOL_VERSION },
        };
    }
    let hello: Hello = match frame::decode_body(body) {
        Ok(hello) => hello,
        Err(error) => return HelloVerdict::Malformed(error),
    };
    let refusal = if hello.cluster_id != own.cluster_id {
        Refusal::ClusterId { theirs: hello.cluster_id, ours: own.cluster_id.to_owned() }
    } else if hello.to != own.node_id {
        Refusal::WrongTarget { to: hello.to, own: own.node_id }
    } else if hello.from == own.node_id {
        Refusal::FromItself { from: hello.from }
    } else if !own.peers.contains_key(&hello.from) {
        Refusal::UnknownPeer { from: hello.from, known: own.peers.keys().copied().collect() }
    } else {
        return HelloVerdict::Accepted { from: hello.from };
    };
    HelloVerdict::Refused { claimed_from: Some(hello.from), refusal }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(hello: &Hello) -> Vec<u8> {
        postcard::to_stdvec(hello).expect("a Hello encodes")
    }

    fn peers() -> BTreeMap<NodeId, String> {
        [(2, "127.0.0.1:2".to_owned()), (3, "127.0.0.1:3".to_owned())].into_iter().collect()
    }

    fn check(hello: &Hello) -> HelloVerdict {
        let peers = peers();
        check_hello(&body_of(hello), &AcceptorIdentity { cluster_id: "c1", node_id: 1, peers: &peers })
    }

    #[test]
    fn a_configured_peer_of_the_same_cluster_and_version_is_accepted() {
        assert!(matches!(check(&Hello::new("c1", 2, 1)), HelloVerdict::Accepted { from: 2 }));
    }

    #[test]
    fn each_mismatch_is_refused_with_its_own_reason() {
        let cases = [
            (Hello { magic: *b"HTTP", ..Hello::new("c1", 2, 1) }, "bad magic"),
            (Hello { protocol_version: PROTOCOL_VERSION + 1, ..Hello::new("c1", 2, 1) }, "protocol version"),
            (Hello::new("c2", 2, 1), "cluster id"),
            (Hello::new("c1", 2, 3), "wants node 3 but this is node 1"),
            (Hello::new("c1", 1, 1), "own id"),
            (Hello::new("c1", 9, 1), "node 9 is not among"),
        ];
        for (hello, expected) in cases {
            match check(&hello) {
                HelloVerdict::Refused { refusal, .. } => {
                    assert!(refusal.to_string().contains(expected), "{hello:?}: {refusal}")
                }
                other => panic!("{hello:?} should be refused for {expected:?}, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_newer_hello_with_extra_fields_is_refused_for_its_version_not_misread() {
        #[derive(Serialize)]
        struct HelloV2 {
            magic: [u8; 4],
            protocol_version: u16,
            new_field: Vec<u64>,
        }
        let body = postcard::to_stdvec(&HelloV2 {
            magic: MAGIC,
            protocol_version: PROTOCOL_VERSION + 1,
            new_field: vec![1, 2, 3],
        })
        .expect("encodes");
        let peers = peers();
        let verdict = check_hello(&body, &AcceptorIdentity { cluster_id: "c1", node_id: 1, peers: &peers });
        assert!(
            matches!(
                verdict,
                HelloVerdict::Refused {
                    claimed_from: None,
                    refusal: Refusal::ProtocolVersion { theirs, ours: PROTOCOL_VERSION }
                } if theirs == PROTOCOL_VERSION + 1
            ),
            "{verdict:?}"
        );
    }

    #[test]
    fn a_body_too_short_to_be_a_hello_is_malformed() {
        let peers = peers();
        let verdict = check_hello(b"KE", &AcceptorIdentity { cluster_id: "c1", node_id: 1, peers: &peers });
        assert!(matches!(verdict, HelloVerdict::Malformed(_)), "{verdict:?}");
    }
}
