//! Cashu mint storage: keysets, the notes the mint signed and the notes it redeemed, and its
//! mint and melt quotes. Every change that moves money is a [`Record`] committed with its
//! journal; the rest go through [`Store::mint_apply`] (one transaction, no journal).

use flash_core::HoldId;

use crate::ledger::Record;
use crate::sql::{params, placeholders, Row, Value};
use crate::{Store, StoreError};

/// Refusal: a note was already presented (spent, or pending in a melt).
pub const REFUSED_PROOF_TAKEN: &str = "a note was already spent or is pending";
/// Refusal: a blinded message was already signed.
pub const REFUSED_OUTPUT_SIGNED: &str = "an output was already signed";
/// Refusal: a quote was not in the state the change expected (paid twice, issued twice, …).
pub const REFUSED_QUOTE_STATE: &str = "the quote changed state meanwhile";

/// A keyset as stored: its keys are derived again from the mint seed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeysetRecord {
    /// The keyset id (NUT-02).
    pub id: String,
    /// Its unit (`sat`).
    pub unit: String,
    /// Where its keys sit under the mint seed.
    pub derivation_index: u32,
    /// Number of amounts: 1, 2, 4, … 2^(max_order - 1).
    pub max_order: u32,
    /// Fee per input, in parts per thousand of the unit.
    pub input_fee_ppk: u64,
    /// Whether it signs new notes.
    pub active: bool,
    /// Unix ms.
    pub created_at_ms: i64,
}

/// A mint quote's state (NUT-04).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MintQuoteState {
    /// Waiting for payment.
    Unpaid,
    /// Paid; notes not yet issued.
    Paid,
    /// Notes issued.
    Issued,
}

impl MintQuoteState {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            MintQuoteState::Unpaid => "unpaid",
            MintQuoteState::Paid => "paid",
            MintQuoteState::Issued => "issued",
        }
    }
    fn from_stored(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "unpaid" => MintQuoteState::Unpaid,
            "paid" => MintQuoteState::Paid,
            "issued" => MintQuoteState::Issued,
            other => return Err(StoreError::Decode(format!("unexpected mint quote state {other:?}"))),
        })
    }
}

/// A mint quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MintQuoteRecord {
    /// Quote id (random, unguessable).
    pub id: String,
    /// Unit.
    pub unit: String,
    /// Amount to issue.
    pub amount: i64,
    /// The BOLT11 invoice that pays it (empty when a Flash wallet paid it directly).
    pub request: String,
    /// The invoice's payment hash.
    pub payment_hash: Option<String>,
    /// NUT-20: the key whose signature the mint request must carry.
    pub pubkey: Option<String>,
    /// State.
    pub state: MintQuoteState,
    /// Unix ms after which it is no longer paid.
    pub expires_at_ms: i64,
    /// Unix ms.
    pub created_at_ms: i64,
}

/// A melt quote's state (NUT-05).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MeltQuoteState {
    /// Not paid (also after a failed attempt).
    Unpaid,
    /// The payment is in flight; its notes are pending.
    Pending,
    /// Paid.
    Paid,
}

impl MeltQuoteState {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            MeltQuoteState::Unpaid => "unpaid",
            MeltQuoteState::Pending => "pending",
            MeltQuoteState::Paid => "paid",
        }
    }
    fn from_stored(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "unpaid" => MeltQuoteState::Unpaid,
            "pending" => MeltQuoteState::Pending,
            "paid" => MeltQuoteState::Paid,
            other => return Err(StoreError::Decode(format!("unexpected melt quote state {other:?}"))),
        })
    }
}

