//! The providers and the cache against a local stand-in server that answers in Coinbase's and
//! CoinGecko's real formats (and badly, slowly or stalely when told to).

use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use flash_core::ports::Clock;
use flash_core::{FiatCurrency, PriceSource, PriceSourceError};
use flash_rates::{
    build, CachePolicy, CachedPrices, CoinGecko, Coinbase, PriceProvider, ProviderError, RatesConfig, SourceConfig,
};

/// How the stand-in answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Ok,
    Error500,
    Garbage,
    Slow,
}

struct Stand {
    coinbase: Mutex<Mode>,
    coingecko: Mutex<Mode>,
    coinbase_hits: AtomicUsize,
    coingecko_hits: AtomicUsize,
    /// CoinGecko's `last_updated_at`, Unix seconds.
    updated_at: AtomicI64,
}

fn now_secs() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("after 1970")
            .as_secs(),
    )
    .expect("fits")
}

async fn misbehave(mode: Mode) -> Option<Response> {
    match mode {
        Mode::Ok => None,
        Mode::Error500 => Some((StatusCode::INTERNAL_SERVER_ERROR, "oops").into_response()),
        Mode::Garbage => Some("<html>not json</html>".into_response()),
        Mode::Slow => {
            tokio::time::sleep(Duration::from_secs(5)).await;
            None
        }
    }
}

async fn coinbase(State(s): State<Arc<Stand>>, Query(q): Query<Vec<(String, String)>>) -> Response {
    s.coinbase_hits.fetch_add(1, Ordering::SeqCst);
    let mode = *s.coinbase.lock().expect("lock");
    if let Some(r) = misbehave(mode).await {
        return r;
    }
    assert!(q.contains(&("currency".into(), "BTC".into())), "{q:?}");
    // Coinbase's real shape (abridged): every rate a decimal string.
    let body = r#"{"data":{"currency":"BTC","rates":{"AED":"236504.56","EUR":"59341.8155","JPY":"9876543.21","KWD":"19800.5125","USD":"64392.23","USDC":"64390.000000"}}}"#;
    ([("content-type", "application/json")], body).into_response()
}

async fn coingecko(State(s): State<Arc<Stand>>, Query(q): Query<Vec<(String, String)>>) -> Response {
    s.coingecko_hits.fetch_add(1, Ordering::SeqCst);
    let mode = *s.coingecko.lock().expect("lock");
    if let Some(r) = misbehave(mode).await {
        return r;
    }
    assert!(q.contains(&("ids".into(), "bitcoin".into())), "{q:?}");
    let vs = q
        .iter()
        .find(|(k, _)| k == "vs_currencies")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let updated = s.updated_at.load(Ordering::SeqCst);
    // CoinGecko's real shape: numbers, lower-case codes, an unknown code simply absent.
    let mut bitcoin = serde_json::Map::new();
    for code in vs.split(',') {
        let price = match code {
            "usd" => serde_json::json!(64401.5),
            "eur" => serde_json::json!(59350),
            "jpy" => serde_json::json!(9877000),
            _ => continue,
        };
        bitcoin.insert(code.to_string(), price);
    }
    bitcoin.insert("last_updated_at".into(), serde_json::json!(updated));
    axum::Json(serde_json::json!({ "bitcoin": bitcoin })).into_response()
}

async fn stand_in() -> (String, Arc<Stand>) {
    let stand = Arc::new(Stand {
        coinbase: Mutex::new(Mode::Ok),
        coingecko: Mutex::new(Mode::Ok),
        coinbase_hits: AtomicUsize::new(0),
        coingecko_hits: AtomicUsize::new(0),
        updated_at: AtomicI64::new(now_secs()),
    });
    let app = Router::new()
        .route("/v2/exchange-rates", get(coinbase))
        .route("/api/v3/simple/price", get(coingecko))
        .with_state(stand.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), stand)
}

/// A clock the test moves.
struct TestClock(AtomicI64);

