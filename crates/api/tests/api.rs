//! The HTTP and GraphQL surface of Flash, end to end: a real server on 127.0.0.1 over a fresh
//! store, driven by a real HTTP client and graphql-transport-ws websockets. Covers logins and
//! their rate limits, sessions, isolation between accounts, API keys (scopes, expiry,
//! revocation, IP allowlists, limits), payments and idempotency, refusals of bad input, the
//! `myUpdates` subscription, and health, readiness and metrics. Every test runs on SQLite and
//! on PostgreSQL.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};

flash_store::on_both_backends!(
    phone_and_email_logins_open_sessions,
    wrong_expired_and_exhausted_codes_are_refused,
    code_requests_are_rate_limited_per_identifier,
    failed_logins_are_rate_limited_per_identifier,
    device_accounts_reuse_their_secret,
    logout_and_session_expiry_end_sessions,
    malformed_auth_requests_are_refused,
    email_registration_adds_a_login,
    accounts_cannot_touch_each_other,
    operator_api_refuses_user_credentials,
    wrong_operator_keys_are_throttled,
    api_keys_are_created_listed_and_shown_once,
    api_key_scopes_are_enforced,
    api_keys_expire_and_can_be_revoked,
    api_key_ip_allowlists_are_enforced,
    api_keys_are_limited_to_ten_live_ones,
    api_keys_are_rate_limited_per_minute,
    payments_by_username_and_wallet_with_history_and_contacts,
    concurrent_retries_with_one_idempotency_key_post_once,
    faucet_is_idempotent_with_a_key,
    operator_sets_level_and_status,
    bad_payment_input_changes_nothing,
    bad_http_requests_are_refused,
    my_updates_delivers_own_events_only,
    my_updates_requires_a_token,
    health_readiness_metrics_and_pages,
    oversized_chunked_graphql_bodies_get_413,
    fragment_bombs_are_refused_before_they_run,
    operator_api_checks_the_key_before_parsing,
    galoy_notification_type_names,
    galoy_account_interface_fields,
    prices_fill_galoy_display_fields,
);

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const ME_ID: &str = "{ me { id defaultAccount { id } } }";

/// The code `me` answers with for this token (panics when `me` succeeds).
async fn me_error(s: &TestServer, token: &str) -> String {
    top_code(&s.gql(Some(token), ME_ID, json!({})).await)
}

/// `me.id` for this token (panics on errors).
async fn me_id(s: &TestServer, token: &str) -> String {
    let r = s.gql(Some(token), ME_ID, json!({})).await;
    data(&r, "me")["id"].as_str().expect("me.id").to_string()
}

/// Asserts a REST answer is an error with this status and code.
fn assert_rest_error(r: &Resp, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.rest_code(), code, "{}", r.text);
}

