//! Login codes, failed-login limits and operator-key throttling under concurrency and across
//! restarts (issue 14, items 5 and 9). Every count is kept by the store, so these run on both
//! backends, and a second service (or a second store handle: another node, or the process
//! after a restart) sees the same counts.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use flash_auth::{rate_limits, Auth, AuthConfig, AuthError, Identifier};
use flash_core::ports::{BoxFuture, CodeChannel, CodeSendError, CodeSender, SystemClock};
use flash_core::Phone;
use flash_store::testing::{fresh_config, fresh_store, Backend};
use flash_store::Store;
use tokio::sync::Barrier;

flash_store::on_both_backends!(
    right_code_sent_eight_times_at_once_opens_one_session,
    concurrent_wrong_logins_never_pass_the_identifier_cap,
    concurrent_wrong_logins_never_pass_the_ip_cap,
    failed_login_limits_survive_a_restart,
    code_request_limits_survive_a_restart,
    wrong_operator_keys_are_throttled,
    concurrent_wrong_operator_keys_never_pass_the_caps,
);

/// Remembers the last code sent to each identifier.
#[derive(Clone, Default)]
struct Codes(Arc<Mutex<HashMap<String, String>>>);

impl Codes {
    fn get(&self, to: &str) -> String {
        self.0
            .lock()
            .expect("codes lock")
            .get(to)
            .cloned()
            .unwrap_or_else(|| panic!("no code was sent to {to}"))
    }
}

impl CodeSender for Codes {
    fn send_code<'a>(
        &'a self,
        _channel: CodeChannel,
        identifier: &'a str,
        code: &'a str,
    ) -> BoxFuture<'a, Result<(), CodeSendError>> {
        self.0
            .lock()
            .expect("codes lock")
            .insert(identifier.to_string(), code.to_string());
        Box::pin(async { Ok(()) })
    }
}

fn auth(store: &Store, codes: &Codes) -> Auth {
    Auth::new(store.clone(), Arc::new(codes.clone()), [7u8; 32], AuthConfig::default())
}

fn phone(i: u32) -> Identifier {
    Identifier::Phone(Phone::parse(&format!("+1555{i:07}")).expect("phone"))
}

/// A distinct address per `i` (up to 65,536).
fn ip(i: u32) -> IpAddr {
    let [_, _, hi, lo] = i.to_be_bytes();
    IpAddr::V4(Ipv4Addr::new(10, 7, hi, lo))
}

/// The same code with every digit changed: certainly wrong, still well formed.
fn wrong(code: &str) -> String {
    code.bytes()
        .map(|b| char::from(if b == b'9' { b'0' } else { b + 1 }))
        .collect()
}

fn is_rate_limited(r: &Result<impl std::fmt::Debug, AuthError>) -> bool {
    matches!(r, Err(AuthError::RateLimited { .. }))
}

/// Runs `n` calls of `f` at once (released together by a barrier) and returns their answers.
async fn all_at_once<T, F, Fut>(n: usize, f: F) -> Vec<Result<T, AuthError>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Result<T, AuthError>> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let barrier = barrier.clone();
            let call = f(i);
            tokio::spawn(async move {
                barrier.wait().await;
                call.await
            })
        })
        .collect();
    let mut answers = Vec::with_capacity(n);
    for task in tasks {
        answers.push(task.await.expect("task"));
    }
    answers
}

/// Issue 14: the right code sent 8 times at once gave 4–5 sessions; it must be single use.
async fn right_code_sent_eight_times_at_once_opens_one_session(backend: Backend) {
    let store = fresh_store(backend).await;
    let codes = Codes::default();
    let auth = auth(&store, &codes);
    for round in 0..3 {
        let who = phone(round);
        auth.request_code(&who, ip(round)).await.expect("code sent");
        let code = codes.get(&format!("+1555{round:07}"));
        let answers = all_at_once(8, |i| {
            let (auth, who, code) = (auth.clone(), who.clone(), code.clone());
            let from = ip(1000 + u32::try_from(i).expect("small"));
            async move { auth.verify_code(&who, &code, from).await }
        })
        .await;
        let accepted = answers.iter().filter(|a| a.is_ok()).count();
        assert_eq!(
            accepted, 1,
            "round {round}: the code opened {accepted} sessions: {answers:?}"
        );
        // Used up: one more try is refused too.
        assert!(auth.verify_code(&who, &code, ip(2000)).await.is_err());
    }
}

