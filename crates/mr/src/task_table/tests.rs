//! The task table, driven by hand: no processes, no clock.
use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(10);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Time passes to `now`, then a worker asks for work (what the coordinator does).
fn ask(table: &mut TaskTable, now: Duration) -> Next {
    table.tick(now);
    table.request(now)
}

fn run(next: Next) -> (TaskId, AttemptId) {
    match next {
        Next::Run { task, attempt } => (task, attempt),
        other => panic!("expected a task to run, got {other:?}"),
    }
}

/// Runs `task`/`attempt` to a successful commit.
fn finish(table: &mut TaskTable, task: TaskId, attempt: AttemptId) {
    assert_eq!(table.report(task, attempt, Outcome::Succeeded), Verdict::Commit { task });
    table.commit_finished(task, attempt, Ok(()));
    assert_eq!(table.state(task), Some(TaskState::Done { attempt }));
}

#[test]
fn without_failures_every_task_is_handed_out_exactly_once() {
    let mut table = TaskTable::new(3, 2, TIMEOUT);
    let mut seen = Vec::new();
    let mut running = Vec::new();
    for _ in 0..3 {
        running.push(run(table.request(secs(0))));
    }
    // All maps handed out: a fourth worker must wait, not get a duplicate.
    assert_eq!(table.request(secs(1)), Next::Wait);
    for (task, attempt) in running.drain(..) {
        seen.push(task);
        finish(&mut table, task, attempt);
    }
    for _ in 0..2 {
        let (task, attempt) = run(table.request(secs(2)));
        seen.push(task);
        finish(&mut table, task, attempt);
    }
    assert_eq!(table.request(secs(3)), Next::Exit);
    assert_eq!(*table.status(), JobStatus::Succeeded);
    let expected = vec![TaskId::Map(0), TaskId::Map(1), TaskId::Map(2), TaskId::Reduce(0), TaskId::Reduce(1)];
    assert_eq!(seen, expected);
    assert_eq!(table.counts().reexecutions, 0);
}

#[test]
fn reduces_wait_until_every_map_is_done() {
    let mut table = TaskTable::new(2, 1, TIMEOUT);
    let (m0, a0) = run(table.request(secs(0)));
    let (m1, a1) = run(table.request(secs(0)));
    finish(&mut table, m0, a0);
    assert_eq!(table.request(secs(1)), Next::Wait, "a reduce must not start while map 1 is running");
    assert_eq!(table.report(m1, a1, Outcome::Succeeded), Verdict::Commit { task: m1 });
    assert_eq!(table.request(secs(1)), Next::Wait, "a reduce must not start while map 1 is committing");
    table.commit_finished(m1, a1, Ok(()));
    assert_eq!(run(table.request(secs(1))).0, TaskId::Reduce(0));
}

#[test]
fn a_task_past_its_deadline_goes_to_another_worker_and_the_first_success_wins() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, slow) = run(table.request(secs(0)));
    assert_eq!(ask(&mut table, secs(9)), Next::Wait, "not yet timed out");
    let (again, fast) = run(ask(&mut table, secs(10)));
    assert_eq!(again, task);
    assert_ne!(fast, slow);
    assert_eq!(table.counts().timeouts, 1);
    assert_eq!(table.counts().reexecutions, 1);
    // The slow attempt finishes first: it was issued for this task and the task is not done, so it counts.
    assert_eq!(table.report(task, slow, Outcome::Succeeded), Verdict::Commit { task });
    assert_eq!(table.counts().late_successes, 1);
    // The fast one, still running, reports while the slow one commits: its files are discarded.
    let verdict = table.report(task, fast, Outcome::Succeeded);
    assert_eq!(verdict, Verdict::Ignore { reason: IgnoreReason::AlreadyFinished });
    assert!(IgnoreReason::AlreadyFinished.discards_files());
    table.commit_finished(task, slow, Ok(()));
    assert_eq!(table.state(task), Some(TaskState::Done { attempt: slow }));
    // A report after the task is done is ignored too.
    assert_eq!(table.report(task, fast, Outcome::Succeeded), Verdict::Ignore { reason: IgnoreReason::AlreadyFinished });
}

