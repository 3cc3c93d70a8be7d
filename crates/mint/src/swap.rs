//! Checking inputs and outputs, and the operations made of nothing else: swap (NUT-03),
//! check state (NUT-07) and restore (NUT-09).

use std::collections::HashSet;

use cashu::dhke::hash_to_curve;
use cashu::nuts::nut10::SpendingConditionVerification;
use cashu::nuts::{
    BlindSignature, BlindedMessage, CheckStateRequest, CheckStateResponse, CurrencyUnit, Proof, ProofState, PublicKey,
    RestoreRequest, RestoreResponse, State, SwapRequest, SwapResponse,
};
use flash_bank::{BankError, MintMove};
use flash_core::SystemAccount;
use flash_store::{Record, REFUSED_OUTPUT_SIGNED, REFUSED_PROOF_TAKEN};
use sha2::{Digest, Sha256};

use crate::keys::{amount_i64, issued, proof_row, signature_row, stored_signature};
use crate::{Mint, MintError};

/// Inputs that verified: their `Y`s, total, fee and unit.
pub(crate) struct Inputs {
    pub(crate) ys: Vec<PublicKey>,
    pub(crate) total: i64,
    pub(crate) fee: i64,
}

/// Outputs that verified, signed (not yet recorded).
pub(crate) struct Signed {
    pub(crate) signatures: Vec<BlindSignature>,
    pub(crate) records: Vec<flash_store::SignatureRow>,
    pub(crate) total: i64,
}

impl Mint {
    /// Verifies inputs: count, duplicates, keysets, unit, signatures. Spending conditions are
    /// checked by the caller on the whole request (SIG_ALL covers the outputs too).
    pub(crate) fn check_inputs(&self, proofs: &[Proof]) -> Result<Inputs, MintError> {
        if proofs.is_empty() {
            return Err(MintError::Unbalanced("no inputs".into()));
        }
        if proofs.len() > self.config.max_inputs {
            return Err(MintError::TooManyInputs(self.config.max_inputs));
        }
        let ring = self.keyring();
        let mut ys = Vec::with_capacity(proofs.len());
        let mut seen = HashSet::with_capacity(proofs.len());
        let (mut total, mut fee_ppk) = (0i64, 0u64);
        let mut unit: Option<CurrencyUnit> = None;
        for proof in proofs {
            let y =
                hash_to_curve(proof.secret.as_bytes()).map_err(|e| MintError::ProofInvalid(format!("secret: {e}")))?;
            if !seen.insert(y) {
                return Err(MintError::DuplicateInputs);
            }
            let keyset = ring.get(&proof.keyset_id)?;
            match &unit {
                Some(u) if *u != keyset.unit => return Err(MintError::MultipleUnits),
                _ => unit = Some(keyset.unit.clone()),
            }
            keyset.verify(proof)?;
            total = total
                .checked_add(amount_i64(proof.amount)?)
                .ok_or_else(|| MintError::AmountRange("inputs overflow".into()))?;
            fee_ppk = fee_ppk.saturating_add(keyset.input_fee_ppk);
            ys.push(y);
        }
        let fee = i64::try_from(fee_ppk.div_ceil(1_000)).map_err(|_| MintError::AmountRange("fee".into()))?;
        Ok(Inputs { ys, total, fee })
    }

    /// Verifies and signs outputs with the active keyset of their (single) unit. An empty
    /// list is allowed only where the caller allows it.
    pub(crate) fn sign_outputs(&self, outputs: &[BlindedMessage]) -> Result<Signed, MintError> {
        if outputs.len() > self.config.max_outputs {
            return Err(MintError::TooManyOutputs(self.config.max_outputs));
        }
        let ring = self.keyring();
        let mut seen = HashSet::with_capacity(outputs.len());
        let mut signed = Signed {
            signatures: Vec::with_capacity(outputs.len()),
            records: Vec::with_capacity(outputs.len()),
            total: 0,
        };
        let mut unit: Option<CurrencyUnit> = None;
        for output in outputs {
            if !seen.insert(output.blinded_secret) {
                return Err(MintError::DuplicateOutputs);
            }
            let keyset = ring.get(&output.keyset_id)?;
            if !keyset.active {
                return Err(MintError::InactiveKeyset);
            }
            match &unit {
                Some(u) if *u != keyset.unit => return Err(MintError::MultipleUnits),
                _ => unit = Some(keyset.unit.clone()),
            }
            let sig = keyset.sign(output)?;
            signed.records.push(signature_row(output, &sig)?);
            signed.signatures.push(sig);
            signed.total = signed
                .total
                .checked_add(amount_i64(output.amount)?)
                .ok_or_else(|| MintError::AmountRange("outputs overflow".into()))?;
        }
        Ok(signed)
    }

    /// Refuses outputs already signed (the unique key on `B_` refuses them again at commit).
    pub(crate) async fn check_unsigned(&self, outputs: &[BlindedMessage]) -> Result<(), MintError> {
        let blinded: Vec<String> = outputs.iter().map(|o| o.blinded_secret.to_hex()).collect();
        if self.store().mint_signatures_for(&blinded).await?.is_empty() {
            Ok(())
        } else {
            Err(MintError::OutputsSigned)
        }
    }

