//! User counters (the paper's section 4.9): named totals an app increments from `map` and `reduce`, such as
//! words seen or malformed records skipped, to sanity-check a job ("output pairs == input pairs").
//!
//! An attempt's counters travel to the coordinator with its success report, and the coordinator adds them to
//! the job's totals only when it commits that attempt. A re-executed, late or duplicate attempt is never
//! committed, so nothing is counted twice, however many times a task ran.
//!
//! Names are short identifiers (`[A-Za-z0-9_.:-]`, at most [`COUNTER_NAME_BYTES_MAX`] bytes) because they
//! become keys of the `--stats-file` (`counter.<name> <value>`) and of `/status.json`, and there are at most
//! [`COUNTERS_MAX`] per job. A misuse does not panic in the app: the first one is remembered and the engine
//! fails the attempt with it (permanently, since a deterministic app would misuse them again).
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Most distinct counters in one job. Counters are for a handful of sanity checks, not for data (emit
/// pairs for that); the bound keeps a report frame, the summary and the status page small whatever an app
/// does, and catches the classic bug of building the name from the data (`counters.add(word, 1)`).
pub const COUNTERS_MAX: usize = 64;
/// Longest counter name, in bytes: long enough for `group.counter_name_with_words`, short enough to show
/// on one line of the summary and the status page.
pub const COUNTER_NAME_BYTES_MAX: usize = 64;

/// A misused counter. The message names the counter and the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CounterError {
    #[error(
        "counter name {0:?} is not allowed: use 1 to {COUNTER_NAME_BYTES_MAX} bytes of letters, digits, '_', '.', \
         ':' or '-'"
    )]
    BadName(String),
    #[error(
        "counter {0:?} would be counter number {n} of this job; at most {COUNTERS_MAX} are allowed (is the name \
         built from the data? emit pairs for that)",
        n = COUNTERS_MAX + 1
    )]
    TooMany(String),
    #[error("counter {0:?} overflowed (more than 2^64 - 1)")]
    Overflow(String),
}

/// Named `u64` totals, in name order. Apps get `&mut Counters` in [`crate::App::map_with_counters`] and
/// [`crate::App::reduce_with_counters`] and call [`Counters::add`].
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
// Encoded as the bare name -> value map (`/status.json` shows `{"lines": 4}`).
#[serde(transparent)]
pub struct Counters {
    values: BTreeMap<String, u64>,
    /// The first misuse in this attempt; the engine fails the attempt with it. Never sent over the wire: a
    /// report carries valid counters only.
    #[serde(skip)]
    error: Option<CounterError>,
}

impl Counters {
    pub fn new() -> Counters {
        Counters::default()
    }

    /// Adds `delta` to the counter `name` (created at 0). A bad name, one counter too many or an overflow
    /// is remembered, the counter left alone, and the attempt fails with that error when the app returns.
    pub fn add(&mut self, name: &str, delta: u64) {
        if self.error.is_some() {
            return;
        }
        if let Err(e) = self.try_add(name, delta) {
            self.error = Some(e);
        }
    }

    /// Like [`Counters::add`], returning the error instead of remembering it.
    pub fn try_add(&mut self, name: &str, delta: u64) -> Result<(), CounterError> {
        match self.values.get_mut(name) {
            Some(value) => {
                *value = value.checked_add(delta).ok_or_else(|| CounterError::Overflow(name.to_string()))?;
            }
            None => {
                check_name(name)?;
                if self.values.len() >= COUNTERS_MAX {
                    return Err(CounterError::TooMany(name.to_string()));
                }
                self.values.insert(name.to_string(), delta);
            }
        }
        Ok(())
    }

    /// The value of `name`, 0 if it was never added to.
    pub fn get(&self, name: &str) -> u64 {
        self.values.get(name).copied().unwrap_or(0)
    }

    /// `(name, value)` in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, u64)> {
        self.values.iter().map(|(k, v)| (k.as_str(), *v))
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The first misuse since this set was made, if any.
    pub fn error(&self) -> Option<&CounterError> {
        self.error.as_ref()
    }