/// A melt quote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeltQuoteRecord {
    /// Quote id.
    pub id: String,
    /// Unit.
    pub unit: String,
    /// The BOLT11 invoice to pay.
    pub request: String,
    /// Its payment hash.
    pub payment_hash: String,
    /// Amount paid to the invoice.
    pub amount: i64,
    /// Most the routing fee may be.
    pub fee_reserve: i64,
    /// Whether this Flash issued the invoice (paid inside the ledger, no fee).
    pub internal: bool,
    /// State.
    pub state: MeltQuoteState,
    /// The blank outputs for change (JSON), once the payment started.
    pub change_outputs: Option<String>,
    /// The inputs' total, once the payment started.
    pub inputs_total: Option<i64>,
    /// The input fee the inputs paid, once the payment started.
    pub input_fee: Option<i64>,
    /// When the payment started (Unix ms), while it is pending.
    pub pending_at_ms: Option<i64>,
    /// Its latest payment over Lightning (an `ln_payments` row and hold of the same id), once
    /// one started; none for a melt inside Flash.
    pub payment_id: Option<HoldId>,
    /// The routing fee paid, once paid.
    pub fee_paid: Option<i64>,
    /// The payment's preimage, once paid.
    pub preimage: Option<String>,
    /// Unix ms after which it can no longer start.
    pub expires_at_ms: i64,
    /// Unix ms.
    pub created_at_ms: i64,
}

/// A note presented to the mint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofRow {
    /// `Y = hash_to_curve(secret)`, hex.
    pub y: String,
    /// Keyset id.
    pub keyset_id: String,
    /// Amount.
    pub amount: i64,
    /// The secret.
    pub secret: String,
    /// Its signature `C`, hex.
    pub signature: String,
    /// Its witness (JSON), if any.
    pub witness: Option<String>,
}

/// Whether a presented note is spent for good or pending in a melt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProofState {
    /// Pending in a melt.
    Pending,
    /// Spent.
    Spent,
}

/// A note that was presented to the mint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PresentedProof {
    /// Its `Y`, hex.
    pub y: String,
    /// Spent or pending.
    pub state: ProofState,
    /// The request that presented it (`swap:…`, `melt:<quote>`, `redeem:…`).
    pub origin: String,
}

/// A blind signature the mint issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureRow {
    /// The blinded message `B_`, hex.
    pub blinded: String,
    /// Keyset id.
    pub keyset_id: String,
    /// Amount.
    pub amount: i64,
    /// The signature `C_`, hex.
    pub signature: String,
    /// DLEQ `e`, hex.
    pub dleq_e: String,
    /// DLEQ `s`, hex.
    pub dleq_s: String,
}

/// What the mint has issued and redeemed, in the unit's minor units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MintTotals {
    /// Sum of every signature issued.
    pub issued: i64,
    /// Sum of notes spent for good.
    pub spent: i64,
    /// Sum of notes pending in melts (held in `lightning:pending` while the payment is in
    /// flight, not in `mint:outstanding`).
    pub pending: i64,
    /// Sum of mint quotes paid and not yet issued.
    pub quotes_paid: i64,
}

impl MintTotals {
    /// Ecash in circulation and free to move: issued, not spent and not pending in a melt.
    /// This is what `mint:outstanding` holds (a melt's hold takes its notes' value out).
    pub fn outstanding(&self) -> i64 {
        self.issued - self.spent - self.pending
    }
}

impl Record {
    /// Takes a note: it can be presented once (its `Y` is the key), `pending` during a melt.
    pub fn mint_proof_taken(p: &ProofRow, pending: bool, origin: &str, now_ms: i64) -> Record {
        Record {
            sql: "INSERT INTO mint_proofs (y, keyset_id, amount, secret, signature, witness, state, origin, \
                  created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (y) DO NOTHING",
            params: params![
                p.y.as_str(),
                p.keyset_id.as_str(),
                p.amount,
                p.secret.as_str(),
                p.signature.as_str(),
                p.witness.clone(),
                if pending { "pending" } else { "spent" },
                origin,
                now_ms,
            ],
            rows: 1,
            refusal: Some(REFUSED_PROOF_TAKEN),
        }
    }

    /// Marks the `count` notes pending under `origin` spent (the melt paid).
    pub fn mint_proofs_spent(origin: &str, count: u64) -> Record {
        Record {
            sql: "UPDATE mint_proofs SET state = 'spent' WHERE origin = $1 AND state = 'pending'",
            params: params![origin],
            rows: count,
            refusal: Some(REFUSED_QUOTE_STATE),
        }
    }

