//! The Cashu mint's HTTP API (`/v1/...`, NUT-00…NUT-23): JSON in and out, and refusals as
//! `400 {"detail", "code"}` with the NUT error code.

use axum::body::Bytes;
use axum::extract::{Path, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flash_auth::Auth;
use flash_mint::{Mint, MintError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

use crate::Peer;

/// The mint's routes, when a mint is configured. New quotes (an invoice, a row) count against
/// the per-IP limit of unauthenticated Lightning requests.
pub(crate) fn routes(mint: Mint, auth: Auth) -> Router {
    let quotes = Router::new()
        .route("/v1/mint/quote/bolt11", post(mint_quote))
        .route("/v1/melt/quote/bolt11", post(melt_quote))
        .layer(axum::middleware::from_fn_with_state(auth, limit_quotes));
    Router::new()
        .route("/v1/info", get(info))
        .route("/v1/keys", get(keys))
        .route("/v1/keys/{id}", get(keyset))
        .route("/v1/keysets", get(keysets))
        .route("/v1/mint/quote/bolt11/{id}", get(mint_quote_state))
        .route("/v1/mint/bolt11", post(mint_bolt11))
        .route("/v1/melt/quote/bolt11/{id}", get(melt_quote_state))
        .route("/v1/melt/bolt11", post(melt))
        .route("/v1/swap", post(swap))
        .route("/v1/checkstate", post(check_state))
        .route("/v1/restore", post(restore))
        .route("/v1/ws", get(crate::mint_ws::upgrade))
        .merge(quotes)
        .with_state(mint)
}

/// Refuses a new quote over the per-IP limit: HTTP 429 with a NUT error body.
async fn limit_quotes(State(auth): State<Auth>, peer: Peer, req: Request, next: Next) -> Response {
    match auth.check_public_lightning_rate(peer.0.ip()) {
        Ok(()) => next.run(req).await,
        Err(e) => {
            let retry = e.retry_after_secs().unwrap_or(60).to_string();
            let body = Json(json!({ "detail": e.to_string(), "code": MintError::BadRequest(String::new()).code() }));
            (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, retry)], body).into_response()
        }
    }
}

/// A mint refusal as the NUT-00 error body.
struct Refusal(MintError);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let status = if self.0.is_internal() {
            tracing::error!(error = %self.0, "mint request failed");
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::BAD_REQUEST
        };
        (
            status,
            Json(json!({ "detail": self.0.to_string(), "code": self.0.code() })),
        )
            .into_response()
    }
}

type Answer<T> = Result<Json<T>, Refusal>;

fn answer<T: Serialize>(r: Result<T, MintError>) -> Answer<T> {
    r.map(Json).map_err(Refusal)
}

fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Refusal> {
    serde_json::from_slice(bytes).map_err(|e| Refusal(MintError::BadRequest(format!("invalid request: {e}"))))
}

async fn info(State(mint): State<Mint>) -> Json<cashu::nuts::MintInfo> {
    Json(mint.info())
}

async fn keys(State(mint): State<Mint>) -> Json<cashu::nuts::KeysResponse> {
    Json(mint.keys())
}

async fn keyset(State(mint): State<Mint>, Path(id): Path<String>) -> Answer<cashu::nuts::KeysResponse> {
    answer(mint.keyset(&id).map(|k| cashu::nuts::KeysResponse { keysets: vec![k] }))
}

async fn keysets(State(mint): State<Mint>) -> Json<cashu::nuts::KeysetResponse> {
    Json(mint.keysets())
}

async fn mint_quote(State(mint): State<Mint>, bytes: Bytes) -> Answer<cashu::nuts::MintQuoteBolt11Response<String>> {
    answer(mint.mint_quote(body(&bytes)?).await)
}

async fn mint_quote_state(
    State(mint): State<Mint>,
    Path(id): Path<String>,
) -> Answer<cashu::nuts::MintQuoteBolt11Response<String>> {
    answer(mint.mint_quote_state(&id).await)
}

async fn mint_bolt11(State(mint): State<Mint>, bytes: Bytes) -> Answer<cashu::nuts::MintResponse> {
    answer(mint.mint(body(&bytes)?).await)
}

async fn melt_quote(State(mint): State<Mint>, bytes: Bytes) -> Answer<cashu::nuts::MeltQuoteBolt11Response<String>> {
    answer(mint.melt_quote(body(&bytes)?).await)
}

async fn melt_quote_state(
    State(mint): State<Mint>,
    Path(id): Path<String>,
) -> Answer<cashu::nuts::MeltQuoteBolt11Response<String>> {
    answer(mint.melt_quote_state(&id).await)
}

async fn melt(State(mint): State<Mint>, bytes: Bytes) -> Answer<cashu::nuts::MeltQuoteBolt11Response<String>> {
    answer(mint.melt(body(&bytes)?).await)
}

async fn swap(State(mint): State<Mint>, bytes: Bytes) -> Answer<cashu::nuts::SwapResponse> {
    answer(mint.swap(body(&bytes)?).await)
}

async fn check_state(State(mint): State<Mint>, bytes: Bytes) -> Answer<cashu::nuts::CheckStateResponse> {
    answer(mint.check_state(body(&bytes)?).await)
}

async fn restore(State(mint): State<Mint>, bytes: Bytes) -> Answer<cashu::nuts::RestoreResponse> {
    answer(mint.restore(body(&bytes)?).await)
}
