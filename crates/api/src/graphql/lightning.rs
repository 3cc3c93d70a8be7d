//! The Lightning part of the app API, with Galoy/Blink names: invoices, sends, fee probes and
//! the invoice-status subscription; Lightning addresses and LNURL links (paying them, and
//! the caller's own withdraw links).

use std::time::Duration;

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, Subscription, ID};
use flash_auth::Scope as AuthScope;
use flash_bank::{
    Bank, BankError, InvoiceCreate, InvoiceFor, InvoiceStatus, LnInvoice as BankInvoice, WalletEvent,
    WithdrawLinkCreate,
};
use flash_core::destination::Destination;
use flash_core::lightning::Hash32;
use flash_core::WalletId as CoreWalletId;
use futures_util::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::broadcast::Receiver;

use super::pay::{pay_request, send};
use super::public::PaymentSendPayload;
use super::types::*;
use super::{principal, public_lightning_rate, state};
use crate::error::ApiError;

fn errors(e: impl Into<ApiError>) -> Vec<ErrorIface> {
    vec![e.into().into()]
}

fn wallet(id: &WalletId) -> Result<CoreWalletId, BankError> {
    id.0.parse().map_err(|_| BankError::WalletNotFound)
}

/// An invoice's payment status.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum InvoicePaymentStatus {
    /// Expired unpaid.
    Expired,
    /// Paid.
    Paid,
    /// Waiting for payment.
    Pending,
}

impl From<InvoiceStatus> for InvoicePaymentStatus {
    fn from(s: InvoiceStatus) -> Self {
        match s {
            InvoiceStatus::Pending => InvoicePaymentStatus::Pending,
            InvoiceStatus::Paid => InvoicePaymentStatus::Paid,
            InvoiceStatus::Expired => InvoicePaymentStatus::Expired,
        }
    }
}

/// What every invoice shows (Galoy's `Invoice` interface fields).
#[derive(SimpleObject)]
pub struct InvoiceFields {
    /// Its payment hash.
    pub payment_hash: PaymentHash,
    /// The BOLT11 text to pay.
    pub payment_request: LnPaymentRequest,
    /// Its payment secret (not the preimage).
    pub payment_secret: LnPaymentSecret,
    /// Pending, paid or expired.
    pub payment_status: InvoicePaymentStatus,
    /// When it was issued.
    pub created_at: Timestamp,
    /// When it expires (Flash extension).
    pub expires_at: Timestamp,
}

impl From<&BankInvoice> for InvoiceFields {
    fn from(i: &BankInvoice) -> Self {
        InvoiceFields {
            payment_hash: PaymentHash(i.payment_hash.to_string()),
            payment_request: LnPaymentRequest(i.payment_request.clone()),
            payment_secret: LnPaymentSecret(i.payment_secret.clone()),
            payment_status: i.status.into(),
            created_at: ts(i.created_at_ms),
            expires_at: ts(i.expires_at_ms),
        }
    }
}

/// An invoice with an amount.
#[derive(SimpleObject)]
pub struct LnInvoice {
    #[graphql(flatten)]
    fields: InvoiceFields,
    /// Its amount.
    satoshis: SatAmount,
}

impl From<BankInvoice> for LnInvoice {
    fn from(i: BankInvoice) -> Self {
        LnInvoice {
            fields: (&i).into(),
            satoshis: SatAmount(i.amount.unwrap_or(0)),
        }
    }
}

/// An invoice the payer chooses the amount of.
#[derive(SimpleObject)]
pub struct LnNoAmountInvoice {
    #[graphql(flatten)]
    fields: InvoiceFields,
}

/// `lnInvoiceCreate` result.
#[derive(SimpleObject)]
pub struct LnInvoicePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The invoice.
    pub invoice: Option<LnInvoice>,
}

/// `lnNoAmountInvoiceCreate` result.
#[derive(SimpleObject)]
pub struct LnNoAmountInvoicePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The invoice.
    pub invoice: Option<LnNoAmountInvoice>,
}

/// An amount or errors.
#[derive(SimpleObject)]
pub struct SatAmountPayload {
    /// The amount.
    pub amount: Option<SatAmount>,
    /// Errors.
    pub errors: Vec<ErrorIface>,
}

/// An invoice's status or errors.
#[derive(SimpleObject)]
pub struct LnInvoicePaymentStatusPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The status.
    pub status: Option<InvoicePaymentStatus>,
    /// The invoice's payment hash.
    pub payment_hash: Option<PaymentHash>,
    /// The invoice.
    pub payment_request: Option<LnPaymentRequest>,
}

