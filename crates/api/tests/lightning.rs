//! Lightning through the API, end to end: invoices paid from outside (the operator's
//! `devLightningPayInvoice`), their status by query and by subscription, `myUpdates`, sends to
//! invoices of other nodes (success with a capped fee, failure with a refund, a slow payment
//! left pending and settled by reconciliation), fee probes, invoices of this Flash paid
//! intraledger, and refusals that must hold nothing. The bank's node is the dev simulator; an
//! "other node" is a second simulator the test makes invoices with. Every test runs on SQLite
//! and on PostgreSQL and ends with the ledger verified.

mod common;

use std::time::Duration;

use common::*;
use flash_core::lightning::{Hash32, InvoiceDescription, LightningNode};
use flash_core::Network;
use serde_json::{json, Value};

flash_store::on_both_backends!(
    receive_from_outside_is_credited_once_and_reported,
    no_amount_and_on_behalf_invoices_are_paid_from_outside,
    send_to_another_node_pays_a_capped_fee,
    failed_send_is_refunded_in_full,
    failed_send_keeps_its_invoice_in_history,
    failed_invoice_can_be_paid_again,
    slow_send_stays_pending_until_reconciled,
    fee_probes_estimate_and_report_no_route,
    paying_a_flash_invoice_settles_intraledger,
    refused_sends_hold_nothing,
    refused_invoice_requests_create_nothing,
    operator_and_health_show_the_simulator,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// The transaction fields these tests look at, Lightning parts included.
const LN_TX: &str = "id direction memo settlementAmount settlementFee settlementCurrency status \
    settlementVia { __typename ... on SettlementViaLn { preImage } \
      ... on SettlementViaIntraLedger { counterPartyUsername counterPartyWalletId } } \
    initiationVia { __typename ... on InitiationViaLn { paymentHash paymentRequest } \
      ... on InitiationViaIntraLedger { counterPartyUsername counterPartyWalletId } }";

const INVOICE_CREATE: &str = "mutation($input: LnInvoiceCreateInput!) { lnInvoiceCreate(input: $input) { \
    errors { code message } invoice { paymentHash paymentRequest paymentStatus satoshis createdAt expiresAt } } }";

const NO_AMOUNT_INVOICE_CREATE: &str = "mutation($input: LnNoAmountInvoiceCreateInput!) { \
    lnNoAmountInvoiceCreate(input: $input) { errors { code message } \
    invoice { paymentHash paymentRequest paymentStatus createdAt expiresAt } } }";

const ON_BEHALF_CREATE: &str = "mutation($input: LnInvoiceCreateOnBehalfOfRecipientInput!) { \
    lnInvoiceCreateOnBehalfOfRecipient(input: $input) { errors { code message } \
    invoice { paymentHash paymentRequest paymentStatus satoshis } } }";

const NO_AMOUNT_ON_BEHALF_CREATE: &str = "mutation($input: LnNoAmountInvoiceCreateOnBehalfOfRecipientInput!) { \
    lnNoAmountInvoiceCreateOnBehalfOfRecipient(input: $input) { errors { code message } \
    invoice { paymentHash paymentRequest paymentStatus } } }";

const STATUS_QUERY: &str = "query($input: LnInvoicePaymentStatusInput!) { lnInvoicePaymentStatus(input: $input) { \
    errors { code message } status paymentHash paymentRequest } }";

const STATUS_SUBSCRIPTION: &str = "subscription($input: LnInvoicePaymentStatusInput!) { \
    lnInvoicePaymentStatus(input: $input) { errors { code message } status paymentHash paymentRequest } }";

const FEE_PROBE: &str = "mutation($input: LnInvoiceFeeProbeInput!) { lnInvoiceFeeProbe(input: $input) { \
    errors { code message } amount } }";

const NO_AMOUNT_FEE_PROBE: &str = "mutation($input: LnNoAmountInvoiceFeeProbeInput!) { \
    lnNoAmountInvoiceFeeProbe(input: $input) { errors { code message } amount } }";

const DEV_PAY: &str = "mutation($input: DevLightningPayInvoiceInput!) { devLightningPayInvoice(input: $input) { \
    errors { code message } success } }";

const SET_OUTCOME: &str = "mutation($input: DevLightningSetOutcomeInput!) { devLightningSetOutcome(input: $input) { \
    errors { code message } success } }";

const RECONCILE: &str = "mutation { lightningReconcile { errors { code message } checked succeeded failed pending } }";

fn ln_pay_mutation() -> String {
    format!(
        "mutation($input: LnInvoicePaymentInput!) {{ lnInvoicePaymentSend(input: $input) {{ \
         status errors {{ code message }} transaction {{ {LN_TX} }} }} }}"
    )
}

fn ln_no_amount_pay_mutation() -> String {
    format!(
        "mutation($input: LnNoAmountInvoicePaymentInput!) {{ lnNoAmountInvoicePaymentSend(input: $input) {{ \
         status errors {{ code message }} transaction {{ {LN_TX} }} }} }}"
    )
}

fn my_updates_subscription() -> String {
    format!(
        "subscription {{ myUpdates {{ errors {{ code message }} update {{ __typename \
         ... on IntraLedgerUpdate {{ walletId amount }} \
         ... on LnUpdate {{ paymentHash status walletId transaction {{ {LN_TX} }} }} }} }} }}"
    )
}

/// The fee cap of the bank's default config: 50 bps of the amount, rounded up, at least 10.
fn fee_cap(amount: i64) -> i64 {
    ((amount * 50 + 9_999) / 10_000).max(10)
}

/// Verifies the ledger: ok, no problems and every currency summing to zero; the journal count.
async fn verify_ledger(s: &TestServer) -> i64 {
    let r = s
        .admin(
            "{ ledgerVerify { ok problems journalsChecked accountsChecked currencies { currency total } } }",
            json!({}),
        )
        .await;
    let v = data(&r, "ledgerVerify");
    assert_eq!(v["ok"], true, "ledger invariants broken: {v}");
    assert_eq!(v["problems"], json!([]), "{v}");
    let currencies = v["currencies"].as_array().expect("currencies");
    assert!(!currencies.is_empty(), "no currency totals: {v}");
    for c in currencies {
        assert_eq!(c["total"], 0, "currency does not sum to zero: {v}");
    }
    v["journalsChecked"].as_i64().expect("journalsChecked")
}

/// Sets how the bank's simulator pays other nodes (asserting the operator call succeeded).
async fn set_outcome(s: &TestServer, outcome: &str, delay_ms: i64, fee_ppm: i64) {
    let r = s
        .admin(
            SET_OUTCOME,
            json!({ "input": { "outcome": outcome, "delayMs": delay_ms, "feePpm": fee_ppm } }),
        )
        .await;
    let payload = data(&r, "devLightningSetOutcome");
    assert_no_payload_errors(payload);
    assert_eq!(payload["success"], true, "{payload}");
}

/// `devLightningPayInvoice`; its payload.
async fn dev_pay(s: &TestServer, payment_request: &str, amount: Option<i64>) -> Value {
    let r = s
        .admin(
            DEV_PAY,
            json!({ "input": { "paymentRequest": payment_request, "amount": amount } }),
        )
        .await;
    data(&r, "devLightningPayInvoice").clone()
}

/// `lnInvoiceCreate` with `token`; the payload.
async fn create_invoice(s: &TestServer, token: Option<&str>, input: Value) -> Value {
    let r = s.gql(token, INVOICE_CREATE, json!({ "input": input })).await;
    data(&r, "lnInvoiceCreate").clone()
}

/// An invoice for `amount` into `m`'s wallet; its `(paymentRequest, paymentHash)`.
async fn invoice_for(s: &TestServer, m: &Member, amount: i64, memo: &str) -> (String, String) {
    let payload = create_invoice(
        s,
        Some(&m.token),
        json!({ "walletId": m.wallet_id, "amount": amount, "memo": memo }),
    )
    .await;
    assert_no_payload_errors(&payload);
    let invoice = &payload["invoice"];
    (
        invoice["paymentRequest"].as_str().expect("paymentRequest").to_string(),
        invoice["paymentHash"].as_str().expect("paymentHash").to_string(),
    )
}

/// `lnInvoicePaymentStatus` (no token); the payload.
async fn invoice_status(s: &TestServer, payment_request: &str) -> Value {
    let r = s
        .gql(
            None,
            STATUS_QUERY,
            json!({ "input": { "paymentRequest": payment_request } }),
        )
        .await;
    data(&r, "lnInvoicePaymentStatus").clone()
}

/// `lnInvoicePaymentSend`; the whole response.
async fn ln_pay_raw(s: &TestServer, token: Option<&str>, input: Value) -> Value {
    s.gql(token, &ln_pay_mutation(), json!({ "input": input })).await
}

/// `lnInvoicePaymentSend` from `m`'s wallet; the payload (no top-level errors).
async fn ln_pay(s: &TestServer, m: &Member, payment_request: &str) -> Value {
    let r = ln_pay_raw(
        s,
        Some(&m.token),
        json!({ "walletId": m.wallet_id, "paymentRequest": payment_request }),
    )
    .await;
    data(&r, "lnInvoicePaymentSend").clone()
}

/// `lnNoAmountInvoicePaymentSend` with `token`; the whole response.
async fn ln_no_amount_pay_raw(s: &TestServer, token: Option<&str>, input: Value) -> Value {
    s.gql(token, &ln_no_amount_pay_mutation(), json!({ "input": input }))
        .await
}

/// `m`'s transactions, newest first.
async fn history(s: &TestServer, m: &Member) -> Vec<Value> {
    let r = s
        .gql(
            Some(&m.token),
            &format!(
                "{{ me {{ defaultAccount {{ transactions(first: 100) {{ edges {{ node {{ {LN_TX} }} }} }} }} }} }}"
            ),
            json!({}),
        )
        .await;
    data(&r, "me")["defaultAccount"]["transactions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"].clone())
        .collect()
}

