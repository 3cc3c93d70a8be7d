//! The local database: what the client keeps of the user's data on the user's machine, in one
//! SQLite file, so that history and contacts read with no server. The server stays the truth:
//! a sync brings its changes in by cursor, and the local copy is only ever replaced by what
//! the server said.
//!
//! Transactions sync newest first. A sync walks the server's pages from the top and stops
//! once it reaches the newest transaction of the last complete sync, and has passed every
//! transaction still pending here (a pending one may since have settled or failed). Every
//! write is an upsert, so a sync that was interrupted is simply run again.

use std::future::Future;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension};

/// The schema's migrations, in order; `PRAGMA user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    "CREATE TABLE transactions (
        id           TEXT PRIMARY KEY,
        wallet_id    TEXT,
        created_at   INTEGER NOT NULL,
        direction    TEXT NOT NULL,
        status       TEXT NOT NULL,
        amount       INTEGER NOT NULL,
        fee          INTEGER NOT NULL,
        currency     TEXT NOT NULL,
        memo         TEXT,
        counterparty TEXT,
        detail       TEXT NOT NULL
     );
     CREATE INDEX transactions_newest ON transactions (created_at DESC, id DESC);
     CREATE INDEX transactions_pending ON transactions (created_at) WHERE status = 'PENDING';
     CREATE TABLE sync_state (
        stream TEXT PRIMARY KEY,
        marker TEXT NOT NULL
     );
     CREATE TABLE contacts (
        username     TEXT PRIMARY KEY,
        alias        TEXT,
        tx_count     INTEGER NOT NULL DEFAULT 0
     );",
    "CREATE TABLE messages (
        id         TEXT PRIMARY KEY,
        peer       TEXT NOT NULL,
        author     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        content    TEXT NOT NULL
     );
     CREATE INDEX messages_by_peer ON messages (peer, created_at, id);
     CREATE TABLE outbox (
        event_id TEXT NOT NULL,
        relay    TEXT NOT NULL,
        event    TEXT NOT NULL,
        PRIMARY KEY (event_id, relay)
     );",
    "CREATE TABLE chat_groups (
        relay TEXT NOT NULL,
        id    TEXT NOT NULL,
        name  TEXT NOT NULL,
        PRIMARY KEY (relay, id)
     );
     CREATE TABLE group_posts (
        id         TEXT PRIMARY KEY,
        relay      TEXT NOT NULL,
        group_id   TEXT NOT NULL,
        author     TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        content    TEXT NOT NULL
     );
     CREATE INDEX group_posts_by_group ON group_posts (relay, group_id, created_at, id);",
    "CREATE TABLE ecash_keysets (
        id     TEXT PRIMARY KEY,
        mint   TEXT NOT NULL,
        active INTEGER NOT NULL,
        keyset TEXT NOT NULL
     );
     CREATE TABLE ecash_counters (
        keyset_id TEXT PRIMARY KEY,
        counter   INTEGER NOT NULL
     );
     CREATE TABLE ecash_notes (
        secret    TEXT PRIMARY KEY,
        mint      TEXT NOT NULL,
        keyset_id TEXT NOT NULL,
        amount    INTEGER NOT NULL,
        proof     TEXT NOT NULL
     );
     CREATE TABLE ecash_pending (
        token  TEXT PRIMARY KEY,
        mint   TEXT NOT NULL,
        amount INTEGER NOT NULL
     );",
    "CREATE TABLE settings (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
     );",
];

/// The sync stream of transactions.
const TRANSACTIONS_STREAM: &str = "transactions";

/// Why the local database could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// SQLite refused or failed.
    #[error("local database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Its folder could not be made.
    #[error("local database folder: {0}")]
    Io(#[from] std::io::Error),
    /// The file was written by a newer client.
    #[error("the local database is of a newer client (schema {found}, this client knows {known})")]
    NewerSchema {
        /// The file's schema version.
        found: i64,
        /// The newest this client knows.
        known: i64,
    },
}