    /// The signatures a request under `origin` already got for exactly these outputs, in
    /// their order: a retried request is answered as the first time (NUT-19), from the store,
    /// so on whichever node it lands.
    pub(crate) async fn replayed(
        &self,
        origin: &str,
        outputs: &[BlindedMessage],
    ) -> Result<Option<Vec<BlindSignature>>, MintError> {
        let rows = self.store().mint_signatures_by_origin(origin).await?;
        if rows.len() != outputs.len() {
            return Ok(None);
        }
        let mut sigs = Vec::with_capacity(outputs.len());
        for output in outputs {
            let key = output.blinded_secret.to_hex();
            match rows.iter().find(|r| r.blinded == key) {
                Some(row) if u64::try_from(row.amount).ok() == Some(output.amount.to_u64()) => {
                    sigs.push(stored_signature(row)?)
                }
                _ => return Ok(None),
            }
        }
        Ok(Some(sigs))
    }

    /// Makes sure the keyring knows these keysets: one another node made since this one
    /// loaded is read from the store (at most once every few seconds).
    pub(crate) async fn know_keysets<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a cashu::nuts::Id>,
    ) -> Result<(), MintError> {
        let ring = self.keyring();
        if ids.into_iter().all(|id| ring.get(id).is_ok()) {
            return Ok(());
        }
        self.reload_soon().await
    }

    /// Turns a commit's refusal into the NUT error: which notes were taken, and how.
    pub(crate) async fn refusal(&self, e: BankError, ys: &[PublicKey]) -> MintError {
        match e {
            BankError::Refused(r) if r == REFUSED_OUTPUT_SIGNED => MintError::OutputsSigned,
            BankError::Refused(r) if r == REFUSED_PROOF_TAKEN => {
                let ys: Vec<String> = ys.iter().map(|y| y.to_hex()).collect();
                match self.store().mint_proofs_presented(&ys).await {
                    Ok(states) if states.iter().any(|p| p.state == flash_store::ProofState::Spent) => {
                        MintError::AlreadySpent
                    }
                    Ok(states) if !states.is_empty() => MintError::ProofsPending,
                    Ok(_) => MintError::AlreadySpent,
                    Err(e) => e.into(),
                }
            }
            other => other.into(),
        }
    }

    /// Swaps notes for new ones of the same total less the input fee (NUT-03). Of concurrent
    /// swaps of one note, exactly one commits.
    pub async fn swap(&self, req: SwapRequest) -> Result<SwapResponse, MintError> {
        self.know_keysets(
            req.inputs()
                .iter()
                .map(|p| &p.keyset_id)
                .chain(req.outputs().iter().map(|o| &o.keyset_id)),
        )
        .await?;
        let inputs = self.check_inputs(req.inputs())?;
        if req.outputs().is_empty() {
            return Err(MintError::Unbalanced("no outputs".into()));
        }
        let signed = self.sign_outputs(req.outputs())?;
        if inputs.total - inputs.fee != signed.total {
            return Err(MintError::Unbalanced(format!(
                "inputs {} - fee {} != outputs {}",
                inputs.total, inputs.fee, signed.total
            )));
        }
        verify_conditions(&req)?;
        let origin = format!("swap:{}", digest(&inputs.ys));
        if let Err(e) = self.check_unsigned(req.outputs()).await {
            // The same swap again (a retry): the first answer (NUT-19).
            return self
                .replayed(&origin, req.outputs())
                .await?
                .map(SwapResponse::new)
                .ok_or(e);
        }
        let now = self.store().now_ms();
        let mut records = Vec::with_capacity(req.inputs().len() + signed.records.len());
        for (proof, y) in req.inputs().iter().zip(&inputs.ys) {
            records.push(Record::mint_proof_taken(&proof_row(proof, y)?, false, &origin, now));
        }
        records.extend(issued(&signed.records, &origin, now));
        let committed = if inputs.fee == 0 {
            self.store().mint_apply(records).await.map_err(BankError::from)
        } else {
            self.post_fee(&origin, inputs.fee, records).await
        };
        if let Err(e) = committed {
            return match self.refusal(e, &inputs.ys).await {
                MintError::AlreadySpent | MintError::OutputsSigned => self
                    .replayed(&origin, req.outputs())
                    .await?
                    .map(SwapResponse::new)
                    .ok_or(MintError::AlreadySpent),
                other => Err(other),
            };
        }
        self.changed();
        Ok(SwapResponse::new(signed.signatures))
    }

    /// Posts a swap's input fee (`mint:outstanding` → revenue) with the swap's records.
    async fn post_fee(&self, origin: &str, fee: i64, records: Vec<Record>) -> Result<(), BankError> {
        let fee = MintMove {
            scope: "ecash-swap",
            key: origin,
            from: SystemAccount::MintOutstanding,
            to: SystemAccount::FeesRevenue,
            amount: fee,
            revenue: 0,
            memo: "ecash input fee",
        };
        match self.bank.post_mint_move(fee, records).await {
            Ok(true) => Ok(()),
            // The same inputs were swapped before: their notes are taken.
            Ok(false) | Err(BankError::Ledger(_)) => Err(BankError::Refused(REFUSED_PROOF_TAKEN)),
            Err(e) => Err(e),
        }
    }

    /// The states of notes by their `Y`s (NUT-07).
    pub async fn check_state(&self, req: CheckStateRequest) -> Result<CheckStateResponse, MintError> {
        if req.ys.len() > self.config.max_inputs {
            return Err(MintError::TooManyInputs(self.config.max_inputs));
        }
        let keys: Vec<String> = req.ys.iter().map(|y| y.to_hex()).collect();
        let known: std::collections::HashMap<String, flash_store::ProofState> = self
            .store()
            .mint_proofs_presented(&keys)
            .await?
            .into_iter()
            .map(|p| (p.y, p.state))
            .collect();
        let states = req
            .ys
            .iter()
            .zip(&keys)
            .map(|(y, key)| ProofState {
                y: *y,
                state: match known.get(key) {
                    Some(flash_store::ProofState::Spent) => State::Spent,
                    Some(flash_store::ProofState::Pending) => State::Pending,
                    None => State::Unspent,
                },
                witness: None,
            })
            .collect();
        Ok(CheckStateResponse { states })
    }

    /// The signatures the mint issued for any of these blinded messages (NUT-09), in the
    /// order asked.
    pub async fn restore(&self, req: RestoreRequest) -> Result<RestoreResponse, MintError> {
        if req.outputs.len() > self.config.max_outputs {
            return Err(MintError::TooManyOutputs(self.config.max_outputs));
        }
        let keys: Vec<String> = req.outputs.iter().map(|o| o.blinded_secret.to_hex()).collect();
        let found: std::collections::HashMap<String, flash_store::SignatureRow> = self
            .store()
            .mint_signatures_for(&keys)
            .await?
            .into_iter()
            .map(|r| (r.blinded.clone(), r))
            .collect();
        let mut outputs = Vec::new();
        let mut signatures = Vec::new();
        for (output, key) in req.outputs.iter().zip(&keys) {
            if let Some(row) = found.get(key) {
                outputs.push(output.clone());
                signatures.push(stored_signature(row)?);
            }
        }
        Ok(RestoreResponse { outputs, signatures })
    }
}

