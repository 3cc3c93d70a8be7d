//! Crash and shutdown tests of the real `flashd` binary: SIGKILL under concurrent payment
//! load (SQLite and PostgreSQL) loses no acknowledged payment, and SIGTERM lets in-flight
//! requests finish before a clean exit.

mod common;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use flash_store::testing::{fresh_config, Backend};
use flash_store::StoreConfig;
use futures_util::stream::{self, StreamExt};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Device accounts paying each other.
const USERS: usize = 8;
/// Faucet credit of each.
const FUND: i64 = 1_000_000;
/// Concurrent payer tasks.
const PAYERS: usize = 16;
/// How long the load runs before the kill…
const LOAD_TIME: Duration = Duration::from_millis(1500);
/// …unless this many payments were acknowledged first.
const OK_TARGET: usize = 5_000;
/// Fewest acknowledged payments worth a crash (waited for, bounded, on a slow machine).
const OK_MIN: usize = 50;
/// Upper bound of requests per payer task.
const MAX_PER_TASK: usize = 50_000;
/// How long payers keep failing against the dead server.
const AFTER_KILL: Duration = Duration::from_millis(300);
/// Parallel verification requests.
const CHECK_CONCURRENCY: usize = 8;

/// A fresh PostgreSQL database URL (panics when PostgreSQL is unreachable: no silent skip).
async fn postgres_url() -> String {
    match fresh_config(Backend::Postgres).await {
        StoreConfig::Postgres { url } => url,
        other => panic!("expected a PostgreSQL config, got {other:?}"),
    }
}

/// Device accounts with fixed secrets, level TWO (limits out of the way), each funded once.
async fn funded_users(api: &Api, admin_key: &str, run: &str, n: usize) -> Vec<User> {
    let mut users = Vec::new();
    for i in 0..n {
        let user = api.device_user(&format!("device-{run}-{i:02}")).await;
        api.set_level(admin_key, &user.account_id, "TWO").await;
        api.fund(admin_key, &user.wallet_id, FUND, &format!("fund-{run}-{i}"))
            .await;
        users.push(user);
    }
    users
}

