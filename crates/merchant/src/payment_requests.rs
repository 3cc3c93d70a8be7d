//! Greenfield payment requests: a store asks for an amount (in any currency it prices in),
//! and whoever holds the request pays it in one or more invoices. The request's status is
//! computed from those invoices when it is read (settled against processing against the
//! amount, and the expiry date), and each change of it is appended to the outbox as
//! `PaymentRequestStatusChanged`, under the request's version.
//!
//! A request's invoices are the store's invoices whose order id is `PAY_REQUEST_<id>` (with
//! `metadata.paymentRequestId`), as BTCPay links them; only those in the request's currency
//! count.

use flash_core::price::Decimal;
use flash_store::{InvoiceFilter, MerchantInvoiceRecord, NewMerchantEvent, PaymentRequestRecord, StoreError};
use serde_json::{json, Map, Value};

use crate::invoice_data::{decimal_string, InvoiceCurrency};
use crate::invoice_state::InvoiceStatus;
use crate::permissions::{CAN_MODIFY_PAYMENT_REQUESTS, CAN_VIEW_PAYMENT_REQUESTS};
use crate::{invoice_data, Caller, CreateOptions, FieldError, InvoiceView, Merchant, MerchantError, MAX_PAGE};

/// The order id of a request's invoices is this followed by the request's id.
const ORDER_PREFIX: &str = "PAY_REQUEST_";
/// Longest title, reference, email, form id.
const MAX_SHORT_CHARS: usize = 500;
/// Longest description.
const MAX_DESCRIPTION_CHARS: usize = 10_000;
/// Most bytes of a form response, as JSON.
const MAX_FORM_RESPONSE_BYTES: usize = 16 * 1024;
/// Times a status update retries when another change got in first.
const STATUS_ATTEMPTS: usize = 5;

/// A payment request's status, as Greenfield names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestStatus {
    /// Not enough has been paid or settled.
    Pending,
    /// Paid enough, awaiting settlement.
    Processing,
    /// Paid and settled.
    Completed,
    /// Expired before it was paid.
    Expired,
}

impl RequestStatus {
    /// Its Greenfield name.
    pub fn name(self) -> &'static str {
        match self {
            RequestStatus::Pending => "Pending",
            RequestStatus::Processing => "Processing",
            RequestStatus::Completed => "Completed",
            RequestStatus::Expired => "Expired",
        }
    }
}

/// A payment request's Greenfield fields, checked.
#[derive(Clone, Debug, PartialEq)]
struct RequestData {
    /// The amount, in `currency`.
    amount: Decimal,
    currency: InvoiceCurrency,
    title: String,
    email: Option<String>,
    description: Option<String>,
    /// Unix seconds.
    expiry_date: Option<i64>,
    reference_id: Option<String>,
    allow_custom_payment_amounts: bool,
    form_id: Option<String>,
    form_response: Option<Value>,
}

/// A payment request with its status now, as the API shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentRequestView {
    /// The request as stored.
    pub record: PaymentRequestRecord,
    data: RequestData,
    /// Its status now.
    pub status: RequestStatus,
}

impl PaymentRequestView {
    /// Greenfield's `PaymentRequestData`.
    pub fn to_json(&self) -> Value {
        let mut json = self.data.to_json();
        if let Some(object) = json.as_object_mut() {
            object.insert("id".into(), json!(self.record.id));
            object.insert("storeId".into(), json!(self.record.store_id));
            object.insert("status".into(), json!(self.status.name()));
            object.insert("createdTime".into(), json!(self.record.created_at / 1_000));
        }
        json
    }

    /// What it is for.
    pub fn title(&self) -> &str {
        &self.data.title
    }

    /// The merchant's description (text, never to be shown as markup).
    pub fn description(&self) -> Option<&str> {
        self.data.description.as_deref()
    }

    /// The amount asked, as a decimal in [`PaymentRequestView::currency`].
    pub fn amount(&self) -> String {
        decimal_string(self.data.amount)
    }

