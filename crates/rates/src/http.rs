//! Public BTC price APIs over HTTP: Coinbase and CoinGecko, in their real response formats.

use std::sync::Arc;
use std::time::Duration;

use flash_core::ports::{BoxFuture, Clock};
use flash_core::price::Decimal;
use flash_core::{BtcPrice, FiatCurrency};
use serde::Deserialize;

use crate::{ConfigError, PriceProvider, ProviderError};

/// Coinbase's public API.
pub(crate) const COINBASE_URL: &str = "https://api.coinbase.com";
/// CoinGecko's public API.
pub(crate) const COINGECKO_URL: &str = "https://api.coingecko.com";

/// Largest answer read from a provider, bytes.
const MAX_BODY_BYTES: usize = 1024 * 1024;

fn client(timeout: Duration) -> Result<reqwest::Client, ConfigError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("flash/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ConfigError::Client(e.to_string()))
}

/// GETs `url` and returns the body, mapping failures to [`ProviderError`]s.
async fn get(client: &reqwest::Client, provider: &'static str, url: &str) -> Result<Vec<u8>, ProviderError> {
    let unavailable = |e: reqwest::Error| {
        if e.is_timeout() {
            ProviderError::Timeout(provider)
        } else {
            ProviderError::Unavailable {
                provider,
                reason: e.without_url().to_string(),
            }
        }
    };
    let response = client.get(url).send().await.map_err(unavailable)?;
    let status = response.status();
    if !status.is_success() {
        return Err(ProviderError::Unavailable {
            provider,
            reason: format!("HTTP {status}"),
        });
    }
    if response.content_length().is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ProviderError::BadResponse {
            provider,
            reason: "answer too large".into(),
        });
    }
    let body = response.bytes().await.map_err(unavailable)?;
    if body.len() > MAX_BODY_BYTES {
        return Err(ProviderError::BadResponse {
            provider,
            reason: "answer too large".into(),
        });
    }
    Ok(body.to_vec())
}

fn bad(provider: &'static str, reason: impl ToString) -> ProviderError {
    ProviderError::BadResponse {
        provider,
        reason: reason.to_string(),
    }
}

/// A JSON number's text (`64392.23`, `64392`, `6.439223e4`) as an exact non-negative decimal.
/// serde_json keeps integers exactly and prints other numbers in their shortest round-trip
/// form, which is the text the provider sent for any price with up to 15 significant digits.
pub fn parse_json_number(number: &serde_json::Number) -> Result<Decimal, flash_core::PriceError> {
    let text = number.to_string();
    let (base, exponent) = match text.split_once(['e', 'E']) {
        Some((b, e)) => {
            let e: i32 = e
                .trim_start_matches('+')
                .parse()
                .map_err(|_| flash_core::PriceError::InvalidDecimal(text.clone()))?;
            (b, e)
        }
        None => (text.as_str(), 0),
    };
    let decimal = Decimal::parse(base)?;
    if exponent >= 0 {
        decimal.shift_left(exponent.unsigned_abs())
    } else {
        decimal.shift_right(exponent.unsigned_abs())
    }
}

/// Coinbase: `GET /v2/exchange-rates?currency=BTC`, every currency's price of 1 BTC as a
/// decimal string. It carries no observation time: the price is taken as observed when it
/// arrived.
pub struct Coinbase {
    base_url: String,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

#[derive(Deserialize)]
struct CoinbaseAnswer {
    data: CoinbaseData,
}

#[derive(Deserialize)]
struct CoinbaseData {
    currency: String,
    rates: std::collections::HashMap<String, String>,
}

impl Coinbase {
    /// Coinbase at `base_url` (`https://api.coinbase.com`), with a per-request timeout.
    pub fn new(base_url: &str, timeout: Duration, clock: Arc<dyn Clock>) -> Result<Coinbase, ConfigError> {
        Ok(Coinbase {
            base_url: base_url.trim_end_matches('/').to_string(),
            client: client(timeout)?,
            clock,
        })
    }
}

impl PriceProvider for Coinbase {
    fn name(&self) -> &'static str {
        "coinbase"
    }

