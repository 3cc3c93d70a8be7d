//! One place that turns typed errors into the API's stable codes and messages.

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flash_auth::AuthError;
use flash_bank::BankError;

/// An error as the API shows it: a stable code and a human message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// Stable machine-readable code.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
    /// Seconds until a retry may succeed (rate limits).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        ApiError::new("INTERNAL_ERROR", "internal error")
    }

    /// The HTTP status for REST responses.
    pub fn status(&self) -> StatusCode {
        match self.code {
            "UNAUTHENTICATED" | "TOKEN_EXPIRED" | "TOKEN_REVOKED" => StatusCode::UNAUTHORIZED,
            "FORBIDDEN_SCOPE" | "IP_NOT_ALLOWED" => StatusCode::FORBIDDEN,
            "RATE_LIMITED" => StatusCode::TOO_MANY_REQUESTS,
            "INTERNAL_ERROR" | "CODE_DELIVERY_FAILED" => StatusCode::INTERNAL_SERVER_ERROR,
            "ADMISSION_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
            "NOT_FOUND" => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// As a request-level GraphQL error (no field path), with `extensions.code`.
    pub fn to_server_error(&self) -> async_graphql::ServerError {
        let mut error = async_graphql::ServerError::new(self.message.clone(), None);
        error.extensions = self.to_graphql().extensions;
        error
    }

    /// As a GraphQL error with `extensions.code` (and `retryAfterSecs`).
    pub fn to_graphql(&self) -> async_graphql::Error {
        let mut e = async_graphql::Error::new(self.message.clone());
        e = e.extend_with(|_, ext| {
            ext.set("code", self.code);
            if let Some(secs) = self.retry_after_secs {
                ext.set("retryAfterSecs", secs);
            }
        });
        e
    }
}

impl From<BankError> for ApiError {
    fn from(e: BankError) -> Self {
        match e {
            BankError::Store(s) => ApiError::internal(&s),
            BankError::Ledger(e @ flash_core::ledger::LedgerError::Internal(_)) => ApiError::internal(&e),
            e => ApiError::new(e.code(), e.to_string()),
        }
    }
}

impl From<flash_nostr::names::NameError> for ApiError {
    fn from(e: flash_nostr::names::NameError) -> Self {
        match e {
            flash_nostr::names::NameError::Store(s) => ApiError::internal(&s),
            e => ApiError::new(e.code(), e.to_string()),
        }
    }
}

impl From<flash_nostr::fees::AdmissionError> for ApiError {
    fn from(e: flash_nostr::fees::AdmissionError) -> Self {
        use flash_nostr::fees::AdmissionError;
        match e {
            AdmissionError::Store(s) => ApiError::internal(&s),
            AdmissionError::Bank(e) => e.into(),
            e => ApiError::new(e.code(), e.to_string()),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::Store(s) => ApiError::internal(&s),
            e => ApiError {
                code: e.code(),
                message: e.to_string(),
                retry_after_secs: e.retry_after_secs(),
            },
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = serde_json::json!({ "code": self.code, "message": self.message });
        if let Some(secs) = self.retry_after_secs {
            body["retryAfterSecs"] = secs.into();
        }
        let mut response = (self.status(), Json(serde_json::json!({ "error": body }))).into_response();
        if let Some(secs) = self.retry_after_secs {
            if let Ok(v) = secs.to_string().parse() {
                response.headers_mut().insert(axum::http::header::RETRY_AFTER, v);
            }
        }
        response
    }
}
