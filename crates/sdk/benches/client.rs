//! The client's local costs: unlocking the keystore with the default Argon2id parameters, and
//! syncing 100,000 transactions into the local database.
//!
//! `cargo bench -p flash-sdk --bench client` (FLASH_BENCH_TRANSACTIONS, default 100000;
//! FLASH_BENCH_PAGE, default 100 per page, the server's page size; FLASH_BENCH_UNLOCKS,
//! default 5).
//!
//! The sync reads pages from an in-process source (no network: this measures the client's
//! side, parsing aside), into a SQLite file on disk, as `LocalStore::sync_transactions` does
//! against a server. Then one incremental sync of 10 new transactions, and an offline read of
//! the newest 50.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::time::{Duration, Instant};

use flash_sdk::{KdfParams, Keystore, LocalStore, LocalTransaction, Secrets, TransactionPage};

/// A number from the environment, or `default`.
fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Transaction `i` of the synthetic history (newest has the highest `i`).
fn transaction(i: u64) -> LocalTransaction {
    LocalTransaction {
        id: format!("{i:012}"),
        wallet_id: Some("3f2504e0-4f89-41d3-9a0c-0305e82c3301".into()),
        created_at: 1_700_000_000 + i64::try_from(i).unwrap_or(0),
        direction: if i.is_multiple_of(2) { "SEND" } else { "RECEIVE" }.into(),
        status: "SUCCESS".into(),
        amount: i64::try_from(i % 10_000).unwrap_or(0) + 1,
        fee: 0,
        currency: "BTC".into(),
        memo: Some(format!("coffee #{i}")),
        counterparty: Some("bob".into()),
        detail: format!(r#"{{"id":"{i:012}","settlementVia":{{"__typename":"SettlementViaIntraLedger"}}}}"#),
    }
}

/// The page after `after` (an offset) of a history of `total`, newest first.
fn page(total: u64, size: u64, after: Option<String>) -> TransactionPage {
    let start = after.and_then(|a| a.parse::<u64>().ok()).unwrap_or(0);
    let end = (start + size).min(total);
    TransactionPage {
        transactions: (start..end).map(|k| transaction(total - k)).collect(),
        next: (end < total).then(|| end.to_string()),
    }
}

fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1_000.0
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");

    // Keystore unlock, default parameters.
    let unlocks = env_number("FLASH_BENCH_UNLOCKS", 5);
    let path = dir.path().join("keystore.json");
    let params = KdfParams::default();
    let secrets = Secrets {
        nostr_secret_key: Some("11".repeat(32)),
        ecash_mnemonic: Some("abandon ".repeat(11) + "about"),
        credentials: BTreeMap::from([("http://127.0.0.1:8080".into(), "token".into())]),
    };
    Keystore::create(&path, "correct horse battery", params, secrets).expect("create");
    let mut times: Vec<f64> = (0..unlocks)
        .map(|_| {
            let started = Instant::now();
            Keystore::open(&path, "correct horse battery").expect("open");
            millis(started.elapsed())
        })
        .collect();
    times.sort_by(f64::total_cmp);
    println!(
        "keystore unlock (Argon2id {} KiB, {} passes, {} lane): median {:.0} ms, min {:.0} ms, max {:.0} ms over {unlocks}",
        params.memory_kib,
        params.iterations,
        params.parallelism,
        times[times.len() / 2],
        times[0],
        times[times.len() - 1]
    );

    // A first sync of the whole history.
    let total = env_number("FLASH_BENCH_TRANSACTIONS", 100_000);
    let size = env_number("FLASH_BENCH_PAGE", 100);
    let mut store = LocalStore::open(&dir.path().join("flash.db")).expect("local db");
    let started = Instant::now();
    let report = store
        .sync_transactions(
            |after| std::future::ready(Ok::<_, Infallible>(page(total, size, after))),
            |_| {},
        )
        .await
        .expect("sync");
    let took = started.elapsed();
    assert_eq!(report.added, total, "every transaction stored");
    assert_eq!(store.transaction_count().expect("count"), total);
    println!(
        "first sync: {total} transactions in {} pages of {size}: {:.2} s, {:.0} transactions/s",
        report.pages,
        took.as_secs_f64(),
        total as f64 / took.as_secs_f64()
    );

    // Ten new ones on top: one page.
    let started = Instant::now();
    let report = store
        .sync_transactions(
            |after| std::future::ready(Ok::<_, Infallible>(page(total + 10, size, after))),
            |_| {},
        )
        .await
        .expect("sync");
    assert_eq!(report.added, 10);
    println!(
        "incremental sync: {} new in {} page(s): {:.1} ms",
        report.added,
        report.pages,
        millis(started.elapsed())
    );

    // Offline: the newest 50.
    let started = Instant::now();
    let newest = store.transactions(50, None).expect("read");
    assert_eq!(newest.len(), 50);
    println!("offline read of the newest 50: {:.2} ms", millis(started.elapsed()));
}
