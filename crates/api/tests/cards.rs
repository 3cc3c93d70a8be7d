//! Flash Cards over HTTP on both backends, driven by a simulated Bolt Card written from the
//! spec (`flash_merchant::boltcard::testing`): programming as the Bolt Card NFC Programmer app
//! does it, taps paid once each, replayed and lower counters, wrong MACs, disabled and wiped
//! cards, a reset that needs a valid tap, the per-tap and 24-hour limits under 200 concurrent
//! taps, and two callbacks for one tap.

mod common;

use std::sync::Arc;

use common::*;
use flash_core::{AccountId, Network};
use flash_merchant::boltcard::testing::SimulatedCard;
use flash_merchant::cards::{CardAction, CardCreate};
use serde_json::{json, Value};

flash_store::on_both_backends!(
    a_programmed_card_pays_once_per_tap,
    bad_taps_are_refused_and_change_nothing,
    disabled_and_wiped_cards_do_not_pay,
    concurrent_taps_never_exceed_the_day_limit,
    two_callbacks_for_one_tap_pay_once,
    cards_are_managed_over_graphql,
    a_failed_lightning_payment_gives_the_spend_back,
    a_pin_guards_withdrawals_from_its_limit,
    a_card_is_topped_up_through_its_pay_link,
    the_operator_disables_any_card_and_is_audited,
);

/// A card's UID, as a test card has it.
const UID: [u8; 7] = [0x04, 0x99, 0x6c, 0x6a, 0x92, 0x69, 0x80];

fn account(m: &Member) -> AccountId {
    m.account_id.parse().expect("account id")
}

async fn a_programmed_card_pays_once_per_tap(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (owner, shop) = (s.member().await, s.member().await);
    s.fund(&owner.wallet_id, 50_000).await;
    let (id, mut card, keys, link) = programmed_card(&s, &owner, 10_000, 25_000, UID).await;
    assert_eq!(keys["LNURLW"], format!("lnurlw://{}/boltcard", s.addr));
    assert_eq!(keys["version"], 0);
    for k in ["K0", "K1", "K2", "K3", "K4"] {
        assert_eq!(keys[k].as_str().map(str::len), Some(32), "{k}: {keys}");
    }
    // Until the first tap the link answers the same keys for the same card (the app may have
    // failed half way), and refuses another card.
    let again = s
        .post_json(&link, None, &json!({"UID": card_uid_hex(&UID).to_uppercase()}))
        .await;
    assert_eq!((again.status, again.json()), (200, keys.clone()), "{}", again.text);
    let other = s.post_json(&link, None, &json!({"UID": "04010203040506"})).await;
    assert!(lnurl_reason(&other).contains("another card"));
    let unknown = s
        .post_json(
            &format!("/boltcard/program/{}", "x".repeat(43)),
            None,
            &json!({"UID": card_uid_hex(&UID)}),
        )
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);

    let offer = card_tap(&s, &mut card).await;
    assert_eq!(offer.status, 200, "{}", offer.text);
    let offer = offer.json();
    assert_eq!(
        (
            &offer["tag"],
            &offer["minWithdrawable"],
            &offer["maxWithdrawable"],
            &offer["defaultDescription"]
        ),
        (
            &json!("withdrawRequest"),
            &json!(1_000),
            &json!(10_000_000),
            &json!("Coffee card")
        )
    );
    assert_eq!(offer["callback"], format!("http://{}/boltcard/callback", s.addr));
    let k1 = offer["k1"].as_str().expect("k1");
    // After the first tap the programming link is spent.
    let spent = s.post_json(&link, None, &json!({"UID": card_uid_hex(&UID)})).await;
    assert_eq!(spent.status, 404, "{}", spent.text);
    // Over the tap's limit: refused, and the tap stays usable.
    let big = wallet_invoice(&s, &shop, 10_001).await;
    assert!(lnurl_reason(&card_withdraw(&s, k1, &big).await).contains("at most 10000"));
    let pr = wallet_invoice(&s, &shop, 2_100).await;
    let paid = card_withdraw(&s, k1, &pr).await;
    assert_eq!(
        (paid.status, paid.json()),
        (200, json!({"status": "OK"})),
        "{}",
        paid.text
    );
    assert_eq!(
        (s.balance(&owner).await, s.balance(&shop).await),
        (50_000 - 2_100, 2_100)
    );
    // The same k1 again, for another invoice: the tap is used.
    let other = wallet_invoice(&s, &shop, 100).await;
    assert!(lnurl_reason(&card_withdraw(&s, k1, &other).await).contains("tap the card again"));
    // The same invoice again: already paid, nothing moves.
    assert!(card_withdraw(&s, k1, &pr).await.status >= 400);
    assert_eq!(s.balance(&owner).await, 50_000 - 2_100);

    // The holder's balance, for a tap (its counter is used up: the same tap shows nothing).
    let (p, c) = card.tap();
    let mut balance = s.get(&format!("/boltcard/balance?p={p}&c={c}"), &[]).await.json();
    let pay_link = balance["payLink"].take();
    assert_eq!(pay_link, offer["payLink"], "the top-up link, as the tap gave it");
    assert_eq!(
        balance,
        json!({"name": "Coffee card", "balance": 50_000 - 2_100, "tapLimit": 10_000, "dayLimit": 25_000, "dayLeft": 25_000 - 2_100, "payLink": null})
    );
    let again = s.get(&format!("/boltcard/balance?p={p}&c={c}"), &[]).await;
    assert!(lnurl_reason(&again).contains("seen before"));
    assert_eq!(s.get("/boltcard/balance?p=00", &[]).await.status, 400);
    // A second tap has 25,000 - 2,100 left of the day and 10,000 per tap.
    let second = card_tap(&s, &mut card).await.json();
    assert_eq!(second["maxWithdrawable"], 10_000_000);
    // A replayed tap and a lower counter are refused.
    let (p, c) = card.tap_with_counter(card.counter);
    assert!(lnurl_reason(&s.get(&format!("/boltcard?p={p}&c={c}"), &[]).await).contains("seen before"));
    let (p, c) = card.tap_with_counter(1);
    assert!(lnurl_reason(&s.get(&format!("/boltcard?p={p}&c={c}"), &[]).await).contains("seen before"));
    let listed = s.state.cards.list(account(&owner)).await.expect("list");
    assert_eq!(
        (
            listed.len(),
            listed[0].id.as_str(),
            listed[0].state.as_str(),
            listed[0].counter
        ),
        (1, id.as_str(), "active", 3)
    );
    s.journals().await;
}

