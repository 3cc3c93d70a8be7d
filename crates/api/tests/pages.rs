//! The pages flashd serves, in a real headless Chromium: the query consoles at `/graphql` and
//! `/admin/graphql` and the landing page load only this server's assets, list the schema, and
//! run queries with the token typed in. Screenshots go to `FLASH_SCREENSHOT_DIR` when it is
//! set (`docs/img/` holds the committed ones).

mod common;
#[path = "support/webdriver.rs"]
mod webdriver;

use common::*;
use webdriver::Browser;

/// Replaces the console's query and runs it; the answer panel's text once it shows `expect`.
async fn run(browser: &Browser, query: &str, expect: &str) -> String {
    let editor = browser.find("#query").await;
    browser.clear(&editor).await;
    browser.type_into(&editor, query).await;
    browser.click(&browser.find("#run").await).await;
    browser.wait_for_text("#result", |t| t.contains(expect)).await
}

#[tokio::test]
async fn query_consoles_work_offline_in_a_browser() {
    let Some(browser) = Browser::start().await else { return };
    let s = TestServer::start(Backend::Sqlite).await;
    let alice = s.member().await;

    // The app API's console: only this server's script and stylesheet, the schema listed
    // without a token, a query answered with one.
    browser.goto(&s.url("/graphql")).await;
    let fields = browser
        .wait_for_text("#fields", |t| t.contains("usernameAvailable"))
        .await;
    assert!(fields.contains("intraLedgerPaymentSend"), "{fields}");
    let resources = browser.loaded_resources().await;
    assert!(
        resources.iter().any(|r| r.ends_with("/assets/console.js")),
        "{resources:?}"
    );
    let base = s.url("");
    for r in &resources {
        assert!(r.starts_with(&base), "{r} is not from this server ({base})");
    }
    browser.type_into(&browser.find("#token").await, &alice.token).await;
    let answer = run(&browser, "{ me { id phone } }", &alice.user_id).await;
    assert!(answer.contains(&alice.phone), "{answer}");
    let status = browser.text(&browser.find("#status").await).await;
    assert!(status.starts_with("HTTP 200"), "{status}");
    browser.screenshot("console").await;

    // Bad JSON in the variables is said so, and nothing is sent.
    let variables = browser.find("#variables").await;
    browser.type_into(&variables, "{ not json").await;
    browser.click(&browser.find("#run").await).await;
    browser
        .wait_for_text("#status", |t| t.contains("Variables are not valid JSON"))
        .await;
    browser.clear(&variables).await;

    // The operator console: nothing without the key, everything with it.
    browser.goto(&s.url("/admin/graphql")).await;
    browser.wait_for_text("#fields", |t| t.contains("Enter a token")).await;
    run(&browser, "{ ledgerVerify { ok } }", "UNAUTHENTICATED").await;
    browser.type_into(&browser.find("#token").await, &s.admin_key).await;
    browser.click(&browser.find("#schema").await).await;
    browser.wait_for_text("#fields", |t| t.contains("ledgerVerify")).await;
    let answer = run(&browser, "{ ledgerVerify { ok journalsChecked } }", "journalsChecked").await;
    assert!(answer.contains("\"ok\": true"), "{answer}");
    browser.screenshot("operator-console").await;

    // The landing page links both.
    browser.goto(&s.url("/")).await;
    let body = browser.text(&browser.find("main").await).await;
    assert!(
        body.contains("GraphQL app API") && body.contains("Operator API"),
        "{body}"
    );
    for r in browser.loaded_resources().await {
        assert!(r.starts_with(&base), "{r} is not from this server");
    }
    browser.quit().await;
}
