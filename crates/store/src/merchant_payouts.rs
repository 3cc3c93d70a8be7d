//! Pull payments (a store's budget, set aside in a budget wallet) and payouts (claims on them,
//! or a store's own payouts). Every change of a payout's state is one conditional update, so two
//! callers racing for the same change get one success; the events it causes commit with it.
//!
//! Two rules keep a pull payment's money right, both checked in the transaction that could
//! break them: the open claims on a pull payment (awaiting approval or payment) never exceed
//! what its budget wallet holds (checked when a claim is added and when money goes back to the
//! store), and a payout's payment attempt takes the payout from `AwaitingPayment` in the
//! transaction that moves or holds its money (so it is paid at most once at a time).

use crate::ledger::Record;
use crate::merchant_invoices::event_record;
use crate::sql::{params, Row};
use crate::{NewMerchantEvent, Store, StoreError};
use flash_core::WalletId;

/// A pull payment as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullPaymentRecord {
    /// Its id.
    pub id: String,
    /// The store that pays.
    pub store_id: String,
    /// The wallet it was funded from, and where what is left goes back.
    pub source_wallet: WalletId,
    /// The budget wallet holding what is left to pay.
    pub budget_wallet: WalletId,
    /// The currency of `amount`, as given (`BTC`, `SATS`, `USD`, …).
    pub currency: String,
    /// The amount as a decimal string in `currency`.
    pub amount: String,
    /// `currency` per BTC when it is fiat, fixed at creation.
    pub rate: Option<String>,
    /// The amount in satoshis.
    pub budget_sat: i64,
    /// Whether claims skip approval.
    pub auto_approve: bool,
    /// Unix ms from which it may be claimed.
    pub starts_at: i64,
    /// Unix ms from which it may no longer be claimed.
    pub expires_at: Option<i64>,
    /// Whether it is archived.
    pub archived: bool,
    /// What went back to the source wallet, satoshis.
    pub returned_sat: i64,
    /// Its other Greenfield fields, JSON.
    pub data: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A payout's state (BTCPay's names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MerchantPayoutState {
    /// Claimed; the store must approve it.
    AwaitingApproval,
    /// Approved; to be paid.
    AwaitingPayment,
    /// A payment attempt is under way.
    InProgress,
    /// Paid (or marked paid).
    Completed,
    /// Cancelled; never paid.
    Cancelled,
}

impl MerchantPayoutState {
    /// BTCPay's name, also the stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantPayoutState::AwaitingApproval => "AwaitingApproval",
            MerchantPayoutState::AwaitingPayment => "AwaitingPayment",
            MerchantPayoutState::InProgress => "InProgress",
            MerchantPayoutState::Completed => "Completed",
            MerchantPayoutState::Cancelled => "Cancelled",
        }
    }

    /// Parses BTCPay's name.
    pub fn parse(s: &str) -> Option<MerchantPayoutState> {
        Some(match s {
            "AwaitingApproval" => MerchantPayoutState::AwaitingApproval,
            "AwaitingPayment" => MerchantPayoutState::AwaitingPayment,
            "InProgress" => MerchantPayoutState::InProgress,
            "Completed" => MerchantPayoutState::Completed,
            "Cancelled" => MerchantPayoutState::Cancelled,
            _ => return None,
        })
    }
}

/// A payout as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantPayoutRecord {
    /// Its id.
    pub id: String,
    /// The store that pays.
    pub store_id: String,
    /// The pull payment it claims, if any.
    pub pull_payment_id: Option<String>,
    /// The wallet it is paid from: the pull payment's budget, or the store's wallet.
    pub wallet_id: WalletId,
    /// Where it is paid, normalised.
    pub destination: String,
    /// `BTC-CHAIN` or `BTC-LN`.
    pub method: String,
    /// The amount, satoshis.
    pub amount_sat: i64,
    /// Its state.
    pub state: MerchantPayoutState,
    /// Bumped when it is approved.
    pub revision: i64,
    /// Payment attempts started.
    pub attempt: i64,
    /// Unix ms before which it is not attempted again.
    pub retry_at: i64,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// The Greenfield payment proof, JSON.
    pub proof: Option<String>,
    /// Its other Greenfield fields, JSON.
    pub data: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// One payment attempt of a payout, taken with the money it moves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutAttempt {
    /// The payout.
    pub payout_id: String,
    /// The attempt's number (the payout's attempts so far + 1).
    pub attempt: i64,
    /// The events its start causes.
    pub events: Vec<NewMerchantEvent>,
}

