//! Word count: how many times each word occurs. Has a combiner, so a map task sends one pair per distinct
//! word instead of one per occurrence (the paper's motivating case for combiners, section 4.3).
use std::fmt::Write as _;

use crate::app::{App, Combiner};
use crate::apps::words;

pub struct WordCount;

impl App for WordCount {
    fn map(&self, _input_name: &str, contents: &str, emit: &mut dyn FnMut(&str, &str)) {
        for word in words(contents) {
            emit(word, "1");
        }
    }

    fn reduce(&self, _key: &str, values: &mut dyn Iterator<Item = String>) -> String {
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
}
