//! Request and response types of the Flash public and admin APIs, as the client sees them.
//!
//! The response types are graphql_client's, generated from the documents in
//! `crates/sdk/graphql` ([`crate::ops`]); the names here are the SDK's for them. What stays
//! hand-written is what is not a GraphQL response: the requests the CLI builds, the enums it
//! parses from arguments, the [`Timestamp`] scalar, and the SDK's readings of a payload
//! ([`PaymentResult`], [`LnInvoice`]) or of a secret the server shows once (whose `Debug`
//! must not print it). Enum-like response fields are kept as the server's text so that a
//! newer server adding a value does not break an older client.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ops;

pub use flash_core::destination::{
    looks_like_base58_address, parse_btc_amount, parse_invoice_arg, parse_onchain_address, Destination,
    DestinationError, PaymentTarget, PaymentUri,
};

/// A timestamp as sent by the server: Unix seconds, or (tolerated) a string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    /// Seconds since the Unix epoch.
    Secs(i64),
    /// Any other textual representation.
    Text(String),
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Timestamp::Secs(s) => f.write_str(&format_unix_secs(*s)),
            Timestamp::Text(t) => f.write_str(t),
        }
    }
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS UTC` (proleptic Gregorian).
pub fn format_unix_secs(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = flash_core::calendar::civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// The authenticated user (`me`).
pub type Me = ops::me::MeMe;
/// A user's e-mail.
pub type EmailAddress = ops::me::MeMeEmail;
/// An account and its wallets.
pub type Account = ops::me::MeMeDefaultAccount;
/// One wallet of an account.
pub type Wallet = ops::me::MeMeDefaultAccountWallets;
/// A wallet as returned by `accountDefaultWallet`.
pub type PublicWallet = ops::account_default_wallet::AccountDefaultWalletAccountDefaultWallet;
/// A page of transactions.
pub type TransactionConnection = ops::transactions::TransactionsMeDefaultAccountTransactions;
/// One transaction and its pagination cursor.
pub type TransactionEdge = ops::transactions::TransactionsMeDefaultAccountTransactionsEdges;
/// Relay-style page information.
pub type PageInfo = ops::transactions::TransactionsMeDefaultAccountTransactionsPageInfo;
/// One transaction of a wallet.
pub type Transaction = ops::transactions::TransactionsMeDefaultAccountTransactionsEdgesNode;
/// How a transaction settled (its `__typename` and that type's fields).
pub type SettlementVia = ops::transactions::TransactionsMeDefaultAccountTransactionsEdgesNodeSettlementVia;
/// How a transaction started (its `__typename`; the address paid on chain).
pub type InitiationVia = ops::transactions::TransactionsMeDefaultAccountTransactionsEdgesNodeInitiationVia;
/// The payer's side of a payment.
pub type PaymentTransaction = ops::payment_send::PaymentTransactionFields;
/// An API key (never includes the secret).
pub type ApiKey = ops::api_keys::ApiKeyFields;
/// Result of revoking an API key.
pub type RevokedApiKey = ops::api_key_revoke::ApiKeyRevokeApiKeyRevokeApiKey;
/// A user after a username change.
pub type UserSummary = ops::user_update_username::UserUpdateUsernameUserUpdateUsernameUser;
/// A user after linking a NOSTR key.
pub type UserNpub = ops::user_update_npub::UserUpdateNpubUserUpdateNpubUser;
/// A wallet connection (Nostr Wallet Connect).
pub type NwcConnection = ops::nwc_connections::NwcConnectionFields;
/// A merchant store (served under `/api/v1/stores`).
pub type MerchantStore = ops::merchant_stores::MerchantStoreFields;
/// A Greenfield API key.
pub type MerchantApiKey = ops::merchant_api_keys::MerchantApiKeyFields;
/// An LNURL-withdraw link (LUD-03).
pub type WithdrawLink = ops::lnurl_withdraw_links::WithdrawLinkFields;
/// A rewards program.
pub type RewardProgram = ops::reward_programs::RewardProgramFields;
/// A Flash Card (a Bolt Card spending from one of the owner's wallets).
pub type Card = ops::cards::CardFields;
/// One of the user's contacts.
pub type Contact = ops::contacts::ContactFields;
/// Admin: result of a ledger verification.
pub type LedgerVerification = ops::ledger_verify::LedgerVerifyLedgerVerify;
/// Admin: a per-currency ledger total.
pub type CurrencyTotal = ops::ledger_verify::LedgerVerifyLedgerVerifyCurrencies;
/// Admin: the transaction a wallet funding recorded.
pub type FundTransaction = ops::wallet_fund::WalletFundWalletFundTransaction;
/// Admin: an account after a level or status change.
pub type AccountDetails = ops::account_update_level::AccountDetailsFields;
/// Admin: a ledger journal.
pub type Journal = ops::journal::JournalJournal;
/// Admin: one entry of a journal.
pub type JournalEntry = ops::journal::JournalJournalEntries;
/// Admin: the Lightning node.
pub type LightningNode = ops::lightning_node::LightningNodeLightningNode;
/// Admin: one channel of the node.
pub type LightningChannel = ops::lightning_node::LightningNodeLightningNodeChannels;
/// Admin: the liquidity manager's view.
pub type LightningLiquidity = ops::lightning_liquidity::LiquidityFields;
/// Admin: one action of the liquidity manager.
pub type LiquidityAction = ops::lightning_liquidity::LiquidityActionFields;
/// Admin: what a Lightning reconciliation pass did.
pub type LightningReconcile = ops::lightning_reconcile::ReconcileFields;
/// Admin: the hot wallet and what is on its way in and out (`onchainStatus`).
pub type OnchainStatus = ops::onchain_status::OnchainStatusOnchainStatus;
/// Admin: a payout in the queue (`onchainPayoutQueue`).
pub type OnchainPayout = ops::onchain_payout_queue::OnchainPayoutQueueOnchainPayoutQueue;
/// Admin: a payout transaction (`onchainBatches`).
pub type OnchainBatch = ops::onchain_batches::OnchainBatchesOnchainBatches;
/// Admin: a deposit under review (`onchainReviews`).
pub type OnchainReview = ops::onchain_reviews::OnchainReviewsOnchainReviews;
/// Admin: what `onchainPayoutBatchNow` did.
pub type OnchainBatchNow = ops::onchain_payout_batch_now::BatchNowFields;
/// Admin: cold storage (`coldStorage`).
pub type ColdStorage = ops::cold_storage::ColdStorageColdStorage;
/// Admin: a move between the hot wallet and cold storage.
pub type ColdSweep = ops::cold_storage::SweepFields;
/// Admin: the mint's books, its notes against the ledger (`ecashStatus`).
pub type EcashStatus = ops::ecash_status::EcashStatusEcashStatus;
/// Admin: a keyset of the mint.
pub type EcashKeyset = ops::ecash_status::KeysetFields;

/// The payment status of an invoice this bank issued (`lnInvoicePaymentStatus`, whose payload
/// has no status only when it has errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoicePaymentStatus {
    /// `PENDING`, `PAID` or `EXPIRED`.
    pub status: String,
    /// Payment hash.
    pub payment_hash: Option<String>,
    /// The invoice.
    pub payment_request: Option<String>,
}

/// What redeeming a Cashu token into a wallet credited (`ecashRedeem`, whose payload has no
/// amounts only when it has errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcashRedeemed {
    /// Sats credited: the token's value less the mint's input fee.
    pub amount: i64,
    /// The mint's input fee, sats.
    pub fee: i64,
}

/// Admin: what `onchainReviewReclaim` took back (its payload has no amounts only when it has
/// errors).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnchainReclaim {
    /// Taken back from the wallet.
    pub reclaimed: i64,
    /// Already spent: the bank's loss.
    pub shortfall: i64,
}

/// An intraledger payment to send (see [`SendRequest`] for every kind of destination).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequest {
    /// The paying wallet.
    pub wallet_id: String,
    /// The recipient.
    pub destination: Destination,
    /// Amount in sats.
    pub amount: u64,
    /// Optional memo.
    pub memo: Option<String>,
    /// Makes retries safe: the server pays at most once per key.
    pub idempotency_key: Option<String>,
}

/// A payment to any destination the server's `paymentSend` reads: a user or wallet of this
/// bank, an invoice, a Lightning address, an LNURL, a Bitcoin address, a BIP21 URI or a NOSTR
/// user. The server picks the rail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    /// The paying wallet.
    pub wallet_id: String,
    /// Where to, as written (see [`Destination::written`] for a typed one).
    pub destination: String,
    /// Amount in sats: required unless the destination carries its own.
    pub amount: Option<u64>,
    /// Memo for the history (sent as the payee's comment to addresses and LNURLs).
    pub memo: Option<String>,
    /// How fast an on-chain payment should confirm (`None` for the server's default, MEDIUM).
    pub speed: Option<Speed>,
    /// Makes retries safe: the server pays at most once per key.
    pub idempotency_key: Option<String>,
}

impl From<PayRequest> for SendRequest {
    fn from(r: PayRequest) -> Self {
        SendRequest {
            wallet_id: r.wallet_id,
            destination: r.destination.written(),
            amount: Some(r.amount),
            memo: r.memo,
            speed: None,
            idempotency_key: r.idempotency_key,
        }
    }
}

/// Result of a payment: a `paymentSend` (or `onChainPaymentSendAll`) payload that has a status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResult {
    /// `SUCCESS`, `FAILURE`, `PENDING` or `ALREADY_PAID`.
    pub status: String,
    /// Why it failed (a `FAILURE` status), as the server said.
    #[serde(default)]
    pub errors: Vec<crate::GraphQlError>,
    /// The payer's transaction, when one was recorded.
    pub transaction: Option<PaymentTransaction>,
}

impl PaymentResult {
    /// The fee charged (`settlementFee`), when a transaction was recorded.
    pub fn fee(&self) -> Option<i64> {
        self.transaction.as_ref().map(|t| t.settlement_fee)
    }

    /// What the transaction sent to the payee, in sats: what left the wallet less the fee.
    pub fn amount_sent(&self) -> Option<i64> {
        let tx = self.transaction.as_ref()?;
        let total = tx.settlement_amount.checked_abs()?;
        Some(total.saturating_sub(tx.settlement_fee))
    }

    /// Whether the payment went through or may still (`SUCCESS`, `PENDING`, `ALREADY_PAID`).
    pub fn is_ok(&self) -> bool {
        matches!(self.status.as_str(), "SUCCESS" | "PENDING" | "ALREADY_PAID")
    }
}

/// A Lightning invoice to create on one of the caller's wallets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceCreateRequest {
    /// The receiving wallet.
    pub wallet_id: String,
    /// Amount in sats; `None` for an invoice the payer chooses the amount of.
    pub amount: Option<u64>,
    /// Memo shown to the payer.
    pub memo: Option<String>,
    /// Minutes until it expires (`None` for the server default).
    pub expires_in_mins: Option<u32>,
}

/// A Lightning invoice this bank issued: `lnInvoiceCreate`'s `LnInvoice` or
/// `lnNoAmountInvoiceCreate`'s `LnNoAmountInvoice`, which has no amount.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LnInvoice {
    /// Payment hash, 64 hex characters.
    pub payment_hash: String,
    /// The BOLT11 text to pay.
    pub payment_request: String,
    /// `PENDING`, `PAID` or `EXPIRED`.
    pub payment_status: String,
    /// Amount in sats; `None` for a no-amount invoice.
    #[serde(default)]
    pub satoshis: Option<i64>,
    /// When it was created.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// When it expires.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
}

/// How fast an on-chain payment should confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "UPPERCASE")]
pub enum Speed {
    /// Its own transaction, now.
    Fast,
    /// The next batch (the server's default).
    Medium,
    /// The next batch.
    Slow,
}

/// A wallet's whole balance, less the fee, to send to a Bitcoin address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnchainSendAllRequest {
    /// The paying wallet.
    pub wallet_id: String,
    /// The Bitcoin address.
    pub address: String,
    /// How fast (`None` for the server's default, MEDIUM).
    pub speed: Option<Speed>,
    /// Memo for the payer's history.
    pub memo: Option<String>,
    /// Makes retries safe: the server pays at most once per key.
    pub idempotency_key: Option<String>,
}

/// A Cashu token of this bank's mint, made from wallet balance (`ecashMint`).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcashMinted {
    /// The token (`cashuB…`): whoever holds it holds the sats.
    pub token: String,
    /// Its value, sats.
    pub amount: i64,
}

impl fmt::Debug for EcashMinted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcashMinted")
            .field("token", &"<redacted>")
            .field("amount", &self.amount)
            .finish()
    }
}

/// API key scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "UPPERCASE")]
pub enum Scope {
    /// Read balances and history.
    Read,
    /// Create invoices and addresses.
    Receive,
    /// Send payments.
    Write,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            Scope::Read => "READ",
            Scope::Receive => "RECEIVE",
            Scope::Write => "WRITE",
        })
    }
}

/// Parameters of a new API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyCreateInput {
    /// Display name.
    pub name: String,
    /// Granted scopes.
    pub scopes: Vec<Scope>,
    /// Days until the key expires; `None` for the server default.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expire_in_days: Option<u32>,
    /// CIDR ranges allowed to use the key; `None` for any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ip_allowlist: Option<Vec<String>>,
}

/// A freshly created API key with its secret (shown once).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedApiKey {
    /// The key's metadata.
    pub api_key: ApiKey,
    /// The secret (`flash_...`); the server never shows it again.
    pub api_key_secret: String,
}

impl fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("api_key", &self.api_key)
            .field("api_key_secret", &"<redacted>")
            .finish()
    }
}

/// Admin: target account level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "UPPERCASE")]
pub enum AccountLevel {
    /// Level 0.
    #[cfg_attr(feature = "clap", value(name = "0", alias = "zero"))]
    Zero,
    /// Level 1.
    #[cfg_attr(feature = "clap", value(name = "1", alias = "one"))]
    One,
    /// Level 2.
    #[cfg_attr(feature = "clap", value(name = "2", alias = "two"))]
    Two,
    /// Level 3.
    #[cfg_attr(feature = "clap", value(name = "3", alias = "three"))]
    Three,
}

impl fmt::Display for AccountLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            AccountLevel::Zero => "ZERO",
            AccountLevel::One => "ONE",
            AccountLevel::Two => "TWO",
            AccountLevel::Three => "THREE",
        })
    }
}

/// Admin: target account status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "UPPERCASE")]
pub enum AccountStatus {
    /// May transact.
    Active,
    /// Frozen by an operator.
    Locked,
    /// Closed for good.
    Closed,
}

impl fmt::Display for AccountStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            AccountStatus::Active => "ACTIVE",
            AccountStatus::Locked => "LOCKED",
            AccountStatus::Closed => "CLOSED",
        })
    }
}

/// How often a wallet connection's budget starts afresh (`NwcBudgetPeriod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "clap", derive(clap::ValueEnum))]
#[serde(rename_all = "UPPERCASE")]
pub enum BudgetPeriod {
    /// Every day.
    Daily,
    /// Every week.
    Weekly,
    /// Every month (the server's default).
    Monthly,
    /// Every year.
    Yearly,
    /// Never: one budget for the connection's whole life.
    Never,
}

