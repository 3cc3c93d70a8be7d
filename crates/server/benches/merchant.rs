//! Merchant services under load, measured from outside a real `flashd` over HTTP:
//!
//! - **invoices**: `FLASH_BENCH_CLIENTS` (default 64) Greenfield clients create store invoices
//!   (`POST /api/v1/stores/{id}/invoices`, keep-alive, `token` key) back to back for
//!   `FLASH_BENCH_SECS` (default 10): invoices per second and p50/p99 latency, for Lightning
//!   only and for Lightning + on-chain (a fresh address each).
//! - **webhooks**: invoices made beforehand are paid from outside (the dev node, through the
//!   operator API, at most 8 calls in flight) at `FLASH_BENCH_RATE` (default 500) per second
//!   for `FLASH_BENCH_SECS`; a
//!   local receiver records when each invoice's `InvoiceSettled` delivery arrives: payment →
//!   delivery latency p50/p99, and how many arrived.
//!
//! `cargo bench -p flashd --bench merchant` (Cargo builds `flashd` with the bench profile and
//! passes its path). `FLASH_BENCH_PARTS=invoices,webhooks`, `FLASH_BENCH_BACKENDS=sqlite,postgres`
//! (PostgreSQL through `FLASH_TEST_POSTGRES_URL`).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/flashd.rs"]
#[allow(dead_code)] // Not every count of refusals is needed here.
mod flashd;
#[path = "support/shared.rs"]
#[allow(dead_code)] // The other benchmarks' peers are not needed here.
mod shared;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::routing::post;
use common::{http, unique};
use flashd::{BenchFlashd, Refusals};
use futures_util::StreamExt;
use serde_json::{json, Value};
use shared::{env_list, env_number, percentile};

const PAY_FROM_OUTSIDE: &str =
    "mutation($r: String!) { devLightningPayInvoice(input: {paymentRequest: $r}) { errors { code message } } }";

/// Most operator-API payments in flight at once.
const PAYERS_IN_FLIGHT: usize = 8;

/// A running flashd with a store and an unrestricted Greenfield key.
struct Shop {
    flashd: BenchFlashd,
    key: String,
    store: String,
}

async fn shop(backend: &str) -> Shop {
    let flashd = BenchFlashd::start(backend, "merchant-bench").await;
    let api = &flashd.api;
    let owner = api.device_user(&unique("bench-merchant")).await;
    let (_, key) = api
        .post(
            "/api/v1/api-keys",
            Some(&owner.token),
            &json!({"label": "bench", "permissions": ["unrestricted"]}),
        )
        .await
        .expect("key");
    let (_, store) = api
        .post("/api/v1/stores", Some(&owner.token), &json!({"name": "Bench"}))
        .await
        .expect("store");
    Shop {
        key: key["apiKey"].as_str().expect("apiKey").to_string(),
        store: store["id"].as_str().expect("store").to_string(),
        flashd,
    }
}

/// Creates one invoice; its id and BOLT11 (with `methods` payment methods).
async fn create(client: &reqwest::Client, shop: &Shop, methods: &[&str]) -> Result<(String, String), String> {
    let url = format!("{}/api/v1/stores/{}/invoices", shop.flashd.server.base, shop.store);
    let body = json!({"amount": "1000", "currency": "SATS", "checkout": {"paymentMethods": methods}});
    let resp = client
        .post(&url)
        .header("authorization", format!("token {}", shop.key))
        .json(&body)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let invoice: Value = resp.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {invoice}"));
    }
    let id = invoice["id"].as_str().unwrap_or_default().to_string();
    let url = format!("{}/api/v1/invoices/{id}/payment-methods", shop.flashd.server.base);
    let methods: Value = client
        .get(&url)
        .header("authorization", format!("token {}", shop.key))
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    let bolt11 = methods
        .as_array()
        .and_then(|m| m.iter().find(|m| m["paymentMethodId"] == "BTC-LN"))
        .and_then(|m| m["destination"].as_str())
        .unwrap_or_default()
        .to_string();
    Ok((id, bolt11))
}

async fn bench_invoices(backend: &str, clients: u64, secs: u64) {
    let shop = shop(backend).await;
    for methods in [vec!["BTC-LN"], vec!["BTC-LN", "BTC-CHAIN"]] {
        let stop = Arc::new(AtomicBool::new(false));
        let made = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let url = format!("{}/api/v1/stores/{}/invoices", shop.flashd.server.base, shop.store);
        let body = json!({"amount": "1000", "currency": "SATS", "checkout": {"paymentMethods": methods}});
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..clients {
            let (stop, made, failed, url, body, key) = (
                stop.clone(),
                made.clone(),
                failed.clone(),
                url.clone(),
                body.clone(),
                shop.key.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let client = http();
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    let ok = client
                        .post(&url)
                        .header("authorization", format!("token {key}"))
                        .json(&body)
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    latencies.push(t.elapsed());
                    if ok {
                        made.fetch_add(1, Ordering::Relaxed);
                    } else {
                        failed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                latencies
            }));
        }
        tokio::time::sleep(Duration::from_secs(secs)).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await.expect("client task"));
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort();
        println!(
            "invoices {backend} [{}] clients={clients}: {:.0} invoices/s ({} made, {} failed in {elapsed:.1} s), \
             p50={:.1?} p99={:.1?}",
            methods.join("+"),
            made.load(Ordering::Relaxed) as f64 / elapsed,
            made.load(Ordering::Relaxed),
            failed.load(Ordering::Relaxed),
            percentile(&latencies, 0.50),
            percentile(&latencies, 0.99),
        );
    }
}

