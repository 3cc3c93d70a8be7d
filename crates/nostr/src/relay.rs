//! The relay: checks and keeps events, answers queries from the store, and fans accepted
//! events out to live subscribers. Events are written by one task per relay in batches (one
//! transaction for many events); a publisher is answered once its event is committed.

use std::collections::HashMap;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flash_core::secrets::KeyEncryptionKey;
use flash_store::{EventQuery, NewEvent, Readers, SaveOutcome, Store};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use nostr::{Event, EventBuilder, JsonUtil, Keys, Kind, PublicKey, Timestamp};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::cluster::Cluster;
use crate::config::{RelayConfig, WritePolicy};
use crate::filter::{self, GIFT_WRAP};
use crate::groups;
use crate::protocol::{Prefix, Reject};

/// Most events committed in one transaction.
const BATCH_MAX: usize = 512;
/// Events waiting for the writer before publishers are told to slow down.
const WRITE_QUEUE: usize = 8_192;
/// Live events buffered per subscriber before a slow one starts missing them.
const LIVE_BUFFER: usize = 4_096;
/// How often expired events are purged and idle rate-limit entries forgotten.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// Where a paid relay sells admission, under the server's public URL (NIP-11 `payments_url`).
pub const ADMISSION_PATH: &str = "/relay/admission";

/// Purpose under which the relay's service key is sealed in the store.
pub const SERVICE_KEY_PURPOSE: &str = "nostr-service-key";

/// The relay's service key could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ServiceKeyError {
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] flash_store::StoreError),
    /// The sealed key does not open with this key-encryption key, or is not a key.
    #[error("the relay's service key does not open with this key-encryption key: {0}")]
    Unsealed(String),
}

/// The relay's service key, sealed in the store with `kek` (made on first start; every node
/// of a deployment gets the same one).
pub async fn service_keys(store: &Store, kek: &KeyEncryptionKey) -> Result<Keys, ServiceKeyError> {
    let sealed = store
        .sealed_secret(SERVICE_KEY_PURPOSE, || {
            kek.seal(SERVICE_KEY_PURPOSE, &Keys::generate().secret_key().secret_bytes())
        })
        .await?;
    let bytes = kek
        .open(SERVICE_KEY_PURPOSE, &sealed)
        .map_err(|e| ServiceKeyError::Unsealed(e.to_string()))?;
    let secret = nostr::SecretKey::from_slice(&bytes).map_err(|e| ServiceKeyError::Unsealed(e.to_string()))?;
    Ok(Keys::new(secret))
}

/// An accepted event on its way to live subscribers.
#[derive(Debug)]
pub struct Live {
    /// The event.
    pub event: Event,
    /// Its JSON, as served.
    pub raw: String,
}

/// The next message of a broadcast, skipping (and logging) what a slow receiver missed; `None`
/// once the sender is gone.
pub(crate) async fn next_broadcast<T: Clone>(rx: &mut broadcast::Receiver<T>, what: &str) -> Option<T> {
    loop {
        match rx.recv().await {
            Ok(v) => return Some(v),
            Err(broadcast::error::RecvError::Lagged(n)) => tracing::warn!(missed = n, "{what} were missed"),
            Err(broadcast::error::RecvError::Closed) => return None,
        }
    }
}

/// What became of a published event that was not refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Published {
    /// Stored and sent to subscribers.
    Saved,
    /// Already stored.
    Duplicate,
    /// Ephemeral: sent to subscribers, not stored.
    Relayed,
}

/// Who is publishing: what the relay knows about the sender. The default is a service of this
/// server (no address): no rate limits, no write policy.
#[derive(Clone, Debug, Default)]
pub struct Sender<'a> {
    /// The connection's address (rate limits, write policy); none for this server's services.
    pub ip: Option<IpAddr>,
    /// The pubkeys the connection authenticated as (NIP-42).
    pub authed: &'a [PublicKey],
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct RelayStats {
    /// Events stored.
    pub saved: AtomicU64,
    /// Ephemeral events relayed.
    pub relayed: AtomicU64,
    /// Events refused.
    pub refused: AtomicU64,
    /// REQ and COUNT messages answered.
    pub queries: AtomicU64,
    /// Open websocket connections.
    pub connections: AtomicUsize,
}

