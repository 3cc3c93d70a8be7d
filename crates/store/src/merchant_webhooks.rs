//! Merchant webhooks, their deliveries, and the webhook sender's side of the merchant outbox:
//! reading undispatched events and turning a batch of them into deliveries in one transaction.

use crate::ledger::Record;
use crate::sql::{params, placeholders, Row, Value};
use crate::{Store, StoreError};

/// A store's webhook as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantWebhookRecord {
    /// Its id.
    pub id: String,
    /// The store whose events it receives.
    pub store_id: String,
    /// Where deliveries are POSTed.
    pub url: String,
    /// The HMAC key of the `BTCPay-Sig` header.
    pub secret: String,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Whether failed deliveries are retried on the sender's schedule.
    pub automatic_redelivery: bool,
    /// Whether it receives every event type.
    pub everything: bool,
    /// The event types it receives when not `everything`.
    pub specific_events: Vec<String>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// One delivery of one event to one webhook.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookDeliveryRecord {
    /// Its id (the body's `deliveryId`).
    pub id: String,
    /// The webhook.
    pub webhook_id: String,
    /// The outbox event a first delivery came from; `None` for a redelivery.
    pub event_seq: Option<i64>,
    /// BTCPay's event type.
    pub event_type: String,
    /// The first delivery of the event (itself, for a first delivery).
    pub original_id: String,
    /// Whether it is a redelivery.
    pub is_redelivery: bool,
    /// The exact body sent (and signed).
    pub request: String,
    /// Unix ms.
    pub created_at: i64,
    /// Attempts made so far.
    pub attempts: i64,
    /// When the sender tries it next (Unix ms); `None` once it succeeded or gave up.
    pub next_attempt_at: Option<i64>,
    /// The last attempt's outcome: `Failed`, `HttpError` or `HttpSuccess`; `None` before any.
    pub status: Option<String>,
    /// The last attempt's HTTP status, if an answer came.
    pub http_code: Option<i64>,
    /// The last attempt's error, if it failed.
    pub error_message: Option<String>,
    /// When the last attempt was made, Unix ms.
    pub attempted_at: Option<i64>,
}

/// An event of the merchant outbox not yet turned into deliveries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantEventRecord {
    /// Its position in the outbox.
    pub seq: i64,
    /// The store it concerns.
    pub store_id: String,
    /// BTCPay's event type.
    pub event_type: String,
    /// The webhook body without the delivery fields, JSON.
    pub payload: String,
    /// Unix ms.
    pub created_at: i64,
}

/// A delivery due for an attempt, with what the attempt needs of its webhook now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDelivery {
    /// The delivery.
    pub delivery: WebhookDeliveryRecord,
    /// The webhook's URL.
    pub url: String,
    /// The webhook's secret.
    pub secret: String,
    /// Whether the webhook is enabled.
    pub enabled: bool,
    /// Whether the webhook retries failed deliveries.
    pub automatic_redelivery: bool,
}

/// What one attempt of a delivery came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryAttempt {
    /// `Failed`, `HttpError` or `HttpSuccess`.
    pub status: String,
    /// The HTTP status, if an answer came.
    pub http_code: Option<i64>,
    /// The error, if it failed.
    pub error_message: Option<String>,
    /// When it was made, Unix ms.
    pub attempted_at: i64,
    /// When to try again (Unix ms), or `None`: done.
    pub next_attempt_at: Option<i64>,
}

const WEBHOOK_COLUMNS: &str = "SELECT id, store_id, url, secret, enabled, automatic_redelivery, everything, \
     specific_events, created_at, updated_at FROM merchant_webhooks";

const DELIVERY_COLUMNS: &str = "d.id, d.webhook_id, d.event_seq, d.event_type, d.original_id, d.is_redelivery, \
     d.request, d.created_at, d.attempts, d.next_attempt_at, d.status, d.http_code, d.error_message, d.attempted_at";