    /// Gives back the `count` notes pending under `origin` (the melt failed).
    pub fn mint_proofs_released(origin: &str, count: u64) -> Record {
        Record {
            sql: "DELETE FROM mint_proofs WHERE origin = $1 AND state = 'pending'",
            params: params![origin],
            rows: count,
            refusal: Some(REFUSED_QUOTE_STATE),
        }
    }

    /// Records a blind signature: a blinded message is signed once.
    pub fn mint_signature_issued(s: &SignatureRow, origin: &str, now_ms: i64) -> Record {
        Record {
            sql: "INSERT INTO mint_signatures (blinded, keyset_id, amount, signature, dleq_e, dleq_s, origin, \
                  created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (blinded) DO NOTHING",
            params: params![
                s.blinded.as_str(),
                s.keyset_id.as_str(),
                s.amount,
                s.signature.as_str(),
                s.dleq_e.as_str(),
                s.dleq_s.as_str(),
                origin,
                now_ms,
            ],
            rows: 1,
            refusal: Some(REFUSED_OUTPUT_SIGNED),
        }
    }

    /// Records a new mint quote.
    pub fn mint_quote_created(q: &MintQuoteRecord) -> Record {
        Record {
            sql: "INSERT INTO mint_quotes (id, unit, amount, request, payment_hash, pubkey, state, expires_at, \
                  paid_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            params: params![
                q.id.as_str(),
                q.unit.as_str(),
                q.amount,
                q.request.as_str(),
                q.payment_hash.clone(),
                q.pubkey.clone(),
                q.state.as_str(),
                q.expires_at_ms,
                (q.state != MintQuoteState::Unpaid).then_some(q.created_at_ms),
                q.created_at_ms,
            ],
            rows: 1,
            refusal: None,
        }
    }

    /// Marks an unpaid mint quote paid (once).
    pub fn mint_quote_paid(id: &str, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE mint_quotes SET state = 'paid', paid_at = $2 WHERE id = $1 AND state = 'unpaid'",
            params: params![id, now_ms],
            rows: 1,
            refusal: Some(REFUSED_QUOTE_STATE),
        }
    }

    /// Marks a paid mint quote issued (once).
    pub fn mint_quote_issued(id: &str, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE mint_quotes SET state = 'issued', issued_at = $2 WHERE id = $1 AND state = 'paid'",
            params: params![id, now_ms],
            rows: 1,
            refusal: Some(REFUSED_QUOTE_STATE),
        }
    }

    /// Records a new melt quote.
    pub fn melt_quote_created(q: &MeltQuoteRecord) -> Record {
        Record {
            sql: "INSERT INTO melt_quotes (id, unit, request, payment_hash, amount, fee_reserve, internal, state, \
                  expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'unpaid', $8, $9)",
            params: params![
                q.id.as_str(),
                q.unit.as_str(),
                q.request.as_str(),
                q.payment_hash.as_str(),
                q.amount,
                q.fee_reserve,
                i64::from(q.internal),
                q.expires_at_ms,
                q.created_at_ms,
            ],
            rows: 1,
            refusal: None,
        }
    }

    /// Starts paying an unpaid melt quote with inputs worth `inputs_total` (of which
    /// `input_fee` is the mint's) and blank outputs for change, by the Lightning payment
    /// `payment` (its `ln_payments` row commits in the same transaction: one payment per hash,
    /// whoever pays, is that table's unique index).
    pub fn melt_quote_pending(
        id: &str,
        change_outputs: &str,
        inputs_total: i64,
        input_fee: i64,
        payment: &HoldId,
        now_ms: i64,
    ) -> Record {
        Record {
            sql: "UPDATE melt_quotes SET state = 'pending', change_outputs = $2, inputs_total = $3, input_fee = $4, \
                  pending_at = $5, payment_id = $6 WHERE id = $1 AND state = 'unpaid'",
            params: params![id, change_outputs, inputs_total, input_fee, now_ms, payment.as_str()],
            rows: 1,
            refusal: Some(REFUSED_QUOTE_STATE),
        }
    }

    /// Marks a melt quote paid, with the fee, the preimage and (for a melt that never was
    /// pending) the blank outputs its change was signed into.
    pub fn melt_quote_paid(
        id: &str,
        fee_paid: i64,
        preimage: Option<&str>,
        change_outputs: Option<&str>,
        now_ms: i64,
    ) -> Record {
        Record {
            sql: "UPDATE melt_quotes SET state = 'paid', fee_paid = $2, preimage = $3, paid_at = $4, \
                  change_outputs = COALESCE($5, change_outputs) WHERE id = $1 AND state IN ('unpaid', 'pending')",
            params: params![id, fee_paid, preimage, now_ms, change_outputs],
            rows: 1,
            refusal: Some(REFUSED_QUOTE_STATE),
        }
    }

    /// Returns a pending melt quote to unpaid (its payment failed).
    pub fn melt_quote_failed(id: &str) -> Record {
        Record {
            sql: "UPDATE melt_quotes SET state = 'unpaid', pending_at = NULL WHERE id = $1 AND state = 'pending'",
            params: params![id],
            rows: 1,
            refusal: Some(REFUSED_QUOTE_STATE),
        }
    }

    /// Makes `id` the active keyset of its unit: the unit's previous active keyset stops
    /// signing (it stays redeemable). Apply [`Record::mint_keyset_created`] after it.
    pub fn mint_keysets_deactivated(unit: &str) -> Record {
        Record {
            sql: "UPDATE mint_keysets SET active = 0 WHERE unit = $1 AND active = 1",
            params: params![unit],
            rows: 1,
            refusal: Some(REFUSED_QUOTE_STATE),
        }
    }

    /// Records an operator action in the audit log, with the change it audits.
    pub fn audited(a: &crate::Audit, now_ms: i64) -> Record {
        Record {
            sql: "INSERT INTO audit_log (actor, action, subject, detail, created_at) VALUES ($1, $2, $3, $4, $5)",
            params: params![
                a.actor.as_str(),
                a.action.as_str(),
                a.subject.as_str(),
                a.detail.as_str(),
                now_ms
            ],
            rows: 1,
            refusal: None,
        }
    }

    /// Records a keyset.
    pub fn mint_keyset_created(k: &KeysetRecord) -> Record {
        Record {
            sql: "INSERT INTO mint_keysets (id, unit, derivation_index, max_order, input_fee_ppk, active, created_at) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7)",
            params: params![
                k.id.as_str(),
                k.unit.as_str(),
                i64::from(k.derivation_index),
                i64::from(k.max_order),
                i64::try_from(k.input_fee_ppk).unwrap_or(i64::MAX),
                i64::from(k.active),
                k.created_at_ms,
            ],
            rows: 1,
            refusal: None,
        }
    }
}