#[test]
fn a_job_whose_tasks_outlast_the_timeout_finishes_with_one_worker() {
    // The scenario: one worker, every task takes twice the timeout. The seed's rule answered every
    // report "stale" and re-ran the task forever; a late success from an issued attempt must count.
    let timeout = Duration::from_millis(150);
    let task_time = Duration::from_millis(300);
    let mut table = TaskTable::new(3, 2, timeout);
    let mut now = Duration::ZERO;
    let mut timeouts_seen = Vec::new();
    for _ in 0..5 {
        let (task, attempt) = run(ask(&mut table, now));
        // The coordinator ticks while the worker runs: the attempt times out, nobody else takes the task.
        timeouts_seen.extend(table.tick(now + timeout));
        now += task_time;
        timeouts_seen.extend(table.tick(now));
        finish(&mut table, task, attempt);
    }
    assert_eq!(*table.status(), JobStatus::Succeeded);
    assert_eq!(ask(&mut table, now), Next::Exit);
    let counts = table.counts();
    assert_eq!((counts.reexecutions, counts.late_successes, counts.timeouts), (0, 5, 5));
    // Each timeout is reported to the caller (who warns the user), with the doubled timeout to come.
    assert_eq!(timeouts_seen.len(), 5);
    assert!(timeouts_seen.iter().all(|t| t.timeouts == 1 && t.timeout == timeout && t.next_timeout == timeout * 2));
}

#[test]
fn a_task_s_timeout_doubles_and_too_many_timeouts_fail_the_job() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let mut now = Duration::ZERO;
    for n in 0..TIMEOUTS_PER_TASK_MAX {
        let (task, attempt) = run(ask(&mut table, now));
        let timeout = TIMEOUT * (1 << n);
        assert!(table.tick(now + timeout - Duration::from_millis(1)).is_empty(), "timeout {n} came early");
        now += timeout;
        let timed_out = table.tick(now);
        assert_eq!(timed_out.len(), 1);
        assert_eq!((timed_out[0].task, timed_out[0].attempt, timed_out[0].timeout), (task, attempt, timeout));
        assert_eq!(timed_out[0].timeouts, n + 1);
    }
    match table.status() {
        JobStatus::Failed { reason } => {
            assert!(reason.contains("map task 0 timed out 6 times") && reason.contains("--task-timeout"), "{reason}")
        }
        other => panic!("expected the job to fail, got {other:?}"),
    }
    assert_eq!(ask(&mut table, now), Next::Exit);
}

#[test]
fn a_task_of_a_lost_worker_is_reassigned_at_once_and_its_late_success_still_counts() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, lost) = run(table.request(secs(0)));
    // Abandoning an attempt that is not on record changes nothing.
    table.abandon(task, AttemptId(999));
    assert_eq!(ask(&mut table, secs(1)), Next::Wait);
    table.abandon(task, lost);
    let (again, second) = run(ask(&mut table, secs(1)));
    assert_eq!(again, task);
    assert_eq!(table.counts().abandoned, 1);
    assert_eq!(table.counts().timeouts, 0);
    // The worker was alive after all (its connection broke) and reports first: accepted.
    assert_eq!(table.report(task, lost, Outcome::Succeeded), Verdict::Commit { task });
    table.commit_finished(task, lost, Ok(()));
    assert_eq!(
        table.report(task, second, Outcome::Succeeded),
        Verdict::Ignore { reason: IgnoreReason::AlreadyFinished }
    );
}

#[test]
fn a_duplicate_report_of_the_attempt_being_committed_changes_nothing_and_keeps_its_files() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, attempt) = run(table.request(secs(0)));
    assert_eq!(table.report(task, attempt, Outcome::Succeeded), Verdict::Commit { task });
    // The worker resends its report (say, after its read timed out) while the commit is underway.
    let verdict = table.report(task, attempt, Outcome::Succeeded);
    assert_eq!(verdict, Verdict::Ignore { reason: IgnoreReason::Duplicate });
    assert!(!IgnoreReason::Duplicate.discards_files(), "the files being committed must not be removed");
    assert_eq!(table.state(task), Some(TaskState::Committing { attempt }));
    table.commit_finished(task, attempt, Ok(()));
    assert_eq!(table.report(task, attempt, Outcome::Succeeded), Verdict::Ignore { reason: IgnoreReason::Duplicate });
    assert_eq!(table.state(task), Some(TaskState::Done { attempt }));
}

