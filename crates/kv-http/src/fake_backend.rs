//! A one-node backend for tests and examples: a `KvService` applied directly under a mutex (no Raft, no disk),
//! with switches that make the next calls fail the ways a real cluster does.
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard};

use keel_kv::{Command, KvService};
use keel_raft::Index;
use keel_replica::Service;

use crate::backend::{BackendError, Executed, KvBackend, NodeStatus, Role};

/// How the next call to [`FakeBackend::execute`] fails (each injected fault is used by one call, in order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `NoLeader`; nothing applied.
    NoLeader,
    /// `Overloaded`; nothing applied.
    Overloaded,
    /// `Stopped`; nothing applied.
    Stopped,
    /// `TimedOut`; nothing applied (the proposal was lost).
    TimedOutBeforeApplying,
    /// The command IS applied, then `TimedOut`: the case exactly-once retries exist for.
    TimedOutAfterApplying,
    /// The command IS applied, then `Unknown` (the leader lost its leadership after committing).
    UnknownAfterApplying,
    /// Never answers: the front end's request deadline must fire.
    Hang,
}

#[derive(Debug)]
struct State {
    service: KvService,
    faults: VecDeque<Fault>,
    calls: u64,
}

/// See the module documentation.
#[derive(Debug)]
pub struct FakeBackend {
    id: u64,
    state: Mutex<State>,
}

impl FakeBackend {
    pub fn new(id: u64) -> FakeBackend {
        FakeBackend { id, state: Mutex::new(State { service: KvService::new(), faults: VecDeque::new(), calls: 0 }) }
    }

    /// Makes a later call fail: faults are used one per call, in the order injected.
    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push_back(fault);
    }

    /// Calls to `execute` so far.
    pub fn calls(&self) -> u64 {
        self.lock().calls
    }

    /// Commands applied so far (= the last log index: each applied command takes one).
    pub fn applied_index(&self) -> Index {
        self.lock().service.applied_index()
    }

    /// A key's value and index, read directly.
    pub fn value(&self, key: &str) -> Option<(String, Index)> {
        self.lock().service.get(key).map(|(value, index)| (value.to_owned(), index))
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already; its state is still readable.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn apply(state: &mut State, command: &Command) -> Executed {
        let index = state.service.applied_index() + 1;
        let reply = state.service.apply(index, &command.encode());
        Executed { index, reply }
    }
}

impl KvBackend for FakeBackend {
    async fn execute(&self, command: Command) -> Result<Executed, BackendError> {
        let outcome = {
            let mut state = self.lock();
            state.calls += 1;
            match state.faults.pop_front() {
                None => Ok(FakeBackend::apply(&mut state, &command)),
                Some(Fault::NoLeader) => Err(Some(BackendError::NoLeader)),
                Some(Fault::Overloaded) => Err(Some(BackendError::Overloaded)),
                Some(Fault::Stopped) => Err(Some(BackendError::Stopped { reason: "injected fault".into() })),
                Some(Fault::TimedOutBeforeApplying) => Err(Some(BackendError::TimedOut)),
                Some(Fault::TimedOutAfterApplying) => {
                    FakeBackend::apply(&mut state, &command);
                    Err(Some(BackendError::TimedOut))
                }
                Some(Fault::UnknownAfterApplying) => {
                    FakeBackend::apply(&mut state, &command);
                    Err(Some(BackendError::Unknown { reason: "leadership lost (injected fault)".into() }))
                }
                Some(Fault::Hang) => Err(None),
            }
        };
        match outcome {
            Ok(executed) => Ok(executed),
            Err(Some(error)) => Err(error),
            Err(None) => std::future::pending().await,
        }
    }

    fn status(&self) -> NodeStatus {
        let applied_index = self.applied_index();
        NodeStatus {
            id: self.id,
            role: Role::Leader,
            term: 1,
            leader: Some(self.id),
            commit_index: applied_index,
            applied_index,
            members: vec![self.id],
        }
    }
}
