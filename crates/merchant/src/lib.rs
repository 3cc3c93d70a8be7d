//! Flash's merchant services, compatible with BTCPay Server's Greenfield API: stores owned by a
//! Flash account and settled into one of its wallets, and Greenfield API keys with BTCPay's
//! permissions. Invoices, webhooks, payment requests and apps build on these.
//!
//! The merchant crate decides; the store records (its own tables) and money moves only through
//! the bank's methods.

pub mod apps;
/// Bolt Card (NTAG 424 DNA) cryptography: SUN tap verification and deterministic card keys.
pub mod boltcard;
pub mod cards;
mod error;
pub mod invoice_data;
pub mod invoice_state;
mod invoices;
mod lightning_addresses;
mod payment_requests;
pub mod permissions;
mod pull_payments;
mod refunds;
pub mod rewards;
pub mod stores;
pub mod watcher;
pub mod webhooks;

use flash_bank::Bank;
use flash_core::price::PriceSource;
use flash_core::secrets::{hash_token, random_token};
use flash_core::AccountId;
use flash_store::{MerchantStoreRecord, Store};
use serde_json::Value;
use std::sync::Arc;
use tokio::sync::Notify;

pub use error::{FieldError, MerchantError};
/// What an invoice list asks for.
pub use flash_store::InvoiceFilter;
/// A Greenfield API key as stored (what `api-keys/current` shows, with the presented secret).
pub use flash_store::MerchantKeyRecord;
pub use invoices::{CreateOptions, InvoiceView, MAX_PAGE};
pub use lightning_addresses::LightningAddressView;
pub use payment_requests::{PaymentRequestView, PublicPaymentRequest, RequestInvoice, RequestStatus};
use permissions::{Permission, Permissions, CAN_MODIFY_STORE_SETTINGS, CAN_VIEW_STORE_SETTINGS};
pub use pull_payments::{Claim, PayoutPass, PayoutView, PullPaymentView, PAYOUT_LIGHTNING, PAYOUT_ONCHAIN};
use stores::{StoreSettings, StoreView};

/// Random characters in a Greenfield API key.
const KEY_LEN: usize = 40;
/// Most keys one account may hold.
const MAX_KEYS_PER_ACCOUNT: usize = 100;
/// Most stores one account may own.
const MAX_STORES_PER_ACCOUNT: usize = 100;
/// Longest key label.
const MAX_LABEL_CHARS: usize = 100;

/// Who is asking: an account, with what its credential allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The account acting.
    pub account: AccountId,
    /// What it may do.
    pub permissions: Permissions,
}

impl Caller {
    /// The account's owner, signed in: every permission over its own stores.
    pub fn owner(account: AccountId) -> Caller {
        Caller {
            account,
            permissions: Permissions::unrestricted(),
        }
    }

    /// Refuses unless the caller holds `policy` over at least one store (or every store):
    /// for lists, which then show what the caller may see.
    pub fn require_somewhere(&self, policy: &'static str) -> Result<(), MerchantError> {
        if self.permissions.allows_somewhere(policy) {
            Ok(())
        } else {
            Err(MerchantError::Forbidden(policy))
        }
    }

    /// Refuses unless the caller holds `policy` (on `store`, for store policies).
    pub fn require(&self, policy: &'static str, store: Option<&str>) -> Result<(), MerchantError> {
        if self.permissions.allows(policy, store) {
            Ok(())
        } else {
            Err(MerchantError::Forbidden(policy))
        }
    }
}

/// A key just made: the secret is shown this once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedKey {
    /// The secret, for `Authorization: token <secret>`.
    pub secret: String,
    /// The key as stored.
    pub key: MerchantKeyRecord,
}

/// The merchant service's settings.
///
/// | setting | default | meaning |
/// |---|---|---|
/// | `allow_private_webhooks` | `false` | deliver webhooks to loopback, private and link-local addresses |
/// | `webhook_timeout_secs` | 10 | longest wait for an endpoint's answer |
/// | `webhook_concurrency` | 16 | most webhooks served at once |
/// | `webhook_in_flight` | 8 | most deliveries of one webhook attempted at once |
/// | `webhook_poll_interval_secs` | 2 | longest wait between sender passes |
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantConfig {
    /// Whether webhook URLs may lead to this machine or a private network (checked on the
    /// addresses connected to, at delivery time). Off by default; `flashd` turns it on where
    /// dev features are allowed (not on mainnet).
    pub allow_private_webhooks: bool,
    /// Longest wait for a webhook endpoint's answer, seconds.
    pub webhook_timeout_secs: u64,
    /// Most webhooks whose deliveries are attempted at once.
    pub webhook_concurrency: usize,
    /// Most deliveries of one webhook attempted at once, started in event order (1: one after
    /// the other, strictly in event order).
    pub webhook_in_flight: usize,
    /// Longest wait between two webhook sender passes, seconds.
    pub webhook_poll_interval_secs: u64,
}

impl Default for MerchantConfig {
    fn default() -> Self {
        MerchantConfig {
            allow_private_webhooks: false,
            webhook_timeout_secs: 10,
            webhook_concurrency: 16,
            webhook_in_flight: 8,
            webhook_poll_interval_secs: 2,
        }
    }
}

