//! The auth error type, with stable codes.

use flash_core::ValidationError;
use flash_store::StoreError;

/// Why authentication failed. [`AuthError::code`] is the stable wire code.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A malformed phone or email.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// Wrong code.
    #[error("wrong or unknown code")]
    InvalidCode,
    /// The code expired; request a new one.
    #[error("code expired; request a new one")]
    CodeExpired,
    /// Too many attempts on this code; request a new one.
    #[error("too many attempts; request a new code")]
    TooManyAttempts,
    /// Slow down.
    #[error("too many requests; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until a retry may succeed.
        retry_after_secs: u64,
    },
    /// No credentials, or unknown ones.
    #[error("not authenticated")]
    Unauthenticated,
    /// The session or key expired.
    #[error("token expired")]
    TokenExpired,
    /// The session or key was revoked.
    #[error("token revoked")]
    TokenRevoked,
    /// The API key is pinned to other addresses.
    #[error("API key not allowed from this address")]
    IpNotAllowed,
    /// The credential lacks a scope.
    #[error("this API key lacks the {0} scope")]
    MissingScope(&'static str),
    /// Bad API key parameters.
    #[error("invalid API key request: {0}")]
    InvalidApiKey(String),
    /// At most this many live keys per account.
    #[error("an account can have at most {0} active API keys")]
    ApiKeyLimit(i64),
    /// No such API key on this account.
    #[error("API key not found")]
    ApiKeyNotFound,
    /// The code could not be sent.
    #[error("could not deliver the code: {0}")]
    Delivery(String),
    /// The database failed.
    #[error("storage failure: {0}")]
    Store(#[from] StoreError),
}

impl AuthError {
    /// Stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            AuthError::Validation(ValidationError::InvalidPhone) => "INVALID_PHONE",
            AuthError::Validation(ValidationError::InvalidEmail) => "INVALID_EMAIL",
            AuthError::Validation(_) => "INVALID_INPUT",
            AuthError::InvalidCode => "INVALID_CODE",
            AuthError::CodeExpired => "CODE_EXPIRED",
            AuthError::TooManyAttempts => "TOO_MANY_ATTEMPTS",
            AuthError::RateLimited { .. } => "RATE_LIMITED",
            AuthError::Unauthenticated => "UNAUTHENTICATED",
            AuthError::TokenExpired => "TOKEN_EXPIRED",
            AuthError::TokenRevoked => "TOKEN_REVOKED",
            AuthError::IpNotAllowed => "IP_NOT_ALLOWED",
            AuthError::MissingScope(_) => "FORBIDDEN_SCOPE",
            AuthError::InvalidApiKey(_) => "INVALID_API_KEY_REQUEST",
            AuthError::ApiKeyLimit(_) => "API_KEY_LIMIT",
            AuthError::ApiKeyNotFound => "API_KEY_NOT_FOUND",
            AuthError::Delivery(_) => "CODE_DELIVERY_FAILED",
            AuthError::Store(_) => "INTERNAL_ERROR",
        }
    }

    /// Seconds to wait, for rate-limit errors.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            AuthError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        }
    }
}
