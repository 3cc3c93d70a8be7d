//! The bank's on-chain flows against a real `bitcoind -regtest`, through the bitcoind chain
//! source and the BDK hot wallet: a deposit credited once after its confirmations, twenty
//! withdrawals in one transaction, a deposit whose block is invalidated and whose transaction is
//! double-spent before its confirmations, and a sweep to 2-of-3 cold storage and back. Each
//! scenario checks the ledger and the balances, on SQLite and on PostgreSQL.
//!
//! They need `FLASH_TEST_BITCOIND` (the path to a `bitcoind` binary, Bitcoin Core 27 to 29);
//! without it they print why they were skipped and pass. Each starts a node of its own.

use std::path::Path;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bitcoin::{Amount, Denomination, Transaction as BitcoinTx, Txid};
use flash_bank::{
    Bank, BankConfig, BankError, Identity, OnchainConfig, OnchainSend, PaymentStatus, Speed, TxStatus, WalletChange,
};
use flash_core::onchain::HotWallet;
use flash_core::{Currency, JournalKind, Network, Phone, SystemAccount, WalletId};
use flash_onchain::testing::{bitcoind_binary, btc_string, RegtestNode};
use flash_onchain::{hot_descriptors, BdkHotWallet, BitcoindChain, SoftwareSigner};
use flash_store::testing::{fresh_store, Backend};
use flash_store::{AccountRecord, BatchStatus, DepositStatus, Store};
use serde_json::{json, Value};

flash_store::on_both_backends!(
    a_deposit_is_pending_then_credited_once_after_two_confirmations,
    twenty_withdrawals_leave_in_one_transaction,
    a_deposit_invalidated_and_double_spent_before_its_confirmations_credits_nothing,
    excess_goes_to_cold_storage_and_comes_back_with_two_of_three_signatures,
);

static NEXT: AtomicU64 = AtomicU64::new(1);

/// A bank whose hot wallet follows a regtest node of its own.
struct Lab {
    bank: Bank,
    node: Arc<RegtestNode>,
    chain: Arc<BitcoindChain>,
    wallet: Arc<dyn HotWallet>,
    store: Store,
}

fn config(confirmations: u32) -> BankConfig {
    BankConfig {
        onchain: OnchainConfig {
            confirmations,
            ..OnchainConfig::default()
        },
        ..BankConfig::default()
    }
}

