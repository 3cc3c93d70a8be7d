//! Issue 14, item 10: the `flash` binary as a newcomer meets it, against the real flashd. The
//! server of the login is remembered; what goes wrong is said precisely (an operator key the
//! server refuses, junk that looks like an invoice or an address, a server that is down, an
//! expired session); `flash history | head -1` does not panic; what the README showed as raw
//! GraphQL has commands (NOSTR key, wallet connect, withdraw links, contacts, Flash Cards); QR
//! codes are printed on a terminal and never into a pipe; on-chain history lines show their
//! address and transaction; `flash admin ledger verify` says what its totals mean.

mod common;

use std::path::Path;
use std::process::{Command, Stdio};

use common::*;
use serde_json::{json, Value};

/// The NIP-19 example key (`npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg`).
const NPUB: &str = "npub10elfcs4fr0l0r8af98jlmgdh9c8tcxjvz9qkw038js35mp4dma8qzvjptg";

/// Characters of a QR code drawn in the terminal.
const QR_BLOCKS: [char; 3] = ['█', '▀', '▄'];

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

/// `args` after `--server URL`.
fn on(server: &str, args: &[&str]) -> Vec<String> {
    let mut all = vec!["--server".to_string(), server.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

/// Runs `flash --server URL args` in `profile`.
fn run_on(bin: &Path, profile: &Path, server: &str, args: &[&str]) -> FlashRun {
    let all = on(server, args);
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    run_flash(bin, profile, &all)
}

/// The id of the profile's BTC wallet.
fn btc_wallet(bin: &Path, profile: &Path, server: &str) -> String {
    let wallets = json_of(&run_on(bin, profile, server, &["--json", "balance"]).succeeded().stdout);
    wallets
        .as_array()
        .and_then(|ws| ws.iter().find(|w| w["walletCurrency"] == json!("BTC")))
        .and_then(|w| w["id"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no BTC wallet in {wallets}"))
}

/// A URL where nothing listens.
fn nowhere() -> String {
    format!("http://127.0.0.1:{}", free_port())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_remembers_the_server() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("cli-remember");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let alice = TempDir::new("flash-alice");
    run_on(&bin, alice.path(), &server.base, &["login", "--device"]).succeeded();

    // No --server, no FLASH_SERVER: the server of the login.
    let balance = flash_ok(&bin, alice.path(), &["--json", "balance"]);
    assert!(
        json_of(&balance.stdout).as_array().is_some_and(|w| !w.is_empty()),
        "{}",
        balance.stdout
    );
    let who = flash_ok(&bin, alice.path(), &["whoami"]);
    assert!(who.stdout.contains("Default wallet:"), "{}", who.stdout);

    // --server and FLASH_SERVER still choose another one.
    let down = nowhere();
    let e = run_on(&bin, alice.path(), &down, &["balance"]).failed();
    assert!(e.contains(&format!("the server at {down} cannot be reached")), "{e}");
    let out = Command::new(&bin)
        .arg("balance")
        .env("FLASH_CONFIG_DIR", alice.path())
        .env("FLASH_SERVER", &down)
        .env_remove("FLASH_TOKEN")
        .env_remove("FLASH_ADMIN_KEY")
        .output()
        .expect("run flash");
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && e.contains(&format!("the server at {down}")),
        "{e}"
    );

    // Logging out (of the remembered server) forgets it.
    let out = flash_ok(&bin, alice.path(), &["logout"]);
    assert!(out.stdout.contains(&server.base), "{}", out.stdout);
    let creds = std::fs::read_to_string(alice.path().join("credentials.json")).expect("credentials");
    assert!(!creds.contains(&server.base), "{creds}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn misleading_messages_say_what_is_wrong() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("cli-messages");
    let mut server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let admin_key = server.admin_key.clone().expect("admin key on first start");
    let base = server.base.clone();
    let profile = TempDir::new("flash-messages");
    let run = |args: &[&str]| run_on(&bin, profile.path(), &base, args);

    // A wrong operator key: refused, and how to get one; not "run `flash login`".
    let e = run(&["--admin-key", "flashadm_not-the-key", "admin", "ledger", "verify"]).failed();
    assert!(
        e.contains("refused the operator key") && e.contains("flashd admin-key rotate") && !e.contains("flash login"),
        "{e}"
    );
    let e = run(&["admin", "ledger", "verify"]).failed();
    assert!(
        e.contains("FLASH_ADMIN_KEY") && e.contains("flashd admin-key rotate"),
        "{e}"
    );

    // Junk that looks like an invoice, an LNURL or an address is not a username.
    run(&["login", "--device"]).succeeded();
    let e = run(&["pay", "lnbcrt1notaninvoice"]).failed();
    assert!(e.contains("is not a valid Lightning invoice"), "{e}");
    let e = run(&["pay", "lnbcrt1notaninvoice", "1000"]).failed();
    assert!(
        e.contains("is not a valid Lightning invoice") && !e.contains("not found"),
        "{e}"
    );
    let e = run(&["pay", "lnurl1junk", "1000"]).failed();
    assert!(e.contains("is not a valid LNURL"), "{e}");
    let e = run(&["pay", "bcrt1qinvalid", "1000"]).failed();
    assert!(
        e.contains("is not a valid Bitcoin address") && !e.contains("not found"),
        "{e}"
    );

    // The ledger verification says what its totals mean.
    let wallet = btc_wallet(&bin, profile.path(), &base);
    run(&["--admin-key", &admin_key, "admin", "wallet", "fund", &wallet, "5000"]).succeeded();
    let verified = run(&["--admin-key", &admin_key, "admin", "ledger", "verify"]).succeeded();
    assert!(
        verified
            .stdout
            .contains("BTC: all ledger accounts sum to 0 sats (balanced)"),
        "{}",
        verified.stdout
    );
    assert!(!verified.stdout.contains("total 0"), "{}", verified.stdout);

    // A server that is down: "cannot be reached", logged in there or not.
    let nobody = TempDir::new("flash-nobody");
    let down = nowhere();
    let e = run_on(&bin, nobody.path(), &down, &["balance"]).failed();
    assert!(
        e.contains(&format!("the server at {down} cannot be reached")) && !e.contains("not logged in"),
        "{e}"
    );
    server.kill_and_wait();
    let e = run(&["balance"]).failed();
    assert!(e.contains(&format!("the server at {base} cannot be reached")), "{e}");

    // An expired session: said so, with what to do.
    let dir = TempDir::new("cli-expired");
    let expiring = Flashd::start(&with_config(&dir, "[auth]\nsession_ttl_secs = 0\n")).await;
    let profile = TempDir::new("flash-expired");
    run_on(&bin, profile.path(), &expiring.base, &["login", "--device"]).succeeded();
    let e = run_on(&bin, profile.path(), &expiring.base, &["balance"]).failed();
    assert!(
        e.contains(&format!("your session on {} has expired", expiring.base)) && e.contains("run `flash login`"),
        "{e}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_into_a_closed_pipe_exits_quietly() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("cli-pipe");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let admin_key = server.admin_key.clone().expect("admin key on first start");
    let profile = TempDir::new("flash-pipe");
    run_on(&bin, profile.path(), &server.base, &["login", "--device"]).succeeded();
    let wallet = btc_wallet(&bin, profile.path(), &server.base);
    for _ in 0..3 {
        run_on(
            &bin,
            profile.path(),
            &server.base,
            &["--admin-key", &admin_key, "admin", "wallet", "fund", &wallet, "1000"],
        )
        .succeeded();
    }
    // `flash history | head -1` where head has already gone: the pipe's reading end is
    // closed before flash writes, so every write fails with EPIPE.
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    let out = Command::new(&bin)
        .args(on(&server.base, &["history"]))
        .env("FLASH_CONFIG_DIR", profile.path())
        .env_remove("FLASH_SERVER")
        .env_remove("FLASH_TOKEN")
        .env_remove("FLASH_ADMIN_KEY")
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run flash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert!(stderr.is_empty(), "{stderr}");
    // And through a real `head -1`.
    let piped = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "'{}' --server '{}' history | head -1",
            bin.display(),
            server.base
        ))
        .env("FLASH_CONFIG_DIR", profile.path())
        .output()
        .expect("run sh");
    assert!(String::from_utf8_lossy(&piped.stdout).starts_with("DATE"));
    assert!(!String::from_utf8_lossy(&piped.stderr).contains("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_for_what_was_raw_graphql() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("cli-commands");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let admin_key = server.admin_key.clone().expect("admin key on first start");
    let (alice, bob) = (TempDir::new("flash-alice"), TempDir::new("flash-bob"));
    let a = |args: &[&str]| run_on(&bin, alice.path(), &server.base, args);
    let b = |args: &[&str]| run_on(&bin, bob.path(), &server.base, args);
    a(&["login", "--device"]).succeeded();
    b(&["login", "--device"]).succeeded();
    a(&["username", "set", "alice14"]).succeeded();
    b(&["username", "set", "bob14"]).succeeded();
    let wallet = btc_wallet(&bin, alice.path(), &server.base);
    a(&["--admin-key", &admin_key, "admin", "wallet", "fund", &wallet, "50000"]).succeeded();

    // NOSTR: the key is linked and is alice's NIP-05 name.
    let linked = json_of(&a(&["--json", "nostr", "link", NPUB]).succeeded().stdout);
    assert_eq!(linked["npub"], json!(NPUB), "{linked}");
    let nip05 = Api::new(&server.base)
        .get_json("/.well-known/nostr.json?name=alice14")
        .await;
    assert_eq!(
        nip05["names"]["alice14"],
        json!("7e7e9c42a91bfef19fa929e5fda1b72e0ebc1a4c1141673e2794234d86addf4e"),
        "{nip05}"
    );
    assert!(a(&["nostr", "link", "npub1nope"]).failed().contains("INVALID_NPUB"));

    // Wallet connect: the URI alone on stdout (no QR into a pipe), the budget period an enum.
    let created = a(&[
        "nwc", "create", "--name", "zapper", "--budget", "5000", "--period", "weekly",
    ])
    .succeeded();
    assert_eq!(created.stdout.lines().count(), 1, "{}", created.stdout);
    assert!(
        created.stdout.starts_with("nostr+walletconnect://"),
        "{}",
        created.stdout
    );
    assert!(!created.stdout.contains(QR_BLOCKS), "{}", created.stdout);
    let list = json_of(&a(&["--json", "nwc", "list"]).succeeded().stdout);
    let conn = &list[0];
    assert_eq!(
        (
            &conn["name"],
            &conn["budgetSats"],
            &conn["budgetPeriod"],
            &conn["revokedAt"]
        ),
        (&json!("zapper"), &json!(5000), &json!("weekly"), &Value::Null),
        "{list}"
    );
    let id = conn["id"].as_str().expect("id").to_string();
    a(&["nwc", "revoke", &id]).succeeded();
    let list = json_of(&a(&["--json", "nwc", "list"]).succeeded().stdout);
    assert!(list[0]["revokedAt"].is_number(), "{list}");
    assert!(a(&["nwc", "list"]).succeeded().stdout.contains("zapper"));

    // LNURL-withdraw links.
    let created = a(&["withdraw-link", "create", "2000", "--uses", "2", "--title", "voucher"]).succeeded();
    assert_eq!(created.stdout.lines().count(), 1, "{}", created.stdout);
    assert!(
        created.stdout.to_ascii_lowercase().starts_with("lnurl1"),
        "{}",
        created.stdout
    );
    let links = json_of(&a(&["--json", "withdraw-link", "list"]).succeeded().stdout);
    assert_eq!(
        (
            &links[0]["title"],
            &links[0]["maxAmount"],
            &links[0]["usesLeft"],
            &links[0]["revoked"]
        ),
        (&json!("voucher"), &json!(2000), &json!(2), &json!(false)),
        "{links}"
    );
    let link_id = links[0]["id"].as_str().expect("id").to_string();
    a(&["withdraw-link", "revoke", &link_id]).succeeded();
    let links = json_of(&a(&["--json", "withdraw-link", "list"]).succeeded().stdout);
    assert_eq!(links[0]["revoked"], json!(true), "{links}");

    // Contacts: Bob is one once Alice paid him; Alice names him.
    a(&["pay", "bob14", "100"]).succeeded();
    let contacts = json_of(&a(&["--json", "contacts", "list"]).succeeded().stdout);
    assert_eq!(contacts[0]["username"], json!("bob14"), "{contacts}");
    a(&["contacts", "alias", "bob14", "Bobby"]).succeeded();
    let listed = a(&["contacts", "list"]).succeeded().stdout;
    assert!(listed.contains("@bob14") && listed.contains("Bobby"), "{listed}");

    // QR codes: never into a pipe; on a terminal (through `script`), under the invoice.
    let invoice = a(&["invoice", "1000"]).succeeded();
    assert_eq!(invoice.stdout.lines().count(), 1, "{}", invoice.stdout);
    assert!(!invoice.stdout.contains(QR_BLOCKS), "{}", invoice.stdout);
    let address = a(&["address"]).succeeded();
    assert!(!address.stdout.contains(QR_BLOCKS), "{}", address.stdout);
    if let Some(shown) = on_a_terminal(&bin, &server.base, alice.path(), "invoice 1000") {
        assert!(shown.contains("lnbcrt") && shown.contains(QR_BLOCKS), "{shown}");
    }
}

/// Issue 16: `flash rewards …` makes a program for a store (its budget set aside), shows it as
/// a table, a card and JSON, refuses what the server refuses with its message, and ends it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rewards_commands_walk_through() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("cli-rewards");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let admin_key = server.admin_key.clone().expect("admin key on first start");
    let profile = TempDir::new("flash-rewards");
    let run = |args: &[&str]| run_on(&bin, profile.path(), &server.base, args);
    run(&["login", "--device"]).succeeded();
    let wallet = btc_wallet(&bin, profile.path(), &server.base);
    run(&["--admin-key", &admin_key, "admin", "wallet", "fund", &wallet, "20000"]).succeeded();
    let store = json_of(
        &run(&["--json", "merchant", "store", "create", "Corner shop"])
            .succeeded()
            .stdout,
    )["id"]
        .as_str()
        .expect("store id")
        .to_string();

    let made = json_of(
        &run(&[
            "--json",
            "rewards",
            "create",
            "Spring",
            "--store",
            &store,
            "--budget",
            "5000",
            "--rate",
            "2.5%",
            "--max-reward",
            "200",
            "--cooldown",
            "1h",
            "--duration",
            "7d",
        ])
        .succeeded()
        .stdout,
    );
    assert_eq!(
        (
            &made["status"],
            &made["budget"],
            &made["left"],
            &made["rateBasisPoints"],
            &made["cooldownSeconds"]
        ),
        (&json!("ACTIVE"), &json!(5000), &json!(5000), &json!(250), &json!(3600)),
        "{made}"
    );
    let id = made["id"].as_str().expect("program id").to_string();
    let shown = run(&["rewards", "status", &id]).succeeded().stdout;
    assert!(
        shown.contains("2.50% of the purchase") && shown.contains("left:          5000 sats"),
        "{shown}"
    );
    let table = run(&["rewards", "status", "--store", &store]).succeeded().stdout;
    assert!(
        table
            .lines()
            .next()
            .is_some_and(|h| h.contains("BUDGET") && h.contains("LEFT")),
        "{table}"
    );
    assert!(table.contains(&id) && table.contains("Spring"), "{table}");

    // The server's refusal, with its message; the CLI's own before any request.
    let e = run(&[
        "rewards", "create", "Big", "--store", &store, "--budget", "1000000", "--fixed", "5",
    ])
    .failed();
    assert!(e.contains("insufficient balance"), "{e}");
    let e = run(&[
        "rewards", "create", "Odd", "--store", &store, "--budget", "100", "--rate", "2.555",
    ])
    .failed();
    assert!(e.contains("at most two decimals"), "{e}");
    let e = run(&["rewards", "create", "None", "--store", &store, "--budget", "100"]).failed();
    assert!(e.contains("--rate") && e.contains("--fixed"), "{e}");

    let ended = json_of(&run(&["--json", "rewards", "end", &id]).succeeded().stdout);
    assert_eq!(
        (&ended["status"], &ended["left"]),
        (&json!("ENDED"), &json!(0)),
        "{ended}"
    );
    let e = run(&["rewards", "end", &id]).failed();
    assert!(e.contains("ended already"), "{e}");
}

/// Issue 16: `flash card …` manages Flash Cards (Bolt Cards) as the GraphQL does: the
/// programming link alone on stdout, limits checked by the server with its message, a card not
/// yet tapped cannot be enabled, a wipe asks first (and refuses without a terminal), the reset
/// link for the app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn card_commands_walk_through() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("cli-cards");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let profile = TempDir::new("flash-cards");
    let run = |args: &[&str]| run_on(&bin, profile.path(), &server.base, args);
    run(&["login", "--device"]).succeeded();
    let wallet = btc_wallet(&bin, profile.path(), &server.base);

    // Create: the deep link alone on stdout (no QR code into a pipe), what to do on stderr.
    let created = run(&["card", "create", "coffee", "--tap-limit", "1000", "--day-limit", "5000"]).succeeded();
    assert_eq!(created.stdout.lines().count(), 1, "{}", created.stdout);
    assert!(
        created.stdout.starts_with("boltcard://program?url="),
        "{}",
        created.stdout
    );
    assert!(!created.stdout.contains(QR_BLOCKS), "{}", created.stdout);
    assert!(
        created.stderr.contains("Bolt Card NFC Programmer") && created.stderr.contains("within an hour"),
        "{}",
        created.stderr
    );
    // `program` is the same command; --json prints the payload.
    let created = json_of(
        &run(&[
            "--json",
            "card",
            "program",
            "groceries",
            "--tap-limit",
            "2000",
            "--day-limit",
            "20000",
            "--wallet",
            &wallet,
        ])
        .succeeded()
        .stdout,
    );
    assert!(
        created["programDeeplink"]
            .as_str()
            .is_some_and(|l| l.starts_with("boltcard://program?url=")),
        "{created}"
    );
    assert!(
        created["programUrl"].as_str().is_some_and(|u| u.starts_with("http")),
        "{created}"
    );
    assert_eq!(
        (
            &created["card"]["name"],
            &created["card"]["state"],
            &created["card"]["walletId"],
            &created["card"]["tapLimit"]
        ),
        (&json!("groceries"), &json!("programming"), &json!(wallet), &json!(2000)),
        "{created}"
    );

    // List: newest first, as JSON and as a table.
    let cards = json_of(&run(&["--json", "card", "list"]).succeeded().stdout);
    let names: Vec<&Value> = cards.as_array().expect("a list").iter().map(|c| &c["name"]).collect();
    assert_eq!(names, [&json!("groceries"), &json!("coffee")], "{cards}");
    let id = cards[1]["id"].as_str().expect("id").to_string();
    let table = run(&["card", "list"]).succeeded().stdout;
    let header = table.lines().next().unwrap_or_default();
    for column in ["ID", "NAME", "STATE", "TAP LIMIT", "DAY LIMIT", "KEY VER", "COUNTER"] {
        assert!(header.contains(column), "{table}");
    }
    let coffee = table.lines().find(|l| l.starts_with(&id)).unwrap_or_default();
    assert!(
        coffee.contains("coffee") && coffee.contains("programming") && coffee.contains("5000"),
        "{table}"
    );

    // Limits: set, and refused with the server's reason and a failing exit.
    let changed = json_of(
        &run(&[
            "--json",
            "card",
            "limits",
            &id,
            "--tap-limit",
            "1500",
            "--day-limit",
            "3000",
        ])
        .succeeded()
        .stdout,
    );
    assert_eq!(
        (&changed["tapLimit"], &changed["dayLimit"]),
        (&json!(1500), &json!(3000)),
        "{changed}"
    );
    let e = run(&["card", "limits", &id, "--tap-limit", "4000", "--day-limit", "3000"]).failed();
    assert!(
        e.contains("the per-tap limit is above the 24-hour limit") && e.contains("INVALID_INPUT"),
        "{e}"
    );
    let e = run(&["card", "limits", &id, "--tap-limit", "1", "--day-limit", "200000000"]).failed();
    assert!(e.contains("limits are 1 to 100000000 sats"), "{e}");
    let e = run(&["card", "disable", "no-such-card"]).failed();
    assert!(e.contains("card not found (NOT_FOUND)"), "{e}");

    // PIN: read from stdin (never an argument), shown in the list, refused with the server's
    // reason when it is not 4 to 8 digits, and removed.
    let groceries = cards[0]["id"].as_str().expect("id").to_string();
    let pin = |args: &[&str], input: &str| {
        let all = on(&server.base, args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_flash_with_stdin(&bin, profile.path(), &all, input)
    };
    let set = pin(&["card", "pin", &groceries, "--pin-limit", "10000"], "1234\n").succeeded();
    assert!(
        set.stdout
            .contains("asks for its PIN for withdrawals of 10000 sats or more"),
        "{}",
        set.stdout
    );
    assert!(
        !set.stdout.contains("1234") && !set.stderr.contains("1234"),
        "{}\n{}",
        set.stdout,
        set.stderr
    );
    let cards = json_of(&run(&["--json", "card", "list"]).succeeded().stdout);
    assert_eq!(
        (&cards[0]["pinLimit"], &cards[0]["pinFailures"], &cards[1]["pinLimit"]),
        (&json!(10000), &json!(0), &Value::Null),
        "{cards}"
    );
    let table = run(&["card", "list"]).succeeded().stdout;
    assert!(table.lines().next().unwrap_or_default().contains("PIN"), "{table}");
    let row = |table: &str, id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    // ID NAME STATE TAP DAY PIN KEY-VER COUNTER
    assert_eq!(row(&table, &groceries)[5], "10000", "{table}");
    assert_eq!(row(&table, &id)[5], "-", "{table}");
    let bad = pin(&["card", "pin", &groceries, "--pin-limit", "10000"], "12\n");
    assert_eq!(bad.status, "exit status: 1", "{}", bad.stderr);
    let e = bad.failed();
    assert!(
        e.contains("a PIN is 4 to 8 digits") && e.contains("INVALID_INPUT"),
        "{e}"
    );
    let e = pin(&["card", "pin", &groceries, "--pin-limit", "10000"], "").failed();
    assert!(e.contains("no PIN on stdin"), "{e}");
    let e = run(&["card", "pin", &groceries, "1234", "--pin-limit", "10000"]).failed();
    assert!(e.contains("unexpected argument"), "{e}");
    let kept = json_of(&run(&["--json", "card", "list"]).succeeded().stdout);
    assert_eq!(kept[0]["pinLimit"], json!(10000), "{kept}");
    let removed = run(&["card", "pin", &groceries, "--remove"]).succeeded().stdout;
    assert!(removed.contains("has no PIN"), "{removed}");
    let removed = json_of(
        &run(&["--json", "card", "pin", &groceries, "--remove"])
            .succeeded()
            .stdout,
    );
    assert_eq!(removed["pinLimit"], Value::Null, "{removed}");
    let table = run(&["card", "list"]).succeeded().stdout;
    assert_eq!(row(&table, &groceries)[5], "-", "{table}");

    // Disable; enable is refused until the card was programmed and tapped.
    let disabled = run(&["card", "disable", &id]).succeeded().stdout;
    assert!(disabled.contains("is disabled"), "{disabled}");
    let e = run(&["card", "enable", &id]).failed();
    assert!(e.contains("the card is not programmed yet (INVALID_INPUT)"), "{e}");

    // Wipe asks first: without a terminal nothing is wiped, unless --yes.
    let e = run(&["card", "wipe", &id]).failed();
    assert!(
        e.contains("not wiped: stdin is not a terminal") && e.contains("--yes"),
        "{e}"
    );
    let cards = json_of(&run(&["--json", "card", "list"]).succeeded().stdout);
    assert_eq!(cards[1]["state"], json!("disabled"), "{cards}");
    let wiped = json_of(&run(&["--json", "card", "wipe", &id, "--yes"]).succeeded().stdout);
    assert_eq!(wiped["state"], json!("wiped"), "{wiped}");
    let table = run(&["card", "list"]).succeeded().stdout;
    let coffee = table.lines().find(|l| l.starts_with(&id)).unwrap_or_default();
    assert!(coffee.contains("wiped"), "{table}");
    let e = run(&["card", "disable", &id]).failed();
    assert!(e.contains("the card is wiped (REFUSED)"), "{e}");

    // The reset link for the app, alone on stdout.
    let reset = run(&["card", "reset-link"]).succeeded();
    assert_eq!(reset.stdout.lines().count(), 1, "{}", reset.stdout);
    assert!(reset.stdout.starts_with("boltcard://reset?url="), "{}", reset.stdout);
    let reset = json_of(&run(&["--json", "card", "reset-link"]).succeeded().stdout);
    assert!(
        reset["resetDeeplink"]
            .as_str()
            .is_some_and(|l| l.starts_with("boltcard://reset?url=")),
        "{reset}"
    );

    // On a terminal (through `script`), the links come with their QR codes.
    for args in ["card create tea --tap-limit 100 --day-limit 100", "card reset-link"] {
        if let Some(shown) = on_a_terminal(&bin, &server.base, profile.path(), args) {
            assert!(shown.contains("boltcard://") && shown.contains(QR_BLOCKS), "{shown}");
        }
    }
}

/// What `flash ARGS` prints on a terminal (made by `script`, util-linux) for the profile in
/// `config_dir`, asserting it succeeded; `None`, with a printed reason, without `script`.
fn on_a_terminal(bin: &Path, server: &str, config_dir: &Path, args: &str) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        println!("skipping the terminal QR check: no `script` (util-linux) to make a terminal");
        return None;
    }
    let tty = Command::new("script")
        .args([
            "-qec",
            &format!("'{}' --server '{server}' {args}", bin.display()),
            "/dev/null",
        ])
        .env("FLASH_CONFIG_DIR", config_dir)
        .env_remove("FLASH_SERVER")
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    let shown = String::from_utf8_lossy(&tty.stdout).into_owned();
    assert!(tty.status.success(), "{shown}");
    Some(shown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onchain_history_shows_address_and_txid() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    let dir = TempDir::new("cli-onchain-history");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let admin_key = server.admin_key.clone().expect("admin key on first start");
    let profile = TempDir::new("flash-onchain-history");
    let run = |args: &[&str]| run_on(&bin, profile.path(), &server.base, args);
    let admin = |args: &[&str]| {
        let mut all = vec!["--admin-key", admin_key.as_str(), "admin"];
        all.extend_from_slice(args);
        run(&all)
    };
    run(&["login", "--device"]).succeeded();
    let address = run(&["address"]).succeeded().stdout.trim().to_string();
    let txid = admin(&["chain", "deposit", &address, "250000"])
        .succeeded()
        .stdout
        .trim()
        .to_string();
    admin(&["chain", "mine", "3"]).succeeded();
    let history = run(&["history"]).succeeded().stdout;
    assert!(history.contains(&address), "{history}");
    assert!(history.contains(&format!("txid {txid}")), "{history}");
}
