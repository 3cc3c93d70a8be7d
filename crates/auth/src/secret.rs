//! Random tokens, login codes and their hashes.
//!
//! Session tokens and API keys are long random base62 strings (≥ 238 bits of
//! entropy), so they are stored as a plain SHA-256 ([`hash_token`]): there is
//! nothing to brute-force. Login codes are only six digits, so they are stored
//! as an HMAC keyed with a server secret ([`CodeHasher`]): a leaked database
//! alone does not reveal them, and the identifier is bound into the hash.
//!
//! All randomness comes from `rand::thread_rng()`, a CSPRNG seeded and
//! periodically reseeded from the operating system.

use std::fmt;

pub use flash_core::secrets::{hash_token, random_token};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::{Rng, RngCore};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Length of a session token (43 base62 chars ≈ 256 bits).
pub const SESSION_TOKEN_LEN: usize = 43;
/// Length of the random part of API and admin keys (40 base62 chars ≈ 238 bits).
pub const KEY_SECRET_LEN: usize = 40;
/// Prefix of user API keys.
pub const API_KEY_PREFIX: &str = "flash_";
/// Prefix of admin API keys.
pub const ADMIN_KEY_PREFIX: &str = "flashadm_";
/// Number of digits in a login code.
pub const LOGIN_CODE_DIGITS: usize = 6;

/// Domain-separation tag mixed into every login-code HMAC.
const CODE_HASH_DOMAIN: &[u8] = b"flash/login-code/v1";

/// A new session token: 43 base62 characters, no prefix.
pub fn session_token() -> String {
    random_token("", SESSION_TOKEN_LEN)
}

/// A new user API key secret: `flash_` followed by 40 base62 characters.
pub fn api_key_secret() -> String {
    random_token(API_KEY_PREFIX, KEY_SECRET_LEN)
}

/// A new admin API key secret: `flashadm_` followed by 40 base62 characters.
pub fn admin_key_secret() -> String {
    random_token(ADMIN_KEY_PREFIX, KEY_SECRET_LEN)
}

/// A new login code: six decimal digits, uniform over `000000..=999999`.
pub fn login_code() -> String {
    let n: u32 = rand::thread_rng().gen_range(0..1_000_000);
    format!("{n:06}")
}

/// Hashes and verifies login codes with HMAC-SHA256 under a server secret.
#[derive(Clone)]
pub struct CodeHasher {
    /// HMAC state already keyed with the server secret.
    keyed: HmacSha256,
}

impl fmt::Debug for CodeHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeHasher").finish_non_exhaustive()
    }
}

impl CodeHasher {
    /// A hasher keyed with a 32-byte server secret.
    pub fn new(secret: [u8; 32]) -> Self {
        // HMAC zero-pads keys shorter than the hash block (64 bytes for
        // SHA-256), so keying with the padded block is exactly HMAC(secret)
        // and uses the infallible fixed-size constructor.
        let mut block = [0u8; 64];
        block[..32].copy_from_slice(&secret);
        Self {
            keyed: <HmacSha256 as KeyInit>::new(&block.into()),
        }
    }

