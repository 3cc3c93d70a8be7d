//! Quotes: minting against a BOLT11 payment or a Flash wallet (NUT-04/20/23), melting to a
//! BOLT11 invoice with change for the unused fee reserve (NUT-05/08/23), and redeeming tokens
//! into a wallet.
//!
//! A melt outside Flash goes through the bank's Lightning payment saga, as a wallet's send
//! does: its notes become `pending` with the quote, the hold of their value and the payment row
//! (`ln_payments`, unique per live payment hash) in one transaction before the node is called;
//! success spends them with the journal that settles the hold, failure releases them with the
//! one that reverses it, and an unknown outcome stays pending until [`Mint::reconcile_melts`]
//! learns it from the node.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use cashu::nuts::{
    BlindedMessage, CurrencyUnit, MeltQuoteBolt11Request, MeltQuoteBolt11Response, MeltRequest, MintQuoteBolt11Request,
    MintQuoteBolt11Response, MintRequest, MintResponse, PaymentMethod, Proof, Proofs, Token,
};
use cashu::{Amount, MintUrl};
use flash_bank::{Bank, BankError, EcashMove, MeltPayment, MeltTarget, MintMove};
use flash_core::lightning::{Hash32, PaymentState};
use flash_core::HoldId;
use flash_core::{AccountId, SystemAccount, WalletId};
use flash_store::{
    MeltQuoteRecord, MeltQuoteState, MintQuoteRecord, MintQuoteState, Record, REFUSED_OUTPUT_SIGNED,
    REFUSED_QUOTE_STATE,
};

use crate::keys::{amount_i64, issued, proof_row, stored_signature};
use crate::swap::{digest, verify_conditions};
use crate::wallet::{split, Premint};
use crate::{Mint, MintError};

/// What `ecashMint` made: a token of fresh notes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcashMinted {
    /// The token (`cashuB…`).
    pub token: String,
    /// Its value, sats.
    pub amount: i64,
    /// The journal that debited the wallet.
    pub journal_id: flash_core::JournalId,
}

/// What `ecashRedeem` credited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcashRedeemed {
    /// Sats credited to the wallet (the token's value less the input fee).
    pub amount: i64,
    /// The mint's input fee kept.
    pub fee: i64,
    /// The journal that credited the wallet.
    pub journal_id: flash_core::JournalId,
}

fn quote_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn secs(ms: i64) -> u64 {
    u64::try_from(ms / 1_000).unwrap_or(0)
}

fn sat_only(unit: &CurrencyUnit) -> Result<(), MintError> {
    if *unit == CurrencyUnit::Sat {
        Ok(())
    } else {
        Err(MintError::UnsupportedUnit)
    }
}

