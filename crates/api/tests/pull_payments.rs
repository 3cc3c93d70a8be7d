//! Greenfield pull payments and payouts over HTTP on both backends, paid on the dev rails: a
//! budget set aside on the ledger and claimed to every kind of destination, approval,
//! cancellation and payouts marked paid with their webhook events, concurrent claims against
//! one budget, an attempt repeated by two drivers at once, the budget's return when the pull
//! payment is archived, bad input that changes nothing, and invoice refunds of every variant.
//! Flash Cards linked to a pull payment (`…/boltcards`, driven by a simulated Bolt Card): taps
//! bounded by what the pull payment has left, a withdrawal claimed once per tap and paid by
//! the payout driver (also at a checkout page), and a live card linked again only for a tap of
//! it.

mod common;

use common::*;
use flash_merchant::boltcard::testing::SimulatedCard;
use serde_json::{json, Value};

flash_store::on_both_backends!(
    claims_to_every_destination_kind_are_paid_and_the_rest_goes_back,
    approval_cancel_and_mark_paid_with_their_events,
    concurrent_claims_never_exceed_the_budget,
    two_drivers_pay_an_attempt_once,
    bad_input_changes_nothing,
    refunds_are_pull_payments_of_each_variant,
    a_linked_card_spends_from_the_pull_payment,
    a_live_card_is_linked_again_only_for_a_tap_of_it,
    two_callbacks_for_one_card_tap_claim_once,
    a_card_of_a_pull_payment_needing_approval_waits_for_it,
    bad_card_links_change_nothing,
    a_pull_payment_card_pays_at_the_checkout,
);

/// A Greenfield request with a whole `Authorization` value (none: a public route).
async fn call(s: &TestServer, method: &str, path: &str, auth: Option<&str>, body: Option<Value>) -> Resp {
    s.greenfield(method, path, auth, body.as_ref(), &[]).await
}

/// `call`, asserting a 200; the JSON answer (`null` when empty).
async fn ok(s: &TestServer, method: &str, path: &str, auth: Option<&str>, body: Option<Value>) -> Value {
    let r = call(s, method, path, auth, body).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
    if r.text.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

/// A store owner with `funds` sats (none when 0) in the store's wallet.
struct Shop {
    owner: Member,
    auth: String,
    store: String,
}

async fn shop(s: &TestServer, funds: i64) -> Shop {
    let owner = s.member().await;
    if funds > 0 {
        s.fund(&owner.wallet_id, funds).await;
    }
    let auth = format!("Bearer {}", owner.token);
    let store = ok(
        s,
        "POST",
        "/api/v1/stores",
        Some(&auth),
        Some(json!({"name": "Tea shop"})),
    )
    .await["id"]
        .as_str()
        .expect("store id")
        .to_string();
    Shop { owner, auth, store }
}

/// Creates a pull payment; its id.
async fn pull_payment(s: &TestServer, shop: &Shop, body: Value) -> String {
    let created = ok(
        s,
        "POST",
        &format!("/api/v1/stores/{}/pull-payments", shop.store),
        Some(&shop.auth),
        Some(body),
    )
    .await;
    created["id"].as_str().expect("pull payment id").to_string()
}

/// Claims from a pull payment; the answer.
async fn claim(s: &TestServer, pp: &str, body: Value) -> Resp {
    call(
        s,
        "POST",
        &format!("/api/v1/pull-payments/{pp}/payouts"),
        None,
        Some(body),
    )
    .await
}

/// Runs payout passes (and on-chain batches) until every payout of `pp` is in a final state
/// or waits for approval.
async fn settle(s: &TestServer, pp: &str) -> Vec<Value> {
    for _ in 0..50 {
        s.state.merchant.run_payout_pass().await.expect("payout pass");
        s.state.bank.onchain_payout_pass(true).await.expect("on-chain batch");
        s.state.bank.dev_chain_mine(1).await.expect("mine");
        s.state.bank.onchain_sync().await.expect("chain sync");
        let payouts = ok(s, "GET", &format!("/api/v1/pull-payments/{pp}/payouts"), None, None).await;
        let list = payouts.as_array().cloned().unwrap_or_default();
        if list
            .iter()
            .all(|p| ["Completed", "Cancelled", "AwaitingApproval"].contains(&p["state"].as_str().unwrap_or("")))
        {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "payouts never settled: {}",
        ok(s, "GET", &format!("/api/v1/pull-payments/{pp}/payouts"), None, None).await
    );
}

/// The state of the payout `id` in `list`.
fn state_of<'a>(list: &'a [Value], id: &str) -> &'a str {
    list.iter()
        .find(|p| p["id"] == id)
        .and_then(|p| p["state"].as_str())
        .unwrap_or("missing")
}

/// Coins for the dev hot wallet: a deposit to a bystander, confirmed.
async fn hot_coins(s: &TestServer) {
    let whale = s.member().await;
    let r = s
        .gql(
            Some(&whale.token),
            "mutation($input: OnChainAddressCurrentInput!) { onChainAddressCurrent(input: $input) { address } }",
            json!({ "input": { "walletId": whale.wallet_id } }),
        )
        .await;
    let address = data(&r, "onChainAddressCurrent")["address"]
        .as_str()
        .expect("address")
        .to_string();
    s.admin(
        "mutation($input: DevChainDepositInput!) { devChainDeposit(input: $input) { txHash } }",
        json!({ "input": { "address": address, "amount": 1_000_000 } }),
    )
    .await;
    s.admin(
        "mutation($input: DevChainMineInput!) { devChainMine(input: $input) { height } }",
        json!({ "input": { "blocks": 3 } }),
    )
    .await;
    s.state.bank.onchain_sync().await.expect("chain sync");
}

