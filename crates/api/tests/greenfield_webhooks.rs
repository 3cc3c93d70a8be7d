//! Greenfield webhooks over HTTP (`/api/v1/stores/{storeId}/webhooks/…`): BTCPay's shapes, the
//! secret shown once, `btcpay.store.webhooks.canmodifywebhooks` per store, BTCPay's 404 and 422
//! bodies, deliveries with their exact request and redeliveries, and a webhook to a private
//! address refused at delivery time (the server's default). On SQLite and PostgreSQL.

mod common;

use common::*;
use serde_json::{json, Value};

flash_store::on_both_backends!(
    webhooks_are_created_read_changed_and_deleted,
    refusals_answer_as_btcpay_does,
    deliveries_show_their_request_and_redeliver,
    an_invoice_made_over_http_is_delivered_to_the_stores_webhooks,
);

const MODIFY_WEBHOOKS: &str = "btcpay.store.webhooks.canmodifywebhooks";

/// A Greenfield request: `auth` is the whole `Authorization` header value.
async fn call(s: &TestServer, method: &str, path: &str, auth: &str, body: Option<&Value>) -> Resp {
    s.greenfield(method, path, Some(auth), body, &[]).await
}

async fn key(s: &TestServer, m: &Member, permissions: &[String]) -> String {
    let r = call(
        s,
        "POST",
        "/api/v1/api-keys",
        &format!("Bearer {}", m.token),
        Some(&json!({"label": "test", "permissions": permissions})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    format!("token {}", r.json()["apiKey"].as_str().expect("apiKey"))
}

async fn new_store(s: &TestServer, m: &Member, name: &str) -> String {
    let r = call(
        s,
        "POST",
        "/api/v1/stores",
        &format!("Bearer {}", m.token),
        Some(&json!({"name": name})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()["id"].as_str().expect("id").to_string()
}

async fn webhooks_are_created_read_changed_and_deleted(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let store = new_store(&s, &alice, "Shop").await;
    let auth = key(&s, &alice, &[format!("{MODIFY_WEBHOOKS}:{store}")]).await;
    let base = format!("/api/v1/stores/{store}/webhooks");

    // Created with BTCPay's defaults and a generated secret, shown this once.
    let r = call(
        &s,
        "POST",
        &base,
        &auth,
        Some(&json!({"url": "https://example.com/hook"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let made = r.json();
    let id = made["id"].as_str().expect("id").to_string();
    let secret = made["secret"].as_str().expect("secret");
    assert!(secret.len() >= 20, "{secret}");
    s.advance_secs(1);
    assert_eq!(
        (
            &made["enabled"],
            &made["automaticRedelivery"],
            &made["url"],
            &made["authorizedEvents"]
        ),
        (
            &json!(true),
            &json!(true),
            &json!("https://example.com/hook"),
            &json!({"everything": true, "specificEvents": []})
        )
    );
    let r = call(
        &s,
        "POST",
        &base,
        &auth,
        Some(&json!({"url": "http://example.org/b", "secret": "mine", "enabled": false})),
    )
    .await;
    assert_eq!((r.status, &r.json()["secret"]), (200, &json!("mine")), "{}", r.text);
    let second = r.json()["id"].as_str().expect("id").to_string();

    // Never again.
    let r = call(&s, "GET", &base, &auth, None).await;
    let listed = r.json();
    assert_eq!(listed.as_array().map(Vec::len), Some(2), "{}", r.text);
    assert!(listed
        .as_array()
        .expect("list")
        .iter()
        .all(|w| w.get("secret").is_none()));
    let mut shown = made.clone();
    shown.as_object_mut().expect("object").remove("secret");
    assert_eq!(listed[0], shown);
    let r = call(&s, "GET", &format!("{base}/{id}"), &auth, None).await;
    assert_eq!((r.status, r.json()), (200, shown));

    // Replaced, as BTCPay's PUT does.
    let r = call(
        &s,
        "PUT",
        &format!("{base}/{id}"),
        &auth,
        Some(&json!({
            "url": "https://example.com/other",
            "automaticRedelivery": false,
            "authorizedEvents": {"everything": false, "specificEvents": ["InvoiceSettled", "InvoiceExpired"]},
        })),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let changed = r.json();
    assert_eq!(
        (
            &changed["url"],
            &changed["automaticRedelivery"],
            &changed["authorizedEvents"]["specificEvents"]
        ),
        (
            &json!("https://example.com/other"),
            &json!(false),
            &json!(["InvoiceSettled", "InvoiceExpired"])
        )
    );
    assert!(changed.get("secret").is_none());
    let r = call(&s, "GET", &format!("{base}/{id}"), &auth, None).await;
    assert_eq!(r.json(), changed);

    let r = call(&s, "DELETE", &format!("{base}/{id}"), &auth, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    for (method, body) in [
        ("GET", None),
        ("DELETE", None),
        ("PUT", Some(json!({"url": "https://a.b/"}))),
    ] {
        let r = call(&s, method, &format!("{base}/{id}"), &auth, body.as_ref()).await;
        assert_eq!(
            (r.status, r.json()),
            (
                404,
                json!({"code": "webhook-not-found", "message": "The webhook was not found"})
            ),
            "{method}"
        );
    }
    let r = call(&s, "GET", &base, &auth, None).await;
    assert_eq!(r.json()[0]["id"], json!(second));
}

async fn refusals_answer_as_btcpay_does(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let store = new_store(&s, &alice, "One").await;
    let other = new_store(&s, &alice, "Two").await;
    let owner = format!("Bearer {}", alice.token);
    let base = format!("/api/v1/stores/{store}/webhooks");

    // 422 with each bad field by its path; nothing written.
    let r = call(
        &s,
        "POST",
        &base,
        &owner,
        Some(&json!({
            "url": "/relative",
            "automaticRedelivery": 3,
            "authorizedEvents": {"everything": false, "specificEvents": ["InvoiceSettled", "InvoiceEaten"]},
        })),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let paths: Vec<Value> = r
        .json()
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["path"].clone())
        .collect();
    assert_eq!(
        paths,
        [
            json!("url"),
            json!("automaticRedelivery"),
            json!("authorizedEvents.specificEvents[1]")
        ]
    );
    for url in ["ftp://example.com/", "example.com/hook", "http://", ""] {
        let r = call(&s, "POST", &base, &owner, Some(&json!({"url": url}))).await;
        assert_eq!((r.status, &r.json()[0]["path"]), (422, &json!("url")), "{url}");
    }
    let r = call(&s, "POST", &base, &owner, Some(&json!([]))).await;
    assert_eq!(r.status, 422);
    let r = call(&s, "GET", &base, &owner, None).await;
    assert_eq!(r.json(), json!([]), "nothing written");

    // A key for another store of the same owner, or without the permission: 403.
    let elsewhere = key(&s, &alice, &[format!("{MODIFY_WEBHOOKS}:{other}")]).await;
    let viewer = key(&s, &alice, &[format!("btcpay.store.canviewstoresettings:{store}")]).await;
    for auth in [&elsewhere, &viewer] {
        let r = call(&s, "GET", &base, auth, None).await;
        assert_eq!(
            (r.status, &r.json()["code"], &r.json()["missingPermission"]),
            (403, &json!("missing-permission"), &json!(MODIFY_WEBHOOKS))
        );
        let r = call(&s, "POST", &base, auth, Some(&json!({"url": "https://a.b/"}))).await;
        assert_eq!(r.status, 403);
    }
    // The store's settings permission grants it, as in BTCPay's hierarchy.
    let settings = key(&s, &alice, &[format!("btcpay.store.canmodifystoresettings:{store}")]).await;
    let r = call(&s, "POST", &base, &settings, Some(&json!({"url": "https://a.b/"}))).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let id = r.json()["id"].as_str().expect("id").to_string();

    // Another member: the store does not exist for them.
    let bob = s.member().await;
    let r = call(
        &s,
        "GET",
        &format!("{base}/{id}"),
        &format!("Bearer {}", bob.token),
        None,
    )
    .await;
    assert_eq!(
        (r.status, r.json()),
        (
            404,
            json!({"code": "store-not-found", "message": "The store was not found"})
        )
    );
    // Unknown webhooks and deliveries.
    let r = call(&s, "GET", &format!("{base}/nope/deliveries"), &owner, None).await;
    assert_eq!((r.status, &r.json()["code"]), (404, &json!("webhook-not-found")));
    for path in ["", "/request"] {
        let r = call(&s, "GET", &format!("{base}/{id}/deliveries/nope{path}"), &owner, None).await;
        assert_eq!(
            (r.status, r.json()),
            (
                404,
                json!({"code": "webhookdelivery-not-found", "message": "The webhook delivery was not found"})
            )
        );
    }
    let r = call(
        &s,
        "POST",
        &format!("{base}/{id}/deliveries/nope/redeliver"),
        &owner,
        None,
    )
    .await;
    assert_eq!(
        (r.status, &r.json()["code"]),
        (404, &json!("webhookdelivery-not-found"))
    );
    // A webhook is reached through its own store only.
    let r = call(
        &s,
        "GET",
        &format!("/api/v1/stores/{other}/webhooks/{id}"),
        &owner,
        None,
    )
    .await;
    assert_eq!((r.status, &r.json()["code"]), (404, &json!("webhook-not-found")));
}

async fn deliveries_show_their_request_and_redeliver(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let store = new_store(&s, &alice, "Shop").await;
    let auth = key(&s, &alice, &[format!("{MODIFY_WEBHOOKS}:{store}")]).await;
    let base = format!("/api/v1/stores/{store}/webhooks");
    let r = call(
        &s,
        "POST",
        &base,
        &auth,
        Some(&json!({"url": "http://127.0.0.1:9/hook"})),
    )
    .await;
    let hook = r.json()["id"].as_str().expect("id").to_string();
    let payload =
        json!({"type": "InvoiceSettled", "timestamp": 1, "storeId": store, "invoiceId": "inv1", "metadata": {}});
    s.state
        .bank
        .store_for_tests()
        .db()
        .execute(
            "INSERT INTO merchant_events (store_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4)",
            vec![
                flash_store::Value::from(store.as_str()),
                flash_store::Value::from("InvoiceSettled"),
                flash_store::Value::from(payload.to_string()),
                flash_store::Value::from(0),
            ],
        )
        .await
        .expect("append event");
    let pass = s.state.merchant.run_webhook_pass().await.expect("pass");
    assert_eq!((pass.deliveries, pass.attempted, pass.succeeded), (1, 1, 0));

    // The server does not deliver to its own network by default: refused, and final.
    let r = call(&s, "GET", &format!("{base}/{hook}/deliveries"), &auth, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let first = r.json()[0].clone();
    assert_eq!((&first["status"], &first["httpCode"]), (&json!("Failed"), &Value::Null));
    assert!(
        first["errorMessage"].as_str().expect("error").contains("refused"),
        "{first}"
    );
    assert!(first["timestamp"].is_i64() && first["deliveryTime"].is_i64(), "{first}");
    let first_id = first["id"].as_str().expect("id").to_string();
    let r = call(&s, "GET", &format!("{base}/{hook}/deliveries/{first_id}"), &auth, None).await;
    assert_eq!(r.json(), first);
    let r = call(
        &s,
        "GET",
        &format!("{base}/{hook}/deliveries/{first_id}/request"),
        &auth,
        None,
    )
    .await;
    assert_eq!(
        r.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let sent = r.json();
    assert_eq!(
        (
            &sent["deliveryId"],
            &sent["originalDeliveryId"],
            &sent["webhookId"],
            &sent["isRedelivery"],
            &sent["invoiceId"]
        ),
        (
            &json!(first_id),
            &json!(first_id),
            &json!(hook),
            &json!(false),
            &json!("inv1")
        )
    );

    s.advance_secs(1);
    let r = call(
        &s,
        "POST",
        &format!("{base}/{hook}/deliveries/{first_id}/redeliver"),
        &auth,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let again = r.json().as_str().expect("a JSON string").to_string();
    let r = call(
        &s,
        "GET",
        &format!("{base}/{hook}/deliveries/{again}/request"),
        &auth,
        None,
    )
    .await;
    let resent = r.json();
    assert_eq!(
        (
            &resent["deliveryId"],
            &resent["originalDeliveryId"],
            &resent["isRedelivery"]
        ),
        (&json!(again), &json!(first_id), &json!(true))
    );
    let r = call(&s, "GET", &format!("{base}/{hook}/deliveries"), &auth, None).await;
    let ids: Vec<Value> = r
        .json()
        .as_array()
        .expect("list")
        .iter()
        .map(|d| d["id"].clone())
        .collect();
    assert_eq!(ids, [json!(again), json!(first_id)], "newest first");
    let r = call(&s, "GET", &format!("{base}/{hook}/deliveries?count=1"), &auth, None).await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));
}

async fn an_invoice_made_over_http_is_delivered_to_the_stores_webhooks(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let store = new_store(&s, &alice, "Shop").await;
    let owner = format!("Bearer {}", alice.token);
    let base = format!("/api/v1/stores/{store}/webhooks");
    let r = call(
        &s,
        "POST",
        &base,
        &owner,
        Some(&json!({"url": "https://example.com/hook", "authorizedEvents": {"everything": false, "specificEvents": ["InvoiceCreated"]}})),
    )
    .await;
    let hook = r.json()["id"].as_str().expect("id").to_string();
    let r = call(
        &s,
        "POST",
        &format!("/api/v1/stores/{store}/invoices"),
        &owner,
        Some(&json!({"amount": "2100", "currency": "SATS", "metadata": {"orderId": "order-7"}})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let invoice = r.json()["id"].as_str().expect("invoice id").to_string();

    // The invoice's outbox event becomes one delivery whose body is BTCPay's.
    let pass = s.state.merchant.run_webhook_pass().await.expect("pass");
    assert_eq!((pass.events, pass.deliveries), (1, 1), "{pass:?}");
    let r = call(&s, "GET", &format!("{base}/{hook}/deliveries"), &owner, None).await;
    let delivery = r.json()[0]["id"].as_str().expect("delivery").to_string();
    let r = call(
        &s,
        "GET",
        &format!("{base}/{hook}/deliveries/{delivery}/request"),
        &owner,
        None,
    )
    .await;
    let sent = r.json();
    assert_eq!(
        (
            &sent["type"],
            &sent["storeId"],
            &sent["invoiceId"],
            &sent["metadata"]["orderId"]
        ),
        (
            &json!("InvoiceCreated"),
            &json!(store),
            &json!(invoice),
            &json!("order-7")
        )
    );
    assert_eq!(
        (
            &sent["deliveryId"],
            &sent["originalDeliveryId"],
            &sent["webhookId"],
            &sent["isRedelivery"]
        ),
        (&json!(delivery), &json!(delivery), &json!(hook), &json!(false))
    );
}
