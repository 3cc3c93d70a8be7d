//! A Greenfield client nobody on this project wrote, unchanged, against a real flashd:
//! btcpay-python-sdk (PyPI) creates a store invoice, reads it back and lists it; a webhook
//! registered through its client receives the invoice's events, each verified with BTCPay's
//! documented signature check (`BTCPay-Sig: sha256=HMAC-SHA256(secret, body)`), once the
//! invoice is paid from outside.
//!
//! `FLASH_TEST_BTCPAY_SDK` is a Python with `btcpay-python-sdk` installed (`.ci/run` makes one in
//! `~/.cache/flash-btcpay-sdk`); without it the test says so and skips (fails under CI).

mod common;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};

const PAY_FROM_OUTSIDE: &str =
    "mutation($r: String!) { devLightningPayInvoice(input: {paymentRequest: $r}) { errors { code message } } }";

/// The Python with the SDK, or `None` after saying why (a failure under CI).
fn python() -> Option<PathBuf> {
    let var = "FLASH_TEST_BTCPAY_SDK";
    match std::env::var_os(var).map(PathBuf::from) {
        Some(path) if path.exists() => Some(path),
        found => {
            let why = match found {
                Some(p) => format!("{var}={} does not exist", p.display()),
                None => format!("{var} is not set (a python with `pip install btcpay-python-sdk`)"),
            };
            assert!(
                std::env::var_os("CI").is_none(),
                "the BTCPay SDK is needed under CI: {why}"
            );
            println!("skipped: {why}");
            None
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn btcpay_python_sdk_makes_an_invoice_and_its_webhooks_verify() {
    let Some(python) = python() else {
        return;
    };
    let dir = TempDir::new("greenfield-sdk");
    let server = Flashd::start(&Launch::new(&dir.path().join("data"), None)).await;
    let admin = server.admin_key.clone().expect("admin key");
    let api = Api::new(&server.base);
    let owner = api.device_user(&unique("sdk-merchant")).await;
    let (status, key) = api
        .post(
            "/api/v1/api-keys",
            Some(&owner.token),
            &json!({"label": "sdk", "permissions": ["unrestricted"]}),
        )
        .await
        .expect("key");
    assert_eq!(status, 200, "{key}");
    let key = key["apiKey"].as_str().expect("apiKey").to_string();
    let (status, store) = api
        .post("/api/v1/stores", Some(&owner.token), &json!({"name": "SDK shop"}))
        .await
        .expect("store");
    assert_eq!(status, 200, "{store}");
    let store = store["id"].as_str().expect("store id").to_string();

    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/btcpay_sdk_check.py");
    let mut child = tokio::process::Command::new(&python)
        .arg(&script)
        .env("BTCPAY_URL", &server.base)
        .env("BTCPAY_KEY", &key)
        .env("BTCPAY_STORE", &store)
        .env("NO_PROXY", "127.0.0.1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("run python");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first: Value = match tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await {
        Ok(Ok(Some(line))) => serde_json::from_str(&line).expect("json line"),
        other => {
            let out = child.wait_with_output().await.expect("script output");
            panic!(
                "the SDK script said nothing ({other:?}):\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    };
    let invoice = first["invoice"].as_str().expect("invoice").to_string();
    assert_eq!(first["status"], "New");
    assert_eq!(first["listed"], json!([invoice]));

    let paid = api
        .admin(&admin, PAY_FROM_OUTSIDE, json!({ "r": first["bolt11"] }))
        .await;
    assert_eq!(paid["devLightningPayInvoice"]["errors"], json!([]), "{paid}");

    let last: Value = match tokio::time::timeout(Duration::from_secs(90), lines.next_line()).await {
        Ok(Ok(Some(line))) => serde_json::from_str(&line).expect("json line"),
        other => panic!("the SDK script did not finish: {other:?}"),
    };
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .expect("script exits")
        .expect("script status");
    assert!(status.success(), "the SDK script failed");
    assert_eq!(last["status"], "Settled", "{last}");
    let deliveries = last["deliveries"].as_array().expect("deliveries");
    assert!(
        deliveries
            .iter()
            .all(|d| d["verified"] == json!(true) && d["webhookId"] == first["webhook"]),
        "every delivery verified: {last}"
    );
    let types: Vec<&str> = deliveries
        .iter()
        .filter(|d| d["invoiceId"] == json!(invoice))
        .filter_map(|d| d["type"].as_str())
        .collect();
    for wanted in [
        "InvoiceCreated",
        "InvoiceReceivedPayment",
        "InvoiceProcessing",
        "InvoiceSettled",
    ] {
        assert!(types.contains(&wanted), "{wanted} delivered: {types:?}");
    }
}
