//! What an unauthenticated attacker's GraphQL costs `flashd`: how fast a fragment bomb (30
//! fragments, each spreading the next one twice: 2^30 fields in about 1.4 KB) is refused, and
//! how `/healthz` answers while `FLASH_BENCH_ATTACKERS` (default 16) clients send such bombs
//! back to back, on both `/graphql` and `/admin/graphql` (with a wrong key).
//!
//! `cargo bench -p flashd --bench graphql_abuse` (Cargo builds `flashd` with the bench
//! profile and passes its path). Environment: `FLASH_BENCH_SECS` (default 10) seconds under
//! attack; `FLASH_BENCH_ATTACKERS` (default 16); `FLASH_BENCH_LEVELS` (default 30).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/shared.rs"]
#[allow(dead_code)] // The other benchmarks' peers and databases are not needed here.
mod shared;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{http, Flashd, Launch, TempDir};
use serde_json::{json, Value};
use shared::{env_number, percentile};

/// `levels` fragments, each spreading the next one twice.
fn fragment_bomb(levels: usize) -> String {
    let mut q = String::from("query { ...F0 }\n");
    for i in 0..levels {
        q.push_str(&format!(
            "fragment F{i} on PublicQuery {{ ...F{} ...F{} }}\n",
            i + 1,
            i + 1
        ));
    }
    q.push_str(&format!("fragment F{levels} on PublicQuery {{ __typename }}\n"));
    q
}

fn summary(name: &str, mut samples: Vec<Duration>) {
    samples.sort();
    println!(
        "{name}: n={} p50={:.2?} p99={:.2?} max={:.2?}",
        samples.len(),
        percentile(&samples, 0.50),
        percentile(&samples, 0.99),
        samples.last().copied().unwrap_or_default()
    );
}

/// Sends the bomb and checks it was refused as too complex; the request's latency.
async fn send_bomb(client: &reqwest::Client, url: &str, body: &Value, token: Option<&str>) -> Duration {
    let started = Instant::now();
    let mut req = client.post(url).json(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let answer: Value = req.send().await.expect("POST").json().await.expect("JSON");
    let took = started.elapsed();
    let code = answer["errors"][0]["extensions"]["code"].as_str().unwrap_or_default();
    assert!(
        matches!(code, "QUERY_TOO_COMPLEX" | "UNAUTHENTICATED" | "RATE_LIMITED") && answer["data"].is_null(),
        "the bomb was not refused: {answer}"
    );
    took
}

#[tokio::main]
async fn main() {
    let secs = env_number("FLASH_BENCH_SECS", 10);
    let attackers = env_number("FLASH_BENCH_ATTACKERS", 16);
    let levels = env_number("FLASH_BENCH_LEVELS", 30) as usize;
    let dir = TempDir::new("graphql-abuse");
    let server = Flashd::start(&Launch::new(dir.path(), None).env("RUST_LOG", "warn")).await;
    let bomb = json!({ "query": fragment_bomb(levels) });
    println!(
        "flashd at {} (pid {}); {levels}-level fragment bomb of {} bytes",
        server.base,
        server.pid(),
        bomb["query"].as_str().map_or(0, str::len)
    );
    let client = http();
    let graphql = format!("{}/graphql", server.base);
    let admin = format!("{}/admin/graphql", server.base);
    let healthz = format!("{}/healthz", server.base);

    // 1. One bomb at a time.
    let mut alone = Vec::new();
    for _ in 0..200 {
        alone.push(send_bomb(&client, &graphql, &bomb, None).await);
    }
    summary("bomb refused, one at a time (/graphql)", alone);

    // 2. /healthz under attack.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for i in 0..attackers {
        let (client, stop, sent, bomb) = (client.clone(), stop.clone(), sent.clone(), bomb.clone());
        let url = if i % 2 == 0 { graphql.clone() } else { admin.clone() };
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                latencies.push(send_bomb(&client, &url, &bomb, Some("flashadm_wrong")).await);
                sent.fetch_add(1, Ordering::Relaxed);
            }
            latencies
        }));
    }
    let mut health = Vec::new();
    let until = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < until {
        let started = Instant::now();
        let status = client.get(&healthz).send().await.expect("GET /healthz").status();
        health.push(started.elapsed());
        assert!(status.is_success(), "/healthz answered {status}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let mut refused = Vec::new();
    for t in tasks {
        refused.extend(t.await.expect("attacker"));
    }
    println!(
        "{attackers} attackers for {secs} s: {} bombs refused ({:.0}/s)",
        sent.load(Ordering::Relaxed),
        sent.load(Ordering::Relaxed) as f64 / secs as f64
    );
    summary("bomb refused, under attack", refused);
    summary("/healthz under attack", health);
}
