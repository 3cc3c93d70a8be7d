//! Cashu swaps per second, 3 inputs → 3 outputs (1 + 2 + 4 sats), with p50/p99 latency, for
//! 1, 8 and 32 concurrent clients, over HTTP against:
//!
//! - `flashd` on SQLite (its default, in a temp data dir),
//! - `flashd` on PostgreSQL (a database `flash_bench_<pid>_<n>` created and dropped here),
//! - CDK's reference mint `cdk-mintd` (fake Lightning wallet, its default SQLite database, in a
//!   temp work dir; skipped with a message when the binary is not found),
//!
//! and, for reference, Flash's engine in process (`flash_mint::Mint::swap`, no HTTP) on SQLite
//! and PostgreSQL.
//!
//! Every client is a minimal wallet: it first mints 7 sats of notes (mint quote → the quote's
//! invoice paid from outside: `devLightningPayInvoice` with the admin key `flashd` prints on
//! first start, or the fake wallet's automatic payment on `cdk-mintd` → `POST /v1/mint/bolt11`),
//! then loops: `POST /v1/swap` with its 3 current proofs and 3 fresh blinded outputs of the same
//! amounts, and unblinds the signatures (`cashu::dhke`) into its next 3 proofs. Input fees are 0
//! on every mint, so the amounts never change. A swap's latency is the request alone (request
//! JSON out → response JSON parsed); blinding and unblinding are client work outside it, but
//! inside the throughput. Any non-200 answer, or signatures that do not unblind, is counted and
//! fails the run. Afterwards every client swaps once more (checking the last round's proofs),
//! the new proofs must be unspent (NUT-07), and on Flash the mint's books must balance with
//! exactly the clients' notes outstanding.
//!
//! `cargo bench -p flashd --bench ecash_swaps` (Cargo builds `flashd` with the bench profile,
//! i.e. release, and passes its path as `CARGO_BIN_EXE_flashd`). Environment:
//!
//! - `FLASH_BENCH_SECS` measured seconds per run (default 10), after `FLASH_BENCH_WARMUP_SECS`
//!   (default 1) not measured;
//! - `FLASH_BENCH_CLIENTS=1,8,32`;
//! - `FLASH_BENCH_TARGETS=flashd-sqlite,flashd-postgres,cdk-mintd,engine-sqlite,engine-postgres`;
//! - `FLASH_BENCH_CDK_MINTD`: the `cdk-mintd` binary (default `~/.cargo/bin/cdk-mintd`, then
//!   `PATH`);
//! - `FLASH_TEST_POSTGRES_URL`: the PostgreSQL admin URL (default
//!   `postgres://postgres@127.0.0.1:5432/postgres`).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/shared.rs"]
mod shared;
use shared::{env_list, env_number, percentile, PeerProcess, PgDatabase};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use std::sync::Arc;
use std::time::{Duration, Instant};

use cashu::dhke;
use cashu::nuts::{
    BlindSignature, BlindedMessage, CheckStateRequest, CheckStateResponse, CurrencyUnit, Id, Keys, KeysResponse,
    MintQuoteBolt11Request, MintQuoteBolt11Response, MintRequest, MintResponse, Proofs, SecretKey, State, SwapRequest,
    SwapResponse,
};
use cashu::secret::Secret;
use cashu::Amount;
use common::{free_port, Api, Flashd, Launch, TempDir};
use flash_bank::{Bank, BankConfig};
use flash_core::lightning::DevOutcome;
use flash_core::ports::SystemClock;
use flash_core::secrets::KeyEncryptionKey;
use flash_core::{Currency, Network};
use flash_lightning::DevNode;
use flash_mint::{Mint, MintConfig};
use flash_store::{Store, StoreConfig};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::json;

/// The notes each client holds and swaps: 3 inputs → 3 outputs of these amounts.
const AMOUNTS: [u64; 3] = [1, 2, 4];
/// How long a mint may take to start or a quote to be paid.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// The throwaway BIP39 test mnemonic of the fake-wallet `cdk-mintd` (no real funds).
const CDK_MNEMONIC: &str =
    "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about";

