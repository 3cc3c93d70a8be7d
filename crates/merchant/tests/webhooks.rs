//! Webhook deliveries on both backends, driven pass by pass on a clock the test moves: bodies
//! signed as BTCPay signs them (checked by a local receiver over the raw bytes), events matched
//! to the webhooks that want them exactly once, BTCPay's retry schedule, final client errors,
//! endpoints that fail without holding back others, redeliveries, the sender's lease, and
//! deliveries that survive a reopened store.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use flash_bank::{AccountRecord, Bank, BankConfig, Identity};
use flash_core::ports::Clock;
use flash_merchant::webhooks::RETRY_DELAYS_SECS;
use flash_merchant::{Caller, Merchant, MerchantConfig};
use flash_store::testing::{fresh_config, Backend};
use flash_store::{Store, StoreConfig, Value as SqlValue};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;

flash_store::on_both_backends!(
    deliveries_are_signed_and_go_to_the_webhooks_that_want_them_once,
    a_receiver_down_for_ten_minutes_gets_the_delivery_on_a_retry,
    a_failing_endpoint_holds_back_no_other_delivery,
    client_errors_are_final_and_retries_can_be_off,
    a_redelivery_is_a_new_signed_delivery_of_the_first,
    deliveries_survive_a_reopened_store,
    one_node_sends_at_a_time,
    private_addresses_are_refused_unless_allowed,
    the_running_sender_delivers_without_being_driven,
    one_webhooks_deliveries_go_several_at_once,
    an_event_left_out_of_a_dispatch_refuses_it,
);

/// A clock the test moves.
struct TestClock(Arc<AtomicI64>);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

struct Lab {
    merchant: Merchant,
    bank: Bank,
    store: Store,
    config: StoreConfig,
    clock: Arc<AtomicI64>,
}

impl Lab {
    fn advance_secs(&self, secs: i64) {
        self.clock.fetch_add(secs * 1_000, Ordering::SeqCst);
    }
}

fn settings() -> MerchantConfig {
    MerchantConfig {
        allow_private_webhooks: true,
        webhook_timeout_secs: 1,
        // One at a time, so the order asserted below is the order sent.
        webhook_in_flight: 1,
        ..MerchantConfig::default()
    }
}

async fn open(config: &StoreConfig, clock: &Arc<AtomicI64>) -> (Merchant, Bank, Store) {
    let store = Store::open(config, Arc::new(TestClock(clock.clone())))
        .await
        .expect("open store");
    store
        .ensure_system_accounts(flash_core::Currency::Btc)
        .await
        .expect("system accounts");
    let bank = Bank::new(store.clone(), BankConfig::default());
    let merchant = Merchant::new(bank.clone(), store.clone()).with_config(settings());
    (merchant, bank, store)
}

async fn lab(backend: Backend) -> Lab {
    let clock = Arc::new(AtomicI64::new(1_800_000_000_000));
    let config = fresh_config(backend).await;
    let (merchant, bank, store) = open(&config, &clock).await;
    Lab {
        merchant,
        bank,
        store,
        config,
        clock,
    }
}

static NEXT: AtomicU64 = AtomicU64::new(1);

async fn member(bank: &Bank) -> AccountRecord {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let device = format!("webhook-test-{}-{n}", std::process::id());
    bank.user_for_identity(&Identity::Device(device))
        .await
        .expect("sign up")
        .1
}

/// A store of a new member, and its owner.
async fn shop(lab: &Lab) -> (Caller, String) {
    let owner = Caller::owner(member(&lab.bank).await.id);
    let store = lab
        .merchant
        .create_store(&owner, &json!({"name": "Shop"}))
        .await
        .expect("store");
    (owner, store.id)
}

