//! Rate limits kept by the store: login codes, failed logins and operator keys.
//!
//! These are the limits an attacker gains from resetting or racing: each attempt is counted
//! by one atomic conditional increment in the database ([`Store::hit_window`]), so the cap
//! holds exactly under concurrency, across restarts and between nodes. Rules that count
//! *failures* count every attempt up front — a reservation — and give successes back
//! ([`StoredLimits::release`]); counting only after a failure would let every attempt in
//! flight pass the check first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flash_store::{Store, WindowHit};

use crate::ratelimit::RateLimit;
use crate::AuthError;

/// Expired windows are deleted once every this many counts (per service instance).
const SWEEP_EVERY_COUNTS: u64 = 1024;

/// Attempts counted in one or more windows, to be given back if they turn out not to count.
#[must_use = "a reservation is kept unless released"]
pub(crate) struct Counted(Vec<(String, i64)>);

/// The store-kept windows, with a sweep of expired ones every [`SWEEP_EVERY_COUNTS`] counts.
#[derive(Clone)]
pub(crate) struct StoredLimits {
    store: Store,
    counts: Arc<AtomicU64>,
}

fn window_ms(limit: RateLimit) -> i64 {
    i64::try_from(limit.window.as_millis()).unwrap_or(i64::MAX)
}

impl StoredLimits {
    pub(crate) fn new(store: Store) -> StoredLimits {
        StoredLimits {
            store,
            counts: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Counts one attempt under every rule, or under none: when a rule's window is full the
    /// attempts already counted are given back and the answer is [`AuthError::RateLimited`].
    pub(crate) async fn count(&self, rules: &[(String, RateLimit)]) -> Result<Counted, AuthError> {
        self.sweep().await;
        let mut counted = Counted(Vec::with_capacity(rules.len()));
        for (bucket, limit) in rules {
            let hit = self
                .store
                .hit_window(bucket, i64::from(limit.max), window_ms(*limit))
                .await;
            match hit {
                Ok(WindowHit::Counted { ends_at_ms }) => counted.0.push((bucket.clone(), ends_at_ms)),
                Ok(WindowHit::Refused { ends_at_ms }) => {
                    self.release(counted).await;
                    let wait_ms = ends_at_ms.saturating_sub(self.store.now_ms()).max(1);
                    let secs = u64::try_from(wait_ms.saturating_add(999) / 1000).unwrap_or(1);
                    return Err(AuthError::RateLimited { retry_after_secs: secs });
                }
                Err(e) => {
                    self.release(counted).await;
                    return Err(e.into());
                }
            }
        }
        Ok(counted)
    }

    /// Gives back attempts that did not count (a success, or our own failure to decide).
    /// Bookkeeping only: if the store fails here the attempt stays counted, which errs on the
    /// safe side, and the request is not failed for it.
    pub(crate) async fn release(&self, counted: Counted) {
        for (bucket, ends_at_ms) in counted.0 {
            if let Err(e) = self.store.release_window(&bucket, ends_at_ms).await {
                tracing::warn!(error = %e, bucket, "could not give back a rate-limit count");
            }
        }
    }

    /// Deletes expired windows once every [`SWEEP_EVERY_COUNTS`] counts, so the table holds about
    /// the windows still running.
    async fn sweep(&self) {
        if self.counts.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY_COUNTS != SWEEP_EVERY_COUNTS - 1 {
            return;
        }
        match self.store.prune_windows().await {
            Ok(n) => tracing::debug!(removed = n, "pruned expired rate-limit windows"),
            Err(e) => tracing::warn!(error = %e, "could not prune expired rate-limit windows"),
        }
    }
}
