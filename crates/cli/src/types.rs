//! Request and response types of the Flash public and admin APIs, as the
//! client sees them. Enum-like response fields are kept as strings so that a
//! newer server adding a value does not break an older client.

use std::fmt;
use std::ops::RangeInclusive;

use bitcoin::address::NetworkUnchecked;
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

/// The URI scheme of a BIP21 payment request.
const BITCOIN_SCHEME: &str = "bitcoin:";

/// Human-readable parts of segwit addresses, longest first: regtest, mainnet, testnet and
/// signet.
const SEGWIT_HRPS: [&str; 3] = ["bcrt", "bc", "tb"];

/// Characters of a segwit address: at least `bc1`, the version, a two-byte program (4) and the
/// checksum (6); at most 90 (BIP173).
const SEGWIT_ADDRESS_LEN: RangeInclusive<usize> = 14..=90;

/// Characters of a base58 P2PKH or P2SH address (25 bytes).
const BASE58_ADDRESS_LEN: RangeInclusive<usize> = 26..=35;

/// The base58 alphabet (no `0`, `O`, `I` or `l`).
const BASE58_CHARSET: &str = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// First characters of base58 addresses: `1`/`3` on mainnet, `m`/`n`/`2` on the test networks.
const BASE58_ADDRESS_STARTS: [char; 5] = ['1', '3', 'm', 'n', '2'];

/// Satoshis in one bitcoin.
const SATS_PER_BTC: u64 = 100_000_000;

/// Decimal places of an amount in BTC.
const BTC_DECIMALS: usize = 8;

/// Most bitcoins there will ever be.
const MAX_BTC: u64 = 21_000_000;

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
    /// A Bitcoin address, paid on-chain: segwit (lowercased) or base58.
    #[serde(rename = "ONCHAIN_ADDRESS")]
    OnchainAddress(String),
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

/// The error chain of `e` on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        let msg = cause.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = cause.source();
    }
    out
}

/// `s` for an error message: whole when it is no longer than an address can be, else shortened.
fn quoted_address(s: &str) -> String {
    if s.len() <= *SEGWIT_ADDRESS_LEN.end() {
        s.to_owned()
    } else {
        abbreviate(s)
    }
}

/// Whether `s` starts like a segwit address of one of our networks: `bc1`, `tb1` or `bcrt1`,
/// any case.
fn has_segwit_prefix(s: &str) -> bool {
    SEGWIT_HRPS
        .iter()
        .any(|hrp| strip_prefix_ignore_case(s, hrp).is_some_and(|rest| rest.starts_with('1')))
}

/// Whether `s` is meant as a segwit address rather than a username: a segwit prefix
/// (`bc1`, `tb1`, `bcrt1`) and then only letters and digits, however short.
fn looks_like_segwit_address(s: &str) -> bool {
    has_segwit_prefix(s) && s.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether `lower` (lowercased) is meant as a BOLT11 invoice rather than a username: a network
/// prefix followed by a digit (an amount, or the `1` separator).
fn looks_like_invoice(lower: &str) -> bool {
    INVOICE_PREFIXES.iter().any(|prefix| {
        lower
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with(|c: char| c.is_ascii_digit()))
    })
}

/// The hint after an error about a destination that could also be a username.
fn username_hint(s: &str) -> String {
    if could_be_username(s) {
        format!(" (to pay the user of that name, write @{s})")
    } else {
        String::new()
    }
}

/// Whether `s` has the shape of a base58 address: its length, first character and alphabet.
pub(crate) fn looks_like_base58_address(s: &str) -> bool {
    BASE58_ADDRESS_LEN.contains(&s.len())
        && s.starts_with(BASE58_ADDRESS_STARTS)
        && s.chars().all(|c| BASE58_CHARSET.contains(c))
}

