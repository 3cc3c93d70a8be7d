//! The auth routes, shaped like Blink's auth server: JSON in, `{authToken}` out.

use flash_core::ErrorCode;
use std::net::IpAddr;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use flash_auth::{hash_token, Identifier};
use flash_bank::Identity;
use flash_core::{Email, Phone};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::error::ApiError;
use crate::{ApiState, Peer};

/// Shortest device secret accepted (characters).
const DEVICE_SECRET_MIN_CHARS: usize = 16;

pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/auth/phone/code", post(phone_code))
        .route("/auth/phone/login", post(phone_login))
        .route("/auth/email/code", post(email_code))
        .route("/auth/email/login", post(email_login))
        .route("/auth/create/device-account", post(device_account))
        .route("/auth/logout", post(logout))
        .with_state(state)
}

fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("invalid JSON body: {e}")))
}

/// The bearer token of a request: `Authorization: Bearer …` or `X-API-KEY`.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let auth = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let token = auth.and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")));
    let api_key = headers.get("x-api-key").and_then(|v| v.to_str().ok());
    token
        .or(api_key)
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PhoneBody {
    phone: String,
    code: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EmailBody {
    email: String,
    code: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DeviceBody {
    device_id: Option<String>,
}

fn ip(peer: &Peer) -> IpAddr {
    peer.0.ip()
}

/// Logs in with a verified identity: finds or creates the account, opens a session.
pub(crate) async fn session_for(state: &ApiState, identity: &Identity) -> Result<String, ApiError> {
    let (user, _) = state.bank.user_for_identity(identity).await?;
    Ok(state.auth.create_session(user.id).await?)
}

async fn phone_code(State(state): State<ApiState>, peer: Peer, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: PhoneBody = parse(&body)?;
    let phone = Phone::parse(&body.phone).map_err(flash_auth::AuthError::from)?;
    state.auth.request_code(&Identifier::Phone(phone), ip(&peer)).await?;
    Ok(Json(json!({ "success": true })))
}

async fn phone_login(State(state): State<ApiState>, peer: Peer, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: PhoneBody = parse(&body)?;
    let phone = Phone::parse(&body.phone).map_err(flash_auth::AuthError::from)?;
    let code = body
        .code
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidInput, "code is required"))?;
    state
        .auth
        .verify_code(&Identifier::Phone(phone.clone()), &code, ip(&peer))
        .await?;
    let token = session_for(&state, &Identity::Phone(phone)).await?;
    Ok(Json(json!({ "authToken": token })))
}

async fn email_code(State(state): State<ApiState>, peer: Peer, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: EmailBody = parse(&body)?;
    let email = Email::parse(&body.email).map_err(flash_auth::AuthError::from)?;
    state.auth.request_code(&Identifier::Email(email), ip(&peer)).await?;
    Ok(Json(json!({ "success": true })))
}

async fn email_login(State(state): State<ApiState>, peer: Peer, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: EmailBody = parse(&body)?;
    let email = Email::parse(&body.email).map_err(flash_auth::AuthError::from)?;
    let code = body
        .code
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidInput, "code is required"))?;
    state
        .auth
        .verify_code(&Identifier::Email(email.clone()), &code, ip(&peer))
        .await?;
    let token = session_for(&state, &Identity::Email(email)).await?;
    Ok(Json(json!({ "authToken": token })))
}

/// A device account (level 0, no phone). `deviceId` is a secret the device keeps (at least
/// 16 characters); the same secret logs back into the same account. Without one, a fresh
/// account is created each time. Only its hash is stored.
async fn device_account(State(state): State<ApiState>, peer: Peer, body: Bytes) -> Result<Json<Value>, ApiError> {
    let body: DeviceBody = if body.is_empty() {
        DeviceBody::default()
    } else {
        parse(&body)?
    };
    state.auth.check_signup_rate(ip(&peer))?;
    let secret = match body.device_id {
        Some(id) if id.chars().count() < DEVICE_SECRET_MIN_CHARS => {
            return Err(ApiError::new(
                ErrorCode::InvalidInput,
                "deviceId must be at least 16 characters",
            ))
        }
        Some(id) => id,
        None => uuid::Uuid::new_v4().to_string(),
    };
    let token = session_for(&state, &Identity::Device(hash_token(&secret))).await?;
    Ok(Json(json!({ "authToken": token })))
}

async fn logout(State(state): State<ApiState>, headers: HeaderMap) -> Result<Json<Value>, ApiError> {
    let token = bearer(&headers).ok_or_else(|| ApiError::new(ErrorCode::Unauthenticated, "no token"))?;
    if token.starts_with(flash_auth::API_KEY_PREFIX) {
        return Err(ApiError::new(
            ErrorCode::InvalidInput,
            "API keys are revoked with apiKeyRevoke, not logout",
        ));
    }
    state.auth.logout(&token).await?;
    Ok(Json(json!({ "success": true })))
}
