//! A Flash Card's balance page for its holder: `GET /boltcard/balance?p=…&c=…` asked for by a
//! browser (`Accept: text/html`); apps asking for anything else get the same facts as JSON
//! (`crate::boltcard`). The page shows the card's name, what it can spend (its wallet's
//! balance, or what its pull payment has left), its per-tap and 24-hour limits, what is left
//! of the 24 hours, and for a wallet card the top-up QR code (its LNURL-pay link). The tap is
//! used up as for a payment, so the page shows once per tap; a bad or replayed tap gets a page
//! saying to tap again. No script: nothing on the page changes.

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use flash_merchant::cards::{CardBalance, CardsError};

use super::amounts::sats_text;
use super::{escape, notice, page, qr};
use crate::lnurl::encode_lnurl;

/// Where the page says it is.
const WHERE: &str = "Flash Card";

/// Whether the client asked for a page rather than JSON (a browser's `Accept` lists
/// `text/html`; apps send `application/json`, `*/*` or nothing).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| {
            media
                .split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
        })
}

/// The page for a tap's balance, or the page telling why there is none; never cached.
pub(crate) fn balance_page(public_url: &str, balance: Result<CardBalance, CardsError>) -> Response {
    let mut response = match balance {
        Ok(b) => page(&b.name, WHERE, &render(public_url, &b), None),
        Err(e) => refused(e),
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::VARY, HeaderValue::from_static("Accept"));
    response
}

/// The page of a refused tap (or of too many requests).
fn refused(e: CardsError) -> Response {
    let (status, title, text) = match e {
        CardsError::Replayed => (
            StatusCode::BAD_REQUEST,
            "Tap the card again",
            "This tap was shown already: each tap shows the card once. Tap the card again to see it.",
        ),
        CardsError::NotActive(_) => (
            StatusCode::BAD_REQUEST,
            "This card is not active",
            "This card is disabled or retired. Ask whoever gave it to you.",
        ),
        CardsError::NotFound | CardsError::Tap(_) | CardsError::Invalid(_) => (
            StatusCode::BAD_REQUEST,
            "This tap did not read well",
            "This is not a Flash Card of this server, or its tap did not read well. Tap the card again.",
        ),
        e => {
            tracing::warn!(error = %e, "card balance page: could not answer");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Card unavailable",
                "This card cannot be shown right now. Tap it again in a moment.",
            )
        }
    };
    notice(status, title, WHERE, text)
}

/// The page's body.
fn render(public_url: &str, b: &CardBalance) -> String {
    let day_used = (b.day_limit_sat - b.day_left_sat).max(0);
    let top_up = match b.pay_link.as_deref().and_then(|link| top_up_lnurl(public_url, link)) {
        Some(lnurl) => {
            let link = format!("lightning:{lnurl}");
            let code = qr::svg(&link.to_ascii_uppercase(), "QR code: top up this card")
                .unwrap_or_else(|| "<p class=\"muted\">Too long for a QR code: copy it below.</p>".to_string());
            format!(
                "<section class=\"card top-up\" id=\"top-up\"><h2>Top up</h2>\
                 <p class=\"muted\">Scan with a Lightning wallet to add to this card.</p>\
                 <div class=\"qr-box\">{code}</div>\
                 <div class=\"destination\"><code id=\"pay-link\">{lnurl}</code></div>\
                 <a class=\"button wallet\" href=\"{link}\">Open in wallet</a></section>",
                lnurl = escape(&lnurl),
                link = escape(&link),
            )
        }
        None => "<section class=\"card\" id=\"top-up\"><p class=\"muted\">This card spends from a pull payment: \
                 it is not topped up.</p></section>"
            .to_string(),
    };
    format!(
        "<div class=\"card-balance\">\
         <section class=\"card summary\"><p class=\"store\">Flash Card</p>\
         <h2 class=\"request-title\" id=\"name\">{name}</h2>\
         <p class=\"amount\" id=\"balance\">{balance}</p><p class=\"muted\">available</p></section>\
         <section class=\"card\"><h2>Limits</h2><dl class=\"receipt\" id=\"limits\">\
         <dt>Per tap</dt><dd id=\"tap-limit\">{tap}</dd>\
         <dt>Per 24 hours</dt><dd id=\"day-limit\">{day}</dd>\
         <dt>Left of the 24 hours</dt><dd id=\"day-left\">{left}</dd></dl>\
         <meter id=\"day-meter\" min=\"0\" max=\"{day_max}\" value=\"{day_used}\" \
         title=\"Spent in the last 24 hours\">{used}</meter>\
         <p class=\"muted request-hint\">Spent in the last 24 hours: {used}.</p></section>\
         {top_up}<p class=\"invoice-id\">Each tap shows this page once: tap the card again to see it anew.</p></div>",
        name = escape(&b.name),
        balance = sats_text(b.balance_sat),
        tap = sats_text(b.tap_limit_sat),
        day = sats_text(b.day_limit_sat),
        left = sats_text(b.day_left_sat),
        day_max = b.day_limit_sat,
        used = sats_text(day_used),
    )
}

/// A wallet card's top-up link (`lnurlp://host/…`, as taps give it) as a bech32 LNURL of this
/// server's URL, which every LNURL wallet reads.
fn top_up_lnurl(public_url: &str, link: &str) -> Option<String> {
    let (_, rest) = link.split_once("://")?;
    let path = rest.find('/').map(|at| &rest[at..])?;
    Some(encode_lnurl(&format!("{}{path}", public_url.trim_end_matches('/'))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browsers_get_the_page_and_apps_json() {
        let asks = |accept: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, HeaderValue::from_str(accept).expect("header"));
            wants_html(&h)
        };
        assert!(asks("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"));
        assert!(asks("TEXT/HTML"));
        assert!(!asks("application/json"));
        assert!(!asks("*/*"));
        assert!(!wants_html(&HeaderMap::new()));
    }

    #[test]
    fn the_top_up_link_is_an_lnurl_of_this_server() {
        let lnurl = top_up_lnurl("https://flash.example/", "lnurlp://flash.example/boltcard/pay/abc").expect("lnurl");
        assert_eq!(lnurl, encode_lnurl("https://flash.example/boltcard/pay/abc"));
        assert!(top_up_lnurl("https://flash.example", "nonsense").is_none());
    }
}