/// Payer tasks sending random small payments until `stop` (bounded by count).
fn spawn_payers(
    api: &Api,
    users: &Arc<Vec<User>>,
    run: &str,
    tasks: usize,
    stop: &Arc<AtomicBool>,
    oks: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<Vec<(Payment, Outcome)>>> {
    (0..tasks)
        .map(|t| {
            let (api, users, stop, oks) = (api.clone(), users.clone(), stop.clone(), oks.clone());
            let run = run.to_string();
            tokio::spawn(async move {
                let mut rng = Rng::new(0x5EED + t as u64);
                let mut attempts = Vec::new();
                let n_users = users.len() as u64;
                for n in 0..MAX_PER_TASK {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let from = rng.below(n_users) as usize;
                    let to = ((from as u64 + 1 + rng.below(n_users - 1)) % n_users) as usize;
                    let p = Payment {
                        key: format!("{run}-t{t}-{n}"),
                        from,
                        to,
                        amount: 1 + rng.below(100) as i64,
                    };
                    let outcome = pay(&api, &users, &p).await;
                    match &outcome {
                        Outcome::Ok(_) => {
                            oks.fetch_add(1, Ordering::Relaxed);
                        }
                        Outcome::Unknown(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                        Outcome::Refused(_) => {}
                    }
                    attempts.push((p, outcome));
                }
                attempts
            })
        })
        .collect()
}

async fn join_all(tasks: Vec<tokio::task::JoinHandle<Vec<(Payment, Outcome)>>>) -> Vec<(Payment, Outcome)> {
    let mut all = Vec::new();
    for t in tasks {
        let attempts = tokio::time::timeout(Duration::from_secs(120), t)
            .await
            .expect("payer task ended in time")
            .expect("payer task did not panic");
        all.extend(attempts);
    }
    all
}

/// What happened to the payments of a run, once every unanswered one was replayed.
struct Settled {
    /// Every posted payment with its journal id.
    posted: Vec<(Payment, String)>,
    /// Unanswered requests whose journal was already there at the restart.
    posted_unanswered: i64,
}

/// After a restart: every acknowledged journal is there; replays of acknowledged requests
/// return the same journal; unanswered requests are replayed (posting them at most once);
/// then balances match the posted payments exactly and the ledger verifies.
async fn verify_after_restart(
    api: &Api,
    admin_key: &str,
    users: &[User],
    attempts: &[(Payment, Outcome)],
    other_journals: i64,
) -> Settled {
    let refused: Vec<_> = attempts
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Refused(_)))
        .collect();
    assert!(
        refused.is_empty(),
        "payments refused under load: {:?}",
        &refused[..refused.len().min(5)]
    );
    let acked: Vec<(Payment, String)> = attempts
        .iter()
        .filter_map(|(p, o)| match o {
            Outcome::Ok(id) => Some((p.clone(), id.clone())),
            _ => None,
        })
        .collect();
    let unknown: Vec<Payment> = attempts
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Unknown(_)))
        .map(|(p, _)| p.clone())
        .collect();

    // The ledger as the restart found it, before anything new is written.
    let journals = api.assert_ledger_ok(admin_key).await;
    let acked_n = acked.len() as i64;
    assert!(
        journals >= other_journals + acked_n && journals <= other_journals + acked_n + unknown.len() as i64,
        "journals after restart: {journals}, acknowledged {acked_n} (+{other_journals} others, {} unanswered)",
        unknown.len()
    );
    let posted_unanswered = journals - other_journals - acked_n;
    let in_flight = attempts.iter().filter(|(_, o)| o.in_flight()).count() as i64;
    assert!(
        posted_unanswered <= in_flight,
        "{posted_unanswered} unanswered payments were posted, but only {in_flight} were cut off in flight"
    );
    let mut total = 0;
    for u in users {
        total += api.balance(u).await;
    }
    assert_eq!(total, FUND * users.len() as i64, "money was created or destroyed");

    // Every acknowledged journal exists, with the right amount on the right wallets.
    stream::iter(acked.iter())
        .for_each_concurrent(CHECK_CONCURRENCY, |(p, id)| async move {
            check_journal(
                api,
                admin_key,
                id,
                &users[p.from].wallet_id,
                &users[p.to].wallet_id,
                p.amount,
            )
            .await;
        })
        .await;

    // Replaying acknowledged requests (a spread sample) answers the same journal.
    let step = (acked.len() / 200).max(1);
    let sample: Vec<_> = acked.iter().step_by(step).chain(acked.last()).collect();
    stream::iter(sample)
        .for_each_concurrent(CHECK_CONCURRENCY, |(p, id)| async move {
            let again = pay(api, users, p).await;
            assert_eq!(again, Outcome::Ok(id.clone()), "replay of {} after restart", p.key);
        })
        .await;

    // Unanswered requests: the replay either finds the journal posted before the crash or
    // posts it now; either way, once.
    let replayed: Vec<(Payment, Outcome)> = stream::iter(unknown)
        .map(|p| async move {
            let o = pay(api, users, &p).await;
            (p, o)
        })
        .buffer_unordered(CHECK_CONCURRENCY)
        .collect()
        .await;
    let mut posted = acked;
    for (p, o) in replayed {
        match o {
            Outcome::Ok(id) => posted.push((p, id)),
            other => panic!("replay of unanswered {} after restart: {other:?}", p.key),
        }
    }
    let distinct: HashSet<&str> = posted.iter().map(|(_, id)| id.as_str()).collect();
    assert_eq!(distinct.len(), posted.len(), "two requests share a journal");

    // Balances now follow exactly from the posted payments.
    let mut expected: HashMap<usize, i64> = (0..users.len()).map(|i| (i, FUND)).collect();
    for (p, _) in &posted {
        *expected.entry(p.from).or_default() -= p.amount;
        *expected.entry(p.to).or_default() += p.amount;
    }
    for (i, u) in users.iter().enumerate() {
        assert_eq!(api.balance(u).await, expected[&i], "balance of user {i}");
    }
    let journals = api.assert_ledger_ok(admin_key).await;
    assert_eq!(
        journals,
        other_journals + posted.len() as i64,
        "one journal per request, no more"
    );
    Settled {
        posted,
        posted_unanswered,
    }
}

