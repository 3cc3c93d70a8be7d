//! A store invoice paid on chain against a real `bitcoind -regtest` (the binary named by
//! `FLASH_TEST_BITCOIND`; skipped with a printed reason when unset), on both backends: the
//! payment makes it `Processing`, its confirmation under the speed policy `Settled`, its block
//! invalidated `Processing` again, and the block mined again `Settled`.

#[path = "../../bank/tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use flash_core::Network;
use flash_merchant::watcher::PassKind;
use flash_merchant::{Caller, CreateOptions, Merchant};
use flash_onchain::testing::{bitcoind_binary, RegtestNode};
use flash_onchain::BitcoindChain;
use flash_store::testing::{fresh_store, Backend};
use serde_json::json;
use support::{config, hot_wallet, member};

flash_store::on_both_backends!(a_chain_payment_settles_with_its_confirmation_and_goes_back_with_its_block);

/// Runs `f` with the node, on the blocking pool.
async fn on_node<T: Send + 'static>(node: &Arc<RegtestNode>, f: impl FnOnce(&RegtestNode) -> T + Send + 'static) -> T {
    let node = Arc::clone(node);
    tokio::task::spawn_blocking(move || f(&node))
        .await
        .expect("bitcoind call")
}

async fn a_chain_payment_settles_with_its_confirmation_and_goes_back_with_its_block(backend: Backend) {
    let Some(binary) = bitcoind_binary() else { return };
    let node = Arc::new(
        tokio::task::spawn_blocking(move || {
            let node = RegtestNode::start(&binary);
            node.mine(101);
            node
        })
        .await
        .expect("start bitcoind"),
    );
    let chain = Arc::new(
        BitcoindChain::connect(node.config(Network::Regtest))
            .await
            .expect("connect to bitcoind"),
    );
    let store = fresh_store(backend).await;
    let wallet = hot_wallet(&store, chain).await;
    let bank = flash_bank::Bank::new(store.clone(), config(2)).with_onchain(wallet, None);
    bank.onchain_sync().await.expect("first sync");
    let merchant = Merchant::new(bank.clone(), store.clone());
    let owner = Caller::owner(member(&bank).await.id);
    let shop = merchant
        .create_store(&owner, &json!({"name": "Regtest shop"}))
        .await
        .expect("store");
    let invoice = merchant
        .create_invoice(
            &owner,
            &shop.id,
            &json!({"amount": "50000", "currency": "SATS",
                    "checkout": {"paymentMethods": ["BTC-CHAIN"], "speedPolicy": "MediumSpeed"}}),
            &CreateOptions::default(),
        )
        .await
        .expect("invoice");
    let address = invoice.methods[0].destination.clone();
    on_node(&node, move |n| n.send_to(&address, 50_000)).await;
    bank.onchain_sync().await.expect("sync");
    merchant.watch_pass(PassKind::Sweep).await.expect("pass");
    let seen = merchant
        .invoice(&owner, None, &invoice.record.id)
        .await
        .expect("invoice");
    assert_eq!(
        (seen.record.status.as_str(), seen.record.paid_sat),
        ("Processing", 50_000)
    );

    let mined = on_node(&node, |n| n.mine(1)).await;
    bank.onchain_sync().await.expect("sync");
    merchant.watch_pass(PassKind::Sweep).await.expect("pass");
    let settled = merchant
        .invoice(&owner, None, &invoice.record.id)
        .await
        .expect("invoice");
    assert_eq!(settled.record.status, "Settled", "one confirmation under MediumSpeed");

    let block = mined[0];
    on_node(&node, move |n| n.invalidate(&block)).await;
    bank.onchain_sync().await.expect("sync");
    merchant.watch_pass(PassKind::Sweep).await.expect("pass");
    let back = merchant
        .invoice(&owner, None, &invoice.record.id)
        .await
        .expect("invoice");
    assert_eq!(back.record.status, "Processing", "its block went: waiting again");

    // Mined again (to another address: the same template would rebuild the invalid block).
    on_node(&node, |n| {
        let other = n.rpc("getnewaddress", json!([]));
        n.rpc("generatetoaddress", json!([1, other]))
    })
    .await;
    bank.onchain_sync().await.expect("sync");
    merchant.watch_pass(PassKind::Sweep).await.expect("pass");
    let again = merchant
        .invoice(&owner, None, &invoice.record.id)
        .await
        .expect("invoice");
    assert_eq!(again.record.status, "Settled");
}
