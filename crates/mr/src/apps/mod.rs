//! The apps users run: `wc` and `indexer`. Test apps live apart, in `crate::test_apps`.
use std::sync::Arc;

use crate::app::AppRegistry;

mod indexer;
mod wc;
mod words;

pub use indexer::Indexer;
pub use wc::{DISTINCT_WORDS_COUNTER, LINES_COUNTER, WORDS_COUNTER, WordCount};
pub use words::words;

pub(crate) fn register(registry: &mut AppRegistry) {
    registry.register("wc", Arc::new(WordCount));
    registry.register("indexer", Arc::new(Indexer));
}
