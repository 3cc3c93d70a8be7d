//! What merchant operations refuse, typed so the API can answer as BTCPay does.

use flash_bank::BankError;
use flash_store::StoreError;

/// One problem with one field of a request (BTCPay's validation answer `{path, message}`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    /// The JSON path of the field (`""` for the whole body).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl FieldError {
    /// A problem with `path`.
    pub fn new(path: &str, message: &str) -> FieldError {
        FieldError {
            path: path.to_string(),
            message: message.to_string(),
        }
    }
}

/// Why a merchant operation failed. Each refusal changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum MerchantError {
    /// The request's fields are not acceptable.
    #[error("invalid request: {}", .0.iter().map(|e| format!("{}: {}", e.path, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<FieldError>),
    /// No such store (or not one the caller may see).
    #[error("store not found")]
    StoreNotFound,
    /// No such invoice (or not one the caller may see).
    #[error("invoice not found")]
    InvoiceNotFound,
    /// No such app (or not one the caller may see).
    #[error("app not found")]
    AppNotFound,
    /// No such webhook (or not one the caller may see).
    #[error("webhook not found")]
    WebhookNotFound,
    /// No such delivery of the webhook.
    #[error("webhook delivery not found")]
    DeliveryNotFound,
    /// No such payment request (or not one the caller may see).
    #[error("payment request not found")]
    PaymentRequestNotFound,
    /// The payment request takes no payment now: BTCPay's code (`archived`, `expired`,
    /// `already-paid`).
    #[error("the payment request cannot be paid: {0}")]
    PaymentRequestClosed(&'static str),
    /// No such pull payment (or not one the caller may see).
    #[error("pull payment not found")]
    PullPaymentNotFound,
    /// The pull payment takes no claim now: `archived`, `expired` or `not-started`.
    #[error("the pull payment cannot be claimed: {0}")]
    PullPaymentClosed(&'static str),
    /// The physical card is a live card here already: linking it again needs a tap of it.
    #[error(
        "this card is already linked here: send LNURLW, the link read from the card (its p and c), to link it again"
    )]
    CardInUse,
    /// No such payout (or not one the caller may see).
    #[error("payout not found")]
    PayoutNotFound,
    /// The payout is not in a state that allows this.
    #[error("{0}")]
    PayoutState(&'static str),
    /// No such rewards program (or not one of the caller's stores).
    #[error("rewards program not found")]
    RewardProgramNotFound,
    /// No such reward (claim link).
    #[error("reward not found")]
    RewardNotFound,
    /// The reward or program cannot do this now.
    #[error("{0}")]
    RewardClosed(&'static str),
    /// No such Lightning address of the store.
    #[error("lightning address not found")]
    LightningAddressNotFound,
    /// No exchange rate could be had for this currency now (the price source is down).
    #[error("no rate available: {0}")]
    RateUnavailable(String),
    /// No such API key of the caller.
    #[error("API key not found")]
    KeyNotFound,
    /// The caller lacks this permission.
    #[error("missing permission {0}")]
    Forbidden(&'static str),
    /// The bank refused or failed.
    #[error(transparent)]
    Bank(#[from] BankError),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

impl MerchantError {
    /// A refusal of one field.
    pub fn field(path: &str, message: &str) -> MerchantError {
        MerchantError::Invalid(vec![FieldError::new(path, message)])
    }
}
