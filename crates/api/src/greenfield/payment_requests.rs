//! Greenfield's payment request routes: the list and creation under a store, and each
//! request by id, short (`/api/v1/payment-requests/{id}`, as BTCPay 2.4 documents them) and
//! store-scoped (`/api/v1/stores/{storeId}/payment-requests/{id}`, as earlier versions served
//! them).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::Value;

use super::{body, caller, optional_body, Answer, GreenfieldError};
use crate::{ApiState, Peer};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/stores/{store_id}/payment-requests", get(list).post(create))
        .route(
            "/api/v1/payment-requests/{request_id}",
            get(read).put(update).delete(archive),
        )
        .route(
            "/api/v1/stores/{store_id}/payment-requests/{request_id}",
            get(read).put(update).delete(archive),
        )
        .route("/api/v1/payment-requests/{request_id}/pay", post(pay))
        .route("/api/v1/stores/{store_id}/payment-requests/{request_id}/pay", post(pay))
}

/// A request's path, short or store-scoped.
#[derive(Deserialize)]
struct RequestPath {
    store_id: Option<String>,
    request_id: String,
}

async fn list(State(state): State<ApiState>, peer: Peer, headers: HeaderMap, Path(store_id): Path<String>) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let views = state.merchant.payment_requests(&who.caller, &store_id).await?;
    Ok(Json(Value::Array(views.iter().map(|v| v.to_json()).collect())))
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
        .create_payment_request(&who.caller, &store_id, &body)
        .await?;
    Ok(Json(view.to_json()))
}

async fn read(State(state): State<ApiState>, peer: Peer, headers: HeaderMap, Path(p): Path<RequestPath>) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let view = state
        .merchant
        .payment_request(&who.caller, p.store_id.as_deref(), &p.request_id)
        .await?;
    Ok(Json(view.to_json()))
}

async fn update(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(p): Path<RequestPath>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    let view = state
        .merchant
        .update_payment_request(&who.caller, p.store_id.as_deref(), &p.request_id, &body)
        .await?;
    Ok(Json(view.to_json()))
}

async fn archive(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(p): Path<RequestPath>,
) -> Result<StatusCode, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    state
        .merchant
        .archive_payment_request(&who.caller, p.store_id.as_deref(), &p.request_id)
        .await?;
    Ok(StatusCode::OK)
}

async fn pay(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(p): Path<RequestPath>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    // The body is optional: none asks for what is due.
    let body = optional_body(&bytes)?;
    let view = state
        .merchant
        .pay_payment_request(&who.caller, p.store_id.as_deref(), &p.request_id, &body)
        .await?;
    Ok(Json(view.to_json(&state.info.public_url)))
}
