//! [`CachedPrices`]: providers in order, behind a per-currency cache.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flash_core::ports::{BoxFuture, Clock};
use flash_core::{BtcPrice, FiatCurrency, PriceSource, PriceSourceError};

use crate::{PriceProvider, ProviderError};

/// How [`CachedPrices`] reuses and trusts prices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachePolicy {
    /// A price fetched less than this long ago is answered from the cache, with no request.
    pub ttl: Duration,
    /// A price the provider observed longer ago than this is never used: a provider answering
    /// one is skipped like a failing one.
    pub max_age: Duration,
    /// Each provider request's time limit.
    pub timeout: Duration,
}

struct Cached {
    price: BtcPrice,
    fetched_at_ms: i64,
}

/// Price providers tried in order, with a cache per currency.
///
/// A read inside the TTL is answered from the cache. Otherwise each provider is asked in turn,
/// under the timeout; an error, a timeout or a price older than the maximum age moves on to the
/// next. When all fail, a cached price still within the maximum age is answered; else a typed
/// error. The answer's [`BtcPrice::provider`] names who answered.
pub struct CachedPrices {
    providers: Vec<Arc<dyn PriceProvider>>,
    currencies: Vec<FiatCurrency>,
    policy: CachePolicy,
    clock: Arc<dyn Clock>,
    cache: Mutex<HashMap<FiatCurrency, Cached>>,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl CachedPrices {
    /// `providers` in the order they are tried; `currencies` are those offered
    /// (`currencyList`).
    pub fn new(
        providers: Vec<Arc<dyn PriceProvider>>,
        currencies: Vec<FiatCurrency>,
        policy: CachePolicy,
        clock: Arc<dyn Clock>,
    ) -> CachedPrices {
        CachedPrices {
            providers,
            currencies,
            policy,
            clock,
            cache: Mutex::new(HashMap::new()),
        }
    }

    fn cached(&self, currency: &FiatCurrency, now_ms: i64, within_ttl: bool) -> Option<BtcPrice> {
        let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let entry = cache.get(currency)?;
        let fresh = now_ms.saturating_sub(entry.fetched_at_ms) < millis(self.policy.ttl);
        let young = entry.price.age_ms(now_ms) <= millis(self.policy.max_age);
        (young && (fresh || !within_ttl)).then(|| entry.price.clone())
    }

    async fn fetch(&self, currency: &FiatCurrency) -> Result<BtcPrice, PriceSourceError> {
        let mut errors: Vec<ProviderError> = Vec::new();
        let mut stale: Option<i64> = None;
        for provider in &self.providers {
            let answer = tokio::time::timeout(self.policy.timeout, provider.fetch(currency))
                .await
                .unwrap_or(Err(ProviderError::Timeout(provider.name())));
            match answer {
                Ok(price) => {
                    let now_ms = self.clock.now_ms();
                    let age_ms = price.age_ms(now_ms);
                    if age_ms > millis(self.policy.max_age) {
                        tracing::warn!(provider = provider.name(), %currency, age_ms, "price too old, trying the next provider");
                        stale = Some(stale.map_or(age_ms, |s| s.min(age_ms)));
                        continue;
                    }
                    let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
                    cache.insert(
                        *currency,
                        Cached {
                            price: price.clone(),
                            fetched_at_ms: now_ms,
                        },
                    );
                    return Ok(price);
                }
                Err(e) => {
                    tracing::warn!(provider = provider.name(), %currency, error = %e, "price provider failed, trying the next");
                    errors.push(e);
                }
            }
        }
        if let Some(price) = self.cached(currency, self.clock.now_ms(), false) {
            tracing::warn!(%currency, provider = price.provider(), "every provider failed: answering the cached price");
            return Ok(price);
        }
        if stale.is_none()
            && !errors.is_empty()
            && errors
                .iter()
                .all(|e| matches!(e, ProviderError::UnknownCurrency { .. }))
        {
            return Err(PriceSourceError::UnknownCurrency(currency.to_string()));
        }
        if let Some(age_ms) = stale {
            if errors
                .iter()
                .all(|e| matches!(e, ProviderError::UnknownCurrency { .. }))
            {
                return Err(PriceSourceError::Stale { age_ms });
            }
        }
        let mut reasons: Vec<String> = errors.iter().map(ToString::to_string).collect();
        if let Some(age_ms) = stale {
            reasons.push(format!("the freshest price was {age_ms} ms old"));
        }
        let reasons = if reasons.is_empty() {
            "no provider".to_string()
        } else {
            reasons.join("; ")
        };
        Err(PriceSourceError::Unavailable(reasons))
    }
}

impl PriceSource for CachedPrices {
    fn name(&self) -> String {
        let names: Vec<&str> = self.providers.iter().map(|p| p.name()).collect();
        names.join(",")
    }

    fn is_simulated(&self) -> bool {
        false
    }

    fn currencies(&self) -> Vec<FiatCurrency> {
        self.currencies.clone()
    }

    fn price<'a>(&'a self, currency: &'a FiatCurrency) -> BoxFuture<'a, Result<BtcPrice, PriceSourceError>> {
        Box::pin(async move {
            if let Some(price) = self.cached(currency, self.clock.now_ms(), true) {
                return Ok(price);
            }
            self.fetch(currency).await
        })
    }
}