/// The transaction with this id in `m`'s history (panics when absent).
async fn history_tx(s: &TestServer, m: &Member, id: &Value) -> Value {
    let txs = history(s, m).await;
    txs.iter()
        .find(|t| &t["id"] == id)
        .cloned()
        .unwrap_or_else(|| panic!("transaction {id} not in history {txs:?}"))
}

/// A payment status subscription on a fresh connection (no token), with the first message
/// (the status now) already read and returned.
async fn watch_invoice(s: &TestServer, payment_request: &str) -> (WsClient, Value) {
    let mut ws = s.ws_connect(None).await;
    ws.send(json!({
        "id": "st",
        "type": "subscribe",
        "payload": { "query": STATUS_SUBSCRIPTION, "variables": { "input": { "paymentRequest": payment_request } } },
    }))
    .await;
    let first = status_of(&ws.next().await);
    (ws, first)
}

/// The `lnInvoicePaymentStatus` payload of a `next` message.
fn status_of(msg: &Value) -> Value {
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(msg["id"], "st", "{msg}");
    assert!(msg["payload"]["errors"].is_null(), "{msg}");
    msg["payload"]["data"]["lnInvoicePaymentStatus"].clone()
}

/// Asserts a transaction is a Lightning one for this invoice: settled over Lightning, started
/// with the invoice.
fn assert_ln_tx(tx: &Value, payment_request: &str, payment_hash: &str) {
    assert_eq!(tx["settlementVia"]["__typename"], "SettlementViaLn", "{tx}");
    assert_eq!(tx["initiationVia"]["__typename"], "InitiationViaLn", "{tx}");
    assert_eq!(tx["initiationVia"]["paymentHash"], payment_hash, "{tx}");
    assert_eq!(tx["initiationVia"]["paymentRequest"], payment_request, "{tx}");
}

/// The payment hash of a BOLT11 invoice, as the bank's node decodes it.
async fn hash_of(s: &TestServer, payment_request: &str) -> String {
    s.node
        .decode_invoice(payment_request)
        .await
        .expect("decodable invoice")
        .payment_hash
        .to_string()
}

// ---------------------------------------------------------------------------------------------
// 1. Receiving from outside
// ---------------------------------------------------------------------------------------------

async fn receive_from_outside_is_credited_once_and_reported(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let mut updates = live_updates_with(&s, &my_updates_subscription(), &a, "u").await;
    let before = s.balance(&a).await;
    let history_before = history(&s, &a).await.len();

    // The invoice: an amount, a memo, pending, into A's wallet, for the regtest node.
    let payload = create_invoice(
        &s,
        Some(&a.token),
        json!({ "walletId": a.wallet_id, "amount": 12_345, "memo": "coffee", "expiresIn": 30 }),
    )
    .await;
    assert_no_payload_errors(&payload);
    let invoice = &payload["invoice"];
    let request = invoice["paymentRequest"].as_str().expect("paymentRequest").to_string();
    let hash = invoice["paymentHash"].as_str().expect("paymentHash").to_string();
    assert!(request.starts_with("lnbcrt"), "{request}");
    assert_eq!(hash.len(), 64, "{hash}");
    assert_eq!(hash, hash_of(&s, &request).await);
    assert_eq!(invoice["satoshis"], 12_345);
    assert_eq!(invoice["paymentStatus"], "PENDING");
    let created = invoice["createdAt"].as_i64().expect("createdAt");
    let expires = invoice["expiresAt"].as_i64().expect("expiresAt");
    assert_eq!(expires - created, 30 * 60, "{invoice}");
    let decoded = s.node.decode_invoice(&request).await.expect("decode");
    assert_eq!(decoded.amount_msat, Some(12_345_000));
    assert_eq!(decoded.description, InvoiceDescription::Memo("coffee".into()));

    // Nothing is credited by issuing it; anyone may ask for its status.
    assert_eq!(s.balance(&a).await, before);
    let status = invoice_status(&s, &request).await;
    assert_no_payload_errors(&status);
    assert_eq!(status["status"], "PENDING");
    assert_eq!(status["paymentHash"], hash.as_str());
    assert_eq!(status["paymentRequest"], request.as_str());

    // The status subscription says PENDING first.
    let (mut watch, first) = watch_invoice(&s, &request).await;
    assert_no_payload_errors(&first);
    assert_eq!(first["status"], "PENDING", "{first}");
    assert_eq!(first["paymentHash"], hash.as_str());

    // Paid from outside: credited exactly once.
    let paid = dev_pay(&s, &request, None).await;
    assert_no_payload_errors(&paid);
    assert_eq!(paid["success"], true);
    assert_eq!(s.balance(&a).await, before + 12_345);
    let again = dev_pay(&s, &request, None).await;
    assert_eq!(payload_code(&again), "INVOICE_ALREADY_PAID", "{again}");
    assert_eq!(again["success"], false);
    assert_eq!(s.balance(&a).await, before + 12_345);

    // The subscription then says PAID and ends.
    let next = status_of(&watch.next().await);
    assert_no_payload_errors(&next);
    assert_eq!(next["status"], "PAID", "{next}");
    assert_eq!(next["paymentHash"], hash.as_str());
    assert_eq!(watch.next().await, json!({ "type": "complete", "id": "st" }));
    // The query agrees.
    assert_eq!(invoice_status(&s, &request).await["status"], "PAID");

    // myUpdates: one LnUpdate, PAID, with the Lightning transaction.
    let update = update_of(&updates.next().await, "u");
    assert_eq!(update["__typename"], "LnUpdate", "{update}");
    assert_eq!(update["status"], "PAID");
    assert_eq!(update["paymentHash"], hash.as_str());
    assert_eq!(update["walletId"], a.wallet_id.as_str());
    let tx = &update["transaction"];
    assert_eq!(tx["direction"], "RECEIVE");
    assert_eq!(tx["settlementAmount"], 12_345);
    assert_eq!(tx["settlementFee"], 0);
    assert_eq!(tx["settlementCurrency"], "BTC");
    assert_eq!(tx["status"], "SUCCESS");
    assert_eq!(tx["memo"], "coffee");
    assert_ln_tx(tx, &request, &hash);
    // The refused second payment announced nothing.
    assert!(
        updates.next_within(Duration::from_millis(500)).await.is_none(),
        "an update for a payment that did not happen"
    );

    // History: one line more, the same transaction.
    let txs = history(&s, &a).await;
    assert_eq!(txs.len(), history_before + 1);
    assert_eq!(txs[0], *tx, "history and myUpdates disagree");

    // A status query for an invoice Flash did not issue is a payload error.
    let other = other_node(Network::Regtest);
    let foreign = external_invoice(&other, Some(1_000), 600).await;
    let status = invoice_status(&s, &foreign).await;
    assert_eq!(payload_code(&status), "INVOICE_NOT_FOUND", "{status}");
    assert_eq!(status["status"], Value::Null);
    // And the operator may not "pay from outside" an invoice Flash did not issue.
    let r = dev_pay(&s, &foreign, None).await;
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(payload_code(&r), "INVOICE_NOT_FOUND", "{r}");

    verify_ledger(&s).await;
}

