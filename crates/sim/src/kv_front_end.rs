//! The KV tester's transport and the servers' front end, in virtual time: a clerk's request crosses the simulated
//! network to a server; a server that leads proposes it and answers when the replica hands out the proposal's
//! outcome, one that does not answers "wrong leader" at once; answers cross back; timeouts and backoffs fire. The
//! event loop interleaves these client-side events with the cluster's, so each happens at its own virtual instant.
use keel_kv::{Action, Answer, Attempt, Op, Reply};
use keel_replica::{Outcome, Proposal};

use crate::kv_tester::{CLERK_BACKOFF_MS, ClerkId, FrontEndBug, KvTester, UNREACHABLE_FAILS_WITHIN_MS};
use crate::network::Fate;
use crate::sim_service::SimOutput;

/// Something that happens to a clerk's request at a virtual instant.
pub(crate) enum KvEvent {
    /// The request reaches the server.
    Request { clerk: ClerkId, server: usize, attempt: Attempt, command: Vec<u8> },
    /// The server's answer reaches the clerk.
    Answer { clerk: ClerkId, server: usize, attempt: Attempt, answer: Answer },
    /// The clerk stops waiting for an answer to `attempt`.
    Timeout { clerk: ClerkId, attempt: Attempt },
    /// The clerk's backoff is over.
    BackoffElapsed { clerk: ClerkId, attempt: Attempt },
}

impl KvTester {
    /// Runs the cluster and the clerks until `target_ms`, or until `stop` holds (checked after every client-side
    /// event). Returns whether `stop` held.
    pub(crate) fn run(&mut self, target_ms: u64, stop: impl Fn(&KvTester) -> bool) -> bool {
        loop {
            if stop(self) {
                return true;
            }
            let next_event_ms = self.events.first_key_value().map(|(&(at_ms, _), _)| at_ms);
            let until_ms = next_event_ms.map_or(target_ms, |at_ms| at_ms.min(target_ms));
            if self.cluster.run_until_outcome(until_ms) {
                self.answer_outcomes();
                continue;
            }
            let now = self.now_ms();
            while let Some(entry) = self.events.first_entry() {
                if entry.key().0 > now {
                    break;
                }
                let event = entry.remove();
                self.handle(event);
                self.answer_outcomes();
                if stop(self) {
                    return true;
                }
            }
            if now >= target_ms {
                self.check_timeout();
                return false;
            }
        }
    }

    fn schedule(&mut self, at_ms: u64, event: KvEvent) {
        self.events_scheduled += 1;
        self.events.insert((at_ms, self.events_scheduled), event);
    }

    // ----- The transport and the servers' front end ------------------------------------------------------------

    /// Whether `clerk` can exchange messages with `server` now.
    fn reachable(&self, clerk: ClerkId, server: usize) -> bool {
        self.clerks[clerk].links[server] && self.cluster.net.is_connected(server) && self.cluster.is_alive(server)
    }

    /// Sends a message across the network: schedules `make(copy)` after each delivered copy's delay.
    fn transmit(&mut self, is_request: bool, make: impl Fn() -> KvEvent) {
        let now = self.now_ms();
        let fate = self.cluster.client_message_fate(is_request);
        if let Fate::DeliverAfterMs(delay_ms, copy_delay_ms) = fate {
            self.schedule(now + delay_ms, make());
            if let Some(copy_delay_ms) = copy_delay_ms {
                self.schedule(now + copy_delay_ms, make());
            }
        }
    }

    pub(crate) fn perform(&mut self, clerk: ClerkId, action: Action) {
        let now = self.now_ms();
        match action {
            Action::Send { to, attempt, command } => {
                let Some(server) = self.cluster.slot_of(to) else {
                    self.fail(&format!("clerk {clerk} sends to unknown server {to}"))
                };
                if self.reachable(clerk, server) {
                    let bytes = command.encode();
                    self.transmit(true, || KvEvent::Request { clerk, server, attempt, command: bytes.clone() });
                    self.schedule(now + self.rpc_timeout_ms, KvEvent::Timeout { clerk, attempt });
                } else {
                    let after_ms = self.rng.range(0, UNREACHABLE_FAILS_WITHIN_MS);
                    self.schedule(now + after_ms, KvEvent::Timeout { clerk, attempt });
                }
            }
            Action::Backoff { attempt } => {
                self.schedule(now + CLERK_BACKOFF_MS, KvEvent::BackoffElapsed { clerk, attempt })
            }
            Action::Done { seq, reply } => {
                if let Err(e) = self.history.returned(now, clerk, seq, &reply) {
                    self.fail(&e);
                }
                self.ops_completed += 1;
                let slot = &mut self.clerks[clerk];
                slot.current = None;
                slot.finished = Some(reply.clone());
                self.drive_client(clerk, Some(reply));
            }
            Action::Nothing => {}
        }
    }

