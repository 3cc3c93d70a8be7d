//! Lightning addresses of this Flash: `/.well-known/lnurlp/{username}` (LUD-06, LUD-16) and
//! its callback `/lnurl/pay/{username}?amount=…&comment=…` (LUD-12). Errors use the LNURL
//! shape `{"status":"ERROR","reason":…}`; every answer allows any origin, as wallets on the
//! web fetch them directly.

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use flash_bank::BankError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::ApiState;

pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/.well-known/lnurlp/{username}", get(offer))
        .route("/lnurl/pay/{username}", get(invoice))
        .with_state(state)
}

/// A JSON answer anyone's browser may read.
fn answer(status: StatusCode, body: Value) -> Response {
    let mut response = (status, Json(body)).into_response();
    response
        .headers_mut()
        .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

fn refusal(e: BankError) -> Response {
    let status = match e {
        BankError::RecipientNotFound => StatusCode::NOT_FOUND,
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

async fn offer(State(state): State<ApiState>, Path(username): Path<String>) -> Response {
    match state.bank.lnurl_address_offer(&username).await {
        Ok(o) => answer(
            StatusCode::OK,
            json!({
                "tag": "payRequest",
                "callback": format!("{}/lnurl/pay/{}", state.info.public_url, o.username.to_ascii_lowercase()),
                "minSendable": o.min_sendable_msat,
                "maxSendable": o.max_sendable_msat,
                "metadata": o.metadata,
                "commentAllowed": o.comment_allowed,
            }),
        ),
        Err(e) => refusal(e),
    }
}

/// The callback's query.
#[derive(Deserialize)]
struct InvoiceQuery {
    amount: Option<String>,
    comment: Option<String>,
}

async fn invoice(
    State(state): State<ApiState>,
    Path(username): Path<String>,
    Query(q): Query<InvoiceQuery>,
) -> Response {
    let Some(amount) = q.amount.as_deref().and_then(|a| a.parse::<u64>().ok()) else {
        let reason = "amount (millisatoshis) is required";
        return answer(StatusCode::BAD_REQUEST, json!({ "status": "ERROR", "reason": reason }));
    };
    match state
        .bank
        .lnurl_address_invoice(&username, amount, q.comment.as_deref())
        .await
    {
        Ok(i) => answer(StatusCode::OK, json!({ "pr": i.payment_request, "routes": [] })),
        Err(e) => refusal(e),
    }
}
