//! Login codes, sessions, API keys, admin keys and email registrations. Only hashes of
//! secrets are stored.

use flash_core::{AccountId, ApiKeyId, UserId};

use crate::sql::{params, Row};
use crate::{Store, StoreError};

/// What a login-code attempt found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// No code was requested (or it was used).
    Missing,
    /// The code expired.
    Expired,
    /// Too many attempts on this code.
    Exhausted,
    /// A live code: compare against `code_hash`. The attempt has been counted.
    Candidate {
        /// The stored hash.
        code_hash: String,
    },
}

/// A stored session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionRecord {
    /// Its user.
    pub user_id: UserId,
    /// Unix ms.
    pub expires_at_ms: i64,
    /// Unix ms, if revoked.
    pub revoked_at_ms: Option<i64>,
}

/// An API key to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewApiKey {
    /// Owner.
    pub account_id: AccountId,
    /// Name.
    pub name: String,
    /// Hash of the secret.
    pub key_hash: String,
    /// Scopes, comma-separated.
    pub scopes: String,
    /// Allowed networks, comma-separated (empty: any).
    pub ip_allowlist: String,
    /// Unix ms, if it expires.
    pub expires_at_ms: Option<i64>,
}

/// A stored API key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// Id.
    pub id: ApiKeyId,
    /// Owner.
    pub account_id: AccountId,
    /// Name.
    pub name: String,
    /// Scopes, comma-separated.
    pub scopes: String,
    /// Allowed networks, comma-separated.
    pub ip_allowlist: String,
    /// Unix ms.
    pub expires_at_ms: Option<i64>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms.
    pub revoked_at_ms: Option<i64>,
    /// Unix ms.
    pub last_used_at_ms: Option<i64>,
}

const API_KEY_COLUMNS: &str = "SELECT id, account_id, name, scopes, ip_allowlist, expires_at, created_at, \
    revoked_at, last_used_at FROM api_keys";

fn api_key(r: &Row) -> Result<ApiKeyRecord, StoreError> {
    Ok(ApiKeyRecord {
        id: r.parse(0)?,
        account_id: r.parse(1)?,
        name: r.text(2)?,
        scopes: r.text(3)?,
        ip_allowlist: r.text(4)?,
        expires_at_ms: r.opt_int(5)?,
        created_at_ms: r.int(6)?,
        revoked_at_ms: r.opt_int(7)?,
        last_used_at_ms: r.opt_int(8)?,
    })
}

impl Store {
    /// Stores a fresh code for `identifier`, replacing any earlier one.
    pub async fn put_login_code(
        &self,
        identifier: &str,
        code_hash: &str,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO login_codes (identifier, code_hash, attempts, expires_at, created_at) \
                   VALUES ($1, $2, 0, $3, $4) ON CONFLICT (identifier) \
                   DO UPDATE SET code_hash = excluded.code_hash, attempts = 0, expires_at = excluded.expires_at, \
                   created_at = excluded.created_at";
        self.db
            .execute(sql, params![identifier, code_hash, expires_at_ms, self.now_ms()])
            .await
            .map(|_| ())
    }

    /// Counts an attempt on `identifier`'s code and says whether it may be compared.
    pub async fn check_login_code(&self, identifier: &str, max_attempts: i64) -> Result<CodeCheck, StoreError> {
        let sql = "UPDATE login_codes SET attempts = attempts + 1 WHERE identifier = $1 \
                   RETURNING code_hash, attempts, expires_at";
        let Some(row) = self.db.query_opt(sql, params![identifier]).await? else {
            return Ok(CodeCheck::Missing);
        };
        Ok(if row.int(2)? <= self.now_ms() {
            CodeCheck::Expired
        } else if row.int(1)? > max_attempts {
            CodeCheck::Exhausted
        } else {
            CodeCheck::Candidate {
                code_hash: row.text(0)?,
            }
        })
    }

