//! Shared helpers of the `flashd` process tests: spawning the real binary (with a config file
//! and a fresh database), reading its banner, killing it on drop, waiting for what it does, small
//! HTTP/GraphQL helpers that talk to it over 127.0.0.1, and running the `flash` client binary.
//!
//! Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use flash_store::testing::{fresh_config, Backend};
use flash_store::StoreConfig;
use serde_json::{json, Value};

/// The line flashd prints once, on first start, before the key.
pub const ADMIN_KEY_PREFIX: &str = "Operator (admin) key, shown once — keep it safe: ";
/// The line flashd prints once it is bound.
pub const LISTENING_PREFIX: &str = "flashd listening on http://";
/// How long a start may take (PostgreSQL migrations on a busy 2-core machine included).
pub const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Every `FLASH_*` variable flashd reads: removed from spawned processes so the caller's
/// environment cannot change what a test means.
const FLASH_ENV: [&str; 7] = [
    "FLASH_CONFIG",
    "FLASH_LISTEN",
    "FLASH_DATA_DIR",
    "FLASH_DATABASE_URL",
    "FLASH_NETWORK",
    "FLASH_LOG_FORMAT",
    "FLASH_NATS_URL",
];

/// A unique suffix for names within this test run.
pub fn unique(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{tag}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A fresh directory in the temp dir, removed on drop (kept when the test panicked, for
/// post-mortems).
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates it.
    pub fn new(tag: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("flashd-test-{}", unique(tag)));
        std::fs::create_dir_all(&path).expect("create temp dir");
        TempDir(path)
    }

    /// Its path.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {} for inspection", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A free TCP port on 127.0.0.1 (bound, read, released: another process may take it before
/// flashd binds it, so callers retry on a bind failure).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

/// How to start flashd.
#[derive(Clone, Debug, Default)]
pub struct Launch {
    /// Flags after the binary name.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
}

impl Launch {
    /// The usual start: a data dir, an ephemeral port, and optionally a database URL.
    pub fn new(data_dir: &Path, database_url: Option<&str>) -> Launch {
        let mut args = vec![
            "--data-dir".to_string(),
            data_dir.display().to_string(),
            "--listen".to_string(),
            "127.0.0.1:0".to_string(),
        ];
        if let Some(url) = database_url {
            args.push("--database-url".to_string());
            args.push(url.to_string());
        }
        Launch { args, env: Vec::new() }
    }

    /// A start on SQLite in `data_dir` listening on `port`: a restart on the same port keeps
    /// the server's URL (its relay's, its mint's).
    pub fn on_port(data_dir: &Path, port: u16) -> Launch {
        let args = [
            "--data-dir",
            &data_dir.display().to_string(),
            "--listen",
            &format!("127.0.0.1:{port}"),
        ];
        Launch {
            args: args.map(String::from).to_vec(),
            env: Vec::new(),
        }
    }

    /// Adds flags.
    pub fn arg(mut self, a: &str) -> Launch {
        self.args.push(a.to_string());
        self
    }

    /// Adds an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Launch {
        self.env.push((k.to_string(), v.to_string()));
        self
    }

    /// Adds `--config` with `text` as the config file, written to `flash.toml` in `dir`.
    pub fn config(self, dir: &Path, text: &str) -> Launch {
        let path = dir.join("flash.toml");
        std::fs::write(&path, text).expect("write config");
        self.arg("--config").arg(&path.display().to_string())
    }
}

/// The usual start in `dir`, on SQLite, with `text` as the config file.
pub fn with_config(dir: &TempDir, text: &str) -> Launch {
    Launch::new(dir.path(), None).config(dir.path(), text)
}

/// A fresh database on `backend`: its URL for `--database-url`, or `None` for SQLite (flashd's
/// default, in its data dir).
pub async fn database_url(backend: Backend) -> Option<String> {
    match fresh_config(backend).await {
        StoreConfig::Postgres { url } => Some(url),
        StoreConfig::Sqlite { .. } => None,
    }
}

