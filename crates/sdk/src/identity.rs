//! The user's NOSTR identity and ecash seed, as the keystore holds them: a secret key that is
//! generated, imported (`nsec`, hex, a NIP-06 mnemonic, a NIP-49 `ncryptsec`) or exported as
//! an `ncryptsec`; and the BIP39 mnemonic the ecash wallet's deterministic secrets come from.

pub use nostr::{Keys, PublicKey};

use flash_core::destination::Destination;
use nostr::bip39::Mnemonic;
use nostr::nips::nip06::FromMnemonic;
use nostr::nips::nip49::{EncryptedSecretKey, KeySecurity};
use nostr::{FromBech32, SecretKey, ToBech32};
use rand::RngCore;

/// scrypt's cost (2^16: 64 MiB) for an exported `ncryptsec`, NIP-49's recommended minimum.
pub const NCRYPTSEC_LOG_N: u8 = 16;

/// Why a key or mnemonic was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// Not a secret key in any form this client reads.
    #[error("not a NOSTR secret key (nsec1…, 64 hex digits, ncryptsec1… or a 12/24-word mnemonic)")]
    Unreadable,
    /// A mnemonic that BIP39 does not accept.
    #[error("not a valid BIP39 mnemonic: {0}")]
    Mnemonic(String),
    /// The password does not open the `ncryptsec`.
    #[error("wrong password for the ncryptsec")]
    WrongPassword,
    /// Not a NOSTR public key.
    #[error("not a NOSTR public key (npub1…, nprofile1… or 64 hex digits)")]
    NotAPublicKey,
    /// Encrypting the key failed.
    #[error("could not encrypt the key: {0}")]
    Encrypt(String),
}

/// A new random key.
pub fn generate() -> Keys {
    Keys::generate()
}

/// Reads a secret key written as `nsec1…` or 64 hex digits, or derives it from a NIP-06
/// mnemonic (account 0, no BIP39 passphrase). An `ncryptsec1…` needs its password:
/// [`from_ncryptsec`].
pub fn import(text: &str) -> Result<Keys, IdentityError> {
    let text = text.trim();
    if text.split_whitespace().count() >= 12 {
        return from_mnemonic(text);
    }
    let secret = if text.starts_with("nsec1") {
        SecretKey::from_bech32(text).map_err(|_| IdentityError::Unreadable)?
    } else if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        SecretKey::parse(text).map_err(|_| IdentityError::Unreadable)?
    } else {
        return Err(IdentityError::Unreadable);
    };
    Ok(Keys::new(secret))
}

/// The key NIP-06 derives from `words` (`m/44'/1237'/0'/0/0`, no BIP39 passphrase).
pub fn from_mnemonic(words: &str) -> Result<Keys, IdentityError> {
    let mnemonic = parse_mnemonic(words)?;
    Keys::from_mnemonic(mnemonic.to_string(), None).map_err(|e| IdentityError::Mnemonic(e.to_string()))
}

/// The key sealed in an `ncryptsec1…` (NIP-49), opened with `password`.
pub fn from_ncryptsec(text: &str, password: &str) -> Result<Keys, IdentityError> {
    let sealed = EncryptedSecretKey::from_bech32(text.trim()).map_err(|_| IdentityError::Unreadable)?;
    let secret = sealed.decrypt(password).map_err(|_| IdentityError::WrongPassword)?;
    Ok(Keys::new(secret))
}

/// `keys`' secret sealed under `password` as an `ncryptsec1…` (NIP-49, scrypt 2^16).
pub fn to_ncryptsec(keys: &Keys, password: &str) -> Result<String, IdentityError> {
    let sealed = EncryptedSecretKey::new(keys.secret_key(), password, NCRYPTSEC_LOG_N, KeySecurity::Unknown)
        .map_err(|e| IdentityError::Encrypt(e.to_string()))?;
    sealed.to_bech32().map_err(|e| IdentityError::Encrypt(e.to_string()))
}

/// Reads a NOSTR user's public key: `npub1…`, `nprofile1…` (`nostr:` optional) or 64 hex
/// digits.
pub fn parse_public_key(text: &str) -> Result<PublicKey, IdentityError> {
    let text = text.trim();
    let hex = match Destination::parse(text) {
        Ok(Destination::NostrPubkey(hex)) => hex,
        _ if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) => text.to_ascii_lowercase(),
        _ => return Err(IdentityError::NotAPublicKey),
    };
    PublicKey::from_hex(&hex).map_err(|_| IdentityError::NotAPublicKey)
}

/// `keys`' secret, for the keystore (64 hex digits).
pub fn secret_hex(keys: &Keys) -> String {
    keys.secret_key().to_secret_hex()
}

