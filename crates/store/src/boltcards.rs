//! Flash Cards (Bolt Cards): the cards, the taps whose SUN message checked, and what each tap
//! spent. The merchant crate gives the states their meaning; the bank commits a tap's spend
//! with the payment's money ([`Record::boltcard_spend_taken`]).

use flash_core::{AccountId, WalletId};

use crate::ledger::Record;
use crate::sql::{params, Row};
use crate::{Audit, Store, StoreError};

/// A card as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoltcardRecord {
    /// Its id.
    pub id: String,
    /// The card id derived from the issuer key and the UID (hex); `None` until programmed.
    pub card_key_id: Option<String>,
    /// The owner.
    pub account_id: AccountId,
    /// The wallet it spends from (a pull payment card's: the pull payment's budget wallet).
    pub wallet_id: WalletId,
    /// The pull payment it spends from, for a pull payment's card.
    pub pull_payment_id: Option<String>,
    /// What the owner calls it.
    pub name: String,
    /// `programming`, `active`, `disabled` or `wiped`.
    pub state: String,
    /// How many times this physical card was programmed before under the issuer key.
    pub key_version: i64,
    /// The counter of the last accepted tap.
    pub counter: i64,
    /// Most one tap may spend, sats.
    pub tap_limit_sat: i64,
    /// Most the card may spend in any 24 hours, sats.
    pub day_limit_sat: i64,
    /// The hash of its PIN, when it has one.
    pub pin_hash: Option<String>,
    /// Withdrawals of this much or more need the PIN, sats.
    pub pin_limit_sat: Option<i64>,
    /// Wrong PINs since the last right one.
    pub pin_failures: i64,
    /// The public id of its top-up link.
    pub pay_id: String,
    /// Until when its programming link works, Unix ms (while it has one).
    pub program_expires_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

/// A card to record, waiting to be programmed through a one-time link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBoltcard {
    /// Its id.
    pub id: String,
    /// The owner.
    pub account_id: AccountId,
    /// The wallet it spends from.
    pub wallet_id: WalletId,
    /// What the owner calls it.
    pub name: String,
    /// Most one tap may spend, sats.
    pub tap_limit_sat: i64,
    /// Most the card may spend in any 24 hours, sats.
    pub day_limit_sat: i64,
    /// The public id of its top-up link.
    pub pay_id: String,
    /// The hash of the programming link's secret.
    pub program_secret_hash: String,
    /// Until when the programming link works, Unix ms.
    pub program_expires_at: i64,
}

/// A pull payment's card to record, bound to its physical card already (its card id and key
/// version are known): it spends from the pull payment's budget wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkedBoltcard {
    /// Its id.
    pub id: String,
    /// The owner: the pull payment's store's owner.
    pub account_id: AccountId,
    /// The pull payment's budget wallet.
    pub wallet_id: WalletId,
    /// The pull payment.
    pub pull_payment_id: String,
    /// What it is called (the pull payment's name).
    pub name: String,
    /// Most one tap may spend, sats.
    pub tap_limit_sat: i64,
    /// Most the card may spend in any 24 hours, sats.
    pub day_limit_sat: i64,
    /// The public id of its top-up link (never served for a pull payment's card).
    pub pay_id: String,
    /// The card id derived from the issuer key and the UID (hex).
    pub card_key_id: String,
    /// The key version written to the card.
    pub key_version: i64,
    /// The counter of the last tap seen (0 when none was).
    pub counter: i64,
    /// `programming` (until its first tap with these keys) or `active`.
    pub state: String,
}

/// A tap whose SUN message checked, to record with the card's new counter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewBoltcardTap {
    /// The hash of the `k1` handed to the wallet.
    pub id: String,
    /// The card.
    pub card_id: String,
    /// The tap's counter: strictly above the card's last.
    pub counter: i64,
    /// Most this tap may withdraw, sats.
    pub max_sat: i64,
    /// Until when `k1` may be used, Unix ms.
    pub expires_at: i64,
}

