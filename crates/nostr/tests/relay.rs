//! The relay's protocol on both stores, driven through [`Connection`] as the websocket layer
//! drives it: NIP-01 publish/query/live, replaceable and addressable versions, NIP-09
//! deletion, NIP-40 expiry, NIP-42 AUTH, NIP-45 COUNT, NIP-50 search, NIP-59 gift wraps to
//! their recipient only, NIP-70 protected events, and every policy refusal with its prefix.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use flash_core::AccountLevel;
use flash_nostr::{Connection, Live, Published, Relay, RelayConfig, Sender, WritePolicy};
use flash_store::testing::Backend;
use flash_store::{NewUser, Store};
use nostr::prelude::*;
use serde_json::{json, Value};
use tokio::sync::broadcast;

flash_store::on_both_backends!(
    published_events_are_served_and_sent_live,
    replaceable_and_addressable_events_keep_the_newest_version,
    authors_delete_their_own_events_for_good,
    expired_events_are_refused_and_stop_being_served,
    auth_checks_challenge_relay_and_signature,
    gift_wraps_reach_only_their_recipient,
    protected_events_need_their_author_authenticated,
    count_and_search_answer_from_the_store,
    malformed_messages_get_prefixed_refusals,
    subscription_and_rate_limits_hold,
    write_policy_users_admits_flash_users_and_their_mail,
    proof_of_work_and_time_window_are_enforced,
    groups_enforce_membership_roles_and_privacy,
    groups_check_timeline_references_and_late_publication,
    nul_in_content_is_kept_and_fails_no_neighbour,
    a_thousand_word_search_is_capped,
);

const URL: &str = "ws://relay.test";

async fn start_relay(backend: Backend, adjust: impl FnOnce(&mut RelayConfig)) -> (Relay, Store) {
    let store = flash_store::testing::fresh_store(backend).await;
    let mut config = RelayConfig::default();
    adjust(&mut config);
    (
        Relay::start(store.clone(), config, "http://relay.test", None, Keys::generate()),
        store,
    )
}

/// One client connection, with the live events it would be sent.
struct Client {
    conn: Connection,
    live: broadcast::Receiver<Arc<Live>>,
}

impl Client {
    fn open(relay: &Relay) -> Client {
        Self::open_from(relay, IpAddr::V4(Ipv4Addr::LOCALHOST))
    }

    fn open_from(relay: &Relay, ip: IpAddr) -> Client {
        let live = relay.live();
        let conn = Connection::new(relay.admit(ip).expect("admitted"));
        Client { conn, live }
    }

    fn challenge(&self) -> String {
        let greeting: Value = serde_json::from_str(&self.conn.greeting()).expect("json");
        assert_eq!(greeting[0], "AUTH");
        greeting[1].as_str().expect("challenge").to_string()
    }

    async fn send(&mut self, msg: Value) -> Vec<Value> {
        self.send_text(&msg.to_string()).await
    }

    async fn send_text(&mut self, text: &str) -> Vec<Value> {
        self.conn
            .on_text(text)
            .await
            .iter()
            .map(|m| serde_json::from_str(m).expect("relay messages are JSON"))
            .collect()
    }

    /// Publishes and returns the OK message.
    async fn publish(&mut self, event: &Event) -> Value {
        let mut out = self.send(json!(["EVENT", event])).await;
        assert_eq!(out.len(), 1, "{out:?}");
        let ok = out.remove(0);
        assert_eq!(ok[0], "OK", "{ok}");
        assert_eq!(ok[1], event.id.to_hex());
        ok
    }

    async fn accept(&mut self, event: &Event) {
        let ok = self.publish(event).await;
        assert_eq!(ok[2], true, "{ok}");
    }

    /// Subscribes and returns the stored events' ids, in the order served.
    async fn req(&mut self, sub: &str, filters: &[Value]) -> Vec<String> {
        let mut msg = vec![json!("REQ"), json!(sub)];
        msg.extend(filters.iter().cloned());
        let out = self.send(Value::Array(msg)).await;
        let (last, events) = out.split_last().expect("an answer");
        assert_eq!(*last, json!(["EOSE", sub]), "{out:?}");
        events
            .iter()
            .map(|e| {
                assert_eq!(e[0], "EVENT");
                assert_eq!(e[1], sub);
                e[2]["id"].as_str().expect("id").to_string()
            })
            .collect()
    }

    /// The live messages this connection would be sent now.
    async fn drain_live(&mut self) -> Vec<Value> {
        let mut out = vec![];
        while let Ok(live) = self.live.try_recv() {
            let sent = self.conn.on_live(&live).await;
            out.extend(sent.iter().map(|m| serde_json::from_str(m).expect("json")));
        }
        out
    }

    async fn authenticate(&mut self, keys: &Keys) -> Value {
        let challenge = self.challenge();
        let auth = EventBuilder::auth(challenge, RelayUrl::parse(URL).expect("url"))
            .sign_with_keys(keys)
            .expect("sign");
        let out = self.send(json!(["AUTH", auth])).await;
        out[0].clone()
    }
}

fn note(keys: &Keys, content: &str) -> Event {
    EventBuilder::text_note(content).sign_with_keys(keys).expect("sign")
}

fn at(builder: EventBuilder, secs: u64, keys: &Keys) -> Event {
    builder
        .custom_created_at(Timestamp::from(secs))
        .sign_with_keys(keys)
        .expect("sign")
}

