//! The mint's refusals, each with its NUT error code (`error_codes.md` in cashubtc/nuts).

use flash_bank::BankError;
use flash_core::ErrorCode;
use flash_store::StoreError;

/// Why the mint refused a request. Every refusal changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum MintError {
    /// A proof's signature or spending condition did not verify.
    #[error("proof verification failed: {0}")]
    ProofInvalid(String),
    /// A proof was already spent.
    #[error("proofs already spent")]
    AlreadySpent,
    /// A proof is pending in a melt.
    #[error("proofs are pending")]
    ProofsPending,
    /// A blinded message was already signed.
    #[error("outputs already signed")]
    OutputsSigned,
    /// Inputs and outputs (with fees) do not add up.
    #[error("transaction is not balanced: {0}")]
    Unbalanced(String),
    /// An amount is outside what the mint accepts.
    #[error("amount outside of limit range: {0}")]
    AmountRange(String),
    /// The same input appears twice.
    #[error("duplicate inputs provided")]
    DuplicateInputs,
    /// The same output appears twice.
    #[error("duplicate outputs provided")]
    DuplicateOutputs,
    /// Inputs or outputs of more than one unit.
    #[error("inputs/outputs of multiple units")]
    MultipleUnits,
    /// An amountless invoice.
    #[error("amountless invoice is not supported")]
    AmountlessInvoice,
    /// The amount in the request differs from the invoice's.
    #[error("amount in request does not equal invoice")]
    AmountMismatch,
    /// A unit the mint does not issue.
    #[error("unit in request is not supported")]
    UnsupportedUnit,
    /// Too many inputs in one request.
    #[error("max inputs exceeded: at most {0}")]
    TooManyInputs(usize),
    /// Too many outputs in one request.
    #[error("max outputs exceeded: at most {0}")]
    TooManyOutputs(usize),
    /// A keyset id the mint never had.
    #[error("keyset is not known")]
    UnknownKeyset,
    /// A keyset that no longer signs.
    #[error("keyset is inactive, cannot sign messages")]
    InactiveKeyset,
    /// The mint quote is not paid.
    #[error("quote request is not paid")]
    QuoteUnpaid,
    /// The mint quote was already issued.
    #[error("quote has already been issued")]
    QuoteIssued,
    /// Minting (or melting) over Lightning is not available here.
    #[error("minting is disabled: {0}")]
    MintingDisabled(String),
    /// The melt's Lightning payment failed; the notes are unspent again.
    #[error("lightning payment failed: {0}")]
    PaymentFailed(String),
    /// The quote is being paid right now.
    #[error("quote is pending")]
    QuotePending,
    /// The invoice is already paid.
    #[error("invoice already paid")]
    InvoiceAlreadyPaid,
    /// The quote has expired.
    #[error("quote is expired")]
    QuoteExpired,
    /// The NUT-20 signature on a mint request is wrong or missing.
    #[error("signature for mint request invalid")]
    SignatureInvalid,
    /// No such quote.
    #[error("quote not found")]
    UnknownQuote,
    /// A malformed request (bad token, invoice, amount, …).
    #[error("{0}")]
    BadRequest(String),
    /// The bank refused the wallet side (balance, limits, wallet, account).
    #[error("{0}")]
    Bank(BankError),
    /// A failure of the bank or the store (not the caller's fault).
    #[error("internal error: {0}")]
    Internal(String),
}

