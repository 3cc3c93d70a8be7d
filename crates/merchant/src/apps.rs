//! Point-of-sale apps (BTCPay's `PointOfSale` app): their settings and items, the public order
//! that turns a keypad amount or a cart (with a discount and a tip) into a store invoice priced
//! on the server, and the sales read back from those invoices (`sales`, `top-items`).

use std::collections::BTreeMap;

use flash_core::price::{format_minor, Decimal};
use flash_store::{MerchantAppRecord, MerchantStoreRecord};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::invoice_data::{btc, InvoiceCurrency};
use crate::permissions::{CAN_MODIFY_STORE_SETTINGS, CAN_VIEW_STORE_SETTINGS};
use crate::{Caller, CreateOptions, FieldError, InvoiceView, Merchant, MerchantError};

/// BTCPay's type name of a point of sale.
pub const POINT_OF_SALE: &str = "PointOfSale";
/// Most items one app sells.
const MAX_ITEMS: usize = 500;
/// Most units of one item in one order, and most lines in a cart.
const MAX_COUNT: i64 = 10_000;
/// Longest text setting.
const MAX_TEXT_CHARS: usize = 2_000;
/// Longest app name.
const MAX_NAME_CHARS: usize = 50;
/// Most days a sales series covers.
const MAX_SALES_DAYS: i64 = 366;
const DAY_MS: i64 = 86_400_000;

/// How a point of sale shows itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PosView {
    /// A list of items, each with its own buy button.
    Static,
    /// Items into a cart, paid at once.
    Cart,
    /// A keypad for an amount (with items when `showItems`).
    #[default]
    Light,
    /// A printable list of items.
    Print,
}

/// How an item is priced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PriceType {
    /// At its price.
    #[default]
    Fixed,
    /// At whatever the buyer pays.
    Topup,
    /// At least its price.
    Minimum,
}

/// One thing a point of sale sells (BTCPay's `AppItem`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AppItem {
    /// Its id, unique in the app.
    pub id: String,
    /// Its name.
    pub title: String,
    /// What it is.
    pub description: Option<String>,
    /// A picture's URL.
    pub image: Option<String>,
    /// Its price in the app's currency, a decimal string.
    pub price: Option<String>,
    /// How it is priced.
    pub price_type: PriceType,
    /// The buy button's text.
    pub buy_button_text: Option<String>,
    /// Units left (shown; an item at zero cannot be ordered).
    pub inventory: Option<i64>,
    /// Hidden from the app.
    pub disabled: bool,
}

/// A point of sale's settings (BTCPay's `PointOfSaleBaseData` beyond the app's identity).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PosSettings {
    /// The title shown.
    pub title: Option<String>,
    /// The description shown.
    pub description: Option<String>,
    /// Its view.
    pub default_view: PosView,
    /// Items with the keypad.
    pub show_items: bool,
    /// A custom amount may be entered.
    pub show_custom_amount: bool,
    /// A discount may be entered.
    pub show_discount: bool,
    /// A search bar.
    pub show_search: bool,
    /// Item categories.
    pub show_categories: bool,
    /// Tips may be added.
    pub enable_tips: bool,
    /// Its currency (`None`: the store's).
    pub currency: Option<String>,
    /// Pay button text for priced items (`{0}` is the price).
    pub fixed_amount_pay_button_text: Option<String>,
    /// Pay button text for custom amounts.
    pub custom_amount_pay_button_text: Option<String>,
    /// The tip prompt.
    pub tip_text: Option<String>,
    /// Tip percentages offered.
    pub custom_tip_percentages: Vec<i64>,
    /// BTCPay's notification URL (kept; Flash notifies through webhooks).
    pub notification_url: Option<String>,
    /// Where the payer goes after paying.
    pub redirect_url: Option<String>,
    /// Whether the payer goes there by itself.
    pub redirect_automatically: Option<bool>,
    /// The page's language.
    pub html_lang: Option<String>,
    /// Extra meta tags (kept, not rendered: Flash's pages take no operator HTML).
    pub html_meta_tags: Option<String>,
    /// A form id (kept; forms are not served).
    pub form_id: Option<String>,
}

