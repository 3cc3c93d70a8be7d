//! The checkout page `/i/{invoiceId}`, BTCPay's flow served by flashd: the amount, the store
//! and what is bought, QR codes of where to pay (the unified BIP21 URI, the BOLT11, the
//! address), a countdown to expiry, and the invoice's state kept live by a server-sent-events
//! stream (`/i/{invoiceId}/status`) that the page's script follows without reloading. A Flash
//! Card of this server pays it too: the page posts the card's link (read with Web NFC, or
//! pasted) to `/i/{invoiceId}/card`.
//!
//! One renderer: the stream's events carry the state panel as HTML made here, so the page
//! and its updates cannot disagree. A stream reads the invoice once a second, is closed once
//! the invoice is final or after [`STREAM_MAX_SECS`], and at most [`MAX_STREAMS`] are open on
//! one node at a time.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use flash_bank::PaymentStatus;
use flash_merchant::cards::{CardsError, Withdrawal};
use flash_merchant::invoice_data::{btc, InvoiceCurrency, LIGHTNING, ONCHAIN};
use flash_merchant::invoice_state::{AdditionalStatus, InvoiceStatus};
use flash_merchant::{InvoiceView, MerchantError};
use serde_json::{json, Value};

use super::amounts::{money, sats_text};
use super::{escape, notice, page, qr};
use crate::{ApiState, Peer};

/// How often an open status stream reads its invoice.
const STATUS_POLL: Duration = Duration::from_secs(1);
/// Longest one status stream stays open; the browser then reconnects.
const STREAM_MAX_SECS: u64 = 30 * 60;
/// Most status streams open at once on one node; more are answered 503.
const MAX_STREAMS: usize = 512;
/// Status streams open now.
static OPEN_STREAMS: AtomicUsize = AtomicUsize::new(0);

/// The checkout routes.
pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/i/{id}", get(checkout))
        .route("/i/{id}/status", get(status))
        .route("/i/{id}/card", post(card_pay))
        .with_state(state)
}

/// Where an invoice stands, as the page tells the payer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Stage {
    Waiting,
    Partial,
    Processing,
    Settled,
    Expired,
    PaidLate,
    Invalid,
}

impl Stage {
    fn of(view: &InvoiceView) -> Stage {
        let state = view.state();
        match (state.status, state.additional) {
            (InvoiceStatus::New, AdditionalStatus::PaidPartial) => Stage::Partial,
            (InvoiceStatus::New, _) => Stage::Waiting,
            (InvoiceStatus::Processing, _) => Stage::Processing,
            (InvoiceStatus::Settled, _) => Stage::Settled,
            (InvoiceStatus::Expired, AdditionalStatus::PaidLate) => Stage::PaidLate,
            (InvoiceStatus::Expired, _) => Stage::Expired,
            (InvoiceStatus::Invalid, _) => Stage::Invalid,
        }
    }

    /// Its name in the page (`data-stage`) and in the stream's events.
    fn key(self) -> &'static str {
        match self {
            Stage::Waiting => "waiting",
            Stage::Partial => "partial",
            Stage::Processing => "processing",
            Stage::Settled => "settled",
            Stage::Expired => "expired",
            Stage::PaidLate => "paid-late",
            Stage::Invalid => "invalid",
        }
    }

    /// Whether nothing more is expected: the stream closes after telling it.
    fn is_final(self) -> bool {
        matches!(self, Stage::Settled | Stage::Expired | Stage::PaidLate | Stage::Invalid)
    }
}

