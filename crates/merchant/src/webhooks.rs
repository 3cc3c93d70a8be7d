//! BTCPay-compatible webhooks: a store's endpoints, the deliveries of its events to them, and the
//! sender that makes those deliveries.
//!
//! Events come from the merchant outbox (`merchant_events`), appended in the same transaction as
//! the change they report. The sender, a singleton worker holding a lease, turns a batch of
//! undispatched events into deliveries in one transaction (so each event gets its deliveries
//! exactly once), then attempts every due delivery: a POST of the event's body with the delivery
//! fields, signed with `BTCPay-Sig: sha256=<hex HMAC-SHA256(secret, body)>`. The exact bytes sent
//! are stored with the delivery, so a redelivery and `…/request` show what was signed.
//!
//! Each delivery keeps its own schedule in the database (attempts, next attempt, last outcome):
//! after a retryable failure (connection error, timeout, 408, 429, 5xx) it is tried again after
//! [`RETRY_DELAYS_SECS`] when the webhook asks for automatic redelivery; a 2xx ends it as
//! `HttpSuccess`, another answer as `HttpError`. A webhook's due deliveries are attempted one
//! after the other in event order, different webhooks' at once (bounded), each attempt within a
//! timeout: a slow or failing endpoint never holds back another endpoint, and a failed delivery
//! waiting for its retry never holds back a later event. Every time comes from the store's clock.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error as StdError;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use flash_core::secrets::random_token;
use flash_store::{
    DeliveryAttempt, DueDelivery, MerchantEventRecord, MerchantWebhookRecord, StoreError, WebhookDeliveryRecord,
};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use tokio::task::JoinSet;

use crate::error::FieldError;
use crate::permissions::CAN_MODIFY_WEBHOOKS;
use crate::{Caller, Merchant, MerchantConfig, MerchantError};

/// The event types a webhook may ask for (BTCPay 2.x's list).
pub const EVENT_TYPES: &[&str] = &[
    "InvoiceCreated",
    "InvoiceReceivedPayment",
    "InvoiceProcessing",
    "InvoiceExpired",
    "InvoiceSettled",
    "InvoiceInvalid",
    "InvoicePaymentSettled",
    "PaymentRequestCreated",
    "PaymentRequestUpdated",
    "PaymentRequestArchived",
    "PaymentRequestStatusChanged",
    "PayoutCreated",
    "PayoutApproved",
    "PayoutUpdated",
    "RewardProgramBudgetLow",
    "RewardProgramEnded",
    "SubscriberCreated",
    "SubscriberCredited",
    "SubscriberCharged",
    "SubscriberActivated",
    "SubscriberPhaseChanged",
    "SubscriberDisabled",
    "PaymentReminder",
    "PlanStarted",
    "SubscriberNeedUpgrade",
];

/// Waits before each retry of a failed delivery, seconds: BTCPay's 10 s, 1 min, then six times
/// 10 min. A delivery is attempted at most `1 + RETRY_DELAYS_SECS.len()` times.
pub const RETRY_DELAYS_SECS: [i64; 8] = [10, 60, 600, 600, 600, 600, 600, 600];

/// The lease that makes one node the webhook sender.
const WEBHOOK_LEASE: &str = "merchant-webhook-sender";
/// How long the lease lasts unless renewed (every pass renews it).
const LEASE_TTL_MS: i64 = 30_000;
/// Events turned into deliveries per transaction.
const DISPATCH_BATCH_MAX: i64 = 100;
/// Dispatch transactions per pass.
const DISPATCH_BATCHES_PER_PASS_MAX: usize = 10;
/// Most deliveries of one webhook attempted in one pass (one after the other).
const DUE_PER_WEBHOOK_MAX: usize = 64;
/// Added to a claim's length: a claimed delivery whose attempt never reported (a crash) is
/// tried again once its group's timeouts and this margin have passed.
const CLAIM_MARGIN_MS: i64 = 30_000;
/// Longest webhook URL.
const MAX_URL_CHARS: usize = 2_048;
/// Longest secret.
const MAX_SECRET_CHARS: usize = 256;
/// Most webhooks one store may have.
const MAX_WEBHOOKS_PER_STORE: usize = 100;
/// Characters of a generated id or secret (about BTCPay's 16 random bytes in base58).
const ID_CHARS: usize = 22;
/// Most deliveries one list answers.
const MAX_DELIVERIES_LISTED: i64 = 1_000;

