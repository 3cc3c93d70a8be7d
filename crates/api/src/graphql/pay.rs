//! `paymentSend`, the one mutation that pays anything (Flash extension): the destination is
//! read as a person writes it and the bank picks the rail. Galoy's per-rail send mutations
//! build the same request with the destination already known.

use async_graphql::{Context, InputObject, Object};
use flash_auth::Scope as AuthScope;
use flash_bank::{BankError, PayOutcome, PayRequest, PaymentStatus, Speed};
use flash_core::destination::PaymentTarget;
use flash_core::{AccountId, ErrorCode};

use super::onchain::PayoutSpeed;
use super::public::PaymentSendPayload;
use super::types::*;
use super::{principal, state};
use crate::error::ApiError;

/// `paymentSend` input.
#[derive(InputObject)]
pub struct PaymentSendInput {
    /// The paying wallet (one of the caller's).
    pub wallet_id: WalletId,
    /// Where to, as written: a username (`@` optional), a wallet id, a BOLT11 invoice, a
    /// Lightning address, an LNURL-pay or LNURL-withdraw link, a Bitcoin address, a BIP21
    /// URI (its `lightning=` invoice is preferred), or an `npub`/`nprofile`.
    pub destination: String,
    /// Satoshis: required unless the destination carries its own amount, and then it must
    /// agree.
    pub amount: Option<SatAmount>,
    /// Memo for the payer's history (the comment of a Lightning address or LNURL payment).
    pub memo: Option<Memo>,
    /// How fast an on-chain payment should confirm (default MEDIUM).
    pub speed: Option<PayoutSpeed>,
    /// Makes the request safe to retry (1–128 characters).
    pub idempotency_key: Option<String>,
}

/// A payment request for `destination` from the caller's wallet `wallet_id`, at the default
/// speed.
pub(crate) fn pay_request(
    account: AccountId,
    wallet_id: &WalletId,
    target: PaymentTarget,
    amount: Option<i64>,
    memo: Option<Memo>,
    idempotency_key: Option<String>,
) -> Result<PayRequest, BankError> {
    Ok(PayRequest {
        account,
        wallet_id: wallet_id.0.parse().map_err(|_| BankError::WalletNotFound)?,
        target,
        amount,
        memo: memo.map(|m| m.0),
        speed: Speed::Medium,
        idempotency_key,
    })
}

/// Pays `req` (when it could be built) and answers in Galoy's payload.
pub(crate) async fn send(ctx: &Context<'_>, req: Result<PayRequest, BankError>) -> PaymentSendPayload {
    let outcome = match req {
        Ok(req) => state(ctx).bank.pay(req).await,
        Err(e) => Err(e),
    };
    pay_payload(outcome)
}

/// Galoy's payload for a payment's outcome: its status, its transaction, and the node's reason
/// when it failed.
pub(crate) fn pay_payload(r: Result<PayOutcome, BankError>) -> PaymentSendPayload {
    match r {
        Ok(o) => PaymentSendPayload {
            errors: o
                .failure
                .map(|reason| vec![ApiError::new(ErrorCode::PaymentFailed, reason).into()])
                .unwrap_or_default(),
            status: Some(match o.status {
                PaymentStatus::Success => PaymentSendResult::Success,
                PaymentStatus::Failure => PaymentSendResult::Failure,
                PaymentStatus::Pending => PaymentSendResult::Pending,
                PaymentStatus::AlreadyPaid => PaymentSendResult::AlreadyPaid,
            }),
            transaction: o.transaction.map(TransactionGql),
        },
        Err(e) => PaymentSendPayload {
            errors: vec![ApiError::from(e).into()],
            status: Some(PaymentSendResult::Failure),
            transaction: None,
        },
    }
}

/// The pay-anything mutation.
#[derive(Default)]
pub struct PayMutation;

#[Object]
impl PayMutation {
    /// Pays any destination (scope `write`; Flash extension): a Flash user or wallet, an
    /// invoice, a Lightning address, an LNURL, a Bitcoin address, a BIP21 URI or a NOSTR user.
    /// Inside this Flash it settles in the ledger with no fee; otherwise over Lightning or
    /// on-chain. An LNURL-withdraw link is claimed into the wallet instead (`PENDING` until
    /// the service pays). A Cashu token is refused: redeem it with `ecashRedeem`.
    async fn payment_send(
        &self,
        ctx: &Context<'_>,
        input: PaymentSendInput,
    ) -> async_graphql::Result<PaymentSendPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let req = PaymentTarget::parse(&input.destination)
            .map_err(|e| BankError::InvalidInput(e.0))
            .and_then(|target| {
                let amount = input.amount.map(|a| a.0);
                let mut req = pay_request(
                    p.account_id,
                    &input.wallet_id,
                    target,
                    amount,
                    input.memo,
                    input.idempotency_key,
                )?;
                req.speed = input.speed.unwrap_or(PayoutSpeed::Medium).into();
                Ok(req)
            });
        Ok(send(ctx, req).await)
    }
}
