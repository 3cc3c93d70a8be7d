//! In-process wallet events (`myUpdates`). Scale-out will carry the same events over NATS.

use flash_core::{AccountId, JournalId, WalletId};
use tokio::sync::broadcast;

/// Events a slow subscriber may fall behind by before it misses some.
const EVENT_BUFFER: usize = 4_096;

/// A wallet's balance, or what is on its way to it, changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletEvent {
    /// The wallet's account (subscribers filter on it).
    pub account_id: AccountId,
    /// The wallet.
    pub wallet_id: WalletId,
    /// What changed.
    pub change: WalletChange,
}

/// What changed in a wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WalletChange {
    /// This journal posted.
    Journal(JournalId),
    /// An on-chain deposit to it was seen (pending) or left the chain before it was credited.
    Deposit {
        /// `txid:vout`.
        outpoint: String,
        /// Its value, satoshis.
        amount_sat: i64,
    },
    /// One of the bank's Lightning invoices into this wallet was paid (by this journal, which
    /// was announced just before as [`WalletChange::Journal`]).
    InvoicePaid {
        /// The invoice's payment hash, hex.
        payment_hash: String,
    },
}

#[derive(Clone)]
pub(crate) struct EventBus(broadcast::Sender<WalletEvent>);

impl EventBus {
    pub(crate) fn new() -> Self {
        EventBus(broadcast::channel(EVENT_BUFFER).0)
    }
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<WalletEvent> {
        self.0.subscribe()
    }
    /// Publishes; having no subscriber is fine.
    pub(crate) fn publish(&self, event: WalletEvent) {
        let _ = self.0.send(event);
    }
}

impl crate::Bank {
    /// Tells subscribers that `journal_id` changed `wallet_id` (of `account_id`).
    pub(crate) fn publish_journal(&self, account_id: AccountId, wallet_id: WalletId, journal_id: JournalId) {
        self.events.publish(WalletEvent {
            account_id,
            wallet_id,
            change: WalletChange::Journal(journal_id),
        });
    }

    /// Tells subscribers that `journal_id` paid the invoice `payment_hash` into `wallet_id` (of
    /// `account_id`): the journal first, then the invoice.
    pub(crate) fn publish_invoice_paid(
        &self,
        account_id: AccountId,
        wallet_id: WalletId,
        journal_id: JournalId,
        payment_hash: &str,
    ) {
        self.publish_journal(account_id, wallet_id, journal_id);
        self.events.publish(WalletEvent {
            account_id,
            wallet_id,
            change: WalletChange::InvoicePaid {
                payment_hash: payment_hash.to_string(),
            },
        });
    }

    /// Tells subscribers that a deposit to `wallet_id` (of `account_id`) was seen or dropped.
    pub(crate) fn publish_deposit(&self, account_id: AccountId, wallet_id: WalletId, outpoint: &str, amount_sat: i64) {
        self.events.publish(WalletEvent {
            account_id,
            wallet_id,
            change: WalletChange::Deposit {
                outpoint: outpoint.to_string(),
                amount_sat,
            },
        });
    }
}
