//! Fixed-window counters for rate limits that must hold across restarts and between nodes
//! (login codes, failed logins, operator keys).
//!
//! A window opens at the first counted attempt of its bucket and lasts a given time; at most
//! `max` attempts are counted in it. Counting is one conditional upsert, so the cap is exact
//! however many attempts race; a refused attempt changes nothing.

use crate::sql::params;
use crate::{Store, StoreError};

/// The answer to [`Store::hit_window`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WindowHit {
    /// The attempt was counted in the window that ends at `ends_at_ms` (Unix ms); pass that to
    /// [`Store::release_window`] to take the attempt back.
    Counted {
        /// When the window ends, Unix ms.
        ends_at_ms: i64,
    },
    /// The window is full; nothing was counted.
    Refused {
        /// When the window ends, Unix ms: the earliest time an attempt can be counted again.
        ends_at_ms: i64,
    },
}

impl Store {
    /// Counts one attempt in `bucket`'s window, unless `max` attempts are counted in it
    /// already. An expired window starts over; a new one lasts `window_ms` from now.
    pub async fn hit_window(&self, bucket: &str, max: i64, window_ms: i64) -> Result<WindowHit, StoreError> {
        let now = self.now_ms();
        let ends = now.saturating_add(window_ms.max(1));
        if max <= 0 {
            return Ok(WindowHit::Refused { ends_at_ms: ends });
        }
        // One statement: insert a fresh window, restart an expired one, or add one to a live
        // one below the cap. When the cap is reached the WHERE leaves the row alone and no
        // row is returned. PostgreSQL locks the row for the update and re-checks the WHERE on
        // its latest version; SQLite runs writes one at a time.
        let sql = "INSERT INTO rate_windows (bucket, hits, expires_at) VALUES ($1, 1, CAST($2 AS BIGINT)) \
                   ON CONFLICT (bucket) DO UPDATE SET \
                   hits = CASE WHEN rate_windows.expires_at <= CAST($3 AS BIGINT) THEN 1 \
                               ELSE rate_windows.hits + 1 END, \
                   expires_at = CASE WHEN rate_windows.expires_at <= CAST($3 AS BIGINT) THEN CAST($2 AS BIGINT) \
                                     ELSE rate_windows.expires_at END \
                   WHERE rate_windows.expires_at <= CAST($3 AS BIGINT) OR rate_windows.hits < CAST($4 AS BIGINT) \
                   RETURNING expires_at";
        if let Some(row) = self.db.query_opt(sql, params![bucket, ends, now, max]).await? {
            return Ok(WindowHit::Counted {
                ends_at_ms: row.int(0)?,
            });
        }
        let row = self
            .db
            .query_opt("SELECT expires_at FROM rate_windows WHERE bucket = $1", params![bucket])
            .await?;
        let ends_at_ms = row.map(|r| r.int(0)).transpose()?.unwrap_or(ends);
        Ok(WindowHit::Refused { ends_at_ms })
    }

    /// Takes back one attempt counted by [`Store::hit_window`] in the window that ends at
    /// `ends_at_ms` (an attempt that turned out not to count, such as a successful login);
    /// nothing when that window is over. True when an attempt was taken back.
    pub async fn release_window(&self, bucket: &str, ends_at_ms: i64) -> Result<bool, StoreError> {
        let sql = "UPDATE rate_windows SET hits = hits - 1 WHERE bucket = $1 AND expires_at = $2 AND hits > 0";
        Ok(self.db.execute(sql, params![bucket, ends_at_ms]).await? == 1)
    }

    /// Deletes the windows that are over; how many.
    pub async fn prune_windows(&self) -> Result<u64, StoreError> {
        self.db
            .execute(
                "DELETE FROM rate_windows WHERE expires_at <= $1",
                params![self.now_ms()],
            )
            .await
    }
}