async fn bad_taps_are_refused_and_change_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let owner = s.member().await;
    s.fund(&owner.wallet_id, 10_000).await;
    let (id, mut card, _, _) = programmed_card(&s, &owner, 1_000, 5_000, UID).await;
    let (p, c) = card.tap_with_counter(7);
    let mut bad_c = c.clone().into_bytes();
    bad_c[0] = if bad_c[0] == b'0' { b'1' } else { b'0' };
    let bad_c = String::from_utf8(bad_c).expect("hex");
    for (query, status) in [
        (format!("p={p}&c={bad_c}"), 400),
        (format!("p={p}"), 400),
        (format!("c={c}"), 400),
        (format!("p=zz&c={c}"), 400),
        (String::new(), 400),
    ] {
        let r = s.get(&format!("/boltcard?{query}"), &[]).await;
        assert_eq!(r.status, status, "{query}: {}", r.text);
        assert_eq!(r.json()["status"], "ERROR", "{query}");
    }
    // `p` of no card of this issuer: refused (1 in 256 such blocks decrypt to the tag byte,
    // then no card has the UID in it).
    let r = s.get(&format!("/boltcard?p={}&c={c}", "0".repeat(32)), &[]).await;
    assert!(matches!(r.status, 400 | 404), "{}", r.text);
    // A card of this issuer that was never programmed: not found.
    let mut stranger = SimulatedCard {
        uid: [4, 1, 2, 3, 4, 5, 6],
        ..card.clone()
    };
    assert_eq!(card_tap(&s, &mut stranger).await.status, 404);
    // A card under other keys (another issuer): `p` does not decrypt (or, 1 in 256, to no
    // card of this issuer).
    let mut foreign = SimulatedCard {
        k1: [1; 16],
        ..card.clone()
    };
    assert!(matches!(card_tap(&s, &mut foreign).await.status, 400 | 404));
    // Callbacks with unknown or missing k1: refused.
    assert_eq!(card_withdraw(&s, "nosuchk1", "lnbc1").await.status, 404);
    assert_eq!(s.get("/boltcard/callback?k1=abc", &[]).await.status, 400);
    // Programming and reset with bad bodies.
    assert_eq!(
        s.post_json("/boltcard/program/nosuchlink", None, &json!({"UID": "04996c6a926980"}))
            .await
            .status,
        404
    );
    assert_eq!(
        s.post_json("/boltcard/program/x", None, &json!({"UID": "nothex"}))
            .await
            .status,
        400
    );
    assert_eq!(
        s.post_raw("/boltcard/reset", None, "application/json", b"{".to_vec())
            .await
            .status,
        400
    );
    assert_eq!(
        s.post_json("/boltcard/reset", None, &json!({"LNURLW": "https://x/?p=1"}))
            .await
            .status,
        400
    );
    // Nothing moved, the counter is where it was: the card's tap with counter 7 still works.
    let card_now = s.state.cards.card(account(&owner), &id).await.expect("card");
    assert_eq!(card_now.counter, 0);
    let r = s.get(&format!("/boltcard?p={p}&c={c}"), &[]).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(s.balance(&owner).await, 10_000);
}