/// A recorded tap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoltcardTapRecord {
    /// The tap as recorded.
    pub tap: NewBoltcardTap,
    /// Unix ms.
    pub created_at: i64,
    /// When a withdrawal used it, Unix ms.
    pub used_at: Option<i64>,
}

/// What a card tap spends with a payment: its tap is used up, and the amount counts toward the
/// card's rolling 24-hour limit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardSpend {
    /// The tap (its id).
    pub tap_id: String,
    /// The card.
    pub card_id: String,
    /// The card's limit over any 24 hours, sats.
    pub day_limit_sat: i64,
}

/// Moves a card (`$1`) of an account (`$2`) to a state (`$3`) at `$4`, unless it is wiped, or
/// it is to be enabled and was never programmed; enabling forgives its wrong PINs.
const SET_STATE_SQL: &str = "UPDATE boltcards SET state = $3, updated_at = $4, program_secret_hash = NULL, \
     program_expires_at = NULL, pin_failures = CASE WHEN $3 = 'active' THEN 0 ELSE pin_failures END \
     WHERE id = $1 AND account_id = $2 AND state <> 'wiped' AND ($3 <> 'active' OR card_key_id IS NOT NULL)";

/// A card's rolling limit window.
pub const CARD_WINDOW_MS: i64 = 24 * 60 * 60 * 1_000;

const CARD_COLUMNS: &str = "SELECT id, card_key_id, account_id, wallet_id, name, state, key_version, counter, \
     tap_limit_sat, day_limit_sat, program_expires_at, created_at, updated_at, pin_hash, pin_limit_sat, \
     pin_failures, pay_id, pull_payment_id FROM boltcards";

fn card_record(r: &Row) -> Result<BoltcardRecord, StoreError> {
    Ok(BoltcardRecord {
        id: r.text(0)?,
        card_key_id: r.opt_text(1)?,
        account_id: r.parse(2)?,
        wallet_id: r.parse(3)?,
        name: r.text(4)?,
        state: r.text(5)?,
        key_version: r.int(6)?,
        counter: r.int(7)?,
        tap_limit_sat: r.int(8)?,
        day_limit_sat: r.int(9)?,
        program_expires_at: r.opt_int(10)?,
        created_at: r.int(11)?,
        updated_at: r.int(12)?,
        pin_hash: r.opt_text(13)?,
        pin_limit_sat: r.opt_int(14)?,
        pin_failures: r.int(15)?,
        pay_id: r.text(16)?,
        pull_payment_id: r.opt_text(17)?,
    })
}

impl Record {
    /// Takes a card tap's spend of `amount_sat` with the payment that moves the money: the card
    /// must still be active (its row is locked first, so a card's spends are decided one at a
    /// time), the tap unused and unexpired, and the card's spends of the last 24 hours with
    /// this one within its limit. Each is a refusal otherwise.
    pub fn boltcard_spend_taken(spend: &CardSpend, amount_sat: i64, now_ms: i64) -> Vec<Record> {
        vec![
            Record {
                sql: "UPDATE boltcards SET updated_at = $2 WHERE id = $1 AND state = 'active'",
                params: params![spend.card_id.as_str(), now_ms],
                rows: 1,
                refusal: Some("the card is not active"),
            },
            Record {
                sql: "UPDATE boltcard_taps SET used_at = $2 WHERE id = $1 AND used_at IS NULL AND expires_at > $2",
                params: params![spend.tap_id.as_str(), now_ms],
                rows: 1,
                refusal: Some("this tap was used already or has expired: tap the card again"),
            },
            Record {
                sql: "INSERT INTO boltcard_spends (tap_id, card_id, amount_sat, spent_at) \
                      SELECT $1, $2, CAST($3 AS BIGINT), CAST($4 AS BIGINT) WHERE CAST(( \
                      SELECT COALESCE(SUM(amount_sat), 0) FROM boltcard_spends WHERE card_id = $2 \
                      AND spent_at > CAST($5 AS BIGINT)) AS BIGINT) + CAST($3 AS BIGINT) <= CAST($6 AS BIGINT)",
                params: params![
                    spend.tap_id.as_str(),
                    spend.card_id.as_str(),
                    amount_sat,
                    now_ms,
                    now_ms - CARD_WINDOW_MS,
                    spend.day_limit_sat
                ],
                rows: 1,
                refusal: Some("the card's 24-hour limit would be exceeded"),
            },
        ]
    }

