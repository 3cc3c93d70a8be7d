//! The official Cashu test vectors (NUT-00, 01, 02, 11, 12, 13 and 20), read at run time from
//! `FLASH_TEST_VECTORS/cashu` or `../shared/vectors/cashu` beside the checkout (never copied into
//! the repository) and checked through the mint's own code path
//! where it has one: keyset ids, blind signatures with their DLEQ proofs, spending conditions,
//! token parsing (`ecashRedeem`) and NUT-20 mint request signatures (`Mint::mint`). Vectors that
//! only a wallet computes (blinding, NUT-13 secrets) are checked on the `cashu` functions a
//! wallet restoring from this mint uses.
//!
//! The markdown is parsed with plain string handling: fenced blocks, the prose that introduces
//! them and the backticked values in it. Without the vectors every test prints why and skips;
//! under CI it fails.

use std::collections::HashMap;
use std::str::FromStr;

use bitcoin::bip32::{ChildNumber, DerivationPath, Xpriv};
use bitcoin::secp256k1::schnorr::Signature;
use cashu::dhke::{blind_message, hash_e, hash_to_curve};
use cashu::nuts::nut10::SpendingConditionVerification;
use cashu::nuts::{
    BlindSignature, BlindedMessage, CurrencyUnit, Id, Keys, MeltRequest, MintRequest, Proof, PublicKey, SecretKey,
    SwapRequest, Token,
};
use cashu::secret::Secret;
use cashu::util::hex;
use cashu::Amount;
use flash_mint::{blind_sign, keyset_id, verify_conditions, IdVersion, MintError};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// One vector file of the official Cashu set, or `None` when the set is not here (the test
/// then skips, as [`flash_store::testing::vectors_dir`] says why). A file missing from a set
/// that is here fails.
fn read(name: &str) -> Option<String> {
    let path = flash_store::testing::vectors_dir("cashu")?.join(name);
    match std::fs::read_to_string(&path) {
        Ok(text) => Some(text),
        Err(e) => panic!("Cashu test vector file {} cannot be read ({e})", path.display()),
    }
}

/// A fenced block of a vector file with the text around it.
#[derive(Debug)]
struct Block {
    /// The last `## ` heading before it.
    section: String,
    /// The last heading of any level before it.
    heading: String,
    /// The prose between the previous block and this one.
    before: String,
    /// The fence's language (`json`, `shell`, or empty).
    lang: String,
    body: String,
    /// The prose between this block and the next one.
    after: String,
}

fn blocks(md: &str) -> Vec<Block> {
    let mut out: Vec<Block> = Vec::new();
    let (mut section, mut heading, mut prose) = (String::new(), String::new(), String::new());
    let mut lines = md.lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            let mut body = String::new();
            for inner in lines.by_ref() {
                if inner.trim_start().starts_with("```") {
                    break;
                }
                body.push_str(inner);
                body.push('\n');
            }
            if let Some(previous) = out.last_mut() {
                previous.after = prose.clone();
            }
            out.push(Block {
                section: section.clone(),
                heading: heading.clone(),
                before: std::mem::take(&mut prose),
                lang: lang.trim().to_string(),
                body,
                after: String::new(),
            });
        } else {
            if line.starts_with('#') {
                let title = line.trim_start_matches('#').trim().to_string();
                if line.starts_with("## ") {
                    section = title.clone();
                }
                heading = title;
            }
            prose.push_str(line);
            prose.push('\n');
        }
    }
    if let Some(last) = out.last_mut() {
        last.after = prose;
    }
    out
}

/// The one block whose heading starts with `heading`.
fn block_under<'a>(blocks: &'a [Block], file: &str, heading: &str) -> &'a Block {
    let found: Vec<&Block> = blocks.iter().filter(|b| b.heading.starts_with(heading)).collect();
    assert_eq!(
        found.len(),
        1,
        "{file}: expected one block under the heading {heading:?}"
    );
    found[0]
}

/// The values between backticks in `text`.
fn backticked(text: &str) -> Vec<&str> {
    text.split('`').skip(1).step_by(2).collect()
}

/// The first backticked value on the line of `text` that contains `label`.
fn labelled<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.contains(label))
        .and_then(|l| backticked(l).first().copied())
}

/// The `key: value` lines of a shell block (comments after `#` dropped, quotes stripped).
fn key_values(body: &str) -> HashMap<String, String> {
    body.lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().trim_matches('"').to_string()))
        .collect()
}

/// The `# Test N` groups of a shell block, with their `key: value` lines.
fn shell_tests(body: &str) -> Vec<(String, HashMap<String, String>)> {
    let mut tests: Vec<(String, String)> = Vec::new();
    for line in body.lines() {
        if line.trim_start().starts_with("# Test") {
            tests.push((line.trim_start_matches('#').trim().to_string(), String::new()));
        } else if let Some((_, lines)) = tests.last_mut() {
            lines.push_str(line);
            lines.push('\n');
        }
    }
    tests
        .into_iter()
        .map(|(name, lines)| (name, key_values(&lines)))
        .collect()
}

