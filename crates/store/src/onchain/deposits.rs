//! Deposits: the address index (which wallet owns a deposit address), deposits seen and
//! credited, the ones put under review, and the watcher's cursor.

use flash_core::{AccountId, HoldId, WalletId};

use crate::ledger::Record;
use crate::sql::{params, Row};
use crate::{Store, StoreError};

/// Where a deposit stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DepositStatus {
    /// Seen, not yet credited (in the mempool, or short of the confirmations required).
    Pending,
    /// Credited to its wallet.
    Credited,
    /// Left the chain and the mempool before it was credited; nothing was credited.
    Dropped,
    /// Credited, then left the chain: under review, with a hold on the wallet.
    Review,
}

impl DepositStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            DepositStatus::Pending => "pending",
            DepositStatus::Credited => "credited",
            DepositStatus::Dropped => "dropped",
            DepositStatus::Review => "review",
        }
    }
    fn from_stored(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => DepositStatus::Pending,
            "credited" => DepositStatus::Credited,
            "dropped" => DepositStatus::Dropped,
            "review" => DepositStatus::Review,
            other => return Err(StoreError::Decode(format!("unexpected deposit status {other:?}"))),
        })
    }
}

/// A deposit address and whose it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressOwner {
    /// The wallet it pays.
    pub wallet_id: WalletId,
    /// The wallet's account.
    pub account_id: AccountId,
}

/// What is on its way in and out on chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OnchainTotals {
    /// Deposits seen, not yet credited.
    pub pending_deposits: i64,
    /// Their satoshis.
    pub pending_deposit_sats: i64,
    /// Payouts held, not yet broadcast.
    pub queued_payouts: i64,
    /// Their satoshis.
    pub queued_payout_sats: i64,
}

/// A deposit output as the wallet sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeenDeposit<'a> {
    /// `txid:vout`.
    pub outpoint: &'a str,
    /// Its transaction.
    pub txid: &'a str,
    /// Its output index.
    pub vout: u32,
    /// The address it pays.
    pub address: &'a str,
    /// The wallet that address belongs to.
    pub wallet_id: WalletId,
    /// The output's value.
    pub amount_sat: i64,
    /// Height of the block that confirmed it, if confirmed.
    pub confirmed_height: Option<u32>,
}

/// A recorded deposit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DepositRecord {
    /// `txid:vout`.
    pub outpoint: String,
    /// Its transaction.
    pub txid: String,
    /// The address it paid.
    pub address: String,
    /// The wallet credited.
    pub wallet_id: WalletId,
    /// The wallet's account.
    pub account_id: AccountId,
    /// The output's value.
    pub amount_sat: i64,
    /// The deposit fee charged when crediting.
    pub fee_sat: i64,
    /// Where it stands.
    pub status: DepositStatus,
    /// Height of the block that confirmed it, as last seen.
    pub confirmed_height: Option<i64>,
    /// When it was first seen, Unix ms.
    pub seen_at_ms: i64,
    /// Why it is under review.
    pub review_reason: Option<String>,
    /// The hold on the wallet while under review, if the wallet had anything to hold.
    pub review_hold: Option<HoldId>,
}

/// The columns [`decode_deposit`] reads, from `onchain_deposits d` and `wallets w`.
macro_rules! deposit_select {
    () => {
        "SELECT d.outpoint, d.txid, d.address, d.wallet_id, w.account_id, d.amount_sat, \
         d.fee_sat, d.status, d.confirmed_height, d.seen_at, d.review_reason, d.review_hold_id"
    };
}
const DEPOSIT_COLUMNS: &str = concat!(
    deposit_select!(),
    " FROM onchain_deposits d JOIN wallets w ON w.id = d.wallet_id"
);

fn decode_deposit(r: &Row) -> Result<DepositRecord, StoreError> {
    Ok(DepositRecord {
        outpoint: r.text(0)?,
        txid: r.text(1)?,
        address: r.text(2)?,
        wallet_id: r.parse(3)?,
        account_id: r.parse(4)?,
        amount_sat: r.int(5)?,
        fee_sat: r.int(6)?,
        status: DepositStatus::from_stored(&r.text(7)?)?,
        confirmed_height: r.opt_int(8)?,
        seen_at_ms: r.int(9)?,
        review_reason: r.opt_text(10)?,
        review_hold: r.opt_text(11)?.map(HoldId::new),
    })
}

