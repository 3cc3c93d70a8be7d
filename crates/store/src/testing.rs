//! Test support (feature `testing`): a fresh SQLite file or a fresh PostgreSQL database per
//! call, so every test starts from an empty, migrated store.
//!
//! PostgreSQL comes from `FLASH_TEST_POSTGRES_URL` (default
//! `postgres://postgres@127.0.0.1:5432/postgres`); each call creates `flash_test_<secs>_<id>`
//! and drops such databases older than an hour; SQLite files live in
//! `$TMPDIR/flash_test_<secs>_<id>/` and are pruned the same way, so runs do not accumulate.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use flash_core::ports::{Clock, SystemClock};
use flash_core::Currency;
use tokio_postgres::NoTls;

use crate::{Store, StoreConfig};

/// Runs each listed `async fn name(backend: Backend)` as two tests, `sqlite::name` and
/// `postgres::name`: the one conformance-suite shape every storage-backed test uses.
/// Attributes (such as `#[ignore]`) given before a name apply to both.
#[macro_export]
macro_rules! on_both_backends {
    ($($(#[$attr:meta])* $name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn $name() { super::$name($crate::testing::Backend::Sqlite).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            $(#[$attr])*
            async fn $name() { super::$name($crate::testing::Backend::Postgres).await })*
        }
    };
}

/// Which backend a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the temp dir.
    Sqlite,
    /// A fresh PostgreSQL database.
    Postgres,
}

/// Where the official test vectors of `set` (`cashu`, `nostr`, …) are: under
/// `FLASH_TEST_VECTORS` when set, else `shared/vectors` beside the checkout or beside any
/// folder above it (`../shared/vectors` from the repository, wherever it is cloned).
///
/// `None` when neither holds `set`, after printing why the caller skips; under CI (`CI` set, as
/// `.ci/run` does) a missing vector set fails the test instead, so CI never passes without them.
pub fn vectors_dir(set: &str) -> Option<std::path::PathBuf> {
    let found = match std::env::var_os("FLASH_TEST_VECTORS") {
        Some(dir) => Some(std::path::PathBuf::from(dir).join(set)).filter(|d| d.is_dir()),
        None => std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .map(|a| a.join("shared/vectors").join(set))
            .find(|d| d.is_dir()),
    };
    if found.is_none() {
        let why = format!(
            "the official `{set}` test vectors are not here: set FLASH_TEST_VECTORS to the vectors folder \
             (it holds `{set}/`), or put them in ../shared/vectors beside the checkout"
        );
        assert!(std::env::var_os("CI").is_none(), "{why}");
        println!("skipped: {why}");
    }
    found
}

const DEFAULT_POSTGRES_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
const STALE_SECS: u64 = 3_600;

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The admin URL tests create databases through.
pub fn postgres_admin_url() -> String {
    std::env::var("FLASH_TEST_POSTGRES_URL").unwrap_or_else(|_| DEFAULT_POSTGRES_URL.to_string())
}

/// A config for a fresh store on `backend`. Panics with a clear message when PostgreSQL is
/// unreachable: tests must not silently skip a backend.
pub async fn fresh_config(backend: Backend) -> StoreConfig {
    let name = format!("flash_test_{}_{}", unix_secs(), uuid::Uuid::new_v4().simple());
    match backend {
        Backend::Sqlite => {
            drop_stale_dirs();
            let dir = std::env::temp_dir().join(name);
            StoreConfig::Sqlite {
                path: dir.join("flash.db"),
            }
        }
        Backend::Postgres => {
            let admin = postgres_admin_url();
            let (client, conn) = tokio_postgres::connect(&admin, NoTls).await.unwrap_or_else(|e| {
                panic!("PostgreSQL for tests at {admin} is unreachable ({e}); set FLASH_TEST_POSTGRES_URL")
            });
            tokio::spawn(conn);
            drop_stale(&client).await;
            client
                .batch_execute(&format!("CREATE DATABASE {name}"))
                .await
                .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
            let base = admin
                .rsplit_once('/')
                .map(|(b, _)| b.to_string())
                .unwrap_or(admin.clone());
            StoreConfig::Postgres {
                url: format!("{base}/{name}"),
            }
        }
    }
}

/// The creation time encoded in a test database or directory name.
fn created_secs(name: &str) -> u64 {
    name.split('_')
        .nth(2)
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(u64::MAX)
}

/// Removes SQLite test directories older than an hour.
fn drop_stale_dirs() {
    let cutoff = unix_secs().saturating_sub(STALE_SECS);
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("flash_test_") && created_secs(&name) < cutoff {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

async fn drop_stale(client: &tokio_postgres::Client) {
    let Ok(rows) = client
        .query("SELECT datname FROM pg_database WHERE datname LIKE 'flash_test_%'", &[])
        .await
    else {
        return;
    };
    let cutoff = unix_secs().saturating_sub(STALE_SECS);
    for row in rows {
        let name: String = row.get(0);
        if created_secs(&name) < cutoff {
            let _ = client
                .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// A fresh, migrated store with BTC system accounts, on the system clock.
pub async fn fresh_store(backend: Backend) -> Store {
    fresh_store_with_clock(backend, Arc::new(SystemClock)).await
}

/// A fresh store on a given clock.
pub async fn fresh_store_with_clock(backend: Backend, clock: Arc<dyn Clock>) -> Store {
    let config = fresh_config(backend).await;
    let store = Store::open(&config, clock)
        .await
        .unwrap_or_else(|e| panic!("open {config:?}: {e}"));
    store
        .ensure_system_accounts(Currency::Btc)
        .await
        .unwrap_or_else(|e| panic!("system accounts: {e}"));
    store
}
