//! Streaming apps (Hadoop Streaming's contract): the map and reduce functions are any programs, run with
//! `sh -c CMD` in the worker's current directory.
//!
//! - The **mapper** reads its split's lines (the input bytes, unchanged) on stdin and writes `key<TAB>value`
//!   lines on stdout. The key is everything before the first tab and the value everything after it; a line
//!   with no tab is a key with an empty value (Hadoop's rule too). The output must be UTF-8.
//! - The **reducer** reads its partition on stdin sorted by key (byte order, like `LC_ALL=C sort`), one
//!   `key<TAB>value` line per value, and whatever lines it writes on stdout are the output file, unchanged
//!   (a missing last newline is added so output files concatenate).
//! - A program that exits non-zero, or is killed by a signal, fails the attempt; the error carries the last
//!   lines of its stderr. A program that makes no progress (no byte in or out of its pipes, stderr
//!   included) for the attempt's timeout is hung: it is killed (SIGKILL to its whole process group, so
//!   `sh -c` pipelines and background children go too) and the attempt fails. A slow program that works is
//!   left running, like any app: the coordinator hands the task out again at the timeout and accepts
//!   whichever attempt succeeds first (Hadoop's `mapreduce.task.timeout` is progress-based too).
//! - Counters: a stderr line `reporter:counter:GROUP,NAME,AMOUNT` (Hadoop's syntax) adds AMOUNT to the
//!   counter `GROUP.NAME`; such lines are not part of the stderr tail.
//! - The environment carries, for mappers, `KEEL_MR_INPUT` (the input file's name as given to the
//!   coordinator; Hadoop's `mapreduce_map_input_file`) and, for reducers, `KEEL_MR_PARTITION` (r of
//!   `mr-out-<r>`).
//!
//! stdin is written by one thread and stdout read by another (and stderr by a third), so a program that
//! writes before it has read all its input cannot deadlock against full pipe buffers.
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::process::{ChildStderr, Command, Stdio};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::counters::Counters;
use crate::records::MAX_RECORD_BYTES;

/// Longest `--mapper` / `--reducer` command: it travels in the job description to every worker (one frame
/// of at most 1 MiB), and a real command line is far shorter; beyond this it is a mistake (a file's
/// contents pasted in).
pub const COMMAND_BYTES_MAX: usize = 16 * 1024;
/// A program that keeps making progress is still cut off after this many times the task's timeout: the task
/// table fails the job at a task's sixth timeout anyway (63 times `--task-timeout` in all), so a program
/// running longer has nobody waiting for it (an endless loop that prints).
const RUNTIME_TIMEOUTS_MAX: u32 = 64;
/// Stderr lines kept for the error of a failed attempt: enough for a Python traceback's last frames.
const STDERR_TAIL_LINES: usize = 12;
/// Longest stderr line kept (longer ones are cut): a program can write megabytes without a newline, and the
/// error must fit in a report frame along with everything else.
const STDERR_LINE_BYTES_MAX: usize = 400;
/// Pipe buffers on our side: large enough that the per-line overhead is a copy, not a system call.
const PIPE_BUFFER_BYTES: usize = 256 * 1024;
/// Longest line a program may write on stdout: a mapper's line becomes one intermediate record, and records
/// are at most [`MAX_RECORD_BYTES`]; a longer "line" is almost surely binary output.
const OUTPUT_LINE_BYTES_MAX: usize = MAX_RECORD_BYTES;
/// The prefix of a counter line on stderr (Hadoop Streaming's).
const COUNTER_LINE_PREFIX: &str = "reporter:counter:";

/// The two programs of a streaming job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamingSpec {
    pub mapper: String,
    pub reducer: String,
}

