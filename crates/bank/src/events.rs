//! In-process wallet events (`myUpdates`). Scale-out will carry the same events over NATS.

use flash_core::{AccountId, JournalId, WalletId};
use tokio::sync::broadcast;

/// Events a slow subscriber may fall behind by before it misses some.
const EVENT_BUFFER: usize = 4_096;

/// A wallet's balance changed because `journal` posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WalletEvent {
    /// The wallet's account (subscribers filter on it).
    pub account_id: AccountId,
    /// The wallet.
    pub wallet_id: WalletId,
    /// The journal that changed it.
    pub journal_id: JournalId,
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
            journal_id,
        });
    }
}