impl LnInvoicePaymentStatusPayload {
    fn from_result(r: Result<BankInvoice, BankError>) -> Self {
        match r {
            Ok(i) => LnInvoicePaymentStatusPayload {
                errors: vec![],
                status: Some(i.status.into()),
                payment_hash: Some(PaymentHash(i.payment_hash.to_string())),
                payment_request: Some(LnPaymentRequest(i.payment_request)),
            },
            Err(e) => LnInvoicePaymentStatusPayload {
                errors: errors(e),
                status: None,
                payment_hash: None,
                payment_request: None,
            },
        }
    }
}

/// `lnInvoiceCreate` input.
#[derive(InputObject)]
pub struct LnInvoiceCreateInput {
    /// One of the caller's BTC wallets.
    pub wallet_id: WalletId,
    /// Amount in satoshis.
    pub amount: SatAmount,
    /// Memo shown to the payer.
    pub memo: Option<Memo>,
    /// Minutes until it expires (default 240, at most 1,440).
    pub expires_in: Option<Minutes>,
}

/// `lnNoAmountInvoiceCreate` input.
#[derive(InputObject)]
pub struct LnNoAmountInvoiceCreateInput {
    /// One of the caller's BTC wallets.
    pub wallet_id: WalletId,
    /// Memo shown to the payer.
    pub memo: Option<Memo>,
    /// Minutes until it expires (default 120, at most 1,440).
    pub expires_in: Option<Minutes>,
}

/// `lnInvoiceCreateOnBehalfOfRecipient` input.
#[derive(InputObject)]
pub struct LnInvoiceCreateOnBehalfOfRecipientInput {
    /// Any account's BTC wallet.
    pub recipient_wallet_id: WalletId,
    /// Amount in satoshis.
    pub amount: SatAmount,
    /// Memo shown to the payer.
    pub memo: Option<Memo>,
    /// Committed to in the invoice instead of the memo.
    pub description_hash: Option<Hex32Bytes>,
    /// Minutes until it expires.
    pub expires_in: Option<Minutes>,
}

/// `lnNoAmountInvoiceCreateOnBehalfOfRecipient` input.
#[derive(InputObject)]
pub struct LnNoAmountInvoiceCreateOnBehalfOfRecipientInput {
    /// Any account's BTC wallet.
    pub recipient_wallet_id: WalletId,
    /// Memo shown to the payer.
    pub memo: Option<Memo>,
    /// Minutes until it expires.
    pub expires_in: Option<Minutes>,
}

/// `lnInvoicePaymentSend` input.
#[derive(InputObject)]
pub struct LnInvoicePaymentInput {
    /// The paying wallet, the caller's.
    pub wallet_id: WalletId,
    /// The invoice.
    pub payment_request: LnPaymentRequest,
    /// Memo for the payer's history.
    pub memo: Option<Memo>,
    /// Makes the request safe to retry (Flash extension).
    pub idempotency_key: Option<String>,
}

/// `lnNoAmountInvoicePaymentSend` input.
#[derive(InputObject)]
pub struct LnNoAmountInvoicePaymentInput {
    /// The paying wallet, the caller's.
    pub wallet_id: WalletId,
    /// The invoice (without an amount).
    pub payment_request: LnPaymentRequest,
    /// Amount in satoshis.
    pub amount: SatAmount,
    /// Memo for the payer's history.
    pub memo: Option<Memo>,
    /// Makes the request safe to retry (Flash extension).
    pub idempotency_key: Option<String>,
}

/// `lnurlPaymentSend` input.
#[derive(InputObject)]
pub struct LnurlPaymentSendInput {
    /// The paying wallet, the caller's.
    pub wallet_id: WalletId,
    /// An LNURL-pay link (`lnurl1…` or `lnurlp://…`).
    pub lnurl: String,
    /// Amount in satoshis.
    pub amount: SatAmount,
    /// A comment for the payee, if the service accepts one (Flash extension).
    pub comment: Option<Memo>,
    /// Makes the request safe to retry (Flash extension).
    pub idempotency_key: Option<String>,
}

/// `lnAddressPaymentSend` input.
#[derive(InputObject)]
pub struct LnAddressPaymentSendInput {
    /// The paying wallet, the caller's.
    pub wallet_id: WalletId,
    /// A Lightning address, `name@host`.
    pub ln_address: String,
    /// Amount in satoshis.
    pub amount: SatAmount,
    /// A comment for the payee, if the service accepts one (Flash extension).
    pub comment: Option<Memo>,
    /// Makes the request safe to retry (Flash extension).
    pub idempotency_key: Option<String>,
}

