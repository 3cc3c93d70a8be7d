//! flash-sdk's messenger against real `flashd` relays. Private messages (NIP-17) over two
//! relays: one relay down while Alice and Bob write to each other loses nothing (the wrap waits
//! in the sender's outbox and reaches the relay when it is back), reads keep each message once,
//! and messages cross both ways between `flash` and rust-nostr's `nostr-sdk`. Group chats
//! (NIP-29): created closed, joined only with an invite, moderated, left.

mod common;

use std::time::Duration;

use common::{Flashd, Launch, TempDir};
use flash_sdk::{GroupError, GroupInvite, GroupRef, LocalStore, Messenger};
use nostr_sdk::prelude::{Client, Filter, Keys, Kind};

fn ws(port: u16) -> String {
    format!("ws://127.0.0.1:{port}")
}

#[tokio::test]
async fn messages_cross_two_relays_while_one_is_down() {
    let (dir_a, dir_b) = (TempDir::new("chat-a"), TempDir::new("chat-b"));
    let (port_a, port_b) = (common::free_port(), common::free_port());
    let _relay_a = Flashd::start(&Launch::on_port(dir_a.path(), port_a)).await;
    let mut relay_b = Flashd::start(&Launch::on_port(dir_b.path(), port_b)).await;
    let relays = [ws(port_a), ws(port_b)];

    let (alice_keys, bob_keys) = (Keys::generate(), Keys::generate());
    let alice = Messenger::connect(alice_keys.clone(), &relays).await.expect("alice");
    let bob = Messenger::connect(bob_keys.clone(), &relays).await.expect("bob");
    bob.publish_relay_lists().await.expect("bob's relay lists");
    alice.publish_relay_lists().await.expect("alice's relay lists");
    let dm_relays = alice.dm_relays_of(bob.public_key()).await.expect("bob's DM relays");
    assert_eq!(dm_relays.len(), 2, "{dm_relays:?}");
    let (mut alice_db, mut bob_db) = (
        LocalStore::in_memory().expect("db"),
        LocalStore::in_memory().expect("db"),
    );

    // Both relays up: one message, read once though both relays hold it.
    alice
        .send(&mut alice_db, bob.public_key(), "hi bob")
        .await
        .expect("send");
    let read = bob.read(&mut bob_db).await.expect("read");
    assert_eq!(read.new_messages, 1, "{read:?}");
    assert!(read.wraps >= 1);

    // Relay B goes down; both write anyway.
    relay_b.kill_and_wait();
    alice
        .send(&mut alice_db, bob.public_key(), "B is down, A carries this")
        .await
        .expect("one relay is enough");
    bob.send(&mut bob_db, alice.public_key(), "got it")
        .await
        .expect("reply");
    assert_eq!(bob.read(&mut bob_db).await.expect("read").new_messages, 1);
    assert_eq!(alice.read(&mut alice_db).await.expect("read").new_messages, 1);

    // B is back: the waiting wraps reach it, and a reader of B alone sees the whole talk.
    let _relay_b = Flashd::start(&Launch::on_port(dir_b.path(), port_b)).await;
    let resent = alice.resend(&mut alice_db).await.expect("resend");
    assert!(resent >= 2, "the wrap to bob and alice's own copy: {resent}");
    assert!(bob.resend(&mut bob_db).await.expect("resend") >= 2);
    let bob_on_b = Messenger::connect(bob_keys, &[ws(port_b)]).await.expect("bob on B");
    let mut fresh = LocalStore::in_memory().expect("db");
    let report = bob_on_b.read(&mut fresh).await.expect("read B");
    assert_eq!(report.new_messages, 3, "{report:?}");
    let talk: Vec<String> = fresh
        .conversation(&alice.public_key().to_hex(), 10)
        .expect("conversation")
        .into_iter()
        .map(|m| m.content)
        .collect();
    assert_eq!(talk.len(), 3);
    for text in ["hi bob", "B is down, A carries this", "got it"] {
        assert!(talk.iter().any(|t| t == text), "{talk:?}");
    }
    // Reading again brings nothing new.
    assert_eq!(bob_on_b.read(&mut fresh).await.expect("again").new_messages, 0);
    for m in [alice, bob, bob_on_b] {
        m.shutdown().await;
    }
}

