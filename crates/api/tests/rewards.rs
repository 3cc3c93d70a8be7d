//! Rewards programs over HTTP on both backends, paid on the dev rails: cashback into the wallet
//! of a Flash user who paid inside the ledger, one reward per invoice however often it is asked
//! for, a budget granted exactly (and not a satoshi more) by 1,000 concurrent purchases, event
//! mode's cap, cooldown and end time, claim links and Lightning addresses for customers from
//! outside, the budget's webhooks and return, and bad input that changes nothing.

mod common;

use common::*;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

flash_store::on_both_backends!(
    cashback_is_paid_to_a_flash_payer_once,
    a_budget_is_granted_exactly_under_concurrency,
    event_mode_caps_cools_down_and_ends,
    claim_links_and_lightning_addresses_pay_customers_from_outside,
    a_card_tap_at_the_checkout_earns_card_rewards,
    referrals_pay_invitee_and_inviter_once,
    bad_input_changes_nothing,
);

/// A Greenfield request with a whole `Authorization` value.
async fn call(s: &TestServer, method: &str, path: &str, auth: &str, body: Option<Value>) -> Resp {
    s.greenfield(method, path, Some(auth), body.as_ref(), &[]).await
}

/// `call`, asserting a 200; the JSON answer.
async fn ok(s: &TestServer, method: &str, path: &str, auth: &str, body: Option<Value>) -> Value {
    let r = call(s, method, path, auth, body).await;
    assert_eq!(r.status, 200, "{method} {path}: {}", r.text);
    r.json()
}

/// A store owner with `funds` sats in the store's wallet.
struct Shop {
    owner: Member,
    auth: String,
    store: String,
}

async fn shop(s: &TestServer, funds: i64) -> Shop {
    let owner = s.member().await;
    s.fund(&owner.wallet_id, funds).await;
    let auth = format!("Bearer {}", owner.token);
    let store = ok(s, "POST", "/api/v1/stores", &auth, Some(json!({"name": "Tea shop"}))).await["id"]
        .as_str()
        .expect("store id")
        .to_string();
    Shop { owner, auth, store }
}

/// Makes a program; its JSON.
async fn program(s: &TestServer, shop: &Shop, body: Value) -> Value {
    ok(
        s,
        "POST",
        &format!("/api/v1/stores/{}/rewards", shop.store),
        &shop.auth,
        Some(body),
    )
    .await
}

/// A program as it stands.
async fn status(s: &TestServer, shop: &Shop, id: &str) -> Value {
    ok(
        s,
        "GET",
        &format!("/api/v1/stores/{}/rewards/{id}", shop.store),
        &shop.auth,
        None,
    )
    .await
}

/// A SATS invoice of the store: its id and BOLT11.
async fn invoice(s: &TestServer, shop: &Shop, sats: i64) -> (String, String) {
    let created = ok(
        s,
        "POST",
        &format!("/api/v1/stores/{}/invoices", shop.store),
        &shop.auth,
        Some(json!({"amount": sats.to_string(), "currency": "SATS"})),
    )
    .await;
    let id = created["id"].as_str().expect("invoice id").to_string();
    let methods = ok(
        s,
        "GET",
        &format!("/api/v1/stores/{}/invoices/{id}/payment-methods", shop.store),
        &shop.auth,
        None,
    )
    .await;
    let bolt11 = methods
        .as_array()
        .and_then(|m| m.iter().find(|m| m["paymentMethodId"] == "BTC-LN"))
        .and_then(|m| m["destination"].as_str())
        .expect("a BOLT11")
        .to_string();
    (id, bolt11)
}

/// `buyer` pays a BOLT11 from their wallet.
async fn pay(s: &TestServer, buyer: &Member, bolt11: &str) {
    let r = s
        .gql(
            Some(&buyer.token),
            "mutation($input: LnInvoicePaymentInput!) { lnInvoicePaymentSend(input: $input) { status errors { code message } } }",
            json!({"input": {"walletId": buyer.wallet_id, "paymentRequest": bolt11}}),
        )
        .await;
    assert_eq!(data(&r, "lnInvoicePaymentSend")["status"], "SUCCESS", "{r}");
}