impl Default for PosSettings {
    fn default() -> Self {
        PosSettings {
            title: None,
            description: None,
            default_view: PosView::Light,
            show_items: false,
            show_custom_amount: true,
            show_discount: false,
            show_search: true,
            show_categories: true,
            enable_tips: false,
            currency: None,
            fixed_amount_pay_button_text: Some("Buy for {0}".into()),
            custom_amount_pay_button_text: Some("Pay".into()),
            tip_text: Some("Do you want to leave a tip?".into()),
            custom_tip_percentages: vec![15, 18, 20],
            notification_url: None,
            redirect_url: None,
            redirect_automatically: None,
            html_lang: None,
            html_meta_tags: None,
            form_id: None,
        }
    }
}

/// A point of sale as the API shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PosApp {
    /// Its id.
    pub id: String,
    /// Its store.
    pub store_id: String,
    /// Its name.
    pub name: String,
    /// Whether it is archived.
    pub archived: bool,
    /// Unix ms.
    pub created_at: i64,
    /// Its settings.
    pub settings: PosSettings,
    /// What it sells.
    pub items: Vec<AppItem>,
    /// The currency its prices are in (its own, or the store's).
    pub currency: String,
}

impl PosApp {
    fn from_record(r: &MerchantAppRecord, store: &MerchantStoreRecord) -> Result<PosApp, MerchantError> {
        let decode = |what: &str, e: serde_json::Error| {
            MerchantError::Store(flash_store::StoreError::Decode(format!("app {what}: {e}")))
        };
        let settings: PosSettings = serde_json::from_str(&r.settings).map_err(|e| decode("settings", e))?;
        let items: Vec<AppItem> = serde_json::from_str(&r.items).map_err(|e| decode("items", e))?;
        let currency = settings
            .currency
            .clone()
            .unwrap_or_else(|| store.default_currency.clone());
        Ok(PosApp {
            id: r.id.clone(),
            store_id: r.store_id.clone(),
            name: r.name.clone(),
            archived: r.archived,
            created_at: r.created_at,
            settings,
            items,
            currency,
        })
    }

    /// BTCPay's `AppBaseData`.
    pub fn base_json(&self) -> Value {
        json!({
            "id": self.id,
            "appName": self.name,
            "storeId": self.store_id,
            "created": self.created_at / 1_000,
            "appType": POINT_OF_SALE,
            "archived": self.archived,
        })
    }

    /// BTCPay's `PointOfSaleAppData`.
    pub fn to_json(&self) -> Value {
        let mut json = self.base_json();
        if let (Some(out), Ok(Value::Object(settings))) = (json.as_object_mut(), serde_json::to_value(&self.settings)) {
            out.extend(settings);
            out.insert("currency".into(), json!(self.currency));
            out.insert("items".into(), json!(self.items));
        }
        json
    }
}

