//! LNURL endpoints of this Flash. Errors use the LNURL shape `{"status":"ERROR","reason":…}`;
//! every answer allows any origin, as wallets on the web fetch them directly.
//!
//! - Lightning addresses: `/.well-known/lnurlp/{username}` (LUD-06, LUD-16) and its callback
//!   `/lnurl/pay/{username}?amount=…&comment=…` (LUD-12). A store's Lightning address (see
//!   `flash_merchant`) is served here too; its callback makes a store invoice.
//! - Withdraw links: `/lnurl/withdraw/{secret}` (LUD-03) and its callback
//!   `/lnurl/withdraw/{secret}/callback?k1=…&pr=…`.
//! - A pull payment's LNURL-withdraw: `/pull-payments/{id}/withdraw` and its callback, which
//!   claims a payout to the invoice given (auto-approved pull payments only).
//! - A reward's claim link: `/rewards/claim/{id}` (LUD-03, exactly the reward) and its
//!   callback, which makes the reward a payout to the invoice given, once.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flash_bank::{AddressOffer, BankError, PaymentStatus};
use flash_merchant::MerchantError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::{ApiState, Peer};

pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/.well-known/lnurlp/{username}", get(offer))
        .route("/lnurl/pay/{username}", get(invoice))
        .route("/lnurl/withdraw/{secret}", get(withdraw_offer))
        .route("/lnurl/withdraw/{secret}/callback", get(withdraw))
        .route("/pull-payments/{id}/withdraw", get(pull_payment_offer))
        .route("/pull-payments/{id}/withdraw/callback", get(pull_payment_withdraw))
        .route("/rewards/claim/{id}", get(reward_offer))
        .route("/rewards/claim/{id}/callback", get(reward_claim))
        .with_state(state)
}

/// The URL of a withdraw link.
pub(crate) fn withdraw_url(public_url: &str, secret: &str) -> String {
    format!("{public_url}/lnurl/withdraw/{secret}")
}

/// The LNURL-withdraw URL of a pull payment.
pub(crate) fn pull_payment_withdraw_url(public_url: &str, id: &str) -> String {
    format!("{public_url}/pull-payments/{id}/withdraw")
}

/// A URL as a bech32 LNURL (LUD-01), upper case for QR codes.
pub(crate) fn encode_lnurl(url: &str) -> String {
    let hrp = bech32::Hrp::parse_unchecked("lnurl");
    // Only over 1,023 characters can this fail; this server's URLs are its public URL plus a
    // 64-character secret.
    bech32::encode_upper::<bech32::Bech32>(hrp, url.as_bytes()).unwrap_or_default()
}

/// A JSON answer anyone's browser may read.
pub(crate) fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

pub(crate) fn refusal(e: BankError) -> Response {
    let status = match e {
        BankError::RecipientNotFound | BankError::WithdrawLinkNotFound => StatusCode::NOT_FOUND,
        BankError::Store(_) | BankError::LightningUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    };
    let reason = match e {
        BankError::Store(s) => {
            tracing::error!(error = %s, "lnurl request failed");
            "temporarily unavailable".to_string()
        }
        e => e.to_string(),
    };
    answer(status, json!({ "status": "ERROR", "reason": reason }))
}

/// A merchant service's refusal, in the LNURL shape.
pub(crate) fn merchant_refusal(e: MerchantError) -> Response {
    match e {
        MerchantError::Bank(b) => refusal(b),
        MerchantError::Store(s) => refusal(BankError::Store(s)),
        e => answer(
            StatusCode::BAD_REQUEST,
            json!({ "status": "ERROR", "reason": e.to_string() }),
        ),
    }
}

/// The first LNURL-pay answer for `o`.
fn pay_request(state: &ApiState, o: &AddressOffer) -> Value {
    json!({
        "tag": "payRequest",
        "callback": format!("{}/lnurl/pay/{}", state.info.public_url, o.username.to_ascii_lowercase()),
        "minSendable": o.min_sendable_msat,
        "maxSendable": o.max_sendable_msat,
        "metadata": o.metadata,
        "commentAllowed": o.comment_allowed,
    })
}

