//! Request and response types of the Flash public and admin APIs, as the
//! client sees them. Enum-like response fields are kept as strings so that a
//! newer server adding a value does not break an older client.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60,
        rem % 60
    )
}

/// Converts days since 1970-01-01 into a (year, month, day) civil date.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    // Shift the epoch to 0000-03-01 so leap days fall at the end of a year,
    // then split into 400-year eras of 146 097 days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The authenticated user (`me`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Me {
    /// User id.
    pub id: String,
    /// Username, if one was set.
    pub username: Option<String>,
    /// Phone number, if the user logged in by phone.
    pub phone: Option<String>,
    /// Email, if the user has one.
    pub email: Option<EmailAddress>,
    /// The user's default account.
    pub default_account: Option<Account>,
}

/// A user's email.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmailAddress {
    /// The address.
    pub address: Option<String>,
}

/// An account and its wallets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Account id.
    pub id: String,
    /// Account level: `ZERO`, `ONE`, `TWO` or `THREE`.
    pub level: String,
    /// Id of the wallet that receives by default.
    pub default_wallet_id: String,
    /// All wallets of the account.
    #[serde(default)]
    pub wallets: Vec<Wallet>,
}

/// One wallet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Wallet {
    /// Wallet id (a UUID).
    pub id: String,
    /// `BTC` or `USD`.
    pub wallet_currency: String,
    /// Settled balance in the wallet's minor unit (sats for BTC).
    pub balance: i64,
    /// Incoming amount not yet settled.
    #[serde(default)]
    pub pending_incoming_balance: Option<i64>,
}

/// A wallet as returned by `accountDefaultWallet`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PublicWallet {
    /// Wallet id.
    pub id: String,
    /// `BTC` or `USD`.
    pub wallet_currency: String,
}

/// A page of transactions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransactionConnection {
    /// The transactions with their cursors, newest first.
    #[serde(default)]
    pub edges: Vec<TransactionEdge>,
    /// Where the next page starts.
    pub page_info: PageInfo,
}

/// One transaction and its pagination cursor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionEdge {
    /// Opaque cursor to pass as `after`.
    pub cursor: String,
    /// The transaction.
    pub node: Transaction,
}

/// Relay-style page information.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PageInfo {
    /// Whether more transactions follow.
    pub has_next_page: bool,
    /// Cursor of the last edge of this page.
    pub end_cursor: Option<String>,
}

/// One transaction of a wallet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transaction {
    /// Transaction id.
    pub id: String,
    /// When it was created.
    pub created_at: Timestamp,
    /// `SEND` or `RECEIVE`.
    pub direction: String,
    /// `SUCCESS`, `PENDING` or `FAILURE`.
    pub status: String,
    /// Optional memo.
    pub memo: Option<String>,
    /// Signed amount in the settlement currency's minor unit.
    pub settlement_amount: i64,
    /// Fee charged.
    #[serde(default)]
    pub settlement_fee: i64,
    /// `BTC` or `USD`.
    pub settlement_currency: String,
    /// How it settled.
    pub settlement_via: Option<SettlementVia>,
    /// How it started: for an on-chain transaction, the address paid.
    #[serde(default)]
    pub initiation_via: Option<InitiationVia>,
}

/// How a transaction started; `address` is only set on chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitiationVia {
    /// GraphQL type name, e.g. `InitiationViaOnChain`.
    #[serde(rename = "__typename")]
    pub typename: String,
    /// The Bitcoin address paid, for an on-chain transaction (empty when the server has none).
    #[serde(default)]
    pub address: Option<String>,
}

/// How a transaction settled; counterparty fields are only set for intraledger, the
/// transaction hash and output only on chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SettlementVia {
    /// GraphQL type name, e.g. `SettlementViaIntraLedger`.
    #[serde(rename = "__typename")]
    pub typename: String,
    /// Counterparty username, for intraledger transfers.
    #[serde(default)]
    pub counter_party_username: Option<String>,
    /// Counterparty wallet id, for intraledger transfers.
    #[serde(default)]
    pub counter_party_wallet_id: Option<String>,
    /// The Bitcoin transaction id, on chain (none until it is broadcast).
    #[serde(default)]
    pub transaction_hash: Option<String>,
    /// The output of that transaction, on chain.
    #[serde(default)]
    pub vout: Option<i64>,
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

