//! Token-bucket rate limits per key (a client address, a principal, a log), in bounded memory.
//!
//! A bucket holds up to `burst` tokens and refills at `rate` per second; a request takes one.
//! The clock is a parameter ([`RateLimiter::check`] takes `now`) so tests drive it directly.
//! At most `max_keys` buckets are kept: when a new key arrives at the cap, buckets that have
//! refilled to full are dropped first (a full bucket carries no state, so this loses nothing),
//! then the fullest one: the bucket closest to "no limit in force", so a flood of new keys cannot
//! reset the limit of a key that is being held back.
//!
//! The answer to a refused request is the caller's; [`retry_after_secs`] turns the wait into a
//! `Retry-After` value.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets per key.
#[derive(Debug)]
pub struct RateLimiter<K> {
    rate: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<K, Bucket>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// `rate` tokens per second (0 disables the limiter), `burst` tokens at most (at least 1),
    /// `max_keys` buckets at most (at least 1).
    pub fn new(rate: f64, burst: u32, max_keys: usize) -> Self {
        RateLimiter {
            rate,
            burst: f64::from(burst.max(1)),
            max_keys: max_keys.max(1),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes a token for `key` at `now`, or says how long until one is available. The key is
    /// copied only when it gets a new bucket.
    pub fn check<Q>(&self, key: &Q, now: Instant) -> Result<(), Duration>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
    {
        if self.rate <= 0.0 {
            return Ok(());
        }
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.evict(&mut buckets, now);
        }
        let b = match buckets.get_mut(key) {
            Some(b) => b,
            None => buckets.entry(key.to_owned()).or_insert(Bucket {
                tokens: self.burst,
                last: now,
            }),
        };
        let elapsed = now.saturating_duration_since(b.last).as_secs_f64();
        b.tokens = (b.tokens + elapsed * self.rate).min(self.burst);
        b.last = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - b.tokens) / self.rate))
        }
    }

    fn evict(&self, buckets: &mut HashMap<K, Bucket>, now: Instant) {
        let (rate, burst) = (self.rate, self.burst);
        let level =
            |b: &Bucket| b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate;
        buckets.retain(|_, b| level(b) < burst);
        if buckets.len() >= self.max_keys
            && let Some(fullest) = buckets
                .iter()
                .max_by(|(_, a), (_, b)| level(a).total_cmp(&level(b)))
                .map(|(k, _)| k.clone())
        {
            buckets.remove(&fullest);
        }
    }

    /// Buckets currently kept.
    pub fn len(&self) -> usize {
        self.buckets.lock().map_or(0, |b| b.len())
    }

    /// Whether no bucket is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `Retry-After` seconds for a wait: rounded up, at least 1.
pub fn retry_after_secs(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let l = RateLimiter::new(2.0, 3, 10);
        let t0 = Instant::now();
        for _ in 0..3 {
            l.check(&"a", t0).unwrap();
        }
        let wait = l.check(&"a", t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another key is independent.
        l.check(&"b", t0).unwrap();
        // Half a second later one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        l.check(&"a", t1).unwrap();
        assert!(l.check(&"a", t1).is_err());
        // Long idle: the bucket is full again but never above the burst.
        let t2 = t1 + Duration::from_secs(3600);
        for _ in 0..3 {
            l.check(&"a", t2).unwrap();
        }
        assert!(l.check(&"a", t2).is_err());
    }

    #[test]
    fn zero_rate_disables() {
        let l = RateLimiter::new(0.0, 1, 1);
        let t = Instant::now();
        for _ in 0..100 {
            l.check(&1u32, t).unwrap();
        }
        assert!(l.is_empty());
    }

    #[test]
    fn memory_is_bounded_and_active_limits_survive_idle_eviction() {
        let l = RateLimiter::new(1.0, 2, 4);
        let t0 = Instant::now();
        // Key 0 is exhausted (state worth keeping).
        l.check(&0u32, t0).unwrap();
        l.check(&0u32, t0).unwrap();
        assert!(l.check(&0u32, t0).is_err());
        // Many other keys come and go, each refilled (idle) by the time the next arrives.
        for k in 1..1000u32 {
            let t = t0 + Duration::from_millis(u64::from(k));
            l.check(&k, t).unwrap();
            assert!(l.len() <= 4);
        }
        // Key 0 was never idle-evicted: still limited until it refills.
        assert!(l.check(&0u32, t0 + Duration::from_millis(999)).is_err());
    }

    #[test]
    fn owned_keys_are_checked_by_reference() {
        // String keys, looked up with &str: one bucket per distinct key, shared by both forms.
        let l: RateLimiter<String> = RateLimiter::new(1.0, 2, 10);
        let t = Instant::now();
        l.check("log-a", t).unwrap();
        l.check(&"log-a".to_owned(), t).unwrap();
        assert_eq!(l.check("log-a", t), Err(Duration::from_secs(1)));
        l.check("log-b", t).unwrap();
        assert_eq!(l.len(), 2);
        // A limiter over one global bucket.
        let total: RateLimiter<()> = RateLimiter::new(1.0, 1, 1);
        total.check(&(), t).unwrap();
        assert!(total.check(&(), t).is_err());
    }

    #[test]
    fn a_zero_burst_still_lets_one_request_through() {
        let l = RateLimiter::new(1.0, 0, 10);
        let t = Instant::now();
        l.check(&"a", t).unwrap();
        assert_eq!(l.check(&"a", t), Err(Duration::from_secs(1)));
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(500)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1000)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(1001)), 2);
        assert_eq!(retry_after_secs(Duration::from_millis(2500)), 3);
    }
}