    /// Uses up `identifier`'s code if it is still the one stored as `code_hash` (a newer code
    /// replaces it): true for exactly one caller however many race, false for the others. One
    /// conditional delete, so a code opens at most one session.
    pub async fn consume_login_code(&self, identifier: &str, code_hash: &str) -> Result<bool, StoreError> {
        let sql = "DELETE FROM login_codes WHERE identifier = $1 AND code_hash = $2";
        Ok(self.db.execute(sql, params![identifier, code_hash]).await? == 1)
    }

    /// Stores a session.
    pub async fn create_session(
        &self,
        token_hash: &str,
        user_id: UserId,
        expires_at_ms: i64,
    ) -> Result<(), StoreError> {
        let sql = "INSERT INTO sessions (token_hash, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)";
        self.db
            .execute(
                sql,
                params![token_hash, user_id.to_string(), self.now_ms(), expires_at_ms],
            )
            .await
            .map(|_| ())
    }

    /// A session by token hash.
    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRecord>, StoreError> {
        let sql = "SELECT user_id, expires_at, revoked_at FROM sessions WHERE token_hash = $1";
        let row = self.db.query_opt(sql, params![token_hash]).await?;
        row.map(|r| {
            Ok(SessionRecord {
                user_id: r.parse(0)?,
                expires_at_ms: r.int(1)?,
                revoked_at_ms: r.opt_int(2)?,
            })
        })
        .transpose()
    }

