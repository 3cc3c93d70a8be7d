//! Cold storage: reserves above the hot wallet's ceiling go to an m-of-n multisig the server only
//! watches; coming back takes the cosigners' signatures on a PSBT, made offline.
//!
//! The rule is Galoy's: when the hot wallet's confirmed balance is above `max_hot_sats`, the
//! part above `min_hot_sats` (and above what queued payouts need) is swept to cold, if it is at
//! least `min_rebalance_sats`. Both wallets are assets on the ledger (`onchain:hot`,
//! `onchain:cold`); a sweep moves the amount between them when it is broadcast, and its mining
//! fee is an expense of the bank (`fees:revenue`).

use std::sync::Arc;

use bitcoin::base64::prelude::{Engine, BASE64_STANDARD};
use bitcoin::consensus::encode::{deserialize_hex, serialize_hex};
use bitcoin::Psbt;
use flash_core::ledger::{IdempotencyKey, JournalKind, JournalRequest, LedgerOp};
use flash_core::onchain::{ChainError, ColdWallet, PayoutOutput, SpendingTx};
use flash_core::{Currency, Sats, SystemAccount};
use flash_store::{PostRequest, Record, SweepDirection, SweepRecord};

use crate::{Bank, BankError};

/// Idempotency scope of a sweep's journals; the key is the sweep id (and `:fee`).
const SWEEP_SCOPE: &str = "onchain-sweep";

/// The hot wallet's ceiling and floor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColdPolicy {
    /// Above this confirmed balance the hot wallet is swept (Galoy's maxHotWalletBalance).
    pub max_hot_sats: i64,
    /// What a sweep leaves in the hot wallet (minOnChainHotWalletBalance).
    pub min_hot_sats: i64,
    /// Smaller sweeps are not worth their fee (minRebalanceSize).
    pub min_rebalance_sats: i64,
}

impl Default for ColdPolicy {
    fn default() -> Self {
        ColdPolicy {
            max_hot_sats: 20_000_000,
            min_hot_sats: 5_000_000,
            min_rebalance_sats: 1_000_000,
        }
    }
}

impl ColdPolicy {
    /// How much to sweep from a hot wallet holding `hot` confirmed when `reserved` is owed to
    /// queued payouts; none when within policy.
    pub fn sweep_amount(&self, hot: i64, reserved: i64) -> Option<i64> {
        if hot <= self.max_hot_sats {
            return None;
        }
        let keep = self.min_hot_sats.max(reserved);
        let amount = hot - keep;
        (amount >= self.min_rebalance_sats.max(1)).then_some(amount)
    }
}

/// A cold → hot PSBT for the cosigners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ColdPsbt {
    /// The sweep's id (to finalise it later).
    pub id: String,
    /// The PSBT, base64.
    pub psbt: String,
    /// Amount moving to the hot wallet.
    pub amount: Sats,
    /// Its mining fee.
    pub fee: Sats,
}

/// The cold wallet and its policy.
pub(crate) struct ColdRail {
    pub(crate) wallet: Arc<dyn ColdWallet>,
    pub(crate) policy: ColdPolicy,
}

fn cold_error(e: ChainError) -> BankError {
    match e {
        ChainError::InvalidInput(m) => BankError::InvalidInput(m),
        other => BankError::OnchainUnavailable(other.to_string()),
    }
}

impl Bank {
    fn cold(&self) -> Result<&ColdRail, BankError> {
        self.cold
            .as_deref()
            .ok_or_else(|| BankError::OnchainUnavailable("no cold wallet is configured".into()))
    }

    /// The cold wallet's confirmed and unconfirmed balance.
    pub async fn cold_balance(&self) -> Result<(Sats, Sats), BankError> {
        let snapshot = self.cold()?.wallet.sync(u32::MAX).await.map_err(cold_error)?;
        Ok((snapshot.confirmed_balance, snapshot.unconfirmed_balance))
    }

    /// The cold wallet's policy, when one is configured.
    pub fn cold_policy(&self) -> Option<&ColdPolicy> {
        self.cold.as_deref().map(|c| &c.policy)
    }