    fn handle(&mut self, event: KvEvent) {
        match event {
            KvEvent::Request { clerk, server, attempt, command } => {
                // A request that finds the server gone is lost; the clerk's timer notices.
                if !self.reachable(clerk, server) {
                    return;
                }
                if self.bug == FrontEndBug::LocalReads
                    && let Some(answer) = self.local_read(server, &command)
                {
                    self.answer(server, clerk, attempt, answer);
                    return;
                }
                match self.cluster.propose(server, command) {
                    Some((index, term)) => {
                        let incarnation = self.cluster.incarnation(server);
                        self.pending.insert((server, incarnation, Proposal { index, term }), (clerk, attempt));
                    }
                    None => {
                        let leader_hint = self.cluster.raft(server).and_then(|r| r.leader_hint());
                        self.answer(server, clerk, attempt, Answer::WrongLeader { leader_hint });
                    }
                }
            }
            KvEvent::Answer { clerk, server, attempt, answer } => {
                let from = self.cluster.id_of(server);
                let action = self.clerks[clerk].clerk.on_answer(attempt, from, answer);
                self.perform(clerk, action);
            }
            KvEvent::Timeout { clerk, attempt } => {
                let action = self.clerks[clerk].clerk.on_timeout(attempt);
                self.perform(clerk, action);
            }
            KvEvent::BackoffElapsed { clerk, attempt } => {
                let action = self.clerks[clerk].clerk.on_backoff_elapsed(attempt);
                self.perform(clerk, action);
            }
        }
    }

    /// [`FrontEndBug::LocalReads`]: a get answered from the server's own state, if it believes it leads.
    fn local_read(&self, server: usize, command: &[u8]) -> Option<Answer> {
        let Ok(keel_kv::Command { op: Op::Get { key }, .. }) = keel_kv::Command::decode(command) else { return None };
        if !self.cluster.state(server).is_some_and(|(_, leader)| leader) {
            return None;
        }
        let service = self.cluster.kv_service(server)?;
        let reply = match service.get(&key) {
            Some((value, modified_index)) => Reply::Value { value: value.to_string(), modified_index },
            None => Reply::NotFound,
        };
        Some(Answer::Reply(reply))
    }

    /// Answers the requests whose proposals' outcomes the replicas handed out.
    fn answer_outcomes(&mut self) {
        for outcome in self.cluster.take_outcomes() {
            let key = (outcome.node, outcome.incarnation, outcome.proposal);
            // Every proposal this front end makes has a waiter until its outcome comes; none is missing unless the
            // tester shut its server down since (and then the waiters went with it): nothing to answer.
            let Some((clerk, attempt)) = self.pending.remove(&key) else { continue };
            let answer = match outcome.outcome {
                Outcome::Applied(SimOutput::Kv(reply)) => Answer::Reply(reply),
                Outcome::Applied(SimOutput::Tester) => self.fail("a KV server applied a command as the tester's"),
                // Another entry won the index, or this server can no longer tell: "wrong leader", and the clerk
                // retries with the same (client, seq), which the service applies at most once.
                Outcome::NotApplied | Outcome::Unknown(_) => Answer::WrongLeader { leader_hint: None },
            };
            self.answer(outcome.node, clerk, attempt, answer);
        }
    }

    /// The server's answer to a request goes back across the network (if the clerk is still reachable).
    fn answer(&mut self, server: usize, clerk: ClerkId, attempt: Attempt, answer: Answer) {
        if !self.reachable(clerk, server) {
            return;
        }
        self.transmit(false, || KvEvent::Answer { clerk, server, attempt, answer: answer.clone() });
    }
}