#[test]
fn duplicate_and_foreign_reports_are_ignored() {
    let mut table = TaskTable::new(2, 1, TIMEOUT);
    let (task, attempt) = run(table.request(secs(0)));
    let (other_task, other_attempt) = run(table.request(secs(0)));
    finish(&mut table, task, attempt);
    assert_eq!(table.report(task, attempt, Outcome::Succeeded), Verdict::Ignore { reason: IgnoreReason::Duplicate });
    assert_eq!(
        table.report(task, AttemptId(999), Outcome::Succeeded),
        Verdict::Ignore { reason: IgnoreReason::Foreign }
    );
    // The live attempt of map 1 reported under map 0: foreign, and its files are not this report's to remove.
    let verdict = table.report(task, other_attempt, Outcome::Succeeded);
    assert_eq!(verdict, Verdict::Ignore { reason: IgnoreReason::Foreign });
    assert!(!IgnoreReason::Foreign.discards_files());
    assert_eq!(
        table.report(TaskId::Reduce(7), attempt, Outcome::Succeeded),
        Verdict::Ignore { reason: IgnoreReason::Foreign }
    );
    assert_eq!(table.counts().ignored_reports, 4);
    assert!(matches!(table.state(other_task), Some(TaskState::InProgress { attempt: a, .. }) if a == other_attempt));
    finish(&mut table, other_task, other_attempt);
}

#[test]
fn the_record_of_live_attempts_is_bounded_per_task() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let mut attempts = Vec::new();
    // Workers keep dying with the task (a crash loop): every attempt is abandoned, none reports.
    for _ in 0..LIVE_ATTEMPTS_PER_TASK_MAX + 3 {
        let (task, attempt) = run(ask(&mut table, secs(0)));
        attempts.push(attempt);
        table.abandon(task, attempt);
    }
    let task = TaskId::Map(0);
    // The oldest attempts were forgotten: a report from one is stale, and its files are discarded.
    let verdict = table.report(task, attempts[0], Outcome::Succeeded);
    assert_eq!(verdict, Verdict::Ignore { reason: IgnoreReason::Stale });
    assert!(IgnoreReason::Stale.discards_files());
    // The most recent ones are still live: one of them succeeding is accepted.
    let recent = attempts[attempts.len() - LIVE_ATTEMPTS_PER_TASK_MAX];
    assert_eq!(table.report(task, recent, Outcome::Succeeded), Verdict::Commit { task });
}

#[test]
fn a_late_failure_counts_but_leaves_the_attempt_on_record_running() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, first) = run(ask(&mut table, secs(0)));
    let (_, second) = run(ask(&mut table, secs(10)));
    let failure = Outcome::Failed { permanent: false, error: "app panicked".into() };
    assert_eq!(table.report(task, first, failure), Verdict::Retry { task });
    assert_eq!(table.counts().failed_attempts, 1);
    assert!(matches!(table.state(task), Some(TaskState::InProgress { attempt, .. }) if attempt == second));
    // The failed attempt is over: a success claimed for it later is stale.
    assert_eq!(table.report(task, first, Outcome::Succeeded), Verdict::Ignore { reason: IgnoreReason::Stale });
    finish(&mut table, task, second);
}

#[test]
fn after_a_failed_commit_another_live_attempt_may_still_commit() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, slow) = run(ask(&mut table, secs(0)));
    let (_, fast) = run(ask(&mut table, secs(10)));
    assert_eq!(table.report(task, fast, Outcome::Succeeded), Verdict::Commit { task });
    table.commit_finished(task, fast, Err("rename failed: no space left".into()));
    assert_eq!(table.state(task), Some(TaskState::Idle));
    assert_eq!(table.report(task, fast, Outcome::Succeeded), Verdict::Ignore { reason: IgnoreReason::Stale });
    finish(&mut table, task, slow);
}