/// Result of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
        self.transaction.as_ref().and_then(|t| t.settlement_fee)
    }

    /// What the transaction sent to the payee, in sats: what left the wallet less the fee.
    pub fn amount_sent(&self) -> Option<i64> {
        let tx = self.transaction.as_ref()?;
        let total = tx.settlement_amount?.checked_abs()?;
        Some(total.saturating_sub(tx.settlement_fee.unwrap_or(0)))
    }

    /// Whether the payment went through or may still (`SUCCESS`, `PENDING`, `ALREADY_PAID`).
    pub fn is_ok(&self) -> bool {
        matches!(self.status.as_str(), "SUCCESS" | "PENDING" | "ALREADY_PAID")
    }
}

/// The payer's side of a payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentTransaction {
    /// Transaction id.
    pub id: String,
    /// `SUCCESS`, `PENDING` or `FAILURE`.
    #[serde(default)]
    pub status: Option<String>,
    /// `SEND` or `RECEIVE`.
    #[serde(default)]
    pub direction: Option<String>,
    /// Signed change to the wallet, fee included.
    #[serde(default)]
    pub settlement_amount: Option<i64>,
    /// Fee charged.
    #[serde(default)]
    pub settlement_fee: Option<i64>,
    /// `BTC` or `USD`.
    #[serde(default)]
    pub settlement_currency: Option<String>,
    /// Memo.
    #[serde(default)]
    pub memo: Option<String>,
}

/// An object of which only the id was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdOnly {
    /// The id.
    pub id: String,
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

/// A Lightning invoice this bank issued.
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

/// The payment status of an invoice this bank issued.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoicePaymentStatus {
    /// `PENDING`, `PAID` or `EXPIRED`.
    pub status: String,
    /// Payment hash.
    #[serde(default)]
    pub payment_hash: Option<String>,
    /// The invoice.
    #[serde(default)]
    pub payment_request: Option<String>,
}

/// Admin: the Lightning node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LightningNode {
    /// Public key.
    pub pubkey: String,
    /// Alias.
    pub alias: String,
    /// Network, e.g. `regtest`.
    pub network: String,
    /// Best block known.
    pub block_height: i64,
    /// Synced to the chain.
    pub synced: bool,
    /// True for the dev simulator.
    pub simulated: bool,
    /// Channels.
    #[serde(default)]
    pub channels: Vec<LightningChannel>,
}

/// Admin: one channel of the node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LightningChannel {
    /// Channel id.
    pub id: String,
    /// Peer public key.
    pub peer: String,
    /// Capacity, sats.
    pub capacity: i64,
    /// Our side, sats.
    pub local_balance: i64,
    /// Their side, sats.
    pub remote_balance: i64,
    /// Usable now.
    pub active: bool,
}

/// Admin: the liquidity manager's view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LightningLiquidity {
    /// Whether the latest check found everything within policy (`None` before the first).
    pub in_policy: Option<bool>,
    /// When the latest check ran.
    pub checked_at: Option<Timestamp>,
    /// Usable channels.
    pub active_channels: i64,
    /// What the node can send, sats.
    pub outbound: i64,
    /// What it can receive, sats.
    pub inbound: i64,
    /// Outbound share of capacity, percent.
    pub outbound_percent: i64,
    /// Inbound share of capacity, percent.
    pub inbound_percent: i64,
    /// Confirmed on-chain funds, sats, if the node tells.
    pub onchain: Option<i64>,
    /// Codes of what is out of policy, e.g. `OUTBOUND_LOW`.
    #[serde(default)]
    pub issues: Vec<String>,
    /// The policy's minimum outbound share, percent.
    pub min_outbound_percent: i64,
    /// The policy's minimum inbound share, percent.
    pub min_inbound_percent: i64,
    /// Recent actions, newest first.
    #[serde(default)]
    pub actions: Vec<LiquidityAction>,
}

