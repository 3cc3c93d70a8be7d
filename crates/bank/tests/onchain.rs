//! The bank's on-chain deposits against the BDK hot wallet on the `dev` chain: the address
//! index, pending deposits, crediting after confirmations exactly once, reorganisations before
//! and after crediting, deposit fees, refusals, restarts and concurrent watchers. Every test
//! runs on SQLite and on PostgreSQL.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bitcoin::Txid;
use flash_bank::{
    Bank, BankConfig, BankError, Identity, OnchainConfig, OnchainSend, PaymentStatus, Speed, TxStatus, WalletChange,
};
use flash_core::onchain::{ChainError, HotWallet, PayoutOutput, SignedTx, WalletSnapshot};
use flash_core::ports::BoxFuture;
use flash_core::{AccountStatus, Currency, JournalKind, Network, Phone, SystemAccount, WalletId};
use flash_onchain::{hot_descriptors, BdkHotWallet, DevChain, SoftwareSigner};
use flash_store::testing::{fresh_store, Backend};
use flash_store::{AccountRecord, BatchStatus, DepositStatus, PayoutStatus, Store};

flash_store::on_both_backends!(
    deposits_are_pending_then_credited_once_after_confirmations,
    a_deposit_dropped_before_its_confirmations_credits_nothing,
    a_credited_deposit_that_leaves_the_chain_goes_to_review,
    a_review_holds_only_what_the_wallet_still_has,
    deposit_fees_go_to_revenue,
    addresses_are_per_wallet_and_refused_to_others,
    a_restarted_bank_credits_nothing_twice,
    concurrent_watchers_credit_once,
    twenty_withdrawals_go_out_in_one_batch,
    a_fast_withdrawal_gets_its_own_transaction,
    withdrawals_to_flash_addresses_stay_inside,
    refused_withdrawals_hold_nothing,
    a_batch_is_recorded_before_it_is_broadcast,
    a_refused_batch_returns_its_payouts_to_the_queue,
    a_stuck_batch_is_replaced_at_a_higher_fee,
    an_underfunded_hot_wallet_keeps_payouts_queued,
    excess_goes_to_cold_storage_and_comes_back_with_two_of_three_signatures,
);

static NEXT: AtomicU64 = AtomicU64::new(1);

/// What the hot wallet's broadcasts do (failure injection around the real wallet).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Broadcasts {
    /// Go to the dev chain.
    Relay,
    /// Fail as if the chain backend were down.
    Unreachable,
    /// Are refused by the network.
    Refuse,
}

/// The real BDK hot wallet, with broadcasts the test controls.
struct TestWallet {
    inner: Arc<dyn HotWallet>,
    broadcasts: Mutex<Broadcasts>,
}

impl TestWallet {
    fn set(&self, mode: Broadcasts) {
        *self.broadcasts.lock().expect("lock") = mode;
    }
}

impl HotWallet for TestWallet {
    fn network(&self) -> Network {
        self.inner.network()
    }
    fn source_kind(&self) -> &'static str {
        self.inner.source_kind()
    }
    fn deposit_address(&self, index: u32) -> BoxFuture<'_, Result<String, ChainError>> {
        self.inner.deposit_address(index)
    }
    fn internal_address(&self) -> BoxFuture<'_, Result<String, ChainError>> {
        self.inner.internal_address()
    }
    fn sync(&self, from_height: u32) -> BoxFuture<'_, Result<WalletSnapshot, ChainError>> {
        self.inner.sync(from_height)
    }
    fn wait_for_activity(&self, timeout: Duration) -> BoxFuture<'_, ()> {
        self.inner.wait_for_activity(timeout)
    }
    fn fee_rate(&self, target_blocks: u16) -> BoxFuture<'_, Result<u64, ChainError>> {
        self.inner.fee_rate(target_blocks)
    }
    fn build_payout<'a>(
        &'a self,
        outputs: &'a [PayoutOutput],
        rate: u64,
    ) -> BoxFuture<'a, Result<SignedTx, ChainError>> {
        self.inner.build_payout(outputs, rate)
    }
    fn bump_fee(&self, txid: Txid, rate: u64) -> BoxFuture<'_, Result<SignedTx, ChainError>> {
        self.inner.bump_fee(txid, rate)
    }
    fn broadcast<'a>(&'a self, tx: &'a bitcoin::Transaction) -> BoxFuture<'a, Result<(), ChainError>> {
        let mode = *self.broadcasts.lock().expect("lock");
        match mode {
            Broadcasts::Relay => self.inner.broadcast(tx),
            Broadcasts::Unreachable => Box::pin(async { Err(ChainError::Unavailable("connection refused".into())) }),
            Broadcasts::Refuse => Box::pin(async { Err(ChainError::Refused("min relay fee not met".into())) }),
        }
    }
    fn forget(&self, txid: Txid) -> BoxFuture<'_, Result<(), ChainError>> {
        self.inner.forget(txid)
    }
}

