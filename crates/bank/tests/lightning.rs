//! Behaviour of the bank's Lightning rail against the `dev` simulator: receiving (invoices,
//! settlements, the settlement loop), paying Flash invoices intraledger, paying other nodes'
//! invoices (success, failure, slow and hanging payments, reconciliation), refusals, and
//! concurrency. Every test runs on SQLite and on PostgreSQL.
//!
//! The bank's node is a `DevNode`; a second `DevNode` (another key) plays another node on the
//! network, issuing the external invoices the bank pays.

mod support;

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use flash_bank::{
    Bank, BankConfig, BankError, Direction, HistoryPageRequest, Identity, InvoiceCreate, InvoiceFor, InvoiceStatus,
    LightningConfig, LnInvoice, LnPayOutcome, LnPayRequest, PaymentStatus, ReconcileReport, Transaction, TxStatus,
    WalletChange, WalletEvent,
};
use flash_core::lightning::{
    ChannelInfo, DevOutcome, FeeEstimateRequest, Hash32, Invoice, InvoiceDescription, InvoiceRequest, LightningError,
    LightningNode, NodeInfo, OpenChannelRequest, PayRequest, PaymentHash, PaymentState, SettledInvoice,
    SimulatorControls,
};
use flash_core::ports::BoxFuture;
use flash_core::{
    AccountId, AccountStatus, JournalId, JournalKind, LimitKind, LimitPolicy, Network, Phone, SystemAccount, WalletId,
};
use flash_lightning::DevNode;
use flash_store::testing::{fresh_store, Backend};
use flash_store::{AccountRecord, LnPaymentStatus, Value};
use support::system_balance;
use tokio::sync::broadcast;

flash_store::on_both_backends!(
    receiving_credits_the_wallet_exactly_once,
    invoice_lookup_reports_the_invoice_as_created,
    no_amount_invoice_is_credited_what_arrived,
    invoice_expiry_memo_and_amount_are_validated,
    invoices_for_other_wallets_and_locked_accounts,
    dev_controls_need_a_simulator_off_mainnet,
    settlement_loop_credits_node_settlements_once_across_restarts,
    paying_a_flash_invoice_settles_intraledger,
    external_payment_is_charged_amount_and_actual_fee,
    failed_external_payment_is_refunded_in_full,
    failed_payment_may_be_tried_again,
    slow_payments_stay_pending_until_reconciled,
    hanging_payment_stays_pending_through_reconciliation,
    fee_probe_is_zero_inside_and_the_estimate_outside,
    refused_payments_change_nothing,
    concurrent_payers_of_one_invoice_pay_it_once,
    concurrent_retries_with_one_key_hold_once,
    reconciliation_refunds_a_payment_the_node_never_received,
    invoices_beyond_inbound_capacity_use_a_just_in_time_channel,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// Limits at 1,000 sats per dollar (level 0: 125,000 sats a day; level 1: 1,000,000 out), and
/// Lightning timings short enough for tests: a send waits 1 s, reconciliation has no grace.
fn config() -> BankConfig {
    BankConfig {
        network: Network::Regtest,
        limits: LimitPolicy {
            reference_sats_per_usd: 1_000,
            ..Default::default()
        },
        lightning: LightningConfig {
            reconcile_grace_secs: 0,
            pay_timeout_secs: 1,
            ..Default::default()
        },
        ..Default::default()
    }
}

fn dev_node(network: Network) -> Arc<DevNode> {
    Arc::new(DevNode::new(network, DevNode::generate_key(), succeed(0)).expect("dev node"))
}

fn succeed(fee_ppm: u64) -> DevOutcome {
    DevOutcome::Succeed { delay_ms: 0, fee_ppm }
}

/// A bank with its own simulated node, and another node on the same (regtest) network.
struct Lab {
    bank: Bank,
    node: Arc<DevNode>,
    outside: Arc<DevNode>,
}

async fn lab(backend: Backend) -> Lab {
    lab_with(backend, config()).await
}

async fn lab_with(backend: Backend, config: BankConfig) -> Lab {
    let node = dev_node(Network::Regtest);
    let bank = Bank::new(fresh_store(backend).await, config).with_lightning(node.clone(), Some(node.clone()));
    Lab {
        bank,
        node,
        outside: dev_node(Network::Regtest),
    }
}

static NEXT_NUMBER: AtomicU64 = AtomicU64::new(1);

fn unique_phone() -> Phone {
    let n = NEXT_NUMBER.fetch_add(1, Ordering::Relaxed);
    Phone::parse(&format!("+1556{n:07}")).expect("valid phone")
}

/// A signed-up user's account and its one wallet.
#[derive(Clone, Debug)]
struct Member {
    account: AccountRecord,
}

impl Member {
    fn id(&self) -> AccountId {
        self.account.id
    }
    fn wallet(&self) -> WalletId {
        self.account.default_wallet_id
    }
}

async fn sign_up(bank: &Bank, identity: Identity) -> Member {
    let (_, account) = bank.user_for_identity(&identity).await.expect("sign up");
    Member { account }
}

/// A phone user (level One: 1,000,000 sats of withdrawals a day).
async fn member(bank: &Bank) -> Member {
    sign_up(bank, Identity::Phone(unique_phone())).await
}

async fn fund(bank: &Bank, m: &Member, amount: i64) {
    bank.wallet_fund("test", m.wallet(), amount, None)
        .await
        .expect("faucet");
}

async fn balance(bank: &Bank, m: &Member) -> i64 {
    bank.store_for_tests()
        .wallet_balance(m.wallet())
        .await
        .expect("balance")
}

async fn pending_balance(bank: &Bank) -> i64 {
    system_balance(bank, SystemAccount::LightningPending).await
}

async fn history(bank: &Bank, m: &Member) -> Vec<Transaction> {
    let page = HistoryPageRequest {
        first: Some(100),
        ..Default::default()
    };
    let all = bank.history(m.id(), None, &page).await.expect("history");
    assert!(!all.has_next_page, "test histories fit one page");
    all.items.into_iter().map(|p| p.transaction).collect()
}

/// The rail's reference stored on a journal, as the wallet's history item carries it.
async fn reference(bank: &Bank, wallet: WalletId, journal: JournalId) -> Option<String> {
    bank.store_for_tests()
        .history_item(&wallet.into(), journal)
        .await
        .expect("history item")
        .expect("the wallet has a line for the journal")
        .reference
}

async fn count(bank: &Bank, sql: &str, params: Vec<Value>) -> i64 {
    let rows = bank.store_for_tests().db().query(sql, params).await.expect("count");
    rows.first().expect("one row").int(0).expect("count")
}

async fn ln_payment_rows(bank: &Bank) -> i64 {
    count(bank, "SELECT COUNT(*) FROM ln_payments", vec![]).await
}

async fn holds(bank: &Bank) -> i64 {
    count(bank, "SELECT COUNT(*) FROM holds", vec![]).await
}

async fn journals_of_kind(bank: &Bank, kind: JournalKind) -> i64 {
    count(
        bank,
        "SELECT COUNT(*) FROM journals WHERE kind = $1",
        vec![kind.as_str().into()],
    )
    .await
}

/// `(status, fee_sat, failure)` of every payment of `hash`, oldest first.
async fn payments_of(bank: &Bank, hash: Hash32) -> Vec<(String, Option<i64>, Option<String>)> {
    bank.store_for_tests()
        .db()
        .query(
            "SELECT status, fee_sat, failure FROM ln_payments WHERE payment_hash = $1 ORDER BY created_at, id",
            vec![hash.to_string().into()],
        )
        .await
        .expect("payments")
        .iter()
        .map(|r| {
            (
                r.text(0).expect("status"),
                r.opt_int(1).expect("fee"),
                r.opt_text(2).expect("failure"),
            )
        })
        .collect()
}

async fn withdrawal_remaining(bank: &Bank, m: &Member) -> i64 {
    let account = bank.account(m.id()).await.expect("account");
    bank.limits(&account)
        .await
        .expect("limits")
        .into_iter()
        .find(|l| l.kind == LimitKind::Withdrawal)
        .expect("withdrawal limit listed")
        .remaining_sats
}

async fn assert_verified(bank: &Bank) {
    let report = bank.verify_ledger().await.expect("verify");
    assert!(report.ok(), "ledger problems: {:?}", report.problems);
    assert!(
        report.totals.iter().all(|(_, total)| *total == 0),
        "totals: {:?}",
        report.totals
    );
}

fn refused<T: Debug>(result: Result<T, BankError>) -> BankError {
    result.expect_err("the bank must refuse this request")
}

fn events(rx: &mut broadcast::Receiver<WalletEvent>) -> Vec<WalletEvent> {
    let mut out = Vec::new();
    while let Ok(e) = rx.try_recv() {
        out.push(e);
    }
    out
}

fn invoice_for(m: &Member, amount: Option<i64>) -> InvoiceCreate {
    InvoiceCreate {
        wallet_id: m.wallet(),
        amount,
        memo: None,
        description_hash: None,
        expires_in_mins: None,
    }
}

async fn create_invoice(bank: &Bank, m: &Member, amount: Option<i64>) -> LnInvoice {
    bank.ln_invoice_create(InvoiceFor::Owner(m.id()), invoice_for(m, amount))
        .await
        .expect("invoice")
}

fn pay(m: &Member, payment_request: &str, amount: Option<i64>) -> LnPayRequest {
    LnPayRequest {
        account: m.id(),
        wallet_id: m.wallet(),
        payment_request: payment_request.to_string(),
        amount,
        memo: None,
        idempotency_key: None,
    }
}

/// An invoice of another node on the network.
async fn external_invoice(node: &DevNode, amount_sat: Option<u64>, expiry_secs: u64) -> Invoice {
    node.create_invoice(InvoiceRequest {
        amount_msat: amount_sat.map(|s| s * 1_000),
        description: InvoiceDescription::Memo("elsewhere".into()),
        expiry_secs,
    })
    .await
    .expect("external invoice")
}

fn transaction(outcome: &LnPayOutcome) -> &Transaction {
    outcome
        .transaction
        .as_ref()
        .expect("the outcome carries the payer's transaction")
}

/// Fee cap with the default settings: 50 bps of the amount (rounded up), at least 10 sats.
fn fee_cap(amount: i64) -> i64 {
    ((amount * 50 + 9_999) / 10_000).max(10)
}

/// Polls `check` until it holds, for at most 10 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything a refused payment must leave untouched.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    balances: Vec<i64>,
    histories: Vec<Vec<Transaction>>,
    withdrawal_remaining: Vec<i64>,
    pending: i64,
    holds: i64,
    ln_payments: i64,
    journals: i64,
}

