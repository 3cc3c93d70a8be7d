//! The keystore: one file holding the user's secrets (the NOSTR secret key, the ecash seed's
//! mnemonic, and a token per server), encrypted with a key derived from a passphrase.
//!
//! Format (`docs/client.md`): a JSON envelope with the key derivation's parameters in the
//! clear and the secrets sealed by XChaCha20-Poly1305 under an Argon2id key. The envelope's
//! parameters are the cipher's associated data, so changing any of them makes the file fail
//! to open rather than open weaker. A short check value derived from the key tells a wrong
//! passphrase from a damaged file. Writes go to a temporary file that replaces the old one
//! only once it is complete and synced, so a failed write never loses the keystore.

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

/// The keystore's envelope format.
const KEYSTORE_FORMAT: &str = "flash-keystore/1";
/// Bytes of Argon2id salt.
const SALT_LEN: usize = 16;
/// Bytes of an XChaCha20-Poly1305 nonce.
const NONCE_LEN: usize = 24;
/// Bytes of the check value that tells a wrong passphrase from a damaged file.
const CHECK_LEN: usize = 8;
/// Fewest characters of a passphrase.
pub const MIN_PASSPHRASE_CHARS: usize = 8;
/// The most memory (KiB) and passes a keystore may ask for when it is opened: a file cannot
/// make the client allocate without bound.
const MAX_MEMORY_KIB: u32 = 4 * 1024 * 1024;
/// The most Argon2 passes accepted from a file.
const MAX_ITERATIONS: u32 = 64;

/// Why the keystore could not be read or written. Nothing is ever overwritten on an error.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// There is no keystore at the path.
    #[error("no keystore at {0}")]
    NotFound(PathBuf),
    /// A keystore exists already where a new one was to be made.
    #[error("a keystore exists already at {0}; it was left as it is")]
    AlreadyExists(PathBuf),
    /// The passphrase does not open this keystore.
    #[error("wrong passphrase")]
    WrongPassphrase,
    /// The file is not a keystore this client can read, or it was damaged.
    #[error("the keystore is damaged or not a Flash keystore: {0}")]
    Corrupt(String),
    /// A passphrase too short to protect the keys.
    #[error("a passphrase needs at least {MIN_PASSPHRASE_CHARS} characters")]
    WeakPassphrase,
    /// Key derivation parameters outside what Argon2id accepts or this client allows.
    #[error("key derivation parameters not accepted: {0}")]
    BadParams(String),
    /// Reading or writing the file failed.
    #[error("keystore file: {0}")]
    Io(#[from] io::Error),
}

/// Argon2id's cost parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KdfParams {
    /// Memory, KiB.
    pub memory_kib: u32,
    /// Passes over the memory.
    pub iterations: u32,
    /// Lanes.
    pub parallelism: u32,
}

impl Default for KdfParams {
    /// 64 MiB, 3 passes, 1 lane: above OWASP's Argon2id minimum (19 MiB, 2 passes), about a
    /// third of a second on a laptop (`docs/benchmarks.md` has the measured unlock time).
    fn default() -> Self {
        KdfParams {
            memory_kib: 64 * 1024,
            iterations: 3,
            parallelism: 1,
        }
    }
}

impl KdfParams {
    /// Checks the parameters against Argon2id's rules and this client's bounds.
    fn argon2(&self) -> Result<Argon2<'static>, KeystoreError> {
        if self.memory_kib > MAX_MEMORY_KIB || self.iterations > MAX_ITERATIONS {
            return Err(KeystoreError::BadParams(format!(
                "at most {MAX_MEMORY_KIB} KiB and {MAX_ITERATIONS} passes"
            )));
        }
        let params = Params::new(self.memory_kib, self.iterations, self.parallelism, Some(32))
            .map_err(|e| KeystoreError::BadParams(e.to_string()))?;
        Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
    }
}