/// A webhook as the API shows it (BTCPay's `WebhookData`; never its secret).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookView {
    /// Its id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// Whether it receives deliveries.
    pub enabled: bool,
    /// Whether failed deliveries are retried.
    pub automatic_redelivery: bool,
    /// Whether it receives every event type.
    pub everything: bool,
    /// The event types it receives when not `everything`.
    pub specific_events: Vec<String>,
}

impl WebhookView {
    fn of(r: &MerchantWebhookRecord) -> WebhookView {
        WebhookView {
            id: r.id.clone(),
            url: r.url.clone(),
            enabled: r.enabled,
            automatic_redelivery: r.automatic_redelivery,
            everything: r.everything,
            specific_events: r.specific_events.clone(),
        }
    }

    /// BTCPay's `WebhookData` JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id,
            "enabled": self.enabled,
            "automaticRedelivery": self.automatic_redelivery,
            "url": self.url,
            "authorizedEvents": {"everything": self.everything, "specificEvents": self.specific_events},
        })
    }
}

/// A webhook just made: its secret is shown this once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedWebhook {
    /// The webhook.
    pub webhook: WebhookView,
    /// Its secret (sent, or generated).
    pub secret: String,
}

impl CreatedWebhook {
    /// BTCPay's `WebhookDataCreateResult` JSON.
    pub fn to_json(&self) -> Value {
        let mut v = self.webhook.to_json();
        v["secret"] = json!(self.secret);
        v
    }
}

/// A delivery as the API shows it (BTCPay's `WebhookDeliveryData`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryView {
    /// Its id.
    pub id: String,
    /// When it was created, Unix seconds.
    pub timestamp: i64,
    /// When it was last attempted, Unix seconds.
    pub delivery_time: Option<i64>,
    /// `Failed`, `HttpError` or `HttpSuccess` (`Failed` before the first attempt).
    pub status: String,
    /// The last answer's HTTP status.
    pub http_code: Option<i64>,
    /// Why the last attempt failed.
    pub error_message: Option<String>,
    /// Attempts so far.
    pub attempts: i64,
    /// When it is tried next, Unix ms (`None`: done).
    pub next_attempt_at: Option<i64>,
}

impl DeliveryView {
    fn of(r: &WebhookDeliveryRecord) -> DeliveryView {
        let (status, error_message) = match &r.status {
            Some(status) => (status.clone(), r.error_message.clone()),
            None => ("Failed".to_string(), Some("Not attempted yet".to_string())),
        };
        DeliveryView {
            id: r.id.clone(),
            timestamp: r.created_at.div_euclid(1_000),
            delivery_time: r.attempted_at.map(|t| t.div_euclid(1_000)),
            status,
            http_code: r.http_code,
            error_message,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
        }
    }

    /// BTCPay's `WebhookDeliveryData` JSON.
    pub fn to_json(&self) -> Value {
        let mut v = json!({
            "id": self.id,
            "timestamp": self.timestamp,
            "httpCode": self.http_code,
            "status": self.status,
        });
        if let Some(at) = self.delivery_time {
            v["deliveryTime"] = json!(at);
        }
        if let Some(message) = &self.error_message {
            v["errorMessage"] = json!(message);
        }
        v
    }
}

/// What one sender pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WebhookPass {
    /// Whether this node holds the sender's lease (nothing else is done otherwise).
    pub leading: bool,
    /// Outbox events dispatched.
    pub events: usize,
    /// Deliveries those events made.
    pub deliveries: usize,
    /// Delivery attempts made.
    pub attempted: usize,
    /// Attempts answered with a 2xx.
    pub succeeded: usize,
}

/// What a caller sends to create or replace a webhook (BTCPay's `WebhookDataCreate`).
struct WebhookInput {
    url: String,
    enabled: bool,
    automatic_redelivery: bool,
    everything: bool,
    specific_events: Vec<String>,
    secret: Option<String>,
}

fn flag(body: &Value, name: &str, errors: &mut Vec<FieldError>) -> bool {
    match body.get(name) {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            errors.push(FieldError::new(name, &format!("{name} is true or false")));
            true
        }
    }
}