async fn no_amount_and_on_behalf_invoices_are_paid_from_outside(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let journals = verify_ledger(&s).await;

    // A no-amount invoice: the payer chooses; without an amount nothing is paid.
    let r = s
        .gql(
            Some(&a.token),
            NO_AMOUNT_INVOICE_CREATE,
            json!({ "input": { "walletId": a.wallet_id, "memo": "tips" } }),
        )
        .await;
    let payload = data(&r, "lnNoAmountInvoiceCreate");
    assert_no_payload_errors(payload);
    let invoice = &payload["invoice"];
    assert_eq!(invoice["paymentStatus"], "PENDING");
    let expiry = invoice["expiresAt"].as_i64().expect("expiresAt") - invoice["createdAt"].as_i64().expect("createdAt");
    assert_eq!(expiry, 120 * 60, "default no-amount expiry: {invoice}");
    let request = invoice["paymentRequest"].as_str().expect("paymentRequest").to_string();
    assert_eq!(s.node.decode_invoice(&request).await.expect("decode").amount_msat, None);
    let r = dev_pay(&s, &request, None).await;
    assert_eq!(r["success"], false, "{r}");
    assert!(!r["errors"].as_array().expect("errors").is_empty(), "{r}");
    assert_eq!(s.balance(&a).await, 0);
    assert_eq!(verify_ledger(&s).await, journals);

    let r = dev_pay(&s, &request, Some(777)).await;
    assert_no_payload_errors(&r);
    assert_eq!(s.balance(&a).await, 777);
    assert_eq!(invoice_status(&s, &request).await["status"], "PAID");
    let txs = history(&s, &a).await;
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0]["settlementAmount"], 777);
    assert_eq!(txs[0]["direction"], "RECEIVE");
    assert_eq!(txs[0]["memo"], "tips");
    assert_ln_tx(&txs[0], &request, &hash_of(&s, &request).await);
    let r = dev_pay(&s, &request, Some(777)).await;
    assert_eq!(payload_code(&r), "INVOICE_ALREADY_PAID", "{r}");
    assert_eq!(s.balance(&a).await, 777);

    // On behalf of the recipient: no token, a description hash instead of the memo.
    let description_hash = "8c4fd2a5e0b4de34ac3f0a0d2c1e8b7f6a5d4c3b2a19081726354453627180aa";
    let r = s
        .gql(
            None,
            ON_BEHALF_CREATE,
            json!({ "input": { "recipientWalletId": a.wallet_id, "amount": 2_000, "descriptionHash": description_hash } }),
        )
        .await;
    let payload = data(&r, "lnInvoiceCreateOnBehalfOfRecipient");
    assert_no_payload_errors(payload);
    assert_eq!(payload["invoice"]["satoshis"], 2_000);
    assert_eq!(payload["invoice"]["paymentStatus"], "PENDING");
    let request = payload["invoice"]["paymentRequest"]
        .as_str()
        .expect("paymentRequest")
        .to_string();
    let decoded = s.node.decode_invoice(&request).await.expect("decode");
    let expected: Hash32 = description_hash.parse().expect("hex hash");
    assert_eq!(decoded.description, InvoiceDescription::Hash(expected));
    assert_eq!(decoded.amount_msat, Some(2_000_000));
    assert_no_payload_errors(&dev_pay(&s, &request, None).await);
    assert_eq!(s.balance(&a).await, 2_777);
    assert_eq!(invoice_status(&s, &request).await["status"], "PAID");

    // A description hash that is not 32 bytes of hex is refused, and nothing is issued.
    let r = s
        .gql(
            None,
            ON_BEHALF_CREATE,
            json!({ "input": { "recipientWalletId": a.wallet_id, "amount": 2_000, "descriptionHash": "abc" } }),
        )
        .await;
    let payload = data(&r, "lnInvoiceCreateOnBehalfOfRecipient");
    assert_eq!(payload_code(payload), "INVALID_INVOICE", "{payload}");
    assert_eq!(payload["invoice"], Value::Null);
    // On behalf of a wallet that does not exist: refused.
    let r = s
        .gql(
            None,
            ON_BEHALF_CREATE,
            json!({ "input": { "recipientWalletId": "00000000-0000-0000-0000-000000000000", "amount": 5 } }),
        )
        .await;
    assert_eq!(
        payload_code(data(&r, "lnInvoiceCreateOnBehalfOfRecipient")),
        "WALLET_NOT_FOUND"
    );

    // A no-amount invoice on behalf of the recipient, also without a token.
    let r = s
        .gql(
            None,
            NO_AMOUNT_ON_BEHALF_CREATE,
            json!({ "input": { "recipientWalletId": a.wallet_id, "memo": "zap" } }),
        )
        .await;
    let payload = data(&r, "lnNoAmountInvoiceCreateOnBehalfOfRecipient");
    assert_no_payload_errors(payload);
    let request = payload["invoice"]["paymentRequest"]
        .as_str()
        .expect("paymentRequest")
        .to_string();
    assert_no_payload_errors(&dev_pay(&s, &request, Some(21)).await);
    assert_eq!(s.balance(&a).await, 2_798);

    // The owner's own creation still needs a token.
    let r = s
        .gql(
            None,
            INVOICE_CREATE,
            json!({ "input": { "walletId": a.wallet_id, "amount": 5 } }),
        )
        .await;
    assert_eq!(top_code(&r), "UNAUTHENTICATED", "{r}");
    let r = s
        .gql(
            None,
            NO_AMOUNT_INVOICE_CREATE,
            json!({ "input": { "walletId": a.wallet_id } }),
        )
        .await;
    assert_eq!(top_code(&r), "UNAUTHENTICATED", "{r}");

    assert_eq!(verify_ledger(&s).await, journals + 3);
}