/// The merchant service.
#[derive(Clone)]
pub struct Merchant {
    bank: Bank,
    store: Store,
    /// Woken when events were appended to the outbox (the webhook sender waits on it).
    outbox: Arc<Notify>,
    /// Woken when a payout may be paid (the payout driver waits on it).
    payout_wake: Arc<Notify>,
    /// Where fiat invoices get their rate.
    prices: Option<Arc<dyn PriceSource>>,
    config: MerchantConfig,
    transport: webhooks::Transport,
}

impl Merchant {
    /// Merchant services over `bank`, keeping stores and keys in `store` (the bank's database).
    pub fn new(bank: Bank, store: Store) -> Merchant {
        let config = MerchantConfig::default();
        Merchant {
            bank,
            store,
            outbox: Arc::new(Notify::new()),
            payout_wake: Arc::new(Notify::new()),
            prices: None,
            transport: webhooks::Transport::new(&config),
            config,
        }
    }

    /// Prices fiat invoices with `prices` (without, only BTC and SATS invoices can be made).
    pub fn with_prices(mut self, prices: Arc<dyn PriceSource>) -> Merchant {
        self.prices = Some(prices);
        self
    }

    /// The same service with other settings.
    pub fn with_config(mut self, config: MerchantConfig) -> Merchant {
        self.transport = webhooks::Transport::new(&config);
        self.config = config;
        self
    }

