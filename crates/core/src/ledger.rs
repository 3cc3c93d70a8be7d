//! The double-entry ledger as a pure state machine.
//!
//! A [`JournalRequest`] asks for one movement of money. [`needs`] lists what a batch of
//! requests touches; the store loads exactly that into a [`Snapshot`] (inside the write
//! transaction, with the rows locked), and [`apply_batch`] decides each request in order,
//! updating the snapshot as it goes, so later requests in the batch see earlier ones. The
//! result is one [`Outcome`] per request and a [`WriteSet`] the store writes in the same
//! transaction. A request that fails changes nothing.
//!
//! Invariants this module asserts (see `docs/ledger.md`):
//! 1. every journal's entries sum to zero per currency;
//! 2. a wallet account never goes below zero;
//! 3. a hold is opened once and closed (settled or reversed) at most once;
//! 4. an idempotency key posts at most one journal; a retry with the same request gets the
//!    first journal back, with a different request it is refused;
//! 5. a limit's usage in its window never exceeds the limit.

use crate::ErrorCode;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::{HoldId, JournalId, LedgerAccountId};
use crate::limits::LimitKind;
use crate::money::{Currency, MAX_SATS};

/// Largest number of requests one batch may carry.
pub const BATCH_REQUESTS_MAX: usize = 2_048;

/// Whether an account may go negative.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AccountKind {
    /// A user wallet: a liability of the bank, never negative.
    Wallet,
    /// A bank-owned account (assets, pending, revenue, faucet): may go negative.
    System,
}

/// What kind of movement a journal records. Stored as [`JournalKind::as_str`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum JournalKind {
    /// A payment between two Flash wallets.
    IntraLedger,
    /// Dev/regtest faucet credit (`walletFund`).
    DevFaucet,
    /// Funds moved from a wallet to a pending account for an outgoing payment.
    HoldOpen,
    /// A hold's funds paid out (and any unused part returned).
    HoldSettle,
    /// A hold's funds returned to the wallet.
    HoldReverse,
    /// A Lightning payment received from outside Flash.
    LnReceive,
    /// An on-chain deposit, credited after its confirmations.
    OnchainReceive,
    /// Ecash: balance turned into notes or notes redeemed, a mint quote paid or issued, a
    /// melt, or a mint fee.
    Ecash,
}

impl JournalKind {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            JournalKind::IntraLedger => "intraledger",
            JournalKind::DevFaucet => "dev_faucet",
            JournalKind::HoldOpen => "hold_open",
            JournalKind::HoldSettle => "hold_settle",
            JournalKind::HoldReverse => "hold_reverse",
            JournalKind::LnReceive => "ln_receive",
            JournalKind::OnchainReceive => "onchain_receive",
            JournalKind::Ecash => "ecash",
        }
    }

    /// True for money that already arrived from outside the bank (a Lightning receipt, a
    /// confirmed deposit): the liability must be recorded even when the receiving account is
    /// locked or closed.
    pub fn receives_from_outside(self) -> bool {
        matches!(self, JournalKind::LnReceive | JournalKind::OnchainReceive)
    }

    /// Parses the stored form.
    pub fn from_stored(s: &str) -> Option<Self> {
        Some(match s {
            "intraledger" => JournalKind::IntraLedger,
            "dev_faucet" => JournalKind::DevFaucet,
            "hold_open" => JournalKind::HoldOpen,
            "hold_settle" => JournalKind::HoldSettle,
            "hold_reverse" => JournalKind::HoldReverse,
            "ln_receive" => JournalKind::LnReceive,
            "onchain_receive" => JournalKind::OnchainReceive,
            "ecash" => JournalKind::Ecash,
            _ => return None,
        })
    }
}

/// A hold's life: opened, then settled or reversed exactly once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum HoldStatus {
    /// Funds are held.
    Pending,
    /// Paid out.
    Settled,
    /// Returned to the wallet.
    Reversed,
}

impl HoldStatus {
    /// Stored form.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldStatus::Pending => "pending",
            HoldStatus::Settled => "settled",
            HoldStatus::Reversed => "reversed",
        }
    }
    /// Parses the stored form.
    pub fn from_stored(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => HoldStatus::Pending,
            "settled" => HoldStatus::Settled,
            "reversed" => HoldStatus::Reversed,
            _ => return None,
        })
    }
}

