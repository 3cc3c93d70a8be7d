//! Where a payment goes, as a person writes it: a Flash username or wallet id, a BOLT11
//! invoice, a Lightning address, an LNURL-pay or -withdraw link, a Bitcoin address, a BIP21
//! `bitcoin:` URI (with a unified QR's `lightning=`), a NOSTR user (`npub`, `nprofile`) or a
//! Cashu token. [`Destination::parse`] classifies one; [`PaymentTarget::parse`] also keeps a
//! URI's amount, message and invoice. The checks are of shape and checksum only: which network
//! an address is for, and whether an invoice's signature holds, the bank decides.

use std::fmt;
use std::ops::RangeInclusive;

use bitcoin::address::NetworkUnchecked;
use serde::Serialize;

/// Why a destination, a payment request or an amount was refused; the message says what is
/// wrong, for the person who wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DestinationError(pub String);

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

/// The URI scheme of an LNURL-withdraw link written as a URL (LUD-17).
const LNURLW_SCHEME: &str = "lnurlw://";

/// The URI scheme of a BIP21 payment request.
const BITCOIN_SCHEME: &str = "bitcoin:";

/// The URI scheme that may precede a NOSTR entity (NIP-21).
const NOSTR_SCHEME: &str = "nostr:";

/// Human-readable parts of the NIP-19 entities that name a user: a bare public key, and a
/// profile (the key with relay hints).
const NOSTR_USER_HRPS: [&str; 2] = ["npub", "nprofile"];

/// The URI scheme that may precede a Cashu token.
const CASHU_SCHEME: &str = "cashu:";

/// Prefixes of a serialised Cashu token (NUT-00): version 3 (JSON) and version 4 (CBOR).
const CASHU_TOKEN_PREFIXES: [&str; 2] = ["cashuA", "cashuB"];

/// Fewest characters after a Cashu token's prefix: one proof is far longer than this, and a
/// shorter string could be a username (`cashuBob`).
const MIN_CASHU_TOKEN_DATA: usize = 64;

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
    /// An LNURL-withdraw link written as `lnurlw://…` (LUD-17): money another service hands
    /// over, so "paying" it receives into the wallet.
    #[serde(rename = "LNURL_WITHDRAW")]
    LnurlWithdraw(String),
    /// A NOSTR user, as a 64-digit lowercase hex public key, from an `npub1…` or
    /// `nprofile1…` (NIP-19, optionally `nostr:`-prefixed).
    #[serde(rename = "NOSTR_PUBKEY")]
    NostrPubkey(String),
    /// A Cashu token (`cashuA…`, `cashuB…`, optionally `cashu:`-prefixed): ecash to redeem,
    /// not somebody to pay.
    #[serde(rename = "CASHU_TOKEN")]
    CashuToken(String),
}

