//! Property test: whatever a peer sends (unknown ids, indexes beyond the log, absurd terms, garbage entries), the
//! core never panics, and its invariants hold after every input.
use keel_raft::{AppendReply, Config, Entry, Message, MessageBody, RaftNode, SnapshotMeta};
use proptest::prelude::*;

fn term() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..6, Just(u64::MAX), Just(1u64 << 62), any::<u64>()]
}

fn index() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..12, Just(u64::MAX), any::<u64>()]
}

fn entries() -> impl Strategy<Value = Vec<Entry>> {
    prop::collection::vec((index(), term(), prop::collection::vec(any::<u8>(), 0..3)), 0..5)
        .prop_map(|v| v.into_iter().map(|(index, term, data)| Entry { index, term, data }).collect())
}

/// Mostly plausible entries (contiguous, sane terms) so deep code paths are reached, not only validation.
fn plausible_append() -> impl Strategy<Value = MessageBody> {
    (0u64..8, 0u64..5, 1usize..5, 0u64..5, 0u64..12).prop_map(|(prev, prev_term, n, bump, commit)| {
        let entries = (0..n as u64).map(|k| Entry { index: prev + 1 + k, term: prev_term + bump, data: vec![k as u8] });
        MessageBody::AppendEntries {
            prev_log_index: prev,
            prev_log_term: prev_term,
            entries: entries.collect(),
            leader_commit: commit,
        }
    })
}

fn body() -> impl Strategy<Value = MessageBody> {
    prop_oneof![
        (index(), term()).prop_map(|(i, t)| MessageBody::RequestVote { last_log_index: i, last_log_term: t }),
        any::<bool>().prop_map(|granted| MessageBody::RequestVoteReply { granted }),
        (index(), term()).prop_map(|(i, t)| MessageBody::PreVote { last_log_index: i, last_log_term: t }),
        any::<bool>().prop_map(|granted| MessageBody::PreVoteReply { granted }),
        (index(), term(), entries(), index()).prop_map(|(p, pt, entries, c)| MessageBody::AppendEntries {
            prev_log_index: p,
            prev_log_term: pt,
            entries,
            leader_commit: c
        }),
        plausible_append(),
        plausible_append(),
        index().prop_map(|m| MessageBody::AppendEntriesReply(AppendReply::Success { match_index: m })),
        (index(), prop::option::of(term()), index(), index()).prop_map(|(p, ct, cf, l)| {
            MessageBody::AppendEntriesReply(AppendReply::Reject {
                prev_log_index: p,
                conflict_term: ct,
                conflict_first_index: cf,
                last_log_index: l,
            })
        }),
        (index(), term()).prop_map(|(index, term)| MessageBody::InstallSnapshot {
            meta: SnapshotMeta { index, term },
            data: vec![1]
        }),
        (0u64..10, 0u64..5).prop_map(|(index, term)| MessageBody::InstallSnapshot {
            meta: SnapshotMeta { index, term },
            data: vec![2]
        }),
        index().prop_map(|i| MessageBody::InstallSnapshotReply { last_included_index: i }),
        (index(), term(), index()).prop_map(|(match_index, match_term, leader_commit)| MessageBody::CommitNotice {
            match_index,
            match_term,
            leader_commit
        }),
        (0u64..10, 0u64..5, 0u64..12).prop_map(|(match_index, match_term, leader_commit)| {
            MessageBody::CommitNotice { match_index, match_term, leader_commit }
        }),
    ]
}

#[derive(Debug, Clone)]
enum Input {
    Message(Message),
    Tick(u8),
    Propose,
    Snapshot(u64),
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        6 => (0u64..5, 0u64..4, term(), body()).prop_map(|(from, to, term, body)| Input::Message(Message { from, to, term, body })),
        6 => (0u64..3, 0u64..6, body()).prop_map(|(from, term, body)| Input::Message(Message { from, to: 0, term, body })),
        2 => (1u8..80).prop_map(Input::Tick),
        2 => Just(Input::Propose),
        1 => (0u64..12).prop_map(Input::Snapshot),
    ]
}

proptest! {
    // PROPTEST_CASES=<n> runs a longer search.
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(3000),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_messages_never_panic_and_invariants_hold(inputs in prop::collection::vec(input(), 1..60)) {
        let mut config = Config::new(0, vec![0, 1, 2], 9);
        // Exercise the optional extensions too: they add states and message kinds.
        config.pre_vote = inputs.len() % 2 == 0;
        config.check_quorum = inputs.len() % 3 == 0;
        let mut node = RaftNode::new(config).unwrap();
        let (mut last_term, mut last_commit, mut last_applied) = (0, 0, 0);
        for input in inputs {
            match input {
                Input::Message(m) => { let _ = node.step(m); }
                Input::Tick(n) => (0..n).for_each(|_| node.tick()),
                Input::Propose => { let _ = node.propose(vec![7]); }
                Input::Snapshot(i) => { let _ = node.snapshot(i, vec![i as u8]); }
            }
            let ready = node.take_ready();
            prop_assert!(node.term() >= last_term, "term went backwards");
            prop_assert!(node.term() <= keel_raft::TERM_LIMIT);
            prop_assert!(node.commit_index() >= last_commit, "commit index went backwards");
            prop_assert!(node.commit_index() <= node.log().last_index());
            prop_assert!(node.log().snapshot_meta().index <= node.commit_index());
            for apply in &ready.applies {
                let expected_next = last_applied + 1;
                match apply {
                    keel_raft::Apply::Snapshot(s) => prop_assert!(s.meta.index > last_applied),
                    keel_raft::Apply::Command { index, .. } => prop_assert_eq!(*index, expected_next),
                }
                last_applied = apply.index();
            }
            last_term = node.term();
            last_commit = node.commit_index();
        }
    }
}
