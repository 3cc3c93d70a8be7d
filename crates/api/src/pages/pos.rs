//! The point-of-sale page `/apps/{appId}/pos`, BTCPay's point of sale served by flashd for a
//! phone or tablet at a counter: a keypad (`defaultView: Light`, with the items below it when
//! `showItems`), or the items with +/- counts (`Cart`, `Static` and `Print` alike), tips and a
//! discount as the app allows. The page's script posts the order to `POST /apps/{appId}/pos`
//! (item ids and counts, the typed amount, the tip and discount percentages, never its own
//! totals: the server prices the order) and goes to the invoice's checkout page.
//!
//! Item pictures are shown only from `https://` URLs, so this page's Content-Security-Policy
//! allows `img-src https:` (and sends no referrer); everything else comes from this server.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use flash_merchant::apps::{AppItem, PosApp, PosView, PriceType};
use flash_merchant::MerchantError;

use super::amounts::{money, Unit};
use super::checkout::plausible_id;
use super::{escape, notice, page, POS_CONTENT_SECURITY_POLICY};
use crate::ApiState;

/// The point of sale's page route (its order endpoint is with Greenfield's app routes).
pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/apps/{app_id}/pos", get(point_of_sale))
        .with_state(state)
}

/// GET `/apps/{app_id}/pos`: the page, or a 404 page for an unknown, archived or deleted app.
async fn point_of_sale(State(state): State<ApiState>, Path(app_id): Path<String>) -> Response {
    let found = if plausible_id(&app_id) {
        state.merchant.public_pos(&app_id).await
    } else {
        Err(MerchantError::AppNotFound)
    };
    let app = match found {
        Ok(app) => app,
        Err(MerchantError::AppNotFound) => {
            return notice(
                StatusCode::NOT_FOUND,
                "Point of sale not found",
                "Point of sale",
                "There is no point of sale at this address. Check the link you were given.",
            )
        }
        Err(e) => {
            tracing::warn!(app = %app_id, error = %e, "point of sale: could not read the app");
            return notice(
                StatusCode::SERVICE_UNAVAILABLE,
                "Point of sale unavailable",
                "Point of sale",
                "This point of sale cannot be shown right now. Reload the page in a moment.",
            );
        }
    };
    let title = app.settings.title.clone().unwrap_or_else(|| app.name.clone());
    let mut response = page(&title, "Point of sale", &render(&app, &title), Some("pos.js"));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(POS_CONTENT_SECURITY_POLICY),
    );
    // Items, prices and stock change: always the current page.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The page's body.
fn render(app: &PosApp, title: &str) -> String {
    let s = &app.settings;
    let unit = Unit::of(&app.currency);
    let keypad = s.default_view == PosView::Light;
    let description = s
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .map(|d| format!("<p class=\"muted\">{}</p>", escape(d)))
        .unwrap_or_default();
    let items: String = app
        .items
        .iter()
        .filter(|item| !item.disabled)
        .map(|item| item_html(item, &app.currency))
        .collect();
    let items = if items.is_empty() || (keypad && !s.show_items) {
        String::new()
    } else {
        format!("<ul class=\"pos-items\" id=\"items\">{items}</ul>")
    };
    let entry = if keypad {
        keypad_html(&app.currency, &unit)
    } else if s.show_custom_amount {
        "<label class=\"pos-field\">Custom amount \
         <input id=\"custom\" inputmode=\"decimal\" autocomplete=\"off\" placeholder=\"0\"></label>"
            .to_string()
    } else {
        String::new()
    };
    let (first, second) = if keypad { (entry, items) } else { (items, entry) };
    let tips = if s.enable_tips {
        let prompt = s.tip_text.as_deref().unwrap_or("Tip");
        let buttons: String = s
            .custom_tip_percentages
            .iter()
            .map(|p| format!("<button type=\"button\" data-tip=\"{p}\" aria-pressed=\"false\">{p}%</button>"))
            .collect();
        format!(
            "<fieldset class=\"pos-tips\" id=\"tips\"><legend>{}</legend>\
             <button type=\"button\" data-tip=\"0\" aria-pressed=\"true\">No tip</button>{buttons}</fieldset>",
            escape(prompt)
        )
    } else {
        String::new()
    };
    let discount = if s.show_discount {
        "<label class=\"pos-field\">Discount (%) <input id=\"discount\" type=\"number\" min=\"0\" max=\"100\" \
         step=\"1\" inputmode=\"numeric\" autocomplete=\"off\" placeholder=\"0\"></label>"
    } else {
        ""
    };
    format!(
        "<div class=\"pos\" data-app=\"{id}\" data-view=\"{view}\" data-prefix=\"{prefix}\" \
         data-suffix=\"{suffix}\" data-digits=\"{digits}\" data-pad=\"{pad}\">\
         <section class=\"pos-head\"><h2>{title}</h2>{description}</section>\
         {first}{second}{tips}{discount}\
         <section class=\"card pos-checkout\"><dl class=\"pos-totals\">\
         <dt data-row=\"subtotal\" hidden>Subtotal</dt><dd id=\"subtotal\" data-row=\"subtotal\" hidden></dd>\
         <dt data-row=\"discount\" hidden>Discount</dt><dd id=\"discount-amount\" data-row=\"discount\" hidden></dd>\
         <dt data-row=\"tip\" hidden>Tip</dt><dd id=\"tip-amount\" data-row=\"tip\" hidden></dd>\
         <dt>Total</dt><dd id=\"total\">{zero}</dd></dl>\
         <p class=\"pos-error\" id=\"error\" role=\"alert\" hidden></p>\
         <button type=\"button\" class=\"pos-pay\" id=\"pay\" disabled>{pay}</button></section></div>",
        id = escape(&app.id),
        view = if keypad { "keypad" } else { "cart" },
        prefix = escape(&unit.prefix),
        suffix = escape(&unit.suffix),
        digits = unit.digits,
        pad = unit.pad,
        title = escape(title),
        zero = escape(&money("0", &app.currency)),
        pay = if keypad { "Charge" } else { "Pay" },
    )
}