/// GET `/i/{id}`: the checkout page, or a 404 page.
async fn checkout(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let found = public_invoice(&state, &id).await;
    let view = match found {
        Ok(view) => view,
        Err(MerchantError::InvoiceNotFound) => {
            return notice(
                StatusCode::NOT_FOUND,
                "Invoice not found",
                "Checkout",
                "There is no invoice at this address. Check the link the store gave you.",
            );
        }
        Err(e) => return unavailable(&id, &e),
    };
    let store = match state.merchant.public_store_name(&view.record.store_id).await {
        Ok(name) => name.unwrap_or_default(),
        Err(e) => return unavailable(&id, &e),
    };
    let now_ms = state.bank.now_ms();
    let body = render(&view, &store, now_ms);
    let title = if store.is_empty() {
        "Checkout".to_string()
    } else {
        format!("Pay {store}")
    };
    let mut response = page(&title, "Checkout", &body, Some("checkout.js"));
    // The state changes: going back to the page must not show an old one.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// POST `/i/{id}/card`: pays the invoice's BOLT11 with a Flash Card of this server, as a
/// point of sale does. The body is `{"lnurlw": "…"}` (the card's link, with its `p` and `c`);
/// when the card wants its PIN for this amount the answer is `{"pin": true, "k1": …}` and the
/// page posts `{"k1": …, "pin": "…"}`. `{"paid": true}` once paid (the status stream then
/// tells the rest); otherwise `{"error": …}` with a 4xx status.
async fn card_pay(State(state): State<ApiState>, peer: Peer, Path(id): Path<String>, body: Bytes) -> Response {
    if let Some(refused) = crate::lnurl::over_limit(&state, &peer) {
        return refused;
    }
    let refuse = |status: StatusCode, message: &str| (status, Json(json!({ "error": message }))).into_response();
    let found = public_invoice(&state, &id).await;
    let view = match found {
        Ok(view) => view,
        Err(MerchantError::InvoiceNotFound) => return refuse(StatusCode::NOT_FOUND, "invoice not found"),
        Err(e) => {
            tracing::warn!(invoice = %id, error = %e, "checkout: could not read the invoice");
            return refuse(StatusCode::SERVICE_UNAVAILABLE, "try again in a moment");
        }
    };
    if !matches!(Stage::of(&view), Stage::Waiting | Stage::Partial) {
        return refuse(StatusCode::CONFLICT, "this invoice is not waiting for a payment");
    }
    let Some((bolt11, amount)) = view
        .lightning()
        .and_then(|ln| ln.amount_sat.map(|a| (ln.destination.clone(), a)))
    else {
        return refuse(
            StatusCode::CONFLICT,
            "this invoice cannot be paid with a card now: pay it from a wallet",
        );
    };
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    let (k1, pin) = match (field("lnurlw"), field("k1")) {
        // Another issuer's card (or any withdraw link): its service is given the invoice and
        // pays it from outside; the page's status shows the payment when it arrives.
        (Some(link), _) if !own_link(&state.info.public_url, &link) => {
            return match state.bank.lnurl_withdraw_from(&link, &bolt11, amount).await {
                Ok(()) => Json(json!({ "sent": true })).into_response(),
                Err(e) => refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("the card could not pay: {e}"),
                ),
            };
        }
        (Some(link), _) => {
            let offer = match state.cards.tap_link(&link).await {
                Ok(offer) => offer,
                Err(e) => return card_refusal(e),
            };
            if offer.max_sat < amount {
                return refuse(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("this card can spend {} now", sats_text(offer.max_sat)),
                );
            }
            if offer.pin_limit_sat.is_some_and(|limit| amount >= limit) {
                return Json(json!({ "pin": true, "k1": offer.k1 })).into_response();
            }
            (offer.k1, None)
        }
        (None, Some(k1)) => (k1, field("pin")),
        (None, None) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "send the card's link (lnurlw://…), or the k1 of its tap and its PIN",
            )
        }
    };
    match state.cards.withdraw(&k1, &bolt11, pin.as_deref()).await {
        // A pull payment card's payout: the payout driver pays the invoice, once approved
        // when its pull payment does not approve claims itself.
        Ok(Withdrawal::Claimed(payout)) => {
            let waiting = payout.to_json()["state"] == "AwaitingApproval";
            Json(json!({ "paid": !waiting, "awaitingApproval": waiting })).into_response()
        }
        Ok(Withdrawal::Paid(outcome)) => match outcome.status {
            PaymentStatus::Success | PaymentStatus::Pending | PaymentStatus::AlreadyPaid => {
                card_rewards(&state, &id, &k1).await;
                Json(json!({ "paid": true })).into_response()
            }
            PaymentStatus::Failure => refuse(
                StatusCode::UNPROCESSABLE_ENTITY,
                &outcome.failure.unwrap_or_else(|| "the payment failed".into()),
            ),
        },
        Err(e) => card_refusal(e),
    }
}

