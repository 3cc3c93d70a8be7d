//! Private messages over several NOSTR relays (NIP-17): each message is a kind-14 rumor, sealed
//! and gift-wrapped (NIP-59) once for the receiver and once for the sender's own copy, and
//! published to the receiver's DM relays (their kind-10050 list, else the user's own relays)
//! and the user's own. Reads ask every relay and keep each message once (by its rumor id).
//! A relay that refuses or is down gets the wrap later: it waits in the local database's
//! outbox, which every send and read retries, so no message is lost to a relay outage.
//!
//! NIP-42 AUTH is answered with the user's key, as the relays that serve gift wraps only to
//! their recipient (Flash's does) require.

use std::collections::BTreeSet;
use std::time::Duration;

use nostr_sdk::prelude::{
    Client, Event, EventBuilder, EventId, Filter, JsonUtil, Keys, Kind, PublicKey, RelayUrl, Tag, TagKind, Timestamp,
    UnsignedEvent, UnwrappedGift,
};

use flash_core::destination::{Destination, PaymentTarget};

use crate::local::{LocalError, LocalMessage, LocalStore};

/// How long a relay may take to connect, and to answer a query (messages, groups, backups).
pub(crate) const RELAY_WAIT: Duration = Duration::from_secs(5);
/// How far back a gift wrap's `created_at` may be set (NIP-59 randomises it up to two days):
/// reads look this far behind the newest wrap already read.
const WRAP_JITTER_SECS: u64 = 2 * 24 * 60 * 60;
/// The sync stream of gift wraps (the newest wrap's `created_at` read so far).
const WRAPS_STREAM: &str = "gift-wraps";

/// Why a message could not be sent or read.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// A relay URL that is not one.
    #[error("not a relay URL: {0}")]
    BadRelay(String),
    /// No relay took the message; it waits in the outbox.
    #[error("no relay took the message (it will be sent again): {0}")]
    NotSent(String),
    /// Building, signing or reading an event failed.
    #[error("NOSTR: {0}")]
    Nostr(String),
    /// The local database failed.
    #[error(transparent)]
    Local(#[from] LocalError),
}

/// What a read did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReadReport {
    /// Gift wraps the relays returned (each once, whatever relay it came from).
    pub wraps: usize,
    /// Of those, messages new here.
    pub new_messages: usize,
    /// Wraps that were not a valid message to the user (bad seal, forged author), skipped.
    pub rejected: usize,
    /// Wraps from the outbox that reached their relay this time.
    pub resent: usize,
}

/// The user's messenger: their key and their relays.
#[derive(Debug, Clone)]
pub struct Messenger {
    client: Client,
    keys: Keys,
    relays: Vec<RelayUrl>,
}

impl Messenger {
    /// Connects to `relays` (those down are retried in the background) with the user's key,
    /// answering NIP-42 AUTH with it.
    pub async fn connect(keys: Keys, relays: &[String]) -> Result<Messenger, ChatError> {
        let client = Client::builder().signer(keys.clone()).build();
        client.automatic_authentication(true);
        let mut urls = Vec::new();
        for relay in relays {
            let url = RelayUrl::parse(relay).map_err(|_| ChatError::BadRelay(relay.clone()))?;
            client.add_relay(url.clone()).await.map_err(nostr)?;
            urls.push(url);
        }
        client.connect().await;
        client.wait_for_connection(RELAY_WAIT).await;
        Ok(Messenger {
            client,
            keys,
            relays: urls,
        })
    }

    /// The user's public key.
    pub fn public_key(&self) -> PublicKey {
        self.keys.public_key()
    }

    /// The user's keys, to sign with.
    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// The relay pool.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// Publishes the user's relay lists: NIP-65 (kind 10002, read and write) and NIP-17's DM
    /// relays (kind 10050), both naming the messenger's relays.
    pub async fn publish_relay_lists(&self) -> Result<(), ChatError> {
        let nip65 = EventBuilder::relay_list(self.relays.iter().map(|url| (url.clone(), None)));
        let dm = EventBuilder::new(Kind::InboxRelays, "").tags(self.relays.iter().map(|url| Tag::relay(url.clone())));
        for builder in [nip65, dm] {
            let event = builder.sign_with_keys(&self.keys).map_err(nostr)?;
            self.client.send_event(&event).await.map_err(nostr)?;
        }
        Ok(())
    }

    /// Where `peer` reads private messages: their newest kind-10050 list on the messenger's
    /// relays, else the messenger's own relays.
    pub async fn dm_relays_of(&self, peer: PublicKey) -> Result<Vec<RelayUrl>, ChatError> {
        let filter = Filter::new().author(peer).kind(Kind::InboxRelays).limit(1);
        let lists = self.client.fetch_events(filter, RELAY_WAIT).await.map_err(nostr)?;
        let listed: Vec<RelayUrl> = lists
            .iter()
            .max_by_key(|e| e.created_at)
            .map(|e| {
                e.tags
                    .iter()
                    .filter(|t| t.kind() == TagKind::Relay)
                    .filter_map(|t| t.content().and_then(|u| RelayUrl::parse(u).ok()))
                    .collect()
            })
            .unwrap_or_default();
        Ok(if listed.is_empty() { self.relays.clone() } else { listed })
    }

