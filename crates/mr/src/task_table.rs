//! The coordinator's task table: a pure state machine, no I/O, no clock.
//!
//! Every task is `Idle`, `InProgress { attempt, deadline }`, `Committing { attempt }` or `Done { attempt }`.
//! Events drive it: a worker asks for work ([`TaskTable::request`]), a worker reports the outcome of an
//! attempt ([`TaskTable::report`]), the caller finished (or failed) the commit it was told to do
//! ([`TaskTable::commit_finished`]), a worker's connection is lost ([`TaskTable::abandon`]), and time passes
//! ([`TaskTable::tick`]). Time is an argument (a
//! `Duration` since the job started), so tests drive it by hand and the same code runs under a real clock.
//!
//! The rules the rest of the engine relies on:
//! - A task has at most one attempt on record. Only a report from that attempt can move the task forward;
//!   every other report (late, duplicate, foreign) is answered with [`Verdict::Ignore`] and the caller removes
//!   that attempt's files.
//! - `Done` is final: nothing moves a task out of it.
//! - Reduce tasks are handed out only after every map task is `Done`.
//! - With no timeouts and no failures, every task is handed out exactly once.
//!
//! See `README.md` in this crate for the state diagram.
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How many reported failures one task may have before the whole job fails. A deterministic bug in the
/// app would otherwise loop forever; 4 is Hadoop's `mapreduce.map.maxattempts`.
pub const MAX_FAILED_ATTEMPTS_PER_TASK: u32 = 4;

/// Largest table whose invariants are re-checked after every event in debug builds.
const DEBUG_CHECK_TASKS_MAX: usize = 1000;

/// One unit of work: map task `m` (one input split) or reduce task `r` (one output partition).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TaskId {
    Map(u32),
    Reduce(u32),
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TaskId::Map(m) => write!(f, "map task {m}"),
            TaskId::Reduce(r) => write!(f, "reduce task {r}"),
        }
    }
}

/// Identifies one execution of one task. Unique within a job, never reused, so a late report can always be
/// told apart from the attempt currently on record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AttemptId(pub u64);

impl fmt::Display for AttemptId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "attempt {}", self.0)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskState {
    /// Waiting to be handed out (never started, timed out, or its last attempt failed).
    Idle,
    /// Handed to a worker; if no report arrives by `deadline` the task goes back to `Idle`.
    InProgress { attempt: AttemptId, deadline: Duration },
    /// The attempt reported success; the caller is renaming its files into place.
    Committing { attempt: AttemptId },
    /// Output of `attempt` is committed. Final.
    Done { attempt: AttemptId },
}

/// What a worker asking for work should do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    Run {
        task: TaskId,
        attempt: AttemptId,
    },
    /// Nothing to hand out now (tasks in progress, or reduces waiting for maps); ask again later.
    Wait,
    /// The job is over (done or failed): the worker should exit.
    Exit,
}

/// How an attempt ended, as reported by the worker that ran it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    /// `permanent` failures (bad input: unreadable, not UTF-8) would fail again on any worker, so the job
    /// fails at once instead of retrying.
    Failed {
        permanent: bool,
        error: String,
    },
}

/// Why a report was not acted upon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IgnoreReason {
    /// No such task in this job, or an attempt id this table never issued.
    Foreign,
    /// The task is on record with another attempt (this one timed out and the task was reassigned).
    Stale,
    /// The task is already committing or done.
    AlreadyFinished,
    /// The job is over.
    JobOver,
}

/// The table's answer to a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The attempt on record succeeded: the caller must commit its files (atomic rename) and then call
    /// [`TaskTable::commit_finished`].
    Commit { task: TaskId },
    /// The failure was recorded; the task is idle again and will be retried.
    Retry { task: TaskId },
    /// The failure ended the job (permanent, or too many failures of this task).
    JobFailed { task: TaskId },
    /// Not the attempt on record: the caller must remove this attempt's files and change nothing else.
    Ignore { reason: IgnoreReason },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobStatus {
    Running,
    Succeeded,
    Failed { reason: String },
}

