//! The demo's child processes: every `keel kv serve`, `keel mr coordinator` and `keel mr worker` it starts is
//! in this table, and none outlives it. Dropping the table (at the end, on an error, on a panic, after Ctrl-C)
//! kills what still runs with SIGKILL and reaps it.
//!
//! Two more guards cover what a destructor cannot: each child gets its own process group, so Ctrl-C in the
//! terminal reaches only the demo (which then stops the children itself, in order, and says so), and on Linux
//! the kernel sends each child SIGKILL if the demo dies without cleaning up (`PR_SET_PDEATHSIG`, e.g. when the
//! demo itself is killed with SIGKILL). The death signal follows the *thread* that spawned the child, so the
//! demo spawns only from the thread that runs its main future (`block_on`), which lives as long as the process.
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::mpsc;

/// How often a bounded wait looks at a child again.
const WAIT_POLL_INTERVAL: Duration = Duration::from_millis(10);

/// A running child and where its stderr goes.
struct Managed {
    name: String,
    child: Child,
    log: PathBuf,
}

/// What `spawn` hands back: the pid and the child's stdout, line by line (the channel closes when it exits).
pub struct Spawned {
    pub pid: u32,
    pub stdout_lines: mpsc::UnboundedReceiver<String>,
}

#[derive(Default)]
pub struct Processes {
    running: Vec<Managed>,
    /// Children seen to exit on their own (reaped), and how; a later `wait` for them returns this.
    exited: Vec<(String, ExitStatus)>,
}

