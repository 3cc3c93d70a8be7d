//! On-chain withdrawals: fee quotes, payouts held and queued, batches built, recorded and then
//! broadcast, fee bumps, and confirmation.
//!
//! A payout is a saga. Its row commits with the hold of amount + fee reserve; a batcher pass
//! takes queued payouts into one transaction (or one each, for immediate payouts), records it
//! signed before broadcasting it, and once the network has it settles every payout's hold with
//! its share of the actual fee (split by output size, never above the reserve). The fee the
//! transaction really pays is squared with the shares charged when it confirms. A transaction
//! the network refuses is forgotten and its payouts go back to the queue; one still unconfirmed
//! after the configured blocks is replaced (BIP125) at a higher fee, the bank paying the
//! difference. Every step is idempotent and a pass at start-up finishes what a crash left.

use std::time::Duration;

use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::Transaction as BitcoinTx;
use flash_core::ledger::{IdempotencyKey, JournalKind, JournalRequest, LedgerOp};
use flash_core::onchain::{parse_address, ChainError, PayoutOutput, SignedTx};
use flash_core::{AccountId, AccountStatus, Currency, HoldId, LedgerError, LimitCheck, LimitKind, Memo, Sats};
use flash_core::{SystemAccount, WalletId};
use flash_store::{
    BatchRecord, BatchStatus, NewBatch, NewPayout, PayoutRecord, PayoutSpeed, PayoutStatus, PostRequest, Record,
};

use crate::allowance::{may_spend, Allowance};
use crate::payments::idempotency;
use crate::{Bank, BankError, PaymentStatus, Recipient, SendRequest, Transaction};

/// Idempotency scope of the journal that settles a payout's hold; the key is the payout id.
const SETTLE_SCOPE: &str = "onchain-payout";
/// Idempotency scope of the journal that squares a batch's fee; the key is the batch id.
const BATCH_FEE_SCOPE: &str = "onchain-batch-fee";
/// Virtual bytes a payout is charged for beyond its own output: a share of the transaction's
/// overhead, one input and the change output (what a payout alone in a transaction costs).
const SHARED_VBYTES: u64 = 11 + 68 + 31;

/// How fast a payout should confirm (Galoy's `PayoutSpeed`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    /// Its own transaction, now, at the fast fee rate.
    Fast,
    /// The next batch.
    Medium,
    /// The next batch too (batches already target a relaxed confirmation time).
    Slow,
}

impl Speed {
    fn travel(self) -> PayoutSpeed {
        match self {
            Speed::Fast => PayoutSpeed::Immediate,
            Speed::Medium | Speed::Slow => PayoutSpeed::Batch,
        }
    }
}

/// An on-chain send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnchainSend {
    /// The paying account (the caller).
    pub account: AccountId,
    /// The paying wallet; must be the account's.
    pub wallet_id: WalletId,
    /// Where to.
    pub address: String,
    /// How much; none sends the whole balance less the fee.
    pub amount: Option<i64>,
    /// How fast.
    pub speed: Speed,
    /// Memo for the payer's history.
    pub memo: Option<String>,
    /// Makes the request safe to retry.
    pub idempotency_key: Option<String>,
}

/// A send's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnchainSendOutcome {
    /// `Pending` while queued or unconfirmed, `Success` when paid inside Flash.
    pub status: PaymentStatus,
    /// The payer's transaction.
    pub transaction: Transaction,
}

/// What one batcher pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PayoutReport {
    /// Transactions broadcast (new or repeated).
    pub broadcast: u32,
    /// Payouts whose holds settled.
    pub settled: u32,
    /// Transactions the network refused (their payouts went back to the queue).
    pub refused: u32,
    /// Fee bumps made.
    pub bumped: u32,
}

/// A payout's on-chain details, for its transaction in history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutDetails {
    /// Where it paid.
    pub address: String,
    /// Its transaction, once batched.
    pub txid: Option<String>,
    /// Its output in that transaction.
    pub vout: Option<i64>,
}

/// Whether a broadcast is a batch's first, or a repeat after an attempt whose outcome is not
/// known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Attempt {
    First,
    Again,
}

/// Virtual bytes of an output paying `address`'s script.
fn output_vbytes(script_len: usize) -> u64 {
    // value (8) + script length (1) + script.
    9 + u64::try_from(script_len).unwrap_or(u64::MAX / 2)
}

/// `vbytes` at `sat_per_kvb`, rounded up (in the bank's favour).
fn fee_for(vbytes: u64, sat_per_kvb: u64) -> Result<Sats, BankError> {
    let fee = u128::from(vbytes) * u128::from(sat_per_kvb);
    let fee = i64::try_from(fee.div_ceil(1_000)).map_err(|_| flash_core::MoneyError::TooLarge)?;
    Ok(Sats::non_negative(fee)?)
}

