//! One focused test per correctness rule in DESIGN.md (and the persistence contract), driving a single core by
//! hand so each rule is checked in isolation, without a simulator.
use keel_raft::{
    AppendReply, Apply, Config, DurableState, Entry, HardState, INDEX_LIMIT, Message, MessageBody, NotLeader, RaftNode,
    Ready, Role, SnapshotMeta, StepError, TERM_LIMIT,
};

fn config(id: u64, n: u64) -> Config {
    Config::new(id, (0..n).collect(), 42)
}

fn node(id: u64, n: u64) -> RaftNode {
    RaftNode::new(config(id, n)).expect("valid config")
}

fn msg(from: u64, to: u64, term: u64, body: MessageBody) -> Message {
    Message { from, to, term, body }
}

fn entry(index: u64, term: u64) -> Entry {
    Entry { index, term, data: vec![index as u8, term as u8] }
}

fn append(prev: (u64, u64), entries: Vec<Entry>, commit: u64) -> MessageBody {
    MessageBody::AppendEntries { prev_log_index: prev.0, prev_log_term: prev.1, entries, leader_commit: commit }
}

/// Ticks until the node campaigns, then grants it every vote: it leads a cluster of `n`.
fn elect(raft: &mut RaftNode, n: u64) -> Ready {
    while raft.role() == Role::Follower {
        raft.tick();
    }
    let (term, me) = (raft.term(), raft.id());
    for peer in (0..n).filter(|p| *p != me) {
        raft.step(msg(peer, me, term, MessageBody::RequestVoteReply { granted: true })).expect("vote");
    }
    assert_eq!(raft.role(), Role::Leader);
    raft.take_ready()
}

fn replies(ready: &Ready) -> Vec<AppendReply> {
    ready
        .messages
        .iter()
        .filter_map(|m| match &m.body {
            MessageBody::AppendEntriesReply(r) => Some(*r),
            _ => None,
        })
        .collect()
}

#[test]
fn repeated_or_outdated_append_entries_never_take_back_entries() {
    let mut f = node(1, 3);
    f.step(msg(0, 1, 1, append((0, 0), vec![entry(1, 1), entry(2, 1), entry(3, 1)], 0))).unwrap();
    f.take_ready();
    // An outdated AppendEntries carrying only the first entry arrives late.
    f.step(msg(0, 1, 1, append((0, 0), vec![entry(1, 1)], 0))).unwrap();
    let ready = f.take_ready();
    assert_eq!(f.log().last_index(), 3, "entries 2 and 3 must survive a repeated prefix");
    assert!(ready.persist.is_none(), "nothing changed, so nothing is rewritten: {:?}", ready.persist);
    assert_eq!(replies(&ready), vec![AppendReply::Success { match_index: 1 }]);
}

#[test]
fn truncation_happens_only_at_the_first_real_conflict() {
    let mut f = node(1, 3);
    f.step(msg(0, 1, 1, append((0, 0), vec![entry(1, 1), entry(2, 1), entry(3, 1)], 0))).unwrap();
    f.take_ready();
    // A new leader of term 2 agrees on 1-2 and replaces 3 onwards.
    f.step(msg(2, 1, 2, append((0, 0), vec![entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)], 0))).unwrap();
    let ready = f.take_ready();
    assert_eq!((f.log().last_index(), f.log().term_at(3)), (4, Some(2)));
    let persist = ready.persist.expect("the conflict must be persisted");
    assert_eq!(persist.truncate_from, Some(3), "stored entries from the conflict on are replaced, not before");
    assert_eq!(persist.entries.iter().map(|e| e.index).collect::<Vec<_>>(), vec![3, 4]);
}

#[test]
fn committed_entries_are_never_truncated() {
    let mut f = node(1, 3);
    f.step(msg(0, 1, 1, append((0, 0), vec![entry(1, 1), entry(2, 1)], 2))).unwrap();
    f.take_ready();
    assert_eq!(f.commit_index(), 2);
    let err = f.step(msg(2, 1, 2, append((0, 0), vec![entry(1, 1), entry(2, 2)], 0))).unwrap_err();
    assert!(matches!(err, StepError::WouldTruncateCommitted { index: 2, .. }), "{err}");
    assert_eq!(f.log().term_at(2), Some(1));
}

/// Figure 2, AppendEntries rule 5: commitIndex = min(leaderCommit, index of the last *new* entry). A follower
/// whose log runs past what the message verified must not commit that tail on the leader's word: those entries
/// may come from another leader and differ from the ones the leader committed.
#[test]
fn a_follower_commits_only_what_the_append_verified() {
    let mut f = node(1, 3);
    // Entries 1-2 from the leader of term 1, then entry 3 from a leader of term 2 that never committed it.
    f.step(msg(0, 1, 1, append((0, 0), vec![entry(1, 1), entry(2, 1)], 0))).unwrap();
    f.step(msg(2, 1, 2, append((2, 1), vec![entry(3, 2)], 0))).unwrap();
    f.take_ready();
    // The leader of term 3 committed its own index 3; a message limited to one entry verifies only through 2.
    f.step(msg(0, 1, 3, append((1, 1), vec![entry(2, 1)], 3))).unwrap();
    let ready = f.take_ready();
    assert_eq!(f.commit_index(), 2, "index 3 was not verified by this message");
    assert_eq!(replies(&ready), vec![AppendReply::Success { match_index: 2 }]);
    assert!(ready.applies.iter().all(|a| a.index() <= 2), "nothing past the verified entry reaches the service");
}

