//! The coordinator driven by hand-written workers speaking the wire protocol, to observe what the process
//! tests cannot: the first success wins even when it is late, the loser's files are removed at once, a
//! duplicate report changes nothing (even while its commit is underway), and the output appears only when
//! the job is complete.
use std::fs;
use std::io::{BufReader, BufWriter};
use std::net::TcpStream;
use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use keel_mr::AppRegistry;
use keel_mr::coordinator::{Coordinator, JobConfig};
use keel_mr::input::InputSplit;
use keel_mr::layout::Layout;
use keel_mr::map_file::locate_partition_in;
use keel_mr::maps_file::{MapOutputRange, MapsFile};
use keel_mr::protocol::{
    Assignment, Hello, HelloReply, JobSpec, MapOutputAt, PROTOCOL_MAGIC, PROTOCOL_VERSION, Reply, Report,
    ReportedOutcome, Request,
};
use keel_mr::task_exec::{Finished, run_map, run_reduce};
use keel_mr::task_table::TaskId;
use keel_mr::wire;

struct FakeWorker {
    reader: BufReader<TcpStream>,
    writer: BufWriter<TcpStream>,
    job: JobSpec,
    /// This worker's maps file, made at its first map (as a real worker does).
    maps: Option<MapsFile>,
}

impl FakeWorker {
    fn join(address: &str) -> FakeWorker {
        let stream = TcpStream::connect(address).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = BufWriter::new(stream);
        let hello = Hello { magic: PROTOCOL_MAGIC, protocol_version: PROTOCOL_VERSION, job: None, pid: 0 };
        wire::send(&mut writer, &hello).unwrap();
        match wire::receive(&mut reader).unwrap() {
            HelloReply::Welcome { job, .. } => FakeWorker { reader, writer, job, maps: None },
            HelloReply::Rejected { reason } => panic!("refused: {reason}"),
        }
    }

    fn call(&mut self, request: &Request) -> Reply {
        wire::send(&mut self.writer, request).unwrap();
        wire::receive(&mut self.reader).unwrap()
    }

    /// Asks until a task comes (the coordinator answers `Wait` while none is ready).
    fn task(&mut self) -> Assignment {
        for _ in 0..50 {
            match self.call(&Request::GetTask) {
                Reply::Run(assignment) => return assignment,
                Reply::Wait => continue,
                other => panic!("expected a task, got {other:?}"),
            }
        }
        panic!("no task handed out");
    }

    fn layout(&self) -> Layout {
        Layout { work_dir: PathBuf::from(&self.job.work_dir), staging_dir: PathBuf::from(&self.job.staging_dir) }
    }

    /// Runs the assignment for real (files and all) and reports it.
    fn run_and_report(&mut self, assignment: &Assignment) -> Reply {
        let stats = self.run(assignment);
        self.report(assignment, ReportedOutcome::Succeeded(stats))
    }

    /// Where the coordinator says every map's output is.
    fn locations(&mut self) -> Vec<MapOutputAt> {
        match self.call(&Request::MapOutputs { first_map: 0 }) {
            Reply::MapOutputs { outputs } => outputs,
            other => panic!("expected map output locations, got {other:?}"),
        }
    }

    /// Runs the assignment for real (files and all) without reporting it.
    fn run(&mut self, assignment: &Assignment) -> keel_mr::protocol::TaskStats {
        let apps = AppRegistry::builtin();
        let app = apps.lookup("wc").unwrap();
        let layout = self.layout();
        match (assignment.task, &assignment.input) {
            (TaskId::Map(_), Some(split)) => {
                let split = InputSplit {
                    path: PathBuf::from(&split.path),
                    name: split.name.clone(),
                    offset: split.offset,
                    len: split.len,
                };
                let maps = self.maps.get_or_insert_with(|| MapsFile::create(&layout, assignment.attempt.0).unwrap());
                run_map(app.as_ref(), &self.job, &layout, maps, assignment.attempt, &split).unwrap()
            }
            (TaskId::Reduce(r), _) => {
                let outputs = self.locations();
                match run_reduce(app.as_ref(), &self.job, &layout, assignment.attempt, r, &outputs).unwrap() {
                    Finished::Succeeded(stats) => stats,
                    lost => panic!("reduce {r} lost its input: {lost:?}"),
                }
            }
            other => panic!("unexpected assignment {other:?}"),
        }
    }

