//! The direction of dependencies (docs/architecture.md, "Crates and the direction of
//! dependencies"), checked against every crate's manifest: a crate's `[dependencies]` name only
//! the workspace crates its row allows. Test-only dependencies are free.

use std::collections::BTreeMap;
use std::path::Path;

/// What each workspace crate may depend on, of ours.
const ALLOWED: &[(&str, &[&str])] = &[
    ("core", &[]),
    ("store", &["flash-core"]),
    ("lightning", &["flash-core"]),
    ("onchain", &["flash-core"]),
    ("rates", &["flash-core"]),
    ("bank", &["flash-core", "flash-store"]),
    ("auth", &["flash-core", "flash-store"]),
    ("mint", &["flash-core", "flash-store", "flash-bank"]),
    ("nostr", &["flash-core", "flash-store", "flash-bank"]),
    ("merchant", &["flash-core", "flash-store", "flash-bank"]),
    (
        "api",
        &[
            "flash-core",
            "flash-bank",
            "flash-auth",
            "flash-mint",
            "flash-nostr",
            "flash-merchant",
        ],
    ),
    // The client: the SDK uses `core`'s types (such as the payment-destination parser), never
    // the server's crates; the CLI is a layer over the SDK.
    ("sdk", &["flash-core"]),
    ("cli", &["flash-sdk"]),
];

/// The workspace crates (`flash-…`) a manifest's `[dependencies]` table names.
fn ours(manifest: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(manifest).expect("manifest");
    let doc: toml::Table = text.parse().expect("manifest is TOML");
    doc.get("dependencies")
        .and_then(|d| d.as_table())
        .map(|d| d.keys().filter(|k| k.starts_with("flash-")).cloned().collect())
        .unwrap_or_default()
}

#[test]
fn every_crate_depends_only_on_what_its_layer_allows() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut broken = Vec::new();
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("crates dir") {
        let dir = entry.expect("entry").path();
        let manifest = dir.join("Cargo.toml");
        let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string();
        if !manifest.is_file() || name == "server" {
            continue;
        }
        let Some(rule) = allowed.get(name.as_str()) else {
            broken.push(format!("crates/{name} has no row here: add its layer"));
            continue;
        };
        seen.push(name.clone());
        for dep in ours(&manifest) {
            if !rule.contains(&dep.as_str()) {
                broken.push(format!(
                    "crates/{name} depends on {dep}, which its layer does not allow"
                ));
            }
        }
    }
    assert!(seen.contains(&"api".to_string()), "the check read the crates: {seen:?}");
    assert!(broken.is_empty(), "{}", broken.join("\n"));
}

/// Every `.rs` file under `dir`.
fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn the_product_reaches_the_bank_store_only_through_the_bank() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&crates).expect("crates dir").flatten() {
        sources(&entry.path().join("src"), &mut files);
    }
    assert!(files.len() > 50, "the check read the sources: {}", files.len());
    let leaks: Vec<String> = files
        .iter()
        .filter(|f| !f.ends_with("bank/src/lib.rs"))
        .filter(|f| std::fs::read_to_string(f).is_ok_and(|t| t.contains("store_for_tests(")))
        .map(|f| f.display().to_string())
        .collect();
    assert!(leaks.is_empty(), "test-only store access in product code: {leaks:?}");
}
