//! `slow`: not from 6.824. Every map takes [`MAP_SLEEP_MS`] and then counts words like `wc`, so a test can
//! run tasks that outlast a short `--task-timeout` (issue 14: such a job must still finish) or keep workers
//! busy while it stops them or interrupts the job. It keeps `wc`'s counters, so re-executed slow maps
//! test that counters are summed once.
use std::thread;
use std::time::Duration;

use crate::app::App;
use crate::apps::WordCount;
use crate::counters::Counters;

/// Long enough to outlast a 100 ms `--task-timeout` three times over, short enough that a job of a few maps
/// takes about a second.
pub const MAP_SLEEP_MS: u64 = 300;

pub struct Slow;

impl App for Slow {
    fn map(&self, input_name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        thread::sleep(Duration::from_millis(MAP_SLEEP_MS));
        WordCount.map(input_name, contents, emit);
    }

    fn reduce(&self, key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        WordCount.reduce(key, values)
    }

    fn map_with_counters(
        &self,
        input_name: &str,
        contents: &str,
        emit: &mut dyn FnMut(&str, &str),
        counters: &mut Counters,
    ) {
        thread::sleep(Duration::from_millis(MAP_SLEEP_MS));
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