    /// The currency's code (`USD`, `BTC`, `SATS`).
    pub fn currency(&self) -> String {
        self.data.currency.code()
    }

    /// When it expires, in Unix seconds.
    pub fn expiry_date(&self) -> Option<i64> {
        self.data.expiry_date
    }

    /// Whether a payer may pay less than what is due (`allowCustomPaymentAmounts`).
    pub fn allows_custom_amounts(&self) -> bool {
        self.data.allow_custom_payment_amounts
    }
}

/// A payment request as its public page shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicPaymentRequest {
    /// The request with its status now.
    pub request: PaymentRequestView,
    /// The name of its store.
    pub store_name: String,
    /// What its settled and processing invoices bring, as a decimal in its currency.
    pub paid: String,
    /// What is still due, as a decimal in its currency (every decimal of the currency written).
    pub due: String,
    /// Its invoices, newest first.
    pub invoices: Vec<RequestInvoice>,
}

/// One invoice of a payment request, as its public page lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestInvoice {
    /// The invoice's id (its checkout page is `/i/{id}`).
    pub id: String,
    /// Its amount, as a decimal in `currency`.
    pub amount: String,
    /// Its currency's code.
    pub currency: String,
    /// Its status.
    pub status: InvoiceStatus,
    /// When it was made, Unix ms.
    pub created_at: i64,
}

/// Who pays a request, which decides what an amount above what is due means and which pending
/// invoice answers instead of a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Payer {
    /// Greenfield's `…/pay`: an amount above what is due is capped; with `reuse`
    /// (`allowPendingInvoiceReuse`) any pending invoice answers.
    Api { reuse: bool },
    /// The public page: an amount above what is due is refused; a pending invoice of the same
    /// amount answers.
    Page,
}

/// Digits a currency's amounts may have after the point.
fn scale_of(currency: &InvoiceCurrency) -> u32 {
    match currency {
        InvoiceCurrency::Btc => 8,
        InvoiceCurrency::Sats => 0,
        InvoiceCurrency::Fiat(c) => u32::from(c.exponent()),
    }
}

/// `amount` in the smallest unit of `currency`; `None` when it has more decimals than that.
pub(crate) fn units(amount: Decimal, currency: &InvoiceCurrency) -> Option<u128> {
    let scale = scale_of(currency);
    let shift = scale.checked_sub(amount.scale)?;
    amount.mantissa.checked_mul(10u128.checked_pow(shift)?)
}

/// `units` of `currency` as a decimal.
pub(crate) fn amount_of(units: u128, currency: &InvoiceCurrency) -> Decimal {
    Decimal {
        mantissa: units,
        scale: scale_of(currency),
    }
}

/// A decimal as BTCPay sends one: a string or a JSON number.
pub(crate) fn decimal_field(v: &Value) -> Option<Decimal> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Decimal::parse(&text).ok()
}

/// An optional string field: absent, `null` or empty is `None`.
pub(crate) fn text_field(
    body: &Map<String, Value>,
    name: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    match body.get(name) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.trim().is_empty() => None,
        Some(Value::String(s)) if s.chars().count() > max => {
            errors.push(FieldError::new(name, &format!("{name} is at most {max} characters")));
            None
        }
        Some(Value::String(s)) => Some(s.trim().to_string()),
        Some(_) => {
            errors.push(FieldError::new(name, &format!("{name} is a string")));
            None
        }
    }
}