const PULL_PAYMENT_COLUMNS: &str = "SELECT id, store_id, source_wallet, budget_wallet, currency, amount, rate, \
    budget_sat, auto_approve, starts_at, expires_at, archived, returned_sat, data, created_at, updated_at \
    FROM pull_payments";

fn pull_payment(r: &Row) -> Result<PullPaymentRecord, StoreError> {
    Ok(PullPaymentRecord {
        id: r.text(0)?,
        store_id: r.text(1)?,
        source_wallet: r.parse(2)?,
        budget_wallet: r.parse(3)?,
        currency: r.text(4)?,
        amount: r.text(5)?,
        rate: r.opt_text(6)?,
        budget_sat: r.int(7)?,
        auto_approve: r.int(8)? != 0,
        starts_at: r.int(9)?,
        expires_at: r.opt_int(10)?,
        archived: r.int(11)? != 0,
        returned_sat: r.int(12)?,
        data: r.text(13)?,
        created_at: r.int(14)?,
        updated_at: r.int(15)?,
    })
}

const PAYOUT_COLUMNS: &str = "SELECT id, store_id, pull_payment_id, wallet_id, destination, method, amount_sat, \
    state, revision, attempt, retry_at, last_error, proof, data, created_at, updated_at FROM merchant_payouts";

fn payout(r: &Row) -> Result<MerchantPayoutRecord, StoreError> {
    let state = r.text(7)?;
    Ok(MerchantPayoutRecord {
        id: r.text(0)?,
        store_id: r.text(1)?,
        pull_payment_id: r.opt_text(2)?,
        wallet_id: r.parse(3)?,
        destination: r.text(4)?,
        method: r.text(5)?,
        amount_sat: r.int(6)?,
        state: MerchantPayoutState::parse(&state).ok_or_else(|| StoreError::Decode(format!("payout state {state}")))?,
        revision: r.int(8)?,
        attempt: r.int(9)?,
        retry_at: r.int(10)?,
        last_error: r.opt_text(11)?,
        proof: r.opt_text(12)?,
        data: r.text(13)?,
        created_at: r.int(14)?,
        updated_at: r.int(15)?,
    })
}

/// Locks a pull payment's row (so changes to its claims and its budget are decided one at a
/// time) while it may still be claimed at `now_ms`.
fn lock_open(pull_payment_id: &str, now_ms: i64) -> Record {
    Record {
        sql: "UPDATE pull_payments SET updated_at = $2 WHERE id = $1 AND archived = 0 AND starts_at <= $2 \
              AND (expires_at IS NULL OR expires_at > $2)",
        params: params![pull_payment_id, now_ms],
        rows: 1,
        refusal: Some("the pull payment is archived, expired or not started"),
    }
}

/// Locks a pull payment's row, whatever its state.
fn lock(pull_payment_id: &str, now_ms: i64) -> Record {
    Record {
        sql: "UPDATE pull_payments SET updated_at = $2 WHERE id = $1",
        params: params![pull_payment_id, now_ms],
        rows: 1,
        refusal: None,
    }
}

/// Holds when the pull payment's budget wallet covers its open claims (checked after the
/// change it guards, under the row lock taken before it); `returned_sat` grows by `returned`.
fn covered(pull_payment_id: &str, returned: i64, refusal: &'static str) -> Record {
    Record {
        sql: "UPDATE pull_payments SET returned_sat = returned_sat + $2 WHERE id = $1 AND \
              (SELECT balance FROM ledger_accounts WHERE id = pull_payments.budget_wallet) >= \
              CAST((SELECT COALESCE(SUM(amount_sat), 0) FROM merchant_payouts WHERE pull_payment_id = $1 \
              AND state IN ('AwaitingApproval', 'AwaitingPayment')) AS BIGINT)",
        params: params![pull_payment_id, returned],
        rows: 1,
        refusal: Some(refusal),
    }
}

