//! Keysets: derived from the mint seed, identified as NUT-02 says, and the blind signatures
//! (with their NUT-12 DLEQ proofs) made with them.
//!
//! A keyset's keys sit at `m/0'/{unit}'/{index}'/{order}'` under the seed (BIP32), one per
//! amount 2^order; the seed is kept sealed in the store, the keys only in memory.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use bitcoin::bip32::{ChildNumber, Xpriv};
use bitcoin::secp256k1::Secp256k1;
use cashu::dhke;
use cashu::nuts::{
    BlindSignature, BlindedMessage, CurrencyUnit, Id, KeySet, KeySetInfo, Keys, Proof, PublicKey, SecretKey,
};
use cashu::Amount;
use flash_store::{KeysetRecord, ProofRow, SignatureRow};

use crate::MintError;

/// Which NUT-02 keyset id to give a new keyset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdVersion {
    /// `00…` (16 hex characters), understood by every wallet.
    V1,
    /// `01…` (66 hex characters), committing to unit, fee and expiry.
    V2,
}

/// The id of a keyset with these public keys (NUT-02).
pub fn keyset_id(version: IdVersion, keys: &Keys, unit: &CurrencyUnit, input_fee_ppk: u64, expiry: Option<u64>) -> Id {
    match version {
        IdVersion::V1 => Id::v1_from_keys(keys),
        IdVersion::V2 => Id::v2_from_data(keys, unit, input_fee_ppk, expiry),
    }
}

/// A keyset's key pairs by amount.
type KeyPairs = BTreeMap<u64, (SecretKey, PublicKey)>;

/// The derivation index of a unit (the second level of a keyset's path).
fn unit_index(unit: &CurrencyUnit) -> Result<u32, MintError> {
    match unit {
        CurrencyUnit::Sat => Ok(0),
        _ => Err(MintError::UnsupportedUnit),
    }
}

/// A keyset with its private keys.
pub struct Keyset {
    /// Its id.
    pub id: Id,
    /// Its unit.
    pub unit: CurrencyUnit,
    /// Whether it signs new notes.
    pub active: bool,
    /// Fee per input, parts per thousand.
    pub input_fee_ppk: u64,
    /// The stored row it was derived from.
    pub record: KeysetRecord,
    keys: KeyPairs,
}

impl std::fmt::Debug for Keyset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyset")
            .field("id", &self.id)
            .field("active", &self.active)
            .finish()
    }
}

impl Keyset {
    /// Derives the keyset at `index` for `unit` with amounts 1 … 2^(max_order-1).
    pub fn derive(
        seed: &[u8],
        unit: &CurrencyUnit,
        index: u32,
        max_order: u32,
        input_fee_ppk: u64,
    ) -> Result<(Id, KeyPairs), MintError> {
        if max_order == 0 || max_order > 64 {
            return Err(MintError::Internal(format!("max_order {max_order} outside 1..=64")));
        }
        let secp = Secp256k1::signing_only();
        let derive_err = |e: bitcoin::bip32::Error| MintError::Internal(format!("keyset derivation: {e}"));
        let hardened = |i: u32| ChildNumber::from_hardened_idx(i).map_err(derive_err);
        let master = Xpriv::new_master(bitcoin::Network::Bitcoin, seed).map_err(derive_err)?;
        let path = [hardened(0)?, hardened(unit_index(unit)?)?, hardened(index)?];
        let base = master.derive_priv(&secp, &path).map_err(derive_err)?;
        let mut keys = BTreeMap::new();
        for order in 0..max_order {
            let child = base.derive_priv(&secp, &[hardened(order)?]).map_err(derive_err)?;
            let secret = SecretKey::from(child.private_key);
            let public = secret.public_key();
            keys.insert(1u64 << order, (secret, public));
        }
        let public: Keys = Keys::new(keys.iter().map(|(a, (_, p))| (Amount::from(*a), *p)).collect());
        Ok((keyset_id(IdVersion::V1, &public, unit, input_fee_ppk, None), keys))
    }

    /// The keyset a stored row describes.
    pub fn from_record(seed: &[u8], record: KeysetRecord) -> Result<Keyset, MintError> {
        let unit: CurrencyUnit = record
            .unit
            .parse()
            .map_err(|_| MintError::Internal(format!("stored unit {:?}", record.unit)))?;
        let (id, keys) = Keyset::derive(
            seed,
            &unit,
            record.derivation_index,
            record.max_order,
            record.input_fee_ppk,
        )?;
        if id.to_string() != record.id {
            return Err(MintError::Internal(format!(
                "keyset {} derives to {id}: the mint seed is not the one these keysets were made with",
                record.id
            )));
        }
        Ok(Keyset {
            id,
            unit,
            active: record.active,
            input_fee_ppk: record.input_fee_ppk,
            record,
            keys,
        })
    }

    /// The public keys (NUT-01).
    pub fn public_keys(&self) -> Keys {
        Keys::new(self.keys.iter().map(|(a, (_, p))| (Amount::from(*a), *p)).collect())
    }

    /// The public keyset (`/v1/keys`).
    pub fn keyset(&self) -> KeySet {
        KeySet {
            id: self.id,
            unit: self.unit.clone(),
            active: Some(self.active),
            keys: self.public_keys(),
            input_fee_ppk: self.input_fee_ppk,
            final_expiry: None,
        }
    }

    /// Its summary (`/v1/keysets`).
    pub fn info(&self) -> KeySetInfo {
        KeySetInfo {
            id: self.id,
            unit: self.unit.clone(),
            active: self.active,
            input_fee_ppk: self.input_fee_ppk,
            final_expiry: None,
        }
    }