/// A new wallet connection to create (`nwcConnectionCreate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NwcConnectionCreateInput {
    /// What the app is.
    pub name: String,
    /// The wallet it may use (default: the account's default wallet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_id: Option<String>,
    /// The methods it may call (default: all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub methods: Option<Vec<String>>,
    /// Most sats it may spend per period, fees included (default: no budget).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_sats: Option<u64>,
    /// The budget period (default: monthly).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub budget_period: Option<BudgetPeriod>,
}

/// A new wallet connection and its `nostr+walletconnect://` URI, shown once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct NwcConnectionCreated {
    /// The connection.
    pub connection: NwcConnection,
    /// The URI to give the app: it holds the connection's secret.
    pub uri: String,
}

impl fmt::Debug for NwcConnectionCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NwcConnectionCreated")
            .field("connection", &self.connection)
            .field("uri", &"<redacted>")
            .finish()
    }
}

/// A new Greenfield API key and its secret, shown once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantApiKeyCreated {
    /// The key.
    pub api_key: MerchantApiKey,
    /// The secret, for `Authorization: token <secret>`.
    pub secret: String,
}

impl fmt::Debug for MerchantApiKeyCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MerchantApiKeyCreated")
            .field("api_key", &self.api_key)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// A new LNURL-withdraw link to create (`lnurlWithdrawCreate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawLinkCreateInput {
    /// The wallet it pays from (default: the account's default wallet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_id: Option<String>,
    /// Smallest withdrawal, sats (server default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_amount: Option<u64>,
    /// Largest withdrawal per use, sats.
    pub max_amount: u64,
    /// Withdrawals allowed (server default 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses: Option<u32>,
    /// Minutes until it stops working (default: never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u32>,
    /// Shown to whoever withdraws.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A new withdraw link and its LNURL, shown once (only a hash of its secret is kept).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct WithdrawLinkCreated {
    /// The link.
    pub link: WithdrawLink,
    /// The bech32 LNURL to share.
    pub lnurl: String,
    /// The same as a URL.
    pub url: String,
}

