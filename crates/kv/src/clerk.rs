//! The clerk: a client's side of the service, as a sans-IO state machine. It holds the client id, the next
//! sequence number, the servers and the last known leader; it says where to send each request, and is told what
//! came back. A transport (the simulator, a network client) moves the bytes and keeps the timers:
//!
//! - [`Clerk::start`] begins an operation and returns the first [`Action::Send`];
//! - the transport reports [`Clerk::on_answer`] (a reply, or "wrong leader" with a hint), [`Clerk::on_timeout`]
//!   (no answer in time) and [`Clerk::on_backoff_elapsed`] (after an [`Action::Backoff`]);
//! - each returns the next action: send again, back off, the operation is [`Action::Done`], or nothing (the
//!   event was about an older attempt or operation).
//!
//! Every send of one operation carries the same (client, seq), so the service applies it at most once however
//! many times it is sent; the next operation gets seq + 1. An operation is `Done` exactly once, with the first
//! reply for its seq from any attempt. Like 6.824's clerk it keeps trying forever: only the transport can give up
//! (and must then treat the operation's outcome as unknown).
//!
//! ```text
//!           start(op): seq = next_seq, next_seq += 1;
//!           send to the last leader, else the next server          timeout or wrong leader for attempt n, and
//!   ┌──────┐ ─────────────────────────────────────> ┌───────────┐ ──┐  a server untried this round: attempt n + 1
//!   │ Idle │                                        │ Awaiting  │   │  (same seq) to the hinted server if untried,
//!   └──────┘ <─── a reply for seq (any attempt): ── │ (seq, n)  │ <─┘  else to the next one in rotation
//!      ^          Done; remember who answered       └───────────┘
//!      │                                              │       ^
//!      │                        timeout or wrong      │       │ backoff elapsed: a new round, from the
//!      │                        leader, every server  │       │ last leader, else the next server
//!      │                        tried this round      v       │
//!      │                                            ┌────────────┐
//!      └──────────── a late reply for seq: Done ─── │ BackingOff │
//!                                                   │ (seq)      │
//!                                                   └────────────┘
//! ```
use crate::command::{ClientId, Command, NO_SESSION, Op, Reply, Seq};

/// A server's identity as the transport knows it (a node id).
pub type ServerId = u64;

/// One send of one operation: the operation's seq and the number of the send (1 for the first). The transport
/// hands it back with the answer or the timeout, so events about superseded sends are recognized and ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Attempt {
    pub seq: Seq,
    pub number: u32,
}

/// What a server said to a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The command was applied (now or before, for a retry): the service's reply. Final.
    Reply(Reply),
    /// The server cannot serve it: it does not lead, or it lost leadership before the command's fate was known
    /// (a proposal's `NotApplied` or `Unknown` outcome). The hint, if any, is the leader it believes in.
    WrongLeader { leader_hint: Option<ServerId> },
}

/// What the transport does next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send `command` to `to`; report its answer or its timeout with `attempt`.
    Send { to: ServerId, attempt: Attempt, command: Command },
    /// Every server was tried this round without an answer: wait (6.824's clerks sleep about 100 ms), then call
    /// [`Clerk::on_backoff_elapsed`] with `attempt`.
    Backoff { attempt: Attempt },
    /// The operation `seq` finished with `reply`. Reported once per operation.
    Done { seq: Seq, reply: Reply },
    /// The event concerned a superseded attempt or a finished operation: nothing to do.
    Nothing,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClerkError {
    #[error("a clerk needs at least one server")]
    NoServers,
    #[error("client id 0 is reserved for requests without a session (NO_SESSION); pick another")]
    ReservedClientId,
    #[error("server {0} is listed twice")]
    DuplicateServer(ServerId),
    /// 6.824's contract: one outstanding request per client.
    #[error("operation {seq} is still in progress: one operation at a time per client")]
    Busy { seq: Seq },
    #[error("sequence numbers are exhausted for this client id")]
    SeqExhausted,
}

#[derive(Clone, Debug)]
enum State {
    Idle,
    Awaiting { command: Command, attempt: Attempt, to_slot: usize },
    BackingOff { command: Command, attempt: Attempt },
}