    fn report(&mut self, assignment: &Assignment, outcome: ReportedOutcome) -> Reply {
        self.call(&Request::Report(Report { task: assignment.task, attempt: assignment.attempt, outcome }))
    }
}

/// A `wc` job over one small input file, served by a coordinator on a loopback port.
struct Job {
    dir: tempfile::TempDir,
    output: PathBuf,
    address: String,
    serving: thread::JoinHandle<anyhow::Result<keel_mr::coordinator::JobSummary>>,
    handle: keel_mr::coordinator::ProgressHandle,
}

fn start_job(text: &str, reduce_tasks: u32, task_timeout: Duration) -> Job {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("book.txt");
    fs::write(&input, text).unwrap();
    let output = dir.path().join("out");
    let config = JobConfig {
        app: "wc".into(),
        inputs: vec![input],
        reduce_tasks,
        output_dir: output.clone(),
        task_timeout,
        work_dir: None,
        split_size_bytes: 1 << 20,
        memory_budget_bytes: 1 << 20,
        streaming: None,
    };
    let coordinator = Coordinator::prepare(&config, "127.0.0.1:0", &AppRegistry::builtin()).unwrap();
    let address = coordinator.local_addr().unwrap().to_string();
    let handle = coordinator.progress_handle();
    let serving = thread::spawn(move || coordinator.run());
    Job { dir, output, address, serving, handle }
}