const KEYSET_COLUMNS: &str =
    "SELECT id, unit, derivation_index, max_order, input_fee_ppk, active, created_at FROM mint_keysets";
const MINT_QUOTE_COLUMNS: &str =
    "SELECT id, unit, amount, request, payment_hash, pubkey, state, expires_at, created_at FROM mint_quotes";
const MELT_QUOTE_COLUMNS: &str = "SELECT id, unit, request, payment_hash, amount, fee_reserve, internal, state, \
    fee_paid, preimage, expires_at, created_at, change_outputs, inputs_total, input_fee, pending_at, payment_id FROM melt_quotes";

fn small(row: &Row, i: usize) -> Result<u32, StoreError> {
    u32::try_from(row.int(i)?).map_err(|_| StoreError::Decode(format!("column {i} out of range")))
}

fn keyset(row: &Row) -> Result<KeysetRecord, StoreError> {
    Ok(KeysetRecord {
        id: row.text(0)?,
        unit: row.text(1)?,
        derivation_index: small(row, 2)?,
        max_order: small(row, 3)?,
        input_fee_ppk: u64::try_from(row.int(4)?).map_err(|_| StoreError::Decode("negative input fee".into()))?,
        active: row.int(5)? == 1,
        created_at_ms: row.int(6)?,
    })
}

