//! SQLite backend: WAL, `synchronous=FULL`, a few connection threads for ordinary work and one
//! dedicated ledger writer thread that commits batches.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flash_core::ledger::{self, Needs, Snapshot, WriteSet};
use flash_core::ports::Clock;
use flash_core::LedgerAccountId;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use crate::db::check_rows;
use crate::db::Db;
use crate::ledger::{self as store_ledger, LedgerStats, PostRequest, WriteJob, WriterHandle};
use crate::sql::{sqlite_row, to_sqlite, Row, Value};
use crate::StoreError;

mod embedded {
    refinery::embed_migrations!("migrations/sqlite");
}

/// Connection threads serving [`Db`] calls.
const POOL_THREADS: usize = 4;
/// How long a connection waits for SQLite's write lock before failing.
const BUSY_TIMEOUT_MS: u64 = 5_000;
/// Database page size for new files (measured: +8% ledger throughput over 4096).
const PAGE_SIZE_BYTES: i64 = 2048;
/// Page cache of the ledger writer's connection, KiB (hot index pages stay in memory).
const WRITER_CACHE_KIB: i64 = 64 * 1024;
/// How often the WAL is checkpointed into the database file, off the writer's thread.
const CHECKPOINT_INTERVAL_MS: u64 = 200;
/// What the WAL file is cut back to when SQLite starts it over after a checkpoint, bytes
/// (`journal_size_limit`); when the writer is idle it is truncated to nothing.
const JOURNAL_SIZE_LIMIT_BYTES: i64 = 64 * 1024 * 1024;

/// Most writes committed together in one group transaction.
const WRITE_GROUP_MAX: usize = 1_024;

type Job = Box<dyn FnOnce(&mut Connection) + Send>;

/// A write: runs inside its own savepoint of a group transaction on the writer thread, and
/// says whether it succeeded and how its caller is answered once the group has committed.
type Write = Box<dyn FnOnce(&Connection) -> Written + Send>;

/// What a [`Write`] left behind: whether to keep its changes, and its caller's answer, given
/// the outcome of the group's commit.
struct Written {
    ok: bool,
    answer: Box<dyn FnOnce(Result<(), StoreError>) + Send>,
}

/// Reads run on a pool of connection threads, whichever is free; every write runs on the one
/// writer thread, in turn with the ledger's batches, so writers never compete for SQLite's
/// write lock (no busy waits, no starved writes). Writes that queue up meanwhile commit
/// together (group commit: one fsync for many), each in its own savepoint so one that fails
/// takes back only its own changes.
#[derive(Clone)]
pub struct Pool {
    reads: std_mpsc::Sender<Job>,
    writes: mpsc::UnboundedSender<Write>,
    /// The database's write-ahead log.
    wal: Arc<PathBuf>,
}

fn connect(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_millis(BUSY_TIMEOUT_MS))?;
    // Smaller pages halve the bytes each randomly dirtied index page adds to the WAL (set
    // before the file has tables; ignored afterwards).
    conn.pragma_update(None, "page_size", PAGE_SIZE_BYTES)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "journal_size_limit", JOURNAL_SIZE_LIMIT_BYTES)?;
    Ok(conn)
}

/// Creates the database file readable by its owner only (0600) before SQLite opens it, and
/// narrows an existing file and its `-wal` and `-shm` companions to 0600 (SQLite gives the
/// companions the database file's mode when it creates them).
fn make_private(path: &Path) -> Result<(), StoreError> {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let failed = |what: &Path, e: std::io::Error| StoreError::Pool(format!("{}: {e}", what.display()));
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| failed(path, e))?;
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let file = Path::new(&name);
        match std::fs::metadata(file) {
            Ok(meta) if meta.permissions().mode() & 0o077 != 0 => {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).map_err(|e| failed(file, e))?;
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed(file, e)),
        }
    }
    Ok(())
}

