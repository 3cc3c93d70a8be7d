//! Moves between the hot wallet and cold storage (sweeps), from proposal to confirmation.

use crate::ledger::Record;
use crate::sql::{params, Row};
use crate::{Store, StoreError};

/// Which way a sweep moves coins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SweepDirection {
    /// Hot wallet to cold storage.
    ToCold,
    /// Cold storage to the hot wallet.
    ToHot,
}

impl SweepDirection {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            SweepDirection::ToCold => "to_cold",
            SweepDirection::ToHot => "to_hot",
        }
    }
    fn from_stored(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "to_cold" => SweepDirection::ToCold,
            "to_hot" => SweepDirection::ToHot,
            other => return Err(StoreError::Decode(format!("unexpected sweep direction {other:?}"))),
        })
    }
}

/// A move between the hot wallet and cold storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepRecord {
    /// Its id.
    pub id: String,
    /// Which way.
    pub direction: SweepDirection,
    /// Where to.
    pub address: String,
    /// How much arrives there.
    pub amount_sat: i64,
    /// The mining fee.
    pub fee_sat: i64,
    /// The PSBT cosigners sign (cold → hot), base64.
    pub psbt: Option<String>,
    /// The transaction, once signed.
    pub txid: Option<String>,
    /// `awaiting_signatures`, `signed`, `broadcast`, `confirmed` or `failed`.
    pub status: String,
    /// The block that confirmed it.
    pub confirmed_height: Option<i64>,
    /// Unix ms.
    pub created_at_ms: i64,
}

const SWEEP_COLUMNS: &str =
    "SELECT id, direction, address, amount_sat, fee_sat, psbt, txid, status, confirmed_height, \
                             created_at FROM onchain_sweeps";

fn decode_sweep(r: &Row) -> Result<SweepRecord, StoreError> {
    Ok(SweepRecord {
        id: r.text(0)?,
        direction: SweepDirection::from_stored(&r.text(1)?)?,
        address: r.text(2)?,
        amount_sat: r.int(3)?,
        fee_sat: r.int(4)?,
        psbt: r.opt_text(5)?,
        txid: r.opt_text(6)?,
        status: r.text(7)?,
        confirmed_height: r.opt_int(8)?,
        created_at_ms: r.int(9)?,
    })
}

impl Record {
    /// Marks a signed sweep broadcast; commits with the journal that moves its coins between
    /// the hot and cold accounts.
    pub fn onchain_sweep_broadcast(id: &str, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE onchain_sweeps SET status = 'broadcast', updated_at = $2 WHERE id = $1 AND status = 'signed'",
            params: params![id, now_ms],
            rows: 1,
            refusal: None,
        }
    }
}

impl Store {
    /// Records a sweep: signed (`txid`, `tx_hex`) or awaiting signatures (`psbt`).
    pub async fn insert_onchain_sweep(&self, s: &SweepRecord, tx_hex: Option<&str>) -> Result<(), StoreError> {
        self.db
            .execute(
                "INSERT INTO onchain_sweeps (id, direction, address, amount_sat, fee_sat, psbt, txid, tx_hex, status, \
                 created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                params![
                    s.id.as_str(),
                    s.direction.as_str(),
                    s.address.as_str(),
                    s.amount_sat,
                    s.fee_sat,
                    s.psbt.clone(),
                    s.txid.clone(),
                    tx_hex,
                    s.status.as_str(),
                    self.now_ms()
                ],
            )
            .await
            .map(|_| ())
    }

    /// A sweep by id.
    pub async fn onchain_sweep(&self, id: &str) -> Result<Option<SweepRecord>, StoreError> {
        let sql = format!("{SWEEP_COLUMNS} WHERE id = $1");
        let row = self.db.query_opt(&sql, params![id]).await?;
        row.as_ref().map(decode_sweep).transpose()
    }

    /// Sweeps in `status`, oldest first, with their signed transaction (hex) when they have one.
    pub async fn onchain_sweeps(&self, status: &str) -> Result<Vec<(SweepRecord, Option<String>)>, StoreError> {
        let sql = "SELECT id, direction, address, amount_sat, fee_sat, psbt, txid, status, confirmed_height, \
                   created_at, tx_hex FROM onchain_sweeps WHERE status = $1 ORDER BY created_at, id";
        let rows = self.db.query(sql, params![status]).await?;
        rows.iter().map(|r| Ok((decode_sweep(r)?, r.opt_text(10)?))).collect()
    }

    /// The latest sweeps, newest first.
    pub async fn recent_onchain_sweeps(&self, limit: i64) -> Result<Vec<SweepRecord>, StoreError> {
        let sql = format!("{SWEEP_COLUMNS} ORDER BY created_at DESC, id DESC LIMIT $1");
        let rows = self.db.query(&sql, params![limit.clamp(1, 1_000)]).await?;
        rows.iter().map(decode_sweep).collect()
    }

    /// Records the signed transaction of a sweep that awaited signatures.
    pub async fn onchain_sweep_signed(
        &self,
        id: &str,
        txid: &str,
        tx_hex: &str,
        fee_sat: i64,
    ) -> Result<(), StoreError> {
        let record = Record {
            sql: "UPDATE onchain_sweeps SET status = 'signed', txid = $2, tx_hex = $3, fee_sat = $4, updated_at = $5 \
                  WHERE id = $1 AND status = 'awaiting_signatures'",
            params: params![id, txid, tx_hex, fee_sat, self.now_ms()],
            rows: 1,
            refusal: Some("the sweep is not awaiting signatures"),
        };
        self.apply_record(record).await
    }

    /// Marks a broadcast sweep confirmed at `height`.
    pub async fn onchain_sweep_confirmed(&self, id: &str, height: i64) -> Result<(), StoreError> {
        let record = Record {
            sql: "UPDATE onchain_sweeps SET status = 'confirmed', confirmed_height = $2, updated_at = $3 \
                  WHERE id = $1 AND status = 'broadcast'",
            params: params![id, height, self.now_ms()],
            rows: 1,
            refusal: Some("the sweep is not broadcast"),
        };
        self.apply_record(record).await
    }

    /// Marks a sweep that awaits signatures cancelled by the operator (`failed`, with that
    /// reason).
    pub async fn onchain_sweep_cancelled(&self, id: &str) -> Result<(), StoreError> {
        let record = Record {
            sql: "UPDATE onchain_sweeps SET status = 'failed', failure = 'cancelled by the operator', updated_at = $2 \
                  WHERE id = $1 AND status = 'awaiting_signatures'",
            params: params![id, self.now_ms()],
            rows: 1,
            refusal: Some("the sweep is not awaiting signatures"),
        };
        self.apply_record(record).await
    }

    /// Marks a signed sweep refused by the network.
    pub async fn onchain_sweep_failed(&self, id: &str, reason: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE onchain_sweeps SET status = 'failed', failure = $2, updated_at = $3 \
                 WHERE id = $1 AND status IN ('signed', 'awaiting_signatures')",
                params![id, reason, self.now_ms()],
            )
            .await
            .map(|_| ())
    }
}