/// Asks for an invoice's rewards as a point of sale; the answer.
async fn reward(s: &TestServer, shop: &Shop, invoice: &str, body: Option<Value>) -> Resp {
    call(
        s,
        "POST",
        &format!("/api/v1/stores/{}/invoices/{invoice}/rewards", shop.store),
        &shop.auth,
        body,
    )
    .await
}

/// The store's outbox events of one type about a program.
async fn program_events(s: &TestServer, program: &str, kind: &str) -> usize {
    s.merchant_events("programId", program)
        .await
        .iter()
        .filter(|(t, _)| t == kind)
        .count()
}

async fn cashback_is_paid_to_a_flash_payer_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 100_000).await;
    let buyer = s.member().await;
    s.fund(&buyer.wallet_id, 50_000).await;
    let p = program(
        &s,
        &shop,
        json!({"name": "Tea lovers", "budgetSats": 10_000, "rateBasisPoints": 250, "minPurchaseSats": 100,
               "minRewardSats": 5, "maxRewardSats": 100}),
    )
    .await;
    let id = p["id"].as_str().expect("program id");
    assert_eq!(
        (p["status"].as_str(), p["leftSats"].as_i64()),
        (Some("Active"), Some(10_000))
    );
    assert_eq!(s.balance(&shop.owner).await, 90_000, "the budget is set aside");

    // 2.5 % of 2,000 = 50, paid when the invoice settles (the POS asking settles it here).
    let (first, bolt11) = invoice(&s, &shop, 2_000).await;
    pay(&s, &buyer, &bolt11).await;
    let grants = reward(&s, &shop, &first, None).await;
    assert_eq!(grants.status, 200, "{}", grants.text);
    let grants = grants.json();
    assert_eq!(grants.as_array().map(Vec::len), Some(1), "{grants}");
    let grant = &grants[0];
    assert_eq!(
        (
            grant["amountSats"].as_i64(),
            grant["paidTo"].as_str(),
            grant["programId"].as_str()
        ),
        (Some(50), Some("Wallet"), Some(id))
    );
    assert_eq!(s.balance(&buyer).await, 50_000 - 2_000 + 50);
    // Asked again (a retry), the same grant and no second payment.
    for _ in 0..3 {
        let again = reward(&s, &shop, &first, None).await.json();
        assert_eq!(again[0]["id"], grant["id"], "{again}");
    }
    assert_eq!(s.balance(&buyer).await, 48_050);

    // The minimum raises a small cashback, the maximum bounds a large one, and a purchase
    // under the minimum gets nothing.
    for (sats, expected) in [(120, Some(5)), (10_000, Some(100)), (99, None)] {
        let (inv, bolt11) = invoice(&s, &shop, sats).await;
        pay(&s, &buyer, &bolt11).await;
        let got = reward(&s, &shop, &inv, None).await.json();
        assert_eq!(got[0]["amountSats"].as_i64(), expected, "{sats} sats: {got}");
    }
    let st = status(&s, &shop, id).await;
    assert_eq!(
        (
            st["grantedSats"].as_i64(),
            st["leftSats"].as_i64(),
            st["grants"].as_i64(),
            st["heldSats"].as_i64()
        ),
        (Some(155), Some(10_000 - 155), Some(3), Some(10_000 - 155))
    );
    // The owner sees the same over GraphQL.
    let r = s
        .gql(
            Some(&shop.owner.token),
            "query($s: ID!) { rewardPrograms(storeId: $s) { id status granted left grants } }",
            json!({"s": shop.store}),
        )
        .await;
    assert_eq!(
        data(&r, "rewardPrograms")[0],
        json!({"id": id, "status": "ACTIVE", "granted": 155, "left": 9_845, "grants": 3})
    );
    s.journals().await;
}