fn onchain_error(e: ChainError) -> BankError {
    match e {
        ChainError::InvalidInput(m) => BankError::InvalidInput(m),
        other => BankError::OnchainUnavailable(other.to_string()),
    }
}

fn reference(payout: &HoldId) -> String {
    format!("onchain-payout:{}", payout.as_str())
}

impl Bank {
    /// The fee rate for `speed`, from the chain's estimator within the configured floor and
    /// ceiling, satoshis per 1,000 vbytes.
    pub(crate) async fn payout_fee_rate(&self, speed: PayoutSpeed) -> Result<u64, BankError> {
        let cfg = &self.config.onchain;
        let target = match speed {
            PayoutSpeed::Immediate => cfg.fast_target_blocks,
            PayoutSpeed::Batch => cfg.batch_target_blocks,
        };
        let wallet = &self.chain()?.wallet;
        let estimate = match wallet.fee_rate(target).await {
            Ok(rate) => rate,
            Err(e) => {
                tracing::warn!(error = %e, "no fee estimate from the chain; using the fallback rate");
                cfg.fee_rate_fallback_sat_per_vb.saturating_mul(1_000)
            }
        };
        let floor = cfg.fee_rate_floor_sat_per_vb.saturating_mul(1_000);
        let ceiling = cfg.fee_rate_ceiling_sat_per_vb.saturating_mul(1_000).max(floor);
        Ok(estimate.clamp(floor, ceiling))
    }

    /// Checks `address` for this network; its output size.
    fn payout_address(&self, address: &str) -> Result<(bitcoin::Address, u64), BankError> {
        let parsed = parse_address(address, self.config.network).map_err(|e| match e {
            ChainError::WrongNetwork(what, network) => {
                BankError::InvalidAddress(format!("{what} is not a {network} address"))
            }
            other => BankError::InvalidAddress(other.to_string()),
        })?;
        let vbytes = output_vbytes(parsed.script_pubkey().len());
        Ok((parsed, vbytes))
    }

    /// Refuses an address of the bank's own wallets that is no user's deposit address (the hot
    /// wallet's change, cold storage): paying it would move a user's money to the bank.
    async fn refuse_bank_address(&self, address: &bitcoin::Address) -> Result<(), BankError> {
        let script = address.script_pubkey();
        let cold = match &self.cold {
            Some(cold) => cold.wallet.owns(&script).await,
            None => false,
        };
        if cold || self.chain()?.wallet.owns(&script).await {
            return Err(BankError::InvalidAddress(format!(
                "{address} belongs to this bank's own wallets, not to a user"
            )));
        }
        Ok(())
    }

    /// The most a payout to an output of `out_vbytes` may be charged at `speed`: what it costs
    /// alone in a transaction at the current rate.
    async fn fee_reserve(&self, out_vbytes: u64, speed: PayoutSpeed) -> Result<Sats, BankError> {
        let rate = self.payout_fee_rate(speed).await?;
        fee_for(out_vbytes + SHARED_VBYTES, rate)
    }

    /// `onChainTxFee`: the most sending `amount` to `address` at `speed` costs (0 to an address
    /// of this Flash: that is paid inside the ledger).
    pub async fn onchain_fee(
        &self,
        account: AccountId,
        wallet_id: WalletId,
        address: &str,
        amount: i64,
        speed: Speed,
    ) -> Result<Sats, BankError> {
        self.own_wallet(account, wallet_id).await?;
        self.onchain_fee_to(address, amount, speed).await
    }

    /// [`Bank::onchain_fee`] without the wallet's check.
    pub(crate) async fn onchain_fee_to(&self, address: &str, amount: i64, speed: Speed) -> Result<Sats, BankError> {
        let amount = Sats::positive(amount)?;
        let (address, out_vbytes) = self.payout_address(address)?;
        if self.store.onchain_address_owner(&address.to_string()).await?.is_some() {
            return Ok(Sats::ZERO);
        }
        self.refuse_bank_address(&address).await?;
        self.check_dust(amount)?;
        self.fee_reserve(out_vbytes, speed.travel()).await
    }

    fn check_dust(&self, amount: Sats) -> Result<(), BankError> {
        let dust = self.config.onchain.dust_sats;
        if amount.get() < dust {
            return Err(BankError::AmountBelowDust { min_sats: dust });
        }
        Ok(())
    }

    /// `onChainPaymentSend` / `onChainPaymentSendAll`: pays `address`. An address of this
    /// Flash is paid inside the ledger with no fee; any other is held (amount + fee reserve)
    /// and queued for the next batch, or for its own transaction when fast.
    pub async fn onchain_send(&self, req: OnchainSend) -> Result<OnchainSendOutcome, BankError> {
        self.onchain_send_for(req, None).await
    }

