//! The status page in a real browser: a job runs with `--http`, one worker is killed and the others are
//! paused (SIGSTOP) mid-job so its numbers hold still, headless Chromium loads the page, and every figure it
//! shows must equal `/status.json` taken at the same state; then a screenshot, and the job finishes.
//!
//! Chromium is Debian's `chromium`. When it is missing the test installs it (`apt-get`, as root); if that
//! fails it prints a loud SKIPPED to stderr, or fails when `KEEL_REQUIRE_BROWSER=1` (set by `.ci/run`, so CI
//! never passes without the browser). `KEEL_STATUS_SCREENSHOT=path.png` keeps the screenshot.
mod mr_support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use keel_mr::units::format_bytes;
use mr_support::{Scratch, read, send_signal, wait_bounded};
use serde_json::Value;

const BROWSER_LIMIT: Duration = Duration::from_secs(90);
const INSTALL_LIMIT: Duration = Duration::from_secs(600);

#[test]
fn the_status_page_in_a_browser_shows_the_same_numbers_as_status_json() {
    let Some(chromium) = chromium() else { return };
    let mut scratch = Scratch::new();
    let books = scratch.books(48_000, 31);
    let reference = scratch.reference("wc", &books);
    // test-slow: every map takes 300 ms, so the job is mid-way for seconds; small splits make ~32 maps.
    let extra = ["--http", "127.0.0.1:0", "--task-timeout", "60s", "--split-size", "12KiB", "--reduces", "4"];
    let coordinator = scratch.coordinator("test-slow", "out", &extra, &books);
    let url = coordinator.stdout.recv_timeout(Duration::from_secs(10)).unwrap_or_default();
    let url = url.strip_prefix("keel mr coordinator status page ").unwrap_or_else(|| panic!("no URL line: {url:?}"));
    assert!(url.starts_with("http://127.0.0.1:") && !url.contains(":0/"), "the bound URL: {url}");
    let address = url.trim_start_matches("http://").trim_end_matches('/').to_string();
    let workers: Vec<usize> = (0..3).map(|_| scratch.worker(&coordinator.address)).collect();

    wait_for(&address, |s| s["tasks_done"].as_u64().unwrap_or(0) >= 6);
    // Killed while running a map (they always are, almost): a lost worker and a re-execution to show.
    let victim = scratch.child(workers[0]);
    let _ = victim.kill();
    let _ = victim.wait();
    wait_for(&address, |s| s["tasks_done"].as_u64().unwrap_or(0) >= 12);
    let paused: Vec<u32> = workers[1..].iter().map(|&w| scratch.child(w).id()).collect();
    for &pid in &paused {
        send_signal(pid, "STOP");
    }
    // Reports already on the wire land; then nothing can change but the clock.
    thread::sleep(Duration::from_millis(500));

    let before = status(&address);
    let profile = tempfile::tempdir().unwrap();
    let dom = run_chromium(&chromium, profile.path(), &["--dump-dom", url]);
    let after = status(&address);
    for field in ["tasks_done", "map_tasks", "reduce_tasks", "input_bytes", "counters", "reexecutions", "phase"] {
        assert_eq!(before[field], after[field], "{field} changed while the browser looked; the test is not frozen");
    }

    // Every figure on the page, against the JSON.
    let s = &before;
    assert_eq!(text(&dom, "job"), s["job"].as_str().unwrap());
    assert_eq!(text(&dom, "app"), "test-slow");
    assert_eq!(text(&dom, "phase"), "map");
    assert_eq!(text(&dom, "tasks-done"), s["tasks_done"].to_string());
    assert_eq!(text(&dom, "tasks-total"), s["tasks_total"].to_string());
    assert!(s["tasks_done"].as_u64().unwrap() >= 12, "{s}");
    for kind in ["map", "reduce"] {
        for (id, field) in [
            ("idle", "idle"),
            ("in-progress", "in_progress"),
            ("committing", "committing"),
            ("done", "done"),
            ("failed", "failed"),
        ] {
            let json = &s[format!("{kind}_tasks")][field];
            assert_eq!(text(&dom, &format!("{kind}-{id}")), json.to_string(), "{kind} {field}");
        }
    }
    for (id, field) in [
        ("bytes-in", "input_bytes"),
        ("bytes-total", "input_bytes_total"),
        ("bytes-intermediate", "intermediate_bytes"),
        ("bytes-out", "output_bytes"),
    ] {
        let value = s[field].as_u64().unwrap();
        assert_eq!(attribute(&dom, id, "data-value"), value.to_string(), "{field}");
        assert_eq!(text(&dom, id), format_bytes(value), "{field} as shown");
    }
    let counters = s["counters"].as_object().expect("counters");
    assert!(counters["words"].as_u64().unwrap() > 0 && counters["lines"].as_u64().unwrap() > 0, "{s}");
    for (name, value) in counters {
        assert_eq!(text(&dom, &format!("counter-{name}")), value.to_string(), "counter {name}");
    }
    let totals = &s["reexecutions"];
    for (id, field) in [
        ("reexecutions", "total"),
        ("timeouts", "timeouts"),
        ("lost-workers", "lost_workers"),
        ("failed-attempts", "failed_attempts"),
    ] {
        assert_eq!(text(&dom, id), totals[field].to_string(), "re-executions: {field}");
    }
    let workers_json = s["workers"].as_array().unwrap();
    let connected = workers_json.iter().filter(|w| w["connected"] == true).count();
    assert_eq!(connected, 2, "two workers paused, one killed: {s}");
    assert_eq!(text(&dom, "workers-connected"), connected.to_string());
    let done_cells: Vec<String> =
        dom.match_indices("class=\"r worker-done\">").map(|(i, m)| cell(&dom[i + m.len()..])).collect();
    let done_json: Vec<String> = workers_json.iter().map(|w| w["tasks_done"].to_string()).collect();
    assert_eq!(done_cells, done_json, "tasks done per worker");
    assert!(dom.contains("<polyline points=\""), "the progress chart");

    // A picture for people; kept where KEEL_STATUS_SCREENSHOT says.
    let picture = std::env::var_os("KEEL_STATUS_SCREENSHOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| scratch.path().join("status.png"));
    let shot = format!("--screenshot={}", picture.display());
    run_chromium(&chromium, profile.path(), &[&shot, "--window-size=1200,900", "--hide-scrollbars", url]);
    let png = std::fs::read(&picture).unwrap_or_default();
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "screenshot {} looks empty", picture.display());

    // Unpaused, the job finishes (the page changed nothing) with the same output as the reference.
    for &pid in &paused {
        send_signal(pid, "CONT");
    }
    let status = scratch.wait(coordinator.index, Duration::from_secs(60));
    assert!(status.success(), "coordinator failed\n{}", scratch.logs());
    for worker in &workers[1..] {
        let _ = wait_bounded(scratch.child(*worker), Duration::from_secs(10));
    }
    assert!(scratch.output("out") == reference, "output differs from keel mr seq");
}