impl Mint {
    /// A mint quote (NUT-04/23): an invoice that, once paid, lets the holder of the quote id
    /// mint `amount` sats of notes.
    pub async fn mint_quote(&self, req: MintQuoteBolt11Request) -> Result<MintQuoteBolt11Response<String>, MintError> {
        sat_only(&req.unit)?;
        let amount = req.amount.to_u64();
        if amount < self.config.mint_min || amount > self.config.mint_max {
            return Err(MintError::AmountRange(format!(
                "{amount} sats is outside {}..={}",
                self.config.mint_min, self.config.mint_max
            )));
        }
        let amount = amount_i64(req.amount)?;
        let invoice = self
            .bank
            .ln_invoice_for_mint(amount, self.config.quote_ttl_secs)
            .await?;
        let now = self.store().now_ms();
        let expiry_ms = i64::try_from(self.config.quote_ttl_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
        let quote = MintQuoteRecord {
            id: quote_id(),
            unit: req.unit.to_string(),
            amount,
            request: invoice.payment_request,
            payment_hash: Some(invoice.payment_hash.to_string()),
            pubkey: req.pubkey.map(|p| p.to_hex()),
            state: MintQuoteState::Unpaid,
            expires_at_ms: now.saturating_add(expiry_ms),
            created_at_ms: now,
        };
        self.store()
            .mint_apply(vec![Record::mint_quote_created(&quote)])
            .await?;
        self.mint_quote_response(&quote)
    }

    /// A mint quote's state (`GET /v1/mint/quote/bolt11/{id}`).
    pub async fn mint_quote_state(&self, id: &str) -> Result<MintQuoteBolt11Response<String>, MintError> {
        let quote = self.store().mint_quote(id).await?.ok_or(MintError::UnknownQuote)?;
        self.mint_quote_response(&quote)
    }

    fn mint_quote_response(&self, q: &MintQuoteRecord) -> Result<MintQuoteBolt11Response<String>, MintError> {
        let amount = Amount::from(u64::try_from(q.amount).map_err(|_| MintError::Internal("quote amount".into()))?);
        let state = match q.state {
            MintQuoteState::Unpaid => cashu::nuts::MintQuoteState::Unpaid,
            MintQuoteState::Paid => cashu::nuts::MintQuoteState::Paid,
            MintQuoteState::Issued => cashu::nuts::MintQuoteState::Issued,
        };
        let paid = q.state != MintQuoteState::Unpaid;
        Ok(MintQuoteBolt11Response {
            quote: q.id.clone(),
            request: q.request.clone(),
            amount: Some(amount),
            unit: Some(q.unit.parse().map_err(|_| MintError::Internal("quote unit".into()))?),
            method: PaymentMethod::BOLT11,
            amount_paid: if paid { amount } else { Amount::ZERO },
            amount_issued: if q.state == MintQuoteState::Issued {
                amount
            } else {
                Amount::ZERO
            },
            updated_at: secs(q.created_at_ms),
            state,
            expiry: Some(secs(q.expires_at_ms)),
            pubkey: q
                .pubkey
                .as_deref()
                .map(cashu::nuts::PublicKey::from_hex)
                .transpose()
                .map_err(|_| MintError::Internal("quote pubkey".into()))?,
        })
    }

    /// Issues the notes of a paid mint quote (NUT-04), once; a quote locked to a key (NUT-20)
    /// needs that key's signature over the request.
    pub async fn mint(&self, req: MintRequest<String>) -> Result<MintResponse, MintError> {
        let quote = self
            .store()
            .mint_quote(&req.quote)
            .await?
            .ok_or(MintError::UnknownQuote)?;
        let origin = format!("mint:{}", quote.id);
        match quote.state {
            MintQuoteState::Unpaid => return Err(MintError::QuoteUnpaid),
            MintQuoteState::Issued => {
                // The same request again: its first answer (NUT-19).
                return match self.replayed(&origin, &req.outputs).await? {
                    Some(signatures) => Ok(MintResponse { signatures }),
                    None => Err(MintError::QuoteIssued),
                };
            }
            MintQuoteState::Paid => {}
        }
        self.know_keysets(req.outputs.iter().map(|o| &o.keyset_id)).await?;
        if let Some(key) = &quote.pubkey {
            let key = cashu::nuts::PublicKey::from_hex(key).map_err(|_| MintError::Internal("quote pubkey".into()))?;
            req.verify_signature(key).map_err(|_| MintError::SignatureInvalid)?;
        }
        if req.outputs.is_empty() {
            return Err(MintError::Unbalanced("no outputs".into()));
        }
        let signed = self.sign_outputs(&req.outputs)?;
        if signed.total != quote.amount {
            return Err(MintError::Unbalanced(format!(
                "outputs {} != quote {}",
                signed.total, quote.amount
            )));
        }
        self.check_unsigned(&req.outputs).await?;
        let now = self.store().now_ms();
        let records = std::iter::once(Record::mint_quote_issued(&quote.id, now))
            .chain(issued(&signed.records, &origin, now))
            .collect();
        let issue = MintMove {
            scope: "ecash-issue",
            key: &quote.id,
            from: SystemAccount::MintQuotes,
            to: SystemAccount::MintOutstanding,
            amount: quote.amount,
            revenue: 0,
            memo: "ecash issued",
        };
        match self.bank.post_mint_move(issue, records).await {
            Ok(true) => {
                self.changed();
                Ok(MintResponse {
                    signatures: signed.signatures,
                })
            }
            Ok(false) => Err(MintError::QuoteIssued),
            Err(BankError::Refused(r)) if r == REFUSED_QUOTE_STATE => Err(MintError::QuoteIssued),
            Err(BankError::Refused(r)) => Err(self.refusal(BankError::Refused(r), &[]).await),
            Err(BankError::Ledger(e)) => Err(MintError::Internal(e.to_string())),
            Err(e) => Err(e.into()),
        }
    }

    /// A melt quote (NUT-05/23): what paying `request` costs in notes.
    pub async fn melt_quote(&self, req: MeltQuoteBolt11Request) -> Result<MeltQuoteBolt11Response<String>, MintError> {
        sat_only(&req.unit)?;
        let amount = match req.options {
            None => None,
            Some(cashu::nuts::MeltOptions::Amountless { amountless }) => {
                Some(amount_i64(amountless.amount_msat)?.div_euclid(1_000))
            }
            Some(_) => {
                return Err(MintError::BadRequest(
                    "multi-path payments are not supported here".into(),
                ))
            }
        };
        let invoice_amount = req.request.amount_milli_satoshis();
        if invoice_amount.is_none() && amount.is_none() {
            return Err(MintError::AmountlessInvoice);
        }
        let target = self.bank.melt_target(&req.request.to_string(), amount).await?;
        let sats = u64::try_from(target.amount).unwrap_or(0);
        if sats < self.config.melt_min || sats > self.config.melt_max {
            return Err(MintError::AmountRange(format!(
                "{sats} sats is outside {}..={}",
                self.config.melt_min, self.config.melt_max
            )));
        }
        let now = self.store().now_ms();
        let ttl = i64::try_from(self.config.quote_ttl_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
        let quote = MeltQuoteRecord {
            id: quote_id(),
            unit: req.unit.to_string(),
            request: target.payment_request.clone(),
            payment_hash: target.payment_hash.to_string(),
            amount: target.amount,
            fee_reserve: target.fee_reserve,
            internal: target.internal,
            state: MeltQuoteState::Unpaid,
            change_outputs: None,
            inputs_total: None,
            input_fee: None,
            pending_at_ms: None,
            payment_id: None,
            fee_paid: None,
            preimage: None,
            expires_at_ms: now.saturating_add(ttl).min(target.expires_at_ms),
            created_at_ms: now,
        };
        self.store()
            .mint_apply(vec![Record::melt_quote_created(&quote)])
            .await?;
        melt_response(&quote, None)
    }

    /// A melt quote's state (`GET /v1/melt/quote/bolt11/{id}`), with the change of a paid
    /// melt.
    pub async fn melt_quote_state(&self, id: &str) -> Result<MeltQuoteBolt11Response<String>, MintError> {
        let quote = self.store().melt_quote(id).await?.ok_or(MintError::UnknownQuote)?;
        let change = self.change_of(&quote).await?;
        melt_response(&quote, change)
    }

    async fn change_of(&self, quote: &MeltQuoteRecord) -> Result<Option<Vec<cashu::nuts::BlindSignature>>, MintError> {
        if quote.state != MeltQuoteState::Paid {
            return Ok(None);
        }
        let mut rows = self
            .store()
            .mint_signatures_by_origin(&format!("melt:{}", quote.id))
            .await?;
        if rows.is_empty() {
            return Ok(None);
        }
        // In the order of the blank outputs they were signed into (the wallet pairs them so).
        let blanks: Vec<BlindedMessage> = match &quote.change_outputs {
            Some(json) => serde_json::from_str(json).map_err(|e| MintError::Internal(e.to_string()))?,
            None => Vec::new(),
        };
        let position = |b: &str| blanks.iter().position(|o| o.blinded_secret.to_hex() == b);
        rows.sort_by_key(|r| position(&r.blinded).unwrap_or(usize::MAX));
        Ok(Some(rows.iter().map(stored_signature).collect::<Result<Vec<_>, _>>()?))
    }

    /// Pays a melt quote with notes (NUT-05), returning change for the unused fee reserve in
    /// the blank outputs given (NUT-08).
    pub async fn melt(&self, req: MeltRequest<String>) -> Result<MeltQuoteBolt11Response<String>, MintError> {
        let quote = self
            .store()
            .melt_quote(req.quote())
            .await?
            .ok_or(MintError::UnknownQuote)?;
        if quote.state != MeltQuoteState::Unpaid {
            // The same request again gets the quote's state (NUT-19); another one is refused.
            if self.presented_by(req.inputs(), &format!("melt:{}", quote.id)).await? {
                return self.melt_quote_state(&quote.id).await;
            }
            return Err(match quote.state {
                MeltQuoteState::Paid => MintError::InvoiceAlreadyPaid,
                _ => MintError::QuotePending,
            });
        }
        let blank_ids = req.outputs().iter().flatten().map(|o| &o.keyset_id);
        self.know_keysets(req.inputs().iter().map(|p| &p.keyset_id).chain(blank_ids))
            .await?;
        let now = self.store().now_ms();
        if now >= quote.expires_at_ms {
            return Err(MintError::QuoteExpired);
        }
        let inputs = self.check_inputs(req.inputs())?;
        let needed = quote.amount + quote.fee_reserve + inputs.fee;
        if inputs.total < needed {
            return Err(MintError::Unbalanced(format!(
                "inputs {} < amount {} + fee reserve {} + input fee {}",
                inputs.total, quote.amount, quote.fee_reserve, inputs.fee
            )));
        }
        verify_conditions(&req)?;
        let blanks = req.outputs().clone().unwrap_or_default();
        self.check_blanks(&blanks)?;
        self.check_unsigned(&blanks).await?;
        let origin = format!("melt:{}", quote.id);
        let target = MeltTarget {
            payment_request: quote.request.clone(),
            payment_hash: Hash32::from_str(&quote.payment_hash)
                .map_err(|_| MintError::Internal("stored payment hash".into()))?,
            amount: quote.amount,
            fee_reserve: quote.fee_reserve,
            internal: quote.internal,
            expires_at_ms: quote.expires_at_ms,
        };
        let spent: Vec<Record> = req
            .inputs()
            .iter()
            .zip(&inputs.ys)
            .map(|(p, y)| {
                Ok(Record::mint_proof_taken(
                    &proof_row(p, y)?,
                    !quote.internal,
                    &origin,
                    now,
                ))
            })
            .collect::<Result<_, MintError>>()?;
        if quote.internal {
            let available = inputs.total - quote.amount - inputs.fee;
            let change = self.change(&blanks, available)?;
            // What the blank outputs cannot carry back is the mint's, with the input fee.
            let kept = inputs.fee + available - change.total;
            let blanks_json = serde_json::to_string(&blanks).map_err(|e| MintError::Internal(e.to_string()))?;
            let records = spent
                .into_iter()
                .chain(std::iter::once(Record::melt_quote_paid(
                    &quote.id,
                    0,
                    None,
                    Some(&blanks_json),
                    now,
                )))
                .chain(issued(&change.records, &origin, now))
                .collect();
            return match self.bank.melt_internal(&target, kept, records).await {
                Ok(true) => {
                    self.changed();
                    let paid = self
                        .store()
                        .melt_quote(&quote.id)
                        .await?
                        .ok_or(MintError::UnknownQuote)?;
                    melt_response(&paid, (!change.signatures.is_empty()).then_some(change.signatures))
                }
                Ok(false) => Err(MintError::InvoiceAlreadyPaid),
                Err(flash_bank::BankError::Refused(r)) => Err(self.refusal(BankError::Refused(r), &inputs.ys).await),
                Err(e) => Err(e.into()),
            };
        }
        // Outside Flash: through the bank's Lightning saga. The notes become pending with the
        // quote, the hold of their value and the payment row in one transaction; then the node
        // pays.
        let blanks_json = serde_json::to_string(&blanks).map_err(|e| MintError::Internal(e.to_string()))?;
        // Reconciliation leaves this melt alone while this request drives it.
        let Some(_driving) = Driving::start(&self.driving, &quote.id) else {
            return Err(MintError::QuotePending);
        };
        let payment = self.bank.melt_payment_id();
        let records = spent
            .into_iter()
            .chain(std::iter::once(Record::melt_quote_pending(
                &quote.id,
                &blanks_json,
                inputs.total,
                inputs.fee,
                &payment,
                now,
            )))
            .collect();
        let started = self
            .bank
            .melt_pay_start(MeltPayment {
                id: payment.clone(),
                quote_id: &quote.id,
                target: &target,
                held: inputs.total,
                records,
            })
            .await;
        if let Err(e) = started {
            return Err(match e {
                // A payment of this invoice, a wallet's or another melt's, is in flight or done:
                // the unique index on live Lightning payments refused this one.
                BankError::PaymentInFlight => MintError::InvoiceAlreadyPaid,
                BankError::Refused(r) if r == REFUSED_QUOTE_STATE => MintError::QuotePending,
                BankError::Refused(r) => self.refusal(BankError::Refused(r), &inputs.ys).await,
                e => e.into(),
            });
        }
        self.changed();
        let state = match self.bank.melt_pay(&payment).await {
            Ok(state) => state,
            Err(e) => {
                tracing::warn!(quote = %quote.id, error = %e, "melt payment outcome unknown; left pending");
                PaymentState::InFlight
            }
        };
        self.finish_melt(&quote.id, state).await
    }

    /// Checks a melt's blank outputs now, so that its change can be signed once it is paid:
    /// count, distinct `B_`s, and the active keyset of the unit.
    fn check_blanks(&self, blanks: &[BlindedMessage]) -> Result<(), MintError> {
        if blanks.len() > self.config.max_outputs {
            return Err(MintError::TooManyOutputs(self.config.max_outputs));
        }
        let ring = self.keyring();
        let mut seen = HashSet::with_capacity(blanks.len());
        for blank in blanks {
            if !seen.insert(blank.blinded_secret) {
                return Err(MintError::DuplicateOutputs);
            }
            let keyset = ring.get(&blank.keyset_id)?;
            if !keyset.active {
                return Err(MintError::InactiveKeyset);
            }
            if keyset.unit != CurrencyUnit::Sat {
                return Err(MintError::MultipleUnits);
            }
        }
        Ok(())
    }

    /// Whether every one of `proofs` was presented by the request named `origin`.
    async fn presented_by(&self, proofs: &[Proof], origin: &str) -> Result<bool, MintError> {
        let ys = proofs
            .iter()
            .map(|p| p.y().map(|y| y.to_hex()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| MintError::ProofInvalid(format!("secret: {e}")))?;
        if ys.is_empty() {
            return Ok(false);
        }
        let presented = self.store().mint_proofs_presented(&ys).await?;
        Ok(presented.len() == ys.len() && presented.iter().all(|p| p.origin == origin))
    }

    /// Ends a pending melt by its payment's state: spent with change, released, or left
    /// pending. Safe to call more than once (each end commits once).
    async fn finish_melt(&self, id: &str, state: PaymentState) -> Result<MeltQuoteBolt11Response<String>, MintError> {
        let quote = self.store().melt_quote(id).await?.ok_or(MintError::UnknownQuote)?;
        if quote.state != MeltQuoteState::Pending {
            let change = self.change_of(&quote).await?;
            return melt_response(&quote, change);
        }
        let payment = quote
            .payment_id
            .clone()
            .ok_or_else(|| MintError::Internal(format!("pending melt {} has no payment", quote.id)))?;
        let origin = format!("melt:{}", quote.id);
        let pending = self.store().mint_pending_count(&origin).await?;
        match &state {
            PaymentState::InFlight => melt_response(&quote, None),
            PaymentState::Failed { reason } => {
                let records = vec![
                    Record::mint_proofs_released(&origin, pending),
                    Record::melt_quote_failed(&quote.id),
                ];
                match self.bank.melt_finish(&payment, &state, records, 0).await {
                    // (Refused: another worker ended it first.)
                    Ok(()) | Err(BankError::Refused(_)) => {
                        self.changed();
                        Err(MintError::PaymentFailed(reason.clone()))
                    }
                    Err(e) => Err(e.into()),
                }
            }
            PaymentState::Succeeded { preimage, fee_msat } => {
                let fee_paid = Bank::melt_fee_paid(*fee_msat, quote.fee_reserve)?;
                if fee_msat.div_ceil(1_000) > fee_paid.unsigned_abs() {
                    tracing::error!(quote = %quote.id, fee_msat, reserve = quote.fee_reserve,
                        "the node paid more routing fee than the melt's cap; the ledger records the cap");
                }
                let blanks: Vec<BlindedMessage> = match &quote.change_outputs {
                    Some(json) => serde_json::from_str(json).map_err(|e| MintError::Internal(e.to_string()))?,
                    None => Vec::new(),
                };
                let preimage = preimage.map(|p| p.to_string());
                let settle = Settle {
                    payment: &payment,
                    state: &state,
                    pending,
                    fee_paid,
                    preimage: preimage.as_deref(),
                };
                match self.settle_melt(&quote, &settle, &blanks).await {
                    // The wallet had one of its blank outputs signed elsewhere meanwhile: the
                    // melt ends without change rather than stay pending.
                    Err(MintError::Bank(BankError::Refused(r))) if r == REFUSED_OUTPUT_SIGNED => {
                        self.settle_melt(&quote, &settle, &[]).await?
                    }
                    other => other?,
                }
                self.changed();
                let paid = self
                    .store()
                    .melt_quote(&quote.id)
                    .await?
                    .ok_or(MintError::UnknownQuote)?;
                let change = self.change_of(&paid).await?;
                melt_response(&paid, change)
            }
        }
    }

    /// Spends a paid melt's pending notes with the journal that settles its payment's hold
    /// (amount + routing fee to `lightning:node`), signs its change into `blanks` (the part of
    /// the hold that goes back to `mint:outstanding`), and keeps what the change cannot carry
    /// (and the input fee) as revenue, so unspent notes still equal `mint:outstanding`. Done
    /// once: a second call changes nothing.
    async fn settle_melt(
        &self,
        quote: &MeltQuoteRecord,
        settle: &Settle<'_>,
        blanks: &[BlindedMessage],
    ) -> Result<(), MintError> {
        let origin = format!("melt:{}", quote.id);
        let now = self.store().now_ms();
        let input_fee = quote.input_fee.unwrap_or(0);
        let available = quote.inputs_total.unwrap_or(0) - input_fee - quote.amount - settle.fee_paid;
        let change = match self.change(blanks, available) {
            Ok(change) => change,
            Err(e) => {
                // (e.g. their keyset was rotated out meanwhile): the melt ends without change.
                tracing::warn!(quote = %quote.id, error = %e, "melt change cannot be signed; kept as revenue");
                self.change(&[], available)?
            }
        };
        let kept = input_fee + available - change.total;
        let records = [
            Record::mint_proofs_spent(&origin, settle.pending),
            Record::melt_quote_paid(&quote.id, settle.fee_paid, settle.preimage, None, now),
        ]
        .into_iter()
        .chain(issued(&change.records, &origin, now))
        .collect();
        match self.bank.melt_finish(settle.payment, settle.state, records, kept).await {
            Ok(()) => Ok(()),
            // Another worker finished it first.
            Err(BankError::Refused(r)) if r == REFUSED_QUOTE_STATE => Ok(()),
            Err(e) => Err(MintError::Bank(e)),
        }
    }

    /// Resolves melts left pending (by a crash or a slow payment) from the node's answer.
    /// Returns how many ended.
    /// Melts younger than the Lightning `reconcile_grace_secs` are left to whoever is paying
    /// them (another node may be about to call its node), as are those this process drives.
    pub async fn reconcile_melts(&self) -> Result<usize, MintError> {
        let grace_secs = self.bank.config().lightning.reconcile_grace_secs;
        let grace_ms = i64::try_from(grace_secs.saturating_mul(1_000)).unwrap_or(i64::MAX);
        let now = self.store().now_ms();
        let mut ended = 0;
        for quote in self.store().pending_melt_quotes().await? {
            let started = quote.pending_at_ms.unwrap_or(quote.created_at_ms);
            if now.saturating_sub(started) < grace_ms {
                continue;
            }
            let Some(_driving) = Driving::start(&self.driving, &quote.id) else {
                continue;
            };
            let Ok(hash) = Hash32::from_str(&quote.payment_hash) else {
                tracing::error!(quote = %quote.id, "stored payment hash is not hex; left pending");
                continue;
            };
            let state = match self.bank.melt_track(hash).await {
                Ok(PaymentState::InFlight) => continue,
                Ok(state) => state,
                Err(e) => {
                    tracing::warn!(quote = %quote.id, error = %e, "could not track a melt's payment");
                    continue;
                }
            };
            match self.finish_melt(&quote.id, state).await {
                Ok(_) | Err(MintError::PaymentFailed(_)) => ended += 1,
                Err(e) => tracing::warn!(quote = %quote.id, error = %e, "could not finish a melt; retrying later"),
            }
        }
        Ok(ended)
    }

    /// Signs change worth `amount` into the first of `blanks` (NUT-08): the amount split in
    /// powers of two, as many as there are blank outputs.
    fn change(&self, blanks: &[BlindedMessage], amount: i64) -> Result<crate::swap::Signed, MintError> {
        let mut parts = Vec::new();
        let mut rest = u64::try_from(amount).unwrap_or(0);
        let mut bit = 1u64 << 63;
        while rest > 0 && parts.len() < blanks.len() {
            while bit > rest {
                bit >>= 1;
            }
            parts.push(bit);
            rest -= bit;
        }
        let outputs: Vec<BlindedMessage> = blanks
            .iter()
            .zip(&parts)
            .map(|(b, a)| BlindedMessage {
                amount: Amount::from(*a),
                ..b.clone()
            })
            .collect();
        self.sign_outputs(&outputs)
    }

    /// Turns `amount` sats of a Flash wallet into a token of fresh notes (GraphQL `ecashMint`).
    /// The notes' secrets are made here and not kept.
    pub async fn ecash_from_wallet(
        &self,
        account: AccountId,
        wallet_id: WalletId,
        amount: i64,
        idempotency_key: Option<String>,
    ) -> Result<EcashMinted, MintError> {
        let value = u64::try_from(amount).map_err(|_| MintError::AmountRange("negative amount".into()))?;
        if value < self.config.mint_min || value > self.config.mint_max {
            return Err(MintError::AmountRange(format!(
                "{value} sats is outside {}..={}",
                self.config.mint_min, self.config.mint_max
            )));
        }
        let keyset = self.keyring().active(&CurrencyUnit::Sat)?;
        let premint = Premint::random(keyset.id, &split(value))?;
        let signed = self.sign_outputs(&premint.outputs)?;
        let key = idempotency_key.unwrap_or_else(quote_id);
        let origin = format!("wallet:{wallet_id}:{key}");
        let now = self.store().now_ms();
        let records = issued(&signed.records, &origin, now);
        let journal_id = self
            .bank
            .ecash_from_wallet(EcashMove {
                account,
                wallet_id,
                amount,
                fee: 0,
                idempotency_key: key,
                records,
            })
            .await?;
        let proofs = premint.unblind(signed.signatures, &keyset.public_keys())?;
        let url = MintUrl::from_str(&self.url).map_err(|e| MintError::Internal(format!("mint url: {e}")))?;
        let token = Token::new(url, proofs, None, CurrencyUnit::Sat);
        Ok(EcashMinted {
            token: token.to_string(),
            amount,
            journal_id,
        })
    }

    /// Redeems a token of this mint into a Flash wallet (GraphQL `ecashRedeem`): its notes are
    /// spent and the wallet credited their value less the input fee, in one transaction.
    pub async fn ecash_to_wallet(
        &self,
        account: AccountId,
        wallet_id: WalletId,
        token: &str,
    ) -> Result<EcashRedeemed, MintError> {
        let token = Token::from_str(token.trim()).map_err(|e| MintError::BadRequest(format!("not a token: {e}")))?;
        if token.unit().is_some_and(|u| u != CurrencyUnit::Sat) {
            return Err(MintError::UnsupportedUnit);
        }
        let proofs: Proofs = token
            .proofs(&self.keyring().infos())
            .map_err(|_| MintError::UnknownKeyset)?;
        self.redeem_proofs(account, wallet_id, &proofs).await
    }

    async fn redeem_proofs(
        &self,
        account: AccountId,
        wallet_id: WalletId,
        proofs: &[Proof],
    ) -> Result<EcashRedeemed, MintError> {
        let inputs = self.check_inputs(proofs)?;
        let request = cashu::nuts::SwapRequest::new(proofs.to_vec(), Vec::new());
        verify_conditions(&request)?;
        let amount = inputs.total - inputs.fee;
        if amount <= 0 {
            return Err(MintError::Unbalanced(
                "the token is worth less than its input fee".into(),
            ));
        }
        let origin = format!("redeem:{}", digest(&inputs.ys));
        let now = self.store().now_ms();
        let records = proofs
            .iter()
            .zip(&inputs.ys)
            .map(|(p, y)| Ok(Record::mint_proof_taken(&proof_row(p, y)?, false, &origin, now)))
            .collect::<Result<Vec<_>, MintError>>()?;
        let moved = self
            .bank
            .ecash_to_wallet(EcashMove {
                account,
                wallet_id,
                amount,
                fee: inputs.fee,
                idempotency_key: origin,
                records,
            })
            .await;
        match moved {
            Ok(journal_id) => {
                self.changed();
                Ok(EcashRedeemed {
                    amount,
                    fee: inputs.fee,
                    journal_id,
                })
            }
            Err(flash_bank::BankError::Refused(r)) => Err(self.refusal(BankError::Refused(r), &inputs.ys).await),
            Err(e) => Err(e.into()),
        }
    }
}

/// How a melt's payment succeeded, for [`Mint::settle_melt`].
struct Settle<'a> {
    /// The payment (and its hold).
    payment: &'a HoldId,
    /// The node's answer.
    state: &'a PaymentState,
    /// How many notes the melt holds pending.
    pending: u64,
    /// The routing fee charged, satoshis (at most the reserve).
    fee_paid: i64,
    /// The preimage (hex), if the node learned it.
    preimage: Option<&'a str>,
}

/// A melt this process is paying right now, for as long as the guard lives.
struct Driving {
    set: Arc<Mutex<HashSet<String>>>,
    id: String,
}

impl Driving {
    /// Marks `id` driven, unless it already is.
    fn start(set: &Arc<Mutex<HashSet<String>>>, id: &str) -> Option<Driving> {
        let mut driven = set.lock().unwrap_or_else(|p| p.into_inner());
        driven.insert(id.to_string()).then(|| Driving {
            set: set.clone(),
            id: id.to_string(),
        })
    }
}

impl Drop for Driving {
    fn drop(&mut self) {
        self.set.lock().unwrap_or_else(|p| p.into_inner()).remove(&self.id);
    }
}

fn melt_response(
    q: &MeltQuoteRecord,
    change: Option<Vec<cashu::nuts::BlindSignature>>,
) -> Result<MeltQuoteBolt11Response<String>, MintError> {
    let amount = |v: i64| Amount::from(u64::try_from(v).unwrap_or(0));
    Ok(MeltQuoteBolt11Response {
        quote: q.id.clone(),
        amount: amount(q.amount),
        fee_reserve: amount(q.fee_reserve),
        state: match q.state {
            MeltQuoteState::Unpaid => cashu::nuts::MeltQuoteState::Unpaid,
            MeltQuoteState::Pending => cashu::nuts::MeltQuoteState::Pending,
            MeltQuoteState::Paid => cashu::nuts::MeltQuoteState::Paid,
        },
        expiry: secs(q.expires_at_ms),
        payment_preimage: q.preimage.clone(),
        change,
        request: Some(q.request.clone()),
        unit: Some(q.unit.parse().map_err(|_| MintError::Internal("quote unit".into()))?),
        method: PaymentMethod::BOLT11,
    })
}
