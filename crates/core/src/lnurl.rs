//! The `LnurlClient` port: paying other services' LNURL-pay links and Lightning addresses
//! (LUD-06, LUD-16). The adapter fetches over HTTP with the care a bank needs (timeouts, size
//! limits, no downgrade to plain HTTP, no redirect to another host); the bank decides what to
//! pay.

use crate::ports::BoxFuture;

/// What a service answers to the first LNURL-pay request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LnurlPayParams {
    /// Where to ask for the invoice.
    pub callback: String,
    /// Smallest amount accepted, millisatoshis.
    pub min_sendable_msat: u64,
    /// Largest amount accepted, millisatoshis.
    pub max_sendable_msat: u64,
    /// The metadata, exactly as sent: the invoice must commit to its SHA-256.
    pub metadata: String,
    /// Longest comment accepted (LUD-12); 0 when comments are not accepted.
    pub comment_allowed: u32,
    /// The service's host, for messages.
    pub domain: String,
}

/// Why an LNURL could not be paid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LnurlError {
    /// Not a Lightning address or LNURL.
    #[error("not a Lightning address or LNURL: {0}")]
    InvalidTarget(String),
    /// The service could not be reached in time.
    #[error("the LNURL service did not answer: {0}")]
    Unreachable(String),
    /// The service answered something that is not a valid LNURL response.
    #[error("the LNURL service answered badly: {0}")]
    BadResponse(String),
    /// The service refused (`{"status":"ERROR","reason":…}`).
    #[error("the LNURL service refused: {0}")]
    Refused(String),
    /// Asked for pay parameters, the service answered with a withdraw request (LUD-03): the
    /// link hands money over rather than taking it.
    #[error("the LNURL is a withdraw link: it pays you rather than being paid")]
    WithdrawLink,
}

/// A client for other services' LNURL-pay and LNURL-withdraw endpoints.
pub trait LnurlClient: Send + Sync {
    /// Resolves a Lightning address (`name@host`), a bech32 LNURL (`lnurl1…`) or an
    /// `lnurlp://` link to its pay parameters.
    fn pay_params<'a>(&'a self, target: &'a str) -> BoxFuture<'a, Result<LnurlPayParams, LnurlError>>;

    /// Asks for an invoice of `amount_msat`, with an optional comment, and checks that it is
    /// for that amount and commits to the metadata's hash. Returns the BOLT11 text.
    fn invoice<'a>(
        &'a self,
        params: &'a LnurlPayParams,
        amount_msat: u64,
        comment: Option<&'a str>,
    ) -> BoxFuture<'a, Result<String, LnurlError>>;

    /// Withdraws `amount_msat` from another service's withdraw link (`lnurlw://…`, `lnurl1…` or
    /// its URL; LUD-03) into `payment_request`: reads the withdraw request, checks that it
    /// allows the amount, and hands over the invoice. `Ok` once the service took it; it pays
    /// in its own time.
    fn withdraw<'a>(
        &'a self,
        link: &'a str,
        payment_request: &'a str,
        amount_msat: u64,
    ) -> BoxFuture<'a, Result<(), LnurlError>>;
}
