//! The task table, driven by hand: no processes, no clock.
use std::collections::HashSet;
use std::time::Duration;

use proptest::prelude::*;

use super::*;

const TIMEOUT: Duration = Duration::from_secs(10);

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
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
fn a_task_past_its_deadline_goes_to_another_worker_and_the_late_report_is_ignored() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, slow) = run(table.request(secs(0)));
    assert_eq!(table.request(secs(9)), Next::Wait, "not yet timed out");
    let (again, fast) = run(table.request(secs(10)));
    assert_eq!(again, task);
    assert_ne!(fast, slow);
    assert_eq!(table.counts().timeouts, 1);
    assert_eq!(table.counts().reexecutions, 1);
    // The slow attempt finishes first: it is not on record any more.
    assert_eq!(table.report(task, slow, Outcome::Succeeded), Verdict::Ignore { reason: IgnoreReason::Stale });
    finish(&mut table, task, fast);
    // And a report after the task is done is ignored too.
    assert_eq!(table.report(task, slow, Outcome::Succeeded), Verdict::Ignore { reason: IgnoreReason::AlreadyFinished });
}

#[test]
fn a_task_of_a_lost_worker_is_reassigned_at_once() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, lost) = run(table.request(secs(0)));
    // Abandoning an attempt that is not on record changes nothing.
    table.abandon(task, AttemptId(999));
    assert_eq!(table.request(secs(1)), Next::Wait);
    table.abandon(task, lost);
    let (again, second) = run(table.request(secs(1)));
    assert_eq!(again, task);
    assert_eq!(table.counts().abandoned, 1);
    assert_eq!(table.counts().timeouts, 0);
    // The worker was alive after all and reports late: ignored.
    assert_eq!(table.report(task, lost, Outcome::Succeeded), Verdict::Ignore { reason: IgnoreReason::Stale });
    finish(&mut table, task, second);
}

#[test]
fn duplicate_and_foreign_reports_are_ignored() {
    let mut table = TaskTable::new(2, 1, TIMEOUT);
    let (task, attempt) = run(table.request(secs(0)));
    finish(&mut table, task, attempt);
    assert_eq!(
        table.report(task, attempt, Outcome::Succeeded),
        Verdict::Ignore { reason: IgnoreReason::AlreadyFinished }
    );
    assert_eq!(
        table.report(task, AttemptId(999), Outcome::Succeeded),
        Verdict::Ignore { reason: IgnoreReason::Foreign }
    );
    // A real attempt id reported for a task it was not issued for.
    assert_eq!(
        table.report(TaskId::Map(1), attempt, Outcome::Succeeded),
        Verdict::Ignore { reason: IgnoreReason::Foreign }
    );
    assert_eq!(
        table.report(TaskId::Reduce(7), attempt, Outcome::Succeeded),
        Verdict::Ignore { reason: IgnoreReason::Foreign }
    );
    assert_eq!(table.counts().ignored_reports, 4);
    assert_eq!(table.state(TaskId::Map(1)), Some(TaskState::Idle));
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
}

#[test]
fn a_failed_commit_makes_the_task_idle_again() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, attempt) = run(table.request(secs(0)));
    assert_eq!(table.report(task, attempt, Outcome::Succeeded), Verdict::Commit { task });
    table.commit_finished(task, attempt, Err("rename failed: no space left".into()));
    assert_eq!(table.state(task), Some(TaskState::Idle));
    let (again, second) = run(table.request(secs(1)));
    assert_eq!(again, task);
    finish(&mut table, task, second);
}

#[test]
fn a_committing_task_does_not_time_out() {
    let mut table = TaskTable::new(1, 1, TIMEOUT);
    let (task, attempt) = run(table.request(secs(0)));
    assert_eq!(table.report(task, attempt, Outcome::Succeeded), Verdict::Commit { task });
    table.tick(secs(100));
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
    ]
}

proptest! {
    /// Whatever the interleaving of requests, reports, commits and time: at most one attempt per task is on
    /// record, a done task stays done with the attempt that committed it, reduces start only after all maps
    /// are done, and only the attempt on record is ever told to commit.
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
        for event in events {
            let before: Vec<Option<TaskState>> = all_tasks(maps, reduces).map(|t| table.state(t)).collect();
            match event {
                Event::Request => match table.request(now) {
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
                    let on_record = matches!(table.state(task), Some(TaskState::InProgress { attempt: a, .. }) if a == attempt);
                    let outcome = if matches!(event, Event::Succeed(_)) {
                        Outcome::Succeeded
                    } else {
                        Outcome::Failed { permanent: false, error: "x".into() }
                    };
                    let verdict = table.report(task, attempt, outcome);
                    if matches!(verdict, Verdict::Commit { .. }) {
                        prop_assert!(on_record, "only the attempt on record may commit");
                    }
                    if !on_record {
                        prop_assert!(matches!(verdict, Verdict::Ignore { .. }), "not on record but {:?}", verdict);
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
                }
                Event::Abandon(i) if !issued.is_empty() => {
                    let (task, attempt) = issued[i % issued.len()];
                    table.abandon(task, attempt);
                }
                Event::Advance(s) => {
                    now += Duration::from_secs(s);
                    table.tick(now);
                }
                _ => {}
            }
            for (t, old) in all_tasks(maps, reduces).zip(before) {
                if let Some(TaskState::Done { attempt }) = old {
                    prop_assert_eq!(table.state(t), Some(TaskState::Done { attempt }), "Done is final");
                }
            }
        }
        if *table.status() == JobStatus::Succeeded {
            prop_assert_eq!(committed.len() as u32, maps + reduces);
        }
    }
}

fn all_tasks(maps: u32, reduces: u32) -> impl Iterator<Item = TaskId> {
    (0..maps).map(TaskId::Map).chain((0..reduces).map(TaskId::Reduce))
}
