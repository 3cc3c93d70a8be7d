//! Flash's Cashu mint, on the bank's ledger.
//!
//! The protocol types, BDHKE, DLEQ proofs and spending conditions come from the `cashu` crate;
//! the engine and its storage are ours. Every note the mint signs or redeems is a row written in
//! the same database transaction as the journal that moves its value:
//!
//! - ecash in circulation is the liability `mint:outstanding`; paid mint quotes not yet issued
//!   are `mint:quotes`;
//! - a note is redeemable once: its `Y = hash_to_curve(secret)` is the primary key of the
//!   redeemed notes, so of two requests spending it, exactly one commits;
//! - a melt over Lightning pays through the bank's Lightning payment saga: its notes are
//!   `pending`, and their value held in `lightning:pending`, while the payment is in flight,
//!   then spent or released exactly once with the journal that settles or reverses the hold.
//!   One payment per payment hash, a wallet's or a melt's, is the payments table's unique
//!   index.

mod error;
mod keys;
mod quotes;
mod subscriptions;
mod swap;
pub mod wallet;

use std::sync::{Arc, RwLock};

use cashu::nuts::{
    nut04, nut05, nut17, nut19, CurrencyUnit, Id, KeySet, KeySetInfo, KeysResponse, KeysetResponse, MintInfo,
    MintVersion, Nuts, PaymentMethod,
};
use flash_bank::Bank;
use flash_core::secrets::KeyEncryptionKey;
use flash_core::{Currency, SystemAccount};
use flash_store::{KeysetRecord, Record, Store};

pub use error::MintError;
pub use keys::{blind_sign, keyset_id, IdVersion, Keyring, Keyset};
pub use quotes::{EcashMinted, EcashRedeemed};
pub use subscriptions::Watch;
pub use swap::verify_conditions;

/// Purpose under which the mint seed is sealed in the store.
pub const MINT_SEED_PURPOSE: &str = "mint-seed";

/// The mint's settings (`[mint]` in `flashd`'s file).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MintConfig {
    /// Whether `flashd` runs the mint (its `/v1` routes and `ecashMint`/`ecashRedeem`).
    pub enabled: bool,
    /// Name shown in `/v1/info`.
    pub name: String,
    /// Description shown in `/v1/info`.
    pub description: Option<String>,
    /// Amounts of a new keyset: 1, 2, 4, … 2^(max_order - 1) sats.
    pub max_order: u32,
    /// Fee per input of a new keyset, parts per thousand of a sat (NUT-02).
    pub input_fee_ppk: u64,
    /// Most inputs in one request.
    pub max_inputs: usize,
    /// Most outputs in one request.
    pub max_outputs: usize,
    /// Smallest mint quote, sats.
    pub mint_min: u64,
    /// Largest mint quote, sats.
    pub mint_max: u64,
    /// Smallest melt, sats.
    pub melt_min: u64,
    /// Largest melt, sats.
    pub melt_max: u64,
    /// How long a quote stays valid, seconds.
    pub quote_ttl_secs: u64,
    /// How often melts left pending are looked up on the Lightning node (and keysets rotated
    /// by other nodes read), seconds.
    pub reconcile_interval_secs: u64,
}

impl Default for MintConfig {
    fn default() -> Self {
        MintConfig {
            enabled: true,
            name: "Flash".into(),
            description: Some("Flash's ecash mint, on the bank's ledger".into()),
            max_order: 32,
            input_fee_ppk: 0,
            max_inputs: 100,
            max_outputs: 100,
            mint_min: 1,
            mint_max: 1_000_000,
            melt_min: 1,
            melt_max: 1_000_000,
            quote_ttl_secs: 3_600,
            reconcile_interval_secs: 15,
        }
    }
}

/// The mint: cheap to clone, shared by every handler.
#[derive(Clone)]
pub struct Mint {
    bank: Bank,
    /// The mint's own tables (keysets, notes, quotes); money moves only through `bank`.
    store: Store,
    config: Arc<MintConfig>,
    seed: Arc<Vec<u8>>,
    keyring: Arc<RwLock<Arc<Keyring>>>,
    /// The URL wallets reach this mint at (put in the tokens it makes).
    url: Arc<String>,
    /// Wakes NUT-17 subscribers after each change.
    changes: subscriptions::Changes,
    /// When the keysets were last read from the store, Unix ms.
    reloaded_at: Arc<std::sync::atomic::AtomicI64>,
    /// Melts this process is paying right now (reconciliation leaves them alone).
    driving: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
}

/// Least time between two keyset reloads caused by unknown keyset ids.
const RELOAD_MIN_INTERVAL_MS: i64 = 5_000;

