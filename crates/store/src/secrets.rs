//! Sealed secrets (seeds, service keys): stored sealed under the node's key-encryption key,
//! one per purpose, the first recorded winning when nodes race.

use crate::sql::params;
use crate::{Store, StoreError};

impl Store {
    /// The secret sealed for `purpose`; records `seal_new()` first if there is none yet. When
    /// two nodes race, both get the one that was recorded first.
    pub async fn sealed_secret(&self, purpose: &str, seal_new: impl FnOnce() -> String) -> Result<String, StoreError> {
        let sql = "SELECT sealed FROM sealed_secrets WHERE purpose = $1";
        if let Some(row) = self.db.query_opt(sql, params![purpose]).await? {
            return row.text(0);
        }
        self.db
            .execute(
                "INSERT INTO sealed_secrets (purpose, sealed, created_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (purpose) DO NOTHING",
                params![purpose, seal_new(), self.now_ms()],
            )
            .await?;
        let row = self.db.query_opt(sql, params![purpose]).await?;
        row.ok_or_else(|| StoreError::Invariant(format!("sealed secret {purpose} vanished")))?
            .text(0)
    }
}
