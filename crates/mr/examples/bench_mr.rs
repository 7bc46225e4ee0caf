//! Benchmark: `keel mr run --workers 2 --app wc` against `keel mr seq` and a plain single-process hash-map
//! word count over the same files, all in one run, with ratios against that baseline (machines are shared
//! and noisy, so only same-run ratios mean much).
//!
//! ```text
//! cargo build --release -p keel && cargo run --release -p keel-mr --example bench_mr
//! cargo run --release -p keel-mr --example bench_mr -- --total-mb 200 --files 8 --workers 2 --dir /tmp/keel-mr-bench
//! ```
//! The corpus (deterministic, Zipf-distributed words) is generated once into `--dir` and reused.
//!
//! Each job also runs with workers that share nothing with the coordinator: `keel mr coordinator` plus
//! `--workers` `keel mr worker` processes without `--shared-fs`, each in a directory of its own, so inputs,
//! map outputs and reduce outputs all cross TCP (loopback here) exactly as between machines. Its cost
//! against `keel mr run` (shared paths) is the network path's.
//!
//! `--streaming` adds streaming word counts (`--mapper` / `--reducer`, Python 3 programs) against the
//! built-in `wc` on the same corpus: one mapper line per word (the textbook program), and one that counts
//! its split in a dictionary first (in-mapper combining, what a careful user writes).
//! ```text
//! cargo run --release -p keel-mr --example bench_mr -- --streaming
//! ```
//!
//! `--small-files` runs only the per-task-overhead case instead: 2,000 input files of 1 KB with 50 reduces
//! (`keel mr run --workers 2 --reduces 50 --app wc`), checked against `keel mr seq`, target at most 2 s.
//! ```text
//! cargo run --release -p keel-mr --example bench_mr -- --small-files
//! ```
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use keel_mr::apps::words;
use keel_mr::corpus::{CorpusSpec, write_corpus};
use keel_mr::memory::{own_peak_rss_bytes, peak_rss_bytes_of};
use keel_mr::units::format_bytes;

const SEED: u64 = 0x6b65_656c;
/// Distinct words in the corpus vocabulary; with a Zipf law, a few dozen make up half the text.
const VOCABULARY: usize = 100_000;
/// The many-small-files job: enough tasks that per-task costs (fsyncs, files, round trips) dominate.
const SMALL_FILES_COUNT: usize = 2_000;
const SMALL_FILE_BYTES: u64 = 1_000;
const SMALL_FILES_REDUCES: u32 = 50;
/// The issue's target for that job on the 2-core development machine.
const SMALL_FILES_TARGET: Duration = Duration::from_secs(2);
/// How often a child's peak memory is sampled.
const SAMPLE_EVERY: Duration = Duration::from_millis(20);

struct Options {
    keel: PathBuf,
    dir: PathBuf,
    total_mb: u64,
    files: usize,
    workers: usize,
    streaming: bool,
    small_files: bool,
}

