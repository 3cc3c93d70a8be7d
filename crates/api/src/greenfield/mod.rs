//! BTCPay Server's Greenfield API (`/api/v1/…`) over the merchant service: stores and API
//! keys so far. Requests authenticate with a Greenfield key (`Authorization: token <key>`) or
//! a Flash session or API key (`Authorization: Bearer …`, its owner's full rights with the
//! `write` scope, viewing rights with `read`). Errors are shaped as BTCPay sends them:
//! `{code, message}` for 4xx and 5xx, and `[{path, message}]` with 422 for validation.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use flash_auth::{Credential, Scope};
use flash_merchant::permissions::CAN_VIEW_STORE_SETTINGS;
use flash_merchant::permissions::{Permissions, UNRESTRICTED};
use flash_merchant::{Caller, FieldError, MerchantError, MerchantKeyRecord};
use serde_json::{json, Value};

use crate::{ApiState, Peer};

mod apps;
mod invoices;
mod lightning_addresses;
mod payment_requests;
mod pull_payments;
mod rewards;
mod webhooks;

pub(crate) fn routes(state: ApiState) -> Router {
    let served = Router::new()
        .merge(apps::routes())
        .merge(invoices::routes())
        .merge(payment_requests::routes())
        .merge(pull_payments::routes())
        .merge(rewards::routes())
        .merge(lightning_addresses::routes())
        .merge(webhooks::routes())
        .route("/api/v1/health", get(health))
        .route("/api/v1/server/info", get(server_info))
        .route("/api/v1/stores", get(list_stores).post(create_store))
        .route(
            "/api/v1/stores/{store_id}",
            get(get_store).put(update_store).delete(delete_store),
        )
        .route("/api/v1/api-keys", axum::routing::post(create_key))
        .route("/api/v1/api-keys/current", get(current_key).delete(revoke_current_key))
        .route("/api/v1/api-keys/{api_key}", delete(revoke_key))
        .with_state(state);
    let again = served
        .clone()
        .fallback(|| async { GreenfieldError::NotFound("not-found", "No such Greenfield route") });
    served.route(
        "/api/v1/{*rest}",
        axum::routing::any(move |req: axum::extract::Request| without_trailing_slash(again.clone(), req)),
    )
}

