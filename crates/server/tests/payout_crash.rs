//! `flashd` killed with SIGKILL while a pull payment's payout is being paid over Lightning (its
//! attempt in progress, the simulated network not answered yet), then restarted: the payout is
//! resolved from the node's truth and paid exactly once. A success completes it with the budget
//! debited once; a failure returns the money to the budget and the payout to `AwaitingPayment`
//! with its error. And `flashd` dying at each other step of the payout's saga (its crash points:
//! right after the claim is recorded, after the attempt's hold is written but before the node is
//! asked, after the payment but before the payout is marked completed): after a restart the
//! payout is paid exactly once. On SQLite and on PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use flash_core::lightning::{DevOutcome, InvoiceDescription, InvoiceRequest, LightningNode};
use flash_core::Network;
use flash_lightning::DevNode;
use flash_store::testing::Backend;
use serde_json::{json, Value};

/// How long the simulated network takes to answer: far longer than it takes to kill flashd.
const NETWORK_DELAY_MS: u64 = 4_000;
const AMOUNT: i64 = 20_000;
const BUDGET: i64 = 50_000;
const FUND: i64 = 200_000;

/// The routing fee the simulated network charges: 2,000 ppm of `AMOUNT`.
const FEE: i64 = AMOUNT * 2_000 / 1_000_000;

fn config(outcome: &str, delay_ms: u64) -> String {
    format!(
        "[lightning.dev]\noutcome = \"{outcome}\"\ndelay_ms = {delay_ms}\nfee_ppm = 2000\n\
         [lightning.payments]\npay_timeout_secs = 60\nreconcile_interval_secs = 1\nreconcile_grace_secs = 1\n"
    )
}

/// GET a public Greenfield route.
async fn public(api: &Api, path: &str) -> Value {
    api.get_json(path).await
}

/// A device user at level two with `FUND` sats, a store, and an auto-approved pull payment of
/// `BUDGET`: (user, pull payment id).
async fn shop_with_pull_payment(api: &Api, admin_key: &str) -> (User, String) {
    let owner = api.device_user(&unique("payout-crash")).await;
    api.set_level(admin_key, &owner.account_id, "TWO").await;
    api.fund(admin_key, &owner.wallet_id, FUND, &unique("fund")).await;
    let (_, store) = api
        .post("/api/v1/stores", Some(&owner.token), &json!({"name": "Crash shop"}))
        .await
        .expect("store");
    let store = store["id"].as_str().expect("store id").to_string();
    let (status, pp) = api
        .post(
            &format!("/api/v1/stores/{store}/pull-payments"),
            Some(&owner.token),
            &json!({"amount": BUDGET.to_string(), "currency": "SATS", "autoApproveClaims": true}),
        )
        .await
        .expect("pull payment");
    assert_eq!(status, 200, "{pp}");
    let pp = pp["id"].as_str().expect("pull payment id").to_string();
    assert_eq!(api.balance(&owner).await, FUND - BUDGET);
    (owner, pp)
}

/// A BOLT11 of `AMOUNT` from a node outside Flash.
async fn outside_invoice() -> String {
    let outside = DevNode::new(Network::Regtest, DevNode::generate_key(), DevOutcome::Hang).expect("node");
    outside
        .create_invoice(InvoiceRequest {
            amount_msat: Some(AMOUNT as u64 * 1_000),
            description: InvoiceDescription::Memo("payout crash test".into()),
            expiry_secs: 3_600,
        })
        .await
        .expect("invoice")
        .payment_request
}

/// Archives the pull payment and waits until the owner's balance is `expected` and stays so.
async fn archive_and_settle(api: &Api, base: &str, owner: &User, pp: &str, expected: i64) {
    let resp = http()
        .delete(format!("{base}/api/v1/pull-payments/{pp}"))
        .header("authorization", format!("Bearer {}", owner.token))
        .send()
        .await
        .expect("archive");
    assert_eq!(resp.status().as_u16(), 200);
    wait_for(
        "the budget returned",
        Duration::from_secs(20),
        || api.balance(owner),
        |b| *b == expected,
    )
    .await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(api.balance(owner).await, expected, "nothing more moves");
}

