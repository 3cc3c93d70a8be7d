//! The NOSTR relay on the shared listener, driven by a real client (rust-nostr's `nostr-sdk`)
//! and by raw websockets: publish and subscribe, AUTH, NIP-17 direct messages reaching only
//! their recipient, COUNT and search, NIP-11, and floods that leave everyone else served.

mod common;

use std::time::Duration;

use common::Backend;
use common::*;
use futures_util::{SinkExt, StreamExt};
use nostr_sdk::prelude::*;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

flash_store::on_both_backends!(
    nostr_sdk_publishes_fetches_and_follows_live,
    nostr_sdk_direct_messages_reach_only_their_recipient,
    nip11_document_and_landing_page_share_the_root,
    floods_and_junk_are_refused_while_others_are_served,
    npubs_link_users_and_answer_nip05,
    nostr_sdk_sees_groups_expiry_and_protected_events_enforced,
    paid_relay_admits_the_keys_whose_admission_is_paid,
    a_publishing_subscriber_keeps_receiving_live_events,
    connections_without_subscriptions_get_no_dropped_notice,
    metrics_show_the_sqlite_wal_size,
);

const WAIT: Duration = Duration::from_secs(10);

fn relay_url(server: &TestServer) -> String {
    format!("ws://{}", server.addr)
}

async fn client(server: &TestServer, keys: &Keys) -> Client {
    let client = Client::builder().signer(keys.clone()).build();
    client.add_relay(relay_url(server)).await.expect("add relay");
    client.connect().await;
    client.wait_for_connection(WAIT).await;
    client
}

async fn published(client: &Client, builder: EventBuilder) -> EventId {
    let out = client.send_event_builder(builder).await.expect("send");
    assert!(out.failed.is_empty(), "refused: {:?}", out.failed);
    assert_eq!(out.success.len(), 1);
    *out.id()
}

/// The next live event for subscription `sub`, if one comes within `wait`.
async fn next_live(
    notes: &mut tokio::sync::broadcast::Receiver<RelayPoolNotification>,
    sub: &SubscriptionId,
    wait: Duration,
) -> Option<Event> {
    tokio::time::timeout(wait, async {
        loop {
            match notes.recv().await {
                Ok(RelayPoolNotification::Event {
                    subscription_id, event, ..
                }) if subscription_id == *sub => return *event,
                Ok(_) => continue,
                Err(e) => panic!("notifications ended: {e}"),
            }
        }
    })
    .await
    .ok()
}

async fn nostr_sdk_publishes_fetches_and_follows_live(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let (alice_client, bob_client) = (client(&server, &alice).await, client(&server, &bob).await);

    let first = published(&alice_client, EventBuilder::text_note("gm from Flash")).await;
    let fetched = bob_client
        .fetch_events(Filter::new().author(alice.public_key()).kind(Kind::TextNote), WAIT)
        .await
        .expect("fetch");
    assert_eq!(fetched.len(), 1);
    assert_eq!(fetched.first().map(|e| e.id), Some(first));

    // Live: Bob follows Alice's notes and sees the next one as it is published.
    let mut notes = bob_client.notifications();
    let sub = bob_client
        .subscribe(
            Filter::new()
                .author(alice.public_key())
                .kind(Kind::TextNote)
                .since(Timestamp::now()),
            None,
        )
        .await
        .expect("subscribe")
        .val;
    let second = published(&alice_client, EventBuilder::text_note("still gm")).await;
    let live = next_live(&mut notes, &sub, WAIT).await.expect("a live event");
    assert_eq!(live.id, second);
    assert!(live.verify().is_ok());

    // Profiles are replaceable: the newest is served.
    published(&alice_client, EventBuilder::metadata(&Metadata::new().name("alice"))).await;
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    published(&alice_client, EventBuilder::metadata(&Metadata::new().name("alice b."))).await;
    let profile = bob_client
        .fetch_metadata(alice.public_key(), WAIT)
        .await
        .expect("metadata")
        .expect("a profile");
    assert_eq!(profile.name.as_deref(), Some("alice b."));

    // COUNT (NIP-45) and search (NIP-50) from the same client library.
    let relay = bob_client.relay(relay_url(&server)).await.expect("relay");
    let n = relay
        .count_events(Filter::new().author(alice.public_key()), WAIT)
        .await
        .expect("count");
    assert_eq!(n, 3);
    let found = bob_client
        .fetch_events(Filter::new().search("FLASH"), WAIT)
        .await
        .expect("search");
    assert_eq!(found.len(), 1);

    // Deletion (NIP-09).
    published(
        &alice_client,
        EventBuilder::delete(EventDeletionRequest::new().id(first)),
    )
    .await;
    let fetched = bob_client
        .fetch_events(Filter::new().id(first), WAIT)
        .await
        .expect("fetch");
    assert!(fetched.is_empty());

    // What the relay did shows on /metrics.
    let metrics = server.get("/metrics", &[]).await.text;
    let value = |name: &str| {
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    };
    assert!(value("flash_relay_events_saved_total") >= 5);
    assert!(value("flash_relay_queries_total") >= 4);
    assert_eq!(value("flash_relay_connections"), 2);
    alice_client.shutdown().await;
    bob_client.shutdown().await;
}

