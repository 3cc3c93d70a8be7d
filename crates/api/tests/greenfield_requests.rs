//! Greenfield payment requests and store Lightning addresses over HTTP on both backends, paid
//! on the dev rails: a request paid in two invoices, expiry, custom amounts, permissions and
//! refusals; a store's Lightning address paid through LNURL-pay into a store invoice, and the
//! names a store may not take. The invoice watcher runs as in flashd; the outbox is read to
//! check the events each change appends.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

flash_store::on_both_backends!(
    a_request_paid_in_two_invoices_completes_with_its_events,
    expiry_custom_amounts_permissions_and_refusals,
    a_store_lightning_address_settles_a_store_invoice,
    address_names_are_one_store_s_and_never_a_user_s,
);

/// A Greenfield request: `auth` is the whole `Authorization` header value.
async fn call(s: &TestServer, method: &str, path: &str, auth: &str, body: Option<Value>) -> Resp {
    s.greenfield(method, path, Some(auth), body.as_ref(), &[]).await
}

/// `call`, asserting a 200; the JSON answer (`null` when empty).
async fn ok(s: &TestServer, method: &str, path: &str, auth: &str, body: Option<Value>) -> Value {
    let r = call(s, method, path, auth, body).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
    if r.text.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// The `code` of a Greenfield error.
fn code(r: &Resp) -> String {
    r.json()["code"].as_str().unwrap_or_default().to_string()
}

/// A member's owner credential and a store of theirs.
struct Shop {
    owner: Member,
    auth: String,
    store: String,
}

async fn shop(s: &TestServer) -> Shop {
    let owner = s.member().await;
    let auth = format!("Bearer {}", owner.token);
    let store = ok(s, "POST", "/api/v1/stores", &auth, Some(json!({"name": "Tea shop"}))).await["id"]
        .as_str()
        .expect("store id")
        .to_string();
    Shop { owner, auth, store }
}

/// The BOLT11 of an invoice.
async fn bolt11(s: &TestServer, shop: &Shop, invoice: &str) -> String {
    let methods = ok(
        s,
        "GET",
        &format!("/api/v1/invoices/{invoice}/payment-methods"),
        &shop.auth,
        None,
    )
    .await;
    methods
        .as_array()
        .and_then(|ms| ms.iter().find(|m| m["paymentMethodId"] == "BTC-LN"))
        .and_then(|m| m["destination"].as_str())
        .expect("a BOLT11")
        .to_string()
}

/// Waits (a few seconds at most) until GET `path` shows `status`.
async fn until(s: &TestServer, shop: &Shop, path: &str, status: &str) -> Value {
    for _ in 0..100 {
        let got = ok(s, "GET", path, &shop.auth, None).await;
        if got["status"] == status {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "{path} never became {status}: {}",
        ok(s, "GET", path, &shop.auth, None).await
    );
}

async fn a_request_paid_in_two_invoices_completes_with_its_events(backend: Backend) {
    let s = TestServer::start(backend).await;
    let _watcher = s.watch_invoices();
    let shop = shop(&s).await;
    let created = ok(
        &s,
        "POST",
        &format!("/api/v1/stores/{}/payment-requests", shop.store),
        &shop.auth,
        Some(
            json!({"amount": "3000", "currency": "SATS", "title": "Rent", "email": "a@b.example",
                    "allowCustomPaymentAmounts": true, "referenceId": "INV-1"}),
        ),
    )
    .await;
    let id = created["id"].as_str().expect("id").to_string();
    assert_eq!(
        (
            &created["status"],
            &created["storeId"],
            &created["amount"],
            &created["referenceId"]
        ),
        (&json!("Pending"), &json!(shop.store), &json!("3000"), &json!("INV-1"))
    );
    let path = format!("/api/v1/payment-requests/{id}");
    let pay = format!("{path}/pay");

    // A part first: the request stays pending.
    let first = ok(&s, "POST", &pay, &shop.auth, Some(json!({"amount": "1000"}))).await;
    assert_eq!((&first["amount"], &first["currency"]), (&json!("1000"), &json!("SATS")));
    assert_eq!(first["metadata"]["paymentRequestId"], json!(id));
    assert_eq!(first["metadata"]["orderId"], json!(format!("PAY_REQUEST_{id}")));
    let before = s.balance(&shop.owner).await;
    s.pay_from_outside(&bolt11(&s, &shop, first["id"].as_str().expect("id")).await)
        .await;
    until(
        &s,
        &shop,
        &format!("/api/v1/invoices/{}", first["id"].as_str().expect("id")),
        "Settled",
    )
    .await;
    assert_eq!(ok(&s, "GET", &path, &shop.auth, None).await["status"], "Pending");

    // With no amount, the invoice asks the rest; paid, the request is completed.
    let second = ok(&s, "POST", &pay, &shop.auth, None).await;
    assert_eq!(second["amount"], "2000");
    s.pay_from_outside(&bolt11(&s, &shop, second["id"].as_str().expect("id")).await)
        .await;
    let done = until(&s, &shop, &path, "Completed").await;
    assert_eq!(done["id"], json!(id));
    assert_eq!(s.balance(&shop.owner).await - before, 3_000);
    // The store-scoped route answers the same request.
    let scoped = format!("/api/v1/stores/{}/payment-requests/{id}", shop.store);
    assert_eq!(ok(&s, "GET", &scoped, &shop.auth, None).await["status"], "Completed");

    let r = call(&s, "POST", &pay, &shop.auth, None).await;
    assert_eq!((r.status, code(&r)), (400, "already-paid".to_string()), "{}", r.text);

    // Changed, then archived: it leaves the list.
    let mut body = created.clone();
    body["title"] = json!("Rent, March");
    let changed = ok(&s, "PUT", &path, &shop.auth, Some(body)).await;
    assert_eq!(
        (&changed["title"], &changed["status"]),
        (&json!("Rent, March"), &json!("Completed"))
    );
    let list = format!("/api/v1/stores/{}/payment-requests", shop.store);
    assert_eq!(
        ok(&s, "GET", &list, &shop.auth, None).await.as_array().map(Vec::len),
        Some(1)
    );
    ok(&s, "DELETE", &path, &shop.auth, None).await;
    assert_eq!(ok(&s, "GET", &list, &shop.auth, None).await, json!([]));
    let r = call(&s, "POST", &pay, &shop.auth, None).await;
    assert_eq!((r.status, code(&r)), (400, "archived".to_string()), "{}", r.text);

    let evs = s.merchant_events("paymentRequestId", &id).await;
    let types: Vec<&str> = evs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "PaymentRequestCreated",
            "PaymentRequestStatusChanged",
            "PaymentRequestUpdated",
            "PaymentRequestArchived"
        ]
    );
    assert_eq!(
        (&evs[1].1["status"], &evs[1].1["storeId"]),
        (&json!("Completed"), &json!(shop.store))
    );
    s.journals().await;
}