    /// [`Bank::onchain_send`], spending `allowance` too when it is given (taken in the
    /// transaction that pays or holds the money).
    pub(crate) async fn onchain_send_for(
        &self,
        req: OnchainSend,
        allowance: Option<Allowance<'_>>,
    ) -> Result<OnchainSendOutcome, BankError> {
        self.chain()?;
        let (parsed, out_vbytes) = self.payout_address(&req.address)?;
        let address = parsed.to_string();
        let memo = req
            .memo
            .as_deref()
            .map(Memo::parse)
            .transpose()?
            .map(|m| m.as_str().to_string());
        if let Some(owner) = self.store.onchain_address_owner(&address).await? {
            let amount = match req.amount {
                Some(amount) => amount,
                None => self.store.wallet_balance(req.wallet_id).await?,
            };
            let send = SendRequest {
                account: req.account,
                from: req.wallet_id,
                to: Recipient::Wallet(owner.wallet_id),
                amount,
                memo,
                idempotency_key: req.idempotency_key,
            };
            let paid = self.send_intraledger_for(send, allowance).await?;
            return Ok(OnchainSendOutcome {
                status: PaymentStatus::Success,
                transaction: paid.transaction,
            });
        }
        self.refuse_bank_address(&parsed).await?;
        let idempotency = idempotency(req.account.to_string(), req.idempotency_key.clone())?;
        let parties = self
            .store
            .payment_parties(req.wallet_id, None, None, &idempotency)
            .await?;
        let payer = parties
            .payer
            .filter(|p| p.wallet.account_id == req.account && p.wallet.currency == Currency::Btc)
            .filter(|p| may_spend(&p.wallet, allowance))
            .ok_or(BankError::WalletNotFound)?;
        if let Some(prior) = parties.prior {
            return self.prior_payout(payer.wallet.id, prior).await;
        }
        if payer.status != AccountStatus::Active {
            return Err(BankError::AccountNotActive(payer.status.as_str()));
        }
        let travel = req.speed.travel();
        let reserve = self.fee_reserve(out_vbytes, travel).await?;
        let amount = match req.amount {
            Some(amount) => Sats::positive(amount)?,
            None => {
                let balance = self.store.wallet_balance(payer.wallet.id).await?;
                Sats::positive(balance - reserve.get()).map_err(|_| {
                    BankError::Ledger(LedgerError::InsufficientBalance {
                        available: balance,
                        required: reserve.get().saturating_add(self.config.onchain.dust_sats),
                    })
                })?
            }
        };
        self.check_dust(amount)?;
        let held = amount.checked_add(reserve)?;
        let payout = NewPayout {
            id: HoldId::new(format!("onchain:{}", uuid::Uuid::now_v7())),
            wallet_id: payer.wallet.id,
            address,
            amount_sat: amount.get(),
            fee_reserved_sat: reserve.get(),
            speed: travel,
        };
        let journal = JournalRequest {
            idempotency: idempotency.clone(),
            kind: JournalKind::HoldOpen,
            op: LedgerOp::HoldOpen {
                hold: payout.id.clone(),
                wallet: payer.wallet.id.into(),
                pending: SystemAccount::OnchainPending.ledger_id(Currency::Btc),
                amount: held.get(),
            },
            memo,
            limit: Some(LimitCheck {
                subject: payer.wallet.account_id.to_string(),
                kind: LimitKind::Withdrawal,
                max: self.config.limits.sats(payer.level, LimitKind::Withdrawal),
                amount: amount.get(),
            }),
        };
        let post = PostRequest {
            reference: Some(reference(&payout.id)),
            records: std::iter::once(Record::onchain_payout_queued(&payout, self.store.now_ms()))
                .chain(
                    allowance
                        .map(|a| a.taken(amount.get(), self.store.now_ms()))
                        .unwrap_or_default(),
                )
                .collect(),
            ..PostRequest::from(journal)
        };
        let posted = match self.store.post(post).await? {
            Ok(posted) => posted,
            Err(LedgerError::IdempotencyKeyReused) => {
                // A concurrent retry with the same key won: answer as it will.
                let prior = self.store.journal_for_key(&idempotency).await?;
                return match prior {
                    Some(prior) => self.prior_payout(payer.wallet.id, prior).await,
                    None => Err(LedgerError::IdempotencyKeyReused.into()),
                };
            }
            Err(e) => return Err(self.payment_error(e, payer.wallet.id)),
        };
        self.publish_journal(payer.wallet.account_id, payer.wallet.id, posted.journal_id);
        tracing::info!(payout = %payout.id, sats = amount.get(), reserve = reserve.get(), speed = travel.as_str(), "payout queued");
        if travel == PayoutSpeed::Immediate {
            self.payouts_wake.notify_one();
        }
        Ok(OnchainSendOutcome {
            status: PaymentStatus::Pending,
            transaction: self.transaction(payer.wallet.id, posted.journal_id).await?,
        })
    }

