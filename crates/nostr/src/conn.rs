//! One client connection's side of the protocol: its subscriptions, its AUTH state and its
//! limits. Transport-free: the websocket layer hands it text and live events, and sends what
//! it answers. A published event is handed back as a [`Publishing`], free of the connection,
//! so the transport can await its commit while it goes on reading and forwarding live events.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use governor::{DefaultDirectRateLimiter, RateLimiter};
use nostr::{Event, Filter, Kind, PublicKey, TagKind, Timestamp};
use rand::RngCore;

use crate::filter;
use crate::protocol::{self, ClientMessage, Prefix, Reject, Unreadable};
use crate::relay::{per_minute, Admission, Live, Published, Relay, Sender};

/// How far an AUTH event's `created_at` may be from now, seconds (NIP-42 suggests ten
/// minutes).
const AUTH_WINDOW_SECS: u64 = 600;

/// What one message from the client asks of the transport.
pub enum Step {
    /// Messages to send now.
    Reply(Vec<String>),
    /// A published event on its way to the store; [`Publishing::finish`] gives its `OK`.
    Publish(Box<Publishing>),
}

/// An event a client published, checked against the connection's own limits, on its way to
/// the store. Owns what it needs, so it runs beside the connection's other work.
pub struct Publishing {
    relay: Relay,
    event: Event,
    ip: IpAddr,
    authed: Vec<PublicKey>,
}

impl Publishing {
    /// Publishes the event and answers with its `OK` (once committed, for a stored event).
    pub async fn finish(self) -> String {
        let id = self.event.id.to_hex();
        let from = Sender {
            ip: Some(self.ip),
            authed: &self.authed,
        };
        match self.relay.publish(self.event, &from).await {
            Ok(Published::Saved | Published::Relayed) => protocol::ok(&id, Ok(())),
            Ok(Published::Duplicate) => protocol::ok_with(&id, "duplicate: already have this event"),
            Err(reject) => protocol::ok(&id, Err(&reject)),
        }
    }
}

/// A client connection.
pub struct Connection {
    relay: Relay,
    admission: Admission,
    challenge: String,
    authed: Vec<PublicKey>,
    subs: HashMap<String, Vec<Filter>>,
    events: DefaultDirectRateLimiter,
    reqs: DefaultDirectRateLimiter,
}

impl Connection {
    /// A new connection on an admitted place. The first message to send is
    /// [`Connection::greeting`].
    pub fn new(admission: Admission) -> Connection {
        let relay = admission.relay().clone();
        let mut challenge = [0u8; 16];
        rand::thread_rng().fill_bytes(&mut challenge);
        let cfg = relay.config();
        Connection {
            events: RateLimiter::direct(per_minute(cfg.events_per_minute)),
            reqs: RateLimiter::direct(per_minute(cfg.reqs_per_minute)),
            challenge: challenge.iter().map(|b| format!("{b:02x}")).collect(),
            authed: vec![],
            subs: HashMap::new(),
            relay,
            admission,
        }
    }

    /// The NIP-42 challenge, sent when the connection opens.
    pub fn greeting(&self) -> String {
        protocol::auth(&self.challenge)
    }

    /// The pubkeys this connection authenticated as.
    pub fn authed(&self) -> &[PublicKey] {
        &self.authed
    }

    /// Open subscriptions.
    pub fn subscriptions(&self) -> usize {
        self.subs.len()
    }

    /// Answers one text message from the client, a published event's `OK` included (awaited
    /// here: a transport that must go on meanwhile uses [`Connection::on_message`]).
    pub async fn on_text(&mut self, text: &str) -> Vec<String> {
        match self.on_message(text).await {
            Step::Reply(replies) => replies,
            Step::Publish(publishing) => vec![publishing.finish().await],
        }
    }

