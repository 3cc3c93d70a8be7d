//! The `flash` binary's own ecash and backups against a real `flashd`: Alice sends Bob a token
//! locked to his key; with flashd stopped Bob checks it and keeps it; after a restart it is
//! redeemed, once. Then Bob's backup (file and relay) makes two fresh config directories his
//! client again, with his notes restored from the seed.

mod common;

use std::path::Path;

use common::*;
use flash_sdk::identity::new_mnemonic;
use serde_json::Value;

/// Runs `flash --server SERVER args` in `profile` with `stdin`.
fn flash(bin: &Path, profile: &Path, server: &str, args: &[&str], stdin: &str) -> FlashRun {
    let mut all = vec!["--server", server];
    all.extend_from_slice(args);
    run_flash_with_stdin(bin, profile, &all, stdin)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

const PASS: &str = "correct horse battery\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_ecash_and_a_restore_with_the_binary() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("client-cli");
    let port = free_port();
    let mut server = Flashd::start(&Launch::on_port(dir.path(), port)).await;
    let admin_key = server.admin_key.clone().expect("admin key");
    let base = server.base.clone();
    let (alice, bob) = (TempDir::new("client-cli-alice"), TempDir::new("client-cli-bob"));
    let bob_words = new_mnemonic();
    flash(&bin, alice.path(), &base, &["login", "--device"], "").succeeded();
    flash(&bin, alice.path(), &base, &["keys", "init"], PASS).succeeded();
    let bob_npub = flash(&bin, bob.path(), &base, &["keys", "init", "--import", &bob_words], PASS)
        .succeeded()
        .stdout
        .trim()
        .to_string();
    let wallet = json_of(
        &flash(&bin, alice.path(), &base, &["--json", "balance"], "")
            .succeeded()
            .stdout,
    )[0]["id"]
        .as_str()
        .expect("wallet")
        .to_string();
    Api::new(&base)
        .fund(&admin_key, &wallet, 5_000, "client-cli-fund")
        .await;

    // Alice's own notes, from her balance; a token locked to Bob.
    let token = flash(&bin, alice.path(), &base, &["ecash", "mint", "1000"], "")
        .succeeded()
        .stdout;
    let taken = flash(&bin, alice.path(), &base, &["ecash", "receive", token.trim()], PASS).succeeded();
    assert!(taken.stdout.contains("Received 1000 sats"), "{}", taken.stdout);
    let locked = flash(
        &bin,
        alice.path(),
        &base,
        &["ecash", "send", "300", "--to", &bob_npub],
        PASS,
    )
    .succeeded()
    .stdout
    .trim()
    .to_string();
    assert!(locked.starts_with("cashuB"), "{locked}");

    // Bob's client has seen the mint (its keys are kept); then flashd stops. Bob checks the
    // token offline and keeps it; Alice cannot take it.
    let seen = json_of(
        &flash(&bin, bob.path(), &base, &["--json", "ecash", "notes"], PASS)
            .succeeded()
            .stdout,
    );
    assert_eq!(seen["mintReachable"], true, "{seen}");
    server.kill_and_wait();
    let kept = flash(&bin, bob.path(), &base, &["ecash", "receive", &locked], PASS).succeeded();
    assert!(kept.stdout.contains("Checked 300 sats offline"), "{}", kept.stdout);
    let notes = json_of(
        &flash(&bin, bob.path(), &base, &["--json", "ecash", "notes"], PASS)
            .succeeded()
            .stdout,
    );
    assert_eq!(
        (notes["balance"].as_i64(), notes["pending"].as_i64()),
        (Some(0), Some(300)),
        "{notes}"
    );
    let not_hers = flash(&bin, alice.path(), &base, &["ecash", "receive", &locked], PASS).failed();
    assert!(not_hers.contains("locked to another key"), "{not_hers}");

    // Back: redeemed into Bob's notes, and not twice.
    let server = Flashd::start(&Launch::on_port(dir.path(), port)).await;
    let notes = json_of(
        &flash(&bin, bob.path(), &base, &["--json", "ecash", "notes"], PASS)
            .succeeded()
            .stdout,
    );
    assert_eq!(
        (notes["balance"].as_i64(), notes["pending"].as_i64()),
        (Some(300), Some(0)),
        "{notes}"
    );
    let twice = flash(&bin, bob.path(), &base, &["ecash", "receive", &locked], PASS).failed();
    assert!(twice.contains("spent already"), "{twice}");

    // Bob's backup, to a file and to the relay; two fresh machines restore from them.
    let file = bob.path().join("bob-backup.json");
    let file = file.to_str().expect("path");
    flash(
        &bin,
        bob.path(),
        &base,
        &["backup", "--file", file, "--relays"],
        &format!("{PASS}backup words\n"),
    )
    .succeeded();
    let fresh = TempDir::new("client-cli-fresh");
    let restored = flash(
        &bin,
        fresh.path(),
        &base,
        &["--json", "restore", "--file", file],
        "new passphrase\nbackup words\n",
    )
    .succeeded();
    let restored = json_of(&restored.stdout);
    assert_eq!(restored["npub"], bob_npub.as_str());
    assert_eq!(restored["ecash"], 300, "{restored}");
    let shown = flash(&bin, fresh.path(), &base, &["keys", "show"], "new passphrase\n").succeeded();
    assert_eq!(shown.stdout.trim(), bob_npub);
    let other = TempDir::new("client-cli-fresh-relay");
    let from_relay = json_of(
        &flash(
            &bin,
            other.path(),
            &base,
            &["--json", "restore", "--key", &bob_words],
            PASS,
        )
        .succeeded()
        .stdout,
    );
    assert_eq!(
        (from_relay["npub"].as_str(), from_relay["ecash"].as_i64()),
        (Some(bob_npub.as_str()), Some(300))
    );
    // A wrong backup passphrase restores nothing.
    let third = TempDir::new("client-cli-fresh-wrong");
    let wrong = flash(
        &bin,
        third.path(),
        &base,
        &["restore", "--file", file],
        &format!("{PASS}not the words\n"),
    )
    .failed();
    assert!(wrong.contains("wrong passphrase"), "{wrong}");
    assert!(!third.path().join("keystore.json").exists());
    Api::new(&server.base).assert_ledger_ok(&admin_key).await;
}