#[test]
fn a_late_success_counts_the_loser_s_files_are_removed_and_duplicates_change_nothing() {
    // The timeout is long enough that the fast worker always gets its task before the slow one reports.
    let Job { dir: _dir, output, address, serving, .. } =
        start_job("the cat and the hat\nthe end\n", 2, Duration::from_millis(1500));

    let mut slow = FakeWorker::join(&address);
    let mut fast = FakeWorker::join(&address);
    let layout = slow.layout();
    let late = slow.task();
    assert_eq!(late.task, TaskId::Map(0));
    // The slow worker sits on the task past the timeout; the fast one gets it.
    let reassigned = fast.task();
    assert_eq!(reassigned.task, TaskId::Map(0));
    assert_ne!(reassigned.attempt, late.attempt);

    // The slow worker finishes first after all: its attempt was issued for this task and the task is not
    // done, so its success counts (the paper: the first attempt to finish wins).
    let winner = slow.run(&late);
    assert_eq!(slow.report(&late, ReportedOutcome::Succeeded(winner.clone())), Reply::Ack);
    let committed = committed_location(&mut slow, 0);
    assert_eq!((committed.attempt, committed.output), (late.attempt, winner.map_output), "map 0 committed");
    // The fast one finishes second: it will never be committed, so its output is discarded at once.
    let loser = fast.run(&reassigned);
    assert_eq!(fast.report(&reassigned, ReportedOutcome::Succeeded(loser.clone())), Reply::Ack);
    assert!(!readable(&layout, loser.map_output.unwrap(), 2), "the losing attempt's output must be discarded");
    assert!(readable(&layout, winner.map_output.unwrap(), 2));
    // Reporting the committed attempt again changes nothing, even with counters in the report.
    let mut inflated = winner.clone();
    inflated.counters.add("words", 1000);
    assert_eq!(slow.report(&late, ReportedOutcome::Succeeded(inflated)), Reply::Ack);
    assert!(readable(&layout, winner.map_output.unwrap(), 2), "a duplicate report must not disturb committed output");
    assert_eq!(committed_location(&mut slow, 0), committed);

    let first = fast.task();
    let second = slow.task();
    assert!(matches!(first.task, TaskId::Reduce(_)) && matches!(second.task, TaskId::Reduce(_)));
    assert_eq!(fast.run_and_report(&first), Reply::Ack);
    assert!(!output.join("mr-out-0").exists() && !output.join("mr-out-1").exists(), "output appears only at the end");
    assert_eq!(slow.run_and_report(&second), Reply::Ack);

    assert_eq!(fast.call(&Request::GetTask), Reply::Exit { failure: None });
    assert_eq!(slow.call(&Request::GetTask), Reply::Exit { failure: None });
    let summary = serving.join().unwrap().unwrap();
    assert_eq!(summary.counts.ignored_reports, 2);
    assert_eq!(summary.counts.timeouts, 1);
    assert_eq!(summary.counts.late_successes, 1);
    // Map 0 ran twice and reported three times, yet its counters count once: those of the attempt committed.
    assert_eq!(summary.counters.to_string(), "distinct_words 5, lines 2, words 7");
    let mut lines: Vec<String> = (0..2)
        .flat_map(|r| {
            fs::read_to_string(output.join(format!("mr-out-{r}")))
                .unwrap()
                .lines()
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    assert_eq!(lines, ["and 1", "cat 1", "end 1", "hat 1", "the 3"]);
    let mut left: Vec<String> =
        fs::read_dir(&output).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["mr-out-0", "mr-out-1"], "scratch directories removed");
}

#[test]
fn a_duplicate_report_sent_during_the_commit_leaves_the_commit_whole() {
    // A worker resends its report on a new connection after any disconnect, its own read timeout included,
    // so a duplicate can arrive while the first copy's commit is still underway. A map's commit is now one
    // rename (no fsync, no directory to clear), so the two copies overlap only sometimes; the task table's
    // property test covers every interleaving with `Committing`, and this test checks the coordinator end
    // to end: both copies answered, the commit whole, no second run of the map.
    let reduces = 4;
    let Job { dir: _dir, address, serving, handle, .. } =
        start_job("the cat and the hat\n", reduces, Duration::from_secs(60));
    let mut worker = FakeWorker::join(&address);
    let mut resent = FakeWorker::join(&address);
    let layout = worker.layout();
    let map = worker.task();
    let stats = worker.run(&map);
    let report =
        Request::Report(Report { task: map.task, attempt: map.attempt, outcome: ReportedOutcome::Succeeded(stats) });
    // Both sent before either answer is read.
    wire::send(&mut worker.writer, &report).unwrap();
    wire::send(&mut resent.writer, &report).unwrap();
    assert_eq!(wire::receive::<Reply>(&mut worker.reader).unwrap(), Reply::Ack);
    assert_eq!(wire::receive::<Reply>(&mut resent.reader).unwrap(), Reply::Ack);

    let committed = committed_location(&mut worker, 0).output.expect("a byte range on record");
    assert!(readable(&layout, committed, reduces), "map 0 committed without all its partitions");
    // The commit stood: the job goes on to the reduces instead of running map 0 again.
    let next = worker.task();
    assert!(matches!(next.task, TaskId::Reduce(_)), "expected a reduce, got {next:?}");

    handle.abort("the test is over".into());
    drop((worker, resent));
    let error = serving.join().unwrap().unwrap_err().to_string();
    assert!(error.contains("the test is over"), "{error}");
}

#[test]
fn a_straggler_still_writing_as_the_job_ends_leaves_nothing_behind() {
    let Job { dir: _dir, output, address, serving, .. } =
        start_job("the cat and the hat\n", 1, Duration::from_millis(300));
    let mut straggler = FakeWorker::join(&address);
    let mut worker = FakeWorker::join(&address);
    let layout = worker.layout();
    let late = straggler.task();
    // The straggler was stopped, and resumes writing spill files just as the job ends.
    let attempt_dir = layout.attempt_dir(late.attempt);
    fs::create_dir(&attempt_dir).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    // Several writers, like a worker spilling from several buffers: files keep appearing while the
    // coordinator removes the directory.
    let writers: Vec<_> = (0..STRAGGLER_WRITERS)
        .map(|w| {
            let (stop, attempt_dir) = (std::sync::Arc::clone(&stop), attempt_dir.clone());
            thread::spawn(move || {
                let mut written = 0u32;
                while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                    // Like a real worker, it fails (and stops) once its directory is gone.
                    if fs::write(attempt_dir.join(format!("spill-{w}-{written}")), [0u8; 4096]).is_err() {
                        break;
                    }
                    written += 1;
                }
                written
            })
        })
        .collect();
    let map = worker.task();
    assert_eq!(map.task, TaskId::Map(0), "the map is handed out again after the straggler's timeout");
    assert_eq!(worker.run_and_report(&map), Reply::Ack);
    let reduce = worker.task();
    assert_eq!(worker.run_and_report(&reduce), Reply::Ack);
    assert_eq!(worker.call(&Request::GetTask), Reply::Exit { failure: None });
    drop(straggler);
    serving.join().unwrap().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let written: u32 = writers.into_iter().map(|w| w.join().unwrap()).sum();
    assert!(written > 0, "the straggler wrote nothing; the test proved nothing");
    let mut left: Vec<String> =
        fs::read_dir(&output).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["mr-out-0"], "nothing but the output may remain after the job");
}

