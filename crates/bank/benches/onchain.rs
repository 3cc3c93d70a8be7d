//! On-chain benchmarks, on SQLite and PostgreSQL:
//!
//! - `batch`: the payout pass for a batch of 100 queued payouts (100 users, 100 outside
//!   addresses) against the BDK hot wallet on the `dev` chain, funded with 200 confirmed
//!   deposits of varying sizes. `Bank::onchain_payout_pass` is timed whole, and its phases
//!   are taken apart by thin timing wrappers around the real hot wallet, its signer and its
//!   state store: `HotWallet::build_payout` (BDK's builder with coin selection, the software
//!   signer, finalising, recording the wallet's changes), recording the signed batch, the
//!   broadcast to the in-process dev chain, and settling the 100 holds. Each round queues a
//!   fresh set of payouts, runs one pass, then mines a block so the batch and its change
//!   confirm.
//! - `index`: the deposit address index (`Store::onchain_address_owner`) filled with 1 M
//!   real P2WPKH regtest addresses (BIP32-derived from a fixed key) across 10,000 wallets;
//!   lookups per second and p50/p99 for 1, 16 and 64 concurrent tasks, random hits with a
//!   share of misses (valid addresses that are not in the index).
//!
//! `cargo bench -p flash-bank --bench onchain` (env: `FLASH_BENCH_PARTS=batch,index`,
//! `FLASH_BENCH_BACKENDS=sqlite,postgres`, `FLASH_BENCH_ROUNDS=50`, `FLASH_BENCH_PAYOUTS=100`,
//! `FLASH_BENCH_UTXOS=200`, `FLASH_BENCH_ADDRESSES=1000000`, `FLASH_BENCH_WALLETS=10000`,
//! `FLASH_BENCH_TASKS=1,16,64`, `FLASH_BENCH_MISS_PCT=10`, `FLASH_BENCH_SECS=5` per lookup
//! run, `FLASH_BENCH_VERBOSE=1` for every round's times, `FLASH_BENCH_ANALYZE=0` to skip
//! PostgreSQL's `ANALYZE` between rounds). PostgreSQL comes from
//! `FLASH_TEST_POSTGRES_URL` as in the tests; every database and directory the benchmark
//! creates is removed at the end.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bitcoin::bip32::{ChildNumber, DerivationPath, Xpriv, Xpub};
use bitcoin::secp256k1::Secp256k1;
use bitcoin::{Address, CompressedPublicKey, Psbt, Transaction};
use common::{backends, env_list, env_number, percentile};
use flash_bank::{Bank, BankConfig, Identity, OnchainConfig, OnchainSend, PaymentStatus, Speed};
use flash_core::onchain::{ChainError, ChainSimulator, HotWallet, PayoutOutput, Signer, WalletStateStore};
use flash_core::ports::{BoxFuture, SystemClock};
use flash_core::{AccountId, AccountLevel, Currency, Network, Sats, WalletId};
use flash_onchain::testing::{BroadcastFuture, BuildFuture, HookedHotWallet, HotWalletHooks};
use flash_onchain::{hot_descriptors, BdkHotWallet, DevChain, SoftwareSigner};
use flash_store::testing::{fresh_config, postgres_admin_url, Backend};
use flash_store::{Store, StoreConfig, Value};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The hot wallet's seed (a bench fixture, regtest only).
const HOT_SEED: [u8; 32] = [42u8; 32];
/// The seed the address-index addresses and the outside payout addresses derive from.
const OTHER_SEED: [u8; 32] = [77u8; 32];
/// The dev chain's fee estimate: 2 sat/vB.
const FEE_RATE_SAT_PER_KVB: u64 = 2_000;

// ---------------------------------------------------------------------------------------------
// Fresh stores that are removed afterwards
// ---------------------------------------------------------------------------------------------

/// What to remove when a benchmark's store is done with.
enum Leftover {
    Dir(PathBuf),
    Database(String),
}

/// A fresh, migrated store with the BTC system accounts (as `fresh_store`), and what to remove
/// afterwards.
async fn bench_store(backend: Backend) -> (Store, Leftover) {
    let config = fresh_config(backend).await;
    let leftover = match &config {
        StoreConfig::Sqlite { path } => Leftover::Dir(path.parent().map(PathBuf::from).unwrap_or_default()),
        StoreConfig::Postgres { url } => Leftover::Database(url.rsplit('/').next().unwrap_or_default().to_string()),
    };
    let store = Store::open(&config, Arc::new(SystemClock)).await.expect("open store");
    store
        .ensure_system_accounts(Currency::Btc)
        .await
        .expect("system accounts");
    (store, leftover)
}

