//! `KvService` inside a real `keel_replica::Replica` (one node, in-memory storage): commands proposed by a clerk
//! apply through the log, the replica snapshots the service by policy, and a restart restores the snapshot and
//! replays the log after it, dedup table included.
use keel_kv::{Action, Answer, Clerk, KvService, Op, Reply};
use keel_raft::Config;
use keel_replica::{Outcome, Replica, SnapshotPolicy};
use keel_storage::MemStorage;

type KvReplica = Replica<KvService, MemStorage>;

fn open(storage: MemStorage) -> KvReplica {
    let policy = SnapshotPolicy::EveryEntries(4);
    Replica::open(Config::new(1, vec![1], 3), KvService::new(), storage, policy).expect("opens")
}

/// Advances until quiet; returns the outcomes.
fn settle(replica: &mut KvReplica) -> Vec<Outcome<Reply>> {
    let mut outcomes = Vec::new();
    while let Some(advanced) = replica.advance().expect("advance") {
        outcomes.extend(advanced.outcomes.into_iter().map(|(_, outcome)| outcome));
    }
    outcomes
}

fn elect(replica: &mut KvReplica) {
    for _ in 0..1000 {
        if replica.node().is_leader() {
            return;
        }
        replica.tick().expect("tick");
        settle(replica);
    }
    panic!("a one-node cluster elects itself");
}

/// Runs one operation through the clerk and the replica, as a transport would.
fn run(replica: &mut KvReplica, clerk: &mut Clerk, op: Op) -> Reply {
    let mut action = clerk.start(op).expect("idle");
    loop {
        match action {
            Action::Send { to, attempt, command } => {
                replica.propose(command.encode()).expect("running").expect("leads");
                let answer = match settle(replica).pop() {
                    Some(Outcome::Applied(reply)) => Answer::Reply(reply),
                    _ => Answer::WrongLeader { leader_hint: None },
                };
                action = clerk.on_answer(attempt, to, answer);
            }
            Action::Done { reply, .. } => return reply,
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[test]
fn commands_apply_through_the_log_and_survive_a_restart_from_a_snapshot() {
    let mut replica = open(MemStorage::default());
    elect(&mut replica);
    let mut clerk = Clerk::new(5, vec![1]).expect("servers");
    for i in 0..10 {
        let reply = run(&mut replica, &mut clerk, Op::Append { key: "k".into(), value: i.to_string() });
        assert!(matches!(reply, Reply::Written { .. }), "{reply:?}");
    }
    let before = replica.service().clone();
    assert_eq!(before.get("k").map(|(v, _)| v), Some("0123456789"));
    let storage = replica.stop().storage;
    assert!(storage.state().snapshot.is_some(), "the policy took a snapshot");

    // Restart: the snapshot is restored first. The entries after it apply again once this term commits an entry
    // (Figure 2: a leader commits earlier terms' entries only through one of its own; keel proposes no no-op).
    let snapshot_index = storage.state().snapshot.as_ref().map(|s| s.meta.index);
    let mut replica = open(storage);
    settle(&mut replica);
    elect(&mut replica);
    assert_eq!(Some(replica.service().applied_index()), snapshot_index);

    // The clerk's last append, retried after the restart, is recognized: the original reply, nothing applied.
    let last_seq = clerk.next_seq() - 1;
    let retry = keel_kv::Command { client_id: 5, seq: last_seq, op: Op::Append { key: "k".into(), value: "9".into() } };
    replica.propose(retry.encode()).expect("running").expect("leads");
    let outcome = settle(&mut replica).pop();
    let Some(Outcome::Applied(Reply::Written { index })) = outcome else { panic!("{outcome:?}") };
    assert_eq!(index, before.applied_index(), "the original reply, not a new write");
    assert_eq!(replica.service().get("k"), before.get("k"));
    assert_eq!(replica.service().sessions(), before.sessions(), "a duplicate changes no session");
}
