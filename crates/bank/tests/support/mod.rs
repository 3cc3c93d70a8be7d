//! Helpers shared by the bank's integration tests (`mod support;` in each): members and their
//! balances, ledger checks, the hot wallet, on-chain withdrawals and 2-of-3 cold storage with
//! offline cosigners. The on-chain scenarios run both on the `dev` chain (`onchain.rs`) and on a
//! real `bitcoind -regtest` (`onchain_regtest.rs`); what they check in common is written here
//! once.
//!
//! Every test file is a crate of its own that compiles this module again and uses only some of
//! it: `dead_code` is allowed so that the rest does not warn there.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use flash_bank::{Bank, BankConfig, BankError, ColdPolicy, Identity, OnchainConfig, OnchainSend, PaymentStatus, Speed};
use flash_bank::{TxStatus, WalletChange, WalletEvent};
use flash_core::onchain::{ChainSource, HotWallet};
use flash_core::{Currency, JournalKind, Network, Phone, SystemAccount, WalletId};
use flash_onchain::testing::{open_hot_wallet, RegtestNode};
use flash_onchain::{cold_descriptors, BdkColdWallet, BitcoindChain};
use flash_store::{AccountRecord, BatchStatus, DepositStatus, Store};
use tokio::sync::broadcast;

/// The hot wallet's seed in these tests.
pub const HOT_SEED: [u8; 32] = [42u8; 32];

static NEXT_PHONE: AtomicU64 = AtomicU64::new(1);

/// The flashd node every bank of a test is, unless a test says otherwise: a second bank over
/// the same store is that node restarted.
pub const NODE: &str = "test-node";

/// The default configuration, deposits credited after `confirmations`.
pub fn config(confirmations: u32) -> BankConfig {
    BankConfig {
        onchain: OnchainConfig {
            confirmations,
            ..OnchainConfig::default()
        },
        node_name: NODE.into(),
        ..BankConfig::default()
    }
}

/// The regtest hot wallet of [`HOT_SEED`] over `chain`, its state in `store`.
pub async fn hot_wallet(store: &Store, chain: Arc<dyn ChainSource>) -> Arc<dyn HotWallet> {
    Arc::new(open_hot_wallet(&HOT_SEED, chain, Arc::new(store.clone())).await)
}

// ---------------------------------------------------------------------------------------------
// Members, balances, the ledger

/// A new member signed up with a phone number of its own.
/// A `bitcoind -regtest` of the test's own (`binary`) with 101 blocks mined (coins for its
/// wallet to pay with), and a chain source following it.
pub async fn regtest_chain(binary: &std::path::Path) -> (Arc<RegtestNode>, Arc<BitcoindChain>) {
    let binary = binary.to_path_buf();
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
    (node, chain)
}

pub async fn member(bank: &Bank) -> AccountRecord {
    let n = NEXT_PHONE.fetch_add(1, Ordering::Relaxed);
    let phone = Phone::parse(&format!("+1557{n:07}")).expect("phone");
    bank.user_for_identity(&Identity::Phone(phone))
        .await
        .expect("sign up")
        .1
}

/// A member with `sats` from the faucet.
pub async fn funded(bank: &Bank, sats: i64) -> AccountRecord {
    let m = member(bank).await;
    bank.wallet_fund("test", m.default_wallet_id, sats, None)
        .await
        .expect("faucet");
    m
}

/// A wallet's balance.
pub async fn balance(bank: &Bank, wallet: WalletId) -> i64 {
    bank.store_for_tests().wallet_balance(wallet).await.expect("balance")
}

/// A system account's BTC balance.
pub async fn system_balance(bank: &Bank, account: SystemAccount) -> i64 {
    bank.system_balance(account, Currency::Btc).await.expect("balance")
}

/// The ledger balances and sums to zero.
pub async fn assert_ledger_ok(bank: &Bank) {
    let report = bank.verify_ledger().await.expect("verify");
    assert!(report.ok(), "{report:?}");
}

// ---------------------------------------------------------------------------------------------
// Deposits

/// What is on its way to `account`'s (first) wallet.
pub async fn pending_incoming(bank: &Bank, account: &AccountRecord) -> i64 {
    let wallets = bank.wallets(account.id).await.expect("wallets");
    wallets[0].pending_incoming
}

/// The status of the deposit at `outpoint`.
pub async fn status(bank: &Bank, outpoint: &str) -> DepositStatus {
    bank.store_for_tests()
        .onchain_deposit(outpoint)
        .await
        .expect("deposit")
        .expect("recorded")
        .status
}

/// How many deposits were credited (`onchain_receive` journals).
pub async fn receive_journals(bank: &Bank) -> i64 {
    let rows = bank
        .store_for_tests()
        .db()
        .query(
            "SELECT COUNT(*) FROM journals WHERE kind = $1",
            vec![JournalKind::OnchainReceive.as_str().into()],
        )
        .await
        .expect("count");
    rows[0].int(0).expect("count")
}

