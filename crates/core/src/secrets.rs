//! Secrets at rest (docs/architecture.md, "Secrets and access"): every secret is sealed with a data key for its
//! purpose, derived from one key-encryption key (KEK) with HKDF-SHA256, under
//! XChaCha20-Poly1305. The purpose is also bound in as associated data, so a secret sealed for
//! one purpose cannot be opened as another. The KEK comes from a 0600 file in the embedded
//! default (an HSM can hold it later); sealed secrets can then live in the shared database.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::RngCore;
use sha2::Sha256;

/// Version tag at the front of every sealed secret.
const SEALED_V1: &str = "v1";

/// Why a secret could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    /// Not a sealed secret of a known version.
    #[error("not a sealed secret")]
    Malformed,
    /// The key or the purpose is not the one it was sealed with, or it was altered.
    #[error("the secret does not open with this key and purpose (wrong key, or altered)")]
    WrongKey,
}

/// The key-encryption key: 32 bytes that never leave the process.
pub struct KeyEncryptionKey([u8; 32]);

impl std::fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyEncryptionKey(..)")
    }
}

impl KeyEncryptionKey {
    /// Wraps 32 key bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// A fresh random key.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut bytes);
        Self(bytes)
    }

    fn cipher(&self, purpose: &str) -> XChaCha20Poly1305 {
        let mut data_key = [0u8; 32];
        Hkdf::<Sha256>::new(Some(b"flash/secrets/v1"), &self.0)
            .expand(purpose.as_bytes(), &mut data_key)
            .unwrap_or_else(|_| unreachable!("32 bytes is a valid HKDF-SHA256 output length"));
        XChaCha20Poly1305::new(&data_key.into())
    }

    /// Seals `secret` for `purpose`: `v1:<nonce hex>:<ciphertext hex>`.
    pub fn seal(&self, purpose: &str, secret: &[u8]) -> String {
        let mut nonce = [0u8; 24];
        rand::thread_rng().fill_bytes(&mut nonce);
        let payload = Payload {
            msg: secret,
            aad: purpose.as_bytes(),
        };
        let sealed = self
            .cipher(purpose)
            .encrypt(XNonce::from_slice(&nonce), payload)
            .unwrap_or_else(|_| unreachable!("XChaCha20-Poly1305 encrypts any message that fits in memory"));
        format!("{SEALED_V1}:{}:{}", hex(&nonce), hex(&sealed))
    }

    /// Opens a secret sealed for `purpose` with this key.
    pub fn open(&self, purpose: &str, sealed: &str) -> Result<Vec<u8>, SealError> {
        let mut parts = sealed.split(':');
        let (Some(SEALED_V1), Some(nonce), Some(body), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(SealError::Malformed);
        };
        let nonce = unhex(nonce).filter(|n| n.len() == 24).ok_or(SealError::Malformed)?;
        let body = unhex(body).ok_or(SealError::Malformed)?;
        let payload = Payload {
            msg: &body,
            aad: purpose.as_bytes(),
        };
        self.cipher(purpose)
            .decrypt(XNonce::from_slice(&nonce), payload)
            .map_err(|_| SealError::WrongKey)
    }
}

/// `prefix` followed by `len` random base62 characters (`0-9A-Za-z`) from the operating
/// system's CSPRNG: session tokens and API keys.
pub fn random_token(prefix: &str, len: usize) -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    let mut out = String::with_capacity(prefix.len() + len);
    out.push_str(prefix);
    out.extend(rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from));
    out
}

/// `N` random bytes from a CSPRNG seeded by the operating system: keys.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes
}

/// Lowercase hex SHA-256 of a high-entropy token, for storage and lookup: a token of 200+
/// random bits needs no salt or stretching.
pub fn hash_token(token: &str) -> String {
    use sha2::Digest;
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_purpose() {
        let kek = KeyEncryptionKey::generate();
        let sealed = kek.seal("onchain-seed", b"very secret");
        assert_eq!(kek.open("onchain-seed", &sealed).as_deref(), Ok(&b"very secret"[..]));
        assert_eq!(kek.open("mint-seed", &sealed), Err(SealError::WrongKey));
        assert_eq!(
            KeyEncryptionKey::generate().open("onchain-seed", &sealed),
            Err(SealError::WrongKey)
        );
        assert_ne!(
            sealed,
            kek.seal("onchain-seed", b"very secret"),
            "a fresh nonce every time"
        );
    }

    #[test]
    fn altered_or_garbled_secrets_are_refused() {
        let kek = KeyEncryptionKey::new([7; 32]);
        let sealed = kek.seal("p", b"abc");
        let mut flipped = sealed.clone().into_bytes();
        let last = flipped.len() - 1;
        flipped[last] = if flipped[last] == b'0' { b'1' } else { b'0' };
        let flipped = String::from_utf8(flipped).unwrap_or_default();
        assert_eq!(kek.open("p", &flipped), Err(SealError::WrongKey));
        for garbage in ["", "v1", "v2:00:00", "v1:zz:00", "v1:00:00:00", "v1:0011:00", "v1:é:00"] {
            assert_eq!(kek.open("p", garbage), Err(SealError::Malformed), "{garbage:?}");
        }
    }
}
