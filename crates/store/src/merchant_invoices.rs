//! Merchant invoices: their terms, payment methods and accounted payments, and the merchant
//! outbox their changes append to.

use crate::ledger::Record;
use crate::sql::{params, placeholders, Row, Value};
use crate::{Store, StoreError};

/// A merchant invoice as stored. The merchant crate gives the text columns their meaning
/// (BTCPay's status names, JSON for metadata and options).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantInvoiceRecord {
    /// Its id.
    pub id: String,
    /// The store it belongs to.
    pub store_id: String,
    /// The creator's idempotency key, if one was sent.
    pub idempotency_key: Option<String>,
    /// The app (point of sale) that made it, if one did.
    pub app_id: Option<String>,
    /// `Standard` or `TopUp`.
    pub kind: String,
    /// The amount asked, a decimal string in `currency` (`"0"` for a top-up).
    pub amount: String,
    /// The invoice's currency (`USD`, `BTC`, `SATS`).
    pub currency: String,
    /// The BTC price in `currency` locked at creation, for a fiat invoice.
    pub rate: Option<String>,
    /// Satoshis due (`None` for a top-up).
    pub due_sat: Option<i64>,
    /// Payment tolerance, hundredths of a percent.
    pub tolerance_bps: i64,
    /// BTCPay's speed policy name.
    pub speed_policy: String,
    /// BTCPay's status name.
    pub status: String,
    /// BTCPay's additional status name.
    pub additional_status: String,
    /// Satoshis accounted to it so far.
    pub paid_sat: i64,
    /// Bumped by every transition.
    pub version: i64,
    /// `metadata.orderId`, indexed for lookups.
    pub order_id: Option<String>,
    /// The metadata, JSON.
    pub metadata: String,
    /// The checkout options, JSON.
    pub checkout: String,
    /// The receipt options, JSON.
    pub receipt: String,
    /// Lower-case text the list's `textSearch` matches.
    pub search_text: String,
    /// Whether it is archived.
    pub archived: bool,
    /// Unix ms.
    pub created_at: i64,
    /// When it expires unpaid, Unix ms.
    pub expires_at: i64,
    /// Until when payments are watched, Unix ms.
    pub monitoring_until: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// One way to pay an invoice. An invoice has one current row per method; a Lightning row
/// replaced by a BOLT11 for what was left due after a partial payment stays, superseded, so a
/// payment that still reaches it is found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceMethodRecord {
    /// The invoice.
    pub invoice_id: String,
    /// `BTC-LN` or `BTC-CHAIN`.
    pub method: String,
    /// Where to pay (a BOLT11, an address).
    pub destination: String,
    /// What a payment is found by (the payment hash, the address); one invoice per key.
    pub lookup_key: String,
    /// Satoshis the destination asks (a BOLT11's amount); `None` for an address and for a
    /// BOLT11 without an amount.
    pub amount_sat: Option<i64>,
    /// When a newer row of the same method replaced it, Unix ms; `None` while current.
    pub superseded_at: Option<i64>,
}

/// A payment accounted to an invoice, as last seen on its rail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoicePaymentRecord {
    /// The invoice.
    pub invoice_id: String,
    /// The payment hash, or `txid:vout`.
    pub payment_id: String,
    /// The method it came by.
    pub method: String,
    /// Where it was paid.
    pub destination: String,
    /// Satoshis it brought.
    pub value_sat: i64,
    /// Satoshis the bank kept as a fee.
    pub fee_sat: i64,
    /// `Processing`, `Settled` or `Invalid`.
    pub status: String,
    /// When it was first seen, Unix ms.
    pub received_at: i64,
}

/// An event to append to the merchant outbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewMerchantEvent {
    /// The store it concerns.
    pub store_id: String,
    /// BTCPay's event type.
    pub event_type: String,
    /// The webhook body without the delivery fields, JSON.
    pub payload: String,
}