/// Issue 14: 400 concurrent wrong logins over 25 identifiers got 202 answers against a cap
/// of 200 (8 failures per identifier). Each comes from its own address, so only the
/// per-identifier limit applies; exactly the cap is answered, the rest are rate limited.
async fn concurrent_wrong_logins_never_pass_the_identifier_cap(backend: Backend) {
    let store = fresh_store(backend).await;
    let codes = Codes::default();
    let auth = auth(&store, &codes);
    let identifiers = 25u32;
    for i in 0..identifiers {
        auth.request_code(&phone(i), ip(i)).await.expect("code sent");
    }
    let per_identifier = usize::try_from(rate_limits::FAILED_LOGIN_PER_IDENTIFIER.max).expect("fits");
    let answers = all_at_once(400, |i| {
        let auth = auth.clone();
        let who = u32::try_from(i % 25).expect("small");
        let code = wrong(&codes.get(&format!("+1555{who:07}")));
        let from = ip(5000 + u32::try_from(i).expect("small"));
        async move { auth.verify_code(&phone(who), &code, from).await }
    })
    .await;
    let answered = answers.iter().filter(|a| !is_rate_limited(a)).count();
    assert_eq!(answered, per_identifier * 25, "answered wrong logins");
    assert!(answers.iter().all(|a| a.is_err()), "a wrong code was accepted");
}

/// Many identifiers from one address: the per-address cap (20 failures) holds exactly.
async fn concurrent_wrong_logins_never_pass_the_ip_cap(backend: Backend) {
    let store = fresh_store(backend).await;
    let auth = auth(&store, &Codes::default());
    let attacker = ip(9);
    let answers = all_at_once(100, |i| {
        let auth = auth.clone();
        let who = phone(100 + u32::try_from(i).expect("small"));
        async move { auth.verify_code(&who, "123456", attacker).await }
    })
    .await;
    let answered = answers.iter().filter(|a| !is_rate_limited(a)).count();
    let cap = usize::try_from(rate_limits::FAILED_LOGIN_PER_IP.max).expect("fits");
    assert_eq!(answered, cap, "answered wrong logins from one address");
    // Another address is not affected.
    let r = auth.verify_code(&phone(999), "123456", ip(10)).await;
    assert!(matches!(r, Err(AuthError::InvalidCode)), "{r:?}");
}

/// Opens a second handle on the same database: flashd after a restart, or another node.
async fn reopen(config: &flash_store::StoreConfig) -> Store {
    Store::open(config, Arc::new(SystemClock)).await.expect("reopen store")
}

/// Issue 14: login-code limits reset when flashd restarted.
async fn failed_login_limits_survive_a_restart(backend: Backend) {
    let config = fresh_config(backend).await;
    let first = reopen(&config).await;
    let codes = Codes::default();
    let who = phone(1);
    {
        let auth = auth(&first, &codes);
        for i in 0..rate_limits::FAILED_LOGIN_PER_IDENTIFIER.max {
            let r = auth.verify_code(&who, "000000", ip(100 + i)).await;
            assert!(matches!(r, Err(AuthError::InvalidCode)), "failure {i}: {r:?}");
        }
    }
    let second = reopen(&config).await;
    let auth = auth(&second, &codes);
    let r = auth.verify_code(&who, "000000", ip(200)).await;
    assert!(is_rate_limited(&r), "after a restart: {r:?}");
    // Even a fresh, right code waits for the window to end.
    auth.request_code(&who, ip(201)).await.expect("code sent");
    let r = auth.verify_code(&who, &codes.get("+15550000001"), ip(202)).await;
    assert!(is_rate_limited(&r), "right code after the cap: {r:?}");
    // The per-address count survives too.
    let attacker = ip(300);
    for i in 0..rate_limits::FAILED_LOGIN_PER_IP.max {
        let r = auth.verify_code(&phone(1000 + i), "000000", attacker).await;
        assert!(matches!(r, Err(AuthError::InvalidCode)), "failure {i}: {r:?}");
    }
    let third = reopen(&config).await;
    let r = self::auth(&third, &codes)
        .verify_code(&phone(5000), "000000", attacker)
        .await;
    assert!(is_rate_limited(&r), "per address after a restart: {r:?}");
}

