//! Prices of bitcoin in fiat currencies, and the [`PriceSource`] port that supplies them.
//!
//! A [`BtcPrice`] is exact: the price of 1 BTC in the currency's *minor units* (cents for USD,
//! yen for JPY, fils for KWD) as an integer mantissa and a decimal scale, so `6439223` cents at
//! scale `0` and `643922345` at scale `2` (= 6439223.45 cents) are both representable. There
//! are no floats anywhere.
//!
//! Every conversion between fiat and satoshis is here, with one rounding rule each:
//!
//! - fiat → sats ([`BtcPrice::sats_for_fiat`]) rounds **up**: a merchant asking for an amount of
//!   fiat is never paid less than it is worth at the locked price;
//! - sats → fiat ([`BtcPrice::fiat_for_sats`]) rounds **to nearest, half away from zero**: it
//!   is for display only and never decides what is owed.
//!
//! Arithmetic is checked (`u128`/`i128`); an overflow is a [`PriceError`], never a wrap.

use std::fmt;
use std::str::FromStr;

use crate::ports::BoxFuture;
use crate::Sats;

/// Satoshis in one bitcoin.
pub const SATS_PER_BTC: u128 = 100_000_000;

/// Largest decimal scale a price may carry (digits after the point, in minor units).
pub const MAX_PRICE_SCALE: u32 = 18;

/// Why a price could not be built, parsed or used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    /// Not an ISO 4217 code (three uppercase ASCII letters).
    #[error("not a currency code: {0:?}")]
    InvalidCurrency(String),
    /// Not a decimal number this can use (empty, signs, exponents, too many digits).
    #[error("not a decimal price: {0:?}")]
    InvalidDecimal(String),
    /// Zero or negative: a price must be positive.
    #[error("a price must be positive")]
    NotPositive,
    /// A computation would overflow.
    #[error("amount out of range")]
    Overflow,
    /// Negative fiat or satoshi amount where only non-negative is meaningful.
    #[error("amount must not be negative")]
    Negative,
}

/// An ISO 4217 currency code with its minor-unit exponent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FiatCurrency {
    code: [u8; 3],
    exponent: u8,
}

/// Currencies whose minor-unit exponent is not 2 (ISO 4217). Every other code uses 2.
const EXPONENTS: &[(&str, u8)] = &[
    ("JPY", 0),
    ("KRW", 0),
    ("VND", 0),
    ("CLP", 0),
    ("ISK", 0),
    ("PYG", 0),
    ("UGX", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("BHD", 3),
    ("KWD", 3),
    ("OMR", 3),
    ("JOD", 3),
    ("TND", 3),
    ("LYD", 3),
    ("IQD", 3),
];

impl FiatCurrency {
    /// A currency from its ISO 4217 code (three uppercase ASCII letters). The exponent comes
    /// from a small table of exceptions (JPY 0, KWD 3, …); every other code has 2.
    pub fn new(code: &str) -> Result<FiatCurrency, PriceError> {
        let bytes = code.as_bytes();
        let [a, b, c] = bytes else {
            return Err(PriceError::InvalidCurrency(code.to_string()));
        };
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(PriceError::InvalidCurrency(code.to_string()));
        }
        let exponent = EXPONENTS.iter().find(|(c, _)| *c == code).map(|(_, e)| *e).unwrap_or(2);
        Ok(FiatCurrency {
            code: [*a, *b, *c],
            exponent,
        })
    }

    /// US dollars.
    pub fn usd() -> FiatCurrency {
        FiatCurrency {
            code: *b"USD",
            exponent: 2,
        }
    }

    /// The three-letter code.
    pub fn code(&self) -> &str {
        // Built only from three ASCII uppercase letters.
        std::str::from_utf8(&self.code).unwrap_or("???")
    }

    /// Digits of the minor unit: 2 for USD (cents), 0 for JPY, 3 for KWD.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for FiatCurrency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for FiatCurrency {
    type Err = PriceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FiatCurrency::new(s)
    }
}

/// An exact non-negative decimal: `mantissa / 10^scale`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    /// The digits.
    pub mantissa: u128,
    /// How many of them are after the point.
    pub scale: u32,
}