/// Scopes an idempotency key: keys of different scopes (accounts) never collide.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdempotencyKey {
    /// Who the key belongs to, e.g. an account id or `admin`.
    pub scope: String,
    /// The caller's key.
    pub key: String,
}

/// The movement a request asks for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LedgerOp {
    /// `amount` from `from` to `to`; `fee` more from `from` to `fee_to`.
    Transfer {
        /// Debited account.
        from: LedgerAccountId,
        /// Credited account.
        to: LedgerAccountId,
        /// Amount credited to `to`.
        amount: i64,
        /// Fee charged to `from` on top of `amount`, credited to `fee_to`.
        fee: i64,
        /// Where the fee goes; required when `fee > 0`.
        fee_to: Option<LedgerAccountId>,
    },
    /// Moves `amount` from `wallet` to `pending` and records hold `hold`.
    HoldOpen {
        /// The hold's id (unique forever).
        hold: HoldId,
        /// The paying wallet.
        wallet: LedgerAccountId,
        /// The pending account that holds the funds.
        pending: LedgerAccountId,
        /// Amount held.
        amount: i64,
    },
    /// Pays `used` of the hold to `to`, `keep` of it to `keep_to`, and returns the rest to the
    /// wallet.
    HoldSettle {
        /// The hold.
        hold: HoldId,
        /// Where the used part goes.
        to: LedgerAccountId,
        /// How much of the hold was used (`used + keep` ≤ the hold's amount).
        used: i64,
        /// The part of `used` that is fees (routing fees of a Lightning payment), recorded on
        /// the journal so history shows amount and fee apart; `0 ≤ fee < used`.
        fee: i64,
        /// A part of the hold that does not go back to the wallet either: a melt's input fee
        /// and the change its blank outputs cannot carry, kept as revenue. Usually 0.
        keep: i64,
        /// Where `keep` goes; required when `keep > 0`.
        keep_to: Option<LedgerAccountId>,
    },
    /// Returns the whole hold to the wallet.
    HoldReverse {
        /// The hold.
        hold: HoldId,
    },
}

/// A limit the request must stay within; usage is counted per `(subject, kind)` over the
/// rolling window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LimitCheck {
    /// Whose usage: an account id.
    pub subject: String,
    /// Which limit.
    pub kind: LimitKind,
    /// The limit in the request's minor unit.
    pub max: i64,
    /// How much this request uses.
    pub amount: i64,
}

/// One request to the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JournalRequest {
    /// Makes the request safe to retry.
    pub idempotency: IdempotencyKey,
    /// What the journal records.
    pub kind: JournalKind,
    /// The movement.
    pub op: LedgerOp,
    /// Free text shown in history.
    pub memo: Option<String>,
    /// An optional limit.
    pub limit: Option<LimitCheck>,
}

impl JournalRequest {
    /// A canonical text of everything that makes two requests "the same" for idempotency.
    pub fn fingerprint(&self) -> String {
        let op = match &self.op {
            LedgerOp::Transfer {
                from,
                to,
                amount,
                fee,
                fee_to,
            } => format!(
                "transfer:{from}>{to}:{amount}:{fee}:{}",
                fee_to.as_ref().map(LedgerAccountId::as_str).unwrap_or("")
            ),
            LedgerOp::HoldOpen {
                hold,
                wallet,
                pending,
                amount,
            } => {
                format!("hold_open:{hold}:{wallet}>{pending}:{amount}")
            }
            LedgerOp::HoldSettle {
                hold,
                to,
                used,
                fee,
                keep,
                keep_to,
            } => {
                // Unchanged for settlements that keep nothing, so their stored fingerprints match.
                let kept = match (keep, keep_to) {
                    (0, _) => String::new(),
                    (k, to) => format!(":keep:{k}>{}", to.as_ref().map(LedgerAccountId::as_str).unwrap_or("")),
                };
                format!("hold_settle:{hold}>{to}:{used}:{fee}{kept}")
            }
            LedgerOp::HoldReverse { hold } => format!("hold_reverse:{hold}"),
        };
        format!("{}|{op}|{}", self.kind.as_str(), self.memo.as_deref().unwrap_or(""))
    }
}

