//! Rewards (a Flash extension beside Greenfield, with the same keys and answers): a store's
//! programs (`/api/v1/stores/{storeId}/rewards…`, `btcpay.store.canviewstoresettings` to read,
//! `…canmodifystoresettings` to make and end) and a settled invoice's reward, which a point of
//! sale asks for (`POST /api/v1/stores/{storeId}/invoices/{invoiceId}/rewards`,
//! `btcpay.store.canmodifyinvoices`) naming the customer, or not (whoever paid inside Flash, or
//! else a claim link for the receipt).

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use flash_merchant::rewards::{Customer, GrantView, ProgramInput, RewardProgramView};
use flash_merchant::{Caller, MerchantError};
use serde_json::{json, Value};

use super::{body, caller, number, optional_body, pairs, Answer};
use crate::{ApiState, Peer};

/// Longest customer named by a point of sale.
const CUSTOMER_MAX_CHARS: usize = 320;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/stores/{store_id}/rewards", get(list).post(create))
        .route("/api/v1/stores/{store_id}/rewards/{program_id}", get(read).delete(end))
        .route("/api/v1/stores/{store_id}/rewards/{program_id}/grants", get(grants))
        .route("/api/v1/stores/{store_id}/invoices/{invoice_id}/rewards", post(reward))
}

async fn list(State(state): State<ApiState>, peer: Peer, headers: HeaderMap, Path(store_id): Path<String>) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let views = state.merchant.reward_programs(&who.caller, &store_id).await?;
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
    let input = ProgramInput::parse(&body(&bytes)?)?;
    let view = state
        .merchant
        .create_reward_program(&who.caller, &store_id, &input)
        .await?;
    Ok(Json(view.to_json()))
}

async fn read(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, program_id)): Path<(String, String)>,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let view = store_program(&state, &who.caller, &store_id, &program_id).await?;
    Ok(Json(view.to_json()))
}

async fn end(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, program_id)): Path<(String, String)>,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    store_program(&state, &who.caller, &store_id, &program_id).await?;
    let view = state.merchant.end_reward_program(&who.caller, &program_id).await?;
    Ok(Json(view.to_json()))
}

async fn grants(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, program_id)): Path<(String, String)>,
    RawQuery(query): RawQuery,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let program = store_program(&state, &who.caller, &store_id, &program_id).await?;
    let limit = number(&pairs(&query), "take").unwrap_or(100);
    let grants = state.merchant.reward_grants(&who.caller, &program_id, limit).await?;
    let base = &state.info.public_url;
    let views = grants.into_iter().map(|record| {
        grant_json(
            &GrantView {
                record,
                program_name: program.record.name.clone(),
            },
            base,
        )
    });
    Ok(Json(Value::Array(views.collect())))
}

async fn reward(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path((store_id, invoice_id)): Path<(String, String)>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let customer = customer(&optional_body(&bytes)?)?;
    let grants = state
        .merchant
        .reward_purchase(&who.caller, Some(&store_id), &invoice_id, &customer)
        .await?;
    let base = &state.info.public_url;
    Ok(Json(Value::Array(grants.iter().map(|g| grant_json(g, base)).collect())))
}

/// A program of the route's store, as the caller may see it (another store's is not found).
async fn store_program(
    state: &ApiState,
    caller: &Caller,
    store_id: &str,
    program_id: &str,
) -> Result<RewardProgramView, MerchantError> {
    let view = state.merchant.reward_program(caller, program_id).await?;
    if view.record.store_id.as_deref() == Some(store_id) {
        Ok(view)
    } else {
        Err(MerchantError::RewardProgramNotFound)
    }
}

/// The body's `customer`: absent or null for the payer, a Lightning address, or a Flash
/// username (`@` in front allowed).
fn customer(body: &Value) -> Result<Customer, MerchantError> {
    let bad = || MerchantError::field("customer", "customer is a Flash username or a Lightning address");
    match body.get("customer") {
        None | Some(Value::Null) => Ok(Customer::Payer),
        Some(Value::String(text)) => {
            let text = text.trim();
            if text.is_empty() || text.chars().count() > CUSTOMER_MAX_CHARS {
                return Err(bad());
            }
            match text.strip_prefix('@').unwrap_or(text) {
                name if name.contains('@') => Ok(Customer::LightningAddress(name.to_string())),
                name => Ok(Customer::Username(name.to_string())),
            }
        }
        Some(_) => Err(bad()),
    }
}

/// A grant as answered, its claim link also as a bech32 LNURL for QR codes.
fn grant_json(grant: &GrantView, base: &str) -> Value {
    let mut value = grant.to_json(base);
    if let Some(link) = value.get_mut("claimLink").and_then(Value::as_object_mut) {
        if let Some(url) = link.get("url").and_then(Value::as_str) {
            let lnurl = crate::lnurl::encode_lnurl(url);
            link.insert("lnurl".into(), json!(lnurl));
        }
    }
    value
}