/// Threads writing into the straggler's attempt directory.
const STRAGGLER_WRITERS: usize = 2;

/// Where the coordinator says map `map`'s committed output is.
fn committed_location(worker: &mut FakeWorker, map: usize) -> keel_mr::protocol::MapOutputLocation {
    worker.locations()[map].location.clone().expect("the map is committed")
}

/// Whether every partition's index entry of the map output at `range` reads.
fn readable(layout: &Layout, range: MapOutputRange, partitions: u32) -> bool {
    let path = layout.maps_file(range.file);
    let file = fs::File::open(&path).unwrap();
    (0..partitions).all(|r| locate_partition_in(&file, &path, range.region, r, partitions).is_ok())
}

#[test]
fn a_failed_attempt_removes_its_own_files_and_a_damaged_map_output_is_that_map_s_loss() {
    let Job { dir: _dir, address, serving, handle, .. } = start_job("some words\n", 2, Duration::from_secs(10));
    let worker = FakeWorker::join(&address);
    let layout = worker.layout();
    let apps = AppRegistry::builtin();
    let app = apps.lookup("wc").unwrap();
    let mut maps = MapsFile::create(&layout, 76).unwrap();
    // The input disappeared: the attempt fails, leaving no directory and nothing in the maps file.
    let split = InputSplit { path: _dir.path().join("gone.txt"), name: "gone.txt".into(), offset: 0, len: 10 };
    let attempt = keel_mr::task_table::AttemptId(77);
    assert!(run_map(app.as_ref(), &worker.job, &layout, &mut maps, attempt, &split).is_err());
    assert!(!layout.attempt_dir(attempt).exists(), "a failed map attempt left its directory");
    assert_eq!(fs::metadata(maps.path()).unwrap().len(), 0, "a failed map attempt left bytes in the maps file");
    // A map output damaged at rest (one record's bytes flipped in partition 1's run): the reduce reading it
    // says that map's output is lost, and leaves no output of its own.
    let range = maps
        .append(2, 0, |mut file| {
            file.write_partition(|_| Ok(()))?;
            file.write_partition(|w| (0..1000).try_for_each(|i| w.append(&format!("key{i:04}"), "1")))?;
            file.finish()
        })
        .unwrap();
    let mut bytes = fs::read(maps.path()).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    fs::write(maps.path(), &bytes).unwrap();
    let map_attempt = keel_mr::task_table::AttemptId(70);
    let location = keel_mr::protocol::MapOutputLocation { attempt: map_attempt, output: Some(range), address: None };
    let outputs = [MapOutputAt { map: 0, location: Some(location) }];
    match run_reduce(app.as_ref(), &worker.job, &layout, attempt, 1, &outputs) {
        Ok(Finished::InputLost { map: 0, map_attempt: lost, reason }) => {
            assert_eq!(lost, map_attempt);
            assert!(reason.contains("checksum mismatch"), "{reason}");
        }
        other => panic!("damage in map 0's output was not its loss: {other:?}"),
    }
    assert!(!layout.reduce_attempt_output(attempt, 1).exists(), "a reduce that lost its input left its output");
    assert!(!layout.attempt_dir(attempt).exists());
    // Its partition 0 is intact (empty) and reads.
    assert!(matches!(run_reduce(app.as_ref(), &worker.job, &layout, attempt, 0, &outputs), Ok(Finished::Succeeded(_))));
    handle.abort("the test is over".into());
    drop(worker);
    assert!(serving.join().unwrap().is_err());
}

