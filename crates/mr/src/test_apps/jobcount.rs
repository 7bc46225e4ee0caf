//! 6.824 `jobcount`: every map invocation leaves a file behind; the reduce counts them, so the output is the
//! number of map executions (must equal the number of map tasks when nothing fails).
use std::fs;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use super::random;
use crate::app::App;

const MARKER_PREFIX: &str = "mr-worker-jobcount-";
/// Maps last 2-5 s as in 6.824, long enough for idle workers to ask for work many times meanwhile, which is
/// what would expose a coordinator handing out a running task twice.
const MAP_SLEEP_MS_MIN: u64 = 2000;
const MAP_SLEEP_MS_SPREAD: u64 = 3000;

static INVOCATIONS: AtomicU64 = AtomicU64::new(0);

pub struct JobCount;

impl App for JobCount {
    fn map(&self, _input_name: &str, _contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        let n = INVOCATIONS.fetch_add(1, Ordering::SeqCst);
        let marker = format!("{MARKER_PREFIX}{}-{n}", std::process::id());
        if let Err(e) = fs::write(&marker, b"x") {
            panic!("jobcount: cannot create {marker}: {e}");
        }
        thread::sleep(Duration::from_millis(MAP_SLEEP_MS_MIN + random::below(MAP_SLEEP_MS_SPREAD)));
        emit("a", "x");
    }

    fn reduce(&self, _key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        values.for_each(drop);
        let invocations = match fs::read_dir(".") {
            Ok(entries) => {
                entries.flatten().filter(|e| e.file_name().to_string_lossy().starts_with(MARKER_PREFIX)).count()
            }
            Err(e) => panic!("jobcount: cannot list the current directory: {e}"),
        };
        invocations.to_string()
    }
}