async fn a_budget_is_granted_exactly_under_concurrency(backend: Backend) {
    const PURCHASES: usize = 1_000;
    const BUYERS: usize = 10;
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 100_000).await;
    // 7 sats a purchase from 5,000: 714 full rewards and one of 2 sats.
    let p = program(
        &s,
        &shop,
        json!({"name": "Launch", "budgetSats": 5_000, "fixedSats": 7}),
    )
    .await;
    let id = p["id"].as_str().expect("program id").to_string();
    let mut buyers = Vec::new();
    for _ in 0..BUYERS {
        let b = s.member().await;
        s.fund(&b.wallet_id, 100_000).await;
        buyers.push(b);
    }
    let invoices: Vec<(usize, (String, String))> = stream::iter(0..PURCHASES)
        .map(|n| {
            let (s, shop) = (&s, &shop);
            async move { (n % BUYERS, invoice(s, shop, 1_000).await) }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    // Every purchase is paid and rewarded at once, some rewards asked for twice.
    let results: Vec<Vec<i64>> = stream::iter(invoices.iter())
        .map(|(b, (inv, bolt11))| {
            let s = &s;
            let shop = &shop;
            let buyer = &buyers[*b];
            async move {
                pay(s, buyer, bolt11).await;
                let mut seen = Vec::new();
                for _ in 0..if inv.ends_with(['0', '1', '2']) { 2 } else { 1 } {
                    let r = reward(s, shop, inv, None).await;
                    assert!(r.status == 200 || r.json()["code"] == "reward-refused", "{}", r.text);
                    if r.status == 200 {
                        seen.extend(
                            r.json()
                                .as_array()
                                .into_iter()
                                .flatten()
                                .filter_map(|g| g["amountSats"].as_i64()),
                        );
                    }
                }
                seen
            }
        })
        .buffer_unordered(64)
        .collect()
        .await;
    let st = status(&s, &shop, &id).await;
    assert_eq!(
        (
            st["grantedSats"].as_i64(),
            st["leftSats"].as_i64(),
            st["status"].as_str(),
            st["grants"].as_i64()
        ),
        (Some(5_000), Some(0), Some("Ended"), Some(715)),
        "{st}"
    );
    let mut gained = 0;
    for b in &buyers {
        gained += s.balance(b).await - (100_000 - 1_000 * (PURCHASES / BUYERS) as i64);
    }
    assert_eq!(gained, 5_000, "the customers got exactly the budget");
    assert_eq!(st["heldSats"].as_i64(), Some(0), "nothing is left in the budget");
    assert!(results.iter().flatten().all(|a| *a == 7 || *a == 2), "{results:?}");
    assert_eq!(program_events(&s, &id, "RewardProgramBudgetLow").await, 1);
    assert_eq!(program_events(&s, &id, "RewardProgramEnded").await, 1);
    // The store got every purchase and paid exactly the budget.
    assert_eq!(s.balance(&shop.owner).await, 100_000 - 5_000 + 1_000 * PURCHASES as i64);
    s.journals().await;
}

async fn event_mode_caps_cools_down_and_ends(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 100_000).await;
    let alice = s.member().await;
    let bob = s.member().await;
    for m in [&alice, &bob] {
        s.fund(&m.wallet_id, 50_000).await;
    }
    let ends = s.state.bank.now_ms() / 1_000 + 3_600;
    let p = program(
        &s,
        &shop,
        json!({"name": "Festival", "budgetSats": 1_000, "fixedSats": 100, "customerCapSats": 250,
               "cooldownSeconds": 60, "endsAt": ends}),
    )
    .await;
    let id = p["id"].as_str().expect("program id").to_string();
    let buy = |who: &'static str| {
        let (s, shop) = (&s, &shop);
        let buyer = if who == "alice" { &alice } else { &bob };
        async move {
            let (inv, bolt11) = invoice(s, shop, 500).await;
            pay(s, buyer, &bolt11).await;
            let r = reward(s, shop, &inv, None).await;
            assert_eq!(r.status, 200, "{}", r.text);
            r.json()[0]["amountSats"].as_i64()
        }
    };
    assert_eq!(buy("alice").await, Some(100));
    let (cooled, bolt11) = invoice(&s, &shop, 500).await;
    pay(&s, &alice, &bolt11).await;
    let r = reward(&s, &shop, &cooled, None).await;
    assert_eq!(r.json(), json!([]), "within the cooldown");
    assert_eq!(buy("bob").await, Some(100), "each customer has their own cooldown");
    s.advance_secs(61);
    assert_eq!(buy("alice").await, Some(100));
    s.advance_secs(61);
    assert_eq!(buy("alice").await, None, "250 is alice's most: 300 would pass it");
    assert_eq!(s.balance(&alice).await, 50_000 - 4 * 500 + 200);

    // At its end time the program ends and the rest goes back to the store.
    s.advance_secs(3_600);
    let r = reward(&s, &shop, &cooled, None).await;
    assert_eq!(r.json(), json!([]), "the program has ended");
    s.state.merchant.run_payout_pass().await.expect("payout pass");
    let st = status(&s, &shop, &id).await;
    assert_eq!(
        (
            st["status"].as_str(),
            st["grantedSats"].as_i64(),
            st["heldSats"].as_i64(),
            st["returnedSats"].as_i64()
        ),
        (Some("Ended"), Some(300), Some(0), Some(700)),
        "{st}"
    );
    assert_eq!(s.balance(&shop.owner).await, 100_000 - 300 + 5 * 500);
    assert_eq!(program_events(&s, &id, "RewardProgramEnded").await, 1);
    s.journals().await;
}

