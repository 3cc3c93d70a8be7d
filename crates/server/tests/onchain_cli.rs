//! The on-chain and cold-storage commands of the `flash` binary against the real flashd on the
//! embedded default (dev chain): three cosigners generate their keys offline, the operator
//! configures a 2-of-3 cold wallet with them, a user's deposit pushes the hot wallet over its
//! ceiling, the excess is swept to cold storage, and a cold → hot PSBT signed offline by two
//! cosigners (who confirm what it pays; nothing is signed without confirmation) is finalised
//! and broadcast. One signature is not enough and a malformed PSBT is refused, both without
//! changing anything; a PSBT the operator cancels can no longer be finalised.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{json, Value};

/// An address of the regtest network outside this bank (BIP173's example program).
const EXTERNAL: &str = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080";

/// The sweep id `flash admin cold psbt create` printed on stderr (`Sweep ID: …`).
fn created_sweep(stderr: &str) -> String {
    stderr
        .lines()
        .find_map(|l| l.strip_prefix("Sweep "))
        .and_then(|l| l.split_whitespace().next())
        .map(|id| id.trim_end_matches(':').to_string())
        .unwrap_or_else(|| panic!("no sweep id in:\n{stderr}"))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_storage_walkthrough() {
    let Some(bin) = flash_binary_or_skip() else {
        return;
    };
    // Offline: three cosigners make their keys (no server involved).
    let keys = TempDir::new("cosigners");
    let offline = TempDir::new("flash-offline");
    let key_file = |n: usize| keys.path().join(format!("cosigner-{n}.json"));
    let key_arg = |n: usize| key_file(n).display().to_string();
    let keygen = |n: usize| {
        run_flash(
            &bin,
            offline.path(),
            &["cold", "keygen", "--network", "regtest", "--out", &key_arg(n)],
        )
    };
    let show_key = |n: usize| flash_ok(&bin, offline.path(), &["cold", "show-key", "--key", &key_arg(n)]);
    let mut account_keys = Vec::new();
    for n in 1..=3 {
        let r = keygen(n).succeeded();
        let account = r.stdout.trim().to_string();
        assert!(
            account.starts_with('[') && account.contains("/48'/1'/0'/2']tpub"),
            "{account}"
        );
        assert!(r.stderr.contains("SECRET"), "{}", r.stderr);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(key_file(n)).expect("key file").permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "key file mode");
        }
        assert_eq!(show_key(n).stdout.trim(), account);
        account_keys.push(account);
    }
    let again = keygen(1).failed();
    assert!(again.contains("refusing to overwrite"), "{again}");
    assert_eq!(show_key(1).stdout.trim(), account_keys[0], "the first key is untouched");

    // The operator configures a 2-of-3 cold wallet with a low ceiling, and batches (with their
    // sweep checks) only when asked.
    let dir = TempDir::new("onchain-cli");
    let cosigners = account_keys
        .iter()
        .map(|k| format!("{k:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    let config = format!(
        "[onchain.policy]\nbatch_interval_secs = 86400\n\
         [onchain.cold]\nthreshold = 2\n\
         cosigners = [{cosigners}]\nmax_hot_sats = 300000\nmin_hot_sats = 100000\n\
         min_rebalance_sats = 50000\n"
    );
    let server = Flashd::start(&with_config(&dir, &config)).await;
    let admin_key = server.admin_key.clone().expect("admin key on first start");
    let (alice_dir, operator_dir) = (TempDir::new("flash-alice"), TempDir::new("flash-operator"));
    let with_server = |args: &[&str]| -> Vec<String> {
        let mut all = vec!["--server".to_string(), server.base.clone()];
        all.extend(args.iter().map(|a| a.to_string()));
        all
    };
    let alice = |args: &[&str]| {
        let all = with_server(args);
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        flash_ok(&bin, alice_dir.path(), &all).stdout
    };
    let operator_run = |args: &[&str]| {
        let mut all = with_server(&["--admin-key", &admin_key]);
        all.extend(args.iter().map(|a| a.to_string()));
        let all: Vec<&str> = all.iter().map(String::as_str).collect();
        run_flash(&bin, operator_dir.path(), &all)
    };
    let operator = |args: &[&str]| operator_run(args).succeeded();
    let operator_json = |args: &[&str]| {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        json_of(&operator(&all).stdout)
    };
    let balance = || int(&json_of(&alice(&["--json", "balance"]))[0]["balance"]);
    let cold_status = || operator_json(&["admin", "cold", "status"]);

    let status = cold_status();
    assert_eq!(status["configured"], json!(true), "{status}");
    assert_eq!(
        (&status["confirmedBalance"], &status["maxHotBalance"], &status["sweeps"]),
        (&json!(0), &json!(300_000), &json!([])),
        "{status}"
    );

    // Alice's deposit address: the same until she asks for a fresh one.
    alice(&["login", "--device"]);
    let address = alice(&["address"]).trim().to_string();
    assert!(address.starts_with("bcrt1"), "{address}");
    assert_eq!(alice(&["address"]).trim(), address, "the current address stays");
    let fresh = json_of(&alice(&["--json", "address", "--new"]));
    assert_ne!(fresh["address"], json!(address), "{fresh}");

    // A deposit from outside pushes the hot wallet over its ceiling once confirmed.
    let txid = operator(&["admin", "chain", "deposit", &address, "1000000"]).stdout;
    assert_eq!(txid.trim().len(), 64, "{txid}");
    let mined = operator(&["admin", "chain", "mine", "3"]).stdout;
    assert!(mined.contains("Mined 3 block(s)"), "{mined}");
    let mut credited = balance();
    for _ in 0..100 {
        if credited == 1_000_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        credited = balance();
    }
    assert_eq!(credited, 1_000_000, "the deposit is credited once mined");
    let onchain = operator_json(&["admin", "onchain", "status"]);
    assert_eq!(
        (&onchain["source"], &onchain["hotBalance"]),
        (&json!("dev"), &json!(1_000_000)),
        "{onchain}"
    );

    // Alice pays an outside address; the operator sends the batch.
    let fee_line = alice(&["fee", EXTERNAL, "20000"]);
    let quoted: i64 = fee_line
        .trim()
        .strip_prefix("Fee: ")
        .and_then(|f| f.strip_suffix(" sats"))
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("{fee_line}"));
    assert!(quoted > 0, "{fee_line}");
    let paid = json_of(&alice(&["--json", "pay", EXTERNAL, "20000", "--memo", "rent"]));
    assert_eq!(paid["status"], json!("PENDING"), "{paid}");
    assert_eq!(
        paid["destination"],
        json!({ "kind": "ONCHAIN_ADDRESS", "value": EXTERNAL })
    );
    assert_eq!(
        (&paid["amount"], &paid["speed"]),
        (&json!(20_000), &json!("MEDIUM")),
        "{paid}"
    );
    let queue = operator_json(&["admin", "onchain", "queue"]);
    let queued = queue.as_array().and_then(|q| q.first()).cloned().unwrap_or_default();
    assert_eq!(
        (&queued["amount"], &queued["address"]),
        (&json!(20_000), &json!(EXTERNAL)),
        "{queue}"
    );
    let sent = operator_json(&["admin", "onchain", "batch-now"]);
    assert_eq!(int(&sent["broadcast"]), 1, "{sent}");
    assert_eq!(operator_json(&["admin", "onchain", "queue"]), json!([]));
    operator(&["admin", "chain", "mine", "1"]);
    let batches = operator_json(&["admin", "onchain", "batches"]);
    assert_eq!(batches.as_array().map(Vec::len), Some(1), "{batches}");
    let spent = 1_000_000 - balance();
    assert!(
        (20_000..=20_000 + quoted).contains(&spent),
        "paid {spent} for 20,000 sats with a fee of at most {quoted}"
    );

    // The operator sweeps the excess to cold storage.
    let swept = operator_json(&["admin", "cold", "sweep"]);
    let sweep = swept["sweep"].clone();
    assert_eq!(sweep["direction"], json!("to_cold"), "{swept}");
    let to_cold = int(&sweep["amount"]);
    assert!(to_cold >= 50_000, "{swept}");
    let nothing = operator(&["admin", "cold", "sweep"]).stdout;
    assert!(nothing.contains("within policy"), "{nothing}");
    operator(&["admin", "chain", "mine", "1"]);
    let status = cold_status();
    assert_eq!(status["confirmedBalance"], json!(to_cold), "{status}");
    let text = operator(&["admin", "cold", "status"]).stdout;
    assert!(text.contains(&format!("{to_cold} sats confirmed")), "{text}");

    // Cold → hot: a PSBT for the cosigners.
    let work = TempDir::new("psbts");
    let file = |name: &str| work.path().join(name).display().to_string();
    let created = operator(&[
        "admin",
        "cold",
        "psbt",
        "create",
        "200000",
        "--out",
        &file("unsigned.b64"),
    ]);
    let sweep_id = created_sweep(&created.stderr);
    let status = cold_status();
    let pending = &status["sweeps"][0];
    assert_eq!(
        (&pending["id"], &pending["status"], &pending["direction"]),
        (&json!(sweep_id), &json!("awaiting_signatures"), &json!("to_hot")),
        "{status}"
    );
    let hot_address = pending["address"].as_str().expect("address").to_string();
    let psbt_fee = int(&pending["fee"]);
    // `flash cold sign` of the file `psbt` with cosigner `n`'s key, then `more` arguments.
    let sign = |psbt: &str, n: usize, more: &[&str]| {
        let (psbt, key) = (file(psbt), key_arg(n));
        let mut args = vec!["cold", "sign", "--psbt", &psbt, "--key", &key];
        args.extend_from_slice(more);
        run_flash(&bin, offline.path(), &args)
    };
    // The operator finalises and broadcasts the sweep with the signed PSBT files `signed`.
    let finalize = |signed: &[&str]| {
        let signed: Vec<String> = signed.iter().map(|name| file(name)).collect();
        let mut args = vec!["admin", "cold", "psbt", "finalize-broadcast", "--sweep", &sweep_id];
        args.extend(signed.iter().map(String::as_str));
        operator_run(&args)
    };

    // Nobody at a terminal to confirm, no --yes: the summary is shown, nothing is signed.
    let signed_1 = file("signed-1.b64");
    let unconfirmed = sign("unsigned.b64", 1, &["--out", &signed_1]).failed();
    assert!(
        unconfirmed.contains(&hot_address) && unconfirmed.contains("not a terminal") && unconfirmed.contains("--yes"),
        "{unconfirmed}"
    );
    assert!(
        !work.path().join("signed-1.b64").exists(),
        "nothing is written without confirmation"
    );

    // Cosigner 1 signs, after seeing what the PSBT pays (--yes: no terminal here).
    let by_one = sign("unsigned.b64", 1, &["--out", &signed_1, "--yes"]).succeeded();
    assert!(
        by_one.stderr.contains(&hot_address) && by_one.stderr.contains("200000 sats"),
        "{}",
        by_one.stderr
    );
    // The payment to the hot wallet is not change; the rest goes back to cold storage, as
    // the key checks it (the multisig of the same cosigners, with its own child).
    let hot_line = by_one
        .stderr
        .lines()
        .find(|l| l.contains(&hot_address))
        .unwrap_or_default();
    assert!(!hot_line.contains("change"), "{}", by_one.stderr);
    assert_eq!(
        by_one.stderr.matches("(change back to cold storage)").count(),
        1,
        "{}",
        by_one.stderr
    );
    assert!(
        by_one.stderr.contains(&format!("Fee: {psbt_fee} sats")),
        "{}",
        by_one.stderr
    );
    assert!(by_one.stderr.contains("Signed 1 input(s)"), "{}", by_one.stderr);

    // A stranger's key signs nothing; a malformed PSBT is refused by both sides.
    keygen(9).succeeded();
    let stranger = sign("unsigned.b64", 9, &[]).failed();
    assert!(stranger.contains("signs nothing"), "{stranger}");
    std::fs::write(work.path().join("garbage.b64"), "this is not a PSBT\n").expect("write");
    let garbage = sign("garbage.b64", 1, &[]).failed();
    assert!(
        garbage.contains("garbage.b64") && garbage.contains("not base64"),
        "{garbage}"
    );
    let r = finalize(&["garbage.b64"]);
    assert!(!r.ok && r.stderr.contains("garbage.b64"), "{}\n{}", r.stdout, r.stderr);

    // One signature is not enough: refused, nothing changes.
    let r = finalize(&["signed-1.b64"]);
    assert!(!r.ok, "one of two signatures must not do:\n{}", r.stdout);
    assert!(r.stderr.contains("not every input is signed"), "{}", r.stderr);
    let status = cold_status();
    assert_eq!(status["sweeps"][0]["status"], json!("awaiting_signatures"), "{status}");
    assert_eq!(status["confirmedBalance"], json!(to_cold), "{status}");

    // Cosigner 3 signs too; the two signed files are finalised and broadcast.
    sign("unsigned.b64", 3, &["--out", &file("signed-3.b64"), "--yes"]).succeeded();
    let done = finalize(&["signed-1.b64", "signed-3.b64"]).succeeded();
    assert_eq!(done.stdout.trim().len(), 64, "a txid: {}", done.stdout);
    operator(&["admin", "chain", "mine", "1"]);
    let status = cold_status();
    assert_eq!(
        status["confirmedBalance"],
        json!(to_cold - 200_000 - psbt_fee),
        "{status}"
    );
    let back = status["sweeps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == json!(sweep_id)))
        .cloned()
        .unwrap_or_else(|| panic!("no sweep {sweep_id} in {status}"));
    assert_eq!(back["status"], json!("confirmed"), "mined: {back}");
    assert_eq!(back["txHash"], json!(done.stdout.trim()), "{back}");
    assert_eq!(back["psbt"], json!(null), "{back}");

    // A PSBT the operator abandons: once cancelled, even with the threshold's signatures it
    // is no longer finalised, and cold storage keeps its coins.
    let cold_before = cold_status()["confirmedBalance"].clone();
    let created = operator(&[
        "admin",
        "cold",
        "psbt",
        "create",
        "50000",
        "--out",
        &file("abandoned.b64"),
    ]);
    let abandoned = created_sweep(&created.stderr);
    assert_ne!(abandoned, sweep_id);
    sign("abandoned.b64", 1, &["--out", &file("abandoned-1.b64"), "--yes"]).succeeded();
    sign("abandoned.b64", 2, &["--out", &file("abandoned-2.b64"), "--yes"]).succeeded();
    let cancelled = operator(&["admin", "cold", "psbt", "cancel", "--sweep", &abandoned]);
    assert_eq!(
        cancelled.stdout.trim(),
        format!("Cancelled sweep {abandoned}."),
        "{}",
        cancelled.stderr
    );
    let status = cold_status();
    let gone = status["sweeps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["id"] == json!(abandoned)))
        .cloned()
        .unwrap_or_else(|| panic!("no sweep {abandoned} in {status}"));
    assert_eq!(
        (&gone["status"], &gone["psbt"]),
        (&json!("failed"), &json!(null)),
        "{gone}"
    );
    let r = operator_run(&[
        "admin",
        "cold",
        "psbt",
        "finalize-broadcast",
        "--sweep",
        &abandoned,
        &file("abandoned-1.b64"),
        &file("abandoned-2.b64"),
    ]);
    assert!(!r.ok, "a cancelled PSBT must not be finalised:\n{}", r.stdout);
    let again = operator_run(&["admin", "cold", "psbt", "cancel", "--sweep", &abandoned]);
    assert!(!again.ok, "cancelled twice:\n{}", again.stdout);
    operator(&["admin", "chain", "mine", "1"]);
    assert_eq!(cold_status()["confirmedBalance"], cold_before);

    // The books still balance.
    let verify = operator(&["admin", "ledger", "verify"]).stdout;
    assert!(verify.starts_with("Ledger OK"), "{verify}");
}