/// A bank with a hot wallet on its own dev chain.
struct Lab {
    bank: Bank,
    chain: Arc<DevChain>,
    wallet: Arc<TestWallet>,
    dir: PathBuf,
    store: Store,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
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

async fn hot_wallet(store: &Store, chain: &Arc<DevChain>) -> Arc<dyn HotWallet> {
    let descriptors = hot_descriptors(&[42u8; 32], Network::Regtest).expect("descriptors");
    let signer = Arc::new(SoftwareSigner::new(&[42u8; 32], Network::Regtest).expect("signer"));
    let wallet = BdkHotWallet::open("hot", &descriptors, chain.clone(), Arc::new(store.clone()), signer)
        .await
        .expect("hot wallet");
    Arc::new(wallet)
}

async fn lab_with(backend: Backend, config: BankConfig) -> Lab {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("flash-bank-onchain-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let chain = Arc::new(DevChain::open(&dir, Network::Regtest, 2_000).expect("dev chain"));
    let store = fresh_store(backend).await;
    let wallet = Arc::new(TestWallet {
        inner: hot_wallet(&store, &chain).await,
        broadcasts: Mutex::new(Broadcasts::Relay),
    });
    let bank = Bank::new(store.clone(), config).with_onchain(wallet.clone(), Some(chain.clone()));
    Lab {
        bank,
        chain,
        wallet,
        dir,
        store,
    }
}

async fn lab(backend: Backend) -> Lab {
    lab_with(backend, config(2)).await
}

async fn member(bank: &Bank) -> AccountRecord {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let phone = Phone::parse(&format!("+1557{n:07}")).expect("phone");
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

async fn deposit(lab: &Lab, account: &AccountRecord, sats: i64) -> String {
    let address = lab
        .bank
        .onchain_address_current(account.id, account.default_wallet_id)
        .await
        .expect("address");
    let txid = lab.bank.dev_chain_deposit(&address, sats).await.expect("deposit");
    format!("{txid}:0")
}

async fn deposits_are_pending_then_credited_once_after_confirmations(backend: Backend) {
    let lab = lab(backend).await;
    let alice = member(&lab.bank).await;
    let mut events = lab.bank.subscribe();
    let outpoint = deposit(&lab, &alice, 80_000).await;

    // The dev deposit ran a pass that saw it; the next pass has nothing new.
    let report = lab.bank.onchain_sync().await.expect("sync");
    assert_eq!((report.seen, report.credited, report.tip_height), (0, 0, 0));
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

    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_eq!(
        status(&lab.bank, &outpoint).await,
        DepositStatus::Pending,
        "1 of 2 confirmations"
    );
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 0);

    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Credited);
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 80_000);
    assert_eq!(pending_incoming(&lab.bank, &alice).await, 0);
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainHot).await, -80_000);
    assert!(matches!(
        events.try_recv().map(|e| e.change),
        Ok(WalletChange::Journal(_))
    ));

    for _ in 0..3 {
        lab.bank.onchain_sync().await.expect("sync");
        lab.bank.dev_chain_mine(1).await.expect("mine");
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
    assert_eq!(history.items[0].onchain_outpoint.as_deref(), Some(outpoint.as_str()));
    assert_ledger_ok(&lab.bank).await;
}

async fn a_deposit_dropped_before_its_confirmations_credits_nothing(backend: Backend) {
    let lab = lab(backend).await;
    let alice = member(&lab.bank).await;
    let outpoint = deposit(&lab, &alice, 30_000).await;
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_eq!(pending_incoming(&lab.bank, &alice).await, 30_000);

    let report_tip = lab.bank.dev_chain_reorg(1, true).await.expect("reorg");
    assert_eq!(report_tip.height, 2);
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Dropped);
    assert_eq!(pending_incoming(&lab.bank, &alice).await, 0);
    lab.bank.dev_chain_mine(5).await.expect("mine");
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Dropped);
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 0);
    assert_eq!(receive_journals(&lab.bank).await, 0);
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainHot).await, 0);

    // A deposit sent back to the mempool (not dropped) before its confirmations stays pending
    // and is credited once it has them again.
    let second = deposit(&lab, &alice, 12_000).await;
    lab.bank.dev_chain_mine(1).await.expect("mine");
    lab.bank.dev_chain_reorg(1, false).await.expect("reorg");
    assert_eq!(status(&lab.bank, &second).await, DepositStatus::Pending);
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_eq!(
        balance(&lab.bank, alice.default_wallet_id).await,
        0,
        "1 confirmation after the reorg"
    );
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 12_000);
    assert_ledger_ok(&lab.bank).await;
}

