//! Real Cashu wallets against a running `flashd` on the embedded default (SQLite, dev
//! Lightning): the Nutshell wallet (`FLASH_TEST_NUTSHELL`, the path of its `cashu` command)
//! and CDK's `cdk-cli` (`FLASH_TEST_CDK_CLI`). Each mints over Lightning (the quote's invoice
//! paid from the simulated outside), sends a token, receives it in a second wallet (a swap),
//! is refused when receiving it again, and melts both to a Flash user's invoice (inside the
//! ledger) and to an invoice of another node (over the simulated network). Afterwards the
//! mint's books balance: its notes in circulation are exactly what the wallets hold, and the
//! ledger verifies. Without a client the test prints why it skipped; under CI it fails.

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use flash_core::lightning::{InvoiceDescription, InvoiceRequest, LightningNode};
use flash_core::Network;
use flash_lightning::DevNode;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

/// How long one wallet command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(90);

const ECASH_STATUS: &str = "query { ecashStatus { outstanding ledgerOutstanding balanced pending } }";
const PAY_FROM_OUTSIDE: &str =
    "mutation($r: String!) { devLightningPayInvoice(input: {paymentRequest: $r}) { errors { code message } } }";
const INVOICE: &str = "mutation($w: WalletId!, $a: SatAmount!) { lnInvoiceCreate(input: {walletId: $w, amount: $a}) \
{ errors { message } invoice { paymentRequest } } }";

/// The client named by `var`, or `None` after saying why (a failure under CI).
fn client(var: &str, what: &str) -> Option<PathBuf> {
    match std::env::var_os(var).map(PathBuf::from) {
        Some(path) if path.exists() => Some(path),
        found => {
            let why = match found {
                Some(p) => format!("{var}={} does not exist", p.display()),
                None => format!("{var} is not set (the path of {what})"),
            };
            assert!(std::env::var_os("CI").is_none(), "{what} is needed under CI: {why}");
            println!("skipped: {why}");
            None
        }
    }
}

