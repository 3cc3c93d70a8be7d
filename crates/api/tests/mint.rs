//! The mint over HTTP: the `/v1` routes and their NUT error bodies, request size limits, the
//! NUT-17 WebSocket subscriptions on `/v1/ws`, and `ecashMint` / `ecashRedeem` /
//! `ecashStatus` through GraphQL.

mod common;

use std::time::Duration;

use cashu::nuts::{Id, Keys, KeysResponse, MintQuoteBolt11Response, Proofs, SwapRequest};
use common::*;
use flash_mint::wallet::{split, Premint};
use flash_store::testing::Backend;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;

flash_store::on_both_backends!(
    rest_routes_answer_with_nut_bodies,
    websocket_subscribers_see_quotes_paid_and_notes_spent,
    graphql_turns_balance_into_ecash_and_back,
);

async fn active_keys(server: &TestServer) -> (Id, Keys) {
    let resp = server.get("/v1/keys", &[]).await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let keys: KeysResponse = serde_json::from_str(&resp.text).expect("keys");
    let set = keys.keysets.into_iter().next().expect("an active keyset");
    (set.id, set.keys)
}

/// Mints `sats` of notes over HTTP, the quote's invoice paid from outside.
async fn mint_notes(server: &TestServer, sats: u64) -> Proofs {
    let quote: MintQuoteBolt11Response<String> = serde_json::from_str(
        &server
            .post_json("/v1/mint/quote/bolt11", None, &json!({ "amount": sats, "unit": "sat" }))
            .await
            .text,
    )
    .expect("quote");
    server.pay_from_outside(&quote.request).await;
    let (id, keys) = active_keys(server).await;
    let pre = Premint::random(id, &split(sats)).expect("blind");
    let resp = server
        .post_json(
            "/v1/mint/bolt11",
            None,
            &json!({ "quote": quote.quote, "outputs": pre.outputs }),
        )
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text);
    let minted: cashu::nuts::MintResponse = serde_json::from_str(&resp.text).expect("mint response");
    pre.unblind(minted.signatures, &keys).expect("unblind")
}

async fn rest_routes_answer_with_nut_bodies(backend: Backend) {
    let server = TestServer::start(backend).await;
    let info = server.get("/v1/info", &[]).await.json();
    assert_eq!(info["name"], json!("Flash"));
    assert_eq!(info["nuts"]["17"]["supported"][0]["method"], json!("bolt11"));
    let keysets = server.get("/v1/keysets", &[]).await.json();
    let id = keysets["keysets"][0]["id"].as_str().expect("keyset id").to_string();
    assert_eq!(server.get(&format!("/v1/keys/{id}"), &[]).await.status, 200);
    let unknown = server.get("/v1/keys/00ffffffffffffff", &[]).await;
    assert_eq!((unknown.status, unknown.json()["code"].clone()), (400, json!(12001)));

    // Malformed JSON and a swap that does not balance: 400 with {detail, code}.
    let bad = server
        .post_raw("/v1/swap", None, "application/json", b"{not json".to_vec())
        .await;
    assert_eq!(bad.status, 400);
    assert!(bad.json()["detail"].as_str().is_some_and(|d| !d.is_empty()));
    let proofs = mint_notes(&server, 8).await;
    let (id, _) = active_keys(&server).await;
    let unbalanced = SwapRequest::new(proofs.clone(), Premint::random(id, &[4]).expect("blind").outputs);
    let resp = server.post_json("/v1/swap", None, &json!(unbalanced)).await;
    assert_eq!(
        (resp.status, resp.json()["code"].clone()),
        (400, json!(11005)),
        "{}",
        resp.text
    );
    // More notes than the mint takes in one request, and a body over the limit.
    let many: Vec<_> = (0..101).map(|_| proofs[0].clone()).collect();
    let resp = server
        .post_json("/v1/swap", None, &json!({ "inputs": many, "outputs": [] }))
        .await;
    assert_eq!(resp.json()["code"], json!(11014), "{}", resp.text);
    let states = server
        .post_json("/v1/checkstate", None, &json!({ "Ys": [proofs[0].y().expect("Y")] }))
        .await
        .json();
    assert_eq!(states["states"][0]["state"], json!("UNSPENT"));

    // New quotes count against the per-IP limit of unauthenticated Lightning requests.
    let mut limited = None;
    for _ in 0..700 {
        let resp = server
            .post_json("/v1/mint/quote/bolt11", None, &json!({ "amount": 1, "unit": "sat" }))
            .await;
        if resp.status != 200 {
            limited = Some(resp);
            break;
        }
    }
    let limited = limited.expect("a flood of quotes is limited");
    assert_eq!(limited.status, 429, "{}", limited.text);
    assert!(limited.headers.contains_key("retry-after"));
    assert!(limited.json()["detail"].as_str().is_some());
    // Last: a body over the limit is refused with 413 and the connection dropped; the client
    // may see the drop (a broken pipe) before it reads the answer.
    let huge = vec![b' '; flash_api::MINT_BODY_LIMIT_BYTES + 1];
    let sent = reqwest::Client::new()
        .post(server.url("/v1/swap"))
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await;
    match sent {
        Ok(resp) => assert_eq!(resp.status().as_u16(), 413),
        Err(e) => assert!(e.is_request(), "not a dropped connection: {e:?}"),
    }
}

