//! Ledger storage: the group-commit writer's shared parts, and ledger reads (balances,
//! history, journals, the global invariant check).
//!
//! Each backend runs one writer (a thread for SQLite, a task for PostgreSQL) that takes the
//! first waiting request, drains whatever else is queued up to [`BATCH_MAX`], and commits
//! the lot in one transaction: load a snapshot of what the batch touches (rows locked),
//! decide every request with `flash_core::ledger::apply_batch`, write the result, commit,
//! answer. A request refused by the ledger (an insufficient balance) or by one of its rail
//! records (a spent proof, a used-up link) is answered with its refusal while its
//! neighbours commit: a refused record rolls the batch's writes back to a savepoint and the
//! batch is decided again without that request, in the same transaction. If a batch fails
//! as a whole (a database error), each of its requests is retried alone so one bad request
//! cannot fail its neighbours.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flash_core::ledger::{
    AccountKind, AccountState, HoldState, HoldStatus, IdempotencyKey, JournalKind, JournalRequest, LimitKey,
    NewJournal, Outcome, Replay, Snapshot, WriteSet,
};
use flash_core::limits::LIMIT_WINDOW_SECS;
use flash_core::{AccountId, Currency, HoldId, JournalId, LedgerAccountId, LimitKind, SystemAccount};
use tokio::sync::{mpsc, oneshot};

use crate::sql::{params, placeholders, Row, Value};
use crate::{Audit, Store, StoreError};

/// Most requests committed in one transaction.
pub const BATCH_MAX: usize = flash_core::ledger::BATCH_REQUESTS_MAX;
/// Most requests waiting for the writer; senders wait when it is full (back-pressure).
pub(crate) const QUEUE_MAX: usize = 16 * BATCH_MAX;
/// How often (in batches) old limit-usage buckets are deleted.
pub(crate) const PRUNE_EVERY_BATCHES: u64 = 4_096;

/// A ledger posting plus the bookkeeping that must commit with it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PostRequest {
    /// The journal to post.
    pub journal: JournalRequest,
    /// Two accounts that become each other's contacts if the journal posts (first time).
    pub contact: Option<(AccountId, AccountId)>,
    /// An operator action to record if the journal posts (first time); the journal id is
    /// appended to its detail.
    pub audit: Option<Audit>,
    /// The rail's reference stored on the journal (`ln:<payment hash>`), shown in history.
    pub reference: Option<String>,
    /// A rail's state changes that commit with the journal if it posts (first time): the
    /// saga step and the money move are one transaction.
    pub records: Vec<Record>,
}

impl From<JournalRequest> for PostRequest {
    fn from(journal: JournalRequest) -> Self {
        PostRequest {
            journal,
            contact: None,
            audit: None,
            reference: None,
            records: Vec::new(),
        }
    }
}

/// A row change a rail commits together with a journal. Built by the store's rail modules
/// (the bank never writes SQL); it must change exactly its expected number of rows, or the
/// whole batch rolls back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub(crate) sql: &'static str,
    pub(crate) params: Vec<Value>,
    pub(crate) rows: u64,
    /// When set, changing other than `rows` rows is a refusal with this reason (a condition the
    /// record checks), not a broken invariant.
    pub(crate) refusal: Option<&'static str>,
}

/// The references of the requests that posted a new journal, and their records, each with
/// the position of its request in `reqs`.
pub(crate) fn posted_extras<'a>(
    reqs: &[&'a PostRequest],
    outcomes: &[Outcome],
) -> (HashMap<JournalId, &'a str>, Vec<(usize, &'a Record)>) {
    let mut references = HashMap::new();
    let mut records = Vec::new();
    for (at, (req, outcome)) in reqs.iter().zip(outcomes).enumerate() {
        if let Ok(p) = outcome {
            if !p.replayed {
                if let Some(r) = &req.reference {
                    references.insert(p.journal_id, r.as_str());
                }
                records.extend(req.records.iter().map(|r| (at, r)));
            }
        }
    }
    (references, records)
}

/// `Record::rows` of a record whose condition may or may not hold (an event written only by the
/// change that crosses a threshold): any count of changed rows is right.
pub(crate) const ANY_ROWS: u64 = u64::MAX;

/// Fails unless a record changed the rows it expected to.
pub(crate) fn check_record(record: &Record, changed: u64) -> Result<(), StoreError> {
    match record_refusal(record, changed)? {
        None => Ok(()),
        Some(reason) => Err(StoreError::Refused(reason)),
    }
}