async fn expiry_custom_amounts_permissions_and_refusals(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s).await;
    let list = format!("/api/v1/stores/{}/payment-requests", shop.store);

    // Fields are checked one by one, as BTCPay answers them.
    let r = call(
        &s,
        "POST",
        &list,
        &shop.auth,
        Some(json!({"amount": "-1", "currency": "NOPE!"})),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let paths: Vec<String> = r
        .json()
        .as_array()
        .expect("errors")
        .iter()
        .map(|e| e["path"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(paths, ["currency", "amount", "title"]);
    let r = call(
        &s,
        "POST",
        &list,
        &shop.auth,
        Some(json!({"amount": "1.001", "title": "t"})),
    )
    .await;
    assert_eq!(r.status, 422, "USD has two decimals: {}", r.text);

    // No custom amounts: only what is due.
    let fixed = ok(
        &s,
        "POST",
        &list,
        &shop.auth,
        Some(json!({"amount": "500", "currency": "SATS", "title": "t"})),
    )
    .await;
    assert_eq!(fixed["currency"], "SATS");
    let pay = format!("/api/v1/payment-requests/{}/pay", fixed["id"].as_str().expect("id"));
    let r = call(&s, "POST", &pay, &shop.auth, Some(json!({"amount": "100"}))).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json()[0]["path"], "amount");
    let invoice = ok(&s, "POST", &pay, &shop.auth, Some(json!({"amount": "500"}))).await;
    assert_eq!(invoice["amount"], "500");
    // Asked again with reuse, the pending invoice comes back.
    let again = ok(
        &s,
        "POST",
        &pay,
        &shop.auth,
        Some(json!({"allowPendingInvoiceReuse": true})),
    )
    .await;
    assert_eq!(again["id"], invoice["id"]);

    // Custom amounts: at most what is due.
    let custom = ok(
        &s,
        "POST",
        &list,
        &shop.auth,
        Some(json!({"amount": "0.00001", "currency": "BTC", "title": "t", "allowCustomPaymentAmounts": true})),
    )
    .await;
    let pay_custom = format!("/api/v1/payment-requests/{}/pay", custom["id"].as_str().expect("id"));
    assert_eq!(
        ok(&s, "POST", &pay_custom, &shop.auth, Some(json!({"amount": "0.000004"}))).await["amount"],
        "0.000004"
    );
    assert_eq!(
        ok(&s, "POST", &pay_custom, &shop.auth, Some(json!({"amount": 1}))).await["amount"],
        "0.00001"
    );

    // Past its expiry date a request is expired and takes no payment.
    let created_secs = custom["createdTime"].as_i64().expect("createdTime");
    let expiring = ok(
        &s,
        "POST",
        &list,
        &shop.auth,
        Some(json!({"amount": "5", "currency": "SATS", "title": "t", "expiryDate": created_secs + 60})),
    )
    .await;
    let path = format!("/api/v1/payment-requests/{}", expiring["id"].as_str().expect("id"));
    assert_eq!(expiring["status"], "Pending");
    s.advance_secs(120);
    assert_eq!(ok(&s, "GET", &path, &shop.auth, None).await["status"], "Expired");
    let r = call(&s, "POST", &format!("{path}/pay"), &shop.auth, None).await;
    assert_eq!((r.status, code(&r)), (400, "expired".to_string()), "{}", r.text);
    let evs = s
        .merchant_events("paymentRequestId", expiring["id"].as_str().expect("id"))
        .await;
    assert_eq!(
        evs.last().map(|(t, p)| (t.as_str(), p["status"].clone())),
        Some(("PaymentRequestStatusChanged", json!("Expired")))
    );

    // Unknown ids, and another owner's requests, are not found.
    let r = call(&s, "GET", "/api/v1/payment-requests/nope", &shop.auth, None).await;
    assert_eq!((r.status, code(&r)), (404, "paymentrequest-not-found".to_string()));
    let stranger = format!("Bearer {}", s.member().await.token);
    assert_eq!(call(&s, "GET", &path, &stranger, None).await.status, 404);
    let r = call(
        &s,
        "GET",
        &format!(
            "/api/v1/stores/other/payment-requests/{}",
            fixed["id"].as_str().expect("id")
        ),
        &shop.auth,
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);

    // A key that may view requests reads and pays them, but cannot create or change them.
    let key = ok(
        &s,
        "POST",
        "/api/v1/api-keys",
        &shop.auth,
        Some(json!({"permissions": [format!("btcpay.store.canviewpaymentrequests:{}", shop.store)]})),
    )
    .await;
    let viewer = format!("token {}", key["apiKey"].as_str().expect("key"));
    assert_eq!(
        ok(&s, "GET", &list, &viewer, None).await.as_array().map(Vec::len),
        Some(3)
    );
    ok(&s, "POST", &pay_custom, &viewer, Some(json!({"amount": "0.000001"}))).await;
    let r = call(&s, "POST", &list, &viewer, Some(json!({"amount": "5", "title": "t"}))).await;
    assert_eq!(r.status, 403, "{}", r.text);
    assert_eq!(r.json()["missingPermission"], "btcpay.store.canmodifypaymentrequests");
    let r = call(&s, "DELETE", &path, &viewer, None).await;
    assert_eq!(r.status, 403, "{}", r.text);
}

async fn a_store_lightning_address_settles_a_store_invoice(backend: Backend) {
    let s = TestServer::start(backend).await;
    let _watcher = s.watch_invoices();
    let shop = shop(&s).await;
    let base = format!("/api/v1/stores/{}/lightning-addresses", shop.store);
    let made = ok(
        &s,
        "POST",
        &format!("{base}/Tea.Shop"),
        &shop.auth,
        Some(json!({"min": "10", "max": "5000", "invoiceMetadata": {"source": "ln-address"}})),
    )
    .await;
    assert_eq!(
        made,
        json!({"username": "tea.shop", "currencyCode": null, "min": "10", "max": "5000",
               "invoiceMetadata": {"source": "ln-address"}})
    );
    assert_eq!(ok(&s, "GET", &base, &shop.auth, None).await, json!([made]));
    assert_eq!(ok(&s, "GET", &format!("{base}/tea.shop"), &shop.auth, None).await, made);

    let r = s.get("/.well-known/lnurlp/tea.shop", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let offer = r.json();
    assert_eq!(
        (
            &offer["tag"],
            &offer["minSendable"],
            &offer["maxSendable"],
            &offer["commentAllowed"]
        ),
        (&json!("payRequest"), &json!(10_000), &json!(5_000_000), &json!(0))
    );
    let metadata = offer["metadata"].as_str().expect("metadata");
    let entries: Vec<Vec<String>> = serde_json::from_str(metadata).expect("metadata is a JSON array");
    assert!(entries.contains(&vec!["text/identifier".to_string(), format!("tea.shop@{}", s.addr)]));
    assert!(entries.contains(&vec!["text/plain".to_string(), "Paid to Tea shop".to_string()]));
    let callback = offer["callback"].as_str().expect("callback");
    assert_eq!(callback, s.url("/lnurl/pay/tea.shop"));

    for bad in ["amount=9000", "amount=5001000", "amount=21500"] {
        let r = s.get(&format!("/lnurl/pay/tea.shop?{bad}"), &[]).await;
        assert_eq!(
            (r.status, &r.json()["status"]),
            (400, &json!("ERROR")),
            "{bad}: {}",
            r.text
        );
    }
    let r = s.get("/lnurl/pay/tea.shop?amount=21000", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let pr = r.json()["pr"].as_str().expect("pr").to_string();
    let decoded: lightning_invoice::Bolt11Invoice = pr.parse().expect("a BOLT11 invoice");
    assert_eq!(decoded.amount_milli_satoshis(), Some(21_000));
    let expected: [u8; 32] = Sha256::digest(metadata.as_bytes()).into();
    match decoded.description() {
        lightning_invoice::Bolt11InvoiceDescriptionRef::Hash(h) => {
            assert_eq!(h.0.as_ref() as &[u8], expected.as_slice(), "commits to the metadata")
        }
        other => panic!("expected a description hash, got {other:?}"),
    }

    // The payment is a store invoice, settled into the store's wallet.
    let before = s.balance(&shop.owner).await;
    s.pay_from_outside(&pr).await;
    let invoices = ok(
        &s,
        "GET",
        &format!("/api/v1/stores/{}/invoices", shop.store),
        &shop.auth,
        None,
    )
    .await;
    let invoice = invoices
        .as_array()
        .and_then(|l| l.first())
        .expect("a store invoice")
        .clone();
    assert_eq!(
        (&invoice["amount"], &invoice["currency"], &invoice["metadata"]["source"]),
        (&json!("21"), &json!("SATS"), &json!("ln-address"))
    );
    let id = invoice["id"].as_str().expect("id");
    until(&s, &shop, &format!("/api/v1/invoices/{id}"), "Settled").await;
    assert_eq!(s.balance(&shop.owner).await - before, 21);
    let types: Vec<String> = s
        .merchant_events("invoiceId", id)
        .await
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert!(types.iter().any(|t| t == "InvoiceSettled"), "{types:?}");
    s.journals().await;
}

async fn address_names_are_one_store_s_and_never_a_user_s(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = shop(&s).await;
    let b = shop(&s).await;
    s.named_member("alice_9").await;
    let at = |shop: &Shop, name: &str| format!("/api/v1/stores/{}/lightning-addresses/{name}", shop.store);

    let r = call(&s, "POST", &at(&a, "Alice_9"), &a.auth, Some(json!({}))).await;
    assert_eq!(r.status, 422, "a user's name: {}", r.text);
    assert_eq!(r.json()[0]["path"], "username");
    ok(&s, "POST", &at(&a, "shop_x"), &a.auth, Some(json!({}))).await;
    let r = call(&s, "POST", &at(&b, "SHOP_X"), &b.auth, Some(json!({}))).await;
    assert_eq!(r.status, 422, "another store's name: {}", r.text);
    // The store that holds it may change it.
    let changed = ok(
        &s,
        "POST",
        &at(&a, "Shop_X"),
        &a.auth,
        Some(json!({"currencyCode": "btc"})),
    )
    .await;
    assert_eq!(changed["currencyCode"], "BTC");
    let r = call(&s, "POST", &at(&a, "no spaces"), &a.auth, Some(json!({}))).await;
    assert_eq!(r.status, 422, "{}", r.text);

    // A user cannot take a store address's name.
    let m = s.member().await;
    let r = s
        .gql(
            Some(&m.token),
            "mutation($u: Username!) { userUpdateUsername(input: { username: $u }) { errors { code } } }",
            json!({ "u": "shop_x" }),
        )
        .await;
    assert!(
        has_top_errors(&r)
            || !data(&r, "userUpdateUsername")["errors"]
                .as_array()
                .is_none_or(Vec::is_empty),
        "{r}"
    );

    // Another store's key sees nothing of it; removed, it is gone and the name is free.
    let r = call(&s, "GET", &at(&a, "shop_x"), &b.auth, None).await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = call(&s, "GET", &at(&b, "shop_x"), &b.auth, None).await;
    assert_eq!((r.status, code(&r)), (404, "lightning-address-not-found".to_string()));
    ok(&s, "DELETE", &at(&a, "SHOP_X"), &a.auth, None).await;
    assert_eq!(s.get("/.well-known/lnurlp/shop_x", &[]).await.status, 404);
    assert_eq!(call(&s, "DELETE", &at(&a, "shop_x"), &a.auth, None).await.status, 404);
    ok(&s, "POST", &at(&b, "shop_x"), &b.auth, Some(json!({}))).await;
}
