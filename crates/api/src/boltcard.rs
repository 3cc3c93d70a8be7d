//! Flash Cards (Bolt Cards) over HTTP; errors in the LNURL shape `{"status":"ERROR","reason":…}`.
//!
//! - A tap: `GET /boltcard?p=…&c=…` answers a LUD-03 `withdrawRequest` whose `k1` works once;
//!   its callback `GET /boltcard/callback?k1=…&pr=…[&pin=…]` pays the invoice from the card's
//!   wallet (`pinLimit`, LUD-21, tells the wallet from which amount the card's PIN is needed).
//! - The card's balance for its holder: `GET /boltcard/balance?p=…&c=…` (a tap: its counter
//!   is used up) answers JSON `{name, balance, tapLimit, dayLimit, dayLeft, payLink}` in sats,
//!   or, to a browser (`Accept: text/html`), the balance page (`crate::pages::card`).
//! - Its top-up link (LUD-06, given as LUD-19 `payLink` with taps and the balance):
//!   `GET /boltcard/pay/{payId}` and its callback `…/callback?amount=…` (msat) pay into the
//!   card's wallet.
//! - Programming, as the Bolt Card NFC Programmer app does it: `POST /boltcard/program/{secret}`
//!   with `{"UID": "…"}` answers `{"LNURLW", "version", "K0"…"K4"}` (the one-time link the owner
//!   made); `POST /boltcard/reset` with `{"LNURLW": "lnurlw://…?p=…&c=…"}` (read from the card)
//!   answers the keys to put the factory keys back, and wipes the card.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use flash_bank::{BankError, PaymentStatus};
use flash_merchant::boltcard::upper_hex;
use flash_merchant::cards::{CardsError, ProgrammedCard, Withdrawal};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::lnurl::{answer, merchant_refusal, over_limit, refusal};
use crate::{pages, ApiState, Peer};

pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/boltcard", get(tap))
        .route("/boltcard/callback", get(callback))
        .route("/boltcard/balance", get(balance))
        .route("/boltcard/pay/{pay_id}", get(top_up_offer))
        .route("/boltcard/pay/{pay_id}/callback", get(top_up_invoice))
        .route("/boltcard/program/{secret}", post(program))
        .route("/boltcard/reset", post(reset))
        .with_state(state)
}

/// A card operation's refusal, in the LNURL shape.
fn card_refusal(e: CardsError) -> Response {
    match e {
        CardsError::Bank(b) => refusal(b),
        CardsError::Store(s) => refusal(BankError::Store(s)),
        CardsError::Merchant(m) => merchant_refusal(m),
        e => {
            let status = match e {
                CardsError::NotFound => StatusCode::NOT_FOUND,
                _ => StatusCode::BAD_REQUEST,
            };
            answer(status, json!({ "status": "ERROR", "reason": e.to_string() }))
        }
    }
}

/// One text field of a posted JSON object (`None` when the body is not such an object).
fn posted_field(body: &[u8], field: &str) -> Option<String> {
    let value: Value = serde_json::from_slice(body).ok()?;
    value.get(field)?.as_str().map(str::to_string)
}

/// A tap's query.
#[derive(Deserialize)]
struct TapQuery {
    p: Option<String>,
    c: Option<String>,
}

async fn tap(State(state): State<ApiState>, peer: Peer, Query(q): Query<TapQuery>) -> Response {
    if let Some(refused) = over_limit(&state, &peer) {
        return refused;
    }
    let (Some(p), Some(c)) = (q.p, q.c) else {
        return card_refusal(CardsError::Invalid("a tap carries p and c".into()));
    };
    match state.cards.tap(&p, &c).await {
        Ok(offer) if offer.max_sat < 1 => answer(
            StatusCode::BAD_REQUEST,
            json!({ "status": "ERROR", "reason": "nothing to spend with this card now: its balance or its 24-hour limit is used up" }),
        ),
        Ok(offer) => {
            let mut body = json!({
                "tag": "withdrawRequest",
                "callback": format!("{}/boltcard/callback", state.info.public_url),
                "k1": offer.k1,
                "defaultDescription": offer.name,
                "minWithdrawable": 1_000,
                "maxWithdrawable": offer.max_sat.saturating_mul(1_000),
            });
            if let Some(fields) = body.as_object_mut() {
                if let Some(link) = offer.pay_link {
                    fields.insert("payLink".into(), json!(link));
                }
                if let Some(limit) = offer.pin_limit_sat {
                    fields.insert("pinLimit".into(), json!(limit.saturating_mul(1_000)));
                }
            }
            answer(StatusCode::OK, body)
        }
        Err(e) => card_refusal(e),
    }
}