struct WriteJob {
    event: NewEvent,
    live: Arc<Live>,
    done: oneshot::Sender<Result<SaveOutcome, Reject>>,
}

/// Where accepted events go: this node's live subscribers and, in a cluster, the other
/// nodes'.
#[derive(Clone)]
struct Fanout {
    live: broadcast::Sender<Arc<Live>>,
    cluster: Option<Cluster>,
}

impl Fanout {
    async fn send(&self, event: Arc<Live>) {
        if let Some(cluster) = &self.cluster {
            cluster.publish(&event).await;
        }
        // No receivers is not an error: nobody is listening.
        let _ = self.live.send(event);
    }
}

struct Inner {
    store: Store,
    config: RelayConfig,
    service: Keys,
    url: Option<url::Url>,
    payments_url: String,
    fanout: Fanout,
    writes: mpsc::Sender<WriteJob>,
    per_ip: DefaultKeyedRateLimiter<IpAddr>,
    per_pubkey: DefaultKeyedRateLimiter<PublicKey>,
    connections: Mutex<HashMap<IpAddr, usize>>,
    stats: Arc<RelayStats>,
    /// The `created_at` of the relay's last own event: each next one is later, so a version
    /// of its group state always replaces the one before.
    own_clock: AtomicU64,
}

/// The relay. Cheap to clone.
#[derive(Clone)]
pub struct Relay {
    inner: Arc<Inner>,
}

