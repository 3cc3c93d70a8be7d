//! Flash Cards: taps paid per second, measured from outside a real `flashd` over HTTP.
//!
//! Per backend: `FLASH_BENCH_CLIENTS` (default 32) payers, each a funded level-2 member with one
//! card made with GraphQL `cardCreate` and programmed as the Bolt Card app does it (`POST
//! /boltcard/program/{secret}` with a UID of its own), and a shop member. Before the timed window,
//! the shop makes `FLASH_BENCH_INVOICES` (default 500) invoices per payer with GraphQL
//! `lnInvoiceCreate` (1 to 100 sats; their making is timed and printed apart). Then for
//! `FLASH_BENCH_SECS` (default 10) each payer loops, as a point of sale would: tap its card (the
//! next counter, `GET /boltcard?p=&c=`) → `withdrawRequest` → `GET /boltcard/callback?k1=&pr=`
//! with its next invoice → `OK`. Printed: taps paid per second, p50/p99 of tap → paid, refusals
//! by kind; then the shop must have received exactly the sum of the paid taps, each payer lost
//! exactly its own, and `ledgerVerify` must pass.
//!
//! Taps and callbacks count against the public LNURL limit of 600 requests a minute per client
//! address, as for many phones and points of sale: each payer spreads its taps over
//! `FLASH_BENCH_ADDRESSES` (default 16, at most 253) loopback addresses of its own (127.1.P.A), one
//! keep-alive connection each, tap and callback from the same one.
//!
//! `cargo bench -p flashd --bench cards` (Cargo builds `flashd` with the bench profile and passes
//! its path). `FLASH_BENCH_BACKENDS=sqlite,postgres` (PostgreSQL through
//! `FLASH_TEST_POSTGRES_URL`).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/flashd.rs"]
mod flashd;
#[path = "support/shared.rs"]
#[allow(dead_code)] // The other benchmarks' peers are not needed here.
mod shared;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{unique, Api, User};
use flash_merchant::boltcard::testing::SimulatedCard;
use flashd::{BenchFlashd, Refusals};
use futures_util::StreamExt;
use serde_json::{json, Value};
use shared::{env_list, env_number, percentile};

const CARD_CREATE: &str = "mutation($input: CardCreateInput!) { cardCreate(input: $input) \
     { errors { code message } card { id } programUrl } }";
const INVOICE_CREATE: &str = "mutation($input: LnInvoiceCreateInput!) { lnInvoiceCreate(input: $input) \
     { errors { code message } invoice { paymentRequest } } }";

/// What each payer's wallet is funded with, sats.
const FUNDING: i64 = 1_000_000;
/// Each card's limits, sats: far above what a run spends.
const TAP_LIMIT: i64 = 10_000;
const DAY_LIMIT: i64 = 10_000_000;

/// A payer: its member, its programmed card and the shop's invoices it will pay (BOLT11, sats).
struct Payer {
    user: User,
    card: SimulatedCard,
    invoices: Vec<(String, i64)>,
}

/// What one payer did in the timed window.
#[derive(Default)]
struct Outcome {
    /// Tap → paid, per paid tap.
    latencies: Vec<Duration>,
    /// Tap → `withdrawRequest`, per paid tap.
    taps: Vec<Duration>,
    /// Callback → `OK`, per paid tap.
    callbacks: Vec<Duration>,
    paid_sats: i64,
    refusals: Refusals,
    /// Callbacks whose answer never came (paid or not: unknown); their sats.
    unknown_sats: i64,
    ran_dry: bool,
}

fn hex16(v: &Value) -> [u8; 16] {
    let text = v.as_str().unwrap_or_else(|| panic!("a key: {v}"));
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2).expect("32 hex digits"), 16).expect("hex");
    }
    out
}

/// Payer `n`'s card UID.
fn uid(n: u64) -> [u8; 7] {
    let [.., hi, lo] = n.to_be_bytes();
    [0x04, 0xbe, 0x4c, 0x0a, 0x7d, hi, lo]
}

/// A refusal's kind: where, the HTTP status and the reason with its numbers left out.
fn kind(step: &str, status: u16, body: &str) -> String {
    let reason = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_string))
        .unwrap_or_else(|| body.chars().take(120).collect());
    let reason: String = reason
        .chars()
        .map(|c| if c.is_ascii_digit() { '#' } else { c })
        .collect();
    format!("{step} HTTP {status}: {reason}")
}

/// Payer `n`'s `a`-th loopback address (127.1.0.1 and up; `a` from 1 to 254).
fn address(n: u64, a: u64) -> IpAddr {
    let [.., hi, lo] = n.to_be_bytes();
    let a = u8::try_from(a.clamp(1, 254)).unwrap_or(1);
    IpAddr::V4(Ipv4Addr::new(127, hi.saturating_add(1), lo, a))
}

/// A keep-alive client whose connections leave from `local`.
fn client_from(local: IpAddr) -> reqwest::Client {
    reqwest::Client::builder()
        .local_address(local)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(60))
        .build()
        .expect("reqwest client")
}