/// Appends an event to the merchant outbox as the invoice code does.
async fn append(lab: &Lab, store_id: &str, event_type: &str, invoice_id: &str) {
    let now = lab.clock.load(Ordering::SeqCst);
    let payload = json!({
        "type": event_type,
        "timestamp": now / 1_000,
        "storeId": store_id,
        "invoiceId": invoice_id,
        "metadata": {"orderId": format!("order-{invoice_id}")},
    });
    lab.store
        .db()
        .execute(
            "INSERT INTO merchant_events (store_id, event_type, payload, created_at) VALUES ($1, $2, $3, $4)",
            vec![
                SqlValue::from(store_id),
                SqlValue::from(event_type),
                SqlValue::from(payload.to_string()),
                SqlValue::from(now),
            ],
        )
        .await
        .expect("append event");
}

/// One delivery received: the raw body, and whether its `BTCPay-Sig` verified.
#[derive(Clone, Debug)]
struct Received {
    body: Vec<u8>,
    signed: bool,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// A webhook endpoint on 127.0.0.1 answering `status` (after `delay_ms`), checking each
/// delivery's signature with the secret it is told.
#[derive(Clone)]
struct Receiver {
    addr: SocketAddr,
    inner: Arc<ReceiverState>,
}

#[derive(Default)]
struct ReceiverState {
    secret: Mutex<String>,
    status: AtomicU16,
    delay_ms: AtomicU64,
    got: Mutex<Vec<Received>>,
    /// Requests being answered now, and the most there ever were at once.
    open: AtomicU64,
    peak: AtomicU64,
}

async fn receive(State(state): State<Arc<ReceiverState>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let open = state.open.fetch_add(1, Ordering::SeqCst) + 1;
    state.peak.fetch_max(open, Ordering::SeqCst);
    let delay = state.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    state.open.fetch_sub(1, Ordering::SeqCst);
    let secret = state.secret.lock().expect("lock").clone();
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("hmac key");
    mac.update(&body);
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    let signed = headers.get("btcpay-sig").and_then(|v| v.to_str().ok()) == Some(&format!("sha256={expected}"))
        && headers.get("content-type").and_then(|v| v.to_str().ok()) == Some("application/json");
    state.got.lock().expect("lock").push(Received {
        body: body.to_vec(),
        signed,
    });
    StatusCode::from_u16(state.status.load(Ordering::SeqCst)).expect("status")
}

impl Receiver {
    async fn start(status: u16) -> Receiver {
        let inner = Arc::new(ReceiverState::default());
        inner.status.store(status, Ordering::SeqCst);
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, inner }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    fn answer(&self, status: u16) {
        self.inner.status.store(status, Ordering::SeqCst);
    }

    fn got(&self) -> Vec<Received> {
        self.inner.got.lock().expect("lock").clone()
    }