/// Whether a record that changed `changed` rows refused its request (`Some(reason)`); an
/// error when it changed an unexpected number of rows without a refusal to give.
pub(crate) fn record_refusal(record: &Record, changed: u64) -> Result<Option<&'static str>, StoreError> {
    match record.refusal {
        _ if changed == record.rows || record.rows == ANY_ROWS => Ok(None),
        Some(reason) => Ok(Some(reason)),
        None => Err(StoreError::Invariant(format!(
            "rail record changed {changed} rows, {} expected: {}",
            record.rows, record.sql
        ))),
    }
}

/// One request's answer from its batch: its ledger outcome, or the refusal of one of its
/// rail records (`StoreError::Refused`).
pub(crate) type Answer = Result<Outcome, StoreError>;

/// The requests of a batch that a rail record refused. The batch is decided again without
/// them (its writes rolled back to a savepoint, in the same transaction) until every record
/// holds, so a refusal neither fails nor retries the neighbours of the refused request.
pub(crate) struct Refusals {
    reasons: Vec<Option<&'static str>>,
}

impl Refusals {
    /// None refused yet, of `n` requests.
    pub(crate) fn new(n: usize) -> Self {
        Refusals { reasons: vec![None; n] }
    }

    /// Decides the batch without the refused requests, on a copy of `loaded`.
    pub(crate) fn decide<'a>(&self, loaded: &Snapshot, reqs: &[&'a PostRequest], now_ms: i64) -> Decision<'a> {
        let (positions, active): (Vec<usize>, Vec<&'a PostRequest>) = reqs
            .iter()
            .enumerate()
            .filter(|(at, _)| self.reasons.get(*at).is_some_and(Option::is_none))
            .map(|(at, r)| (at, *r))
            .unzip();
        let mut snap = loaded.clone();
        let (outcomes, writes) = flash_core::ledger::apply_batch(
            &mut snap,
            active.iter().map(|r| &r.journal),
            now_ms,
            JournalId::generate,
        );
        Decision {
            positions,
            active,
            outcomes,
            writes,
        }
    }

    /// Refuses the request at `at` among `decision`'s active requests.
    pub(crate) fn refuse(
        &mut self,
        decision: &Decision<'_>,
        at: usize,
        reason: &'static str,
    ) -> Result<(), StoreError> {
        let slot = decision
            .positions
            .get(at)
            .and_then(|&at| self.reasons.get_mut(at))
            .ok_or(StoreError::Invariant("a refused record names no request".into()))?;
        *slot = Some(reason);
        Ok(())
    }

    /// Every request's answer, in batch order: `decision`'s outcomes for the requests it
    /// decided, the refusal of each other one.
    pub(crate) fn answers(self, decision: Decision<'_>) -> Vec<Answer> {
        let mut decided: HashMap<usize, Outcome> = decision.positions.into_iter().zip(decision.outcomes).collect();
        self.reasons
            .into_iter()
            .enumerate()
            .map(|(at, reason)| match (reason, decided.remove(&at)) {
                (Some(reason), _) => Err(StoreError::Refused(reason)),
                (None, Some(outcome)) => Ok(outcome),
                (None, None) => Err(StoreError::Invariant(format!(
                    "request {at} of a batch was not decided"
                ))),
            })
            .collect()
    }
}

/// A batch decided by the engine without its refused requests: what a backend writes, and
/// what each request it decided gets.
pub(crate) struct Decision<'a> {
    /// The position in the whole batch of each active request.
    positions: Vec<usize>,
    /// The requests decided, in batch order.
    pub(crate) active: Vec<&'a PostRequest>,
    /// Their outcomes, in the same order.
    pub(crate) outcomes: Vec<Outcome>,
    /// The rows to write.
    pub(crate) writes: WriteSet,
}

/// A queued request and where its answer goes.
pub(crate) struct WriteJob {
    req: PostRequest,
    reply: oneshot::Sender<Answer>,
}

/// Counters kept by a ledger writer, for metrics.
#[derive(Debug, Default)]
pub struct LedgerStats {
    batches: AtomicU64,
    journals: AtomicU64,
}