async fn observe(bank: &Bank, members: &[&Member]) -> Observed {
    let mut o = Observed {
        balances: Vec::new(),
        histories: Vec::new(),
        withdrawal_remaining: Vec::new(),
        pending: pending_balance(bank).await,
        holds: holds(bank).await,
        ln_payments: ln_payment_rows(bank).await,
        journals: count(bank, "SELECT COUNT(*) FROM journals", vec![]).await,
    };
    for m in members {
        o.balances.push(balance(bank, m).await);
        o.histories.push(history(bank, m).await);
        o.withdrawal_remaining.push(withdrawal_remaining(bank, m).await);
    }
    o
}

/// A node that loses every payment: `pay` fails as if the connection dropped before the node
/// got the request, and the node never heard of it afterwards. Everything else is the DevNode.
struct LosesPayments(Arc<DevNode>);

impl LightningNode for LosesPayments {
    fn create_invoice(&self, req: InvoiceRequest) -> BoxFuture<'_, Result<Invoice, LightningError>> {
        self.0.create_invoice(req)
    }
    fn decode_invoice<'a>(&'a self, payment_request: &'a str) -> BoxFuture<'a, Result<Invoice, LightningError>> {
        self.0.decode_invoice(payment_request)
    }
    fn cancel_invoice(&self, hash: PaymentHash) -> BoxFuture<'_, Result<(), LightningError>> {
        self.0.cancel_invoice(hash)
    }
    fn estimate_fee(&self, req: FeeEstimateRequest) -> BoxFuture<'_, Result<u64, LightningError>> {
        self.0.estimate_fee(req)
    }
    fn pay(&self, _req: PayRequest) -> BoxFuture<'_, Result<PaymentState, LightningError>> {
        Box::pin(async { Err(LightningError::Unavailable("connection reset".into())) })
    }
    fn track_payment(&self, _hash: PaymentHash) -> BoxFuture<'_, Result<PaymentState, LightningError>> {
        Box::pin(async { Err(LightningError::NotFound) })
    }
    fn wait_settled(&self, after_index: u64) -> BoxFuture<'_, Result<SettledInvoice, LightningError>> {
        self.0.wait_settled(after_index)
    }
    fn node_info(&self) -> BoxFuture<'_, Result<NodeInfo, LightningError>> {
        self.0.node_info()
    }
    fn channels(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, LightningError>> {
        self.0.channels()
    }
    fn open_channel(&self, req: OpenChannelRequest) -> BoxFuture<'_, Result<String, LightningError>> {
        self.0.open_channel(req)
    }
}

/// A node with an LSP: its just-in-time invoices are the simulator's own, counted.
struct WithLsp(Arc<DevNode>, AtomicU64);

impl LightningNode for WithLsp {
    fn create_invoice(&self, req: InvoiceRequest) -> BoxFuture<'_, Result<Invoice, LightningError>> {
        self.0.create_invoice(req)
    }
    fn create_jit_invoice(&self, req: InvoiceRequest, max_fee: u64) -> BoxFuture<'_, Result<Invoice, LightningError>> {
        assert!(max_fee > 0, "the LSP's fee is capped");
        self.1.fetch_add(1, Ordering::SeqCst);
        self.0.create_invoice(req)
    }
    fn decode_invoice<'a>(&'a self, payment_request: &'a str) -> BoxFuture<'a, Result<Invoice, LightningError>> {
        self.0.decode_invoice(payment_request)
    }
    fn cancel_invoice(&self, hash: PaymentHash) -> BoxFuture<'_, Result<(), LightningError>> {
        self.0.cancel_invoice(hash)
    }
    fn estimate_fee(&self, req: FeeEstimateRequest) -> BoxFuture<'_, Result<u64, LightningError>> {
        self.0.estimate_fee(req)
    }
    fn pay(&self, req: PayRequest) -> BoxFuture<'_, Result<PaymentState, LightningError>> {
        self.0.pay(req)
    }
    fn track_payment(&self, hash: PaymentHash) -> BoxFuture<'_, Result<PaymentState, LightningError>> {
        self.0.track_payment(hash)
    }
    fn wait_settled(&self, after_index: u64) -> BoxFuture<'_, Result<SettledInvoice, LightningError>> {
        self.0.wait_settled(after_index)
    }
    fn node_info(&self) -> BoxFuture<'_, Result<NodeInfo, LightningError>> {
        self.0.node_info()
    }
    fn channels(&self) -> BoxFuture<'_, Result<Vec<ChannelInfo>, LightningError>> {
        self.0.channels()
    }
    fn open_channel(&self, req: OpenChannelRequest) -> BoxFuture<'_, Result<String, LightningError>> {
        self.0.open_channel(req)
    }
}

// ---------------------------------------------------------------------------------------------
// 1. Receiving
// ---------------------------------------------------------------------------------------------

async fn receiving_credits_the_wallet_exactly_once(backend: Backend) {
    let Lab { bank, node, .. } = lab(backend).await;
    let alice = member(&bank).await;
    let mut rx = bank.subscribe();

    let invoice = bank
        .ln_invoice_create(
            InvoiceFor::Owner(alice.id()),
            InvoiceCreate {
                memo: Some("coffee".into()),
                ..invoice_for(&alice, Some(1_000))
            },
        )
        .await
        .expect("invoice");
    assert_eq!(invoice.status, InvoiceStatus::Pending);
    assert_eq!((invoice.amount, invoice.wallet_id), (Some(1_000), alice.wallet()));
    let decoded = node
        .decode_invoice(&invoice.payment_request)
        .await
        .expect("our node decodes its invoice");
    assert_eq!(decoded.payment_hash, invoice.payment_hash);
    assert_eq!(decoded.amount_msat, Some(1_000_000));
    assert_eq!(decoded.description, InvoiceDescription::Memo("coffee".into()));
    assert_eq!(balance(&bank, &alice).await, 0, "issuing an invoice moves no money");
    assert!(events(&mut rx).is_empty());

    bank.dev_ln_pay_from_outside(&invoice.payment_request, None)
        .await
        .expect("paid from outside");
    assert_eq!(balance(&bank, &alice).await, 1_000);
    assert_eq!(system_balance(&bank, SystemAccount::LightningNode).await, -1_000);

    // Paying it again, or the node reporting the same settlement again, credits nothing.
    let err = refused(bank.dev_ln_pay_from_outside(&invoice.payment_request, None).await);
    assert_eq!(err.code().as_str(), "INVOICE_ALREADY_PAID");
    let settled = node.wait_settled(0).await.expect("the node's settlement");
    assert_eq!(settled.payment_hash, invoice.payment_hash);
    assert_eq!((settled.amount_received_msat, settled.settle_index), (1_000_000, 1));
    for _ in 0..3 {
        let credited = bank.ln_credit_settlement(&settled).await.expect("credit again");
        assert!(!credited, "a settlement is credited once");
    }
    assert_eq!(balance(&bank, &alice).await, 1_000);

    let paid = bank
        .ln_invoice_by_request(&invoice.payment_request)
        .await
        .expect("lookup");
    assert_eq!(paid.status, InvoiceStatus::Paid);
    assert_eq!(paid.payment_hash, invoice.payment_hash);
    let record = bank
        .store_for_tests()
        .ln_invoice(&invoice.payment_hash.to_string())
        .await
        .expect("invoice row")
        .expect("recorded");
    assert_eq!(record.paid_sat, Some(1_000));
    assert_eq!(record.invoice.origin, "app");

    let lines = history(&bank, &alice).await;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let line = &lines[0];
    assert_eq!((line.direction, line.amount, line.fee), (Direction::Receive, 1_000, 0));
    assert_eq!((line.kind, line.status), (JournalKind::LnReceive, TxStatus::Success));
    assert_eq!(line.memo.as_deref(), Some("coffee"));
    assert_eq!(line.counterparty_wallet_id, None, "the network is no wallet");
    assert_eq!(
        reference(&bank, alice.wallet(), line.journal_id).await,
        Some(format!("ln:{}", invoice.payment_hash))
    );
    assert_eq!(
        events(&mut rx),
        vec![
            WalletEvent {
                account_id: alice.id(),
                wallet_id: alice.wallet(),
                change: WalletChange::Journal(line.journal_id),
            },
            WalletEvent {
                account_id: alice.id(),
                wallet_id: alice.wallet(),
                change: WalletChange::InvoicePaid {
                    payment_hash: invoice.payment_hash.to_string(),
                },
            },
        ],
        "one journal event for one credit, then the invoice it paid"
    );
    assert_eq!(journals_of_kind(&bank, JournalKind::LnReceive).await, 1);

    // A settlement of an invoice Flash never issued is not credited to anyone.
    let stranger = SettledInvoice {
        payment_hash: Hash32([7; 32]),
        amount_received_msat: 5_000_000,
        settle_index: 99,
    };
    assert!(!bank.ln_credit_settlement(&stranger).await.expect("unknown invoice"));
    assert_eq!(journals_of_kind(&bank, JournalKind::LnReceive).await, 1);
    assert_verified(&bank).await;
}

