//! On-chain deposits through the app and operator APIs, on the `dev` chain: deposit addresses
//! (`onChainAddressCurrent`, `onChainAddressCreate`), a deposit seen pending
//! (`pendingIncomingBalance`, `myUpdates` OnChainUpdate), credited after its confirmations,
//! shown in history and `transactionsByAddress`, and the refusals. On SQLite and PostgreSQL.

mod common;

use common::*;
use serde_json::{json, Value};

flash_store::on_both_backends!(
    a_deposit_is_pending_then_credited,
    address_refusals_change_nothing,
    a_withdrawal_is_queued_batched_and_confirmed,
    the_operator_lists_and_reclaims_deposits_under_review,
);

const ADDRESS_CURRENT: &str = "mutation($input: OnChainAddressCurrentInput!) { onChainAddressCurrent(input: $input) \
    { errors { code message } address } }";
const ADDRESS_CREATE: &str = "mutation($input: OnChainAddressCreateInput!) { onChainAddressCreate(input: $input) \
    { errors { code message } address } }";
const DEPOSIT: &str = "mutation($input: DevChainDepositInput!) { devChainDeposit(input: $input) \
    { errors { code message } txHash } }";
const MINE: &str = "mutation($input: DevChainMineInput!) { devChainMine(input: $input) { errors { code } height } }";
const ONCHAIN_TX: &str = "id status settlementAmount settlementVia { __typename \
    ... on SettlementViaOnChain { transactionHash vout } } \
    initiationVia { __typename ... on InitiationViaOnChain { address } }";

fn my_updates() -> String {
    format!(
        "subscription {{ myUpdates {{ errors {{ code message }} update {{ __typename \
         ... on IntraLedgerUpdate {{ walletId amount }} \
         ... on OnChainUpdate {{ txNotificationType txHash amount walletId transaction {{ {ONCHAIN_TX} }} }} }} }} }}"
    )
}

async fn address(s: &TestServer, m: &Member, mutation: &str, field: &str) -> String {
    let r = s
        .gql(
            Some(&m.token),
            mutation,
            json!({ "input": { "walletId": m.wallet_id } }),
        )
        .await;
    let payload = data(&r, field);
    assert_no_payload_errors(payload);
    payload["address"].as_str().expect("address").to_string()
}

async fn mine(s: &TestServer, blocks: i32) -> i64 {
    let r = s.admin(MINE, json!({ "input": { "blocks": blocks } })).await;
    data(&r, "devChainMine")["height"].as_i64().expect("height")
}

async fn wallet_view(s: &TestServer, m: &Member) -> Value {
    let r = s
        .gql(
            Some(&m.token),
            "{ me { defaultAccount { wallets { id balance pendingIncomingBalance } } } }",
            json!({}),
        )
        .await;
    data(&r, "me")["defaultAccount"]["wallets"][0].clone()
}

