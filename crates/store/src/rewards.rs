//! Rewards programs (a budget set aside for customers' rewards) and their grants. A grant's
//! update of its program's `granted_sat` is the guard that keeps a program within its budget
//! and the lock that decides one program's grants one at a time; the unique (program, purchase)
//! pair makes a purchase rewarded once; the customer's cap and cooldown are checked in the
//! grant's own insert, under that lock. The webhook events a grant causes (80 % of the budget
//! granted, the budget granted out) are written by the grant that crosses the line, in its
//! transaction.

use crate::ledger::{Record, ANY_ROWS};
use crate::merchant_invoices::event_record;
use crate::merchant_payouts::payout_inserted;
use crate::sql::{params, Row};
use crate::{MerchantPayoutRecord, NewMerchantEvent, Store, StoreError};
use flash_core::{AccountId, WalletId};
use std::sync::LazyLock;

/// A rewards program as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewardProgramRecord {
    /// Its id.
    pub id: String,
    /// The account that funds it.
    pub account_id: AccountId,
    /// The store whose purchases it rewards; `None` for a referral program.
    pub store_id: Option<String>,
    /// Its name, shown to customers.
    pub name: String,
    /// The wallet it was funded from, where what is left goes back.
    pub source_wallet: WalletId,
    /// The budget wallet holding what is left to pay.
    pub budget_wallet: WalletId,
    /// Its budget, satoshis.
    pub budget_sat: i64,
    /// What it granted so far (paid or owed as claim links), satoshis.
    pub granted_sat: i64,
    /// Cashback: basis points of the purchase.
    pub rate_bps: Option<i64>,
    /// A fixed reward, satoshis (for a referral program: the invitee's).
    pub fixed_sat: Option<i64>,
    /// Whether only purchases paid with a Flash Card are rewarded.
    pub card_only: bool,
    /// The smallest purchase rewarded, satoshis.
    pub min_purchase_sat: i64,
    /// The smallest reward (a smaller cashback is raised to it), satoshis.
    pub min_reward_sat: i64,
    /// The largest reward, satoshis.
    pub max_reward_sat: Option<i64>,
    /// The most one customer gets from the program, satoshis.
    pub customer_cap_sat: Option<i64>,
    /// The least time between two rewards of one customer, ms.
    pub cooldown_ms: Option<i64>,
    /// A referral program's level the invitee must reach.
    pub referral_level: Option<i64>,
    /// A referral program's reward to the inviter, satoshis.
    pub inviter_sat: Option<i64>,
    /// How long a claim link may be claimed, ms.
    pub claim_ms: i64,
    /// Unix ms from which it rewards.
    pub starts_at: i64,
    /// Unix ms from which it no longer rewards.
    pub ends_at: Option<i64>,
    /// Whether it has ended (granted out, past `ends_at`, or ended by its owner).
    pub ended: bool,
    /// What went back to the source wallet, satoshis.
    pub returned_sat: i64,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A grant: one purchase's (or referral's) reward.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewardGrantRecord {
    /// Its id.
    pub id: String,
    /// The program.
    pub program_id: String,
    /// What it rewards: an invoice id, `referral:<account>` or `inviter:<account>`.
    pub purchase: String,
    /// `account:<id>` or `card:<id>` when the customer is known.
    pub customer: Option<String>,
    /// The reward, satoshis.
    pub amount_sat: i64,
    /// The wallet it was paid into, or `None` for a claim link.
    pub wallet_id: Option<WalletId>,
    /// A claim link's id (its bearer may claim it).
    pub claim_id: Option<String>,
    /// Unix ms from which a claim link may no longer be claimed.
    pub expires_at: Option<i64>,
    /// The payout a claim link became.
    pub payout_id: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// Why a grant was refused: the program has ended, is not running, or has less left.
pub const REWARD_PROGRAM_SHORT: &str = "the program has ended or has not that much left";
/// Why a grant was refused: the customer reached the program's cap or is within its cooldown.
pub const REWARD_CUSTOMER_LIMITED: &str = "the customer had the program's most, or a reward too recently";

/// The webhook events a grant may cause, each written only by the grant that crosses its line.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantEvents {
    /// When 80 % of the budget is granted.
    pub budget_low: Option<NewMerchantEvent>,
    /// When the whole budget is granted (the program ends).
    pub ended: Option<NewMerchantEvent>,
}

