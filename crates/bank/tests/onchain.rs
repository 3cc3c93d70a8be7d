//! The bank's on-chain deposits against the BDK hot wallet on the `dev` chain: the address
//! index, pending deposits, crediting after confirmations exactly once, reorganisations before
//! and after crediting, deposit fees, refusals, restarts and concurrent watchers. Every test
//! runs on SQLite and on PostgreSQL.

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bitcoin::Txid;
use flash_bank::{
    Bank, BankConfig, BankError, HistoryPageRequest, OnchainConfig, OnchainSend, PaymentStatus, Speed, TxStatus,
    WalletChange,
};
use flash_core::onchain::{ChainError, ChainSource, HotWallet, PayoutOutput};
use flash_core::{AccountStatus, JournalKind, Network, Sats, SystemAccount};
use flash_onchain::testing::{outside_address, BroadcastFuture, HookedHotWallet, HotWalletHooks};
use flash_onchain::DevChain;
use flash_store::testing::{fresh_store, Backend};
use flash_store::{AccountRecord, BatchStatus, DepositStatus, PayoutStatus, Store};
use support::*;

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
    a_payout_transaction_reorganised_out_is_followed_until_it_confirms_again,
    a_payout_transaction_no_mempool_kept_is_broadcast_again,
    a_chain_that_only_got_shorter_is_followed_before_the_next_block,
    withdrawals_to_flash_addresses_stay_inside,
    refused_withdrawals_hold_nothing,
    a_batch_is_recorded_before_it_is_broadcast,
    a_refusal_after_an_unanswered_broadcast_pays_nobody_twice,
    holds_a_crash_left_unsettled_settle_when_the_batch_confirms,
    one_node_spends_and_another_takes_over_when_its_lease_expires,
    a_refused_batch_returns_its_payouts_to_the_queue,
    a_stuck_batch_is_replaced_at_a_higher_fee,
    an_underfunded_hot_wallet_keeps_payouts_queued,
    coins_of_a_transaction_signed_but_never_recorded_come_back,
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

/// The hot wallet's broadcasts as the test sets them.
struct BroadcastFaults(Mutex<Broadcasts>);

impl BroadcastFaults {
    fn set(&self, mode: Broadcasts) {
        *self.0.lock().expect("lock") = mode;
    }
}

impl HotWalletHooks for BroadcastFaults {
    fn broadcast<'a>(&'a self, inner: &'a dyn HotWallet, tx: &'a bitcoin::Transaction) -> BroadcastFuture<'a> {
        let mode = *self.0.lock().expect("lock");
        match mode {
            Broadcasts::Relay => inner.broadcast(tx),
            Broadcasts::Unreachable => Box::pin(async { Err(ChainError::Unavailable("connection refused".into())) }),
            Broadcasts::Refuse => Box::pin(async { Err(ChainError::Refused("min relay fee not met".into())) }),
        }
    }
}

/// The real BDK hot wallet, with broadcasts the test controls (`wallet.hooks.set(…)`).
type TestWallet = HookedHotWallet<BroadcastFaults>;

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