async fn a_deposit_is_pending_then_credited(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let first = address(&s, &alice, ADDRESS_CURRENT, "onChainAddressCurrent").await;
    assert!(first.starts_with("bcrt1q"), "{first}");
    assert_eq!(
        address(&s, &alice, ADDRESS_CURRENT, "onChainAddressCurrent").await,
        first
    );
    let second = address(&s, &alice, ADDRESS_CREATE, "onChainAddressCreate").await;
    assert_ne!(first, second);

    let mut updates = live_updates_with(&s, &my_updates(), &alice, "u").await;
    let probes = s.balance(&alice).await;
    let r = s
        .admin(DEPOSIT, json!({ "input": { "address": first, "amount": 25_000 } }))
        .await;
    let txid = data(&r, "devChainDeposit")["txHash"]
        .as_str()
        .expect("txHash")
        .to_string();
    assert_eq!(txid.len(), 64);

    let pending = update_of(&updates.next().await, "u");
    assert_eq!(pending["__typename"], "OnChainUpdate", "{pending}");
    assert_eq!(pending["txNotificationType"], "OnchainReceiptPending");
    assert_eq!(pending["txHash"], txid.as_str());
    assert_eq!(pending["amount"], 25_000);
    assert_eq!(pending["walletId"], alice.wallet_id.as_str());
    assert_eq!(pending["transaction"], Value::Null, "nothing moved yet");
    let view = wallet_view(&s, &alice).await;
    assert_eq!(
        (view["balance"].as_i64(), view["pendingIncomingBalance"].as_i64()),
        (Some(probes), Some(25_000))
    );

    assert_eq!(mine(&s, 1).await, 1);
    assert_eq!(s.balance(&alice).await, probes, "one confirmation of two");
    assert_eq!(mine(&s, 1).await, 2);
    let credited = update_of(&updates.next().await, "u");
    assert_eq!(credited["txNotificationType"], "OnchainReceipt", "{credited}");
    assert_eq!(credited["txHash"], txid.as_str());
    let tx = &credited["transaction"];
    assert_eq!(tx["status"], "SUCCESS");
    assert_eq!(tx["settlementAmount"], 25_000);
    assert_eq!(tx["settlementVia"]["__typename"], "SettlementViaOnChain");
    assert_eq!(tx["settlementVia"]["transactionHash"], txid.as_str());
    assert_eq!(tx["settlementVia"]["vout"], 0);
    assert_eq!(tx["initiationVia"]["address"], first.as_str());
    let view = wallet_view(&s, &alice).await;
    assert_eq!(
        (view["balance"].as_i64(), view["pendingIncomingBalance"].as_i64()),
        (Some(probes + 25_000), Some(0))
    );

    let by_address = |address: &str| {
        format!(
            "{{ me {{ defaultAccount {{ wallets {{ ... on BTCWallet {{ transactionsByAddress(address: \"{address}\") \
             {{ edges {{ node {{ {ONCHAIN_TX} }} }} pageInfo {{ hasNextPage }} }} }} }} }} }} }}"
        )
    };
    let r = s.gql(Some(&alice.token), &by_address(&first), json!({})).await;
    let edges = &data(&r, "me")["defaultAccount"]["wallets"][0]["transactionsByAddress"]["edges"];
    assert_eq!(edges.as_array().map(Vec::len), Some(1), "{r}");
    assert_eq!(edges[0]["node"]["id"], tx["id"]);
    let r = s.gql(Some(&alice.token), &by_address(&second), json!({})).await;
    let edges = &data(&r, "me")["defaultAccount"]["wallets"][0]["transactionsByAddress"]["edges"];
    assert_eq!(edges, &json!([]));

    mine(&s, 3).await;
    assert_eq!(s.balance(&alice).await, probes + 25_000, "credited once");
    s.journals().await;
}

async fn address_refusals_change_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let bob = s.member().await;
    let r = s
        .gql(
            Some(&alice.token),
            ADDRESS_CREATE,
            json!({ "input": { "walletId": bob.wallet_id } }),
        )
        .await;
    assert_eq!(payload_code(data(&r, "onChainAddressCreate")), "WALLET_NOT_FOUND");
    let r = s
        .gql(
            Some(&alice.token),
            ADDRESS_CREATE,
            json!({ "input": { "walletId": "not-a-wallet" } }),
        )
        .await;
    assert_eq!(payload_code(data(&r, "onChainAddressCreate")), "WALLET_NOT_FOUND");
    let r = s
        .gql(
            None,
            ADDRESS_CREATE,
            json!({ "input": { "walletId": alice.wallet_id } }),
        )
        .await;
    assert!(has_top_errors(&r), "needs a session: {r}");
    let (read_key, _) = s.create_key(&alice.token, "reader", &["READ"]).await;
    let r = s
        .gql(
            Some(&read_key),
            ADDRESS_CREATE,
            json!({ "input": { "walletId": alice.wallet_id } }),
        )
        .await;
    assert!(has_top_errors(&r), "the read scope cannot create addresses: {r}");

    for (address, code) in [
        ("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", "INVALID_ADDRESS"),
        ("not an address", "INVALID_ADDRESS"),
    ] {
        let r = s
            .admin(DEPOSIT, json!({ "input": { "address": address, "amount": 1_000 } }))
            .await;
        assert_eq!(payload_code(data(&r, "devChainDeposit")), code, "{address}: {r}");
    }
    let r = s.admin(MINE, json!({ "input": { "blocks": 0 } })).await;
    assert_eq!(payload_code(data(&r, "devChainMine")), "INVALID_INPUT", "{r}");
    let view = wallet_view(&s, &alice).await;
    assert_eq!(
        (view["balance"].as_i64(), view["pendingIncomingBalance"].as_i64()),
        (Some(0), Some(0))
    );
    assert!(s.chain.mempool().is_empty());
}

