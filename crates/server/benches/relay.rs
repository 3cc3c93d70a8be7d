//! The NOSTR relay over websockets on 127.0.0.1, for 1, 8 and 32 concurrent clients, against:
//!
//! - `flashd` on SQLite (its default, in a temp data dir),
//! - `flashd` on PostgreSQL (a database `flash_bench_<pid>_<n>` created and dropped here),
//! - `nostr-rs-relay` (its default SQLite database, in a temp dir; skipped with a message when
//!   the binary is not found).
//!
//! Every relay gets its rate limits raised out of the way (`[relay]` in `flashd.toml`, `[limits]`
//! in nostr-rs-relay's `config.toml`). Each client is a raw websocket (tokio-tungstenite,
//! Nagle off) speaking NIP-01; flashd's NIP-42 AUTH challenge is ignored. Every event is signed
//! with the `nostr` crate before any clock starts. Three measurements per relay, in this order
//! on one process:
//!
//! 1. **idle** — memory per idle connection: the relay process's `VmRSS` (`/proc/<pid>/status`)
//!    on the fresh process, then `FLASH_BENCH_IDLE` websocket connections opened and left idle,
//!    2 s to settle, `VmRSS` again; (after − before) / connections, KiB. The connections are
//!    closed before the next part.
//! 2. **req** — `FLASH_BENCH_LOAD` kind-1 events (default 20,000) from `FLASH_BENCH_AUTHORS`
//!    authors (default 200, the same number each, distinct `created_at`) are published first,
//!    not timed. Then each client loops: `REQ` `{authors: [one random author], kinds: [1],
//!    limit: 20}` → count the `EVENT`s until `EOSE` → `CLOSE`. Reported: REQs/s and the p50/p99
//!    of REQ → EOSE. A REQ that does not return exactly `min(20, events per author)` events or
//!    is `CLOSED` fails the run. One without EOSE within 2 s fails the run on flashd; on
//!    nostr-rs-relay (whose readers can abort a query without EOSE when they race for its
//!    checkpoint lock) it is closed and counted as "no EOSE": its 2 s are in the REQs/s, not in
//!    the latencies.
//! 3. **publish** — events/s accepted: each client publishes fresh signed kind-1 events one at a
//!    time (`EVENT` → wait for its `OK`), from a pool of `FLASH_BENCH_EVENTS` pre-signed events
//!    shared by every client of every level (64 authors, in turn). Reported: events/s and the
//!    p50/p99 of EVENT → OK. An `OK false`, an `OK` for a duplicate, or no `OK` within 30 s
//!    fails the run. When the pool runs out, the run ends early (it says so) and the rate is
//!    over the time it ran.
//!
//! In the req and publish parts, events or REQs started during the measured seconds count;
//! "server CPU" is the relay process's user + system time over the run divided by its length
//! (cores busy; on PostgreSQL the database's own processes are not in it). The bench, the relay
//! and PostgreSQL share the machine's cores.
//!
//! `cargo bench -p flashd --bench relay` (Cargo builds `flashd` with the bench profile, i.e.
//! release, and passes its path as `CARGO_BIN_EXE_flashd`). Environment:
//!
//! - `FLASH_BENCH_SECS` measured seconds per run (default 10), after `FLASH_BENCH_WARMUP_SECS`
//!   (default 1) not measured;
//! - `FLASH_BENCH_CLIENTS=1,8,32`;
//! - `FLASH_BENCH_TARGETS=flashd-sqlite,flashd-postgres,nostr-rs-relay`;
//! - `FLASH_BENCH_PARTS=idle,req,publish`;
//! - `FLASH_BENCH_IDLE=1000` idle connections; `FLASH_BENCH_LOAD=20000` and
//!   `FLASH_BENCH_AUTHORS=200` for the REQ data; `FLASH_BENCH_EVENTS=300000` pre-signed events
//!   to publish (per relay, over all levels);
//! - `FLASH_BENCH_NOSTR_RS_RELAY`: the `nostr-rs-relay` binary (default
//!   `~/.cargo/bin/nostr-rs-relay`, then `PATH`). It builds with `protobuf-compiler`; on current
//!   Rust its locked `time` 0.3.25 does not compile, so install it from its crates.io source
//!   after `cargo update -p time@0.3.25 --precise 0.3.36`, with `cargo install --path . --locked`
//!   (docs/benchmarks.md);
//! - `FLASH_TEST_POSTGRES_URL`: the PostgreSQL admin URL (default
//!   `postgres://postgres@127.0.0.1:5432/postgres`).

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "support/shared.rs"]
mod shared;
use shared::{env_list, env_number, percentile, PeerProcess, PgDatabase};

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{free_port, Flashd, Launch, Rng, TempDir};
use futures_util::{SinkExt, StreamExt};
use nostr::{EventBuilder, JsonUtil, Keys, Timestamp};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a relay may take to start.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long an OK may take before the run fails.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a REQ may wait for its EOSE before it counts as lost.
const LOST_AFTER: Duration = Duration::from_secs(2);
/// How long idle connections (and the fresh process) settle before RSS is read.
const SETTLE: Duration = Duration::from_secs(2);
/// The `limit` of every REQ.
const REQ_LIMIT: usize = 20;
/// Authors of the published events (in turn).
const PUBLISHERS: usize = 64;
/// Connections publishing the REQ data.
const LOADERS: usize = 16;
/// The clients' websocket read buffer, bytes.
const CLIENT_READ_BUFFER: usize = 8 * 1024;
/// Linux's `USER_HZ`: the unit of the CPU times in `/proc/<pid>/stat`.
const TICKS_PER_SEC: f64 = 100.0;
/// Rate limits no run reaches.
const UNLIMITED: u32 = 1_000_000_000;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