/// Payer `n`: a level-2 member, funded, with a card programmed over HTTP (signed up from an
/// address of its own: sign-ups are limited to 16 an hour per address).
async fn payer(base: &str, admin: &str, n: u64) -> Payer {
    let api = &Api {
        base: base.to_string(),
        http: client_from(address(n, 254)),
    };
    let user = api.device_user(&unique(&format!("bench-card-payer-{n}"))).await;
    api.set_level(admin, &user.account_id, "TWO").await;
    api.fund(admin, &user.wallet_id, FUNDING, &unique("bench-card-fund"))
        .await;
    let input = json!({"name": format!("Bench card {n}"), "tapLimit": TAP_LIMIT, "dayLimit": DAY_LIMIT});
    let made = api.gql(&user.token, CARD_CREATE, json!({ "input": input })).await;
    let made = &made["cardCreate"];
    assert_eq!(made["errors"], json!([]), "cardCreate: {made}");
    let url = made["programUrl"].as_str().expect("programUrl");
    let path = url
        .find("/boltcard/program/")
        .map(|at| &url[at..])
        .unwrap_or_else(|| panic!("a program URL: {url}"));
    let uid = uid(n);
    let uid_hex: String = uid.iter().map(|b| format!("{b:02x}")).collect();
    let (status, keys) = api.post(path, None, &json!({ "UID": uid_hex })).await.expect("program");
    assert_eq!(status, 200, "program: {keys}");
    Payer {
        user,
        card: SimulatedCard {
            uid,
            k1: hex16(&keys["K1"]),
            k2: hex16(&keys["K2"]),
            counter: 0,
        },
        invoices: Vec::new(),
    }
}

/// One of the shop's invoices for `sats`.
async fn invoice(api: &Api, shop: &User, sats: i64) -> String {
    let input = json!({"walletId": shop.wallet_id, "amount": sats, "memo": "card bench"});
    let made = api.gql(&shop.token, INVOICE_CREATE, json!({ "input": input })).await;
    let made = &made["lnInvoiceCreate"];
    assert_eq!(made["errors"], json!([]), "lnInvoiceCreate: {made}");
    made["invoice"]["paymentRequest"]
        .as_str()
        .expect("paymentRequest")
        .to_string()
}

/// One payer's loop until `stop`: tap, then pay its next invoice with the tap's `k1`.
async fn pay_taps(base: String, mut payer: Payer, clients: Vec<reqwest::Client>, stop: Arc<AtomicBool>) -> Outcome {
    let mut out = Outcome::default();
    let mut invoices = std::mem::take(&mut payer.invoices).into_iter();
    let mut next = invoices.next();
    let mut taps = 0usize;
    while !stop.load(Ordering::Relaxed) {
        let Some((pr, sats)) = next.clone() else {
            out.ran_dry = true;
            break;
        };
        let client = &clients[taps % clients.len()];
        taps += 1;
        let started = Instant::now();
        let (p, c) = payer.card.tap();
        let offer = match client.get(format!("{base}/boltcard?p={p}&c={c}")).send().await {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                match serde_json::from_str::<Value>(&text) {
                    Ok(v) if status == 200 && v["tag"] == "withdrawRequest" => v,
                    _ => {
                        out.refusals.add(kind("tap", status, &text));
                        continue;
                    }
                }
            }
            Err(e) => {
                out.refusals.add(format!("tap not answered: {}", e.without_url()));
                continue;
            }
        };
        let offered = started.elapsed();
        let k1 = offer["k1"].as_str().unwrap_or_default();
        if offer["maxWithdrawable"].as_i64().unwrap_or(0) < sats * 1_000 {
            out.refusals.add(format!("tap offered too little: {offer}"));
            continue;
        }
        match client
            .get(format!("{base}/boltcard/callback?k1={k1}&pr={pr}"))
            .send()
            .await
        {
            Ok(r) => {
                let status = r.status().as_u16();
                let text = r.text().await.unwrap_or_default();
                if status == 200 && serde_json::from_str::<Value>(&text).is_ok_and(|v| v == json!({"status": "OK"})) {
                    let done = started.elapsed();
                    out.latencies.push(done);
                    out.taps.push(offered);
                    out.callbacks.push(done.saturating_sub(offered));
                    out.paid_sats += sats;
                    next = invoices.next();
                } else {
                    // Refused: the same invoice again with the next tap.
                    out.refusals.add(kind("callback", status, &text));
                }
            }
            Err(e) => {
                // Paid or not, nobody knows: this invoice is not tried again.
                out.refusals.add(format!("callback not answered: {}", e.without_url()));
                out.unknown_sats += sats;
                next = invoices.next();
            }
        }
    }
    out
}