async fn disabled_and_wiped_cards_do_not_pay(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (owner, shop) = (s.member().await, s.member().await);
    s.fund(&owner.wallet_id, 10_000).await;
    let (id, mut card, keys, _) = programmed_card(&s, &owner, 1_000, 5_000, UID).await;
    let cards = &s.state.cards;
    let k1 = card_tap(&s, &mut card).await.json()["k1"]
        .as_str()
        .expect("k1")
        .to_string();
    cards
        .act(account(&owner), &id, CardAction::Disable)
        .await
        .expect("disable");
    assert!(lnurl_reason(&card_tap(&s, &mut card).await).contains("disabled"));
    let pr = wallet_invoice(&s, &shop, 500).await;
    assert!(lnurl_reason(&card_withdraw(&s, &k1, &pr).await).contains("disabled"));
    // Another account cannot touch it.
    assert!(cards.act(account(&shop), &id, CardAction::Enable).await.is_err());
    cards
        .act(account(&owner), &id, CardAction::Enable)
        .await
        .expect("enable");
    let k1 = card_tap(&s, &mut card).await.json()["k1"]
        .as_str()
        .expect("k1")
        .to_string();
    assert_eq!(card_withdraw(&s, &k1, &pr).await.json()["status"], "OK");

    // A reset needs a valid tap of the card: a replayed one is refused.
    let (p, c) = card.tap_with_counter(card.counter);
    let lnurlw = |p: &str, c: &str| json!({ "LNURLW": format!("lnurlw://{}/boltcard?p={p}&c={c}", s.addr) });
    assert_eq!(s.post_json("/boltcard/reset", None, &lnurlw(&p, &c)).await.status, 400);
    let (p, c) = card.tap();
    let reset = s.post_json("/boltcard/reset", None, &lnurlw(&p, &c)).await;
    assert_eq!(reset.status, 200, "{}", reset.text);
    let reset = reset.json();
    for k in ["K0", "K1", "K2", "K3", "K4"] {
        assert_eq!(reset[k], keys[k], "the keys it was programmed with");
    }
    assert_eq!(cards.card(account(&owner), &id).await.expect("card").state, "wiped");
    assert_eq!(card_tap(&s, &mut card).await.status, 404, "a wiped card is no card");
    assert!(
        cards.act(account(&owner), &id, CardAction::Enable).await.is_err(),
        "wiped is final"
    );

    // The same physical card programmed again: the next key version, new keys (but K1).
    let (_, mut again, keys2, _) = programmed_card(&s, &owner, 1_000, 5_000, UID).await;
    assert_eq!(keys2["version"], 1);
    assert_ne!(keys2["K2"], keys["K2"]);
    assert_eq!(keys2["K1"], keys["K1"]);
    assert_eq!(card_tap(&s, &mut again).await.status, 200);
    // A second programming of a card that is live is refused.
    let created = cards
        .create(
            account(&owner),
            CardCreate {
                wallet_id: None,
                name: "Dup".into(),
                tap_limit_sat: 1,
                day_limit_sat: 1,
            },
        )
        .await
        .expect("card");
    let path = created
        .program_url
        .strip_prefix(&format!("http://{}", s.addr))
        .expect("path")
        .to_string();
    let dup = s.post_json(&path, None, &json!({ "UID": card_uid_hex(&UID) })).await;
    assert!(lnurl_reason(&dup).contains("already programmed"));
    assert_eq!(s.balance(&owner).await, 10_000 - 500);
}