// ---------------------------------------------------------------------------------------------
// Settings

/// What to run.
struct Settings {
    measured: Duration,
    warmup: Duration,
    levels: Vec<usize>,
    parts: Vec<String>,
    idle: usize,
}

impl Settings {
    fn runs(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }
}

// ---------------------------------------------------------------------------------------------
// Pre-signed events

/// A signed event ready to send: its id (hex) and the `["EVENT", …]` message.
struct Signed {
    id: String,
    message: Utf8Bytes,
}

/// Signs `n` events, `make(i)` building the `i`th, on every core.
fn sign_all(n: usize, make: impl Fn(usize) -> Signed + Sync) -> Vec<Signed> {
    let threads = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let chunk = n.div_ceil(threads).max(1);
    let make = &make;
    std::thread::scope(|s| {
        let parts: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| s.spawn(move || (start..(start + chunk).min(n)).map(make).collect::<Vec<_>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|p| p.join().expect("signing thread"))
            .collect()
    })
}

fn signed(builder: EventBuilder, keys: &Keys) -> Signed {
    let event = builder.sign_with_keys(keys).expect("sign an event");
    Signed {
        id: event.id.to_hex(),
        message: format!("[\"EVENT\",{}]", event.as_json()).into(),
    }
}

/// The events every relay gets: the REQ data (in author order) and its authors, and the pool
/// the publish part sends.
struct Events {
    load: Vec<Signed>,
    authors: Vec<String>,
    per_author: usize,
    publish: Vec<Signed>,
}

fn sign_events(load: usize, authors: usize, publish: usize) -> Events {
    let started = Instant::now();
    let authors = authors.max(1);
    let per_author = load.div_ceil(authors);
    let author_keys: Vec<Keys> = (0..authors).map(|_| Keys::generate()).collect();
    let publisher_keys: Vec<Keys> = (0..PUBLISHERS).map(|_| Keys::generate()).collect();
    // The REQ data is an hour old and one second apart per author, so `limit` picks the newest.
    let base = Timestamp::now().as_secs() - 3_600 - per_author as u64;
    let load = sign_all(authors * per_author, |i| {
        let (a, j) = (i / per_author, i % per_author);
        let note = EventBuilder::text_note(format!(
            "Stored note {j} of author {a}, loaded before the REQ part of the Flash relay benchmark."
        ))
        .custom_created_at(Timestamp::from_secs(base + j as u64));
        signed(note, &author_keys[a])
    });
    let publish = sign_all(publish, |i| {
        let note = EventBuilder::text_note(format!(
            "Note {i} published during the Flash relay benchmark, about as long as a short post."
        ));
        signed(note, &publisher_keys[i % PUBLISHERS])
    });
    println!(
        "signed {} events ({authors} authors x {per_author}) to load and {} to publish in {:.1} s",
        load.len(),
        publish.len(),
        started.elapsed().as_secs_f64()
    );
    Events {
        load,
        authors: author_keys.iter().map(|k| k.public_key().to_hex()).collect(),
        per_author,
        publish,
    }
}

