//! Request and response types of the Flash public and admin APIs, as the
//! client sees them. Enum-like response fields are kept as strings so that a
//! newer server adding a value does not break an older client.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;

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
}

/// How a transaction settled; counterparty fields are only set for intraledger.
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
}

/// Data characters of bech32 (BOLT11 invoices and bech32 LNURLs).
const BECH32_CHARSET: &str = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";

/// Network prefixes of BOLT11 invoices, longest first: regtest, signet, mainnet, testnet.
const INVOICE_PREFIXES: [&str; 4] = ["lnbcrt", "lntbs", "lnbc", "lntb"];

/// Fewest data characters of a BOLT11 invoice: timestamp (7), signature (104), checksum (6).
const MIN_INVOICE_DATA: usize = 117;

/// Fewest data characters of a bech32 LNURL: a ten-byte URL (16) and the checksum (6).
const MIN_LNURL_DATA: usize = 22;

/// The URI scheme that may precede an invoice, an LNURL or a Lightning address.
const LIGHTNING_SCHEME: &str = "lightning:";

/// The URI scheme of an LNURL-pay link written as a URL (LUD-17).
const LNURLP_SCHEME: &str = "lnurlp://";

/// Who to pay.
///
/// Serialises as `{"kind": KIND, "value": VALUE}` with the kinds of [`Destination::kind`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "value")]
pub enum Destination {
    /// A wallet of this bank (anything that parses as a hyphenated UUID).
    #[serde(rename = "WALLET_ID")]
    WalletId(String),
    /// A username of this bank (an optional leading `@` is dropped).
    #[serde(rename = "USERNAME")]
    Username(String),
    /// A BOLT11 invoice, lowercased, without a `lightning:` prefix.
    #[serde(rename = "LN_INVOICE")]
    Invoice(String),
    /// A Lightning address `name@host`, lowercased.
    #[serde(rename = "LN_ADDRESS")]
    LightningAddress(String),
    /// An LNURL-pay link: a bech32 `lnurl1…` (lowercased) or an `lnurlp://…` URL.
    #[serde(rename = "LNURL")]
    Lnurl(String),
}

/// An invalid-input error.
fn invalid(msg: impl Into<String>) -> crate::ClientError {
    crate::ClientError::InvalidInput(msg.into())
}

/// `s` without `prefix`, compared case-insensitively (ASCII).
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

/// Whether `s` could be a username of this bank: 3 to 50 ASCII letters, digits or `_`.
fn could_be_username(s: &str) -> bool {
    (3..=50).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Shortens a long string for display: its first 24 characters and `…`.
fn abbreviate(s: &str) -> String {
    match s.char_indices().nth(24) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// Splits a bech32 string into its human-readable part and its data part, checking that it
/// is not mixed-case, that the data characters are bech32 ones and that there are at least
/// `min_data` of them. Returns the lowercased parts.
fn bech32_parts(s: &str, min_data: usize) -> Result<(String, String), String> {
    if s.bytes().any(|b| b.is_ascii_lowercase()) && s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("it mixes upper and lower case".into());
    }
    let lower = s.to_ascii_lowercase();
    let Some((hrp, data)) = lower.rsplit_once('1') else {
        return Err("it has no `1` separator".into());
    };
    if let Some(bad) = data.chars().find(|c| !BECH32_CHARSET.contains(*c)) {
        return Err(format!("`{bad}` is not a bech32 character"));
    }
    if data.len() < min_data {
        return Err("it is too short".into());
    }
    Ok((hrp.to_owned(), data.to_owned()))
}

/// Whether `hrp` is a BOLT11 human-readable part: a network prefix, then an optional amount
/// (digits with an optional `m`, `u`, `n` or `p` multiplier).
fn is_invoice_hrp(hrp: &str) -> bool {
    INVOICE_PREFIXES.iter().any(|prefix| {
        hrp.strip_prefix(prefix).is_some_and(|amount| {
            let digits = amount.strip_suffix(['m', 'u', 'n', 'p']).unwrap_or(amount);
            digits.bytes().all(|b| b.is_ascii_digit()) && (digits.len() == amount.len() || !digits.is_empty())
        })
    })
}

/// Checks the shape of a BOLT11 invoice (not its checksum or signature: the server does);
/// returns it lowercased.
fn parse_invoice(s: &str) -> Result<String, String> {
    let (hrp, data) = bech32_parts(s, MIN_INVOICE_DATA)?;
    if !is_invoice_hrp(&hrp) {
        return Err(format!(
            "`{hrp}` is not an invoice prefix (lnbc, lntb, lntbs or lnbcrt)"
        ));
    }
    Ok(format!("{hrp}1{data}"))
}

/// Checks the shape of a bech32 LNURL; returns it lowercased.
fn parse_bech32_lnurl(s: &str) -> Result<String, String> {
    let (hrp, data) = bech32_parts(s, MIN_LNURL_DATA)?;
    if hrp != "lnurl" {
        return Err(format!("`{hrp}` is not the LNURL prefix `lnurl`"));
    }
    Ok(format!("{hrp}1{data}"))
}

/// Checks the shape of a Lightning address `name@host` (LUD-16; a port is allowed in the
/// host); returns it lowercased.
fn parse_lightning_address(s: &str) -> Result<String, String> {
    let Some((name, host)) = s.split_once('@') else {
        return Err("it has no `@`".into());
    };
    let name_ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    if !name_ok {
        return Err(format!(
            "`{name}` is not a valid name (letters, digits, `-`, `_`, `.`, `+`)"
        ));
    }
    let host_ok = !host.is_empty()
        && !host.starts_with(['.', ':'])
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']'));
    if !host_ok {
        return Err(format!("`{host}` is not a valid host"));
    }
    Ok(s.to_ascii_lowercase())
}