async fn claim_links_and_lightning_addresses_pay_customers_from_outside(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 100_000).await;
    let carol = s.named_member("carol").await;
    let p = program(
        &s,
        &shop,
        json!({"name": "Welcome", "budgetSats": 2_000, "fixedSats": 21}),
    )
    .await;
    let id = p["id"].as_str().expect("program id").to_string();

    // Paid from outside Flash: the receipt gets a claim link, exactly the reward.
    let (inv, bolt11) = invoice(&s, &shop, 1_000).await;
    s.pay_from_outside(&bolt11).await;
    let grant = reward(&s, &shop, &inv, None).await.json()[0].clone();
    assert_eq!(
        (grant["paidTo"].as_str(), grant["amountSats"].as_i64()),
        (Some("ClaimLink"), Some(21)),
        "{grant}"
    );
    let link = grant["claimLink"]["url"].as_str().expect("claim url").to_string();
    assert!(
        grant["claimLink"]["lnurl"]
            .as_str()
            .is_some_and(|l| l.starts_with("LNURL")),
        "{grant}"
    );
    let path = link.trim_start_matches(&s.url(""));
    let offer = s.get(path, &[]).await.json();
    assert_eq!(
        (
            offer["tag"].as_str(),
            offer["minWithdrawable"].as_i64(),
            offer["maxWithdrawable"].as_i64()
        ),
        (Some("withdrawRequest"), Some(21_000), Some(21_000)),
        "{offer}"
    );
    let k1 = offer["k1"].as_str().expect("k1");
    let invoice_of = |amount: i64| {
        let s = &s;
        let carol = &carol;
        async move {
            let r = s
                .gql(
                    Some(&carol.token),
                    "mutation($input: LnInvoiceCreateInput!) { lnInvoiceCreate(input: $input) { invoice { paymentRequest } } }",
                    json!({"input": {"walletId": carol.wallet_id, "amount": amount}}),
                )
                .await;
            data(&r, "lnInvoiceCreate")["invoice"]["paymentRequest"]
                .as_str()
                .expect("invoice")
                .to_string()
        }
    };
    // An invoice for another amount is refused and changes nothing.
    let wrong = invoice_of(20).await;
    let r = s.get(&format!("{path}/callback?k1={k1}&pr={wrong}"), &[]).await;
    assert_eq!(r.json()["status"], "ERROR", "{}", r.text);
    let pr = invoice_of(21).await;
    let r = s.get(&format!("{path}/callback?k1={k1}&pr={pr}"), &[]).await;
    assert_eq!(r.json()["status"], "OK", "{}", r.text);
    let again = s
        .get(&format!("{path}/callback?k1={k1}&pr={}", invoice_of(21).await), &[])
        .await;
    assert_eq!(again.json()["status"], "ERROR", "claimed once: {}", again.text);
    s.state.merchant.run_payout_pass().await.expect("payout pass");
    assert_eq!(s.balance(&carol).await, 21, "the claim was paid");

    // A Lightning address named by the point of sale is paid as a payout from the budget.
    let (inv, bolt11) = invoice(&s, &shop, 1_000).await;
    s.pay_from_outside(&bolt11).await;
    let address = format!("carol@{}", s.url("").trim_start_matches("http://"));
    let grant = reward(&s, &shop, &inv, Some(json!({"customer": address}))).await.json()[0].clone();
    assert_eq!(grant["paidTo"], "Payout", "{grant}");
    s.state.merchant.run_payout_pass().await.expect("payout pass");
    assert_eq!(s.balance(&carol).await, 42);
    // And a Flash username straight into the wallet.
    let (inv, bolt11) = invoice(&s, &shop, 1_000).await;
    s.pay_from_outside(&bolt11).await;
    let grant = reward(&s, &shop, &inv, Some(json!({"customer": "@carol"})))
        .await
        .json()[0]
        .clone();
    assert_eq!(grant["paidTo"], "Wallet", "{grant}");
    assert_eq!(s.balance(&carol).await, 63);

    // Ended by its owner: an unclaimed link keeps its money, the rest goes back.
    let (inv, bolt11) = invoice(&s, &shop, 1_000).await;
    s.pay_from_outside(&bolt11).await;
    reward(&s, &shop, &inv, None).await;
    let ended = ok(
        &s,
        "DELETE",
        &format!("/api/v1/stores/{}/rewards/{id}", shop.store),
        &shop.auth,
        None,
    )
    .await;
    assert_eq!(ended["status"], "Ended");
    s.state.merchant.run_payout_pass().await.expect("payout pass");
    let st = status(&s, &shop, &id).await;
    assert_eq!(
        (
            st["grantedSats"].as_i64(),
            st["heldSats"].as_i64(),
            st["returnedSats"].as_i64()
        ),
        (Some(84), Some(21), Some(2_000 - 84)),
        "{st}"
    );
    s.journals().await;
}

