//! The invoice service: create an invoice on the bank's rails (a BOLT11 of the bank's node
//! into the store's wallet, a fresh address of that wallet), read and list invoices, change
//! their metadata, archive and mark them, and bring one up to date with its rails.
//!
//! An invoice's state only moves by [`Merchant::refresh_invoice`] (from what the rails say)
//! or by marking, each a guarded transition that appends its events to the outbox in the
//! same transaction.

use flash_bank::{BankError, InvoiceCreate, InvoiceFor, InvoiceStatus as LnStatus};
use flash_core::lightning::Hash32;
use flash_core::price::{BtcPrice, FiatCurrency};
use flash_store::{
    DepositStatus, InvoiceFilter, InvoiceMethodRecord, InvoicePaymentRecord, InvoiceTransition, MerchantInvoiceRecord,
    MerchantStoreRecord, StoreError,
};
use serde_json::{json, Value};

use crate::invoice_data::{
    self, btc, decimal_string, events_of, invoice_json, parse_create, payment_json, sats_due, state_of,
    InvoiceCurrency, PricingError, LIGHTNING, ONCHAIN,
};
use crate::invoice_state::{self, AccountedPayment, InvoiceState, InvoiceStatus, InvoiceTerms};
use crate::permissions::{CAN_CREATE_INVOICE, CAN_MODIFY_INVOICES, CAN_VIEW_INVOICES};
use crate::stores::SpeedPolicy;
use crate::{view_of, Caller, FieldError, Merchant, MerchantError};

/// Longest idempotency key.
const MAX_IDEMPOTENCY_KEY_CHARS: usize = 100;
/// Most invoices one list answers.
pub const MAX_PAGE: i64 = 1_000;
/// Times a refresh retries when another change got in first.
const REFRESH_ATTEMPTS: usize = 5;

/// An invoice with its methods and payments, as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceView {
    /// The invoice.
    pub record: MerchantInvoiceRecord,
    /// How it may be paid now: the current method of each kind.
    pub methods: Vec<InvoiceMethodRecord>,
    /// What was paid.
    pub payments: Vec<InvoicePaymentRecord>,
}

impl InvoiceView {
    /// Greenfield's `InvoiceData`, with its checkout link under `checkout_base`.
    pub fn to_json(&self, checkout_base: &str) -> Value {
        invoice_json(&self.record, checkout_base)
    }

    /// Its status.
    pub fn state(&self) -> InvoiceState {
        state_of(&self.record)
    }

    /// Satoshis still due: the amount less what was paid, never below zero; `None` for a
    /// top-up.
    pub fn still_due_sat(&self) -> Option<i64> {
        self.record.due_sat.map(|due| (due - self.record.paid_sat).max(0))
    }

    /// The Lightning method, when its BOLT11 asks what is due now (a top-up's asks nothing).
    /// After a partial payment the BOLT11 asks the whole amount until the invoice watcher
    /// renews it for the rest.
    pub fn lightning(&self) -> Option<&InvoiceMethodRecord> {
        self.method(LIGHTNING)
            .filter(|ln| ln.amount_sat == self.still_due_sat())
    }

    /// The BIP21 URI paying what is still due on-chain with a Lightning fallback
    /// (`lightning=`, when [`InvoiceView::lightning`] has one), or the BOLT11 alone when there
    /// is no on-chain method.
    pub fn payment_uri(&self) -> Option<String> {
        let ln = self.lightning();
        match self.method(ONCHAIN) {
            Some(chain) => {
                let mut uri = format!("bitcoin:{}", chain.destination);
                let mut sep = '?';
                if let Some(due) = self.still_due_sat().filter(|due| *due > 0) {
                    uri.push_str(&format!("{sep}amount={}", btc(due)));
                    sep = '&';
                }
                if let Some(ln) = ln {
                    uri.push_str(&format!("{sep}lightning={}", ln.destination));
                }
                Some(uri)
            }
            None => ln.map(|ln| format!("lightning:{}", ln.destination)),
        }
    }

