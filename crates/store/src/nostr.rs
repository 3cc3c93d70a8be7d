//! The NOSTR relay's storage: events with their indexed tags, authors' deletions (NIP-09),
//! and the pubkeys Flash users set. Events are saved in batches, one transaction per batch;
//! the database decides what is a duplicate or an outdated version (unique keys), so two
//! relay nodes writing to one PostgreSQL agree.

use std::collections::{HashMap, HashSet};

use flash_core::{UserId, Username, WalletId};

use crate::sql::{params, placeholders, Value};
use crate::{Store, StoreError};

/// An event the relay has validated, ready to keep.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// Event id, 64 lower-case hex characters.
    pub id: String,
    /// Author, 64 lower-case hex characters.
    pub pubkey: String,
    /// Kind, 0..=65535.
    pub kind: i64,
    /// Seconds since the epoch, as the author set it.
    pub created_at: i64,
    /// For replaceable (`Some("")`) and addressable (`Some(d)`) kinds: only the newest version
    /// of (pubkey, kind, d) is kept.
    pub d_tag: Option<String>,
    /// NIP-40 expiration, seconds since the epoch.
    pub expires_at: Option<i64>,
    /// Lower-cased content for NIP-50 search, for kinds whose content is text.
    pub search: Option<String>,
    /// Single-letter tags (name, first value), for `#x` filters.
    pub tags: Vec<(String, String)>,
    /// The event as the relay serves it.
    pub raw: String,
    /// For a deletion request (kind 5): what it deletes.
    pub deletes: Vec<DeleteTarget>,
}

/// What a deletion request (NIP-09) deletes, of its own author's events.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeleteTarget {
    /// One event, by id.
    Event(String),
    /// Every version of an addressable event `kind:pubkey:d` up to the request's time.
    Address {
        /// The kind.
        kind: i64,
        /// The `d` value.
        d_tag: String,
    },
}

/// What became of an event given to [`Store::nostr_save`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SaveOutcome {
    /// Kept (and, for a replaceable kind, older versions dropped).
    Saved,
    /// The relay already has this event.
    Duplicate,
    /// A newer version of this replaceable or addressable event is kept.
    Outdated,
    /// Its author deleted it.
    Deleted,
}

/// A query for stored events: one NIP-01 filter, in store terms. Empty lists do not
/// restrict; every listed field must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventQuery {
    /// Event ids (hex).
    pub ids: Vec<String>,
    /// Authors (hex).
    pub authors: Vec<String>,
    /// Kinds.
    pub kinds: Vec<i64>,
    /// Per tag name, the values of which one must be present.
    pub tags: Vec<(String, Vec<String>)>,
    /// Oldest `created_at`, inclusive.
    pub since: Option<i64>,
    /// Newest `created_at`, inclusive.
    pub until: Option<i64>,
    /// Lower-cased words that must all appear in the content (NIP-50).
    pub words: Vec<String>,
    /// Most events returned, newest first.
    pub limit: u64,
}

/// Who reads: events of `private_kinds` are visible only when they `p`-tag one of `pubkeys`
/// (NIP-59 gift wraps to their recipient), and events of private NIP-29 groups only when one
/// of `pubkeys` is a member.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Readers {
    /// Kinds served only to their recipients.
    pub private_kinds: Vec<i64>,
    /// The pubkeys this reader authenticated as.
    pub pubkeys: Vec<String>,
}

/// Statement text for saving events.
const DELETE_OLDER_TAGS: &str = "DELETE FROM nostr_tags WHERE event_id IN (SELECT id FROM nostr_events \
     WHERE pubkey = $1 AND kind = $2 AND d_tag = $3 AND (created_at < $4 OR (created_at = $4 AND id > $5)))";
const DELETE_OLDER: &str = "DELETE FROM nostr_events WHERE pubkey = $1 AND kind = $2 AND d_tag = $3 \
     AND (created_at < $4 OR (created_at = $4 AND id > $5))";