async fn concurrent_taps_never_exceed_the_day_limit(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    let (owner, shop) = (s.member().await, s.member().await);
    s.fund(&owner.wallet_id, 100_000).await;
    let (_, mut card, _, _) = programmed_card(&s, &owner, 1_000, 5_000, UID).await;
    // 200 taps with increasing counters, all sent at once; then a callback for each tap
    // that got a k1, all at once, each for 1,000 sats.
    let taps: Vec<(String, String)> = (0..200).map(|_| card.tap()).collect();
    let mut answers = Vec::new();
    for (p, c) in taps {
        let s = s.clone();
        answers.push(tokio::spawn(async move {
            s.get(&format!("/boltcard?p={p}&c={c}"), &[]).await
        }));
    }
    let mut k1s: Vec<String> = Vec::new();
    for a in answers {
        let r = a.await.expect("tap");
        if r.status == 200 {
            k1s.push(r.json()["k1"].as_str().expect("k1").to_string());
        } else {
            assert!(lnurl_reason(&r).contains("seen before"), "{}", r.text);
        }
    }
    assert!(!k1s.is_empty());
    let opened = k1s.len();
    let mut paid = Vec::new();
    for k1 in k1s {
        let (s, pr) = (s.clone(), wallet_invoice(&s, &shop, 1_000).await);
        paid.push(tokio::spawn(async move { card_withdraw(&s, &k1, &pr).await }));
    }
    let mut ok: i64 = 0;
    for p in paid {
        let r = p.await.expect("callback");
        if r.json()["status"] == "OK" {
            ok += 1;
        } else {
            assert!(lnurl_reason(&r).contains("24-hour limit"), "{}", r.text);
        }
    }
    assert_eq!(
        ok,
        opened.min(5) as i64,
        "{ok} payments of 1,000 from {opened} taps under a 5,000 limit"
    );
    assert_eq!(s.balance(&shop).await, ok * 1_000);
    assert_eq!(s.balance(&owner).await, 100_000 - ok * 1_000);
    // The next tap offers nothing more today when the limit is spent.
    if ok == 5 {
        let r = card_tap(&s, &mut card).await;
        assert!(lnurl_reason(&r).contains("24-hour limit is used up"), "{}", r.text);
    }
    s.journals().await;
}

async fn two_callbacks_for_one_tap_pay_once(backend: Backend) {
    let s = Arc::new(TestServer::start(backend).await);
    let (owner, shop) = (s.member().await, s.member().await);
    s.fund(&owner.wallet_id, 10_000).await;
    let (_, mut card, _, _) = programmed_card(&s, &owner, 1_000, 5_000, UID).await;
    let k1 = card_tap(&s, &mut card).await.json()["k1"]
        .as_str()
        .expect("k1")
        .to_string();
    let (a, b) = (
        wallet_invoice(&s, &shop, 400).await,
        wallet_invoice(&s, &shop, 600).await,
    );
    let (ra, rb) = tokio::join!(card_withdraw(&s, &k1, &a), card_withdraw(&s, &k1, &b));
    let oks = [&ra, &rb].iter().filter(|r| r.json()["status"] == "OK").count();
    assert_eq!(oks, 1, "{} / {}", ra.text, rb.text);
    let spent = 10_000 - s.balance(&owner).await;
    assert!(spent == 400 || spent == 600, "one of the two: {spent}");
    assert_eq!(s.balance(&shop).await, spent);
}

