//! Greenfield's invoice routes, store-scoped (`/api/v1/stores/{storeId}/invoices/…`) and short
//! (`/api/v1/invoices/{invoiceId}/…`) as BTCPay serves both.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use flash_merchant::invoice_state::InvoiceStatus;
use flash_merchant::{CreateOptions, FieldError, InvoiceFilter, InvoiceView, MAX_PAGE};
use serde_json::Value;

use super::{body, caller, flag, number, optional_body, pairs, Answer, GreenfieldError};
use crate::{ApiState, Peer};

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
        .route("/api/v1/stores/{store_id}/invoices", get(list).post(create))
        .route(
            "/api/v1/stores/{store_id}/invoices/{invoice_id}",
            get(read).put(update).delete(archive),
        )
        .route("/api/v1/invoices/{invoice_id}", get(read).put(update).delete(archive))
        .route("/api/v1/stores/{store_id}/invoices/{invoice_id}/status", post(mark))
        .route("/api/v1/invoices/{invoice_id}/status", post(mark))
        .route(
            "/api/v1/stores/{store_id}/invoices/{invoice_id}/unarchive",
            post(unarchive),
        )
        .route("/api/v1/invoices/{invoice_id}/unarchive", post(unarchive))
        .route(
            "/api/v1/stores/{store_id}/invoices/{invoice_id}/payment-methods",
            get(methods),
        )
        .route("/api/v1/invoices/{invoice_id}/payment-methods", get(methods))
        .route("/api/v1/stores/{store_id}/invoices/{invoice_id}/refund", post(refund))
        .route("/api/v1/invoices/{invoice_id}/refund", post(refund))
}

/// Greenfield's list filters from the query.
fn filter(query: &Option<String>) -> (InvoiceFilter, bool) {
    let pairs = pairs(query);
    let all = |name: &str| -> Vec<String> {
        pairs
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    };
    // An unknown status filters nothing, as ASP.NET leaves an unbindable value out.
    let statuses = all("status")
        .into_iter()
        .filter_map(|s| serde_json::from_value::<InvoiceStatus>(Value::String(s)).ok())
        .map(flash_merchant::invoice_data::name)
        .collect();
    let secs = |name: &str| number(&pairs, name).map(|s| s.saturating_mul(1_000));
    let text = all("textSearch").pop().filter(|t| !t.trim().is_empty());
    let filter = InvoiceFilter {
        order_ids: all("orderId"),
        statuses,
        text: text.map(|t| t.trim().to_lowercase()),
        created_from: secs("startDate"),
        created_to: secs("endDate"),
        include_archived: flag(&pairs, "includeArchived", false),
        skip: number(&pairs, "skip").unwrap_or(0).max(0),
        take: number(&pairs, "take").unwrap_or(MAX_PAGE).clamp(0, MAX_PAGE),
    };
    (filter, flag(&pairs, "includePaymentMethods", false))
}

/// `InvoiceData`, with its payment methods when asked for.
fn shown(state: &ApiState, view: &InvoiceView, with_methods: bool) -> Value {
    let mut json = view.to_json(&state.info.public_url);
    if with_methods {
        if let Some(object) = json.as_object_mut() {
            object.insert("paymentMethods".into(), view.payment_methods_json(true));
        }
    }
    json
}

async fn list(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let (filter, with_methods) = filter(&query);
    let views = state.merchant.invoices(&who.caller, &store_id, &filter).await?;
    Ok(Json(Value::Array(
        views.iter().map(|v| shown(&state, v, with_methods)).collect(),
    )))
}

async fn create(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
    bytes: Bytes,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = optional_body(&bytes)?;
    let idempotency_key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .map_err(|_| {
                    GreenfieldError::Invalid(vec![FieldError::new(
                        "Idempotency-Key",
                        "the idempotency key is printable text",
                    )])
                })?
                .to_string(),
        ),
    };
    let view = state
        .merchant
        .create_invoice(
            &who.caller,
            &store_id,
            &body,
            &CreateOptions {
                idempotency_key,
                ..CreateOptions::default()
            },
        )
        .await?;
    Ok(Json(shown(&state, &view, false)))
}

/// The invoice a route names, and its store when the route is store-scoped
/// (`/api/v1/stores/{storeId}/invoices/{invoiceId}/…`).
struct InvoicePath {
    store: Option<String>,
    id: String,
}

impl InvoicePath {
    fn from(mut params: HashMap<String, String>) -> InvoicePath {
        InvoicePath {
            store: params.remove("store_id"),
            id: params.remove("invoice_id").unwrap_or_default(),
        }
    }
}

async fn read(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Answer {
    let at = InvoicePath::from(params);
    let who = caller(&state, &headers, &peer).await?;
    let with_methods = flag(&pairs(&query), "includePaymentMethods", false);
    let view = state.merchant.invoice(&who.caller, at.store.as_deref(), &at.id).await?;
    Ok(Json(shown(&state, &view, with_methods)))
}

async fn update(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    bytes: Bytes,
) -> Answer {
    let at = InvoicePath::from(params);
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    let view = state
        .merchant
        .update_invoice(&who.caller, at.store.as_deref(), &at.id, &body)
        .await?;
    Ok(Json(shown(&state, &view, false)))
}

async fn set_archived(state: ApiState, peer: Peer, headers: HeaderMap, at: InvoicePath, archived: bool) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let view = state
        .merchant
        .archive_invoice(&who.caller, at.store.as_deref(), &at.id, archived)
        .await?;
    Ok(Json(shown(&state, &view, false)))
}

async fn archive(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> Answer {
    set_archived(state, peer, headers, InvoicePath::from(params), true).await
}

async fn unarchive(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
) -> Answer {
    set_archived(state, peer, headers, InvoicePath::from(params), false).await
}

async fn mark(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    bytes: Bytes,
) -> Answer {
    let at = InvoicePath::from(params);
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    let to = match body.get("status").and_then(Value::as_str) {
        Some("Settled") => InvoiceStatus::Settled,
        Some("Invalid") => InvoiceStatus::Invalid,
        _ => {
            return Err(GreenfieldError::Invalid(vec![FieldError::new(
                "status",
                "status is Settled or Invalid",
            )]))
        }
    };
    let view = state
        .merchant
        .mark_invoice(&who.caller, at.store.as_deref(), &at.id, to)
        .await?;
    Ok(Json(shown(&state, &view, false)))
}

/// A refund: a pull payment for the customer (`PullPaymentData`).
async fn refund(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    bytes: Bytes,
) -> Answer {
    let at = InvoicePath::from(params);
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    let pull_payment = state
        .merchant
        .refund_invoice(&who.caller, at.store.as_deref(), &at.id, &body)
        .await?;
    Ok(Json(pull_payment.to_json(&state.info.public_url)))
}

async fn methods(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(query): RawQuery,
) -> Answer {
    let at = InvoicePath::from(params);
    let who = caller(&state, &headers, &peer).await?;
    let only_accounted = flag(&pairs(&query), "onlyAccountedPayments", true);
    let view = state.merchant.invoice(&who.caller, at.store.as_deref(), &at.id).await?;
    Ok(Json(view.payment_methods_json(only_accounted)))
}
