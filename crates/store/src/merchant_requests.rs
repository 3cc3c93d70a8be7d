//! Merchant payment requests (with the status last computed from their invoices) and store
//! Lightning addresses.

use crate::ledger::Record;
use crate::merchant_invoices::event_record;
use crate::sql::{params, Row};
use crate::{NewMerchantEvent, Store, StoreError};

/// A payment request as stored; the merchant crate reads its JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRequestRecord {
    /// Its id.
    pub id: String,
    /// The store it asks for.
    pub store_id: String,
    /// Its Greenfield fields, JSON.
    pub data: String,
    /// The status last computed (`Pending`, `Processing`, `Completed`, `Expired`).
    pub status: String,
    /// Whether it is archived.
    pub archived: bool,
    /// Bumped by every change.
    pub version: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A store's Lightning address as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LightningAddressRecord {
    /// The store it pays.
    pub store_id: String,
    /// The name as given (`name@host`); unique across stores, case-insensitively.
    pub username: String,
    /// Its Greenfield fields, JSON.
    pub data: String,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

const REQUEST_COLUMNS: &str =
    "SELECT id, store_id, data, status, archived, version, created_at, updated_at FROM merchant_payment_requests";

fn request_record(r: &Row) -> Result<PaymentRequestRecord, StoreError> {
    Ok(PaymentRequestRecord {
        id: r.text(0)?,
        store_id: r.text(1)?,
        data: r.text(2)?,
        status: r.text(3)?,
        archived: r.int(4)? != 0,
        version: r.int(5)?,
        created_at: r.int(6)?,
        updated_at: r.int(7)?,
    })
}

const ADDRESS_COLUMNS: &str =
    "SELECT store_id, username, data, created_at, updated_at FROM merchant_lightning_addresses";

fn address_record(r: &Row) -> Result<LightningAddressRecord, StoreError> {
    Ok(LightningAddressRecord {
        store_id: r.text(0)?,
        username: r.text(1)?,
        data: r.text(2)?,
        created_at: r.int(3)?,
        updated_at: r.int(4)?,
    })
}

impl Store {
    /// Records a new payment request and the events its creation causes, in one transaction.
    pub async fn merchant_payment_request_create(
        &self,
        p: &PaymentRequestRecord,
        events: &[NewMerchantEvent],
    ) -> Result<(), StoreError> {
        let mut records = vec![Record {
            sql: "INSERT INTO merchant_payment_requests (id, store_id, data, status, archived, version, created_at, \
                  updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            params: params![
                p.id.as_str(),
                p.store_id.as_str(),
                p.data.as_str(),
                p.status.as_str(),
                i64::from(p.archived),
                p.version,
                p.created_at,
                p.updated_at
            ],
            rows: 1,
            refusal: None,
        }];
        records.extend(events.iter().map(|e| event_record(e, p.created_at)));
        self.db.apply(records).await
    }

    /// A payment request by id.
    pub async fn merchant_payment_request(&self, id: &str) -> Result<Option<PaymentRequestRecord>, StoreError> {
        let sql = format!("{REQUEST_COLUMNS} WHERE id = $1");
        self.db
            .query_opt(&sql, params![id])
            .await?
            .as_ref()
            .map(request_record)
            .transpose()
    }

    /// A store's payment requests, newest first.
    pub async fn merchant_payment_requests_of(&self, store_id: &str) -> Result<Vec<PaymentRequestRecord>, StoreError> {
        let sql = format!("{REQUEST_COLUMNS} WHERE store_id = $1 ORDER BY created_at DESC, id DESC");
        let rows = self.db.query(&sql, params![store_id]).await?;
        rows.iter().map(request_record).collect()
    }

    /// Replaces a payment request's data, status and archived flag as decided on
    /// `p.version`, with the events the change causes, in one transaction. Refused
    /// ([`StoreError::Refused`]) when it changed since.
    pub async fn merchant_payment_request_update(
        &self,
        p: &PaymentRequestRecord,
        events: &[NewMerchantEvent],
    ) -> Result<(), StoreError> {
        let mut records = vec![Record {
            sql: "UPDATE merchant_payment_requests SET data = $3, status = $4, archived = $5, updated_at = $6, \
                  version = version + 1 WHERE id = $1 AND version = $2",
            params: params![
                p.id.as_str(),
                p.version,
                p.data.as_str(),
                p.status.as_str(),
                i64::from(p.archived),
                p.updated_at
            ],
            rows: 1,
            refusal: Some("the payment request changed meanwhile"),
        }];
        records.extend(events.iter().map(|e| event_record(e, p.updated_at)));
        self.db.apply(records).await
    }

    /// Records a store's Lightning address, or replaces the same store's one of that name.
    /// Whether it was written: `false` when another store holds the name.
    pub async fn merchant_lightning_address_put(&self, a: &LightningAddressRecord) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "INSERT INTO merchant_lightning_addresses (name_key, store_id, username, data, created_at, \
                 updated_at) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name_key) DO UPDATE SET \
                 username = excluded.username, data = excluded.data, updated_at = excluded.updated_at \
                 WHERE merchant_lightning_addresses.store_id = excluded.store_id",
                params![
                    a.username.to_lowercase(),
                    a.store_id.as_str(),
                    a.username.as_str(),
                    a.data.as_str(),
                    a.created_at,
                    a.updated_at
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// The Lightning address of this name (any case), whichever store holds it.
    pub async fn merchant_lightning_address(
        &self,
        username: &str,
    ) -> Result<Option<LightningAddressRecord>, StoreError> {
        let sql = format!("{ADDRESS_COLUMNS} WHERE name_key = $1");
        self.db
            .query_opt(&sql, params![username.to_lowercase()])
            .await?
            .as_ref()
            .map(address_record)
            .transpose()
    }

    /// A store's Lightning addresses, by name.
    pub async fn merchant_lightning_addresses_of(
        &self,
        store_id: &str,
    ) -> Result<Vec<LightningAddressRecord>, StoreError> {
        let sql = format!("{ADDRESS_COLUMNS} WHERE store_id = $1 ORDER BY name_key");
        let rows = self.db.query(&sql, params![store_id]).await?;
        rows.iter().map(address_record).collect()
    }

    /// Removes a store's Lightning address. Whether it existed.
    pub async fn merchant_lightning_address_delete(&self, store_id: &str, username: &str) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "DELETE FROM merchant_lightning_addresses WHERE name_key = $1 AND store_id = $2",
                params![username.to_lowercase(), store_id],
            )
            .await?;
        Ok(n == 1)
    }
}
