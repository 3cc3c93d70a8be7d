//! What an operator meets around the server itself: one flashd per data dir, private files,
//! plain logs when nobody watches a terminal, an honest banner, and recovering the operator key.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// A second flashd on a data dir that one already serves exits non-zero and names the lock;
/// the first keeps serving, and once it stops the directory is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_flashd_on_one_data_dir_is_refused() {
    let dir = TempDir::new("datadir-lock");
    let first = Flashd::start(&Launch::new(dir.path(), None)).await;
    let refused = Flashd::try_start(&Launch::new(dir.path(), None))
        .await
        .err()
        .expect("the second flashd on the same data dir must not start");
    let status = refused.status.expect("it exited");
    assert!(!status.success(), "exit status {status}");
    let text = refused.text();
    assert!(text.contains("flashd.lock"), "names the lock:\n{text}");
    assert!(
        text.contains(&first.pid().to_string()),
        "names the holder's pid:\n{text}"
    );
    let api = Api::new(&first.base);
    assert_eq!(
        api.get_json("/healthz").await["status"],
        json!("ok"),
        "the first still serves"
    );
    drop(first);
    let again = Flashd::start(&Launch::new(dir.path(), None)).await;
    assert!(
        again.admin_key.is_none(),
        "the same data, reopened: no new operator key"
    );
}

/// The data dir is 0700 (a loose one is narrowed) and the database with its WAL files,
/// the keys and the lock are 0600.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_dir_and_its_files_are_private() {
    let dir = TempDir::new("datadir-modes");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let api = Api::new(&server.base);
    // A write, so the WAL and its index exist.
    api.device_user("modes-device-secret-0001").await;
    assert_eq!(mode(dir.path()), 0o700, "data dir");
    for name in [
        "flash.db",
        "flash.db-wal",
        "flash.db-shm",
        "master.key",
        "auth.key",
        "node.id",
        "flashd.lock",
    ] {
        assert_eq!(mode(&dir.path().join(name)), 0o600, "{name}");
    }
}

/// With stderr a pipe, log lines carry no ANSI escape codes, even when NO_COLOR is not set.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_to_a_pipe_are_plain_text() {
    let dir = TempDir::new("plain-logs");
    // An empty NO_COLOR does not ask for plain text (no-color.org): the pipe alone must.
    let mut server = Flashd::start(&Launch::new(dir.path(), None).env("NO_COLOR", "")).await;
    server.sigterm();
    server.wait_exit(Duration::from_secs(30)).expect("exits after SIGTERM");
    let logs = server.stderr.lines();
    assert!(logs.iter().any(|l| l.contains("storage ready")), "{logs:?}");
    let coloured: Vec<_> = logs.iter().filter(|l| l.contains('\u{1b}')).collect();
    assert!(coloured.is_empty(), "escape codes in piped logs: {coloured:?}");
}

/// On mainnet with Lightning and the chain off, the banner advertises neither Lightning
/// addresses nor a mint that could mint, and says what is off.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_banner_shows_only_what_runs() {
    let dir = TempDir::new("banner");
    let launch = Launch::new(dir.path(), None).arg("--network").arg("mainnet").config(
        dir.path(),
        "[lightning]\nbackend = \"none\"\n[onchain]\nbackend = \"none\"\n",
    );
    let server = Flashd::start(&launch).await;
    // The banner follows the "listening" line that `start` waits for: wait for its last line.
    let banner = banner_through(&server, "On-chain:").await;
    assert!(!banner.contains("Lightning addresses"), "{banner}");
    assert!(banner.contains("Lightning: off"), "{banner}");
    assert!(banner.contains("On-chain:  off"), "{banner}");
    let mint = banner
        .lines()
        .find(|l| l.starts_with("  Mint:"))
        .expect("the mint still swaps");
    assert!(mint.contains("swaps only"), "{mint}");

    let dev = TempDir::new("banner-dev");
    let server = Flashd::start(&Launch::new(dev.path(), None)).await;
    let banner = banner_through(&server, "Lightning addresses").await;
    assert!(banner.contains("Lightning addresses: username@"), "{banner}");
    assert!(!banner.contains(" off "), "{banner}");
}

/// What `server` printed on stdout, once a line containing `last` is among it.
async fn banner_through(server: &Flashd, last: &str) -> String {
    wait_for(
        &format!("a banner line with {last:?}"),
        Duration::from_secs(10),
        || async { server.stdout.lines().join("\n") },
        |printed| printed.contains(last),
    )
    .await
}

/// `flashd admin-key rotate` revokes the lost or leaked key and prints a working one, while
/// flashd keeps running on the same data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_key_rotates_offline_and_online() {
    let dir = TempDir::new("admin-rotate");
    let server = Flashd::start(&Launch::new(dir.path(), None)).await;
    let old = server.admin_key.clone().expect("first start prints a key");
    let api = Api::new(&server.base);
    assert_eq!(api.assert_ledger_ok(&old).await, 0);

    let out = Command::new(env!("CARGO_BIN_EXE_flashd"))
        .args([
            "--data-dir",
            &dir.path().display().to_string(),
            "admin-key",
            "rotate",
            "--label",
            "recovered",
        ])
        .env("NO_COLOR", "1")
        .output()
        .expect("run flashd admin-key rotate");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let new = stdout
        .lines()
        .find_map(|l| l.strip_prefix(ADMIN_KEY_PREFIX))
        .map(|k| k.trim().to_string())
        .unwrap_or_else(|| panic!("no key printed:\n{stdout}"));
    assert!(stdout.contains("1 earlier operator key(s) revoked"), "{stdout}");
    assert_ne!(new, old);

    let body = json!({ "query": "{ ledgerVerify { ok } }" });
    let (_, refused) = api.post("/admin/graphql", Some(&old), &body).await.expect("admin call");
    assert_eq!(
        refused["errors"][0]["extensions"]["code"],
        json!("UNAUTHENTICATED"),
        "{refused}"
    );
    assert_eq!(
        api.assert_ledger_ok(&new).await,
        0,
        "the new key works on the running server"
    );
}