/// The amount as typed, a clear button and the keys; a decimal point only where the currency
/// has decimals (else a `00` key).
fn keypad_html(currency: &str, unit: &Unit) -> String {
    let keys: String = ["1", "2", "3", "4", "5", "6", "7", "8", "9"]
        .iter()
        .map(|k| format!("<button type=\"button\" data-key=\"{k}\">{k}</button>"))
        .collect();
    let point = if unit.digits > 0 { "." } else { "00" };
    format!(
        "<section class=\"card pos-entry\"><div class=\"pos-display\">\
         <output class=\"pos-amount\" id=\"amount\" aria-live=\"polite\">{zero}</output>\
         <button type=\"button\" class=\"pos-clear\" data-key=\"clear\">Clear</button></div>\
         <div class=\"pos-keypad\" id=\"keypad\">{keys}\
         <button type=\"button\" data-key=\"{point}\">{point}</button>\
         <button type=\"button\" data-key=\"0\">0</button>\
         <button type=\"button\" data-key=\"back\" aria-label=\"Delete the last digit\">⌫</button></div></section>",
        zero = escape(&money("0", currency)),
    )
}

/// One item: its picture (https only), title, description and price (a field for a top-up),
/// and a +/- count, or "Sold out".
fn item_html(item: &AppItem, currency: &str) -> String {
    let image = item
        .image
        .as_deref()
        .filter(|url| url.starts_with("https://"))
        .map(|url| format!("<img src=\"{}\" alt=\"\" loading=\"lazy\">", escape(url)))
        .unwrap_or_default();
    let description = item
        .description
        .as_deref()
        .filter(|d| !d.trim().is_empty())
        .map(|d| format!("<p class=\"muted\">{}</p>", escape(d)))
        .unwrap_or_default();
    let title = escape(&item.title);
    let price = item.price.as_deref().unwrap_or("0").trim();
    // A top-up's price is the buyer's: a field (sent with the line), else the listed price.
    let shown = match item.price_type {
        PriceType::Fixed => escape(&money(price, currency)),
        PriceType::Minimum => format!("from {}", escape(&money(price, currency))),
        PriceType::Topup => {
            let unit = Unit::of(currency);
            format!(
                "{}<input class=\"pos-item-price\" inputmode=\"decimal\" autocomplete=\"off\" \
                 aria-label=\"Amount for {title}\" placeholder=\"Any amount\" value=\"{}\">{}",
                escape(&unit.prefix),
                escape(item.price.as_deref().unwrap_or_default().trim()),
                escape(&unit.suffix),
            )
        }
    };
    let control = if item.inventory == Some(0) {
        "<span class=\"sold-out\">Sold out</span>".to_string()
    } else {
        format!(
            "<div class=\"stepper\"><button type=\"button\" data-step=\"-1\" aria-label=\"One less {title}\">−</button>\
             <output class=\"count\">0</output>\
             <button type=\"button\" data-step=\"1\" aria-label=\"One more {title}\">+</button></div>"
        )
    };
    let left = item
        .inventory
        .map(|n| format!(" data-left=\"{n}\""))
        .unwrap_or_default();
    format!(
        "<li class=\"pos-item\" data-id=\"{id}\" data-price=\"{price_attr}\"{left}>{image}\
         <div class=\"pos-item-text\"><h3>{title}</h3>{description}<p class=\"price\">{shown}</p></div>\
         {control}</li>",
        id = escape(&item.id),
        price_attr = escape(price),
    )
}
