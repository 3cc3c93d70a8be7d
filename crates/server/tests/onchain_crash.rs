//! `flashd` killed with SIGKILL after it recorded a signed payout batch and before the network
//! answered its broadcast, then restarted: the recorded transaction is broadcast again (or found
//! already there), every payout is paid exactly once, nothing is signed twice, and the ledger
//! balances. The dev chain keeps its state in the data directory; its `devChainBroadcasts`
//! control makes the network lose the transaction, or take it and lose the answer. On SQLite and
//! on PostgreSQL.

mod common;

use std::time::Duration;

use common::*;
use flash_store::testing::Backend;
use serde_json::{json, Value};

const PAYOUTS: usize = 20;
const DEPOSIT: i64 = 5_000_000;

const ADDRESS: &str =
    "mutation($input: OnChainAddressCreateInput!) { onChainAddressCreate(input: $input) { errors { code message } address } }";
const SEND: &str = "mutation($input: OnChainPaymentSendInput!) { onChainPaymentSend(input: $input) { \
    status errors { code message } transaction { id status settlementAmount settlementFee } } }";
const DEPOSIT_TO: &str =
    "mutation($input: DevChainDepositInput!) { devChainDeposit(input: $input) { errors { message } txHash } }";
const MINE: &str = "mutation($input: DevChainMineInput!) { devChainMine(input: $input) { errors { message } height } }";
const BROADCASTS: &str =
    "mutation($input: DevChainBroadcastsInput!) { devChainBroadcasts(input: $input) { errors { message } } }";
const BATCH_NOW: &str = "mutation { onchainPayoutBatchNow { errors { message } broadcast settled } }";
const BATCHES: &str = "query { onchainBatches(first: 10) { id txHash status fee confirmedHeight } }";
const QUEUE: &str = "query { onchainPayoutQueue { id status } }";

/// Batches only when asked (`onchainPayoutBatchNow`), so all twenty go in one.
const CONFIG: &str = "[onchain.policy]\nbatch_interval_secs = 86400\nconfirmations = 2\n";

/// A regtest address outside this Flash: a P2WSH of a distinct script per index.
fn outside_address(i: usize) -> String {
    let script = bitcoin::ScriptBuf::from_bytes(format!("flash crash test {i}").into_bytes());
    bitcoin::Address::p2wsh(&script, bitcoin::Network::Regtest).to_string()
}

async fn admin_ok(api: &Api, key: &str, query: &str, field: &str, vars: Value) -> Value {
    let data = api.admin(key, query, vars).await;
    let errors = &data[field]["errors"];
    assert!(errors.as_array().is_none_or(Vec::is_empty), "{field}: {errors}");
    data[field].clone()
}

async fn batches(api: &Api, key: &str) -> Vec<Value> {
    api.admin(key, BATCHES, json!({})).await["onchainBatches"]
        .as_array()
        .expect("batches")
        .clone()
}

/// Waits until `check` holds for the batches, or panics after `within`.
async fn wait_for_batches(api: &Api, key: &str, within: Duration, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    wait_for("the batches", within, || batches(api, key), |now| check(now)).await
}