/// The invoice `ln_invoice_create` returns and the one `ln_invoice_by_request` finds are the
/// same invoice, so they must agree (its creation time included).
async fn invoice_lookup_reports_the_invoice_as_created(backend: Backend) {
    let Lab { bank, .. } = lab(backend).await;
    let alice = member(&bank).await;
    for amount in [Some(1_000), None] {
        let created = create_invoice(&bank, &alice, amount).await;
        let found = bank
            .ln_invoice_by_request(&created.payment_request)
            .await
            .expect("lookup");
        assert_eq!(found, created, "the lookup reports the invoice as created");
        assert_eq!(
            bank.ln_invoice_by_hash(created.payment_hash).await.expect("by hash"),
            created
        );
    }
    let err = refused(bank.ln_invoice_by_hash(Hash32([1; 32])).await);
    assert_eq!(err.code().as_str(), "INVOICE_NOT_FOUND");
}

async fn no_amount_invoice_is_credited_what_arrived(backend: Backend) {
    let Lab { bank, node, .. } = lab(backend).await;
    let alice = member(&bank).await;

    let invoice = create_invoice(&bank, &alice, None).await;
    assert_eq!(invoice.amount, None);
    let decoded = node.decode_invoice(&invoice.payment_request).await.expect("decode");
    assert_eq!(decoded.amount_msat, None);

    // Without an amount, nobody can pay it.
    let err = refused(bank.dev_ln_pay_from_outside(&invoice.payment_request, None).await);
    assert_eq!(err.code().as_str(), "INVALID_INVOICE");
    let err = refused(bank.dev_ln_pay_from_outside(&invoice.payment_request, Some(0)).await);
    assert_eq!(err.code().as_str(), "INVALID_AMOUNT");
    assert_eq!(balance(&bank, &alice).await, 0);

    bank.dev_ln_pay_from_outside(&invoice.payment_request, Some(2_500))
        .await
        .expect("paid with an amount");
    assert_eq!(balance(&bank, &alice).await, 2_500);
    let found = bank.ln_invoice_by_hash(invoice.payment_hash).await.expect("lookup");
    assert_eq!(found.status, InvoiceStatus::Paid);
    assert_eq!(found.amount, None, "the invoice still has no amount of its own");

    // Millisatoshis are rounded down: the bank never owes more than it received.
    let odd = create_invoice(&bank, &alice, None).await;
    let settled = node
        .pay_from_outside(&odd.payment_request, Some(1_999))
        .expect("paid 1,999 msat");
    assert!(bank.ln_credit_settlement(&settled).await.expect("credit"));
    assert_eq!(balance(&bank, &alice).await, 2_501);

    // Less than a satoshi credits nothing (and does not fail).
    let dust = create_invoice(&bank, &alice, None).await;
    let settled = node
        .pay_from_outside(&dust.payment_request, Some(999))
        .expect("paid 999 msat");
    assert!(!bank.ln_credit_settlement(&settled).await.expect("dust"));
    assert_eq!(balance(&bank, &alice).await, 2_501);

    let amounts: Vec<i64> = history(&bank, &alice).await.iter().map(|t| t.amount).collect();
    assert_eq!(amounts, vec![1, 2_500]);
    assert_verified(&bank).await;
}

async fn invoice_expiry_memo_and_amount_are_validated(backend: Backend) {
    let Lab { bank, node, .. } = lab(backend).await;
    let alice = member(&bank).await;
    let minutes = |i: &LnInvoice| (i.expires_at_ms - i.created_at_ms) / 60_000;
    let expiry_secs = |i: LnInvoice| {
        let node = node.clone();
        async move {
            node.decode_invoice(&i.payment_request)
                .await
                .expect("decode")
                .expiry_secs
        }
    };

    // Defaults: 240 minutes with an amount, 120 without.
    let with_amount = create_invoice(&bank, &alice, Some(10)).await;
    assert_eq!(minutes(&with_amount), 240);
    assert_eq!(expiry_secs(with_amount).await, 240 * 60);
    let no_amount = create_invoice(&bank, &alice, None).await;
    assert_eq!(minutes(&no_amount), 120);
    assert_eq!(expiry_secs(no_amount).await, 120 * 60);

    // 1 to 1,440 minutes may be asked for.
    for mins in [1, 1_440] {
        let invoice = bank
            .ln_invoice_create(
                InvoiceFor::Owner(alice.id()),
                InvoiceCreate {
                    expires_in_mins: Some(mins),
                    ..invoice_for(&alice, Some(10))
                },
            )
            .await
            .expect("expiry within bounds");
        assert_eq!(minutes(&invoice), mins);
        assert_eq!(expiry_secs(invoice).await, u64::try_from(mins * 60).expect("positive"));
    }
    let issued = count(&bank, "SELECT COUNT(*) FROM ln_invoices", vec![]).await;
    assert_eq!(issued, 4);

    let attempt = |amount: Option<i64>, memo: Option<String>, mins: Option<i64>| InvoiceCreate {
        memo,
        expires_in_mins: mins,
        ..invoice_for(&alice, amount)
    };
    let cases = vec![
        ("0 minutes", attempt(Some(10), None, Some(0)), "INVALID_EXPIRY"),
        ("1,441 minutes", attempt(Some(10), None, Some(1_441)), "INVALID_EXPIRY"),
        ("negative minutes", attempt(None, None, Some(-5)), "INVALID_EXPIRY"),
        ("zero amount", attempt(Some(0), None, None), "INVALID_AMOUNT"),
        ("negative amount", attempt(Some(-1), None, None), "INVALID_AMOUNT"),
        (
            "640-byte memo",
            attempt(Some(10), Some("m".repeat(640)), None),
            "MEMO_TOO_LONG",
        ),
        (
            "320 two-byte characters",
            attempt(Some(10), Some("é".repeat(320)), None),
            "MEMO_TOO_LONG",
        ),
        (
            "1,001-character memo",
            attempt(Some(10), Some("m".repeat(1_001)), None),
            "MEMO_TOO_LONG",
        ),
    ];
    for (what, request, code) in cases {
        let err = refused(bank.ln_invoice_create(InvoiceFor::Owner(alice.id()), request).await);
        assert_eq!(err.code().as_str(), code, "{what}: {err:?}");
    }
    assert_eq!(
        count(&bank, "SELECT COUNT(*) FROM ln_invoices", vec![]).await,
        issued,
        "refused invoices are not recorded"
    );

    // The longest memo a BOLT11 invoice holds is accepted, and a description hash replaces it.
    let longest = bank
        .ln_invoice_create(
            InvoiceFor::Owner(alice.id()),
            attempt(Some(10), Some("m".repeat(639)), None),
        )
        .await
        .expect("639-byte memo");
    let decoded = node.decode_invoice(&longest.payment_request).await.expect("decode");
    assert_eq!(decoded.description, InvoiceDescription::Memo("m".repeat(639)));
    let hash = Hash32([0x5a; 32]);
    let hashed = bank
        .ln_invoice_create(
            InvoiceFor::Recipient,
            InvoiceCreate {
                description_hash: Some(hash),
                memo: Some("ignored by the invoice".into()),
                ..invoice_for(&alice, Some(21))
            },
        )
        .await
        .expect("description hash");
    let decoded = node.decode_invoice(&hashed.payment_request).await.expect("decode");
    assert_eq!(decoded.description, InvoiceDescription::Hash(hash));
}