async fn offer(State(state): State<ApiState>, Path(username): Path<String>) -> Response {
    // A store's address first: a Flash user cannot take a store address's name, nor a store
    // a user's.
    match state.merchant.lightning_address_offer(&username).await {
        Ok(Some(o)) => return answer(StatusCode::OK, pay_request(&state, &o)),
        Ok(None) => {}
        Err(e) => return merchant_refusal(e),
    }
    match state.bank.lnurl_address_offer(&username).await {
        Ok(o) => {
            let mut body = pay_request(&state, &o);
            // Zaps (NIP-57): receipts are signed by the relay's service key.
            if let (Some(relay), Some(_)) = (&state.relay, &state.zaps) {
                body["allowsNostr"] = true.into();
                body["nostrPubkey"] = relay.service_keys().public_key().to_hex().into();
            }
            answer(StatusCode::OK, body)
        }
        Err(e) => refusal(e),
    }
}

/// The callback's query.
#[derive(Deserialize)]
struct InvoiceQuery {
    amount: Option<String>,
    comment: Option<String>,
    /// A NIP-57 zap request (JSON).
    nostr: Option<String>,
}

/// Counts a request against the caller's address; the refusal to send when over the limit.
pub(crate) fn over_limit(state: &ApiState, peer: &Peer) -> Option<Response> {
    let retry = match state.auth.check_public_lightning_rate(peer.0.ip()) {
        Ok(()) => return None,
        Err(flash_auth::AuthError::RateLimited { retry_after_secs }) => retry_after_secs,
        Err(_) => 60,
    };
    let reason = format!("too many requests: retry in {retry} s");
    Some(answer(
        StatusCode::TOO_MANY_REQUESTS,
        json!({ "status": "ERROR", "reason": reason }),
    ))
}

async fn invoice(
    State(state): State<ApiState>,
    peer: Peer,
    Path(username): Path<String>,
    Query(q): Query<InvoiceQuery>,
) -> Response {
    if let Some(refused) = over_limit(&state, &peer) {
        return refused;
    }
    let Some(amount) = q.amount.as_deref().and_then(|a| a.parse::<u64>().ok()) else {
        let reason = "amount (millisatoshis) is required";
        return answer(StatusCode::BAD_REQUEST, json!({ "status": "ERROR", "reason": reason }));
    };
    if q.nostr.is_none() {
        match state.merchant.lightning_address_invoice(&username, amount).await {
            Ok(Some(pr)) => return answer(StatusCode::OK, json!({ "pr": pr, "routes": [] })),
            Ok(None) => {}
            Err(e) => return merchant_refusal(e),
        }
    }
    let made = match (&q.nostr, &state.zaps) {
        (Some(request), Some(zaps)) => zaps
            .invoice(&username, amount, q.comment.as_deref(), request)
            .await
            .map_err(|e| match e {
                flash_nostr::zaps::ZapInvoiceError::Bank(b) => refusal(b),
                e => answer(
                    StatusCode::BAD_REQUEST,
                    json!({ "status": "ERROR", "reason": e.to_string() }),
                ),
            }),
        (Some(_), None) => Err(answer(
            StatusCode::BAD_REQUEST,
            json!({ "status": "ERROR", "reason": "this server takes no zaps" }),
        )),
        (None, _) => state
            .bank
            .lnurl_address_invoice(&username, amount, q.comment.as_deref(), None)
            .await
            .map_err(refusal),
    };
    match made {
        Ok(i) => answer(StatusCode::OK, json!({ "pr": i.payment_request, "routes": [] })),
        Err(refused) => refused,
    }
}

async fn withdraw_offer(State(state): State<ApiState>, Path(secret): Path<String>) -> Response {
    match state.bank.lnurl_withdraw_offer(&secret).await {
        Ok(link) => answer(
            StatusCode::OK,
            json!({
                "tag": "withdrawRequest",
                "callback": format!("{}/callback", withdraw_url(&state.info.public_url, &secret)),
                "k1": secret,
                "defaultDescription": link.link.title,
                "minWithdrawable": link.link.min_sat.saturating_mul(1_000),
                "maxWithdrawable": link.link.max_sat.saturating_mul(1_000),
            }),
        ),
        Err(e) => refusal(e),
    }
}

