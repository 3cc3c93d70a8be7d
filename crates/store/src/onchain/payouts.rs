//! Withdrawals: payouts with their holds, and the transactions (batches) that carry them.

use std::collections::HashSet;

use flash_core::{AccountId, HoldId, WalletId};

use crate::ledger::Record;
use crate::sql::{params, placeholders, Row, Value};
use crate::{Store, StoreError};

/// How a payout travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayoutSpeed {
    /// In the next batch with others.
    Batch,
    /// In its own transaction, now.
    Immediate,
}

impl PayoutSpeed {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutSpeed::Batch => "batch",
            PayoutSpeed::Immediate => "immediate",
        }
    }
    fn from_stored(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "batch" => PayoutSpeed::Batch,
            "immediate" => PayoutSpeed::Immediate,
            other => return Err(StoreError::Decode(format!("unexpected payout speed {other:?}"))),
        })
    }
}

/// Where a payout stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayoutStatus {
    /// Held, waiting for a batch.
    Queued,
    /// In a signed batch not yet broadcast.
    Batched,
    /// Its batch was broadcast; the hold settled.
    Sent,
    /// Not paid; the hold reversed.
    Failed,
}

impl PayoutStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutStatus::Queued => "queued",
            PayoutStatus::Batched => "batched",
            PayoutStatus::Sent => "sent",
            PayoutStatus::Failed => "failed",
        }
    }
    fn from_stored(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "queued" => PayoutStatus::Queued,
            "batched" => PayoutStatus::Batched,
            "sent" => PayoutStatus::Sent,
            "failed" => PayoutStatus::Failed,
            other => return Err(StoreError::Decode(format!("unexpected payout status {other:?}"))),
        })
    }
}

/// A payout to record with its hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPayout {
    /// Its id, which is also its hold's.
    pub id: HoldId,
    /// The paying wallet.
    pub wallet_id: WalletId,
    /// Where to.
    pub address: String,
    /// Amount paid to the address.
    pub amount_sat: i64,
    /// Most of the fee the wallet pays (held on top of the amount).
    pub fee_reserved_sat: i64,
    /// Batched or immediate.
    pub speed: PayoutSpeed,
}

/// A stored payout.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutRecord {
    /// What was recorded when it was queued.
    pub payout: NewPayout,
    /// The paying wallet's account.
    pub account_id: AccountId,
    /// Where it stands.
    pub status: PayoutStatus,
    /// Its batch, once batched.
    pub batch_id: Option<String>,
    /// Its output in the batch's transaction.
    pub vout: Option<i64>,
    /// The fee charged, once sent.
    pub fee_sat: Option<i64>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
}

/// Where a payout transaction stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BatchStatus {
    /// Signed and recorded, not yet accepted by the network.
    Signed,
    /// Accepted by the network, unconfirmed.
    Broadcast,
    /// Confirmed.
    Confirmed,
    /// Another transaction of the same payouts confirmed instead.
    Replaced,
    /// Refused by the network; its payouts went back to the queue.
    Failed,
}

impl BatchStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Signed => "signed",
            BatchStatus::Broadcast => "broadcast",
            BatchStatus::Confirmed => "confirmed",
            BatchStatus::Replaced => "replaced",
            BatchStatus::Failed => "failed",
        }
    }
    fn from_stored(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "signed" => BatchStatus::Signed,
            "broadcast" => BatchStatus::Broadcast,
            "confirmed" => BatchStatus::Confirmed,
            "replaced" => BatchStatus::Replaced,
            "failed" => BatchStatus::Failed,
            other => return Err(StoreError::Decode(format!("unexpected batch status {other:?}"))),
        })
    }
}

/// A payout transaction to record before it is broadcast.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBatch {
    /// Its id.
    pub id: String,
    /// Its txid.
    pub txid: String,
    /// The signed transaction, consensus hex.
    pub tx_hex: String,
    /// The fee it pays.
    pub fee_sat: i64,
    /// Its size, virtual bytes.
    pub vsize: i64,
    /// Its fee rate, satoshis per 1,000 vbytes.
    pub fee_rate: i64,
    /// The batch it replaces (a fee bump).
    pub replaces: Option<String>,
    /// The first batch of its payouts (its own id unless it is a replacement).
    pub group_id: String,
}

