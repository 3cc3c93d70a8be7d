//! Greenfield invoice data, pure: what a create request asks (validated field by field, the
//! amount turned into satoshis at a rate locked then), how an invoice and its payments are
//! shown, and the events a change of its state causes. The service that does the I/O is
//! `invoices.rs`; the watcher that sees payments is `watcher.rs`.

use flash_core::price::{format_minor, BtcPrice, Decimal, FiatCurrency, SATS_PER_BTC};
use flash_store::{InvoicePaymentRecord, MerchantInvoiceRecord, NewMerchantEvent};
use serde_json::{json, Map, Value};

use crate::invoice_state::{AdditionalStatus, InvoiceState, InvoiceStatus};
use crate::stores::{self, SpeedPolicy, StoreView};
use crate::FieldError;

/// Greenfield's id of the Lightning payment method.
pub const LIGHTNING: &str = "BTC-LN";
/// Greenfield's id of the on-chain payment method.
pub const ONCHAIN: &str = "BTC-CHAIN";
/// Most bytes of an invoice's metadata, as JSON.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Most satoshis one invoice may ask for: every bitcoin there will be.
const MAX_SATS: i64 = 21_000_000 * 100_000_000;
/// Most additional search terms, and characters in each.
const MAX_SEARCH_TERMS: usize = 20;
const MAX_SEARCH_TERM_CHARS: usize = 100;
/// Longest redirect URL.
const MAX_URL_CHARS: usize = 2_000;

/// The unit an invoice is priced in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvoiceCurrency {
    /// Bitcoin, up to eight decimals.
    Btc,
    /// Satoshis, whole.
    Sats,
    /// A fiat currency, converted at the rate of the invoice's creation.
    Fiat(FiatCurrency),
}

impl InvoiceCurrency {
    /// The currency a code names (`BTC`, `SATS`, an ISO 4217 code), any case.
    pub fn parse(code: &str) -> Option<InvoiceCurrency> {
        let code = stores::currency_code(code)?;
        match code.as_str() {
            "BTC" => Some(InvoiceCurrency::Btc),
            "SATS" => Some(InvoiceCurrency::Sats),
            other => FiatCurrency::new(other).ok().map(InvoiceCurrency::Fiat),
        }
    }

    /// Its code.
    pub fn code(&self) -> String {
        match self {
            InvoiceCurrency::Btc => "BTC".into(),
            InvoiceCurrency::Sats => "SATS".into(),
            InvoiceCurrency::Fiat(c) => c.code().to_string(),
        }
    }
}

/// A create request, checked: everything an invoice is made from except the rails' parts.
#[derive(Clone, Debug, PartialEq)]
pub struct InvoiceRequest {
    /// The amount asked, in `currency`; `None` for a top-up invoice.
    pub amount: Option<Decimal>,
    /// The currency.
    pub currency: InvoiceCurrency,
    /// The metadata object (`orderId`, `itemDesc`, `posData`, anything).
    pub metadata: Map<String, Value>,
    /// Speed policy for on-chain payments.
    pub speed_policy: SpeedPolicy,
    /// The payment methods asked for (`None`: every one the store has).
    pub payment_methods: Option<Vec<String>>,
    /// The method the checkout shows first.
    pub default_payment_method: Option<String>,
    /// Seconds until it expires.
    pub expiration_secs: i64,
    /// Seconds after expiry that payments are still watched.
    pub monitoring_secs: i64,
    /// Tolerance, hundredths of a percent.
    pub tolerance_bps: i64,
    /// Where the checkout sends the payer after paying.
    pub redirect_url: Option<String>,
    /// Whether it goes there by itself.
    pub redirect_automatically: bool,
    /// The checkout's language.
    pub default_language: Option<String>,
    /// The receipt options, as sent.
    pub receipt: Map<String, Value>,
    /// Extra words the list's text search finds it by.
    pub search_terms: Vec<String>,
}

impl InvoiceRequest {
    /// `metadata.orderId`, if it is a string.
    pub fn order_id(&self) -> Option<&str> {
        self.metadata.get("orderId").and_then(Value::as_str)
    }

