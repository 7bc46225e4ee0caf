//! Word count: how many times each word occurs. Has a combiner, so a map task sends one pair per distinct
//! word instead of one per occurrence (the paper's motivating case for combiners, section 4.3).
//!
//! User counters (section 4.9): `words` and `lines` seen by the maps, and `distinct_words` reduced, so
//! `words` equals the sum of the output's counts and `distinct_words` its number of lines.
use std::fmt::Write as _;

use crate::app::{App, Combiner};
use crate::apps::words;
use crate::counters::Counters;

pub struct WordCount;

/// Counter names of `wc`.
pub const WORDS_COUNTER: &str = "words";
pub const LINES_COUNTER: &str = "lines";
pub const DISTINCT_WORDS_COUNTER: &str = "distinct_words";

impl App for WordCount {
    fn map(&self, input_name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        self.map_with_counters(input_name, contents, emit, &mut Counters::new());
    }

    fn reduce(&self, key: &str, values: &mut dyn Iterator<Item = String>) -> String {
        self.reduce_with_counters(key, values, &mut Counters::new())
    }

    fn map_with_counters(
        &self,
        _input_name: &str,
        contents: &str,
        emit: &mut dyn FnMut(&str, &str),
        counters: &mut Counters,
    ) {
        let mut seen = 0;
        for word in words(contents) {
            emit(word, "1");
            seen += 1;
        }
        counters.add(WORDS_COUNTER, seen);
        // A split holds whole lines (a last line may lack its newline), so the splits' counts add up.
        counters.add(LINES_COUNTER, contents.lines().count() as u64);
    }

    fn reduce_with_counters(
        &self,
        _key: &str,
        values: &mut dyn Iterator<Item = String>,
        counters: &mut Counters,
    ) -> String {
        counters.add(DISTINCT_WORDS_COUNTER, 1);
        values.map(|v| parse_count(&v)).sum::<u64>().to_string()
    }

    fn combiner(&self) -> Option<&dyn Combiner> {
        Some(self)
    }
}

impl Combiner for WordCount {
    fn combine(&self, _key: &str, accumulated: &mut String, value: &str) {
        // Nearly every call adds a "1" to a running count (one per word occurrence): bump the decimal digits
        // in place instead of parsing and formatting, which was most of a map task's time.
        if value == "1" && increment_decimal(accumulated) {
            return;
        }
        let sum = parse_count(accumulated) + parse_count(value);
        accumulated.clear();
        // Writing into a String cannot fail.
        let _ = write!(accumulated, "{sum}");
    }
}

/// Adds one to a string of ASCII digits in place. False (and nothing changed) if it is not one.
fn increment_decimal(digits: &mut String) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let mut nines = 0;
    while digits.ends_with('9') {
        digits.pop();
        nines += 1;
    }
    match digits.pop() {
        Some(d) => digits.push(char::from(d as u8 + 1)),
        None => digits.push('1'),
    }
    digits.extend(std::iter::repeat_n('0', nines));
    true
}

/// Values are produced by this app only ("1" or a sum), so anything else is a bug worth a loud failure: the
/// worker turns the panic into a failed attempt.
fn parse_count(value: &str) -> u64 {
    match value.parse() {
        Ok(n) => n,
        Err(_) => panic!("wc: intermediate value {value:?} is not a count"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combining_is_summing() {
        let mut acc = "1".to_string();
        WordCount.combine("a", &mut acc, "1");
        WordCount.combine("a", &mut acc, "40");
        assert_eq!(acc, "42");
        for (before, after) in [("0", "1"), ("9", "10"), ("199", "200"), ("999", "1000"), ("41", "42")] {
            let mut acc = before.to_string();
            WordCount.combine("a", &mut acc, "1");
            assert_eq!(acc, after);
        }
        let mut values = vec!["42".to_string(), "1".to_string()].into_iter();
        assert_eq!(WordCount.reduce("a", &mut values), "43");
    }

    #[test]
    fn counts_words_lines_and_distinct_words() {
        let mut counters = Counters::new();
        let mut pairs = 0;
        WordCount.map_with_counters("f", "the cat\n\nsat, the end", &mut |_, _| pairs += 1, &mut counters);
        assert_eq!((counters.get(WORDS_COUNTER), counters.get(LINES_COUNTER), pairs), (5, 3, 5));
        WordCount.reduce_with_counters("the", &mut vec!["2".to_string()].into_iter(), &mut counters);
        assert_eq!(counters.get(DISTINCT_WORDS_COUNTER), 1);
        assert_eq!(counters.error(), None);
    }
}