/// Reads a webhook body as BTCPay does: a missing flag is `true`, a missing
/// `authorizedEvents` is everything, an empty secret is none.
fn parse_input(body: &Value) -> Result<WebhookInput, Vec<FieldError>> {
    let mut errors = Vec::new();
    if !body.is_object() {
        return Err(vec![FieldError::new("", "the body is a JSON object")]);
    }
    let url = match body.get("url") {
        Some(Value::String(s)) => s.trim().to_string(),
        _ => String::new(),
    };
    if !valid_url(&url) {
        errors.push(FieldError::new("url", "Invalid Url: an absolute http or https URL"));
    }
    let enabled = flag(body, "enabled", &mut errors);
    let automatic_redelivery = flag(body, "automaticRedelivery", &mut errors);
    let (mut everything, mut specific_events) = (true, Vec::new());
    match body.get("authorizedEvents") {
        None | Some(Value::Null) => {}
        Some(events @ Value::Object(_)) => {
            everything = match events.get("everything") {
                None | Some(Value::Null) => true,
                Some(Value::Bool(b)) => *b,
                Some(_) => {
                    errors.push(FieldError::new(
                        "authorizedEvents.everything",
                        "everything is true or false",
                    ));
                    true
                }
            };
            match events.get("specificEvents") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for (i, item) in items.iter().enumerate() {
                        match item.as_str().and_then(|s| EVENT_TYPES.iter().find(|t| **t == s)) {
                            Some(known) if !specific_events.iter().any(|e| e == known) => {
                                specific_events.push((*known).to_string())
                            }
                            Some(_) => {}
                            None => errors.push(FieldError::new(
                                &format!("authorizedEvents.specificEvents[{i}]"),
                                "unknown event type",
                            )),
                        }
                    }
                }
                Some(_) => errors.push(FieldError::new(
                    "authorizedEvents.specificEvents",
                    "specificEvents is a list of event types",
                )),
            }
        }
        Some(_) => errors.push(FieldError::new("authorizedEvents", "authorizedEvents is an object")),
    }
    let secret = match body.get("secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if s.chars().count() > MAX_SECRET_CHARS => {
            errors.push(FieldError::new("secret", "secret is at most 256 characters"));
            None
        }
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => {
            errors.push(FieldError::new("secret", "secret is a string"));
            None
        }
    };
    if errors.is_empty() {
        Ok(WebhookInput {
            url,
            enabled,
            automatic_redelivery,
            everything,
            specific_events,
            secret,
        })
    } else {
        Err(errors)
    }
}

/// Whether `url` is an absolute http(s) URL with a host, of acceptable length.
fn valid_url(url: &str) -> bool {
    url.chars().count() <= MAX_URL_CHARS
        && url::Url::parse(url)
            .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()))
}

/// `sha256=<lowercase hex HMAC-SHA256(UTF-8 secret, body)>`: the `BTCPay-Sig` header's value.
pub fn signature(secret: &str, body: &[u8]) -> String {
    // HMAC takes keys of any length, so this never fails.
    let mut mac = match <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut out = String::from("sha256=");
    for b in digest {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// A delivery's body: the event's payload with the delivery fields set.
fn delivery_body(
    payload: &Map<String, Value>,
    delivery_id: &str,
    webhook_id: &str,
    original_id: &str,
    is_redelivery: bool,
    timestamp_secs: Option<i64>,
) -> Result<String, MerchantError> {
    let mut body = payload.clone();
    body.insert("deliveryId".into(), json!(delivery_id));
    body.insert("webhookId".into(), json!(webhook_id));
    body.insert("originalDeliveryId".into(), json!(original_id));
    body.insert("isRedelivery".into(), json!(is_redelivery));
    if let Some(at) = timestamp_secs {
        body.insert("timestamp".into(), json!(at));
    }
    serde_json::to_string(&Value::Object(body)).map_err(|e| decode(&format!("webhook body: {e}")))
}

fn decode(message: &str) -> MerchantError {
    MerchantError::Store(StoreError::Decode(message.to_string()))
}

fn new_id() -> String {
    random_token("", ID_CHARS)
}

/// Whether a webhook receives events of `event_type`.
fn wants(w: &MerchantWebhookRecord, event_type: &str) -> bool {
    w.everything || w.specific_events.iter().any(|e| e == event_type)
}

/// Whether an address is reachable on the public internet (not this machine, a private or
/// shared network, a link-local, multicast or unspecified address).
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)))
        }
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public(IpAddr::V4(v4)),
            None => {
                let first = v6.segments()[0];
                !(v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || (first & 0xfe00) == 0xfc00
                    || (first & 0xffc0) == 0xfe80)
            }
        },
    }
}

/// A webhook URL's host resolved only to addresses the operator does not allow.
#[derive(Debug, thiserror::Error)]
#[error("refused: {0} is a loopback, private or link-local address (allow_private_webhooks is off)")]
struct PrivateAddress(String);

