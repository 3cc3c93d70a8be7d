//! The `flash` binary itself, offline: its version and a cosigner key made and shown again.
//! (Being an integration test of this package, it also makes `cargo nextest run --workspace`
//! build the binary that flashd's walkthrough tests drive.)

use std::path::PathBuf;
use std::process::Command;

fn flash(config_dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_flash"))
        .args(args)
        .env("FLASH_CONFIG_DIR", config_dir)
        .env_remove("FLASH_SERVER")
        .env_remove("FLASH_TOKEN")
        .env_remove("FLASH_ADMIN_KEY")
        .output()
        .expect("run flash")
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("flash-cli-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn prints_its_version() {
    let dir = temp_dir("version");
    let out = flash(&dir, &["--version"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("flash "));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_cosigner_key_is_made_offline_and_shown_again() {
    let dir = temp_dir("keygen");
    let key = dir.join("cosigner.json");
    let key_arg = key.display().to_string();
    let made = flash(&dir, &["cold", "keygen", "--network", "regtest", "--out", &key_arg]);
    assert!(made.status.success(), "{}", String::from_utf8_lossy(&made.stderr));
    let account = String::from_utf8_lossy(&made.stdout).trim().to_string();
    assert!(account.contains("/48'/1'/0'/2']tpub"), "{account}");
    let shown = flash(&dir, &["cold", "show-key", "--key", &key_arg]);
    assert_eq!(String::from_utf8_lossy(&shown.stdout).trim(), account);
    let again = flash(&dir, &["cold", "keygen", "--network", "regtest", "--out", &key_arg]);
    assert!(!again.status.success(), "an existing key file is never overwritten");
    let _ = std::fs::remove_dir_all(dir);
}