#[test]
fn one_vote_per_term_and_it_is_durable_before_the_reply() {
    let mut f = node(0, 3);
    f.step(msg(1, 0, 5, MessageBody::RequestVote { last_log_index: 0, last_log_term: 0 })).unwrap();
    let ready = f.take_ready();
    let persist = ready.persist.expect("the vote must be persisted in the same Ready as the reply");
    assert_eq!(persist.hard_state, Some(HardState { term: 5, voted_for: Some(1) }));
    assert!(matches!(ready.messages[0].body, MessageBody::RequestVoteReply { granted: true }));
    // A second candidate in the same term is refused; the first may ask again and is answered the same.
    f.step(msg(2, 0, 5, MessageBody::RequestVote { last_log_index: 9, last_log_term: 4 })).unwrap();
    f.step(msg(1, 0, 5, MessageBody::RequestVote { last_log_index: 0, last_log_term: 0 })).unwrap();
    let grants: Vec<bool> = f
        .take_ready()
        .messages
        .iter()
        .map(|m| matches!(m.body, MessageBody::RequestVoteReply { granted: true }))
        .collect();
    assert_eq!(grants, vec![false, true]);
    assert_eq!(f.voted_for(), Some(1));
}

#[test]
fn voted_for_changes_only_with_the_term_and_a_leader_keeps_its_own_vote() {
    let mut l = node(0, 3);
    elect(&mut l, 3);
    let term = l.term();
    assert_eq!(l.voted_for(), Some(0));
    // Heartbeats, proposals and replies in the same term do not touch the vote.
    for _ in 0..25 {
        l.tick();
    }
    l.propose(b"x".to_vec()).unwrap();
    l.step(msg(1, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: 1 }))).unwrap();
    assert_eq!((l.term(), l.voted_for()), (term, Some(0)));
    // A higher term resets it, together with the term.
    l.step(msg(2, 0, term + 1, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: 0 }))).unwrap();
    assert_eq!((l.term(), l.voted_for(), l.role()), (term + 1, None, Role::Follower));
}

#[test]
fn votes_go_only_to_candidates_with_logs_at_least_as_up_to_date() {
    let mut f = node(0, 3);
    f.step(msg(1, 0, 2, append((0, 0), vec![entry(1, 1), entry(2, 2)], 0))).unwrap();
    f.take_ready();
    let ask = |f: &mut RaftNode, from, term, last_log_index, last_log_term| {
        f.step(msg(from, 0, term, MessageBody::RequestVote { last_log_index, last_log_term })).unwrap();
        matches!(f.take_ready().messages[0].body, MessageBody::RequestVoteReply { granted: true })
    };
    assert!(!ask(&mut f, 2, 3, 5, 1), "older last term loses even with a longer log");
    assert!(!ask(&mut f, 2, 4, 1, 2), "same last term but shorter log loses");
    assert!(ask(&mut f, 2, 5, 2, 2), "same last term and length wins");
}

#[test]
fn commit_only_by_counting_replicas_of_a_current_term_entry() {
    // Figure 8: node 0 leads term 3 with an entry from term 1 that a majority holds. It must not commit it by
    // counting, only once an entry of term 3 reaches a majority.
    let durable = DurableState {
        hard_state: HardState { term: 2, voted_for: None },
        snapshot: None,
        entries: vec![entry(1, 1), entry(2, 2)],
    };
    let mut l = RaftNode::restart(config(0, 5), durable).unwrap();
    elect(&mut l, 5);
    let term = l.term();
    for peer in [1, 2] {
        l.step(msg(peer, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: 2 }))).unwrap();
    }
    assert_eq!(l.commit_index(), 0, "entries of earlier terms are not committed by counting replicas");
    let (index, _) = l.propose(b"now".to_vec()).unwrap();
    l.take_ready();
    l.persisted(index, term);
    for peer in [1, 2] {
        l.step(msg(peer, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: index })))
            .unwrap();
    }
    assert_eq!(l.commit_index(), index, "a current-term entry on a majority commits it and everything before");
    let applied: Vec<u64> = l.take_ready().applies.iter().map(|a| a.index()).collect();
    assert_eq!(applied, vec![1, 2, 3], "applied once, in order, no gaps");
}

#[test]
fn rejection_carries_conflict_term_its_first_index_and_log_length() {
    let mut f = node(1, 3);
    let log = vec![entry(1, 1), entry(2, 2), entry(3, 2), entry(4, 2)];
    f.step(msg(0, 1, 2, append((0, 0), log, 0))).unwrap();
    f.take_ready();
    // Probe at index 4 expecting term 3: the follower has term 2 there, first at index 2.
    f.step(msg(2, 1, 3, append((4, 3), vec![], 0))).unwrap();
    let expected =
        AppendReply::Reject { prev_log_index: 4, conflict_term: Some(2), conflict_first_index: 2, last_log_index: 4 };
    assert_eq!(replies(&f.take_ready()), vec![expected]);
    // Probe beyond the end: no conflict term, just the log length.
    f.step(msg(2, 1, 3, append((9, 3), vec![], 0))).unwrap();
    let expected =
        AppendReply::Reject { prev_log_index: 9, conflict_term: None, conflict_first_index: 5, last_log_index: 4 };
    assert_eq!(replies(&f.take_ready()), vec![expected]);
}

/// A leader (elected after a restart) whose log holds terms 1, 1, 4, 4, 4.
fn leader_of_terms_1_and_4() -> (RaftNode, u64) {
    let durable = DurableState {
        hard_state: HardState { term: 4, voted_for: None },
        snapshot: None,
        entries: vec![entry(1, 1), entry(2, 1), entry(3, 4), entry(4, 4), entry(5, 4)],
    };
    let mut l = RaftNode::restart(config(0, 3), durable).unwrap();
    elect(&mut l, 3);
    let term = l.term();
    (l, term)
}

