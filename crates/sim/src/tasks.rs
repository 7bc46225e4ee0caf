//! Client activities that run "concurrently" with a test's main line, like the goroutines of 6.824's tests.
//! A task is a small state machine the tester polls whenever its wake-up time comes.
use keel_raft::Index;

use crate::tester::{Tester, u64_command};

pub enum TaskResult {
    Index(Index),
    Values(Vec<u64>),
}

pub enum Poll {
    /// Poll again after this many virtual ms (at least 1).
    SleepMs(u64),
    Done(TaskResult),
}

pub trait Task {
    fn poll(&mut self, t: &mut Tester) -> Poll;
}

/// 6.824's `one(cmd, expectedServers, retry)`: submit the command to whichever connected server accepts it, and
/// wait for `expected` servers to commit it; fail the test after 10 s (or after one 2 s attempt without retry).
pub struct One {
    command: Vec<u8>,
    expected: usize,
    retry: bool,
    started_ms: Option<u64>,
    next_server: usize,
    attempt: Option<(Index, u64)>,
}

/// Overall budget of `one()`.
pub const ONE_TIMEOUT_MS: u64 = 10_000;
/// Per-attempt budget of `one()`.
pub const ONE_ATTEMPT_MS: u64 = 2_000;

impl One {
    pub fn new(command: Vec<u8>, expected: usize, retry: bool) -> One {
        One { command, expected, retry, started_ms: None, next_server: 0, attempt: None }
    }
}

impl Task for One {
    fn poll(&mut self, t: &mut Tester) -> Poll {
        let now = t.now_ms();
        let started = *self.started_ms.get_or_insert(now);
        if self.attempt.is_none() {
            if now - started >= ONE_TIMEOUT_MS {
                t.fail(&format!("one({}) failed to reach agreement", crate::checker::describe(&self.command)));
            }
            let n = t.servers();
            for _ in 0..n {
                self.next_server = (self.next_server + 1) % n;
                if t.is_connected(self.next_server)
                    && let Some((index, _)) = t.start(self.next_server, self.command.clone())
                {
                    self.attempt = Some((index, now));
                    break;
                }
            }
            if self.attempt.is_none() {
                return Poll::SleepMs(50);
            }
        }
        let Some((index, attempt_started)) = self.attempt else { return Poll::SleepMs(50) };
        let (count, committed) = t.n_committed(index);
        if count > 0 && count >= self.expected && committed.as_deref() == Some(self.command.as_slice()) {
            return Poll::Done(TaskResult::Index(index));
        }
        if now - attempt_started < ONE_ATTEMPT_MS {
            return Poll::SleepMs(20);
        }
        if !self.retry {
            t.fail(&format!("one({}) failed to reach agreement", crate::checker::describe(&self.command)));
        }
        self.attempt = None;
        if now - started >= ONE_TIMEOUT_MS {
            t.fail(&format!("one({}) failed to reach agreement", crate::checker::describe(&self.command)));
        }
        Poll::SleepMs(50)
    }
}

/// A churn client (6.824's `cfn` in internalChurn): keeps proposing random values to every live server and records
/// each value it then sees committed at the index it was given.
pub struct ChurnClient {
    me: u64,
    values: Vec<u64>,
    pending: Option<(Index, u64, usize)>,
}

/// Sleeps between commit checks, from internalChurn.
const CHURN_POLL_SLEEPS_MS: [u64; 5] = [10, 20, 50, 100, 200];

impl ChurnClient {
    pub fn new(me: u64) -> ChurnClient {
        ChurnClient { me, values: Vec::new(), pending: None }
    }
}

impl Task for ChurnClient {
    fn poll(&mut self, t: &mut Tester) -> Poll {
        if t.clients_stopped() {
            return Poll::Done(TaskResult::Values(std::mem::take(&mut self.values)));
        }
        if let Some((index, x, step)) = self.pending {
            let (count, committed) = t.n_committed(index);
            if count > 0 {
                if committed == Some(u64_command(x)) {
                    self.values.push(x);
                }
                self.pending = None;
            } else if step + 1 < CHURN_POLL_SLEEPS_MS.len() {
                self.pending = Some((index, x, step + 1));
                return Poll::SleepMs(CHURN_POLL_SLEEPS_MS[step + 1]);
            } else {
                self.pending = None;
            }
        }
        let x = t.rand_u64() >> 1;
        let mut accepted = None;
        for server in 0..t.servers() {
            if let Some((index, _)) = t.start(server, u64_command(x)) {
                accepted = Some(index);
            }
        }
        match accepted {
            Some(index) => {
                self.pending = Some((index, x, 0));
                Poll::SleepMs(CHURN_POLL_SLEEPS_MS[0])
            }
            None => Poll::SleepMs(79 + self.me * 17),
        }
    }
}