impl Destination {
    /// Classifies a destination, trimmed:
    ///
    /// * `@name` is always a username;
    /// * an optional `lightning:` prefix (any case) is dropped; what follows must be one of
    ///   the next three;
    /// * `lnbc…`, `lntb…`, `lntbs…`, `lnbcrt…` (any single case) is a BOLT11 invoice;
    /// * `lnurl1…` (any single case) or `lnurlp://…` is an LNURL-pay link;
    /// * `name@host` is a Lightning address;
    /// * a hyphenated UUID is a wallet id;
    /// * anything else a username.
    ///
    /// A short string that only starts like an invoice or LNURL but could be a username
    /// (`lnbcfan`) stays a username; anything longer must be well-formed.
    pub fn parse(input: &str) -> Result<Self, crate::ClientError> {
        let s = input.trim();
        if let Some(name) = s.strip_prefix('@') {
            return Self::username(name);
        }
        let (s, explicit) = match strip_prefix_ignore_case(s, LIGHTNING_SCHEME) {
            Some(rest) => (rest.trim(), true),
            None => (s, false),
        };
        let lower = s.to_ascii_lowercase();
        // Strings that could still be a username fall through when malformed.
        let strict = explicit || !could_be_username(s);
        if INVOICE_PREFIXES.iter().any(|p| lower.starts_with(p)) {
            match parse_invoice(s) {
                Ok(invoice) => return Ok(Destination::Invoice(invoice)),
                Err(why) if strict => {
                    return Err(invalid(format!(
                        "`{}` is not a valid Lightning invoice: {why}",
                        abbreviate(s)
                    )))
                }
                Err(_) => {}
            }
        }
        if let Some(rest) = strip_prefix_ignore_case(s, LNURLP_SCHEME) {
            if rest.is_empty() || rest.starts_with('/') || rest.chars().any(char::is_whitespace) {
                return Err(invalid(format!("`{s}` is not a valid lnurlp:// link")));
            }
            return Ok(Destination::Lnurl(format!("{LNURLP_SCHEME}{rest}")));
        }
        if lower.starts_with("lnurl") {
            match parse_bech32_lnurl(s) {
                Ok(lnurl) => return Ok(Destination::Lnurl(lnurl)),
                Err(why) if strict => return Err(invalid(format!("`{}` is not a valid LNURL: {why}", abbreviate(s)))),
                Err(_) => {}
            }
        }
        if s.contains('@') {
            return parse_lightning_address(s)
                .map(Destination::LightningAddress)
                .map_err(|why| invalid(format!("`{s}` is not a valid Lightning address: {why}")));
        }
        if explicit {
            return Err(invalid(format!(
                "`{}` is not a Lightning invoice, an LNURL or a Lightning address",
                abbreviate(input.trim())
            )));
        }
        if s.len() == 36 {
            if let Ok(uuid) = uuid::Uuid::try_parse(s) {
                return Ok(Destination::WalletId(uuid.hyphenated().to_string()));
            }
        }
        Self::username(s)
    }