/// A stored payout transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BatchRecord {
    /// What was recorded when it was signed.
    pub batch: NewBatch,
    /// Where it stands.
    pub status: BatchStatus,
    /// The tip when it was broadcast.
    pub broadcast_height: Option<i64>,
    /// The block that confirmed it.
    pub confirmed_height: Option<i64>,
    /// Why the network refused it.
    pub failure: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
}

const PAYOUT_COLUMNS: &str = "SELECT p.id, p.wallet_id, p.address, p.amount_sat, p.fee_reserved_sat, p.speed, \
    p.status, p.batch_id, p.vout, p.fee_sat, p.failure, p.created_at, w.account_id \
    FROM onchain_payouts p JOIN wallets w ON w.id = p.wallet_id";

const BATCH_COLUMNS: &str = "SELECT id, txid, tx_hex, fee_sat, vsize, fee_rate, replaces, status, \
    broadcast_height, confirmed_height, failure, created_at, group_id FROM onchain_batches";

fn decode_payout(r: &Row) -> Result<PayoutRecord, StoreError> {
    Ok(PayoutRecord {
        payout: NewPayout {
            id: HoldId::new(r.text(0)?),
            wallet_id: r.parse(1)?,
            address: r.text(2)?,
            amount_sat: r.int(3)?,
            fee_reserved_sat: r.int(4)?,
            speed: PayoutSpeed::from_stored(&r.text(5)?)?,
        },
        status: PayoutStatus::from_stored(&r.text(6)?)?,
        batch_id: r.opt_text(7)?,
        vout: r.opt_int(8)?,
        fee_sat: r.opt_int(9)?,
        failure: r.opt_text(10)?,
        created_at_ms: r.int(11)?,
        account_id: r.parse(12)?,
    })
}

fn decode_batch(r: &Row) -> Result<BatchRecord, StoreError> {
    Ok(BatchRecord {
        batch: NewBatch {
            id: r.text(0)?,
            txid: r.text(1)?,
            tx_hex: r.text(2)?,
            fee_sat: r.int(3)?,
            vsize: r.int(4)?,
            fee_rate: r.int(5)?,
            replaces: r.opt_text(6)?,
            group_id: r.text(12)?,
        },
        status: BatchStatus::from_stored(&r.text(7)?)?,
        broadcast_height: r.opt_int(8)?,
        confirmed_height: r.opt_int(9)?,
        failure: r.opt_text(10)?,
        created_at_ms: r.int(11)?,
    })
}

impl Record {
    /// Records a queued payout; commits with the journal that opens its hold.
    pub fn onchain_payout_queued(p: &NewPayout, now_ms: i64) -> Record {
        Record {
            sql: "INSERT INTO onchain_payouts (id, wallet_id, address, amount_sat, fee_reserved_sat, speed, status, \
                  created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'queued', $7, $7)",
            params: params![
                p.id.as_str(),
                p.wallet_id.to_string(),
                p.address.as_str(),
                p.amount_sat,
                p.fee_reserved_sat,
                p.speed.as_str(),
                now_ms,
            ],
            rows: 1,
            refusal: None,
        }
    }