async fn a_credited_deposit_that_leaves_the_chain_goes_to_review(backend: Backend) {
    let lab = lab(backend).await;
    let alice = member(&lab.bank).await;

    // Back to the mempool: under review with a hold, released when it confirms again.
    let outpoint = deposit(&lab, &alice, 40_000).await;
    lab.bank.dev_chain_mine(2).await.expect("mine");
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 40_000);
    lab.bank.dev_chain_reorg(2, false).await.expect("reorg");
    let record = lab
        .store
        .onchain_deposit(&outpoint)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(record.status, DepositStatus::Review);
    assert!(
        record
            .review_reason
            .as_deref()
            .is_some_and(|r| r.contains("unconfirmed")),
        "{record:?}"
    );
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 0, "held for review");
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainReview).await, 40_000);
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_eq!(
        status(&lab.bank, &outpoint).await,
        DepositStatus::Review,
        "1 of 2 confirmations"
    );
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Credited);
    assert_eq!(
        balance(&lab.bank, alice.default_wallet_id).await,
        40_000,
        "hold released"
    );
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainReview).await, 0);

    // Dropped (double-spent): stays under review for an operator, the hold in place.
    let outpoint = deposit(&lab, &alice, 5_000).await;
    lab.bank.dev_chain_mine(2).await.expect("mine");
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 45_000);
    lab.bank.dev_chain_reorg(2, true).await.expect("reorg");
    let record = lab
        .store
        .onchain_deposit(&outpoint)
        .await
        .expect("read")
        .expect("recorded");
    assert_eq!(record.status, DepositStatus::Review);
    assert!(record.review_hold.is_some());
    lab.bank.dev_chain_mine(10).await.expect("mine");
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Review);
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 40_000);
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainReview).await, 5_000);
    assert_eq!(receive_journals(&lab.bank).await, 2, "no credit is taken back silently");
    assert_ledger_ok(&lab.bank).await;
}

async fn a_review_holds_only_what_the_wallet_still_has(backend: Backend) {
    let lab = lab(backend).await;
    let alice = member(&lab.bank).await;
    let bob = member(&lab.bank).await;
    let outpoint = deposit(&lab, &alice, 10_000).await;
    lab.bank.dev_chain_mine(2).await.expect("mine");
    let send = flash_bank::SendRequest {
        account: alice.id,
        from: alice.default_wallet_id,
        to: flash_bank::Recipient::Wallet(bob.default_wallet_id),
        amount: 9_000,
        memo: None,
        idempotency_key: None,
    };
    lab.bank.send_intraledger(send).await.expect("alice spends most of it");
    lab.bank.dev_chain_reorg(2, true).await.expect("reorg");
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Review);
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 0);
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainReview).await, 1_000);
    assert_eq!(
        balance(&lab.bank, bob.default_wallet_id).await,
        9_000,
        "bob is not touched"
    );
    assert_ledger_ok(&lab.bank).await;
}

async fn deposit_fees_go_to_revenue(backend: Backend) {
    let lab = lab_with(
        backend,
        BankConfig {
            onchain: OnchainConfig {
                confirmations: 1,
                deposit_fee_flat_sats: 100,
                deposit_fee_bps: 50,
                ..OnchainConfig::default()
            },
            ..BankConfig::default()
        },
    )
    .await;
    let alice = member(&lab.bank).await;
    deposit(&lab, &alice, 20_001).await;
    lab.bank.dev_chain_mine(1).await.expect("mine");
    // 50 bps of 20,001 is 100.005, rounded up to 101; plus 100 flat.
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 20_001 - 201);
    assert_eq!(system_balance(&lab.bank, SystemAccount::FeesRevenue).await, 201);
    // A deposit no larger than its fee (here 1 + 100) goes to revenue whole.
    deposit(&lab, &alice, 100).await;
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 20_001 - 201);
    assert_eq!(system_balance(&lab.bank, SystemAccount::FeesRevenue).await, 301);
    assert_ledger_ok(&lab.bank).await;
}