// ---------------------------------------------------------------------------------------------
// 2. Sending to another node
// ---------------------------------------------------------------------------------------------

async fn send_to_another_node_pays_a_capped_fee(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    s.fund(&a.wallet_id, 200_000).await;
    let other = other_node(Network::Regtest);
    set_outcome(&s, "SUCCEED", 0, 3_000).await;

    // 100,000 sats at 3,000 ppm: 300 sats of fee, under the cap of 500 (50 bps).
    let request = external_invoice(&other, Some(100_000), 600).await;
    let hash = hash_of(&s, &request).await;
    let r = ln_pay_raw(
        &s,
        Some(&a.token),
        json!({ "walletId": a.wallet_id, "paymentRequest": request, "memo": "rent", "idempotencyKey": "rent-1" }),
    )
    .await;
    let payload = data(&r, "lnInvoicePaymentSend").clone();
    assert_no_payload_errors(&payload);
    assert_eq!(payload["status"], "SUCCESS", "{payload}");
    let tx = &payload["transaction"];
    assert_eq!(tx["direction"], "SEND");
    assert_eq!(tx["status"], "SUCCESS");
    assert_eq!(tx["settlementFee"], 300);
    assert!(tx["settlementFee"].as_i64().expect("fee") <= fee_cap(100_000));
    assert_eq!(tx["settlementAmount"], -100_300);
    assert_eq!(tx["memo"], "rent");
    assert_ln_tx(tx, &request, &hash);
    assert_eq!(s.balance(&a).await, 200_000 - 100_300);
    // History shows the same, settled, transaction.
    assert_eq!(history_tx(&s, &a, &tx["id"]).await, *tx);
    let journals = verify_ledger(&s).await;

    // A retry with the same key answers the same payment; nothing moves.
    let r = ln_pay_raw(
        &s,
        Some(&a.token),
        json!({ "walletId": a.wallet_id, "paymentRequest": request, "memo": "rent", "idempotencyKey": "rent-1" }),
    )
    .await;
    let retry = data(&r, "lnInvoicePaymentSend");
    assert_eq!(retry["status"], "SUCCESS", "{retry}");
    assert_eq!(retry["transaction"]["id"], tx["id"]);
    // Paying it again under a new key: already paid, nothing taken.
    let again = ln_pay(&s, &a, &request).await;
    assert_eq!(again["status"], "ALREADY_PAID", "{again}");
    assert_eq!(again["transaction"], Value::Null);
    assert_eq!(s.balance(&a).await, 200_000 - 100_300);
    assert_eq!(verify_ledger(&s).await, journals);

    // A small payment: the 10-sat floor of the cap applies; the node's fee is within it.
    set_outcome(&s, "SUCCEED", 0, 5_000).await;
    let small = external_invoice(&other, Some(1_000), 600).await;
    let payload = ln_pay(&s, &a, &small).await;
    assert_no_payload_errors(&payload);
    assert_eq!(payload["status"], "SUCCESS", "{payload}");
    assert_eq!(payload["transaction"]["settlementFee"], 5);
    assert_eq!(payload["transaction"]["settlementAmount"], -1_005);
    assert_eq!(s.balance(&a).await, 200_000 - 100_300 - 1_005);

    // A node fee above the cap is not paid: the payment fails and is refunded.
    set_outcome(&s, "SUCCEED", 0, 20_000).await;
    let dear = external_invoice(&other, Some(10_000), 600).await;
    let payload = ln_pay(&s, &a, &dear).await;
    assert_eq!(payload["status"], "FAILURE", "{payload}");
    assert_eq!(payload_code(&payload), "PAYMENT_FAILED");
    assert_eq!(payload["transaction"]["status"], "FAILURE");
    assert_eq!(s.balance(&a).await, 200_000 - 100_300 - 1_005);

    // A no-amount invoice of another node, paid an amount.
    set_outcome(&s, "SUCCEED", 0, 1_000).await;
    let open = external_invoice(&other, None, 600).await;
    let r = ln_no_amount_pay_raw(
        &s,
        Some(&a.token),
        json!({ "walletId": a.wallet_id, "paymentRequest": open, "amount": 4_000 }),
    )
    .await;
    let payload = data(&r, "lnNoAmountInvoicePaymentSend");
    assert_no_payload_errors(payload);
    assert_eq!(payload["status"], "SUCCESS", "{payload}");
    assert_eq!(payload["transaction"]["settlementFee"], 4);
    assert_eq!(payload["transaction"]["settlementAmount"], -4_004);
    assert_eq!(s.balance(&a).await, 200_000 - 100_300 - 1_005 - 4_004);

    verify_ledger(&s).await;
}

async fn failed_send_is_refunded_in_full(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    s.fund(&a.wallet_id, 50_000).await;
    let other = other_node(Network::Regtest);
    set_outcome(&s, "FAIL", 0, 0).await;

    let request = external_invoice(&other, Some(30_000), 600).await;
    let hash = hash_of(&s, &request).await;
    let payload = ln_pay(&s, &a, &request).await;
    assert_eq!(payload["status"], "FAILURE", "{payload}");
    assert_eq!(payment_failed_codes(&payload), 1, "{payload}");
    let tx = &payload["transaction"];
    assert_eq!(tx["status"], "FAILURE", "{payload}");
    assert_eq!(tx["direction"], "SEND");
    assert_eq!(tx["settlementVia"]["__typename"], "SettlementViaLn", "{tx}");
    assert_eq!(tx["initiationVia"]["__typename"], "InitiationViaLn", "{tx}");
    assert_eq!(tx["initiationVia"]["paymentHash"], hash.as_str(), "{tx}");
    // Refunded in full: amount and fee reserve.
    assert_eq!(s.balance(&a).await, 50_000);
    // History shows it, failed.
    let line = history_tx(&s, &a, &tx["id"]).await;
    assert_eq!(line["status"], "FAILURE", "{line}");
    assert_eq!(history(&s, &a).await.len(), 2);
    verify_ledger(&s).await;

    // A failure the node reports only after the pay timeout: pending, then reversed by
    // reconciliation, and refunded in full.
    set_outcome(&s, "FAIL", 1_500, 0).await;
    let late = external_invoice(&other, Some(10_000), 600).await;
    let started = std::time::Instant::now();
    let payload = ln_pay(&s, &a, &late).await;
    assert_eq!(payload["status"], "PENDING", "{payload}");
    let tx = payload["transaction"].clone();
    assert_eq!(tx["status"], "PENDING", "{payload}");
    assert_eq!(s.balance(&a).await, 50_000 - 10_000 - fee_cap(10_000));
    verify_ledger(&s).await;
    tokio::time::sleep(Duration::from_millis(2_200).saturating_sub(started.elapsed())).await;
    let r = s.admin(RECONCILE, json!({})).await;
    let report = data(&r, "lightningReconcile");
    assert_no_payload_errors(report);
    assert_eq!(report["failed"], 1, "{report}");
    assert_eq!(report["succeeded"], 0, "{report}");
    assert_eq!(s.balance(&a).await, 50_000);
    assert_eq!(history_tx(&s, &a, &tx["id"]).await["status"], "FAILURE");
    verify_ledger(&s).await;
}

