//! The coordinator's task table: a pure state machine, no I/O, no clock.
//!
//! Every task is `Idle`, `InProgress { attempt, deadline }`, `Committing { attempt }` or `Done { attempt }`.
//! Events drive it: time passes ([`TaskTable::tick`], which also reports the attempts that timed out), a
//! worker asks for work ([`TaskTable::request`]), a worker reports the outcome of an attempt
//! ([`TaskTable::report`]), the caller finished (or failed) the commit it was told to do
//! ([`TaskTable::commit_finished`]), and a worker's connection is lost ([`TaskTable::abandon`]). Time is an
//! argument (a `Duration` since the job started), so tests drive it by hand and the same code runs under a
//! real clock.
//!
//! The rules the rest of the engine relies on:
//! - **The first success wins, once.** Every attempt the table issued for a task stays *live* until it
//!   reports a failure, its commit fails, its task is done, or more than [`LIVE_ATTEMPTS_PER_TASK_MAX`] newer
//!   attempts of the task were issued. A success from a live attempt is accepted while the task is `Idle` or
//!   `InProgress` (with that attempt or another one: a timed-out attempt that finishes first is as good as
//!   any, as in the paper); the task becomes `Committing` with that attempt, the only one the caller is told
//!   to commit. A task is committed at most once: nothing leaves `Done`.
//! - **Files are removed only for attempts that will never be committed.** Every other report is answered
//!   with [`Verdict::Ignore`]; [`IgnoreReason::discards_files`] says whether the caller removes that
//!   attempt's files. It does not for a duplicate report of the attempt being (or already) committed, nor
//!   for a report naming another task's attempt (those files are not this report's to remove).
//! - **Timeouts are visible and bounded.** A task's timeout doubles with each timeout of that task (so an app
//!   slower than `--task-timeout` still finishes, with a late success or with a longer deadline), and the
//!   job fails after [`TIMEOUTS_PER_TASK_MAX`] timeouts of one task.
//! - Reduce tasks are handed out only after every map task is `Done`.
//! - **A lost map output is a re-executed map** (the paper's section 3.3): when workers share nothing, a
//!   map's committed output lives on the worker that ran it; if that worker goes away, or a reducer cannot
//!   fetch the output intact, [`TaskTable::map_output_lost`] takes the map from `Done` back to `Idle` (the
//!   only way out of `Done`), and reduce attempts that could not read it are released
//!   ([`TaskTable::release`]) without counting as failures.
//! - **Backup tasks** (the paper's section 3.6): when no task of the current phase is idle and the phase is
//!   nearly done ([`BACKUP_PHASE_DONE_PERCENT_MIN`]), a worker asking for work gets a second live attempt
//!   of the in-progress task running longest, if it has run far longer than the phase's finished tasks
//!   ([`BACKUP_SLOWER_THAN_MEDIAN_FACTOR`] times their median, and at least [`BACKUP_ELAPSED_MIN`]). At most
//!   one backup per task; the task stays `InProgress` with its attempt on record, and whichever live attempt
//!   succeeds first is committed (the rule above).
//! - With no timeouts, no failures and no stragglers, every task is handed out exactly once.
//!
//! See `README.md` in this crate for the state diagram.
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod median;
use median::RunningMedian;

/// How many reported failures one task may have before the whole job fails. A deterministic bug in the
/// app would otherwise loop forever; 4 is Hadoop's `mapreduce.map.maxattempts`.
pub const MAX_FAILED_ATTEMPTS_PER_TASK: u32 = 4;

/// How many times one task may time out before the job fails. With the timeout doubling each time, a task
/// gets `T + 2T + ... + 32T` = 63 times `--task-timeout` (10.5 minutes at the default 10 s) and its last
/// attempt 32 times the timeout: an app that needs more is hung or needs a larger `--task-timeout`, and
/// failing with that advice beats re-running it forever without a word.
pub const TIMEOUTS_PER_TASK_MAX: u32 = 6;

