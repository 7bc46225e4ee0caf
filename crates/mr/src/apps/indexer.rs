//! Inverted index: for each word, how many documents contain it and which (sorted), as 6.824's indexer:
//! `"<n> <doc1,doc2,...>"`.
use std::collections::HashSet;

use crate::app::App;
use crate::apps::words;

pub struct Indexer;

impl App for Indexer {
    fn map(&self, input_name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        let mut seen = HashSet::new();
        for word in words(contents) {
            if seen.insert(word) {
                emit(word, input_name);
            }
        }
    }

    fn reduce(&self, _key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        let mut docs: Vec<String> = values.collect();
        docs.sort();
        // A large document is split into several map tasks, each of which emits the document once.
        docs.dedup();
        format!("{} {}", docs.len(), docs.join(","))
    }
}
