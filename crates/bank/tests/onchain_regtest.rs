//! The bank's on-chain flows against a real `bitcoind -regtest`, through the bitcoind chain
//! source and the BDK hot wallet: a deposit credited once after its confirmations, twenty
//! withdrawals in one transaction, a deposit whose block is invalidated and whose transaction is
//! double-spent before its confirmations, blocks invalidated with none in their place, and a sweep to 2-of-3 cold storage and back. Each
//! scenario checks the ledger and the balances, on SQLite and on PostgreSQL.
//!
//! They need `FLASH_TEST_BITCOIND` (the path to a `bitcoind` binary, Bitcoin Core 27 to 29);
//! without it they print why they were skipped and pass. Each starts a node of its own.

mod support;

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use bitcoin::{Amount, Denomination, Transaction as BitcoinTx, Txid};
use flash_bank::Bank;
use flash_core::onchain::HotWallet;
use flash_core::Network;
use flash_onchain::testing::{bitcoind_binary, btc_string, RegtestNode};
use flash_onchain::BitcoindChain;
use flash_store::testing::{fresh_store, Backend};
use flash_store::{AccountRecord, BatchStatus, DepositStatus, Store};
use serde_json::{json, Value};
use support::*;

flash_store::on_both_backends!(
    a_deposit_is_pending_then_credited_once_after_two_confirmations,
    twenty_withdrawals_leave_in_one_transaction,
    a_deposit_invalidated_and_double_spent_before_its_confirmations_credits_nothing,
    blocks_invalidated_with_none_in_their_place_unconfirm_at_once,
    excess_goes_to_cold_storage_and_comes_back_with_two_of_three_signatures,
);

/// A bank whose hot wallet follows a regtest node of its own.
struct Lab {
    bank: Bank,
    node: Arc<RegtestNode>,
    chain: Arc<BitcoindChain>,
    wallet: Arc<dyn HotWallet>,
    store: Store,
}

async fn lab(backend: Backend, binary: &Path) -> Lab {
    let (node, chain) = regtest_chain(binary).await;
    let store = fresh_store(backend).await;
    let wallet = hot_wallet(&store, chain.clone()).await;
    let bank = Bank::new(store.clone(), config(2)).with_onchain(wallet.clone(), None);
    let report = bank.onchain_sync().await.expect("first sync scans the chain");
    assert_eq!(report.tip_height, 101);
    Lab {
        bank,
        node,
        chain,
        wallet,
        store,
    }
}

impl Lab {
    /// Runs `f` with the node, on the blocking pool.
    async fn node<T: Send + 'static>(&self, f: impl FnOnce(&RegtestNode) -> T + Send + 'static) -> T {
        let node = Arc::clone(&self.node);
        tokio::task::spawn_blocking(move || f(&node))
            .await
            .expect("bitcoind call")
    }

    /// Mines `blocks` blocks, then runs a watcher pass. The blocks' hashes.
    async fn mine(&self, blocks: u32) -> Vec<bitcoin::BlockHash> {
        let hashes = self.node(move |n| n.mine(blocks)).await;
        self.bank.onchain_sync().await.expect("watcher pass");
        hashes
    }

    /// The node's mempool.
    async fn mempool(&self) -> Vec<Txid> {
        self.node(|n| n.mempool()).await
    }

    /// A transaction of the node's mempool, decoded.
    async fn transaction(&self, txid: Txid) -> BitcoinTx {
        let hex = self
            .node(move |n| n.rpc("getrawtransaction", json!([txid.to_string(), false])))
            .await;
        bitcoin::consensus::encode::deserialize_hex(hex.as_str().expect("hex")).expect("a transaction")
    }
}