/// One transaction as the client keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalTransaction {
    /// The server's transaction id.
    pub id: String,
    /// The wallet it belongs to, when known.
    pub wallet_id: Option<String>,
    /// When it was created, unix seconds.
    pub created_at: i64,
    /// `SEND` or `RECEIVE`.
    pub direction: String,
    /// `SUCCESS`, `PENDING` or `FAILURE`.
    pub status: String,
    /// Signed change to the wallet, minor units, fee included.
    pub amount: i64,
    /// Fee paid, minor units.
    pub fee: i64,
    /// `BTC` or `USD`.
    pub currency: String,
    /// Memo.
    pub memo: Option<String>,
    /// The other side, as shown: a username, an address, an invoice's payee.
    pub counterparty: Option<String>,
    /// The server's whole record, as JSON, for details the columns do not hold.
    pub detail: String,
}

impl LocalTransaction {
    /// Whether its outcome may still change.
    pub fn is_pending(&self) -> bool {
        self.status == "PENDING"
    }
}

/// A contact as the client keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalContact {
    /// The contact's username on the server.
    pub username: String,
    /// The name the user gave them.
    pub alias: Option<String>,
    /// Payments between the two.
    pub tx_count: i64,
}

/// A private message as the client keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalMessage {
    /// The rumor's event id: the same in every copy of the message.
    pub id: String,
    /// The other party (hex public key).
    pub peer: String,
    /// Who wrote it (hex public key): the peer or the user.
    pub author: String,
    /// When it was written, unix seconds.
    pub created_at: i64,
    /// The text.
    pub content: String,
}

/// A post in a group chat as the client keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalGroupPost {
    /// Its event id.
    pub id: String,
    /// Who wrote it (hex public key).
    pub author: String,
    /// When, unix seconds.
    pub created_at: i64,
    /// The text.
    pub content: String,
}

/// One page of the server's transactions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionPage {
    /// The transactions.
    pub transactions: Vec<LocalTransaction>,
    /// The cursor after the last one, when more follow.
    pub next: Option<String>,
}

/// What a sync did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Pages read from the server.
    pub pages: u32,
    /// Transactions the server sent.
    pub seen: u64,
    /// Of those, new here.
    pub added: u64,
    /// Of those, changed since the last sync (a pending one that settled, say).
    pub changed: u64,
}