async fn bench(backend: &str, clients: u64, secs: u64, per_payer: u64, addresses: u64) {
    let flashd = BenchFlashd::start(backend, "cards-bench").await;
    let (api, admin, base) = (&flashd.api, flashd.admin.as_str(), flashd.server.base.clone());
    let shop = api.device_user(&unique("bench-card-shop")).await;
    let setup = Instant::now();
    let mut payers: Vec<Payer> = futures_util::stream::iter((0..clients).map(|n| payer(&base, admin, n)))
        .buffered(8)
        .collect()
        .await;
    println!(
        "cards {backend}: {clients} payers funded, carded and programmed in {:.1} s",
        setup.elapsed().as_secs_f64()
    );

    // The shop's invoices, made before the timed window: 1 to 100 sats.
    let made = Instant::now();
    let wanted: Vec<(usize, i64)> = (0..payers.len())
        .flat_map(|p| (0..per_payer).map(move |i| (p, 1 + ((p as i64) * 37 + (i as i64) * 13) % 100)))
        .collect();
    let count = wanted.len();
    let shop = &shop;
    let mut invoices = futures_util::stream::iter(
        wanted
            .into_iter()
            .map(|(p, sats)| async move { (p, invoice(api, shop, sats).await, sats) }),
    )
    .buffer_unordered(32);
    while let Some((p, pr, sats)) = invoices.next().await {
        payers[p].invoices.push((pr, sats));
    }
    let making = made.elapsed().as_secs_f64();
    println!(
        "cards {backend}: {count} shop invoices made before the timed window in {making:.1} s ({:.0}/s)",
        count as f64 / making
    );

    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let mut accounts = Vec::new();
    for (n, payer) in payers.into_iter().enumerate() {
        let from: Vec<reqwest::Client> = (0..addresses)
            .map(|a| client_from(address(n as u64, a % 253 + 1)))
            .collect();
        accounts.push(payer.user.clone());
        tasks.push(tokio::spawn(pay_taps(base.clone(), payer, from, stop.clone())));
    }
    tokio::time::sleep(Duration::from_secs(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let (mut latencies, mut taps, mut callbacks) = (Vec::new(), Vec::new(), Vec::new());
    let mut refusals = Refusals::default();
    let (mut paid_sats, mut unknown_sats, mut dry) = (0i64, 0i64, 0usize);
    let mut spent = Vec::new();
    for t in tasks {
        let out = t.await.expect("payer task");
        spent.push((out.paid_sats, out.unknown_sats));
        paid_sats += out.paid_sats;
        unknown_sats += out.unknown_sats;
        dry += usize::from(out.ran_dry);
        latencies.extend(out.latencies);
        taps.extend(out.taps);
        callbacks.extend(out.callbacks);
        refusals.merge(out.refusals);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    taps.sort();
    callbacks.sort();
    let paid = latencies.len();
    println!(
        "cards {backend} clients={clients}: {:.0} taps paid/s ({paid} paid, {} refused in {elapsed:.1} s), \
         tap → paid p50={:.1?} p99={:.1?} max={:.1?}",
        paid as f64 / elapsed,
        refusals.total(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );
    println!(
        "cards {backend}: of which tap → withdrawRequest p50={:.1?} p99={:.1?}, callback → OK p50={:.1?} p99={:.1?}",
        percentile(&taps, 0.50),
        percentile(&taps, 0.99),
        percentile(&callbacks, 0.50),
        percentile(&callbacks, 0.99),
    );
    refusals.print(&format!("cards {backend}"), "refused");
    if dry > 0 {
        println!(
            "cards {backend}: {dry} payers ran out of invoices before the end (taps/s understated): raise \
             FLASH_BENCH_INVOICES"
        );
    }

    // The money: the shop got exactly the paid taps, each payer lost exactly its own.
    let received = api.balance(shop).await;
    assert!(
        received >= paid_sats && received <= paid_sats + unknown_sats,
        "the shop received {received} sats for {paid_sats} sats of paid taps (+{unknown_sats} unknown)"
    );
    if unknown_sats == 0 {
        assert_eq!(received, paid_sats, "the shop's balance against the paid taps");
    }
    for (user, (paid, unknown)) in accounts.iter().zip(&spent) {
        let left = api.balance(user).await;
        assert!(
            left <= FUNDING - paid && left >= FUNDING - paid - unknown,
            "payer {} has {left} sats after paying {paid} (+{unknown} unknown) of {FUNDING}",
            user.account_id
        );
    }
    let journals = api.assert_ledger_ok(admin).await;
    println!(
        "cards {backend}: the shop received {received} sats = the sum of the {paid} paid taps{}; \
         every payer's balance matches; ledger balances ({journals} journals checked)",
        if unknown_sats > 0 {
            format!(" (with {unknown_sats} sats of unanswered callbacks)")
        } else {
            String::new()
        }
    );
}

#[tokio::main]
async fn main() {
    let secs = env_number("FLASH_BENCH_SECS", 10);
    let clients = env_number("FLASH_BENCH_CLIENTS", 32);
    let per_payer = env_number("FLASH_BENCH_INVOICES", 500);
    let addresses = env_number("FLASH_BENCH_ADDRESSES", 16).max(1);
    for backend in env_list("FLASH_BENCH_BACKENDS", "sqlite,postgres") {
        bench(&backend, clients, secs, per_payer, addresses).await;
    }
}