impl Decimal {
    /// Parses `"64392.23"`, `"64392"`, `"0.5"`. No signs, exponents or separators; at most
    /// [`MAX_PRICE_SCALE`] digits after the point; trailing fractional zeros are dropped.
    pub fn parse(s: &str) -> Result<Decimal, PriceError> {
        let bad = || PriceError::InvalidDecimal(s.chars().take(40).collect());
        let (int, frac) = match s.split_once('.') {
            Some((i, f)) => (i, f),
            None => (s, ""),
        };
        if int.is_empty() || !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        if s.contains('.') && frac.is_empty() {
            return Err(bad());
        }
        let frac = frac.trim_end_matches('0');
        let scale = u32::try_from(frac.len()).map_err(|_| bad())?;
        if scale > MAX_PRICE_SCALE {
            return Err(bad());
        }
        let mut mantissa: u128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa
                .checked_mul(10)
                .and_then(|m| m.checked_add(u128::from(b - b'0')))
                .ok_or_else(bad)?;
        }
        Ok(Decimal { mantissa, scale })
    }

    /// Multiplies by `10^digits` exactly (moves the point right), keeping the scale minimal.
    pub fn shift_left(self, digits: u32) -> Result<Decimal, PriceError> {
        if self.scale >= digits {
            Ok(Decimal {
                mantissa: self.mantissa,
                scale: self.scale - digits,
            })
        } else {
            let up = pow10(digits - self.scale)?;
            Ok(Decimal {
                mantissa: self.mantissa.checked_mul(up).ok_or(PriceError::Overflow)?,
                scale: 0,
            })
        }
    }
}

impl Decimal {
    /// Divides by `10^digits` exactly (moves the point left); refuses a scale above
    /// [`MAX_PRICE_SCALE`].
    pub fn shift_right(self, digits: u32) -> Result<Decimal, PriceError> {
        let scale = self.scale.checked_add(digits).ok_or(PriceError::Overflow)?;
        if scale > MAX_PRICE_SCALE {
            return Err(PriceError::InvalidDecimal(format!("{} digits after the point", scale)));
        }
        Ok(Decimal {
            mantissa: self.mantissa,
            scale,
        })
    }
}

fn pow10(n: u32) -> Result<u128, PriceError> {
    10u128.checked_pow(n).ok_or(PriceError::Overflow)
}

/// `a / b` rounded up; `b > 0`.
fn div_ceil(a: u128, b: u128) -> u128 {
    a / b + u128::from(!a.is_multiple_of(b))
}

/// `a / b` rounded to nearest, halves away from zero; `b > 0`.
fn div_nearest(a: u128, b: u128) -> u128 {
    let (q, r) = (a / b, a % b);
    // r >= b - r  <=>  2r >= b, written so it cannot overflow.
    q + u128::from(r >= b - r)
}

/// The price of 1 BTC in a fiat currency, as observed by a provider at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BtcPrice {
    currency: FiatCurrency,
    /// Minor units of `currency` per BTC, times `10^scale`.
    mantissa: u128,
    scale: u32,
    observed_at_ms: i64,
    provider: String,
}

impl BtcPrice {
    /// A price from minor units per BTC as an exact decimal (`mantissa / 10^scale` cents per
    /// BTC for USD). Refuses zero and scales above [`MAX_PRICE_SCALE`].
    pub fn from_minor_units(
        currency: FiatCurrency,
        minor_per_btc: Decimal,
        observed_at_ms: i64,
        provider: impl Into<String>,
    ) -> Result<BtcPrice, PriceError> {
        if minor_per_btc.mantissa == 0 {
            return Err(PriceError::NotPositive);
        }
        if minor_per_btc.scale > MAX_PRICE_SCALE {
            return Err(PriceError::InvalidDecimal(format!("scale {}", minor_per_btc.scale)));
        }
        // Normalise: no trailing zeros in the fraction, so equal prices compare equal.
        let (mut mantissa, mut scale) = (minor_per_btc.mantissa, minor_per_btc.scale);
        while scale > 0 && mantissa % 10 == 0 {
            mantissa /= 10;
            scale -= 1;
        }
        Ok(BtcPrice {
            currency,
            mantissa,
            scale,
            observed_at_ms,
            provider: provider.into(),
        })
    }

    /// A price from the major-unit decimal string providers send (`"64392.23"` dollars per
    /// BTC).
    pub fn from_major_str(
        currency: FiatCurrency,
        major_per_btc: &str,
        observed_at_ms: i64,
        provider: impl Into<String>,
    ) -> Result<BtcPrice, PriceError> {
        BtcPrice::from_major(currency, Decimal::parse(major_per_btc)?, observed_at_ms, provider)
    }

