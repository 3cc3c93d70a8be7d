//! What a payment spends besides its wallet's balance (a withdraw link's use, a Flash Card tap,
//! a payout's attempt): taken in the transaction that moves or holds the money, and given back
//! in the one that returns it when a payment out fails. A budget wallet is spent only this way,
//! by a payout.

use flash_store::{CardSpend, PayoutAttempt, Record, WalletRecord};

/// How a payment made for a withdraw link is marked (`origin`).
const WITHDRAW_ORIGIN: &str = "lnurlw:";
/// How a payment made for a Flash Card tap is marked (`origin`).
const CARD_ORIGIN: &str = "boltcard:";
/// How a payment made for a payout's attempt is marked (`origin`): `payout:<id>:<attempt>`.
const PAYOUT_ORIGIN: &str = "payout:";

/// What a payment spends besides its wallet's balance.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Allowance<'a> {
    /// One use of a withdraw link (its id).
    WithdrawLink(&'a str),
    /// A Flash Card tap's spend.
    Card(&'a CardSpend),
    /// One payment attempt of a payout.
    Payout(&'a PayoutAttempt),
}

impl Allowance<'_> {
    /// The records that take it for a payment of `amount_sat`.
    pub(crate) fn taken(self, amount_sat: i64, now_ms: i64) -> Vec<Record> {
        match self {
            Allowance::WithdrawLink(link) => vec![Record::lnurl_withdraw_use_taken(link, now_ms)],
            Allowance::Card(spend) => Record::boltcard_spend_taken(spend, amount_sat, now_ms),
            Allowance::Payout(attempt) => Record::merchant_payout_taken(attempt, now_ms),
        }
    }

    /// How a payment out made with it is marked, to give it back if the payment fails.
    pub(crate) fn origin(self) -> String {
        match self {
            Allowance::WithdrawLink(link) => format!("{WITHDRAW_ORIGIN}{link}"),
            Allowance::Card(spend) => format!("{CARD_ORIGIN}{}", spend.tap_id),
            Allowance::Payout(a) => format!("{PAYOUT_ORIGIN}{}:{}", a.payout_id, a.attempt),
        }
    }
}

/// Whether `wallet` may pay with `allowance`: an account's own wallet always, a budget only
/// for a payout.
pub(crate) fn may_spend(wallet: &WalletRecord, allowance: Option<Allowance<'_>>) -> bool {
    !wallet.budget || matches!(allowance, Some(Allowance::Payout(_)))
}

/// What gives back the allowance of a failed payment out marked `origin`.
pub(crate) fn allowance_returned(origin: &str) -> Option<Record> {
    if let Some(link) = origin.strip_prefix(WITHDRAW_ORIGIN) {
        Some(Record::lnurl_withdraw_use_returned(link))
    } else if let Some(card_tap) = origin.strip_prefix(CARD_ORIGIN) {
        Some(Record::boltcard_spend_returned(card_tap))
    } else {
        let (payout, attempt) = origin.strip_prefix(PAYOUT_ORIGIN)?.rsplit_once(':')?;
        Some(Record::merchant_payout_returned(payout, attempt.parse().ok()?))
    }
}