/// Opens the file, migrates it, and starts the pool and the ledger writer.
pub(crate) fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<(Db, WriterHandle), StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Pool(format!("create {}: {e}", dir.display())))?;
    }
    make_private(path)?;
    let mut conn = connect(path)?;
    embedded::migrations::runner()
        .run(&mut conn)
        .map_err(|e| StoreError::Migration(e.to_string()))?;

    let (tx, rx) = std_mpsc::channel::<Job>();
    let rx = Arc::new(Mutex::new(rx));
    for i in 0..POOL_THREADS {
        let conn = connect(path)?;
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("flash-sqlite-{i}"))
            .spawn(move || serve(conn, &rx))
            .map_err(|e| StoreError::Pool(e.to_string()))?;
    }

    // The writer never checkpoints (that would stall commits); a helper thread does: passively
    // while the writer works, and truncating the WAL once it is idle.
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    let checkpointer = connect(path)?;
    // A truncating checkpoint that finds a reader gives up at once and tries again later.
    checkpointer.busy_timeout(Duration::ZERO)?;
    let (writer_alive, writer_gone) = std_mpsc::channel::<()>();
    let work_done = Arc::new(AtomicU64::new(0));
    let seen = work_done.clone();
    std::thread::Builder::new()
        .name("flash-sqlite-checkpoint".into())
        .spawn(move || checkpoint_loop(&checkpointer, &writer_gone, &seen))
        .map_err(|e| StoreError::Pool(e.to_string()))?;

    let (writer, jobs) = mpsc::channel(store_ledger::QUEUE_MAX);
    let (writes, scripts) = mpsc::unbounded_channel();
    let stats = Arc::new(LedgerStats::default());
    let loop_stats = stats.clone();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .map_err(|e| StoreError::Pool(e.to_string()))?;
    std::thread::Builder::new()
        .name("flash-sqlite-ledger".into())
        .spawn(move || {
            write_loop(&runtime, conn, jobs, scripts, clock, &loop_stats, &work_done);
            drop(writer_alive);
        })
        .map_err(|e| StoreError::Pool(e.to_string()))?;
    let mut wal = path.as_os_str().to_owned();
    wal.push("-wal");
    let pool = Pool {
        reads: tx,
        writes,
        wal: Arc::new(PathBuf::from(wal)),
    };
    Ok((Db::Sqlite(pool), WriterHandle::new(writer, stats)))
}

/// Copies committed WAL frames into the database file so the WAL stays short. While the writer
/// works (`work_done` moved since the last pass), PASSIVE: it never blocks the writer or
/// readers, does what it can and tries again next time. Once the writer has been idle for a
/// pass, TRUNCATE, once: the WAL file goes back to nothing (if a reader still uses it, the
/// checkpoint gives up and the next pass tries again). Stops when the writer stops.
fn checkpoint_loop(conn: &Connection, writer_gone: &std_mpsc::Receiver<()>, work_done: &AtomicU64) {
    let interval = Duration::from_millis(CHECKPOINT_INTERVAL_MS);
    let mut last_seen = work_done.load(Ordering::Relaxed);
    let mut truncated = false;
    while let Err(std_mpsc::RecvTimeoutError::Timeout) = writer_gone.recv_timeout(interval) {
        let now = work_done.load(Ordering::Relaxed);
        let idle = now == last_seen;
        last_seen = now;
        if !idle {
            truncated = false;
        } else if truncated {
            continue;
        }
        let mode = if idle { "TRUNCATE" } else { "PASSIVE" };
        // The row is (busy, WAL frames, frames checkpointed); busy means a reader or the writer
        // was in the way.
        match conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| r.get::<_, i64>(0)) {
            Ok(busy) => truncated = idle && busy == 0,
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy => {}
            Err(e) => tracing::warn!(error = %e, mode, "WAL checkpoint failed"),
        }
    }
}

fn serve(mut conn: Connection, rx: &Mutex<std_mpsc::Receiver<Job>>) {
    loop {
        let job = match rx.lock() {
            Ok(guard) => guard.recv(),
            Err(_) => return,
        };
        match job {
            // A panicking job must not take the thread (and its connection) with it.
            Ok(job) => {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&mut conn)));
            }
            Err(_) => return,
        }
    }
}

impl Pool {
    /// The size of the write-ahead log file, bytes (0 when there is none).
    pub(crate) fn wal_bytes(&self) -> u64 {
        std::fs::metadata(self.wal.as_path()).map_or(0, |m| m.len())
    }