/// Checks the spending conditions of a request's inputs (NUT-10/11/14): P2PK signatures
/// (SIG_INPUTS on each input, SIG_ALL over the whole request), locktimes and refund keys,
/// n-of-m, and HTLC preimages. Plain secrets carry no condition.
pub fn verify_conditions<R: SpendingConditionVerification>(req: &R) -> Result<(), MintError> {
    match req.verify_spending_conditions() {
        Ok(()) => Ok(()),
        Err(e) if htlc_refund_signed_all(req) => {
            tracing::debug!(error = %e, "HTLC spent by its refund keys after the locktime");
            Ok(())
        }
        Err(e) => Err(MintError::ProofInvalid(format!("spending condition: {e}"))),
    }
}

/// NUT-14's refund path under SIG_ALL: after the locktime, enough refund keys signed the
/// whole request, whether or not the witness also carries a preimage. (The `cashu` crate
/// takes only the receiver path once a valid preimage is present.)
fn htlc_refund_signed_all<R: SpendingConditionVerification>(req: &R) -> bool {
    use cashu::nuts::nut10::{Kind, Secret as Nut10Secret};
    use cashu::nuts::{Conditions, SigFlag, Witness};
    let Some(first) = req.inputs().first() else {
        return false;
    };
    let Ok(secret) = Nut10Secret::try_from(&first.secret) else {
        return false;
    };
    let tags = secret.secret_data().tags().cloned().unwrap_or_default();
    let Ok(conditions) = Conditions::try_from(tags) else {
        return false;
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (Some(locktime), Some(refund)) = (conditions.locktime, conditions.refund_keys.as_ref()) else {
        return false;
    };
    if secret.kind() != Kind::HTLC || conditions.sig_flag != SigFlag::SigAll || now < locktime {
        return false;
    }
    if req.verify_all_inputs_match_for_sig_all().is_err() {
        return false;
    }
    let Some(Witness::HTLCWitness(witness)) = &first.witness else {
        return false;
    };
    let msg = req.sig_all_msg_to_sign();
    let signatures: Vec<_> = witness
        .signatures
        .iter()
        .flatten()
        .filter_map(|s| s.parse::<bitcoin::secp256k1::schnorr::Signature>().ok())
        .collect();
    let signed = refund
        .iter()
        .filter(|key| signatures.iter().any(|sig| key.verify(msg.as_bytes(), sig).is_ok()))
        .count();
    u64::try_from(signed).unwrap_or(0) >= conditions.num_sigs_refund.unwrap_or(1).max(1)
}

/// A short, stable digest of notes' `Y`s (names a swap or redeem by what it spends).
pub(crate) fn digest(ys: &[PublicKey]) -> String {
    let mut hasher = Sha256::new();
    for y in ys {
        hasher.update(y.to_bytes());
    }
    hasher.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}