async fn claims_to_every_destination_kind_are_paid_and_the_rest_goes_back(backend: Backend) {
    let s = TestServer::start(backend).await;
    hot_coins(&s).await;
    let shop = shop(&s, 100_000).await;
    let bob = s.named_member("bob").await;
    let pp = pull_payment(
        &s,
        &shop,
        json!({"name": "Refunds", "amount": "60000", "currency": "SATS", "autoApproveClaims": true}),
    )
    .await;
    assert_eq!(s.balance(&shop.owner).await, 40_000, "the budget is set aside");
    let public = ok(&s, "GET", &format!("/api/v1/pull-payments/{pp}"), None, None).await;
    assert_eq!(
        (
            public["amount"].as_str(),
            public["currency"].as_str(),
            public["autoApproveClaims"].as_bool()
        ),
        (Some("60000"), Some("SATS"), Some(true))
    );

    let other = other_node(flash_core::Network::Regtest);
    let bolt11 = external_invoice(&other, Some(1_000), 3_600).await;
    let outside = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";
    let claims = [
        json!({"destination": bolt11}),
        json!({"destination": "@bob", "amount": "2000"}),
        json!({"destination": format!("bob@{}", s.url("").trim_start_matches("http://")), "amount": "3000"}),
        json!({"destination": bob.wallet_id, "amount": "1500"}),
        json!({"destination": outside, "amount": "10000", "payoutMethodId": "BTC-CHAIN"}),
        json!({"destination": format!("bitcoin:{outside}?amount=0.0002")}),
    ];
    let mut ids = Vec::new();
    for body in claims {
        let r = claim(&s, &pp, body.clone()).await;
        assert_eq!(r.status, 200, "{body}: {}", r.text);
        assert_eq!(r.json()["state"], "AwaitingPayment", "{}", r.text);
        ids.push(r.json()["id"].as_str().expect("payout id").to_string());
    }
    let list = settle(&s, &pp).await;
    for id in &ids {
        assert_eq!(state_of(&list, id), "Completed", "{list:?}");
    }
    let proof = &list.iter().find(|p| p["id"] == ids[0]).expect("bolt11 payout")["paymentProof"];
    assert_eq!(proof["proofType"], "PayoutLightningBlob", "{proof}");
    let onchain = &list.iter().find(|p| p["id"] == ids[4]).expect("on-chain payout")["paymentProof"];
    assert_eq!(onchain["proofType"], "PayoutTransactionOnChainBlob", "{onchain}");
    assert_eq!(s.balance(&bob).await, 2_000 + 3_000 + 1_500, "paid inside the ledger");

    // What is left: 60,000 − 37,500 claimed, and what the on-chain fee reserves did not use
    // (back in the budget once their batch went out). More is refused, and nothing is written.
    let r = claim(&s, &pp, json!({"destination": "@bob", "amount": "30000"})).await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(
        ok(&s, "GET", &format!("/api/v1/pull-payments/{pp}/payouts"), None, None)
            .await
            .as_array()
            .map(Vec::len),
        Some(6)
    );
    let before = s.balance(&shop.owner).await;
    ok(
        &s,
        "DELETE",
        &format!("/api/v1/pull-payments/{pp}"),
        Some(&shop.auth),
        None,
    )
    .await;
    settle(&s, &pp).await;
    let returned = s.balance(&shop.owner).await - before;
    // The unclaimed 22,500 and what the on-chain fee reserves left over come back.
    assert!(returned >= 22_500, "returned {returned}");
    let r = claim(&s, &pp, json!({"destination": "@bob", "amount": "1"})).await;
    assert_eq!(r.status, 422, "archived: {}", r.text);
    let again = s.state.merchant.run_payout_pass().await.expect("pass");
    assert_eq!(again.returned, 0, "returned once");
}