async fn invoices_for_other_wallets_and_locked_accounts(backend: Backend) {
    let Lab { bank, .. } = lab(backend).await;
    let alice = member(&bank).await;
    let bob = member(&bank).await;
    fund(&bank, &bob, 10_000).await;

    let err = refused(
        bank.ln_invoice_create(InvoiceFor::Owner(bob.id()), invoice_for(&alice, Some(100)))
            .await,
    );
    assert_eq!(
        err.code().as_str(),
        "WALLET_NOT_FOUND",
        "bob cannot invoice into alice's wallet as hers"
    );
    let ghost = InvoiceCreate {
        wallet_id: WalletId::generate(),
        ..invoice_for(&alice, Some(100))
    };
    let err = refused(bank.ln_invoice_create(InvoiceFor::Recipient, ghost).await);
    assert_eq!(err.code().as_str(), "WALLET_NOT_FOUND");

    // Anyone may ask for an invoice on alice's behalf.
    let on_behalf = bank
        .ln_invoice_create(InvoiceFor::Recipient, invoice_for(&alice, Some(300)))
        .await
        .expect("invoice on behalf of the recipient");
    assert_eq!(on_behalf.wallet_id, alice.wallet());
    let record = bank
        .store_for_tests()
        .ln_invoice(&on_behalf.payment_hash.to_string())
        .await
        .expect("row")
        .expect("recorded");
    assert_eq!(record.invoice.origin, "recipient");
    let paid_by_bob = create_invoice(&bank, &alice, Some(200)).await;

    bank.set_account_status("ops@flash", alice.id(), AccountStatus::Locked, Some("review"))
        .await
        .expect("lock");
    let err = refused(
        bank.ln_invoice_create(InvoiceFor::Owner(alice.id()), invoice_for(&alice, Some(100)))
            .await,
    );
    assert_eq!(err.code().as_str(), "ACCOUNT_NOT_ACTIVE");
    let err = refused(
        bank.ln_invoice_create(InvoiceFor::Recipient, invoice_for(&alice, Some(100)))
            .await,
    );
    assert_eq!(err.code().as_str(), "RECIPIENT_NOT_ACTIVE");
    assert_eq!(count(&bank, "SELECT COUNT(*) FROM ln_invoices", vec![]).await, 2);

    // Money that already arrived over the network is credited even to a locked account …
    bank.dev_ln_pay_from_outside(&on_behalf.payment_request, None)
        .await
        .expect("paid from outside after the lock");
    assert_eq!(balance(&bank, &alice).await, 300);
    // … but a Flash user cannot pay a locked account.
    let err = refused(bank.ln_pay(pay(&bob, &paid_by_bob.payment_request, None)).await);
    assert_eq!(err.code().as_str(), "RECIPIENT_NOT_ACTIVE");
    assert_eq!(
        (balance(&bank, &alice).await, balance(&bank, &bob).await),
        (300, 10_000)
    );
    let still = bank.ln_invoice_by_hash(paid_by_bob.payment_hash).await.expect("lookup");
    assert_eq!(still.status, InvoiceStatus::Pending);
    assert_verified(&bank).await;
}

async fn dev_controls_need_a_simulator_off_mainnet(backend: Backend) {
    let Lab { bank, node, .. } = lab(backend).await;
    let alice = member(&bank).await;
    let invoice = create_invoice(&bank, &alice, Some(100)).await;

    let mainnet = Bank::new(
        bank.store_for_tests().clone(),
        BankConfig {
            network: Network::Mainnet,
            ..config()
        },
    )
    .with_lightning(node.clone(), Some(node.clone()));
    let err = refused(mainnet.dev_ln_pay_from_outside(&invoice.payment_request, None).await);
    assert_eq!(err.code().as_str(), "NOT_AVAILABLE_ON_MAINNET");
    let err = refused(mainnet.dev_ln_set_outcome(DevOutcome::Hang));
    assert_eq!(err.code().as_str(), "NOT_AVAILABLE_ON_MAINNET");

    let no_simulator = Bank::new(bank.store_for_tests().clone(), config()).with_lightning(node.clone(), None);
    let err = refused(
        no_simulator
            .dev_ln_pay_from_outside(&invoice.payment_request, None)
            .await,
    );
    assert_eq!(err.code().as_str(), "LIGHTNING_UNAVAILABLE");

    let no_node = Bank::new(bank.store_for_tests().clone(), config());
    let err = refused(create_invoice_result(&no_node, &alice).await);
    assert_eq!(err.code().as_str(), "LIGHTNING_UNAVAILABLE");
    assert!(no_node.lightning_node().is_none());

    assert_eq!(balance(&bank, &alice).await, 0);
    let pending = bank.ln_invoice_by_hash(invoice.payment_hash).await.expect("lookup");
    assert_eq!(pending.status, InvoiceStatus::Pending);
}

async fn create_invoice_result(bank: &Bank, m: &Member) -> Result<LnInvoice, BankError> {
    bank.ln_invoice_create(InvoiceFor::Owner(m.id()), invoice_for(m, Some(100)))
        .await
}

// ---------------------------------------------------------------------------------------------
// 2. The settlement loop
// ---------------------------------------------------------------------------------------------

/// Runs `run_ln_settlements` in a task until the returned sender fires.
fn start_settlement_loop(bank: &Bank) -> (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>) {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bank = bank.clone();
    let task = tokio::spawn(async move {
        bank.run_ln_settlements(async {
            let _ = stopped.await;
        })
        .await
    });
    (stop, task)
}

async fn stop_settlement_loop(loop_: (tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<()>)) {
    let (stop, task) = loop_;
    stop.send(()).expect("the loop is still running");
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the loop stops when told")
        .expect("the loop task did not panic");
}

async fn settlement_loop_credits_node_settlements_once_across_restarts(backend: Backend) {
    let Lab { bank, node, .. } = lab(backend).await;
    let alice = member(&bank).await;
    let pubkey = node.node_info().await.expect("node info").pubkey;
    let (b, a, key) = (&bank, &alice, pubkey.as_str());
    let cursor = move || async move { b.store_for_tests().ln_settle_cursor(key).await.expect("cursor") };
    let first = create_invoice(&bank, &alice, Some(100)).await;
    let second = create_invoice(&bank, &alice, Some(200)).await;
    assert_eq!(cursor().await, 0);

    let running = start_settlement_loop(&bank);
    node.pay_from_outside(&first.payment_request, None)
        .expect("paid on the node, not through the bank");
    eventually("the loop to credit the first settlement", move || async move {
        balance(b, a).await == 100
    })
    .await;
    eventually("the cursor to pass the first settlement", move || async move {
        cursor().await == 1
    })
    .await;
    stop_settlement_loop(running).await;

    // Settled while the loop is down: nothing credits it …
    node.pay_from_outside(&second.payment_request, None)
        .expect("paid while the loop is stopped");
    // … and a settlement of an invoice Flash never recorded is skipped, not retried forever.
    let foreign = node
        .create_invoice(InvoiceRequest {
            amount_msat: Some(50_000),
            description: InvoiceDescription::Memo("not through the bank".into()),
            expiry_secs: 600,
        })
        .await
        .expect("node-only invoice");
    node.pay_from_outside(&foreign.payment_request, None).expect("paid");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(balance(&bank, &alice).await, 100);
    assert_eq!(cursor().await, 1);

    // … until the loop runs again: it catches up from its cursor.
    let running = start_settlement_loop(&bank);
    eventually(
        "the restarted loop to catch up",
        move || async move { cursor().await == 3 },
    )
    .await;
    assert_eq!(balance(&bank, &alice).await, 300);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop_settlement_loop(running).await;

    // A third run finds nothing new.
    let running = start_settlement_loop(&bank);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop_settlement_loop(running).await;
    assert_eq!(balance(&bank, &alice).await, 300, "nothing is credited twice");
    assert_eq!(cursor().await, 3);
    let lines = history(&bank, &alice).await;
    let receipts: Vec<(JournalKind, i64)> = lines.iter().map(|t| (t.kind, t.amount)).collect();
    assert_eq!(
        receipts,
        vec![(JournalKind::LnReceive, 200), (JournalKind::LnReceive, 100)]
    );
    for invoice in [&first, &second] {
        let found = bank.ln_invoice_by_hash(invoice.payment_hash).await.expect("lookup");
        assert_eq!(found.status, InvoiceStatus::Paid);
    }
    assert_eq!(system_balance(&bank, SystemAccount::LightningNode).await, -300);
    assert_verified(&bank).await;
}

// ---------------------------------------------------------------------------------------------
// 3. Paying a Flash invoice
// ---------------------------------------------------------------------------------------------