async fn nostr_sdk_direct_messages_reach_only_their_recipient(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob, eve) = (Keys::generate(), Keys::generate(), Keys::generate());
    let (alice_client, bob_client, eve_client) = (
        client(&server, &alice).await,
        client(&server, &bob).await,
        client(&server, &eve).await,
    );
    // Eve listens for every gift wrap there is.
    let mut eve_notes = eve_client.notifications();
    let eve_sub = eve_client
        .subscribe(Filter::new().kind(Kind::GiftWrap), None)
        .await
        .expect("subscribe")
        .val;
    let mut alice_notes = alice_client.notifications();
    let alice_sub = alice_client
        .subscribe(Filter::new().kind(Kind::GiftWrap).pubkey(alice.public_key()), None)
        .await
        .expect("subscribe")
        .val;

    let sent = bob_client
        .send_private_msg(alice.public_key(), "meet at the bitcoin bank", [])
        .await
        .expect("send");
    assert!(sent.failed.is_empty(), "{:?}", sent.failed);

    let wrap = next_live(&mut alice_notes, &alice_sub, WAIT)
        .await
        .expect("Alice gets it live");
    let gift = alice_client.unwrap_gift_wrap(&wrap).await.expect("unwrap");
    assert_eq!(gift.sender, bob.public_key());
    assert_eq!(gift.rumor.content, "meet at the bitcoin bank");
    let stored = alice_client
        .fetch_events(Filter::new().kind(Kind::GiftWrap).pubkey(alice.public_key()), WAIT)
        .await
        .expect("fetch");
    assert_eq!(stored.len(), 1);

    // Eve, authenticated as herself, sees nothing: not live, not stored, not by id.
    assert!(next_live(&mut eve_notes, &eve_sub, Duration::from_secs(1))
        .await
        .is_none());
    let peek = eve_client
        .fetch_events(Filter::new().kind(Kind::GiftWrap).pubkey(alice.public_key()), WAIT)
        .await
        .expect("fetch");
    assert!(peek.is_empty());
    let peek = eve_client
        .fetch_events(Filter::new().id(wrap.id), WAIT)
        .await
        .expect("fetch");
    assert!(peek.is_empty());
    for c in [alice_client, bob_client, eve_client] {
        c.shutdown().await;
    }
}

async fn nip11_document_and_landing_page_share_the_root(backend: Backend) {
    let server = TestServer::start(backend).await;
    let info = server.get("/", &[("accept", "application/nostr+json")]).await;
    assert_eq!(info.status, 200);
    assert_eq!(info.headers["access-control-allow-origin"], "*");
    assert_eq!(info.headers["content-type"], "application/nostr+json");
    let doc = info.json();
    for nip in [1, 2, 9, 11, 17, 40, 42, 45, 50, 59, 70] {
        assert!(
            doc["supported_nips"].as_array().expect("nips").contains(&json!(nip)),
            "{doc}"
        );
    }
    assert_eq!(doc["limitation"]["max_subscriptions"], 64);
    assert_eq!(doc["limitation"]["payment_required"], false);
    assert_eq!(doc.get("fees"), None);
    assert_eq!(server.get("/relay/admission", &[]).await.status, 404);
    let on_relay = server.get("/relay", &[("accept", "application/nostr+json")]).await;
    assert_eq!(on_relay.json(), doc);

    let page = server.get("/", &[("accept", "text/html")]).await;
    assert_eq!(page.status, 200);
    assert!(page.text.contains("NOSTR relay"), "{}", page.text);
    assert_eq!(server.get("/relay", &[]).await.status, 426);
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn raw_socket(server: &TestServer) -> Socket {
    let (mut ws, _) = tokio_tungstenite::connect_async(relay_url(server))
        .await
        .expect("connect");
    let greeting = recv(&mut ws).await.expect("greeting");
    assert_eq!(greeting[0], "AUTH");
    ws
}

async fn recv(ws: &mut Socket) -> Option<Value> {
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.ok()?? {
            Ok(Message::Text(t)) => return Some(serde_json::from_str(t.as_str()).expect("json")),
            Ok(Message::Close(_)) | Err(_) => return None,
            Ok(_) => continue,
        }
    }
}