    /// Marks a batched payout sent, charging `fee_sat`; commits with the journal that settles
    /// its hold.
    pub fn onchain_payout_sent(id: &HoldId, fee_sat: i64, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE onchain_payouts SET status = 'sent', fee_sat = $2, updated_at = $3 \
                  WHERE id = $1 AND status = 'batched'",
            params: params![id.as_str(), fee_sat, now_ms],
            rows: 1,
            refusal: None,
        }
    }

    /// Marks a queued payout failed; commits with the journal that reverses its hold.
    pub fn onchain_payout_failed(id: &HoldId, reason: &str, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE onchain_payouts SET status = 'failed', failure = $2, updated_at = $3 \
                  WHERE id = $1 AND status = 'queued'",
            params: params![id.as_str(), reason, now_ms],
            rows: 1,
            refusal: Some("the payout is no longer queued"),
        }
    }

    /// Marks a broadcast batch confirmed at `height`; commits with the journal that settles
    /// the difference between the fees charged and the fee paid.
    pub fn onchain_batch_confirmed(id: &str, height: i64, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE onchain_batches SET status = 'confirmed', confirmed_height = $2, updated_at = $3 \
                  WHERE id = $1 AND status = 'broadcast'",
            params: params![id, height, now_ms],
            rows: 1,
            refusal: None,
        }
    }
}

impl Store {
    /// A payout by id.
    pub async fn onchain_payout(&self, id: &HoldId) -> Result<Option<PayoutRecord>, StoreError> {
        let sql = format!("{PAYOUT_COLUMNS} WHERE p.id = $1");
        let row = self.db.query_opt(&sql, params![id.as_str()]).await?;
        row.as_ref().map(decode_payout).transpose()
    }

    /// The payout whose hold `journal` opened.
    pub async fn onchain_payout_opened_by(
        &self,
        journal: flash_core::JournalId,
    ) -> Result<Option<PayoutRecord>, StoreError> {
        let sql = format!("{PAYOUT_COLUMNS} WHERE p.id = (SELECT id FROM holds WHERE open_journal_id = $1)");
        let row = self.db.query_opt(&sql, params![journal.to_string()]).await?;
        row.as_ref().map(decode_payout).transpose()
    }

    /// Payouts in `status`, oldest first, at most `limit`; only of `speed` when given.
    pub async fn onchain_payouts(
        &self,
        status: PayoutStatus,
        speed: Option<PayoutSpeed>,
        limit: i64,
    ) -> Result<Vec<PayoutRecord>, StoreError> {
        let rows = match speed {
            Some(speed) => {
                let sql = format!(
                    "{PAYOUT_COLUMNS} WHERE p.status = $1 AND p.speed = $2 ORDER BY p.created_at, p.id LIMIT $3"
                );
                self.db
                    .query(&sql, params![status.as_str(), speed.as_str(), limit])
                    .await?
            }
            None => {
                let sql = format!("{PAYOUT_COLUMNS} WHERE p.status = $1 ORDER BY p.created_at, p.id LIMIT $2");
                self.db.query(&sql, params![status.as_str(), limit]).await?
            }
        };
        rows.iter().map(decode_payout).collect()
    }

    /// The payouts of a batch.
    pub async fn onchain_batch_payouts(&self, batch_id: &str) -> Result<Vec<PayoutRecord>, StoreError> {
        let sql = format!("{PAYOUT_COLUMNS} WHERE p.batch_id = $1 ORDER BY p.vout");
        let rows = self.db.query(&sql, params![batch_id]).await?;
        rows.iter().map(decode_payout).collect()
    }