/// `lnurlWithdrawCreate` input (Flash extension).
#[derive(InputObject)]
pub struct LnurlWithdrawCreateInput {
    /// The wallet it pays from (default: the account's default wallet).
    pub wallet_id: Option<WalletId>,
    /// Smallest withdrawal, satoshis (default 1).
    pub min_amount: Option<SatAmount>,
    /// Largest withdrawal per use, satoshis.
    pub max_amount: SatAmount,
    /// Withdrawals allowed (default 1).
    pub uses: Option<i32>,
    /// Minutes until it stops working (default: never).
    pub expires_in: Option<Minutes>,
    /// Shown to whoever withdraws.
    pub title: Option<String>,
}

/// `lnurlWithdrawRevoke` input.
#[derive(InputObject)]
pub struct LnurlWithdrawRevokeInput {
    /// The link's id.
    pub id: ID,
}

/// An LNURL-withdraw link (LUD-03): whoever has it may withdraw from the wallet, within its
/// limits.
pub struct LnurlWithdrawLink(flash_bank::WithdrawLinkRecord);

#[Object]
impl LnurlWithdrawLink {
    async fn id(&self) -> ID {
        ID(self.0.link.id.clone())
    }
    async fn wallet_id(&self) -> WalletId {
        WalletId(self.0.link.wallet_id.to_string())
    }
    async fn title(&self) -> &str {
        &self.0.link.title
    }
    async fn min_amount(&self) -> SatAmount {
        SatAmount(self.0.link.min_sat)
    }
    async fn max_amount(&self) -> SatAmount {
        SatAmount(self.0.link.max_sat)
    }
    async fn uses_total(&self) -> i64 {
        self.0.link.uses
    }
    async fn uses_left(&self) -> i64 {
        self.0.uses_left
    }
    async fn expires_at(&self) -> Option<Timestamp> {
        self.0.link.expires_at_ms.map(ts)
    }
    async fn revoked(&self) -> bool {
        self.0.revoked_at_ms.is_some()
    }
    async fn created_at(&self) -> Timestamp {
        ts(self.0.created_at_ms)
    }
}

/// A new withdraw link and its secret URL, shown once.
#[derive(SimpleObject)]
pub struct LnurlWithdrawCreatePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The link.
    pub link: Option<LnurlWithdrawLink>,
    /// The bech32 LNURL to share or print as a QR code (shown once: only a hash is kept).
    pub lnurl: Option<String>,
    /// The same as a URL.
    pub url: Option<String>,
}

/// `lnInvoiceFeeProbe` input.
#[derive(InputObject)]
pub struct LnInvoiceFeeProbeInput {
    /// The paying wallet.
    pub wallet_id: WalletId,
    /// The invoice.
    pub payment_request: LnPaymentRequest,
}

/// `lnNoAmountInvoiceFeeProbe` input.
#[derive(InputObject)]
pub struct LnNoAmountInvoiceFeeProbeInput {
    /// The paying wallet.
    pub wallet_id: WalletId,
    /// The invoice.
    pub payment_request: LnPaymentRequest,
    /// Amount in satoshis.
    pub amount: SatAmount,
}

/// `lnInvoicePaymentStatus` input.
#[derive(InputObject)]
pub struct LnInvoicePaymentStatusInput {
    /// An invoice this Flash issued.
    pub payment_request: LnPaymentRequest,
}

async fn create(bank: &Bank, who: InvoiceFor, req: InvoiceCreate) -> Result<BankInvoice, BankError> {
    bank.ln_invoice_create(who, req).await
}

fn description_hash(h: Option<Hex32Bytes>) -> Result<Option<Hash32>, BankError> {
    h.map(|h| {
        h.0.parse::<Hash32>()
            .map_err(|_| BankError::InvalidInvoice("descriptionHash must be 64 hex characters".into()))
    })
    .transpose()
}

fn invoice_payload(r: Result<BankInvoice, BankError>) -> LnInvoicePayload {
    match r {
        Ok(i) => LnInvoicePayload {
            errors: vec![],
            invoice: Some(i.into()),
        },
        Err(e) => LnInvoicePayload {
            errors: errors(e),
            invoice: None,
        },
    }
}