    /// Sends `text` to `peer`: the receiver's wrap to their DM relays, the user's own copy to
    /// the user's relays. Stored locally at once; wraps a relay did not take wait in the
    /// outbox. Fails only when no relay at all took the receiver's wrap (it still waits).
    pub async fn send(&self, store: &mut LocalStore, peer: PublicKey, text: &str) -> Result<LocalMessage, ChatError> {
        let mut rumor: UnsignedEvent = EventBuilder::private_msg_rumor(peer, text).build(self.public_key());
        rumor.ensure_id();
        let rumor_id = rumor.id.map(|id| id.to_hex()).unwrap_or_default();
        let to_peer = EventBuilder::gift_wrap(&self.keys, &peer, rumor.clone(), [])
            .await
            .map_err(nostr)?;
        let to_self = EventBuilder::gift_wrap(&self.keys, &self.public_key(), rumor.clone(), [])
            .await
            .map_err(nostr)?;
        let message = LocalMessage {
            id: rumor_id,
            peer: peer.to_hex(),
            author: self.public_key().to_hex(),
            created_at: i64::try_from(rumor.created_at.as_secs()).unwrap_or(i64::MAX),
            content: text.to_owned(),
        };
        store.save_message(&message)?;
        // With no relay answering, the wraps go to the user's relays' outbox all the same.
        let peer_relays = self.dm_relays_of(peer).await.unwrap_or_else(|_| self.relays.clone());
        let took = self.publish(store, &to_peer, &peer_relays).await?;
        self.publish(store, &to_self, &self.relays).await?;
        if took == 0 {
            return Err(ChatError::NotSent(format!(
                "{} relays down or refusing",
                peer_relays.len()
            )));
        }
        Ok(message)
    }

    /// Publishes `event` to each of `relays` (connecting to any not yet known); those that do
    /// not take it get it in the outbox. How many took it.
    async fn publish(&self, store: &mut LocalStore, event: &Event, relays: &[RelayUrl]) -> Result<usize, ChatError> {
        let mut took = 0;
        for url in relays {
            if self.send_to(url, event).await {
                took += 1;
            } else {
                store.outbox_add(&event.id.to_hex(), url.as_str(), &event.as_json())?;
            }
        }
        Ok(took)
    }

    /// Sends `event` to one relay; whether it took it.
    async fn send_to(&self, url: &RelayUrl, event: &Event) -> bool {
        if !self.connect_now(url).await {
            return false;
        }
        match self.client.send_event_to([url.clone()], event).await {
            Ok(output) => output.success.contains(url),
            Err(_) => false,
        }
    }