/// On PostgreSQL, vacuums and analyzes `tables` as autovacuum would have by the time an index
/// has grown over months (hint bits, the visibility map, the planner's statistics; the server
/// here runs with autovacuum off). `VACUUM` cannot run in a transaction, so it gets its own
/// connection. SQLite is left as the store runs it.
async fn vacuum_analyze(leftover: &Leftover, tables: &[&str]) {
    if let Leftover::Database(name) = leftover {
        let admin = postgres_admin_url();
        let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
        let (client, conn) = tokio_postgres::connect(&format!("{base}/{name}"), tokio_postgres::NoTls)
            .await
            .expect("connect to vacuum");
        tokio::spawn(conn);
        for table in tables {
            client
                .batch_execute(&format!("VACUUM ANALYZE {table}"))
                .await
                .expect("vacuum");
        }
    }
}

/// Removes a benchmark's database or directory when dropped, also when the benchmark panics
/// (the store's connections may still be open: `WITH (FORCE)` ends them).
impl Drop for Leftover {
    fn drop(&mut self) {
        match self {
            Leftover::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Leftover::Database(name) => {
                let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                // Its own thread and runtime: this may run inside the benchmark's runtime.
                let dropped = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .map_err(|e| e.to_string())?;
                    runtime.block_on(async {
                        let (client, conn) = tokio_postgres::connect(&postgres_admin_url(), tokio_postgres::NoTls)
                            .await
                            .map_err(|e| e.to_string())?;
                        tokio::spawn(conn);
                        client.batch_execute(&sql).await.map_err(|e| e.to_string())
                    })
                })
                .join();
                if !matches!(dropped, Ok(Ok(()))) {
                    eprintln!("could not drop bench database {name}: {dropped:?}");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

/// The BIP84 account key m/84'/1'/0' of `seed`, regtest.
fn account_xpub(seed: &[u8]) -> Xpub {
    let secp = Secp256k1::new();
    let master = Xpriv::new_master(bitcoin::Network::Regtest, seed).expect("master key");
    let path: DerivationPath = "m/84'/1'/0'".parse().expect("path");
    Xpub::from_priv(&secp, &master.derive_priv(&secp, &path).expect("derive"))
}

/// P2WPKH addresses `from..to` of `branch` (0 receive, 1 change) under `account`, derived on
/// all cores.
fn derive_addresses(account: &Xpub, branch: u32, from: u32, to: u32) -> Vec<String> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    let per = (to - from).div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let parts: Vec<_> = (0..threads)
            .map(|t| {
                let start = (from + t * per).min(to);
                let end = (start + per).min(to);
                scope.spawn(move || {
                    let secp = Secp256k1::verification_only();
                    let chain = account
                        .ckd_pub(&secp, ChildNumber::from_normal_idx(branch).expect("branch"))
                        .expect("branch key");
                    (start..end)
                        .map(|i| {
                            let child = chain
                                .ckd_pub(&secp, ChildNumber::from_normal_idx(i).expect("index"))
                                .expect("child key");
                            Address::p2wpkh(&CompressedPublicKey(child.public_key), bitcoin::Network::Regtest)
                                .to_string()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("derivation thread"))
            .collect()
    })
}

// ---------------------------------------------------------------------------------------------
// Timing probes around the real hot wallet
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq)]
enum Span {
    /// `HotWallet::build_payout`, whole.
    Build,
    /// The signer's `sign_psbt`.
    Sign,
    /// The wallet recording its changes in the store.
    Persist,
    /// `HotWallet::broadcast`.
    Broadcast,
}

/// Spans recorded during one payout pass, and the inputs of the transaction built.
#[derive(Default)]
struct Probe {
    spans: Mutex<Vec<(Span, Instant, Instant)>>,
    inputs: AtomicUsize,
}

impl Probe {
    fn record(&self, span: Span, start: Instant) {
        self.spans.lock().expect("probe").push((span, start, Instant::now()));
    }
    fn take(&self) -> Vec<(Span, Instant, Instant)> {
        std::mem::take(&mut *self.spans.lock().expect("probe"))
    }
}

struct TimedSigner {
    inner: SoftwareSigner,
    probe: Arc<Probe>,
}

impl Signer for TimedSigner {
    fn sign_psbt(&self, psbt: Psbt) -> BoxFuture<'_, Result<Psbt, ChainError>> {
        Box::pin(async move {
            let start = Instant::now();
            let signed = self.inner.sign_psbt(psbt).await;
            self.probe.record(Span::Sign, start);
            signed
        })
    }
}

struct TimedState {
    inner: Store,
    probe: Arc<Probe>,
}

impl WalletStateStore for TimedState {
    fn load_wallet_state<'a>(&'a self, wallet: &'a str) -> BoxFuture<'a, Result<Vec<String>, ChainError>> {
        self.inner.load_wallet_state(wallet)
    }
    fn append_wallet_state<'a>(&'a self, wallet: &'a str, change: String) -> BoxFuture<'a, Result<(), ChainError>> {
        Box::pin(async move {
            let start = Instant::now();
            let done = self.inner.append_wallet_state(wallet, change).await;
            self.probe.record(Span::Persist, start);
            done
        })
    }
}

/// The hot wallet's payouts and broadcasts, timed (around the real wallet:
/// [`HookedHotWallet`]).
struct Timed(Arc<Probe>);

impl HotWalletHooks for Timed {
    fn build_payout<'a>(&'a self, inner: &'a dyn HotWallet, outputs: &'a [PayoutOutput], rate: u64) -> BuildFuture<'a> {
        Box::pin(async move {
            let start = Instant::now();
            let built = inner.build_payout(outputs, rate).await;
            self.0.record(Span::Build, start);
            if let Ok(signed) = &built {
                self.0.inputs.store(signed.tx.input.len(), Ordering::Relaxed);
            }
            built
        })
    }
    fn broadcast<'a>(&'a self, inner: &'a dyn HotWallet, tx: &'a Transaction) -> BroadcastFuture<'a> {
        Box::pin(async move {
            let start = Instant::now();
            let sent = inner.broadcast(tx).await;
            self.0.record(Span::Broadcast, start);
            sent
        })
    }
}

