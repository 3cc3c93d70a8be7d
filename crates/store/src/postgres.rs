//! PostgreSQL backend: deadpool for ordinary work, one ledger writer task with its own
//! connection that commits batches with a handful of array statements (`unnest`), pipelined,
//! whatever the batch size. `synchronous_commit=on`, so a commit is durable when answered.

use std::collections::{BTreeSet, HashMap};
use std::str::FromStr;
use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
use flash_core::ledger::{self, Needs, Snapshot, WriteSet};
use flash_core::ports::Clock;
use flash_core::{JournalId, LedgerAccountId};
use futures_util::future::try_join_all;
use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use tokio_postgres::NoTls;

use crate::db::Db;
use crate::ledger::{self as store_ledger, LedgerStats, PostRequest, WriteJob, WriterHandle};
use crate::sql::{pg_row, Row, Value};
use crate::StoreError;

mod embedded {
    refinery::embed_migrations!("migrations/postgres");
}

/// Connections in the pool for ordinary work (each ledger writer holds one more).
const POOL_SIZE: usize = 16;
/// Times a request is retried alone after a unique-key conflict with a concurrent batch.
const CONFLICT_RETRIES: usize = 3;
/// Ledger writers. Concurrent batches are safe: each locks its rows in id order, and a
/// conflict on an idempotency key fails one batch, whose requests are then retried alone.
const WRITERS: usize = 2;

type Param<'a> = &'a (dyn ToSql + Sync);

/// Connects, migrates and starts the ledger writer.
pub(crate) async fn open(url: &str, clock: Arc<dyn Clock>) -> Result<(Db, WriterHandle), StoreError> {
    let mut config = tokio_postgres::Config::from_str(url)?;
    config.options("-c synchronous_commit=on");
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(POOL_SIZE + WRITERS)
        .build()
        .map_err(|e| StoreError::Pool(e.to_string()))?;
    {
        let mut obj = get(&pool).await?;
        let client: &mut tokio_postgres::Client = &mut obj;
        embedded::migrations::runner()
            .run_async(client)
            .await
            .map_err(|e| StoreError::Migration(e.to_string()))?;
    }
    let (writer, jobs) = mpsc::channel(store_ledger::QUEUE_MAX);
    let stats = Arc::new(LedgerStats::default());
    let jobs = Arc::new(tokio::sync::Mutex::new(jobs));
    for _ in 0..WRITERS {
        tokio::spawn(write_loop(pool.clone(), jobs.clone(), clock.clone(), stats.clone()));
    }
    Ok((Db::Postgres(pool), WriterHandle::new(writer, stats)))
}

async fn get(pool: &Pool) -> Result<Object, StoreError> {
    pool.get().await.map_err(|e| StoreError::Pool(e.to_string()))
}

fn refs(params: &[Value]) -> Vec<Param<'_>> {
    params.iter().map(|p| p as Param<'_>).collect()
}

pub(crate) async fn query(pool: &Pool, sql: &str, params: &[Value]) -> Result<Vec<Row>, StoreError> {
    let client = get(pool).await?;
    let stmt = client.prepare_cached(sql).await?;
    client.query(&stmt, &refs(params)).await?.iter().map(pg_row).collect()
}

pub(crate) async fn script(
    pool: &Pool,
    statements: Vec<(String, Vec<Value>)>,
    expect_rows: Option<u64>,
) -> Result<Vec<u64>, StoreError> {
    let mut client = get(pool).await?;
    let tx = client.transaction().await?;
    let mut changed = Vec::with_capacity(statements.len());
    for (sql, params) in &statements {
        let stmt = tx.prepare_cached(sql).await?;
        let rows = tx.execute(&stmt, &refs(params)).await?;
        crate::db::check_rows(rows, expect_rows)?;
        changed.push(rows);
    }
    tx.commit().await?;
    Ok(changed)
}

pub(crate) async fn apply(pool: &Pool, records: Vec<crate::ledger::Record>) -> Result<(), StoreError> {
    let mut client = get(pool).await?;
    let tx = client.transaction().await?;
    for record in &records {
        let stmt = tx.prepare_cached(record.sql).await?;
        let changed = tx.execute(&stmt, &refs(&record.params)).await?;
        crate::ledger::check_record(record, changed)?;
    }
    tx.commit().await?;
    Ok(())
}