/// The withdraw callback's query.
#[derive(Deserialize)]
struct WithdrawQuery {
    k1: Option<String>,
    pr: Option<String>,
}

async fn withdraw(
    State(state): State<ApiState>,
    Path(secret): Path<String>,
    Query(q): Query<WithdrawQuery>,
) -> Response {
    let error = |reason: &str| answer(StatusCode::BAD_REQUEST, json!({ "status": "ERROR", "reason": reason }));
    if q.k1.as_deref() != Some(secret.as_str()) {
        return error("k1 does not match this link");
    }
    let Some(pr) = q.pr.filter(|p| !p.is_empty()) else {
        return error("pr (a BOLT11 invoice) is required");
    };
    match state.bank.lnurl_withdraw(&secret, &pr).await {
        Ok(o) => match (o.status, o.failure) {
            (PaymentStatus::Failure, reason) => error(&reason.unwrap_or_else(|| "payment failed".into())),
            (PaymentStatus::AlreadyPaid, _) => error("that invoice is already paid"),
            (PaymentStatus::Success | PaymentStatus::Pending, _) => answer(StatusCode::OK, json!({ "status": "OK" })),
        },
        Err(e) => refusal(e),
    }
}

/// A pull payment's withdraw request (LUD-03): up to what is left to claim of it.
async fn pull_payment_offer(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let view = match state.merchant.pull_payment_withdrawable(&id).await {
        Ok(v) => v,
        Err(e) => return merchant_refusal(e),
    };
    let (view, left_sat) = view;
    answer(
        StatusCode::OK,
        json!({
            "tag": "withdrawRequest",
            "callback": format!("{}/callback", pull_payment_withdraw_url(&state.info.public_url, &view.record.id)),
            "k1": view.record.id,
            "minWithdrawable": 1_000,
            "maxWithdrawable": left_sat.saturating_mul(1_000),
            "defaultDescription": view.name(),
        }),
    )
}

/// `?k1=…&pr=…` of a pull payment's or a reward's withdraw callback.
#[derive(Deserialize)]
struct PullPaymentWithdraw {
    k1: String,
    pr: String,
}

/// Claims a payout of the invoice's amount to it; the payout is paid at once.
async fn pull_payment_withdraw(
    State(state): State<ApiState>,
    Path(id): Path<String>,
    Query(q): Query<PullPaymentWithdraw>,
) -> Response {
    if q.k1 != id {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "status": "ERROR", "reason": "k1 does not match this pull payment" }),
        );
    }
    match state.merchant.pull_payment_withdraw(&id, &q.pr).await {
        Ok(_) => answer(StatusCode::OK, json!({ "status": "OK" })),
        Err(e) => merchant_refusal(e),
    }
}

/// A reward's claim link (LUD-03): exactly the reward, while it may be claimed.
async fn reward_offer(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let grant = match state.merchant.reward_claimable(&id).await {
        Ok(g) => g,
        Err(e) => return merchant_refusal(e),
    };
    let msat = grant.record.amount_sat.saturating_mul(1_000);
    let url = format!("{}{}", state.info.public_url, flash_merchant::rewards::claim_path(&id));
    answer(
        StatusCode::OK,
        json!({
            "tag": "withdrawRequest",
            "callback": format!("{url}/callback"),
            "k1": id,
            "minWithdrawable": msat,
            "maxWithdrawable": msat,
            "defaultDescription": format!("Reward: {}", grant.program_name),
        }),
    )
}

/// Claims a reward to the invoice given (for exactly the reward); paid by the payout saga.
async fn reward_claim(
    State(state): State<ApiState>,
    peer: Peer,
    Path(id): Path<String>,
    Query(q): Query<PullPaymentWithdraw>,
) -> Response {
    if let Some(refused) = over_limit(&state, &peer) {
        return refused;
    }
    if q.k1 != id {
        return answer(
            StatusCode::BAD_REQUEST,
            json!({ "status": "ERROR", "reason": "k1 does not match this claim link" }),
        );
    }
    match state.merchant.reward_claim(&id, &q.pr).await {
        Ok(()) => answer(StatusCode::OK, json!({ "status": "OK" })),
        Err(e) => merchant_refusal(e),
    }
}