async fn next_json(
    ws: &mut (impl StreamExt<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin),
) -> Value {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("a message within 10 s")
            .expect("open")
            .expect("message");
        if let Message::Text(text) = msg {
            return serde_json::from_str(text.as_str()).expect("JSON message");
        }
    }
}

async fn websocket_subscribers_see_quotes_paid_and_notes_spent(backend: Backend) {
    let server = TestServer::start(backend).await;
    let (mut ws, _) = tokio_tungstenite::connect_async(format!("ws://{}/v1/ws", server.addr))
        .await
        .expect("websocket");
    let quote = server
        .post_json("/v1/mint/quote/bolt11", None, &json!({ "amount": 21, "unit": "sat" }))
        .await
        .json();
    let subscribe = |id: u64, kind: &str, sub: &str, filters: Value| {
        json!({ "jsonrpc": "2.0", "id": id, "method": "subscribe",
                "params": { "kind": kind, "subId": sub, "filters": filters } })
        .to_string()
    };
    ws.send(Message::Text(
        subscribe(1, "bolt11_mint_quote", "q", json!([quote["quote"]])).into(),
    ))
    .await
    .expect("send");
    let ok = next_json(&mut ws).await;
    assert_eq!(
        (ok["id"].clone(), ok["result"]["status"].clone()),
        (json!(1), json!("OK")),
        "{ok}"
    );
    let first = next_json(&mut ws).await;
    assert_eq!(first["params"]["subId"], json!("q"));
    assert_eq!(
        first["params"]["payload"]["state"],
        json!("UNPAID"),
        "the current state at once"
    );

    // Paid by the bank's Lightning side: the subscriber hears of it.
    server
        .pay_from_outside(quote["request"].as_str().expect("the quote's invoice"))
        .await;
    let note = next_json(&mut ws).await;
    assert_eq!(note["params"]["payload"]["state"], json!("PAID"), "{note}");

    // Notes: UNSPENT, then SPENT after a swap.
    let proofs = mint_notes(&server, 4).await;
    let ys: Vec<String> = proofs.iter().map(|p| p.y().expect("Y").to_hex()).collect();
    ws.send(Message::Text(subscribe(2, "proof_state", "p", json!(ys)).into()))
        .await
        .expect("send");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let msg = next_json(&mut ws).await;
        if msg["params"]["subId"] == json!("p") || msg["id"] == json!(2) {
            seen.push(msg);
        }
    }
    assert_eq!(seen[0]["result"]["status"], json!("OK"));
    assert_eq!(seen[1]["params"]["payload"]["state"], json!("UNSPENT"));
    let (id, _) = active_keys(&server).await;
    let swap = SwapRequest::new(proofs, Premint::random(id, &[4]).expect("blind").outputs);
    assert_eq!(server.post_json("/v1/swap", None, &json!(swap)).await.status, 200);
    loop {
        let msg = next_json(&mut ws).await;
        if msg["params"]["subId"] == json!("p") {
            assert_eq!(msg["params"]["payload"]["state"], json!("SPENT"), "{msg}");
            break;
        }
    }

    // Unsubscribe, unknown kinds and bad requests are answered, not dropped.
    ws.send(Message::Text(
        json!({ "jsonrpc": "2.0", "id": 3, "method": "unsubscribe", "params": { "subId": "p" } })
            .to_string()
            .into(),
    ))
    .await
    .expect("send");
    loop {
        let msg = next_json(&mut ws).await;
        if msg["id"] == json!(3) {
            assert_eq!(msg["result"]["status"], json!("OK"));
            break;
        }
    }
    ws.send(Message::Text(
        subscribe(4, "bolt12_mint_quote", "x", json!(["a"])).into(),
    ))
    .await
    .expect("send");
    let refused = next_json(&mut ws).await;
    assert_eq!(
        (refused["id"].clone(), refused["error"]["code"].clone()),
        (json!(4), json!(-32602))
    );
    ws.send(Message::Text("nonsense".into())).await.expect("send");
    assert_eq!(next_json(&mut ws).await["error"]["code"], json!(-32600));
}

