//! [`Db`]: one interface over both backends for everything except ledger postings.

use crate::ledger::Record;
use crate::sql::{Row, Value};
use crate::{postgres, sqlite, StoreError};

/// A database handle: run a query, a statement, or a script of statements in one
/// transaction. SQL uses `$N` placeholders and the subset both dialects share.
#[derive(Clone)]
pub enum Db {
    /// SQLite, through a small pool of connection threads.
    Sqlite(sqlite::Pool),
    /// PostgreSQL, through deadpool.
    Postgres(deadpool_postgres::Pool),
}

impl Db {
    /// Runs a query and returns its rows.
    pub async fn query(&self, sql: &str, params: Vec<Value>) -> Result<Vec<Row>, StoreError> {
        match self {
            Db::Sqlite(pool) => pool.query(sql, params).await,
            Db::Postgres(pool) => postgres::query(pool, sql, &params).await,
        }
    }

    /// Runs a query expected to return at most one row.
    pub async fn query_opt(&self, sql: &str, params: Vec<Value>) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params).await?.into_iter().next())
    }

    /// Runs a statement and returns the number of rows it changed.
    pub async fn execute(&self, sql: &str, params: Vec<Value>) -> Result<u64, StoreError> {
        self.script(vec![(sql.to_string(), params)])
            .await
            .map(|n| n.first().copied().unwrap_or(0))
    }

    /// Runs several queries against one consistent snapshot (a read-only transaction), so
    /// cross-table checks are not fooled by concurrent commits.
    pub async fn snapshot(&self, queries: Vec<(String, Vec<Value>)>) -> Result<Vec<Vec<Row>>, StoreError> {
        match self {
            Db::Sqlite(pool) => pool.snapshot(queries).await,
            Db::Postgres(pool) => postgres::snapshot(pool, queries).await,
        }
    }

    /// Runs statements in one transaction: all or nothing. Returns rows changed per statement.
    pub async fn script(&self, statements: Vec<(String, Vec<Value>)>) -> Result<Vec<u64>, StoreError> {
        match self {
            Db::Sqlite(pool) => pool.script(statements, None).await,
            Db::Postgres(pool) => postgres::script(pool, statements, None).await,
        }
    }

    /// Like [`Db::script`], but every statement must change exactly `rows` rows, or nothing is
    /// written and the answer is [`StoreError::Refused`].
    pub async fn script_exact(&self, statements: Vec<(String, Vec<Value>)>, rows: u64) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(pool) => pool.script(statements, Some(rows)).await,
            Db::Postgres(pool) => postgres::script(pool, statements, Some(rows)).await,
        }
        .map(|_| ())
    }
}

impl Db {
    /// The size of SQLite's write-ahead log file, bytes; `None` on PostgreSQL.
    pub(crate) fn sqlite_wal_bytes(&self) -> Option<u64> {
        match self {
            Db::Sqlite(pool) => Some(pool.wal_bytes()),
            Db::Postgres(_) => None,
        }
    }

    /// Applies rail records in one transaction, without a journal: all or nothing. A record
    /// that changes other than its expected rows refuses the whole (with its reason).
    pub async fn apply(&self, records: Vec<Record>) -> Result<(), StoreError> {
        match self {
            Db::Sqlite(pool) => pool.apply(records).await,
            Db::Postgres(pool) => postgres::apply(pool, records).await,
        }
    }
}

/// Fails when a statement changed other than the expected number of rows.
pub(crate) fn check_rows(changed: u64, expected: Option<u64>) -> Result<(), StoreError> {
    match expected {
        Some(n) if n != changed => Err(StoreError::Refused("a row was not in the state the change expected")),
        _ => Ok(()),
    }
}