async fn addresses_are_per_wallet_and_refused_to_others(backend: Backend) {
    let lab = lab(backend).await;
    let alice = member(&lab.bank).await;
    let bob = member(&lab.bank).await;
    let a1 = lab
        .bank
        .onchain_address_current(alice.id, alice.default_wallet_id)
        .await
        .expect("address");
    assert!(a1.starts_with("bcrt1q"), "{a1}");
    let again = lab
        .bank
        .onchain_address_current(alice.id, alice.default_wallet_id)
        .await;
    assert_eq!(again.expect("address"), a1, "current is stable");
    let a2 = lab
        .bank
        .onchain_address_create(alice.id, alice.default_wallet_id)
        .await
        .expect("address");
    assert_ne!(a1, a2);
    let current = lab
        .bank
        .onchain_address_current(alice.id, alice.default_wallet_id)
        .await;
    assert_eq!(current.expect("address"), a2, "the newest is current");
    let b1 = lab
        .bank
        .onchain_address_create(bob.id, bob.default_wallet_id)
        .await
        .expect("address");
    assert!(![a1.as_str(), a2.as_str()].contains(&b1.as_str()));
    let owner = lab
        .store
        .onchain_address_owner(&b1)
        .await
        .expect("index")
        .expect("indexed");
    assert_eq!(owner.wallet_id, bob.default_wallet_id);

    // Deposits to both of alice's addresses are hers; bob's is his.
    lab.bank.dev_chain_deposit(&a1, 1_000).await.expect("deposit");
    lab.bank.dev_chain_deposit(&a2, 2_000).await.expect("deposit");
    lab.bank.dev_chain_deposit(&b1, 4_000).await.expect("deposit");
    lab.bank.dev_chain_mine(2).await.expect("mine");
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 3_000);
    assert_eq!(balance(&lab.bank, bob.default_wallet_id).await, 4_000);
    let to_a2 = lab
        .bank
        .onchain_deposits(alice.id, alice.default_wallet_id, Some(&a2), 10)
        .await
        .expect("deposits");
    assert_eq!(to_a2.len(), 1);
    assert_eq!(to_a2[0].amount_sat, 2_000);

    // Refusals.
    let err = lab.bank.onchain_address_create(alice.id, bob.default_wallet_id).await;
    assert!(matches!(err, Err(BankError::WalletNotFound)), "{err:?}");
    let err = lab
        .bank
        .dev_chain_deposit("bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4", 1_000)
        .await;
    assert!(matches!(err, Err(BankError::InvalidAddress(_))), "{err:?}");
    let err = lab.bank.dev_chain_deposit("not an address", 1_000).await;
    assert!(matches!(err, Err(BankError::InvalidAddress(_))), "{err:?}");
    let err = lab.bank.dev_chain_deposit(&a1, 0).await;
    assert!(matches!(err, Err(BankError::Amount(_))), "{err:?}");
    lab.bank
        .set_account_status("test", bob.id, AccountStatus::Locked, None)
        .await
        .expect("lock");
    let err = lab.bank.onchain_address_create(bob.id, bob.default_wallet_id).await;
    assert!(matches!(err, Err(BankError::AccountNotActive(_))), "{err:?}");

    let no_chain = Bank::new(lab.store.clone(), config(2));
    let err = no_chain.onchain_address_create(alice.id, alice.default_wallet_id).await;
    assert!(matches!(err, Err(BankError::OnchainUnavailable(_))), "{err:?}");
    let mainnet = Bank::new(
        lab.store.clone(),
        BankConfig {
            network: Network::Mainnet,
            ..config(2)
        },
    )
    .with_onchain(hot_wallet(&lab.store, &lab.chain).await, Some(lab.chain.clone()));
    assert!(matches!(mainnet.dev_chain_mine(1).await, Err(BankError::NotOnMainnet)));
}

async fn a_restarted_bank_credits_nothing_twice(backend: Backend) {
    let lab = lab(backend).await;
    let alice = member(&lab.bank).await;
    let first = deposit(&lab, &alice, 7_000).await;
    lab.bank.dev_chain_mine(2).await.expect("mine");
    let second = deposit(&lab, &alice, 3_000).await;
    lab.bank.dev_chain_mine(1).await.expect("mine");

    // A new bank and wallet over the same store and chain, as after a restart.
    let restarted =
        Bank::new(lab.store.clone(), config(2)).with_onchain(hot_wallet(&lab.store, &lab.chain).await, None);
    let report = restarted.onchain_sync().await.expect("sync");
    assert_eq!((report.seen, report.credited), (0, 0));
    lab.chain_mine(1).await;
    let report = restarted.onchain_sync().await.expect("sync");
    assert_eq!(report.credited, 1);
    assert_eq!(status(&restarted, &first).await, DepositStatus::Credited);
    assert_eq!(status(&restarted, &second).await, DepositStatus::Credited);
    assert_eq!(balance(&restarted, alice.default_wallet_id).await, 10_000);
    assert_eq!(receive_journals(&restarted).await, 2);
    assert_ledger_ok(&restarted).await;
}

async fn concurrent_watchers_credit_once(backend: Backend) {
    let lab = lab(backend).await;
    let alice = member(&lab.bank).await;
    for i in 0..5 {
        deposit(&lab, &alice, 1_000 + i).await;
    }
    lab.chain_mine(2).await;
    // Two "nodes" (banks with their own wallets over one store) and several passes each.
    let other = Bank::new(lab.store.clone(), config(2)).with_onchain(hot_wallet(&lab.store, &lab.chain).await, None);
    let mut passes = Vec::new();
    for i in 0..8 {
        let bank = if i % 2 == 0 { lab.bank.clone() } else { other.clone() };
        passes.push(tokio::spawn(async move { bank.onchain_sync().await }));
    }
    for pass in passes {
        // A pass may lose a race on the wallet state and fail; it changes nothing then.
        let _ = pass.await.expect("task");
    }
    lab.bank.onchain_sync().await.expect("sync");
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 5_000 + 10);
    assert_eq!(receive_journals(&lab.bank).await, 5);
    assert_ledger_ok(&lab.bank).await;
}

impl Lab {
    async fn chain_mine(&self, blocks: u32) {
        flash_core::onchain::ChainSimulator::mine(&*self.chain, blocks)
            .await
            .expect("mine");
    }
}

// ---------------------------------------------------------------------------------------------
// Withdrawals
// ---------------------------------------------------------------------------------------------