impl LedgerStats {
    /// Batches committed.
    pub fn batches(&self) -> u64 {
        self.batches.load(Ordering::Relaxed)
    }
    /// Journals posted (replays not counted).
    pub fn journals(&self) -> u64 {
        self.journals.load(Ordering::Relaxed)
    }
}

/// The sending side of a backend's ledger writer.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    jobs: mpsc::Sender<WriteJob>,
    stats: Arc<LedgerStats>,
}

impl WriterHandle {
    pub(crate) fn new(jobs: mpsc::Sender<WriteJob>, stats: Arc<LedgerStats>) -> Self {
        WriterHandle { jobs, stats }
    }
}

/// The first job plus whatever is already queued, up to [`BATCH_MAX`].
pub(crate) fn drain(first: WriteJob, rx: &mut mpsc::Receiver<WriteJob>) -> Vec<WriteJob> {
    let mut batch = vec![first];
    while batch.len() < BATCH_MAX {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
    batch
}

/// Borrowed requests of a batch, in order.
pub(crate) fn requests(batch: &[WriteJob]) -> Vec<&PostRequest> {
    batch.iter().map(|j| &j.req).collect()
}

/// Answers a batch from its result. If the batch failed as a whole (a database error, never
/// a refusal), returns its jobs to be retried one by one instead of failing them all.
pub(crate) fn deliver(
    stats: &LedgerStats,
    batch: Vec<WriteJob>,
    result: Result<Vec<Answer>, StoreError>,
) -> Vec<WriteJob> {
    match result {
        Ok(outcomes) => {
            let posted = outcomes
                .iter()
                .filter(|o| matches!(o, Ok(Ok(p)) if !p.replayed))
                .count();
            stats.batches.fetch_add(1, Ordering::Relaxed);
            stats.journals.fetch_add(posted as u64, Ordering::Relaxed);
            for (job, outcome) in batch.into_iter().zip(outcomes) {
                let _ = job.reply.send(outcome);
            }
            Vec::new()
        }
        Err(e) => {
            tracing::warn!(error = %e, jobs = batch.len(), "ledger batch failed; retrying its requests one by one");
            batch
        }
    }
}

/// Answers requests retried alone, failure included.
pub(crate) fn deliver_final(stats: &LedgerStats, alone: Vec<WriteJob>, result: Result<Vec<Answer>, StoreError>) {
    match result {
        Ok(outcomes) => {
            deliver(stats, alone, Ok(outcomes));
        }
        Err(e) => {
            tracing::error!(error = %e, "ledger request failed");
            let mut error = Some(e);
            for job in alone {
                let e = error.take().unwrap_or(StoreError::Unavailable("ledger write failed"));
                let _ = job.reply.send(Err(e));
            }
        }
    }
}

/// Runs a batch through a synchronous executor, with the one-by-one fallback.
pub(crate) fn answer(
    stats: &LedgerStats,
    batch: Vec<WriteJob>,
    mut exec: impl FnMut(&[&PostRequest]) -> Result<Vec<Answer>, StoreError>,
) {
    let result = exec(&requests(&batch));
    for job in deliver(stats, batch, result) {
        let result = exec(&[&job.req]);
        deliver_final(stats, vec![job], result);
    }
}

/// Contact pairs (both directions) with payment counts, for requests that posted a new
/// journal; each pair appears once.
pub(crate) fn contacts(reqs: &[&PostRequest], outcomes: &[Outcome]) -> Vec<(String, String, i64)> {
    let mut pairs: BTreeMap<(String, String), i64> = BTreeMap::new();
    let posted = reqs
        .iter()
        .zip(outcomes)
        .filter(|(_, o)| matches!(o, Ok(p) if !p.replayed));
    for (a, b) in posted.filter_map(|(r, _)| r.contact) {
        *pairs.entry((a.to_string(), b.to_string())).or_insert(0) += 1;
        *pairs.entry((b.to_string(), a.to_string())).or_insert(0) += 1;
    }
    pairs.into_iter().map(|((a, b), n)| (a, b, n)).collect()
}

/// Audit rows `(actor, action, subject, detail)` for requests that posted a new journal.
pub(crate) fn audits(reqs: &[&PostRequest], outcomes: &[Outcome]) -> Vec<[String; 4]> {
    reqs.iter()
        .zip(outcomes)
        .filter_map(|(r, o)| match (o, &r.audit) {
            (Ok(p), Some(a)) if !p.replayed => Some([
                a.actor.clone(),
                a.action.clone(),
                a.subject.clone(),
                format!("{} (journal {})", a.detail, p.journal_id),
            ]),
            _ => None,
        })
        .collect()
}

/// The first minute bucket outside the rolling window ending at `now_ms` (it and older
/// buckets can be deleted).
pub(crate) fn window_floor(now_ms: i64) -> i64 {
    now_ms / 60_000 - LIMIT_WINDOW_SECS / 60
}

/// Ledger accounts with their owner's status (`active` for system accounts), by id.
pub(crate) const ACCOUNT_STATE_COLUMNS: &str = "SELECT la.id, la.currency, la.balance, la.kind, \
    COALESCE(a.status, 'active') FROM ledger_accounts la \
    LEFT JOIN wallets w ON w.id = la.id LEFT JOIN accounts a ON a.id = w.account_id";

pub(crate) const PRUNE_USAGE_SQL_SQLITE: &str = "DELETE FROM limit_usage WHERE minute <= ?1";
pub(crate) const INSERT_JOURNAL_SQLITE: &str = "INSERT INTO journals (id, kind, memo, idem_scope, idem_key, \
    fingerprint, debit_account, credit_account, amount, fee, currency, hold_id, created_at, reference) \
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";
pub(crate) const UPSERT_USAGE_SQLITE: &str = "INSERT INTO limit_usage (subject, kind, minute, amount) \
    VALUES (?1, ?2, ?3, ?4) ON CONFLICT (subject, kind, minute) DO UPDATE SET amount = limit_usage.amount + excluded.amount";
pub(crate) const UPSERT_CONTACT_SQLITE: &str = "INSERT INTO contacts (account_id, contact_account_id, alias, \
    transactions_count, created_at) VALUES (?1, ?2, NULL, ?3, ?4) ON CONFLICT (account_id, contact_account_id) \
    DO UPDATE SET transactions_count = contacts.transactions_count + excluded.transactions_count";

/// A journal's column values in `INSERT_JOURNAL_*` order.
pub(crate) fn journal_values(j: &NewJournal, reference: Option<&str>) -> Vec<Value> {
    params![
        j.id.to_string(),
        j.kind.as_str(),
        j.memo.clone(),
        j.idempotency.scope.as_str(),
        j.idempotency.key.as_str(),
        j.fingerprint.as_str(),
        j.from.as_str(),
        j.to.as_str(),
        j.amount,
        j.fee,
        j.currency.code(),
        j.hold.as_ref().map(HoldId::as_str),
        j.created_at_ms,
        reference,
    ]
}

fn decode_err(what: &str, value: &str) -> StoreError {
    StoreError::Decode(format!("unexpected {what} {value:?}"))
}

/// `id, wallet_id, pending_account, amount, currency, status` → hold.
pub(crate) fn decode_hold(row: &Row) -> Result<(HoldId, HoldState), StoreError> {
    let status = row.text(5)?;
    Ok((
        HoldId::new(row.text(0)?),
        HoldState {
            wallet: LedgerAccountId::from_stored(row.text(1)?),
            pending: LedgerAccountId::from_stored(row.text(2)?),
            amount: row.int(3)?,
            currency: row.parse(4)?,
            status: HoldStatus::from_stored(&status).ok_or_else(|| decode_err("hold status", &status))?,
        },
    ))
}

/// `id, currency, balance, kind, owner status` → account.
pub(crate) fn decode_account(row: &Row) -> Result<(LedgerAccountId, AccountState), StoreError> {
    let kind = match row.text(3)?.as_str() {
        "wallet" => AccountKind::Wallet,
        "system" => AccountKind::System,
        other => return Err(decode_err("account kind", other)),
    };
    Ok((
        LedgerAccountId::from_stored(row.text(0)?),
        AccountState {
            currency: row.parse(1)?,
            balance: row.int(2)?,
            kind,
            active: row.text(4)? == "active",
        },
    ))
}

/// `idem_scope, idem_key, fingerprint, id, created_at` → replay.
pub(crate) fn decode_replay(row: &Row) -> Result<(IdempotencyKey, Replay), StoreError> {
    Ok((
        IdempotencyKey {
            scope: row.text(0)?,
            key: row.text(1)?,
        },
        Replay {
            fingerprint: row.text(2)?,
            journal_id: row.parse(3)?,
            created_at_ms: row.int(4)?,
        },
    ))
}

/// Usage rows `subject, kind, sum` → limit key and amount.
pub(crate) fn decode_usage(row: &Row) -> Result<(LimitKey, i64), StoreError> {
    let kind = row.text(1)?;
    let kind = LimitKind::from_stored(&kind).ok_or_else(|| decode_err("limit kind", &kind))?;
    Ok(((row.text(0)?, kind), row.int(2)?))
}

/// Where a history page starts. History is ordered newest first; "forward" goes to older
/// entries.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum PageStart {
    /// The newest entries.
    #[default]
    Newest,
    /// Entries older than this journal.
    After(JournalId),
    /// Entries newer than this journal, the ones closest to it.
    Before(JournalId),
    /// The oldest entries.
    Oldest,
}