impl TestClock {
    fn new() -> Arc<TestClock> {
        Arc::new(TestClock(AtomicI64::new(now_secs() * 1000)))
    }
    fn advance(&self, d: Duration) {
        self.0
            .fetch_add(i64::try_from(d.as_millis()).expect("fits"), Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

const TIMEOUT: Duration = Duration::from_millis(500);

fn usd() -> FiatCurrency {
    FiatCurrency::usd()
}

fn code(c: &str) -> FiatCurrency {
    FiatCurrency::new(c).expect("currency")
}

fn cached(url: &str, clock: Arc<TestClock>, coingecko_first: bool) -> CachedPrices {
    let cb: Arc<dyn PriceProvider> = Arc::new(Coinbase::new(url, TIMEOUT, clock.clone()).expect("client"));
    let cg: Arc<dyn PriceProvider> = Arc::new(CoinGecko::new(url, TIMEOUT, clock.clone()).expect("client"));
    let providers = if coingecko_first { vec![cg, cb] } else { vec![cb, cg] };
    let policy = CachePolicy {
        ttl: Duration::from_secs(60),
        max_age: Duration::from_secs(600),
        timeout: TIMEOUT,
    };
    CachedPrices::new(providers, vec![usd()], policy, clock)
}

#[tokio::test]
async fn coinbase_parses_its_real_format_exactly() {
    let (url, _) = stand_in().await;
    let clock = TestClock::new();
    let cb = Coinbase::new(&url, TIMEOUT, clock.clone()).expect("client");
    let p = cb.fetch(&usd()).await.expect("price");
    assert_eq!(p.to_string(), "64392.23");
    assert_eq!(p.provider(), "coinbase");
    assert_eq!(p.observed_at_ms(), clock.now_ms());
    // More digits than the currency has are kept exactly (rounded only for display).
    let eur = cb.fetch(&code("EUR")).await.expect("price");
    assert_eq!(eur.minor_per_btc().mantissa, 593418155);
    assert_eq!(eur.minor_per_btc().scale, 2);
    assert_eq!(eur.to_string(), "59341.82");
    assert_eq!(cb.fetch(&code("JPY")).await.expect("price").to_string(), "9876543");
    assert_eq!(cb.fetch(&code("KWD")).await.expect("price").to_string(), "19800.513");
    let unknown = cb.fetch(&code("XYZ")).await;
    assert!(
        matches!(unknown, Err(ProviderError::UnknownCurrency { .. })),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn coingecko_parses_its_real_format_exactly() {
    let (url, stand) = stand_in().await;
    let clock = TestClock::new();
    let cg = CoinGecko::new(&url, TIMEOUT, clock.clone()).expect("client");
    let p = cg.fetch(&usd()).await.expect("price");
    assert_eq!(p.to_string(), "64401.50");
    assert_eq!(p.provider(), "coingecko");
    assert_eq!(p.observed_at_ms(), stand.updated_at.load(Ordering::SeqCst) * 1000);
    assert_eq!(cg.fetch(&code("EUR")).await.expect("price").to_string(), "59350.00");
    assert_eq!(cg.fetch(&code("JPY")).await.expect("price").to_string(), "9877000");
    let unknown = cg.fetch(&code("XYZ")).await;
    assert!(
        matches!(unknown, Err(ProviderError::UnknownCurrency { .. })),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn a_second_read_inside_the_ttl_does_not_ask_again() {
    let (url, stand) = stand_in().await;
    let clock = TestClock::new();
    let prices = cached(&url, clock.clone(), false);
    let first = prices.price(&usd()).await.expect("price");
    let second = prices.price(&usd()).await.expect("price");
    assert_eq!(first, second);
    assert_eq!(stand.coinbase_hits.load(Ordering::SeqCst), 1);
    clock.advance(Duration::from_secs(61));
    prices.price(&usd()).await.expect("price");
    assert_eq!(
        stand.coinbase_hits.load(Ordering::SeqCst),
        2,
        "after the TTL it asks again"
    );
    assert_eq!(stand.coingecko_hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn falls_back_on_500_garbage_and_timeout_and_says_who_answered() {
    for mode in [Mode::Error500, Mode::Garbage, Mode::Slow] {
        let (url, stand) = stand_in().await;
        *stand.coinbase.lock().expect("lock") = mode;
        let prices = cached(&url, TestClock::new(), false);
        let started = std::time::Instant::now();
        let p = prices.price(&usd()).await.expect("the second provider answers");
        assert_eq!(p.provider(), "coingecko", "{mode:?}");
        assert_eq!(p.to_string(), "64401.50");
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{mode:?}: the timeout is short"
        );
        assert_eq!(stand.coinbase_hits.load(Ordering::SeqCst), 1);
    }
}

#[tokio::test]
async fn a_stale_price_is_skipped_for_the_next_provider_or_refused() {
    let (url, stand) = stand_in().await;
    stand.updated_at.store(now_secs() - 3600, Ordering::SeqCst);
    let clock = TestClock::new();
    let prices = cached(&url, clock.clone(), true);
    let p = prices.price(&usd()).await.expect("coinbase answers");
    assert_eq!(p.provider(), "coinbase");
    assert_eq!(stand.coingecko_hits.load(Ordering::SeqCst), 1);

    // Only the stale provider: a typed error, not the old price.
    let (url, stand) = stand_in().await;
    stand.updated_at.store(now_secs() - 3600, Ordering::SeqCst);
    let cg: Arc<dyn PriceProvider> = Arc::new(CoinGecko::new(&url, TIMEOUT, clock.clone()).expect("client"));
    let policy = CachePolicy {
        ttl: Duration::from_secs(60),
        max_age: Duration::from_secs(600),
        timeout: TIMEOUT,
    };
    let only = CachedPrices::new(vec![cg], vec![usd()], policy, clock.clone());
    match only.price(&usd()).await {
        Err(PriceSourceError::Stale { age_ms }) => assert!(age_ms >= 3_600_000, "{age_ms}"),
        other => panic!("expected Stale, got {other:?}"),
    }
}

#[tokio::test]
async fn the_cache_never_outlives_the_max_age() {
    let (url, stand) = stand_in().await;
    let clock = TestClock::new();
    let prices = cached(&url, clock.clone(), false);
    prices.price(&usd()).await.expect("price");
    *stand.coinbase.lock().expect("lock") = Mode::Error500;
    *stand.coingecko.lock().expect("lock") = Mode::Error500;
    // Past the TTL, within the max age: every provider fails, the cached price is answered.
    clock.advance(Duration::from_secs(120));
    let p = prices.price(&usd()).await.expect("the cached price");
    assert_eq!(p.provider(), "coinbase");
    // Past the max age: refused.
    clock.advance(Duration::from_secs(600));
    let e = prices.price(&usd()).await;
    assert!(matches!(e, Err(PriceSourceError::Unavailable(_))), "{e:?}");
}

#[tokio::test]
async fn an_unknown_currency_is_a_typed_error() {
    let (url, _) = stand_in().await;
    let prices = cached(&url, TestClock::new(), false);
    assert_eq!(
        prices.price(&code("XYZ")).await,
        Err(PriceSourceError::UnknownCurrency("XYZ".into()))
    );
}

#[tokio::test]
async fn the_config_builds_dev_by_default_and_providers_on_request() {
    let clock: Arc<dyn Clock> = TestClock::new();
    let dev = build(&RatesConfig::default(), clock.clone()).expect("dev");
    assert_eq!(dev.name(), "dev");
    assert!(dev.is_simulated());
    let p = dev.price(&usd()).await.expect("dev price");
    assert_eq!(p.to_string(), "100000.00");
    assert_eq!(p.provider(), "dev");
    assert_eq!(
        dev.price(&code("XYZ")).await,
        Err(PriceSourceError::UnknownCurrency("XYZ".into()))
    );

    let (url, _) = stand_in().await;
    let config = RatesConfig {
        source: SourceConfig::Providers(vec!["coingecko".into(), "coinbase".into()]),
        coinbase_url: url.clone(),
        coingecko_url: url,
        ..RatesConfig::default()
    };
    let live = build(&config, clock.clone()).expect("providers");
    assert_eq!(live.name(), "coingecko,coinbase");
    assert!(!live.is_simulated());
    assert_eq!(live.price(&usd()).await.expect("price").provider(), "coingecko");

    let bad = RatesConfig {
        source: SourceConfig::Providers(vec!["bitstamp".into()]),
        ..RatesConfig::default()
    };
    assert!(build(&bad, clock.clone()).is_err());
    let mut bad_rate = RatesConfig::default();
    bad_rate.dev.insert("USD".into(), "-5".into());
    assert!(build(&bad_rate, clock).is_err());
}