#[test]
fn leader_skips_a_whole_term_per_rejection() {
    let (mut l, term) = leader_of_terms_1_and_4();
    // Follower 1 holds term 2 from index 2 to 9; the leader has no term-2 entries, so it jumps to index 2.
    let reject =
        AppendReply::Reject { prev_log_index: 5, conflict_term: Some(2), conflict_first_index: 2, last_log_index: 9 };
    l.step(msg(1, 0, term, MessageBody::AppendEntriesReply(reject))).unwrap();
    let sent = l.take_ready().messages;
    let probe = sent.iter().find(|m| m.to == 1).expect("a new probe is sent at once");
    assert!(matches!(probe.body, MessageBody::AppendEntries { prev_log_index: 1, .. }), "{probe:?}");
}

/// When the leader does hold entries of the follower's conflicting term, it resumes right after its own last
/// entry of that term (extended paper, section 5.3), and never behind what the rejection allows.
#[test]
fn leader_resumes_after_its_last_entry_of_the_conflicting_term() {
    let (mut l, term) = leader_of_terms_1_and_4();
    // Follower 1 holds term 1 from index 1 to 7: the leader's last term-1 entry is 2, so it probes from 3.
    let reject =
        AppendReply::Reject { prev_log_index: 5, conflict_term: Some(1), conflict_first_index: 1, last_log_index: 7 };
    l.step(msg(1, 0, term, MessageBody::AppendEntriesReply(reject))).unwrap();
    assert_eq!(l.progress(1).map(|p| p.next_index), Some(3));
    // Follower 2 is one entry short of a heartbeat's probe at the leader's last index (5): it resumes at 5.
    let short =
        AppendReply::Reject { prev_log_index: 5, conflict_term: None, conflict_first_index: 5, last_log_index: 4 };
    l.step(msg(2, 0, term, MessageBody::AppendEntriesReply(short))).unwrap();
    assert_eq!(l.progress(2).map(|p| p.next_index), Some(5));
}

#[test]
fn stale_terms_are_answered_with_the_newer_term_and_change_nothing() {
    let mut f = node(1, 3);
    f.step(msg(0, 1, 5, append((0, 0), vec![entry(1, 5)], 0))).unwrap();
    f.take_ready();
    f.step(msg(2, 1, 3, append((0, 0), vec![entry(1, 3)], 1))).unwrap();
    let ready = f.take_ready();
    assert!(ready.persist.is_none());
    assert_eq!((f.log().term_at(1), f.commit_index()), (Some(5), 0));
    assert_eq!(ready.messages[0].term, 5, "the stale leader learns the newer term from the reply");
}

#[test]
fn propose_on_a_follower_names_the_leader() {
    let mut f = node(1, 3);
    assert_eq!(f.propose(vec![1]), Err(NotLeader { node: 1, term: 0, leader_hint: None }));
    f.step(msg(2, 1, 3, append((0, 0), vec![], 0))).unwrap();
    assert_eq!(f.propose(vec![1]), Err(NotLeader { node: 1, term: 3, leader_hint: Some(2) }));
    let mut l = node(0, 1);
    l.tick_until_leader();
    assert_eq!(l.propose(vec![9]), Ok((1, l.term())));
}

trait TickUntilLeader {
    fn tick_until_leader(&mut self);
}
impl TickUntilLeader for RaftNode {
    fn tick_until_leader(&mut self) {
        for _ in 0..1000 {
            if self.is_leader() {
                return;
            }
            self.tick();
        }
        panic!("a single-node cluster must elect itself");
    }
}

#[test]
fn snapshot_from_inside_the_apply_loop_and_restart_from_durable_state_alone() {
    let mut l = node(0, 1);
    l.tick_until_leader();
    let mut durable = DurableState::default();
    for i in 1..=25u8 {
        l.propose(vec![i]).unwrap();
    }
    let ready = l.take_ready();
    assert!(ready.applies.is_empty(), "a single voter commits nothing before its own fsync");
    let update = ready.persist.as_ref().unwrap();
    durable.apply(update);
    let (index, term) = update.durable_through().unwrap();
    l.persisted(index, term);
    let ready = l.take_ready();
    // The service snapshots every 10 entries while it is still walking this Ready's applies.
    for apply in &ready.applies {
        if apply.index() % 10 == 0 {
            l.snapshot(apply.index(), vec![apply.index() as u8]).unwrap();
        }
    }
    assert_eq!(l.log().snapshot_meta(), SnapshotMeta { index: 20, term: l.term() });
    let ready = l.take_ready();
    durable.apply(ready.persist.as_ref().unwrap());
    assert_eq!(durable.entries.first().map(|e| e.index), Some(21), "the log is compacted through 20 in storage");

    // Restart from what storage holds: the snapshot comes first, then only the commands after it.
    let mut restarted = RaftNode::restart(config(0, 1), durable).unwrap();
    restarted.tick_until_leader();
    let (index, term) = restarted.propose(vec![26]).unwrap();
    let mut applies = restarted.take_ready().applies;
    restarted.persisted(index, term);
    applies.extend(restarted.take_ready().applies);
    assert!(matches!(&applies[0], Apply::Snapshot(s) if s.meta.index == 20 && s.data == vec![20]));
    let rest: Vec<u64> = applies[1..].iter().map(|a| a.index()).collect();
    assert_eq!(rest, (21..=26).collect::<Vec<_>>());
}