    /// Checks counters that came from elsewhere (a worker's report): names, number. Values need no check.
    pub fn validate(&self) -> Result<(), CounterError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        for name in self.values.keys() {
            check_name(name)?;
        }
        if let Some(name) = self.values.keys().nth(COUNTERS_MAX) {
            return Err(CounterError::TooMany(name.clone()));
        }
        Ok(())
    }

    /// Adds every counter of `other` to this set: how the coordinator folds a committed attempt into the
    /// job's totals. On an error nothing is changed.
    /// Takes back what [`Counters::add_all`] added for `other` (a committed map output that was lost: its
    /// re-executed map will add its counters again). Saturates at zero; a counter stays listed.
    pub fn subtract_all(&mut self, other: &Counters) {
        for (name, value) in other.iter() {
            if let Some(current) = self.values.get_mut(name) {
                *current = current.saturating_sub(value);
            }
        }
    }

    pub fn add_all(&mut self, other: &Counters) -> Result<(), CounterError> {
        let mut sum = self.clone();
        for (name, value) in other.iter() {
            sum.try_add(name, value)?;
        }
        self.values = sum.values;
        Ok(())
    }
}

impl fmt::Display for Counters {
    /// `name value, name value, ...`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (name, value)) in self.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name} {value}")?;
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), CounterError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-');
    if name.is_empty() || name.len() > COUNTER_NAME_BYTES_MAX || !name.bytes().all(allowed) {
        return Err(CounterError::BadName(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_sums_per_name_in_name_order() {
        let mut c = Counters::new();
        c.add("words", 3);
        c.add("lines", 1);
        c.add("words", 4);
        assert_eq!(c.get("words"), 7);
        assert_eq!(c.get("never"), 0);
        assert_eq!(c.to_string(), "lines 1, words 7");
        assert_eq!(c.error(), None);
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn bad_names_too_many_counters_and_overflow_are_errors_naming_the_counter() {
        for bad in ["", "two words", "tab\there", "ünïcode", &"x".repeat(COUNTER_NAME_BYTES_MAX + 1)] {
            let mut c = Counters::new();
            c.add(bad, 1);
            let error = c.error().expect("a bad name must be an error").to_string();
            assert!(error.contains("is not allowed"), "{error}");
            assert!(c.is_empty(), "a bad counter must not be created");
        }
        let mut c = Counters::new();
        for i in 0..COUNTERS_MAX {
            c.add(&format!("c{i}"), 1);
        }
        assert_eq!(c.error(), None);
        c.add("one_more", 1);
        assert!(matches!(c.error(), Some(CounterError::TooMany(name)) if name == "one_more"));
        // The first error sticks; later misuse does not replace it.
        c.add("bad name", 1);
        assert!(matches!(c.error(), Some(CounterError::TooMany(_))));

        let mut c = Counters::new();
        c.add("big", u64::MAX);
        assert_eq!(c.try_add("big", 1), Err(CounterError::Overflow("big".into())));
        assert_eq!(c.get("big"), u64::MAX, "an overflowing add changes nothing");
    }

    #[test]
    fn folding_into_totals_checks_the_job_wide_limit_and_is_all_or_nothing() {
        let mut totals = Counters::new();
        let mut attempt = Counters::new();
        attempt.add("a", 2);
        attempt.add("b", 3);
        totals.add_all(&attempt).unwrap();
        totals.add_all(&attempt).unwrap();
        assert_eq!(totals.to_string(), "a 4, b 6");
        let mut many = Counters::new();
        for i in 0..COUNTERS_MAX - 1 {
            many.add(&format!("m{i}"), 1);
        }
        let before = totals.clone();
        assert!(matches!(totals.add_all(&many), Err(CounterError::TooMany(_))));
        assert_eq!(totals, before, "a failed fold changes nothing");
    }

    #[test]
    fn counters_from_the_wire_are_validated() {
        let mut c = Counters::new();
        c.values.insert("has space".into(), 1);
        assert!(matches!(c.validate(), Err(CounterError::BadName(_))));
        let mut c = Counters::new();
        for i in 0..=COUNTERS_MAX {
            c.values.insert(format!("c{i:03}"), 1);
        }
        assert!(matches!(c.validate(), Err(CounterError::TooMany(_))));
    }
}