/// One client. See the module documentation.
#[derive(Clone, Debug)]
pub struct Clerk {
    client_id: ClientId,
    servers: Vec<ServerId>,
    /// The seq of the next operation. Starts at 1 (0 is never valid; see `dedup.rs`).
    next_seq: Seq,
    /// The slot (in `servers`) of the last server that answered, or that a server named as leader.
    leader_slot: Option<usize>,
    /// The slot of the last send: the rotation continues after it.
    cursor_slot: usize,
    /// The servers sent this operation in the current round: a round ends when all were tried.
    tried_this_round: Vec<bool>,
    state: State,
}

impl Clerk {
    /// A clerk for `client_id` (unique among the cluster's clients) over `servers`, in the order to try them.
    pub fn new(client_id: ClientId, servers: Vec<ServerId>) -> Result<Clerk, ClerkError> {
        if servers.is_empty() {
            return Err(ClerkError::NoServers);
        }
        if client_id == NO_SESSION {
            return Err(ClerkError::ReservedClientId);
        }
        for (slot, server) in servers.iter().enumerate() {
            if servers[..slot].contains(server) {
                return Err(ClerkError::DuplicateServer(*server));
            }
        }
        let count = servers.len();
        Ok(Clerk {
            client_id,
            servers,
            next_seq: 1,
            leader_slot: None,
            // So that, with no leader known, the first send goes to the first server.
            cursor_slot: count - 1,
            tried_this_round: vec![false; count],
            state: State::Idle,
        })
    }

    pub fn client_id(&self) -> ClientId {
        self.client_id
    }

    /// The seq the next operation will get.
    pub fn next_seq(&self) -> Seq {
        self.next_seq
    }

    /// The server believed to lead, if any.
    pub fn leader(&self) -> Option<ServerId> {
        self.leader_slot.map(|slot| self.servers[slot])
    }

    /// The operation in progress: its latest attempt.
    pub fn in_progress(&self) -> Option<Attempt> {
        match &self.state {
            State::Idle => None,
            State::Awaiting { attempt, .. } | State::BackingOff { attempt, .. } => Some(*attempt),
        }
    }

    /// Begins an operation: returns where to send it.
    pub fn start(&mut self, op: Op) -> Result<Action, ClerkError> {
        if let Some(attempt) = self.in_progress() {
            return Err(ClerkError::Busy { seq: attempt.seq });
        }
        let seq = self.next_seq;
        self.next_seq = seq.checked_add(1).ok_or(ClerkError::SeqExhausted)?;
        let command = Command { client_id: self.client_id, seq, op };
        Ok(self.new_round(command, Attempt { seq, number: 0 }))
    }

    /// A server answered `attempt`.
    pub fn on_answer(&mut self, attempt: Attempt, from: ServerId, answer: Answer) -> Action {
        let Some(current) = self.in_progress() else { return Action::Nothing };
        if attempt.seq != current.seq {
            return Action::Nothing;
        }
        let from_slot = self.slot_of(from);
        match answer {
            // Any attempt's reply is the operation's reply: every attempt carried the same (client, seq).
            Answer::Reply(reply) => {
                if from_slot.is_some() {
                    self.leader_slot = from_slot;
                }
                self.state = State::Idle;
                Action::Done { seq: attempt.seq, reply }
            }
            Answer::WrongLeader { leader_hint } => {
                if attempt != current || !matches!(self.state, State::Awaiting { .. }) {
                    return Action::Nothing;
                }
                if self.leader_slot.is_some() && self.leader_slot == from_slot {
                    self.leader_slot = None;
                }
                let hint_slot = leader_hint.and_then(|hint| self.slot_of(hint)).filter(|&slot| Some(slot) != from_slot);
                if hint_slot.is_some() {
                    self.leader_slot = hint_slot;
                }
                self.retry(hint_slot)
            }
        }
    }

    /// No answer came for `attempt` in time.
    pub fn on_timeout(&mut self, attempt: Attempt) -> Action {
        let State::Awaiting { attempt: current, to_slot, .. } = &self.state else { return Action::Nothing };
        if attempt != *current {
            return Action::Nothing;
        }
        if self.leader_slot == Some(*to_slot) {
            self.leader_slot = None;
        }
        self.retry(None)
    }