    /// Gives back the spend of a tap whose payment failed (the tap stays used).
    pub fn boltcard_spend_returned(tap_id: &str) -> Record {
        Record {
            sql: "DELETE FROM boltcard_spends WHERE tap_id = $1",
            params: params![tap_id],
            rows: 1,
            refusal: None,
        }
    }
}

impl Store {
    /// Records a card waiting to be programmed.
    pub async fn boltcard_create(&self, c: &NewBoltcard) -> Result<(), StoreError> {
        let now = self.now_ms();
        self.db
            .execute(
                "INSERT INTO boltcards (id, account_id, wallet_id, name, state, key_version, tap_limit_sat, \
                 day_limit_sat, program_secret_hash, program_expires_at, created_at, updated_at, pay_id) \
                 VALUES ($1, $2, $3, $4, 'programming', 0, $5, $6, $7, $8, $9, $9, $10)",
                params![
                    c.id.as_str(),
                    c.account_id.to_string(),
                    c.wallet_id.to_string(),
                    c.name.as_str(),
                    c.tap_limit_sat,
                    c.day_limit_sat,
                    c.program_secret_hash.as_str(),
                    c.program_expires_at,
                    now,
                    c.pay_id.as_str()
                ],
            )
            .await
            .map(|_| ())
    }

    /// A card by id.
    pub async fn boltcard(&self, id: &str) -> Result<Option<BoltcardRecord>, StoreError> {
        let sql = format!("{CARD_COLUMNS} WHERE id = $1");
        let row = self.db.query_opt(&sql, params![id]).await?;
        row.as_ref().map(card_record).transpose()
    }

    /// The wallet card (not wiped) a top-up link pays into; a pull payment's card has none.
    pub async fn boltcard_by_pay_id(&self, pay_id: &str) -> Result<Option<BoltcardRecord>, StoreError> {
        let sql = format!("{CARD_COLUMNS} WHERE pay_id = $1 AND state <> 'wiped' AND pull_payment_id IS NULL");
        let row = self.db.query_opt(&sql, params![pay_id]).await?;
        row.as_ref().map(card_record).transpose()
    }

    /// The card a programming link opens, while it is unprogrammed.
    pub async fn boltcard_by_program_secret(&self, secret_hash: &str) -> Result<Option<BoltcardRecord>, StoreError> {
        let sql = format!("{CARD_COLUMNS} WHERE program_secret_hash = $1 AND state = 'programming'");
        let row = self.db.query_opt(&sql, params![secret_hash]).await?;
        row.as_ref().map(card_record).transpose()
    }

    /// The card (not wiped) of a derived card id.
    pub async fn boltcard_by_key_id(&self, card_key_id: &str) -> Result<Option<BoltcardRecord>, StoreError> {
        let sql = format!("{CARD_COLUMNS} WHERE card_key_id = $1 AND state <> 'wiped'");
        let row = self.db.query_opt(&sql, params![card_key_id]).await?;
        row.as_ref().map(card_record).transpose()
    }

    /// The newest card (in any state, wiped ones included) of a derived card id.
    pub async fn boltcard_latest_by_key_id(&self, card_key_id: &str) -> Result<Option<BoltcardRecord>, StoreError> {
        let sql = format!("{CARD_COLUMNS} WHERE card_key_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1");
        let row = self.db.query_opt(&sql, params![card_key_id]).await?;
        row.as_ref().map(card_record).transpose()
    }