impl RequestData {
    /// Reads a create or update body (`PaymentRequestBaseData`); a missing currency is the
    /// store's default.
    fn parse(body: &Value, default_currency: &str) -> Result<RequestData, Vec<FieldError>> {
        let Some(body) = body.as_object() else {
            return Err(vec![FieldError::new("", "the body is a JSON object")]);
        };
        let mut errors = Vec::new();
        let currency = match text_field(body, "currency", 10, &mut errors) {
            None => InvoiceCurrency::parse(default_currency),
            Some(code) => InvoiceCurrency::parse(&code),
        };
        if currency.is_none() && errors.is_empty() {
            errors.push(FieldError::new("currency", "the currency is not known"));
        }
        let amount = match body.get("amount").map(decimal_field) {
            Some(Some(d)) if d.mantissa > 0 => match &currency {
                Some(c) if units(d, c).is_none() => {
                    errors.push(FieldError::new("amount", "amount has more decimals than its currency"));
                    None
                }
                _ => Some(d),
            },
            _ => {
                errors.push(FieldError::new("amount", "Please provide an amount greater than 0"));
                None
            }
        };
        let title = text_field(body, "title", MAX_SHORT_CHARS, &mut errors);
        if title.is_none() && !errors.iter().any(|e| e.path == "title") {
            errors.push(FieldError::new("title", "Title is required"));
        }
        let email = text_field(body, "email", MAX_SHORT_CHARS, &mut errors);
        if email.as_deref().is_some_and(|e| !is_email(e)) {
            errors.push(FieldError::new("email", "Invalid email"));
        }
        let expiry_date = match body.get("expiryDate") {
            None | Some(Value::Null) => None,
            Some(v) => match v
                .as_i64()
                .or_else(|| v.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
            {
                Some(secs) if secs > 0 => Some(secs),
                _ => {
                    errors.push(FieldError::new("expiryDate", "expiryDate is a Unix time in seconds"));
                    None
                }
            },
        };
        let allow_custom_payment_amounts = match body.get("allowCustomPaymentAmounts") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                errors.push(FieldError::new(
                    "allowCustomPaymentAmounts",
                    "allowCustomPaymentAmounts is a boolean",
                ));
                false
            }
        };
        let form_response = match body.get("formResponse") {
            None | Some(Value::Null) => None,
            Some(v @ Value::Object(_)) if v.to_string().len() <= MAX_FORM_RESPONSE_BYTES => Some(v.clone()),
            Some(Value::Object(_)) => {
                errors.push(FieldError::new("formResponse", "formResponse is too large"));
                None
            }
            Some(_) => {
                errors.push(FieldError::new("formResponse", "formResponse is a JSON object"));
                None
            }
        };
        let data = RequestData {
            description: text_field(body, "description", MAX_DESCRIPTION_CHARS, &mut errors),
            reference_id: text_field(body, "referenceId", MAX_SHORT_CHARS, &mut errors),
            form_id: text_field(body, "formId", MAX_SHORT_CHARS, &mut errors),
            email,
            expiry_date,
            allow_custom_payment_amounts,
            form_response,
            title: title.unwrap_or_default(),
            amount: amount.unwrap_or(Decimal { mantissa: 0, scale: 0 }),
            currency: currency.unwrap_or(InvoiceCurrency::Sats),
        };
        if errors.is_empty() {
            Ok(data)
        } else {
            Err(errors)
        }
    }

    /// As stored and shown (without id, store, status and creation time).
    fn to_json(&self) -> Value {
        json!({
            "amount": decimal_string(self.amount),
            "currency": self.currency.code(),
            "title": self.title,
            "email": self.email,
            "description": self.description,
            "expiryDate": self.expiry_date,
            "referenceId": self.reference_id,
            "allowCustomPaymentAmounts": self.allow_custom_payment_amounts,
            "formId": self.form_id,
            "formResponse": self.form_response,
        })
    }

    /// Reads what [`RequestData::to_json`] stored.
    fn stored(record: &PaymentRequestRecord) -> Result<RequestData, MerchantError> {
        let value: Value = serde_json::from_str(&record.data)
            .map_err(|e| StoreError::Decode(format!("payment request {}: {e}", record.id)))?;
        RequestData::parse(&value, "SATS").map_err(|errors| {
            let why: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.path, e.message)).collect();
            MerchantError::Store(StoreError::Decode(format!(
                "payment request {}: {}",
                record.id,
                why.join("; ")
            )))
        })
    }
}