// ---------------------------------------------------------------------------------------------
// The client side of NIP-01

/// A client connection, Nagle off. Its read buffer is small: tungstenite zero-fills the whole
/// buffer (128 KiB by default) before every read, client CPU taken from the relay on a shared
/// machine.
async fn connect(url: &str) -> Result<Socket, String> {
    let config = WebSocketConfig::default().read_buffer_size(CLIENT_READ_BUFFER);
    let (ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .map_err(|e| format!("connect {url}: {e}"))?;
    Ok(ws)
}

/// The next text message; `None` when none came before `deadline`.
async fn next_text(ws: &mut Socket, deadline: Instant) -> Result<Option<Utf8Bytes>, String> {
    loop {
        match tokio::time::timeout_at(deadline.into(), ws.next()).await {
            Err(_) => return Ok(None),
            Ok(None) => return Err("the relay closed the connection".into()),
            Ok(Some(Err(e))) => return Err(format!("websocket: {e}")),
            Ok(Some(Ok(Message::Text(t)))) => return Ok(Some(t)),
            Ok(Some(Ok(Message::Close(frame)))) => return Err(format!("the relay closed the connection: {frame:?}")),
            Ok(Some(Ok(_))) => continue,
        }
    }
}

/// The first two strings of a relay message (`["EVENT","sub",…]` → `("EVENT", "sub")`), read
/// without parsing the rest. Subscription ids, event ids and message types have no escapes.
fn head(text: &str) -> Option<(&str, &str)> {
    let rest = text.trim_start().strip_prefix('[')?.trim_start().strip_prefix('"')?;
    let (kind, rest) = rest.split_once('"')?;
    let rest = rest.trim_start().strip_prefix(',')?.trim_start().strip_prefix('"')?;
    let (second, _) = rest.split_once('"')?;
    Some((kind, second))
}

async fn send(ws: &mut Socket, text: Utf8Bytes) -> Result<(), String> {
    ws.send(Message::Text(text)).await.map_err(|e| format!("send: {e}"))
}

/// Publishes one event and waits for its `OK`, which must accept it as new. Other messages
/// (AUTH, NOTICE) are skipped.
async fn publish(ws: &mut Socket, event: &Signed) -> Result<(), String> {
    send(ws, event.message.clone()).await?;
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    loop {
        let Some(text) = next_text(ws, deadline).await? else {
            return Err(format!("no OK for event {} within {ANSWER_TIMEOUT:?}", event.id));
        };
        match head(&text) {
            Some(("OK", id)) if id == event.id => {
                let ok: Value = serde_json::from_str(&text).map_err(|e| format!("OK is not JSON ({e}): {text}"))?;
                let message = ok[3].as_str().unwrap_or_default();
                if ok[2] != json!(true) || message.starts_with("duplicate:") {
                    return Err(format!("event {} not accepted as new: {text}", event.id));
                }
                return Ok(());
            }
            Some(("OK", _)) => return Err(format!("an OK for another event: {text}")),
            Some(("NOTICE", _)) => eprintln!("NOTICE while publishing: {text}"),
            _ => {}
        }
    }
}

/// One REQ → EOSE → CLOSE: the events it returned, or `None` when no EOSE came within
/// `wait` (the subscription is closed all the same).
async fn query(ws: &mut Socket, sub: &str, author: &str, wait: Duration) -> Result<Option<usize>, String> {
    let req = json!(["REQ", sub, {"authors": [author], "kinds": [1], "limit": REQ_LIMIT}]).to_string();
    send(ws, req.into()).await?;
    let deadline = Instant::now() + wait;
    let mut events = Some(0);
    loop {
        let Some(text) = next_text(ws, deadline).await? else {
            events = None;
            break;
        };
        match head(&text) {
            Some(("EVENT", s)) if s == sub => events = events.map(|n| n + 1),
            Some(("EOSE", s)) if s == sub => break,
            Some(("CLOSED", s)) if s == sub => return Err(format!("REQ refused: {text}")),
            Some(("NOTICE", _)) => eprintln!("NOTICE while querying: {text}"),
            _ => {}
        }
    }
    send(ws, json!(["CLOSE", sub]).to_string().into()).await?;
    Ok(events)
}

// ---------------------------------------------------------------------------------------------
// The relay process

fn proc_status_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// The process's resident memory, KiB.
fn rss_kib(pid: u32) -> u64 {
    proc_status_kib(pid, "VmRSS:")
}

/// The process's user + system CPU time, seconds.
fn cpu_secs(pid: u32) -> f64 {
    let stat =
        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_else(|e| panic!("read /proc/{pid}/stat: {e}"));
    // After the command name in parentheses: state is field 3, utime 14, stime 15.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> u64 {
        fields
            .get(i)
            .and_then(|f| f.parse().ok())
            .unwrap_or_else(|| panic!("no field {} in /proc/{pid}/stat", i + 3))
    };
    (ticks(11) + ticks(12)) as f64 / TICKS_PER_SEC
}