/// Counts for progress displays and the end-of-job summary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub total: u32,
    pub idle: u32,
    pub in_progress: u32,
    pub done: u32,
    /// Attempts started for a task that had been started before (after a timeout or a failure).
    pub reexecutions: u64,
    pub timeouts: u64,
    /// Attempts given up because the worker running them disconnected (died, most likely).
    pub abandoned: u64,
    pub failed_attempts: u64,
    pub ignored_reports: u64,
}

#[derive(Clone, Debug)]
struct Task {
    state: TaskState,
    attempts_started: u32,
    failed_attempts: u32,
}

impl Task {
    fn new() -> Task {
        Task { state: TaskState::Idle, attempts_started: 0, failed_attempts: 0 }
    }
}

#[derive(Clone, Debug)]
pub struct TaskTable {
    maps: Vec<Task>,
    reduces: Vec<Task>,
    task_timeout: Duration,
    next_attempt: u64,
    /// Every attempt ever issued, so a report can be checked against the task it was issued for.
    issued: HashMap<AttemptId, TaskId>,
    /// Tasks in `Idle`, in order (maps sort before reduces), so handing out work is O(log n) even with the
    /// paper's 200,000 map tasks.
    idle: BTreeSet<TaskId>,
    /// `(deadline, task)` of every task in `InProgress`, earliest first, so `tick` only looks at the expired.
    deadlines: BTreeSet<(Duration, TaskId)>,
    status: JobStatus,
    maps_done: u32,
    reduces_done: u32,
    counts: TaskCounts,
}

impl TaskTable {
    /// A table for `map_tasks` maps and `reduce_tasks` reduces. Both must be at least 1.
    pub fn new(map_tasks: u32, reduce_tasks: u32, task_timeout: Duration) -> TaskTable {
        assert!(map_tasks > 0 && reduce_tasks > 0, "a job needs at least one map and one reduce task");
        TaskTable {
            maps: (0..map_tasks).map(|_| Task::new()).collect(),
            reduces: (0..reduce_tasks).map(|_| Task::new()).collect(),
            task_timeout,
            next_attempt: 1,
            issued: HashMap::new(),
            idle: (0..map_tasks).map(TaskId::Map).chain((0..reduce_tasks).map(TaskId::Reduce)).collect(),
            deadlines: BTreeSet::new(),
            status: JobStatus::Running,
            maps_done: 0,
            reduces_done: 0,
            counts: TaskCounts::default(),
        }
    }

    pub fn status(&self) -> &JobStatus {
        &self.status
    }

    pub fn is_over(&self) -> bool {
        self.status != JobStatus::Running
    }

    pub fn state(&self, task: TaskId) -> Option<TaskState> {
        self.task(task).map(|t| t.state)
    }

    pub fn counts(&self) -> TaskCounts {
        let mut counts = self.counts;
        counts.total = (self.maps.len() + self.reduces.len()) as u32;
        counts.idle = self.idle.len() as u32;
        counts.done = self.maps_done + self.reduces_done;
        counts.in_progress = counts.total - counts.idle - counts.done;
        counts
    }

    /// Moves `id` to `state`, keeping the idle and deadline indexes in step. Every state change goes
    /// through here.
    fn set_state(&mut self, id: TaskId, state: TaskState) {
        let Some(task) = self.task_mut(id) else {
            return;
        };
        let old = std::mem::replace(&mut task.state, state);
        match old {
            TaskState::Idle => {
                self.idle.remove(&id);
            }
            TaskState::InProgress { deadline, .. } => {
                self.deadlines.remove(&(deadline, id));
            }
            TaskState::Committing { .. } | TaskState::Done { .. } => {}
        }
        match state {
            TaskState::Idle => {
                self.idle.insert(id);
            }
            TaskState::InProgress { deadline, .. } => {
                self.deadlines.insert((deadline, id));
            }
            TaskState::Committing { .. } | TaskState::Done { .. } => {}
        }
    }