async fn lab(backend: Backend, binary: &Path) -> Lab {
    let binary = binary.to_path_buf();
    let node = Arc::new(
        tokio::task::spawn_blocking(move || {
            let node = RegtestNode::start(&binary);
            // Coins for the node's wallet to pay deposits with.
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
    let descriptors = hot_descriptors(&[42u8; 32], Network::Regtest).expect("descriptors");
    let signer = Arc::new(SoftwareSigner::new(&[42u8; 32], Network::Regtest).expect("signer"));
    let wallet: Arc<dyn HotWallet> = Arc::new(
        BdkHotWallet::open("hot", &descriptors, chain.clone(), Arc::new(store.clone()), signer)
            .await
            .expect("hot wallet"),
    );
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

async fn member(bank: &Bank) -> AccountRecord {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let phone = Phone::parse(&format!("+1558{n:07}")).expect("phone");
    bank.user_for_identity(&Identity::Phone(phone))
        .await
        .expect("sign up")
        .1
}

async fn balance(bank: &Bank, wallet: WalletId) -> i64 {
    bank.store().wallet_balance(wallet).await.expect("balance")
}

async fn system_balance(bank: &Bank, account: SystemAccount) -> i64 {
    let id = account.ledger_id(Currency::Btc);
    let balances = bank
        .store()
        .balances(std::slice::from_ref(&id))
        .await
        .expect("balances");
    balances.get(&id).copied().unwrap_or(0)
}

async fn pending_incoming(bank: &Bank, account: &AccountRecord) -> i64 {
    let wallets = bank.wallets(account.id).await.expect("wallets");
    wallets[0].pending_incoming
}

async fn status(bank: &Bank, outpoint: &str) -> DepositStatus {
    bank.store()
        .onchain_deposit(outpoint)
        .await
        .expect("deposit")
        .expect("recorded")
        .status
}

async fn receive_journals(bank: &Bank) -> i64 {
    let rows = bank
        .store()
        .db()
        .query(
            "SELECT COUNT(*) FROM journals WHERE kind = $1",
            vec![JournalKind::OnchainReceive.as_str().into()],
        )
        .await
        .expect("count");
    rows[0].int(0).expect("count")
}

/// The ledger balances and sums to zero.
async fn assert_ledger_ok(bank: &Bank) {
    let report = bank.store().verify().await.expect("verify");
    assert!(report.ok(), "{report:?}");
}

/// The ledger's `onchain:hot` mirrors the hot wallet: minus its confirmed coins.
async fn assert_hot_account_matches_chain(lab: &Lab) {
    lab.bank.onchain_sync().await.expect("sync");
    let on_chain = lab.wallet.sync(0).await.expect("sync").confirmed_balance.get();
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainHot).await, -on_chain);
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

/// A member with `sats` from the faucet.
async fn funded(lab: &Lab, sats: i64) -> AccountRecord {
    let m = member(&lab.bank).await;
    lab.bank
        .wallet_fund("test", m.default_wallet_id, sats, None)
        .await
        .expect("faucet");
    m
}

fn send(from: &AccountRecord, address: &str, amount: Option<i64>, speed: Speed) -> OnchainSend {
    OnchainSend {
        account: from.id,
        wallet_id: from.default_wallet_id,
        address: address.to_string(),
        amount,
        speed,
        memo: None,
        idempotency_key: None,
    }
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

    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Pending);
    assert_eq!(pending_incoming(&lab.bank, &alice).await, 80_000);
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 0);
    let event = events.try_recv().expect("a pending event");
    assert_eq!(
        event.change,
        WalletChange::Deposit {
            outpoint: outpoint.clone(),
            amount_sat: 80_000
        }
    );
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
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Credited);
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 80_000);
    assert_eq!(pending_incoming(&lab.bank, &alice).await, 0);
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainHot).await, -80_000);

    for _ in 0..3 {
        lab.mine(1).await;
        lab.bank.onchain_sync().await.expect("sync");
    }
    assert_eq!(
        balance(&lab.bank, alice.default_wallet_id).await,
        80_000,
        "credited once"
    );
    assert_eq!(receive_journals(&lab.bank).await, 1);
    let history = lab
        .bank
        .history(alice.id, None, &Default::default())
        .await
        .expect("history");
    assert_eq!(history.items.len(), 1);
    assert_eq!(history.items[0].kind, JournalKind::OnchainReceive);
    assert_eq!(history.items[0].amount, 80_000);
    assert_hot_account_matches_chain(&lab).await;
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
    let mut members = Vec::new();
    for address in &addresses {
        let m = funded(&lab, 30_000).await;
        let outcome = lab
            .bank
            .onchain_send(send(&m, address, Some(10_000), Speed::Medium))
            .await
            .expect("queued");
        assert_eq!(outcome.status, PaymentStatus::Pending);
        assert_eq!(outcome.transaction.status, TxStatus::Pending);
        members.push(m);
    }
    let reserve = 30_000 - 10_000 - balance(&lab.bank, members[0].default_wallet_id).await;
    assert!(reserve > 0, "amount + fee reserve held");
    assert_eq!(lab.bank.onchain_payout_queue(100).await.expect("queue").len(), 20);
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
        assert_eq!(paid[0].value.to_sat(), 10_000);
    }
    let mut charged = 0;
    for m in &members {
        let share = 30_000 - 10_000 - balance(&lab.bank, m.default_wallet_id).await;
        assert!(share > 0 && share <= reserve, "share {share} of a {reserve} reserve");
        charged += share;
    }
    assert!(
        charged >= batch.batch.fee_sat && charged <= batch.batch.fee_sat + 20,
        "{charged} for {}",
        batch.batch.fee_sat
    );

    // Mined: the batch confirms, its fee squared with the shares charged.
    lab.mine(1).await;
    let batch = lab
        .store
        .onchain_batch(&batch.batch.id)
        .await
        .expect("read")
        .expect("batch");
    assert_eq!(batch.status, BatchStatus::Confirmed);
    assert_eq!(
        system_balance(&lab.bank, SystemAccount::FeesRevenue).await,
        charged - batch.batch.fee_sat
    );
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainPending).await, 0);
    assert_hot_account_matches_chain(&lab).await;
    assert_ledger_ok(&lab.bank).await;
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
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Dropped);
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 0);
    assert_eq!(receive_journals(&lab.bank).await, 0);
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainHot).await, 0);
    assert_hot_account_matches_chain(&lab).await;
    assert_ledger_ok(&lab.bank).await;
}

// ---------------------------------------------------------------------------------------------
// Cold storage

/// A cosigner: a master key kept offline, and its account key for the descriptor.
struct Cosigner {
    master: bitcoin::bip32::Xpriv,
    account: String,
}