/// `retryAfterSecs` of a rate-limited REST answer, checked against its Retry-After header.
fn rest_retry_after(r: &Resp) -> u64 {
    assert_rest_error(r, 429, "RATE_LIMITED");
    let secs = r.json()["error"]["retryAfterSecs"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retryAfterSecs: {}", r.text));
    let header = r
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no Retry-After header: {:?}", r.headers));
    assert_eq!(header, secs);
    assert!(secs > 0);
    secs
}

// ---------------------------------------------------------------------------------------------
// 1. Logins and sessions
// ---------------------------------------------------------------------------------------------

async fn phone_and_email_logins_open_sessions(backend: Backend) {
    let s = TestServer::start(backend).await;

    // Phone over REST; the token works on `me`, which shows that phone.
    let phone = unique_phone();
    let token = s.login_phone(&phone).await;
    let me = s.me(&token).await;
    let me = data(&me, "me");
    assert_eq!(me["phone"], phone.as_str());
    assert_eq!(me["defaultAccount"]["level"], "ONE");
    let wallets = me["defaultAccount"]["wallets"].as_array().expect("wallets");
    assert_eq!(wallets.len(), 1);
    assert_eq!(wallets[0]["balance"], 0);
    assert_eq!(wallets[0]["walletCurrency"], "BTC");

    // A code is single use.
    let code = s.code_for(&phone);
    assert_rest_error(&s.phone_login(&phone, &code).await, 400, "INVALID_CODE");

    // Logging in again reaches the same user with a new token.
    let again = s.login_phone(&phone).await;
    assert_ne!(again, token);
    assert_eq!(me_id(&s, &again).await, me["id"].as_str().expect("id"));

    // Email: code over REST, login through GraphQL `userLogin`.
    let email = "Alice.Example@Example.com";
    let r = s.post_json("/auth/email/code", None, &json!({ "email": email })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.json(), json!({ "success": true }));
    let code = s.code_for("alice.example@example.com");
    let login = "mutation($email: EmailAddress!, $code: OneTimeAuthCode!) { \
                 userLogin(input: { email: $email, code: $code }) { authToken totpRequired errors { code message } } }";
    let r = s.gql(None, login, json!({ "email": email, "code": code })).await;
    let payload = data(&r, "userLogin");
    assert_no_payload_errors(payload);
    assert_eq!(payload["totpRequired"], false);
    let email_token = payload["authToken"].as_str().expect("authToken").to_string();
    let me = s.me(&email_token).await;
    let me = data(&me, "me");
    assert_eq!(me["email"]["address"], "alice.example@example.com");
    assert_eq!(me["phone"], Value::Null);
    assert_eq!(me["defaultAccount"]["level"], "ZERO");

    // The same code again, through GraphQL: a payload error, no token.
    let r = s.gql(None, login, json!({ "email": email, "code": code })).await;
    let payload = data(&r, "userLogin");
    assert_eq!(payload_code(payload), "INVALID_CODE");
    assert_eq!(payload["authToken"], Value::Null);

    // Phone through GraphQL `userLogin` and email through REST work too.
    let phone2 = unique_phone();
    assert_eq!(s.request_phone_code(&phone2).await.status, 200);
    let r = s
        .gql(
            None,
            "mutation($p: Phone!, $c: OneTimeAuthCode!) { userLogin(input: { phone: $p, code: $c }) { authToken errors { code } } }",
            json!({ "p": phone2, "c": s.code_for(&phone2) }),
        )
        .await;
    let t = data(&r, "userLogin")["authToken"].as_str().expect("token").to_string();
    assert_eq!(data(&s.me(&t).await, "me")["phone"], phone2.as_str());
    let r = s.post_json("/auth/email/code", None, &json!({ "email": email })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .post_json(
            "/auth/email/login",
            None,
            &json!({ "email": email, "code": s.code_for("alice.example@example.com") }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t = r.json()["authToken"].as_str().expect("token").to_string();
    assert_eq!(me_id(&s, &t).await, me_id(&s, &email_token).await);

    // Neither or both of phone and email: INVALID_INPUT.
    let r = s
        .gql(
            None,
            "mutation { userLogin(input: { code: \"123456\" }) { authToken errors { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(payload_code(data(&r, "userLogin")), "INVALID_INPUT");
}

async fn wrong_expired_and_exhausted_codes_are_refused(backend: Backend) {
    let s = TestServer::start(backend).await;

    // Wrong code.
    let phone = unique_phone();
    assert_eq!(s.request_phone_code(&phone).await.status, 200);
    let wrong = s.wrong_code_for(&phone);
    assert_rest_error(&s.phone_login(&phone, &wrong).await, 400, "INVALID_CODE");
    // Malformed codes are wrong codes too.
    assert_rest_error(&s.phone_login(&phone, "12345").await, 400, "INVALID_CODE");
    assert_rest_error(&s.phone_login(&phone, "abcdef").await, 400, "INVALID_CODE");
    // The right one still works.
    let r = s.phone_login(&phone, &s.code_for(&phone)).await;
    assert_eq!(r.status, 200, "{}", r.text);

    // Expired: codes live 10 minutes.
    let phone = unique_phone();
    assert_eq!(s.request_phone_code(&phone).await.status, 200);
    s.advance_secs(11 * 60);
    assert_rest_error(&s.phone_login(&phone, &s.code_for(&phone)).await, 400, "CODE_EXPIRED");

    // Five wrong guesses; the sixth is refused even with the right code.
    let phone = unique_phone();
    assert_eq!(s.request_phone_code(&phone).await.status, 200);
    let wrong = s.wrong_code_for(&phone);
    for _ in 0..5 {
        assert_rest_error(&s.phone_login(&phone, &wrong).await, 400, "INVALID_CODE");
    }
    assert_rest_error(
        &s.phone_login(&phone, &s.code_for(&phone)).await,
        400,
        "TOO_MANY_ATTEMPTS",
    );
    // A fresh code starts over.
    assert_eq!(s.request_phone_code(&phone).await.status, 200);
    let r = s.phone_login(&phone, &s.code_for(&phone)).await;
    assert_eq!(r.status, 200, "{}", r.text);
}

async fn code_requests_are_rate_limited_per_identifier(backend: Backend) {
    let s = TestServer::start(backend).await;
    let phone = unique_phone();
    for i in 0..4 {
        let r = s.request_phone_code(&phone).await;
        assert_eq!(r.status, 200, "request {}: {}", i + 1, r.text);
    }
    let r = s.request_phone_code(&phone).await;
    let secs = rest_retry_after(&r);
    assert!(secs <= 3600, "{secs}");
    // The refused request sent nothing new: the last code still logs in.
    let r = s.phone_login(&phone, &s.code_for(&phone)).await;
    assert_eq!(r.status, 200, "{}", r.text);
    // Another phone from the same address is not affected.
    let other = unique_phone();
    assert_eq!(s.request_phone_code(&other).await.status, 200);
    // Emails are limited the same way.
    for _ in 0..4 {
        let r = s
            .post_json("/auth/email/code", None, &json!({ "email": "bob@example.com" }))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
    }
    let r = s
        .post_json("/auth/email/code", None, &json!({ "email": "bob@example.com" }))
        .await;
    rest_retry_after(&r);
}

async fn failed_logins_are_rate_limited_per_identifier(backend: Backend) {
    let s = TestServer::start(backend).await;
    let phone = unique_phone();
    assert_eq!(s.request_phone_code(&phone).await.status, 200);
    let wrong = s.wrong_code_for(&phone);
    // Eight failures are answered (wrong code, then too many attempts on this code)...
    for i in 0..8 {
        let r = s.phone_login(&phone, &wrong).await;
        assert_eq!(r.status, 400, "failure {}: {}", i + 1, r.text);
        let expected = if i < 5 { "INVALID_CODE" } else { "TOO_MANY_ATTEMPTS" };
        assert_eq!(r.rest_code(), expected, "failure {}", i + 1);
    }
    // ...the ninth is rate limited, even with a fresh, right code.
    let r = s.phone_login(&phone, &wrong).await;
    let secs = rest_retry_after(&r);
    assert!(secs <= 20 * 60, "{secs}");
    assert_eq!(s.request_phone_code(&phone).await.status, 200);
    let r = s.phone_login(&phone, &s.code_for(&phone)).await;
    rest_retry_after(&r);
    // Through GraphQL the same limit is a payload error.
    let r = s
        .gql(
            None,
            "mutation($p: Phone!, $c: OneTimeAuthCode!) { userLogin(input: { phone: $p, code: $c }) { authToken errors { code } } }",
            json!({ "p": phone, "c": s.code_for(&phone) }),
        )
        .await;
    let payload = data(&r, "userLogin");
    assert_eq!(payload_code(payload), "RATE_LIMITED");
    assert_eq!(payload["authToken"], Value::Null);
    // Another identifier from the same address still logs in.
    let other = unique_phone();
    s.login_phone(&other).await;
}

async fn device_accounts_reuse_their_secret(backend: Backend) {
    let s = TestServer::start(backend).await;
    let secret = "0123456789abcdef-device-secret";
    let r1 = device(&s, Some(secret)).await;
    assert_eq!(r1.status, 200, "{}", r1.text);
    let r2 = device(&s, Some(secret)).await;
    assert_eq!(r2.status, 200, "{}", r2.text);
    let (t1, t2) = (
        r1.json()["authToken"].as_str().expect("token").to_string(),
        r2.json()["authToken"].as_str().expect("token").to_string(),
    );
    assert_ne!(t1, t2);
    let me1 = s.me(&t1).await;
    let me2 = s.me(&t2).await;
    assert_eq!(data(&me1, "me")["id"], data(&me2, "me")["id"]);
    assert_eq!(
        data(&me1, "me")["defaultAccount"]["id"],
        data(&me2, "me")["defaultAccount"]["id"]
    );
    assert_eq!(data(&me1, "me")["defaultAccount"]["level"], "ZERO");

    // Exactly 16 characters is enough; a different secret is another account.
    let r = device(&s, Some("0123456789abcdef")).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let t3 = r.json()["authToken"].as_str().expect("token").to_string();
    assert_ne!(me_id(&s, &t3).await, me_id(&s, &t1).await);

    // Too short.
    assert_rest_error(&device(&s, Some("0123456789abcde")).await, 400, "INVALID_INPUT");
    // No deviceId (or no body at all): a fresh account each time.
    let a = device(&s, None).await.json()["authToken"]
        .as_str()
        .expect("token")
        .to_string();
    let r = s
        .post_raw("/auth/create/device-account", None, "application/json", Vec::new())
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let b = r.json()["authToken"].as_str().expect("token").to_string();
    assert_ne!(me_id(&s, &a).await, me_id(&s, &b).await);

    // Sixteen device sign-ins per hour per address (the six above included, the refused
    // short id too); the seventeenth is rate limited.
    for i in 6..16 {
        let r = device(&s, Some(secret)).await;
        assert_eq!(r.status, 200, "call {}: {}", i + 1, r.text);
    }
    rest_retry_after(&device(&s, Some(secret)).await);
}

/// `POST /auth/create/device-account` with this deviceId (or none).
async fn device(s: &TestServer, id: Option<&str>) -> Resp {
    let body = match id {
        Some(id) => json!({ "deviceId": id }),
        None => json!({}),
    };
    s.post_json("/auth/create/device-account", None, &body).await
}

async fn logout_and_session_expiry_end_sessions(backend: Backend) {
    let s = TestServer::start(backend).await;
    let phone = unique_phone();
    let rest = s.login_phone(&phone).await;
    let graphql = s.login_phone(&phone).await;
    let other = s.login_phone(&phone).await;
    let id = me_id(&s, &rest).await;

    // REST logout.
    let r = s.post_json("/auth/logout", Some(&rest), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(me_error(&s, &rest).await, "TOKEN_REVOKED");
    // Logging out twice is fine; the token stays revoked.
    let r = s.post_json("/auth/logout", Some(&rest), &json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(me_error(&s, &rest).await, "TOKEN_REVOKED");
    // No token: 401.
    assert_rest_error(
        &s.post_json("/auth/logout", None, &json!({})).await,
        401,
        "UNAUTHENTICATED",
    );

    // GraphQL logout.
    let r = s
        .gql(
            Some(&graphql),
            "mutation { userLogout(input: {}) { success errors { code } } }",
            json!({}),
        )
        .await;
    let payload = data(&r, "userLogout");
    assert_no_payload_errors(payload);
    assert_eq!(payload["success"], true);
    assert_eq!(me_error(&s, &graphql).await, "TOKEN_REVOKED");
    let r = s
        .gql(Some(&graphql), "mutation { userLogout { success } }", json!({}))
        .await;
    assert_eq!(top_code(&r), "TOKEN_REVOKED");

    // Other sessions of the same user are untouched.
    assert_eq!(me_id(&s, &other).await, id);

    // Unknown tokens and no token.
    assert_eq!(me_error(&s, "not-a-real-token").await, "UNAUTHENTICATED");
    let r = s.gql(None, ME_ID, json!({})).await;
    assert_eq!(top_code(&r), "UNAUTHENTICATED");
    assert_eq!(r["data"], Value::Null);

    // Sessions live 30 days.
    s.advance_secs(30 * 24 * 3600 - 60);
    assert_eq!(me_id(&s, &other).await, id);
    s.advance_secs(61);
    assert_eq!(me_error(&s, &other).await, "TOKEN_EXPIRED");
    // A new login works.
    let fresh = s.login_phone(&phone).await;
    assert_eq!(me_id(&s, &fresh).await, id);
}

async fn malformed_auth_requests_are_refused(backend: Backend) {
    let s = TestServer::start(backend).await;
    for path in [
        "/auth/phone/code",
        "/auth/phone/login",
        "/auth/email/code",
        "/auth/email/login",
        "/auth/create/device-account",
    ] {
        let r = s
            .post_raw(path, None, "application/json", b"{\"phone\": ".to_vec())
            .await;
        assert_rest_error(&r, 400, "INVALID_INPUT");
        let r = s.post_raw(path, None, "application/json", b"[1,2,3]".to_vec()).await;
        assert_rest_error(&r, 400, "INVALID_INPUT");
    }
    // Unknown fields are refused rather than ignored.
    let r = s
        .post_json(
            "/auth/phone/code",
            None,
            &json!({ "phone": unique_phone(), "extra": 1 }),
        )
        .await;
    assert_rest_error(&r, 400, "INVALID_INPUT");
    // Missing code.
    let r = s
        .post_json("/auth/phone/login", None, &json!({ "phone": unique_phone() }))
        .await;
    assert_rest_error(&r, 400, "INVALID_INPUT");
    // Malformed identifiers.
    let r = s
        .post_json("/auth/phone/code", None, &json!({ "phone": "12345" }))
        .await;
    assert_rest_error(&r, 400, "INVALID_PHONE");
    let r = s.post_json("/auth/email/code", None, &json!({ "email": "nope" })).await;
    assert_rest_error(&r, 400, "INVALID_EMAIL");
    assert!(s.codes_sent() == 0, "a malformed request sent a code");
}

const EMAIL_INITIATE: &str = "mutation($e: EmailAddress!) { userEmailRegistrationInitiate(input: { email: $e }) { \
    emailRegistrationId errors { code } } }";
const EMAIL_VALIDATE: &str = "mutation($id: EmailRegistrationId!, $c: OneTimeAuthCode!) { \
    userEmailRegistrationValidate(input: { emailRegistrationId: $id, code: $c }) { errors { code } me { id email { address } } } }";

async fn email_registration_adds_a_login(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let b = s.member().await;
    let email = "a@example.org";

    let r = s.gql(Some(&a.token), EMAIL_INITIATE, json!({ "e": email })).await;
    let payload = data(&r, "userEmailRegistrationInitiate");
    assert_no_payload_errors(payload);
    let id = payload["emailRegistrationId"]
        .as_str()
        .expect("registration id")
        .to_string();
    let code = s.code_for(email);

    // Someone else's registration, or a wrong code, does not validate.
    let r = s
        .gql(Some(&b.token), EMAIL_VALIDATE, json!({ "id": id, "c": code }))
        .await;
    assert_eq!(payload_code(data(&r, "userEmailRegistrationValidate")), "INVALID_CODE");
    let wrong = s.wrong_code_for(email);
    let r = s
        .gql(Some(&a.token), EMAIL_VALIDATE, json!({ "id": id, "c": wrong }))
        .await;
    assert_eq!(payload_code(data(&r, "userEmailRegistrationValidate")), "INVALID_CODE");
    // API keys may not do it.
    let (_, key) = s.create_key(&a.token, "k", &["READ", "WRITE"]).await;
    let r = s.gql(Some(&key), EMAIL_VALIDATE, json!({ "id": id, "c": code })).await;
    assert_eq!(top_code(&r), "FORBIDDEN_SCOPE");

    let r = s
        .gql(Some(&a.token), EMAIL_VALIDATE, json!({ "id": id, "c": code }))
        .await;
    let payload = data(&r, "userEmailRegistrationValidate");
    assert_no_payload_errors(payload);
    assert_eq!(payload["me"]["email"]["address"], email);
    assert_eq!(payload["me"]["id"], a.user_id.as_str());
    let me = s.me(&b.token).await;
    assert_eq!(data(&me, "me")["email"], Value::Null);

    // The email now logs into A.
    let r = s.post_json("/auth/email/code", None, &json!({ "email": email })).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let r = s
        .post_json(
            "/auth/email/login",
            None,
            &json!({ "email": email, "code": s.code_for(email) }),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let token = r.json()["authToken"].as_str().expect("token").to_string();
    assert_eq!(me_id(&s, &token).await, a.user_id);

    // B cannot take it.
    let r = s
        .gql(Some(&b.token), EMAIL_INITIATE, json!({ "e": "A@Example.org" }))
        .await;
    let id = data(&r, "userEmailRegistrationInitiate")["emailRegistrationId"]
        .as_str()
        .expect("registration id")
        .to_string();
    let r = s
        .gql(
            Some(&b.token),
            EMAIL_VALIDATE,
            json!({ "id": id, "c": s.code_for(email) }),
        )
        .await;
    assert_eq!(payload_code(data(&r, "userEmailRegistrationValidate")), "EMAIL_TAKEN");
    let me = s.me(&b.token).await;
    assert_eq!(data(&me, "me")["email"], Value::Null);
}

// ---------------------------------------------------------------------------------------------
// 2. Isolation
// ---------------------------------------------------------------------------------------------

async fn accounts_cannot_touch_each_other(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.named_member("alice").await;
    let b = s.named_member("bob").await;
    s.fund(&a.wallet_id, 10_000).await;
    s.fund(&b.wallet_id, 20_000).await;
    let (b_key_id, b_key) = s.create_key(&b.token, "bob's key", &["READ", "WRITE"]).await;
    let (_, a_key) = s.create_key(&a.token, "alice's key", &["READ", "WRITE"]).await;
    let journals = s.journals().await;

    for (label, cred) in [("session", a.token.as_str()), ("api key", a_key.as_str())] {
        // `me` is A, with only A's wallet.
        let r = s.me(cred).await;
        let me = data(&r, "me");
        assert_eq!(me["id"], a.user_id.as_str(), "{label}");
        assert_eq!(me["defaultAccount"]["id"], a.account_id.as_str(), "{label}");
        let ids: Vec<&Value> = me["defaultAccount"]["wallets"]
            .as_array()
            .expect("wallets")
            .iter()
            .map(|w| &w["id"])
            .collect();
        assert_eq!(ids, vec![&json!(a.wallet_id)], "{label}");
        assert!(!r.to_string().contains(&b.wallet_id), "{label}: {r}");

        // Paying from B's wallet.
        let r = s
            .pay_raw(
                cred,
                json!({ "walletId": b.wallet_id, "recipientWalletId": a.wallet_id, "amount": 100 }),
            )
            .await;
        let payload = data(&r, "intraLedgerPaymentSend");
        assert_eq!(payload_code(payload), "WALLET_NOT_FOUND", "{label}");
        assert_eq!(payload["status"], "FAILURE", "{label}");
        assert_eq!(payload["transaction"], Value::Null, "{label}");
        // Same, with an idempotency key (the retry path must not skip the ownership check).
        let r = s
            .pay_raw(
                cred,
                json!({ "walletId": b.wallet_id, "recipientUsername": "alice", "amount": 100, "idempotencyKey": "steal-1" }),
            )
            .await;
        assert_eq!(
            payload_code(data(&r, "intraLedgerPaymentSend")),
            "WALLET_NOT_FOUND",
            "{label}"
        );

        // Reading B's wallet.
        let r = s
            .gql(
                Some(cred),
                "query($w: WalletId!) { me { defaultAccount { ... on ConsumerAccount { walletById(walletId: $w) { id balance } } } } }",
                json!({ "w": b.wallet_id }),
            )
            .await;
        assert_eq!(top_code(&r), "WALLET_NOT_FOUND", "{label}");
        assert!(!r.to_string().contains("20000"), "{label}: {r}");

        // B's history through A's account.
        let r = s
            .gql(
                Some(cred),
                "query($w: WalletId!) { me { defaultAccount { transactions(first: 50, walletIds: [$w]) { edges { node { id } } } } } }",
                json!({ "w": b.wallet_id }),
            )
            .await;
        let edges = &data(&r, "me")["defaultAccount"]["transactions"]["edges"];
        assert_eq!(edges, &json!([]), "{label}");
        // And A's own history holds only A's funding.
        let r = s
            .gql(
                Some(cred),
                "{ me { defaultAccount { transactions(first: 50) { edges { node { settlementAmount } } } } } }",
                json!({}),
            )
            .await;
        assert_eq!(
            data(&r, "me")["defaultAccount"]["transactions"]["edges"],
            json!([{ "node": { "settlementAmount": 10_000 } }]),
            "{label}"
        );

        // Making B's wallet A's default.
        let r = s
            .gql(
                Some(cred),
                "mutation($w: WalletId!) { accountUpdateDefaultWalletId(input: { walletId: $w }) { errors { code } account { defaultWalletId } } }",
                json!({ "w": b.wallet_id }),
            )
            .await;
        let payload = data(&r, "accountUpdateDefaultWalletId");
        assert_eq!(payload_code(payload), "WALLET_NOT_FOUND", "{label}");

        // Naming a non-contact.
        let r = s
            .gql(
                Some(cred),
                "mutation { userContactUpdateAlias(input: { username: \"bob\", alias: \"Bobby\" }) { errors { code } contact { alias } } }",
                json!({}),
            )
            .await;
        let payload = data(&r, "userContactUpdateAlias");
        assert_eq!(payload_code(payload), "RECIPIENT_NOT_FOUND", "{label}");
        assert_eq!(payload["contact"], Value::Null, "{label}");
    }

    // Revoking B's key with A's session: not found; with A's key: API keys cannot manage keys.
    let payload = s.revoke_key(&a.token, &b_key_id).await;
    assert_eq!(payload_code(&payload), "API_KEY_NOT_FOUND");
    assert_eq!(payload["apiKey"], Value::Null);
    let r = s
        .gql(
            Some(&a_key),
            "mutation($id: ID!) { apiKeyRevoke(input: { id: $id }) { errors { code } } }",
            json!({ "id": b_key_id }),
        )
        .await;
    assert_eq!(top_code(&r), "FORBIDDEN_SCOPE");
    // B's key still works and still sees B.
    assert_eq!(me_id(&s, &b_key).await, b.user_id);
    let r = s
        .gql(Some(&b.token), "{ me { apiKeys { id revoked } } }", json!({}))
        .await;
    assert_eq!(data(&r, "me")["apiKeys"], json!([{ "id": b_key_id, "revoked": false }]));

    // Nothing moved; A's default wallet and B's wallet are as they were.
    assert_eq!(s.balance(&a).await, 10_000);
    assert_eq!(s.balance(&b).await, 20_000);
    assert_eq!(s.journals().await, journals);
    let me = s.me(&a.token).await;
    assert_eq!(
        data(&me, "me")["defaultAccount"]["defaultWalletId"],
        a.wallet_id.as_str()
    );
    let me = s.me(&b.token).await;
    assert_eq!(
        data(&me, "me")["defaultAccount"]["defaultWalletId"],
        b.wallet_id.as_str()
    );
    // B's contacts are untouched too.
    let r = s
        .gql(Some(&b.token), "{ me { contacts { username alias } } }", json!({}))
        .await;
    assert_eq!(data(&r, "me")["contacts"], json!([]));
}

async fn operator_api_refuses_user_credentials(backend: Backend) {
    let s = TestServer::start(backend).await;
    let b = s.member().await;
    let (_, key) = s.create_key(&b.token, "k", &["READ", "WRITE"]).await;
    let verify = "{ ledgerVerify { ok journalsChecked } }";
    let fund = "mutation($w: WalletId!) { walletFund(input: { walletId: $w, amount: 1000 }) { errors { code } } }";
    for (label, cred) in [
        ("session", Some(b.token.as_str())),
        ("api key", Some(key.as_str())),
        ("garbage", Some("flashadm_nope")),
        ("none", None),
    ] {
        let r = s.graphql_at("/admin/graphql", cred, verify, json!({})).await;
        assert_eq!(top_code(&r), "UNAUTHENTICATED", "{label}: {r}");
        assert_eq!(r["data"], Value::Null, "{label}");
        let r = s
            .graphql_at("/admin/graphql", cred, fund, json!({ "w": b.wallet_id }))
            .await;
        assert_eq!(top_code(&r), "UNAUTHENTICATED", "{label}: {r}");
    }
    assert_eq!(s.balance(&b).await, 0);
    // The operator key is not a user credential either.
    assert_eq!(me_error(&s, &s.admin_key.clone()).await, "UNAUTHENTICATED");
}

/// Issue 14: wrong operator keys were never throttled. Past the per-address cap even the
/// right key is refused from that address, without being checked.
async fn wrong_operator_keys_are_throttled(backend: Backend) {
    let s = TestServer::start(backend).await;
    let verify = "{ ledgerVerify { ok } }";
    for i in 0..flash_auth::rate_limits::ADMIN_KEY_FAILURES_PER_IP.max {
        let r = s
            .graphql_at("/admin/graphql", Some("flashadm_nope"), verify, json!({}))
            .await;
        assert_eq!(top_code(&r), "UNAUTHENTICATED", "wrong key {}: {r}", i + 1);
    }
    let r = s
        .graphql_at("/admin/graphql", Some("flashadm_nope"), verify, json!({}))
        .await;
    assert_eq!(top_code(&r), "RATE_LIMITED", "{r}");
    let r = s.admin(verify, json!({})).await;
    assert_eq!(
        top_code(&r),
        "RATE_LIMITED",
        "the right key from a throttled address: {r}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. API keys
// ---------------------------------------------------------------------------------------------

const LIST_KEYS: &str =
    "{ me { apiKeys { id name scopes readOnly revoked expired expiresAt lastUsedAt ipAllowlist } } }";

/// The account's keys as `me.apiKeys` lists them.
async fn list_keys(s: &TestServer, token: &str) -> Vec<Value> {
    let r = s.gql(Some(token), LIST_KEYS, json!({})).await;
    data(&r, "me")["apiKeys"].as_array().expect("apiKeys").clone()
}

async fn api_keys_are_created_listed_and_shown_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;

    let payload = s
        .create_key_payload(&a.token, json!({ "name": "reader", "scopes": ["READ"] }))
        .await;
    assert_no_payload_errors(&payload);
    let read_secret = payload["apiKeySecret"].as_str().expect("secret").to_string();
    assert!(read_secret.starts_with("flash_"), "{read_secret}");
    assert_eq!(read_secret.len(), "flash_".len() + 40);
    let key = &payload["apiKey"];
    assert_eq!(key["name"], "reader");
    assert_eq!(key["scopes"], json!(["READ"]));
    assert_eq!(key["readOnly"], true);
    assert_eq!(key["revoked"], false);
    assert_eq!(key["expired"], false);
    assert_eq!(key["expiresAt"], Value::Null);
    assert_eq!(key["ipAllowlist"], json!([]));
    let read_id = key["id"].as_str().expect("id").to_string();

    // Default scopes are [READ]; expiry and allowlist are echoed.
    s.advance_secs(1);
    let payload = s
        .create_key_payload(
            &a.token,
            json!({ "name": "bot", "expireInDays": 30, "ipAllowlist": ["127.0.0.1", "10.1.2.3/8"] }),
        )
        .await;
    assert_no_payload_errors(&payload);
    let bot_secret = payload["apiKeySecret"].as_str().expect("secret").to_string();
    assert_ne!(bot_secret, read_secret);
    let key = &payload["apiKey"];
    assert_eq!(key["scopes"], json!(["READ"]));
    let expires = key["expiresAt"].as_i64().expect("expiresAt");
    let now_secs = s.state.bank.now_ms() / 1000;
    assert!(
        (expires - (now_secs + 30 * 86_400)).abs() <= 5,
        "{expires} vs {now_secs}"
    );
    assert_eq!(key["ipAllowlist"], json!(["127.0.0.1/32", "10.0.0.0/8"]));

    // Listed (newest first), never with a secret.
    let r = s.gql(Some(&a.token), LIST_KEYS, json!({})).await;
    let text = r.to_string();
    assert!(!text.contains(&read_secret) && !text.contains(&bot_secret), "{text}");
    let keys = data(&r, "me")["apiKeys"].as_array().expect("keys").clone();
    let names: Vec<&Value> = keys.iter().map(|k| &k["name"]).collect();
    assert_eq!(names, vec!["bot", "reader"]);
    assert_eq!(keys[1]["lastUsedAt"], Value::Null);

    // The key authenticates as its account, by bearer or X-API-KEY, and records its use.
    assert_eq!(me_id(&s, &read_secret).await, a.user_id);
    let r = s
        .gql_with_headers(&[("x-api-key", read_secret.as_str())], ME_ID, json!({}))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(data(&r.json(), "me")["id"], a.user_id.as_str());
    let keys = list_keys(&s, &a.token).await;
    let reader = keys
        .iter()
        .find(|k| k["id"] == read_id.as_str())
        .expect("reader listed");
    assert!(reader["lastUsedAt"].as_i64().is_some(), "{reader}");
    // The key can list keys (read) but never sees secrets.
    let r = s.gql(Some(&read_secret), LIST_KEYS, json!({})).await;
    assert_eq!(data(&r, "me")["apiKeys"].as_array().map(Vec::len), Some(2));
    assert!(!r.to_string().contains(&read_secret));

    // Bad requests create nothing.
    for (input, what) in [
        (json!({ "name": "", "scopes": ["READ"] }), "empty name"),
        (json!({ "name": "x".repeat(101), "scopes": ["READ"] }), "long name"),
        (json!({ "name": "n", "scopes": [] }), "no scopes"),
        (json!({ "name": "n", "expireInDays": 0 }), "zero days"),
        (json!({ "name": "n", "expireInDays": 3651 }), "too many days"),
        (json!({ "name": "n", "ipAllowlist": ["not-an-ip"] }), "bad allowlist"),
    ] {
        let payload = s.create_key_payload(&a.token, input).await;
        assert_eq!(payload_code(&payload), "INVALID_API_KEY_REQUEST", "{what}");
        assert_eq!(payload["apiKeySecret"], Value::Null, "{what}");
    }
    assert_eq!(list_keys(&s, &a.token).await.len(), 2);
}

async fn api_key_scopes_are_enforced(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.named_member("alice").await;
    let b = s.member().await;
    s.fund(&a.wallet_id, 10_000).await;
    let (_, read) = s.create_key(&a.token, "read", &["READ"]).await;
    let (_, receive) = s.create_key(&a.token, "receive", &["RECEIVE"]).await;
    let (_, write) = s.create_key(&a.token, "write", &["WRITE"]).await;
    let journals = s.journals().await;
    let pay = json!({ "walletId": a.wallet_id, "recipientWalletId": b.wallet_id, "amount": 1_000 });

    // READ: may query, may not pay.
    assert_eq!(me_id(&s, &read).await, a.user_id);
    let r = s.pay_raw(&read, pay.clone()).await;
    assert_eq!(top_code(&r), "FORBIDDEN_SCOPE", "{r}");
    assert_eq!(r["data"], Value::Null);
    // RECEIVE: may not pay (and, not holding READ, may not query).
    let r = s.pay_raw(&receive, pay.clone()).await;
    assert_eq!(top_code(&r), "FORBIDDEN_SCOPE", "{r}");
    assert_eq!(me_error(&s, &receive).await, "FORBIDDEN_SCOPE");
    assert_eq!(s.balance(&a).await, 10_000);
    assert_eq!(s.balance(&b).await, 0);
    assert_eq!(s.journals().await, journals);

    // WRITE: pays.
    let r = s.pay_raw(&write, pay.clone()).await;
    let payload = data(&r, "intraLedgerPaymentSend");
    assert_no_payload_errors(payload);
    assert_eq!(payload["status"], "SUCCESS");
    assert_eq!(payload["transaction"]["settlementAmount"], -1_000);
    assert_eq!(s.balance(&a).await, 9_000);
    assert_eq!(s.balance(&b).await, 1_000);
    assert_eq!(s.journals().await, journals + 1);

    // WRITE does not read through what mutations return: balances, history, e-mail and
    // contacts need READ wherever they appear.
    let r = s
        .gql(
            Some(&write),
            "mutation($w: WalletId!) { accountUpdateDefaultWalletId(input: { walletId: $w }) { errors { code } \
             account { id wallets { balance transactions(first: 5) { edges { node { id } } } } limits { withdrawal { totalLimit } } } } }",
            json!({ "w": a.wallet_id }),
        )
        .await;
    assert_eq!(
        top_codes(&r).first().map(String::as_str),
        Some("FORBIDDEN_SCOPE"),
        "{r}"
    );
    assert!(!r.to_string().contains("9000"), "a balance leaked: {r}");
    let npub = "7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e";
    let r = s
        .gql(
            Some(&write),
            "mutation($n: String!) { userUpdateNpub(input: { npub: $n }) { errors { code } user { id phone email { address } contacts { username } } } }",
            json!({ "n": npub }),
        )
        .await;
    assert_eq!(
        top_codes(&r).first().map(String::as_str),
        Some("FORBIDDEN_SCOPE"),
        "{r}"
    );
    assert!(!r.to_string().contains("@"), "an e-mail leaked: {r}");
    assert!(!r.to_string().contains("+"), "a phone number leaked: {r}");
    // READ still reads the same objects.
    let r = s
        .gql(
            Some(&read),
            "{ me { phone defaultAccount { wallets { balance } } } }",
            json!({}),
        )
        .await;
    assert_eq!(r["errors"], Value::Null, "{r}");
    assert_eq!(data(&r, "me")["defaultAccount"]["wallets"][0]["balance"], 9_000, "{r}");

    // No API key may create API keys or change identity settings; only sessions may.
    let keys_before = list_keys(&s, &a.token).await.len();
    for (label, key) in [("read", &read), ("receive", &receive), ("write", &write)] {
        let r = s
            .gql(
                Some(key),
                "mutation { apiKeyCreate(input: { name: \"child\", scopes: [READ, WRITE] }) { apiKeySecret errors { code } } }",
                json!({}),
            )
            .await;
        assert_eq!(top_code(&r), "FORBIDDEN_SCOPE", "{label}: {r}");
        assert!(!r.to_string().contains("flash_"), "{label}: {r}");
        let r = s
            .gql(
                Some(key),
                "mutation { userUpdateUsername(input: { username: \"keyname\" }) { errors { code } } }",
                json!({}),
            )
            .await;
        assert_eq!(top_code(&r), "FORBIDDEN_SCOPE", "{label}: {r}");
        let r = s.gql(Some(key), "mutation { userLogout { success } }", json!({})).await;
        assert_eq!(top_code(&r), "FORBIDDEN_SCOPE", "{label}: {r}");
    }
    assert_eq!(list_keys(&s, &a.token).await.len(), keys_before);
    let me = s.me(&a.token).await;
    assert_eq!(data(&me, "me")["username"], "alice");
}

async fn api_keys_expire_and_can_be_revoked(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let payload = s
        .create_key_payload(&a.token, json!({ "name": "day", "expireInDays": 1 }))
        .await;
    assert_no_payload_errors(&payload);
    let day = payload["apiKeySecret"].as_str().expect("secret").to_string();
    let day_id = payload["apiKey"]["id"].as_str().expect("id").to_string();
    let (forever_id, forever) = s.create_key(&a.token, "forever", &["READ"]).await;
    let (revoked_id, revoked) = s.create_key(&a.token, "revoked", &["READ"]).await;

    // Revocation.
    assert_eq!(me_id(&s, &revoked).await, a.user_id);
    let payload = s.revoke_key(&a.token, &revoked_id).await;
    assert_no_payload_errors(&payload);
    assert_eq!(payload["apiKey"], json!({ "id": revoked_id, "revoked": true }));
    assert_eq!(me_error(&s, &revoked).await, "TOKEN_REVOKED");
    // Unknown or malformed ids.
    let payload = s.revoke_key(&a.token, "not-an-id").await;
    assert_eq!(payload_code(&payload), "API_KEY_NOT_FOUND");

    // Expiry, on the store's clock.
    s.advance_secs(86_400 - 60);
    assert_eq!(me_id(&s, &day).await, a.user_id);
    s.advance_secs(86_400 + 60);
    assert_eq!(me_error(&s, &day).await, "TOKEN_EXPIRED");
    assert_eq!(me_id(&s, &forever).await, a.user_id);
    let keys = list_keys(&s, &a.token).await;
    let by_id = |id: &str| keys.iter().find(|k| k["id"] == id).cloned().expect("listed");
    assert_eq!(by_id(&day_id)["expired"], true);
    assert_eq!(by_id(&day_id)["revoked"], false);
    assert_eq!(by_id(&forever_id)["expired"], false);
    assert_eq!(by_id(&revoked_id)["revoked"], true);
    // Revoking the expired key is still possible; it then reads as revoked.
    let payload = s.revoke_key(&a.token, &day_id).await;
    assert_no_payload_errors(&payload);
    assert_eq!(me_error(&s, &day).await, "TOKEN_REVOKED");
}

async fn api_key_ip_allowlists_are_enforced(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let key_with = |allow: Value| {
        let s = &s;
        let token = a.token.clone();
        async move {
            let payload = s
                .create_key_payload(&token, json!({ "name": "pinned", "ipAllowlist": allow }))
                .await;
            assert_no_payload_errors(&payload);
            payload["apiKeySecret"].as_str().expect("secret").to_string()
        }
    };
    let elsewhere = key_with(json!(["10.0.0.0/8"])).await;
    assert_eq!(me_error(&s, &elsewhere).await, "IP_NOT_ALLOWED");
    let r = s
        .pay_raw(
            &elsewhere,
            json!({ "walletId": a.wallet_id, "recipientUsername": "x_y", "amount": 1 }),
        )
        .await;
    assert_eq!(top_code(&r), "IP_NOT_ALLOWED");
    let here = key_with(json!(["127.0.0.1"])).await;
    assert_eq!(me_id(&s, &here).await, a.user_id);
    let loopback = key_with(json!(["::1", "127.0.0.0/8"])).await;
    assert_eq!(me_id(&s, &loopback).await, a.user_id);
    let v6_only = key_with(json!(["::1"])).await;
    assert_eq!(me_error(&s, &v6_only).await, "IP_NOT_ALLOWED");
}

async fn api_keys_are_limited_to_ten_live_ones(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let mut ids = Vec::new();
    for i in 0..10 {
        ids.push(s.create_key(&a.token, &format!("key {i}"), &["READ"]).await.0);
    }
    let payload = s.create_key_payload(&a.token, json!({ "name": "eleventh" })).await;
    assert_eq!(payload_code(&payload), "API_KEY_LIMIT");
    assert_eq!(payload["apiKeySecret"], Value::Null);
    assert_eq!(list_keys(&s, &a.token).await.len(), 10);
    // Revoking one makes room for one.
    assert_no_payload_errors(&s.revoke_key(&a.token, &ids[3]).await);
    s.create_key(&a.token, "replacement", &["READ"]).await;
    let payload = s.create_key_payload(&a.token, json!({ "name": "twelfth" })).await;
    assert_eq!(payload_code(&payload), "API_KEY_LIMIT");
    let keys = list_keys(&s, &a.token).await;
    assert_eq!(keys.len(), 11);
    assert_eq!(keys.iter().filter(|k| k["revoked"] == false).count(), 10);
    // Another account has its own ten.
    let b = s.member().await;
    s.create_key(&b.token, "b's", &["READ"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_api_key_limit_holds_under_concurrency() {
    api_key_limit_holds_under_concurrency(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_api_key_limit_holds_under_concurrency() {
    api_key_limit_holds_under_concurrency(Backend::Postgres).await;
}

/// Twenty concurrent creations from one account: exactly ten succeed.
async fn api_key_limit_holds_under_concurrency(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let attempts = (0..20).map(|i| {
        let s = &s;
        let token = a.token.clone();
        async move {
            s.create_key_payload(&token, json!({ "name": format!("racer {i}") }))
                .await
        }
    });
    let results = futures_util::future::join_all(attempts).await;
    let created = results.iter().filter(|p| p["errors"] == json!([])).count();
    let refused = results
        .iter()
        .filter(|p| p["errors"][0]["code"] == "API_KEY_LIMIT")
        .count();
    let live = list_keys(&s, &a.token).await.len();
    let codes: Vec<&Value> = results.iter().map(|p| &p["errors"]).collect();
    assert_eq!(
        (created, refused, live),
        (10, 10, 10),
        "(created, refused, live); errors: {codes:?}"
    );
}

async fn api_keys_are_rate_limited_per_minute(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let (_, key) = s.create_key(&a.token, "busy", &["READ"]).await;
    let (_, other) = s.create_key(&a.token, "quiet", &["READ"]).await;
    for i in 0..120 {
        let r = s.gql(Some(&key), ME_ID, json!({})).await;
        assert!(!has_top_errors(&r), "request {}: {r}", i + 1);
    }
    let r = s.gql(Some(&key), ME_ID, json!({})).await;
    assert_eq!(top_code(&r), "RATE_LIMITED", "{r}");
    let secs = r["errors"][0]["extensions"]["retryAfterSecs"]
        .as_u64()
        .unwrap_or_else(|| panic!("no retryAfterSecs: {r}"));
    assert!((1..=60).contains(&secs), "{secs}");
    // Other keys and sessions of the same account are not limited.
    assert_eq!(me_id(&s, &other).await, a.user_id);
    assert_eq!(me_id(&s, &a.token).await, a.user_id);
}

// ---------------------------------------------------------------------------------------------
// 4. Payments
// ---------------------------------------------------------------------------------------------

const HISTORY: &str = "query($first: Int, $after: String) { me { defaultAccount { \
    transactions(first: $first, after: $after) { pageInfo { hasNextPage hasPreviousPage startCursor endCursor } \
    edges { cursor node { id createdAt direction memo settlementAmount settlementFee status \
    settlementVia { ... on SettlementViaIntraLedger { counterPartyUsername counterPartyWalletId } } } } } } } }";

/// `(direction, amount, fee, status, memo, counterparty username, counterparty wallet)` of
/// each transaction in a history answer.
fn history_lines(r: &Value) -> Vec<(String, i64, i64, String, Value, Value, Value)> {
    data(r, "me")["defaultAccount"]["transactions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["direction"].as_str().expect("direction").to_string(),
                n["settlementAmount"].as_i64().expect("amount"),
                n["settlementFee"].as_i64().expect("fee"),
                n["status"].as_str().expect("status").to_string(),
                n["memo"].clone(),
                n["settlementVia"]["counterPartyUsername"].clone(),
                n["settlementVia"]["counterPartyWalletId"].clone(),
            )
        })
        .collect()
}

async fn payments_by_username_and_wallet_with_history_and_contacts(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.named_member("alice").await;
    let b = s.named_member("Bob_2").await;
    let start_secs = s.state.bank.now_ms() / 1000;

    let funded = s.fund(&a.wallet_id, 100_000).await;
    assert_eq!(funded["direction"], "RECEIVE");
    assert_eq!(funded["settlementAmount"], 100_000);
    assert_eq!(funded["status"], "SUCCESS");

    // Public look-ups.
    let r = s
        .gql(
            None,
            "{ taken: usernameAvailable(username: \"bob_2\") free: usernameAvailable(username: \"carol\") \
             accountDefaultWallet(username: \"BOB_2\") { id walletCurrency } }",
            json!({}),
        )
        .await;
    assert!(!has_top_errors(&r), "{r}");
    assert_eq!(r["data"]["taken"], false);
    assert_eq!(r["data"]["free"], true);
    assert_eq!(r["data"]["accountDefaultWallet"]["id"], b.wallet_id.as_str());

    // By username (case-insensitive), with a memo.
    let r = s
        .pay_raw(
            &a.token,
            json!({ "walletId": a.wallet_id, "recipientUsername": "bob_2", "amount": 1_500, "memo": "lunch 🍜" }),
        )
        .await;
    let payload = data(&r, "intraLedgerPaymentSend");
    assert_no_payload_errors(payload);
    assert_eq!(payload["status"], "SUCCESS");
    let tx = &payload["transaction"];
    assert_eq!(tx["direction"], "SEND");
    assert_eq!(tx["settlementAmount"], -1_500);
    assert_eq!(tx["settlementFee"], 0);
    assert_eq!(tx["settlementCurrency"], "BTC");
    assert_eq!(tx["status"], "SUCCESS");
    assert_eq!(tx["memo"], "lunch 🍜");
    assert_eq!(tx["settlementVia"]["__typename"], "SettlementViaIntraLedger");
    assert_eq!(tx["settlementVia"]["counterPartyUsername"], "Bob_2");
    assert_eq!(tx["settlementVia"]["counterPartyWalletId"], b.wallet_id.as_str());
    assert_eq!(tx["initiationVia"]["counterPartyWalletId"], b.wallet_id.as_str());
    let created = tx["createdAt"].as_i64().expect("createdAt");
    assert!((created - start_secs).abs() <= 5, "{created} vs {start_secs}");

    // By wallet id, no memo.
    let payload = s.pay(&a.token, &a, &b, 2_000).await;
    assert_no_payload_errors(&payload);
    assert_eq!(payload["transaction"]["memo"], Value::Null);
    // B pays back by username, a minute later on the store's clock.
    s.advance_secs(60);
    let r = s
        .pay_raw(
            &b.token,
            json!({ "walletId": b.wallet_id, "recipientUsername": "ALICE", "amount": 300 }),
        )
        .await;
    assert_no_payload_errors(data(&r, "intraLedgerPaymentSend"));

    assert_eq!(s.balance(&a).await, 100_000 - 1_500 - 2_000 + 300);
    assert_eq!(s.balance(&b).await, 1_500 + 2_000 - 300);

    // A's history, newest first.
    let r = s.gql(Some(&a.token), HISTORY, json!({ "first": 10 })).await;
    let b_wallet = json!(b.wallet_id);
    assert_eq!(
        history_lines(&r),
        vec![
            (
                "RECEIVE".into(),
                300,
                0,
                "SUCCESS".into(),
                Value::Null,
                json!("Bob_2"),
                b_wallet.clone()
            ),
            (
                "SEND".into(),
                -2_000,
                0,
                "SUCCESS".into(),
                Value::Null,
                json!("Bob_2"),
                b_wallet.clone()
            ),
            (
                "SEND".into(),
                -1_500,
                0,
                "SUCCESS".into(),
                json!("lunch 🍜"),
                json!("Bob_2"),
                b_wallet.clone()
            ),
            (
                "RECEIVE".into(),
                100_000,
                0,
                "SUCCESS".into(),
                json!("dev faucet"),
                Value::Null,
                Value::Null
            ),
        ]
    );
    // B's side.
    let r = s.gql(Some(&b.token), HISTORY, json!({ "first": 10 })).await;
    let a_wallet = json!(a.wallet_id);
    assert_eq!(
        history_lines(&r),
        vec![
            (
                "SEND".into(),
                -300,
                0,
                "SUCCESS".into(),
                Value::Null,
                json!("alice"),
                a_wallet.clone()
            ),
            (
                "RECEIVE".into(),
                2_000,
                0,
                "SUCCESS".into(),
                Value::Null,
                json!("alice"),
                a_wallet.clone()
            ),
            (
                "RECEIVE".into(),
                1_500,
                0,
                "SUCCESS".into(),
                json!("lunch 🍜"),
                json!("alice"),
                a_wallet.clone()
            ),
        ]
    );

    let times: Vec<i64> = data(&r, "me")["defaultAccount"]["transactions"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| e["node"]["createdAt"].as_i64().expect("createdAt"))
        .collect();
    assert_eq!(times[0], start_secs + 60, "{times:?}");
    assert!(times[1..].iter().all(|t| *t == start_secs), "{times:?}");

    // Pages of two.
    let r = s.gql(Some(&a.token), HISTORY, json!({ "first": 2 })).await;
    let page = &data(&r, "me")["defaultAccount"]["transactions"];
    assert_eq!(page["pageInfo"]["hasNextPage"], true);
    assert_eq!(page["pageInfo"]["hasPreviousPage"], false);
    let after = page["pageInfo"]["endCursor"].as_str().expect("cursor").to_string();
    let r = s
        .gql(Some(&a.token), HISTORY, json!({ "first": 2, "after": after }))
        .await;
    let amounts: Vec<i64> = history_lines(&r).iter().map(|l| l.1).collect();
    assert_eq!(amounts, vec![-1_500, 100_000]);
    assert_eq!(
        data(&r, "me")["defaultAccount"]["transactions"]["pageInfo"]["hasNextPage"],
        false
    );
    let r = s
        .gql(Some(&a.token), HISTORY, json!({ "first": 2, "after": "garbage" }))
        .await;
    assert_eq!(top_code(&r), "INVALID_PAGE");

    // The wallet's own history field agrees.
    let r = s
        .gql(
            Some(&a.token),
            "query($w: WalletId!) { me { defaultAccount { ... on ConsumerAccount { walletById(walletId: $w) { balance transactions(first: 10) { edges { node { settlementAmount } } } } } } } }",
            json!({ "w": a.wallet_id }),
        )
        .await;
    let wallet = &data(&r, "me")["defaultAccount"]["walletById"];
    assert_eq!(wallet["balance"], 96_800);
    assert_eq!(wallet["transactions"]["edges"].as_array().map(Vec::len), Some(4));

    // Contacts on both sides; aliases.
    let contacts = "{ me { contacts { id username alias transactionsCount } } }";
    let r = s.gql(Some(&a.token), contacts, json!({})).await;
    assert_eq!(
        data(&r, "me")["contacts"],
        json!([{ "id": "Bob_2", "username": "Bob_2", "alias": null, "transactionsCount": 3 }])
    );
    let r = s
        .gql(
            Some(&a.token),
            "mutation { userContactUpdateAlias(input: { username: \"bob_2\", alias: \"Bobby\" }) { errors { code } contact { username alias } } }",
            json!({}),
        )
        .await;
    let payload = data(&r, "userContactUpdateAlias");
    assert_no_payload_errors(payload);
    assert_eq!(payload["contact"]["alias"], "Bobby");
    let r = s.gql(Some(&b.token), contacts, json!({})).await;
    assert_eq!(data(&r, "me")["contacts"][0]["username"], "alice");
    assert_eq!(data(&r, "me")["contacts"][0]["alias"], Value::Null);

    // Usernames are set once and unique.
    let r = s
        .gql(
            Some(&b.token),
            "mutation { userUpdateUsername(input: { username: \"bobby\" }) { errors { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(payload_code(data(&r, "userUpdateUsername")), "USERNAME_ALREADY_SET");
    let c = s.member().await;
    let r = s
        .gql(
            Some(&c.token),
            "mutation { userUpdateUsername(input: { username: \"ALICE\" }) { errors { code } } }",
            json!({}),
        )
        .await;
    assert_eq!(payload_code(data(&r, "userUpdateUsername")), "USERNAME_TAKEN");

    // The ledger balances.
    s.journals().await;
}

async fn concurrent_retries_with_one_idempotency_key_post_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let b = s.member().await;
    s.fund(&a.wallet_id, 50_000).await;
    let journals = s.journals().await;
    let body = json!({
        "query": pay_mutation(),
        "variables": { "input": {
            "walletId": a.wallet_id, "recipientWalletId": b.wallet_id, "amount": 1_234,
            "memo": "order 42", "idempotencyKey": "order-42",
        } },
    });
    let url = s.url("/graphql");
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (http, url, body, token) = (s.http.clone(), url.clone(), body.clone(), a.token.clone());
            tokio::spawn(async move {
                let resp = http
                    .post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .expect("POST");
                assert_eq!(resp.status().as_u16(), 200);
                resp.json::<Value>().await.expect("JSON")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("request task"));
    }
    let first = answers[0].clone();
    let payload = data(&first, "intraLedgerPaymentSend");
    assert_no_payload_errors(payload);
    assert_eq!(payload["status"], "SUCCESS");
    assert_eq!(payload["transaction"]["settlementAmount"], -1_234);
    let distinct: BTreeSet<String> = answers.iter().map(Value::to_string).collect();
    assert_eq!(distinct.len(), 1, "answers differ: {distinct:#?}");

    // One journal, moving the amount once.
    assert_eq!(s.journals().await, journals + 1);
    assert_eq!(s.balance(&a).await, 50_000 - 1_234);
    assert_eq!(s.balance(&b).await, 1_234);
    let id = payload["transaction"]["id"].as_str().expect("journal id");
    let r = s
        .admin(
            "query($id: ID!) { journal(id: $id) { id kind memo entries { accountId currency amount } } }",
            json!({ "id": id }),
        )
        .await;
    let journal = data(&r, "journal");
    assert_eq!(journal["id"], id);
    assert_eq!(journal["kind"], "intraledger");
    assert_eq!(journal["memo"], "order 42");
    let mut entries: Vec<(String, i64)> = journal["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["accountId"].as_str().expect("account").to_string(),
                e["amount"].as_i64().expect("amount"),
            )
        })
        .collect();
    entries.sort();
    let mut expected = vec![(a.wallet_id.clone(), -1_234), (b.wallet_id.clone(), 1_234)];
    expected.sort();
    assert_eq!(entries, expected);

    // A later retry still answers the same; the same key for another request is refused.
    let r = s.gql(Some(&a.token), &pay_mutation(), body["variables"].clone()).await;
    assert_eq!(r, first);
    let mut other = body["variables"].clone();
    other["input"]["amount"] = json!(999);
    let r = s.gql(Some(&a.token), &pay_mutation(), other).await;
    assert_eq!(
        payload_code(data(&r, "intraLedgerPaymentSend")),
        "IDEMPOTENCY_KEY_REUSED"
    );
    // Keys are scoped to the paying account: B may use the same one.
    let r = s
        .pay_raw(
            &b.token,
            json!({ "walletId": b.wallet_id, "recipientWalletId": a.wallet_id, "amount": 34, "idempotencyKey": "order-42" }),
        )
        .await;
    assert_no_payload_errors(data(&r, "intraLedgerPaymentSend"));
    assert_eq!(s.journals().await, journals + 2);
    assert_eq!(s.balance(&a).await, 50_000 - 1_200);
}

async fn faucet_is_idempotent_with_a_key(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let journals = s.journals().await;
    let first = s.fund_with_key(&a.wallet_id, 5_000, Some("grant-1")).await;
    let again = s.fund_with_key(&a.wallet_id, 5_000, Some("grant-1")).await;
    assert_eq!(first, again);
    let concurrent = (0..10).map(|_| s.fund_with_key(&a.wallet_id, 5_000, Some("grant-1")));
    for t in futures_util::future::join_all(concurrent).await {
        assert_eq!(t, first);
    }
    assert_eq!(s.balance(&a).await, 5_000);
    assert_eq!(s.journals().await, journals + 1);
    // Without a key, each call credits.
    s.fund(&a.wallet_id, 1).await;
    s.fund(&a.wallet_id, 1).await;
    assert_eq!(s.balance(&a).await, 5_002);

    // Refusals.
    let fund =
        "mutation($input: WalletFundInput!) { walletFund(input: $input) { errors { code } transaction { id } } }";
    for (input, code) in [
        (
            json!({ "walletId": a.wallet_id, "amount": 7, "idempotencyKey": "grant-1" }),
            "IDEMPOTENCY_KEY_REUSED",
        ),
        (json!({ "walletId": a.wallet_id, "amount": 0 }), "INVALID_AMOUNT"),
        (json!({ "walletId": a.wallet_id, "amount": -5 }), "INVALID_AMOUNT"),
        (json!({ "walletId": "nope", "amount": 5 }), "WALLET_NOT_FOUND"),
        (
            json!({ "walletId": "00000000-0000-7000-8000-000000000000", "amount": 5 }),
            "WALLET_NOT_FOUND",
        ),
        (
            json!({ "walletId": a.wallet_id, "amount": 5, "idempotencyKey": "k".repeat(129) }),
            "INVALID_IDEMPOTENCY_KEY",
        ),
    ] {
        let r = s.admin(fund, json!({ "input": input })).await;
        let payload = data(&r, "walletFund");
        assert_eq!(payload_code(payload), code, "{input}");
        assert_eq!(payload["transaction"], Value::Null);
    }
    assert_eq!(s.balance(&a).await, 5_002);
    assert_eq!(s.journals().await, journals + 3);
}

async fn operator_sets_level_and_status(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.named_member("alice").await;
    let b = s.member().await;
    s.fund(&a.wallet_id, 10_000).await;
    s.fund(&b.wallet_id, 10_000).await;

    let level =
        "mutation($id: ID!, $level: AccountLevel!) { accountUpdateLevel(input: { accountId: $id, level: $level }) { \
                 errors { code } accountDetails { id level status } } }";
    let r = s.admin(level, json!({ "id": a.account_id, "level": "TWO" })).await;
    let payload = data(&r, "accountUpdateLevel");
    assert_no_payload_errors(payload);
    assert_eq!(payload["accountDetails"]["level"], "TWO");
    let me = s.me(&a.token).await;
    assert_eq!(data(&me, "me")["defaultAccount"]["level"], "TWO");
    let r = s
        .gql(
            Some(&a.token),
            "{ me { defaultAccount { limits { internalSend { totalLimit remainingLimit } } } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        data(&r, "me")["defaultAccount"]["limits"]["internalSend"][0]["totalLimit"],
        50_000 * 100
    );

    let status = "mutation($id: ID!, $status: AccountStatus!) { accountUpdateStatus(input: { accountId: $id, status: $status, comment: \"review\" }) { \
                  errors { code } accountDetails { status } } }";
    let r = s.admin(status, json!({ "id": a.account_id, "status": "LOCKED" })).await;
    assert_eq!(data(&r, "accountUpdateStatus")["accountDetails"]["status"], "LOCKED");
    let journals = s.journals().await;

    // A locked account can neither pay nor be paid.
    let payload = s.pay(&a.token, &a, &b, 100).await;
    assert_eq!(payload_code(&payload), "ACCOUNT_NOT_ACTIVE");
    assert_eq!(payload["status"], "FAILURE");
    let payload = s.pay(&b.token, &b, &a, 100).await;
    assert_eq!(payload_code(&payload), "RECIPIENT_NOT_ACTIVE");
    assert_eq!(s.journals().await, journals);
    assert_eq!((s.balance(&a).await, s.balance(&b).await), (10_000, 10_000));

    // Operators see it; unlocking restores payments.
    let r = s
        .admin(
            "{ accountDetailsByUsername(username: \"alice\") { id level status owner { username phone } } }",
            json!({}),
        )
        .await;
    let details = data(&r, "accountDetailsByUsername");
    assert_eq!(details["id"], a.account_id.as_str());
    assert_eq!(details["status"], "LOCKED");
    assert_eq!(details["owner"]["phone"], a.phone.as_str());
    let r = s.admin(status, json!({ "id": a.account_id, "status": "ACTIVE" })).await;
    assert_no_payload_errors(data(&r, "accountUpdateStatus"));
    assert_no_payload_errors(&s.pay(&a.token, &a, &b, 100).await);
    assert_eq!(s.balance(&b).await, 10_100);

    // Unknown accounts.
    let r = s.admin(level, json!({ "id": "nope", "level": "ONE" })).await;
    assert_eq!(payload_code(data(&r, "accountUpdateLevel")), "ACCOUNT_NOT_FOUND");
    let r = s
        .admin(
            status,
            json!({ "id": "00000000-0000-7000-8000-000000000000", "status": "LOCKED" }),
        )
        .await;
    assert_eq!(payload_code(data(&r, "accountUpdateStatus")), "ACCOUNT_NOT_FOUND");
    s.journals().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Bad input
// ---------------------------------------------------------------------------------------------

async fn bad_payment_input_changes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.named_member("alice").await;
    let b = s.named_member("bob").await;
    s.fund(&a.wallet_id, 10_000).await;
    let journals = s.journals().await;
    let unchanged = || async {
        assert_eq!(s.balance(&a).await, 10_000);
        assert_eq!(s.balance(&b).await, 0);
        assert_eq!(s.journals().await, journals);
    };
    let base = json!({ "walletId": a.wallet_id, "recipientWalletId": b.wallet_id, "amount": 100 });
    let with = |changes: Value| {
        let mut input = base.clone();
        for (k, v) in changes.as_object().expect("object") {
            if v.is_null() {
                input.as_object_mut().expect("object").remove(k);
            } else {
                input[k] = v.clone();
            }
        }
        input
    };

    // Payload errors: a clear code, FAILURE, no transaction.
    let cases = [
        (with(json!({ "amount": 0 })), "INVALID_AMOUNT"),
        (with(json!({ "amount": -1 })), "INVALID_AMOUNT"),
        (with(json!({ "amount": 2_100_000_000_000_001_i64 })), "INVALID_AMOUNT"),
        (with(json!({ "amount": 10_001 })), "INSUFFICIENT_BALANCE"),
        (
            with(json!({ "recipientWalletId": null, "recipientUsername": "nobody_here" })),
            "RECIPIENT_NOT_FOUND",
        ),
        (
            with(json!({ "recipientWalletId": "00000000-0000-7000-8000-000000000000" })),
            "RECIPIENT_NOT_FOUND",
        ),
        (with(json!({ "recipientWalletId": "garbage" })), "RECIPIENT_NOT_FOUND"),
        (with(json!({ "recipientUsername": "bob" })), "INVALID_RECIPIENT"),
        (with(json!({ "recipientWalletId": null })), "INVALID_RECIPIENT"),
        (
            with(json!({ "recipientWalletId": null, "recipientUsername": "b!" })),
            "INVALID_USERNAME",
        ),
        (with(json!({ "walletId": "garbage" })), "WALLET_NOT_FOUND"),
        (with(json!({ "recipientWalletId": a.wallet_id })), "SELF_PAYMENT"),
        (with(json!({ "memo": "m".repeat(1_001) })), "MEMO_TOO_LONG"),
        (
            with(json!({ "idempotencyKey": "k".repeat(129) })),
            "INVALID_IDEMPOTENCY_KEY",
        ),
        (with(json!({ "idempotencyKey": "" })), "INVALID_IDEMPOTENCY_KEY"),
    ];
    for (input, code) in cases {
        let r = s.pay_raw(&a.token, input.clone()).await;
        let payload = data(&r, "intraLedgerPaymentSend");
        assert_eq!(payload_code(payload), code, "{input}");
        assert_eq!(payload["status"], "FAILURE", "{input}");
        assert_eq!(payload["transaction"], Value::Null, "{input}");
        assert!(!payload["errors"][0]["message"].as_str().unwrap_or_default().is_empty());
    }
    unchanged().await;

    // Top-level errors: the request never reaches the bank.
    let mutation = pay_mutation();
    let top_level: Vec<(String, Value, &str)> = vec![
        (mutation.clone(), json!({ "input": with(json!({ "amount": 9_223_372_036_854_775_808_u64 })) }), "overflow"),
        (mutation.clone(), json!({ "input": with(json!({ "amount": "abc" })) }), "string amount"),
        (mutation.clone(), json!({ "input": with(json!({ "amount": 1.5 })) }), "fractional amount"),
        (mutation.clone(), json!({ "input": with(json!({ "walletId": null })) }), "missing wallet"),
        (mutation.clone(), json!({ "input": with(json!({ "bogus": 1 })) }), "unknown input field"),
        (
            format!(
                "mutation {{ intraLedgerPaymentSend(input: {{ walletId: \"{}\", recipientWalletId: \"{}\", amount: 9223372036854775808 }}) {{ status }} }}",
                a.wallet_id, b.wallet_id
            ),
            json!({}),
            "overflow literal",
        ),
        (
            format!(
                "mutation {{ intraLedgerPaymentSend(input: {{ walletId: \"{}\", recipientWalletId: \"{}\", amount: 100 }}) {{ status nope }} }}",
                a.wallet_id, b.wallet_id
            ),
            json!({}),
            "unknown field",
        ),
        (
            format!(
                "mutation {{ intraLedgerPaymentSend(input: {{ walletId: \"{}\", recipientWalletId: \"{}\", amount: 100 ",
                a.wallet_id, b.wallet_id
            ),
            json!({}),
            "malformed query",
        ),
        ("{ me { id nope } }".to_string(), json!({}), "unknown query field"),
        ("mutation { nope }".to_string(), json!({}), "unknown mutation"),
        ("}{".to_string(), json!({}), "garbage"),
    ];
    for (query, variables, what) in top_level {
        let r = s.gql(Some(&a.token), &query, variables).await;
        assert!(has_top_errors(&r), "{what}: {r}");
        assert!(
            r["data"].is_null() || r["data"]["intraLedgerPaymentSend"].is_null(),
            "{what}: {r}"
        );
        let message = r["errors"][0]["message"].as_str().unwrap_or_default();
        assert!(!message.is_empty(), "{what}: {r}");
    }
    unchanged().await;

    // The largest memo is fine.
    let payload = s
        .pay_raw(
            &a.token,
            with(json!({ "memo": "m".repeat(1_000), "idempotencyKey": "k".repeat(128) })),
        )
        .await;
    assert_no_payload_errors(data(&payload, "intraLedgerPaymentSend"));
    assert_eq!(s.balance(&b).await, 100);
}

/// `levels` fragments on `on`, each spreading the next one twice: 2^levels fields in ~1 KB.
fn fragment_bomb(on: &str, levels: usize) -> String {
    let mut q = String::from("query { ...F0 }\n");
    for i in 0..levels {
        q.push_str(&format!("fragment F{i} on {on} {{ ...F{} ...F{} }}\n", i + 1, i + 1));
    }
    q.push_str(&format!("fragment F{levels} on {on} {{ __typename }}\n"));
    q
}

/// Nested fragments that each spread the next twice pass the depth and complexity limits as
/// written; measured after expansion they are refused before anything runs, and the server
/// keeps answering.
async fn fragment_bombs_are_refused_before_they_run(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    for levels in [22, 30] {
        let bomb = fragment_bomb("PublicQuery", levels);
        assert!(bomb.len() < 2_000, "{} bytes", bomb.len());
        for token in [None, Some(a.token.as_str())] {
            let r = s.gql(token, &bomb, json!({})).await;
            assert_eq!(top_code(&r), "QUERY_TOO_COMPLEX", "{levels} levels: {r}");
            assert_eq!(r["data"], Value::Null, "{r}");
        }
        let r = s
            .graphql_at(
                "/admin/graphql",
                Some(&s.admin_key),
                &fragment_bomb("AdminQuery", levels),
                json!({}),
            )
            .await;
        assert_eq!(top_code(&r), "QUERY_TOO_COMPLEX", "admin, {levels} levels: {r}");
    }
    // A query that uses fragments honestly still runs.
    let r = s.gql(Some(&a.token), &fragment_bomb("PublicQuery", 4), json!({})).await;
    assert_eq!(r["errors"], Value::Null, "{r}");
    assert_eq!(r["data"]["__typename"], json!("PublicQuery"), "{r}");
    assert_eq!(s.get("/healthz", &[]).await.status, 200);
}

/// Without the operator key, `/admin/graphql` answers `UNAUTHENTICATED` to everything, before
/// reading the query: no introspection, no parse errors, no fragment expansion.
async fn operator_api_checks_the_key_before_parsing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let introspection = "{ __schema { queryType { name } types { name fields { name } } } }";
    for cred in [None, Some("flashadm_nope"), Some(a.token.as_str())] {
        for query in [introspection, "{ this is not graphql", &fragment_bomb("AdminQuery", 30)] {
            let r = s.graphql_at("/admin/graphql", cred, query, json!({})).await;
            assert_eq!(
                top_codes(&r),
                vec!["UNAUTHENTICATED".to_string()],
                "{cred:?} {query}: {r}"
            );
            assert_eq!(r["data"], Value::Null, "{r}");
        }
        let r = s
            .post_raw("/admin/graphql", cred, "application/json", b"{\"query\": ".to_vec())
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert!(r.text.contains("UNAUTHENTICATED"), "{}", r.text);
    }
    let r = s
        .graphql_at("/admin/graphql", Some(&s.admin_key), introspection, json!({}))
        .await;
    assert_eq!(r["data"]["__schema"]["queryType"]["name"], json!("AdminQuery"), "{r}");
}

/// A page or asset names no other origin: no `http(s)://` or protocol-relative URLs at all.
fn assert_no_foreign_assets(text: &str) {
    for needle in ["http://", "https://", "src=\"//", "href=\"//"] {
        assert!(!text.contains(needle), "{needle} in:\n{text}");
    }
}

/// Oversized chunked bodies (no Content-Length) on the GraphQL endpoints: refused, but with 400.
async fn oversized_chunked_graphql_bodies_get_413(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let big_query = format!("{{ me {{ id }} }} # {}", "x".repeat(70 * 1024));
    let big = serde_json::to_vec(&json!({ "query": big_query })).expect("json");
    for path in ["/graphql", "/admin/graphql"] {
        let (status, answer) = s.post_tcp(path, Some(&a.token), &big, true).await;
        assert_eq!(status, 413, "{path} (chunked): {answer}");
    }
}

async fn bad_http_requests_are_refused(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    s.fund(&a.wallet_id, 1_000).await;
    let journals = s.journals().await;

    // Not JSON.
    for (path, token) in [("/graphql", &a.token), ("/admin/graphql", &s.admin_key)] {
        let r = s
            .post_raw(path, Some(token), "application/json", b"{\"query\": ".to_vec())
            .await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
    }

    // Bodies over 64 KiB.
    let big_query = format!("{{ me {{ id }} }} # {}", "x".repeat(70 * 1024));
    let big = serde_json::to_vec(&json!({ "query": big_query })).expect("json");
    for path in [
        "/graphql",
        "/admin/graphql",
        "/auth/phone/code",
        "/auth/logout",
        "/auth/create/device-account",
    ] {
        let (status, answer) = s.post_tcp(path, Some(&a.token), &big, false).await;
        assert_eq!(status, 413, "{path}: {answer}");
    }
    // REST routes also refuse oversized bodies whose size is not announced (chunked).
    for path in ["/auth/phone/code", "/auth/create/device-account"] {
        let (status, answer) = s.post_tcp(path, Some(&a.token), &big, true).await;
        assert_eq!(status, 413, "{path} (chunked): {answer}");
    }
    // Just under the limit is accepted.
    let fits = format!("{{ me {{ id }} }} # {}", "x".repeat(60 * 1024));
    let r = s.gql(Some(&a.token), &fits, json!({})).await;
    assert_eq!(data(&r, "me")["id"], a.user_id.as_str());

    // Too deep.
    let deep = format!(
        "{{ me {}id{} }}",
        "{ defaultAccount { wallets { ".repeat(5),
        " } } }".repeat(5)
    );
    let r = s.gql(Some(&a.token), &deep, json!({})).await;
    assert!(has_top_errors(&r), "{r}");

    assert_eq!(s.journals().await, journals);
    assert_eq!(s.balance(&a).await, 1_000);
}

// ---------------------------------------------------------------------------------------------
// 6. Subscriptions
// ---------------------------------------------------------------------------------------------

const MY_UPDATES: &str = "subscription { myUpdates { errors { code message } update { __typename \
    ... on IntraLedgerUpdate { txNotificationType walletId amount transaction { id direction settlementAmount memo \
    settlementVia { ... on SettlementViaIntraLedger { counterPartyUsername counterPartyWalletId } } } } } } }";

/// The `myUpdates.update` of a `next` message for subscription `id`.
fn update_of(msg: &Value, id: &str) -> Value {
    assert_eq!(msg["type"], "next", "{msg}");
    assert_eq!(msg["id"], id, "{msg}");
    assert!(msg["payload"]["errors"].is_null(), "{msg}");
    let updates = &msg["payload"]["data"]["myUpdates"];
    assert_eq!(updates["errors"], json!([]), "{msg}");
    updates["update"].clone()
}

/// Makes sure the subscription is live: funds `wallet` with 1, 2, 3… sats until one of those
/// credits arrives (each wait bounded), then drains the credits sent after it. Events reach a
/// subscriber in order, so everything after the first arrival is accounted for.
async fn sync_subscription(s: &TestServer, ws: &mut WsClient, id: &str, wallet: &str) {
    let mut sent = 0;
    loop {
        sent += 1;
        assert!(sent <= 20, "the subscription never delivered a probe");
        s.fund(wallet, sent).await;
        if let Some(msg) = ws.next_within(Duration::from_millis(500)).await {
            let first = update_of(&msg, id)["amount"].as_i64().expect("probe amount");
            for expected in first + 1..=sent {
                let msg = ws.next().await;
                assert_eq!(update_of(&msg, id)["amount"], expected, "{msg}");
            }
            return;
        }
    }
}

/// `txNotificationType` with case and underscores folded away, so these tests check the kind
/// of update whatever its spelling (the spelling itself is pinned by
/// `galoy_names_for_notification_types_and_account_fields`).
fn notification_kind(update: &Value) -> String {
    update["txNotificationType"]
        .as_str()
        .unwrap_or_else(|| panic!("no txNotificationType: {update}"))
        .replace('_', "")
        .to_ascii_lowercase()
}

async fn my_updates_delivers_own_events_only(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.named_member("alice").await;
    let b = s.named_member("bob").await;
    let c = s.named_member("carol").await;
    s.fund(&b.wallet_id, 50_000).await;

    let mut ws = s.ws_connect(Some(&a.token)).await;
    ws.subscribe("a1", MY_UPDATES).await;
    sync_subscription(&s, &mut ws, "a1", &a.wallet_id).await;

    // B pays A: A hears of the receipt.
    let r = s
        .pay_raw(
            &b.token,
            json!({ "walletId": b.wallet_id, "recipientUsername": "alice", "amount": 1_234, "memo": "hi alice" }),
        )
        .await;
    let payment = data(&r, "intraLedgerPaymentSend").clone();
    assert_no_payload_errors(&payment);
    let update = update_of(&ws.next().await, "a1");
    assert_eq!(update["__typename"], "IntraLedgerUpdate");
    assert_eq!(notification_kind(&update), "intraledgerreceipt", "{update}");
    assert_eq!(update["walletId"], a.wallet_id.as_str());
    assert_eq!(update["amount"], 1_234);
    let tx = &update["transaction"];
    assert_eq!(tx["id"], payment["transaction"]["id"]);
    assert_eq!(tx["direction"], "RECEIVE");
    assert_eq!(tx["settlementAmount"], 1_234);
    assert_eq!(tx["memo"], "hi alice");
    assert_eq!(tx["settlementVia"]["counterPartyUsername"], "bob");
    assert_eq!(tx["settlementVia"]["counterPartyWalletId"], b.wallet_id.as_str());

    // B pays C and C pays B: nothing for A. Then A pays C: A's next message is its own payment.
    assert_no_payload_errors(&s.pay(&b.token, &b, &c, 777).await);
    assert_no_payload_errors(&s.pay(&c.token, &c, &b, 77).await);
    let own = s.pay(&a.token, &a, &c, 55).await;
    assert_no_payload_errors(&own);
    let update = update_of(&ws.next().await, "a1");
    assert_eq!(notification_kind(&update), "intraledgerpayment", "{update}");
    assert_eq!(update["walletId"], a.wallet_id.as_str());
    assert_eq!(update["amount"], 55);
    assert_eq!(update["transaction"]["id"], own["transaction"]["id"]);
    assert_eq!(update["transaction"]["settlementAmount"], -55);
    assert_eq!(update["transaction"]["settlementVia"]["counterPartyUsername"], "carol");

    // An idempotent replay announces nothing new: the next message is the one after it.
    let keyed =
        json!({ "walletId": b.wallet_id, "recipientWalletId": a.wallet_id, "amount": 5, "idempotencyKey": "once" });
    assert_no_payload_errors(data(
        &s.pay_raw(&b.token, keyed.clone()).await,
        "intraLedgerPaymentSend",
    ));
    assert_eq!(update_of(&ws.next().await, "a1")["amount"], 5);
    assert_no_payload_errors(data(&s.pay_raw(&b.token, keyed).await, "intraLedgerPaymentSend"));
    assert_no_payload_errors(&s.pay(&b.token, &b, &a, 6).await);
    assert_eq!(update_of(&ws.next().await, "a1")["amount"], 6);

    // C, subscribed too, hears only its own events.
    let mut wc = s.ws_connect(Some(&c.token)).await;
    wc.subscribe("c1", MY_UPDATES).await;
    sync_subscription(&s, &mut wc, "c1", &c.wallet_id).await;
    assert_no_payload_errors(&s.pay(&a.token, &a, &b, 9).await);
    assert_no_payload_errors(&s.pay(&b.token, &b, &c, 10).await);
    let update = update_of(&wc.next().await, "c1");
    assert_eq!(
        (update["amount"].clone(), notification_kind(&update)),
        (json!(10), "intraledgerreceipt".to_string())
    );
    assert_eq!(update_of(&ws.next().await, "a1")["amount"], 9);

    // Completing the subscription.
    ws.send(json!({ "id": "a1", "type": "complete" })).await;
    let msg = ws.next().await;
    assert_eq!(msg, json!({ "type": "complete", "id": "a1" }));
}

async fn my_updates_requires_a_token(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let (_, receive_only) = s.create_key(&a.token, "no read", &["RECEIVE"]).await;
    for (label, token, code) in [
        ("no token", None, "UNAUTHENTICATED"),
        ("unknown token", Some("nope"), "UNAUTHENTICATED"),
        ("key without read", Some(receive_only.as_str()), "FORBIDDEN_SCOPE"),
    ] {
        let mut ws = s.ws_connect(token).await;
        ws.subscribe("x", MY_UPDATES).await;
        let msg = ws.next().await;
        let errors = match msg["type"].as_str() {
            Some("next") => msg["payload"]["errors"].clone(),
            Some("error") => msg["payload"].clone(),
            _ => panic!("{label}: unexpected {msg}"),
        };
        assert_eq!(errors[0]["extensions"]["code"], code, "{label}: {msg}");
        assert!(msg["payload"]["data"].is_null(), "{label}: {msg}");
        let done = ws.next().await;
        assert_eq!(done, json!({ "type": "complete", "id": "x" }), "{label}");
    }
    // A revoked session cannot subscribe either.
    let token = s.login_phone(&a.phone).await;
    s.post_json("/auth/logout", Some(&token), &json!({})).await;
    let mut ws = s.ws_connect(Some(&token)).await;
    ws.subscribe("y", MY_UPDATES).await;
    let msg = ws.next().await;
    assert_eq!(
        msg["payload"]["errors"][0]["extensions"]["code"], "TOKEN_REVOKED",
        "{msg}"
    );
}

// ---------------------------------------------------------------------------------------------
// 7. Health, readiness, metrics, pages
// ---------------------------------------------------------------------------------------------

async fn health_readiness_metrics_and_pages(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    s.fund(&a.wallet_id, 4_321).await;
    let db = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };

    let r = s.get("/healthz", &[]).await;
    assert_eq!(r.status, 200);
    let health = r.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"], db);
    assert_eq!(health["network"], "regtest");
    assert_eq!(health["simulated"], json!(["lightning", "onchain", "prices"]));
    assert_eq!(health["prices"], "dev");
    assert!(health["version"].as_str().is_some_and(|v| !v.is_empty()));

    let r = s.get("/readyz", &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({ "status": "ready" }));

    let r = s.get("/metrics", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain")));
    let m = &r.text;
    assert!(
        m.contains("flash_http_requests_total{route=\"/graphql\",status=\"200\"}"),
        "{m}"
    );
    assert!(
        m.contains("flash_http_requests_total{route=\"/healthz\",status=\"200\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("flash_http_request_duration_seconds_bucket{route=\"/admin/graphql\""),
        "{m}"
    );
    let journals = m
        .lines()
        .find_map(|l| l.strip_prefix("flash_ledger_journals_total "))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no flash_ledger_journals_total: {m}"));
    assert!(journals >= 1, "{m}");
    assert!(m.contains("flash_wallet_balance_total{currency=\"BTC\"} 4321"), "{m}");

    // Browsers get the query console at /graphql and /admin/graphql and a landing page at /,
    // every asset from this server and a policy that forbids any other origin.
    for path in ["/graphql", "/admin/graphql"] {
        let r = s.get(path, &[("accept", "text/html")]).await;
        assert_eq!(r.status, 200);
        assert!(r.text.contains(&format!("data-endpoint=\"{path}\"")), "{}", r.text);
        assert_no_foreign_assets(&r.text);
        let csp = r.headers.get("content-security-policy").expect("a CSP header");
        assert!(csp.to_str().expect("ascii").contains("default-src 'none'"), "{csp:?}");
    }
    for asset in ["/assets/console.js", "/assets/flash.css"] {
        let r = s.get(asset, &[]).await;
        assert_eq!(r.status, 200, "{asset}");
        assert_no_foreign_assets(&r.text);
    }
    assert_eq!(s.get("/assets/nope.js", &[]).await.status, 404);
    let r = s.get("/", &[("accept", "text/html")]).await;
    assert_eq!(r.status, 200);
    assert!(r.text.contains("Flash</a></h1>"), "{}", r.text);
    assert!(r.text.contains(db), "{}", r.text);
    assert!(r.text.contains("href=\"/graphql\""), "{}", r.text);
    // Unknown paths are 404 and counted as unmatched.
    assert_eq!(s.get("/nope", &[]).await.status, 404);
    let m = s.get("/metrics", &[]).await.text;
    assert!(
        m.contains("flash_http_requests_total{route=\"unmatched\",status=\"404\"} 1"),
        "{m}"
    );
}

// ---------------------------------------------------------------------------------------------
// Galoy/Blink schema names
// ---------------------------------------------------------------------------------------------

async fn galoy_notification_type_names(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = s
        .gql(
            None,
            "{ __type(name: \"TxNotificationType\") { enumValues { name } } }",
            json!({}),
        )
        .await;
    let names: BTreeSet<String> = data(&r, "__type")["enumValues"]
        .as_array()
        .expect("enum values")
        .iter()
        .map(|v| v["name"].as_str().expect("name").to_string())
        .collect();
    assert!(
        names.contains("IntraLedgerReceipt") && names.contains("IntraLedgerPayment"),
        "{names:?}"
    );
}

async fn galoy_account_interface_fields(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    let r = s
        .gql(
            Some(&a.token),
            "query($w: WalletId!) { me { defaultAccount { walletById(walletId: $w) { id } defaultWallet { id } } } }",
            json!({ "w": a.wallet_id }),
        )
        .await;
    let account = &data(&r, "me")["defaultAccount"];
    assert_eq!(account["walletById"]["id"], a.wallet_id.as_str());
    assert_eq!(account["defaultWallet"]["id"], a.wallet_id.as_str());
}

// ---------------------------------------------------------------------------------------------
// Prices: realtimePrice, currencyList and display amounts from the (dev) price source
// ---------------------------------------------------------------------------------------------

async fn prices_fill_galoy_display_fields(backend: Backend) {
    let s = TestServer::start(backend).await;
    let a = s.member().await;
    s.fund(&a.wallet_id, 4_321).await;
    // The dev source: 1 BTC = 100,000.00 USD = 92,000.00 EUR.
    let data = s
        .gql(
            None,
            "{ usd: realtimePrice { id timestamp denominatorCurrency btcSatPrice { base offset currencyUnit } usdCentPrice { base offset } } \
               eur: realtimePrice(currency: \"EUR\") { denominatorCurrency btcSatPrice { base offset } usdCentPrice { base offset } } \
               currencyList { id name symbol flag fractionDigits } }",
            json!({}),
        )
        .await;
    let usd = &data["data"]["usd"];
    assert_eq!(usd["denominatorCurrency"], "USD", "{data}");
    assert_eq!(
        usd["btcSatPrice"],
        json!({ "base": 100_000_000_000_i64, "offset": 12, "currencyUnit": "MINOR" })
    );
    assert_eq!(usd["usdCentPrice"], json!({ "base": 1_000_000, "offset": 6 }));
    assert!(usd["timestamp"].as_i64().is_some_and(|t| t > 1_700_000_000), "{usd}");
    let eur = &data["data"]["eur"];
    assert_eq!(eur["btcSatPrice"], json!({ "base": 92_000_000_000_i64, "offset": 12 }));
    assert_eq!(eur["usdCentPrice"], json!({ "base": 920_000, "offset": 6 }));
    let list = data["data"]["currencyList"].as_array().expect("currencyList");
    assert!(
        list.contains(&json!({ "id": "USD", "name": "US Dollar", "symbol": "$", "flag": "🇺🇸", "fractionDigits": 2 })),
        "{list:?}"
    );
    assert!(
        list.iter().any(|c| c["id"] == "JPY" && c["fractionDigits"] == 0),
        "{list:?}"
    );

    // Bad and unknown currencies: typed errors.
    for (currency, code) in [("usd", "INVALID_CURRENCY"), ("XYZ", "INVALID_CURRENCY")] {
        let data = s
            .gql(
                None,
                "query($c: DisplayCurrency) { realtimePrice(currency: $c) { id } }",
                json!({ "c": currency }),
            )
            .await;
        assert_eq!(data["errors"][0]["extensions"]["code"], code, "{currency}: {data}");
    }

    // A transaction's display amounts, at the price of now: 4,321 sats = $4.321 → "4.32".
    let data = s
        .gql(
            Some(&a.token),
            "{ me { defaultAccount { transactions(first: 1) { edges { node { settlementAmount \
               settlementDisplayAmount settlementDisplayFee settlementDisplayCurrency \
               settlementPrice { base offset currencyUnit formattedAmount } } } } } } }",
            json!({}),
        )
        .await;
    let node = &data["data"]["me"]["defaultAccount"]["transactions"]["edges"][0]["node"];
    assert_eq!(node["settlementAmount"], 4_321, "{data}");
    assert_eq!(node["settlementDisplayAmount"], "4.32");
    assert_eq!(node["settlementDisplayFee"], "0.00");
    assert_eq!(node["settlementDisplayCurrency"], "USD");
    assert_eq!(
        node["settlementPrice"],
        json!({ "base": 100_000_000_000_i64, "offset": 12, "currencyUnit": "MINOR", "formattedAmount": "0.1" })
    );
}