/// What the keystore holds.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secrets {
    /// The NOSTR secret key, 64 hex digits.
    pub nostr_secret_key: Option<String>,
    /// The BIP39 mnemonic whose seed derives the ecash notes' secrets (NUT-13).
    pub ecash_mnemonic: Option<String>,
    /// Per server (its URL): the session token or API key this client signs in with.
    pub credentials: BTreeMap<String, String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("nostr_secret_key", &self.nostr_secret_key.as_ref().map(|_| "…"))
            .field("ecash_mnemonic", &self.ecash_mnemonic.as_ref().map(|_| "…"))
            .field("credentials", &self.credentials.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Drop for Secrets {
    fn drop(&mut self) {
        self.nostr_secret_key.zeroize();
        self.ecash_mnemonic.zeroize();
        for token in self.credentials.values_mut() {
            token.zeroize();
        }
    }
}

/// The file's envelope.
#[derive(Serialize, Deserialize)]
struct Envelope {
    /// What the envelope holds, and its version: `flash-keystore/1`, `flash-backup/1`.
    format: String,
    /// How the key is derived.
    kdf: KdfSection,
    /// The sealed secrets.
    cipher: CipherSection,
}

/// The envelope's key derivation section.
#[derive(Serialize, Deserialize)]
struct KdfSection {
    /// Always `argon2id`.
    algorithm: String,
    /// Argon2 version (19, i.e. 0x13).
    version: u32,
    /// Cost parameters.
    #[serde(flatten)]
    params: KdfParams,
    /// Salt, base64.
    salt: String,
    /// A check value of the derived key, base64: a wrong passphrase is told from damage.
    check: String,
}

/// The envelope's cipher section.
#[derive(Serialize, Deserialize)]
struct CipherSection {
    /// Always `xchacha20poly1305`.
    algorithm: String,
    /// Nonce, base64.
    nonce: String,
    /// The secrets as JSON, sealed, base64.
    ciphertext: String,
}

/// A key derived from a passphrase, with what derived it: seals envelopes again without the
/// passphrase.
pub(crate) struct SealKey {
    params: KdfParams,
    salt: [u8; SALT_LEN],
    key: Zeroizing<[u8; 32]>,
}

impl SealKey {
    /// A key from `passphrase` with a fresh salt. Refuses a passphrase shorter than
    /// [`MIN_PASSPHRASE_CHARS`].
    pub(crate) fn new(passphrase: &str, params: KdfParams) -> Result<SealKey, KeystoreError> {
        if passphrase.chars().count() < MIN_PASSPHRASE_CHARS {
            return Err(KeystoreError::WeakPassphrase);
        }
        let mut salt = [0u8; SALT_LEN];
        rand::thread_rng().fill_bytes(&mut salt);
        let key = derive(passphrase, &salt, &params)?;
        Ok(SealKey { params, salt, key })
    }

    /// `plain` sealed in an envelope of `format` (fresh nonce), as JSON text.
    pub(crate) fn seal(&self, format: &str, plain: &[u8]) -> Result<String, KeystoreError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::thread_rng().fill_bytes(&mut nonce);
        let check = key_check(&self.key);
        let aad = associated_data(format, &self.params, &self.salt, &check);
        let ciphertext = XChaCha20Poly1305::new((&*self.key).into())
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad: &aad })
            .map_err(|_| io::Error::other("sealing failed"))?;
        let envelope = Envelope {
            format: format.to_owned(),
            kdf: KdfSection {
                algorithm: "argon2id".into(),
                version: 0x13,
                params: self.params,
                salt: B64.encode(self.salt),
                check: B64.encode(check),
            },
            cipher: CipherSection {
                algorithm: "xchacha20poly1305".into(),
                nonce: B64.encode(nonce),
                ciphertext: B64.encode(ciphertext),
            },
        };
        Ok(serde_json::to_string_pretty(&envelope).map_err(io::Error::other)?)
    }

    /// Opens an envelope of `format` with `passphrase`: the key (to seal again) and what it held.
    pub(crate) fn unseal(
        format: &str,
        text: &str,
        passphrase: &str,
    ) -> Result<(SealKey, Zeroizing<Vec<u8>>), KeystoreError> {
        let corrupt = |why: &str| KeystoreError::Corrupt(why.to_string());
        let envelope: Envelope = serde_json::from_str(text).map_err(|e| KeystoreError::Corrupt(e.to_string()))?;
        if envelope.format != format {
            return Err(KeystoreError::Corrupt(format!(
                "format {} (expected {format})",
                envelope.format
            )));
        }
        let kdf = &envelope.kdf;
        if kdf.algorithm != "argon2id" || kdf.version != 0x13 {
            return Err(corrupt("the key derivation is not Argon2id version 19"));
        }
        if envelope.cipher.algorithm != "xchacha20poly1305" {
            return Err(corrupt("the cipher is not XChaCha20-Poly1305"));
        }
        let salt: [u8; SALT_LEN] = decode_exact(&kdf.salt).ok_or_else(|| corrupt("bad salt"))?;
        let check: [u8; CHECK_LEN] = decode_exact(&kdf.check).ok_or_else(|| corrupt("bad check value"))?;
        let nonce: [u8; NONCE_LEN] = decode_exact(&envelope.cipher.nonce).ok_or_else(|| corrupt("bad nonce"))?;
        let ciphertext = B64
            .decode(&envelope.cipher.ciphertext)
            .map_err(|_| corrupt("the ciphertext is not base64"))?;
        let key = derive(passphrase, &salt, &kdf.params)?;
        if key_check(&key) != check {
            return Err(KeystoreError::WrongPassphrase);
        }
        let aad = associated_data(format, &kdf.params, &salt, &check);
        let plain = XChaCha20Poly1305::new((&*key).into())
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: &aad,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| corrupt("the sealed part does not authenticate"))?;
        let sealed = SealKey {
            params: kdf.params,
            salt,
            key,
        };
        Ok((sealed, plain))
    }
}