impl Record {
    /// Marks a pending deposit credited, charging `fee_sat`; commits with the journal that
    /// credits it (exactly once).
    pub fn onchain_deposit_credited(outpoint: &str, fee_sat: i64, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE onchain_deposits SET status = 'credited', fee_sat = $2, credited_at = $3, updated_at = $3 \
                  WHERE outpoint = $1 AND status = 'pending'",
            params: params![outpoint, fee_sat, now_ms],
            rows: 1,
            refusal: None,
        }
    }

    /// Puts a credited deposit under review, with `hold` on its wallet; commits with the
    /// journal that opens the hold.
    pub fn onchain_deposit_to_review(outpoint: &str, reason: &str, hold: Option<&HoldId>, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE onchain_deposits SET status = 'review', review_reason = $2, review_hold_id = $3, \
                  updated_at = $4 WHERE outpoint = $1 AND status = 'credited'",
            params: params![outpoint, reason, hold.map(HoldId::as_str), now_ms],
            rows: 1,
            refusal: None,
        }
    }

    /// Ends a review whose deposit is not coming back: the operator reclaimed what the wallet
    /// still held, and the deposit counts as dropped. Commits with the journal that settles the
    /// hold, if there is one.
    pub fn onchain_deposit_reclaimed(outpoint: &str, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE onchain_deposits SET status = 'dropped', confirmed_height = NULL, updated_at = $2 \
                  WHERE outpoint = $1 AND status = 'review'",
            params: params![outpoint, now_ms],
            rows: 1,
            refusal: Some("the deposit is no longer under review"),
        }
    }

    /// Ends a review with the deposit back in the chain; commits with the journal that
    /// releases its hold.
    pub fn onchain_deposit_review_cleared(outpoint: &str, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE onchain_deposits SET status = 'credited', review_reason = NULL, review_hold_id = NULL, \
                  updated_at = $2 WHERE outpoint = $1 AND status = 'review'",
            params: params![outpoint, now_ms],
            rows: 1,
            refusal: None,
        }
    }
}

impl Store {
    /// Takes the next deposit address derivation index (never handed out twice).
    pub async fn next_onchain_address_index(&self) -> Result<u32, StoreError> {
        let row = self
            .db
            .query_opt(
                "UPDATE onchain_address_counter SET next_index = next_index + 1 WHERE id = 1 \
                 RETURNING next_index - 1",
                params![],
            )
            .await?
            .ok_or_else(|| StoreError::Invariant("the address counter row is missing".into()))?;
        u32::try_from(row.int(0)?).map_err(|_| StoreError::Invariant("deposit address indexes ran out".into()))
    }

