//! The public payment-request page `/payment-requests/{id}` in a real headless Chromium laid
//! out as a 390-pixel-wide phone: Pay lands on the checkout page of the invoice it made, and
//! once that invoice is paid from outside the page shows the request completed. Over plain
//! HTTP on both backends: the 404 page for unknown and archived requests, escaping of what the
//! merchant wrote, a custom amount above what is due refused (422) with nothing written, and a
//! page made only of this server's assets. Screenshots go to `FLASH_SCREENSHOT_DIR` when it is
//! set (`docs/img/payment-request.png` is the committed one).

mod common;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use webdriver::Browser;

flash_store::on_both_backends!(
    unknown_and_archived_requests_are_a_404_page,
    what_the_merchant_wrote_is_escaped_and_only_our_assets_load,
    a_custom_amount_above_what_is_due_is_refused_and_nothing_is_written,
);

/// A phone's viewport, in CSS pixels.
const PHONE: (u32, u32) = (390, 844);

/// A store of a new member, with its owner's `Authorization` header.
struct Shop {
    auth: String,
    store: String,
}

async fn shop(s: &TestServer) -> Shop {
    let owner = s.member().await;
    let auth = format!("Bearer {}", owner.token);
    let r = s
        .greenfield(
            "POST",
            "/api/v1/stores",
            Some(&auth),
            Some(&json!({"name": "Tea shop"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let store = r.json()["id"].as_str().expect("store id").to_string();
    Shop { auth, store }
}

/// A Greenfield call of the shop's owner, asserting a 200; the JSON answer (`null` when empty).
async fn ok(s: &TestServer, shop: &Shop, method: &str, path: &str, body: Option<Value>) -> Value {
    let r = s.greenfield(method, path, Some(&shop.auth), body.as_ref(), &[]).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
    if r.text.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// Creates a payment request of the shop; its id.
async fn request(s: &TestServer, shop: &Shop, body: Value) -> String {
    let path = format!("/api/v1/stores/{}/payment-requests", shop.store);
    ok(s, shop, "POST", &path, Some(body)).await["id"]
        .as_str()
        .expect("request id")
        .to_string()
}

/// The shop's invoices.
async fn invoices(s: &TestServer, shop: &Shop) -> Vec<Value> {
    let path = format!("/api/v1/stores/{}/invoices", shop.store);
    ok(s, shop, "GET", &path, None)
        .await
        .as_array()
        .cloned()
        .expect("a list")
}

/// POSTs the page's form (`amount=…`, or nothing) without following the redirect.
async fn submit(s: &TestServer, id: &str, form: &str) -> Resp {
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let resp = client
        .post(s.url(&format!("/payment-requests/{id}/pay")))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form.to_string())
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let text = resp.text().await.expect("body");
    Resp { status, headers, text }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_lands_on_the_checkout_page_and_the_paid_request_shows_completed() {
    let Some(browser) = Browser::start().await else { return };
    let s = TestServer::start(Backend::Sqlite).await;
    let _watcher = s.watch_invoices();
    let shop = shop(&s).await;
    let id = request(
        &s,
        &shop,
        json!({"amount": "12.50", "currency": "USD", "title": "Garden design, March",
               "description": "Two visits and the planting plan.\nThank you for your custom!",
               "expiryDate": 4_102_444_800_i64}),
    )
    .await;
    browser.emulate_phone(PHONE.0, PHONE.1).await;
    let page = s.url(&format!("/payment-requests/{id}"));
    browser.goto(&page).await;
    assert_eq!(
        browser.text(&browser.find("#title").await).await,
        "Garden design, March"
    );
    assert_eq!(browser.text(&browser.find("#amount").await).await, "$12.50");
    assert_eq!(browser.text(&browser.find("#status").await).await, "Pending");
    assert_eq!(browser.text(&browser.find("#paid").await).await, "$0.00");
    assert_eq!(browser.text(&browser.find("#due").await).await, "$12.50");
    assert_eq!(
        browser.text(&browser.find("#expiry").await).await,
        "2100-01-01 00:00 UTC"
    );
    let summary = browser.text(&browser.find(".summary").await).await;
    assert!(summary.contains("TEA SHOP"), "{summary}");
    assert!(summary.contains("planting plan."), "{summary}");
    assert_eq!(browser.text(&browser.find("#pay").await).await, "Pay $12.50");
    browser.assert_fits_and_loads_only_from(&s.url("")).await;

    browser.click(&browser.find("#pay").await).await;
    let started = Instant::now();
    let invoice = loop {
        let path = browser.eval("return location.pathname;").await;
        if let Some(id) = path.as_str().and_then(|p| p.strip_prefix("/i/")) {
            break id.to_string();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "still on {path}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    browser
        .wait_for_text("#state", |t| t.starts_with("Waiting for payment"))
        .await;
    assert_eq!(browser.text(&browser.find("#amount").await).await, "$12.50");
    let made = ok(&s, &shop, "GET", &format!("/api/v1/invoices/{invoice}"), None).await;
    assert_eq!(made["metadata"]["paymentRequestId"], json!(id));
    assert_eq!(made["currency"], "USD");
    assert_eq!(made["amount"].as_str().and_then(|a| a.parse::<f64>().ok()), Some(12.5));

    // Back on the request: the invoice is listed, and Pay again answers the same one.
    browser.goto(&page).await;
    let listed = browser.text(&browser.find("#invoices").await).await;
    assert!(listed.contains("$12.50") && listed.contains("New"), "{listed}");
    browser.click(&browser.find("#pay").await).await;
    browser
        .wait_for_text("#state", |t| t.starts_with("Waiting for payment"))
        .await;
    let again = browser.eval("return location.pathname;").await;
    assert_eq!(again, json!(format!("/i/{invoice}")), "the pending invoice is reused");
    assert_eq!(invoices(&s, &shop).await.len(), 1);

    // Paid from outside: after a reload the request shows completed, with no Pay button.
    let methods = ok(
        &s,
        &shop,
        "GET",
        &format!("/api/v1/invoices/{invoice}/payment-methods"),
        None,
    )
    .await;
    let bolt11 = methods
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["paymentMethodId"] == "BTC-LN"))
        .and_then(|m| m["destination"].as_str())
        .expect("a BOLT11")
        .to_string();
    s.pay_from_outside(&bolt11).await;
    browser.wait_for_text("#state", |t| t.starts_with("Paid")).await;
    browser.goto(&page).await;
    let started = Instant::now();
    while browser.text(&browser.find("#status").await).await != "Completed" {
        assert!(started.elapsed() < Duration::from_secs(20), "never completed");
        tokio::time::sleep(Duration::from_millis(200)).await;
        browser.goto(&page).await;
    }
    assert_eq!(browser.text(&browser.find("#paid").await).await, "$12.50");
    assert_eq!(browser.text(&browser.find("#due").await).await, "$0.00");
    assert!(browser
        .text(&browser.find("#closed").await)
        .await
        .contains("Paid in full"));
    assert_eq!(
        browser.eval("return document.getElementById('pay');").await,
        Value::Null
    );
    let listed = browser.text(&browser.find("#invoices").await).await;
    assert!(listed.contains("Settled"), "{listed}");
    browser.assert_fits_and_loads_only_from(&s.url("")).await;
    browser.screenshot("payment-request-paid").await;

    // A request taking custom amounts: the field holds what is due; the screenshot of record.
    let custom = request(
        &s,
        &shop,
        json!({"amount": "40", "currency": "USD", "title": "Piano lessons, spring term",
               "description": "Ten lessons of 45 minutes. Pay in one go or lesson by lesson.",
               "allowCustomPaymentAmounts": true, "expiryDate": 4_102_444_800_i64}),
    )
    .await;
    browser.goto(&s.url(&format!("/payment-requests/{custom}"))).await;
    let field = browser
        .eval("const f = document.getElementById('pay-amount'); return [f.value, f.max, f.step];")
        .await;
    assert_eq!(field, json!(["40.00", "40.00", "0.01"]));
    assert_eq!(browser.text(&browser.find("#pay").await).await, "Pay");
    browser.assert_fits_and_loads_only_from(&s.url("")).await;
    browser.screenshot("payment-request").await;
    browser.prefer_color_scheme("dark").await;
    let colors = browser
        .eval("return [getComputedStyle(document.body).backgroundColor, getComputedStyle(document.body).color];")
        .await;
    assert_eq!(colors, json!(["rgb(20, 23, 28)", "rgb(230, 233, 239)"]));
    browser.screenshot("payment-request-dark").await;
    browser.prefer_color_scheme("light").await;
    let amount = browser.find("#pay-amount").await;
    browser.clear(&amount).await;
    browser.type_into(&amount, "15").await;
    browser.click(&browser.find("#pay").await).await;
    browser
        .wait_for_text("#state", |t| t.starts_with("Waiting for payment"))
        .await;
    assert_eq!(browser.text(&browser.find("#amount").await).await, "$15.00");
    browser.quit().await;
}

async fn unknown_and_archived_requests_are_a_404_page(backend: Backend) {
    let s = TestServer::start(backend).await;
    for path in [
        "/payment-requests/NoSuchRequest",
        "/payment-requests/a%3Cb",
        "/payment-requests/NoSuchRequest/pay",
    ] {
        let r = if path.ends_with("/pay") {
            submit(&s, "NoSuchRequest", "").await
        } else {
            s.get(path, &[]).await
        };
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
        assert!(r.text.contains("Payment request not found"), "{}", r.text);
    }
    let long = format!("/payment-requests/{}", "x".repeat(500));
    assert_eq!(s.get(&long, &[]).await.status, 404);
    let landing = s.get("/", &[("accept", "text/html")]).await;
    assert!(
        landing
            .text
            .contains("Payment requests: <code>/payment-requests/{paymentRequestId}</code>"),
        "{}",
        landing.text
    );

    let shop = shop(&s).await;
    let id = request(
        &s,
        &shop,
        json!({"amount": "2100", "currency": "SATS", "title": "Rent"}),
    )
    .await;
    let page = format!("/payment-requests/{id}");
    let r = s.get(&page, &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert!(r.text.contains("2,100 sats"), "{}", r.text);
    assert!(r.text.contains("No payments yet."), "{}", r.text);
    // The form pays what is due: a 303 to the new invoice's checkout page.
    let r = submit(&s, &id, "").await;
    assert_eq!(r.status, 303, "{}", r.text);
    let location = r.headers["location"].to_str().expect("ascii").to_string();
    let made = invoices(&s, &shop).await;
    assert_eq!(made.len(), 1);
    assert_eq!(location, format!("/i/{}", made[0]["id"].as_str().expect("id")));
    assert_eq!(made[0]["amount"], "2100");
    // An amount on a request that takes none is refused.
    let r = submit(&s, &id, "amount=100").await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert!(r.text.contains("does not allow custom payment amounts"), "{}", r.text);

    ok(&s, &shop, "DELETE", &format!("/api/v1/payment-requests/{id}"), None).await;
    let r = s.get(&page, &[]).await;
    assert_eq!(r.status, 404, "archived");
    assert!(r.text.contains("Payment request not found"), "{}", r.text);
    assert_eq!(submit(&s, &id, "").await.status, 404, "archived");
    assert_eq!(invoices(&s, &shop).await.len(), 1);

    // Expired: the page says why and has no Pay button; the form is refused.
    let expired = request(
        &s,
        &shop,
        json!({"amount": "10", "currency": "SATS", "title": "Old", "expiryDate": 1_000_000}),
    )
    .await;
    let r = s.get(&format!("/payment-requests/{expired}"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert!(r.text.contains(">Expired<"), "{}", r.text);
    assert!(r.text.contains("has expired"), "{}", r.text);
    assert!(!r.text.contains("<form"), "{}", r.text);
    assert_eq!(submit(&s, &expired, "").await.status, 409);
}

async fn what_the_merchant_wrote_is_escaped_and_only_our_assets_load(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s).await;
    let id = request(
        &s,
        &shop,
        json!({"amount": "5", "currency": "EUR", "title": "<img src=x onerror=alert(1)>",
               "description": "<script>alert(2)</script> & <b>\"bold\"</b>"}),
    )
    .await;
    let r = s.get(&format!("/payment-requests/{id}"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let csp = r.headers["content-security-policy"].to_str().expect("ascii");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    for escaped in [
        "&lt;img src=x onerror=alert(1)&gt;",
        "&lt;script&gt;alert(2)&lt;/script&gt; &amp; &lt;b&gt;&quot;bold&quot;&lt;/b&gt;",
        "€5.00",
    ] {
        assert!(r.text.contains(escaped), "{escaped} is not in {}", r.text);
    }
    for raw in ["<img src=x", "<script", "<b>"] {
        assert!(!r.text.contains(raw), "{raw} is in the page");
    }
    // Only this server's stylesheet; the form posts here.
    let sources: Vec<&str> = r
        .text
        .split(" src=\"")
        .skip(1)
        .chain(r.text.split(" href=\"").skip(1))
        .chain(r.text.split(" action=\"").skip(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(sources.contains(&"/assets/flash.css"), "{sources:?}");
    assert!(
        sources.contains(&format!("/payment-requests/{id}/pay").as_str()),
        "{sources:?}"
    );
    for source in &sources {
        assert!(source.starts_with('/'), "{source} is loaded from elsewhere");
    }
}

async fn a_custom_amount_above_what_is_due_is_refused_and_nothing_is_written(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s).await;
    let id = request(
        &s,
        &shop,
        json!({"amount": "40", "currency": "USD", "title": "Lessons", "allowCustomPaymentAmounts": true}),
    )
    .await;
    let path = format!("/api/v1/payment-requests/{id}");
    let before = ok(&s, &shop, "GET", &path, None).await;
    for (form, why) in [
        ("amount=40.01", "more than what is still due (40.00 USD)"),
        ("amount=1000", "more than what is still due"),
        ("amount=0", "positive decimal"),
        ("amount=1.001", "positive decimal"),
        ("amount=ten", "positive decimal"),
        ("amount=%3Cscript%3E", "positive decimal"),
    ] {
        let r = submit(&s, &id, form).await;
        assert_eq!(r.status, 422, "{form}: {}", r.text);
        assert_eq!(r.headers["content-type"], "text/html; charset=utf-8");
        assert!(r.text.contains(why), "{form}: {}", r.text);
        assert!(r.text.contains("id=\"error\""), "{form}: {}", r.text);
        assert!(!r.text.contains("<script>"), "{form}: typed text is escaped");
    }
    // What was typed is shown again.
    let r = submit(&s, &id, "amount=99").await;
    assert!(r.text.contains("value=\"99\""), "{}", r.text);
    assert_eq!(invoices(&s, &shop).await, Vec::<Value>::new(), "no invoice made");
    assert_eq!(
        ok(&s, &shop, "GET", &path, None).await,
        before,
        "the request is unchanged"
    );
    let page = s.get(&format!("/payment-requests/{id}"), &[]).await;
    assert!(page.text.contains("No payments yet."), "{}", page.text);

    // A part is taken, and the rest is what is due next.
    let r = submit(&s, &id, "amount=15.5").await;
    assert_eq!(r.status, 303, "{}", r.text);
    let made = invoices(&s, &shop).await;
    assert_eq!(made.len(), 1);
    assert_eq!(
        made[0]["amount"].as_str().and_then(|a| a.parse::<f64>().ok()),
        Some(15.5)
    );
    let r = submit(&s, &id, "amount=40").await;
    assert_eq!(r.status, 303, "unpaid invoices do not reduce what is due: {}", r.text);
}