pub(crate) async fn snapshot(pool: &Pool, queries: Vec<(String, Vec<Value>)>) -> Result<Vec<Vec<Row>>, StoreError> {
    let mut client = get(pool).await?;
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let mut out = Vec::with_capacity(queries.len());
    for (sql, params) in &queries {
        let stmt = tx.prepare_cached(sql).await?;
        out.push(
            tx.query(&stmt, &refs(params))
                .await?
                .iter()
                .map(pg_row)
                .collect::<Result<_, _>>()?,
        );
    }
    tx.commit().await?;
    Ok(out)
}

/// One of [`WRITERS`] ledger writers: takes the next batch off the shared queue and commits it
/// on its own connection, so one batch's commit overlaps the next one's work.
async fn write_loop(
    pool: Pool,
    jobs: Arc<tokio::sync::Mutex<mpsc::Receiver<WriteJob>>>,
    clock: Arc<dyn Clock>,
    stats: Arc<LedgerStats>,
) {
    let mut conn: Option<Object> = None;
    let mut batches = 0u64;
    loop {
        let batch = {
            let mut queue = jobs.lock().await;
            let Some(first) = queue.recv().await else { break };
            store_ledger::drain(first, &mut queue)
        };
        let now_ms = clock.now_ms();
        let result = run(&pool, &mut conn, &store_ledger::requests(&batch), now_ms).await;
        for job in store_ledger::deliver(&stats, batch, result) {
            let alone = vec![job];
            let mut result = run(&pool, &mut conn, &store_ledger::requests(&alone), now_ms).await;
            // A unique-key conflict means another writer's batch created the same hold or used
            // the same idempotency key; it has committed by now, so a fresh read decides.
            for _ in 0..CONFLICT_RETRIES {
                if !matches!(&result, Err(e) if e.is_unique_violation()) {
                    break;
                }
                result = run(&pool, &mut conn, &store_ledger::requests(&alone), now_ms).await;
            }
            store_ledger::deliver_final(&stats, alone, result);
        }
        batches += 1;
        if batches.is_multiple_of(store_ledger::PRUNE_EVERY_BATCHES) {
            let prune = "DELETE FROM limit_usage WHERE minute <= $1";
            if let Err(e) = script(
                &pool,
                vec![(prune.into(), vec![store_ledger::window_floor(now_ms).into()])],
                None,
            )
            .await
            {
                tracing::warn!(error = %e, "pruning limit usage failed");
            }
        }
    }
}

/// Runs a batch on the writer's connection, reconnecting when it was lost.
async fn run(
    pool: &Pool,
    conn: &mut Option<Object>,
    reqs: &[&PostRequest],
    now_ms: i64,
) -> Result<Vec<store_ledger::Answer>, StoreError> {
    let client = match conn {
        Some(c) if !c.is_closed() => c,
        _ => conn.insert(get(pool).await?),
    };
    execute_batch(client, reqs, now_ms).await
}

async fn rows(
    tx: &deadpool_postgres::Transaction<'_>,
    sql: &str,
    params: &[Param<'_>],
) -> Result<Vec<Row>, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    tx.query(&stmt, params).await?.iter().map(pg_row).collect()
}

/// Decides and commits one batch in one transaction. A request one of whose rail records
/// refuses is answered with that refusal: the batch's writes go back to a savepoint and the
/// rest of the batch is decided again, in the same transaction (its rows stay locked).
async fn execute_batch(
    client: &mut Object,
    reqs: &[&PostRequest],
    now_ms: i64,
) -> Result<Vec<store_ledger::Answer>, StoreError> {
    let tx = client.transaction().await?;
    let needs = ledger::needs(reqs.iter().map(|r| &r.journal));
    let loaded = load(&tx, &needs, now_ms).await?;
    let mut refusals = store_ledger::Refusals::new(reqs.len());
    loop {
        let decision = refusals.decide(&loaded, reqs, now_ms);
        if !decision.writes.is_empty() {
            let (active, outcomes) = (&decision.active, &decision.outcomes);
            let side = Side {
                contacts: store_ledger::contacts(active, outcomes),
                audits: store_ledger::audits(active, outcomes),
                extras: store_ledger::posted_extras(active, outcomes),
            };
            tx.batch_execute("SAVEPOINT ledger_batch").await?;
            if let Some((at, reason)) = write(&tx, &decision.writes, &side, now_ms).await? {
                tx.batch_execute("ROLLBACK TO SAVEPOINT ledger_batch; RELEASE SAVEPOINT ledger_batch")
                    .await?;
                refusals.refuse(&decision, at, reason)?;
                continue;
            }
            tx.batch_execute("RELEASE SAVEPOINT ledger_batch").await?;
        }
        tx.commit().await?;
        return Ok(refusals.answers(decision));
    }
}