async fn balance(State(state): State<ApiState>, peer: Peer, headers: HeaderMap, Query(q): Query<TapQuery>) -> Response {
    let html = pages::card::wants_html(&headers);
    if let Some(refused) = over_limit(&state, &peer) {
        return refused;
    }
    let balance = match (q.p, q.c) {
        (Some(p), Some(c)) => state.cards.balance(&p, &c).await,
        _ => Err(CardsError::Invalid("a tap carries p and c".into())),
    };
    if html {
        return pages::card::balance_page(&state.info.public_url, balance);
    }
    match balance {
        Ok(b) => answer(
            StatusCode::OK,
            json!({
                "name": b.name,
                "balance": b.balance_sat,
                "tapLimit": b.tap_limit_sat,
                "dayLimit": b.day_limit_sat,
                "dayLeft": b.day_left_sat,
                "payLink": b.pay_link,
            }),
        ),
        Err(e) => card_refusal(e),
    }
}

async fn top_up_offer(State(state): State<ApiState>, Path(pay_id): Path<String>) -> Response {
    match state.cards.top_up_offer(&pay_id).await {
        Ok(o) => answer(
            StatusCode::OK,
            json!({
                "tag": "payRequest",
                "callback": format!("{}/boltcard/pay/{pay_id}/callback", state.info.public_url),
                "minSendable": o.min_sendable_msat,
                "maxSendable": o.max_sendable_msat,
                "metadata": o.metadata,
            }),
        ),
        Err(e) => card_refusal(e),
    }
}

/// The top-up callback's query.
#[derive(Deserialize)]
struct TopUpQuery {
    amount: Option<String>,
}

async fn top_up_invoice(
    State(state): State<ApiState>,
    peer: Peer,
    Path(pay_id): Path<String>,
    Query(q): Query<TopUpQuery>,
) -> Response {
    if let Some(refused) = over_limit(&state, &peer) {
        return refused;
    }
    let Some(amount) = q.amount.and_then(|a| a.parse::<u64>().ok()) else {
        return card_refusal(CardsError::Invalid("amount (millisatoshis) is required".into()));
    };
    match state.cards.top_up_invoice(&pay_id, amount).await {
        Ok(invoice) => answer(StatusCode::OK, json!({ "pr": invoice.payment_request, "routes": [] })),
        Err(e) => card_refusal(e),
    }
}

/// The withdraw callback's query.
#[derive(Deserialize)]
struct CallbackQuery {
    k1: Option<String>,
    pr: Option<String>,
    /// The card's PIN (LUD-21), when the wallet asked for it.
    pin: Option<String>,
}

async fn callback(State(state): State<ApiState>, peer: Peer, Query(q): Query<CallbackQuery>) -> Response {
    if let Some(refused) = over_limit(&state, &peer) {
        return refused;
    }
    let (Some(k1), Some(pr)) = (q.k1.filter(|k| !k.is_empty()), q.pr.filter(|p| !p.is_empty())) else {
        return card_refusal(CardsError::Invalid("k1 and pr (a BOLT11 invoice) are required".into()));
    };
    let error = |reason: &str| answer(StatusCode::BAD_REQUEST, json!({ "status": "ERROR", "reason": reason }));
    match state.cards.withdraw(&k1, &pr, q.pin.as_deref()).await {
        // A pull payment card's payout: claimed, the payout driver pays it.
        Ok(Withdrawal::Claimed(_)) => answer(StatusCode::OK, json!({ "status": "OK" })),
        Ok(Withdrawal::Paid(o)) => match (o.status, o.failure) {
            (PaymentStatus::Failure, reason) => error(&reason.unwrap_or_else(|| "payment failed".into())),
            (PaymentStatus::AlreadyPaid, _) => error("that invoice is already paid"),
            (PaymentStatus::Success | PaymentStatus::Pending, _) => answer(StatusCode::OK, json!({ "status": "OK" })),
        },
        Err(e) => card_refusal(e),
    }
}

/// The keys as the programming app reads them (and BTCPay answers them).
pub(crate) fn keys_json(card: &ProgrammedCard) -> Value {
    let [k0, k1, k2, k3, k4] = card.keys.map(|k| upper_hex(&k));
    json!({
        "LNURLW": card.lnurlw,
        "version": card.version,
        "K0": k0, "K1": k1, "K2": k2, "K3": k3, "K4": k4,
    })
}

async fn program(State(state): State<ApiState>, peer: Peer, Path(secret): Path<String>, body: Bytes) -> Response {
    if let Some(refused) = over_limit(&state, &peer) {
        return refused;
    }
    let Some(uid) = posted_field(&body, "UID") else {
        return card_refusal(CardsError::Invalid(
            "post {\"UID\": \"…\"}: the card's UID, 7 bytes of hex".into(),
        ));
    };
    match state.cards.program(&secret, &uid).await {
        Ok(card) => answer(StatusCode::OK, keys_json(&card)),
        Err(e) => card_refusal(e),
    }
}

async fn reset(State(state): State<ApiState>, peer: Peer, body: Bytes) -> Response {
    if let Some(refused) = over_limit(&state, &peer) {
        return refused;
    }
    let Some(lnurlw) = posted_field(&body, "LNURLW") else {
        return card_refusal(CardsError::Invalid(
            "post {\"LNURLW\": \"…\"}: the link read from the card, with its p and c".into(),
        ));
    };
    match state.cards.reset(&lnurlw).await {
        Ok(card) => answer(StatusCode::OK, keys_json(&card)),
        Err(e) => card_refusal(e),
    }
}
