//! Properties over random command streams and random transport events.
use keel_kv::{Action, Answer, Attempt, Clerk, Command, KvService, Op, Reply};
use keel_replica::Service;
use proptest::prelude::*;

mod common;
use common::as_checked;

fn op() -> impl Strategy<Value = Op> {
    let key = prop::sample::select(vec!["a", "b", "ab", "c/1", "c/2"]).prop_map(str::to_owned);
    let value = "[xyz]{0,3}";
    prop_oneof![
        key.clone().prop_map(|key| Op::Get { key }),
        (key.clone(), value).prop_map(|(key, value)| Op::Put { key, value }),
        (key.clone(), value).prop_map(|(key, value)| Op::Append { key, value }),
        key.clone().prop_map(|key| Op::Delete { key }),
        (key.clone(), value, 0u64..8).prop_map(|(key, value, expected_index)| Op::PutIf { key, value, expected_index }),
        (prop::sample::select(vec!["", "a", "c/"]), 0u32..4).prop_map(|(prefix, limit)| Op::List {
            prefix: prefix.into(),
            start_after: None,
            limit
        }),
    ]
}

/// Commands from 3 clients whose seqs mostly grow, with retries and the odd stale one.
fn commands() -> impl Strategy<Value = Vec<Command>> {
    proptest::collection::vec((0u64..3, 0u64..4, op()), 1..60).prop_map(|raw| {
        let mut next = [1u64; 3];
        raw.into_iter()
            .map(|(client_id, step, op)| {
                let seq = match step {
                    0 => next[client_id as usize].saturating_sub(1).max(1), // a retry
                    1 => next[client_id as usize].saturating_sub(2).max(1), // possibly stale
                    _ => {
                        next[client_id as usize] += 1;
                        next[client_id as usize] - 1
                    }
                };
                Command { client_id, seq, op }
            })
            .collect()
    })
}

proptest! {
    /// Replicas that apply the same log agree on every reply and on their snapshot bytes; a replica restored from
    /// a snapshot taken anywhere in the log then answers exactly as the one that never stopped.
    #[test]
    fn replicas_agree_and_snapshots_lose_nothing(commands in commands(), cut in any::<prop::sample::Index>()) {
        let entries: Vec<Vec<u8>> = commands.iter().map(Command::encode).collect();
        let cut = cut.index(entries.len());
        let (mut one, mut two) = (KvService::new(), KvService::new());
        let mut restored = KvService::new();
        for (i, entry) in entries.iter().enumerate() {
            let index = i as u64 + 1;
            let reply = one.apply(index, entry);
            prop_assert_eq!(&two.apply(index, entry), &reply);
            if i == cut {
                prop_assert!(restored.restore(index, &one.snapshot()).is_ok());
            } else if i > cut {
                prop_assert_eq!(&restored.apply(index, entry), &reply);
            }
        }
        prop_assert_eq!(one.snapshot(), two.snapshot());
        prop_assert_eq!(one.snapshot(), restored.snapshot());
    }
}

/// A transport event for the clerk's current attempt.
#[derive(Clone, Debug)]
enum Event {
    Timeout,
    WrongLeader(Option<u64>),
    Reply,
    /// An answer to an earlier attempt of the same operation arrives late.
    LateReply,
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        3 => Just(Event::Timeout),
        3 => (prop::option::of(0u64..6)).prop_map(Event::WrongLeader),
        1 => Just(Event::Reply),
        1 => Just(Event::LateReply),
    ]
}

proptest! {
    /// Whatever the transport reports, every send of an operation carries that operation's (client, seq), seqs
    /// grow by one per operation, each operation is Done exactly once, and every round of sends covers every
    /// server before a backoff.
    #[test]
    fn clerk_sends_one_identity_per_operation_and_finishes_once(events in proptest::collection::vec(event(), 1..200)) {
        let servers = vec![1u64, 2, 3, 4, 5];
        let mut clerk = Clerk::new(9, servers.clone()).expect("servers");
        let mut expected_seq = 1;
        let mut action = clerk.start(Op::Get { key: "k".into() }).expect("idle");
        let mut attempts: Vec<(Attempt, u64)> = Vec::new();
        let mut round: Vec<u64> = Vec::new();
        for event in events {
            match action.clone() {
                Action::Send { to, attempt, command } => {
                    prop_assert_eq!((command.client_id, command.seq, attempt.seq), (9, expected_seq, expected_seq));
                    prop_assert!(!round.contains(&to), "server {} twice in one round", to);
                    round.push(to);
                    attempts.push((attempt, to));
                }
                Action::Backoff { attempt } => {
                    round.sort_unstable();
                    prop_assert_eq!(&round, &servers, "a round covers every server");
                    round.clear();
                    action = clerk.on_backoff_elapsed(attempt);
                    continue;
                }
                Action::Done { seq, .. } => {
                    prop_assert_eq!(seq, expected_seq);
                    expected_seq += 1;
                    attempts.clear();
                    round.clear();
                    action = clerk.start(Op::Get { key: "k".into() }).expect("idle after Done");
                    continue;
                }
                Action::Nothing => prop_assert!(false, "the clerk stalled"),
            }
            let (attempt, to) = *attempts.last().expect("sent");
            action = match event {
                Event::Timeout => clerk.on_timeout(attempt),
                Event::WrongLeader(hint) => clerk.on_answer(attempt, to, Answer::WrongLeader { leader_hint: hint }),
                Event::Reply => clerk.on_answer(attempt, to, Answer::Reply(Reply::NotFound)),
                Event::LateReply => {
                    let (first, from) = attempts[0];
                    let late = clerk.on_answer(first, from, Answer::Reply(Reply::NotFound));
                    let finished = matches!(late, Action::Done { .. });
                    prop_assert!(finished, "a late reply to the first attempt finishes the operation");
                    // The current attempt's answer, arriving after: nothing more to do.
                    prop_assert_eq!(clerk.on_answer(attempt, to, Answer::Reply(Reply::NotFound)), Action::Nothing);
                    late
                }
            };
        }
        prop_assert!(clerk.next_seq() == expected_seq || clerk.next_seq() == expected_seq + 1);
    }
}

proptest! {
    /// The checker's indexed model and the service agree: what the service answers, applying commands one at a
    /// time, is always a linearizable history (so a violation the simulator finds is the system's, not a
    /// disagreement between model and service).
    #[test]
    fn the_service_satisfies_the_checkers_model(ops in proptest::collection::vec(op(), 1..80)) {
        let mut kv = KvService::new();
        let mut history = Vec::new();
        for (i, op) in ops.into_iter().enumerate() {
            let index = i as u64 + 1;
            let reply = kv.apply(index, &Command { client_id: 1, seq: index, op: op.clone() }.encode());
            if let Some((input, output)) = as_checked(&op, &reply) {
                history.push(keel_lincheck::Operation::returned(1, index * 10, index * 10 + 5, input, output));
            }
        }
        let verdict = keel_lincheck::check(&keel_lincheck::IndexedKvModel, &history, Default::default());
        prop_assert_eq!(verdict, Ok(keel_lincheck::Verdict::Linearizable));
    }
}