/// A Greenfield path that matched no route: served again without its trailing slash, as
/// ASP.NET routes `/api/v1/stores/{id}/invoices/` (clients such as btcpay-python-sdk send it);
/// otherwise BTCPay's 404.
async fn without_trailing_slash(served: Router, req: axum::extract::Request) -> Response {
    use tower::ServiceExt;
    let not_found = || GreenfieldError::NotFound("not-found", "No such Greenfield route").into_response();
    let path = req.uri().path();
    let trimmed = path.trim_end_matches('/');
    if trimmed.len() == path.len() || trimmed.is_empty() {
        return not_found();
    }
    let target = match req.uri().query() {
        Some(q) => format!("{trimmed}?{q}"),
        None => trimmed.to_string(),
    };
    let Ok(uri) = target.parse::<axum::http::Uri>() else {
        return not_found();
    };
    // A fresh request: the first match's path parameters must not follow it. Only the
    // caller's address is carried over.
    let (parts, body) = req.into_parts();
    let mut again = axum::extract::Request::new(body);
    *again.method_mut() = parts.method;
    *again.uri_mut() = uri;
    *again.version_mut() = parts.version;
    *again.headers_mut() = parts.headers;
    if let Some(peer) = parts.extensions.get::<Peer>() {
        again.extensions_mut().insert(*peer);
    }
    match served.oneshot(again).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// A Greenfield error, answered as BTCPay answers it.
#[derive(Debug)]
pub(crate) enum GreenfieldError {
    /// No usable credential.
    Unauthenticated(&'static str),
    /// The credential lacks a permission.
    MissingPermission(&'static str),
    /// Not found: `code`, `message`.
    NotFound(&'static str, &'static str),
    /// The request's fields.
    Invalid(Vec<FieldError>),
    /// Refused as a whole (400): `code`, `message`.
    Refused(&'static str, String),
    /// Too many requests from this address: retry after this many seconds.
    RateLimited(u64),
    /// A service the request needs is down for now: `code`, `message`.
    Unavailable(&'static str, String),
    /// Something failed on our side.
    Internal,
}

impl From<MerchantError> for GreenfieldError {
    fn from(e: MerchantError) -> Self {
        match e {
            MerchantError::Invalid(errors) => GreenfieldError::Invalid(errors),
            MerchantError::StoreNotFound => GreenfieldError::NotFound("store-not-found", "The store was not found"),
            MerchantError::KeyNotFound => GreenfieldError::NotFound("apikey-not-found", "The API key was not found"),
            MerchantError::AppNotFound => GreenfieldError::NotFound("app-not-found", "The app was not found"),
            MerchantError::InvoiceNotFound => {
                GreenfieldError::NotFound("invoice-not-found", "The invoice was not found")
            }
            MerchantError::WebhookNotFound => {
                GreenfieldError::NotFound("webhook-not-found", "The webhook was not found")
            }
            MerchantError::DeliveryNotFound => {
                GreenfieldError::NotFound("webhookdelivery-not-found", "The webhook delivery was not found")
            }
            MerchantError::PaymentRequestNotFound => {
                GreenfieldError::NotFound("paymentrequest-not-found", "The payment request was not found")
            }
            MerchantError::PullPaymentNotFound => {
                GreenfieldError::NotFound("pullpayment-not-found", "The pull payment was not found")
            }
            MerchantError::PayoutNotFound => GreenfieldError::NotFound("payout-not-found", "The payout was not found"),
            MerchantError::RewardProgramNotFound => {
                GreenfieldError::NotFound("reward-program-not-found", "The rewards program was not found")
            }
            MerchantError::RewardNotFound => GreenfieldError::NotFound("reward-not-found", "The reward was not found"),
            e @ MerchantError::RewardClosed(_) => GreenfieldError::Refused("reward-refused", e.to_string()),
            e @ MerchantError::PullPaymentClosed(_) => {
                GreenfieldError::Invalid(vec![FieldError::new("", &e.to_string())])
            }
            e @ MerchantError::PayoutState(_) => GreenfieldError::Refused("invalid-state", e.to_string()),
            e @ MerchantError::CardInUse => GreenfieldError::Refused("card-already-linked", e.to_string()),
            MerchantError::LightningAddressNotFound => {
                GreenfieldError::NotFound("lightning-address-not-found", "The lightning address was not found")
            }
            e @ MerchantError::PaymentRequestClosed(code) => GreenfieldError::Refused(code, e.to_string()),
            MerchantError::Forbidden(policy) => GreenfieldError::MissingPermission(policy),
            MerchantError::RateUnavailable(why) => GreenfieldError::Unavailable("rate-unavailable", why),
            MerchantError::Bank(b) if is_refusal(&b) => {
                GreenfieldError::Invalid(vec![FieldError::new("", &b.to_string())])
            }
            e @ (MerchantError::Bank(_) | MerchantError::Store(_)) => {
                tracing::error!(error = %e, "greenfield: request failed");
                GreenfieldError::Internal
            }
        }
    }
}

/// Whether the bank refused for a reason the caller can act on (an account that is not
/// active, a rail switched off), rather than failed.
fn is_refusal(e: &flash_bank::BankError) -> bool {
    !matches!(e, flash_bank::BankError::Store(_))
}

impl IntoResponse for GreenfieldError {
    fn into_response(self) -> Response {
        match self {
            GreenfieldError::Unauthenticated(message) => (
                StatusCode::UNAUTHORIZED,
                Json(json!({"code": "unauthenticated", "message": message})),
            )
                .into_response(),
            GreenfieldError::MissingPermission(policy) => (
                StatusCode::FORBIDDEN,
                Json(json!({
                    "code": "missing-permission",
                    "message": format!("Insufficient API Permissions. Please use an API key with permission: {policy}"),
                    "missingPermission": policy,
                })),
            )
                .into_response(),
            GreenfieldError::NotFound(code, message) => {
                (StatusCode::NOT_FOUND, Json(json!({"code": code, "message": message}))).into_response()
            }
            GreenfieldError::Invalid(errors) => {
                let body: Vec<Value> = errors
                    .into_iter()
                    .map(|e| json!({"path": e.path, "message": e.message}))
                    .collect();
                (StatusCode::UNPROCESSABLE_ENTITY, Json(Value::Array(body))).into_response()
            }
            GreenfieldError::Refused(code, message) => {
                (StatusCode::BAD_REQUEST, Json(json!({"code": code, "message": message}))).into_response()
            }
            GreenfieldError::RateLimited(secs) => (
                StatusCode::TOO_MANY_REQUESTS,
                [(axum::http::header::RETRY_AFTER, secs.to_string())],
                Json(json!({"code": "rate-limited", "message": format!("too many requests: retry in {secs} s")})),
            )
                .into_response(),
            GreenfieldError::Unavailable(code, message) => (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"code": code, "message": message})),
            )
                .into_response(),
            GreenfieldError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                Json(json!({"code": "server-error", "message": "the request could not be completed; try again"})),
            )
                .into_response(),
        }
    }
}

pub(crate) type Answer = Result<Json<Value>, GreenfieldError>;

/// Counts a public (unauthenticated) request that makes something against its address's
/// allowance, shared with the other public payment requests (LNURL-pay); refused when spent.
pub(crate) fn public_rate(state: &ApiState, peer: &Peer) -> Result<(), GreenfieldError> {
    match state.auth.check_public_lightning_rate(peer.0.ip()) {
        Ok(()) => Ok(()),
        Err(flash_auth::AuthError::RateLimited { retry_after_secs }) => {
            Err(GreenfieldError::RateLimited(retry_after_secs))
        }
        Err(_) => Err(GreenfieldError::RateLimited(60)),
    }
}

/// Who sent a request, and the Greenfield key (as presented, and as stored) if it used one.
pub(crate) struct KeyOfCaller {
    /// Who.
    pub(crate) caller: Caller,
    /// The Greenfield key used.
    pub(crate) key: Option<(String, MerchantKeyRecord)>,
}

/// Who sent the request, and the Greenfield key it used (if it used one).
pub(crate) async fn caller(state: &ApiState, headers: &HeaderMap, peer: &Peer) -> Result<KeyOfCaller, GreenfieldError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .ok_or(GreenfieldError::Unauthenticated(
            "Authentication is required for accessing this endpoint",
        ))?;
    let (scheme, credential) = header.split_once(' ').unwrap_or((header, ""));
    let credential = credential.trim();
    match scheme.to_ascii_lowercase().as_str() {
        "token" => match state.merchant.authenticate(credential).await? {
            Some((caller, key)) => Ok(KeyOfCaller {
                caller,
                key: Some((credential.to_string(), key)),
            }),
            None => Err(GreenfieldError::Unauthenticated("The API key is not valid")),
        },
        "bearer" => {
            let principal = state
                .auth
                .authenticate(credential, peer.0.ip())
                .await
                .map_err(|_| GreenfieldError::Unauthenticated("The token is not valid"))?;
            let caller = match principal.credential {
                Credential::Session { .. } => Caller::owner(principal.account_id),
                Credential::ApiKey { .. } if principal.require(Scope::Write).is_ok() => {
                    Caller::owner(principal.account_id)
                }
                Credential::ApiKey { .. } => Caller {
                    account: principal.account_id,
                    permissions: Permissions::from_stored(&[
                        CAN_VIEW_STORE_SETTINGS.to_string(),
                        flash_merchant::permissions::CAN_VIEW_PROFILE.to_string(),
                    ]),
                },
            };
            Ok(KeyOfCaller { caller, key: None })
        }
        "basic" => Err(GreenfieldError::Unauthenticated(
            "Flash has no passwords: use an API key (Authorization: token <key>)",
        )),
        _ => Err(GreenfieldError::Unauthenticated(
            "Authentication is required for accessing this endpoint",
        )),
    }
}