    /// Makes a webhook to this receiver and tells the receiver its secret.
    async fn hook(&self, lab: &Lab, owner: &Caller, store: &str, extra: Value) -> String {
        let mut body = json!({"url": self.url()});
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        let made = lab.merchant.create_webhook(owner, store, &body).await.expect("webhook");
        *self.inner.secret.lock().expect("lock") = made.secret.clone();
        made.webhook.id
    }
}

async fn pass(lab: &Lab) -> flash_merchant::webhooks::WebhookPass {
    lab.merchant.run_webhook_pass().await.expect("pass")
}

async fn deliveries(lab: &Lab, owner: &Caller, store: &str, hook: &str) -> Vec<flash_merchant::webhooks::DeliveryView> {
    lab.merchant
        .deliveries(owner, store, hook, None)
        .await
        .expect("deliveries")
}

async fn deliveries_are_signed_and_go_to_the_webhooks_that_want_them_once(backend: Backend) {
    let lab = lab(backend).await;
    let (owner, store) = shop(&lab).await;
    let all = Receiver::start(200).await;
    let settled_only = Receiver::start(200).await;
    let disabled = Receiver::start(200).await;
    let all_id = all.hook(&lab, &owner, &store, json!({})).await;
    let settled_id = settled_only
        .hook(
            &lab,
            &owner,
            &store,
            json!({"authorizedEvents": {"everything": false, "specificEvents": ["InvoiceSettled"]}}),
        )
        .await;
    disabled.hook(&lab, &owner, &store, json!({"enabled": false})).await;
    // Another store's events go to its own webhooks only.
    let (_, other_store) = shop(&lab).await;

    append(&lab, &store, "InvoiceCreated", "inv1").await;
    append(&lab, &store, "InvoiceSettled", "inv1").await;
    append(&lab, &other_store, "InvoiceSettled", "inv2").await;
    let p = pass(&lab).await;
    assert_eq!(
        (p.leading, p.events, p.deliveries, p.attempted, p.succeeded),
        (true, 3, 3, 3, 3)
    );

    let got = all.got();
    assert_eq!(got.len(), 2);
    assert!(got.iter().all(|r| r.signed), "signatures verify over the raw body");
    let types: Vec<Value> = got.iter().map(|r| r.json()["type"].clone()).collect();
    assert_eq!(
        types,
        [json!("InvoiceCreated"), json!("InvoiceSettled")],
        "in outbox order"
    );
    let first = got[0].json();
    assert_eq!(first["webhookId"], json!(all_id));
    assert_eq!(first["originalDeliveryId"], first["deliveryId"], "as BTCPay: itself");
    assert_eq!(
        (
            &first["isRedelivery"],
            &first["storeId"],
            &first["invoiceId"],
            &first["metadata"]["orderId"]
        ),
        (&json!(false), &json!(store), &json!("inv1"), &json!("order-inv1"))
    );
    assert_eq!(first["timestamp"], json!(lab.clock.load(Ordering::SeqCst) / 1_000));
    let settled = settled_only.got();
    assert_eq!(settled.len(), 1);
    assert!(settled[0].signed);
    assert_eq!(settled[0].json()["type"], json!("InvoiceSettled"));
    assert!(disabled.got().is_empty(), "a disabled webhook gets nothing");

    // What the API shows: newest first, each a success, and the exact bytes sent.
    let listed = deliveries(&lab, &owner, &store, &all_id).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, got[1].json()["deliveryId"].as_str().expect("id"));
    assert!(listed
        .iter()
        .all(|d| d.status == "HttpSuccess" && d.http_code == Some(200)));
    assert_eq!((listed[0].attempts, listed[0].next_attempt_at), (1, None));
    let request = lab
        .merchant
        .delivery_request(&owner, &store, &all_id, &listed[1].id)
        .await
        .expect("request");
    assert_eq!(request.as_bytes(), got[0].body.as_slice());
    assert_eq!(deliveries(&lab, &owner, &store, &settled_id).await.len(), 1);

    // Exactly once: a second pass dispatches and sends nothing, and a second dispatch of a
    // dispatched event (a sender that lost its lease) is refused whole.
    let p = pass(&lab).await;
    assert_eq!((p.events, p.deliveries, p.attempted), (0, 0, 0));
    assert_eq!(all.got().len(), 2);
    let seq = lab
        .store
        .db()
        .query("SELECT MIN(seq) FROM merchant_events", vec![])
        .await
        .expect("seq")[0]
        .int(0)
        .expect("int");
    let again = lab.store.merchant_events_dispatch(&[seq], &[], 0).await;
    assert!(matches!(again, Err(flash_store::StoreError::Refused(_))), "{again:?}");
}

