//! Greenfield's store Lightning address routes (`/api/v1/stores/{storeId}/lightning-addresses`).
//! The addresses themselves are served by the LNURL routes (`crate::lnurl`).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::Value;

use super::{body, caller, Answer, GreenfieldError};
use crate::{ApiState, Peer};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/stores/{store_id}/lightning-addresses", get(list))
        .route(
            "/api/v1/stores/{store_id}/lightning-addresses/{username}",
            get(read).post(put).delete(remove),
        )
}

async fn list(State(state): State<ApiState>, peer: Peer, headers: HeaderMap, Path(store_id): Path<String>) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let views = state.merchant.lightning_addresses(&who.caller, &store_id).await?;
    Ok(Json(Value::Array(views.iter().map(|v| v.to_json()).collect())))
}

async fn read(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, username)): Path<(String, String)>,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let view = state
        .merchant
        .lightning_address(&who.caller, &store_id, &username)
        .await?;
    Ok(Json(view.to_json()))
}

async fn put(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, username)): Path<(String, String)>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    let view = state
        .merchant
        .put_lightning_address(&who.caller, &store_id, &username, &body)
        .await?;
    Ok(Json(view.to_json()))
}

async fn remove(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, username)): Path<(String, String)>,
) -> Result<StatusCode, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    state
        .merchant
        .delete_lightning_address(&who.caller, &store_id, &username)
        .await?;
    Ok(StatusCode::OK)
}