/// A resolver that drops non-public addresses, so a name cannot lead a delivery into the
/// operator's own network (the addresses connected to are the ones checked).
struct PublicOnly;

impl reqwest::dns::Resolve for PublicOnly {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(PrivateAddress(host)) as Box<dyn StdError + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client deliveries go out with.
#[derive(Clone)]
pub(crate) struct Transport {
    client: Result<reqwest::Client, String>,
    allow_private: bool,
}

impl Transport {
    /// A client for `config`: no redirects, a timeout per request, and unless private
    /// addresses are allowed, a resolver that refuses them.
    pub(crate) fn new(config: &MerchantConfig) -> Transport {
        let timeout = Duration::from_secs(config.webhook_timeout_secs.max(1));
        let mut builder = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(timeout)
            .user_agent(concat!("flash/", env!("CARGO_PKG_VERSION")));
        if !config.allow_private_webhooks {
            builder = builder.dns_resolver(Arc::new(PublicOnly));
        }
        Transport {
            client: builder.build().map_err(|e| e.to_string()),
            allow_private: config.allow_private_webhooks,
        }
    }

    /// POSTs `body` signed with `secret` to `url`: what came of it, and whether to retry.
    async fn send(&self, url: &str, secret: &str, body: &str) -> (Sent, bool) {
        let failed = |message: String, retry: bool| {
            (
                Sent {
                    status: "Failed",
                    http_code: None,
                    error: Some(message),
                },
                retry,
            )
        };
        let client = match &self.client {
            Ok(client) => client,
            Err(e) => return failed(format!("no HTTP client: {e}"), true),
        };
        let Ok(parsed) = url::Url::parse(url) else {
            return failed("Invalid Url".into(), false);
        };
        if !self.allow_private {
            let literal = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
                Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
                _ => None,
            };
            if let Some(ip) = literal.filter(|ip| !is_public(*ip)) {
                return failed(PrivateAddress(ip.to_string()).to_string(), false);
            }
        }
        let sent = client
            .post(parsed)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("BTCPay-Sig", signature(secret, body.as_bytes()))
            .body(body.to_string())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let code = resp.status().as_u16();
                if resp.status().is_success() {
                    let sent = Sent {
                        status: "HttpSuccess",
                        http_code: Some(i64::from(code)),
                        error: None,
                    };
                    return (sent, false);
                }
                let retry = code == 408 || code == 429 || resp.status().is_server_error();
                let sent = Sent {
                    status: "HttpError",
                    http_code: Some(i64::from(code)),
                    error: Some(format!("HTTP Error Code {code}")),
                };
                (sent, retry)
            }
            Err(e) => {
                let mut private = false;
                let mut message = e.to_string();
                let mut source = e.source();
                while let Some(cause) = source {
                    private |= cause.downcast_ref::<PrivateAddress>().is_some();
                    message.push_str(&format!(": {cause}"));
                    source = cause.source();
                }
                failed(message, !private)
            }
        }
    }
}

/// What one POST came to.
struct Sent {
    status: &'static str,
    http_code: Option<i64>,
    error: Option<String>,
}

impl Merchant {
    /// A store's webhook the caller may manage (`btcpay.store.webhooks.canmodifywebhooks`).
    async fn own_webhook(
        &self,
        caller: &Caller,
        store_id: &str,
        webhook_id: &str,
    ) -> Result<MerchantWebhookRecord, MerchantError> {
        self.webhook_store(caller, store_id).await?;
        self.store
            .merchant_webhook(store_id, webhook_id)
            .await?
            .ok_or(MerchantError::WebhookNotFound)
    }

    /// Checks that the caller may manage `store_id`'s webhooks.
    async fn webhook_store(&self, caller: &Caller, store_id: &str) -> Result<(), MerchantError> {
        self.own_store(caller.account, store_id).await?;
        caller.require(CAN_MODIFY_WEBHOOKS, Some(store_id))
    }

