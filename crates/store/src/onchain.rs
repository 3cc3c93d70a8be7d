//! On-chain storage: sealed secrets, the hot wallet's recorded state, the deposit address
//! index and deposits.

use flash_core::onchain::{ChainError, WalletStateStore};
use flash_core::ports::BoxFuture;
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

const DEPOSIT_COLUMNS: &str = "SELECT d.outpoint, d.txid, d.address, d.wallet_id, w.account_id, d.amount_sat, \
    d.fee_sat, d.status, d.confirmed_height, d.seen_at, d.review_reason, d.review_hold_id \
    FROM onchain_deposits d JOIN wallets w ON w.id = d.wallet_id";

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

fn chain_storage(e: StoreError) -> ChainError {
    ChainError::Storage(e.to_string())
}

impl WalletStateStore for Store {
    fn load_wallet_state<'a>(&'a self, wallet: &'a str) -> BoxFuture<'a, Result<Vec<String>, ChainError>> {
        Box::pin(async move {
            let rows = self
                .db
                .query(
                    "SELECT change FROM wallet_state WHERE wallet = $1 ORDER BY seq",
                    params![wallet],
                )
                .await
                .map_err(chain_storage)?;
            rows.iter().map(|r| r.text(0).map_err(chain_storage)).collect()
        })
    }

    fn append_wallet_state<'a>(&'a self, wallet: &'a str, change: String) -> BoxFuture<'a, Result<(), ChainError>> {
        Box::pin(async move {
            self.db
                .execute(
                    "INSERT INTO wallet_state (wallet, seq, change) \
                     SELECT $1, COALESCE(MAX(seq), 0) + 1, $2 FROM wallet_state WHERE wallet = $1",
                    params![wallet, change],
                )
                .await
                .map(|_| ())
                .map_err(chain_storage)
        })
    }
}

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

    /// Batches in `status`, oldest first.
    pub async fn onchain_batches(&self, status: BatchStatus, limit: i64) -> Result<Vec<BatchRecord>, StoreError> {
        let sql = format!("{BATCH_COLUMNS} WHERE status = $1 ORDER BY created_at, id LIMIT $2");
        let rows = self.db.query(&sql, params![status.as_str(), limit]).await?;
        rows.iter().map(decode_batch).collect()
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