    /// Takes one text message from the client: its answers, or the event it publishes.
    pub async fn on_message(&mut self, text: &str) -> Step {
        let max = self.relay.config().max_message_bytes;
        if text.len() > max {
            let reject = Reject::invalid(format!("messages are at most {max} bytes"));
            return Step::Reply(vec![match claimed_event_id(text) {
                Some(id) => protocol::ok(id, Err(&reject)),
                None => protocol::notice(&reject),
            }]);
        }
        let msg = match protocol::parse(text, self.relay.config().max_subid_length) {
            Ok(msg) => msg,
            Err(Unreadable::Notice(r)) => return Step::Reply(vec![protocol::notice(&r)]),
            Err(Unreadable::Event { id, reject }) => return Step::Reply(vec![protocol::ok(&id, Err(&reject))]),
            Err(Unreadable::Subscription { id, reject }) => return Step::Reply(vec![protocol::closed(&id, &reject)]),
        };
        Step::Reply(match msg {
            ClientMessage::Event(event) => return self.on_event(*event),
            ClientMessage::Req { id, filters } => self.on_req(id, filters).await,
            ClientMessage::Count { id, filters } => vec![self.on_count(&id, &filters).await],
            ClientMessage::Close(id) => {
                self.subs.remove(&id);
                vec![]
            }
            ClientMessage::Auth(event) => vec![self.on_auth(&event)],
        })
    }

    fn on_event(&mut self, event: Event) -> Step {
        if self.events.check().is_err() {
            let reject = Reject::new(Prefix::RateLimited, "this connection publishes too fast");
            return Step::Reply(vec![protocol::ok(&event.id.to_hex(), Err(&reject))]);
        }
        Step::Publish(Box::new(Publishing {
            relay: self.relay.clone(),
            event,
            ip: self.admission.ip(),
            authed: self.authed.clone(),
        }))
    }

    /// Checks what every REQ and COUNT must pass.
    fn check_query(&self, filters: &[Filter]) -> Result<(), Reject> {
        let cfg = self.relay.config();
        if self.reqs.check().is_err() {
            return Err(Reject::new(Prefix::RateLimited, "this connection queries too fast"));
        }
        if cfg.auth_required && self.authed.is_empty() {
            return Err(Reject::new(
                Prefix::AuthRequired,
                "this relay serves authenticated clients only",
            ));
        }
        if filters.len() > cfg.max_filters {
            return Err(Reject::invalid(format!(
                "at most {} filters per request",
                cfg.max_filters
            )));
        }
        for f in filters {
            filter::check(f, cfg.max_filter_values)?;
        }
        if self.authed.is_empty() && filter::asks_for_gift_wraps(filters) {
            return Err(Reject::new(
                Prefix::AuthRequired,
                "gift wraps are served only to their recipient: authenticate first",
            ));
        }
        self.relay
            .stats()
            .queries
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(())
    }

    async fn on_req(&mut self, id: String, filters: Vec<Filter>) -> Vec<String> {
        if let Err(r) = self.check_query(&filters) {
            return vec![protocol::closed(&id, &r)];
        }
        let max = self.relay.config().max_subscriptions;
        if self.subs.len() >= max && !self.subs.contains_key(&id) {
            let reject = Reject::new(Prefix::RateLimited, format!("at most {max} open subscriptions"));
            return vec![protocol::closed(&id, &reject)];
        }
        let max_limit = self.relay.config().max_limit;
        let mut out = vec![];
        let mut seen = std::collections::HashSet::new();
        for f in &filters {
            let q = filter::query(f, max_limit);
            if q.limit == 0 {
                continue;
            }
            match self.relay.query(&q, &self.authed).await {
                Ok(events) => {
                    for raw in events {
                        if seen.insert(raw.clone()) {
                            out.push(protocol::event(&id, &raw));
                        }
                    }
                }
                Err(r) => return vec![protocol::closed(&id, &r)],
            }
        }
        out.push(protocol::eose(&id));
        self.subs.insert(id, filters);
        out
    }

    async fn on_count(&mut self, id: &str, filters: &[Filter]) -> String {
        if let Err(r) = self.check_query(filters) {
            return protocol::closed(id, &r);
        }
        let qs: Vec<_> = filters.iter().map(|f| filter::query(f, u64::MAX)).collect();
        match self.relay.count(&qs, &self.authed).await {
            Ok(n) => protocol::count(id, n),
            Err(r) => protocol::closed(id, &r),
        }
    }