    async fn prior_payout(
        &self,
        wallet: WalletId,
        prior: flash_core::JournalId,
    ) -> Result<OnchainSendOutcome, BankError> {
        let payout = self.store.onchain_payout_opened_by(prior).await?;
        let Some(payout) = payout else {
            return Err(LedgerError::IdempotencyKeyReused.into());
        };
        let status = match payout.status {
            PayoutStatus::Failed => PaymentStatus::Failure,
            _ => PaymentStatus::Pending,
        };
        Ok(OnchainSendOutcome {
            status,
            transaction: self.transaction(wallet, prior).await?,
        })
    }

    /// Where a payout went on chain (for its history line).
    pub async fn onchain_payout_details(&self, payout: &str) -> Result<Option<PayoutDetails>, BankError> {
        let Some(p) = self.store.onchain_payout(&HoldId::new(payout)).await? else {
            return Ok(None);
        };
        let txid = match &p.batch_id {
            Some(batch) => self.store.onchain_batch(batch).await?.map(|b| b.batch.txid),
            None => None,
        };
        Ok(Some(PayoutDetails {
            address: p.payout.address,
            txid,
            vout: p.vout,
        }))
    }

    /// Payouts waiting for a batch, oldest first (the operator's payout queue).
    pub async fn onchain_payout_queue(&self, limit: i64) -> Result<Vec<PayoutRecord>, BankError> {
        Ok(self
            .store
            .onchain_payouts(PayoutStatus::Queued, None, limit.clamp(1, 1_000))
            .await?)
    }

    /// The newest payout transactions, newest first (the operator's batch history).
    pub async fn onchain_batch_history(&self, limit: i64) -> Result<Vec<BatchRecord>, BankError> {
        Ok(self.store.recent_onchain_batches(limit.clamp(1, 1_000)).await?)
    }

    /// One batcher pass: finishes what an earlier pass left (signed but not broadcast, broadcast
    /// but not settled), sends immediate payouts, forms a batch of queued ones when `batch` is
    /// set, and bumps the fee of transactions unconfirmed for too long.
    pub async fn onchain_payout_pass(&self, batch: bool) -> Result<PayoutReport, BankError> {
        let rail = self.chain()?;
        let _pass = rail.payouts.lock().await;
        self.lead_onchain().await?;
        self.release_unrecorded_spends().await?;
        let mut report = PayoutReport::default();
        self.broadcast_sweeps().await?;
        for signed in self.store.onchain_batches(BatchStatus::Signed, 100).await? {
            self.broadcast_batch(&signed.batch, Attempt::Again, &mut report).await?;
        }
        for sent in self.store.onchain_batches(BatchStatus::Broadcast, 1_000).await? {
            report.settled += self.settle_batch(&sent.batch).await?;
        }
        let immediate = self
            .store
            .onchain_payouts(PayoutStatus::Queued, Some(PayoutSpeed::Immediate), 100)
            .await?;
        for payout in immediate {
            self.send_batch(std::slice::from_ref(&payout), PayoutSpeed::Immediate, &mut report)
                .await?;
        }
        if batch {
            let max = i64::from(self.config.onchain.max_batch_payouts.max(1));
            let queued = self
                .store
                .onchain_payouts(PayoutStatus::Queued, Some(PayoutSpeed::Batch), max)
                .await?;
            if !queued.is_empty() {
                self.send_batch(&queued, PayoutSpeed::Batch, &mut report).await?;
            }
        }
        self.bump_stuck_batches(&mut report).await?;
        Ok(report)
    }

    /// Builds, records, broadcasts and settles one transaction paying `payouts`.
    async fn send_batch(
        &self,
        payouts: &[PayoutRecord],
        speed: PayoutSpeed,
        report: &mut PayoutReport,
    ) -> Result<(), BankError> {
        let rail = self.chain()?;
        let rate = self.payout_fee_rate(speed).await?;
        let outputs: Vec<PayoutOutput> = payouts
            .iter()
            .map(|p| {
                Ok(PayoutOutput {
                    address: p.payout.address.clone(),
                    amount: Sats::positive(p.payout.amount_sat)?,
                })
            })
            .collect::<Result<_, BankError>>()?;
        let signed = match rail.wallet.build_payout(&outputs, rate).await {
            Ok(signed) => signed,
            Err(ChainError::InsufficientFunds(why)) => {
                let total: i64 = payouts.iter().map(|p| p.payout.amount_sat).sum();
                tracing::error!(
                    payouts = payouts.len(),
                    sats = total,
                    why,
                    "ALERT: the hot wallet cannot cover the queued payouts; they stay queued"
                );
                return Ok(());
            }
            Err(e) => return Err(onchain_error(e)),
        };
        let id = format!("batch:{}", uuid::Uuid::now_v7());
        let batch = NewBatch {
            group_id: id.clone(),
            id,
            txid: signed.txid.to_string(),
            tx_hex: serialize_hex(&signed.tx),
            fee_sat: signed.fee.get(),
            vsize: i64::try_from(signed.vsize).unwrap_or(i64::MAX),
            fee_rate: i64::try_from(rate).unwrap_or(i64::MAX),
            replaces: None,
        };
        let placed: Vec<(HoldId, u32)> = payouts
            .iter()
            .zip(&signed.payout_vouts)
            .map(|(p, vout)| (p.payout.id.clone(), *vout))
            .collect();
        if let Err(e) = self.store.record_onchain_batch(&batch, &placed).await {
            // Not recorded, so never broadcast: give the coins back.
            self.forget_tx(&signed).await;
            return Err(e.into());
        }
        tracing::info!(batch = %batch.id, txid = %batch.txid, payouts = payouts.len(), fee = batch.fee_sat, vsize = batch.vsize, "payout transaction signed and recorded");
        if self.broadcast_batch(&batch, Attempt::First, report).await? {
            report.settled += self.settle_batch(&batch).await?;
        }
        Ok(())
    }