/// Why a sync stopped.
#[derive(Debug, thiserror::Error)]
pub enum SyncError<E: std::error::Error + 'static> {
    /// Reading a page from the server failed; what was stored so far stays.
    #[error("reading from the server: {0}")]
    Fetch(#[source] E),
    /// Writing here failed.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// The client's local database.
#[derive(Debug)]
pub struct LocalStore {
    conn: Connection,
}

impl LocalStore {
    /// Opens (or creates) the database at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<LocalStore, LocalError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        Self::migrated(Connection::open(path)?)
    }

    /// A database in memory, for a client that keeps nothing (and for tests).
    pub fn in_memory() -> Result<LocalStore, LocalError> {
        Self::migrated(Connection::open_in_memory()?)
    }

    /// Applies the migrations `conn` lacks.
    fn migrated(conn: Connection) -> Result<LocalStore, LocalError> {
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        let applied: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if applied > known {
            return Err(LocalError::NewerSchema { found: applied, known });
        }
        for (n, sql) in MIGRATIONS
            .iter()
            .enumerate()
            .skip(usize::try_from(applied).unwrap_or(0))
        {
            let tx = conn.unchecked_transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", i64::try_from(n + 1).unwrap_or(i64::MAX))?;
            tx.commit()?;
        }
        Ok(LocalStore { conn })
    }

    /// Stores `transactions` (new ones added, known ones replaced) in one write; how many were
    /// new and how many changed.
    pub fn save_transactions(&mut self, transactions: &[LocalTransaction]) -> Result<(u64, u64), LocalError> {
        let tx = self.conn.transaction()?;
        let (mut added, mut changed) = (0, 0);
        {
            let mut find = tx.prepare_cached(
                "SELECT wallet_id, created_at, direction, status, amount, fee, currency, memo, counterparty, detail \
                 FROM transactions WHERE id = ?1",
            )?;
            let mut put = tx.prepare_cached(
                "INSERT INTO transactions (id, wallet_id, created_at, direction, status, amount, fee, currency, memo, \
                 counterparty, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
                 ON CONFLICT (id) DO UPDATE SET wallet_id = COALESCE(excluded.wallet_id, wallet_id), \
                 created_at = excluded.created_at, direction = excluded.direction, status = excluded.status, \
                 amount = excluded.amount, fee = excluded.fee, currency = excluded.currency, memo = excluded.memo, \
                 counterparty = excluded.counterparty, detail = excluded.detail",
            )?;
            for t in transactions {
                let before = find
                    .query_row([&t.id], |r| {
                        Ok(LocalTransaction {
                            id: t.id.clone(),
                            wallet_id: r.get(0)?,
                            created_at: r.get(1)?,
                            direction: r.get(2)?,
                            status: r.get(3)?,
                            amount: r.get(4)?,
                            fee: r.get(5)?,
                            currency: r.get(6)?,
                            memo: r.get(7)?,
                            counterparty: r.get(8)?,
                            detail: r.get(9)?,
                        })
                    })
                    .optional()?;
                // A page that does not say the wallet keeps the one stored.
                let unchanged = before.as_ref().is_some_and(|old| {
                    *old == LocalTransaction {
                        wallet_id: t.wallet_id.clone().or_else(|| old.wallet_id.clone()),
                        ..t.clone()
                    }
                });
                match before {
                    _ if unchanged => continue,
                    None => added += 1,
                    Some(_) => changed += 1,
                }
                put.execute(params![
                    t.id,
                    t.wallet_id,
                    t.created_at,
                    t.direction,
                    t.status,
                    t.amount,
                    t.fee,
                    t.currency,
                    t.memo,
                    t.counterparty,
                    t.detail
                ])?;
            }
        }
        tx.commit()?;
        Ok((added, changed))
    }

    /// Stored transactions, newest first: at most `limit`, older than `before` (a transaction
    /// id) when given.
    pub fn transactions(&self, limit: u32, before: Option<&str>) -> Result<Vec<LocalTransaction>, LocalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, wallet_id, created_at, direction, status, amount, fee, currency, memo, counterparty, detail \
             FROM transactions t WHERE ?1 IS NULL OR (t.created_at, t.id) < \
             (SELECT created_at, id FROM transactions WHERE id = ?1) \
             ORDER BY created_at DESC, id DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![before, limit], |r| {
            Ok(LocalTransaction {
                id: r.get(0)?,
                wallet_id: r.get(1)?,
                created_at: r.get(2)?,
                direction: r.get(3)?,
                status: r.get(4)?,
                amount: r.get(5)?,
                fee: r.get(6)?,
                currency: r.get(7)?,
                memo: r.get(8)?,
                counterparty: r.get(9)?,
                detail: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// How many transactions are stored.
    pub fn transaction_count(&self) -> Result<u64, LocalError> {
        let n: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM transactions", [], |r| r.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// When the oldest transaction still pending here was created.
    fn oldest_pending(&self) -> Result<Option<i64>, LocalError> {
        Ok(self.conn.query_row(
            "SELECT MIN(created_at) FROM transactions WHERE status = 'PENDING'",
            [],
            |r| r.get(0),
        )?)
    }

    /// The marker of a sync stream: the newest item of its last complete sync.
    pub(crate) fn marker(&self, stream: &str) -> Result<Option<String>, LocalError> {
        Ok(self
            .conn
            .query_row("SELECT marker FROM sync_state WHERE stream = ?1", [stream], |r| {
                r.get(0)
            })
            .optional()?)
    }

    /// Records a complete sync of `stream` up to `marker`.
    pub(crate) fn set_marker(&self, stream: &str, marker: &str) -> Result<(), LocalError> {
        self.conn.execute(
            "INSERT INTO sync_state (stream, marker) VALUES (?1, ?2) \
             ON CONFLICT (stream) DO UPDATE SET marker = excluded.marker",
            params![stream, marker],
        )?;
        Ok(())
    }

    /// Replaces the stored contacts with `contacts` (the server's list is the whole truth).
    pub fn save_contacts(&mut self, contacts: &[LocalContact]) -> Result<(), LocalError> {
        let tx = self.conn.transaction()?;
        tx.execute("DELETE FROM contacts", [])?;
        {
            let mut put = tx.prepare_cached("INSERT INTO contacts (username, alias, tx_count) VALUES (?1, ?2, ?3)")?;
            for c in contacts {
                put.execute(params![c.username, c.alias, c.tx_count])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// The stored contacts, by username.
    pub fn contacts(&self) -> Result<Vec<LocalContact>, LocalError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT username, alias, tx_count FROM contacts ORDER BY username")?;
        let rows = stmt.query_map([], |r| {
            Ok(LocalContact {
                username: r.get(0)?,
                alias: r.get(1)?,
                tx_count: r.get(2)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps a message once; whether it was new.
    pub fn save_message(&mut self, m: &LocalMessage) -> Result<bool, LocalError> {
        let added = self.conn.execute(
            "INSERT INTO messages (id, peer, author, created_at, content) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (id) DO NOTHING",
            params![m.id, m.peer, m.author, m.created_at, m.content],
        )?;
        Ok(added == 1)
    }

    /// The conversation with `peer` (hex public key), oldest first: its last `limit` messages.
    pub fn conversation(&self, peer: &str, limit: u32) -> Result<Vec<LocalMessage>, LocalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, peer, author, created_at, content FROM \
             (SELECT * FROM messages WHERE peer = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2) \
             ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map(params![peer, limit], |r| {
            Ok(LocalMessage {
                id: r.get(0)?,
                peer: r.get(1)?,
                author: r.get(2)?,
                created_at: r.get(3)?,
                content: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The peers the user has conversations with, the most recent first, with their last
    /// message's time.
    pub fn conversations(&self) -> Result<Vec<(String, i64)>, LocalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT peer, MAX(created_at) AS last FROM messages GROUP BY peer ORDER BY last DESC, peer",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Sets one of the client's settings (its server, relays, mint, …).
    pub fn set_setting(&mut self, key: &str, value: &str) -> Result<(), LocalError> {
        self.conn.execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![key, value],
        )?;
        Ok(())
    }

    /// The client's settings.
    pub fn settings(&self) -> Result<std::collections::BTreeMap<String, String>, LocalError> {
        let mut stmt = self.conn.prepare_cached("SELECT key, value FROM settings")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Remembers a group the user created or joined.
    pub fn save_group(&mut self, relay: &str, id: &str, name: &str) -> Result<(), LocalError> {
        self.conn.execute(
            "INSERT INTO chat_groups (relay, id, name) VALUES (?1, ?2, ?3) \
             ON CONFLICT (relay, id) DO UPDATE SET name = excluded.name",
            params![relay, id, name],
        )?;
        Ok(())
    }

    /// Forgets a group the user left, with its posts.
    pub fn forget_group(&mut self, relay: &str, id: &str) -> Result<(), LocalError> {
        let tx = self.conn.transaction()?;
        tx.execute(
            "DELETE FROM chat_groups WHERE relay = ?1 AND id = ?2",
            params![relay, id],
        )?;
        tx.execute(
            "DELETE FROM group_posts WHERE relay = ?1 AND group_id = ?2",
            params![relay, id],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// The groups the user is in: (relay, id, name).
    pub fn groups(&self) -> Result<Vec<(String, String, String)>, LocalError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT relay, id, name FROM chat_groups ORDER BY name, relay, id")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps a group's `posts` once each and drops the ones in `deleted` (by event id).
    pub fn save_group_posts(
        &mut self,
        relay: &str,
        group: &str,
        posts: &[LocalGroupPost],
        deleted: &[String],
    ) -> Result<(), LocalError> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO group_posts (id, relay, group_id, author, created_at, content) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (id) DO NOTHING",
            )?;
            for p in posts {
                put.execute(params![p.id, relay, group, p.author, p.created_at, p.content])?;
            }
            let mut drop =
                tx.prepare_cached("DELETE FROM group_posts WHERE id = ?1 AND relay = ?2 AND group_id = ?3")?;
            for id in deleted {
                drop.execute(params![id, relay, group])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A group's posts kept here, oldest first.
    pub fn group_posts(&self, relay: &str, group: &str) -> Result<Vec<LocalGroupPost>, LocalError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id, author, created_at, content FROM group_posts WHERE relay = ?1 AND group_id = ?2 \
             ORDER BY created_at, id",
        )?;
        let rows = stmt.query_map(params![relay, group], |r| {
            Ok(LocalGroupPost {
                id: r.get(0)?,
                author: r.get(1)?,
                created_at: r.get(2)?,
                content: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Keeps a mint's keyset (its JSON, keys included) for offline checks.
    pub(crate) fn save_keyset(&mut self, mint: &str, keyset: &str, id: &str, active: bool) -> Result<(), LocalError> {
        self.conn.execute(
            "INSERT INTO ecash_keysets (id, mint, active, keyset) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (id) DO UPDATE SET active = excluded.active, keyset = excluded.keyset",
            params![id, mint, active, keyset],
        )?;
        Ok(())
    }

    /// A mint's keysets kept here, as JSON.
    pub(crate) fn keysets(&self, mint: &str) -> Result<Vec<String>, LocalError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT keyset FROM ecash_keysets WHERE mint = ?1 ORDER BY active DESC, id")?;
        let rows = stmt.query_map([mint], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// The next NUT-13 counter of a keyset.
    pub(crate) fn ecash_counter(&self, keyset: &str) -> Result<u32, LocalError> {
        let n: Option<i64> = self
            .conn
            .query_row(
                "SELECT counter FROM ecash_counters WHERE keyset_id = ?1",
                [keyset],
                |r| r.get(0),
            )
            .optional()?;
        Ok(n.and_then(|n| u32::try_from(n).ok()).unwrap_or(0))
    }

    /// Moves a keyset's counter up to `to` (never down: a secret is never derived twice).
    pub(crate) fn raise_ecash_counter(&mut self, keyset: &str, to: u32) -> Result<(), LocalError> {
        self.conn.execute(
            "INSERT INTO ecash_counters (keyset_id, counter) VALUES (?1, ?2) \
             ON CONFLICT (keyset_id) DO UPDATE SET counter = MAX(counter, excluded.counter)",
            params![keyset, to],
        )?;
        Ok(())
    }

    /// Keeps spendable notes: (secret, proof JSON, amount).
    pub(crate) fn add_notes(
        &mut self,
        mint: &str,
        keyset: &str,
        notes: &[(String, String, u64)],
    ) -> Result<(), LocalError> {
        let tx = self.conn.transaction()?;
        {
            let mut put = tx.prepare_cached(
                "INSERT INTO ecash_notes (secret, mint, keyset_id, amount, proof) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (secret) DO NOTHING",
            )?;
            for (secret, proof, amount) in notes {
                put.execute(params![
                    secret,
                    mint,
                    keyset,
                    i64::try_from(*amount).unwrap_or(i64::MAX),
                    proof
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A mint's spendable notes, as proof JSON.
    pub(crate) fn ecash_notes(&self, mint: &str) -> Result<Vec<String>, LocalError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT proof FROM ecash_notes WHERE mint = ?1")?;
        let rows = stmt.query_map([mint], |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// What a mint's spendable notes are worth, sats.
    pub(crate) fn ecash_total(&self, mint: &str) -> Result<u64, LocalError> {
        let n: i64 = self.conn.query_row(
            "SELECT COALESCE(SUM(amount), 0) FROM ecash_notes WHERE mint = ?1",
            [mint],
            |r| r.get(0),
        )?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// Forgets notes that were spent (by their secrets).
    pub(crate) fn spend_notes(&mut self, secrets: &[String]) -> Result<(), LocalError> {
        let tx = self.conn.transaction()?;
        {
            let mut drop = tx.prepare_cached("DELETE FROM ecash_notes WHERE secret = ?1")?;
            for secret in secrets {
                drop.execute([secret])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Keeps a token received while the mint was unreachable.
    pub(crate) fn add_pending_token(&mut self, mint: &str, token: &str, amount: u64) -> Result<(), LocalError> {
        self.conn.execute(
            "INSERT INTO ecash_pending (token, mint, amount) VALUES (?1, ?2, ?3) ON CONFLICT (token) DO NOTHING",
            params![token, mint, i64::try_from(amount).unwrap_or(i64::MAX)],
        )?;
        Ok(())
    }

    /// A mint's pending tokens and their amounts.
    pub(crate) fn pending_tokens(&self, mint: &str) -> Result<Vec<(String, u64)>, LocalError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT token, amount FROM ecash_pending WHERE mint = ?1 ORDER BY rowid")?;
        let rows = stmt.query_map([mint], |r| {
            Ok((r.get::<_, String>(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0)))
        })?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets a pending token once redeemed (or found spent).
    pub(crate) fn remove_pending_token(&mut self, token: &str) -> Result<(), LocalError> {
        self.conn
            .execute("DELETE FROM ecash_pending WHERE token = ?1", [token])?;
        Ok(())
    }

    /// Keeps an event (JSON) to send to `relay` later.
    pub(crate) fn outbox_add(&mut self, event_id: &str, relay: &str, event: &str) -> Result<(), LocalError> {
        self.conn.execute(
            "INSERT INTO outbox (event_id, relay, event) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
            params![event_id, relay, event],
        )?;
        Ok(())
    }

    /// What waits to be sent: (event id, relay, event JSON).
    pub(crate) fn outbox(&self) -> Result<Vec<(String, String, String)>, LocalError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT event_id, relay, event FROM outbox ORDER BY rowid")?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Forgets an outbox entry once its relay took the event.
    pub(crate) fn outbox_done(&mut self, event_id: &str, relay: &str) -> Result<(), LocalError> {
        self.conn.execute(
            "DELETE FROM outbox WHERE event_id = ?1 AND relay = ?2",
            params![event_id, relay],
        )?;
        Ok(())
    }

    /// Brings the server's transactions in: pages from `fetch` (given the cursor to continue
    /// after, `None` for the newest) are stored as they come, until the last complete sync's
    /// newest transaction is reached and every transaction pending here has been seen again.
    /// `progress` hears each page's report so far.
    pub async fn sync_transactions<F, Fut, E>(
        &mut self,
        mut fetch: F,
        mut progress: impl FnMut(&SyncReport),
    ) -> Result<SyncReport, SyncError<E>>
    where
        F: FnMut(Option<String>) -> Fut,
        Fut: Future<Output = Result<TransactionPage, E>>,
        E: std::error::Error + 'static,
    {
        let marker = self.marker(TRANSACTIONS_STREAM)?;
        let oldest_pending = self.oldest_pending()?;
        let mut report = SyncReport::default();
        let mut newest = None;
        let mut after = None;
        loop {
            let page = fetch(after.take()).await.map_err(SyncError::Fetch)?;
            let (added, changed) = self.save_transactions(&page.transactions)?;
            report.pages += 1;
            report.seen += page.transactions.len() as u64;
            report.added += added;
            report.changed += changed;
            progress(&report);
            if newest.is_none() {
                newest = page.transactions.first().map(|t| t.id.clone());
            }
            let reached_marker = marker
                .as_deref()
                .is_some_and(|m| page.transactions.iter().any(|t| t.id == m));
            let past_pending = match (oldest_pending, page.transactions.last()) {
                (Some(pending), Some(last)) => last.created_at < pending,
                _ => true,
            };
            match page.next {
                Some(next) if !(reached_marker && past_pending) => after = Some(next),
                _ => break,
            }
        }
        if let Some(newest) = newest {
            self.set_marker(TRANSACTIONS_STREAM, &newest)?;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    /// A transaction created at `at`, with `status`.
    fn tx(id: u32, at: i64, status: &str) -> LocalTransaction {
        LocalTransaction {
            id: format!("t{id:06}"),
            wallet_id: Some("w".into()),
            created_at: at,
            direction: "RECEIVE".into(),
            status: status.into(),
            amount: i64::from(id),
            fee: 0,
            currency: "BTC".into(),
            memo: None,
            counterparty: Some("bob".into()),
            detail: "{}".into(),
        }
    }

    /// A server holding `txs` (newest first) in pages of `size`; counts the pages it served.
    struct Server {
        txs: RefCell<Vec<LocalTransaction>>,
        size: usize,
        served: RefCell<u32>,
    }

    #[derive(Debug, thiserror::Error)]
    #[error("the server is down")]
    struct Down;

    impl Server {
        fn new(n: u32, size: usize) -> Server {
            let txs = (1..=n).rev().map(|i| tx(i, i64::from(i), "SUCCESS")).collect();
            Server {
                txs: RefCell::new(txs),
                size,
                served: RefCell::new(0),
            }
        }

        fn page(&self, after: Option<String>) -> Result<TransactionPage, Down> {
            *self.served.borrow_mut() += 1;
            let txs = self.txs.borrow();
            let start = after.map_or(0, |a| a.parse::<usize>().unwrap_or(usize::MAX));
            let end = (start + self.size).min(txs.len());
            let transactions = txs.get(start..end).ok_or(Down)?.to_vec();
            Ok(TransactionPage {
                transactions,
                next: (end < txs.len()).then(|| end.to_string()),
            })
        }
    }

    async fn sync(store: &mut LocalStore, server: &Server) -> SyncReport {
        store
            .sync_transactions(|after| std::future::ready(server.page(after)), |_| {})
            .await
            .expect("sync")
    }

    #[tokio::test]
    async fn a_first_sync_takes_everything_and_the_next_only_what_is_new() {
        let mut store = LocalStore::in_memory().expect("store");
        let server = Server::new(250, 100);
        let first = sync(&mut store, &server).await;
        assert_eq!((first.pages, first.seen, first.added), (3, 250, 250));
        assert_eq!(store.transaction_count().expect("count"), 250);

        // Nothing new: one page is read, and it holds the marker.
        let again = sync(&mut store, &server).await;
        assert_eq!((again.pages, again.added, again.changed), (1, 0, 0));

        // Three new ones on top.
        for i in 251..=253 {
            server.txs.borrow_mut().insert(0, tx(i, i64::from(i), "SUCCESS"));
        }
        let news = sync(&mut store, &server).await;
        assert_eq!((news.pages, news.added), (1, 3));
        let newest = store.transactions(2, None).expect("read");
        assert_eq!(
            newest.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["t000253", "t000252"]
        );
        let older = store.transactions(2, Some("t000252")).expect("read");
        assert_eq!(
            older.iter().map(|t| t.id.as_str()).collect::<Vec<_>>(),
            ["t000251", "t000250"]
        );
    }

    #[tokio::test]
    async fn a_pending_transaction_is_followed_until_it_settles() {
        let mut store = LocalStore::in_memory().expect("store");
        let server = Server::new(300, 50);
        server.txs.borrow_mut()[280] = tx(20, 20, "PENDING");
        sync(&mut store, &server).await;
        // It settles; the next sync walks down to it though the marker is on the first page.
        server.txs.borrow_mut()[280] = tx(20, 20, "SUCCESS");
        let report = sync(&mut store, &server).await;
        assert_eq!((report.pages, report.changed), (6, 1));
        let settled = store.transactions(1, Some("t000021")).expect("read");
        assert_eq!(settled[0].status, "SUCCESS");
        // Nothing pending any more: back to one page.
        assert_eq!(sync(&mut store, &server).await.pages, 1);
    }

    #[tokio::test]
    async fn an_interrupted_sync_keeps_what_it_stored_and_runs_again() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("flash.db");
        let server = Server::new(120, 50);
        {
            let mut store = LocalStore::open(&path).expect("store");
            let mut n = 0;
            let failed = store
                .sync_transactions(
                    |after| {
                        n += 1;
                        std::future::ready(if n == 2 { Err(Down) } else { server.page(after) })
                    },
                    |_| {},
                )
                .await;
            assert!(matches!(failed, Err(SyncError::Fetch(Down))));
            assert_eq!(store.transaction_count().expect("count"), 50);
        }
        // Read offline after a restart, then synced to the end.
        let mut store = LocalStore::open(&path).expect("reopen");
        assert_eq!(store.transactions(100, None).expect("offline").len(), 50);
        let report = sync(&mut store, &server).await;
        assert_eq!((report.added, store.transaction_count().expect("count")), (70, 120));
    }

    #[test]
    fn contacts_are_replaced_by_the_servers_list() {
        let mut store = LocalStore::in_memory().expect("store");
        let bob = LocalContact {
            username: "bob".into(),
            alias: Some("Bob".into()),
            tx_count: 2,
        };
        let carol = LocalContact {
            username: "carol".into(),
            alias: None,
            tx_count: 0,
        };
        store.save_contacts(&[carol.clone(), bob.clone()]).expect("save");
        assert_eq!(store.contacts().expect("read"), [bob.clone(), carol]);
        store.save_contacts(std::slice::from_ref(&bob)).expect("save");
        assert_eq!(store.contacts().expect("read"), [bob]);
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("flash.db");
        LocalStore::open(&path).expect("create");
        Connection::open(&path)
            .and_then(|c| c.pragma_update(None, "user_version", 99))
            .expect("bump");
        assert!(matches!(
            LocalStore::open(&path),
            Err(LocalError::NewerSchema { found: 99, .. })
        ));
    }
}