/// Reads `body` (BTCPay's `PointOfSaleAppRequest`) over `base`: the name, settings and items,
/// or every problem by path.
fn apply(
    base: (&str, &PosSettings, &[AppItem]),
    body: &Value,
) -> Result<(String, PosSettings, Vec<AppItem>), Vec<FieldError>> {
    let Some(fields) = body.as_object() else {
        return Err(vec![FieldError::new("", "the body must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let get = |name: &str| fields.get(name).filter(|v| !v.is_null());
    let name = match get("appName").map(Value::as_str) {
        Some(Some(n)) if !n.trim().is_empty() && n.trim().chars().count() <= MAX_NAME_CHARS => n.trim().to_string(),
        Some(_) => {
            errors.push(FieldError::new("appName", "appName is 1 to 50 characters"));
            base.0.to_string()
        }
        None if base.0.is_empty() => {
            errors.push(FieldError::new("appName", "appName is required"));
            String::new()
        }
        None => base.0.to_string(),
    };
    // Settings: the stored ones with what was sent over them, each field checked by type.
    let mut merged = match serde_json::to_value(base.1) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    for (key, value) in fields {
        if merged.contains_key(key) {
            merged.insert(key.clone(), value.clone());
        }
    }
    let settings = match serde_json::from_value::<PosSettings>(Value::Object(merged)) {
        Ok(s) => Some(s),
        Err(e) => {
            errors.push(FieldError::new("", &format!("a setting has the wrong type: {e}")));
            None
        }
    };
    if let Some(s) = &settings {
        check_settings(s, &mut errors);
    }
    let items = match (get("template"), get("items")) {
        (Some(Value::String(t)), _) => parse_items(serde_json::from_str(t).ok(), "template", &mut errors),
        (Some(_), _) => {
            errors.push(FieldError::new(
                "template",
                "template is the JSON text of a list of items",
            ));
            Vec::new()
        }
        (None, Some(v)) => parse_items(Some(v.clone()), "items", &mut errors),
        (None, None) => base.2.to_vec(),
    };
    match (errors.is_empty(), settings) {
        (true, Some(settings)) => Ok((name, settings, items)),
        _ => Err(errors),
    }
}

fn check_settings(s: &PosSettings, errors: &mut Vec<FieldError>) {
    if let Some(c) = &s.currency {
        if InvoiceCurrency::parse(c).is_none() {
            errors.push(FieldError::new("currency", "currency is not a currency Flash knows"));
        }
    }
    for (name, text) in [
        ("title", &s.title),
        ("description", &s.description),
        ("fixedAmountPayButtonText", &s.fixed_amount_pay_button_text),
        ("customAmountPayButtonText", &s.custom_amount_pay_button_text),
        ("tipText", &s.tip_text),
        ("htmlMetaTags", &s.html_meta_tags),
    ] {
        if text.as_ref().is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS) {
            errors.push(FieldError::new(name, "at most 2,000 characters"));
        }
    }
    for (name, url) in [
        ("redirectUrl", &s.redirect_url),
        ("notificationUrl", &s.notification_url),
    ] {
        if url.as_ref().is_some_and(|u| {
            !(u.starts_with("https://") || u.starts_with("http://")) || u.chars().count() > MAX_TEXT_CHARS
        }) {
            errors.push(FieldError::new(name, &format!("{name} is an absolute http(s) URL")));
        }
    }
    if s.custom_tip_percentages.len() > 10 || s.custom_tip_percentages.iter().any(|p| !(0..=100).contains(p)) {
        errors.push(FieldError::new(
            "customTipPercentages",
            "customTipPercentages is at most 10 whole percentages from 0 to 100",
        ));
    }
}

fn parse_items(value: Option<Value>, path: &str, errors: &mut Vec<FieldError>) -> Vec<AppItem> {
    let Some(Value::Array(list)) = value else {
        errors.push(FieldError::new(path, "a list of items"));
        return Vec::new();
    };
    if list.len() > MAX_ITEMS {
        errors.push(FieldError::new(path, "at most 500 items"));
        return Vec::new();
    }
    let mut items: Vec<AppItem> = Vec::new();
    for (i, raw) in list.into_iter().enumerate() {
        let at = format!("{path}[{i}]");
        let mut item = match serde_json::from_value::<AppItem>(raw) {
            Ok(item) => item,
            Err(e) => {
                errors.push(FieldError::new(&at, &format!("not an item: {e}")));
                continue;
            }
        };
        item.id = item.id.trim().to_string();
        if item.title.trim().is_empty() {
            item.title = item.id.clone();
        }
        if item.id.is_empty() || item.id.chars().count() > 100 || items.iter().any(|o| o.id == item.id) {
            errors.push(FieldError::new(
                &format!("{at}.id"),
                "an item needs its own id of at most 100 characters",
            ));
        }
        let priced = item.price.as_deref().map(|p| Decimal::parse(p.trim()));
        match (item.price_type, priced) {
            (_, Some(Err(_))) => errors.push(FieldError::new(&format!("{at}.price"), "price is a decimal number")),
            (PriceType::Fixed | PriceType::Minimum, None) => errors.push(FieldError::new(
                &format!("{at}.price"),
                "a Fixed or Minimum item needs a price",
            )),
            _ => {}
        }
        if item.inventory.is_some_and(|n| n < 0) {
            errors.push(FieldError::new(&format!("{at}.inventory"), "inventory is not negative"));
        }
        items.push(item);
    }
    items
}

/// `amount` in minor units of `currency` (cents, satoshis), exactly; `None` when it has more
/// decimals than the currency or is out of range.
fn minor_units(amount: &str, currency: &InvoiceCurrency) -> Option<i64> {
    let exponent = match currency {
        InvoiceCurrency::Btc => 8,
        InvoiceCurrency::Sats => 0,
        InvoiceCurrency::Fiat(c) => u32::from(c.exponent()),
    };
    let d = Decimal::parse(amount.trim()).ok()?.shift_left(exponent).ok()?;
    (d.scale == 0).then(|| i64::try_from(d.mantissa).ok()).flatten()
}

/// Minor units of `currency` as its decimal string.
fn major(minor: i64, currency: &InvoiceCurrency) -> String {
    match currency {
        InvoiceCurrency::Btc => btc(minor),
        InvoiceCurrency::Sats => minor.to_string(),
        InvoiceCurrency::Fiat(c) => format_minor(minor, *c),
    }
}

/// What a buyer ordered at a point of sale, priced: the invoice's amount and its `posData`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PricedOrder {
    /// The total, in minor units of the app's currency.
    pub total: i64,
    /// BTCPay's `posData`: cart, subtotal, discount, tip, total.
    pub pos_data: Value,
    /// The item description (the single item's title, or the app's title).
    pub item_desc: Option<String>,
}

/// Prices an order (`{"cart": [{"id", "count", "price"?}], "amount"?, "discountPercentage"?,
/// "tip"?, "tipPercentage"?}`) against the app's items and settings, on the server: a buyer
/// can only choose what the app allows.
pub fn price_order(app: &PosApp, order: &Value) -> Result<PricedOrder, Vec<FieldError>> {
    let currency = InvoiceCurrency::parse(&app.currency)
        .ok_or_else(|| vec![FieldError::new("currency", "the app's currency is not known")])?;
    let Some(fields) = order.as_object() else {
        return Err(vec![FieldError::new("", "the order must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let money = |v: &Value, path: &str, errors: &mut Vec<FieldError>| -> i64 {
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        match minor_units(&text, &currency).filter(|m| *m >= 0) {
            Some(m) => m,
            None => {
                errors.push(FieldError::new(
                    path,
                    &format!("an amount in {} with its decimals", app.currency),
                ));
                0
            }
        }
    };
    let mut cart = Vec::new();
    let mut subtotal: i64 = 0;
    let lines = fields
        .get("cart")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if lines.len() > MAX_ITEMS {
        errors.push(FieldError::new("cart", "too many lines"));
    }
    for (i, line) in lines.iter().enumerate().take(MAX_ITEMS) {
        let at = format!("cart[{i}]");
        let id = line.get("id").and_then(Value::as_str).unwrap_or_default();
        let Some(item) = app.items.iter().find(|it| it.id == id && !it.disabled) else {
            errors.push(FieldError::new(&format!("{at}.id"), "no such item in this app"));
            continue;
        };
        let count = line.get("count").and_then(Value::as_i64).unwrap_or(1);
        if !(1..=MAX_COUNT).contains(&count) {
            errors.push(FieldError::new(&format!("{at}.count"), "count is 1 to 10,000"));
            continue;
        }
        if item.inventory.is_some_and(|left| left < count) {
            errors.push(FieldError::new(&format!("{at}.count"), "not enough of this item left"));
            continue;
        }
        let listed = item.price.as_deref().and_then(|p| minor_units(p, &currency));
        let price = match (item.price_type, line.get("price")) {
            (PriceType::Fixed, _) => listed.unwrap_or(0),
            (kind, Some(p)) => {
                let p = money(p, &format!("{at}.price"), &mut errors);
                if kind == PriceType::Minimum && listed.is_some_and(|min| p < min) {
                    errors.push(FieldError::new(
                        &format!("{at}.price"),
                        "below this item's minimum price",
                    ));
                }
                p
            }
            (_, None) => listed.unwrap_or(0),
        };
        subtotal = subtotal.saturating_add(price.saturating_mul(count));
        cart.push(json!({"id": item.id, "title": item.title, "count": count, "price": major(price, &currency)}));
    }
    let custom = match fields.get("amount").filter(|v| !v.is_null()) {
        Some(_) if !app.settings.show_custom_amount && app.settings.default_view != PosView::Light => {
            errors.push(FieldError::new("amount", "this point of sale takes no custom amount"));
            0
        }
        Some(v) => money(v, "amount", &mut errors),
        None => 0,
    };
    subtotal = subtotal.saturating_add(custom);
    let percent = |name: &str, allowed: bool, errors: &mut Vec<FieldError>| -> i64 {
        match fields.get(name).filter(|v| !v.is_null()) {
            None => 0,
            Some(_) if !allowed => {
                errors.push(FieldError::new(name, &format!("this point of sale takes no {name}")));
                0
            }
            Some(v) => match v.as_i64().filter(|p| (0..=100).contains(p)) {
                Some(p) => p,
                None => {
                    errors.push(FieldError::new(
                        name,
                        &format!("{name} is a whole percentage, 0 to 100"),
                    ));
                    0
                }
            },
        }
    };
    let discount_percent = percent("discountPercentage", app.settings.show_discount, &mut errors);
    let discount = subtotal.saturating_mul(discount_percent) / 100;
    let after_discount = subtotal - discount;
    let tip_percent = percent("tipPercentage", app.settings.enable_tips, &mut errors);
    let mut tip = (after_discount.saturating_mul(tip_percent) + 50) / 100;
    if let Some(v) = fields.get("tip").filter(|v| !v.is_null()) {
        if app.settings.enable_tips {
            tip = tip.saturating_add(money(v, "tip", &mut errors));
        } else {
            errors.push(FieldError::new("tip", "this point of sale takes no tips"));
        }
    }
    let total = after_discount.saturating_add(tip);
    if errors.is_empty() && total <= 0 {
        errors.push(FieldError::new("", "the order comes to nothing to pay"));
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let item_desc = match cart.as_slice() {
        [one] => one["title"].as_str().map(str::to_string),
        _ => app.settings.title.clone().or_else(|| Some(app.name.clone())),
    };
    Ok(PricedOrder {
        total,
        pos_data: json!({
            "cart": cart,
            "customAmount": major(custom, &currency),
            "subTotal": major(subtotal, &currency),
            "discountPercentage": discount_percent,
            "discountAmount": major(discount, &currency),
            "tipPercentage": tip_percent,
            "tip": major(tip, &currency),
            "total": major(total, &currency),
        }),
        item_desc,
    })
}

/// The UTC day a Unix-ms time falls on, as (start of day ms, "Mon DD").
fn day_of(ms: i64) -> (i64, String) {
    let day = ms.div_euclid(DAY_MS);
    let (_, m, d) = flash_core::calendar::civil_from_days(day);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let name = usize::try_from(m - 1).ok().and_then(|i| MONTHS.get(i)).unwrap_or(&"");
    (day * DAY_MS, format!("{name} {d:02}"))
}

impl Merchant {
    /// Creates a point of sale for `store_id` (`btcpay.store.canmodifystoresettings`).
    pub async fn create_pos(&self, caller: &Caller, store_id: &str, body: &Value) -> Result<PosApp, MerchantError> {
        let store = self.store_for(caller, store_id, CAN_MODIFY_STORE_SETTINGS).await?;
        let (name, settings, items) =
            apply(("", &PosSettings::default(), &[]), body).map_err(MerchantError::Invalid)?;
        let now = self.bank.now_ms();
        let record = MerchantAppRecord {
            id: flash_core::secrets::random_token("", 28),
            store_id: store.id.clone(),
            app_type: POINT_OF_SALE.into(),
            name,
            settings: to_json_text(&settings)?,
            items: to_json_text(&items)?,
            archived: body.get("archived").and_then(Value::as_bool).unwrap_or(false),
            created_at: now,
            updated_at: now,
        };
        self.store.merchant_app_create(&record).await?;
        PosApp::from_record(&record, &store)
    }

    /// Changes a point of sale (`btcpay.store.canmodifystoresettings`); fields not sent stay.
    pub async fn update_pos(&self, caller: &Caller, app_id: &str, body: &Value) -> Result<PosApp, MerchantError> {
        let (mut record, store) = self.own_app(caller, app_id, CAN_MODIFY_STORE_SETTINGS).await?;
        let app = PosApp::from_record(&record, &store)?;
        let (name, settings, items) =
            apply((&app.name, &app.settings, &app.items), body).map_err(MerchantError::Invalid)?;
        record.name = name;
        record.settings = to_json_text(&settings)?;
        record.items = to_json_text(&items)?;
        if let Some(archived) = body.get("archived").and_then(Value::as_bool) {
            record.archived = archived;
        }
        record.updated_at = self.bank.now_ms();
        if !self.store.merchant_app_update(&record).await? {
            return Err(MerchantError::AppNotFound);
        }
        PosApp::from_record(&record, &store)
    }

    /// One app (`btcpay.store.canviewstoresettings`).
    pub async fn app(&self, caller: &Caller, app_id: &str) -> Result<PosApp, MerchantError> {
        let (record, store) = self.own_app(caller, app_id, CAN_VIEW_STORE_SETTINGS).await?;
        PosApp::from_record(&record, &store)
    }

    /// Deletes an app (`btcpay.store.canmodifystoresettings`).
    pub async fn delete_app(&self, caller: &Caller, app_id: &str) -> Result<(), MerchantError> {
        self.own_app(caller, app_id, CAN_MODIFY_STORE_SETTINGS).await?;
        if self.store.merchant_app_delete(app_id, self.bank.now_ms()).await? {
            Ok(())
        } else {
            Err(MerchantError::AppNotFound)
        }
    }

    /// The apps of one store, or of every store of the caller it may view.
    pub async fn apps(&self, caller: &Caller, store_id: Option<&str>) -> Result<Vec<PosApp>, MerchantError> {
        let stores = match store_id {
            Some(id) => vec![self.store_for(caller, id, CAN_VIEW_STORE_SETTINGS).await?],
            None => {
                caller.require_somewhere(CAN_VIEW_STORE_SETTINGS)?;
                self.store
                    .merchant_stores_of(caller.account)
                    .await?
                    .into_iter()
                    .filter(|s| caller.permissions.allows(CAN_VIEW_STORE_SETTINGS, Some(&s.id)))
                    .collect()
            }
        };
        let mut apps = Vec::new();
        for store in &stores {
            for record in self.store.merchant_apps_of(&store.id).await? {
                apps.push(PosApp::from_record(&record, store)?);
            }
        }
        Ok(apps)
    }

    /// A point of sale as its public page shows it: no caller; archived or deleted ones are
    /// not found.
    pub async fn public_pos(&self, app_id: &str) -> Result<PosApp, MerchantError> {
        let record = self
            .store
            .merchant_app(app_id)
            .await?
            .filter(|r| !r.archived && r.app_type == POINT_OF_SALE)
            .ok_or(MerchantError::AppNotFound)?;
        let store = self
            .store
            .merchant_store(&record.store_id)
            .await?
            .ok_or(MerchantError::AppNotFound)?;
        PosApp::from_record(&record, &store)
    }

    /// A buyer's order at a point of sale: priced on the server, made into a store invoice
    /// carrying the cart as `posData`.
    pub async fn pos_order(&self, app_id: &str, order: &Value) -> Result<InvoiceView, MerchantError> {
        let app = self.public_pos(app_id).await?;
        let store = self
            .store
            .merchant_store(&app.store_id)
            .await?
            .ok_or(MerchantError::AppNotFound)?;
        let priced = price_order(&app, order).map_err(MerchantError::Invalid)?;
        let currency = InvoiceCurrency::parse(&app.currency)
            .ok_or_else(|| MerchantError::field("currency", "the app's currency is not known"))?;
        let mut metadata = json!({"orderId": format!("pos-app_{}", app.id), "posData": priced.pos_data});
        if let Some(desc) = priced.item_desc {
            metadata["itemDesc"] = json!(desc);
        }
        let mut checkout = json!({});
        if let Some(url) = &app.settings.redirect_url {
            checkout["redirectURL"] = json!(url);
        }
        if let Some(auto) = app.settings.redirect_automatically {
            checkout["redirectAutomatically"] = json!(auto);
        }
        let body = json!({
            "amount": major(priced.total, &currency),
            "currency": currency.code(),
            "metadata": metadata,
            "checkout": checkout,
        });
        let options = CreateOptions {
            idempotency_key: None,
            app_id: Some(app.id.clone()),
            description_hash: None,
        };
        self.create_invoice(&Caller::owner(store.account_id), &store.id, &body, &options)
            .await
    }

    /// Settled sales per UTC day over the last `days` days (BTCPay's `AppSalesStats`).
    pub async fn app_sales(&self, caller: &Caller, app_id: &str, days: i64) -> Result<Value, MerchantError> {
        self.own_app(caller, app_id, CAN_VIEW_STORE_SETTINGS).await?;
        let days = days.clamp(1, MAX_SALES_DAYS);
        let (today, _) = day_of(self.bank.now_ms());
        let since = today - (days - 1) * DAY_MS;
        let sales = self.store.merchant_app_sales(app_id, since).await?;
        let mut per_day: BTreeMap<i64, i64> = (0..days).map(|d| (since + d * DAY_MS, 0)).collect();
        for sale in &sales {
            *per_day.entry(day_of(sale.created_at).0).or_default() += 1;
        }
        let series: Vec<Value> = per_day
            .into_iter()
            .map(|(start, count)| json!({"date": start / 1_000, "label": day_of(start).1, "salesCount": count}))
            .collect();
        Ok(json!({"salesCount": sales.len(), "series": series}))
    }

    /// The items sold most, by units (BTCPay's `AppItemStats` list), `count` from `offset`.
    pub async fn app_top_items(
        &self,
        caller: &Caller,
        app_id: &str,
        offset: usize,
        count: usize,
    ) -> Result<Value, MerchantError> {
        let (record, store) = self.own_app(caller, app_id, CAN_VIEW_STORE_SETTINGS).await?;
        let app = PosApp::from_record(&record, &store)?;
        let currency = InvoiceCurrency::parse(&app.currency)
            .ok_or_else(|| MerchantError::field("currency", "the app's currency is not known"))?;
        let mut totals: BTreeMap<String, (String, i64, i64)> = BTreeMap::new();
        for sale in self.store.merchant_app_sales(app_id, 0).await? {
            let metadata: Value = serde_json::from_str(&sale.metadata).unwrap_or(Value::Null);
            for line in metadata["posData"]["cart"].as_array().into_iter().flatten() {
                let (Some(id), Some(n)) = (line["id"].as_str(), line["count"].as_i64()) else {
                    continue;
                };
                let price = line["price"]
                    .as_str()
                    .and_then(|p| minor_units(p, &currency))
                    .unwrap_or(0);
                let title = line["title"].as_str().unwrap_or(id).to_string();
                let entry = totals.entry(id.to_string()).or_insert((title, 0, 0));
                entry.1 = entry.1.saturating_add(n);
                entry.2 = entry.2.saturating_add(price.saturating_mul(n));
            }
        }
        let mut ranked: Vec<(String, (String, i64, i64))> = totals.into_iter().collect();
        ranked.sort_by(|a, b| b.1 .1.cmp(&a.1 .1).then(b.1 .2.cmp(&a.1 .2)).then(a.0.cmp(&b.0)));
        let list: Vec<Value> = ranked
            .into_iter()
            .skip(offset)
            .take(count)
            .map(|(id, (title, units, total))| {
                let amount = major(total, &currency);
                json!({
                    "itemCode": id,
                    "title": title,
                    "salesCount": units,
                    "total": amount,
                    "totalFormatted": format!("{amount} {}", app.currency),
                })
            })
            .collect();
        Ok(Value::Array(list))
    }

    /// An app of one of the caller's stores that it holds `policy` over, with its store.
    async fn own_app(
        &self,
        caller: &Caller,
        app_id: &str,
        policy: &'static str,
    ) -> Result<(MerchantAppRecord, MerchantStoreRecord), MerchantError> {
        let record = self
            .store
            .merchant_app(app_id)
            .await?
            .ok_or(MerchantError::AppNotFound)?;
        let store = match self.own_store(caller.account, &record.store_id).await {
            Ok(store) => store,
            Err(MerchantError::StoreNotFound) => return Err(MerchantError::AppNotFound),
            Err(e) => return Err(e),
        };
        caller.require(policy, Some(&store.id))?;
        Ok((record, store))
    }
}

fn to_json_text<T: Serialize>(value: &T) -> Result<String, MerchantError> {
    serde_json::to_string(value).map_err(|e| MerchantError::Store(flash_store::StoreError::Decode(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(currency: &str, settings: PosSettings) -> PosApp {
        let items = vec![
            AppItem {
                id: "tea".into(),
                title: "Green tea".into(),
                price: Some("1.50".into()),
                ..AppItem::default()
            },
            AppItem {
                id: "cake".into(),
                title: "Cake".into(),
                price: Some("3".into()),
                inventory: Some(2),
                ..AppItem::default()
            },
            AppItem {
                id: "gift".into(),
                title: "Gift".into(),
                price: Some("5".into()),
                price_type: PriceType::Minimum,
                ..AppItem::default()
            },
        ];
        PosApp {
            id: "app".into(),
            store_id: "store".into(),
            name: "Cafe".into(),
            archived: false,
            created_at: 0,
            settings,
            items,
            currency: currency.into(),
        }
    }

    #[test]
    fn a_cart_is_priced_on_the_server_with_discount_and_tip() {
        let settings = PosSettings {
            show_discount: true,
            enable_tips: true,
            ..PosSettings::default()
        };
        let order = json!({"cart": [{"id": "tea", "count": 2, "price": "0.01"}, {"id": "cake"}],
                           "discountPercentage": 10, "tipPercentage": 15});
        let priced = price_order(&app("USD", settings), &order).expect("priced");
        // 2 × 1.50 (the buyer's price is ignored for a fixed item) + 3.00 = 6.00; -10 % = 5.40;
        // +15 % tip = 0.81; total 6.21.
        assert_eq!(priced.total, 621);
        assert_eq!(priced.pos_data["subTotal"], "6.00");
        assert_eq!(priced.pos_data["discountAmount"], "0.60");
        assert_eq!(priced.pos_data["tip"], "0.81");
        assert_eq!(priced.pos_data["total"], "6.21");
    }

    #[test]
    fn what_the_app_does_not_allow_is_refused() {
        let a = app("USD", PosSettings::default());
        let paths = |order: Value| -> Vec<String> {
            price_order(&a, &order)
                .expect_err("refused")
                .into_iter()
                .map(|e| e.path)
                .collect()
        };
        assert_eq!(paths(json!({"cart": [{"id": "coffee"}]})), ["cart[0].id"]);
        assert_eq!(paths(json!({"cart": [{"id": "cake", "count": 3}]})), ["cart[0].count"]);
        assert_eq!(
            paths(json!({"cart": [{"id": "gift", "price": "4.99"}]})),
            ["cart[0].price"]
        );
        assert_eq!(paths(json!({"amount": "1.001"})), ["amount"]);
        assert_eq!(paths(json!({"amount": "1", "tip": "1"})), ["tip"]);
        assert_eq!(
            paths(json!({"amount": "1", "discountPercentage": 5})),
            ["discountPercentage"]
        );
        assert_eq!(paths(json!({})), [""]);
        // The keypad alone, in sats.
        let sats = app("SATS", PosSettings::default());
        assert_eq!(
            price_order(&sats, &json!({"amount": 2100})).expect("priced").total,
            2_100
        );
    }

    #[test]
    fn days_are_utc_calendar_days() {
        assert_eq!(day_of(0), (0, "Jan 01".into()));
        // 2026-12-07T11:00:00Z
        assert_eq!(day_of(1_796_641_200_000).1, "Dec 07");
        assert_eq!(day_of(951_782_400_000).1, "Feb 29", "2000-02-29");
    }

    #[test]
    fn settings_and_items_are_checked_field_by_field() {
        let body = json!({"appName": "", "currency": "XX1", "customTipPercentages": [150],
                          "template": "[{\"id\": \"a\", \"price\": \"x\"}, {\"id\": \"a\", \"price\": \"1\"}]"});
        let paths: Vec<String> = apply(("", &PosSettings::default(), &[]), &body)
            .expect_err("bad")
            .into_iter()
            .map(|e| e.path)
            .collect();
        assert_eq!(
            paths,
            [
                "appName",
                "currency",
                "customTipPercentages",
                "template[0].price",
                "template[1].id"
            ]
        );
        let (name, settings, items) = apply(
            ("", &PosSettings::default(), &[]),
            &json!({"appName": "Cafe", "enableTips": true, "items": [{"id": "tea", "price": "1"}]}),
        )
        .expect("valid");
        assert_eq!(
            (name.as_str(), settings.enable_tips, items[0].title.as_str()),
            ("Cafe", true, "tea")
        );
    }
}