    /// Runs `f` on a reader thread.
    async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = tx.send(f(conn));
        });
        if self.reads.send(job).is_err() {
            return Err(StoreError::Unavailable("sqlite connections stopped"));
        }
        rx.await.map_err(|_| StoreError::Unavailable("sqlite job failed"))?
    }

    /// Runs `f` on the writer thread, in its own savepoint of the next group transaction, and
    /// answers once that transaction has committed: an error of `f` takes back its changes
    /// only; a failed commit fails every write of the group.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = oneshot::channel();
        let job: Write = Box::new(move |conn| {
            let out = f(conn);
            Written {
                ok: out.is_ok(),
                answer: Box::new(move |committed| {
                    let _ = tx.send(out.and_then(|value| committed.map(|()| value)));
                }),
            }
        });
        if self.writes.send(job).is_err() {
            return Err(StoreError::Unavailable("sqlite connections stopped"));
        }
        rx.await.map_err(|_| StoreError::Unavailable("sqlite job failed"))?
    }

    pub(crate) async fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        // `UPDATE … RETURNING` and friends are writes: they go to the writer thread.
        let head = sql.trim_start().get(..6).unwrap_or_default().to_ascii_uppercase();
        let sql = to_sqlite(sql).into_owned();
        if matches!(head.as_str(), "SELECT" | "WITH ") {
            self.read(move |conn| query(conn, &sql, &params)).await
        } else {
            self.write(move |conn| query(conn, &sql, &params)).await
        }
    }

    pub(crate) async fn snapshot(&self, queries: Vec<(String, Vec<Value>)>) -> Result<Vec<Vec<Row>>, StoreError> {
        self.read(move |conn| {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
            let rows = queries
                .iter()
                .map(|(sql, params)| query(&tx, &to_sqlite(sql), params))
                .collect();
            tx.commit()?;
            rows
        })
        .await
    }

    pub(crate) async fn script(
        &self,
        statements: Vec<(String, Vec<Value>)>,
        expect_rows: Option<u64>,
    ) -> Result<Vec<u64>, StoreError> {
        self.write(move |conn| {
            let mut changed = Vec::with_capacity(statements.len());
            for (sql, params) in &statements {
                let mut stmt = conn.prepare_cached(&to_sqlite(sql))?;
                let rows = stmt.execute(rusqlite::params_from_iter(params.iter()))? as u64;
                check_rows(rows, expect_rows)?;
                changed.push(rows);
            }
            Ok(changed)
        })
        .await
    }

    pub(crate) async fn apply(&self, records: Vec<store_ledger::Record>) -> Result<(), StoreError> {
        self.write(move |conn| {
            for record in &records {
                let changed = conn
                    .prepare_cached(&to_sqlite(record.sql))?
                    .execute(rusqlite::params_from_iter(record.params.iter()))?;
                store_ledger::check_record(record, changed as u64)?;
            }
            Ok(())
        })
        .await
    }
}