fn no_amount_payload(r: Result<BankInvoice, BankError>) -> LnNoAmountInvoicePayload {
    match r {
        Ok(i) => LnNoAmountInvoicePayload {
            errors: vec![],
            invoice: Some(LnNoAmountInvoice { fields: (&i).into() }),
        },
        Err(e) => LnNoAmountInvoicePayload {
            errors: errors(e),
            invoice: None,
        },
    }
}

fn amount_payload(r: Result<i64, BankError>) -> SatAmountPayload {
    match r {
        Ok(a) => SatAmountPayload {
            amount: Some(SatAmount(a)),
            errors: vec![],
        },
        Err(e) => SatAmountPayload {
            amount: None,
            errors: errors(e),
        },
    }
}

/// Lightning queries.
#[derive(Default)]
pub struct LightningQuery;

#[Object]
impl LightningQuery {
    /// The payment status of an invoice this Flash issued (no login needed).
    async fn ln_invoice_payment_status(
        &self,
        ctx: &Context<'_>,
        input: LnInvoicePaymentStatusInput,
    ) -> LnInvoicePaymentStatusPayload {
        let bank = &state(ctx).bank;
        LnInvoicePaymentStatusPayload::from_result(bank.ln_invoice_by_request(&input.payment_request.0).await)
    }

    /// The caller's LNURL-withdraw links, newest first (scope `read`; Flash extension).
    async fn lnurl_withdraw_links(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<LnurlWithdrawLink>> {
        let p = principal(ctx, AuthScope::Read)?;
        let links = super::gql(state(ctx).bank.lnurl_withdraw_links(p.account_id).await)?;
        Ok(links.into_iter().map(LnurlWithdrawLink).collect())
    }
}

/// Lightning mutations.
#[derive(Default)]
pub struct LightningMutation;

#[Object]
impl LightningMutation {
    /// An invoice for an amount, paying into one of the caller's wallets (scope `receive`).
    async fn ln_invoice_create(
        &self,
        ctx: &Context<'_>,
        input: LnInvoiceCreateInput,
    ) -> async_graphql::Result<LnInvoicePayload> {
        let p = principal(ctx, AuthScope::Receive)?;
        let result = async {
            let req = InvoiceCreate {
                wallet_id: wallet(&input.wallet_id)?,
                amount: Some(input.amount.0),
                memo: input.memo.map(|m| m.0),
                description_hash: None,
                expires_in_mins: input.expires_in.map(|m| m.0),
            };
            create(&state(ctx).bank, InvoiceFor::Owner(p.account_id), req).await
        };
        Ok(invoice_payload(result.await))
    }

    /// An invoice the payer chooses the amount of (scope `receive`).
    async fn ln_no_amount_invoice_create(
        &self,
        ctx: &Context<'_>,
        input: LnNoAmountInvoiceCreateInput,
    ) -> async_graphql::Result<LnNoAmountInvoicePayload> {
        let p = principal(ctx, AuthScope::Receive)?;
        let result = async {
            let req = InvoiceCreate {
                wallet_id: wallet(&input.wallet_id)?,
                amount: None,
                memo: input.memo.map(|m| m.0),
                description_hash: None,
                expires_in_mins: input.expires_in.map(|m| m.0),
            };
            create(&state(ctx).bank, InvoiceFor::Owner(p.account_id), req).await
        };
        Ok(no_amount_payload(result.await))
    }

    /// An invoice paying into anyone's wallet (no login needed).
    async fn ln_invoice_create_on_behalf_of_recipient(
        &self,
        ctx: &Context<'_>,
        input: LnInvoiceCreateOnBehalfOfRecipientInput,
    ) -> async_graphql::Result<LnInvoicePayload> {
        public_lightning_rate(ctx)?;
        let result = async {
            let req = InvoiceCreate {
                wallet_id: wallet(&input.recipient_wallet_id)?,
                amount: Some(input.amount.0),
                memo: input.memo.map(|m| m.0),
                description_hash: description_hash(input.description_hash)?,
                expires_in_mins: input.expires_in.map(|m| m.0),
            };
            create(&state(ctx).bank, InvoiceFor::Recipient, req).await
        };
        Ok(invoice_payload(result.await))
    }

