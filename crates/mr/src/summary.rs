//! The end-of-job summary, for people (stderr) and for scripts (`--stats-file`).
use std::fmt::Write as _;

use crate::coordinator::JobSummary;
use crate::units::format_bytes;

pub fn human(summary: &JobSummary) -> String {
    let c = &summary.counts;
    let mut out = String::new();
    let job = summary.job.map(|j| j.to_string()).unwrap_or_default();
    let _ = writeln!(out, "job {job} done in {:.2} s", summary.elapsed.as_secs_f64());
    let _ = writeln!(
        out,
        "tasks: {} map + {} reduce; {} re-executions ({} timeouts, {} lost with their worker, {} failed attempts, \
         {} ignored reports, {} late successes accepted); {} backups of stragglers ({} finished first); {} map \
         outputs lost (maps run again, {} reduce attempts released)",
        summary.map_tasks,
        summary.reduce_tasks,
        c.reexecutions,
        c.timeouts,
        c.abandoned,
        c.failed_attempts,
        c.ignored_reports,
        c.late_successes,
        c.backups,
        c.backup_wins,
        c.lost_map_outputs,
        c.released_attempts
    );
    let rate = summary.input_bytes as f64 / summary.elapsed.as_secs_f64().max(1e-9);
    let _ = writeln!(
        out,
        "bytes: {} in ({}/s), {} intermediate, {} out; {} spilled runs",
        format_bytes(summary.input_bytes),
        format_bytes(rate as u64),
        format_bytes(summary.intermediate_bytes),
        format_bytes(summary.output_bytes),
        summary.spills
    );
    let _ = write!(
        out,
        "workers: {} joined; worker peak RSS {}",
        summary.workers_seen,
        format_bytes(summary.worker_peak_rss_bytes)
    );
    if !summary.counters.is_empty() {
        let _ = write!(out, "\ncounters: {}", summary.counters);
    }
    out
}

/// `key value` lines, one per figure, stable names; user counters follow as `counter.<name> <value>`.
pub fn machine(summary: &JobSummary) -> String {
    let c = &summary.counts;
    let job = summary.job.map(|j| j.to_string()).unwrap_or_default();
    let fields: [(&str, String); 21] = [
        ("job", job),
        ("elapsed_ms", summary.elapsed.as_millis().to_string()),
        ("map_tasks", summary.map_tasks.to_string()),
        ("reduce_tasks", summary.reduce_tasks.to_string()),
        ("reexecutions", c.reexecutions.to_string()),
        ("timeouts", c.timeouts.to_string()),
        ("abandoned", c.abandoned.to_string()),
        ("failed_attempts", c.failed_attempts.to_string()),
        ("ignored_reports", c.ignored_reports.to_string()),
        ("late_successes", c.late_successes.to_string()),
        ("backups", c.backups.to_string()),
        ("backup_wins", c.backup_wins.to_string()),
        ("lost_map_outputs", c.lost_map_outputs.to_string()),
        ("released_attempts", c.released_attempts.to_string()),
        ("restored_tasks", summary.restored_tasks.to_string()),
        ("input_bytes", summary.input_bytes.to_string()),
        ("intermediate_bytes", summary.intermediate_bytes.to_string()),
        ("output_bytes", summary.output_bytes.to_string()),
        ("spills", summary.spills.to_string()),
        ("workers_joined", summary.workers_seen.to_string()),
        ("worker_peak_rss_bytes", summary.worker_peak_rss_bytes.to_string()),
    ];
    let mut out: String = fields.iter().map(|(k, v)| format!("{k} {v}\n")).collect();
    for (name, value) in summary.counters.iter() {
        let _ = writeln!(out, "counter.{name} {value}");
    }
    out
}
