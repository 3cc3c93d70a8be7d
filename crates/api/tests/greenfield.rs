//! The Greenfield API (`/api/v1/…`) over HTTP: stores and API keys with BTCPay's permissions,
//! BTCPay's error bodies (401, 403 `missing-permission`, 404 `store-not-found`, 422 with
//! `[{path, message}]`), and refusals that write nothing. On SQLite and PostgreSQL.

mod common;

use common::*;
use serde_json::{json, Value};

flash_store::on_both_backends!(
    stores_and_keys_over_http,
    refusals_answer_as_btcpay_does,
    the_owner_makes_stores_and_keys_in_graphql,
    server_info_names_the_rails,
    an_empty_body_makes_a_key_without_permissions,
);

/// A Greenfield request: `auth` is the whole `Authorization` header value.
async fn call(s: &TestServer, method: &str, path: &str, auth: Option<&str>, body: Option<&Value>) -> Resp {
    s.greenfield(method, path, auth, body, &[]).await
}

fn bearer(m: &Member) -> String {
    format!("Bearer {}", m.token)
}

async fn key(s: &TestServer, m: &Member, permissions: &[String]) -> String {
    let r = call(
        s,
        "POST",
        "/api/v1/api-keys",
        Some(&bearer(m)),
        Some(&json!({"label": "test", "permissions": permissions})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    format!("token {}", r.json()["apiKey"].as_str().expect("apiKey"))
}

async fn stores_and_keys_over_http(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let admin = key(&s, &alice, &["btcpay.store.canmodifystoresettings".into()]).await;

    let r = call(
        &s,
        "POST",
        "/api/v1/stores",
        Some(&admin),
        Some(&json!({"name": "Shop"})),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text);
    let store = r.json();
    let id = store["id"].as_str().expect("id").to_string();
    assert_eq!(
        (
            &store["name"],
            &store["defaultCurrency"],
            &store["invoiceExpiration"],
            &store["speedPolicy"]
        ),
        (&json!("Shop"), &json!("USD"), &json!(900), &json!("MediumSpeed"))
    );
    let r = call(&s, "GET", "/api/v1/stores", Some(&admin), None).await;
    assert_eq!(r.json(), json!([store.clone()]));
    let r = call(
        &s,
        "PUT",
        &format!("/api/v1/stores/{id}"),
        Some(&admin),
        Some(&json!({"name": "Shop 2", "paymentTolerance": 2.5})),
    )
    .await;
    assert_eq!(
        (r.status, &r.json()["paymentTolerance"]),
        (200, &json!(2.5)),
        "{}",
        r.text
    );
    let r = call(&s, "GET", &format!("/api/v1/stores/{id}"), Some(&admin), None).await;
    assert_eq!(r.json()["name"], json!("Shop 2"));

    // The key describes itself.
    let r = call(&s, "GET", "/api/v1/api-keys/current", Some(&admin), None).await;
    assert_eq!(
        r.json(),
        json!({
            "apiKey": admin.trim_start_matches("token "),
            "label": "test",
            "permissions": ["btcpay.store.canmodifystoresettings"]
        })
    );

    // A key that may only view this store.
    let viewer = key(&s, &alice, &[format!("btcpay.store.canviewstoresettings:{id}")]).await;
    let r = call(&s, "GET", &format!("/api/v1/stores/{id}"), Some(&viewer), None).await;
    assert_eq!(r.status, 200);
    let r = call(&s, "GET", "/api/v1/stores", Some(&viewer), None).await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(1));

    // Revoking the current key ends it; deleting the store ends it.
    let r = call(&s, "DELETE", "/api/v1/api-keys/current", Some(&viewer), None).await;
    assert_eq!(r.status, 200);
    let r = call(&s, "GET", &format!("/api/v1/stores/{id}"), Some(&viewer), None).await;
    assert_eq!((r.status, &r.json()["code"]), (401, &json!("unauthenticated")));
    let r = call(&s, "DELETE", &format!("/api/v1/stores/{id}"), Some(&admin), None).await;
    assert_eq!(r.status, 200);
    let r = call(&s, "GET", &format!("/api/v1/stores/{id}"), Some(&admin), None).await;
    assert_eq!((r.status, &r.json()["code"]), (404, &json!("store-not-found")));
}

async fn refusals_answer_as_btcpay_does(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let owner = bearer(&alice);
    let r = call(
        &s,
        "POST",
        "/api/v1/stores",
        Some(&owner),
        Some(&json!({"name": "Mine"})),
    )
    .await;
    let id = r.json()["id"].as_str().expect("id").to_string();

    // Who are you?
    for auth in [
        None,
        Some("token not-a-key"),
        Some("Basic YWxpY2U6cHc="),
        Some("Bearer nope"),
    ] {
        let r = call(&s, "GET", "/api/v1/stores", auth, None).await;
        assert_eq!(
            (r.status, &r.json()["code"]),
            (401, &json!("unauthenticated")),
            "{auth:?}"
        );
    }

    // Not allowed: BTCPay's 403 names the permission missing.
    let viewer = key(&s, &alice, &[format!("btcpay.store.canviewstoresettings:{id}")]).await;
    let r = call(
        &s,
        "PUT",
        &format!("/api/v1/stores/{id}"),
        Some(&viewer),
        Some(&json!({"name": "X"})),
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        (&r.json()["code"], &r.json()["missingPermission"]),
        (
            &json!("missing-permission"),
            &json!("btcpay.store.canmodifystoresettings")
        )
    );
    let r = call(&s, "POST", "/api/v1/stores", Some(&viewer), Some(&json!({"name": "X"}))).await;
    assert_eq!(r.status, 403);
    let r = call(
        &s,
        "POST",
        "/api/v1/api-keys",
        Some(&viewer),
        Some(&json!({"permissions": ["unrestricted"]})),
    )
    .await;
    assert_eq!(
        (r.status, &r.json()["missingPermission"]),
        (403, &json!("unrestricted"))
    );

    // Another member's store does not exist for them.
    let bob = s.member().await;
    let r = call(&s, "GET", &format!("/api/v1/stores/{id}"), Some(&bearer(&bob)), None).await;
    assert_eq!((r.status, &r.json()["code"]), (404, &json!("store-not-found")));
    let r = call(
        &s,
        "POST",
        "/api/v1/api-keys",
        Some(&bearer(&bob)),
        Some(&json!({"permissions": [format!("btcpay.store.canmodifystoresettings:{id}")]})),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text);

    // Bad input: 422 with every bad field by its path, nothing written.
    let r = call(
        &s,
        "POST",
        "/api/v1/stores",
        Some(&owner),
        Some(&json!({"name": "", "defaultCurrency": 5, "invoiceExpiration": 1})),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.text);
    let paths: Vec<Value> = r
        .json()
        .as_array()
        .expect("array")
        .iter()
        .map(|e| e["path"].clone())
        .collect();
    assert_eq!(
        paths,
        vec![json!("name"), json!("defaultCurrency"), json!("invoiceExpiration")]
    );
    for body in ["{", "[]", "null"] {
        let r = s
            .post_raw("/api/v1/stores", Some(&alice.token), "application/json", body.into())
            .await;
        assert_eq!(r.status, 422, "{body}: {}", r.text);
    }
    let r = call(
        &s,
        "POST",
        "/api/v1/api-keys",
        Some(&owner),
        Some(&json!({"permissions": ["btcpay.store.everything"]})),
    )
    .await;
    assert_eq!(
        (r.status, &r.json()[0]["path"]),
        (422, &json!("permissions[0]")),
        "{}",
        r.text
    );
    let r = call(&s, "GET", "/api/v1/stores", Some(&owner), None).await;
    assert_eq!(r.json().as_array().map(Vec::len), Some(1), "nothing written");
}

async fn the_owner_makes_stores_and_keys_in_graphql(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let r = s
        .gql(
            Some(&alice.token),
            "mutation($input: MerchantStoreCreateInput!) { merchantStoreCreate(input: $input) \
             { errors { code } store { id name defaultCurrency archived } } }",
            json!({"input": {"name": "Cafe", "defaultCurrency": "eur"}}),
        )
        .await;
    let store = data(&r, "merchantStoreCreate")["store"].clone();
    assert_eq!(
        (&store["name"], &store["defaultCurrency"]),
        (&json!("Cafe"), &json!("EUR")),
        "{r}"
    );
    let id = store["id"].as_str().expect("id").to_string();

    let create_key = "mutation($input: MerchantApiKeyCreateInput!) { merchantApiKeyCreate(input: $input) \
         { errors { code } apiKey { id label permissions } secret } }";
    let r = s
        .gql(
            Some(&alice.token),
            create_key,
            json!({"input": {"label": "till", "permissions": [format!("btcpay.store.cancreateinvoice:{id}")]}}),
        )
        .await;
    let made = data(&r, "merchantApiKeyCreate").clone();
    let secret = made["secret"].as_str().expect("secret").to_string();
    let key_id = made["apiKey"]["id"].as_str().expect("id").to_string();
    let r = call(
        &s,
        "GET",
        "/api/v1/api-keys/current",
        Some(&format!("token {secret}")),
        None,
    )
    .await;
    assert_eq!(
        r.json()["permissions"],
        json!([format!("btcpay.store.cancreateinvoice:{id}")])
    );

    // Refusals come back as payload errors and write nothing.
    let r = s
        .gql(
            Some(&alice.token),
            create_key,
            json!({"input": {"label": "x", "permissions": ["btcpay.store.nope"]}}),
        )
        .await;
    assert_eq!(payload_code(data(&r, "merchantApiKeyCreate")), "INVALID_INPUT");
    let r = s
        .gql(
            Some(&alice.token),
            "{ merchantApiKeys { id label } merchantStores { id } }",
            json!({}),
        )
        .await;
    assert_eq!(data(&r, "merchantApiKeys").as_array().map(Vec::len), Some(1));
    assert_eq!(data(&r, "merchantStores"), &json!([{"id": id}]));

    let revoke = "mutation($input: MerchantApiKeyRevokeInput!) { merchantApiKeyRevoke(input: $input) \
         { errors { code } revoked } }";
    let bob = s.member().await;
    let r = s.gql(Some(&bob.token), revoke, json!({"input": {"id": key_id}})).await;
    assert_eq!(payload_code(data(&r, "merchantApiKeyRevoke")), "API_KEY_NOT_FOUND");
    let r = s
        .gql(Some(&alice.token), revoke, json!({"input": {"id": key_id}}))
        .await;
    assert_eq!(data(&r, "merchantApiKeyRevoke")["revoked"], json!(true));
    let r = call(
        &s,
        "GET",
        "/api/v1/api-keys/current",
        Some(&format!("token {secret}")),
        None,
    )
    .await;
    assert_eq!(r.status, 401);
}

/// Found by schemathesis: BTCPay reads a missing body on `POST /api/v1/api-keys` as `{}` (a key
/// with no label and no permissions); Flash answered 422 "invalid JSON".
async fn an_empty_body_makes_a_key_without_permissions(backend: Backend) {
    let s = TestServer::start(backend).await;
    let alice = s.member().await;
    let unrestricted = key(&s, &alice, &["unrestricted".into()]).await;
    let r = call(&s, "POST", "/api/v1/api-keys", Some(&unrestricted), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let made = r.json();
    assert_eq!((&made["label"], &made["permissions"]), (&json!(""), &json!([])));
    assert!(made["apiKey"].as_str().is_some_and(|k| k.len() == 40), "{made}");
    // A body that is there but not JSON is still refused.
    let r = s
        .http
        .post(s.url("/api/v1/api-keys"))
        .header("authorization", &unrestricted)
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .expect("request");
    assert_eq!(r.status().as_u16(), 422);
}

async fn server_info_names_the_rails(backend: Backend) {
    let s = TestServer::start(backend).await;
    let r = call(&s, "GET", "/api/v1/server/info", None, None).await;
    assert_eq!((r.status, &r.json()["code"]), (401, &json!("unauthenticated")));
    let alice = s.member().await;
    let key = key(&s, &alice, &[]).await;
    let r = call(&s, "GET", "/api/v1/server/info", Some(&key), None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let info = r.json();
    assert_eq!(info["version"], json!(env!("CARGO_PKG_VERSION")));
    assert_eq!(
        info["supportedPaymentMethods"],
        json!(["BTC-CHAIN", "BTC-LN", "BTC-LNURL"])
    );
    assert_eq!(info["syncStatus"][0]["paymentMethodId"], json!("BTC-CHAIN"));
}