    /// The latest sweeps between the hot wallet and cold storage, newest first.
    pub async fn cold_sweeps(&self, limit: i64) -> Result<Vec<SweepRecord>, BankError> {
        Ok(self.store.recent_onchain_sweeps(limit).await?)
    }

    /// A sweep by id.
    pub async fn cold_sweep(&self, id: &str) -> Result<Option<SweepRecord>, BankError> {
        Ok(self.store.onchain_sweep(id).await?)
    }

    /// Sweeps the hot wallet's excess to cold storage when the policy says so; the sweep's id.
    pub async fn cold_sweep_check(&self) -> Result<Option<String>, BankError> {
        let Ok(cold) = self.cold() else { return Ok(None) };
        let rail = self.chain()?;
        let _pass = rail.payouts.lock().await;
        self.lead_onchain().await?;
        let snapshot = rail.wallet.sync(u32::MAX).await.map_err(cold_error)?;
        let totals = self.store.onchain_totals().await?;
        let Some(amount) = cold
            .policy
            .sweep_amount(snapshot.confirmed_balance.get(), totals.queued_payout_sats)
        else {
            return Ok(None);
        };
        let address = cold.wallet.receive_address().await.map_err(cold_error)?;
        let rate = self.payout_fee_rate(flash_store::PayoutSpeed::Batch).await?;
        let output = PayoutOutput {
            address: address.clone(),
            amount: Sats::positive(amount)?,
        };
        let signed = match rail.wallet.build_payout(std::slice::from_ref(&output), rate).await {
            Ok(signed) => signed,
            // Fees (or payouts signed meanwhile) leave less than asked: next time.
            Err(ChainError::InsufficientFunds(why)) => {
                tracing::warn!(amount, why, "cold sweep postponed");
                return Ok(None);
            }
            Err(e) => return Err(cold_error(e)),
        };
        let sweep = SweepRecord {
            id: format!("sweep:{}", uuid::Uuid::now_v7()),
            direction: SweepDirection::ToCold,
            address,
            amount_sat: amount,
            fee_sat: signed.fee.get(),
            psbt: None,
            txid: Some(signed.txid.to_string()),
            status: "signed".into(),
            confirmed_height: None,
            created_at_ms: self.store.now_ms(),
        };
        if let Err(e) = self
            .store
            .insert_onchain_sweep(&sweep, Some(&serialize_hex(&signed.tx)))
            .await
        {
            if let Err(forget) = rail.wallet.forget(signed.txid).await {
                tracing::warn!(error = %forget, "could not release the coins of an unrecorded sweep");
            }
            return Err(e.into());
        }
        tracing::info!(sweep = %sweep.id, amount, fee = sweep.fee_sat, "sweeping the hot wallet's excess to cold storage");
        self.broadcast_sweeps().await?;
        Ok(Some(sweep.id))
    }

    /// Broadcasts every signed sweep and posts what it moves; refused ones are marked failed.
    pub(crate) async fn broadcast_sweeps(&self) -> Result<(), BankError> {
        let rail = self.chain()?;
        for (sweep, tx_hex) in self.store.onchain_sweeps("signed").await? {
            let Some(tx_hex) = tx_hex else { continue };
            let tx: bitcoin::Transaction = deserialize_hex(&tx_hex)
                .map_err(|e| BankError::OnchainUnavailable(format!("sweep {} unreadable: {e}", sweep.id)))?;
            let sent = match sweep.direction {
                SweepDirection::ToCold => rail.wallet.broadcast(&tx).await,
                SweepDirection::ToHot => self.cold()?.wallet.broadcast(&tx).await,
            };
            match sent {
                Ok(()) => self.post_sweep(&sweep).await?,
                Err(ChainError::Refused(why)) => {
                    tracing::error!(sweep = %sweep.id, why, "the network refused a sweep");
                    let released = match sweep.direction {
                        SweepDirection::ToCold => rail.wallet.forget(tx.compute_txid()).await,
                        SweepDirection::ToHot => self.cold()?.wallet.forget(tx.compute_txid()).await,
                    };
                    if let Err(e) = released {
                        tracing::warn!(error = %e, "could not release a refused sweep's coins");
                    }
                    self.store.onchain_sweep_failed(&sweep.id, &why).await?;
                }
                Err(e) => tracing::warn!(sweep = %sweep.id, error = %e, "sweep not broadcast yet; retrying later"),
            }
        }
        Ok(())
    }

