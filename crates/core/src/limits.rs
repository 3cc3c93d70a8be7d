//! Per-level rolling 24-hour limits.
//!
//! Limits are defined in US cents (Galoy's defaults) and enforced in satoshis through a
//! configured reference rate, until a price source exists.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::AccountLevel;

/// The rolling window every limit applies to.
pub const LIMIT_WINDOW_SECS: i64 = 24 * 60 * 60;

/// What a limit restricts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LimitKind {
    /// Payments to other Flash users.
    IntraLedger,
    /// Payments leaving Flash (Lightning, on-chain).
    Withdrawal,
}

impl LimitKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            LimitKind::IntraLedger => "intraledger",
            LimitKind::Withdrawal => "withdrawal",
        }
    }
    /// Parses the stored form.
    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "intraledger" => Some(LimitKind::IntraLedger),
            "withdrawal" => Some(LimitKind::Withdrawal),
            _ => None,
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One level's limits in US cents per rolling 24 hours.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelLimits {
    /// Intraledger sends.
    pub intraledger_cents: i64,
    /// Withdrawals.
    pub withdrawal_cents: i64,
}

/// The limit table and the reference rate that turns it into satoshis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitPolicy {
    /// Reference price: satoshis per one US dollar (1,000 means 1 BTC = $100,000).
    pub reference_sats_per_usd: i64,
    /// Level 0 limits.
    pub level0: LevelLimits,
    /// Level 1 limits.
    pub level1: LevelLimits,
    /// Level 2 limits.
    pub level2: LevelLimits,
    /// Level 3 limits.
    pub level3: LevelLimits,
}

impl Default for LimitPolicy {
    /// Galoy's defaults: L0 $125/$125, L1 $1k/$2k, L2 $50k/$50k, L3 $100k/$100k
    /// (withdrawal / intraledger).
    fn default() -> Self {
        let l = |withdrawal_usd: i64, intraledger_usd: i64| LevelLimits {
            withdrawal_cents: withdrawal_usd * 100,
            intraledger_cents: intraledger_usd * 100,
        };
        LimitPolicy {
            reference_sats_per_usd: 1_000,
            level0: l(125, 125),
            level1: l(1_000, 2_000),
            level2: l(50_000, 50_000),
            level3: l(100_000, 100_000),
        }
    }
}

impl LimitPolicy {
    /// The limit in cents for a level and kind.
    pub fn cents(&self, level: AccountLevel, kind: LimitKind) -> i64 {
        let l = match level {
            AccountLevel::Zero => self.level0,
            AccountLevel::One => self.level1,
            AccountLevel::Two => self.level2,
            AccountLevel::Three => self.level3,
        };
        match kind {
            LimitKind::IntraLedger => l.intraledger_cents,
            LimitKind::Withdrawal => l.withdrawal_cents,
        }
    }

    /// The limit in satoshis (rounded down, saturating).
    pub fn sats(&self, level: AccountLevel, kind: LimitKind) -> i64 {
        self.cents(level, kind).saturating_mul(self.reference_sats_per_usd) / 100
    }

    /// Satoshis converted back to cents at the reference rate (rounded down).
    pub fn sats_to_cents(&self, sats: i64) -> i64 {
        if self.reference_sats_per_usd <= 0 {
            return 0;
        }
        sats.saturating_mul(100) / self.reference_sats_per_usd
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn galoy_defaults_in_sats() {
        let p = LimitPolicy::default();
        assert_eq!(p.sats(AccountLevel::Zero, LimitKind::IntraLedger), 125_000);
        assert_eq!(p.sats(AccountLevel::One, LimitKind::IntraLedger), 2_000_000);
        assert_eq!(p.sats(AccountLevel::One, LimitKind::Withdrawal), 1_000_000);
        assert_eq!(p.sats(AccountLevel::Three, LimitKind::Withdrawal), 100_000_000);
        assert_eq!(p.sats_to_cents(125_000), 12_500);
    }
}