// ---------------------------------------------------------------------------------------------
// The 100-output batch
// ---------------------------------------------------------------------------------------------

/// One pass taken apart.
#[derive(Default)]
struct PassTimes {
    /// Before `build_payout`: finishing earlier work, the queue read, the fee rate.
    before: Duration,
    /// `build_payout` whole (build + sign + finalise + recording the wallet's changes).
    build_payout: Duration,
    /// Of which the signer.
    sign: Duration,
    /// Of which recording the wallet's changes in the store.
    persist: Duration,
    /// From `build_payout`'s answer to the broadcast: the batch row and the payouts' rows
    /// written in one transaction.
    record: Duration,
    /// The broadcast to the dev chain.
    broadcast: Duration,
    /// After the broadcast: marking the batch broadcast and settling every payout's hold.
    settle: Duration,
    /// The whole pass.
    total: Duration,
}

fn between(spans: &[(Span, Instant, Instant)], kind: Span, from: Instant, to: Instant) -> Duration {
    spans
        .iter()
        .filter(|(k, s, e)| *k == kind && *s >= from && *e <= to)
        .map(|(_, s, e)| *e - *s)
        .sum()
}

fn take_apart(start: Instant, end: Instant, spans: &[(Span, Instant, Instant)]) -> PassTimes {
    let one = |kind: Span| {
        let found: Vec<_> = spans.iter().filter(|(k, _, _)| *k == kind).collect();
        assert_eq!(found.len(), 1, "one build and one broadcast per pass");
        (found[0].1, found[0].2)
    };
    let (build_start, build_end) = one(Span::Build);
    let (sent_start, sent_end) = one(Span::Broadcast);
    PassTimes {
        before: build_start - start,
        build_payout: build_end - build_start,
        sign: between(spans, Span::Sign, build_start, build_end),
        persist: between(spans, Span::Persist, build_start, build_end),
        record: sent_start - build_end,
        broadcast: sent_end - sent_start,
        settle: end - sent_end,
        total: end - start,
    }
}

async fn member(bank: &Bank, name: &str) -> (AccountId, WalletId) {
    let (_, account) = bank
        .user_for_identity(&Identity::Device(name.to_string()))
        .await
        .expect("sign up");
    bank.set_account_level("bench", account.id, AccountLevel::Three)
        .await
        .expect("level");
    (account.id, account.default_wallet_id)
}