    /// Creates a webhook on a store from BTCPay's `WebhookDataCreate`; the secret is generated
    /// when none is sent, and shown only in this answer.
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        store_id: &str,
        body: &Value,
    ) -> Result<CreatedWebhook, MerchantError> {
        self.webhook_store(caller, store_id).await?;
        let input = parse_input(body).map_err(MerchantError::Invalid)?;
        if self.store.merchant_webhooks_of(store_id).await?.len() >= MAX_WEBHOOKS_PER_STORE {
            return Err(MerchantError::field("", "this store has the most webhooks it may"));
        }
        let now = self.bank.now_ms();
        let record = MerchantWebhookRecord {
            id: new_id(),
            store_id: store_id.to_string(),
            url: input.url,
            secret: input.secret.unwrap_or_else(new_id),
            enabled: input.enabled,
            automatic_redelivery: input.automatic_redelivery,
            everything: input.everything,
            specific_events: input.specific_events,
            created_at: now,
            updated_at: now,
        };
        self.store.merchant_webhook_create(&record).await?;
        Ok(CreatedWebhook {
            webhook: WebhookView::of(&record),
            secret: record.secret,
        })
    }

    /// A store's webhooks.
    pub async fn webhooks(&self, caller: &Caller, store_id: &str) -> Result<Vec<WebhookView>, MerchantError> {
        self.webhook_store(caller, store_id).await?;
        let all = self.store.merchant_webhooks_of(store_id).await?;
        Ok(all.iter().map(WebhookView::of).collect())
    }

    /// One of a store's webhooks.
    pub async fn webhook(
        &self,
        caller: &Caller,
        store_id: &str,
        webhook_id: &str,
    ) -> Result<WebhookView, MerchantError> {
        Ok(WebhookView::of(&self.own_webhook(caller, store_id, webhook_id).await?))
    }

    /// Replaces a webhook's settings with BTCPay's `WebhookDataUpdate` (fields not sent take
    /// their defaults, as in BTCPay; the secret is kept unless a new one is sent).
    pub async fn update_webhook(
        &self,
        caller: &Caller,
        store_id: &str,
        webhook_id: &str,
        body: &Value,
    ) -> Result<WebhookView, MerchantError> {
        let mut record = self.own_webhook(caller, store_id, webhook_id).await?;
        let input = parse_input(body).map_err(MerchantError::Invalid)?;
        record.url = input.url;
        if let Some(secret) = input.secret {
            record.secret = secret;
        }
        record.enabled = input.enabled;
        record.automatic_redelivery = input.automatic_redelivery;
        record.everything = input.everything;
        record.specific_events = input.specific_events;
        record.updated_at = self.bank.now_ms();
        if !self.store.merchant_webhook_update(&record).await? {
            return Err(MerchantError::WebhookNotFound);
        }
        Ok(WebhookView::of(&record))
    }

    /// Deletes a webhook and its deliveries.
    pub async fn delete_webhook(&self, caller: &Caller, store_id: &str, webhook_id: &str) -> Result<(), MerchantError> {
        self.own_webhook(caller, store_id, webhook_id).await?;
        if self.store.merchant_webhook_delete(store_id, webhook_id).await? {
            Ok(())
        } else {
            Err(MerchantError::WebhookNotFound)
        }
    }

    /// A webhook's latest deliveries, newest first (`count`: how many, at most 1,000).
    pub async fn deliveries(
        &self,
        caller: &Caller,
        store_id: &str,
        webhook_id: &str,
        count: Option<i64>,
    ) -> Result<Vec<DeliveryView>, MerchantError> {
        self.own_webhook(caller, store_id, webhook_id).await?;
        let limit = count.unwrap_or(MAX_DELIVERIES_LISTED).clamp(0, MAX_DELIVERIES_LISTED);
        let all = self.store.merchant_webhook_deliveries(webhook_id, limit).await?;
        Ok(all.iter().map(DeliveryView::of).collect())
    }

    async fn own_delivery(
        &self,
        caller: &Caller,
        store_id: &str,
        webhook_id: &str,
        delivery_id: &str,
    ) -> Result<WebhookDeliveryRecord, MerchantError> {
        self.own_webhook(caller, store_id, webhook_id).await?;
        self.store
            .merchant_webhook_delivery(webhook_id, delivery_id)
            .await?
            .ok_or(MerchantError::DeliveryNotFound)
    }

    /// One delivery of a webhook.
    pub async fn delivery(
        &self,
        caller: &Caller,
        store_id: &str,
        webhook_id: &str,
        delivery_id: &str,
    ) -> Result<DeliveryView, MerchantError> {
        let record = self.own_delivery(caller, store_id, webhook_id, delivery_id).await?;
        Ok(DeliveryView::of(&record))
    }

    /// The exact body a delivery sends (and signs).
    pub async fn delivery_request(
        &self,
        caller: &Caller,
        store_id: &str,
        webhook_id: &str,
        delivery_id: &str,
    ) -> Result<String, MerchantError> {
        Ok(self
            .own_delivery(caller, store_id, webhook_id, delivery_id)
            .await?
            .request)
    }

    /// Delivers a delivery's event again as a new delivery (`isRedelivery: true`, the first
    /// delivery as `originalDeliveryId`), attempted at once by the sender. Its id.
    pub async fn redeliver(
        &self,
        caller: &Caller,
        store_id: &str,
        webhook_id: &str,
        delivery_id: &str,
    ) -> Result<String, MerchantError> {
        let old = self.own_delivery(caller, store_id, webhook_id, delivery_id).await?;
        let Ok(Value::Object(payload)) = serde_json::from_str::<Value>(&old.request) else {
            return Err(decode("a stored webhook request is not a JSON object"));
        };
        let id = new_id();
        let now = self.bank.now_ms();
        // As BTCPay: the body keeps the first delivery's timestamp and original id.
        let request = delivery_body(&payload, &id, webhook_id, &old.original_id, true, None)?;
        let record = WebhookDeliveryRecord {
            id: id.clone(),
            webhook_id: webhook_id.to_string(),
            event_seq: None,
            event_type: old.event_type,
            original_id: old.original_id,
            is_redelivery: true,
            request,
            created_at: now,
            attempts: 0,
            next_attempt_at: Some(now),
            status: None,
            http_code: None,
            error_message: None,
            attempted_at: None,
        };
        self.store.merchant_webhook_delivery_create(&record).await?;
        self.outbox.notify_one();
        Ok(id)
    }

    /// Runs sender passes until `shutdown`: after events are appended (the outbox is
    /// notified), after attempts end, or every poll interval (events may come from other
    /// nodes, retries come due). Each webhook's due deliveries run as one task, started in
    /// event order (at most `webhook_in_flight` at once); tasks of different webhooks run at
    /// once (at most `webhook_concurrency`), so a slow endpoint never holds back another or
    /// the next pass. Errors are logged and retried.
    pub async fn run_webhook_sender(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let every = Duration::from_secs(self.config.webhook_poll_interval_secs.max(1));
        let mut in_flight: JoinSet<(String, Vec<Result<bool, MerchantError>>)> = JoinSet::new();
        let mut busy: BTreeSet<String> = BTreeSet::new();
        loop {
            while let Some(done) = in_flight.try_join_next() {
                log_attempts(done, &mut busy);
            }
            let room = self.config.webhook_concurrency.max(1).saturating_sub(in_flight.len());
            match self.prepare_pass(room, &busy).await {
                Ok((_, due)) => {
                    for group in by_webhook(due) {
                        let me = self.clone();
                        let Some(webhook) = group.first().map(|d| d.delivery.webhook_id.clone()) else {
                            continue;
                        };
                        busy.insert(webhook.clone());
                        in_flight.spawn(async move { (webhook, me.attempt_in_order(group).await) });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "webhook sender: pass failed"),
            }
            tokio::select! {
                () = &mut shutdown => break,
                () = self.outbox.notified() => {}
                Some(done) = in_flight.join_next(), if !in_flight.is_empty() => log_attempts(done, &mut busy),
                () = tokio::time::sleep(every) => {}
            }
        }
        // An attempt cut short is tried again once its claim lapses.
        in_flight.abort_all();
    }

    /// One sender pass, waiting for its attempts: take or renew the lease, dispatch the
    /// undispatched events, attempt the due deliveries (of at most `webhook_concurrency`
    /// webhooks at once, each webhook's in event order).
    pub async fn run_webhook_pass(&self) -> Result<WebhookPass, MerchantError> {
        let room = self.config.webhook_concurrency.max(1);
        let (mut pass, due) = self.prepare_pass(room, &BTreeSet::new()).await?;
        let groups = by_webhook(due).into_iter().map(|group| self.attempt_in_order(group));
        for results in futures_util::future::join_all(groups).await {
            for result in results {
                pass.attempted += 1;
                pass.succeeded += usize::from(result?);
            }
        }
        Ok(pass)
    }

    /// Attempts one webhook's deliveries, started in event order, at most `webhook_in_flight`
    /// at once (one: strictly one after the other), and records the outcomes together (one
    /// transaction; a crash before it means the claims lapse and the deliveries go again).
    async fn attempt_in_order(&self, group: Vec<DueDelivery>) -> Vec<Result<bool, MerchantError>> {
        let attempts: Vec<(String, DeliveryAttempt)> = futures_util::stream::iter(group)
            .map(|d| self.attempt(d))
            .buffered(self.config.webhook_in_flight.max(1))
            .collect()
            .await;
        match self.store.merchant_webhook_deliveries_attempted(&attempts).await {
            Ok(()) => attempts.iter().map(|(_, a)| Ok(a.status == "HttpSuccess")).collect(),
            Err(e) => vec![Err(e.into())],
        }
    }

    /// The lease, dispatch, and the claimed due deliveries of at most `room` webhooks, none
    /// of them `busy` (still being attempted).
    async fn prepare_pass(
        &self,
        room: usize,
        busy: &BTreeSet<String>,
    ) -> Result<(WebhookPass, Vec<DueDelivery>), MerchantError> {
        let mut pass = WebhookPass::default();
        let holder = &self.bank.config().node_name;
        if !self.store.take_lease(WEBHOOK_LEASE, holder, LEASE_TTL_MS).await? {
            return Ok((pass, Vec::new()));
        }
        pass.leading = true;
        for _ in 0..DISPATCH_BATCHES_PER_PASS_MAX {
            let (events, deliveries) = self.dispatch_batch().await?;
            pass.events += events;
            pass.deliveries += deliveries;
            if events < usize::try_from(DISPATCH_BATCH_MAX).unwrap_or(usize::MAX) {
                break;
            }
        }
        if room == 0 {
            return Ok((pass, Vec::new()));
        }
        let now = self.bank.now_ms();
        // Long enough for a whole webhook's group to run before anyone tries it again.
        let rounds = DUE_PER_WEBHOOK_MAX.div_ceil(self.config.webhook_in_flight.max(1));
        let claim_secs = self.config.webhook_timeout_secs.max(1).saturating_mul(rounds as u64);
        let until = now
            .saturating_add(i64::try_from(claim_secs).unwrap_or(i64::MAX / 2).saturating_mul(1_000) + CLAIM_MARGIN_MS);
        let limit = i64::try_from(room.saturating_mul(DUE_PER_WEBHOOK_MAX)).unwrap_or(i64::MAX);
        let mut per_webhook: BTreeMap<String, usize> = BTreeMap::new();
        let mut chosen: Vec<DueDelivery> = Vec::new();
        for d in self.store.merchant_webhook_deliveries_due(now, limit).await? {
            let webhook = &d.delivery.webhook_id;
            if busy.contains(webhook) || (!per_webhook.contains_key(webhook) && per_webhook.len() >= room) {
                continue;
            }
            let taken = per_webhook.entry(webhook.clone()).or_default();
            if *taken < DUE_PER_WEBHOOK_MAX {
                *taken += 1;
                chosen.push(d);
            }
        }
        let ids: Vec<String> = chosen.iter().map(|d| d.delivery.id.clone()).collect();
        let got: BTreeSet<String> = self
            .store
            .merchant_webhook_deliveries_claim(&ids, now, until)
            .await?
            .into_iter()
            .collect();
        let claimed = chosen
            .into_iter()
            .filter(|d| got.contains(&d.delivery.id))
            .map(|mut d| {
                d.delivery.next_attempt_at = Some(until);
                d
            })
            .collect();
        Ok((pass, claimed))
    }

    /// Turns the oldest undispatched events into deliveries, in one transaction: how many
    /// events, how many deliveries.
    async fn dispatch_batch(&self) -> Result<(usize, usize), MerchantError> {
        let events = self.store.merchant_events_undispatched(DISPATCH_BATCH_MAX).await?;
        if events.is_empty() {
            return Ok((0, 0));
        }
        let stores: BTreeSet<String> = events.iter().map(|e| e.store_id.clone()).collect();
        let stores: Vec<String> = stores.into_iter().collect();
        let hooks = self.store.merchant_webhooks_enabled_of(&stores).await?;
        let now = self.bank.now_ms();
        let mut deliveries = Vec::new();
        for event in &events {
            deliveries.extend(first_deliveries(event, &hooks, now)?);
        }
        let seqs: Vec<i64> = events.iter().map(|e| e.seq).collect();
        match self.store.merchant_events_dispatch(&seqs, &deliveries, now).await {
            Ok(()) => Ok((events.len(), deliveries.len())),
            // Another sender got there first (a lease handover), or an event committed late
            // inside the range read: nothing was written; the next pass reads them again.
            Err(StoreError::Refused(_)) => Ok((0, 0)),
            Err(e) => Err(e.into()),
        }
    }

    /// Attempts one claimed delivery: its id and what came of it.
    async fn attempt(&self, d: DueDelivery) -> (String, DeliveryAttempt) {
        let (sent, retry) = if d.enabled {
            self.transport.send(&d.url, &d.secret, &d.delivery.request).await
        } else {
            let sent = Sent {
                status: "Failed",
                http_code: None,
                error: Some("The webhook is disabled".into()),
            };
            (sent, false)
        };
        let now = self.bank.now_ms();
        let made = usize::try_from(d.delivery.attempts.saturating_add(1)).unwrap_or(usize::MAX);
        let next_attempt_at = (retry && d.automatic_redelivery)
            .then(|| RETRY_DELAYS_SECS.get(made.saturating_sub(1)))
            .flatten()
            .map(|secs| now.saturating_add(secs.saturating_mul(1_000)));
        let attempt = DeliveryAttempt {
            status: sent.status.to_string(),
            http_code: sent.http_code,
            error_message: sent.error,
            attempted_at: now,
            next_attempt_at,
        };
        if attempt.status != "HttpSuccess" {
            tracing::info!(
                delivery = %d.delivery.id,
                webhook = %d.delivery.webhook_id,
                attempts = made,
                error = attempt.error_message.as_deref().unwrap_or(""),
                retry_at = ?next_attempt_at,
                "webhook delivery failed"
            );
        }
        (d.delivery.id, attempt)
    }
}