/// Issue 14: code-request limits reset when flashd restarted.
async fn code_request_limits_survive_a_restart(backend: Backend) {
    let config = fresh_config(backend).await;
    let codes = Codes::default();
    let who = phone(2);
    for i in 0..rate_limits::CODE_REQUEST_PER_IDENTIFIER.max {
        // A restart before every request.
        let store = reopen(&config).await;
        auth(&store, &codes).request_code(&who, ip(i)).await.expect("code sent");
    }
    let store = reopen(&config).await;
    let r = auth(&store, &codes).request_code(&who, ip(50)).await;
    assert!(is_rate_limited(&r), "after restarts: {r:?}");
    // Per address as well.
    let from = ip(60);
    for i in 0..rate_limits::CODE_REQUEST_PER_IP.max {
        auth(&store, &codes)
            .request_code(&phone(100 + i), from)
            .await
            .expect("code sent");
    }
    let store = reopen(&config).await;
    let r = auth(&store, &codes).request_code(&phone(999), from).await;
    assert!(is_rate_limited(&r), "per address after a restart: {r:?}");
}

/// Issue 14: wrong operator keys were never throttled. After the cap, an address is refused
/// without its key being checked (the right key too), across a restart; others still get in.
async fn wrong_operator_keys_are_throttled(backend: Backend) {
    let config = fresh_config(backend).await;
    let store = reopen(&config).await;
    let auth = auth(&store, &Codes::default());
    let key = auth.create_admin_key("ops").await.expect("admin key");
    let attacker = ip(1);
    for i in 0..rate_limits::ADMIN_KEY_FAILURES_PER_IP.max {
        let r = auth.authenticate_admin("flash_admin_wrong", attacker).await;
        assert!(matches!(r, Err(AuthError::Unauthenticated)), "failure {i}: {r:?}");
    }
    let r = auth.authenticate_admin("flash_admin_wrong", attacker).await;
    assert!(is_rate_limited(&r), "{r:?}");
    let r = auth.authenticate_admin(&key, attacker).await;
    assert!(is_rate_limited(&r), "the right key from a throttled address: {r:?}");
    assert_eq!(auth.authenticate_admin(&key, ip(2)).await.expect("operator"), "ops");
    // A restart does not lift it.
    let restarted = self::auth(&reopen(&config).await, &Codes::default());
    let r = restarted.authenticate_admin("flash_admin_wrong", attacker).await;
    assert!(is_rate_limited(&r), "after a restart: {r:?}");
    // Successes are not failures: the operator can keep working.
    for _ in 0..2 * rate_limits::ADMIN_KEY_FAILURES_PER_IP.max {
        assert_eq!(
            restarted.authenticate_admin(&key, ip(3)).await.expect("operator"),
            "ops"
        );
    }
}

/// Concurrent wrong operator keys: exactly the per-address cap from one address; other
/// addresses are unaffected.
async fn concurrent_wrong_operator_keys_never_pass_the_caps(backend: Backend) {
    let store = fresh_store(backend).await;
    let auth = auth(&store, &Codes::default());
    auth.create_admin_key("ops").await.expect("admin key");
    let per_ip = usize::try_from(rate_limits::ADMIN_KEY_FAILURES_PER_IP.max).expect("fits");
    let answers = all_at_once(per_ip * 4, |_| {
        let auth = auth.clone();
        async move { auth.authenticate_admin("flash_admin_wrong", ip(1)).await }
    })
    .await;
    let answered = answers.iter().filter(|a| !is_rate_limited(a)).count();
    assert_eq!(answered, per_ip, "answered from one address");

    // Other addresses are not locked out by one address's failures: a guesser cannot deny the
    // operator the API (the keys are 256-bit random, so guessing from many addresses is no risk).
    let others = all_at_once(per_ip * 4, |i| {
        let auth = auth.clone();
        let from = ip(100 + u32::try_from(i).expect("small"));
        async move { auth.authenticate_admin("flash_admin_wrong", from).await }
    })
    .await;
    assert!(
        others.iter().all(|a| matches!(a, Err(AuthError::Unauthenticated))),
        "{others:?}"
    );
}