async fn load(tx: &deadpool_postgres::Transaction<'_>, needs: &Needs, now_ms: i64) -> Result<Snapshot, StoreError> {
    // Share-lock the owners of the wallets that would pay or be paid, before reading their
    // status: an operator's lock (an update of the account row) then either commits before
    // this batch reads it or waits until the batch has committed.
    let wallets: Vec<&str> = needs.accounts.iter().map(LedgerAccountId::as_str).collect();
    let owners = "SELECT a.id FROM wallets w JOIN accounts a ON a.id = w.account_id \
                  WHERE w.id = ANY($1) ORDER BY a.id FOR SHARE OF a";
    rows(tx, owners, &[&wallets]).await?;
    let mut snap = Snapshot::default();
    if !needs.holds.is_empty() {
        let ids: Vec<&str> = needs.holds.iter().map(|h| h.as_str()).collect();
        let sql = "SELECT id, wallet_id, pending_account, amount, currency, status FROM holds \
                   WHERE id = ANY($1) ORDER BY id FOR UPDATE";
        for row in rows(tx, sql, &[&ids]).await? {
            let (id, hold) = store_ledger::decode_hold(&row)?;
            snap.holds.insert(id, hold);
        }
    }
    // Lock accounts in id order so concurrent writers (scale-out) cannot deadlock.
    let accounts: BTreeSet<LedgerAccountId> = needs
        .accounts
        .iter()
        .cloned()
        .chain(ledger::hold_accounts(&snap))
        .collect();
    let ids: Vec<&str> = accounts.iter().map(LedgerAccountId::as_str).collect();
    let sql = format!(
        "{} WHERE la.id = ANY($1) ORDER BY la.id FOR UPDATE OF la",
        store_ledger::ACCOUNT_STATE_COLUMNS
    );
    for row in rows(tx, &sql, &[&ids]).await? {
        let (id, acc) = store_ledger::decode_account(&row)?;
        snap.accounts.insert(id, acc);
    }
    let scopes: Vec<&str> = needs.keys.iter().map(|k| k.scope.as_str()).collect();
    let keys: Vec<&str> = needs.keys.iter().map(|k| k.key.as_str()).collect();
    let sql = "SELECT j.idem_scope, j.idem_key, j.fingerprint, j.id, j.created_at FROM journals j \
               JOIN unnest($1::text[], $2::text[]) AS k(s, k) ON j.idem_scope = k.s AND j.idem_key = k.k";
    for row in rows(tx, sql, &[&scopes, &keys]).await? {
        let (key, replay) = store_ledger::decode_replay(&row)?;
        snap.replays.insert(key, replay);
    }
    if !needs.limits.is_empty() {
        let subjects: Vec<&str> = needs.limits.iter().map(|(s, _)| s.as_str()).collect();
        let kinds: Vec<&str> = needs.limits.iter().map(|(_, k)| k.as_str()).collect();
        for key in &needs.limits {
            snap.usage.insert(key.clone(), 0);
        }
        let sql = "SELECT u.subject, u.kind, CAST(SUM(u.amount) AS BIGINT) FROM limit_usage u \
                   JOIN unnest($1::text[], $2::text[]) AS k(s, k) ON u.subject = k.s AND u.kind = k.k \
                   WHERE u.minute > $3 GROUP BY u.subject, u.kind";
        let floor = store_ledger::window_floor(now_ms);
        for row in rows(tx, sql, &[&subjects, &kinds, &floor]).await? {
            let (key, used) = store_ledger::decode_usage(&row)?;
            snap.usage.insert(key, used);
        }
    }
    Ok(snap)
}

async fn exec(tx: &deadpool_postgres::Transaction<'_>, sql: &str, params: Vec<Param<'_>>) -> Result<u64, StoreError> {
    let stmt = tx.prepare_cached(sql).await?;
    Ok(tx.execute(&stmt, &params).await?)
}

fn expect(what: &str, got: u64, want: usize) -> Result<(), StoreError> {
    if got == want as u64 {
        Ok(())
    } else {
        Err(StoreError::Invariant(format!(
            "{what}: {got} rows changed, {want} expected"
        )))
    }
}

/// Bookkeeping that commits with a batch's journals.
struct Side<'a> {
    contacts: Vec<(String, String, i64)>,
    audits: Vec<[String; 4]>,
    /// References by journal, and rail records with their request's position among the
    /// batch's active requests.
    extras: (HashMap<JournalId, &'a str>, Vec<(usize, &'a store_ledger::Record)>),
}

