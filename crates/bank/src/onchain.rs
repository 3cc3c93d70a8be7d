//! On-chain deposits: addresses from the hot wallet recorded in the address index, and the
//! deposit watcher that turns what the wallet sees into ledger postings.
//!
//! A deposit is recorded as pending when first seen (mempool or block), credited once it has
//! the configured confirmations (the journal's idempotency key and the row's status change
//! commit together, so exactly once), dropped if it leaves the chain before that, and put
//! under review with a hold on the wallet if it leaves the chain after it. A review ends by
//! itself when the deposit is confirmed deeply enough again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use flash_core::ledger::{IdempotencyKey, JournalKind, JournalRequest, LedgerOp};
use flash_core::onchain::{
    parse_address, BlockRef, BroadcastBehaviour, ChainError, ChainSimulator, HotWallet, ReceivedOutput,
};
use flash_core::{AccountId, Currency, HoldId, LedgerError, Sats, SystemAccount, WalletId};
use flash_store::{Audit, DepositRecord, DepositStatus, OnchainTotals, PostRequest, Record, SeenDeposit};

use crate::{Bank, BankError, Transaction};

/// Idempotency scope of deposit credits; the key is the outpoint.
const DEPOSIT_SCOPE: &str = "onchain-deposit";
/// Idempotency scope of review holds; the key is the outpoint and the review's number.
const REVIEW_SCOPE: &str = "onchain-review";
/// How far below the last processed tip each pass looks again: a reorganisation deeper than
/// this is not followed.
const WATCH_DEPTH: u32 = 144;

/// On-chain settings (`[onchain.policy]`): confirmations, deposit fees, payout batching and
/// fee rates.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OnchainConfig {
    /// Confirmations before a deposit is credited.
    pub confirmations: u32,
    /// Flat fee charged on each deposit, satoshis.
    pub deposit_fee_flat_sats: i64,
    /// Fee charged on each deposit, basis points of its value (on top of the flat fee).
    pub deposit_fee_bps: u32,
    /// How often the watcher looks at the chain when the backend sends no notification.
    pub poll_interval_secs: u64,
    /// Seconds between payout batches.
    pub batch_interval_secs: u64,
    /// Most payouts in one batch.
    pub max_batch_payouts: u32,
    /// Confirmation target of batches, blocks (for the fee estimate).
    pub batch_target_blocks: u16,
    /// Confirmation target of fast (immediate) payouts and fee bumps, blocks.
    pub fast_target_blocks: u16,
    /// Lowest fee rate paid, satoshis per vbyte.
    pub fee_rate_floor_sat_per_vb: u64,
    /// Highest fee rate paid, satoshis per vbyte.
    pub fee_rate_ceiling_sat_per_vb: u64,
    /// Fee rate used when the chain gives no estimate (a regtest Electrum server never does),
    /// satoshis per vbyte.
    pub fee_rate_fallback_sat_per_vb: u64,
    /// Smallest payout, satoshis.
    pub dust_sats: i64,
    /// Blocks a payout transaction may stay unconfirmed before its fee is bumped (0: never).
    pub rbf_after_blocks: u32,
}

impl Default for OnchainConfig {
    fn default() -> Self {
        OnchainConfig {
            confirmations: 2,
            deposit_fee_flat_sats: 0,
            deposit_fee_bps: 0,
            poll_interval_secs: 10,
            batch_interval_secs: 60,
            max_batch_payouts: 100,
            batch_target_blocks: 6,
            fast_target_blocks: 2,
            fee_rate_floor_sat_per_vb: 1,
            fee_rate_ceiling_sat_per_vb: 500,
            fee_rate_fallback_sat_per_vb: 10,
            dust_sats: 5_000,
            rbf_after_blocks: 6,
        }
    }
}

impl OnchainConfig {
    /// The fee on a deposit of `amount`: flat plus basis points, rounded up, at most the
    /// deposit itself.
    pub fn deposit_fee(&self, amount: Sats) -> Result<Sats, BankError> {
        let proportional = amount.fee(self.deposit_fee_bps, Sats::ZERO)?;
        let fee = proportional.checked_add(Sats::non_negative(self.deposit_fee_flat_sats)?)?;
        Ok(fee.min(amount))
    }
}