/// A request's successful answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posted {
    /// The journal (the first one, for a replay).
    pub journal_id: JournalId,
    /// When it was posted, Unix ms.
    pub created_at_ms: i64,
    /// True when this answer repeats an earlier request with the same idempotency key.
    pub replayed: bool,
}

/// A request's answer.
pub type Outcome = Result<Posted, LedgerError>;

/// Why the ledger refused a request; each has a stable [`LedgerError::code`]. A request is
/// checked in this order: idempotency key, then the operation's own validity (amounts,
/// accounts, holds), then the limit, then balances.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The key was used before for a different request.
    #[error("idempotency key already used for a different request")]
    IdempotencyKeyReused,
    /// Zero, negative or oversized amount.
    #[error("invalid amount: {0}")]
    InvalidAmount(i64),
    /// A transfer from an account to itself.
    #[error("cannot pay the same wallet")]
    SelfPayment,
    /// The account does not exist.
    #[error("unknown ledger account {0}")]
    UnknownAccount(String),
    /// The accounts of one journal do not share a currency.
    #[error("currency mismatch between accounts")]
    CurrencyMismatch,
    /// A wallet of a locked or closed account would pay or be paid.
    #[error("account of wallet {0} is not active")]
    AccountNotActive(String),
    /// No hold with this id.
    #[error("unknown hold {0}")]
    UnknownHold(String),
    /// A hold with this id already exists.
    #[error("hold {0} already exists")]
    HoldExists(String),
    /// The hold was already settled or reversed.
    #[error("hold {id} is already {status}")]
    HoldClosed {
        /// The hold.
        id: String,
        /// Its final status.
        status: &'static str,
    },
    /// Settling more than the hold holds.
    #[error("settlement of {used} exceeds hold amount {held}")]
    HoldExceeded {
        /// Requested.
        used: i64,
        /// Held.
        held: i64,
    },
    /// Over a rolling limit.
    #[error("{kind} limit of {limit} exceeded: {remaining} remaining in the last 24 hours")]
    LimitExceeded {
        /// Which limit.
        kind: LimitKind,
        /// The limit.
        limit: i64,
        /// What remains in the window.
        remaining: i64,
    },
    /// Not enough money.
    #[error("insufficient balance: {available} available, {required} required")]
    InsufficientBalance {
        /// Current balance.
        available: i64,
        /// Needed.
        required: i64,
    },
    /// A bug: the engine built an unbalanced journal. Never expected.
    #[error("internal ledger error: {0}")]
    Internal(String),
}

impl LedgerError {
    /// Stable machine-readable code.
    pub fn code(&self) -> ErrorCode {
        match self {
            LedgerError::IdempotencyKeyReused => ErrorCode::IdempotencyKeyReused,
            LedgerError::InvalidAmount(_) => ErrorCode::InvalidAmount,
            LedgerError::SelfPayment => ErrorCode::SelfPayment,
            LedgerError::UnknownAccount(_) => ErrorCode::WalletNotFound,
            LedgerError::CurrencyMismatch => ErrorCode::CurrencyMismatch,
            LedgerError::AccountNotActive(_) => ErrorCode::AccountNotActive,
            LedgerError::UnknownHold(_) => ErrorCode::HoldNotFound,
            LedgerError::HoldExists(_) => ErrorCode::HoldExists,
            LedgerError::HoldClosed { .. } => ErrorCode::HoldClosed,
            LedgerError::HoldExceeded { .. } => ErrorCode::HoldExceeded,
            LedgerError::LimitExceeded { .. } => ErrorCode::LimitExceeded,
            LedgerError::InsufficientBalance { .. } => ErrorCode::InsufficientBalance,
            LedgerError::Internal(_) => ErrorCode::InternalError,
        }
    }
}

/// A ledger account as loaded for a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountState {
    /// Currency of the account.
    pub currency: Currency,
    /// Current balance (minor units; for wallets the amount owed to the user).
    pub balance: i64,
    /// Wallet or system.
    pub kind: AccountKind,
    /// Whether the owner may move money: false for the wallets of a locked or closed account.
    pub active: bool,
}

