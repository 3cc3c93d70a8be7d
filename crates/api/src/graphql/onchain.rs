//! The on-chain part of the app and operator APIs, with Galoy/Blink names: deposit addresses,
//! fee quotes and sends; the operator's view of the hot wallet, payout queue and batches; the
//! dev chain's controls.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use flash_auth::Scope as AuthScope;
use flash_bank::{BankError, OnchainSend, PayOutcome, PayRequest, Speed};
use flash_bank::{BatchRecord, PayoutRecord};
use flash_core::destination::Destination;
use flash_core::onchain::BroadcastBehaviour;
use flash_core::WalletId as CoreWalletId;

use super::pay::{pay_payload, pay_request, send};
use super::public::PaymentSendPayload;

use super::types::*;
use super::{operator, principal, state};
use crate::error::ApiError;

/// `onChainAddressCreate` / `onChainAddressCurrent` input.
#[derive(InputObject)]
pub struct OnChainAddressCreateInput {
    /// The wallet the address pays into.
    pub wallet_id: WalletId,
}

/// `onChainAddressCurrent` input.
#[derive(InputObject)]
pub struct OnChainAddressCurrentInput {
    /// The wallet the address pays into.
    pub wallet_id: WalletId,
}

/// A deposit address, or why there is none.
#[derive(SimpleObject)]
pub struct OnChainAddressPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The address.
    pub address: Option<OnChainAddress>,
}

impl From<Result<String, BankError>> for OnChainAddressPayload {
    fn from(r: Result<String, BankError>) -> Self {
        match r {
            Ok(address) => OnChainAddressPayload {
                errors: vec![],
                address: Some(OnChainAddress(address)),
            },
            Err(e) => OnChainAddressPayload {
                errors: vec![ApiError::from(e).into()],
                address: None,
            },
        }
    }
}

fn wallet(id: &WalletId) -> Result<CoreWalletId, BankError> {
    id.0.parse().map_err(|_| BankError::WalletNotFound)
}

/// How fast an on-chain payment should confirm.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum PayoutSpeed {
    /// Its own transaction, now.
    Fast,
    /// The next batch.
    Medium,
    /// The next batch.
    Slow,
}

impl From<PayoutSpeed> for Speed {
    fn from(s: PayoutSpeed) -> Self {
        match s {
            PayoutSpeed::Fast => Speed::Fast,
            PayoutSpeed::Medium => Speed::Medium,
            PayoutSpeed::Slow => Speed::Slow,
        }
    }
}

/// `onChainTxFee` result.
#[derive(SimpleObject)]
pub struct OnChainTxFee {
    /// The most the payment will cost in fees (the reserve held with it).
    pub amount: SatAmount,
}

/// `onChainPaymentSend` input.
#[derive(InputObject)]
pub struct OnChainPaymentSendInput {
    /// The paying wallet.
    pub wallet_id: WalletId,
    /// Where to.
    pub address: OnChainAddress,
    /// How much.
    pub amount: SatAmount,
    /// Memo for the payer's history.
    pub memo: Option<Memo>,
    /// How fast (default MEDIUM: the next batch).
    pub speed: Option<PayoutSpeed>,
    /// Makes the request safe to retry (Flash extension).
    pub idempotency_key: Option<String>,
}

/// `onChainPaymentSendAll` input.
#[derive(InputObject)]
pub struct OnChainPaymentSendAllInput {
    /// The paying wallet (all of it is sent, less the fee).
    pub wallet_id: WalletId,
    /// Where to.
    pub address: OnChainAddress,
    /// Memo for the payer's history.
    pub memo: Option<Memo>,
    /// How fast (default MEDIUM: the next batch).
    pub speed: Option<PayoutSpeed>,
    /// Makes the request safe to retry (Flash extension).
    pub idempotency_key: Option<String>,
}

/// On-chain queries.
#[derive(Default)]
pub struct OnchainQuery;

#[Object]
impl OnchainQuery {
    /// The most sending `amount` to `address` costs in fees (scope `read`); 0 to an address of
    /// this Flash.
    async fn on_chain_tx_fee(
        &self,
        ctx: &Context<'_>,
        wallet_id: WalletId,
        address: OnChainAddress,
        amount: SatAmount,
        speed: Option<PayoutSpeed>,
    ) -> async_graphql::Result<OnChainTxFee> {
        let p = principal(ctx, AuthScope::Read)?;
        let bank = &state(ctx).bank;
        let speed = speed.unwrap_or(PayoutSpeed::Medium).into();
        let fee = async {
            bank.onchain_fee(p.account_id, wallet(&wallet_id)?, &address.0, amount.0, speed)
                .await
        };
        let fee = fee.await.map_err(|e| ApiError::from(e).to_graphql())?;
        Ok(OnChainTxFee {
            amount: SatAmount(fee.get()),
        })
    }
}