/// Whether a card's link (`lnurlw://host/…` or its URL) leads to this server.
fn own_link(public_url: &str, link: &str) -> bool {
    let link = link.trim();
    let web = match link.get(..9) {
        Some(scheme) if scheme.eq_ignore_ascii_case("lnurlw://") => format!("https://{}", &link[9..]),
        _ => link.to_string(),
    };
    match (url::Url::parse(&web), url::Url::parse(public_url)) {
        (Ok(card), Ok(ours)) => {
            card.host_str().map(str::to_ascii_lowercase) == ours.host_str().map(str::to_ascii_lowercase)
                && card.port() == ours.port()
        }
        // Not a URL at all: the card service says what is wrong with it.
        _ => true,
    }
}

/// Gives the store's rewards for a purchase paid with the card of tap `k1` (its card-only
/// programs too) once the invoice has seen the payment. A failure is logged: the point of sale
/// may still ask for them.
async fn card_rewards(state: &ApiState, invoice: &str, k1: &str) {
    let rewarded = async {
        let card = state.cards.card_of_tap(k1).await.map_err(|e| e.to_string())?;
        state
            .merchant
            .refresh_invoice(invoice)
            .await
            .map_err(|e| e.to_string())?;
        state
            .merchant
            .reward_paid_invoice(invoice, Some(&card))
            .await
            .map_err(|e| e.to_string())
    };
    if let Err(error) = rewarded.await {
        tracing::warn!(%invoice, %error, "checkout: could not reward a card purchase");
    }
}

/// A card's refusal, for the page to show.
fn card_refusal(e: CardsError) -> Response {
    let (status, message) = match e {
        CardsError::NotFound | CardsError::Tap(_) => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "this is not a Flash Card of this server, or its tap did not read well: tap again".to_string(),
        ),
        CardsError::Store(e) => {
            tracing::warn!(error = %e, "checkout: a card payment failed");
            (StatusCode::SERVICE_UNAVAILABLE, "try again in a moment".to_string())
        }
        e @ (CardsError::Replayed | CardsError::NotActive(_) | CardsError::AlreadyProgrammed) => {
            (StatusCode::CONFLICT, e.to_string())
        }
        e => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()),
    };
    (status, Json(json!({ "error": message }))).into_response()
}

/// The invoice `id` for its public page; not found without asking the database when `id`
/// cannot be one.
async fn public_invoice(state: &ApiState, id: &str) -> Result<InvoiceView, MerchantError> {
    if plausible_id(id) {
        state.merchant.public_invoice(id).await
    } else {
        Err(MerchantError::InvoiceNotFound)
    }
}

/// Whether `id` could be an invoice's or an app's id (letters and digits, 64 at most), before
/// asking the database.
pub(super) fn plausible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// GET `/i/{id}/status`: `text/event-stream` of `status` events, one now and one at each
/// change, each a JSON object: `status`, `additionalStatus` (Greenfield's names), `stage`,
/// `html` (the state panel), `expiresInSecs`, `methods` (where to pay, while there is
/// something to pay), and `redirect` when the page should go back to the store by itself.
async fn status(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    let found = public_invoice(&state, &id).await;
    let view = match found {
        Ok(view) => view,
        Err(MerchantError::InvoiceNotFound) => return (StatusCode::NOT_FOUND, "invoice not found").into_response(),
        Err(e) => {
            tracing::warn!(invoice = %id, error = %e, "checkout status: could not read the invoice");
            return (StatusCode::SERVICE_UNAVAILABLE, "try again").into_response();
        }
    };
    let Some(slot) = StreamSlot::take() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "10")],
            "too many open status streams",
        )
            .into_response();
    };
    let first = status_event(&view, state.bank.now_ms());
    let watch = Watch {
        version: view.record.version,
        done: Stage::of(&view).is_final(),
        pending: Some(first),
        state,
        id,
        opened: Instant::now(),
        _slot: slot,
    };
    let events = futures_util::stream::unfold(watch, next_event);
    let mut response = Sse::new(events).keep_alive(KeepAlive::default()).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Tells a buffering reverse proxy (nginx) to pass events on as they come.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    response
}

