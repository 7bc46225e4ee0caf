//! Step 6 of the demo: a MapReduce word count over the embedded sample texts with a coordinator and three
//! workers as processes (`keel mr coordinator`, `keel mr worker`: the documented CLI, nothing internal), one
//! worker killed with SIGKILL while it runs a task, and the output compared with `keel mr seq` line for line.
//!
//! The victim is chosen by watching the coordinator's `/status.json` (its `--http` status page): the first of
//! our workers seen running a task once some tasks are done, so the kill lands mid-job and mid-task.
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::narrator::{Narrator, human};
use super::processes::{Processes, tail_of, wait_for_line};
use super::texts::{TEXTS, total_bytes};

const WORKERS: usize = 3;
const REDUCES: u32 = 3;
/// Each text is written this many times over into its input file: 130 KB of text is a job of a few dozen
/// milliseconds, over before anyone could kill a worker in it; 2 MB is a job of a few hundred milliseconds.
const INPUT_REPEAT: usize = 16;
/// Splits of this size make about twenty map tasks of the 2 MB, each spending about ten milliseconds counting
/// (longer than the coordinator's commit of it), so a worker is usually in the middle of one when it is killed.
const SPLIT_SIZE: &str = "128KiB";
/// A killed worker's task is handed out again as soon as its connection drops; the timeout only bounds the
/// case where that is not noticed.
const TASK_TIMEOUT: &str = "3s";
/// `keel mr seq` over 130 KB takes milliseconds; the coordinator's job a second or two.
const SEQ_TIMEOUT: Duration = Duration::from_secs(60);
const COORDINATOR_READY_TIMEOUT: Duration = Duration::from_secs(30);
const JOB_TIMEOUT: Duration = Duration::from_secs(120);
/// Workers exit when the coordinator tells them the job is over.
const WORKER_EXIT_TIMEOUT: Duration = Duration::from_secs(15);
/// How often the status page is read while looking for a worker to kill.
const STATUS_POLL: Duration = Duration::from_millis(2);
const STATUS_REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// The status page's reply is a few KB; anything near this is not the page we asked for.
const STATUS_BYTES_MAX: usize = 4 << 20;

/// What step 6 measured.
#[derive(Clone, Debug)]
pub struct MrFigures {
    pub job: Duration,
    pub map_tasks: u64,
    pub reduce_tasks: u64,
    /// What the killed worker was doing, as the coordinator showed it (`None`: the job ended first).
    pub killed_while: Option<String>,
    pub reexecutions: u64,
    pub identical: bool,
    pub lines: usize,
    pub words: u64,
}