    /// Connects to `url` (adding it to the pool) and whether it is connected: a relay that is
    /// not connected is tried at once rather than at its next scheduled reconnection.
    pub(crate) async fn connect_now(&self, url: &RelayUrl) -> bool {
        if self.client.add_relay(url.clone()).await.is_err() {
            return false;
        }
        let Ok(relay) = self.client.relay(url.clone()).await else {
            return false;
        };
        if !relay.is_connected() {
            relay.disconnect();
            if relay.try_connect(RELAY_WAIT).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Sends what waits in the outbox again; how many wraps reached their relay.
    pub async fn resend(&self, store: &mut LocalStore) -> Result<usize, ChatError> {
        let mut sent = 0;
        for (event_id, relay, json) in store.outbox()? {
            let (Ok(url), Ok(event)) = (RelayUrl::parse(&relay), Event::from_json(&json)) else {
                store.outbox_done(&event_id, &relay)?;
                continue;
            };
            if self.send_to(&url, &event).await {
                store.outbox_done(&event_id, &relay)?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// Reads the user's gift wraps from every relay since the last read (less NIP-59's
    /// two-day jitter), keeps each valid message once, and sends the outbox again.
    pub async fn read(&self, store: &mut LocalStore) -> Result<ReadReport, ChatError> {
        let mut report = ReadReport {
            resent: self.resend(store).await?,
            ..ReadReport::default()
        };
        let since = store
            .marker(WRAPS_STREAM)?
            .and_then(|m| m.parse::<u64>().ok())
            .map(|newest| Timestamp::from(newest.saturating_sub(WRAP_JITTER_SECS)));
        let mut filter = Filter::new().kind(Kind::GiftWrap).pubkey(self.public_key());
        if let Some(since) = since {
            filter = filter.since(since);
        }
        let wraps = self.client.fetch_events(filter, RELAY_WAIT).await.map_err(nostr)?;
        let mut newest = None;
        for wrap in wraps.iter() {
            report.wraps += 1;
            newest = newest.max(Some(wrap.created_at.as_secs()));
            match self.open(wrap).await {
                Some(message) => {
                    if store.save_message(&message)? {
                        report.new_messages += 1;
                    }
                }
                None => report.rejected += 1,
            }
        }
        if let Some(newest) = newest {
            store.set_marker(WRAPS_STREAM, &newest.to_string())?;
        }
        Ok(report)
    }

    /// The message in a gift wrap to the user, if it is one: the seal must open with the
    /// user's key, the rumor be a kind-14 message by the seal's signer (NIP-17: a rumor's
    /// author is only believed when it signed the seal), and name its other party.
    async fn open(&self, wrap: &Event) -> Option<LocalMessage> {
        let gift = UnwrappedGift::from_gift_wrap(&self.keys, wrap).await.ok()?;
        let mut rumor = gift.rumor;
        if rumor.kind != Kind::PrivateDirectMessage || rumor.pubkey != gift.sender {
            return None;
        }
        rumor.ensure_id();
        let me = self.public_key();
        let named: BTreeSet<PublicKey> = rumor.tags.public_keys().copied().collect();
        let peer = if gift.sender == me {
            *named.iter().find(|p| **p != me).or(named.first())?
        } else {
            if !named.contains(&me) {
                return None;
            }
            gift.sender
        };
        Some(LocalMessage {
            id: rumor.id?.to_hex(),
            peer: peer.to_hex(),
            author: gift.sender.to_hex(),
            created_at: i64::try_from(rumor.created_at.as_secs()).unwrap_or(i64::MAX),
            content: rumor.content,
        })
    }

    /// Disconnects from every relay.
    pub async fn shutdown(&self) {
        self.client.shutdown().await;
    }
}

/// The payment request a message carries, as written, if it carries one: a BOLT11 invoice
/// (`lightning:` optional), a `bitcoin:` URI, or an LNURL-pay link. A bare username or
/// address in a sentence is not taken for one.
pub fn payment_request_in(text: &str) -> Option<String> {
    text.split_whitespace()
        .map(|word| word.trim_matches(|c: char| matches!(c, '<' | '>' | '(' | ')' | '"' | '\'' | ',' | '.')))
        .find(|word| {
            let lower = word.to_ascii_lowercase();
            let explicit = lower.starts_with("lightning:") || lower.starts_with("bitcoin:");
            match PaymentTarget::parse(word) {
                Ok(t) => match t.destination {
                    Destination::Invoice(_) | Destination::Lnurl(_) => true,
                    Destination::OnchainAddress(_) | Destination::LightningAddress(_) => explicit,
                    _ => false,
                },
                Err(_) => false,
            }
        })
        .map(str::to_owned)
}

/// The newest payment request `peer` (hex public key) sent the user in the conversation kept
/// locally, if any ([`payment_request_in`]).
pub fn latest_payment_request(store: &LocalStore, peer: &str) -> Result<Option<LocalMessage>, LocalError> {
    Ok(store
        .conversation(peer, 200)?
        .into_iter()
        .rev()
        .find(|m| m.author == peer && payment_request_in(&m.content).is_some()))
}

/// Reads an event id written as 64 hex digits (or a `note1…`).
pub fn event_id(text: &str) -> Result<EventId, ChatError> {
    EventId::parse(text.trim()).map_err(|_| ChatError::Nostr(format!("not an event id: {text}")))
}

/// A NOSTR library error, as text.
fn nostr(e: impl std::fmt::Display) -> ChatError {
    ChatError::Nostr(e.to_string())
}

#[cfg(test)]
mod tests {
    use super::payment_request_in;

    /// The BOLT11 specification's example invoice.
    const INVOICE: &str = "lnbc2500u1pvjluezpp5qqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqqqsyqcyq5rqwzqfqypqdq5xysxxatsyp3k7enxv4jsxqzpuaztrnwngzn3kdzw5hydlzf03qdgm2hdq27cqv3agm2awhz5se903vruatfhq77w3ls4evs3ch9zw97j25emudupq63nyw24cg27h2rspfj9srp";

    #[test]
    fn payment_requests_are_found_in_messages() {
        assert_eq!(
            payment_request_in(&format!("Here is the bill: {INVOICE}. Thanks!")).as_deref(),
            Some(INVOICE)
        );
        assert_eq!(
            payment_request_in(&format!("pay <lightning:{INVOICE}>")).as_deref(),
            Some(format!("lightning:{INVOICE}").as_str())
        );
        let uri = "bitcoin:bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4?amount=0.001";
        assert_eq!(payment_request_in(&format!("on-chain: {uri}")).as_deref(), Some(uri));
        // Words, usernames and bare addresses in a sentence are not requests.
        for text in [
            "see you at alice@example.com tomorrow",
            "thanks bob",
            "",
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
        ] {
            assert_eq!(payment_request_in(text), None, "{text}");
        }
    }
}