fn query(conn: &Connection, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let columns = stmt.column_count();
    let rows = stmt.query_map(rusqlite::params_from_iter(params.iter()), |r| sqlite_row(r, columns))?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// What the writer thread does next.
enum Work {
    /// The first of a group of ordinary writes.
    Script(Write),
    /// The first ledger request of a batch.
    Post(Box<WriteJob>),
}

/// The writer thread: ordinary writes in groups, ledger requests in batches, taking turns
/// (neither starves the other). Stops when the store is dropped.
fn write_loop(
    runtime: &tokio::runtime::Runtime,
    mut conn: Connection,
    mut jobs: mpsc::Receiver<WriteJob>,
    mut scripts: mpsc::UnboundedReceiver<Write>,
    clock: Arc<dyn Clock>,
    stats: &LedgerStats,
    work_done: &AtomicU64,
) {
    let mut batches = 0u64;
    loop {
        work_done.fetch_add(1, Ordering::Relaxed);
        let next = runtime.block_on(async {
            tokio::select! {
                script = scripts.recv() => script.map(Work::Script),
                job = jobs.recv() => job.map(|j| Work::Post(Box::new(j))),
            }
        });
        let first = match next {
            None => return,
            Some(Work::Script(first)) => {
                let mut group = vec![first];
                while group.len() < WRITE_GROUP_MAX {
                    match scripts.try_recv() {
                        Ok(write) => group.push(write),
                        Err(_) => break,
                    }
                }
                commit_group(&mut conn, group);
                continue;
            }
            Some(Work::Post(first)) => *first,
        };
        let batch = store_ledger::drain(first, &mut jobs);
        let now_ms = clock.now_ms();
        store_ledger::answer(stats, batch, |reqs| execute_batch(&mut conn, reqs, now_ms));
        batches += 1;
        if batches.is_multiple_of(store_ledger::PRUNE_EVERY_BATCHES) {
            if let Err(e) = conn.execute(
                store_ledger::PRUNE_USAGE_SQL_SQLITE,
                [store_ledger::window_floor(now_ms)],
            ) {
                tracing::warn!(error = %e, "pruning limit usage failed");
            }
        }
    }
}

/// Runs a group of writes in one IMMEDIATE transaction, each in its own savepoint, commits it
/// (one fsync) and then answers every caller. A write that fails or panics takes back its own
/// changes only; if the transaction itself fails, every write of the group is answered with
/// that failure and nothing of it is kept.
fn commit_group(conn: &mut Connection, group: Vec<Write>) {
    let failed = || Err(StoreError::Unavailable("the write's transaction did not commit"));
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(e) => {
            tracing::error!(error = %e, "sqlite: a write group could not begin");
            // Dropping the writes unanswered tells their callers the job failed.
            return;
        }
    };
    let mut answers = Vec::with_capacity(group.len());
    let mut broken = None;
    for write in group {
        if let Err(e) = tx.execute_batch("SAVEPOINT flash_write") {
            broken = Some(e);
            break;
        }
        // A panicking write must not take the writer (and its connection) with it; its caller
        // learns from its dropped answer.
        let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(&tx)));
        let keep = matches!(&written, Ok(w) if w.ok);
        let end = if keep {
            "RELEASE SAVEPOINT flash_write"
        } else {
            "ROLLBACK TO SAVEPOINT flash_write; RELEASE SAVEPOINT flash_write"
        };
        if let Ok(written) = written {
            answers.push(written.answer);
        }
        if let Err(e) = tx.execute_batch(end) {
            broken = Some(e);
            break;
        }
    }
    let committed = match broken {
        Some(e) => Err(e),
        None => tx.commit(),
    };
    match committed {
        Ok(()) => answers.into_iter().for_each(|answer| answer(Ok(()))),
        Err(e) => {
            tracing::error!(error = %e, "sqlite: a write group did not commit");
            answers.into_iter().for_each(|answer| answer(failed()));
        }
    }
}

/// Bookkeeping that commits with a batch's journals.
struct Side<'a> {
    contacts: Vec<(String, String, i64)>,
    audits: Vec<[String; 4]>,
    references: std::collections::HashMap<flash_core::JournalId, &'a str>,
    /// Rail records, each with its request's position among the batch's active requests.
    records: Vec<(usize, &'a store_ledger::Record)>,
}

/// Decides and commits one batch in one IMMEDIATE transaction. A request one of whose rail
/// records refuses is answered with that refusal: the batch's writes go back to a savepoint
/// and the rest of the batch is decided again, in the same transaction.
fn execute_batch(
    conn: &mut Connection,
    reqs: &[&PostRequest],
    now_ms: i64,
) -> Result<Vec<store_ledger::Answer>, StoreError> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let needs = ledger::needs(reqs.iter().map(|r| &r.journal));
    let loaded = load(&tx, &needs, now_ms)?;
    let mut refusals = store_ledger::Refusals::new(reqs.len());
    loop {
        let decision = refusals.decide(&loaded, reqs, now_ms);
        if !decision.writes.is_empty() {
            let (active, outcomes) = (&decision.active, &decision.outcomes);
            let (references, records) = store_ledger::posted_extras(active, outcomes);
            let side = Side {
                contacts: store_ledger::contacts(active, outcomes),
                audits: store_ledger::audits(active, outcomes),
                references,
                records,
            };
            tx.execute_batch("SAVEPOINT ledger_batch")?;
            if let Some((at, reason)) = write(&tx, &decision.writes, &side, now_ms)? {
                tx.execute_batch("ROLLBACK TO SAVEPOINT ledger_batch; RELEASE SAVEPOINT ledger_batch")?;
                refusals.refuse(&decision, at, reason)?;
                continue;
            }
            tx.execute_batch("RELEASE SAVEPOINT ledger_batch")?;
        }
        tx.commit()?;
        return Ok(refusals.answers(decision));
    }
}