async fn approval_cancel_and_mark_paid_with_their_events(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 50_000).await;
    s.named_member("carol").await;
    let pp = pull_payment(
        &s,
        &shop,
        json!({"name": "Prizes", "amount": "0.0003", "currency": "BTC"}),
    )
    .await;
    // A claim waiting for approval needs a BOLT11 that outlasts BOLT11Expiration (30 days).
    let other = other_node(flash_core::Network::Regtest);
    let short = external_invoice(&other, Some(1_000), 3_600).await;
    let r = claim(&s, &pp, json!({"destination": short})).await;
    assert_eq!(r.status, 422, "{}", r.text);

    let first = claim(&s, &pp, json!({"destination": "carol", "amount": "0.0001"}))
        .await
        .json();
    assert_eq!(first["state"], "AwaitingApproval", "{first}");
    assert_eq!(first["payoutAmount"], Value::Null, "set when approved");
    let id = first["id"].as_str().expect("id").to_string();
    let r = call(
        &s,
        "POST",
        &format!("/api/v1/payouts/{id}"),
        Some(&shop.auth),
        Some(json!({"revision": 7})),
    )
    .await;
    assert_eq!(r.status, 400, "a stale revision: {}", r.text);
    let approved = ok(
        &s,
        "POST",
        &format!("/api/v1/payouts/{id}"),
        Some(&shop.auth),
        Some(json!({"revision": 0})),
    )
    .await;
    assert_eq!(approved["state"], "AwaitingPayment");
    assert_eq!(approved["payoutAmount"], "0.0001");
    settle(&s, &pp).await;
    let events: Vec<String> = s
        .merchant_events("payoutId", &id)
        .await
        .into_iter()
        .map(|(kind, body)| format!("{kind}:{}", body["payoutState"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(
        events,
        [
            "PayoutCreated:AwaitingApproval",
            "PayoutApproved:AwaitingPayment",
            "PayoutUpdated:InProgress",
            "PayoutUpdated:Completed"
        ]
    );

    // Cancelled: never paid; marked paid: its money goes back to the store.
    let second = claim(&s, &pp, json!({"destination": "carol", "amount": "0.00005"}))
        .await
        .json();
    let second = second["id"].as_str().expect("id").to_string();
    ok(
        &s,
        "DELETE",
        &format!("/api/v1/payouts/{second}"),
        Some(&shop.auth),
        None,
    )
    .await;
    let r = call(
        &s,
        "DELETE",
        &format!("/api/v1/payouts/{second}"),
        Some(&shop.auth),
        None,
    )
    .await;
    assert_eq!(r.status, 400, "cancelled once: {}", r.text);
    let third = claim(&s, &pp, json!({"destination": "carol", "amount": "0.00005"}))
        .await
        .json();
    let third = third["id"].as_str().expect("id").to_string();
    let r = call(
        &s,
        "POST",
        &format!("/api/v1/payouts/{third}/mark-paid"),
        Some(&shop.auth),
        None,
    )
    .await;
    assert_eq!(r.status, 400, "not approved yet: {}", r.text);
    ok(
        &s,
        "POST",
        &format!("/api/v1/payouts/{third}"),
        Some(&shop.auth),
        Some(json!({})),
    )
    .await;
    let before = s.balance(&shop.owner).await;
    ok(
        &s,
        "POST",
        &format!("/api/v1/payouts/{third}/mark-paid"),
        Some(&shop.auth),
        None,
    )
    .await;
    assert_eq!(s.balance(&shop.owner).await - before, 5_000);
    let marked = ok(&s, "GET", &format!("/api/v1/payouts/{third}"), Some(&shop.auth), None).await;
    assert_eq!(marked["state"], "Completed");
    assert_eq!(marked["paymentProof"]["proofType"], "ManualPayoutProof");
    s.state.merchant.run_payout_pass().await.expect("pass");
    let list = ok(
        &s,
        "GET",
        &format!("/api/v1/pull-payments/{pp}/payouts?includeCancelled=true"),
        None,
        None,
    )
    .await;
    let list = list.as_array().cloned().unwrap_or_default();
    assert_eq!(
        (state_of(&list, &second), state_of(&list, &third)),
        ("Cancelled", "Completed")
    );
    // Another account's key sees none of it.
    let stranger = s.member().await;
    let r = call(
        &s,
        "GET",
        &format!("/api/v1/payouts/{id}"),
        Some(&format!("Bearer {}", stranger.token)),
        None,
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
}

async fn concurrent_claims_never_exceed_the_budget(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 30_000).await;
    let dave = s.named_member("dave").await;
    let pp = pull_payment(
        &s,
        &shop,
        json!({"amount": "20000", "currency": "SATS", "autoApproveClaims": true}),
    )
    .await;
    let path = format!("/api/v1/pull-payments/{pp}/payouts");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (http, url) = (reqwest::Client::new(), s.url(&path));
            tokio::spawn(async move {
                http.post(url)
                    .json(&json!({"destination": "@dave", "amount": "1000"}))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0)
            })
        })
        .collect();
    let mut accepted = 0;
    for t in tasks {
        match t.await.expect("task") {
            200 => accepted += 1,
            422 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(accepted, 20, "exactly the budget is claimed");
    settle(&s, &pp).await;
    assert_eq!(s.balance(&dave).await, 20_000);
}

async fn two_drivers_pay_an_attempt_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 10_000).await;
    let erin = s.named_member("erin").await;
    let pp = pull_payment(
        &s,
        &shop,
        json!({"amount": "5000", "currency": "SATS", "autoApproveClaims": true}),
    )
    .await;
    for _ in 0..5 {
        let r = claim(&s, &pp, json!({"destination": "@erin", "amount": "1000"})).await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let (a, b) = tokio::join!(s.state.merchant.run_payout_pass(), s.state.merchant.run_payout_pass());
    a.expect("first driver");
    b.expect("second driver");
    settle(&s, &pp).await;
    assert_eq!(s.balance(&erin).await, 5_000, "each payout paid once");
    assert_eq!(s.balance(&shop.owner).await, 5_000);
}

