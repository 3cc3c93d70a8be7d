//! Transaction history: Relay-style pages over a wallet's (or an account's) ledger entries,
//! newest first.

use flash_core::ledger::{HoldStatus, JournalKind};
use flash_core::{AccountId, Currency, JournalId, LedgerAccountId, WalletId};
use flash_store::{HistoryItem, HistoryQuery, PageStart};

use crate::{Bank, BankError};

/// Default page size.
const PAGE_DEFAULT: usize = 20;
/// Largest page.
const PAGE_MAX: usize = 100;

/// Send or receive, from the wallet's side.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Money left the wallet.
    Send,
    /// Money arrived.
    Receive,
}

/// A transaction's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TxStatus {
    /// Final.
    Success,
    /// In flight (an open hold).
    Pending,
    /// Failed (a reversed hold).
    Failure,
}

/// One line of a wallet's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// The journal.
    pub journal_id: JournalId,
    /// The wallet this line belongs to.
    pub wallet_id: WalletId,
    /// Send or receive.
    pub direction: Direction,
    /// Signed change to the wallet, fee included.
    pub amount: i64,
    /// Fee paid by the wallet.
    pub fee: i64,
    /// Currency.
    pub currency: Currency,
    /// Status.
    pub status: TxStatus,
    /// Kind of journal.
    pub kind: JournalKind,
    /// Memo.
    pub memo: Option<String>,
    /// The other wallet, when it is a Flash wallet.
    pub counterparty_wallet_id: Option<WalletId>,
    /// The other wallet's username, if any.
    pub counterparty_username: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// The Lightning payment hash, when the payment was made or received with an invoice.
    pub payment_hash: Option<String>,
    /// The deposit (`txid:vout`), when the transaction is an on-chain receipt or its review.
    pub onchain_outpoint: Option<String>,
    /// The payout's id, when the transaction is an on-chain send.
    pub onchain_payout: Option<String>,
}

/// A transaction in a page, with its cursor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paged {
    /// Where a page continues from this item.
    pub cursor: String,
    /// The transaction.
    pub transaction: Transaction,
}

impl std::ops::Deref for Paged {
    type Target = Transaction;
    fn deref(&self) -> &Transaction {
        &self.transaction
    }
}

impl From<HistoryItem> for Paged {
    fn from(i: HistoryItem) -> Self {
        Paged {
            cursor: i.journal_id.to_string(),
            transaction: i.into(),
        }
    }
}

impl From<HistoryItem> for Transaction {
    fn from(i: HistoryItem) -> Self {
        let status = match i.hold_status {
            Some(HoldStatus::Pending) => TxStatus::Pending,
            Some(HoldStatus::Reversed) => TxStatus::Failure,
            Some(HoldStatus::Settled) | None => TxStatus::Success,
        };
        Transaction {
            journal_id: i.journal_id,
            wallet_id: i.account.wallet().unwrap_or_else(|| WalletId::from(uuid::Uuid::nil())),
            direction: if i.amount < 0 {
                Direction::Send
            } else {
                Direction::Receive
            },
            amount: i.amount,
            fee: i.fee,
            currency: i.currency,
            status,
            kind: i.kind,
            memo: i.memo,
            counterparty_wallet_id: i.counterparty.wallet(),
            counterparty_username: i.counterparty_username,
            created_at_ms: i.created_at_ms,
            payment_hash: i
                .reference
                .as_deref()
                .and_then(|r| r.strip_prefix("ln:"))
                .map(str::to_string),
            onchain_outpoint: i
                .reference
                .as_deref()
                .and_then(|r| r.strip_prefix("onchain:"))
                .map(str::to_string),
            onchain_payout: i
                .reference
                .as_deref()
                .and_then(|r| r.strip_prefix("onchain-payout:"))
                .map(str::to_string),
        }
    }
}

/// Relay pagination arguments.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryPageRequest {
    /// Page size going forward (older).
    pub first: Option<i32>,
    /// Cursor to continue after.
    pub after: Option<String>,
    /// Page size going backward (newer).
    pub last: Option<i32>,
    /// Cursor to continue before.
    pub before: Option<String>,
}

/// A page of transactions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TransactionPage {
    /// Newest first.
    pub items: Vec<Paged>,
    /// More older items exist.
    pub has_next_page: bool,
    /// More newer items exist.
    pub has_previous_page: bool,
}

fn cursor(c: &Option<String>) -> Result<Option<JournalId>, BankError> {
    c.as_deref()
        .map(|s| {
            s.parse::<JournalId>()
                .map_err(|_| BankError::InvalidPage("cursor is not one this server issued"))
        })
        .transpose()
}

fn size(n: Option<i32>) -> Result<usize, BankError> {
    match n {
        None => Ok(PAGE_DEFAULT),
        Some(n) if n < 0 => Err(BankError::InvalidPage("page size must not be negative")),
        Some(n) => Ok(usize::try_from(n).unwrap_or(PAGE_MAX).min(PAGE_MAX)),
    }
}

impl Bank {
    /// A page of history over the account's wallets (all, or those in `wallet_ids` that are
    /// the account's).
    pub async fn history(
        &self,
        account: AccountId,
        wallet_ids: Option<&[WalletId]>,
        page: &HistoryPageRequest,
    ) -> Result<TransactionPage, BankError> {
        let own = self.store.wallets_of(account).await?;
        let accounts: Vec<LedgerAccountId> = own
            .iter()
            .filter(|w| wallet_ids.is_none_or(|ids| ids.contains(&w.id)))
            .map(|w| w.id.into())
            .collect();
        if page.first.is_some() && page.last.is_some() {
            return Err(BankError::InvalidPage("use either first/after or last/before"));
        }
        let backward = page.last.is_some() || page.before.is_some();
        let start = match (backward, cursor(&page.after)?, cursor(&page.before)?) {
            (true, _, Some(before)) => PageStart::Before(before),
            (true, _, None) => PageStart::Oldest,
            (false, Some(after), _) => PageStart::After(after),
            (false, None, _) => PageStart::Newest,
        };
        let query = HistoryQuery {
            accounts,
            limit: size(if backward { page.last } else { page.first })?,
            start,
        };
        let result = self.store.history(&query).await?;
        // Relay flags: "next" is older, "previous" is newer. Past a cursor we only know that
        // the cursor's own side is non-empty.
        let (has_next_page, has_previous_page) = match start {
            PageStart::Newest => (result.has_more, false),
            PageStart::After(_) => (result.has_more, true),
            PageStart::Before(_) => (true, result.has_more),
            PageStart::Oldest => (false, result.has_more),
        };
        Ok(TransactionPage {
            items: result.items.into_iter().map(Paged::from).collect(),
            has_next_page,
            has_previous_page,
        })
    }

    /// One journal as `wallet` sees it.
    pub async fn transaction(&self, wallet: WalletId, journal: JournalId) -> Result<Transaction, BankError> {
        let item = self.store.history_item(&wallet.into(), journal).await?;
        item.map(Transaction::from).ok_or(BankError::WalletNotFound)
    }

    /// The transaction a request of `account` made from `wallet` under `idempotency_key`,
    /// once it got as far as the ledger (a payment's hold, or its journal).
    pub async fn transaction_by_key(
        &self,
        account: AccountId,
        wallet: WalletId,
        idempotency_key: &str,
    ) -> Result<Option<Transaction>, BankError> {
        let key = crate::payments::idempotency(account.to_string(), Some(idempotency_key.to_string()))?;
        match self.store.journal_for_key(&key).await? {
            Some(journal) => Ok(Some(self.transaction(wallet, journal).await?)),
            None => Ok(None),
        }
    }
}
