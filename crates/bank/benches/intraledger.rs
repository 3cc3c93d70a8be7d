//! Durable intraledger transfers per second, with p50/p99 latency, for 1, 16 and 256
//! concurrent payers on SQLite and PostgreSQL. Each payer sends 1 sat at a time to another
//! wallet and waits for the durable answer before its next send.
//!
//! `cargo bench -p flash-bank --bench intraledger` (env: `FLASH_BENCH_SECS` per run,
//! default 5; `FLASH_BENCH_BACKENDS=sqlite,postgres`; `FLASH_BENCH_PAYERS=1,16,256`).
//! PostgreSQL comes from `FLASH_TEST_POSTGRES_URL` as in the tests.

mod common;

use std::time::{Duration, Instant};

use common::{backends, env_list, env_number, percentile};

use flash_bank::{Bank, BankConfig, Identity, Recipient, SendRequest};
use flash_core::AccountLevel;
use flash_store::testing::{fresh_store, Backend};

/// Throughput, p50, p99 and the mean number of transfers per committed batch.
async fn run(backend: Backend, payers: usize, secs: u64) -> (f64, Duration, Duration, f64) {
    let store = fresh_store(backend).await;
    let bank = Bank::new(store, BankConfig::default());
    let mut wallets = Vec::new();
    for i in 0..payers.max(2) {
        let (_, account) = bank
            .user_for_identity(&Identity::Device(format!("bench-{i}")))
            .await
            .expect("sign up");
        bank.set_account_level("bench", account.id, AccountLevel::Three)
            .await
            .expect("level");
        bank.wallet_fund("bench", account.default_wallet_id, 100_000_000, None)
            .await
            .expect("fund");
        wallets.push((account.id, account.default_wallet_id));
    }
    let batches_before = bank.ledger_stats().batches();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let tasks = (0..payers).map(|i| {
        let bank = bank.clone();
        let (account, from) = wallets[i];
        let (_, to) = wallets[(i + 1) % wallets.len()];
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                let req = SendRequest {
                    account,
                    from,
                    to: Recipient::Wallet(to),
                    amount: 1,
                    memo: None,
                    idempotency_key: None,
                };
                bank.send_intraledger(req).await.expect("send");
                latencies.push(t.elapsed());
            }
            latencies
        })
    });
    let mut all: Vec<Duration> = Vec::new();
    for t in futures_util::future::join_all(tasks).await {
        all.extend(t.expect("payer"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    let batches = bank.ledger_stats().batches() - batches_before;
    let report = bank.verify_ledger().await.expect("verify");
    assert!(report.ok(), "ledger invariants broken: {:?}", report.problems);
    all.sort();
    let per_batch = all.len() as f64 / batches.max(1) as f64;
    (
        all.len() as f64 / elapsed,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
        per_batch,
    )
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let secs = env_number("FLASH_BENCH_SECS", 5);
    println!("durable intraledger transfers, {secs} s per run");
    println!(
        "{:<9} {:>7} {:>12} {:>10} {:>10} {:>12}",
        "backend", "payers", "transfers/s", "p50 ms", "p99 ms", "avg batch"
    );
    for (backend, b) in backends() {
        for payers in env_list("FLASH_BENCH_PAYERS", "1,16,256") {
            let payers: usize = payers.parse().expect("payers");
            let (tps, p50, p99, avg_batch) = run(b, payers, secs).await;
            println!(
                "{backend:<9} {payers:>7} {tps:>12.0} {:>10.2} {:>10.2} {avg_batch:>12.1}",
                p50.as_secs_f64() * 1e3,
                p99.as_secs_f64() * 1e3
            );
        }
    }
}
