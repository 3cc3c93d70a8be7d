//! The auth error type, with stable codes.

use flash_core::ErrorCode;
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
    pub fn code(&self) -> ErrorCode {
        match self {
            AuthError::Validation(ValidationError::InvalidPhone) => ErrorCode::InvalidPhone,
            AuthError::Validation(ValidationError::InvalidEmail) => ErrorCode::InvalidEmail,
            AuthError::Validation(_) => ErrorCode::InvalidInput,
            AuthError::InvalidCode => ErrorCode::InvalidCode,
            AuthError::CodeExpired => ErrorCode::CodeExpired,
            AuthError::TooManyAttempts => ErrorCode::TooManyAttempts,
            AuthError::RateLimited { .. } => ErrorCode::RateLimited,
            AuthError::Unauthenticated => ErrorCode::Unauthenticated,
            AuthError::TokenExpired => ErrorCode::TokenExpired,
            AuthError::TokenRevoked => ErrorCode::TokenRevoked,
            AuthError::IpNotAllowed => ErrorCode::IpNotAllowed,
            AuthError::MissingScope(_) => ErrorCode::ForbiddenScope,
            AuthError::InvalidApiKey(_) => ErrorCode::InvalidApiKeyRequest,
            AuthError::ApiKeyLimit(_) => ErrorCode::ApiKeyLimit,
            AuthError::ApiKeyNotFound => ErrorCode::ApiKeyNotFound,
            AuthError::Delivery(_) => ErrorCode::CodeDeliveryFailed,
            AuthError::Store(_) => ErrorCode::InternalError,
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
