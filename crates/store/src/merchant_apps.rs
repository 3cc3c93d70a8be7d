//! Merchant apps (the point of sale) and the sales read from their invoices.

use crate::sql::{params, Row};
use crate::{Store, StoreError};

/// An app as stored; the merchant crate reads its JSON columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantAppRecord {
    /// Its id.
    pub id: String,
    /// The store it sells for.
    pub store_id: String,
    /// BTCPay's app type (`PointOfSale`).
    pub app_type: String,
    /// Its name.
    pub name: String,
    /// Its settings, JSON.
    pub settings: String,
    /// What it sells, JSON.
    pub items: String,
    /// Whether it is archived (hidden from lists by default).
    pub archived: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// One settled sale of an app: when, and the invoice's metadata (its cart).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppSaleRecord {
    /// When the invoice was made, Unix ms.
    pub created_at: i64,
    /// The invoice's metadata, JSON.
    pub metadata: String,
    /// The invoice's amount, a decimal string in `currency`.
    pub amount: String,
    /// The invoice's currency.
    pub currency: String,
}

const APP_COLUMNS: &str =
    "SELECT id, store_id, app_type, name, settings, items, archived, created_at, updated_at FROM merchant_apps";

fn app_record(r: &Row) -> Result<MerchantAppRecord, StoreError> {
    Ok(MerchantAppRecord {
        id: r.text(0)?,
        store_id: r.text(1)?,
        app_type: r.text(2)?,
        name: r.text(3)?,
        settings: r.text(4)?,
        items: r.text(5)?,
        archived: r.int(6)? != 0,
        created_at: r.int(7)?,
        updated_at: r.int(8)?,
    })
}

impl Store {
    /// Records a new app.
    pub async fn merchant_app_create(&self, a: &MerchantAppRecord) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO merchant_apps (id, store_id, app_type, name, settings, items, archived, created_at, \
                 updated_at, deleted_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, NULL)",
                params![
                    a.id.as_str(),
                    a.store_id.as_str(),
                    a.app_type.as_str(),
                    a.name.as_str(),
                    a.settings.as_str(),
                    a.items.as_str(),
                    i64::from(a.archived),
                    a.created_at,
                    a.updated_at
                ],
            )
            .await
            .map(|_| ())
    }

    /// An app that was not deleted.
    pub async fn merchant_app(&self, id: &str) -> Result<Option<MerchantAppRecord>, StoreError> {
        let sql = format!("{APP_COLUMNS} WHERE id = $1 AND deleted_at IS NULL");
        self.db
            .query_opt(&sql, params![id])
            .await?
            .as_ref()
            .map(app_record)
            .transpose()
    }

    /// A store's apps that were not deleted, oldest first.
    pub async fn merchant_apps_of(&self, store_id: &str) -> Result<Vec<MerchantAppRecord>, StoreError> {
        let sql = format!("{APP_COLUMNS} WHERE store_id = $1 AND deleted_at IS NULL ORDER BY created_at, id");
        let rows = self.db.query(&sql, params![store_id]).await?;
        rows.iter().map(app_record).collect()
    }

    /// Replaces an app's name, settings, items and archived flag. Whether it exists.
    pub async fn merchant_app_update(&self, a: &MerchantAppRecord) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE merchant_apps SET name = $2, settings = $3, items = $4, archived = $5, updated_at = $6 \
                 WHERE id = $1 AND deleted_at IS NULL",
                params![
                    a.id.as_str(),
                    a.name.as_str(),
                    a.settings.as_str(),
                    a.items.as_str(),
                    i64::from(a.archived),
                    a.updated_at
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes an app (its row stays for its invoices). Whether it existed.
    pub async fn merchant_app_delete(&self, id: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE merchant_apps SET deleted_at = $2, updated_at = $2 WHERE id = $1 AND deleted_at IS NULL",
                params![id, now_ms],
            )
            .await?;
        Ok(n == 1)
    }

    /// An app's settled sales made at or after `since_ms`, oldest first.
    pub async fn merchant_app_sales(&self, app_id: &str, since_ms: i64) -> Result<Vec<AppSaleRecord>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT created_at, metadata, amount, currency FROM merchant_invoices \
                 WHERE app_id = $1 AND created_at >= $2 AND status = 'Settled' ORDER BY created_at",
                params![app_id, since_ms],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AppSaleRecord {
                    created_at: r.int(0)?,
                    metadata: r.text(1)?,
                    amount: r.text(2)?,
                    currency: r.text(3)?,
                })
            })
            .collect()
    }
}