/// The value of `key`, which the vector must give.
fn get<'a>(values: &'a HashMap<String, String>, key: &str, vector: &str) -> &'a str {
    values
        .get(key)
        .unwrap_or_else(|| panic!("{vector}: no `{key}` in the vector"))
}

/// The non-comment lines of a block (one serialized token per line).
fn value_lines(body: &str) -> Vec<&str> {
    body.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

fn json(text: &str, vector: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{vector}: not JSON: {e}"))
}

/// The "JSON" of the TokenV4 vectors: CBOR diagnostic `h'…'` byte strings (read as hex strings)
/// and trailing commas.
fn relaxed_json(text: &str, vector: &str) -> Value {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    let mut in_string = false;
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if c == '\\' {
                out.extend(chars.next());
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            'h' if chars.peek() == Some(&'\'') => {
                chars.next();
                out.push('"');
                out.extend(chars.by_ref().take_while(|&n| n != '\''));
                out.push('"');
            }
            ',' if matches!(chars.clone().find(|n| !n.is_whitespace()), Some('}' | ']')) => {}
            _ => out.push(c),
        }
    }
    json(&out, vector)
}

fn str_at(value: &Value, key: &str, vector: &str) -> String {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("{vector}: `{key}` is not a string in {value}"))
        .to_string()
}

fn u64_at(value: &Value, key: &str, vector: &str) -> u64 {
    value[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{vector}: `{key}` is not an integer in {value}"))
}

fn array_at<'a>(value: &'a Value, key: &str, vector: &str) -> &'a Vec<Value> {
    value[key]
        .as_array()
        .unwrap_or_else(|| panic!("{vector}: `{key}` is not an array in {value}"))
}

fn bytes(hex_str: &str, vector: &str) -> Vec<u8> {
    hex::decode(hex_str).unwrap_or_else(|e| panic!("{vector}: bad hex {hex_str:?}: {e}"))
}

fn public_key(hex_str: &str, vector: &str) -> PublicKey {
    PublicKey::from_hex(hex_str).unwrap_or_else(|e| panic!("{vector}: bad public key {hex_str:?}: {e}"))
}

fn secret_key(hex_str: &str, vector: &str) -> SecretKey {
    SecretKey::from_hex(hex_str).unwrap_or_else(|e| panic!("{vector}: bad private key {hex_str:?}: {e}"))
}

fn id(text: &str, vector: &str) -> Id {
    Id::from_str(text).unwrap_or_else(|e| panic!("{vector}: bad keyset id {text:?}: {e}"))
}

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Any keyset id: the blind-signature vectors do not depend on it.
fn some_keyset() -> Id {
    id("009a1f293253e41e", "a keyset id")
}

// ---------------------------------------------------------------------------------------------
// NUT-00
// ---------------------------------------------------------------------------------------------

/// `Y = hash_to_curve(secret)`, the key of a redeemed note.
#[test]
fn nut00_hash_to_curve() {
    let Some(text) = read("00-tests.md") else { return };
    let blocks = blocks(&text);
    let tests = shell_tests(&block_under(&blocks, "00-tests.md", "Hash-to-curve").body);
    assert!(!tests.is_empty(), "00-tests.md: no hash-to-curve vectors found");
    for (name, values) in &tests {
        let vector = format!("NUT-00 hash_to_curve {name}");
        let message = bytes(get(values, "Message", &vector), &vector);
        let point = hash_to_curve(&message).unwrap_or_else(|e| panic!("{vector}: {e}"));
        assert_eq!(point.to_hex(), get(values, "Point", &vector), "{vector}");
    }
}

/// `B_ = Y + r·G`: computed by wallets, not the mint; checked on the `cashu` function.
#[test]
fn nut00_blinded_messages() {
    let Some(text) = read("00-tests.md") else { return };
    let blocks = blocks(&text);
    let tests = shell_tests(&block_under(&blocks, "00-tests.md", "Blinded messages").body);
    assert!(!tests.is_empty(), "00-tests.md: no blinded-message vectors found");
    for (name, values) in &tests {
        let vector = format!("NUT-00 blinded message {name}");
        let x = bytes(get(values, "x", &vector), &vector);
        let r = secret_key(get(values, "r", &vector), &vector);
        let (blinded, _) = blind_message(&x, Some(r)).unwrap_or_else(|e| panic!("{vector}: {e}"));
        assert_eq!(blinded.to_hex(), get(values, "B_", &vector), "{vector}");
    }
}