fn one(tx: &rusqlite::Transaction<'_>, sql: &str, params: &[Value]) -> Result<Option<Row>, StoreError> {
    let mut stmt = tx.prepare_cached(sql)?;
    let columns = stmt.column_count();
    Ok(stmt
        .query_row(rusqlite::params_from_iter(params.iter()), |r| sqlite_row(r, columns))
        .optional()?)
}

fn load(tx: &rusqlite::Transaction<'_>, needs: &Needs, now_ms: i64) -> Result<Snapshot, StoreError> {
    let mut snap = Snapshot::default();
    for id in &needs.holds {
        let sql = "SELECT id, wallet_id, pending_account, amount, currency, status FROM holds WHERE id = ?1";
        if let Some(row) = one(tx, sql, &[Value::from(id.as_str())])? {
            let (id, hold) = store_ledger::decode_hold(&row)?;
            snap.holds.insert(id, hold);
        }
    }
    let accounts = needs.accounts.iter().cloned().chain(ledger::hold_accounts(&snap));
    for id in accounts.collect::<std::collections::BTreeSet<LedgerAccountId>>() {
        let sql = format!("{} WHERE la.id = ?1", store_ledger::ACCOUNT_STATE_COLUMNS);
        if let Some(row) = one(tx, &sql, &[Value::from(id.as_str())])? {
            let (id, acc) = store_ledger::decode_account(&row)?;
            snap.accounts.insert(id, acc);
        }
    }
    for key in &needs.keys {
        let sql = "SELECT idem_scope, idem_key, fingerprint, id, created_at FROM journals \
                   WHERE idem_scope = ?1 AND idem_key = ?2";
        if let Some(row) = one(tx, sql, &[key.scope.as_str().into(), key.key.as_str().into()])? {
            let (key, replay) = store_ledger::decode_replay(&row)?;
            snap.replays.insert(key, replay);
        }
    }
    for (subject, kind) in &needs.limits {
        let sql = "SELECT COALESCE(SUM(amount), 0) FROM limit_usage \
                   WHERE subject = ?1 AND kind = ?2 AND minute > ?3";
        let params = [
            subject.as_str().into(),
            kind.as_str().into(),
            store_ledger::window_floor(now_ms).into(),
        ];
        let used = one(tx, sql, &params)?.map(|r| r.int(0)).transpose()?.unwrap_or(0);
        snap.usage.insert((subject.clone(), *kind), used);
    }
    Ok(snap)
}

