//! Nostr Wallet Connect end to end: a user connects an app with `nwcConnectionCreate`, and
//! rust-nostr's NWC client (the `nwc` crate) drives the wallet through the relay: balance,
//! info, invoices, payments within the budget, an exhausted budget, a revoked connection. A
//! NIP-44 request (hand-sealed) gets a NIP-44 answer, and settled payments are notified.
//! Budget reservations left open (a payment answered in flight, or a restart) are finished
//! by how their payment ended.

mod common;

use std::time::Duration;

use common::Backend;
use common::*;
use flash_core::Network;
use nostr_sdk::prelude::*;
use nwc::prelude::*;
use serde_json::{json, Value};

flash_store::on_both_backends!(
    an_nwc_client_pays_within_its_budget_until_revoked,
    nip44_requests_get_nip44_answers_and_payments_are_notified,
    open_reservations_end_as_their_payments_did,
    connection_names_with_control_characters_are_invalid_input,
);

/// The next event of `kind` the client receives.
async fn next(notes: &mut tokio::sync::broadcast::Receiver<RelayPoolNotification>, kind: Kind) -> Event {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(RelayPoolNotification::Event { event, .. }) = notes.recv().await {
                if event.kind == kind {
                    return *event;
                }
            }
        }
    })
    .await
    .expect("an answer")
}

const CREATE: &str = "mutation($input: NwcConnectionCreateInput!) { nwcConnectionCreate(input: $input) { \
     errors { code message } uri connection { id name methods budgetSats budgetPeriod spentSats } } }";
const LIST: &str = "{ nwcConnections { id spentSats revokedAt lastUsedAt } }";
const REVOKE: &str = "mutation($id: ID!) { nwcConnectionRevoke(input: { id: $id }) { errors { code } revoked } }";

async fn connect(server: &TestServer, token: &str, input: Value) -> (String, String) {
    let r = server.gql(Some(token), CREATE, json!({ "input": input })).await;
    let payload = &r["data"]["nwcConnectionCreate"];
    assert_eq!(payload["errors"], json!([]), "{r}");
    (
        payload["uri"].as_str().expect("uri").to_string(),
        payload["connection"]["id"].as_str().expect("id").to_string(),
    )
}

/// The balance, asked until the client's relay connection is up (the client connects in the
/// background and gives up on a request sent before).
async fn balance_once_connected(client: &NWC) -> u64 {
    for _ in 0..50 {
        match client.get_balance().await {
            Ok(b) => return b,
            Err(nwc::Error::PrematureExit) => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("get_balance: {e}"),
        }
    }
    panic!("the NWC client never connected")
}

fn error_code(e: &nwc::Error) -> String {
    format!("{e}")
}