fn webhook_record(r: &Row) -> Result<MerchantWebhookRecord, StoreError> {
    Ok(MerchantWebhookRecord {
        id: r.text(0)?,
        store_id: r.text(1)?,
        url: r.text(2)?,
        secret: r.text(3)?,
        enabled: r.int(4)? != 0,
        automatic_redelivery: r.int(5)? != 0,
        everything: r.int(6)? != 0,
        specific_events: r.text(7)?.split_whitespace().map(str::to_string).collect(),
        created_at: r.int(8)?,
        updated_at: r.int(9)?,
    })
}

fn delivery_record(r: &Row) -> Result<WebhookDeliveryRecord, StoreError> {
    Ok(WebhookDeliveryRecord {
        id: r.text(0)?,
        webhook_id: r.text(1)?,
        event_seq: r.opt_int(2)?,
        event_type: r.text(3)?,
        original_id: r.text(4)?,
        is_redelivery: r.int(5)? != 0,
        request: r.text(6)?,
        created_at: r.int(7)?,
        attempts: r.int(8)?,
        next_attempt_at: r.opt_int(9)?,
        status: r.opt_text(10)?,
        http_code: r.opt_int(11)?,
        error_message: r.opt_text(12)?,
        attempted_at: r.opt_int(13)?,
    })
}

fn delivery_insert(d: &WebhookDeliveryRecord) -> Record {
    Record {
        sql: "INSERT INTO merchant_webhook_deliveries (id, webhook_id, event_seq, event_type, original_id, \
              is_redelivery, request, created_at, attempts, next_attempt_at) \
              VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        params: params![
            d.id.as_str(),
            d.webhook_id.as_str(),
            d.event_seq,
            d.event_type.as_str(),
            d.original_id.as_str(),
            i64::from(d.is_redelivery),
            d.request.as_str(),
            d.created_at,
            d.attempts,
            d.next_attempt_at
        ],
        rows: 1,
        refusal: None,
    }
}

