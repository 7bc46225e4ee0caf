//! A log-linear latency histogram (the HdrHistogram layout, small): values below 2^SUB_BITS nanoseconds get a
//! bucket each; above, every power of two is split into 2^SUB_BITS equal buckets, so a bucket is at most 1/32
//! (about 3%) wider than its lower bound, whatever the magnitude. Recording is an index computation and an
//! increment: cheap enough not to disturb what it measures. No dependency, mergeable, and serializable as the
//! list of nonempty buckets (so a plot can be redrawn from a saved run).

/// Sub-buckets per power of two: 2^5 = 32, a relative error of at most 1/32 per recorded value.
const SUB_BITS: u32 = 5;
const SUB_BUCKETS: u64 = 1 << SUB_BITS;
/// Enough buckets for any u64 nanosecond count (the top power of two, 2^63, ends at index 59 * 32 + 31).
const BUCKETS: usize = ((64 - SUB_BITS as usize) + 1) * SUB_BUCKETS as usize;

#[derive(Clone, Debug)]
pub struct Histogram {
    counts: Vec<u64>,
    count: u64,
    sum_ns: u128,
    min_ns: u64,
    max_ns: u64,
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram { counts: vec![0; BUCKETS], count: 0, sum_ns: 0, min_ns: u64::MAX, max_ns: 0 }
    }
}

/// The bucket a value falls in.
fn index_of(value_ns: u64) -> usize {
    if value_ns < SUB_BUCKETS {
        return value_ns as usize;
    }
    let exponent = 63 - value_ns.leading_zeros();
    let shift = exponent - SUB_BITS;
    let sub = (value_ns >> shift) - SUB_BUCKETS;
    debug_assert!(sub < SUB_BUCKETS);
    (shift as usize + 1) * SUB_BUCKETS as usize + sub as usize
}

/// The smallest and largest value of bucket `index` (inclusive).
fn bounds_of(index: usize) -> (u64, u64) {
    let index = index as u64;
    if index < SUB_BUCKETS {
        return (index, index);
    }
    let shift = index / SUB_BUCKETS - 1;
    let low = (SUB_BUCKETS + index % SUB_BUCKETS) << shift;
    (low, low + ((1u64 << shift) - 1))
}

impl Histogram {
    pub fn record(&mut self, value_ns: u64) {
        self.counts[index_of(value_ns)] += 1;
        self.count += 1;
        self.sum_ns += u128::from(value_ns);
        self.min_ns = self.min_ns.min(value_ns);
        self.max_ns = self.max_ns.max(value_ns);
    }

    pub fn merge(&mut self, other: &Histogram) {
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            *mine += theirs;
        }
        self.count += other.count;
        self.sum_ns += other.sum_ns;
        self.min_ns = self.min_ns.min(other.min_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn max_ns(&self) -> u64 {
        self.max_ns
    }

    pub fn min_ns(&self) -> u64 {
        if self.count == 0 { 0 } else { self.min_ns }
    }

    pub fn mean_ns(&self) -> u64 {
        if self.count == 0 { 0 } else { (self.sum_ns / u128::from(self.count)) as u64 }
    }

    /// The value at quantile `q` (0..=1): the upper bound of the bucket holding the ceil(q * count)-th value,
    /// never above the largest value seen (so p100 is the exact max and percentiles never exceed it).
    pub fn quantile_ns(&self, q: f64) -> u64 {
        if self.count == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, &count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                return bounds_of(index).1.clamp(self.min_ns, self.max_ns);
            }
        }
        self.max_ns
    }

    /// The nonempty buckets as (upper bound in ns, count), in increasing order: what a saved run keeps.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(index, &count)| (bounds_of(index).1.min(self.max_ns), count))
            .collect()
    }

    /// Rebuilds a histogram from `buckets()` output (each value lands in the bucket its upper bound names).
    pub fn from_buckets(buckets: &[(u64, u64)], min_ns: u64, max_ns: u64, mean_ns: u64) -> Histogram {
        let mut histogram = Histogram::default();
        for &(upper_ns, count) in buckets {
            histogram.counts[index_of(upper_ns)] += count;
            histogram.count += count;
        }
        histogram.sum_ns = u128::from(mean_ns) * u128::from(histogram.count);
        histogram.min_ns = if histogram.count == 0 { u64::MAX } else { min_ns };
        histogram.max_ns = max_ns;
        histogram
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_that_contains_it() {
        let mut value: u64 = 0;
        while value < u64::MAX / 3 {
            let (low, high) = bounds_of(index_of(value));
            assert!(low <= value && value <= high, "{value} not in [{low}, {high}]");
            // Relative width at most 1/32 above the small exact range.
            assert!(value < SUB_BUCKETS || (high - low + 1) * SUB_BUCKETS <= low, "{value}: [{low}, {high}]");
            value = value * 3 / 2 + 1;
        }
        assert!(index_of(u64::MAX) < BUCKETS);
    }

    #[test]
    fn quantiles_are_ordered_and_within_three_percent() {
        let mut histogram = Histogram::default();
        for micros in 1..=10_000u64 {
            histogram.record(micros * 1_000);
        }
        let p50 = histogram.quantile_ns(0.5);
        let p99 = histogram.quantile_ns(0.99);
        assert!((5_000_000..=5_000_000 * 33 / 32).contains(&p50), "p50 {p50}");
        assert!((9_900_000..=9_900_000 * 33 / 32).contains(&p99), "p99 {p99}");
        assert!(p50 <= p99 && p99 <= histogram.quantile_ns(1.0));
        assert_eq!(histogram.quantile_ns(1.0), 10_000_000);
        assert_eq!(histogram.min_ns(), 1_000);
    }

    #[test]
    fn merging_and_rebuilding_keep_the_distribution() {
        let (mut a, mut b) = (Histogram::default(), Histogram::default());
        (1..500u64).for_each(|v| a.record(v * 777));
        (500..1000u64).for_each(|v| b.record(v * 777));
        a.merge(&b);
        assert_eq!(a.count(), 999);
        let rebuilt = Histogram::from_buckets(&a.buckets(), a.min_ns(), a.max_ns(), a.mean_ns());
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            assert_eq!(rebuilt.quantile_ns(q), a.quantile_ns(q), "q {q}");
        }
    }
}