/// Inserts a payout.
pub(crate) fn payout_inserted(p: &MerchantPayoutRecord) -> Record {
    Record {
        sql: "INSERT INTO merchant_payouts (id, store_id, pull_payment_id, wallet_id, destination, method, \
              amount_sat, state, revision, attempt, retry_at, last_error, proof, data, created_at, updated_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
        params: params![
            p.id.as_str(),
            p.store_id.as_str(),
            p.pull_payment_id.clone(),
            p.wallet_id.to_string(),
            p.destination.as_str(),
            p.method.as_str(),
            p.amount_sat,
            p.state.as_str(),
            p.revision,
            p.attempt,
            p.retry_at,
            p.last_error.clone(),
            p.proof.clone(),
            p.data.as_str(),
            p.created_at,
            p.updated_at
        ],
        rows: 1,
        refusal: None,
    }
}

/// Wait before the first retry of a payout's failed attempt, ms; doubled for each further
/// attempt up to [`MAX_RETRY_MS`].
const FIRST_RETRY_MS: i64 = 30_000;
/// Longest wait between a payout's attempts, ms.
const MAX_RETRY_MS: i64 = 3_600_000;

/// How long after its attempt `attempt` failed a payout is tried again, ms.
pub fn payout_retry_delay_ms(attempt: i64) -> i64 {
    let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 16)).unwrap_or(16);
    FIRST_RETRY_MS.saturating_mul(1_i64 << doublings).min(MAX_RETRY_MS)
}

/// What a payment attempt takes: the payout, from `AwaitingPayment` to `InProgress`.
fn attempt_taken(a: &PayoutAttempt, now_ms: i64) -> Record {
    Record {
        sql: "UPDATE merchant_payouts SET state = 'InProgress', attempt = $2, updated_at = $3 \
              WHERE id = $1 AND state = 'AwaitingPayment' AND attempt = $2 - 1",
        params: params![a.payout_id.as_str(), a.attempt, now_ms],
        rows: 1,
        refusal: Some("the payout is not awaiting payment"),
    }
}

impl Record {
    /// Inserts a pull payment; commits with the journal that funds its budget wallet.
    pub fn pull_payment_created(p: &PullPaymentRecord) -> Record {
        Record {
            sql: "INSERT INTO pull_payments (id, store_id, source_wallet, budget_wallet, currency, amount, rate, \
                  budget_sat, auto_approve, starts_at, expires_at, archived, returned_sat, data, created_at, \
                  updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            params: params![
                p.id.as_str(),
                p.store_id.as_str(),
                p.source_wallet.to_string(),
                p.budget_wallet.to_string(),
                p.currency.as_str(),
                p.amount.as_str(),
                p.rate.clone(),
                p.budget_sat,
                i64::from(p.auto_approve),
                p.starts_at,
                p.expires_at,
                i64::from(p.archived),
                p.returned_sat,
                p.data.as_str(),
                p.created_at,
                p.updated_at
            ],
            rows: 1,
            refusal: None,
        }
    }

    /// Counts `amount_sat` going back from a pull payment's budget wallet to its source; commits
    /// with that journal, which is refused unless the budget still covers the open claims.
    pub fn pull_payment_returned(pull_payment_id: &str, amount_sat: i64, now_ms: i64) -> Vec<Record> {
        vec![
            lock(pull_payment_id, now_ms),
            covered(
                pull_payment_id,
                amount_sat,
                "the pull payment's open payouts need this money",
            ),
        ]
    }

    /// Starts a payout's payment attempt (`AwaitingPayment` → `InProgress`), with its events;
    /// commits with the journal that moves or holds its money.
    pub fn merchant_payout_taken(a: &PayoutAttempt, now_ms: i64) -> Vec<Record> {
        std::iter::once(attempt_taken(a, now_ms))
            .chain(a.events.iter().map(|e| event_record(e, now_ms)))
            .collect()
    }

    /// Gives a payout back to `AwaitingPayment` when its attempt's payment failed, to be
    /// tried again after [`payout_retry_delay_ms`]; commits with the journal that returns the
    /// money.
    pub fn merchant_payout_returned(payout_id: &str, attempt: i64) -> Record {
        Record {
            sql: "UPDATE merchant_payouts SET state = 'AwaitingPayment', last_error = 'the payment failed', \
                  retry_at = updated_at + $3 WHERE id = $1 AND state = 'InProgress' AND attempt = $2",
            params: params![payout_id, attempt, payout_retry_delay_ms(attempt)],
            rows: 1,
            refusal: None,
        }
    }

    /// Marks a payout paid outside Flash (`AwaitingPayment` → `Completed`), with its events;
    /// commits with the journal that gives its money back to the store, if it had a budget.
    pub fn merchant_payout_marked_paid(
        payout_id: &str,
        proof: &str,
        events: &[NewMerchantEvent],
        now_ms: i64,
    ) -> Vec<Record> {
        std::iter::once(Record {
            sql: "UPDATE merchant_payouts SET state = 'Completed', proof = $2, updated_at = $3 \
                  WHERE id = $1 AND state = 'AwaitingPayment'",
            params: params![payout_id, proof, now_ms],
            rows: 1,
            refusal: Some("only a payout awaiting payment can be marked paid"),
        })
        .chain(events.iter().map(|e| event_record(e, now_ms)))
        .collect()
    }
}

