//! A real `flashd` for the benches that drive it over HTTP (`#[path]`-included after `common`
//! and `shared`): started in a temp data dir on SQLite or on a PostgreSQL database of its own,
//! with its operator key; and refusals counted by kind.

use std::collections::BTreeMap;

use crate::common::{Api, Flashd, Launch, TempDir};
use crate::shared::PgDatabase;

/// A running flashd (bench profile, embedded dev rails, `RUST_LOG=warn`): stopped, then its
/// data dir and database dropped, when dropped.
pub struct BenchFlashd {
    /// The process (`server.base` is its URL).
    pub server: Flashd,
    /// A GraphQL/REST caller for it.
    pub api: Api,
    /// The operator key printed on first start.
    pub admin: String,
    _dir: TempDir,
    _db: Option<PgDatabase>,
}

impl BenchFlashd {
    /// Starts one on `backend` (`sqlite` or `postgres`, through `FLASH_TEST_POSTGRES_URL`),
    /// its data dir named after `tag`.
    pub async fn start(backend: &str, tag: &str) -> BenchFlashd {
        let db = match backend {
            "sqlite" => None,
            "postgres" => Some(PgDatabase::create().await),
            other => panic!("unknown backend {other} (sqlite, postgres)"),
        };
        let dir = TempDir::new(&format!("{tag}-{backend}"));
        let launch = Launch::new(dir.path(), db.as_ref().map(|d| d.url.as_str())).env("RUST_LOG", "warn");
        let server = Flashd::start(&launch).await;
        let admin = server.admin_key.clone().expect("admin key on first start");
        BenchFlashd {
            api: Api::new(&server.base),
            admin,
            server,
            _dir: dir,
            _db: db,
        }
    }
}

/// Refusals counted by kind.
#[derive(Debug, Default)]
pub struct Refusals(BTreeMap<String, u64>);

impl Refusals {
    /// Counts one of `kind`.
    pub fn add(&mut self, kind: impl Into<String>) {
        *self.0.entry(kind.into()).or_default() += 1;
    }

    /// Adds another's counts.
    pub fn merge(&mut self, other: Refusals) {
        for (kind, n) in other.0 {
            *self.0.entry(kind).or_default() += n;
        }
    }

    /// How many in all.
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// Prints one line per kind, most frequent first: `{prefix}: N {what}: KIND`.
    pub fn print(&self, prefix: &str, what: &str) {
        let mut kinds: Vec<_> = self.0.iter().collect();
        kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (kind, n) in kinds {
            println!("{prefix}: {n} {what}: {kind}");
        }
    }
}