async fn bad_input_changes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 10_000).await;
    let create = format!("/api/v1/stores/{}/pull-payments", shop.store);
    for body in [
        json!({"amount": "-1", "currency": "SATS"}),
        json!({"amount": "abc"}),
        json!({"amount": "1.5", "currency": "SATS"}),
        json!({"amount": "100", "currency": "NOPE1"}),
        json!({"amount": "100", "currency": "SATS", "BOLT11Expiration": 9999}),
        json!({"amount": "100", "currency": "SATS", "expiresAt": 1}),
        json!({"amount": "100", "currency": "SATS", "payoutMethods": ["DOGE"]}),
        json!({"amount": "100", "currency": "SATS", "autoApproveClaims": "yes"}),
        json!({"amount": "20000", "currency": "SATS"}),
        json!([1, 2]),
    ] {
        let r = call(&s, "POST", &create, Some(&shop.auth), Some(body.clone())).await;
        assert!(r.status == 422 || r.status == 400, "{body}: {} {}", r.status, r.text);
    }
    assert_eq!(s.balance(&shop.owner).await, 10_000, "nothing set aside");
    let listed = ok(&s, "GET", &create, Some(&shop.auth), None).await;
    assert_eq!(listed, json!([]));

    let pp = pull_payment(&s, &shop, json!({"amount": "1000", "currency": "SATS"})).await;
    for body in [
        json!({}),
        json!({"destination": "not a destination at all"}),
        json!({"destination": "@nobody_here", "amount": "10"}),
        json!({"destination": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "amount": "100"}),
        json!({"destination": "@", "amount": "10"}),
        json!({"destination": "lnbc1invalid", "amount": "10"}),
        json!({"destination": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "amount": "100", "payoutMethodId": "BTC-LN"}),
        json!({"destination": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "amount": "0"}),
        json!({"destination": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "amount": "5000"}),
        json!({"destination": "bitcoin:bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080?amount=0.00001", "amount": "999"}),
    ] {
        let r = claim(&s, &pp, body.clone()).await;
        assert!(r.status == 422 || r.status == 400, "{body}: {} {}", r.status, r.text);
    }
    let payouts = ok(
        &s,
        "GET",
        &format!("/api/v1/pull-payments/{pp}/payouts?includeCancelled=true"),
        None,
        None,
    )
    .await;
    assert_eq!(payouts, json!([]), "no payout written");
    for (method, path) in [
        ("GET", "/api/v1/pull-payments/NoSuch".to_string()),
        ("POST", "/api/v1/pull-payments/NoSuch/payouts".to_string()),
        ("GET", "/api/v1/payouts/NoSuch".to_string()),
        ("DELETE", "/api/v1/payouts/NoSuch".to_string()),
        ("POST", "/api/v1/payouts/NoSuch/mark-paid".to_string()),
    ] {
        let auth = (method != "GET" || path.contains("/payouts/")).then_some(shop.auth.as_str());
        let r = call(
            &s,
            method,
            &path,
            auth,
            Some(json!({"destination": "@x", "amount": "1"})),
        )
        .await;
        assert_eq!(r.status, 404, "{method} {path}: {}", r.text);
    }
    let r = call(&s, "DELETE", &format!("/api/v1/pull-payments/{pp}"), None, None).await;
    assert_eq!(r.status, 401, "archiving needs a key: {}", r.text);
    assert_eq!(s.balance(&shop.owner).await, 9_000);
}