/// A [`DestinationError`] saying `msg`.
fn invalid(msg: impl Into<String>) -> DestinationError {
    DestinationError(msg.into())
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

/// Reads a NIP-19 `npub1…` or `nprofile1…` (one case, checksum checked) into its 64-digit
/// lowercase hex public key.
fn parse_nostr_user(s: &str) -> Result<String, String> {
    let (hrp, data) = bitcoin::bech32::decode(s).map_err(|e| e.to_string())?;
    let key = match hrp.to_lowercase().as_str() {
        "npub" => Some(data.as_slice()),
        // A profile is TLV records; type 0 is the key (NIP-19).
        "nprofile" => {
            let mut rest = data.as_slice();
            let mut key = None;
            while let [kind, len, tail @ ..] = rest {
                let len = usize::from(*len);
                let value = tail.get(..len).ok_or("its TLV records are cut short")?;
                if *kind == 0 && key.is_none() {
                    key = Some(value);
                }
                rest = &tail[len..];
            }
            key
        }
        other => return Err(format!("`{other}` is not a NOSTR user (npub or nprofile)")),
    };
    match key {
        Some(key) if key.len() == 32 => Ok(key.iter().map(|b| format!("{b:02x}")).collect()),
        Some(_) => Err("its public key is not 32 bytes".into()),
        None => Err("it names no public key".into()),
    }
}

/// The `npub1…` of a 64-digit hex public key (NIP-19); `None` when it is not one.
fn npub(hex: &str) -> Option<String> {
    if hex.len() != 64 {
        return None;
    }
    let bytes = (0..32)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    let hrp = bitcoin::bech32::Hrp::parse("npub").ok()?;
    bitcoin::bech32::encode::<bitcoin::bech32::Bech32>(hrp, &bytes).ok()
}

/// Checks the shape of a Cashu token after any `cashu:` prefix: `cashuA` or `cashuB`, then
/// base64 characters (either alphabet, padding allowed). Whether it holds valid proofs, the
/// mint decides.
fn parse_cashu_token(s: &str) -> Result<String, String> {
    let body = CASHU_TOKEN_PREFIXES
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .ok_or("a Cashu token starts with cashuA or cashuB")?;
    if body.len() < MIN_CASHU_TOKEN_DATA {
        return Err("it is too short".into());
    }
    if let Some(bad) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=')))
    {
        return Err(format!("`{bad}` is not a base64 character"));
    }
    Ok(s.to_owned())
}

/// Whether `s` is meant as a Cashu token rather than a username: a token prefix and longer
/// than a username can be.
fn looks_like_cashu_token(s: &str) -> bool {
    CASHU_TOKEN_PREFIXES.iter().any(|p| s.starts_with(p)) && !could_be_username(s)
}

/// Whether `lower` (lowercased) is meant as a NIP-19 user: `npub1` or `nprofile1`.
fn looks_like_nostr_user(lower: &str) -> bool {
    NOSTR_USER_HRPS.iter().any(|hrp| lower.starts_with(&format!("{hrp}1")))
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
pub fn looks_like_base58_address(s: &str) -> bool {
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
pub fn parse_onchain_address(input: &str) -> Result<String, DestinationError> {
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
pub fn parse_btc_amount(s: &str) -> Result<u64, DestinationError> {
    let (whole, fraction) = s.split_once('.').unwrap_or((s, ""));
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    if (whole.is_empty() && fraction.is_empty()) || !digits(whole) || !digits(fraction) {
        return Err(invalid(format!(
            "`{s}` is not an amount in BTC (digits with an optional `.`)"
        )));
    }
    if fraction.len() > BTC_DECIMALS {
        return Err(invalid(format!(
            "`{s}` has more than {BTC_DECIMALS} decimals (1 sat is 0.00000001 BTC)"
        )));
    }
    let too_much = || invalid(format!("`{s}` is more than {MAX_BTC} BTC"));
    let whole: u64 = match whole.trim_start_matches('0') {
        "" => 0,
        w => w.parse().map_err(|_| too_much())?,
    };
    // Right-pad the fraction to 8 digits: "5" is 50,000,000 sats.
    let fraction: u64 = format!("{fraction:0<BTC_DECIMALS$}")
        .parse()
        .map_err(|_| invalid(format!("`{s}` is not an amount in BTC")))?;
    let sats = whole
        .checked_mul(SATS_PER_BTC)
        .and_then(|w| w.checked_add(fraction))
        .filter(|sats| *sats <= MAX_BTC * SATS_PER_BTC)
        .ok_or_else(too_much)?;
    if sats == 0 {
        return Err(invalid("the amount must be at least 1 sat (0.00000001 BTC)"));
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

/// A BIP21 payment request: `bitcoin:ADDRESS?amount=BTC&label=…&message=…`, and a unified
/// QR's `lightning=BOLT11`.
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
    /// The BOLT11 invoice of a unified QR's `lightning` parameter, lowercased: the same
    /// payment over Lightning.
    pub lightning: Option<String>,
}

impl PaymentUri {
    /// Reads a `bitcoin:` URI (the scheme and parameter names in any case). `amount` is in BTC
    /// ([`parse_btc_amount`]); `label` and `message` are percent-decoded; `lightning` must be a
    /// BOLT11 invoice (checked as [`parse_invoice_arg`] does, without a `lightning:` prefix); a
    /// `req-` parameter is refused, as BIP21 requires of one the client does not understand;
    /// any other parameter is ignored.
    pub fn parse(input: &str) -> Result<PaymentUri, DestinationError> {
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
            lightning: None,
        };
        for param in query.split('&').filter(|p| !p.is_empty()) {
            let (key, value) = param.split_once('=').unwrap_or((param, ""));
            let key = key.to_ascii_lowercase();
            match key.as_str() {
                "amount" => {
                    if uri.amount.is_some() {
                        return Err(bad("it has two amounts".into()));
                    }
                    uri.amount = Some(parse_btc_amount(value).map_err(|e| bad(e.0))?);
                }
                "label" => uri.label = Some(percent_decode(value).map_err(bad)?),
                "message" => uri.message = Some(percent_decode(value).map_err(bad)?),
                "lightning" => {
                    if uri.lightning.is_some() {
                        return Err(bad("it has two Lightning invoices".into()));
                    }
                    let invoice = parse_invoice(value)
                        .map_err(|why| bad(format!("its `lightning` is not a valid Lightning invoice: {why}")))?;
                    uri.lightning = Some(invoice);
                }
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

/// What to pay, as a person writes it: the destination and, for a BIP21 URI, the amount it
/// asks for, its message and a unified QR's Lightning invoice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentTarget {
    /// Who to pay.
    pub destination: Destination,
    /// The amount a BIP21 URI asks for, sats.
    pub amount: Option<u64>,
    /// A BIP21 URI's message.
    pub memo: Option<String>,
    /// A BIP21 URI's `lightning=` invoice, which a payer may pay instead of the address.
    pub lightning: Option<String>,
}

impl From<Destination> for PaymentTarget {
    fn from(destination: Destination) -> Self {
        PaymentTarget {
            destination,
            amount: None,
            memo: None,
            lightning: None,
        }
    }
}

impl PaymentTarget {
    /// Reads a BIP21 `bitcoin:` URI ([`PaymentUri::parse`]) or any other destination
    /// ([`Destination::parse`]).
    pub fn parse(input: &str) -> Result<PaymentTarget, DestinationError> {
        if strip_prefix_ignore_case(input.trim(), BITCOIN_SCHEME).is_some() {
            let uri = PaymentUri::parse(input)?;
            return Ok(PaymentTarget {
                destination: Destination::OnchainAddress(uri.address),
                amount: uri.amount,
                memo: uri.message,
                lightning: uri.lightning,
            });
        }
        Destination::parse(input).map(PaymentTarget::from)
    }

    /// The amount to send, sats: `sats` given separately (on the command line, in a request),
    /// the URI's amount, or both when they agree.
    pub fn amount(&self, sats: Option<u64>) -> Result<Option<u64>, DestinationError> {
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
    pub fn parse(input: &str) -> Result<Self, DestinationError> {
        let s = input.trim();
        if let Some(name) = s.strip_prefix('@') {
            return Self::username(name);
        }
        if strip_prefix_ignore_case(s, BITCOIN_SCHEME).is_some() {
            return PaymentUri::parse(s).map(|uri| Destination::OnchainAddress(uri.address));
        }
        if let Some(entity) = strip_prefix_ignore_case(s, NOSTR_SCHEME) {
            return Self::nostr_user(entity.trim());
        }
        if let Some(token) = strip_prefix_ignore_case(s, CASHU_SCHEME) {
            return Self::cashu_token(token.trim());
        }
        if looks_like_nostr_user(&s.to_ascii_lowercase()) {
            return Self::nostr_user(s);
        }
        if looks_like_cashu_token(s) {
            return Self::cashu_token(s);
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
        if let Some(rest) = strip_prefix_ignore_case(s, LNURLW_SCHEME) {
            if rest.is_empty() || rest.starts_with('/') || rest.chars().any(char::is_whitespace) {
                return Err(invalid(format!("`{s}` is not a valid lnurlw:// link")));
            }
            return Ok(Destination::LnurlWithdraw(format!("{LNURLW_SCHEME}{rest}")));
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

    /// A NOSTR user destination from an `npub1…` or `nprofile1…`.
    fn nostr_user(entity: &str) -> Result<Self, DestinationError> {
        parse_nostr_user(entity)
            .map(Destination::NostrPubkey)
            .map_err(|why| invalid(format!("`{}` is not a valid NOSTR user: {why}", abbreviate(entity))))
    }

    /// A Cashu token destination, checked for shape.
    fn cashu_token(token: &str) -> Result<Self, DestinationError> {
        parse_cashu_token(token)
            .map(Destination::CashuToken)
            .map_err(|why| invalid(format!("`{}` is not a valid Cashu token: {why}", abbreviate(token))))
    }

    /// A username destination, checked for emptiness and whitespace.
    fn username(name: &str) -> Result<Self, DestinationError> {
        if name.is_empty() {
            return Err(invalid(
                "destination must be a username, a wallet id, a Lightning invoice, a Lightning address, an LNURL, a Bitcoin address, an npub or a Cashu token",
            ));
        }
        if name
            .chars()
            .any(|c| c.is_whitespace() || c == '@' || c == ':' || c == '/')
        {
            return Err(invalid(format!("`{name}` is neither a wallet id nor a valid username")));
        }
        Ok(Destination::Username(name.to_owned()))
    }

    /// The kind, as serialised and in the CLI's `--json` output: `WALLET_ID`, `USERNAME`,
    /// `LN_INVOICE`, `LN_ADDRESS`, `LNURL`, `ONCHAIN_ADDRESS`, `LNURL_WITHDRAW`,
    /// `NOSTR_PUBKEY` or `CASHU_TOKEN`.
    pub fn kind(&self) -> &'static str {
        match self {
            Destination::WalletId(_) => "WALLET_ID",
            Destination::Username(_) => "USERNAME",
            Destination::Invoice(_) => "LN_INVOICE",
            Destination::LightningAddress(_) => "LN_ADDRESS",
            Destination::Lnurl(_) => "LNURL",
            Destination::OnchainAddress(_) => "ONCHAIN_ADDRESS",
            Destination::LnurlWithdraw(_) => "LNURL_WITHDRAW",
            Destination::NostrPubkey(_) => "NOSTR_PUBKEY",
            Destination::CashuToken(_) => "CASHU_TOKEN",
        }
    }

    /// The wallet id, username, invoice, address, link, public key or token itself.
    pub fn value(&self) -> &str {
        match self {
            Destination::WalletId(v)
            | Destination::Username(v)
            | Destination::Invoice(v)
            | Destination::LightningAddress(v)
            | Destination::Lnurl(v)
            | Destination::OnchainAddress(v)
            | Destination::LnurlWithdraw(v)
            | Destination::NostrPubkey(v)
            | Destination::CashuToken(v) => v,
        }
    }

    /// The destination as text that [`Destination::parse`] reads back to it: a username with
    /// its `@`, a NOSTR user as an `npub`, anything else as itself.
    pub fn written(&self) -> String {
        match self {
            Destination::Username(name) => format!("@{name}"),
            Destination::NostrPubkey(key) => npub(key).unwrap_or_else(|| key.clone()),
            other => other.value().to_owned(),
        }
    }

    /// Whether it is paid on-chain.
    pub fn is_onchain(&self) -> bool {
        matches!(self, Destination::OnchainAddress(_))
    }

    /// Whether paying it takes an amount: everything but an invoice (which may carry its
    /// own) and a token (which holds its own). A withdraw link takes the amount to claim.
    pub fn needs_amount(&self) -> bool {
        !matches!(self, Destination::Invoice(_) | Destination::CashuToken(_))
    }

    /// Checks an amount for this destination: never 0, and present unless it is an invoice
    /// (for an invoice, the server checks that an amount is given exactly when the invoice
    /// has none).
    pub fn check_amount(&self, amount: Option<u64>) -> Result<(), DestinationError> {
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
            Destination::LnurlWithdraw(link) => write!(f, "withdraw link {}", abbreviate(link)),
            Destination::NostrPubkey(key) => write!(f, "NOSTR user {}", abbreviate(key)),
            Destination::CashuToken(token) => write!(f, "Cashu token {}", abbreviate(token)),
        }
    }
}

/// Reads a BOLT11 invoice (optionally with a `lightning:` prefix, any single case); returns it
/// lowercased, or an error if it is not one.
pub fn parse_invoice_arg(input: &str) -> Result<String, DestinationError> {
    let s = input.trim();
    let s = strip_prefix_ignore_case(s, LIGHTNING_SCHEME).map_or(s, str::trim);
    parse_invoice(s).map_err(|why| invalid(format!("`{}` is not a valid Lightning invoice: {why}", abbreviate(s))))
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// NIP-19's examples: an npub and an nprofile with relay hints, and their keys.
    const SPEC_NPUB: &str = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg";
    const SPEC_NPUB_HEX: &str = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e";
    const SPEC_NPROFILE: &str = "nprofile1qqsrhuxx8l9ex335q7he0f09aej04zpazpl0ne2cgukyawd24mayt8gpp4mhxue69uhhytnc9e3k7mgpz4mhxue69uhkg6nzv9ejuumpv34kytnrdaksjlyr9p";
    const SPEC_NPROFILE_HEX: &str = "3bf0c63fcb93463407af97a5e5ee64fa883d107ef9e558472c4eb9aaaefa459d";

    #[test]
    fn nostr_users_are_read_to_their_keys() {
        let key = |s: &str| match Destination::parse(s) {
            Ok(Destination::NostrPubkey(k)) => k,
            other => panic!("{s}: {other:?}"),
        };
        assert_eq!(key(SPEC_NPUB), SPEC_NPUB_HEX);
        assert_eq!(key(&SPEC_NPUB.to_ascii_uppercase()), SPEC_NPUB_HEX);
        assert_eq!(key(&format!("nostr:{SPEC_NPUB}")), SPEC_NPUB_HEX);
        assert_eq!(key(&format!(" NOSTR:{SPEC_NPROFILE} ")), SPEC_NPROFILE_HEX);
        assert_eq!(Destination::NostrPubkey(SPEC_NPUB_HEX.into()).written(), SPEC_NPUB);
        // A broken checksum, another NIP-19 kind behind `nostr:`, a key of the wrong size.
        let mut broken = SPEC_NPUB.to_owned();
        broken.replace_range(20..21, if &broken[20..21] == "q" { "p" } else { "q" });
        for bad in [
            broken.as_str(),
            "nostr:note1fntxtkcy9pjwucqwa9mddn7v03wwwsu9j330jj350nvhpky2tuaspk6nqc",
            "nostr:alice",
            "npub1qqqsyqcyq5rqwzqf",
        ] {
            let err = Destination::parse(bad).expect_err(bad);
            assert!(err.0.contains("NOSTR user"), "{bad}: {err}");
        }
    }

    #[test]
    fn cashu_tokens_and_withdraw_links_are_told_apart() {
        let token = format!("cashuB{}", "o2F0gaJhaUgA_9SLj17PgGFwgaNhYQFhc3hA".repeat(3));
        assert_eq!(Destination::parse(&token), Ok(Destination::CashuToken(token.clone())));
        assert_eq!(
            Destination::parse(&format!("cashu:{token}")),
            Ok(Destination::CashuToken(token.clone()))
        );
        assert!(!Destination::CashuToken(token.clone()).needs_amount());
        // A short name that starts like a token is a username; a long one must be a token.
        assert_eq!(
            Destination::parse("cashuBob"),
            Ok(Destination::Username("cashuBob".into()))
        );
        let err = Destination::parse(&format!("{token}!")).expect_err("bad character");
        assert!(err.0.contains("not a base64 character"), "{err}");
        assert!(Destination::parse("cashu:cashuAshort").is_err());

        assert_eq!(
            Destination::parse("LNURLW://pay.example.com/w/abc?k1=1"),
            Ok(Destination::LnurlWithdraw("lnurlw://pay.example.com/w/abc?k1=1".into()))
        );
        assert!(Destination::parse("lnurlw://").is_err());
        assert!(Destination::LnurlWithdraw("lnurlw://a.b/c".into()).needs_amount());
        // A scheme that is none of ours is not a username either.
        assert!(Destination::parse("lnurlx://a.b/c").is_err());
    }

    #[test]
    fn every_destination_reads_back_from_its_written_form() {
        let token = format!("cashuA{}", "eyJ0b2tlbiI6W3sibWludCI6Imh0dHA".repeat(3));
        let all = [
            Destination::WalletId("3f2504e0-4f89-41d3-9a0c-0305e82c3301".into()),
            Destination::Username("bob".into()),
            Destination::Username("lnbcfan".into()),
            Destination::Invoice(SPEC_INVOICE.into()),
            Destination::LightningAddress("alice@example.com".into()),
            Destination::Lnurl(SPEC_LNURL.to_ascii_lowercase()),
            Destination::Lnurl("lnurlp://example.com/p/1".into()),
            Destination::OnchainAddress("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4".into()),
            Destination::LnurlWithdraw("lnurlw://example.com/w/1".into()),
            Destination::NostrPubkey(SPEC_NPUB_HEX.into()),
            Destination::CashuToken(token),
        ];
        for d in all {
            assert_eq!(Destination::parse(&d.written()).as_ref(), Ok(&d), "{}", d.written());
        }
    }

    #[test]
    fn a_unified_uri_keeps_its_invoice() {
        let uri = format!("bitcoin:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4?amount=0.0025&lightning={SPEC_INVOICE}");
        let target = PaymentTarget::parse(&uri).expect("unified URI");
        assert!(target.destination.is_onchain());
        assert_eq!(target.amount, Some(250_000));
        assert_eq!(target.lightning.as_deref(), Some(SPEC_INVOICE));
        assert_eq!(PaymentTarget::parse("alice").map(|t| t.lightning), Ok(None));
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
        assert_eq!(err.as_deref(), Some("paying alice@example.com needs an amount in sats"));
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
            let e = parse_btc_amount(bad).err().map(|e| e.0).unwrap_or_default();
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
                lightning: None,
            })
        );
        // Upper case (QR codes), unknown optional parameters and a BIP21 unified QR's `lightning`.
        let upper = format!(
            "BITCOIN:{}?AMOUNT=1.5&LIGHTNING={}&foo=bar",
            address.to_ascii_uppercase(),
            SPEC_INVOICE.to_ascii_uppercase()
        );
        let target = PaymentTarget::parse(&upper).ok();
        assert_eq!(
            target,
            Some(PaymentTarget {
                destination: Destination::OnchainAddress(address.into()),
                amount: Some(150_000_000),
                memo: None,
                lightning: Some(SPEC_INVOICE.into()),
            })
        );
        assert_eq!(parsed(&upper), onchain(address), "Destination::parse keeps the address");
        assert_eq!(
            PaymentUri::parse(&upper).ok().and_then(|uri| uri.lightning).as_deref(),
            Some(SPEC_INVOICE)
        );
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
            (
                format!("bitcoin:{address}?lightning={SPEC_INVOICE}&lightning={SPEC_INVOICE}"),
                "two Lightning invoices",
            ),
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
    fn bip21_lightning_parameter() {
        let address = ADDRESSES[3];
        // Present and valid: lowercased, the rest of the URI read as without it.
        let uri = PaymentUri::parse(&format!(
            "bitcoin:{address}?amount=0.00001&lightning={}",
            SPEC_INVOICE.to_ascii_uppercase()
        ));
        assert_eq!(
            uri,
            Ok(PaymentUri {
                address: address.into(),
                amount: Some(1_000),
                label: None,
                message: None,
                lightning: Some(SPEC_INVOICE.into()),
            })
        );
        // Any well-shaped invoice of any network, in the first or a later parameter.
        let regtest = invoice("lnbcrt15u");
        let uri = PaymentUri::parse(&format!("bitcoin:{address}?lightning={regtest}&label=shop"));
        assert_eq!(
            uri.map(|u| (u.lightning, u.label)),
            Ok((Some(regtest), Some("shop".into())))
        );
        // Absent: none.
        assert_eq!(
            PaymentUri::parse(&format!("bitcoin:{address}?amount=1")).map(|u| u.lightning),
            Ok(None)
        );
        // Malformed: the whole URI is refused, saying why.
        for (junk, why) in [
            ("LNBC1XYZ", "it is too short"),
            ("", "it has no `1` separator"),
            (&format!("lightning:{SPEC_INVOICE}")[..], "is not an invoice prefix"),
            (&format!("{}b", invoice("lnbc")), "`b` is not a bech32 character"),
            (&invoice("lnxy")[..], "`lnxy` is not an invoice prefix"),
            (&SPEC_LNURL.to_ascii_lowercase()[..], "`lnurl` is not an invoice prefix"),
        ] {
            let bad = format!("bitcoin:{address}?lightning={junk}");
            let e = PaymentUri::parse(&bad).err().map(|e| e.0).unwrap_or_default();
            assert!(
                e.contains("is not a valid bitcoin: URI: its `lightning` is not a valid Lightning invoice: "),
                "{junk}: {e}"
            );
            assert!(e.contains(why), "{junk}: {e}");
            assert!(PaymentTarget::parse(&bad).is_err(), "{junk}");
            assert!(Destination::parse(&bad).is_err(), "{junk}");
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
        assert_eq!(e.as_deref(), Some("the payment request asks for 10000 sats, not 10001"));
        let plain = PaymentTarget::parse(ADDRESSES[0]).map_err(|e| e.to_string());
        assert_eq!(plain.as_ref().map(|t| t.amount(Some(5)).ok()), Ok(Some(Some(5))));
        assert_eq!(plain.as_ref().map(|t| t.amount(None).ok()), Ok(Some(None)));
    }
}