impl PageStart {
    /// True when the page is read towards newer entries.
    pub fn backward(self) -> bool {
        matches!(self, PageStart::Before(_) | PageStart::Oldest)
    }
}

/// Which page of a history.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryQuery {
    /// The ledger accounts (wallets) whose entries to list.
    pub accounts: Vec<LedgerAccountId>,
    /// Page size.
    pub limit: usize,
    /// Where the page starts.
    pub start: PageStart,
}

/// One history line: a wallet's side of a journal.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryItem {
    /// The wallet's ledger account.
    pub account: LedgerAccountId,
    /// Signed change to the wallet (negative for sends, fee included).
    pub amount: i64,
    /// The fee the wallet paid (0 for receipts).
    pub fee: i64,
    /// Currency.
    pub currency: Currency,
    /// The journal; also the item's page cursor.
    pub journal_id: JournalId,
    /// Its kind.
    pub kind: JournalKind,
    /// Its memo.
    pub memo: Option<String>,
    /// For a hold's opening journal, the hold's current status.
    pub hold_status: Option<HoldStatus>,
    /// The other side's ledger account.
    pub counterparty: LedgerAccountId,
    /// The other side's username, if it is a wallet whose user has one.
    pub counterparty_username: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// The rail's reference (`ln:<payment hash>`), if a rail posted it.
    pub reference: Option<String>,
}