/// On-chain mutations.
#[derive(Default)]
pub struct OnchainMutation;

#[Object]
impl OnchainMutation {
    /// A new deposit address for one of the caller's wallets (scope `receive`). Deposits are
    /// credited after the configured confirmations.
    async fn on_chain_address_create(
        &self,
        ctx: &Context<'_>,
        input: OnChainAddressCreateInput,
    ) -> async_graphql::Result<OnChainAddressPayload> {
        let p = principal(ctx, AuthScope::Receive)?;
        let bank = &state(ctx).bank;
        let result = async {
            bank.onchain_address_create(p.account_id, wallet(&input.wallet_id)?)
                .await
        };
        Ok(result.await.into())
    }

    /// The wallet's newest deposit address, created if it has none (scope `receive`).
    async fn on_chain_address_current(
        &self,
        ctx: &Context<'_>,
        input: OnChainAddressCurrentInput,
    ) -> async_graphql::Result<OnChainAddressPayload> {
        let p = principal(ctx, AuthScope::Receive)?;
        let bank = &state(ctx).bank;
        let result = async {
            bank.onchain_address_current(p.account_id, wallet(&input.wallet_id)?)
                .await
        };
        Ok(result.await.into())
    }

    /// Pays a Bitcoin address (scope `write`): inside the ledger with no fee when the address
    /// is this Flash's, otherwise held (amount + fee reserve) and sent in the next batch (or at
    /// once when FAST). Answers PENDING until the transaction is out.
    async fn on_chain_payment_send(
        &self,
        ctx: &Context<'_>,
        input: OnChainPaymentSendInput,
    ) -> async_graphql::Result<PaymentSendPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let target = Destination::OnchainAddress(input.address.0).into();
        let amount = Some(input.amount.0);
        let req = pay_request(
            p.account_id,
            &input.wallet_id,
            target,
            amount,
            input.memo,
            input.idempotency_key,
        )
        .map(|req| PayRequest {
            speed: input.speed.unwrap_or(PayoutSpeed::Medium).into(),
            ..req
        });
        Ok(send(ctx, req).await)
    }

    /// Sends a wallet's whole balance, less the fee, to a Bitcoin address (scope `write`).
    async fn on_chain_payment_send_all(
        &self,
        ctx: &Context<'_>,
        input: OnChainPaymentSendAllInput,
    ) -> async_graphql::Result<PaymentSendPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let bank = &state(ctx).bank;
        let result = async {
            let req = OnchainSend {
                account: p.account_id,
                wallet_id: wallet(&input.wallet_id)?,
                address: input.address.0,
                amount: None,
                speed: input.speed.unwrap_or(PayoutSpeed::Medium).into(),
                memo: input.memo.map(|m| m.0),
                idempotency_key: input.idempotency_key,
            };
            bank.onchain_send(req).await.map(PayOutcome::from)
        };
        Ok(pay_payload(result.await))
    }
}

/// The hot wallet and what is on its way in and out.
#[derive(SimpleObject)]
pub struct OnchainStatusView {
    /// The chain backend: `dev`, `bitcoind` or `electrum`.
    pub source: String,
    /// Confirmations a deposit needs.
    pub confirmations: i32,
    /// The chain tip as of the last watcher pass.
    pub tip_height: Option<i64>,
    /// The hot wallet's confirmed coins.
    pub hot_balance: Option<SatAmount>,
    /// What its unconfirmed transactions add or take.
    pub hot_unconfirmed: Option<SignedAmount>,
    /// Deposits seen, not yet credited.
    pub pending_deposits: i64,
    /// Their satoshis.
    pub pending_deposit_amount: SatAmount,
    /// Payouts held, not yet broadcast.
    pub queued_payouts: i64,
    /// Their satoshis.
    pub queued_payout_amount: SatAmount,
}

/// A payout, as the operator sees it.
#[derive(SimpleObject)]
pub struct OnchainPayoutView {
    /// Its id.
    pub id: String,
    /// The paying wallet.
    pub wallet_id: WalletId,
    /// Where to.
    pub address: OnChainAddress,
    /// How much.
    pub amount: SatAmount,
    /// Most of the fee the wallet pays.
    pub fee_reserved: SatAmount,
    /// `batch` or `immediate`.
    pub speed: String,
    /// `queued`, `batched`, `sent` or `failed`.
    pub status: String,
    /// Its batch.
    pub batch_id: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
}

