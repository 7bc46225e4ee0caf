//! The running median of finished task durations, for backup tasks: O(log n) per sample, O(1) to read, so
//! the paper's 200,000 maps cost nothing per request.
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Duration;

/// Lower half in a max-heap, upper half in a min-heap; the lower half holds the extra sample when odd.
#[derive(Clone, Debug, Default)]
pub struct RunningMedian {
    lower: BinaryHeap<Duration>,
    upper: BinaryHeap<Reverse<Duration>>,
}

impl RunningMedian {
    pub fn push(&mut self, sample: Duration) {
        match self.lower.peek() {
            Some(&top) if sample > top => self.upper.push(Reverse(sample)),
            _ => self.lower.push(sample),
        }
        if self.lower.len() > self.upper.len() + 1 {
            if let Some(moved) = self.lower.pop() {
                self.upper.push(Reverse(moved));
            }
        } else if self.upper.len() > self.lower.len()
            && let Some(Reverse(moved)) = self.upper.pop()
        {
            self.lower.push(moved);
        }
    }

    /// The median (the lower of the two middle samples for an even count), `None` before any sample.
    pub fn median(&self) -> Option<Duration> {
        self.lower.peek().copied()
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lower.len() + self.upper.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn is_the_sorted_middle(samples in proptest::collection::vec(0u64..1000, 1..200)) {
            let mut median = RunningMedian::default();
            for (i, &s) in samples.iter().enumerate() {
                median.push(Duration::from_millis(s));
                let mut sorted: Vec<u64> = samples[..=i].to_vec();
                sorted.sort_unstable();
                prop_assert_eq!(median.median(), Some(Duration::from_millis(sorted[i / 2])));
                prop_assert_eq!(median.len(), i + 1);
            }
        }
    }
}