/// Whether `text` looks like an email address (`local@domain.tld`, no spaces).
fn is_email(text: &str) -> bool {
    match text.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !text.contains(char::is_whitespace)
        }
        None => false,
    }
}

/// What has been paid toward a request: settled and processing, in its currency's units.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Paid {
    settled: u128,
    processing: u128,
}

/// Sums the request's invoices in its currency: `Settled` ones count as settled,
/// `Processing` ones as processing, the rest (new, expired, invalid) not at all.
fn paid_toward(data: &RequestData, invoices: &[MerchantInvoiceRecord]) -> Paid {
    let mut paid = Paid::default();
    let code = data.currency.code();
    for invoice in invoices.iter().filter(|i| i.currency == code) {
        let Some(amount) = Decimal::parse(&invoice.amount)
            .ok()
            .and_then(|d| units(d, &data.currency))
        else {
            continue;
        };
        match invoice_data::state_of(invoice).status {
            InvoiceStatus::Settled => paid.settled = paid.settled.saturating_add(amount),
            InvoiceStatus::Processing => paid.processing = paid.processing.saturating_add(amount),
            _ => {}
        }
    }
    paid
}

/// What is still due on a request paid `paid`, in its currency's units.
fn still_due(data: &RequestData, paid: Paid) -> u128 {
    let asked = units(data.amount, &data.currency).unwrap_or(0);
    asked.saturating_sub(paid.settled.saturating_add(paid.processing))
}

/// The status of a request paid `paid`, at `now_ms`: completed once settled in full (even
/// after its expiry), else expired past its expiry date, else processing when what is paid
/// and not yet settled covers the rest, else pending.
fn status_of(data: &RequestData, paid: Paid, now_ms: i64) -> RequestStatus {
    let due = units(data.amount, &data.currency).unwrap_or(u128::MAX);
    if paid.settled >= due {
        RequestStatus::Completed
    } else if data
        .expiry_date
        .is_some_and(|secs| secs.saturating_mul(1_000) <= now_ms)
    {
        RequestStatus::Expired
    } else if paid.settled.saturating_add(paid.processing) >= due {
        RequestStatus::Processing
    } else {
        RequestStatus::Pending
    }
}

/// A payment request event's body.
fn request_event(record: &PaymentRequestRecord, kind: &str, status: RequestStatus, now_ms: i64) -> NewMerchantEvent {
    NewMerchantEvent {
        store_id: record.store_id.clone(),
        event_type: kind.to_string(),
        payload: json!({
            "type": kind,
            "timestamp": now_ms / 1_000,
            "storeId": record.store_id,
            "paymentRequestId": record.id,
            "status": status.name(),
        })
        .to_string(),
    }
}

fn data_text(data: &RequestData) -> String {
    data.to_json().to_string()
}

impl Merchant {
    /// Creates a payment request of `store_id` (`btcpay.store.canmodifypaymentrequests`).
    pub async fn create_payment_request(
        &self,
        caller: &Caller,
        store_id: &str,
        body: &Value,
    ) -> Result<PaymentRequestView, MerchantError> {
        let store = self.store_for(caller, store_id, CAN_MODIFY_PAYMENT_REQUESTS).await?;
        let data = RequestData::parse(body, &store.default_currency).map_err(MerchantError::Invalid)?;
        let now = self.bank.now_ms();
        let status = status_of(&data, Paid::default(), now);
        let record = PaymentRequestRecord {
            id: uuid::Uuid::now_v7().simple().to_string(),
            store_id: store.id.clone(),
            data: data_text(&data),
            status: status.name().into(),
            archived: false,
            version: 0,
            created_at: now,
            updated_at: now,
        };
        let created = request_event(&record, "PaymentRequestCreated", status, now);
        self.store.merchant_payment_request_create(&record, &[created]).await?;
        self.outbox.notify_one();
        Ok(PaymentRequestView { record, data, status })
    }

