//! Greenfield's app routes for the point of sale (`/api/v1/stores/{storeId}/apps/pos`,
//! `/api/v1/apps/…`), and the point of sale's public order endpoint (`POST
//! /apps/{appId}/pos`), which its page and any client use to turn an order into an invoice.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use super::{body, caller, number, pairs, public_rate, Answer, GreenfieldError};
use crate::{ApiState, Peer};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/stores/{store_id}/apps/pos", post(create_pos))
        .route("/api/v1/apps/pos/{app_id}", get(read_pos).put(update_pos))
        .route("/api/v1/apps/{app_id}", get(read_app).delete(delete_app))
        .route("/api/v1/stores/{store_id}/apps", get(store_apps))
        .route("/api/v1/apps", get(all_apps))
        .route("/api/v1/apps/{app_id}/sales", get(sales))
        .route("/api/v1/apps/{app_id}/top-items", get(top_items))
        .route("/apps/{app_id}/pos", post(order))
}

async fn create_pos(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    Ok(Json(
        state
            .merchant
            .create_pos(&who.caller, &store_id, &body)
            .await?
            .to_json(),
    ))
}

async fn read_pos(State(state): State<ApiState>, peer: Peer, headers: HeaderMap, Path(app_id): Path<String>) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    Ok(Json(state.merchant.app(&who.caller, &app_id).await?.to_json()))
}

async fn update_pos(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    Ok(Json(
        state.merchant.update_pos(&who.caller, &app_id, &body).await?.to_json(),
    ))
}

async fn read_app(State(state): State<ApiState>, peer: Peer, headers: HeaderMap, Path(app_id): Path<String>) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    Ok(Json(state.merchant.app(&who.caller, &app_id).await?.base_json()))
}

async fn delete_app(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(app_id): Path<String>,
) -> Result<StatusCode, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    state.merchant.delete_app(&who.caller, &app_id).await?;
    Ok(StatusCode::OK)
}

async fn list(state: &ApiState, peer: &Peer, headers: &HeaderMap, store: Option<&str>) -> Answer {
    let who = caller(state, headers, peer).await?;
    let apps = state.merchant.apps(&who.caller, store).await?;
    Ok(Json(Value::Array(apps.iter().map(|a| a.base_json()).collect())))
}

async fn store_apps(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
) -> Answer {
    list(&state, &peer, &headers, Some(&store_id)).await
}

async fn all_apps(State(state): State<ApiState>, peer: Peer, headers: HeaderMap) -> Answer {
    list(&state, &peer, &headers, None).await
}

async fn sales(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let days = number(&pairs(&query), "numberOfDays").unwrap_or(7);
    Ok(Json(state.merchant.app_sales(&who.caller, &app_id, days).await?))
}

async fn top_items(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(app_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let pairs = pairs(&query);
    let offset = number(&pairs, "offset")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(0);
    let count = number(&pairs, "count")
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(10)
        .min(1_000);
    Ok(Json(
        state
            .merchant
            .app_top_items(&who.caller, &app_id, offset, count)
            .await?,
    ))
}

/// A buyer's order (no credential: the point of sale is public): `{"amount"?, "cart"?, "tip"?,
/// "tipPercentage"?, "discountPercentage"?}`, priced on the server. Answers the invoice's id
/// and checkout link. Counted per address with the other public invoice requests (LNURL-pay).
async fn order(State(state): State<ApiState>, peer: Peer, Path(app_id): Path<String>, bytes: Bytes) -> Answer {
    public_rate(&state, &peer)?;
    let body = body(&bytes)?;
    let view = state.merchant.pos_order(&app_id, &body).await?;
    Ok(Json(json!({
        "invoiceId": view.record.id,
        "checkoutLink": format!("{}/i/{}", state.info.public_url, view.record.id),
    })))
}