/// An invoice's move to a new state, with the payments as now seen and the events it causes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceTransition {
    /// The invoice.
    pub invoice_id: String,
    /// The version the change was decided on; another change since refuses this one.
    pub from_version: i64,
    /// The new status.
    pub status: String,
    /// The new additional status.
    pub additional_status: String,
    /// Satoshis accounted now.
    pub paid_sat: i64,
    /// Payments new or changed.
    pub payments: Vec<InvoicePaymentRecord>,
    /// Events to append.
    pub events: Vec<NewMerchantEvent>,
}

/// What an invoice list asks for (Greenfield's filters).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InvoiceFilter {
    /// Only these order ids (any, when empty).
    pub order_ids: Vec<String>,
    /// Only these statuses (any, when empty).
    pub statuses: Vec<String>,
    /// Only invoices whose search text contains this (lower-case).
    pub text: Option<String>,
    /// Created at or after, Unix ms.
    pub created_from: Option<i64>,
    /// Created at or before, Unix ms.
    pub created_to: Option<i64>,
    /// Include archived ones.
    pub include_archived: bool,
    /// Skip this many (newest first).
    pub skip: i64,
    /// At most this many.
    pub take: i64,
}

const INVOICE_COLUMNS: &str = "SELECT id, store_id, idempotency_key, app_id, kind, amount, currency, rate, due_sat, \
     tolerance_bps, speed_policy, status, additional_status, paid_sat, version, order_id, metadata, checkout, \
     receipt, search_text, archived, created_at, expires_at, monitoring_until, updated_at FROM merchant_invoices";

fn invoice_record(r: &Row) -> Result<MerchantInvoiceRecord, StoreError> {
    Ok(MerchantInvoiceRecord {
        id: r.text(0)?,
        store_id: r.text(1)?,
        idempotency_key: r.opt_text(2)?,
        app_id: r.opt_text(3)?,
        kind: r.text(4)?,
        amount: r.text(5)?,
        currency: r.text(6)?,
        rate: r.opt_text(7)?,
        due_sat: r.opt_int(8)?,
        tolerance_bps: r.int(9)?,
        speed_policy: r.text(10)?,
        status: r.text(11)?,
        additional_status: r.text(12)?,
        paid_sat: r.int(13)?,
        version: r.int(14)?,
        order_id: r.opt_text(15)?,
        metadata: r.text(16)?,
        checkout: r.text(17)?,
        receipt: r.text(18)?,
        search_text: r.text(19)?,
        archived: r.int(20)? != 0,
        created_at: r.int(21)?,
        expires_at: r.int(22)?,
        monitoring_until: r.int(23)?,
        updated_at: r.int(24)?,
    })
}

fn payment_record(r: &Row) -> Result<InvoicePaymentRecord, StoreError> {
    Ok(InvoicePaymentRecord {
        invoice_id: r.text(0)?,
        payment_id: r.text(1)?,
        method: r.text(2)?,
        destination: r.text(3)?,
        value_sat: r.int(4)?,
        fee_sat: r.int(5)?,
        status: r.text(6)?,
        received_at: r.int(7)?,
    })
}

fn method_insert(m: &InvoiceMethodRecord) -> Record {
    Record {
        sql: "INSERT INTO merchant_invoice_methods (invoice_id, method, destination, lookup_key, amount_sat, \
              superseded_at) VALUES ($1, $2, $3, $4, $5, $6)",
        params: params![
            m.invoice_id.as_str(),
            m.method.as_str(),
            m.destination.as_str(),
            m.lookup_key.as_str(),
            m.amount_sat,
            m.superseded_at
        ],
        rows: 1,
        refusal: None,
    }
}

pub(crate) fn event_record(e: &NewMerchantEvent, now_ms: i64) -> Record {
    Record {
        sql: "INSERT INTO merchant_events (store_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4)",
        params: params![e.store_id.as_str(), e.event_type.as_str(), e.payload.as_str(), now_ms],
        rows: 1,
        refusal: None,
    }
}