async fn floods_and_junk_are_refused_while_others_are_served(backend: Backend) {
    let relay = flash_nostr::RelayConfig {
        reqs_per_minute: 100_000,
        ..flash_nostr::RelayConfig::default()
    };
    let server = TestServer::start_with_relay(backend, relay).await;
    let (mut ws_tx, mut ws_rx) = raw_socket(&server).await.split();
    let mut junk = raw_socket(&server).await;

    // 10,000 subscriptions on one connection, sent while the answers are read: 64 open, the
    // rest refused as rate-limited.
    let sender = tokio::spawn(async move {
        for i in 0..10_000 {
            let req = json!(["REQ", format!("s{i}"), {"kinds": [1], "limit": 0}]).to_string();
            ws_tx.send(Message::Text(req.into())).await.expect("send");
        }
        ws_tx
    });
    let mut replies = Vec::with_capacity(10_000);
    while replies.len() < 10_000 {
        match tokio::time::timeout(WAIT, ws_rx.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => replies.push(serde_json::from_str::<Value>(t.as_str()).expect("json")),
            other => panic!("the flood's answers stopped: {other:?}"),
        }
    }
    let mut ws_tx = sender.await.expect("sender");
    let closed: Vec<_> = replies.iter().filter(|m| m[0] == "CLOSED").collect();
    assert_eq!(closed.len(), 10_000 - 64);
    assert!(closed
        .iter()
        .all(|m| m[2].as_str().is_some_and(|s| s.starts_with("rate-limited:"))));

    // Junk gets prefixed refusals and the connection stays.
    junk.send(Message::Text("{\"not\": \"an array\"".into()))
        .await
        .expect("send");
    let notice = recv(&mut junk).await.expect("notice");
    assert_eq!(notice[0], "NOTICE");
    assert!(notice[1].as_str().is_some_and(|s| s.starts_with("invalid:")));
    let keys = Keys::generate();
    let big = EventBuilder::text_note("x".repeat(200 * 1024))
        .sign_with_keys(&keys)
        .expect("sign");
    junk.send(Message::Text(json!(["EVENT", big]).to_string().into()))
        .await
        .expect("send");
    let ok = recv(&mut junk).await.expect("ok");
    assert_eq!(ok[0], "OK");
    assert_eq!(ok[2], false);
    assert!(ok[3].as_str().is_some_and(|s| s.starts_with("invalid:")), "{ok}");
    // A frame past the hard cap ends that connection only.
    junk.send(Message::Text("x".repeat(5 * 1024 * 1024).into())).await.ok();
    assert!(recv(&mut junk).await.is_none());

    // Meanwhile a real client publishes and reads as usual, and the flood's connection
    // still answers.
    let alice = Keys::generate();
    let c = client(&server, &alice).await;
    let id = published(&c, EventBuilder::text_note("business as usual")).await;
    let got = c.fetch_events(Filter::new().id(id), WAIT).await.expect("fetch");
    assert_eq!(got.len(), 1);
    ws_tx
        .send(Message::Text(json!(["CLOSE", "s0"]).to_string().into()))
        .await
        .expect("send");
    ws_tx
        .send(Message::Text(
            json!(["COUNT", "n", {"ids": [id.to_hex()]}]).to_string().into(),
        ))
        .await
        .expect("send");
    // The flood's open subscriptions (kind 1) got the new note live, then the count.
    let mut live = 0;
    let count = loop {
        let msg = tokio::time::timeout(WAIT, ws_rx.next()).await.expect("an answer");
        let Some(Ok(Message::Text(t))) = msg else {
            panic!("no answer: {msg:?}")
        };
        let msg: Value = serde_json::from_str(t.as_str()).expect("json");
        if msg[0] == "EVENT" {
            assert_eq!(msg[2]["id"], id.to_hex());
            live += 1;
            continue;
        }
        break msg;
    };
    assert!((63..=64).contains(&live), "{live}");
    assert_eq!(count, json!(["COUNT", "n", {"count": 1}]));
    c.shutdown().await;
}