/// A page of history, newest first, and whether more lie in the direction of travel.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistoryPage {
    /// Items, newest first.
    pub items: Vec<HistoryItem>,
    /// Whether another page follows in the direction asked.
    pub has_more: bool,
}

/// A journal with its entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalRecord {
    /// Id.
    pub id: JournalId,
    /// Kind as stored.
    pub kind: String,
    /// Memo.
    pub memo: Option<String>,
    /// Paying side.
    pub from: LedgerAccountId,
    /// Receiving side.
    pub to: LedgerAccountId,
    /// Amount.
    pub amount: i64,
    /// Fee.
    pub fee: i64,
    /// Currency.
    pub currency: Currency,
    /// Hold it opened or closed.
    pub hold: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// `(account, signed amount)` per entry.
    pub entries: Vec<(LedgerAccountId, i64)>,
}

/// The result of the global invariant check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerReport {
    /// Sum of all balances per currency (each must be 0).
    pub totals: Vec<(Currency, i64)>,
    /// Ledger accounts checked.
    pub accounts_checked: i64,
    /// Journals checked.
    pub journals_checked: i64,
    /// Every violation found, in words.
    pub problems: Vec<String>,
}

impl LedgerReport {
    /// True when no invariant is broken.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// A wallet's side of each journal. A hold's opening line stands for the whole payment: once
/// settled it shows what was used and the fee, and the closing journal's return to the wallet
/// is not listed apart (it is part of the same payment). An on-chain payout's hold settles
/// when its transaction is broadcast; the line stays `pending` until that transaction confirms.
const HISTORY_COLUMNS: &str = "SELECT e.journal_id, e.account_id, \
    CASE WHEN c.outcome = 'settled' THEN -(cj.amount + cj.fee) ELSE e.amount END, \
    CASE WHEN c.outcome = 'settled' THEN cj.fee ELSE j.fee END, \
    j.debit_account, j.currency, j.kind, \
    j.memo, CASE WHEN h.status = 'settled' AND op.id IS NOT NULL \
    AND (ob.status IS NULL OR ob.status <> 'confirmed') THEN 'pending' ELSE h.status END, CASE WHEN e.account_id = j.debit_account THEN j.credit_account ELSE j.debit_account END, \
    cu.username, j.created_at, j.reference \
    FROM entries e JOIN journals j ON j.id = e.journal_id \
    LEFT JOIN holds h ON h.id = j.hold_id AND j.kind = 'hold_open' \
    LEFT JOIN hold_closures c ON c.hold_id = h.id \
    LEFT JOIN journals cj ON cj.id = c.journal_id \
    LEFT JOIN onchain_payouts op ON op.id = h.id \
    LEFT JOIN onchain_batches ob ON ob.id = op.batch_id \
    LEFT JOIN wallets cw ON cw.id = (CASE WHEN e.account_id = j.debit_account THEN j.credit_account ELSE j.debit_account END) \
    LEFT JOIN accounts ca ON ca.id = cw.account_id \
    LEFT JOIN users cu ON cu.id = ca.user_id";

/// Leaves out a hold's return to its own wallet (see [`HISTORY_COLUMNS`]).
const HISTORY_VISIBLE: &str = "NOT (j.kind IN ('hold_settle', 'hold_reverse') \
    AND e.account_id = (SELECT wallet_id FROM holds WHERE id = j.hold_id))";

/// The invariant checks, in the order `verify` reads them.
const VERIFY_QUERIES: [&str; 8] = [
    // Sum of balances per currency is zero.
    "SELECT currency, CAST(SUM(balance) AS BIGINT), COUNT(*) FROM ledger_accounts GROUP BY currency",
    // Every balance equals the sum of its entries.
    "SELECT a.id, a.balance, CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM ledger_accounts a \
     LEFT JOIN entries e ON e.account_id = a.id GROUP BY a.id, a.balance HAVING a.balance <> COALESCE(SUM(e.amount), 0)",
    // Every journal balances per currency.
    "SELECT journal_id, currency, CAST(SUM(amount) AS BIGINT) FROM entries GROUP BY journal_id, currency \
     HAVING SUM(amount) <> 0",
    // No journal is partial.
    "SELECT j.id FROM journals j LEFT JOIN entries e ON e.journal_id = j.id GROUP BY j.id HAVING COUNT(e.account_id) < 2",
    // No wallet is negative.
    "SELECT id, balance FROM ledger_accounts WHERE kind = 'wallet' AND balance < 0",
    // Pending accounts hold exactly their open holds.
    "SELECT a.id, a.balance, CAST(COALESCE((SELECT SUM(h.amount) FROM holds h WHERE h.pending_account = a.id \
     AND h.status = 'pending'), 0) AS BIGINT) FROM ledger_accounts a WHERE a.id IN (SELECT pending_account FROM holds)",
    // A hold's status agrees with its (single) closure.
    "SELECT h.id FROM holds h LEFT JOIN hold_closures c ON c.hold_id = h.id \
     WHERE (h.status = 'pending' AND c.hold_id IS NOT NULL) \
     OR (h.status <> 'pending' AND (c.hold_id IS NULL OR c.outcome <> h.status))",
    "SELECT COUNT(*) FROM journals",
];

fn decode_history(row: &Row) -> Result<HistoryItem, StoreError> {
    let account = LedgerAccountId::from_stored(row.text(1)?);
    let payer = row.text(4)? == account.as_str();
    let kind = row.text(6)?;
    let hold_status = row.opt_text(8)?;
    Ok(HistoryItem {
        journal_id: row.parse(0)?,
        amount: row.int(2)?,
        fee: if payer { row.int(3)? } else { 0 },
        account,
        currency: row.parse(5)?,
        kind: JournalKind::from_stored(&kind).ok_or_else(|| decode_err("journal kind", &kind))?,
        memo: row.opt_text(7)?,
        hold_status: hold_status.as_deref().and_then(HoldStatus::from_stored),
        counterparty: LedgerAccountId::from_stored(row.text(9)?),
        counterparty_username: row.opt_text(10)?,
        created_at_ms: row.int(11)?,
        reference: row.opt_text(12)?,
    })
}

impl Store {
    /// Posts a journal through the group-commit writer; answers once its batch is durable.
    pub async fn post(&self, req: impl Into<PostRequest>) -> Result<Outcome, StoreError> {
        let (reply, rx) = oneshot::channel();
        let job = WriteJob { req: req.into(), reply };
        self.writer
            .jobs
            .send(job)
            .await
            .map_err(|_| StoreError::Unavailable("ledger writer stopped"))?;
        rx.await
            .map_err(|_| StoreError::Unavailable("ledger writer dropped the request"))?
    }

