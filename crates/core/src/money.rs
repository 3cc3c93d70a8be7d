//! Money: integer minor units, checked arithmetic, and the one fee-rounding rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// 21 million bitcoin in satoshis: no amount can exceed it.
pub const MAX_SATS: i64 = 21_000_000 * 100_000_000;

/// A wallet's or ledger account's currency. Amounts are always in its minor unit
/// (satoshis for BTC, cents for USD).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Currency {
    /// Bitcoin, minor unit satoshi.
    Btc,
    /// US dollar, minor unit cent (modelled for a later USD wallet).
    Usd,
}

impl Currency {
    /// The ISO-style code stored in the database and shown in APIs.
    pub fn code(self) -> &'static str {
        match self {
            Currency::Btc => "BTC",
            Currency::Usd => "USD",
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "BTC" => Ok(Currency::Btc),
            "USD" => Ok(Currency::Usd),
            _ => Err(MoneyError::UnknownCurrency(s.to_string())),
        }
    }
}

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Zero where a positive amount is required.
    #[error("amount must be greater than zero")]
    Zero,
    /// A negative amount.
    #[error("amount must not be negative")]
    Negative,
    /// More than can exist.
    #[error("amount exceeds the maximum of {MAX_SATS} minor units")]
    TooLarge,
    /// Arithmetic left the representable range.
    #[error("amount arithmetic overflowed")]
    Overflow,
    /// A currency code we do not know.
    #[error("unknown currency {0:?}")]
    UnknownCurrency(String),
}

/// A non-negative number of satoshis, at most [`MAX_SATS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Sats(i64);

impl Sats {
    /// Zero satoshis.
    pub const ZERO: Sats = Sats(0);

    /// A strictly positive payment amount; zero, negative and oversized amounts are refused.
    pub fn positive(value: i64) -> Result<Sats, MoneyError> {
        match value {
            0 => Err(MoneyError::Zero),
            v if v < 0 => Err(MoneyError::Negative),
            v if v > MAX_SATS => Err(MoneyError::TooLarge),
            v => Ok(Sats(v)),
        }
    }

    /// A non-negative amount (fees, balances shown to users).
    pub fn non_negative(value: i64) -> Result<Sats, MoneyError> {
        match value {
            v if v < 0 => Err(MoneyError::Negative),
            v if v > MAX_SATS => Err(MoneyError::TooLarge),
            v => Ok(Sats(v)),
        }
    }

    /// The amount in satoshis.
    pub fn get(self) -> i64 {
        self.0
    }

    /// Checked addition.
    pub fn checked_add(self, other: Sats) -> Result<Sats, MoneyError> {
        let sum = self.0.checked_add(other.0).ok_or(MoneyError::Overflow)?;
        Sats::non_negative(sum)
    }

    /// A fee of `bps` basis points of this amount, rounded up (in the bank's favour), never
    /// below `floor`. This is the single rounding rule for fees.
    pub fn fee(self, bps: u32, floor: Sats) -> Result<Sats, MoneyError> {
        let scaled = i128::from(self.0) * i128::from(bps);
        let fee = (scaled + 9_999) / 10_000;
        let fee = i64::try_from(fee).map_err(|_| MoneyError::Overflow)?;
        Sats::non_negative(fee.max(floor.0))
    }
}

impl Sats {
    /// Whole satoshis for `msat` the bank pays out, rounded up: the wallet always covers what
    /// the node sends. With [`Sats::from_msat_down`], the one rule for millisatoshis.
    pub fn from_msat_up(msat: u64) -> Result<Sats, MoneyError> {
        let sats = i64::try_from(msat.div_ceil(1_000)).map_err(|_| MoneyError::TooLarge)?;
        Sats::non_negative(sats)
    }

    /// Whole satoshis credited for `msat` received, rounded down: the bank never owes more
    /// than it got.
    pub fn from_msat_down(msat: u64) -> Result<Sats, MoneyError> {
        let sats = i64::try_from(msat / 1_000).map_err(|_| MoneyError::TooLarge)?;
        Sats::non_negative(sats)
    }

    /// The on-chain amount (as the `bitcoin` crate counts it).
    pub fn to_amount(self) -> bitcoin::Amount {
        bitcoin::Amount::from_sat(self.0.unsigned_abs())
    }

    /// Satoshis of an on-chain amount; refused above [`MAX_SATS`].
    pub fn from_amount(amount: bitcoin::Amount) -> Result<Sats, MoneyError> {
        Sats::non_negative(i64::try_from(amount.to_sat()).map_err(|_| MoneyError::TooLarge)?)
    }

    /// Millisatoshis, for the wire.
    pub fn msat(self) -> u64 {
        self.0.unsigned_abs().saturating_mul(1_000)
    }
}

impl fmt::Display for Sats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} sats", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positive_amounts_are_bounded() {
        assert_eq!(Sats::positive(0), Err(MoneyError::Zero));
        assert_eq!(Sats::positive(-5), Err(MoneyError::Negative));
        assert_eq!(Sats::positive(MAX_SATS + 1), Err(MoneyError::TooLarge));
        assert_eq!(Sats::positive(MAX_SATS).map(Sats::get), Ok(MAX_SATS));
        assert_eq!(Sats::positive(i64::MAX), Err(MoneyError::TooLarge));
    }

    #[test]
    fn fees_round_up_and_respect_the_floor() {
        let floor = Sats::non_negative(10).expect("valid");
        assert_eq!(Sats(1_000).fee(50, floor).map(Sats::get), Ok(10));
        assert_eq!(Sats(100_001).fee(50, floor).map(Sats::get), Ok(501));
        assert_eq!(Sats(100_000).fee(50, floor).map(Sats::get), Ok(500));
        assert_eq!(Sats(MAX_SATS).fee(10_000, Sats::ZERO).map(Sats::get), Ok(MAX_SATS));
    }

    #[test]
    fn millisatoshis_round_in_the_banks_favour() {
        assert_eq!(Sats::from_msat_up(1).map(Sats::get), Ok(1));
        assert_eq!(Sats::from_msat_up(2_000).map(Sats::get), Ok(2));
        assert_eq!(Sats::from_msat_up(2_001).map(Sats::get), Ok(3));
        assert_eq!(Sats::from_msat_down(2_999).map(Sats::get), Ok(2));
        assert_eq!(Sats::from_msat_down(999).map(Sats::get), Ok(0));
        assert_eq!(Sats::from_msat_up(u64::MAX), Err(MoneyError::TooLarge));
        assert_eq!(Sats(21).msat(), 21_000);
    }

    #[test]
    fn currency_codes_round_trip() {
        for c in [Currency::Btc, Currency::Usd] {
            assert_eq!(c.code().parse::<Currency>(), Ok(c));
        }
        assert!("EUR".parse::<Currency>().is_err());
    }
}