async fn a_receiver_down_for_ten_minutes_gets_the_delivery_on_a_retry(backend: Backend) {
    let lab = lab(backend).await;
    let (owner, store) = shop(&lab).await;
    let down = Receiver::start(503).await;
    let hook = down.hook(&lab, &owner, &store, json!({})).await;
    append(&lab, &store, "InvoiceSettled", "inv1").await;

    // Down from 0 s to 10 min: attempts at 0 s, 10 s and 70 s fail.
    let p = pass(&lab).await;
    assert_eq!((p.attempted, p.succeeded), (1, 0));
    let d = &deliveries(&lab, &owner, &store, &hook).await[0];
    assert_eq!(
        (d.status.as_str(), d.http_code, d.attempts),
        ("HttpError", Some(503), 1)
    );
    let started = lab.clock.load(Ordering::SeqCst);
    assert_eq!(d.next_attempt_at, Some(started + 10_000));
    lab.advance_secs(9);
    assert_eq!(pass(&lab).await.attempted, 0, "not due yet");
    lab.advance_secs(1);
    assert_eq!(pass(&lab).await.attempted, 1);
    lab.advance_secs(60);
    assert_eq!(pass(&lab).await.attempted, 1);
    lab.advance_secs(600 - 70);
    assert_eq!(
        pass(&lab).await.attempted,
        0,
        "the next retry is 10 minutes after the last"
    );

    // Up again: the retry at 70 s + 10 min delivers it.
    down.answer(200);
    lab.advance_secs(70);
    let p = pass(&lab).await;
    assert_eq!((p.attempted, p.succeeded), (1, 1));
    let d = &deliveries(&lab, &owner, &store, &hook).await[0];
    assert_eq!(
        (d.status.as_str(), d.http_code, d.attempts, d.next_attempt_at),
        ("HttpSuccess", Some(200), 4, None)
    );
    let got = down.got();
    assert_eq!(got.len(), 4);
    assert!(
        got.iter().all(|r| r.signed && r.body == got[0].body),
        "each retry sends the same bytes"
    );
    lab.advance_secs(3_600);
    assert_eq!(pass(&lab).await.attempted, 0);
}

async fn a_failing_endpoint_holds_back_no_other_delivery(backend: Backend) {
    let lab = lab(backend).await;
    let (owner, store) = shop(&lab).await;
    let healthy = Receiver::start(200).await;
    let failing = Receiver::start(500).await;
    let hanging = Receiver::start(200).await;
    hanging.inner.delay_ms.store(5_000, Ordering::SeqCst);
    let healthy_id = healthy.hook(&lab, &owner, &store, json!({})).await;
    let failing_id = failing.hook(&lab, &owner, &store, json!({})).await;
    let hanging_id = hanging.hook(&lab, &owner, &store, json!({})).await;
    // Nothing listens there: connections are refused.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr")
    };
    let closed_id = lab
        .merchant
        .create_webhook(&owner, &store, &json!({"url": format!("http://{closed}/hook")}))
        .await
        .expect("webhook")
        .webhook
        .id;

    append(&lab, &store, "InvoiceCreated", "inv1").await;
    let started = std::time::Instant::now();
    let p = pass(&lab).await;
    assert_eq!((p.attempted, p.succeeded), (4, 1));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "attempts run concurrently, each within its timeout"
    );
    for (hook, status) in [
        (&failing_id, "HttpError"),
        (&hanging_id, "Failed"),
        (&closed_id, "Failed"),
    ] {
        let d = &deliveries(&lab, &owner, &store, hook).await[0];
        assert_eq!(d.status, status, "{d:?}");
        assert!(d.next_attempt_at.is_some(), "retried later: {d:?}");
        assert!(d.error_message.is_some());
    }

    // A later event reaches the healthy endpoint at once, whatever the others' retries.
    lab.advance_secs(1);
    append(&lab, &store, "InvoiceSettled", "inv1").await;
    let p = pass(&lab).await;
    assert_eq!(
        (p.deliveries, p.attempted),
        (4, 4),
        "the new event's four deliveries, none of the retries"
    );
    let got = healthy.got();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].json()["type"], json!("InvoiceSettled"));
    assert_eq!(deliveries(&lab, &owner, &store, &healthy_id).await.len(), 2);
}