impl Mint {
    /// Opens the mint over `bank`, keeping its notes and quotes in `store` (the bank's
    /// database): unseals (or first makes) the mint seed with `kek`, derives the stored keysets
    /// and makes the first one if there is none.
    pub async fn open(
        bank: Bank,
        store: Store,
        kek: &KeyEncryptionKey,
        config: MintConfig,
        url: String,
    ) -> Result<Mint, MintError> {
        let sealed = store
            .sealed_secret(MINT_SEED_PURPOSE, || {
                let seed: [u8; 32] = rand_seed();
                kek.seal(MINT_SEED_PURPOSE, &seed)
            })
            .await?;
        let seed = kek.open(MINT_SEED_PURPOSE, &sealed).map_err(|e| {
            MintError::Internal(format!("the mint seed does not open with this key-encryption key: {e}"))
        })?;
        let mint = Mint {
            bank,
            store,
            config: Arc::new(config),
            seed: Arc::new(seed),
            keyring: Arc::default(),
            url: Arc::new(url.trim_end_matches('/').to_string()),
            changes: subscriptions::Changes::default(),
            reloaded_at: Arc::default(),
            driving: Arc::default(),
        };
        mint.reload().await?;
        if mint.keyring().active(&CurrencyUnit::Sat).is_err() {
            mint.rotate(CurrencyUnit::Sat, "flashd").await?;
        }
        Ok(mint)
    }

    /// The settings.
    pub fn config(&self) -> &MintConfig {
        &self.config
    }

    /// The mint's own tables.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The bank.
    pub fn bank(&self) -> &Bank {
        &self.bank
    }

    /// The URL wallets reach the mint at.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The current keyring.
    pub fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(ring) => ring.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// [`Mint::reload`], unless it ran in the last few seconds (keyset ids a wallet makes up
    /// must not cost a reload each).
    pub(crate) async fn reload_soon(&self) -> Result<(), MintError> {
        let now = self.store().now_ms();
        let last = self.reloaded_at.load(std::sync::atomic::Ordering::Relaxed);
        if now.saturating_sub(last) < RELOAD_MIN_INTERVAL_MS {
            return Ok(());
        }
        self.reload().await
    }

    /// Derives the stored keysets again (after another node rotated them).
    pub async fn reload(&self) -> Result<(), MintError> {
        self.reloaded_at
            .store(self.store().now_ms(), std::sync::atomic::Ordering::Relaxed);
        let records = self.store().mint_keysets().await?;
        let sets = records
            .into_iter()
            .map(|r| Keyset::from_record(&self.seed, r))
            .collect::<Result<Vec<_>, _>>()?;
        let ring = Arc::new(Keyring::new(sets));
        match self.keyring.write() {
            Ok(mut slot) => *slot = ring,
            Err(poisoned) => *poisoned.into_inner() = ring,
        }
        Ok(())
    }

    /// Makes a new active keyset for `unit` with the configured amounts and input fee; the
    /// previous one stops signing and stays redeemable. Recorded in the audit log as `actor`'s.
    pub async fn rotate(&self, unit: CurrencyUnit, actor: &str) -> Result<KeySetInfo, MintError> {
        let unit_name = unit.to_string();
        let ring = self.keyring();
        let index = ring
            .all()
            .iter()
            .filter(|s| s.unit == unit)
            .map(|s| s.record.derivation_index + 1)
            .max()
            .unwrap_or(0);
        let (id, _) = Keyset::derive(
            &self.seed,
            &unit,
            index,
            self.config.max_order,
            self.config.input_fee_ppk,
        )?;
        let record = KeysetRecord {
            id: id.to_string(),
            unit: unit_name.clone(),
            derivation_index: index,
            max_order: self.config.max_order,
            input_fee_ppk: self.config.input_fee_ppk,
            active: true,
            created_at_ms: self.store().now_ms(),
        };
        let mut records = Vec::new();
        if ring.active(&unit).is_ok() {
            records.push(Record::mint_keysets_deactivated(&unit_name));
        }
        records.push(Record::mint_keyset_created(&record));
        let audit = flash_store::Audit {
            actor: actor.to_string(),
            action: "mint.keyset_rotate".into(),
            subject: record.id.clone(),
            detail: format!(
                "unit {unit_name}, index {index}, input fee {} ppk",
                record.input_fee_ppk
            ),
        };
        records.push(Record::audited(&audit, record.created_at_ms));
        self.store().mint_apply(records).await?;
        self.reload().await?;
        Ok(self.keyring().get(&id)?.info())
    }

    /// The active keysets' public keys (`GET /v1/keys`).
    pub fn keys(&self) -> KeysResponse {
        let ring = self.keyring();
        KeysResponse {
            keysets: ring.all().iter().filter(|s| s.active).map(|s| s.keyset()).collect(),
        }
    }

    /// One keyset's public keys, active or not (`GET /v1/keys/{id}`).
    pub fn keyset(&self, id: &str) -> Result<KeySet, MintError> {
        let id: Id = id.parse().map_err(|_| MintError::UnknownKeyset)?;
        Ok(self.keyring().get(&id)?.keyset())
    }