async fn cards_are_managed_over_graphql(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (owner, other) = (s.member().await, s.member().await);
    let create = |input: Value| {
        let token = owner.token.clone();
        let s = &s;
        async move {
            s.gql(
                Some(&token),
                "mutation($input: CardCreateInput!) { cardCreate(input: $input) { errors { code message } \
                 card { id name state tapLimit dayLimit keyVersion } programUrl programDeeplink } }",
                json!({ "input": input }),
            )
            .await
        }
    };
    // Bad input: a clear error, nothing made.
    for input in [
        json!({"name": "Card", "tapLimit": 2_000, "dayLimit": 1_000}),
        json!({"name": "", "tapLimit": 1_000, "dayLimit": 1_000}),
        json!({"name": "Card", "tapLimit": 0, "dayLimit": 1_000}),
        json!({"name": "Card", "tapLimit": 1_000, "dayLimit": 200_000_000}),
        json!({"name": "Card", "tapLimit": 1_000, "dayLimit": 2_000, "walletId": other.wallet_id}),
    ] {
        let r = create(input.clone()).await;
        let payload = data(&r, "cardCreate");
        assert!(payload["card"].is_null(), "{input}: {r}");
        let code = payload["errors"][0]["code"].as_str().unwrap_or_default().to_string();
        assert!(code == "INVALID_INPUT" || code == "WALLET_NOT_FOUND", "{input}: {r}");
    }
    let cards = |token: String| {
        let s = &s;
        async move {
            s.gql(Some(&token), "{ cards { id state tapLimit dayLimit } }", json!({}))
                .await
        }
    };
    assert_eq!(data(&cards(owner.token.clone()).await, "cards"), &json!([]));

    let r = create(json!({"name": "Coffee", "tapLimit": 1_000, "dayLimit": 5_000})).await;
    let made = data(&r, "cardCreate");
    assert_eq!(made["errors"], json!([]), "{r}");
    assert_eq!(
        (
            &made["card"]["state"],
            &made["card"]["tapLimit"],
            &made["card"]["keyVersion"]
        ),
        (&json!("programming"), &json!(1_000), &json!(0))
    );
    let deeplink = made["programDeeplink"].as_str().expect("deeplink");
    assert!(
        deeplink.starts_with("boltcard://program?url=http%3A%2F%2F127.0.0.1"),
        "{deeplink}"
    );
    let id = made["card"]["id"].as_str().expect("id").to_string();
    let act = |name: &'static str, token: String, extra: Value| {
        let (s, id) = (&s, id.clone());
        async move {
            let mut input = json!({ "id": id });
            if let (Some(i), Value::Object(e)) = (input.as_object_mut(), extra) {
                i.extend(e);
            }
            let input_type = if name == "cardLimitsUpdate" {
                "CardLimitsUpdateInput"
            } else {
                "CardInput"
            };
            let r = s
                .gql(
                    Some(&token),
                    &format!(
                        "mutation($input: {input_type}!) {{ {name}(input: $input) {{ errors {{ code }} card {{ state tapLimit dayLimit }} }} }}"
                    ),
                    json!({ "input": input }),
                )
                .await;
            data(&r, name).clone()
        }
    };
    // Not programmed yet: it cannot be enabled; another account does not see it.
    assert_eq!(
        act("cardEnable", owner.token.clone(), json!({})).await["errors"][0]["code"],
        "INVALID_INPUT"
    );
    assert_eq!(
        act("cardDisable", other.token.clone(), json!({})).await["errors"][0]["code"],
        "NOT_FOUND"
    );
    let limits = act(
        "cardLimitsUpdate",
        owner.token.clone(),
        json!({"tapLimit": 2_000, "dayLimit": 8_000}),
    )
    .await;
    assert_eq!(
        limits["card"],
        json!({"state": "programming", "tapLimit": 2_000, "dayLimit": 8_000})
    );
    let bad = act(
        "cardLimitsUpdate",
        owner.token.clone(),
        json!({"tapLimit": 9_000, "dayLimit": 8_000}),
    )
    .await;
    assert_eq!(bad["errors"][0]["code"], "INVALID_INPUT");
    assert_eq!(
        act("cardDisable", owner.token.clone(), json!({})).await["card"]["state"],
        "disabled"
    );
    assert_eq!(
        act("cardWipe", owner.token.clone(), json!({})).await["card"]["state"],
        "wiped"
    );
    assert_eq!(
        act("cardDisable", owner.token.clone(), json!({})).await["errors"][0]["code"],
        "REFUSED"
    );
    assert_eq!(
        data(&cards(owner.token.clone()).await, "cards"),
        &json!([{"id": id, "state": "wiped", "tapLimit": 2_000, "dayLimit": 8_000}])
    );
    assert_eq!(data(&cards(other.token.clone()).await, "cards"), &json!([]));
    let reset = s.gql(Some(&owner.token), "{ cardResetDeeplink }", json!({})).await;
    assert_eq!(
        data(&reset, "cardResetDeeplink"),
        &json!(format!(
            "boltcard://reset?url=http%3A%2F%2F{}%2Fboltcard%2Freset",
            s.addr.to_string().replace(':', "%3A")
        ))
    );
}