/// `C_ = k·B_` through the mint's signer, whose DLEQ proof must verify too.
#[test]
fn nut00_blinded_signatures() {
    let Some(text) = read("00-tests.md") else { return };
    let blocks = blocks(&text);
    let tests = shell_tests(&block_under(&blocks, "00-tests.md", "Blinded signatures").body);
    assert!(!tests.is_empty(), "00-tests.md: no blinded-signature vectors found");
    for (name, values) in &tests {
        let vector = format!("NUT-00 blinded signature {name}");
        let k = secret_key(get(values, "mint private key", &vector), &vector);
        let b = public_key(get(values, "B_", &vector), &vector);
        let output = BlindedMessage::new(Amount::from(1), some_keyset(), b);
        let signature = blind_sign(&k, some_keyset(), &output).unwrap_or_else(|e| panic!("{vector}: {e}"));
        assert_eq!(signature.c.to_hex(), get(values, "C_", &vector), "{vector}: C_");
        signature
            .verify_dleq(k.public_key(), b)
            .unwrap_or_else(|e| panic!("{vector}: the mint's DLEQ proof does not verify: {e}"));
    }
}

/// What a token holds, as the vectors state it.
#[derive(Debug, PartialEq, Eq)]
struct TokenView {
    mint: String,
    unit: Option<String>,
    memo: Option<String>,
    proofs: Vec<ProofView>,
}

#[derive(Debug, PartialEq, Eq)]
struct ProofView {
    id: String,
    amount: u64,
    secret: String,
    c: String,
}

impl TokenView {
    /// A token as `ecashRedeem` reads it.
    fn of(token: &Token, vector: &str) -> TokenView {
        let proofs = token
            .proofs(&[])
            .unwrap_or_else(|e| panic!("{vector}: proofs: {e}"))
            .iter()
            .map(|p| ProofView {
                id: p.keyset_id.to_string(),
                amount: p.amount.to_u64(),
                secret: p.secret.to_string(),
                c: p.c.to_hex(),
            })
            .collect();
        TokenView {
            mint: token
                .mint_url()
                .unwrap_or_else(|e| panic!("{vector}: mint url: {e}"))
                .to_string(),
            unit: token.unit().map(|u| u.to_string()),
            memo: token.memo().clone(),
            proofs,
        }
    }

    /// A V3 token's JSON.
    fn v3(value: &Value, vector: &str) -> TokenView {
        let entries = array_at(value, "token", vector);
        assert_eq!(entries.len(), 1, "{vector}: one mint per token");
        let entry = &entries[0];
        TokenView {
            mint: str_at(entry, "mint", vector),
            unit: value["unit"].as_str().map(str::to_string),
            memo: value["memo"].as_str().map(str::to_string),
            proofs: array_at(entry, "proofs", vector)
                .iter()
                .map(|p| ProofView {
                    id: str_at(p, "id", vector),
                    amount: u64_at(p, "amount", vector),
                    secret: str_at(p, "secret", vector),
                    c: str_at(p, "C", vector),
                })
                .collect(),
        }
    }

    /// A V4 token's (CBOR diagnostic) JSON.
    fn v4(value: &Value, vector: &str) -> TokenView {
        let mut proofs = Vec::new();
        for entry in array_at(value, "t", vector) {
            let keyset = str_at(entry, "i", vector);
            for p in array_at(entry, "p", vector) {
                proofs.push(ProofView {
                    id: keyset.clone(),
                    amount: u64_at(p, "a", vector),
                    secret: str_at(p, "s", vector),
                    c: str_at(p, "c", vector),
                });
            }
        }
        TokenView {
            mint: str_at(value, "m", vector),
            unit: Some(str_at(value, "u", vector)),
            memo: value["d"].as_str().map(str::to_string),
            proofs,
        }
    }

    fn total(&self) -> u64 {
        self.proofs.iter().map(|p| p.amount).sum()
    }
}

/// A token given as JSON and as its serialization (a `cashuA…`/`cashuB…` string, or the raw
/// `crawB…` bytes) reads back as that JSON says.
#[test]
fn nut00_token_serialization() {
    let Some(text) = read("00-tests.md") else { return };
    let blocks = blocks(&text);
    let mut checked = 0;
    for (i, block) in blocks.iter().enumerate().filter(|(_, b)| b.lang == "json") {
        let vector = format!("NUT-00 {} / {}", block.section, block.heading);
        let expected = if block.body.contains("\"token\"") {
            TokenView::v3(&json(&block.body, &vector), &vector)
        } else {
            TokenView::v4(&relaxed_json(&block.body, &vector), &vector)
        };
        let token = match blocks.get(i + 1).filter(|next| next.lang.is_empty()) {
            Some(serialized) => {
                let text = serialized.body.trim();
                Token::from_str(text).unwrap_or_else(|e| panic!("{vector}: {text} does not parse: {e}"))
            }
            None => {
                let raw = backticked(&block.after)
                    .into_iter()
                    .find_map(|b| b.strip_prefix("h'").and_then(|b| b.strip_suffix('\'')))
                    .unwrap_or_else(|| panic!("{vector}: neither a serialized token nor raw bytes follow"));
                Token::try_from(&bytes(raw, &vector)).unwrap_or_else(|e| panic!("{vector}: raw bytes: {e}"))
            }
        };
        let actual = TokenView::of(&token, &vector);
        assert_eq!(actual, expected, "{vector}");
        let value = token.value().unwrap_or_else(|e| panic!("{vector}: value: {e}"));
        assert_eq!(value.to_u64(), expected.total(), "{vector}: amount");
        checked += 1;
    }
    // V3, V4 single keyset, V4 multiple keysets, V4 raw bytes.
    assert!(
        checked >= 4,
        "00-tests.md: only {checked} token serialization vectors found"
    );
}