/// Addresses outside Flash (another wallet's).
fn outside(index: u32) -> String {
    let other = hot_descriptors(&[77u8; 32], Network::Regtest).expect("descriptors");
    let descriptor: bdk_wallet::descriptor::ExtendedDescriptor = other.external.parse().expect("descriptor");
    let script = descriptor.at_derivation_index(index).expect("index").script_pubkey();
    bitcoin::Address::from_script(&script, bitcoin::Network::Regtest)
        .expect("address")
        .to_string()
}

/// Gives the hot wallet `sats` of confirmed coins (a deposit credited to a bystander).
async fn fund_hot_wallet(lab: &Lab, sats: i64) {
    let whale = member(&lab.bank).await;
    deposit(lab, &whale, sats).await;
    lab.bank.dev_chain_mine(2).await.expect("mine");
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

/// The hot wallet's confirmed balance on chain, after a sync.
async fn hot_wallet_balance(lab: &Lab) -> i64 {
    lab.bank.onchain_sync().await.expect("sync");
    lab.wallet.sync(0).await.expect("sync").confirmed_balance.get()
}

/// The ledger's `onchain:hot` mirrors the hot wallet: minus its confirmed coins.
async fn assert_hot_account_matches_chain(lab: &Lab) {
    let on_chain = hot_wallet_balance(lab).await;
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainHot).await, -on_chain);
}

async fn twenty_withdrawals_go_out_in_one_batch(backend: Backend) {
    let lab = lab(backend).await;
    fund_hot_wallet(&lab, 2_000_000).await;
    let mut members = Vec::new();
    for i in 0..20 {
        let m = funded(&lab, 30_000).await;
        let outcome = lab
            .bank
            .onchain_send(send(&m, &outside(i), Some(10_000), Speed::Medium))
            .await
            .expect("queued");
        assert_eq!(outcome.status, PaymentStatus::Pending);
        assert_eq!(outcome.transaction.status, TxStatus::Pending);
        members.push(m);
    }
    let reserve = 30_000 - 10_000 - balance(&lab.bank, members[0].default_wallet_id).await;
    assert!(reserve > 0, "amount + fee reserve held");
    assert_eq!(lab.bank.onchain_payout_queue(100).await.expect("queue").len(), 20);
    assert!(lab.chain.mempool().is_empty(), "nothing leaves before the batch");

    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!((report.broadcast, report.settled), (1, 20), "{report:?}");
    assert_eq!(lab.chain.mempool().len(), 1, "one transaction for twenty payouts");
    let batches = lab.bank.onchain_batch_history(10).await.expect("batches");
    assert_eq!(batches.len(), 1);
    let batch = &batches[0];
    assert_eq!(batch.status, BatchStatus::Broadcast);
    let tx: bitcoin::Transaction =
        bitcoin::consensus::encode::deserialize_hex(&batch.batch.tx_hex).expect("recorded transaction");
    assert_eq!(tx.output.len(), 21, "twenty payouts and change");
    let mut charged = 0;
    for m in &members {
        let left = balance(&lab.bank, m.default_wallet_id).await;
        let share = 30_000 - 10_000 - left;
        assert!(share > 0 && share <= reserve, "share {share} of a {reserve} reserve");
        charged += share;
    }
    // Shares split the fee by output size, rounded up: together at least the fee.
    assert!(
        charged >= batch.batch.fee_sat && charged <= batch.batch.fee_sat + 20,
        "{charged} for {}",
        batch.batch.fee_sat
    );
    assert!(lab.bank.onchain_payout_queue(100).await.expect("queue").is_empty());

    lab.bank.dev_chain_mine(1).await.expect("mine");
    let batch = lab
        .store
        .onchain_batch(&batch.batch.id)
        .await
        .expect("read")
        .expect("batch");
    assert_eq!(batch.status, BatchStatus::Confirmed);
    // The fee paid is squared with the shares charged; the hot account mirrors the chain.
    assert_eq!(
        system_balance(&lab.bank, SystemAccount::FeesRevenue).await,
        charged - batch.batch.fee_sat
    );
    assert_eq!(system_balance(&lab.bank, SystemAccount::OnchainPending).await, 0);
    assert_hot_account_matches_chain(&lab).await;
    assert_ledger_ok(&lab.bank).await;
}

async fn a_fast_withdrawal_gets_its_own_transaction(backend: Backend) {
    let lab = lab(backend).await;
    fund_hot_wallet(&lab, 500_000).await;
    let slow = funded(&lab, 50_000).await;
    let fast = funded(&lab, 50_000).await;
    lab.bank
        .onchain_send(send(&slow, &outside(1), Some(20_000), Speed::Slow))
        .await
        .expect("queued");
    lab.bank
        .onchain_send(send(&fast, &outside(2), Some(20_000), Speed::Fast))
        .await
        .expect("queued");
    // A pass between batches sends only the fast one.
    let report = lab.bank.onchain_payout_pass(false).await.expect("pass");
    assert_eq!((report.broadcast, report.settled), (1, 1));
    assert_eq!(lab.chain.mempool().len(), 1);
    let queue = lab.bank.onchain_payout_queue(10).await.expect("queue");
    assert_eq!(queue.len(), 1);
    assert_eq!(queue[0].payout.wallet_id, slow.default_wallet_id);
    // Send all: the whole balance less the fee, nothing left.
    let all = lab
        .bank
        .onchain_send(send(&fast, &outside(3), None, Speed::Fast))
        .await
        .expect("send all");
    assert_eq!(all.status, PaymentStatus::Pending);
    assert_eq!(balance(&lab.bank, fast.default_wallet_id).await, 0);
    lab.bank.onchain_payout_pass(true).await.expect("pass");
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert!(balance(&lab.bank, fast.default_wallet_id).await >= 0);
    assert_hot_account_matches_chain(&lab).await;
    assert_ledger_ok(&lab.bank).await;
}

