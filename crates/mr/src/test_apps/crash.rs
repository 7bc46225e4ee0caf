//! 6.824 `crash` and `nocrash`: with `crashes`, every map and reduce call exits the worker process with
//! probability 1/3 and sleeps with probability 1/3, so the coordinator must reassign timed-out tasks and
//! ignore the late reports of slow ones.
use std::thread;
use std::time::Duration;

use super::random;
use crate::app::App;
use crate::counters::Counters;

/// 6.824 sleeps up to 10 s against a 10 s task timeout. keel's crash test runs with `--task-timeout 2s`
/// to be fast, so the sleep is scaled to 4 s: twice the timeout, which makes late reports of slow but live
/// attempts more frequent than in 6.824, not less.
const SLEEP_MS_MAX: u64 = 4000;

pub struct Crash {
    pub crashes: bool,
}

impl Crash {
    fn maybe_crash(&self) {
        if !self.crashes {
            return;
        }
        let roll = random::below(1000);
        if roll < 330 {
            std::process::exit(1);
        } else if roll < 660 {
            thread::sleep(Duration::from_millis(random::below(SLEEP_MS_MAX)));
        }
    }
}

/// Counters (not in 6.824): one per map call, one per reduce call, and the bytes the maps saw. With a third
/// of all calls crashing and another third outliving the timeout, their committed sums must still be
/// exactly the number of maps, the number of keys and the input size.
pub const MAP_CALLS_COUNTER: &str = "map_calls";
pub const REDUCE_CALLS_COUNTER: &str = "reduce_calls";
pub const MAP_BYTES_COUNTER: &str = "map_bytes";

impl App for Crash {
    fn map(&self, input_name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        self.map_with_counters(input_name, contents, emit, &mut Counters::new());
    }

    fn reduce(&self, key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        self.reduce_with_counters(key, values, &mut Counters::new())
    }

    fn map_with_counters(
        &self,
        input_name: &str,
        contents: &str,
        emit: &mut dyn FnMut(&str, &str),
        counters: &mut Counters,
    ) {
        self.maybe_crash();
        counters.add(MAP_CALLS_COUNTER, 1);
        counters.add(MAP_BYTES_COUNTER, contents.len() as u64);
        emit("a", input_name);
        emit("b", &input_name.len().to_string());
        emit("c", &contents.len().to_string());
        emit("d", "xyzzy");
    }

    fn reduce_with_counters(
        &self,
        _key: &str,
        values: &mut dyn Iterator<Item = String>,
        counters: &mut Counters,
    ) -> String {
        self.maybe_crash();
        counters.add(REDUCE_CALLS_COUNTER, 1);
        let mut values: Vec<String> = values.collect();
        values.sort();
        values.join(" ")
    }
}
