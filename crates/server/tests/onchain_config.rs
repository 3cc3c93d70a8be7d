//! `flashd`'s on-chain configuration: the chain backends it refuses to start with (and says
//! why, without printing credentials), and running without an on-chain wallet.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitcoind_backend_needs_its_section_credentials_and_a_reachable_node() {
    let dir = TempDir::new("bitcoind-config");
    let missing = Flashd::refused(
        &with_config(&dir, "[onchain]\nbackend = \"bitcoind\"\n"),
        "no [onchain.bitcoind]",
    )
    .await;
    assert!(missing.contains("[onchain.bitcoind]"), "{missing}");

    let both = format!(
        "[onchain]\nbackend = \"bitcoind\"\n[onchain.bitcoind]\nrpc_url = \"http://127.0.0.1:{}\"\n\
         cookie_file = \"/nonexistent/.cookie\"\nrpc_user = \"flash\"\nrpc_password = \"hunter2\"\n",
        free_port()
    );
    let ambiguous = Flashd::refused(&with_config(&dir, &both), "cookie and password both given").await;
    assert!(
        ambiguous.contains("either cookie_file, or rpc_user and rpc_password"),
        "{ambiguous}"
    );

    let port = free_port();
    let unreachable = format!(
        "[onchain]\nbackend = \"bitcoind\"\n[onchain.bitcoind]\n\
         rpc_url = \"http://flash:hunter2@127.0.0.1:{port}\"\ntimeout_secs = 2\n\
         rpc_user = \"flash\"\nrpc_password = \"hunter2\"\n"
    );
    let failed = Flashd::refused(&with_config(&dir, &unreachable), "nothing listens there").await;
    assert!(
        failed.contains(&format!("connecting to bitcoind at http://127.0.0.1:{port}")),
        "{failed}"
    );
    assert!(!failed.contains("hunter2"), "no password in the output: {failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn electrum_backend_needs_a_reachable_server() {
    let dir = TempDir::new("electrum-config");
    let missing = Flashd::refused(
        &with_config(&dir, "[onchain]\nbackend = \"electrum\"\n"),
        "no [onchain.electrum]",
    )
    .await;
    assert!(missing.contains("[onchain.electrum]"), "{missing}");
    let port = free_port();
    let unreachable = format!(
        "[onchain]\nbackend = \"electrum\"\n[onchain.electrum]\nurl = \"tcp://127.0.0.1:{port}\"\ntimeout_secs = 2\n"
    );
    let failed = Flashd::refused(&with_config(&dir, &unreachable), "nothing listens there").await;
    assert!(failed.contains("connecting to the Electrum server"), "{failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_chain_is_refused_on_mainnet() {
    let dir = TempDir::new("dev-chain-mainnet");
    let refused = Flashd::refused(
        &with_config(&dir, "network = \"mainnet\"\n[lightning]\nbackend = \"none\"\n"),
        "the dev chain on mainnet",
    )
    .await;
    assert!(
        refused.contains("[onchain] backend = \"none\""),
        "says what to set: {refused}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_onchain_wallet_the_bank_runs_and_says_so() {
    let dir = TempDir::new("no-onchain");
    let server = Flashd::start(&with_config(&dir, "[onchain]\nbackend = \"none\"\n")).await;
    let api = Api::new(&server.base);
    assert_eq!(
        api.get_json("/healthz").await["simulated"],
        json!(["lightning", "prices"]),
        "only the (default) dev Lightning node and dev prices"
    );
    let user = api.device_user(&unique("no-onchain")).await;
    let data = api
        .gql(
            &user.token,
            "mutation($input: OnChainAddressCreateInput!) { onChainAddressCreate(input: $input) { errors { code } address } }",
            json!({ "input": { "walletId": user.wallet_id } }),
        )
        .await;
    assert_eq!(
        data["onChainAddressCreate"]["errors"][0]["code"], "ONCHAIN_UNAVAILABLE",
        "{data}"
    );
    assert!(data["onChainAddressCreate"]["address"].is_null());
}