/// Runs a command to completion; its exit success and stdout + stderr.
async fn run(cmd: &mut tokio::process::Command) -> (bool, String) {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .expect("wallet command timed out")
        .expect("wallet command runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// The first word starting with `prefix` in `text`.
fn word(text: &str, prefix: &str) -> String {
    text.split(|c: char| c.is_whitespace() || c == '"' || c == ',')
        .find(|w| w.starts_with(prefix))
        .map(str::to_string)
        .unwrap_or_else(|| panic!("no {prefix}… in:\n{text}"))
}

/// The mint's books, checked balanced; its notes in circulation.
async fn outstanding(api: &Api, admin: &str) -> i64 {
    let status = api.admin(admin, ECASH_STATUS, json!({})).await;
    let s = &status["ecashStatus"];
    assert_eq!(s["balanced"], json!(true), "mint books: {s}");
    assert_eq!(s["pending"], json!(0), "nothing left pending: {s}");
    s["outstanding"].as_i64().expect("outstanding")
}

async fn ledger_ok(api: &Api, admin: &str) {
    let report = api.admin(admin, LEDGER_VERIFY, json!({})).await;
    assert_eq!(report["ledgerVerify"]["ok"], json!(true), "{report}");
}

async fn pay_from_outside(api: &Api, admin: &str, request: &str) {
    let paid = api.admin(admin, PAY_FROM_OUTSIDE, json!({ "r": request })).await;
    assert_eq!(paid["devLightningPayInvoice"]["errors"], json!([]), "{paid}");
}

/// A Flash user's invoice for `sats` (a melt to it stays inside the ledger), and the user.
async fn user_invoice(api: &Api, sats: i64) -> (User, String) {
    let user = api.device_user(&unique("ecash-user-device")).await;
    let created = api
        .gql(&user.token, INVOICE, json!({ "w": user.wallet_id, "a": sats }))
        .await;
    let request = created["lnInvoiceCreate"]["invoice"]["paymentRequest"]
        .as_str()
        .unwrap_or_else(|| panic!("invoice: {created}"))
        .to_string();
    (user, request)
}

/// An invoice of another node on the (simulated) network.
async fn outside_invoice(sats: u64) -> String {
    let node = DevNode::new(
        Network::Regtest,
        DevNode::generate_key(),
        flash_core::lightning::DevOutcome::Succeed {
            delay_ms: 0,
            fee_ppm: 0,
        },
    )
    .expect("another node");
    node.create_invoice(InvoiceRequest {
        amount_msat: Some(sats * 1_000),
        description: InvoiceDescription::Memo("elsewhere".into()),
        expiry_secs: 3_600,
    })
    .await
    .expect("invoice")
    .payment_request
}

struct Running {
    _dir: TempDir,
    server: Flashd,
    api: Api,
    admin: String,
}

async fn start(tag: &str) -> Running {
    let dir = TempDir::new(tag);
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let admin = server.admin_key.clone().expect("admin key");
    let api = Api::new(&server.base);
    Running {
        _dir: dir,
        server,
        api,
        admin,
    }
}

// ---------------------------------------------------------------------------------------------
// Nutshell

fn nutshell(bin: &Path, mint: &str, dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.env("MINT_URL", mint)
        .env("CASHU_DIR", dir)
        .env("TOR", "FALSE")
        .env("DEBUG", "FALSE");
    cmd
}

async fn nutshell_balance(bin: &Path, mint: &str, dir: &Path) -> i64 {
    let (ok, out) = run(nutshell(bin, mint, dir).arg("balance")).await;
    assert!(ok, "{out}");
    let line = out
        .lines()
        .rev()
        .find(|l| l.starts_with("Balance:"))
        .unwrap_or_else(|| panic!("no balance in:\n{out}"));
    line.split_whitespace()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("balance line {line:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nutshell_mints_sends_receives_and_melts() {
    let Some(bin) = client("FLASH_TEST_NUTSHELL", "Nutshell's `cashu` command (pip install cashu)") else {
        return;
    };
    let run_ = start("nutshell").await;
    let (api, admin, mint) = (&run_.api, run_.admin.as_str(), run_.server.base.as_str());
    let wallets = TempDir::new("nutshell-wallets");
    let (alice, bob) = (wallets.path().join("alice"), wallets.path().join("bob"));

    // Mint 100 sats: a quote, its invoice paid from outside, then the notes.
    let (ok, out) = run(nutshell(&bin, mint, &alice).args(["invoice", "100", "--no-check"])).await;
    assert!(ok, "{out}");
    let invoice = word(&out, "lnbcrt");
    let id = out
        .split("--id ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no quote id in:\n{out}"))
        .to_string();
    pay_from_outside(api, admin, &invoice).await;
    let (ok, out) = run(nutshell(&bin, mint, &alice).args(["invoice", "100", "--id", &id])).await;
    assert!(ok && out.contains("Invoice paid"), "{out}");
    assert_eq!(nutshell_balance(&bin, mint, &alice).await, 100);

    // Send 30 to Bob, who swaps it in; receiving it again is refused (11001).
    let (ok, out) = run(nutshell(&bin, mint, &alice).args(["send", "30"])).await;
    assert!(ok, "{out}");
    let token = word(&out, "cashu");
    let (ok, out) = run(nutshell(&bin, mint, &bob).args(["receive", &token])).await;
    assert!(ok && out.contains("Received 30 sat"), "{out}");
    let (_, out) = run(nutshell(&bin, mint, &bob).args(["receive", &token])).await;
    assert!(out.contains("11001"), "a spent token is refused with 11001:\n{out}");
    assert_eq!(nutshell_balance(&bin, mint, &bob).await, 30);

    // Melt 20 to a Flash user's invoice: inside the ledger, no fee.
    let (carol, request) = user_invoice(api, 20).await;
    let (ok, out) = run(nutshell(&bin, mint, &alice).args(["pay", &request, "-y"])).await;
    assert!(ok && out.contains("Invoice paid"), "{out}");
    assert_eq!(api.balance(&carol).await, 20);
    assert_eq!(nutshell_balance(&bin, mint, &alice).await, 50);

    // Melt 10 to another node's invoice: the unused fee reserve comes back as change.
    let request = outside_invoice(10).await;
    let (ok, out) = run(nutshell(&bin, mint, &alice).args(["pay", &request, "-y"])).await;
    assert!(ok && out.contains("Invoice paid"), "{out}");
    let alice_left = nutshell_balance(&bin, mint, &alice).await;
    assert!(
        (30..=40).contains(&alice_left),
        "50 - 10 - the fee actually paid: {alice_left}"
    );

    assert_eq!(
        outstanding(api, admin).await,
        alice_left + 30,
        "the mint's notes in circulation are the wallets' balances"
    );
    ledger_ok(api, admin).await;
}

// ---------------------------------------------------------------------------------------------
// cdk-cli

fn cdk(bin: &Path, dir: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("-w").arg(dir).arg("-n");
    cmd
}

async fn cdk_balance(bin: &Path, dir: &Path) -> i64 {
    let (ok, out) = run(cdk(bin, dir).arg("balance")).await;
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.starts_with("Total balance"))
        .unwrap_or_else(|| panic!("no balance in:\n{out}"));
    line.split_whitespace()
        .rev()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("balance line {line:?}"))
}