/// The node's wallet pays `sats` to `account`'s deposit address; a watcher pass sees it. The
/// txid and the deposit's outpoint.
async fn deposit(lab: &Lab, account: &AccountRecord, sats: u64) -> (Txid, String) {
    let address = lab
        .bank
        .onchain_address_current(account.id, account.default_wallet_id)
        .await
        .expect("address");
    let txid = {
        let address = address.clone();
        lab.node(move |n| n.send_to(&address, sats)).await
    };
    lab.bank.onchain_sync().await.expect("watcher pass");
    let deposits = lab
        .bank
        .onchain_deposits(account.id, account.default_wallet_id, Some(&address), 10)
        .await
        .expect("deposits");
    let seen = deposits
        .iter()
        .find(|d| d.txid == txid.to_string())
        .unwrap_or_else(|| panic!("deposit {txid} seen: {deposits:?}"));
    (txid, seen.outpoint.clone())
}

/// Gives the hot wallet `sats` of confirmed coins (a deposit credited to a bystander).
async fn fund_hot_wallet(lab: &Lab, sats: u64) {
    let whale = member(&lab.bank).await;
    deposit(lab, &whale, sats).await;
    lab.mine(2).await;
}

/// Satoshis of a BTC amount as bitcoind answers it (a JSON number), exactly.
fn sats_of(value: &Value) -> u64 {
    Amount::from_str_in(&value.to_string(), Denomination::Bitcoin)
        .unwrap_or_else(|e| panic!("amount {value}: {e}"))
        .to_sat()
}

/// Replaces unconfirmed `txid` (a payment of the node's wallet) in the node's mempool by a
/// transaction spending the same coins back to the node's wallet at a much higher fee (BIP125):
/// the original vanishes.
fn double_spend(node: &RegtestNode, txid: Txid) -> Txid {
    let original = node.rpc("getrawtransaction", json!([txid.to_string(), true]));
    let inputs: Vec<Value> = original["vin"]
        .as_array()
        .expect("inputs")
        .iter()
        .map(|i| json!({"txid": i["txid"], "vout": i["vout"]}))
        .collect();
    let total: u64 = inputs
        .iter()
        // The coins as the chain has them (the mempool spends them).
        .map(|i| sats_of(&node.rpc("gettxout", json!([i["txid"], i["vout"], false]))["value"]))
        .sum();
    let outputs = json!([{ node.address(): btc_string(total - 100_000) }]);
    let raw = node.rpc("createrawtransaction", json!([inputs, outputs]));
    let signed = node.rpc("signrawtransactionwithwallet", json!([raw]));
    assert_eq!(signed["complete"], json!(true), "{signed}");
    let replacement = node.rpc("sendrawtransaction", json!([signed["hex"]]));
    Txid::from_str(replacement.as_str().expect("txid")).expect("txid")
}

// ---------------------------------------------------------------------------------------------

async fn a_deposit_is_pending_then_credited_once_after_two_confirmations(backend: Backend) {
    let Some(binary) = bitcoind_binary() else { return };
    let lab = lab(backend, &binary).await;
    let alice = member(&lab.bank).await;
    let mut events = lab.bank.subscribe();
    let (_, outpoint) = deposit(&lab, &alice, 80_000).await;

    assert_pending_deposit(&lab.bank, &alice, &outpoint, 80_000, &mut events).await;
    let report = lab.bank.onchain_sync().await.expect("sync");
    assert_eq!((report.seen, report.credited), (0, 0), "nothing new");

    lab.mine(1).await;
    assert_eq!(
        status(&lab.bank, &outpoint).await,
        DepositStatus::Pending,
        "1 of 2 confirmations"
    );
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 0);

    lab.mine(1).await;
    assert_credited(&lab.bank, &alice, &outpoint, 80_000).await;

    for _ in 0..3 {
        lab.mine(1).await;
        lab.bank.onchain_sync().await.expect("sync");
    }
    assert_credited_once(&lab.bank, &alice, 80_000).await;
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_ledger_ok(&lab.bank).await;
}