/// A hold as loaded for a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldState {
    /// The paying wallet.
    pub wallet: LedgerAccountId,
    /// The pending account.
    pub pending: LedgerAccountId,
    /// Amount held.
    pub amount: i64,
    /// Currency.
    pub currency: Currency,
    /// Status.
    pub status: HoldStatus,
}

/// The journal an idempotency key already posted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Replay {
    /// The original request's fingerprint.
    pub fingerprint: String,
    /// The original journal.
    pub journal_id: JournalId,
    /// When it was posted.
    pub created_at_ms: i64,
}

/// `(subject, kind)` of a limit counter.
pub type LimitKey = (String, LimitKind);

/// Everything a batch touches, as stored before the batch.
#[derive(Clone, Debug, Default)]
pub struct Snapshot {
    /// Accounts by id; absent means unknown.
    pub accounts: HashMap<LedgerAccountId, AccountState>,
    /// Holds by id; absent means none.
    pub holds: HashMap<HoldId, HoldState>,
    /// Idempotency keys already used.
    pub replays: HashMap<IdempotencyKey, Replay>,
    /// Limit usage within the window.
    pub usage: HashMap<LimitKey, i64>,
}

/// What a store must load for a batch.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Needs {
    /// Accounts, sorted (lock them in this order).
    pub accounts: BTreeSet<LedgerAccountId>,
    /// Holds, sorted.
    pub holds: BTreeSet<HoldId>,
    /// Idempotency keys.
    pub keys: BTreeSet<IdempotencyKey>,
    /// Limit counters.
    pub limits: BTreeSet<LimitKey>,
}

/// Lists what `batch` touches.
pub fn needs<'a>(batch: impl IntoIterator<Item = &'a JournalRequest>) -> Needs {
    let mut n = Needs::default();
    for r in batch {
        n.keys.insert(r.idempotency.clone());
        if let Some(l) = &r.limit {
            n.limits.insert((l.subject.clone(), l.kind));
        }
        match &r.op {
            LedgerOp::Transfer { from, to, fee_to, .. } => {
                n.accounts.insert(from.clone());
                n.accounts.insert(to.clone());
                if let Some(f) = fee_to {
                    n.accounts.insert(f.clone());
                }
            }
            LedgerOp::HoldOpen {
                hold, wallet, pending, ..
            } => {
                n.holds.insert(hold.clone());
                n.accounts.insert(wallet.clone());
                n.accounts.insert(pending.clone());
            }
            LedgerOp::HoldSettle { hold, to, keep_to, .. } => {
                n.holds.insert(hold.clone());
                n.accounts.insert(to.clone());
                if let Some(k) = keep_to {
                    n.accounts.insert(k.clone());
                }
            }
            LedgerOp::HoldReverse { hold } => {
                n.holds.insert(hold.clone());
            }
        }
    }
    n
}

/// The accounts a hold operation needs beyond the request itself: the hold's wallet and
/// pending account, known only once the hold is loaded.
pub fn hold_accounts(snapshot: &Snapshot) -> BTreeSet<LedgerAccountId> {
    snapshot
        .holds
        .values()
        .flat_map(|h| [h.wallet.clone(), h.pending.clone()])
        .collect()
}

/// One ledger entry: a signed amount on one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The account.
    pub account: LedgerAccountId,
    /// Currency.
    pub currency: Currency,
    /// Signed amount: negative debits the account, positive credits it.
    pub amount: i64,
}

/// A journal to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewJournal {
    /// Its id.
    pub id: JournalId,
    /// Kind.
    pub kind: JournalKind,
    /// Memo.
    pub memo: Option<String>,
    /// The idempotency key it consumed.
    pub idempotency: IdempotencyKey,
    /// The request fingerprint.
    pub fingerprint: String,
    /// The paying side (for history).
    pub from: LedgerAccountId,
    /// The receiving side (for history).
    pub to: LedgerAccountId,
    /// Amount moved from `from` to `to`.
    pub amount: i64,
    /// Fee paid by `from`.
    pub fee: i64,
    /// Currency.
    pub currency: Currency,
    /// The hold it opens or closes.
    pub hold: Option<HoldId>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Its entries; they sum to zero.
    pub entries: Vec<Entry>,
}

/// A hold to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewHold {
    /// Id.
    pub id: HoldId,
    /// The loaded state it starts in.
    pub state: HoldState,
    /// The journal that opened it.
    pub journal: JournalId,
}

