//! Flash's storage: SQLite (rusqlite, the embedded default) and PostgreSQL (tokio-postgres)
//! behind one [`Store`]. This is the only crate that writes SQL.
//!
//! Two paths reach the database:
//! - ordinary reads and writes go through [`Db`], a dialect-neutral `query` / `execute` /
//!   `script` interface; statements are written once with `$N` placeholders;
//! - ledger postings go through one writer per database ([`ledger`]) that collects
//!   requests into batches and commits each batch in one durable transaction (group commit),
//!   deciding every request with the pure engine in `flash_core::ledger`. A request is
//!   answered only after its batch has committed.

mod accounts;
mod auth;
mod boltcards;
mod db;
mod groups;
mod leases;
mod ledger;
mod lightning;
mod limits;
mod merchant;
mod merchant_apps;
mod merchant_invoices;
mod merchant_payouts;
mod merchant_requests;
mod merchant_webhooks;
mod mint;
mod nostr;
mod nwc;
mod onchain;
mod postgres;
mod rewards;
mod secrets;
mod sql;
mod sqlite;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::PathBuf;
use std::sync::Arc;

use flash_core::ports::Clock;

pub use accounts::{
    AccountRecord, Audit, ContactRecord, NewUser, PaymentParties, UserRecord, UsernameUpdate, WalletOwner, WalletRecord,
};
pub use auth::{ApiKeyRecord, CodeCheck, NewApiKey, SessionRecord};
pub use boltcards::{
    BoltcardRecord, BoltcardTapRecord, CardSpend, LinkedBoltcard, NewBoltcard, NewBoltcardTap, CARD_WINDOW_MS,
};
pub use db::Db;
pub use groups::GroupRecord;
pub use ledger::{
    HistoryItem, HistoryPage, HistoryQuery, JournalRecord, LedgerReport, LedgerStats, PageStart, PostRequest, Record,
    BATCH_MAX,
};
pub use lightning::{
    LiquidityAction, LiquidityActionKind, LnInvoiceRecord, LnPaymentEnd, LnPaymentRecord, LnPaymentStatus,
    NewLnInvoice, NewLnPayment, NewWithdrawLink, PaidVia, WithdrawLinkRecord,
};
pub use limits::WindowHit;
pub use merchant::{MerchantKeyRecord, MerchantStoreRecord};
pub use merchant_apps::{AppSaleRecord, MerchantAppRecord};
pub use merchant_invoices::{
    InvoiceFilter, InvoiceMethodRecord, InvoicePaymentRecord, InvoiceTransition, MerchantInvoiceRecord,
    NewMerchantEvent,
};
pub use merchant_payouts::{
    payout_retry_delay_ms, MerchantPayoutRecord, MerchantPayoutState, PayoutAttempt, PullPaymentRecord,
};
pub use merchant_requests::{LightningAddressRecord, PaymentRequestRecord};
pub use merchant_webhooks::{
    DeliveryAttempt, DueDelivery, MerchantEventRecord, MerchantWebhookRecord, WebhookDeliveryRecord,
};
pub use mint::{
    KeysetRecord, MeltQuoteRecord, MeltQuoteState, MintQuoteRecord, MintQuoteState, MintTotals, PresentedProof,
    ProofRow, ProofState, SignatureRow, REFUSED_OUTPUT_SIGNED, REFUSED_PROOF_TAKEN, REFUSED_QUOTE_STATE,
};
pub use nostr::{DeleteTarget, EventQuery, NewEvent, Readers, SaveOutcome};
pub use nwc::{NwcConnectionRecord, NwcUnfinished, Reservation};
pub use onchain::{
    AddressOwner, BatchRecord, BatchStatus, DepositRecord, DepositStatus, NewBatch, NewPayout, OnchainTotals,
    PayoutRecord, PayoutSpeed, PayoutStatus, SeenDeposit, SweepDirection, SweepRecord,
};
pub use rewards::{GrantEvents, RewardGrantRecord, RewardProgramRecord, REWARD_CUSTOMER_LIMITED, REWARD_PROGRAM_SHORT};
pub use sql::{Row, Value};

/// Where the data lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StoreConfig {
    /// A SQLite file (created if missing).
    Sqlite {
        /// Path of the database file.
        path: PathBuf,
    },
    /// A PostgreSQL database.
    Postgres {
        /// `postgres://user@host:port/db`.
        url: String,
    },
}

impl StoreConfig {
    /// Which backend, for logs and `/healthz`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            StoreConfig::Sqlite { .. } => "sqlite",
            StoreConfig::Postgres { .. } => "postgres",
        }
    }
}

/// A storage failure. Domain refusals (insufficient balance, …) are not errors here: they
/// are the `Err` side of a ledger [`flash_core::ledger::Outcome`].
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported an error.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL reported an error.
    #[error("postgres: {0}")]
    Postgres(#[from] tokio_postgres::Error),
    /// No connection could be had.
    #[error("database pool: {0}")]
    Pool(String),
    /// Migrations failed.
    #[error("migration: {0}")]
    Migration(String),
    /// A stored value could not be read back.
    #[error("decode: {0}")]
    Decode(String),
    /// The store is shutting down or a worker died.
    #[error("store unavailable: {0}")]
    Unavailable(&'static str),
    /// A write broke an invariant the database enforces (a bug if it ever happens).
    #[error("invariant violated: {0}")]
    Invariant(String),
    /// A rail record's condition did not hold (e.g. a withdraw link with no use left), so
    /// nothing was written.
    #[error("refused: {0}")]
    Refused(&'static str),
}

impl StoreError {
    /// True when the error is a unique-constraint violation (a duplicate).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            StoreError::Sqlite(rusqlite::Error::SqliteFailure(e, _)) => {
                e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                    || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
            }
            StoreError::Postgres(e) => e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION),
            _ => false,
        }
    }
}

/// The store: a database plus its ledger writer. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: Db,
    writer: ledger::WriterHandle,
    clock: Arc<dyn Clock>,
    backend: &'static str,
}

impl Store {
    /// Opens (creating if needed) and migrates the database, and starts its ledger writer.
    pub async fn open(config: &StoreConfig, clock: Arc<dyn Clock>) -> Result<Store, StoreError> {
        let (db, writer) = match config {
            StoreConfig::Sqlite { path } => sqlite::open(path, clock.clone())?,
            StoreConfig::Postgres { url } => postgres::open(url, clock.clone()).await?,
        };
        Ok(Store {
            db,
            writer,
            clock,
            backend: config.backend_name(),
        })
    }

    /// `sqlite` or `postgres`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Raw SQL, for tests that inspect or tamper with what is stored (feature `testing`).
    /// Everything else goes through the store's typed methods.
    #[cfg(feature = "testing")]
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The size of SQLite's write-ahead log file, bytes (`/metrics`); `None` on PostgreSQL.
    pub fn sqlite_wal_bytes(&self) -> Option<u64> {
        self.db.sqlite_wal_bytes()
    }

    /// Now, from the store's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Whether the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.db.query("SELECT 1", vec![]).await.map(|_| ())
    }
}