struct BatchRun {
    passes: Vec<PassTimes>,
    inputs: Vec<usize>,
}

async fn batch_run(backend: Backend, rounds: usize, payouts: usize, utxos: usize) -> BatchRun {
    let (store, leftover) = bench_store(backend).await;
    let dir = std::env::temp_dir().join(format!(
        "flash_bench_chain_{}_{}",
        std::process::id(),
        uuid::Uuid::new_v4().simple()
    ));
    let chain_dir = Leftover::Dir(dir.clone());
    let chain = Arc::new(DevChain::open(&dir, Network::Regtest, FEE_RATE_SAT_PER_KVB).expect("dev chain"));
    let probe = Arc::new(Probe::default());
    let descriptors = hot_descriptors(&HOT_SEED, Network::Regtest).expect("descriptors");
    let signer = Arc::new(TimedSigner {
        inner: SoftwareSigner::new(&HOT_SEED, Network::Regtest).expect("signer"),
        probe: probe.clone(),
    });
    let state = Arc::new(TimedState {
        inner: store.clone(),
        probe: probe.clone(),
    });
    let hot = BdkHotWallet::open("hot", &descriptors, chain.clone(), state, signer)
        .await
        .expect("hot wallet");
    let wallet = Arc::new(HookedHotWallet {
        inner: Arc::new(hot),
        hooks: Timed(probe.clone()),
    });
    let config = BankConfig {
        onchain: OnchainConfig {
            max_batch_payouts: u32::try_from(payouts).expect("payouts"),
            ..OnchainConfig::default()
        },
        ..BankConfig::default()
    };
    let bank = Bank::new(store.clone(), config).with_onchain(wallet, Some(chain.clone()));
    let mut rng = StdRng::seed_from_u64(7);

    // The hot wallet's coins: deposits of 0.001–0.1 BTC to a treasury member's addresses,
    // confirmed and credited.
    let (treasury, treasury_wallet) = member(&bank, "treasury").await;
    let mut addresses = Vec::new();
    for _ in 0..10 {
        addresses.push(
            bank.onchain_address_create(treasury, treasury_wallet)
                .await
                .expect("address"),
        );
    }
    let mut deposited = 0;
    for i in 0..utxos {
        let sats = rng.gen_range(100_000..=10_000_000);
        deposited += sats;
        chain
            .deposit(&addresses[i % addresses.len()], Sats::positive(sats).expect("sats"))
            .await
            .expect("deposit");
    }
    bank.dev_chain_mine(2).await.expect("mine");
    assert_eq!(
        bank.store_for_tests()
            .wallet_balance(treasury_wallet)
            .await
            .expect("balance"),
        deposited,
        "every deposit credited"
    );

    let outside = derive_addresses(&account_xpub(&OTHER_SEED), 0, 0, payouts as u32);
    let mut members = Vec::new();
    for i in 0..payouts {
        let (account, wallet_id) = member(&bank, &format!("payer-{i}")).await;
        bank.wallet_fund("bench", wallet_id, 20_000_000, None)
            .await
            .expect("fund");
        members.push((account, wallet_id));
    }

    let verbose = env_number("FLASH_BENCH_VERBOSE", 0) != 0;
    let analyze = env_number("FLASH_BENCH_ANALYZE", 1) != 0;
    if analyze {
        analyze_postgres(&store).await;
    }
    let mut run = BatchRun {
        passes: Vec::new(),
        inputs: Vec::new(),
    };
    for _ in 0..rounds {
        let sends = members.iter().zip(&outside).map(|(&(account, wallet_id), address)| {
            let bank = bank.clone();
            let req = OnchainSend {
                account,
                wallet_id,
                address: address.clone(),
                amount: Some(rng.gen_range(10_000..=200_000)),
                speed: Speed::Medium,
                memo: None,
                idempotency_key: None,
            };
            async move { bank.onchain_send(req).await }
        });
        for sent in futures_util::future::join_all(sends).await {
            assert_eq!(sent.expect("queued").status, PaymentStatus::Pending);
        }
        probe.take();
        let start = Instant::now();
        let report = bank.onchain_payout_pass(true).await.expect("pass");
        let end = Instant::now();
        assert_eq!(
            (report.broadcast, report.settled),
            (1, payouts as u32),
            "one transaction for all payouts"
        );
        let times = take_apart(start, end, &probe.take());
        if verbose {
            println!(
                "  round {:>3}: build_payout {:>6.2} ms, record {:>6.2} ms, settle {:>7.2} ms, pass {:>7.2} ms",
                run.passes.len() + 1,
                ms(times.build_payout),
                ms(times.record),
                ms(times.settle),
                ms(times.total)
            );
        }
        run.passes.push(times);
        run.inputs.push(probe.inputs.load(Ordering::Relaxed));
        // The batch and its change confirm before the next round.
        bank.dev_chain_mine(1).await.expect("mine");
        if analyze {
            analyze_postgres(&store).await;
        }
    }
    let batches = bank.onchain_batch_history(1_000).await.expect("batches");
    assert_eq!(batches.len(), rounds);
    let report = bank.verify_ledger().await.expect("verify");
    assert!(report.ok(), "ledger invariants broken: {:?}", report.problems);
    drop((bank, store, chain));
    drop((chain_dir, leftover));
    run
}