/// An open keystore: the secrets, and the key to seal them again.
pub struct Keystore {
    path: PathBuf,
    seal: SealKey,
    /// The secrets; [`Keystore::save`] writes changes.
    pub secrets: Secrets,
}

impl std::fmt::Debug for Keystore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keystore")
            .field("path", &self.path)
            .field("params", &self.seal.params)
            .field("secrets", &self.secrets)
            .finish_non_exhaustive()
    }
}

impl Keystore {
    /// Makes a keystore at `path` holding `secrets`, sealed under `passphrase`. Refuses when a
    /// file is there already.
    pub fn create(
        path: &Path,
        passphrase: &str,
        params: KdfParams,
        secrets: Secrets,
    ) -> Result<Keystore, KeystoreError> {
        let seal = SealKey::new(passphrase, params)?;
        if path.exists() {
            return Err(KeystoreError::AlreadyExists(path.to_path_buf()));
        }
        let store = Keystore {
            path: path.to_path_buf(),
            seal,
            secrets,
        };
        store.save()?;
        Ok(store)
    }

    /// Opens the keystore at `path` with `passphrase`.
    pub fn open(path: &Path, passphrase: &str) -> Result<Keystore, KeystoreError> {
        let text = match fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(KeystoreError::NotFound(path.to_path_buf())),
            Err(e) => return Err(e.into()),
        };
        let (seal, plain) = SealKey::unseal(KEYSTORE_FORMAT, &text, passphrase)?;
        let secrets = serde_json::from_slice(&plain)
            .map_err(|_| KeystoreError::Corrupt("the secrets are not readable".into()))?;
        Ok(Keystore {
            path: path.to_path_buf(),
            seal,
            secrets,
        })
    }

    /// Where the keystore lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The key derivation's parameters.
    pub fn params(&self) -> KdfParams {
        self.seal.params
    }

    /// Seals the secrets again (fresh nonce) and replaces the file atomically.
    pub fn save(&self) -> Result<(), KeystoreError> {
        let plain = Zeroizing::new(serde_json::to_vec(&self.secrets).map_err(io::Error::other)?);
        let text = self.seal.seal(KEYSTORE_FORMAT, &plain)?;
        write_atomically(&self.path, text.as_bytes())?;
        Ok(())
    }

    /// Seals the keystore under a new passphrase (and fresh salt, with `params`) and saves it.
    pub fn change_passphrase(&mut self, new: &str, params: KdfParams) -> Result<(), KeystoreError> {
        let previous = std::mem::replace(&mut self.seal, SealKey::new(new, params)?);
        if let Err(e) = self.save() {
            self.seal = previous;
            return Err(e);
        }
        Ok(())
    }
}