impl From<PayoutRecord> for OnchainPayoutView {
    fn from(p: PayoutRecord) -> Self {
        OnchainPayoutView {
            id: p.payout.id.as_str().to_string(),
            wallet_id: WalletId(p.payout.wallet_id.to_string()),
            address: OnChainAddress(p.payout.address),
            amount: SatAmount(p.payout.amount_sat),
            fee_reserved: SatAmount(p.payout.fee_reserved_sat),
            speed: p.payout.speed.as_str().to_string(),
            status: p.status.as_str().to_string(),
            batch_id: p.batch_id,
            created_at: ts(p.created_at_ms),
        }
    }
}

/// A payout transaction.
#[derive(SimpleObject)]
pub struct OnchainBatchView {
    /// Its id.
    pub id: String,
    /// Its txid.
    pub tx_hash: OnChainTxHash,
    /// `signed`, `broadcast`, `confirmed`, `replaced` or `failed`.
    pub status: String,
    /// The fee it pays.
    pub fee: SatAmount,
    /// Its size, virtual bytes.
    pub vsize: i64,
    /// Its fee rate, satoshis per 1,000 vbytes.
    pub fee_rate: i64,
    /// The transaction it replaces (a fee bump).
    pub replaces: Option<String>,
    /// The block that confirmed it.
    pub confirmed_height: Option<i64>,
    /// Why the network refused it.
    pub failure: Option<String>,
    /// When it was signed.
    pub created_at: Timestamp,
}

impl From<BatchRecord> for OnchainBatchView {
    fn from(b: BatchRecord) -> Self {
        OnchainBatchView {
            id: b.batch.id,
            tx_hash: OnChainTxHash(b.batch.txid),
            status: b.status.as_str().to_string(),
            fee: SatAmount(b.batch.fee_sat),
            vsize: b.batch.vsize,
            fee_rate: b.batch.fee_rate,
            replaces: b.batch.replaces,
            confirmed_height: b.confirmed_height,
            failure: b.failure,
            created_at: ts(b.created_at_ms),
        }
    }
}

fn admin_error(e: BankError) -> async_graphql::Error {
    ApiError::from(e).to_graphql()
}

/// Operator queries of the on-chain service.
#[derive(Default)]
pub struct OnchainAdminQuery;

#[Object]
impl OnchainAdminQuery {
    /// The hot wallet, pending deposits and queued payouts.
    async fn onchain_status(&self, ctx: &Context<'_>) -> async_graphql::Result<OnchainStatusView> {
        operator(ctx)?;
        let s = state(ctx).bank.onchain_status().await.map_err(admin_error)?;
        Ok(OnchainStatusView {
            source: s.source.to_string(),
            confirmations: i32::try_from(s.confirmations).unwrap_or(i32::MAX),
            tip_height: s.hot.map(|(tip, _, _)| i64::from(tip)),
            hot_balance: s.hot.map(|(_, confirmed, _)| SatAmount(confirmed)),
            hot_unconfirmed: s.hot.map(|(_, _, unconfirmed)| SignedAmount(unconfirmed)),
            pending_deposits: s.totals.pending_deposits,
            pending_deposit_amount: SatAmount(s.totals.pending_deposit_sats),
            queued_payouts: s.totals.queued_payouts,
            queued_payout_amount: SatAmount(s.totals.queued_payout_sats),
        })
    }