async fn client_errors_are_final_and_retries_can_be_off(backend: Backend) {
    let lab = lab(backend).await;
    let (owner, store) = shop(&lab).await;
    let refusing = Receiver::start(400).await;
    let refusing_id = refusing.hook(&lab, &owner, &store, json!({})).await;
    let no_retries = Receiver::start(503).await;
    let no_retries_id = no_retries
        .hook(&lab, &owner, &store, json!({"automaticRedelivery": false}))
        .await;
    let throttling = Receiver::start(429).await;
    let throttling_id = throttling.hook(&lab, &owner, &store, json!({})).await;
    append(&lab, &store, "InvoiceExpired", "inv1").await;
    assert_eq!(pass(&lab).await.attempted, 3);
    let d = &deliveries(&lab, &owner, &store, &refusing_id).await[0];
    assert_eq!(
        (
            d.status.as_str(),
            d.http_code,
            d.next_attempt_at,
            d.error_message.as_deref()
        ),
        ("HttpError", Some(400), None, Some("HTTP Error Code 400"))
    );
    assert_eq!(
        deliveries(&lab, &owner, &store, &no_retries_id).await[0].next_attempt_at,
        None
    );
    assert!(deliveries(&lab, &owner, &store, &throttling_id).await[0]
        .next_attempt_at
        .is_some());

    // The throttled one is retried on the schedule until it gives up; the others never again.
    for delay in RETRY_DELAYS_SECS {
        lab.advance_secs(delay);
        assert_eq!(pass(&lab).await.attempted, 1);
    }
    lab.advance_secs(3_600);
    assert_eq!(pass(&lab).await.attempted, 0);
    let d = &deliveries(&lab, &owner, &store, &throttling_id).await[0];
    assert_eq!(
        (d.attempts, d.next_attempt_at),
        (1 + RETRY_DELAYS_SECS.len() as i64, None)
    );
    assert_eq!((refusing.got().len(), no_retries.got().len()), (1, 1));
}

async fn a_redelivery_is_a_new_signed_delivery_of_the_first(backend: Backend) {
    let lab = lab(backend).await;
    let (owner, store) = shop(&lab).await;
    let receiver = Receiver::start(200).await;
    let hook = receiver.hook(&lab, &owner, &store, json!({})).await;
    append(&lab, &store, "InvoiceSettled", "inv1").await;
    pass(&lab).await;
    let first = receiver.got()[0].json();
    let first_id = first["deliveryId"].as_str().expect("id").to_string();

    lab.advance_secs(30);
    let again = lab
        .merchant
        .redeliver(&owner, &store, &hook, &first_id)
        .await
        .expect("redeliver");
    assert_ne!(again, first_id);
    let p = pass(&lab).await;
    assert_eq!((p.events, p.attempted, p.succeeded), (0, 1, 1));
    let second = receiver.got()[1].clone();
    assert!(second.signed);
    let body = second.json();
    assert_eq!(
        (&body["deliveryId"], &body["originalDeliveryId"], &body["isRedelivery"]),
        (&json!(again), &json!(first_id), &json!(true))
    );
    assert_eq!(
        (&body["type"], &body["invoiceId"]),
        (&first["type"], &first["invoiceId"])
    );

    // A redelivery of the redelivery still names the first delivery.
    lab.advance_secs(1);
    let third_id = lab
        .merchant
        .redeliver(&owner, &store, &hook, &again)
        .await
        .expect("redeliver");
    pass(&lab).await;
    let third = receiver.got()[2].json();
    assert_eq!(
        (&third["deliveryId"], &third["originalDeliveryId"]),
        (&json!(third_id), &json!(first_id))
    );
    let listed = deliveries(&lab, &owner, &store, &hook).await;
    assert_eq!(
        listed.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(),
        [third_id.as_str(), again.as_str(), first_id.as_str()]
    );
    let request = lab
        .merchant
        .delivery_request(&owner, &store, &hook, &again)
        .await
        .expect("request");
    assert_eq!(request.as_bytes(), second.body.as_slice());
}