async fn withdrawals_to_flash_addresses_stay_inside(backend: Backend) {
    let lab = lab(backend).await;
    let alice = funded(&lab, 40_000).await;
    let bob = member(&lab.bank).await;
    let bobs = lab
        .bank
        .onchain_address_create(bob.id, bob.default_wallet_id)
        .await
        .expect("address");
    let fee = lab
        .bank
        .onchain_fee(alice.id, alice.default_wallet_id, &bobs, 15_000, Speed::Fast)
        .await
        .expect("fee");
    assert_eq!(fee.get(), 0);
    let paid = lab
        .bank
        .onchain_send(send(&alice, &bobs, Some(15_000), Speed::Fast))
        .await
        .expect("paid inside");
    assert_eq!(paid.status, PaymentStatus::Success);
    assert_eq!(paid.transaction.kind, JournalKind::IntraLedger);
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 25_000);
    assert_eq!(balance(&lab.bank, bob.default_wallet_id).await, 15_000);
    assert!(lab.chain.mempool().is_empty(), "no network hop");
    assert!(lab.bank.onchain_payout_queue(10).await.expect("queue").is_empty());
    assert_ledger_ok(&lab.bank).await;
}

async fn refused_withdrawals_hold_nothing(backend: Backend) {
    let lab = lab(backend).await;
    let alice = funded(&lab, 20_000).await;
    let cases: Vec<(OnchainSend, &str)> = vec![
        (
            send(&alice, &outside(1), Some(4_999), Speed::Medium),
            "AMOUNT_BELOW_DUST",
        ),
        (
            send(
                &alice,
                "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
                Some(10_000),
                Speed::Medium,
            ),
            "INVALID_ADDRESS",
        ),
        (send(&alice, "nonsense", Some(10_000), Speed::Medium), "INVALID_ADDRESS"),
        (
            send(&alice, &outside(1), Some(19_990), Speed::Medium),
            "INSUFFICIENT_BALANCE",
        ),
        (send(&alice, &outside(1), Some(0), Speed::Medium), "INVALID_AMOUNT"),
        (
            send(&alice, &outside(1), Some(2_000_000), Speed::Medium),
            "LIMIT_EXCEEDED",
        ),
    ];
    for (req, code) in cases {
        let err = lab.bank.onchain_send(req.clone()).await.expect_err("refused");
        assert_eq!(err.code(), code, "{req:?}: {err}");
    }
    let mut stranger = send(&alice, &outside(1), Some(10_000), Speed::Medium);
    stranger.wallet_id = member(&lab.bank).await.default_wallet_id;
    let err = lab.bank.onchain_send(stranger).await.expect_err("not hers");
    assert_eq!(err.code(), "WALLET_NOT_FOUND");
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 20_000);
    assert!(lab.bank.onchain_payout_queue(10).await.expect("queue").is_empty());

    // The same idempotency key twice: one payout, the same answer.
    let mut keyed = send(&alice, &outside(2), Some(10_000), Speed::Medium);
    keyed.idempotency_key = Some("withdraw-1".into());
    let first = lab.bank.onchain_send(keyed.clone()).await.expect("queued");
    let again = lab.bank.onchain_send(keyed).await.expect("replayed");
    assert_eq!(first.transaction.journal_id, again.transaction.journal_id);
    assert_eq!(lab.bank.onchain_payout_queue(10).await.expect("queue").len(), 1);
    assert_ledger_ok(&lab.bank).await;
}

