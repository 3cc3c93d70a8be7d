//! Nostr Wallet Connect (NIP-47) connections and their budgets. A payment reserves its
//! amount (and fee cap) against the connection's budget with one conditional update before it
//! leaves, and the reservation is settled or released exactly once, by the request's state.

use flash_core::{AccountId, WalletId};

use crate::sql::{params, Row};
use crate::{Store, StoreError};

/// A wallet connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NwcConnectionRecord {
    /// Its id.
    pub id: String,
    /// The account that made it.
    pub account_id: AccountId,
    /// The wallet it uses.
    pub wallet_id: WalletId,
    /// The key its requests are signed with (hex).
    pub client_pubkey: String,
    /// What the user called it.
    pub name: String,
    /// The NIP-47 methods it may call.
    pub methods: Vec<String>,
    /// Most satoshis (amounts and fees) per period; none for no budget.
    pub budget_sats: Option<i64>,
    /// `daily`, `weekly`, `monthly`, `yearly` or `never` (one budget for the connection's life).
    pub budget_period: String,
    /// Start of the period `spent_sats` counts (Unix ms).
    pub period_start: i64,
    /// Taken in the period, reservations included.
    pub spent_sats: i64,
    /// When it stops working (Unix ms).
    pub expires_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// When the user revoked it (Unix ms).
    pub revoked_at: Option<i64>,
    /// Its last request (Unix ms).
    pub last_used_at: Option<i64>,
}

/// What a budget reservation found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reservation {
    /// Reserved: the payment may go.
    Reserved,
    /// The budget (or the connection's state) does not allow it; nothing changed.
    Refused,
    /// This request was seen before: its answer, once it has one.
    Replayed(Option<String>),
}

/// A payment request whose budget reservation is neither spent nor released.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NwcUnfinished {
    /// The request's event id (hex); the payment's idempotency key is `nwc:<event id>`.
    pub event_id: String,
    /// The connection's account.
    pub account_id: AccountId,
    /// The wallet paying.
    pub wallet_id: WalletId,
}

const COLUMNS: &str = "SELECT id, account_id, wallet_id, client_pubkey, name, methods, budget_sats, budget_period, \
     period_start, spent_sats, expires_at, created_at, revoked_at, last_used_at FROM nwc_connections";

fn connection(r: &Row) -> Result<NwcConnectionRecord, StoreError> {
    Ok(NwcConnectionRecord {
        id: r.text(0)?,
        account_id: r.parse(1)?,
        wallet_id: r.parse(2)?,
        client_pubkey: r.text(3)?,
        name: r.text(4)?,
        methods: r.text(5)?.split_whitespace().map(str::to_string).collect(),
        budget_sats: r.opt_int(6)?,
        budget_period: r.text(7)?,
        period_start: r.int(8)?,
        spent_sats: r.int(9)?,
        expires_at: r.opt_int(10)?,
        created_at: r.int(11)?,
        revoked_at: r.opt_int(12)?,
        last_used_at: r.opt_int(13)?,
    })
}

/// Gives back a reservation (less `keep` satoshis, which stay spent) and marks the request
/// `state`, once: both statements depend on the request still being reserved.
fn finish(event_id: &str, keep: i64, state: &str, response: Option<&str>) -> Vec<(String, Vec<crate::sql::Value>)> {
    vec![
        (
            "UPDATE nwc_connections SET spent_sats = spent_sats - \
             (SELECT r.reserved_sats FROM nwc_requests r WHERE r.event_id = $1) + $2 \
             WHERE id = (SELECT r.connection_id FROM nwc_requests r WHERE r.event_id = $1 AND r.state = 'reserved') \
             AND period_start = (SELECT r.period_start FROM nwc_requests r WHERE r.event_id = $1) \
             AND spent_sats - (SELECT r.reserved_sats FROM nwc_requests r WHERE r.event_id = $1) + $2 >= 0"
                .to_string(),
            params![event_id, keep],
        ),
        (
            "UPDATE nwc_requests SET state = $2, response = $3 WHERE event_id = $1 AND state = 'reserved'".to_string(),
            params![event_id, state, response],
        ),
    ]
}