impl Store {
    /// Records a new webhook.
    pub async fn merchant_webhook_create(&self, w: &MerchantWebhookRecord) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO merchant_webhooks (id, store_id, url, secret, enabled, automatic_redelivery, everything, \
                 specific_events, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                params![
                    w.id.as_str(),
                    w.store_id.as_str(),
                    w.url.as_str(),
                    w.secret.as_str(),
                    i64::from(w.enabled),
                    i64::from(w.automatic_redelivery),
                    i64::from(w.everything),
                    w.specific_events.join(" "),
                    w.created_at,
                    w.updated_at
                ],
            )
            .await
            .map(|_| ())
    }

    /// A store's webhooks, oldest first.
    pub async fn merchant_webhooks_of(&self, store_id: &str) -> Result<Vec<MerchantWebhookRecord>, StoreError> {
        let sql = format!("{WEBHOOK_COLUMNS} WHERE store_id = $1 ORDER BY created_at, id");
        let rows = self.db.query(&sql, params![store_id]).await?;
        rows.iter().map(webhook_record).collect()
    }

    /// One of a store's webhooks.
    pub async fn merchant_webhook(
        &self,
        store_id: &str,
        id: &str,
    ) -> Result<Option<MerchantWebhookRecord>, StoreError> {
        let sql = format!("{WEBHOOK_COLUMNS} WHERE store_id = $1 AND id = $2");
        self.db
            .query_opt(&sql, params![store_id, id])
            .await?
            .as_ref()
            .map(webhook_record)
            .transpose()
    }

    /// Replaces a webhook's settings. Whether it exists.
    pub async fn merchant_webhook_update(&self, w: &MerchantWebhookRecord) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE merchant_webhooks SET url = $3, secret = $4, enabled = $5, automatic_redelivery = $6, \
                 everything = $7, specific_events = $8, updated_at = $9 WHERE store_id = $1 AND id = $2",
                params![
                    w.store_id.as_str(),
                    w.id.as_str(),
                    w.url.as_str(),
                    w.secret.as_str(),
                    i64::from(w.enabled),
                    i64::from(w.automatic_redelivery),
                    i64::from(w.everything),
                    w.specific_events.join(" "),
                    w.updated_at
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Deletes a webhook and its deliveries, in one transaction. Whether it existed.
    pub async fn merchant_webhook_delete(&self, store_id: &str, id: &str) -> Result<bool, StoreError> {
        let changed = self
            .db
            .script(vec![
                (
                    "DELETE FROM merchant_webhook_deliveries WHERE webhook_id IN \
                     (SELECT id FROM merchant_webhooks WHERE store_id = $1 AND id = $2)"
                        .to_string(),
                    params![store_id, id],
                ),
                (
                    "DELETE FROM merchant_webhooks WHERE store_id = $1 AND id = $2".to_string(),
                    params![store_id, id],
                ),
            ])
            .await?;
        Ok(changed.get(1) == Some(&1))
    }

    /// The enabled webhooks of these stores (those not deleted), oldest first.
    pub async fn merchant_webhooks_enabled_of(
        &self,
        store_ids: &[String],
    ) -> Result<Vec<MerchantWebhookRecord>, StoreError> {
        if store_ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "{WEBHOOK_COLUMNS} WHERE enabled = 1 AND store_id IN ({}) AND store_id IN \
             (SELECT id FROM merchant_stores WHERE deleted_at IS NULL) ORDER BY created_at, id",
            placeholders(1, store_ids.len())
        );
        let args: Vec<Value> = store_ids.iter().map(|s| Value::from(s.as_str())).collect();
        let rows = self.db.query(&sql, args).await?;
        rows.iter().map(webhook_record).collect()
    }

    /// The oldest `limit` outbox events not yet turned into deliveries, in outbox order.
    pub async fn merchant_events_undispatched(&self, limit: i64) -> Result<Vec<MerchantEventRecord>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT seq, store_id, event_type, payload, created_at FROM merchant_events \
                 WHERE dispatched_at IS NULL ORDER BY seq LIMIT $1",
                params![limit],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(MerchantEventRecord {
                    seq: r.int(0)?,
                    store_id: r.text(1)?,
                    event_type: r.text(2)?,
                    payload: r.text(3)?,
                    created_at: r.int(4)?,
                })
            })
            .collect()
    }

    /// Marks events `seqs` dispatched at `now_ms` and records their deliveries, in one
    /// transaction: each event is dispatched exactly once. `seqs` are distinct, and every
    /// event between the lowest and the highest of them that was undispatched when they were
    /// read. Refused ([`StoreError::Refused`]), writing nothing, when the events between them
    /// changed meanwhile (one dispatched, one more appeared).
    pub async fn merchant_events_dispatch(
        &self,
        seqs: &[i64],
        deliveries: &[WebhookDeliveryRecord],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let (Some(first), Some(last)) = (seqs.iter().min(), seqs.iter().max()) else {
            return Ok(());
        };
        // One statement over the range, which must hold exactly these events undispatched: an
        // event dispatched meanwhile, or one committed late with a number inside the range
        // (PostgreSQL numbers rows before they commit), changes the count and refuses it all.
        let mut records = vec![Record {
            sql: "UPDATE merchant_events SET dispatched_at = $3 \
                  WHERE seq >= $1 AND seq <= $2 AND dispatched_at IS NULL",
            params: params![*first, *last, now_ms],
            rows: u64::try_from(seqs.len()).unwrap_or(u64::MAX),
            refusal: Some("the events changed meanwhile"),
        }];
        records.extend(deliveries.iter().map(delivery_insert));
        self.db.apply(records).await
    }

    /// Records one delivery (a redelivery).
    pub async fn merchant_webhook_delivery_create(&self, d: &WebhookDeliveryRecord) -> Result<(), StoreError> {
        self.db.apply(vec![delivery_insert(d)]).await
    }

    /// A webhook's newest `limit` deliveries, newest first.
    pub async fn merchant_webhook_deliveries(
        &self,
        webhook_id: &str,
        limit: i64,
    ) -> Result<Vec<WebhookDeliveryRecord>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM merchant_webhook_deliveries d WHERE d.webhook_id = $1 \
             ORDER BY d.created_at DESC, COALESCE(d.event_seq, 0) DESC, d.id DESC LIMIT $2"
        );
        let rows = self.db.query(&sql, params![webhook_id, limit]).await?;
        rows.iter().map(delivery_record).collect()
    }

    /// One delivery of a webhook.
    pub async fn merchant_webhook_delivery(
        &self,
        webhook_id: &str,
        id: &str,
    ) -> Result<Option<WebhookDeliveryRecord>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS} FROM merchant_webhook_deliveries d WHERE d.webhook_id = $1 AND d.id = $2"
        );
        self.db
            .query_opt(&sql, params![webhook_id, id])
            .await?
            .as_ref()
            .map(delivery_record)
            .transpose()
    }

    /// Up to `limit` deliveries due at `now_ms`, the longest waiting first (then in the order
    /// their events were appended), with their webhooks.
    pub async fn merchant_webhook_deliveries_due(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<DueDelivery>, StoreError> {
        let sql = format!(
            "SELECT {DELIVERY_COLUMNS}, w.url, w.secret, w.enabled, w.automatic_redelivery \
             FROM merchant_webhook_deliveries d JOIN merchant_webhooks w ON w.id = d.webhook_id \
             WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $1 \
             ORDER BY d.next_attempt_at, d.created_at, COALESCE(d.event_seq, 0), d.id LIMIT $2"
        );
        let rows = self.db.query(&sql, params![now_ms, limit]).await?;
        rows.iter()
            .map(|r| {
                Ok(DueDelivery {
                    delivery: delivery_record(r)?,
                    url: r.text(14)?,
                    secret: r.text(15)?,
                    enabled: r.int(16)? != 0,
                    automatic_redelivery: r.int(17)? != 0,
                })
            })
            .collect()
    }

    /// Claims due deliveries for one attempt each, in one statement: moves the next attempt of
    /// each of `ids` that is still due at `now_ms` to `until` (when it is tried again if the
    /// attempt never reports, e.g. after a crash). The ids this caller got.
    pub async fn merchant_webhook_deliveries_claim(
        &self,
        ids: &[String],
        now_ms: i64,
        until: i64,
    ) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "UPDATE merchant_webhook_deliveries SET next_attempt_at = $1 \
             WHERE next_attempt_at <= $2 AND id IN ({}) RETURNING id",
            placeholders(3, ids.len())
        );
        let mut values = params![until, now_ms];
        values.extend(ids.iter().map(|id| Value::from(id.as_str())));
        let rows = self.db.query(&sql, values).await?;
        rows.iter().map(|r| r.text(0)).collect()
    }

    /// Records attempts of deliveries, in one transaction (a delivery deleted meanwhile, with
    /// its webhook, is skipped).
    pub async fn merchant_webhook_deliveries_attempted(
        &self,
        attempts: &[(String, DeliveryAttempt)],
    ) -> Result<(), StoreError> {
        if attempts.is_empty() {
            return Ok(());
        }
        let statements = attempts
            .iter()
            .map(|(id, a)| {
                (
                    "UPDATE merchant_webhook_deliveries SET attempts = attempts + 1, status = $2, http_code = $3, \
                     error_message = $4, attempted_at = $5, next_attempt_at = $6 WHERE id = $1"
                        .to_string(),
                    params![
                        id.as_str(),
                        a.status.as_str(),
                        a.http_code,
                        a.error_message.clone(),
                        a.attempted_at,
                        a.next_attempt_at
                    ],
                )
            })
            .collect();
        self.db.script(statements).await.map(|_| ())
    }
}
