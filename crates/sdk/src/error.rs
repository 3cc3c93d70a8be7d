//! The client's error type.

use std::fmt;
use std::path::PathBuf;

/// One error reported by the server inside a GraphQL response, either at the
/// top level (`errors[].message` + `errors[].extensions.code`) or inside a
/// mutation payload (`payload.errors[].message` + `payload.errors[].code`).
///
/// Serialises as the payload form, `{"message": …, "code": …}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GraphQlError {
    /// Human-readable message.
    pub message: String,
    /// Stable machine-readable code, when the server sent one.
    #[serde(default)]
    pub code: Option<String>,
}

impl fmt::Display for GraphQlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.code {
            Some(code) => write!(f, "{} ({code})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Joins several GraphQL errors into one line for display.
fn join_errors(errors: &[GraphQlError]) -> String {
    if errors.is_empty() {
        return "unknown error".to_owned();
    }
    errors.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Formats the optional "retry after" hint of a rate-limit error.
fn retry_hint(retry_after_secs: &Option<u64>) -> String {
    match retry_after_secs {
        Some(secs) => format!("; retry after {secs}s"),
        None => String::new(),
    }
}

/// Everything that can go wrong while talking to a Flash server or handling
/// the local credentials file.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The HTTP request could not be sent or its body could not be read.
    #[error("request to {url} failed: {source}")]
    Request {
        /// The URL that was requested.
        url: String,
        /// The underlying transport error.
        #[source]
        source: reqwest::Error,
    },
    /// The server could not be reached at all (nothing was sent): it is down, or the URL is
    /// wrong.
    #[error("the server at {server} cannot be reached (is flashd running there? pass --server or set FLASH_SERVER for another one): {source}")]
    Unreachable {
        /// The server URL.
        server: String,
        /// The underlying connection error.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered a REST call with a structured error.
    #[error("{message} ({code}, HTTP {status}){}", retry_hint(.retry_after_secs))]
    Api {
        /// HTTP status code.
        status: u16,
        /// Stable machine-readable code, e.g. `INVALID_CODE`.
        code: String,
        /// Human-readable message.
        message: String,
        /// Seconds to wait before retrying (rate limits only).
        retry_after_secs: Option<u64>,
    },
    /// The server answered with an unexpected HTTP status and no structured error.
    #[error("server returned HTTP {status}: {body}")]
    Http {
        /// HTTP status code.
        status: u16,
        /// The (possibly truncated) response body.
        body: String,
    },
    /// The GraphQL response (top-level or mutation payload) carried errors.
    #[error("{}", join_errors(.0))]
    GraphQl(Vec<GraphQlError>),
    /// The response did not have the expected shape.
    #[error("unexpected response from server: {0}")]
    Decode(String),
    /// No session token is stored for this server.
    #[error("not logged in to {server}; run `flash login` first")]
    NotLoggedIn {
        /// The server URL.
        server: String,
    },
    /// The server did not recognise the token (revoked, or of another server).
    #[error("not authenticated: the server did not accept the token; run `flash login`")]
    NotAuthenticated,
    /// The session token was valid once but has expired.
    #[error("your session on {server} has expired; run `flash login` to start a new one")]
    SessionExpired {
        /// The server URL.
        server: String,
    },
    /// The server refused the operator (admin) key.
    #[error(
        "the server at {server} refused the operator key (--admin-key / FLASH_ADMIN_KEY): it is not \
         the key flashd printed on its first start, or it was rotated; an operator with access to \
         the server makes a new one with `flashd admin-key rotate`"
    )]
    AdminKeyRefused {
        /// The server URL.
        server: String,
    },
    /// An admin call was attempted without an admin key.
    #[error(
        "no operator key: pass --admin-key or set FLASH_ADMIN_KEY (flashd prints the key on its first \
         start; `flashd admin-key rotate` makes a new one)"
    )]
    NoAdminKey,
    /// The caller passed something that cannot be sent.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// The configuration directory could not be determined.
    #[error("cannot find a configuration directory: set FLASH_CONFIG_DIR or HOME")]
    NoConfigDir,
    /// Reading or writing a local file failed.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The credentials file is not valid JSON of the expected shape.
    #[error("{} is not a valid credentials file: {source}", .path.display())]
    CredentialsFormat {
        /// The credentials file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
}

impl From<flash_core::destination::DestinationError> for ClientError {
    /// A destination, payment request or amount that was refused is invalid input.
    fn from(e: flash_core::destination::DestinationError) -> Self {
        ClientError::InvalidInput(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_error_display_includes_code_and_retry() {
        let e = ClientError::Api {
            status: 429,
            code: "TOO_MANY_REQUESTS".into(),
            message: "slow down".into(),
            retry_after_secs: Some(12),
        };
        assert_eq!(
            e.to_string(),
            "slow down (TOO_MANY_REQUESTS, HTTP 429); retry after 12s"
        );
    }

    #[test]
    fn graphql_error_display_joins() {
        let e = ClientError::GraphQl(vec![
            GraphQlError {
                message: "a".into(),
                code: Some("X".into()),
            },
            GraphQlError {
                message: "b".into(),
                code: None,
            },
        ]);
        assert_eq!(e.to_string(), "a (X); b");
        assert_eq!(ClientError::GraphQl(vec![]).to_string(), "unknown error");
    }
}