async fn an_nwc_client_pays_within_its_budget_until_revoked(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.named_member("alice_nwc").await;
    server.fund(&alice.wallet_id, 100_000).await;

    // Bad input is refused before anything is made.
    for bad in [
        json!({ "name": "" }),
        json!({ "name": "x", "methods": ["pay_keysend"] }),
        json!({ "name": "x", "expiresAt": 1 }),
    ] {
        let r = server.gql(Some(&alice.token), CREATE, json!({ "input": bad })).await;
        assert_eq!(
            r["data"]["nwcConnectionCreate"]["errors"][0]["code"], "INVALID_INPUT",
            "{r}"
        );
    }

    // The period is an enum (issue 14): a lowercase string or an unknown period is refused
    // by the schema, before anything is made; an enum value is stored. (Carol's connections,
    // so that Alice's list holds only the one below.)
    let carol = server.member().await;
    for bad in ["hourly", "daily", "HOURLY"] {
        let r = server
            .gql(
                Some(&carol.token),
                CREATE,
                json!({ "input": { "name": "x", "budgetPeriod": bad } }),
            )
            .await;
        assert!(
            r["data"].is_null() && r["errors"][0]["message"].is_string(),
            "{bad}: {r}"
        );
    }
    let r = server
        .gql(
            Some(&carol.token),
            CREATE,
            json!({ "input": { "name": "weekly", "budgetSats": 1, "budgetPeriod": "WEEKLY" } }),
        )
        .await;
    assert_eq!(
        r["data"]["nwcConnectionCreate"]["connection"]["budgetPeriod"], "weekly",
        "{r}"
    );

    let (uri, id) = connect(&server, &alice.token, json!({ "name": "zapper", "budgetSats": 5_000 })).await;
    assert!(uri.starts_with("nostr+walletconnect://"), "{uri}");
    assert!(uri.contains("lud16=alice_nwc%40"), "{uri}");
    let parsed = NostrWalletConnectURI::parse(&uri).expect("a NIP-47 URI");
    let client = NWC::new(parsed);

    assert_eq!(balance_once_connected(&client).await, 100_000_000);
    let info = client.get_info().await.expect("info");
    assert!(info.methods.contains(&Method::PayInvoice), "{info:?}");
    assert_eq!(info.network.as_deref(), Some("regtest"));

    // A payment out, within the budget.
    let other = other_node(Network::Regtest);
    let invoice = external_invoice(&other, Some(1_000), 600).await;
    let paid = client
        .pay_invoice(PayInvoiceRequest::new(invoice.clone()))
        .await
        .expect("paid");
    // The preimage is the rail's: the dev simulator reports none for another node's invoice.
    assert!(paid.preimage.is_empty() || paid.preimage.len() == 64, "{paid:?}");
    let fee_msat = paid.fees_paid.expect("fees paid");
    let balance = client.get_balance().await.expect("balance");
    assert_eq!(balance, 100_000_000 - 1_000_000 - fee_msat);

    // Invoices in, looked up, listed.
    let made = client
        .make_invoice(MakeInvoiceRequest {
            amount: 2_000_000,
            description: Some("coffee".into()),
            description_hash: None,
            expiry: Some(600),
        })
        .await
        .expect("invoice");
    let hash = made.payment_hash.clone().expect("payment hash");
    let looked = client
        .lookup_invoice(LookupInvoiceRequest {
            payment_hash: Some(hash.clone()),
            invoice: None,
        })
        .await
        .expect("lookup");
    assert_eq!(looked.transaction_type, Some(TransactionType::Incoming));
    assert_eq!(looked.state, Some(TransactionState::Pending));
    assert_eq!(looked.amount, 2_000_000);
    let sent = client
        .lookup_invoice(LookupInvoiceRequest {
            payment_hash: None,
            invoice: Some(invoice.clone()),
        })
        .await
        .expect("lookup the payment");
    assert_eq!(sent.transaction_type, Some(TransactionType::Outgoing));
    assert_eq!(sent.state, Some(TransactionState::Settled));
    assert_eq!(sent.amount, 1_000_000);
    let listed = client
        .list_transactions(ListTransactionsRequest {
            transaction_type: Some(TransactionType::Outgoing),
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].payment_hash, sent.payment_hash);

    // The budget: 5,000 sats a month, 1,000 (and the fee) spent; 4,500 more is refused and
    // nothing moves.
    let dear = external_invoice(&other, Some(4_500), 600).await;
    let refused = client
        .pay_invoice(PayInvoiceRequest::new(dear))
        .await
        .expect_err("over budget");
    assert!(error_code(&refused).contains("QuotaExceeded"), "{refused}");
    assert_eq!(client.get_balance().await.expect("balance"), balance);
    let list = server.gql(Some(&alice.token), LIST, json!({})).await;
    let spent = list["data"]["nwcConnections"][0]["spentSats"].as_i64().expect("spent");
    assert_eq!(spent, 1_000 + i64::try_from(fee_msat / 1_000).expect("fee"));
    assert!(list["data"]["nwcConnections"][0]["lastUsedAt"].is_number());

    // Someone else cannot revoke it; its owner can, and then it is refused.
    let bob = server.member().await;
    let r = server.gql(Some(&bob.token), REVOKE, json!({ "id": id })).await;
    assert_eq!(r["data"]["nwcConnectionRevoke"]["errors"][0]["code"], "NOT_FOUND");
    let r = server.gql(Some(&alice.token), REVOKE, json!({ "id": id })).await;
    assert_eq!(r["data"]["nwcConnectionRevoke"]["revoked"], true, "{r}");
    let small = external_invoice(&other, Some(10), 600).await;
    let refused = client
        .pay_invoice(PayInvoiceRequest::new(small))
        .await
        .expect_err("revoked");
    assert!(error_code(&refused).contains("Unauthorized"), "{refused}");
    let refused = client.get_balance().await.expect_err("revoked");
    assert!(error_code(&refused).contains("Unauthorized"), "{refused}");
}