    /// The wait asked for by [`Action::Backoff`] is over: a new round.
    pub fn on_backoff_elapsed(&mut self, attempt: Attempt) -> Action {
        match &self.state {
            State::BackingOff { command, attempt: current } if *current == attempt => {
                let command = command.clone();
                self.new_round(command, attempt)
            }
            _ => Action::Nothing,
        }
    }

    /// Sends the current operation again: to `hint_slot` if it was not tried this round, else to the next
    /// untried server after the last one; if every server was tried, backs off.
    fn retry(&mut self, hint_slot: Option<usize>) -> Action {
        let (command, attempt) = match &self.state {
            State::Awaiting { command, attempt, .. } => (command.clone(), *attempt),
            State::Idle | State::BackingOff { .. } => unreachable!("retry only while awaiting an answer"),
        };
        let count = self.servers.len();
        let untried = |slot: &usize| !self.tried_this_round[*slot];
        let next = hint_slot
            .filter(untried)
            .or_else(|| (1..=count).map(|step| (self.cursor_slot + step) % count).find(untried));
        match next {
            Some(slot) => self.send(command, attempt, slot),
            None => {
                self.state = State::BackingOff { command, attempt };
                Action::Backoff { attempt }
            }
        }
    }

    /// Starts a round (a new operation, or after a backoff): every server is untried again; the last leader
    /// first, else the server after the last one tried.
    fn new_round(&mut self, command: Command, previous: Attempt) -> Action {
        self.tried_this_round.fill(false);
        let slot = self.leader_slot.unwrap_or((self.cursor_slot + 1) % self.servers.len());
        self.send(command, previous, slot)
    }

    fn send(&mut self, command: Command, previous: Attempt, slot: usize) -> Action {
        let attempt = Attempt { seq: previous.seq, number: previous.number.saturating_add(1) };
        self.tried_this_round[slot] = true;
        self.cursor_slot = slot;
        let to = self.servers[slot];
        self.state = State::Awaiting { command: command.clone(), attempt, to_slot: slot };
        Action::Send { to, attempt, command }
    }

