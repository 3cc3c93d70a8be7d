//! `flashd` killed with SIGKILL while a melt's Lightning payment is in flight (its notes
//! pending), then restarted: the melt is finished from the node's truth. A success spends the
//! notes once and returns the unused fee reserve as change into the blank outputs the wallet
//! sent; a failure makes the notes spendable again. The mint's books and the ledger balance
//! afterwards. On SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use cashu::nuts::{Id, Keys, KeysResponse, Proofs};
use common::*;
use flash_core::lightning::{DevOutcome, InvoiceDescription, InvoiceRequest, LightningNode};
use flash_core::Network;
use flash_lightning::DevNode;
use flash_mint::wallet::{split, Premint};
use flash_store::testing::Backend;
use serde_json::{json, Value};

/// How long the simulated network takes to answer: far longer than it takes to kill flashd.
const NETWORK_DELAY_MS: u64 = 4_000;
const NOTES: u64 = 2_048;
const AMOUNT: u64 = 2_000;
const PAY_FROM_OUTSIDE: &str =
    "mutation($r: String!) { devLightningPayInvoice(input: {paymentRequest: $r}) { errors { code message } } }";
const ECASH_STATUS: &str = "query { ecashStatus { outstanding balanced pending } }";

fn config(outcome: &str) -> String {
    format!(
        "[lightning.dev]\noutcome = \"{outcome}\"\ndelay_ms = {NETWORK_DELAY_MS}\nfee_ppm = 2000\n\
         [lightning.payments]\npay_timeout_secs = 60\nreconcile_grace_secs = 1\n\
         [mint]\nreconcile_interval_secs = 1\n"
    )
}

async fn active_keys(api: &Api) -> (Id, Keys) {
    let keys: KeysResponse = serde_json::from_value(api.get_json("/v1/keys").await).expect("keys");
    let set = keys.keysets.into_iter().next().expect("a keyset");
    (set.id, set.keys)
}

async fn post(api: &Api, path: &str, body: &Value) -> Value {
    let (status, value) = api.post(path, None, body).await.expect("POST");
    assert_eq!(status, 200, "{path}: {value}");
    value
}

/// Notes worth `sats`, minted over HTTP with the quote's invoice paid from outside.
async fn mint_notes(api: &Api, admin: &str, sats: u64) -> Proofs {
    let quote = post(api, "/v1/mint/quote/bolt11", &json!({ "amount": sats, "unit": "sat" })).await;
    let paid = api
        .admin(admin, PAY_FROM_OUTSIDE, json!({ "r": quote["request"] }))
        .await;
    assert_eq!(paid["devLightningPayInvoice"]["errors"], json!([]), "{paid}");
    let (id, keys) = active_keys(api).await;
    let pre = Premint::random(id, &split(sats)).expect("blind");
    let minted = post(
        api,
        "/v1/mint/bolt11",
        &json!({ "quote": quote["quote"], "outputs": pre.outputs }),
    )
    .await;
    let sigs = serde_json::from_value(minted["signatures"].clone()).expect("signatures");
    pre.unblind(sigs, &keys).expect("unblind")
}