const PAY_FROM_OUTSIDE: &str =
    "mutation($r: String!) { devLightningPayInvoice(input: {paymentRequest: $r}) { errors { code message } } }";
const ECASH_STATUS: &str = "query { ecashStatus { outstanding ledgerOutstanding balanced pending } }";

// ---------------------------------------------------------------------------------------------
// Settings

// ---------------------------------------------------------------------------------------------
// The wallet: blinding and unblinding

/// Outputs being built: what the wallet keeps to unblind the signatures.
struct Premint {
    outputs: Vec<BlindedMessage>,
    secrets: Vec<Secret>,
    factors: Vec<SecretKey>,
}

fn premint(id: Id, amounts: &[u64]) -> Premint {
    let mut p = Premint {
        outputs: Vec::with_capacity(amounts.len()),
        secrets: Vec::with_capacity(amounts.len()),
        factors: Vec::with_capacity(amounts.len()),
    };
    for amount in amounts {
        let secret = Secret::generate();
        let (blinded, r) = dhke::blind_message(secret.as_bytes(), None).expect("blind a message");
        p.outputs.push(BlindedMessage::new(Amount::from(*amount), id, blinded));
        p.secrets.push(secret);
        p.factors.push(r);
    }
    p
}

impl Premint {
    /// Unblinds the mint's signatures into proofs: one per output, of its amount and keyset.
    fn unblind(self, sigs: Vec<BlindSignature>, keys: &Keys) -> Result<Proofs, String> {
        if sigs.len() != self.outputs.len() {
            return Err(format!("{} signatures for {} outputs", sigs.len(), self.outputs.len()));
        }
        for (sig, out) in sigs.iter().zip(&self.outputs) {
            if sig.amount != out.amount || sig.keyset_id != out.keyset_id {
                return Err(format!(
                    "signature of {} in {} for an output of {} in {}",
                    sig.amount, sig.keyset_id, out.amount, out.keyset_id
                ));
            }
        }
        dhke::construct_proofs(sigs, self.factors, self.secrets, keys).map_err(|e| format!("unblind: {e}"))
    }
}

fn total(proofs: &Proofs) -> u64 {
    proofs.iter().map(|p| p.amount.to_u64()).sum()
}

// ---------------------------------------------------------------------------------------------
// The mints under test

/// How a mint quote's invoice gets paid.
#[derive(Clone)]
enum Funding {
    /// `flashd`: the admin pays it from the simulated outside.
    Flashd { api: Api, admin_key: String },
    /// `cdk-mintd`'s fake wallet pays its own invoices.
    FakeWallet,
}

/// A mint over HTTP.
#[derive(Clone)]
struct HttpMint {
    base: String,
    swap_url: String,
    http: reqwest::Client,
    funding: Funding,
}

/// A mint under test with its active sat keyset.
#[derive(Clone)]
struct Target {
    kind: Kind,
    id: Id,
    keys: Keys,
}

#[derive(Clone)]
enum Kind {
    Http(HttpMint),
    /// Flash's engine, called in process.
    Engine {
        mint: Mint,
    },
}

impl HttpMint {
    fn new(base: &str, funding: Funding) -> HttpMint {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .expect("reqwest client");
        HttpMint {
            base: base.trim_end_matches('/').to_string(),
            swap_url: format!("{}/v1/swap", base.trim_end_matches('/')),
            http,
            funding,
        }
    }

    async fn answer<T: DeserializeOwned>(resp: reqwest::Response, what: &str) -> Result<T, String> {
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(|e| format!("{what}: body: {e}"))?;
        if status != reqwest::StatusCode::OK {
            return Err(format!("{what}: HTTP {status}: {}", String::from_utf8_lossy(&bytes)));
        }
        serde_json::from_slice(&bytes)
            .map_err(|e| format!("{what}: unexpected body ({e}): {}", String::from_utf8_lossy(&bytes)))
    }

