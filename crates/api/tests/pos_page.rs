//! The point-of-sale page `/apps/{appId}/pos` in a real headless Chromium laid out as a
//! 390-pixel-wide phone: the keypad with a tip charges and lands on the invoice's checkout
//! page; the cart sends item ids and counts, the server prices them (a price changed after
//! the page loaded is the one charged) and a refusal is shown. Over plain HTTP on both
//! backends: the 404 page for unknown, archived and deleted apps, escaping of what the
//! operator wrote, and a page made only of this server's assets (and https item pictures).
//! Screenshots go to `FLASH_SCREENSHOT_DIR` when it is set (`docs/img/pos-*.png` are the
//! committed ones).

mod common;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use webdriver::Browser;

flash_store::on_both_backends!(
    unknown_archived_and_deleted_apps_are_a_404_page,
    what_the_operator_wrote_is_escaped_and_only_our_assets_load,
);

/// A phone's viewport, in CSS pixels.
const PHONE: (u32, u32) = (390, 844);

const ITEMS: &str = r#"[{"id": "tea", "title": "Green tea", "description": "Sencha, a pot for one", "price": "1.50"},
    {"id": "cake", "title": "Cheesecake", "price": "3.00", "inventory": 5},
    {"id": "scone", "title": "Scone", "price": "2.25", "inventory": 0},
    {"id": "secret", "title": "Off the menu", "price": "9", "disabled": true},
    {"id": "tip-jar", "title": "Tip jar", "priceType": "Topup"}]"#;

