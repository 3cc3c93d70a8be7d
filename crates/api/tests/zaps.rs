//! Zaps (NIP-57) to a Flash Lightning address: the LNURL offer allows Nostr with the relay's
//! key, bad zap requests are refused, a good one's invoice commits to it, and once paid its
//! receipt is on this relay and on the other relay the request lists.

mod common;

use std::str::FromStr;
use std::time::Duration;

use common::Backend;
use common::*;
use lightning_invoice::{Bolt11Invoice, Bolt11InvoiceDescriptionRef};
use nostr_sdk::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

flash_store::on_both_backends!(zap_requests_are_checked_paid_and_receipted);

fn relay_url(server: &TestServer) -> String {
    format!("ws://{}", server.addr)
}

/// The zap receipts on `server`'s relay for `recipient`, once there are some (10 s at most).
async fn receipts(server: &TestServer, recipient: PublicKey) -> Vec<Event> {
    let client = Client::default();
    client.add_relay(relay_url(server)).await.expect("relay");
    client.connect().await;
    client.wait_for_connection(Duration::from_secs(10)).await;
    for _ in 0..100 {
        let found = client
            .fetch_events(
                Filter::new().kind(Kind::ZapReceipt).pubkey(recipient),
                Duration::from_secs(5),
            )
            .await
            .expect("fetch");
        if !found.is_empty() {
            client.shutdown().await;
            return found.into_iter().collect();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no zap receipt on {}", relay_url(server));
}

async fn callback(server: &TestServer, amount: u64, request: &str) -> (u16, Value) {
    let url = format!(
        "/lnurl/pay/zappee?amount={amount}&nostr={}",
        url::form_urlencoded::byte_serialize(request.as_bytes()).collect::<String>()
    );
    let resp = server.get(&url, &[]).await;
    (resp.status, resp.json())
}

async fn zap_requests_are_checked_paid_and_receipted(backend: Backend) {
    let relay = flash_nostr::RelayConfig {
        zap_receipts_to_private_relays: true,
        ..flash_nostr::RelayConfig::default()
    };
    let server = TestServer::start_with_relay(backend, relay).await;
    let elsewhere = TestServer::start(Backend::Sqlite).await;
    server.named_member("zappee").await;

    let offer = server.get("/.well-known/lnurlp/zappee", &[]).await.json();
    assert_eq!(offer["allowsNostr"], true, "{offer}");
    let info = server.get("/", &[("accept", "application/nostr+json")]).await.json();
    assert_eq!(offer["nostrPubkey"], info["self"]);
    let zapper_key = PublicKey::from_hex(offer["nostrPubkey"].as_str().expect("key")).expect("key");

    let (bob, recipient) = (Keys::generate(), Keys::generate());
    let relays = [
        RelayUrl::parse(&relay_url(&server)).expect("url"),
        RelayUrl::parse(&relay_url(&elsewhere)).expect("url"),
    ];
    let data = ZapRequestData::new(recipient.public_key(), relays.clone())
        .amount(21_000)
        .message("great post");
    let request = EventBuilder::public_zap_request(data)
        .sign_with_keys(&bob)
        .expect("sign");
    let json = request.as_json();

    // Refused: a mismatched amount, another kind, two p tags, no relays, a forged signature.
    let mut forged: Value = serde_json::from_str(&json).expect("json");
    forged["content"] = json!("changed");
    let two_p = EventBuilder::new(Kind::ZapRequest, "")
        .tags([
            Tag::public_key(recipient.public_key()),
            Tag::public_key(Keys::generate().public_key()),
            Tag::relays(relays.clone()),
        ])
        .sign_with_keys(&bob)
        .expect("sign");
    let no_relays = EventBuilder::new(Kind::ZapRequest, "")
        .tag(Tag::public_key(recipient.public_key()))
        .sign_with_keys(&bob)
        .expect("sign");
    let note = EventBuilder::text_note("not a zap").sign_with_keys(&bob).expect("sign");
    for (amount, bad) in [
        (1_000, json.clone()),
        (21_000, note.as_json()),
        (21_000, two_p.as_json()),
        (21_000, no_relays.as_json()),
        (21_000, forged.to_string()),
        (21_000, "{not json".to_string()),
    ] {
        let (status, body) = callback(&server, amount, &bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["status"], "ERROR");
        assert!(
            body["reason"].as_str().unwrap_or_default().contains("zap request"),
            "{body}"
        );
    }

    // Accepted: the invoice commits to the request.
    let (status, body) = callback(&server, 21_000, &json).await;
    assert_eq!(status, 200, "{body}");
    let pr = body["pr"].as_str().expect("pr").to_string();
    let invoice = Bolt11Invoice::from_str(&pr).expect("bolt11");
    let expected: [u8; 32] = Sha256::digest(json.as_bytes()).into();
    match invoice.description() {
        Bolt11InvoiceDescriptionRef::Hash(h) => assert_eq!(AsRef::<[u8]>::as_ref(&h.0), &expected[..]),
        other => panic!("no description hash: {other:?}"),
    }
    assert_eq!(invoice.amount_milli_satoshis(), Some(21_000));

    server.pay_from_outside(&pr).await;

    // The receipt: signed by the offer's key, naming the payer, the invoice and the request.
    let here = receipts(&server, recipient.public_key()).await;
    assert_eq!(here.len(), 1);
    let receipt = &here[0];
    assert_eq!(receipt.pubkey, zapper_key);
    assert!(receipt.verify().is_ok());
    let tag = |name: &str| {
        receipt
            .tags
            .iter()
            .find(|t| t.as_slice().first().map(String::as_str) == Some(name))
            .and_then(|t| t.content())
            .map(str::to_string)
    };
    assert_eq!(tag("bolt11"), Some(pr.clone()));
    assert_eq!(tag("description"), Some(json.clone()));
    assert_eq!(tag("P"), Some(bob.public_key().to_hex()));
    assert_eq!(tag("p"), Some(recipient.public_key().to_hex()));
    // And on the other relay the request listed.
    let there = receipts(&elsewhere, recipient.public_key()).await;
    assert_eq!(there[0].id, receipt.id);
}