    /// A price from major units per BTC as an exact decimal.
    pub fn from_major(
        currency: FiatCurrency,
        major_per_btc: Decimal,
        observed_at_ms: i64,
        provider: impl Into<String>,
    ) -> Result<BtcPrice, PriceError> {
        let minor = major_per_btc.shift_left(u32::from(currency.exponent()))?;
        BtcPrice::from_minor_units(currency, minor, observed_at_ms, provider)
    }

    /// The currency.
    pub fn currency(&self) -> FiatCurrency {
        self.currency
    }

    /// Minor units per BTC as an exact decimal.
    pub fn minor_per_btc(&self) -> Decimal {
        Decimal {
            mantissa: self.mantissa,
            scale: self.scale,
        }
    }

    /// When the provider observed it, Unix milliseconds.
    pub fn observed_at_ms(&self) -> i64 {
        self.observed_at_ms
    }

    /// Who supplied it (`dev`, `coinbase`, `coingecko`, …).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// Age at `now_ms`, milliseconds (0 if observed "in the future").
    pub fn age_ms(&self, now_ms: i64) -> i64 {
        now_ms.saturating_sub(self.observed_at_ms).max(0)
    }

    /// Satoshis to ask for `minor` units of fiat, rounded **up**: the payer never pays less
    /// than the fiat amount at this price. `minor` must be non-negative.
    pub fn sats_for_fiat(&self, minor: i64) -> Result<Sats, PriceError> {
        let minor = u128::try_from(minor).map_err(|_| PriceError::Negative)?;
        // sats = minor * 1e8 / (mantissa / 10^scale) = minor * 1e8 * 10^scale / mantissa
        let numerator = minor
            .checked_mul(SATS_PER_BTC)
            .and_then(|n| n.checked_mul(pow10(self.scale).ok()?))
            .ok_or(PriceError::Overflow)?;
        let sats = div_ceil(numerator, self.mantissa);
        let sats = i64::try_from(sats).map_err(|_| PriceError::Overflow)?;
        Sats::non_negative(sats).map_err(|_| PriceError::Overflow)
    }

    /// Minor units of fiat that `sats` are worth, rounded **to nearest** (halves away from
    /// zero). Signed: a send shows negative. For display only.
    pub fn fiat_for_sats(&self, sats: i64) -> Result<i64, PriceError> {
        let magnitude = u128::from(sats.unsigned_abs());
        // minor = sats * mantissa / (1e8 * 10^scale)
        let numerator = magnitude.checked_mul(self.mantissa).ok_or(PriceError::Overflow)?;
        let denominator = SATS_PER_BTC
            .checked_mul(pow10(self.scale)?)
            .ok_or(PriceError::Overflow)?;
        let minor = i64::try_from(div_nearest(numerator, denominator)).map_err(|_| PriceError::Overflow)?;
        Ok(if sats < 0 { -minor } else { minor })
    }

    /// The price of one satoshi in minor units as `base / 10^offset`, `base` rounded to
    /// nearest (Galoy's `PriceOfOneSatInMinorUnit`).
    pub fn sat_price(&self, offset: u32) -> Result<u128, PriceError> {
        let numerator = self.mantissa.checked_mul(pow10(offset)?).ok_or(PriceError::Overflow)?;
        let denominator = SATS_PER_BTC
            .checked_mul(pow10(self.scale)?)
            .ok_or(PriceError::Overflow)?;
        Ok(div_nearest(numerator, denominator))
    }

    /// How many minor units of this price's currency one minor unit of `other`'s currency is
    /// worth, as `base / 10^offset` rounded to nearest (Galoy's `usdCentPrice`: `other` is the
    /// USD price).
    pub fn minor_per_other_minor(&self, other: &BtcPrice, offset: u32) -> Result<u128, PriceError> {
        // (self.m / 10^self.s) / (other.m / 10^other.s) * 10^offset
        let numerator = self
            .mantissa
            .checked_mul(pow10(other.scale)?)
            .and_then(|n| n.checked_mul(pow10(offset).ok()?))
            .ok_or(PriceError::Overflow)?;
        let denominator = other
            .mantissa
            .checked_mul(pow10(self.scale)?)
            .ok_or(PriceError::Overflow)?;
        Ok(div_nearest(numerator, denominator))
    }
}

