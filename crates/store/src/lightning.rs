//! Lightning rail storage: invoices issued to Flash wallets, outgoing payments (sagas whose
//! rows commit with their holds), and the node's settle cursor.

use flash_core::{AccountId, AccountStatus, HoldId, JournalId, WalletId};

use crate::ledger::Record;
use crate::sql::{params, Row};
use crate::{Store, StoreError};

/// An invoice to record when it is issued.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLnInvoice {
    /// Payment hash, hex.
    pub payment_hash: String,
    /// The wallet it pays into.
    pub wallet_id: WalletId,
    /// The BOLT11 text.
    pub payment_request: String,
    /// Its payment secret, hex.
    pub payment_secret: String,
    /// Amount in satoshis, or none for a no-amount invoice.
    pub amount_sat: Option<i64>,
    /// Memo shown to the payer.
    pub memo: Option<String>,
    /// Description hash (hex), for LNURL-pay and zaps.
    pub description_hash: Option<String>,
    /// Who asked for it: `app` (the wallet's owner) or `recipient` (anyone, on the owner's
    /// behalf: `…OnBehalfOfRecipient`, LNURL-pay).
    pub origin: &'static str,
    /// Expiry, Unix ms.
    pub expires_at_ms: i64,
    /// When it was issued (the invoice's own timestamp), Unix ms.
    pub created_at_ms: i64,
}

/// How an invoice was paid.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaidVia {
    /// By the network, through our node.
    Lightning,
    /// By another Flash wallet, inside the ledger.
    IntraLedger,
}

impl PaidVia {
    fn as_str(self) -> &'static str {
        match self {
            PaidVia::Lightning => "lightning",
            PaidVia::IntraLedger => "intraledger",
        }
    }
}

/// A stored invoice, with its wallet's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LnInvoiceRecord {
    /// The invoice as issued.
    pub invoice: NewLnInvoice,
    /// The wallet's account.
    pub account_id: AccountId,
    /// That account's status.
    pub account_status: AccountStatus,
    /// What was received, once paid.
    pub paid_sat: Option<i64>,
    /// When it was paid, Unix ms.
    pub paid_at_ms: Option<i64>,
}

/// Where an outgoing payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LnPaymentStatus {
    /// Held, in flight or not yet tried.
    Pending,
    /// Paid; the hold settled.
    Succeeded,
    /// Not paid; the hold reversed.
    Failed,
}

impl LnPaymentStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            LnPaymentStatus::Pending => "pending",
            LnPaymentStatus::Succeeded => "succeeded",
            LnPaymentStatus::Failed => "failed",
        }
    }
    fn from_stored(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "pending" => LnPaymentStatus::Pending,
            "succeeded" => LnPaymentStatus::Succeeded,
            "failed" => LnPaymentStatus::Failed,
            other => return Err(StoreError::Decode(format!("unexpected payment status {other:?}"))),
        })
    }
}

/// An outgoing payment to record with its hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLnPayment {
    /// The payment's id, which is also its hold's.
    pub id: HoldId,
    /// Payment hash, hex.
    pub payment_hash: String,
    /// The paying wallet; none when the mint pays (a melt, origin `melt:<quote>`), its hold
    /// taken from `mint:outstanding`.
    pub wallet_id: Option<WalletId>,
    /// The BOLT11 text.
    pub payment_request: String,
    /// Amount paid to the payee, satoshis.
    pub amount_sat: i64,
    /// Most the routing may cost, satoshis (held on top of the amount).
    pub max_fee_sat: i64,
    /// What started it, when not the wallet's owner directly: `lnurlw:<link id>`, or
    /// `melt:<quote id>` for the mint.
    pub origin: Option<String>,
}

/// A stored outgoing payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LnPaymentRecord {
    /// What was recorded when it started.
    pub payment: NewLnPayment,
    /// Where it stands.
    pub status: LnPaymentStatus,
    /// Routing fee charged, once succeeded.
    pub fee_sat: Option<i64>,
    /// Preimage (hex), when the node learned one.
    pub preimage: Option<String>,
    /// Why it failed.
    pub failure: Option<String>,
    /// Unix ms.
    pub created_at_ms: i64,
}

/// How a payment ended, to record with the journal that settles or reverses its hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LnPaymentEnd {
    /// Paid with this routing fee.
    Succeeded {
        /// Fee charged, satoshis.
        fee_sat: i64,
        /// Preimage (hex), if known.
        preimage: Option<String>,
    },
    /// Not paid.
    Failed {
        /// Why.
        reason: String,
    },
}