const SET_NPUB: &str =
    "mutation($n: String!) { userUpdateNpub(input: { npub: $n }) { errors { code } user { npub username } } }";

async fn npubs_link_users_and_answer_nip05(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.named_member("Alice_B").await;
    let bob = server.member().await;
    let keys = Keys::generate();
    let npub = keys.public_key().to_bech32().expect("npub");

    // Before a key is set: no npub, and NIP-05 knows no such name.
    let me = server.gql(Some(&alice.token), "{ me { npub } }", json!({})).await;
    assert_eq!(me["data"]["me"]["npub"], Value::Null);
    let none = server.get("/.well-known/nostr.json?name=alice_b", &[]).await;
    assert_eq!(none.json(), json!({ "names": {} }));

    let set = server.gql(Some(&alice.token), SET_NPUB, json!({ "n": npub })).await;
    assert_eq!(set["data"]["userUpdateNpub"]["errors"], json!([]), "{set}");
    assert_eq!(set["data"]["userUpdateNpub"]["user"]["npub"], json!(npub));
    let found = server
        .gql(
            None,
            "query($u: Username!) { npubByUsername(username: $u) { npub username } }",
            json!({ "u": "alice_b" }),
        )
        .await;
    assert_eq!(
        found["data"]["npubByUsername"],
        json!({ "npub": npub, "username": "Alice_B" })
    );

    // NIP-05: case-insensitive name, hex key, this relay as the hint, any origin, no redirect.
    let doc = server.get("/.well-known/nostr.json?name=ALICE_b", &[]).await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.headers["access-control-allow-origin"], "*");
    let hex = keys.public_key().to_hex();
    assert_eq!(doc.json()["names"]["alice_b"], json!(hex));
    assert_eq!(doc.json()["relays"][&hex], json!([format!("ws://{}/", server.addr)]));
    assert_eq!(
        server.get("/.well-known/nostr.json", &[]).await.json(),
        json!({ "names": {} })
    );
    assert_eq!(
        server.get("/.well-known/nostr.json?name=no%20such", &[]).await.json(),
        json!({ "names": {} })
    );

    // One key, one account; junk is refused; the owner may change theirs.
    let taken = server.gql(Some(&bob.token), SET_NPUB, json!({ "n": npub })).await;
    assert_eq!(
        taken["data"]["userUpdateNpub"]["errors"][0]["code"],
        "NPUB_NOT_AVAILABLE"
    );
    for junk in ["npub1nope", "", &"g".repeat(64)] {
        let bad = server.gql(Some(&bob.token), SET_NPUB, json!({ "n": junk })).await;
        assert_eq!(
            bad["data"]["userUpdateNpub"]["errors"][0]["code"], "INVALID_NPUB",
            "{junk}"
        );
    }
    let other = Keys::generate();
    let changed = server
        .gql(
            Some(&alice.token),
            SET_NPUB,
            json!({ "n": other.public_key().to_hex() }),
        )
        .await;
    assert_eq!(changed["data"]["userUpdateNpub"]["errors"], json!([]));
    let doc = server.get("/.well-known/nostr.json?name=alice_b", &[]).await;
    assert_eq!(doc.json()["names"]["alice_b"], json!(other.public_key().to_hex()));
    let set = server.gql(Some(&bob.token), SET_NPUB, json!({ "n": npub })).await;
    assert_eq!(
        set["data"]["userUpdateNpub"]["errors"],
        json!([]),
        "the released key is free again"
    );
}

/// Publishes and returns the relay's refusal, if it refused.
async fn refusal(client: &Client, builder: EventBuilder) -> Option<String> {
    let out = client.send_event_builder(builder).await.expect("send");
    out.failed.values().next().cloned()
}

