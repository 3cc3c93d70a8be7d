//! Lightning addresses and LNURL-pay over real HTTP: this Flash serving `name@host`, users
//! paying addresses of this Flash (inside the ledger) and of another Flash (the full LUD-06
//! round trip, then a Lightning payment), and misbehaving LNURL services refused with
//! nothing held. Every scenario runs on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;
use axum::Router;
use common::*;
use flash_core::lightning::SimulatorControls;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

flash_store::on_both_backends!(
    an_address_of_this_flash_serves_lud06_and_issues_committed_invoices,
    paying_an_address_of_this_flash_stays_in_the_ledger,
    paying_another_flashs_address_goes_over_lnurl_and_lightning,
    misbehaving_lnurl_services_are_refused_and_nothing_is_held,
    withdraw_links_pay_within_their_limits_and_uses,
);

const ADDRESS_PAY: &str = "mutation($input: LnAddressPaymentSendInput!) { lnAddressPaymentSend(input: $input) { \
    status errors { code message } transaction { settlementAmount settlementFee status \
    settlementVia { __typename } initiationVia { __typename ... on InitiationViaLn { paymentRequest } } } } }";

const LNURL_PAY: &str = "mutation($input: LnurlPaymentSendInput!) { lnurlPaymentSend(input: $input) { \
    status errors { code message } transaction { settlementAmount settlementFee status } } }";

async fn pay_address(s: &TestServer, m: &Member, address: &str, amount: i64) -> Value {
    let input = json!({ "walletId": m.wallet_id, "lnAddress": address, "amount": amount, "comment": "thanks" });
    let r = s.gql(Some(&m.token), ADDRESS_PAY, json!({ "input": input })).await;
    data(&r, "lnAddressPaymentSend").clone()
}

async fn get_json(s: &TestServer, path: &str) -> (u16, Value, Option<String>) {
    let r = s.get(path, &[]).await;
    let cors = r
        .headers
        .get("access-control-allow-origin")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    (r.status, r.json(), cors)
}