fn cosigner(seed: u8) -> Cosigner {
    use bitcoin::bip32::{DerivationPath, Xpriv, Xpub};
    let secp = bitcoin::secp256k1::Secp256k1::new();
    let master = Xpriv::new_master(bitcoin::Network::Regtest, &[seed; 32]).expect("master key");
    let path: DerivationPath = "m/48'/1'/0'/2'".parse().expect("path");
    let xpub = Xpub::from_priv(&secp, &master.derive_priv(&secp, &path).expect("derive"));
    Cosigner {
        account: format!("[{}/48'/1'/0'/2']{xpub}", master.fingerprint(&secp)),
        master,
    }
}

/// `c`'s signatures on a base64 PSBT.
fn sign(c: &Cosigner, psbt_b64: &str) -> String {
    use bitcoin::base64::prelude::{Engine, BASE64_STANDARD};
    let bytes = BASE64_STANDARD.decode(psbt_b64).expect("base64");
    let mut psbt = bitcoin::Psbt::deserialize(&bytes).expect("psbt");
    let secp = bitcoin::secp256k1::Secp256k1::new();
    psbt.sign(&c.master, &secp).expect("cosigner signs its inputs");
    BASE64_STANDARD.encode(psbt.serialize())
}

async fn excess_goes_to_cold_storage_and_comes_back_with_two_of_three_signatures(backend: Backend) {
    let Some(binary) = bitcoind_binary() else { return };
    let lab = lab(backend, &binary).await;
    let cosigners = [cosigner(1), cosigner(2), cosigner(3)];
    let keys: Vec<String> = cosigners.iter().map(|c| c.account.clone()).collect();
    let descriptors = flash_onchain::cold_descriptors(2, &keys, Network::Regtest).expect("descriptors");
    // Watch-only, on the same node.
    let cold_wallet =
        flash_onchain::BdkColdWallet::open("cold", &descriptors, lab.chain.clone(), Arc::new(lab.store.clone()))
            .await
            .expect("cold wallet");
    let policy = flash_bank::ColdPolicy {
        max_hot_sats: 300_000,
        min_hot_sats: 100_000,
        min_rebalance_sats: 50_000,
    };
    let bank = lab.bank.clone().with_cold(Arc::new(cold_wallet), policy);

    // Within policy: nothing moves. Above the ceiling: all but the floor goes to cold.
    fund_hot_wallet(&lab, 250_000).await;
    assert_eq!(bank.cold_sweep_check().await.expect("check"), None);
    fund_hot_wallet(&lab, 750_000).await;
    let sweep = bank.cold_sweep_check().await.expect("check").expect("a sweep");
    let mempool = lab.mempool().await;
    assert_eq!(mempool.len(), 1, "the sweep is on the node");
    lab.mine(1).await;
    let (cold_confirmed, _) = bank.cold_balance().await.expect("cold balance");
    assert_eq!(cold_confirmed.get(), 900_000);
    let record = lab.store.onchain_sweep(&sweep).await.expect("read").expect("sweep");
    assert_eq!(record.status, "broadcast");
    assert_eq!(system_balance(&bank, SystemAccount::OnchainCold).await, -900_000);
    assert_hot_account_matches_chain(&lab).await;
    assert_eq!(
        bank.cold_sweep_check().await.expect("check"),
        None,
        "back within policy"
    );

    // Cold → hot: a PSBT; one signature is not enough, two are; the node relays and mines it.
    let psbt = bank.cold_psbt_create(200_000).await.expect("psbt");
    let by_one = sign(&cosigners[0], &psbt.psbt);
    let short = bank.cold_psbt_finalize(&psbt.id, std::slice::from_ref(&by_one)).await;
    assert!(matches!(short, Err(BankError::InvalidInput(_))), "{short:?}");
    let by_three = sign(&cosigners[2], &psbt.psbt);
    let txid = bank
        .cold_psbt_finalize(&psbt.id, &[by_one, by_three])
        .await
        .expect("two of three signatures");
    assert_eq!(lab.mempool().await, vec![txid.parse::<Txid>().expect("txid")]);
    let again = bank
        .cold_psbt_finalize(&psbt.id, &[sign(&cosigners[1], &psbt.psbt)])
        .await;
    assert!(matches!(again, Err(BankError::InvalidInput(_))), "only once: {again:?}");
    lab.mine(1).await;
    let (cold_confirmed, _) = bank.cold_balance().await.expect("cold balance");
    assert_eq!(cold_confirmed.get(), 900_000 - 200_000 - psbt.fee.get());
    assert_eq!(
        system_balance(&bank, SystemAccount::OnchainCold).await,
        -cold_confirmed.get()
    );
    assert_hot_account_matches_chain(&lab).await;
    // The coins came back to the bank's own (change) address: nobody was credited a deposit.
    assert_eq!(receive_journals(&bank).await, 2, "the two funding deposits only");
    assert_ledger_ok(&bank).await;
}