    /// Revokes a session; `false` if it was not live.
    pub async fn revoke_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE sessions SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL";
        Ok(self.db.execute(sql, params![self.now_ms(), token_hash]).await? == 1)
    }

    /// Creates an API key unless the account already has `max_live` unrevoked keys
    /// (`Ok(None)` then).
    pub async fn create_api_key(&self, new: &NewApiKey, max_live: i64) -> Result<Option<ApiKeyRecord>, StoreError> {
        let id = ApiKeyId::generate();
        let now = self.now_ms();
        let sql = "INSERT INTO api_keys (id, account_id, name, key_hash, scopes, ip_allowlist, expires_at, created_at) \
                   SELECT $1, $2, $3, $4, $5, $6, CAST($7 AS BIGINT), CAST($8 AS BIGINT) \
                   WHERE (SELECT COUNT(*) FROM api_keys WHERE account_id = $2 AND revoked_at IS NULL) < CAST($9 AS BIGINT)";
        let params = params![
            id.to_string(),
            new.account_id.to_string(),
            new.name.as_str(),
            new.key_hash.as_str(),
            new.scopes.as_str(),
            new.ip_allowlist.as_str(),
            new.expires_at_ms,
            now,
            max_live,
        ];
        // Lock the account row first (a no-op update) so concurrent creations count in turn;
        // SQLite's write transactions are serialized already.
        let lock = "UPDATE accounts SET level = level WHERE id = $1";
        let changed = self
            .db
            .script(vec![
                (lock.into(), params![new.account_id.to_string()]),
                (sql.into(), params),
            ])
            .await?;
        if changed.get(1).copied().unwrap_or(0) == 0 {
            return Ok(None);
        }
        Ok(Some(ApiKeyRecord {
            id,
            account_id: new.account_id,
            name: new.name.clone(),
            scopes: new.scopes.clone(),
            ip_allowlist: new.ip_allowlist.clone(),
            expires_at_ms: new.expires_at_ms,
            created_at_ms: now,
            revoked_at_ms: None,
            last_used_at_ms: None,
        }))
    }

    /// An account's API keys, newest first.
    pub async fn api_keys(&self, account_id: AccountId) -> Result<Vec<ApiKeyRecord>, StoreError> {
        let sql = format!("{API_KEY_COLUMNS} WHERE account_id = $1 ORDER BY created_at DESC, id DESC");
        self.db
            .query(&sql, params![account_id.to_string()])
            .await?
            .iter()
            .map(api_key)
            .collect()
    }

    /// An API key by the hash of its secret.
    pub async fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sql = format!("{API_KEY_COLUMNS} WHERE key_hash = $1");
        self.db
            .query_opt(&sql, params![key_hash])
            .await?
            .as_ref()
            .map(api_key)
            .transpose()
    }

    /// Revokes one of the account's keys; `None` if it has no such key.
    pub async fn revoke_api_key(
        &self,
        account_id: AccountId,
        id: ApiKeyId,
    ) -> Result<Option<ApiKeyRecord>, StoreError> {
        let sql = "UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND account_id = $3 AND revoked_at IS NULL";
        self.db
            .execute(sql, params![self.now_ms(), id.to_string(), account_id.to_string()])
            .await?;
        let sql = format!("{API_KEY_COLUMNS} WHERE id = $1 AND account_id = $2");
        self.db
            .query_opt(&sql, params![id.to_string(), account_id.to_string()])
            .await?
            .as_ref()
            .map(api_key)
            .transpose()
    }

    /// Records that a key was used.
    pub async fn touch_api_key(&self, id: ApiKeyId) -> Result<(), StoreError> {
        let sql = "UPDATE api_keys SET last_used_at = $1 WHERE id = $2";
        self.db
            .execute(sql, params![self.now_ms(), id.to_string()])
            .await
            .map(|_| ())
    }

    /// Stores an operator key.
    pub async fn create_admin_key(&self, key_hash: &str, label: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO admin_keys (key_hash, label, created_at) VALUES ($1, $2, $3)";
        self.db
            .execute(sql, params![key_hash, label, self.now_ms()])
            .await
            .map(|_| ())
    }

    /// Revokes every live operator key and stores `key_hash` as the only one, in one
    /// transaction (rotation, or recovery of a lost key); the number of keys revoked.
    pub async fn replace_admin_keys(&self, key_hash: &str, label: &str) -> Result<u64, StoreError> {
        let now = self.now_ms();
        let changed = self
            .db
            .script(vec![
                (
                    "UPDATE admin_keys SET revoked_at = $1 WHERE revoked_at IS NULL".to_string(),
                    params![now],
                ),
                (
                    "INSERT INTO admin_keys (key_hash, label, created_at) VALUES ($1, $2, $3)".to_string(),
                    params![key_hash, label, now],
                ),
            ])
            .await?;
        Ok(changed.first().copied().unwrap_or(0))
    }

    /// The label of a live operator key with this hash.
    pub async fn admin_key(&self, key_hash: &str) -> Result<Option<String>, StoreError> {
        let sql = "SELECT label FROM admin_keys WHERE key_hash = $1 AND revoked_at IS NULL";
        self.db
            .query_opt(sql, params![key_hash])
            .await?
            .map(|r| r.text(0))
            .transpose()
    }

    /// How many live operator keys exist.
    pub async fn admin_key_count(&self) -> Result<i64, StoreError> {
        let row = self
            .db
            .query_opt("SELECT COUNT(*) FROM admin_keys WHERE revoked_at IS NULL", vec![])
            .await?;
        row.map(|r| r.int(0)).transpose().map(|n| n.unwrap_or(0))
    }

    /// Records a pending email registration.
    pub async fn create_email_registration(&self, id: &str, user_id: UserId, email: &str) -> Result<(), StoreError> {
        let sql = "INSERT INTO email_registrations (id, user_id, email, created_at) VALUES ($1, $2, $3, $4)";
        self.db
            .execute(sql, params![id, user_id.to_string(), email, self.now_ms()])
            .await
            .map(|_| ())
    }

    /// A pending email registration: `(user, email)`.
    pub async fn email_registration(&self, id: &str) -> Result<Option<(UserId, String)>, StoreError> {
        let sql = "SELECT user_id, email FROM email_registrations WHERE id = $1";
        self.db
            .query_opt(sql, params![id])
            .await?
            .map(|r| Ok((r.parse(0)?, r.text(1)?)))
            .transpose()
    }
}