    /// Gives back the coins of transactions the hot wallet built but the bank never recorded
    /// (the process died between signing and recording): nobody will broadcast them, and
    /// until they are forgotten their coins look spent. Runs under the payout lock, so no
    /// transaction of this process is between those two steps.
    async fn release_unrecorded_spends(&self) -> Result<(), BankError> {
        let rail = self.chain()?;
        let held = rail.wallet.unconfirmed_spends().await.map_err(onchain_error)?;
        if held.is_empty() {
            return Ok(());
        }
        let txids: Vec<String> = held.iter().map(ToString::to_string).collect();
        let recorded = self.store.onchain_spends_recorded(&txids).await?;
        for txid in held.into_iter().filter(|t| !recorded.contains(&t.to_string())) {
            tracing::warn!(%txid, "releasing the coins of a transaction that was signed but never recorded");
            rail.wallet.forget(txid).await.map_err(onchain_error)?;
        }
        Ok(())
    }

    async fn forget_tx(&self, signed: &SignedTx) {
        if let Ok(rail) = self.chain() {
            if let Err(e) = rail.wallet.forget(signed.txid).await {
                tracing::warn!(txid = %signed.txid, error = %e, "could not release the coins of an unrecorded transaction");
            }
        }
    }

    /// Broadcasts a recorded batch: on acceptance marks it broadcast; on refusal of a first
    /// attempt marks it failed and puts its payouts back in the queue; when the network cannot
    /// be reached leaves it for the next pass. Returns whether the network has it.
    ///
    /// A refusal of a repeated attempt proves nothing: an earlier attempt whose answer was lost
    /// may have gone out (a node that has since mined it and seen its outputs spent answers
    /// "missing inputs"). Requeuing would then pay twice, so such a batch stays recorded, its
    /// coins spent, for the operator.
    async fn broadcast_batch(
        &self,
        batch: &NewBatch,
        attempt: Attempt,
        report: &mut PayoutReport,
    ) -> Result<bool, BankError> {
        let rail = self.chain()?;
        let tx: BitcoinTx = deserialize_hex(&batch.tx_hex)
            .map_err(|e| BankError::OnchainUnavailable(format!("recorded transaction {} unreadable: {e}", batch.id)))?;
        match rail.wallet.broadcast(&tx).await {
            Ok(()) => {
                let tip = self.store.onchain_cursor().await?;
                if self.store.onchain_batch_broadcast(&batch.id, tip).await? {
                    report.broadcast += 1;
                    tracing::info!(batch = %batch.id, txid = %batch.txid, "payout transaction broadcast");
                }
                Ok(true)
            }
            Err(ChainError::Refused(why)) if attempt == Attempt::Again && batch.replaces.is_none() => {
                tracing::error!(batch = %batch.id, txid = %batch.txid, why, "ALERT: the network refused a payout transaction an earlier attempt may have sent; it stays recorded and its payouts stay with it until an operator decides");
                Ok(false)
            }
            Err(ChainError::Refused(why)) => {
                tracing::error!(batch = %batch.id, txid = %batch.txid, why, "the network refused a payout transaction; its payouts go back to the queue");
                if let Err(e) = rail.wallet.forget(tx.compute_txid()).await {
                    tracing::warn!(batch = %batch.id, error = %e, "could not release the refused transaction's coins");
                }
                if let Some(original) = &batch.replaces {
                    // A refused fee bump: the payouts stay with the transaction it replaced.
                    self.return_payouts(batch, original).await?;
                }
                self.store.onchain_batch_failed(&batch.id, &why).await?;
                report.refused += 1;
                Ok(false)
            }
            Err(e) => {
                tracing::warn!(batch = %batch.id, error = %e, "payout transaction not broadcast yet; retrying on the next pass");
                Ok(false)
            }
        }
    }