    fn key(&self, amount: Amount) -> Result<&(SecretKey, PublicKey), MintError> {
        self.keys
            .get(&amount.to_u64())
            .ok_or_else(|| MintError::AmountRange(format!("no key for amount {amount} in keyset {}", self.id)))
    }

    /// Signs a blinded message with the key of its amount, with a DLEQ proof (NUT-12).
    pub fn sign(&self, output: &BlindedMessage) -> Result<BlindSignature, MintError> {
        let (secret, _) = self.key(output.amount)?;
        blind_sign(secret, self.id, output)
    }

    /// Checks a note's signature: `C == k·hash_to_curve(secret)`.
    pub fn verify(&self, proof: &Proof) -> Result<(), MintError> {
        let (secret, _) = self
            .key(proof.amount)
            .map_err(|e| MintError::ProofInvalid(e.to_string()))?;
        dhke::verify_message(secret, proof.c, proof.secret.as_bytes())
            .map_err(|_| MintError::ProofInvalid("the signature does not match the secret".into()))
    }
}

/// Signs `output` with the private key `key` of keyset `keyset`: `C_ = k·B_`, with the DLEQ
/// proof `(e, s)` of NUT-12 (its nonce derived deterministically from `k`, `B_` and `C_`).
pub fn blind_sign(key: &SecretKey, keyset: Id, output: &BlindedMessage) -> Result<BlindSignature, MintError> {
    let c = dhke::sign_message(key, &output.blinded_secret)
        .map_err(|e| MintError::BadRequest(format!("cannot sign output: {e}")))?;
    BlindSignature::new(output.amount, c, keyset, &output.blinded_secret, key)
        .map_err(|e| MintError::Internal(format!("DLEQ proof: {e}")))
}

/// The mint's keysets, by id, and the active one per unit.
#[derive(Default)]
pub struct Keyring {
    sets: HashMap<Id, Arc<Keyset>>,
    active: HashMap<CurrencyUnit, Id>,
}

impl Keyring {
    /// A keyring of `sets`.
    pub fn new(sets: Vec<Keyset>) -> Keyring {
        let mut ring = Keyring::default();
        for set in sets {
            if set.active {
                ring.active.insert(set.unit.clone(), set.id);
            }
            ring.sets.insert(set.id, Arc::new(set));
        }
        ring
    }

    /// A keyset by id.
    pub fn get(&self, id: &Id) -> Result<Arc<Keyset>, MintError> {
        self.sets.get(id).cloned().ok_or(MintError::UnknownKeyset)
    }

    /// The active keyset of `unit`.
    pub fn active(&self, unit: &CurrencyUnit) -> Result<Arc<Keyset>, MintError> {
        let id = self.active.get(unit).ok_or(MintError::UnsupportedUnit)?;
        self.get(id)
    }

    /// Every keyset, oldest first.
    pub fn all(&self) -> Vec<Arc<Keyset>> {
        let mut sets: Vec<_> = self.sets.values().cloned().collect();
        sets.sort_by_key(|s| (s.record.created_at_ms, s.record.derivation_index));
        sets
    }

    /// Their summaries (for expanding the short keyset ids of V4 tokens).
    pub fn infos(&self) -> Vec<KeySetInfo> {
        self.all().iter().map(|s| s.info()).collect()
    }
}

/// The row that records a note as presented.
pub(crate) fn proof_row(proof: &Proof, y: &PublicKey) -> Result<ProofRow, MintError> {
    Ok(ProofRow {
        y: y.to_hex(),
        keyset_id: proof.keyset_id.to_string(),
        amount: amount_i64(proof.amount)?,
        secret: proof.secret.to_string(),
        signature: proof.c.to_hex(),
        witness: proof
            .witness
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| MintError::Internal(e.to_string()))?,
    })
}

/// The row that records a signature as issued.
pub(crate) fn signature_row(output: &BlindedMessage, sig: &BlindSignature) -> Result<SignatureRow, MintError> {
    let dleq = sig
        .dleq
        .as_ref()
        .ok_or_else(|| MintError::Internal("signature without DLEQ".into()))?;
    Ok(SignatureRow {
        blinded: output.blinded_secret.to_hex(),
        keyset_id: sig.keyset_id.to_string(),
        amount: amount_i64(sig.amount)?,
        signature: sig.c.to_hex(),
        dleq_e: dleq.e.to_secret_hex(),
        dleq_s: dleq.s.to_secret_hex(),
    })
}

/// The records of the signatures a request named `origin` issues.
pub(crate) fn issued(rows: &[SignatureRow], origin: &str, now_ms: i64) -> Vec<flash_store::Record> {
    rows.iter()
        .map(|r| flash_store::Record::mint_signature_issued(r, origin, now_ms))
        .collect()
}

/// A stored signature, as the wallet sees it.
pub(crate) fn stored_signature(row: &SignatureRow) -> Result<BlindSignature, MintError> {
    let bad = |what: &str| MintError::Internal(format!("stored signature: bad {what}"));
    Ok(BlindSignature {
        amount: Amount::from(u64::try_from(row.amount).map_err(|_| bad("amount"))?),
        keyset_id: row.keyset_id.parse().map_err(|_| bad("keyset id"))?,
        c: PublicKey::from_hex(&row.signature).map_err(|_| bad("C_"))?,
        dleq: Some(cashu::nuts::BlindSignatureDleq {
            e: SecretKey::from_hex(&row.dleq_e).map_err(|_| bad("dleq e"))?,
            s: SecretKey::from_hex(&row.dleq_s).map_err(|_| bad("dleq s"))?,
        }),
    })
}

/// An amount as the ledger's integer.
pub(crate) fn amount_i64(amount: Amount) -> Result<i64, MintError> {
    i64::try_from(amount.to_u64()).map_err(|_| MintError::AmountRange(format!("{amount} is too large")))
}