impl StreamingSpec {
    /// Refuses empty or absurdly long commands.
    pub fn check(&self) -> anyhow::Result<()> {
        for (flag, command) in [("--mapper", &self.mapper), ("--reducer", &self.reducer)] {
            anyhow::ensure!(!command.trim().is_empty(), "{flag} is empty");
            anyhow::ensure!(
                command.len() <= COMMAND_BYTES_MAX,
                "{flag} is {} bytes long, more than {COMMAND_BYTES_MAX}; put the program in a script file",
                command.len()
            );
        }
        Ok(())
    }
}

/// One program run: which role it plays (for messages), its command and environment, its time limit.
pub struct Program<'a> {
    pub role: &'static str,
    pub command: &'a str,
    pub env: Vec<(&'static str, String)>,
    /// Killed when still running after this long; `None`: no limit (`keel mr seq`).
    pub timeout: Option<Duration>,
}

/// Runs `program` as a mapper over `input`, calling `emit(key, value)` for each line it writes. Returns the
/// counters it reported on stderr.
pub fn run_mapper(program: &Program<'_>, input: &[u8], emit: &mut dyn FnMut(&str, &str)) -> Result<Counters, String> {
    run_program(
        program,
        |stdin| stdin.write_all(input),
        |line| {
            let line = line.strip_suffix(b"\n").unwrap_or(line);
            let line = std::str::from_utf8(line).map_err(|e| {
                format!("{} wrote a line that is not UTF-8 ({e}): {:?}", program.role, String::from_utf8_lossy(line))
            })?;
            let (key, value) = line.split_once('\t').unwrap_or((line, ""));
            emit(key, value);
            Ok(())
        },
    )
}

/// Runs `program` as a reducer: `next()` gives the sorted `(key, value)` records to write to its stdin (an
/// error stops the run), and `output` receives every line it writes, newline included. Returns the counters
/// it reported on stderr.
pub fn run_reducer<E: std::fmt::Display>(
    program: &Program<'_>,
    mut next: impl FnMut() -> Result<Option<(String, String)>, E> + Send,
    output: &mut dyn FnMut(&[u8]) -> Result<(), String>,
) -> Result<Counters, String> {
    run_program(
        program,
        move |stdin| {
            while let Some((key, value)) = next().map_err(|e| io::Error::other(format!("reading reduce input: {e}")))? {
                stdin.write_all(key.as_bytes())?;
                stdin.write_all(b"\t")?;
                stdin.write_all(value.as_bytes())?;
                stdin.write_all(b"\n")?;
            }
            Ok(())
        },
        |line| {
            if line.ends_with(b"\n") {
                output(line)
            } else {
                let mut whole = line.to_vec();
                whole.push(b'\n');
                output(&whole)
            }
        },
    )
}