/// One open status stream.
struct Watch {
    state: ApiState,
    id: String,
    /// The invoice's version the last event told, to send only changes.
    version: i64,
    /// An event to send before reading again.
    pending: Option<Event>,
    /// The invoice is final: the stream ends after its pending event.
    done: bool,
    opened: Instant,
    _slot: StreamSlot,
}

/// The stream's next event: the pending one, or the next change of the invoice.
async fn next_event(mut watch: Watch) -> Option<(Result<Event, Infallible>, Watch)> {
    if let Some(event) = watch.pending.take() {
        return Some((Ok(event), watch));
    }
    loop {
        if watch.done || watch.opened.elapsed() >= Duration::from_secs(STREAM_MAX_SECS) {
            return None;
        }
        tokio::time::sleep(STATUS_POLL).await;
        // One row a second; the whole invoice only when it changed.
        let changed = match watch.state.merchant.invoice_version(&watch.id).await {
            Ok(version) if version == watch.version => continue,
            Ok(_) => watch.state.merchant.public_invoice(&watch.id).await,
            Err(e) => Err(e),
        };
        match changed {
            Ok(view) => {
                watch.version = view.record.version;
                watch.done = Stage::of(&view).is_final();
                let event = status_event(&view, watch.state.bank.now_ms());
                return Some((Ok(event), watch));
            }
            Err(MerchantError::InvoiceNotFound) => return None,
            Err(e) => tracing::warn!(invoice = %watch.id, error = %e, "checkout status: could not read the invoice"),
        }
    }
}

fn status_event(view: &InvoiceView, now_ms: i64) -> Event {
    Event::default()
        .event("status")
        .data(status_json(view, now_ms).to_string())
}

/// The data of a `status` event.
fn status_json(view: &InvoiceView, now_ms: i64) -> Value {
    let state = view.state();
    let stage = Stage::of(view);
    json!({
        "status": state.status,
        "additionalStatus": state.additional,
        "stage": stage.key(),
        "html": state_html(view, stage),
        "expiresInSecs": expires_in_secs(view, now_ms),
        "methods": matches!(stage, Stage::Waiting | Stage::Partial).then(|| methods_html(view)),
        "redirect": auto_redirect(view, stage),
    })
}

/// A slot among the [`MAX_STREAMS`], given back on drop.
struct StreamSlot;

impl StreamSlot {
    fn take() -> Option<StreamSlot> {
        OPEN_STREAMS
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_STREAMS).then_some(n + 1)
            })
            .ok()
            .map(|_| StreamSlot)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        OPEN_STREAMS.fetch_sub(1, Ordering::SeqCst);
    }
}

fn unavailable(id: &str, error: &MerchantError) -> Response {
    tracing::warn!(invoice = %id, error = %error, "checkout: could not read the invoice");
    notice(
        StatusCode::SERVICE_UNAVAILABLE,
        "Checkout unavailable",
        "Checkout",
        "This invoice cannot be shown right now. Reload the page in a moment.",
    )
}