/// Minor units as the major-unit decimal string: `-123` USD → `"-1.23"`, `5` JPY → `"5"`.
pub fn format_minor(minor: i64, currency: FiatCurrency) -> String {
    let exponent = u32::from(currency.exponent());
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    if exponent == 0 {
        return format!("{sign}{magnitude}");
    }
    let unit = 10u64.pow(exponent);
    format!(
        "{sign}{}.{:0width$}",
        magnitude / unit,
        magnitude % unit,
        width = exponent as usize
    )
}

/// BTCPay's rate string: the price of 1 BTC in major units, with the currency's minor digits
/// (rounded to nearest below a minor unit): `64392.23` for USD, `9876543` for JPY.
impl fmt::Display for BtcPrice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let minor = pow10(self.scale)
            .map(|d| div_nearest(self.mantissa, d))
            .ok()
            .and_then(|m| i64::try_from(m).ok());
        match minor {
            Some(minor) => f.write_str(&format_minor(minor, self.currency)),
            None => f.write_str("overflow"),
        }
    }
}

/// Why a price source could not answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceSourceError {
    /// No provider knows this currency.
    #[error("no price for {0}")]
    UnknownCurrency(String),
    /// Every provider failed or was stale; the last reason is given.
    #[error("no price available: {0}")]
    Unavailable(String),
    /// The newest price is older than the maximum age.
    #[error("the price is too old ({age_ms} ms)")]
    Stale {
        /// How old it is, milliseconds.
        age_ms: i64,
    },
}

/// Where prices come from: a fixed-rate `dev` source, or public providers over HTTP behind a
/// cache.
pub trait PriceSource: Send + Sync {
    /// A name for logs and `/healthz`: `dev` for the fixed-rate source.
    fn name(&self) -> String;
    /// True when the prices are made up (the `dev` source): `/healthz` lists it as simulated.
    fn is_simulated(&self) -> bool;
    /// The currencies it can price.
    fn currencies(&self) -> Vec<FiatCurrency>;
    /// The price of 1 BTC in `currency` now.
    fn price<'a>(&'a self, currency: &'a FiatCurrency) -> BoxFuture<'a, Result<BtcPrice, PriceSourceError>>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn usd(major: &str) -> BtcPrice {
        BtcPrice::from_major_str(FiatCurrency::usd(), major, 0, "t").expect("price")
    }

