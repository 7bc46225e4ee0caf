//! What the status page shows (the paper's section 4.8): a point-in-time copy of the coordinator's view of
//! the job, taken under its lock in a few microseconds and rendered (`status_page`) or serialized
//! (`/status.json`) outside it, plus the bounded records the coordinator keeps for it: the workers that
//! left, the last re-executions and why, and the progress history for the chart.
use std::collections::VecDeque;
use std::time::Duration;

use serde::Serialize;

use crate::counters::Counters;
use crate::task_table::StateCounts;

/// Re-execution events kept for the page; older ones are dropped (the totals by reason stay exact).
pub const REEXECUTIONS_SHOWN_MAX: usize = 100;
/// Workers that left and are still listed, most recent last: enough to see a crash loop, bounded so a job
/// with thousands of short-lived workers keeps a small page.
pub const DEPARTED_WORKERS_SHOWN_MAX: usize = 32;
/// Points of the progress chart. When full, every other point is dropped and sampling slows down by half,
/// so the chart covers the whole job at any length with bounded memory.
pub const HISTORY_POINTS_MAX: usize = 240;
/// The first sampling interval of the chart.
pub const HISTORY_INTERVAL_START: Duration = Duration::from_millis(500);
/// Longest error text kept per re-execution (a worker's error can be 16 KiB).
const ERROR_SHOWN_BYTES_MAX: usize = 600;

/// The whole page's data; `/status.json` is exactly this.
#[derive(Clone, Debug, Serialize)]
pub struct StatusSnapshot {
    pub job: String,
    pub app: String,
    /// `map`, `reduce`, `publishing`, `succeeded` or `failed`.
    pub phase: &'static str,
    pub failure: Option<String>,
    pub elapsed_ms: u64,
    /// A rough estimate from the pace of finished tasks; `None` until a task is done, or when over.
    pub eta_ms: Option<u64>,
    pub map_tasks: StateCounts,
    pub reduce_tasks: StateCounts,
    pub tasks_total: u32,
    pub tasks_done: u32,
    pub reexecutions: ReexecutionTotals,
    pub recent_reexecutions: Vec<ReexecutionEvent>,
    pub input_bytes_total: u64,
    pub input_bytes: u64,
    pub intermediate_bytes: u64,
    pub output_bytes: u64,
    pub input_bytes_per_second: u64,
    pub counters: Counters,
    pub workers: Vec<WorkerStatus>,
    pub history: Vec<HistoryPoint>,
}

/// Why tasks ran again, as counted by the task table.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct ReexecutionTotals {
    /// Attempts started for a task that had been started before.
    pub total: u64,
    pub timeouts: u64,
    pub lost_workers: u64,
    pub failed_attempts: u64,
    /// Backup attempts of stragglers (not counted in `total`), and how many of them finished first.
    pub backups: u64,
    pub backup_wins: u64,
    /// Committed map outputs lost with their worker or found damaged by a reducer (each map ran again).
    pub lost_map_outputs: u64,
}

/// One reason a task was handed out again.
#[derive(Clone, Debug, Serialize)]
pub struct ReexecutionEvent {
    pub at_ms: u64,
    pub task: String,
    pub attempt: String,
    /// `timeout`, `lost worker` or `failed attempt`.
    pub reason: &'static str,
    /// The error of a failed attempt, the worker that was lost, or the timeout that passed.
    pub detail: String,
}

impl ReexecutionEvent {
    pub fn new(at: Duration, task: String, attempt: String, reason: &'static str, detail: String) -> Self {
        ReexecutionEvent { at_ms: millis(at), task, attempt, reason, detail: cut(detail, ERROR_SHOWN_BYTES_MAX) }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct WorkerStatus {
    pub address: String,
    pub pid: u32,
    pub connected: bool,
    /// The task and attempt it runs, e.g. `map task 3 attempt 7`.
    pub current: Option<String>,
    /// Attempts of this worker that were committed.
    pub tasks_done: u64,
    /// Input bytes of those attempts, per second since the worker joined.
    pub bytes_per_second: u64,
}

/// One sample of the progress chart.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct HistoryPoint {
    pub at_ms: u64,
    pub tasks_done: u32,
    pub input_bytes: u64,
}

/// The chart's samples: bounded, evenly thinned (see [`HISTORY_POINTS_MAX`]).
#[derive(Clone, Debug)]
pub struct History {
    points: Vec<HistoryPoint>,
    interval: Duration,
    last: Option<Duration>,
}

impl Default for History {
    fn default() -> Self {
        History { points: Vec::new(), interval: HISTORY_INTERVAL_START, last: None }
    }
}

impl History {
    /// Records a point if the sampling interval has passed since the last one (`force`: regardless, for
    /// the end of the job).
    pub fn sample(&mut self, now: Duration, tasks_done: u32, input_bytes: u64, force: bool) {
        if !force && self.last.is_some_and(|last| now.saturating_sub(last) < self.interval) {
            return;
        }
        self.last = Some(now);
        self.points.push(HistoryPoint { at_ms: millis(now), tasks_done, input_bytes });
        if self.points.len() >= HISTORY_POINTS_MAX {
            let mut i = 0;
            self.points.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.interval = self.interval.saturating_mul(2);
        }
    }

    pub fn points(&self) -> &[HistoryPoint] {
        &self.points
    }
}

/// A bounded most-recent-last list.
#[derive(Clone, Debug)]
pub struct Recent<T> {
    items: VecDeque<T>,
    max: usize,
}

impl<T: Clone> Recent<T> {
    pub fn new(max: usize) -> Self {
        Recent { items: VecDeque::with_capacity(max.min(64)), max }
    }

    pub fn push(&mut self, item: T) {
        if self.items.len() == self.max {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    pub fn to_vec(&self) -> Vec<T> {
        self.items.iter().cloned().collect()
    }
}

/// A rough time left: the remaining tasks at the pace of the finished ones so far.
pub fn eta(elapsed: Duration, done: u32, total: u32) -> Option<Duration> {
    if done == 0 || done >= total {
        return None;
    }
    Some(elapsed.mul_f64(f64::from(total - done) / f64::from(done)))
}

pub fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn cut(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_stays_bounded_and_keeps_covering_the_whole_job() {
        let mut history = History::default();
        for s in 0..10_000u64 {
            history.sample(Duration::from_secs(s), s as u32, s, false);
        }
        let points = history.points();
        assert!(points.len() < HISTORY_POINTS_MAX, "{}", points.len());
        assert_eq!(points[0].at_ms, 0, "the start stays");
        assert!(points.last().unwrap().at_ms > 9_000_000, "the end is recent: {:?}", points.last());
        assert!(points.windows(2).all(|w| w[0].at_ms < w[1].at_ms));
    }

    #[test]
    fn eta_is_the_pace_so_far_and_none_before_the_first_task_or_after_the_last() {
        assert_eq!(eta(Duration::from_secs(10), 0, 4), None);
        assert_eq!(eta(Duration::from_secs(10), 1, 4), Some(Duration::from_secs(30)));
        assert_eq!(eta(Duration::from_secs(10), 4, 4), None);
    }

    #[test]
    fn recent_keeps_the_last_items() {
        let mut recent = Recent::new(3);
        for i in 0..5 {
            recent.push(i);
        }
        assert_eq!(recent.to_vec(), [2, 3, 4]);
    }
}
