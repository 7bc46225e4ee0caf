//! The service as its clients see it: operations, compare-and-set, list pages, limits, exactly-once, snapshots,
//! and garbage entries applied as rejections.
use keel_kv::{
    Action, Answer, Clerk, Command, KEY_BYTES_MAX, KvService, LIST_KEYS_MAX, ListedKey, Op, Rejection, Reply,
    VALUE_BYTES_MAX,
};
use keel_replica::Service;
use proptest::prelude::*;

/// Applies ops as client 1 with seqs 1, 2, ... at indexes 1, 2, ...; returns the replies.
fn run(service: &mut KvService, ops: Vec<Op>) -> Vec<Reply> {
    ops.into_iter()
        .map(|op| {
            let index = service.applied_index() + 1;
            service.apply(index, &Command { client_id: 1, seq: index, op }.encode())
        })
        .collect()
}

fn key(k: &str) -> String {
    k.to_string()
}

#[test]
fn get_put_append_delete() {
    let mut kv = KvService::new();
    let replies = run(
        &mut kv,
        vec![
            Op::Get { key: key("a") },
            Op::Put { key: key("a"), value: "x".into() },
            Op::Append { key: key("a"), value: "y".into() },
            Op::Get { key: key("a") },
            Op::Append { key: key("new"), value: "z".into() },
            Op::Delete { key: key("a") },
            Op::Delete { key: key("a") },
            Op::Get { key: key("a") },
        ],
    );
    assert_eq!(
        replies,
        vec![
            Reply::NotFound,
            Reply::Written { index: 2 },
            Reply::Written { index: 3 },
            Reply::Value { value: "xy".into(), modified_index: 3 },
            Reply::Written { index: 5 },
            Reply::Deleted { index: 6 },
            Reply::NotFound,
            Reply::NotFound,
        ]
    );
    assert_eq!(kv.get("new"), Some(("z", 5)));
}

#[test]
fn compare_and_set_by_last_modified_index() {
    let mut kv = KvService::new();
    let cas = |expected_index| Op::PutIf { key: key("k"), value: format!("v{expected_index}"), expected_index };
    let replies = run(&mut kv, vec![cas(5), cas(0), cas(0), cas(2), cas(2), Op::Delete { key: key("k") }, cas(0)]);
    assert_eq!(
        replies,
        vec![
            Reply::CasFailed { current_index: 0 },
            Reply::Written { index: 2 },
            Reply::CasFailed { current_index: 2 },
            Reply::Written { index: 4 },
            Reply::CasFailed { current_index: 4 },
            Reply::Deleted { index: 6 },
            Reply::Written { index: 7 },
        ]
    );
}

#[test]
fn list_is_sorted_prefixed_limited_and_pages() {
    let mut kv = KvService::new();
    let puts = ["b/2", "a", "b/1", "b/3", "c", "b"].iter().map(|k| Op::Put { key: key(k), value: k.repeat(2) });
    run(&mut kv, puts.collect());
    let list =
        |start_after: Option<&str>, limit| Op::List { prefix: key("b/"), start_after: start_after.map(key), limit };
    let listed = |keys: &[(&str, u64)], more| Reply::Listed {
        keys: keys
            .iter()
            .map(|(k, i)| ListedKey { key: key(k), modified_index: *i, size_bytes: 2 * k.len() as u64 })
            .collect(),
        more,
    };
    let replies = run(&mut kv, vec![list(None, 2), list(Some("b/2"), 2), list(None, 0), list(Some("a"), 10)]);
    assert_eq!(
        replies,
        vec![
            listed(&[("b/1", 3), ("b/2", 1)], true),
            listed(&[("b/3", 4)], false),
            listed(&[], true),
            listed(&[("b/1", 3), ("b/2", 1), ("b/3", 4)], false),
        ]
    );
    // A limit over LIST_KEYS_MAX is clamped.
    let many = (0..LIST_KEYS_MAX + 5).map(|i| Op::Put { key: format!("m{i:05}"), value: String::new() }).collect();
    run(&mut kv, many);
    let reply = run(&mut kv, vec![Op::List { prefix: key("m"), start_after: None, limit: u32::MAX }]);
    match &reply[0] {
        Reply::Listed { keys, more } => assert!(keys.len() == LIST_KEYS_MAX as usize && *more),
        other => panic!("{other:?}"),
    }
}