    /// What the mint is and supports (`GET /v1/info`, NUT-06).
    pub fn info(&self) -> MintInfo {
        let sat = CurrencyUnit::Sat;
        let amount = |v: u64| Some(cashu::Amount::from(v));
        let minting = self.bank.lightning_node().is_some();
        let mint = nut04::Settings::new(
            vec![nut04::MintMethodSettings {
                method: PaymentMethod::BOLT11,
                unit: sat.clone(),
                method_name: None,
                min_amount: amount(self.config.mint_min),
                max_amount: amount(self.config.mint_max),
                options: Some(nut04::MintMethodOptions::Bolt11 { description: false }),
            }],
            !minting,
        );
        let melt = nut05::Settings::new(
            vec![nut05::MeltMethodSettings {
                method: PaymentMethod::BOLT11,
                unit: sat,
                method_name: None,
                min_amount: amount(self.config.melt_min),
                max_amount: amount(self.config.melt_max),
                options: Some(nut05::MeltMethodOptions::Bolt11 { amountless: true }),
            }],
            !minting,
        );
        let nuts = Nuts::new()
            .nut04(mint)
            .nut05(melt)
            .nut07(true)
            .nut08(true)
            .nut09(true)
            .nut10(true)
            .nut11(true)
            .nut12(true)
            .nut14(true)
            .nut17(vec![nut17::SupportedMethods::default_bolt11(CurrencyUnit::Sat)])
            .nut19(
                None,
                vec![
                    nut19::CachedEndpoint::new(nut19::Method::Post, nut19::Path::custom_mint("bolt11")),
                    nut19::CachedEndpoint::new(nut19::Method::Post, nut19::Path::custom_melt("bolt11")),
                    nut19::CachedEndpoint::new(nut19::Method::Post, nut19::Path::Swap),
                ],
            )
            .nut20(true);
        MintInfo {
            name: Some(self.config.name.clone()),
            version: Some(MintVersion::new("flash".into(), env!("CARGO_PKG_VERSION").into())),
            description: self.config.description.clone(),
            nuts,
            urls: Some(vec![self.url.to_string()]),
            time: u64::try_from(self.store().now_ms() / 1_000).ok(),
            max_array_length: u64::try_from(self.config.max_inputs.max(self.config.max_outputs)).ok(),
            ..MintInfo::default()
        }
    }

    /// Every keyset (`GET /v1/keysets`).
    pub fn keysets(&self) -> KeysetResponse {
        KeysetResponse {
            keysets: self.keyring().infos(),
        }
    }
}

/// The mint's books: what its notes say against what the ledger says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MintStatus {
    /// Notes issued, spent and pending, and paid quotes not yet issued.
    pub notes: flash_store::MintTotals,
    /// The ledger's `mint:outstanding`.
    pub ledger_outstanding: i64,
    /// The ledger's `mint:quotes`.
    pub ledger_quotes: i64,
}

impl MintStatus {
    /// Whether unspent notes not pending in a melt equal `mint:outstanding` and paid quotes
    /// equal `mint:quotes`, and
    /// neither is negative (more notes redeemed than issued means notes were signed that the
    /// mint never recorded).
    pub fn balanced(&self) -> bool {
        self.notes.outstanding() == self.ledger_outstanding
            && self.notes.quotes_paid == self.ledger_quotes
            && self.ledger_outstanding >= 0
            && self.ledger_quotes >= 0
    }
}

impl Mint {
    /// The mint's books (`ecashStatus`).
    pub async fn status(&self) -> Result<MintStatus, MintError> {
        let notes = self.store().mint_totals().await?;
        Ok(MintStatus {
            notes,
            ledger_outstanding: self
                .bank
                .system_balance(SystemAccount::MintOutstanding, Currency::Btc)
                .await?,
            ledger_quotes: self
                .bank
                .system_balance(SystemAccount::MintQuotes, Currency::Btc)
                .await?,
        })
    }

    /// Resolves melts left pending (a crash, or a payment slower than the request) and reads
    /// keysets rotated by other nodes, at start and then every `reconcile_interval_secs`, until
    /// `shutdown` resolves.
    pub async fn run_melt_reconciler(&self, shutdown: impl std::future::Future<Output = ()>) {
        let every = std::time::Duration::from_secs(self.config.reconcile_interval_secs.max(1));
        tokio::pin!(shutdown);
        loop {
            // Keysets another node rotated meanwhile.
            if let Err(e) = self.reload().await {
                tracing::warn!(error = %e, "reloading the mint's keysets failed");
            }
            match self.reconcile_melts().await {
                Ok(0) => {}
                Ok(n) => tracing::info!(ended = n, "pending melts resolved"),
                Err(e) => tracing::warn!(error = %e, "melt reconciliation failed; retrying"),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }
}

fn rand_seed() -> [u8; 32] {
    let key = cashu::nuts::SecretKey::generate();
    key.secret_bytes()
}