fn prefix_of(msg: &Value, at: usize) -> String {
    let text = msg[at].as_str().unwrap_or_default();
    text.split(':').next().unwrap_or_default().to_string()
}

async fn published_events_are_served_and_sent_live(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let mut reader = Client::open(&relay);
    let mut writer = Client::open(&relay);
    let first = note(&alice, "hello");
    writer.accept(&first).await;
    let served = reader
        .req("feed", &[json!({"authors": [alice.public_key().to_hex()]})])
        .await;
    assert_eq!(served, vec![first.id.to_hex()]);
    let _ = reader.drain_live().await;

    // Live: an event matching the open subscription is sent; one that does not is not.
    let second = note(&alice, "again");
    writer.accept(&second).await;
    writer.accept(&note(&bob, "someone else")).await;
    let live = reader.drain_live().await;
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0][1], "feed");
    assert_eq!(live[0][2]["id"], second.id.to_hex());

    // A duplicate is acknowledged as such; CLOSE ends live delivery.
    let dup = writer.publish(&second).await;
    assert_eq!(dup[2], true);
    assert!(dup[3].as_str().unwrap_or_default().starts_with("duplicate:"), "{dup}");
    assert!(reader.send(json!(["CLOSE", "feed"])).await.is_empty());
    writer.accept(&note(&alice, "after close")).await;
    assert!(reader.drain_live().await.is_empty());

    // Newest first, limit respected, every filter field.
    let served = reader
        .req(
            "q",
            &[json!({"authors": [alice.public_key().to_hex()], "kinds": [1], "limit": 2})],
        )
        .await;
    assert_eq!(served.len(), 2);
    let served = reader.req("ids", &[json!({"ids": [first.id.to_hex()]})]).await;
    assert_eq!(served, vec![first.id.to_hex()]);
    let tagged = EventBuilder::text_note("reply")
        .tag(Tag::event(first.id))
        .tag(Tag::public_key(bob.public_key()))
        .sign_with_keys(&alice)
        .expect("sign");
    writer.accept(&tagged).await;
    let served = reader
        .req(
            "tags",
            &[json!({"#e": [first.id.to_hex()], "#p": [bob.public_key().to_hex()]})],
        )
        .await;
    assert_eq!(served, vec![tagged.id.to_hex()]);
    let old = at(EventBuilder::text_note("old"), 1_000_000, &alice);
    writer.accept(&old).await;
    let served = reader
        .req("window", &[json!({"since": 999_999, "until": 1_000_001})])
        .await;
    assert_eq!(served, vec![old.id.to_hex()]);
    // Two filters: their union, each event once.
    let served = reader
        .req(
            "union",
            &[
                json!({"ids": [old.id.to_hex()]}),
                json!({"since": 999_999, "until": 1_000_001}),
            ],
        )
        .await;
    assert_eq!(served, vec![old.id.to_hex()]);
    let served = reader.req("none", &[json!({"kinds": [1], "limit": 0})]).await;
    assert!(served.is_empty());
}

async fn replaceable_and_addressable_events_keep_the_newest_version(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let alice = Keys::generate();
    let mut c = Client::open(&relay);
    let now = Timestamp::now().as_secs();
    let profile = |name: &str, secs: u64| {
        at(
            EventBuilder::new(Kind::Metadata, json!({ "name": name }).to_string()),
            secs,
            &alice,
        )
    };
    let (older, newer) = (profile("old", now - 100), profile("new", now - 10));
    c.accept(&newer).await;
    let refused = c.publish(&older).await;
    assert_eq!(refused[2], false);
    assert_eq!(prefix_of(&refused, 3), "duplicate");
    let kind0 = json!({"kinds": [0], "authors": [alice.public_key().to_hex()]});
    assert_eq!(c.req("p", std::slice::from_ref(&kind0)).await, vec![newer.id.to_hex()]);
    let newest = profile("newest", now - 1);
    c.accept(&newest).await;
    assert_eq!(c.req("p", &[kind0]).await, vec![newest.id.to_hex()]);

    // NIP-02 contact lists are replaceable too.
    let contacts = |secs| {
        at(
            EventBuilder::new(Kind::ContactList, "").tag(Tag::public_key(Keys::generate().public_key())),
            secs,
            &alice,
        )
    };
    c.accept(&contacts(now - 5)).await;
    let latest = contacts(now - 4);
    c.accept(&latest).await;
    let served = c
        .req("c", &[json!({"kinds": [3], "authors": [alice.public_key().to_hex()]})])
        .await;
    assert_eq!(served, vec![latest.id.to_hex()]);

    // Addressable: one version per `d`.
    let article = |d: &str, body: &str, secs| {
        at(
            EventBuilder::new(Kind::LongFormTextNote, body).tag(Tag::identifier(d)),
            secs,
            &alice,
        )
    };
    let a1 = article("one", "v1", now - 50);
    let b1 = article("two", "v1", now - 50);
    let a2 = article("one", "v2", now - 40);
    for e in [&a1, &b1, &a2] {
        c.accept(e).await;
    }
    let mut served = c
        .req(
            "a",
            &[json!({"kinds": [30023], "authors": [alice.public_key().to_hex()]})],
        )
        .await;
    served.sort();
    let mut expected = vec![a2.id.to_hex(), b1.id.to_hex()];
    expected.sort();
    assert_eq!(served, expected);
    let served = c.req("d", &[json!({"kinds": [30023], "#d": ["one"]})]).await;
    assert_eq!(served, vec![a2.id.to_hex()]);
}