async fn deliveries_survive_a_reopened_store(backend: Backend) {
    let lab = lab(backend).await;
    let (owner, store) = shop(&lab).await;
    let receiver = Receiver::start(502).await;
    let hook = receiver.hook(&lab, &owner, &store, json!({})).await;
    append(&lab, &store, "InvoiceCreated", "inv1").await;
    assert_eq!(pass(&lab).await.attempted, 1);
    // Appended but never dispatched before the "crash".
    append(&lab, &store, "InvoiceSettled", "inv1").await;
    let Lab {
        merchant,
        bank,
        store: old_store,
        config,
        clock,
    } = lab;
    drop((merchant, bank, old_store));

    // Another process opens the same database; the first one's lease lapses.
    let (merchant, bank, store_handle) = open(&config, &clock).await;
    let lab = Lab {
        merchant,
        bank,
        store: store_handle,
        config,
        clock,
    };
    receiver.answer(200);
    lab.advance_secs(60);
    let p = pass(&lab).await;
    assert!(p.leading);
    assert_eq!(
        (p.events, p.attempted, p.succeeded),
        (1, 2, 2),
        "the retry and the undispatched event"
    );
    let listed = deliveries(&lab, &owner, &store, &hook).await;
    assert_eq!(listed.len(), 2);
    let retried = listed.iter().find(|d| d.attempts == 2).expect("the retried delivery");
    assert_eq!(
        (retried.status.as_str(), retried.next_attempt_at),
        ("HttpSuccess", None)
    );
    let types: Vec<Value> = receiver.got().iter().map(|r| r.json()["type"].clone()).collect();
    assert_eq!(types.len(), 3);
    assert!(types.contains(&json!("InvoiceSettled")));
}

async fn one_node_sends_at_a_time(backend: Backend) {
    let lab = lab(backend).await;
    let (owner, store) = shop(&lab).await;
    let receiver = Receiver::start(200).await;
    receiver.hook(&lab, &owner, &store, json!({})).await;
    // A second node over the same database.
    let other_bank = Bank::new(lab.store.clone(), BankConfig::default());
    let other = Merchant::new(other_bank, lab.store.clone()).with_config(settings());
    assert!(pass(&lab).await.leading);
    append(&lab, &store, "InvoiceCreated", "inv1").await;
    let p = other.run_webhook_pass().await.expect("pass");
    assert_eq!((p.leading, p.events, p.attempted), (false, 0, 0));
    assert!(receiver.got().is_empty());
    assert_eq!(pass(&lab).await.attempted, 1);
    // Once the first node stops renewing, the second takes over.
    lab.advance_secs(31);
    append(&lab, &store, "InvoiceSettled", "inv1").await;
    let p = other.run_webhook_pass().await.expect("pass");
    assert_eq!((p.leading, p.events, p.attempted), (true, 1, 1));
    assert_eq!(receiver.got().len(), 2);
}

async fn private_addresses_are_refused_unless_allowed(backend: Backend) {
    let lab = lab(backend).await;
    let (owner, store) = shop(&lab).await;
    let receiver = Receiver::start(200).await;
    // By name (checked on the addresses it resolves to) and by address.
    let by_name = lab
        .merchant
        .create_webhook(
            &owner,
            &store,
            &json!({"url": format!("http://localhost:{}/hook", receiver.addr.port())}),
        )
        .await
        .expect("webhook")
        .webhook
        .id;
    let by_address = receiver.hook(&lab, &owner, &store, json!({})).await;
    let strict = Merchant::new(lab.bank.clone(), lab.store.clone()).with_config(MerchantConfig {
        allow_private_webhooks: false,
        ..settings()
    });
    append(&lab, &store, "InvoiceCreated", "inv1").await;
    let p = strict.run_webhook_pass().await.expect("pass");
    assert_eq!((p.attempted, p.succeeded), (2, 0));
    assert!(receiver.got().is_empty(), "nothing reached this machine");
    for hook in [&by_name, &by_address] {
        let d = &deliveries(&lab, &owner, &store, hook).await[0];
        assert_eq!((d.status.as_str(), d.next_attempt_at), ("Failed", None), "final: {d:?}");
        let error = d.error_message.as_deref().unwrap_or_default();
        assert!(error.contains("refused"), "{error}");
    }
}

