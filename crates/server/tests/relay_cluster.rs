//! Relay scale-out: two `flashd` nodes on one PostgreSQL database, linked by NATS, serve one
//! relay. An event published on one node reaches a live subscriber on the other (stored and
//! ephemeral events alike), and each node serves what the other stored.
//!
//! NATS comes from `FLASH_TEST_NATS_URL` (default `nats://127.0.0.1:4222`); the test fails,
//! rather than skips, when it is not there.

mod common;

use std::time::Duration;

use common::*;
use flash_store::testing::Backend;
use nostr_sdk::prelude::*;

const WAIT: Duration = Duration::from_secs(10);

fn nats_url() -> String {
    std::env::var("FLASH_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_string())
}

async fn client(node: &Flashd, keys: &Keys) -> Client {
    let client = Client::builder().signer(keys.clone()).build();
    client
        .add_relay(node.base.replacen("http://", "ws://", 1))
        .await
        .expect("add relay");
    client.connect().await;
    client.wait_for_connection(WAIT).await;
    client
}

async fn next_event(
    notes: &mut tokio::sync::broadcast::Receiver<RelayPoolNotification>,
    sub: &SubscriptionId,
) -> Event {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Ok(RelayPoolNotification::Event {
                subscription_id, event, ..
            }) = notes.recv().await
            {
                if subscription_id == *sub {
                    return *event;
                }
            }
        }
    })
    .await
    .expect("the event reaches the other node's subscriber")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_nodes_on_one_database_and_nats_serve_one_relay() {
    let url = database_url(Backend::Postgres).await.expect("a PostgreSQL database");
    let nats = nats_url();
    let (dir_a, dir_b) = (TempDir::new("relay-a"), TempDir::new("relay-b"));
    let node_a = Flashd::start(&Launch::new(dir_a.path(), Some(&url)).arg("--nats-url").arg(&nats)).await;
    // Nodes of one deployment share their secrets (the database's sealed keys open with them).
    for key in ["master.key", "auth.key"] {
        std::fs::copy(dir_a.path().join(key), dir_b.path().join(key)).expect("share the node keys");
    }
    let node_b = Flashd::start(&Launch::new(dir_b.path(), Some(&url)).arg("--nats-url").arg(&nats)).await;
    assert_ne!(node_a.base, node_b.base);

    let (alice, bob) = (Keys::generate(), Keys::generate());
    let (on_a, on_b) = (client(&node_a, &alice).await, client(&node_b, &bob).await);
    let mut notes = on_b.notifications();
    let sub = on_b
        .subscribe(Filter::new().author(alice.public_key()), None)
        .await
        .expect("subscribe on B")
        .val;

    // Stored: published on A, live on B, and served by B from the shared database.
    let out = on_a
        .send_event_builder(EventBuilder::text_note("hello from node A"))
        .await
        .expect("publish on A");
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    let live = next_event(&mut notes, &sub).await;
    assert_eq!(live.id, *out.id());
    assert!(live.verify().is_ok());
    let stored = on_b
        .fetch_events(Filter::new().id(*out.id()), WAIT)
        .await
        .expect("fetch on B");
    assert_eq!(stored.len(), 1);

    // Ephemeral: never stored, still relayed across nodes.
    let out = on_a
        .send_event_builder(EventBuilder::new(Kind::Custom(20_001), "typing…"))
        .await
        .expect("publish ephemeral on A");
    assert!(out.failed.is_empty(), "{:?}", out.failed);
    assert_eq!(next_event(&mut notes, &sub).await.id, *out.id());

    // And the other way round, to A's subscriber.
    let mut notes_a = on_a.notifications();
    let sub_a = on_a
        .subscribe(Filter::new().author(bob.public_key()), None)
        .await
        .expect("subscribe on A")
        .val;
    let out = on_b
        .send_event_builder(EventBuilder::text_note("and back from B"))
        .await
        .expect("publish on B");
    assert_eq!(next_event(&mut notes_a, &sub_a).await.id, *out.id());
    on_a.shutdown().await;
    on_b.shutdown().await;
}
