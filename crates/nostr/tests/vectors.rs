//! The official NIP-44 v2 vectors (`nostr/nip44.vectors.json` under `FLASH_TEST_VECTORS` or
//! `../shared/vectors` beside the checkout, read at run time, never copied), through
//! `flash_nostr::cipher`: the code wallet connect seals and opens its payloads with. Without the
//! vectors every test prints why and skips; under CI it fails.
//!
//! `get_message_keys` is internal to a NIP-44 implementation; every message key it lists is
//! exercised by `encrypt_decrypt`, whose fixed nonces give byte-exact payloads.

use flash_nostr::cipher::{conversation_key, open_nip44, padded_len, seal_nip44};
use nostr::nips::nip44::v2::ConversationKey;
use nostr::{PublicKey, SecretKey};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The vectors, or `None` when they are not here (the test skips).
fn vectors() -> Option<Value> {
    let path = flash_store::testing::vectors_dir("nostr")?.join("nip44.vectors.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "the NIP-44 vectors must be at {} ({e}); set FLASH_TEST_VECTORS to the vectors folder",
            path.display()
        )
    });
    Some(serde_json::from_str(&text).expect("vectors are JSON"))
}

fn list<'a>(v: &'a Value, group: &str, name: &str) -> &'a Vec<Value> {
    v["v2"][group][name]
        .as_array()
        .unwrap_or_else(|| panic!("v2.{group}.{name} is a list"))
}

fn field<'a>(case: &'a Value, name: &str) -> &'a str {
    case[name].as_str().unwrap_or_else(|| panic!("{name} in {case}"))
}

fn hex32(s: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect();
    bytes.try_into().expect("32 bytes")
}

fn secret(s: &str) -> SecretKey {
    SecretKey::from_slice(&hex32(s)).expect("secret key")
}

fn key(s: &str) -> ConversationKey {
    ConversationKey::new(hex32(s))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn conversation_keys_match() {
    let Some(v) = vectors() else { return };
    let cases = list(&v, "valid", "get_conversation_key");
    assert!(cases.len() >= 30);
    for case in cases {
        let pk = PublicKey::from_hex(field(case, "pub2")).expect("pub2");
        let ck = conversation_key(&secret(field(case, "sec1")), &pk).expect("conversation key");
        assert_eq!(hex(ck.as_bytes()), field(case, "conversation_key"), "{case}");
    }
}

#[test]
fn invalid_conversation_keys_are_refused() {
    let Some(v) = vectors() else { return };
    for case in list(&v, "invalid", "get_conversation_key") {
        let refused = match (
            SecretKey::from_hex(field(case, "sec1")),
            PublicKey::from_hex(field(case, "pub2")),
        ) {
            (Ok(sk), Ok(pk)) => conversation_key(&sk, &pk).is_err(),
            _ => true,
        };
        assert!(refused, "accepted: {case}");
    }
}

#[test]
fn payloads_seal_and_open_byte_for_byte() {
    let Some(v) = vectors() else { return };
    let cases = list(&v, "valid", "encrypt_decrypt");
    assert!(!cases.is_empty());
    for case in cases {
        let sk1 = secret(field(case, "sec1"));
        let pk2 = SecretKey::from_hex(field(case, "sec2"))
            .map(|sk| nostr::Keys::new(sk).public_key())
            .expect("sec2");
        let ck = conversation_key(&sk1, &pk2).expect("conversation key");
        assert_eq!(hex(ck.as_bytes()), field(case, "conversation_key"));
        let sealed = seal_nip44(&ck, field(case, "plaintext"), hex32(field(case, "nonce"))).expect("seal");
        assert_eq!(sealed, field(case, "payload"), "{case}");
        assert_eq!(open_nip44(&ck, &sealed).expect("open"), field(case, "plaintext"));
    }
}

#[test]
fn long_messages_seal_and_open() {
    let Some(v) = vectors() else { return };
    for case in list(&v, "valid", "encrypt_decrypt_long_msg") {
        let repeat = case["repeat"].as_u64().expect("repeat") as usize;
        let plaintext = field(case, "pattern").repeat(repeat);
        assert_eq!(
            hex(&Sha256::digest(plaintext.as_bytes())),
            field(case, "plaintext_sha256")
        );
        let ck = key(field(case, "conversation_key"));
        let sealed = seal_nip44(&ck, &plaintext, hex32(field(case, "nonce"))).expect("seal");
        assert_eq!(
            hex(&Sha256::digest(sealed.as_bytes())),
            field(case, "payload_sha256"),
            "{case}"
        );
        assert_eq!(open_nip44(&ck, &sealed).expect("open"), plaintext);
    }
}

#[test]
fn padding_follows_the_padded_lengths() {
    let Some(v) = vectors() else { return };
    let ck = key(&"11".repeat(32));
    for case in list(&v, "valid", "calc_padded_len") {
        let pair = case.as_array().expect("[len, padded]");
        let (len, padded) = (pair[0].as_u64().expect("len"), pair[1].as_u64().expect("padded"));
        assert_eq!(padded_len(len as usize) as u64, padded, "length {len}");
        if len > 65_535 {
            continue;
        }
        let sealed = seal_nip44(&ck, &"a".repeat(len as usize), [7; 32]).expect("seal");
        // version (1) + nonce (32) + length prefix (2) + padded text + MAC (32), in base64.
        let raw = 1 + 32 + 2 + padded + 32;
        assert_eq!(sealed.len() as u64, raw.div_ceil(3) * 4, "length {len}");
    }
}

#[test]
fn bad_payloads_are_refused() {
    let Some(v) = vectors() else { return };
    let cases = list(&v, "invalid", "decrypt");
    assert!(!cases.is_empty());
    for case in cases {
        let ck = key(field(case, "conversation_key"));
        assert!(
            open_nip44(&ck, field(case, "payload")).is_err(),
            "opened: {}",
            field(case, "note")
        );
    }
}

#[test]
fn messages_of_invalid_length_are_refused() {
    let Some(v) = vectors() else { return };
    let ck = key(&"22".repeat(32));
    for len in list(&v, "invalid", "encrypt_msg_lengths") {
        let len = len.as_u64().expect("length") as usize;
        assert!(
            seal_nip44(&ck, &"a".repeat(len), [1; 32]).is_err(),
            "sealed {len} bytes"
        );
    }
}