/// A quota of `n` per minute (at least one).
pub(crate) fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl Relay {
    /// Starts a relay on `store`: its writer and its housekeeping. `public_url` (the server's)
    /// gives the relay URL AUTH events must name when the config sets none. With a `cluster`,
    /// accepted events also reach the live subscribers of the other nodes, and theirs reach
    /// this node's.
    /// `service` is the relay's own key: it signs what the relay's services publish (wallet
    /// connect, zap receipts) and is NIP-11's `self`.
    pub fn start(
        store: Store,
        config: RelayConfig,
        public_url: &str,
        cluster: Option<Cluster>,
        service: Keys,
    ) -> Relay {
        let url = config
            .url
            .clone()
            .or_else(|| {
                Some(
                    public_url
                        .replacen("https://", "wss://", 1)
                        .replacen("http://", "ws://", 1),
                )
            })
            .and_then(|u| url::Url::parse(&u).ok());
        let (writes, jobs) = mpsc::channel(WRITE_QUEUE);
        let relay = Relay {
            inner: Arc::new(Inner {
                per_ip: RateLimiter::keyed(per_minute(config.events_per_minute_per_ip)),
                per_pubkey: RateLimiter::keyed(per_minute(config.events_per_minute_per_pubkey)),
                fanout: Fanout {
                    live: broadcast::channel(LIVE_BUFFER).0,
                    cluster,
                },
                store,
                config,
                service,
                url,
                payments_url: format!("{}{ADMISSION_PATH}", public_url.trim_end_matches('/')),
                writes,
                connections: Mutex::new(HashMap::new()),
                stats: Arc::new(RelayStats::default()),
                own_clock: AtomicU64::new(0),
            }),
        };
        tokio::spawn(write_loop(
            relay.inner.store.clone(),
            relay.inner.fanout.clone(),
            relay.inner.stats.clone(),
            jobs,
        ));
        if let Some(cluster) = relay.inner.fanout.cluster.clone() {
            tokio::spawn(cluster.deliver(relay.inner.fanout.live.clone()));
        }
        tokio::spawn(housekeeping(Arc::downgrade(&relay.inner)));
        relay
    }

    /// The settings.
    pub fn config(&self) -> &RelayConfig {
        &self.inner.config
    }

    /// The relay's own key (its services sign with it).
    pub fn service_keys(&self) -> &Keys {
        &self.inner.service
    }

    /// The relay's websocket URL, which AUTH events must name.
    pub fn url(&self) -> Option<&url::Url> {
        self.inner.url.as_ref()
    }

    /// Where admission is sold when the relay is paid (NIP-11 `payments_url`).
    pub fn payments_url(&self) -> &str {
        &self.inner.payments_url
    }

    /// Counters for `/metrics`.
    pub fn stats(&self) -> &RelayStats {
        &self.inner.stats
    }

    /// Live events from now on.
    pub fn live(&self) -> broadcast::Receiver<Arc<Live>> {
        self.inner.fanout.live.subscribe()
    }

    /// Takes a connection place for `ip`, or refuses when the address or the relay is full.
    pub fn admit(&self, ip: IpAddr) -> Result<Admission, Reject> {
        let cfg = &self.inner.config;
        let mut open = self
            .inner
            .connections
            .lock()
            .map_err(|_| Reject::new(Prefix::Error, "relay unavailable"))?;
        if self.inner.stats.connections.load(Ordering::Relaxed) >= cfg.max_connections {
            return Err(Reject::new(Prefix::RateLimited, "the relay is full; try again later"));
        }
        let n = open.entry(ip).or_insert(0);
        if *n >= cfg.connections_per_ip {
            return Err(Reject::new(
                Prefix::RateLimited,
                format!("at most {} connections per address", cfg.connections_per_ip),
            ));
        }
        *n += 1;
        self.inner.stats.connections.fetch_add(1, Ordering::Relaxed);
        Ok(Admission {
            relay: self.clone(),
            ip,
        })
    }

    /// Checks an event against the relay's rules and keeps it (or, if ephemeral, relays it).
    /// Answers once the event is committed and sent to live subscribers.
    pub async fn publish(&self, event: Event, from: &Sender<'_>) -> Result<Published, Reject> {
        let result = self.publish_checked(event, from).await;
        if result.is_err() {
            self.inner.stats.refused.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn publish_checked(&self, event: Event, from: &Sender<'_>) -> Result<Published, Reject> {
        let cfg = &self.inner.config;
        if let Some(ip) = from.ip {
            if self.inner.per_ip.check_key(&ip).is_err() {
                return Err(Reject::new(Prefix::RateLimited, "this address publishes too fast"));
            }
        }
        if event.tags.iter().flat_map(|t| t.as_slice()).any(|v| v.contains('\0')) {
            return Err(Reject::invalid("tag values must not contain NUL (U+0000)"));
        }
        if event.tags.len() > cfg.max_event_tags {
            return Err(Reject::invalid(format!(
                "at most {} tags per event",
                cfg.max_event_tags
            )));
        }
        if !event.verify_id() {
            return Err(Reject::invalid("the id is not the hash of the event"));
        }
        if !event.verify_signature() {
            return Err(Reject::invalid("bad signature"));
        }
        self.check_time(&event)?;
        if cfg.min_pow_difficulty > 0 && !event.check_pow(cfg.min_pow_difficulty) {
            return Err(Reject::new(
                Prefix::Pow,
                format!("difficulty {} is required", cfg.min_pow_difficulty),
            ));
        }
        if event.kind == Kind::Authentication {
            return Err(Reject::invalid("AUTH events are sent in AUTH messages, not published"));
        }
        if event.is_protected() && !from.authed.contains(&event.pubkey) {
            return Err(Reject::new(
                Prefix::AuthRequired,
                "this event is protected: authenticate as its author to publish it",
            ));
        }
        if from.ip.is_some() {
            self.check_writer(&event).await?;
            if self.inner.per_pubkey.check_key(&event.pubkey).is_err() {
                return Err(Reject::new(Prefix::RateLimited, "this pubkey publishes too fast"));
            }
        }
        let change = groups::admit(self, &event).await?;
        let published = self.accept(event).await?;
        if let (Some(change), Published::Saved | Published::Relayed) = (change, published) {
            groups::apply(self, change).await;
        }
        Ok(published)
    }

    /// The store (for the relay's services).
    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Signs `event` with the service key and keeps it, unchecked (state the relay itself
    /// publishes).
    pub(crate) async fn sign_and_keep(&self, event: EventBuilder) {
        let now = Timestamp::now().as_secs();
        let previous = self
            .inner
            .own_clock
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| Some(now.max(last + 1)))
            .unwrap_or(now);
        let at = now.max(previous + 1);
        match event
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(&self.inner.service)
        {
            Ok(event) => {
                if let Err(e) = self.accept(event).await {
                    tracing::warn!(reason = %e, "relay: its own event was not kept");
                }
            }
            Err(e) => tracing::error!(error = %e, "relay: cannot sign its own event"),
        }
    }

    /// Refuses events dated too far ahead or behind, and events already expired (NIP-40).
    fn check_time(&self, event: &Event) -> Result<(), Reject> {
        let cfg = &self.inner.config;
        let now = Timestamp::now().as_secs();
        let at = event.created_at.as_secs();
        if at > now.saturating_add(cfg.created_at_future_secs) {
            return Err(Reject::invalid("created_at is too far in the future"));
        }
        if cfg.created_at_past_secs > 0 && at < now.saturating_sub(cfg.created_at_past_secs) {
            return Err(Reject::invalid("created_at is too far in the past"));
        }
        if event.tags.expiration().is_some_and(|t| t.as_secs() <= now) {
            return Err(Reject::invalid("this event has expired"));
        }
        Ok(())
    }

    /// The write policy. Under `users` the author must be a Flash user; under `paid` it must
    /// have paid admission (or be a Flash user, unless `admission_free_for_users` is off).
    /// Under both, events addressed to the relay's services (wallet-connect requests) pass,
    /// and so does a gift wrap to a pubkey that may write.
    async fn check_writer(&self, event: &Event) -> Result<(), Reject> {
        let cfg = &self.inner.config;
        if cfg.write_policy == WritePolicy::Open {
            return Ok(());
        }
        let me = self.inner.service.public_key();
        if event.tags.public_keys().any(|pk| *pk == me) {
            return Ok(());
        }
        let mut keys = vec![event.pubkey.to_hex()];
        if event.kind.as_u16() == GIFT_WRAP {
            keys.extend(event.tags.public_keys().map(|pk| pk.to_hex()));
        }
        let store = &self.inner.store;
        let users_write = cfg.write_policy == WritePolicy::Users || cfg.admission_free_for_users;
        for key in keys {
            if users_write && store.nostr_key_is_users(&key).await.map_err(store_failed)? {
                return Ok(());
            }
            if cfg.write_policy == WritePolicy::Paid && store.nostr_admitted(&key).await.map_err(store_failed)? {
                return Ok(());
            }
        }
        Err(match cfg.write_policy {
            WritePolicy::Paid => Reject::new(
                Prefix::Restricted,
                format!(
                    "admission costs {} sats: get an invoice at {}?pubkey={}",
                    cfg.admission_sats,
                    self.inner.payments_url,
                    event.pubkey.to_hex()
                ),
            ),
            _ => Reject::new(
                Prefix::Restricted,
                "only Flash users publish here: set your npub in the Flash app",
            ),
        })
    }

    /// Keeps (or relays) an event already checked, and tells live subscribers.
    async fn accept(&self, event: Event) -> Result<Published, Reject> {
        let raw = event.as_json();
        if event.kind.is_ephemeral() {
            self.inner.fanout.send(Arc::new(Live { event, raw })).await;
            self.inner.stats.relayed.fetch_add(1, Ordering::Relaxed);
            return Ok(Published::Relayed);
        }
        let stored = filter::stored(&event, raw.clone());
        let (done, answer) = oneshot::channel();
        let job = WriteJob {
            event: stored,
            live: Arc::new(Live { event, raw }),
            done,
        };
        self.inner
            .writes
            .try_send(job)
            .map_err(|_| Reject::new(Prefix::RateLimited, "the relay is busy; try again shortly"))?;
        let outcome = answer
            .await
            .map_err(|_| Reject::new(Prefix::Error, "the relay is shutting down"))??;
        match outcome {
            SaveOutcome::Saved => Ok(Published::Saved),
            SaveOutcome::Duplicate => Ok(Published::Duplicate),
            SaveOutcome::Outdated => Err(Reject::new(
                Prefix::Duplicate,
                "a newer version of this event is stored",
            )),
            SaveOutcome::Deleted => Err(Reject::new(Prefix::Blocked, "its author deleted this event")),
        }
    }

    /// Stored events matching one filter, newest first, as served.
    pub async fn query(&self, q: &EventQuery, readers: &[PublicKey]) -> Result<Vec<String>, Reject> {
        self.inner
            .store
            .nostr_query(q, &self.readers(readers), now_secs())
            .await
            .map_err(store_failed)
    }

    /// How many stored events match any of the filters (NIP-45).
    pub async fn count(&self, qs: &[EventQuery], readers: &[PublicKey]) -> Result<u64, Reject> {
        self.inner
            .store
            .nostr_count(qs, &self.readers(readers), now_secs())
            .await
            .map_err(store_failed)
    }

    fn readers(&self, authed: &[PublicKey]) -> Readers {
        Readers {
            private_kinds: vec![i64::from(GIFT_WRAP)],
            pubkeys: authed.iter().map(|pk| pk.to_hex()).collect(),
        }
    }

    /// Whether a reader authenticated as `authed` may see a live event: gift wraps only to
    /// their recipient, events of private groups only to members.
    pub async fn visible(&self, event: &Event, authed: &[PublicKey]) -> bool {
        if event.kind.as_u16() == GIFT_WRAP && !event.tags.public_keys().any(|pk| authed.contains(pk)) {
            return false;
        }
        match groups::group_of(event) {
            None => true,
            Some(group) => {
                let keys: Vec<String> = authed.iter().map(|pk| pk.to_hex()).collect();
                self.inner
                    .store
                    .nostr_group_readable(&group, &keys)
                    .await
                    .unwrap_or(false)
            }
        }
    }
}

/// A connection place, given back when dropped.
pub struct Admission {
    relay: Relay,
    ip: IpAddr,
}

impl Admission {
    /// The relay this place is on.
    pub fn relay(&self) -> &Relay {
        &self.relay
    }
    /// The connection's address.
    pub fn ip(&self) -> IpAddr {
        self.ip
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.relay.inner.stats.connections.fetch_sub(1, Ordering::Relaxed);
        if let Ok(mut open) = self.relay.inner.connections.lock() {
            if let Some(n) = open.get_mut(&self.ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.remove(&self.ip);
                }
            }
        }
    }
}

fn now_secs() -> i64 {
    filter::clamp_secs(Timestamp::now().as_secs())
}

pub(crate) fn store_failed(e: flash_store::StoreError) -> Reject {
    tracing::error!(error = %e, "relay storage failed");
    Reject::new(Prefix::Error, "could not reach storage; try again")
}

/// Commits queued events in batches, sends the saved ones to live subscribers and answers
/// each publisher with its own event's outcome: an event the store cannot keep fails alone.
/// Ends when the relay is dropped.
async fn write_loop(store: Store, fanout: Fanout, stats: Arc<RelayStats>, mut jobs: mpsc::Receiver<WriteJob>) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while jobs.recv_many(&mut batch, BATCH_MAX).await > 0 {
        let (events, waiters): (Vec<NewEvent>, Vec<_>) = batch.drain(..).map(|j| (j.event, (j.live, j.done))).unzip();
        let outcomes = store.nostr_save(&events).await;
        for ((live_event, done), outcome) in waiters.into_iter().zip(outcomes) {
            if outcome.as_ref().is_ok_and(|o| *o == SaveOutcome::Saved) {
                stats.saved.fetch_add(1, Ordering::Relaxed);
                fanout.send(live_event).await;
            }
            let _ = done.send(outcome.map_err(store_failed));
        }
    }
}

/// Purges expired events and forgets idle rate-limit entries, while the relay lives.
async fn housekeeping(relay: std::sync::Weak<Inner>) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_EVERY);
    loop {
        tick.tick().await;
        let Some(inner) = relay.upgrade() else { return };
        if let Err(e) = inner.store.nostr_purge_expired(now_secs()).await {
            tracing::warn!(error = %e, "purging expired events failed");
        }
        inner.per_ip.retain_recent();
        inner.per_pubkey.retain_recent();
    }
}
