//! On-chain deposits through the app and operator APIs, on the `dev` chain: deposit addresses
//! (`onChainAddressCurrent`, `onChainAddressCreate`), a deposit seen pending
//! (`pendingIncomingBalance`, `myUpdates` OnChainUpdate), credited after its confirmations,
//! shown in history and `transactionsByAddress`, and the refusals. On SQLite and PostgreSQL.

mod common;

use common::*;
use serde_json::{json, Value};

flash_store::on_both_backends!(a_deposit_is_pending_then_credited, address_refusals_change_nothing);

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