const INVOICE_COLUMNS: &str = "SELECT i.payment_hash, i.wallet_id, i.payment_request, i.amount_sat, i.memo, \
    i.description_hash, i.origin, i.expires_at, i.paid_sat, i.paid_at, i.created_at, a.id, a.status, i.payment_secret \
    FROM ln_invoices i JOIN wallets w ON w.id = i.wallet_id JOIN accounts a ON a.id = w.account_id";

const PAYMENT_COLUMNS: &str = "SELECT id, payment_hash, wallet_id, payment_request, amount_sat, max_fee_sat, \
    status, fee_sat, preimage, failure, created_at, origin FROM ln_payments";

/// Origins an invoice may have, so a stored one maps back to a `&'static str`.
const ORIGINS: [&str; 2] = ["app", "recipient"];

fn decode_invoice(r: &Row) -> Result<LnInvoiceRecord, StoreError> {
    let origin = r.text(6)?;
    let origin = ORIGINS
        .iter()
        .find(|o| **o == origin)
        .ok_or_else(|| StoreError::Decode(format!("unexpected invoice origin {origin:?}")))?;
    Ok(LnInvoiceRecord {
        invoice: NewLnInvoice {
            payment_hash: r.text(0)?,
            wallet_id: r.parse(1)?,
            payment_request: r.text(2)?,
            payment_secret: r.text(13)?,
            amount_sat: r.opt_int(3)?,
            memo: r.opt_text(4)?,
            description_hash: r.opt_text(5)?,
            origin,
            expires_at_ms: r.int(7)?,
            created_at_ms: r.int(10)?,
        },
        paid_sat: r.opt_int(8)?,
        paid_at_ms: r.opt_int(9)?,
        account_id: r.parse(11)?,
        account_status: r.parse(12)?,
    })
}

fn decode_payment(r: &Row) -> Result<LnPaymentRecord, StoreError> {
    Ok(LnPaymentRecord {
        payment: NewLnPayment {
            id: HoldId::new(r.text(0)?),
            payment_hash: r.text(1)?,
            wallet_id: r
                .opt_text(2)?
                .map(|w| {
                    w.parse()
                        .map_err(|_| StoreError::Decode(format!("payment wallet {w:?}")))
                })
                .transpose()?,
            payment_request: r.text(3)?,
            amount_sat: r.int(4)?,
            max_fee_sat: r.int(5)?,
            origin: r.opt_text(11)?,
        },
        status: LnPaymentStatus::from_stored(&r.text(6)?)?,
        fee_sat: r.opt_int(7)?,
        preimage: r.opt_text(8)?,
        failure: r.opt_text(9)?,
        created_at_ms: r.int(10)?,
    })
}

impl Record {
    /// Marks an invoice paid; commits with the journal that credits it (exactly once).
    pub fn ln_invoice_paid(payment_hash: &str, paid_sat: i64, via: PaidVia, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE ln_invoices SET paid_sat = $2, paid_via = $3, paid_at = $4 \
                  WHERE payment_hash = $1 AND paid_at IS NULL",
            params: params![payment_hash, paid_sat, via.as_str(), now_ms],
            rows: 1,
            refusal: None,
        }
    }

    /// Records an outgoing payment; commits with the journal that opens its hold.
    pub fn ln_payment_started(p: &NewLnPayment, now_ms: i64) -> Record {
        Record {
            sql: "INSERT INTO ln_payments (id, payment_hash, wallet_id, payment_request, amount_sat, max_fee_sat, \
                  status, origin, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8, $8)",
            params: params![
                p.id.as_str(),
                p.payment_hash.as_str(),
                p.wallet_id.map(|w| w.to_string()),
                p.payment_request.as_str(),
                p.amount_sat,
                p.max_fee_sat,
                p.origin.clone(),
                now_ms,
            ],
            rows: 1,
            refusal: None,
        }
    }

    /// Takes one use of a withdraw link that is live at `now_ms`; refused when none is left.
    pub fn lnurl_withdraw_use_taken(link: &str, now_ms: i64) -> Record {
        Record {
            sql: "UPDATE lnurl_withdraw_links SET uses_left = uses_left - 1 WHERE id = $1 AND uses_left > 0 \
                  AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
            params: params![link, now_ms],
            rows: 1,
            refusal: Some("the withdraw link is used up, expired or revoked"),
        }
    }

    /// Gives back the use a failed withdrawal took.
    pub fn lnurl_withdraw_use_returned(link: &str) -> Record {
        Record {
            sql: "UPDATE lnurl_withdraw_links SET uses_left = uses_left + 1 WHERE id = $1 AND uses_left < uses_total",
            params: params![link],
            rows: 1,
            refusal: None,
        }
    }

    /// Ends a pending payment; commits with the journal that settles or reverses its hold.
    pub fn ln_payment_ended(id: &HoldId, end: &LnPaymentEnd, now_ms: i64) -> Record {
        let (status, fee, preimage, failure) = match end {
            LnPaymentEnd::Succeeded { fee_sat, preimage } => {
                (LnPaymentStatus::Succeeded, Some(*fee_sat), preimage.clone(), None)
            }
            LnPaymentEnd::Failed { reason } => (LnPaymentStatus::Failed, None, None, Some(reason.clone())),
        };
        Record {
            sql: "UPDATE ln_payments SET status = $2, fee_sat = $3, preimage = $4, failure = $5, updated_at = $6 \
                  WHERE id = $1 AND status = 'pending'",
            params: params![id.as_str(), status.as_str(), fee, preimage, failure, now_ms],
            rows: 1,
            refusal: None,
        }
    }
}

