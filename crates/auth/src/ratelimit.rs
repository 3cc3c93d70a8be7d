//! In-process fixed-window rate limiter.
//!
//! A [`RateLimiter`] counts attempts per key inside fixed windows: the first
//! attempt for a key opens a window of `limit.window`, and at most `limit.max`
//! attempts are allowed until that window ends. Keys are namespaced by the
//! callers (for example `"code:id:+15551234567"` or `"login:ip:203.0.113.7"`),
//! so one limiter can serve every rule.
//!
//! Time is passed in explicitly (`now: Instant`) so that callers and tests
//! control the clock.
//!
//! Memory is bounded: expired windows are pruned every [`PRUNE_EVERY`] calls,
//! and the number of live keys is capped (by default [`DEFAULT_MAX_ENTRIES`]).
//! When a new key would exceed the cap, expired windows are pruned first and, if
//! that is not enough, the windows closest to expiring are evicted until the
//! map is back to 90% of the cap. Eviction forgets those keys' counts, so the
//! cap should be well above the number of keys legitimately active within the
//! longest window; per-IP limits keep a single client from filling it alone.
//!
//! This limiter serves the rules that are cheap to repeat and harmless to reset
//! (sign-ups, public Lightning requests, API key use). Rules that guard secrets
//! (login codes, failed logins, operator keys) are counted by the store instead,
//! so they hold across restarts and between nodes: see `stored.rs`.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Expired windows are pruned once every this many calls to [`RateLimiter::check`].
pub const PRUNE_EVERY: u64 = 1024;

/// Default hard cap on the number of keys a [`RateLimiter`] tracks.
///
/// Each entry costs roughly the key's length plus about 80 bytes, so the
/// default bounds the limiter to about 10–15 MB with typical keys.
pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

/// A limit: at most `max` attempts per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RateLimit {
    /// Attempts allowed per window. `0` refuses every attempt.
    pub max: u32,
    /// Length of the fixed window, starting at the first counted attempt.
    pub window: Duration,
}

impl RateLimit {
    /// A limit of `max` attempts per `window`.
    pub const fn new(max: u32, window: Duration) -> Self {
        Self { max, window }
    }

    /// A limit of `max` attempts per `secs` seconds.
    pub const fn per_secs(max: u32, secs: u64) -> Self {
        Self::new(max, Duration::from_secs(secs))
    }
}

/// The limit was reached; the caller may retry after `secs` seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("rate limited: retry after {secs} s")]
pub struct RetryAfter {
    /// Whole seconds until the current window ends, rounded up, at least 1.
    pub secs: u64,
}

/// Default limits, taken from Galoy's defaults (their block durations after
/// exhaustion are not modelled: a fixed window simply runs out).
pub mod defaults {
    use super::RateLimit;

    /// Login-code requests per identifier (phone or email): 4 per hour.
    pub const CODE_REQUEST_PER_IDENTIFIER: RateLimit = RateLimit::per_secs(4, 60 * 60);
    /// Login-code requests per client IP: 16 per hour.
    pub const CODE_REQUEST_PER_IP: RateLimit = RateLimit::per_secs(16, 60 * 60);
    /// Failed logins (wrong code) per identifier: 8 per 20 minutes.
    pub const FAILED_LOGIN_PER_IDENTIFIER: RateLimit = RateLimit::per_secs(8, 20 * 60);
    /// Failed logins (wrong code) per client IP: 20 per 6 hours.
    pub const FAILED_LOGIN_PER_IP: RateLimit = RateLimit::per_secs(20, 6 * 60 * 60);
    /// Requests authenticated by one API key: 120 per minute.
    pub const API_KEY_REQUESTS: RateLimit = RateLimit::per_secs(120, 60);
    /// Invoices anyone may ask for on a user's behalf (no login: `…OnBehalfOfRecipient`,
    /// Lightning addresses), and withdraw-link attempts, per client IP: 600 per minute (a
    /// wallet service pays many addresses from few addresses of its own).
    pub const PUBLIC_LIGHTNING_PER_IP: RateLimit = RateLimit::per_secs(600, 60);
    /// Wrong operator keys per client IP: 10 per 15 minutes. There is no global cap: it would
    /// let anyone lock the operator out, and a 256-bit key is not guessed from many addresses.
    pub const ADMIN_KEY_FAILURES_PER_IP: RateLimit = RateLimit::per_secs(10, 15 * 60);
}