/// How many `PAYMENT_FAILED` errors a payload has.
fn payment_failed_codes(payload: &Value) -> usize {
    payload["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter(|e| e["code"] == "PAYMENT_FAILED")
        .count()
}

async fn failed_send_keeps_its_invoice_in_history(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    s.fund(&a.wallet_id, 50_000).await;
    let other = other_node(Network::Regtest);
    set_outcome(&s, "FAIL", 0, 0).await;

    let request = external_invoice(&other, Some(30_000), 600).await;
    let hash = hash_of(&s, &request).await;
    let payload = ln_pay(&s, &a, &request).await;
    assert_eq!(payload["status"], "FAILURE", "{payload}");
    // The failed transaction was started with this invoice: it says so, in the answer and in
    // history.
    assert_ln_tx(&payload["transaction"], &request, &hash);
    let line = history_tx(&s, &a, &payload["transaction"]["id"]).await;
    assert_ln_tx(&line, &request, &hash);
    verify_ledger(&s).await;
}

async fn failed_invoice_can_be_paid_again(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    s.fund(&a.wallet_id, 50_000).await;
    let other = other_node(Network::Regtest);
    set_outcome(&s, "FAIL", 0, 0).await;
    let request = external_invoice(&other, Some(30_000), 600).await;
    let payload = ln_pay(&s, &a, &request).await;
    assert_eq!(payload["status"], "FAILURE", "{payload}");
    assert_eq!(s.balance(&a).await, 50_000);

    // Nothing of the failed attempt is live: once the network has a route, the same invoice
    // is paid.
    set_outcome(&s, "SUCCEED", 0, 1_000).await;
    let payload = ln_pay(&s, &a, &request).await;
    assert_eq!(payload["status"], "SUCCESS", "{payload}");
    assert_eq!(payload["transaction"]["settlementFee"], 30);
    assert_eq!(s.balance(&a).await, 50_000 - 30_030);
    verify_ledger(&s).await;
}

async fn slow_send_stays_pending_until_reconciled(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let mut updates = live_updates_with(&s, &my_updates_subscription(), &a, "u").await;
    s.fund(&a.wallet_id, 50_000).await;
    let funded = update_of(&updates.next().await, "u");
    assert_eq!(funded["amount"], 50_000, "{funded}");
    let before = s.balance(&a).await;
    let other = other_node(Network::Regtest);
    // Longer than the bank's 1-second pay timeout.
    set_outcome(&s, "SUCCEED", 2_500, 1_000).await;

    let request = external_invoice(&other, Some(20_000), 600).await;
    let hash = hash_of(&s, &request).await;
    let cap = fee_cap(20_000);
    assert_eq!(cap, 100);
    let started = std::time::Instant::now();
    let payload = ln_pay(&s, &a, &request).await;
    assert_no_payload_errors(&payload);
    assert_eq!(payload["status"], "PENDING", "{payload}");
    let tx = payload["transaction"].clone();
    assert_eq!(tx["status"], "PENDING");
    assert_ln_tx(&tx, &request, &hash);
    // Amount and fee cap are held.
    assert_eq!(s.balance(&a).await, before - 20_000 - cap);
    let line = history_tx(&s, &a, &tx["id"]).await;
    assert_eq!(line["status"], "PENDING", "{line}");
    assert_eq!(line["settlementAmount"], -(20_000 + cap), "{line}");
    verify_ledger(&s).await;

    // myUpdates: the payment is announced in flight.
    let update = update_of(&updates.next().await, "u");
    assert_eq!(update["__typename"], "LnUpdate", "{update}");
    assert_eq!(update["paymentHash"], hash.as_str());
    assert_eq!(update["status"], "PENDING");
    assert_eq!(update["transaction"]["id"], tx["id"]);
    assert_eq!(update["transaction"]["status"], "PENDING");

    // Paying it again while it is in flight is refused and holds nothing more.
    let r = ln_pay(&s, &a, &request).await;
    assert_eq!(payload_code(&r), "PAYMENT_IN_FLIGHT", "{r}");
    assert_eq!(s.balance(&a).await, before - 20_000 - cap);

    // Reconciling before the node knows leaves it pending.
    if started.elapsed() < Duration::from_millis(2_000) {
        let r = s.admin(RECONCILE, json!({})).await;
        let report = data(&r, "lightningReconcile");
        assert_no_payload_errors(report);
        assert_eq!(report["pending"], 1, "{report}");
        assert_eq!(report["succeeded"], 0, "{report}");
        assert_eq!(s.balance(&a).await, before - 20_000 - cap);
    }

    // After the delay, reconciliation settles it and returns the unused fee reserve.
    tokio::time::sleep(Duration::from_millis(3_200).saturating_sub(started.elapsed())).await;
    let r = s.admin(RECONCILE, json!({})).await;
    let report = data(&r, "lightningReconcile");
    assert_no_payload_errors(report);
    assert_eq!(report["checked"], 1, "{report}");
    assert_eq!(report["succeeded"], 1, "{report}");
    assert_eq!(report["failed"], 0, "{report}");
    assert_eq!(report["pending"], 0, "{report}");
    assert_eq!(s.balance(&a).await, before - 20_020);
    let line = history_tx(&s, &a, &tx["id"]).await;
    assert_eq!(line["status"], "SUCCESS", "{line}");
    assert_eq!(line["settlementFee"], 20, "{line}");
    assert_eq!(line["settlementAmount"], -20_020, "{line}");
    assert_ln_tx(&line, &request, &hash);

    // myUpdates: the same transaction, now paid.
    let update = update_of(&updates.next().await, "u");
    assert_eq!(update["__typename"], "LnUpdate", "{update}");
    assert_eq!(update["status"], "PAID", "{update}");
    assert_eq!(update["transaction"]["id"], tx["id"]);
    assert_eq!(update["transaction"]["status"], "SUCCESS");

    // A second pass has nothing left to do.
    let r = s.admin(RECONCILE, json!({})).await;
    let report = data(&r, "lightningReconcile");
    assert_eq!(report["checked"], 0, "{report}");
    assert_eq!(s.balance(&a).await, before - 20_020);
    verify_ledger(&s).await;
}

async fn fee_probes_estimate_and_report_no_route(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let b = s.member().await;
    s.fund(&a.wallet_id, 10_000).await;
    let journals = verify_ledger(&s).await;
    let other = other_node(Network::Regtest);
    let request = external_invoice(&other, Some(100_000), 600).await;
    let open = external_invoice(&other, None, 600).await;
    let probe = |token: String, input: Value| {
        let s = &s;
        async move {
            let r = s.gql(Some(&token), FEE_PROBE, json!({ "input": input })).await;
            data(&r, "lnInvoiceFeeProbe").clone()
        }
    };

    set_outcome(&s, "SUCCEED", 0, 3_000).await;
    let r = probe(
        a.token.clone(),
        json!({ "walletId": a.wallet_id, "paymentRequest": request }),
    )
    .await;
    assert_no_payload_errors(&r);
    assert_eq!(r["amount"], 300, "{r}");
    // The estimate never exceeds the cap the payment would be allowed.
    set_outcome(&s, "SUCCEED", 0, 20_000).await;
    let r = probe(
        a.token.clone(),
        json!({ "walletId": a.wallet_id, "paymentRequest": request }),
    )
    .await;
    assert_eq!(r["amount"], fee_cap(100_000), "{r}");
    // A no-amount invoice, with the amount.
    set_outcome(&s, "SUCCEED", 0, 1_000).await;
    let r = s
        .gql(
            Some(&a.token),
            NO_AMOUNT_FEE_PROBE,
            json!({ "input": { "walletId": a.wallet_id, "paymentRequest": open, "amount": 50_000 } }),
        )
        .await;
    let r = data(&r, "lnNoAmountInvoiceFeeProbe");
    assert_no_payload_errors(r);
    assert_eq!(r["amount"], 50, "{r}");
    // An invoice of this Flash costs nothing.
    let (own, _) = invoice_for(&s, &b, 5_000, "own").await;
    let r = probe(
        a.token.clone(),
        json!({ "walletId": a.wallet_id, "paymentRequest": own }),
    )
    .await;
    assert_no_payload_errors(&r);
    assert_eq!(r["amount"], 0, "{r}");

    // No route under FAIL.
    set_outcome(&s, "FAIL", 0, 0).await;
    let r = probe(
        a.token.clone(),
        json!({ "walletId": a.wallet_id, "paymentRequest": request }),
    )
    .await;
    assert_eq!(payload_code(&r), "NO_ROUTE", "{r}");
    assert_eq!(r["amount"], Value::Null);

    // A read-only key may probe; someone else's wallet may not be probed; no token: refused.
    set_outcome(&s, "SUCCEED", 0, 3_000).await;
    let (_, read) = s.create_key(&a.token, "read", &["READ"]).await;
    let r = probe(read, json!({ "walletId": a.wallet_id, "paymentRequest": request })).await;
    assert_eq!(r["amount"], 300, "{r}");
    let r = probe(
        a.token.clone(),
        json!({ "walletId": b.wallet_id, "paymentRequest": request }),
    )
    .await;
    assert_eq!(payload_code(&r), "WALLET_NOT_FOUND", "{r}");
    let r = s
        .gql(
            None,
            FEE_PROBE,
            json!({ "input": { "walletId": a.wallet_id, "paymentRequest": request } }),
        )
        .await;
    assert_eq!(top_code(&r), "UNAUTHENTICATED", "{r}");

    // Probing moves nothing.
    assert_eq!(s.balance(&a).await, 10_000);
    assert_eq!(verify_ledger(&s).await, journals);
}

// ---------------------------------------------------------------------------------------------
// 3. Paying another Flash user's invoice
// ---------------------------------------------------------------------------------------------

async fn paying_a_flash_invoice_settles_intraledger(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.named_member("alice").await;
    let b = s.named_member("bob").await;
    s.fund(&a.wallet_id, 20_000).await;
    s.fund(&b.wallet_id, 1_000).await;
    // Even a failing network does not matter: the payment never leaves Flash.
    set_outcome(&s, "FAIL", 0, 0).await;

    let (request, hash) = invoice_for(&s, &b, 5_000, "dinner").await;
    let (mut watch, first) = watch_invoice(&s, &request).await;
    assert_eq!(first["status"], "PENDING", "{first}");
    let payload = ln_pay(&s, &a, &request).await;
    assert_no_payload_errors(&payload);
    assert_eq!(payload["status"], "SUCCESS", "{payload}");
    let tx = &payload["transaction"];
    assert_eq!(tx["settlementFee"], 0);
    assert_eq!(tx["settlementAmount"], -5_000);
    assert_eq!(tx["direction"], "SEND");
    assert_eq!(tx["status"], "SUCCESS");
    assert_eq!(tx["settlementVia"]["__typename"], "SettlementViaIntraLedger", "{tx}");
    assert_eq!(tx["settlementVia"]["counterPartyWalletId"], b.wallet_id.as_str());
    assert_eq!(tx["settlementVia"]["counterPartyUsername"], "bob");
    assert_eq!(tx["initiationVia"]["__typename"], "InitiationViaLn", "{tx}");
    assert_eq!(tx["initiationVia"]["paymentHash"], hash.as_str());
    assert_eq!(tx["initiationVia"]["paymentRequest"], request.as_str());
    assert_eq!(s.balance(&a).await, 15_000);
    assert_eq!(s.balance(&b).await, 6_000);
    assert_eq!(invoice_status(&s, &request).await["status"], "PAID");
    let next = status_of(&watch.next().await);
    assert_eq!(next["status"], "PAID", "{next}");
    assert_eq!(next["paymentHash"], hash.as_str());
    assert_eq!(watch.next().await, json!({ "type": "complete", "id": "st" }));

    // The payee's side: a receipt inside Flash, started with its invoice.
    let received = history(&s, &b).await;
    let line = received
        .iter()
        .find(|t| t["initiationVia"]["paymentHash"] == hash.as_str())
        .unwrap_or_else(|| panic!("no receipt for the invoice in {received:?}"));
    assert_eq!(line["direction"], "RECEIVE");
    assert_eq!(line["settlementAmount"], 5_000);
    assert_eq!(line["settlementFee"], 0);
    assert_eq!(line["settlementVia"]["__typename"], "SettlementViaIntraLedger");
    assert_eq!(line["settlementVia"]["counterPartyWalletId"], a.wallet_id.as_str());
    assert_eq!(line["initiationVia"]["__typename"], "InitiationViaLn");
    let journals = verify_ledger(&s).await;

    // Paying it again: already paid, nothing moves.
    let again = ln_pay(&s, &a, &request).await;
    assert_eq!(again["status"], "ALREADY_PAID", "{again}");
    assert_eq!(again["transaction"], Value::Null);
    assert_eq!(s.balance(&a).await, 15_000);
    assert_eq!(s.balance(&b).await, 6_000);
    // Nor can it be paid from outside any more.
    let r = dev_pay(&s, &request, None).await;
    assert_eq!(r["success"], false, "{r}");
    assert_eq!(s.balance(&b).await, 6_000);
    assert_eq!(verify_ledger(&s).await, journals);

    // A no-amount invoice of this Flash, paid by another user an amount.
    let r = s
        .gql(
            Some(&b.token),
            NO_AMOUNT_INVOICE_CREATE,
            json!({ "input": { "walletId": b.wallet_id } }),
        )
        .await;
    let open = data(&r, "lnNoAmountInvoiceCreate")["invoice"]["paymentRequest"]
        .as_str()
        .expect("paymentRequest")
        .to_string();
    let r = ln_no_amount_pay_raw(
        &s,
        Some(&a.token),
        json!({ "walletId": a.wallet_id, "paymentRequest": open, "amount": 1_500 }),
    )
    .await;
    let payload = data(&r, "lnNoAmountInvoicePaymentSend");
    assert_no_payload_errors(payload);
    assert_eq!(payload["status"], "SUCCESS", "{payload}");
    assert_eq!(payload["transaction"]["settlementFee"], 0);
    assert_eq!(s.balance(&a).await, 13_500);
    assert_eq!(s.balance(&b).await, 7_500);
    assert_eq!(invoice_status(&s, &open).await["status"], "PAID");

    // Paying one's own invoice is refused and moves nothing.
    let (mine, _) = invoice_for(&s, &a, 100, "self").await;
    let payload = ln_pay(&s, &a, &mine).await;
    assert_eq!(payload_code(&payload), "SELF_PAYMENT", "{payload}");
    assert_eq!(payload["transaction"], Value::Null);
    assert_eq!(s.balance(&a).await, 13_500);
    assert_eq!(invoice_status(&s, &mine).await["status"], "PENDING");

    // Paying more than one has, even inside Flash: refused, nothing moves, still payable.
    let (big, _) = invoice_for(&s, &b, 50_000, "too much").await;
    let payload = ln_pay(&s, &a, &big).await;
    assert_eq!(payload_code(&payload), "INSUFFICIENT_BALANCE", "{payload}");
    assert_eq!(s.balance(&a).await, 13_500);
    assert_eq!(invoice_status(&s, &big).await["status"], "PENDING");

    verify_ledger(&s).await;
}

// ---------------------------------------------------------------------------------------------
// 4. Refusals
// ---------------------------------------------------------------------------------------------

async fn refused_sends_hold_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let b = s.member().await;
    s.fund(&a.wallet_id, 10_000).await;
    s.fund(&b.wallet_id, 10_000).await;
    let other = other_node(Network::Regtest);
    let journals = verify_ledger(&s).await;
    let history_a = history(&s, &a).await;
    let history_b = history(&s, &b).await;
    let ok_invoice = external_invoice(&other, Some(1_000), 600).await;

    let unchanged = |label: &'static str| {
        let (s, a, b) = (&s, &a, &b);
        let (history_a, history_b) = (&history_a, &history_b);
        async move {
            assert_eq!(s.balance(a).await, 10_000, "{label}: A's balance moved");
            assert_eq!(s.balance(b).await, 10_000, "{label}: B's balance moved");
            assert_eq!(&history(s, a).await, history_a, "{label}: A's history changed");
            assert_eq!(&history(s, b).await, history_b, "{label}: B's history changed");
            assert_eq!(verify_ledger(s).await, journals, "{label}: a journal was posted");
        }
    };
    let refused = |label: &'static str, r: &Value, field: &str, code: &str| {
        let payload = data(r, field);
        assert_eq!(payload_code(payload), code, "{label}: {payload}");
        assert_eq!(payload["status"], "FAILURE", "{label}: {payload}");
        assert_eq!(payload["transaction"], Value::Null, "{label}: {payload}");
    };
    let pay = |token: Option<String>, input: Value| {
        let s = &s;
        async move { ln_pay_raw(s, token.as_deref(), input).await }
    };
    let send = |request: &str| json!({ "walletId": a.wallet_id, "paymentRequest": request });

    // Malformed invoices.
    for bad in ["lnbcrt1garbage", "not an invoice", "", "lightning:"] {
        let r = pay(Some(a.token.clone()), send(bad)).await;
        refused("malformed", &r, "lnInvoicePaymentSend", "INVALID_INVOICE");
    }
    // The last character changed (to one it is not), so the checksum fails.
    let swap = if ok_invoice.ends_with('x') { 'q' } else { 'x' };
    let mangled = format!("{}{swap}", &ok_invoice[..ok_invoice.len() - 1]);
    let r = pay(Some(a.token.clone()), send(&mangled)).await;
    refused("bad checksum", &r, "lnInvoicePaymentSend", "INVALID_INVOICE");
    unchanged("malformed").await;

    // The status of something that is not an invoice is a payload error.
    let status = invoice_status(&s, "lnbcrt1garbage").await;
    assert_eq!(payload_code(&status), "INVALID_INVOICE", "{status}");
    assert_eq!(status["status"], Value::Null);

    // An invoice for another network.
    let signet = other_node(Network::Signet);
    let wrong = external_invoice(&signet, Some(1_000), 600).await;
    let r = pay(Some(a.token.clone()), send(&wrong)).await;
    refused("wrong network", &r, "lnInvoicePaymentSend", "WRONG_NETWORK");
    unchanged("wrong network").await;

    // Amount mismatch: an amount invoice paid another amount, and a no-amount invoice paid
    // without one.
    let r = ln_no_amount_pay_raw(
        &s,
        Some(&a.token),
        json!({ "walletId": a.wallet_id, "paymentRequest": ok_invoice, "amount": 999 }),
    )
    .await;
    refused("amount mismatch", &r, "lnNoAmountInvoicePaymentSend", "AMOUNT_MISMATCH");
    let open = external_invoice(&other, None, 600).await;
    let r = pay(Some(a.token.clone()), send(&open)).await;
    refused("no amount given", &r, "lnInvoicePaymentSend", "AMOUNT_MISMATCH");
    // Zero and negative amounts for a no-amount invoice.
    for amount in [0, -5] {
        let r = ln_no_amount_pay_raw(
            &s,
            Some(&a.token),
            json!({ "walletId": a.wallet_id, "paymentRequest": open, "amount": amount }),
        )
        .await;
        refused(
            "non-positive amount",
            &r,
            "lnNoAmountInvoicePaymentSend",
            "INVALID_AMOUNT",
        );
    }
    unchanged("amount mismatch").await;

    // Insufficient balance: more than the wallet has, and exactly the balance (the fee
    // reserve must be covered too).
    let big = external_invoice(&other, Some(50_000), 600).await;
    let r = pay(Some(a.token.clone()), send(&big)).await;
    refused("insufficient", &r, "lnInvoicePaymentSend", "INSUFFICIENT_BALANCE");
    let all = external_invoice(&other, Some(10_000), 600).await;
    let r = pay(Some(a.token.clone()), send(&all)).await;
    refused(
        "no room for the fee",
        &r,
        "lnInvoicePaymentSend",
        "INSUFFICIENT_BALANCE",
    );
    unchanged("insufficient").await;

    // No token; a read-only key; a receive-only key.
    let r = pay(None, send(&ok_invoice)).await;
    assert_eq!(top_code(&r), "UNAUTHENTICATED", "{r}");
    assert_eq!(r["data"], Value::Null, "{r}");
    let r = ln_no_amount_pay_raw(
        &s,
        None,
        json!({ "walletId": a.wallet_id, "paymentRequest": open, "amount": 5 }),
    )
    .await;
    assert_eq!(top_code(&r), "UNAUTHENTICATED", "{r}");
    let (_, read) = s.create_key(&a.token, "read", &["READ"]).await;
    let (_, receive) = s.create_key(&a.token, "receive", &["RECEIVE"]).await;
    for (label, key) in [("read", &read), ("receive", &receive)] {
        let r = pay(Some(key.clone()), send(&ok_invoice)).await;
        assert_eq!(top_code(&r), "FORBIDDEN_SCOPE", "{label}: {r}");
        assert_eq!(r["data"], Value::Null, "{label}: {r}");
        let r = ln_no_amount_pay_raw(
            &s,
            Some(key),
            json!({ "walletId": a.wallet_id, "paymentRequest": open, "amount": 5 }),
        )
        .await;
        assert_eq!(top_code(&r), "FORBIDDEN_SCOPE", "{label}: {r}");
    }
    unchanged("credentials").await;

    // Someone else's wallet, and a wallet that does not exist.
    let r = pay(
        Some(a.token.clone()),
        json!({ "walletId": b.wallet_id, "paymentRequest": ok_invoice }),
    )
    .await;
    refused("other's wallet", &r, "lnInvoicePaymentSend", "WALLET_NOT_FOUND");
    for w in ["00000000-0000-0000-0000-000000000000", "nope"] {
        let r = pay(
            Some(a.token.clone()),
            json!({ "walletId": w, "paymentRequest": ok_invoice }),
        )
        .await;
        refused("unknown wallet", &r, "lnInvoicePaymentSend", "WALLET_NOT_FOUND");
    }
    unchanged("wallets").await;

    // An expired invoice: expired on the other node's clock (real time) and on the bank's
    // (the test's clock, moved on).
    let expiring = external_invoice(&other, Some(1_000), 1).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    s.advance_secs(60);
    let r = pay(Some(a.token.clone()), send(&expiring)).await;
    refused("expired", &r, "lnInvoicePaymentSend", "INVOICE_EXPIRED");
    unchanged("expired").await;

    // The unexpired invoice is still payable with the right credentials.
    let payload = data(
        &pay(Some(a.token.clone()), send(&ok_invoice)).await,
        "lnInvoicePaymentSend",
    )
    .clone();
    assert_eq!(payload["status"], "SUCCESS", "{payload}");
    assert_eq!(s.balance(&a).await, 10_000 - 1_000 - 1);
    verify_ledger(&s).await;
}