#[test]
fn a_failed_attempt_is_retried_and_too_many_failures_fail_the_job() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let failure = || Outcome::Failed { permanent: false, error: "app panicked".into() };
    for round in 1..MAX_FAILED_ATTEMPTS_PER_TASK {
        let (task, attempt) = run(table.request(secs(0)));
        assert_eq!(table.report(task, attempt, failure()), Verdict::Retry { task }, "round {round}");
    }
    let (task, attempt) = run(table.request(secs(0)));
    assert_eq!(table.report(task, attempt, failure()), Verdict::JobFailed { task });
    assert!(matches!(table.status(), JobStatus::Failed { reason } if reason.contains("app panicked")));
    assert_eq!(table.request(secs(1)), Next::Exit);
}

#[test]
fn a_permanent_failure_fails_the_job_at_once() {
    let mut table = TaskTable::new(2, 1, TIMEOUT);
    let (task, attempt) = run(table.request(secs(0)));
    let other = run(table.request(secs(0)));
    let outcome = Outcome::Failed { permanent: true, error: "input a.txt: invalid UTF-8 at byte 7".into() };
    assert_eq!(table.report(task, attempt, outcome), Verdict::JobFailed { task });
    assert_eq!(table.request(secs(0)), Next::Exit);
    // The other attempt's report arrives after the job failed: nothing may be committed.
    assert_eq!(table.report(other.0, other.1, Outcome::Succeeded), Verdict::Ignore { reason: IgnoreReason::JobOver });
    assert!(IgnoreReason::JobOver.discards_files());
}

#[test]
fn a_failed_commit_makes_the_task_idle_again() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, attempt) = run(table.request(secs(0)));
    assert_eq!(table.report(task, attempt, Outcome::Succeeded), Verdict::Commit { task });
    table.commit_finished(task, attempt, Err("rename failed: no space left".into()));
    assert_eq!(table.state(task), Some(TaskState::Idle));
    let (again, second) = run(ask(&mut table, secs(1)));
    assert_eq!(again, task);
    finish(&mut table, task, second);
}

#[test]
fn a_committing_task_does_not_time_out() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, attempt) = run(table.request(secs(0)));
    assert_eq!(table.report(task, attempt, Outcome::Succeeded), Verdict::Commit { task });
    assert!(table.tick(secs(100)).is_empty());
    assert_eq!(table.state(task), Some(TaskState::Committing { attempt }));
    assert_eq!(table.request(secs(100)), Next::Wait);
}

#[test]
fn the_papers_job_size_is_scheduled_without_quadratic_cost() {
    // M = 200,000 and R = 5,000 (the paper, section 3.5). A linear scan per request would take minutes.
    let (maps, reduces) = (200_000, 5_000);
    let mut table = TaskTable::new(maps, reduces, TIMEOUT);
    let started = std::time::Instant::now();
    for _ in 0..(maps + reduces) {
        let (task, attempt) = run(table.request(secs(0)));
        assert_eq!(table.report(task, attempt, Outcome::Succeeded), Verdict::Commit { task });
        table.commit_finished(task, attempt, Ok(()));
    }
    assert_eq!(*table.status(), JobStatus::Succeeded);
    assert!(started.elapsed() < Duration::from_secs(60), "scheduling took {:?}", started.elapsed());
}

/// One event of a random schedule. Indices pick among the attempts issued so far.
#[derive(Clone, Debug)]
enum Event {
    Request,
    Succeed(usize),
    Fail(usize),
    CommitOk(usize),
    CommitErr(usize),
    Abandon(usize),
    Advance(u64),
    /// The committed output of the map of this issued attempt is lost (its worker died, or a fetch found it
    /// damaged).
    LoseOutput(usize, bool),
    /// A reducer releases this issued attempt: a map output it needed was lost.
    Release(usize),
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => Just(Event::Request),
        4 => (0usize..64).prop_map(Event::Succeed),
        1 => (0usize..64).prop_map(Event::Fail),
        4 => (0usize..64).prop_map(Event::CommitOk),
        1 => (0usize..64).prop_map(Event::CommitErr),
        1 => (0usize..64).prop_map(Event::Abandon),
        2 => (0u64..6).prop_map(Event::Advance),
        1 => (0usize..64, any::<bool>()).prop_map(|(i, dead)| Event::LoseOutput(i, dead)),
        1 => (0usize..64).prop_map(Event::Release),
    ]
}