impl fmt::Debug for WithdrawLinkCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WithdrawLinkCreated")
            .field("link", &self.link)
            .field("lnurl", &"<redacted>")
            .finish()
    }
}

/// A new rewards program (`rewardProgramCreate`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RewardProgramCreateInput {
    /// The store whose purchases it rewards.
    pub store_id: String,
    /// What to call it.
    pub name: String,
    /// Its budget, sats.
    pub budget: u64,
    /// Cashback rate, basis points.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rate_basis_points: Option<u32>,
    /// A fixed reward per purchase, sats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fixed: Option<u64>,
    /// Only purchases paid with a Flash Card.
    pub card_only: bool,
    /// The smallest purchase rewarded, sats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_purchase: Option<u64>,
    /// The smallest reward, sats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_reward: Option<u64>,
    /// The largest reward, sats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_reward: Option<u64>,
    /// The most one customer gets, sats.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub customer_cap: Option<u64>,
    /// The least time between one customer's rewards, seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cooldown_seconds: Option<u64>,
    /// How long a claim link may be claimed, days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim_days: Option<u64>,
    /// When it ends, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<i64>,
}

/// A new Flash Card to make (`cardCreate`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CardCreateInput {
    /// What to call it, 1–64 characters.
    pub name: String,
    /// The wallet it spends from (default: the account's default wallet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wallet_id: Option<String>,
    /// Most one tap may spend, sats.
    pub tap_limit: u64,
    /// Most it may spend in any 24 hours, sats.
    pub day_limit: u64,
}