/// Checks a segwit address: its shape here (length, one case, bech32 characters, a prefix of
/// bc, tb or bcrt) for a clear message, then its checksum and witness program (BIP173/BIP350).
/// Returns it lowercased.
fn parse_segwit_address(s: &str) -> Result<String, String> {
    if !SEGWIT_ADDRESS_LEN.contains(&s.len()) {
        return Err(format!(
            "a segwit address has {} to {} characters, not {}",
            SEGWIT_ADDRESS_LEN.start(),
            SEGWIT_ADDRESS_LEN.end(),
            s.len()
        ));
    }
    if s.bytes().any(|b| b.is_ascii_lowercase()) && s.bytes().any(|b| b.is_ascii_uppercase()) {
        return Err("it mixes upper and lower case".into());
    }
    let lower = s.to_ascii_lowercase();
    // Split after the prefix, not at the last `1`: a mistyped `1` in the data is reported as such.
    let data = SEGWIT_HRPS
        .iter()
        .find_map(|hrp| lower.strip_prefix(hrp).and_then(|rest| rest.strip_prefix('1')))
        .ok_or("it does not start with bc1, tb1 or bcrt1")?;
    if let Some(bad) = data.chars().find(|c| !BECH32_CHARSET.contains(*c)) {
        return Err(format!("`{bad}` is not a bech32 character"));
    }
    // The checksum (bech32 for v0, bech32m after) and the witness program's version and length.
    bitcoin::bech32::segwit::decode(&lower).map_err(|e| error_chain(&e))?;
    Ok(lower)
}

/// Checks a base58 P2PKH or P2SH address, checksum included.
fn parse_base58_address(s: &str) -> Result<String, String> {
    if !looks_like_base58_address(s) {
        return Err("it is not a segwit (bc1…, tb1…, bcrt1…) or base58 (1…, 3…, m…, n…, 2…) address".into());
    }
    s.parse::<bitcoin::Address<NetworkUnchecked>>()
        .map_err(|e| error_chain(&e))?;
    Ok(s.to_owned())
}

/// Reads a Bitcoin address: segwit v0 (bech32) or v1+ (bech32m) with the prefix `bc1`, `tb1`
/// or `bcrt1` in one case, or a base58 P2PKH/P2SH address; checksums are checked, the network
/// is left to the server. Returns it normalised (segwit lowercased).
pub fn parse_onchain_address(input: &str) -> Result<String, crate::ClientError> {
    let s = input.trim();
    let parsed = if has_segwit_prefix(s) {
        parse_segwit_address(s)
    } else {
        parse_base58_address(s)
    };
    parsed.map_err(|why| invalid(format!("`{}` is not a valid Bitcoin address: {why}", quoted_address(s))))
}

/// Converts an amount in BTC (`1`, `0.5`, `.5`, `0.00000001`: digits and at most one `.`, at
/// most 8 decimals, no sign or exponent) into sats, exactly (no floating point).
pub fn parse_btc_amount(s: &str) -> Result<u64, String> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(format!("`{s}` is not an amount in BTC (digits with an optional `.`)"));
    }
    if fraction.len() > BTC_DECIMALS {
        return Err(format!(
            "`{s}` has more than {BTC_DECIMALS} decimals (1 sat is 0.00000001 BTC)"
        ));
    }
    let too_much = || format!("`{s}` is more than {MAX_BTC} BTC");
    let whole: u64 = match whole.trim_start_matches('0') {
        "" => 0,
        w => w.parse().map_err(|_| too_much())?,
    };
    // Right-pad the fraction to 8 digits: "5" is 50,000,000 sats.
    let fraction: u64 = format!("{fraction:0<BTC_DECIMALS$}")
        .parse()
        .map_err(|_| format!("`{s}` is not an amount in BTC"))?;
    let sats = whole
        .checked_mul(SATS_PER_BTC)
        .and_then(|w| w.checked_add(fraction))
        .filter(|sats| *sats <= MAX_BTC * SATS_PER_BTC)
        .ok_or_else(too_much)?;
    if sats == 0 {
        return Err("the amount must be at least 1 sat (0.00000001 BTC)".into());
    }
    Ok(sats)
}