/// The query's pairs, decoded.
fn pairs(query: &Option<String>) -> Vec<(String, String)> {
    query
        .as_deref()
        .map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default()
}

/// A boolean query parameter; absent or not a boolean: `default` (as ASP.NET binds it).
fn flag(pairs: &[(String, String)], name: &str, default: bool) -> bool {
    match pairs.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name)) {
        Some((_, v)) if v.eq_ignore_ascii_case("true") || v == "1" => true,
        Some((_, v)) if v.eq_ignore_ascii_case("false") || v == "0" => false,
        _ => default,
    }
}

/// A whole-number query parameter; absent or not a number: `None`.
fn number(pairs: &[(String, String)], name: &str) -> Option<i64> {
    let (_, v) = pairs.iter().rev().find(|(k, _)| k.eq_ignore_ascii_case(name))?;
    // BTCPay reads these as numbers; `10.0` is ten.
    v.strip_suffix(".0").unwrap_or(v).parse().ok()
}

/// The JSON body, or a validation answer naming the body.
pub(crate) fn body(bytes: &Bytes) -> Result<Value, GreenfieldError> {
    serde_json::from_slice(bytes)
        .map_err(|e| GreenfieldError::Invalid(vec![FieldError::new("", &format!("invalid JSON: {e}"))]))
}

/// A JSON body that may be left out: none (or only whitespace) is `{}`.
pub(crate) fn optional_body(bytes: &Bytes) -> Result<Value, GreenfieldError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        Ok(json!({}))
    } else {
        body(bytes)
    }
}

async fn health() -> Json<Value> {
    Json(json!({"synchronized": true}))
}