async fn twenty_withdrawals_leave_in_one_transaction(backend: Backend) {
    let Some(binary) = bitcoind_binary() else { return };
    let lab = lab(backend, &binary).await;
    fund_hot_wallet(&lab, 2_000_000).await;
    assert!(lab.mempool().await.is_empty());

    // Twenty members pay twenty addresses of the node's wallet.
    let addresses: Vec<String> = lab
        .node(|n| {
            (0..20)
                .map(|_| n.rpc("getnewaddress", json!([])).as_str().expect("address").to_string())
                .collect()
        })
        .await;
    let (members, reserve) = queue_withdrawals(&lab.bank, &addresses).await;
    assert!(lab.mempool().await.is_empty(), "nothing leaves before the batch");

    // One pass: one transaction on the node.
    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!((report.broadcast, report.settled), (1, 20), "{report:?}");
    let mempool = lab.mempool().await;
    assert_eq!(mempool.len(), 1, "one transaction for twenty payouts");
    let batches = lab.bank.onchain_batch_history(10).await.expect("batches");
    assert_eq!(batches.len(), 1);
    let batch = batches[0].clone();
    assert_eq!(batch.status, BatchStatus::Broadcast);
    assert_eq!(batch.batch.txid, mempool[0].to_string());
    let tx = lab.transaction(mempool[0]).await;
    assert_eq!(tx.output.len(), 21, "twenty payouts and change");
    for address in &addresses {
        let script = flash_core::onchain::parse_address(address, Network::Regtest)
            .expect("address")
            .script_pubkey();
        let paid: Vec<_> = tx.output.iter().filter(|o| o.script_pubkey == script).collect();
        assert_eq!(paid.len(), 1, "{address} paid once");
        assert_eq!(paid[0].value.to_sat(), WITHDRAWAL as u64);
    }
    let charged = fee_shares(&lab.bank, &members, reserve, batch.batch.fee_sat).await;

    // Mined: the batch confirms, its fee squared with the shares charged.
    lab.mine(1).await;
    assert_batch_settled(&lab.bank, &*lab.wallet, &batch.batch.id, charged).await;
}

async fn a_deposit_invalidated_and_double_spent_before_its_confirmations_credits_nothing(backend: Backend) {
    let Some(binary) = bitcoind_binary() else { return };
    let lab = lab(backend, &binary).await;
    let alice = member(&lab.bank).await;
    let (txid, outpoint) = deposit(&lab, &alice, 30_000).await;
    let mined = lab.mine(1).await;
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Pending, "1 of 2");
    assert_eq!(pending_incoming(&lab.bank, &alice).await, 30_000);

    // Its block is invalidated (the deposit goes back to the mempool) and the payer replaces it
    // there with a payment to itself.
    let replacement = lab
        .node(move |n| {
            n.invalidate(&mined[0]);
            assert!(n.mempool().contains(&txid), "back in the mempool");
            double_spend(n, txid)
        })
        .await;
    assert_eq!(lab.mempool().await, vec![replacement]);
    lab.bank.onchain_sync().await.expect("sync");
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 0, "not credited");

    // The replacement is mined: the deposit is gone for good.
    lab.mine(1).await;
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Dropped);
    assert_eq!(pending_incoming(&lab.bank, &alice).await, 0);
    lab.mine(5).await;
    assert_dropped(&lab.bank, &alice, &outpoint).await;
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_ledger_ok(&lab.bank).await;
}