    /// Payouts waiting for a batch, oldest first.
    async fn onchain_payout_queue(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<OnchainPayoutView>> {
        operator(ctx)?;
        let limit = i64::from(first.unwrap_or(100).clamp(1, 1_000));
        let queue = state(ctx).bank.onchain_payout_queue(limit).await.map_err(admin_error)?;
        Ok(queue.into_iter().map(Into::into).collect())
    }

    /// Deposits under review (credited, then gone from the chain), oldest first. A review
    /// ends by itself if the deposit is confirmed again, or with `onchainReviewReclaim`.
    async fn onchain_reviews(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<OnchainReviewView>> {
        operator(ctx)?;
        let reviews = state(ctx).bank.onchain_reviews().await.map_err(admin_error)?;
        Ok(reviews
            .into_iter()
            .map(|(d, held)| OnchainReviewView {
                outpoint: d.outpoint,
                wallet_id: WalletId(d.wallet_id.to_string()),
                account_id: d.account_id.to_string(),
                amount: SatAmount(d.amount_sat),
                credited: SatAmount(d.amount_sat - d.fee_sat),
                held: SatAmount(held),
                reason: d.review_reason,
            })
            .collect())
    }

    /// Payout transactions, newest first.
    async fn onchain_batches(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<OnchainBatchView>> {
        operator(ctx)?;
        let limit = i64::from(first.unwrap_or(20).clamp(1, 1_000));
        let batches = state(ctx)
            .bank
            .onchain_batch_history(limit)
            .await
            .map_err(admin_error)?;
        Ok(batches.into_iter().map(Into::into).collect())
    }
}

/// `devChainDeposit` input.
#[derive(InputObject)]
pub struct DevChainDepositInput {
    /// The address paid (a deposit address of this Flash, or any address of the network).
    pub address: OnChainAddress,
    /// Amount, satoshis.
    pub amount: SatAmount,
}

/// `devChainMine` input.
#[derive(InputObject)]
pub struct DevChainMineInput {
    /// Blocks to mine (1 to 1,000).
    pub blocks: i32,
}

/// `devChainReorg` input.
#[derive(InputObject)]
pub struct DevChainReorgInput {
    /// How many blocks to replace.
    pub depth: i32,
    /// Whether their transactions vanish (as if double-spent) instead of going back to the
    /// mempool.
    pub drop_transactions: Option<bool>,
}

/// What the simulated network does with broadcasts.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DevChainBroadcasts {
    /// Relays them and answers at once.
    Relay,
    /// Never gets them; the call hangs until relaying resumes, then fails.
    Lose,
    /// Gets them, but the answer is lost; the call hangs until relaying resumes, then fails.
    LoseAnswer,
}

impl From<DevChainBroadcasts> for BroadcastBehaviour {
    fn from(b: DevChainBroadcasts) -> Self {
        match b {
            DevChainBroadcasts::Relay => BroadcastBehaviour::Relay,
            DevChainBroadcasts::Lose => BroadcastBehaviour::Lose,
            DevChainBroadcasts::LoseAnswer => BroadcastBehaviour::LoseAnswer,
        }
    }
}

/// `devChainBroadcasts` input.
#[derive(InputObject)]
pub struct DevChainBroadcastsInput {
    /// What broadcasts do from now on (until changed or flashd restarts).
    pub behaviour: DevChainBroadcasts,
}

/// What a dev chain command did.
#[derive(SimpleObject, Default)]
pub struct DevChainPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The deposit's transaction (`devChainDeposit`).
    pub tx_hash: Option<OnChainTxHash>,
    /// The chain's height afterwards (`devChainMine`, `devChainReorg`).
    pub height: Option<i32>,
}

impl DevChainPayload {
    fn failed(e: BankError) -> Self {
        DevChainPayload {
            errors: vec![ApiError::from(e).into()],
            ..DevChainPayload::default()
        }
    }

    fn tip(r: Result<flash_core::onchain::BlockRef, BankError>) -> Self {
        match r {
            Ok(tip) => DevChainPayload {
                height: i32::try_from(tip.height).ok(),
                ..DevChainPayload::default()
            },
            Err(e) => DevChainPayload::failed(e),
        }
    }
}

fn count(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(0)
}

/// A deposit under review: credited, then gone from the chain.
#[derive(SimpleObject)]
pub struct OnchainReviewView {
    /// `txid:vout`.
    pub outpoint: String,
    /// The wallet it was credited to.
    pub wallet_id: WalletId,
    /// The wallet's account.
    pub account_id: String,
    /// The output's value, satoshis.
    pub amount: SatAmount,
    /// What was credited (the value less the deposit fee).
    pub credited: SatAmount,
    /// What the review's hold still holds on the wallet.
    pub held: SatAmount,
    /// Why it is under review.
    pub reason: Option<String>,
}

/// `onchainReviewReclaim` input.
#[derive(InputObject)]
pub struct OnchainReviewReclaimInput {
    /// The deposit, `txid:vout`.
    pub outpoint: String,
}

/// `onchainReviewReclaim` result.
#[derive(SimpleObject, Default)]
pub struct OnchainReviewReclaimPayload {
    /// Errors (`INVALID_INPUT` when the deposit is not under review).
    pub errors: Vec<ErrorIface>,
    /// Taken back from the wallet, satoshis.
    pub reclaimed: Option<SatAmount>,
    /// Credited but already spent: the bank's loss, satoshis.
    pub shortfall: Option<SatAmount>,
}

/// `onchainPayoutBatchNow` result.
#[derive(SimpleObject, Default)]
pub struct OnchainBatchNowPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// Transactions broadcast.
    pub broadcast: i32,
    /// Payouts whose holds settled.
    pub settled: i32,
}