fn parse_options() -> anyhow::Result<Options> {
    let exe = std::env::current_exe()?;
    // target/<profile>/examples/bench_mr -> target/<profile>/keel
    let default_keel = exe.parent().and_then(Path::parent).map(|p| p.join("keel")).unwrap_or_default();
    let mut options = Options {
        keel: default_keel,
        dir: std::env::temp_dir().join("keel-mr-bench"),
        total_mb: 200,
        files: 8,
        workers: 2,
        streaming: false,
        small_files: false,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--keel" => options.keel = PathBuf::from(value()?),
            "--dir" => options.dir = PathBuf::from(value()?),
            "--total-mb" => options.total_mb = value()?.parse()?,
            "--files" => options.files = value()?.parse()?,
            "--workers" => options.workers = value()?.parse()?,
            "--streaming" => options.streaming = true,
            "--small-files" => options.small_files = true,
            other => bail!(
                "unknown option {other}; options: --keel PATH --dir DIR --total-mb N --files N --workers N \
                 --streaming --small-files"
            ),
        }
    }
    ensure!(
        options.keel.exists(),
        "{} not found; run `cargo build --release -p keel` or pass --keel",
        options.keel.display()
    );
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    if options.small_files {
        return small_files(&options);
    }
    let inputs = corpus(&options)?;
    let input_bytes: u64 = inputs.iter().map(|p| fs::metadata(p).map(|m| m.len()).unwrap_or(0)).sum();
    let runs = options.dir.join("runs");
    let _ = fs::remove_dir_all(&runs);
    fs::create_dir_all(&runs)?;
    println!(
        "corpus: {} files, {} ({} words vocabulary, Zipf), machine: {} cores",
        inputs.len(),
        format_bytes(input_bytes),
        VOCABULARY,
        thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    let baseline_out = runs.join("baseline.txt");
    let started = Instant::now();
    let cpu_before = own_cpu();
    baseline_word_count(&inputs, &baseline_out)?;
    let baseline = started.elapsed();
    let baseline_cpu = own_cpu() - cpu_before;
    let baseline_rss = own_peak_rss_bytes();

    let out_dir = runs.join("mr-run");
    let stats_file = runs.join("mr-run-stats.txt");
    let workers = options.workers.to_string();
    let mut args: Vec<String> = ["mr", "run", "--workers", &workers, "--quiet", "--app", "wc", "--output"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push(out_dir.display().to_string());
    args.push("--stats-file".into());
    args.push(stats_file.display().to_string());
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let cpu_before = children_cpu();
    let (mr_time, coordinator_rss) = timed(&options.keel, &args)?;
    let mr_cpu = children_cpu() - cpu_before;
    let stats = fs::read_to_string(&stats_file)?;
    let worker_rss: u64 = stats
        .lines()
        .find_map(|l| l.strip_prefix("worker_peak_rss_bytes "))
        .and_then(|v| v.trim().parse().ok())
        .context("no worker peak in the stats file")?;

    let nothing_out = runs.join("mr-shared-nothing");
    let cpu_before = children_cpu();
    let nothing = shared_nothing(options.workers, &options.keel, &runs, &nothing_out, &[], &inputs)?;
    let nothing_cpu = children_cpu() - cpu_before;

    let seq_out = runs.join("seq.txt");
    let mut args: Vec<String> = ["mr", "seq", "--app", "wc", "--output"].iter().map(|s| s.to_string()).collect();
    args.push(seq_out.display().to_string());
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let (seq_time, seq_rss) = timed(&options.keel, &args)?;

    // All three must agree, or the timings mean nothing.
    let reference = sorted_lines(&fs::read_to_string(&baseline_out)?);
    ensure!(sorted_lines(&fs::read_to_string(&seq_out)?) == reference, "keel mr seq output differs from the baseline");
    let mut mr_text = String::new();
    for entry in fs::read_dir(&out_dir)? {
        mr_text.push_str(&fs::read_to_string(entry?.path())?);
    }
    ensure!(sorted_lines(&mr_text) == reference, "keel mr run output differs from the baseline");
    ensure!(
        sorted_lines(&outputs_of(&nothing_out)?) == reference,
        "the shared-nothing output differs from the baseline"
    );

    let ratio = |d: Duration| d.as_secs_f64() / baseline.as_secs_f64();
    println!("outputs identical: yes ({} distinct words)", reference.len());
    println!("{:<34} {:>9} {:>9} {:>14}", "", "wall s", "x base", "peak RSS");
    println!(
        "{:<34} {:>9.2} {:>9.2} {:>14}",
        "baseline (1 process, HashMap)",
        baseline.as_secs_f64(),
        1.0,
        format_bytes(baseline_rss)
    );
    println!(
        "{:<34} {:>9.2} {:>9.2} {:>14}",
        format!("keel mr run --workers {} --app wc", options.workers),
        mr_time.as_secs_f64(),
        ratio(mr_time),
        format!("{} worker", format_bytes(worker_rss))
    );
    println!("{:<34} {:>9} {:>9} {:>14}", "  (coordinator process)", "", "", format_bytes(coordinator_rss));
    println!(
        "{:<34} {:>9.2} {:>9.2} {:>14}",
        format!("sharing nothing, {} workers", options.workers),
        nothing.wall.as_secs_f64(),
        ratio(nothing.wall),
        format!("{} worker", format_bytes(nothing.worker_rss_bytes))
    );
    println!(
        "{:<34} {:>9} {:>9} {:>14}",
        "  (coordinator process)",
        "",
        "",
        format_bytes(nothing.coordinator_rss_bytes)
    );
    println!(
        "CPU s (user + system, all processes): baseline {:.2}, mr run {:.2}, sharing nothing {:.2}",
        baseline_cpu.as_secs_f64(),
        mr_cpu.as_secs_f64(),
        nothing_cpu.as_secs_f64()
    );
    println!(
        "network path: {:+.2} s wall ({:+.0}%) and {:+.2} CPU s ({:.2} vs {:.2}; {:+.0}%) against mr run, for {} of \
         input and {} of map output over TCP",
        nothing.wall.as_secs_f64() - mr_time.as_secs_f64(),
        (nothing.wall.as_secs_f64() / mr_time.as_secs_f64() - 1.0) * 100.0,
        nothing_cpu.as_secs_f64() - mr_cpu.as_secs_f64(),
        nothing_cpu.as_secs_f64(),
        mr_cpu.as_secs_f64(),
        (nothing_cpu.as_secs_f64() / mr_cpu.as_secs_f64() - 1.0) * 100.0,
        format_bytes(stat_of(&nothing.stats, "input_bytes")),
        format_bytes(stat_of(&nothing.stats, "intermediate_bytes"))
    );
    println!(
        "{:<34} {:>9.2} {:>9.2} {:>14}",
        "keel mr seq --app wc",
        seq_time.as_secs_f64(),
        ratio(seq_time),
        format_bytes(seq_rss)
    );
    println!("{}", stats.lines().map(|l| format!("  {l}")).collect::<Vec<_>>().join("\n"));
    let target = ratio(mr_time) <= 2.5 && worker_rss < 512 * 1024 * 1024;
    println!("target (mr run <= 2.5x baseline, worker peak < 512 MiB): {}", if target { "met" } else { "MISSED" });
    if options.streaming {
        streaming(&options, &inputs, &runs, &reference, mr_time)?;
    }
    Ok(())
}

/// Word count in Python, one `word<TAB>1` line per word; words split as `wc` splits them.
const PY_MAPPER: &str = r#"import re, sys
out = sys.stdout
for line in sys.stdin.buffer:
    for word in re.findall(r"[^\W\d_]+", line.decode("utf-8")):
        out.write(word + "\t1\n")
"#;
/// The same, counting its split in a dictionary first (one line per distinct word of the split).
const PY_COMBINING_MAPPER: &str = r#"import collections, re, sys
counts = collections.Counter()
for line in sys.stdin.buffer:
    counts.update(re.findall(r"[^\W\d_]+", line.decode("utf-8")))
out = sys.stdout
for word, n in counts.items():
    out.write("%s\t%d\n" % (word, n))
"#;
/// Sums each run of equal keys (the input is sorted by key), printing `word count` like `wc`.
const PY_REDUCER: &str = r#"import sys
key, total = None, 0
for line in sys.stdin:
    k, v = line.rstrip("\n").split("\t", 1)
    if k != key:
        if key is not None:
            print(key, total)
        key, total = k, 0
    total += int(v)
if key is not None:
    print(key, total)
"#;

/// Times streaming word counts against the built-in `wc` run (`builtin`), checking their outputs.
fn streaming(
    options: &Options,
    inputs: &[PathBuf],
    runs: &Path,
    reference: &[String],
    builtin: Duration,
) -> anyhow::Result<()> {
    let scripts = [("map.py", PY_MAPPER), ("map_combining.py", PY_COMBINING_MAPPER), ("reduce.py", PY_REDUCER)];
    for (name, text) in scripts {
        fs::write(runs.join(name), text)?;
    }
    let python = |name: &str| format!("python3 {}", runs.join(name).display());
    println!("streaming (Python 3 programs) vs keel mr run --app wc ({:.2} s):", builtin.as_secs_f64());
    for (label, mapper) in
        [("streaming: line per word", "map.py"), ("streaming: in-mapper combining", "map_combining.py")]
    {
        let out_dir = runs.join(format!("streaming-{mapper}"));
        let workers = options.workers.to_string();
        // A Python map of a 25 MB split takes longer than the default 10 s timeout; a user would raise it
        // rather than have the task handed out twice (both copies would compete for the same 2 cores).
        let mut args: Vec<String> =
            ["mr", "run", "--workers", &workers, "--quiet", "--task-timeout", "10min", "--output"]
                .iter()
                .map(|s| s.to_string())
                .collect();
        args.push(out_dir.display().to_string());
        args.extend(["--mapper".to_string(), python(mapper), "--reducer".to_string(), python("reduce.py")]);
        args.extend(inputs.iter().map(|p| p.display().to_string()));
        let (time, _) = timed(&options.keel, &args)?;
        let mut text = String::new();
        for entry in fs::read_dir(&out_dir)? {
            text.push_str(&fs::read_to_string(entry?.path())?);
        }
        ensure!(sorted_lines(&text) == reference, "{label}: output differs from the baseline");
        println!(
            "{:<34} {:>9.2} s {:>6.2}x the built-in wc (output identical)",
            label,
            time.as_secs_f64(),
            time.as_secs_f64() / builtin.as_secs_f64()
        );
    }
    Ok(())
}

/// The per-task overhead: [`SMALL_FILES_COUNT`] files of [`SMALL_FILE_BYTES`], [`SMALL_FILES_REDUCES`]
/// reduces, `mr run` against `mr seq` (outputs checked identical).
fn small_files(options: &Options) -> anyhow::Result<()> {
    let dir = options.dir.join(format!("corpus-small-{SMALL_FILES_COUNT}x{SMALL_FILE_BYTES}b"));
    let names: Vec<String> = (0..SMALL_FILES_COUNT).map(|i| format!("small-{i}.txt")).collect();
    let marker = dir.join("COMPLETE");
    if !marker.exists() {
        fs::create_dir_all(&dir)?;
        let spec = CorpusSpec { bytes_per_file: SMALL_FILE_BYTES, vocabulary: VOCABULARY, seed: SEED };
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        write_corpus(&dir, &refs, &spec)?;
        fs::write(&marker, b"")?;
    }
    let inputs: Vec<PathBuf> = names.iter().map(|n| dir.join(n)).collect();
    let runs = options.dir.join("runs-small");
    let _ = fs::remove_dir_all(&runs);
    fs::create_dir_all(&runs)?;
    let out_dir = runs.join("mr-run");
    let workers = options.workers.to_string();
    let reduces = SMALL_FILES_REDUCES.to_string();
    let mut args: Vec<String> = ["mr", "run", "--workers", &workers, "--reduces", &reduces, "--quiet", "--app", "wc"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.push("--output".into());
    args.push(out_dir.display().to_string());
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let cpu_before = children_cpu();
    let (mr_time, _) = timed(&options.keel, &args)?;
    let mr_cpu = children_cpu() - cpu_before;
    let seq_out = runs.join("seq.txt");
    let mut args: Vec<String> = ["mr", "seq", "--app", "wc", "--output"].iter().map(|s| s.to_string()).collect();
    args.push(seq_out.display().to_string());
    args.extend(inputs.iter().map(|p| p.display().to_string()));
    let (seq_time, _) = timed(&options.keel, &args)?;
    let nothing_out = runs.join("mr-shared-nothing");
    let extra = ["--reduces".to_string(), reduces.clone()];
    let cpu_before = children_cpu();
    let nothing = shared_nothing(options.workers, &options.keel, &runs, &nothing_out, &extra, &inputs)?;
    let nothing_cpu = children_cpu() - cpu_before;
    let reference = sorted_lines(&fs::read_to_string(&seq_out)?);
    ensure!(sorted_lines(&outputs_of(&out_dir)?) == reference, "keel mr run output differs from keel mr seq");
    ensure!(
        sorted_lines(&outputs_of(&nothing_out)?) == reference,
        "the shared-nothing output differs from keel mr seq"
    );
    println!(
        "small files: {SMALL_FILES_COUNT} files of {} , {SMALL_FILES_REDUCES} reduces, {} workers; outputs identical",
        format_bytes(SMALL_FILE_BYTES),
        options.workers
    );
    println!(
        "  keel mr run: {:.2} s ({:.2} ms per map task), {:.2} CPU s",
        mr_time.as_secs_f64(),
        mr_time.as_secs_f64() * 1e3 / SMALL_FILES_COUNT as f64,
        mr_cpu.as_secs_f64()
    );
    println!(
        "  sharing nothing ({} workers, coordinator + worker processes): {:.2} s ({:.2} ms per map task), {:.2} CPU s",
        options.workers,
        nothing.wall.as_secs_f64(),
        nothing.wall.as_secs_f64() * 1e3 / SMALL_FILES_COUNT as f64,
        nothing_cpu.as_secs_f64()
    );
    println!("  keel mr seq: {:.2} s", seq_time.as_secs_f64());
    let met = mr_time <= SMALL_FILES_TARGET;
    println!("target (mr run <= {:.0} s): {}", SMALL_FILES_TARGET.as_secs_f64(), if met { "met" } else { "MISSED" });
    Ok(())
}

/// What a shared-nothing run measured.
struct SharedNothing {
    wall: Duration,
    coordinator_rss_bytes: u64,
    worker_rss_bytes: u64,
    stats: String,
}

/// Runs the wc job as `keel mr coordinator` plus `workers` `keel mr worker` processes that share nothing with
/// it (no `--shared-fs`), each started in a directory of its own under `runs` (their scratch there too).
/// Timed from the coordinator's start to its exit, as `mr run` is.
fn shared_nothing(
    workers: usize,
    keel: &Path,
    runs: &Path,
    out_dir: &Path,
    extra: &[String],
    inputs: &[PathBuf],
) -> anyhow::Result<SharedNothing> {
    let stats_file = runs.join("shared-nothing-stats.txt");
    let started = Instant::now();
    let mut coordinator = Command::new(keel)
        .args(["mr", "coordinator", "--listen", "127.0.0.1:0", "--app", "wc", "--output"])
        .arg(out_dir)
        .arg("--stats-file")
        .arg(&stats_file)
        .args(extra)
        .args(inputs)
        .env("KEEL_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .spawn()?;
    let stdout = coordinator.stdout.take().context("the coordinator's stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line.split_whitespace().skip_while(|w| *w != "on").nth(1).context("no address announced")?;
    let mut children: Vec<Child> = Vec::new();
    for w in 0..workers {
        let dir = runs.join(format!("worker-{w}"));
        fs::create_dir_all(&dir)?;
        children.push(
            Command::new(keel)
                .args(["mr", "worker", "--coordinator", address, "--scratch-dir"])
                .arg(&dir)
                .current_dir(&dir)
                .env("KEEL_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()?,
        );
    }
    let (mut coordinator_rss, mut worker_rss) = (0, 0);
    loop {
        if let Some(status) = coordinator.try_wait()? {
            ensure!(status.success(), "the shared-nothing coordinator failed: {status}");
            break;
        }
        coordinator_rss = coordinator_rss.max(peak_rss_bytes_of(coordinator.id()).unwrap_or(0));
        for child in &children {
            worker_rss = worker_rss.max(peak_rss_bytes_of(child.id()).unwrap_or(0));
        }
        thread::sleep(SAMPLE_EVERY);
    }
    let wall = started.elapsed();
    for mut child in children {
        let _ = child.wait();
    }
    let stats = fs::read_to_string(&stats_file)?;
    Ok(SharedNothing { wall, coordinator_rss_bytes: coordinator_rss, worker_rss_bytes: worker_rss, stats })
}

fn outputs_of(dir: &Path) -> anyhow::Result<String> {
    let mut text = String::new();
    for entry in fs::read_dir(dir)? {
        text.push_str(&fs::read_to_string(entry?.path())?);
    }
    Ok(text)
}

fn stat_of(stats: &str, key: &str) -> u64 {
    stats.lines().find_map(|l| l.strip_prefix(key)?.strip_prefix(' ')?.trim().parse().ok()).unwrap_or(0)
}

/// Generates the corpus unless a previous run left the same one.
fn corpus(options: &Options) -> anyhow::Result<Vec<PathBuf>> {
    let dir = options.dir.join(format!("corpus-{}mb-{}files", options.total_mb, options.files));
    let names: Vec<String> = (0..options.files).map(|i| format!("zipf-{i}.txt")).collect();
    let marker = dir.join("COMPLETE");
    if !marker.exists() {
        fs::create_dir_all(&dir)?;
        let started = Instant::now();
        let spec = CorpusSpec {
            bytes_per_file: options.total_mb * 1_000_000 / options.files as u64,
            vocabulary: VOCABULARY,
            seed: SEED,
        };
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        write_corpus(&dir, &refs, &spec)?;
        fs::write(&marker, b"")?;
        println!("generated corpus in {} ({:.1} s)", dir.display(), started.elapsed().as_secs_f64());
    }
    Ok(names.iter().map(|n| dir.join(n)).collect())
}

/// The baseline: what one would write without any framework. Same word definition, same output format.
fn baseline_word_count(inputs: &[PathBuf], output: &Path) -> anyhow::Result<()> {
    let mut counts: HashMap<String, u64> = HashMap::new();
    for input in inputs {
        let text = fs::read_to_string(input).with_context(|| format!("reading {}", input.display()))?;
        for word in words(&text) {
            match counts.get_mut(word) {
                Some(n) => *n += 1,
                None => {
                    counts.insert(word.to_string(), 1);
                }
            }
        }
    }
    let mut sorted: Vec<(String, u64)> = counts.into_iter().collect();
    sorted.sort_unstable();
    let mut out = BufWriter::new(File::create(output)?);
    for (word, n) in sorted {
        writeln!(out, "{word} {n}")?;
    }
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(())
}

/// Runs `keel args`, returning its wall time and its own peak RSS (sampled).
fn timed(keel: &Path, args: &[String]) -> anyhow::Result<(Duration, u64)> {
    let started = Instant::now();
    let mut child = Command::new(keel).args(args).stdin(Stdio::null()).stdout(Stdio::null()).spawn()?;
    let mut peak = 0;
    loop {
        if let Some(status) = child.try_wait()? {
            ensure!(status.success(), "keel {} failed: {status}", args.join(" "));
            break;
        }
        if let Some(rss) = peak_rss_bytes_of(child.id()) {
            peak = peak.max(rss);
        }
        thread::sleep(SAMPLE_EVERY);
    }
    Ok((started.elapsed(), peak))
}

/// CPU time (user + system) of every child process this program has waited for, and their waited-for
/// descendants: the difference around a run is what that run's processes burnt, a figure a busy machine
/// disturbs far less than wall time.
fn children_cpu() -> Duration {
    cpu_of(libc::RUSAGE_CHILDREN)
}

/// CPU time of this process so far (the baseline runs in it).
fn own_cpu() -> Duration {
    cpu_of(libc::RUSAGE_SELF)
}

fn cpu_of(who: libc::c_int) -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(who, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

fn sorted_lines(text: &str) -> Vec<String> {
    let mut lines: Vec<String> = text.lines().filter(|l| !l.is_empty()).map(str::to_string).collect();
    lines.sort_unstable();
    lines
}