    /// Follows broadcast sweeps in a watcher pass: one a block confirmed is marked so; one the
    /// chain and mempool no longer have is broadcast again. `hot_spending` is the hot wallet's
    /// spending transactions of this pass (sweeps to cold are among them); the cold wallet is
    /// synced only while a sweep back to hot is out. A sweep that cannot be followed (the cold
    /// wallet is no longer configured or does not answer) is logged and left for a later pass:
    /// it never stops the pass, which also credits deposits and follows payouts.
    pub(crate) async fn track_sweeps(&self, hot_spending: &[SpendingTx], from_height: u32) -> Result<(), BankError> {
        let out = self.store.onchain_sweeps("broadcast").await?;
        if out.is_empty() {
            return Ok(());
        }
        let cold_spending = if out.iter().any(|(s, _)| s.direction == SweepDirection::ToHot) {
            match self.cold() {
                Ok(cold) => match cold.wallet.sync(from_height).await {
                    Ok(report) => Ok(report.spending),
                    Err(e) => Err(cold_error(e)),
                },
                Err(e) => Err(e),
            }
        } else {
            Ok(Vec::new())
        };
        for (sweep, tx_hex) in out {
            let spending = match (sweep.direction, &cold_spending) {
                (SweepDirection::ToCold, _) => hot_spending,
                (SweepDirection::ToHot, Ok(cold)) => cold.as_slice(),
                (SweepDirection::ToHot, Err(e)) => {
                    tracing::warn!(sweep = %sweep.id, error = %e, "a sweep back to hot cannot be followed; trying again next pass");
                    continue;
                }
            };
            if let Err(e) = self.track_sweep(&sweep, tx_hex, spending).await {
                tracing::warn!(sweep = %sweep.id, error = %e, "a sweep could not be followed; trying again next pass");
            }
        }
        Ok(())
    }

    /// One broadcast sweep: marks it confirmed once a block has it, or broadcasts it again when
    /// neither the chain nor the mempool has it any more.
    async fn track_sweep(
        &self,
        sweep: &SweepRecord,
        tx_hex: Option<String>,
        spending: &[SpendingTx],
    ) -> Result<(), BankError> {
        let direction = match sweep.direction {
            SweepDirection::ToCold => "to cold",
            SweepDirection::ToHot => "to hot",
        };
        match spending.iter().find(|s| Some(s.txid.to_string()) == sweep.txid) {
            Some(SpendingTx {
                confirmed_height: Some(height),
                ..
            }) => {
                self.store
                    .onchain_sweep_confirmed(&sweep.id, i64::from(*height))
                    .await?;
                tracing::info!(sweep = %sweep.id, direction, height, "sweep confirmed");
            }
            Some(_) => {}
            None => {
                let Some(tx_hex) = tx_hex else { return Ok(()) };
                let tx: bitcoin::Transaction = deserialize_hex(&tx_hex)
                    .map_err(|e| BankError::OnchainUnavailable(format!("sweep {} unreadable: {e}", sweep.id)))?;
                let again = match sweep.direction {
                    SweepDirection::ToCold => self.chain()?.wallet.broadcast(&tx).await,
                    SweepDirection::ToHot => self.cold()?.wallet.broadcast(&tx).await,
                };
                if let Err(e) = again {
                    tracing::warn!(sweep = %sweep.id, error = %e, "a sweep left the mempool and could not be broadcast again");
                }
            }
        }
        Ok(())
    }