/// The malformed V3 tokens are refused; the well-formed ones (with and without base64
/// padding) read as the serialization vector's JSON says.
#[test]
fn nut00_token_deserialization() {
    let Some(text) = read("00-tests.md") else { return };
    let blocks = blocks(&text);
    let json_block = blocks
        .iter()
        .find(|b| b.section.starts_with("Serialization of TokenV3") && b.lang == "json")
        .expect("00-tests.md: the TokenV3 serialization vector");
    let expected = TokenView::v3(&json(&json_block.body, "NUT-00 TokenV3 JSON"), "NUT-00 TokenV3 JSON");
    let (mut refused, mut accepted) = (0, 0);
    for block in blocks
        .iter()
        .filter(|b| b.section.starts_with("Deserialization of TokenV3"))
    {
        let invalid = block.before.contains("incorrectly formatted");
        let mut parsed = Vec::new();
        for (n, text) in value_lines(&block.body).into_iter().enumerate() {
            let vector = format!("NUT-00 TokenV3 deserialization: {} (token {n})", block.before.trim());
            let result = Token::from_str(text);
            if invalid {
                assert!(result.is_err(), "{vector}: accepted {result:?}");
                refused += 1;
                continue;
            }
            let token = result.unwrap_or_else(|e| panic!("{vector}: refused: {e}"));
            let actual = TokenView::of(&token, &vector);
            assert_eq!(actual.mint, expected.mint, "{vector}: mint");
            assert_eq!(actual.unit, expected.unit, "{vector}: unit");
            assert_eq!(actual.proofs, expected.proofs, "{vector}: proofs");
            let value = token.value().unwrap_or_else(|e| panic!("{vector}: value: {e}"));
            assert_eq!(value.to_u64(), expected.total(), "{vector}: amount");
            parsed.push(token);
            accepted += 1;
        }
        if let [padded, unpadded] = parsed.as_slice() {
            assert_eq!(padded, unpadded, "NUT-00: the padded and unpadded V3 tokens differ");
        }
    }
    assert!(
        refused >= 2 && accepted >= 3,
        "00-tests.md: {refused} invalid, {accepted} valid V3 tokens found"
    );
}

// ---------------------------------------------------------------------------------------------
// NUT-01
// ---------------------------------------------------------------------------------------------

/// Keysets with a short or uncompressed key are refused; the correct ones parse, up to the
/// amount 2^63.
#[test]
fn nut01_keysets() {
    let Some(text) = read("01-tests.md") else { return };
    let blocks = blocks(&text);
    let mut valid = None;
    let (mut refused, mut accepted) = (0, 0);
    for (n, block) in blocks.iter().enumerate().filter(|(_, b)| b.lang == "json") {
        if block.before.contains("are incorrect keysets") {
            valid = Some(false);
        } else if block.before.contains("are correct keysets") {
            valid = Some(true);
        }
        let vector = format!(
            "NUT-01 keyset {n} ({})",
            block.before.trim().lines().last().unwrap_or_default()
        );
        let result = serde_json::from_str::<Keys>(&block.body);
        match valid {
            Some(false) => {
                assert!(result.is_err(), "{vector}: an invalid keyset parsed: {result:?}");
                refused += 1;
            }
            Some(true) => {
                let keys = result.unwrap_or_else(|e| panic!("{vector}: a correct keyset is refused: {e}"));
                let given = json(&block.body, &vector).as_object().map_or(0, |o| o.len());
                assert_eq!(keys.len(), given, "{vector}: keys lost in parsing");
                accepted += 1;
            }
            None => panic!("{vector}: the file does not say whether this keyset is correct"),
        }
    }
    assert!(
        refused >= 2 && accepted >= 2,
        "01-tests.md: {refused} invalid, {accepted} valid keysets found"
    );
}

// ---------------------------------------------------------------------------------------------
// NUT-02
// ---------------------------------------------------------------------------------------------