const SEND: &str = "mutation($input: OnChainPaymentSendInput!) { onChainPaymentSend(input: $input) \
    { errors { code message } status transaction { id status settlementAmount settlementFee \
    settlementVia { __typename ... on SettlementViaOnChain { transactionHash vout } } \
    initiationVia { __typename ... on InitiationViaOnChain { address } } } } }";
const STATUS: &str = "{ onchainStatus { source confirmations tipHeight hotBalance pendingDeposits \
    queuedPayouts queuedPayoutAmount } }";

async fn a_withdrawal_is_queued_batched_and_confirmed(backend: Backend) {
    let s = TestServer::start(backend).await;
    // Coins for the hot wallet: a deposit to a bystander, confirmed.
    let whale = s.member().await;
    let whale_address = address(&s, &whale, ADDRESS_CURRENT, "onChainAddressCurrent").await;
    s.admin(
        DEPOSIT,
        json!({ "input": { "address": whale_address, "amount": 500_000 } }),
    )
    .await;
    mine(&s, 2).await;

    let alice = s.member().await;
    s.fund(&alice.wallet_id, 100_000).await;
    // An address outside this Flash (BIP173's regtest example).
    let outside = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080".to_string();

    let fee_query = format!(
        "{{ onChainTxFee(walletId: \"{}\", address: \"{outside}\", amount: 40000, speed: MEDIUM) {{ amount }} }}",
        alice.wallet_id
    );
    let r = s.gql(Some(&alice.token), &fee_query, json!({})).await;
    let quoted = data(&r, "onChainTxFee")["amount"].as_i64().expect("fee");
    assert!(quoted > 0, "{r}");

    let r = s
        .gql(
            Some(&alice.token),
            SEND,
            json!({ "input": { "walletId": alice.wallet_id, "address": outside, "amount": 40_000 } }),
        )
        .await;
    let sent = data(&r, "onChainPaymentSend");
    assert_no_payload_errors(sent);
    assert_eq!(sent["status"], "PENDING", "{sent}");
    assert_eq!(sent["transaction"]["status"], "PENDING");
    assert_eq!(sent["transaction"]["initiationVia"]["address"], outside.as_str());
    assert_eq!(
        sent["transaction"]["settlementVia"]["transactionHash"],
        Value::Null,
        "not in a batch yet"
    );
    assert_eq!(
        s.balance(&alice).await,
        100_000 - 40_000 - quoted,
        "amount and fee reserve held"
    );

    let r = s.admin(STATUS, json!({})).await;
    let status = data(&r, "onchainStatus");
    assert_eq!(status["source"], "dev");
    assert_eq!(
        (status["queuedPayouts"].as_i64(), status["queuedPayoutAmount"].as_i64()),
        (Some(1), Some(40_000))
    );
    let r = s
        .admin("{ onchainPayoutQueue { id address amount status } }", json!({}))
        .await;
    assert_eq!(data(&r, "onchainPayoutQueue")[0]["address"], outside.as_str());

    let r = s
        .admin(
            "mutation { onchainPayoutBatchNow { errors { code } broadcast settled } }",
            json!({}),
        )
        .await;
    let batch = data(&r, "onchainPayoutBatchNow");
    assert_eq!(
        (batch["broadcast"].as_i64(), batch["settled"].as_i64()),
        (Some(1), Some(1)),
        "{batch}"
    );
    let charged = 100_000 - 40_000 - s.balance(&alice).await;
    assert!(charged > 0 && charged <= quoted, "{charged} of {quoted}");
    // Broadcast is not done: the line stays PENDING until the transaction confirms.
    let history = s
        .gql(
            Some(&alice.token),
            "{ me { defaultAccount { transactions(first: 1) { edges { node { status settlementFee } } } } } }",
            json!({}),
        )
        .await;
    let node = &data(&history, "me")["defaultAccount"]["transactions"]["edges"][0]["node"];
    assert_eq!(node["status"], "PENDING", "broadcast, unconfirmed: {node}");
    assert_eq!(node["settlementFee"], charged, "{node}");
    mine(&s, 1).await;
    let r = s
        .admin("{ onchainBatches { txHash status fee vsize } }", json!({}))
        .await;
    let batches = data(&r, "onchainBatches");
    assert_eq!(batches[0]["status"], "confirmed", "{batches}");
    let txid = batches[0]["txHash"].as_str().expect("txid").to_string();

    let history = s
        .gql(
            Some(&alice.token),
            "{ me { defaultAccount { transactions(first: 1) { edges { node { status settlementAmount settlementFee \
             settlementVia { ... on SettlementViaOnChain { transactionHash vout } } } } } } } }",
            json!({}),
        )
        .await;
    let node = &data(&history, "me")["defaultAccount"]["transactions"]["edges"][0]["node"];
    assert_eq!(node["status"], "SUCCESS", "{node}");
    assert_eq!(node["settlementAmount"], -(40_000 + charged));
    assert_eq!(node["settlementFee"], charged);
    assert_eq!(node["settlementVia"]["transactionHash"], txid.as_str());
    assert!(node["settlementVia"]["vout"].as_i64().is_some());

    let metrics = s.get("/metrics", &[]).await.text;
    assert!(metrics.contains("flash_onchain_queued_payouts 0"), "{metrics}");
    assert!(metrics.contains("flash_onchain_hot_balance_sats "), "{metrics}");
    s.journals().await;
}