/// A hold to close.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HoldClosure {
    /// Id.
    pub id: HoldId,
    /// Settled or reversed.
    pub status: HoldStatus,
    /// The journal that closed it.
    pub journal: JournalId,
}

/// Everything a batch writes, in one transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteSet {
    /// New journals with their entries.
    pub journals: Vec<NewJournal>,
    /// Net balance change per account, sorted by account.
    pub balance_deltas: BTreeMap<LedgerAccountId, i64>,
    /// Holds opened.
    pub holds_opened: Vec<NewHold>,
    /// Holds closed.
    pub holds_closed: Vec<HoldClosure>,
    /// Limit usage to add in the batch's minute.
    pub usage: BTreeMap<LimitKey, i64>,
}

impl WriteSet {
    /// True when the batch writes nothing (every request failed or replayed).
    pub fn is_empty(&self) -> bool {
        self.journals.is_empty()
    }
}

/// Decides each request of `batch` in order against `snapshot` (which is updated), posting
/// at `now_ms` with ids from `next_id`.
pub fn apply_batch<'a>(
    snapshot: &mut Snapshot,
    batch: impl IntoIterator<Item = &'a JournalRequest>,
    now_ms: i64,
    mut next_id: impl FnMut() -> JournalId,
) -> (Vec<Outcome>, WriteSet) {
    let mut writes = WriteSet::default();
    let outcomes = batch
        .into_iter()
        .map(|r| apply_one(snapshot, r, now_ms, &mut next_id, &mut writes))
        .collect();
    (outcomes, writes)
}

fn apply_one(
    snap: &mut Snapshot,
    req: &JournalRequest,
    now_ms: i64,
    next_id: &mut impl FnMut() -> JournalId,
    writes: &mut WriteSet,
) -> Outcome {
    let fingerprint = req.fingerprint();
    if let Some(replay) = snap.replays.get(&req.idempotency) {
        return if replay.fingerprint == fingerprint {
            Ok(Posted {
                journal_id: replay.journal_id,
                created_at_ms: replay.created_at_ms,
                replayed: true,
            })
        } else {
            Err(LedgerError::IdempotencyKeyReused)
        };
    }

    let plan = plan(snap, &req.op)?;
    check_balanced(&plan.entries)?;
    // New movements need every wallet's owner active; settling or reversing a hold finishes
    // one already under way, and money that already arrived from outside is recorded whoever
    // it is for.
    if matches!(req.op, LedgerOp::Transfer { .. } | LedgerOp::HoldOpen { .. }) {
        for e in &plan.entries {
            let arrived = e.amount > 0 && req.kind.receives_from_outside();
            if !arrived && !account(snap, &e.account)?.active {
                return Err(LedgerError::AccountNotActive(e.account.to_string()));
            }
        }
    }

    if let Some(limit) = &req.limit {
        check_amount(limit.amount)?;
        let key = (limit.subject.clone(), limit.kind);
        let used = snap.usage.get(&key).copied().unwrap_or(0);
        if used.saturating_add(limit.amount) > limit.max {
            return Err(LedgerError::LimitExceeded {
                kind: limit.kind,
                limit: limit.max,
                remaining: (limit.max - used).max(0),
            });
        }
    }

    // Net effect per account, then the non-negativity check, before anything is applied.
    let mut deltas: BTreeMap<LedgerAccountId, i64> = BTreeMap::new();
    for e in &plan.entries {
        *deltas.entry(e.account.clone()).or_insert(0) += e.amount;
    }
    for (id, delta) in &deltas {
        let acc = account(snap, id)?;
        let after = acc
            .balance
            .checked_add(*delta)
            .ok_or_else(|| LedgerError::Internal(format!("balance of {id} would overflow")))?;
        if acc.kind == AccountKind::Wallet && after < 0 {
            return Err(LedgerError::InsufficientBalance {
                available: acc.balance,
                required: -delta,
            });
        }
    }

    // Decided: apply to the snapshot and the write set.
    let id = next_id();
    for (acc_id, delta) in deltas {
        if let Some(acc) = snap.accounts.get_mut(&acc_id) {
            acc.balance += delta;
        }
        *writes.balance_deltas.entry(acc_id).or_insert(0) += delta;
    }
    if let Some(limit) = &req.limit {
        let key = (limit.subject.clone(), limit.kind);
        *snap.usage.entry(key.clone()).or_insert(0) += limit.amount;
        *writes.usage.entry(key).or_insert(0) += limit.amount;
    }
    match plan.hold_change {
        Some(HoldChange::Open(hold_id, state)) => {
            snap.holds.insert(hold_id.clone(), state.clone());
            writes.holds_opened.push(NewHold {
                id: hold_id,
                state,
                journal: id,
            });
        }
        Some(HoldChange::Close(hold_id, status)) => {
            if let Some(h) = snap.holds.get_mut(&hold_id) {
                h.status = status;
            }
            writes.holds_closed.push(HoldClosure {
                id: hold_id,
                status,
                journal: id,
            });
        }
        None => {}
    }
    snap.replays.insert(
        req.idempotency.clone(),
        Replay {
            fingerprint: fingerprint.clone(),
            journal_id: id,
            created_at_ms: now_ms,
        },
    );
    writes.journals.push(NewJournal {
        id,
        kind: req.kind,
        memo: req.memo.clone(),
        idempotency: req.idempotency.clone(),
        fingerprint,
        from: plan.from,
        to: plan.to,
        amount: plan.amount,
        fee: plan.fee,
        currency: plan.currency,
        hold: plan.hold,
        created_at_ms: now_ms,
        entries: plan.entries,
    });
    Ok(Posted {
        journal_id: id,
        created_at_ms: now_ms,
        replayed: false,
    })
}

