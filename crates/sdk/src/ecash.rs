//! The client's own ecash: Cashu notes whose secrets come from the user's seed (NUT-13), so
//! the seed alone restores them (NUT-09), kept in the local database.
//!
//! Sending locks notes to the receiver's key (NUT-11 P2PK) in a swap at the mint, and the
//! token carries the mint's DLEQ proofs (NUT-12). Receiving checks, with no mint needed, that
//! every note carries a valid DLEQ proof under the mint's key for its amount (the keys are kept
//! locally) and that a locked note is locked to the user: such a token cannot be forged or
//! spent by anyone else, so it is kept as pending and swapped into the user's own notes as
//! soon as the mint answers. Whether it was already spent only the mint can say: a token
//! redeemed twice is refused then, and nothing is kept.

use std::str::FromStr;

use cashu::amount::SplitTarget;
use cashu::dhke::construct_proofs;
use cashu::nuts::nut00::{BlindedMessage, PreMintSecrets, Proof, Proofs, Token};
use cashu::nuts::nut01::{KeysResponse, PublicKey, SecretKey};
use cashu::nuts::nut02::{KeySet, KeySetInfo, KeysetResponse};
use cashu::nuts::nut03::{SwapRequest, SwapResponse};
use cashu::nuts::nut07::{CheckStateRequest, CheckStateResponse, State};
use cashu::nuts::nut09::{RestoreRequest, RestoreResponse};
use cashu::nuts::nut10::SpendingConditions;
use cashu::{Amount, CurrencyUnit, Id, MintUrl};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::local::{LocalError, LocalStore};

/// Notes asked for at once when restoring, and empty batches in a row that end a restore.
const RESTORE_BATCH: u32 = 100;
const RESTORE_EMPTY_BATCHES: u32 = 3;

/// Why an ecash operation failed. Nothing is kept or spent on an error.
#[derive(Debug, thiserror::Error)]
pub enum EcashError {
    /// Not a Cashu token.
    #[error("not a Cashu token: {0}")]
    BadToken(String),
    /// A token of another mint.
    #[error("the token is of another mint ({0})")]
    OtherMint(String),
    /// A note without a valid DLEQ proof under the mint's key: not proven to be the mint's.
    #[error("a note's DLEQ proof does not hold: the token was not signed by the mint")]
    BadDleq,
    /// A note locked to another key.
    #[error("the token is locked to another key")]
    LockedToSomeoneElse,
    /// A note of a keyset this wallet does not know (and the mint could not be asked).
    #[error("a note is of keyset {0}, which this wallet does not know yet")]
    UnknownKeyset(String),
    /// The mint says the notes were spent already.
    #[error("the token was spent already")]
    AlreadySpent,
    /// Not enough notes for the amount.
    #[error("the wallet holds {available} sats of ecash, less than {wanted}")]
    Insufficient {
        /// What the wallet holds.
        available: u64,
        /// What was asked for.
        wanted: u64,
    },
    /// The mint could not be reached; the caller may keep what it has and try later.
    #[error("the mint is unreachable: {0}")]
    Unreachable(String),
    /// The mint refused (`{"detail", "code"}`).
    #[error("the mint refused: {0}")]
    Refused(String),
    /// A protocol step failed (blinding, unblinding, signing).
    #[error("Cashu: {0}")]
    Protocol(String),
    /// The local database failed.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// What receiving a token did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Received {
    /// Swapped into the user's own notes: spendable now.
    Redeemed(u64),
    /// Checked offline and kept; redeemed when the mint answers.
    Pending(u64),
}

/// The user's ecash wallet at one mint.
#[derive(Debug, Clone)]
pub struct EcashWallet {
    http: reqwest::Client,
    mint: MintUrl,
    seed: [u8; 64],
}

