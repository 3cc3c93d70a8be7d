//! Greenfield's webhooks routes, store-scoped as BTCPay serves them
//! (`/api/v1/stores/{storeId}/webhooks/…`), all under `btcpay.store.webhooks.canmodifywebhooks`.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::Value;

use super::{body, caller, Answer, GreenfieldError};
use crate::{ApiState, Peer};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route(
            "/api/v1/stores/{store_id}/webhooks",
            get(list_webhooks).post(create_webhook),
        )
        .route(
            "/api/v1/stores/{store_id}/webhooks/{webhook_id}",
            get(get_webhook).put(update_webhook).delete(delete_webhook),
        )
        .route(
            "/api/v1/stores/{store_id}/webhooks/{webhook_id}/deliveries",
            get(list_deliveries),
        )
        .route(
            "/api/v1/stores/{store_id}/webhooks/{webhook_id}/deliveries/{delivery_id}",
            get(get_delivery),
        )
        .route(
            "/api/v1/stores/{store_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/request",
            get(delivery_request),
        )
        .route(
            "/api/v1/stores/{store_id}/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver",
            post(redeliver),
        )
}

async fn list_webhooks(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let hooks = state.merchant.webhooks(&who.caller, &store_id).await?;
    Ok(Json(Value::Array(hooks.iter().map(|h| h.to_json()).collect())))
}

async fn create_webhook(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    let made = state.merchant.create_webhook(&who.caller, &store_id, &body).await?;
    Ok(Json(made.to_json()))
}

async fn get_webhook(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, webhook_id)): Path<(String, String)>,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let hook = state.merchant.webhook(&who.caller, &store_id, &webhook_id).await?;
    Ok(Json(hook.to_json()))
}

async fn update_webhook(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, webhook_id)): Path<(String, String)>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    let hook = state
        .merchant
        .update_webhook(&who.caller, &store_id, &webhook_id, &body)
        .await?;
    Ok(Json(hook.to_json()))
}

async fn delete_webhook(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, webhook_id)): Path<(String, String)>,
) -> Result<StatusCode, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    state
        .merchant
        .delete_webhook(&who.caller, &store_id, &webhook_id)
        .await?;
    Ok(StatusCode::OK)
}

async fn list_deliveries(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, webhook_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    // As BTCPay's `int? count`: a count that is not a number is no count.
    let count = query.get("count").and_then(|c| c.trim().parse::<i64>().ok());
    let deliveries = state
        .merchant
        .deliveries(&who.caller, &store_id, &webhook_id, count)
        .await?;
    Ok(Json(Value::Array(deliveries.iter().map(|d| d.to_json()).collect())))
}

async fn get_delivery(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, webhook_id, delivery_id)): Path<(String, String, String)>,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let delivery = state
        .merchant
        .delivery(&who.caller, &store_id, &webhook_id, &delivery_id)
        .await?;
    Ok(Json(delivery.to_json()))
}

/// The exact bytes the delivery sends (and signs), as `application/json`.
async fn delivery_request(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, webhook_id, delivery_id)): Path<(String, String, String)>,
) -> Result<Response, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    let request = state
        .merchant
        .delivery_request(&who.caller, &store_id, &webhook_id, &delivery_id)
        .await?;
    Ok(([(header::CONTENT_TYPE, "application/json")], request).into_response())
}

/// A new delivery of the same event; answers its id as a JSON string.
async fn redeliver(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, webhook_id, delivery_id)): Path<(String, String, String)>,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let id = state
        .merchant
        .redeliver(&who.caller, &store_id, &webhook_id, &delivery_id)
        .await?;
    Ok(Json(Value::String(id)))
}