async fn authors_delete_their_own_events_for_good(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let (alice, mallory) = (Keys::generate(), Keys::generate());
    let mut c = Client::open(&relay);
    let doomed = note(&alice, "regret");
    let kept = note(&alice, "keep");
    c.accept(&doomed).await;
    c.accept(&kept).await;

    // Someone else's deletion request deletes nothing.
    let forged = EventBuilder::delete(EventDeletionRequest::new().id(doomed.id))
        .sign_with_keys(&mallory)
        .expect("sign");
    c.accept(&forged).await;
    let mine = json!({"kinds": [1], "authors": [alice.public_key().to_hex()]});
    assert_eq!(c.req("s", std::slice::from_ref(&mine)).await.len(), 2);

    let deletion = EventBuilder::delete(EventDeletionRequest::new().id(doomed.id))
        .sign_with_keys(&alice)
        .expect("sign");
    c.accept(&deletion).await;
    assert_eq!(c.req("s", std::slice::from_ref(&mine)).await, vec![kept.id.to_hex()]);
    // The request itself is served, and the deleted event is not accepted again.
    assert_eq!(
        c.req("k5", &[json!({"kinds": [5], "authors": [alice.public_key().to_hex()]})])
            .await,
        vec![deletion.id.to_hex()]
    );
    let again = c.publish(&doomed).await;
    assert_eq!(again[2], false);
    assert_eq!(prefix_of(&again, 3), "blocked");

    // An address: versions up to the request's time go; a later version is accepted.
    let now = Timestamp::now().as_secs();
    let old = at(
        EventBuilder::new(Kind::LongFormTextNote, "v1").tag(Tag::identifier("post")),
        now - 30,
        &alice,
    );
    c.accept(&old).await;
    let coordinate = Coordinate::new(Kind::LongFormTextNote, alice.public_key()).identifier("post");
    let by_address = at(
        EventBuilder::delete(EventDeletionRequest::new().coordinate(coordinate)),
        now - 20,
        &alice,
    );
    c.accept(&by_address).await;
    assert!(c.req("a", &[json!({"kinds": [30023]})]).await.is_empty());
    let refused = c
        .publish(&at(
            EventBuilder::new(Kind::LongFormTextNote, "v1b").tag(Tag::identifier("post")),
            now - 25,
            &alice,
        ))
        .await;
    assert_eq!(refused[2], false, "{refused}");
    let later = at(
        EventBuilder::new(Kind::LongFormTextNote, "v2").tag(Tag::identifier("post")),
        now - 10,
        &alice,
    );
    c.accept(&later).await;
    assert_eq!(c.req("a", &[json!({"kinds": [30023]})]).await, vec![later.id.to_hex()]);
}

async fn expired_events_are_refused_and_stop_being_served(backend: Backend) {
    let (relay, store) = start_relay(backend, |_| {}).await;
    let alice = Keys::generate();
    let mut c = Client::open(&relay);
    let now = Timestamp::now().as_secs();
    let expired = EventBuilder::text_note("gone")
        .tag(Tag::expiration(Timestamp::from(now - 1)))
        .sign_with_keys(&alice)
        .expect("sign");
    let refused = c.publish(&expired).await;
    assert_eq!(refused[2], false);
    assert_eq!(prefix_of(&refused, 3), "invalid");

    let soon = EventBuilder::text_note("brief")
        .tag(Tag::expiration(Timestamp::from(now + 2)))
        .sign_with_keys(&alice)
        .expect("sign");
    c.accept(&soon).await;
    let filter = json!({"authors": [alice.public_key().to_hex()]});
    assert_eq!(c.req("s", std::slice::from_ref(&filter)).await, vec![soon.id.to_hex()]);
    tokio::time::sleep(Duration::from_millis(3_100)).await;
    assert!(c.req("s", &[filter]).await.is_empty());
    assert_eq!(
        store
            .nostr_purge_expired(Timestamp::now().as_secs() as i64)
            .await
            .expect("purge"),
        1
    );
    assert_eq!(store.nostr_event_count().await.expect("count"), 0);
}

async fn auth_checks_challenge_relay_and_signature(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let alice = Keys::generate();
    let mut c = Client::open(&relay);
    let url = RelayUrl::parse(URL).expect("url");
    let cases = [
        EventBuilder::auth("not-the-challenge", url.clone()),
        EventBuilder::auth(c.challenge(), RelayUrl::parse("wss://elsewhere.example").expect("url")),
        EventBuilder::auth(c.challenge(), url.clone())
            .custom_created_at(Timestamp::from(Timestamp::now().as_secs() - 3_600)),
        EventBuilder::text_note(c.challenge()),
    ];
    for builder in cases {
        let event = builder.sign_with_keys(&alice).expect("sign");
        let out = c.send(json!(["AUTH", event])).await;
        assert_eq!(out[0][2], false, "{out:?}");
        assert_eq!(prefix_of(&out[0], 3), "invalid");
    }
    assert!(c.conn.authed().is_empty());
    let ok = c.authenticate(&alice).await;
    assert_eq!(ok[2], true, "{ok}");
    assert_eq!(c.conn.authed(), &[alice.public_key()]);

    // An AUTH event is never published as an event.
    let auth = EventBuilder::auth(c.challenge(), url)
        .sign_with_keys(&alice)
        .expect("sign");
    let refused = c.publish(&auth).await;
    assert_eq!(refused[2], false);
}