/// On PostgreSQL, `ANALYZE` (outside the timed pass), as autovacuum would after the tables
/// grew; it also makes the connections re-plan their prepared statements. The server here runs
/// with autovacuum off: without this, the ledger posts were seen scanning `journals` and
/// `holds` sequentially (apparently plans cached while the tables were nearly empty) and the
/// pass slows down round after round (`FLASH_BENCH_ANALYZE=0` shows it).
async fn analyze_postgres(store: &Store) {
    if store.backend() == "postgres" {
        store.db().execute("ANALYZE", vec![]).await.expect("analyze");
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

async fn batch_bench() {
    let rounds = env_number("FLASH_BENCH_ROUNDS", 50) as usize;
    let payouts = env_number("FLASH_BENCH_PAYOUTS", 100) as usize;
    let utxos = env_number("FLASH_BENCH_UTXOS", 200) as usize;
    println!("Payout pass: {payouts}-output batches from {utxos} confirmed deposits, {rounds} rounds");
    println!(
        "{:<9} {:<34} {:>9} {:>9} {:>9}",
        "backend", "phase", "p50 ms", "p99 ms", "mean ms"
    );
    for (name, backend) in backends() {
        let run = batch_run(backend, rounds, payouts, utxos).await;
        type Pick = fn(&PassTimes) -> Duration;
        let phases: [(&str, Pick); 10] = [
            ("build_payout (build+sign+keep)", |p| p.build_payout),
            ("  of which BDK build+coin sel.", |p| {
                p.build_payout - p.sign - p.persist
            }),
            ("  of which sign", |p| p.sign),
            ("  of which wallet state write", |p| p.persist),
            ("record batch + payouts", |p| p.record),
            ("build+sign+record", |p| p.build_payout + p.record),
            ("broadcast (dev chain)", |p| p.broadcast),
            ("settle holds", |p| p.settle),
            ("before build (reads, fee rate)", |p| p.before),
            ("whole pass", |p| p.total),
        ];
        for (phase, pick) in phases {
            let mut times: Vec<Duration> = run.passes.iter().map(pick).collect();
            times.sort();
            let mean = times.iter().sum::<Duration>() / u32::try_from(times.len().max(1)).expect("rounds");
            println!(
                "{name:<9} {phase:<34} {:>9.2} {:>9.2} {:>9.2}",
                ms(percentile(&times, 0.5)),
                ms(percentile(&times, 0.99)),
                ms(mean)
            );
        }
        let (min, max) = (
            run.inputs.iter().min().copied().unwrap_or(0),
            run.inputs.iter().max().copied().unwrap_or(0),
        );
        let mean = run.inputs.iter().sum::<usize>() as f64 / run.inputs.len().max(1) as f64;
        println!("{name:<9} inputs per transaction: mean {mean:.1}, min {min}, max {max}");
    }
}

// ---------------------------------------------------------------------------------------------
// The address index
// ---------------------------------------------------------------------------------------------

/// The same statement as `Store::insert_onchain_address`, for the bulk fill in one transaction
/// per chunk through `Db::script`.
const INSERT_ADDRESS: &str = "INSERT INTO onchain_addresses (address, wallet_id, derivation_index, created_at) \
                              VALUES ($1, $2, $3, $4)";
const OWNER_QUERY: &str =
    "SELECT a.wallet_id, w.account_id FROM onchain_addresses a JOIN wallets w ON w.id = a.wallet_id \
                           WHERE a.address = $1";

/// What the lookups ask for: address `i` of `hits` belongs to wallet `i % wallets.len()`.
struct Lookups {
    store: Store,
    hits: Arc<Vec<String>>,
    misses: Arc<Vec<String>>,
    wallets: Arc<Vec<WalletId>>,
    miss_pct: u64,
    secs: f64,
}

/// Lookups per second, p50, p99, for `tasks` concurrent tasks over the first `known` hits.
async fn lookups(l: &Lookups, known: usize, tasks: usize) -> (f64, Duration, Duration) {
    let deadline = Instant::now() + Duration::from_secs_f64(l.secs);
    let start = Instant::now();
    let miss_pct = l.miss_pct;
    let workers = (0..tasks).map(|t| {
        let (store, hits, misses, wallets) = (l.store.clone(), l.hits.clone(), l.misses.clone(), l.wallets.clone());
        tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(1_000 + t as u64);
            let mut latencies = Vec::new();
            while Instant::now() < deadline {
                let miss = rng.gen_range(0..100) < miss_pct;
                let i = rng.gen_range(0..if miss { misses.len() } else { known });
                let address = if miss { &misses[i] } else { &hits[i] };
                let t0 = Instant::now();
                let owner = store.onchain_address_owner(address).await.expect("lookup");
                latencies.push(t0.elapsed());
                match owner {
                    Some(owner) => assert!(!miss && owner.wallet_id == wallets[i % wallets.len()]),
                    None => assert!(miss, "a known address not found"),
                }
            }
            latencies
        })
    });
    let mut all = Vec::new();
    for w in futures_util::future::join_all(workers).await {
        all.extend(w.expect("lookup task"));
    }
    let elapsed = start.elapsed().as_secs_f64();
    all.sort();
    (
        all.len() as f64 / elapsed,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    )
}