impl FakeWorker {
    /// Works until told to exit; returns the job's failure, if it failed.
    fn work_until_exit(&mut self) -> Option<String> {
        loop {
            match self.call(&Request::GetTask) {
                Reply::Run(assignment) => assert_eq!(self.run_and_report(&assignment), Reply::Ack),
                Reply::Wait => {}
                Reply::Exit { failure } => return failure,
                other => panic!("unexpected reply {other:?}"),
            }
        }
    }
}

#[test]
fn a_second_job_on_the_same_output_directory_is_refused_while_the_first_runs() {
    let Job { dir, output, address, serving, .. } = start_job("one two two\n", 3, Duration::from_secs(10));
    let config = JobConfig {
        app: "wc".into(),
        inputs: vec![dir.path().join("book.txt")],
        reduce_tasks: 10,
        output_dir: output.clone(),
        task_timeout: Duration::from_secs(10),
        work_dir: None,
        split_size_bytes: 1 << 20,
        memory_budget_bytes: 1 << 20,
        streaming: None,
    };
    let error = match Coordinator::prepare(&config, "127.0.0.1:0", &AppRegistry::builtin()) {
        Ok(_) => panic!("a second job was allowed on an output directory in use"),
        Err(e) => e.to_string(),
    };
    assert!(error.contains("in use by another keel mr job") && error.contains("--output"), "{error}");
    // The refused job touched nothing: the first one finishes with its own three outputs only.
    let mut worker = FakeWorker::join(&address);
    assert_eq!(worker.work_until_exit(), None);
    serving.join().unwrap().unwrap();
    let mut left: Vec<String> =
        fs::read_dir(&output).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert_eq!(left, ["mr-out-0", "mr-out-1", "mr-out-2"], "the lock file goes with the job");
}

#[test]
fn results_that_appear_while_the_job_runs_are_never_replaced_and_nothing_is_half_published() {
    let Job { dir: _dir, output, address, serving, .. } =
        start_job("alpha beta gamma delta\n", 3, Duration::from_secs(10));
    // Someone else's result appears while the job runs (the job checked the directory when it started).
    fs::write(output.join("mr-out-1"), "not ours\n").unwrap();
    let mut worker = FakeWorker::join(&address);
    let failure = worker.work_until_exit().expect("the job must fail");
    assert!(failure.contains("mr-out-1") && failure.contains("already exists"), "{failure}");
    let error = serving.join().unwrap().unwrap_err().to_string();
    assert!(error.contains("already exists"), "{error}");
    assert_eq!(fs::read_to_string(output.join("mr-out-1")).unwrap(), "not ours\n", "a result was replaced");
    let left: Vec<String> =
        fs::read_dir(&output).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, ["mr-out-1"], "a failed job leaves no mr-out-* of its own, and no scratch");
}

#[test]
fn a_permanent_failure_ends_the_job_with_its_reason_and_no_output() {
    let Job { dir: _dir, output, address, serving, .. } = start_job("words\n", 1, Duration::from_secs(10));
    let mut worker = FakeWorker::join(&address);
    let assignment = worker.task();
    let failure = ReportedOutcome::Failed { permanent: true, error: "input book.txt: not valid UTF-8".into() };
    assert_eq!(worker.report(&assignment, failure), Reply::Ack);
    match worker.call(&Request::GetTask) {
        Reply::Exit { failure: Some(reason) } => assert!(reason.contains("not valid UTF-8"), "{reason}"),
        other => panic!("expected Exit with the failure, got {other:?}"),
    }
    let error = serving.join().unwrap().unwrap_err().to_string();
    assert!(error.contains("not valid UTF-8"), "{error}");
    assert!(!output.exists(), "the output directory this job created is removed again");
}