/// The chain rail: the hot wallet, and the simulator's controls when it is the dev chain.
pub(crate) struct ChainRail {
    pub(crate) wallet: Arc<dyn HotWallet>,
    pub(crate) simulator: Option<Arc<dyn ChainSimulator>>,
    /// One watcher pass at a time.
    pass: tokio::sync::Mutex<()>,
    /// One payout batcher pass at a time.
    pub(crate) payouts: tokio::sync::Mutex<()>,
    /// The hot wallet as of the last watcher pass: tip, confirmed and unconfirmed balance.
    last: std::sync::Mutex<Option<(u32, i64, i64)>>,
    /// Whether this process held the lease when it last asked.
    leading: std::sync::atomic::AtomicBool,
    /// One lease check at a time (a takeover reloads the wallets once).
    lease: tokio::sync::Mutex<()>,
}

impl ChainRail {
    pub(crate) fn new(wallet: Arc<dyn HotWallet>, simulator: Option<Arc<dyn ChainSimulator>>) -> ChainRail {
        ChainRail {
            wallet,
            simulator,
            pass: tokio::sync::Mutex::new(()),
            payouts: tokio::sync::Mutex::new(()),
            last: std::sync::Mutex::new(None),
            leading: std::sync::atomic::AtomicBool::new(false),
            lease: tokio::sync::Mutex::new(()),
        }
    }
}

/// The lease that makes one flashd node the one that spends from the wallets.
const ONCHAIN_LEASE: &str = "onchain-wallets";
/// The shortest on-chain lease: a holder renews it at every watcher pass.
const LEASE_TTL_MIN_MS: i64 = 60_000;

/// The on-chain service at a glance (admin API and metrics).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnchainStatus {
    /// The chain backend's kind.
    pub source: &'static str,
    /// Confirmations a deposit needs.
    pub confirmations: u32,
    /// The tip, hot wallet confirmed and unconfirmed balance as of the last watcher pass.
    pub hot: Option<(u32, i64, i64)>,
    /// Pending deposits and queued payouts.
    pub totals: OnchainTotals,
}

/// What one watcher pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DepositReport {
    /// The chain tip it saw.
    pub tip_height: u32,
    /// Deposits seen for the first time.
    pub seen: u32,
    /// Deposits credited.
    pub credited: u32,
    /// Pending deposits that left the chain and the mempool.
    pub dropped: u32,
    /// Credited deposits that left the chain: under review.
    pub to_review: u32,
    /// Reviews ended because the deposit is confirmed again.
    pub reviews_cleared: u32,
}

fn chain_error(e: ChainError) -> BankError {
    match e {
        ChainError::InvalidInput(m) => BankError::InvalidInput(m),
        other => BankError::OnchainUnavailable(other.to_string()),
    }
}

/// Why an address given to the bank is not usable.
fn address_error(e: ChainError) -> BankError {
    match e {
        ChainError::WrongNetwork(what, network) => {
            BankError::InvalidAddress(format!("{what} is not a {network} address"))
        }
        other => BankError::InvalidAddress(other.to_string()),
    }
}

fn outpoint_key(o: &ReceivedOutput) -> String {
    o.outpoint.to_string()
}

/// Confirmations of a block at `height` under `tip` (0 when unconfirmed).
fn confirmations(tip: u32, height: Option<u32>) -> u32 {
    height.map_or(0, |h| tip.saturating_add(1).saturating_sub(h))
}

/// What ending a review took back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReviewReclaim {
    /// Taken back from the wallet (what the hold held).
    pub reclaimed: i64,
    /// Credited but already spent by the wallet: the bank's loss.
    pub shortfall: i64,
}

impl Bank {
    /// Whether an on-chain wallet is configured.
    pub fn onchain_enabled(&self) -> bool {
        self.onchain.is_some()
    }