/// Sets how the bank's simulator pays other nodes.
async fn set_outcome(s: &TestServer, outcome: &str) {
    let r = s
        .admin(
            "mutation($input: DevLightningSetOutcomeInput!) { devLightningSetOutcome(input: $input) { \
             errors { code message } success } }",
            json!({ "input": { "outcome": outcome, "delayMs": 0, "feePpm": 0 } }),
        )
        .await;
    assert_eq!(data(&r, "devLightningSetOutcome")["success"], true, "{r}");
}

async fn a_failed_lightning_payment_gives_the_spend_back(backend: Backend) {
    let s = TestServer::start(backend).await;
    let owner = s.member().await;
    s.fund(&owner.wallet_id, 20_000).await;
    let (_, mut card, _, _) = programmed_card(&s, &owner, 3_000, 3_000, UID).await;
    let other = other_node(Network::Regtest);
    // A payment to another node that fails: the tap is used, the day's limit is whole again.
    set_outcome(&s, "FAIL").await;
    let k1 = card_tap(&s, &mut card).await.json()["k1"]
        .as_str()
        .expect("k1")
        .to_string();
    let pr = external_invoice(&other, Some(3_000), 600).await;
    assert_eq!(card_withdraw(&s, &k1, &pr).await.json()["status"], "ERROR");
    assert_eq!(s.balance(&owner).await, 20_000, "the hold was reversed");
    // The same tap and invoice again: the first attempt's answer, nothing moves.
    assert_eq!(card_withdraw(&s, &k1, &pr).await.json()["status"], "ERROR");
    assert_eq!(s.balance(&owner).await, 20_000);
    // A payment to another node that succeeds: the whole 3,000 of the day was still there.
    set_outcome(&s, "SUCCEED").await;
    let offer = card_tap(&s, &mut card).await.json();
    assert_eq!(offer["maxWithdrawable"], 3_000_000, "{offer}");
    let k1 = offer["k1"].as_str().expect("k1");
    let pr = external_invoice(&other, Some(3_000), 600).await;
    assert_eq!(card_withdraw(&s, k1, &pr).await.json()["status"], "OK");
    assert!(s.balance(&owner).await <= 20_000 - 3_000);
    // The day is spent now.
    assert!(lnurl_reason(&card_tap(&s, &mut card).await).contains("used up"));
    s.journals().await;
}

