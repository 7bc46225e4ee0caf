//! 6.824 `early_exit`: some reduces are slow, so a worker (or coordinator) that exits before the job's output
//! is final is caught by comparing the output seen at the first exit with the output at the end.
use std::thread;
use std::time::Duration;

use crate::app::App;

/// As in 6.824.
const SLOW_REDUCE: Duration = Duration::from_secs(3);

pub struct EarlyExit;

impl App for EarlyExit {
    fn map(&self, input_name: &str, _contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        emit(input_name, "1");
    }

    fn reduce(&self, key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        if key.contains("sherlock") || key.contains("tom") {
            thread::sleep(SLOW_REDUCE);
        }
        values.count().to_string()
    }
}