impl Processes {
    /// Starts `exe args` as `name` (unique among running children). stdout comes back as lines; stderr is
    /// appended to `log`, which error messages quote.
    pub fn spawn(&mut self, name: &str, exe: &Path, args: &[String], log: &Path) -> Result<Spawned> {
        if self.running.iter().any(|m| m.name == name) {
            bail!("{name} is already running");
        }
        let stderr: File = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot create the log file {} for {name}", log.display()))?;
        let mut command = Command::new(exe);
        command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr);
        // SAFETY: the closure runs in the child between fork and exec and calls only async-signal-safe
        // functions (setpgid, prctl), touching no memory of the parent.
        unsafe {
            command.pre_exec(|| {
                // Its own process group: the terminal's Ctrl-C goes to the demo alone, which stops children in order.
                if libc::setpgid(0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                #[cfg(target_os = "linux")]
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong, 0, 0, 0) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().with_context(|| format!("cannot start {name} ({})", exe.display()))?;
        self.exited.retain(|(exited, _)| exited != name);
        let pid = child.id();
        let (lines_tx, stdout_lines) = mpsc::unbounded_channel();
        if let Some(stdout) = child.stdout.take() {
            // Ends when the child's stdout closes (it exited or was killed).
            std::thread::Builder::new()
                .name(format!("demo-stdout-{pid}"))
                .spawn(move || {
                    for line in BufReader::new(stdout).lines() {
                        let Ok(line) = line else { break };
                        if lines_tx.send(line).is_err() {
                            // Nobody reads any more; keep draining so the child never blocks on a full pipe.
                            continue;
                        }
                    }
                })
                .context("cannot start a thread to read a child's output")?;
        }
        self.running.push(Managed { name: name.to_string(), child, log: log.to_path_buf() });
        Ok(Spawned { pid, stdout_lines })
    }

    pub fn is_running(&mut self, name: &str) -> bool {
        self.exit_status(name).is_none() && self.running.iter().any(|m| m.name == name)
    }

    /// The exit status of `name` if it has exited on its own (it is then reaped and leaves the table); `None`
    /// if it runs, or was never started, or was killed or stopped through this table.
    pub fn exit_status(&mut self, name: &str) -> Option<ExitStatus> {
        if let Some((_, status)) = self.exited.iter().find(|(exited, _)| exited == name) {
            return Some(*status);
        }
        let slot = self.running.iter().position(|m| m.name == name)?;
        match self.running[slot].child.try_wait() {
            Ok(Some(status)) => {
                self.running.remove(slot);
                self.exited.push((name.to_string(), status));
                Some(status)
            }
            _ => None,
        }
    }

    /// SIGKILL, as `kill -9`: no clean-up of any kind. Returns once the process is reaped.
    pub fn kill9(&mut self, name: &str) -> Result<()> {
        let slot = self.slot(name)?;
        let mut managed = self.running.remove(slot);
        // Child::kill is SIGKILL on Unix.
        managed.child.kill().with_context(|| format!("cannot kill {name}"))?;
        managed.child.wait().with_context(|| format!("cannot reap {name}"))?;
        Ok(())
    }

    /// SIGTERM (a clean stop), then waits up to `limit`; a process still running then is killed.
    pub async fn terminate(&mut self, name: &str, limit: Duration) -> Result<ExitStatus> {
        if let Some(status) = self.exit_status(name) {
            return Ok(status); // it had already exited: its status says how
        }
        let slot = self.slot(name)?;
        let pid = self.running[slot].child.id();
        // SAFETY: kill(2) on the pid of our own child, which has not been reaped (it is still in the table).
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        match self.wait(name, limit).await {
            Ok(status) => Ok(status),
            Err(error) => {
                let _ = self.kill9(name);
                Err(error)
            }
        }
    }

    /// Waits (bounded) for `name` to exit on its own, and reaps it.
    pub async fn wait(&mut self, name: &str, limit: Duration) -> Result<ExitStatus> {
        let until = Instant::now() + limit;
        if self.exit_status(name).is_none() {
            self.slot(name)?;
        }
        loop {
            if let Some(status) = self.exit_status(name) {
                return Ok(status);
            }
            if Instant::now() >= until {
                bail!("{name} did not exit within {} s{}", limit.as_secs(), self.log_tail(name));
            }
            tokio::time::sleep(WAIT_POLL_INTERVAL).await;
        }
    }

    /// The last lines of `name`'s stderr, for an error message (empty if there are none).
    pub fn log_tail(&self, name: &str) -> String {
        self.running.iter().find(|m| m.name == name).map(|m| tail_of(&m.log, name)).unwrap_or_default()
    }

    /// SIGKILL to everything still running, then reaps it all. Returns how many were still running.
    pub fn kill_all(&mut self) -> usize {
        let count = self.running.len();
        for managed in &mut self.running {
            let _ = managed.child.kill();
        }
        for mut managed in self.running.drain(..) {
            let _ = managed.child.wait();
        }
        count
    }

    fn slot(&self, name: &str) -> Result<usize> {
        self.running.iter().position(|m| m.name == name).with_context(|| format!("{name} is not running"))
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.kill_all();
    }
}

/// The last lines of a log file, formatted to follow an error message.
pub fn tail_of(log: &Path, name: &str) -> String {
    const TAIL_LINES: usize = 12;
    let Ok(text) = std::fs::read_to_string(log) else { return String::new() };
    let lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return String::new();
    }
    let tail = &lines[lines.len().saturating_sub(TAIL_LINES)..];
    format!("\n  last lines of {name}'s log:\n    {}", tail.join("\n    "))
}

/// Waits (bounded) for a line of a child's stdout that contains `marker`; returns that line.
pub async fn wait_for_line(
    lines: &mut mpsc::UnboundedReceiver<String>,
    marker: &str,
    limit: Duration,
    what: &str,
) -> Result<String> {
    let waited = tokio::time::timeout(limit, async {
        while let Some(line) = lines.recv().await {
            if line.contains(marker) {
                return Some(line);
            }
        }
        None
    })
    .await;
    match waited {
        Ok(Some(line)) => Ok(line),
        Ok(None) => bail!("{what} exited before printing {marker:?}"),
        Err(_) => bail!("{what} did not print {marker:?} within {} s", limit.as_secs()),
    }
}