/// How many attempts per task the table remembers as live (their success would be accepted). One task gets
/// a new attempt only after a timeout, a failure, a lost worker or (once) as a backup, so 8 covers every
/// attempt the timeout limit allows (7) plus one more; an older attempt is almost surely dead (its worker was
/// lost) and keeping it would let a crash loop grow the record without bound. A report from a forgotten attempt is
/// answered [`IgnoreReason::Stale`] and its files are removed.
pub const LIVE_ATTEMPTS_PER_TASK_MAX: usize = 8;

/// Backups start once this share (percent) of the current phase's tasks is done: before, idle workers are
/// rare (there are idle tasks to run) and a slow task is not yet what the job waits for. The paper says
/// "close to completion"; 90% leaves the last tenth, where stragglers decide the job's end.
pub const BACKUP_PHASE_DONE_PERCENT_MIN: u32 = 90;
/// An attempt is a straggler once it has run this many times the median duration of the phase's finished
/// tasks. Tasks of one phase are of similar size (splits of `--split-size`, hashed partitions), so a task
/// at 3x the median is far outside their usual spread: the paper's causes (a bad disk, a busy machine),
/// not its input. Lower factors back up ordinary variation (6.824's job-count test has maps of 2-5 s).
pub const BACKUP_SLOWER_THAN_MEDIAN_FACTOR: u32 = 3;
/// ... and has run at least this long: a backup costs a whole task on another worker, and a task of a
/// few milliseconds (thousands of small maps) is done before a backup would help.
pub const BACKUP_ELAPSED_MIN: Duration = Duration::from_secs(1);

/// How many times one map's committed output may be found unreadable on a live worker (damaged in transit or
/// on disk, a data server that cannot serve it) before the job fails: such a map would otherwise run and be
/// lost forever. Losses with a dead worker do not count: the paper re-executes those without limit, and a
/// job whose workers keep dying (6.824's crash test) still ends, as the other workers take over.
pub const LOST_OUTPUTS_PER_MAP_MAX: u32 = 8;

/// Why a committed map output is lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LossCause {
    /// The worker holding it went away.
    WorkerGone,
    /// A reducer could not fetch it intact from a worker still connected.
    Unreadable,
}

/// Attempt ids of a coordinator's `n`th run on a job start at `n << 40`: 2^40 attempts per run is far
/// beyond any job, and 2^24 runs beyond any restart loop.
const ATTEMPT_ID_RUN_SHIFT: u32 = 40;

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
    /// No such task in this job, an attempt id this table never issued, or one issued for another task.
    Foreign,
    /// Issued for this task but no longer live: it already reported a failure, its commit failed, or more
    /// than [`LIVE_ATTEMPTS_PER_TASK_MAX`] newer attempts of the task were issued since.
    Stale,
    /// Another attempt of the task is being committed or was committed.
    AlreadyFinished,
    /// The attempt being committed, or committed, reported again (a worker resends its report after a lost
    /// connection or a read timeout).
    Duplicate,
    /// The job is over.
    JobOver,
}

impl IgnoreReason {
    /// Whether the caller must remove the reporting attempt's files: true exactly when that attempt will
    /// never be committed and the files are its own. A duplicate's files are being (or were) renamed into
    /// place, and a foreign report may name an attempt that another task still has live.
    pub fn discards_files(self) -> bool {
        match self {
            IgnoreReason::Stale | IgnoreReason::AlreadyFinished | IgnoreReason::JobOver => true,
            IgnoreReason::Duplicate | IgnoreReason::Foreign => false,
        }
    }
}

/// The table's answer to a report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A live attempt succeeded first: the caller must commit its files (atomic rename) and then call
    /// [`TaskTable::commit_finished`].
    Commit { task: TaskId },
    /// The failure was recorded; the task will be retried (it is idle again, unless another of its attempts
    /// is still on record). The caller removes the attempt's files.
    Retry { task: TaskId },
    /// The failure ended the job (permanent, or too many failures of this task). The caller removes the
    /// attempt's files.
    JobFailed { task: TaskId },
    /// Nothing changes; the caller removes the attempt's files if [`IgnoreReason::discards_files`].
    Ignore { reason: IgnoreReason },
}