fn log_attempts(
    done: Result<(String, Vec<Result<bool, MerchantError>>), tokio::task::JoinError>,
    busy: &mut BTreeSet<String>,
) {
    match done {
        Ok((webhook, results)) => {
            busy.remove(&webhook);
            for e in results.into_iter().filter_map(Result::err) {
                tracing::warn!(error = %e, %webhook, "webhook sender: recording an attempt failed");
            }
        }
        // Its webhook stays busy; its deliveries are tried again once their claims lapse.
        Err(e) => tracing::error!(error = %e, "webhook sender: an attempt task failed"),
    }
}

/// Due deliveries grouped by webhook, each group in the order given (event order).
fn by_webhook(due: Vec<DueDelivery>) -> Vec<Vec<DueDelivery>> {
    let mut groups: Vec<Vec<DueDelivery>> = Vec::new();
    for d in due {
        match groups.iter_mut().find(|g| {
            g.first()
                .is_some_and(|f| f.delivery.webhook_id == d.delivery.webhook_id)
        }) {
            Some(group) => group.push(d),
            None => groups.push(vec![d]),
        }
    }
    groups
}

/// The first deliveries of an event: one per enabled webhook of its store that wants its type.
/// A payload that is not a JSON object makes none (and is logged).
fn first_deliveries(
    event: &MerchantEventRecord,
    hooks: &[MerchantWebhookRecord],
    now: i64,
) -> Result<Vec<WebhookDeliveryRecord>, MerchantError> {
    let Ok(Value::Object(payload)) = serde_json::from_str::<Value>(&event.payload) else {
        tracing::error!(
            seq = event.seq,
            "merchant outbox: an event's payload is not a JSON object; no deliveries"
        );
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for hook in hooks
        .iter()
        .filter(|h| h.store_id == event.store_id && wants(h, &event.event_type))
    {
        let id = new_id();
        let request = delivery_body(&payload, &id, &hook.id, &id, false, Some(now.div_euclid(1_000)))?;
        out.push(WebhookDeliveryRecord {
            id: id.clone(),
            webhook_id: hook.id.clone(),
            event_seq: Some(event.seq),
            event_type: event.event_type.clone(),
            original_id: id,
            is_redelivery: false,
            request,
            created_at: now,
            attempts: 0,
            next_attempt_at: Some(now),
            status: None,
            http_code: None,
            error_message: None,
            attempted_at: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_btcpays_hmac_over_the_body() {
        // RFC 4231 test case 2: key "Jefe".
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn bodies_are_checked_field_by_field() {
        let ok = parse_input(&json!({"url": "https://example.com/hook"})).expect("valid");
        assert!(ok.enabled && ok.automatic_redelivery && ok.everything && ok.secret.is_none());
        let errors = parse_input(&json!({
            "url": "ftp://example.com",
            "enabled": "yes",
            "authorizedEvents": {"everything": false, "specificEvents": ["InvoiceSettled", "Nope"]},
        }))
        .err()
        .expect("refused");
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["url", "enabled", "authorizedEvents.specificEvents[1]"]);
        assert!(parse_input(&json!({"url": "/relative"})).is_err());
        assert!(parse_input(&json!([])).is_err());
    }

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "0.0.0.0",
        ] {
            assert!(!is_public(private.parse().expect("ip")), "{private}");
        }
        for public in ["1.1.1.1", "2606:4700::1111"] {
            assert!(is_public(public.parse().expect("ip")), "{public}");
        }
    }
}
