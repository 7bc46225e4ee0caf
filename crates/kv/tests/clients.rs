//! Clerks, the service and the checker together, over a toy network that loses, duplicates and delays requests
//! and replies and moves the leader around. The servers share one log (one `KvService` stands for the
//! replicated state machine): what is tested is the client side of exactly-once, not Raft. Every history must be
//! linearizable and every client's appends must appear exactly once, in order (6.824's `checkClntAppends`); with
//! the dedup table bypassed, the same runs must be caught.
use std::collections::BTreeMap;

use keel_kv::{Action, Answer, Attempt, Clerk, Command, KvService, Op, Reply, ServerId};
use keel_lincheck::{IndexedKvModel, Operation, SearchLimits, Verdict, check};
use keel_replica::Service;

mod common;
use common::{Rng, checked_input, checked_output};

const SERVERS: [ServerId; 3] = [1, 2, 3];
const CLIENTS: u64 = 4;
const OPS_PER_CLIENT: u64 = 60;
const TIMEOUT_MS: u64 = 100;
const BACKOFF_MS: u64 = 50;
/// The run stops here even if operations are in flight: those are timed out in the history.
const RUN_MS: u64 = 60_000;

#[derive(Debug)]
enum Event {
    Start { client: u64 },
    Request { to: ServerId, client: u64, attempt: Attempt, command: Command },
    Answer { client: u64, attempt: Attempt, from: ServerId, answer: Answer },
    Timeout { client: u64, attempt: Attempt },
    BackoffElapsed { client: u64, attempt: Attempt },
}

struct Run {
    rng: Rng,
    now_ms: u64,
    queue: BTreeMap<(u64, u64), Event>,
    next_event: u64,
    service: KvService,
    leader: ServerId,
    clerks: Vec<Clerk>,
    /// Per client: the operation in flight, its call time.
    in_flight: Vec<Option<(Op, u64)>>,
    done_ops: Vec<u64>,
    history: Vec<Operation<keel_lincheck::IndexedKvInput, keel_lincheck::IndexedKvOutput>>,
    /// Appends each client's operations asked for, in order, by key.
    appended: Vec<Vec<(String, String)>>,
    dedup: bool,
    /// Without dedup: how many one-off client ids were used.
    fake_clients: u64,
}

impl Run {
    fn schedule(&mut self, delay_ms: u64, event: Event) {
        self.queue.insert((self.now_ms + delay_ms, self.next_event), event);
        self.next_event += 1;
    }

    fn next_op(&mut self, client: u64) -> Op {
        let j = self.done_ops[client as usize];
        let key = format!("k{}", self.rng.below(3));
        match self.rng.below(10) {
            0..=5 => Op::Append { key, value: format!("{client}.{j},") },
            6 => Op::Put { key, value: format!("{client}.{j},") },
            _ => Op::Get { key },
        }
    }

    fn act(&mut self, client: u64, action: Action) {
        match action {
            Action::Send { to, attempt, command } => {
                if !self.rng.chance(10) {
                    let delay = 1 + self.rng.below(30);
                    self.schedule(delay, Event::Request { to, client, attempt, command });
                }
                self.schedule(TIMEOUT_MS, Event::Timeout { client, attempt });
            }
            Action::Backoff { attempt } => self.schedule(BACKOFF_MS, Event::BackoffElapsed { client, attempt }),
            Action::Done { reply, .. } => {
                let (op, call_ms) = self.in_flight[client as usize].take().expect("an operation in flight");
                self.record(client, op, call_ms, Some(reply));
                self.done_ops[client as usize] += 1;
                if self.done_ops[client as usize] < OPS_PER_CLIENT {
                    let think = self.rng.below(20);
                    self.schedule(think, Event::Start { client });
                }
            }
            Action::Nothing => {}
        }
    }

    fn record(&mut self, client: u64, op: Op, call_ms: u64, reply: Option<Reply>) {
        if let Op::Append { key, value } = &op {
            self.appended[client as usize].push((key.clone(), value.clone()));
        }
        let Some(input) = checked_input(&op) else { return };
        let op = match reply {
            Some(reply) => {
                let output = checked_output(&reply).expect("no rejections in this run");
                Operation::returned(client, call_ms * 1000, self.now_ms * 1000, input, output)
            }
            None => Operation::timed_out(client, call_ms * 1000, input),
        };
        self.history.push(op);
    }