#[test]
fn over_limit_commands_write_nothing() {
    let mut kv = KvService::new();
    let long_key = "k".repeat(KEY_BYTES_MAX + 1);
    let half = "v".repeat(VALUE_BYTES_MAX / 2 + 1);
    let replies = run(
        &mut kv,
        vec![
            Op::Put { key: long_key.clone(), value: String::new() },
            Op::Put { key: key("v"), value: "v".repeat(VALUE_BYTES_MAX + 1) },
            Op::Put { key: key("a"), value: half.clone() },
            Op::Append { key: key("a"), value: half.clone() },
            Op::List { prefix: long_key, start_after: None, limit: 1 },
        ],
    );
    assert!(matches!(replies[0], Reply::Rejected { reason: Rejection::KeyTooLarge { .. } }));
    assert!(matches!(replies[1], Reply::Rejected { reason: Rejection::ValueTooLarge { .. } }));
    assert!(matches!(replies[3], Reply::Rejected { reason: Rejection::ValueTooLarge { .. } }));
    assert!(matches!(replies[4], Reply::Rejected { reason: Rejection::KeyTooLarge { .. } }));
    assert_eq!(kv.get("a"), Some((half.as_str(), 3)), "the refused append changed nothing");
    assert_eq!(kv.keys_len(), 1);
}

#[test]
fn a_retried_write_applies_once_and_gets_its_original_reply() {
    let mut kv = KvService::new();
    let append = Command { client_id: 9, seq: 1, op: Op::Append { key: key("k"), value: "x".into() } };
    assert_eq!(kv.apply(1, &append.encode()), Reply::Written { index: 1 });
    assert_eq!(kv.apply(2, &append.encode()), Reply::Written { index: 1 });
    assert_eq!(kv.get("k"), Some(("x", 1)));
    // A retried read runs again (its client has not seen a reply yet): it sees the current state.
    let read = Command { client_id: 9, seq: 2, op: Op::Get { key: key("k") } };
    assert_eq!(kv.apply(3, &read.encode()), Reply::Value { value: "x".into(), modified_index: 1 });
    let other = Command { client_id: 8, seq: 1, op: Op::Put { key: key("k"), value: "y".into() } };
    kv.apply(4, &other.encode());
    assert_eq!(kv.apply(5, &read.encode()), Reply::Value { value: "y".into(), modified_index: 4 });
    // An older request, after a later one applied: refused, not executed.
    assert_eq!(
        kv.apply(6, &append.encode()),
        Reply::Rejected { reason: Rejection::StaleSequence { seq: 1, last_applied_seq: 2 } }
    );
    assert_eq!(kv.get("k"), Some(("y", 4)));
}

#[test]
fn snapshots_carry_the_map_and_the_sessions() {
    let mut kv = KvService::new();
    let append = Command { client_id: 3, seq: 1, op: Op::Append { key: key("k"), value: "x".into() } };
    kv.apply(1, &append.encode());
    run(&mut kv, vec![Op::Put { key: key("j"), value: "1".into() }]);
    let image = kv.snapshot();
    let mut restored = KvService::new();
    assert_eq!(restored.restore(2, &image), Ok(()));
    assert_eq!(restored, kv);
    // The duplicate after the restore is still recognized: the dedup table travelled with the map.
    assert_eq!(restored.apply(3, &append.encode()), Reply::Written { index: 1 });
    assert_eq!(restored.get("k"), Some(("x", 1)));
    assert!(restored.restore(3, &image).is_err(), "an image restored at another index");
    assert!(restored.restore(2, b"garbage").is_err());
}

