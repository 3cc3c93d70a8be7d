//! The public page of a payment request, `/payment-requests/{id}`, as BTCPay serves it to the
//! customer a merchant sends it to: the store, the title and description, the amount asked,
//! what is paid and still due, the status, the expiry date and the request's invoices.
//!
//! "Pay" is a plain form (no script): it posts to `/payment-requests/{id}/pay`, which makes the
//! invoice (or finds a pending one of the same amount) and answers `303 See Other` to its
//! checkout page. The request's id is the capability, as on BTCPay's page; the endpoint is
//! counted per address with the other public invoice requests.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use flash_merchant::invoice_data::name;
use flash_merchant::{MerchantError, PublicPaymentRequest, RequestStatus};

use super::amounts::{money, Unit};
use super::checkout::{plausible_id, utc_text};
use super::{escape, notice, page};
use crate::{ApiState, Peer};

/// Where these pages say they are.
const WHERE: &str = "Payment request";

/// The payment request's page and its pay endpoint.
pub(crate) fn routes(state: ApiState) -> Router {
    Router::new()
        .route("/payment-requests/{id}", get(show))
        .route("/payment-requests/{id}/pay", post(pay))
        .with_state(state)
}

/// What the payer sent that the page shows again: the amount typed and why it was refused.
struct Refusal<'a> {
    amount: &'a str,
    message: String,
}

/// GET `/payment-requests/{id}`: the page, or a 404 page for an unknown or archived request.
async fn show(State(state): State<ApiState>, Path(id): Path<String>) -> Response {
    match load(&state, &id).await {
        Ok(request) => request_page(&request, state.bank.now_ms(), None, StatusCode::OK),
        Err(response) => response,
    }
}