    /// Moves a broadcast sweep's amount between the hot and cold accounts and books its fee.
    async fn post_sweep(&self, sweep: &SweepRecord) -> Result<(), BankError> {
        let hot = SystemAccount::OnchainHot.ledger_id(Currency::Btc);
        let cold = SystemAccount::OnchainCold.ledger_id(Currency::Btc);
        // Assets are negative balances: coins arriving in a wallet debit its account.
        let (from, to) = match sweep.direction {
            SweepDirection::ToCold => (cold.clone(), hot.clone()),
            SweepDirection::ToHot => (hot.clone(), cold.clone()),
        };
        let paid_from = to;
        let key = |suffix: &str| IdempotencyKey {
            scope: SWEEP_SCOPE.into(),
            key: format!("{}{suffix}", sweep.id),
        };
        // The fee first: its key makes a repeat a no-op, and the move below commits with the
        // sweep's status, so a crash between the two is finished by the next pass.
        if sweep.fee_sat > 0 {
            let fee = JournalRequest {
                idempotency: key(":fee"),
                kind: JournalKind::IntraLedger,
                op: LedgerOp::Transfer {
                    from: SystemAccount::FeesRevenue.ledger_id(Currency::Btc),
                    to: paid_from.clone(),
                    amount: sweep.fee_sat,
                    fee: 0,
                    fee_to: None,
                },
                memo: Some(format!("mining fee of sweep {}", sweep.id)),
                limit: None,
            };
            self.store.post(PostRequest::from(fee)).await??;
        }
        let moved = JournalRequest {
            idempotency: key(""),
            kind: JournalKind::IntraLedger,
            op: LedgerOp::Transfer {
                from,
                to: paid_from,
                amount: sweep.amount_sat,
                fee: 0,
                fee_to: None,
            },
            memo: Some(format!("sweep {} ({})", sweep.id, sweep.direction.as_str())),
            limit: None,
        };
        let post = PostRequest {
            reference: sweep.txid.as_ref().map(|t| format!("onchain-sweep:{t}")),
            records: vec![Record::onchain_sweep_broadcast(&sweep.id, self.store.now_ms())],
            ..PostRequest::from(moved)
        };
        self.store.post(post).await??;
        tracing::info!(sweep = %sweep.id, direction = sweep.direction.as_str(), amount = sweep.amount_sat, "sweep broadcast");
        Ok(())
    }

    /// `flash admin cold psbt create`: a PSBT moving `amount` from cold storage to the hot
    /// wallet, for the cosigners to sign offline.
    pub async fn cold_psbt_create(&self, amount: i64) -> Result<ColdPsbt, BankError> {
        let cold = self.cold()?;
        let amount = Sats::positive(amount)?;
        let _pass = self.chain()?.payouts.lock().await;
        self.lead_onchain().await?;
        // One at a time: a second PSBT could spend the same cold coins as the first.
        if let Some((waiting, _)) = self.store.onchain_sweeps("awaiting_signatures").await?.first() {
            return Err(BankError::InvalidInput(format!(
                "sweep {} awaits its signatures; finalise or cancel it first",
                waiting.id
            )));
        }
        let address = self.chain()?.wallet.internal_address().await.map_err(cold_error)?;
        let rate = self.payout_fee_rate(flash_store::PayoutSpeed::Batch).await?;
        cold.wallet.sync(u32::MAX).await.map_err(cold_error)?;
        let output = PayoutOutput {
            address: address.clone(),
            amount,
        };
        let unsigned = cold
            .wallet
            .create_psbt(std::slice::from_ref(&output), rate)
            .await
            .map_err(|e| match e {
                ChainError::InsufficientFunds(m) => {
                    BankError::InvalidInput(format!("cold storage cannot cover it: {m}"))
                }
                other => cold_error(other),
            })?;
        let psbt = BASE64_STANDARD.encode(unsigned.psbt.serialize());
        let sweep = SweepRecord {
            id: format!("sweep:{}", uuid::Uuid::now_v7()),
            direction: SweepDirection::ToHot,
            address,
            amount_sat: amount.get(),
            fee_sat: unsigned.fee.get(),
            psbt: Some(psbt.clone()),
            txid: None,
            status: "awaiting_signatures".into(),
            confirmed_height: None,
            created_at_ms: self.store.now_ms(),
        };
        self.store.insert_onchain_sweep(&sweep, None).await?;
        Ok(ColdPsbt {
            id: sweep.id,
            psbt,
            amount,
            fee: unsigned.fee,
        })
    }

