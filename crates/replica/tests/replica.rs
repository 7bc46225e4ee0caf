//! The replica's contract, seen from a driver: outcomes for every proposal, persist before anything leaves,
//! fail-stop on storage errors, restart from storage with the snapshot restored first, the size policy.
use std::collections::VecDeque;

use keel_raft::{Config, DurableState, Index, Message, NodeId, PersistUpdate};
use keel_replica::{Outcome, Replica, ReplicaError, Service, SnapshotPolicy, UnknownReason};
use keel_storage::Storage;

/// A running sum: each command is a little-endian u64 to add; the output is the sum after it.
#[derive(Default)]
struct Sum {
    total: u64,
    applied: Index,
}

impl Service for Sum {
    type Output = u64;
    fn apply(&mut self, index: Index, command: &[u8]) -> u64 {
        let add = command.try_into().map(u64::from_le_bytes).unwrap_or(0);
        self.total += add;
        self.applied = index;
        self.total
    }
    fn snapshot(&self) -> Vec<u8> {
        postcard::to_stdvec(&(self.total, self.applied)).unwrap_or_default()
    }
    fn restore(&mut self, index: Index, snapshot: &[u8]) -> Result<(), String> {
        let (total, applied): (u64, Index) = postcard::from_bytes(snapshot).map_err(|e| e.to_string())?;
        if applied != index {
            return Err(format!("image of {applied}, asked for {index}"));
        }
        (self.total, self.applied) = (total, applied);
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("disk full")]
struct DiskFull;

/// In-memory storage that counts persists and can be told to fail.
#[derive(Default, Clone)]
struct TestStorage {
    state: DurableState,
    persists: u32,
    fail_next: bool,
}

impl Storage for TestStorage {
    type Error = DiskFull;
    fn persist(&mut self, update: &PersistUpdate) -> Result<(), DiskFull> {
        if std::mem::take(&mut self.fail_next) {
            return Err(DiskFull);
        }
        self.persists += 1;
        self.state.apply(update);
        Ok(())
    }
    fn load(&self) -> Result<DurableState, DiskFull> {
        Ok(self.state.clone())
    }
}

type TestReplica = Replica<Sum, TestStorage>;

fn config(id: NodeId, members: &[NodeId]) -> Config {
    Config::new(id, members.to_vec(), 7)
}

fn open(id: NodeId, members: &[NodeId], storage: TestStorage, policy: SnapshotPolicy) -> TestReplica {
    match Replica::open(config(id, members), Sum::default(), storage, policy) {
        Ok(r) => r,
        Err(e) => panic!("open failed: {e}"),
    }
}

fn cmd(add: u64) -> Vec<u8> {
    add.to_le_bytes().to_vec()
}

/// A tiny driver: replicas by id, a FIFO network with a set of down nodes, outcomes collected per node.
struct Net {
    replicas: Vec<Option<TestReplica>>,
    down: Vec<bool>,
    queue: VecDeque<Message>,
    outcomes: Vec<Vec<(keel_replica::Proposal, Outcome<u64>)>>,
}

impl Net {
    fn new(n: usize, policy: SnapshotPolicy) -> Net {
        let members: Vec<NodeId> = (1..=n as NodeId).collect();
        Net {
            replicas: members
                .iter()
                .map(|&id| Some(open(id, &members, TestStorage::default(), policy.clone())))
                .collect(),
            down: vec![false; n],
            queue: VecDeque::new(),
            outcomes: vec![Vec::new(); n],
        }
    }

    fn replica(&mut self, id: NodeId) -> &mut TestReplica {
        self.replicas[id as usize - 1].as_mut().expect("replica is running")
    }

    fn advance(&mut self, id: NodeId) {
        let k = id as usize - 1;
        while let Some(advanced) = self.replicas[k].as_mut().expect("running").advance().expect("advance") {
            self.queue.extend(advanced.messages);
            self.outcomes[k].extend(advanced.outcomes);
        }
    }

    /// Ticks everyone once and delivers every message (and the ones they cause) among nodes that are up.
    fn round(&mut self) {
        for id in 1..=self.replicas.len() as NodeId {
            if self.replicas[id as usize - 1].is_some() {
                self.replica(id).tick().expect("tick");
                self.advance(id);
            }
        }
        while let Some(msg) = self.queue.pop_front() {
            let (from, to) = (msg.from as usize - 1, msg.to as usize - 1);
            if self.down[from] || self.down[to] || self.replicas[to].is_none() {
                continue;
            }
            let _ = self.replica(msg.to).step(msg.clone());
            self.advance(msg.to);
        }
    }