const ECASH_MINT: &str = "mutation($w: WalletId!, $a: SatAmount!) { ecashMint(input: {walletId: $w, amount: $a}) \
{ errors { code message } token amount } }";
const ECASH_REDEEM: &str = "mutation($w: WalletId!, $t: String!) { ecashRedeem(input: {walletId: $w, token: $t}) \
{ errors { code message } amount fee } }";
const ECASH_STATUS: &str = "query { ecashStatus { outstanding ledgerOutstanding balanced keysets { id active } } }";

async fn graphql_turns_balance_into_ecash_and_back(backend: Backend) {
    let server = TestServer::start(backend).await;
    let alice = server.member().await;
    let bob = server.member().await;
    server.fund(&alice.wallet_id, 5_000).await;
    let minted = server
        .gql(
            Some(&alice.token),
            ECASH_MINT,
            json!({ "w": alice.wallet_id, "a": 1_234 }),
        )
        .await;
    let payload = &minted["data"]["ecashMint"];
    assert_eq!(payload["errors"], json!([]), "{minted}");
    assert_eq!(payload["amount"], json!(1_234));
    let token = payload["token"].as_str().expect("token").to_string();
    let status = server.admin(ECASH_STATUS, json!({})).await;
    assert_eq!(status["data"]["ecashStatus"]["outstanding"], json!(1_234), "{status}");
    assert_eq!(status["data"]["ecashStatus"]["balanced"], json!(true));
    let metrics = server.get("/metrics", &[]).await.text;
    assert!(metrics.contains("flash_mint_outstanding_sats 1234"), "{metrics}");
    assert!(metrics.contains("flash_mint_balanced 1"), "{metrics}");

    let redeemed = server
        .gql(
            Some(&bob.token),
            ECASH_REDEEM,
            json!({ "w": bob.wallet_id, "t": token }),
        )
        .await;
    assert_eq!(redeemed["data"]["ecashRedeem"]["amount"], json!(1_234), "{redeemed}");
    let again = server
        .gql(
            Some(&alice.token),
            ECASH_REDEEM,
            json!({ "w": alice.wallet_id, "t": token }),
        )
        .await;
    assert_eq!(
        again["data"]["ecashRedeem"]["errors"][0]["code"],
        json!("ECASH_ALREADY_SPENT")
    );
    // Someone else's wallet, and more than the balance.
    let foreign = server
        .gql(Some(&bob.token), ECASH_MINT, json!({ "w": alice.wallet_id, "a": 10 }))
        .await;
    assert_eq!(
        foreign["data"]["ecashMint"]["errors"][0]["code"],
        json!("WALLET_NOT_FOUND"),
        "{foreign}"
    );
    let broke = server
        .gql(
            Some(&alice.token),
            ECASH_MINT,
            json!({ "w": alice.wallet_id, "a": 100_000 }),
        )
        .await;
    assert_eq!(
        broke["data"]["ecashMint"]["errors"][0]["code"],
        json!("INSUFFICIENT_BALANCE"),
        "{broke}"
    );
    let status = server.admin(ECASH_STATUS, json!({})).await;
    assert_eq!(status["data"]["ecashStatus"]["outstanding"], json!(0));
    assert_eq!(status["data"]["ecashStatus"]["balanced"], json!(true));
}
