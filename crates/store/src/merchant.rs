//! Merchant services: stores and their Greenfield API keys.

use flash_core::{AccountId, WalletId};

use crate::sql::{params, Row};
use crate::{Store, StoreError};

/// A merchant's store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantStoreRecord {
    /// Its id (BTCPay's `storeId`).
    pub id: String,
    /// The account that owns it.
    pub account_id: AccountId,
    /// The wallet its payments settle into.
    pub wallet_id: WalletId,
    /// Its name.
    pub name: String,
    /// The currency its invoices are priced in by default.
    pub default_currency: String,
    /// The rest of its settings, as JSON (the merchant crate's to read).
    pub settings: String,
    /// When it was archived (Unix ms): hidden from lists by default.
    pub archived_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A Greenfield API key (its hash; the key itself is shown once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantKeyRecord {
    /// Its public id (for listing and revoking).
    pub id: String,
    /// The account it acts for.
    pub account_id: AccountId,
    /// What the owner called it.
    pub label: String,
    /// BTCPay permission strings.
    pub permissions: Vec<String>,
    /// Unix ms.
    pub created_at: i64,
}

const STORE_COLUMNS: &str = "SELECT id, account_id, wallet_id, name, default_currency, settings, archived_at, \
     created_at, updated_at FROM merchant_stores";

fn store_record(r: &Row) -> Result<MerchantStoreRecord, StoreError> {
    Ok(MerchantStoreRecord {
        id: r.text(0)?,
        account_id: r.parse(1)?,
        wallet_id: r.parse(2)?,
        name: r.text(3)?,
        default_currency: r.text(4)?,
        settings: r.text(5)?,
        archived_at: r.opt_int(6)?,
        created_at: r.int(7)?,
        updated_at: r.int(8)?,
    })
}

fn key_record(r: &Row) -> Result<MerchantKeyRecord, StoreError> {
    Ok(MerchantKeyRecord {
        id: r.text(0)?,
        account_id: r.parse(1)?,
        label: r.text(2)?,
        permissions: r.text(3)?.split_whitespace().map(str::to_string).collect(),
        created_at: r.int(4)?,
    })
}

impl Store {
    /// Records a new store.
    pub async fn merchant_store_create(&self, s: &MerchantStoreRecord) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO merchant_stores (id, account_id, wallet_id, name, default_currency, settings, \
                 archived_at, created_at, updated_at, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
                params![
                    s.id.as_str(),
                    s.account_id.to_string(),
                    s.wallet_id.to_string(),
                    s.name.as_str(),
                    s.default_currency.as_str(),
                    s.settings.as_str(),
                    s.archived_at,
                    s.created_at,
                    s.updated_at
                ],
            )
            .await
            .map(|_| ())
    }

    /// A store that was not deleted.
    pub async fn merchant_store(&self, id: &str) -> Result<Option<MerchantStoreRecord>, StoreError> {
        let sql = format!("{STORE_COLUMNS} WHERE id = $1 AND deleted_at IS NULL");
        let rows = self.db.query(&sql, params![id]).await?;
        rows.first().map(store_record).transpose()
    }

    /// An account's stores that were not deleted, oldest first.
    pub async fn merchant_stores_of(&self, account: AccountId) -> Result<Vec<MerchantStoreRecord>, StoreError> {
        let sql = format!("{STORE_COLUMNS} WHERE account_id = $1 AND deleted_at IS NULL ORDER BY created_at, id");
        let rows = self.db.query(&sql, params![account.to_string()]).await?;
        rows.iter().map(store_record).collect()
    }

    /// Replaces a store's name, currency, settings and archived state. Returns whether the
    /// store exists (and was not deleted).
    pub async fn merchant_store_update(&self, s: &MerchantStoreRecord) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE merchant_stores SET name = $2, default_currency = $3, settings = $4, archived_at = $5, \
                 updated_at = $6 WHERE id = $1 AND deleted_at IS NULL",
                params![
                    s.id.as_str(),
                    s.name.as_str(),
                    s.default_currency.as_str(),
                    s.settings.as_str(),
                    s.archived_at,
                    s.updated_at
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes a store (kept for its records, gone from every answer). Returns whether it
    /// existed.
    pub async fn merchant_store_delete(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE merchant_stores SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL",
                params![id, now_ms],
            )
            .await?;
        Ok(n == 1)
    }

    /// Records a new API key under the hash of its secret.
    pub async fn merchant_key_create(&self, key_hash: &str, k: &MerchantKeyRecord) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO merchant_api_keys (key_hash, id, account_id, label, permissions, created_at, revoked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, NULL)",
                params![
                    key_hash,
                    k.id.as_str(),
                    k.account_id.to_string(),
                    k.label.as_str(),
                    k.permissions.join(" "),
                    k.created_at
                ],
            )
            .await
            .map(|_| ())
    }

    /// The live key whose secret hashes to `key_hash`.
    pub async fn merchant_key_by_hash(&self, key_hash: &str) -> Result<Option<MerchantKeyRecord>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT id, account_id, label, permissions, created_at FROM merchant_api_keys \
                 WHERE key_hash = $1 AND revoked_at IS NULL",
                params![key_hash],
            )
            .await?;
        rows.first().map(key_record).transpose()
    }

    /// An account's live keys, oldest first.
    pub async fn merchant_keys_of(&self, account: AccountId) -> Result<Vec<MerchantKeyRecord>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT id, account_id, label, permissions, created_at FROM merchant_api_keys \
                 WHERE account_id = $1 AND revoked_at IS NULL ORDER BY created_at, id",
                params![account.to_string()],
            )
            .await?;
        rows.iter().map(key_record).collect()
    }

    /// Revokes an account's key by id. Returns whether a live key was revoked.
    pub async fn merchant_key_revoke(&self, account: AccountId, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE merchant_api_keys SET revoked_at = $3 WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
                params![id, account.to_string(), now_ms],
            )
            .await?;
        Ok(n == 1)
    }
}