async fn a_card_tap_at_the_checkout_earns_card_rewards(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 100_000).await;
    let holder = s.member().await;
    s.fund(&holder.wallet_id, 50_000).await;
    let (card_id, mut card, _, _) = programmed_card(&s, &holder, 10_000, 20_000, [4, 1, 2, 3, 4, 5, 6]).await;
    let cashback = program(
        &s,
        &shop,
        json!({"name": "Everyone", "budgetSats": 1_000, "rateBasisPoints": 100}),
    )
    .await;
    let taps = program(
        &s,
        &shop,
        json!({"name": "Tap bonus", "budgetSats": 1_000, "fixedSats": 21, "cardOnly": true}),
    )
    .await;
    // Paid from the app: cashback, but not the card-only reward.
    let (inv, bolt11) = invoice(&s, &shop, 1_000).await;
    pay(&s, &holder, &bolt11).await;
    let got = reward(&s, &shop, &inv, None).await.json();
    assert_eq!(got.as_array().map(Vec::len), Some(1), "{got}");
    assert_eq!(got[0]["programId"], cashback["id"]);

    // Tapped at the checkout page: both, the card-only one counted for the card.
    let (inv, _) = invoice(&s, &shop, 2_100).await;
    let (p, c) = card.tap();
    let paid = s
        .post_json(
            &format!("/i/{inv}/card"),
            None,
            &json!({"lnurlw": format!("lnurlw://{}/boltcard?p={p}&c={c}", s.addr)}),
        )
        .await;
    assert_eq!(paid.status, 200, "{}", paid.text);
    let grants = ok(
        &s,
        "GET",
        &format!(
            "/api/v1/stores/{}/rewards/{}/grants",
            shop.store,
            taps["id"].as_str().expect("id")
        ),
        &shop.auth,
        None,
    )
    .await;
    assert_eq!(
        (
            grants[0]["invoiceId"].as_str(),
            grants[0]["amountSats"].as_i64(),
            grants[0]["customer"].as_str()
        ),
        (Some(inv.as_str()), Some(21), Some(format!("card:{card_id}").as_str())),
        "{grants}"
    );
    let both = reward(&s, &shop, &inv, None).await.json();
    assert_eq!(both.as_array().map(Vec::len), Some(2), "{both}");
    assert_eq!(s.balance(&holder).await, 50_000 - 1_000 - 2_100 + 10 + 21 + 21);
    s.journals().await;
}