#[test]
fn mr_run_prints_the_bound_url_of_its_status_page_and_refuses_a_bad_address() {
    let mut scratch = Scratch::new();
    let books = scratch.books(5_000, 32);
    let mut args = vec!["mr", "run", "--workers", "1", "--quiet", "--app", "wc", "--output", "out"];
    args.extend(["--http", "127.0.0.1:0"]);
    args.extend(books.iter().map(String::as_str));
    let output = scratch.command("run", &args).stdout(Stdio::piped()).output().expect("running keel");
    assert!(output.status.success(), "keel mr run --http failed");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let url = stdout.lines().find_map(|l| l.strip_prefix("keel mr run status page ")).unwrap_or_else(|| {
        panic!("no status page URL on stdout: {stdout:?}");
    });
    let port: u16 = url
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|_| panic!("not a loopback URL with a port: {url}"));
    assert_ne!(port, 0, "the URL must name the port actually bound");

    let mut args = vec!["mr", "run", "--workers", "1", "--quiet", "--app", "wc", "--output", "out2"];
    args.extend(["--http", "no-such-host.invalid:80"]);
    args.extend(books.iter().map(String::as_str));
    let (status, stderr) = scratch.run(&args, Duration::from_secs(30));
    assert!(!status.success(), "a bad --http address must fail the command");
    assert!(stderr.contains("starting the status page on no-such-host.invalid:80"), "{stderr}");
    assert!(!scratch.path().join("out2").exists(), "nothing left behind: {stderr}");
}