async fn sigkill_under_payment_load(database_url: Option<String>, label: &str) {
    let dir = TempDir::new(label);
    let launch = Launch::new(dir.path(), database_url.as_deref());
    let mut first = Flashd::start(&launch).await;
    let admin_key = first.admin_key.clone().expect("the first start prints the admin key");
    assert!(admin_key.starts_with("flashadm_"), "admin key format: {admin_key}");
    let api = Api::new(&first.base);
    let run = unique("kill");
    let users = Arc::new(funded_users(&api, &admin_key, &run, USERS).await);

    let stop = Arc::new(AtomicBool::new(false));
    let oks = Arc::new(AtomicUsize::new(0));
    let load_started = Instant::now();
    let payers = spawn_payers(&api, &users, &run, PAYERS, &stop, &oks);
    let min_deadline = load_started + Duration::from_secs(60);
    while Instant::now() < min_deadline {
        let n = oks.load(Ordering::Relaxed);
        if n >= OK_TARGET || (load_started.elapsed() >= LOAD_TIME && n >= OK_MIN) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let oks_at_kill = oks.load(Ordering::Relaxed);
    let load_time = load_started.elapsed();
    first.kill_and_wait();
    tokio::time::sleep(AFTER_KILL).await;
    stop.store(true, Ordering::Relaxed);
    let attempts = join_all(payers).await;
    assert!(
        oks_at_kill >= OK_MIN,
        "too little load before the kill: {oks_at_kill} OKs"
    );

    let second = Flashd::start(&launch).await;
    assert!(
        second.admin_key.is_none() && !second.stdout.lines().iter().any(|l| l.contains("Operator (admin) key")),
        "a restart must not print a new admin key"
    );
    let api = Api::new(&second.base);
    // Sessions survive the crash, and the same device secrets log into the same accounts.
    for u in users.iter() {
        assert!(api.balance(u).await >= 0, "old session of {}", u.device_id);
        let again = api.device_user(&u.device_id).await;
        assert_eq!((&again.account_id, &again.wallet_id), (&u.account_id, &u.wallet_id));
    }
    let acked = attempts.iter().filter(|(_, o)| matches!(o, Outcome::Ok(_))).count();
    let unanswered = attempts
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Unknown(_)))
        .count();
    let in_flight = attempts.iter().filter(|(_, o)| o.in_flight()).count();
    let settled = verify_after_restart(&api, &admin_key, &users, &attempts, USERS as i64).await;
    println!(
        "[{label}] load {load_time:?}: {oks_at_kill} OKs at the kill, {acked} recorded in all, \
         {unanswered} unanswered ({in_flight} cut off in flight, of which {} had posted; the rest refused connections; all replayed), \
         {} journals in all; restart took {:?}",
        settled.posted_unanswered,
        settled.posted.len(),
        second.startup
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_payment_load_loses_nothing_sqlite() {
    sigkill_under_payment_load(None, "sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigkill_under_payment_load_loses_nothing_postgres() {
    let url = postgres_url().await;
    sigkill_under_payment_load(Some(url), "postgres").await;
}

/// A payment request written by hand on its own connection, so that the test controls when
/// its body arrives: headers and half the body before SIGTERM, the rest after.
struct SlowRequest {
    stream: tokio::net::TcpStream,
    rest: Vec<u8>,
    payment: Payment,
}

async fn start_slow_request(addr: &str, users: &[User], payment: Payment) -> SlowRequest {
    let input = json!({
        "walletId": users[payment.from].wallet_id,
        "recipientWalletId": users[payment.to].wallet_id,
        "amount": payment.amount,
        "idempotencyKey": payment.key,
    });
    let body = serde_json::to_vec(&json!({ "query": PAY, "variables": { "input": input } })).expect("body");
    let head = format!(
        "POST /graphql HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        users[payment.from].token,
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let half = body.len() / 2;
    stream.write_all(head.as_bytes()).await.expect("write head");
    stream.write_all(&body[..half]).await.expect("write half body");
    stream.flush().await.expect("flush");
    SlowRequest {
        stream,
        rest: body[half..].to_vec(),
        payment,
    }
}

/// Decodes a `Transfer-Encoding: chunked` body.
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size = std::str::from_utf8(&body[..eol])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok())
            .expect("chunk size");
        if size == 0 || body.len() < eol + 2 + size {
            return out;
        }
        out.extend_from_slice(&body[eol + 2..eol + 2 + size]);
        body = &body[(eol + 4 + size).min(body.len())..];
    }
}