/// A change of a card's state (`cardDisable`, `cardEnable`, `cardWipe`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardStateChange {
    /// Stop it paying until it is enabled again.
    Disable,
    /// Let a disabled card pay again (refused before its first tap).
    Enable,
    /// Retire it for good.
    Wipe,
}

/// A new card and its one-time programming link, shown once (valid for an hour).
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CardCreated {
    /// The card.
    pub card: Card,
    /// The programming URL the app posts the card's UID to.
    pub program_url: String,
    /// `boltcard://program?url=…`, for the Bolt Card NFC Programmer app to scan.
    pub program_deeplink: String,
}

impl fmt::Debug for CardCreated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CardCreated")
            .field("card", &self.card)
            .field("program_url", &"<redacted>")
            .field("program_deeplink", &"<redacted>")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// `--json` output names a destination's kind and value this way (the parser is
    /// flash-core's, which has no JSON encoder to test it with).
    #[test]
    fn destinations_serialize_with_kind_and_value() {
        assert_eq!(
            json!(Destination::Username("bob".into())),
            json!({"kind": "USERNAME", "value": "bob"})
        );
        assert_eq!(
            json!(Destination::WalletId("w".into())),
            json!({"kind": "WALLET_ID", "value": "w"})
        );
        let d = Destination::Invoice("lnbc2500u1pvjluez".into());
        assert_eq!(json!(d), json!({"kind": d.kind(), "value": "lnbc2500u1pvjluez"}));
        assert_eq!(d.kind(), "LN_INVOICE");
        let d = Destination::LightningAddress("a@b.c".into());
        assert_eq!(json!(d), json!({"kind": "LN_ADDRESS", "value": "a@b.c"}));
        let d = Destination::Lnurl("lnurlp://b.c/x".into());
        assert_eq!(json!(d), json!({"kind": "LNURL", "value": "lnurlp://b.c/x"}));
        let d = Destination::OnchainAddress("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080".into());
        assert_eq!(
            json!(d),
            json!({"kind": "ONCHAIN_ADDRESS", "value": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"})
        );
    }

    #[test]
    fn payment_results_decode_with_fee_and_errors() {
        let ok: Result<PaymentResult, _> = serde_json::from_value(json!({
            "status": "SUCCESS", "errors": [],
            "transaction": {"id": "t1", "status": "SUCCESS", "direction": "SEND",
                "settlementAmount": -1_503, "settlementFee": 3, "settlementCurrency": "BTC", "memo": null}
        }));
        let ok = ok.map_err(|e| e.to_string());
        assert_eq!(ok.as_ref().map(PaymentResult::fee), Ok(Some(3)));
        assert_eq!(ok.as_ref().map(PaymentResult::amount_sent), Ok(Some(1_500)));
        assert_eq!(ok.as_ref().map(PaymentResult::is_ok), Ok(true));
        let failed: Result<PaymentResult, _> = serde_json::from_value(json!({
            "status": "FAILURE", "transaction": null,
            "errors": [{"message": "no route", "code": "PAYMENT_FAILED"}]
        }));
        let failed = failed.map_err(|e| e.to_string());
        assert_eq!(failed.as_ref().map(PaymentResult::is_ok), Ok(false));
        assert_eq!(failed.as_ref().map(|r| (r.fee(), r.amount_sent())), Ok((None, None)));
        assert_eq!(
            failed.map(|r| r.errors),
            Ok(vec![crate::GraphQlError {
                message: "no route".into(),
                code: Some("PAYMENT_FAILED".into())
            }])
        );
    }

    #[test]
    fn admin_lightning_views_decode() {
        let node: Result<LightningNode, _> = serde_json::from_value(json!({
            "pubkey": "02ab", "alias": "dev", "network": "regtest", "blockHeight": 101,
            "synced": true, "simulated": true,
            "channels": [{"id": "c1", "peer": "03cd", "capacity": 1_000_000,
                "localBalance": 600_000, "remoteBalance": 400_000, "active": true}]
        }));
        assert_eq!(node.map(|n| n.channels.len()).map_err(|e| e.to_string()), Ok(1));
        let liquidity: Result<LightningLiquidity, _> = serde_json::from_value(json!({
            "inPolicy": null, "checkedAt": null, "activeChannels": 0, "outbound": 0, "inbound": 0,
            "outboundPercent": 0, "inboundPercent": 0, "onchain": null, "issues": [],
            "minOutboundPercent": 20, "minInboundPercent": 20, "actions": []
        }));
        assert_eq!(
            liquidity
                .map(|l| (l.in_policy, l.min_inbound_percent))
                .map_err(|e| e.to_string()),
            Ok((None, 20))
        );
    }

    #[test]
    fn onchain_admin_views_decode() {
        let status: Result<OnchainStatus, _> = serde_json::from_value(json!({
            "source": "dev", "confirmations": 2, "tipHeight": 104, "hotBalance": 1_000_000,
            "hotUnconfirmed": -20_000, "pendingDeposits": 0, "pendingDepositAmount": 0,
            "queuedPayouts": 1, "queuedPayoutAmount": 20_000
        }));
        assert_eq!(
            status.map(|s| s.hot_unconfirmed).map_err(|e| e.to_string()),
            Ok(Some(-20_000))
        );
        let cold: Result<ColdStorage, _> = serde_json::from_value(json!({
            "configured": false, "confirmedBalance": null, "unconfirmedBalance": null,
            "maxHotBalance": null, "minHotBalance": null, "minRebalance": null, "sweeps": []
        }));
        assert_eq!(cold.map(|c| c.configured).map_err(|e| e.to_string()), Ok(false));
        let sweep: Result<ColdSweep, _> = serde_json::from_value(json!({
            "id": "sweep:1", "direction": "to_hot", "address": "bcrt1q", "amount": 200_000,
            "fee": 300, "status": "awaiting_signatures", "txHash": null, "psbt": "cHNidP8=",
            "createdAt": 1_700_000_000
        }));
        assert_eq!(
            sweep.map(|s| s.psbt).map_err(|e| e.to_string()),
            Ok(Some("cHNidP8=".into()))
        );
        assert_eq!(json!(Speed::Fast), json!("FAST"));
    }

    #[test]
    fn ecash_views_decode() {
        let minted: Result<EcashMinted, _> = serde_json::from_value(json!({
            "errors": [], "token": "cashuBsecret", "amount": 2_500
        }));
        let minted = minted.map_err(|e| e.to_string());
        assert_eq!(minted.as_ref().map(|m| m.amount), Ok(2_500));
        let shown = format!("{minted:?}");
        assert!(!shown.contains("cashuBsecret"), "the token is a bearer secret: {shown}");
        let redeemed: Result<EcashRedeemed, _> =
            serde_json::from_value(json!({"errors": [], "amount": 2_499, "fee": 1}));
        assert_eq!(
            redeemed.map_err(|e| e.to_string()),
            Ok(EcashRedeemed { amount: 2_499, fee: 1 })
        );
        let status: Result<EcashStatus, _> = serde_json::from_value(json!({
            "issued": 2_500, "spent": 2_500, "pending": 0, "outstanding": 0,
            "ledgerOutstanding": 0, "quotesPaid": 0, "ledgerQuotes": 0, "balanced": true,
            "keysets": [{"id": "00ad268c4d1f5826", "unit": "sat", "active": true, "inputFeePpk": 0}]
        }));
        let status = status.map_err(|e| e.to_string());
        assert_eq!(status.as_ref().map(|s| s.balanced), Ok(true));
        assert_eq!(
            status.map(|s| s.keysets),
            Ok(vec![EcashKeyset {
                id: "00ad268c4d1f5826".into(),
                unit: "sat".into(),
                active: true,
                input_fee_ppk: 0
            }])
        );
    }

    #[test]
    fn timestamps_format_as_utc() {
        assert_eq!(format_unix_secs(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(format_unix_secs(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(format_unix_secs(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(format_unix_secs(-1), "1969-12-31 23:59:59 UTC");
    }

    #[test]
    fn enums_serialize_uppercase() {
        assert_eq!(json!(Scope::Receive), json!("RECEIVE"));
        assert_eq!(json!(AccountLevel::Three), json!("THREE"));
        assert_eq!(json!(AccountStatus::Locked), json!("LOCKED"));
    }

    #[test]
    fn transaction_decodes() {
        let v = json!({
            "id": "t1", "createdAt": 1_700_000_000, "direction": "SEND", "status": "SUCCESS",
            "memo": null, "settlementAmount": -1000, "settlementFee": 0,
            "settlementCurrency": "BTC",
            "settlementVia": {"__typename": "SettlementViaIntraLedger",
                "counterPartyUsername": "bob", "counterPartyWalletId": "w2"},
            "initiationVia": {"__typename": "InitiationViaIntraLedger"}
        });
        let t: Result<Transaction, _> = serde_json::from_value(v.clone());
        let t = t.map_err(|e| e.to_string());
        let counterparty = |t: &Transaction| match &t.settlement_via {
            SettlementVia::SettlementViaIntraLedger(via) => via.counter_party_username.clone(),
            _ => None,
        };
        assert_eq!(
            t.as_ref().map(|t| (t.created_at.clone(), counterparty(t))),
            Ok((Timestamp::Secs(1_700_000_000), Some("bob".into())))
        );
        // `--json` prints it with the server's names.
        assert_eq!(t.map(|t| json!(t)), Ok(v));
    }
}