    async fn post<B: Serialize, T: DeserializeOwned>(&self, url: &str, body: &B) -> Result<T, String> {
        let resp = self
            .http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| format!("POST {url}: {e}"))?;
        HttpMint::answer(resp, url).await
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {url}: {e}"))?;
        HttpMint::answer(resp, &url).await
    }

    /// The active sat keyset; its input fee must be 0.
    async fn keyset(&self) -> (Id, Keys) {
        let keys: KeysResponse = self.get("/v1/keys").await.expect("GET /v1/keys");
        let set = keys
            .keysets
            .into_iter()
            .find(|k| k.unit == CurrencyUnit::Sat && k.active != Some(false))
            .expect("an active sat keyset");
        assert_eq!(set.input_fee_ppk, 0, "the benchmark needs input fees of 0");
        (set.id, set.keys)
    }
}

impl Target {
    async fn http(mint: HttpMint) -> Target {
        let (id, keys) = mint.keyset().await;
        Target {
            kind: Kind::Http(mint),
            id,
            keys,
        }
    }

    fn engine(mint: Mint) -> Target {
        let ks = mint.keyring().active(&CurrencyUnit::Sat).expect("active keyset");
        assert_eq!(ks.input_fee_ppk, 0, "the benchmark needs input fees of 0");
        Target {
            id: ks.id,
            keys: ks.public_keys(),
            kind: Kind::Engine { mint },
        }
    }

    async fn swap(&self, req: &SwapRequest) -> Result<SwapResponse, String> {
        match &self.kind {
            Kind::Http(m) => m.post(&m.swap_url, req).await,
            Kind::Engine { mint } => mint.swap(req.clone()).await.map_err(|e| format!("swap: {e}")),
        }
    }