impl Store {
    /// Records an invoice just issued.
    pub async fn insert_ln_invoice(&self, i: &NewLnInvoice) -> Result<(), StoreError> {
        let sql = "INSERT INTO ln_invoices (payment_hash, wallet_id, payment_request, amount_sat, memo, \
                   description_hash, origin, expires_at, created_at, payment_secret) \
                   VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";
        let params = params![
            i.payment_hash.as_str(),
            i.wallet_id.to_string(),
            i.payment_request.as_str(),
            i.amount_sat,
            i.memo.clone(),
            i.description_hash.clone(),
            i.origin,
            i.expires_at_ms,
            i.created_at_ms,
            i.payment_secret.as_str(),
        ];
        self.db.execute(sql, params).await.map(|_| ())
    }

    /// Ends an unpaid invoice at `now_ms`: it expires then. Whether it was unpaid and open.
    pub async fn ln_invoice_withdraw(&self, payment_hash: &str, now_ms: i64) -> Result<bool, StoreError> {
        let n = self
            .db
            .execute(
                "UPDATE ln_invoices SET expires_at = $2 WHERE payment_hash = $1 AND paid_at IS NULL AND expires_at > $2",
                params![payment_hash, now_ms],
            )
            .await?;
        Ok(n == 1)
    }

    /// An invoice issued by this Flash, by payment hash.
    pub async fn ln_invoice(&self, payment_hash: &str) -> Result<Option<LnInvoiceRecord>, StoreError> {
        let sql = format!("{INVOICE_COLUMNS} WHERE i.payment_hash = $1");
        let row = self.db.query_opt(&sql, params![payment_hash]).await?;
        row.as_ref().map(decode_invoice).transpose()
    }

    /// An outgoing payment by id.
    pub async fn ln_payment(&self, id: &HoldId) -> Result<Option<LnPaymentRecord>, StoreError> {
        let sql = format!("{PAYMENT_COLUMNS} WHERE id = $1");
        let row = self.db.query_opt(&sql, params![id.as_str()]).await?;
        row.as_ref().map(decode_payment).transpose()
    }

    /// The payment of `payment_hash` that is in flight or done, if any.
    pub async fn live_ln_payment(&self, payment_hash: &str) -> Result<Option<LnPaymentRecord>, StoreError> {
        let sql = format!("{PAYMENT_COLUMNS} WHERE payment_hash = $1 AND status <> 'failed'");
        let row = self.db.query_opt(&sql, params![payment_hash]).await?;
        row.as_ref().map(decode_payment).transpose()
    }

    /// The payment whose hold `journal` opened.
    pub async fn ln_payment_opened_by(&self, journal: JournalId) -> Result<Option<LnPaymentRecord>, StoreError> {
        let sql = format!("{PAYMENT_COLUMNS} WHERE id = (SELECT id FROM holds WHERE open_journal_id = $1)");
        let row = self.db.query_opt(&sql, params![journal.to_string()]).await?;
        row.as_ref().map(decode_payment).transpose()
    }

    /// Pending payments of wallets, oldest first, at most `limit`. A melt's payment is left
    /// out: the mint finishes it, with its notes (see `pending_melt_quotes`).
    pub async fn pending_ln_payments(&self, limit: i64) -> Result<Vec<LnPaymentRecord>, StoreError> {
        let sql = format!(
            "{PAYMENT_COLUMNS} WHERE status = 'pending' AND wallet_id IS NOT NULL ORDER BY created_at LIMIT $1"
        );
        self.db
            .query(&sql, params![limit])
            .await?
            .iter()
            .map(decode_payment)
            .collect()
    }