/// `m` names `inviter` as who invited them; the payload.
async fn name_inviter(s: &TestServer, m: &Member, inviter: &str) -> Value {
    let r = s
        .gql(
            Some(&m.token),
            "mutation($input: AccountReferrerSetInput!) { accountReferrerSet(input: $input) { success errors { code message } } }",
            json!({"input": {"username": inviter}}),
        )
        .await;
    data(&r, "accountReferrerSet").clone()
}

/// The operator sets `m`'s account level.
async fn set_level(s: &TestServer, m: &Member, level: &str) {
    let r = s
        .admin(
            "mutation($input: AccountUpdateLevelInput!) { accountUpdateLevel(input: $input) { errors { message } } }",
            json!({"input": {"accountId": m.account_id, "level": level}}),
        )
        .await;
    assert_eq!(data(&r, "accountUpdateLevel")["errors"], json!([]), "{r}");
}

async fn referrals_pay_invitee_and_inviter_once(backend: Backend) {
    let s = TestServer::start(backend).await;
    let treasury = s.member().await;
    s.fund(&treasury.wallet_id, 10_000).await;
    let (ann, ben, cat) = (s.named_member("ann").await, s.member().await, s.member().await);
    // Named before the program: not rewarded by it.
    let early = s.member().await;
    assert_eq!(name_inviter(&s, &early, "ann").await["success"], true);
    s.advance_secs(1);

    let made = s
        .admin(
            "mutation($input: RewardReferralProgramCreateInput!) { rewardReferralProgramCreate(input: $input) { \
             errors { code message } program { id status budget fixed inviterReward referralLevel } } }",
            json!({"input": {"name": "Invite a friend", "accountId": treasury.account_id, "budget": 2_500,
                             "level": "TWO", "inviteeReward": 1_000, "inviterReward": 500}}),
        )
        .await;
    let payload = data(&made, "rewardReferralProgramCreate");
    assert_eq!(payload["errors"], json!([]), "{made}");
    assert_eq!(
        payload["program"]["referralLevel"]
            .as_i64()
            .zip(payload["program"]["inviterReward"].as_i64()),
        Some((2, 500)),
        "{made}"
    );
    assert_eq!(s.balance(&treasury).await, 7_500);

    // Naming an inviter: once, not oneself, not an unknown user.
    assert_eq!(name_inviter(&s, &ben, "ben_is_nobody").await["success"], false);
    assert_eq!(name_inviter(&s, &ann, "ann").await["success"], false, "not oneself");
    assert_eq!(name_inviter(&s, &ben, "ann").await["success"], true);
    assert_eq!(name_inviter(&s, &ben, "ann").await["success"], false, "once");
    assert_eq!(name_inviter(&s, &cat, "ann").await["success"], true);

    // Nothing until the invitee reaches the level; then both, once, however many passes.
    s.state.merchant.run_payout_pass().await.expect("payout pass");
    assert_eq!((s.balance(&ben).await, s.balance(&ann).await), (0, 0));
    set_level(&s, &ben, "TWO").await;
    set_level(&s, &early, "TWO").await;
    for _ in 0..3 {
        s.state.merchant.run_payout_pass().await.expect("payout pass");
    }
    assert_eq!(
        (s.balance(&ben).await, s.balance(&ann).await, s.balance(&early).await),
        (1_000, 500, 0)
    );
    // Past the level, an account can no longer name an inviter.
    let late = s.member().await;
    set_level(&s, &late, "TWO").await;
    assert_eq!(name_inviter(&s, &late, "ann").await["success"], false);

    // The next referral takes what is left (1,000 for cat, nothing for ann), and the program ends.
    set_level(&s, &cat, "THREE").await;
    s.state.merchant.run_payout_pass().await.expect("payout pass");
    assert_eq!((s.balance(&cat).await, s.balance(&ann).await), (1_000, 500));
    let programs = s
        .admin("{ rewardReferralPrograms { status granted left held } }", json!({}))
        .await;
    assert_eq!(
        data(&programs, "rewardReferralPrograms")[0],
        json!({"status": "ENDED", "granted": 2_500, "left": 0, "held": 0})
    );
    s.journals().await;
}