async fn an_address_of_this_flash_serves_lud06_and_issues_committed_invoices(backend: Backend) {
    let s = TestServer::start(backend).await;
    let bob = s.named_member("Bob_1").await;
    let (status, offer, cors) = get_json(&s, "/.well-known/lnurlp/bob_1").await;
    assert_eq!(status, 200, "{offer}");
    assert_eq!(cors.as_deref(), Some("*"));
    assert_eq!(offer["tag"], "payRequest");
    assert_eq!(offer["minSendable"], 1_000);
    assert_eq!(offer["commentAllowed"], 255);
    let callback = offer["callback"].as_str().expect("callback");
    assert_eq!(callback, s.url("/lnurl/pay/bob_1"));
    let metadata = offer["metadata"].as_str().expect("metadata");
    let entries: Vec<Vec<String>> = serde_json::from_str(metadata).expect("metadata is a JSON array");
    assert!(entries.contains(&vec!["text/plain".to_string(), "Payment to Bob_1".to_string()]));
    assert!(entries.contains(&vec!["text/identifier".to_string(), format!("bob_1@{}", s.addr)]));

    let (status, inv, _) = get_json(&s, "/lnurl/pay/bob_1?amount=21000&comment=hello").await;
    assert_eq!(status, 200, "{inv}");
    let pr = inv["pr"].as_str().expect("pr");
    let decoded: lightning_invoice::Bolt11Invoice = pr.parse().expect("a BOLT11 invoice");
    assert_eq!(decoded.amount_milli_satoshis(), Some(21_000));
    let expected: [u8; 32] = Sha256::digest(metadata.as_bytes()).into();
    match decoded.description() {
        lightning_invoice::Bolt11InvoiceDescriptionRef::Hash(h) => {
            assert_eq!(h.0.as_ref() as &[u8], expected.as_slice(), "commits to the metadata")
        }
        other => panic!("expected a description hash, got {other:?}"),
    }

    // Paid from outside, it credits Bob with the amount and the payer's comment as memo.
    s.pay_from_outside(pr).await;
    assert_eq!(s.balance(&bob).await, 21);

    for (path, status) in [
        ("/lnurl/pay/bob_1?amount=21500", 400),      // not whole satoshis
        ("/lnurl/pay/bob_1?amount=0", 400),          // below minSendable
        ("/lnurl/pay/bob_1", 400),                   // no amount
        ("/lnurl/pay/bob_1?amount=abc", 400),        // not a number
        ("/lnurl/pay/nobody_here?amount=1000", 404), // no such user
        ("/.well-known/lnurlp/nobody_here", 404),
        ("/.well-known/lnurlp/bad%20name", 404),
    ] {
        let (got, body, cors) = get_json(&s, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["status"], "ERROR", "{path}: {body}");
        assert!(body["reason"].as_str().is_some_and(|r| !r.is_empty()));
        assert_eq!(cors.as_deref(), Some("*"));
    }
    let long = "x".repeat(256);
    let (got, body, _) = get_json(&s, &format!("/lnurl/pay/bob_1?amount=1000&comment={long}")).await;
    assert_eq!(
        (got, body["status"].as_str()),
        (400, Some("ERROR")),
        "comment over 255: {body}"
    );
    // Invoices for anyone are limited per client address.
    let mut refused = None;
    for n in 1..=700 {
        let (status, body, _) = get_json(&s, "/lnurl/pay/bob_1?amount=1000").await;
        if status != 200 {
            refused = Some((n, status, body));
            break;
        }
    }
    let (n, status, body) = refused.expect("the per-address limit applies");
    assert_eq!((status, body["status"].as_str()), (429, Some("ERROR")), "{body}");
    assert!(n > 550, "well-behaved callers get hundreds a minute: refused at {n}");
    let r = s
        .gql(
            None,
            "mutation($input: LnInvoiceCreateOnBehalfOfRecipientInput!) { lnInvoiceCreateOnBehalfOfRecipient(input: $input) { errors { code } } }",
            json!({ "input": { "recipientWalletId": bob.wallet_id, "amount": 1 } }),
        )
        .await;
    assert_eq!(top_code(&r), "RATE_LIMITED", "the GraphQL way shares the limit: {r}");
    s.journals().await;
}

async fn paying_an_address_of_this_flash_stays_in_the_ledger(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.named_member("alice_2").await;
    let bob = s.named_member("bob_2").await;
    s.fund(&alice.wallet_id, 10_000).await;
    let address = format!("BOB_2@{}", s.addr);
    let paid = pay_address(&s, &alice, &address, 2_500).await;
    assert_eq!(paid["status"], "SUCCESS", "{paid}");
    assert_eq!(paid["transaction"]["settlementFee"], 0);
    assert_eq!(
        paid["transaction"]["settlementVia"]["__typename"],
        "SettlementViaIntraLedger"
    );
    assert_eq!((s.balance(&alice).await, s.balance(&bob).await), (7_500, 2_500));
    let missing = pay_address(&s, &alice, &format!("nobody_2@{}", s.addr), 1).await;
    assert_eq!(payload_code(&missing), "RECIPIENT_NOT_FOUND");
    let broke = pay_address(&s, &bob, &format!("alice_2@{}", s.addr), 1_000_000).await;
    assert_eq!(payload_code(&broke), "INSUFFICIENT_BALANCE");
    assert_eq!((s.balance(&alice).await, s.balance(&bob).await), (7_500, 2_500));
    s.journals().await;
}

