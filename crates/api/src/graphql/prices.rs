//! Galoy's price fields: `realtimePrice(currency)`, `currencyList`, and the display amounts
//! of a `Transaction` (at the price of now). Every number comes from `flash-core`'s
//! [`BtcPrice`] conversions; nothing here rounds on its own.

use async_graphql::{Context, InputValueError, InputValueResult, Object, Scalar, ScalarType, SimpleObject, Value, ID};
use flash_core::price::format_minor;
use flash_core::{BtcPrice, FiatCurrency};

use super::{gql, state};
use crate::error::ApiError;

/// Galoy's precision for the price of one sat (`base / 10^12`).
pub(crate) const SAT_PRICE_OFFSET: u32 = 12;
/// Galoy's precision for the price of one US cent (`base / 10^6`).
pub(crate) const USD_CENT_PRICE_OFFSET: u32 = 6;
/// Largest `SafeInt`: 2^53 - 1.
const SAFE_INT_MAX: u128 = (1 << 53) - 1;

/// An ISO 4217 code, as Galoy's `DisplayCurrency` scalar.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DisplayCurrency(pub String);

#[Scalar(name = "DisplayCurrency")]
impl ScalarType for DisplayCurrency {
    fn parse(value: Value) -> InputValueResult<Self> {
        match value {
            Value::String(s) => Ok(DisplayCurrency(s)),
            other => Err(InputValueError::expected_type(other)),
        }
    }
    fn to_value(&self) -> Value {
        Value::String(self.0.clone())
    }
}

/// A whole number between -(2^53) + 1 and 2^53 - 1, as Galoy's `SafeInt`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SafeInt(pub i64);

#[Scalar(name = "SafeInt")]
impl ScalarType for SafeInt {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(n) => n
                .as_i64()
                .filter(|v| v.unsigned_abs() <= SAFE_INT_MAX as u64)
                .map(SafeInt)
                .ok_or_else(|| InputValueError::custom("must be an integer within ±(2^53 - 1)")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }
    fn to_value(&self) -> Value {
        Value::Number(self.0.into())
    }
}

/// A price as `base / 10^offset`, with `offset` lowered until `base` fits a `SafeInt`.
fn base_offset(
    offset: u32,
    compute: impl Fn(u32) -> Result<u128, flash_core::PriceError>,
) -> async_graphql::Result<(i64, i32)> {
    let mut offset = offset;
    loop {
        let base = gql(compute(offset).map_err(ApiError::from))?;
        if base <= SAFE_INT_MAX {
            let base =
                i64::try_from(base).map_err(|_| ApiError::from(flash_core::PriceError::Overflow).to_graphql())?;
            let offset =
                i32::try_from(offset).map_err(|_| ApiError::from(flash_core::PriceError::Overflow).to_graphql())?;
            return Ok((base, offset));
        }
        if offset == 0 {
            return Err(ApiError::from(flash_core::PriceError::Overflow).to_graphql());
        }
        offset -= 1;
    }
}

/// Price of 1 sat in minor units of the display currency: `base / 10^offset`.
#[derive(SimpleObject)]
pub struct PriceOfOneSatInMinorUnit {
    base: SafeInt,
    /// Always `MINOR`.
    currency_unit: String,
    offset: i32,
}

/// Price of 1 US cent in minor units of the display currency: `base / 10^offset`.
#[derive(SimpleObject)]
pub struct PriceOfOneUsdCentInMinorUnit {
    base: SafeInt,
    /// Always `MINOR`.
    currency_unit: String,
    offset: i32,
}

/// Price of 1 sat in minor units of the display currency, for a transaction.
#[derive(SimpleObject)]
pub struct PriceOfOneSettlementMinorUnitInDisplayMinorUnit {
    base: SafeInt,
    /// Always `MINOR`.
    currency_unit: String,
    /// `base / 10^offset` as a decimal string.
    formatted_amount: String,
    offset: i32,
}

