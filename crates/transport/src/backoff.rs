//! Jittered exponential backoff between reconnect attempts.
//!
//! Delay n (from 0) is drawn uniformly from [d/2, d] with d = min(backoff_max, backoff_min * 2^n): doubling
//! spaces out attempts against a peer that stays down, the cap keeps a returning peer from waiting long, and
//! the jitter keeps the nodes of a cluster that lost a peer together from dialing it in lockstep.

/// splitmix64 (Steele, Lea, Flood 2014): a tiny, well-mixed generator. Jitter needs no more, and this keeps
/// the crate free of a randomness dependency.
#[derive(Debug, Clone)]
pub(crate) struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    pub(crate) fn new(seed: u64) -> SplitMix64 {
        SplitMix64 { state: seed }
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `low..=high` (up to a negligible modulo bias).
    pub(crate) fn in_range(&mut self, low: u64, high: u64) -> u64 {
        assert!(low <= high, "empty range {low}..={high}");
        match (high - low).checked_add(1) {
            Some(span) => low + self.next_u64() % span,
            None => self.next_u64(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    min_ms: u64,
    max_ms: u64,
    failures: u32,
    rng: SplitMix64,
}

impl Backoff {
    pub(crate) fn new(min_ms: u64, max_ms: u64, seed: u64) -> Backoff {
        assert!(0 < min_ms && min_ms <= max_ms, "backoff bounds {min_ms}..{max_ms} (validated by the config)");
        Backoff { min_ms, max_ms, failures: 0, rng: SplitMix64::new(seed) }
    }

    /// The delay before the next attempt, after one more failure.
    pub(crate) fn next_delay_ms(&mut self) -> u64 {
        let ceiling_ms = self.min_ms.checked_shl(self.failures).unwrap_or(u64::MAX).min(self.max_ms);
        // Stop counting once the ceiling is reached, so the shift above cannot overflow however long a peer
        // stays away.
        if ceiling_ms < self.max_ms {
            self.failures += 1;
        }
        let delay_ms = self.rng.in_range(ceiling_ms / 2, ceiling_ms).max(1);
        assert!(delay_ms <= self.max_ms);
        delay_ms
    }

    /// After a successful handshake: the next failure starts again from `min_ms`.
    pub(crate) fn reset(&mut self) {
        self.failures = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_jitter_up_to_the_cap_and_reset_after_success() {
        let mut backoff = Backoff::new(20, 1000, 7);
        let mut ceiling = 20;
        for _ in 0..30 {
            let delay = backoff.next_delay_ms();
            assert!(ceiling / 2 <= delay && delay <= ceiling, "{delay} not within [{}, {ceiling}]", ceiling / 2);
            ceiling = (ceiling * 2).min(1000);
        }
        backoff.reset();
        let delay = backoff.next_delay_ms();
        assert!((10..=20).contains(&delay), "after reset: {delay}");
    }

    #[test]
    fn jitter_differs_between_seeds_and_is_spread() {
        let draws = |seed| {
            let mut backoff = Backoff::new(1000, 1000, seed);
            (0..64).map(|_| backoff.next_delay_ms()).collect::<Vec<_>>()
        };
        let (a, b) = (draws(1), draws(2));
        assert_ne!(a, b);
        assert!(a.iter().any(|d| *d < 700) && a.iter().any(|d| *d > 800), "not spread over [500, 1000]: {a:?}");
    }

    #[test]
    fn equal_bounds_and_huge_bounds_do_not_overflow() {
        let mut backoff = Backoff::new(u64::MAX / 2, u64::MAX, 3);
        for _ in 0..100 {
            backoff.next_delay_ms();
        }
        let mut tiny = Backoff::new(1, 1, 3);
        assert_eq!(tiny.next_delay_ms(), 1);
    }
}