/// Decodes `%XX` escapes (RFC 3986; `+` stays `+`) into UTF-8 text.
fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("`{s}` has a bad %-escape"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` is not UTF-8 once decoded"))
}

/// A BIP21 payment request: `bitcoin:ADDRESS?amount=BTC&label=…&message=…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentUri {
    /// The address, normalised as [`parse_onchain_address`] does.
    pub address: String,
    /// The amount asked for, sats.
    pub amount: Option<u64>,
    /// The payee's name, percent-decoded.
    pub label: Option<String>,
    /// What the payment is for, percent-decoded.
    pub message: Option<String>,
}

impl PaymentUri {
    /// Reads a `bitcoin:` URI (the scheme and parameter names in any case). `amount` is in BTC
    /// ([`parse_btc_amount`]); `label` and `message` are percent-decoded; a `req-` parameter is
    /// refused, as BIP21 requires of one the client does not understand; any other parameter
    /// (e.g. `lightning`) is ignored.
    pub fn parse(input: &str) -> Result<PaymentUri, crate::ClientError> {
        let s = input.trim();
        let rest = strip_prefix_ignore_case(s, BITCOIN_SCHEME)
            .ok_or_else(|| invalid(format!("`{}` is not a bitcoin: URI", abbreviate(s))))?;
        let bad = |why: String| invalid(format!("`{}` is not a valid bitcoin: URI: {why}", abbreviate(s)));
        let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
        let address = address.strip_prefix("//").unwrap_or(address);
        if address.is_empty() {
            return Err(bad("it has no address".into()));
        }
        let address = parse_onchain_address(address)?;
        let mut uri = PaymentUri {
            address,
            amount: None,
            label: None,
            message: None,
        };
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            let key = key.to_ascii_lowercase();
            match key.as_str() {
                "amount" => {
                    if uri.amount.is_some() {
                        return Err(bad("it has two amounts".into()));
                    }
                    uri.amount = Some(parse_btc_amount(value).map_err(bad)?);
                }
                "label" => uri.label = Some(percent_decode(value).map_err(bad)?),
                "message" => uri.message = Some(percent_decode(value).map_err(bad)?),
                k if k.starts_with("req-") => {
                    return Err(bad(format!(
                        "it requires `{key}`, which this client does not understand"
                    )))
                }
                _ => {}
            }
        }
        Ok(uri)
    }
}

/// What to pay, as written on the command line: the destination and, for a BIP21 URI, the
/// amount it asks for and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentTarget {
    /// Who to pay.
    pub destination: Destination,
    /// The amount a BIP21 URI asks for, sats.
    pub amount: Option<u64>,
    /// A BIP21 URI's message.
    pub memo: Option<String>,
}

impl PaymentTarget {
    /// Reads a BIP21 `bitcoin:` URI ([`PaymentUri::parse`]) or any other destination
    /// ([`Destination::parse`]).
    pub fn parse(input: &str) -> Result<PaymentTarget, crate::ClientError> {
        if strip_prefix_ignore_case(input.trim(), BITCOIN_SCHEME).is_some() {
            let uri = PaymentUri::parse(input)?;
            return Ok(PaymentTarget {
                destination: Destination::OnchainAddress(uri.address),
                amount: uri.amount,
                memo: uri.message,
            });
        }
        Ok(PaymentTarget {
            destination: Destination::parse(input)?,
            amount: None,
            memo: None,
        })
    }

    /// The amount to send, sats: `sats` from the command line, the URI's amount, or both when
    /// they agree.
    pub fn amount(&self, sats: Option<u64>) -> Result<Option<u64>, crate::ClientError> {
        match (sats, self.amount) {
            (Some(given), Some(asked)) if given != asked => Err(invalid(format!(
                "the payment request asks for {asked} sats, not {given}"
            ))),
            (given, asked) => Ok(given.or(asked)),
        }
    }
}

