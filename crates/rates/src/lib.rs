//! Price sources for Flash: adapters of `flash-core`'s [`PriceSource`] port.
//!
//! - [`DevPrices`]: fixed rates, the embedded default. Its name is `dev` and it reports itself
//!   as simulated, so `/healthz` lists it beside the other simulators.
//! - [`Coinbase`] and [`CoinGecko`]: public BTC price APIs over HTTP ([`PriceProvider`]s).
//! - [`CachedPrices`]: providers in order behind a per-currency cache with a TTL, a maximum
//!   age and fallback to the next provider on an error, a timeout or a stale answer.
//!
//! Prices are parsed from the providers' decimal text into exact [`BtcPrice`]s; no floats.
//! [`RatesConfig`] is the `[rates]` section of `flashd`'s configuration and [`build`] turns it
//! into a source.

mod cached;
mod dev;
mod http;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use flash_core::ports::{BoxFuture, Clock};
use flash_core::{BtcPrice, FiatCurrency};
use serde::Deserialize;

pub use cached::{CachePolicy, CachedPrices};
pub use dev::DevPrices;
pub use http::{parse_json_number, CoinGecko, Coinbase};

/// Why one provider could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// The provider does not price this currency.
    #[error("{provider} has no price for {currency}")]
    UnknownCurrency {
        /// The provider.
        provider: &'static str,
        /// The currency asked for.
        currency: String,
    },
    /// No answer in time.
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The request failed or the provider answered with an error status.
    #[error("{provider} unavailable: {reason}")]
    Unavailable {
        /// The provider.
        provider: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The answer could not be understood.
    #[error("{provider} sent a bad answer: {reason}")]
    BadResponse {
        /// The provider.
        provider: &'static str,
        /// What was wrong with it.
        reason: String,
    },
}

/// A public source of BTC prices, one request per question.
pub trait PriceProvider: Send + Sync {
    /// Its name, as the prices it returns carry (`coinbase`, `coingecko`).
    fn name(&self) -> &'static str;
    /// The price of 1 BTC in `currency`, as the provider last observed it.
    fn fetch<'a>(&'a self, currency: &'a FiatCurrency) -> BoxFuture<'a, Result<BtcPrice, ProviderError>>;
}

/// Which source `[rates]` names.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SourceConfig {
    /// `source = "dev"`: the fixed rates.
    Named(String),
    /// `source = ["coinbase", "coingecko"]`: these providers, tried in this order.
    Providers(Vec<String>),
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig::Named("dev".into())
    }
}

/// `[rates]`: where prices come from.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RatesConfig {
    /// `"dev"` (default) or a list of providers in the order they are tried: `coinbase`,
    /// `coingecko`.
    pub source: SourceConfig,
    /// How long a fetched price is reused before asking again, seconds.
    pub ttl_secs: u64,
    /// The oldest price ever used, seconds (by the provider's own observation time).
    pub max_age_secs: u64,
    /// Per-request timeout, milliseconds.
    pub timeout_ms: u64,
    /// The currencies offered (`currencyList`); the dev source offers those it has rates for.
    pub currencies: Vec<String>,
    /// The dev rates: code → price of 1 BTC in major units (`USD = "100000.00"`).
    pub dev: BTreeMap<String, String>,
    /// Coinbase's base URL.
    pub coinbase_url: String,
    /// CoinGecko's base URL.
    pub coingecko_url: String,
}

impl Default for RatesConfig {
    fn default() -> Self {
        RatesConfig {
            source: SourceConfig::default(),
            ttl_secs: 60,
            max_age_secs: 900,
            timeout_ms: 3_000,
            currencies: ["USD", "EUR", "GBP", "CAD", "CHF", "JPY", "AUD", "BRL", "MXN", "ZAR"]
                .map(String::from)
                .to_vec(),
            dev: DevPrices::default_rates()
                .iter()
                .map(|(c, p)| (c.to_string(), p.to_string()))
                .collect(),
            coinbase_url: http::COINBASE_URL.into(),
            coingecko_url: http::COINGECKO_URL.into(),
        }
    }
}

/// Why `[rates]` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An unknown provider name.
    #[error("unknown price provider {0:?} (known: dev, coinbase, coingecko)")]
    UnknownProvider(String),
    /// A bad currency code or dev rate.
    #[error("rates: {0}")]
    Invalid(String),
    /// The HTTP client could not be built.
    #[error("rates HTTP client: {0}")]
    Client(String),
}

/// Builds the source `[rates]` describes.
pub fn build(config: &RatesConfig, clock: Arc<dyn Clock>) -> Result<Arc<dyn flash_core::PriceSource>, ConfigError> {
    let names = match &config.source {
        SourceConfig::Named(name) if name == "dev" => {
            let mut rates = Vec::new();
            for (code, major) in &config.dev {
                let currency = FiatCurrency::new(code).map_err(|e| ConfigError::Invalid(e.to_string()))?;
                // Checked here so a bad rate fails at start-up, not on the first request.
                BtcPrice::from_major_str(currency, major, 0, "dev")
                    .map_err(|e| ConfigError::Invalid(format!("dev rate for {code}: {e}")))?;
                rates.push((currency, major.clone()));
            }
            return Ok(Arc::new(DevPrices::new(rates, clock)));
        }
        SourceConfig::Named(name) => vec![name.clone()],
        SourceConfig::Providers(names) => names.clone(),
    };
    if names.is_empty() {
        return Err(ConfigError::Invalid("source lists no provider".into()));
    }
    let timeout = Duration::from_millis(config.timeout_ms);
    let mut providers: Vec<Arc<dyn PriceProvider>> = Vec::new();
    for name in names {
        providers.push(match name.as_str() {
            "coinbase" => Arc::new(Coinbase::new(&config.coinbase_url, timeout, clock.clone())?),
            "coingecko" => Arc::new(CoinGecko::new(&config.coingecko_url, timeout, clock.clone())?),
            other => return Err(ConfigError::UnknownProvider(other.to_string())),
        });
    }
    let currencies = config
        .currencies
        .iter()
        .map(|c| FiatCurrency::new(c).map_err(|e| ConfigError::Invalid(e.to_string())))
        .collect::<Result<Vec<_>, _>>()?;
    let policy = CachePolicy {
        ttl: Duration::from_secs(config.ttl_secs),
        max_age: Duration::from_secs(config.max_age_secs),
        timeout,
    };
    Ok(Arc::new(CachedPrices::new(providers, currencies, policy, clock)))
}