/// An attempt that did not finish by its deadline; its task became idle (the attempt stays live).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimedOut {
    pub task: TaskId,
    pub attempt: AttemptId,
    /// The timeout the attempt had.
    pub timeout: Duration,
    /// Timeouts of this task so far, this one included.
    pub timeouts: u32,
    /// The timeout the task's next attempt gets.
    pub next_timeout: Duration,
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
    /// Successes accepted from an attempt that was no longer the one on record (it had timed out or lost
    /// its connection), saving a re-execution.
    pub late_successes: u64,
    /// Backup attempts issued for stragglers (at most one per task).
    pub backups: u64,
    /// Tasks committed from their backup attempt (the backup finished first).
    pub backup_wins: u64,
    /// Committed map outputs lost (their worker went away, or a fetch found them damaged): each means the
    /// map runs again.
    pub lost_map_outputs: u64,
    /// Reduce attempts released because a map output they needed was lost (not failures).
    pub released_attempts: u64,
}

/// How many tasks of one kind are in each state, for the status page. `failed` tasks are `Idle` after a failed
/// attempt, waiting for their retry (or the task that failed the job); `idle` counts the others.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct StateCounts {
    pub idle: u32,
    pub in_progress: u32,
    pub committing: u32,
    pub done: u32,
    pub failed: u32,
}

#[derive(Clone, Debug)]
struct Task {
    state: TaskState,
    attempts_started: u32,
    failed_attempts: u32,
    /// The latest attempt to end failed, and no attempt was issued since (shown as "failed").
    last_attempt_failed: bool,
    timeouts: u32,
    /// Live attempts of this task (issued, not yet ended), oldest first; at most
    /// [`LIVE_ATTEMPTS_PER_TASK_MAX`], empty once the task is done.
    live: Vec<AttemptId>,
    /// When each of the task's latest attempts was issued, oldest first (at most
    /// [`LIVE_ATTEMPTS_PER_TASK_MAX`]): how long the attempt on record has run, and how long the committed
    /// one took.
    issued_at: Vec<(AttemptId, Duration)>,
    /// The task's backup attempt, if it got one (never more than one).
    backup: Option<AttemptId>,
    /// How often this (map) task's committed output was lost.
    lost_outputs: u32,
}

impl Task {
    fn new() -> Task {
        Task {
            state: TaskState::Idle,
            attempts_started: 0,
            failed_attempts: 0,
            last_attempt_failed: false,
            timeouts: 0,
            live: Vec::new(),
            issued_at: Vec::new(),
            backup: None,
            lost_outputs: 0,
        }
    }

    fn issued_at(&self, attempt: AttemptId) -> Option<Duration> {
        self.issued_at.iter().find(|(a, _)| *a == attempt).map(|&(_, at)| at)
    }
}

