//! The checkout page `/i/{invoiceId}` in a real headless Chromium laid out as a 390-pixel-wide
//! phone: it loads only this server's assets, shows the amount, a QR code and the countdown,
//! and turns paid, expired or partially paid as the invoice does, without reloading (the
//! status stream). Over plain HTTP: the 404 page, the status stream's first event, its end
//! once the invoice is final, on-chain confirmations, the automatic redirect, and escaping of
//! what the merchant wrote; a Flash Card paying from the page, its PIN asked; another issuer's
//! card (a withdraw service on this machine) paying through its service. Screenshots go to
//! `FLASH_SCREENSHOT_DIR` when it is set (`docs/img/checkout*.png` are the committed ones).

mod common;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::time::Duration;

use common::*;
use flash_merchant::watcher::PassKind;
use serde_json::{json, Value};
use webdriver::Browser;

flash_store::on_both_backends!(
    unknown_invoices_are_a_404_page,
    the_status_stream_tells_the_state_and_ends_when_final,
    what_the_merchant_wrote_is_escaped,
    on_chain_waits_for_confirmations_then_settles,
    another_issuers_card_pays_through_its_service,
);

/// A phone's viewport, in CSS pixels.
const PHONE: (u32, u32) = (390, 844);

/// A store of a new member, with its owner's `Authorization` header.
struct Shop {
    auth: String,
    store: String,
}