#[derive(Debug)]
struct Window {
    start: Instant,
    window: Duration,
    count: u32,
}

impl Window {
    fn elapsed(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.start)
    }

    fn expired(&self, now: Instant) -> bool {
        self.elapsed(now) >= self.window
    }

    fn remaining(&self, now: Instant) -> Duration {
        self.window.saturating_sub(self.elapsed(now))
    }

    fn retry_after(&self, now: Instant) -> RetryAfter {
        let rem = self.remaining(now);
        let secs = rem.as_secs() + u64::from(rem.subsec_nanos() > 0);
        RetryAfter { secs: secs.max(1) }
    }
}

#[derive(Debug, Default)]
struct Inner {
    map: HashMap<String, Window>,
    /// Calls to `check` since the last periodic prune.
    since_prune: u64,
}

impl Inner {
    fn prune_expired(&mut self, now: Instant) {
        self.map.retain(|_, w| !w.expired(now));
    }

    /// Make room for one more key under `cap`.
    fn make_room(&mut self, cap: usize, now: Instant) {
        if self.map.len() < cap {
            return;
        }
        self.prune_expired(now);
        if self.map.len() < cap {
            return;
        }
        // Still full of live windows: evict those closest to expiring, down
        // to 90% of the cap so this does not run on every new key.
        let target = cap - cap / 10;
        let target = target.min(cap.saturating_sub(1));
        let excess = self.map.len().saturating_sub(target);
        if excess == 0 {
            return;
        }
        let mut by_remaining: Vec<(Duration, String)> =
            self.map.iter().map(|(k, w)| (w.remaining(now), k.clone())).collect();
        if excess < by_remaining.len() {
            by_remaining.select_nth_unstable_by_key(excess, |(rem, _)| *rem);
        }
        for (_, key) in by_remaining.into_iter().take(excess) {
            self.map.remove(&key);
        }
    }
}

/// Fixed-window rate limiter keyed by strings. Cheap to share (`Send + Sync`).
#[derive(Debug)]
pub struct RateLimiter {
    inner: Mutex<Inner>,
    max_entries: usize,
}

impl Default for RateLimiter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimiter {
    /// A limiter that tracks at most [`DEFAULT_MAX_ENTRIES`] keys.
    pub fn new() -> Self {
        Self::with_max_entries(DEFAULT_MAX_ENTRIES)
    }

    /// A limiter that tracks at most `max_entries` keys (at least 1).
    pub fn with_max_entries(max_entries: usize) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            max_entries: max_entries.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map inconsistent
        // in a way that matters for counting, so recover from poisoning.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Count one attempt for `key`; `Err` when the limit is already reached
    /// (the refused attempt is not counted).
    pub fn check(&self, key: &str, limit: RateLimit, now: Instant) -> Result<(), RetryAfter> {
        let mut inner = self.lock();
        inner.since_prune += 1;
        if inner.since_prune >= PRUNE_EVERY {
            inner.since_prune = 0;
            inner.prune_expired(now);
        }
        if let Some(w) = inner.map.get_mut(key) {
            if w.expired(now) {
                *w = Window {
                    start: now,
                    window: limit.window,
                    count: 0,
                };
            } else {
                // Follow the caller's current window length for this key.
                w.window = limit.window;
            }
            if w.count >= limit.max {
                return Err(w.retry_after(now));
            }
            w.count += 1;
            return Ok(());
        }
        let w = Window {
            start: now,
            window: limit.window,
            count: 0,
        };
        if limit.max == 0 {
            return Err(w.retry_after(now));
        }
        inner.make_room(self.max_entries, now);
        inner.map.insert(key.to_owned(), Window { count: 1, ..w });
        Ok(())
    }