#[tokio::test]
async fn flash_and_nostr_sdk_read_each_others_messages() {
    let dir = TempDir::new("chat-interop");
    let port = common::free_port();
    let _relay = Flashd::start(&Launch::on_port(dir.path(), port)).await;
    let alice = Messenger::connect(Keys::generate(), &[ws(port)]).await.expect("alice");
    let mut alice_db = LocalStore::in_memory().expect("db");

    // Carol uses rust-nostr's client directly.
    let carol_keys = Keys::generate();
    let carol = Client::builder().signer(carol_keys.clone()).build();
    carol.add_relay(ws(port)).await.expect("relay");
    carol.connect().await;
    carol.wait_for_connection(Duration::from_secs(5)).await;

    // flash → nostr-sdk.
    alice
        .send(&mut alice_db, carol_keys.public_key(), "hello from flash")
        .await
        .expect("send");
    let wraps = carol
        .fetch_events(
            Filter::new().kind(Kind::GiftWrap).pubkey(carol_keys.public_key()),
            Duration::from_secs(5),
        )
        .await
        .expect("fetch");
    assert_eq!(wraps.len(), 1);
    let wrap = wraps.first().expect("a wrap");
    let gift = carol.unwrap_gift_wrap(wrap).await.expect("unwrap");
    assert_eq!(gift.sender, alice.public_key());
    assert_eq!(gift.rumor.kind, Kind::PrivateDirectMessage);
    assert_eq!(gift.rumor.content, "hello from flash");

    // nostr-sdk → flash.
    carol
        .send_private_msg(alice.public_key(), "hello from nostr-sdk", [])
        .await
        .expect("send");
    let report = alice.read(&mut alice_db).await.expect("read");
    assert_eq!(report.new_messages, 1, "{report:?}");
    let carol_hex = carol_keys.public_key().to_hex();
    let talk = alice_db.conversation(&carol_hex, 10).expect("conversation");
    assert_eq!(talk.len(), 2);
    assert_eq!(talk.iter().filter(|m| m.author == carol_hex).count(), 1);
    assert!(talk.iter().any(|m| m.content == "hello from nostr-sdk"));
    carol.shutdown().await;
    alice.shutdown().await;
}

#[tokio::test]
async fn a_group_is_created_joined_with_an_invite_moderated_and_left() {
    let dir = TempDir::new("chat-groups");
    let port = common::free_port();
    let _relay = Flashd::start(&Launch::on_port(dir.path(), port)).await;
    let relays = [ws(port)];
    let alice = Messenger::connect(Keys::generate(), &relays).await.expect("alice");
    let bob = Messenger::connect(Keys::generate(), &relays).await.expect("bob");
    let carol = Messenger::connect(Keys::generate(), &relays).await.expect("carol");
    let (mut alice_db, mut bob_db, mut carol_db) = (
        LocalStore::in_memory().expect("db"),
        LocalStore::in_memory().expect("db"),
        LocalStore::in_memory().expect("db"),
    );

    let group = GroupRef::new(&ws(port), "climbers").expect("group");
    alice
        .group_create(&mut alice_db, &group, "Climbers", true)
        .await
        .expect("create");
    let invite = alice.group_invite(&group).await.expect("invite");
    let invite: GroupInvite = invite.to_string().parse().expect("the invite travels as text");

    // Closed: without the code Carol is refused, and a non-member cannot post.
    let wrong = GroupInvite {
        code: "not-the-code".into(),
        ..invite.clone()
    };
    assert!(matches!(
        carol.group_join(&mut carol_db, &wrong).await,
        Err(GroupError::Refused(_))
    ));
    assert!(matches!(
        carol.group_post(&group, "let me in").await,
        Err(GroupError::Refused(_))
    ));
    assert!(carol_db.groups().expect("groups").is_empty());

    // With it Bob joins, posts, and everyone reads.
    bob.group_join(&mut bob_db, &invite).await.expect("join");
    let hello = bob.group_post(&group, "hello climbers").await.expect("post");
    let rude = bob.group_post(&group, "something rude").await.expect("post");
    alice.group_post(&group, "welcome bob").await.expect("post");
    let read = alice.group_read(&mut alice_db, &group).await.expect("read");
    assert_eq!(read.len(), 3, "{read:?}");
    assert_eq!(bob_db.groups().expect("groups").len(), 1);

    // Moderation: the admin deletes a post and removes Bob; Bob can no longer post, and a
    // plain member cannot moderate.
    assert!(matches!(
        bob.group_delete_post(&group, hello).await,
        Err(GroupError::Refused(_))
    ));
    alice.group_delete_post(&group, rude).await.expect("delete");
    let read = bob.group_read(&mut bob_db, &group).await.expect("read");
    let texts: Vec<&str> = read.iter().map(|p| p.content.as_str()).collect();
    assert_eq!(texts.len(), 2, "{texts:?}");
    assert!(!texts.contains(&"something rude"), "{texts:?}");
    alice.group_remove(&group, bob.public_key()).await.expect("remove");
    assert!(matches!(
        bob.group_post(&group, "still here?").await,
        Err(GroupError::Refused(_))
    ));

    // Carol joins with the invite, then leaves: she can no longer post, and forgets the group.
    carol.group_join(&mut carol_db, &invite).await.expect("join");
    carol.group_post(&group, "hi all").await.expect("post");
    carol.group_leave(&mut carol_db, &group).await.expect("leave");
    assert!(carol_db.groups().expect("groups").is_empty());
    assert!(matches!(
        carol.group_post(&group, "back?").await,
        Err(GroupError::Refused(_))
    ));
    // The admin adds Bob back directly.
    alice.group_add(&group, bob.public_key()).await.expect("add");
    bob.group_post(&group, "thanks").await.expect("post again");
    for m in [alice, bob, carol] {
        m.shutdown().await;
    }
}