async fn states(api: &Api, proofs: &Proofs) -> Vec<String> {
    let ys: Vec<String> = proofs.iter().map(|p| p.y().expect("Y").to_hex()).collect();
    let answer = post(api, "/v1/checkstate", &json!({ "Ys": ys })).await;
    answer["states"]
        .as_array()
        .expect("states")
        .iter()
        .map(|s| s["state"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// Kills flashd while a melt's notes are pending and the node has taken the payment: the
/// node's outcome decides. (A crash before the node is called is `a_melt_the_node_never_heard_of_gives_its_notes_back`
/// in the mint's tests.)
async fn crash_mid_melt(backend: Backend, outcome: &str) {
    let dir = TempDir::new(&format!("melt-crash-{outcome}"));
    let url = database_url(backend).await;
    let launch = Launch::new(dir.path(), url.as_deref()).config(dir.path(), &config(outcome));
    let mut first = Flashd::start(&launch).await;
    let admin = first.admin_key.clone().expect("admin key");
    let api = Api::new(&first.base);
    let proofs = mint_notes(&api, &admin, NOTES).await;

    let outside = DevNode::new(Network::Regtest, DevNode::generate_key(), DevOutcome::Hang).expect("node");
    let invoice = outside
        .create_invoice(InvoiceRequest {
            amount_msat: Some(AMOUNT * 1_000),
            description: InvoiceDescription::Memo("crash test".into()),
            expiry_secs: 3_600,
        })
        .await
        .expect("invoice");
    let quote = post(
        &api,
        "/v1/melt/quote/bolt11",
        &json!({ "request": invoice.payment_request, "unit": "sat" }),
    )
    .await;
    let quote_id = quote["quote"].as_str().expect("quote id").to_string();
    let reserve = quote["fee_reserve"].as_u64().expect("reserve");
    assert_eq!(reserve, 10, "max(50 bps of 2,000, 10)");
    let (id, keys) = active_keys(&api).await;
    let blanks = Premint::random(id, &[0; 8]).expect("blanks");

    // The melt call blocks while the network routes; meanwhile its notes are pending.
    let melting = {
        let api = api.clone();
        let body = json!({ "quote": quote_id, "inputs": proofs, "outputs": blanks.outputs });
        tokio::spawn(async move { api.post("/v1/melt/bolt11", None, &body).await })
    };
    wait_for(
        "the notes pending",
        Duration::from_secs(10),
        || states(&api, &proofs),
        |s| s.iter().all(|s| s == "PENDING"),
    )
    .await;
    // The simulated node has taken the payment (its event log says so) when flashd dies.
    let log = dir.path().join("lightning-dev/regtest/dev-node.log");
    let hash = invoice.payment_hash.to_string();
    wait_for(
        "the node taking the payment",
        Duration::from_secs(10),
        || async { std::fs::read_to_string(&log).unwrap_or_default() },
        |text| text.lines().any(|l| l.contains("\"payment\"") && l.contains(&hash)),
    )
    .await;
    first.kill_and_wait();
    let answered = melting.await.expect("melt task");
    assert!(answered.is_err(), "the wallet never got an answer: {answered:?}");

    // Restarted: the worker asks the node, which answers once the network has.
    let second = Flashd::start(&launch).await;
    let api = Api::new(&second.base);
    let done = wait_for(
        "the melt finished",
        Duration::from_secs(30),
        || async { api.get_json(&format!("/v1/melt/quote/bolt11/{quote_id}")).await },
        |q| q["state"] != json!("PENDING"),
    )
    .await;
    match outcome {
        "succeed" => {
            assert_eq!(done["state"], json!("PAID"), "{done}");
            assert!(states(&api, &proofs).await.iter().all(|s| s == "SPENT"));
            let change = serde_json::from_value(done["change"].clone()).expect("change");
            let change = blanks.unblind_change(change, &keys).expect("change unblinds");
            let fee = AMOUNT * 2_000 / 1_000_000;
            let back: u64 = change.iter().map(|p| p.amount.to_u64()).sum();
            assert_eq!(back, NOTES - AMOUNT - fee, "everything but the amount and the fee paid");
        }
        _ => {
            assert_eq!(done["state"], json!("UNPAID"), "{done}");
            assert!(states(&api, &proofs).await.iter().all(|s| s == "UNSPENT"), "released");
            // They can be swapped again.
            let pre = Premint::random(id, &split(NOTES)).expect("blind");
            post(&api, "/v1/swap", &json!({ "inputs": proofs, "outputs": pre.outputs })).await;
        }
    }
    let status = api.admin(&admin, ECASH_STATUS, json!({})).await;
    assert_eq!(status["ecashStatus"]["balanced"], json!(true), "{status}");
    assert_eq!(status["ecashStatus"]["pending"], json!(0), "{status}");
    api.assert_ledger_ok(&admin).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_melt_then_success_sqlite() {
    crash_mid_melt(Backend::Sqlite, "succeed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_melt_then_success_postgres() {
    crash_mid_melt(Backend::Postgres, "succeed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_melt_then_failure_sqlite() {
    crash_mid_melt(Backend::Sqlite, "fail").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_melt_then_failure_postgres() {
    crash_mid_melt(Backend::Postgres, "fail").await;
}
