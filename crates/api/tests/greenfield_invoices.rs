//! Greenfield invoices over HTTP on both backends, paid on the dev rails: Lightning from
//! outside, a Flash user paying inside the ledger, on-chain with confirmations and a reorg,
//! under- and late payment, on-chain then the rest over a renewed BOLT11 (renewed again when
//! the partial payment goes), marking by hand, the list's filters, idempotent creation, and
//! refusals that write nothing. The invoice watcher runs as in flashd; the outbox is read to
//! check the events each change appends.

mod common;

use std::time::Duration;

use common::*;
use flash_merchant::watcher::PassKind;
use serde_json::{json, Value};

flash_store::on_both_backends!(
    lightning_from_outside_settles_and_appends_btcpays_events,
    a_flash_user_pays_a_store_invoice_inside_the_ledger,
    fiat_partial_on_chain_then_the_rest_over_lightning,
    a_partial_payment_that_goes_renews_the_bolt11_again,
    expiry_then_a_late_payment,
    a_reorg_moves_a_settled_invoice_back,
    marking_by_hand_is_final,
    lists_filter_archive_and_idempotent_creation,
    bad_input_is_refused_as_btcpay_does_and_writes_nothing,
);

/// A Greenfield request: `auth` is the whole `Authorization` header value.
async fn call(s: &TestServer, method: &str, path: &str, auth: &str, body: Option<&Value>) -> Resp {
    s.greenfield(method, path, Some(auth), body, &[]).await
}

/// A member's owner credential, a store of theirs, and the running invoice watcher.
struct Shop {
    owner: Member,
    auth: String,
    store: String,
}