    /// Records a signed batch and puts `payouts` (id and output index) in it, in one
    /// transaction: queued payouts become batched; for a replacement, payouts move from the
    /// batch it replaces. Fails, writing nothing, if a payout is not where it should be.
    pub async fn record_onchain_batch(&self, b: &NewBatch, payouts: &[(HoldId, u32)]) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut statements = vec![(
            "INSERT INTO onchain_batches (id, txid, tx_hex, fee_sat, vsize, fee_rate, status, replaces, group_id, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'signed', $7, $8, $9, $9)"
                .to_string(),
            params![
                b.id.as_str(),
                b.txid.as_str(),
                b.tx_hex.as_str(),
                b.fee_sat,
                b.vsize,
                b.fee_rate,
                b.replaces.clone(),
                b.group_id.as_str(),
                now
            ],
        )];
        for (id, vout) in payouts {
            let sql = match &b.replaces {
                None => {
                    "UPDATE onchain_payouts SET status = 'batched', batch_id = $2, vout = $3, updated_at = $4 \
                         WHERE id = $1 AND status = 'queued'"
                }
                Some(_) => {
                    "UPDATE onchain_payouts SET batch_id = $2, vout = $3, updated_at = $4 \
                            WHERE id = $1 AND batch_id = $5"
                }
            };
            let mut p = params![id.as_str(), b.id.as_str(), i64::from(*vout), now];
            if let Some(old) = &b.replaces {
                p.push(old.as_str().into());
            }
            statements.push((sql.to_string(), p));
        }
        self.db.script_exact(statements, 1).await
    }

    /// Of `txids`, those recorded as the bank's own spends of the hot wallet: a payout
    /// transaction or a sweep to cold storage that was signed, broadcast or confirmed (not
    /// failed, not replaced). A transaction the wallet holds but no row names was built and
    /// never recorded.
    pub async fn onchain_spends_recorded(&self, txids: &[String]) -> Result<HashSet<String>, StoreError> {
        if txids.is_empty() {
            return Ok(HashSet::new());
        }
        let list = placeholders(1, txids.len());
        let sql = format!(
            "SELECT txid FROM onchain_batches WHERE txid IN ({list}) AND status IN ('signed', 'broadcast', 'confirmed') \
             UNION SELECT txid FROM onchain_sweeps WHERE txid IN ({list}) AND direction = 'to_cold' \
             AND status IN ('signed', 'broadcast', 'confirmed')"
        );
        let params = txids.iter().map(|t| Value::from(t.as_str())).collect();
        let rows = self.db.query(&sql, params).await?;
        rows.iter().map(|r| r.text(0)).collect()
    }

    /// Batches in `status`, oldest first.
    pub async fn onchain_batches(&self, status: BatchStatus, limit: i64) -> Result<Vec<BatchRecord>, StoreError> {
        let sql = format!("{BATCH_COLUMNS} WHERE status = $1 ORDER BY created_at, id LIMIT $2");
        let rows = self.db.query(&sql, params![status.as_str(), limit]).await?;
        rows.iter().map(decode_batch).collect()
    }

    /// Confirmed batches whose block is at or above `from_height`: a reorganisation could still
    /// take them out of the chain.
    pub async fn onchain_batches_confirmed_since(&self, from_height: u32) -> Result<Vec<BatchRecord>, StoreError> {
        let sql =
            format!("{BATCH_COLUMNS} WHERE status = 'confirmed' AND confirmed_height >= $1 ORDER BY created_at, id");
        let rows = self.db.query(&sql, params![i64::from(from_height)]).await?;
        rows.iter().map(decode_batch).collect()
    }

    /// A confirmed batch whose block left the chain: back to `broadcast` with no height (the
    /// watcher broadcasts it again if the mempool lost it, and confirms it again). With
    /// `height`, the transaction is in another block of the new chain: only its height moves.
    /// Returns whether it changed.
    pub async fn onchain_batch_reorganised(&self, id: &str, height: Option<i64>) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let changed = match height {
            Some(h) => {
                self.db
                    .execute(
                        "UPDATE onchain_batches SET confirmed_height = $2, updated_at = $3 \
                         WHERE id = $1 AND status = 'confirmed'",
                        params![id, h, now],
                    )
                    .await?
            }
            None => {
                self.db
                    .execute(
                        "UPDATE onchain_batches SET status = 'broadcast', confirmed_height = NULL, updated_at = $2 \
                         WHERE id = $1 AND status = 'confirmed'",
                        params![id, now],
                    )
                    .await?
            }
        };
        Ok(changed == 1)
    }

    /// The newest batches, newest first (batch history).
    pub async fn recent_onchain_batches(&self, limit: i64) -> Result<Vec<BatchRecord>, StoreError> {
        let sql = format!("{BATCH_COLUMNS} ORDER BY created_at DESC, id DESC LIMIT $1");
        let rows = self.db.query(&sql, params![limit]).await?;
        rows.iter().map(decode_batch).collect()
    }

    /// A batch by id.
    pub async fn onchain_batch(&self, id: &str) -> Result<Option<BatchRecord>, StoreError> {
        let sql = format!("{BATCH_COLUMNS} WHERE id = $1");
        let row = self.db.query_opt(&sql, params![id]).await?;
        row.as_ref().map(decode_batch).transpose()
    }

    /// Whether a live (signed or broadcast) replacement of batch `id` exists.
    pub async fn onchain_batch_replacement(&self, id: &str) -> Result<bool, StoreError> {
        let sql = "SELECT COUNT(*) FROM onchain_batches WHERE replaces = $1 AND status IN ('signed', 'broadcast')";
        let row = self.db.query_opt(sql, params![id]).await?;
        Ok(row.map_or(Ok(0), |r| r.int(0))? > 0)
    }

    /// Every batch of the same payouts as batch `id` (it and its replacements).
    pub async fn onchain_batch_group(&self, id: &str) -> Result<Vec<BatchRecord>, StoreError> {
        let sql = format!(
            "{BATCH_COLUMNS} WHERE group_id = (SELECT group_id FROM onchain_batches WHERE id = $1) ORDER BY created_at, id"
        );
        let rows = self.db.query(&sql, params![id]).await?;
        rows.iter().map(decode_batch).collect()
    }

    /// Applies a rail record on its own (when no journal goes with it); it must change the rows
    /// it expects.
    pub async fn apply_record(&self, record: Record) -> Result<(), StoreError> {
        let changed = self.db.execute(record.sql, record.params.clone()).await?;
        crate::ledger::check_record(&record, changed)
    }

    /// Marks a signed batch broadcast at tip `height`. Returns whether it changed.
    pub async fn onchain_batch_broadcast(&self, id: &str, height: u32) -> Result<bool, StoreError> {
        let changed = self
            .db
            .execute(
                "UPDATE onchain_batches SET status = 'broadcast', broadcast_height = $2, updated_at = $3 \
                 WHERE id = $1 AND status = 'signed'",
                params![id, i64::from(height), self.now_ms()],
            )
            .await?;
        Ok(changed == 1)
    }

    /// Marks a signed batch refused by the network and puts its payouts back in the queue.
    pub async fn onchain_batch_failed(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        let now = self.now_ms();
        self.db
            .script(vec![
                (
                    "UPDATE onchain_batches SET status = 'failed', failure = $2, updated_at = $3 \
                     WHERE id = $1 AND status = 'signed'"
                        .to_string(),
                    params![id, reason, now],
                ),
                (
                    "UPDATE onchain_payouts SET status = 'queued', batch_id = NULL, vout = NULL, updated_at = $2 \
                     WHERE batch_id = $1 AND status = 'batched'"
                        .to_string(),
                    params![id, now],
                ),
            ])
            .await
            .map(|_| ())
    }

    /// Marks batch `id` replaced (another transaction of its payouts confirmed).
    pub async fn onchain_batch_replaced(&self, id: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE onchain_batches SET status = 'replaced', updated_at = $2 \
                 WHERE id = $1 AND status IN ('signed', 'broadcast')",
                params![id, self.now_ms()],
            )
            .await
            .map(|_| ())
    }

    /// Moves the payouts of batch `from` to batch `to` at the given output indexes (the
    /// transaction of `to` confirmed instead of a replacement).
    pub async fn move_onchain_payouts(&self, from: &str, to: &str, vouts: &[(HoldId, u32)]) -> Result<(), StoreError> {
        let now = self.now_ms();
        let statements = vouts
            .iter()
            .map(|(id, vout)| {
                (
                    "UPDATE onchain_payouts SET batch_id = $2, vout = $3, updated_at = $4 WHERE id = $1 AND batch_id = $5"
                        .to_string(),
                    params![id.as_str(), to, i64::from(*vout), now, from],
                )
            })
            .collect();
        self.db.script_exact(statements, 1).await
    }
}