async fn paying_another_flashs_address_goes_over_lnurl_and_lightning(backend: Backend) {
    let here = TestServer::start(backend).await;
    let there = TestServer::start(backend).await;
    let alice = here.named_member("alice_3").await;
    let carol = there.named_member("carol_3").await;
    here.fund(&alice.wallet_id, 100_000).await;

    // Alice pays carol@there: LUD-16 → invoice from there → paid by here's node (simulated
    // network, 0.1% fee) → there credits carol when its node settles.
    let paid = pay_address(&here, &alice, &format!("carol_3@{}", there.addr), 20_000).await;
    assert_eq!(paid["status"], "SUCCESS", "{paid}");
    let fee = paid["transaction"]["settlementFee"].as_i64().expect("fee");
    assert_eq!(fee, 20, "0.1% routing fee");
    assert_eq!(paid["transaction"]["settlementVia"]["__typename"], "SettlementViaLn");
    assert_eq!(paid["transaction"]["initiationVia"]["__typename"], "InitiationViaLn");
    assert_eq!(here.balance(&alice).await, 100_000 - 20_000 - fee);
    // The two simulators are not one network: the receive is settled on there's node by hand,
    // as the network would.
    let invoice = paid["transaction"]["initiationVia"]["paymentRequest"]
        .as_str()
        .expect("the invoice alice paid");
    there.pay_from_outside(invoice).await;
    assert_eq!(there.balance(&carol).await, 20_000);

    // The same address as a bech32 LNURL.
    let url = there.url("/.well-known/lnurlp/carol_3");
    let hrp = bitcoin::bech32::Hrp::parse("lnurl").expect("hrp");
    let lnurl = bitcoin::bech32::encode::<bitcoin::bech32::Bech32>(hrp, url.as_bytes()).expect("encode");
    let input = json!({ "walletId": alice.wallet_id, "lnurl": lnurl.to_uppercase(), "amount": 1_000 });
    let r = here.gql(Some(&alice.token), LNURL_PAY, json!({ "input": input })).await;
    assert_eq!(data(&r, "lnurlPaymentSend")["status"], "SUCCESS", "{r}");

    // Outside the range the service offers: refused before any invoice is asked for.
    let too_much = pay_address(&here, &alice, &format!("carol_3@{}", there.addr), 20_000_000).await;
    assert_eq!(payload_code(&too_much), "AMOUNT_MISMATCH");
    here.journals().await;
    there.journals().await;
}

/// A scripted LNURL service on 127.0.0.1.
async fn service(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("127.0.0.1:{}", addr.port())
}