async fn nip44_requests_get_nip44_answers_and_payments_are_notified(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.named_member("alice_nip44").await;
    server.fund(&alice.wallet_id, 50_000).await;
    let (uri, _) = connect(
        &server,
        &alice.token,
        json!({ "name": "reader", "methods": ["get_balance", "make_invoice"] }),
    )
    .await;
    let uri = NostrWalletConnectURI::parse(&uri).expect("uri");
    let app = Keys::new(uri.secret.clone());
    let relay_url = format!("ws://{}", server.addr);
    let client = Client::builder().signer(app.clone()).build();
    client.add_relay(&relay_url).await.expect("relay");
    client.connect().await;
    client.wait_for_connection(Duration::from_secs(10)).await;
    let mut notes = client.notifications();
    client
        .subscribe(
            Filter::new()
                .author(uri.public_key)
                .pubkey(app.public_key())
                .kinds([Kind::WalletConnectResponse, Kind::Custom(23_197)]),
            None,
        )
        .await
        .expect("subscribe");

    // A request sealed with NIP-44, tagged as such, answered the same way.
    let ask = |method: &str, params: Value| {
        let body = json!({ "method": method, "params": params }).to_string();
        let sealed = flash_nostr::cipher::seal(
            flash_nostr::cipher::Cipher::Nip44,
            app.secret_key(),
            &uri.public_key,
            &body,
        )
        .expect("seal");
        EventBuilder::new(Kind::WalletConnectRequest, sealed)
            .tags([
                Tag::public_key(uri.public_key),
                Tag::custom(TagKind::custom("encryption"), ["nip44_v2"]),
            ])
            .sign_with_keys(&app)
            .expect("sign")
    };
    let open = |event: &Event| -> Value {
        let plain = flash_nostr::cipher::open(
            flash_nostr::cipher::Cipher::Nip44,
            app.secret_key(),
            &event.pubkey,
            &event.content,
        )
        .expect("a NIP-44 answer");
        serde_json::from_str(&plain).expect("json")
    };

    let request = ask("get_balance", json!({}));
    client.send_event(&request).await.expect("send");
    let answer = next(&mut notes, Kind::WalletConnectResponse).await;
    assert!(answer.tags.event_ids().any(|id| *id == request.id));
    assert_eq!(
        open(&answer),
        json!({ "result_type": "get_balance", "result": { "balance": 50_000_000 } })
    );

    // A method this connection was not given.
    client
        .send_event(&ask("pay_invoice", json!({ "invoice": "lnbcrt1" })))
        .await
        .expect("send");
    let answer = open(&next(&mut notes, Kind::WalletConnectResponse).await);
    assert_eq!(answer["error"]["code"], "RESTRICTED", "{answer}");

    // An invoice made over NWC, paid from outside: the app is told (kind 23197, NIP-44).
    client
        .send_event(&ask(
            "make_invoice",
            json!({ "amount": 3_000_000, "description": "tip" }),
        ))
        .await
        .expect("send");
    let made = open(&next(&mut notes, Kind::WalletConnectResponse).await);
    let invoice = made["result"]["invoice"].as_str().expect("invoice").to_string();
    let paid = server
        .admin(
            "mutation($r: String!) { devLightningPayInvoice(input: {paymentRequest: $r}) { errors { code message } } }",
            json!({ "r": invoice }),
        )
        .await;
    assert_eq!(paid["data"]["devLightningPayInvoice"]["errors"], json!([]), "{paid}");
    let note = open(&next(&mut notes, Kind::Custom(23_197)).await);
    assert_eq!(note["notification_type"], "payment_received", "{note}");
    assert_eq!(note["notification"]["amount"], 3_000_000);
    assert_eq!(note["notification"]["payment_hash"], made["result"]["payment_hash"]);
    client.shutdown().await;
}