const PROGRAM_COLUMNS: &str = "SELECT id, account_id, store_id, name, source_wallet, budget_wallet, budget_sat, \
    granted_sat, rate_bps, fixed_sat, card_only, min_purchase_sat, min_reward_sat, max_reward_sat, customer_cap_sat, \
    cooldown_ms, referral_level, inviter_sat, claim_ms, starts_at, ends_at, state, returned_sat, created_at, \
    updated_at FROM reward_programs";

fn program(r: &Row) -> Result<RewardProgramRecord, StoreError> {
    Ok(RewardProgramRecord {
        id: r.text(0)?,
        account_id: r.parse(1)?,
        store_id: r.opt_text(2)?,
        name: r.text(3)?,
        source_wallet: r.parse(4)?,
        budget_wallet: r.parse(5)?,
        budget_sat: r.int(6)?,
        granted_sat: r.int(7)?,
        rate_bps: r.opt_int(8)?,
        fixed_sat: r.opt_int(9)?,
        card_only: r.int(10)? != 0,
        min_purchase_sat: r.int(11)?,
        min_reward_sat: r.int(12)?,
        max_reward_sat: r.opt_int(13)?,
        customer_cap_sat: r.opt_int(14)?,
        cooldown_ms: r.opt_int(15)?,
        referral_level: r.opt_int(16)?,
        inviter_sat: r.opt_int(17)?,
        claim_ms: r.int(18)?,
        starts_at: r.int(19)?,
        ends_at: r.opt_int(20)?,
        ended: r.text(21)? == "ended",
        returned_sat: r.int(22)?,
        created_at: r.int(23)?,
        updated_at: r.int(24)?,
    })
}

const GRANT_COLUMNS: &str = "SELECT id, program_id, purchase, customer, amount_sat, wallet_id, claim_id, expires_at, \
    payout_id, created_at FROM reward_grants";

fn grant(r: &Row) -> Result<RewardGrantRecord, StoreError> {
    Ok(RewardGrantRecord {
        id: r.text(0)?,
        program_id: r.text(1)?,
        purchase: r.text(2)?,
        customer: r.opt_text(3)?,
        amount_sat: r.int(4)?,
        wallet_id: r.opt_parse(5)?,
        claim_id: r.opt_text(6)?,
        expires_at: r.opt_int(7)?,
        payout_id: r.opt_text(8)?,
        created_at: r.int(9)?,
    })
}

/// What a program owes besides its grants paid, SQL over `program` (its id), `now` (Unix ms)
/// and `wallet` (its budget wallet): its unexpired claim links not yet claimed and its payouts
/// not yet paid.
fn owed(program: &str, now: &str, wallet: &str) -> String {
    format!(
        "CAST(COALESCE((SELECT SUM(amount_sat) FROM reward_grants WHERE program_id = {program} AND claim_id \
         IS NOT NULL AND payout_id IS NULL AND expires_at > {now}), 0) + COALESCE((SELECT SUM(amount_sat) FROM \
         merchant_payouts WHERE wallet_id = {wallet} AND state IN ('AwaitingApproval', 'AwaitingPayment')), 0) \
         AS BIGINT)"
    )
}

/// [`Record::reward_program_returned`]'s statement.
static RETURNED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE reward_programs SET returned_sat = returned_sat + $4, updated_at = $2 WHERE id = $1 AND state = \
         'ended' AND (SELECT balance FROM ledger_accounts WHERE id = $3) >= {}",
        owed("$1", "$2", "$3")
    )
});