    /// One of its current methods.
    pub fn method(&self, id: &str) -> Option<&InvoiceMethodRecord> {
        self.methods.iter().find(|m| m.method == id)
    }

    /// Greenfield's `InvoicePaymentMethodDataModel` list.
    pub fn payment_methods_json(&self, only_accounted: bool) -> Value {
        let r = &self.record;
        let rate = match InvoiceCurrency::parse(&r.currency) {
            Some(InvoiceCurrency::Btc) => "1".to_string(),
            Some(InvoiceCurrency::Sats) => "100000000".to_string(),
            _ => r.rate.clone().unwrap_or_else(|| "0".into()),
        };
        let due = r.due_sat.unwrap_or(0);
        let methods: Vec<Value> = self
            .methods
            .iter()
            .map(|m| {
                let mine: Vec<&InvoicePaymentRecord> = self
                    .payments
                    .iter()
                    .filter(|p| p.method == m.method && (!only_accounted || p.status != "Invalid"))
                    .collect();
                let paid: i64 = mine.iter().filter(|p| p.status != "Invalid").map(|p| p.value_sat).sum();
                let link = match m.method.as_str() {
                    LIGHTNING => format!("lightning:{}", m.destination),
                    _ => self.payment_uri().unwrap_or_default(),
                };
                json!({
                    "paymentMethodId": m.method,
                    "currency": "BTC",
                    "destination": m.destination,
                    "paymentLink": link,
                    "rate": rate,
                    "paymentMethodPaid": btc(paid),
                    "totalPaid": btc(r.paid_sat),
                    "due": btc(if r.due_sat.is_some() { due - r.paid_sat } else { 0 }),
                    "amount": btc(due),
                    "paymentMethodFee": "0",
                    "payments": mine.iter().map(|p| payment_json(p)).collect::<Vec<_>>(),
                    "activated": true,
                    "additionalData": {},
                })
            })
            .collect();
        Value::Array(methods)
    }
}

/// A create request's extras that are not in its body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateOptions {
    /// The `Idempotency-Key` header: a retry with the same key answers the first invoice.
    pub idempotency_key: Option<String>,
    /// The app making it (its sales count it).
    pub app_id: Option<String>,
    /// What its BOLT11 commits to instead of a memo (an LNURL-pay metadata's hash).
    pub description_hash: Option<Hash32>,
}