pub async fn run(exe: &Path, dir: &Path, processes: &mut Processes, narrator: &Narrator) -> Result<MrFigures> {
    let mr_dir = dir.join("mr");
    let input_dir = mr_dir.join("input");
    std::fs::create_dir_all(&input_dir).with_context(|| format!("cannot create {}", input_dir.display()))?;
    let mut inputs: Vec<String> = Vec::new();
    for (name, text) in TEXTS {
        let path = input_dir.join(name);
        std::fs::write(&path, text.repeat(INPUT_REPEAT)).with_context(|| format!("cannot write {}", path.display()))?;
        inputs.push(path.display().to_string());
    }
    narrator.say(format!(
        "step 6: MapReduce word count of {} sample texts embedded in the binary ({} KB), each {INPUT_REPEAT} times \
         over ({:.1} MB of input)",
        TEXTS.len(),
        total_bytes() / 1000,
        (total_bytes() * INPUT_REPEAT) as f64 / 1e6
    ));

    // The reference.
    let reference = mr_dir.join("reference.txt");
    let seq_started = Instant::now();
    let mut args = strings(&["mr", "seq", "--app", "wc", "--output"]);
    args.push(reference.display().to_string());
    args.extend(inputs.iter().cloned());
    let log = mr_dir.join("seq.log");
    processes.spawn("keel mr seq", exe, &args, &log)?;
    let status = processes.wait("keel mr seq", SEQ_TIMEOUT).await?;
    if !status.success() {
        bail!("keel mr seq failed ({status}){}", tail_of(&log, "keel mr seq"));
    }
    let reference_text =
        std::fs::read_to_string(&reference).with_context(|| format!("cannot read {}", reference.display()))?;
    narrator.say(format!(
        "the sequential reference (keel mr seq) counted {} distinct words in {}",
        reference_text.lines().count(),
        human(seq_started.elapsed())
    ));

    // The job.
    let out_dir = mr_dir.join("out");
    let stats_file = mr_dir.join("stats.txt");
    let mut args = strings(&["mr", "coordinator", "--listen", "127.0.0.1:0", "--http", "127.0.0.1:0", "--app", "wc"]);
    args.extend(strings(&["--reduces", &REDUCES.to_string(), "--split-size", SPLIT_SIZE]));
    args.extend(strings(&["--task-timeout", TASK_TIMEOUT, "--output"]));
    args.push(out_dir.display().to_string());
    args.push("--stats-file".into());
    args.push(stats_file.display().to_string());
    args.extend(inputs.iter().cloned());
    let coordinator_log = mr_dir.join("coordinator.log");
    let job_started = Instant::now();
    let mut coordinator = processes.spawn("mr coordinator", exe, &args, &coordinator_log)?;
    let listening =
        wait_for_line(&mut coordinator.stdout_lines, "listening on ", COORDINATOR_READY_TIMEOUT, "keel mr coordinator")
            .await
            .map_err(|e| anyhow!("{e:#}{}", tail_of(&coordinator_log, "the coordinator")))?;
    let address = word_after(&listening, "listening on ")
        .ok_or_else(|| anyhow!("cannot find the coordinator's address in {listening:?}"))?;
    let status_line =
        wait_for_line(&mut coordinator.stdout_lines, "status page ", COORDINATOR_READY_TIMEOUT, "keel mr coordinator")
            .await
            .map_err(|e| anyhow!("{e:#}{}", tail_of(&coordinator_log, "the coordinator")))?;
    let status_address = word_after(&status_line, "status page http://")
        .and_then(|url| url.trim_end_matches('/').parse::<SocketAddr>().ok())
        .ok_or_else(|| anyhow!("cannot find the status page's address in {status_line:?}"))?;

    let mut workers: Vec<(String, u32)> = Vec::new();
    for n in 1..=WORKERS {
        let name = format!("mr worker {n}");
        let args = strings(&["mr", "worker", "--coordinator", &address]);
        let spawned = processes.spawn(&name, exe, &args, &mr_dir.join(format!("worker-{n}.log")))?;
        workers.push((name, spawned.pid));
    }
    narrator.say(format!(
        "coordinator at {address} (pid {}), {WORKERS} workers (pids {}); {SPLIT_SIZE} splits, {REDUCES} reduces",
        coordinator.pid,
        workers.iter().map(|(_, pid)| pid.to_string()).collect::<Vec<_>>().join(", ")
    ));

    // The kill.
    let killed_while = match find_victim(status_address, &workers, processes).await {
        Some(victim) => {
            narrator.say(format!(
                "{}/{} tasks done; killing {} (pid {}) with SIGKILL: {}",
                victim.tasks_done, victim.tasks_total, victim.name, victim.pid, victim.current
            ));
            processes.kill9(&victim.name)?;
            workers.retain(|(name, _)| *name != victim.name);
            Some(victim.current)
        }
        None => {
            narrator.say("the job finished before a worker could be seen running a task: no worker was killed");
            None
        }
    };

    let status = processes
        .wait("mr coordinator", JOB_TIMEOUT)
        .await
        .map_err(|e| anyhow!("{e:#}{}", tail_of(&coordinator_log, "the coordinator")))?;
    let job = job_started.elapsed();
    if !status.success() {
        bail!("the MapReduce job failed ({status}){}", tail_of(&coordinator_log, "the coordinator"));
    }
    for (name, _) in &workers {
        processes.wait(name, WORKER_EXIT_TIMEOUT).await.context("after the job")?;
    }
    let stats = std::fs::read_to_string(&stats_file)
        .with_context(|| format!("cannot read the coordinator's stats file {}", stats_file.display()))?;
    let stat = |key: &str| -> u64 {
        stats
            .lines()
            .find_map(|line| line.strip_prefix(key).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or(0)
    };
    let (map_tasks, reduce_tasks, reexecutions, lost, lost_outputs) =
        (stat("map_tasks"), stat("reduce_tasks"), stat("reexecutions"), stat("abandoned"), stat("lost_map_outputs"));
    let why = match (reexecutions, &killed_while) {
        // The status page showed a task whose success report was already on its way: the coordinator commits
        // a finished attempt even if its worker is gone.
        (0, Some(_)) => ": the killed worker's task had already reported success".to_string(),
        (0, None) => String::new(),
        // The workers share nothing with the coordinator: finished maps' outputs lived on the killed worker's disk,
        // so they run again too (the paper's section 3.3).
        (_, _) if lost_outputs > 0 => format!(
            " ({lost} running on the killed worker, and {lost_outputs} finished map outputs that lived on its disk)"
        ),
        (_, _) => format!(" ({lost} lost with the killed worker, handed to another)"),
    };
    narrator.say(format!(
        "the job finished in {}: {map_tasks} map and {reduce_tasks} reduce tasks, {reexecutions} re-executed{why}; \
         the other workers exited",
        human(job)
    ));

    // The comparison.
    let job_lines = sorted_lines(&read_outputs(&out_dir)?);
    let reference_lines = sorted_lines(&reference_text);
    let identical = job_lines == reference_lines;
    let words: u64 = reference_lines.iter().filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok()).sum();
    if identical {
        narrator.say(format!(
            "sorted, the job's output and keel mr seq's are identical, byte for byte ({} lines, {words} words)",
            job_lines.len()
        ));
    } else {
        let first_difference = job_lines
            .iter()
            .zip(&reference_lines)
            .find(|(a, b)| a != b)
            .map(|(a, b)| format!("first difference: {a:?} against {b:?}"))
            .unwrap_or_else(|| format!("{} lines against {}", job_lines.len(), reference_lines.len()));
        narrator.say(format!("the job's output DIFFERS from keel mr seq's: {first_difference}"));
    }
    Ok(MrFigures { job, map_tasks, reduce_tasks, killed_while, reexecutions, identical, lines: job_lines.len(), words })
}