    pub(crate) fn chain(&self) -> Result<&ChainRail, BankError> {
        self.onchain
            .as_deref()
            .ok_or_else(|| BankError::OnchainUnavailable("no on-chain wallet is configured".into()))
    }

    /// The on-chain service at a glance.
    pub async fn onchain_status(&self) -> Result<OnchainStatus, BankError> {
        let rail = self.chain()?;
        let hot = rail.last.lock().ok().and_then(|l| *l);
        Ok(OnchainStatus {
            source: rail.wallet.source_kind(),
            confirmations: self.config.onchain.confirmations,
            hot,
            totals: self.store.onchain_totals().await?,
        })
    }

    /// A new deposit address for `wallet_id` of `account`, recorded in the address index.
    pub async fn onchain_address_create(&self, account: AccountId, wallet_id: WalletId) -> Result<String, BankError> {
        let rail = self.chain()?;
        self.receiving_wallet(account, wallet_id).await?;
        let index = self.store.next_onchain_address_index().await?;
        let address = rail.wallet.deposit_address(index).await.map_err(chain_error)?;
        self.store.insert_onchain_address(&address, wallet_id, index).await?;
        Ok(address)
    }

    /// The newest deposit address of `wallet_id`, or a new one if it has none.
    pub async fn onchain_address_current(&self, account: AccountId, wallet_id: WalletId) -> Result<String, BankError> {
        self.receiving_wallet(account, wallet_id).await?;
        match self.store.current_onchain_address(wallet_id).await? {
            Some(address) => Ok(address),
            None => self.onchain_address_create(account, wallet_id).await,
        }
    }

    /// Checks that `wallet_id` is `account`'s bitcoin wallet and may receive.
    async fn receiving_wallet(&self, account: AccountId, wallet_id: WalletId) -> Result<(), BankError> {
        let wallet = self.own_wallet(account, wallet_id).await?;
        if wallet.currency != Currency::Btc {
            return Err(BankError::WalletNotFound);
        }
        let record = self.store.account(account).await?.ok_or(BankError::AccountNotFound)?;
        if record.status != flash_core::AccountStatus::Active {
            return Err(BankError::AccountNotActive(record.status.as_str()));
        }
        Ok(())
    }

