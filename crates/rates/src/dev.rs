//! The `dev` source: fixed rates, observed "now".

use std::sync::Arc;

use flash_core::ports::{BoxFuture, Clock};
use flash_core::{BtcPrice, FiatCurrency, PriceSource, PriceSourceError};

/// Fixed rates: the embedded default. Named `dev` and reported as simulated.
pub struct DevPrices {
    rates: Vec<(FiatCurrency, String)>,
    clock: Arc<dyn Clock>,
}

impl DevPrices {
    /// The rates used when `[rates.dev]` is not configured: 1 BTC in major units.
    pub fn default_rates() -> &'static [(&'static str, &'static str)] {
        &[
            ("USD", "100000.00"),
            ("EUR", "92000.00"),
            ("GBP", "79000.00"),
            ("CAD", "137000.00"),
            ("CHF", "88000.00"),
            ("JPY", "15000000"),
            ("AUD", "152000.00"),
            ("BRL", "560000.00"),
            ("MXN", "1900000.00"),
            ("ZAR", "1850000.00"),
            ("KWD", "30700.000"),
        ]
    }

    /// Fixed rates (currency, price of 1 BTC in major units as a decimal string). Rates that
    /// do not parse are answered as errors when asked for (`build` checks them at start-up).
    pub fn new(rates: Vec<(FiatCurrency, String)>, clock: Arc<dyn Clock>) -> DevPrices {
        DevPrices { rates, clock }
    }

    /// The default rates.
    pub fn with_defaults(clock: Arc<dyn Clock>) -> DevPrices {
        let rates = Self::default_rates()
            .iter()
            .filter_map(|(c, p)| Some((FiatCurrency::new(c).ok()?, p.to_string())))
            .collect();
        DevPrices::new(rates, clock)
    }
}

impl PriceSource for DevPrices {
    fn name(&self) -> String {
        "dev".into()
    }

    fn is_simulated(&self) -> bool {
        true
    }

    fn currencies(&self) -> Vec<FiatCurrency> {
        self.rates.iter().map(|(c, _)| *c).collect()
    }

    fn price<'a>(&'a self, currency: &'a FiatCurrency) -> BoxFuture<'a, Result<BtcPrice, PriceSourceError>> {
        Box::pin(async move {
            let (_, major) = self
                .rates
                .iter()
                .find(|(c, _)| c == currency)
                .ok_or_else(|| PriceSourceError::UnknownCurrency(currency.to_string()))?;
            BtcPrice::from_major_str(*currency, major, self.clock.now_ms(), "dev")
                .map_err(|e| PriceSourceError::Unavailable(format!("dev rate for {currency}: {e}")))
        })
    }
}