enum HoldChange {
    Open(HoldId, HoldState),
    Close(HoldId, HoldStatus),
}

struct Plan {
    from: LedgerAccountId,
    to: LedgerAccountId,
    amount: i64,
    fee: i64,
    currency: Currency,
    hold: Option<HoldId>,
    entries: Vec<Entry>,
    hold_change: Option<HoldChange>,
}

fn check_amount(amount: i64) -> Result<(), LedgerError> {
    if amount <= 0 || amount > MAX_SATS {
        Err(LedgerError::InvalidAmount(amount))
    } else {
        Ok(())
    }
}

fn account<'a>(snap: &'a Snapshot, id: &LedgerAccountId) -> Result<&'a AccountState, LedgerError> {
    snap.accounts
        .get(id)
        .ok_or_else(|| LedgerError::UnknownAccount(id.to_string()))
}

fn currency_of(snap: &Snapshot, ids: &[&LedgerAccountId]) -> Result<Currency, LedgerError> {
    let mut currency = None;
    for id in ids {
        let c = account(snap, id)?.currency;
        if *currency.get_or_insert(c) != c {
            return Err(LedgerError::CurrencyMismatch);
        }
    }
    currency.ok_or(LedgerError::Internal("journal without accounts".into()))
}

fn entry(account: &LedgerAccountId, currency: Currency, amount: i64) -> Entry {
    Entry {
        account: account.clone(),
        currency,
        amount,
    }
}

fn pending_hold<'a>(snap: &'a Snapshot, hold: &HoldId) -> Result<&'a HoldState, LedgerError> {
    let h = snap
        .holds
        .get(hold)
        .ok_or_else(|| LedgerError::UnknownHold(hold.to_string()))?;
    if h.status != HoldStatus::Pending {
        return Err(LedgerError::HoldClosed {
            id: hold.to_string(),
            status: h.status.as_str(),
        });
    }
    Ok(h)
}