    /// The checkout options as Greenfield shows them, defaults resolved.
    pub fn checkout_json(&self, methods: &[&str]) -> Value {
        json!({
            "speedPolicy": self.speed_policy,
            "paymentMethods": methods,
            "defaultPaymentMethod": self.default_payment_method.clone().or_else(|| methods.first().map(|m| m.to_string())),
            "lazyPaymentMethods": false,
            "expirationMinutes": self.expiration_secs / 60,
            "monitoringMinutes": self.monitoring_secs / 60,
            "paymentTolerance": stores::percent(self.tolerance_bps),
            "redirectURL": self.redirect_url,
            "redirectAutomatically": self.redirect_automatically,
            "defaultLanguage": self.default_language,
        })
    }
}

/// Reads a Greenfield `CreateInvoiceRequest` against the store's defaults: every problem
/// found, by path, or the request.
pub fn parse_create(body: &Value, store: &StoreView) -> Result<InvoiceRequest, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(fields) = body.as_object() else {
        return Err(vec![FieldError::new("", "the body must be a JSON object")]);
    };
    let get = |name: &str| fields.get(name).filter(|v| !v.is_null());
    let currency = match get("currency") {
        None => InvoiceCurrency::parse(&store.default_currency),
        Some(Value::String(s)) if s.trim().is_empty() => InvoiceCurrency::parse(&store.default_currency),
        Some(v) => v.as_str().and_then(InvoiceCurrency::parse),
    };
    if currency.is_none() {
        errors.push(FieldError::new("currency", "currency is not a currency Flash knows"));
    }
    let amount = match get("amount") {
        None => None,
        Some(v) => match decimal_of(v) {
            Some(d) if d.mantissa > 0 => Some(d),
            Some(_) => {
                errors.push(FieldError::new(
                    "amount",
                    "amount must be above zero (leave it out for a top-up invoice)",
                ));
                None
            }
            None => {
                errors.push(FieldError::new("amount", "amount is a positive decimal number"));
                None
            }
        },
    };
    let metadata = match get("metadata") {
        None => Map::new(),
        Some(Value::Object(m)) => {
            if Value::Object(m.clone()).to_string().len() > MAX_METADATA_BYTES {
                errors.push(FieldError::new(
                    "metadata",
                    &format!("metadata is at most {MAX_METADATA_BYTES} bytes of JSON"),
                ));
            }
            m.clone()
        }
        Some(_) => {
            errors.push(FieldError::new("metadata", "metadata is a JSON object"));
            Map::new()
        }
    };
    if metadata.get("orderId").is_some_and(|o| !o.is_null() && !o.is_string()) {
        errors.push(FieldError::new("metadata.orderId", "orderId is a string"));
    }
    let settings = &store.settings;
    let mut request = InvoiceRequest {
        amount,
        currency: currency.clone().unwrap_or(InvoiceCurrency::Btc),
        metadata,
        speed_policy: settings.speed_policy,
        payment_methods: None,
        default_payment_method: None,
        expiration_secs: settings.invoice_expiration,
        monitoring_secs: settings.monitoring_expiration,
        tolerance_bps: settings.payment_tolerance_bps,
        redirect_url: None,
        redirect_automatically: settings.redirect_automatically,
        default_language: None,
        receipt: Map::new(),
        search_terms: Vec::new(),
    };
    match get("checkout") {
        None => {}
        Some(Value::Object(checkout)) => read_checkout(checkout, &mut request, &mut errors),
        Some(_) => errors.push(FieldError::new("checkout", "checkout is a JSON object")),
    }
    match get("receipt") {
        None => {}
        Some(Value::Object(receipt)) => {
            for (name, v) in receipt {
                if !["enabled", "showQR", "showPayments"].contains(&name.as_str()) {
                    continue;
                }
                if v.is_null() || v.is_boolean() {
                    request.receipt.insert(name.clone(), v.clone());
                } else {
                    errors.push(FieldError::new(
                        &format!("receipt.{name}"),
                        &format!("{name} is true or false"),
                    ));
                }
            }
        }
        Some(_) => errors.push(FieldError::new("receipt", "receipt is a JSON object")),
    }
    match get("additionalSearchTerms") {
        None => {}
        Some(Value::Array(terms)) if terms.len() <= MAX_SEARCH_TERMS => {
            for (i, t) in terms.iter().enumerate() {
                match t.as_str() {
                    Some(s) if s.chars().count() <= MAX_SEARCH_TERM_CHARS => request.search_terms.push(s.to_string()),
                    _ => errors.push(FieldError::new(
                        &format!("additionalSearchTerms[{i}]"),
                        "a search term is a string of at most 100 characters",
                    )),
                }
            }
        }
        Some(_) => errors.push(FieldError::new(
            "additionalSearchTerms",
            "additionalSearchTerms is a list of at most 20 strings",
        )),
    }
    if errors.is_empty() {
        Ok(request)
    } else {
        Err(errors)
    }
}