/// The deposit of `sats` at `outpoint` to `account` is pending: on its way, not credited, and
/// announced on `events`.
pub async fn assert_pending_deposit(
    bank: &Bank,
    account: &AccountRecord,
    outpoint: &str,
    sats: i64,
    events: &mut broadcast::Receiver<WalletEvent>,
) {
    assert_eq!(status(bank, outpoint).await, DepositStatus::Pending);
    assert_eq!(pending_incoming(bank, account).await, sats);
    assert_eq!(balance(bank, account.default_wallet_id).await, 0);
    let event = events.try_recv().expect("a pending event");
    assert_eq!(
        event.change,
        WalletChange::Deposit {
            outpoint: outpoint.to_string(),
            amount_sat: sats
        }
    );
}

/// The deposit of `sats` at `outpoint`, the only one of the bank, is credited to `account`.
pub async fn assert_credited(bank: &Bank, account: &AccountRecord, outpoint: &str, sats: i64) {
    assert_eq!(status(bank, outpoint).await, DepositStatus::Credited);
    assert_eq!(balance(bank, account.default_wallet_id).await, sats);
    assert_eq!(pending_incoming(bank, account).await, 0);
    assert_eq!(system_balance(bank, SystemAccount::OnchainHot).await, -sats);
}

/// `account` was credited its one deposit of `sats` once, later passes notwithstanding: the
/// one entry of its history, returned.
pub async fn assert_credited_once(bank: &Bank, account: &AccountRecord, sats: i64) -> flash_bank::Transaction {
    assert_eq!(balance(bank, account.default_wallet_id).await, sats, "credited once");
    assert_eq!(receive_journals(bank).await, 1);
    let history = bank
        .history(account.id, None, &Default::default())
        .await
        .expect("history");
    assert_eq!(history.items.len(), 1);
    assert_eq!(history.items[0].kind, JournalKind::OnchainReceive);
    assert_eq!(history.items[0].amount, sats);
    history.items[0].transaction.clone()
}

/// A dropped deposit left nothing: not credited, no journal, nothing on the hot account.
pub async fn assert_dropped(bank: &Bank, account: &AccountRecord, outpoint: &str) {
    assert_eq!(status(bank, outpoint).await, DepositStatus::Dropped);
    assert_eq!(balance(bank, account.default_wallet_id).await, 0);
    assert_eq!(receive_journals(bank).await, 0);
    assert_eq!(system_balance(bank, SystemAccount::OnchainHot).await, 0);
}

// ---------------------------------------------------------------------------------------------
// The hot wallet and withdrawals