/// The price of 1 sat and of 1 US cent in a display currency.
pub struct RealtimePrice {
    price: BtcPrice,
    usd: BtcPrice,
}

#[Object]
impl RealtimePrice {
    /// `{currency}:{unix seconds}` of the observation.
    async fn id(&self) -> ID {
        ID(format!(
            "{}:{}",
            self.price.currency(),
            self.price.observed_at_ms() / 1000
        ))
    }
    /// When the provider observed the price, Unix seconds.
    async fn timestamp(&self) -> super::types::Timestamp {
        super::types::Timestamp(self.price.observed_at_ms() / 1000)
    }
    /// The display currency.
    async fn denominator_currency(&self) -> DisplayCurrency {
        DisplayCurrency(self.price.currency().to_string())
    }
    /// Price of 1 sat.
    async fn btc_sat_price(&self) -> async_graphql::Result<PriceOfOneSatInMinorUnit> {
        let (base, offset) = base_offset(SAT_PRICE_OFFSET, |o| self.price.sat_price(o))?;
        Ok(PriceOfOneSatInMinorUnit {
            base: SafeInt(base),
            currency_unit: "MINOR".into(),
            offset,
        })
    }
    /// Price of 1 US cent.
    async fn usd_cent_price(&self) -> async_graphql::Result<PriceOfOneUsdCentInMinorUnit> {
        let (base, offset) = base_offset(USD_CENT_PRICE_OFFSET, |o| {
            self.price.minor_per_other_minor(&self.usd, o)
        })?;
        Ok(PriceOfOneUsdCentInMinorUnit {
            base: SafeInt(base),
            currency_unit: "MINOR".into(),
            offset,
        })
    }
}

/// A currency the price source offers (`currencyList`).
#[derive(SimpleObject)]
#[graphql(name = "Currency")]
pub struct CurrencyGql {
    /// The ISO 4217 code.
    id: ID,
    /// Its English name.
    name: String,
    /// Its symbol.
    symbol: String,
    /// A flag emoji of the issuing country (empty when there is none).
    flag: String,
    /// Digits of the minor unit.
    fraction_digits: i32,
}

/// Names and symbols of the common currencies; others show their code.
const NAMES: &[(&str, &str, &str)] = &[
    ("USD", "US Dollar", "$"),
    ("EUR", "Euro", "€"),
    ("GBP", "British Pound", "£"),
    ("CAD", "Canadian Dollar", "$"),
    ("CHF", "Swiss Franc", "CHF"),
    ("JPY", "Japanese Yen", "¥"),
    ("AUD", "Australian Dollar", "$"),
    ("BRL", "Brazilian Real", "R$"),
    ("MXN", "Mexican Peso", "$"),
    ("ZAR", "South African Rand", "R"),
    ("KWD", "Kuwaiti Dinar", "KD"),
    ("BHD", "Bahraini Dinar", "BD"),
    ("SVC", "Salvadoran Colón", "₡"),
    ("GTQ", "Guatemalan Quetzal", "Q"),
    ("NGN", "Nigerian Naira", "₦"),
    ("KES", "Kenyan Shilling", "KSh"),
    ("INR", "Indian Rupee", "₹"),
];

fn describe(currency: FiatCurrency) -> CurrencyGql {
    let code = currency.code();
    let (name, symbol) = NAMES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, n, s)| (n.to_string(), s.to_string()))
        .unwrap_or_else(|| (code.to_string(), code.to_string()));
    // The first two letters of most codes are the issuer's ISO 3166 country (EU for the euro);
    // X… codes are supranational.
    let flag = if code.starts_with('X') {
        String::new()
    } else {
        code.chars()
            .take(2)
            .filter_map(|c| char::from_u32(0x1F1E6 + (u32::from(c) - u32::from('A'))))
            .collect()
    };
    CurrencyGql {
        id: ID(code.to_string()),
        name,
        symbol,
        flag,
        fraction_digits: i32::from(currency.exponent()),
    }
}

