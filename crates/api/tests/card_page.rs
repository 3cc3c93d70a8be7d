//! A Flash Card's balance page (`/boltcard/balance?p=…&c=…` asked for by a browser) in a real
//! headless Chromium laid out as a 390-pixel-wide phone: the card's name, balance, limits, what
//! is left of the 24 hours and the top-up QR code, from this server's assets only; the same tap
//! again, or a bad one, is a page saying to tap again. Over plain HTTP on both backends: JSON
//! for apps and the page for browsers from one URL, a pull payment card's page (what its pull
//! payment has left, no top-up), and escaping. Screenshots go to `FLASH_SCREENSHOT_DIR` when it
//! is set (`docs/img/card-balance.png` is the committed one).

mod common;
#[path = "support/webdriver.rs"]
mod webdriver;

use common::*;
use flash_merchant::boltcard::testing::SimulatedCard;
use serde_json::{json, Value};
use webdriver::Browser;

flash_store::on_both_backends!(
    browsers_get_the_page_and_apps_json,
    a_pull_payment_cards_page_shows_what_the_pull_payment_has_left,
);

/// A phone's viewport, in CSS pixels.
const PHONE: (u32, u32) = (390, 844);
/// What a browser asks for.
const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
/// The tests' card UID.
const UID: [u8; 7] = [0x04, 0x22, 0x6c, 0x6a, 0x92, 0x69, 0x80];

/// The balance path for the next tap of `card`.
fn balance_path(card: &mut SimulatedCard) -> String {
    let (p, c) = card.tap();
    format!("/boltcard/balance?p={p}&c={c}")
}

/// A member with a funded wallet, whose card has spent 2,100 of its day.
async fn card_with_a_payment(s: &TestServer) -> SimulatedCard {
    let (owner, shop) = (s.member().await, s.member().await);
    s.fund(&owner.wallet_id, 50_000).await;
    let (_, mut card, _, _) = programmed_card(s, &owner, 10_000, 25_000, UID).await;
    let offer = card_tap(s, &mut card).await.json();
    let pr = wallet_invoice(s, &shop, 2_100).await;
    let k1 = offer["k1"].as_str().expect("k1");
    assert_eq!(card_withdraw(s, k1, &pr).await.json()["status"], "OK");
    card
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_shows_the_card_once_per_tap() {
    let Some(browser) = Browser::start().await else { return };
    let s = TestServer::start(Backend::Sqlite).await;
    let mut card = card_with_a_payment(&s).await;
    browser.emulate_phone(PHONE.0, PHONE.1).await;
    let page = s.url(&balance_path(&mut card));
    browser.goto(&page).await;
    let text = |css: &'static str| {
        let browser = &browser;
        async move { browser.text(&browser.find(css).await).await }
    };
    assert_eq!(text("#name").await, "Coffee card");
    assert_eq!(text("#balance").await, "47,900 sats");
    assert_eq!(text("#tap-limit").await, "10,000 sats");
    assert_eq!(text("#day-limit").await, "25,000 sats");
    assert_eq!(text("#day-left").await, "22,900 sats");
    let lnurl = text("#pay-link").await;
    assert!(lnurl.starts_with("LNURL1"), "{lnurl}");
    let qr = browser
        .eval("return document.querySelector('#top-up svg.qr').getBoundingClientRect().width;")
        .await;
    assert!(qr.as_f64().is_some_and(|w| w > 150.0), "the QR code is shown: {qr}");
    let inside = browser
        .eval(
            "const q = document.querySelector('#top-up svg.qr').getBoundingClientRect(); \
             const c = document.querySelector('#top-up').getBoundingClientRect(); \
             return q.left >= c.left && q.right <= c.right;",
        )
        .await;
    assert_eq!(inside, json!(true), "the QR code is inside its card");
    browser.assert_fits_and_loads_only_from(&s.url("")).await;
    browser.screenshot("card-balance").await;

    // The same tap again (a reload, or someone else with the link): nothing shown.
    browser.goto(&page).await;
    assert_eq!(text("h2").await, "Tap the card again");
    browser.goto(&s.url("/boltcard/balance?p=zz&c=00")).await;
    assert_eq!(text("h2").await, "This tap did not read well");
    browser.assert_fits_and_loads_only_from(&s.url("")).await;
    browser.quit().await;
}