async fn paying_a_flash_invoice_settles_intraledger(backend: Backend) {
    let Lab { bank, node, .. } = lab(backend).await;
    let alice = member(&bank).await;
    let bob = member(&bank).await;
    let carol = member(&bank).await;
    fund(&bank, &alice, 10_000).await;
    fund(&bank, &carol, 10_000).await;
    let invoice = bank
        .ln_invoice_create(
            InvoiceFor::Owner(bob.id()),
            InvoiceCreate {
                memo: Some("pizza".into()),
                ..invoice_for(&bob, Some(1_000))
            },
        )
        .await
        .expect("bob's invoice");
    let mut rx = bank.subscribe();

    // With a `lightning:` prefix, as a QR code carries it.
    let paid = bank
        .ln_pay(pay(&alice, &format!("lightning:{}", invoice.payment_request), None))
        .await
        .expect("alice pays bob's invoice");
    assert_eq!((paid.status, paid.failure.as_deref()), (PaymentStatus::Success, None));
    let tx = transaction(&paid);
    assert_eq!((tx.direction, tx.amount, tx.fee), (Direction::Send, -1_000, 0));
    assert_eq!((tx.kind, tx.status), (JournalKind::IntraLedger, TxStatus::Success));
    assert_eq!(tx.counterparty_wallet_id, Some(bob.wallet()));
    assert_eq!(tx.memo.as_deref(), Some("pizza"), "the invoice's memo by default");
    assert_eq!(
        (balance(&bank, &alice).await, balance(&bank, &bob).await),
        (9_000, 1_000)
    );
    assert_eq!(
        reference(&bank, bob.wallet(), tx.journal_id).await,
        Some(format!("ln:{}", invoice.payment_hash))
    );
    let bob_lines = history(&bank, &bob).await;
    assert_eq!(bob_lines.len(), 1);
    assert_eq!(
        (bob_lines[0].direction, bob_lines[0].amount, bob_lines[0].kind),
        (Direction::Receive, 1_000, JournalKind::IntraLedger)
    );
    assert_eq!(bob_lines[0].counterparty_wallet_id, Some(alice.wallet()));
    let published: BTreeSet<(WalletId, JournalId)> = events(&mut rx)
        .into_iter()
        .filter_map(|e| match e.change {
            WalletChange::Journal(journal) => Some((e.wallet_id, journal)),
            WalletChange::Deposit { .. } | WalletChange::InvoicePaid { .. } => None,
        })
        .collect();
    assert_eq!(
        published,
        BTreeSet::from([(alice.wallet(), tx.journal_id), (bob.wallet(), tx.journal_id)])
    );
    let found = bank.ln_invoice_by_hash(invoice.payment_hash).await.expect("lookup");
    assert_eq!(found.status, InvoiceStatus::Paid);
    let paid_via = count(
        &bank,
        "SELECT COUNT(*) FROM ln_invoices WHERE payment_hash = $1 AND paid_via = 'intraledger' AND paid_sat = 1000",
        vec![invoice.payment_hash.to_string().into()],
    )
    .await;
    assert_eq!(paid_via, 1);

    // Paid once: the same payer or another one gets AlreadyPaid, and nothing moves.
    for payer in [&alice, &carol] {
        let again = bank
            .ln_pay(pay(payer, &invoice.payment_request, None))
            .await
            .expect("a second payment is answered");
        assert_eq!(again.status, PaymentStatus::AlreadyPaid);
        assert_eq!(again.transaction, None);
    }
    assert_eq!(
        (
            balance(&bank, &alice).await,
            balance(&bank, &bob).await,
            balance(&bank, &carol).await
        ),
        (9_000, 1_000, 10_000)
    );
    assert!(events(&mut rx).is_empty(), "nothing posted, nothing published");

    // The node's invoice was cancelled: the network can no longer pay it, and a late network
    // payment reported anyway is not credited a second time.
    let err = refused(bank.dev_ln_pay_from_outside(&invoice.payment_request, None).await);
    assert_eq!(err.code().as_str(), "INVALID_INVOICE", "{err:?}");
    assert!(node.pay_from_outside(&invoice.payment_request, None).is_err());
    let late = SettledInvoice {
        payment_hash: invoice.payment_hash,
        amount_received_msat: 1_000_000,
        settle_index: 1,
    };
    assert!(!bank.ln_credit_settlement(&late).await.expect("late settlement"));
    assert_eq!(balance(&bank, &bob).await, 1_000);

    // A no-amount Flash invoice is paid what the payer chooses.
    let open = create_invoice(&bank, &bob, None).await;
    let err = refused(bank.ln_pay(pay(&carol, &open.payment_request, None)).await);
    assert_eq!(err.code().as_str(), "AMOUNT_MISMATCH");
    let paid = bank
        .ln_pay(pay(&carol, &open.payment_request, Some(300)))
        .await
        .expect("carol pays bob's no-amount invoice");
    assert_eq!(paid.status, PaymentStatus::Success);
    assert_eq!((transaction(&paid).amount, transaction(&paid).fee), (-300, 0));
    assert_eq!(
        (balance(&bank, &bob).await, balance(&bank, &carol).await),
        (1_300, 9_700)
    );
    let record = bank
        .store_for_tests()
        .ln_invoice(&open.payment_hash.to_string())
        .await
        .expect("invoice row")
        .expect("recorded");
    assert_eq!(record.paid_sat, Some(300));

    // Paying your own invoice from the same wallet is refused.
    let own = create_invoice(&bank, &alice, Some(500)).await;
    let err = refused(bank.ln_pay(pay(&alice, &own.payment_request, None)).await);
    assert_eq!(err.code().as_str(), "SELF_PAYMENT");
    assert_eq!(balance(&bank, &alice).await, 9_000);
    assert_eq!(balance(&bank, &bob).await, 1_300);
    let own_now = bank.ln_invoice_by_hash(own.payment_hash).await.expect("lookup");
    assert_eq!(own_now.status, InvoiceStatus::Pending);

    // No Lightning money moved.
    assert_eq!(pending_balance(&bank).await, 0);
    assert_eq!(system_balance(&bank, SystemAccount::LightningNode).await, 0);
    assert_eq!(ln_payment_rows(&bank).await, 0);
    assert_verified(&bank).await;
}

// ---------------------------------------------------------------------------------------------
// 4. Paying other nodes
// ---------------------------------------------------------------------------------------------

async fn external_payment_is_charged_amount_and_actual_fee(backend: Backend) {
    let Lab { bank, outside, .. } = lab(backend).await;
    bank.dev_ln_set_outcome(succeed(1_000)).expect("0.1% routing fee");
    let alice = member(&bank).await;
    fund(&bank, &alice, 100_000).await;
    let invoice = external_invoice(&outside, Some(50_000), 3_600).await;
    let mut rx = bank.subscribe();

    let paid = bank
        .ln_pay(LnPayRequest {
            memo: Some("to the moon".into()),
            ..pay(&alice, &invoice.payment_request, None)
        })
        .await
        .expect("pay out");
    assert_eq!((paid.status, paid.failure.as_deref()), (PaymentStatus::Success, None));
    let cap = fee_cap(50_000);
    assert_eq!(cap, 250);
    let fee = 50; // 0.1% of 50,000
    assert!(fee <= cap);
    let tx = transaction(&paid);
    assert_eq!((tx.direction, tx.amount, tx.fee), (Direction::Send, -50_050, fee));
    assert_eq!((tx.kind, tx.status), (JournalKind::HoldOpen, TxStatus::Success));
    assert_eq!(tx.memo.as_deref(), Some("to the moon"));
    assert_eq!(tx.counterparty_wallet_id, None);
    assert_eq!(balance(&bank, &alice).await, 100_000 - 50_050);
    assert_eq!(pending_balance(&bank).await, 0, "nothing stays held");
    assert_eq!(system_balance(&bank, SystemAccount::LightningNode).await, 50_050);

    let lines = history(&bank, &alice).await;
    assert_eq!(
        lines.len(),
        2,
        "the payment is one line, the faucet the other: {lines:?}"
    );
    assert_eq!(&lines[0], tx);
    assert_eq!(
        reference(&bank, alice.wallet(), tx.journal_id).await,
        Some(format!("ln:{}", invoice.payment_hash))
    );
    let record = bank
        .store_for_tests()
        .live_ln_payment(&invoice.payment_hash.to_string())
        .await
        .expect("payment row")
        .expect("recorded");
    assert_eq!(record.status, LnPaymentStatus::Succeeded);
    assert_eq!((record.payment.amount_sat, record.payment.max_fee_sat), (50_000, cap));
    assert_eq!(record.fee_sat, Some(fee));
    let published = events(&mut rx);
    assert_eq!(
        published.len(),
        2,
        "one event when held, one when settled: {published:?}"
    );
    assert!(
        published
            .iter()
            .all(|e| e.wallet_id == alice.wallet() && e.change == WalletChange::Journal(tx.journal_id)),
        "events name the payment's line: {published:?}"
    );

    // Paid: another try is answered AlreadyPaid and takes nothing.
    let again = bank
        .ln_pay(pay(&alice, &invoice.payment_request, None))
        .await
        .expect("second try");
    assert_eq!((again.status, again.transaction), (PaymentStatus::AlreadyPaid, None));
    assert_eq!(balance(&bank, &alice).await, 100_000 - 50_050);

    // Millisatoshi fees are rounded up for the payer: 1,001 msat costs 2 sats.
    let odd = external_invoice(&outside, Some(1_001), 3_600).await;
    let paid = bank
        .ln_pay(pay(&alice, &odd.payment_request, None))
        .await
        .expect("pay out");
    assert_eq!(paid.status, PaymentStatus::Success);
    assert_eq!((transaction(&paid).amount, transaction(&paid).fee), (-1_003, 2));
    assert_eq!(balance(&bank, &alice).await, 100_000 - 50_050 - 1_003);
    // The withdrawal limit counts what was sent, not the fee.
    assert_eq!(withdrawal_remaining(&bank, &alice).await, 1_000_000 - 51_001);
    assert_eq!(pending_balance(&bank).await, 0);
    assert_eq!(holds(&bank).await, 2);
    assert_verified(&bank).await;
}

async fn failed_external_payment_is_refunded_in_full(backend: Backend) {
    let Lab { bank, outside, .. } = lab(backend).await;
    bank.dev_ln_set_outcome(DevOutcome::Fail { delay_ms: 0 })
        .expect("no route");
    let alice = member(&bank).await;
    fund(&bank, &alice, 10_000).await;
    let invoice = external_invoice(&outside, Some(2_000), 3_600).await;

    let failed = bank
        .ln_pay(pay(&alice, &invoice.payment_request, None))
        .await
        .expect("a failed payment is an answer, not an error");
    assert_eq!(failed.status, PaymentStatus::Failure);
    assert_eq!(failed.failure.as_deref(), Some("no route"));
    let tx = transaction(&failed);
    assert_eq!(
        (tx.kind, tx.status, tx.fee),
        (JournalKind::HoldOpen, TxStatus::Failure, 0)
    );
    assert_eq!(balance(&bank, &alice).await, 10_000, "refunded in full");
    assert_eq!(pending_balance(&bank).await, 0);
    assert_eq!(system_balance(&bank, SystemAccount::LightningNode).await, 0);
    let lines = history(&bank, &alice).await;
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0].status, TxStatus::Failure);
    assert_eq!(
        payments_of(&bank, invoice.payment_hash).await,
        vec![("failed".to_string(), None, Some("no route".to_string()))]
    );
    assert_eq!(journals_of_kind(&bank, JournalKind::HoldReverse).await, 1);
    assert_verified(&bank).await;
}

