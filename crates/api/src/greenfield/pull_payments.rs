//! Greenfield's pull payment and payout routes. A pull payment's own routes (read, its payouts,
//! a claim, its LNURL) are public: whoever holds its id may claim from it, as in BTCPay. The
//! store's routes (create, list, archive, store payouts, approve, cancel, mark paid) need a key;
//! payout routes are served short (`/api/v1/payouts/{id}`) and store-scoped. Linking a Flash
//! Card to a pull payment (`…/boltcards`) is public too, but a card that is live here already
//! is linked again only for a tap of it (`LNURLW`), unlike BTCPay.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use flash_merchant::cards::PullPaymentLink;
use flash_merchant::{Claim, MerchantError};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{body, caller, flag, optional_body, pairs, public_rate, Answer, GreenfieldError};
use crate::{ApiState, Peer};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/stores/{store_id}/pull-payments", get(list).post(create))
        .route("/api/v1/pull-payments/{pull_payment_id}", get(read).delete(archive))
        .route(
            "/api/v1/stores/{store_id}/pull-payments/{pull_payment_id}",
            get(read).delete(archive),
        )
        .route(
            "/api/v1/pull-payments/{pull_payment_id}/payouts",
            get(payouts).post(claim),
        )
        .route(
            "/api/v1/pull-payments/{pull_payment_id}/payouts/{payout_id}",
            get(payout),
        )
        .route("/api/v1/pull-payments/{pull_payment_id}/lnurl", get(lnurl))
        .route("/api/v1/pull-payments/{pull_payment_id}/boltcards", post(link_boltcard))
        .route(
            "/api/v1/stores/{store_id}/payouts",
            get(store_payouts).post(store_payout_create),
        )
        .route(
            "/api/v1/payouts/{payout_id}",
            get(store_payout).post(approve).delete(cancel),
        )
        .route(
            "/api/v1/stores/{store_id}/payouts/{payout_id}",
            get(store_payout).post(approve).delete(cancel),
        )
        .route("/api/v1/payouts/{payout_id}/mark-paid", post(mark_paid))
        .route(
            "/api/v1/stores/{store_id}/payouts/{payout_id}/mark-paid",
            post(mark_paid),
        )
        .route("/api/v1/payouts/{payout_id}/mark", post(mark))
        .route("/api/v1/stores/{store_id}/payouts/{payout_id}/mark", post(mark))
}

/// A pull payment's path, short or store-scoped.
#[derive(Deserialize)]
struct PullPaymentPath {
    store_id: Option<String>,
    pull_payment_id: String,
}

/// A payout's path, short or store-scoped.
#[derive(Deserialize)]
struct PayoutPath {
    store_id: Option<String>,
    payout_id: String,
}

/// A boolean query parameter, false unless given as true (as ASP.NET binds it).
fn include(query: &Option<String>, name: &str) -> bool {
    flag(&pairs(query), name, false)
}

async fn list(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let views = state
        .merchant
        .pull_payments(&who.caller, &store_id, include(&query, "includeArchived"))
        .await?;
    let base = &state.info.public_url;
    Ok(Json(Value::Array(views.iter().map(|v| v.to_json(base)).collect())))
}

async fn create(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    let view = state
        .merchant
        .create_pull_payment(&who.caller, &store_id, &body)
        .await?;
    Ok(Json(view.to_json(&state.info.public_url)))
}

async fn read(State(state): State<ApiState>, Path(p): Path<PullPaymentPath>) -> Answer {
    let view = state.merchant.pull_payment(&p.pull_payment_id).await?;
    if p.store_id.is_some_and(|s| s != view.record.store_id) {
        return Err(MerchantError::PullPaymentNotFound.into());
    }
    Ok(Json(view.to_json(&state.info.public_url)))
}

async fn archive(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(p): Path<PullPaymentPath>,
) -> Result<StatusCode, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    state
        .merchant
        .archive_pull_payment(&who.caller, p.store_id.as_deref(), &p.pull_payment_id)
        .await?;
    Ok(StatusCode::OK)
}