/// A relay under test: its websocket URL and the process serving it.
struct Relay {
    name: String,
    url: String,
    pid: u32,
    /// A REQ left without EOSE fails the run (Flash); otherwise it is counted.
    strict: bool,
}

// ---------------------------------------------------------------------------------------------
// The measurements

/// One run of the req or publish part.
struct Figures {
    target: String,
    clients: usize,
    done: usize,
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    cpu: f64,
    /// REQs left without EOSE.
    lost: usize,
    note: &'static str,
}

/// One relay's idle-connection memory.
struct Idle {
    target: String,
    connections: usize,
    before_kib: u64,
    after_kib: u64,
}

impl Idle {
    fn per_connection_kib(&self) -> f64 {
        (self.after_kib as f64 - self.before_kib as f64) / self.connections as f64
    }
}

async fn measure_idle(relay: &Relay, connections: usize) -> Idle {
    // A few connections first: whatever the first connection sets up once is not per connection.
    for _ in 0..10 {
        let mut ws = connect(&relay.url).await.expect("a warm-up connection");
        let _ = ws.close(None).await;
    }
    tokio::time::sleep(SETTLE).await;
    let before_kib = rss_kib(relay.pid);
    let mut open = Vec::with_capacity(connections);
    for i in 0..connections {
        let ws = connect(&relay.url)
            .await
            .unwrap_or_else(|e| panic!("{}: idle connection {i}: {e}", relay.name));
        open.push(ws);
    }
    tokio::time::sleep(SETTLE).await;
    let after_kib = rss_kib(relay.pid);
    // Every connection was still served: a REQ for an author nobody published as gets its EOSE.
    let nobody = Keys::generate().public_key().to_hex();
    let checks = open.into_iter().map(|mut ws| {
        let nobody = nobody.clone();
        async move {
            let answered = query(&mut ws, "alive", &nobody, ANSWER_TIMEOUT).await;
            let _ = ws.close(None).await;
            answered
        }
    });
    for (i, answered) in futures_util::future::join_all(checks).await.into_iter().enumerate() {
        match answered {
            Ok(Some(0)) => {}
            other => panic!("{}: idle connection {i} was not served: {other:?}", relay.name),
        }
    }
    let idle = Idle {
        target: relay.name.clone(),
        connections,
        before_kib,
        after_kib,
    };
    println!(
        "{:<16} idle: {} connections, VmRSS {:.1} -> {:.1} MiB, {:.1} KiB per connection",
        idle.target,
        connections,
        before_kib as f64 / 1024.0,
        after_kib as f64 / 1024.0,
        idle.per_connection_kib()
    );
    idle
}

/// Publishes the REQ data over [`LOADERS`] connections, one event at a time each.
async fn load(relay: &Relay, events: &Arc<Events>) {
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..LOADERS)
        .map(|_| {
            let (url, events, next) = (relay.url.clone(), events.clone(), next.clone());
            tokio::spawn(async move {
                let mut ws = connect(&url).await?;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(event) = events.load.get(i) else { break };
                    publish(&mut ws, event).await?;
                }
                let _ = ws.close(None).await;
                Ok::<(), String>(())
            })
        })
        .collect();
    for task in futures_util::future::join_all(tasks).await {
        if let Err(e) = task.expect("loader task") {
            panic!("{}: loading the REQ data: {e}", relay.name);
        }
    }
    println!(
        "{:<16} loaded {} events in {:.1} s",
        relay.name,
        events.load.len(),
        started.elapsed().as_secs_f64()
    );
}