async fn refused_invoice_requests_create_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let b = s.member().await;
    let journals = verify_ledger(&s).await;

    // Expiry out of range, both kinds and on behalf.
    for mins in [0, -1, 1_441] {
        let p = create_invoice(
            &s,
            Some(&a.token),
            json!({ "walletId": a.wallet_id, "amount": 100, "expiresIn": mins }),
        )
        .await;
        assert_eq!(payload_code(&p), "INVALID_EXPIRY", "{mins}: {p}");
        assert_eq!(p["invoice"], Value::Null);
        let r = s
            .gql(
                Some(&a.token),
                NO_AMOUNT_INVOICE_CREATE,
                json!({ "input": { "walletId": a.wallet_id, "expiresIn": mins } }),
            )
            .await;
        assert_eq!(
            payload_code(data(&r, "lnNoAmountInvoiceCreate")),
            "INVALID_EXPIRY",
            "{mins}"
        );
        let r = s
            .gql(
                None,
                ON_BEHALF_CREATE,
                json!({ "input": { "recipientWalletId": a.wallet_id, "amount": 100, "expiresIn": mins } }),
            )
            .await;
        assert_eq!(
            payload_code(data(&r, "lnInvoiceCreateOnBehalfOfRecipient")),
            "INVALID_EXPIRY",
            "{mins}"
        );
    }
    // The bounds themselves are fine.
    for mins in [1, 1_440] {
        let p = create_invoice(
            &s,
            Some(&a.token),
            json!({ "walletId": a.wallet_id, "amount": 100, "expiresIn": mins }),
        )
        .await;
        assert_no_payload_errors(&p);
        let i = &p["invoice"];
        let span = i["expiresAt"].as_i64().expect("expiresAt") - i["createdAt"].as_i64().expect("createdAt");
        assert_eq!(span, mins * 60, "{p}");
    }

    // Bad amounts.
    for amount in [0, -100] {
        let p = create_invoice(&s, Some(&a.token), json!({ "walletId": a.wallet_id, "amount": amount })).await;
        assert_eq!(payload_code(&p), "INVALID_AMOUNT", "{amount}: {p}");
    }

    // Someone else's wallet (only on behalf of the recipient may one ask for that).
    let p = create_invoice(&s, Some(&a.token), json!({ "walletId": b.wallet_id, "amount": 100 })).await;
    assert_eq!(payload_code(&p), "WALLET_NOT_FOUND", "{p}");
    let r = s
        .gql(
            Some(&a.token),
            NO_AMOUNT_INVOICE_CREATE,
            json!({ "input": { "walletId": b.wallet_id } }),
        )
        .await;
    assert_eq!(payload_code(data(&r, "lnNoAmountInvoiceCreate")), "WALLET_NOT_FOUND");

    // Scopes: a read-only key may not create invoices; a receive key may.
    let (_, read) = s.create_key(&a.token, "read", &["READ"]).await;
    let (_, receive) = s.create_key(&a.token, "receive", &["RECEIVE"]).await;
    let r = s
        .gql(
            Some(&read),
            INVOICE_CREATE,
            json!({ "input": { "walletId": a.wallet_id, "amount": 100 } }),
        )
        .await;
    assert_eq!(top_code(&r), "FORBIDDEN_SCOPE", "{r}");
    let p = create_invoice(&s, Some(&receive), json!({ "walletId": a.wallet_id, "amount": 100 })).await;
    assert_no_payload_errors(&p);

    // A memo too long for an invoice.
    let p = create_invoice(
        &s,
        Some(&a.token),
        json!({ "walletId": a.wallet_id, "amount": 100, "memo": "m".repeat(700) }),
    )
    .await;
    assert_eq!(payload_code(&p), "MEMO_TOO_LONG", "{p}");

    assert_eq!(s.balance(&a).await, 0);
    assert_eq!(s.balance(&b).await, 0);
    assert_eq!(verify_ledger(&s).await, journals);
}