/// Operator mutations of the on-chain service; the `devChain…` ones run only on the dev
/// simulator, never on mainnet.
#[derive(Default)]
pub struct OnchainAdminMutation;

#[Object]
impl OnchainAdminMutation {
    /// Sends the queued payouts now instead of at the next batch interval.
    async fn onchain_payout_batch_now(&self, ctx: &Context<'_>) -> async_graphql::Result<OnchainBatchNowPayload> {
        operator(ctx)?;
        Ok(match state(ctx).bank.onchain_payout_pass(true).await {
            Ok(r) => OnchainBatchNowPayload {
                errors: vec![],
                broadcast: i32::try_from(r.broadcast).unwrap_or(i32::MAX),
                settled: i32::try_from(r.settled).unwrap_or(i32::MAX),
            },
            Err(e) => OnchainBatchNowPayload {
                errors: vec![ApiError::from(e).into()],
                ..OnchainBatchNowPayload::default()
            },
        })
    }

    /// Ends a review whose deposit is not coming back: what the wallet still holds of the
    /// credit goes back to the hot wallet's account and the deposit counts as dropped.
    async fn onchain_review_reclaim(
        &self,
        ctx: &Context<'_>,
        input: OnchainReviewReclaimInput,
    ) -> async_graphql::Result<OnchainReviewReclaimPayload> {
        let label = operator(ctx)?;
        Ok(
            match state(ctx).bank.onchain_review_reclaim(&input.outpoint, label).await {
                Ok(r) => OnchainReviewReclaimPayload {
                    errors: vec![],
                    reclaimed: Some(SatAmount(r.reclaimed)),
                    shortfall: Some(SatAmount(r.shortfall)),
                },
                Err(e) => OnchainReviewReclaimPayload {
                    errors: vec![ApiError::from(e).into()],
                    ..OnchainReviewReclaimPayload::default()
                },
            },
        )
    }

    /// Dev/regtest: a payment from outside to `address`, in the simulated mempool.
    async fn dev_chain_deposit(
        &self,
        ctx: &Context<'_>,
        input: DevChainDepositInput,
    ) -> async_graphql::Result<DevChainPayload> {
        operator(ctx)?;
        Ok(
            match state(ctx)
                .bank
                .dev_chain_deposit(&input.address.0, input.amount.0)
                .await
            {
                Ok(txid) => DevChainPayload {
                    tx_hash: Some(OnChainTxHash(txid)),
                    ..DevChainPayload::default()
                },
                Err(e) => DevChainPayload::failed(e),
            },
        )
    }

    /// Dev/regtest: mines blocks (the mempool goes into the first), then credits what they
    /// confirmed.
    async fn dev_chain_mine(
        &self,
        ctx: &Context<'_>,
        input: DevChainMineInput,
    ) -> async_graphql::Result<DevChainPayload> {
        operator(ctx)?;
        Ok(DevChainPayload::tip(
            state(ctx).bank.dev_chain_mine(count(input.blocks)).await,
        ))
    }

    /// Dev/regtest: makes the simulated network relay, lose, or lose the answer to the
    /// transactions broadcast from now on, to rehearse outages and crashes.
    async fn dev_chain_broadcasts(
        &self,
        ctx: &Context<'_>,
        input: DevChainBroadcastsInput,
    ) -> async_graphql::Result<DevChainPayload> {
        operator(ctx)?;
        Ok(match state(ctx).bank.dev_chain_broadcasts(input.behaviour.into()) {
            Ok(()) => DevChainPayload::default(),
            Err(e) => DevChainPayload::failed(e),
        })
    }

    /// Dev/regtest: replaces the top `depth` blocks with a longer chain of empty blocks.
    async fn dev_chain_reorg(
        &self,
        ctx: &Context<'_>,
        input: DevChainReorgInput,
    ) -> async_graphql::Result<DevChainPayload> {
        operator(ctx)?;
        let drop = input.drop_transactions.unwrap_or(false);
        Ok(DevChainPayload::tip(
            state(ctx).bank.dev_chain_reorg(count(input.depth), drop).await,
        ))
    }
}