/// A payment that failed may be tried again (the ledger allows a new payment of the hash once
/// the last one failed), and this time it goes through.
async fn failed_payment_may_be_tried_again(backend: Backend) {
    let Lab { bank, outside, .. } = lab(backend).await;
    let alice = member(&bank).await;
    fund(&bank, &alice, 10_000).await;
    let invoice = external_invoice(&outside, Some(2_000), 3_600).await;
    bank.dev_ln_set_outcome(DevOutcome::Fail { delay_ms: 0 })
        .expect("no route");
    let failed = bank
        .ln_pay(pay(&alice, &invoice.payment_request, None))
        .await
        .expect("first attempt");
    assert_eq!(failed.status, PaymentStatus::Failure);

    bank.dev_ln_set_outcome(succeed(0)).expect("route found");
    let retried = bank
        .ln_pay(pay(&alice, &invoice.payment_request, None))
        .await
        .expect("second attempt");
    assert_eq!(
        (retried.status, retried.failure.as_deref()),
        (PaymentStatus::Success, None),
        "the second attempt goes through"
    );
    assert_eq!((transaction(&retried).amount, transaction(&retried).fee), (-2_000, 0));
    assert_eq!(balance(&bank, &alice).await, 8_000);
    let statuses: Vec<String> = payments_of(&bank, invoice.payment_hash)
        .await
        .into_iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(statuses, vec!["failed", "succeeded"]);
    assert_eq!(pending_balance(&bank).await, 0);
    assert_verified(&bank).await;
}

async fn slow_payments_stay_pending_until_reconciled(backend: Backend) {
    let Lab { bank, outside, .. } = lab(backend).await;
    let alice = member(&bank).await;
    let bob = member(&bank).await;
    fund(&bank, &alice, 100_000).await;
    fund(&bank, &bob, 100_000).await;
    let to_succeed = external_invoice(&outside, Some(10_000), 3_600).await;
    let to_fail = external_invoice(&outside, Some(20_000), 3_600).await;
    let (cap_a, cap_b) = (fee_cap(10_000), fee_cap(20_000));

    // The network answers 4 s after the call; the bank waits 1 s.
    bank.dev_ln_set_outcome(DevOutcome::Succeed {
        delay_ms: 4_000,
        fee_ppm: 1_000,
    })
    .expect("slow success");
    let a = bank
        .ln_pay(pay(&alice, &to_succeed.payment_request, None))
        .await
        .expect("slow payment");
    bank.dev_ln_set_outcome(DevOutcome::Fail { delay_ms: 4_000 })
        .expect("slow failure");
    let b = bank
        .ln_pay(pay(&bob, &to_fail.payment_request, None))
        .await
        .expect("slow payment");
    for (outcome, m, held) in [(&a, &alice, 10_000 + cap_a), (&b, &bob, 20_000 + cap_b)] {
        assert_eq!(outcome.status, PaymentStatus::Pending);
        assert_eq!(transaction(outcome).status, TxStatus::Pending);
        assert_eq!(balance(&bank, m).await, 100_000 - held, "amount + fee cap held");
    }
    assert_eq!(pending_balance(&bank).await, 10_000 + cap_a + 20_000 + cap_b);

    // While in flight, the invoice cannot be paid again, by anyone.
    for payer in [&alice, &bob] {
        let err = refused(bank.ln_pay(pay(payer, &to_succeed.payment_request, None)).await);
        assert_eq!(err.code().as_str(), "PAYMENT_IN_FLIGHT");
    }
    // The node has no answer yet: reconciliation leaves both pending.
    let early = bank.ln_reconcile().await.expect("reconcile");
    assert_eq!(
        early,
        ReconcileReport {
            checked: 2,
            pending: 2,
            ..Default::default()
        }
    );
    assert_eq!(pending_balance(&bank).await, 10_000 + cap_a + 20_000 + cap_b);

    tokio::time::sleep(Duration::from_millis(3_300)).await;
    let mut rx = bank.subscribe();
    let settled = bank.ln_reconcile().await.expect("reconcile");
    assert_eq!(
        settled,
        ReconcileReport {
            checked: 2,
            succeeded: 1,
            failed: 1,
            pending: 0,
        }
    );
    assert_eq!(
        balance(&bank, &alice).await,
        100_000 - 10_010,
        "amount + the actual fee"
    );
    assert_eq!(balance(&bank, &bob).await, 100_000, "refunded");
    assert_eq!(pending_balance(&bank).await, 0);
    let alice_line = bank
        .transaction(alice.wallet(), transaction(&a).journal_id)
        .await
        .expect("alice's line");
    assert_eq!(
        (alice_line.status, alice_line.amount, alice_line.fee),
        (TxStatus::Success, -10_010, 10)
    );
    let bob_line = bank
        .transaction(bob.wallet(), transaction(&b).journal_id)
        .await
        .expect("bob's line");
    assert_eq!(bob_line.status, TxStatus::Failure);
    let published: BTreeSet<(WalletId, JournalId)> = events(&mut rx)
        .into_iter()
        .filter_map(|e| match e.change {
            WalletChange::Journal(journal) => Some((e.wallet_id, journal)),
            WalletChange::Deposit { .. } | WalletChange::InvoicePaid { .. } => None,
        })
        .collect();
    assert_eq!(
        published,
        BTreeSet::from([
            (alice.wallet(), alice_line.journal_id),
            (bob.wallet(), bob_line.journal_id)
        ]),
        "each payer hears its payment's line changed"
    );

    // Nothing is left to decide, and deciding again changes nothing.
    assert_eq!(
        bank.ln_reconcile().await.expect("reconcile"),
        ReconcileReport::default()
    );
    assert_eq!(journals_of_kind(&bank, JournalKind::HoldSettle).await, 1);
    assert_eq!(journals_of_kind(&bank, JournalKind::HoldReverse).await, 1);
    assert_verified(&bank).await;
}

async fn hanging_payment_stays_pending_through_reconciliation(backend: Backend) {
    let Lab { bank, node, outside } = lab(backend).await;
    bank.dev_ln_set_outcome(DevOutcome::Hang).expect("hang");
    let alice = member(&bank).await;
    fund(&bank, &alice, 10_000).await;
    let invoice = external_invoice(&outside, Some(1_000), 3_600).await;
    let held = 1_000 + fee_cap(1_000);

    let outcome = bank
        .ln_pay(pay(&alice, &invoice.payment_request, None))
        .await
        .expect("pending payment");
    assert_eq!(outcome.status, PaymentStatus::Pending);
    assert_eq!(balance(&bank, &alice).await, 10_000 - held);

    for _ in 0..2 {
        let report = bank.ln_reconcile().await.expect("reconcile");
        assert_eq!(
            report,
            ReconcileReport {
                checked: 1,
                pending: 1,
                ..Default::default()
            }
        );
    }
    // Within the grace period a pending payment is not even looked at.
    let patient = Bank::new(
        bank.store_for_tests().clone(),
        BankConfig {
            lightning: LightningConfig::default(),
            ..config()
        },
    )
    .with_lightning(node.clone(), Some(node.clone()));
    assert_eq!(
        patient.ln_reconcile().await.expect("reconcile"),
        ReconcileReport::default()
    );

    assert_eq!(balance(&bank, &alice).await, 10_000 - held);
    assert_eq!(pending_balance(&bank).await, held);
    assert_eq!(
        payments_of(&bank, invoice.payment_hash).await,
        vec![("pending".to_string(), None, None)]
    );
    assert_eq!(history(&bank, &alice).await[0].status, TxStatus::Pending);
    assert_verified(&bank).await;
}

async fn fee_probe_is_zero_inside_and_the_estimate_outside(backend: Backend) {
    let Lab { bank, outside, .. } = lab(backend).await;
    let alice = member(&bank).await;
    let bob = member(&bank).await;
    fund(&bank, &alice, 100_000).await;
    let probe = |pr: String, amount: Option<i64>| {
        let bank = bank.clone();
        let alice = alice.clone();
        async move { bank.ln_fee_probe(alice.id(), alice.wallet(), &pr, amount).await }
    };

    let bobs = create_invoice(&bank, &bob, Some(5_000)).await;
    bank.dev_ln_set_outcome(succeed(1_000)).expect("0.1%");
    assert_eq!(probe(bobs.payment_request.clone(), None).await.expect("own"), 0);

    let external = external_invoice(&outside, Some(50_000), 3_600).await;
    assert_eq!(
        probe(external.payment_request.clone(), None).await.expect("estimate"),
        50
    );
    let no_amount = external_invoice(&outside, None, 3_600).await;
    assert_eq!(
        probe(no_amount.payment_request.clone(), Some(10_000))
            .await
            .expect("estimate"),
        10
    );
    let err = refused(probe(no_amount.payment_request.clone(), None).await);
    assert_eq!(err.code().as_str(), "AMOUNT_MISMATCH");

    // An estimate above the cap is reported as the cap: no payment may cost more.
    bank.dev_ln_set_outcome(succeed(100_000)).expect("10%");
    assert_eq!(
        probe(external.payment_request.clone(), None).await.expect("estimate"),
        fee_cap(50_000)
    );

    bank.dev_ln_set_outcome(DevOutcome::Fail { delay_ms: 0 })
        .expect("no route");
    let err = refused(probe(external.payment_request.clone(), None).await);
    assert_eq!(err.code().as_str(), "NO_ROUTE");
    assert_eq!(
        probe(bobs.payment_request.clone(), None).await.expect("own"),
        0,
        "no route is needed inside Flash"
    );
    let err = refused(
        bank.ln_fee_probe(bob.id(), alice.wallet(), &external.payment_request, None)
            .await,
    );
    assert_eq!(err.code().as_str(), "WALLET_NOT_FOUND");

    // Probing moves nothing.
    assert_eq!(balance(&bank, &alice).await, 100_000);
    assert_eq!((ln_payment_rows(&bank).await, holds(&bank).await), (0, 0));
    assert_verified(&bank).await;
}

