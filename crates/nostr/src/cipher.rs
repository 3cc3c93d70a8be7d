//! Encrypted payloads between two keys: NIP-44 v2 (from a conversation key kept per peer,
//! so a busy peer costs one ECDH) and NIP-04 for clients that only speak that.
//!
//! NIP-44 v2 is written here from the spec: rust-nostr 0.44 refuses plaintexts over 65,408
//! bytes, which the spec (and its official vectors) allow up to 65,535. The conversation key
//! (ECDH + HKDF-extract) is rust-nostr's.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use chacha20::cipher::{KeyIvInit, StreamCipher};
use chacha20::ChaCha20;
use hmac::{Hmac, Mac};
use nostr::nips::nip04;
use nostr::nips::nip44::v2::ConversationKey;
use nostr::{PublicKey, SecretKey};
use sha2::Sha256;

/// Smallest and largest NIP-44 v2 payloads, base64 characters.
const PAYLOAD_CHARS: std::ops::RangeInclusive<usize> = 132..=87_472;
/// Smallest and largest decoded payloads, bytes.
const PAYLOAD_BYTES: std::ops::RangeInclusive<usize> = 99..=65_603;
/// Longest plaintext, bytes.
const PLAINTEXT_MAX: usize = 65_535;
/// The version byte of NIP-44 v2.
const VERSION: u8 = 2;

/// Which encryption a peer speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cipher {
    /// NIP-44 v2.
    Nip44,
    /// NIP-04 (AES-CBC), deprecated but still spoken by some wallet-connect clients.
    Nip04,
}

impl Cipher {
    /// The name NIP-47 uses in `encryption` tags.
    pub fn name(self) -> &'static str {
        match self {
            Cipher::Nip44 => "nip44_v2",
            Cipher::Nip04 => "nip04",
        }
    }

    /// The cipher an `encryption` tag names; none means NIP-04 (NIP-47's default).
    pub fn from_tag(tag: Option<&str>) -> Option<Cipher> {
        match tag {
            None | Some("nip04") => Some(Cipher::Nip04),
            Some("nip44_v2") => Some(Cipher::Nip44),
            Some(_) => None,
        }
    }
}

/// A payload could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CipherError(String);

/// The NIP-44 conversation key of our secret and a peer's public key (the same both ways).
pub fn conversation_key(ours: &SecretKey, theirs: &PublicKey) -> Result<ConversationKey, CipherError> {
    ConversationKey::derive(ours, theirs).map_err(|e| CipherError(e.to_string()))
}

/// The padded length of a plaintext of `len` bytes (NIP-44 v2).
pub fn padded_len(len: usize) -> usize {
    if len <= 32 {
        return 32;
    }
    let next_power = 1usize << (usize::BITS - (len - 1).leading_zeros());
    let chunk = if next_power <= 256 { 32 } else { next_power / 8 };
    chunk * ((len - 1) / chunk + 1)
}

/// The ChaCha20 key, ChaCha20 nonce and HMAC key of one message.
type MessageKeys = ([u8; 32], [u8; 12], [u8; 32]);

fn message_keys(key: &ConversationKey, nonce: &[u8; 32]) -> Result<MessageKeys, CipherError> {
    let hkdf =
        hkdf::Hkdf::<Sha256>::from_prk(key.as_bytes()).map_err(|_| CipherError("bad conversation key".into()))?;
    let mut okm = [0u8; 76];
    hkdf.expand(nonce, &mut okm)
        .map_err(|_| CipherError("key expansion failed".into()))?;
    let mut out = ([0u8; 32], [0u8; 12], [0u8; 32]);
    out.0.copy_from_slice(&okm[..32]);
    out.1.copy_from_slice(&okm[32..44]);
    out.2.copy_from_slice(&okm[44..]);
    Ok(out)
}

fn mac(hmac_key: &[u8; 32], nonce: &[u8], ciphertext: &[u8]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(hmac_key).expect("HMAC takes keys of any length");
    mac.update(nonce);
    mac.update(ciphertext);
    mac
}

