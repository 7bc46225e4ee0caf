//! 6.824 `rtiming`: do reduce tasks run in parallel on different workers?
use super::parallel::nparallel;
use crate::app::App;

pub struct ReduceTiming;

impl App for ReduceTiming {
    fn map(&self, _input_name: &str, _contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        for key in ["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] {
            emit(key, "1");
        }
    }

    fn reduce(&self, _key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        values.for_each(drop);
        nparallel("reduce").to_string()
    }
}
