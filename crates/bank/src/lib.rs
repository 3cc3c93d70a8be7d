//! Flash's application services: accounts and wallets, intraledger payments, limits,
//! history, and the events that tell clients a balance changed.
//!
//! The bank decides; the store records. Every movement of money is one journal request to
//! the store's group-commit writer, with an idempotency key scoped to the paying account, so a
//! retried request returns the first answer. Rails (Lightning, on-chain) will report events
//! to the bank through core's ports; they never touch the ledger themselves.

mod accounts;
mod allowance;
mod budgets;
mod cold;
mod crash;
mod ecash;
mod error;
mod events;
mod history;
mod lightning;
mod liquidity;
mod lnurl;
mod onchain;
mod operator;
mod pay;
mod payments;
mod payouts;

use std::sync::Arc;

use flash_core::lightning::{LightningNode, SimulatorControls};
use flash_core::lnurl::LnurlClient;
use flash_core::onchain::{ChainSimulator, ColdWallet, HotWallet};
use flash_core::{LimitPolicy, Network};
use flash_store::Store;

pub use accounts::{Identity, WalletView};
pub use budgets::{PayoutPayment, PayoutProgress};
pub use cold::{ColdPolicy, ColdPsbt};
pub use crash::crash_point;
pub use ecash::{EcashMove, MeltPayment, MeltTarget, MintMove};
pub use error::BankError;
pub use events::{WalletChange, WalletEvent};
/// The stored records the bank's methods answer with, so its callers read them without
/// depending on the store.
pub use flash_store::{
    AccountRecord, ApiKeyRecord, BatchRecord, ContactRecord, JournalRecord, LedgerReport, LedgerStats, LiquidityAction,
    LiquidityActionKind, PayoutRecord, SweepRecord, UserRecord, WithdrawLinkRecord,
};
pub use history::{Direction, HistoryPageRequest, Paged, Transaction, TransactionPage, TxStatus};
pub use lightning::{
    InvoiceCreate, InvoiceFor, InvoiceStatus, LightningConfig, LnDetails, LnInvoice, LnPayOutcome, LnPayRequest,
    PaymentStatus, ReconcileReport,
};
pub use liquidity::{assess, LiquidityConfig, LiquidityIssue, LiquidityReport, OpenPlan, PreferredPeer};
pub use lnurl::{
    address_metadata, description_hash, offered_sats, AddressOffer, CreatedWithdrawLink, LnurlPayRequest,
    WithdrawLinkCreate,
};
pub use onchain::{DepositReport, OnchainConfig, OnchainStatus, ReviewReclaim};
pub use pay::{PayOutcome, PayRequest, Rail};
pub use payments::{LimitView, PaymentOutcome, Recipient, SendRequest};
pub use payouts::{OnchainSend, OnchainSendOutcome, PayoutDetails, PayoutReport, Speed};

/// The bank's settings.
#[derive(Clone, Debug)]
pub struct BankConfig {
    /// The network served; dev-only features are refused on mainnet.
    pub network: Network,
    /// Per-level limits and the reference rate.
    pub limits: LimitPolicy,
    /// Lightning fees, timeouts and invoice expiries.
    pub lightning: LightningConfig,
    /// The host of this Flash's Lightning addresses (`name@host`), paid inside the ledger.
    pub lightning_address_domain: Option<String>,
    /// The Lightning liquidity policy.
    pub liquidity: LiquidityConfig,
    /// On-chain confirmations and deposit fees.
    pub onchain: OnchainConfig,
    /// This process's name among the flashd nodes sharing a database, stable across its
    /// restarts: the holder of the on-chain lease (one node spends from the wallets).
    pub node_name: String,
}

impl Default for BankConfig {
    fn default() -> Self {
        BankConfig {
            network: Network::Regtest,
            limits: LimitPolicy::default(),
            lightning: LightningConfig::default(),
            lightning_address_domain: None,
            liquidity: LiquidityConfig::default(),
            onchain: OnchainConfig::default(),
            node_name: format!("bank:{}", uuid::Uuid::new_v4()),
        }
    }
}

/// The bank: cheap to clone, shared by every API handler.
#[derive(Clone)]
pub struct Bank {
    store: Store,
    config: Arc<BankConfig>,
    events: events::EventBus,
    lightning: Option<Arc<lightning::Rail>>,
    lnurl: Option<Arc<dyn LnurlClient>>,
    liquidity: Arc<liquidity::LiquidityState>,
    onchain: Option<Arc<onchain::ChainRail>>,
    cold: Option<Arc<cold::ColdRail>>,
    /// Wakes the payout batcher (an immediate payout was queued).
    payouts_wake: Arc<tokio::sync::Notify>,
}

impl Bank {
    /// A bank over `store`.
    pub fn new(store: Store, config: BankConfig) -> Bank {
        Bank {
            store,
            config: Arc::new(config),
            events: events::EventBus::new(),
            lightning: None,
            lnurl: None,
            liquidity: Arc::default(),
            onchain: None,
            cold: None,
            payouts_wake: Arc::default(),
        }
    }

    /// The same bank paying other services' LNURLs and Lightning addresses through `client`.
    pub fn with_lnurl(mut self, client: Arc<dyn LnurlClient>) -> Bank {
        self.lnurl = Some(client);
        self
    }

    /// The same bank paying and receiving over `node`; `simulator` is the node's dev-only
    /// controls when it is the `dev` simulator.
    pub fn with_lightning(
        mut self,
        node: Arc<dyn LightningNode>,
        simulator: Option<Arc<dyn SimulatorControls>>,
    ) -> Bank {
        self.lightning = Some(Arc::new(lightning::Rail::new(node, simulator)));
        self
    }

    /// The same bank receiving on-chain deposits through `wallet`; `simulator` is the chain's
    /// dev-only controls when it is the `dev` simulator.
    pub fn with_onchain(mut self, wallet: Arc<dyn HotWallet>, simulator: Option<Arc<dyn ChainSimulator>>) -> Bank {
        self.onchain = Some(Arc::new(onchain::ChainRail::new(wallet, simulator)));
        self
    }

    /// The same bank keeping reserves above the hot wallet's ceiling in `wallet` (cold storage)
    /// by `policy`.
    pub fn with_cold(mut self, wallet: Arc<dyn ColdWallet>, policy: ColdPolicy) -> Bank {
        self.cold = Some(Arc::new(cold::ColdRail { wallet, policy }));
        self
    }

    /// The store underneath, for tests that inspect what the bank wrote; callers in the
    /// product go through the bank's methods.
    #[cfg(feature = "testing")]
    pub fn store_for_tests(&self) -> &Store {
        &self.store
    }

    /// The configuration.
    pub fn config(&self) -> &BankConfig {
        &self.config
    }

    /// Subscribes to wallet events (every balance change).
    pub fn subscribe(&self) -> tokio::sync::broadcast::Receiver<WalletEvent> {
        self.events.subscribe()
    }
}
