//! `paymentSend`, the one mutation that pays anything: every kind of destination goes by the
//! rail it should (inside the ledger for this Flash's users, wallets, invoices, addresses and
//! NOSTR users; Lightning or on-chain for anyone else), a withdraw link is claimed into the
//! wallet, and bad destinations are refused with nothing written. Two Flash servers play this
//! Flash and another one. Every scenario runs on SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use nostr_sdk::prelude::{Client, EventBuilder, Keys, Metadata, Nip19Profile, RelayUrl, ToBech32};
use serde_json::{json, Value};

flash_store::on_both_backends!(
    destinations_of_this_flash_settle_in_the_ledger,
    destinations_elsewhere_go_out_by_lightning_or_on_chain,
    a_withdraw_link_is_claimed_into_the_wallet,
    bad_destinations_are_refused_and_nothing_is_written,
);

const PAYMENT_SEND: &str = "mutation($input: PaymentSendInput!) { paymentSend(input: $input) { \
    status errors { code message } transaction { id settlementAmount settlementFee status \
    settlementVia { __typename ... on SettlementViaIntraLedger { counterPartyWalletId } } } } }";

/// Pays `destination` from `m`'s wallet with `paymentSend`; its payload.
async fn pay(s: &TestServer, m: &Member, destination: &str, amount: Option<i64>, key: Option<&str>) -> Value {
    let input = json!({
        "walletId": m.wallet_id,
        "destination": destination,
        "amount": amount,
        "memo": "for you",
        "idempotencyKey": key,
    });
    let r = s.gql(Some(&m.token), PAYMENT_SEND, json!({ "input": input })).await;
    data(&r, "paymentSend").clone()
}

/// Asserts a payment succeeded inside the ledger, to `to`'s wallet, without a fee.
fn assert_inside(payload: &Value, to: &Member) {
    assert_no_payload_errors(payload);
    assert_eq!(payload["status"], "SUCCESS", "{payload}");
    let tx = &payload["transaction"];
    assert_eq!(
        tx["settlementVia"]["__typename"], "SettlementViaIntraLedger",
        "{payload}"
    );
    assert_eq!(
        tx["settlementVia"]["counterPartyWalletId"],
        json!(to.wallet_id),
        "{payload}"
    );
    assert_eq!(tx["settlementFee"], 0, "{payload}");
}

async fn onchain_address(s: &TestServer, m: &Member) -> String {
    let r = s
        .gql(
            Some(&m.token),
            "mutation($input: OnChainAddressCreateInput!) { onChainAddressCreate(input: $input) { errors { code } address } }",
            json!({ "input": { "walletId": m.wallet_id } }),
        )
        .await;
    let payload = data(&r, "onChainAddressCreate");
    assert_no_payload_errors(payload);
    payload["address"].as_str().expect("address").to_string()
}

/// Links a fresh NOSTR key to `m`'s user; the key.
async fn set_npub(s: &TestServer, m: &Member) -> Keys {
    let keys = Keys::generate();
    let npub = keys.public_key().to_bech32().expect("npub");
    let r = s
        .gql(
            Some(&m.token),
            "mutation($n: String!) { userUpdateNpub(input: { npub: $n }) { errors { code } } }",
            json!({ "n": npub }),
        )
        .await;
    assert_eq!(data(&r, "userUpdateNpub")["errors"], json!([]), "{r}");
    keys
}

