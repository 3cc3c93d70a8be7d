//! Stores as Greenfield shows them (`StoreData`) and the checks on what a caller sends
//! (`StoreBaseData`): each problem named by its JSON path, as BTCPay's validation answers do.

use flash_core::price::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{Number, Value};

use crate::error::FieldError;

/// BTCPay's default invoice expiry (15 minutes), seconds.
pub const DEFAULT_INVOICE_EXPIRATION_SECS: i64 = 900;
/// BTCPay's default monitoring after expiry (1 day), seconds.
pub const DEFAULT_MONITORING_EXPIRATION_SECS: i64 = 86_400;
/// Shortest expiry or monitoring window accepted: one minute.
const MIN_WINDOW_SECS: i64 = 60;
/// Longest expiry or monitoring window accepted: thirty days.
const MAX_WINDOW_SECS: i64 = 30 * 86_400;
/// Longest store name.
const MAX_NAME_CHARS: usize = 50;

/// How many confirmations an on-chain payment needs before the invoice settles.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpeedPolicy {
    /// Zero confirmations.
    HighSpeed,
    /// One confirmation.
    #[default]
    MediumSpeed,
    /// Two confirmations.
    LowMediumSpeed,
    /// Six confirmations.
    LowSpeed,
}

impl SpeedPolicy {
    /// Confirmations an on-chain payment needs under this policy.
    pub fn confirmations(self) -> u32 {
        match self {
            SpeedPolicy::HighSpeed => 0,
            SpeedPolicy::MediumSpeed => 1,
            SpeedPolicy::LowMediumSpeed => 2,
            SpeedPolicy::LowSpeed => 6,
        }
    }
}

/// A store's settings other than its name and default currency, as kept in the store's row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreSettings {
    /// The store's web site.
    pub website: Option<String>,
    /// Seconds after which an unpaid invoice expires.
    pub invoice_expiration: i64,
    /// Seconds after expiry during which payments are still watched.
    pub monitoring_expiration: i64,
    /// Confirmations policy for on-chain payments.
    pub speed_policy: SpeedPolicy,
    /// Shortfall accepted as full payment, in hundredths of a percent (0..=10,000).
    pub payment_tolerance_bps: i64,
    /// Whether anyone may create invoices without a key.
    pub anyone_can_create_invoice: bool,
    /// Whether the checkout shows Lightning amounts in satoshis.
    pub lightning_amount_in_satoshi: bool,
    /// Whether the checkout redirects by itself after payment.
    pub redirect_automatically: bool,
    /// The checkout's default language.
    pub default_lang: String,
    /// The checkout page's title.
    pub html_title: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            website: None,
            invoice_expiration: DEFAULT_INVOICE_EXPIRATION_SECS,
            monitoring_expiration: DEFAULT_MONITORING_EXPIRATION_SECS,
            speed_policy: SpeedPolicy::default(),
            payment_tolerance_bps: 0,
            anyone_can_create_invoice: false,
            lightning_amount_in_satoshi: false,
            redirect_automatically: false,
            default_lang: "en".into(),
            html_title: None,
        }
    }
}

/// A store as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreView {
    /// Its id.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Its default currency.
    pub default_currency: String,
    /// Whether it is archived.
    pub archived: bool,
    /// Everything else.
    pub settings: StoreSettings,
}

impl StoreView {
    /// BTCPay's `StoreData` JSON.
    pub fn to_json(&self) -> Value {
        let s = &self.settings;
        serde_json::json!({
            "id": self.id,
            "name": self.name,
            "website": s.website,
            "defaultCurrency": self.default_currency,
            "invoiceExpiration": s.invoice_expiration,
            "monitoringExpiration": s.monitoring_expiration,
            "speedPolicy": s.speed_policy,
            "paymentTolerance": percent(s.payment_tolerance_bps),
            "archived": self.archived,
            "anyoneCanCreateInvoice": s.anyone_can_create_invoice,
            "lightningAmountInSatoshi": s.lightning_amount_in_satoshi,
            "redirectAutomatically": s.redirect_automatically,
            "defaultLang": s.default_lang,
            "htmlTitle": s.html_title,
            "displayExpirationTimer": 300,
            "refundBOLT11Expiration": 30,
            "lightningPrivateRouteHints": false,
            "onChainWithLnInvoiceFallback": true,
            "showRecommendedFee": true,
            "recommendedFeeBlockTarget": 1,
            "payJoinEnabled": false,
            "autoDetectLanguage": false,
            "showPayInWalletButton": true,
            "showStoreHeader": true,
            "celebratePayment": true,
            "playSoundOnPayment": false,
            "lazyPaymentMethods": false,
            "applyBrandColorToBackend": false,
            "additionalTrackedRates": [],
            "paymentMethodCriteria": [],
        })
    }
}