/// Keyset ids, version 1 and 2, through the mint's `keyset_id`.
#[test]
fn nut02_keyset_ids() {
    let Some(text) = read("02-tests.md") else { return };
    let blocks = blocks(&text);
    let mut checked = (0, 0);
    for block in blocks.iter().filter(|b| b.lang == "json") {
        let expected = labelled(&block.before, "Keyset id:")
            .unwrap_or_else(|| panic!("02-tests.md: no keyset id before the keys under {:?}", block.heading));
        let vector = format!("NUT-02 {} keyset {expected}", block.section);
        let keys: Keys = serde_json::from_str(&block.body).unwrap_or_else(|e| panic!("{vector}: keys: {e}"));
        let unit = labelled(&block.before, "Unit:").map_or(CurrencyUnit::Sat, |u| {
            CurrencyUnit::from_str(u).unwrap_or_else(|e| panic!("{vector}: unit {u:?}: {e}"))
        });
        let number = |label: &str| {
            labelled(&block.before, label)
                .map(|v| u64::from_str(v).unwrap_or_else(|e| panic!("{vector}: {label} {v:?}: {e}")))
        };
        let (fee, expiry) = (number("Input fee ppk:").unwrap_or(0), number("Final expiry:"));
        let version = if block.section.starts_with("Version 1") {
            checked.0 += 1;
            IdVersion::V1
        } else if block.section.starts_with("Version 2") {
            checked.1 += 1;
            IdVersion::V2
        } else {
            panic!("{vector}: neither version 1 nor version 2");
        };
        let derived = keyset_id(version, &keys, &unit, fee, expiry);
        assert_eq!(
            derived.to_string(),
            expected,
            "{vector} (unit {unit}, input fee ppk {fee}, final expiry {expiry:?})"
        );
    }
    assert!(
        checked.0 >= 2 && checked.1 >= 3,
        "02-tests.md: {checked:?} (v1, v2) keysets found"
    );
}

// ---------------------------------------------------------------------------------------------
// NUT-11 (and the NUT-14 HTLCs among its SIG_ALL vectors)
// ---------------------------------------------------------------------------------------------

/// What 11-test.md says of each of its proofs and requests, by words of the prose that
/// introduces it. Every JSON block of the file must match exactly one of these.
const NUT11_VERDICTS: &[(&str, bool)] = &[
    // The multisig template itself carries no witness: nobody has signed, and with a refund
    // tag an expired locktime still needs the refund keys' signatures.
    ("is spendable via either", false),
    ("Has **TWO** valid signatures", true),
    ("Has **ONE** valid signature", true),
    ("is a `Proof` with a valid signature", true),
    ("invalid signature as it is on a different secret", false),
    ("2 signatures required to meet the multi-signature", true),
    ("one signature failing the multi-signature", false),
    // Locktime 21 (1970): in the past today.
    ("spendable because the locktime is in the past", true),
    // Locktime 99999999999 (year 5138): in the future today.
    ("**not** spendable because the locktime is in the future", false),
    // The example is the same request as the next, valid one.
    ("Example `SwapRequest`", true),
    ("with a valid sig_all signature", true),
    ("spending conditions are not identical across inputs", false),
    ("multiple valid signatures are required and provided", true),
    // Locktime 1 (1970).
    ("locktime has passed and the refund key signatures are valid", true),
    (
        "is a valid `SwapRequest` with an HTLC also locked to a public key",
        true,
    ),
    // Locktime 4854185133 (year 2123).
    ("is an invalid `SwapRequest` with an HTLC", false),
    ("is a valid `SwapRequest` with a multisig HTLC", true),
    // The example is the same request as the next, valid one.
    ("Example `MeltRequest`", true),
    ("is a valid `SIG_ALL` `MeltRequest`", true),
    ("is a valid multi-sig `SIG_ALL` `MeltRequest`", true),
];

/// A request spending proofs, as the mint receives it.
enum Spend {
    Swap(SwapRequest),
    Melt(MeltRequest<String>),
}

impl Spend {
    /// A swap or melt request, or a lone proof put in a swap (its SIG_INPUTS conditions do not
    /// involve the outputs).
    fn parse(value: Value, vector: &str) -> Spend {
        if value.get("inputs").is_none() {
            let proof: Proof = serde_json::from_value(value).unwrap_or_else(|e| panic!("{vector}: proof: {e}"));
            Spend::Swap(SwapRequest::new(vec![proof], Vec::new()))
        } else if value.get("quote").is_some() {
            Spend::Melt(serde_json::from_value(value).unwrap_or_else(|e| panic!("{vector}: melt request: {e}")))
        } else {
            Spend::Swap(serde_json::from_value(value).unwrap_or_else(|e| panic!("{vector}: swap request: {e}")))
        }
    }

    /// What `Mint::swap` / `Mint::melt` check of the spending conditions.
    fn verify(&self) -> Result<(), MintError> {
        match self {
            Spend::Swap(req) => verify_conditions(req),
            Spend::Melt(req) => verify_conditions(req),
        }
    }

    fn sig_all_msg(&self) -> String {
        match self {
            Spend::Swap(req) => req.sig_all_msg_to_sign(),
            Spend::Melt(req) => req.sig_all_msg_to_sign(),
        }
    }
}