async fn crash_between_recording_and_broadcasting(backend: Backend, behaviour: &str) {
    let dir = TempDir::new(&format!("onchain-crash-{behaviour}"));
    let url = database_url(backend).await;
    let launch = Launch::new(dir.path(), url.as_deref()).config(dir.path(), CONFIG);
    let mut first = Flashd::start(&launch).await;
    let key = first.admin_key.clone().expect("admin key");
    let api = Api::new(&first.base);
    let user = api.device_user(&unique("onchain-crash")).await;
    api.set_level(&key, &user.account_id, "TWO").await;

    // The user deposits from outside; two blocks credit it.
    let created = api
        .gql(&user.token, ADDRESS, json!({ "input": { "walletId": user.wallet_id } }))
        .await;
    let address = created["onChainAddressCreate"]["address"]
        .as_str()
        .expect("address")
        .to_string();
    admin_ok(
        &api,
        &key,
        DEPOSIT_TO,
        "devChainDeposit",
        json!({ "input": { "address": address, "amount": DEPOSIT } }),
    )
    .await;
    admin_ok(&api, &key, MINE, "devChainMine", json!({ "input": { "blocks": 2 } })).await;
    assert_eq!(api.balance(&user).await, DEPOSIT, "the deposit is credited");

    // Twenty withdrawals, held and queued.
    let mut held = 0;
    for i in 0..PAYOUTS {
        let amount = 10_000 + 100 * i as i64;
        let input = json!({ "walletId": user.wallet_id, "address": outside_address(i), "amount": amount });
        let sent = api.gql(&user.token, SEND, json!({ "input": input })).await;
        let payload = &sent["onChainPaymentSend"];
        assert_eq!(payload["status"], "PENDING", "{payload}");
        held += -payload["transaction"]["settlementAmount"]
            .as_i64()
            .expect("amount held");
    }
    assert_eq!(api.balance(&user).await, DEPOSIT - held);

    // The network stops answering; the batch is signed, recorded, and its broadcast hangs.
    admin_ok(
        &api,
        &key,
        BROADCASTS,
        "devChainBroadcasts",
        json!({ "input": { "behaviour": behaviour } }),
    )
    .await;
    let batcher = {
        let (api, key) = (api.clone(), key.clone());
        tokio::spawn(async move {
            api.post("/admin/graphql", Some(&key), &json!({ "query": BATCH_NOW }))
                .await
        })
    };
    let recorded = wait_for_batches(&api, &key, Duration::from_secs(20), |b| {
        b.iter().any(|b| b["status"] == "signed")
    })
    .await;
    assert_eq!(recorded.len(), 1, "one batch for all twenty: {recorded:?}");
    let txid = recorded[0]["txHash"].as_str().expect("txid").to_string();
    let queue = api.admin(&key, QUEUE, json!({})).await;
    assert_eq!(queue["onchainPayoutQueue"], json!([]), "every payout is in the batch");

    first.kill_and_wait();
    let answered = batcher.await.expect("batcher task");
    assert!(answered.is_err(), "the batch call never got an answer: {answered:?}");

    // Restarted (the network relays again): the recorded transaction goes out, once.
    let second = Flashd::start(&launch).await;
    let api = Api::new(&second.base);
    let sent = wait_for_batches(&api, &key, Duration::from_secs(30), |b| {
        b.iter().all(|b| b["status"] == "broadcast")
    })
    .await;
    assert_eq!(sent.len(), 1, "nothing signed twice: {sent:?}");
    assert_eq!(sent[0]["txHash"], txid.as_str(), "the recorded transaction itself");
    admin_ok(&api, &key, MINE, "devChainMine", json!({ "input": { "blocks": 1 } })).await;
    let confirmed = wait_for_batches(&api, &key, Duration::from_secs(30), |b| {
        b.iter().all(|b| b["status"] == "confirmed")
    })
    .await;
    assert_eq!(confirmed.len(), 1, "{confirmed:?}");
    let fee = confirmed[0]["fee"].as_i64().expect("fee");

    // Every payout settled once, with its share of the one fee.
    let sends = {
        let (api, user) = (&api, &user);
        move || async move {
            let payments: Vec<Value> = api
                .history(user, 30)
                .await
                .into_iter()
                .filter(|t| t["direction"] == "SEND")
                .collect();
            assert_eq!(payments.len(), PAYOUTS, "{payments:?}");
            payments
        }
    };
    let payments = wait_for("every payout settled", Duration::from_secs(30), sends, |payments| {
        payments.iter().all(|t| t["status"] == "SUCCESS")
    })
    .await;
    let fees: i64 = payments.iter().map(|t| t["settlementFee"].as_i64().expect("fee")).sum();
    // Shares are rounded up to whole satoshis: at most one satoshi more per payout.
    assert!(
        (fee..fee + PAYOUTS as i64).contains(&fees),
        "the users pay the one transaction's fee ({fee}), not two: {fees}"
    );
    let sent_total: i64 = (0..PAYOUTS).map(|i| 10_000 + 100 * i as i64).sum();
    assert_eq!(api.balance(&user).await, DEPOSIT - sent_total - fees);
    let verify = api.admin(&key, LEDGER_VERIFY, json!({})).await;
    assert_eq!(verify["ledgerVerify"]["ok"], true, "{verify}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_lost_broadcast_is_sent_once_after_restart() {
    crash_between_recording_and_broadcasting(Backend::Sqlite, "LOSE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_broadcast_whose_answer_was_lost_is_not_sent_twice() {
    crash_between_recording_and_broadcasting(Backend::Sqlite, "LOSE_ANSWER").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_lost_broadcast_is_sent_once_after_restart() {
    crash_between_recording_and_broadcasting(Backend::Postgres, "LOSE").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_broadcast_whose_answer_was_lost_is_not_sent_twice() {
    crash_between_recording_and_broadcasting(Backend::Postgres, "LOSE_ANSWER").await;
}