proptest! {
    /// Whatever the interleaving of requests, reports, commits, lost workers, lost map outputs, released
    /// reduce attempts and time: a task is committed at most once (a map once more after each loss of its
    /// output) and by an attempt issued for it that had not ended; a done task stays done with the attempt
    /// that committed it unless its map output is lost; reduces start only while all maps are done; and an
    /// attempt whose files the caller was told to discard is never committed afterwards (files are removed
    /// only for attempts that will never be committed).
    #[test]
    fn invariants_hold_under_any_schedule(
        maps in 1u32..5,
        reduces in 1u32..4,
        events in proptest::collection::vec(event(), 1..200),
    ) {
        let mut table = TaskTable::new(maps, reduces, Duration::from_secs(3));
        let mut now = Duration::ZERO;
        let mut issued: Vec<(TaskId, AttemptId)> = Vec::new();
        let mut committed: HashSet<TaskId> = HashSet::new();
        // Attempts that reported a failure, whose commit failed, or whose files were discarded.
        let mut ended: HashSet<AttemptId> = HashSet::new();
        for event in events {
            let before: Vec<Option<TaskState>> = all_tasks(maps, reduces).map(|t| table.state(t)).collect();
            match event {
                Event::Request => match ask(&mut table, now) {
                    Next::Run { task, attempt } => {
                        if let TaskId::Reduce(_) = task {
                            for m in 0..maps {
                                prop_assert!(matches!(table.state(TaskId::Map(m)), Some(TaskState::Done { .. })), "reduce before map {} done", m);
                            }
                        }
                        prop_assert!(issued.iter().all(|(_, a)| *a != attempt), "attempt ids are never reused");
                        issued.push((task, attempt));
                    }
                    Next::Exit => prop_assert!(table.is_over()),
                    Next::Wait => prop_assert!(!table.is_over()),
                },
                Event::Succeed(i) | Event::Fail(i) if !issued.is_empty() => {
                    let (task, attempt) = issued[i % issued.len()];
                    let state = table.state(task);
                    let outcome = if matches!(event, Event::Succeed(_)) {
                        Outcome::Succeeded
                    } else {
                        Outcome::Failed { permanent: false, error: "x".into() }
                    };
                    let verdict = table.report(task, attempt, outcome);
                    match verdict {
                        Verdict::Commit { task: t } => {
                            prop_assert_eq!(t, task);
                            prop_assert!(!ended.contains(&attempt), "an ended attempt was told to commit");
                            prop_assert!(matches!(state, Some(TaskState::Idle | TaskState::InProgress { .. })), "committed from {:?}", state);
                            prop_assert!(!table.is_over());
                        }
                        Verdict::Retry { .. } | Verdict::JobFailed { .. } => {
                            prop_assert!(!ended.contains(&attempt), "an ended attempt failed again");
                            ended.insert(attempt);
                        }
                        Verdict::Ignore { reason } => {
                            if reason.discards_files() {
                                ended.insert(attempt);
                            }
                            if reason == IgnoreReason::Duplicate {
                                let on_record = matches!(state, Some(TaskState::Committing { attempt: a } | TaskState::Done { attempt: a }) if a == attempt);
                                prop_assert!(on_record, "a duplicate names the attempt on record");
                            }
                        }
                    }
                    if matches!(state, Some(TaskState::Committing { .. } | TaskState::Done { .. })) {
                        prop_assert_eq!(table.state(task), state, "a report moved a committing or done task");
                    }
                }
                Event::CommitOk(i) | Event::CommitErr(i) if !issued.is_empty() => {
                    let (task, attempt) = issued[i % issued.len()];
                    let result = if matches!(event, Event::CommitOk(_)) { Ok(()) } else { Err("disk".to_string()) };
                    let was_committing = table.state(task) == Some(TaskState::Committing { attempt });
                    let ok = result.is_ok();
                    table.commit_finished(task, attempt, result);
                    if was_committing && ok {
                        prop_assert!(committed.insert(task), "a task is committed at most once");
                        prop_assert_eq!(table.state(task), Some(TaskState::Done { attempt }));
                    }
                    if was_committing && !ok {
                        ended.insert(attempt);
                    }
                }
                Event::Abandon(i) if !issued.is_empty() => {
                    let (task, attempt) = issued[i % issued.len()];
                    table.abandon(task, attempt);
                }
                Event::LoseOutput(i, dead) if !issued.is_empty() => {
                    let (task, attempt) = issued[i % issued.len()];
                    let TaskId::Map(m) = task else { continue };
                    let cause = if dead { LossCause::WorkerGone } else { LossCause::Unreadable };
                    let was_done = table.state(task) == Some(TaskState::Done { attempt });
                    let was_over = table.is_over();
                    let lost = table.map_output_lost(m, attempt, cause);
                    prop_assert_eq!(lost, was_done && !was_over, "only the official output of a running job is lost");
                    if lost {
                        prop_assert_eq!(table.state(task), Some(TaskState::Idle));
                        committed.remove(&task);
                    }
                }
                Event::Release(i) if !issued.is_empty() => {
                    let (task, attempt) = issued[i % issued.len()];
                    let was = table.state(task);
                    table.release(task, attempt);
                    if let Some(TaskState::Committing { .. } | TaskState::Done { .. }) = was {
                        prop_assert_eq!(table.state(task), was, "a release moved a committing or done task");
                    }
                    ended.insert(attempt);
                }
                Event::Advance(s) => {
                    now += Duration::from_secs(s);
                    for timed_out in table.tick(now) {
                        prop_assert!(timed_out.timeouts <= TIMEOUTS_PER_TASK_MAX);
                        prop_assert_eq!(timed_out.next_timeout, timed_out.timeout * 2);
                    }
                }
                _ => {}
            }
            for (t, old) in all_tasks(maps, reduces).zip(before) {
                if let Some(TaskState::Done { attempt }) = old
                    && !matches!(event, Event::LoseOutput(..))
                {
                    prop_assert_eq!(table.state(t), Some(TaskState::Done { attempt }), "Done is final");
                }
            }
        }
        if *table.status() == JobStatus::Succeeded {
            // A map whose output was lost after every reduce was done need not run again.
            prop_assert_eq!(committed.iter().filter(|t| matches!(t, TaskId::Reduce(_))).count() as u32, reduces);
        }
    }
}