fn read_checkout(checkout: &Map<String, Value>, r: &mut InvoiceRequest, errors: &mut Vec<FieldError>) {
    let get = |name: &str| checkout.get(name).filter(|v| !v.is_null());
    if let Some(v) = get("speedPolicy") {
        match serde_json::from_value::<SpeedPolicy>(v.clone()) {
            Ok(p) => r.speed_policy = p,
            Err(_) => errors.push(FieldError::new(
                "checkout.speedPolicy",
                "speedPolicy is one of HighSpeed, MediumSpeed, LowMediumSpeed, LowSpeed",
            )),
        }
    }
    if let Some(v) = get("paymentMethods") {
        match v.as_array() {
            Some(items) => {
                let mut methods = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.as_str().and_then(method_id) {
                        Some(m) => methods.push(m.to_string()),
                        None => errors.push(FieldError::new(
                            &format!("checkout.paymentMethods[{i}]"),
                            "a payment method is BTC-LN, BTC-LNURL or BTC-CHAIN",
                        )),
                    }
                }
                r.payment_methods = Some(methods);
            }
            None => errors.push(FieldError::new(
                "checkout.paymentMethods",
                "paymentMethods is a list of payment method ids",
            )),
        }
    }
    if let Some(v) = get("defaultPaymentMethod") {
        match v.as_str().and_then(method_id) {
            Some(m) => r.default_payment_method = Some(m.to_string()),
            None => errors.push(FieldError::new(
                "checkout.defaultPaymentMethod",
                "defaultPaymentMethod is BTC-LN, BTC-LNURL or BTC-CHAIN",
            )),
        }
    }
    for (name, slot, min) in [
        ("expirationMinutes", &mut r.expiration_secs, 1),
        ("monitoringMinutes", &mut r.monitoring_secs, 0),
    ] {
        if let Some(v) = get(name) {
            match minutes(v).filter(|m| (min..=MAX_WINDOW_MINUTES).contains(m)) {
                Some(m) => *slot = m * 60,
                None => errors.push(FieldError::new(
                    &format!("checkout.{name}"),
                    &format!("{name} is whole minutes between {min} and {MAX_WINDOW_MINUTES}"),
                )),
            }
        }
    }
    if let Some(v) = get("paymentTolerance") {
        match stores::tolerance_bps(v) {
            Some(bps) => r.tolerance_bps = bps,
            None => errors.push(FieldError::new(
                "checkout.paymentTolerance",
                "paymentTolerance is a percentage between 0 and 100, at most two decimals",
            )),
        }
    }
    if let Some(v) = get("redirectURL") {
        match v.as_str() {
            Some(url)
                if url.chars().count() <= MAX_URL_CHARS
                    && (url.starts_with("https://") || url.starts_with("http://")) =>
            {
                r.redirect_url = Some(url.to_string())
            }
            _ => errors.push(FieldError::new(
                "checkout.redirectURL",
                "redirectURL is an absolute http(s) URL",
            )),
        }
    }
    if let Some(v) = get("redirectAutomatically") {
        match v.as_bool() {
            Some(b) => r.redirect_automatically = b,
            None => errors.push(FieldError::new(
                "checkout.redirectAutomatically",
                "redirectAutomatically is true or false",
            )),
        }
    }
    if let Some(v) = get("defaultLanguage") {
        match v.as_str().filter(|s| !s.is_empty() && s.len() <= 20) {
            Some(s) => r.default_language = Some(s.to_string()),
            None => errors.push(FieldError::new(
                "checkout.defaultLanguage",
                "defaultLanguage is a short language code",
            )),
        }
    }
}

/// Longest expiry or monitoring window, minutes: thirty days.
const MAX_WINDOW_MINUTES: i64 = 30 * 24 * 60;