    /// A no-amount invoice paying into anyone's wallet (no login needed).
    async fn ln_no_amount_invoice_create_on_behalf_of_recipient(
        &self,
        ctx: &Context<'_>,
        input: LnNoAmountInvoiceCreateOnBehalfOfRecipientInput,
    ) -> async_graphql::Result<LnNoAmountInvoicePayload> {
        public_lightning_rate(ctx)?;
        let result = async {
            let req = InvoiceCreate {
                wallet_id: wallet(&input.recipient_wallet_id)?,
                amount: None,
                memo: input.memo.map(|m| m.0),
                description_hash: None,
                expires_in_mins: input.expires_in.map(|m| m.0),
            };
            create(&state(ctx).bank, InvoiceFor::Recipient, req).await
        };
        Ok(no_amount_payload(result.await))
    }

    /// Pays an invoice with an amount (scope `write`). An invoice of this Flash settles
    /// intraledger with no fee.
    async fn ln_invoice_payment_send(
        &self,
        ctx: &Context<'_>,
        input: LnInvoicePaymentInput,
    ) -> async_graphql::Result<PaymentSendPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let target = Destination::Invoice(input.payment_request.0).into();
        let req = pay_request(
            p.account_id,
            &input.wallet_id,
            target,
            None,
            input.memo,
            input.idempotency_key,
        );
        Ok(send(ctx, req).await)
    }

    /// Pays a no-amount invoice the given amount (scope `write`).
    async fn ln_no_amount_invoice_payment_send(
        &self,
        ctx: &Context<'_>,
        input: LnNoAmountInvoicePaymentInput,
    ) -> async_graphql::Result<PaymentSendPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let target = Destination::Invoice(input.payment_request.0).into();
        let amount = Some(input.amount.0);
        let req = pay_request(
            p.account_id,
            &input.wallet_id,
            target,
            amount,
            input.memo,
            input.idempotency_key,
        );
        Ok(send(ctx, req).await)
    }

    /// Pays an LNURL-pay link (scope `write`).
    async fn lnurl_payment_send(
        &self,
        ctx: &Context<'_>,
        input: LnurlPaymentSendInput,
    ) -> async_graphql::Result<PaymentSendPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let target = Destination::Lnurl(input.lnurl).into();
        let amount = Some(input.amount.0);
        let req = pay_request(
            p.account_id,
            &input.wallet_id,
            target,
            amount,
            input.comment,
            input.idempotency_key,
        );
        Ok(send(ctx, req).await)
    }

    /// Pays a Lightning address (scope `write`); an address of this Flash is paid inside the
    /// ledger.
    async fn ln_address_payment_send(
        &self,
        ctx: &Context<'_>,
        input: LnAddressPaymentSendInput,
    ) -> async_graphql::Result<PaymentSendPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let req = if input.ln_address.contains('@') {
            let target = Destination::LightningAddress(input.ln_address).into();
            let amount = Some(input.amount.0);
            pay_request(
                p.account_id,
                &input.wallet_id,
                target,
                amount,
                input.comment,
                input.idempotency_key,
            )
        } else {
            Err(BankError::Lnurl(flash_core::lnurl::LnurlError::InvalidTarget(
                "a Lightning address looks like name@host".into(),
            )))
        };
        Ok(send(ctx, req).await)
    }

    /// Creates an LNURL-withdraw link on one of the caller's wallets (scope `write`; Flash
    /// extension).
    async fn lnurl_withdraw_create(
        &self,
        ctx: &Context<'_>,
        input: LnurlWithdrawCreateInput,
    ) -> async_graphql::Result<LnurlWithdrawCreatePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let st = state(ctx);
        let result = async {
            let req = WithdrawLinkCreate {
                wallet_id: input.wallet_id.as_ref().map(wallet).transpose()?,
                min_amount: input.min_amount.map(|a| a.0),
                max_amount: input.max_amount.0,
                uses: input.uses.map(i64::from),
                expires_in_mins: input.expires_in.map(|m| m.0),
                title: input.title,
            };
            st.bank.lnurl_withdraw_create(p.account_id, req).await
        };
        Ok(match result.await {
            Ok(created) => {
                let url = crate::lnurl::withdraw_url(&st.info.public_url, &created.secret);
                LnurlWithdrawCreatePayload {
                    errors: vec![],
                    link: Some(LnurlWithdrawLink(created.link)),
                    lnurl: Some(crate::lnurl::encode_lnurl(&url)),
                    url: Some(url),
                }
            }
            Err(e) => LnurlWithdrawCreatePayload {
                errors: errors(e),
                link: None,
                lnurl: None,
                url: None,
            },
        })
    }

    /// Revokes one of the caller's withdraw links (scope `write`).
    async fn lnurl_withdraw_revoke(
        &self,
        ctx: &Context<'_>,
        input: LnurlWithdrawRevokeInput,
    ) -> async_graphql::Result<super::public::SuccessPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        Ok(
            match state(ctx).bank.lnurl_withdraw_revoke(p.account_id, &input.id.0).await {
                Ok(()) => super::public::SuccessPayload {
                    errors: vec![],
                    success: Some(true),
                },
                Err(e) => super::public::SuccessPayload {
                    errors: errors(e),
                    success: Some(false),
                },
            },
        )
    }

    /// The routing fee paying an invoice would cost (scope `read`).
    async fn ln_invoice_fee_probe(
        &self,
        ctx: &Context<'_>,
        input: LnInvoiceFeeProbeInput,
    ) -> async_graphql::Result<SatAmountPayload> {
        let p = principal(ctx, AuthScope::Read)?;
        let result = async {
            let w = wallet(&input.wallet_id)?;
            state(ctx)
                .bank
                .ln_fee_probe(p.account_id, w, &input.payment_request.0, None)
                .await
        };
        Ok(amount_payload(result.await))
    }

    /// The routing fee paying a no-amount invoice would cost (scope `read`).
    async fn ln_no_amount_invoice_fee_probe(
        &self,
        ctx: &Context<'_>,
        input: LnNoAmountInvoiceFeeProbeInput,
    ) -> async_graphql::Result<SatAmountPayload> {
        let p = principal(ctx, AuthScope::Read)?;
        let result = async {
            let w = wallet(&input.wallet_id)?;
            state(ctx)
                .bank
                .ln_fee_probe(p.account_id, w, &input.payment_request.0, Some(input.amount.0))
                .await
        };
        Ok(amount_payload(result.await))
    }
}

