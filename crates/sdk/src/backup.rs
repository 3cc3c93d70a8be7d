//! Backups: what a fresh machine needs to become the user's client again. A backup holds the
//! keystore's secrets (the NOSTR key, the ecash mnemonic, the servers' tokens), the settings,
//! the contacts and the groups; the ecash notes come back from the mnemonic through the mint
//! (NUT-09), and the history from the server.
//!
//! Two places keep one, sealed differently:
//! - a **file**, sealed like the keystore (Argon2id + XChaCha20-Poly1305) under a passphrase of
//!   its own, format `flash-backup/1`;
//! - the user's **relays**, as NIP-78 application data (kind 30078, `d` tag `flash/backup`),
//!   NIP-44-encrypted to the user's own key: the NOSTR key alone (an `nsec`, the NIP-06
//!   words, an `ncryptsec`) brings everything else back.

use std::collections::BTreeMap;
use std::path::Path;

use nostr_sdk::prelude::{nip44, EventBuilder, Filter, Kind, Tag, TagKind};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::chat::{Messenger, RELAY_WAIT};
use crate::keystore::{write_atomically, KdfParams, KeystoreError, SealKey, Secrets};
use crate::local::{LocalContact, LocalError, LocalStore};

/// The backup file's envelope format.
const BACKUP_FORMAT: &str = "flash-backup/1";
/// NIP-78's kind for application data, and the `d` tag of Flash's backup.
const APP_DATA_KIND: u16 = 30078;
const BACKUP_TAG: &str = "flash/backup";

/// Why a backup could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// Sealing or opening the file failed (a wrong passphrase, a damaged file).
    #[error(transparent)]
    Sealed(#[from] KeystoreError),
    /// The relays hold no backup of this key.
    #[error("the relays hold no backup for this key")]
    NotFound,
    /// A backup that does not read.
    #[error("the backup is damaged: {0}")]
    Damaged(String),
    /// The relays could not be reached or refused.
    #[error("relays: {0}")]
    Relays(String),
    /// The local database failed.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// A group the user is in, as a backup keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupGroup {
    /// Its relay.
    pub relay: String,
    /// Its id there.
    pub id: String,
    /// Its name.
    pub name: String,
}

/// A contact, as a backup keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupContact {
    /// Their username.
    pub username: String,
    /// The user's name for them.
    pub alias: Option<String>,
}

/// Everything a backup holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Backup {
    /// The keystore's secrets.
    pub secrets: Secrets,
    /// The client's settings (server, relays, mint, …).
    pub settings: BTreeMap<String, String>,
    /// The contacts.
    pub contacts: Vec<BackupContact>,
    /// The groups.
    pub groups: Vec<BackupGroup>,
}

impl Backup {
    /// A backup of `secrets` and what the local database holds.
    pub fn collect(secrets: &Secrets, store: &LocalStore) -> Result<Backup, BackupError> {
        Ok(Backup {
            secrets: secrets.clone(),
            settings: store.settings()?,
            contacts: store
                .contacts()?
                .into_iter()
                .map(|c| BackupContact {
                    username: c.username,
                    alias: c.alias,
                })
                .collect(),
            groups: store
                .groups()?
                .into_iter()
                .map(|(relay, id, name)| BackupGroup { relay, id, name })
                .collect(),
        })
    }

    /// Puts the settings, contacts and groups into `store`; the secrets are the caller's to
    /// keep (in a new keystore).
    pub fn apply(&self, store: &mut LocalStore) -> Result<(), BackupError> {
        for (key, value) in &self.settings {
            store.set_setting(key, value)?;
        }
        let contacts: Vec<LocalContact> = self
            .contacts
            .iter()
            .map(|c| LocalContact {
                username: c.username.clone(),
                alias: c.alias.clone(),
                tx_count: 0,
            })
            .collect();
        store.save_contacts(&contacts)?;
        for g in &self.groups {
            store.save_group(&g.relay, &g.id, &g.name)?;
        }
        Ok(())
    }

    /// The backup as JSON (zeroed when dropped).
    fn to_json(&self) -> Result<Zeroizing<String>, BackupError> {
        serde_json::to_string(self)
            .map(Zeroizing::new)
            .map_err(|e| BackupError::Damaged(e.to_string()))
    }

    /// Writes the backup to `path`, sealed under `passphrase` (replacing an older backup file
    /// only once the new one is whole).
    pub fn write_file(&self, path: &Path, passphrase: &str, params: KdfParams) -> Result<(), BackupError> {
        let sealed = SealKey::new(passphrase, params)?.seal(BACKUP_FORMAT, self.to_json()?.as_bytes())?;
        write_atomically(path, sealed.as_bytes()).map_err(KeystoreError::from)?;
        Ok(())
    }