    fn step(&mut self, event: Event) {
        match event {
            Event::Start { client } => {
                let op = self.next_op(client);
                self.in_flight[client as usize] = Some((op.clone(), self.now_ms));
                let action = self.clerks[client as usize].start(op).expect("one operation at a time");
                self.act(client, action);
            }
            Event::Request { to, client, attempt, command } => {
                // Sometimes the leader moves (to any server, even one that will not say so).
                if self.rng.chance(5) {
                    self.leader = SERVERS[self.rng.below(3) as usize];
                }
                let answer = if to == self.leader {
                    let mut applied = command.clone();
                    if !self.dedup {
                        // The bug this test must catch: every delivery is a new request.
                        self.fake_clients += 1;
                        applied.client_id = 1_000_000 + self.fake_clients;
                        applied.seq = 1;
                    }
                    let index = self.service.applied_index() + 1;
                    Answer::Reply(self.service.apply(index, &applied.encode()))
                } else {
                    let hint = self.rng.chance(70).then_some(self.leader);
                    Answer::WrongLeader { leader_hint: hint }
                };
                if self.rng.chance(10) {
                    // The network delivers the request again, later.
                    let delay = 1 + self.rng.below(200);
                    self.schedule(delay, Event::Request { to, client, attempt, command });
                }
                if !self.rng.chance(15) {
                    let delay = 1 + self.rng.below(30);
                    self.schedule(delay, Event::Answer { client, attempt, from: to, answer });
                }
            }
            Event::Answer { client, attempt, from, answer } => {
                let action = self.clerks[client as usize].on_answer(attempt, from, answer);
                self.act(client, action);
            }
            Event::Timeout { client, attempt } => {
                let action = self.clerks[client as usize].on_timeout(attempt);
                self.act(client, action);
            }
            Event::BackoffElapsed { client, attempt } => {
                let action = self.clerks[client as usize].on_backoff_elapsed(attempt);
                self.act(client, action);
            }
        }
    }
}

/// Runs one seed; returns the verdict and whether every client's appends appear exactly once, in order.
fn run(seed: u64, dedup: bool) -> (Verdict, Result<(), String>) {
    let mut run = Run {
        rng: Rng(seed),
        now_ms: 0,
        queue: BTreeMap::new(),
        next_event: 0,
        service: KvService::new(),
        leader: 1,
        clerks: (0..CLIENTS).map(|c| Clerk::new(100 + c, SERVERS.to_vec()).expect("servers")).collect(),
        in_flight: vec![None; CLIENTS as usize],
        done_ops: vec![0; CLIENTS as usize],
        history: Vec::new(),
        appended: vec![Vec::new(); CLIENTS as usize],
        dedup,
        fake_clients: 0,
    };
    for client in 0..CLIENTS {
        run.schedule(client, Event::Start { client });
    }
    while let Some(((at_ms, _), event)) = run.queue.pop_first() {
        if at_ms > RUN_MS {
            break;
        }
        run.now_ms = at_ms;
        run.step(event);
    }
    for client in 0..CLIENTS {
        if let Some((op, call_ms)) = run.in_flight[client as usize].take() {
            run.record(client, op, call_ms, None);
        }
    }
    assert_eq!(run.done_ops, vec![OPS_PER_CLIENT; CLIENTS as usize], "seed {seed}: every client finished in time");
    let verdict = check(&IndexedKvModel, &run.history, SearchLimits::default()).expect("a valid history");
    (verdict, appends_once_in_order(&run))
}

/// 6.824's check, adapted to puts that may overwrite: each client's appends that survive in a key's final value
/// appear there once each, in the client's order.
fn appends_once_in_order(run: &Run) -> Result<(), String> {
    for (client, appends) in run.appended.iter().enumerate() {
        for key in ["k0", "k1", "k2"] {
            let Some((value, _)) = run.service.get(key) else { continue };
            let mut last_position = None;
            for (k, piece) in appends.iter().filter(|(k, _)| k == key) {
                let found: Vec<_> = value.match_indices(piece.as_str()).map(|(p, _)| p).collect();
                if found.len() > 1 {
                    return Err(format!("client {client}'s append {piece:?} appears {} times in {k}", found.len()));
                }
                if let Some(&position) = found.first() {
                    if last_position.is_some_and(|last| position < last) {
                        return Err(format!("client {client}'s append {piece:?} is out of order in {k}"));
                    }
                    last_position = Some(position);
                }
            }
        }
    }
    Ok(())
}

#[test]
fn retries_through_loss_duplication_and_leader_moves_are_exactly_once_and_linearizable() {
    for seed in 0..8 {
        let (verdict, appends) = run(seed, true);
        assert_eq!(verdict, Verdict::Linearizable, "seed {seed}");
        assert_eq!(appends, Ok(()), "seed {seed}");
    }
}

#[test]
fn without_the_dedup_table_the_same_runs_are_caught() {
    let caught = (0..8)
        .filter(|&seed| {
            let (verdict, appends) = run(seed, false);
            matches!(verdict, Verdict::NotLinearizable(_)) || appends.is_err()
        })
        .count();
    assert_eq!(caught, 8, "only {caught} of 8 runs without dedup were caught");
}