    fn slot_of(&self, server: ServerId) -> Option<usize> {
        self.servers.iter().position(|&s| s == server)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get() -> Op {
        Op::Get { key: "k".into() }
    }

    fn sent(action: Action) -> (ServerId, Attempt, Command) {
        match action {
            Action::Send { to, attempt, command } => (to, attempt, command),
            other => panic!("expected a send, got {other:?}"),
        }
    }

    fn ok() -> Answer {
        Answer::Reply(Reply::NotFound)
    }

    #[test]
    fn refuses_bad_server_lists() {
        assert_eq!(Clerk::new(1, vec![]).err(), Some(ClerkError::NoServers));
        assert_eq!(Clerk::new(NO_SESSION, vec![1]).err(), Some(ClerkError::ReservedClientId));
        assert_eq!(Clerk::new(1, vec![3, 4, 3]).err(), Some(ClerkError::DuplicateServer(3)));
    }

    #[test]
    fn retries_keep_the_seq_and_a_new_operation_gets_the_next() {
        let mut clerk = Clerk::new(42, vec![10, 11, 12]).expect("valid");
        let first = clerk.start(get()).expect("idle");
        let (to, attempt, command) = sent(first);
        assert_eq!((to, command.client_id, command.seq), (10, 42, 1));
        let retry = clerk.on_timeout(attempt);
        let (to2, attempt2, command2) = sent(retry);
        assert_eq!((to2, &command2), (11, &command));
        assert_eq!(attempt2, Attempt { seq: 1, number: 2 });
        let retry = clerk.on_answer(attempt2, 11, Answer::WrongLeader { leader_hint: None });
        assert_eq!(sent(retry).2.seq, 1);
        assert_eq!(clerk.on_answer(attempt2, 12, ok()), Action::Done { seq: 1, reply: Reply::NotFound });
        let next = clerk.start(get()).expect("idle");
        assert_eq!(sent(next).2.seq, 2);
    }

    #[test]
    fn one_operation_at_a_time() {
        let mut clerk = Clerk::new(1, vec![1]).expect("valid");
        clerk.start(get()).expect("idle");
        assert_eq!(clerk.start(get()), Err(ClerkError::Busy { seq: 1 }));
    }

    #[test]
    fn follows_leader_hints_and_remembers_the_leader() {
        let mut clerk = Clerk::new(1, vec![1, 2, 3, 4, 5]).expect("valid");
        let (_, attempt, _) = sent(clerk.start(get()).expect("idle"));
        let hinted = clerk.on_answer(attempt, 1, Answer::WrongLeader { leader_hint: Some(4) });
        let (to, attempt, _) = sent(hinted);
        assert_eq!(to, 4);
        assert_eq!(clerk.leader(), Some(4), "a hint is the freshest belief about the leader");
        assert!(matches!(clerk.on_answer(attempt, 4, ok()), Action::Done { .. }));
        // The next operation goes straight to the leader.
        assert_eq!(sent(clerk.start(get()).expect("idle")).0, 4);
    }

    #[test]
    fn ignores_hints_to_unknown_or_already_tried_servers() {
        let mut clerk = Clerk::new(1, vec![1, 2, 3]).expect("valid");
        let (_, attempt, _) = sent(clerk.start(get()).expect("idle"));
        let next = clerk.on_answer(attempt, 1, Answer::WrongLeader { leader_hint: Some(99) });
        let (to, attempt, _) = sent(next);
        assert_eq!(to, 2, "an unknown server is not followed: rotation");
        // Server 2 points back at 1, which was tried this round: the rotation goes on to 3 instead of looping.
        let next = clerk.on_answer(attempt, 2, Answer::WrongLeader { leader_hint: Some(1) });
        assert_eq!(sent(next).0, 3);
    }

    #[test]
    fn rotation_covers_every_server_then_backs_off_then_starts_a_new_round() {
        let servers = vec![7, 8, 9, 10];
        let mut clerk = Clerk::new(1, servers.clone()).expect("valid");
        let mut action = clerk.start(get()).expect("idle");
        let mut seen = Vec::new();
        let attempt = loop {
            match action {
                Action::Send { to, attempt, .. } => {
                    seen.push(to);
                    action = clerk.on_timeout(attempt);
                }
                Action::Backoff { attempt } => break attempt,
                other => panic!("unexpected {other:?}"),
            }
        };
        seen.sort_unstable();
        assert_eq!(seen, servers, "each server once per round");
        assert_eq!(attempt.number, 4);
        let (to, attempt, command) = sent(clerk.on_backoff_elapsed(attempt));
        assert_eq!((command.seq, attempt.number), (1, 5));
        assert_eq!(to, 7, "the rotation continues after the last server tried");
        // A late reply to the first attempt still finishes the operation, once.
        let first = Attempt { seq: 1, number: 1 };
        assert!(matches!(clerk.on_answer(first, 7, ok()), Action::Done { seq: 1, .. }));
        assert_eq!(clerk.on_answer(attempt, 7, ok()), Action::Nothing, "Done only once");
    }

    #[test]
    fn stale_events_change_nothing() {
        let mut clerk = Clerk::new(1, vec![1, 2]).expect("valid");
        let (_, first, _) = sent(clerk.start(get()).expect("idle"));
        let (_, second, _) = sent(clerk.on_timeout(first));
        assert_eq!(clerk.on_timeout(first), Action::Nothing, "a superseded attempt's timer");
        assert_eq!(clerk.on_answer(first, 1, Answer::WrongLeader { leader_hint: None }), Action::Nothing);
        assert_eq!(clerk.in_progress(), Some(second));
        assert_eq!(clerk.on_backoff_elapsed(second), Action::Nothing, "not backing off");
        assert!(matches!(clerk.on_answer(second, 2, ok()), Action::Done { .. }));
        assert_eq!(clerk.on_timeout(second), Action::Nothing);
        assert_eq!(clerk.on_answer(Attempt { seq: 0, number: 1 }, 2, ok()), Action::Nothing, "another seq");
    }

    #[test]
    fn a_silent_leader_is_forgotten() {
        let mut clerk = Clerk::new(1, vec![1, 2, 3]).expect("valid");
        let (_, attempt, _) = sent(clerk.start(get()).expect("idle"));
        clerk.on_answer(attempt, 2, ok());
        assert_eq!(clerk.leader(), Some(2));
        let (to, attempt, _) = sent(clerk.start(get()).expect("idle"));
        assert_eq!(to, 2);
        let (to, _, _) = sent(clerk.on_timeout(attempt));
        assert_eq!(clerk.leader(), None);
        assert_eq!(to, 3);
    }
}