/// The user's `npub1…`.
pub fn npub(key: &PublicKey) -> String {
    key.to_bech32().unwrap_or_else(|_| key.to_hex())
}

/// A new 12-word BIP39 mnemonic (128 bits of entropy), for the ecash seed.
pub fn new_mnemonic() -> String {
    let mut entropy = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut entropy);
    // 16 bytes is a length BIP39 accepts: this cannot fail.
    Mnemonic::from_entropy(&entropy)
        .map(|m| m.to_string())
        .unwrap_or_default()
}

/// Reads a BIP39 mnemonic (English words, any spacing and case).
pub fn parse_mnemonic(words: &str) -> Result<Mnemonic, IdentityError> {
    let normalised = words.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    Mnemonic::parse(normalised).map_err(|e| IdentityError::Mnemonic(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// NIP-06's first test vector.
    const NIP06_WORDS: &str = "leader monkey parrot ring guide accident before fence cannon height naive bean";
    const NIP06_SECRET: &str = "7f7ff03d123792d6ac594bfa67bf6d0c0ab55b6b1fdb6249303fe861f1ccba9a";
    const NIP06_NPUB: &str = "npub1zutzeysacnf9rru6zqwmxd54mud0k44tst6l70ja5mhv8jjumytsd2x7nu";
    /// NIP-49's test vector (password `nostr`, log_n 16).
    const NIP49_NCRYPTSEC: &str = "ncryptsec1qgg9947rlpvqu76pj5ecreduf9jxhselq2nae2kghhvd5g7dgjtcxfqtd67p9m0w57lspw8gsq6yphnm8623nsl8xn9j4jdzz84zm3frztj3z7s35vpzmqf6ksu8r89qk5z2zxfmu5gv8th8wclt0h4p";
    const NIP49_SECRET: &str = "3501454135014541350145413501453fefb02227e449e57cf4d3a3ce05378683";

    #[test]
    fn keys_are_imported_from_every_form() {
        let keys = from_mnemonic(NIP06_WORDS).expect("mnemonic");
        assert_eq!(keys.secret_key().to_secret_hex(), NIP06_SECRET);
        assert_eq!(keys.public_key().to_bech32().expect("npub"), NIP06_NPUB);
        let shouted = NIP06_WORDS.to_uppercase().replace(' ', "  ");
        assert_eq!(import(&shouted).expect("any case and spacing"), keys);
        assert_eq!(import(NIP06_SECRET).expect("hex"), keys);
        let nsec = keys.secret_key().to_bech32().expect("nsec");
        assert_eq!(import(&nsec).expect("nsec"), keys);
        for bad in [
            "",
            "nsec1qqqq",
            &"zz".repeat(32),
            "leader monkey parrot ring guide accident before fence cannon height naive naive",
        ] {
            assert!(import(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ncryptsec_round_trips_and_reads_the_nip49_vector() {
        let keys = from_ncryptsec(NIP49_NCRYPTSEC, "nostr").expect("NIP-49 vector");
        assert_eq!(keys.secret_key().to_secret_hex(), NIP49_SECRET);
        assert_eq!(
            from_ncryptsec(NIP49_NCRYPTSEC, "nostr!"),
            Err(IdentityError::WrongPassword)
        );
        let mine = generate();
        let sealed = to_ncryptsec(&mine, "correct horse").expect("seal");
        assert!(sealed.starts_with("ncryptsec1"), "{sealed}");
        assert_eq!(from_ncryptsec(&sealed, "correct horse"), Ok(mine));
        assert_eq!(from_ncryptsec("ncryptsec1bad", "x"), Err(IdentityError::Unreadable));
    }

    #[test]
    fn public_keys_are_read_in_every_form() {
        let keys = from_mnemonic(NIP06_WORDS).expect("keys");
        let hex = keys.public_key().to_hex();
        for text in [
            NIP06_NPUB.to_owned(),
            format!("nostr:{NIP06_NPUB}"),
            hex.clone(),
            hex.to_uppercase(),
        ] {
            assert_eq!(parse_public_key(&text), Ok(keys.public_key()), "{text}");
        }
        assert_eq!(npub(&keys.public_key()), NIP06_NPUB);
        for bad in ["bob", "npub1qqqq", &"zz".repeat(32)] {
            assert_eq!(parse_public_key(bad), Err(IdentityError::NotAPublicKey), "{bad}");
        }
    }

    #[test]
    fn new_mnemonics_are_twelve_valid_words() {
        let words = new_mnemonic();
        assert_eq!(words.split(' ').count(), 12, "{words}");
        assert!(parse_mnemonic(&words).is_ok());
        assert_ne!(words, new_mnemonic());
    }
}