async fn shop(s: &TestServer, settings: Value) -> Shop {
    let owner = s.member().await;
    let auth = format!("Bearer {}", owner.token);
    let mut body = json!({"name": "Tea shop"});
    if let (Some(b), Value::Object(extra)) = (body.as_object_mut(), settings) {
        b.extend(extra);
    }
    let r = call(s, "POST", "/api/v1/stores", &auth, Some(&body)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let store = r.json()["id"].as_str().expect("store id").to_string();
    Shop { owner, auth, store }
}

async fn create(s: &TestServer, shop: &Shop, body: Value) -> Value {
    let r = call(
        s,
        "POST",
        &format!("/api/v1/stores/{}/invoices", shop.store),
        &shop.auth,
        Some(&body),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

async fn get(s: &TestServer, shop: &Shop, id: &str) -> Value {
    let r = call(s, "GET", &format!("/api/v1/invoices/{id}"), &shop.auth, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json()
}

async fn methods(s: &TestServer, shop: &Shop, id: &str) -> Vec<Value> {
    let r = call(
        s,
        "GET",
        &format!("/api/v1/stores/{}/invoices/{id}/payment-methods", shop.store),
        &shop.auth,
        None,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.json().as_array().expect("methods").clone()
}

fn destination(methods: &[Value], id: &str) -> String {
    methods
        .iter()
        .find(|m| m["paymentMethodId"] == id)
        .and_then(|m| m["destination"].as_str())
        .unwrap_or_else(|| panic!("no {id} in {methods:?}"))
        .to_string()
}

/// Waits (a few seconds at most) until the invoice shows `status` and `additional`.
async fn until(s: &TestServer, shop: &Shop, id: &str, status: &str, additional: &str) -> Value {
    for _ in 0..100 {
        let invoice = get(s, shop, id).await;
        if invoice["status"] == status && invoice["additionalStatus"] == additional {
            return invoice;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let invoice = get(s, shop, id).await;
    panic!("invoice never became {status}/{additional}: {invoice}");
}

fn types(events: &[(String, Value)]) -> Vec<&str> {
    events.iter().map(|(t, _)| t.as_str()).collect()
}

async fn lightning_from_outside_settles_and_appends_btcpays_events(backend: Backend) {
    let s = TestServer::start(backend).await;
    let _watcher = s.watch_invoices();
    let shop = shop(&s, json!({})).await;
    let invoice = create(
        &s,
        &shop,
        json!({"amount": "0.0001", "currency": "BTC", "metadata": {"orderId": "order-1", "itemDesc": "Pu Erh"}}),
    )
    .await;
    let id = invoice["id"].as_str().expect("id");
    assert_eq!(
        (
            &invoice["amount"],
            &invoice["currency"],
            &invoice["type"],
            &invoice["status"],
            &invoice["additionalStatus"]
        ),
        (
            &json!("0.0001"),
            &json!("BTC"),
            &json!("Standard"),
            &json!("New"),
            &json!("None")
        )
    );
    assert_eq!(invoice["checkoutLink"], json!(s.url(&format!("/i/{id}"))));
    assert_eq!(invoice["metadata"]["orderId"], "order-1");
    assert_eq!(invoice["checkout"]["speedPolicy"], "MediumSpeed");
    assert_eq!(
        invoice["availableStatusesForManualMarking"],
        json!(["Settled", "Invalid"])
    );
    assert_eq!(
        invoice["expirationTime"].as_i64().expect("expiry") - invoice["createdTime"].as_i64().expect("created"),
        900
    );

    let ms = methods(&s, &shop, id).await;
    assert_eq!(ms.len(), 2, "{ms:?}");
    let bolt11 = destination(&ms, "BTC-LN");
    let address = destination(&ms, "BTC-CHAIN");
    let chain = ms.iter().find(|m| m["paymentMethodId"] == "BTC-CHAIN").expect("chain");
    assert_eq!(
        chain["paymentLink"],
        json!(format!("bitcoin:{address}?amount=0.0001&lightning={bolt11}"))
    );
    assert_eq!(
        (&chain["amount"], &chain["due"], &chain["rate"]),
        (&json!("0.0001"), &json!("0.0001"), &json!("1"))
    );

    let before = s.balance(&shop.owner).await;
    s.pay_from_outside(&bolt11).await;
    let paid = until(&s, &shop, id, "Settled", "None").await;
    assert_eq!(paid["paidAmount"], "0.0001");
    assert_eq!(
        s.balance(&shop.owner).await - before,
        10_000,
        "the store's wallet got the payment"
    );
    let ln = methods(&s, &shop, id).await;
    let ln = ln
        .iter()
        .find(|m| m["paymentMethodId"] == "BTC-LN")
        .expect("ln")
        .clone();
    assert_eq!((&ln["paymentMethodPaid"], &ln["due"]), (&json!("0.0001"), &json!("0")));
    assert_eq!(ln["payments"][0]["status"], "Settled");
    assert_eq!(ln["payments"][0]["value"], "0.0001");

    let evs = s.merchant_events("invoiceId", id).await;
    assert_eq!(
        types(&evs),
        [
            "InvoiceCreated",
            "InvoiceReceivedPayment",
            "InvoiceProcessing",
            "InvoiceSettled",
            "InvoicePaymentSettled"
        ]
    );
    let settled = &evs[3].1;
    assert_eq!(
        (
            &settled["storeId"],
            &settled["metadata"]["orderId"],
            &settled["manuallyMarked"],
            &settled["overPaid"]
        ),
        (&json!(shop.store), &json!("order-1"), &json!(false), &json!(false))
    );
    assert_eq!(evs[1].1["paymentMethodId"], "BTC-LN");
    assert_eq!(evs[1].1["afterExpiration"], false);
    // Refreshing again changes nothing and appends nothing.
    s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep");
    assert_eq!(s.merchant_events("invoiceId", id).await.len(), 5);
    s.journals().await;
}

async fn a_flash_user_pays_a_store_invoice_inside_the_ledger(backend: Backend) {
    let s = TestServer::start(backend).await;
    let _watcher = s.watch_invoices();
    let shop = shop(&s, json!({})).await;
    let buyer = s.member().await;
    s.fund(&buyer.wallet_id, 50_000).await;
    let invoice = create(&s, &shop, json!({"amount": "2100", "currency": "SATS"})).await;
    let id = invoice["id"].as_str().expect("id");
    let bolt11 = destination(&methods(&s, &shop, id).await, "BTC-LN");
    let r = s
        .gql(
            Some(&buyer.token),
            "mutation($input: LnInvoicePaymentInput!) { lnInvoicePaymentSend(input: $input) { status errors { code message } } }",
            json!({"input": {"walletId": buyer.wallet_id, "paymentRequest": bolt11}}),
        )
        .await;
    assert_eq!(data(&r, "lnInvoicePaymentSend")["status"], "SUCCESS", "{r}");
    let paid = until(&s, &shop, id, "Settled", "None").await;
    assert_eq!(paid["paidAmount"], "2100");
    assert_eq!(s.balance(&buyer).await, 50_000 - 2_100, "no fee inside the ledger");
    assert_eq!(s.balance(&shop.owner).await, 2_100);
    s.journals().await;
}

async fn fiat_partial_on_chain_then_the_rest_over_lightning(backend: Backend) {
    let s = TestServer::start(backend).await;
    let _watcher = s.watch_invoices();
    let shop = shop(&s, json!({"speedPolicy": "HighSpeed"})).await;
    let invoice = create(&s, &shop, json!({"amount": "5.00", "currency": "usd"})).await;
    let id = invoice["id"].as_str().expect("id");
    assert_eq!((&invoice["currency"], &invoice["amount"]), (&json!("USD"), &json!("5")));
    let ms = methods(&s, &shop, id).await;
    let rate = ms[0]["rate"].as_str().expect("rate").to_string();
    assert!(rate.parse::<f64>().is_ok_and(|r| r > 0.0), "a locked rate: {rate}");
    let due = sats(&ms[0]["amount"]);
    assert!(due > 0);
    let whole = destination(&ms, "BTC-LN");

    // A third on-chain (seen in the mempool: HighSpeed counts it at once): partly paid.
    s.state
        .bank
        .dev_chain_deposit(&destination(&ms, "BTC-CHAIN"), due / 3)
        .await
        .expect("deposit");
    until(&s, &shop, id, "New", "PaidPartial").await;
    // The BOLT11 for the whole amount gives way to one for the rest, as BTCPay does.
    let rest = due - due / 3;
    let ms = until_lightning_renewed(&s, &shop, id, &whole).await;
    let bolt11 = destination(&ms, "BTC-LN");
    let renewed = s
        .state
        .bank
        .ln_invoice_by_request(&bolt11)
        .await
        .expect("renewed BOLT11");
    assert_eq!(renewed.amount, Some(rest));
    let ln = ms.iter().find(|m| m["paymentMethodId"] == "BTC-LN").expect("BTC-LN");
    assert_eq!(
        (sats(&ln["due"]), &ln["paymentLink"]),
        (rest, &json!(format!("lightning:{bolt11}")))
    );
    let chain = ms
        .iter()
        .find(|m| m["paymentMethodId"] == "BTC-CHAIN")
        .expect("BTC-CHAIN");
    let uri = chain["paymentLink"].as_str().expect("BIP21");
    assert!(
        uri.contains(&format!("amount={}", ln["due"].as_str().expect("due")))
            && uri.ends_with(&format!("lightning={bolt11}")),
        "the BIP21 asks the rest, with the renewed BOLT11: {uri}"
    );
    // The old one is withdrawn: neither the node nor the bank takes a payment of it.
    let outside = s
        .admin(
            "mutation($input: DevLightningPayInvoiceInput!) { devLightningPayInvoice(input: $input) { \
             success errors { code message } } }",
            json!({ "input": { "paymentRequest": whole } }),
        )
        .await;
    assert_eq!(data(&outside, "devLightningPayInvoice")["success"], false, "{outside}");
    let buyer = s.member().await;
    s.fund(&buyer.wallet_id, 50_000).await;
    let inside = s
        .gql(
            Some(&buyer.token),
            "mutation($input: LnInvoicePaymentInput!) { lnInvoicePaymentSend(input: $input) { status errors { code message } } }",
            json!({"input": {"walletId": buyer.wallet_id, "paymentRequest": whole}}),
        )
        .await;
    assert_eq!(
        data(&inside, "lnInvoicePaymentSend")["errors"][0]["code"],
        "INVOICE_EXPIRED",
        "{inside}"
    );
    assert_eq!(s.balance(&buyer).await, 50_000);

    // The rest over Lightning: paid exactly.
    s.pay_from_outside(&bolt11).await;
    let paid = until(&s, &shop, id, "Settled", "None").await;
    let ms = methods(&s, &shop, id).await;
    let total: i64 = ms
        .iter()
        .flat_map(|m| m["payments"].as_array().cloned().unwrap_or_default())
        .map(|p| sats(&p["value"]))
        .sum();
    assert_eq!(total, due);
    assert!(ms
        .iter()
        .all(|m| m["payments"].as_array().is_some_and(|p| p.len() == 1)));
    let ln_payment = &ms.iter().find(|m| m["paymentMethodId"] == "BTC-LN").expect("BTC-LN")["payments"][0];
    assert_eq!(ln_payment["destination"], json!(bolt11));
    let paid_usd: f64 = paid["paidAmount"].as_str().expect("paid").parse().expect("usd");
    assert!((paid_usd - 5.0).abs() < 0.011, "paid in full, to the cent: {paid_usd}");
    let evs = s.merchant_events("invoiceId", id).await;
    assert_eq!(
        types(&evs),
        [
            "InvoiceCreated",
            "InvoiceReceivedPayment",
            "InvoicePaymentSettled",
            "InvoiceReceivedPayment",
            "InvoiceProcessing",
            "InvoiceSettled",
            "InvoicePaymentSettled"
        ]
    );
    assert_eq!(evs[5].1["overPaid"], false);
    s.journals().await;
}

/// A BTC amount string in satoshis.
fn sats(btc: &Value) -> i64 {
    let text = btc.as_str().unwrap_or_else(|| panic!("a BTC amount: {btc}"));
    (text.parse::<f64>().expect("btc") * 1e8).round() as i64
}

/// The invoice's current BOLT11 and the amount it asks.
async fn bolt11_asks(s: &TestServer, shop: &Shop, id: &str) -> (String, Option<i64>) {
    let bolt11 = destination(&methods(s, shop, id).await, "BTC-LN");
    let invoice = s.state.bank.ln_invoice_by_request(&bolt11).await.expect("BOLT11");
    (bolt11, invoice.amount)
}

/// The invoice's payment methods once its BOLT11 is no longer `before`.
async fn until_lightning_renewed(s: &TestServer, shop: &Shop, id: &str, before: &str) -> Vec<Value> {
    for _ in 0..100 {
        let ms = methods(s, shop, id).await;
        if destination(&ms, "BTC-LN") != before {
            return ms;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the invoice's BOLT11 was never renewed");
}

async fn a_partial_payment_that_goes_renews_the_bolt11_again(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, json!({"speedPolicy": "HighSpeed"})).await;
    let invoice = create(&s, &shop, json!({"amount": "3000", "currency": "SATS"})).await;
    let id = invoice["id"].as_str().expect("id");
    let sweep = || async { s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep") };
    let ms = methods(&s, &shop, id).await;
    let (whole, amount) = bolt11_asks(&s, &shop, id).await;
    assert_eq!(amount, Some(3_000));

    s.state
        .bank
        .dev_chain_deposit(&destination(&ms, "BTC-CHAIN"), 1_000)
        .await
        .expect("deposit");
    s.state.bank.dev_chain_mine(1).await.expect("mine");
    sweep().await;
    let (rest, amount) = bolt11_asks(&s, &shop, id).await;
    assert_eq!(amount, Some(2_000));
    assert_ne!(rest, whole);
    // A second sweep finds nothing to renew.
    sweep().await;
    assert_eq!(bolt11_asks(&s, &shop, id).await, (rest.clone(), Some(2_000)));

    // The block goes and its transaction with it: nothing is paid, so the whole amount is due.
    s.state.bank.dev_chain_reorg(1, true).await.expect("reorg");
    sweep().await;
    let again = get(&s, &shop, id).await;
    assert_eq!(
        (&again["status"], &again["additionalStatus"]),
        (&json!("New"), &json!("None"))
    );
    let (fresh, amount) = bolt11_asks(&s, &shop, id).await;
    assert_eq!(amount, Some(3_000));
    assert!(fresh != whole && fresh != rest);
    for old in [&whole, &rest] {
        let old = s.state.bank.ln_invoice_by_request(old).await.expect("old BOLT11");
        assert_eq!(old.status, flash_bank::InvoiceStatus::Expired, "withdrawn");
    }
    s.pay_from_outside(&fresh).await;
    sweep().await;
    let paid = get(&s, &shop, id).await;
    assert_eq!(
        (&paid["status"], &paid["paidAmount"]),
        (&json!("Settled"), &json!("3000"))
    );
    s.journals().await;
}

async fn expiry_then_a_late_payment(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, json!({"speedPolicy": "HighSpeed"})).await;
    let invoice = create(
        &s,
        &shop,
        json!({"amount": "1000", "currency": "SATS", "checkout": {"expirationMinutes": 1, "monitoringMinutes": 60}}),
    )
    .await;
    let id = invoice["id"].as_str().expect("id");
    let address = destination(&methods(&s, &shop, id).await, "BTC-CHAIN");
    s.advance_secs(61);
    s.state.merchant.watch_pass(PassKind::Due).await.expect("pass");
    let expired = get(&s, &shop, id).await;
    assert_eq!(
        (&expired["status"], &expired["additionalStatus"]),
        (&json!("Expired"), &json!("None"))
    );
    s.state.bank.dev_chain_deposit(&address, 1_000).await.expect("deposit");
    s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep");
    let late = get(&s, &shop, id).await;
    assert_eq!(
        (&late["status"], &late["additionalStatus"]),
        (&json!("Expired"), &json!("PaidLate"))
    );
    let evs = s.merchant_events("invoiceId", id).await;
    assert_eq!(
        types(&evs),
        [
            "InvoiceCreated",
            "InvoiceExpired",
            "InvoiceReceivedPayment",
            "InvoicePaymentSettled"
        ]
    );
    assert_eq!(evs[1].1["partiallyPaid"], false);
    assert_eq!(evs[2].1["afterExpiration"], true);
    // Past the monitoring window nothing watches it any more.
    s.advance_secs(3_600);
    assert_eq!(s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep"), 0);
}

async fn a_reorg_moves_a_settled_invoice_back(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, json!({})).await;
    let invoice = create(&s, &shop, json!({"amount": "0.00005", "currency": "BTC"})).await;
    let id = invoice["id"].as_str().expect("id");
    let address = destination(&methods(&s, &shop, id).await, "BTC-CHAIN");
    let sweep = || async { s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep") };

    s.state.bank.dev_chain_deposit(&address, 5_000).await.expect("deposit");
    sweep().await;
    let seen = get(&s, &shop, id).await;
    assert_eq!(seen["status"], "Processing", "MediumSpeed waits for a confirmation");
    s.state.bank.dev_chain_mine(1).await.expect("mine");
    sweep().await;
    assert_eq!(get(&s, &shop, id).await["status"], "Settled");
    // The block is replaced and the transaction is back in the mempool: unconfirmed again.
    s.state.bank.dev_chain_reorg(1, false).await.expect("reorg");
    sweep().await;
    assert_eq!(get(&s, &shop, id).await["status"], "Processing");
    s.state.bank.dev_chain_mine(1).await.expect("mine");
    sweep().await;
    assert_eq!(get(&s, &shop, id).await["status"], "Settled");
    let settled = types(&s.merchant_events("invoiceId", id).await)
        .into_iter()
        .filter(|t| *t == "InvoiceSettled")
        .count();
    assert_eq!(settled, 2, "settled, moved back, settled again");
}

async fn marking_by_hand_is_final(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, json!({})).await;
    let id = create(&s, &shop, json!({"amount": "10", "currency": "SATS"})).await["id"]
        .as_str()
        .expect("id")
        .to_string();
    let mark = |status: &str| {
        let body = json!({ "status": status });
        let path = format!("/api/v1/stores/{}/invoices/{id}/status", shop.store);
        let auth = shop.auth.clone();
        let s = &s;
        async move { call(s, "POST", &path, &auth, Some(&body)).await }
    };
    let r = mark("Invalid").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        (
            &r.json()["status"],
            &r.json()["additionalStatus"],
            &r.json()["availableStatusesForManualMarking"]
        ),
        (&json!("Invalid"), &json!("Marked"), &json!(["Settled"]))
    );
    assert_eq!(mark("Invalid").await.status, 422, "already invalid");
    assert_eq!(mark("Processing").await.status, 422, "only Settled or Invalid");
    let r = mark("Settled").await;
    assert_eq!(
        (r.json()["status"].clone(), r.json()["additionalStatus"].clone()),
        (json!("Settled"), json!("Marked"))
    );
    // A payment now changes nothing: marked is final.
    let bolt11 = destination(&methods(&s, &shop, &id).await, "BTC-LN");
    s.pay_from_outside(&bolt11).await;
    s.state.merchant.watch_pass(PassKind::Sweep).await.expect("sweep");
    assert_eq!(get(&s, &shop, &id).await["additionalStatus"], "Marked");
    let evs = s.merchant_events("invoiceId", &id).await;
    assert_eq!(types(&evs), ["InvoiceCreated", "InvoiceInvalid", "InvoiceSettled"]);
    assert_eq!(
        (&evs[1].1["manuallyMarked"], &evs[2].1["manuallyMarked"]),
        (&json!(true), &json!(true))
    );
}

async fn lists_filter_archive_and_idempotent_creation(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, json!({})).await;
    let mut ids = Vec::new();
    for (order, item) in [("A-1", "green tea"), ("A-2", "black tea"), ("B-1", "coffee")] {
        let inv = create(
            &s,
            &shop,
            json!({"amount": "100", "currency": "SATS", "metadata": {"orderId": order, "itemDesc": item}}),
        )
        .await;
        ids.push(inv["id"].as_str().expect("id").to_string());
        s.advance_secs(1);
    }
    let list = |query: &str| {
        let path = format!("/api/v1/stores/{}/invoices{query}", shop.store);
        let (s, auth) = (&s, shop.auth.clone());
        async move {
            let r = call(s, "GET", &path, &auth, None).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.json()
                .as_array()
                .expect("list")
                .iter()
                .map(|i| i["id"].as_str().expect("id").to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list("").await,
        [ids[2].clone(), ids[1].clone(), ids[0].clone()],
        "newest first"
    );
    assert_eq!(list("?orderId=A-1&orderId=B-1").await, [ids[2].clone(), ids[0].clone()]);
    assert_eq!(list("?textSearch=TEA").await, [ids[1].clone(), ids[0].clone()]);
    assert_eq!(list("?skip=1&take=1").await, [ids[1].clone()]);
    assert_eq!(list("?status=Settled").await, Vec::<String>::new());
    // As ASP.NET routes it, a trailing slash names the same route (btcpay-python-sdk sends one).
    assert_eq!(list("/?orderId=A-1").await, [ids[0].clone()]);
    let r = call(&s, "GET", "/api/v1/no-such-route/", &shop.auth, None).await;
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!("not-found")));
    assert_eq!(list("?status=New").await.len(), 3);
    let with = call(
        &s,
        "GET",
        &format!(
            "/api/v1/stores/{}/invoices?take=1&includePaymentMethods=true",
            shop.store
        ),
        &shop.auth,
        None,
    )
    .await;
    assert_eq!(with.json()[0]["paymentMethods"].as_array().map(Vec::len), Some(2));

    // Archived invoices leave the list until unarchived.
    let r = call(&s, "DELETE", &format!("/api/v1/invoices/{}", ids[0]), &shop.auth, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(list("").await.len(), 2);
    assert_eq!(list("?includeArchived=true").await.len(), 3);
    let r = call(
        &s,
        "POST",
        &format!("/api/v1/invoices/{}/unarchive", ids[0]),
        &shop.auth,
        None,
    )
    .await;
    assert_eq!(r.json()["archived"], false);
    assert_eq!(list("").await.len(), 3);

    // Metadata changes by PUT, and the order id index follows it.
    let r = call(
        &s,
        "PUT",
        &format!("/api/v1/stores/{}/invoices/{}", shop.store, ids[0]),
        &shop.auth,
        Some(&json!({"metadata": {"orderId": "C-9"}})),
    )
    .await;
    assert_eq!(r.json()["metadata"], json!({"orderId": "C-9"}));
    assert_eq!(list("?orderId=C-9").await, [ids[0].clone()]);

    // The same Idempotency-Key answers the first invoice.
    let path = format!("/api/v1/stores/{}/invoices", shop.store);
    let body = json!({"amount": "7", "currency": "SATS"});
    let key = [("idempotency-key", "k-1")];
    let first = s.greenfield("POST", &path, Some(&shop.auth), Some(&body), &key).await;
    let again = s.greenfield("POST", &path, Some(&shop.auth), Some(&body), &key).await;
    assert_eq!(first.json()["id"], again.json()["id"]);
    assert_eq!(list("").await.len(), 4);
}

async fn bad_input_is_refused_as_btcpay_does_and_writes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, json!({})).await;
    let other = {
        let r = call(
            &s,
            "POST",
            "/api/v1/stores",
            &shop.auth,
            Some(&json!({"name": "Other"})),
        )
        .await;
        r.json()["id"].as_str().expect("id").to_string()
    };
    let theirs = create(
        &s,
        &Shop {
            owner: s.member().await,
            auth: shop.auth.clone(),
            store: other.clone(),
        },
        json!({"amount": "1", "currency": "SATS"}),
    )
    .await;
    let theirs = theirs["id"].as_str().expect("id").to_string();
    let count = || async {
        s.state
            .bank
            .store_for_tests()
            .db()
            .query("SELECT COUNT(*) FROM merchant_invoices", Vec::new())
            .await
            .expect("count")[0]
            .int(0)
            .expect("n")
    };
    let before = count().await;
    let path = format!("/api/v1/stores/{}/invoices", shop.store);
    for (body, field) in [
        (json!({"amount": "abc", "currency": "BTC"}), "amount"),
        (json!({"amount": "-1", "currency": "BTC"}), "amount"),
        (json!({"amount": "0", "currency": "BTC"}), "amount"),
        (json!({"amount": "0.000000001", "currency": "BTC"}), "amount"),
        (json!({"amount": "1.001", "currency": "USD"}), "amount"),
        (json!({"amount": "1", "currency": "US1"}), "currency"),
        (json!({"amount": "1", "currency": "XBT"}), "currency"),
        (
            json!({"amount": "1", "currency": "BTC", "metadata": {"blob": "x".repeat(20_000)}}),
            "metadata",
        ),
        (
            json!({"amount": "1", "currency": "BTC", "metadata": "order"}),
            "metadata",
        ),
        (
            json!({"amount": "1", "currency": "BTC", "checkout": {"speedPolicy": "Warp"}}),
            "checkout.speedPolicy",
        ),
        (
            json!({"amount": "1", "currency": "BTC", "checkout": {"paymentMethods": ["LTC"]}}),
            "checkout.paymentMethods[0]",
        ),
        (
            json!({"amount": "1", "currency": "BTC", "checkout": {"expirationMinutes": 0}}),
            "checkout.expirationMinutes",
        ),
        (
            json!({"amount": "1", "currency": "BTC", "checkout": {"paymentTolerance": 101}}),
            "checkout.paymentTolerance",
        ),
        (
            json!({"amount": "1", "currency": "BTC", "checkout": {"redirectURL": "javascript:alert(1)"}}),
            "checkout.redirectURL",
        ),
    ] {
        let r = call(&s, "POST", &path, &shop.auth, Some(&body)).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
        let errors = r.json();
        assert!(
            errors
                .as_array()
                .is_some_and(|e| e.iter().any(|e| e["path"] == field && e["message"].is_string())),
            "{body}: {errors}"
        );
    }
    let r = call(&s, "POST", &path, &shop.auth, Some(&json!([1]))).await;
    assert_eq!(r.status, 422);

    // Unknown store; a key scoped to one store asking for another store's invoice; a missing
    // permission; another account's invoice.
    let r = call(
        &s,
        "POST",
        "/api/v1/stores/nope/invoices",
        &shop.auth,
        Some(&json!({"amount": "1"})),
    )
    .await;
    // BTCPay checks the permission on the store before looking it up: 403, as for a store of
    // another account.
    assert_eq!((r.status, r.json()["code"].clone()), (403, json!("missing-permission")));
    let scoped = {
        let r = call(
            &s,
            "POST",
            "/api/v1/api-keys",
            &shop.auth,
            Some(
                &json!({"permissions": [format!("btcpay.store.canviewinvoices:{}", shop.store),
                                          format!("btcpay.store.cancreateinvoice:{}", shop.store)]}),
            ),
        )
        .await;
        format!("token {}", r.json()["apiKey"].as_str().expect("key"))
    };
    let r = call(&s, "GET", &format!("/api/v1/invoices/{theirs}"), &scoped, None).await;
    assert_eq!((r.status, r.json()["code"].clone()), (403, json!("missing-permission")));
    let r = call(
        &s,
        "GET",
        &format!("/api/v1/stores/{}/invoices/{theirs}", shop.store),
        &scoped,
        None,
    )
    .await;
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!("invoice-not-found")));
    let r = call(
        &s,
        "POST",
        &format!("/api/v1/stores/{other}/invoices"),
        &scoped,
        Some(&json!({"amount": "1"})),
    )
    .await;
    assert_eq!((r.status, r.json()["code"].clone()), (403, json!("missing-permission")));
    let r = call(
        &s,
        "POST",
        &format!("/api/v1/invoices/{theirs}/status"),
        &scoped,
        Some(&json!({"status": "Settled"})),
    )
    .await;
    assert_eq!(
        (r.status, r.json()["missingPermission"].clone()),
        (403, json!("btcpay.store.canmodifyinvoices"))
    );
    let stranger = s.member().await;
    let r = call(
        &s,
        "GET",
        &format!("/api/v1/invoices/{theirs}"),
        &format!("Bearer {}", stranger.token),
        None,
    )
    .await;
    assert_eq!((r.status, r.json()["code"].clone()), (404, json!("invoice-not-found")));
    let r = call(&s, "GET", "/api/v1/invoices/nope", &shop.auth, None).await;
    assert_eq!(r.status, 404);
    assert_eq!(count().await, before, "no refusal wrote an invoice");
    // And the scoped key does create in its own store.
    let r = call(
        &s,
        "POST",
        &path,
        &scoped,
        Some(&json!({"amount": "1", "currency": "SATS"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
}