async fn destinations_of_this_flash_settle_in_the_ledger(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.named_member("alice_p1").await;
    let bob = s.named_member("bob_p1").await;
    s.fund(&alice.wallet_id, 100_000).await;

    // A username (with or without @), a wallet id.
    assert_inside(&pay(&s, &alice, "@bob_p1", Some(1_000), None).await, &bob);
    assert_inside(&pay(&s, &alice, "bob_p1", Some(1_000), None).await, &bob);
    assert_inside(&pay(&s, &alice, &bob.wallet_id, Some(1_000), None).await, &bob);
    // An invoice this Flash issued, with its own amount; and with the amount repeated.
    let invoice = wallet_invoice(&s, &bob, 1_000).await;
    assert_inside(&pay(&s, &alice, &invoice, None, None).await, &bob);
    let invoice = wallet_invoice(&s, &bob, 1_000).await;
    assert_inside(
        &pay(&s, &alice, &format!("lightning:{invoice}"), Some(1_000), None).await,
        &bob,
    );
    // A Lightning address of this Flash.
    let address = format!("bob_p1@{}", s.addr);
    assert_inside(&pay(&s, &alice, &address, Some(1_000), None).await, &bob);
    // One of this Flash's Bitcoin addresses, plain and as a BIP21 URI with its amount.
    let onchain = onchain_address(&s, &bob).await;
    assert_inside(&pay(&s, &alice, &onchain, Some(1_000), None).await, &bob);
    let uri = format!("bitcoin:{onchain}?amount=0.00001&message=rent");
    assert_inside(&pay(&s, &alice, &uri, None, None).await, &bob);
    // A unified QR: its Lightning invoice is paid rather than its address.
    let invoice = wallet_invoice(&s, &bob, 1_000).await;
    let unified = format!("bitcoin:{}?amount=0.00001&lightning={invoice}", onchain.to_uppercase());
    let paid = pay(&s, &alice, &unified, None, None).await;
    assert_inside(&paid, &bob);
    let status = s
        .gql(
            None,
            "query($i: LnInvoicePaymentStatusInput!) { lnInvoicePaymentStatus(input: $i) { status } }",
            json!({ "i": { "paymentRequest": invoice } }),
        )
        .await;
    assert_eq!(data(&status, "lnInvoicePaymentStatus")["status"], "PAID", "{status}");
    // A NOSTR user who set their key here, as an npub and as nostr:nprofile.
    let keys = set_npub(&s, &bob).await;
    let npub = keys.public_key().to_bech32().expect("npub");
    assert_inside(&pay(&s, &alice, &npub, Some(1_000), None).await, &bob);
    let profile = Nip19Profile::new(
        keys.public_key(),
        [RelayUrl::parse("wss://relay.example.com").expect("url")],
    );
    let nprofile = format!("nostr:{}", profile.to_bech32().expect("nprofile"));
    assert_inside(&pay(&s, &alice, &nprofile, Some(1_000), None).await, &bob);

    assert_eq!(s.balance(&bob).await, 11_000);
    assert_eq!(s.balance(&alice).await, 89_000);

    // The same idempotency key answers with the first payment and moves nothing again.
    let first = pay(&s, &alice, "@bob_p1", Some(500), Some("pay-once")).await;
    let again = pay(&s, &alice, "@bob_p1", Some(500), Some("pay-once")).await;
    assert_eq!(
        first["transaction"]["id"], again["transaction"]["id"],
        "{first} {again}"
    );
    assert_eq!(s.balance(&bob).await, 11_500);
    s.journals().await;
}