async fn gift_wraps_reach_only_their_recipient(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let (alice, bob, eve) = (Keys::generate(), Keys::generate(), Keys::generate());
    let mut eve_conn = Client::open(&relay);
    let mut alice_conn = Client::open(&relay);
    let mut anonymous = Client::open(&relay);
    assert_eq!(eve_conn.authenticate(&eve).await[2], true);
    assert_eq!(alice_conn.authenticate(&alice).await[2], true);
    for c in [&mut eve_conn, &mut alice_conn, &mut anonymous] {
        c.req("everything", &[json!({})]).await;
    }
    eve_conn.req("wraps", &[json!({"kinds": [1059]})]).await;
    alice_conn.req("wraps", &[json!({"kinds": [1059]})]).await;

    let wrap = EventBuilder::private_msg(&bob, alice.public_key(), "for alice only", [])
        .await
        .expect("gift wrap");
    let mut sender = Client::open(&relay);
    sender.accept(&wrap).await;

    // Live: only Alice's connection gets it, once per matching subscription.
    let to_alice = alice_conn.drain_live().await;
    assert_eq!(to_alice.len(), 2, "{to_alice:?}");
    assert!(eve_conn.drain_live().await.is_empty());
    assert!(anonymous.drain_live().await.is_empty());

    // Stored: the same. Asking by kind without AUTH is refused outright.
    assert!(eve_conn.req("w2", &[json!({"kinds": [1059]})]).await.is_empty());
    assert!(eve_conn
        .req("w3", &[json!({"ids": [wrap.id.to_hex()]})])
        .await
        .is_empty());
    assert!(anonymous.req("w4", &[json!({})]).await.is_empty());
    let out = anonymous.send(json!(["REQ", "w5", {"kinds": [1059]}])).await;
    assert_eq!(out[0][0], "CLOSED");
    assert_eq!(prefix_of(&out[0], 2), "auth-required");
    let out = anonymous.send(json!(["COUNT", "c", {"kinds": [1059]}])).await;
    assert_eq!(out[0][0], "CLOSED");
    assert_eq!(eve_conn.send(json!(["COUNT", "c", {}])).await[0][2]["count"], 0);
    let got = alice_conn
        .req("w6", &[json!({"kinds": [1059], "#p": [alice.public_key().to_hex()]})])
        .await;
    assert_eq!(got, vec![wrap.id.to_hex()]);
    let unwrapped = UnwrappedGift::from_gift_wrap(&alice, &wrap).await.expect("unwrap");
    assert_eq!(unwrapped.rumor.content, "for alice only");
    assert_eq!(unwrapped.sender, bob.public_key());
}

async fn protected_events_need_their_author_authenticated(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let protected = EventBuilder::text_note("members only")
        .tag(Tag::protected())
        .sign_with_keys(&alice)
        .expect("sign");
    let mut c = Client::open(&relay);
    let refused = c.publish(&protected).await;
    assert_eq!(refused[2], false);
    assert_eq!(prefix_of(&refused, 3), "auth-required");
    assert_eq!(c.authenticate(&bob).await[2], true);
    let refused = c.publish(&protected).await;
    assert_eq!(prefix_of(&refused, 3), "auth-required");
    assert_eq!(c.authenticate(&alice).await[2], true);
    c.accept(&protected).await;
}

async fn count_and_search_answer_from_the_store(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let mut c = Client::open(&relay);
    for (keys, text) in [
        (&alice, "Bitcoin is a bank in your pocket"),
        (&alice, "lunch: 100% pizza_day"),
        (&bob, "The BITCOIN standard, as a bank would say"),
        (&bob, "nothing to see"),
    ] {
        c.accept(&note(keys, text)).await;
    }
    let count = c.send(json!(["COUNT", "n", {"kinds": [1]}])).await;
    assert_eq!(count, vec![json!(["COUNT", "n", {"count": 4}])]);
    // Filters are a union; an event matching both is counted once.
    let count = c
        .send(json!(["COUNT", "n", {"authors": [alice.public_key().to_hex()]}, {"kinds": [1]}]))
        .await;
    assert_eq!(count[0][2]["count"], 4);
    let count = c
        .send(json!(["COUNT", "n", {"authors": [bob.public_key().to_hex()]}]))
        .await;
    assert_eq!(count[0][2]["count"], 2);

    // NIP-50: every word, any case; `key:value` extensions are not words; LIKE wildcards are
    // plain characters.
    assert_eq!(c.req("s", &[json!({"search": "bitcoin BANK"})]).await.len(), 2);
    assert_eq!(
        c.req("s", &[json!({"search": "bitcoin pocket include:spam"})])
            .await
            .len(),
        1
    );
    assert_eq!(c.req("s", &[json!({"search": "100%"})]).await.len(), 1);
    assert_eq!(c.req("s", &[json!({"search": "pizza_day"})]).await.len(), 1);
    assert!(c.req("s", &[json!({"search": "100%25"})]).await.is_empty());
    assert_eq!(
        c.send(json!(["COUNT", "n", {"search": "bitcoin"}])).await[0][2]["count"],
        2
    );

    // Live events are matched by the same rules.
    c.req("live", &[json!({"search": "satoshi"})]).await;
    let _ = c.drain_live().await;
    c.accept(&note(&alice, "Satoshi would approve")).await;
    c.accept(&note(&alice, "no match here")).await;
    assert_eq!(c.drain_live().await.len(), 1);
}