impl Store {
    /// A pull payment by id.
    pub async fn pull_payment(&self, id: &str) -> Result<Option<PullPaymentRecord>, StoreError> {
        let sql = format!("{PULL_PAYMENT_COLUMNS} WHERE id = $1");
        self.db
            .query_opt(&sql, params![id])
            .await?
            .as_ref()
            .map(pull_payment)
            .transpose()
    }

    /// A store's pull payments, newest first; archived ones only when asked.
    pub async fn pull_payments_of(
        &self,
        store_id: &str,
        include_archived: bool,
    ) -> Result<Vec<PullPaymentRecord>, StoreError> {
        let archived = if include_archived { "" } else { " AND archived = 0" };
        let sql = format!("{PULL_PAYMENT_COLUMNS} WHERE store_id = $1{archived} ORDER BY created_at DESC, id");
        self.db
            .query(&sql, params![store_id])
            .await?
            .iter()
            .map(pull_payment)
            .collect()
    }

    /// Pull payments that may have money to give back: archived or expired, with a budget
    /// wallet holding more than their open claims.
    pub async fn pull_payments_to_return(&self, now_ms: i64, limit: i64) -> Result<Vec<PullPaymentRecord>, StoreError> {
        let sql = format!(
            "{PULL_PAYMENT_COLUMNS} WHERE (archived = 1 OR expires_at <= $1) AND \
             (SELECT balance FROM ledger_accounts WHERE id = pull_payments.budget_wallet) > \
             CAST((SELECT COALESCE(SUM(amount_sat), 0) FROM merchant_payouts WHERE pull_payment_id = pull_payments.id \
             AND state IN ('AwaitingApproval', 'AwaitingPayment')) AS BIGINT) ORDER BY updated_at LIMIT $2"
        );
        self.db
            .query(&sql, params![now_ms, limit])
            .await?
            .iter()
            .map(pull_payment)
            .collect()
    }

    /// What a pull payment's open claims (awaiting approval or payment) add up to, satoshis.
    pub async fn pull_payment_open_claims(&self, id: &str) -> Result<i64, StoreError> {
        let sql = "SELECT CAST(COALESCE(SUM(amount_sat), 0) AS BIGINT) FROM merchant_payouts \
                   WHERE pull_payment_id = $1 AND state IN ('AwaitingApproval', 'AwaitingPayment')";
        match self.db.query_opt(sql, params![id]).await? {
            Some(r) => r.int(0),
            None => Ok(0),
        }
    }