/// A conditional event: written only when `condition` (over the program's row, `$5` the
/// program, `$6` the grant's amount) holds after the grant.
fn event_when(e: &NewMerchantEvent, program_id: &str, amount_sat: i64, now_ms: i64, sql: &'static str) -> Record {
    Record {
        sql,
        params: params![
            e.store_id.as_str(),
            e.event_type.as_str(),
            e.payload.as_str(),
            now_ms,
            program_id,
            amount_sat
        ],
        rows: ANY_ROWS,
        refusal: None,
    }
}

impl Record {
    /// Inserts a rewards program; commits with the journal that funds its budget wallet.
    pub fn reward_program_created(p: &RewardProgramRecord) -> Record {
        Record {
            sql: "INSERT INTO reward_programs (id, account_id, store_id, name, kind, source_wallet, budget_wallet, \
                  budget_sat, granted_sat, rate_bps, fixed_sat, card_only, min_purchase_sat, min_reward_sat, \
                  max_reward_sat, customer_cap_sat, cooldown_ms, referral_level, inviter_sat, claim_ms, starts_at, \
                  ends_at, state, returned_sat, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, \
                  $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)",
            params: params![
                p.id.as_str(),
                p.account_id.to_string(),
                p.store_id.clone(),
                p.name.as_str(),
                if p.store_id.is_some() { "purchase" } else { "referral" },
                p.source_wallet.to_string(),
                p.budget_wallet.to_string(),
                p.budget_sat,
                p.granted_sat,
                p.rate_bps,
                p.fixed_sat,
                i64::from(p.card_only),
                p.min_purchase_sat,
                p.min_reward_sat,
                p.max_reward_sat,
                p.customer_cap_sat,
                p.cooldown_ms,
                p.referral_level,
                p.inviter_sat,
                p.claim_ms,
                p.starts_at,
                p.ends_at,
                if p.ended { "ended" } else { "active" },
                p.returned_sat,
                p.created_at,
                p.updated_at
            ],
            rows: 1,
            refusal: None,
        }
    }

    /// Records a grant of program `p` with the events it may cause: refused when the program
    /// has ended, is not running at the grant's time or has less than the grant left, or when
    /// the customer had the program's most or a reward within its cooldown. Commits with the
    /// journal that pays the grant, or alone for a claim link.
    pub fn reward_granted(g: &RewardGrantRecord, p: &RewardProgramRecord, events: &GrantEvents) -> Vec<Record> {
        let now = g.created_at;
        let mut records = vec![
            Record {
                sql: "UPDATE reward_programs SET granted_sat = granted_sat + $2, state = CASE WHEN granted_sat + $2 \
                      = budget_sat THEN 'ended' ELSE state END, updated_at = $3 WHERE id = $1 AND state = 'active' \
                      AND starts_at <= $3 AND (ends_at IS NULL OR ends_at > $3) AND granted_sat + $2 <= budget_sat",
                params: params![g.program_id.as_str(), g.amount_sat, now],
                rows: 1,
                refusal: Some(REWARD_PROGRAM_SHORT),
            },
            Record {
                sql: "INSERT INTO reward_grants (id, program_id, purchase, customer, amount_sat, wallet_id, \
                      claim_id, expires_at, payout_id, created_at) SELECT $1, $2, $3, $4, CAST($5 AS BIGINT), $6, \
                      $7, CAST($8 AS BIGINT), $12, CAST($9 AS BIGINT) WHERE CAST((SELECT COALESCE(SUM(amount_sat), 0) FROM \
                      reward_grants WHERE program_id = $2 AND customer = $4) AS BIGINT) + CAST($5 AS BIGINT) <= \
                      CAST($10 AS BIGINT) AND NOT EXISTS (SELECT 1 FROM reward_grants WHERE program_id = $2 AND \
                      customer = $4 AND created_at > CAST($11 AS BIGINT))",
                params: params![
                    g.id.as_str(),
                    g.program_id.as_str(),
                    g.purchase.as_str(),
                    g.customer.clone(),
                    g.amount_sat,
                    g.wallet_id.map(|w| w.to_string()),
                    g.claim_id.clone(),
                    g.expires_at,
                    now,
                    p.customer_cap_sat.unwrap_or(i64::MAX),
                    p.cooldown_ms.map_or(i64::MAX, |c| now.saturating_sub(c)),
                    g.payout_id.clone()
                ],
                rows: 1,
                refusal: Some(REWARD_CUSTOMER_LIMITED),
            },
        ];
        if let Some(e) = &events.budget_low {
            records.push(event_when(
                e,
                &g.program_id,
                g.amount_sat,
                now,
                "INSERT INTO merchant_events (store_id, event_type, payload, created_at) SELECT $1, $2, $3, \
                 CAST($4 AS BIGINT) FROM reward_programs WHERE id = $5 AND granted_sat * 5 >= budget_sat * 4 \
                 AND (granted_sat - CAST($6 AS BIGINT)) * 5 < budget_sat * 4",
            ));
        }
        if let Some(e) = &events.ended {
            records.push(event_when(
                e,
                &g.program_id,
                g.amount_sat,
                now,
                "INSERT INTO merchant_events (store_id, event_type, payload, created_at) SELECT $1, $2, $3, \
                 CAST($4 AS BIGINT) FROM reward_programs WHERE id = $5 AND granted_sat = budget_sat \
                 AND CAST($6 AS BIGINT) > 0",
            ));
        }
        records
    }