/// The 32-byte key Argon2id derives from `passphrase` and `salt`.
fn derive(passphrase: &str, salt: &[u8], params: &KdfParams) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    let mut key = Zeroizing::new([0u8; 32]);
    params
        .argon2()?
        .hash_password_into(passphrase.as_bytes(), salt, &mut *key)
        .map_err(|e| KeystoreError::BadParams(e.to_string()))?;
    Ok(key)
}

/// The check value of a derived key: a hash that reveals nothing of the key.
fn key_check(key: &[u8; 32]) -> [u8; CHECK_LEN] {
    let digest = Sha256::new()
        .chain_update(b"flash keystore check")
        .chain_update(key)
        .finalize();
    let mut check = [0u8; CHECK_LEN];
    check.copy_from_slice(&digest[..CHECK_LEN]);
    check
}

/// The cipher's associated data: every parameter of the envelope, so none can be changed.
fn associated_data(format: &str, params: &KdfParams, salt: &[u8], check: &[u8]) -> Vec<u8> {
    format!(
        "{format}/argon2id/19/{}/{}/{}/{}/{}/xchacha20poly1305",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        B64.encode(salt),
        B64.encode(check)
    )
    .into_bytes()
}

/// Base64 `text` decoded to exactly `N` bytes.
fn decode_exact<const N: usize>(text: &str) -> Option<[u8; N]> {
    B64.decode(text).ok()?.try_into().ok()
}