const INSERT_EVENT: &str = "INSERT INTO nostr_events \
     (id, pubkey, kind, created_at, d_tag, expires_at, search, raw, received_at) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING";
const DELETE_EVENT_TAGS: &str = "DELETE FROM nostr_tags WHERE event_id IN \
     (SELECT id FROM nostr_events WHERE id = $1 AND pubkey = $2 AND kind <> 5)";
const DELETE_EVENT: &str = "DELETE FROM nostr_events WHERE id = $1 AND pubkey = $2 AND kind <> 5";
const DELETE_ADDRESS_TAGS: &str = "DELETE FROM nostr_tags WHERE event_id IN (SELECT id FROM nostr_events \
     WHERE pubkey = $1 AND kind = $2 AND d_tag = $3 AND created_at <= $4)";
const DELETE_ADDRESS: &str =
    "DELETE FROM nostr_events WHERE pubkey = $1 AND kind = $2 AND d_tag = $3 AND created_at <= $4";
const RECORD_DELETION: &str = "INSERT INTO nostr_deletions (target, pubkey, until) VALUES ($1, $2, $3) \
     ON CONFLICT (target, pubkey) DO UPDATE SET until = \
     CASE WHEN excluded.until > nostr_deletions.until THEN excluded.until ELSE nostr_deletions.until END";