fn all_tasks(maps: u32, reduces: u32) -> impl Iterator<Item = TaskId> {
    (0..maps).map(TaskId::Map).chain((0..reduces).map(TaskId::Reduce))
}

/// Backup tasks: a table of `maps` maps and one reduce where every map but map 0 finishes in `took`.
fn all_maps_but_the_first_done(maps: u32, took: Duration) -> (TaskTable, AttemptId) {
    let mut table = TaskTable::new(maps, 1, Duration::from_secs(600));
    let (first, straggling) = run(ask(&mut table, secs(0)));
    assert_eq!(first, TaskId::Map(0));
    let mut now = secs(0);
    for m in 1..maps {
        let (task, attempt) = run(ask(&mut table, now));
        assert_eq!(task, TaskId::Map(m));
        now += took;
        table.tick(now);
        finish(&mut table, task, attempt);
    }
    (table, straggling)
}

#[test]
fn a_straggler_gets_one_backup_near_the_phase_s_end_and_the_first_to_finish_wins() {
    let (mut table, straggling) = all_maps_but_the_first_done(10, Duration::from_millis(500));
    // 9 of 10 maps done (90%), median 0.5 s: map 0 is a straggler once it has run more than 1.5 s.
    let at = secs(5) + Duration::from_millis(500);
    let Next::Run { task, attempt: backup } = ask(&mut table, at) else {
        panic!("no backup for a map that has run 5.5 s against a median of 0.5 s");
    };
    assert_eq!(task, TaskId::Map(0));
    assert_ne!(backup, straggling);
    assert!(table.is_backup(task, backup));
    assert!(matches!(table.state(task), Some(TaskState::InProgress { attempt, .. }) if attempt == straggling));
    // At most one backup per task: the next idle worker waits.
    assert_eq!(ask(&mut table, at + secs(30)), Next::Wait);
    // The backup finishes first and is committed; the straggler's late report is ignored, its files removed.
    finish(&mut table, task, backup);
    let verdict = table.report(task, straggling, Outcome::Succeeded);
    assert_eq!(verdict, Verdict::Ignore { reason: IgnoreReason::AlreadyFinished });
    assert!(IgnoreReason::AlreadyFinished.discards_files());
    let counts = table.counts();
    assert_eq!((counts.backups, counts.backup_wins, counts.reexecutions), (1, 1, 0));
    assert!(matches!(ask(&mut table, at + secs(31)), Next::Run { task: TaskId::Reduce(0), .. }));
}