#[test]
fn append_entries_below_the_snapshot_uses_the_snapshot_point() {
    // Follower compacted through 3; a leader re-sends from index 1.
    let mut f = node(1, 3);
    f.step(msg(0, 1, 1, append((0, 0), vec![entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1)], 4))).unwrap();
    f.take_ready();
    f.snapshot(3, vec![3]).unwrap();
    f.take_ready();
    f.step(msg(0, 1, 1, append((0, 0), vec![entry(1, 1), entry(2, 1), entry(3, 1), entry(4, 1), entry(5, 1)], 5)))
        .unwrap();
    let ready = f.take_ready();
    assert_eq!(replies(&ready), vec![AppendReply::Success { match_index: 5 }]);
    assert_eq!((f.log().first_index(), f.log().last_index(), f.commit_index()), (4, 5, 5));
}

#[test]
fn install_snapshot_keeps_a_matching_suffix_and_ignores_stale_snapshots() {
    let mut f = node(1, 3);
    f.step(msg(0, 1, 1, append((0, 0), (1..=6).map(|i| entry(i, 1)).collect(), 2))).unwrap();
    f.take_ready();
    let install =
        |index| MessageBody::InstallSnapshot { meta: SnapshotMeta { index, term: 1 }, data: vec![index as u8] };
    f.step(msg(0, 1, 1, install(4))).unwrap();
    let ready = f.take_ready();
    assert_eq!((f.log().first_index(), f.log().last_index()), (5, 6), "suffix after the snapshot is kept");
    assert!(matches!(&ready.applies[0], Apply::Snapshot(s) if s.meta.index == 4));
    // A duplicate or older snapshot changes nothing and applies nothing.
    f.step(msg(0, 1, 1, install(3))).unwrap();
    let ready = f.take_ready();
    assert!(ready.applies.is_empty() && ready.persist.is_none());
    assert_eq!(f.log().snapshot_meta().index, 4);
}

/// A follower's answer to InstallSnapshot names the snapshot's index, never its own log end: entries it holds
/// past the snapshot may come from another leader, and the leader would count them as matched.
#[test]
fn a_snapshot_answer_names_the_snapshot_not_the_log_end() {
    let mut f = node(1, 3);
    // 1-3 agreed (term 1), 4-6 from a leader of term 2 that never committed them.
    f.step(msg(0, 1, 1, append((0, 0), (1..=3).map(|i| entry(i, 1)).collect(), 0))).unwrap();
    f.step(msg(2, 1, 2, append((3, 1), (4..=6).map(|i| entry(i, 2)).collect(), 0))).unwrap();
    f.take_ready();
    let install = MessageBody::InstallSnapshot { meta: SnapshotMeta { index: 3, term: 1 }, data: vec![3] };
    f.step(msg(0, 1, 3, install)).unwrap();
    let ready = f.take_ready();
    let answer = ready.messages.iter().find(|m| m.to == 0).map(|m| m.body.clone());
    assert_eq!(answer, Some(MessageBody::InstallSnapshotReply { last_included_index: 3 }));
}

/// An InstallSnapshot from a deposed leader (an older term) is answered with the newer term and changes
/// nothing: no snapshot, no leader hint, no reset of the election timer's purpose.
#[test]
fn a_snapshot_from_an_older_term_is_refused_and_changes_nothing() {
    let mut f = node(1, 3);
    f.step(msg(0, 1, 3, append((0, 0), vec![entry(1, 3)], 0))).unwrap();
    f.step(msg(2, 1, 4, MessageBody::RequestVote { last_log_index: 1, last_log_term: 3 })).unwrap();
    f.take_ready();
    let install = MessageBody::InstallSnapshot { meta: SnapshotMeta { index: 5, term: 3 }, data: vec![5] };
    f.step(msg(0, 1, 3, install)).unwrap();
    let ready = f.take_ready();
    assert_eq!(f.log().snapshot_meta().index, 0, "a stale leader's snapshot is not installed");
    assert_eq!(f.leader_hint(), None, "a deposed leader is not taken for the leader");
    assert!(ready.applies.is_empty());
    let answer = ready.messages.iter().find(|m| m.to == 0).expect("the stale leader is answered");
    assert_eq!(answer.term, 4, "the answer carries the newer term, which deposes the sender");
}

/// After a follower installs the snapshot, the leader sends the entries that follow it at once; if the snapshot
/// covers the whole log, there is nothing to send until the next heartbeat.
#[test]
fn after_a_snapshot_answer_the_leader_sends_what_follows_it_and_only_that() {
    let mut l = node(0, 3);
    elect(&mut l, 3);
    let term = l.term();
    for k in 0..4u8 {
        l.propose(vec![k]).unwrap();
    }
    let ack = |m| MessageBody::AppendEntriesReply(AppendReply::Success { match_index: m });
    l.step(msg(2, 0, term, ack(4))).unwrap();
    for a in l.take_ready().applies {
        if let Apply::Command { index: 2, .. } = a {
            l.snapshot(2, vec![2]).unwrap();
        }
    }
    // Follower 1 was sent everything from 1 at election; it answers the snapshot it then got.
    l.step(msg(1, 0, term, MessageBody::InstallSnapshotReply { last_included_index: 2 })).unwrap();
    let sent = l.take_ready().messages;
    let follow_up = sent.iter().filter(|m| m.to == 1).collect::<Vec<_>>();
    assert_eq!(follow_up.len(), 1, "{follow_up:?}");
    assert!(
        matches!(&follow_up[0].body, MessageBody::AppendEntries { prev_log_index: 2, entries, .. } if entries.len() == 2)
    );
    l.step(msg(1, 0, term, ack(4))).unwrap();
    l.take_ready();
    // A repeated snapshot answer when everything is already matched sends nothing.
    l.step(msg(1, 0, term, MessageBody::InstallSnapshotReply { last_included_index: 2 })).unwrap();
    assert!(l.take_ready().messages.iter().all(|m| m.to != 1), "nothing to send after a stale snapshot answer");
}