async fn bad_input_changes_nothing(backend: Backend) {
    let s = TestServer::start(backend).await;
    let shop = shop(&s, 10_000).await;
    let path = format!("/api/v1/stores/{}/rewards", shop.store);
    let bad = [
        json!({"name": "x", "budgetSats": 100}),
        json!({"name": "x", "budgetSats": 100, "rateBasisPoints": 100, "fixedSats": 5}),
        json!({"name": "x", "budgetSats": 100, "rateBasisPoints": 0}),
        json!({"name": "x", "budgetSats": 100, "rateBasisPoints": 10_001}),
        json!({"name": "x", "budgetSats": 0, "fixedSats": 5}),
        json!({"name": "x", "budgetSats": -5, "fixedSats": 5}),
        json!({"name": "x", "budgetSats": "100", "fixedSats": 5}),
        json!({"name": "", "budgetSats": 100, "fixedSats": 5}),
        json!({"budgetSats": 100, "fixedSats": 5}),
        json!({"name": "x", "fixedSats": 5}),
        json!({"name": "x", "budgetSats": 100, "fixedSats": 5, "minRewardSats": 10, "maxRewardSats": 5}),
        json!({"name": "x", "budgetSats": 100, "fixedSats": 5, "endsAt": 1}),
        json!({"name": "x", "budgetSats": 100, "fixedSats": 5, "cooldownSeconds": 0}),
        json!({"name": "x", "budgetSats": 100, "fixedSats": 5, "claimDays": 400}),
        json!({"name": "x", "budgetSats": 100, "fixedSats": 5, "cardOnly": "yes"}),
        json!({"name": "x", "budgetSats": 100_000, "fixedSats": 5}),
        json!([1, 2]),
    ];
    for body in bad {
        let r = call(&s, "POST", &path, &shop.auth, Some(body.clone())).await;
        assert!(r.status == 422 || r.status == 400, "{body}: {} {}", r.status, r.text);
    }
    let r = s
        .greenfield(
            "POST",
            &path,
            Some(&shop.auth),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert!(r.status == 422 || r.status == 400, "no body: {}", r.text);
    // Someone else's store, an unknown store, an unknown program, no credential.
    let other = s.member().await;
    let other_auth = format!("Bearer {}", other.token);
    let r = call(
        &s,
        "POST",
        &path,
        &other_auth,
        Some(json!({"name": "x", "budgetSats": 100, "fixedSats": 5})),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text);
    let r = call(&s, "GET", &format!("{path}/nope"), &shop.auth, None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    let r = s.greenfield("GET", &path, None, None, &[]).await;
    assert_eq!(r.status, 401, "{}", r.text);
    assert_eq!(
        ok(&s, "GET", &path, &shop.auth, None).await,
        json!([]),
        "no program was made"
    );
    assert_eq!(s.balance(&shop.owner).await, 10_000, "nothing was set aside");

    // Rewards for what cannot have them.
    program(&s, &shop, json!({"name": "ok", "budgetSats": 100, "fixedSats": 5})).await;
    let (unpaid, _) = invoice(&s, &shop, 100).await;
    let r = reward(&s, &shop, &unpaid, None).await;
    assert_eq!(
        (r.status, r.json()["code"].as_str()),
        (400, Some("reward-refused")),
        "{}",
        r.text
    );
    let r = reward(&s, &shop, "nope", None).await;
    assert_eq!(r.status, 404, "{}", r.text);
    for customer in [json!(5), json!(""), json!("@no_such_user")] {
        let r = reward(&s, &shop, &unpaid, Some(json!({"customer": customer}))).await;
        assert!(r.status == 422 || r.status == 400, "{customer}: {}", r.text);
    }
    let r = s.get("/rewards/claim/nope", &[]).await;
    assert_eq!(r.json()["status"], "ERROR", "{}", r.text);
    let r = s.get("/rewards/claim/nope/callback?k1=nope&pr=lnbc1", &[]).await;
    assert_eq!(r.json()["status"], "ERROR", "{}", r.text);
    assert_eq!(s.balance(&shop.owner).await, 10_000 - 100);
    s.journals().await;
}