/// The page's body.
fn render(view: &InvoiceView, store: &str, now_ms: i64) -> String {
    let r = &view.record;
    let stage = Stage::of(view);
    let metadata: Value = serde_json::from_str(&r.metadata).unwrap_or(Value::Null);
    let item = metadata
        .get("itemDesc")
        .and_then(Value::as_str)
        .map(|d| format!("<p class=\"item\">{}</p>", escape(d)))
        .unwrap_or_default();
    let order = r
        .order_id
        .as_deref()
        .map(|o| format!("<p class=\"order\">Order {}</p>", escape(o)))
        .unwrap_or_default();
    let store = if store.is_empty() {
        String::new()
    } else {
        format!("<p class=\"store\">{}</p>", escape(store))
    };
    let (amount, sats) = match r.due_sat {
        Some(due) if r.kind != "TopUp" => {
            let other = match InvoiceCurrency::parse(&r.currency) {
                Some(InvoiceCurrency::Sats) => format!("{} BTC", btc(due)),
                Some(InvoiceCurrency::Btc) => sats_text(due),
                _ => format!("{} · {} BTC", sats_text(due), btc(due)),
            };
            (money(&r.amount, &r.currency), format!("<p class=\"sats\">{other}</p>"))
        }
        _ => ("Any amount".to_string(), String::new()),
    };
    format!(
        "<div class=\"checkout\" data-invoice=\"{id}\" data-stage=\"{stage}\"{redirect}>\
         <section class=\"card summary\">{store}{item}{order}\
         <p class=\"amount\" id=\"amount\">{amount}</p>{sats}</section>\
         <section class=\"card state\" id=\"state\" aria-live=\"polite\">{state}</section>\
         <section class=\"card pay\" id=\"pay\">{countdown}<div id=\"methods\">{methods}</div>{card}</section>\
         <p class=\"invoice-id\">Invoice <code>{id}</code></p></div>",
        id = escape(&r.id),
        stage = stage.key(),
        redirect = auto_redirect(view, stage)
            .map(|url| format!(" data-redirect=\"{}\"", escape(&url)))
            .unwrap_or_default(),
        amount = escape(&amount),
        state = state_html(view, stage),
        countdown = countdown_html(view, now_ms),
        methods = methods_html(view),
        card = card_html(view),
    )
}

/// The form that pays with a Flash Card: a tap where the browser reads NFC (the script shows
/// the button), the card's link pasted otherwise, and its PIN when the card asks for it.
fn card_html(view: &InvoiceView) -> String {
    if view.method(LIGHTNING).is_none() || view.record.due_sat.is_none() {
        return String::new();
    }
    "<div class=\"card-pay\" id=\"card-pay\"><h3>Pay with a Flash Card</h3>\
     <button type=\"button\" id=\"card-tap\" hidden>Tap the card</button>\
     <form id=\"card-form\" class=\"row\"><input id=\"card-link\" name=\"lnurlw\" autocomplete=\"off\" \
     placeholder=\"lnurlw://… (the card's link)\" aria-label=\"The card's link\"><button type=\"submit\">Pay</button></form>\
     <form id=\"card-pin-form\" class=\"row\" hidden><input id=\"card-pin\" type=\"password\" inputmode=\"numeric\" maxlength=\"8\" \
     autocomplete=\"off\" placeholder=\"PIN\" aria-label=\"The card's PIN\"><button type=\"submit\">Pay</button></form>\
     <p id=\"card-message\" class=\"status\" role=\"status\"></p></div>"
        .to_string()
}

fn expires_in_secs(view: &InvoiceView, now_ms: i64) -> i64 {
    (view.record.expires_at.saturating_sub(now_ms) / 1_000).max(0)
}

fn countdown_html(view: &InvoiceView, now_ms: i64) -> String {
    let secs = expires_in_secs(view, now_ms);
    let text = if secs == 0 {
        "Expired".to_string()
    } else {
        format!("Expires in {}", clock_text(secs))
    };
    format!("<p class=\"countdown\" id=\"countdown\" data-expires-in=\"{secs}\">{text}</p>")
}