    /// The node's settle index up to which every settlement has been credited.
    pub async fn ln_settle_cursor(&self, node: &str) -> Result<u64, StoreError> {
        let row = self
            .db
            .query_opt(
                "SELECT settle_index FROM ln_settle_cursor WHERE node = $1",
                params![node],
            )
            .await?;
        let index = row.map(|r| r.int(0)).transpose()?.unwrap_or(0);
        u64::try_from(index).map_err(|_| StoreError::Decode(format!("negative settle index {index}")))
    }

    /// Moves the settle cursor forward (never back).
    pub async fn advance_ln_settle_cursor(&self, node: &str, index: u64) -> Result<(), StoreError> {
        let index = i64::try_from(index).map_err(|_| StoreError::Decode(format!("settle index {index} too large")))?;
        let sql = "INSERT INTO ln_settle_cursor (node, settle_index) VALUES ($1, $2) ON CONFLICT (node) \
                   DO UPDATE SET settle_index = excluded.settle_index \
                   WHERE ln_settle_cursor.settle_index < excluded.settle_index";
        self.db.execute(sql, params![node, index]).await.map(|_| ())
    }
}

/// An LNURL-withdraw link to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewWithdrawLink {
    /// Public id (for listing and revoking).
    pub id: String,
    /// SHA-256 (hex) of the link's secret; the secret itself is never stored.
    pub secret_hash: String,
    /// The owner.
    pub account_id: AccountId,
    /// The wallet it pays from.
    pub wallet_id: WalletId,
    /// Shown to whoever withdraws (`defaultDescription`).
    pub title: String,
    /// Smallest withdrawal, satoshis.
    pub min_sat: i64,
    /// Largest withdrawal per use, satoshis.
    pub max_sat: i64,
    /// How many withdrawals it allows.
    pub uses: i64,
    /// When it stops working, Unix ms.
    pub expires_at_ms: Option<i64>,
}

/// A stored withdraw link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WithdrawLinkRecord {
    /// The link as created.
    pub link: NewWithdrawLink,
    /// Withdrawals left.
    pub uses_left: i64,
    /// When its owner revoked it.
    pub revoked_at_ms: Option<i64>,
    /// Unix ms.
    pub created_at_ms: i64,
}

const LINK_COLUMNS: &str = "SELECT id, secret_hash, account_id, wallet_id, title, min_sat, max_sat, uses_total, \
    expires_at, uses_left, revoked_at, created_at FROM lnurl_withdraw_links";

fn decode_link(r: &Row) -> Result<WithdrawLinkRecord, StoreError> {
    Ok(WithdrawLinkRecord {
        link: NewWithdrawLink {
            id: r.text(0)?,
            secret_hash: r.text(1)?,
            account_id: r.parse(2)?,
            wallet_id: r.parse(3)?,
            title: r.text(4)?,
            min_sat: r.int(5)?,
            max_sat: r.int(6)?,
            uses: r.int(7)?,
            expires_at_ms: r.opt_int(8)?,
        },
        uses_left: r.int(9)?,
        revoked_at_ms: r.opt_int(10)?,
        created_at_ms: r.int(11)?,
    })
}

impl Store {
    /// Records a new withdraw link.
    pub async fn insert_withdraw_link(&self, l: &NewWithdrawLink) -> Result<(), StoreError> {
        let sql = "INSERT INTO lnurl_withdraw_links (id, secret_hash, account_id, wallet_id, title, min_sat, max_sat, \
                   uses_total, uses_left, expires_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8, $9, $10)";
        let params = params![
            l.id.as_str(),
            l.secret_hash.as_str(),
            l.account_id.to_string(),
            l.wallet_id.to_string(),
            l.title.as_str(),
            l.min_sat,
            l.max_sat,
            l.uses,
            l.expires_at_ms,
            self.now_ms(),
        ];
        self.db.execute(sql, params).await.map(|_| ())
    }

    /// The link whose secret hashes to `secret_hash`.
    pub async fn withdraw_link_by_secret(&self, secret_hash: &str) -> Result<Option<WithdrawLinkRecord>, StoreError> {
        let sql = format!("{LINK_COLUMNS} WHERE secret_hash = $1");
        let row = self.db.query_opt(&sql, params![secret_hash]).await?;
        row.as_ref().map(decode_link).transpose()
    }

    /// An account's links, newest first.
    pub async fn withdraw_links_of(&self, account: AccountId) -> Result<Vec<WithdrawLinkRecord>, StoreError> {
        let sql = format!("{LINK_COLUMNS} WHERE account_id = $1 ORDER BY created_at DESC, id LIMIT 200");
        let rows = self.db.query(&sql, params![account.to_string()]).await?;
        rows.iter().map(decode_link).collect()
    }