/// Seals `plaintext` with NIP-44 v2 under `key`; `nonce` is 32 random bytes (fresh for every
/// message).
pub fn seal_nip44(key: &ConversationKey, plaintext: &str, nonce: [u8; 32]) -> Result<String, CipherError> {
    let text = plaintext.as_bytes();
    if text.is_empty() || text.len() > PLAINTEXT_MAX {
        return Err(CipherError(format!("a message is 1 to {PLAINTEXT_MAX} bytes")));
    }
    let (chacha_key, chacha_nonce, hmac_key) = message_keys(key, &nonce)?;
    let mut buffer = Vec::with_capacity(2 + padded_len(text.len()));
    buffer.extend_from_slice(&u16::try_from(text.len()).unwrap_or(u16::MAX).to_be_bytes());
    buffer.extend_from_slice(text);
    buffer.resize(2 + padded_len(text.len()), 0);
    ChaCha20::new(&chacha_key.into(), &chacha_nonce.into()).apply_keystream(&mut buffer);
    let tag = mac(&hmac_key, &nonce, &buffer).finalize().into_bytes();
    let mut payload = Vec::with_capacity(1 + 32 + buffer.len() + 32);
    payload.push(VERSION);
    payload.extend_from_slice(&nonce);
    payload.extend_from_slice(&buffer);
    payload.extend_from_slice(&tag);
    Ok(STANDARD.encode(payload))
}

/// Opens a NIP-44 v2 payload sealed under `key`.
pub fn open_nip44(key: &ConversationKey, payload: &str) -> Result<String, CipherError> {
    let bad = |m: &str| CipherError(m.to_string());
    if payload.starts_with('#') {
        return Err(bad("unknown encryption version"));
    }
    if !PAYLOAD_CHARS.contains(&payload.len()) {
        return Err(bad("invalid payload length"));
    }
    let data = STANDARD.decode(payload).map_err(|_| bad("invalid base64"))?;
    if !PAYLOAD_BYTES.contains(&data.len()) {
        return Err(bad("invalid payload length"));
    }
    if data[0] != VERSION {
        return Err(bad("unknown encryption version"));
    }
    let nonce: [u8; 32] = data[1..33].try_into().map_err(|_| bad("invalid nonce"))?;
    let (ciphertext, tag) = data[33..].split_at(data.len() - 33 - 32);
    let (chacha_key, chacha_nonce, hmac_key) = message_keys(key, &nonce)?;
    mac(&hmac_key, &nonce, ciphertext)
        .verify_slice(tag)
        .map_err(|_| bad("invalid MAC"))?;
    let mut padded = ciphertext.to_vec();
    ChaCha20::new(&chacha_key.into(), &chacha_nonce.into()).apply_keystream(&mut padded);
    let len = usize::from(u16::from_be_bytes([padded[0], padded[1]]));
    if len == 0 || padded.len() != 2 + padded_len(len) {
        return Err(bad("invalid padding"));
    }
    String::from_utf8(padded[2..2 + len].to_vec()).map_err(|_| bad("plaintext is not UTF-8"))
}

/// Seals for a peer with the given cipher.
pub fn seal(cipher: Cipher, ours: &SecretKey, theirs: &PublicKey, plaintext: &str) -> Result<String, CipherError> {
    match cipher {
        Cipher::Nip44 => {
            let mut nonce = [0u8; 32];
            rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut nonce);
            seal_nip44(&conversation_key(ours, theirs)?, plaintext, nonce)
        }
        Cipher::Nip04 => nip04::encrypt(ours, theirs, plaintext).map_err(|e| CipherError(e.to_string())),
    }
}

/// Opens what a peer sealed with the given cipher.
pub fn open(cipher: Cipher, ours: &SecretKey, theirs: &PublicKey, payload: &str) -> Result<String, CipherError> {
    match cipher {
        Cipher::Nip44 => open_nip44(&conversation_key(ours, theirs)?, payload),
        Cipher::Nip04 => nip04::decrypt(ours, theirs, payload).map_err(|e| CipherError(e.to_string())),
    }
}