impl Destination {
    /// Classifies a destination, trimmed:
    ///
    /// * `@name` is always a username;
    /// * `bitcoin:ADDRESS?…` (BIP21, any case) is an on-chain address (its amount is dropped
    ///   here: [`PaymentTarget::parse`] keeps it);
    /// * an optional `lightning:` prefix (any case) is dropped; what follows must be one of
    ///   the next three;
    /// * `lnbc…`, `lntb…`, `lntbs…`, `lnbcrt…` (any single case) is a BOLT11 invoice;
    /// * `lnurl1…` (any single case) or `lnurlp://…` is an LNURL-pay link;
    /// * `name@host` is a Lightning address;
    /// * `bc1…`, `tb1…`, `bcrt1…` (any single case) is a segwit address, and a base58
    ///   `1…`, `3…`, `m…`, `n…`, `2…` with a valid checksum a P2PKH/P2SH address;
    /// * a hyphenated UUID is a wallet id;
    /// * anything else a username.
    ///
    /// A short string that only starts like an invoice or LNURL but could be a username
    /// (`lnbcfan`) stays a username; anything longer must be well-formed. A string of letters
    /// and digits starting like a segwit address must be a valid one; a base58-looking one
    /// with a wrong checksum stays a username.
    pub fn parse(input: &str) -> Result<Self, crate::ClientError> {
        let s = input.trim();
        if let Some(name) = s.strip_prefix('@') {
            return Self::username(name);
        }
        if strip_prefix_ignore_case(s, BITCOIN_SCHEME).is_some() {
            return PaymentUri::parse(s).map(|uri| Destination::OnchainAddress(uri.address));
        }
        let (s, explicit) = match strip_prefix_ignore_case(s, LIGHTNING_SCHEME) {
            Some(rest) => (rest.trim(), true),
            None => (s, false),
        };
        let lower = s.to_ascii_lowercase();
        // Strings that could still be a username fall through when malformed, unless they
        // start like an invoice (`lnbc1…`, `lnbcrt25u…`) or an LNURL (`lnurl1…`).
        let strict = explicit || !could_be_username(s);
        if INVOICE_PREFIXES.iter().any(|p| lower.starts_with(p)) {
            match parse_invoice(s) {
                Ok(invoice) => return Ok(Destination::Invoice(invoice)),
                Err(why) if strict || looks_like_invoice(&lower) => {
                    return Err(invalid(format!(
                        "`{}` is not a valid Lightning invoice: {why}{}",
                        abbreviate(s),
                        username_hint(s)
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
                Err(why) if strict || lower.starts_with("lnurl1") => {
                    return Err(invalid(format!(
                        "`{}` is not a valid LNURL: {why}{}",
                        abbreviate(s),
                        username_hint(s)
                    )))
                }
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
        if looks_like_segwit_address(s) {
            return parse_segwit_address(s).map(Destination::OnchainAddress).map_err(|why| {
                invalid(format!(
                    "`{}` is not a valid Bitcoin address: {why}{}",
                    quoted_address(s),
                    username_hint(s)
                ))
            });
        }
        if looks_like_base58_address(s) {
            if let Ok(address) = parse_base58_address(s) {
                return Ok(Destination::OnchainAddress(address));
            }
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
                "destination must be a username, a wallet id, a Lightning invoice, a Lightning address, an LNURL or a Bitcoin address",
            ));
        }
        if name.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(invalid(format!("`{name}` is neither a wallet id nor a valid username")));
        }
        Ok(Destination::Username(name.to_owned()))
    }

    /// The kind as in `--json` output: `WALLET_ID`, `USERNAME`, `LN_INVOICE`, `LN_ADDRESS`,
    /// `LNURL` or `ONCHAIN_ADDRESS`.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::WalletId(_) => "WALLET_ID",
            Destination::Username(_) => "USERNAME",
            Destination::Invoice(_) => "LN_INVOICE",
            Destination::LightningAddress(_) => "LN_ADDRESS",
            Destination::Lnurl(_) => "LNURL",
            Destination::OnchainAddress(_) => "ONCHAIN_ADDRESS",
        }
    }

    /// The wallet id, username, invoice, address or LNURL itself.
    pub fn value(&self) -> &str {
        match self {
            Destination::WalletId(v)
            | Destination::Username(v)
            | Destination::Invoice(v)
            | Destination::LightningAddress(v)
            | Destination::Lnurl(v)
            | Destination::OnchainAddress(v) => v,
        }
    }

    /// Whether it is paid on-chain.
    pub fn is_onchain(&self) -> bool {
        matches!(self, Destination::OnchainAddress(_))
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
            Destination::OnchainAddress(address) => write!(f, "address {address}"),
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

/// How fast an on-chain payment should confirm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "UPPERCASE")]
pub enum Speed {
    /// Its own transaction, now.
    Fast,
    /// The next batch (the server's default).
    Medium,
    /// The next batch.
    Slow,
}

/// An on-chain payment to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnchainSendRequest {
    /// The paying wallet.
    pub wallet_id: String,
    /// The Bitcoin address.
    pub address: String,
    /// Amount in sats; `None` sends the wallet's whole balance less the fee.
    pub amount: Option<u64>,
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

/// How often a wallet connection's budget starts afresh (`NwcBudgetPeriod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
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
        // Names that only start like an invoice or an LNURL are usernames.
        for name in ["lnbcfan", "lntb_bob", "lntbsomething", "lnurl_fan", "lnurlfan"] {
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

    /// BIP173/BIP350 and base58 examples: mainnet P2WPKH, testnet P2WSH, mainnet taproot, the
    /// regtest form of the first, and base58 P2PKH/P2SH of mainnet and testnet.
    const ADDRESSES: [&str; 8] = [
        "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7",
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
        "1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN2",
        "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy",
        "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn",
        "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc",
    ];

    fn onchain(address: &str) -> Option<Destination> {
        Some(Destination::OnchainAddress(address.into()))
    }

    fn error_of(input: &str) -> String {
        Destination::parse(input)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn bitcoin_addresses_of_every_kind_and_network() {
        for address in ADDRESSES {
            assert_eq!(parsed(address), onchain(address), "{address}");
            assert_eq!(parse_onchain_address(address).ok().as_deref(), Some(address));
            assert_eq!(parsed(&format!(" {address}\n")), onchain(address), "{address} trimmed");
        }
        // Segwit addresses in upper case (QR codes) are lowercased.
        let upper = ADDRESSES[0].to_ascii_uppercase();
        assert_eq!(parsed(&upper), onchain(ADDRESSES[0]));
        let d = Destination::OnchainAddress(ADDRESSES[3].into());
        assert_eq!(d.kind(), "ONCHAIN_ADDRESS");
        assert!(d.is_onchain() && d.needs_amount());
        assert!(d.check_amount(None).is_err());
        assert_eq!(d.to_string(), format!("address {}", ADDRESSES[3]));
        assert_eq!(json!(d), json!({"kind": "ONCHAIN_ADDRESS", "value": ADDRESSES[3]}));
    }

    #[test]
    fn malformed_bitcoin_addresses_are_refused() {
        let mut mixed = ADDRESSES[0].to_owned();
        mixed.replace_range(4..8, "W508");
        assert!(
            error_of(&mixed).contains("mixes upper and lower case"),
            "{}",
            error_of(&mixed)
        );
        // A wrong checksum, a v0 program with a bech32m checksum, a character outside bech32.
        for bad in [
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5",
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kemeawh",
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3tb",
            "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k8",
            "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt081",
        ] {
            let e = error_of(bad);
            assert!(e.contains("not a valid Bitcoin address"), "{bad}: {e}");
            assert!(parse_onchain_address(bad).is_err(), "{bad}");
        }
        assert!(error_of("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3tb").contains("`b` is not a bech32 character"));
        let typo = error_of("bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt081");
        assert!(typo.contains("`1` is not a bech32 character"), "{typo}");
        // Too long for BIP173.
        let long = format!("bc1q{}", "q".repeat(90));
        assert!(error_of(&long).contains("characters"), "{}", error_of(&long));
        // A base58 address with a wrong checksum could be a username; the server decides.
        assert_eq!(
            parsed("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3"),
            Some(Destination::Username("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3".into()))
        );
        assert!(parse_onchain_address("1BvBMSEYstWetqTFn5Au4m4GFg7xJaNVN3").is_err());
        assert!(parse_onchain_address("alice").is_err());
        assert!(parse_onchain_address("").is_err());
        // Underscored names that start like an address stay usernames.
        for name in ["tb1_is_my_name_and_it_is_long", "bcrt1_x"] {
            assert_eq!(parsed(name), Some(Destination::Username(name.into())), "{name}");
        }
        assert!(Destination::parse("lightning:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4").is_err());
    }

    /// Issue 14: junk that starts like an invoice, an LNURL or an address was read as a username
    /// (and the server answered "recipient not found").
    #[test]
    fn junk_that_looks_like_an_invoice_lnurl_or_address_is_refused() {
        for (junk, says) in [
            ("lnbcrt1notaninvoice", "not a valid Lightning invoice"),
            ("lnbc1qqq", "not a valid Lightning invoice"),
            ("LNTB25U1QQQ", "not a valid Lightning invoice"),
            ("lnurl1qq", "not a valid LNURL"),
            ("bcrt1qinvalid", "not a valid Bitcoin address"),
            ("bc1fan", "not a valid Bitcoin address"),
            ("bcrt1", "not a valid Bitcoin address"),
        ] {
            let e = error_of(junk);
            assert!(e.contains(says), "{junk}: {e}");
            assert!(e.contains(&format!("write @{junk}")), "{junk}: {e}");
        }
        assert!(error_of("bcrt1qinvalid").contains("14 to 90 characters, not 13"));
        // The way out for a user whose name looks like that.
        assert_eq!(parsed("@bc1fan"), Some(Destination::Username("bc1fan".into())));
    }

    #[test]
    fn btc_amounts_convert_exactly() {
        for (btc, sats) in [
            ("0.00000001", 1),
            ("1", 100_000_000),
            ("1.5", 150_000_000),
            (".5", 50_000_000),
            ("5.", 500_000_000),
            ("0.1", 10_000_000),
            ("20.3", 2_030_000_000),
            ("000.00012345", 12_345),
            ("21000000", 2_100_000_000_000_000),
            ("20999999.99999999", 2_099_999_999_999_999),
        ] {
            assert_eq!(parse_btc_amount(btc), Ok(sats), "{btc}");
        }
        for (bad, why) in [
            ("0.000000001", "more than 8 decimals"),
            ("-1", "not an amount"),
            ("+1", "not an amount"),
            ("1e-3", "not an amount"),
            ("1,5", "not an amount"),
            ("1.2.3", "not an amount"),
            ("", "not an amount"),
            (".", "not an amount"),
            ("0", "at least 1 sat"),
            ("0.00000000", "at least 1 sat"),
            ("21000000.00000001", "more than 21000000 BTC"),
            ("99999999999999999999999", "more than 21000000 BTC"),
        ] {
            let e = parse_btc_amount(bad).err().unwrap_or_default();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn bip21_uris() {
        let address = ADDRESSES[3];
        let uri = PaymentUri::parse(&format!(
            "bitcoin:{address}?amount=0.00000001&label=Luke-Jr&message=Donation%20for%20project%20xyz"
        ));
        assert_eq!(
            uri.ok(),
            Some(PaymentUri {
                address: address.into(),
                amount: Some(1),
                label: Some("Luke-Jr".into()),
                message: Some("Donation for project xyz".into()),
            })
        );
        // Upper case (QR codes), unknown optional parameters and a BIP21 unified QR's `lightning`.
        let upper = format!(
            "BITCOIN:{}?AMOUNT=1.5&LIGHTNING=LNBC1XYZ&foo=bar",
            address.to_ascii_uppercase()
        );
        let target = PaymentTarget::parse(&upper).ok();
        assert_eq!(
            target,
            Some(PaymentTarget {
                destination: Destination::OnchainAddress(address.into()),
                amount: Some(150_000_000),
                memo: None,
            })
        );
        assert_eq!(parsed(&upper), onchain(address), "Destination::parse keeps the address");
        assert_eq!(
            PaymentTarget::parse(&format!("bitcoin:{address}"))
                .ok()
                .map(|t| t.amount),
            Some(None)
        );
        for (bad, why) in [
            (format!("bitcoin:{address}?amount=0.000000001"), "more than 8 decimals"),
            (format!("bitcoin:{address}?amount=-0.1"), "not an amount"),
            (format!("bitcoin:{address}?amount="), "not an amount"),
            (format!("bitcoin:{address}?amount=1&amount=2"), "two amounts"),
            (
                format!("bitcoin:{address}?req-somethingyoudontunderstand=50"),
                "req-somethingyoudontunderstand",
            ),
            (format!("bitcoin:{address}?message=%ZZ"), "%-escape"),
            ("bitcoin:".to_owned(), "no address"),
            ("bitcoin:?amount=1".to_owned(), "no address"),
            ("bitcoin:alice".to_owned(), "not a valid Bitcoin address"),
            (
                "bitcoin:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5".to_owned(),
                "not a valid Bitcoin address",
            ),
        ] {
            let e = PaymentTarget::parse(&bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn uri_amounts_must_agree_with_the_command_line() {
        let target = PaymentTarget::parse(&format!("bitcoin:{}?amount=0.0001", ADDRESSES[3]));
        let target = target.map_err(|e| e.to_string());
        assert_eq!(target.as_ref().map(|t| t.amount(None).ok()), Ok(Some(Some(10_000))));
        assert_eq!(
            target.as_ref().map(|t| t.amount(Some(10_000)).ok()),
            Ok(Some(Some(10_000)))
        );
        let e = target
            .as_ref()
            .ok()
            .and_then(|t| t.amount(Some(10_001)).err())
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("invalid input: the payment request asks for 10000 sats, not 10001")
        );
        let plain = PaymentTarget::parse(ADDRESSES[0]).map_err(|e| e.to_string());
        assert_eq!(plain.as_ref().map(|t| t.amount(Some(5)).ok()), Ok(Some(Some(5))));
        assert_eq!(plain.as_ref().map(|t| t.amount(None).ok()), Ok(Some(None)));
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