/// What one client did in the measured part: the latency of each operation and the REQs left
/// without EOSE; or why it stopped.
type ClientRun = Result<(Vec<Duration>, usize), String>;

/// Runs `clients` tasks for `warmup + measured` on connections opened beforehand, and sums them
/// up. `step(ws, client, n)` is one timed operation.
async fn run_level<F, Fut>(
    relay: &Relay,
    part: &str,
    clients: usize,
    settings: &Settings,
    exhausted: &Arc<AtomicBool>,
    step: F,
) -> Figures
where
    F: Fn(Socket, usize, Instant, Instant) -> Fut,
    Fut: std::future::Future<Output = ClientRun> + Send + 'static,
{
    let mut sockets = Vec::with_capacity(clients);
    for _ in 0..clients {
        sockets.push(connect(&relay.url).await.expect("a client connection"));
    }
    let cpu_start = cpu_secs(relay.pid);
    let from = Instant::now() + settings.warmup;
    let until = from + settings.measured;
    let tasks: Vec<_> = sockets
        .into_iter()
        .enumerate()
        .map(|(c, ws)| tokio::spawn(step(ws, c, from, until)))
        .collect();
    let mut all = Vec::new();
    let mut lost = 0;
    let mut errors = Vec::new();
    for task in futures_util::future::join_all(tasks).await {
        match task.expect("client task") {
            Ok((latencies, l)) => {
                all.extend(latencies);
                lost += l;
            }
            Err(e) => errors.push(e),
        }
    }
    let elapsed = from.elapsed().as_secs_f64();
    let cpu = (cpu_secs(relay.pid) - cpu_start) / (elapsed + settings.warmup.as_secs_f64());
    all.sort();
    let figures = Figures {
        target: relay.name.clone(),
        clients,
        done: all.len(),
        per_sec: all.len() as f64 / elapsed,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        cpu,
        lost,
        note: if exhausted.load(Ordering::Relaxed) {
            "pool ran out: ended early"
        } else {
            ""
        },
    };
    let lost = if part == "req" {
        format!("{} without EOSE  ", figures.lost)
    } else {
        String::new()
    };
    println!(
        "{:<16} {part:<7} {:>3} clients: {:>8.0}/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {:>7} done  {lost}server CPU {:.2} {}",
        figures.target,
        clients,
        figures.per_sec,
        figures.p50.as_secs_f64() * 1e3,
        figures.p99.as_secs_f64() * 1e3,
        figures.done,
        figures.cpu,
        figures.note
    );
    if !errors.is_empty() {
        for e in &errors {
            eprintln!("{} {part}, {clients} clients: {e}", relay.name);
        }
        panic!(
            "{} {part}: {} of {clients} clients failed (first: {})",
            relay.name,
            errors.len(),
            errors[0]
        );
    }
    figures
}

async fn measure_req(relay: &Relay, events: &Arc<Events>, settings: &Settings) -> Vec<Figures> {
    let expected = REQ_LIMIT.min(events.per_author);
    let (name, strict) = (relay.name.clone(), relay.strict);
    let never = Arc::new(AtomicBool::new(false));
    let mut figures = Vec::new();
    for &clients in &settings.levels {
        let step = |mut ws: Socket, client: usize, from: Instant, until: Instant| {
            let (events, name) = (events.clone(), name.clone());
            async move {
                let mut rng = Rng::new(client as u64 + 1);
                let mut latencies = Vec::new();
                let mut lost = 0;
                for n in 0u64.. {
                    let started = Instant::now();
                    if started >= until {
                        break;
                    }
                    let author = &events.authors[rng.below(events.authors.len() as u64) as usize];
                    let sub = format!("bench-{n}");
                    let got = query(&mut ws, &sub, author, LOST_AFTER).await?;
                    let took = started.elapsed();
                    match got {
                        Some(got) if got != expected => {
                            return Err(format!("a REQ for {author} returned {got} events, not {expected}"))
                        }
                        None if strict => return Err(format!("REQ {sub}: no EOSE within {LOST_AFTER:?}")),
                        None => {
                            if lost == 0 {
                                eprintln!("{name}: REQ {sub} of client {client}: no EOSE within {LOST_AFTER:?}");
                            }
                            if started >= from {
                                lost += 1;
                            }
                        }
                        Some(_) if started >= from => latencies.push(took),
                        Some(_) => {}
                    }
                }
                let _ = ws.close(None).await;
                Ok((latencies, lost))
            }
        };
        figures.push(run_level(relay, "req", clients, settings, &never, step).await);
    }
    figures
}