    /// A fresh random 32-byte secret from the operating system's CSPRNG.
    pub fn generate_secret() -> [u8; 32] {
        let mut secret = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut secret);
        secret
    }

    fn mac(&self, identifier: &str, code: &str) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        // domain || len(identifier) as u64 BE || identifier || code:
        // the length prefix makes the split between identifier and code unambiguous.
        mac.update(CODE_HASH_DOMAIN);
        mac.update(&(identifier.len() as u64).to_be_bytes());
        mac.update(identifier.as_bytes());
        mac.update(code.as_bytes());
        mac
    }

    /// Lowercase hex HMAC-SHA256 binding `identifier` and `code`.
    pub fn hash(&self, identifier: &str, code: &str) -> String {
        to_hex(&self.mac(identifier, code).finalize().into_bytes())
    }

    /// Whether `stored_hash` (from [`hash`](Self::hash)) matches `identifier`
    /// and `code`. The comparison is constant-time; malformed hashes are `false`.
    pub fn verify(&self, identifier: &str, code: &str, stored_hash: &str) -> bool {
        match from_hex(stored_hash) {
            Some(bytes) => self.mac(identifier, code).verify_slice(&bytes).is_ok(),
            None => false,
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

fn from_hex(s: &str) -> Option<Vec<u8>> {
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let pairs = s.as_bytes().chunks_exact(2);
    if !pairs.remainder().is_empty() {
        return None;
    }
    pairs
        .map(|pair| Some((nibble(pair[0])? << 4) | nibble(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn is_base62(s: &str) -> bool {
        s.bytes().all(|b| b.is_ascii_alphanumeric())
    }

    #[test]
    fn token_formats() {
        let t = random_token("x_", 10);
        assert!(t.starts_with("x_"));
        assert_eq!(t.len(), 12);
        assert!(is_base62(&t[2..]));
        assert_eq!(random_token("p", 0), "p");

        let s = session_token();
        assert_eq!(s.len(), 43);
        assert!(is_base62(&s));

        let k = api_key_secret();
        assert!(k.starts_with("flash_"));
        assert_eq!(k.len(), 6 + 40);
        assert!(is_base62(&k[6..]));

        let a = admin_key_secret();
        assert!(a.starts_with("flashadm_"));
        assert_eq!(a.len(), 9 + 40);
        assert!(is_base62(&a[9..]));
    }

    #[test]
    fn tokens_are_unique_and_use_whole_alphabet() {
        let set: HashSet<String> = (0..1000).map(|_| session_token()).collect();
        assert_eq!(set.len(), 1000);
        let chars: HashSet<char> = set.iter().flat_map(|s| s.chars()).collect();
        assert_eq!(chars.len(), 62);
    }

    #[test]
    fn hash_token_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(hash_token("x"), hash_token("x"));
        assert_ne!(hash_token("x"), hash_token("y"));
    }

    #[test]
    fn login_code_format_and_spread() {
        let mut leading_zero = false;
        let mut seen = HashSet::new();
        for _ in 0..2000 {
            let c = login_code();
            assert_eq!(c.len(), 6);
            assert!(c.bytes().all(|b| b.is_ascii_digit()));
            leading_zero |= c.starts_with('0');
            seen.insert(c);
        }
        // ~10% of codes start with 0; missing all of them is vanishingly unlikely.
        assert!(leading_zero);
        assert!(seen.len() > 1900);
    }

    #[test]
    fn code_hash_is_deterministic_and_keyed() {
        let h = CodeHasher::new([7u8; 32]);
        let a = h.hash("+15551234567", "012345");
        assert_eq!(a, h.hash("+15551234567", "012345"));
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(a, h.hash("+15551234567", "12345"));
        assert_ne!(a, h.hash("+15551234568", "012345"));
        assert_ne!(a, CodeHasher::new([8u8; 32]).hash("+15551234567", "012345"));
    }

    #[test]
    fn code_hash_separates_identifier_from_code() {
        let h = CodeHasher::new([1u8; 32]);
        assert_ne!(h.hash("ab", "c"), h.hash("a", "bc"));
        assert_ne!(h.hash("", "abc"), h.hash("abc", ""));
    }

    #[test]
    fn verify_accepts_right_and_rejects_wrong() {
        let h = CodeHasher::new(CodeHasher::generate_secret());
        let id = "alice@example.com";
        let code = "000042";
        let stored = h.hash(id, code);
        assert!(h.verify(id, code, &stored));
        assert!(h.verify(id, code, &stored.to_uppercase()));
        assert!(!h.verify(id, "000043", &stored));
        assert!(!h.verify(id, "42", &stored));
        assert!(!h.verify("bob@example.com", code, &stored));
        assert!(!h.verify(id, code, ""));
        assert!(!h.verify(id, code, "zz"));
        assert!(!h.verify(id, code, &stored[..63]));
        assert!(!h.verify(id, code, &stored[..62]));
        assert!(!h.verify(id, code, "é"));
    }

    #[test]
    fn generated_secrets_differ_and_debug_hides_secret() {
        let a = CodeHasher::generate_secret();
        assert_ne!(a, CodeHasher::generate_secret());
        let dbg = format!("{:?}", CodeHasher::new([0xab; 32]));
        assert!(!dbg.contains("171"), "{dbg}");
        assert!(!dbg.to_lowercase().contains("ab, "), "{dbg}");
    }

    #[test]
    fn padded_key_equals_plain_hmac() {
        let secret = [0x5a; 32];
        let h = CodeHasher::new(secret);
        let mut plain = <HmacSha256 as Mac>::new_from_slice(&secret).expect("any key length");
        plain.update(CODE_HASH_DOMAIN);
        plain.update(&3u64.to_be_bytes());
        plain.update(b"abc");
        plain.update(b"123456");
        assert_eq!(h.hash("abc", "123456"), to_hex(&plain.finalize().into_bytes()));
    }

    #[test]
    fn hex_roundtrip() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(from_hex(&to_hex(&bytes)), Some(bytes));
        assert_eq!(from_hex("abc"), None);
        assert_eq!(from_hex("g0"), None);
    }
}