impl Store {
    /// Records a new invoice with its payment methods and the events its creation causes, in
    /// one transaction. A second invoice with the same store and idempotency key is refused
    /// as a unique violation (the caller then reads the first).
    pub async fn merchant_invoice_create(
        &self,
        i: &MerchantInvoiceRecord,
        methods: &[InvoiceMethodRecord],
        events: &[NewMerchantEvent],
    ) -> Result<(), StoreError> {
        let mut records = vec![Record {
            sql: "INSERT INTO merchant_invoices (id, store_id, idempotency_key, app_id, kind, amount, currency, rate, \
                  due_sat, tolerance_bps, speed_policy, status, additional_status, paid_sat, version, order_id, \
                  metadata, checkout, receipt, search_text, archived, created_at, expires_at, monitoring_until, \
                  updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, \
                  $19, $20, $21, $22, $23, $24, $25)",
            params: params![
                i.id.as_str(),
                i.store_id.as_str(),
                i.idempotency_key.clone(),
                i.app_id.clone(),
                i.kind.as_str(),
                i.amount.as_str(),
                i.currency.as_str(),
                i.rate.clone(),
                i.due_sat,
                i.tolerance_bps,
                i.speed_policy.as_str(),
                i.status.as_str(),
                i.additional_status.as_str(),
                i.paid_sat,
                i.version,
                i.order_id.clone(),
                i.metadata.as_str(),
                i.checkout.as_str(),
                i.receipt.as_str(),
                i.search_text.as_str(),
                i64::from(i.archived),
                i.created_at,
                i.expires_at,
                i.monitoring_until,
                i.updated_at
            ],
            rows: 1,
            refusal: None,
        }];
        records.extend(methods.iter().map(method_insert));
        records.extend(events.iter().map(|e| event_record(e, i.created_at)));
        self.db.apply(records).await
    }

    /// An invoice by id.
    pub async fn merchant_invoice(&self, id: &str) -> Result<Option<MerchantInvoiceRecord>, StoreError> {
        let sql = format!("{INVOICE_COLUMNS} WHERE id = $1");
        self.db
            .query_opt(&sql, params![id])
            .await?
            .as_ref()
            .map(invoice_record)
            .transpose()
    }

    /// A store's invoice made with `key`.
    pub async fn merchant_invoice_by_idempotency(
        &self,
        store_id: &str,
        key: &str,
    ) -> Result<Option<MerchantInvoiceRecord>, StoreError> {
        let sql = format!("{INVOICE_COLUMNS} WHERE store_id = $1 AND idempotency_key = $2");
        self.db
            .query_opt(&sql, params![store_id, key])
            .await?
            .as_ref()
            .map(invoice_record)
            .transpose()
    }