async fn misbehaving_lnurl_services_are_refused_and_nothing_is_held(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.named_member("alice_4").await;
    s.fund(&alice.wallet_id, 50_000).await;
    let journals = s.journals().await;

    let slow = service(Router::new().route(
        "/.well-known/lnurlp/{name}",
        get(|| async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            "{}"
        }),
    ))
    .await;
    let garbage = service(Router::new().route("/.well-known/lnurlp/{name}", get(|| async { "<html>hi</html>" }))).await;
    let huge = service(Router::new().route(
        "/.well-known/lnurlp/{name}",
        get(|| async { format!("{{\"tag\":\"payRequest\",\"x\":\"{}\"}}", "a".repeat(200_000)) }),
    ))
    .await;
    let elsewhere = service(Router::new().route(
        "/.well-known/lnurlp/{name}",
        get(|| async { Redirect::temporary("http://localhost:1/.well-known/lnurlp/x") }),
    ))
    .await;
    let refuses = service(Router::new().route(
        "/.well-known/lnurlp/{name}",
        get(|| async { axum::Json(json!({ "status": "ERROR", "reason": "closed for holidays" })) }),
    ))
    .await;
    let error_page = service(Router::new().route(
        "/.well-known/lnurlp/{name}",
        get(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response() }),
    ))
    .await;
    // A service whose invoice does not commit to its metadata (here: Flash's own invoice for
    // another description), and one whose invoice is for another amount.
    let real = s.named_member("real_4").await;
    let real_offer = get_json(&s, "/.well-known/lnurlp/real_4").await.1;
    let callback = real_offer["callback"].as_str().expect("callback").to_string();
    let swapped = {
        let callback = callback.clone();
        service(Router::new().route(
            "/.well-known/lnurlp/{name}",
            get(move || {
                let callback = callback.clone();
                async move {
                    let mut offer = json!({
                        "tag": "payRequest", "minSendable": 1000, "maxSendable": 100000000,
                        "metadata": "[[\"text/plain\",\"something else\"]]", "callback": callback,
                    });
                    offer["commentAllowed"] = json!(0);
                    axum::Json(offer)
                }
            }),
        ))
        .await
    };
    let other_amount = {
        let base = s.url("/lnurl/pay/real_4");
        let metadata = real_offer["metadata"].clone();
        let own = service(Router::new().route(
            "/cb",
            get(move || {
                let base = base.clone();
                async move {
                    let r: Value = reqwest::get(format!("{base}?amount=5000"))
                        .await
                        .expect("inner")
                        .json()
                        .await
                        .expect("json");
                    axum::Json(r)
                }
            }),
        ))
        .await;
        let cb = format!("http://{own}/cb");
        service(Router::new().route(
            "/.well-known/lnurlp/{name}",
            get(move || {
                let (cb, metadata) = (cb.clone(), metadata.clone());
                async move {
                    axum::Json(json!({
                        "tag": "payRequest", "minSendable": 1000, "maxSendable": 100000000,
                        "metadata": metadata, "callback": cb,
                    }))
                }
            }),
        ))
        .await
    };

    let cases = [
        (format!("x@{slow}"), "LNURL_UNREACHABLE"),
        (format!("x@{garbage}"), "LNURL_BAD_RESPONSE"),
        (format!("x@{huge}"), "LNURL_BAD_RESPONSE"),
        (format!("x@{elsewhere}"), "LNURL_UNREACHABLE"),
        (format!("x@{refuses}"), "LNURL_REFUSED"),
        (format!("x@{error_page}"), "LNURL_BAD_RESPONSE"),
        (format!("x@{swapped}"), "LNURL_BAD_RESPONSE"),
        (format!("x@{other_amount}"), "LNURL_BAD_RESPONSE"),
        ("x@127.0.0.1:1".to_string(), "LNURL_UNREACHABLE"),
        ("not an address".to_string(), "INVALID_LNURL"),
        ("x@evil.example/path".to_string(), "INVALID_LNURL"),
    ];
    for (address, code) in cases {
        let started = std::time::Instant::now();
        let r = pay_address(&s, &alice, &address, 2_000).await;
        assert_eq!(payload_code(&r), code, "{address}: {r}");
        assert!(
            started.elapsed() < Duration::from_secs(25),
            "{address}: the deadline held"
        );
    }
    let lnurl = json!({ "walletId": alice.wallet_id, "lnurl": "lnurl1notvalid", "amount": 1 });
    let r = s.gql(Some(&alice.token), LNURL_PAY, json!({ "input": lnurl })).await;
    assert_eq!(payload_code(data(&r, "lnurlPaymentSend")), "INVALID_LNURL");
    assert_eq!(s.balance(&alice).await, 50_000, "nothing held");
    assert_eq!(s.balance(&real).await, 0);
    assert_eq!(s.journals().await, journals, "nothing posted");
}

const WITHDRAW_CREATE: &str = "mutation($input: LnurlWithdrawCreateInput!) { lnurlWithdrawCreate(input: $input) { \
    errors { code message } lnurl url link { id minAmount maxAmount usesTotal usesLeft title revoked } } }";

async fn uses_left(s: &TestServer, m: &Member) -> Vec<i64> {
    let r = s
        .gql(Some(&m.token), "{ lnurlWithdrawLinks { usesLeft } }", json!({}))
        .await;
    data(&r, "lnurlWithdrawLinks")
        .as_array()
        .expect("links")
        .iter()
        .map(|l| l["usesLeft"].as_i64().expect("usesLeft"))
        .collect()
}