/// Writes a decided batch; `Some((request, reason))` when a rail record of the request at that
/// position (among the active ones) refused it, and the writes must be rolled back.
async fn write(
    tx: &deadpool_postgres::Transaction<'_>,
    w: &WriteSet,
    side: &Side<'_>,
    now_ms: i64,
) -> Result<Option<(usize, &'static str)>, StoreError> {
    let (contacts, audits) = (&side.contacts, &side.audits);
    let (references, records) = &side.extras;
    let js = &w.journals;
    let j_id: Vec<String> = js.iter().map(|j| j.id.to_string()).collect();
    let j_kind: Vec<&str> = js.iter().map(|j| j.kind.as_str()).collect();
    let j_memo: Vec<Option<&str>> = js.iter().map(|j| j.memo.as_deref()).collect();
    let j_scope: Vec<&str> = js.iter().map(|j| j.idempotency.scope.as_str()).collect();
    let j_key: Vec<&str> = js.iter().map(|j| j.idempotency.key.as_str()).collect();
    let j_fp: Vec<&str> = js.iter().map(|j| j.fingerprint.as_str()).collect();
    let j_from: Vec<&str> = js.iter().map(|j| j.from.as_str()).collect();
    let j_to: Vec<&str> = js.iter().map(|j| j.to.as_str()).collect();
    let j_amount: Vec<i64> = js.iter().map(|j| j.amount).collect();
    let j_fee: Vec<i64> = js.iter().map(|j| j.fee).collect();
    let j_currency: Vec<&str> = js.iter().map(|j| j.currency.code()).collect();
    let j_hold: Vec<Option<&str>> = js.iter().map(|j| j.hold.as_ref().map(|h| h.as_str())).collect();
    let j_at: Vec<i64> = js.iter().map(|j| j.created_at_ms).collect();
    let j_reference: Vec<Option<&str>> = js.iter().map(|j| references.get(&j.id).copied()).collect();

    let es: Vec<(&str, &flash_core::ledger::Entry)> = js
        .iter()
        .zip(&j_id)
        .flat_map(|(j, id)| j.entries.iter().map(move |e| (id.as_str(), e)))
        .collect();
    let e_journal: Vec<&str> = es.iter().map(|(id, _)| *id).collect();
    let e_account: Vec<&str> = es.iter().map(|(_, e)| e.account.as_str()).collect();
    let e_currency: Vec<&str> = es.iter().map(|(_, e)| e.currency.code()).collect();
    let e_amount: Vec<i64> = es.iter().map(|(_, e)| e.amount).collect();

    let b_id: Vec<&str> = w.balance_deltas.keys().map(LedgerAccountId::as_str).collect();
    let b_delta: Vec<i64> = w.balance_deltas.values().copied().collect();

    let h_id: Vec<&str> = w.holds_opened.iter().map(|h| h.id.as_str()).collect();
    let h_wallet: Vec<&str> = w.holds_opened.iter().map(|h| h.state.wallet.as_str()).collect();
    let h_pending: Vec<&str> = w.holds_opened.iter().map(|h| h.state.pending.as_str()).collect();
    let h_amount: Vec<i64> = w.holds_opened.iter().map(|h| h.state.amount).collect();
    let h_currency: Vec<&str> = w.holds_opened.iter().map(|h| h.state.currency.code()).collect();
    let h_journal: Vec<String> = w.holds_opened.iter().map(|h| h.journal.to_string()).collect();

    let c_id: Vec<&str> = w.holds_closed.iter().map(|c| c.id.as_str()).collect();
    let c_status: Vec<&str> = w.holds_closed.iter().map(|c| c.status.as_str()).collect();
    let c_journal: Vec<String> = w.holds_closed.iter().map(|c| c.journal.to_string()).collect();

    let u_subject: Vec<&str> = w.usage.keys().map(|(s, _)| s.as_str()).collect();
    let u_kind: Vec<&str> = w.usage.keys().map(|(_, k)| k.as_str()).collect();
    let u_amount: Vec<i64> = w.usage.values().copied().collect();
    let minute = now_ms / 60_000;

    let k_account: Vec<&str> = contacts.iter().map(|c| c.0.as_str()).collect();
    let k_other: Vec<&str> = contacts.iter().map(|c| c.1.as_str()).collect();
    let k_count: Vec<i64> = contacts.iter().map(|c| c.2).collect();

    // Sent in this order on one connection, so the server runs them in this order.
    let journals = exec(
        tx,
        "INSERT INTO journals (id, kind, memo, idem_scope, idem_key, fingerprint, debit_account, credit_account, \
         amount, fee, currency, hold_id, created_at, reference) SELECT * FROM unnest($1::text[], $2::text[], \
         $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[], $9::bigint[], $10::bigint[], \
         $11::text[], $12::text[], $13::bigint[], $14::text[])",
        vec![
            &j_id,
            &j_kind,
            &j_memo,
            &j_scope,
            &j_key,
            &j_fp,
            &j_from,
            &j_to,
            &j_amount,
            &j_fee,
            &j_currency,
            &j_hold,
            &j_at,
            &j_reference,
        ],
    );
    let entries = exec(
        tx,
        "INSERT INTO entries (journal_id, account_id, currency, amount, created_at) \
         SELECT j, a, c, m, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[]) AS e(j, a, c, m)",
        vec![&e_journal, &e_account, &e_currency, &e_amount, &now_ms],
    );
    let balances = exec(
        tx,
        "UPDATE ledger_accounts a SET balance = a.balance + d.delta \
         FROM unnest($1::text[], $2::bigint[]) AS d(id, delta) \
         WHERE a.id = d.id AND (a.kind = 'system' OR a.balance + d.delta >= 0)",
        vec![&b_id, &b_delta],
    );
    let holds = exec(
        tx,
        "INSERT INTO holds (id, wallet_id, pending_account, amount, currency, status, open_journal_id, created_at) \
         SELECT i, w, p, a, c, 'pending', j, $7 FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], \
         $5::text[], $6::text[]) AS h(i, w, p, a, c, j)",
        vec![
            &h_id,
            &h_wallet,
            &h_pending,
            &h_amount,
            &h_currency,
            &h_journal,
            &now_ms,
        ],
    );
    let closures = exec(
        tx,
        "INSERT INTO hold_closures (hold_id, outcome, journal_id, closed_at) \
         SELECT i, s, j, $4 FROM unnest($1::text[], $2::text[], $3::text[]) AS c(i, s, j)",
        vec![&c_id, &c_status, &c_journal, &now_ms],
    );
    let closed = exec(
        tx,
        "UPDATE holds h SET status = c.s FROM unnest($1::text[], $2::text[]) AS c(i, s) \
         WHERE h.id = c.i AND h.status = 'pending'",
        vec![&c_id, &c_status],
    );
    let usage = exec(
        tx,
        "INSERT INTO limit_usage (subject, kind, minute, amount) \
         SELECT s, k, $3, a FROM unnest($1::text[], $2::text[], $4::bigint[]) AS u(s, k, a) \
         ON CONFLICT (subject, kind, minute) DO UPDATE SET amount = limit_usage.amount + excluded.amount",
        vec![&u_subject, &u_kind, &minute, &u_amount],
    );
    let contacts_written = exec(
        tx,
        "INSERT INTO contacts (account_id, contact_account_id, alias, transactions_count, created_at) \
         SELECT a, o, NULL, n, $4 FROM unnest($1::text[], $2::text[], $3::bigint[]) AS c(a, o, n) \
         ON CONFLICT (account_id, contact_account_id) \
         DO UPDATE SET transactions_count = contacts.transactions_count + excluded.transactions_count",
        vec![&k_account, &k_other, &k_count, &now_ms],
    );
    let a_col = |i: usize| audits.iter().map(|a| a[i].as_str()).collect::<Vec<&str>>();
    let (a_actor, a_action, a_subject, a_detail) = (a_col(0), a_col(1), a_col(2), a_col(3));
    let audit = exec(
        tx,
        "INSERT INTO audit_log (actor, action, subject, detail, created_at) \
         SELECT a, b, s, d, $5 FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS x(a, b, s, d)",
        vec![&a_actor, &a_action, &a_subject, &a_detail, &now_ms],
    );
    let changed = try_join_all([
        Box::pin(journals) as std::pin::Pin<Box<dyn std::future::Future<Output = _> + Send>>,
        Box::pin(entries),
        Box::pin(balances),
        Box::pin(holds),
        Box::pin(closures),
        Box::pin(closed),
        Box::pin(usage),
        Box::pin(contacts_written),
        Box::pin(audit),
    ])
    .await?;
    expect("journals", changed[0], js.len())?;
    expect("entries", changed[1], es.len())?;
    expect("balances", changed[2], b_id.len())?;
    expect("holds closed", changed[5], c_id.len())?;
    // Rail records after the journals they belong to (they may refer to the holds).
    for (at, record) in records {
        let params: Vec<Param<'_>> = record.params.iter().map(|v| v as Param<'_>).collect();
        let changed = exec(tx, record.sql, params).await?;
        if let Some(reason) = store_ledger::record_refusal(record, changed)? {
            return Ok(Some((*at, reason)));
        }
    }
    Ok(None)
}