/// The address a deletion of an addressable event is recorded under.
fn address(kind: i64, pubkey: &str, d_tag: &str) -> String {
    format!("{kind}:{pubkey}:{d_tag}")
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
fn like_pattern(word: &str) -> String {
    let mut out = String::with_capacity(word.len() + 2);
    out.push('%');
    for c in word.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Builds `WHERE` conditions over `nostr_events e` for one query, numbering parameters on
/// from `params.len() + 1`.
fn conditions(q: &EventQuery, readers: &Readers, now_s: i64, params: &mut Vec<Value>) -> String {
    let mut conds = vec![];
    let list = |column: &str, values: Vec<Value>, params: &mut Vec<Value>| {
        let from = params.len() + 1;
        let n = values.len();
        params.extend(values);
        format!("{column} IN ({})", placeholders(from, n))
    };
    if !q.ids.is_empty() {
        conds.push(list(
            "e.id",
            q.ids.iter().map(|v| Value::from(v.as_str())).collect(),
            params,
        ));
    }
    if !q.authors.is_empty() {
        conds.push(list(
            "e.pubkey",
            q.authors.iter().map(|v| Value::from(v.as_str())).collect(),
            params,
        ));
    }
    if !q.kinds.is_empty() {
        conds.push(list("e.kind", q.kinds.iter().map(|k| Value::Int(*k)).collect(), params));
    }
    for (name, values) in &q.tags {
        params.push(Value::from(name.as_str()));
        let name_at = params.len();
        let inner = list(
            "value",
            values.iter().map(|v| Value::from(v.as_str())).collect(),
            params,
        );
        conds.push(format!(
            "e.id IN (SELECT event_id FROM nostr_tags WHERE name = ${name_at} AND {inner})"
        ));
    }
    if let Some(since) = q.since {
        params.push(Value::Int(since));
        conds.push(format!("e.created_at >= ${}", params.len()));
    }
    if let Some(until) = q.until {
        params.push(Value::Int(until));
        conds.push(format!("e.created_at <= ${}", params.len()));
    }
    for word in &q.words {
        params.push(Value::Text(like_pattern(word)));
        conds.push(format!("e.search LIKE ${} ESCAPE '\\'", params.len()));
    }
    params.push(Value::Int(now_s));
    conds.push(format!("(e.expires_at IS NULL OR e.expires_at > ${})", params.len()));
    // Events of private groups (NIP-29) only to their members.
    let members = if readers.pubkeys.is_empty() {
        "FALSE".to_string()
    } else {
        list(
            "m.pubkey",
            readers.pubkeys.iter().map(|v| Value::from(v.as_str())).collect(),
            params,
        )
    };
    conds.push(format!(
        "e.id NOT IN (SELECT t.event_id FROM nostr_tags t JOIN nostr_groups g ON g.id = t.value \
         WHERE t.name = 'h' AND g.private = 1 AND NOT EXISTS \
         (SELECT 1 FROM nostr_group_members m WHERE m.group_id = g.id AND {members}))"
    ));
    if !readers.private_kinds.is_empty() {
        let kinds = list(
            "e.kind",
            readers.private_kinds.iter().map(|k| Value::Int(*k)).collect(),
            params,
        );
        conds.push(if readers.pubkeys.is_empty() {
            format!("NOT ({kinds})")
        } else {
            let readers = list(
                "value",
                readers.pubkeys.iter().map(|v| Value::from(v.as_str())).collect(),
                params,
            );
            format!("(NOT ({kinds}) OR e.id IN (SELECT event_id FROM nostr_tags WHERE name = 'p' AND {readers}))")
        });
    }
    conds.join(" AND ")
}

impl Store {
    /// Saves a batch of events, in order (a later version in the batch replaces an earlier
    /// one), and says what became of each. The batch is one transaction; if it fails as a
    /// whole, each event is saved again alone, so an event the database refuses fails alone
    /// and its neighbours are kept.
    pub async fn nostr_save(&self, events: &[NewEvent]) -> Vec<Result<SaveOutcome, StoreError>> {
        let error = match self.nostr_save_batch(events).await {
            Ok(outcomes) => return outcomes.into_iter().map(Ok).collect(),
            Err(e) => e,
        };
        if let [_] = events {
            return vec![Err(error)];
        }
        tracing::warn!(error = %error, events = events.len(), "relay batch failed; saving its events one by one");
        let mut out = Vec::with_capacity(events.len());
        for event in events {
            let alone = self.nostr_save_batch(std::slice::from_ref(event)).await;
            out.push(alone.and_then(|o| {
                o.first()
                    .copied()
                    .ok_or(StoreError::Invariant("an event saved alone has no outcome".into()))
            }));
        }
        out
    }

    /// Saves a batch of events in one transaction (see [`Store::nostr_save`]).
    async fn nostr_save_batch(&self, events: &[NewEvent]) -> Result<Vec<SaveOutcome>, StoreError> {
        if events.is_empty() {
            return Ok(vec![]);
        }
        let (existing, deleted) = self.nostr_known(events).await?;
        let now_ms = self.now_ms();
        let mut outcomes = vec![SaveOutcome::Saved; events.len()];
        let mut statements = vec![];
        // Which statement inserts each event still being saved.
        let mut inserts = vec![];
        for (i, e) in events.iter().enumerate() {
            let deleted_at = |target: String| deleted.get(&(target, e.pubkey.clone())).copied();
            let by_address = e
                .d_tag
                .as_ref()
                .and_then(|d| deleted_at(address(e.kind, &e.pubkey, d)))
                .is_some_and(|until| until >= e.created_at);
            if existing.contains(&e.id) {
                outcomes[i] = SaveOutcome::Duplicate;
                continue;
            }
            if by_address || deleted_at(e.id.clone()).is_some() {
                outcomes[i] = SaveOutcome::Deleted;
                continue;
            }
            if let Some(d) = &e.d_tag {
                let p = params![e.pubkey.as_str(), e.kind, d.as_str(), e.created_at, e.id.as_str()];
                statements.push((DELETE_OLDER_TAGS.to_string(), p.clone()));
                statements.push((DELETE_OLDER.to_string(), p));
            }
            inserts.push((i, statements.len()));
            statements.push((
                INSERT_EVENT.to_string(),
                params![
                    e.id.as_str(),
                    e.pubkey.as_str(),
                    e.kind,
                    e.created_at,
                    e.d_tag.clone(),
                    e.expires_at,
                    e.search.clone(),
                    e.raw.as_str(),
                    now_ms
                ],
            ));
            if !e.tags.is_empty() {
                statements.push(insert_tags(e));
            }
            for target in &e.deletes {
                statements.extend(deletion(e, target));
            }
        }
        let changed = self.db.script(statements).await?;
        for (i, at) in inserts {
            if changed.get(at).copied().unwrap_or(0) == 0 {
                // Not a duplicate (checked above, or it would have been one in this batch):
                // a newer version is kept.
                outcomes[i] = if events[..i].iter().any(|e| e.id == events[i].id) {
                    SaveOutcome::Duplicate
                } else {
                    SaveOutcome::Outdated
                };
            }
        }
        Ok(outcomes)
    }

    /// Of a batch, the ids already stored and the deletions its authors recorded against its
    /// events, by (target, author) with the time they reach up to.
    async fn nostr_known(
        &self,
        events: &[NewEvent],
    ) -> Result<(HashSet<String>, HashMap<(String, String), i64>), StoreError> {
        let ids: Vec<Value> = events.iter().map(|e| Value::from(e.id.as_str())).collect();
        let mut targets: Vec<Value> = ids.clone();
        let mut pubkeys: Vec<Value> = events.iter().map(|e| Value::from(e.pubkey.as_str())).collect();
        targets.extend(
            events
                .iter()
                .filter_map(|e| e.d_tag.as_ref().map(|d| Value::Text(address(e.kind, &e.pubkey, d)))),
        );
        pubkeys.dedup();
        let found = format!(
            "SELECT id FROM nostr_events WHERE id IN ({})",
            placeholders(1, ids.len())
        );
        let deleted = format!(
            "SELECT target, pubkey, until FROM nostr_deletions WHERE target IN ({}) AND pubkey IN ({})",
            placeholders(1, targets.len()),
            placeholders(targets.len() + 1, pubkeys.len())
        );
        targets.extend(pubkeys);
        let rows = self.db.snapshot(vec![(found, ids), (deleted, targets)]).await?;
        let mut existing = HashSet::new();
        let mut deletions = HashMap::new();
        for row in rows.first().map(Vec::as_slice).unwrap_or_default() {
            existing.insert(row.text(0)?);
        }
        for row in rows.get(1).map(Vec::as_slice).unwrap_or_default() {
            deletions.insert((row.text(0)?, row.text(1)?), row.int(2)?);
        }
        Ok((existing, deletions))
    }

    /// Stored events matching one query, newest first (ties by id), as served.
    pub async fn nostr_query(&self, q: &EventQuery, readers: &Readers, now_s: i64) -> Result<Vec<String>, StoreError> {
        let mut params = vec![];
        let conds = conditions(q, readers, now_s, &mut params);
        params.push(Value::Int(i64::try_from(q.limit).unwrap_or(i64::MAX)));
        let sql = format!(
            "SELECT e.raw FROM nostr_events e WHERE {conds} ORDER BY e.created_at DESC, e.id LIMIT ${}",
            params.len()
        );
        self.db.query(&sql, params).await?.iter().map(|r| r.text(0)).collect()
    }

    /// How many stored events match any of the queries (NIP-45), each counted once.
    pub async fn nostr_count(&self, queries: &[EventQuery], readers: &Readers, now_s: i64) -> Result<u64, StoreError> {
        if queries.is_empty() {
            return Ok(0);
        }
        let mut params = vec![];
        let any = queries
            .iter()
            .map(|q| format!("({})", conditions(q, readers, now_s, &mut params)))
            .collect::<Vec<_>>()
            .join(" OR ");
        let sql = format!("SELECT COUNT(*) FROM nostr_events e WHERE {any}");
        let n = self.db.query_opt(&sql, params).await?.map(|r| r.int(0)).transpose()?;
        Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
    }

    /// Drops events whose NIP-40 expiration has passed; returns how many.
    pub async fn nostr_purge_expired(&self, now_s: i64) -> Result<u64, StoreError> {
        let changed = self
            .db
            .script(vec![
                (
                    "DELETE FROM nostr_tags WHERE event_id IN \
                     (SELECT id FROM nostr_events WHERE expires_at IS NOT NULL AND expires_at <= $1)"
                        .to_string(),
                    params![now_s],
                ),
                (
                    "DELETE FROM nostr_events WHERE expires_at IS NOT NULL AND expires_at <= $1".to_string(),
                    params![now_s],
                ),
            ])
            .await?;
        Ok(changed.get(1).copied().unwrap_or(0))
    }

    /// How many events the relay keeps.
    pub async fn nostr_event_count(&self) -> Result<u64, StoreError> {
        let n = self
            .db
            .query_opt("SELECT COUNT(*) FROM nostr_events", vec![])
            .await?
            .map(|r| r.int(0))
            .transpose()?;
        Ok(u64::try_from(n.unwrap_or(0)).unwrap_or(0))
    }
}

/// Inserts an event's tags, only if the event itself is stored (a version refused as outdated
/// inserted nothing, and neither do its tags).
fn insert_tags(e: &NewEvent) -> (String, Vec<Value>) {
    let mut p = params![e.id.as_str(), e.created_at];
    let mut rows = Vec::with_capacity(e.tags.len());
    for (name, value) in &e.tags {
        p.push(Value::from(name.as_str()));
        p.push(Value::from(value.as_str()));
        rows.push(format!("(${}, ${})", p.len() - 1, p.len()));
    }
    let sql = format!(
        "INSERT INTO nostr_tags (event_id, name, value, created_at) \
         SELECT e.id, v.column1, v.column2, $2 FROM nostr_events e, (VALUES {}) v \
         WHERE e.id = $1 ON CONFLICT DO NOTHING",
        rows.join(", ")
    );
    (sql, p)
}

/// The statements that carry out one target of a deletion request.
fn deletion(e: &NewEvent, target: &DeleteTarget) -> Vec<(String, Vec<Value>)> {
    match target {
        DeleteTarget::Event(id) => {
            let p = params![id.as_str(), e.pubkey.as_str()];
            vec![
                (DELETE_EVENT_TAGS.to_string(), p.clone()),
                (DELETE_EVENT.to_string(), p),
                (
                    RECORD_DELETION.to_string(),
                    params![id.as_str(), e.pubkey.as_str(), e.created_at],
                ),
            ]
        }
        DeleteTarget::Address { kind, d_tag } => {
            let p = params![e.pubkey.as_str(), *kind, d_tag.as_str(), e.created_at];
            vec![
                (DELETE_ADDRESS_TAGS.to_string(), p.clone()),
                (DELETE_ADDRESS.to_string(), p),
                (
                    RECORD_DELETION.to_string(),
                    params![address(*kind, &e.pubkey, d_tag), e.pubkey.as_str(), e.created_at],
                ),
            ]
        }
    }
}

impl Store {
    /// Sets (or, with `None`, clears) the NOSTR pubkey of a user. A pubkey belongs to one user:
    /// taking one another user holds is a unique violation.
    pub async fn nostr_set_user_key(&self, user: UserId, pubkey: Option<&str>) -> Result<(), StoreError> {
        let now = self.now_ms();
        let user = user.to_string();
        let statement = match pubkey {
            Some(pk) => (
                "INSERT INTO nostr_user_keys (user_id, pubkey, updated_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (user_id) DO UPDATE SET pubkey = excluded.pubkey, updated_at = excluded.updated_at"
                    .to_string(),
                params![user, pk, now],
            ),
            None => (
                "DELETE FROM nostr_user_keys WHERE user_id = $1".to_string(),
                params![user],
            ),
        };
        self.db.script(vec![statement]).await.map(|_| ())
    }

    /// The NOSTR pubkey (hex) a user set.
    pub async fn nostr_user_key(&self, user: UserId) -> Result<Option<String>, StoreError> {
        self.db
            .query_opt(
                "SELECT pubkey FROM nostr_user_keys WHERE user_id = $1",
                params![user.to_string()],
            )
            .await?
            .map(|r| r.text(0))
            .transpose()
    }

    /// Whether a Flash user set this pubkey.
    pub async fn nostr_key_is_users(&self, pubkey: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .query_opt("SELECT 1 FROM nostr_user_keys WHERE pubkey = $1", params![pubkey])
            .await?
            .is_some())
    }

    /// The default wallet of the account whose user set this pubkey, if one did.
    pub async fn nostr_key_wallet(&self, pubkey: &str) -> Result<Option<WalletId>, StoreError> {
        self.db
            .query_opt(
                "SELECT a.default_wallet_id FROM nostr_user_keys k JOIN accounts a ON a.user_id = k.user_id \
                 WHERE k.pubkey = $1",
                params![pubkey],
            )
            .await?
            .map(|r| r.parse(0))
            .transpose()
    }

    /// The username (as written) and pubkey of the user with this username, when that user
    /// set a pubkey.
    pub async fn nostr_key_by_username(&self, username: &Username) -> Result<Option<(String, String)>, StoreError> {
        self.db
            .query_opt(
                "SELECT u.username, k.pubkey FROM users u JOIN nostr_user_keys k ON k.user_id = u.id \
                 WHERE u.username_key = $1 AND u.username IS NOT NULL",
                params![username.key()],
            )
            .await?
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .transpose()
    }
}

impl Store {
    /// Remembers the zap request an invoice commits to.
    pub async fn nostr_zap_create(&self, payment_hash: &str, request: &str, bolt11: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO nostr_zaps (payment_hash, request, bolt11, created_at, paid_at) VALUES ($1, $2, $3, $4, NULL)",
                params![payment_hash, request, bolt11, self.now_ms()],
            )
            .await
            .map(|_| ())
    }

    /// Marks a zap's invoice paid and returns its (zap request, bolt11): once per zap, so its
    /// receipt is published once.
    pub async fn nostr_zap_paid(&self, payment_hash: &str) -> Result<Option<(String, String)>, StoreError> {
        let changed = self
            .db
            .execute(
                "UPDATE nostr_zaps SET paid_at = $2 WHERE payment_hash = $1 AND paid_at IS NULL",
                params![payment_hash, self.now_ms()],
            )
            .await?;
        if changed == 0 {
            return Ok(None);
        }
        self.db
            .query_opt(
                "SELECT request, bolt11 FROM nostr_zaps WHERE payment_hash = $1",
                params![payment_hash],
            )
            .await?
            .map(|r| Ok((r.text(0)?, r.text(1)?)))
            .transpose()
    }
}