async fn withdraw_links_pay_within_their_limits_and_uses(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.named_member("alice_5").await;
    let bob = s.named_member("bob_5").await;
    s.fund(&alice.wallet_id, 50_000).await;
    let input = json!({ "maxAmount": 5_000, "minAmount": 100, "uses": 2, "title": "Voucher" });
    let r = s
        .gql(Some(&alice.token), WITHDRAW_CREATE, json!({ "input": input }))
        .await;
    let created = data(&r, "lnurlWithdrawCreate");
    assert_no_payload_errors(created);
    let url = created["url"].as_str().expect("url").to_string();
    let (hrp, bytes) = bitcoin::bech32::decode(created["lnurl"].as_str().expect("lnurl")).expect("bech32");
    assert!(hrp.as_str().eq_ignore_ascii_case("lnurl"), "{hrp}");
    assert_eq!(String::from_utf8(bytes).expect("utf-8"), url, "the LNURL is the URL");
    let path = url.trim_start_matches(&s.url(""));
    let (status, offer, cors) = get_json(&s, path).await;
    assert_eq!((status, cors.as_deref()), (200, Some("*")), "{offer}");
    assert_eq!(offer["tag"], "withdrawRequest");
    assert_eq!(
        (offer["minWithdrawable"].as_i64(), offer["maxWithdrawable"].as_i64()),
        (Some(100_000), Some(5_000_000))
    );
    assert_eq!(offer["defaultDescription"], "Voucher");
    let k1 = offer["k1"].as_str().expect("k1").to_string();
    let callback = offer["callback"]
        .as_str()
        .expect("callback")
        .trim_start_matches(&s.url(""))
        .to_string();
    let withdraw = |pr: String, k1: String| {
        let callback = callback.clone();
        let s = &s;
        async move {
            let q = format!("{callback}?k1={k1}&pr={pr}");
            get_json(s, &q).await
        }
    };

    // Bob withdraws into his Flash wallet: inside the ledger.
    let r = s
        .gql(
            Some(&bob.token),
            "mutation($input: LnInvoiceCreateInput!) { lnInvoiceCreate(input: $input) { errors { code } invoice { paymentRequest paymentSecret } } }",
            json!({ "input": { "walletId": bob.wallet_id, "amount": 3_000 } }),
        )
        .await;
    let created = &data(&r, "lnInvoiceCreate")["invoice"];
    let bobs = created["paymentRequest"].as_str().expect("pr").to_string();
    let decoded: lightning_invoice::Bolt11Invoice = bobs.parse().expect("bolt11");
    let secret: String = decoded.payment_secret().0.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(
        created["paymentSecret"],
        secret.as_str(),
        "the invoice's own payment secret"
    );
    let (status, body, _) = withdraw(bobs.clone(), k1.clone()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("OK")), "{body}");
    assert_eq!((s.balance(&alice).await, s.balance(&bob).await), (47_000, 3_000));
    assert_eq!(uses_left(&s, &alice).await, vec![1]);
    // The same invoice again: refused, and no use taken.
    let (status, body, _) = withdraw(bobs, k1.clone()).await;
    assert_eq!((status, body["status"].as_str()), (400, Some("ERROR")), "{body}");
    assert_eq!(uses_left(&s, &alice).await, vec![1]);

    // Refusals that take nothing: wrong k1, out of range, no amount, garbage.
    let outside = flash_lightning::DevNode::new(
        flash_core::Network::Regtest,
        flash_lightning::DevNode::generate_key(),
        INSTANT,
    )
    .expect("node");
    let external = |msat: Option<u64>| {
        let outside = &outside;
        async move {
            use flash_core::lightning::{InvoiceDescription, InvoiceRequest, LightningNode};
            let req = InvoiceRequest {
                amount_msat: msat,
                description: InvoiceDescription::Memo("withdraw".into()),
                expiry_secs: 600,
            };
            outside.create_invoice(req).await.expect("invoice").payment_request
        }
    };
    for (pr, key) in [
        (external(Some(1_000_000)).await, "0".repeat(64)),
        (external(Some(6_000_000)).await, k1.clone()),
        (external(Some(50_000)).await, k1.clone()),
        (external(None).await, k1.clone()),
        ("lnbcrt1garbage".to_string(), k1.clone()),
    ] {
        let (status, body, _) = withdraw(pr, key).await;
        assert_eq!((status, body["status"].as_str()), (400, Some("ERROR")), "{body}");
    }
    assert_eq!(uses_left(&s, &alice).await, vec![1]);
    assert_eq!(s.balance(&alice).await, 47_000);

    // A failed payment out gives its use back; then a good one takes the last use.
    s.node
        .set_outcome(flash_core::lightning::DevOutcome::Fail { delay_ms: 0 })
        .expect("outcome");
    let (status, body, _) = withdraw(external(Some(2_000_000)).await, k1.clone()).await;
    assert_eq!((status, body["status"].as_str()), (400, Some("ERROR")), "{body}");
    assert_eq!(
        uses_left(&s, &alice).await,
        vec![1],
        "the failed withdrawal's use came back"
    );
    assert_eq!(s.balance(&alice).await, 47_000);
    s.node.set_outcome(INSTANT).expect("outcome");
    let (status, body, _) = withdraw(external(Some(2_000_000)).await, k1.clone()).await;
    assert_eq!((status, body["status"].as_str()), (200, Some("OK")), "{body}");
    assert_eq!(uses_left(&s, &alice).await, vec![0]);
    assert_eq!(
        s.balance(&alice).await,
        47_000 - 2_000 - 2,
        "amount and the 0.1% routing fee"
    );
    let (status, body, _) = withdraw(external(Some(1_000_000)).await, k1.clone()).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (400, Some("ERROR")),
        "used up: {body}"
    );
    let (status, _, _) = get_json(&s, path).await;
    assert_eq!(status, 400, "a used-up link offers nothing");

    // Revoked links offer nothing either; someone else cannot revoke yours.
    let input = json!({ "maxAmount": 1_000 });
    let r = s
        .gql(Some(&alice.token), WITHDRAW_CREATE, json!({ "input": input }))
        .await;
    let second = data(&r, "lnurlWithdrawCreate");
    let id = second["link"]["id"].as_str().expect("id").to_string();
    let second_path = second["url"]
        .as_str()
        .expect("url")
        .trim_start_matches(&s.url(""))
        .to_string();
    let revoke = "mutation($input: LnurlWithdrawRevokeInput!) { lnurlWithdrawRevoke(input: $input) { success errors { code } } }";
    let r = s.gql(Some(&bob.token), revoke, json!({ "input": { "id": id } })).await;
    assert_eq!(payload_code(data(&r, "lnurlWithdrawRevoke")), "WITHDRAW_LINK_NOT_FOUND");
    assert_eq!(get_json(&s, &second_path).await.0, 200);
    let r = s
        .gql(Some(&alice.token), revoke, json!({ "input": { "id": id } }))
        .await;
    assert_eq!(data(&r, "lnurlWithdrawRevoke")["success"], true);
    assert_eq!(get_json(&s, &second_path).await.0, 400);
    assert_eq!(get_json(&s, "/lnurl/withdraw/not-a-secret").await.0, 404);

    // Bad settings are refused.
    for (input, code) in [
        (json!({ "maxAmount": 0 }), "INVALID_AMOUNT"),
        (json!({ "maxAmount": 10, "minAmount": 20 }), "AMOUNT_MISMATCH"),
        (json!({ "maxAmount": 10, "uses": 0 }), "INVALID_WITHDRAW_LINK"),
        (
            json!({ "maxAmount": 10, "walletId": bob.wallet_id }),
            "WALLET_NOT_FOUND",
        ),
    ] {
        let r = s
            .gql(Some(&alice.token), WITHDRAW_CREATE, json!({ "input": input }))
            .await;
        assert_eq!(payload_code(data(&r, "lnurlWithdrawCreate")), code, "{input}");
    }
    s.journals().await;
}