#[test]
fn a_restarted_node_recovers_term_vote_and_log_exactly() {
    let mut f = node(1, 3);
    let mut durable = DurableState::default();
    f.step(msg(2, 1, 3, MessageBody::RequestVote { last_log_index: 0, last_log_term: 0 })).unwrap();
    durable.apply(f.take_ready().persist.as_ref().unwrap());
    f.step(msg(2, 1, 3, append((0, 0), vec![entry(1, 3), entry(2, 3)], 0))).unwrap();
    durable.apply(f.take_ready().persist.as_ref().unwrap());
    let r = RaftNode::restart(config(1, 3), durable).unwrap();
    assert_eq!((r.term(), r.voted_for(), r.log().last_index(), r.log().last_term()), (3, Some(2), 2, 3));
    assert_eq!(r.commit_index(), 0, "commit index is volatile and relearned from the leader");
}

/// Regression (found by `keel raft bench`): heartbeats used to start a new chain of AppendEntries each time while
/// one was outstanding, and every reply reopened the window, so chains accumulated and each entry crossed the
/// network about ten times. Only the answer to the latest message (or a heartbeat) may trigger a send.
#[test]
fn heartbeats_while_a_reply_is_outstanding_do_not_multiply_appends() {
    let mut l = node(0, 3);
    elect(&mut l, 3);
    let term = l.term();
    l.propose(b"a".to_vec()).unwrap();
    // Three heartbeat intervals pass with no answers: three more AppendEntries to node 1 (retransmissions).
    for _ in 0..(3 * keel_raft::DEFAULT_HEARTBEAT_INTERVAL_TICKS) {
        l.tick();
    }
    l.take_ready();
    for k in 0..5u8 {
        l.propose(vec![k]).unwrap();
    }
    l.take_ready();
    // Now all four answers arrive (each acknowledging entry 1). Only the answer to the latest message may send.
    for _ in 0..4 {
        l.step(msg(1, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: 1 }))).unwrap();
    }
    let to_node_1 = l.take_ready().messages.iter().filter(|m| m.to == 1).count();
    assert!(to_node_1 <= 1, "{to_node_1} AppendEntries sent to node 1 for one batch of new entries");
}

/// Regression (found by the property test): an index near u64::MAX made `index + 1` overflow. Absurd indexes
/// are refused before any state changes.
#[test]
fn absurd_indexes_are_refused_not_overflowed() {
    let mut f = node(1, 3);
    let install = MessageBody::InstallSnapshot { meta: SnapshotMeta { index: u64::MAX, term: 1 }, data: vec![] };
    assert!(matches!(f.step(msg(0, 1, 1, install)), Err(StepError::Malformed { .. })));
    let probe = append((u64::MAX - 1, 1), vec![], u64::MAX);
    assert!(matches!(f.step(msg(0, 1, 1, probe)), Err(StepError::Malformed { .. })));
    assert_eq!((f.term(), f.log().last_index(), f.commit_index()), (0, 0, 0), "nothing changed");
}

/// The validation limits are exact: the largest legal term and index are accepted, one more is refused, and a
/// candidate claiming a last log term above its own term is refused.
#[test]
fn validation_limits_are_exact() {
    let mut f = node(1, 3);
    let heartbeat = |term| msg(0, 1, term, append((0, 0), vec![], 0));
    assert!(matches!(f.step(heartbeat(TERM_LIMIT + 1)), Err(StepError::AbsurdTerm { .. })));
    f.step(heartbeat(TERM_LIMIT)).expect("the largest legal term is accepted");
    assert_eq!(f.term(), TERM_LIMIT);
    let mut f = node(1, 3);
    let probe = |prev| msg(0, 1, 1, append((prev, 1), vec![], 0));
    assert!(matches!(f.step(probe(INDEX_LIMIT + 1)), Err(StepError::Malformed { .. })));
    f.step(probe(INDEX_LIMIT)).expect("the largest legal index is accepted (and answered with a rejection)");
    let vote = MessageBody::RequestVote { last_log_index: 1, last_log_term: 3 };
    assert!(matches!(f.step(msg(2, 1, 2, vote)), Err(StepError::Malformed { .. })), "last log term above the term");
}

fn node_with(id: u64, n: u64, pre_vote: bool, check_quorum: bool) -> RaftNode {
    let mut c = config(id, n);
    c.pre_vote = pre_vote;
    c.check_quorum = check_quorum;
    RaftNode::new(c).unwrap()
}

#[test]
fn pre_vote_keeps_an_isolated_node_from_raising_its_term() {
    let mut isolated = node_with(0, 3, true, false);
    let mut figure2 = node_with(0, 3, false, false);
    for _ in 0..1000 {
        isolated.tick();
        figure2.tick();
    }
    assert_eq!(isolated.term(), 0, "nobody answered its PreVotes, so it never entered a new term");
    assert_eq!(isolated.role(), Role::PreCandidate);
    assert!(figure2.term() > 10, "without PreVote every timeout raises the term");
    let asks = isolated.take_ready().messages;
    assert!(asks.iter().all(|m| matches!(m.body, MessageBody::PreVote { .. }) && m.term == 1), "{asks:?}");
}

