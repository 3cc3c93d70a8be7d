//! Worker leases: which node runs a singleton worker (one conditional upsert takes or renews a
//! lease; an expired one can be taken over).

use crate::sql::params;
use crate::{Store, StoreError};

impl Store {
    /// Takes or renews lease `name` for `holder` until `ttl_ms` from now: granted when nobody
    /// holds it, `holder` already does, or the holder's lease has expired. Whether `holder`
    /// holds it now.
    pub async fn take_lease(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let taken = self
            .db
            .execute(
                "INSERT INTO worker_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
                 WHERE worker_leases.holder = excluded.holder OR worker_leases.expires_at < $4",
                params![name, holder, now.saturating_add(ttl_ms), now],
            )
            .await?;
        Ok(taken == 1)
    }

    /// Who holds lease `name` and until when (Unix ms), if anyone ever did.
    pub async fn lease(&self, name: &str) -> Result<Option<(String, i64)>, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT holder, expires_at FROM worker_leases WHERE name = $1",
                params![name],
            )
            .await?;
        row.map(|r| Ok((r.text(0)?, r.int(1)?))).transpose()
    }
}