    /// Mints the notes of one client (`AMOUNTS`), paying the quote's invoice from outside.
    async fn mint_notes(&self) -> Proofs {
        let amount: u64 = AMOUNTS.iter().sum();
        let quote_req = MintQuoteBolt11Request {
            amount: Amount::from(amount),
            unit: CurrencyUnit::Sat,
            description: None,
            pubkey: None,
        };
        let pre = premint(self.id, &AMOUNTS);
        let sigs = match &self.kind {
            Kind::Engine { mint } => {
                let quote = mint.mint_quote(quote_req).await.expect("mint quote");
                mint.bank()
                    .dev_ln_pay_from_outside(&quote.request, None)
                    .await
                    .expect("quote invoice paid from outside");
                let req = MintRequest {
                    quote: quote.quote,
                    outputs: pre.outputs.clone(),
                    signature: None,
                };
                mint.mint(req).await.expect("mint").signatures
            }
            Kind::Http(m) => {
                let url = format!("{}/v1/mint/quote/bolt11", m.base);
                let quote: MintQuoteBolt11Response<String> = m.post(&url, &quote_req).await.expect("mint quote");
                if let Funding::Flashd { api, admin_key } = &m.funding {
                    let paid = api
                        .admin(admin_key, PAY_FROM_OUTSIDE, json!({ "r": quote.request }))
                        .await;
                    assert_eq!(paid["devLightningPayInvoice"]["errors"], json!([]), "{paid}");
                }
                let deadline = Instant::now() + READY_TIMEOUT;
                loop {
                    let now: MintQuoteBolt11Response<String> = m
                        .get(&format!("/v1/mint/quote/bolt11/{}", quote.quote))
                        .await
                        .expect("mint quote state");
                    if now.state == cashu::nuts::MintQuoteState::Paid {
                        break;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "mint quote {} not paid: {:?}",
                        quote.quote,
                        now.state
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                let req = MintRequest {
                    quote: quote.quote,
                    outputs: pre.outputs.clone(),
                    signature: None,
                };
                let url = format!("{}/v1/mint/bolt11", m.base);
                let minted: MintResponse = m.post(&url, &req).await.expect("mint");
                minted.signatures
            }
        };
        pre.unblind(sigs, &self.keys).expect("minted notes unblind")
    }

    /// Whether these proofs are all unspent (NUT-07).
    async fn all_unspent(&self, proofs: &Proofs) -> bool {
        let ys = proofs.iter().map(|p| p.y().expect("Y")).collect();
        let req = CheckStateRequest { ys };
        let states: CheckStateResponse = match &self.kind {
            Kind::Http(m) => m
                .post(&format!("{}/v1/checkstate", m.base), &req)
                .await
                .expect("checkstate"),
            Kind::Engine { mint } => mint.check_state(req).await.expect("check state"),
        };
        states.states.len() == proofs.len() && states.states.iter().all(|s| s.state == State::Unspent)
    }
}

/// One swap of a client's notes for new ones: the new proofs and the request's latency.
async fn swap_once(target: &Target, proofs: Proofs) -> Result<(Proofs, Duration), String> {
    let pre = premint(target.id, &AMOUNTS);
    let req = SwapRequest::new(proofs, pre.outputs.clone());
    let started = Instant::now();
    let answer = target.swap(&req).await?;
    let took = started.elapsed();
    let next = pre.unblind(answer.signatures, &target.keys)?;
    Ok((next, took))
}

// ---------------------------------------------------------------------------------------------
// The load

/// One run's figures.
struct Figures {
    target: String,
    clients: usize,
    swaps: usize,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

/// `wallets.len()` clients swap for `warmup + measured`; swaps started during the measured part
/// count. Returns the wallets' new notes.
async fn run_level(
    target: &Arc<Target>,
    name: &str,
    wallets: Vec<Proofs>,
    warmup: Duration,
    measured: Duration,
) -> (Vec<Proofs>, Figures) {
    let clients = wallets.len();
    let from = Instant::now() + warmup;
    let until = from + measured;
    let tasks: Vec<_> = wallets
        .into_iter()
        .map(|proofs| {
            let target = target.clone();
            tokio::spawn(async move {
                let mut proofs = Some(proofs);
                let mut latencies = Vec::new();
                let mut error = None;
                while let Some(current) = proofs.take() {
                    let started = Instant::now();
                    if started >= until {
                        proofs = Some(current);
                        break;
                    }
                    match swap_once(&target, current).await {
                        Ok((next, took)) => {
                            if started >= from {
                                latencies.push(took);
                            }
                            proofs = Some(next);
                        }
                        Err(e) => error = Some(e),
                    }
                }
                (proofs, latencies, error)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut next = Vec::with_capacity(clients);
    let mut errors = Vec::new();
    for task in futures_util::future::join_all(tasks).await {
        let (proofs, latencies, error) = task.expect("client task");
        all.extend(latencies);
        next.extend(proofs);
        errors.extend(error);
    }
    let elapsed = from.elapsed().as_secs_f64();
    all.sort();
    let figures = Figures {
        target: name.to_string(),
        clients,
        swaps: all.len(),
        per_sec: all.len() as f64 / elapsed,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        errors: errors.len(),
    };
    print_row(&figures);
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{name}, {clients} clients: {e}");
        }
        panic!(
            "{name}: {} of {clients} clients failed a swap (first: {})",
            errors.len(),
            errors[0]
        );
    }
    (next, figures)
}

fn print_header() {
    println!(
        "{:<16} {:>7} {:>9} {:>9} {:>9} {:>8} {:>6}",
        "target", "clients", "swaps/s", "p50 ms", "p99 ms", "swaps", "errors"
    );
}

fn print_row(f: &Figures) {
    println!(
        "{:<16} {:>7} {:>9.0} {:>9.2} {:>9.2} {:>8} {:>6}",
        f.target,
        f.clients,
        f.per_sec,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        f.swaps,
        f.errors
    );
}

/// Mints the clients' notes, runs every concurrency level, then checks the last notes: each
/// client swaps once more (the mint verifies the last round's proofs) and the new ones are
/// unspent. Returns the figures.
async fn measure(target: Target, name: &str, levels: &[usize], warmup: Duration, measured: Duration) -> Vec<Figures> {
    let target = Arc::new(target);
    let most = levels.iter().copied().max().unwrap_or(1);
    let mut wallets = Vec::with_capacity(most);
    for _ in 0..most {
        wallets.push(target.mint_notes().await);
    }
    let mut figures = Vec::new();
    for &clients in levels {
        let rest = wallets.split_off(clients);
        let (mut done, f) = run_level(&target, name, wallets, warmup, measured).await;
        figures.push(f);
        done.extend(rest);
        wallets = done;
    }
    let mut last = Vec::with_capacity(wallets.len());
    for proofs in wallets {
        let (next, _) = swap_once(&target, proofs).await.expect("the last round's notes swap");
        assert_eq!(total(&next), AMOUNTS.iter().sum::<u64>());
        assert!(
            target.all_unspent(&next).await,
            "{name}: a client's notes are not unspent"
        );
        last.push(next);
    }
    println!(
        "{name}: {} clients' last notes checked (swapped again, unspent)",
        last.len()
    );
    figures
}

/// On Flash: the mint's books balance, with exactly the clients' notes outstanding.
fn check_books(name: &str, balanced: bool, outstanding: i64, pending: i64, clients: usize) {
    let expected = i64::try_from(clients).expect("clients") * AMOUNTS.iter().sum::<u64>() as i64;
    assert!(balanced, "{name}: the mint's books do not balance");
    assert_eq!(pending, 0, "{name}: notes left pending");
    assert_eq!(
        outstanding, expected,
        "{name}: outstanding ecash is not the clients' notes"
    );
    println!("{name}: books balanced, {outstanding} sats outstanding = the clients' notes");
}

// ---------------------------------------------------------------------------------------------
// flashd

async fn bench_flashd(
    name: &str,
    postgres: bool,
    levels: &[usize],
    warmup: Duration,
    measured: Duration,
) -> Vec<Figures> {
    let db = if postgres {
        Some(PgDatabase::create().await)
    } else {
        None
    };
    let dir = TempDir::new(name);
    let launch = Launch::new(dir.path(), db.as_ref().map(|d| d.url.as_str())).env("RUST_LOG", "warn");
    let server = Flashd::start(&launch).await;
    let admin_key = server
        .admin_key
        .clone()
        .expect("flashd printed its admin key on first start");
    let api = Api::new(&server.base);
    println!(
        "{name}: flashd at {} (pid {}), started in {:?}",
        server.base,
        server.pid(),
        server.startup
    );
    let funding = Funding::Flashd {
        api: api.clone(),
        admin_key: admin_key.clone(),
    };
    let target = Target::http(HttpMint::new(&server.base, funding)).await;
    let figures = measure(target, name, levels, warmup, measured).await;
    let status = api.admin(&admin_key, ECASH_STATUS, json!({})).await;
    let s = &status["ecashStatus"];
    check_books(
        name,
        s["balanced"].as_bool() == Some(true),
        s["outstanding"].as_i64().expect("outstanding"),
        s["pending"].as_i64().expect("pending"),
        levels.iter().copied().max().unwrap_or(1),
    );
    drop(server);
    drop(db);
    figures
}

// ---------------------------------------------------------------------------------------------
// Flash's engine in process

async fn bench_engine(
    name: &str,
    postgres: bool,
    levels: &[usize],
    warmup: Duration,
    measured: Duration,
) -> Vec<Figures> {
    let db = if postgres {
        Some(PgDatabase::create().await)
    } else {
        None
    };
    let dir = TempDir::new(name);
    let config = match &db {
        Some(db) => StoreConfig::Postgres { url: db.url.clone() },
        None => StoreConfig::Sqlite {
            path: dir.path().join("flash.db"),
        },
    };
    let store = Store::open(&config, Arc::new(SystemClock))
        .await
        .expect("open the store");
    store
        .ensure_system_accounts(Currency::Btc)
        .await
        .expect("system accounts");
    let node = Arc::new(
        DevNode::new(
            Network::Regtest,
            DevNode::generate_key(),
            DevOutcome::Succeed {
                delay_ms: 0,
                fee_ppm: 0,
            },
        )
        .expect("dev node"),
    );
    let bank = Bank::new(store.clone(), BankConfig::default()).with_lightning(node.clone(), Some(node));
    let mut seed = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
    let kek = KeyEncryptionKey::new(seed);
    let mint = Mint::open(bank, store, &kek, MintConfig::default(), "http://127.0.0.1:3338".into())
        .await
        .expect("open the mint");
    let figures = measure(Target::engine(mint.clone()), name, levels, warmup, measured).await;
    let status = mint.status().await.expect("mint status");
    let pending = status.notes.pending;
    check_books(
        name,
        status.balanced(),
        status.notes.outstanding(),
        pending,
        levels.iter().copied().max().unwrap_or(1),
    );
    drop(mint);
    drop(db);
    figures
}

// ---------------------------------------------------------------------------------------------
// cdk-mintd

/// The `cdk-mintd` binary, or why there is none.
fn cdk_mintd_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("FLASH_BENCH_CDK_MINTD").map(PathBuf::from) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("FLASH_BENCH_CDK_MINTD={} is not a file", path.display()))
        };
    }
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/cdk-mintd"));
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("cdk-mintd"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    home.into_iter().chain(on_path).find(|p| p.is_file()).ok_or_else(|| {
        "no cdk-mintd in ~/.cargo/bin or on PATH (cargo install cdk-mintd --version 0.18.3, or set \
             FLASH_BENCH_CDK_MINTD)"
            .to_string()
    })
}

/// A running `cdk-mintd` in a temp work dir; stopped when dropped.
struct CdkMintd {
    process: PeerProcess,
    base: String,
    _dir: TempDir,
}

/// A `cdk-mintd` command with the bench's environment only: the work dir, the mnemonic its
/// configuration references, and no `CDK_MINTD_*` from the caller.
fn cdk_command(bin: &Path, work: &Path) -> Command {
    let mut cmd = Command::new(bin);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("CDK_MINTD_") {
            cmd.env_remove(k);
        }
    }
    cmd.arg("--work-dir")
        .arg(work)
        .env("CDK_MINTD_MNEMONIC", CDK_MNEMONIC)
        .stdin(Stdio::null());
    cmd
}

/// The import document: the fake Lightning wallet paying every mint quote at once, no input
/// fee, no Lightning fee, the default SQLite database and HTTP cache, warnings only on stderr
/// (no log file).
fn cdk_config(port: u16) -> String {
    format!(
        r#"[info]
url = "http://127.0.0.1:{port}/"
listen_host = "127.0.0.1"
listen_port = {port}
mnemonic = "env:CDK_MINTD_MNEMONIC"
input_fee_ppk = 0

[info.logging]
output = "stderr"
console_level = "warn"

[info.http_cache]
backend = "memory"
ttl = 60
tti = 60

[database]
engine = "sqlite"

[payment_backend]
backend = "fakewallet"
unit = "sat"

[fake_wallet]
fee_percent = 0.0
reserve_fee_min = 0
custom_payment_methods = []
min_delay_time = 0
max_delay_time = 0
"#
    )
}

impl CdkMintd {
    async fn start(bin: &Path) -> Result<CdkMintd, String> {
        let dir = TempDir::new("cdk-mintd");
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).map_err(|e| e.to_string())?;
        let port = free_port();
        let config = dir.path().join("mint.toml");
        std::fs::write(&config, cdk_config(port)).map_err(|e| e.to_string())?;
        let init = cdk_command(bin, &work)
            .args(["config", "init", "--new-mint", "--file"])
            .arg(&config)
            .output()
            .map_err(|e| format!("run cdk-mintd config init: {e}"))?;
        if !init.status.success() {
            return Err(format!(
                "cdk-mintd config init failed ({}): {}{}",
                init.status,
                String::from_utf8_lossy(&init.stdout),
                String::from_utf8_lossy(&init.stderr)
            ));
        }
        let stderr = dir.path().join("cdk-mintd.stderr");
        let log = std::fs::File::create(&stderr).map_err(|e| e.to_string())?;
        let child = cdk_command(bin, &work)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| format!("spawn cdk-mintd: {e}"))?;
        let mut mintd = CdkMintd {
            process: PeerProcess::new(child, stderr),
            base: format!("http://127.0.0.1:{port}"),
            _dir: dir,
        };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let info = http.get(format!("{}/v1/info", mintd.base)).send().await;
            if matches!(&info, Ok(r) if r.status() == reqwest::StatusCode::OK) {
                return Ok(mintd);
            }
            let exited = mintd.process.exited();
            if exited.is_some() || Instant::now() > deadline {
                let printed = mintd.process.printed();
                mintd.process.stop();
                return Err(format!("cdk-mintd did not serve /v1/info ({exited:?}): {printed}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }
}

async fn bench_cdk(levels: &[usize], warmup: Duration, measured: Duration) -> Vec<Figures> {
    let name = "cdk-mintd";
    let bin = match cdk_mintd_binary() {
        Ok(bin) => bin,
        Err(why) => {
            println!("{name}: skipped: {why}");
            return Vec::new();
        }
    };
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let mintd = CdkMintd::start(&bin)
        .await
        .unwrap_or_else(|e| panic!("{name} ({}) did not start: {e}", bin.display()));
    println!(
        "{name}: {version} ({}) at {} (pid {}), fake wallet, SQLite",
        bin.display(),
        mintd.base,
        mintd.pid()
    );
    let target = Target::http(HttpMint::new(&mintd.base, Funding::FakeWallet)).await;
    let figures = measure(target, name, levels, warmup, measured).await;
    // Under load it warns of every `BEGIN IMMEDIATE` that waited for SQLite's write lock over
    // its slow-query threshold: counted, not echoed; anything else is shown.
    let warnings = mintd.process.printed();
    let (slow, other): (Vec<&str>, Vec<&str>) = warnings
        .lines()
        .filter(|l| !l.trim().is_empty())
        .partition(|l| l.contains("[SLOW QUERY]"));
    if !slow.is_empty() {
        let begins = slow.iter().filter(|l| l.contains("BEGIN IMMEDIATE")).count();
        println!(
            "{name}: {} [SLOW QUERY] warnings ({begins} of them BEGIN IMMEDIATE waiting for the write lock)",
            slow.len()
        );
    }
    for line in other.iter().take(20) {
        println!("{name}: {line}");
    }
    drop(mintd);
    figures
}

// ---------------------------------------------------------------------------------------------

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let measured = Duration::from_secs(env_number("FLASH_BENCH_SECS", 10));
    let warmup = Duration::from_secs(env_number("FLASH_BENCH_WARMUP_SECS", 1));
    let levels: Vec<usize> = env_list("FLASH_BENCH_CLIENTS", "1,8,32")
        .iter()
        .map(|c| c.parse().expect("FLASH_BENCH_CLIENTS: numbers"))
        .collect();
    assert!(levels.iter().all(|&c| c > 0), "FLASH_BENCH_CLIENTS: at least 1 client");
    let targets = env_list(
        "FLASH_BENCH_TARGETS",
        "flashd-sqlite,flashd-postgres,cdk-mintd,engine-sqlite,engine-postgres",
    );
    println!(
        "Cashu swaps, 3 inputs -> 3 outputs ({AMOUNTS:?} sats), {} s measured after {} s warm-up per run, \
         clients {levels:?}",
        measured.as_secs(),
        warmup.as_secs()
    );
    let mut all = Vec::new();
    for target in &targets {
        print_header();
        let figures = match target.as_str() {
            "flashd-sqlite" => bench_flashd(target, false, &levels, warmup, measured).await,
            "flashd-postgres" => bench_flashd(target, true, &levels, warmup, measured).await,
            "cdk-mintd" => bench_cdk(&levels, warmup, measured).await,
            "engine-sqlite" => bench_engine(target, false, &levels, warmup, measured).await,
            "engine-postgres" => bench_engine(target, true, &levels, warmup, measured).await,
            other => panic!("unknown target {other} (FLASH_BENCH_TARGETS)"),
        };
        all.extend(figures);
        println!();
    }
    println!("summary");
    print_header();
    for f in &all {
        print_row(f);
    }
}
