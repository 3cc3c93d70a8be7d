//! Ports: the traits through which the bank reaches the outside world. Adapters live in
//! other crates; this crate only names the contracts.

use std::future::Future;
use std::pin::Pin;
use std::time::{SystemTime, UNIX_EPOCH};

/// A boxed, sendable future, so ports can be used as `Arc<dyn Port>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Wall-clock time in milliseconds since the Unix epoch. Injected so tests and simulations
/// can move time.
pub trait Clock: Send + Sync {
    /// Now, in Unix milliseconds.
    fn now_ms(&self) -> i64;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
            .unwrap_or(0)
    }
}

/// The channel a login code travels on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodeChannel {
    /// Text message to a phone.
    Sms,
    /// Email.
    Email,
}

/// Why a code could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum CodeSendError {
    /// No sender is configured for this channel.
    #[error("code channel not configured: {0}")]
    Unsupported(&'static str),
    /// The sender tried and failed.
    #[error("code delivery failed: {0}")]
    Failed(String),
}

/// Delivers one-time login codes (SMS gateway, SMTP, or the log in the embedded default).
pub trait CodeSender: Send + Sync {
    /// Sends `code` to `identifier` over `channel`.
    fn send_code<'a>(
        &'a self,
        channel: CodeChannel,
        identifier: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<(), CodeSendError>>;
}