/// Issue 14: `invalidateblock` and no new block. The watcher's next pass follows the shorter
/// chain: the credited deposit goes to review and the confirmed payout back to broadcast.
async fn blocks_invalidated_with_none_in_their_place_unconfirm_at_once(backend: Backend) {
    let Some(binary) = bitcoind_binary() else { return };
    let lab = lab(backend, &binary).await;
    fund_hot_wallet(&lab, 500_000).await;
    let alice = funded(&lab.bank, 50_000).await;
    let bob = member(&lab.bank).await;
    let (_, outpoint) = deposit(&lab, &bob, 40_000).await;
    let to = lab
        .node(|n| n.rpc("getnewaddress", json!([])).as_str().expect("address").to_string())
        .await;
    lab.bank
        .onchain_send(send(&alice, &to, Some(20_000), flash_bank::Speed::Fast))
        .await
        .expect("queued");
    lab.bank.onchain_payout_pass(false).await.expect("pass");
    let mined = lab.mine(2).await;
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Credited);
    let batch = lab.bank.onchain_batch_history(1).await.expect("batches").remove(0);
    assert_eq!(batch.status, BatchStatus::Confirmed);

    let first = mined[0];
    let height = lab
        .node(move |n| {
            n.invalidate(&first);
            n.rpc("getblockcount", json!([])).as_u64().expect("height")
        })
        .await;
    let report = lab.bank.onchain_sync().await.expect("sync");
    assert_eq!(u64::from(report.tip_height), height, "the shorter chain's tip");
    assert_eq!(report.to_review, 1, "{report:?}");
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Review);
    assert_eq!(balance(&lab.bank, bob.default_wallet_id).await, 0, "held for review");
    let back = lab.bank.onchain_batch_history(1).await.expect("batches").remove(0);
    assert_eq!((back.status, back.confirmed_height), (BatchStatus::Broadcast, None));

    // Mined again (to another address: the same template would rebuild the invalid block).
    lab.node(|n| {
        let other = n.rpc("getnewaddress", json!([]));
        n.rpc("generatetoaddress", json!([2, other]))
    })
    .await;
    lab.bank.onchain_sync().await.expect("sync");
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Credited);
    assert_eq!(balance(&lab.bank, bob.default_wallet_id).await, 40_000);
    let again = lab.bank.onchain_batch_history(1).await.expect("batches").remove(0);
    assert_eq!(again.status, BatchStatus::Confirmed);
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_ledger_ok(&lab.bank).await;
}

// ---------------------------------------------------------------------------------------------
// Cold storage

async fn excess_goes_to_cold_storage_and_comes_back_with_two_of_three_signatures(backend: Backend) {
    let Some(binary) = bitcoind_binary() else { return };
    let lab = lab(backend, &binary).await;
    // Watch-only, on the same node.
    let (bank, cosigners, _) = with_cold_storage(&lab.bank, lab.chain.clone(), &lab.store).await;

    // Within policy: nothing moves. Above the ceiling: all but the floor goes to cold.
    fund_hot_wallet(&lab, 250_000).await;
    assert_no_sweep(&bank, "within policy").await;
    fund_hot_wallet(&lab, 750_000).await;
    let sweep = bank.cold_sweep_check().await.expect("check").expect("a sweep");
    let mempool = lab.mempool().await;
    assert_eq!(mempool.len(), 1, "the sweep is on the node");
    lab.mine(1).await;
    assert_cold_balance(&bank, 900_000).await;
    let record = lab.store.onchain_sweep(&sweep).await.expect("read").expect("sweep");
    // The harness mined through the bank without a cold wallet: its pass followed the sweep
    // out of the hot wallet all the same.
    assert_eq!(record.status, "confirmed");
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_no_sweep(&bank, "back within policy").await;

    // Cold → hot: a PSBT; one signature is not enough, two are; the node relays and mines it.
    let psbt = bank.cold_psbt_create(200_000).await.expect("psbt");
    let txid = finalize_two_of_three(&bank, &cosigners, &psbt.id, &psbt.psbt).await;
    assert_eq!(lab.mempool().await, vec![txid.parse::<Txid>().expect("txid")]);
    lab.mine(1).await;
    assert_cold_balance(&bank, 900_000 - 200_000 - psbt.fee.get()).await;
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    // The coins came back to the bank's own (change) address: nobody was credited a deposit.
    assert_eq!(receive_journals(&bank).await, 2, "the two funding deposits only");
    assert_ledger_ok(&bank).await;
}