async fn measure_publish(relay: &Relay, events: &Arc<Events>, settings: &Settings) -> Vec<Figures> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut figures = Vec::new();
    for &clients in &settings.levels {
        let exhausted = Arc::new(AtomicBool::new(false));
        let step = |mut ws: Socket, _client: usize, from: Instant, until: Instant| {
            let (events, next, exhausted) = (events.clone(), next.clone(), exhausted.clone());
            async move {
                let mut latencies = Vec::new();
                loop {
                    let started = Instant::now();
                    if started >= until {
                        break;
                    }
                    let Some(event) = events.publish.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        exhausted.store(true, Ordering::Relaxed);
                        break;
                    };
                    publish(&mut ws, event).await?;
                    if started >= from {
                        latencies.push(started.elapsed());
                    }
                }
                let _ = ws.close(None).await;
                Ok((latencies, 0))
            }
        };
        figures.push(run_level(relay, "publish", clients, settings, &exhausted, step).await);
    }
    let used = next.load(Ordering::Relaxed).min(events.publish.len());
    println!("{:<16} published {used} events in all", relay.name);
    figures
}

/// Everything measured on one relay.
#[derive(Default)]
struct Results {
    idle: Vec<Idle>,
    req: Vec<Figures>,
    publish: Vec<Figures>,
}

async fn measure(relay: &Relay, events: &Arc<Events>, settings: &Settings, results: &mut Results) {
    if settings.runs("idle") {
        results.idle.push(measure_idle(relay, settings.idle).await);
    }
    if settings.runs("req") {
        load(relay, events).await;
        results.req.extend(measure_req(relay, events, settings).await);
    }
    if settings.runs("publish") {
        results.publish.extend(measure_publish(relay, events, settings).await);
    }
}

// ---------------------------------------------------------------------------------------------
// flashd

/// The `[relay]` section: the default relay with every rate limit out of reach.
fn flashd_config() -> String {
    format!(
        "[relay]\n\
         events_per_minute = {UNLIMITED}\n\
         events_per_minute_per_ip = {UNLIMITED}\n\
         events_per_minute_per_pubkey = {UNLIMITED}\n\
         reqs_per_minute = {UNLIMITED}\n\
         connections_per_ip = 1000000\n"
    )
}

async fn bench_flashd(name: &str, postgres: bool, events: &Arc<Events>, settings: &Settings, results: &mut Results) {
    let db = if postgres {
        Some(PgDatabase::create().await)
    } else {
        None
    };
    let dir = TempDir::new(name);
    let launch = Launch::new(dir.path(), db.as_ref().map(|d| d.url.as_str()))
        .config(dir.path(), &flashd_config())
        .env("RUST_LOG", "warn");
    let server = Flashd::start(&launch).await;
    let relay = Relay {
        name: name.to_string(),
        url: format!("{}/", server.base.replacen("http://", "ws://", 1)),
        pid: server.pid(),
        strict: true,
    };
    println!(
        "{name}: flashd at {} (pid {}), started in {:?}",
        relay.url, relay.pid, server.startup
    );
    measure(&relay, events, settings, results).await;
    let warnings: Vec<String> = server
        .all_output()
        .into_iter()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    for line in warnings.iter().take(20) {
        println!("{name}: {line}");
    }
    drop(server);
    drop(db);
}

// ---------------------------------------------------------------------------------------------
// nostr-rs-relay

