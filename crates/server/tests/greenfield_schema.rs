//! Issue 15: every Greenfield route Flash serves conforms to BTCPay's OpenAPI (the files in
//! `shared/vectors/btcpay/`), checked by `schemathesis` (`FLASH_TEST_SCHEMATHESIS`, the path of
//! its `st` command; `.ci/run` installs it). The test merges the vector files into one document
//! holding only the served operations, starts flashd, makes an account, an `unrestricted` key
//! and a store, and runs a short, seeded schemathesis pass against 127.0.0.1: no server error,
//! no undocumented status code, no response breaking its schema. Without `st` the test prints
//! why it skipped; under CI it fails.
//!
//! The spec is patched where it contradicts what BTCPay actually answers (each patch is listed
//! in docs/merchant.md, "Conformance").

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use common::*;
use serde_json::{json, Map, Value};

/// The operations Flash serves: path and its methods. Every other Greenfield route is 404.
const SERVED: &[(&str, &[&str])] = &[
    ("/api/v1/health", &["get"]),
    ("/api/v1/server/info", &["get"]),
    ("/api/v1/stores", &["get", "post"]),
    ("/api/v1/stores/{storeId}", &["get", "put", "delete"]),
    ("/api/v1/api-keys", &["post"]),
    ("/api/v1/api-keys/current", &["get", "delete"]),
    ("/api/v1/api-keys/{apikey}", &["delete"]),
    ("/api/v1/stores/{storeId}/invoices", &["get", "post"]),
    ("/api/v1/invoices/{invoiceId}", &["get", "put", "delete"]),
    ("/api/v1/invoices/{invoiceId}/payment-methods", &["get"]),
    ("/api/v1/invoices/{invoiceId}/status", &["post"]),
    ("/api/v1/invoices/{invoiceId}/unarchive", &["post"]),
    ("/api/v1/invoices/{invoiceId}/refund", &["post"]),
    ("/api/v1/stores/{storeId}/apps/pos", &["post"]),
    ("/api/v1/apps/pos/{appId}", &["get", "put"]),
    ("/api/v1/apps/{appId}", &["get", "delete"]),
    ("/api/v1/apps/{appId}/sales", &["get"]),
    ("/api/v1/apps/{appId}/top-items", &["get"]),
    ("/api/v1/stores/{storeId}/apps", &["get"]),
    ("/api/v1/apps", &["get"]),
    ("/api/v1/stores/{storeId}/payment-requests", &["get", "post"]),
    ("/api/v1/payment-requests/{paymentRequestId}", &["get", "put", "delete"]),
    ("/api/v1/payment-requests/{paymentRequestId}/pay", &["post"]),
    ("/api/v1/stores/{storeId}/lightning-addresses", &["get"]),
    (
        "/api/v1/stores/{storeId}/lightning-addresses/{username}",
        &["get", "post", "delete"],
    ),
    ("/api/v1/stores/{storeId}/webhooks", &["get", "post"]),
    (
        "/api/v1/stores/{storeId}/webhooks/{webhookId}",
        &["get", "put", "delete"],
    ),
    ("/api/v1/stores/{storeId}/webhooks/{webhookId}/deliveries", &["get"]),
    (
        "/api/v1/stores/{storeId}/webhooks/{webhookId}/deliveries/{deliveryId}",
        &["get"],
    ),
    (
        "/api/v1/stores/{storeId}/webhooks/{webhookId}/deliveries/{deliveryId}/request",
        &["get"],
    ),
    (
        "/api/v1/stores/{storeId}/webhooks/{webhookId}/deliveries/{deliveryId}/redeliver",
        &["post"],
    ),
    ("/api/v1/stores/{storeId}/pull-payments", &["get", "post"]),
    ("/api/v1/pull-payments/{pullPaymentId}", &["get", "delete"]),
    ("/api/v1/pull-payments/{pullPaymentId}/payouts", &["get", "post"]),
    ("/api/v1/pull-payments/{pullPaymentId}/payouts/{payoutId}", &["get"]),
    ("/api/v1/pull-payments/{pullPaymentId}/lnurl", &["get"]),
    ("/api/v1/pull-payments/{pullPaymentId}/boltcards", &["post"]),
    ("/api/v1/stores/{storeId}/payouts", &["get", "post"]),
    ("/api/v1/payouts/{payoutId}", &["get", "post", "delete"]),
    ("/api/v1/payouts/{payoutId}/mark-paid", &["post"]),
    ("/api/v1/payouts/{payoutId}/mark", &["post"]),
];