#[test]
fn the_straggler_may_still_win_against_its_backup() {
    let (mut table, straggling) = all_maps_but_the_first_done(10, Duration::from_millis(500));
    let (task, backup) = run(ask(&mut table, secs(6)));
    finish(&mut table, task, straggling);
    assert_eq!(
        table.report(task, backup, Outcome::Succeeded),
        Verdict::Ignore { reason: IgnoreReason::AlreadyFinished }
    );
    assert_eq!((table.counts().backups, table.counts().backup_wins), (1, 0));
}

#[test]
fn no_backup_before_the_phase_is_nearly_done_or_for_a_task_not_far_slower() {
    // 8 of 10 done: below 90%, however slow the other two are.
    let mut table = TaskTable::new(10, 1, Duration::from_secs(600));
    let slow: Vec<_> = (0..2).map(|_| run(ask(&mut table, secs(0)))).collect();
    for _ in 2..10 {
        let (task, attempt) = run(ask(&mut table, secs(0)));
        table.tick(secs(1));
        finish(&mut table, task, attempt);
    }
    assert_eq!(ask(&mut table, secs(500)), Next::Wait, "80% done: no backups yet");
    finish(&mut table, slow[0].0, slow[0].1);
    // 90% done, median 1 s: map 1 has run 2.5 s, not over 3x the median.
    assert_eq!(ask(&mut table, Duration::from_millis(2500)), Next::Wait);
    assert_eq!(table.counts().backups, 0);
}

#[test]
fn a_job_of_tasks_of_varying_length_without_stragglers_gets_no_backups() {
    // 6.824's job-count maps: 2-5 s each, four workers, no straggler. Tasks end in a spread that never
    // reaches 3x the median, so every task is handed out exactly once.
    let maps = 40;
    let mut table = TaskTable::new(maps, 4, Duration::from_secs(600));
    let mut running: Vec<(Duration, TaskId, AttemptId)> = Vec::new();
    let mut now = secs(0);
    let mut handed_out = 0;
    while !table.is_over() {
        while running.len() < 4 {
            match ask(&mut table, now) {
                Next::Run { task, attempt } => {
                    handed_out += 1;
                    let length = Duration::from_millis(2000 + (attempt.0 * 7919) % 3000);
                    running.push((now + length, task, attempt));
                }
                _ => break,
            }
        }
        running.sort();
        let (end, task, attempt) = running.remove(0);
        now = end;
        table.tick(now);
        finish(&mut table, task, attempt);
    }
    assert_eq!(table.status(), &JobStatus::Succeeded);
    assert_eq!(table.counts().backups, 0);
    assert_eq!(handed_out, maps + 4, "every task handed out exactly once");
}

#[test]
fn a_resumed_job_keeps_its_committed_tasks_and_never_reuses_an_attempt_id() {
    let mut table = TaskTable::new(3, 1, TIMEOUT);
    table.start_run(1);
    table.restore_done(TaskId::Map(1), AttemptId(7));
    // A journal naming a task twice cannot make it count twice.
    table.restore_done(TaskId::Map(1), AttemptId(9));
    assert_eq!(table.state(TaskId::Map(1)), Some(TaskState::Done { attempt: AttemptId(7) }));
    let (first, a) = run(ask(&mut table, secs(0)));
    let (second, b) = run(ask(&mut table, secs(0)));
    assert_eq!((first, second), (TaskId::Map(0), TaskId::Map(2)), "the committed map is not handed out again");
    assert!(a.0 >= 1 << 40 && b.0 > a.0, "the second run's attempt ids lie above the first run's: {a} {b}");
    finish(&mut table, first, a);
    finish(&mut table, second, b);
    let (reduce, r) = run(ask(&mut table, secs(0)));
    finish(&mut table, reduce, r);
    assert_eq!(table.status(), &JobStatus::Succeeded);
    assert_eq!(table.counts().reexecutions, 0);
}

