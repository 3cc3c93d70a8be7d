//! The real `flashd` binary from the outside: the README walkthrough through the `flash`
//! client SDK, configuration precedence, mainnet restrictions and JSON logs.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use flash_cli::{
    new_idempotency_key, ApiKeyCreateInput, Client, ClientError, Destination, PayRequest, Scope, SettlementVia,
};
use serde_json::{json, Value};

/// The `code` of a client error, if the server sent one.
fn error_code(e: &ClientError) -> Option<String> {
    match e {
        ClientError::GraphQl(errors) => errors.first().and_then(|e| e.code.clone()),
        ClientError::Api { code, .. } => Some(code.clone()),
        ClientError::NotAuthenticated => Some("UNAUTHENTICATED".into()),
        _ => None,
    }
}

/// The balance of the default wallet, as `flash balance` shows it.
async fn balance(client: &Client) -> i64 {
    let me = client.me().await.expect("me");
    let account = me.default_account;
    account
        .wallets
        .iter()
        .find(|w| w.id == account.default_wallet_id)
        .map(|w| w.balance)
        .expect("default wallet")
}

async fn default_wallet(client: &Client) -> String {
    let me = client.me().await.expect("me");
    me.default_account.default_wallet_id
}

/// The login code the (non-mainnet) server wrote to its log for `identifier`.
async fn logged_code(server: &Flashd, identifier: &str) -> String {
    let marker = format!("login code for {identifier}: ");
    for _ in 0..250 {
        let found = server.all_output().iter().find_map(|l| {
            let at = l.find(&marker)? + marker.len();
            let code: String = l[at..].chars().take_while(char::is_ascii_digit).collect();
            (code.len() == 6).then_some(code)
        });
        if let Some(code) = found {
            return code;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!(
        "no login code for {identifier} in the log:\n{}",
        server.all_output().join("\n")
    );
}

/// Runs the `flash` binary with a private config dir; stdout on success.
fn flash_stdout(bin: &Path, config_dir: &Path, args: &[&str]) -> String {
    flash_ok(bin, config_dir, args).stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_walkthrough() {
    let dir = TempDir::new("walkthrough");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let admin_key = server.admin_key.clone().expect("admin key on first start");
    let admin = Client::new(&server.base).expect("client").with_admin_key(&admin_key);

    // As in the README: Alice logs in with an email code read from the server log, Bob
    // with a device account (twice: the same secret is the same account).
    let mut alice = Client::new(&server.base).expect("client");
    alice.login_email_code("alice@example.com").await.expect("email code");
    let code = logged_code(&server, "alice@example.com").await;
    alice
        .login_email("alice@example.com", &code)
        .await
        .expect("alice email login");
    let replayed_code = Client::new(&server.base)
        .expect("client")
        .login_email("alice@example.com", &code)
        .await
        .expect_err("a login code is single-use");
    assert!(error_code(&replayed_code).is_some(), "{replayed_code}");
    let mut bob = Client::new(&server.base).expect("client");
    bob.create_device_account(Some("bob-device-secret-00000002"))
        .await
        .expect("bob device login");
    let mut bob_again = Client::new(&server.base).expect("client");
    bob_again
        .create_device_account(Some("bob-device-secret-00000002"))
        .await
        .expect("bob device login again");
    assert_eq!(
        bob_again.me().await.expect("me").id,
        bob.me().await.expect("me").id,
        "the same device secret is the same user"
    );
    assert_eq!(
        alice
            .set_username("alice")
            .await
            .expect("alice username")
            .username
            .as_deref(),
        Some("alice")
    );
    assert_eq!(
        bob.set_username("bob").await.expect("bob username").username.as_deref(),
        Some("bob")
    );
    let taken = bob
        .set_username("alice")
        .await
        .expect_err("a second username is refused");
    assert!(error_code(&taken).is_some(), "{taken}");
    let me = alice.me().await.expect("me");
    assert_eq!(me.username.as_deref(), Some("alice"));
    assert_eq!(me.email.and_then(|e| e.address).as_deref(), Some("alice@example.com"));

    // The operator funds alice.
    let alice_wallet = default_wallet(&alice).await;
    let bob_wallet = default_wallet(&bob).await;
    let fund = admin
        .wallet_fund(&alice_wallet, 100_000)
        .await
        .expect("walletFund")
        .expect("a transaction");
    assert_eq!(balance(&alice).await, 100_000);

    // Alice pays bob by username; a retry with the same key is the same payment.
    assert_eq!(
        alice.account_default_wallet("bob").await.expect("bob's wallet").id,
        bob_wallet
    );
    let request = PayRequest {
        wallet_id: alice_wallet.clone(),
        destination: Destination::parse("@bob").expect("destination"),
        amount: 2_500,
        memo: Some("coffee".into()),
        idempotency_key: Some(new_idempotency_key()),
    };
    let paid = alice.pay(&request).await.expect("pay");
    assert_eq!(paid.status, "SUCCESS");
    let tx = paid.transaction.expect("transaction").id;
    let again = alice.pay(&request).await.expect("pay again");
    assert_eq!(again.transaction.map(|t| t.id).as_deref(), Some(tx.as_str()));
    let too_much = PayRequest {
        amount: 1_000_000,
        idempotency_key: Some(new_idempotency_key()),
        ..request.clone()
    };
    let refused = alice.pay(&too_much).await.expect_err("more than the balance");
    assert!(error_code(&refused).is_some(), "{refused}");

    // History shows it on both sides, balances follow.
    let history = alice.history(None, Some(10), None).await.expect("alice history");
    let edges = history.edges.unwrap_or_default();
    let first = &edges.first().expect("alice has history").node;
    assert_eq!(
        (first.id.as_str(), first.direction.as_str(), first.settlement_amount),
        (tx.as_str(), "SEND", -2_500)
    );
    assert_eq!(first.memo.as_deref(), Some("coffee"));
    assert_eq!(
        match &first.settlement_via {
            SettlementVia::SettlementViaIntraLedger(via) => via.counter_party_username.as_deref(),
            _ => None,
        },
        Some("bob")
    );
    assert!(
        edges
            .iter()
            .any(|e| e.node.id == fund.id && e.node.settlement_amount == 100_000),
        "the faucet credit is in alice's history"
    );
    assert_eq!(
        edges.len(),
        2,
        "one credit, one payment (the retry is not a second one)"
    );
    let bob_history = bob.history(None, Some(10), None).await.expect("bob history");
    let bob_edges = bob_history.edges.unwrap_or_default();
    let received = &bob_edges.first().expect("bob has history").node;
    assert_eq!(
        (
            received.id.as_str(),
            received.direction.as_str(),
            received.settlement_amount
        ),
        (tx.as_str(), "RECEIVE", 2_500)
    );
    assert_eq!(balance(&alice).await, 97_500);
    assert_eq!(balance(&bob).await, 2_500);

    // API keys: create, use, list, revoke.
    let created = alice
        .api_key_create(&ApiKeyCreateInput {
            name: "reporting".into(),
            scopes: vec![Scope::Read],
            expire_in_days: Some(30),
            ip_allowlist: None,
        })
        .await
        .expect("apikey create");
    let key_id = created.api_key.id.clone();
    assert_eq!(created.api_key.scopes, vec![Scope::Read]);
    let reader = Client::new(&server.base)
        .expect("client")
        .with_token(&created.api_key_secret);
    assert_eq!(balance(&reader).await, 97_500, "a read key reads");
    let write_refused = reader
        .pay(&PayRequest {
            idempotency_key: Some(new_idempotency_key()),
            ..request.clone()
        })
        .await
        .expect_err("a read key cannot pay");
    assert_eq!(
        error_code(&write_refused).as_deref(),
        Some("FORBIDDEN_SCOPE"),
        "{write_refused}"
    );
    let keys = alice.api_keys().await.expect("apikey list");
    let listed = keys.iter().find(|k| k.id == key_id).expect("the key is listed");
    assert_eq!((listed.name.as_str(), listed.revoked), ("reporting", false));
    let revoked = alice.api_key_revoke(&key_id).await.expect("apikey revoke");
    assert!(revoked.revoked);
    let keys = alice.api_keys().await.expect("apikey list");
    assert_eq!(keys.iter().find(|k| k.id == key_id).map(|k| k.revoked), Some(true));
    let after_revoke = reader.me().await.expect_err("a revoked key is refused");
    assert!(error_code(&after_revoke).is_some(), "{after_revoke}");
    assert_eq!(balance(&bob).await, 2_500, "the refused payment moved nothing");

    // The operator's view: the journal, and a clean ledger.
    let journal = admin.journal(&tx).await.expect("journal");
    assert_eq!(journal.entries.len(), 2);
    assert_eq!(journal.entries.iter().map(|e| e.amount).sum::<i64>(), 0);
    let verify = admin.ledger_verify().await.expect("ledger verify");
    assert!(verify.ok && verify.problems.is_empty(), "{verify:?}");
    assert!(verify.currencies.iter().all(|c| c.total == 0), "{verify:?}");
    assert_eq!(verify.journals_checked, 2);

    // The same through the `flash` binary, when it was built next to flashd.
    if let Some(bin) = flash_binary_or_skip() {
        // Carol does the README's steps with the binary, in her own profile.
        let carol = TempDir::new("flash-carol");
        let flash = |args: &[&str]| {
            let mut all = vec!["--server", server.base.as_str()];
            all.extend_from_slice(args);
            flash_stdout(&bin, carol.path(), &all)
        };
        flash(&["login", "--device"]);
        flash(&["username", "set", "carol"]);
        let wallets: Value = serde_json::from_str(&flash(&["--json", "balance"])).expect("balance JSON");
        let carol_wallet = wallets[0]["id"].as_str().expect("carol's wallet").to_string();
        flash(&[
            "--admin-key",
            &admin_key,
            "admin",
            "wallet",
            "fund",
            &carol_wallet,
            "5000",
        ]);
        flash(&["pay", "bob", "100", "--memo", "tea"]);
        let wallets: Value = serde_json::from_str(&flash(&["--json", "balance"])).expect("balance JSON");
        assert_eq!(wallets[0]["balance"], json!(4_900));
        let history = flash(&["history"]);
        assert!(history.contains("bob") && history.contains("tea"), "{history}");
        assert_eq!(balance(&bob).await, 2_600);
        let out = flash(&["--admin-key", &admin_key, "admin", "ledger", "verify"]);
        assert!(out.contains("Ledger OK"), "{out}");
        println!("checked the `flash` binary at {}", bin.display());
    }

    // Logout ends the session.
    let token = alice.token().expect("alice token").to_string();
    alice.logout().await.expect("logout");
    let stale = Client::new(&server.base).expect("client").with_token(token);
    assert!(stale.me().await.is_err(), "a logged-out session is refused");
}

/// Writes `text` as a TOML config in `dir`.
fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write config");
    path
}

/// Starts flashd and checks it listens on `port` with `network`; `Err` on a bind failure
/// (the port was taken meanwhile: the caller picks new ports).
async fn expect_listen(launch: &Launch, port: u16, network: &str) -> Result<(), ()> {
    let server = match Flashd::try_start(launch).await {
        Ok(s) => s,
        Err(e) if e.text().contains("binding") => return Err(()),
        Err(e) => panic!("flashd did not start: {}", e.text()),
    };
    assert_eq!(server.base, format!("http://127.0.0.1:{port}"), "{launch:?}");
    let health = Api::new(&server.base).get_json("/healthz").await;
    assert_eq!(health["network"], json!(network), "{health}");
    assert_eq!(health["status"], json!("ok"), "{health}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_env_and_flags() {
    let dir = TempDir::new("config");
    let data = dir.path().join("data");
    let data = data.display().to_string();
    let mut done = false;
    for _attempt in 0..5 {
        let (file_port, env_port, flag_port) = (free_port(), free_port(), free_port());
        if file_port == env_port || env_port == flag_port || file_port == flag_port {
            continue;
        }
        let config = write_config(
            dir.path(),
            "flash.toml",
            &format!("listen = \"127.0.0.1:{file_port}\"\nnetwork = \"signet\"\n"),
        );
        let config = config.display().to_string();
        let file_only = Launch {
            args: vec!["--config".into(), config, "--data-dir".into(), data.clone()],
            env: Vec::new(),
        };
        let with_env = file_only.clone().env("FLASH_LISTEN", &format!("127.0.0.1:{env_port}"));
        let with_flag = with_env.clone().arg("--listen").arg(&format!("127.0.0.1:{flag_port}"));
        // Flag over environment over file; the file's network everywhere.
        if expect_listen(&with_flag, flag_port, "signet").await.is_err()
            || expect_listen(&with_env, env_port, "signet").await.is_err()
            || expect_listen(&file_only, file_port, "signet").await.is_err()
        {
            continue;
        }
        // FLASH_CONFIG names the file too, and FLASH_NETWORK overrides its network.
        let via_env = Launch {
            args: vec![
                "--data-dir".into(),
                data.clone(),
                "--listen".into(),
                "127.0.0.1:0".into(),
            ],
            env: Vec::new(),
        }
        .env("FLASH_CONFIG", &dir.path().join("flash.toml").display().to_string())
        .env("FLASH_NETWORK", "testnet");
        let server = Flashd::start(&via_env).await;
        let health = Api::new(&server.base).get_json("/healthz").await;
        assert_eq!(health["network"], json!("testnet"), "{health}");
        done = true;
        break;
    }
    assert!(done, "could not find free ports in 5 attempts");
}

/// Runs flashd with a config that must be refused; returns its output.
async fn refused_config(dir: &Path, name: &str, text: &str) -> String {
    let path = write_config(dir, name, text);
    let launch = Launch::new(&dir.join("data"), None)
        .arg("--config")
        .arg(&path.display().to_string());
    match Flashd::try_start(&launch).await {
        Ok(_) => panic!("flashd started with {name}:\n{text}"),
        Err(e) => {
            let status = e.status.expect("flashd exited");
            assert!(!status.success(), "exit status {status} for {name}");
            assert!(status.code().is_some(), "flashd exited by itself ({status})");
            e.text()
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_unknown_keys_are_refused() {
    let dir = TempDir::new("badconfig");
    for (name, text, key) in [
        (
            "top.toml",
            "network = \"signet\"\nlisten_addr = \"127.0.0.1:1\"\n",
            "listen_addr",
        ),
        (
            "limits.toml",
            "[limits]\nreference_sats_per_dollar = 1000\n",
            "reference_sats_per_dollar",
        ),
        ("auth.toml", "[auth]\nsession_ttl = 60\n", "session_ttl"),
    ] {
        let out = refused_config(dir.path(), name, text).await;
        assert!(out.contains(key), "the error for {name} names `{key}`:\n{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_unknown_key_in_smtp_is_refused() {
    let dir = TempDir::new("badsmtp");
    let text = "[smtp]\nhost = \"127.0.0.1\"\nport = 2525\nfrom = \"Flash <login@example.com>\"\n\
                username = \"flash\"\npasword = \"typo\"\n";
    let out = refused_config(dir.path(), "smtp.toml", text).await;
    assert!(out.contains("pasword"), "the error names `pasword`:\n{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_unknown_key_in_level_limits_is_refused() {
    let dir = TempDir::new("badlevel");
    let text = "[limits.level0]\nintraledger_cents = 100\nwithdrawal_cents = 100\nintraledger_cent = 5\n";
    let out = refused_config(dir.path(), "level.toml", text).await;
    assert!(
        out.contains("intraledger_cent"),
        "the error names `intraledger_cent`:\n{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mainnet_refuses_faucet() {
    let dir = TempDir::new("mainnet");
    // The dev Lightning simulator refuses mainnet, and says what to configure instead.
    let refused = Flashd::try_start(&Launch::new(dir.path(), None).arg("--network").arg("mainnet"))
        .await
        .err()
        .expect("the default (dev) Lightning backend refuses mainnet");
    assert!(refused.text().contains("backend = \"lnd\""), "{}", refused.text());
    let config = dir.path().join("flash.toml");
    // So does the dev chain simulator.
    std::fs::write(&config, "[lightning]\nbackend = \"none\"\n").expect("config");
    let with_config = |config: &std::path::Path| {
        Launch::new(dir.path(), None)
            .arg("--network")
            .arg("mainnet")
            .arg("--config")
            .arg(&config.display().to_string())
    };
    let refused = Flashd::try_start(&with_config(&config))
        .await
        .err()
        .expect("the default (dev) chain backend refuses mainnet");
    assert!(refused.text().contains("[onchain] backend"), "{}", refused.text());
    std::fs::write(
        &config,
        "[lightning]\nbackend = \"none\"\n[onchain]\nbackend = \"none\"\n",
    )
    .expect("config");
    let server = Flashd::start(&with_config(&config)).await;
    let admin_key = server.admin_key.clone().expect("admin key");
    let api = Api::new(&server.base);
    assert_eq!(api.get_json("/healthz").await["network"], json!("mainnet"));
    let user = api.device_user("mainnet-device-secret-01").await;

    let data = api
        .admin(
            &admin_key,
            "mutation($input: WalletFundInput!) { walletFund(input: $input) \
             { errors { code message } transaction { id } } }",
            json!({ "input": { "walletId": user.wallet_id, "amount": 1000 } }),
        )
        .await;
    let payload = &data["walletFund"];
    assert_eq!(
        payload["errors"][0]["code"],
        json!("NOT_AVAILABLE_ON_MAINNET"),
        "{payload}"
    );
    assert!(payload["transaction"].is_null(), "{payload}");
    assert_eq!(api.balance(&user).await, 0);

    // No code sender but the log exists on mainnet, and the log is refused: an error, and
    // no code anywhere in the output.
    for (path, body) in [
        ("/auth/phone/code", json!({ "phone": "+15551234567" })),
        ("/auth/email/code", json!({ "email": "someone@example.com" })),
    ] {
        let (status, v) = api.post(path, None, &body).await.expect(path);
        assert_ne!(status, 200, "{path}: {v}");
        assert_eq!(v["error"]["code"], json!("CODE_DELIVERY_FAILED"), "{path}: {v}");
    }
    let out = server.all_output().join("\n");
    assert!(!out.contains("login code for"), "a code was logged on mainnet:\n{out}");
    assert!(out.contains("running on mainnet"), "{out}");
    assert_eq!(api.assert_ledger_ok(&admin_key).await, 0);
}

/// Lines flashd prints for people rather than as logs.
const BANNER: [&str; 10] = [
    ADMIN_KEY_PREFIX,
    LISTENING_PREFIX,
    "  GraphQL:",
    "  Admin:",
    "  Health:",
    "  Mint:",
    "  Relay:",
    "  Lightning addresses:",
    "  Lightning:",
    "  On-chain:",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs() {
    let dir = TempDir::new("jsonlogs");
    let mut server = Flashd::start(&Launch::new(dir.path(), None).arg("--log-format").arg("json")).await;
    let api = Api::new(&server.base);
    // Something logged at request time: the regtest code sender logs the code…
    let phone = "+15557654321";
    let (status, v) = api
        .post("/auth/phone/code", None, &json!({ "phone": phone }))
        .await
        .expect("phone code");
    assert_eq!(status, 200, "{v}");
    let mut code = None;
    for _ in 0..100 {
        code = server.all_output().iter().find_map(|l| {
            let v: Value = serde_json::from_str(l).ok()?;
            let msg = v["fields"]["message"].as_str()?;
            let rest = msg.strip_prefix(&format!("login code for {phone}: "))?;
            Some((rest.to_string(), v["target"].clone()))
        });
        if code.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (code, target) = code.expect("the login code as a JSON log line");
    assert_eq!(target, json!("flash::auth"));
    // …and the code logs in.
    let (status, v) = api
        .post("/auth/phone/login", None, &json!({ "phone": phone, "code": code }))
        .await
        .expect("phone login");
    assert_eq!(status, 200, "{v}");
    assert!(v["authToken"].is_string(), "{v}");

    server.sigterm();
    let status = server.wait_exit(Duration::from_secs(30)).expect("exits after SIGTERM");
    assert!(status.success(), "{status}");
    let mut messages = Vec::new();
    for line in server.all_output() {
        if line.trim().is_empty() || BANNER.iter().any(|b| line.starts_with(b)) {
            continue;
        }
        let v: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v.is_object(), "{line}");
        for field in ["timestamp", "level", "target", "fields"] {
            assert!(v.get(field).is_some(), "no `{field}` in {line}");
        }
        messages.push(v["fields"]["message"].as_str().unwrap_or_default().to_string());
    }
    for expected in [
        "storage ready",
        "shutting down: finishing in-flight requests",
        "stopped",
    ] {
        assert!(
            messages.iter().any(|m| m == expected),
            "no `{expected}` in {messages:?}"
        );
    }
}

/// The Lightning commands of the `flash` binary against the real flashd and its dev simulator:
/// invoices, the operator paying one from the simulated outside world, paying an invoice of
/// this bank and a Lightning address of it (both inside the ledger, without a fee).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_lightning_walkthrough() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("ln-walkthrough");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let admin_key = server.admin_key.clone().expect("admin key on first start");
    let host = server
        .all_output()
        .iter()
        .find_map(|l| {
            l.strip_prefix("  Lightning addresses: username@")
                .map(|h| h.trim().to_string())
        })
        .expect("the Lightning address banner line");
    let (alice_dir, bob_dir) = (TempDir::new("flash-alice"), TempDir::new("flash-bob"));
    let operator_dir = TempDir::new("flash-operator");
    let flash = |profile: &Path, args: &[&str]| {
        let mut all = vec!["--server", server.base.as_str()];
        all.extend_from_slice(args);
        flash_stdout(&bin, profile, &all)
    };
    let alice = |args: &[&str]| flash(alice_dir.path(), args);
    let bob = |args: &[&str]| flash(bob_dir.path(), args);
    let operator = |args: &[&str]| {
        let mut all = vec!["--admin-key", admin_key.as_str(), "admin"];
        all.extend_from_slice(args);
        flash(operator_dir.path(), &all)
    };
    let json_of = |out: String| -> Value { serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}")) };
    let balance_of = |out: String| json_of(out)[0]["balance"].clone();
    // The value of a `Key:  value` line of `flash pay`.
    let line = |out: &str, key: &str| -> String {
        out.lines()
            .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| panic!("no `{key}` line in:\n{out}"))
    };

    alice(&["login", "--device"]);
    alice(&["username", "set", "alice"]);
    bob(&["login", "--device"]);
    bob(&["username", "set", "bob"]);

    // Alice asks for 1,500 sats; the operator pays the invoice from the outside world.
    let pr = alice(&["invoice", "1500", "--memo", "tea"]).trim().to_string();
    assert!(
        matches!(Destination::parse(&pr), Ok(Destination::Invoice(ref i)) if *i == pr),
        "not an invoice: {pr}"
    );
    assert_eq!(alice(&["invoice", "status", &pr]).trim(), "PENDING");
    let out = operator(&["lightning", "pay", &pr]);
    assert!(out.contains("Paid"), "{out}");
    assert_eq!(balance_of(alice(&["--json", "balance"])), json!(1_500));
    let table = alice(&["balance"]);
    assert!(table.contains("1500 sats"), "{table}");
    assert_eq!(alice(&["invoice", "status", &pr]).trim(), "PAID");
    let status = json_of(alice(&["--json", "invoice", "status", &format!("lightning:{pr}")]));
    assert_eq!(
        (&status["status"], &status["paymentRequest"]),
        (&json!("PAID"), &json!(pr))
    );

    // Bob, funded by the operator, pays Alice's second invoice: inside the ledger, no fee.
    let wallets = json_of(bob(&["--json", "balance"]));
    let bob_wallet = wallets[0]["id"].as_str().expect("bob's wallet").to_string();
    operator(&["wallet", "fund", &bob_wallet, "5000"]);
    let invoice = json_of(alice(&["--json", "invoice", "700", "--expires-in", "30"]));
    assert_eq!(
        (&invoice["satoshis"], &invoice["paymentStatus"]),
        (&json!(700), &json!("PENDING"))
    );
    let pr2 = invoice["paymentRequest"].as_str().expect("paymentRequest").to_string();
    assert_eq!(bob(&["fee", &pr2]).trim(), "Fee: 0 sats");
    let out = bob(&["pay", &pr2]);
    assert_eq!(line(&out, "Status:"), "SUCCESS", "{out}");
    assert_eq!(line(&out, "Amount:"), "700 sats", "{out}");
    assert_eq!(line(&out, "Fee:"), "0 sats", "{out}");
    assert!(!line(&out, "Transaction:").is_empty(), "{out}");
    assert_eq!(alice(&["invoice", "status", &pr2]).trim(), "PAID");
    // Paying it again takes nothing.
    let again = bob(&["pay", &pr2]);
    assert_eq!(line(&again, "Status:"), "ALREADY_PAID", "{again}");

    // Bob pays Alice's Lightning address; without an amount it is refused before sending.
    let address = format!("alice@{host}");
    let why = flash_fails(
        &bin,
        bob_dir.path(),
        &["--server", server.base.as_str(), "pay", &address],
    );
    assert!(
        why.contains("needs an amount"),
        "paying an address needs an amount: {why}"
    );
    let paid = json_of(bob(&["--json", "pay", &address, "100", "--memo", "biscuits"]));
    assert_eq!(paid["status"], json!("SUCCESS"), "{paid}");
    assert_eq!(
        paid["destination"],
        json!({ "kind": "LN_ADDRESS", "value": address.to_ascii_lowercase() })
    );
    assert_eq!((&paid["amount"], &paid["fee"]), (&json!(100), &json!(0)), "{paid}");
    assert_eq!(paid["transaction"]["settlementAmount"], json!(-100), "{paid}");
    assert_eq!(paid["errors"], json!([]), "{paid}");
    assert!(paid["idempotencyKey"].is_string(), "{paid}");
    assert_eq!(balance_of(alice(&["--json", "balance"])), json!(2_300));
    assert_eq!(balance_of(bob(&["--json", "balance"])), json!(4_200));
    let history = alice(&["history"]);
    assert!(history.contains("biscuits") && history.contains("tea"), "{history}");

    // The operator's Lightning views, and a clean ledger.
    let node = json_of(operator(&["--json", "lightning", "node"]));
    assert_eq!(node["simulated"], json!(true), "{node}");
    let liquidity = json_of(operator(&["--json", "lightning", "liquidity"]));
    assert!(liquidity["issues"].is_array(), "{liquidity}");
    let reconciled = json_of(operator(&["--json", "lightning", "reconcile"]));
    assert_eq!(reconciled["pending"], json!(0), "{reconciled}");
    let out = operator(&["ledger", "verify"]);
    assert!(out.contains("Ledger OK"), "{out}");
    println!("checked the `flash` Lightning commands at {}", bin.display());
}

/// Issue 15: a merchant makes a store and a Greenfield key with the CLI; an integration uses
/// the key against `/api/v1` until the merchant revokes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_merchant_walkthrough() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("merchant-walkthrough");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let profile = TempDir::new("flash-merchant");
    let flash = |args: &[&str]| {
        let mut all = vec!["--server", server.base.as_str()];
        all.extend_from_slice(args);
        flash_stdout(&bin, profile.path(), &all)
    };
    flash(&["login", "--device"]);
    let store = flash(&["merchant", "store", "create", "Corner Shop", "--currency", "eur"])
        .trim()
        .to_string();
    let listed: Value = serde_json::from_str(&flash(&["--json", "merchant", "store", "list"])).expect("json");
    assert_eq!(
        listed,
        json!([{"id": store, "name": "Corner Shop", "defaultCurrency": "EUR", "archived": false}])
    );
    let permission = format!("btcpay.store.canviewstoresettings:{store}");
    let key = flash(&[
        "merchant",
        "key",
        "create",
        "--label",
        "till",
        "--permission",
        &permission,
    ])
    .trim()
    .to_string();

    let http = reqwest::Client::builder().no_proxy().build().expect("http");
    let get_store = || {
        http.get(format!("{}/api/v1/stores/{store}", server.base))
            .header("authorization", format!("token {key}"))
            .send()
    };
    let resp = get_store().await.expect("GET");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Value = resp.json().await.expect("json");
    assert_eq!((&body["id"], &body["defaultCurrency"]), (&json!(store), &json!("EUR")));

    // A webhook for invoice creations, to an address where nothing listens.
    let hook = flash(&[
        "merchant",
        "webhook",
        "add",
        "--store",
        &store,
        "http://127.0.0.1:9/hook",
        "--event",
        "InvoiceCreated",
    ])
    .trim()
    .to_string();
    let hooks = flash(&["merchant", "webhook", "list", "--store", &store]);
    assert!(hooks.contains(&hook) && hooks.contains("InvoiceCreated"), "{hooks}");

    // An invoice in the store's currency, listed and shown with its QR code.
    let invoice = flash(&[
        "merchant",
        "invoice",
        "create",
        "--store",
        &store,
        "--amount",
        "2.50",
        "--order-id",
        "A-17",
        "--item",
        "Espresso",
    ])
    .trim()
    .to_string();
    let listed: Value =
        serde_json::from_str(&flash(&["--json", "merchant", "invoice", "list", "--store", &store])).expect("json");
    assert_eq!(
        (
            &listed[0]["id"],
            &listed[0]["amount"],
            &listed[0]["currency"],
            &listed[0]["metadata"]["orderId"]
        ),
        (&json!(invoice), &json!("2.5"), &json!("EUR"), &json!("A-17"))
    );
    let shown = flash(&["merchant", "invoice", "show", &invoice]);
    assert!(shown.contains(&format!("Invoice {invoice}: 2.5 EUR")), "{shown}");
    assert!(shown.contains("bitcoin:") && shown.contains("lightning="), "{shown}");
    assert!(shown.contains('▀') || shown.contains('▄'), "a QR code: {shown}");
    let settled = flash(&["merchant", "invoice", "list", "--store", &store, "--status", "Settled"]);
    assert!(settled.contains("No invoices."), "{settled}");
    // The creation was delivered (and failed: nobody listens); a redelivery is a new delivery.
    let deliveries = |flash: &dyn Fn(&[&str]) -> String| -> Value {
        serde_json::from_str(&flash(&[
            "--json",
            "merchant",
            "webhook",
            "deliveries",
            "--store",
            &store,
            &hook,
        ]))
        .expect("json")
    };
    let mut first = deliveries(&flash);
    for _ in 0..100 {
        if first.as_array().is_some_and(|d| !d.is_empty()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        first = deliveries(&flash);
    }
    let delivery = first[0]["id"].as_str().expect("a delivery").to_string();
    let again = flash(&["merchant", "webhook", "redeliver", "--store", &store, &hook, &delivery])
        .trim()
        .to_string();
    assert!(!again.is_empty() && again != delivery, "{again}");
    assert_eq!(deliveries(&flash).as_array().map(Vec::len), Some(2));

    let keys: Value = serde_json::from_str(&flash(&["--json", "merchant", "key", "list"])).expect("json");
    assert_eq!(keys[0]["permissions"], json!([permission]));
    let id = keys[0]["id"].as_str().expect("id").to_string();
    assert!(flash(&["merchant", "key", "revoke", &id]).contains("Revoked"));
    assert_eq!(get_store().await.expect("GET").status().as_u16(), 401);
}