    /// Time passes: every in-progress attempt past its deadline is forgotten and its task becomes idle.
    pub fn tick(&mut self, now: Duration) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            self.set_state(id, TaskState::Idle);
            self.counts.timeouts += 1;
        }
    }

    /// The worker running `attempt` of `task` is gone (its connection closed): give the task to someone else
    /// now rather than after the timeout, as the paper's master does for a worker that stops answering. If
    /// the worker was alive after all, its report will simply be ignored.
    pub fn abandon(&mut self, task: TaskId, attempt: AttemptId) {
        if let Some(TaskState::InProgress { attempt: on_record, .. }) = self.state(task)
            && on_record == attempt
            && !self.is_over()
        {
            self.set_state(task, TaskState::Idle);
            self.counts.abandoned += 1;
        }
        self.debug_check_invariants();
    }

    /// A worker asks for work. Hands out the lowest-numbered idle task of the current phase.
    pub fn request(&mut self, now: Duration) -> Next {
        self.tick(now);
        if self.is_over() {
            return Next::Exit;
        }
        let all_maps_done = self.maps_done as usize == self.maps.len();
        let candidate = if all_maps_done {
            self.idle.range(TaskId::Reduce(0)..).next()
        } else {
            self.idle.range(..TaskId::Reduce(0)).next()
        };
        let Some(&id) = candidate else {
            return Next::Wait;
        };
        let attempt = AttemptId(self.next_attempt);
        self.next_attempt += 1;
        let Some(task) = self.task_mut(id) else {
            return Next::Wait;
        };
        let reexecution = task.attempts_started > 0;
        task.attempts_started += 1;
        if reexecution {
            self.counts.reexecutions += 1;
        }
        self.set_state(id, TaskState::InProgress { attempt, deadline: now + self.task_timeout });
        self.issued.insert(attempt, id);
        self.debug_check_invariants();
        Next::Run { task: id, attempt }
    }

    /// A worker reports how `attempt` of `task` ended.
    pub fn report(&mut self, task: TaskId, attempt: AttemptId, outcome: Outcome) -> Verdict {
        let verdict = self.judge(task, attempt, outcome);
        if matches!(verdict, Verdict::Ignore { .. }) {
            self.counts.ignored_reports += 1;
        }
        self.debug_check_invariants();
        verdict
    }

    /// The table's invariants, checked after every event in debug builds (tests run them thousands of
    /// times through the property test).
    fn debug_check_invariants(&self) {
        // The checks scan every task, so they are skipped for big tables (which would go quadratic).
        if !cfg!(debug_assertions) || self.maps.len() + self.reduces.len() > DEBUG_CHECK_TASKS_MAX {
            return;
        }
        let done = |tasks: &[Task]| tasks.iter().filter(|t| matches!(t.state, TaskState::Done { .. })).count();
        assert_eq!(done(&self.maps), self.maps_done as usize, "maps_done matches the map states");
        assert_eq!(done(&self.reduces), self.reduces_done as usize, "reduces_done matches the reduce states");
        if self.reduces.iter().any(|t| t.attempts_started > 0) {
            assert_eq!(self.maps_done as usize, self.maps.len(), "a reduce started before every map was done");
        }
        for (id, task) in self
            .maps
            .iter()
            .enumerate()
            .map(|(i, t)| (TaskId::Map(i as u32), t))
            .chain(self.reduces.iter().enumerate().map(|(i, t)| (TaskId::Reduce(i as u32), t)))
        {
            if let TaskState::InProgress { attempt, .. }
            | TaskState::Committing { attempt }
            | TaskState::Done { attempt } = task.state
            {
                assert_eq!(self.issued.get(&attempt), Some(&id), "{id}'s attempt on record was issued for it");
            }
        }
        if self.status == JobStatus::Succeeded {
            assert_eq!(self.reduces_done as usize, self.reduces.len(), "succeeded with reduces left");
        }
        let all = self.maps.iter().enumerate().map(|(i, t)| (TaskId::Map(i as u32), t.state));
        let all = all.chain(self.reduces.iter().enumerate().map(|(i, t)| (TaskId::Reduce(i as u32), t.state)));
        let (mut idle, mut deadlines) = (BTreeSet::new(), BTreeSet::new());
        for (id, state) in all {
            match state {
                TaskState::Idle => {
                    idle.insert(id);
                }
                TaskState::InProgress { deadline, .. } => {
                    deadlines.insert((deadline, id));
                }
                TaskState::Committing { .. } | TaskState::Done { .. } => {}
            }
        }
        assert_eq!(idle, self.idle, "the idle index matches the task states");
        assert_eq!(deadlines, self.deadlines, "the deadline index matches the task states");
    }

    fn judge(&mut self, task_id: TaskId, attempt: AttemptId, outcome: Outcome) -> Verdict {
        if self.issued.get(&attempt) != Some(&task_id) {
            return Verdict::Ignore { reason: IgnoreReason::Foreign };
        }
        if self.is_over() {
            return Verdict::Ignore { reason: IgnoreReason::JobOver };
        }
        let Some(task) = self.task(task_id) else {
            return Verdict::Ignore { reason: IgnoreReason::Foreign };
        };
        match task.state {
            TaskState::InProgress { attempt: on_record, .. } if on_record == attempt => {}
            TaskState::Committing { .. } | TaskState::Done { .. } => {
                return Verdict::Ignore { reason: IgnoreReason::AlreadyFinished };
            }
            TaskState::Idle | TaskState::InProgress { .. } => {
                return Verdict::Ignore { reason: IgnoreReason::Stale };
            }
        }
        match outcome {
            Outcome::Succeeded => {
                self.set_state(task_id, TaskState::Committing { attempt });
                Verdict::Commit { task: task_id }
            }
            Outcome::Failed { permanent, error } => {
                let failures = self.record_failure(task_id);
                if permanent {
                    self.fail(format!("{task_id} failed: {error}"));
                    Verdict::JobFailed { task: task_id }
                } else if failures >= MAX_FAILED_ATTEMPTS_PER_TASK {
                    self.fail(format!("{task_id} failed {failures} times; last error: {error}"));
                    Verdict::JobFailed { task: task_id }
                } else {
                    Verdict::Retry { task: task_id }
                }
            }
        }
    }

    /// The task's attempt failed: back to idle. Returns how many attempts of it have failed.
    fn record_failure(&mut self, id: TaskId) -> u32 {
        self.set_state(id, TaskState::Idle);
        self.counts.failed_attempts += 1;
        match self.task_mut(id) {
            Some(task) => {
                task.failed_attempts += 1;
                task.failed_attempts
            }
            None => 0,
        }
    }

    /// The caller finished committing `attempt` of `task`: `Ok` makes the task `Done`; `Err` (the rename
    /// failed) counts as a failed attempt, so the task is retried or, after too many failures, fails the job.
    pub fn commit_finished(&mut self, task_id: TaskId, attempt: AttemptId, result: Result<(), String>) {
        if self.state(task_id) != Some(TaskState::Committing { attempt }) {
            // Only the attempt this table told the caller to commit can finish committing.
            return;
        }
        match result {
            Ok(()) => {
                self.set_state(task_id, TaskState::Done { attempt });
                match task_id {
                    TaskId::Map(_) => self.maps_done += 1,
                    TaskId::Reduce(_) => self.reduces_done += 1,
                }
                if self.reduces_done as usize == self.reduces.len() && self.status == JobStatus::Running {
                    self.status = JobStatus::Succeeded;
                }
            }
            Err(error) => {
                let failures = self.record_failure(task_id);
                if failures >= MAX_FAILED_ATTEMPTS_PER_TASK {
                    self.fail(format!("committing {task_id} failed {failures} times; last error: {error}"));
                }
            }
        }
        self.debug_check_invariants();
    }

    /// Fails the whole job (for example when the coordinator cannot go on); workers are then told to exit.
    pub fn fail(&mut self, reason: String) {
        if self.status == JobStatus::Running {
            self.status = JobStatus::Failed { reason };
        }
    }

    fn task(&self, id: TaskId) -> Option<&Task> {
        match id {
            TaskId::Map(m) => self.maps.get(m as usize),
            TaskId::Reduce(r) => self.reduces.get(r as usize),
        }
    }

    fn task_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        match id {
            TaskId::Map(m) => self.maps.get_mut(m as usize),
            TaskId::Reduce(r) => self.reduces.get_mut(r as usize),
        }
    }
}

#[cfg(test)]
mod tests;