impl EcashWallet {
    /// A wallet at `mint` (its base URL, e.g. `http://127.0.0.1:8080`) whose notes derive from
    /// the BIP39 `mnemonic` (no passphrase).
    pub fn new(mint: &str, mnemonic: &str) -> Result<EcashWallet, EcashError> {
        let mint = MintUrl::from_str(mint).map_err(|e| EcashError::BadToken(format!("mint URL: {e}")))?;
        let words = crate::identity::parse_mnemonic(mnemonic).map_err(|e| EcashError::Protocol(e.to_string()))?;
        Ok(EcashWallet {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(10))
                .build()
                .map_err(|e| EcashError::Unreachable(e.to_string()))?,
            mint,
            seed: words.to_seed(""),
        })
    }

    /// The mint's URL as tokens name it.
    pub fn mint_url(&self) -> String {
        self.mint.to_string()
    }

    /// Fetches the mint's sat keysets and keys into the local database (for offline checks).
    pub async fn refresh_keysets(&self, store: &mut LocalStore) -> Result<(), EcashError> {
        let listed: KeysetResponse = self.get("/v1/keysets").await?;
        for info in listed.keysets.iter().filter(|k| k.unit == CurrencyUnit::Sat) {
            let keys: KeysResponse = self.get(&format!("/v1/keys/{}", info.id)).await?;
            for mut keyset in keys.keysets {
                keyset.active = Some(info.active);
                keyset.input_fee_ppk = info.input_fee_ppk;
                store.save_keyset(
                    &self.mint.to_string(),
                    &json(&keyset)?,
                    &keyset.id.to_string(),
                    info.active,
                )?;
            }
        }
        Ok(())
    }

    /// The spendable balance, sats.
    pub fn balance(&self, store: &LocalStore) -> Result<u64, EcashError> {
        Ok(store.ecash_total(&self.mint.to_string())?)
    }

    /// What waits to be redeemed, sats.
    pub fn pending(&self, store: &LocalStore) -> Result<u64, EcashError> {
        Ok(store
            .pending_tokens(&self.mint.to_string())?
            .iter()
            .map(|(_, a)| a)
            .sum())
    }

    /// Receives `token`: checked offline (DLEQ, lock, keyset), then swapped into the user's
    /// notes; when the mint cannot be reached the token is kept as pending. `key` is the
    /// user's key, for notes locked to it.
    pub async fn receive(
        &self,
        store: &mut LocalStore,
        token: &str,
        key: Option<&SecretKey>,
    ) -> Result<Received, EcashError> {
        let (token_text, proofs) = self.check(store, token, key).await?;
        let amount = total(&proofs);
        match self.redeem(store, proofs, key).await {
            Ok(()) => Ok(Received::Redeemed(amount)),
            Err(EcashError::Unreachable(_)) => {
                store.add_pending_token(&self.mint.to_string(), &token_text, amount)?;
                Ok(Received::Pending(amount))
            }
            Err(e) => Err(e),
        }
    }

    /// Redeems the tokens kept as pending; the sats redeemed. A token the mint says was spent
    /// already is dropped; while the mint is unreachable they stay.
    pub async fn redeem_pending(&self, store: &mut LocalStore, key: Option<&SecretKey>) -> Result<u64, EcashError> {
        let mut redeemed = 0;
        for (token, amount) in store.pending_tokens(&self.mint.to_string())? {
            let (_, proofs) = self.check(store, &token, key).await?;
            match self.redeem(store, proofs, key).await {
                Ok(()) => redeemed += amount,
                Err(EcashError::AlreadySpent) => {}
                Err(e) => return Err(e),
            }
            store.remove_pending_token(&token)?;
        }
        Ok(redeemed)
    }

    /// Makes a token of `amount` sats from the user's notes, locked to `to` when given (only
    /// its holder can redeem it), with the mint's DLEQ proofs. Needs the mint (a swap).
    pub async fn send(&self, store: &mut LocalStore, amount: u64, to: Option<PublicKey>) -> Result<String, EcashError> {
        let keyset = self.active_keyset(store).await?;
        let mut notes: Vec<Proof> = store
            .ecash_notes(&self.mint.to_string())?
            .iter()
            .filter_map(|p| serde_json::from_str(p).ok())
            .collect();
        notes.sort_by_key(|p: &Proof| std::cmp::Reverse(u64::from(p.amount)));
        let mut inputs = Vec::new();
        let mut sum = 0u64;
        let available = total(&notes);
        for note in notes {
            let fee = fee(&keyset, inputs.len() as u64);
            if sum >= amount.saturating_add(fee) {
                break;
            }
            sum = sum.saturating_add(u64::from(note.amount));
            inputs.push(note);
        }
        let fee = fee(&keyset, inputs.len() as u64);
        let wanted = amount.saturating_add(fee);
        if sum < wanted {
            return Err(EcashError::Insufficient { available, wanted });
        }
        let amounts = (
            keyset.input_fee_ppk,
            keyset.keys.iter().map(|(a, _)| u64::from(*a)).collect(),
        )
            .into();
        let sent = match to {
            Some(key) => PreMintSecrets::with_conditions(
                keyset.id,
                Amount::from(amount),
                &SplitTarget::None,
                &SpendingConditions::new_p2pk(key, None),
                &amounts,
            ),
            None => PreMintSecrets::random(keyset.id, Amount::from(amount), &SplitTarget::None, &amounts),
        }
        .map_err(protocol)?;
        let change_amount = sum - wanted;
        let counter = store.ecash_counter(&keyset.id.to_string())?;
        let change = PreMintSecrets::from_seed(
            keyset.id,
            counter,
            &self.seed,
            Amount::from(change_amount),
            &SplitTarget::None,
            &amounts,
        )
        .map_err(protocol)?;
        let mut outputs: Vec<BlindedMessage> = sent.blinded_messages();
        outputs.extend(change.blinded_messages());
        let spent: Vec<String> = inputs.iter().map(|p| p.secret.to_string()).collect();
        self.reserve(store, &keyset.id, counter, change.len())?;
        let signed: SwapResponse = self.post("/v1/swap", &SwapRequest::new(inputs, outputs)).await?;
        let (sent_sigs, change_sigs) = signed.signatures.split_at(sent.len().min(signed.signatures.len()));
        let sent_proofs =
            construct_proofs(sent_sigs.to_vec(), sent.rs(), sent.secrets(), &keyset.keys).map_err(protocol)?;
        let change_proofs =
            construct_proofs(change_sigs.to_vec(), change.rs(), change.secrets(), &keyset.keys).map_err(protocol)?;
        store.spend_notes(&spent)?;
        self.keep(store, &keyset.id, &change_proofs)?;
        Ok(Token::new(self.mint.clone(), sent_proofs, None, CurrencyUnit::Sat).to_string())
    }

    /// Restores the user's unspent notes from the seed alone (NUT-09, then NUT-07): for each
    /// keyset, batches of deterministic outputs until three in a row come back unsigned. The
    /// sats restored.
    pub async fn restore(&self, store: &mut LocalStore) -> Result<u64, EcashError> {
        self.refresh_keysets(store).await?;
        let mut restored = 0;
        for text in store.keysets(&self.mint.to_string())? {
            let keyset: KeySet = serde_json::from_str(&text).map_err(|e| EcashError::Protocol(e.to_string()))?;
            let (mut start, mut empty, mut next_counter) = (0u32, 0u32, 0u32);
            while empty < RESTORE_EMPTY_BATCHES {
                let batch = PreMintSecrets::restore_batch(keyset.id, &self.seed, start, start + RESTORE_BATCH - 1)
                    .map_err(protocol)?;
                let answer: RestoreResponse = self
                    .post(
                        "/v1/restore",
                        &RestoreRequest {
                            outputs: batch.blinded_messages(),
                        },
                    )
                    .await?;
                if answer.signatures.is_empty() {
                    empty += 1;
                } else {
                    empty = 0;
                    let (mut rs, mut secrets) = (Vec::new(), Vec::new());
                    for output in &answer.outputs {
                        let (index, pre) = batch
                            .iter()
                            .enumerate()
                            .find(|(_, p)| p.blinded_message.blinded_secret == output.blinded_secret)
                            .ok_or_else(|| {
                                EcashError::Protocol("the mint restored an output it was not asked".into())
                            })?;
                        rs.push(pre.r.clone());
                        secrets.push(pre.secret.clone());
                        next_counter = next_counter.max(start + u32::try_from(index).unwrap_or(0) + 1);
                    }
                    let proofs = construct_proofs(answer.signatures, rs, secrets, &keyset.keys).map_err(protocol)?;
                    let states: CheckStateResponse = self
                        .post(
                            "/v1/checkstate",
                            &CheckStateRequest {
                                ys: proofs.iter().filter_map(|p| p.y().ok()).collect(),
                            },
                        )
                        .await?;
                    let unspent: Proofs = proofs
                        .into_iter()
                        .filter(|p| {
                            p.y()
                                .ok()
                                .is_some_and(|y| states.states.iter().any(|s| s.y == y && s.state == State::Unspent))
                        })
                        .collect();
                    restored += total(&unspent);
                    store.add_notes(&self.mint.to_string(), &keyset.id.to_string(), &notes_json(&unspent)?)?;
                }
                start += RESTORE_BATCH;
            }
            store.raise_ecash_counter(&keyset.id.to_string(), next_counter)?;
        }
        Ok(restored)
    }

    /// Parses `token` and checks it offline: this mint, known keysets (refreshed when the mint
    /// answers), every note's DLEQ proof, and any lock being the user's key. The token's text
    /// and its notes.
    async fn check(
        &self,
        store: &mut LocalStore,
        token: &str,
        key: Option<&SecretKey>,
    ) -> Result<(String, Proofs), EcashError> {
        let text = token.trim().trim_start_matches("cashu:").to_owned();
        let parsed = Token::from_str(&text).map_err(|e| EcashError::BadToken(e.to_string()))?;
        let mint = parsed.mint_url().map_err(|e| EcashError::BadToken(e.to_string()))?;
        if mint != self.mint {
            return Err(EcashError::OtherMint(mint.to_string()));
        }
        let mut keysets = self.known_keysets(store)?;
        if keysets.is_empty() && self.refresh_keysets(store).await.is_ok() {
            keysets = self.known_keysets(store)?;
        }
        let infos: Vec<KeySetInfo> = keysets
            .iter()
            .map(|k| KeySetInfo {
                id: k.id,
                unit: k.unit.clone(),
                active: k.active.unwrap_or(false),
                input_fee_ppk: k.input_fee_ppk,
                final_expiry: None,
            })
            .collect();
        let proofs = parsed.proofs(&infos).map_err(|e| EcashError::BadToken(e.to_string()))?;
        let mine = key.map(SecretKey::public_key);
        for proof in &proofs {
            let keyset = keysets
                .iter()
                .find(|k| k.id == proof.keyset_id)
                .ok_or_else(|| EcashError::UnknownKeyset(proof.keyset_id.to_string()))?;
            let mint_key = keyset.keys.amount_key(proof.amount).ok_or(EcashError::BadDleq)?;
            proof.verify_dleq(mint_key).map_err(|_| EcashError::BadDleq)?;
            if let Ok(SpendingConditions::P2PKConditions { data, .. }) = SpendingConditions::try_from(&proof.secret) {
                let ours = mine.is_some_and(|m| m.x_only_public_key() == data.x_only_public_key());
                if !ours {
                    return Err(EcashError::LockedToSomeoneElse);
                }
            }
        }
        Ok((text, proofs))
    }

    /// Swaps `proofs` (signing any locked to the user) into the user's own notes.
    async fn redeem(
        &self,
        store: &mut LocalStore,
        mut proofs: Proofs,
        key: Option<&SecretKey>,
    ) -> Result<(), EcashError> {
        let keyset = self.active_keyset(store).await?;
        for proof in &mut proofs {
            if let (Some(key), Ok(SpendingConditions::P2PKConditions { .. })) =
                (key, SpendingConditions::try_from(&proof.secret))
            {
                proof.sign_p2pk(key.clone()).map_err(protocol)?;
            }
        }
        let fee = fee(&keyset, proofs.len() as u64);
        let amount = total(&proofs)
            .checked_sub(fee)
            .ok_or_else(|| EcashError::Refused("the token is smaller than its fee".into()))?;
        let amounts = (
            keyset.input_fee_ppk,
            keyset.keys.iter().map(|(a, _)| u64::from(*a)).collect(),
        )
            .into();
        let counter = store.ecash_counter(&keyset.id.to_string())?;
        let outputs = PreMintSecrets::from_seed(
            keyset.id,
            counter,
            &self.seed,
            Amount::from(amount),
            &SplitTarget::None,
            &amounts,
        )
        .map_err(protocol)?;
        self.reserve(store, &keyset.id, counter, outputs.len())?;
        let signed: SwapResponse = self
            .post("/v1/swap", &SwapRequest::new(proofs, outputs.blinded_messages()))
            .await?;
        let notes =
            construct_proofs(signed.signatures, outputs.rs(), outputs.secrets(), &keyset.keys).map_err(protocol)?;
        self.keep(store, &keyset.id, &notes)
    }

    /// Moves `keyset`'s counter past the `used` outputs derived from `counter`, before they go
    /// to the mint: a crash after the mint signed them never derives them again (the seed's
    /// restore finds their notes).
    fn reserve(&self, store: &mut LocalStore, keyset: &Id, counter: u32, used: usize) -> Result<(), EcashError> {
        let next = counter.saturating_add(u32::try_from(used).unwrap_or(u32::MAX));
        Ok(store.raise_ecash_counter(&keyset.to_string(), next)?)
    }

    /// Stores new notes of `keyset`.
    fn keep(&self, store: &mut LocalStore, keyset: &Id, notes: &Proofs) -> Result<(), EcashError> {
        Ok(store.add_notes(&self.mint.to_string(), &keyset.to_string(), &notes_json(notes)?)?)
    }

    /// The keysets kept locally.
    fn known_keysets(&self, store: &LocalStore) -> Result<Vec<KeySet>, EcashError> {
        Ok(store
            .keysets(&self.mint.to_string())?
            .iter()
            .filter_map(|k| serde_json::from_str(k).ok())
            .collect())
    }

    /// The mint's active sat keyset (fetched when none is known).
    async fn active_keyset(&self, store: &mut LocalStore) -> Result<KeySet, EcashError> {
        let active = |sets: Vec<KeySet>| sets.into_iter().find(|k| k.active == Some(true));
        if let Some(k) = active(self.known_keysets(store)?) {
            return Ok(k);
        }
        self.refresh_keysets(store).await?;
        active(self.known_keysets(store)?)
            .ok_or_else(|| EcashError::Refused("the mint has no active sat keyset".into()))
    }

    /// GETs a mint route.
    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, EcashError> {
        let url = self.mint.join(path.trim_start_matches('/')).map_err(protocol)?;
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| EcashError::Unreachable(e.to_string()))?;
        answer(response).await
    }

    /// POSTs JSON to a mint route.
    async fn post<B: Serialize, T: DeserializeOwned>(&self, path: &str, body: &B) -> Result<T, EcashError> {
        let url = self.mint.join(path.trim_start_matches('/')).map_err(protocol)?;
        let response = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| EcashError::Unreachable(e.to_string()))?;
        answer(response).await
    }
}