// ---------------------------------------------------------------------------------------------
// 5. Refusals
// ---------------------------------------------------------------------------------------------

async fn refused_payments_change_nothing(backend: Backend) {
    let Lab { bank, node, outside } = lab(backend).await;
    let alice = member(&bank).await;
    let bob = member(&bank).await;
    let dora = sign_up(&bank, Identity::Device(format!("device-{}", uuid::Uuid::new_v4()))).await;
    fund(&bank, &alice, 10_000).await;
    fund(&bank, &bob, 10_000).await;
    fund(&bank, &dora, 200_000).await;
    let locked = member(&bank).await;
    fund(&bank, &locked, 10_000).await;
    bank.set_account_status("ops@flash", locked.id(), AccountStatus::Locked, None)
        .await
        .expect("lock");

    let external = external_invoice(&outside, Some(1_000), 3_600).await;
    let no_amount = external_invoice(&outside, None, 3_600).await;
    let too_big = external_invoice(&outside, Some(20_000), 3_600).await;
    let no_room_for_fee = external_invoice(&outside, Some(9_995), 3_600).await;
    let over_limit = external_invoice(&outside, Some(125_001), 3_600).await;
    let signet = external_invoice(&dev_node(Network::Signet), Some(1_000), 3_600).await;
    let testnet = external_invoice(&dev_node(Network::Testnet), Some(1_000), 3_600).await;
    let expiring = external_invoice(&outside, Some(1_000), 1).await;
    let everyone = [&alice, &bob, &dora, &locked];
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let before = observe(&bank, &everyone).await;

    let alice_pays = |pr: &str, amount: Option<i64>| pay(&alice, pr, amount);
    let cases: Vec<(&str, LnPayRequest, &str)> = vec![
        ("malformed", alice_pays("lnbcrt1notaninvoice", None), "INVALID_INVOICE"),
        ("empty", alice_pays("  ", None), "INVALID_INVOICE"),
        ("prefix only", alice_pays("lightning:", None), "INVALID_INVOICE"),
        (
            "over 4,096 chars",
            alice_pays(&"q".repeat(4_097), None),
            "INVALID_INVOICE",
        ),
        (
            "signet invoice",
            alice_pays(&signet.payment_request, None),
            "WRONG_NETWORK",
        ),
        (
            "testnet invoice",
            alice_pays(&testnet.payment_request, None),
            "WRONG_NETWORK",
        ),
        (
            "expired",
            alice_pays(&expiring.payment_request, None),
            "INVOICE_EXPIRED",
        ),
        (
            "amount too small",
            alice_pays(&external.payment_request, Some(999)),
            "AMOUNT_MISMATCH",
        ),
        (
            "amount too big",
            alice_pays(&external.payment_request, Some(1_001)),
            "AMOUNT_MISMATCH",
        ),
        (
            "no amount for a no-amount invoice",
            alice_pays(&no_amount.payment_request, None),
            "AMOUNT_MISMATCH",
        ),
        (
            "zero for a no-amount invoice",
            alice_pays(&no_amount.payment_request, Some(0)),
            "INVALID_AMOUNT",
        ),
        (
            "negative for a no-amount invoice",
            alice_pays(&no_amount.payment_request, Some(-5)),
            "INVALID_AMOUNT",
        ),
        (
            "more than the balance",
            alice_pays(&too_big.payment_request, None),
            "INSUFFICIENT_BALANCE",
        ),
        (
            "no room for the fee cap",
            alice_pays(&no_room_for_fee.payment_request, None),
            "INSUFFICIENT_BALANCE",
        ),
        (
            "over the withdrawal limit",
            pay(&dora, &over_limit.payment_request, None),
            "LIMIT_EXCEEDED",
        ),
        (
            "locked payer",
            pay(&locked, &external.payment_request, None),
            "ACCOUNT_NOT_ACTIVE",
        ),
        (
            "someone else's wallet",
            LnPayRequest {
                wallet_id: bob.wallet(),
                ..alice_pays(&external.payment_request, None)
            },
            "WALLET_NOT_FOUND",
        ),
        (
            "memo too long",
            LnPayRequest {
                memo: Some("m".repeat(1_001)),
                ..alice_pays(&external.payment_request, None)
            },
            "MEMO_TOO_LONG",
        ),
        (
            "empty idempotency key",
            LnPayRequest {
                idempotency_key: Some(String::new()),
                ..alice_pays(&external.payment_request, None)
            },
            "INVALID_IDEMPOTENCY_KEY",
        ),
    ];
    for (what, request, code) in cases {
        let err = refused(bank.ln_pay(request).await);
        assert_eq!(err.code().as_str(), code, "{what}: {err:?}");
    }
    assert_eq!(observe(&bank, &everyone).await, before, "a refusal changes nothing");
    // The node was never asked to pay any of them.
    for invoice in [
        &external,
        &no_amount,
        &too_big,
        &no_room_for_fee,
        &over_limit,
        &expiring,
    ] {
        assert_eq!(
            node.track_payment(invoice.payment_hash).await,
            Err(LightningError::NotFound),
            "the node never saw {}",
            invoice.payment_hash
        );
    }

    // Exactly the balance (amount + fee cap) and exactly the limit are fine.
    let exact = external_invoice(&outside, Some(9_950), 3_600).await;
    assert_eq!(9_950 + fee_cap(9_950), 10_000);
    let paid = bank
        .ln_pay(pay(&alice, &exact.payment_request, None))
        .await
        .expect("the whole balance");
    assert_eq!(paid.status, PaymentStatus::Success);
    let at_limit = external_invoice(&outside, Some(125_000), 3_600).await;
    let paid = bank
        .ln_pay(pay(&dora, &at_limit.payment_request, None))
        .await
        .expect("exactly the limit");
    assert_eq!(paid.status, PaymentStatus::Success);
    assert_eq!(withdrawal_remaining(&bank, &dora).await, 0);
    assert_verified(&bank).await;
}

// ---------------------------------------------------------------------------------------------
// 6. Concurrency
// ---------------------------------------------------------------------------------------------

async fn concurrent_payers_of_one_invoice_pay_it_once(backend: Backend) {
    let Lab { bank, outside, .. } = lab(backend).await;
    bank.dev_ln_set_outcome(DevOutcome::Succeed {
        delay_ms: 50,
        fee_ppm: 1_000,
    })
    .expect("slightly slow success");
    let mut payers = Vec::new();
    for _ in 0..20 {
        let m = member(&bank).await;
        fund(&bank, &m, 10_000).await;
        payers.push(m);
    }
    let invoice = external_invoice(&outside, Some(1_000), 3_600).await;

    let tries = payers.iter().map(|m| {
        let bank = bank.clone();
        let request = pay(m, &invoice.payment_request, None);
        tokio::spawn(async move { bank.ln_pay(request).await })
    });
    let results: Vec<Result<LnPayOutcome, BankError>> = futures_util::future::join_all(tries)
        .await
        .into_iter()
        .map(|joined| joined.expect("task"))
        .collect();
    let mut successes = 0;
    for result in &results {
        match result {
            Ok(o) if o.status == PaymentStatus::Success => successes += 1,
            Ok(o) => assert_eq!(o.status, PaymentStatus::AlreadyPaid, "{o:?}"),
            Err(e) => assert_eq!(e.code().as_str(), "PAYMENT_IN_FLIGHT", "{e:?}"),
        }
    }
    assert_eq!(successes, 1, "{results:?}");

    let mut balances = Vec::new();
    for m in &payers {
        balances.push(balance(&bank, m).await);
    }
    assert_eq!(
        balances.iter().sum::<i64>(),
        20 * 10_000 - 1_001,
        "one payment, 1 sat fee"
    );
    assert_eq!(balances.iter().filter(|b| **b == 10_000 - 1_001).count(), 1);
    assert_eq!(balances.iter().filter(|b| **b == 10_000).count(), 19);
    assert_eq!((ln_payment_rows(&bank).await, holds(&bank).await), (1, 1));
    assert_eq!(pending_balance(&bank).await, 0);
    assert_verified(&bank).await;
}