async fn browsers_get_the_page_and_apps_json(backend: Backend) {
    let s = TestServer::start(backend).await;
    let mut card = card_with_a_payment(&s).await;
    let page = s.get(&balance_path(&mut card), &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    let header = |r: &Resp, name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert!(header(&page, "content-type").starts_with("text/html"));
    assert!(header(&page, "content-security-policy").contains("default-src 'none'"));
    assert_eq!(header(&page, "cache-control"), "no-store");
    assert!(page.text.contains("47,900 sats"), "{}", page.text);
    // An app (JSON, or anything but HTML) gets the JSON answer from the same URL.
    for accept in ["application/json", "*/*"] {
        let r = s.get(&balance_path(&mut card), &[("accept", accept)]).await;
        assert_eq!((r.status, &r.json()["balance"]), (200, &json!(47_900)), "{}", r.text);
    }
    // A replayed tap: the page says to tap again, with nothing of the card.
    let (p, c) = card.tap_with_counter(card.counter);
    let replayed = s
        .get(&format!("/boltcard/balance?p={p}&c={c}"), &[("accept", BROWSER_ACCEPT)])
        .await;
    assert_eq!(replayed.status, 400);
    assert!(replayed.text.contains("Tap the card again"), "{}", replayed.text);
    assert!(!replayed.text.contains("Coffee card"));
    let missing = s.get("/boltcard/balance", &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(missing.status, 400);
    assert!(missing.text.contains("did not read well"), "{}", missing.text);
}

async fn a_pull_payment_cards_page_shows_what_the_pull_payment_has_left(backend: Backend) {
    let s = TestServer::start(backend).await;
    let owner = s.member().await;
    s.fund(&owner.wallet_id, 20_000).await;
    let auth = format!("Bearer {}", owner.token);
    let call = |method: &'static str, path: String, body: Value| {
        let (s, auth) = (&s, auth.clone());
        async move {
            let r = s.greenfield(method, &path, Some(&auth), Some(&body), &[]).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            r.json()
        }
    };
    let store = call("POST", "/api/v1/stores".into(), json!({"name": "Tea shop"})).await["id"]
        .as_str()
        .expect("store")
        .to_string();
    let pp = call(
        "POST",
        format!("/api/v1/stores/{store}/pull-payments"),
        json!({"name": "Tom's <b>gift</b>", "amount": "6000", "currency": "SATS", "autoApproveClaims": true}),
    )
    .await["id"]
        .as_str()
        .expect("pull payment")
        .to_string();
    let keys = call(
        "POST",
        format!("/api/v1/pull-payments/{pp}/boltcards"),
        json!({"UID": card_uid_hex(&UID), "tapLimit": 1_000, "dayLimit": 3_000}),
    )
    .await;
    let mut card = SimulatedCard {
        uid: UID,
        k1: card_key(&keys["K1"]),
        k2: card_key(&keys["K2"]),
        counter: 0,
    };
    let page = s.get(&balance_path(&mut card), &[("accept", BROWSER_ACCEPT)]).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(
        page.text.contains("Tom&#39;s &lt;b&gt;gift&lt;/b&gt;"),
        "escaped: {}",
        page.text
    );
    assert!(!page.text.contains("<b>gift"), "{}", page.text);
    assert!(page.text.contains("6,000 sats"), "{}", page.text);
    assert!(page.text.contains("spends from a pull payment"), "{}", page.text);
    assert!(!page.text.contains("LNURL1"), "no top-up link");
}