async fn malformed_messages_get_prefixed_refusals(backend: Backend) {
    let (relay, _) = start_relay(backend, |cfg| cfg.max_message_bytes = 4_096).await;
    let alice = Keys::generate();
    let mut c = Client::open(&relay);
    for text in [
        "not json",
        "{}",
        "[]",
        "[1]",
        "[\"PUBLISH\", {}]",
        "[\"EVENT\"]",
        "[\"REQ\"]",
    ] {
        let out = c.send_text(text).await;
        assert_eq!(out.len(), 1, "{text}: {out:?}");
        assert_eq!(out[0][0], "NOTICE", "{text}");
        assert_eq!(prefix_of(&out[0], 1), "invalid", "{text}");
    }
    let bad_filter = c.send(json!(["REQ", "s", {"authors": ["xyz"]}])).await;
    assert_eq!(bad_filter[0][0], "CLOSED");
    assert_eq!(prefix_of(&bad_filter[0], 2), "invalid");

    // Wrong id, wrong signature, a field of the wrong type.
    let event = note(&alice, "original");
    let mut wrong_id = serde_json::to_value(&event).expect("json");
    wrong_id["content"] = json!("tampered");
    let mut wrong_sig = serde_json::to_value(note(&alice, "signed")).expect("json");
    let other = note(&alice, "other");
    wrong_sig["sig"] = json!(other.sig.to_string());
    let mut wrong_type = serde_json::to_value(&event).expect("json");
    wrong_type["kind"] = json!("one");
    for bad in [wrong_id, wrong_sig, wrong_type] {
        let out = c.send(json!(["EVENT", bad])).await;
        assert_eq!(out[0][0], "OK", "{out:?}");
        assert_eq!(out[0][1], bad["id"]);
        assert_eq!(out[0][2], false);
        assert_eq!(prefix_of(&out[0], 3), "invalid", "{out:?}");
    }

    // Oversized: refused by id, without being parsed.
    let big = note(&alice, &"x".repeat(5_000));
    let out = c.publish(&big).await;
    assert_eq!(out[2], false);
    assert_eq!(prefix_of(&out, 3), "invalid");

    // Long subscription ids and too many filters or values.
    let out = c.send(json!(["REQ", "x".repeat(65), {}])).await;
    assert_eq!(prefix_of(&out[0], 1), "invalid");
    let filters: Vec<Value> = (0..17).map(|_| json!({})).collect();
    let mut msg = vec![json!("REQ"), json!("many")];
    msg.extend(filters);
    let out = c.send(Value::Array(msg)).await;
    assert_eq!(out[0][0], "CLOSED");
    let kinds: Vec<u16> = (0..1_001).collect();
    let out = c.send(json!(["REQ", "big", {"kinds": kinds}])).await;
    assert_eq!(out[0][0], "CLOSED");
    assert_eq!(prefix_of(&out[0], 2), "invalid");

    // After all that, the connection still works.
    c.accept(&event).await;
    assert_eq!(c.req("ok", &[json!({"ids": [event.id.to_hex()]})]).await.len(), 1);
}

async fn subscription_and_rate_limits_hold(backend: Backend) {
    let (relay, _) = start_relay(backend, |cfg| {
        cfg.max_subscriptions = 20;
        cfg.reqs_per_minute = 100_000;
        cfg.events_per_minute = 5;
        cfg.connections_per_ip = 3;
    })
    .await;
    let alice = Keys::generate();
    let mut flood = Client::open(&relay);
    let mut closed = 0;
    for i in 0..10_000 {
        let out = flood
            .send(json!(["REQ", format!("s{i}"), {"kinds": [1], "limit": 1}]))
            .await;
        if out.last().is_some_and(|m| m[0] == "CLOSED") {
            assert_eq!(prefix_of(out.last().expect("closed"), 2), "rate-limited");
            closed += 1;
        }
    }
    assert_eq!(closed, 10_000 - 20);
    assert_eq!(flood.conn.subscriptions(), 20);
    // Replacing an open subscription is not a new one.
    assert!(flood
        .send(json!(["REQ", "s3", {"kinds": [7]}]))
        .await
        .last()
        .is_some_and(|m| m[0] == "EOSE"));

    // Events per connection.
    let mut accepted = 0;
    for i in 0..8 {
        let ok = flood.publish(&note(&alice, &format!("burst {i}"))).await;
        if ok[2] == true {
            accepted += 1;
        } else {
            assert_eq!(prefix_of(&ok, 3), "rate-limited");
        }
    }
    assert_eq!(accepted, 5);

    // Another connection is served meanwhile.
    let mut other = Client::open(&relay);
    other.accept(&note(&Keys::generate(), "still here")).await;

    // Queries per connection.
    let (strict, _) = start_relay(backend, |cfg| cfg.reqs_per_minute = 10).await;
    let mut eager = Client::open(&strict);
    let mut refused = 0;
    for i in 0..12 {
        let out = eager.send(json!(["REQ", format!("q{i}"), {"limit": 0}])).await;
        if out[0][0] == "CLOSED" {
            assert_eq!(prefix_of(&out[0], 2), "rate-limited");
            refused += 1;
        }
    }
    assert_eq!(refused, 2);

    // Connections per address.
    let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let places: Vec<_> = (0..3).map(|_| relay.admit(ip).expect("admitted")).collect();
    let refused = relay.admit(ip).err().expect("refused");
    assert_eq!(refused.prefix, flash_nostr::Prefix::RateLimited);
    drop(places);
    assert!(relay.admit(ip).is_ok());
}