async fn destinations_elsewhere_go_out_by_lightning_or_on_chain(backend: Backend) {
    let here = TestServer::start(backend).await;
    let there = TestServer::start(backend).await;
    let alice = here.named_member("alice_p2").await;
    there.named_member("carol_p2").await;
    here.fund(&alice.wallet_id, 200_000).await;

    // Another Flash's Lightning address: its invoice, paid over Lightning with the routing fee.
    let address = format!("carol_p2@{}", there.addr);
    let paid = pay(&here, &alice, &address, Some(10_000), None).await;
    assert_eq!(paid["status"], "SUCCESS", "{paid}");
    assert_eq!(
        paid["transaction"]["settlementVia"]["__typename"], "SettlementViaLn",
        "{paid}"
    );
    assert_eq!(paid["transaction"]["settlementFee"], 10, "0.1% routing fee: {paid}");

    // Another node's invoice.
    let node = other_node(flash_core::Network::Regtest);
    let invoice = external_invoice(&node, Some(5_000), 600).await;
    let paid = pay(&here, &alice, &invoice, None, None).await;
    assert_eq!(paid["status"], "SUCCESS", "{paid}");
    assert_eq!(
        paid["transaction"]["settlementVia"]["__typename"], "SettlementViaLn",
        "{paid}"
    );

    // A NOSTR user without an account here, at the Lightning address of the profile this
    // Flash's relay holds.
    let keys = Keys::generate();
    let client = Client::builder().signer(keys.clone()).build();
    client
        .add_relay(format!("ws://{}", here.addr))
        .await
        .expect("add relay");
    client.connect().await;
    client.wait_for_connection(Duration::from_secs(5)).await;
    let profile = Metadata::new().name("carol").lud16(address.clone());
    let sent = client
        .send_event_builder(EventBuilder::metadata(&profile))
        .await
        .expect("publish");
    assert!(sent.failed.is_empty(), "{:?}", sent.failed);
    client.shutdown().await;
    let npub = keys.public_key().to_bech32().expect("npub");
    let paid = pay(&here, &alice, &npub, Some(2_000), None).await;
    assert_eq!(paid["status"], "SUCCESS", "{paid}");
    assert_eq!(
        paid["transaction"]["settlementVia"]["__typename"], "SettlementViaLn",
        "{paid}"
    );
    // One who published no Lightning address: refused, nothing held.
    let stranger = Keys::generate().public_key().to_bech32().expect("npub");
    let refused = pay(&here, &alice, &stranger, Some(2_000), None).await;
    assert_eq!(payload_code(&refused), "INVALID_INPUT", "{refused}");

    // A Bitcoin address of nobody here: queued for the next on-chain batch.
    let paid = pay(
        &here,
        &alice,
        "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080",
        Some(20_000),
        None,
    )
    .await;
    assert_eq!(paid["status"], "PENDING", "{paid}");
    assert_eq!(
        paid["transaction"]["settlementVia"]["__typename"], "SettlementViaOnChain",
        "{paid}"
    );

    here.journals().await;
    there.journals().await;
}

/// A withdraw link of `m`'s wallet for up to 5,000 sats, two uses: its bech32 LNURL
/// (upper case, as in a QR code) and its `lnurlw://` form.
async fn withdraw_link(s: &TestServer, m: &Member) -> (String, String) {
    let r = s
        .gql(
            Some(&m.token),
            "mutation($input: LnurlWithdrawCreateInput!) { lnurlWithdrawCreate(input: $input) { \
             errors { code message } lnurl url } }",
            json!({ "input": { "maxAmount": 5_000, "minAmount": 100, "uses": 2, "title": "Voucher" } }),
        )
        .await;
    let created = data(&r, "lnurlWithdrawCreate");
    assert_no_payload_errors(created);
    let lnurl = created["lnurl"].as_str().expect("lnurl").to_uppercase();
    let url = created["url"].as_str().expect("url");
    (lnurl, url.replacen("http://", "lnurlw://", 1))
}

/// Waits until `m`'s balance is as `wanted` says (a claimed withdrawal moves in the
/// service's own time), for at most 5 s; the balance last seen.
async fn balance_when(s: &TestServer, m: &Member, wanted: impl Fn(i64) -> bool) -> i64 {
    let mut seen = s.balance(m).await;
    for _ in 0..50 {
        if wanted(seen) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        seen = s.balance(m).await;
    }
    seen
}