/// The `nostr-rs-relay` binary, or why there is none.
fn nostr_rs_relay_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("FLASH_BENCH_NOSTR_RS_RELAY").map(PathBuf::from) {
        return if path.is_file() {
            Ok(path)
        } else {
            Err(format!("FLASH_BENCH_NOSTR_RS_RELAY={} is not a file", path.display()))
        };
    }
    let home = std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo/bin/nostr-rs-relay"));
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("nostr-rs-relay"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    home.into_iter().chain(on_path).find(|p| p.is_file()).ok_or_else(|| {
        "no nostr-rs-relay in ~/.cargo/bin or on PATH (install nostr-rs-relay 0.8.12 as docs/benchmarks.md \
             says, or set FLASH_BENCH_NOSTR_RS_RELAY)"
            .to_string()
    })
}

/// Its `config.toml`: loopback only, SQLite in `data`, its default pool and buffers, no rate
/// limit (`0` is none), no NIP-42, warnings only.
fn nostr_rs_config(port: u16, data: &Path) -> String {
    format!(
        r#"[info]
relay_url = "ws://127.0.0.1:{port}/"
name = "nostr-rs-relay (Flash benchmark)"

[database]
engine = "sqlite"
data_directory = "{data}"

[network]
address = "127.0.0.1"
port = {port}

[options]
reject_future_seconds = 1800

[limits]
messages_per_sec = 0
subscriptions_per_min = 0
max_event_bytes = 131072
max_ws_message_bytes = 131072
max_ws_frame_bytes = 131072

[authorization]
nip42_auth = false
"#,
        data = data.display()
    )
}

/// A running `nostr-rs-relay` in a temp dir; stopped when dropped.
struct NostrRsRelay {
    process: PeerProcess,
    url: String,
    _dir: TempDir,
}

impl NostrRsRelay {
    async fn start(bin: &Path) -> Result<NostrRsRelay, String> {
        let dir = TempDir::new("nostr-rs-relay");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).map_err(|e| e.to_string())?;
        let port = free_port();
        let config = dir.path().join("config.toml");
        std::fs::write(&config, nostr_rs_config(port, &data)).map_err(|e| e.to_string())?;
        let log = dir.path().join("nostr-rs-relay.log");
        let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let err = out.try_clone().map_err(|e| e.to_string())?;
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .current_dir(dir.path())
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| format!("spawn nostr-rs-relay: {e}"))?;
        let mut relay = NostrRsRelay {
            process: PeerProcess::new(child, log),
            url: format!("ws://127.0.0.1:{port}/"),
            _dir: dir,
        };
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            if let Ok(mut ws) = connect(&relay.url).await {
                let _ = ws.close(None).await;
                return Ok(relay);
            }
            let exited = relay.process.exited();
            if exited.is_some() || Instant::now() > deadline {
                let printed = relay.process.printed();
                relay.process.stop();
                return Err(format!(
                    "nostr-rs-relay did not accept a websocket ({exited:?}): {printed}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }
}

async fn bench_nostr_rs(events: &Arc<Events>, settings: &Settings, results: &mut Results) {
    let name = "nostr-rs-relay";
    let bin = match nostr_rs_relay_binary() {
        Ok(bin) => bin,
        Err(why) => {
            println!("{name}: skipped: {why}");
            return;
        }
    };
    let version = Command::new(&bin)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"));
    let server = NostrRsRelay::start(&bin)
        .await
        .unwrap_or_else(|e| panic!("{name} ({}) did not start: {e}", bin.display()));
    let relay = Relay {
        name: name.to_string(),
        url: server.url.clone(),
        pid: server.pid(),
        strict: false,
    };
    println!(
        "{name}: {version} ({}) at {} (pid {}), SQLite",
        bin.display(),
        relay.url,
        relay.pid
    );
    measure(&relay, events, settings, results).await;
    let printed = server.process.printed();
    for line in printed.lines().filter(|l| !l.trim().is_empty()).take(20) {
        println!("{name}: {line}");
    }
    drop(server);
}

// ---------------------------------------------------------------------------------------------
// Tables

/// A markdown table of runs; `lost` adds the column of REQs left without EOSE.
fn print_runs(title: &str, unit: &str, latency: &str, lost: bool, runs: &[Figures]) {
    if runs.is_empty() {
        return;
    }
    let (lost_head, lost_rule) = if lost { (" no EOSE |", "---:|") } else { ("", "") };
    println!("\n{title}\n");
    println!(
        "| target | clients | {unit}/s | {latency} p50 ms | {latency} p99 ms | {unit} |{lost_head} server CPU (cores) |"
    );
    println!("|---|---:|---:|---:|---:|---:|{lost_rule}---:|");
    for f in runs {
        let note = if f.note.is_empty() {
            String::new()
        } else {
            format!(" ({})", f.note)
        };
        let lost_cell = if lost { format!(" {} |", f.lost) } else { String::new() };
        println!(
            "| {} | {} | {:.0} | {:.2} | {:.2} | {}{note} |{lost_cell} {:.2} |",
            f.target,
            f.clients,
            f.per_sec,
            f.p50.as_secs_f64() * 1e3,
            f.p99.as_secs_f64() * 1e3,
            f.done,
            f.cpu
        );
    }
}

fn print_idle(runs: &[Idle]) {
    if runs.is_empty() {
        return;
    }
    println!("\nMemory per idle connection\n");
    println!("| target | connections | VmRSS before MiB | VmRSS after MiB | KiB per connection |");
    println!("|---|---:|---:|---:|---:|");
    for i in runs {
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} |",
            i.target,
            i.connections,
            i.before_kib as f64 / 1024.0,
            i.after_kib as f64 / 1024.0,
            i.per_connection_kib()
        );
    }
}