    /// Deposits of `account`'s `wallet_id`, newest first, optionally only to `address`.
    pub async fn onchain_deposits(
        &self,
        account: AccountId,
        wallet_id: WalletId,
        address: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DepositRecord>, BankError> {
        self.own_wallet(account, wallet_id).await?;
        Ok(self
            .store
            .onchain_deposits_of(wallet_id, address, limit.clamp(1, 100))
            .await?)
    }

    /// The credited deposits to `address` of `account`'s `wallet_id` as transactions, newest
    /// first (at most `limit`).
    pub async fn onchain_transactions_by_address(
        &self,
        account: AccountId,
        wallet_id: WalletId,
        address: &str,
        limit: i64,
    ) -> Result<Vec<Transaction>, BankError> {
        let mut transactions = Vec::new();
        for deposit in self.onchain_deposits(account, wallet_id, Some(address), limit).await? {
            let key = IdempotencyKey {
                scope: DEPOSIT_SCOPE.into(),
                key: deposit.outpoint,
            };
            if let Some(journal) = self.store.journal_for_key(&key).await? {
                transactions.push(self.transaction(wallet_id, journal).await?);
            }
        }
        Ok(transactions)
    }

    /// A deposit by outpoint (`txid:vout`), for showing a transaction's on-chain details.
    pub async fn onchain_deposit(&self, outpoint: &str) -> Result<Option<DepositRecord>, BankError> {
        Ok(self.store.onchain_deposit(outpoint).await?)
    }

    /// One watcher pass: syncs the hot wallet, records new deposits, credits those with enough
    /// confirmations, and handles those that left the chain.
    pub async fn onchain_sync(&self) -> Result<DepositReport, BankError> {
        let rail = self.chain()?;
        let _pass = rail.pass.lock().await;
        let from = self.store.onchain_cursor().await?.saturating_sub(WATCH_DEPTH);
        let snapshot = rail.wallet.sync(from).await.map_err(chain_error)?;
        let tip = snapshot.tip.height;
        if let Ok(mut last) = rail.last.lock() {
            *last = Some((
                tip,
                snapshot.confirmed_balance.get(),
                snapshot.unconfirmed_balance.get(),
            ));
        }
        let mut report = DepositReport {
            tip_height: tip,
            ..DepositReport::default()
        };
        let mut seen: HashMap<String, &ReceivedOutput> = HashMap::new();
        for output in &snapshot.received {
            let Some(owner) = self.store.onchain_address_owner(&output.address).await? else {
                tracing::warn!(address = %output.address, outpoint = %output.outpoint, "output to a wallet address that is not in the address index; not attributed");
                continue;
            };
            let outpoint = outpoint_key(output);
            let txid = output.outpoint.txid.to_string();
            let new = self
                .store
                .record_onchain_deposit(&SeenDeposit {
                    outpoint: &outpoint,
                    txid: &txid,
                    vout: output.outpoint.vout,
                    address: &output.address,
                    wallet_id: owner.wallet_id,
                    amount_sat: output.amount.get(),
                    confirmed_height: output.confirmed_height,
                })
                .await?;
            if new {
                report.seen += 1;
                tracing::info!(%outpoint, sats = output.amount.get(), wallet = %owner.wallet_id, "deposit seen");
                self.publish_deposit(owner.account_id, owner.wallet_id, &outpoint, output.amount.get());
            }
            seen.insert(outpoint, output);
        }
        let required = self.config.onchain.confirmations.max(1);
        for deposit in self.store.onchain_deposits_to_watch(from).await? {
            let output = seen.get(&deposit.outpoint).copied();
            let confs = output.map_or(0, |o| confirmations(tip, o.confirmed_height));
            // Only what this pass could have seen may be judged missing.
            let watched = deposit.confirmed_height.is_none_or(|h| h >= i64::from(from));
            match deposit.status {
                DepositStatus::Pending if confs >= required => {
                    report.credited += u32::from(self.credit_deposit(&deposit).await?);
                }
                DepositStatus::Pending if output.is_none() && watched => {
                    let dropped = self.store.drop_onchain_deposit(&deposit.outpoint).await?;
                    report.dropped += u32::from(dropped);
                    if dropped {
                        tracing::warn!(outpoint = %deposit.outpoint, "pending deposit left the chain and the mempool; nothing was credited");
                        let (account, wallet) = (deposit.account_id, deposit.wallet_id);
                        self.publish_deposit(account, wallet, &deposit.outpoint, deposit.amount_sat);
                    }
                }
                DepositStatus::Credited if confs == 0 && watched => {
                    let reason = match output {
                        None => "the credited deposit is no longer in the chain nor in the mempool",
                        Some(_) => "the credited deposit's block was reorganised away; it is unconfirmed again",
                    };
                    self.review_deposit(&deposit, reason).await?;
                    report.to_review += 1;
                }
                DepositStatus::Review if confs >= required => {
                    self.clear_review(&deposit).await?;
                    report.reviews_cleared += 1;
                }
                _ => {}
            }
        }
        self.track_batches(&snapshot.spending, from).await?;
        self.track_sweeps(&snapshot.spending, from).await?;
        self.store.set_onchain_cursor(tip).await?;
        Ok(report)
    }

    /// Credits a pending deposit, once. Returns whether it was credited now.
    async fn credit_deposit(&self, deposit: &DepositRecord) -> Result<bool, BankError> {
        let amount = Sats::positive(deposit.amount_sat)?;
        let fee = self.config.onchain.deposit_fee(amount)?;
        let hot = SystemAccount::OnchainHot.ledger_id(Currency::Btc);
        let op = if fee == amount {
            // The fee takes the whole deposit: nothing reaches the wallet.
            LedgerOp::Transfer {
                from: hot,
                to: SystemAccount::FeesRevenue.ledger_id(Currency::Btc),
                amount: amount.get(),
                fee: 0,
                fee_to: None,
            }
        } else {
            LedgerOp::Transfer {
                from: hot,
                to: deposit.wallet_id.into(),
                amount: amount.get() - fee.get(),
                fee: fee.get(),
                fee_to: (fee.get() > 0).then(|| SystemAccount::FeesRevenue.ledger_id(Currency::Btc)),
            }
        };
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: DEPOSIT_SCOPE.into(),
                key: deposit.outpoint.clone(),
            },
            kind: JournalKind::OnchainReceive,
            op,
            memo: None,
            limit: None,
        };
        let post = PostRequest {
            reference: Some(format!("onchain:{}", deposit.outpoint)),
            records: vec![Record::onchain_deposit_credited(
                &deposit.outpoint,
                fee.get(),
                self.store.now_ms(),
            )],
            ..PostRequest::from(journal)
        };
        match self.store.post(post).await? {
            Ok(posted) if !posted.replayed => {
                tracing::info!(outpoint = %deposit.outpoint, sats = amount.get(), fee = fee.get(), "deposit credited");
                self.publish_journal(deposit.account_id, deposit.wallet_id, posted.journal_id);
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Puts a credited deposit under review: an alert, and a hold on the wallet of as much of
    /// the credit as the wallet still has.
    async fn review_deposit(&self, deposit: &DepositRecord, reason: &str) -> Result<(), BankError> {
        let credited = deposit.amount_sat - deposit.fee_sat;
        let wallet = deposit.wallet_id.into();
        let available = self
            .store
            .balances(std::slice::from_ref(&wallet))
            .await?
            .get(&wallet)
            .copied()
            .unwrap_or(0);
        let held = credited.min(available);
        tracing::error!(
            outpoint = %deposit.outpoint,
            wallet = %deposit.wallet_id,
            credited,
            held,
            reason,
            "ALERT: a credited deposit left the chain; the wallet is under review"
        );
        let now = self.store.now_ms();
        if held <= 0 {
            self.store.onchain_deposit_to_review(&deposit.outpoint, reason).await?;
            return Ok(());
        }
        let hold = HoldId::new(format!("onchain-review:{}:{now}", deposit.outpoint));
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: REVIEW_SCOPE.into(),
                key: hold.as_str().to_string(),
            },
            kind: JournalKind::HoldOpen,
            op: LedgerOp::HoldOpen {
                hold: hold.clone(),
                wallet,
                pending: SystemAccount::OnchainReview.ledger_id(Currency::Btc),
                amount: held,
            },
            memo: Some(format!("under review: deposit {} left the chain", deposit.outpoint)),
            limit: None,
        };
        let post = PostRequest {
            reference: Some(format!("onchain:{}", deposit.outpoint)),
            records: vec![Record::onchain_deposit_to_review(
                &deposit.outpoint,
                reason,
                Some(&hold),
                now,
            )],
            ..PostRequest::from(journal)
        };
        match self.store.post(post).await? {
            Ok(posted) => {
                self.publish_journal(deposit.account_id, deposit.wallet_id, posted.journal_id);
                Ok(())
            }
            Err(LedgerError::InsufficientBalance { .. }) => {
                // The wallet spent in between: the next pass holds what is left.
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Ends a review whose deposit is confirmed again: releases its hold.
    async fn clear_review(&self, deposit: &DepositRecord) -> Result<(), BankError> {
        let Some(hold) = deposit.review_hold.clone() else {
            self.store.onchain_deposit_review_cleared(&deposit.outpoint).await?;
            return Ok(());
        };
        let record = Record::onchain_deposit_review_cleared(&deposit.outpoint, self.store.now_ms());
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: REVIEW_SCOPE.into(),
                key: format!("{}:released", hold.as_str()),
            },
            kind: JournalKind::HoldReverse,
            op: LedgerOp::HoldReverse { hold },
            memo: None,
            limit: None,
        };
        let post = PostRequest {
            reference: Some(format!("onchain:{}", deposit.outpoint)),
            records: vec![record],
            ..PostRequest::from(journal)
        };
        let posted = self.store.post(post).await??;
        tracing::info!(outpoint = %deposit.outpoint, "deposit confirmed again; review cleared and hold released");
        self.publish_journal(deposit.account_id, deposit.wallet_id, posted.journal_id);
        Ok(())
    }

    /// Deposits under review (credited, then gone from the chain), oldest first, each with
    /// what its hold still holds on the wallet. A review ends by itself when the deposit is
    /// confirmed again; [`Bank::onchain_review_reclaim`] ends one whose deposit is not coming
    /// back.
    pub async fn onchain_reviews(&self) -> Result<Vec<(DepositRecord, i64)>, BankError> {
        Ok(self.store.onchain_deposits_in_review().await?)
    }

    /// Ends a review whose deposit is not coming back (its transaction was double-spent, say):
    /// what the hold still holds goes back to the hot wallet's account, undoing the credit as
    /// far as the wallet still had it, and the deposit counts as dropped. The part the wallet
    /// had already spent is the bank's loss, returned as the shortfall. Audited as `operator`.
    pub async fn onchain_review_reclaim(&self, outpoint: &str, operator: &str) -> Result<ReviewReclaim, BankError> {
        let reviews = self.store.onchain_deposits_in_review().await?;
        let Some((deposit, held)) = reviews.into_iter().find(|(d, _)| d.outpoint == outpoint) else {
            return Err(BankError::InvalidInput(format!(
                "deposit {outpoint} is not under review"
            )));
        };
        let credited = deposit.amount_sat - deposit.fee_sat;
        let reclaim = ReviewReclaim {
            reclaimed: held,
            shortfall: credited - held,
        };
        let record = Record::onchain_deposit_reclaimed(outpoint, self.store.now_ms());
        let Some(hold) = deposit.review_hold.clone().filter(|_| held > 0) else {
            self.store.apply_record(record).await?;
            tracing::warn!(
                outpoint,
                operator,
                shortfall = reclaim.shortfall,
                "review ended: deposit dropped, nothing held to reclaim"
            );
            return Ok(reclaim);
        };
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: REVIEW_SCOPE.into(),
                key: format!("{}:reclaimed", hold.as_str()),
            },
            kind: JournalKind::HoldSettle,
            op: LedgerOp::HoldSettle {
                hold,
                to: SystemAccount::OnchainHot.ledger_id(Currency::Btc),
                used: held,
                fee: 0,
                keep: 0,
                keep_to: None,
            },
            memo: Some(format!("reclaimed: deposit {outpoint} left the chain")),
            limit: None,
        };
        let post = PostRequest {
            reference: Some(format!("onchain:{outpoint}")),
            records: vec![record],
            audit: Some(Audit {
                actor: operator.to_string(),
                action: "onchain.review.reclaim".into(),
                subject: deposit.wallet_id.to_string(),
                detail: format!(
                    "deposit {outpoint}: {held} sats reclaimed, {} sats shortfall",
                    reclaim.shortfall
                ),
            }),
            ..PostRequest::from(journal)
        };
        let posted = self.store.post(post).await??;
        tracing::warn!(
            outpoint,
            operator,
            reclaimed = held,
            shortfall = reclaim.shortfall,
            "review ended: deposit reclaimed"
        );
        self.publish_journal(deposit.account_id, deposit.wallet_id, posted.journal_id);
        Ok(reclaim)
    }

    /// Runs watcher passes until `shutdown`: after every chain notification, or every poll
    /// interval. Errors are logged and retried on the next pass.
    pub async fn run_onchain_watcher(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let Ok(rail) = self.chain() else { return };
        let every = Duration::from_secs(self.config.onchain.poll_interval_secs.max(1));
        loop {
            // Keeps the lease of the node that spends; the deposit watch itself is safe on
            // every node (credits are keyed), so it runs either way.
            if let Err(e) = self.lead_onchain().await {
                tracing::debug!(error = %e, "not running the on-chain wallets");
            }
            match self.onchain_sync().await {
                Ok(r) if r.seen + r.credited + r.dropped + r.to_review + r.reviews_cleared > 0 => {
                    tracing::info!(?r, "deposit watcher pass")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "deposit watcher pass failed; retrying"),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = rail.wallet.wait_for_activity(every) => {}
            }
        }
    }

    /// Makes sure this process is the one flashd node that spends from the hot and cold
    /// wallets (several nodes may share a database, each with its own copy of the wallets'
    /// state): takes or renews the database lease, and on taking it over reloads the wallets
    /// from the store so that what the previous holder recorded is known. Refused while
    /// another node holds it.
    pub(crate) async fn lead_onchain(&self) -> Result<(), BankError> {
        let rail = self.chain()?;
        let _one = rail.lease.lock().await;
        let ttl_ms = i64::try_from(self.config.onchain.poll_interval_secs.saturating_mul(3_000))
            .unwrap_or(i64::MAX)
            .max(LEASE_TTL_MIN_MS);
        let node = &self.config.node_name;
        let leading = self.store.take_lease(ONCHAIN_LEASE, node, ttl_ms).await?;
        let was_leading = rail.leading.swap(leading, std::sync::atomic::Ordering::SeqCst);
        if !leading {
            if was_leading {
                tracing::error!(%node, "lost the on-chain lease to another flashd node");
            }
            let holder = self
                .store
                .lease(ONCHAIN_LEASE)
                .await?
                .map(|(h, _)| h)
                .unwrap_or_default();
            return Err(BankError::OnchainUnavailable(format!(
                "another flashd node ({holder}) runs the on-chain wallets; send on-chain operator commands to it"
            )));
        }
        if !was_leading {
            let reloaded = async {
                rail.wallet.reload().await?;
                if let Some(cold) = &self.cold {
                    cold.wallet.reload().await?;
                }
                Ok::<(), ChainError>(())
            };
            if let Err(e) = reloaded.await {
                rail.leading.store(false, std::sync::atomic::Ordering::SeqCst);
                return Err(chain_error(e));
            }
            tracing::info!(%node, "this flashd node runs the on-chain wallets");
        }
        Ok(())
    }

    fn simulator(&self) -> Result<&Arc<dyn ChainSimulator>, BankError> {
        if !self.config.network.allows_dev_features() {
            return Err(BankError::NotOnMainnet);
        }
        self.chain()?
            .simulator
            .as_ref()
            .ok_or_else(|| BankError::OnchainUnavailable("the chain backend is not the dev simulator".into()))
    }

    /// Dev only: a deposit from outside to `address`, in the simulated mempool, then a
    /// watcher pass (so it shows as pending at once). Returns the txid.
    pub async fn dev_chain_deposit(&self, address: &str, amount: i64) -> Result<String, BankError> {
        let amount = Sats::positive(amount)?;
        let simulator = self.simulator()?;
        parse_address(address, self.config.network).map_err(address_error)?;
        let txid = simulator.deposit(address, amount).await.map_err(chain_error)?;
        self.onchain_sync().await?;
        Ok(txid.to_string())
    }

    /// Dev only: mines `blocks` simulated blocks, then runs a watcher pass.
    pub async fn dev_chain_mine(&self, blocks: u32) -> Result<BlockRef, BankError> {
        let tip = self.simulator()?.mine(blocks).await.map_err(chain_error)?;
        self.onchain_sync().await?;
        Ok(tip)
    }

    /// Dev only: what the simulated network does with broadcasts from now on (relay, lose
    /// them, or lose the answer), to rehearse outages and crashes.
    pub fn dev_chain_broadcasts(&self, behaviour: BroadcastBehaviour) -> Result<(), BankError> {
        self.simulator()?.set_broadcasts(behaviour);
        Ok(())
    }

    /// Dev only: replaces the top `depth` blocks, then runs a watcher pass.
    pub async fn dev_chain_reorg(&self, depth: u32, drop_transactions: bool) -> Result<BlockRef, BankError> {
        let tip = self
            .simulator()?
            .reorg(depth, drop_transactions)
            .await
            .map_err(chain_error)?;
        self.onchain_sync().await?;
        Ok(tip)
    }
}