/// The price of 1 BTC in `currency` from the configured source, with typed errors.
pub(crate) async fn price_of(ctx: &Context<'_>, currency: &str) -> async_graphql::Result<BtcPrice> {
    let currency = gql(FiatCurrency::new(currency).map_err(ApiError::from))?;
    gql(state(ctx).prices.price(&currency).await.map_err(ApiError::from))
}

/// The display fields of one transaction, at the price of now.
pub(crate) struct DisplayAmounts {
    /// Signed amount in major units.
    pub amount: String,
    /// Fee in major units.
    pub fee: String,
    /// The display currency.
    pub currency: String,
    /// The price of one sat.
    pub price: PriceOfOneSettlementMinorUnitInDisplayMinorUnit,
}

/// Display amounts of `amount` and `fee` satoshis in US dollars, at the price of now.
pub(crate) async fn display_amounts(ctx: &Context<'_>, amount: i64, fee: i64) -> async_graphql::Result<DisplayAmounts> {
    let price = price_of(ctx, "USD").await?;
    let currency = price.currency();
    let amount = gql(price.fiat_for_sats(amount).map_err(ApiError::from))?;
    let fee = gql(price.fiat_for_sats(fee).map_err(ApiError::from))?;
    let (base, offset) = base_offset(SAT_PRICE_OFFSET, |o| price.sat_price(o))?;
    Ok(DisplayAmounts {
        amount: format_minor(amount, currency),
        fee: format_minor(fee, currency),
        currency: currency.to_string(),
        price: PriceOfOneSettlementMinorUnitInDisplayMinorUnit {
            base: SafeInt(base),
            currency_unit: "MINOR".into(),
            formatted_amount: decimal_string(base, offset),
            offset,
        },
    })
}

/// `base / 10^offset` as a decimal string.
fn decimal_string(base: i64, offset: i32) -> String {
    let digits = base.unsigned_abs().to_string();
    let offset = usize::try_from(offset).unwrap_or(0);
    if offset == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = offset + 1);
    let (int, frac) = padded.split_at(padded.len() - offset);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() {
        int.to_string()
    } else {
        format!("{int}.{frac}")
    }
}

/// `realtimePrice` and `currencyList`.
#[derive(Default)]
pub struct PricesQuery;

#[Object]
impl PricesQuery {
    /// Returns 1 Sat and 1 Usd Cent price for the given currency.
    async fn realtime_price(
        &self,
        ctx: &Context<'_>,
        #[graphql(default_with = "DisplayCurrency(\"USD\".into())")] currency: DisplayCurrency,
    ) -> async_graphql::Result<RealtimePrice> {
        let price = price_of(ctx, &currency.0).await?;
        let usd = if price.currency() == FiatCurrency::usd() {
            price.clone()
        } else {
            price_of(ctx, "USD").await?
        };
        Ok(RealtimePrice { price, usd })
    }

    /// The display currencies the price source offers.
    async fn currency_list(&self, ctx: &Context<'_>) -> Vec<CurrencyGql> {
        state(ctx).prices.currencies().into_iter().map(describe).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings() {
        assert_eq!(decimal_string(64_392_230_000, 12), "0.06439223");
        assert_eq!(decimal_string(1_000_000, 6), "1");
        assert_eq!(decimal_string(5, 0), "5");
    }

    #[test]
    fn flags_and_names() {
        let usd = describe(FiatCurrency::usd());
        assert_eq!(
            (usd.name.as_str(), usd.symbol.as_str(), usd.flag.as_str()),
            ("US Dollar", "$", "🇺🇸")
        );
        let jpy = describe(FiatCurrency::new("JPY").expect("JPY"));
        assert_eq!(jpy.fraction_digits, 0);
        assert_eq!(describe(FiatCurrency::new("XAF").expect("XAF")).flag, "");
    }
}