/// Lightning subscriptions.
#[derive(Default)]
pub struct LightningSubscription;

#[Subscription]
impl LightningSubscription {
    /// The status of an invoice this Flash issued: now, then on every change until it is paid
    /// or expired (no login needed).
    async fn ln_invoice_payment_status(
        &self,
        ctx: &Context<'_>,
        input: LnInvoicePaymentStatusInput,
    ) -> impl Stream<Item = LnInvoicePaymentStatusPayload> {
        let bank = state(ctx).bank.clone();
        let events = bank.subscribe();
        let first = bank.ln_invoice_by_request(&input.payment_request.0).await;
        futures_util::stream::unfold(Watch::Report(first, events), move |watch| {
            let bank = bank.clone();
            async move {
                let (report, events) = match watch {
                    Watch::Done => return None,
                    Watch::Report(report, events) => (report, events),
                    Watch::Wait(invoice, events) => wait_for_change(&bank, invoice, events).await?,
                };
                let next = match &report {
                    Ok(i) if i.status == InvoiceStatus::Pending => Watch::Wait(i.clone(), events),
                    _ => Watch::Done,
                };
                Some((LnInvoicePaymentStatusPayload::from_result(report), next))
            }
        })
    }
}

/// Where an invoice-status subscription stands.
enum Watch {
    /// Report this, then decide.
    Report(Result<BankInvoice, BankError>, Receiver<WalletEvent>),
    /// Pending: wait for a change.
    Wait(BankInvoice, Receiver<WalletEvent>),
    /// Paid, expired or failed: the stream ends.
    Done,
}

/// Waits until the invoice's wallet changes in a way that changes the invoice, or it expires.
async fn wait_for_change(
    bank: &Bank,
    invoice: BankInvoice,
    mut events: Receiver<WalletEvent>,
) -> Option<(Result<BankInvoice, BankError>, Receiver<WalletEvent>)> {
    let until_expiry = u64::try_from(invoice.expires_at_ms - bank.now_ms()).unwrap_or(0);
    let expiry = tokio::time::sleep(Duration::from_millis(until_expiry));
    tokio::pin!(expiry);
    loop {
        tokio::select! {
            _ = &mut expiry => break,
            event = events.recv() => match event {
                Ok(e) if e.wallet_id == invoice.wallet_id => {
                    let now = bank.ln_invoice_by_hash(invoice.payment_hash).await;
                    if !matches!(&now, Ok(i) if i.status == InvoiceStatus::Pending) {
                        return Some((now, events));
                    }
                }
                Ok(_) | Err(RecvError::Lagged(_)) => {}
                Err(RecvError::Closed) => return None,
            }
        }
    }
    Some((bank.ln_invoice_by_hash(invoice.payment_hash).await, events))
}