async fn bench_webhooks(backend: &str, rate: u64, secs: u64) {
    let shop = shop(backend).await;
    let client = http();
    // The receiver: when each invoice's InvoiceSettled arrived.
    let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = arrived.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(move |body: Bytes| {
            let seen = seen.clone();
            async move {
                if let Ok(event) = serde_json::from_slice::<Value>(&body) {
                    if event["type"] == "InvoiceSettled" {
                        if let (Some(id), Ok(mut seen)) = (event["invoiceId"].as_str(), seen.lock()) {
                            seen.insert(id.to_string(), Instant::now());
                        }
                    }
                }
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });
    let hook = client
        .post(format!("{}/api/v1/stores/{}/webhooks", shop.flashd.server.base, shop.store))
        .header("authorization", format!("token {}", shop.key))
        .json(&json!({"url": format!("http://127.0.0.1:{port}/hook"), "authorizedEvents": {"everything": false, "specificEvents": ["InvoiceSettled"]}}))
        .send()
        .await
        .expect("webhook");
    assert!(hook.status().is_success(), "webhook: {:?}", hook.text().await);

    let wanted = usize::try_from(rate * secs).unwrap_or(usize::MAX);
    let mut invoices = Vec::with_capacity(wanted);
    let mut made =
        futures_util::stream::iter((0..wanted).map(|_| create(&client, &shop, &["BTC-LN"]))).buffer_unordered(32);
    while let Some(r) = made.next().await {
        invoices.push(r.expect("invoice"));
    }
    println!(
        "webhooks {backend}: {} invoices made; paying {rate}/s for {secs} s",
        invoices.len()
    );

    let paid: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let api = Arc::new(shop.flashd.api.clone());
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    // The operator key's failure limit reserves a count for every request in flight (given
    // back on success): more than its 10 at once would lock the bench out.
    let in_flight = Arc::new(tokio::sync::Semaphore::new(PAYERS_IN_FLIGHT));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (i, (id, bolt11)) in invoices.into_iter().enumerate() {
        let due = started + interval.mul_f64(i as f64);
        tokio::time::sleep_until(due.into()).await;
        let (api, admin, paid) = (api.clone(), shop.flashd.admin.clone(), paid.clone());
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            break;
        };
        tasks.push(tokio::spawn(async move {
            let _permit = permit;
            // A payment refused is counted and left out, not fatal.
            let r: Value = match api
                .http
                .post(format!("{}/admin/graphql", api.base))
                .bearer_auth(&admin)
                .json(&json!({"query": PAY_FROM_OUTSIDE, "variables": { "r": bolt11 }}))
                .send()
                .await
            {
                Ok(resp) => resp.json().await.unwrap_or_default(),
                Err(_) => Value::Null,
            };
            if r["data"]["devLightningPayInvoice"]["errors"] == json!([]) {
                if let Ok(mut paid) = paid.lock() {
                    paid.insert(id, Instant::now());
                }
                None
            } else {
                Some(r.to_string())
            }
        }));
    }
    let mut refusals = Refusals::default();
    for t in tasks {
        if let Ok(Some(refusal)) = t.await {
            refusals.add(refusal);
        }
    }
    refusals.print(&format!("webhooks {backend}"), "payments refused");
    let paying = started.elapsed().as_secs_f64();
    // Let the last deliveries arrive.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (p, a) = (
            paid.lock().map(|p| p.len()).unwrap_or(0),
            arrived.lock().map(|a| a.len()).unwrap_or(0),
        );
        if a >= p || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let paid = paid.lock().map(|p| p.clone()).unwrap_or_default();
    let arrived = arrived.lock().map(|a| a.clone()).unwrap_or_default();
    let mut latencies: Vec<Duration> = paid
        .iter()
        .filter_map(|(id, at)| arrived.get(id).map(|got| got.saturating_duration_since(*at)))
        .collect();
    latencies.sort();
    println!(
        "webhooks {backend}: paid {} at {:.0}/s ({} refused); {} \
         InvoiceSettled deliveries; payment → delivery p50={:.1?} p99={:.1?} max={:.1?}",
        paid.len(),
        paid.len() as f64 / paying,
        wanted - paid.len(),
        latencies.len(),
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or_default(),
    );
}

#[tokio::main]
async fn main() {
    let secs = env_number("FLASH_BENCH_SECS", 10);
    let clients = env_number("FLASH_BENCH_CLIENTS", 64);
    let rate = env_number("FLASH_BENCH_RATE", 500);
    for backend in env_list("FLASH_BENCH_BACKENDS", "sqlite,postgres") {
        for part in env_list("FLASH_BENCH_PARTS", "invoices,webhooks") {
            match part.as_str() {
                "invoices" => bench_invoices(&backend, clients, secs).await,
                "webhooks" => bench_webhooks(&backend, rate, secs).await,
                other => panic!("unknown part {other}"),
            }
        }
    }
}