    /// A username destination, checked for emptiness and whitespace.
    fn username(name: &str) -> Result<Self, crate::ClientError> {
        if name.is_empty() {
            return Err(invalid(
                "destination must be a username, a wallet id, a Lightning invoice, a Lightning address or an LNURL",
            ));
        }
        if name.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(invalid(format!("`{name}` is neither a wallet id nor a valid username")));
        }
        Ok(Destination::Username(name.to_owned()))
    }

    /// The kind as in `--json` output: `WALLET_ID`, `USERNAME`, `LN_INVOICE`, `LN_ADDRESS` or
    /// `LNURL`.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::WalletId(_) => "WALLET_ID",
            Destination::Username(_) => "USERNAME",
            Destination::Invoice(_) => "LN_INVOICE",
            Destination::LightningAddress(_) => "LN_ADDRESS",
            Destination::Lnurl(_) => "LNURL",
        }
    }

    /// The wallet id, username, invoice, address or LNURL itself.
    pub fn value(&self) -> &str {
        match self {
            Destination::WalletId(v)
            | Destination::Username(v)
            | Destination::Invoice(v)
            | Destination::LightningAddress(v)
            | Destination::Lnurl(v) => v,
        }
    }

    /// Whether paying it takes an amount: everything but an invoice, which may carry its own.
    pub fn needs_amount(&self) -> bool {
        !matches!(self, Destination::Invoice(_))
    }

    /// Checks an amount for this destination: never 0, and present unless it is an invoice
    /// (for an invoice, the server checks that an amount is given exactly when the invoice
    /// has none).
    pub fn check_amount(&self, amount: Option<u64>) -> Result<(), crate::ClientError> {
        match amount {
            Some(0) => Err(invalid("amount must be at least 1 sat")),
            None if self.needs_amount() => Err(invalid(format!("paying {self} needs an amount in sats"))),
            _ => Ok(()),
        }
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::WalletId(id) => write!(f, "wallet {id}"),
            Destination::Username(name) => write!(f, "@{name}"),
            Destination::Invoice(invoice) => write!(f, "invoice {}", abbreviate(invoice)),
            Destination::LightningAddress(address) => f.write_str(address),
            Destination::Lnurl(lnurl) => write!(f, "LNURL {}", abbreviate(lnurl)),
        }
    }
}

/// Reads a BOLT11 invoice (optionally with a `lightning:` prefix, any single case); returns it
/// lowercased, or an error if it is not one.
pub fn parse_invoice_arg(input: &str) -> Result<String, crate::ClientError> {
    let s = input.trim();
    let s = strip_prefix_ignore_case(s, LIGHTNING_SCHEME).map_or(s, str::trim);
    parse_invoice(s).map_err(|why| invalid(format!("`{}` is not a valid Lightning invoice: {why}", abbreviate(s))))
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

/// A payment to any destination: a user or wallet of this bank, an invoice, a Lightning
/// address or an LNURL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendRequest {
    /// The paying wallet.
    pub wallet_id: String,
    /// The recipient.
    pub destination: Destination,
    /// Amount in sats: required except for an invoice that carries its own amount.
    pub amount: Option<u64>,
    /// Memo for the history (sent as the payee's comment to addresses and LNURLs).
    pub memo: Option<String>,
    /// Makes retries safe: the server pays at most once per key.
    pub idempotency_key: Option<String>,
}

