//! Replicas in one process, joined by channels instead of sockets: for tests of the runtime's routing and for
//! benchmarks that measure Raft without a disk or a network (openraft's `benchmarks/minimal` has this shape).
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, RwLock};

use keel_raft::NodeId;

use crate::envelope::PeerMessage;
use crate::replica_thread::{PeerSender, ReplicaHandle};

/// The wires between in-process replicas. Delivery is immediate and in order; a node can be cut off (both ways).
pub struct InProcessNetwork<O> {
    nodes: RwLock<BTreeMap<NodeId, Arc<ReplicaHandle<O>>>>,
    cut: Mutex<BTreeSet<NodeId>>,
}

impl<O: Clone + Send + 'static> InProcessNetwork<O> {
    pub fn new() -> Arc<Self> {
        Arc::new(InProcessNetwork { nodes: RwLock::new(BTreeMap::new()), cut: Mutex::new(BTreeSet::new()) })
    }

    /// Connects a started replica: messages addressed to its id reach it from now on.
    pub fn attach(&self, handle: Arc<ReplicaHandle<O>>) {
        write(&self.nodes).insert(handle.id(), handle);
    }

    pub fn detach(&self, id: NodeId) -> Option<Arc<ReplicaHandle<O>>> {
        write(&self.nodes).remove(&id)
    }

    /// Cuts `id` off (`true`) or reconnects it (`false`): messages to or from it are lost meanwhile.
    pub fn set_cut(&self, id: NodeId, cut: bool) {
        let mut set = self.cut.lock().unwrap_or_else(|p| p.into_inner());
        if cut {
            set.insert(id);
        } else {
            set.remove(&id);
        }
    }

    /// A sender for node `from`.
    pub fn sender(self: &Arc<Self>, from: NodeId) -> InProcessSender<O> {
        InProcessSender { network: self.clone(), from }
    }

    fn deliver(&self, from: NodeId, to: NodeId, message: PeerMessage<O>) {
        {
            let cut = self.cut.lock().unwrap_or_else(|p| p.into_inner());
            if cut.contains(&from) || cut.contains(&to) {
                return;
            }
        }
        let target = self.nodes.read().unwrap_or_else(|p| p.into_inner()).get(&to).cloned();
        if let Some(target) = target {
            target.deliver(from, message);
        }
    }
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|p| p.into_inner())
}

pub struct InProcessSender<O> {
    network: Arc<InProcessNetwork<O>>,
    from: NodeId,
}

impl<O: Clone + Send + 'static> PeerSender<PeerMessage<O>> for InProcessSender<O> {
    fn send(&self, to: NodeId, message: PeerMessage<O>) {
        self.network.deliver(self.from, to, message);
    }
}