#[derive(Clone, Debug)]
pub struct TaskTable {
    maps: Vec<Task>,
    reduces: Vec<Task>,
    task_timeout: Duration,
    next_attempt: u64,
    /// The task of every live attempt: the union of the tasks' `live` lists, so a report is checked against
    /// the task it was issued for in O(1). Bounded by [`LIVE_ATTEMPTS_PER_TASK_MAX`] per task.
    live: HashMap<AttemptId, TaskId>,
    /// Tasks in `Idle`, in order (maps sort before reduces), so handing out work is O(log n) even with the
    /// paper's 200,000 map tasks.
    idle: BTreeSet<TaskId>,
    /// `(deadline, task)` of every task in `InProgress`, earliest first, so `tick` only looks at the expired.
    deadlines: BTreeSet<(Duration, TaskId)>,
    status: JobStatus,
    maps_done: u32,
    reduces_done: u32,
    counts: TaskCounts,
    /// How long committed attempts took, per phase: what "far slower" is measured against.
    map_durations: RunningMedian,
    reduce_durations: RunningMedian,
    /// The latest time passed to [`TaskTable::tick`] or [`TaskTable::request`] (the table has no clock).
    now: Duration,
    /// Every map was `Done` at some point, so reduces may have started (a lost map output can take
    /// `maps_done` below the total again while reduces run).
    reduce_phase_reached: bool,
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
            live: HashMap::new(),
            idle: (0..map_tasks).map(TaskId::Map).chain((0..reduce_tasks).map(TaskId::Reduce)).collect(),
            deadlines: BTreeSet::new(),
            status: JobStatus::Running,
            maps_done: 0,
            reduces_done: 0,
            counts: TaskCounts::default(),
            map_durations: RunningMedian::default(),
            reduce_durations: RunningMedian::default(),
            now: Duration::ZERO,
            reduce_phase_reached: false,
        }
    }

    /// For a coordinator's `run`th start on one job (0 first): attempt ids start at `run << 40`, above every
    /// id an earlier run can have issued, so a resumed job never reuses an id (its files are named by it).
    pub fn start_run(&mut self, run: u32) {
        self.next_attempt = self.next_attempt.max(u64::from(run) << ATTEMPT_ID_RUN_SHIFT).max(1);
    }

    /// A resumed job: `task` was committed by `attempt` before the coordinator restarted, and its output is
    /// still in place. The task is `Done` and never handed out again. Ignored for a task already started or
    /// done (a journal lists each task once; this keeps a damaged one from counting a task twice).
    pub fn restore_done(&mut self, task_id: TaskId, attempt: AttemptId) {
        let Some(task) = self.task(task_id) else {
            return;
        };
        if task.state != TaskState::Idle || task.attempts_started > 0 {
            return;
        }
        self.set_state(task_id, TaskState::Done { attempt });
        self.next_attempt = self.next_attempt.max(attempt.0.saturating_add(1));
        match task_id {
            TaskId::Map(_) => self.maps_done += 1,
            TaskId::Reduce(_) => self.reduces_done += 1,
        }
        self.reduce_phase_reached |= self.maps_done as usize == self.maps.len();
        if self.reduces_done as usize == self.reduces.len() && self.status == JobStatus::Running {
            self.status = JobStatus::Succeeded;
        }
        self.debug_check_invariants();
    }

    /// Map `map`'s committed output (`attempt`'s) is gone: its worker went away, or a reducer found it damaged.
    /// The map is `Idle` again and will run again (the paper's section 3.3); reduces in progress stay so (a
    /// reducer that cannot read the output releases its attempt, see [`TaskTable::release`]). Returns false,
    /// changing nothing, unless the map is `Done` with exactly that attempt (a second report of the same loss,
    /// or one about an older attempt, is not news) and the job is still running. The
    /// [`LOST_OUTPUTS_PER_MAP_MAX`]th loss of one map fails the job.
    pub fn map_output_lost(&mut self, map: u32, attempt: AttemptId, cause: LossCause) -> bool {
        let id = TaskId::Map(map);
        if self.state(id) != Some(TaskState::Done { attempt }) || self.is_over() {
            return false;
        }
        self.set_state(id, TaskState::Idle);
        self.maps_done -= 1;
        self.counts.lost_map_outputs += 1;
        if cause == LossCause::Unreadable {
            let lost = match self.task_mut(id) {
                Some(task) => {
                    task.lost_outputs += 1;
                    task.lost_outputs
                }
                None => 0,
            };
            if lost >= LOST_OUTPUTS_PER_MAP_MAX {
                self.fail(format!(
                    "{id}'s output could not be fetched from a live worker {lost} times (damaged in transit or \
                     on disk, or its worker cannot serve it); look at the workers' logs, disks and network"
                ));
            }
        }
        self.debug_check_invariants();
        true
    }

    /// `attempt` of `task` gave up because an input it needed was lost (a map output that could not be
    /// fetched): the attempt ends, and if it was the one on record the task is `Idle` again. Not a failure,
    /// since the attempt did nothing wrong; the task runs again once its inputs are back.
    pub fn release(&mut self, task: TaskId, attempt: AttemptId) {
        if self.live.get(&attempt) != Some(&task) || self.is_over() {
            return;
        }
        if let Some(TaskState::Committing { attempt: committing }) = self.state(task)
            && committing == attempt
        {
            // It reported success already; its files are being committed: too late to give up.
            return;
        }
        self.end_attempt(task, attempt);
        if let Some(TaskState::InProgress { attempt: on_record, .. }) = self.state(task)
            && on_record == attempt
        {
            self.set_state(task, TaskState::Idle);
        }
        self.counts.released_attempts += 1;
        self.debug_check_invariants();
    }

    /// Whether `attempt` was issued for `task` and may still be committed (for the caller's checks of
    /// requests made on an attempt's behalf, such as reading its input).
    pub fn is_live(&self, task: TaskId, attempt: AttemptId) -> bool {
        self.live.get(&attempt) == Some(&task)
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

    /// Tasks per state, maps and reduces apart. O(tasks): for a status page polled about once a second.
    pub fn state_counts(&self) -> (StateCounts, StateCounts) {
        let count = |tasks: &[Task]| {
            let mut counts = StateCounts::default();
            for task in tasks {
                match task.state {
                    TaskState::Idle if task.last_attempt_failed => counts.failed += 1,
                    TaskState::Idle => counts.idle += 1,
                    TaskState::InProgress { .. } => counts.in_progress += 1,
                    TaskState::Committing { .. } => counts.committing += 1,
                    TaskState::Done { .. } => counts.done += 1,
                }
            }
            counts
        };
        (count(&self.maps), count(&self.reduces))
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

    /// The timeout the next attempt of a task with `timeouts` timeouts so far gets: `--task-timeout`,
    /// doubled for every timeout.
    fn timeout_after(&self, timeouts: u32) -> Duration {
        self.task_timeout.saturating_mul(1u32 << timeouts.min(TIMEOUTS_PER_TASK_MAX))
    }

    /// Time passes: every in-progress attempt past its deadline times out and its task becomes idle (the
    /// attempt stays live: its success is still accepted). Returns those attempts, for the caller to warn
    /// about. A task's [`TIMEOUTS_PER_TASK_MAX`]th timeout fails the job. Call this before
    /// [`TaskTable::request`], so that overdue tasks are handed out again.
    pub fn tick(&mut self, now: Duration) -> Vec<TimedOut> {
        self.now = self.now.max(now);
        let mut timed_out = Vec::new();
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now || self.is_over() {
                break;
            }
            let Some(TaskState::InProgress { attempt, .. }) = self.state(id) else {
                unreachable!("the deadline index holds only tasks in progress");
            };
            let Some(task) = self.task_mut(id) else {
                unreachable!("the deadline index holds only tasks of this table");
            };
            let timeout_ticks = task.timeouts;
            task.timeouts += 1;
            let timeouts = task.timeouts;
            self.set_state(id, TaskState::Idle);
            self.counts.timeouts += 1;
            let event = TimedOut {
                task: id,
                attempt,
                timeout: self.timeout_after(timeout_ticks),
                timeouts,
                next_timeout: self.timeout_after(timeouts),
            };
            if timeouts >= TIMEOUTS_PER_TASK_MAX {
                self.fail(format!(
                    "{id} timed out {timeouts} times (its last attempt had {:?}): its attempts take longer than \
                     --task-timeout allows, even doubled {} times, or they hang; raise --task-timeout or look at \
                     the app",
                    event.timeout,
                    timeouts - 1
                ));
            }
            timed_out.push(event);
        }
        self.debug_check_invariants();
        timed_out
    }

    /// The worker running `attempt` of `task` is gone (its connection closed): give the task to someone else
    /// now rather than after the timeout, as the paper's master does for a worker that stops answering. The
    /// attempt stays live: if the worker was alive after all, its success still counts.
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

    /// A worker asks for work. Hands out the lowest-numbered idle task of the current phase. Does not look
    /// at the clock: call [`TaskTable::tick`] first.
    pub fn request(&mut self, now: Duration) -> Next {
        self.now = self.now.max(now);
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
            return match self.straggler(now, all_maps_done) {
                Some(id) => self.issue_backup(id, now),
                None => Next::Wait,
            };
        };
        let Some(task) = self.task_mut(id) else {
            return Next::Wait;
        };
        let reexecution = task.attempts_started > 0;
        let timeouts = task.timeouts;
        if reexecution {
            self.counts.reexecutions += 1;
        }
        let attempt = self.issue_attempt(id, now);
        let deadline = now.saturating_add(self.timeout_after(timeouts));
        self.set_state(id, TaskState::InProgress { attempt, deadline });
        self.debug_check_invariants();
        Next::Run { task: id, attempt }
    }

    /// A new live attempt of `id`, issued `now`.
    fn issue_attempt(&mut self, id: TaskId, now: Duration) -> AttemptId {
        let attempt = AttemptId(self.next_attempt);
        self.next_attempt += 1;
        let Some(task) = self.task_mut(id) else {
            unreachable!("attempts are issued for tasks of this table");
        };
        task.attempts_started += 1;
        task.last_attempt_failed = false;
        task.live.push(attempt);
        task.issued_at.push((attempt, now));
        if task.issued_at.len() > LIVE_ATTEMPTS_PER_TASK_MAX {
            task.issued_at.remove(0);
        }
        // The oldest attempt is never the one on record (that is the latest before this one), so forgetting
        // it only means its late success will not count.
        let forgotten = if task.live.len() > LIVE_ATTEMPTS_PER_TASK_MAX { Some(task.live.remove(0)) } else { None };
        // Checked in release builds too: it is the bound on the table's memory per task.
        assert!(task.live.len() <= LIVE_ATTEMPTS_PER_TASK_MAX, "{id} has more live attempts than the bound");
        self.live.insert(attempt, id);
        if let Some(forgotten) = forgotten {
            self.live.remove(&forgotten);
        }
        attempt
    }

    /// The in-progress task of the current phase that most deserves a backup, if any: the phase is nearly
    /// done, and its attempt on record has run far longer than the phase's finished tasks and has no backup.
    fn straggler(&self, now: Duration, reduce_phase: bool) -> Option<TaskId> {
        let (tasks, done, durations) = if reduce_phase {
            (&self.reduces, self.reduces_done, &self.reduce_durations)
        } else {
            (&self.maps, self.maps_done, &self.map_durations)
        };
        if u64::from(done) * 100 < tasks.len() as u64 * u64::from(BACKUP_PHASE_DONE_PERCENT_MIN) {
            return None;
        }
        let threshold = durations.median()?.saturating_mul(BACKUP_SLOWER_THAN_MEDIAN_FACTOR).max(BACKUP_ELAPSED_MIN);
        // Only tasks in progress have deadlines; near the phase's end they are few (about one per worker).
        let mut slowest: Option<(Duration, TaskId)> = None;
        for &(_, id) in &self.deadlines {
            if matches!(id, TaskId::Reduce(_)) != reduce_phase {
                continue;
            }
            let Some(task) = self.task(id) else { continue };
            let TaskState::InProgress { attempt, .. } = task.state else { continue };
            let Some(issued) = task.issued_at(attempt) else { continue };
            let elapsed = now.saturating_sub(issued);
            if task.backup.is_none() && elapsed > threshold && slowest.is_none_or(|(e, _)| elapsed > e) {
                slowest = Some((elapsed, id));
            }
        }
        slowest.map(|(_, id)| id)
    }

    /// A second live attempt of `id`, which stays `InProgress` with its attempt on record and deadline.
    fn issue_backup(&mut self, id: TaskId, now: Duration) -> Next {
        let attempt = self.issue_attempt(id, now);
        if let Some(task) = self.task_mut(id) {
            task.backup = Some(attempt);
        }
        self.counts.backups += 1;
        self.debug_check_invariants();
        Next::Run { task: id, attempt }
    }

    /// Whether `attempt` is `task`'s backup (for the caller's log).
    pub fn is_backup(&self, task: TaskId, attempt: AttemptId) -> bool {
        self.task(task).is_some_and(|t| t.backup == Some(attempt))
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

    /// `attempt` of `task` ended without a commit (failed, or its task finished otherwise): it is no longer
    /// live, so no later report of it can be accepted.
    fn end_attempt(&mut self, id: TaskId, attempt: AttemptId) {
        if self.live.get(&attempt) != Some(&id) {
            return;
        }
        self.live.remove(&attempt);
        if let Some(task) = self.task_mut(id) {
            task.live.retain(|&a| a != attempt);
        }
    }

    /// The table's invariants, checked after every event in debug builds (tests run them thousands of
    /// times through the property test).
    fn debug_check_invariants(&self) {
        // The checks scan every task, so they are skipped for big tables (which would go quadratic).
        if !cfg!(debug_assertions) {
            return;
        }
        let tasks = self.maps.len() + self.reduces.len();
        assert!(self.live.len() <= tasks * LIVE_ATTEMPTS_PER_TASK_MAX, "the record of live attempts is bounded");
        if tasks > DEBUG_CHECK_TASKS_MAX {
            return;
        }
        let done = |tasks: &[Task]| tasks.iter().filter(|t| matches!(t.state, TaskState::Done { .. })).count();
        assert_eq!(done(&self.maps), self.maps_done as usize, "maps_done matches the map states");
        assert_eq!(done(&self.reduces), self.reduces_done as usize, "reduces_done matches the reduce states");
        if self.reduces.iter().any(|t| t.attempts_started > 0) {
            assert!(self.reduce_phase_reached, "a reduce started before every map was done");
        }
        let mut live_attempts = 0;
        let mut backups = 0;
        for (id, task) in self
            .maps
            .iter()
            .enumerate()
            .map(|(i, t)| (TaskId::Map(i as u32), t))
            .chain(self.reduces.iter().enumerate().map(|(i, t)| (TaskId::Reduce(i as u32), t)))
        {
            assert!(task.live.len() <= LIVE_ATTEMPTS_PER_TASK_MAX, "{id} remembers too many attempts");
            assert!(task.issued_at.len() <= LIVE_ATTEMPTS_PER_TASK_MAX, "{id} remembers too many issue times");
            if let Some(backup) = task.backup {
                assert!(backup.0 < self.next_attempt, "{id}'s backup {backup} was issued");
                backups += 1;
            }
            assert!(task.live.windows(2).all(|w| w[0] < w[1]), "{id}'s live attempts are unique, oldest first");
            for attempt in &task.live {
                assert_eq!(self.live.get(attempt), Some(&id), "{id}'s live {attempt} is indexed under it");
                assert!(attempt.0 < self.next_attempt, "{id}'s live {attempt} was issued");
            }
            live_attempts += task.live.len();
            match task.state {
                TaskState::InProgress { attempt, .. } | TaskState::Committing { attempt } => {
                    assert!(task.live.contains(&attempt), "{id}'s attempt on record is live");
                }
                TaskState::Done { attempt } => {
                    assert!(task.live.is_empty(), "done {id} keeps no live attempts");
                    assert!(attempt.0 < self.next_attempt, "{id} was committed by an attempt that was issued");
                }
                TaskState::Idle => {}
            }
            if task.timeouts >= TIMEOUTS_PER_TASK_MAX {
                assert!(matches!(self.status, JobStatus::Failed { .. }), "{id} timed out too often");
            }
        }
        assert_eq!(live_attempts, self.live.len(), "the live index holds exactly the tasks' live attempts");
        assert_eq!(backups, self.counts.backups, "at most one backup per task, each counted");
        assert!(self.counts.backup_wins <= self.counts.backups, "only backups can win as backups");
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
        let Some(task) = self.task(task_id) else {
            return Verdict::Ignore { reason: IgnoreReason::Foreign };
        };
        let live_for_this_task = match self.live.get(&attempt) {
            Some(&other) if other != task_id => return Verdict::Ignore { reason: IgnoreReason::Foreign },
            Some(_) => true,
            None => false,
        };
        if let TaskState::Committing { attempt: on_record } | TaskState::Done { attempt: on_record } = task.state
            && on_record == attempt
        {
            // Changes nothing, and above all must not remove the files being renamed into place.
            return Verdict::Ignore { reason: IgnoreReason::Duplicate };
        }
        if attempt.0 == 0 || attempt.0 >= self.next_attempt {
            return Verdict::Ignore { reason: IgnoreReason::Foreign };
        }
        let finished = matches!(task.state, TaskState::Committing { .. } | TaskState::Done { .. });
        let on_record = matches!(task.state, TaskState::InProgress { attempt: a, .. } if a == attempt);
        if !live_for_this_task {
            let reason = if finished { IgnoreReason::AlreadyFinished } else { IgnoreReason::Stale };
            return Verdict::Ignore { reason };
        }
        if self.is_over() {
            // Nothing is committed any more; the record stays as it was (the attempt may be on record).
            return Verdict::Ignore { reason: IgnoreReason::JobOver };
        }
        if finished {
            self.end_attempt(task_id, attempt);
            return Verdict::Ignore { reason: IgnoreReason::AlreadyFinished };
        }
        match outcome {
            Outcome::Succeeded => {
                if !on_record {
                    self.counts.late_successes += 1;
                }
                // The attempt stays live until `commit_finished`, so a report naming it under another task
                // is told apart from a stale one and cannot remove its files.
                self.set_state(task_id, TaskState::Committing { attempt });
                Verdict::Commit { task: task_id }
            }
            Outcome::Failed { permanent, error } => {
                self.end_attempt(task_id, attempt);
                // A late failure counts too (a deterministic bug fails every attempt), but leaves the attempt
                // on record, if another one is, running.
                let failures = self.record_failure(task_id, on_record);
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

    /// An attempt of the task failed; if it was the one on record the task is idle again. Returns how many
    /// attempts of the task have failed.
    fn record_failure(&mut self, id: TaskId, on_record: bool) -> u32 {
        if on_record {
            self.set_state(id, TaskState::Idle);
        }
        self.counts.failed_attempts += 1;
        match self.task_mut(id) {
            Some(task) => {
                task.failed_attempts += 1;
                task.last_attempt_failed = true;
                task.failed_attempts
            }
            None => 0,
        }
    }

    /// The caller finished committing `attempt` of `task`: `Ok` makes the task `Done`; `Err` (the rename
    /// failed; the caller removed the attempt's files) counts as a failed attempt, so the task is retried
    /// (another live attempt's success is accepted) or, after too many failures, fails the job.
    pub fn commit_finished(&mut self, task_id: TaskId, attempt: AttemptId, result: Result<(), String>) {
        if self.state(task_id) != Some(TaskState::Committing { attempt }) {
            // Only the attempt this table told the caller to commit can finish committing.
            return;
        }
        match result {
            Ok(()) => {
                self.set_state(task_id, TaskState::Done { attempt });
                let now = self.now;
                if let Some(task) = self.task(task_id) {
                    let took = task.issued_at(attempt).map(|issued| now.saturating_sub(issued));
                    let was_backup = task.backup == Some(attempt);
                    let durations = match task_id {
                        TaskId::Map(_) => &mut self.map_durations,
                        TaskId::Reduce(_) => &mut self.reduce_durations,
                    };
                    if let Some(took) = took {
                        durations.push(took);
                    }
                    if was_backup {
                        self.counts.backup_wins += 1;
                    }
                }
                // Every other attempt of the task will never be committed: their reports now discard files.
                if let Some(task) = self.task_mut(task_id) {
                    let ended = std::mem::take(&mut task.live);
                    for other in ended {
                        self.live.remove(&other);
                    }
                }
                match task_id {
                    TaskId::Map(_) => self.maps_done += 1,
                    TaskId::Reduce(_) => self.reduces_done += 1,
                }
                self.reduce_phase_reached |= self.maps_done as usize == self.maps.len();
                if self.reduces_done as usize == self.reduces.len() && self.status == JobStatus::Running {
                    self.status = JobStatus::Succeeded;
                }
            }
            Err(error) => {
                // The caller removed the attempt's files: it can never be committed.
                self.end_attempt(task_id, attempt);
                let failures = self.record_failure(task_id, true);
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