/// Admin: one action of the liquidity manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LiquidityAction {
    /// `ALERT` or `CHANNEL_OPEN`.
    pub kind: String,
    /// The peer of a channel open.
    pub peer: Option<String>,
    /// The channel's size, sats.
    pub amount: i64,
    /// Whether it worked.
    pub ok: bool,
    /// In words.
    pub detail: String,
    /// When.
    pub created_at: Timestamp,
}

/// Admin: what a Lightning reconciliation pass did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LightningReconcile {
    /// Pending payments looked at.
    pub checked: i64,
    /// Settled.
    pub succeeded: i64,
    /// Reversed.
    pub failed: i64,
    /// Still pending.
    pub pending: i64,
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

/// Admin: the hot wallet and what is on its way in and out (`onchainStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnchainStatus {
    /// The chain backend: `dev`, `bitcoind` or `electrum`.
    pub source: String,
    /// Confirmations a deposit needs.
    pub confirmations: i64,
    /// The chain tip as of the watcher's last pass.
    pub tip_height: Option<i64>,
    /// The hot wallet's confirmed coins, sats.
    pub hot_balance: Option<i64>,
    /// What its unconfirmed transactions add or take, sats.
    pub hot_unconfirmed: Option<i64>,
    /// Deposits seen, not yet credited.
    pub pending_deposits: i64,
    /// Their sats.
    pub pending_deposit_amount: i64,
    /// Payouts held, not yet broadcast.
    pub queued_payouts: i64,
    /// Their sats.
    pub queued_payout_amount: i64,
}

/// Admin: a payout in the queue (`onchainPayoutQueue`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnchainPayout {
    /// Its id.
    pub id: String,
    /// The paying wallet.
    pub wallet_id: String,
    /// Where to.
    pub address: String,
    /// How much, sats.
    pub amount: i64,
    /// The most of the fee the wallet pays, sats.
    pub fee_reserved: i64,
    /// `batch` or `immediate`.
    pub speed: String,
    /// `queued`, `batched`, `sent` or `failed`.
    pub status: String,
    /// Its batch.
    pub batch_id: Option<String>,
    /// When it was queued.
    pub created_at: Timestamp,
}

/// Admin: a payout transaction (`onchainBatches`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnchainBatch {
    /// Its id.
    pub id: String,
    /// Its txid.
    pub tx_hash: String,
    /// `signed`, `broadcast`, `confirmed`, `replaced` or `failed`.
    pub status: String,
    /// The fee it pays, sats.
    pub fee: i64,
    /// Its size, virtual bytes.
    pub vsize: i64,
    /// Its fee rate, sats per 1,000 vbytes.
    pub fee_rate: i64,
    /// The transaction it replaces (a fee bump).
    pub replaces: Option<String>,
    /// The block that confirmed it.
    pub confirmed_height: Option<i64>,
    /// Why the network refused it.
    pub failure: Option<String>,
    /// When it was signed.
    pub created_at: Timestamp,
}

/// Admin: a deposit under review (`onchainReviews`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnchainReview {
    /// `txid:vout`.
    pub outpoint: String,
    /// The wallet it was credited to.
    pub wallet_id: String,
    /// The wallet's account.
    pub account_id: String,
    /// The output's value.
    pub amount: i64,
    /// What was credited.
    pub credited: i64,
    /// What the review's hold still holds.
    pub held: i64,
    /// Why it is under review.
    pub reason: Option<String>,
}

/// Admin: what `onchainReviewReclaim` took back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnchainReclaim {
    /// Taken back from the wallet.
    pub reclaimed: i64,
    /// Already spent: the bank's loss.
    pub shortfall: i64,
}