/// Hundredths of a percent as a JSON number of percent (`150` → `1.5`).
pub(crate) fn percent(bps: i64) -> Value {
    let text = if bps % 100 == 0 {
        (bps / 100).to_string()
    } else {
        format!("{}.{:02}", bps / 100, bps % 100)
            .trim_end_matches('0')
            .to_string()
    };
    text.parse::<Number>().map_or(Value::Null, Value::Number)
}

/// A percentage 0..=100 with at most two decimals, as hundredths of a percent.
pub(crate) fn tolerance_bps(value: &Value) -> Option<i64> {
    let Value::Number(n) = value else {
        return None;
    };
    let bps = Decimal::parse(&n.to_string()).ok()?.shift_left(2).ok()?;
    if bps.scale != 0 {
        return None;
    }
    i64::try_from(bps.mantissa).ok().filter(|b| (0..=10_000).contains(b))
}

/// A currency code as stores use it: three to five letters (`USD`, `BTC`, `SATS`), uppercased.
pub fn currency_code(text: &str) -> Option<String> {
    let text = text.trim();
    ((3..=5).contains(&text.len()) && text.bytes().all(|b| b.is_ascii_alphabetic())).then(|| text.to_ascii_uppercase())
}

/// A store's name, currency, archived flag and settings after applying `body` (BTCPay's
/// `StoreBaseData`) to `base`: every problem found, or the result. Fields not sent keep
/// `base`'s values (a create starts from the defaults).
pub fn apply(base: &StoreView, body: &Value) -> Result<StoreView, Vec<FieldError>> {
    let mut errors = Vec::new();
    let Some(fields) = body.as_object() else {
        return Err(vec![FieldError::new("", "the body must be a JSON object")]);
    };
    let mut next = base.clone();
    let get = |name: &str| fields.get(name).filter(|v| !v.is_null());
    match get("name").map(Value::as_str) {
        Some(Some(name)) if !name.trim().is_empty() && name.trim().chars().count() <= MAX_NAME_CHARS => {
            next.name = name.trim().to_string();
        }
        Some(_) => errors.push(FieldError::new("name", "name is required, at most 50 characters")),
        None if base.name.is_empty() => errors.push(FieldError::new("name", "name is missing")),
        None => {}
    }
    if let Some(v) = get("website") {
        match v.as_str() {
            Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
                next.settings.website = Some(url.to_string())
            }
            _ => errors.push(FieldError::new("website", "website is not a valid absolute url")),
        }
    }
    if let Some(v) = get("defaultCurrency") {
        match v.as_str().and_then(currency_code) {
            Some(code) => next.default_currency = code,
            None => errors.push(FieldError::new(
                "defaultCurrency",
                "defaultCurrency is not a currency code",
            )),
        }
    }
    for (name, slot) in [
        ("invoiceExpiration", &mut next.settings.invoice_expiration),
        ("monitoringExpiration", &mut next.settings.monitoring_expiration),
    ] {
        if let Some(v) = get(name) {
            match v.as_i64().filter(|s| (MIN_WINDOW_SECS..=MAX_WINDOW_SECS).contains(s)) {
                Some(secs) => *slot = secs,
                None => errors.push(FieldError::new(
                    name,
                    &format!("{name} must be whole seconds between {MIN_WINDOW_SECS} and {MAX_WINDOW_SECS}"),
                )),
            }
        }
    }
    if let Some(v) = get("speedPolicy") {
        match serde_json::from_value::<SpeedPolicy>(v.clone()) {
            Ok(policy) => next.settings.speed_policy = policy,
            Err(_) => errors.push(FieldError::new(
                "speedPolicy",
                "speedPolicy is one of HighSpeed, MediumSpeed, LowMediumSpeed, LowSpeed",
            )),
        }
    }
    if let Some(v) = get("paymentTolerance") {
        match tolerance_bps(v) {
            Some(bps) => next.settings.payment_tolerance_bps = bps,
            None => errors.push(FieldError::new(
                "paymentTolerance",
                "paymentTolerance is a percentage between 0 and 100, at most two decimals",
            )),
        }
    }
    for (name, slot) in [
        ("anyoneCanCreateInvoice", &mut next.settings.anyone_can_create_invoice),
        (
            "lightningAmountInSatoshi",
            &mut next.settings.lightning_amount_in_satoshi,
        ),
        ("redirectAutomatically", &mut next.settings.redirect_automatically),
    ] {
        if let Some(v) = get(name) {
            match v.as_bool() {
                Some(b) => *slot = b,
                None => errors.push(FieldError::new(name, &format!("{name} is true or false"))),
            }
        }
    }
    if let Some(v) = get("archived") {
        match v.as_bool() {
            Some(b) => next.archived = b,
            None => errors.push(FieldError::new("archived", "archived is true or false")),
        }
    }
    if let Some(v) = get("defaultLang") {
        match v.as_str().filter(|s| !s.is_empty() && s.len() <= 20) {
            Some(s) => next.settings.default_lang = s.to_string(),
            None => errors.push(FieldError::new("defaultLang", "defaultLang is a short language code")),
        }
    }
    if let Some(v) = get("htmlTitle") {
        match v.as_str().filter(|s| s.chars().count() <= 255) {
            Some(s) => next.settings.html_title = Some(s.to_string()),
            None => errors.push(FieldError::new("htmlTitle", "htmlTitle is at most 255 characters")),
        }
    }
    if errors.is_empty() {
        Ok(next)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn blank() -> StoreView {
        StoreView {
            id: "s".into(),
            name: String::new(),
            default_currency: "USD".into(),
            archived: false,
            settings: StoreSettings::default(),
        }
    }

    #[test]
    fn a_store_needs_a_name_and_takes_btcpays_defaults() {
        let errors = apply(&blank(), &json!({})).expect_err("no name");
        assert_eq!(errors[0].path, "name");
        let store = apply(&blank(), &json!({"name": " Shop "})).expect("valid");
        assert_eq!(store.name, "Shop");
        assert_eq!(store.settings.invoice_expiration, 900);
        assert_eq!(store.to_json()["speedPolicy"], json!("MediumSpeed"));
        assert_eq!(store.to_json()["paymentTolerance"], json!(0));
    }

    #[test]
    fn every_bad_field_is_named_by_its_path() {
        let body = json!({
            "name": "x", "website": "ftp://x", "defaultCurrency": "US1", "invoiceExpiration": 5,
            "monitoringExpiration": "a day", "speedPolicy": "Fastest", "paymentTolerance": 100.5,
            "archived": "yes"
        });
        let paths: Vec<String> = apply(&blank(), &body)
            .expect_err("bad")
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "website",
                "defaultCurrency",
                "invoiceExpiration",
                "monitoringExpiration",
                "speedPolicy",
                "paymentTolerance",
                "archived"
            ]
        );
    }

    #[test]
    fn tolerance_is_kept_exactly_in_hundredths_of_a_percent() {
        let store = apply(&blank(), &json!({"name": "x", "paymentTolerance": 1.5})).expect("valid");
        assert_eq!(store.settings.payment_tolerance_bps, 150);
        assert_eq!(store.to_json()["paymentTolerance"], json!(1.5));
        assert!(apply(&blank(), &json!({"name": "x", "paymentTolerance": 1.505})).is_err());
        assert!(apply(&blank(), &json!({"name": "x", "paymentTolerance": -1})).is_err());
    }
}