async fn nostr_sdk_sees_groups_expiry_and_protected_events_enforced(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let (alice_client, bob_client) = (client(&server, &alice).await, client(&server, &bob).await);
    let h = || Tag::custom(TagKind::custom("h"), ["club"]);

    // NIP-29: Alice creates a group; Bob may not write until he joins; a moderator's removal
    // stops him again.
    published(&alice_client, EventBuilder::new(Kind::Custom(9007), "").tag(h())).await;
    let refused = refusal(&bob_client, EventBuilder::new(Kind::Custom(9), "hello?").tag(h())).await;
    assert!(
        refused.as_deref().is_some_and(|r| r.starts_with("restricted:")),
        "{refused:?}"
    );
    published(&bob_client, EventBuilder::new(Kind::Custom(9021), "").tag(h())).await;
    published(&bob_client, EventBuilder::new(Kind::Custom(9), "hello!").tag(h())).await;
    let removed = EventBuilder::new(Kind::Custom(9001), "")
        .tag(h())
        .tag(Tag::public_key(bob.public_key()));
    published(&alice_client, removed).await;
    let refused = refusal(&bob_client, EventBuilder::new(Kind::Custom(9), "let me back").tag(h())).await;
    assert!(
        refused.as_deref().is_some_and(|r| r.starts_with("restricted:")),
        "{refused:?}"
    );
    let members = bob_client
        .fetch_events(Filter::new().kind(Kind::Custom(39_002)).identifier("club"), WAIT)
        .await
        .expect("members");
    let members = members.first().expect("the relay's member list");
    assert_eq!(
        members.tags.public_keys().collect::<Vec<_>>(),
        vec![&alice.public_key()]
    );

    // NIP-40: an expired event is refused.
    let past = Timestamp::from(Timestamp::now().as_secs() - 10);
    let refused = refusal(
        &alice_client,
        EventBuilder::text_note("old news").tag(Tag::expiration(past)),
    )
    .await;
    assert!(
        refused.as_deref().is_some_and(|r| r.starts_with("invalid:")),
        "{refused:?}"
    );

    // NIP-70: Bob's protected note, republished by Alice's connection, is refused; Bob's own
    // (authenticated) connection publishes it.
    let protected = EventBuilder::text_note("mine only")
        .tag(Tag::protected())
        .sign_with_keys(&bob)
        .expect("sign");
    // (nostr-sdk answers `auth-required:` by authenticating and retrying, so what it reports
    // in the end is its own give-up; the relay never stored the event.)
    let out = alice_client.send_event(&protected).await.expect("send");
    assert!(out.success.is_empty() && !out.failed.is_empty(), "{out:?}");
    let stored = alice_client
        .fetch_events(Filter::new().id(protected.id), WAIT)
        .await
        .expect("fetch");
    assert!(stored.is_empty());
    let out = bob_client.send_event(&protected).await.expect("send");
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    alice_client.shutdown().await;
    bob_client.shutdown().await;
}

/// `GET /relay/admission?pubkey=…` as JSON.
async fn admission(server: &TestServer, pubkey: &str) -> (u16, Value) {
    let resp = server.get(&format!("/relay/admission?pubkey={pubkey}"), &[]).await;
    (resp.status, resp.json())
}