/// Writes a decided batch; `Some((request, reason))` when a rail record of the request at that
/// position (among the active ones) refused it, and the writes must be rolled back.
fn write(
    tx: &rusqlite::Transaction<'_>,
    w: &WriteSet,
    side: &Side<'_>,
    now_ms: i64,
) -> Result<Option<(usize, &'static str)>, StoreError> {
    let mut journal = tx.prepare_cached(store_ledger::INSERT_JOURNAL_SQLITE)?;
    let mut entry = tx.prepare_cached(
        "INSERT INTO entries (journal_id, account_id, currency, amount, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for j in &w.journals {
        let reference = side.references.get(&j.id).copied();
        journal.execute(rusqlite::params_from_iter(store_ledger::journal_values(j, reference)))?;
        for e in &j.entries {
            entry.execute(rusqlite::params![
                j.id.to_string(),
                e.account.as_str(),
                e.currency.code(),
                e.amount,
                j.created_at_ms
            ])?;
        }
    }
    let mut balance = tx.prepare_cached(
        "UPDATE ledger_accounts SET balance = balance + ?2 WHERE id = ?1 AND (kind = 'system' OR balance + ?2 >= 0)",
    )?;
    for (id, delta) in &w.balance_deltas {
        if balance.execute(rusqlite::params![id.as_str(), delta])? != 1 {
            return Err(StoreError::Invariant(format!("balance update refused for {id}")));
        }
    }
    let mut hold = tx.prepare_cached(
        "INSERT INTO holds (id, wallet_id, pending_account, amount, currency, status, open_journal_id, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, 'pending', ?6, ?7)",
    )?;
    for h in &w.holds_opened {
        hold.execute(rusqlite::params![
            h.id.as_str(),
            h.state.wallet.as_str(),
            h.state.pending.as_str(),
            h.state.amount,
            h.state.currency.code(),
            h.journal.to_string(),
            now_ms
        ])?;
    }
    let mut closure = tx.prepare_cached(
        "INSERT INTO hold_closures (hold_id, outcome, journal_id, closed_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut close = tx.prepare_cached("UPDATE holds SET status = ?2 WHERE id = ?1 AND status = 'pending'")?;
    for c in &w.holds_closed {
        closure.execute(rusqlite::params![
            c.id.as_str(),
            c.status.as_str(),
            c.journal.to_string(),
            now_ms
        ])?;
        if close.execute(rusqlite::params![c.id.as_str(), c.status.as_str()])? != 1 {
            return Err(StoreError::Invariant(format!("hold {} closed twice", c.id)));
        }
    }
    let mut usage = tx.prepare_cached(store_ledger::UPSERT_USAGE_SQLITE)?;
    for ((subject, kind), amount) in &w.usage {
        usage.execute(rusqlite::params![subject, kind.as_str(), now_ms / 60_000, amount])?;
    }
    let mut contact = tx.prepare_cached(store_ledger::UPSERT_CONTACT_SQLITE)?;
    for (account, other, count) in &side.contacts {
        contact.execute(rusqlite::params![account, other, count, now_ms])?;
    }
    let mut audit = tx.prepare_cached(
        "INSERT INTO audit_log (actor, action, subject, detail, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for [actor, action, subject, detail] in &side.audits {
        audit.execute(rusqlite::params![actor, action, subject, detail, now_ms])?;
    }
    for (at, record) in &side.records {
        let changed = tx
            .prepare_cached(&to_sqlite(record.sql))?
            .execute(rusqlite::params_from_iter(record.params.iter()))?;
        if let Some(reason) = store_ledger::record_refusal(record, changed as u64)? {
            return Ok(Some((*at, reason)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::embedded;

    /// V15 rebuilds `merchant_invoice_methods`: the rows stay, a Lightning row learns the
    /// amount its BOLT11 asks, and a second Lightning row per invoice fits once the first is
    /// superseded (never two current ones).
    #[test]
    fn invoice_methods_keep_their_rows_through_v15() {
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        embedded::migrations::runner()
            .set_target(refinery::Target::Version(14))
            .run(&mut conn)
            .expect("up to V14");
        // Parents are left out: foreign keys unchecked for these rows, then checked again for
        // the migration, as flashd runs it.
        conn.pragma_update(None, "foreign_keys", "OFF").expect("pragma");
        conn.execute_batch(
            "INSERT INTO merchant_invoices (id, store_id, kind, amount, currency, due_sat, tolerance_bps, speed_policy, \
             status, additional_status, metadata, checkout, receipt, search_text, created_at, expires_at, \
             monitoring_until, updated_at) VALUES ('inv', 'shop', 'Standard', '2100', 'SATS', 2100, 0, 'HighSpeed', \
             'New', 'None', '{}', '{}', '{}', 'inv', 1, 2, 3, 1);
             INSERT INTO merchant_invoice_methods (invoice_id, method, destination, lookup_key) VALUES
             ('inv', 'BTC-LN', 'lnbcrt1', 'hash1'), ('inv', 'BTC-CHAIN', 'bcrt1q', 'bcrt1q');",
        )
        .expect("rows of V14");
        conn.pragma_update(None, "foreign_keys", "ON").expect("pragma");
        embedded::migrations::runner().run(&mut conn).expect("V15");
        let rows: Vec<(String, Option<i64>, Option<i64>)> = conn
            .prepare("SELECT lookup_key, amount_sat, superseded_at FROM merchant_invoice_methods ORDER BY lookup_key")
            .expect("select")
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(
            rows,
            [("bcrt1q".into(), None, None), ("hash1".into(), Some(2_100), None)]
        );
        let second = "INSERT INTO merchant_invoice_methods (invoice_id, method, destination, lookup_key, amount_sat) \
                      VALUES ('inv', 'BTC-LN', 'lnbcrt2', 'hash2', 1400)";
        assert!(conn.execute(second, []).is_err(), "two current Lightning rows");
        conn.execute(
            "UPDATE merchant_invoice_methods SET superseded_at = 5 WHERE lookup_key = 'hash1'",
            [],
        )
        .expect("supersede");
        conn.execute(second, []).expect("a renewed Lightning row");
    }
}