/// `GET /status.json`.
fn status(address: &str) -> Value {
    let mut stream = TcpStream::connect(address).expect("connecting to the status page");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(b"GET /status.json HTTP/1.1\r\nHost: test\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("not HTTP: {answer}"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("status.json: {e}: {body}"))
}

fn wait_for(address: &str, ready: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let s = status(address);
        if ready(&s) {
            return;
        }
        assert!(Instant::now() < deadline, "the job did not get there: {s}");
        thread::sleep(Duration::from_millis(50));
    }
}

/// The text of the element with this id (up to its first child tag).
fn text(dom: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = dom.find(&marker).unwrap_or_else(|| panic!("no #{id} on the page:\n{dom}"));
    let rest = &dom[at..];
    let open_end = rest.find('>').expect("a tag ends") + 1;
    cell(&rest[open_end..])
}

/// Text up to the next tag, entities decoded.
fn cell(from: &str) -> String {
    let end = from.find('<').unwrap_or(from.len());
    from[..end].replace("&nbsp;", " ").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

fn attribute(dom: &str, id: &str, name: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let at = dom.find(&marker).unwrap_or_else(|| panic!("no #{id} on the page"));
    let tag = &dom[at..at + dom[at..].find('>').unwrap_or(0)];
    let key = format!("{name}=\"");
    let start = tag.find(&key).unwrap_or_else(|| panic!("#{id} has no {name}: {tag}")) + key.len();
    tag[start..start + tag[start..].find('"').unwrap_or(0)].to_string()
}

/// Runs headless Chromium with `args` and returns its stdout (bounded in time; a fresh profile).
fn run_chromium(chromium: &Path, profile: &Path, args: &[&str]) -> String {
    let out = profile.with_extension("stdout");
    let err = profile.with_extension("stderr");
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("starting chromium");
    let Some(status) = wait_bounded(&mut child, BROWSER_LIMIT) else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("chromium {args:?} did not finish in {BROWSER_LIMIT:?}; stderr:\n{}", read(&err));
    };
    assert!(status.success(), "chromium {args:?} failed ({status}); stderr:\n{}", read(&err));
    read(&out)
}

/// Debian's Chromium, installed if missing and possible; `None` (after a loud message) when it cannot be.
fn chromium() -> Option<PathBuf> {
    if let Some(found) = find_chromium() {
        return Some(found);
    }
    let root = Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false);
    let mut why = "chromium is not installed and this test is not running as root, so it cannot install it".to_string();
    if root {
        eprintln!("chromium not found; installing it with apt-get (this takes a while once)");
        let install =
            "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium";
        let mut child = Command::new("sh").args(["-c", install]).stdin(Stdio::null()).spawn().expect("starting sh");
        match wait_bounded(&mut child, INSTALL_LIMIT) {
            Some(status) if status.success() => match find_chromium() {
                Some(found) => return Some(found),
                None => why = "apt-get installed chromium, but no chromium binary is on the PATH".into(),
            },
            Some(status) => why = format!("installing chromium with apt-get failed ({status})"),
            None => {
                let _ = child.kill();
                why = format!("installing chromium took longer than {INSTALL_LIMIT:?}");
            }
        }
    }
    if std::env::var_os("KEEL_REQUIRE_BROWSER").is_some_and(|v| v == "1") {
        panic!("KEEL_REQUIRE_BROWSER=1 but {why}");
    }
    eprintln!(
        "\n{bar}\nSKIPPED the_status_page_in_a_browser_shows_the_same_numbers_as_status_json: {why}.\n\
         The status page was NOT tested in a browser. Install Debian's chromium (apt-get install chromium).\n{bar}\n",
        bar = "*".repeat(100)
    );
    None
}

fn find_chromium() -> Option<PathBuf> {
    ["chromium", "chromium-browser"].iter().find_map(|name| {
        let output = Command::new("sh").args(["-c", &format!("command -v {name}")]).output().ok()?;
        let path = String::from_utf8_lossy(&output.stdout).trim().to_string();
        (output.status.success() && !path.is_empty()).then(|| PathBuf::from(path))
    })
}