/// A whole number of minutes (BTCPay sends them as JSON numbers, sometimes `15.0`).
fn minutes(v: &Value) -> Option<i64> {
    let d = Decimal::parse(&v.as_number()?.to_string()).ok()?;
    (d.scale == 0).then(|| i64::try_from(d.mantissa).ok()).flatten()
}

/// A payment method id in Greenfield's current form, from it or an older name.
pub fn method_id(text: &str) -> Option<&'static str> {
    match text.trim().to_ascii_uppercase().as_str() {
        "BTC-LN" | "BTC-LIGHTNING" | "BTC-LIGHTNINGNETWORK" | "BTC_LIGHTNINGLIKE" => Some(LIGHTNING),
        "BTC-CHAIN" | "BTC" | "BTC-ONCHAIN" | "BTC_ONCHAIN" => Some(ONCHAIN),
        "BTC-LNURL" | "BTC-LNURLPAY" | "BTC_LNURLPAY" => Some("BTC-LNURL"),
        _ => None,
    }
}

/// An amount as BTCPay sends it: a decimal string, or a JSON number.
fn decimal_of(v: &Value) -> Option<Decimal> {
    let text = match v {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    Decimal::parse(&text).ok()
}

/// Why an amount could not be priced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PricingError {
    /// The amount has more decimals than its currency, or is out of range: a field error.
    Invalid(String),
    /// No rate could be had (the price source is down): try again.
    NoRate(String),
}

/// Satoshis due for `amount` of `currency`, rounded up (the payer never pays less than the
/// amount); `price` is the rate locked now for a fiat currency.
pub fn sats_due(amount: Decimal, currency: &InvoiceCurrency, price: Option<&BtcPrice>) -> Result<i64, PricingError> {
    let whole = |d: Decimal, what: &str| -> Result<i64, PricingError> {
        if d.scale != 0 {
            return Err(PricingError::Invalid(format!(
                "amount has more decimals than {what} allows"
            )));
        }
        i64::try_from(d.mantissa).map_err(|_| PricingError::Invalid("amount is too large".into()))
    };
    let too_big = || PricingError::Invalid("amount is too large".into());
    let sats = match currency {
        InvoiceCurrency::Btc => whole(amount.shift_left(8).map_err(|_| too_big())?, "BTC")?,
        InvoiceCurrency::Sats => whole(amount, "SATS")?,
        InvoiceCurrency::Fiat(c) => {
            let minor = whole(
                amount.shift_left(u32::from(c.exponent())).map_err(|_| too_big())?,
                c.code(),
            )?;
            let price = price.ok_or_else(|| PricingError::NoRate(c.code().to_string()))?;
            price.sats_for_fiat(minor).map_err(|_| too_big())?.get()
        }
    };
    if sats > MAX_SATS {
        return Err(too_big());
    }
    if sats < 1 {
        return Err(PricingError::Invalid("amount is less than one satoshi".into()));
    }
    Ok(sats)
}