async fn lab_with(backend: Backend, config: BankConfig) -> Lab {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("flash-bank-onchain-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let chain = Arc::new(DevChain::open(&dir, Network::Regtest, 2_000).expect("dev chain"));
    let store = fresh_store(backend).await;
    let wallet = Arc::new(TestWallet {
        inner: hot_wallet(&store, chain.clone()).await,
        hooks: BroadcastFaults(Mutex::new(Broadcasts::Relay)),
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
    assert_pending_deposit(&lab.bank, &alice, &outpoint, 80_000, &mut events).await;

    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_eq!(
        status(&lab.bank, &outpoint).await,
        DepositStatus::Pending,
        "1 of 2 confirmations"
    );
    assert_eq!(balance(&lab.bank, alice.default_wallet_id).await, 0);

    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_credited(&lab.bank, &alice, &outpoint, 80_000).await;
    assert!(matches!(
        events.try_recv().map(|e| e.change),
        Ok(WalletChange::Journal(_))
    ));

    for _ in 0..3 {
        lab.bank.onchain_sync().await.expect("sync");
        lab.bank.dev_chain_mine(1).await.expect("mine");
    }
    let credited = assert_credited_once(&lab.bank, &alice, 80_000).await;
    assert_eq!(credited.onchain_outpoint.as_deref(), Some(outpoint.as_str()));
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
    assert_dropped(&lab.bank, &alice, &outpoint).await;

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
    .with_onchain(hot_wallet(&lab.store, lab.chain.clone()).await, Some(lab.chain.clone()));
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
        Bank::new(lab.store.clone(), config(2)).with_onchain(hot_wallet(&lab.store, lab.chain.clone()).await, None);
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
    let other =
        Bank::new(lab.store.clone(), config(2)).with_onchain(hot_wallet(&lab.store, lab.chain.clone()).await, None);
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
    outside_address(&[77u8; 32], index)
}

/// Gives the hot wallet `sats` of confirmed coins (a deposit credited to a bystander).
async fn fund_hot_wallet(lab: &Lab, sats: i64) {
    let whale = member(&lab.bank).await;
    deposit(lab, &whale, sats).await;
    lab.bank.dev_chain_mine(2).await.expect("mine");
}

/// Funds the hot wallet with 500,000 sats and queues a 20,000-sat payout to an outside
/// address from a member funded with 50,000; the member.
async fn one_payout(lab: &Lab, speed: Speed) -> AccountRecord {
    fund_hot_wallet(lab, 500_000).await;
    let alice = funded(&lab.bank, 50_000).await;
    lab.bank
        .onchain_send(send(&alice, &outside(1), Some(20_000), speed))
        .await
        .expect("queued");
    alice
}

async fn twenty_withdrawals_go_out_in_one_batch(backend: Backend) {
    let lab = lab(backend).await;
    fund_hot_wallet(&lab, 2_000_000).await;
    let addresses: Vec<String> = (0..20).map(outside).collect();
    let (members, reserve) = queue_withdrawals(&lab.bank, &addresses).await;
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
    // Shares split the fee by output size, rounded up: together at least the fee.
    let charged = fee_shares(&lab.bank, &members, reserve, batch.batch.fee_sat).await;
    assert!(lab.bank.onchain_payout_queue(100).await.expect("queue").is_empty());

    // The fee paid is squared with the shares charged; the hot account mirrors the chain.
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_batch_settled(&lab.bank, &*lab.wallet, &batch.batch.id, charged).await;
}

async fn a_fast_withdrawal_gets_its_own_transaction(backend: Backend) {
    let lab = lab(backend).await;
    fund_hot_wallet(&lab, 500_000).await;
    let slow = funded(&lab.bank, 50_000).await;
    let fast = funded(&lab.bank, 50_000).await;
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
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_ledger_ok(&lab.bank).await;
}

/// A confirmed payout transaction whose block is reorganised away goes back to `broadcast`
/// (its history line back to PENDING) and is confirmed again, at its new height, once a block
/// of the new chain has it; the fee is squared once.
/// Issue 14: blocks invalidated with none in their place (bitcoind's `invalidateblock`): the
/// watcher's next pass already sees the shorter chain, not only once a block arrives.
async fn a_chain_that_only_got_shorter_is_followed_before_the_next_block(backend: Backend) {
    let lab = lab(backend).await;
    fund_hot_wallet(&lab, 500_000).await;
    let alice = funded(&lab.bank, 50_000).await;
    let bob = member(&lab.bank).await;
    let outpoint = deposit(&lab, &bob, 40_000).await;
    lab.bank
        .onchain_send(send(&alice, &outside(1), Some(20_000), Speed::Fast))
        .await
        .expect("queued");
    lab.bank.onchain_payout_pass(false).await.expect("pass");
    lab.bank.dev_chain_mine(2).await.expect("mine");
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Credited);
    let batch = lab.bank.onchain_batch_history(1).await.expect("batches").remove(0);
    assert_eq!(batch.status.as_str(), "confirmed");

    // Both blocks go and nothing replaces them: the deposit and the payout are unconfirmed.
    let tip = lab.chain.disconnect(2).expect("disconnect");
    let report = lab.bank.onchain_sync().await.expect("sync");
    assert_eq!(report.tip_height, tip.height, "the shorter chain's tip");
    assert_eq!(
        (report.to_review, status(&lab.bank, &outpoint).await),
        (1, DepositStatus::Review)
    );
    assert_eq!(balance(&lab.bank, bob.default_wallet_id).await, 0, "held for review");
    let back = lab.bank.onchain_batch_history(1).await.expect("batches").remove(0);
    assert_eq!((back.status.as_str(), back.confirmed_height), ("broadcast", None));

    // Mined again: credited and confirmed at the new heights.
    lab.bank.dev_chain_mine(2).await.expect("mine");
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Credited);
    assert_eq!(balance(&lab.bank, bob.default_wallet_id).await, 40_000);
    let again = lab.bank.onchain_batch_history(1).await.expect("batches").remove(0);
    assert_eq!(again.status.as_str(), "confirmed");
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_ledger_ok(&lab.bank).await;
}

async fn a_payout_transaction_reorganised_out_is_followed_until_it_confirms_again(backend: Backend) {
    let lab = lab(backend).await;
    let alice = one_payout(&lab, Speed::Fast).await;
    lab.bank.onchain_payout_pass(false).await.expect("pass");
    lab.bank.dev_chain_mine(1).await.expect("mine");
    let first_height = i64::from(lab.chain.height());
    let batch = |lab: &Lab| {
        let bank = lab.bank.clone();
        async move { bank.onchain_batch_history(1).await.expect("batches").remove(0) }
    };
    let confirmed = batch(&lab).await;
    assert_eq!(
        (confirmed.status.as_str(), confirmed.confirmed_height),
        ("confirmed", Some(first_height))
    );
    let status_line = |lab: &Lab| {
        let bank = lab.bank.clone();
        let wallet = alice.default_wallet_id;
        let account = alice.id;
        async move {
            let page = bank
                .history(account, Some(&[wallet]), &HistoryPageRequest::default())
                .await
                .expect("history");
            page.items[0].transaction.status
        }
    };
    assert_eq!(status_line(&lab).await, TxStatus::Success);

    // The block goes; the transaction is back in the mempool.
    lab.bank.dev_chain_reorg(1, false).await.expect("reorg");
    let back = batch(&lab).await;
    assert_eq!((back.status.as_str(), back.confirmed_height), ("broadcast", None));
    assert_eq!(status_line(&lab).await, TxStatus::Pending, "unconfirmed again");

    lab.bank.dev_chain_mine(1).await.expect("mine");
    let again = batch(&lab).await;
    assert_eq!(
        (again.status.as_str(), again.confirmed_height),
        ("confirmed", Some(i64::from(lab.chain.height())))
    );
    assert_ne!(again.confirmed_height, Some(first_height));
    assert_eq!(status_line(&lab).await, TxStatus::Success);
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_ledger_ok(&lab.bank).await;
}

/// A confirmed payout transaction whose block is reorganised away and that no mempool kept
/// (evicted, a node restarted without its mempool) is broadcast again by the watcher's next
/// pass and confirms, without a fee bump: the hot wallet keeps its own spends as unconfirmed
/// (their coins stay spent), so "the wallet no longer lists it" cannot be how the bank learns
/// the network lost it.
async fn a_payout_transaction_no_mempool_kept_is_broadcast_again(backend: Backend) {
    let lab = lab_with(
        backend,
        BankConfig {
            onchain: OnchainConfig {
                confirmations: 2,
                rbf_after_blocks: 0,
                ..OnchainConfig::default()
            },
            ..config(2)
        },
    )
    .await;
    one_payout(&lab, Speed::Fast).await;
    lab.bank.onchain_payout_pass(false).await.expect("pass");
    lab.bank.dev_chain_mine(1).await.expect("mine");
    let batch = lab.bank.onchain_batch_history(1).await.expect("batches").remove(0);
    assert_eq!(batch.status, BatchStatus::Confirmed);
    let txid: bitcoin::Txid = batch.batch.txid.parse().expect("txid");

    // The block goes and its transactions with it: the network no longer has the payout.
    lab.bank.dev_chain_reorg(1, true).await.expect("reorg");
    assert_eq!(
        lab.chain.mempool(),
        vec![txid],
        "the watcher's pass broadcast the payout transaction again"
    );
    lab.bank.dev_chain_mine(1).await.expect("mine");
    let again = lab.bank.onchain_batch_history(1).await.expect("batches").remove(0);
    assert_eq!(
        (again.status, again.confirmed_height),
        (BatchStatus::Confirmed, Some(i64::from(lab.chain.height())))
    );
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_ledger_ok(&lab.bank).await;
}

async fn withdrawals_to_flash_addresses_stay_inside(backend: Backend) {
    let lab = lab(backend).await;
    let alice = funded(&lab.bank, 40_000).await;
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
    let alice = funded(&lab.bank, 20_000).await;
    // The hot wallet's change address is the bank's, not a user's.
    let change = lab.wallet.internal_address().await.expect("change address");
    let cases: Vec<(OnchainSend, &str)> = vec![
        (send(&alice, &change, Some(10_000), Speed::Medium), "INVALID_ADDRESS"),
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
        assert_eq!(err.code().as_str(), code, "{req:?}: {err}");
    }
    let mut stranger = send(&alice, &outside(1), Some(10_000), Speed::Medium);
    stranger.wallet_id = member(&lab.bank).await.default_wallet_id;
    let err = lab.bank.onchain_send(stranger).await.expect_err("not hers");
    assert_eq!(err.code().as_str(), "WALLET_NOT_FOUND");
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
    let alice = one_payout(&lab, Speed::Medium).await;
    lab.wallet.hooks.set(Broadcasts::Unreachable);
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
    lab.wallet.hooks.set(Broadcasts::Relay);
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

/// Queues one 20,000-sat payout from a funded member and records its batch while the chain
/// backend cannot be reached: the batch is signed and recorded, its broadcast's outcome unknown.
async fn unanswered_batch(lab: &Lab) -> (AccountRecord, flash_store::BatchRecord) {
    fund_hot_wallet(lab, 500_000).await;
    let alice = funded(&lab.bank, 50_000).await;
    lab.bank
        .onchain_send(send(&alice, &outside(1), Some(20_000), Speed::Medium))
        .await
        .expect("queued");
    lab.wallet.hooks.set(Broadcasts::Unreachable);
    lab.bank.onchain_payout_pass(true).await.expect("pass");
    let mut signed = lab
        .store
        .onchain_batches(BatchStatus::Signed, 10)
        .await
        .expect("batches");
    assert_eq!(signed.len(), 1, "recorded, not known to be out");
    (alice, signed.remove(0))
}

async fn a_refusal_after_an_unanswered_broadcast_pays_nobody_twice(backend: Backend) {
    let lab = lab(backend).await;
    let (alice, batch) = unanswered_batch(&lab).await;
    let held = balance(&lab.bank, alice.default_wallet_id).await;
    // The earlier attempt may have gone out; a refusal now (say "missing inputs" from a node
    // that mined it and saw its outputs spent) must not put the payout back in the queue.
    lab.wallet.hooks.set(Broadcasts::Refuse);
    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!(
        (report.refused, report.broadcast, report.settled),
        (0, 0, 0),
        "{report:?}"
    );
    let still = lab
        .store
        .onchain_batch(&batch.batch.id)
        .await
        .expect("read")
        .expect("batch");
    assert_eq!(still.status, BatchStatus::Signed, "kept for the operator");
    assert!(
        lab.bank.onchain_payout_queue(10).await.expect("queue").is_empty(),
        "not requeued"
    );
    assert_eq!(
        lab.store
            .onchain_batches(BatchStatus::Signed, 10)
            .await
            .expect("batches")
            .len(),
        1,
        "no second transaction"
    );
    assert_eq!(
        balance(&lab.bank, alice.default_wallet_id).await,
        held,
        "still held once"
    );
    // When the network takes it, it settles as usual.
    lab.wallet.hooks.set(Broadcasts::Relay);
    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!((report.broadcast, report.settled), (1, 1));
    assert_eq!(
        lab.chain.mempool(),
        vec![batch.batch.txid.parse::<Txid>().expect("txid")]
    );
    assert_ledger_ok(&lab.bank).await;
}

async fn holds_a_crash_left_unsettled_settle_when_the_batch_confirms(backend: Backend) {
    let lab = lab(backend).await;
    let (alice, batch) = unanswered_batch(&lab).await;
    // As if flashd died right after the network took it and it was marked broadcast, before
    // the holds settled; then a block confirms it before the batcher's next pass.
    let tx: bitcoin::Transaction =
        bitcoin::consensus::encode::deserialize_hex(&batch.batch.tx_hex).expect("recorded transaction");
    lab.chain.broadcast(&tx).await.expect("relayed");
    let tip = lab.store.onchain_cursor().await.expect("cursor");
    assert!(lab
        .store
        .onchain_batch_broadcast(&batch.batch.id, tip)
        .await
        .expect("mark"));
    lab.wallet.hooks.set(Broadcasts::Relay);
    lab.bank.dev_chain_mine(1).await.expect("mine");
    let done = lab
        .store
        .onchain_batch(&batch.batch.id)
        .await
        .expect("read")
        .expect("batch");
    assert_eq!(done.status, BatchStatus::Confirmed);
    let payouts = lab.store.onchain_batch_payouts(&batch.batch.id).await.expect("payouts");
    assert_eq!(payouts[0].status, PayoutStatus::Sent, "settled at confirmation");
    assert_eq!(
        balance(&lab.bank, alice.default_wallet_id).await,
        50_000 - 20_000 - batch.batch.fee_sat,
        "charged the amount and the one payout's fee, the rest of the reserve returned"
    );
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_ledger_ok(&lab.bank).await;
}

async fn one_node_spends_and_another_takes_over_when_its_lease_expires(backend: Backend) {
    let lab = lab(backend).await;
    // Two confirmed coins: the second node must pick the one the first did not spend.
    fund_hot_wallet(&lab, 500_000).await;
    fund_hot_wallet(&lab, 500_000).await;
    let alice = funded(&lab.bank, 50_000).await;
    // The lab's bank (node "test-node") holds the lease once it spends.
    lab.bank.onchain_payout_pass(true).await.expect("the first node leads");
    // A second node on the same database, with its own copy of the wallet.
    let other_config = BankConfig {
        node_name: "other-node".into(),
        ..config(2)
    };
    let other_wallet = hot_wallet(&lab.store, lab.chain.clone()).await;
    let other = Bank::new(lab.store.clone(), other_config).with_onchain(other_wallet.clone(), Some(lab.chain.clone()));
    lab.bank
        .onchain_send(send(&alice, &outside(1), Some(20_000), Speed::Medium))
        .await
        .expect("queued (any node takes sends)");
    let refused = other.onchain_payout_pass(true).await;
    assert!(
        matches!(&refused, Err(BankError::OnchainUnavailable(m)) if m.contains(NODE)),
        "names the node that spends: {refused:?}"
    );
    assert_eq!(
        lab.bank.onchain_payout_queue(10).await.expect("queue").len(),
        1,
        "untouched"
    );
    // The first node batches; its lease is then left to expire (flashd stopped).
    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!(report.broadcast, 1);
    lab.store
        .db()
        .script_exact(vec![("UPDATE worker_leases SET expires_at = 0".into(), vec![])], 1)
        .await
        .expect("expire the lease");
    // The second node takes over, reloads the wallet, and does not spend those coins again.
    lab.bank
        .onchain_send(send(&alice, &outside(2), Some(10_000), Speed::Medium))
        .await
        .expect("queued");
    let report = other.onchain_payout_pass(true).await.expect("the second node leads");
    assert_eq!(report.broadcast, 1);
    assert_eq!(
        lab.chain.mempool().len(),
        2,
        "two transactions, neither replacing the other"
    );
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert!(lab.chain.mempool().is_empty(), "both mined: they spend different coins");
    let stale = lab.bank.onchain_payout_pass(true).await;
    assert!(matches!(stale, Err(BankError::OnchainUnavailable(_))), "{stale:?}");
    assert_ledger_ok(&lab.bank).await;
}

async fn a_refused_batch_returns_its_payouts_to_the_queue(backend: Backend) {
    let lab = lab(backend).await;
    one_payout(&lab, Speed::Medium).await;
    lab.wallet.hooks.set(Broadcasts::Refuse);
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
    lab.wallet.hooks.set(Broadcasts::Relay);
    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!(
        (report.broadcast, report.settled),
        (1, 1),
        "the coins were freed for a new batch"
    );
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
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
    let alice = one_payout(&lab, Speed::Medium).await;
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
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_ledger_ok(&lab.bank).await;
}

async fn an_underfunded_hot_wallet_keeps_payouts_queued(backend: Backend) {
    let lab = lab(backend).await;
    let alice = funded(&lab.bank, 50_000).await;
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

/// Issue 14 (found by the simulation): the process died between signing a payout
/// transaction and recording it. Nobody will broadcast it, so the next pass gives its coins
/// back instead of reporting an empty wallet forever.
async fn coins_of_a_transaction_signed_but_never_recorded_come_back(backend: Backend) {
    let lab = lab(backend).await;
    fund_hot_wallet(&lab, 100_000).await;
    let alice = funded(&lab.bank, 50_000).await;
    lab.bank
        .onchain_send(send(&alice, &outside(1), Some(20_000), Speed::Medium))
        .await
        .expect("queued");
    // What the dead process left: the wallet's only coin in a transaction no row names.
    let orphan = lab
        .wallet
        .build_payout(
            &[PayoutOutput {
                address: outside(2),
                amount: Sats::positive(60_000).expect("sats"),
            }],
            2_000,
        )
        .await
        .expect("signed");
    assert_eq!(
        lab.wallet.unconfirmed_spends().await.expect("spends"),
        vec![orphan.txid]
    );

    let report = lab.bank.onchain_payout_pass(true).await.expect("pass");
    assert_eq!((report.broadcast, report.settled), (1, 1), "{report:?}");
    let mempool = lab.chain.mempool();
    assert_eq!(mempool.len(), 1, "only the recorded payout goes out");
    assert_ne!(mempool[0], orphan.txid);
    assert!(lab.bank.onchain_payout_queue(10).await.expect("queue").is_empty());
    // The recorded payout's own transaction is kept.
    assert_eq!(lab.wallet.unconfirmed_spends().await.expect("spends"), mempool);
    lab.bank.dev_chain_mine(1).await.expect("mine");
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_ledger_ok(&lab.bank).await;
}

// ---------------------------------------------------------------------------------------------
// Cold storage
// ---------------------------------------------------------------------------------------------

async fn excess_goes_to_cold_storage_and_comes_back_with_two_of_three_signatures(backend: Backend) {
    let lab = lab(backend).await;
    let (bank, cosigners, descriptor) = with_cold_storage(&lab.bank, lab.chain.clone(), &lab.store).await;
    assert!(descriptor.starts_with("wsh(sortedmulti(2,"), "{descriptor}");

    // Within policy: nothing moves.
    fund_hot_wallet(&lab, 250_000).await;
    assert_no_sweep(&bank, "within policy").await;
    // Above the ceiling: all but the floor goes to cold.
    fund_hot_wallet(&lab, 750_000).await;
    let sweep = bank.cold_sweep_check().await.expect("check").expect("a sweep");
    assert_eq!(lab.chain.mempool().len(), 1);
    bank.dev_chain_mine(1).await.expect("mine");
    assert_cold_balance(&bank, 900_000).await;
    let record = lab.store.onchain_sweep(&sweep).await.expect("read").expect("sweep");
    assert_eq!(
        (record.status.as_str(), record.confirmed_height),
        ("confirmed", Some(i64::from(lab.chain.height()))),
        "the watcher saw the block confirm it"
    );
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    assert_no_sweep(&bank, "back within policy").await;
    // Cold storage's addresses are the bank's: no user pays into them.
    let bob = funded(&bank, 20_000).await;
    let to_cold = bank
        .onchain_send(send(&bob, &record.address, Some(10_000), Speed::Medium))
        .await
        .expect_err("refused");
    assert_eq!(to_cold.code().as_str(), "INVALID_ADDRESS", "{to_cold}");
    assert_eq!(balance(&bank, bob.default_wallet_id).await, 20_000, "nothing held");

    // A PSBT abandoned: signatures made for it are of no use afterwards.
    let abandoned = bank.cold_psbt_create(150_000).await.expect("a psbt");
    let foreign = sign(&cosigners[0], &abandoned.psbt);
    let second = bank.cold_psbt_create(200_000).await;
    assert!(
        matches!(&second, Err(BankError::InvalidInput(m)) if m.contains("awaits its signatures")),
        "one at a time, or two could spend the same coins: {second:?}"
    );
    bank.cold_psbt_cancel(&abandoned.id).await.expect("cancel");
    let cancelled = bank.cold_sweep(&abandoned.id).await.expect("read").expect("sweep");
    assert_eq!(cancelled.status, "failed");
    let again = bank.cold_psbt_cancel(&abandoned.id).await;
    assert!(matches!(again, Err(BankError::InvalidInput(_))), "{again:?}");
    let late = bank
        .cold_psbt_finalize(&abandoned.id, &[foreign.clone(), sign(&cosigners[1], &abandoned.psbt)])
        .await;
    assert!(matches!(late, Err(BankError::InvalidInput(_))), "{late:?}");

    // Cold → hot: a PSBT, one signature is not enough, two are.
    let psbt = bank.cold_psbt_create(200_000).await.expect("psbt");
    // Malformed or foreign PSBTs are refused and change nothing.
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
    let txid = finalize_two_of_three(&bank, &cosigners, &psbt.id, &psbt.psbt).await;
    assert_eq!(lab.chain.mempool(), vec![txid.parse::<Txid>().expect("txid")]);
    let back = lab.store.onchain_sweep(&psbt.id).await.expect("read").expect("sweep");
    assert_eq!(back.status, "broadcast");
    // A node without the cold wallet configured cannot follow the sweep back, but its watcher
    // pass still runs: one sweep it cannot follow does not stop deposits and payouts.
    let carol = member(&lab.bank).await;
    let outpoint = deposit(&lab, &carol, 30_000).await;
    let sweep_block = lab.chain.height() + 1;
    lab.bank
        .dev_chain_mine(2)
        .await
        .expect("the pass runs without the cold wallet");
    assert_eq!(status(&lab.bank, &outpoint).await, DepositStatus::Credited);
    assert_eq!(
        lab.store
            .onchain_sweep(&psbt.id)
            .await
            .expect("read")
            .expect("sweep")
            .status,
        "broadcast"
    );
    bank.dev_chain_mine(1).await.expect("mine");
    let back = lab.store.onchain_sweep(&psbt.id).await.expect("read").expect("sweep");
    assert_eq!(
        (back.status.as_str(), back.confirmed_height),
        ("confirmed", Some(i64::from(sweep_block))),
        "the node with the cold wallet followed it on its next pass"
    );
    assert_cold_balance(&bank, 900_000 - 200_000 - psbt.fee.get()).await;
    assert_hot_account_matches_chain(&lab.bank, &*lab.wallet).await;
    // The coins came back to the bank's own (change) address: nobody was credited a deposit.
    assert_eq!(
        receive_journals(&bank).await,
        3,
        "the two funding deposits and carol's only"
    );
    assert_ledger_ok(&bank).await;
}