impl From<PayRequest> for SendRequest {
    fn from(r: PayRequest) -> Self {
        SendRequest {
            wallet_id: r.wallet_id,
            destination: r.destination,
            amount: Some(r.amount),
            memo: r.memo,
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

/// API key scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
pub enum AccountLevel {
    /// Level 0.
    #[value(name = "0", alias = "zero")]
    Zero,
    /// Level 1.
    #[value(name = "1", alias = "one")]
    One,
    /// Level 2.
    #[value(name = "2", alias = "two")]
    Two,
    /// Level 3.
    #[value(name = "3", alias = "three")]
    Three,
}

/// Admin: target account status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn uuid_is_a_wallet_id() {
        let d = Destination::parse("3F2504E0-4F89-41D3-9A0C-0305E82C3301").ok();
        assert_eq!(
            d,
            Some(Destination::WalletId("3f2504e0-4f89-41d3-9a0c-0305e82c3301".into()))
        );
    }

    #[test]
    fn anything_else_is_a_username() {
        assert_eq!(
            Destination::parse("alice").ok(),
            Some(Destination::Username("alice".into()))
        );
        assert_eq!(
            Destination::parse("@bob").ok(),
            Some(Destination::Username("bob".into()))
        );
        // 32 hex digits without hyphens could be a username, so it stays one.
        assert_eq!(
            Destination::parse("3f2504e04f8941d39a0c0305e82c3301").ok(),
            Some(Destination::Username("3f2504e04f8941d39a0c0305e82c3301".into()))
        );
        // Almost a UUID (bad hex digit) is a username too.
        assert!(matches!(
            Destination::parse("3f2504e0-4f89-41d3-9a0c-0305e82c330z"),
            Ok(Destination::Username(_))
        ));
    }

    #[test]
    fn empty_destination_is_rejected() {
        assert!(Destination::parse("").is_err());
        assert!(Destination::parse("@").is_err());
        assert!(Destination::parse("a b").is_err());
    }

    /// The BOLT11 specification's example invoice (2500 µBTC, mainnet).
    const SPEC_INVOICE: &str = "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xy\
sxxatsyp3k7enxv4jsxqzpuaztrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emud\
upq63nyw24cg27h2rspfj9srp";

    /// The LNURL of the LUD-01 example, upper case as in a QR code.
    const SPEC_LNURL: &str =
        "LNURL1DP68GURN8GHJ7UM9WFMXJCM99E3K7MF0V9CXJ0M385EKVCENXC6R2C35XVUKXEFCV5MKVV34X5EKZD3EV56\
NYD3HXQURZEPEXEJXXEPNXSCRVWFNV9NXZCN9XQ6XYEFHVGCXXCMYXYMNSERXFQ5FNS";

    /// A well-shaped (not checksummed) invoice with human-readable part `hrp`.
    fn invoice(hrp: &str) -> String {
        format!("{hrp}1{}", "qpzry9x8gf2tvdw0s3jn54khce6mua7l".repeat(5))
    }

    fn parsed(input: &str) -> Option<Destination> {
        Destination::parse(input).ok()
    }

    #[test]
    fn invoices_of_every_network_and_case() {
        assert_eq!(parsed(SPEC_INVOICE), Some(Destination::Invoice(SPEC_INVOICE.into())));
        for hrp in [
            "lnbc",
            "lntb",
            "lntbs",
            "lnbcrt",
            "lnbc2500u",
            "lntb1m",
            "lnbcrt15u",
            "lntbs10n",
            "lnbc20",
        ] {
            let pr = invoice(hrp);
            let expected = Some(Destination::Invoice(pr.clone()));
            assert_eq!(parsed(&pr), expected, "{hrp}");
            assert_eq!(parsed(&pr.to_ascii_uppercase()), expected, "{hrp} upper case");
            assert_eq!(parsed(&format!("lightning:{pr}")), expected, "{hrp} with lightning:");
            assert_eq!(
                parsed(&format!("  LIGHTNING:{}\n", pr.to_ascii_uppercase())),
                expected,
                "{hrp} as an upper-case URI"
            );
            assert_eq!(parsed(&format!("Lightning:{pr}")), expected);
        }
        let d = Destination::Invoice(SPEC_INVOICE.into());
        assert_eq!(d.kind(), "LN_INVOICE");
        assert_eq!(d.value(), SPEC_INVOICE);
        assert!(!d.needs_amount());
        assert!(d.check_amount(None).is_ok());
        assert!(d.check_amount(Some(10)).is_ok());
        assert!(d.check_amount(Some(0)).is_err());
        assert_eq!(d.to_string(), "invoice lnbc2500u1pvjluezpp5qqqs…");
    }

    #[test]
    fn malformed_invoices_are_refused_or_stay_usernames() {
        // Mixed case, a character outside bech32, a wrong prefix, too short after lightning:.
        let mut mixed = invoice("lnbc");
        mixed.replace_range(..4, "LNbc");
        let err = Destination::parse(&mixed).err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("mixes upper and lower case")),
            "{err:?}"
        );
        let bad_char = format!("{}b", invoice("lnbc"));
        assert!(Destination::parse(&bad_char).is_err());
        assert!(Destination::parse(&invoice("lnbcx")).is_err());
        assert!(Destination::parse(&invoice("lnbc25x")).is_err());
        assert!(Destination::parse(&invoice("lnbcu")).is_err());
        assert!(Destination::parse("lightning:lnbc1qqqq").is_err());
        assert!(Destination::parse("lightning:alice").is_err());
        assert!(Destination::parse("lightning:").is_err());
        // Short names that only start like an invoice or an LNURL are usernames.
        for name in ["lnbcfan", "lntb_bob", "lnbc1qqq", "lnurl_fan", "lnurl1qq"] {
            assert_eq!(parsed(name), Some(Destination::Username(name.into())), "{name}");
        }
        // `@` always means a username.
        let pr = invoice("lnbc");
        assert!(matches!(parsed(&format!("@{pr}")), Some(Destination::Username(_))));
    }

    #[test]
    fn lnurls() {
        let lower = SPEC_LNURL.to_ascii_lowercase();
        assert_eq!(parsed(SPEC_LNURL), Some(Destination::Lnurl(lower.clone())));
        assert_eq!(parsed(&lower), Some(Destination::Lnurl(lower.clone())));
        assert_eq!(
            parsed(&format!("lightning:{SPEC_LNURL}")),
            Some(Destination::Lnurl(lower.clone()))
        );
        assert_eq!(
            parsed("lnurlp://example.com/.well-known/lnurlp/Alice"),
            Some(Destination::Lnurl(
                "lnurlp://example.com/.well-known/lnurlp/Alice".into()
            ))
        );
        assert_eq!(
            parsed("LNURLP://example.com/pay"),
            Some(Destination::Lnurl("lnurlp://example.com/pay".into()))
        );
        assert!(Destination::parse("lnurlp://").is_err());
        assert!(Destination::parse("lnurlp:///path").is_err());
        assert!(Destination::parse(&format!("{lower}b")).is_err());
        let d = Destination::Lnurl(lower);
        assert_eq!(d.kind(), "LNURL");
        assert!(d.needs_amount());
        assert!(d.check_amount(None).is_err());
        assert!(d.check_amount(Some(1)).is_ok());
    }

    #[test]
    fn lightning_addresses() {
        assert_eq!(
            parsed("alice@example.com"),
            Some(Destination::LightningAddress("alice@example.com".into()))
        );
        assert_eq!(
            parsed(" Alice.B-c_d+e@Pay.Example.COM:8443 "),
            Some(Destination::LightningAddress(
                "alice.b-c_d+e@pay.example.com:8443".into()
            ))
        );
        assert_eq!(
            parsed("lightning:bob@127.0.0.1:8080"),
            Some(Destination::LightningAddress("bob@127.0.0.1:8080".into()))
        );
        for bad in [
            "alice@",
            "a b@example.com",
            "alice@exa mple.com",
            "alice@ex/ample",
            "a@b@c",
            "alice@.com",
        ] {
            assert!(Destination::parse(bad).is_err(), "{bad}");
        }
        // A leading `@` is a username, and then there may be no second one.
        assert_eq!(parsed("@alice"), Some(Destination::Username("alice".into())));
        assert!(Destination::parse("@alice@example.com").is_err());
        let d = Destination::LightningAddress("alice@example.com".into());
        assert_eq!(
            (d.kind(), d.to_string()),
            ("LN_ADDRESS", "alice@example.com".to_owned())
        );
        let err = d.check_amount(None).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("invalid input: paying alice@example.com needs an amount in sats")
        );
    }

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
        let d = Destination::Invoice(SPEC_INVOICE.into());
        assert_eq!(json!(d), json!({"kind": d.kind(), "value": SPEC_INVOICE}));
        let d = Destination::LightningAddress("a@b.c".into());
        assert_eq!(json!(d), json!({"kind": "LN_ADDRESS", "value": "a@b.c"}));
        let d = Destination::Lnurl("lnurlp://b.c/x".into());
        assert_eq!(json!(d), json!({"kind": "LNURL", "value": "lnurlp://b.c/x"}));
    }

    #[test]
    fn intraledger_destinations_need_an_amount() {
        let d = Destination::Username("bob".into());
        assert!(d.needs_amount());
        assert!(d.check_amount(None).is_err());
        assert!(d.check_amount(Some(0)).is_err());
        assert!(d.check_amount(Some(1)).is_ok());
        assert_eq!(Destination::WalletId("w".into()).kind(), "WALLET_ID");
    }

    #[test]
    fn invoice_arguments() {
        assert_eq!(parse_invoice_arg(SPEC_INVOICE).ok().as_deref(), Some(SPEC_INVOICE));
        assert_eq!(
            parse_invoice_arg(&format!("LIGHTNING:{}", SPEC_INVOICE.to_ascii_uppercase()))
                .ok()
                .as_deref(),
            Some(SPEC_INVOICE)
        );
        for bad in ["alice", "alice@example.com", SPEC_LNURL, "lnbc1qqq", ""] {
            assert!(parse_invoice_arg(bad).is_err(), "{bad}");
        }
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