#[test]
fn pre_votes_are_refused_while_a_leader_is_heard_and_never_change_the_voter() {
    let mut f = node_with(1, 3, true, false);
    f.step(msg(0, 1, 2, append((0, 0), vec![], 0))).unwrap();
    f.take_ready();
    let ask = MessageBody::PreVote { last_log_index: 0, last_log_term: 0 };
    f.step(msg(2, 1, 3, ask.clone())).unwrap();
    let reply = &f.take_ready().messages[0];
    assert!(matches!(reply.body, MessageBody::PreVoteReply { granted: false }) && reply.term == 2, "{reply:?}");
    // Silence from the leader for an election timeout: now the PreVote is granted, still without any change.
    for _ in 0..keel_raft::DEFAULT_ELECTION_TIMEOUT_TICKS_MIN {
        f.tick();
    }
    f.take_ready();
    f.step(msg(2, 1, 3, ask)).unwrap();
    let reply = &f.take_ready().messages[0];
    assert!(matches!(reply.body, MessageBody::PreVoteReply { granted: true }) && reply.term == 3, "{reply:?}");
    assert_eq!((f.term(), f.voted_for()), (2, None), "a PreVote moves neither term nor vote");
}

#[test]
fn a_pre_candidate_campaigns_once_a_majority_would_vote_for_it() {
    let mut n = node_with(0, 3, true, false);
    while n.role() != Role::PreCandidate {
        n.tick();
    }
    assert_eq!(n.term(), 0);
    n.take_ready();
    n.step(msg(1, 0, 1, MessageBody::PreVoteReply { granted: true })).unwrap();
    assert_eq!((n.role(), n.term()), (Role::Candidate, 1));
    let ready = n.take_ready();
    assert!(ready.messages.iter().all(|m| matches!(m.body, MessageBody::RequestVote { .. })));
    assert_eq!(ready.persist.and_then(|p| p.hard_state), Some(HardState { term: 1, voted_for: Some(0) }));
}

#[test]
fn check_quorum_makes_a_cut_off_leader_step_down() {
    let mut cut_off = node_with(0, 3, false, true);
    elect(&mut cut_off, 3);
    let mut healthy = node_with(0, 3, false, true);
    elect(&mut healthy, 3);
    let term = healthy.term();
    for _ in 0..(2 * keel_raft::DEFAULT_ELECTION_TIMEOUT_TICKS_MIN) {
        cut_off.tick();
        healthy.tick();
        healthy
            .step(msg(1, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: 0 })))
            .unwrap();
    }
    assert_eq!(cut_off.role(), Role::Follower, "no follower answered for two check periods");
    assert_eq!(healthy.role(), Role::Leader, "one follower of two answering is a majority with the leader");
    assert_eq!(cut_off.propose(vec![1]).map_err(|e| e.leader_hint), Err(None));
}

/// Regression (found by the catalogue with PreVote on, figure8_unreliable_2c seed 91): under long reordering a
/// candidate's campaign timed out just before its votes arrived; with PreVote the term does not move, so those
/// votes are still valid for it, but they were dropped and every election needed two lucky rounds.
#[test]
fn with_pre_vote_late_votes_for_the_current_term_still_elect() {
    let mut n = node_with(0, 3, true, false);
    while n.role() != Role::PreCandidate {
        n.tick();
    }
    n.step(msg(1, 0, 1, MessageBody::PreVoteReply { granted: true })).unwrap();
    assert_eq!((n.role(), n.term()), (Role::Candidate, 1));
    // The campaign times out; the node asks for PreVotes again, still in term 1.
    while n.role() != Role::PreCandidate {
        n.tick();
    }
    assert_eq!(n.term(), 1);
    n.step(msg(2, 0, 1, MessageBody::RequestVoteReply { granted: true })).unwrap();
    assert_eq!((n.role(), n.term()), (Role::Leader, 1), "a late vote for term 1 completes the term-1 election");
}

/// What a driver reads off a node (who leads, what was applied, what the leader knows of each follower) is what
/// the node knows: the simulator's invariants and every driver rely on these answers.
#[test]
fn the_accessors_report_what_the_node_knows() {
    let mut leader = node(0, 3);
    let ready = elect(&mut leader, 3);
    assert!(!ready.messages.is_empty(), "a new leader announces itself");
    assert_eq!(leader.leader_hint(), Some(0), "a leader names itself");
    let term = leader.term();
    let (index, _) = leader.propose(vec![7]).expect("leader accepts");
    leader.take_ready();
    leader.persisted(index, term);
    // Sent, not yet answered: nextIndex moves only when the follower confirms.
    assert_eq!(leader.progress(1).map(|p| (p.match_index, p.next_index)), Some((0, index)));
    leader.step(msg(1, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: index }))).unwrap();
    let recorded = leader.progress(1).map(|p| (p.match_index, p.next_index));
    assert_eq!(recorded, Some((index, index + 1)), "the follower's match is recorded");
    assert!(leader.progress(0).is_none(), "a leader keeps no progress for itself");
    assert_eq!(leader.commit_index(), index);
    assert_eq!(leader.applied_index(), index - 1, "committed, not yet handed to the service");
    leader.take_ready();
    assert_eq!(leader.applied_index(), index, "handed to the service in the Ready just taken");

    let mut follower = node(2, 3);
    assert_eq!(follower.leader_hint(), None, "a fresh node knows no leader");
    assert!(follower.progress(0).is_none(), "only a leader keeps progress");
    follower.step(msg(0, 2, term, append((0, 0), vec![entry(1, term)], 0))).unwrap();
    assert_eq!(follower.leader_hint(), Some(0), "a follower names the leader it heard from");
}