/// A worker that shares nothing, by hand: what it holds but the coordinator has no record of is to be
/// deleted; a worker of the other kind is refused; input is read only for an attempt issued, checked chunk by
/// chunk; a map's commit moves no file and tells reducers where it is; reduce output is taken only from the
/// connection running that attempt, intact, and becomes the job's output.
#[test]
fn a_worker_sharing_nothing_is_served_only_what_its_attempts_may_have() {
    use keel_mr::protocol::{Chunk, HeldOutput, MapOutputAt, MapOutputLocation, Registration, TaskStats};
    use keel_mr::task_table::AttemptId;
    let text = "the cat and the hat\nthe end\n";
    let Job { dir: _dir, output, address, serving, .. } = start_job(text, 1, Duration::from_secs(10));
    let data_address = "127.0.0.1:9".to_string();
    let mut worker = FakeWorker::join(&address);
    let stale = HeldOutput { map: 0, attempt: AttemptId(99) };
    let registration = Registration { data_address: Some(data_address.clone()), held: vec![stale] };
    assert_eq!(worker.call(&Request::Register(registration)), Reply::Registered { drop: vec![stale] });
    let mut other = FakeWorker::join(&address);
    let shared = Registration { data_address: None, held: Vec::new() };
    match other.call(&Request::Register(shared)) {
        Reply::Error { reason } => assert!(reason.contains("start every worker of a job the same way"), "{reason}"),
        reply => panic!("a shared-fs worker joined a shared-nothing job: {reply:?}"),
    }

    let not_issued = Request::ReadInput { task: TaskId::Map(0), attempt: AttemptId(77), offset: 0 };
    assert!(matches!(worker.call(&not_issued), Reply::Stop { .. }));
    let map = worker.task();
    let read = Request::ReadInput { task: map.task, attempt: map.attempt, offset: 0 };
    let Reply::InputChunk(chunk) = worker.call(&read) else { panic!("no input chunk") };
    chunk.check().unwrap();
    assert_eq!((chunk.offset, chunk.data.as_slice()), (0, text.as_bytes()));
    let past = Request::ReadInput { task: map.task, attempt: map.attempt, offset: text.len() as u64 };
    assert!(matches!(worker.call(&past), Reply::Stop { .. }));
    let where_is = |worker: &mut FakeWorker| match worker.call(&Request::MapOutputs { first_map: 0 }) {
        Reply::MapOutputs { outputs } => outputs,
        reply => panic!("{reply:?}"),
    };
    assert_eq!(where_is(&mut worker), vec![MapOutputAt { map: 0, location: None }]);
    // Where in its own maps file the worker keeps it: passed on to reducers, never looked for here.
    let range = MapOutputRange { file: 5, region: keel_mr::map_file::Region { offset_bytes: 100, len_bytes: 60 } };
    let stats = TaskStats { input_bytes: text.len() as u64, map_output: Some(range), ..TaskStats::default() };
    assert_eq!(worker.report(&map, ReportedOutcome::Succeeded(stats)), Reply::Reported { committed: true });
    let location = MapOutputLocation { attempt: map.attempt, output: Some(range), address: Some(data_address) };
    assert_eq!(where_is(&mut worker), vec![MapOutputAt { map: 0, location: Some(location) }]);
    assert!(!worker.layout().maps_file(5).exists(), "a remote map's commit made a file");

    let reduce = worker.task();
    let put = |task, attempt, chunk| Request::PutOutput { task, attempt, chunk };
    let result = "and 1\ncat 1\nend 1\nhat 1\nthe 3\n";
    let mut damaged = Chunk::new(0, result.as_bytes().to_vec());
    damaged.data[3] ^= 1;
    match worker.call(&put(reduce.task, reduce.attempt, damaged)) {
        Reply::Stop { reason } => assert!(reason.contains("checksum mismatch"), "{reason}"),
        reply => panic!("a damaged chunk was taken: {reply:?}"),
    }
    let good = Chunk::new(0, result.as_bytes().to_vec());
    // Not the attempt this connection runs (another connection's, or none): refused.
    assert!(matches!(other.call(&put(reduce.task, reduce.attempt, good.clone())), Reply::Stop { .. }));
    assert!(matches!(worker.call(&put(TaskId::Map(0), map.attempt, good.clone())), Reply::Stop { .. }));
    assert_eq!(worker.call(&put(reduce.task, reduce.attempt, good)), Reply::Ack);
    drop(other);
    let stats = TaskStats { output_bytes: result.len() as u64, ..TaskStats::default() };
    assert_eq!(worker.report(&reduce, ReportedOutcome::Succeeded(stats)), Reply::Reported { committed: true });
    assert!(matches!(worker.call(&Request::GetTask), Reply::Exit { failure: None }));
    serving.join().unwrap().unwrap();
    assert_eq!(fs::read_to_string(output.join("mr-out-0")).unwrap(), result);
}