    /// Revokes one of an account's links; false when it has no such link.
    pub async fn revoke_withdraw_link(&self, account: AccountId, id: &str) -> Result<bool, StoreError> {
        let sql = "UPDATE lnurl_withdraw_links SET revoked_at = COALESCE(revoked_at, $3) \
                   WHERE id = $1 AND account_id = $2";
        let changed = self
            .db
            .execute(sql, params![id, account.to_string(), self.now_ms()])
            .await?;
        Ok(changed == 1)
    }
}

/// What the liquidity manager did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LiquidityActionKind {
    /// Liquidity left its policy.
    Alert,
    /// A channel was opened (or tried).
    ChannelOpen,
    /// An invoice was issued through a just-in-time channel (inbound bought from an LSP).
    JitInvoice,
}

impl LiquidityActionKind {
    fn as_str(self) -> &'static str {
        match self {
            LiquidityActionKind::Alert => "alert",
            LiquidityActionKind::ChannelOpen => "channel_open",
            LiquidityActionKind::JitInvoice => "jit_invoice",
        }
    }
    fn from_stored(s: &str) -> Result<Self, StoreError> {
        match s {
            "alert" => Ok(LiquidityActionKind::Alert),
            "channel_open" => Ok(LiquidityActionKind::ChannelOpen),
            "jit_invoice" => Ok(LiquidityActionKind::JitInvoice),
            other => Err(StoreError::Decode(format!("unexpected liquidity action {other:?}"))),
        }
    }
}

/// One liquidity-manager action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiquidityAction {
    /// What.
    pub kind: LiquidityActionKind,
    /// The peer of a channel open.
    pub peer: Option<String>,
    /// The channel's size, satoshis (0 for an alert).
    pub amount_sat: i64,
    /// Whether it worked.
    pub ok: bool,
    /// In words.
    pub detail: String,
    /// Unix ms.
    pub created_at_ms: i64,
}

impl Store {
    /// Records a liquidity-manager action, in its own table and in the audit log.
    pub async fn record_liquidity_action(&self, a: &LiquidityAction) -> Result<(), StoreError> {
        let outcome = if a.ok { "ok" } else { "failed" };
        let statements = vec![
            (
                "INSERT INTO ln_liquidity_actions (id, kind, peer, amount_sat, outcome, detail, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)"
                    .to_string(),
                params![
                    uuid::Uuid::now_v7().to_string(),
                    a.kind.as_str(),
                    a.peer.clone(),
                    a.amount_sat,
                    outcome,
                    a.detail.as_str(),
                    a.created_at_ms,
                ],
            ),
            (
                "INSERT INTO audit_log (actor, action, subject, detail, created_at) VALUES ($1, $2, $3, $4, $5)"
                    .to_string(),
                params![
                    "liquidity-manager",
                    format!("lightning.{}", a.kind.as_str()),
                    a.peer.clone().unwrap_or_else(|| "node".into()),
                    format!("{outcome}: {}", a.detail),
                    a.created_at_ms,
                ],
            ),
        ];
        self.db.script(statements).await.map(|_| ())
    }

    /// The latest liquidity-manager actions, newest first.
    pub async fn liquidity_actions(&self, limit: i64) -> Result<Vec<LiquidityAction>, StoreError> {
        let sql = "SELECT kind, peer, amount_sat, outcome, detail, created_at FROM ln_liquidity_actions \
                   ORDER BY created_at DESC, id DESC LIMIT $1";
        self.db
            .query(sql, params![limit])
            .await?
            .iter()
            .map(|r| {
                Ok(LiquidityAction {
                    kind: LiquidityActionKind::from_stored(&r.text(0)?)?,
                    peer: r.opt_text(1)?,
                    amount_sat: r.int(2)?,
                    ok: r.text(3)? == "ok",
                    detail: r.text(4)?,
                    created_at_ms: r.int(5)?,
                })
            })
            .collect()
    }

    /// Satoshis put into channels the manager opened since `since_ms`.
    pub async fn liquidity_opened_since(&self, since_ms: i64) -> Result<i64, StoreError> {
        let sql = "SELECT CAST(COALESCE(SUM(amount_sat), 0) AS BIGINT) FROM ln_liquidity_actions \
                   WHERE kind = 'channel_open' AND outcome = 'ok' AND created_at > $1";
        let row = self.db.query_opt(sql, params![since_ms]).await?;
        Ok(row.map(|r| r.int(0)).transpose()?.unwrap_or(0))
    }
}
