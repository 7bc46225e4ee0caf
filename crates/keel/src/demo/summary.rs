//! The demo's closing table: the figures it measured, and which checks passed. A check failed is named in
//! words; the demo's exit code follows from `failures`.
use super::kv_part::{CheckVerdict, KvFigures};
use super::mr_part::MrFigures;
use super::narrator::human;

/// The checks that failed, in words; empty when everything passed.
pub fn failures(kv: &KvFigures, mr: &MrFigures) -> Vec<String> {
    let mut failed = Vec::new();
    match &kv.verdict {
        CheckVerdict::Linearizable => {}
        CheckVerdict::NotLinearizable(key) => failed.push(format!("the history is not linearizable (key {key})")),
        CheckVerdict::Undecided(keys) => {
            failed.push(format!("the checker could not decide keys {keys} within its search bound"))
        }
    }
    if !mr.identical {
        failed.push("the MapReduce output differs from keel mr seq's".to_string());
    }
    if mr.killed_while.is_none() {
        failed.push("no MapReduce worker was killed mid-job (the job ended first)".to_string());
    }
    failed
}

pub fn render(kv: &KvFigures, mr: &MrFigures) -> String {
    let verdict = match &kv.verdict {
        CheckVerdict::Linearizable => "linearizable".to_string(),
        CheckVerdict::NotLinearizable(key) => format!("NOT linearizable (key {key})"),
        CheckVerdict::Undecided(keys) => format!("undecided (keys {keys})"),
    };
    let killed = match &mr.killed_while {
        Some(_) => "1 of 3 workers killed mid-job".to_string(),
        None => "no worker killed".to_string(),
    };
    let rows = [
        ("first leader elected".to_string(), format!("{} after the cluster started", human(kv.first_election))),
        (
            "leader failover".to_string(),
            format!(
                "{} without a leader (node {} killed, node {} took over)",
                human(kv.failover),
                kv.killed,
                kv.new_leader
            ),
        ),
        ("first write after the kill".to_string(), format!("{} after the kill", human(kv.first_write))),
        (
            "restarted node caught up".to_string(),
            format!(
                "{} (applied {} >= leader's commit {})",
                human(kv.catch_up),
                kv.caught_up_applied,
                kv.caught_up_leader_commit
            ),
        ),
        (
            "linearizability check".to_string(),
            format!(
                "{verdict}: {} operations ({} with an unknown outcome), checked in {}",
                kv.operations,
                kv.unknown,
                human(kv.check_time)
            ),
        ),
        (
            "MapReduce word count".to_string(),
            format!(
                "{} for {} map + {} reduce tasks, {killed}, {} re-executed",
                human(mr.job),
                mr.map_tasks,
                mr.reduce_tasks,
                match mr.reexecutions {
                    1 => "1 task".to_string(),
                    n => format!("{n} tasks"),
                }
            ),
        ),
        (
            "output vs keel mr seq".to_string(),
            if mr.identical {
                format!("identical ({} lines, {} words)", mr.lines, mr.words)
            } else {
                "DIFFERENT".to_string()
            },
        ),
    ];
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    let mut out = String::from("\nsummary\n");
    for (name, value) in rows {
        out.push_str(&format!("  {name:<width$}  {value}\n"));
    }
    out
}