    /// Archives a pull payment and cancels its `open` payouts (read just before, each still
    /// awaiting approval or payment), with the events this causes; refused when it was
    /// archived already or one of the payouts moved on meanwhile.
    pub async fn pull_payment_archive(
        &self,
        id: &str,
        open: &[&str],
        events: &[NewMerchantEvent],
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut records = vec![Record {
            sql: "UPDATE pull_payments SET archived = 1, updated_at = $2 WHERE id = $1 AND archived = 0",
            params: params![id, now],
            rows: 1,
            refusal: Some("the pull payment is archived already"),
        }];
        records.extend(open.iter().map(|payout| cancel(payout, now)));
        records.extend(events.iter().map(|e| event_record(e, now)));
        self.db.apply(records).await
    }

    /// Records a claim on a pull payment with its events and the `with` records that must hold
    /// with it (a card tap's spend): refused when the pull payment may not be claimed now, its
    /// budget does not cover this claim with the others open, or one of `with` refuses.
    pub async fn merchant_payout_claim(
        &self,
        p: &MerchantPayoutRecord,
        events: &[NewMerchantEvent],
        with: Vec<Record>,
    ) -> Result<(), StoreError> {
        let mut records = Vec::new();
        if let Some(pp) = &p.pull_payment_id {
            records.push(lock_open(pp, p.created_at));
        }
        records.push(payout_inserted(p));
        if let Some(pp) = &p.pull_payment_id {
            records.push(covered(pp, 0, "the pull payment has not that much left to claim"));
        }
        records.extend(with);
        records.extend(events.iter().map(|e| event_record(e, p.created_at)));
        self.db.apply(records).await
    }

    /// A payout by id.
    pub async fn merchant_payout(&self, id: &str) -> Result<Option<MerchantPayoutRecord>, StoreError> {
        let sql = format!("{PAYOUT_COLUMNS} WHERE id = $1");
        self.db
            .query_opt(&sql, params![id])
            .await?
            .as_ref()
            .map(payout)
            .transpose()
    }

    /// A pull payment's payouts, oldest first; cancelled ones only when asked.
    pub async fn merchant_payouts_of_pull_payment(
        &self,
        pull_payment_id: &str,
        include_cancelled: bool,
    ) -> Result<Vec<MerchantPayoutRecord>, StoreError> {
        let sql = format!(
            "{PAYOUT_COLUMNS} WHERE pull_payment_id = $1{} ORDER BY created_at, id",
            not_cancelled(include_cancelled)
        );
        self.db
            .query(&sql, params![pull_payment_id])
            .await?
            .iter()
            .map(payout)
            .collect()
    }

    /// A store's payouts, oldest first; cancelled ones only when asked.
    pub async fn merchant_payouts_of_store(
        &self,
        store_id: &str,
        include_cancelled: bool,
    ) -> Result<Vec<MerchantPayoutRecord>, StoreError> {
        let sql = format!(
            "{PAYOUT_COLUMNS} WHERE store_id = $1{} ORDER BY created_at, id",
            not_cancelled(include_cancelled)
        );
        self.db
            .query(&sql, params![store_id])
            .await?
            .iter()
            .map(payout)
            .collect()
    }

    /// Payouts to attempt (awaiting payment, due) and to follow (in progress), oldest first.
    pub async fn merchant_payouts_to_drive(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<MerchantPayoutRecord>, StoreError> {
        let sql = format!(
            "{PAYOUT_COLUMNS} WHERE (state = 'AwaitingPayment' AND retry_at <= $1) OR state = 'InProgress' \
             ORDER BY updated_at, id LIMIT $2"
        );
        self.db
            .query(&sql, params![now_ms, limit])
            .await?
            .iter()
            .map(payout)
            .collect()
    }

    /// Approves a payout at `revision` (`AwaitingApproval` → `AwaitingPayment`), with its
    /// events; `false` when it is not awaiting approval at that revision.
    pub async fn merchant_payout_approve(
        &self,
        id: &str,
        revision: i64,
        events: &[NewMerchantEvent],
    ) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let mut records = vec![Record {
            sql: "UPDATE merchant_payouts SET state = 'AwaitingPayment', revision = revision + 1, updated_at = $3 \
                  WHERE id = $1 AND state = 'AwaitingApproval' AND revision = $2",
            params: params![id, revision, now],
            rows: 1,
            refusal: Some("the payout is not awaiting approval at this revision"),
        }];
        records.extend(events.iter().map(|e| event_record(e, now)));
        refused_as_false(self.db.apply(records).await)
    }