    /// A store's payment requests that are not archived, newest first
    /// (`btcpay.store.canviewpaymentrequests`).
    pub async fn payment_requests(
        &self,
        caller: &Caller,
        store_id: &str,
    ) -> Result<Vec<PaymentRequestView>, MerchantError> {
        self.store_for(caller, store_id, CAN_VIEW_PAYMENT_REQUESTS).await?;
        let mut views = Vec::new();
        for record in self.store.merchant_payment_requests_of(store_id).await? {
            if !record.archived {
                views.push(self.current(record).await?);
            }
        }
        Ok(views)
    }

    /// One payment request (`btcpay.store.canviewpaymentrequests`); `store_id` when the route
    /// names one.
    pub async fn payment_request(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        id: &str,
    ) -> Result<PaymentRequestView, MerchantError> {
        let record = self
            .own_request(caller, store_id, id, CAN_VIEW_PAYMENT_REQUESTS)
            .await?;
        self.current(record).await
    }

    /// Replaces a payment request's fields (`btcpay.store.canmodifypaymentrequests`).
    pub async fn update_payment_request(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        id: &str,
        body: &Value,
    ) -> Result<PaymentRequestView, MerchantError> {
        let record = self
            .own_request(caller, store_id, id, CAN_MODIFY_PAYMENT_REQUESTS)
            .await?;
        let store = self.own_store(caller.account, &record.store_id).await?;
        let data = RequestData::parse(body, &store.default_currency).map_err(MerchantError::Invalid)?;
        let mut next = record.clone();
        next.data = data_text(&data);
        next.updated_at = self.bank.now_ms();
        self.change_request(next, "PaymentRequestUpdated").await
    }

    /// Archives a payment request (`btcpay.store.canmodifypaymentrequests`).
    pub async fn archive_payment_request(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        id: &str,
    ) -> Result<(), MerchantError> {
        let record = self
            .own_request(caller, store_id, id, CAN_MODIFY_PAYMENT_REQUESTS)
            .await?;
        if record.archived {
            return Ok(());
        }
        let mut next = record.clone();
        next.archived = true;
        next.updated_at = self.bank.now_ms();
        self.change_request(next, "PaymentRequestArchived").await.map(|_| ())
    }

    /// Makes an invoice for what a payment request still asks, or for `amount` (at most what
    /// it asks) when it allows custom amounts; with `allowPendingInvoiceReuse`, answers a
    /// pending invoice of the request instead when there is one
    /// (`btcpay.store.canviewpaymentrequests`).
    pub async fn pay_payment_request(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        id: &str,
        body: &Value,
    ) -> Result<InvoiceView, MerchantError> {
        let record = self
            .own_request(caller, store_id, id, CAN_VIEW_PAYMENT_REQUESTS)
            .await?;
        let body = match body {
            Value::Null => Map::new(),
            Value::Object(m) => m.clone(),
            _ => return Err(MerchantError::field("", "the body is a JSON object")),
        };
        let reuse = body.get("allowPendingInvoiceReuse") == Some(&Value::Bool(true));
        self.pay_request(record, body.get("amount"), Payer::Api { reuse }).await
    }

    /// A payment request by id for its public page, with no caller: whoever holds the id may
    /// see it, as BTCPay's `/payment-requests/{id}`. An archived request is not found.
    pub async fn public_payment_request(&self, id: &str) -> Result<PublicPaymentRequest, MerchantError> {
        let record = self.open_request(id).await?;
        let request = self.current(record).await?;
        let mut records = self.request_invoices(&request.record).await?;
        records.sort_by_key(|i| std::cmp::Reverse(i.created_at));
        let data = &request.data;
        let paid = paid_toward(data, &records);
        let store_name = self
            .public_store_name(&request.record.store_id)
            .await?
            .unwrap_or_default();
        let invoices = records
            .iter()
            .map(|i| RequestInvoice {
                id: i.id.clone(),
                amount: i.amount.clone(),
                currency: i.currency.clone(),
                status: invoice_data::state_of(i).status,
                created_at: i.created_at,
            })
            .collect();
        Ok(PublicPaymentRequest {
            paid: decimal_string(amount_of(paid.settled.saturating_add(paid.processing), &data.currency)),
            due: decimal_string(amount_of(still_due(data, paid), &data.currency)),
            store_name,
            invoices,
            request,
        })
    }