/// The paper's section 3.3: a map whose committed output died with its worker is idle again and runs again;
/// reduces in progress stay in progress (a reducer that cannot read the output releases its attempt, not a
/// failure); no new reduce is handed out until the map is done again.
#[test]
fn a_lost_map_output_runs_the_map_again_and_released_reduces_run_once_it_is_back() {
    let mut table = TaskTable::new(2, 2, TIMEOUT);
    let (m0, a0) = run(ask(&mut table, secs(0)));
    let (m1, a1) = run(ask(&mut table, secs(0)));
    finish(&mut table, m0, a0);
    finish(&mut table, m1, a1);
    let (r0, reduce_attempt) = run(ask(&mut table, secs(1)));
    assert_eq!(r0, TaskId::Reduce(0));

    assert!(!table.map_output_lost(0, a1, LossCause::WorkerGone), "not map 0's official attempt");
    assert!(table.map_output_lost(0, a0, LossCause::WorkerGone));
    assert!(!table.map_output_lost(0, a0, LossCause::Unreadable), "the same loss reported twice is not news");
    assert_eq!(table.state(m0), Some(TaskState::Idle));
    assert_eq!(table.counts().lost_map_outputs, 1);
    // The next worker gets the map, not the other reduce.
    let (again, rerun) = run(ask(&mut table, secs(2)));
    assert_eq!(again, m0);
    assert_eq!(ask(&mut table, secs(2)), Next::Wait, "no reduce while a map output is missing");
    // The reducer could not fetch map 0: it gives its attempt back, which is not a failure.
    table.release(r0, reduce_attempt);
    assert_eq!(table.state(r0), Some(TaskState::Idle));
    assert_eq!(table.counts().failed_attempts, 0);
    assert_eq!(table.report(r0, reduce_attempt, Outcome::Succeeded), Verdict::Ignore { reason: IgnoreReason::Stale });
    finish(&mut table, m0, rerun);
    let (r, a) = run(ask(&mut table, secs(3)));
    assert_eq!(r, TaskId::Reduce(0));
    finish(&mut table, r, a);
    let (r, a) = run(ask(&mut table, secs(3)));
    finish(&mut table, r, a);
    assert_eq!(*table.status(), JobStatus::Succeeded);
    assert_eq!(table.counts().reexecutions, 2, "the map and the released reduce ran again");
}

/// An output that cannot be read from a live worker (damaged every time) fails the job after a bound;
/// outputs lost with dead workers do not count towards it (workers may keep dying, the job still ends).
#[test]
fn unreadable_outputs_are_bounded_but_outputs_lost_with_dead_workers_are_not() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    for round in 0..LOST_OUTPUTS_PER_MAP_MAX * 2 {
        let (map, attempt) = run(ask(&mut table, secs(u64::from(round))));
        finish(&mut table, map, attempt);
        assert!(table.map_output_lost(0, attempt, LossCause::WorkerGone));
    }
    assert_eq!(*table.status(), JobStatus::Running);
    for round in 1..=LOST_OUTPUTS_PER_MAP_MAX {
        let (map, attempt) = run(ask(&mut table, secs(100)));
        finish(&mut table, map, attempt);
        assert!(table.map_output_lost(0, attempt, LossCause::Unreadable));
        assert_eq!(table.is_over(), round == LOST_OUTPUTS_PER_MAP_MAX, "round {round}");
    }
    let JobStatus::Failed { reason } = table.status() else { panic!("the job should have failed") };
    assert!(reason.contains("could not be fetched"), "{reason}");
}