/// A message claiming to come from the node itself is forged or misrouted: refused before anything changes (a
/// vote "from itself" must never count twice, an AppendEntries "from itself" must never make it a follower).
#[test]
fn a_message_from_the_node_itself_is_refused() {
    let mut n = node(0, 3);
    let before = (n.term(), n.voted_for(), n.role());
    let forged = msg(0, 0, 5, append((0, 0), vec![entry(1, 5)], 1));
    assert_eq!(n.step(forged), Err(StepError::UnknownPeer(0)));
    assert_eq!((n.term(), n.voted_for(), n.role()), before, "a refused message changes nothing");
    assert_eq!(n.log().last_index(), 0);
}

/// Answers from an earlier term speak of the log as it was then: a leader re-elected in a later term must not
/// record them as matches (its log may have changed in between, and the follower never confirmed anything in
/// this term). Both kinds of acknowledgement, AppendEntries success and InstallSnapshot answer.
#[test]
fn acknowledgements_from_an_earlier_term_are_not_trusted_by_a_re_elected_leader() {
    let mut leader = node(0, 3);
    elect(&mut leader, 3);
    let first_term = leader.term();
    leader.propose(vec![1]).expect("leads");
    leader.take_ready();
    // Deposed by a newer term, then elected again.
    leader.step(msg(2, 0, first_term + 1, MessageBody::RequestVoteReply { granted: false })).unwrap();
    assert_eq!(leader.role(), Role::Follower);
    elect(&mut leader, 3);
    let second_term = leader.term();
    assert!(second_term > first_term);
    let stale = [
        MessageBody::AppendEntriesReply(AppendReply::Success { match_index: 1 }),
        MessageBody::InstallSnapshotReply { last_included_index: 1 },
    ];
    for body in stale {
        leader.step(msg(1, 0, first_term, body.clone())).unwrap();
        let recorded = leader.progress(1).map(|p| p.match_index);
        assert_eq!(recorded, Some(0), "{body:?} from term {first_term} was trusted in term {second_term}");
    }
    assert_eq!(leader.commit_index(), 0, "nothing was confirmed in this term, so nothing commits");
}

/// A newly elected leader of 3 (node 0) whose first, empty AppendEntries both followers answered: the window to
/// each is open. Returns it and its term.
fn leader_with_open_windows() -> (RaftNode, u64) {
    let mut leader = node(0, 3);
    elect(&mut leader, 3);
    let term = leader.term();
    for follower in [1, 2] {
        leader
            .step(msg(follower, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: 0 })))
            .unwrap();
    }
    (leader, term)
}

/// Raft thesis 10.2.1: a leader sends its entries before its own fsync, and counts itself only once told.
#[test]
fn a_leader_sends_entries_before_its_fsync_and_counts_itself_only_once_durable() {
    let (mut leader, term) = leader_with_open_windows();
    let (index, _) = leader.propose(vec![7]).expect("leader accepts");
    let ready = leader.take_ready();
    let early: Vec<u64> = ready
        .early_messages
        .iter()
        .filter(|m| matches!(m.body, MessageBody::AppendEntries { .. }))
        .map(|m| m.to)
        .collect();
    assert_eq!(early, vec![1, 2], "the new entry goes to both followers ahead of the persist");
    assert!(ready.messages.is_empty(), "nothing else was waiting");
    assert_eq!(ready.persist.as_ref().and_then(|u| u.durable_through()), Some((index, term)));
    leader.step(msg(1, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: index }))).unwrap();
    // A majority of the three (the follower and the leader) holds the entry, but the leader's copy is not durable.
    assert_eq!(leader.commit_index(), 0, "committed on the strength of an entry not yet on the leader's disk");
    leader.persisted(index, term);
    assert_eq!(leader.commit_index(), index, "durable on the leader and one follower: committed");
}

#[test]
fn a_single_voter_commits_only_after_its_own_fsync() {
    let mut l = node(0, 1);
    l.tick_until_leader();
    l.take_ready();
    let term = l.term();
    let (index, _) = l.propose(vec![1]).unwrap();
    let ready = l.take_ready();
    assert!(ready.early_messages.is_empty() && ready.applies.is_empty());
    assert_eq!(l.commit_index(), 0, "a lone voter must not commit what is not on its disk");
    l.persisted(index, term);
    assert_eq!(l.commit_index(), index);
    assert_eq!(l.take_ready().applies.len(), 1);
}

/// etcd's ABA race: an acknowledgement that comes back after the entry it speaks of was replaced is ignored.
#[test]
fn an_acknowledgement_for_a_replaced_entry_is_ignored() {
    let mut f = node(1, 3);
    f.step(msg(0, 1, 1, append((0, 0), vec![entry(1, 1), entry(2, 1)], 0))).unwrap();
    f.take_ready(); // the write of (1, 1), (2, 1) is in flight...
    // ...when a newer leader replaces index 2.
    f.step(msg(2, 1, 2, append((1, 1), vec![entry(2, 2)], 0))).unwrap();
    let ready = f.take_ready();
    f.persisted(2, 1); // the old write's acknowledgement arrives late
    assert_eq!(f.durable_index(), 0, "(2, 1) is no longer in the log: its acknowledgement counts for nothing");
    assert!(ready.early_messages.is_empty(), "a follower's answers never go before its persist");
    assert_eq!(replies(&ready), vec![AppendReply::Success { match_index: 2 }]);
    f.persisted(2, 2);
    assert_eq!(f.durable_index(), 2);
}

#[test]
fn votes_wait_for_the_persist_of_the_term_and_vote() {
    let mut f = node(1, 3);
    f.step(msg(0, 1, 5, MessageBody::RequestVote { last_log_index: 0, last_log_term: 0 })).unwrap();
    let ready = f.take_ready();
    assert!(ready.early_messages.is_empty());
    assert!(ready.persist.as_ref().is_some_and(|u| u.hard_state.is_some()));
    assert!(matches!(ready.messages[0].body, MessageBody::RequestVoteReply { granted: true }));
}