/// Admin: what `onchainPayoutBatchNow` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OnchainBatchNow {
    /// Transactions broadcast.
    pub broadcast: i64,
    /// Payouts whose holds settled.
    pub settled: i64,
}

/// Admin: cold storage (`coldStorage`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColdStorage {
    /// Whether the server has a cold wallet (`[onchain.cold]`).
    pub configured: bool,
    /// Its confirmed coins, sats.
    pub confirmed_balance: Option<i64>,
    /// Its unconfirmed incoming coins, sats.
    pub unconfirmed_balance: Option<i64>,
    /// Above this confirmed hot balance the excess is swept to cold, sats.
    pub max_hot_balance: Option<i64>,
    /// What a sweep leaves in the hot wallet, sats.
    pub min_hot_balance: Option<i64>,
    /// Smaller sweeps are skipped, sats.
    pub min_rebalance: Option<i64>,
    /// The latest sweeps, newest first.
    #[serde(default)]
    pub sweeps: Vec<ColdSweep>,
}

/// Admin: a move between the hot wallet and cold storage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ColdSweep {
    /// Its id (what `flash admin cold psbt finalize-broadcast --sweep` takes).
    pub id: String,
    /// `to_cold` or `to_hot`.
    pub direction: String,
    /// Where the coins go.
    pub address: String,
    /// How much arrives there, sats.
    pub amount: i64,
    /// Its mining fee, sats.
    pub fee: i64,
    /// `awaiting_signatures`, `signed`, `broadcast`, `confirmed` or `failed` (a cold → hot
    /// PSBT the operator cancelled is `failed`).
    pub status: String,
    /// Its transaction, once signed.
    pub tx_hash: Option<String>,
    /// The PSBT the cosigners sign (cold → hot, while awaiting signatures), base64.
    pub psbt: Option<String>,
    /// When it was made.
    pub created_at: Timestamp,
}

/// A Cashu token of this bank's mint, made from wallet balance (`ecashMint`).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// What redeeming a Cashu token into a wallet credited (`ecashRedeem`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcashRedeemed {
    /// Sats credited: the token's value less the mint's input fee.
    pub amount: i64,
    /// The mint's input fee, sats.
    pub fee: i64,
}

/// Admin: a keyset of the mint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcashKeyset {
    /// Its NUT-02 id.
    pub id: String,
    /// Its unit (`sat`).
    pub unit: String,
    /// Whether it signs new notes (older keysets stay redeemable).
    pub active: bool,
    /// Fee per input, parts per thousand of a sat.
    pub input_fee_ppk: i64,
}

/// Admin: the mint's books, its notes against the ledger (`ecashStatus`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EcashStatus {
    /// Sats of every note signed.
    pub issued: i64,
    /// Sats of notes spent.
    pub spent: i64,
    /// Sats of notes pending in melts.
    pub pending: i64,
    /// Sats of notes in circulation and not pending in a melt (issued − spent − pending).
    pub outstanding: i64,
    /// The ledger's `mint:outstanding`, sats.
    pub ledger_outstanding: i64,
    /// Sats of mint quotes paid and not yet issued.
    pub quotes_paid: i64,
    /// The ledger's `mint:quotes`, sats.
    pub ledger_quotes: i64,
    /// Whether the notes and the ledger agree.
    pub balanced: bool,
    /// Every keyset, oldest first.
    #[serde(default)]
    pub keysets: Vec<EcashKeyset>,
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

/// An API key (never includes the secret).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKey {
    /// Key id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Granted scopes, e.g. `READ`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Creation time.
    #[serde(default)]
    pub created_at: Option<Timestamp>,
    /// Expiry time, if any.
    #[serde(default)]
    pub expires_at: Option<Timestamp>,
    /// Whether the key was revoked (only in listings).
    #[serde(default)]
    pub revoked: Option<bool>,
    /// Last use, if known (only in listings).
    #[serde(default)]
    pub last_used_at: Option<Timestamp>,
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