    /// Pays a payment request from its public page, with no caller (the request's id is the
    /// capability, as on BTCPay's page): for `amount` (as typed, in the request's currency;
    /// only when it allows custom amounts, and never more than is due) or, without one, for
    /// what is due. A pending invoice of the same amount answers instead of a new one.
    pub async fn pay_public_payment_request(
        &self,
        id: &str,
        amount: Option<&str>,
    ) -> Result<InvoiceView, MerchantError> {
        let record = self.open_request(id).await?;
        let amount = amount.map(|a| Value::String(a.to_string()));
        self.pay_request(record, amount.as_ref(), Payer::Page).await
    }

    /// A payment request that is not archived, by id alone.
    async fn open_request(&self, id: &str) -> Result<PaymentRequestRecord, MerchantError> {
        match self.store.merchant_payment_request(id).await? {
            Some(record) if !record.archived => Ok(record),
            _ => Err(MerchantError::PaymentRequestNotFound),
        }
    }

    /// Makes (or finds) the invoice paying `record`: `amount` (a Greenfield decimal) or what is
    /// still due, as `payer` may ask.
    async fn pay_request(
        &self,
        record: PaymentRequestRecord,
        amount: Option<&Value>,
        payer: Payer,
    ) -> Result<InvoiceView, MerchantError> {
        let view = self.current(record).await?;
        if view.record.archived {
            return Err(MerchantError::PaymentRequestClosed("archived"));
        }
        match view.status {
            RequestStatus::Expired => return Err(MerchantError::PaymentRequestClosed("expired")),
            RequestStatus::Completed | RequestStatus::Processing => {
                return Err(MerchantError::PaymentRequestClosed("already-paid"))
            }
            RequestStatus::Pending => {}
        }
        let data = &view.data;
        let invoices = self.request_invoices(&view.record).await?;
        let now = self.bank.now_ms();
        let mut pending = invoices
            .iter()
            .filter(|i| invoice_data::state_of(i).status == InvoiceStatus::New && i.expires_at > now);
        if payer == (Payer::Api { reuse: true }) {
            if let Some(pending) = pending.next() {
                return self.public_invoice(&pending.id).await;
            }
        }
        let due = still_due(data, paid_toward(data, &invoices));
        let amount = match amount {
            None | Some(Value::Null) => due,
            Some(v) => {
                let custom = decimal_field(v)
                    .filter(|d| d.mantissa > 0)
                    .and_then(|d| units(d, &data.currency))
                    .ok_or_else(|| {
                        MerchantError::field("amount", "amount is a positive decimal in the request's currency")
                    })?;
                if custom != due && !data.allow_custom_payment_amounts {
                    return Err(MerchantError::field(
                        "amount",
                        "this payment request does not allow custom payment amounts",
                    ));
                }
                if custom > due && payer == Payer::Page {
                    return Err(MerchantError::field(
                        "amount",
                        &format!(
                            "amount is more than what is still due ({} {})",
                            decimal_string(amount_of(due, &data.currency)),
                            data.currency.code()
                        ),
                    ));
                }
                custom.min(due)
            }
        };
        if payer == Payer::Page {
            let same = pending.find(|i| {
                Decimal::parse(&i.amount).ok().and_then(|d| units(d, &data.currency)) == Some(amount)
                    && i.currency == data.currency.code()
            });
            if let Some(same) = same {
                return self.public_invoice(&same.id).await;
            }
        }
        let mut metadata = json!({
            "orderId": format!("{ORDER_PREFIX}{}", view.record.id),
            "paymentRequestId": view.record.id,
            "itemDesc": data.title,
        });
        if let Some(email) = &data.email {
            metadata["buyerEmail"] = json!(email);
        }
        let invoice = json!({
            "amount": decimal_string(amount_of(amount, &data.currency)),
            "currency": data.currency.code(),
            "metadata": metadata,
        });
        let store = self
            .store
            .merchant_store(&view.record.store_id)
            .await?
            .ok_or(MerchantError::PaymentRequestNotFound)?;
        self.create_invoice(
            &Caller::owner(store.account_id),
            &store.id,
            &invoice,
            &CreateOptions::default(),
        )
        .await
    }