    fn on_auth(&mut self, event: &Event) -> String {
        let id = event.id.to_hex();
        match self.check_auth(event) {
            Ok(()) => {
                if !self.authed.contains(&event.pubkey) {
                    self.authed.push(event.pubkey);
                }
                protocol::ok(&id, Ok(()))
            }
            Err(r) => protocol::ok(&id, Err(&r)),
        }
    }

    /// NIP-42: a kind-22242 event, signed, recent, naming our challenge and this relay.
    fn check_auth(&self, event: &Event) -> Result<(), Reject> {
        if event.kind != Kind::Authentication {
            return Err(Reject::invalid("AUTH takes a kind 22242 event"));
        }
        if event.verify().is_err() {
            return Err(Reject::invalid("bad id or signature"));
        }
        let now = Timestamp::now().as_secs();
        if event.created_at.as_secs().abs_diff(now) > AUTH_WINDOW_SECS {
            return Err(Reject::invalid("created_at is not within ten minutes of now"));
        }
        let tag = |name: &str| {
            event
                .tags
                .find(TagKind::custom(name))
                .and_then(|t| t.content())
                .map(str::to_string)
        };
        if tag("challenge").as_deref() != Some(self.challenge.as_str()) {
            return Err(Reject::invalid("the challenge does not match"));
        }
        let named = tag("relay").and_then(|u| url::Url::parse(&u).ok());
        if let Some(ours) = self.relay.url() {
            let same = named.is_some_and(|u| {
                u.host_str() == ours.host_str() && u.port_or_known_default() == ours.port_or_known_default()
            });
            if !same {
                return Err(Reject::invalid(format!("the relay tag must name {ours}")));
            }
        }
        Ok(())
    }

    /// What a live event means for this connection's subscriptions: one EVENT per match.
    pub async fn on_live(&self, live: &Arc<Live>) -> Vec<String> {
        let matched: Vec<String> = self
            .subs
            .iter()
            .filter(|(_, filters)| filters.iter().any(|f| filter::matches(f, &live.event)))
            .map(|(id, _)| protocol::event(id, &live.raw))
            .collect();
        if matched.is_empty() || !self.relay.visible(&live.event, &self.authed).await {
            return vec![];
        }
        matched
    }

    /// A NOTICE that `n` live events were missed because the client reads too slowly; none
    /// for a connection without subscriptions, which missed nothing it asked for.
    pub fn missed(&self, n: u64) -> Option<String> {
        (!self.subs.is_empty()).then(|| {
            protocol::notice(&Reject::new(
                Prefix::Error,
                format!("{n} live events were dropped because this connection reads too slowly"),
            ))
        })
    }
}

/// The id an oversized EVENT claims, read without parsing it, to answer with `OK`.
fn claimed_event_id(text: &str) -> Option<&str> {
    let head = text.get(..64).unwrap_or(text);
    if !head.trim_start().starts_with("[") || !head.contains("\"EVENT\"") {
        return None;
    }
    let at = text.find("\"id\"")? + 4;
    let rest = text
        .get(at..)?
        .trim_start()
        .strip_prefix(':')?
        .trim_start()
        .strip_prefix('"')?;
    let id = rest.get(..64)?;
    id.bytes().all(|b| b.is_ascii_hexdigit()).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_oversized_event_is_answered_by_its_id() {
        let id = "a".repeat(64);
        let text = format!("[\"EVENT\",{{\"id\": \"{id}\",\"content\":\"{}\"}}]", "x".repeat(100));
        assert_eq!(claimed_event_id(&text), Some(id.as_str()));
        assert_eq!(claimed_event_id("[\"REQ\",\"s\",{}]"), None);
        assert_eq!(claimed_event_id("[\"EVENT\",{\"id\":\"short\"}]"), None);
    }
}