    /// Whether the next [`check`](Self::check) for `key` would be refused,
    /// without counting anything. Useful for "failed attempts" rules: peek
    /// before verifying, and `check` only when the attempt failed.
    pub fn peek(&self, key: &str, limit: RateLimit, now: Instant) -> Result<(), RetryAfter> {
        let inner = self.lock();
        match inner.map.get(key) {
            Some(w) if !w.expired(now) => {
                if w.count >= limit.max {
                    let w = Window {
                        window: limit.window,
                        ..*w
                    };
                    Err(w.retry_after(now))
                } else {
                    Ok(())
                }
            }
            _ if limit.max == 0 => Err(Window {
                start: now,
                window: limit.window,
                count: 0,
            }
            .retry_after(now)),
            _ => Ok(()),
        }
    }

    /// Forget `key`'s window (for example after a successful login).
    pub fn reset(&self, key: &str) {
        self.lock().map.remove(key);
    }

    /// Drop every expired window now.
    pub fn prune(&self, now: Instant) {
        self.lock().prune_expired(now);
    }

    /// Number of keys currently tracked (including not-yet-pruned expired ones).
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether no key is tracked.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const L3: RateLimit = RateLimit::per_secs(3, 60);

    #[test]
    fn is_send_sync() {
        fn assert<T: Send + Sync>() {}
        assert::<RateLimiter>();
    }