async fn call(s: &TestServer, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> Resp {
    s.greenfield(method, path, auth, body, &[]).await
}

/// A point of sale of a new member's store.
struct Pos {
    auth: String,
    store: String,
    app: String,
}

async fn pos(s: &TestServer, settings: Value) -> Pos {
    let owner = s.member().await;
    let auth = format!("Bearer {}", owner.token);
    let r = call(s, "POST", "/api/v1/stores", Some(&auth), Some(&json!({"name": "Cafe"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let store = r.json()["id"].as_str().expect("store").to_string();
    let path = format!("/api/v1/stores/{store}/apps/pos");
    let r = call(s, "POST", &path, Some(&auth), Some(&settings)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let app = r.json()["id"].as_str().expect("app").to_string();
    Pos { auth, store, app }
}

async fn update(s: &TestServer, pos: &Pos, body: Value) {
    let path = format!("/api/v1/apps/pos/{}", pos.app);
    let r = call(s, "PUT", &path, Some(&pos.auth), Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

/// The invoice over Greenfield.
async fn invoice(s: &TestServer, pos: &Pos, id: &str) -> Value {
    let path = format!("/api/v1/stores/{}/invoices/{id}", pos.store);
    let r = call(s, "GET", &path, Some(&pos.auth), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

async fn click(browser: &Browser, css: &str) {
    browser.click(&browser.find(css).await).await;
}

/// Waits until the browser is on a checkout page; the invoice's id.
async fn checkout_reached(browser: &Browser) -> String {
    let started = Instant::now();
    loop {
        let path = browser.eval("return location.pathname;").await;
        if let Some(id) = path.as_str().and_then(|p| p.strip_prefix("/i/")) {
            browser
                .wait_for_text("#state", |t| t.starts_with("Waiting for payment"))
                .await;
            return id.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still on {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keypad_charges_with_a_tip_and_lands_on_the_checkout_page() {
    let Some(browser) = Browser::start().await else { return };
    let s = TestServer::start(Backend::Sqlite).await;
    let pos = pos(
        &s,
        json!({"appName": "Counter", "title": "Corner café", "description": "Coffee, tea and cake.",
               "currency": "SATS", "enableTips": true, "customTipPercentages": [10, 15, 20]}),
    )
    .await;
    browser.emulate_phone(PHONE.0, PHONE.1).await;
    browser.goto(&s.url(&format!("/apps/{}/pos", pos.app))).await;
    assert_eq!(browser.text(&browser.find("#amount").await).await, "0 sats");
    assert_eq!(
        browser.eval("return document.querySelector('[data-key=\".\"]');").await,
        Value::Null,
        "no decimal point in sats"
    );
    for key in ["2", "1", "0", "0"] {
        click(&browser, &format!("[data-key='{key}']")).await;
    }
    assert_eq!(browser.text(&browser.find("#amount").await).await, "2,100 sats");
    click(&browser, "[data-tip='15']").await;
    // 15 % of 2,100 is 315.
    assert_eq!(browser.text(&browser.find("#total").await).await, "2,415 sats");
    assert_eq!(browser.text(&browser.find("#tip-amount").await).await, "315 sats");
    browser.assert_fits_and_loads_only_from(&s.url("")).await;
    browser.screenshot("pos-keypad").await;

    click(&browser, "#pay").await;
    let id = checkout_reached(&browser).await;
    assert_eq!(browser.text(&browser.find("#amount").await).await, "2,415 sats");
    let qr = browser
        .eval("return document.querySelectorAll('#pay svg.qr').length;")
        .await;
    assert!(qr.as_u64().is_some_and(|n| n >= 1), "a QR code: {qr}");
    let inv = invoice(&s, &pos, &id).await;
    assert_eq!(inv["amount"], "2415");
    assert_eq!(inv["currency"], "SATS");
    let pos_data = &inv["metadata"]["posData"];
    assert_eq!(pos_data["customAmount"], "2100", "{inv}");
    assert_eq!(pos_data["tipPercentage"], 15);
    assert_eq!(pos_data["tip"], "315");
    assert_eq!(pos_data["total"], "2415");

    // A dollar keypad takes two decimals, no more; its items add to the amount.
    let usd = self::pos(
        &s,
        json!({"appName": "Dollars", "currency": "USD", "showItems": true, "template": ITEMS}),
    )
    .await;
    browser.goto(&s.url(&format!("/apps/{}/pos", usd.app))).await;
    for key in ["1", "2", ".", "5", "0", "9"] {
        click(&browser, &format!("[data-key='{key}']")).await;
    }
    assert_eq!(browser.text(&browser.find("#amount").await).await, "$12.50");
    click(&browser, "[data-key='back']").await;
    assert_eq!(browser.text(&browser.find("#amount").await).await, "$12.5");
    assert_eq!(browser.text(&browser.find("#total").await).await, "$12.50");
    click(&browser, ".pos-item[data-id='tea'] [data-step='1']").await;
    assert_eq!(browser.text(&browser.find("#amount").await).await, "$14.00");
    assert_eq!(browser.text(&browser.find("#total").await).await, "$14.00");
    click(&browser, "#pay").await;
    let id = checkout_reached(&browser).await;
    assert_eq!(browser.text(&browser.find("#amount").await).await, "$14.00");
    let inv = invoice(&s, &usd, &id).await;
    // Greenfield writes decimals without trailing zeros.
    assert_eq!(inv["amount"], "14");
    assert_eq!(inv["metadata"]["posData"]["customAmount"], "12.50", "{inv}");
    assert_eq!(inv["metadata"]["posData"]["cart"][0]["id"], "tea", "{inv}");
    assert_eq!(inv["metadata"]["posData"]["cart"][0]["count"], 1, "{inv}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cart_sends_ids_and_counts_and_the_server_prices_them() {
    let Some(browser) = Browser::start().await else { return };
    let s = TestServer::start(Backend::Sqlite).await;
    let pos = pos(
        &s,
        json!({"appName": "Counter", "title": "Corner café", "currency": "USD", "defaultView": "Cart",
               "showCustomAmount": false, "template": ITEMS}),
    )
    .await;
    browser.emulate_phone(PHONE.0, PHONE.1).await;
    browser.goto(&s.url(&format!("/apps/{}/pos", pos.app))).await;
    let shown = browser
        .eval("return Array.from(document.querySelectorAll('.pos-item')).map(i => i.dataset.id);")
        .await;
    assert_eq!(
        shown,
        json!(["tea", "cake", "scone", "tip-jar"]),
        "the disabled item is hidden"
    );
    let scone = browser.text(&browser.find(".pos-item[data-id='scone']").await).await;
    assert!(scone.contains("Sold out"), "{scone}");
    assert_eq!(
        browser.eval("return document.getElementById('custom');").await,
        Value::Null
    );
    for item in ["tea", "tea", "cake"] {
        click(&browser, &format!(".pos-item[data-id='{item}'] [data-step='1']")).await;
    }
    let tea = browser
        .text(&browser.find(".pos-item[data-id='tea'] .count").await)
        .await;
    assert_eq!(tea, "2");
    assert_eq!(browser.text(&browser.find("#total").await).await, "$6.00");
    // A top-up item is priced by the buyer.
    click(&browser, ".pos-item[data-id='tip-jar'] [data-step='1']").await;
    let jar = browser.find(".pos-item[data-id='tip-jar'] .pos-item-price").await;
    browser.type_into(&jar, "4").await;
    assert_eq!(browser.text(&browser.find("#total").await).await, "$10.00");
    browser.assert_fits_and_loads_only_from(&s.url("")).await;
    browser.screenshot("pos-cart").await;
    // Dark mode: the same page, light text on a dark background.
    browser.prefer_color_scheme("dark").await;
    let colors = browser
        .eval("return [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color];")
        .await;
    assert_eq!(colors, json!(["rgb(20, 23, 28)", "rgb(230, 233, 239)"]));
    browser.screenshot("pos-cart-dark").await;
    browser.prefer_color_scheme("light").await;

    // The cake sold out after the page loaded: the server refuses, the page says why.
    let sold_out = ITEMS.replace(r#""inventory": 5"#, r#""inventory": 0"#);
    update(&s, &pos, json!({"template": sold_out})).await;
    click(&browser, "#pay").await;
    let error = browser.wait_for_text("#error", |t| !t.is_empty()).await;
    assert!(error.contains("not enough of this item left"), "{error}");

    // Back in stock at a new tea price: the invoice has the server's prices, not the page's.
    let dearer = ITEMS.replace(r#""price": "1.50""#, r#""price": "2.00""#);
    update(&s, &pos, json!({"template": dearer})).await;
    click(&browser, "#pay").await;
    let id = checkout_reached(&browser).await;
    assert_eq!(browser.text(&browser.find("#amount").await).await, "$11.00");
    let inv = invoice(&s, &pos, &id).await;
    assert_eq!(inv["amount"], "11");
    let cart = &inv["metadata"]["posData"]["cart"];
    assert_eq!(
        cart,
        &json!([
            {"id": "tea", "title": "Green tea", "count": 2, "price": "2.00"},
            {"id": "cake", "title": "Cheesecake", "count": 1, "price": "3.00"},
            {"id": "tip-jar", "title": "Tip jar", "count": 1, "price": "4.00"}
        ]),
        "{inv}"
    );
    browser.quit().await;
}

async fn unknown_archived_and_deleted_apps_are_a_404_page(backend: Backend) {
    let s = TestServer::start(backend).await;
    for path in ["/apps/NoSuchApp/pos", "/apps/a%3Cb/pos"] {
        let r = s.get(path, &[]).await;
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
        assert!(r.text.contains("Point of sale not found"), "{}", r.text);
    }
    assert_eq!(s.get(&format!("/apps/{}/pos", "x".repeat(500)), &[]).await.status, 404);
    let landing = s.get("/", &[("accept", "text/html")]).await;
    assert!(
        landing.text.contains("Point of sale: <code>/apps/{appId}/pos</code>"),
        "{}",
        landing.text
    );

    let pos = pos(&s, json!({"appName": "Counter", "currency": "SATS"})).await;
    let page = format!("/apps/{}/pos", pos.app);
    assert_eq!(s.get(&page, &[]).await.status, 200);
    // The page and its order endpoint share the path.
    let r = call(&s, "POST", &page, None, Some(&json!({"amount": "100"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.json()["checkoutLink"]
        .as_str()
        .is_some_and(|l| l.ends_with(&format!("/i/{}", r.json()["invoiceId"].as_str().unwrap_or("?")))));
    update(&s, &pos, json!({"archived": true})).await;
    assert_eq!(s.get(&page, &[]).await.status, 404, "archived");
    update(&s, &pos, json!({"archived": false})).await;
    assert_eq!(s.get(&page, &[]).await.status, 200);
    let r = call(
        &s,
        "DELETE",
        &format!("/api/v1/apps/{}", pos.app),
        Some(&pos.auth),
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.get(&page, &[]).await.status, 404, "deleted");
}

async fn what_the_operator_wrote_is_escaped_and_only_our_assets_load(backend: Backend) {
    let s = TestServer::start(backend).await;
    let evil = "<img src=x onerror=alert(1)>";
    let items = json!([
        {"id": "tea", "title": evil, "description": "<script>alert(2)</script>", "price": "1",
         "image": "https://img.example/tea.png"},
        {"id": "\"><b>cake", "title": "Cake", "price": "2", "image": "javascript:alert(3)"},
        {"id": "plain", "title": "Plain", "price": "3", "image": "http://img.example/plain.png"}
    ]);
    let pos = pos(
        &s,
        json!({"appName": "Counter", "title": evil, "description": "<b>bold</b> & \"quoted\"",
               "currency": "EUR", "defaultView": "Static", "enableTips": true, "showDiscount": true,
               "tipText": "<i>tip?</i>",
               "htmlMetaTags": "<meta http-equiv=\"refresh\" content=\"0;url=https://evil.example\">",
               "template": items.to_string()}),
    )
    .await;
    let r = s.get(&format!("/apps/{}/pos", pos.app), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    let csp = r.headers["content-security-policy"].to_str().expect("ascii");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("img-src 'self' data: https:;"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    for escaped in [
        "&lt;img src=x onerror=alert(1)&gt;",
        "&lt;script&gt;alert(2)&lt;/script&gt;",
        "&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;",
        "data-id=\"&quot;&gt;&lt;b&gt;cake\"",
        "&lt;i&gt;tip?&lt;/i&gt;",
        "€1.00",
    ] {
        assert!(r.text.contains(escaped), "{escaped} is not in {}", r.text);
    }
    for raw in [
        "<img src=x",
        "<script>alert",
        "<b>",
        "<i>",
        "http-equiv",
        "javascript:",
        "evil.example",
    ] {
        assert!(!r.text.contains(raw), "{raw} is in the page");
    }
    // Only this server's script and stylesheet, and the one https picture.
    assert_eq!(r.text.matches("<script").count(), 1);
    assert!(r.text.contains("<script src=\"/assets/pos.js\" defer></script>"));
    let sources: Vec<&str> = r
        .text
        .split(" src=\"")
        .skip(1)
        .chain(r.text.split(" href=\"").skip(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    for source in &sources {
        assert!(
            source.starts_with('/') || *source == "https://img.example/tea.png",
            "{source} is loaded from elsewhere"
        );
    }
    assert!(sources.contains(&"https://img.example/tea.png"), "{sources:?}");
    assert!(!r.text.contains("plain.png"), "no picture over plain http");
    let script = s.get("/assets/pos.js", &[]).await;
    assert_eq!(script.status, 200);
    assert_eq!(script.headers["content-type"], "text/javascript; charset=utf-8");
}