async fn the_running_sender_delivers_without_being_driven(backend: Backend) {
    let lab = lab(backend).await;
    let (owner, store) = shop(&lab).await;
    let receiver = Receiver::start(200).await;
    receiver.hook(&lab, &owner, &store, json!({})).await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sender = tokio::spawn({
        let merchant = lab.merchant.clone();
        async move {
            merchant
                .run_webhook_sender(async move {
                    let _ = stopped.await;
                })
                .await
        }
    });
    append(&lab, &store, "InvoiceSettled", "inv1").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while receiver.got().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let got = receiver.got();
    assert_eq!(got.len(), 1, "delivered by the worker within its poll interval");
    assert!(got[0].signed);
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(5), sender)
        .await
        .expect("the sender stops on shutdown")
        .expect("sender task");
}

async fn one_webhooks_deliveries_go_several_at_once(backend: Backend) {
    let mut lab = lab(backend).await;
    lab.merchant = lab.merchant.clone().with_config(MerchantConfig {
        webhook_in_flight: 4,
        ..settings()
    });
    let (owner, store) = shop(&lab).await;
    let slow = Receiver::start(200).await;
    slow.inner.delay_ms.store(300, Ordering::SeqCst);
    slow.hook(&lab, &owner, &store, json!({})).await;
    for n in 0..12 {
        append(&lab, &store, "InvoiceCreated", &format!("inv{n}")).await;
    }
    let p = pass(&lab).await;
    assert_eq!((p.events, p.deliveries, p.attempted, p.succeeded), (12, 12, 12, 12));
    let mut ids: Vec<Value> = slow.got().iter().map(|r| r.json()["invoiceId"].clone()).collect();
    ids.sort_by_key(ToString::to_string);
    ids.dedup();
    assert_eq!(ids.len(), 12, "each event once");
    let peak = slow.inner.peak.load(Ordering::SeqCst);
    assert!(
        (2..=4).contains(&peak),
        "several at once, never more than webhook_in_flight: {peak}"
    );
}

/// Dispatching marks the events between the lowest and the highest given in one statement: an
/// undispatched event inside that range that the dispatch does not name (one that committed
/// late) refuses the whole, so no event is ever marked without its deliveries.
async fn an_event_left_out_of_a_dispatch_refuses_it(backend: Backend) {
    let lab = lab(backend).await;
    let (_, store) = shop(&lab).await;
    for n in 1..=3 {
        append(&lab, &store, "InvoiceCreated", &format!("inv{n}")).await;
    }
    let events = lab.store.merchant_events_undispatched(10).await.expect("events");
    let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
    assert_eq!(seqs.len(), 3);
    let now = lab.clock.load(Ordering::SeqCst);
    let gap = [seqs[0], seqs[2]];
    assert!(matches!(
        lab.store.merchant_events_dispatch(&gap, &[], now).await,
        Err(flash_store::StoreError::Refused(_))
    ));
    assert_eq!(
        lab.store.merchant_events_undispatched(10).await.expect("events").len(),
        3,
        "nothing marked"
    );
    lab.store
        .merchant_events_dispatch(&seqs, &[], now)
        .await
        .expect("dispatch");
    assert!(lab
        .store
        .merchant_events_undispatched(10)
        .await
        .expect("events")
        .is_empty());
    // Dispatched already: refused, as for a second sender.
    assert!(matches!(
        lab.store.merchant_events_dispatch(&seqs, &[], now).await,
        Err(flash_store::StoreError::Refused(_))
    ));
}