// ---------------------------------------------------------------------------------------------

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let settings = Settings {
        measured: Duration::from_secs(env_number("FLASH_BENCH_SECS", 10)),
        warmup: Duration::from_secs(env_number("FLASH_BENCH_WARMUP_SECS", 1)),
        levels: env_list("FLASH_BENCH_CLIENTS", "1,8,32")
            .iter()
            .map(|c| c.parse().expect("FLASH_BENCH_CLIENTS: numbers"))
            .collect(),
        parts: env_list("FLASH_BENCH_PARTS", "idle,req,publish"),
        idle: env_number("FLASH_BENCH_IDLE", 1_000) as usize,
    };
    assert!(
        settings.levels.iter().all(|&c| c > 0),
        "FLASH_BENCH_CLIENTS: at least 1 client"
    );
    for part in &settings.parts {
        assert!(
            ["idle", "req", "publish"].contains(&part.as_str()),
            "unknown part {part} (FLASH_BENCH_PARTS)"
        );
    }
    let targets = env_list("FLASH_BENCH_TARGETS", "flashd-sqlite,flashd-postgres,nostr-rs-relay");
    let load = if settings.runs("req") {
        env_number("FLASH_BENCH_LOAD", 20_000) as usize
    } else {
        0
    };
    let to_publish = if settings.runs("publish") {
        env_number("FLASH_BENCH_EVENTS", 300_000) as usize
    } else {
        0
    };
    let authors = env_number("FLASH_BENCH_AUTHORS", 200) as usize;
    println!(
        "NOSTR relay: {} s measured after {} s warm-up per run, clients {:?}, parts {:?}",
        settings.measured.as_secs(),
        settings.warmup.as_secs(),
        settings.levels,
        settings.parts
    );
    let events = Arc::new(tokio::task::block_in_place(|| sign_events(load, authors, to_publish)));
    let mut results = Results::default();
    for target in &targets {
        match target.as_str() {
            "flashd-sqlite" => bench_flashd(target, false, &events, &settings, &mut results).await,
            "flashd-postgres" => bench_flashd(target, true, &events, &settings, &mut results).await,
            "nostr-rs-relay" => bench_nostr_rs(&events, &settings, &mut results).await,
            other => panic!("unknown target {other} (FLASH_BENCH_TARGETS)"),
        }
        println!();
    }
    print_runs(
        "Events published (EVENT -> OK true, one at a time per client)",
        "events",
        "OK",
        false,
        &results.publish,
    );
    print_runs(
        &format!("REQ {{authors: [1 of {authors}], kinds: [1], limit: {REQ_LIMIT}}} -> EOSE -> CLOSE"),
        "REQs",
        "EOSE",
        true,
        &results.req,
    );
    print_idle(&results.idle);
}
