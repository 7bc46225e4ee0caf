//! `straggler`: not from 6.824. Counts words like `wc`, but the first map attempt to start (whichever
//! worker runs it) is a straggler: it sleeps [`STRAGGLER_SLEEP`] first, like a task on a machine with a bad
//! disk (the paper's section 3.6). Every other attempt, a backup of that same task included, runs at full
//! speed, so a job that backs up stragglers ends long before the straggler would. The claim is a file in
//! the worker's current directory, like the 6.824 apps' markers, so it holds across worker processes.
use std::fs::OpenOptions;
use std::thread;
use std::time::Duration;

use crate::app::App;
use crate::apps::WordCount;
use crate::counters::Counters;

/// Far longer than a small job takes with a backup (a few seconds), so a test can tell the two apart
/// without timing anything finely; the straggling worker is killed when the job ends.
pub const STRAGGLER_SLEEP: Duration = Duration::from_secs(60);
const CLAIM_FILE: &str = "mr-worker-straggler-claimed";

pub struct Straggler;

impl Straggler {
    fn maybe_straggle(&self) {
        // `create_new`: exactly one attempt, in any worker process, wins the claim.
        if OpenOptions::new().write(true).create_new(true).open(CLAIM_FILE).is_ok() {
            thread::sleep(STRAGGLER_SLEEP);
        }
    }
}

impl App for Straggler {
    fn map(&self, input_name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        self.maybe_straggle();
        WordCount.map(input_name, contents, emit);
    }

    fn reduce(&self, key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        WordCount.reduce(key, values)
    }

    fn combiner(&self) -> Option<&dyn crate::app::Combiner> {
        WordCount.combiner()
    }

    fn map_with_counters(
        &self,
        input_name: &str,
        contents: &str,
        emit: &mut dyn FnMut(&str, &str),
        counters: &mut Counters,
    ) {
        self.maybe_straggle();
        WordCount.map_with_counters(input_name, contents, emit, counters);
    }

    fn reduce_with_counters(
        &self,
        key: &str,
        values: &mut dyn Iterator<Item = String>,
        counters: &mut Counters,
    ) -> String {
        WordCount.reduce_with_counters(key, values, counters)
    }
}