// ---------------------------------------------------------------------------------------------
// 5. The node as operators and health checks see it
// ---------------------------------------------------------------------------------------------

async fn operator_and_health_show_the_simulator(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;

    let r = s
        .admin(
            "{ lightningNode { pubkey alias network blockHeight synced simulated channels { id capacity localBalance remoteBalance active } } }",
            json!({}),
        )
        .await;
    let node = data(&r, "lightningNode");
    assert_eq!(node["simulated"], true, "{node}");
    assert_eq!(node["network"], "regtest");
    assert_eq!(node["synced"], true);
    // The simulator starts with one channel, half on each side.
    let half = flash_lightning::DEV_CHANNEL_SATS / 2;
    assert_eq!(
        node["channels"],
        json!([{ "id": "sim:0:0", "capacity": half * 2, "localBalance": half, "remoteBalance": half, "active": true }])
    );
    let info = s.node.node_info().await.expect("node info");
    assert_eq!(node["pubkey"], info.pubkey.as_str());
    // The bank's invoices are signed by that node.
    let (request, _) = invoice_for(&s, &a, 1_000, "x").await;
    let decoded = s.node.decode_invoice(&request).await.expect("decode");
    assert_eq!(decoded.payee, info.pubkey);

    // Users may not read it.
    let r = s
        .graphql_at(
            "/admin/graphql",
            Some(&a.token),
            "{ lightningNode { pubkey } }",
            json!({}),
        )
        .await;
    assert_eq!(top_code(&r), "UNAUTHENTICATED", "{r}");

    // Nor use the simulator's controls.
    let r = s
        .graphql_at(
            "/admin/graphql",
            Some(&a.token),
            DEV_PAY,
            json!({ "input": { "paymentRequest": request } }),
        )
        .await;
    assert_eq!(top_code(&r), "UNAUTHENTICATED", "{r}");
    assert_eq!(s.balance(&a).await, 0);
    assert_eq!(invoice_status(&s, &request).await["status"], "PENDING");

    let r = s.get("/healthz", &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let health = r.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["network"], "regtest");
    let simulated = health["simulated"].as_array().expect("simulated list");
    assert!(simulated.contains(&json!("lightning")), "{health}");

    verify_ledger(&s).await;
}