    #[test]
    fn counts_up_to_max_then_refuses() {
        let rl = RateLimiter::new();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(rl.check("k", L3, t).is_ok());
        }
        assert_eq!(rl.check("k", L3, t), Err(RetryAfter { secs: 60 }));
        // Refused attempts are not counted and keep being refused.
        assert!(rl.check("k", L3, t + Duration::from_secs(10)).is_err());
        // Other keys are independent.
        assert!(rl.check("other", L3, t).is_ok());
    }

    #[test]
    fn window_resets() {
        let rl = RateLimiter::new();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(rl.check("k", L3, t).is_ok());
        }
        assert!(rl.check("k", L3, t + Duration::from_millis(59_999)).is_err());
        assert!(rl.check("k", L3, t + Duration::from_secs(60)).is_ok());
        assert!(rl.check("k", L3, t + Duration::from_secs(61)).is_ok());
        assert!(rl.check("k", L3, t + Duration::from_secs(62)).is_ok());
        assert!(rl.check("k", L3, t + Duration::from_secs(63)).is_err());
    }

    #[test]
    fn retry_after_is_rounded_up_and_at_least_one() {
        let rl = RateLimiter::new();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(rl.check("k", L3, t).is_ok());
        }
        let at = |ms| t + Duration::from_millis(ms);
        assert_eq!(rl.check("k", L3, at(0)), Err(RetryAfter { secs: 60 }));
        assert_eq!(rl.check("k", L3, at(500)), Err(RetryAfter { secs: 60 }));
        assert_eq!(rl.check("k", L3, at(1_000)), Err(RetryAfter { secs: 59 }));
        assert_eq!(rl.check("k", L3, at(58_001)), Err(RetryAfter { secs: 2 }));
        assert_eq!(rl.check("k", L3, at(59_999)), Err(RetryAfter { secs: 1 }));
        assert_eq!(rl.peek("k", L3, at(59_999)), Err(RetryAfter { secs: 1 }));
    }

    #[test]
    fn zero_max_refuses_everything() {
        let rl = RateLimiter::new();
        let t = Instant::now();
        let none = RateLimit::per_secs(0, 30);
        assert_eq!(rl.peek("k", none, t), Err(RetryAfter { secs: 30 }));
        assert_eq!(rl.check("k", none, t), Err(RetryAfter { secs: 30 }));
        assert!(rl.is_empty());
        let zero_window = RateLimit::new(0, Duration::ZERO);
        assert_eq!(rl.check("k", zero_window, t), Err(RetryAfter { secs: 1 }));
    }

    #[test]
    fn peek_does_not_count() {
        let rl = RateLimiter::new();
        let t = Instant::now();
        for _ in 0..10 {
            assert!(rl.peek("k", L3, t).is_ok());
        }
        assert!(rl.is_empty());
        for _ in 0..3 {
            assert!(rl.check("k", L3, t).is_ok());
        }
        assert!(rl.peek("k", L3, t).is_err());
        assert!(rl.peek("k", L3, t + Duration::from_secs(60)).is_ok());
    }

    #[test]
    fn reset_forgets_key() {
        let rl = RateLimiter::new();
        let t = Instant::now();
        for _ in 0..3 {
            assert!(rl.check("k", L3, t).is_ok());
        }
        assert!(rl.check("k", L3, t).is_err());
        rl.reset("k");
        assert!(rl.check("k", L3, t).is_ok());
        rl.reset("never-seen");
    }

    #[test]
    fn periodic_pruning_drops_expired_windows() {
        let rl = RateLimiter::new();
        let t = Instant::now();
        let short = RateLimit::per_secs(1, 1);
        for i in 0..500 {
            assert!(rl.check(&format!("old:{i}"), short, t).is_ok());
        }
        assert_eq!(rl.len(), 500);
        let later = t + Duration::from_secs(5);
        for i in 0..PRUNE_EVERY {
            // Only the first 30 of these succeed; the count is what matters here.
            let _ = rl.check(&format!("new:{}", i % 10), L3, later);
        }
        assert_eq!(rl.len(), 10);
        rl.prune(later + Duration::from_secs(3600));
        assert!(rl.is_empty());
    }

    #[test]
    fn hard_cap_bounds_memory() {
        let cap = 100;
        let rl = RateLimiter::with_max_entries(cap);
        let t = Instant::now();
        let long = RateLimit::per_secs(5, 3600);
        for i in 0..10_000u64 {
            let now = t + Duration::from_millis(i);
            assert!(rl.check(&format!("k:{i}"), long, now).is_ok());
            assert!(rl.len() <= cap);
        }
        // The most recent keys survive eviction and keep their counts.
        let now = t + Duration::from_millis(10_000);
        for _ in 0..4 {
            assert!(rl.check("k:9999", long, now).is_ok());
        }
        assert!(rl.check("k:9999", long, now).is_err());
    }

    #[test]
    fn hard_cap_prefers_pruning_expired() {
        let rl = RateLimiter::with_max_entries(10);
        let t = Instant::now();
        let short = RateLimit::per_secs(1, 1);
        let long = RateLimit::per_secs(1, 3600);
        for i in 0..5 {
            assert!(rl.check(&format!("live:{i}"), long, t).is_ok());
        }
        for i in 0..5 {
            assert!(rl.check(&format!("dead:{i}"), short, t).is_ok());
        }
        assert_eq!(rl.len(), 10);
        let later = t + Duration::from_secs(2);
        assert!(rl.check("fresh", long, later).is_ok());
        assert_eq!(rl.len(), 6);
        for i in 0..5 {
            assert!(rl.check(&format!("live:{i}"), long, later).is_err());
        }
    }

    #[test]
    fn cap_of_one_works() {
        let rl = RateLimiter::with_max_entries(0);
        let t = Instant::now();
        assert!(rl.check("a", L3, t).is_ok());
        assert!(rl.check("b", L3, t).is_ok());
        assert_eq!(rl.len(), 1);
    }

    #[test]
    fn defaults_match_galoy() {
        use defaults::*;
        assert_eq!(CODE_REQUEST_PER_IDENTIFIER, RateLimit::per_secs(4, 3600));
        assert_eq!(CODE_REQUEST_PER_IP, RateLimit::per_secs(16, 3600));
        assert_eq!(FAILED_LOGIN_PER_IDENTIFIER, RateLimit::per_secs(8, 1200));
        assert_eq!(FAILED_LOGIN_PER_IP, RateLimit::per_secs(20, 21_600));
        assert_eq!(API_KEY_REQUESTS, RateLimit::per_secs(120, 60));
    }
}