    fn leader(&self) -> Option<NodeId> {
        self.replicas
            .iter()
            .enumerate()
            .filter(|(k, _)| !self.down[*k])
            .filter_map(|(_, r)| r.as_ref())
            .filter(|r| r.node().is_leader())
            .max_by_key(|r| r.node().term())
            .map(|r| r.node().id())
    }

    fn elect(&mut self) -> NodeId {
        for _ in 0..500 {
            self.round();
            if let Some(leader) = self.leader() {
                return leader;
            }
        }
        panic!("no leader elected in 500 rounds");
    }
}

#[test]
fn a_proposal_applies_and_its_proposer_learns_the_service_output() {
    let mut net = Net::new(3, SnapshotPolicy::Never);
    let leader = net.elect();
    let first = net.replica(leader).propose(cmd(5)).expect("running").expect("leads");
    let second = net.replica(leader).propose(cmd(7)).expect("running").expect("leads");
    net.advance(leader);
    // Followers learn the commit index from the next heartbeat.
    for _ in 0..30 {
        net.round();
    }
    let outcomes = &net.outcomes[leader as usize - 1];
    assert_eq!(outcomes, &vec![(first, Outcome::Applied(5)), (second, Outcome::Applied(12))]);
    for r in net.replicas.iter().flatten() {
        assert_eq!(r.service().total, 12, "every replica applied both commands");
    }
}

#[test]
fn a_follower_refuses_proposals_with_a_leader_hint() {
    let mut net = Net::new(3, SnapshotPolicy::Never);
    let leader = net.elect();
    for _ in 0..3 {
        net.round();
    }
    let follower = (1..=3).find(|&id| id != leader).expect("a follower");
    let refused = net.replica(follower).propose(cmd(1)).expect("running");
    assert_eq!(refused.map_err(|e| e.leader_hint), Err(Some(leader)));
}

#[test]
fn a_deposed_leader_reports_its_pending_proposals_unknown_and_the_overwritten_one_never_applies() {
    let mut net = Net::new(3, SnapshotPolicy::Never);
    let old = net.elect();
    for _ in 0..3 {
        net.round();
    }
    // Cut the leader off, then give it a proposal it can never commit.
    net.down[old as usize - 1] = true;
    let lost = net.replica(old).propose(cmd(100)).expect("running").expect("still thinks it leads");
    net.advance(old);
    let new = net.elect();
    assert_ne!(new, old);
    let won = net.replica(new).propose(cmd(1)).expect("running").expect("leads");
    net.advance(new);
    net.down[old as usize - 1] = false;
    for _ in 0..60 {
        net.round();
    }
    let old_outcomes = &net.outcomes[old as usize - 1];
    assert_eq!(old_outcomes, &vec![(lost, Outcome::Unknown(UnknownReason::LeadershipLost))]);
    assert_eq!(net.outcomes[new as usize - 1], vec![(won, Outcome::Applied(1))]);
    assert_eq!(net.replica(old).service().total, 1, "the deposed leader's entry was overwritten, never applied");
}

#[test]
fn nothing_leaves_before_it_is_durable_and_a_storage_error_stops_the_replica() {
    let members = [1];
    let mut replica = open(1, &members, TestStorage::default(), SnapshotPolicy::Never);
    // A single voter elects itself; every step that changes state persisted before returning messages.
    for _ in 0..100 {
        replica.tick().expect("tick");
        while replica.advance().expect("advance").is_some() {}
        if replica.node().is_leader() {
            break;
        }
    }
    assert!(replica.node().is_leader());
    assert_eq!(replica.storage().state.hard_state.term, replica.node().term(), "the term is durable");
    let (_, storage) = (replica.propose(cmd(3)).expect("running").expect("leads"), replica.storage().persists);
    let before = storage;
    let advanced = replica.advance().expect("advance").expect("a Ready");
    assert_eq!(replica.storage().persists, before + 1, "the entry was persisted in this step");
    assert!(advanced.persisted);

    // Now the disk fails: the replica stops and hands out nothing that depended on the update.
    let mut failing = replica.stop().storage;
    failing.fail_next = true;
    let mut replica = open(1, &members, failing, SnapshotPolicy::Never);
    for _ in 0..100 {
        replica.tick().expect("tick");
        match replica.advance() {
            Ok(Some(_)) | Ok(None) => continue,
            Err(ReplicaError::Storage { node: 1, .. }) => break,
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert!(matches!(replica.advance(), Err(ReplicaError::Stopped { node: 1 })), "a stopped replica stays stopped");
    assert!(matches!(replica.tick(), Err(ReplicaError::Stopped { .. })));
    assert!(matches!(replica.propose(cmd(1)), Err(ReplicaError::Stopped { .. })));
}

#[test]
fn the_size_policy_keeps_the_log_short_and_a_restart_restores_the_snapshot_first() {
    let members = [1];
    let policy = SnapshotPolicy::RaftStateBytes(10 * (8 + keel_replica::ENTRY_OVERHEAD_BYTES));
    let mut replica = open(1, &members, TestStorage::default(), policy.clone());
    while !replica.node().is_leader() {
        replica.tick().expect("tick");
        while replica.advance().expect("advance").is_some() {}
    }
    let mut expected = 0;
    for add in 1..=100u64 {
        replica.propose(cmd(add)).expect("running").expect("leads");
        expected += add;
        while replica.advance().expect("advance").is_some() {}
        assert!(
            replica.node().log().len() <= 11,
            "the log is compacted at 10 entries, holds {}",
            replica.node().log().len()
        );
    }
    assert_eq!(replica.service().total, expected);
    let snapshot_index = replica.node().log().snapshot_meta().index;
    assert!(snapshot_index >= 90, "snapshots were taken as the log grew (last at {snapshot_index})");

    // Restart from storage alone: the snapshot comes back first, then the entries after it.
    let storage = replica.stop().storage;
    let mut restarted = open(1, &members, storage, policy);
    let first = restarted.advance().expect("advance").expect("the snapshot is applied first");
    assert!(matches!(first.applied.first(), Some(keel_raft::Apply::Snapshot(s)) if s.meta.index == snapshot_index));
    while !restarted.node().is_leader() {
        restarted.tick().expect("tick");
        while restarted.advance().expect("advance").is_some() {}
    }
    assert_eq!(restarted.service().total, expected, "snapshot plus the entries after it rebuild the same state");
}

#[test]
fn a_service_that_cannot_restore_stops_the_replica_with_the_index() {
    let members = [1];
    let mut storage = TestStorage::default();
    storage.state.snapshot =
        Some(keel_raft::Snapshot { meta: keel_raft::SnapshotMeta { index: 4, term: 1 }, data: vec![0xff] });
    storage.state.hard_state.term = 1;
    let mut replica = open(1, &members, storage, SnapshotPolicy::Never);
    match replica.advance() {
        Err(ReplicaError::Restore { node: 1, index: 4, .. }) => {}
        other => panic!("expected a restore error at index 4, got {:?}", other.map(|a| a.is_some())),
    }
    assert!(matches!(replica.advance(), Err(ReplicaError::Stopped { .. })));
}

/// Raft thesis 10.2.1: a leader's step hands out its AppendEntries first, with the persist still to do; the next
/// step persists and only then commits. A leader stopped in between (a crash) has sent the entries but not
/// written them, and a restarted node holds none of them.
#[test]
fn a_leader_sends_entries_ahead_of_its_own_persist() {
    let mut net = Net::new(3, SnapshotPolicy::Never);
    let leader = net.elect();
    for _ in 0..3 {
        net.round(); // every follower has answered the first heartbeats: the windows are open
    }
    let persists_before = net.replica(leader).storage().persists;
    let proposal = net.replica(leader).propose(cmd(5)).expect("running").expect("leads");
    let first = net.replica(leader).advance().expect("advance").expect("a step");
    assert!(first.persist_pending, "the first step is the early messages alone");
    assert_eq!(first.messages.len(), 2, "an AppendEntries to each follower");
    assert_eq!(net.replica(leader).storage().persists, persists_before, "sent before the leader's own write");
    let second = net.replica(leader).advance().expect("advance").expect("a step");
    assert!(second.persisted && !second.persist_pending);
    assert_eq!(net.replica(leader).node().durable_index(), proposal.index);
    net.queue.extend(first.messages);
    net.queue.extend(second.messages);

    // The same again, but the leader dies between the two steps.
    let proposal = net.replica(leader).propose(cmd(7)).expect("running").expect("leads");
    while let Some(step) = net.replica(leader).advance().expect("advance") {
        net.queue.extend(step.messages);
    }
    for _ in 0..5 {
        net.round(); // the followers acknowledge the first entry; the second is still in flight
    }
    let next = net.replica(leader).propose(cmd(11)).expect("running").expect("leads");
    let early = net.replica(leader).advance().expect("advance").expect("a step");
    assert!(early.persist_pending);
    let storage = net.replicas[leader as usize - 1].take().expect("running").stop().storage;
    assert!(
        storage.state.entries.iter().all(|e| e.index < next.index),
        "a crash before the persist loses the entry from the leader's disk"
    );
    assert!(storage.state.entries.iter().any(|e| e.index == proposal.index));
}