/// `cdk-cli mint`, paying its quote's invoice from outside as soon as it is printed.
async fn cdk_mint(bin: &Path, dir: &Path, mint: &str, sats: u64, api: &Api, admin: &str) {
    let mut child = cdk(bin, dir)
        .args(["mint", mint, &sats.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("cdk-cli mint");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = String::new();
    let invoice = tokio::time::timeout(COMMAND_TIMEOUT, async {
        while let Some(line) = lines.next_line().await.expect("read") {
            seen.push_str(&line);
            seen.push('\n');
            if let Some(rest) = line.strip_prefix("Please pay: ") {
                return rest.trim().to_string();
            }
        }
        panic!("cdk-cli printed no invoice:\n{seen}");
    })
    .await
    .expect("cdk-cli shows the invoice");
    pay_from_outside(api, admin, &invoice).await;
    let mut rest = String::new();
    while let Ok(Some(line)) = lines.next_line().await {
        rest.push_str(&line);
        rest.push('\n');
    }
    let status = tokio::time::timeout(COMMAND_TIMEOUT, child.wait())
        .await
        .expect("cdk-cli mint finishes")
        .expect("exit");
    assert!(
        status.success() && rest.contains(&format!("Minted {sats} sat")),
        "{rest}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cdk_cli_mints_sends_receives_and_melts() {
    let Some(bin) = client("FLASH_TEST_CDK_CLI", "`cdk-cli` (cargo install cdk-cli)") else {
        return;
    };
    let run_ = start("cdk-cli").await;
    let (api, admin, mint) = (&run_.api, run_.admin.as_str(), run_.server.base.as_str());
    let wallets = TempDir::new("cdk-wallets");
    let (alice, bob) = (wallets.path().join("alice"), wallets.path().join("bob"));

    cdk_mint(&bin, &alice, mint, 100, api, admin).await;
    assert_eq!(cdk_balance(&bin, &alice).await, 100);

    let (ok, out) = run(cdk(&bin, &alice).args(["send", "-a", "30", "--mint-url", mint])).await;
    assert!(ok, "{out}");
    let token = word(&out, "cashu");
    let (ok, out) = run(cdk(&bin, &bob).args(["receive", "--allow-untrusted", &token])).await;
    assert!(ok && out.contains("Received: 30"), "{out}");
    let (ok, out) = run(cdk(&bin, &bob).args(["receive", "--allow-untrusted", &token])).await;
    assert!(!ok && out.contains("Already Spent"), "a spent token is refused:\n{out}");
    assert_eq!(cdk_balance(&bin, &bob).await, 30);

    let (carol, request) = user_invoice(api, 20).await;
    let (ok, out) = run(cdk(&bin, &alice).args(["melt", "--mint-url", mint, "--invoice", &request])).await;
    assert!(ok && out.contains("state=PAID"), "{out}");
    assert_eq!(api.balance(&carol).await, 20);
    assert_eq!(cdk_balance(&bin, &alice).await, 50);

    let request = outside_invoice(10).await;
    let (ok, out) = run(cdk(&bin, &alice).args(["melt", "--mint-url", mint, "--invoice", &request])).await;
    assert!(ok && out.contains("state=PAID"), "{out}");
    let alice_left = cdk_balance(&bin, &alice).await;
    assert!(
        (30..=40).contains(&alice_left),
        "50 - 10 - the fee actually paid: {alice_left}"
    );

    assert_eq!(outstanding(api, admin).await, alice_left + 30);
    ledger_ok(api, admin).await;
}
