//! The operator API of cold storage: its balance and policy, the sweeps between it and the hot
//! wallet, and the cold → hot PSBT round trip (create, then finalise and broadcast what the
//! cosigners signed offline).

use async_graphql::{Context, InputObject, Object, SimpleObject};
use flash_bank::BankError;
use flash_bank::SweepRecord;

use super::types::*;
use super::{operator, state};
use crate::error::ApiError;

/// A move between the hot wallet and cold storage.
#[derive(SimpleObject)]
pub struct ColdSweepView {
    /// Its id (what `coldPsbtFinalizeBroadcast` takes).
    pub id: String,
    /// `to_cold` or `to_hot`.
    pub direction: String,
    /// Where the coins go.
    pub address: OnChainAddress,
    /// How much arrives there.
    pub amount: SatAmount,
    /// Its mining fee.
    pub fee: SatAmount,
    /// `awaiting_signatures`, `signed`, `broadcast`, `confirmed` or `failed`.
    pub status: String,
    /// The block that confirmed it.
    pub confirmed_height: Option<i64>,
    /// Its transaction, once signed.
    pub tx_hash: Option<OnChainTxHash>,
    /// The PSBT the cosigners sign (cold → hot, while awaiting signatures), base64.
    pub psbt: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
}

impl From<SweepRecord> for ColdSweepView {
    fn from(s: SweepRecord) -> Self {
        let awaiting = s.status == "awaiting_signatures";
        ColdSweepView {
            id: s.id,
            direction: s.direction.as_str().to_string(),
            address: OnChainAddress(s.address),
            amount: SatAmount(s.amount_sat),
            fee: SatAmount(s.fee_sat),
            tx_hash: s.txid.map(OnChainTxHash),
            psbt: s.psbt.filter(|_| awaiting),
            status: s.status,
            confirmed_height: s.confirmed_height,
            created_at: ts(s.created_at_ms),
        }
    }
}

/// Cold storage as the operator sees it.
#[derive(SimpleObject)]
pub struct ColdStorageView {
    /// Whether this Flash has a cold wallet (`[onchain.cold]`).
    pub configured: bool,
    /// Its confirmed coins.
    pub confirmed_balance: Option<SatAmount>,
    /// Its unconfirmed incoming coins.
    pub unconfirmed_balance: Option<SatAmount>,
    /// Above this confirmed hot balance the excess is swept to cold.
    pub max_hot_balance: Option<SatAmount>,
    /// What a sweep leaves in the hot wallet.
    pub min_hot_balance: Option<SatAmount>,
    /// Smaller sweeps are skipped.
    pub min_rebalance: Option<SatAmount>,
    /// The latest sweeps, newest first.
    pub sweeps: Vec<ColdSweepView>,
}

fn admin_error(e: BankError) -> async_graphql::Error {
    ApiError::from(e).to_graphql()
}

/// Operator queries of cold storage.
#[derive(Default)]
pub struct ColdAdminQuery;

#[Object]
impl ColdAdminQuery {
    /// Cold storage's balance, the sweep policy and the latest sweeps (`first`, default 20).
    async fn cold_storage(&self, ctx: &Context<'_>, first: Option<i32>) -> async_graphql::Result<ColdStorageView> {
        operator(ctx)?;
        let bank = &state(ctx).bank;
        let sweeps = bank
            .cold_sweeps(i64::from(first.unwrap_or(20).clamp(1, 1_000)))
            .await
            .map_err(admin_error)?
            .into_iter()
            .map(Into::into)
            .collect();
        let Some(policy) = bank.cold_policy() else {
            return Ok(ColdStorageView {
                configured: false,
                confirmed_balance: None,
                unconfirmed_balance: None,
                max_hot_balance: None,
                min_hot_balance: None,
                min_rebalance: None,
                sweeps,
            });
        };
        let (confirmed, unconfirmed) = bank.cold_balance().await.map_err(admin_error)?;
        Ok(ColdStorageView {
            configured: true,
            confirmed_balance: Some(SatAmount(confirmed.get())),
            unconfirmed_balance: Some(SatAmount(unconfirmed.get())),
            max_hot_balance: Some(SatAmount(policy.max_hot_sats)),
            min_hot_balance: Some(SatAmount(policy.min_hot_sats)),
            min_rebalance: Some(SatAmount(policy.min_rebalance_sats)),
            sweeps,
        })
    }

