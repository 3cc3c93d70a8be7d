//! The web pages `flashd` serves: server-rendered HTML around one stylesheet and small scripts
//! of our own, all compiled into the binary and served from `/assets/`. No page loads anything
//! from another origin; the Content-Security-Policy on every page says so to the browser too.

mod amounts;
pub(crate) mod card;
pub(crate) mod checkout;
pub(crate) mod payment_request;
pub(crate) mod pos;
mod qr;

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::ApiState;

/// A Content-Security-Policy allowing only this origin's scripts, styles and connections, and
/// images from `$img`.
macro_rules! csp {
    ($img:literal) => {
        concat!(
            "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src ",
            $img,
            "; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
        )
    };
}

/// What every page may load: only this origin's scripts, styles, connections and images.
const CONTENT_SECURITY_POLICY: &str = csp!("'self' data:");
/// The point of sale's policy: the same, plus item pictures over https from anywhere.
const POS_CONTENT_SECURITY_POLICY: &str = csp!("'self' data: https:");

/// The files under `/assets/`: name, content type, bytes.
const ASSETS: &[(&str, &str, &str)] = &[
    ("flash.css", "text/css; charset=utf-8", include_str!("assets/flash.css")),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/console.js"),
    ),
    (
        "checkout.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/checkout.js"),
    ),
    (
        "pos.js",
        "text/javascript; charset=utf-8",
        include_str!("assets/pos.js"),
    ),
];

/// `&`, `<`, `>`, `"` and `'` as HTML entities, for text placed in a page.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: the shared header, `body` (already HTML), and the page's script, if any.
/// `title` is text and is escaped here.
pub(crate) fn page(title: &str, where_: &str, body: &str, script: Option<&str>) -> Response {
    let script = script
        .map(|name| format!("<script src=\"/assets/{name}\" defer></script>"))
        .unwrap_or_default();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} · Flash</title><link rel=\"stylesheet\" href=\"/assets/flash.css\">{script}</head>\
         <body><header><h1><a href=\"/\"><span>⚡</span> Flash</a></h1><div class=\"where\">{where_}</div></header>\
         <main>{body}</main></body></html>",
        title = escape(title),
        where_ = escape(where_),
    );
    with_page_headers(html.into_response())
}

/// A page that only tells something (not found, unavailable), answered with `status`. The
/// texts are escaped here.
pub(crate) fn notice(status: StatusCode, title: &str, where_: &str, text: &str) -> Response {
    let body = format!(
        "<section class=\"card notice\"><h2>{}</h2><p>{}</p></section>",
        escape(title),
        escape(text)
    );
    let mut response = page(title, where_, &body, None);
    *response.status_mut() = status;
    response
}

fn with_page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// GET `/assets/{name}`.
pub(crate) async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, body)) => (
            [
                (header::CONTENT_TYPE, *content_type),
                (header::CACHE_CONTROL, "no-cache"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            *body,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The query console for a GraphQL endpoint: a token field, the query and its variables, the
/// answer, and the schema's root fields to pick from.
pub(crate) fn console(endpoint: &'static str, title: &str, token_label: &str, example: &str) -> Response {
    let body = format!(
        "<div class=\"console\" data-endpoint=\"{endpoint}\">\
         <section class=\"panel\"><h2>Schema</h2><button type=\"button\" id=\"schema\">Reload</button>\
         <ul class=\"fields\" id=\"fields\"></ul></section>\
         <section class=\"panel\"><h2>Request</h2>\
         <label for=\"token\">{token_label}</label>\
         <input id=\"token\" type=\"password\" autocomplete=\"off\" spellcheck=\"false\" placeholder=\"none\">\
         <label for=\"query\">Query</label>\
         <textarea id=\"query\" spellcheck=\"false\">{example}</textarea>\
         <label for=\"variables\">Variables (JSON)</label>\
         <textarea id=\"variables\" spellcheck=\"false\"></textarea>\
         <div class=\"row\"><button type=\"button\" id=\"run\">Run</button>\
         <span class=\"status\" id=\"status\">Ctrl+Enter runs the query.</span></div></section>\
         <section class=\"panel\"><h2>Answer</h2><pre id=\"result\"></pre></section></div>",
        token_label = escape(token_label),
        example = escape(example),
    );
    page(title, endpoint, &body, Some("console.js"))
}

/// The page a browser sees at `/`.
pub(crate) async fn landing(State(state): State<ApiState>) -> Response {
    let simulated = if state.info.simulated_rails.is_empty() {
        String::new()
    } else {
        format!(
            "<p><strong>Simulated rails:</strong> {}</p>",
            escape(&state.info.simulated_rails.join(", "))
        )
    };
    let relay = crate::relay::relay_url(state.relay.as_ref())
        .map(|url| format!("<li>NOSTR relay: <code>{}</code></li>", escape(&url)))
        .unwrap_or_default();
    let body = format!(
        "<p>A Bitcoin bank on {network} ({db}).</p>{simulated}\
         <ul><li><a href=\"/graphql\">GraphQL app API</a> (query console)</li>\
         <li><a href=\"/admin/graphql\">Operator API</a> (query console; needs the operator key)</li>\
         <li>Checkout pages: <code>/i/{{invoiceId}}</code> (the <code>checkoutLink</code> of a Greenfield invoice)</li>\
         <li>Point of sale: <code>/apps/{{appId}}/pos</code> (a Greenfield point-of-sale app)</li>\
         <li>Payment requests: <code>/payment-requests/{{paymentRequestId}}</code> (a Greenfield payment request)</li>\
         {relay}<li><a href=\"/healthz\">/healthz</a>, <a href=\"/readyz\">/readyz</a>, <a href=\"/metrics\">/metrics</a></li></ul>",
        network = escape(&state.bank.config().network.to_string()),
        db = escape(state.info.backend),
    );
    page("Flash", "", &body, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain ⚡"), "plain ⚡");
    }
}