async fn write_policy_users_admits_flash_users_and_their_mail(backend: Backend) {
    let (relay, store) = start_relay(backend, |cfg| cfg.write_policy = WritePolicy::Users).await;
    let (member, stranger) = (Keys::generate(), Keys::generate());
    let (user, _, _) = store
        .create_user(&NewUser {
            phone: None,
            email: None,
            device_id: Some("device-1".into()),
            level: AccountLevel::One,
        })
        .await
        .expect("user");
    store
        .nostr_set_user_key(user.id, Some(&member.public_key().to_hex()))
        .await
        .expect("set key");
    let mut c = Client::open(&relay);
    c.accept(&note(&member, "I bank here")).await;
    let refused = c.publish(&note(&stranger, "let me in")).await;
    assert_eq!(refused[2], false);
    assert_eq!(prefix_of(&refused, 3), "restricted");
    // Mail for a member is accepted from anyone; mail for strangers is not.
    let to_member = EventBuilder::private_msg(&stranger, member.public_key(), "hi", [])
        .await
        .expect("wrap");
    c.accept(&to_member).await;
    let to_stranger = EventBuilder::private_msg(&member, stranger.public_key(), "hi", [])
        .await
        .expect("wrap");
    assert_eq!(c.publish(&to_stranger).await[2], false);
}

async fn proof_of_work_and_time_window_are_enforced(backend: Backend) {
    let (relay, _) = start_relay(backend, |cfg| {
        cfg.min_pow_difficulty = 8;
        cfg.created_at_past_secs = 3_600;
    })
    .await;
    let alice = Keys::generate();
    let mut c = Client::open(&relay);
    let weak = loop {
        let e = note(&alice, "no work");
        if !e.id.check_pow(8) {
            break e;
        }
    };
    let refused = c.publish(&weak).await;
    assert_eq!(prefix_of(&refused, 3), "pow");
    let worked = EventBuilder::text_note("some work")
        .pow(8)
        .sign_with_keys(&alice)
        .expect("sign");
    c.accept(&worked).await;

    let now = Timestamp::now().as_secs();
    let future = at(EventBuilder::text_note("tomorrow").pow(8), now + 3_600, &alice);
    assert_eq!(prefix_of(&c.publish(&future).await, 3), "invalid");
    let past = at(EventBuilder::text_note("last year").pow(8), now - 7_200, &alice);
    assert_eq!(prefix_of(&c.publish(&past).await, 3), "invalid");
}

fn group_event(kind: u16, group: &str, tags: Vec<Vec<String>>, keys: &Keys) -> Event {
    let mut builder = EventBuilder::new(Kind::Custom(kind), "").tag(Tag::custom(TagKind::custom("h"), [group]));
    for t in tags {
        builder = builder.tag(Tag::parse(t).expect("tag"));
    }
    builder.sign_with_keys(keys).expect("sign")
}

fn strings(values: &[&str]) -> Vec<String> {
    values.iter().map(|v| v.to_string()).collect()
}

/// The relay-signed state event of `kind` (39000–39003) for a group.
async fn group_state(c: &mut Client, kind: u16, group: &str) -> Value {
    let mut out = c.send(json!(["REQ", "state", {"kinds": [kind], "#d": [group]}])).await;
    assert_eq!(out.len(), 2, "{out:?}");
    out.remove(0)[2].clone()
}