/// What a victim is doing when no task of it is in progress.
const BETWEEN_TASKS: &str = "it is between two tasks";

struct Victim {
    name: String,
    pid: u32,
    /// `the coordinator shows it running map task 3 attempt 7`, or [`BETWEEN_TASKS`].
    current: String,
    tasks_done: u64,
    tasks_total: u64,
}

/// Watches `/status.json` until one of `workers` runs a task after at least one task is done (or, failing
/// that, until half the tasks are done: then any of them, between tasks); `None` if the job ends (or the page
/// stops answering) first.
async fn find_victim(status: SocketAddr, workers: &[(String, u32)], processes: &mut Processes) -> Option<Victim> {
    let until = Instant::now() + JOB_TIMEOUT;
    while Instant::now() < until && processes.is_running("mr coordinator") {
        if let Ok(page) = http_get_json(status, "/status.json").await {
            let phase = page["phase"].as_str().unwrap_or("");
            if phase != "map" && phase != "reduce" {
                if phase == "succeeded" || phase == "failed" || phase == "publishing" {
                    return None;
                }
            } else if page["tasks_done"].as_u64().unwrap_or(0) >= 1 {
                let tasks_done = page["tasks_done"].as_u64().unwrap_or(0);
                let tasks_total = page["tasks_total"].as_u64().unwrap_or(0);
                let ours = page["workers"].as_array().into_iter().flatten().filter_map(|worker| {
                    let pid = u32::try_from(worker["pid"].as_u64()?).ok()?;
                    let (name, _) = workers.iter().find(|(_, p)| *p == pid)?;
                    let current = worker["current"].as_str().map(str::to_string);
                    Some((name.clone(), pid, current))
                });
                let mut between_tasks = None;
                for (name, pid, current) in ours {
                    match current {
                        Some(task) => {
                            let current = format!("the coordinator shows it running {task}");
                            return Some(Victim { name, pid, current, tasks_done, tasks_total });
                        }
                        None => between_tasks = between_tasks.or(Some((name, pid))),
                    }
                }
                if let Some((name, pid)) = between_tasks
                    && tasks_done * 2 >= tasks_total
                {
                    return Some(Victim { name, pid, current: BETWEEN_TASKS.to_string(), tasks_done, tasks_total });
                }
            }
        }
        tokio::time::sleep(STATUS_POLL).await;
    }
    None
}

/// One GET on a fresh connection (HTTP/1.1, `Connection: close`), the body parsed as JSON.
async fn http_get_json(address: SocketAddr, path: &str) -> Result<serde_json::Value> {
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(address).await?;
        let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        (&mut stream).take(STATUS_BYTES_MAX as u64).read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(STATUS_REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| anyhow!("the status page at {address} did not answer"))??;
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("the status page's answer has no end of headers"))?;
    if !response.starts_with(b"HTTP/1.1 200") && !response.starts_with(b"HTTP/1.0 200") {
        bail!("the status page answered {:?}", String::from_utf8_lossy(&response[..split.min(40)]));
    }
    Ok(serde_json::from_slice(&response[split + 4..])?)
}

/// Every `mr-out-*` file of the job's output directory, concatenated.
fn read_outputs(out_dir: &Path) -> Result<String> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(out_dir)
        .with_context(|| format!("cannot list the job's output directory {}", out_dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("mr-out-")))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("the job wrote no mr-out-* file in {}", out_dir.display());
    }
    let mut all = String::new();
    for file in files {
        all.push_str(&std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?);
    }
    Ok(all)
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

/// The whitespace-delimited word after `marker` in `line`.
fn word_after(line: &str, marker: &str) -> Option<String> {
    let rest = &line[line.find(marker)? + marker.len()..];
    rest.split_whitespace().next().map(str::to_string)
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