/// `sats` as a BTC decimal string with no trailing zeros (`12_345` → `"0.00012345"`).
pub fn btc(sats: i64) -> String {
    let sign = if sats < 0 { "-" } else { "" };
    let magnitude = u128::from(sats.unsigned_abs());
    let (whole, frac) = (magnitude / SATS_PER_BTC, magnitude % SATS_PER_BTC);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let frac = format!("{frac:08}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

/// An exact decimal as its shortest string.
pub fn decimal_string(d: Decimal) -> String {
    let digits = d.mantissa.to_string();
    let scale = d.scale as usize;
    if scale == 0 {
        return digits;
    }
    let padded = format!("{digits:0>width$}", width = scale + 1);
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{int}.{frac}")
}

/// The invoice's status as Greenfield names it, from the stored text.
pub fn state_of(record: &MerchantInvoiceRecord) -> InvoiceState {
    let status = serde_json::from_value(Value::String(record.status.clone())).unwrap_or(InvoiceStatus::Invalid);
    let additional =
        serde_json::from_value(Value::String(record.additional_status.clone())).unwrap_or(AdditionalStatus::None);
    InvoiceState { status, additional }
}

/// A name as stored (`"Settled"`).
pub fn name<T: serde::Serialize>(value: T) -> String {
    match serde_json::to_value(value) {
        Ok(Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The amount paid so far in the invoice's currency, as Greenfield shows `paidAmount`.
pub fn paid_amount(record: &MerchantInvoiceRecord) -> String {
    match InvoiceCurrency::parse(&record.currency) {
        Some(InvoiceCurrency::Sats) => record.paid_sat.to_string(),
        Some(InvoiceCurrency::Fiat(c)) => record
            .rate
            .as_deref()
            .and_then(|rate| BtcPrice::from_major_str(c, rate, record.created_at, "locked").ok())
            .and_then(|price| price.fiat_for_sats(record.paid_sat).ok())
            .map_or_else(|| "0".into(), |minor| format_minor(minor, c)),
        _ => btc(record.paid_sat),
    }
}

/// Greenfield's `InvoiceData`.
pub fn invoice_json(record: &MerchantInvoiceRecord, checkout_base: &str) -> Value {
    let state = state_of(record);
    let parse = |text: &str| serde_json::from_str::<Value>(text).unwrap_or_else(|_| json!({}));
    json!({
        "id": record.id,
        "storeId": record.store_id,
        "amount": record.amount,
        "paidAmount": paid_amount(record),
        "currency": record.currency,
        "type": record.kind,
        "checkoutLink": format!("{checkout_base}/i/{}", record.id),
        "createdTime": record.created_at / 1_000,
        "expirationTime": record.expires_at / 1_000,
        "monitoringExpiration": record.monitoring_until / 1_000,
        "status": state.status,
        "additionalStatus": state.additional,
        "availableStatusesForManualMarking": state.markable(),
        "archived": record.archived,
        "metadata": parse(&record.metadata),
        "checkout": parse(&record.checkout),
        "receipt": parse(&record.receipt),
    })
}

/// Greenfield's `Payment`.
pub fn payment_json(p: &InvoicePaymentRecord) -> Value {
    json!({
        "id": p.payment_id,
        "receivedDate": p.received_at / 1_000,
        "value": btc(p.value_sat),
        "fee": btc(p.fee_sat),
        "status": p.status,
        "destination": p.destination,
    })
}

/// The text the list's `textSearch` looks in: the id, order id, item and buyer fields and the
/// extra terms, lower-cased.
pub fn search_text(id: &str, metadata: &Map<String, Value>, terms: &[String]) -> String {
    let mut words = vec![id.to_string()];
    for key in ["orderId", "itemDesc", "itemCode", "buyerName", "buyerEmail", "orderUrl"] {
        if let Some(Value::String(s)) = metadata.get(key) {
            words.push(s.clone());
        }
    }
    words.extend(terms.iter().cloned());
    words.join(" ").to_lowercase()
}

/// The `InvoiceCreated` event of a new invoice.
pub fn created_event(record: &MerchantInvoiceRecord, now_ms: i64) -> NewMerchantEvent {
    invoice_event(record, "InvoiceCreated", json!({}), now_ms)
}

/// An invoice event's body: the fields every invoice event has, and `extra`.
fn invoice_event(record: &MerchantInvoiceRecord, kind: &str, extra: Value, now_ms: i64) -> NewMerchantEvent {
    let metadata = serde_json::from_str::<Value>(&record.metadata).unwrap_or_else(|_| json!({}));
    let mut body = json!({
        "type": kind,
        "timestamp": now_ms / 1_000,
        "storeId": record.store_id,
        "invoiceId": record.id,
        "metadata": metadata,
    });
    if let (Some(body), Value::Object(extra)) = (body.as_object_mut(), extra) {
        body.extend(extra);
    }
    NewMerchantEvent {
        store_id: record.store_id.clone(),
        event_type: kind.to_string(),
        payload: body.to_string(),
    }
}

/// The events moving `record` (with `before` payments) to `after` (with `now_payments`)
/// causes, in BTCPay's order: each new payment, then the status change, then each payment
/// that settled.
pub fn events_of(
    record: &MerchantInvoiceRecord,
    before: &[InvoicePaymentRecord],
    after: InvoiceState,
    now_payments: &[InvoicePaymentRecord],
    now_ms: i64,
) -> Vec<NewMerchantEvent> {
    use InvoiceStatus as S;
    let from = state_of(record);
    let event = |kind: &str, extra: Value| invoice_event(record, kind, extra, now_ms);
    let payment_event = |kind: &str, p: &InvoicePaymentRecord| {
        event(
            kind,
            json!({
                "afterExpiration": p.received_at >= record.expires_at,
                "paymentMethodId": p.method,
                "payment": payment_json(p),
                "overPaid": after.additional == AdditionalStatus::PaidOver,
            }),
        )
    };
    let previous = |p: &InvoicePaymentRecord| before.iter().find(|b| b.payment_id == p.payment_id);
    let mut events = Vec::new();
    for p in now_payments {
        if p.status != "Invalid" && previous(p).is_none_or(|b| b.status == "Invalid") {
            events.push(payment_event("InvoiceReceivedPayment", p));
        }
    }
    let over = after.additional == AdditionalStatus::PaidOver;
    let marked = after.additional == AdditionalStatus::Marked;
    if after.status != from.status {
        if matches!(after.status, S::Processing | S::Settled) && !marked && from.status != S::Processing {
            events.push(event("InvoiceProcessing", json!({"overPaid": over})));
        }
        match after.status {
            S::Settled => events.push(event(
                "InvoiceSettled",
                json!({"manuallyMarked": marked, "overPaid": over}),
            )),
            S::Invalid => events.push(event("InvoiceInvalid", json!({"manuallyMarked": marked}))),
            S::Expired => events.push(event(
                "InvoiceExpired",
                json!({"partiallyPaid": after.additional == AdditionalStatus::PaidPartial}),
            )),
            S::New | S::Processing => {}
        }
    }
    for p in now_payments {
        if p.status == "Settled" && previous(p).is_none_or(|b| b.status != "Settled") {
            events.push(payment_event("InvoicePaymentSettled", p));
        }
    }
    events
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn btc_strings_are_exact_and_short() {
        assert_eq!(btc(0), "0");
        assert_eq!(btc(12_345), "0.00012345");
        assert_eq!(btc(100_000_000), "1");
        assert_eq!(btc(150_000_000), "1.5");
        assert_eq!(btc(-1), "-0.00000001");
        let d = |s| Decimal::parse(s).expect("decimal");
        assert_eq!(decimal_string(d("5.00")), "5");
        assert_eq!(decimal_string(d("0.0012")), "0.0012");
        assert_eq!(decimal_string(d("12.5")), "12.5");
    }

    #[test]
    fn amounts_become_satoshis_rounded_for_the_merchant() {
        let d = |s| Decimal::parse(s).expect("decimal");
        assert_eq!(sats_due(d("0.00012345"), &InvoiceCurrency::Btc, None), Ok(12_345));
        assert!(matches!(
            sats_due(d("0.000000001"), &InvoiceCurrency::Btc, None),
            Err(PricingError::Invalid(_))
        ));
        assert_eq!(sats_due(d("1500"), &InvoiceCurrency::Sats, None), Ok(1_500));
        assert!(sats_due(d("1.5"), &InvoiceCurrency::Sats, None).is_err());
        let usd = FiatCurrency::usd();
        let price = BtcPrice::from_major_str(usd, "100000", 0, "test").expect("price");
        // $5.00 at $100,000/BTC = 5,000 sats; $0.001 has too many decimals for USD.
        assert_eq!(
            sats_due(d("5.00"), &InvoiceCurrency::Fiat(usd), Some(&price)),
            Ok(5_000)
        );
        assert_eq!(sats_due(d("0.01"), &InvoiceCurrency::Fiat(usd), Some(&price)), Ok(10));
        assert!(matches!(
            sats_due(d("0.001"), &InvoiceCurrency::Fiat(usd), Some(&price)),
            Err(PricingError::Invalid(_))
        ));
        assert_eq!(
            sats_due(d("1"), &InvoiceCurrency::Fiat(usd), None),
            Err(PricingError::NoRate("USD".into()))
        );
        assert!(sats_due(d("30000000"), &InvoiceCurrency::Btc, None).is_err());
    }

    #[test]
    fn method_names_old_and_new_are_understood() {
        assert_eq!(method_id("BTC-LightningNetwork"), Some(LIGHTNING));
        assert_eq!(method_id("btc"), Some(ONCHAIN));
        assert_eq!(method_id("BTC-CHAIN"), Some(ONCHAIN));
        assert_eq!(method_id("LTC"), None);
    }
}