#[test]
fn a_clerk_retrying_through_lost_replies_appends_once() {
    let mut kv = KvService::new();
    let mut clerk = Clerk::new(77, vec![1, 2, 3]).expect("servers");
    let mut action = clerk.start(Op::Append { key: key("k"), value: "x".into() }).expect("idle");
    let mut sends = 0;
    let reply = loop {
        match action {
            Action::Send { to, attempt, command } => {
                sends += 1;
                action = match to {
                    // Server 1 applies it and the reply is lost; server 2 does not lead; server 3 leads.
                    1 => {
                        let index = kv.applied_index() + 1;
                        kv.apply(index, &command.encode());
                        clerk.on_timeout(attempt)
                    }
                    2 => clerk.on_answer(attempt, 2, Answer::WrongLeader { leader_hint: Some(3) }),
                    _ => {
                        let index = kv.applied_index() + 1;
                        let reply = kv.apply(index, &command.encode());
                        clerk.on_answer(attempt, 3, Answer::Reply(reply))
                    }
                };
            }
            Action::Done { reply, .. } => break reply,
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!(sends, 3);
    assert_eq!(reply, Reply::Written { index: 1 }, "the original reply");
    assert_eq!(kv.get("k"), Some(("x", 1)), "applied once");
    assert_eq!(clerk.leader(), Some(3));
}

proptest! {
    /// Any bytes are applied, as a command or a rejection: never a panic, and the index always advances.
    #[test]
    fn any_entry_applies_without_panicking(entries in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..64), 1..20)) {
        let mut kv = KvService::new();
        for (i, entry) in entries.iter().enumerate() {
            let mut bytes = entry.clone();
            if i % 2 == 0 && !bytes.is_empty() {
                bytes[0] = keel_kv::COMMAND_FORMAT_VERSION; // reach the decoder, not only the version check
            }
            kv.apply(i as u64 + 1, &bytes);
        }
        prop_assert_eq!(kv.applied_index(), entries.len() as u64);
    }

    /// Restoring any bytes is an error or a state, never a panic.
    #[test]
    fn any_snapshot_restores_or_errs(mut bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        if let Some(first) = bytes.first_mut() {
            *first = keel_kv::SNAPSHOT_FORMAT_VERSION;
        }
        let _ = KvService::new().restore(1, &bytes);
    }
}

#[test]
fn the_store_is_bounded_and_deletes_still_apply_when_it_is_full() {
    let mut kv = KvService::new();
    let value = "v".repeat(VALUE_BYTES_MAX);
    let mut i = 0;
    let full = loop {
        let reply = run(&mut kv, vec![Op::Put { key: format!("k{i:05}"), value: value.clone() }]).remove(0);
        if let Reply::Rejected { reason } = reply {
            break reason;
        }
        i += 1;
    };
    assert!(matches!(full, Rejection::StoreFull { .. }), "{full:?}");
    assert!(kv.store_bytes() <= keel_kv::STORE_BYTES_MAX);
    assert_eq!(kv.keys_len(), i);
    // Shrinking a value and deleting a key still apply; then there is room again.
    let replies = run(
        &mut kv,
        vec![
            Op::Put { key: key("k00000"), value: String::new() },
            Op::Delete { key: key("k00001") },
            Op::Put { key: format!("k{i:05}"), value: value.clone() },
        ],
    );
    assert!(replies.iter().all(|r| matches!(r, Reply::Written { .. } | Reply::Deleted { .. })), "{replies:?}");
    // The accounting survives a snapshot.
    let mut restored = KvService::new();
    assert_eq!(restored.restore(kv.applied_index(), &kv.snapshot()), Ok(()));
    assert_eq!(restored.store_bytes(), kv.store_bytes());
}

#[test]
fn requests_without_a_session_execute_every_time_and_leave_no_session() {
    let mut kv = KvService::new();
    let append =
        Command { client_id: keel_kv::NO_SESSION, seq: 7, op: Op::Append { key: key("k"), value: "x".into() } };
    for index in 1..=3 {
        assert_eq!(kv.apply(index, &append.encode()), Reply::Written { index }, "the same (0, 7) applies again");
    }
    assert_eq!(kv.get("k"), Some(("xxx", 3)));
    assert!(kv.sessions().is_empty(), "no session is kept for NO_SESSION");
}
