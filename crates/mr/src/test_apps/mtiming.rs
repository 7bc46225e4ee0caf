//! 6.824 `mtiming`: do map tasks run in parallel on different workers?
use std::time::{SystemTime, UNIX_EPOCH};

use super::parallel::nparallel;
use crate::app::App;

pub struct MapTiming;

impl App for MapTiming {
    fn map(&self, _input_name: &str, _contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or(0.0);
        let pid = std::process::id();
        let n = nparallel("map");
        emit(&format!("times-{pid}"), &format!("{started:.1}"));
        emit(&format!("parallel-{pid}"), &n.to_string());
    }

    fn reduce(&self, _key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        let mut values: Vec<String> = values.collect();
        values.sort();
        values.join(" ")
    }
}