fn mint_quote(row: &Row) -> Result<MintQuoteRecord, StoreError> {
    Ok(MintQuoteRecord {
        id: row.text(0)?,
        unit: row.text(1)?,
        amount: row.int(2)?,
        request: row.text(3)?,
        payment_hash: row.opt_text(4)?,
        pubkey: row.opt_text(5)?,
        state: MintQuoteState::from_stored(&row.text(6)?)?,
        expires_at_ms: row.int(7)?,
        created_at_ms: row.int(8)?,
    })
}

fn melt_quote(row: &Row) -> Result<MeltQuoteRecord, StoreError> {
    Ok(MeltQuoteRecord {
        id: row.text(0)?,
        unit: row.text(1)?,
        request: row.text(2)?,
        payment_hash: row.text(3)?,
        amount: row.int(4)?,
        fee_reserve: row.int(5)?,
        internal: row.int(6)? == 1,
        state: MeltQuoteState::from_stored(&row.text(7)?)?,
        change_outputs: row.opt_text(12)?,
        inputs_total: row.opt_int(13)?,
        input_fee: row.opt_int(14)?,
        pending_at_ms: row.opt_int(15)?,
        payment_id: row.opt_text(16)?.map(HoldId::new),
        fee_paid: row.opt_int(8)?,
        preimage: row.opt_text(9)?,
        expires_at_ms: row.int(10)?,
        created_at_ms: row.int(11)?,
    })
}

fn signature(row: &Row) -> Result<SignatureRow, StoreError> {
    Ok(SignatureRow {
        blinded: row.text(0)?,
        keyset_id: row.text(1)?,
        amount: row.int(2)?,
        signature: row.text(3)?,
        dleq_e: row.text(4)?,
        dleq_s: row.text(5)?,
    })
}

impl Store {
    /// Applies mint records that move no money in one transaction (a swap without fees, a
    /// new quote): all or nothing, refused with the failing record's reason.
    pub async fn mint_apply(&self, records: Vec<Record>) -> Result<(), StoreError> {
        self.db.apply(records).await
    }

    /// Every keyset, oldest first.
    pub async fn mint_keysets(&self) -> Result<Vec<KeysetRecord>, StoreError> {
        let sql = format!("{KEYSET_COLUMNS} ORDER BY created_at, derivation_index");
        self.db.query(&sql, Vec::new()).await?.iter().map(keyset).collect()
    }

    /// A mint quote by id.
    pub async fn mint_quote(&self, id: &str) -> Result<Option<MintQuoteRecord>, StoreError> {
        let sql = format!("{MINT_QUOTE_COLUMNS} WHERE id = $1");
        self.db
            .query_opt(&sql, params![id])
            .await?
            .as_ref()
            .map(mint_quote)
            .transpose()
    }

    /// The mint quote an invoice of this Flash pays, by its payment hash.
    pub async fn mint_quote_by_hash(&self, payment_hash: &str) -> Result<Option<MintQuoteRecord>, StoreError> {
        let sql = format!("{MINT_QUOTE_COLUMNS} WHERE payment_hash = $1");
        self.db
            .query_opt(&sql, params![payment_hash])
            .await?
            .as_ref()
            .map(mint_quote)
            .transpose()
    }

    /// A melt quote by id.
    pub async fn melt_quote(&self, id: &str) -> Result<Option<MeltQuoteRecord>, StoreError> {
        let sql = format!("{MELT_QUOTE_COLUMNS} WHERE id = $1");
        self.db
            .query_opt(&sql, params![id])
            .await?
            .as_ref()
            .map(melt_quote)
            .transpose()
    }