impl Store {
    /// Records a new connection.
    pub async fn nwc_create(&self, c: &NwcConnectionRecord) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO nwc_connections (id, account_id, wallet_id, client_pubkey, name, methods, budget_sats, \
                 budget_period, period_start, spent_sats, expires_at, created_at, revoked_at, last_used_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, NULL, NULL)",
                params![
                    c.id.as_str(),
                    c.account_id.to_string(),
                    c.wallet_id.to_string(),
                    c.client_pubkey.as_str(),
                    c.name.as_str(),
                    c.methods.join(" "),
                    c.budget_sats,
                    c.budget_period.as_str(),
                    c.period_start,
                    c.spent_sats,
                    c.expires_at,
                    c.created_at
                ],
            )
            .await
            .map(|_| ())
    }

    /// The connection whose requests `client_pubkey` signs.
    pub async fn nwc_by_client(&self, client_pubkey: &str) -> Result<Option<NwcConnectionRecord>, StoreError> {
        let sql = format!("{COLUMNS} WHERE client_pubkey = $1");
        self.db
            .query_opt(&sql, params![client_pubkey])
            .await?
            .as_ref()
            .map(connection)
            .transpose()
    }

    /// An account's connections, newest first.
    pub async fn nwc_of_account(&self, account: AccountId) -> Result<Vec<NwcConnectionRecord>, StoreError> {
        let sql = format!("{COLUMNS} WHERE account_id = $1 ORDER BY created_at DESC, id");
        self.db
            .query(&sql, params![account.to_string()])
            .await?
            .iter()
            .map(connection)
            .collect()
    }

    /// The live (not revoked, not expired) connections to a wallet.
    pub async fn nwc_of_wallet(&self, wallet: WalletId, now_ms: i64) -> Result<Vec<NwcConnectionRecord>, StoreError> {
        let sql = format!(
            "{COLUMNS} WHERE wallet_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)"
        );
        self.db
            .query(&sql, params![wallet.to_string(), now_ms])
            .await?
            .iter()
            .map(connection)
            .collect()
    }

    /// Revokes an account's connection; false when it has none by that id (or it was revoked).
    pub async fn nwc_revoke(&self, account: AccountId, id: &str) -> Result<bool, StoreError> {
        let changed = self
            .db
            .execute(
                "UPDATE nwc_connections SET revoked_at = $3 WHERE id = $1 AND account_id = $2 AND revoked_at IS NULL",
                params![id, account.to_string(), self.now_ms()],
            )
            .await?;
        Ok(changed == 1)
    }

    /// Notes a request on a connection.
    pub async fn nwc_touch(&self, id: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE nwc_connections SET last_used_at = $2 WHERE id = $1",
                params![id, self.now_ms()],
            )
            .await
            .map(|_| ())
    }

    /// Reserves `sats` of a connection's budget for request `event_id`, in the period starting
    /// at `period_start` (a new period starts from zero). Refused when the budget would be
    /// exceeded or the connection was revoked or expired in the meantime; a request seen
    /// before is not reserved twice.
    pub async fn nwc_reserve(
        &self,
        connection_id: &str,
        event_id: &str,
        method: &str,
        sats: i64,
        period_start: i64,
    ) -> Result<Reservation, StoreError> {
        if let Some(row) = self
            .db
            .query_opt(
                "SELECT response FROM nwc_requests WHERE event_id = $1",
                params![event_id],
            )
            .await?
        {
            return Ok(Reservation::Replayed(row.opt_text(0)?));
        }
        let now = self.now_ms();
        let take = (
            "UPDATE nwc_connections SET \
             spent_sats = (CASE WHEN period_start < $3 THEN 0 ELSE spent_sats END) + $2, \
             period_start = CASE WHEN period_start < $3 THEN $3 ELSE period_start END, \
             last_used_at = $4 \
             WHERE id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $4) \
             AND (budget_sats IS NULL OR (CASE WHEN period_start < $3 THEN 0 ELSE spent_sats END) + $2 <= budget_sats)"
                .to_string(),
            params![connection_id, sats, period_start, now],
        );
        let record = (
            "INSERT INTO nwc_requests (event_id, connection_id, method, reserved_sats, period_start, state, response, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'reserved', NULL, $6)"
                .to_string(),
            params![event_id, connection_id, method, sats, period_start, now],
        );
        match self.db.script_exact(vec![take, record], 1).await {
            Ok(()) => Ok(Reservation::Reserved),
            Err(StoreError::Refused(_)) => Ok(Reservation::Refused),
            Err(e) if e.is_unique_violation() => Ok(Reservation::Replayed(None)),
            Err(e) => Err(e),
        }
    }

    /// `pay_invoice` reservations made before `before_ms` and still open (oldest first, at
    /// most `limit`).
    pub async fn nwc_unfinished(&self, before_ms: i64, limit: i64) -> Result<Vec<NwcUnfinished>, StoreError> {
        self.db
            .query(
                "SELECT r.event_id, c.account_id, c.wallet_id FROM nwc_requests r \
                 JOIN nwc_connections c ON c.id = r.connection_id \
                 WHERE r.state = 'reserved' AND r.method = 'pay_invoice' AND r.created_at < $1 \
                 ORDER BY r.created_at LIMIT $2",
                params![before_ms, limit],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(NwcUnfinished {
                    event_id: r.text(0)?,
                    account_id: r.parse(1)?,
                    wallet_id: r.parse(2)?,
                })
            })
            .collect()
    }

    /// A reserved payment was made: `spent_sats` (amount and fee) stay taken, the rest of the
    /// reservation goes back, and `response` answers replays. Once; false if already settled.
    pub async fn nwc_spend(&self, event_id: &str, spent_sats: i64, response: &str) -> Result<bool, StoreError> {
        let changed = self
            .db
            .script(finish(event_id, spent_sats, "spent", Some(response)))
            .await?;
        Ok(changed.get(1) == Some(&1))
    }

    /// A reserved payment failed: the whole reservation goes back, and `response` answers
    /// replays. Once; false if already settled.
    pub async fn nwc_release(&self, event_id: &str, response: &str) -> Result<bool, StoreError> {
        let changed = self.db.script(finish(event_id, 0, "released", Some(response))).await?;
        Ok(changed.get(1) == Some(&1))
    }
}