/// Result of revoking an API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevokedApiKey {
    /// Key id.
    pub id: String,
    /// Should be `true`.
    pub revoked: bool,
}

/// A user after a username change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserSummary {
    /// User id.
    pub id: String,
    /// The new username.
    pub username: Option<String>,
}

/// A user after linking a NOSTR key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserNpub {
    /// User id.
    pub id: String,
    /// The username, if set.
    pub username: Option<String>,
    /// The linked key, `npub1…`.
    pub npub: Option<String>,
}

/// Admin: result of a ledger verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LedgerVerification {
    /// Whether every check passed.
    pub ok: bool,
    /// Sum of all entries per currency (zero when balanced).
    #[serde(default)]
    pub currencies: Vec<CurrencyTotal>,
    /// Number of ledger accounts checked.
    #[serde(default)]
    pub accounts_checked: i64,
    /// Number of journals checked.
    #[serde(default)]
    pub journals_checked: i64,
    /// Human-readable descriptions of each problem found.
    #[serde(default)]
    pub problems: Vec<Value>,
}

/// Admin: a per-currency ledger total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrencyTotal {
    /// Currency code.
    pub currency: String,
    /// Sum of entries.
    pub total: i64,
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

/// Admin: an account after a level or status change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountDetails {
    /// Account id.
    pub id: String,
    /// Level, e.g. `ONE`.
    pub level: String,
    /// Status, e.g. `ACTIVE`.
    pub status: String,
}

/// Admin: a ledger journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Journal {
    /// Journal id.
    pub id: String,
    /// What kind of movement it records.
    pub kind: String,
    /// Optional memo.
    pub memo: Option<String>,
    /// When it was posted.
    pub created_at: Timestamp,
    /// Its entries (they sum to zero per currency).
    #[serde(default)]
    pub entries: Vec<JournalEntry>,
}

/// Admin: one entry of a journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Ledger account id.
    pub account_id: String,
    /// Currency code.
    pub currency: String,
    /// Signed amount.
    pub amount: i64,
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

/// A wallet connection (Nostr Wallet Connect).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NwcConnection {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// The wallet it uses.
    pub wallet_id: String,
    /// Methods it may call.
    #[serde(default)]
    pub methods: Vec<String>,
    /// Budget per period, sats.
    pub budget_sats: Option<i64>,
    /// The budget period, as the server names it.
    pub budget_period: String,
    /// Spent in the current period, sats.
    #[serde(default)]
    pub spent_sats: i64,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Created.
    pub created_at: Option<Timestamp>,
    /// Revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Its last request.
    pub last_used_at: Option<Timestamp>,
}

/// A new wallet connection and its `nostr+walletconnect://` URI, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// A merchant store (served under `/api/v1/stores`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantStore {
    /// Its id (the Greenfield `storeId`).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its default currency.
    pub default_currency: String,
    /// Whether it is archived.
    #[serde(default)]
    pub archived: bool,
}

/// A Greenfield API key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MerchantApiKey {
    /// Its id (to revoke it).
    pub id: String,
    /// What it is for.
    pub label: String,
    /// BTCPay permission strings.
    #[serde(default)]
    pub permissions: Vec<String>,
    /// Created.
    pub created_at: Option<Timestamp>,
}

/// A new Greenfield API key and its secret, shown once.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// An LNURL-withdraw link (LUD-03).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WithdrawLink {
    /// Its id.
    pub id: String,
    /// The wallet it pays from.
    pub wallet_id: String,
    /// Shown to whoever withdraws.
    #[serde(default)]
    pub title: String,
    /// Smallest withdrawal, sats.
    pub min_amount: i64,
    /// Largest withdrawal per use, sats.
    pub max_amount: i64,
    /// Withdrawals allowed in all.
    pub uses_total: i64,
    /// Withdrawals left.
    pub uses_left: i64,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Whether it was revoked.
    #[serde(default)]
    pub revoked: bool,
    /// Created.
    pub created_at: Option<Timestamp>,
}