async fn a_pin_guards_withdrawals_from_its_limit(backend: Backend) {
    let s = TestServer::start(backend).await;
    let (owner, shop) = (s.member().await, s.member().await);
    s.fund(&owner.wallet_id, 50_000).await;
    let (id, mut card, _, _) = programmed_card(&s, &owner, 10_000, 40_000, UID).await;
    let pin_set = |input: Value| {
        let (s, token, id) = (&s, owner.token.clone(), id.clone());
        async move {
            let mut input = input;
            if let Some(i) = input.as_object_mut() {
                i.insert("id".into(), json!(id));
            }
            let r = s
                .gql(
                    Some(&token),
                    "mutation($input: CardPinSetInput!) { cardPinSet(input: $input) { errors { code message } \
                     card { state pinLimit pinFailures } } }",
                    json!({ "input": input }),
                )
                .await;
            data(&r, "cardPinSet").clone()
        }
    };
    for bad in [
        json!({"pin": "12", "pinLimit": 5_000}),
        json!({"pin": "12a4", "pinLimit": 5_000}),
        json!({"pin": "1234"}),
    ] {
        assert_eq!(
            pin_set(bad.clone()).await["errors"][0]["code"],
            "INVALID_INPUT",
            "{bad}"
        );
    }
    let set = pin_set(json!({"pin": "1234", "pinLimit": 5_000})).await;
    assert_eq!(
        set["card"],
        json!({"state": "programming", "pinLimit": 5_000, "pinFailures": 0})
    );

    // Below the PIN limit no PIN is asked.
    let offer = card_tap(&s, &mut card).await.json();
    assert_eq!(offer["pinLimit"], 5_000_000, "{offer}");
    let k1 = offer["k1"].as_str().expect("k1").to_string();
    assert_eq!(
        card_withdraw(&s, &k1, &wallet_invoice(&s, &shop, 2_000).await)
            .await
            .json()["status"],
        "OK"
    );
    // From it up the PIN is needed: without it the tap stays usable; with it, paid.
    let k1 = card_tap(&s, &mut card).await.json()["k1"]
        .as_str()
        .expect("k1")
        .to_string();
    let pr = wallet_invoice(&s, &shop, 6_000).await;
    assert!(lnurl_reason(&card_withdraw(&s, &k1, &pr).await).contains("needs the card's PIN"));
    let paid = s
        .get(&format!("/boltcard/callback?k1={k1}&pr={pr}&pin=1234"), &[])
        .await;
    assert_eq!(paid.json()["status"], "OK", "{}", paid.text);
    assert_eq!(s.balance(&shop).await, 8_000);

    // Three wrong PINs disable the card; the right one after that is too late.
    let k1 = card_tap(&s, &mut card).await.json()["k1"]
        .as_str()
        .expect("k1")
        .to_string();
    let pr = wallet_invoice(&s, &shop, 6_000).await;
    for left in [2, 1, 0] {
        let r = s
            .get(&format!("/boltcard/callback?k1={k1}&pr={pr}&pin=0000"), &[])
            .await;
        assert!(
            lnurl_reason(&r).contains(&format!("wrong PIN: {left} tries left")),
            "{}",
            r.text
        );
    }
    let late = s
        .get(&format!("/boltcard/callback?k1={k1}&pr={pr}&pin=1234"), &[])
        .await;
    assert!(lnurl_reason(&late).contains("disabled"), "{}", late.text);
    assert!(lnurl_reason(&card_tap(&s, &mut card).await).contains("disabled"));
    assert_eq!(s.balance(&shop).await, 8_000);
    let listed = s
        .gql(Some(&owner.token), "{ cards { state pinFailures } }", json!({}))
        .await;
    assert_eq!(
        data(&listed, "cards"),
        &json!([{"state": "disabled", "pinFailures": 3}])
    );
    // Enabling forgives them; removing the PIN takes `pinLimit` out of the taps.
    s.state
        .cards
        .act(account(&owner), &id, CardAction::Enable)
        .await
        .expect("enable");
    assert_eq!(
        pin_set(json!({"pin": null})).await["card"],
        json!({"state": "active", "pinLimit": null, "pinFailures": 0})
    );
    let offer = card_tap(&s, &mut card).await.json();
    assert!(offer.get("pinLimit").is_none(), "{offer}");
    s.journals().await;
}