async fn payouts(
    State(state): State<ApiState>,
    Path(pull_payment_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let views = state
        .merchant
        .pull_payment_payouts(&pull_payment_id, include(&query, "includeCancelled"))
        .await?;
    Ok(Json(Value::Array(views.iter().map(|v| v.to_json()).collect())))
}

async fn claim(State(state): State<ApiState>, Path(pull_payment_id): Path<String>, bytes: Bytes) -> Answer {
    let body = body(&bytes)?;
    let claim = Claim::parse(&body)?;
    let view = state.merchant.claim_payout(&pull_payment_id, &claim).await?;
    Ok(Json(view.to_json()))
}

async fn payout(State(state): State<ApiState>, Path((pull_payment_id, payout_id)): Path<(String, String)>) -> Answer {
    let view = state.merchant.pull_payment_payout(&pull_payment_id, &payout_id).await?;
    Ok(Json(view.to_json()))
}

async fn lnurl(State(state): State<ApiState>, Path(pull_payment_id): Path<String>) -> Answer {
    let view = state.merchant.pull_payment(&pull_payment_id).await?;
    let url = crate::lnurl::pull_payment_withdraw_url(&state.info.public_url, &view.record.id);
    let uri = match url.split_once("://") {
        Some((_, rest)) => format!("lnurlw://{rest}"),
        None => url.clone(),
    };
    Ok(Json(json!({
        "lnurlBech32": format!("lightning:{}", crate::lnurl::encode_lnurl(&url)),
        "lnurlUri": uri,
    })))
}

/// `PullPayments_LinkBoltcard`: `{"UID"}` or `{"LNURLW"}` (a tap of the card), `onExisting`
/// (also as a query parameter, as BTCPay's deep links give it), Flash's `tapLimit` and
/// `dayLimit`; answers the keys to write, as the card programming answer. Counted per address
/// with the other public requests.
async fn link_boltcard(
    State(state): State<ApiState>,
    peer: Peer,
    Path(pull_payment_id): Path<String>,
    RawQuery(query): RawQuery,
    bytes: Bytes,
) -> Answer {
    public_rate(&state, &peer)?;
    let body = body(&bytes)?;
    let on_existing = pairs(&query)
        .into_iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("onExisting"))
        .map(|(_, v)| v);
    let link = PullPaymentLink::parse(&body, on_existing.as_deref())?;
    let card = state.cards.link_pull_payment(&pull_payment_id, &link).await?;
    Ok(Json(crate::boltcard::keys_json(&card)))
}

async fn store_payouts(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let views = state
        .merchant
        .store_payouts(&who.caller, &store_id, include(&query, "includeCancelled"))
        .await?;
    Ok(Json(Value::Array(views.iter().map(|v| v.to_json()).collect())))
}

async fn store_payout_create(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    let view = state
        .merchant
        .create_store_payout(&who.caller, &store_id, &body)
        .await?;
    Ok(Json(view.to_json()))
}

async fn store_payout(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(p): Path<PayoutPath>,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let view = state
        .merchant
        .store_payout(&who.caller, p.store_id.as_deref(), &p.payout_id)
        .await?;
    Ok(Json(view.to_json()))
}

async fn approve(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(p): Path<PayoutPath>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = optional_body(&bytes)?;
    let revision = match body.get("revision") {
        None | Some(Value::Null) => None,
        Some(v) => Some(
            v.as_i64()
                .ok_or_else(|| GreenfieldError::from(MerchantError::field("revision", "revision is an integer")))?,
        ),
    };
    if body.get("rateRule").is_some_and(|r| !r.is_null()) {
        return Err(MerchantError::field(
            "rateRule",
            "a payout's amount is fixed when it is claimed: rate rules are not taken",
        )
        .into());
    }
    let view = state
        .merchant
        .approve_payout(&who.caller, p.store_id.as_deref(), &p.payout_id, revision)
        .await?;
    Ok(Json(view.to_json()))
}

async fn cancel(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(p): Path<PayoutPath>,
) -> Result<StatusCode, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    state
        .merchant
        .cancel_payout(&who.caller, p.store_id.as_deref(), &p.payout_id)
        .await?;
    Ok(StatusCode::OK)
}

async fn mark_paid(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(p): Path<PayoutPath>,
) -> Result<StatusCode, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    state
        .merchant
        .mark_payout_paid(&who.caller, p.store_id.as_deref(), &p.payout_id, None)
        .await?;
    Ok(StatusCode::OK)
}

async fn mark(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(p): Path<PayoutPath>,
    bytes: Bytes,
) -> Result<StatusCode, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    match body.get("state").and_then(Value::as_str) {
        Some("Completed") => {
            state
                .merchant
                .mark_payout_paid(
                    &who.caller,
                    p.store_id.as_deref(),
                    &p.payout_id,
                    body.get("paymentProof"),
                )
                .await?
        }
        Some("Cancelled") => {
            state
                .merchant
                .cancel_payout(&who.caller, p.store_id.as_deref(), &p.payout_id)
                .await?
        }
        _ => {
            return Err(MerchantError::field(
                "state",
                "a payout can be marked Completed (paid outside Flash) or Cancelled",
            )
            .into())
        }
    }
    Ok(StatusCode::OK)
}