/// Sends the rest of the body and reads the whole answer; the journal id on success.
async fn finish_slow_request(mut r: SlowRequest) -> Result<String, String> {
    r.stream
        .write_all(&r.rest)
        .await
        .map_err(|e| format!("write rest: {e}"))?;
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), r.stream.read_to_end(&mut raw))
        .await
        .map_err(|_| "no answer in 30 s".to_string())?
        .map_err(|e| format!("read: {e} (after {} bytes)", raw.len()))?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("incomplete answer: {:?}", String::from_utf8_lossy(&raw)))?;
    let head = String::from_utf8_lossy(&raw[..split]).to_lowercase();
    let mut body = raw[split + 4..].to_vec();
    if head.contains("transfer-encoding: chunked") {
        body = dechunk(&body);
    }
    if !head.starts_with("http/1.1 200") {
        return Err(format!("answer: {head}"));
    }
    let v: serde_json::Value = serde_json::from_slice(&body)
        .map_err(|e| format!("body not JSON ({e}): {}", String::from_utf8_lossy(&body)))?;
    let payload = &v["data"]["intraLedgerPaymentSend"];
    match (payload["status"].as_str(), payload["transaction"]["id"].as_str()) {
        (Some("SUCCESS"), Some(id)) => Ok(id.to_string()),
        _ => Err(format!("payment {}: {v}", r.payment.key)),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_finishes_in_flight_requests() {
    const SLOW: usize = 6;
    const BURST_TASKS: usize = 8;
    let dir = TempDir::new("sigterm");
    let launch = Launch::new(dir.path(), None);
    let mut first = Flashd::start(&launch).await;
    let admin_key = first.admin_key.clone().expect("admin key");
    let api = Api::new(&first.base);
    let addr = first.base.trim_start_matches("http://").to_string();
    let run = unique("term");
    let users = Arc::new(funded_users(&api, &admin_key, &run, 4).await);

    // A burst of ordinary payments keeps the server busy across the signal…
    let stop = Arc::new(AtomicBool::new(false));
    let oks = Arc::new(AtomicUsize::new(0));
    let burst = spawn_payers(&api, &users, &run, BURST_TASKS, &stop, &oks);
    // …and these requests are certainly in progress when it arrives: their headers are in.
    let mut slow = Vec::new();
    for i in 0..SLOW {
        let p = Payment {
            key: format!("{run}-slow-{i}"),
            from: i % users.len(),
            to: (i + 1) % users.len(),
            amount: 1_000 + i as i64,
        };
        slow.push(start_slow_request(&addr, &users, p).await);
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while oks.load(Ordering::Relaxed) < 20 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.sigterm();
    let signalled = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut slow_done = Vec::new();
    for r in slow {
        let p = r.payment.clone();
        let result = finish_slow_request(r).await;
        match result {
            Ok(id) => slow_done.push((p, Outcome::Ok(id))),
            Err(e) => panic!("request in flight at SIGTERM did not get a complete answer: {e}"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    let mut attempts = join_all(burst).await;
    let status = first.wait_exit(Duration::from_secs(30));
    let exit_time = signalled.elapsed();
    let status = status.expect("flashd exits by itself after SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}");
    let out = first.all_output().join("\n");
    assert!(out.contains("shutting down: finishing in-flight requests"), "{out}");
    assert!(out.contains("stopped"), "{out}");

    let burst_ok = attempts.iter().filter(|(_, o)| matches!(o, Outcome::Ok(_))).count();
    let burst_unknown = attempts
        .iter()
        .filter(|(_, o)| matches!(o, Outcome::Unknown(_)))
        .count();
    let burst_cut: Vec<String> = attempts
        .iter()
        .filter(|(_, o)| o.in_flight())
        .filter_map(|(_, o)| match o {
            Outcome::Unknown(e) => Some(e.clone()),
            _ => None,
        })
        .collect();
    attempts.extend(slow_done);

    let second = Flashd::start(&launch).await;
    assert!(second.admin_key.is_none(), "a restart must not print a new admin key");
    let api = Api::new(&second.base);
    let settled = verify_after_restart(&api, &admin_key, &users, &attempts, users.len() as i64).await;
    // A request the server read was answered: none of the unanswered ones had posted.
    assert_eq!(
        settled.posted_unanswered, 0,
        "payments posted during the graceful shutdown without an answer reaching the client"
    );
    println!(
        "[sigterm] {SLOW} in-flight requests answered; burst {burst_ok} OK, {burst_unknown} unanswered \
         ({} cut off after connecting: {:?}); \
         exit 0 {exit_time:?} after SIGTERM; {} journals in all",
        burst_cut.len(),
        burst_cut.first(),
        settled.posted.len()
    );
}