/// A settled invoice of `body`, paid over Lightning from outside; its id.
async fn paid_invoice(s: &TestServer, shop: &Shop, body: Value) -> String {
    let invoice = ok(
        s,
        "POST",
        &format!("/api/v1/stores/{}/invoices", shop.store),
        Some(&shop.auth),
        Some(body),
    )
    .await;
    let id = invoice["id"].as_str().expect("invoice id").to_string();
    let methods = ok(
        s,
        "GET",
        &format!("/api/v1/invoices/{id}/payment-methods"),
        Some(&shop.auth),
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
    for _ in 0..100 {
        let got = ok(s, "GET", &format!("/api/v1/invoices/{id}"), Some(&shop.auth), None).await;
        if got["status"] == "Settled" {
            return id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("invoice {id} never settled");
}

async fn refunds_are_pull_payments_of_each_variant(backend: Backend) {
    let s = TestServer::start(backend).await;
    let _watcher = s.watch_invoices();
    let shop = shop(&s, 0).await;
    let frank = s.named_member("frank").await;
    let refund = |id: &str| format!("/api/v1/invoices/{id}/refund");

    let unpaid = ok(
        &s,
        "POST",
        &format!("/api/v1/stores/{}/invoices", shop.store),
        Some(&shop.auth),
        Some(json!({"amount": "100", "currency": "SATS"})),
    )
    .await;
    let unpaid = unpaid["id"].as_str().expect("id").to_string();
    let r = call(
        &s,
        "POST",
        &refund(&unpaid),
        Some(&shop.auth),
        Some(json!({"refundVariant": "RateThen"})),
    )
    .await;
    assert_eq!(r.status, 422, "nothing paid: {}", r.text);

    let sats = paid_invoice(&s, &shop, json!({"amount": "5000", "currency": "SATS"})).await;
    for body in [
        json!({"refundVariant": "Nope"}),
        json!({}),
        json!({"refundVariant": "OverpaidAmount"}),
        json!({"refundVariant": "Custom", "customAmount": "10"}),
        json!({"refundVariant": "RateThen", "subtractPercentage": "100.5"}),
        json!({"refundVariant": "RateThen", "subtractPercentage": "1.234"}),
        json!({"refundVariant": "Custom", "customAmount": "6000", "customCurrency": "SATS"}),
    ] {
        let r = call(&s, "POST", &refund(&sats), Some(&shop.auth), Some(body.clone())).await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
    }
    let r = call(
        &s,
        "POST",
        &refund("NoSuchInvoice"),
        Some(&shop.auth),
        Some(json!({"refundVariant": "RateThen"})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);
    let listed = ok(
        &s,
        "GET",
        &format!("/api/v1/stores/{}/pull-payments", shop.store),
        Some(&shop.auth),
        None,
    )
    .await;
    assert_eq!(listed, json!([]), "no refund made");
    assert_eq!(s.balance(&shop.owner).await, 5_000, "nothing set aside");

    // The bitcoin paid, less 10 %: the customer claims it to their Flash username.
    let pp = ok(
        &s,
        "POST",
        &refund(&sats),
        Some(&shop.auth),
        Some(json!({"refundVariant": "RateThen", "subtractPercentage": "10"})),
    )
    .await;
    assert_eq!(
        (
            pp["amount"].as_str(),
            pp["currency"].as_str(),
            pp["autoApproveClaims"].as_bool()
        ),
        (Some("0.000045"), Some("BTC"), Some(true)),
        "{pp}"
    );
    assert_eq!(pp["name"], format!("Refund {sats}"));
    let pp = pp["id"].as_str().expect("pull payment id").to_string();
    let r = claim(&s, &pp, json!({"destination": "@frank"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    settle(&s, &pp).await;
    assert_eq!(s.balance(&frank).await, 4_500);
    assert_eq!(s.balance(&shop.owner).await, 500);

    // A fiat invoice: refunded in its currency, or in bitcoin at today's rate.
    s.fund(&shop.owner.wallet_id, 1_000_000).await;
    let usd = paid_invoice(&s, &shop, json!({"amount": "12.50", "currency": "USD"})).await;
    let fiat = ok(
        &s,
        "POST",
        &refund(&usd),
        Some(&shop.auth),
        Some(json!({"refundVariant": "Fiat"})),
    )
    .await;
    assert_eq!(
        (fiat["amount"].as_str(), fiat["currency"].as_str()),
        (Some("12.5"), Some("USD")),
        "{fiat}"
    );
    let now = ok(
        &s,
        "POST",
        &refund(&usd),
        Some(&shop.auth),
        Some(json!({"refundVariant": "CurrentRate"})),
    )
    .await;
    assert_eq!(now["currency"], "BTC", "{now}");
    let custom = ok(
        &s,
        "POST",
        &refund(&usd),
        Some(&shop.auth),
        Some(
            json!({"refundVariant": "Custom", "customAmount": "1000", "customCurrency": "SATS",
                    "name": "Goodwill", "payoutMethods": ["BTC-LN"]}),
        ),
    )
    .await;
    assert_eq!(
        (
            custom["amount"].as_str(),
            custom["currency"].as_str(),
            custom["name"].as_str()
        ),
        (Some("1000"), Some("SATS"), Some("Goodwill"))
    );
    assert_eq!(custom["payoutMethods"], json!(["BTC-LN"]));
}

/// The UID of the tests' physical card.
const UID: [u8; 7] = [0x04, 0x51, 0x2f, 0x6a, 0x92, 0x69, 0x80];

/// Links a card to `pp` (`PullPayments_LinkBoltcard`, no credential); the answer.
async fn link(s: &TestServer, pp: &str, body: Value) -> Resp {
    call(
        s,
        "POST",
        &format!("/api/v1/pull-payments/{pp}/boltcards"),
        None,
        Some(body),
    )
    .await
}

/// `link`, asserting a 200; the keys answered.
async fn linked(s: &TestServer, pp: &str, body: Value) -> Value {
    let r = link(s, pp, body.clone()).await;
    assert_eq!(r.status, 200, "{body}: {}", r.text);
    r.json()
}

/// The simulated card `UID` holding the keys of a link answer, its counter at `counter`.
fn card_with(keys: &Value, counter: u32) -> SimulatedCard {
    SimulatedCard {
        uid: UID,
        k1: card_key(&keys["K1"]),
        k2: card_key(&keys["K2"]),
        counter,
    }
}

/// The link a wallet reads from `card` on its next tap.
fn lnurlw(s: &TestServer, card: &mut SimulatedCard) -> String {
    let (p, c) = card.tap();
    format!("lnurlw://{}/boltcard?p={p}&c={c}", s.addr)
}

/// A tap of `card` that opens a withdrawal: its `k1`, and what it offers in msat.
async fn opened(s: &TestServer, card: &mut SimulatedCard) -> (String, Value) {
    let r = card_tap(s, card).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let offer = r.json();
    (
        offer["k1"].as_str().expect("k1").to_string(),
        offer["maxWithdrawable"].clone(),
    )
}

/// How many cards (of any state) the database holds.
async fn cards_stored(s: &TestServer) -> i64 {
    let rows = s
        .state
        .bank
        .store_for_tests()
        .db()
        .query("SELECT CAST(COUNT(*) AS BIGINT) FROM boltcards", vec![])
        .await
        .expect("count");
    rows[0].int(0).expect("count")
}

async fn a_linked_card_spends_from_the_pull_payment(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 50_000).await;
    let carol = s.named_member("carol").await;
    let pp = pull_payment(
        &s,
        &shop,
        json!({"name": "Gift card", "amount": "10000", "currency": "SATS", "autoApproveClaims": true}),
    )
    .await;
    let uid = card_uid_hex(&UID);
    let keys = linked(&s, &pp, json!({"UID": uid, "tapLimit": 8_000, "dayLimit": 9_000})).await;
    assert_eq!(keys["LNURLW"], format!("lnurlw://{}/boltcard", s.addr));
    assert_eq!(keys["version"], 0);
    for k in ["K0", "K1", "K2", "K3", "K4"] {
        assert_eq!(keys[k].as_str().map(str::len), Some(32), "{k}: {keys}");
    }
    // The app again before the card's first tap: the same keys, and no second card.
    let again = linked(
        &s,
        &pp,
        json!({"UID": uid.to_uppercase(), "onExisting": "UpdateVersion"}),
    )
    .await;
    assert_eq!(again, keys);
    assert_eq!(cards_stored(&s).await, 1);

    // 3,000 claimed elsewhere leaves 7,000: a tap offers the least of 8,000 a tap, 9,000 a
    // day and the 7,000 left. A pull payment's card has no top-up link.
    let r = claim(&s, &pp, json!({"destination": "@carol", "amount": "3000"})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let mut card = card_with(&keys, 0);
    let r = card_tap(&s, &mut card).await;
    let offer = r.json();
    assert_eq!(
        (&offer["maxWithdrawable"], &offer["defaultDescription"]),
        (&json!(7_000_000), &json!("Gift card")),
        "{}",
        r.text
    );
    assert!(offer.get("payLink").is_none(), "{offer}");
    let k1 = offer["k1"].as_str().expect("k1");
    // More than the tap offers: refused, and the tap stays usable.
    let big = wallet_invoice(&s, &carol, 7_001).await;
    assert!(lnurl_reason(&card_withdraw(&s, k1, &big).await).contains("at most 7000"));
    let pr = wallet_invoice(&s, &carol, 5_000).await;
    let paid = card_withdraw(&s, k1, &pr).await;
    assert_eq!(paid.json(), json!({"status": "OK"}), "{}", paid.text);
    // The withdrawal is a payout of the pull payment, paid by the payout driver.
    let list = settle(&s, &pp).await;
    let payout = list.iter().find(|p| p["destination"] == pr).expect("the card's payout");
    assert_eq!(
        (&payout["state"], &payout["originalAmount"], &payout["payoutMethodId"]),
        (&json!("Completed"), &json!("5000"), &json!("BTC-LN")),
        "{payout}"
    );
    assert_eq!(s.balance(&carol).await, 3_000 + 5_000);
    // The holder's balance is what the pull payment has left.
    let (p, c) = card.tap();
    let balance = s.get(&format!("/boltcard/balance?p={p}&c={c}"), &[]).await;
    assert_eq!(
        balance.json(),
        json!({"name": "Gift card", "balance": 2_000, "tapLimit": 8_000, "dayLimit": 9_000, "dayLeft": 4_000, "payLink": null}),
        "{}",
        balance.text
    );
    // The store's owner has it among its cards.
    let cards = s
        .gql(Some(&shop.owner.token), "{ cards { state pullPaymentId } }", json!({}))
        .await;
    assert_eq!(
        data(&cards, "cards"),
        &json!([{"state": "active", "pullPaymentId": pp}])
    );
    // Nothing left for the next tap beyond the pull payment's 2,000.
    let (_, max) = opened(&s, &mut card).await;
    assert_eq!(max, 2_000_000);
    s.journals().await;
}

async fn a_live_card_is_linked_again_only_for_a_tap_of_it(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 50_000).await;
    let owner = s.member().await;
    s.fund(&owner.wallet_id, 5_000).await;
    let (wallet_card, mut card, keys, _) = programmed_card(&s, &owner, 1_000, 2_000, UID).await;
    assert_eq!(card_tap(&s, &mut card).await.status, 200);
    let pp = pull_payment(
        &s,
        &shop,
        json!({"name": "Gift card", "amount": "4000", "currency": "SATS", "autoApproveClaims": true}),
    )
    .await;
    let state = |id: String| {
        let s = &s;
        let owner: flash_core::AccountId = owner.account_id.parse().expect("account");
        async move { s.state.cards.card(owner, &id).await.expect("card").state }
    };
    // By its UID alone a live card is not linked, whatever onExisting says.
    for on_existing in ["KeepVersion", "UpdateVersion"] {
        let r = link(&s, &pp, json!({"UID": card_uid_hex(&UID), "onExisting": on_existing})).await;
        assert_eq!(
            (r.status, &r.json()["code"]),
            (400, &json!("card-already-linked")),
            "{}",
            r.text
        );
    }
    // A tap seen before, or with a wrong MAC: refused on LNURLW.
    let (p, c) = card.tap_with_counter(card.counter);
    let mut forged = SimulatedCard {
        k2: [7; 16],
        ..card.clone()
    };
    for link_read in [
        format!("lnurlw://{}/boltcard?p={p}&c={c}", s.addr),
        lnurlw(&s, &mut forged),
    ] {
        let r = link(&s, &pp, json!({"LNURLW": link_read, "onExisting": "KeepVersion"})).await;
        assert_eq!((r.status, &r.json()[0]["path"]), (422, &json!("LNURLW")), "{}", r.text);
    }
    assert_eq!(state(wallet_card.clone()).await, "active", "nothing changed");
    assert_eq!(cards_stored(&s).await, 1);

    // KeepVersion for a fresh tap: the keys the card has; the wallet card is wiped and the
    // pull payment's is active, spending from the pull payment (not the wallet's 5,000).
    let kept = linked(
        &s,
        &pp,
        json!({"LNURLW": lnurlw(&s, &mut card), "onExisting": "KeepVersion"}),
    )
    .await;
    for k in ["K0", "K1", "K2", "K3", "K4", "version"] {
        assert_eq!(kept[k], keys[k], "{k}");
    }
    assert_eq!(state(wallet_card).await, "wiped");
    let (_, max) = opened(&s, &mut card).await;
    assert_eq!(max, 4_000_000);

    // UpdateVersion (the default): the next version's keys; until the card is tapped with
    // them, old keys pay nothing, and the app failing half way gets the same keys again for a
    // tap with the old ones (the card is never bricked).
    let updated = linked(&s, &pp, json!({"LNURLW": lnurlw(&s, &mut card)})).await;
    assert_eq!(updated["version"], 1);
    // Its new keys are not for whoever knows the UID, though the card is programming again.
    let r = link(&s, &pp, json!({"UID": card_uid_hex(&UID)})).await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_ne!(updated["K2"], keys["K2"]);
    assert_eq!(updated["K1"], keys["K1"], "K1 is the issuer's");
    let again = linked(&s, &pp, json!({"LNURLW": lnurlw(&s, &mut card)})).await;
    assert_eq!(again, updated);
    assert_eq!(card_tap(&s, &mut card).await.status, 400, "the old keys pay nothing");
    let mut rewritten = card_with(&updated, card.counter);
    let (_, max) = opened(&s, &mut rewritten).await;
    assert_eq!(max, 4_000_000);
    let kept = linked(
        &s,
        &pp,
        json!({"LNURLW": lnurlw(&s, &mut rewritten), "onExisting": "KeepVersion"}),
    )
    .await;
    assert_eq!(kept, updated);
    assert_eq!(
        cards_stored(&s).await,
        2,
        "the wiped wallet card and the pull payment's"
    );
    s.journals().await;
}

async fn two_callbacks_for_one_card_tap_claim_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 20_000).await;
    let dave = s.named_member("dave").await;
    let pp = pull_payment(
        &s,
        &shop,
        json!({"amount": "10000", "currency": "SATS", "autoApproveClaims": true}),
    )
    .await;
    let keys = linked(&s, &pp, json!({"UID": card_uid_hex(&UID)})).await;
    let mut card = card_with(&keys, 0);
    let (k1, _) = opened(&s, &mut card).await;
    let (a, b) = (
        wallet_invoice(&s, &dave, 400).await,
        wallet_invoice(&s, &dave, 600).await,
    );
    let (ra, rb) = tokio::join!(card_withdraw(&s, &k1, &a), card_withdraw(&s, &k1, &b));
    let oks = [&ra, &rb].iter().filter(|r| r.json()["status"] == "OK").count();
    assert_eq!(oks, 1, "{} / {}", ra.text, rb.text);
    let list = settle(&s, &pp).await;
    assert_eq!(list.len(), 1, "one payout: {list:?}");
    let paid = s.balance(&dave).await;
    assert!(paid == 400 || paid == 600, "one of the two: {paid}");
    // The same k1 once more: used.
    let c = wallet_invoice(&s, &dave, 100).await;
    assert!(lnurl_reason(&card_withdraw(&s, &k1, &c).await).contains("tap the card again"));
    assert_eq!(settle(&s, &pp).await.len(), 1);
    s.journals().await;
}

async fn a_card_of_a_pull_payment_needing_approval_waits_for_it(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 20_000).await;
    let erin = s.named_member("erin").await;
    let pp = pull_payment(&s, &shop, json!({"amount": "10000", "currency": "SATS"})).await;
    let keys = linked(&s, &pp, json!({"UID": card_uid_hex(&UID), "tapLimit": 2_000})).await;
    let mut card = card_with(&keys, 0);
    let (k1, max) = opened(&s, &mut card).await;
    assert_eq!(max, 2_000_000);
    // An invoice valid for an hour (not the pull payment's 30 days): claimed, awaiting approval.
    let pr = wallet_invoice(&s, &erin, 1_500).await;
    assert_eq!(card_withdraw(&s, &k1, &pr).await.json()["status"], "OK");
    let list = settle(&s, &pp).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_eq!(list[0]["state"], "AwaitingApproval");
    assert_eq!(s.balance(&erin).await, 0);
    let id = list[0]["id"].as_str().expect("payout id");
    ok(
        &s,
        "POST",
        &format!("/api/v1/payouts/{id}"),
        Some(&shop.auth),
        Some(json!({})),
    )
    .await;
    assert_eq!(state_of(&settle(&s, &pp).await, id), "Completed");
    assert_eq!(s.balance(&erin).await, 1_500);
    s.journals().await;
}

async fn bad_card_links_change_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 20_000).await;
    let pp = pull_payment(
        &s,
        &shop,
        json!({"amount": "10000", "currency": "SATS", "autoApproveClaims": true}),
    )
    .await;
    let uid = card_uid_hex(&UID);
    for (body, path) in [
        (json!({}), "UID"),
        (json!({"UID": "04512f6a9269"}), "UID"),
        (json!({"UID": "zz512f6a926980"}), "UID"),
        (json!({"UID": 42}), "UID"),
        (json!({"UID": uid, "onExisting": "Sometimes"}), "onExisting"),
        (json!({"LNURLW": "https://example.com/nothing"}), "LNURLW"),
        (
            json!({"LNURLW": format!("lnurlw://{}/boltcard?p=zz&c=00", s.addr)}),
            "LNURLW",
        ),
        (json!({"UID": uid, "tapLimit": 0}), "tapLimit"),
        (json!({"UID": uid, "tapLimit": 5_000, "dayLimit": 1_000}), "tapLimit"),
        (json!({"UID": uid, "dayLimit": "lots"}), "dayLimit"),
        (json!([1]), ""),
    ] {
        let r = link(&s, &pp, body.clone()).await;
        assert_eq!(
            (r.status, &r.json()[0]["path"]),
            (422, &json!(path)),
            "{body}: {}",
            r.text
        );
    }
    let r = call(
        &s,
        "POST",
        &format!("/api/v1/pull-payments/{pp}/boltcards?onExisting=Never"),
        None,
        Some(json!({"UID": uid})),
    )
    .await;
    assert_eq!(
        (r.status, &r.json()[0]["path"]),
        (422, &json!("onExisting")),
        "{}",
        r.text
    );
    let raw = s
        .post_raw(
            &format!("/api/v1/pull-payments/{pp}/boltcards"),
            None,
            "application/json",
            b"{".to_vec(),
        )
        .await;
    assert_eq!(raw.status, 422, "{}", raw.text);
    let archived = pull_payment(&s, &shop, json!({"amount": "1000", "currency": "SATS"})).await;
    ok(
        &s,
        "DELETE",
        &format!("/api/v1/pull-payments/{archived}"),
        Some(&shop.auth),
        None,
    )
    .await;
    for unknown in ["NoSuch", archived.as_str()] {
        let r = link(&s, unknown, json!({"UID": uid})).await;
        assert_eq!(
            (r.status, &r.json()["code"]),
            (404, &json!("pullpayment-not-found")),
            "{}",
            r.text
        );
    }
    assert_eq!(cards_stored(&s).await, 0, "no card written");
}

async fn a_pull_payment_card_pays_at_the_checkout(backend: Backend) {
    let s = TestServer::start(backend).await;
    let _watcher = s.watch_invoices();
    let cafe = shop(&s, 0).await;
    let shop = shop(&s, 20_000).await;
    let auto = pull_payment(
        &s,
        &shop,
        json!({"amount": "5000", "currency": "SATS", "autoApproveClaims": true}),
    )
    .await;
    let keys = linked(&s, &auto, json!({"UID": card_uid_hex(&UID)})).await;
    let mut card = card_with(&keys, 0);
    // The café's checkout takes the card: a payout of the pull payment pays the invoice.
    let invoice = cafe_invoice(&s, &cafe, 1_200).await;
    let r = s
        .post_json(
            &format!("/i/{invoice}/card"),
            None,
            &json!({"lnurlw": lnurlw(&s, &mut card)}),
        )
        .await;
    assert_eq!(r.json(), json!({"paid": true, "awaitingApproval": false}), "{}", r.text);
    settle(&s, &auto).await;
    wait_settled(&s, &cafe, &invoice).await;

    // A pull payment needing approval: the page is told so, and the invoice is paid once the
    // store approves.
    let approved_later = pull_payment(&s, &shop, json!({"amount": "5000", "currency": "SATS"})).await;
    let r = link(
        &s,
        &approved_later,
        json!({"LNURLW": lnurlw(&s, &mut card), "onExisting": "KeepVersion"}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let invoice = cafe_invoice(&s, &cafe, 800).await;
    let r = s
        .post_json(
            &format!("/i/{invoice}/card"),
            None,
            &json!({"lnurlw": lnurlw(&s, &mut card)}),
        )
        .await;
    assert_eq!(r.json(), json!({"paid": false, "awaitingApproval": true}), "{}", r.text);
    let list = settle(&s, &approved_later).await;
    let id = list[0]["id"].as_str().expect("payout id");
    ok(
        &s,
        "POST",
        &format!("/api/v1/payouts/{id}"),
        Some(&shop.auth),
        Some(json!({})),
    )
    .await;
    settle(&s, &approved_later).await;
    wait_settled(&s, &cafe, &invoice).await;
    s.journals().await;
}

/// An invoice of `shop` for `sats`; its id.
async fn cafe_invoice(s: &TestServer, shop: &Shop, sats: i64) -> String {
    let path = format!("/api/v1/stores/{}/invoices", shop.store);
    let made = ok(
        s,
        "POST",
        &path,
        Some(&shop.auth),
        Some(json!({"amount": sats.to_string(), "currency": "SATS"})),
    )
    .await;
    made["id"].as_str().expect("invoice id").to_string()
}

/// Waits until `shop`'s invoice `id` is settled.
async fn wait_settled(s: &TestServer, shop: &Shop, id: &str) {
    let path = format!("/api/v1/stores/{}/invoices/{id}", shop.store);
    for _ in 0..100 {
        if ok(s, "GET", &path, Some(&shop.auth), None).await["status"] == "Settled" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!(
        "the invoice was never settled: {}",
        ok(s, "GET", &path, Some(&shop.auth), None).await
    );
}
