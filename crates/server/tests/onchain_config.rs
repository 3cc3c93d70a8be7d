//! `flashd`'s on-chain configuration: the chain backends it refuses to start with (and says
//! why, without printing credentials), and running without an on-chain wallet.

mod common;

use common::*;
use serde_json::json;

fn with_config(dir: &TempDir, text: &str) -> Launch {
    let path = dir.path().join("flash.toml");
    std::fs::write(&path, text).expect("write config");
    Launch::new(dir.path(), None)
        .arg("--config")
        .arg(&path.display().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitcoind_backend_needs_its_section_credentials_and_a_reachable_node() {
    let dir = TempDir::new("bitcoind-config");
    let missing = Flashd::try_start(&with_config(&dir, "[onchain]\nbackend = \"bitcoind\"\n"))
        .await
        .err()
        .expect("no [onchain.bitcoind]");
    assert!(missing.text().contains("[onchain.bitcoind]"), "{}", missing.text());

    let both = format!(
        "[onchain]\nbackend = \"bitcoind\"\n[onchain.bitcoind]\nrpc_url = \"http://127.0.0.1:{}\"\n\
         cookie_file = \"/nonexistent/.cookie\"\nrpc_user = \"flash\"\nrpc_password = \"hunter2\"\n",
        free_port()
    );
    let ambiguous = Flashd::try_start(&with_config(&dir, &both))
        .await
        .err()
        .expect("cookie and password both given");
    assert!(
        ambiguous
            .text()
            .contains("either cookie_file, or rpc_user and rpc_password"),
        "{}",
        ambiguous.text()
    );

    let port = free_port();
    let unreachable = format!(
        "[onchain]\nbackend = \"bitcoind\"\n[onchain.bitcoind]\n\
         rpc_url = \"http://flash:hunter2@127.0.0.1:{port}\"\ntimeout_secs = 2\n\
         rpc_user = \"flash\"\nrpc_password = \"hunter2\"\n"
    );
    let failed = Flashd::try_start(&with_config(&dir, &unreachable))
        .await
        .err()
        .expect("nothing listens there");
    assert!(
        failed
            .text()
            .contains(&format!("connecting to bitcoind at http://127.0.0.1:{port}")),
        "{}",
        failed.text()
    );
    assert!(
        !failed.text().contains("hunter2"),
        "no password in the output: {}",
        failed.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn electrum_backend_needs_a_reachable_server() {
    let dir = TempDir::new("electrum-config");
    let missing = Flashd::try_start(&with_config(&dir, "[onchain]\nbackend = \"electrum\"\n"))
        .await
        .err()
        .expect("no [onchain.electrum]");
    assert!(missing.text().contains("[onchain.electrum]"), "{}", missing.text());
    let port = free_port();
    let unreachable = format!(
        "[onchain]\nbackend = \"electrum\"\n[onchain.electrum]\nurl = \"tcp://127.0.0.1:{port}\"\ntimeout_secs = 2\n"
    );
    let failed = Flashd::try_start(&with_config(&dir, &unreachable))
        .await
        .err()
        .expect("nothing listens there");
    assert!(
        failed.text().contains("connecting to the Electrum server"),
        "{}",
        failed.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_chain_is_refused_on_mainnet() {
    let dir = TempDir::new("dev-chain-mainnet");
    let refused = Flashd::try_start(&with_config(
        &dir,
        "network = \"mainnet\"\n[lightning]\nbackend = \"none\"\n",
    ))
    .await
    .err()
    .expect("the dev chain on mainnet");
    assert!(
        refused.text().contains("[onchain] backend = \"none\""),
        "says what to set: {}",
        refused.text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_an_onchain_wallet_the_bank_runs_and_says_so() {
    let dir = TempDir::new("no-onchain");
    let server = Flashd::start(&with_config(&dir, "[onchain]\nbackend = \"none\"\n")).await;
    let api = Api::new(&server.base);
    assert_eq!(
        api.get_json("/healthz").await["simulated"],
        json!(["lightning"]),
        "only the (default) dev Lightning node"
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