/// `h:mm:ss` or `m:ss`.
fn clock_text(secs: i64) -> String {
    let (h, m, s) = (secs / 3_600, secs % 3_600 / 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// The tabs and panels of where to pay: the unified URI when there are both methods, then
/// Lightning and on-chain, each a QR code, the destination with a copy button, and a link a
/// wallet opens, each for what is still due. Lightning only while its BOLT11 asks that: after
/// a partial payment, until the invoice watcher has renewed it.
fn methods_html(view: &InvoiceView) -> String {
    let mut panels: Vec<(&str, &str, String, String)> = Vec::new();
    let chain = view.method(ONCHAIN);
    let ln = view.lightning();
    if let (Some(_), Some(_), Some(uri)) = (ln, chain, view.payment_uri()) {
        panels.push(("unified", "Any wallet", uri.clone(), uri));
    }
    if let Some(ln) = ln {
        let link = format!("lightning:{}", ln.destination);
        panels.push(("lightning", "Lightning", ln.destination.clone(), link));
    }
    if let Some(chain) = chain {
        let mut link = format!("bitcoin:{}", chain.destination);
        if let Some(rest) = view.still_due_sat() {
            link.push_str(&format!("?amount={}", btc(rest)));
        }
        panels.push(("onchain", "On-chain", chain.destination.clone(), link));
    }
    let tabs = if panels.len() > 1 {
        let buttons: String = panels
            .iter()
            .enumerate()
            .map(|(i, (key, label, _, _))| {
                format!(
                    "<button type=\"button\" role=\"tab\" id=\"tab-{key}\" aria-controls=\"pay-{key}\" \
                     aria-selected=\"{}\">{label}</button>",
                    i == 0
                )
            })
            .collect();
        format!("<div class=\"tabs\" role=\"tablist\">{buttons}</div>")
    } else {
        String::new()
    };
    let panels: String = panels
        .iter()
        .enumerate()
        .map(|(i, (key, label, shown, link))| {
            let code = qr::svg(link, &format!("QR code: {label}"))
                .unwrap_or_else(|| "<p class=\"muted\">Too long for a QR code: copy it below.</p>".to_string());
            format!(
                "<div class=\"method\" id=\"pay-{key}\" role=\"tabpanel\"{hidden}>\
                 <div class=\"qr-box\">{code}</div>\
                 <div class=\"destination\"><code id=\"dest-{key}\">{shown}</code>\
                 <button type=\"button\" class=\"copy\" data-copy=\"dest-{key}\">Copy</button></div>\
                 <a class=\"button wallet\" href=\"{link}\">Open in wallet</a></div>",
                hidden = if i == 0 { "" } else { " hidden" },
                shown = escape(shown),
                link = escape(link),
            )
        })
        .collect();
    format!("{tabs}{panels}")
}

/// The state panel: what happened and what to do now; after settlement, the receipt.
fn state_html(view: &InvoiceView, stage: Stage) -> String {
    let r = &view.record;
    let remaining = r.due_sat.map(|due| (due - r.paid_sat).max(0)).unwrap_or(0);
    match stage {
        Stage::Waiting => "<h2>Waiting for payment</h2>".to_string(),
        Stage::Partial => format!(
            "<h2>Partially paid</h2><p>Received {paid}.</p>\
             <p class=\"due\">Amount still due: <strong>{due}</strong> ({due_btc} BTC)</p>\
             <p class=\"muted\">Pay the rest{how}.</p>",
            how = if view.lightning().is_some() { "" } else { " on-chain" },
            paid = sats_text(r.paid_sat),
            due = sats_text(remaining),
            due_btc = btc(remaining),
        ),
        Stage::Processing => "<h2>Payment received</h2>\
             <p class=\"muted\">Waiting for confirmations on the Bitcoin network. This page updates by itself.</p>"
            .to_string(),
        Stage::Settled => receipt_html(view),
        Stage::Expired if r.paid_sat > 0 => format!(
            "<h2>Expired</h2><p>This invoice expired before it was paid in full; {} came. \
             Contact the store about it.</p>",
            sats_text(r.paid_sat)
        ),
        Stage::Expired => "<h2>Expired</h2>\
             <p>This invoice expired before it was paid. Do not pay it now: ask the store for a new one.</p>"
            .to_string(),
        Stage::PaidLate => "<h2>Paid after expiry</h2>\
             <p>The payment came after the invoice expired. Contact the store about it.</p>"
            .to_string(),
        Stage::Invalid => "<h2>Invalid</h2><p>This invoice is no longer valid. Contact the store.</p>".to_string(),
    }
}

fn receipt_html(view: &InvoiceView) -> String {
    let r = &view.record;
    let paid_at = view
        .payments
        .iter()
        .filter(|p| p.status != "Invalid")
        .map(|p| p.received_at)
        .max()
        .map(|ms| {
            format!(
                "<dt>Paid at</dt><dd><time data-ms=\"{ms}\">{}</time></dd>",
                utc_text(ms)
            )
        })
        .unwrap_or_default();
    let payments: String = view
        .payments
        .iter()
        .map(|p| {
            let method = match p.method.as_str() {
                LIGHTNING => "Lightning",
                ONCHAIN => "On-chain",
                other => other,
            };
            let status = match p.status.as_str() {
                "Settled" => "confirmed",
                "Processing" => "waiting for confirmations",
                _ => "invalid",
            };
            format!("<li>{} · {} · {}</li>", escape(method), sats_text(p.value_sat), status)
        })
        .collect();
    let back = redirect_of(view)
        .map(|(url, _)| {
            format!(
                "<a class=\"button\" id=\"return\" href=\"{}\">Return to store</a>",
                escape(&url)
            )
        })
        .unwrap_or_default();
    let amount = if r.kind == "TopUp" {
        String::new()
    } else {
        format!("<dt>Amount</dt><dd>{}</dd>", escape(&money(&r.amount, &r.currency)))
    };
    format!(
        "<h2>Paid</h2><p class=\"muted\">Thank you: the store has your payment.</p>\
         <dl class=\"receipt\">{amount}<dt>Paid</dt><dd>{paid} ({paid_btc} BTC)</dd>{paid_at}</dl>\
         <ul class=\"payments\">{payments}</ul>{back}",
        paid = sats_text(r.paid_sat),
        paid_btc = btc(r.paid_sat),
    )
}

/// The invoice's `checkout.redirectURL` with BTCPay's `{InvoiceId}` and `{OrderId}`
/// placeholders filled in (URL-encoded), and whether to go there without asking.
fn redirect_of(view: &InvoiceView) -> Option<(String, bool)> {
    let checkout: Value = serde_json::from_str(&view.record.checkout).ok()?;
    let url = checkout.get("redirectURL").and_then(Value::as_str)?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return None;
    }
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let url = url.replace("{InvoiceId}", &encode(&view.record.id)).replace(
        "{OrderId}",
        &encode(view.record.order_id.as_deref().unwrap_or_default()),
    );
    let automatic = checkout
        .get("redirectAutomatically")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    Some((url, automatic))
}

/// Where the page goes by itself: the redirect URL once settled, if it is to be automatic.
fn auto_redirect(view: &InvoiceView, stage: Stage) -> Option<String> {
    match (stage, redirect_of(view)) {
        (Stage::Settled, Some((url, true))) => Some(url),
        _ => None,
    }
}

/// Unix ms as `2026-12-07 10:58 UTC` (the page's script shows it in the payer's time zone).
pub(super) fn utc_text(ms: i64) -> String {
    let secs = ms.div_euclid(1_000);
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = flash_core::calendar::civil_from_days(days);
    format!(
        "{year}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3_600,
        rest % 3_600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_and_dates() {
        assert_eq!(clock_text(899), "14:59");
        assert_eq!(clock_text(3_661), "1:01:01");
        assert_eq!(utc_text(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_text(951_782_400_000 + 3_600_000 + 60_000), "2000-02-29 01:01 UTC");
        assert_eq!(utc_text(1_796_641_200_000), "2026-12-07 11:00 UTC");
    }

    #[test]
    fn stream_slots_are_counted_and_given_back() {
        let before = OPEN_STREAMS.load(Ordering::SeqCst);
        let slot = StreamSlot::take().expect("a slot");
        assert_eq!(OPEN_STREAMS.load(Ordering::SeqCst), before + 1);
        drop(slot);
        assert_eq!(OPEN_STREAMS.load(Ordering::SeqCst), before);
    }
}