    /// A sweep by id (e.g. to fetch a cold → hot PSBT again).
    async fn cold_sweep(&self, ctx: &Context<'_>, id: String) -> async_graphql::Result<Option<ColdSweepView>> {
        operator(ctx)?;
        let sweep = state(ctx).bank.cold_sweep(&id).await.map_err(admin_error)?;
        Ok(sweep.map(Into::into))
    }
}

/// `coldPsbtCreate` input.
#[derive(InputObject)]
pub struct ColdPsbtCreateInput {
    /// Satoshis to bring back to the hot wallet.
    pub amount: SatAmount,
}

/// `coldPsbtFinalizeBroadcast` input.
#[derive(InputObject)]
pub struct ColdPsbtFinalizeInput {
    /// The sweep `coldPsbtCreate` made.
    pub sweep_id: String,
    /// The PSBTs the cosigners signed (base64), at least the threshold's worth of signatures
    /// in all.
    pub psbts: Vec<String>,
}

/// `coldPsbtCancel` input.
#[derive(InputObject)]
pub struct ColdPsbtCancelInput {
    /// The sweep `coldPsbtCreate` made.
    pub sweep_id: String,
}

/// A sweep made or advanced, or why not.
#[derive(SimpleObject, Default)]
pub struct ColdSweepPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The sweep.
    pub sweep: Option<ColdSweepView>,
}

impl ColdSweepPayload {
    async fn of(ctx: &Context<'_>, id: Result<Option<String>, BankError>) -> Self {
        let found = match id {
            Ok(Some(id)) => state(ctx).bank.cold_sweep(&id).await.map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        };
        match found {
            Ok(sweep) => ColdSweepPayload {
                errors: vec![],
                sweep: sweep.flatten().map(Into::into),
            },
            Err(e) => ColdSweepPayload {
                errors: vec![ApiError::from(e).into()],
                sweep: None,
            },
        }
    }
}

/// Operator mutations of cold storage.
#[derive(Default)]
pub struct ColdAdminMutation;

#[Object]
impl ColdAdminMutation {
    /// A PSBT moving `amount` from cold storage to the hot wallet, for the cosigners to sign
    /// offline (`flash cold sign`).
    async fn cold_psbt_create(
        &self,
        ctx: &Context<'_>,
        input: ColdPsbtCreateInput,
    ) -> async_graphql::Result<ColdSweepPayload> {
        operator(ctx)?;
        let created = state(ctx).bank.cold_psbt_create(input.amount.0).await;
        Ok(ColdSweepPayload::of(ctx, created.map(|p| Some(p.id))).await)
    }

    /// Combines the cosigners' signed PSBTs, finalises the transaction and broadcasts it.
    async fn cold_psbt_finalize_broadcast(
        &self,
        ctx: &Context<'_>,
        input: ColdPsbtFinalizeInput,
    ) -> async_graphql::Result<ColdSweepPayload> {
        operator(ctx)?;
        let finalized = state(ctx).bank.cold_psbt_finalize(&input.sweep_id, &input.psbts).await;
        Ok(ColdSweepPayload::of(ctx, finalized.map(|_| Some(input.sweep_id))).await)
    }

    /// Abandons a cold → hot PSBT that awaits signatures (only one may wait at a time).
    async fn cold_psbt_cancel(
        &self,
        ctx: &Context<'_>,
        input: ColdPsbtCancelInput,
    ) -> async_graphql::Result<ColdSweepPayload> {
        operator(ctx)?;
        let cancelled = state(ctx).bank.cold_psbt_cancel(&input.sweep_id).await;
        Ok(ColdSweepPayload::of(ctx, cancelled.map(|()| Some(input.sweep_id))).await)
    }

    /// Sweeps the hot wallet's excess to cold storage now if the policy calls for it (the
    /// payout batcher also checks at every batch); no sweep when within policy.
    async fn cold_sweep_now(&self, ctx: &Context<'_>) -> async_graphql::Result<ColdSweepPayload> {
        operator(ctx)?;
        let bank = &state(ctx).bank;
        let swept = match bank.cold_policy() {
            Some(_) => bank.cold_sweep_check().await,
            None => Err(BankError::OnchainUnavailable("no cold wallet is configured".into())),
        };
        Ok(ColdSweepPayload::of(ctx, swept).await)
    }
}
