//! A recording of one run for a picture of it (`timeline_html`): roles and terms over time, crashes and
//! network faults, every message as an arrow, commits, and the violated property.
//!
//! Recording is off unless a caller asks for it on this thread ([`record`]); the cluster then pushes events
//! into a thread-local log, which survives the panic a failed check raises, so the picture of a failing run can
//! be drawn after the failure is caught. When off, each hook costs one thread-local read.
use std::cell::{Cell, RefCell};

use keel_raft::{AppendReply, Message, MessageBody};

/// One thing that happened, at virtual time `at_ms`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimelineEvent {
    /// The run's size and what it is, recorded first.
    Run {
        nodes: usize,
        seed: u64,
        context: String,
    },
    /// A node's role or term changed (also recorded when it starts).
    Role {
        at_ms: u64,
        node: usize,
        role: &'static str,
        term: u64,
    },
    Crash {
        at_ms: u64,
        node: usize,
    },
    /// A node started (first start or restart from its durable state).
    Start {
        at_ms: u64,
        node: usize,
    },
    /// A network change in words: disconnect, partition, cut link, loss burst, a nemesis strike.
    Fault {
        at_ms: u64,
        what: String,
    },
    /// A message handed to the network. `delivered_ms` is `None` if it never arrived (dropped, link down,
    /// receiver crashed).
    Message {
        sent_ms: u64,
        delivered_ms: Option<u64>,
        from: usize,
        to: usize,
        kind: &'static str,
        term: u64,
        detail: String,
    },
    /// A node's commit index advanced.
    Commit {
        at_ms: u64,
        node: usize,
        index: u64,
    },
    /// A checked property failed; the run stops here.
    Violation {
        at_ms: u64,
        what: String,
    },
}

thread_local! {
    static RECORDING: Cell<bool> = const { Cell::new(false) };
    static EVENTS: RefCell<Vec<TimelineEvent>> = const { RefCell::new(Vec::new()) };
}

/// Runs `body` with recording on for this thread and returns what it recorded, even if `body` panicked (the
/// panic is returned as `Err` with its message, after the recording is taken).
pub fn record<T>(body: impl FnOnce() -> T) -> (Vec<TimelineEvent>, Result<T, String>) {
    EVENTS.with(|e| e.borrow_mut().clear());
    RECORDING.with(|r| r.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(body))
        .map_err(|panic| crate::seeds::panic_message(panic.as_ref()));
    RECORDING.with(|r| r.set(false));
    let events = EVENTS.with(|e| std::mem::take(&mut *e.borrow_mut()));
    (events, result)
}

/// Whether this thread is recording.
pub fn is_recording() -> bool {
    RECORDING.with(|r| r.get())
}

/// Records an event if this thread is recording; `make` runs only then.
pub fn push(make: impl FnOnce() -> TimelineEvent) {
    if is_recording() {
        let event = make();
        EVENTS.with(|e| e.borrow_mut().push(event));
    }
}

/// A message as a timeline event, with its contents in a few words.
/// `from` and `to` are the sender's and receiver's slots (the tester's server numbers), not their Raft ids.
pub fn message(msg: &Message, (from, to): (usize, usize), sent_ms: u64, delivered_ms: Option<u64>) -> TimelineEvent {
    let detail = match &msg.body {
        MessageBody::RequestVote { last_log_index, last_log_term }
        | MessageBody::PreVote { last_log_index, last_log_term } => {
            format!("last log {last_log_index} (term {last_log_term})")
        }
        MessageBody::RequestVoteReply { granted } | MessageBody::PreVoteReply { granted } => {
            if *granted {
                "granted".into()
            } else {
                "refused".into()
            }
        }
        MessageBody::AppendEntries { prev_log_index, prev_log_term, entries, leader_commit } => {
            format!("prev {prev_log_index} (term {prev_log_term}), {} entries, commit {leader_commit}", entries.len())
        }
        MessageBody::AppendEntriesReply(AppendReply::Success { match_index }) => {
            format!("success, match {match_index}")
        }
        MessageBody::AppendEntriesReply(AppendReply::Reject {
            prev_log_index,
            conflict_term,
            conflict_first_index,
            last_log_index,
        }) => {
            format!(
                "reject at {prev_log_index}: conflict term {conflict_term:?} from {conflict_first_index}, last {last_log_index}"
            )
        }
        MessageBody::InstallSnapshot { meta, data } => {
            format!("snapshot through {} (term {}), {} bytes", meta.index, meta.term, data.len())
        }
        MessageBody::InstallSnapshotReply { last_included_index } => {
            format!("holds snapshot through {last_included_index}")
        }
        MessageBody::CommitNotice { match_index, match_term, leader_commit } => {
            format!("commit {leader_commit}, you match through {match_index} (term {match_term})")
        }
    };
    TimelineEvent::Message { sent_ms, delivered_ms, from, to, kind: msg.body.kind(), term: msg.term, detail }
}