/// Writes `bytes` to `path` through a synced temporary file in the same folder (mode 0600),
/// then renames it over `path`: the old file stays whole until the new one is.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("the path names no file"))?;
    let mut tmp_name = name.to_os_string();
    tmp_name.push(format!(".tmp-{}", rand::thread_rng().next_u64()));
    let tmp = dir.join(tmp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = (|| {
        let mut file = options.open(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    })();
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cheap parameters: the tests check behaviour, not cost.
    const FAST: KdfParams = KdfParams {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };

    fn secrets() -> Secrets {
        Secrets {
            nostr_secret_key: Some("11".repeat(32)),
            ecash_mnemonic: Some("abandon ".repeat(11) + "about"),
            credentials: BTreeMap::from([("http://127.0.0.1:8080".to_string(), "token".to_string())]),
        }
    }

    fn dir() -> tempfile::TempDir {
        tempfile::tempdir().expect("temp dir")
    }

    #[test]
    fn secrets_come_back_with_the_passphrase_only() {
        let d = dir();
        let path = d.path().join("keystore.json");
        Keystore::create(&path, "correct horse", FAST, secrets()).expect("create");
        let text = fs::read_to_string(&path).expect("read");
        assert!(
            !text.contains("token") && !text.contains("abandon") && !text.contains("1111"),
            "{text}"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let open = Keystore::open(&path, "correct horse").expect("open");
        assert_eq!(open.secrets, secrets());
        assert_eq!(open.params(), FAST);
        assert!(matches!(
            Keystore::open(&path, "wrong horse"),
            Err(KeystoreError::WrongPassphrase)
        ));
        assert_eq!(
            fs::read_to_string(&path).expect("read"),
            text,
            "a failed open writes nothing"
        );
    }

    #[test]
    fn damage_is_told_from_a_wrong_passphrase_and_nothing_is_overwritten() {
        let d = dir();
        let path = d.path().join("keystore.json");
        Keystore::create(&path, "correct horse", FAST, secrets()).expect("create");
        let text = fs::read_to_string(&path).expect("read");
        let mut envelope: serde_json::Value = serde_json::from_str(&text).expect("json");

        // A flipped ciphertext byte, weaker parameters, another salt, a cut file, not JSON.
        let ciphertext = envelope["cipher"]["ciphertext"].as_str().expect("ct").to_string();
        let mut bytes = B64.decode(&ciphertext).expect("b64");
        bytes[0] ^= 1;
        let mut flipped = envelope.clone();
        flipped["cipher"]["ciphertext"] = B64.encode(&bytes).into();
        let mut weaker = envelope.clone();
        weaker["kdf"]["iterations"] = 2.into();
        envelope["kdf"]["salt"] = B64.encode([7u8; SALT_LEN]).into();
        let cases = [
            (flipped.to_string(), "corrupt"),
            (weaker.to_string(), "wrong"),
            (envelope.to_string(), "wrong"),
            (text[..text.len() / 2].to_string(), "corrupt"),
            ("not a keystore".to_string(), "corrupt"),
        ];
        for (content, expected) in cases {
            fs::write(&path, &content).expect("write");
            let got = Keystore::open(&path, "correct horse");
            match expected {
                "corrupt" => assert!(matches!(got, Err(KeystoreError::Corrupt(_))), "{got:?}"),
                _ => assert!(matches!(got, Err(KeystoreError::WrongPassphrase)), "{got:?}"),
            }
            assert_eq!(fs::read_to_string(&path).expect("read"), content);
        }
        // A keystore is never created over another file.
        let existing = Keystore::create(&path, "correct horse", FAST, Secrets::default());
        assert!(matches!(existing, Err(KeystoreError::AlreadyExists(_))));
        assert_eq!(fs::read_to_string(&path).expect("read"), "not a keystore");
        let missing = Keystore::open(&d.path().join("none.json"), "correct horse");
        assert!(matches!(missing, Err(KeystoreError::NotFound(_))));
    }

    #[test]
    fn changes_and_a_new_passphrase_are_saved() {
        let d = dir();
        let path = d.path().join("nested").join("keystore.json");
        assert!(matches!(
            Keystore::create(&path, "short", FAST, secrets()),
            Err(KeystoreError::WeakPassphrase)
        ));
        let mut store = Keystore::create(&path, "correct horse", FAST, secrets()).expect("create");
        store
            .secrets
            .credentials
            .insert("https://flash.example".into(), "key2".into());
        store.save().expect("save");
        assert!(matches!(
            store.change_passphrase("short", FAST),
            Err(KeystoreError::WeakPassphrase)
        ));
        store.change_passphrase("battery staple", FAST).expect("change");
        assert!(matches!(
            Keystore::open(&path, "correct horse"),
            Err(KeystoreError::WrongPassphrase)
        ));
        let open = Keystore::open(&path, "battery staple").expect("open");
        assert_eq!(open.secrets.credentials.len(), 2);
        let leftovers: Vec<_> = fs::read_dir(path.parent().expect("dir"))
            .expect("list")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[test]
    fn parameters_are_bounded() {
        let huge = KdfParams {
            memory_kib: MAX_MEMORY_KIB + 1,
            ..FAST
        };
        assert!(matches!(huge.argon2(), Err(KeystoreError::BadParams(_))));
        let zero = KdfParams { iterations: 0, ..FAST };
        assert!(matches!(zero.argon2(), Err(KeystoreError::BadParams(_))));
        assert!(KdfParams::default().argon2().is_ok());
    }
}