async fn groups_enforce_membership_roles_and_privacy(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let (alice, bob, carol, dave) = (Keys::generate(), Keys::generate(), Keys::generate(), Keys::generate());
    let hex = |k: &Keys| k.public_key().to_hex();
    let mut c = Client::open(&relay);
    let chat = |keys: &Keys, text: &str| {
        EventBuilder::new(Kind::Custom(9), text)
            .tag(Tag::custom(TagKind::custom("h"), ["pizza"]))
            .sign_with_keys(keys)
            .expect("sign")
    };

    // Alice creates the group and is its admin; the relay signs its state.
    c.accept(&group_event(9007, "pizza", vec![], &alice)).await;
    assert_eq!(
        prefix_of(&c.publish(&group_event(9007, "pizza", vec![], &bob)).await, 3),
        "duplicate"
    );
    assert_eq!(
        prefix_of(&c.publish(&group_event(9007, "Bad Id!", vec![], &bob)).await, 3),
        "invalid"
    );
    let metadata = group_state(&mut c, 39000, "pizza").await;
    assert_eq!(metadata["pubkey"], relay.service_keys().public_key().to_hex());
    let admins = group_state(&mut c, 39001, "pizza").await;
    assert_eq!(admins["tags"][1], json!(["p", hex(&alice), "admin"]));

    // Only members write; anyone may join an open group, once.
    assert_eq!(prefix_of(&c.publish(&chat(&bob, "hi")).await, 3), "restricted");
    c.accept(&group_event(9021, "pizza", vec![], &bob)).await;
    assert_eq!(
        prefix_of(&c.publish(&group_event(9021, "pizza", vec![], &bob)).await, 3),
        "duplicate"
    );
    c.accept(&chat(&bob, "hi all")).await;
    let members = group_state(&mut c, 39002, "pizza").await;
    assert_eq!(members["tags"].as_array().expect("tags").len(), 3, "{members}");
    assert_eq!(
        prefix_of(&c.publish(&group_event(9021, "nosuch", vec![], &bob)).await, 3),
        "invalid"
    );

    // Roles: a plain member moderates nothing; the admin makes Bob a moderator.
    let put_carol = group_event(9000, "pizza", vec![strings(&["p", &hex(&carol)])], &bob);
    assert_eq!(prefix_of(&c.publish(&put_carol).await, 3), "restricted");
    c.accept(&group_event(
        9000,
        "pizza",
        vec![strings(&["p", &hex(&bob), "moderator"])],
        &alice,
    ))
    .await;
    let admins = group_state(&mut c, 39001, "pizza").await;
    assert!(admins["tags"]
        .as_array()
        .expect("tags")
        .contains(&json!(["p", hex(&bob), "moderator"])));
    let give_admin = group_event(9000, "pizza", vec![strings(&["p", &hex(&carol), "admin"])], &bob);
    assert_eq!(prefix_of(&c.publish(&give_admin).await, 3), "restricted");
    c.accept(&group_event(9000, "pizza", vec![strings(&["p", &hex(&carol)])], &bob))
        .await;
    let carols = chat(&carol, "pineapple belongs on pizza");
    c.accept(&carols).await;

    // A moderator deletes events and removes members, but not admins.
    c.accept(&group_event(
        9005,
        "pizza",
        vec![strings(&["e", &carols.id.to_hex()])],
        &bob,
    ))
    .await;
    assert!(c.req("gone", &[json!({"ids": [carols.id.to_hex()]})]).await.is_empty());
    let remove_alice = group_event(9001, "pizza", vec![strings(&["p", &hex(&alice)])], &bob);
    assert_eq!(prefix_of(&c.publish(&remove_alice).await, 3), "restricted");
    c.accept(&group_event(9001, "pizza", vec![strings(&["p", &hex(&carol)])], &bob))
        .await;
    assert_eq!(
        prefix_of(&c.publish(&chat(&carol, "still here?")).await, 3),
        "restricted"
    );

    // Private and closed: members read, others do not; joining needs an invite.
    let edit = group_event(
        9002,
        "pizza",
        vec![
            strings(&["name", "Pizza Lovers"]),
            strings(&["private"]),
            strings(&["closed"]),
        ],
        &alice,
    );
    assert_eq!(
        prefix_of(
            &c.publish(&group_event(9002, "pizza", vec![strings(&["private"])], &bob))
                .await,
            3
        ),
        "restricted"
    );
    c.accept(&edit).await;
    let metadata = group_state(&mut c, 39000, "pizza").await;
    let tags = metadata["tags"].as_array().expect("tags");
    assert!(
        tags.contains(&json!(["name", "Pizza Lovers"]))
            && tags.contains(&json!(["private"]))
            && tags.contains(&json!(["closed"])),
        "{metadata}"
    );
    let group_filter = json!({"kinds": [9], "#h": ["pizza"]});
    let mut outsider = Client::open(&relay);
    assert_eq!(outsider.authenticate(&dave).await[2], true);
    assert!(outsider
        .req("peek", std::slice::from_ref(&group_filter))
        .await
        .is_empty());
    let mut member = Client::open(&relay);
    assert_eq!(member.authenticate(&bob).await[2], true);
    assert_eq!(member.req("read", std::slice::from_ref(&group_filter)).await.len(), 1);
    let _ = outsider.drain_live().await;
    let _ = member.drain_live().await;
    c.accept(&chat(&alice, "members only now")).await;
    assert!(outsider.drain_live().await.is_empty());
    assert_eq!(member.drain_live().await.len(), 1);
    assert_eq!(
        prefix_of(&c.publish(&group_event(9021, "pizza", vec![], &dave)).await, 3),
        "restricted"
    );
    c.accept(&group_event(9009, "pizza", vec![strings(&["code", "slice"])], &alice))
        .await;
    let wrong = group_event(9021, "pizza", vec![strings(&["code", "crust"])], &dave);
    assert_eq!(prefix_of(&c.publish(&wrong).await, 3), "restricted");
    c.accept(&group_event(9021, "pizza", vec![strings(&["code", "slice"])], &dave))
        .await;
    assert_eq!(outsider.req("now", &[group_filter]).await.len(), 2);

    // Leaving: the relay removes the member and says so with its own 9001 (in the group, so
    // read as a member).
    c.accept(&group_event(9022, "pizza", vec![], &bob)).await;
    assert_eq!(c.authenticate(&alice).await[2], true);
    let removals = c
        .req(
            "left",
            &[json!({"kinds": [9001], "authors": [relay.service_keys().public_key().to_hex()]})],
        )
        .await;
    assert_eq!(removals.len(), 1);
    assert_eq!(prefix_of(&c.publish(&chat(&bob, "bye")).await, 3), "restricted");

    // Group state is the relay's to sign.
    let forged = EventBuilder::new(Kind::Custom(39000), "")
        .tag(Tag::identifier("pizza"))
        .sign_with_keys(&dave)
        .expect("sign");
    assert_eq!(prefix_of(&c.publish(&forged).await, 3), "restricted");
}