/// The commit index each message of a Ready tells each follower, by AppendEntries or CommitNotice.
fn commits_told(ready: &Ready) -> Vec<(u64, u64)> {
    ready
        .early_messages
        .iter()
        .chain(&ready.messages)
        .filter_map(|m| match m.body {
            MessageBody::AppendEntries { leader_commit, .. } | MessageBody::CommitNotice { leader_commit, .. } => {
                Some((m.to, leader_commit))
            }
            _ => None,
        })
        .collect()
}

/// A leader of 3 with one entry proposed, persisted, and acknowledged by node 1 (so committed); node 2's append is
/// still in flight.
fn leader_with_a_fresh_commit() -> (RaftNode, u64, u64) {
    let (mut leader, term) = leader_with_open_windows();
    let (index, _) = leader.propose(vec![1]).unwrap();
    leader.take_ready();
    leader.persisted(index, term);
    leader.step(msg(1, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: index }))).unwrap();
    assert_eq!(leader.commit_index(), index);
    (leader, index, term)
}

/// A follower learns a new commit index at once, not at the next heartbeat (etcd's bcastAppend after a commit):
/// a follower answering a forwarded request waits until it has applied it.
#[test]
fn followers_hear_of_a_commit_at_once() {
    let (mut leader, index, term) = leader_with_a_fresh_commit();
    let ready = leader.take_ready();
    assert_eq!(
        commits_told(&ready),
        vec![(1, index)],
        "the idle follower hears of the commit; node 2's append is still in flight"
    );
    // Node 2's answer comes after the commit: it is told of it at once too.
    leader.step(msg(2, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: index }))).unwrap();
    let ready = leader.take_ready();
    assert_eq!(
        commits_told(&ready),
        vec![(2, index)],
        "a follower whose answer came after the commit hears of it without waiting for a heartbeat"
    );
    // And nobody is told twice.
    leader.step(msg(2, 0, term, MessageBody::AppendEntriesReply(AppendReply::Success { match_index: index }))).unwrap();
    assert!(leader.take_ready().messages.is_empty());
}

/// A follower that already holds the whole log is told of a commit by a CommitNotice, which it does not answer:
/// so it opens no window, and the next entry goes to that follower at once, not after an answer.
#[test]
fn a_caught_up_follower_gets_an_unanswered_commit_notice_that_holds_back_no_entries() {
    let (mut leader, index, term) = leader_with_a_fresh_commit();
    let ready = leader.take_ready();
    let notice = ready.early_messages.iter().chain(&ready.messages).find(|m| m.to == 1).expect("node 1 is told");
    assert_eq!(notice.body, MessageBody::CommitNotice { match_index: index, match_term: term, leader_commit: index });
    let (next, _) = leader.propose(vec![2]).unwrap();
    let ready = leader.take_ready();
    let sent_to_1 = ready.early_messages.iter().chain(&ready.messages).any(|m| {
        m.to == 1 && matches!(&m.body, MessageBody::AppendEntries { entries, .. } if entries.last().is_some_and(|e| e.index == next))
    });
    assert!(sent_to_1, "the notice must not hold back the next entry: {ready:?}");

    // The follower's side: it commits through what it shares with the leader, and answers nothing.
    let mut follower = node(1, 3);
    follower.step(msg(0, 1, term, append((0, 0), vec![entry(1, term)], 0))).unwrap();
    follower.take_ready();
    follower.persisted(1, term);
    follower
        .step(msg(0, 1, term, MessageBody::CommitNotice { match_index: 1, match_term: term, leader_commit: 5 }))
        .unwrap();
    assert_eq!(follower.commit_index(), 1, "commits through the matched entry, never past it");
    let ready = follower.take_ready();
    assert!(ready.messages.is_empty() && ready.early_messages.is_empty(), "a notice is not answered: {ready:?}");
}

/// A notice naming an entry the follower does not hold (another term there, or beyond its log) proves nothing
/// about its log: it is ignored, and the commit index waits for the next AppendEntries.
#[test]
fn a_commit_notice_for_an_entry_the_follower_does_not_hold_is_ignored() {
    let mut follower = node(1, 3);
    follower.step(msg(0, 1, 2, append((0, 0), vec![entry(1, 1), entry(2, 1)], 0))).unwrap();
    follower.take_ready();
    for (match_index, match_term) in [(2, 2), (3, 2)] {
        follower.step(msg(0, 1, 2, MessageBody::CommitNotice { match_index, match_term, leader_commit: 3 })).unwrap();
        assert_eq!(follower.commit_index(), 0, "notice for ({match_index}, {match_term})");
        assert!(follower.take_ready().messages.is_empty());
    }
    // A deposed leader's notice (an older term) neither commits nor makes its sender this node's leader again.
    follower.step(msg(2, 1, 3, append((2, 1), vec![], 0))).unwrap();
    follower.take_ready();
    follower.step(msg(0, 1, 2, MessageBody::CommitNotice { match_index: 2, match_term: 1, leader_commit: 2 })).unwrap();
    assert_eq!((follower.term(), follower.leader_hint(), follower.commit_index()), (3, Some(2), 0));
    // A notice whose match term is above its own term is malformed.
    let bad = msg(0, 1, 2, MessageBody::CommitNotice { match_index: 1, match_term: 3, leader_commit: 1 });
    assert!(matches!(follower.step(bad), Err(StepError::Malformed { .. })));
}
