//! Lightning payments per second, with p50/p99 latency, on SQLite and PostgreSQL:
//!
//! - `flash-invoice`: Flash users paying invoices issued by this Flash to other users — the
//!   intraledger path (decode and signature check, the invoice lookup, one journal that also
//!   marks the invoice paid, cancelling the node's invoice);
//! - `dev-rail`: Flash users paying other nodes' invoices over the `dev` simulator with an
//!   instant network — the full saga (decode, hold + payment row, the node call, settlement
//!   with the actual fee: two journals per payment).
//!
//! Invoices are issued before the clock starts. Each payer pays its own list, one payment at a
//! time, waiting for the answer.
//!
//! `cargo bench -p flash-bank --bench lightning` (env: `FLASH_BENCH_BACKENDS=sqlite,postgres`,
//! `FLASH_BENCH_PAYERS=16,64`, `FLASH_BENCH_INVOICES` per payer, default 300). PostgreSQL comes
//! from `FLASH_TEST_POSTGRES_URL` as in the tests.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{backends, env_list, env_number, percentile};
use flash_bank::{Bank, BankConfig, Identity, InvoiceCreate, InvoiceFor, LnPayRequest, PaymentStatus};
use flash_core::lightning::{DevOutcome, InvoiceDescription, InvoiceRequest, LightningNode};
use flash_core::{AccountId, AccountLevel, Network, WalletId};
use flash_lightning::DevNode;
use flash_store::testing::{fresh_store, Backend};

const INSTANT: DevOutcome = DevOutcome::Succeed {
    delay_ms: 0,
    fee_ppm: 1_000,
};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Path {
    FlashInvoice,
    DevRail,
}

async fn member(bank: &Bank, name: &str) -> (AccountId, WalletId) {
    let (_, account) = bank
        .user_for_identity(&Identity::Device(name.to_string()))
        .await
        .expect("sign up");
    bank.set_account_level("bench", account.id, AccountLevel::Three)
        .await
        .expect("level");
    bank.wallet_fund("bench", account.default_wallet_id, 100_000_000, None)
        .await
        .expect("fund");
    (account.id, account.default_wallet_id)
}

/// Payments per second, p50, p99.
async fn run(backend: Backend, path: Path, payers: usize, per_payer: usize) -> (f64, Duration, Duration) {
    let node = Arc::new(DevNode::new(Network::Regtest, DevNode::generate_key(), INSTANT).expect("node"));
    let outside = DevNode::new(Network::Regtest, DevNode::generate_key(), INSTANT).expect("node");
    let bank = Bank::new(fresh_store(backend).await, BankConfig::default()).with_lightning(node.clone(), Some(node));
    let mut members = Vec::new();
    for i in 0..payers.max(2) {
        members.push(member(&bank, &format!("bench-{i}")).await);
    }
    // Each payer's invoices: issued by this Flash to the next member, or by another node.
    let mut lists = Vec::new();
    for i in 0..payers {
        let (_, payee) = members[(i + 1) % members.len()];
        let mut list = Vec::with_capacity(per_payer);
        for _ in 0..per_payer {
            let pr = match path {
                Path::FlashInvoice => {
                    let req = InvoiceCreate {
                        wallet_id: payee,
                        amount: Some(1),
                        memo: None,
                        description_hash: None,
                        expires_in_mins: None,
                    };
                    bank.ln_invoice_create(InvoiceFor::Recipient, req)
                        .await
                        .expect("invoice")
                        .payment_request
                }
                Path::DevRail => {
                    let req = InvoiceRequest {
                        amount_msat: Some(1_000),
                        description: InvoiceDescription::Memo(String::new()),
                        expiry_secs: 3_600,
                    };
                    outside.create_invoice(req).await.expect("invoice").payment_request
                }
            };
            list.push(pr);
        }
        lists.push(list);
    }
    let start = Instant::now();
    let tasks = lists.into_iter().enumerate().map(|(i, list)| {
        let bank = bank.clone();
        let (account, wallet_id) = members[i];
        tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(list.len());
            for payment_request in list {
                let t = Instant::now();
                let req = LnPayRequest {
                    account,
                    wallet_id,
                    payment_request,
                    amount: None,
                    memo: None,
                    idempotency_key: None,
                };
                let outcome = bank.ln_pay(req).await.expect("pay");
                assert_eq!(outcome.status, PaymentStatus::Success);
                latencies.push(t.elapsed());
            }
            latencies
        })
    });
    let mut all = Vec::new();
    for t in futures_util::future::join_all(tasks).await {
        all.extend(t.expect("payer"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let report = bank.verify_ledger().await.expect("verify");
    assert!(report.ok(), "ledger invariants broken: {:?}", report.problems);
    all.sort();
    (
        all.len() as f64 / elapsed,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let per_payer = env_number("FLASH_BENCH_INVOICES", 300) as usize;
    println!("Lightning payments, {per_payer} per payer");
    println!(
        "{:<14} {:<9} {:>7} {:>12} {:>10} {:>10}",
        "path", "backend", "payers", "payments/s", "p50 ms", "p99 ms"
    );
    for (name, path) in [("flash-invoice", Path::FlashInvoice), ("dev-rail", Path::DevRail)] {
        for (backend, b) in backends() {
            for payers in env_list("FLASH_BENCH_PAYERS", "16,64") {
                let payers: usize = payers.parse().expect("payers");
                let (pps, p50, p99) = run(b, path, payers, per_payer).await;
                println!(
                    "{name:<14} {backend:<9} {payers:>7} {pps:>12.0} {:>10.2} {:>10.2}",
                    p50.as_secs_f64() * 1e3,
                    p99.as_secs_f64() * 1e3
                );
            }
        }
    }
}
