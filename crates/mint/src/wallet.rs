//! The wallet's side of a note: blinding fresh secrets into outputs, and unblinding the
//! mint's signatures (checking their DLEQ proofs) into notes. `ecashMint` makes its tokens
//! with it; tests and benchmarks play wallets with it.

use cashu::dhke;
use cashu::nuts::{BlindSignature, BlindedMessage, Id, Keys, Proofs, SecretKey};
use cashu::secret::Secret;
use cashu::Amount;

use crate::MintError;

/// Outputs being made: what the wallet keeps to unblind the signatures.
#[derive(Clone, Debug)]
pub struct Premint {
    /// The blinded messages to send.
    pub outputs: Vec<BlindedMessage>,
    /// Their secrets.
    pub secrets: Vec<Secret>,
    /// Their blinding factors.
    pub factors: Vec<SecretKey>,
}

/// The powers of two that make `amount`, smallest first.
pub fn split(amount: u64) -> Vec<u64> {
    (0..64).map(|b| 1u64 << b).filter(|p| amount & p != 0).collect()
}

impl Premint {
    /// Outputs of these amounts for keyset `id`, with random secrets.
    pub fn random(id: Id, amounts: &[u64]) -> Result<Premint, MintError> {
        Premint::with_secrets(id, amounts.iter().map(|a| (*a, Secret::generate())).collect())
    }

    /// Outputs for keyset `id` with the given amounts and secrets.
    pub fn with_secrets(id: Id, parts: Vec<(u64, Secret)>) -> Result<Premint, MintError> {
        let mut p = Premint {
            outputs: Vec::with_capacity(parts.len()),
            secrets: Vec::with_capacity(parts.len()),
            factors: Vec::with_capacity(parts.len()),
        };
        for (amount, secret) in parts {
            let (blinded, r) = dhke::blind_message(secret.as_bytes(), None)
                .map_err(|e| MintError::Internal(format!("blinding: {e}")))?;
            p.outputs.push(BlindedMessage::new(Amount::from(amount), id, blinded));
            p.secrets.push(secret);
            p.factors.push(r);
        }
        Ok(p)
    }

    /// Unblinds the mint's signatures (one per output, in order) into notes, after checking
    /// every DLEQ proof against `keys`.
    pub fn unblind(self, sigs: Vec<BlindSignature>, keys: &Keys) -> Result<Proofs, MintError> {
        if sigs.len() != self.outputs.len() {
            return Err(MintError::Internal("one signature per output expected".into()));
        }
        for (sig, out) in sigs.iter().zip(&self.outputs) {
            let key = keys
                .amount_key(sig.amount)
                .ok_or_else(|| MintError::Internal(format!("no key for {}", sig.amount)))?;
            sig.verify_dleq(key, out.blinded_secret)
                .map_err(|e| MintError::Internal(format!("DLEQ proof: {e}")))?;
        }
        dhke::construct_proofs(sigs, self.factors, self.secrets, keys)
            .map_err(|e| MintError::Internal(format!("unblinding: {e}")))
    }

    /// Unblinds melt change (NUT-08): the mint signed the first blank outputs, in order, with
    /// the amounts it chose.
    pub fn unblind_change(mut self, change: Vec<BlindSignature>, keys: &Keys) -> Result<Proofs, MintError> {
        let n = change.len();
        self.outputs.truncate(n);
        self.secrets.truncate(n);
        self.factors.truncate(n);
        for (out, sig) in self.outputs.iter_mut().zip(&change) {
            out.amount = sig.amount;
        }
        self.unblind(change, keys)
    }
}
