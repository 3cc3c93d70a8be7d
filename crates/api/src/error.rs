//! One place that turns typed errors into the API's stable codes and messages.

use async_graphql::ErrorExtensions;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use flash_auth::AuthError;
use flash_bank::BankError;
use flash_core::ErrorCode;

/// An error as the API shows it: a stable code and a human message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Human-readable message.
    pub message: String,
    /// Seconds until a retry may succeed (rate limits).
    pub retry_after_secs: Option<u64>,
}

impl ApiError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            retry_after_secs: None,
        }
    }

    fn internal(detail: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(ErrorCode::InternalError, "internal error")
    }

    /// The HTTP status for REST responses.
    pub fn status(&self) -> StatusCode {
        match self.code {
            ErrorCode::Unauthenticated | ErrorCode::TokenExpired | ErrorCode::TokenRevoked => StatusCode::UNAUTHORIZED,
            ErrorCode::ForbiddenScope | ErrorCode::IpNotAllowed => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::InternalError | ErrorCode::CodeDeliveryFailed => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::AdmissionUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
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
            ext.set("code", self.code.as_str());
            if let Some(secs) = self.retry_after_secs {
                ext.set("retryAfterSecs", secs);
            }
        });
        e
    }
}

impl From<flash_core::PriceSourceError> for ApiError {
    fn from(e: flash_core::PriceSourceError) -> Self {
        match e {
            flash_core::PriceSourceError::UnknownCurrency(_) => {
                ApiError::new(ErrorCode::InvalidCurrency, e.to_string())
            }
            e => {
                tracing::warn!(error = %e, "no price");
                ApiError::new(ErrorCode::PriceUnavailable, "no price is available now")
            }
        }
    }
}

impl From<flash_core::PriceError> for ApiError {
    fn from(e: flash_core::PriceError) -> Self {
        match e {
            flash_core::PriceError::InvalidCurrency(_) => ApiError::new(ErrorCode::InvalidCurrency, e.to_string()),
            e => ApiError::new(ErrorCode::InvalidInput, e.to_string()),
        }
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
        let mut body = serde_json::json!({ "code": self.code.as_str(), "message": self.message });
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// `docs/api.md`'s "Error codes" section lists exactly the codes of [`ErrorCode`].
    #[test]
    fn the_documented_codes_are_the_wire_codes() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/api.md");
        let doc = std::fs::read_to_string(path).expect("docs/api.md");
        let start = doc.find("\n## Error codes").expect("an Error codes section");
        let section = &doc[start + 1..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        let documented: BTreeSet<&str> = section
            .split('`')
            .skip(1)
            .step_by(2)
            .filter(|t| t.len() > 2 && t.chars().all(|c| c.is_ascii_uppercase() || c == '_'))
            .collect();
        let wire: BTreeSet<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        let undocumented: Vec<_> = wire.difference(&documented).collect();
        let unknown: Vec<_> = documented.difference(&wire).collect();
        assert!(
            undocumented.is_empty() && unknown.is_empty(),
            "codes missing from docs/api.md: {undocumented:?}; documented but not codes: {unknown:?}"
        );
    }

    #[test]
    fn statuses_follow_the_code() {
        assert_eq!(
            ApiError::new(ErrorCode::Unauthenticated, "").status(),
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            ApiError::new(ErrorCode::RateLimited, "").status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        assert_eq!(ApiError::new(ErrorCode::NotFound, "").status(), StatusCode::NOT_FOUND);
        assert_eq!(
            ApiError::new(ErrorCode::InvalidInput, "").status(),
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ApiError::new(ErrorCode::InternalError, "").status(),
            StatusCode::INTERNAL_SERVER_ERROR
        );
    }
}
