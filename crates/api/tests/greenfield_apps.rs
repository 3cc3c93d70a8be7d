//! Point-of-sale apps over Greenfield on both backends: made, read, changed, listed and
//! deleted with BTCPay's permissions and bodies; orders priced on the server (keypad, cart,
//! discount, tip) become store invoices carrying `posData`; paid ones show in `sales` and
//! `top-items`.

mod common;

use common::*;
use flash_merchant::watcher::PassKind;
use serde_json::{json, Value};

flash_store::on_both_backends!(
    a_point_of_sale_is_made_changed_listed_and_deleted,
    orders_become_invoices_and_paid_ones_are_sales,
);

/// A Greenfield request: `auth` is the whole `Authorization` header value.
async fn call(s: &TestServer, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> Resp {
    s.greenfield(method, path, auth, body, &[]).await
}

const ITEMS: &str = r#"[{"id": "tea", "title": "Green tea", "price": "1.50"},
    {"id": "cake", "title": "Cake", "price": "3.00", "inventory": 5},
    {"id": "gift", "title": "Gift", "price": "5", "priceType": "Minimum"}]"#;

/// An owner, their store (in USD) and a point of sale selling `ITEMS`.
async fn cafe(s: &TestServer) -> (String, String, Value) {
    let owner = s.member().await;
    let auth = format!("Bearer {}", owner.token);
    let r = call(s, "POST", "/api/v1/stores", Some(&auth), Some(&json!({"name": "Cafe"}))).await;
    let store = r.json()["id"].as_str().expect("store").to_string();
    let body = json!({"appName": "Counter", "title": "Cafe counter", "defaultView": "Cart", "enableTips": true,
                      "showDiscount": true, "template": ITEMS});
    let r = call(
        s,
        "POST",
        &format!("/api/v1/stores/{store}/apps/pos"),
        Some(&auth),
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    (auth, store, r.json())
}

async fn a_point_of_sale_is_made_changed_listed_and_deleted(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (auth, store, app) = cafe(&s).await;
    let id = app["id"].as_str().expect("id").to_string();
    assert_eq!(
        (
            &app["appName"],
            &app["appType"],
            &app["storeId"],
            &app["currency"],
            &app["defaultView"]
        ),
        (
            &json!("Counter"),
            &json!("PointOfSale"),
            &json!(store),
            &json!("USD"),
            &json!("Cart")
        )
    );
    assert_eq!(app["items"].as_array().map(Vec::len), Some(3));
    assert_eq!(app["items"][2]["priceType"], "Minimum");
    assert_eq!(app["customTipPercentages"], json!([15, 18, 20]));

    let r = call(&s, "GET", &format!("/api/v1/apps/pos/{id}"), Some(&auth), None).await;
    assert_eq!(r.json(), app);
    let r = call(
        &s,
        "PUT",
        &format!("/api/v1/apps/pos/{id}"),
        Some(&auth),
        Some(&json!({"title": "Terrace", "currency": "SATS"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            &r.json()["title"],
            &r.json()["currency"],
            &r.json()["appName"],
            &r.json()["enableTips"]
        ),
        (&json!("Terrace"), &json!("SATS"), &json!("Counter"), &json!(true)),
        "fields not sent are kept"
    );
    let base = call(&s, "GET", &format!("/api/v1/apps/{id}"), Some(&auth), None)
        .await
        .json();
    assert_eq!(base["appType"], "PointOfSale");
    assert!(base.get("items").is_none());
    let listed = call(&s, "GET", &format!("/api/v1/stores/{store}/apps"), Some(&auth), None).await;
    assert_eq!(listed.json(), json!([base.clone()]));
    assert_eq!(
        call(&s, "GET", "/api/v1/apps", Some(&auth), None).await.json(),
        json!([base])
    );

    // Bad bodies: every problem by path, nothing made.
    let r = call(
        &s,
        "POST",
        &format!("/api/v1/stores/{store}/apps/pos"),
        Some(&auth),
        Some(&json!({"currency": "US1", "template": "[{\"id\": \"\"}]", "redirectUrl": "ftp://x"})),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let errors = r.json();
    let paths: Vec<&str> = errors
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "appName",
            "currency",
            "redirectUrl",
            "template[0].id",
            "template[0].price"
        ]
    );
    assert_eq!(
        call(&s, "GET", "/api/v1/apps", Some(&auth), None)
            .await
            .json()
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // Another account sees nothing; a key for another store is refused.
    let stranger = s.member().await;
    let r = call(
        &s,
        "GET",
        &format!("/api/v1/apps/pos/{id}"),
        Some(&format!("Bearer {}", stranger.token)),
        None,
    )
    .await;
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!("app-not-found")));
    let r = call(
        &s,
        "POST",
        "/api/v1/stores",
        Some(&auth),
        Some(&json!({"name": "Other"})),
    )
    .await;
    let other = r.json()["id"].as_str().expect("id").to_string();
    let key = call(
        &s,
        "POST",
        "/api/v1/api-keys",
        Some(&auth),
        Some(&json!({"permissions": [format!("btcpay.store.canviewstoresettings:{other}")]})),
    )
    .await
    .json()["apiKey"]
        .as_str()
        .expect("key")
        .to_string();
    let r = call(
        &s,
        "GET",
        &format!("/api/v1/apps/pos/{id}"),
        Some(&format!("token {key}")),
        None,
    )
    .await;
    assert_eq!((r.status, r.json()["code"].clone()), (403, json!("missing-permission")));

    let r = call(&s, "DELETE", &format!("/api/v1/apps/{id}"), Some(&auth), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        call(&s, "GET", &format!("/api/v1/apps/{id}"), Some(&auth), None)
            .await
            .status,
        404
    );
    let r = call(
        &s,
        "POST",
        &format!("/apps/{id}/pos"),
        None,
        Some(&json!({"amount": "1"})),
    )
    .await;
    assert_eq!(r.status, 404, "a deleted point of sale takes no orders");
}

async fn orders_become_invoices_and_paid_ones_are_sales(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (auth, _store, app) = cafe(&s).await;
    let id = app["id"].as_str().expect("id").to_string();
    let order = |body: Value| {
        let path = format!("/apps/{id}/pos");
        let s = &s;
        async move { call(s, "POST", &path, None, Some(&body)).await }
    };
    // A cart with a discount and a tip, priced on the server (the buyer's price for a fixed
    // item is ignored).
    let r = order(
        json!({"cart": [{"id": "tea", "count": 2, "price": "0.01"}, {"id": "cake"}],
                         "discountPercentage": 10, "tipPercentage": 15}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let first = r.json()["invoiceId"].as_str().expect("invoice").to_string();
    assert_eq!(r.json()["checkoutLink"], json!(s.url(&format!("/i/{first}"))));
    let invoice = call(
        &s,
        "GET",
        &format!("/api/v1/invoices/{first}?includePaymentMethods=true"),
        Some(&auth),
        None,
    )
    .await
    .json();
    assert_eq!(
        (&invoice["amount"], &invoice["currency"]),
        (&json!("6.21"), &json!("USD"))
    );
    assert_eq!(invoice["metadata"]["orderId"], json!(format!("pos-app_{id}")));
    assert_eq!(invoice["metadata"]["posData"]["tip"], "0.81");
    assert_eq!(invoice["metadata"]["posData"]["cart"][0]["count"], 2);
    // A second sale: one gift above its minimum.
    let r = order(json!({"cart": [{"id": "gift", "price": "7.50"}]})).await;
    let second = r.json()["invoiceId"].as_str().expect("invoice").to_string();
    // Refused orders make nothing.
    for bad in [
        json!({"cart": [{"id": "gift", "price": "4"}]}),
        json!({"cart": [{"id": "cake", "count": 6}]}),
        json!({"cart": [{"id": "coffee"}]}),
        json!({}),
    ] {
        let r = order(bad.clone()).await;
        assert_eq!(r.status, 422, "{bad}: {}", r.text);
    }
    assert_eq!(
        call(&s, "POST", "/apps/nope/pos", None, Some(&json!({"amount": "1"})))
            .await
            .status,
        404
    );

    for invoice in [&first, &second] {
        let methods = call(
            &s,
            "GET",
            &format!("/api/v1/invoices/{invoice}/payment-methods"),
            Some(&auth),
            None,
        )
        .await
        .json();
        let bolt11 = methods
            .as_array()
            .and_then(|m| m.iter().find(|m| m["paymentMethodId"] == "BTC-LN"))
            .and_then(|m| m["destination"].as_str())
            .expect("bolt11")
            .to_string();
        s.pay_from_outside(&bolt11).await;
    }
    s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep");
    for invoice in [&first, &second] {
        let shown = call(&s, "GET", &format!("/api/v1/invoices/{invoice}"), Some(&auth), None)
            .await
            .json();
        assert_eq!(shown["status"], "Settled", "{shown}");
    }
    // One more order, never paid: not a sale.
    order(json!({"amount": "2.00"})).await;

    let sales = call(
        &s,
        "GET",
        &format!("/api/v1/apps/{id}/sales?numberOfDays=3"),
        Some(&auth),
        None,
    )
    .await;
    assert_eq!(sales.status, 200, "{}", sales.text);
    let sales = sales.json();
    assert_eq!(sales["salesCount"], 2);
    let series = sales["series"].as_array().expect("series");
    assert_eq!(series.len(), 3);
    assert_eq!(series[2]["salesCount"], 2, "today's: {sales}");
    assert!(series[2]["label"].as_str().is_some_and(|l| l.len() == 6));

    let top = call(&s, "GET", &format!("/api/v1/apps/{id}/top-items"), Some(&auth), None)
        .await
        .json();
    assert_eq!(
        top,
        json!([
            {"itemCode": "tea", "title": "Green tea", "salesCount": 2, "total": "3.00", "totalFormatted": "3.00 USD"},
            {"itemCode": "gift", "title": "Gift", "salesCount": 1, "total": "7.50", "totalFormatted": "7.50 USD"},
            {"itemCode": "cake", "title": "Cake", "salesCount": 1, "total": "3.00", "totalFormatted": "3.00 USD"},
        ])
    );
    let page = call(
        &s,
        "GET",
        &format!("/api/v1/apps/{id}/top-items?offset=1&count=1"),
        Some(&auth),
        None,
    )
    .await
    .json();
    assert_eq!(page.as_array().map(Vec::len), Some(1));
    assert_eq!(page[0]["itemCode"], "gift", "more money ranks first among equal units");
}
