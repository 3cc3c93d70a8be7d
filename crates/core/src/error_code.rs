//! The API's error codes: one closed list of the stable, machine-readable codes clients see
//! (`extensions.code` in GraphQL, `error.code` in REST). Every library's error maps onto it;
//! `api` maps each code to an HTTP status. A code is never renamed or reused for another
//! meaning; `docs/api.md` lists them all, and a test in `api` holds the two lists equal.

use std::fmt;

/// Declares the codes once: the variant, its wire form, and the list of all of them.
macro_rules! error_codes {
    ($($(#[$doc:meta])* $variant:ident = $wire:literal,)+) => {
        /// A stable error code, as clients see it.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ErrorCode {
            $($(#[$doc])* $variant,)+
        }

        impl ErrorCode {
            /// Every code, in declaration order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The code as sent on the wire (`UPPER_SNAKE_CASE`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(ErrorCode::$variant => $wire,)+
                }
            }
        }
    };
}

error_codes! {
    // Input.
    /// Malformed or unacceptable input (control characters, bad JSON, a field out of range).
    InvalidInput = "INVALID_INPUT",
    /// Not a phone number in E.164 form.
    InvalidPhone = "INVALID_PHONE",
    /// Not an e-mail address.
    InvalidEmail = "INVALID_EMAIL",
    /// Not an acceptable username.
    InvalidUsername = "INVALID_USERNAME",
    /// Not a positive amount within bounds.
    InvalidAmount = "INVALID_AMOUNT",
    /// A memo longer than allowed.
    MemoTooLong = "MEMO_TOO_LONG",
    /// Not a valid account level.
    InvalidLevel = "INVALID_LEVEL",
    /// Not a valid account status.
    InvalidStatus = "INVALID_STATUS",
    /// An idempotency key of the wrong shape.
    InvalidIdempotencyKey = "INVALID_IDEMPOTENCY_KEY",
    /// A recipient that names nothing, or more than one thing.
    InvalidRecipient = "INVALID_RECIPIENT",
    /// A history cursor or page size that cannot be used.
    InvalidPage = "INVALID_PAGE",
    /// A GraphQL document too large or too deep once its fragments are expanded.
    QueryTooComplex = "QUERY_TOO_COMPLEX",
    /// A request that ran past its time limit.
    Timeout = "TIMEOUT",

    // Accounts and wallets.
    /// No such wallet (or not the caller's).
    WalletNotFound = "WALLET_NOT_FOUND",
    /// No such account.
    AccountNotFound = "ACCOUNT_NOT_FOUND",
    /// No such recipient.
    RecipientNotFound = "RECIPIENT_NOT_FOUND",
    /// A payment from a wallet to itself.
    SelfPayment = "SELF_PAYMENT",
    /// The caller's account is locked or closed.
    AccountNotActive = "ACCOUNT_NOT_ACTIVE",
    /// The recipient's account is locked or closed.
    RecipientNotActive = "RECIPIENT_NOT_ACTIVE",
    /// The wallet holds less than the payment needs.
    InsufficientBalance = "INSUFFICIENT_BALANCE",
    /// A rolling limit of the account's level would be exceeded.
    LimitExceeded = "LIMIT_EXCEEDED",
    /// The idempotency key was used for a different request.
    IdempotencyKeyReused = "IDEMPOTENCY_KEY_REUSED",
    /// Two amounts of different currencies met.
    CurrencyMismatch = "CURRENCY_MISMATCH",
    /// The username belongs to someone else.
    UsernameTaken = "USERNAME_TAKEN",
    /// The account already has a username.
    UsernameAlreadySet = "USERNAME_ALREADY_SET",
    /// The e-mail address belongs to another account.
    EmailTaken = "EMAIL_TAKEN",
    /// A dev-only feature asked of a mainnet server.
    NotAvailableOnMainnet = "NOT_AVAILABLE_ON_MAINNET",
    /// The thing named does not exist here.
    NotFound = "NOT_FOUND",

    // Holds (operator and internal paths).
    /// No such hold.
    HoldNotFound = "HOLD_NOT_FOUND",
    /// A hold with this id already exists.
    HoldExists = "HOLD_EXISTS",
    /// The hold was already settled or reversed.
    HoldClosed = "HOLD_CLOSED",
    /// A settlement larger than the hold.
    HoldExceeded = "HOLD_EXCEEDED",

    // Authentication.
    /// A wrong login code.
    InvalidCode = "INVALID_CODE",
    /// The login code expired.
    CodeExpired = "CODE_EXPIRED",
    /// Too many wrong codes for this identifier.
    TooManyAttempts = "TOO_MANY_ATTEMPTS",
    /// Too many requests: retry after `retryAfterSecs`.
    RateLimited = "RATE_LIMITED",
    /// No valid credentials.
    Unauthenticated = "UNAUTHENTICATED",
    /// The session expired.
    TokenExpired = "TOKEN_EXPIRED",
    /// The session or key was revoked.
    TokenRevoked = "TOKEN_REVOKED",
    /// The API key may not be used from this address.
    IpNotAllowed = "IP_NOT_ALLOWED",
    /// The credentials lack the scope the operation needs.
    ForbiddenScope = "FORBIDDEN_SCOPE",
    /// An API key request that cannot be granted as asked.
    InvalidApiKeyRequest = "INVALID_API_KEY_REQUEST",
    /// The account has as many API keys as allowed.
    ApiKeyLimit = "API_KEY_LIMIT",
    /// No such API key.
    ApiKeyNotFound = "API_KEY_NOT_FOUND",
    /// The login code could not be delivered.
    CodeDeliveryFailed = "CODE_DELIVERY_FAILED",

    // Lightning.
    /// Not a valid BOLT11 invoice.
    InvalidInvoice = "INVALID_INVOICE",
    /// An invoice or address of another network.
    WrongNetwork = "WRONG_NETWORK",
    /// The invoice expired.
    InvoiceExpired = "INVOICE_EXPIRED",
    /// The amount given disagrees with the invoice's.
    AmountMismatch = "AMOUNT_MISMATCH",
    /// An invoice expiry out of bounds.
    InvalidExpiry = "INVALID_EXPIRY",
    /// No such invoice.
    InvoiceNotFound = "INVOICE_NOT_FOUND",
    /// The invoice is already paid.
    InvoiceAlreadyPaid = "INVOICE_ALREADY_PAID",
    /// A payment of this invoice is already under way.
    PaymentInFlight = "PAYMENT_IN_FLIGHT",
    /// The node found no route.
    NoRoute = "NO_ROUTE",
    /// The payment failed.
    PaymentFailed = "PAYMENT_FAILED",
    /// Lightning is off or the node cannot be reached.
    LightningUnavailable = "LIGHTNING_UNAVAILABLE",
    /// Not a usable LNURL or Lightning address.
    InvalidLnurl = "INVALID_LNURL",
    /// The LNURL service could not be reached.
    LnurlUnreachable = "LNURL_UNREACHABLE",
    /// The LNURL service answered something unusable.
    LnurlBadResponse = "LNURL_BAD_RESPONSE",
    /// The LNURL service refused.
    LnurlRefused = "LNURL_REFUSED",
    /// No such withdraw link.
    WithdrawLinkNotFound = "WITHDRAW_LINK_NOT_FOUND",
    /// A withdraw link that cannot be used as asked.
    InvalidWithdrawLink = "INVALID_WITHDRAW_LINK",
    /// A condition checked as the money moved did not hold (e.g. a used-up link).
    Refused = "REFUSED",

    // On-chain.
    /// Not an address of this network.
    InvalidAddress = "INVALID_ADDRESS",
    /// An amount below the dust limit.
    AmountBelowDust = "AMOUNT_BELOW_DUST",
    /// The on-chain wallet is off or the chain cannot be reached.
    OnchainUnavailable = "ONCHAIN_UNAVAILABLE",

    // NOSTR.
    /// Not a NOSTR public key (npub or hex).
    InvalidNpub = "INVALID_NPUB",
    /// The NOSTR key is linked to another user.
    NpubNotAvailable = "NPUB_NOT_AVAILABLE",
    /// The paid relay cannot sell admission now.
    AdmissionUnavailable = "ADMISSION_UNAVAILABLE",

    // Ecash.
    /// A proof that does not verify.
    EcashProofInvalid = "ECASH_PROOF_INVALID",
    /// A proof already spent.
    EcashAlreadySpent = "ECASH_ALREADY_SPENT",
    /// A proof held by a pending operation.
    EcashPending = "ECASH_PENDING",
    /// Outputs already signed.
    EcashOutputsSigned = "ECASH_OUTPUTS_SIGNED",
    /// Inputs and outputs (with fees) do not balance.
    EcashUnbalanced = "ECASH_UNBALANCED",
    /// An amount outside the mint's range.
    EcashAmountOutOfRange = "ECASH_AMOUNT_OUT_OF_RANGE",
    /// The same input or output twice.
    EcashDuplicate = "ECASH_DUPLICATE",
    /// A unit the mint does not serve.
    EcashUnitNotSupported = "ECASH_UNIT_NOT_SUPPORTED",
    /// The amount disagrees with the quote or invoice.
    EcashAmountMismatch = "ECASH_AMOUNT_MISMATCH",
    /// More inputs or outputs than allowed.
    EcashTooLarge = "ECASH_TOO_LARGE",
    /// An unknown or inactive keyset.
    EcashKeyset = "ECASH_KEYSET",
    /// The mint quote is not paid.
    EcashQuoteUnpaid = "ECASH_QUOTE_UNPAID",
    /// The mint quote was already issued.
    EcashQuoteIssued = "ECASH_QUOTE_ISSUED",
    /// The quote is being paid.
    EcashQuotePending = "ECASH_QUOTE_PENDING",
    /// The quote expired.
    EcashQuoteExpired = "ECASH_QUOTE_EXPIRED",
    /// No such quote.
    EcashQuoteNotFound = "ECASH_QUOTE_NOT_FOUND",
    /// A mint request signature (NUT-20) that does not verify.
    EcashSignatureInvalid = "ECASH_SIGNATURE_INVALID",
    /// Minting or melting is off.
    EcashDisabled = "ECASH_DISABLED",
    /// The melt's payment failed.
    EcashPaymentFailed = "ECASH_PAYMENT_FAILED",
    /// Not an ISO 4217 currency code, or one no price source prices.
    InvalidCurrency = "INVALID_CURRENCY",
    /// No fresh price could be had from the price source; try again later.
    PriceUnavailable = "PRICE_UNAVAILABLE",

    // Faults.
    /// Something failed on the server; details only in its log.
    InternalError = "INTERNAL_ERROR",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_upper_snake_case() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            let wire = code.as_str();
            assert!(seen.insert(wire), "{wire} twice");
            assert!(
                wire.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{wire} is not UPPER_SNAKE_CASE"
            );
        }
    }
}