/// POST `/payment-requests/{id}/pay` (a form: `amount`, optional): `303` to the checkout page
/// of the invoice made, or the page again with why not.
async fn pay(State(state): State<ApiState>, peer: Peer, Path(id): Path<String>, body: Bytes) -> Response {
    let retry = match state.auth.check_public_lightning_rate(peer.0.ip()) {
        Ok(()) => None,
        Err(flash_auth::AuthError::RateLimited { retry_after_secs }) => Some(retry_after_secs),
        Err(_) => Some(60),
    };
    if let Some(secs) = retry {
        let mut response = notice(
            StatusCode::TOO_MANY_REQUESTS,
            "Too many requests",
            WHERE,
            &format!("Too many payments were started from your address. Try again in {secs} seconds."),
        );
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    let typed = url::form_urlencoded::parse(&body)
        .find(|(key, _)| key == "amount")
        .map(|(_, value)| value.trim().to_string())
        .filter(|value| !value.is_empty());
    if !plausible_id(&id) {
        return not_found();
    }
    let paid = state.merchant.pay_public_payment_request(&id, typed.as_deref()).await;
    let (status, message) = match paid {
        Ok(invoice) => {
            let location = format!("/i/{}", invoice.record.id);
            return match HeaderValue::from_str(&location) {
                Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
                Err(_) => unavailable(&id, "the invoice id is not a header value"),
            };
        }
        Err(MerchantError::PaymentRequestNotFound) => return not_found(),
        Err(MerchantError::Invalid(errors)) => {
            let why: Vec<String> = errors.into_iter().map(|e| e.message).collect();
            (StatusCode::UNPROCESSABLE_ENTITY, why.join("; "))
        }
        Err(MerchantError::PaymentRequestClosed(_)) => (
            StatusCode::CONFLICT,
            "This payment request takes no more payments.".to_string(),
        ),
        Err(e) => return unavailable(&id, &e.to_string()),
    };
    match load(&state, &id).await {
        Ok(request) => {
            let refusal = Refusal {
                amount: typed.as_deref().unwrap_or_default(),
                message,
            };
            request_page(&request, state.bank.now_ms(), Some(&refusal), status)
        }
        Err(response) => response,
    }
}

/// The request for its page, or the page telling why there is none.
async fn load(state: &ApiState, id: &str) -> Result<PublicPaymentRequest, Response> {
    if !plausible_id(id) {
        return Err(not_found());
    }
    match state.merchant.public_payment_request(id).await {
        Ok(request) => Ok(request),
        Err(MerchantError::PaymentRequestNotFound) => Err(not_found()),
        Err(e) => Err(unavailable(id, &e.to_string())),
    }
}

fn not_found() -> Response {
    notice(
        StatusCode::NOT_FOUND,
        "Payment request not found",
        WHERE,
        "There is no payment request at this address. Check the link you were given.",
    )
}

fn unavailable(id: &str, error: &str) -> Response {
    tracing::warn!(request = %id, error, "payment request page: could not answer");
    notice(
        StatusCode::SERVICE_UNAVAILABLE,
        "Payment request unavailable",
        WHERE,
        "This payment request cannot be shown right now. Reload the page in a moment.",
    )
}

/// The whole page, answered with `status`; never cached (the status changes).
fn request_page(
    request: &PublicPaymentRequest,
    now_ms: i64,
    refusal: Option<&Refusal<'_>>,
    status: StatusCode,
) -> Response {
    let body = render(request, now_ms, refusal);
    let mut response = page(request.request.title(), WHERE, &body, None);
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The page's body.
fn render(request: &PublicPaymentRequest, now_ms: i64, refusal: Option<&Refusal<'_>>) -> String {
    let view = &request.request;
    let currency = view.currency();
    let status = view.status;
    let store = if request.store_name.is_empty() {
        String::new()
    } else {
        format!("<p class=\"store\">{}</p>", escape(&request.store_name))
    };
    let description = view
        .description()
        .map(|d| format!("<p class=\"request-description\" id=\"description\">{}</p>", escape(d)))
        .unwrap_or_default();
    let expiry = view
        .expiry_date()
        .map(|secs| {
            let when = secs.saturating_mul(1_000);
            let label = if when <= now_ms { "Expired" } else { "Expires" };
            format!("<dt>{label}</dt><dd id=\"expiry\">{}</dd>", utc_text(when))
        })
        .unwrap_or_default();
    let action = match status {
        RequestStatus::Pending => pay_form(request, refusal),
        RequestStatus::Processing => {
            closed("Paid in full: the payment is waiting for confirmation. This page shows it completed once it is.")
        }
        RequestStatus::Completed => closed("Paid in full. Thank you!"),
        RequestStatus::Expired => closed("This payment request has expired and takes no more payments."),
    };
    format!(
        "<div class=\"request\" data-status=\"{key}\">\
         <section class=\"card summary\">{store}<h2 class=\"request-title\" id=\"title\">{title}</h2>\
         {description}<p class=\"amount\" id=\"amount\">{amount}</p>\
         <p><span class=\"request-status\" id=\"status\">{status_name}</span></p></section>\
         <section class=\"card\"><dl class=\"receipt\" id=\"totals\">\
         <dt>Amount</dt><dd>{amount}</dd><dt>Paid</dt><dd id=\"paid\">{paid}</dd>\
         <dt>Still due</dt><dd id=\"due\">{due}</dd>{expiry}</dl>{action}</section>\
         {history}<p class=\"invoice-id\">Payment request <code>{id}</code></p></div>",
        key = status.name().to_ascii_lowercase(),
        title = escape(view.title()),
        amount = escape(&money(&view.amount(), &currency)),
        status_name = status.name(),
        paid = escape(&money(&request.paid, &currency)),
        due = escape(&money(&request.due, &currency)),
        history = history(request),
        id = escape(&view.record.id),
    )
}

/// Why a closed request takes no payment.
fn closed(why: &str) -> String {
    format!("<p class=\"request-closed\" id=\"closed\">{}</p>", escape(why))
}

/// The form paying the request: an amount field when custom amounts are allowed (at most what
/// is due, in steps of the currency's smallest unit), and the Pay button.
fn pay_form(request: &PublicPaymentRequest, refusal: Option<&Refusal<'_>>) -> String {
    let view = &request.request;
    let currency = view.currency();
    let due = escape(&money(&request.due, &currency));
    let error = refusal
        .map(|r| {
            format!(
                "<p class=\"pos-error\" id=\"error\" role=\"alert\">{}</p>",
                escape(&r.message)
            )
        })
        .unwrap_or_default();
    let (field, label) = if view.allows_custom_amounts() {
        let unit = Unit::of(&currency);
        let step = if unit.digits == 0 {
            "1".to_string()
        } else {
            format!("0.{}1", "0".repeat(unit.digits - 1))
        };
        let value = refusal.map_or(request.due.as_str(), |r| r.amount);
        let symbol = format!("{}{}", unit.prefix, unit.suffix);
        (
            format!(
                "<label class=\"pos-field\" for=\"pay-amount\">Amount ({symbol})\
                 <input id=\"pay-amount\" name=\"amount\" type=\"number\" inputmode=\"decimal\" \
                 autocomplete=\"off\" min=\"{step}\" max=\"{max}\" step=\"{step}\" value=\"{value}\" required></label>\
                 <p class=\"muted request-hint\">Up to {due}, what is still due.</p>",
                symbol = escape(symbol.trim()),
                max = escape(&request.due),
                value = escape(value),
            ),
            "Pay".to_string(),
        )
    } else {
        (String::new(), format!("Pay {due}"))
    };
    format!(
        "<form class=\"request-pay\" method=\"post\" action=\"/payment-requests/{id}/pay\">\
         {field}{error}<button type=\"submit\" class=\"pos-pay\" id=\"pay\">{label}</button></form>",
        id = escape(&view.record.id),
    )
}

/// The request's invoices: amount, status and date, each linking to its checkout page.
fn history(request: &PublicPaymentRequest) -> String {
    let rows: String = request
        .invoices
        .iter()
        .map(|invoice| {
            let status = name(invoice.status);
            format!(
                "<li data-status=\"{key}\"><a href=\"/i/{id}\">{amount}</a>\
                 <span class=\"invoice-status\">{status}</span><span class=\"muted\">{when}</span></li>",
                key = escape(&status.to_ascii_lowercase()),
                id = escape(&invoice.id),
                amount = escape(&money(&invoice.amount, &invoice.currency)),
                status = escape(&status),
                when = utc_text(invoice.created_at),
            )
        })
        .collect();
    let list = if rows.is_empty() {
        "<p class=\"muted\">No payments yet.</p>".to_string()
    } else {
        format!("<ul class=\"request-invoices\" id=\"invoices\">{rows}</ul>")
    };
    format!("<section class=\"card\"><h2>Payment history</h2>{list}</section>")
}