    /// The ledger writer's counters.
    pub fn ledger_stats(&self) -> &LedgerStats {
        &self.writer.stats
    }

    /// Total wallet balances (what the bank owes its users) per currency.
    pub async fn wallet_totals(&self) -> Result<Vec<(Currency, i64)>, StoreError> {
        let sql = "SELECT currency, CAST(SUM(balance) AS BIGINT) FROM ledger_accounts WHERE kind = 'wallet' \
                   GROUP BY currency ORDER BY currency";
        self.db
            .query(sql, vec![])
            .await?
            .iter()
            .map(|r| Ok((r.parse(0)?, r.int(1)?)))
            .collect()
    }

    /// Creates the system accounts for `currency` if they do not exist.
    pub async fn ensure_system_accounts(&self, currency: Currency) -> Result<(), StoreError> {
        let now = self.now_ms();
        let statements = SystemAccount::ALL
            .iter()
            .map(|a| {
                (
                    "INSERT INTO ledger_accounts (id, currency, kind, balance, created_at) \
                     VALUES ($1, $2, 'system', 0, $3) ON CONFLICT (id) DO NOTHING"
                        .to_string(),
                    params![a.ledger_id(currency).as_str(), currency.code(), now],
                )
            })
            .collect();
        self.db.script(statements).await.map(|_| ())
    }

