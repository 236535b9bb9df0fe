//! Exponential back-off between retries, with random jitter so that clients recovering together
//! do not retry in lock-step.
//!
//! The base delay before retry `n` (1-based: the number of failures so far) is
//! `initial * 2^(n-1)`, capped at `max`; doubling stops after 20 failures (a million times
//! `initial`), so the arithmetic never overflows. The jitter is a random number of whole
//! milliseconds, uniform in `0..=base/2`, either added below the base ([`Jitter::Below`]: the
//! delay is in `[base/2, base]`, never above the cap) or above it ([`Jitter::Above`]: the delay is
//! in `[base, 1.5 * base]`, never below the base). Without randomness from the operating system
//! the jitter is 0.

use std::time::Duration;

/// Doubling stops after this many failures.
const MAX_DOUBLINGS: u32 = 20;

/// Where the random part of a delay goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Jitter {
    /// The delay is in `[base/2, base]`.
    Below,
    /// The delay is in `[base, 1.5 * base]`.
    Above,
}

/// An exponential back-off schedule. Holds no state: callers count their failures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    jitter: Jitter,
}

impl Backoff {
    /// Delays from `initial`, doubling up to `max`, with `jitter`.
    pub const fn new(initial: Duration, max: Duration, jitter: Jitter) -> Self {
        Backoff {
            initial,
            max,
            jitter,
        }
    }

    /// The delay before retry number `failures` (1 after the first failure; 0 counts as 1).
    pub fn delay(&self, failures: u32) -> Duration {
        self.delay_with(failures, getrandom::u64().unwrap_or(0))
    }

    /// `initial * 2^(failures-1)`, capped at `max`: the delay without jitter.
    pub fn base(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(MAX_DOUBLINGS);
        self.initial.saturating_mul(1u32 << doublings).min(self.max)
    }

    /// The delay with `random` as the source of the jitter.
    fn delay_with(&self, failures: u32, random: u64) -> Duration {
        let base = self.base(failures);
        let half = u64::try_from(base.as_millis() / 2).unwrap_or(u64::MAX);
        let jitter = random % half.saturating_add(1);
        match self.jitter {
            Jitter::Below => Duration::from_millis(half + jitter),
            Jitter::Above => base.saturating_add(Duration::from_millis(jitter)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn base_doubles_from_initial_and_stops_at_the_cap() {
        let b = Backoff::new(ms(100), ms(1000), Jitter::Below);
        for (failures, want) in [(0, 100), (1, 100), (2, 200), (3, 400), (4, 800), (5, 1000)] {
            assert_eq!(b.base(failures), ms(want), "failures {failures}");
        }
        assert_eq!(b.base(u32::MAX), ms(1000));
    }

    #[test]
    fn doubling_stops_after_twenty_failures() {
        let b = Backoff::new(ms(1), Duration::MAX, Jitter::Below);
        assert_eq!(b.base(21), ms(1 << 20));
        assert_eq!(b.base(22), ms(1 << 20));
        assert_eq!(b.base(u32::MAX), ms(1 << 20));
    }

    #[test]
    fn jitter_below_spans_half_the_base_to_the_base() {
        let b = Backoff::new(ms(100), ms(1000), Jitter::Below);
        // base 400: half 200, jitter = random % 201.
        assert_eq!(b.delay_with(3, 0), ms(200));
        assert_eq!(b.delay_with(3, 200), ms(400));
        assert_eq!(b.delay_with(3, 201), ms(200));
        assert_eq!(b.delay_with(3, 57), ms(257));
        // At the cap the delay never exceeds the cap.
        assert_eq!(b.delay_with(60, 500), ms(1000));
        assert_eq!(b.delay_with(60, u64::MAX), ms(500 + u64::MAX % 501));
    }

    #[test]
    fn jitter_above_spans_the_base_to_one_and_a_half_times_it() {
        let b = Backoff::new(ms(100), ms(1000), Jitter::Above);
        assert_eq!(b.delay_with(3, 0), ms(400));
        assert_eq!(b.delay_with(3, 200), ms(600));
        assert_eq!(b.delay_with(3, 201), ms(400));
        assert_eq!(b.delay_with(60, 500), ms(1500));
    }

    #[test]
    fn a_zero_base_has_no_jitter() {
        for jitter in [Jitter::Below, Jitter::Above] {
            let b = Backoff::new(Duration::ZERO, ms(1000), jitter);
            assert_eq!(b.delay_with(5, 12345), Duration::ZERO);
        }
    }

    #[test]
    fn random_delays_stay_in_range() {
        for (jitter, lo, hi) in [(Jitter::Below, 400, 800), (Jitter::Above, 800, 1200)] {
            let b = Backoff::new(ms(100), ms(1000), jitter);
            for _ in 0..50 {
                let d = b.delay(4);
                assert!(d >= ms(lo) && d <= ms(hi), "{jitter:?}: {d:?}");
            }
        }
    }
}
