//! Flash authentication: one-time login codes, sessions, API keys with scopes, operator
//! keys, and rate limits.
//!
//! Secrets never rest in the clear: login codes are stored as HMACs under a server secret,
//! session tokens and API keys as SHA-256 hashes. The [`Auth`] service proves identities; it
//! does not create accounts — the API asks the bank for the account behind a proven identity
//! and then asks [`Auth`] for a session.

mod error;
mod ippin;
mod ratelimit;
mod scope;
mod secret;
mod sender;
mod service;
mod stored;

pub use error::AuthError;
pub use ippin::{IpAllowlist, IpAllowlistError};
pub use ratelimit::{defaults as rate_limits, RateLimit, RateLimiter, RetryAfter};
pub use scope::{ParseScopeError, Scope, Scopes};
pub use secret::{hash_token, CodeHasher, API_KEY_PREFIX};
pub use sender::{LogCodeSender, SmtpCodeSender, SmtpConfig, SmtpConfigError, SmtpTls};
pub use service::{rotate_admin_keys, ApiKeyRequest, Auth, AuthConfig, Credential, Identifier, Principal};
