//! 6.824 `crash` and `nocrash`: with `crashes`, every map and reduce call exits the worker process with
//! probability 1/3 and sleeps with probability 1/3, so the coordinator must reassign timed-out tasks and
//! ignore the late reports of slow ones.
use std::thread;
use std::time::Duration;

use super::random;
use crate::app::App;

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

impl App for Crash {
    fn map(&self, input_name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        self.maybe_crash();
        emit("a", input_name);
        emit("b", &input_name.len().to_string());
        emit("c", &contents.len().to_string());
        emit("d", "xyzzy");
    }

    fn reduce(&self, _key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        self.maybe_crash();
        let mut values: Vec<String> = values.collect();
        values.sort();
        values.join(" ")
    }
}