/// The key a token for the NOSTR user `peer` is locked to (NUT-11): their x-only key, even.
/// NUT-11 checks Schnorr signatures against the x-only key, so their NOSTR secret redeems it.
pub fn lock_for(peer: &nostr::PublicKey) -> Result<PublicKey, EcashError> {
    PublicKey::from_hex(format!("02{}", peer.to_hex())).map_err(protocol)
}

/// The key that signs for notes locked to the user's NOSTR key.
pub fn signing_key(keys: &nostr::Keys) -> Result<SecretKey, EcashError> {
    SecretKey::from_hex(keys.secret_key().to_secret_hex()).map_err(protocol)
}

/// A mint's answer: its JSON, or its NUT-00 error (`11001` is "already spent").
async fn answer<T: DeserializeOwned>(response: reqwest::Response) -> Result<T, EcashError> {
    let status = response.status();
    let body = response
        .text()
        .await
        .map_err(|e| EcashError::Unreachable(e.to_string()))?;
    if status.is_success() {
        return serde_json::from_str(&body).map_err(|e| EcashError::Protocol(format!("the mint's answer: {e}")));
    }
    let error: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    if error["code"] == 11001 {
        return Err(EcashError::AlreadySpent);
    }
    let detail = error["detail"]
        .as_str()
        .map_or_else(|| format!("HTTP {status}"), str::to_owned);
    if status.is_server_error() {
        return Err(EcashError::Unreachable(detail));
    }
    Err(EcashError::Refused(detail))
}

/// The fee of spending `inputs` notes of `keyset`, sats (rounded up, NUT-02).
fn fee(keyset: &KeySet, inputs: u64) -> u64 {
    (inputs * keyset.input_fee_ppk).div_ceil(1000)
}

/// What notes are worth together, sats.
fn total(proofs: &[Proof]) -> u64 {
    proofs
        .iter()
        .fold(0u64, |sum, p| sum.saturating_add(u64::from(p.amount)))
}

/// Notes as (secret, JSON) for the local database.
fn notes_json(proofs: &[Proof]) -> Result<Vec<(String, String, u64)>, EcashError> {
    proofs
        .iter()
        .map(|p| Ok((p.secret.to_string(), json(p)?, u64::from(p.amount))))
        .collect()
}

/// A value as JSON.
fn json<T: Serialize>(value: &T) -> Result<String, EcashError> {
    serde_json::to_string(value).map_err(|e| EcashError::Protocol(e.to_string()))
}

/// A protocol error of the `cashu` crate.
fn protocol(e: impl std::fmt::Display) -> EcashError {
    EcashError::Protocol(e.to_string())
}
