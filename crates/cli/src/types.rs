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

/// Who to pay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Destination {
    /// A wallet id (anything that parses as a hyphenated UUID).
    WalletId(String),
    /// A username (an optional leading `@` is dropped).
    Username(String),
}

impl Destination {
    /// Classifies a destination: a hyphenated UUID is a wallet id, anything
    /// else a username.
    pub fn parse(input: &str) -> Result<Self, crate::ClientError> {
        let s = input.trim();
        if s.len() == 36 {
            if let Ok(uuid) = uuid::Uuid::try_parse(s) {
                return Ok(Destination::WalletId(uuid.hyphenated().to_string()));
            }
        }
        let name = s.strip_prefix('@').unwrap_or(s);
        if name.is_empty() {
            return Err(crate::ClientError::InvalidInput(
                "destination must be a username or a wallet id".into(),
            ));
        }
        if name.chars().any(char::is_whitespace) {
            return Err(crate::ClientError::InvalidInput(format!(
                "`{name}` is neither a wallet id nor a valid username"
            )));
        }
        Ok(Destination::Username(name.to_owned()))
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Destination::WalletId(id) => write!(f, "wallet {id}"),
            Destination::Username(name) => write!(f, "@{name}"),
        }
    }
}

/// An intraledger payment to send.
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

/// Result of an intraledger payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResult {
    /// `SUCCESS`, `FAILURE`, `PENDING` or `ALREADY_PAID`.
    pub status: String,
    /// The transaction, when one was recorded.
    pub transaction: Option<IdOnly>,
}

/// An object of which only the id was requested.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdOnly {
    /// The id.
    pub id: String,
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