/// P2PK (SIG_INPUTS, SIG_ALL, multisig, locktime, refund) and P2PK-locked HTLC spends are
/// accepted or refused by `flash_mint::verify_conditions` as the document says; the SIG_ALL
/// messages to sign are the documented ones.
#[test]
fn nut11_spending_conditions() {
    let Some(text) = read("11-test.md") else { return };
    let blocks = blocks(&text);
    let mut used = vec![false; NUT11_VERDICTS.len()];
    let (mut checked, mut messages) = (0, 0);
    let mut wrong = Vec::new();
    for (i, block) in blocks.iter().enumerate().filter(|(_, b)| b.lang == "json") {
        let matches: Vec<usize> = (0..NUT11_VERDICTS.len())
            .filter(|&n| block.before.contains(NUT11_VERDICTS[n].0))
            .collect();
        let [n] = matches.as_slice() else {
            panic!(
                "11-test.md: {} verdicts match the block introduced by {:?}",
                matches.len(),
                block.before.trim()
            );
        };
        used[*n] = true;
        let (words, valid) = NUT11_VERDICTS[*n];
        let vector = format!("NUT-11 [{}] {words:?}", block.heading);
        let spend = Spend::parse(json(&block.body, &vector), &vector);
        // Every verdict is checked before failing, so one report names all the disagreements.
        match (valid, spend.verify()) {
            (true, Err(e)) => wrong.push(format!("{vector}: refused, the document says valid: {e:?}")),
            (false, Ok(())) => wrong.push(format!("{vector}: accepted, the document says invalid")),
            _ => {}
        }
        checked += 1;

        // An example request is followed by its SIG_ALL message and that message's SHA-256.
        if let Some(msg) = blocks.get(i + 1).filter(|b| b.lang.is_empty()) {
            assert_eq!(spend.sig_all_msg(), msg.body.trim(), "{vector}: msg_to_sign");
            let digest = backticked(&msg.after)
                .into_iter()
                .find(|b| b.len() == 64)
                .unwrap_or_else(|| panic!("{vector}: no sha256 of the message"));
            assert_eq!(
                sha256_hex(spend.sig_all_msg().as_bytes()),
                digest,
                "{vector}: sha256(msg_to_sign)"
            );
            messages += 1;
        }
    }
    for (n, (words, _)) in NUT11_VERDICTS.iter().enumerate() {
        assert!(used[n], "11-test.md: no vector introduced by {words:?}");
    }
    assert!(messages >= 2, "11-test.md: {messages} SIG_ALL messages found");
    assert_eq!(checked, NUT11_VERDICTS.len(), "11-test.md: vectors checked");
    assert!(
        wrong.is_empty(),
        "{} of {checked} NUT-11 vectors disagree:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// NUT-12
// ---------------------------------------------------------------------------------------------

/// The `key: value` pairs of every shell block of a section, and its JSON block if any.
fn section<'a>(blocks: &'a [Block], title: &str) -> (HashMap<String, String>, Option<&'a Block>) {
    let mut values = HashMap::new();
    let mut json_block = None;
    let mut found = false;
    for block in blocks.iter().filter(|b| b.section.starts_with(title)) {
        found = true;
        match block.lang.as_str() {
            "shell" => values.extend(key_values(&block.body)),
            "json" => json_block = Some(block),
            _ => {}
        }
    }
    assert!(found, "12-tests.md: no section {title:?}");
    (values, json_block)
}

#[test]
fn nut12_hash_e() {
    let Some(text) = read("12-tests.md") else { return };
    let blocks = blocks(&text);
    let (values, _) = section(&blocks, "`hash_e` function");
    let vector = "NUT-12 hash_e";
    let keys = ["R1", "R2", "K", "C_"].map(|k| public_key(get(&values, k, vector), vector));
    assert_eq!(
        hex::encode(hash_e(keys)),
        get(&values, "hash(R1, R2, K, C_)", vector),
        "{vector}"
    );
}

/// The mint's signer reproduces `C_`, `e` and `s` exactly (the nonce is derived, not random),
/// and its proof verifies.
#[test]
fn nut12_deterministic_nonce() {
    let Some(text) = read("12-tests.md") else { return };
    let blocks = blocks(&text);
    let (values, _) = section(&blocks, "Deterministic nonce derivation");
    let vector = "NUT-12 deterministic nonce";
    let a = secret_key(get(&values, "a", vector), vector);
    let mint_key = public_key(get(&values, "A", vector), vector);
    assert_eq!(a.public_key(), mint_key, "{vector}: A = a·G");
    let b = public_key(get(&values, "B_", vector), vector);
    let signature = blind_sign(
        &a,
        some_keyset(),
        &BlindedMessage::new(Amount::from(1), some_keyset(), b),
    )
    .unwrap_or_else(|e| panic!("{vector}: blind_sign: {e}"));
    assert_eq!(signature.c.to_hex(), get(&values, "C_", vector), "{vector}: C_");
    let dleq = signature.dleq.as_ref().expect("blind_sign attaches a DLEQ proof");
    assert_eq!(dleq.e.to_secret_hex(), get(&values, "e", vector), "{vector}: e");
    assert_eq!(dleq.s.to_secret_hex(), get(&values, "s", vector), "{vector}: s");
    signature
        .verify_dleq(mint_key, b)
        .unwrap_or_else(|e| panic!("{vector}: e == hash(R1, R2, A, C_) fails: {e}"));
}

/// A blind signature's DLEQ proof verifies (and a tampered one does not).
#[test]
fn nut12_dleq_on_blind_signature() {
    let Some(text) = read("12-tests.md") else { return };
    let blocks = blocks(&text);
    let (values, block) = section(&blocks, "DLEQ verification on `BlindSignature`");
    let vector = "NUT-12 DLEQ on BlindSignature";
    let block = block.unwrap_or_else(|| panic!("{vector}: no JSON"));
    let mint_key = public_key(get(&values, "A", vector), vector);
    let b = public_key(get(&values, "B_", vector), vector);
    let signature: BlindSignature =
        serde_json::from_str(&block.body).unwrap_or_else(|e| panic!("{vector}: blind signature: {e}"));
    signature
        .verify_dleq(mint_key, b)
        .unwrap_or_else(|e| panic!("{vector}: a valid proof is refused: {e}"));
    // Not a vector: the same signature with `s` and `e` swapped must not verify.
    let mut tampered = signature.clone();
    let dleq = tampered.dleq.as_mut().expect("the vector has a DLEQ proof");
    std::mem::swap(&mut dleq.e, &mut dleq.s);
    assert!(
        tampered.verify_dleq(mint_key, b).is_err(),
        "{vector}: a tampered proof verifies"
    );
}

/// A proof's DLEQ proof (with its blinding factor `r`) verifies (and a tampered one does not).
#[test]
fn nut12_dleq_on_proof() {
    let Some(text) = read("12-tests.md") else { return };
    let blocks = blocks(&text);
    let (values, block) = section(&blocks, "DLEQ verification on `Proof`");
    let vector = "NUT-12 DLEQ on Proof";
    let block = block.unwrap_or_else(|| panic!("{vector}: no JSON"));
    let mint_key = public_key(get(&values, "A", vector), vector);
    let proof: Proof = serde_json::from_str(&block.body).unwrap_or_else(|e| panic!("{vector}: proof: {e}"));
    proof
        .verify_dleq(mint_key)
        .unwrap_or_else(|e| panic!("{vector}: a valid proof is refused: {e}"));
    // Not a vector: the same proof under another mint key must not verify.
    assert!(
        proof.verify_dleq(SecretKey::generate().public_key()).is_err(),
        "{vector}: verifies under another key"
    );
}

// ---------------------------------------------------------------------------------------------
// NUT-13
// ---------------------------------------------------------------------------------------------

/// Wallet-side: the secrets and blinding factors a wallet derives from its mnemonic (and sends
/// to `/v1/restore` as `B_ = hash_to_curve(secret) + r·G`).
#[test]
fn nut13_deterministic_secrets() {
    let Some(text) = read("13-tests.md") else { return };
    let blocks = blocks(&text);
    for version in ["Version 1", "Version 2"] {
        let in_version: Vec<&Block> = blocks.iter().filter(|b| b.section.starts_with(version)).collect();
        assert!(!in_version.is_empty(), "13-tests.md: no {version} section");
        let mut values = serde_json::Map::new();
        for block in in_version.iter().filter(|b| b.lang == "json") {
            let vector = format!("NUT-13 {}", block.section);
            match json(&block.body, &vector) {
                Value::Object(map) => values.extend(map),
                other => panic!("{vector}: not an object: {other}"),
            }
        }
        let vector = format!("NUT-13 {version}");
        // The keyset id is in the JSON (version 1) or in the prose (version 2).
        let keyset_text = values
            .get("keyset_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .or_else(|| {
                in_version
                    .iter()
                    .flat_map(|b| backticked(&b.before))
                    .find(|t| t.len() == 66 && t.chars().all(|c| c.is_ascii_hexdigit()))
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("{vector}: no keyset id"));
        let keyset = id(&keyset_text, &vector);

        // The integer representation and the BIP-32 path it gives (version 1).
        let path_template = values.get("derivation_path").and_then(Value::as_str);
        if let Some(template) = path_template {
            let int = values
                .get("keyset_id_int")
                .or_else(|| values.get("keyest_id_int")) // sic, in the vector
                .and_then(Value::as_u64)
                .unwrap_or_else(|| panic!("{vector}: no keyset id integer"));
            assert_eq!(
                u64::from(u32::from(keyset)),
                int,
                "{vector}: keyset id {keyset} as an integer"
            );
            assert_eq!(
                template,
                format!("m/129372'/0'/{int}'/{{counter}}'"),
                "{vector}: derivation path"
            );
        }

        let mnemonic_text = values
            .get("mnemonic")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{vector}: no mnemonic"));
        let mnemonic = bip39::Mnemonic::parse(mnemonic_text).unwrap_or_else(|e| panic!("{vector}: bad mnemonic: {e}"));
        let seed = mnemonic.to_seed("");
        let master = Xpriv::new_master(bitcoin::Network::Bitcoin, &seed).expect("a master key from a 64-byte seed");
        let secp = bitcoin::secp256k1::Secp256k1::signing_only();

        let mut counter = 0u32;
        while let Some(expected_secret) = values.get(&format!("secret_{counter}")).and_then(Value::as_str) {
            let vector = format!("NUT-13 {version} keyset {keyset} counter {counter}");
            let secret = Secret::from_seed(&seed, keyset, counter).unwrap_or_else(|e| panic!("{vector}: secret: {e}"));
            assert_eq!(secret.to_string(), expected_secret, "{vector}: secret");
            let r = SecretKey::from_seed(&seed, keyset, counter).unwrap_or_else(|e| panic!("{vector}: r: {e}"));
            let expected_r = values
                .get(&format!("r_{counter}"))
                .and_then(Value::as_str)
                .unwrap_or_else(|| panic!("{vector}: no r"));
            assert_eq!(r.to_secret_hex(), expected_r, "{vector}: blinding factor r");

            // Version 1 gives each counter's BIP-32 path: secret at `/0`, r at `/1` under it.
            if let Some(path) = values
                .get(&format!("derivation_path_{counter}"))
                .and_then(Value::as_str)
            {
                let template = path_template.unwrap_or_else(|| panic!("{vector}: paths without a template"));
                assert_eq!(
                    path,
                    template.replace("{counter}", &counter.to_string()),
                    "{vector}: path"
                );
                let path = DerivationPath::from_str(path).unwrap_or_else(|e| panic!("{vector}: path: {e}"));
                for (child, expected) in [(0, expected_secret), (1, expected_r)] {
                    let child = ChildNumber::from_normal_idx(child).expect("a small index");
                    let key = master
                        .derive_priv(&secp, &path.child(child))
                        .unwrap_or_else(|e| panic!("{vector}: derive: {e}"));
                    assert_eq!(
                        hex::encode(key.private_key.secret_bytes()),
                        expected,
                        "{vector}: {path}/{child}"
                    );
                }
            }
            counter += 1;
        }
        assert!(counter > 0, "{vector}: no secrets found");
    }
}

// ---------------------------------------------------------------------------------------------
// NUT-20
// ---------------------------------------------------------------------------------------------

/// A mint request's signature by the quote's key verifies as `Mint::mint` checks it.
#[test]
fn nut20_mint_request_signatures() {
    let Some(text) = read("20-test.md") else { return };
    let blocks = blocks(&text);
    let (mut valid_checked, mut invalid_checked) = (0, 0);
    for (i, block) in blocks.iter().enumerate().filter(|(_, b)| b.lang == "json") {
        let valid = if block.before.contains("with a valid signature") {
            true
        } else if block.before.contains("with an invalid signature") {
            false
        } else {
            panic!("20-test.md: not said valid or invalid: {:?}", block.before.trim());
        };
        let vector = format!(
            "NUT-20 request with {} signature",
            if valid { "a valid" } else { "an invalid" }
        );
        let pubkey = backticked(&block.before)
            .into_iter()
            .find(|t| t.len() == 66)
            .map(|t| public_key(t, &vector))
            .unwrap_or_else(|| panic!("{vector}: no pubkey"));
        let request: MintRequest<String> =
            serde_json::from_str(&block.body).unwrap_or_else(|e| panic!("{vector}: mint request: {e}"));
        let result = request.verify_signature(pubkey);
        if valid {
            assert!(result.is_ok(), "{vector}: refused: {result:?}");
            valid_checked += 1;
        } else {
            assert!(result.is_err(), "{vector}: accepted");
            invalid_checked += 1;
        }

        // The documented message is the original NUT-20 one, `quote || B_0 || … || B_n` (hex);
        // `cashu` signs a newer, domain-separated message and still accepts this one.
        if let Some(msg) = blocks.get(i + 1).filter(|b| b.lang.is_empty()) {
            let expected: Vec<u8> =
                serde_json::from_str(msg.body.trim()).unwrap_or_else(|e| panic!("{vector}: message bytes: {e}"));
            let mut message = request.quote.as_bytes().to_vec();
            for output in &request.outputs {
                message.extend_from_slice(output.blinded_secret.to_hex().as_bytes());
            }
            assert_eq!(message, expected, "{vector}: message to sign");
            let signature = request.signature.as_deref().expect("the vector is signed");
            let signature = Signature::from_str(signature).unwrap_or_else(|e| panic!("{vector}: signature: {e}"));
            pubkey
                .verify(&expected, &signature)
                .unwrap_or_else(|e| panic!("{vector}: the signature is not on the documented message: {e}"));
        }
    }
    assert!(
        valid_checked >= 1 && invalid_checked >= 1,
        "20-test.md: {valid_checked} valid, {invalid_checked} invalid"
    );
}