    /// Counts `amount_sat` going back from an ended program's budget to its source; commits
    /// with that journal, refused unless the budget still covers what the program owes.
    pub fn reward_program_returned(p: &RewardProgramRecord, amount_sat: i64, now_ms: i64) -> Record {
        Record {
            sql: RETURNED.as_str(),
            params: params![p.id.as_str(), now_ms, p.budget_wallet.to_string(), amount_sat],
            rows: 1,
            refusal: Some("the program's claims and payouts need this money"),
        }
    }
}

impl Store {
    /// A rewards program by id.
    pub async fn reward_program(&self, id: &str) -> Result<Option<RewardProgramRecord>, StoreError> {
        let sql = format!("{PROGRAM_COLUMNS} WHERE id = $1");
        self.db
            .query_opt(&sql, params![id])
            .await?
            .as_ref()
            .map(program)
            .transpose()
    }

    /// The programs an account funds, newest first.
    pub async fn reward_programs_of(&self, account_id: AccountId) -> Result<Vec<RewardProgramRecord>, StoreError> {
        let sql = format!("{PROGRAM_COLUMNS} WHERE account_id = $1 ORDER BY created_at DESC, id");
        self.programs(&sql, params![account_id.to_string()]).await
    }

    /// A store's programs, newest first.
    pub async fn reward_programs_of_store(&self, store_id: &str) -> Result<Vec<RewardProgramRecord>, StoreError> {
        let sql = format!("{PROGRAM_COLUMNS} WHERE store_id = $1 ORDER BY created_at DESC, id");
        self.programs(&sql, params![store_id]).await
    }

    /// The programs rewarding at `now_ms`: a store's purchase programs, or (`None`) the
    /// referral programs.
    pub async fn reward_programs_running(
        &self,
        store_id: Option<&str>,
        now_ms: i64,
    ) -> Result<Vec<RewardProgramRecord>, StoreError> {
        let running = "state = 'active' AND starts_at <= $1 AND (ends_at IS NULL OR ends_at > $1)";
        match store_id {
            Some(store) => {
                let sql = format!("{PROGRAM_COLUMNS} WHERE store_id = $2 AND {running} ORDER BY created_at, id");
                self.programs(&sql, params![now_ms, store]).await
            }
            None => {
                let sql = format!("{PROGRAM_COLUMNS} WHERE store_id IS NULL AND {running} ORDER BY created_at, id");
                self.programs(&sql, params![now_ms]).await
            }
        }
    }

    async fn programs(
        &self,
        sql: &str,
        params: Vec<crate::sql::Value>,
    ) -> Result<Vec<RewardProgramRecord>, StoreError> {
        self.db.query(sql, params).await?.iter().map(program).collect()
    }

