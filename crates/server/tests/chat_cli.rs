//! The `flash` binary chatting over two real `flashd` relays: Alice and Bob each make a
//! keystore, write to each other while one relay is down (nothing is lost: the other relay
//! carries it now, the outbox catches the down one up later), and Alice pays the invoice Bob
//! sent in a message, from the chat, once however often she asks. Then a group: created
//! closed, joined with an invite, moderated.

mod common;

use std::path::Path;

use common::*;
use serde_json::Value;

/// The keystores' passphrase, given on stdin.
const PASSPHRASE: &str = "correct horse battery\n";

/// Runs `flash --server SERVER args` in `profile` with the passphrase on stdin.
fn flash(bin: &Path, profile: &Path, server: &str, args: &[&str]) -> FlashRun {
    let mut all = vec!["--server", server];
    all.extend_from_slice(args);
    run_flash_with_stdin(bin, profile, &all, PASSPHRASE)
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// The sats in the profile's BTC wallet.
fn balance(bin: &Path, profile: &Path, server: &str) -> i64 {
    let wallets = json_of(&flash(bin, profile, server, &["--json", "balance"]).succeeded().stdout);
    wallets
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["walletCurrency"] == "BTC"))
        .and_then(|w| w["balance"].as_i64())
        .unwrap_or_else(|| panic!("no BTC balance in {wallets}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_chat_over_two_relays_and_pay_a_request_from_the_chat() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let (dir_a, dir_b) = (TempDir::new("chat-cli-a"), TempDir::new("chat-cli-b"));
    let (port_a, port_b) = (free_port(), free_port());
    let bank = Flashd::start(&Launch::on_port(dir_a.path(), port_a)).await;
    let mut relay_b = Flashd::start(&Launch::on_port(dir_b.path(), port_b)).await;
    let admin_key = bank.admin_key.clone().expect("admin key");
    let server = bank.base.clone();
    let (ws_a, ws_b) = (format!("ws://127.0.0.1:{port_a}"), format!("ws://127.0.0.1:{port_b}"));
    let both = ["--relay", ws_a.as_str(), "--relay", ws_b.as_str()];

    // Two profiles, each logged in with a keystore.
    let (alice, bob) = (TempDir::new("chat-cli-alice"), TempDir::new("chat-cli-bob"));
    let mut npubs = Vec::new();
    for profile in [&alice, &bob] {
        flash(&bin, profile.path(), &server, &["login", "--device"]).succeeded();
        let init = flash(&bin, profile.path(), &server, &["--json", "keys", "init"]).succeeded();
        let npub = json_of(&init.stdout)["npub"].as_str().expect("npub").to_string();
        assert!(npub.starts_with("npub1"), "{npub}");
        let shown = flash(&bin, profile.path(), &server, &["keys", "show"]).succeeded();
        assert_eq!(shown.stdout.trim(), npub);
        npubs.push(npub);
    }
    let (alice_npub, bob_npub) = (npubs[0].clone(), npubs[1].clone());
    // A second init is refused and leaves the keystore as it was; a wrong passphrase opens nothing.
    let again = flash(&bin, alice.path(), &server, &["keys", "init"]).failed();
    assert!(again.contains("exists already"), "{again}");
    let wrong = run_flash_with_stdin(
        &bin,
        alice.path(),
        &["--server", &server, "keys", "show"],
        "wrong passphrase\n",
    )
    .failed();
    assert!(wrong.contains("wrong passphrase"), "{wrong}");

    let alice_wallet = json_of(
        &flash(&bin, alice.path(), &server, &["--json", "balance"])
            .succeeded()
            .stdout,
    )[0]["id"]
        .as_str()
        .expect("wallet id")
        .to_string();
    Api::new(&server)
        .fund(&admin_key, &alice_wallet, 10_000, "chat-cli-fund")
        .await;

    // Relay B is down while they talk.
    relay_b.kill_and_wait();
    let invoice = flash(
        &bin,
        bob.path(),
        &server,
        &["invoice", "1500", "--memo", "climbing shoes"],
    )
    .succeeded();
    let invoice = invoice.stdout.trim().to_string();
    let mut send = vec!["chat", "send", alice_npub.as_str()];
    let text = format!("The shoes are 1,500 sats: {invoice}");
    send.push(&text);
    send.extend_from_slice(&both);
    flash(&bin, bob.path(), &server, &send).succeeded();
    let mut read = vec!["--json", "chat", "read", bob_npub.as_str()];
    read.extend_from_slice(&both);
    let seen = json_of(&flash(&bin, alice.path(), &server, &read).succeeded().stdout);
    assert_eq!(seen["new"], 1, "{seen}");
    assert_eq!(seen["messages"][0]["text"], text.as_str());
    let mut reply = vec!["chat", "send", bob_npub.as_str(), "paying now"];
    reply.extend_from_slice(&both);
    flash(&bin, alice.path(), &server, &reply).succeeded();

    // B is back. Alice pays from the chat (reading first sends her outbox to B), twice.
    let _relay_b = Flashd::start(&Launch::on_port(dir_b.path(), port_b)).await;
    let mut pay = vec!["chat", "pay", bob_npub.as_str()];
    pay.extend_from_slice(&both);
    let paid = flash(&bin, alice.path(), &server, &pay).succeeded();
    assert!(paid.stdout.contains("Status:  SUCCESS"), "{}", paid.stdout);
    flash(&bin, alice.path(), &server, &pay).succeeded();
    assert_eq!(balance(&bin, bob.path(), &server), 1_500, "paid once");
    assert_eq!(balance(&bin, alice.path(), &server), 10_000 - 1_500);

    // Bob, reading from relay B alone, gets Alice's reply that B missed while it was down.
    let from_b = json_of(
        &flash(
            &bin,
            bob.path(),
            &server,
            &["--json", "chat", "read", &alice_npub, "--relay", &ws_b],
        )
        .succeeded()
        .stdout,
    );
    let texts: Vec<&str> = from_b["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .filter_map(|m| m["text"].as_str())
        .collect();
    assert!(texts.contains(&"paying now"), "{from_b}");
    // Nothing asked of Bob by Alice: paying "her request" is refused.
    let mut none = vec!["chat", "pay", alice_npub.as_str()];
    none.extend_from_slice(&both);
    let refused = flash(&bin, bob.path(), &server, &none).failed();
    assert!(refused.contains("sent no payment request"), "{refused}");

    // A closed group on relay A: Bob joins with Alice's invite, posts; Alice deletes the post
    // and removes him, after which the relay refuses his posts.
    let on_a = ["--relay", ws_a.as_str()];
    let mut create = vec!["group", "create", "climbers", "--name", "Climbers"];
    create.extend_from_slice(&on_a);
    flash(&bin, alice.path(), &server, &create).succeeded();
    let mut invite = vec!["group", "invite", "climbers"];
    invite.extend_from_slice(&on_a);
    let invite = flash(&bin, alice.path(), &server, &invite)
        .succeeded()
        .stdout
        .trim()
        .to_string();
    assert!(invite.contains("'climbers?code="), "{invite}");
    let mut post = vec!["group", "post", "climbers", "first!"];
    post.extend_from_slice(&on_a);
    let refused = flash(&bin, bob.path(), &server, &post).failed();
    assert!(refused.contains("refused"), "not a member yet: {refused}");
    flash(&bin, bob.path(), &server, &["group", "join", &invite]).succeeded();
    let posted = flash(&bin, bob.path(), &server, &post)
        .succeeded()
        .stdout
        .trim()
        .to_string();
    let mut read = vec!["--json", "group", "read", "climbers"];
    read.extend_from_slice(&on_a);
    let posts = json_of(&flash(&bin, alice.path(), &server, &read).succeeded().stdout);
    assert_eq!(posts["posts"][0]["text"], "first!", "{posts}");
    let mut delete = vec!["group", "delete", "climbers", posted.as_str()];
    delete.extend_from_slice(&on_a);
    flash(&bin, alice.path(), &server, &delete).succeeded();
    let posts = json_of(&flash(&bin, alice.path(), &server, &read).succeeded().stdout);
    assert_eq!(posts["posts"], serde_json::json!([]), "{posts}");
    let mut remove = vec!["group", "remove", "climbers", bob_npub.as_str()];
    remove.extend_from_slice(&on_a);
    flash(&bin, alice.path(), &server, &remove).succeeded();
    let refused = flash(&bin, bob.path(), &server, &post).failed();
    assert!(refused.contains("refused"), "removed: {refused}");
    Api::new(&server).assert_ledger_ok(&admin_key).await;
}