async fn a_card_is_topped_up_through_its_pay_link(backend: Backend) {
    let s = TestServer::start(backend).await;
    let owner = s.member().await;
    let (_, mut card, _, _) = programmed_card(&s, &owner, 1_000, 5_000, UID).await;
    // A card with nothing in its wallet: the tap offers nothing but still gives the top-up link.
    let empty = card_tap(&s, &mut card).await;
    assert!(lnurl_reason(&empty).contains("nothing to spend"), "{}", empty.text);
    let (p, c) = card.tap();
    let link = s.get(&format!("/boltcard/balance?p={p}&c={c}"), &[]).await.json()["payLink"]
        .as_str()
        .expect("payLink")
        .to_string();
    let path = link
        .strip_prefix(&format!("lnurlp://{}", s.addr))
        .unwrap_or_else(|| panic!("a link of this server: {link}"))
        .to_string();
    let offer = s.get(&path, &[]).await.json();
    assert_eq!(
        (&offer["tag"], &offer["minSendable"]),
        (&json!("payRequest"), &json!(1_000)),
        "{offer}"
    );
    let callback = offer["callback"].as_str().expect("callback").to_string();
    let callback = callback
        .strip_prefix(&format!("http://{}", s.addr))
        .expect("this server")
        .to_string();
    // Amounts that are not whole satoshis or out of range are refused; an unknown link too.
    assert_eq!(s.get(&format!("{callback}?amount=1500"), &[]).await.status, 400);
    assert_eq!(s.get(&format!("{callback}?amount=0"), &[]).await.status, 400);
    assert_eq!(s.get(&format!("{callback}?amount=lots"), &[]).await.status, 400);
    assert_eq!(s.get("/boltcard/pay/nosuchcard", &[]).await.status, 404);
    let pr = s.get(&format!("{callback}?amount=4000000"), &[]).await.json()["pr"]
        .as_str()
        .expect("pr")
        .to_string();
    s.pay_from_outside(&pr).await;
    for _ in 0..100 {
        if s.balance(&owner).await == 4_000 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(s.balance(&owner).await, 4_000, "the top-up went into the card's wallet");
    let offer = card_tap(&s, &mut card).await.json();
    assert_eq!(offer["maxWithdrawable"], 1_000_000, "{offer}");
}

async fn the_operator_disables_any_card_and_is_audited(backend: Backend) {
    let s = TestServer::start(backend).await;
    let owner = s.member().await;
    s.fund(&owner.wallet_id, 10_000).await;
    let (id, mut card, _, _) = programmed_card(&s, &owner, 1_000, 5_000, UID).await;
    let update = |state: &'static str, comment: &'static str| {
        let (s, id) = (&s, id.clone());
        async move {
            let r = s
                .admin(
                    "mutation($input: CardUpdateStateInput!) { cardUpdateState(input: $input) { \
                     errors { code message } card { id state } } }",
                    json!({ "input": { "id": id, "state": state, "comment": comment } }),
                )
                .await;
            data(&r, "cardUpdateState").clone()
        }
    };
    let listed = s
        .admin(
            "query($id: ID!) { cardsByAccount(accountId: $id) { id state } }",
            json!({ "id": owner.account_id }),
        )
        .await;
    assert_eq!(
        data(&listed, "cardsByAccount"),
        &json!([{"id": id, "state": "programming"}])
    );
    assert_eq!(update("DISABLED", "reported stolen").await["card"]["state"], "disabled");
    assert!(lnurl_reason(&card_tap(&s, &mut card).await).contains("disabled"));
    assert_eq!(update("ACTIVE", "found again").await["card"]["state"], "active");
    assert_eq!(card_tap(&s, &mut card).await.status, 200);
    assert_eq!(update("WIPED", "").await["card"]["state"], "wiped");
    assert_eq!(update("ACTIVE", "").await["errors"][0]["code"], "REFUSED");
    let bad = s
        .admin(
            "mutation($input: CardUpdateStateInput!) { cardUpdateState(input: $input) { errors { code } } }",
            json!({ "input": { "id": "no-such-card", "state": "DISABLED" } }),
        )
        .await;
    assert_eq!(data(&bad, "cardUpdateState")["errors"][0]["code"], "NOT_FOUND");
    let audit = s
        .state
        .bank
        .store_for_tests()
        .db()
        .query(
            "SELECT action, subject, detail FROM audit_log WHERE action = 'card.state' ORDER BY id",
            vec![],
        )
        .await
        .expect("audit log");
    let rows: Vec<(String, String, String)> = audit
        .iter()
        .map(|r| {
            (
                r.text(0).expect("action"),
                r.text(1).expect("subject"),
                r.text(2).expect("detail"),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            (
                "card.state".to_string(),
                owner.account_id.clone(),
                format!("{id} disabled reported stolen")
            ),
            (
                "card.state".to_string(),
                owner.account_id.clone(),
                format!("{id} active found again")
            ),
            (
                "card.state".to_string(),
                owner.account_id.clone(),
                format!("{id} wiped")
            ),
        ]
    );
}