    /// Wipes a card for a reset through a tap with `counter`: refused (false) unless the counter
    /// is strictly above the card's last, so one tap resets once.
    pub async fn boltcard_reset(&self, id: &str, counter: i64) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE boltcards SET state = 'wiped', counter = $2, updated_at = $3, program_secret_hash = NULL, \
                 program_expires_at = NULL WHERE id = $1 AND counter < $2",
                params![id, counter, self.now_ms()],
            )
            .await?;
        Ok(n == 1)
    }

    /// The highest key version a card id was ever programmed with (wiped cards included).
    pub async fn boltcard_last_version(&self, card_key_id: &str) -> Result<Option<i64>, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT MAX(key_version) FROM boltcards WHERE card_key_id = $1",
                params![card_key_id],
            )
            .await?;
        Ok(row.map(|r| r.opt_int(0)).transpose()?.flatten())
    }

    /// An account's cards, newest first (wiped ones included).
    pub async fn boltcards_of(&self, account: AccountId) -> Result<Vec<BoltcardRecord>, StoreError> {
        let sql = format!("{CARD_COLUMNS} WHERE account_id = $1 ORDER BY created_at DESC, id LIMIT 200");
        let rows = self.db.query(&sql, params![account.to_string()]).await?;
        rows.iter().map(card_record).collect()
    }

    /// Records a pull payment's card, in one transaction with the retirement (`wiped`) of the
    /// live card it `replaces` (the same physical card, moved here by a tap with the new card's
    /// `counter`): refused ([`StoreError::Refused`]) unless that card is still live with a
    /// lower counter; a unique violation when another live card has the card id.
    pub async fn boltcard_link(&self, card: &LinkedBoltcard, replaces: Option<&str>) -> Result<(), StoreError> {
        let now = self.now_ms();
        let mut records = Vec::new();
        if let Some(old) = replaces {
            records.push(Record {
                sql:
                    "UPDATE boltcards SET state = 'wiped', counter = $2, updated_at = $3, program_secret_hash = NULL, \
                      program_expires_at = NULL WHERE id = $1 AND state <> 'wiped' AND counter < $2",
                params: params![old, card.counter, now],
                rows: 1,
                refusal: Some("this tap was seen before: tap the card again"),
            });
        }
        records.push(Record {
            sql: "INSERT INTO boltcards (id, card_key_id, account_id, wallet_id, pull_payment_id, name, state, \
                  key_version, counter, tap_limit_sat, day_limit_sat, pay_id, created_at, updated_at) \
                  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)",
            params: params![
                card.id.as_str(),
                card.card_key_id.as_str(),
                card.account_id.to_string(),
                card.wallet_id.to_string(),
                card.pull_payment_id.as_str(),
                card.name.as_str(),
                card.state.as_str(),
                card.key_version,
                card.counter,
                card.tap_limit_sat,
                card.day_limit_sat,
                card.pay_id.as_str(),
                now
            ],
            rows: 1,
            refusal: None,
        });
        self.db.apply(records).await
    }

    /// Links a live card again (to the same pull payment) for a tap with `counter`: its key
    /// version, state (a disabled card stays disabled) and limits. False unless the card is
    /// still live with a lower counter, so one tap links once.
    pub async fn boltcard_relink(
        &self,
        id: &str,
        counter: i64,
        key_version: i64,
        state: &str,
        tap_limit_sat: i64,
        day_limit_sat: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE boltcards SET counter = $2, key_version = $3, \
                 state = CASE WHEN state = 'disabled' THEN state ELSE $4 END, tap_limit_sat = $5, \
                 day_limit_sat = $6, updated_at = $7 WHERE id = $1 AND state <> 'wiped' AND counter < $2",
                params![
                    id,
                    counter,
                    key_version,
                    state,
                    tap_limit_sat,
                    day_limit_sat,
                    self.now_ms()
                ],
            )
            .await?;
        Ok(n == 1)
    }

    /// Binds a card waiting to be programmed, through its link, to the physical card
    /// `card_key_id` at `key_version`. The link keeps working for that physical card until
    /// its first tap (so the app may try again) and no other. False when the link is not (or
    /// no longer) valid or bound to another card; a unique violation when another card that is
    /// not wiped has that card id.
    pub async fn boltcard_programmed(
        &self,
        id: &str,
        secret_hash: &str,
        card_key_id: &str,
        key_version: i64,
    ) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let n = self
            .db
            .execute(
                "UPDATE boltcards SET card_key_id = $3, key_version = $4, counter = 0, updated_at = $5 \
                 WHERE id = $1 AND program_secret_hash = $2 AND state = 'programming' AND program_expires_at > $5 \
                 AND (card_key_id IS NULL OR (card_key_id = $3 AND key_version = $4))",
                params![id, secret_hash, card_key_id, key_version, now],
            )
            .await?;
        Ok(n == 1)
    }

    /// Records a tap with the card's new counter, in one transaction: refused
    /// ([`StoreError::Refused`]) unless the counter is strictly above the card's last and the
    /// card is programmed (a first tap makes it active and ends its programming link) or
    /// active.
    pub async fn boltcard_tap_accept(&self, t: &NewBoltcardTap) -> Result<(), StoreError> {
        let now = self.now_ms();
        self.db
            .apply(vec![
                Record {
                    sql: "UPDATE boltcards SET counter = $2, updated_at = $3, program_secret_hash = NULL, \
                          program_expires_at = NULL, state = CASE WHEN state = 'programming' THEN 'active' ELSE state END \
                          WHERE id = $1 AND counter < $2 AND card_key_id IS NOT NULL \
                          AND state IN ('programming', 'active')",
                    params: params![t.card_id.as_str(), t.counter, now],
                    rows: 1,
                    refusal: Some("this tap's counter is not above the card's last, or the card is not active"),
                },
                Record {
                    sql: "INSERT INTO boltcard_taps (id, card_id, counter, max_sat, created_at, expires_at) \
                          VALUES ($1, $2, $3, $4, $5, $6)",
                    params: params![
                        t.id.as_str(),
                        t.card_id.as_str(),
                        t.counter,
                        t.max_sat,
                        now,
                        t.expires_at
                    ],
                    rows: 1,
                    refusal: None,
                },
            ])
            .await
    }

    /// A tap by id (the hash of its `k1`).
    pub async fn boltcard_tap(&self, id: &str) -> Result<Option<BoltcardTapRecord>, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT id, card_id, counter, max_sat, expires_at, created_at, used_at FROM boltcard_taps \
                 WHERE id = $1",
                params![id],
            )
            .await?;
        row.map(|r| {
            Ok(BoltcardTapRecord {
                tap: NewBoltcardTap {
                    id: r.text(0)?,
                    card_id: r.text(1)?,
                    counter: r.int(2)?,
                    max_sat: r.int(3)?,
                    expires_at: r.int(4)?,
                },
                created_at: r.int(5)?,
                used_at: r.opt_int(6)?,
            })
        })
        .transpose()
    }

    /// What a card spent after `since_ms`.
    pub async fn boltcard_spent_since(&self, card_id: &str, since_ms: i64) -> Result<i64, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT CAST(COALESCE(SUM(amount_sat), 0) AS BIGINT) FROM boltcard_spends \
                 WHERE card_id = $1 AND spent_at > $2",
                params![card_id, since_ms],
            )
            .await?;
        Ok(row.map(|r| r.int(0)).transpose()?.unwrap_or(0))
    }

    /// Moves one of an account's cards to `state` (`active`, `disabled` or `wiped`), from a
    /// state that allows it: a wiped card never changes again, and only a programmed card is
    /// enabled (which forgives its wrong PINs). Whether it changed.
    pub async fn boltcard_set_state(&self, account: AccountId, id: &str, state: &str) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(SET_STATE_SQL, params![id, account.to_string(), state, self.now_ms()])
            .await?;
        Ok(n == 1)
    }

    /// [`Store::boltcard_set_state`] by an operator: the change and its audit record in one
    /// transaction. Whether it changed.
    pub async fn boltcard_set_state_audited(
        &self,
        account: AccountId,
        id: &str,
        state: &str,
        audit: &Audit,
    ) -> Result<bool, StoreError> {
        let now = self.now_ms();
        let applied = self
            .db
            .apply(vec![
                Record {
                    sql: SET_STATE_SQL,
                    params: params![id, account.to_string(), state, now],
                    rows: 1,
                    refusal: Some("the card cannot change so"),
                },
                Record {
                    sql: "INSERT INTO audit_log (actor, action, subject, detail, created_at) VALUES ($1, $2, $3, $4, $5)",
                    params: params![
                        audit.actor.as_str(),
                        audit.action.as_str(),
                        audit.subject.as_str(),
                        audit.detail.as_str(),
                        now
                    ],
                    rows: 1,
                    refusal: None,
                },
            ])
            .await;
        match applied {
            Ok(()) => Ok(true),
            Err(StoreError::Refused(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Sets one of an account's cards' limits. Whether it changed.
    pub async fn boltcard_set_limits(
        &self,
        account: AccountId,
        id: &str,
        tap_limit_sat: i64,
        day_limit_sat: i64,
    ) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE boltcards SET tap_limit_sat = $3, day_limit_sat = $4, updated_at = $5 \
                 WHERE id = $1 AND account_id = $2 AND state <> 'wiped'",
                params![id, account.to_string(), tap_limit_sat, day_limit_sat, self.now_ms()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Sets (or, with `None`, removes) one of an account's cards' PIN and the amount from which
    /// it is asked; its wrong PINs are forgiven. Whether it changed.
    pub async fn boltcard_set_pin(
        &self,
        account: AccountId,
        id: &str,
        pin: Option<(&str, i64)>,
    ) -> Result<bool, StoreError> {
        let (hash, limit) = match pin {
            Some((hash, limit)) => (Some(hash), Some(limit)),
            None => (None, None),
        };
        let n = self
            .db
            .execute(
                "UPDATE boltcards SET pin_hash = $3, pin_limit_sat = $4, pin_failures = 0, updated_at = $5 \
                 WHERE id = $1 AND account_id = $2 AND state <> 'wiped'",
                params![id, account.to_string(), hash, limit, self.now_ms()],
            )
            .await?;
        Ok(n == 1)
    }

    /// Counts a wrong PIN for a card; at `max_failures` the card is disabled. The wrong PINs
    /// counted now.
    pub async fn boltcard_pin_failed(&self, id: &str, max_failures: i64) -> Result<i64, StoreError> {
        self.db
            .execute(
                "UPDATE boltcards SET pin_failures = pin_failures + 1, updated_at = $3, \
                 state = CASE WHEN pin_failures + 1 >= $2 AND state = 'active' THEN 'disabled' ELSE state END \
                 WHERE id = $1",
                params![id, max_failures, self.now_ms()],
            )
            .await?;
        Ok(self.boltcard(id).await?.map_or(max_failures, |c| c.pin_failures))
    }

    /// Forgives a card's wrong PINs after a right one.
    pub async fn boltcard_pin_passed(&self, id: &str) -> Result<(), StoreError> {
        self.db
            .execute(
                "UPDATE boltcards SET pin_failures = 0 WHERE id = $1 AND pin_failures > 0",
                params![id],
            )
            .await
            .map(|_| ())
    }
}