async fn paid_relay_admits_the_keys_whose_admission_is_paid(backend: Backend) {
    let relay = flash_nostr::RelayConfig {
        write_policy: flash_nostr::WritePolicy::Paid,
        admission_sats: 500,
        admission_username: Some("relayop".into()),
        admission_free_for_users: false,
        ..flash_nostr::RelayConfig::default()
    };
    let server = TestServer::start_with_relay(backend, relay).await;
    let alice = Keys::generate();

    // Until the operator's user exists, no invoice can be sold, and nothing is recorded.
    let (status, body) = admission(&server, &alice.public_key().to_hex()).await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (503, json!("ADMISSION_UNAVAILABLE")),
        "{body}"
    );
    let operator = server.named_member("relayop").await;

    // NIP-11 names the fee and where to pay it.
    let doc = server.get("/", &[("accept", "application/nostr+json")]).await.json();
    let payments_url = format!("http://{}/relay/admission", server.addr);
    assert_eq!(doc["limitation"]["payment_required"], true, "{doc}");
    assert_eq!(doc["limitation"]["restricted_writes"], true);
    assert_eq!(doc["payments_url"], json!(payments_url));
    assert_eq!(
        doc["fees"]["admission"],
        json!([{ "amount": 500_000, "unit": "msats" }])
    );
    assert_eq!(
        server.get("/relay/admission", &[]).await.json(),
        json!({ "amount_sats": 500 })
    );
    let page = server.get("/relay/admission", &[("accept", "text/html")]).await;
    assert!(page.text.contains("costs 500 sats"), "{}", page.text);

    // An unpaid key is refused and told where to pay.
    let alice_client = client(&server, &alice).await;
    let refused = refusal(&alice_client, EventBuilder::text_note("hello?")).await;
    let refused = refused.expect("an unpaid key is refused");
    assert!(refused.starts_with("restricted: admission costs 500 sats"), "{refused}");
    assert!(
        refused.contains(&format!("{payments_url}?pubkey={}", alice.public_key().to_hex())),
        "{refused}"
    );

    // Junk keys are refused; a key gets one invoice, given again while it is unpaid.
    for junk in ["npub1nope", "zz", &"g".repeat(64)] {
        let (status, body) = admission(&server, junk).await;
        assert_eq!(
            (status, body["error"]["code"].clone()),
            (400, json!("INVALID_NPUB")),
            "{junk}"
        );
    }
    let (status, offer) = admission(&server, &alice.public_key().to_bech32().expect("npub")).await;
    assert_eq!(status, 200, "{offer}");
    assert_eq!(offer["admitted"], false);
    assert_eq!(offer["amount_sats"], 500);
    assert_eq!(offer["pubkey"], json!(alice.public_key().to_hex()));
    let pr = offer["payment_request"].as_str().expect("invoice").to_string();
    assert_eq!(flash_nostr::zaps::invoice_msat(&pr), Ok(Some(500_000)));
    let (_, again) = admission(&server, &alice.public_key().to_hex()).await;
    assert_eq!(again["payment_request"], json!(pr), "the open invoice is given again");

    // Paid over Lightning: the fee reaches the operator's wallet and Alice may write.
    server.pay_from_outside(&pr).await;
    let mut admitted = json!(null);
    for _ in 0..100 {
        admitted = admission(&server, &alice.public_key().to_hex()).await.1;
        if admitted["admitted"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(admitted["admitted"], true, "{admitted}");
    assert_eq!(admitted.get("payment_request"), None);
    published(&alice_client, EventBuilder::text_note("paid my way in")).await;
    assert_eq!(server.balance(&operator).await, 500);

    // A Flash user is no exception here (admission_free_for_users = false) until they pay,
    // from their Flash wallet: settled inside the ledger, admitted at once.
    let (bob, bob_keys) = (server.member().await, Keys::generate());
    let set = server
        .gql(
            Some(&bob.token),
            SET_NPUB,
            json!({ "n": bob_keys.public_key().to_hex() }),
        )
        .await;
    assert_eq!(set["data"]["userUpdateNpub"]["errors"], json!([]), "{set}");
    let bob_client = client(&server, &bob_keys).await;
    assert!(refusal(&bob_client, EventBuilder::text_note("me too?")).await.is_some());
    server.fund(&bob.wallet_id, 2_000).await;
    let (_, offer) = admission(&server, &bob_keys.public_key().to_hex()).await;
    let paid = server
        .gql(
            Some(&bob.token),
            "mutation($input: LnInvoicePaymentInput!) { lnInvoicePaymentSend(input: $input) { status errors { code message } } }",
            json!({ "input": { "walletId": bob.wallet_id, "paymentRequest": offer["payment_request"] } }),
        )
        .await;
    assert_eq!(paid["data"]["lnInvoicePaymentSend"]["status"], "SUCCESS", "{paid}");
    published(&bob_client, EventBuilder::text_note("paid from Flash")).await;
    assert_eq!(server.balance(&bob).await, 1_500);
    assert_eq!(server.balance(&operator).await, 1_000);

    // A gift wrap to an admitted key passes whoever wraps it; to anyone else it does not.
    let stranger = client(&server, &Keys::generate()).await;
    let wrap_to = |to: PublicKey| EventBuilder::new(Kind::GiftWrap, "sealed").tag(Tag::public_key(to));
    published(&stranger, wrap_to(alice.public_key())).await;
    let refused = refusal(&stranger, wrap_to(Keys::generate().public_key())).await;
    assert!(refused.is_some_and(|r| r.starts_with("restricted:")));
    for c in [alice_client, bob_client, stranger] {
        c.shutdown().await;
    }
}

async fn send_json(ws: &mut Socket, msg: Value) {
    ws.send(Message::Text(msg.to_string().into())).await.expect("send");
}

fn ephemeral(keys: &Keys, i: usize) -> Event {
    EventBuilder::new(Kind::Custom(20_001), format!("ephemeral {i}"))
        .sign_with_keys(keys)
        .expect("sign")
}

/// Issue 14, item 6: a connection that waits for its own event's commit still gets the live
/// events of its subscriptions meanwhile (they come before its OK).
async fn a_publishing_subscriber_keeps_receiving_live_events(backend: Backend) {
    let server = TestServer::start(backend).await;
    let relay = server.state.relay.clone().expect("a relay");
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let mut ws = raw_socket(&server).await;
    send_json(&mut ws, json!(["REQ", "live", {"kinds": [20_001]}])).await;
    assert_eq!(recv(&mut ws).await, Some(json!(["EOSE", "live"])));

    let block = EventWriteBlock::take(&server.store_config).await;
    let note = EventBuilder::text_note("mine, waiting for its commit")
        .sign_with_keys(&alice)
        .expect("sign");
    send_json(&mut ws, json!(["EVENT", note])).await;
    let live = ephemeral(&bob, 0);
    let relayed = relay.publish(live.clone(), &flash_nostr::Sender::default()).await;
    assert_eq!(relayed, Ok(flash_nostr::Published::Relayed));
    let first = recv(&mut ws).await.expect("a live event while the commit waits");
    block.release().await;
    assert_eq!(first[0], "EVENT", "{first}");
    assert_eq!(first[1], "live");
    assert_eq!(first[2]["id"], live.id.to_hex());
    let ok = recv(&mut ws).await.expect("the OK");
    assert_eq!(ok[0], "OK", "{ok}");
    assert_eq!(ok[1], note.id.to_hex());
}

/// Issue 14, item 6: a connection with no subscription is never told that live events were
/// dropped, however many pass while it is busy.
async fn connections_without_subscriptions_get_no_dropped_notice(backend: Backend) {
    let server = TestServer::start(backend).await;
    let relay = server.state.relay.clone().expect("a relay");
    let (alice, bob) = (Keys::generate(), Keys::generate());
    let burst: Vec<Event> = (0..4_500).map(|i| ephemeral(&bob, i)).collect();
    let mut ws = raw_socket(&server).await;

    // The connection waits for its commit while more live events pass than it buffers.
    let block = EventWriteBlock::take(&server.store_config).await;
    let note = EventBuilder::text_note("busy").sign_with_keys(&alice).expect("sign");
    send_json(&mut ws, json!(["EVENT", note])).await;
    for event in burst {
        let relayed = relay.publish(event, &flash_nostr::Sender::default()).await;
        assert_eq!(relayed, Ok(flash_nostr::Published::Relayed));
    }
    block.release().await;
    let mut seen = vec![recv(&mut ws).await.expect("the OK")];
    for i in 0..8 {
        let sub = format!("q{i}");
        send_json(&mut ws, json!(["REQ", sub, {"kinds": [1], "limit": 1}])).await;
        loop {
            let msg = recv(&mut ws).await.expect("an answer");
            let done = msg == json!(["EOSE", sub]);
            seen.push(msg);
            if done {
                break;
            }
        }
        send_json(&mut ws, json!(["CLOSE", sub])).await;
    }
    assert!(seen.iter().all(|m| m[0] != "NOTICE"), "{seen:?}");
    assert!(
        seen.iter().any(|m| m[0] == "OK" && m[1] == note.id.to_hex()),
        "{seen:?}"
    );
}

/// Issue 14, item 6: `/metrics` shows the SQLite WAL's size; PostgreSQL has none to show.
async fn metrics_show_the_sqlite_wal_size(backend: Backend) {
    let server = TestServer::start(backend).await;
    let metrics = server.get("/metrics", &[]).await.text;
    let wal = metrics
        .lines()
        .find_map(|l| l.strip_prefix("flash_store_sqlite_wal_bytes "));
    match backend {
        Backend::Sqlite => {
            assert!(wal.is_some_and(|v| v.parse::<u64>().is_ok()), "{metrics}");
            assert!(
                metrics.contains("# TYPE flash_store_sqlite_wal_bytes gauge"),
                "{metrics}"
            );
        }
        Backend::Postgres => assert!(wal.is_none(), "{metrics}"),
    }
}