fn plan(snap: &Snapshot, op: &LedgerOp) -> Result<Plan, LedgerError> {
    match op {
        LedgerOp::Transfer {
            from,
            to,
            amount,
            fee,
            fee_to,
        } => {
            check_amount(*amount)?;
            if *fee < 0 || *fee > MAX_SATS {
                return Err(LedgerError::InvalidAmount(*fee));
            }
            if from == to || fee_to.as_ref().is_some_and(|f| f == from || f == to) {
                return Err(LedgerError::SelfPayment);
            }
            let mut ids = vec![from, to];
            let fee_account = match (fee, fee_to) {
                (0, _) => None,
                (_, Some(f)) => {
                    ids.push(f);
                    Some(f)
                }
                (_, None) => return Err(LedgerError::Internal("fee without fee account".into())),
            };
            let currency = currency_of(snap, &ids)?;
            let mut entries = vec![entry(from, currency, -(amount + fee)), entry(to, currency, *amount)];
            if let Some(f) = fee_account {
                entries.push(entry(f, currency, *fee));
            }
            Ok(Plan {
                from: from.clone(),
                to: to.clone(),
                amount: *amount,
                fee: *fee,
                currency,
                hold: None,
                entries,
                hold_change: None,
            })
        }
        LedgerOp::HoldOpen {
            hold,
            wallet,
            pending,
            amount,
        } => {
            check_amount(*amount)?;
            if wallet == pending {
                return Err(LedgerError::SelfPayment);
            }
            let currency = currency_of(snap, &[wallet, pending])?;
            if snap.holds.contains_key(hold) {
                return Err(LedgerError::HoldExists(hold.to_string()));
            }
            let state = HoldState {
                wallet: wallet.clone(),
                pending: pending.clone(),
                amount: *amount,
                currency,
                status: HoldStatus::Pending,
            };
            Ok(Plan {
                from: wallet.clone(),
                to: pending.clone(),
                amount: *amount,
                fee: 0,
                currency,
                hold: Some(hold.clone()),
                entries: vec![entry(wallet, currency, -amount), entry(pending, currency, *amount)],
                hold_change: Some(HoldChange::Open(hold.clone(), state)),
            })
        }
        LedgerOp::HoldSettle {
            hold,
            to,
            used,
            fee,
            keep,
            keep_to,
        } => {
            check_amount(*used)?;
            if *fee < 0 || *fee >= *used {
                return Err(LedgerError::InvalidAmount(*fee));
            }
            if *keep < 0 || *keep > MAX_SATS {
                return Err(LedgerError::InvalidAmount(*keep));
            }
            let h = pending_hold(snap, hold)?;
            if used + keep > h.amount {
                return Err(LedgerError::HoldExceeded {
                    used: used + keep,
                    held: h.amount,
                });
            }
            if to == &h.pending || to == &h.wallet {
                return Err(LedgerError::SelfPayment);
            }
            let kept = match (keep, keep_to) {
                (0, _) => None,
                (_, Some(k)) if k == to || k == &h.pending || k == &h.wallet => return Err(LedgerError::SelfPayment),
                (_, Some(k)) => Some(k),
                (_, None) => return Err(LedgerError::Internal("kept part without an account".into())),
            };
            let mut ids = vec![&h.wallet, &h.pending, to];
            ids.extend(kept);
            let currency = currency_of(snap, &ids)?;
            let mut entries = vec![entry(&h.pending, currency, -h.amount), entry(to, currency, *used)];
            if let Some(k) = kept {
                entries.push(entry(k, currency, *keep));
            }
            if h.amount > used + keep {
                entries.push(entry(&h.wallet, currency, h.amount - used - keep));
            }
            Ok(Plan {
                from: h.wallet.clone(),
                to: to.clone(),
                amount: used - fee,
                fee: *fee,
                currency,
                hold: Some(hold.clone()),
                entries,
                hold_change: Some(HoldChange::Close(hold.clone(), HoldStatus::Settled)),
            })
        }
        LedgerOp::HoldReverse { hold } => {
            let h = pending_hold(snap, hold)?;
            let currency = currency_of(snap, &[&h.wallet, &h.pending])?;
            Ok(Plan {
                from: h.pending.clone(),
                to: h.wallet.clone(),
                amount: h.amount,
                fee: 0,
                currency,
                hold: Some(hold.clone()),
                entries: vec![
                    entry(&h.pending, currency, -h.amount),
                    entry(&h.wallet, currency, h.amount),
                ],
                hold_change: Some(HoldChange::Close(hold.clone(), HoldStatus::Reversed)),
            })
        }
    }
}

fn check_balanced(entries: &[Entry]) -> Result<(), LedgerError> {
    let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
    for e in entries {
        *sums.entry(e.currency).or_insert(0) += i128::from(e.amount);
    }
    if entries.len() < 2 || sums.values().any(|s| *s != 0) {
        return Err(LedgerError::Internal(format!("unbalanced journal: {entries:?}")));
    }
    Ok(())
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.scope, self.key)
    }
}

#[cfg(test)]
mod tests;