/// Where the spec names a route without the store BTCPay serves it under: the spec's
/// `/api/v1/webhooks/{webhookId}…` are `/api/v1/stores/{storeId}/webhooks/{webhookId}…` in
/// BTCPay (`GreenfieldStoreWebhooksController`), and only there.
fn store_scoped(path: &str) -> Option<String> {
    path.strip_prefix("/api/v1/webhooks/")
        .map(|rest| format!("/api/v1/stores/{{storeId}}/webhooks/{rest}"))
}

const METHODS: &[&str] = &["get", "put", "post", "delete", "patch", "head", "options", "trace"];

/// The checks every pass runs.
const CHECKS: &str = "not_a_server_error,status_code_conformance,response_schema_conformance";

/// Schemathesis' `st`, or `None` after saying why (a failure under CI).
fn schemathesis() -> Option<PathBuf> {
    let var = "FLASH_TEST_SCHEMATHESIS";
    match std::env::var_os(var).map(PathBuf::from) {
        Some(path) if path.exists() => Some(path),
        found => {
            let why = match found {
                Some(p) => format!("{var}={} does not exist", p.display()),
                None => format!("{var} is not set (the path of schemathesis' `st` command: pip install schemathesis)"),
            };
            assert!(
                std::env::var_os("CI").is_none(),
                "schemathesis is needed under CI: {why}"
            );
            println!("skipped: {why}");
            None
        }
    }
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// One OpenAPI document: `swagger.template.json` with the paths and components of every
/// `swagger.template.*.json` beside it, keeping only the served operations, patched where the
/// spec contradicts BTCPay's actual answers.
fn merged_spec(vectors: &Path) -> Value {
    let mut doc = read_json(&vectors.join("swagger.template.json"));
    let mut paths = Map::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors)
        .expect("read vectors dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| {
            p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                n.starts_with("swagger.template.") && n.ends_with(".json") && n != "swagger.template.json"
            })
        })
        .collect();
    files.sort();
    for file in files {
        let part = read_json(&file);
        if let Some(components) = part.get("components").and_then(Value::as_object) {
            for (kind, items) in components {
                let into = doc["components"]
                    .as_object_mut()
                    .expect("components")
                    .entry(kind.clone())
                    .or_insert_with(|| json!({}));
                for (name, item) in items.as_object().expect("component map") {
                    into[name] = item.clone();
                }
            }
        }
        for (path, item) in part.get("paths").and_then(Value::as_object).into_iter().flatten() {
            let mut item = item.clone();
            let path = match store_scoped(path) {
                Some(scoped) => {
                    if let Some(params) = item.get_mut("parameters").and_then(Value::as_array_mut) {
                        params.insert(0, json!({"$ref": "#/components/parameters/StoreId"}));
                    }
                    scoped
                }
                None => path.clone(),
            };
            let Some((_, methods)) = SERVED.iter().find(|(p, _)| *p == path) else {
                continue;
            };
            let kept: Map<String, Value> = item
                .as_object()
                .expect("path item")
                .iter()
                .filter(|(k, _)| !METHODS.contains(&k.as_str()) || methods.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            paths.insert(path, Value::Object(kept));
        }
    }
    let served: usize = SERVED.iter().map(|(_, m)| m.len()).sum();
    let found: usize = paths
        .values()
        .map(|item| {
            item.as_object()
                .map_or(0, |o| o.keys().filter(|k| METHODS.contains(&k.as_str())).count())
        })
        .sum();
    assert_eq!(found, served, "every served operation is in the vectors");
    doc["paths"] = Value::Object(paths);
    patch_spec(&mut doc);
    doc
}