async fn shop(s: &TestServer, body: Value) -> Shop {
    let owner = s.member().await;
    let auth = format!("Bearer {}", owner.token);
    let r = greenfield(s, "POST", "/api/v1/stores", &auth, Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let store = r.json()["id"].as_str().expect("store id").to_string();
    Shop { auth, store }
}

async fn greenfield(s: &TestServer, method: &str, path: &str, auth: &str, body: Option<&Value>) -> Resp {
    s.greenfield(method, path, Some(auth), body, &[]).await
}

/// Creates an invoice; its id.
async fn invoice(s: &TestServer, shop: &Shop, body: Value) -> String {
    let path = format!("/api/v1/stores/{}/invoices", shop.store);
    let r = greenfield(s, "POST", &path, &shop.auth, Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["id"].as_str().expect("invoice id").to_string()
}

/// Where an invoice is paid by `method` (`BTC-LN`, `BTC-CHAIN`).
async fn destination(s: &TestServer, shop: &Shop, id: &str, method: &str) -> String {
    let path = format!("/api/v1/stores/{}/invoices/{id}/payment-methods", shop.store);
    let r = greenfield(s, "GET", &path, &shop.auth, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
        .as_array()
        .expect("methods")
        .iter()
        .find(|m| m["paymentMethodId"] == method)
        .and_then(|m| m["destination"].as_str())
        .unwrap_or_else(|| panic!("no {method}: {}", r.text))
        .to_string()
}

/// Opens an invoice's page on a phone and marks the document, to tell a reload later.
async fn open(browser: &Browser, s: &TestServer, id: &str) {
    browser.goto(&s.url(&format!("/i/{id}"))).await;
    browser
        .wait_for_text("#state", |t| t.starts_with("Waiting for payment"))
        .await;
    browser.eval("window.__marker = 1; return null;").await;
}

async fn same_document(browser: &Browser) {
    assert_eq!(
        browser.eval("return window.__marker === 1;").await,
        json!(true),
        "the page was reloaded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_turns_paid_without_reloading() {
    let Some(browser) = Browser::start().await else { return };
    let s = TestServer::start(Backend::Sqlite).await;
    let _watcher = s.watch_invoices();
    let shop = shop(&s, json!({"name": "Tea shop"})).await;
    let id = invoice(
        &s,
        &shop,
        json!({
            "amount": "5.00", "currency": "USD",
            "metadata": {"orderId": "order-42", "itemDesc": "Two cups of sencha"},
            "checkout": {"redirectURL": "https://tea.example/thanks?invoice={InvoiceId}&order={OrderId}"}
        }),
    )
    .await;
    browser.emulate_phone(PHONE.0, PHONE.1).await;
    open(&browser, &s, &id).await;

    // Only this server's script and stylesheet; the amount, the store, what is bought, a QR
    // code drawn in the page, and the countdown from the invoice's 15 minutes.
    let base = s.url("");
    let resources = browser.loaded_resources().await;
    assert!(
        resources.iter().any(|r| r.ends_with("/assets/checkout.js")),
        "{resources:?}"
    );
    for r in &resources {
        assert!(r.starts_with(&base), "{r} is not from this server ({base})");
    }
    let summary = browser.text(&browser.find(".summary").await).await;
    for shown in [
        "TEA SHOP",
        "Two cups of sencha",
        "Order order-42",
        "$5.00",
        "sats",
        "BTC",
    ] {
        assert!(summary.contains(shown), "{shown} is not in {summary}");
    }
    let qr = browser
        .eval("return Array.from(document.querySelectorAll('#pay svg.qr')).map(q => q.getBoundingClientRect().width);")
        .await;
    let widths: Vec<f64> = qr
        .as_array()
        .expect("widths")
        .iter()
        .filter_map(Value::as_f64)
        .collect();
    assert_eq!(widths.len(), 3, "unified, Lightning and on-chain: {qr}");
    assert!(widths[0] > 200.0, "the shown QR code is large enough to scan: {qr}");
    let countdown = browser
        .wait_for_text("#countdown", |t| t.starts_with("Expires in 14:"))
        .await;
    assert!(countdown.len() <= "Expires in 14:59".len(), "{countdown}");
    // Nothing wider than the phone, nothing from elsewhere.
    browser.assert_fits_and_loads_only_from(&s.url("")).await;

    // The tabs show one way to pay at a time; the unified URI comes first.
    let unified = browser.text(&browser.find("#dest-unified").await).await;
    assert!(unified.starts_with("bitcoin:"), "{unified}");
    browser.click(&browser.find("#tab-lightning").await).await;
    let bolt11 = destination(&s, &shop, &id, "BTC-LN").await;
    let shown = browser
        .eval("return [document.getElementById('pay-lightning').hidden, document.getElementById('pay-unified').hidden, document.getElementById('dest-lightning').textContent];")
        .await;
    assert_eq!(shown, json!([false, true, bolt11]));
    let link = browser
        .eval("return document.querySelector('#pay-lightning a.wallet').getAttribute('href');")
        .await;
    assert_eq!(link, json!(format!("lightning:{bolt11}")));
    browser.click(&browser.find("#tab-unified").await).await;
    browser.click(&browser.find("#pay-unified button.copy").await).await;
    browser
        .wait_for_text("#pay-unified button.copy", |t| t == "Copied")
        .await;
    browser.wait_for_text("#pay-unified button.copy", |t| t == "Copy").await;
    browser.screenshot("checkout").await;

    // Paid from outside: the page says so by itself, with the receipt and the way back.
    s.pay_from_outside(&bolt11).await;
    let receipt = browser.wait_for_text("#state", |t| t.starts_with("Paid")).await;
    same_document(&browser).await;
    for shown in ["$5.00", "5,000 sats", "Lightning", "confirmed", "Return to store"] {
        assert!(receipt.contains(shown), "{shown} is not in {receipt}");
    }
    let back = browser
        .eval("return document.getElementById('return').getAttribute('href');")
        .await;
    assert_eq!(
        back,
        json!(format!("https://tea.example/thanks?invoice={id}&order=order-42"))
    );
    let pay_display = browser
        .eval("return getComputedStyle(document.getElementById('pay')).display;")
        .await;
    assert_eq!(pay_display, json!("none"), "nothing left to pay");
    browser.screenshot("checkout-paid").await;

    // Dark mode: the same page, light text on a dark background.
    let dark = invoice(&s, &shop, json!({"amount": "2100", "currency": "SATS"})).await;
    browser.prefer_color_scheme("dark").await;
    open(&browser, &s, &dark).await;
    let colors = browser
        .eval("return [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color];")
        .await;
    assert_eq!(colors, json!(["rgb(20, 23, 28)", "rgb(230, 233, 239)"]));
    let amount = browser.text(&browser.find("#amount").await).await;
    assert_eq!(amount, "2,100 sats");
    browser.screenshot("checkout-dark").await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_turns_expired_when_the_server_says_so() {
    let Some(browser) = Browser::start().await else { return };
    let s = TestServer::start(Backend::Sqlite).await;
    let shop = shop(&s, json!({"name": "Tea shop"})).await;
    let id = invoice(
        &s,
        &shop,
        json!({"amount": "1000", "currency": "SATS", "checkout": {"expirationMinutes": 1}}),
    )
    .await;
    browser.emulate_phone(PHONE.0, PHONE.1).await;
    open(&browser, &s, &id).await;
    browser
        .wait_for_text("#countdown", |t| t.starts_with("Expires in 0:"))
        .await;

    // The server's clock passes the expiry (the browser's does not): the stream tells.
    s.advance_secs(61);
    s.state.merchant.watch_pass(PassKind::Due).await.expect("pass");
    let state = browser.wait_for_text("#state", |t| t.starts_with("Expired")).await;
    assert!(state.contains("ask the store for a new one"), "{state}");
    same_document(&browser).await;
    let pay_display = browser
        .eval("return getComputedStyle(document.getElementById('pay')).display;")
        .await;
    assert_eq!(pay_display, json!("none"));
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_card_pays_from_the_page() {
    let Some(browser) = Browser::start().await else { return };
    let s = TestServer::start(Backend::Sqlite).await;
    let _watcher = s.watch_invoices();
    let shop = shop(&s, json!({"name": "Tea shop"})).await;
    let id = invoice(
        &s,
        &shop,
        json!({"amount": "2100", "currency": "SATS", "metadata": {"itemDesc": "Sencha"}}),
    )
    .await;
    let payer = s.member().await;
    s.fund(&payer.wallet_id, 50_000).await;
    let uid = [0x04, 0x51, 0x2a, 0x6a, 0x92, 0x69, 0x80];
    let (card_id, mut card, _, _) = programmed_card(&s, &payer, 5_000, 20_000, uid).await;
    // From 2,000 sats up the card wants its PIN.
    s.state
        .cards
        .set_pin(
            payer.account_id.parse().expect("account"),
            &card_id,
            Some(("2468", 2_000)),
        )
        .await
        .expect("pin");
    browser.emulate_phone(PHONE.0, PHONE.1).await;
    open(&browser, &s, &id).await;
    // No NFC in headless Chromium: the tap button stays hidden, the link field is there.
    let shown = browser
        .eval(
            "return [document.getElementById('card-tap').hidden,\
             getComputedStyle(document.getElementById('card-form')).display];",
        )
        .await;
    assert_eq!(shown, json!([true, "flex"]));
    let link = browser.find("#card-link").await;
    let pay = browser.find("#card-form button").await;
    browser
        .type_into(&link, &format!("lnurlw://{}/boltcard?p=00&c=00", s.addr))
        .await;
    browser.click(&pay).await;
    let said = browser
        .wait_for_text("#card-message", |t| t.contains("Flash Card"))
        .await;
    assert!(said.contains("not a Flash Card of this server"), "{said}");

    let (p, c) = card.tap();
    browser.clear(&link).await;
    browser
        .type_into(&link, &format!("lnurlw://{}/boltcard?p={p}&c={c}", s.addr))
        .await;
    browser.click(&pay).await;
    browser.wait_for_text("#card-message", |t| t.contains("PIN")).await;
    let pin = browser.find("#card-pin").await;
    let pin_pay = browser.find("#card-pin-form button").await;
    browser.type_into(&pin, "1357").await;
    browser.click(&pin_pay).await;
    let said = browser
        .wait_for_text("#card-message", |t| t.contains("wrong PIN"))
        .await;
    assert!(said.contains("2 tries left"), "{said}");
    browser.type_into(&pin, "2468").await;
    browser.screenshot("checkout-card").await;
    browser.click(&pin_pay).await;
    browser
        .wait_for_text("#card-message", |t| t.contains("Paid with the card"))
        .await;
    browser.wait_for_text("#state", |t| t.starts_with("Paid")).await;
    same_document(&browser).await;
    assert_eq!(s.balance(&payer).await, 50_000 - 2_100);
    // The same tap again: refused (the page is final; the route says so).
    let again = s
        .post_json(
            &format!("/i/{id}/card"),
            None,
            &json!({"lnurlw": format!("lnurlw://{}/boltcard?p={p}&c={c}", s.addr)}),
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partial_payment_shows_what_is_still_due() {
    let Some(browser) = Browser::start().await else { return };
    let s = TestServer::start(Backend::Sqlite).await;
    let _watcher = s.watch_invoices();
    let shop = shop(&s, json!({"name": "Tea shop", "speedPolicy": "HighSpeed"})).await;
    let id = invoice(&s, &shop, json!({"amount": "2100", "currency": "SATS"})).await;
    browser.emulate_phone(PHONE.0, PHONE.1).await;
    open(&browser, &s, &id).await;

    // 700 of 2,100 sats on-chain, counted at once under HighSpeed.
    let address = destination(&s, &shop, &id, "BTC-CHAIN").await;
    s.state.bank.dev_chain_deposit(&address, 700).await.expect("deposit");
    let state = browser
        .wait_for_text("#state", |t| t.starts_with("Partially paid"))
        .await;
    assert!(state.contains("Received 700 sats"), "{state}");
    assert!(state.contains("Amount still due: 1,400 sats (0.000014 BTC)"), "{state}");
    // The watcher renews the BOLT11 for the rest, and the page offers Lightning again.
    browser.wait_for_text("#state", |t| t.contains("Pay the rest.")).await;
    same_document(&browser).await;
    let bolt11 = destination(&s, &shop, &id, "BTC-LN").await;
    let renewed = s
        .state
        .bank
        .ln_invoice_by_request(&bolt11)
        .await
        .expect("renewed BOLT11");
    assert_eq!(renewed.amount, Some(1_400));
    let pay = browser
        .eval(
            "return [getComputedStyle(document.getElementById('pay')).display,\
             [...document.querySelectorAll('#pay [role=tab]')].map(t => t.textContent),\
             [...document.querySelectorAll('#pay a.wallet')].map(a => a.getAttribute('href'))];",
        )
        .await;
    assert_eq!(
        pay,
        json!([
            "block",
            ["Any wallet", "Lightning", "On-chain"],
            [
                format!("bitcoin:{address}?amount=0.000014&lightning={bolt11}"),
                format!("lightning:{bolt11}"),
                format!("bitcoin:{address}?amount=0.000014")
            ]
        ])
    );
    browser.screenshot("checkout-partial").await;
    browser.quit().await;
}

async fn unknown_invoices_are_a_404_page(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = s.get("/i/NoSuchInvoice", &[]).await;
    assert_eq!(r.status, 404);
    assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
    assert!(r.text.contains("Invoice not found"), "{}", r.text);
    let landing = s.get("/", &[("accept", "text/html")]).await;
    assert_eq!(
        r.headers["content-security-policy"], landing.headers["content-security-policy"],
        "the same policy as every page"
    );
    assert!(
        landing.text.contains("Checkout pages: <code>/i/{invoiceId}</code>"),
        "{}",
        landing.text
    );
    assert_eq!(s.get("/i/NoSuchInvoice/status", &[]).await.status, 404);
    let odd = s.get(&format!("/i/{}", "x".repeat(500)), &[]).await;
    assert_eq!(odd.status, 404);
    assert_eq!(s.get("/i/a%3Cb/status", &[]).await.status, 404);
}

/// Reads a status stream until `events` events came or it ended; the events' data and
/// whether it ended.
async fn read_events(s: &TestServer, id: &str, events: usize) -> (Vec<Value>, bool) {
    let mut resp = s
        .http
        .get(s.url(&format!("/i/{id}/status")))
        .send()
        .await
        .expect("status stream");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["cache-control"], "no-cache");
    let mut text = String::new();
    let mut ended = false;
    while text.matches("\n\n").count() < events {
        match tokio::time::timeout(Duration::from_secs(10), resp.chunk()).await {
            Ok(Ok(Some(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            Ok(Ok(None)) => {
                ended = true;
                break;
            }
            Ok(Err(e)) => panic!("stream: {e}"),
            Err(_) => panic!("no event within 10 s; so far: {text}"),
        }
    }
    if !ended {
        // Whatever else it says within a moment; a final invoice's stream ends.
        if let Ok(Ok(None)) = tokio::time::timeout(Duration::from_secs(3), resp.chunk()).await {
            ended = true;
        }
    }
    let data = text
        .split("\n\n")
        .filter(|block| block.contains("event: status"))
        .map(|block| {
            let line = block
                .lines()
                .find_map(|l| l.strip_prefix("data: "))
                .unwrap_or_else(|| panic!("no data in {block}"));
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"))
        })
        .collect();
    (data, ended)
}

async fn the_status_stream_tells_the_state_and_ends_when_final(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, json!({"name": "Tea shop"})).await;
    let id = invoice(&s, &shop, json!({"amount": "2100", "currency": "SATS"})).await;

    let (events, ended) = read_events(&s, &id, 1).await;
    assert!(!ended, "an open invoice's stream stays open");
    let first = &events[0];
    assert_eq!(
        (&first["status"], &first["additionalStatus"], &first["stage"]),
        (&json!("New"), &json!("None"), &json!("waiting"))
    );
    let left = first["expiresInSecs"].as_i64().expect("seconds left");
    assert!((890..=900).contains(&left), "{first}");
    assert!(first["html"]
        .as_str()
        .is_some_and(|h| h.contains("Waiting for payment")));

    s.pay_from_outside(&destination(&s, &shop, &id, "BTC-LN").await).await;
    s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep");
    let (events, ended) = read_events(&s, &id, 1).await;
    assert_eq!(
        (&events[0]["status"], &events[0]["stage"]),
        (&json!("Settled"), &json!("settled"))
    );
    assert!(ended, "a settled invoice's stream ends after telling it");
    assert_eq!(events[0]["redirect"], Value::Null);
    assert_eq!(events[0]["methods"], Value::Null, "nothing left to pay");

    // Back to the store by itself, placeholders filled in as BTCPay does.
    let id = invoice(
        &s,
        &shop,
        json!({
            "amount": "2100", "currency": "SATS", "metadata": {"orderId": "a b&c"},
            "checkout": {"redirectURL": "https://tea.example/{OrderId}/done?i={InvoiceId}", "redirectAutomatically": true}
        }),
    )
    .await;
    let (events, _) = read_events(&s, &id, 1).await;
    assert_eq!(events[0]["redirect"], Value::Null, "not before it is paid");
    s.pay_from_outside(&destination(&s, &shop, &id, "BTC-LN").await).await;
    s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep");
    let (events, _) = read_events(&s, &id, 1).await;
    let back = format!("https://tea.example/a+b%26c/done?i={id}");
    assert_eq!(events[0]["redirect"], json!(back));
    let page = s.get(&format!("/i/{id}"), &[]).await;
    assert!(
        page.text.contains(&format!("data-redirect=\"{back}\"")),
        "{}",
        page.text
    );
    assert!(page.text.contains(&format!("href=\"{back}\">Return to store</a>")));
}

async fn what_the_merchant_wrote_is_escaped(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, json!({"name": "<b>Tea</b> & \"co\""})).await;
    let id = invoice(
        &s,
        &shop,
        json!({
            "amount": "2100", "currency": "SATS",
            "metadata": {"itemDesc": "<script>alert(1)</script>", "orderId": "\"><img src=x onerror=alert(2)>"}
        }),
    )
    .await;
    let r = s.get(&format!("/i/{id}"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(r.text.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{}", r.text);
    assert!(r.text.contains("&lt;b&gt;Tea&lt;/b&gt; &amp; &quot;co&quot;"));
    assert!(r.text.contains("Order &quot;&gt;&lt;img src=x onerror=alert(2)&gt;"));
    for raw in ["<script>alert", "<b>Tea", "<img src=x"] {
        assert!(!r.text.contains(raw), "{raw} is in the page as markup");
    }
    assert!(r.headers["content-security-policy"]
        .to_str()
        .expect("ascii")
        .contains("script-src 'self'"));
    // The page's only script is ours.
    assert_eq!(r.text.matches("<script").count(), 1);
    assert!(r.text.contains("<script src=\"/assets/checkout.js\" defer></script>"));
    assert!(r.text.contains("<svg class=\"qr\""));
}

async fn on_chain_waits_for_confirmations_then_settles(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, json!({"name": "Tea shop", "speedPolicy": "MediumSpeed"})).await;
    let id = invoice(&s, &shop, json!({"amount": "2100", "currency": "SATS"})).await;
    let address = destination(&s, &shop, &id, "BTC-CHAIN").await;
    s.state.bank.dev_chain_deposit(&address, 2_100).await.expect("deposit");
    s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep");
    let (events, ended) = read_events(&s, &id, 1).await;
    assert_eq!(
        (&events[0]["status"], &events[0]["stage"]),
        (&json!("Processing"), &json!("processing"))
    );
    assert!(events[0]["html"]
        .as_str()
        .is_some_and(|h| h.contains("Waiting for confirmations")));
    assert!(!ended, "a processing invoice's stream stays open");
    s.state.bank.dev_chain_mine(1).await.expect("mine");
    s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep");
    let (events, ended) = read_events(&s, &id, 1).await;
    assert_eq!(events[0]["stage"], "settled");
    assert!(events[0]["html"]
        .as_str()
        .is_some_and(|h| h.contains("On-chain · 2,100 sats · confirmed")));
    assert!(ended);
}

/// Another issuer's card service on this machine (LUD-03): its tap answers a withdraw request
/// of at most `max_msat` (or refuses), and its callback keeps the invoice it is given (to be paid
/// from outside later, as that service would) and answers OK. Its address, and the invoices.
async fn other_issuer(max_msat: u64) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use axum::extract::{Query, State};
    use axum::routing::get;
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};
    type Kept = Arc<Mutex<Vec<String>>>;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let kept: Kept = Arc::new(Mutex::new(Vec::new()));
    let tap = move |Query(q): Query<HashMap<String, String>>| async move {
        if q.get("c").map(String::as_str) == Some("bad") {
            return axum::Json(json!({"status": "ERROR", "reason": "card not recognised"}));
        }
        axum::Json(json!({
            "tag": "withdrawRequest",
            "callback": format!("http://{addr}/cb"),
            "k1": "tap-k1",
            "minWithdrawable": 1_000,
            "maxWithdrawable": max_msat,
            "defaultDescription": "other card",
        }))
    };
    let callback = |State(kept): State<Kept>, Query(q): Query<HashMap<String, String>>| async move {
        match (q.get("k1").map(String::as_str), q.get("pr")) {
            (Some("tap-k1"), Some(pr)) => {
                kept.lock().expect("kept").push(pr.clone());
                axum::Json(json!({"status": "OK"}))
            }
            _ => axum::Json(json!({"status": "ERROR", "reason": "unknown k1"})),
        }
    };
    let app = axum::Router::new()
        .route("/ln", get(tap))
        .route("/cb", get(callback))
        .with_state(kept.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr.to_string(), kept)
}

async fn another_issuers_card_pays_through_its_service(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, json!({"name": "Tea shop"})).await;
    let id = invoice(&s, &shop, json!({"amount": "2100", "currency": "SATS"})).await;
    let bolt11 = destination(&s, &shop, &id, "BTC-LN").await;
    let pay = |link: String| {
        let s = &s;
        let id = id.clone();
        async move {
            s.post_json(&format!("/i/{id}/card"), None, &json!({ "lnurlw": link }))
                .await
        }
    };

    // A card that may spend less than is due, and one its service does not know: refused.
    let (small, kept) = other_issuer(2_000_000).await;
    let r = pay(format!("lnurlw://{small}/ln?p=AA&c=BB")).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("2000 sats"), "{}", r.text);
    let r = pay(format!("lnurlw://{small}/ln?p=AA&c=bad")).await;
    assert!(r.status == 422 && r.text.contains("card not recognised"), "{}", r.text);
    assert!(kept.lock().expect("kept").is_empty(), "no invoice was handed over");

    // A card that may: its service gets the invoice and pays it from outside.
    let (issuer, kept) = other_issuer(10_000_000).await;
    let r = pay(format!("lnurlw://{issuer}/ln?p=AA&c=BB")).await;
    assert_eq!((r.status, r.json()), (200, json!({"sent": true})), "{}", r.text);
    let handed = kept.lock().expect("kept").clone();
    assert_eq!(handed, std::slice::from_ref(&bolt11));
    s.pay_from_outside(&bolt11).await;
    s.state.merchant.refresh_invoice(&id).await.expect("refresh");
    let r = greenfield(&s, "GET", &format!("/api/v1/invoices/{id}"), &shop.auth, None).await;
    assert_eq!(r.json()["status"], "Settled", "{}", r.text);
}