impl Store {
    /// Records that the invoice `payment_hash` (of this Flash) admits `pubkey` once paid.
    pub async fn nostr_admission_create(&self, payment_hash: &str, pubkey: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO nostr_admissions (payment_hash, pubkey, created_at) VALUES ($1, $2, $3)",
                params![payment_hash, pubkey, self.now_ms()],
            )
            .await
            .map(|_| ())
    }

    /// The payment hash of an unpaid admission invoice of `pubkey` for `amount_sat` that is
    /// still payable at `until_ms`, newest first, if any.
    pub async fn nostr_admission_open(
        &self,
        pubkey: &str,
        amount_sat: i64,
        until_ms: i64,
    ) -> Result<Option<String>, StoreError> {
        self.db
            .query_opt(
                "SELECT a.payment_hash FROM nostr_admissions a \
                 JOIN ln_invoices i ON i.payment_hash = a.payment_hash \
                 WHERE a.pubkey = $1 AND i.paid_at IS NULL AND i.amount_sat = $2 AND i.expires_at > $3 \
                 ORDER BY i.created_at DESC LIMIT 1",
                params![pubkey, amount_sat, until_ms],
            )
            .await?
            .map(|r| r.text(0))
            .transpose()
    }

    /// Whether one of `pubkey`'s admission invoices is paid.
    pub async fn nostr_admitted(&self, pubkey: &str) -> Result<bool, StoreError> {
        Ok(self
            .db
            .query_opt(
                "SELECT 1 FROM nostr_admissions a JOIN ln_invoices i ON i.payment_hash = a.payment_hash \
                 WHERE a.pubkey = $1 AND i.paid_at IS NOT NULL LIMIT 1",
                params![pubkey],
            )
            .await?
            .is_some())
    }
}
