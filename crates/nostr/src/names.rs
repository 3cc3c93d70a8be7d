//! NOSTR names: the pubkey a Flash user sets (`userUpdateNpub`), looked up by username
//! (`npubByUsername`) and served as a NIP-05 identifier at `/.well-known/nostr.json`.

use flash_core::ErrorCode;
use flash_core::{UserId, Username};
use flash_store::{Store, StoreError};
use nostr::nips::nip19::{FromBech32, ToBech32};
use nostr::PublicKey;
use serde_json::{json, Value};

/// Why a name operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NameError {
    /// Not an `npub1…` key (or 64 hex characters).
    #[error("not a NOSTR public key: give an npub1… or 64 hex characters")]
    InvalidNpub,
    /// Another Flash user set this key.
    #[error("this npub is already linked to another Flash account")]
    NpubTaken,
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NameError {
    /// The stable code the API shows.
    pub fn code(&self) -> ErrorCode {
        match self {
            NameError::InvalidNpub => ErrorCode::InvalidNpub,
            NameError::NpubTaken => ErrorCode::NpubNotAvailable,
            NameError::Store(_) => ErrorCode::InternalError,
        }
    }
}

/// Reads a public key given as `npub1…` or hex.
pub fn parse_pubkey(text: &str) -> Result<PublicKey, NameError> {
    let text = text.trim();
    if text.starts_with("npub1") {
        PublicKey::from_bech32(text).map_err(|_| NameError::InvalidNpub)
    } else if text.len() == 64 {
        PublicKey::from_hex(text).map_err(|_| NameError::InvalidNpub)
    } else {
        Err(NameError::InvalidNpub)
    }
}

fn npub(hex: &str) -> Option<String> {
    PublicKey::from_hex(hex).ok()?.to_bech32().ok()
}

/// The users' NOSTR names, over the bank's database (served whether or not a relay runs).
#[derive(Clone)]
pub struct Names {
    store: Store,
}

impl Names {
    /// Names kept in `store`.
    pub fn new(store: Store) -> Names {
        Names { store }
    }

    /// Sets a user's pubkey; returns it as an npub.
    pub async fn set_npub(&self, user: UserId, text: &str) -> Result<String, NameError> {
        let pk = parse_pubkey(text)?;
        match self.store.nostr_set_user_key(user, Some(&pk.to_hex())).await {
            Ok(()) => pk.to_bech32().map_err(|_| NameError::InvalidNpub),
            Err(e) if e.is_unique_violation() => Err(NameError::NpubTaken),
            Err(e) => Err(e.into()),
        }
    }

    /// The npub a user set, if any.
    pub async fn npub_of(&self, user: UserId) -> Result<Option<String>, NameError> {
        Ok(self.store.nostr_user_key(user).await?.as_deref().and_then(npub))
    }

    /// The (username as written, npub) of a username whose user set a pubkey.
    pub async fn npub_by_username(&self, username: &Username) -> Result<Option<(String, String)>, NameError> {
        Ok(self
            .store
            .nostr_key_by_username(username)
            .await?
            .and_then(|(name, hex)| Some((name, npub(&hex)?))))
    }

    /// The NIP-05 document for `?name=`: the name's pubkey and the relays to find it on (this
    /// one). `_` is the relay operator's key, when configured. Unknown names get empty `names`.
    pub async fn nip05(
        &self,
        name: Option<&str>,
        operator: Option<&str>,
        relay_url: Option<&str>,
    ) -> Result<Value, NameError> {
        let found = match name.map(str::trim) {
            Some("_") => operator
                .and_then(|op| PublicKey::from_hex(op).ok())
                .map(|pk| pk.to_hex()),
            Some(name) => match Username::parse(name) {
                Ok(username) => self.store.nostr_key_by_username(&username).await?.map(|(_, hex)| hex),
                Err(_) => None,
            },
            None => None,
        };
        Ok(match (name, found) {
            (Some(name), Some(hex)) => {
                let mut names = serde_json::Map::new();
                names.insert(name.trim().to_ascii_lowercase(), json!(hex));
                let mut relays = serde_json::Map::new();
                relays.insert(hex, json!(relay_url.into_iter().collect::<Vec<_>>()));
                json!({ "names": names, "relays": relays })
            }
            _ => json!({ "names": {} }),
        })
    }
}
