//! `flashd` killed with SIGKILL after a store invoice was paid and before its webhook was
//! delivered (the receiver was down), then restarted with the receiver up: the `InvoiceSettled`
//! delivery arrives, once. The event and its delivery were in the database before the kill; the
//! restarted sender retries what is due. On SQLite and on PostgreSQL.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use common::*;
use flash_store::testing::Backend;
use serde_json::{json, Value};

const PAY_FROM_OUTSIDE: &str =
    "mutation($r: String!) { devLightningPayInvoice(input: {paymentRequest: $r}) { errors { code message } } }";

flash_store::on_both_backends!(a_webhook_survives_a_kill_between_payment_and_delivery);

/// Starts a receiver on `port` that records every event body it gets.
async fn receiver(port: u16, got: Arc<Mutex<Vec<Value>>>) -> tokio::task::JoinHandle<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind receiver");
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let got = got.clone();
            async move {
                if let (Ok(event), Ok(mut got)) = (serde_json::from_slice::<Value>(&body), got.lock()) {
                    got.push(event);
                }
                "ok"
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    })
}

async fn greenfield(api: &Api, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> Value {
    let mut req = api
        .http
        .request(method, format!("{}{path}", api.base))
        .header("authorization", format!("token {key}"));
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("greenfield request");
    assert!(resp.status().is_success(), "{path}: HTTP {}", resp.status());
    resp.json().await.expect("json")
}

async fn a_webhook_survives_a_kill_between_payment_and_delivery(backend: Backend) {
    let dir = TempDir::new("merchant-crash");
    let url = database_url(backend).await;
    let launch = Launch::new(dir.path(), url.as_deref());
    let mut first = Flashd::start(&launch).await;
    let admin = first.admin_key.clone().expect("admin key");
    let api = Api::new(&first.base);
    let owner = api.device_user(&unique("merchant-crash")).await;
    let (_, key) = api
        .post(
            "/api/v1/api-keys",
            Some(&owner.token),
            &json!({"label": "crash", "permissions": ["unrestricted"]}),
        )
        .await
        .expect("key");
    let key = key["apiKey"].as_str().expect("apiKey").to_string();
    let (_, store) = api
        .post("/api/v1/stores", Some(&owner.token), &json!({"name": "Crash shop"}))
        .await
        .expect("store");
    let store = store["id"].as_str().expect("store").to_string();
    // The receiver's port, with nothing listening on it yet.
    let port = free_port();
    let hook = json!({"url": format!("http://127.0.0.1:{port}/hook"),
                      "authorizedEvents": {"everything": false, "specificEvents": ["InvoiceSettled"]}});
    greenfield(
        &api,
        reqwest::Method::POST,
        &format!("/api/v1/stores/{store}/webhooks"),
        &key,
        Some(hook),
    )
    .await;
    let invoice = greenfield(
        &api,
        reqwest::Method::POST,
        &format!("/api/v1/stores/{store}/invoices"),
        &key,
        Some(json!({"amount": "1500", "currency": "SATS"})),
    )
    .await;
    let id = invoice["id"].as_str().expect("invoice id").to_string();
    let methods = greenfield(
        &api,
        reqwest::Method::GET,
        &format!("/api/v1/invoices/{id}/payment-methods"),
        &key,
        None,
    )
    .await;
    let bolt11 = methods
        .as_array()
        .and_then(|m| m.iter().find(|m| m["paymentMethodId"] == "BTC-LN"))
        .and_then(|m| m["destination"].as_str())
        .expect("bolt11")
        .to_string();
    let paid = api.admin(&admin, PAY_FROM_OUTSIDE, json!({ "r": bolt11 })).await;
    assert_eq!(paid["devLightningPayInvoice"]["errors"], json!([]), "{paid}");
    wait_for(
        "the invoice settled",
        Duration::from_secs(20),
        || {
            greenfield(
                &api,
                reqwest::Method::GET,
                &format!("/api/v1/invoices/{id}"),
                &key,
                None,
            )
        },
        |i| i["status"] == "Settled",
    )
    .await;
    // Give the sender its first (failing) attempt, then kill flashd mid-schedule.
    tokio::time::sleep(Duration::from_millis(500)).await;
    first.kill_and_wait();

    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let _receiver = receiver(port, got.clone()).await;
    let second = Flashd::start(&launch).await;
    let delivered = wait_for(
        "the InvoiceSettled delivery",
        Duration::from_secs(45),
        || {
            let got = got.clone();
            async move { got.lock().map(|g| g.clone()).unwrap_or_default() }
        },
        |events| !events.is_empty(),
    )
    .await;
    // Nothing more comes: one event, one delivery.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = got.lock().map(|g| g.clone()).unwrap_or_default();
    assert_eq!(events.len(), 1, "exactly one delivery: {events:?}");
    assert_eq!(
        (
            &delivered[0]["type"],
            &delivered[0]["invoiceId"],
            &delivered[0]["storeId"]
        ),
        (&json!("InvoiceSettled"), &json!(id), &json!(store))
    );
    drop(second);
}
