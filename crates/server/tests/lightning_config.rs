//! `flashd`'s Lightning configuration: the backends it refuses to start with (and says why),
//! and running without Lightning.

mod common;

use common::*;
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lnd_backend_needs_its_section_and_a_reachable_node() {
    let dir = TempDir::new("lnd-config");
    let missing = Flashd::refused(
        &with_config(&dir, "[lightning]\nbackend = \"lnd\"\n"),
        "no [lightning.lnd]",
    )
    .await;
    assert!(missing.contains("[lightning.lnd]"), "{missing}");

    let unreachable = format!(
        "[lightning]\nbackend = \"lnd\"\n[lightning.lnd]\naddress = \"https://127.0.0.1:{}\"\n\
         tls_cert = \"{}\"\nmacaroon = \"{}\"\n",
        free_port(),
        dir.path().join("missing-tls.cert").display(),
        dir.path().join("missing.macaroon").display(),
    );
    let failed = Flashd::refused(&with_config(&dir, &unreachable), "LND credentials are missing").await;
    assert!(failed.contains("connecting to LND"), "{failed}");
    assert!(failed.contains("missing-tls.cert"), "names the file: {failed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_lightning_the_bank_runs_and_says_so() {
    let dir = TempDir::new("no-lightning");
    let server = Flashd::start(&with_config(&dir, "[lightning]\nbackend = \"none\"\n")).await;
    let api = Api::new(&server.base);
    assert_eq!(
        api.get_json("/healthz").await["simulated"],
        json!(["onchain", "prices"]),
        "only the (default) dev chain and dev prices"
    );
    let user = api.device_user(&unique("no-ln")).await;
    let data = api
        .gql(
            &user.token,
            "mutation($input: LnInvoiceCreateInput!) { lnInvoiceCreate(input: $input) { errors { code } invoice { paymentRequest } } }",
            json!({ "input": { "walletId": user.wallet_id, "amount": 1000 } }),
        )
        .await;
    assert_eq!(
        data["lnInvoiceCreate"]["errors"][0]["code"], "LIGHTNING_UNAVAILABLE",
        "{data}"
    );
    assert!(data["lnInvoiceCreate"]["invoice"].is_null());
}