/// A new withdraw link and its LNURL, shown once (only a hash of its secret is kept).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// A rewards program.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RewardProgram {
    /// Its id.
    pub id: String,
    /// The store whose purchases it rewards.
    pub store_id: Option<String>,
    /// Its name.
    pub name: String,
    /// `ACTIVE` or `ENDED`.
    pub status: String,
    /// Its budget, sats.
    pub budget: i64,
    /// Granted so far, sats.
    pub granted: i64,
    /// Left to grant, sats.
    pub left: i64,
    /// What its budget wallet holds, sats.
    pub held: i64,
    /// Given back to the store's wallet, sats.
    pub returned: i64,
    /// Grants made.
    pub grants: i64,
    /// Cashback rate, basis points.
    pub rate_basis_points: Option<i64>,
    /// A fixed reward, sats.
    pub fixed: Option<i64>,
    /// Only purchases paid with a Flash Card.
    pub card_only: bool,
    /// The smallest purchase rewarded, sats.
    pub min_purchase: i64,
    /// The smallest reward, sats.
    pub min_reward: i64,
    /// The largest reward, sats.
    pub max_reward: Option<i64>,
    /// The most one customer gets, sats.
    pub customer_cap: Option<i64>,
    /// The least time between one customer's rewards, seconds.
    pub cooldown_seconds: Option<i64>,
    /// How long a claim link may be claimed, days.
    pub claim_days: i64,
    /// When it starts.
    pub starts_at: Option<Timestamp>,
    /// When it ends.
    pub ends_at: Option<Timestamp>,
    /// Created.
    pub created_at: Option<Timestamp>,
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

/// A Flash Card (a Bolt Card spending from one of the owner's wallets).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Card {
    /// Its id.
    pub id: String,
    /// What the owner calls it.
    pub name: String,
    /// The wallet it spends from.
    pub wallet_id: String,
    /// `programming`, `active`, `disabled` or `wiped`.
    pub state: String,
    /// How many times this physical card was programmed before.
    pub key_version: i64,
    /// The counter of its last accepted tap.
    pub counter: i64,
    /// Most one tap may spend, sats.
    pub tap_limit: i64,
    /// Most it may spend in any 24 hours, sats.
    pub day_limit: i64,
    /// Created.
    pub created_at: Option<Timestamp>,
    /// Withdrawals of this much or more need the card's PIN, sats (none: it has no PIN).
    #[serde(default)]
    pub pin_limit: Option<i64>,
    /// Wrong PINs since the last right one (three disable the card).
    #[serde(default)]
    pub pin_failures: i64,
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
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// One of the user's contacts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// The contact's username.
    pub username: String,
    /// The user's name for them.
    pub alias: Option<String>,
    /// Transactions with them.
    #[serde(default)]
    pub transactions_count: i64,
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
        // An older server's `transaction { id }` still decodes.
        let bare: Result<PaymentResult, _> =
            serde_json::from_value(json!({"status": "PENDING", "transaction": {"id": "t2"}}));
        let bare = bare.map_err(|e| e.to_string());
        assert_eq!(
            bare.as_ref().map(|r| (r.fee(), r.amount_sent(), r.is_ok())),
            Ok((None, None, true))
        );
        let failed: Result<PaymentResult, _> = serde_json::from_value(json!({
            "status": "FAILURE", "transaction": null,
            "errors": [{"message": "no route", "code": "PAYMENT_FAILED"}]
        }));
        let failed = failed.map_err(|e| e.to_string());
        assert_eq!(failed.as_ref().map(PaymentResult::is_ok), Ok(false));
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
                "counterPartyUsername": "bob", "counterPartyWalletId": "w2"}
        });
        let t: Result<Transaction, _> = serde_json::from_value(v);
        let t = t.map_err(|e| e.to_string());
        assert_eq!(
            t.map(|t| (t.created_at, t.settlement_via.map(|s| s.counter_party_username))),
            Ok((Timestamp::Secs(1_700_000_000), Some(Some("bob".into()))))
        );
    }
}