async fn crash_mid_payout(backend: Backend, outcome: &str) {
    let dir = TempDir::new(&format!("payout-crash-{outcome}"));
    let url = database_url(backend).await;
    let launch = Launch::new(dir.path(), url.as_deref()).config(dir.path(), &config(outcome, NETWORK_DELAY_MS));
    let mut first = Flashd::start(&launch).await;
    let admin_key = first.admin_key.clone().expect("admin key");
    let api = Api::new(&first.base);
    let (owner, pp) = shop_with_pull_payment(&api, &admin_key).await;
    let invoice = outside_invoice().await;
    let (status, payout) = api
        .post(
            &format!("/api/v1/pull-payments/{pp}/payouts"),
            None,
            &json!({"destination": invoice}),
        )
        .await
        .expect("claim");
    assert_eq!(status, 200, "{payout}");
    let payout = payout["id"].as_str().expect("payout id").to_string();
    let path = format!("/api/v1/pull-payments/{pp}/payouts/{payout}");
    // The driver starts the attempt at once; the network holds the payment.
    wait_for(
        "the payout in progress",
        Duration::from_secs(10),
        || public(&api, &path),
        |p| p["state"] == "InProgress",
    )
    .await;
    first.kill_and_wait();

    let second = Flashd::start(&launch).await;
    let api = Api::new(&second.base);
    match outcome {
        "succeed" => {
            let done = wait_for(
                "the payout completed",
                Duration::from_secs(30),
                || public(&api, &path),
                |p| p["state"] == "Completed",
            )
            .await;
            assert_eq!(done["paymentProof"]["proofType"], "PayoutLightningBlob", "{done}");
            assert_eq!(done["revision"], 0);
        }
        _ => {
            let back = wait_for(
                "the payout awaiting payment again",
                Duration::from_secs(30),
                || public(&api, &path),
                |p| p["state"] == "AwaitingPayment" && !p["lastError"].is_null(),
            )
            .await;
            assert_eq!(back["state"], "AwaitingPayment", "{back}");
        }
    }
    // Archived now: what the budget holds goes back; the ledger shows one payment at most.
    let expected = match outcome {
        "succeed" => FUND - AMOUNT - FEE,
        _ => FUND,
    };
    archive_and_settle(&api, &second.base, &owner, &pp, expected).await;
    api.assert_ledger_ok(&admin_key).await;
}

/// `flashd` dies at crash point `point` of a payout's saga, then starts again: the payout is
/// paid exactly once.
async fn crash_at(backend: Backend, point: &str) {
    let dir = TempDir::new(&format!("payout-crash-at-{point}"));
    let url = database_url(backend).await;
    let launch = Launch::new(dir.path(), url.as_deref()).config(dir.path(), &config("succeed", 0));
    let mut first = Flashd::start(&launch.clone().env("FLASH_CRASH_AT", point)).await;
    let admin_key = first.admin_key.clone().expect("admin key");
    let api = Api::new(&first.base);
    let (owner, pp) = shop_with_pull_payment(&api, &admin_key).await;
    let invoice = outside_invoice().await;
    // The claim dies with flashd at `payout.claimed`; otherwise the driver takes it on.
    let claimed = api
        .post(
            &format!("/api/v1/pull-payments/{pp}/payouts"),
            None,
            &json!({"destination": invoice}),
        )
        .await;
    if point != "payout.claimed" {
        assert!(claimed.is_ok_and(|(status, _)| status == 200), "the claim is answered");
    }
    assert!(
        first.wait_exit(Duration::from_secs(20)).is_some(),
        "flashd did not die at {point}: {}",
        first.all_output().join("\n")
    );

    let second = Flashd::start(&launch).await;
    let api = Api::new(&second.base);
    // A failed first attempt is tried again after the driver's first backoff (30 s).
    let path = format!("/api/v1/pull-payments/{pp}/payouts");
    let payouts = wait_for(
        "the payout completed",
        Duration::from_secs(90),
        || public(&api, &path),
        |list| {
            list.as_array()
                .is_some_and(|l| l.len() == 1 && l[0]["state"] == "Completed")
        },
    )
    .await;
    assert_eq!(
        payouts[0]["paymentProof"]["proofType"], "PayoutLightningBlob",
        "{payouts}"
    );
    archive_and_settle(&api, &second.base, &owner, &pp, FUND - AMOUNT - FEE).await;
    api.assert_ledger_ok(&admin_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dies_after_the_claim_sqlite() {
    crash_at(Backend::Sqlite, "payout.claimed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dies_after_the_claim_postgres() {
    crash_at(Backend::Postgres, "payout.claimed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dies_after_the_hold_before_the_node_sqlite() {
    crash_at(Backend::Sqlite, "lightning.held").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dies_after_the_hold_before_the_node_postgres() {
    crash_at(Backend::Postgres, "lightning.held").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dies_after_the_payment_before_completion_sqlite() {
    crash_at(Backend::Sqlite, "payout.paid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dies_after_the_payment_before_completion_postgres() {
    crash_at(Backend::Postgres, "payout.paid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_payout_then_success_sqlite() {
    crash_mid_payout(Backend::Sqlite, "succeed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_payout_then_success_postgres() {
    crash_mid_payout(Backend::Postgres, "succeed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_payout_then_failure_sqlite() {
    crash_mid_payout(Backend::Sqlite, "fail").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_payout_then_failure_postgres() {
    crash_mid_payout(Backend::Postgres, "fail").await;
}