impl Merchant {
    /// Creates an invoice of `store_id` from Greenfield's `CreateInvoiceRequest`
    /// (`btcpay.store.cancreateinvoice`).
    pub async fn create_invoice(
        &self,
        caller: &Caller,
        store_id: &str,
        body: &Value,
        options: &CreateOptions,
    ) -> Result<InvoiceView, MerchantError> {
        let store = self.store_for(caller, store_id, CAN_CREATE_INVOICE).await?;
        if let Some(key) = &options.idempotency_key {
            if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY_CHARS {
                return Err(MerchantError::field(
                    "Idempotency-Key",
                    "the idempotency key is 1 to 100 characters",
                ));
            }
            if let Some(first) = self.store.merchant_invoice_by_idempotency(store_id, key).await? {
                return self.view(first).await;
            }
        }
        let view = view_of(&store)?;
        let request = parse_create(body, &view).map_err(MerchantError::Invalid)?;
        let price = match &request.currency {
            InvoiceCurrency::Fiat(c) if request.amount.is_some() => Some(self.price(*c).await?),
            _ => None,
        };
        let due_sat = match request.amount {
            Some(amount) => Some(
                sats_due(amount, &request.currency, price.as_ref()).map_err(|e| match e {
                    PricingError::Invalid(m) => MerchantError::field("amount", &m),
                    PricingError::NoRate(c) => MerchantError::RateUnavailable(c),
                })?,
            ),
            None => None,
        };
        let methods = self.methods_for(&request.payment_methods)?;
        let now = self.bank.now_ms();
        let id = invoice_id();
        let expires_at = now.saturating_add(request.expiration_secs.saturating_mul(1_000));
        let mut rails = Vec::new();
        for method in &methods {
            rails.push(
                self.open_method(&store, &id, method, due_sat, &request, options.description_hash)
                    .await?,
            );
        }
        let checkout = request.checkout_json(&methods);
        let record = MerchantInvoiceRecord {
            id: id.clone(),
            store_id: store.id.clone(),
            idempotency_key: options.idempotency_key.clone(),
            app_id: options.app_id.clone(),
            kind: if due_sat.is_some() { "Standard" } else { "TopUp" }.into(),
            amount: request.amount.map_or_else(|| "0".into(), decimal_string),
            currency: request.currency.code(),
            rate: price.as_ref().map(ToString::to_string),
            due_sat,
            tolerance_bps: request.tolerance_bps,
            speed_policy: invoice_data::name(request.speed_policy),
            status: invoice_data::name(InvoiceStatus::New),
            additional_status: invoice_data::name(invoice_state::AdditionalStatus::None),
            paid_sat: 0,
            version: 0,
            order_id: request.order_id().map(str::to_string),
            metadata: Value::Object(request.metadata.clone()).to_string(),
            checkout: checkout.to_string(),
            receipt: Value::Object(request.receipt.clone()).to_string(),
            search_text: invoice_data::search_text(&id, &request.metadata, &request.search_terms),
            archived: false,
            created_at: now,
            expires_at,
            monitoring_until: expires_at.saturating_add(request.monitoring_secs.saturating_mul(1_000)),
            updated_at: now,
        };
        let created = invoice_data::created_event(&record, now);
        match self.store.merchant_invoice_create(&record, &rails, &[created]).await {
            Ok(()) => {}
            Err(e) if e.is_unique_violation() && record.idempotency_key.is_some() => {
                // A concurrent request with the same key won: answer its invoice.
                let key = record.idempotency_key.as_deref().unwrap_or_default();
                if let Some(first) = self.store.merchant_invoice_by_idempotency(store_id, key).await? {
                    return self.view(first).await;
                }
                return Err(e.into());
            }
            Err(e) => return Err(e.into()),
        }
        self.outbox.notify_one();
        Ok(InvoiceView {
            record,
            methods: rails,
            payments: Vec::new(),
        })
    }

    /// One invoice (`btcpay.store.canviewinvoices`); `store_id` when the route names one.
    pub async fn invoice(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        id: &str,
    ) -> Result<InvoiceView, MerchantError> {
        let record = self.own_invoice(caller, store_id, id, CAN_VIEW_INVOICES).await?;
        self.view(record).await
    }

    /// A store's invoices matching `filter`, newest first (`btcpay.store.canviewinvoices`).
    pub async fn invoices(
        &self,
        caller: &Caller,
        store_id: &str,
        filter: &InvoiceFilter,
    ) -> Result<Vec<InvoiceView>, MerchantError> {
        self.store_for(caller, store_id, CAN_VIEW_INVOICES).await?;
        let mut filter = filter.clone();
        filter.take = filter.take.clamp(0, MAX_PAGE);
        filter.skip = filter.skip.max(0);
        let mut views = Vec::new();
        for record in self.store.merchant_invoices(store_id, &filter).await? {
            views.push(self.view(record).await?);
        }
        Ok(views)
    }