    /// Melt quotes whose payment is in flight (for recovery), oldest first.
    pub async fn pending_melt_quotes(&self) -> Result<Vec<MeltQuoteRecord>, StoreError> {
        let sql = format!("{MELT_QUOTE_COLUMNS} WHERE state = 'pending' ORDER BY created_at");
        self.db.query(&sql, Vec::new()).await?.iter().map(melt_quote).collect()
    }

    /// How many notes are pending under `origin` (a melt quote).
    pub async fn mint_pending_count(&self, origin: &str) -> Result<u64, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM mint_proofs WHERE origin = $1 AND state = 'pending'",
                params![origin],
            )
            .await?;
        let n = row.map(|r| r.int(0)).transpose()?.unwrap_or(0);
        u64::try_from(n).map_err(|_| StoreError::Decode("negative count".into()))
    }

    /// The notes among `ys` that were presented (absent ones are unspent): their state and
    /// the request that presented them.
    pub async fn mint_proofs_presented(&self, ys: &[String]) -> Result<Vec<PresentedProof>, StoreError> {
        if ys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT y, state, origin FROM mint_proofs WHERE y IN ({})",
            placeholders(1, ys.len())
        );
        let params = ys.iter().map(|y| Value::from(y.as_str())).collect();
        let rows = self.db.query(&sql, params).await?;
        rows.iter()
            .map(|r| {
                let state = match r.text(1)?.as_str() {
                    "pending" => ProofState::Pending,
                    _ => ProofState::Spent,
                };
                Ok(PresentedProof {
                    y: r.text(0)?,
                    state,
                    origin: r.text(2)?,
                })
            })
            .collect()
    }

    /// The signatures issued for any of `blinded` (NUT-09 restore, and the already-signed check).
    pub async fn mint_signatures_for(&self, blinded: &[String]) -> Result<Vec<SignatureRow>, StoreError> {
        if blinded.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT blinded, keyset_id, amount, signature, dleq_e, dleq_s FROM mint_signatures WHERE blinded IN ({})",
            placeholders(1, blinded.len())
        );
        let params = blinded.iter().map(|b| Value::from(b.as_str())).collect();
        self.db.query(&sql, params).await?.iter().map(signature).collect()
    }

    /// The signatures issued under `origin` (a quote or a swap), in no particular order.
    pub async fn mint_signatures_by_origin(&self, origin: &str) -> Result<Vec<SignatureRow>, StoreError> {
        self.db
            .query(
                "SELECT blinded, keyset_id, amount, signature, dleq_e, dleq_s FROM mint_signatures WHERE origin = $1",
                params![origin],
            )
            .await?
            .iter()
            .map(signature)
            .collect()
    }

    /// Sums of issued, spent and pending notes, read in one snapshot.
    pub async fn mint_totals(&self) -> Result<MintTotals, StoreError> {
        let rows = self
            .db
            .snapshot(vec![
                (
                    "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM mint_signatures".into(),
                    Vec::new(),
                ),
                (
                    "SELECT CAST(COALESCE(SUM(CASE WHEN state = 'spent' THEN amount ELSE 0 END), 0) AS BIGINT), \
                     CAST(COALESCE(SUM(CASE WHEN state = 'pending' THEN amount ELSE 0 END), 0) AS BIGINT) \
                     FROM mint_proofs"
                        .into(),
                    Vec::new(),
                ),
                (
                    "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM mint_quotes WHERE state = 'paid'".into(),
                    Vec::new(),
                ),
            ])
            .await?;
        let first = |i: usize| rows.get(i).and_then(|r| r.first()).cloned();
        let issued = first(0).map(|r| r.int(0)).transpose()?.unwrap_or(0);
        let (spent, pending) = match first(1) {
            Some(r) => (r.int(0)?, r.int(1)?),
            None => (0, 0),
        };
        let quotes_paid = first(2).map(|r| r.int(0)).transpose()?.unwrap_or(0);
        Ok(MintTotals {
            issued,
            spent,
            pending,
            quotes_paid,
        })
    }
}
