//! A store invoice paid on chain against a real `bitcoind -regtest` (the binary named by
//! `FLASH_TEST_BITCOIND`; skipped with a printed reason when unset), on both backends: the
//! payment makes it `Processing`, its confirmation under the speed policy `Settled`, its block
//! invalidated `Processing` again, and the block mined again `Settled`.

#[path = "../../bank/tests/support/mod.rs"]
mod support;

use std::sync::Arc;

use flash_merchant::watcher::PassKind;
use flash_merchant::{Caller, CreateOptions, Merchant};
use flash_onchain::testing::{bitcoind_binary, RegtestNode};
use flash_store::testing::{fresh_store, Backend};
use serde_json::json;
use support::{config, hot_wallet, member, regtest_chain};

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
    let (node, chain) = regtest_chain(&binary).await;
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
    let id = invoice.record.id.clone();
    // A watcher pass of the bank's chain and of the merchant's invoices; the invoice's status.
    let status = || async {
        bank.onchain_sync().await.expect("sync");
        merchant.watch_pass(PassKind::Sweep).await.expect("pass");
        let view = merchant.invoice(&owner, None, &id).await.expect("invoice");
        (view.record.status, view.record.paid_sat)
    };
    on_node(&node, move |n| n.send_to(&address, 50_000)).await;
    assert_eq!(status().await, ("Processing".to_string(), 50_000));

    let mined = on_node(&node, |n| n.mine(1)).await;
    assert_eq!(status().await.0, "Settled", "one confirmation under MediumSpeed");

    let block = mined[0];
    on_node(&node, move |n| n.invalidate(&block)).await;
    assert_eq!(status().await.0, "Processing", "its block went: waiting again");

    // Mined again (to another address: the same template would rebuild the invalid block).
    on_node(&node, |n| {
        let other = n.rpc("getnewaddress", json!([]));
        n.rpc("generatetoaddress", json!([1, other]))
    })
    .await;
    assert_eq!(status().await, ("Settled".to_string(), 50_000));
}
