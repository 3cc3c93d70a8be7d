//! Flash's domain core: money, identifiers, validation rules, the ledger engine and the
//! ports (traits) through which the bank reaches the outside world.
//!
//! This crate does no I/O. The one design choice that shapes it: the ledger is a pure state
//! machine ([`ledger::apply_batch`]). A store loads a [`ledger::Snapshot`] of exactly the
//! accounts, holds, idempotency keys and limit counters a batch of requests touches, the
//! engine decides every request in order against that snapshot, and the store writes the
//! resulting [`ledger::WriteSet`] in one transaction. Group commit, property tests and the
//! invariants all rest on that split.

pub mod account;
pub mod calendar;
/// Payment destinations as people write them, classified and checked.
pub mod destination;
mod error_code;
pub mod ids;
pub mod ledger;
pub mod lightning;
pub mod limits;
pub mod lnurl;
pub mod money;
pub mod network;
pub mod onchain;
pub mod ports;
pub mod price;
pub mod secrets;
pub mod text;

pub use account::{AccountLevel, AccountStatus, Email, Memo, Phone, Username, ValidationError};
pub use error_code::ErrorCode;
pub use ids::{AccountId, ApiKeyId, HoldId, JournalId, LedgerAccountId, SystemAccount, UserId, WalletId};
pub use ledger::{
    AccountKind, HoldStatus, IdempotencyKey, JournalKind, JournalRequest, LedgerError, LedgerOp, LimitCheck, Posted,
};
pub use limits::{LevelLimits, LimitKind, LimitPolicy};
pub use money::{Currency, MoneyError, Sats, MAX_SATS};
pub use network::Network;
pub use price::{BtcPrice, FiatCurrency, PriceError, PriceSource, PriceSourceError};
pub use text::TextError;