    /// The invoice a payment hash or address belongs to.
    pub async fn merchant_invoice_by_lookup(&self, lookup_key: &str) -> Result<Option<String>, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT invoice_id FROM merchant_invoice_methods WHERE lookup_key = $1",
                params![lookup_key],
            )
            .await?;
        row.map(|r| r.text(0)).transpose()
    }

    /// An invoice's payment methods, superseded ones included: by method, each method's
    /// superseded rows oldest first and its current one last.
    pub async fn merchant_invoice_methods(&self, invoice_id: &str) -> Result<Vec<InvoiceMethodRecord>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT invoice_id, method, destination, lookup_key, amount_sat, superseded_at \
                 FROM merchant_invoice_methods WHERE invoice_id = $1 \
                 ORDER BY method, superseded_at IS NULL, superseded_at, lookup_key",
                params![invoice_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(InvoiceMethodRecord {
                    invoice_id: r.text(0)?,
                    method: r.text(1)?,
                    destination: r.text(2)?,
                    lookup_key: r.text(3)?,
                    amount_sat: r.opt_int(4)?,
                    superseded_at: r.opt_int(5)?,
                })
            })
            .collect()
    }

    /// Replaces the current method `replaced` (its lookup key) of an invoice by `renewed`, as
    /// decided on the invoice's `from_version`, and bumps the version so readers see the new
    /// destination. Refused ([`StoreError::Refused`]) when the invoice changed since or the
    /// method was replaced already; then nothing changes.
    pub async fn merchant_invoice_method_renew(
        &self,
        from_version: i64,
        replaced: &str,
        renewed: &InvoiceMethodRecord,
    ) -> Result<(), StoreError> {
        let now = self.now_ms();
        let invoice_id = renewed.invoice_id.as_str();
        self.db
            .apply(vec![
                Record {
                    sql: "UPDATE merchant_invoices SET version = version + 1, updated_at = $3 \
                          WHERE id = $1 AND version = $2",
                    params: params![invoice_id, from_version, now],
                    rows: 1,
                    refusal: Some("the invoice changed meanwhile"),
                },
                Record {
                    sql: "UPDATE merchant_invoice_methods SET superseded_at = $4 \
                          WHERE invoice_id = $1 AND method = $2 AND lookup_key = $3 AND superseded_at IS NULL",
                    params: params![invoice_id, renewed.method.as_str(), replaced, now],
                    rows: 1,
                    refusal: Some("the payment method was replaced meanwhile"),
                },
                method_insert(renewed),
            ])
            .await
    }

    /// An invoice's payments, oldest first.
    pub async fn merchant_invoice_payments(&self, invoice_id: &str) -> Result<Vec<InvoicePaymentRecord>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT invoice_id, payment_id, method, destination, value_sat, fee_sat, status, received_at \
                 FROM merchant_invoice_payments WHERE invoice_id = $1 ORDER BY received_at, payment_id",
                params![invoice_id],
            )
            .await?;
        rows.iter().map(payment_record).collect()
    }

    /// A store's invoices matching `f`, newest first.
    pub async fn merchant_invoices(
        &self,
        store_id: &str,
        f: &InvoiceFilter,
    ) -> Result<Vec<MerchantInvoiceRecord>, StoreError> {
        let mut args: Vec<Value> = params![store_id];
        let mut sql = format!("{INVOICE_COLUMNS} WHERE store_id = $1");
        let mut next = |sql: &mut String, clause: &str, values: Vec<Value>| {
            let at = args.len() + 1;
            let marks = placeholders(at, values.len());
            sql.push_str(&clause.replace("{}", &marks));
            args.extend(values);
        };
        if !f.order_ids.is_empty() {
            next(
                &mut sql,
                " AND order_id IN ({})",
                f.order_ids.iter().map(|o| Value::from(o.as_str())).collect(),
            );
        }
        if !f.statuses.is_empty() {
            next(
                &mut sql,
                " AND status IN ({})",
                f.statuses.iter().map(|s| Value::from(s.as_str())).collect(),
            );
        }
        if let Some(text) = &f.text {
            let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            next(
                &mut sql,
                " AND search_text LIKE {} ESCAPE '\\'",
                vec![Value::from(format!("%{escaped}%"))],
            );
        }
        if let Some(from) = f.created_from {
            next(&mut sql, " AND created_at >= {}", vec![Value::from(from)]);
        }
        if let Some(to) = f.created_to {
            next(&mut sql, " AND created_at <= {}", vec![Value::from(to)]);
        }
        if !f.include_archived {
            sql.push_str(" AND archived = 0");
        }
        let at = args.len() + 1;
        sql.push_str(&format!(
            " ORDER BY created_at DESC, id DESC LIMIT ${at} OFFSET ${}",
            at + 1
        ));
        args.extend([Value::from(f.take), Value::from(f.skip)]);
        let rows = self.db.query(&sql, args).await?;
        rows.iter().map(invoice_record).collect()
    }

    /// Invoices the watcher must look at while they are monitored: all but the final ones
    /// (`Invalid`, marked by hand), since a late payment may come to an `Expired` one and a
    /// reorganisation may move a `Settled` one back. By id after `after_id`, at most `limit`.
    pub async fn merchant_invoices_watched(
        &self,
        now_ms: i64,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<MerchantInvoiceRecord>, StoreError> {
        let sql = format!(
            "{INVOICE_COLUMNS} WHERE status IN ('New', 'Processing', 'Expired', 'Settled') \
             AND additional_status <> 'Marked' AND monitoring_until > $1 \
             AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows = self.db.query(&sql, params![now_ms, after_id, limit]).await?;
        rows.iter().map(invoice_record).collect()
    }

    /// Invoices the clock may move now: `New` ones past their expiry and `Processing` ones
    /// (waiting for confirmations or the end of monitoring), by id after `after_id`, at most
    /// `limit`.
    pub async fn merchant_invoices_due(
        &self,
        now_ms: i64,
        after_id: &str,
        limit: i64,
    ) -> Result<Vec<MerchantInvoiceRecord>, StoreError> {
        let sql = format!(
            "{INVOICE_COLUMNS} WHERE ((status = 'New' AND expires_at <= $1) OR status = 'Processing') \
             AND id > $2 ORDER BY id LIMIT $3"
        );
        let rows = self.db.query(&sql, params![now_ms, after_id, limit]).await?;
        rows.iter().map(invoice_record).collect()
    }

    /// Applies a transition decided on `t.from_version`, its payments and its events, in one
    /// transaction. Refused ([`StoreError::Refused`]) when the invoice changed since.
    pub async fn merchant_invoice_transition(&self, t: &InvoiceTransition) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut records = vec![Record {
            sql: "UPDATE merchant_invoices SET status = $3, additional_status = $4, paid_sat = $5, \
                  version = version + 1, updated_at = $6 WHERE id = $1 AND version = $2",
            params: params![
                t.invoice_id.as_str(),
                t.from_version,
                t.status.as_str(),
                t.additional_status.as_str(),
                t.paid_sat,
                now
            ],
            rows: 1,
            refusal: Some("the invoice changed meanwhile"),
        }];
        records.extend(t.payments.iter().map(|p| Record {
            sql: "INSERT INTO merchant_invoice_payments (invoice_id, payment_id, method, destination, value_sat, \
                  fee_sat, status, received_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
                  ON CONFLICT (invoice_id, payment_id) DO UPDATE SET value_sat = excluded.value_sat, \
                  fee_sat = excluded.fee_sat, status = excluded.status",
            params: params![
                p.invoice_id.as_str(),
                p.payment_id.as_str(),
                p.method.as_str(),
                p.destination.as_str(),
                p.value_sat,
                p.fee_sat,
                p.status.as_str(),
                p.received_at
            ],
            rows: 1,
            refusal: None,
        }));
        records.extend(t.events.iter().map(|e| event_record(e, now)));
        self.db.apply(records).await
    }

    /// Replaces an invoice's metadata (and the order id and search text taken from it).
    /// Whether the invoice exists.
    pub async fn merchant_invoice_set_metadata(
        &self,
        id: &str,
        metadata: &str,
        order_id: Option<&str>,
        search_text: &str,
    ) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE merchant_invoices SET metadata = $2, order_id = $3, search_text = $4, updated_at = $5 \
                 WHERE id = $1",
                params![id, metadata, order_id, search_text, self.now_ms()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Archives or unarchives an invoice. Whether the invoice exists.
    pub async fn merchant_invoice_set_archived(&self, id: &str, archived: bool) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE merchant_invoices SET archived = $2, updated_at = $3 WHERE id = $1",
                params![id, i64::from(archived), self.now_ms()],
            )
            .await?;
        Ok(n == 1)
    }
}