/// `devLightningSetOutcome` for the next outgoing payments.
async fn set_outcome(server: &TestServer, outcome: &str) {
    let r = server
        .admin(
            "mutation($input: DevLightningSetOutcomeInput!) { devLightningSetOutcome(input: $input) { errors { code } } }",
            json!({ "input": { "outcome": outcome, "delayMs": 0, "feePpm": 2_000 } }),
        )
        .await;
    assert_eq!(r["data"]["devLightningSetOutcome"]["errors"], json!([]), "{r}");
}

async fn spent_sats(server: &TestServer, token: &str) -> i64 {
    let list = server.gql(Some(token), LIST, json!({})).await;
    list["data"]["nwcConnections"][0]["spentSats"]
        .as_i64()
        .expect("spentSats")
}

/// Requests reserved before a restart (or answered while their payment was in flight): one
/// paid, one failed, one never paid, one still in flight. The sweep leaves young ones alone,
/// then keeps the paid one's amount and fee, gives the failed and the unpaid ones back, waits
/// on the one in flight, and never finishes a reservation twice.
async fn open_reservations_end_as_their_payments_did(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.named_member("alice_sweep").await;
    server.fund(&alice.wallet_id, 100_000).await;
    let (_, id) = connect(&server, &alice.token, json!({ "name": "app", "budgetSats": 50_000 })).await;
    let bank = &server.state.bank;
    let nwc = server.state.nwc.clone().expect("wallet connect runs");
    let (account, wallet) = (
        alice.account_id.parse().expect("account id"),
        alice.wallet_id.parse().expect("wallet id"),
    );
    let period = bank
        .store_for_tests()
        .nwc_of_account(account)
        .await
        .expect("connections")[0]
        .period_start;
    let other = other_node(Network::Regtest);
    let mut fee = 0;
    for (event, outcome) in [
        ("a", Some("SUCCEED")),
        ("b", Some("FAIL")),
        ("c", None),
        ("d", Some("HANG")),
    ] {
        let event_id = event.repeat(64);
        let reserved = bank
            .store_for_tests()
            .nwc_reserve(&id, &event_id, "pay_invoice", 2_000, period)
            .await
            .expect("reserve");
        assert_eq!(reserved, flash_store::Reservation::Reserved);
        let Some(outcome) = outcome else { continue };
        set_outcome(&server, outcome).await;
        let paid = bank
            .ln_pay(flash_bank::LnPayRequest {
                account,
                wallet_id: wallet,
                payment_request: external_invoice(&other, Some(1_000), 600).await,
                amount: None,
                memo: None,
                idempotency_key: Some(format!("nwc:{event_id}")),
            })
            .await
            .expect("a payment");
        if outcome == "SUCCEED" {
            fee = paid.transaction.expect("paid").fee.abs();
            assert!(fee > 0);
        }
    }
    assert_eq!(spent_sats(&server, &alice.token).await, 8_000);

    assert_eq!(
        nwc.finish_open_payments().await.expect("sweep"),
        0,
        "young reservations are left alone"
    );
    server.advance_secs(6 * 60);
    assert_eq!(nwc.finish_open_payments().await.expect("sweep"), 3);
    assert_eq!(
        spent_sats(&server, &alice.token).await,
        1_000 + fee + 2_000,
        "the paid one keeps amount and fee; the one in flight keeps its reservation"
    );
    assert_eq!(nwc.finish_open_payments().await.expect("sweep"), 0, "once");
    assert_eq!(spent_sats(&server, &alice.token).await, 1_000 + fee + 2_000);
}

/// Issue 14, item 3: a NUL (which PostgreSQL text cannot hold) or another control character
/// in a connection's name is `INVALID_INPUT` on both stores, never `INTERNAL_ERROR`.
async fn connection_names_with_control_characters_are_invalid_input(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.named_member("alice_nul").await;
    for name in ["bad\u{0}name", "line\nbreak", "bell\u{7}"] {
        let r = server
            .gql(Some(&alice.token), CREATE, json!({ "input": { "name": name } }))
            .await;
        assert_eq!(
            r["data"]["nwcConnectionCreate"]["errors"][0]["code"], "INVALID_INPUT",
            "{name:?}: {r}"
        );
    }
    let r = server.gql(Some(&alice.token), LIST, json!({})).await;
    assert_eq!(r["data"]["nwcConnections"], json!([]), "{r}");
}