/// Polls `poll` every 100 ms until `done` holds for its answer, and returns that answer;
/// panics with the last answer when `within` has passed.
pub async fn wait_for<T: Debug, F: Future<Output = T>>(
    what: &str,
    within: Duration,
    mut poll: impl FnMut() -> F,
    done: impl Fn(&T) -> bool,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        let now = poll().await;
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}; last: {now:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lines a child printed, collected by reader threads.
#[derive(Clone, Default)]
pub struct Output(Arc<Mutex<Vec<String>>>);

impl Output {
    /// A copy of every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.0.lock().map(|l| l.clone()).unwrap_or_default()
    }

    fn push(&self, line: String) {
        if let Ok(mut l) = self.0.lock() {
            l.push(line);
        }
    }
}

fn pump(stream: impl Read + Send + 'static, out: Output) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            match line {
                Ok(l) => out.push(l),
                Err(_) => break,
            }
        }
    })
}

/// A running flashd. Dropping it kills it (SIGKILL) and reaps it, even on panic.
pub struct Flashd {
    child: Option<Child>,
    /// stdout lines.
    pub stdout: Output,
    /// stderr lines.
    pub stderr: Output,
    readers: Vec<std::thread::JoinHandle<()>>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The admin key, when this start printed one.
    pub admin_key: Option<String>,
    /// Spawn to "listening".
    pub startup: Duration,
}

/// flashd exited (or never got ready) instead of listening.
#[derive(Debug)]
pub struct StartFailure {
    /// Exit status, if it exited.
    pub status: Option<ExitStatus>,
    /// Everything it printed.
    pub stdout: Vec<String>,
    /// Everything it printed on stderr.
    pub stderr: Vec<String>,
}

impl StartFailure {
    /// stdout and stderr together.
    pub fn text(&self) -> String {
        let mut all = self.stdout.clone();
        all.extend(self.stderr.iter().cloned());
        all.join("\n")
    }
}

/// Spawns flashd without waiting for anything.
pub fn spawn_raw(launch: &Launch) -> (Child, Output, Output, Vec<std::thread::JoinHandle<()>>) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_flashd"));
    cmd.args(&launch.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1");
    for k in FLASH_ENV {
        cmd.env_remove(k);
    }
    for (k, v) in &launch.env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn flashd");
    let (stdout, stderr) = (Output::default(), Output::default());
    let mut readers = Vec::new();
    if let Some(s) = child.stdout.take() {
        readers.push(pump(s, stdout.clone()));
    }
    if let Some(s) = child.stderr.take() {
        readers.push(pump(s, stderr.clone()));
    }
    (child, stdout, stderr, readers)
}

