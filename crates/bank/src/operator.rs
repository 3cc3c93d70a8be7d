//! What the operator's surfaces read through the bank: readiness, ledger counters for
//! `/metrics`, the ledger's invariants and single journals, and the bank's clock.

use flash_core::{Currency, JournalId, SystemAccount};
use flash_store::{JournalRecord, LedgerReport, LedgerStats};

use crate::{Bank, BankError};

impl Bank {
    /// Whether the database answers (readiness).
    pub async fn ping(&self) -> Result<(), BankError> {
        Ok(self.store.ping().await?)
    }

    /// Journals and batches the ledger writer committed since start.
    pub fn ledger_stats(&self) -> &LedgerStats {
        self.store.ledger_stats()
    }

    /// The size of SQLite's write-ahead log, when the store is SQLite.
    pub fn sqlite_wal_bytes(&self) -> Option<u64> {
        self.store.sqlite_wal_bytes()
    }

    /// The sum of user wallet balances per currency.
    pub async fn wallet_totals(&self) -> Result<Vec<(Currency, i64)>, BankError> {
        Ok(self.store.wallet_totals().await?)
    }

    /// Checks every global ledger invariant (`flash admin ledger verify`).
    pub async fn verify_ledger(&self) -> Result<LedgerReport, BankError> {
        Ok(self.store.verify().await?)
    }

    /// A journal with its entries.
    pub async fn journal(&self, id: JournalId) -> Result<Option<JournalRecord>, BankError> {
        Ok(self.store.journal(id).await?)
    }

    /// The balance of one of the bank's own accounts (`mint:outstanding`, `fees:revenue`, …).
    pub async fn system_balance(&self, account: SystemAccount, currency: Currency) -> Result<i64, BankError> {
        let id = account.ledger_id(currency);
        let balances = self.store.balances(std::slice::from_ref(&id)).await?;
        Ok(balances.get(&id).copied().unwrap_or(0))
    }

    /// The bank's clock, in milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        self.store.now_ms()
    }
}