async fn groups_check_timeline_references_and_late_publication(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let alice = Keys::generate();
    let mut c = Client::open(&relay);
    c.accept(&group_event(9007, "pizza", vec![], &alice)).await;
    c.accept(&group_event(9007, "pasta", vec![], &alice)).await;
    let here = group_event(9, "pizza", vec![], &alice);
    let there = group_event(9, "pasta", vec![], &alice);
    c.accept(&here).await;
    c.accept(&there).await;
    let short = |e: &Event| e.id.to_hex()[..8].to_string();
    let referring = |refs: &[&str]| {
        let mut tag = vec!["previous"];
        tag.extend_from_slice(refs);
        group_event(9, "pizza", vec![strings(&tag)], &alice)
    };

    // References to this group's events are accepted, one tag or several values.
    c.accept(&referring(&[&short(&here)])).await;
    c.accept(&group_event(
        9,
        "pizza",
        vec![
            strings(&["previous", &short(&here)]),
            strings(&["previous", &short(&here)]),
        ],
        &alice,
    ))
    .await;
    // To another group's event, to no event, or malformed: refused.
    for bad in [
        short(&there),
        "00000000".to_string(),
        // Upper-case hex (always with a letter: an all-digit prefix upper-cased is itself).
        format!("A{}", &short(&here)[1..]),
        "abc".to_string(),
    ] {
        let refused = c.publish(&referring(&[&short(&here), &bad])).await;
        assert_eq!(prefix_of(&refused, 3), "invalid", "{bad}: {refused}");
    }
    let many: Vec<String> = (0..51).map(|_| short(&here)).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    assert_eq!(prefix_of(&c.publish(&referring(&many)).await, 3), "invalid");

    // Late publication: a group event from two hours ago is refused; the same age outside a
    // group is fine (no past limit is set).
    let two_hours_ago = Timestamp::now().as_secs() - 7_200;
    let late = at(
        EventBuilder::new(Kind::Custom(9), "late").tag(Tag::custom(TagKind::custom("h"), ["pizza"])),
        two_hours_ago,
        &alice,
    );
    let refused = c.publish(&late).await;
    assert_eq!(prefix_of(&refused, 3), "invalid", "{refused}");
    assert!(
        refused[3].as_str().unwrap_or_default().contains("late publication"),
        "{refused}"
    );
    c.accept(&at(EventBuilder::text_note("old news"), two_hours_ago, &alice))
        .await;

    // With the check off, a late group event is taken.
    let (relay, _) = start_relay(backend, |cfg| cfg.group_late_publication_secs = 0).await;
    let mut c = Client::open(&relay);
    c.accept(&group_event(9007, "pizza", vec![], &alice)).await;
    c.accept(&late).await;
}

/// Issue 14, item 3: content with a NUL is valid NOSTR; it is kept and served byte for byte on
/// both stores, and publishing it fails none of the events committed in the same batch. A NUL
/// the store cannot index (a tag value) refuses that one event with `invalid:`.
async fn nul_in_content_is_kept_and_fails_no_neighbour(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let alice = Keys::generate();
    let mut c = Client::open(&relay);

    let nul = note(&alice, "before \u{0} after");
    c.accept(&nul).await;
    let out = c.send(json!(["REQ", "n", {"ids": [nul.id.to_hex()]}])).await;
    assert_eq!(out.len(), 2, "{out:?}");
    let served = Event::from_json(out[0][2].to_string()).expect("an event");
    assert_eq!(served, nul);
    assert_eq!(served.content, "before \u{0} after");
    served.verify().expect("served as signed");
    assert_eq!(
        c.req("s", &[json!({"search": "after before"})]).await,
        vec![nul.id.to_hex()]
    );

    // Many publishers at once, some with a NUL: every event is kept.
    let mut publishes = tokio::task::JoinSet::new();
    for i in 0..64 {
        let relay = relay.clone();
        let content = if i % 8 == 0 {
            format!("batch\u{0}{i}")
        } else {
            format!("batch {i}")
        };
        let event = note(&Keys::generate(), &content);
        publishes.spawn(async move { relay.publish(event, &Sender::default()).await });
    }
    while let Some(result) = publishes.join_next().await {
        assert_eq!(result.expect("joined"), Ok(Published::Saved));
    }
    assert_eq!(
        c.send(json!(["COUNT", "b", {"search": "batch"}])).await[0][2]["count"],
        64
    );

    // A NUL in a tag value is refused for that event alone, and so is a filter asking for one.
    let tagged = EventBuilder::text_note("tagged")
        .tag(Tag::hashtag("a\u{0}b"))
        .sign_with_keys(&alice)
        .expect("sign");
    let ok = c.publish(&tagged).await;
    assert_eq!(ok[2], false, "{ok}");
    assert_eq!(prefix_of(&ok, 3), "invalid", "{ok}");
    let closed = c.send(json!(["REQ", "t", {"#t": ["a\u{0}b"]}])).await;
    assert_eq!(closed[0][0], "CLOSED", "{closed:?}");
    assert_eq!(prefix_of(&closed[0], 2), "invalid", "{closed:?}");
}

/// Issue 14, item 6: a NIP-50 search of 1,000 words is answered (SQLite once refused it as
/// too large an expression); only its first 32 words count, stored and live alike.
async fn a_thousand_word_search_is_capped(backend: Backend) {
    let (relay, _) = start_relay(backend, |_| {}).await;
    let alice = Keys::generate();
    let mut c = Client::open(&relay);
    let words: Vec<String> = (0..1_000).map(|i| format!("w{i}")).collect();
    let first_32 = words[..32].join(" ");
    let matching = note(&alice, &first_32);
    let short = note(&alice, &words[..31].join(" "));
    c.accept(&matching).await;
    c.accept(&short).await;
    let search = words.join(" ");
    assert_eq!(
        c.req("s", &[json!({"search": search})]).await,
        vec![matching.id.to_hex()]
    );
    let count = c.send(json!(["COUNT", "n", {"search": search}])).await;
    assert_eq!(count[0][2]["count"], 1, "{count:?}");
    let _ = c.drain_live().await;
    c.accept(&note(&alice, &format!("{first_32} live"))).await;
    c.accept(&note(&alice, "w0 only")).await;
    assert_eq!(c.drain_live().await.len(), 1);
}