/// Waits (bounded) for a child to exit; kills it if it does not.
pub fn wait_exit(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

impl Flashd {
    /// Starts flashd and waits until it listens; panics with its output if it does not.
    pub async fn start(launch: &Launch) -> Flashd {
        match Flashd::try_start(launch).await {
            Ok(f) => f,
            Err(e) => panic!(
                "flashd did not start (status {:?}):\n--- stdout ---\n{}\n--- stderr ---\n{}",
                e.status,
                e.stdout.join("\n"),
                e.stderr.join("\n")
            ),
        }
    }

    /// Starts flashd; `Err` when it exits (or hangs) before listening.
    pub async fn try_start(launch: &Launch) -> Result<Flashd, StartFailure> {
        let started = Instant::now();
        let (child, stdout, stderr, readers) = spawn_raw(launch);
        let mut f = Flashd {
            child: Some(child),
            stdout,
            stderr,
            readers,
            base: String::new(),
            admin_key: None,
            startup: Duration::ZERO,
        };
        let deadline = started + START_TIMEOUT;
        loop {
            let lines = f.stdout.lines();
            if let Some(addr) = lines.iter().find_map(|l| l.strip_prefix(LISTENING_PREFIX)) {
                f.base = format!("http://{}", addr.trim());
                f.admin_key = lines
                    .iter()
                    .find_map(|l| l.strip_prefix(ADMIN_KEY_PREFIX))
                    .map(|k| k.trim().to_string());
                f.startup = started.elapsed();
                return Ok(f);
            }
            let exited = f.child.as_mut().and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                let status = f.kill_and_wait();
                return Err(StartFailure {
                    status: exited.or(status),
                    stdout: f.stdout.lines(),
                    stderr: f.stderr.lines(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Starts flashd expecting it to refuse to start (`why` it should); what it printed.
    pub async fn refused(launch: &Launch, why: &str) -> String {
        Flashd::try_start(launch).await.err().expect(why).text()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).expect("flashd still owned")
    }

    /// SIGKILL (what `Child::kill` sends on unix) and reap.
    pub fn kill_and_wait(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        let status = child.wait().ok();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        status
    }

    /// SIGTERM via `kill -TERM`.
    pub fn sigterm(&self) {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM failed: {status}");
    }

    /// Waits (bounded) for the process to exit by itself, then joins the output readers.
    /// `None` when it did not exit in time (it is then killed).
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let status = wait_exit(&mut child, timeout);
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        status
    }

    /// Every stdout and stderr line so far.
    pub fn all_output(&self) -> Vec<String> {
        let mut all = self.stdout.lines();
        all.extend(self.stderr.lines());
        all
    }
}

impl Drop for Flashd {
    fn drop(&mut self) {
        self.kill_and_wait();
    }
}

/// A reqwest client for tests: short connect timeout, bounded request time.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client")
}

/// How [`Api::post`] errors start when no connection was made (the request never left).
pub const CONNECT_FAILED: &str = "connect failed";

/// A thin GraphQL/REST caller for one server.
#[derive(Clone)]
pub struct Api {
    /// Base URL.
    pub base: String,
    /// HTTP client.
    pub http: reqwest::Client,
}

/// One user of the tests: session token, account and default wallet.
#[derive(Clone, Debug)]
pub struct User {
    /// Device secret.
    pub device_id: String,
    /// Session token.
    pub token: String,
    /// Account id.
    pub account_id: String,
    /// Default (BTC) wallet id.
    pub wallet_id: String,
}

/// The `me` query the helpers use.
pub const ME: &str = "query { me { id username defaultAccount { id level defaultWalletId \
wallets { id walletCurrency balance } } } }";

/// The payment mutation the load tests use.
pub const PAY: &str = "mutation($input: IntraLedgerPaymentSendInput!) { intraLedgerPaymentSend(input: $input) \
{ status errors { code message } transaction { id settlementAmount status } } }";

/// Admin: a journal.
pub const JOURNAL: &str = "query($id: ID!) { journal(id: $id) { id kind entries { accountId currency amount } } }";

/// Admin: ledger check.
pub const LEDGER_VERIFY: &str =
    "query { ledgerVerify { ok currencies { currency total } accountsChecked journalsChecked problems } }";

impl Api {
    /// For a started flashd.
    pub fn new(base: &str) -> Api {
        Api {
            base: base.to_string(),
            http: http(),
        }
    }

    /// POSTs JSON; the status and parsed body.
    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Result<(u16, Value), String> {
        let mut req = self.http.post(format!("{}{path}", self.base)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| {
            if e.is_connect() {
                format!("{CONNECT_FAILED}: {e}")
            } else {
                format!("send: {e:?}")
            }
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|e| format!("body: {e:?}"))?;
        let value = serde_json::from_str(&text).map_err(|e| format!("HTTP {status}, not JSON ({e}): {text}"))?;
        Ok((status, value))
    }

    /// GETs JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let resp = self.http.get(format!("{}{path}", self.base)).send().await.expect("GET");
        resp.json().await.expect("JSON body")
    }

    /// A GraphQL call on `/graphql` that must return 200 and `data` without top-level errors.
    pub async fn gql(&self, token: &str, query: &str, vars: Value) -> Value {
        self.gql_at("/graphql", token, query, vars).await
    }

    /// The same on `/admin/graphql`.
    pub async fn admin(&self, key: &str, query: &str, vars: Value) -> Value {
        self.gql_at("/admin/graphql", key, query, vars).await
    }

    async fn gql_at(&self, path: &str, token: &str, query: &str, vars: Value) -> Value {
        let body = json!({ "query": query, "variables": vars });
        let (status, v) = self.post(path, Some(token), &body).await.expect("GraphQL call");
        assert_eq!(status, 200, "{path}: {v}");
        assert!(
            v.get("errors").is_none_or(|e| e.as_array().is_none_or(Vec::is_empty)),
            "{path}: errors in {v}"
        );
        v["data"].clone()
    }

    /// Logs in (or signs up) a device account and reads its account and wallet.
    pub async fn device_user(&self, device_id: &str) -> User {
        let (status, v) = self
            .post("/auth/create/device-account", None, &json!({ "deviceId": device_id }))
            .await
            .expect("device account");
        assert_eq!(status, 200, "device account: {v}");
        let token = v["authToken"].as_str().expect("authToken").to_string();
        let me = self.gql(&token, ME, json!({})).await;
        let account = &me["me"]["defaultAccount"];
        User {
            device_id: device_id.to_string(),
            token,
            account_id: account["id"].as_str().expect("account id").to_string(),
            wallet_id: account["defaultWalletId"].as_str().expect("wallet id").to_string(),
        }
    }

    /// The user's newest `first` transactions, newest first.
    pub async fn history(&self, user: &User, first: usize) -> Vec<Value> {
        let query = format!(
            "query {{ me {{ defaultAccount {{ transactions(first: {first}) {{ edges {{ node {{ \
             id status direction settlementAmount settlementFee }} }} }} }} }} }}"
        );
        let data = self.gql(&user.token, &query, json!({})).await;
        data["me"]["defaultAccount"]["transactions"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|e| e["node"].clone())
            .collect()
    }

    /// The balance of a user's default wallet.
    pub async fn balance(&self, user: &User) -> i64 {
        let me = self.gql(&user.token, ME, json!({})).await;
        let wallets = me["me"]["defaultAccount"]["wallets"]
            .as_array()
            .expect("wallets")
            .clone();
        wallets
            .iter()
            .find(|w| w["id"] == json!(user.wallet_id))
            .and_then(|w| w["balance"].as_i64())
            .expect("default wallet balance")
    }

    /// Admin faucet with a fixed idempotency key; returns the journal id.
    pub async fn fund(&self, admin_key: &str, wallet_id: &str, sats: i64, key: &str) -> String {
        let data = self
            .admin(
                admin_key,
                "mutation($input: WalletFundInput!) { walletFund(input: $input) \
                 { errors { code message } transaction { id settlementAmount } } }",
                json!({ "input": { "walletId": wallet_id, "amount": sats, "idempotencyKey": key } }),
            )
            .await;
        let p = &data["walletFund"];
        assert_eq!(p["errors"], json!([]), "walletFund: {p}");
        assert_eq!(p["transaction"]["settlementAmount"], json!(sats), "walletFund: {p}");
        p["transaction"]["id"].as_str().expect("fund journal").to_string()
    }

    /// Admin: raises an account's level (limits out of the way of load tests).
    pub async fn set_level(&self, admin_key: &str, account_id: &str, level: &str) {
        let data = self
            .admin(
                admin_key,
                "mutation($input: AccountUpdateLevelInput!) { accountUpdateLevel(input: $input) \
                 { errors { code message } accountDetails { id level } } }",
                json!({ "input": { "accountId": account_id, "level": level } }),
            )
            .await;
        let p = &data["accountUpdateLevel"];
        assert_eq!(p["errors"], json!([]), "accountUpdateLevel: {p}");
        assert_eq!(p["accountDetails"]["level"], json!(level));
    }

    /// Admin `ledgerVerify`, asserted clean; returns `journalsChecked`.
    pub async fn assert_ledger_ok(&self, admin_key: &str) -> i64 {
        let data = self.admin(admin_key, LEDGER_VERIFY, json!({})).await;
        let v = &data["ledgerVerify"];
        assert_eq!(v["ok"], json!(true), "ledgerVerify: {v}");
        assert_eq!(v["problems"], json!([]), "ledgerVerify: {v}");
        for c in v["currencies"].as_array().expect("currencies") {
            assert_eq!(c["total"], json!(0), "ledgerVerify total: {v}");
        }
        v["journalsChecked"].as_i64().expect("journalsChecked")
    }
}

/// A payment request as sent (so that it can be replayed with the same key).
#[derive(Clone, Debug)]
pub struct Payment {
    /// Idempotency key.
    pub key: String,
    /// Payer index.
    pub from: usize,
    /// Payee index.
    pub to: usize,
    /// Sats.
    pub amount: i64,
}

/// What the client learned about a payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// HTTP 200, status SUCCESS: the journal (transaction) id.
    Ok(String),
    /// A complete answer that refused it (payload error code).
    Refused(String),
    /// No complete answer (connection error, reset, non-JSON).
    Unknown(String),
}

/// Sends one intraledger payment; never panics.
pub async fn pay(api: &Api, users: &[User], p: &Payment) -> Outcome {
    let input = json!({
        "walletId": users[p.from].wallet_id,
        "recipientWalletId": users[p.to].wallet_id,
        "amount": p.amount,
        "idempotencyKey": p.key,
    });
    let body = json!({ "query": PAY, "variables": { "input": input } });
    match api.post("/graphql", Some(&users[p.from].token), &body).await {
        Err(e) => Outcome::Unknown(e),
        Ok((200, v)) => {
            let payload = &v["data"]["intraLedgerPaymentSend"];
            match (payload["status"].as_str(), payload["transaction"]["id"].as_str()) {
                (Some("SUCCESS"), Some(id)) => {
                    if payload["transaction"]["settlementAmount"] != json!(-p.amount) {
                        return Outcome::Refused(format!("wrong settlementAmount: {payload}"));
                    }
                    Outcome::Ok(id.to_string())
                }
                _ => Outcome::Refused(
                    payload["errors"][0]["code"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string()),
                ),
            }
        }
        Ok((status, v)) => Outcome::Unknown(format!("HTTP {status}: {v}")),
    }
}

impl Outcome {
    /// Unanswered although the connection was made: the request may have reached the server.
    pub fn in_flight(&self) -> bool {
        matches!(self, Outcome::Unknown(e) if !e.starts_with(CONNECT_FAILED))
    }
}

/// A tiny xorshift generator (no `rand` among the allowed dev-dependencies).
pub struct Rng(u64);

impl Rng {
    /// Seeded; a zero seed is replaced.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next value.
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-ish in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Checks a journal as the admin API shows it: two entries summing to zero, `-amount` on
/// the payer's wallet and `+amount` on the payee's.
pub async fn check_journal(api: &Api, admin_key: &str, id: &str, from_wallet: &str, to_wallet: &str, amount: i64) {
    let data = api.admin(admin_key, JOURNAL, json!({ "id": id })).await;
    let j = &data["journal"];
    assert!(!j.is_null(), "journal {id} acknowledged before the crash is missing");
    let entries = j["entries"].as_array().expect("entries");
    assert_eq!(entries.len(), 2, "journal {id}: {j}");
    let sum: i64 = entries.iter().map(|e| e["amount"].as_i64().expect("amount")).sum();
    assert_eq!(sum, 0, "journal {id} does not balance: {j}");
    let by_account: HashMap<&str, i64> = entries
        .iter()
        .map(|e| {
            (
                e["accountId"].as_str().expect("accountId"),
                e["amount"].as_i64().expect("amount"),
            )
        })
        .collect();
    assert_eq!(by_account.get(from_wallet), Some(&-amount), "journal {id}: {j}");
    assert_eq!(by_account.get(to_wallet), Some(&amount), "journal {id}: {j}");
}

// ---------------------------------------------------------------------------------------------
// The `flash` client binary

/// The newest modification time of the files under `dir`.
fn newest_source(dir: &Path) -> Option<SystemTime> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| e.metadata().ok()?.modified().ok())
        .max()
}

/// The `flash` binary next to `flashd` in the target dir, when it was built after the last
/// change to the CLI sources (a stale binary would test old code): build it with
/// `cargo build -p flash-cli`.
pub fn flash_binary() -> Result<PathBuf, String> {
    let dir = Path::new(env!("CARGO_BIN_EXE_flashd"))
        .parent()
        .ok_or("no target dir")?;
    let path = dir.join("flash");
    let built = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .map_err(|_| format!("{} is not built", path.display()))?;
    let sources = Path::new(env!("CARGO_MANIFEST_DIR")).join("../cli/src");
    match newest_source(&sources) {
        Some(changed) if changed > built => Err(format!("{} is older than the CLI sources", path.display())),
        _ => Ok(path),
    }
}

/// [`flash_binary`], or `None` after printing why its checks are skipped. Under CI (`CI` set)
/// a missing or stale binary fails the test instead: `cargo nextest run --workspace` builds it.
pub fn flash_binary_or_skip() -> Option<PathBuf> {
    match flash_binary() {
        Ok(path) => Some(path),
        Err(why) if std::env::var_os("CI").is_some() => panic!("the `flash` binary is needed under CI: {why}"),
        Err(why) => {
            println!("skipping the `flash` binary checks: {why}");
            None
        }
    }
}

/// What one run of `flash` printed.
pub struct FlashRun {
    /// Its arguments, for messages.
    pub args: String,
    /// Whether it exited successfully.
    pub ok: bool,
    /// Its exit status, as text.
    pub status: String,
    /// stdout.
    pub stdout: String,
    /// stderr.
    pub stderr: String,
}

impl FlashRun {
    /// Requires that it succeeded.
    pub fn succeeded(self) -> FlashRun {
        assert!(
            self.ok,
            "flash {} failed ({}):\n{}\n{}",
            self.args, self.status, self.stdout, self.stderr
        );
        self
    }

    /// Requires that it failed; its stderr.
    pub fn failed(self) -> String {
        assert!(
            !self.ok,
            "flash {} should have failed:\n{}\n{}",
            self.args, self.stdout, self.stderr
        );
        self.stderr
    }
}

/// The `flash` binary `bin` with a private config dir, none of the caller's `FLASH_*`
/// settings.
fn flash_command(bin: &Path, config_dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .env("FLASH_CONFIG_DIR", config_dir)
        .env_remove("FLASH_SERVER")
        .env_remove("FLASH_TOKEN")
        .env_remove("FLASH_ADMIN_KEY");
    cmd
}

impl FlashRun {
    fn of(args: &[&str], out: std::process::Output) -> FlashRun {
        FlashRun {
            args: format!("{args:?}"),
            ok: out.status.success(),
            status: out.status.to_string(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

/// Runs the `flash` binary `bin` with a private config dir, none of the caller's `FLASH_*`
/// settings.
pub fn run_flash(bin: &Path, config_dir: &Path, args: &[&str]) -> FlashRun {
    let out = flash_command(bin, config_dir, args).output().expect("run flash");
    FlashRun::of(args, out)
}

/// Runs the `flash` binary like [`run_flash`], with `input` on its stdin.
pub fn run_flash_with_stdin(bin: &Path, config_dir: &Path, args: &[&str], input: &str) -> FlashRun {
    let mut child = flash_command(bin, config_dir, args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn flash");
    if let Some(mut stdin) = child.stdin.take() {
        std::io::Write::write_all(&mut stdin, input.as_bytes()).expect("write stdin");
    }
    FlashRun::of(args, child.wait_with_output().expect("run flash"))
}

/// Runs `flash` and requires success.
pub fn flash_ok(bin: &Path, config_dir: &Path, args: &[&str]) -> FlashRun {
    run_flash(bin, config_dir, args).succeeded()
}

/// Runs `flash` and requires failure; its stderr.
pub fn flash_fails(bin: &Path, config_dir: &Path, args: &[&str]) -> String {
    run_flash(bin, config_dir, args).failed()
}