async fn a_batch_is_recorded_before_it_is_broadcast(backend: Backend) {
    let lab = lab(backend).await;
    fund_hot_wallet(&lab, 500_000).await;
    let alice = funded(&lab, 50_000).await;
    lab.bank
        .onchain_send(send(&alice, &outside(1), Some(20_000), Speed::Medium))
        .await
        .expect("queued");
    lab.wallet.set(Broadcasts::Unreachable);
    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!((report.broadcast, report.settled), (0, 0));
    let signed = lab
        .store
        .onchain_batches(BatchStatus::Signed, 10)
        .await
        .expect("batches");
    assert_eq!(signed.len(), 1, "recorded, signed, not yet out");
    let payouts = lab
        .store
        .onchain_batch_payouts(&signed[0].batch.id)
        .await
        .expect("payouts");
    assert_eq!(payouts[0].status, PayoutStatus::Batched);
    assert!(balance(&lab.bank, alice.default_wallet_id).await < 30_000, "still held");
    // As after a restart: a new bank over the same store finishes the job.
    lab.wallet.set(Broadcasts::Relay);
    let restarted = Bank::new(lab.store.clone(), config(2)).with_onchain(lab.wallet.clone(), None);
    let report = restarted.onchain_payout_pass(false).await.expect("pass");
    assert_eq!((report.broadcast, report.settled), (1, 1));
    assert_eq!(
        lab.chain.mempool(),
        vec![signed[0].batch.txid.parse::<Txid>().expect("txid")]
    );
    let again = restarted.onchain_payout_pass(true).await.expect("pass");
    assert_eq!(again, flash_bank::PayoutReport::default(), "nothing twice");
    assert_ledger_ok(&lab.bank).await;
}

async fn a_refused_batch_returns_its_payouts_to_the_queue(backend: Backend) {
    let lab = lab(backend).await;
    fund_hot_wallet(&lab, 500_000).await;
    let alice = funded(&lab, 50_000).await;
    lab.bank
        .onchain_send(send(&alice, &outside(1), Some(20_000), Speed::Medium))
        .await
        .expect("queued");
    lab.wallet.set(Broadcasts::Refuse);
    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!(report.refused, 1);
    assert_eq!(
        lab.store
            .onchain_batches(BatchStatus::Failed, 10)
            .await
            .expect("batches")
            .len(),
        1
    );
    assert_eq!(
        lab.bank.onchain_payout_queue(10).await.expect("queue").len(),
        1,
        "queued again"
    );
    lab.wallet.set(Broadcasts::Relay);
    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!(
        (report.broadcast, report.settled),
        (1, 1),
        "the coins were freed for a new batch"
    );
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_hot_account_matches_chain(&lab).await;
    assert_ledger_ok(&lab.bank).await;
}

async fn a_stuck_batch_is_replaced_at_a_higher_fee(backend: Backend) {
    let lab = lab_with(
        backend,
        BankConfig {
            onchain: OnchainConfig {
                rbf_after_blocks: 2,
                ..config(2).onchain
            },
            ..config(2)
        },
    )
    .await;
    fund_hot_wallet(&lab, 500_000).await;
    let alice = funded(&lab, 50_000).await;
    lab.bank
        .onchain_send(send(&alice, &outside(1), Some(20_000), Speed::Medium))
        .await
        .expect("queued");
    // Miners want 2.5 sat/vB; the batch pays 2 and stays in the mempool (the bump pays 3).
    lab.chain.set_mining_floor(2_500);
    lab.bank.onchain_payout_pass(true).await.expect("pass");
    let after_send = balance(&lab.bank, alice.default_wallet_id).await;
    let original = lab
        .store
        .onchain_batches(BatchStatus::Broadcast, 10)
        .await
        .expect("batches")[0]
        .clone();
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_eq!(lab.chain.mempool().len(), 1, "stuck");
    assert_eq!(
        lab.bank.onchain_payout_pass(false).await.expect("pass").bumped,
        0,
        "not yet"
    );
    lab.bank.dev_chain_mine(1).await.expect("mine");
    let report = lab.bank.onchain_payout_pass(false).await.expect("pass");
    assert_eq!(report.bumped, 1, "{report:?}");
    let mempool = lab.chain.mempool();
    assert_eq!(mempool.len(), 1);
    assert_ne!(mempool[0].to_string(), original.batch.txid);
    lab.bank.dev_chain_mine(1).await.expect("mine");
    let group = lab.store.onchain_batch_group(&original.batch.id).await.expect("group");
    let statuses: Vec<BatchStatus> = group.iter().map(|b| b.status).collect();
    assert_eq!(statuses, vec![BatchStatus::Replaced, BatchStatus::Confirmed]);
    assert!(group[1].batch.fee_sat > original.batch.fee_sat);
    let payouts = lab
        .store
        .onchain_batch_payouts(&group[1].batch.id)
        .await
        .expect("payouts");
    assert_eq!(payouts.len(), 1, "the payout moved to the replacement");
    assert_eq!(
        balance(&lab.bank, alice.default_wallet_id).await,
        after_send,
        "the bank pays the bump"
    );
    assert_hot_account_matches_chain(&lab).await;
    assert_ledger_ok(&lab.bank).await;
}

async fn an_underfunded_hot_wallet_keeps_payouts_queued(backend: Backend) {
    let lab = lab(backend).await;
    let alice = funded(&lab, 50_000).await;
    lab.bank
        .onchain_send(send(&alice, &outside(1), Some(20_000), Speed::Medium))
        .await
        .expect("queued");
    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!(report, flash_bank::PayoutReport::default());
    assert_eq!(lab.bank.onchain_payout_queue(10).await.expect("queue").len(), 1);
    fund_hot_wallet(&lab, 100_000).await;
    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!((report.broadcast, report.settled), (1, 1));
    assert_ledger_ok(&lab.bank).await;
}