/// Where the spec contradicts what BTCPay answers (docs/merchant.md, "Conformance").
fn patch_spec(doc: &mut Value) {
    let problem = json!({"description": "Not authenticated", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}});
    let invalid = json!({"description": "Validation errors", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ValidationProblemDetails"}}}});
    let forbidden = json!({"description": "Missing permission", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}});
    let not_found = json!({"description": "Not found", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ProblemDetails"}}}});
    let global_security = doc.get("security").cloned();
    for (path, item) in doc["paths"].as_object_mut().expect("paths") {
        let names_resource = [
            "{invoiceId}",
            "{appId}",
            "{paymentRequestId}",
            "{pullPaymentId}",
            "{payoutId}",
        ]
        .iter()
        .any(|p| path.contains(p));
        let names_webhooks = path.contains("/webhooks");
        for (method, op) in item.as_object_mut().expect("path item") {
            if !METHODS.contains(&method.as_str()) {
                continue;
            }
            // The spec leaves `GET /stores/{storeId}/payouts` unsecured; BTCPay guards every
            // store-scoped route with a store permission.
            let secured = path.starts_with("/api/v1/stores/{storeId}")
                || op
                    .get("security")
                    .or(global_security.as_ref())
                    .and_then(Value::as_array)
                    .is_some_and(|s| !s.is_empty());
            let responses = op["responses"].as_object_mut().expect("responses");
            // BTCPay answers 401 on every authenticated route when the caller is not, and 403
            // `missing-permission` when its key lacks the route's policy on the route's store.
            if secured {
                responses.entry("401").or_insert_with(|| problem.clone());
                responses.entry("403").or_insert_with(|| forbidden.clone());
            }
            // BTCPay answers 404 on every route naming an invoice or an app it does not have
            // (`InvoiceNotFound()`, `AppNotFound()`); the spec lists it on some. The webhook
            // routes answer 404 `store-not-found` for a store the caller does not have, and
            // `webhook-not-found` (the spec leaves it out of their POST and PUT).
            if names_resource || names_webhooks {
                responses.entry("404").or_insert_with(|| not_found.clone());
            }
            // Flash refuses to link a card that is live already without a tap of it (400
            // `card-already-linked`, docs/cards.md); BTCPay links it by its UID alone.
            if path.ends_with("/boltcards") {
                responses.entry("400").or_insert_with(|| problem.clone());
            }
            // BTCPay answers validation errors with 422 (`CreateValidationError`), not 400.
            if op.get("requestBody").is_some() {
                op["responses"]
                    .as_object_mut()
                    .expect("responses")
                    .entry("422")
                    .or_insert_with(|| invalid.clone());
            }
        }
    }
    let schemas = &mut doc["components"]["schemas"];
    // `StoreData` is `allOf: [StoreBaseData, {id}]`, and `StoreBaseData` forbids additional
    // properties, so no store with an `id` could validate.
    if let Some(base) = schemas["StoreBaseData"].as_object_mut() {
        base.remove("additionalProperties");
    }
    // The same with `WebhookData` (`allOf: [{id}, WebhookDataBase]`) and the create result's
    // `secret`.
    if let Some(base) = schemas["WebhookDataBase"].as_object_mut() {
        base.remove("additionalProperties");
    }
    if let Some(base) = schemas["PaymentRequestBaseData"].as_object_mut() {
        base.remove("additionalProperties");
    }
    // `InvoiceData` is `allOf: [InvoiceDataBase, {…, additionalProperties: false}]`: the same
    // contradiction for `metadata`, `checkout` and `receipt`.
    if let Some(parts) = schemas["InvoiceData"]["allOf"].as_array_mut() {
        for part in parts {
            if let Some(part) = part.as_object_mut() {
                part.remove("additionalProperties");
            }
        }
    }
    // `PayoutData`: BTCPay writes `date` as Unix seconds (a number, like every Greenfield date),
    // and `pullPaymentId` and `paymentProof` as null for a store's own payout and one without
    // a proof yet.
    if let Some(payout) = schemas["PayoutData"]["properties"].as_object_mut() {
        payout.insert("date".into(), json!({"type": "integer"}));
        payout.insert("pullPaymentId".into(), json!({"type": "string", "nullable": true}));
        payout.insert(
            "paymentProof".into(),
            json!({"nullable": true, "allOf": [{"$ref": "#/components/schemas/PayoutPaymentProof"}]}),
        );
    }
    // Declared `type: object` with `items`; BTCPay sends a list.
    if let Some(criteria) = schemas["StoreBaseData"]["properties"]["paymentMethodCriteria"].as_object_mut() {
        criteria.insert("type".into(), json!("array"));
    }
}

/// Runs `st run` on `spec`; whether it passed, and its report.
fn run_schemathesis(st: &Path, dir: &Path, spec: &Path, base: &str, key: &str, filter: &[&str]) -> (bool, String) {
    let mut cmd = Command::new(st);
    cmd.current_dir(dir)
        .env("NO_PROXY", "127.0.0.1")
        .arg("run")
        .arg(spec)
        .args(["--url", base])
        .args(["--header", &format!("Authorization: token {key}")])
        .args(["--checks", CHECKS])
        // The stateful phase would follow links to revoke the key under test.
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", "20", "--seed", "15", "--workers", "1"])
        .args(["--generation-database", "none", "--no-color", "--request-timeout", "10"])
        .args(filter);
    let out = cmd.output().expect("run schemathesis");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn greenfield_routes_conform_to_the_openapi() {
    let Some(st) = schemathesis() else {
        return;
    };
    let Some(vectors) = flash_store::testing::vectors_dir("btcpay") else {
        return;
    };
    let started = Instant::now();
    let dir = TempDir::new("greenfield-schema");
    let spec_path = dir.path().join("openapi.json");
    std::fs::write(
        &spec_path,
        serde_json::to_vec_pretty(&merged_spec(&vectors)).expect("json"),
    )
    .expect("write spec");

    let server = Flashd::start(&Launch::new(&dir.path().join("data"), None)).await;
    let api = Api::new(&server.base);
    let user = api.device_user(&unique("schemathesis")).await;
    let new_key = |label: &str| {
        let body = json!({"label": label, "permissions": ["unrestricted"]});
        let api = api.clone();
        let token = user.token.clone();
        async move {
            let (status, v) = api
                .post("/api/v1/api-keys", Some(&token), &body)
                .await
                .expect("POST api-keys");
            assert_eq!(status, 200, "{v}");
            v["apiKey"].as_str().expect("apiKey").to_string()
        }
    };
    let key = new_key("schemathesis").await;
    let resp = api
        .http
        .post(format!("{}/api/v1/stores", server.base))
        .header("authorization", format!("token {key}"))
        .json(&json!({"name": "Schemathesis"}))
        .send()
        .await
        .expect("POST stores");
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    // A webhook, so the webhook lists answer one to check against the schema.
    let store: Value = resp.json().await.expect("store JSON");
    let store_id = store["id"].as_str().expect("store id");
    let resp = api
        .http
        .post(format!("{}/api/v1/stores/{store_id}/webhooks", server.base))
        .header("authorization", format!("token {key}"))
        .json(&json!({"url": "https://example.com/hook"}))
        .send()
        .await
        .expect("POST webhooks");
    assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    // Money for a pull payment, whose payout awaits approval: their lists answer one too.
    let admin = server.admin_key.clone().expect("admin key");
    api.fund(&admin, &user.wallet_id, 100_000, &unique("schemathesis-fund"))
        .await;
    // A payment request and a Lightning address, so their lists answer one too.
    for (path, body) in [
        (
            "payment-requests",
            json!({"amount": "10", "currency": "SATS", "title": "Schemathesis"}),
        ),
        ("lightning-addresses/schemathesis", json!({"min": "1"})),
        ("pull-payments", json!({"amount": "5000", "currency": "SATS"})),
        (
            "payouts",
            json!({"destination": "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080", "amount": "0.00001"}),
        ),
    ] {
        let resp = api
            .http
            .post(format!("{}/api/v1/stores/{store_id}/{path}", server.base))
            .header("authorization", format!("token {key}"))
            .json(&body)
            .send()
            .await
            .expect("POST");
        assert_eq!(resp.status().as_u16(), 200, "{:?}", resp.text().await);
    }

    // Every operation but the two that revoke keys (schemathesis reuses the key it is given as
    // test data, so it would revoke it and leave the rest unauthenticated); then those two,
    // with a key of their own.
    let (passed, report) = run_schemathesis(
        &st,
        dir.path(),
        &spec_path,
        &server.base,
        &key,
        &["--exclude-operation-id-regex", "^ApiKeys_Delete"],
    );
    println!("{report}");
    assert!(passed, "schemathesis found non-conformances (report above)");
    let revoked = new_key("schemathesis-revoked").await;
    let (passed, report) = run_schemathesis(
        &st,
        dir.path(),
        &spec_path,
        &server.base,
        &revoked,
        &["--include-operation-id-regex", "^ApiKeys_Delete"],
    );
    println!("{report}");
    assert!(passed, "schemathesis found non-conformances (report above)");
    println!("schemathesis passes took {:.1?}", started.elapsed());
}