/// Twenty retries of one request (one idempotency key) at once, in thirty rounds so the race
/// between a retry's idempotency lookup and the first request's hold is actually hit.
async fn concurrent_retries_with_one_key_hold_once(backend: Backend) {
    let Lab { bank, outside, .. } = lab(backend).await;
    bank.dev_ln_set_outcome(succeed(1_000)).expect("0.1%");
    let alice = member(&bank).await;
    fund(&bank, &alice, 100_000).await;

    for round in 1..=30_i64 {
        let invoice = external_invoice(&outside, Some(1_000), 3_600).await;
        let request = LnPayRequest {
            idempotency_key: Some(format!("pay-once-{round}")),
            ..pay(&alice, &invoice.payment_request, None)
        };
        let retries = (0..20).map(|_| {
            let bank = bank.clone();
            let request = request.clone();
            tokio::spawn(async move { bank.ln_pay(request).await })
        });
        let results: Vec<Result<LnPayOutcome, BankError>> = futures_util::future::join_all(retries)
            .await
            .into_iter()
            .map(|joined| joined.expect("task"))
            .collect();
        // Every retry is answered with the one payment: finished, or still in flight when the
        // retry looked. None is refused, or told the invoice was paid by someone else.
        let mut journals = BTreeSet::new();
        for result in &results {
            let outcome = result.as_ref().unwrap_or_else(|e| {
                panic!("round {round}: a retry with the same key gets the first answer, not {e:?}")
            });
            assert!(
                matches!(outcome.status, PaymentStatus::Success | PaymentStatus::Pending),
                "round {round}: {outcome:?}"
            );
            journals.insert(transaction(outcome).journal_id);
        }
        assert_eq!(journals.len(), 1, "round {round}: one payment: {journals:?}");

        // Once it finished, a retry gets exactly the final answer, as the first caller did.
        let final_answer = bank.ln_pay(request.clone()).await.expect("retry after the fact");
        assert_eq!(final_answer.status, PaymentStatus::Success);
        assert_eq!(Some(transaction(&final_answer).journal_id), journals.first().copied());
        assert_eq!(
            (transaction(&final_answer).amount, transaction(&final_answer).fee),
            (-1_001, 1)
        );
        for outcome in results.iter().flatten() {
            if outcome.status == PaymentStatus::Success {
                assert_eq!(outcome, &final_answer, "round {round}: identical answers");
            }
        }
        assert_eq!(balance(&bank, &alice).await, 100_000 - round * 1_001);
        assert_eq!((holds(&bank).await, ln_payment_rows(&bank).await), (round, round));
        assert_eq!(pending_balance(&bank).await, 0);
    }

    // The same key for another invoice is refused.
    let other = external_invoice(&outside, Some(500), 3_600).await;
    let err = refused(
        bank.ln_pay(LnPayRequest {
            idempotency_key: Some("pay-once-1".into()),
            ..pay(&alice, &other.payment_request, None)
        })
        .await,
    );
    assert_eq!(err.code().as_str(), "IDEMPOTENCY_KEY_REUSED");
    assert_eq!(balance(&bank, &alice).await, 100_000 - 30 * 1_001);
    assert_verified(&bank).await;
}

// ---------------------------------------------------------------------------------------------
// 7. Reconciling a payment the node never received
// ---------------------------------------------------------------------------------------------

async fn reconciliation_refunds_a_payment_the_node_never_received(backend: Backend) {
    let node = Arc::new(LosesPayments(dev_node(Network::Regtest)));
    let store = fresh_store(backend).await;
    let bank = Bank::new(store.clone(), config()).with_lightning(node.clone(), None);
    let outside = dev_node(Network::Regtest);
    let alice = member(&bank).await;
    fund(&bank, &alice, 10_000).await;
    let invoice = external_invoice(&outside, Some(1_000), 3_600).await;
    let held = 1_000 + fee_cap(1_000);
    let request = LnPayRequest {
        idempotency_key: Some("lost-1".into()),
        ..pay(&alice, &invoice.payment_request, None)
    };

    let outcome = bank.ln_pay(request.clone()).await.expect("outcome unknown");
    assert_eq!(outcome.status, PaymentStatus::Pending, "unknown is pending, not failed");
    let opened = transaction(&outcome).journal_id;
    assert_eq!(balance(&bank, &alice).await, 10_000 - held);
    assert_eq!(pending_balance(&bank).await, held);

    // Within the grace period, another process's reconciliation leaves it alone.
    let patient = Bank::new(
        store.clone(),
        BankConfig {
            lightning: LightningConfig::default(),
            ..config()
        },
    )
    .with_lightning(node.clone(), None);
    assert_eq!(
        patient.ln_reconcile().await.expect("reconcile"),
        ReconcileReport::default()
    );
    assert_eq!(balance(&bank, &alice).await, 10_000 - held);

    // Two passes at once: the hold is reversed exactly once.
    let mut rx = bank.subscribe();
    let (first, second) = {
        let (a, b) = (bank.clone(), bank.clone());
        let one = tokio::spawn(async move { a.ln_reconcile().await });
        let two = tokio::spawn(async move { b.ln_reconcile().await });
        (
            one.await.expect("task").expect("reconcile"),
            two.await.expect("task").expect("reconcile"),
        )
    };
    for report in [&first, &second] {
        assert_eq!((report.succeeded, report.pending), (0, 0), "{report:?}");
        assert_eq!(report.checked, report.failed, "{report:?}");
    }
    assert!(first.failed + second.failed >= 1, "{first:?} {second:?}");
    assert_eq!(balance(&bank, &alice).await, 10_000, "refunded");
    assert_eq!(pending_balance(&bank).await, 0);
    assert_eq!(journals_of_kind(&bank, JournalKind::HoldReverse).await, 1);
    assert_eq!(
        payments_of(&bank, invoice.payment_hash).await,
        vec![(
            "failed".to_string(),
            None,
            Some("the node never received the payment".to_string())
        )]
    );
    assert_eq!(
        events(&mut rx),
        vec![WalletEvent {
            account_id: alice.id(),
            wallet_id: alice.wallet(),
            change: WalletChange::Journal(opened),
        }],
        "one refund, one event"
    );
    let line = bank.transaction(alice.wallet(), opened).await.expect("line");
    assert_eq!(line.status, TxStatus::Failure);

    // Nothing is left; a retry of the request gets the final answer.
    assert_eq!(
        bank.ln_reconcile().await.expect("reconcile"),
        ReconcileReport::default()
    );
    let retry = bank.ln_pay(request).await.expect("retry");
    assert_eq!(retry.status, PaymentStatus::Failure);
    assert_eq!(transaction(&retry).journal_id, opened);
    assert_eq!(balance(&bank, &alice).await, 10_000);
    assert_eq!(holds(&bank).await, 1);
    assert_verified(&bank).await;
}

async fn invoices_beyond_inbound_capacity_use_a_just_in_time_channel(backend: Backend) {
    let dev = dev_node(Network::Regtest);
    let inbound = flash_lightning::DEV_CHANNEL_SATS as i64 / 2;
    let lsp = Arc::new(WithLsp(dev.clone(), AtomicU64::new(0)));
    let bank = Bank::new(fresh_store(backend).await, config()).with_lightning(lsp.clone(), Some(dev.clone()));
    let alice = member(&bank).await;
    let who = InvoiceFor::Owner(alice.id());
    bank.ln_invoice_create(who, invoice_for(&alice, Some(inbound)))
        .await
        .expect("within inbound");
    assert_eq!(lsp.1.load(Ordering::SeqCst), 0, "enough inbound: an ordinary invoice");
    bank.ln_invoice_create(who, invoice_for(&alice, None))
        .await
        .expect("no amount");
    assert_eq!(
        lsp.1.load(Ordering::SeqCst),
        0,
        "no amount: nothing to size a channel for"
    );
    let big = bank
        .ln_invoice_create(who, invoice_for(&alice, Some(inbound + 1)))
        .await
        .expect("beyond inbound");
    assert_eq!(lsp.1.load(Ordering::SeqCst), 1, "a just-in-time invoice");
    let actions = bank.liquidity_actions(10).await.expect("actions");
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].kind, flash_store::LiquidityActionKind::JitInvoice);
    assert_eq!(actions[0].amount_sat, inbound + 1);
    assert_eq!(big.amount, Some(inbound + 1));
    let off = BankConfig {
        liquidity: flash_bank::LiquidityConfig {
            jit_inbound: false,
            ..Default::default()
        },
        ..config()
    };
    let bank = Bank::new(fresh_store(backend).await, off).with_lightning(lsp.clone(), Some(dev.clone()));
    let bob = member(&bank).await;
    bank.ln_invoice_create(InvoiceFor::Owner(bob.id()), invoice_for(&bob, Some(inbound + 1)))
        .await
        .expect("ordinary");
    assert_eq!(lsp.1.load(Ordering::SeqCst), 1, "just-in-time channels switched off");

    // A node without an LSP: the ordinary invoice, and the bank stops asking.
    let plain = dev_node(Network::Regtest);
    let bank = Bank::new(fresh_store(backend).await, config()).with_lightning(plain.clone(), Some(plain));
    let carol = member(&bank).await;
    let invoice = bank
        .ln_invoice_create(InvoiceFor::Owner(carol.id()), invoice_for(&carol, Some(inbound * 3)))
        .await
        .expect("falls back to an ordinary invoice");
    assert_eq!(invoice.amount, Some(inbound * 3));
    assert!(bank.liquidity_actions(10).await.expect("actions").is_empty());
}
