//! `flashd` killed with SIGKILL while a Lightning payment is held and the node has not
//! answered yet, then restarted: the payment is resolved from the node's truth (the dev
//! simulator keeps its state in the data directory, and the network keeps going while flashd
//! is down). A success settles once with the real fee; a failure returns the whole hold. On
//! SQLite and on PostgreSQL.

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
const AMOUNT: i64 = 50_000;
const FUND: i64 = 200_000;

const PAY: &str = "mutation($input: LnInvoicePaymentInput!) { lnInvoicePaymentSend(input: $input) { \
    status errors { code message } transaction { id status settlementAmount settlementFee } } }";
fn config(outcome: &str) -> String {
    format!(
        "[lightning.dev]\noutcome = \"{outcome}\"\ndelay_ms = {NETWORK_DELAY_MS}\nfee_ppm = 2000\n\
         [lightning.payments]\npay_timeout_secs = 60\nreconcile_interval_secs = 1\nreconcile_grace_secs = 1\n"
    )
}

/// The user's transactions, newest first.
async fn history(api: &Api, user: &User) -> Vec<Value> {
    api.history(user, 10).await
}

/// Waits until `check` holds for the newest transaction, or panics after `within`.
async fn wait_for_newest(api: &Api, user: &User, within: Duration, check: impl Fn(&Value) -> bool) -> Value {
    let newest = || async move { history(api, user).await.into_iter().next() };
    wait_for("the newest transaction", within, newest, |t| {
        t.as_ref().is_some_and(&check)
    })
    .await
    .expect("the newest transaction")
}

async fn crash_mid_payment(backend: Backend, outcome: &str) {
    let dir = TempDir::new(&format!("ln-crash-{outcome}"));
    let url = database_url(backend).await;
    let launch = Launch::new(dir.path(), url.as_deref()).config(dir.path(), &config(outcome));
    let mut first = Flashd::start(&launch).await;
    let admin_key = first.admin_key.clone().expect("admin key");
    let api = Api::new(&first.base);
    let user = api.device_user(&unique("ln-crash")).await;
    api.set_level(&admin_key, &user.account_id, "TWO").await;
    api.fund(&admin_key, &user.wallet_id, FUND, &unique("fund")).await;

    // Another node on the (simulated) network issues the invoice.
    let outside = DevNode::new(Network::Regtest, DevNode::generate_key(), DevOutcome::Hang).expect("node");
    let invoice = outside
        .create_invoice(InvoiceRequest {
            amount_msat: Some(AMOUNT as u64 * 1_000),
            description: InvoiceDescription::Memo("crash test".into()),
            expiry_secs: 3_600,
        })
        .await
        .expect("invoice");

    // The payment call blocks while the network routes; meanwhile the hold is visible.
    let payer = {
        let (api, token) = (api.clone(), user.token.clone());
        let input = json!({ "walletId": user.wallet_id, "paymentRequest": invoice.payment_request });
        tokio::spawn(async move {
            api.post(
                "/graphql",
                Some(&token),
                &json!({ "query": PAY, "variables": { "input": input } }),
            )
            .await
        })
    };
    let held = wait_for_newest(&api, &user, Duration::from_secs(10), |t| t["status"] == "PENDING").await;
    let fee_cap = 250; // max(50 bps of 50,000, 10)
    assert_eq!(
        held["settlementAmount"],
        -(AMOUNT + fee_cap),
        "amount + fee cap held: {held}"
    );
    assert_eq!(api.balance(&user).await, FUND - AMOUNT - fee_cap);
    first.kill_and_wait();
    let answered = payer.await.expect("payer task");
    assert!(answered.is_err(), "the payer never got an answer: {answered:?}");

    // Restarted: reconciliation asks the node, which answers once the network has.
    let second = Flashd::start(&launch).await;
    let api = Api::new(&second.base);
    let settled = wait_for_newest(&api, &user, Duration::from_secs(20), |t| t["status"] != "PENDING").await;
    match outcome {
        "succeed" => {
            let fee = AMOUNT * 2_000 / 1_000_000;
            assert_eq!(settled["status"], "SUCCESS", "{settled}");
            assert_eq!(settled["settlementFee"], fee);
            assert_eq!(settled["settlementAmount"], -(AMOUNT + fee));
            assert_eq!(
                api.balance(&user).await,
                FUND - AMOUNT - fee,
                "debited once, rest returned"
            );
        }
        _ => {
            assert_eq!(settled["status"], "FAILURE", "{settled}");
            assert_eq!(api.balance(&user).await, FUND, "the whole hold returned");
        }
    }
    // Nothing more happens on later passes.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(history(&api, &user).await.len(), 2, "one funding, one payment");
    api.assert_ledger_ok(&admin_key).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_payment_then_success_sqlite() {
    crash_mid_payment(Backend::Sqlite, "succeed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_payment_then_success_postgres() {
    crash_mid_payment(Backend::Postgres, "succeed").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_payment_then_failure_sqlite() {
    crash_mid_payment(Backend::Sqlite, "fail").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_mid_payment_then_failure_postgres() {
    crash_mid_payment(Backend::Postgres, "fail").await;
}