    /// Cancels a payout awaiting approval or payment, with its events; `false` when it is in
    /// another state.
    pub async fn merchant_payout_cancel(&self, id: &str, events: &[NewMerchantEvent]) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let mut records = vec![cancel(id, now)];
        records.extend(events.iter().map(|e| event_record(e, now)));
        refused_as_false(self.db.apply(records).await)
    }

    /// Marks a store's own payout (one without a budget) paid outside Flash, with its events;
    /// `false` when it is not awaiting payment.
    pub async fn merchant_payout_mark_paid(
        &self,
        id: &str,
        proof: &str,
        events: &[NewMerchantEvent],
    ) -> Result<bool, StoreError> {
        let records = Record::merchant_payout_marked_paid(id, proof, events, self.now_ms());
        refused_as_false(self.db.apply(records).await)
    }

    /// Completes a payout's attempt (`InProgress` → `Completed`) with its proof and events;
    /// `false` when that attempt is not in progress.
    pub async fn merchant_payout_complete(
        &self,
        id: &str,
        attempt: i64,
        proof: &str,
        events: &[NewMerchantEvent],
    ) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let mut records = vec![Record {
            sql: "UPDATE merchant_payouts SET state = 'Completed', proof = $3, last_error = NULL, updated_at = $4 \
                  WHERE id = $1 AND state = 'InProgress' AND attempt = $2",
            params: params![id, attempt, proof, now],
            rows: 1,
            refusal: Some("the payout's attempt is not in progress"),
        }];
        records.extend(events.iter().map(|e| event_record(e, now)));
        refused_as_false(self.db.apply(records).await)
    }

    /// Notes why a payout's attempt failed and when to try again (it is awaiting payment
    /// again), with its events; `false` when the payout moved on.
    pub async fn merchant_payout_failed(
        &self,
        id: &str,
        attempt: i64,
        error: &str,
        retry_at: i64,
        events: &[NewMerchantEvent],
    ) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let mut records = vec![Record {
            sql: "UPDATE merchant_payouts SET last_error = $3, retry_at = $4, updated_at = $5 \
                  WHERE id = $1 AND attempt = $2 AND state = 'AwaitingPayment'",
            params: params![id, attempt, error, retry_at, now],
            rows: 1,
            refusal: Some("the payout moved on"),
        }];
        records.extend(events.iter().map(|e| event_record(e, now)));
        refused_as_false(self.db.apply(records).await)
    }
}

/// The filter that leaves cancelled payouts out, unless they are asked for.
fn not_cancelled(include_cancelled: bool) -> &'static str {
    if include_cancelled {
        ""
    } else {
        " AND state <> 'Cancelled'"
    }
}

/// Cancels a payout awaiting approval or payment.
fn cancel(id: &str, now_ms: i64) -> Record {
    Record {
        sql: "UPDATE merchant_payouts SET state = 'Cancelled', updated_at = $2 \
              WHERE id = $1 AND state IN ('AwaitingApproval', 'AwaitingPayment')",
        params: params![id, now_ms],
        rows: 1,
        refusal: Some("the payout is no longer awaiting approval or payment"),
    }
}

/// A conditional change's answer: refused (its row was not in the state it expected) is `false`.
fn refused_as_false(applied: Result<(), StoreError>) -> Result<bool, StoreError> {
    match applied {
        Ok(()) => Ok(true),
        Err(StoreError::Refused(_)) => Ok(false),
        Err(e) => Err(e),
    }
}
