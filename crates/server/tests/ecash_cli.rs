//! The ecash commands of the `flash` binary against the real flashd and its mint: Alice turns
//! part of her balance into a Cashu token, Bob redeems it, the same token is refused a second
//! time, and the operator sees the mint's books balance against the ledger before and after a
//! keyset rotation (a token of the old keyset stays redeemable).

mod common;

use std::path::Path;

use common::*;
use flash_cli::Client;
use serde_json::{json, Value};

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ecash_walkthrough() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("ecash-cli");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let admin_key = server.admin_key.clone().expect("admin key on first start");
    let admin = Client::new(&server.base).expect("client").with_admin_key(&admin_key);
    let (alice_dir, bob_dir) = (TempDir::new("flash-alice"), TempDir::new("flash-bob"));
    let operator_dir = TempDir::new("flash-operator");
    // Every run names the server; credentials live in each user's own profile.
    let with_server = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--server".to_string(), server.base.clone()];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    };
    let run = |profile: &Path, args: &[&str]| {
        let all = with_server(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_flash(&bin, profile, &all)
    };
    let run_stdin = |profile: &Path, args: &[&str], input: &str| {
        let all = with_server(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_flash_with_stdin(&bin, profile, &all, input)
    };
    let alice = |args: &[&str]| run(alice_dir.path(), args);
    let bob = |args: &[&str]| run(bob_dir.path(), args);
    let operator = |args: &[&str]| {
        let mut all = vec!["--admin-key", admin_key.as_str(), "admin", "ecash"];
        all.extend_from_slice(args);
        run(operator_dir.path(), &all)
    };
    let status = || json_of(&operator(&["--json", "status"]).succeeded().stdout);
    // The balance of `wallet` as `flash --json balance` in `profile` shows it.
    let balance = |profile: &Path, wallet: &str| -> Value {
        let wallets = json_of(&run(profile, &["--json", "balance"]).succeeded().stdout);
        wallets
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["id"] == json!(wallet)))
            .map(|w| w["balance"].clone())
            .unwrap_or_else(|| panic!("no wallet {wallet} in {wallets}"))
    };
    let wallet_of = |profile: &Path| -> String {
        let wallets = json_of(&run(profile, &["--json", "balance"]).succeeded().stdout);
        let btc = wallets
            .as_array()
            .and_then(|ws| ws.iter().find(|w| w["walletCurrency"] == json!("BTC")))
            .cloned()
            .unwrap_or_else(|| panic!("no BTC wallet in {wallets}"));
        btc["id"].as_str().expect("wallet id").to_string()
    };

    // Alice and Bob log in with device accounts; the operator funds Alice.
    alice(&["login", "--device"]).succeeded();
    bob(&["login", "--device"]).succeeded();
    let (alice_wallet, bob_wallet) = (wallet_of(alice_dir.path()), wallet_of(bob_dir.path()));
    admin
        .wallet_fund(&alice_wallet, 10_000)
        .await
        .expect("walletFund")
        .expect("a transaction");
    assert_eq!(balance(alice_dir.path(), &alice_wallet), json!(10_000));

    // The mint starts with one keyset and empty books.
    let books = status();
    assert_eq!(
        (&books["issued"], &books["outstanding"], &books["balanced"]),
        (&json!(0), &json!(0), &json!(true)),
        "{books}"
    );
    assert_eq!(books["keysets"].as_array().map(Vec::len), Some(1), "{books}");

    // Alice turns 2,500 sats into a token: alone on stdout, the rest on stderr.
    let minted = alice(&["ecash", "mint", "2500"]).succeeded();
    let token = minted.stdout.trim().to_string();
    assert!(token.starts_with("cashuB"), "not a token: {}", minted.stdout);
    assert_eq!(minted.stdout.lines().count(), 1, "{}", minted.stdout);
    assert!(
        minted
            .stderr
            .contains(&format!("Minted 2500 sats of ecash from wallet {alice_wallet}")),
        "{}",
        minted.stderr
    );
    assert_eq!(balance(alice_dir.path(), &alice_wallet), json!(7_500));
    let books = status();
    assert_eq!(
        (&books["issued"], &books["outstanding"], &books["ledgerOutstanding"]),
        (&json!(2_500), &json!(2_500), &json!(2_500)),
        "{books}"
    );

    // Bob redeems it.
    let redeemed = bob(&["ecash", "redeem", &token]).succeeded();
    assert_eq!(
        redeemed.stdout.trim(),
        format!("Redeemed 2500 sats (fee 0) into wallet {bob_wallet}."),
        "{}",
        redeemed.stderr
    );
    assert_eq!(balance(alice_dir.path(), &alice_wallet), json!(7_500));
    assert_eq!(balance(bob_dir.path(), &bob_wallet), json!(2_500));

    // The same token again (on stdin, into Alice's wallet): refused, nothing moves.
    let again = run_stdin(alice_dir.path(), &["ecash", "redeem", "-"], &format!("{token}\n")).failed();
    assert!(again.contains("ECASH_ALREADY_SPENT"), "{again}");
    assert_eq!(balance(alice_dir.path(), &alice_wallet), json!(7_500));
    assert_eq!(balance(bob_dir.path(), &bob_wallet), json!(2_500));
    // Not a token, or more than the balance: refused too.
    let garbage = alice(&["ecash", "redeem", "hello"]).failed();
    assert!(garbage.contains("not a Cashu token"), "{garbage}");
    let too_much = alice(&["ecash", "mint", "100000"]).failed();
    assert!(too_much.contains("INSUFFICIENT_BALANCE"), "{too_much}");
    assert_eq!(balance(alice_dir.path(), &alice_wallet), json!(7_500));

    // The operator's books: balanced, nothing outstanding.
    let text = operator(&["status"]).succeeded().stdout;
    for needle in [
        "Balanced:    yes",
        "Outstanding: 0 sats (ledger mint:outstanding 0 sats)",
        "Spent:       2500 sats",
    ] {
        assert!(text.contains(needle), "no `{needle}` in:\n{text}");
    }
    let books = status();
    assert_eq!(
        (
            &books["issued"],
            &books["spent"],
            &books["outstanding"],
            &books["ledgerOutstanding"],
            &books["balanced"]
        ),
        (&json!(2_500), &json!(2_500), &json!(0), &json!(0), &json!(true)),
        "{books}"
    );
    let first_keyset = books["keysets"][0]["id"].as_str().expect("keyset id").to_string();
    assert_eq!(books["keysets"][0]["active"], json!(true), "{books}");

    // Alice mints again (JSON this time), then the operator rotates the keyset.
    let second = json_of(
        &alice(&["--json", "ecash", "mint", "1000", "--wallet", &alice_wallet])
            .succeeded()
            .stdout,
    );
    assert_eq!(
        (&second["amount"], &second["walletId"]),
        (&json!(1_000), &json!(alice_wallet)),
        "{second}"
    );
    let second_token = second["token"].as_str().expect("token").to_string();
    assert!(second_token.starts_with("cashuB"), "{second}");
    assert_eq!(balance(alice_dir.path(), &alice_wallet), json!(6_500));
    let rotated = operator(&["rotate"]).succeeded().stdout;
    assert!(rotated.starts_with("New sat keyset "), "{rotated}");
    let books = status();
    let keysets = books["keysets"].as_array().cloned().unwrap_or_default();
    assert_eq!(keysets.len(), 2, "two keysets after a rotation: {books}");
    assert_eq!(
        (&keysets[0]["id"], &keysets[0]["active"], &keysets[1]["active"]),
        (&json!(first_keyset), &json!(false), &json!(true)),
        "{books}"
    );
    let new_keyset = keysets[1]["id"].as_str().expect("keyset id").to_string();
    assert!(rotated.contains(&new_keyset), "{rotated}");
    assert_eq!(
        (&books["outstanding"], &books["ledgerOutstanding"], &books["balanced"]),
        (&json!(1_000), &json!(1_000), &json!(true)),
        "{books}"
    );
    let text = operator(&["status"]).succeeded().stdout;
    assert!(
        text.contains(&first_keyset) && text.contains(&new_keyset),
        "both keysets listed:\n{text}"
    );

    // The token of the old keyset stays redeemable (Bob, from stdin, JSON).
    let redeemed = json_of(
        &run_stdin(bob_dir.path(), &["--json", "ecash", "redeem", "-"], &second_token)
            .succeeded()
            .stdout,
    );
    assert_eq!(
        redeemed,
        json!({ "amount": 1_000, "fee": 0, "walletId": bob_wallet }),
        "{redeemed}"
    );
    assert_eq!(balance(alice_dir.path(), &alice_wallet), json!(6_500));
    assert_eq!(balance(bob_dir.path(), &bob_wallet), json!(3_500));
    let books = status();
    assert_eq!(
        (&books["issued"], &books["outstanding"], &books["balanced"]),
        (&json!(3_500), &json!(0), &json!(true)),
        "{books}"
    );

    // The ledger balances.
    Api::new(&server.base).assert_ledger_ok(&admin_key).await;
    println!("checked the `flash ecash` commands at {}", bin.display());
}