    /// `flash admin cold psbt cancel`: abandons a cold → hot PSBT that awaits signatures
    /// (signatures made for it can no longer be used).
    pub async fn cold_psbt_cancel(&self, id: &str) -> Result<(), BankError> {
        self.cold()?;
        match self.store.onchain_sweep(id).await? {
            Some(s) if s.direction == SweepDirection::ToHot && s.status == "awaiting_signatures" => {
                Ok(self.store.onchain_sweep_cancelled(id).await?)
            }
            Some(s) => Err(BankError::InvalidInput(format!("sweep {id} is {}", s.status))),
            None => Err(BankError::InvalidInput(format!("no cold → hot sweep {id}"))),
        }
    }

    /// `flash admin cold psbt finalize-broadcast`: combines the cosigners' signed PSBTs
    /// (base64) of sweep `id`, finalises and broadcasts the transaction; its txid.
    pub async fn cold_psbt_finalize(&self, id: &str, signed: &[String]) -> Result<String, BankError> {
        let cold = self.cold()?;
        let sweep = self
            .store
            .onchain_sweep(id)
            .await?
            .filter(|s| s.direction == SweepDirection::ToHot)
            .ok_or_else(|| BankError::InvalidInput(format!("no cold → hot sweep {id}")))?;
        if sweep.status != "awaiting_signatures" {
            return Err(BankError::InvalidInput(format!("sweep {id} is {}", sweep.status)));
        }
        let psbts = signed
            .iter()
            .map(|b64| {
                let bytes = BASE64_STANDARD
                    .decode(b64.trim())
                    .map_err(|e| BankError::InvalidInput(format!("not base64: {e}")))?;
                Psbt::deserialize(&bytes).map_err(|e| BankError::InvalidInput(format!("not a PSBT: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let expected = sweep
            .psbt
            .as_deref()
            .and_then(|b| BASE64_STANDARD.decode(b).ok())
            .and_then(|b| Psbt::deserialize(&b).ok())
            .map(|p| p.unsigned_tx.compute_txid());
        if psbts.iter().any(|p| Some(p.unsigned_tx.compute_txid()) != expected) {
            return Err(BankError::InvalidInput(format!(
                "a PSBT is not the one created for sweep {id}"
            )));
        }
        let _pass = self.chain()?.payouts.lock().await;
        self.lead_onchain().await?;
        let tx = cold.wallet.finalize(psbts).await.map_err(cold_error)?;
        let recorded = self
            .store
            .onchain_sweep_signed(id, &tx.txid.to_string(), &serialize_hex(&tx.tx), tx.fee.get())
            .await;
        if let Err(e) = recorded {
            // Not recorded, so never broadcast: the cold coins are free again.
            if let Err(forget) = cold.wallet.forget(tx.txid).await {
                tracing::warn!(error = %forget, "could not release the coins of an unrecorded sweep");
            }
            return Err(e.into());
        }
        self.broadcast_sweeps().await?;
        Ok(tx.txid.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_follow_galoys_rule() {
        let policy = ColdPolicy {
            max_hot_sats: 1_000,
            min_hot_sats: 300,
            min_rebalance_sats: 200,
        };
        assert_eq!(policy.sweep_amount(1_000, 0), None, "at the ceiling");
        assert_eq!(policy.sweep_amount(1_001, 0), Some(701));
        assert_eq!(policy.sweep_amount(1_001, 500), Some(501), "queued payouts stay funded");
        assert_eq!(policy.sweep_amount(1_001, 900), None, "too small to be worth it");
    }
}