/// A deposit credited and then double-spent away goes under review; the operator sees it with
/// what its hold holds, and reclaims it: the wallet gives back what it still has, the books stay
/// balanced, and the review is gone (a second reclaim is refused).
async fn the_operator_lists_and_reclaims_deposits_under_review(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let bob = s.member().await;
    let to = address(&s, &alice, ADDRESS_CURRENT, "onChainAddressCurrent").await;
    let r = s
        .admin(DEPOSIT, json!({ "input": { "address": to, "amount": 30_000 } }))
        .await;
    let txid = data(&r, "devChainDeposit")["txHash"]
        .as_str()
        .expect("txHash")
        .to_string();
    mine(&s, 2).await;
    let credited = s.balance(&alice).await;
    assert!(credited >= 30_000 - 1_000, "{credited}");
    // Alice spends part of it before the chain changes its mind.
    let paid = s.pay(&alice.token, &alice, &bob, 10_000).await;
    assert_no_payload_errors(&paid);

    let reviews = "{ onchainReviews { outpoint walletId amount credited held reason } }";
    let r = s.admin(reviews, json!({})).await;
    assert_eq!(data(&r, "onchainReviews"), &json!([]), "{r}");
    let r = s
        .admin(
            "mutation { devChainReorg(input: { depth: 2, dropTransactions: true }) { errors { code } height } }",
            json!({}),
        )
        .await;
    assert_no_payload_errors(data(&r, "devChainReorg"));

    let r = s.admin(reviews, json!({})).await;
    let listed = data(&r, "onchainReviews").as_array().expect("list").clone();
    assert_eq!(listed.len(), 1, "{r}");
    let review = &listed[0];
    let outpoint = format!("{txid}:0");
    assert_eq!(review["outpoint"], outpoint.as_str(), "{review}");
    assert_eq!(review["walletId"], alice.wallet_id.as_str());
    assert_eq!(review["amount"], 30_000);
    assert_eq!(review["credited"], credited);
    assert_eq!(review["held"], credited - 10_000, "what the wallet still had");
    assert!(
        review["reason"]
            .as_str()
            .is_some_and(|r| r.contains("no longer in the chain")),
        "{review}"
    );
    assert_eq!(s.balance(&alice).await, 0, "held under review");

    let reclaim = "mutation($o: String!) { onchainReviewReclaim(input: { outpoint: $o }) \
                   { errors { code message } reclaimed shortfall } }";
    let r = s.admin(reclaim, json!({ "o": outpoint })).await;
    let done = data(&r, "onchainReviewReclaim");
    assert_no_payload_errors(done);
    assert_eq!(
        (done["reclaimed"].as_i64(), done["shortfall"].as_i64()),
        (Some(credited - 10_000), Some(10_000)),
        "{done}"
    );
    assert_eq!(s.balance(&alice).await, 0);
    assert_eq!(s.balance(&bob).await, 10_000, "bob keeps what he was paid");
    let r = s.admin(reviews, json!({})).await;
    assert_eq!(data(&r, "onchainReviews"), &json!([]), "{r}");
    let r = s.admin(reclaim, json!({ "o": outpoint })).await;
    assert_eq!(
        data(&r, "onchainReviewReclaim")["errors"][0]["code"],
        "INVALID_INPUT",
        "{r}"
    );
    // Further passes leave the dropped deposit alone.
    mine(&s, 3).await;
    assert_eq!(s.balance(&alice).await, 0);
    let r = s.admin("{ ledgerVerify { ok } }", json!({})).await;
    assert_eq!(data(&r, "ledgerVerify")["ok"], true, "{r}");
}