    /// Settles the holds of a broadcast batch's payouts with their share of its fee (by output
    /// size, at most their reserve). Returns how many it settled now.
    async fn settle_batch(&self, batch: &NewBatch) -> Result<u32, BankError> {
        let payouts = self.store.onchain_batch_payouts(&batch.id).await?;
        let weights: Vec<u64> = payouts
            .iter()
            .map(|p| {
                parse_address(&p.payout.address, self.config.network)
                    .map(|a| output_vbytes(a.script_pubkey().len()))
                    .unwrap_or(1)
            })
            .collect();
        let total: u64 = weights.iter().sum::<u64>().max(1);
        // The holds settle independently: posted together, the ledger writer commits them in a
        // few group commits instead of one commit each.
        let mut posts = tokio::task::JoinSet::new();
        for (payout, weight) in payouts.iter().zip(weights) {
            if payout.status != PayoutStatus::Batched {
                continue;
            }
            let share = u128::try_from(batch.fee_sat).unwrap_or(0) * u128::from(weight);
            let share = i64::try_from(share.div_ceil(u128::from(total))).unwrap_or(i64::MAX);
            let fee = share.min(payout.payout.fee_reserved_sat);
            let p = &payout.payout;
            let journal = JournalRequest {
                idempotency: IdempotencyKey {
                    scope: SETTLE_SCOPE.into(),
                    key: p.id.as_str().to_string(),
                },
                kind: JournalKind::HoldSettle,
                op: LedgerOp::HoldSettle {
                    hold: p.id.clone(),
                    to: SystemAccount::OnchainHot.ledger_id(Currency::Btc),
                    used: p.amount_sat + fee,
                    fee,
                    keep: 0,
                    keep_to: None,
                },
                memo: None,
                limit: None,
            };
            let post = PostRequest {
                reference: Some(reference(&p.id)),
                records: vec![Record::onchain_payout_sent(&p.id, fee, self.store.now_ms())],
                ..PostRequest::from(journal)
            };
            let store = self.store.clone();
            let (account, wallet) = (payout.account_id, p.wallet_id);
            posts.spawn(async move { (account, wallet, store.post(post).await) });
        }
        let mut settled = 0;
        let mut failed = None;
        while let Some(joined) = posts.join_next().await {
            let outcome = joined
                .map_err(|e| BankError::OnchainUnavailable(format!("settling a payout stopped: {e}")))
                .and_then(|(account, wallet, result)| Ok((account, wallet, result??)));
            match outcome {
                Ok((account, wallet, posted)) => {
                    if !posted.replayed {
                        settled += 1;
                        self.publish_journal(account, wallet, posted.journal_id);
                    }
                }
                // The others still finish; the next pass retries this one.
                Err(e) => failed = failed.or(Some(e)),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(settled),
        }
    }

    /// Replaces payout transactions unconfirmed for `rbf_after_blocks` with ones paying the
    /// fast fee rate (at least 1 sat/vB more than before).
    async fn bump_stuck_batches(&self, report: &mut PayoutReport) -> Result<(), BankError> {
        let after = self.config.onchain.rbf_after_blocks;
        if after == 0 {
            return Ok(());
        }
        let tip = self.store.onchain_cursor().await?;
        let rail = self.chain()?;
        for stuck in self.store.onchain_batches(BatchStatus::Broadcast, 100).await? {
            let since = stuck
                .broadcast_height
                .and_then(|h| u32::try_from(h).ok())
                .unwrap_or(tip);
            if tip < since.saturating_add(after) || self.store.onchain_batch_replacement(&stuck.batch.id).await? {
                continue;
            }
            let old_rate = u64::try_from(stuck.batch.fee_rate).unwrap_or(0);
            let rate = self
                .payout_fee_rate(PayoutSpeed::Immediate)
                .await?
                .max(old_rate + 1_000);
            let txid = stuck
                .batch
                .txid
                .parse()
                .map_err(|_| BankError::OnchainUnavailable(format!("batch {} has a bad txid", stuck.batch.id)))?;
            let signed = match rail.wallet.bump_fee(txid, rate).await {
                Ok(signed) => signed,
                Err(e) => {
                    tracing::warn!(batch = %stuck.batch.id, error = %e, "could not bump the fee of a stuck payout transaction");
                    continue;
                }
            };
            let payouts = self.store.onchain_batch_payouts(&stuck.batch.id).await?;
            let placed = match payout_placement(&payouts, &signed.tx, self.config.network) {
                Ok(placed) => placed,
                Err(e) => {
                    self.forget_tx(&signed).await;
                    return Err(e);
                }
            };
            let replacement = NewBatch {
                id: format!("batch:{}", uuid::Uuid::now_v7()),
                txid: signed.txid.to_string(),
                tx_hex: serialize_hex(&signed.tx),
                fee_sat: signed.fee.get(),
                vsize: i64::try_from(signed.vsize).unwrap_or(i64::MAX),
                fee_rate: i64::try_from(rate).unwrap_or(i64::MAX),
                replaces: Some(stuck.batch.id.clone()),
                group_id: stuck.batch.group_id.clone(),
            };
            if let Err(e) = self.store.record_onchain_batch(&replacement, &placed).await {
                self.forget_tx(&signed).await;
                return Err(e.into());
            }
            tracing::info!(batch = %stuck.batch.id, replacement = %replacement.id, fee = replacement.fee_sat, "payout transaction fee bumped");
            report.bumped += 1;
            self.broadcast_batch(&replacement, Attempt::First, report).await?;
        }
        Ok(())
    }

    /// Follows broadcast payout transactions in a watcher pass: one that confirmed is marked so
    /// (the others of its payouts replaced) and its fee squared with the shares charged; one
    /// the chain and mempool no longer have is broadcast again.
    pub(crate) async fn track_batches(
        &self,
        spending: &[flash_core::onchain::SpendingTx],
        from_height: u32,
    ) -> Result<(), BankError> {
        let rail = self.chain()?;
        // Confirmed ones the chain may have taken back: `spending` has every spending
        // transaction confirmed at or above `from_height`, so one missing from it, or in it
        // unconfirmed, left its block.
        for done in self.store.onchain_batches_confirmed_since(from_height).await? {
            let now = spending
                .iter()
                .find(|s| s.txid.to_string() == done.batch.txid)
                .and_then(|s| s.confirmed_height)
                .map(i64::from);
            if now == done.confirmed_height || !self.store.onchain_batch_reorganised(&done.batch.id, now).await? {
                continue;
            }
            match now {
                Some(height) => {
                    tracing::info!(batch = %done.batch.id, txid = %done.batch.txid, height, "payout transaction moved to another block")
                }
                None => tracing::warn!(batch = %done.batch.id, txid = %done.batch.txid,
                    "a confirmed payout transaction left the chain; it is followed as broadcast until it confirms again"),
            }
        }
        for sent in self.store.onchain_batches(BatchStatus::Broadcast, 1_000).await? {
            let seen = spending.iter().find(|s| s.txid.to_string() == sent.batch.txid);
            match seen.and_then(|s| s.confirmed_height) {
                Some(height) => self.batch_confirmed(&sent, height).await?,
                None if seen.is_none() => {
                    if self.store.onchain_batch_replacement(&sent.batch.id).await? || sent.batch.replaces.is_some() {
                        // One of a replacement pair: the other may be the one the chain has.
                        continue;
                    }
                    let tx: BitcoinTx = deserialize_hex(&sent.batch.tx_hex).map_err(|e| {
                        BankError::OnchainUnavailable(format!("recorded transaction {} unreadable: {e}", sent.batch.id))
                    })?;
                    if let Err(e) = rail.wallet.broadcast(&tx).await {
                        tracing::warn!(batch = %sent.batch.id, error = %e, "a payout transaction left the mempool and could not be broadcast again");
                    }
                }
                None => {}
            }
        }
        Ok(())
    }

    /// Moves the payouts of `batch` back to the transaction `original` it was to replace.
    async fn return_payouts(&self, batch: &NewBatch, original: &str) -> Result<(), BankError> {
        let Some(original) = self.store.onchain_batch(original).await? else {
            return Ok(());
        };
        let payouts = self.store.onchain_batch_payouts(&batch.id).await?;
        let tx: BitcoinTx = deserialize_hex(&original.batch.tx_hex).map_err(|e| {
            BankError::OnchainUnavailable(format!("recorded transaction {} unreadable: {e}", original.batch.id))
        })?;
        let placed = payout_placement(&payouts, &tx, self.config.network)?;
        Ok(self
            .store
            .move_onchain_payouts(&batch.id, &original.batch.id, &placed)
            .await?)
    }

    async fn batch_confirmed(&self, sent: &BatchRecord, height: u32) -> Result<(), BankError> {
        let batch = &sent.batch;
        // The payouts may sit with another transaction of the same group (a replacement).
        let group = self.store.onchain_batch_group(&batch.id).await?;
        for other in group.iter().filter(|b| b.batch.id != batch.id) {
            let moved = self.store.onchain_batch_payouts(&other.batch.id).await?;
            if !moved.is_empty() {
                let tx: BitcoinTx = deserialize_hex(&batch.tx_hex).map_err(|e| {
                    BankError::OnchainUnavailable(format!("recorded transaction {} unreadable: {e}", batch.id))
                })?;
                let placed = payout_placement(&moved, &tx, self.config.network)?;
                self.store
                    .move_onchain_payouts(&other.batch.id, &batch.id, &placed)
                    .await?;
            }
            self.store.onchain_batch_replaced(&other.batch.id).await?;
        }
        // Holds not settled yet (a block came before the batcher's next pass, or a crash came
        // between the broadcast and the settlements) settle now: the fee is squared against
        // every payout's share, and a failure leaves the batch for the next pass.
        self.settle_batch(batch).await?;
        let payouts = self.store.onchain_batch_payouts(&batch.id).await?;
        let charged: i64 = payouts.iter().filter_map(|p| p.fee_sat).sum();
        let surplus = charged - batch.fee_sat;
        let now = self.store.now_ms();
        let confirmed = Record::onchain_batch_confirmed(&batch.id, i64::from(height), now);
        if surplus == 0 {
            self.store.apply_record(confirmed).await?;
        } else {
            let hot = SystemAccount::OnchainHot.ledger_id(Currency::Btc);
            let revenue = SystemAccount::FeesRevenue.ledger_id(Currency::Btc);
            let (from, to) = if surplus > 0 { (hot, revenue) } else { (revenue, hot) };
            let journal = JournalRequest {
                idempotency: IdempotencyKey {
                    scope: BATCH_FEE_SCOPE.into(),
                    key: batch.id.clone(),
                },
                kind: JournalKind::IntraLedger,
                op: LedgerOp::Transfer {
                    from,
                    to,
                    amount: surplus.abs(),
                    fee: 0,
                    fee_to: None,
                },
                memo: Some(format!("mining fee of payout transaction {}", batch.txid)),
                limit: None,
            };
            let post = PostRequest {
                reference: None,
                records: vec![confirmed],
                ..PostRequest::from(journal)
            };
            let posted = self.store.post(post).await??;
            if posted.replayed {
                // The fee was squared when the transaction first confirmed, before a
                // reorganisation took it out of the chain: only the status moves now.
                let again = Record::onchain_batch_confirmed(&batch.id, i64::from(height), now);
                self.store.apply_record(again).await?;
            }
        }
        tracing::info!(batch = %batch.id, txid = %batch.txid, height, fee = batch.fee_sat, charged, "payout transaction confirmed");
        Ok(())
    }

    /// Runs batcher passes until `shutdown`: a batch every `batch_interval_secs`, immediate
    /// payouts as soon as they are queued. Errors are logged and retried on the next pass.
    pub async fn run_payout_batcher(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        if self.chain().is_err() {
            return;
        }
        let interval = Duration::from_secs(self.config.onchain.batch_interval_secs.max(1));
        let mut next_batch = tokio::time::Instant::now() + interval;
        loop {
            let due = tokio::time::Instant::now() >= next_batch;
            if due {
                next_batch = tokio::time::Instant::now() + interval;
            }
            match self.onchain_payout_pass(due).await {
                Ok(r) if r != PayoutReport::default() => tracing::info!(?r, "payout batcher pass"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "payout batcher pass failed; retrying"),
            }
            if due {
                if let Err(e) = self.cold_sweep_check().await {
                    tracing::warn!(error = %e, "cold storage sweep check failed; retrying at the next batch");
                }
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = self.payouts_wake.notified() => {}
                _ = tokio::time::sleep_until(next_batch) => {}
            }
        }
    }
}

/// Where each payout is paid in `tx`, matched by address and amount.
fn payout_placement(
    payouts: &[PayoutRecord],
    tx: &BitcoinTx,
    network: flash_core::Network,
) -> Result<Vec<(HoldId, u32)>, BankError> {
    let mut used = vec![false; tx.output.len()];
    payouts
        .iter()
        .map(|p| {
            let script = parse_address(&p.payout.address, network)
                .map_err(|e| BankError::InvalidAddress(e.to_string()))?
                .script_pubkey();
            let amount = Sats::positive(p.payout.amount_sat)?.to_amount();
            let index = tx
                .output
                .iter()
                .enumerate()
                .position(|(i, o)| !used[i] && o.script_pubkey == script && o.value == amount)
                .ok_or_else(|| {
                    BankError::OnchainUnavailable(format!(
                        "payout {} is not in transaction {}",
                        p.payout.id,
                        tx.compute_txid()
                    ))
                })?;
            used[index] = true;
            Ok((p.payout.id.clone(), u32::try_from(index).unwrap_or(u32::MAX)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fees_round_up_and_outputs_are_sized_by_script() {
        let fee = |vbytes, rate| fee_for(vbytes, rate).ok().map(Sats::get);
        assert_eq!(fee(141, 2_000), Some(282));
        assert_eq!(fee(141, 1_001), Some(142), "141.141 rounds up");
        assert_eq!(fee(0, 5_000), Some(0));
        assert_eq!(output_vbytes(22), 31, "P2WPKH");
        assert_eq!(output_vbytes(34), 43, "P2TR / P2WSH");
    }
}