    /// Reads the backup file at `path` with `passphrase`.
    pub fn read_file(path: &Path, passphrase: &str) -> Result<Backup, BackupError> {
        let text = std::fs::read_to_string(path).map_err(KeystoreError::from)?;
        let (_, plain) = SealKey::unseal(BACKUP_FORMAT, &text, passphrase)?;
        serde_json::from_slice(&plain).map_err(|e| BackupError::Damaged(e.to_string()))
    }

    /// Publishes the backup to the messenger's relays as NIP-78 application data, encrypted
    /// to the user's own key (NIP-44); it replaces the previous one.
    pub async fn publish(&self, messenger: &Messenger) -> Result<(), BackupError> {
        let keys = messenger.keys();
        let content = nip44::encrypt(
            keys.secret_key(),
            &keys.public_key(),
            self.to_json()?.as_str(),
            nip44::Version::V2,
        )
        .map_err(|e| BackupError::Damaged(e.to_string()))?;
        let event = EventBuilder::new(Kind::from(APP_DATA_KIND), content)
            .tags([Tag::identifier(BACKUP_TAG)])
            .sign_with_keys(keys)
            .map_err(|e| BackupError::Damaged(e.to_string()))?;
        let sent = messenger
            .client()
            .send_event(&event)
            .await
            .map_err(|e| BackupError::Relays(e.to_string()))?;
        if sent.success.is_empty() {
            return Err(BackupError::Relays(format!(
                "no relay took the backup: {:?}",
                sent.failed
            )));
        }
        Ok(())
    }

    /// The newest backup of the messenger's key on its relays.
    pub async fn fetch(messenger: &Messenger) -> Result<Backup, BackupError> {
        let keys = messenger.keys();
        let filter = Filter::new()
            .author(keys.public_key())
            .kind(Kind::from(APP_DATA_KIND))
            .identifier(BACKUP_TAG);
        let events = messenger
            .client()
            .fetch_events(filter, RELAY_WAIT)
            .await
            .map_err(|e| BackupError::Relays(e.to_string()))?;
        let newest = events
            .iter()
            .filter(|e| {
                e.tags
                    .iter()
                    .any(|t| t.kind() == TagKind::d() && t.content() == Some(BACKUP_TAG))
            })
            .max_by_key(|e| e.created_at)
            .ok_or(BackupError::NotFound)?;
        let plain = nip44::decrypt(keys.secret_key(), &keys.public_key(), &newest.content)
            .map(Zeroizing::new)
            .map_err(|e| BackupError::Damaged(e.to_string()))?;
        serde_json::from_str(&plain).map_err(|e| BackupError::Damaged(e.to_string()))
    }
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

    #[test]
    fn a_backup_file_gives_everything_back_to_a_fresh_database() {
        let mut store = LocalStore::in_memory().expect("db");
        store.set_setting("server", "http://127.0.0.1:8080").expect("setting");
        store
            .save_contacts(&[LocalContact {
                username: "bob".into(),
                alias: Some("Bob".into()),
                tx_count: 3,
            }])
            .expect("contacts");
        store
            .save_group("ws://127.0.0.1:8080", "climbers", "Climbers")
            .expect("group");
        let secrets = Secrets {
            nostr_secret_key: Some("22".repeat(32)),
            ecash_mnemonic: Some("abandon ".repeat(11) + "about"),
            credentials: BTreeMap::from([("http://127.0.0.1:8080".into(), "token".into())]),
        };
        let backup = Backup::collect(&secrets, &store).expect("collect");
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("flash-backup.json");
        backup.write_file(&path, "backup passphrase", FAST).expect("write");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(!text.contains("bob") && !text.contains("abandon") && text.contains("flash-backup/1"));

        assert!(matches!(
            Backup::read_file(&path, "not the passphrase"),
            Err(BackupError::Sealed(KeystoreError::WrongPassphrase))
        ));
        let read = Backup::read_file(&path, "backup passphrase").expect("read back");
        assert_eq!(read, backup);
        let mut fresh = LocalStore::in_memory().expect("db");
        read.apply(&mut fresh).expect("apply");
        assert_eq!(fresh.settings().expect("settings"), store.settings().expect("settings"));
        assert_eq!(fresh.groups().expect("groups"), store.groups().expect("groups"));
        assert_eq!(fresh.contacts().expect("contacts")[0].alias.as_deref(), Some("Bob"));
        // A keystore is not a backup, nor the other way round.
        let keystore = dir.path().join("keystore.json");
        crate::Keystore::create(&keystore, "backup passphrase", FAST, secrets).expect("keystore");
        assert!(matches!(
            Backup::read_file(&keystore, "backup passphrase"),
            Err(BackupError::Sealed(KeystoreError::Corrupt(_)))
        ));
    }
}