/// The query plan of the owner lookup, one line.
async fn plan(store: &Store, address: &str) -> String {
    let (sql, column) = match store.backend() {
        "sqlite" => (format!("EXPLAIN QUERY PLAN {OWNER_QUERY}"), 3),
        _ => (format!("EXPLAIN {OWNER_QUERY}"), 0),
    };
    let rows = store
        .db()
        .query(&sql, vec![Value::from(address)])
        .await
        .expect("explain");
    rows.iter()
        .map(|r| r.text(column).expect("plan line").trim().to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

async fn index_bench() {
    let n = env_number("FLASH_BENCH_ADDRESSES", 1_000_000) as u32;
    let wallet_count = env_number("FLASH_BENCH_WALLETS", 10_000) as usize;
    let miss_pct = env_number("FLASH_BENCH_MISS_PCT", 10);
    let secs = env_number("FLASH_BENCH_SECS", 5) as f64;
    let task_counts: Vec<usize> = env_list("FLASH_BENCH_TASKS", "1,16,64")
        .iter()
        .map(|t| t.parse().expect("tasks"))
        .collect();
    // The first 1% goes in through `insert_onchain_address`, one statement and commit each.
    let first = (n / 100).max(1).min(n);

    let started = Instant::now();
    let account = account_xpub(&OTHER_SEED);
    let hits = Arc::new(derive_addresses(&account, 0, 0, n));
    let misses = Arc::new(derive_addresses(&account, 1, 0, (n / 10).max(1_000)));
    println!(
        "Address index: {n} P2WPKH regtest addresses over {wallet_count} wallets, {miss_pct}% misses, \
         {secs} s per run (derived {} addresses in {:.1} s)",
        hits.len() + misses.len(),
        started.elapsed().as_secs_f64()
    );
    for (name, backend) in backends() {
        let (store, leftover) = bench_store(backend).await;
        let bank = Bank::new(store.clone(), BankConfig::default());

        // The wallets, signed up 16 at a time.
        let started = Instant::now();
        let mut wallets = Vec::with_capacity(wallet_count);
        for chunk in (0..wallet_count).collect::<Vec<_>>().chunks(16) {
            let signups = chunk.iter().map(|i| {
                let bank = bank.clone();
                async move {
                    bank.user_for_identity(&Identity::Device(format!("holder-{i}")))
                        .await
                        .expect("sign up")
                        .1
                        .default_wallet_id
                }
            });
            wallets.extend(futures_util::future::join_all(signups).await);
        }
        let wallets = Arc::new(wallets);
        println!(
            "{name}: {wallet_count} sign-ups in {:.1} s",
            started.elapsed().as_secs_f64()
        );

        // The first 1%: the store's own insert, 16 concurrent callers.
        let started = Instant::now();
        let next = Arc::new(AtomicUsize::new(0));
        let inserters = (0..16).map(|_| {
            let (store, hits, wallets, next) = (store.clone(), hits.clone(), wallets.clone(), next.clone());
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= first as usize {
                        return;
                    }
                    store
                        .insert_onchain_address(&hits[i], wallets[i % wallets.len()], i as u32)
                        .await
                        .expect("insert address");
                }
            })
        });
        for task in futures_util::future::join_all(inserters).await {
            task.expect("inserter");
        }
        let one_by_one = started.elapsed().as_secs_f64();
        println!(
            "{name}: {first} addresses with insert_onchain_address (16 callers) in {one_by_one:.1} s: {:.0}/s",
            f64::from(first) / one_by_one
        );
        let spec = Lookups {
            store: store.clone(),
            hits: hits.clone(),
            misses: misses.clone(),
            wallets: wallets.clone(),
            miss_pct,
            secs,
        };
        vacuum_analyze(&leftover, &["onchain_addresses", "wallets"]).await;
        let (lps_small, p50_small, p99_small) = lookups(&spec, first as usize, 1).await;

        // The rest: chunks of 5,000 rows per transaction through `Db::script`, 4 at a time.
        let started = Instant::now();
        let chunks: Vec<(u32, u32)> = (first..n)
            .step_by(5_000)
            .map(|from| (from, (from + 5_000).min(n)))
            .collect();
        let now = store.now_ms();
        for group in chunks.chunks(4) {
            let writes = group.iter().map(|&(from, to)| {
                let statements = (from..to)
                    .map(|i| {
                        let wallet = wallets[i as usize % wallets.len()];
                        (
                            INSERT_ADDRESS.to_string(),
                            vec![
                                Value::from(hits[i as usize].as_str()),
                                Value::from(wallet.to_string()),
                                Value::from(i64::from(i)),
                                Value::from(now),
                            ],
                        )
                    })
                    .collect();
                let db = store.db().clone();
                async move { db.script(statements).await }
            });
            for written in futures_util::future::join_all(writes).await {
                written.expect("bulk insert");
            }
        }
        let bulk = started.elapsed().as_secs_f64();
        println!(
            "{name}: {} more addresses in chunks of 5,000 rows per transaction in {bulk:.1} s: {:.0}/s",
            n - first,
            f64::from(n - first) / bulk
        );
        let count = store
            .db()
            .query("SELECT COUNT(*) FROM onchain_addresses", vec![])
            .await
            .expect("count")[0]
            .int(0)
            .expect("count");
        assert_eq!(count, i64::from(n));
        let started = Instant::now();
        vacuum_analyze(&leftover, &["onchain_addresses", "wallets"]).await;
        if backend == Backend::Postgres {
            println!("{name}: VACUUM ANALYZE in {:.1} s", started.elapsed().as_secs_f64());
        }
        println!("{name}: plan: {}", plan(&store, &hits[0]).await);

        println!(
            "{:<9} {:>9} {:>6} {:>12} {:>9} {:>9}",
            "backend", "addresses", "tasks", "lookups/s", "p50 ms", "p99 ms"
        );
        println!(
            "{name:<9} {first:>9} {:>6} {lps_small:>12.0} {:>9.3} {:>9.3}",
            1,
            ms(p50_small),
            ms(p99_small)
        );
        for &tasks in &task_counts {
            let (lps, p50, p99) = lookups(&spec, n as usize, tasks).await;
            println!(
                "{name:<9} {n:>9} {tasks:>6} {lps:>12.0} {:>9.3} {:>9.3}",
                ms(p50),
                ms(p99)
            );
        }
        drop((spec, bank, store, leftover));
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    for part in env_list("FLASH_BENCH_PARTS", "batch,index") {
        match part.as_str() {
            "batch" => batch_bench().await,
            "index" => index_bench().await,
            other => panic!("unknown part {other}"),
        }
    }
}