/// `from` pays `amount` (all when `None`) to `address` on chain.
pub fn send(from: &AccountRecord, address: &str, amount: Option<i64>, speed: Speed) -> OnchainSend {
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

/// The hot wallet's confirmed balance on chain, after a watcher pass.
pub async fn hot_wallet_balance(bank: &Bank, wallet: &dyn HotWallet) -> i64 {
    bank.onchain_sync().await.expect("sync");
    wallet.sync(0).await.expect("sync").confirmed_balance.get()
}

/// The ledger's `onchain:hot` mirrors the hot wallet: minus its confirmed coins.
pub async fn assert_hot_account_matches_chain(bank: &Bank, wallet: &dyn HotWallet) {
    let on_chain = hot_wallet_balance(bank, wallet).await;
    assert_eq!(system_balance(bank, SystemAccount::OnchainHot).await, -on_chain);
}

/// What each member of [`queue_withdrawals`] had.
pub const WITHDRAWER_FUNDS: i64 = 30_000;
/// What each member of [`queue_withdrawals`] sends.
pub const WITHDRAWAL: i64 = 10_000;

/// One member per address, each with [`WITHDRAWER_FUNDS`], sends it [`WITHDRAWAL`] at medium
/// speed: every payout is queued, pending, and held with a fee reserve. The members and the
/// reserve held of each.
pub async fn queue_withdrawals(bank: &Bank, addresses: &[String]) -> (Vec<AccountRecord>, i64) {
    let mut members = Vec::new();
    for address in addresses {
        let m = funded(bank, WITHDRAWER_FUNDS).await;
        let outcome = bank
            .onchain_send(send(&m, address, Some(WITHDRAWAL), Speed::Medium))
            .await
            .expect("queued");
        assert_eq!(outcome.status, PaymentStatus::Pending);
        assert_eq!(outcome.transaction.status, TxStatus::Pending);
        members.push(m);
    }
    let reserve = WITHDRAWER_FUNDS - WITHDRAWAL - balance(bank, members[0].default_wallet_id).await;
    assert!(reserve > 0, "amount + fee reserve held");
    assert_eq!(
        bank.onchain_payout_queue(100).await.expect("queue").len(),
        addresses.len()
    );
    (members, reserve)
}

/// The members of [`queue_withdrawals`], their batch sent, were each charged a share of at most
/// the `reserve` held; the shares (split by output size, rounded up) add up to at least the
/// batch's `fee`. What they were charged together.
pub async fn fee_shares(bank: &Bank, members: &[AccountRecord], reserve: i64, fee: i64) -> i64 {
    let mut charged = 0;
    for m in members {
        let share = WITHDRAWER_FUNDS - WITHDRAWAL - balance(bank, m.default_wallet_id).await;
        assert!(share > 0 && share <= reserve, "share {share} of a {reserve} reserve");
        charged += share;
    }
    assert!(charged >= fee && charged <= fee + 20, "{charged} for {fee}");
    charged
}

/// Batch `id` is confirmed and its fee squared with the `charged` shares; the hot account
/// mirrors the chain and the ledger balances.
pub async fn assert_batch_settled(bank: &Bank, wallet: &dyn HotWallet, id: &str, charged: i64) {
    let batch = bank
        .store_for_tests()
        .onchain_batch(id)
        .await
        .expect("read")
        .expect("batch");
    assert_eq!(batch.status, BatchStatus::Confirmed);
    assert_eq!(
        system_balance(bank, SystemAccount::FeesRevenue).await,
        charged - batch.batch.fee_sat
    );
    assert_eq!(system_balance(bank, SystemAccount::OnchainPending).await, 0);
    assert_hot_account_matches_chain(bank, wallet).await;
    assert_ledger_ok(bank).await;
}

// ---------------------------------------------------------------------------------------------
// Cold storage

/// A cosigner: a master key kept offline, and its account key for the descriptor.
pub struct Cosigner {
    /// The master key.
    pub master: bitcoin::bip32::Xpriv,
    /// `[fingerprint/48'/1'/0'/2']tpub…`.
    pub account: String,
}

/// The cosigner of `seed` (regtest, BIP48 P2WSH account 0).
pub fn cosigner(seed: u8) -> Cosigner {
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
pub fn sign(c: &Cosigner, psbt_b64: &str) -> String {
    use bitcoin::base64::prelude::{Engine, BASE64_STANDARD};
    let bytes = BASE64_STANDARD.decode(psbt_b64).expect("base64");
    let mut psbt = bitcoin::Psbt::deserialize(&bytes).expect("psbt");
    let secp = bitcoin::secp256k1::Secp256k1::new();
    psbt.sign(&c.master, &secp).expect("cosigner signs its inputs");
    BASE64_STANDARD.encode(psbt.serialize())
}

/// The cold storage of these tests: three cosigners, and `bank` with their 2-of-3 multisig
/// watched over `chain` (its state in `store`), keeping between 100,000 and 300,000 sats hot
/// and moving at least 50,000. The cold wallet's external descriptor too.
pub async fn with_cold_storage(
    bank: &Bank,
    chain: Arc<dyn ChainSource>,
    store: &Store,
) -> (Bank, [Cosigner; 3], String) {
    let cosigners = [cosigner(1), cosigner(2), cosigner(3)];
    let keys: Vec<String> = cosigners.iter().map(|c| c.account.clone()).collect();
    let descriptors = cold_descriptors(2, &keys, Network::Regtest).expect("descriptors");
    let cold_wallet = BdkColdWallet::open("cold", &descriptors, chain, Arc::new(store.clone()))
        .await
        .expect("cold wallet");
    let policy = ColdPolicy {
        max_hot_sats: 300_000,
        min_hot_sats: 100_000,
        min_rebalance_sats: 50_000,
    };
    let bank = bank.clone().with_cold(Arc::new(cold_wallet), policy);
    (bank, cosigners, descriptors.external)
}

/// The hot wallet is within the cold storage policy: no sweep is due (`why`).
pub async fn assert_no_sweep(bank: &Bank, why: &str) {
    assert_eq!(bank.cold_sweep_check().await.expect("check"), None, "{why}");
}

/// The cold wallet has `sats` confirmed, and the ledger's `onchain:cold` mirrors it.
pub async fn assert_cold_balance(bank: &Bank, sats: i64) {
    let (cold_confirmed, _) = bank.cold_balance().await.expect("cold balance");
    assert_eq!(cold_confirmed.get(), sats);
    assert_eq!(system_balance(bank, SystemAccount::OnchainCold).await, -sats);
}

/// Finalises cold → hot PSBT `id`: cosigner 1's signature alone is refused, cosigners 1 and 3
/// together are enough, and nothing is finalised twice (cosigner 2's, after). The txid.
pub async fn finalize_two_of_three(bank: &Bank, cosigners: &[Cosigner; 3], id: &str, psbt: &str) -> String {
    let by_one = sign(&cosigners[0], psbt);
    let short = bank.cold_psbt_finalize(id, std::slice::from_ref(&by_one)).await;
    assert!(matches!(short, Err(BankError::InvalidInput(_))), "{short:?}");
    let by_three = sign(&cosigners[2], psbt);
    let txid = bank
        .cold_psbt_finalize(id, &[by_one, by_three])
        .await
        .expect("two of three signatures");
    let again = bank.cold_psbt_finalize(id, &[sign(&cosigners[1], psbt)]).await;
    assert!(matches!(again, Err(BankError::InvalidInput(_))), "only once: {again:?}");
    txid
}