    fn fetch<'a>(&'a self, currency: &'a FiatCurrency) -> BoxFuture<'a, Result<BtcPrice, ProviderError>> {
        Box::pin(async move {
            let name = self.name();
            let url = format!("{}/v2/exchange-rates?currency=BTC", self.base_url);
            let body = get(&self.client, name, &url).await?;
            let answer: CoinbaseAnswer = serde_json::from_slice(&body).map_err(|e| bad(name, e))?;
            if answer.data.currency != "BTC" {
                return Err(bad(name, format!("rates of {:?}, not BTC", answer.data.currency)));
            }
            let Some(rate) = answer.data.rates.get(currency.code()) else {
                return Err(ProviderError::UnknownCurrency {
                    provider: name,
                    currency: currency.to_string(),
                });
            };
            BtcPrice::from_major_str(*currency, rate, self.clock.now_ms(), name).map_err(|e| bad(name, e))
        })
    }
}

/// CoinGecko: `GET /api/v3/simple/price?ids=bitcoin&vs_currencies=usd&include_last_updated_at=true`,
/// the price as a JSON number and the time CoinGecko last updated it (Unix seconds).
pub struct CoinGecko {
    base_url: String,
    client: reqwest::Client,
    clock: Arc<dyn Clock>,
}

impl CoinGecko {
    /// CoinGecko at `base_url` (`https://api.coingecko.com`), with a per-request timeout.
    pub fn new(base_url: &str, timeout: Duration, clock: Arc<dyn Clock>) -> Result<CoinGecko, ConfigError> {
        Ok(CoinGecko {
            base_url: base_url.trim_end_matches('/').to_string(),
            client: client(timeout)?,
            clock,
        })
    }
}

impl PriceProvider for CoinGecko {
    fn name(&self) -> &'static str {
        "coingecko"
    }

    fn fetch<'a>(&'a self, currency: &'a FiatCurrency) -> BoxFuture<'a, Result<BtcPrice, ProviderError>> {
        Box::pin(async move {
            let name = self.name();
            let vs = currency.code().to_ascii_lowercase();
            let url = format!(
                "{}/api/v3/simple/price?ids=bitcoin&vs_currencies={vs}&include_last_updated_at=true",
                self.base_url
            );
            let body = get(&self.client, name, &url).await?;
            let answer: serde_json::Value = serde_json::from_slice(&body).map_err(|e| bad(name, e))?;
            let bitcoin = answer
                .get("bitcoin")
                .and_then(|b| b.as_object())
                .ok_or_else(|| bad(name, "no \"bitcoin\" object"))?;
            let Some(price) = bitcoin.get(&vs) else {
                return Err(ProviderError::UnknownCurrency {
                    provider: name,
                    currency: currency.to_string(),
                });
            };
            let serde_json::Value::Number(price) = price else {
                return Err(bad(name, format!("{vs} is not a number")));
            };
            let observed_at_ms = match bitcoin.get("last_updated_at") {
                None => self.clock.now_ms(),
                Some(t) => t
                    .as_i64()
                    .and_then(|s| s.checked_mul(1000))
                    .ok_or_else(|| bad(name, "last_updated_at is not a time"))?,
            };
            let major = parse_json_number(price).map_err(|e| bad(name, e))?;
            BtcPrice::from_major(*currency, major, observed_at_ms, name).map_err(|e| bad(name, e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(text: &str) -> serde_json::Number {
        serde_json::from_str(text).expect("a JSON number")
    }

    #[test]
    fn json_numbers_parse_exactly() {
        let d = |m, s| Decimal { mantissa: m, scale: s };
        assert_eq!(parse_json_number(&number("64392.23")), Ok(d(6439223, 2)));
        assert_eq!(parse_json_number(&number("64392")), Ok(d(64392, 0)));
        assert_eq!(parse_json_number(&number("6.439223e4")), Ok(d(6439223, 2)));
        assert_eq!(parse_json_number(&number("2500000000")), Ok(d(2500000000, 0)));
        assert!(parse_json_number(&number("-1")).is_err());
    }
}