    #[test]
    fn currencies_are_validated_and_have_exponents() {
        assert_eq!(FiatCurrency::new("USD").map(|c| c.exponent()), Ok(2));
        assert_eq!(FiatCurrency::new("EUR").map(|c| c.exponent()), Ok(2));
        assert_eq!(FiatCurrency::new("JPY").map(|c| c.exponent()), Ok(0));
        assert_eq!(FiatCurrency::new("KWD").map(|c| c.exponent()), Ok(3));
        assert_eq!(FiatCurrency::new("BHD").map(|c| c.exponent()), Ok(3));
        for bad in ["usd", "US", "USDT", "U$D", "", "ÜSD"] {
            assert!(FiatCurrency::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decimals_parse_exactly() {
        assert_eq!(
            Decimal::parse("64392.23"),
            Ok(Decimal {
                mantissa: 6439223,
                scale: 2
            })
        );
        assert_eq!(Decimal::parse("64392.230"), Decimal::parse("64392.23"));
        assert_eq!(Decimal::parse("7"), Ok(Decimal { mantissa: 7, scale: 0 }));
        for bad in [
            "",
            ".5",
            "5.",
            "-1",
            "1e5",
            "1,000",
            "1.2.3",
            " 1",
            "0.1234567890123456789",
        ] {
            assert!(Decimal::parse(bad).is_err(), "{bad}");
        }
        assert!(Decimal::parse("1000000000000000000000000000000000000000").is_err());
    }

    #[test]
    fn display_is_btcpay_rate_string() {
        assert_eq!(usd("64392.23").to_string(), "64392.23");
        assert_eq!(usd("64392.2").to_string(), "64392.20");
        assert_eq!(usd("64392.235").to_string(), "64392.24");
        let jpy = BtcPrice::from_major_str(FiatCurrency::new("JPY").expect("JPY"), "9876543.4", 0, "t").expect("p");
        assert_eq!(jpy.to_string(), "9876543");
        let kwd = BtcPrice::from_major_str(FiatCurrency::new("KWD").expect("KWD"), "19800.5", 0, "t").expect("p");
        assert_eq!(kwd.to_string(), "19800.500");
        assert_eq!(format_minor(-5, FiatCurrency::usd()), "-0.05");
    }

    #[test]
    fn conversions_round_as_stated() {
        let p = usd("100000"); // 1 cent = 10 sats exactly
        assert_eq!(p.sats_for_fiat(100).map(Sats::get), Ok(1000));
        assert_eq!(p.fiat_for_sats(1000), Ok(100));
        let p = usd("64392.23");
        // $1.00 = 1_552.98… sats → 1_553 (up).
        assert_eq!(p.sats_for_fiat(100).map(Sats::get), Ok(1553));
        // 1_553 sats = 100.0039… cents → 100 (nearest); 1_552 sats = 99.94 → 100.
        assert_eq!(p.fiat_for_sats(1553), Ok(100));
        assert_eq!(p.fiat_for_sats(-1553), Ok(-100));
        assert_eq!(p.sats_for_fiat(0).map(Sats::get), Ok(0));
        assert_eq!(p.sats_for_fiat(-1), Err(PriceError::Negative));
        // Galoy's price of one sat at offset 12: 0.0643922300 cents.
        assert_eq!(p.sat_price(12), Ok(64_392_230_000));
        assert_eq!(p.minor_per_other_minor(&p, 12), Ok(1_000_000_000_000));
    }

    #[test]
    fn overflow_is_an_error() {
        let p = BtcPrice::from_minor_units(
            FiatCurrency::usd(),
            Decimal {
                mantissa: 1,
                scale: MAX_PRICE_SCALE,
            },
            0,
            "t",
        )
        .expect("price");
        assert_eq!(p.sats_for_fiat(i64::MAX), Err(PriceError::Overflow));
        assert!(BtcPrice::from_major_str(FiatCurrency::usd(), "0", 0, "t").is_err());
    }

    proptest! {
        /// Fiat → sats → fiat: the sats asked for are worth at least the fiat amount, and at
        /// most one satoshi more.
        #[test]
        fn merchant_is_never_underpaid(
            cents_per_btc in 1u64..10_000_000_000_000,
            scale in 0u32..6,
            minor in 0i64..1_000_000_000,
        ) {
            let p = BtcPrice::from_minor_units(
                FiatCurrency::usd(), Decimal { mantissa: u128::from(cents_per_btc), scale }, 0, "t",
            ).expect("price");
            let Ok(sats) = p.sats_for_fiat(minor) else { return Ok(()) };
            let sats = u128::try_from(sats.get()).expect("non-negative");
            let minor = u128::try_from(minor).expect("non-negative");
            let pow = 10u128.pow(scale);
            // Exact: value(sats) = sats * m / (1e8 * 10^s) >= minor
            prop_assert!(sats * u128::from(cents_per_btc) >= minor * SATS_PER_BTC * pow);
            if sats > 0 {
                prop_assert!((sats - 1) * u128::from(cents_per_btc) < minor * SATS_PER_BTC * pow);
            }
        }

        /// The displayed fiat of the sats asked for is never below the fiat asked for.
        #[test]
        fn display_round_trip_never_shows_less(
            cents_per_btc in 1_000u64..100_000_000_000,
            minor in 0i64..100_000_000,
        ) {
            let p = BtcPrice::from_minor_units(
                FiatCurrency::usd(), Decimal { mantissa: u128::from(cents_per_btc), scale: 0 }, 0, "t",
            ).expect("price");
            let sats = p.sats_for_fiat(minor).expect("sats");
            prop_assert!(p.fiat_for_sats(sats.get()).expect("fiat") >= minor);
        }

        /// Sats → fiat is within half a minor unit of the exact value.
        #[test]
        fn display_is_nearest(cents_per_btc in 1u64..100_000_000_000, sats in 0i64..2_100_000_000_000_000) {
            let p = BtcPrice::from_minor_units(
                FiatCurrency::usd(), Decimal { mantissa: u128::from(cents_per_btc), scale: 0 }, 0, "t",
            ).expect("price");
            let shown = u128::try_from(p.fiat_for_sats(sats).expect("fiat")).expect("non-negative");
            let exact2 = 2 * u128::try_from(sats).expect("non-negative") * u128::from(cents_per_btc);
            let shown2 = 2 * shown * SATS_PER_BTC;
            prop_assert!(shown2.abs_diff(exact2) <= SATS_PER_BTC);
        }

        /// A decimal string round-trips through Display when it has the currency's digits.
        #[test]
        fn display_round_trips(dollars in 1u64..10_000_000, cents in 0u64..100) {
            let s = format!("{dollars}.{cents:02}");
            prop_assert_eq!(usd(&s).to_string(), s);
        }
    }
}