/// What this server offers (BTCPay's `ApplicationServerInfoData`): Flash's version, the payment
/// methods its rails give, and the chain's height as of the watcher's last pass.
async fn server_info(State(state): State<ApiState>, peer: Peer, headers: HeaderMap) -> Answer {
    caller(&state, &headers, &peer).await?;
    let mut methods = Vec::new();
    let mut sync = Vec::new();
    if let Ok(status) = state.bank.onchain_status().await {
        let height = status.hot.map(|(tip, _, _)| tip);
        methods.push("BTC-CHAIN");
        sync.push(json!({
            "paymentMethodId": "BTC-CHAIN",
            "chainHeight": height.unwrap_or(0),
            "syncHeight": height,
            "nodeInformation": null,
            "available": height.is_some(),
        }));
    }
    if state.bank.lightning_node().is_some() {
        methods.extend(["BTC-LN", "BTC-LNURL"]);
    }
    let synced = sync.iter().all(|s| s["available"] == json!(true));
    Ok(Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "supportedPaymentMethods": methods,
        "fullySynched": synced,
        "syncStatus": sync,
    })))
}

async fn list_stores(State(state): State<ApiState>, peer: Peer, headers: HeaderMap) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    // A key scoped to some stores lists those.
    who.caller.require_somewhere(CAN_VIEW_STORE_SETTINGS)?;
    let stores = state.merchant.stores(&who.caller).await?;
    Ok(Json(Value::Array(stores.iter().map(|s| s.to_json()).collect())))
}

async fn create_store(State(state): State<ApiState>, peer: Peer, headers: HeaderMap, bytes: Bytes) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let body = body(&bytes)?;
    Ok(Json(state.merchant.create_store(&who.caller, &body).await?.to_json()))
}

async fn get_store(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    Ok(Json(state.merchant.store(&who.caller, &store_id).await?.to_json()))
}

async fn update_store(
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
            .update_store(&who.caller, &store_id, &body)
            .await?
            .to_json(),
    ))
}

async fn delete_store(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(store_id): Path<String>,
) -> Result<StatusCode, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    state.merchant.delete_store(&who.caller, &store_id).await?;
    Ok(StatusCode::OK)
}

fn key_json(secret: &str, key: &MerchantKeyRecord) -> Value {
    json!({"apiKey": secret, "label": key.label, "permissions": key.permissions})
}

async fn create_key(State(state): State<ApiState>, peer: Peer, headers: HeaderMap, bytes: Bytes) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    who.caller.require(UNRESTRICTED, None)?;
    // As BTCPay (`request ??= new CreateApiKeyRequest()`): no body is an empty request.
    let body = optional_body(&bytes)?;
    let label = match body.get("label") {
        None | Some(Value::Null) => "",
        Some(Value::String(s)) => s.as_str(),
        Some(_) => {
            return Err(GreenfieldError::Invalid(vec![FieldError::new(
                "label",
                "label is a string",
            )]))
        }
    };
    let permissions: Vec<String> = match body.get("permissions") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    GreenfieldError::Invalid(vec![FieldError::new(
                        &format!("permissions[{i}]"),
                        "a permission is a string",
                    )])
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(GreenfieldError::Invalid(vec![FieldError::new(
                "permissions",
                "permissions is a list of strings",
            )]))
        }
    };
    let made = state.merchant.create_key(&who.caller, label, &permissions).await?;
    Ok(Json(key_json(&made.secret, &made.key)))
}

async fn current_key(State(state): State<ApiState>, peer: Peer, headers: HeaderMap) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let (secret, key) = who
        .key
        .ok_or(GreenfieldError::Unauthenticated("this route is for API keys"))?;
    Ok(Json(key_json(&secret, &key)))
}

async fn revoke_current_key(State(state): State<ApiState>, peer: Peer, headers: HeaderMap) -> Answer {
    let who = caller(&state, &headers, &peer).await?;
    let (secret, key) = who
        .key
        .ok_or(GreenfieldError::Unauthenticated("this route is for API keys"))?;
    state.merchant.revoke_key(key.account_id, &key.id).await?;
    Ok(Json(key_json(&secret, &key)))
}

async fn revoke_key(
    State(state): State<ApiState>,
    peer: Peer,
    headers: HeaderMap,
    Path(api_key): Path<String>,
) -> Result<StatusCode, GreenfieldError> {
    let who = caller(&state, &headers, &peer).await?;
    who.caller.require(UNRESTRICTED, None)?;
    match state.merchant.authenticate(&api_key).await? {
        Some((_, key)) if key.account_id == who.caller.account => {
            state.merchant.revoke_key(key.account_id, &key.id).await?;
            Ok(StatusCode::OK)
        }
        _ => Err(GreenfieldError::NotFound(
            "apikey-not-found",
            "The API key was not found",
        )),
    }
}