// ---------------------------------------------------------------------------------------------
// Cold storage
// ---------------------------------------------------------------------------------------------

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

fn sign(c: &Cosigner, psbt_b64: &str) -> String {
    use bitcoin::base64::prelude::{Engine, BASE64_STANDARD};
    let bytes = BASE64_STANDARD.decode(psbt_b64).expect("base64");
    let mut psbt = bitcoin::Psbt::deserialize(&bytes).expect("psbt");
    let secp = bitcoin::secp256k1::Secp256k1::new();
    psbt.sign(&c.master, &secp).expect("cosigner signs its inputs");
    BASE64_STANDARD.encode(psbt.serialize())
}

async fn excess_goes_to_cold_storage_and_comes_back_with_two_of_three_signatures(backend: Backend) {
    let lab = lab(backend).await;
    let cosigners = [cosigner(1), cosigner(2), cosigner(3)];
    let keys: Vec<String> = cosigners.iter().map(|c| c.account.clone()).collect();
    let descriptors = flash_onchain::cold_descriptors(2, &keys, Network::Regtest).expect("descriptors");
    assert!(
        descriptors.external.starts_with("wsh(sortedmulti(2,"),
        "{}",
        descriptors.external
    );
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

    // Within policy: nothing moves.
    fund_hot_wallet(&lab, 250_000).await;
    assert_eq!(bank.cold_sweep_check().await.expect("check"), None);
    // Above the ceiling: all but the floor goes to cold.
    fund_hot_wallet(&lab, 750_000).await;
    let sweep = bank.cold_sweep_check().await.expect("check").expect("a sweep");
    assert_eq!(lab.chain.mempool().len(), 1);
    bank.dev_chain_mine(1).await.expect("mine");
    let (cold_confirmed, _) = bank.cold_balance().await.expect("cold balance");
    assert_eq!(cold_confirmed.get(), 900_000);
    let record = lab.store.onchain_sweep(&sweep).await.expect("read").expect("sweep");
    assert_eq!(
        (record.status.as_str(), record.confirmed_height),
        ("confirmed", Some(i64::from(lab.chain.height()))),
        "the watcher saw the block confirm it"
    );
    assert_eq!(system_balance(&bank, SystemAccount::OnchainCold).await, -900_000);
    assert_hot_account_matches_chain(&lab).await;
    assert_eq!(
        bank.cold_sweep_check().await.expect("check"),
        None,
        "back within policy"
    );

    // Cold → hot: a PSBT, one signature is not enough, two are.
    let psbt = bank.cold_psbt_create(200_000).await.expect("psbt");
    // Malformed or foreign PSBTs are refused and change nothing.
    let other = bank.cold_psbt_create(150_000).await.expect("another psbt");
    let foreign = sign(&cosigners[0], &other.psbt);
    for (bad, why) in [
        ("not base64 at all!".to_string(), "not base64"),
        ("aGVsbG8gd29ybGQ=".to_string(), "not a PSBT"),
        (foreign, "not the one created"),
    ] {
        let refused = bank.cold_psbt_finalize(&psbt.id, &[bad]).await;
        assert!(
            matches!(&refused, Err(BankError::InvalidInput(m)) if m.contains(why)),
            "{why}: {refused:?}"
        );
    }
    let unknown = bank.cold_psbt_finalize("sweep:nope", &[]).await;
    assert!(matches!(unknown, Err(BankError::InvalidInput(_))), "{unknown:?}");
    let awaiting = bank.cold_sweep(&psbt.id).await.expect("read").expect("sweep");
    assert_eq!(awaiting.status, "awaiting_signatures");
    assert!(lab.chain.mempool().is_empty(), "nothing broadcast");
    let by_one = sign(&cosigners[0], &psbt.psbt);
    let short = bank.cold_psbt_finalize(&psbt.id, std::slice::from_ref(&by_one)).await;
    assert!(matches!(short, Err(BankError::InvalidInput(_))), "{short:?}");
    let by_three = sign(&cosigners[2], &psbt.psbt);
    let txid = bank
        .cold_psbt_finalize(&psbt.id, &[by_one, by_three])
        .await
        .expect("two of three signatures");
    assert_eq!(lab.chain.mempool(), vec![txid.parse::<Txid>().expect("txid")]);
    let again = bank
        .cold_psbt_finalize(&psbt.id, &[sign(&cosigners[1], &psbt.psbt)])
        .await;
    assert!(matches!(again, Err(BankError::InvalidInput(_))), "only once: {again:?}");
    let back = lab.store.onchain_sweep(&psbt.id).await.expect("read").expect("sweep");
    assert_eq!(back.status, "broadcast");
    bank.dev_chain_mine(1).await.expect("mine");
    let back = lab.store.onchain_sweep(&psbt.id).await.expect("read").expect("sweep");
    assert_eq!(
        (back.status.as_str(), back.confirmed_height),
        ("confirmed", Some(i64::from(lab.chain.height())))
    );
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