    /// Records a deposit address of `wallet_id` at derivation `index`.
    pub async fn insert_onchain_address(
        &self,
        address: &str,
        wallet_id: WalletId,
        index: u32,
    ) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO onchain_addresses (address, wallet_id, derivation_index, created_at) \
                 VALUES ($1, $2, $3, $4)",
                params![address, wallet_id.to_string(), i64::from(index), self.now_ms()],
            )
            .await
            .map(|_| ())
    }

    /// The newest deposit address of `wallet_id`, if it has one.
    pub async fn current_onchain_address(&self, wallet_id: WalletId) -> Result<Option<String>, StoreError> {
        let sql = "SELECT address FROM onchain_addresses WHERE wallet_id = $1 ORDER BY derivation_index DESC LIMIT 1";
        let row = self.db.query_opt(sql, params![wallet_id.to_string()]).await?;
        row.map(|r| r.text(0)).transpose()
    }

    /// Whose deposit address `address` is.
    pub async fn onchain_address_owner(&self, address: &str) -> Result<Option<AddressOwner>, StoreError> {
        let sql = "SELECT a.wallet_id, w.account_id FROM onchain_addresses a JOIN wallets w ON w.id = a.wallet_id \
                   WHERE a.address = $1";
        let row = self.db.query_opt(sql, params![address]).await?;
        row.map(|r| {
            Ok(AddressOwner {
                wallet_id: r.parse(0)?,
                account_id: r.parse(1)?,
            })
        })
        .transpose()
    }

    /// Records a deposit when first seen (as pending), or its latest confirmation height.
    /// Returns whether it was new.
    pub async fn record_onchain_deposit(&self, d: &SeenDeposit<'_>) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let height = d.confirmed_height.map(i64::from);
        let outpoint = d.outpoint;
        let inserted = self
            .db
            .execute(
                "INSERT INTO onchain_deposits (outpoint, txid, vout, address, wallet_id, amount_sat, status, \
                 confirmed_height, seen_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $8) \
                 ON CONFLICT (outpoint) DO NOTHING",
                params![
                    outpoint,
                    d.txid,
                    i64::from(d.vout),
                    d.address,
                    d.wallet_id.to_string(),
                    d.amount_sat,
                    height,
                    now
                ],
            )
            .await?;
        if inserted == 0 {
            // A dropped deposit that comes back is pending again.
            self.db
                .execute(
                    "UPDATE onchain_deposits SET confirmed_height = $2, updated_at = $3, \
                     status = CASE WHEN status = 'dropped' THEN 'pending' ELSE status END \
                     WHERE outpoint = $1",
                    params![outpoint, height, now],
                )
                .await?;
        }
        Ok(inserted == 1)
    }

    /// Marks a pending deposit dropped (it left the chain and the mempool uncredited).
    pub async fn drop_onchain_deposit(&self, outpoint: &str) -> Result<bool, StoreError> {
        let changed = self
            .db
            .execute(
                "UPDATE onchain_deposits SET status = 'dropped', confirmed_height = NULL, updated_at = $2 \
                 WHERE outpoint = $1 AND status = 'pending'",
                params![outpoint, self.now_ms()],
            )
            .await?;
        Ok(changed == 1)
    }

    /// Puts a credited deposit under review when there is nothing to hold.
    pub async fn onchain_deposit_to_review(&self, outpoint: &str, reason: &str) -> Result<(), StoreError> {
        self.apply_record(Record::onchain_deposit_to_review(outpoint, reason, None, self.now_ms()))
            .await
    }

    /// Ends a review that holds nothing.
    pub async fn onchain_deposit_review_cleared(&self, outpoint: &str) -> Result<(), StoreError> {
        self.apply_record(Record::onchain_deposit_review_cleared(outpoint, self.now_ms()))
            .await
    }

    /// Ends a review that holds nothing, the deposit dropped (see
    /// [`Record::onchain_deposit_reclaimed`]).
    pub async fn onchain_deposit_reclaimed(&self, outpoint: &str) -> Result<(), StoreError> {
        self.apply_record(Record::onchain_deposit_reclaimed(outpoint, self.now_ms()))
            .await
    }

    /// The deposits under review, oldest first, each with what its hold still holds.
    pub async fn onchain_deposits_in_review(&self) -> Result<Vec<(DepositRecord, i64)>, StoreError> {
        let sql = concat!(
            deposit_select!(),
            ", CAST(COALESCE(h.amount, 0) AS BIGINT) FROM onchain_deposits d JOIN wallets w ON w.id = d.wallet_id \
             LEFT JOIN holds h ON h.id = d.review_hold_id AND h.status = 'pending' \
             WHERE d.status = 'review' ORDER BY d.updated_at, d.outpoint"
        );
        let rows = self.db.query(sql, params![]).await?;
        rows.iter().map(|r| Ok((decode_deposit(r)?, r.int(12)?))).collect()
    }

    /// A deposit by outpoint.
    pub async fn onchain_deposit(&self, outpoint: &str) -> Result<Option<DepositRecord>, StoreError> {
        let sql = format!("{DEPOSIT_COLUMNS} WHERE d.outpoint = $1");
        let row = self.db.query_opt(&sql, params![outpoint]).await?;
        row.as_ref().map(decode_deposit).transpose()
    }

    /// The deposits a sync from `from_height` must account for: pending and under review, and
    /// credited ones confirmed at or above `from_height` (a reorganisation could still undo
    /// them).
    pub async fn onchain_deposits_to_watch(&self, from_height: u32) -> Result<Vec<DepositRecord>, StoreError> {
        let sql = format!(
            "{DEPOSIT_COLUMNS} WHERE d.status IN ('pending', 'review') \
             OR (d.status = 'credited' AND (d.confirmed_height IS NULL OR d.confirmed_height >= $1))"
        );
        let rows = self.db.query(&sql, params![i64::from(from_height)]).await?;
        rows.iter().map(decode_deposit).collect()
    }

    /// The deposits of `wallet_id`, newest first, optionally only those to `address`.
    pub async fn onchain_deposits_of(
        &self,
        wallet_id: WalletId,
        address: Option<&str>,
        limit: i64,
    ) -> Result<Vec<DepositRecord>, StoreError> {
        let order = "ORDER BY d.seen_at DESC, d.outpoint";
        let rows = match address {
            Some(address) => {
                let sql = format!("{DEPOSIT_COLUMNS} WHERE d.wallet_id = $1 AND d.address = $2 {order} LIMIT $3");
                self.db
                    .query(&sql, params![wallet_id.to_string(), address, limit])
                    .await?
            }
            None => {
                let sql = format!("{DEPOSIT_COLUMNS} WHERE d.wallet_id = $1 {order} LIMIT $2");
                self.db.query(&sql, params![wallet_id.to_string(), limit]).await?
            }
        };
        rows.iter().map(decode_deposit).collect()
    }

    /// What pending deposits will bring `wallet_id`.
    pub async fn onchain_pending_incoming(&self, wallet_id: WalletId) -> Result<i64, StoreError> {
        let sql = "SELECT CAST(COALESCE(SUM(amount_sat), 0) AS BIGINT) FROM onchain_deposits WHERE wallet_id = $1 AND status = 'pending'";
        let row = self.db.query_opt(sql, params![wallet_id.to_string()]).await?;
        row.map_or(Ok(0), |r| r.int(0))
    }

    /// Pending deposits and queued (not yet sent) payouts: counts and satoshis.
    pub async fn onchain_totals(&self) -> Result<OnchainTotals, StoreError> {
        let sum = |table: &str, status: &str| {
            format!(
                "SELECT COUNT(*), CAST(COALESCE(SUM(amount_sat), 0) AS BIGINT) FROM {table} WHERE status IN ({status})"
            )
        };
        let rows = self
            .db
            .snapshot(vec![
                (sum("onchain_deposits", "'pending'"), params![]),
                (sum("onchain_payouts", "'queued', 'batched'"), params![]),
            ])
            .await?;
        let pair = |rows: Option<&Vec<Row>>| -> Result<(i64, i64), StoreError> {
            match rows.and_then(|r| r.first()) {
                Some(r) => Ok((r.int(0)?, r.int(1)?)),
                None => Ok((0, 0)),
            }
        };
        let (pending_deposits, pending_deposit_sats) = pair(rows.first())?;
        let (queued_payouts, queued_payout_sats) = pair(rows.get(1))?;
        Ok(OnchainTotals {
            pending_deposits,
            pending_deposit_sats,
            queued_payouts,
            queued_payout_sats,
        })
    }

    /// The height up to which the deposit watcher has processed the chain.
    pub async fn onchain_cursor(&self) -> Result<u32, StoreError> {
        let row = self
            .db
            .query_opt("SELECT height FROM onchain_cursor WHERE name = 'deposits'", params![])
            .await?;
        row.map_or(Ok(0), |r| Ok(u32::try_from(r.int(0)?).unwrap_or(0)))
    }

    /// Records the height up to which the deposit watcher has processed the chain.
    pub async fn set_onchain_cursor(&self, height: u32) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO onchain_cursor (name, height) VALUES ('deposits', $1) \
                 ON CONFLICT (name) DO UPDATE SET height = excluded.height",
                params![i64::from(height)],
            )
            .await
            .map(|_| ())
    }
}