async fn a_withdraw_link_is_claimed_into_the_wallet(backend: Backend) {
    let here = TestServer::start(backend).await;
    let there = TestServer::start(backend).await;
    let alice = here.named_member("alice_p3").await;
    let bob = here.named_member("bob_p3").await;
    let carol = there.named_member("carol_p3").await;
    here.fund(&bob.wallet_id, 50_000).await;
    there.fund(&carol.wallet_id, 50_000).await;

    // A link of this Flash, as a bech32 LNURL (read first as a pay link) and as lnurlw://:
    // the service pays alice's invoices, inside the ledger.
    let (lnurl, lnurlw) = withdraw_link(&here, &bob).await;
    for link in [&lnurl, &lnurlw] {
        let claimed = pay(&here, &alice, link, Some(2_000), None).await;
        assert_no_payload_errors(&claimed);
        assert_eq!(claimed["status"], "PENDING", "{link}: {claimed}");
        assert_eq!(claimed["transaction"], Value::Null, "{claimed}");
    }
    assert_eq!(balance_when(&here, &alice, |b| b == 4_000).await, 4_000);
    assert_eq!(here.balance(&bob).await, 46_000);
    // Its two uses are spent: the service refuses a third, nothing is claimed.
    let spent = pay(&here, &alice, &lnurl, Some(2_000), None).await;
    assert_eq!(spent["status"], "FAILURE", "{spent}");
    assert_eq!(payload_code(&spent), "LNURL_REFUSED", "{spent}");

    // Another Flash's link: that service pays alice's invoice over Lightning.
    let (lnurl, _) = withdraw_link(&there, &carol).await;
    let claimed = pay(&here, &alice, &lnurl, Some(3_000), None).await;
    assert_eq!(claimed["status"], "PENDING", "{claimed}");
    let left = balance_when(&there, &carol, |b| b < 47_000).await;
    assert!(
        (46_900..47_000).contains(&left),
        "carol paid 3,000 and the routing fee: {left}"
    );
    // Over the link's limit: refused before any invoice is handed over.
    let over = pay(&here, &alice, &lnurl, Some(6_000), None).await;
    assert_eq!(over["status"], "FAILURE", "{over}");
    here.journals().await;
    there.journals().await;
}

async fn bad_destinations_are_refused_and_nothing_is_written(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.named_member("alice_p4").await;
    s.named_member("bob_p4").await;
    s.fund(&alice.wallet_id, 10_000).await;
    let journals = s.journals().await;
    let token = format!("cashuB{}", "o2F0gaJhaUgA_9SLj17PgGFwgaNhYQFhc3hA".repeat(3));
    let cases: [(&str, Option<i64>, &str); 8] = [
        // Ecash is received, not paid.
        (&token, None, "INVALID_INPUT"),
        // Malformed: an invoice, an address, an npub.
        ("lnbc1notaninvoice", Some(10), "INVALID_INPUT"),
        ("bc1qnotanaddress", Some(10), "INVALID_INPUT"),
        ("npub1qqqsyqcyq5rqwzqf", Some(10), "INVALID_INPUT"),
        // No amount where one is needed; an amount the URI does not ask for.
        ("@bob_p4", None, "INVALID_INPUT"),
        (
            "bitcoin:bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080?amount=0.0001",
            Some(5),
            "AMOUNT_MISMATCH",
        ),
        // More than the wallet holds; nobody by that name.
        ("@bob_p4", Some(20_000), "INSUFFICIENT_BALANCE"),
        ("@nobody_p4", Some(10), "RECIPIENT_NOT_FOUND"),
    ];
    for (destination, amount, code) in cases {
        let refused = pay(&s, &alice, destination, amount, None).await;
        assert_eq!(refused["status"], "FAILURE", "{destination}: {refused}");
        assert_eq!(payload_code(&refused), code, "{destination}: {refused}");
    }
    // Another account's wallet as the payer.
    let bob = s.member().await;
    let input = json!({ "walletId": bob.wallet_id, "destination": "@alice_p4", "amount": 10 });
    let r = s.gql(Some(&alice.token), PAYMENT_SEND, json!({ "input": input })).await;
    assert_eq!(payload_code(data(&r, "paymentSend")), "WALLET_NOT_FOUND", "{r}");
    assert_eq!(s.journals().await, journals);
    assert_eq!(s.balance(&alice).await, 10_000);
}
