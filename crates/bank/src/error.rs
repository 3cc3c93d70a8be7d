//! The bank's one error type, with stable codes.

use flash_core::ledger::LedgerError;
use flash_core::ErrorCode;
use flash_core::{MoneyError, ValidationError};
use flash_store::StoreError;

/// Why the bank refused or failed a request. [`BankError::code`] is the stable wire code.
#[derive(Debug, thiserror::Error)]
pub enum BankError {
    /// A malformed field.
    #[error(transparent)]
    Validation(#[from] ValidationError),
    /// A bad amount.
    #[error("invalid amount: {0}")]
    Amount(#[from] MoneyError),
    /// The ledger refused.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// No such wallet among the caller's.
    #[error("wallet not found")]
    WalletNotFound,
    /// No such account.
    #[error("account not found")]
    AccountNotFound,
    /// The recipient does not exist.
    #[error("recipient not found")]
    RecipientNotFound,
    /// Exactly one of recipient wallet / username must be given.
    #[error("give exactly one of recipientWalletId or recipientUsername")]
    AmbiguousRecipient,
    /// The caller's account may not move money.
    #[error("account is {0}")]
    AccountNotActive(&'static str),
    /// The recipient's account may not receive.
    #[error("recipient account is not active")]
    RecipientNotActive,
    /// A dev-only operation on mainnet.
    #[error("not available on mainnet")]
    NotOnMainnet,
    /// The username is taken.
    #[error("username is already taken")]
    UsernameTaken,
    /// Usernames are set once.
    #[error("username is already set and cannot be changed")]
    UsernameAlreadySet,
    /// The email belongs to another user.
    #[error("email is already in use")]
    EmailTaken,
    /// An idempotency key that is empty, too long or has control characters.
    #[error("idempotency key must be 1 to 128 printable characters")]
    InvalidIdempotencyKey,
    /// Over a rolling 24-hour limit.
    #[error("{kind} limit of {limit_sats} sats (${limit_usd}) per 24 hours exceeded: {remaining_sats} sats remaining")]
    LimitExceeded {
        /// Which limit.
        kind: flash_core::LimitKind,
        /// The limit, sats.
        limit_sats: i64,
        /// The limit in dollars, as configured.
        limit_usd: String,
        /// What remains in the window, sats.
        remaining_sats: i64,
    },
    /// Bad pagination arguments.
    #[error("invalid page: {0}")]
    InvalidPage(&'static str),
    /// Not a valid invoice.
    #[error("invalid invoice: {0}")]
    InvalidInvoice(String),
    /// An invoice for another network.
    #[error("invoice is for {found}, this Flash runs on {expected}")]
    WrongNetwork {
        /// Ours.
        expected: flash_core::Network,
        /// The invoice's.
        found: flash_core::Network,
    },
    /// The invoice expired.
    #[error("invoice has expired")]
    InvoiceExpired,
    /// The amount given does not fit the invoice.
    #[error("amount mismatch: {0}")]
    AmountMismatch(String),
    /// An invoice expiry out of range.
    #[error("invoice expiry must be 1 to {max_mins} minutes")]
    InvalidExpiry {
        /// Longest allowed.
        max_mins: i64,
    },
    /// No invoice of this Flash has that hash.
    #[error("invoice not found")]
    InvoiceNotFound,
    /// The invoice is paid already.
    #[error("invoice is already paid")]
    InvoiceAlreadyPaid,
    /// A payment of this invoice is already under way.
    #[error("a payment of this invoice is already in flight")]
    PaymentInFlight,
    /// The node found no route.
    #[error("no route to the payee: {0}")]
    NoRoute(String),
    /// Another service's LNURL could not be paid.
    #[error(transparent)]
    Lnurl(#[from] flash_core::lnurl::LnurlError),
    /// The Lightning node could not be used.
    #[error("lightning unavailable: {0}")]
    LightningUnavailable(String),
    /// No such withdraw link.
    #[error("withdraw link not found")]
    WithdrawLinkNotFound,
    /// Bad withdraw-link settings.
    #[error("invalid withdraw link: {0}")]
    InvalidLink(String),
    /// A condition checked as the money moved did not hold (e.g. a withdraw link used up).
    #[error("{0}")]
    Refused(&'static str),
    /// A request that cannot be carried out as asked (a value out of range).
    #[error("{0}")]
    InvalidInput(String),
    /// An on-chain payout below the dust threshold.
    #[error("on-chain payouts must be at least {min_sats} sats")]
    AmountBelowDust {
        /// The threshold.
        min_sats: i64,
    },
    /// Not a usable Bitcoin address for this network.
    #[error("invalid address: {0}")]
    InvalidAddress(String),
    /// The on-chain wallet could not be used.
    #[error("on-chain wallet unavailable: {0}")]
    OnchainUnavailable(String),
    /// The database failed.
    #[error("storage failure: {0}")]
    Store(StoreError),
}

impl From<StoreError> for BankError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Refused(reason) => BankError::Refused(reason),
            other => BankError::Store(other),
        }
    }
}

impl BankError {
    /// Stable machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            BankError::Validation(ValidationError::InvalidUsername) => ErrorCode::InvalidUsername,
            BankError::Validation(ValidationError::InvalidPhone) => ErrorCode::InvalidPhone,
            BankError::Validation(ValidationError::InvalidEmail) => ErrorCode::InvalidEmail,
            BankError::Validation(ValidationError::MemoTooLong) => ErrorCode::MemoTooLong,
            BankError::Validation(ValidationError::InvalidLevel) => ErrorCode::InvalidLevel,
            BankError::Validation(ValidationError::InvalidStatus) => ErrorCode::InvalidStatus,
            BankError::Validation(ValidationError::ControlCharacters) => ErrorCode::InvalidInput,
            BankError::Amount(_) => ErrorCode::InvalidAmount,
            BankError::Ledger(e) => e.code(),
            BankError::WalletNotFound => ErrorCode::WalletNotFound,
            BankError::AccountNotFound => ErrorCode::AccountNotFound,
            BankError::RecipientNotFound => ErrorCode::RecipientNotFound,
            BankError::AmbiguousRecipient => ErrorCode::InvalidRecipient,
            BankError::AccountNotActive(_) => ErrorCode::AccountNotActive,
            BankError::RecipientNotActive => ErrorCode::RecipientNotActive,
            BankError::NotOnMainnet => ErrorCode::NotAvailableOnMainnet,
            BankError::UsernameTaken => ErrorCode::UsernameTaken,
            BankError::UsernameAlreadySet => ErrorCode::UsernameAlreadySet,
            BankError::EmailTaken => ErrorCode::EmailTaken,
            BankError::InvalidIdempotencyKey => ErrorCode::InvalidIdempotencyKey,
            BankError::LimitExceeded { .. } => ErrorCode::LimitExceeded,
            BankError::InvalidPage(_) => ErrorCode::InvalidPage,
            BankError::InvalidInvoice(_) => ErrorCode::InvalidInvoice,
            BankError::WrongNetwork { .. } => ErrorCode::WrongNetwork,
            BankError::InvoiceExpired => ErrorCode::InvoiceExpired,
            BankError::AmountMismatch(_) => ErrorCode::AmountMismatch,
            BankError::InvalidExpiry { .. } => ErrorCode::InvalidExpiry,
            BankError::InvoiceNotFound => ErrorCode::InvoiceNotFound,
            BankError::InvoiceAlreadyPaid => ErrorCode::InvoiceAlreadyPaid,
            BankError::PaymentInFlight => ErrorCode::PaymentInFlight,
            BankError::NoRoute(_) => ErrorCode::NoRoute,
            BankError::LightningUnavailable(_) => ErrorCode::LightningUnavailable,
            BankError::Lnurl(
                flash_core::lnurl::LnurlError::InvalidTarget(_) | flash_core::lnurl::LnurlError::WithdrawLink,
            ) => ErrorCode::InvalidLnurl,
            BankError::Lnurl(flash_core::lnurl::LnurlError::Unreachable(_)) => ErrorCode::LnurlUnreachable,
            BankError::Lnurl(flash_core::lnurl::LnurlError::BadResponse(_)) => ErrorCode::LnurlBadResponse,
            BankError::Lnurl(flash_core::lnurl::LnurlError::Refused(_)) => ErrorCode::LnurlRefused,
            BankError::WithdrawLinkNotFound => ErrorCode::WithdrawLinkNotFound,
            BankError::InvalidLink(_) => ErrorCode::InvalidWithdrawLink,
            BankError::Refused(_) => ErrorCode::Refused,
            BankError::InvalidInput(_) => ErrorCode::InvalidInput,
            BankError::InvalidAddress(_) => ErrorCode::InvalidAddress,
            BankError::AmountBelowDust { .. } => ErrorCode::AmountBelowDust,
            BankError::OnchainUnavailable(_) => ErrorCode::OnchainUnavailable,
            BankError::Store(_) => ErrorCode::InternalError,
        }
    }
}