/// Spawns the program in its own process group, feeds its stdin from `feed` (on a thread), hands each
/// stdout line to `consume` (on this thread), keeps the tail of its stderr (on a third), and kills the whole
/// group at the timeout. Every process of the group is gone and the child reaped when this returns.
fn run_program(
    program: &Program<'_>,
    feed: impl FnOnce(&mut dyn Write) -> io::Result<()> + Send,
    mut consume: impl FnMut(&[u8]) -> Result<(), String>,
) -> Result<Counters, String> {
    use std::os::unix::process::CommandExt;
    let role = program.role;
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg(guarded(program.command))
        .envs(program.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group: one kill reaches `sh`, the pipeline it starts and anything those leave running.
        .process_group(0);
    die_with_this_thread(&mut command);
    let mut child = command.spawn().map_err(|e| format!("starting {role} `sh -c {:?}`: {e}", program.command))?;
    let pid = child.id();
    let (Some(stdin), Some(stdout), Some(stderr)) = (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        kill_group(pid);
        let _ = child.wait();
        return Err(format!("{role}: the program's pipes were not set up"));
    };
    // Bytes moved through the program's pipes: the watchdog's sign of life.
    let progress = AtomicU64::new(0);
    let killed = AtomicU8::new(NOT_KILLED);
    let (finished, finished_rx) = mpsc::channel::<()>();
    let (consumed, fed, tail) = thread::scope(|scope| {
        let (progress, killed) = (&progress, &killed);
        scope.spawn(move || {
            if let Some(verdict) = watch(program.timeout, progress, &finished_rx) {
                killed.store(verdict, Ordering::SeqCst);
                kill_group(pid);
            }
        });
        let tail = scope.spawn(move || stderr_tail(stderr, progress));
        let fed = scope.spawn(move || {
            let mut writer = BufWriter::with_capacity(PIPE_BUFFER_BYTES, Counting { inner: stdin, progress });
            let result = feed(&mut writer).and_then(|()| writer.flush());
            // Dropping the writer closes stdin: the program sees the end of its input.
            drop(writer);
            result
        });
        let mut reader = BufReader::with_capacity(PIPE_BUFFER_BYTES, stdout);
        let mut line = Vec::new();
        let consumed = loop {
            line.clear();
            match reader.by_ref().take(OUTPUT_LINE_BYTES_MAX as u64 + 1).read_until(b'\n', &mut line) {
                Ok(0) => break Ok(()),
                Ok(n) if n > OUTPUT_LINE_BYTES_MAX => {
                    break Err(format!("{role} wrote a line longer than {OUTPUT_LINE_BYTES_MAX} bytes"));
                }
                Ok(n) => {
                    progress.fetch_add(n as u64, Ordering::Relaxed);
                    if let Err(e) = consume(&line) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(format!("reading {role} output: {e}")),
            }
        };
        if consumed.is_err() {
            // Nothing more will be read: stop the program rather than let it block on a full pipe.
            kill_group(pid);
        }
        drop(reader);
        let fed = fed.join().unwrap_or_else(|_| Err(io::Error::other("the input writer panicked")));
        // The program is done with its pipes; wait for it to exit, then sweep its group (background
        // children it left) before reaping it, so the group id cannot have been reused.
        wait_exited_unreaped(pid);
        kill_group(pid);
        let _ = finished.send(());
        let tail = tail.join().unwrap_or_else(|_| (VecDeque::new(), Err("the stderr reader panicked".to_string())));
        (consumed, fed, tail)
    });
    let status = child.wait().map_err(|e| format!("waiting for {role}: {e}"))?;
    let (lines, counters) = tail;
    let stderr_text = if lines.is_empty() {
        String::new()
    } else {
        format!("; last lines of its stderr:\n{}", lines.into_iter().collect::<Vec<_>>().join("\n"))
    };
    let limit = program.timeout.unwrap_or_default();
    match killed.load(Ordering::SeqCst) {
        KILLED_STALLED => {
            return Err(format!(
                "{role} `{}` made no progress (read no input, wrote no output) for {limit:?}, the task's timeout, \
                 and was killed{stderr_text}",
                program.command
            ));
        }
        KILLED_TOO_LONG => {
            return Err(format!(
                "{role} `{}` ran for {:?} ({RUNTIME_TIMEOUTS_MAX} times the task's timeout) and was \
                 killed{stderr_text}",
                program.command,
                limit.saturating_mul(RUNTIME_TIMEOUTS_MAX)
            ));
        }
        _ => {}
    }
    // Before the exit status: a bad output line is why the program was killed.
    consumed.map_err(|e| format!("{e}{stderr_text}"))?;
    if !status.success() {
        return Err(format!("{role} `{}` failed ({status}){stderr_text}", program.command));
    }
    match fed {
        Ok(()) => {}
        // The program exited successfully without reading all its input (`head -1`): its choice.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        Err(e) => return Err(format!("feeding {role}: {e}")),
    }
    let counters = counters?;
    Ok(counters)
}

/// The user's command inside a guard: `sh` runs it in the background and waits, with a trap that kills the
/// whole process group on SIGTERM, which the kernel sends `sh` when the worker dies (see
/// [`die_with_this_thread`]). Without it a worker killed with SIGKILL (by `mr run` at the end of a job, or
/// by Ctrl-C) would leave a program that ignores its pipes (`sleep`, a hung script) running: the kernel
/// signals only `sh`, and `sh` does not pass signals on. stdin is handed to the command through fd 3
/// because `sh` gives a background command `/dev/null` instead; the exit status is the command's.
fn guarded(command: &str) -> String {
    format!("trap 'kill -KILL 0' TERM\nexec 3<&0\n{{ {command}\n}} <&3 3<&- &\nwait $!")
}

/// Asks the kernel to send SIGTERM to the child when this thread dies (Linux `PR_SET_PDEATHSIG`), so the
/// guard in [`guarded`] can take the program's group down with the worker.
#[cfg(target_os = "linux")]
fn die_with_this_thread(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: the closure runs in the child between fork and exec and calls only async-signal-safe
    // functions (prctl, getppid); it allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) != 0 {
                return Err(io::Error::last_os_error());
            }
            // The worker died before the request took effect: nobody would ever signal this child.
            if u32::try_from(libc::getppid()).ok() != Some(parent) {
                return Err(io::Error::other("the worker exited while starting the program"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_this_thread(_command: &mut Command) {}

const NOT_KILLED: u8 = 0;
const KILLED_STALLED: u8 = 1;
const KILLED_TOO_LONG: u8 = 2;

/// Waits until `finished` says the program is done, and decides to kill it (returns why) when no byte moved
/// through its pipes for `limit`, or it ran [`RUNTIME_TIMEOUTS_MAX`] times `limit`.
fn watch(limit: Option<Duration>, progress: &AtomicU64, finished: &mpsc::Receiver<()>) -> Option<u8> {
    let Some(limit) = limit else {
        let _ = finished.recv();
        return None;
    };
    let started = Instant::now();
    let check_every = (limit / 4).clamp(Duration::from_millis(10), Duration::from_secs(1));
    let mut seen = progress.load(Ordering::Relaxed);
    let mut quiet_since = Instant::now();
    loop {
        match finished.recv_timeout(check_every) {
            Err(RecvTimeoutError::Timeout) => {}
            Ok(()) | Err(RecvTimeoutError::Disconnected) => return None,
        }
        let now = progress.load(Ordering::Relaxed);
        if now != seen {
            seen = now;
            quiet_since = Instant::now();
        }
        if quiet_since.elapsed() >= limit {
            return Some(KILLED_STALLED);
        }
        if started.elapsed() >= limit.saturating_mul(RUNTIME_TIMEOUTS_MAX) {
            return Some(KILLED_TOO_LONG);
        }
    }
}

/// Counts the bytes the program took from its stdin.
struct Counting<'a, W> {
    inner: W,
    progress: &'a AtomicU64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.progress.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads stderr to its end; returns its last [`STDERR_TAIL_LINES`] lines (each cut at
/// [`STDERR_LINE_BYTES_MAX`]) and the counters it reported, or the error of a malformed counter line.
fn stderr_tail(stderr: ChildStderr, progress: &AtomicU64) -> (VecDeque<String>, Result<Counters, String>) {
    let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES + 1);
    let mut counters = Ok(Counters::new());
    let mut current: Vec<u8> = Vec::new();
    let mut chunk = [0u8; 8192];
    let mut stderr = stderr;
    let mut end_line = |line: &mut Vec<u8>, tail: &mut VecDeque<String>| {
        let text = String::from_utf8_lossy(line).into_owned();
        line.clear();
        if let Some(spec) = text.strip_prefix(COUNTER_LINE_PREFIX) {
            if let Ok(c) = &mut counters
                && let Err(e) = add_counter_line(c, spec)
            {
                counters = Err(e);
            }
            return;
        }
        tail.push_back(text);
        if tail.len() > STDERR_TAIL_LINES {
            tail.pop_front();
        }
    };
    loop {
        let n = match stderr.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        // A program that reports on stderr while it computes is alive.
        progress.fetch_add(n as u64, Ordering::Relaxed);
        for &byte in &chunk[..n] {
            if byte == b'\n' {
                end_line(&mut current, &mut tail);
            } else if current.len() < STDERR_LINE_BYTES_MAX {
                current.push(byte);
            }
        }
    }
    if !current.is_empty() {
        end_line(&mut current, &mut tail);
    }
    (tail, counters)
}

/// `GROUP,NAME,AMOUNT` (after the prefix) into `counters` as `GROUP.NAME`.
fn add_counter_line(counters: &mut Counters, spec: &str) -> Result<(), String> {
    let bad =
        || format!("bad counter line {COUNTER_LINE_PREFIX}{spec:?}: expected {COUNTER_LINE_PREFIX}GROUP,NAME,AMOUNT");
    let mut parts = spec.trim_end_matches('\r').splitn(3, ',');
    let (Some(group), Some(name), Some(amount)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad());
    };
    let amount: u64 = amount.trim().parse().map_err(|_| bad())?;
    counters.try_add(&format!("{group}.{name}"), amount).map_err(|e| e.to_string())
}

/// SIGKILL to every process of the group `pid` leads. A group that is gone already is fine.
fn kill_group(pid: u32) {
    if let Ok(pid) = libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is involved.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
}

/// Blocks until the child `pid` has exited, leaving it a zombie (not reaped), so that its pid, and so its
/// process group id, cannot be reused while [`kill_group`] sweeps the group.
fn wait_exited_unreaped(pid: u32) {
    let pid: libc::id_t = pid;
    loop {
        // SAFETY: waitid(2) writes into the zeroed siginfo we own; WNOWAIT leaves the child to be reaped by
        // `Child::wait`.
        let result = unsafe {
            let mut info: libc::siginfo_t = std::mem::zeroed();
            libc::waitid(libc::P_PID, pid, &mut info, libc::WEXITED | libc::WNOWAIT)
        };
        if result == 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn program(command: &str, timeout_ms: u64) -> Program<'_> {
        Program { role: "mapper", command, env: vec![], timeout: Some(Duration::from_millis(timeout_ms)) }
    }

    fn map(command: &str, input: &str) -> Result<(Vec<(String, String)>, Counters), String> {
        let mut pairs = Vec::new();
        let counters =
            run_mapper(&program(command, 10_000), input.as_bytes(), &mut |k, v| pairs.push((k.into(), v.into())))?;
        Ok((pairs, counters))
    }

    #[test]
    fn a_mapper_s_lines_split_at_the_first_tab_and_a_line_without_one_is_a_key() {
        let (pairs, _) = map("cat", "a\t1\nb\tx\ty\nlonely\n\tv\nlast-no-newline").unwrap();
        let expected = [("a", "1"), ("b", "x\ty"), ("lonely", ""), ("", "v"), ("last-no-newline", "")];
        assert_eq!(pairs, expected.map(|(k, v)| (k.to_string(), v.to_string())));
    }

    #[test]
    fn a_failing_program_s_error_carries_its_exit_status_and_stderr_tail() {
        let script = "for i in $(seq 1 30); do echo line-$i >&2; done; exit 3";
        let error = map(script, "").unwrap_err();
        assert!(error.contains("exit status: 3"), "{error}");
        assert!(error.contains("line-30") && error.contains("line-19"), "{error}");
        assert!(!error.contains("line-18\n"), "only the last {STDERR_TAIL_LINES} lines: {error}");
    }

    #[test]
    fn a_hung_program_and_its_children_are_killed_at_the_timeout() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        // A background child that would outlive `sh`, and a foreground that never ends.
        let command = format!("sleep 600 & echo $! > {}; sleep 600", pid_file.display());
        let started = std::time::Instant::now();
        let error = run_mapper(&program(&command, 300), b"", &mut |_, _| {}).unwrap_err();
        assert!(error.contains("made no progress") && error.contains("300ms"), "{error}");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        // Killed: gone, or a zombie waiting for init (its parent `sh` was killed too) to reap it.
        // SIGKILL is delivered asynchronously, so give it a moment.
        let dead = || {
            let stat = std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
            matches!(stat.rsplit(')').next().and_then(|rest| rest.split_whitespace().next()), None | Some("Z"))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while !dead() && std::time::Instant::now() < deadline {
            thread::sleep(Duration::from_millis(10));
        }
        assert!(dead(), "background child {} still running", pid.trim());
    }

    #[test]
    fn a_slow_program_that_keeps_writing_outlives_the_timeout() {
        // 12 lines, 50 ms apart: 600 ms in all against a 200 ms timeout, never 200 ms without output.
        let command = "for i in 1 2 3 4 5 6 7 8 9 10 11 12; do echo $i; sleep 0.05; done";
        let mut lines = 0;
        run_mapper(&program(command, 200), b"", &mut |_, _| lines += 1).unwrap();
        assert_eq!(lines, 12);
    }

    #[test]
    fn a_program_that_writes_before_reading_everything_does_not_deadlock() {
        // 4 MiB in, 4 MiB out, interleaved: far beyond any pipe buffer.
        let input: String = (0..200_000).map(|i| format!("k{i}\t{i:012}\n")).collect();
        let (pairs, _) = map("cat", &input).unwrap();
        assert_eq!(pairs.len(), 200_000);
    }

    #[test]
    fn a_program_that_stops_reading_early_and_succeeds_is_fine() {
        let input: String = (0..200_000).map(|i| format!("{i}\n")).collect();
        let (pairs, _) = map("head -n 1", &input).unwrap();
        assert_eq!(pairs, [("0".to_string(), String::new())]);
    }

    #[test]
    fn non_utf8_mapper_output_is_an_error() {
        let error = map("printf 'a\\377\\tb\\n'", "").unwrap_err();
        assert!(error.contains("not UTF-8"), "{error}");
    }

    #[test]
    fn counter_lines_on_stderr_become_counters_and_bad_ones_an_error() {
        let (_, counters) =
            map("echo reporter:counter:wc,lines,2 >&2; echo reporter:counter:wc,lines,3 >&2; echo hi >&2", "").unwrap();
        assert_eq!(counters.to_string(), "wc.lines 5");
        let error = map("echo reporter:counter:wc,lines,many >&2", "").unwrap_err();
        assert!(error.contains("bad counter line"), "{error}");
    }

    #[test]
    fn a_reducer_reads_tab_separated_records_and_its_lines_are_the_output() {
        let mut records =
            vec![("a".to_string(), "1".to_string()), ("a".into(), "2".into()), ("b".into(), "x".into())].into_iter();
        let mut out = Vec::new();
        let reducer = Program { role: "reducer", command: "cat; printf tail", env: vec![], timeout: None };
        run_reducer::<String>(&reducer, || Ok(records.next()), &mut |line| {
            out.extend_from_slice(line);
            Ok(())
        })
        .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "a\t1\na\t2\nb\tx\ntail\n");
    }

    #[test]
    fn the_guard_keeps_stdin_exit_status_and_multi_line_commands() {
        let (pairs, _) = map("read a; echo \"got $a\" # a comment\nexit 0", "first\nsecond\n").unwrap();
        assert_eq!(pairs, [("got first".to_string(), String::new())]);
        let error = map("false; exit 7", "").unwrap_err();
        assert!(error.contains("exit status: 7"), "{error}");
    }

    #[test]
    fn a_missing_program_is_a_failure_naming_it() {
        let error = map("no-such-program-keel", "").unwrap_err();
        assert!(error.contains("no-such-program-keel") && error.contains("exit status: 127"), "{error}");
    }
}