    /// The caller a Greenfield key secret stands for, if it is a live key.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<(Caller, MerchantKeyRecord)>, MerchantError> {
        let Some(key) = self.store.merchant_key_by_hash(&hash_token(secret)).await? else {
            return Ok(None);
        };
        let caller = Caller {
            account: key.account_id,
            permissions: Permissions::from_stored(&key.permissions),
        };
        Ok(Some((caller, key)))
    }

    /// Makes a key for the caller's account with `permissions` (BTCPay strings), none broader
    /// than the caller's own, store-scoped ones only for the account's stores.
    pub async fn create_key(
        &self,
        caller: &Caller,
        label: &str,
        permissions: &[String],
    ) -> Result<CreatedKey, MerchantError> {
        let label = label.trim();
        if label.chars().count() > MAX_LABEL_CHARS {
            return Err(MerchantError::field("label", "label is at most 100 characters"));
        }
        let mut granted = Vec::new();
        for (i, text) in permissions.iter().enumerate() {
            let path = format!("permissions[{i}]");
            let permission = Permission::parse(text).map_err(|e| MerchantError::field(&path, &e.to_string()))?;
            if let Some(store) = permission.store() {
                self.own_store(caller.account, store).await?;
            }
            if !caller.permissions.allows(permission.policy(), permission.store()) {
                return Err(MerchantError::Forbidden(permission.policy()));
            }
            granted.push(permission.to_string());
        }
        granted.sort();
        granted.dedup();
        if self.store.merchant_keys_of(caller.account).await?.len() >= MAX_KEYS_PER_ACCOUNT {
            return Err(MerchantError::field(
                "",
                "this account holds the most API keys it may; revoke one",
            ));
        }
        let secret = random_token("", KEY_LEN);
        let key = MerchantKeyRecord {
            id: uuid::Uuid::now_v7().simple().to_string(),
            account_id: caller.account,
            label: label.to_string(),
            permissions: granted,
            created_at: self.bank.now_ms(),
        };
        self.store.merchant_key_create(&hash_token(&secret), &key).await?;
        Ok(CreatedKey { secret, key })
    }

    /// The account's live keys.
    pub async fn keys(&self, account: AccountId) -> Result<Vec<MerchantKeyRecord>, MerchantError> {
        Ok(self.store.merchant_keys_of(account).await?)
    }

    /// Revokes one of the account's keys.
    pub async fn revoke_key(&self, account: AccountId, id: &str) -> Result<(), MerchantError> {
        if self.store.merchant_key_revoke(account, id, self.bank.now_ms()).await? {
            Ok(())
        } else {
            Err(MerchantError::KeyNotFound)
        }
    }

    /// Creates a store from BTCPay's `StoreBaseData`, settled into the account's default
    /// wallet. Needs `btcpay.store.canmodifystoresettings` over every store.
    pub async fn create_store(&self, caller: &Caller, body: &Value) -> Result<StoreView, MerchantError> {
        caller.require(CAN_MODIFY_STORE_SETTINGS, None)?;
        let blank = StoreView {
            id: String::new(),
            name: String::new(),
            default_currency: "USD".into(),
            archived: false,
            settings: StoreSettings::default(),
        };
        let view = stores::apply(&blank, body).map_err(MerchantError::Invalid)?;
        if self.store.merchant_stores_of(caller.account).await?.len() >= MAX_STORES_PER_ACCOUNT {
            return Err(MerchantError::field("", "this account owns the most stores it may"));
        }
        let account = self.bank.account(caller.account).await?;
        let now = self.bank.now_ms();
        let record = MerchantStoreRecord {
            id: store_id(),
            account_id: caller.account,
            wallet_id: account.default_wallet_id,
            name: view.name,
            default_currency: view.default_currency,
            settings: settings_json(&view.settings)?,
            archived_at: view.archived.then_some(now),
            created_at: now,
            updated_at: now,
        };
        self.store.merchant_store_create(&record).await?;
        view_of(&record)
    }

    /// The caller's stores it may view.
    pub async fn stores(&self, caller: &Caller) -> Result<Vec<StoreView>, MerchantError> {
        self.store
            .merchant_stores_of(caller.account)
            .await?
            .iter()
            .filter(|s| caller.permissions.allows(CAN_VIEW_STORE_SETTINGS, Some(&s.id)))
            .map(view_of)
            .collect()
    }

    /// One of the caller's stores (`btcpay.store.canviewstoresettings`).
    pub async fn store(&self, caller: &Caller, id: &str) -> Result<StoreView, MerchantError> {
        let record = self.own_store(caller.account, id).await?;
        caller.require(CAN_VIEW_STORE_SETTINGS, Some(id))?;
        view_of(&record)
    }

    /// Changes a store (`btcpay.store.canmodifystoresettings`); fields not sent are kept.
    pub async fn update_store(&self, caller: &Caller, id: &str, body: &Value) -> Result<StoreView, MerchantError> {
        let mut record = self.own_store(caller.account, id).await?;
        caller.require(CAN_MODIFY_STORE_SETTINGS, Some(id))?;
        let view = stores::apply(&view_of(&record)?, body).map_err(MerchantError::Invalid)?;
        let now = self.bank.now_ms();
        record.name = view.name;
        record.default_currency = view.default_currency;
        record.settings = settings_json(&view.settings)?;
        record.archived_at = match (view.archived, record.archived_at) {
            (true, Some(at)) => Some(at),
            (true, None) => Some(now),
            (false, _) => None,
        };
        record.updated_at = now;
        if !self.store.merchant_store_update(&record).await? {
            return Err(MerchantError::StoreNotFound);
        }
        view_of(&record)
    }

    /// Deletes a store (`btcpay.store.canmodifystoresettings`).
    pub async fn delete_store(&self, caller: &Caller, id: &str) -> Result<(), MerchantError> {
        self.own_store(caller.account, id).await?;
        caller.require(CAN_MODIFY_STORE_SETTINGS, Some(id))?;
        if self.store.merchant_store_delete(id, self.bank.now_ms()).await? {
            Ok(())
        } else {
            Err(MerchantError::StoreNotFound)
        }
    }

    /// One of the caller's stores that it holds `policy` over. As BTCPay checks the permission
    /// before it looks the store up, a store the caller does not have is a missing permission.
    async fn store_for(
        &self,
        caller: &Caller,
        store_id: &str,
        policy: &'static str,
    ) -> Result<MerchantStoreRecord, MerchantError> {
        caller.require(policy, Some(store_id))?;
        match self.own_store(caller.account, store_id).await {
            Err(MerchantError::StoreNotFound) => Err(MerchantError::Forbidden(policy)),
            other => other,
        }
    }

    /// Whether `caller` may reach a resource of store `owner` with `policy`, on a route that
    /// names `route_store` (if it does): a resource of another store than the route's, or of
    /// another account's store, is `missing()`, as unknown as one that does not exist.
    async fn reach(
        &self,
        caller: &Caller,
        route_store: Option<&str>,
        owner: &str,
        policy: &'static str,
        missing: fn() -> MerchantError,
    ) -> Result<(), MerchantError> {
        if route_store.is_some_and(|s| s != owner) {
            return Err(missing());
        }
        match self.own_store(caller.account, owner).await {
            Ok(_) => {}
            Err(MerchantError::StoreNotFound) if route_store.is_none() => return Err(missing()),
            Err(e) => return Err(e),
        }
        caller.require(policy, Some(owner))
    }

    /// A store of `account`; another account's store is as unknown as a missing one.
    async fn own_store(&self, account: AccountId, id: &str) -> Result<MerchantStoreRecord, MerchantError> {
        match self.store.merchant_store(id).await? {
            Some(record) if record.account_id == account => Ok(record),
            _ => Err(MerchantError::StoreNotFound),
        }
    }
}

/// A new store id: 44 base62 characters, like BTCPay's base58 ids in length and alphabet size.
fn store_id() -> String {
    random_token("", 44)
}

fn settings_json(settings: &StoreSettings) -> Result<String, MerchantError> {
    serde_json::to_string(settings).map_err(|e| MerchantError::Store(flash_store::StoreError::Decode(e.to_string())))
}

fn view_of(record: &MerchantStoreRecord) -> Result<StoreView, MerchantError> {
    let settings = serde_json::from_str(&record.settings)
        .map_err(|e| MerchantError::Store(flash_store::StoreError::Decode(format!("store settings: {e}"))))?;
    Ok(StoreView {
        id: record.id.clone(),
        name: record.name.clone(),
        default_currency: record.default_currency.clone(),
        archived: record.archived_at.is_some(),
        settings,
    })
}