    /// Ends a program (its owner's choice, or its end time passed), with its event; `false`
    /// when it had ended already.
    pub async fn reward_program_end(
        &self,
        id: &str,
        event: Option<&NewMerchantEvent>,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let mut records = vec![Record {
            sql: "UPDATE reward_programs SET state = 'ended', updated_at = $2 WHERE id = $1 AND state = 'active'",
            params: params![id, now_ms],
            rows: 1,
            refusal: Some("the program has ended already"),
        }];
        records.extend(event.map(|e| event_record(e, now_ms)));
        match self.db.apply(records).await {
            Ok(()) => Ok(true),
            Err(StoreError::Refused(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Programs still active whose end time passed.
    pub async fn reward_programs_due(&self, now_ms: i64, limit: i64) -> Result<Vec<RewardProgramRecord>, StoreError> {
        let sql = format!("{PROGRAM_COLUMNS} WHERE state = 'active' AND ends_at <= $1 ORDER BY ends_at LIMIT $2");
        self.programs(&sql, params![now_ms, limit]).await
    }

    /// Ended programs whose budget holds more than they owe.
    pub async fn reward_programs_to_return(
        &self,
        now_ms: i64,
        limit: i64,
    ) -> Result<Vec<RewardProgramRecord>, StoreError> {
        let owed = owed("reward_programs.id", "$1", "reward_programs.budget_wallet");
        let sql = format!(
            "{PROGRAM_COLUMNS} WHERE state = 'ended' AND (SELECT balance FROM ledger_accounts WHERE id = \
             reward_programs.budget_wallet) > {owed} ORDER BY updated_at LIMIT $2"
        );
        self.programs(&sql, params![now_ms, limit]).await
    }

    /// What a program owes besides its paid grants: claim links not yet claimed or expired,
    /// payouts not yet paid, satoshis.
    pub async fn reward_program_owed(&self, p: &RewardProgramRecord, now_ms: i64) -> Result<i64, StoreError> {
        let sql = format!("SELECT {}", owed("$1", "$2", "$3"));
        match self
            .db
            .query_opt(&sql, params![p.id.as_str(), now_ms, p.budget_wallet.to_string()])
            .await?
        {
            Some(r) => r.int(0),
            None => Ok(0),
        }
    }

    /// Records a grant that moves no money yet, with its events: a claim link, or `payout` (with
    /// its own events) to pay it; refused as [`Record::reward_granted`] says, or as a unique
    /// violation when the purchase has its grant.
    pub async fn reward_grant_owed(
        &self,
        g: &RewardGrantRecord,
        p: &RewardProgramRecord,
        events: &GrantEvents,
        payout: Option<(&MerchantPayoutRecord, &[NewMerchantEvent])>,
    ) -> Result<(), StoreError> {
        let mut records = Vec::new();
        if let Some((payout, payout_events)) = payout {
            records.push(payout_inserted(payout));
            records.extend(payout_events.iter().map(|e| event_record(e, payout.created_at)));
        }
        records.extend(Record::reward_granted(g, p, events));
        self.db.apply(records).await
    }

    /// A program's grant for a purchase.
    pub async fn reward_grant(
        &self,
        program_id: &str,
        purchase: &str,
    ) -> Result<Option<RewardGrantRecord>, StoreError> {
        let sql = format!("{GRANT_COLUMNS} WHERE program_id = $1 AND purchase = $2");
        self.db
            .query_opt(&sql, params![program_id, purchase])
            .await?
            .as_ref()
            .map(grant)
            .transpose()
    }

    /// The grants of a store's programs for one purchase, oldest first.
    pub async fn reward_grants_of_purchase(
        &self,
        store_id: &str,
        purchase: &str,
    ) -> Result<Vec<RewardGrantRecord>, StoreError> {
        let sql = format!(
            "{GRANT_COLUMNS} WHERE purchase = $2 AND program_id IN (SELECT id FROM reward_programs WHERE \
             store_id = $1) ORDER BY created_at, id"
        );
        self.db
            .query(&sql, params![store_id, purchase])
            .await?
            .iter()
            .map(grant)
            .collect()
    }

    /// The grant of a claim link, by its id.
    pub async fn reward_grant_by_claim(&self, claim_id: &str) -> Result<Option<RewardGrantRecord>, StoreError> {
        let sql = format!("{GRANT_COLUMNS} WHERE claim_id = $1");
        self.db
            .query_opt(&sql, params![claim_id])
            .await?
            .as_ref()
            .map(grant)
            .transpose()
    }

    /// A program's grants, newest first, at most `limit`.
    pub async fn reward_grants_of(&self, program_id: &str, limit: i64) -> Result<Vec<RewardGrantRecord>, StoreError> {
        let sql = format!("{GRANT_COLUMNS} WHERE program_id = $1 ORDER BY created_at DESC, id LIMIT $2");
        self.db
            .query(&sql, params![program_id, limit])
            .await?
            .iter()
            .map(grant)
            .collect()
    }

    /// How many grants a program made.
    pub async fn reward_grant_count(&self, program_id: &str) -> Result<i64, StoreError> {
        let sql = "SELECT CAST(COUNT(*) AS BIGINT) FROM reward_grants WHERE program_id = $1";
        match self.db.query_opt(sql, params![program_id]).await? {
            Some(r) => r.int(0),
            None => Ok(0),
        }
    }

    /// Claims a claim link: its grant becomes `payout` (a store payout from the program's
    /// budget), with its events; refused when it was claimed already or has expired.
    pub async fn reward_claim(
        &self,
        claim_id: &str,
        payout: &MerchantPayoutRecord,
        events: &[NewMerchantEvent],
    ) -> Result<(), StoreError> {
        let now = payout.created_at;
        let mut records = vec![
            payout_inserted(payout),
            Record {
                sql: "UPDATE reward_grants SET payout_id = $2 WHERE claim_id = $1 AND payout_id IS NULL \
                      AND expires_at > $3",
                params: params![claim_id, payout.id.as_str(), now],
                rows: 1,
                refusal: Some("the reward was claimed already or its link expired"),
            },
        ];
        records.extend(events.iter().map(|e| event_record(e, now)));
        self.db.apply(records).await
    }

    /// Sets who invited an account, once, while its level is below `below_level`; `false` when
    /// it was set already (or the account is the inviter, or has that level).
    pub async fn set_referred_by(
        &self,
        account: AccountId,
        inviter: AccountId,
        below_level: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE accounts SET referred_by = $2, referred_at = $3 WHERE id = $1 AND referred_by IS NULL \
                 AND id <> $2 AND level < $4",
                params![account.to_string(), inviter.to_string(), self.now_ms(), below_level],
            )
            .await?;
        Ok(n == 1)
    }

    /// Invitees a referral program still has to reward: accounts that named their inviter since
    /// `since` (Unix ms) and reached `level`, without the program's grant for `last_purchase`
    /// followed by their id (the last grant of a referral). Each as (invitee, inviter).
    pub async fn referrals_due(
        &self,
        program_id: &str,
        level: i64,
        since: i64,
        last_purchase: &str,
        limit: i64,
    ) -> Result<Vec<(AccountId, AccountId)>, StoreError> {
        let rows = self
            .db
            .query(
                "SELECT a.id, a.referred_by FROM accounts a WHERE a.referred_by IS NOT NULL AND a.referred_at >= $3 \
                 AND a.level >= $2 AND NOT EXISTS (SELECT 1 FROM reward_grants g WHERE g.program_id = $1 AND \
                 g.purchase = CAST($4 AS TEXT) || a.id) ORDER BY a.referred_at, a.id LIMIT $5",
                params![program_id, level, since, last_purchase, limit],
            )
            .await?;
        rows.iter().map(|r| Ok((r.parse(0)?, r.parse(1)?))).collect()
    }

    /// The referral programs (programs without a store), newest first.
    pub async fn reward_referral_programs(&self) -> Result<Vec<RewardProgramRecord>, StoreError> {
        let sql = format!("{PROGRAM_COLUMNS} WHERE store_id IS NULL ORDER BY created_at DESC, id");
        self.programs(&sql, Vec::new()).await
    }
}