impl MintError {
    /// The NUT error code.
    pub fn code(&self) -> u32 {
        match self {
            MintError::ProofInvalid(_) => 10001,
            MintError::AlreadySpent => 11001,
            MintError::ProofsPending => 11002,
            MintError::OutputsSigned => 11003,
            MintError::Unbalanced(_) => 11005,
            MintError::AmountRange(_) => 11006,
            MintError::DuplicateInputs => 11007,
            MintError::DuplicateOutputs => 11008,
            MintError::MultipleUnits => 11009,
            MintError::AmountlessInvoice => 11011,
            MintError::AmountMismatch => 11012,
            MintError::UnsupportedUnit => 11013,
            MintError::TooManyInputs(_) => 11014,
            MintError::TooManyOutputs(_) => 11015,
            MintError::UnknownKeyset => 12001,
            MintError::InactiveKeyset => 12002,
            MintError::QuoteUnpaid | MintError::UnknownQuote => 20001,
            MintError::QuoteIssued => 20002,
            MintError::MintingDisabled(_) => 20003,
            MintError::PaymentFailed(_) => 20004,
            MintError::QuotePending => 20005,
            MintError::InvoiceAlreadyPaid => 20006,
            MintError::QuoteExpired => 20007,
            MintError::SignatureInvalid => 20008,
            MintError::BadRequest(_) | MintError::Bank(_) => 10000,
            MintError::Internal(_) => 0,
        }
    }

    /// A stable name for the app API (`ECASH_ALREADY_SPENT`, or the bank's own code).
    pub fn name(&self) -> ErrorCode {
        match self {
            MintError::ProofInvalid(_) => ErrorCode::EcashProofInvalid,
            MintError::AlreadySpent => ErrorCode::EcashAlreadySpent,
            MintError::ProofsPending => ErrorCode::EcashPending,
            MintError::OutputsSigned => ErrorCode::EcashOutputsSigned,
            MintError::Unbalanced(_) => ErrorCode::EcashUnbalanced,
            MintError::AmountRange(_) => ErrorCode::EcashAmountOutOfRange,
            MintError::DuplicateInputs | MintError::DuplicateOutputs => ErrorCode::EcashDuplicate,
            MintError::MultipleUnits | MintError::UnsupportedUnit => ErrorCode::EcashUnitNotSupported,
            MintError::AmountlessInvoice | MintError::AmountMismatch => ErrorCode::EcashAmountMismatch,
            MintError::TooManyInputs(_) | MintError::TooManyOutputs(_) => ErrorCode::EcashTooLarge,
            MintError::UnknownKeyset | MintError::InactiveKeyset => ErrorCode::EcashKeyset,
            MintError::QuoteUnpaid => ErrorCode::EcashQuoteUnpaid,
            MintError::QuoteIssued => ErrorCode::EcashQuoteIssued,
            MintError::MintingDisabled(_) => ErrorCode::EcashDisabled,
            MintError::PaymentFailed(_) => ErrorCode::EcashPaymentFailed,
            MintError::QuotePending => ErrorCode::EcashQuotePending,
            MintError::InvoiceAlreadyPaid => ErrorCode::InvoiceAlreadyPaid,
            MintError::QuoteExpired => ErrorCode::EcashQuoteExpired,
            MintError::SignatureInvalid => ErrorCode::EcashSignatureInvalid,
            MintError::UnknownQuote => ErrorCode::EcashQuoteNotFound,
            MintError::BadRequest(_) => ErrorCode::InvalidInput,
            MintError::Bank(e) => e.code(),
            MintError::Internal(_) => ErrorCode::InternalError,
        }
    }

    /// Whether the server, not the request, is at fault (HTTP 5xx).
    pub fn is_internal(&self) -> bool {
        matches!(self, MintError::Internal(_))
    }
}

impl From<StoreError> for MintError {
    fn from(e: StoreError) -> Self {
        MintError::Internal(e.to_string())
    }
}

impl From<BankError> for MintError {
    fn from(e: BankError) -> Self {
        match e {
            BankError::Store(e) => MintError::Internal(e.to_string()),
            BankError::LightningUnavailable(m) => MintError::MintingDisabled(m),
            BankError::InvoiceExpired => MintError::BadRequest("the invoice has expired".into()),
            BankError::AmountMismatch(_) => MintError::AmountMismatch,
            other => MintError::Bank(other),
        }
    }
}