    /// Balances of ledger accounts (absent ids are left out).
    pub async fn balances(&self, ids: &[LedgerAccountId]) -> Result<BTreeMap<LedgerAccountId, i64>, StoreError> {
        if ids.is_empty() {
            return Ok(BTreeMap::new());
        }
        let sql = format!(
            "SELECT id, balance FROM ledger_accounts WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let params = ids.iter().map(|i| Value::from(i.as_str())).collect();
        self.db
            .query(&sql, params)
            .await?
            .iter()
            .map(|r| Ok((LedgerAccountId::from_stored(r.text(0)?), r.int(1)?)))
            .collect()
    }

    /// A page of history over `q.accounts`, newest first.
    pub async fn history(&self, q: &HistoryQuery) -> Result<HistoryPage, StoreError> {
        if q.accounts.is_empty() || q.limit == 0 {
            return Ok(HistoryPage::default());
        }
        let n = q.accounts.len();
        let mut params: Vec<Value> = q.accounts.iter().map(|a| Value::from(a.as_str())).collect();
        let cursor = match q.start {
            PageStart::Before(c) | PageStart::After(c) => {
                params.push(c.to_string().into());
                let op = if q.start.backward() { ">" } else { "<" };
                format!("AND e.journal_id {op} ${}", n + 1)
            }
            PageStart::Newest | PageStart::Oldest => String::new(),
        };
        let order = if q.start.backward() { "ASC" } else { "DESC" };
        params.push(i64::try_from(q.limit + 1).unwrap_or(i64::MAX).into());
        let sql = format!(
            "{HISTORY_COLUMNS} WHERE e.account_id IN ({}) AND {HISTORY_VISIBLE} {cursor} ORDER BY e.journal_id {order} LIMIT ${}",
            placeholders(1, n),
            params.len()
        );
        let rows = self.db.query(&sql, params).await?;
        let mut items = rows.iter().map(decode_history).collect::<Result<Vec<_>, _>>()?;
        let has_more = items.len() > q.limit;
        items.truncate(q.limit);
        if q.start.backward() {
            items.reverse();
        }
        Ok(HistoryPage { items, has_more })
    }

    /// One history item by journal, as seen from `account`.
    pub async fn history_item(
        &self,
        account: &LedgerAccountId,
        journal: JournalId,
    ) -> Result<Option<HistoryItem>, StoreError> {
        let sql = format!("{HISTORY_COLUMNS} WHERE e.account_id = $1 AND e.journal_id = $2");
        let row = self
            .db
            .query_opt(&sql, params![account.as_str(), journal.to_string()])
            .await?;
        row.as_ref().map(decode_history).transpose()
    }

    /// How much of a limit `subject` used in the rolling window ending now.
    pub async fn limit_usage(&self, subject: &str, kind: LimitKind) -> Result<i64, StoreError> {
        let sql = "SELECT CAST(COALESCE(SUM(amount), 0) AS BIGINT) FROM limit_usage \
                   WHERE subject = $1 AND kind = $2 AND minute > $3";
        let row = self
            .db
            .query_opt(sql, params![subject, kind.as_str(), window_floor(self.now_ms())])
            .await?;
        Ok(row.map(|r| r.int(0)).transpose()?.unwrap_or(0))
    }

    /// A journal and its entries.
    pub async fn journal(&self, id: JournalId) -> Result<Option<JournalRecord>, StoreError> {
        let sql = "SELECT id, kind, memo, debit_account, credit_account, amount, fee, currency, hold_id, created_at \
                   FROM journals WHERE id = $1";
        let Some(j) = self.db.query_opt(sql, params![id.to_string()]).await? else {
            return Ok(None);
        };
        let entries = self
            .db
            .query(
                "SELECT account_id, amount FROM entries WHERE journal_id = $1 ORDER BY amount, account_id",
                params![id.to_string()],
            )
            .await?
            .iter()
            .map(|r| Ok((LedgerAccountId::from_stored(r.text(0)?), r.int(1)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(JournalRecord {
            id: j.parse(0)?,
            kind: j.text(1)?,
            memo: j.opt_text(2)?,
            from: LedgerAccountId::from_stored(j.text(3)?),
            to: LedgerAccountId::from_stored(j.text(4)?),
            amount: j.int(5)?,
            fee: j.int(6)?,
            currency: j.parse(7)?,
            hold: j.opt_text(8)?,
            created_at_ms: j.int(9)?,
            entries,
        }))
    }

    /// The journal an idempotency key posted, if any.
    pub async fn journal_for_key(&self, key: &IdempotencyKey) -> Result<Option<JournalId>, StoreError> {
        let sql = "SELECT id FROM journals WHERE idem_scope = $1 AND idem_key = $2";
        let row = self
            .db
            .query_opt(sql, params![key.scope.as_str(), key.key.as_str()])
            .await?;
        row.map(|r| r.parse(0)).transpose()
    }

    /// The journal that opened a hold.
    pub async fn hold_journal(&self, hold: &HoldId) -> Result<Option<JournalId>, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT open_journal_id FROM holds WHERE id = $1",
                params![hold.as_str()],
            )
            .await?;
        row.map(|r| r.parse(0)).transpose()
    }

    /// Checks every global ledger invariant against one consistent snapshot of the store.
    pub async fn verify(&self) -> Result<LedgerReport, StoreError> {
        let queries = VERIFY_QUERIES.iter().map(|q| (q.to_string(), vec![])).collect();
        let results = self.db.snapshot(queries).await?;
        let [totals, drift, unbalanced, partial, negative, pending, holds, journals] = results.as_slice() else {
            return Err(StoreError::Decode("verify: wrong number of result sets".into()));
        };
        let mut report = LedgerReport::default();
        for r in totals {
            let (currency, total): (Currency, i64) = (r.parse(0)?, r.int(1)?);
            report.accounts_checked += r.int(2)?;
            if total != 0 {
                report
                    .problems
                    .push(format!("{currency} balances sum to {total}, not 0"));
            }
            report.totals.push((currency, total));
        }
        for r in drift {
            report.problems.push(format!(
                "account {} balance {} != sum of entries {}",
                r.text(0)?,
                r.int(1)?,
                r.int(2)?
            ));
        }
        for r in unbalanced {
            report.problems.push(format!(
                "journal {} {} entries sum to {}",
                r.text(0)?,
                r.text(1)?,
                r.int(2)?
            ));
        }
        for r in partial {
            report
                .problems
                .push(format!("journal {} has fewer than two entries", r.text(0)?));
        }
        for r in negative {
            report
                .problems
                .push(format!("wallet {} is negative: {}", r.text(0)?, r.int(1)?));
        }
        for r in pending.iter().filter(|r| r.int(1).ok() != r.int(2).ok()) {
            report.problems.push(format!(
                "pending account {} holds {} but its open holds total {}",
                r.text(0)?,
                r.int(1)?,
                r.int(2)?
            ));
        }
        for r in holds {
            report
                .problems
                .push(format!("hold {} status disagrees with its closure", r.text(0)?));
        }
        report.journals_checked = journals.first().map(|r| r.int(0)).transpose()?.unwrap_or(0);
        Ok(report)
    }
}