    /// Brings the status of the payment request an invoice was made for (if any) up to date,
    /// appending `PaymentRequestStatusChanged` when it moved. Called after each change of an
    /// invoice's state.
    pub(crate) async fn payment_request_touched(&self, invoice: &MerchantInvoiceRecord) -> Result<(), MerchantError> {
        let Some(id) = invoice.order_id.as_deref().and_then(|o| o.strip_prefix(ORDER_PREFIX)) else {
            return Ok(());
        };
        match self.store.merchant_payment_request(id).await? {
            Some(record) if record.store_id == invoice.store_id => self.current(record).await.map(|_| ()),
            _ => Ok(()),
        }
    }

    /// The request with its status now; when that differs from the one last recorded, records
    /// it with its `PaymentRequestStatusChanged` event first.
    async fn current(&self, mut record: PaymentRequestRecord) -> Result<PaymentRequestView, MerchantError> {
        for _ in 0..STATUS_ATTEMPTS {
            let data = RequestData::stored(&record)?;
            let invoices = self.request_invoices(&record).await?;
            let now = self.bank.now_ms();
            let status = status_of(&data, paid_toward(&data, &invoices), now);
            if status.name() == record.status {
                return Ok(PaymentRequestView { record, data, status });
            }
            let mut next = record.clone();
            next.status = status.name().into();
            next.updated_at = now;
            let event = request_event(&next, "PaymentRequestStatusChanged", status, now);
            match self.store.merchant_payment_request_update(&next, &[event]).await {
                Ok(()) => {
                    self.outbox.notify_one();
                    next.version += 1;
                    return Ok(PaymentRequestView {
                        record: next,
                        data,
                        status,
                    });
                }
                Err(StoreError::Refused(_)) => {
                    record = self
                        .store
                        .merchant_payment_request(&record.id)
                        .await?
                        .ok_or(MerchantError::PaymentRequestNotFound)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        let data = RequestData::stored(&record)?;
        let status = status_of(
            &data,
            paid_toward(&data, &self.request_invoices(&record).await?),
            self.bank.now_ms(),
        );
        Ok(PaymentRequestView { record, data, status })
    }

    /// Writes a changed request (its fields or archived flag) with `kind`'s event, and a
    /// status change it causes.
    async fn change_request(
        &self,
        next: PaymentRequestRecord,
        kind: &str,
    ) -> Result<PaymentRequestView, MerchantError> {
        let data = RequestData::stored(&next)?;
        let status = status_of(
            &data,
            paid_toward(&data, &self.request_invoices(&next).await?),
            next.updated_at,
        );
        let mut events = vec![request_event(&next, kind, status, next.updated_at)];
        let mut next = next;
        if status.name() != next.status {
            next.status = status.name().into();
            events.push(request_event(
                &next,
                "PaymentRequestStatusChanged",
                status,
                next.updated_at,
            ));
        }
        match self.store.merchant_payment_request_update(&next, &events).await {
            Ok(()) => {}
            Err(StoreError::Refused(_)) => {
                return Err(MerchantError::field(
                    "",
                    "the payment request changed meanwhile; try again",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        self.outbox.notify_one();
        next.version += 1;
        Ok(PaymentRequestView {
            record: next,
            data,
            status,
        })
    }

    /// The invoices made for a request, archived ones too.
    async fn request_invoices(
        &self,
        record: &PaymentRequestRecord,
    ) -> Result<Vec<MerchantInvoiceRecord>, MerchantError> {
        let filter = InvoiceFilter {
            order_ids: vec![format!("{ORDER_PREFIX}{}", record.id)],
            include_archived: true,
            take: MAX_PAGE,
            ..InvoiceFilter::default()
        };
        Ok(self.store.merchant_invoices(&record.store_id, &filter).await?)
    }

    /// A payment request of one of the caller's stores (of `store_id` when the route names
    /// it), that the caller holds `policy` over; anything else is not found.
    async fn own_request(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        id: &str,
        policy: &'static str,
    ) -> Result<PaymentRequestRecord, MerchantError> {
        let record = self
            .store
            .merchant_payment_request(id)
            .await?
            .ok_or(MerchantError::PaymentRequestNotFound)?;
        self.reach(caller, store_id, &record.store_id, policy, || {
            MerchantError::PaymentRequestNotFound
        })
        .await?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(body: Value) -> RequestData {
        RequestData::parse(&body, "USD").expect("valid")
    }

    fn invoice(amount: &str, currency: &str, status: &str) -> MerchantInvoiceRecord {
        MerchantInvoiceRecord {
            id: "i".into(),
            store_id: "s".into(),
            idempotency_key: None,
            app_id: None,
            kind: "Standard".into(),
            amount: amount.into(),
            currency: currency.into(),
            rate: None,
            due_sat: Some(1),
            tolerance_bps: 0,
            speed_policy: "MediumSpeed".into(),
            status: status.into(),
            additional_status: "None".into(),
            paid_sat: 0,
            version: 0,
            order_id: None,
            metadata: "{}".into(),
            checkout: "{}".into(),
            receipt: "{}".into(),
            search_text: String::new(),
            archived: false,
            created_at: 0,
            expires_at: 0,
            monitoring_until: 0,
            updated_at: 0,
        }
    }

    #[test]
    fn status_follows_settled_then_expiry_then_processing() {
        let d = data(json!({"amount": "10.50", "title": "Rent", "expiryDate": 100}));
        assert_eq!(d.currency.code(), "USD");
        let none = paid_toward(&d, &[]);
        assert_eq!(status_of(&d, none, 99_000), RequestStatus::Pending);
        assert_eq!(status_of(&d, none, 100_000), RequestStatus::Expired);
        let part = paid_toward(
            &d,
            &[invoice("5", "USD", "Settled"), invoice("5.5", "USD", "Processing")],
        );
        assert_eq!((part.settled, part.processing), (500, 550));
        assert_eq!(status_of(&d, part, 1), RequestStatus::Processing);
        let other = paid_toward(
            &d,
            &[invoice("10.5", "EUR", "Settled"), invoice("10.5", "USD", "Expired")],
        );
        assert_eq!(
            other,
            Paid::default(),
            "other currencies and unpaid invoices do not count"
        );
        let full = paid_toward(&d, &[invoice("5", "USD", "Settled"), invoice("5.5", "USD", "Settled")]);
        assert_eq!(status_of(&d, full, 200_000), RequestStatus::Completed);
    }

    #[test]
    fn bodies_are_checked_field_by_field() {
        let errors = RequestData::parse(
            &json!({"amount": "0", "currency": "XXXX1", "email": "nope", "expiryDate": "x"}),
            "USD",
        )
        .expect_err("invalid");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["currency", "amount", "title", "email", "expiryDate"]);
        let errors = RequestData::parse(&json!({"amount": "1.001", "title": "t"}), "USD").expect_err("decimals");
        assert_eq!(errors[0].path, "amount");
        let d = data(json!({"amount": 2, "title": " t ", "currency": "sats", "allowCustomPaymentAmounts": true}));
        assert_eq!(
            d.to_json(),
            json!({"amount": "2", "currency": "SATS", "title": "t", "email": null, "description": null,
                   "expiryDate": null, "referenceId": null, "allowCustomPaymentAmounts": true, "formId": null,
                   "formResponse": null})
        );
    }
}
