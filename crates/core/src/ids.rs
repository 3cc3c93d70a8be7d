//! Identifiers. Entity ids are UUIDs (v7 where rows are appended in time order); ledger
//! accounts are addressed by [`LedgerAccountId`], which is a wallet's id or a system account
//! name.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub struct $name(Uuid);

        impl $name {
            /// A fresh, time-ordered id.
            pub fn generate() -> Self {
                Self(Uuid::now_v7())
            }
            /// The underlying UUID.
            pub fn uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self).map_err(|_| InvalidId {
                    kind: stringify!($name),
                    value: s.chars().take(64).collect(),
                })
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }
    };
}

uuid_id!(
    /// A person who logs in.
    UserId
);
uuid_id!(
    /// An account: the unit that owns wallets, has a level, a status and limits.
    AccountId
);
uuid_id!(
    /// A wallet: one currency balance of an account; its ledger account has the same id.
    WalletId
);
uuid_id!(
    /// A journal: one balanced movement of money.
    JournalId
);
uuid_id!(
    /// An API key (the id, not the secret).
    ApiKeyId
);

/// A string that is not a valid id of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind}: {value:?}")]
pub struct InvalidId {
    /// The id type expected.
    pub kind: &'static str,
    /// The (truncated) input.
    pub value: String,
}

/// Bank-owned ledger accounts. Each exists once per currency; see [`SystemAccount::ledger_id`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SystemAccount {
    /// Funds created out of thin air by the dev/regtest faucet (`walletFund`). Goes negative.
    DevFaucet,
    /// Fees the bank has earned.
    FeesRevenue,
    /// Outgoing Lightning payments in flight (holds).
    LightningPending,
    /// Outgoing on-chain payouts in flight (holds).
    OnchainPending,
    /// The bank's Lightning node (an asset: what the node holds for Flash's users). Receipts
    /// credit wallets from it; settled sends pay into it.
    LightningNode,
    /// The on-chain hot wallet (an asset): confirmed deposits credit wallets from it.
    OnchainHot,
    /// Cold storage (an asset): the multisig reserves swept from the hot wallet.
    OnchainCold,
    /// Holds on wallets whose credited deposit left the chain, until an operator decides.
    OnchainReview,
    /// Ecash in circulation (a liability): every note the mint signed and has not redeemed.
    MintOutstanding,
    /// Mint quotes paid and not yet issued as ecash (a liability).
    MintQuotes,
}

impl SystemAccount {
    /// Every system account.
    pub const ALL: [SystemAccount; 10] = [
        SystemAccount::DevFaucet,
        SystemAccount::FeesRevenue,
        SystemAccount::LightningPending,
        SystemAccount::OnchainPending,
        SystemAccount::LightningNode,
        SystemAccount::OnchainHot,
        SystemAccount::OnchainCold,
        SystemAccount::OnchainReview,
        SystemAccount::MintOutstanding,
        SystemAccount::MintQuotes,
    ];

    /// The account's name, as `docs/ledger.md` lists it.
    pub fn name(self) -> &'static str {
        match self {
            SystemAccount::DevFaucet => "dev:faucet",
            SystemAccount::FeesRevenue => "fees:revenue",
            SystemAccount::LightningPending => "lightning:pending",
            SystemAccount::OnchainPending => "onchain:pending",
            SystemAccount::LightningNode => "lightning:node",
            SystemAccount::OnchainHot => "onchain:hot",
            SystemAccount::OnchainCold => "onchain:cold",
            SystemAccount::OnchainReview => "onchain:review",
            SystemAccount::MintOutstanding => "mint:outstanding",
            SystemAccount::MintQuotes => "mint:quotes",
        }
    }

    /// The ledger account id for this account in `currency`: `name:code`, e.g. `dev:faucet:BTC`.
    pub fn ledger_id(self, currency: crate::Currency) -> LedgerAccountId {
        LedgerAccountId(format!("{}:{}", self.name(), currency.code()))
    }
}

/// The id of a ledger account: a wallet id (UUID text) or a system account id.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LedgerAccountId(String);

impl LedgerAccountId {
    /// Wraps a stored id. Stores use this when reading rows back.
    pub fn from_stored(id: String) -> Self {
        Self(id)
    }
    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The wallet this ledger account belongs to, if it is a wallet's.
    pub fn wallet(&self) -> Option<WalletId> {
        self.0.parse().ok()
    }
}

impl From<WalletId> for LedgerAccountId {
    fn from(w: WalletId) -> Self {
        Self(w.to_string())
    }
}

impl fmt::Display for LedgerAccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id of a hold, chosen by the rail that opens it so that settling is keyed by the
/// payment's own identity (e.g. `ln:<payment hash>`, `onchain:<payout id>`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct HoldId(String);

impl HoldId {
    /// Wraps a hold id.
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }
    /// The id as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HoldId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_reject_junk() {
        let w = WalletId::generate();
        assert_eq!(w.to_string().parse::<WalletId>(), Ok(w));
        assert!("not-a-uuid".parse::<WalletId>().is_err());
        let ledger = LedgerAccountId::from(w);
        assert_eq!(ledger.wallet(), Some(w));
        let sys = SystemAccount::DevFaucet.ledger_id(crate::Currency::Btc);
        assert_eq!(sys.as_str(), "dev:faucet:BTC");
        assert_eq!(sys.wallet(), None);
    }
}