    /// Replaces an invoice's metadata (`btcpay.store.canmodifyinvoices`).
    pub async fn update_invoice(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        id: &str,
        body: &Value,
    ) -> Result<InvoiceView, MerchantError> {
        let record = self.own_invoice(caller, store_id, id, CAN_MODIFY_INVOICES).await?;
        let metadata = match body.get("metadata") {
            Some(Value::Object(m)) => m.clone(),
            Some(Value::Null) | None => serde_json::Map::new(),
            Some(_) => return Err(MerchantError::field("metadata", "metadata is a JSON object")),
        };
        if Value::Object(metadata.clone()).to_string().len() > invoice_data::MAX_METADATA_BYTES {
            return Err(MerchantError::field("metadata", "metadata is too large"));
        }
        let order_id = match metadata.get("orderId") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => return Err(MerchantError::field("metadata.orderId", "orderId is a string")),
        };
        let search = invoice_data::search_text(&record.id, &metadata, &[]);
        let text = Value::Object(metadata).to_string();
        if !self
            .store
            .merchant_invoice_set_metadata(&record.id, &text, order_id.as_deref(), &search)
            .await?
        {
            return Err(MerchantError::InvoiceNotFound);
        }
        self.invoice(caller, store_id, id).await
    }

    /// Archives or unarchives an invoice (`btcpay.store.canmodifyinvoices`).
    pub async fn archive_invoice(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        id: &str,
        archived: bool,
    ) -> Result<InvoiceView, MerchantError> {
        let record = self.own_invoice(caller, store_id, id, CAN_MODIFY_INVOICES).await?;
        if !self.store.merchant_invoice_set_archived(&record.id, archived).await? {
            return Err(MerchantError::InvoiceNotFound);
        }
        self.invoice(caller, store_id, id).await
    }

    /// Marks an invoice `Settled` or `Invalid` by hand (`btcpay.store.canmodifyinvoices`).
    pub async fn mark_invoice(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        id: &str,
        to: InvoiceStatus,
    ) -> Result<InvoiceView, MerchantError> {
        let record = self.own_invoice(caller, store_id, id, CAN_MODIFY_INVOICES).await?;
        // Bring it up to date first, so the mark applies to what is true now.
        let record = self.refresh_record(record).await?;
        let state = state_of(&record);
        let Some(marked) = state.mark(to) else {
            return Err(MerchantError::field(
                "status",
                &format!("the invoice cannot be marked {} now", invoice_data::name(to)),
            ));
        };
        let payments = self.store.merchant_invoice_payments(&record.id).await?;
        let events = events_of(&record, &payments, marked, &payments, self.bank.now_ms());
        let transition = InvoiceTransition {
            invoice_id: record.id.clone(),
            from_version: record.version,
            status: invoice_data::name(marked.status),
            additional_status: invoice_data::name(marked.additional),
            paid_sat: record.paid_sat,
            payments: Vec::new(),
            events,
        };
        match self.store.merchant_invoice_transition(&transition).await {
            Ok(()) => {
                self.outbox.notify_one();
                self.payment_request_touched(&record).await?;
            }
            Err(StoreError::Refused(_)) => {
                return Err(MerchantError::field(
                    "status",
                    "the invoice changed meanwhile; try again",
                ))
            }
            Err(e) => return Err(e.into()),
        }
        self.invoice(caller, store_id, id).await
    }

    /// Brings invoice `id` up to date with its rails: records new or changed payments, moves
    /// its state, appends the events. Safe to call from anywhere, any number of times.
    pub async fn refresh_invoice(&self, id: &str) -> Result<(), MerchantError> {
        if let Some(record) = self.store.merchant_invoice(id).await? {
            self.refresh_record(record).await?;
        }
        Ok(())
    }

    pub(crate) async fn refresh_record(
        &self,
        record: MerchantInvoiceRecord,
    ) -> Result<MerchantInvoiceRecord, MerchantError> {
        let record = self.follow_rails(record).await?;
        match self.renew_lightning(&record).await {
            Ok(Some(renewed)) => Ok(renewed),
            Ok(None) => Ok(record),
            Err(error) => {
                // The invoice's state is right; its BOLT11 still asks the whole amount, which
                // the pages and the payment URI leave out. The next refresh tries again.
                tracing::warn!(invoice = %record.id, %error, "could not renew an invoice's Lightning method");
                Ok(record)
            }
        }
    }

    /// Records new or changed payments and moves the invoice's state, retrying when another
    /// change got in first.
    async fn follow_rails(&self, mut record: MerchantInvoiceRecord) -> Result<MerchantInvoiceRecord, MerchantError> {
        for _ in 0..REFRESH_ATTEMPTS {
            let state = state_of(&record);
            if state.additional == invoice_state::AdditionalStatus::Marked || state.status == InvoiceStatus::Invalid {
                return Ok(record);
            }
            // A deleted store's invoices stay as they were.
            let Some(store) = self.store.merchant_store(&record.store_id).await? else {
                return Ok(record);
            };
            let methods = self.store.merchant_invoice_methods(&record.id).await?;
            let before = self.store.merchant_invoice_payments(&record.id).await?;
            let seen = self.observe(&store, &record, &methods, &before).await?;
            let now = self.bank.now_ms();
            let terms = InvoiceTerms {
                due_sats: record.due_sat,
                tolerance_bps: record.tolerance_bps,
                expires_at_ms: record.expires_at,
                monitoring_until_ms: record.monitoring_until,
            };
            let accounted: Vec<AccountedPayment> = seen
                .iter()
                .filter(|p| p.status != "Invalid")
                .map(|p| AccountedPayment {
                    sats: p.value_sat,
                    confirmed: p.status == "Settled",
                })
                .collect();
            let after = invoice_state::next(state, &terms, &accounted, now);
            let paid: i64 = accounted.iter().map(|p| p.sats).sum();
            let changed: Vec<InvoicePaymentRecord> = seen.iter().filter(|p| !before.contains(p)).cloned().collect();
            if after == state && changed.is_empty() && paid == record.paid_sat {
                return Ok(record);
            }
            let transition = InvoiceTransition {
                invoice_id: record.id.clone(),
                from_version: record.version,
                status: invoice_data::name(after.status),
                additional_status: invoice_data::name(after.additional),
                paid_sat: paid,
                events: events_of(&record, &before, after, &seen, now),
                payments: changed,
            };
            match self.store.merchant_invoice_transition(&transition).await {
                Ok(()) => {
                    self.outbox.notify_one();
                    self.payment_request_touched(&record).await?;
                    if after.status == InvoiceStatus::Settled && state.status != InvoiceStatus::Settled {
                        // A customer who paid inside the ledger gets the store's rewards now;
                        // a failure leaves them to the point of sale, which may ask again.
                        if let Err(error) = self.reward_paid_invoice(&record.id, None).await {
                            tracing::warn!(invoice = %record.id, %error, "could not reward a settled invoice");
                        }
                    }
                    return self
                        .store
                        .merchant_invoice(&record.id)
                        .await?
                        .ok_or(MerchantError::InvoiceNotFound);
                }
                Err(StoreError::Refused(_)) => {
                    record = self
                        .store
                        .merchant_invoice(&record.id)
                        .await?
                        .ok_or(MerchantError::InvoiceNotFound)?;
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(record)
    }

    /// When what is still due changed (a partial payment came, or went with its transaction),
    /// replaces the invoice's BOLT11 by one for what is due now (as BTCPay does) and withdraws
    /// the old one, so nobody overpays with it; the old one stays watched, so a payment that
    /// reached it first is still accounted. The invoice as renewed, or `None` when there was
    /// nothing to renew or another change got in first (the next refresh decides again).
    async fn renew_lightning(
        &self,
        record: &MerchantInvoiceRecord,
    ) -> Result<Option<MerchantInvoiceRecord>, MerchantError> {
        let now = self.bank.now_ms();
        let rest = record.due_sat.map_or(0, |due| due - record.paid_sat);
        let payable = state_of(record).status == InvoiceStatus::New && rest > 0 && now < record.expires_at;
        if !payable || self.bank.lightning_node().is_none() {
            return Ok(None);
        }
        let methods = self.store.merchant_invoice_methods(&record.id).await?;
        let Some(current) = methods
            .iter()
            .find(|m| m.method == LIGHTNING && m.superseded_at.is_none())
        else {
            return Ok(None);
        };
        if current.amount_sat == Some(rest) {
            return Ok(None);
        }
        let Some(store) = self.store.merchant_store(&record.store_id).await? else {
            return Ok(None);
        };
        // The new BOLT11 says what the old one said, and expires with the invoice.
        let old_hash: Hash32 = current
            .lookup_key
            .parse()
            .map_err(|_| StoreError::Decode(format!("payment hash {}", current.lookup_key)))?;
        let (memo, description_hash) = match self.bank.ln_invoice_by_hash(old_hash).await {
            Ok(old) => (old.memo, old.description_hash),
            Err(BankError::InvoiceNotFound) => (None, None),
            Err(e) => return Err(e.into()),
        };
        let minutes = (record.expires_at - now + 59_999) / 60_000;
        let renewed = self
            .lightning_method(&store, &record.id, Some(rest), memo, description_hash, minutes)
            .await?;
        let (kept, withdrawn) = match self
            .store
            .merchant_invoice_method_renew(record.version, &current.lookup_key, &renewed)
            .await
        {
            Ok(()) => (true, current.lookup_key.as_str()),
            Err(StoreError::Refused(_)) => (false, renewed.lookup_key.as_str()),
            Err(e) => return Err(e.into()),
        };
        let hash: Hash32 = withdrawn
            .parse()
            .map_err(|_| StoreError::Decode(format!("payment hash {withdrawn}")))?;
        if let Err(error) = self.bank.ln_invoice_withdraw(hash).await {
            tracing::warn!(invoice = %record.id, payment_hash = %hash, %error, "could not withdraw a replaced BOLT11");
        }
        if !kept {
            return Ok(None);
        }
        Ok(self.store.merchant_invoice(&record.id).await?)
    }

    /// The payments the rails show for an invoice now, by every method it had (superseded ones
    /// too); a payment seen before and gone now is kept as `Invalid`.
    async fn observe(
        &self,
        store: &MerchantStoreRecord,
        record: &MerchantInvoiceRecord,
        methods: &[InvoiceMethodRecord],
        before: &[InvoicePaymentRecord],
    ) -> Result<Vec<InvoicePaymentRecord>, MerchantError> {
        let now = self.bank.now_ms();
        let first_seen = |id: &str, at: i64| before.iter().find(|p| p.payment_id == id).map_or(at, |p| p.received_at);
        let mut seen = Vec::new();
        for m in methods {
            match m.method.as_str() {
                LIGHTNING => {
                    let hash: Hash32 = m
                        .lookup_key
                        .parse()
                        .map_err(|_| StoreError::Decode(format!("payment hash {}", m.lookup_key)))?;
                    let invoice = match self.bank.ln_invoice_by_hash(hash).await {
                        Ok(invoice) => invoice,
                        Err(BankError::InvoiceNotFound) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    if let (LnStatus::Paid, Some(sats)) = (invoice.status, invoice.paid_sat) {
                        seen.push(InvoicePaymentRecord {
                            invoice_id: record.id.clone(),
                            payment_id: m.lookup_key.clone(),
                            method: LIGHTNING.into(),
                            destination: m.destination.clone(),
                            value_sat: sats,
                            fee_sat: 0,
                            status: "Settled".into(),
                            received_at: first_seen(&m.lookup_key, invoice.paid_at_ms.unwrap_or(now)),
                        });
                    }
                }
                ONCHAIN => {
                    let deposits = self
                        .bank
                        .onchain_deposits(store.account_id, store.wallet_id, Some(&m.lookup_key), 100)
                        .await?;
                    if deposits.is_empty() {
                        continue;
                    }
                    let tip = self.bank.onchain_status().await?.hot.map(|(tip, _, _)| i64::from(tip));
                    let policy: SpeedPolicy =
                        serde_json::from_value(Value::String(record.speed_policy.clone())).unwrap_or_default();
                    let needed = i64::from(policy.confirmations());
                    for d in deposits {
                        let confirmations = match (d.confirmed_height, tip) {
                            (Some(height), Some(tip)) if tip >= height => tip - height + 1,
                            _ => 0,
                        };
                        let status = match d.status {
                            DepositStatus::Dropped => "Invalid",
                            _ if confirmations >= needed => "Settled",
                            _ => "Processing",
                        };
                        seen.push(InvoicePaymentRecord {
                            invoice_id: record.id.clone(),
                            payment_id: d.outpoint.clone(),
                            method: ONCHAIN.into(),
                            destination: d.address.clone(),
                            value_sat: d.amount_sat,
                            fee_sat: d.fee_sat,
                            status: status.into(),
                            received_at: first_seen(&d.outpoint, d.seen_at_ms),
                        });
                    }
                }
                _ => {}
            }
        }
        let gone: Vec<InvoicePaymentRecord> = before
            .iter()
            .filter(|b| !seen.iter().any(|s| s.payment_id == b.payment_id))
            .map(|b| InvoicePaymentRecord {
                status: "Invalid".into(),
                ..b.clone()
            })
            .collect();
        seen.extend(gone);
        Ok(seen)
    }

    /// The price of one bitcoin in `currency`, to lock into an invoice.
    pub(crate) async fn price(&self, currency: FiatCurrency) -> Result<BtcPrice, MerchantError> {
        let source = self
            .prices
            .as_ref()
            .ok_or_else(|| MerchantError::RateUnavailable(currency.code().to_string()))?;
        source.price(&currency).await.map_err(|e| match e {
            flash_core::price::PriceSourceError::UnknownCurrency(c) => {
                MerchantError::field("currency", &format!("Flash has no rate for {c}"))
            }
            other => MerchantError::RateUnavailable(other.to_string()),
        })
    }

    /// The methods an invoice gets: those asked for (or all) that this Flash's rails offer.
    fn methods_for(&self, asked: &Option<Vec<String>>) -> Result<Vec<&'static str>, MerchantError> {
        let mut offered = Vec::new();
        if self.bank.lightning_node().is_some() {
            offered.push(LIGHTNING);
        }
        if self.bank.onchain_enabled() {
            offered.push(ONCHAIN);
        }
        let methods: Vec<&'static str> = match asked {
            None => offered,
            Some(asked) => offered.into_iter().filter(|m| asked.iter().any(|a| a == m)).collect(),
        };
        if methods.is_empty() {
            return Err(MerchantError::Invalid(vec![FieldError::new(
                "checkout.paymentMethods",
                "none of the payment methods asked for is available on this server",
            )]));
        }
        Ok(methods)
    }

    /// Opens one payment method of a new invoice on its rail.
    async fn open_method(
        &self,
        store: &MerchantStoreRecord,
        invoice_id: &str,
        method: &str,
        due_sat: Option<i64>,
        request: &invoice_data::InvoiceRequest,
        description_hash: Option<Hash32>,
    ) -> Result<InvoiceMethodRecord, MerchantError> {
        match method {
            LIGHTNING => {
                let memo = match (
                    request.metadata.get("itemDesc").and_then(Value::as_str),
                    request.order_id(),
                ) {
                    (Some(item), _) => item.to_string(),
                    (None, Some(order)) => format!("{} (Order ID: {order})", store.name),
                    (None, None) => store.name.clone(),
                };
                let memo: String = memo.chars().filter(|c| !c.is_control()).take(200).collect();
                let minutes = (request.expiration_secs + 59) / 60;
                self.lightning_method(store, invoice_id, due_sat, Some(memo), description_hash, minutes)
                    .await
            }
            _ => {
                let address = self
                    .bank
                    .onchain_address_create(store.account_id, store.wallet_id)
                    .await?;
                Ok(InvoiceMethodRecord {
                    invoice_id: invoice_id.to_string(),
                    method: ONCHAIN.into(),
                    destination: address.clone(),
                    lookup_key: address,
                    amount_sat: None,
                    superseded_at: None,
                })
            }
        }
    }

    /// A Lightning method of invoice `invoice_id`: a BOLT11 of the bank's node for `amount` into
    /// the store's wallet, expiring in `minutes` (within the bank's bounds).
    async fn lightning_method(
        &self,
        store: &MerchantStoreRecord,
        invoice_id: &str,
        amount: Option<i64>,
        memo: Option<String>,
        description_hash: Option<Hash32>,
        minutes: i64,
    ) -> Result<InvoiceMethodRecord, MerchantError> {
        let max = self.bank.config().lightning.invoice_expiry_max_mins;
        let invoice = self
            .bank
            .ln_invoice_create(
                InvoiceFor::Owner(store.account_id),
                InvoiceCreate {
                    wallet_id: store.wallet_id,
                    amount,
                    memo,
                    description_hash,
                    expires_in_mins: Some(minutes.clamp(1, max)),
                },
            )
            .await?;
        Ok(InvoiceMethodRecord {
            invoice_id: invoice_id.to_string(),
            method: LIGHTNING.into(),
            destination: invoice.payment_request,
            lookup_key: invoice.payment_hash.to_string(),
            amount_sat: amount,
            superseded_at: None,
        })
    }

    /// An invoice of one of the caller's stores (of `store_id` when the route names it), that
    /// the caller holds `policy` over; anything else is not found.
    pub(crate) async fn own_invoice(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        id: &str,
        policy: &'static str,
    ) -> Result<MerchantInvoiceRecord, MerchantError> {
        let record = self
            .store
            .merchant_invoice(id)
            .await?
            .ok_or(MerchantError::InvoiceNotFound)?;
        self.reach(caller, store_id, &record.store_id, policy, || {
            MerchantError::InvoiceNotFound
        })
        .await?;
        Ok(record)
    }

    async fn view(&self, record: MerchantInvoiceRecord) -> Result<InvoiceView, MerchantError> {
        let mut methods = self.store.merchant_invoice_methods(&record.id).await?;
        methods.retain(|m| m.superseded_at.is_none());
        let payments = self.store.merchant_invoice_payments(&record.id).await?;
        Ok(InvoiceView {
            record,
            methods,
            payments,
        })
    }

    /// An invoice by id for its public checkout page: no caller, nothing secret in it.
    pub async fn public_invoice(&self, id: &str) -> Result<InvoiceView, MerchantError> {
        let record = self
            .store
            .merchant_invoice(id)
            .await?
            .ok_or(MerchantError::InvoiceNotFound)?;
        self.view(record).await
    }

    /// An invoice's version (bumped by every change of its state or payments), to learn cheaply
    /// whether to read it again.
    pub async fn invoice_version(&self, id: &str) -> Result<i64, MerchantError> {
        let record = self
            .store
            .merchant_invoice(id)
            .await?
            .ok_or(MerchantError::InvoiceNotFound)?;
        Ok(record.version)
    }

    /// The name of the store an invoice belongs to, for its public checkout page; `None` once
    /// the store is gone.
    pub async fn public_store_name(&self, store_id: &str) -> Result<Option<String>, MerchantError> {
        Ok(self.store.merchant_store(store_id).await?.map(|s| s.name))
    }
}

/// A new invoice id: 22 base62 characters (BTCPay's are 22 base58 ones).
fn invoice_id() -> String {
    flash_core::secrets::random_token("", 22)
}
