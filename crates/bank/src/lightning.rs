//! Lightning payments through the `LightningNode` port: invoices, receipts, sends, and the
//! reconciliation that resolves what a crash or a slow network left pending.
//!
//! - **Receive.** An invoice is recorded when issued. Its settlement is credited by one journal
//!   whose idempotency key is `("ln-invoice", payment hash)`, so it is credited once whoever pays
//!   it: the network (through the node) or another Flash wallet (intraledger).
//! - **Send to a Flash invoice.** Settles intraledger with no fee and no network hop, under the
//!   same key; the node's invoice is then cancelled.
//! - **Send out.** A saga: the hold of amount + fee cap and the payment row commit together
//!   before the node is called; success settles the hold with the fee actually paid, failure
//!   reverses it, and an unknown outcome stays pending until the node says otherwise. The mint's
//!   melts pay through the same saga (`ecash.rs`), so the partial unique index on live payments
//!   per hash lets one payment of an invoice go, whoever pays it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{FutureExt, StreamExt};

use flash_core::ledger::{IdempotencyKey, JournalKind, JournalRequest, LedgerError, LedgerOp, LimitCheck};
use flash_core::lightning::{
    FeeEstimateRequest, Hash32, Invoice, InvoiceDescription, InvoiceRequest, LightningError, LightningNode, PayRequest,
    PaymentState, SettledInvoice, SimulatorControls,
};
use flash_core::{
    AccountId, AccountStatus, Currency, HoldId, JournalId, LimitKind, Memo, Sats, SystemAccount, ValidationError,
    WalletId,
};
use flash_store::{
    LnInvoiceRecord, LnPaymentEnd, LnPaymentRecord, LnPaymentStatus, NewLnInvoice, NewLnPayment, PaidVia, PostRequest,
    Record, WalletOwner,
};

use crate::allowance::{allowance_returned, may_spend, Allowance};
use crate::history::Transaction;
use crate::payments::idempotency;
use crate::{Bank, BankError};

/// Idempotency scope of invoice credits: one per payment hash, whoever pays.
pub(crate) const INVOICE_SCOPE: &str = "ln-invoice";
/// Idempotency scope of the journals that finish an outgoing payment.
const PAYMENT_SCOPE: &str = "ln-payment";
/// Settlements credited at once by [`Bank::run_ln_settlements`].
const SETTLEMENTS_IN_FLIGHT: usize = 64;
/// Longest BOLT11 text accepted.
const PAYMENT_REQUEST_MAX_CHARS: usize = 4_096;
/// Longest memo a BOLT11 description holds, bytes.
const INVOICE_MEMO_MAX_BYTES: usize = 639;
/// Most pending payments one reconciliation pass looks at.
const RECONCILE_BATCH: i64 = 500;

/// Lightning settings (`[lightning.payments]` in `flashd`'s file).
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LightningConfig {
    /// Fee cap on outgoing payments, basis points of the amount …
    pub fee_cap_bps: u32,
    /// … but never less than this many satoshis.
    pub fee_cap_min_sats: i64,
    /// How long a send waits for the network before answering `PENDING`.
    pub pay_timeout_secs: u64,
    /// Default expiry of an invoice with an amount, minutes.
    pub invoice_expiry_mins: i64,
    /// Default expiry of a no-amount invoice, minutes.
    pub no_amount_invoice_expiry_mins: i64,
    /// Longest expiry a caller may ask for, minutes.
    pub invoice_expiry_max_mins: i64,
    /// How often pending payments are checked against the node.
    pub reconcile_interval_secs: u64,
    /// How old a pending payment must be before reconciliation may decide it (it may still be
    /// on its way to the node).
    pub reconcile_grace_secs: u64,
    /// Largest amount a Lightning address of this Flash accepts, satoshis.
    pub lnurl_max_sendable_sats: i64,
    /// Longest comment a payer may attach through a Lightning address (LUD-12).
    pub lnurl_comment_max_chars: u32,
}

impl Default for LightningConfig {
    fn default() -> Self {
        LightningConfig {
            fee_cap_bps: 50,
            fee_cap_min_sats: 10,
            pay_timeout_secs: 30,
            invoice_expiry_mins: 240,
            no_amount_invoice_expiry_mins: 120,
            invoice_expiry_max_mins: 1_440,
            reconcile_interval_secs: 30,
            reconcile_grace_secs: 90,
            lnurl_max_sendable_sats: 10_000_000,
            lnurl_comment_max_chars: 255,
        }
    }
}

/// The Lightning rail as the bank holds it.
pub(crate) struct Rail {
    pub(crate) node: Arc<dyn LightningNode>,
    simulator: Option<Arc<dyn SimulatorControls>>,
    /// Payments this process is driving right now; reconciliation leaves them alone.
    driving: Mutex<HashSet<HoldId>>,
}

impl Rail {
    pub(crate) fn new(node: Arc<dyn LightningNode>, simulator: Option<Arc<dyn SimulatorControls>>) -> Rail {
        Rail {
            node,
            simulator,
            driving: Mutex::new(HashSet::new()),
        }
    }
}

/// Marks a payment as driven by this process until dropped.
struct Driving<'a> {
    rail: &'a Rail,
    id: HoldId,
}

impl<'a> Driving<'a> {
    fn start(rail: &'a Rail, id: &HoldId) -> Option<Driving<'a>> {
        let mut set = rail.driving.lock().ok()?;
        set.insert(id.clone()).then(|| Driving { rail, id: id.clone() })
    }
}

impl Drop for Driving<'_> {
    fn drop(&mut self) {
        if let Ok(mut set) = self.rail.driving.lock() {
            set.remove(&self.id);
        }
    }
}

/// Who asks for an invoice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvoiceFor {
    /// The wallet's own account (authenticated).
    Owner(AccountId),
    /// Anyone, on behalf of the wallet's owner (`…OnBehalfOfRecipient`, LNURL-pay).
    Recipient,
}

/// A request for an invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvoiceCreate {
    /// The wallet to credit.
    pub wallet_id: WalletId,
    /// Amount in satoshis; none for a no-amount invoice.
    pub amount: Option<i64>,
    /// Memo, shown to the payer.
    pub memo: Option<String>,
    /// A description hash (LNURL-pay, zaps) committed to instead of the memo.
    pub description_hash: Option<Hash32>,
    /// Minutes until it expires.
    pub expires_in_mins: Option<i64>,
}

/// An invoice's payment status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvoiceStatus {
    /// Not paid yet.
    Pending,
    /// Paid.
    Paid,
    /// Expired unpaid.
    Expired,
}

/// An invoice issued to a Flash wallet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LnInvoice {
    /// Payment hash.
    pub payment_hash: Hash32,
    /// The BOLT11 text.
    pub payment_request: String,
    /// Its payment secret, hex (not the preimage).
    pub payment_secret: String,
    /// Amount, satoshis, if it has one.
    pub amount: Option<i64>,
    /// The wallet it pays into.
    pub wallet_id: WalletId,
    /// Its memo, if it has one.
    pub memo: Option<String>,
    /// The description hash it commits to instead of a memo (LNURL-pay, zaps).
    pub description_hash: Option<Hash32>,
    /// Status now.
    pub status: InvoiceStatus,
    /// What was received, once paid.
    pub paid_sat: Option<i64>,
    /// When it was paid, Unix ms.
    pub paid_at_ms: Option<i64>,
    /// Unix ms.
    pub created_at_ms: i64,
    /// Unix ms.
    pub expires_at_ms: i64,
}

impl LnInvoice {
    fn from_record(r: &LnInvoiceRecord, payment_hash: Hash32, now_ms: i64) -> LnInvoice {
        let status = if r.paid_at_ms.is_some() {
            InvoiceStatus::Paid
        } else if now_ms >= r.invoice.expires_at_ms {
            InvoiceStatus::Expired
        } else {
            InvoiceStatus::Pending
        };
        LnInvoice {
            payment_hash,
            payment_request: r.invoice.payment_request.clone(),
            payment_secret: r.invoice.payment_secret.clone(),
            amount: r.invoice.amount_sat,
            wallet_id: r.invoice.wallet_id,
            memo: r.invoice.memo.clone(),
            description_hash: r.invoice.description_hash.as_deref().and_then(|h| h.parse().ok()),
            status,
            paid_sat: r.paid_sat,
            paid_at_ms: r.paid_at_ms,
            created_at_ms: r.invoice.created_at_ms,
            expires_at_ms: r.invoice.expires_at_ms,
        }
    }
}

/// A request to pay an invoice.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LnPayRequest {
    /// The paying account (the caller).
    pub account: AccountId,
    /// The paying wallet; must be the account's.
    pub wallet_id: WalletId,
    /// The BOLT11 text (a `lightning:` prefix is accepted).
    pub payment_request: String,
    /// Amount in satoshis: required for a no-amount invoice, and must match otherwise.
    pub amount: Option<i64>,
    /// Memo for the payer's history.
    pub memo: Option<String>,
    /// Makes the request safe to retry; a fresh one is generated when absent.
    pub idempotency_key: Option<String>,
}

/// How a send ended, in Galoy's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PaymentStatus {
    /// Paid.
    Success,
    /// Not paid; nothing is held.
    Failure,
    /// Under way; the outcome will show in history and on `myUpdates`.
    Pending,
    /// The invoice was paid before; nothing was taken this time.
    AlreadyPaid,
}

/// A send's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LnPayOutcome {
    /// How it ended.
    pub status: PaymentStatus,
    /// The payer's transaction, when one was made.
    pub transaction: Option<Transaction>,
    /// Why it failed, in the node's words.
    pub failure: Option<String>,
}

impl LnPayOutcome {
    pub(crate) fn already_paid() -> LnPayOutcome {
        LnPayOutcome {
            status: PaymentStatus::AlreadyPaid,
            transaction: None,
            failure: None,
        }
    }
}

/// The invoice and proof of a Lightning transaction.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LnDetails {
    /// The BOLT11 text.
    pub payment_request: Option<String>,
    /// The preimage (hex), for a send the node learned it for.
    pub preimage: Option<String>,
}

/// What a reconciliation pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReconcileReport {
    /// Pending payments looked at.
    pub checked: usize,
    /// Settled because the node paid them.
    pub succeeded: usize,
    /// Reversed because the node failed them or never had them.
    pub failed: usize,
    /// Still in flight (or the node could not be asked).
    pub pending: usize,
}

/// What a payment out starts with, besides the invoice.
struct Start {
    memo: Option<String>,
    idempotency: IdempotencyKey,
    prior: Option<JournalId>,
    origin: Option<String>,
    taken: Vec<Record>,
}

/// What the journal that ends a payment carries besides its own: a melt's records (its notes
/// spent or released, its quote, its change) and the part of its hold kept as revenue.
#[derive(Debug, Default)]
pub(crate) struct Closing {
    /// Rows that commit with the closing journal.
    pub(crate) records: Vec<Record>,
    /// Satoshis of the hold to `fees:revenue` (only when it settles).
    pub(crate) keep: i64,
}

/// A fresh payment id (also its hold's): time-ordered, never reused.
pub(crate) fn new_payment_id() -> HoldId {
    HoldId::new(format!("ln:{}", uuid::Uuid::now_v7()))
}

/// A decoded invoice and the amount the payer sends, satoshis.
pub(crate) struct Target {
    pub(crate) invoice: Invoice,
    pub(crate) amount: Sats,
}

pub(crate) fn lightning_error(e: LightningError) -> BankError {
    match e {
        LightningError::InvalidInvoice(m) => BankError::InvalidInvoice(m),
        LightningError::WrongNetwork { expected, found } => BankError::WrongNetwork { expected, found },
        LightningError::InvalidInput(m) => BankError::InvalidInvoice(m),
        LightningError::NoRoute(m) => BankError::NoRoute(m),
        other => BankError::LightningUnavailable(other.to_string()),
    }
}

pub(crate) fn reference(hash: &Hash32) -> String {
    format!("ln:{hash}")
}

impl Bank {
    pub(crate) fn rail(&self) -> Result<&Rail, BankError> {
        self.lightning
            .as_deref()
            .ok_or_else(|| BankError::LightningUnavailable("no Lightning node is configured".into()))
    }

    /// The Lightning node, for health and admin reads.
    pub fn lightning_node(&self) -> Option<Arc<dyn LightningNode>> {
        self.lightning.as_ref().map(|r| r.node.clone())
    }

    /// Issues an invoice paying into `req.wallet_id`.
    pub async fn ln_invoice_create(&self, who: InvoiceFor, req: InvoiceCreate) -> Result<LnInvoice, BankError> {
        self.rail()?;
        let cfg = &self.config.lightning;
        let amount = req.amount.map(Sats::positive).transpose()?;
        let memo = req.memo.as_deref().map(Memo::parse).transpose()?;
        if memo.as_ref().is_some_and(|m| m.as_str().len() > INVOICE_MEMO_MAX_BYTES) {
            return Err(ValidationError::MemoTooLong.into());
        }
        let default_mins = if amount.is_some() {
            cfg.invoice_expiry_mins
        } else {
            cfg.no_amount_invoice_expiry_mins
        };
        let mins = req.expires_in_mins.unwrap_or(default_mins);
        if !(1..=cfg.invoice_expiry_max_mins).contains(&mins) {
            return Err(BankError::InvalidExpiry {
                max_mins: cfg.invoice_expiry_max_mins,
            });
        }
        let wallet = self
            .store
            .wallet(req.wallet_id)
            .await?
            .ok_or(BankError::WalletNotFound)?;
        match who {
            InvoiceFor::Owner(account) if wallet.account_id != account => return Err(BankError::WalletNotFound),
            InvoiceFor::Owner(_) | InvoiceFor::Recipient => {}
        }
        if wallet.currency != Currency::Btc {
            return Err(BankError::WalletNotFound);
        }
        let account = self
            .store
            .account(wallet.account_id)
            .await?
            .ok_or(BankError::AccountNotFound)?;
        if account.status != AccountStatus::Active {
            return Err(match who {
                InvoiceFor::Owner(_) => BankError::AccountNotActive(account.status.as_str()),
                InvoiceFor::Recipient => BankError::RecipientNotActive,
            });
        }
        let description = match (req.description_hash, &memo) {
            (Some(h), _) => InvoiceDescription::Hash(h),
            (None, Some(m)) => InvoiceDescription::Memo(m.as_str().to_string()),
            (None, None) => InvoiceDescription::Memo(String::new()),
        };
        let expiry_secs = u64::try_from(mins * 60).unwrap_or(0);
        let invoice = self
            .issue_invoice(InvoiceRequest {
                amount_msat: amount.map(Sats::msat),
                description,
                expiry_secs,
            })
            .await
            .map_err(lightning_error)?;
        let created_at_ms = i64::try_from(invoice.created_at_secs)
            .unwrap_or(i64::MAX / 1_000)
            .saturating_mul(1_000);
        let record = NewLnInvoice {
            payment_hash: invoice.payment_hash.to_string(),
            wallet_id: wallet.id,
            payment_request: invoice.payment_request.clone(),
            payment_secret: invoice.payment_secret.to_string(),
            amount_sat: amount.map(Sats::get),
            memo: memo.map(|m| m.as_str().to_string()),
            description_hash: req.description_hash.map(|h| h.to_string()),
            origin: match who {
                InvoiceFor::Owner(_) => "app",
                InvoiceFor::Recipient => "recipient",
            },
            expires_at_ms: created_at_ms.saturating_add(mins * 60_000),
            created_at_ms,
        };
        self.store.insert_ln_invoice(&record).await?;
        Ok(LnInvoice {
            payment_hash: invoice.payment_hash,
            payment_request: invoice.payment_request,
            payment_secret: record.payment_secret.clone(),
            amount: record.amount_sat,
            wallet_id: wallet.id,
            memo: record.memo.clone(),
            description_hash: req.description_hash,
            status: InvoiceStatus::Pending,
            paid_sat: None,
            paid_at_ms: None,
            created_at_ms,
            expires_at_ms: record.expires_at_ms,
        })
    }

    /// An invoice issued by this Flash, by its BOLT11 text.
    pub async fn ln_invoice_by_request(&self, payment_request: &str) -> Result<LnInvoice, BankError> {
        let invoice = self.decode(payment_request).await?;
        self.ln_invoice_by_hash(invoice.payment_hash).await
    }

    /// An invoice issued by this Flash, by payment hash.
    pub async fn ln_invoice_by_hash(&self, hash: Hash32) -> Result<LnInvoice, BankError> {
        let record = self
            .store
            .ln_invoice(&hash.to_string())
            .await?
            .ok_or(BankError::InvoiceNotFound)?;
        Ok(LnInvoice::from_record(&record, hash, self.store.now_ms()))
    }

    /// Withdraws an unpaid invoice of this Flash: it expires now, the node refuses payments of
    /// it and the bank refuses to pay it inside the ledger. A payment that got in first stays
    /// paid: read the invoice after to know.
    pub async fn ln_invoice_withdraw(&self, hash: Hash32) -> Result<(), BankError> {
        self.store
            .ln_invoice_withdraw(&hash.to_string(), self.store.now_ms())
            .await?;
        match self.rail()?.node.cancel_invoice(hash).await {
            Ok(()) | Err(LightningError::AlreadyPaid) => Ok(()),
            Err(e) => Err(lightning_error(e)),
        }
    }

    /// Decodes a BOLT11 invoice (a `lightning:` prefix is accepted) for this Flash's network.
    pub async fn decode(&self, payment_request: &str) -> Result<Invoice, BankError> {
        let text = payment_request.trim();
        let text = text
            .get(..10)
            .filter(|p| p.eq_ignore_ascii_case("lightning:"))
            .map_or(text, |_| &text[10..]);
        if text.is_empty() || text.chars().count() > PAYMENT_REQUEST_MAX_CHARS {
            return Err(BankError::InvalidInvoice("not a BOLT11 invoice".into()));
        }
        self.rail()?.node.decode_invoice(text).await.map_err(lightning_error)
    }

    /// Decodes, checks expiry and settles the amount the payer sends.
    pub(crate) async fn target(&self, payment_request: &str, amount: Option<i64>) -> Result<Target, BankError> {
        let invoice = self.decode(payment_request).await?;
        let now_secs = u64::try_from(self.store.now_ms() / 1_000).unwrap_or(0);
        if invoice.expired_at(now_secs) {
            return Err(BankError::InvoiceExpired);
        }
        let amount = match (invoice.amount_msat, amount) {
            (Some(msat), None) => Sats::from_msat_up(msat)?,
            (Some(msat), Some(given)) if Sats::from_msat_up(msat)?.get() == given => Sats::positive(given)?,
            (Some(msat), Some(given)) => {
                return Err(BankError::AmountMismatch(format!(
                    "the invoice asks for {} sats, not {given}",
                    Sats::from_msat_up(msat)?.get()
                )))
            }
            (None, Some(given)) => Sats::positive(given)?,
            (None, None) => return Err(BankError::AmountMismatch("the invoice has no amount: give one".into())),
        };
        if amount.get() == 0 {
            return Err(BankError::Amount(flash_core::MoneyError::Zero));
        }
        Ok(Target { invoice, amount })
    }

    /// The routing fee a payment would cost, satoshis: zero for an invoice of this Flash.
    pub async fn ln_fee_probe(
        &self,
        account: AccountId,
        wallet_id: WalletId,
        payment_request: &str,
        amount: Option<i64>,
    ) -> Result<i64, BankError> {
        let target = self.target(payment_request, amount).await?;
        let wallet = self.store.wallet(wallet_id).await?;
        if wallet.is_none_or(|w| w.account_id != account) {
            return Err(BankError::WalletNotFound);
        }
        if self.own_invoice(&target.invoice).await?.is_some() {
            return Ok(0);
        }
        let estimate = self
            .rail()?
            .node
            .estimate_fee(FeeEstimateRequest {
                payment_request: target.invoice.payment_request.clone(),
                amount_msat: target.invoice.amount_msat.is_none().then(|| target.amount.msat()),
            })
            .await
            .map_err(lightning_error)?;
        let cap = self.fee_cap(target.amount)?;
        Ok(Sats::from_msat_up(estimate)?.get().min(cap.get()))
    }

    /// The most a Lightning payment of `amount_sats` may cost in fees (it is held with the
    /// payment): what a spending budget must leave room for.
    pub fn ln_fee_cap(&self, amount_sats: i64) -> Result<i64, BankError> {
        Ok(self.fee_cap(Sats::non_negative(amount_sats)?)?.get())
    }

    pub(crate) fn fee_cap(&self, amount: Sats) -> Result<Sats, BankError> {
        let cfg = &self.config.lightning;
        Ok(amount.fee(cfg.fee_cap_bps, Sats::non_negative(cfg.fee_cap_min_sats)?)?)
    }

    /// The invoice of this Flash that `invoice` is, if it is one.
    pub(crate) async fn own_invoice(&self, invoice: &Invoice) -> Result<Option<LnInvoiceRecord>, BankError> {
        let record = self.store.ln_invoice(&invoice.payment_hash.to_string()).await?;
        // The hash alone is public: it must be the very invoice we issued.
        Ok(record.filter(|r| r.invoice.payment_request.eq_ignore_ascii_case(&invoice.payment_request)))
    }

    /// Pays an invoice: intraledger if this Flash issued it, otherwise over Lightning.
    pub async fn ln_pay(&self, req: LnPayRequest) -> Result<LnPayOutcome, BankError> {
        self.ln_pay_for(req, None).await
    }

    /// [`Bank::ln_pay`], spending `allowance` too when it is given (a withdraw link's use, a
    /// card tap): taken in the transaction that moves (or holds) the money, and given back if
    /// the payment fails.
    pub(crate) async fn ln_pay_for(
        &self,
        req: LnPayRequest,
        allowance: Option<Allowance<'_>>,
    ) -> Result<LnPayOutcome, BankError> {
        let target = self.target(&req.payment_request, req.amount).await?;
        let memo = req.memo.as_deref().map(Memo::parse).transpose()?;
        let idempotency = idempotency(req.account.to_string(), req.idempotency_key.clone())?;
        let own = self.own_invoice(&target.invoice).await?;
        let parties = self
            .store
            .payment_parties(
                req.wallet_id,
                own.as_ref().map(|o| o.invoice.wallet_id),
                None,
                &idempotency,
            )
            .await?;
        let payer = parties
            .payer
            .filter(|p| p.wallet.account_id == req.account && may_spend(&p.wallet, allowance))
            .ok_or(BankError::WalletNotFound)?;
        if parties.prior.is_none() && payer.status != AccountStatus::Active {
            return Err(BankError::AccountNotActive(payer.status.as_str()));
        }
        let memo = memo.map(|m| m.as_str().to_string());
        let taken = allowance
            .map(|a| a.taken(target.amount.get(), self.store.now_ms()))
            .unwrap_or_default();
        match own {
            Some(own) => {
                let payee = parties
                    .payee
                    .filter(|p| !p.wallet.budget)
                    .ok_or(BankError::RecipientNotFound)?;
                self.pay_own_invoice(&payer, &payee, &own, target, memo, taken).await
            }
            None if self.mint_invoice(&target.invoice).await? => self.pay_mint_quote(&payer, target, memo, taken).await,
            None => {
                let origin = allowance.map(Allowance::origin);
                let start = Start {
                    memo,
                    idempotency,
                    prior: parties.prior,
                    origin,
                    taken,
                };
                self.pay_out(&payer, target, start).await
            }
        }
    }

    async fn pay_own_invoice(
        &self,
        payer: &WalletOwner,
        payee: &WalletOwner,
        own: &LnInvoiceRecord,
        target: Target,
        memo: Option<String>,
        taken: Vec<Record>,
    ) -> Result<LnPayOutcome, BankError> {
        if own.paid_at_ms.is_some() {
            return Ok(LnPayOutcome::already_paid());
        }
        // Its BOLT11 may be unexpired while the bank withdrew it.
        if own.invoice.expires_at_ms <= self.store.now_ms() {
            return Err(BankError::InvoiceExpired);
        }
        let hash = target.invoice.payment_hash;
        let (from, to) = (payer.wallet.account_id, payee.wallet.account_id);
        let limit = (from != to).then(|| LimitCheck {
            subject: from.to_string(),
            kind: LimitKind::IntraLedger,
            max: self.config.limits.sats(payer.level, LimitKind::IntraLedger),
            amount: target.amount.get(),
        });
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: INVOICE_SCOPE.into(),
                key: hash.to_string(),
            },
            kind: JournalKind::IntraLedger,
            op: LedgerOp::Transfer {
                from: payer.wallet.id.into(),
                to: payee.wallet.id.into(),
                amount: target.amount.get(),
                fee: 0,
                fee_to: None,
            },
            memo: memo.or_else(|| own.invoice.memo.clone()),
            limit,
        };
        let now = self.store.now_ms();
        let post = PostRequest {
            contact: (from != to).then_some((from, to)),
            reference: Some(reference(&hash)),
            records: std::iter::once(Record::ln_invoice_paid(
                &hash.to_string(),
                target.amount.get(),
                PaidVia::IntraLedger,
                now,
            ))
            .chain(taken)
            .collect(),
            ..PostRequest::from(journal)
        };
        let posted = match self.store.post(post).await? {
            Ok(p) if p.replayed => return Ok(LnPayOutcome::already_paid()),
            Ok(p) => p,
            Err(LedgerError::IdempotencyKeyReused) => return Ok(LnPayOutcome::already_paid()),
            Err(e) => return Err(self.payment_error(e, payer.wallet.id)),
        };
        self.publish_journal(payer.wallet.account_id, payer.wallet.id, posted.journal_id);
        self.publish_invoice_paid(
            payee.wallet.account_id,
            payee.wallet.id,
            posted.journal_id,
            &hash.to_string(),
        );
        // Nobody may pay it over the network now; if cancelling fails, a late network payment
        // is caught (and logged for review) by the credit's idempotency key.
        if let Err(e) = self.rail()?.node.cancel_invoice(hash).await {
            tracing::warn!(payment_hash = %hash, error = %e, "could not cancel an invoice paid intraledger");
        }
        Ok(LnPayOutcome {
            status: PaymentStatus::Success,
            transaction: Some(self.transaction(payer.wallet.id, posted.journal_id).await?),
            failure: None,
        })
    }

    async fn pay_out(&self, payer: &WalletOwner, target: Target, start: Start) -> Result<LnPayOutcome, BankError> {
        let Start {
            memo,
            idempotency,
            prior,
            origin,
            taken,
        } = start;
        if let Some(prior) = prior {
            return self.prior_payment(payer.wallet.id, prior, Some(&target.invoice)).await;
        }
        let hash = target.invoice.payment_hash;
        // A payment of this hash in flight or done (a wallet's or a melt's) answers here; the
        // guard, when two start at once, is the unique index on live payments per hash.
        if let Some(live) = self.store.live_ln_payment(&hash.to_string()).await? {
            return self
                .live_payment_answer(payer.wallet.id, &idempotency, &target, &live)
                .await;
        }
        let max_fee = self.fee_cap(target.amount)?;
        let held = target.amount.checked_add(max_fee)?;
        let payment = NewLnPayment {
            id: new_payment_id(),
            payment_hash: hash.to_string(),
            wallet_id: Some(payer.wallet.id),
            payment_request: target.invoice.payment_request.clone(),
            amount_sat: target.amount.get(),
            max_fee_sat: max_fee.get(),
            origin,
        };
        let journal = JournalRequest {
            idempotency: idempotency.clone(),
            kind: JournalKind::HoldOpen,
            op: LedgerOp::HoldOpen {
                hold: payment.id.clone(),
                wallet: payer.wallet.id.into(),
                pending: SystemAccount::LightningPending.ledger_id(Currency::Btc),
                amount: held.get(),
            },
            memo,
            limit: Some(LimitCheck {
                subject: payer.wallet.account_id.to_string(),
                kind: LimitKind::Withdrawal,
                max: self.config.limits.sats(payer.level, LimitKind::Withdrawal),
                amount: target.amount.get(),
            }),
        };
        let post = PostRequest {
            reference: Some(reference(&hash)),
            records: std::iter::once(Record::ln_payment_started(&payment, self.store.now_ms()))
                .chain(taken)
                .collect(),
            ..PostRequest::from(journal)
        };
        let rail = self.rail()?;
        // Registered before the hold exists, so reconciliation never races this call.
        let driving = Driving::start(rail, &payment.id);
        let posted = match self.store.post(post).await {
            Ok(Ok(p)) => p,
            Ok(Err(LedgerError::IdempotencyKeyReused)) => {
                // A concurrent retry with the same key won: answer as it will.
                let prior = self.store.journal_for_key(&idempotency).await?;
                return match prior {
                    Some(prior) => self.prior_payment(payer.wallet.id, prior, Some(&target.invoice)).await,
                    None => Err(LedgerError::IdempotencyKeyReused.into()),
                };
            }
            Ok(Err(e)) => return Err(self.payment_error(e, payer.wallet.id)),
            // Another payment of this hash (a wallet's or a melt's) started first.
            Err(e) if e.is_unique_violation() => {
                return match self.store.live_ln_payment(&hash.to_string()).await? {
                    Some(live) => {
                        self.live_payment_answer(payer.wallet.id, &idempotency, &target, &live)
                            .await
                    }
                    None => Err(BankError::PaymentInFlight),
                }
            }
            Err(e) => return Err(e.into()),
        };
        self.publish_journal(payer.wallet.account_id, payer.wallet.id, posted.journal_id);
        crate::crash_point("lightning.held");
        let record = self
            .store
            .ln_payment(&payment.id)
            .await?
            .ok_or_else(|| BankError::LightningUnavailable("payment row vanished".into()))?;
        let state = self.send(rail, &record, target.invoice.amount_msat.is_none()).await;
        self.finish_payment(&record, &state, Closing::default()).await?;
        drop(driving);
        self.payment_outcome(payer.wallet.id, posted.journal_id, &state).await
    }

    /// The answer to a payment of a hash that already has a live payment: this very request's
    /// first attempt (its answer again), or another payment: paid, or in flight.
    async fn live_payment_answer(
        &self,
        wallet: WalletId,
        idempotency: &IdempotencyKey,
        target: &Target,
        live: &LnPaymentRecord,
    ) -> Result<LnPayOutcome, BankError> {
        if let Some(prior) = self.store.journal_for_key(idempotency).await? {
            return self.prior_payment(wallet, prior, Some(&target.invoice)).await;
        }
        match live.status {
            LnPaymentStatus::Succeeded => Ok(LnPayOutcome::already_paid()),
            _ => Err(BankError::PaymentInFlight),
        }
    }

    /// Asks the node to pay a recorded payment (its hold is open) within its fee cap: how it
    /// ended, or `InFlight` when the node's answer is unknown (reconciliation learns it). An
    /// `amountless` invoice is paid the payment's amount; one with an amount, its own.
    pub(crate) async fn send(&self, rail: &Rail, p: &LnPaymentRecord, amountless: bool) -> PaymentState {
        let p = &p.payment;
        let amount_msat = match Sats::positive(p.amount_sat) {
            Ok(a) => amountless.then(|| a.msat()),
            Err(e) => return PaymentState::Failed { reason: e.to_string() },
        };
        let max_fee_msat = match Sats::non_negative(p.max_fee_sat) {
            Ok(f) => f.msat(),
            Err(e) => return PaymentState::Failed { reason: e.to_string() },
        };
        let state = rail
            .node
            .pay(PayRequest {
                payment_request: p.payment_request.clone(),
                amount_msat,
                max_fee_msat,
                timeout_secs: self.config.lightning.pay_timeout_secs,
            })
            .await;
        match state {
            Ok(s) => s,
            // Refused before anything was sent: nothing can be in flight.
            Err(
                e @ (LightningError::InvalidInvoice(_)
                | LightningError::InvalidInput(_)
                | LightningError::WrongNetwork { .. }
                | LightningError::NoRoute(_)),
            ) => PaymentState::Failed { reason: e.to_string() },
            Err(e) => {
                tracing::warn!(payment = %p.id, error = %e, "payment outcome unknown; left pending for reconciliation");
                PaymentState::InFlight
            }
        }
    }

    /// The answer for a retry of a payment that already started.
    pub(crate) async fn prior_payment(
        &self,
        wallet: WalletId,
        prior: JournalId,
        invoice: Option<&Invoice>,
    ) -> Result<LnPayOutcome, BankError> {
        let journal = self.store.journal(prior).await?;
        let hold = journal.and_then(|j| j.hold).map(HoldId::new);
        let Some(record) = hold.as_ref().map(|h| self.store.ln_payment(h)) else {
            return Err(LedgerError::IdempotencyKeyReused.into());
        };
        let record = record
            .await?
            .ok_or(BankError::Ledger(LedgerError::IdempotencyKeyReused))?;
        if invoice.is_some_and(|i| record.payment.payment_hash != i.payment_hash.to_string()) {
            return Err(LedgerError::IdempotencyKeyReused.into());
        }
        let state = match record.status {
            LnPaymentStatus::Pending => PaymentState::InFlight,
            LnPaymentStatus::Succeeded => PaymentState::Succeeded {
                preimage: None,
                fee_msat: 0,
            },
            LnPaymentStatus::Failed => PaymentState::Failed {
                reason: record.failure.clone().unwrap_or_default(),
            },
        };
        self.payment_outcome(wallet, prior, &state).await
    }

    async fn payment_outcome(
        &self,
        wallet: WalletId,
        journal: JournalId,
        state: &PaymentState,
    ) -> Result<LnPayOutcome, BankError> {
        let (status, failure) = match state {
            PaymentState::Succeeded { .. } => (PaymentStatus::Success, None),
            PaymentState::Failed { reason } => (PaymentStatus::Failure, Some(reason.clone())),
            PaymentState::InFlight => (PaymentStatus::Pending, None),
        };
        Ok(LnPayOutcome {
            status,
            transaction: Some(self.transaction(wallet, journal).await?),
            failure,
        })
    }

    /// Settles or reverses a pending payment's hold from the node's answer (in flight: nothing),
    /// with `closing`'s records and kept part. Safe to repeat: the closing journal's key is the
    /// payment's id.
    pub(crate) async fn finish_payment(
        &self,
        record: &LnPaymentRecord,
        state: &PaymentState,
        closing: Closing,
    ) -> Result<(), BankError> {
        let p = &record.payment;
        let (op, kind, end) = match state {
            PaymentState::InFlight => return Ok(()),
            PaymentState::Succeeded { preimage, fee_msat } => {
                // Never more than the cap the node was given (and the hold covers).
                let fee = Sats::from_msat_up(*fee_msat)?.get().min(p.max_fee_sat);
                let op = LedgerOp::HoldSettle {
                    hold: p.id.clone(),
                    to: SystemAccount::LightningNode.ledger_id(Currency::Btc),
                    used: p.amount_sat + fee,
                    fee,
                    keep: closing.keep,
                    keep_to: (closing.keep > 0).then(|| SystemAccount::FeesRevenue.ledger_id(Currency::Btc)),
                };
                let end = LnPaymentEnd::Succeeded {
                    fee_sat: fee,
                    preimage: preimage.map(|h| h.to_string()),
                };
                (op, JournalKind::HoldSettle, end)
            }
            PaymentState::Failed { reason } => {
                let op = LedgerOp::HoldReverse { hold: p.id.clone() };
                let end = LnPaymentEnd::Failed { reason: reason.clone() };
                (op, JournalKind::HoldReverse, end)
            }
        };
        // A failed payment gives back what it spent besides money (a link's use, a card's
        // spend).
        let returned = match (&end, p.origin.as_deref()) {
            (LnPaymentEnd::Failed { .. }, Some(origin)) => allowance_returned(origin),
            _ => None,
        };
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: PAYMENT_SCOPE.into(),
                key: p.id.to_string(),
            },
            kind,
            op,
            memo: None,
            limit: None,
        };
        let hash: Option<Hash32> = p.payment_hash.parse().ok();
        let post = PostRequest {
            reference: hash.as_ref().map(reference),
            records: std::iter::once(Record::ln_payment_ended(&p.id, &end, self.store.now_ms()))
                .chain(returned)
                .chain(closing.records)
                .collect(),
            ..PostRequest::from(journal)
        };
        match self.store.post(post).await? {
            Ok(posted) => {
                // A budget's payment (a payout's) is in no app's history: nobody to tell.
                let paid_from = match (posted.replayed, p.wallet_id) {
                    (false, Some(wallet)) => self.store.wallet(wallet).await?,
                    _ => None,
                };
                if let Some(wallet) = paid_from {
                    // The payment's line in history is its opening journal; tell the app it changed.
                    let opened = self.store.hold_journal(&p.id).await?.unwrap_or(posted.journal_id);
                    self.publish_journal(wallet.account_id, wallet.id, opened);
                }
                Ok(())
            }
            // Closed by a concurrent pass (the other outcome is impossible: one node answer).
            Err(LedgerError::HoldClosed { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Resolves every pending payment older than the grace period from the node's truth.
    pub async fn ln_reconcile(&self) -> Result<ReconcileReport, BankError> {
        let rail = self.rail()?;
        let grace_ms = i64::try_from(self.config.lightning.reconcile_grace_secs.saturating_mul(1_000)).unwrap_or(0);
        let now = self.store.now_ms();
        let mut report = ReconcileReport::default();
        for record in self.store.pending_ln_payments(RECONCILE_BATCH).await? {
            if now - record.created_at_ms < grace_ms {
                continue;
            }
            let Some(_driving) = Driving::start(rail, &record.payment.id) else {
                continue;
            };
            report.checked += 1;
            let Ok(hash) = record.payment.payment_hash.parse::<Hash32>() else {
                tracing::error!(payment = %record.payment.id, "stored payment hash is not hex; left pending");
                report.pending += 1;
                continue;
            };
            let state = match rail.node.track_payment(hash).await {
                Ok(s) => s,
                // The node never had it: the process stopped between the hold and the call.
                Err(LightningError::NotFound) => PaymentState::Failed {
                    reason: "the node never received the payment".into(),
                },
                Err(e) => {
                    tracing::warn!(payment = %record.payment.id, error = %e, "could not track payment");
                    report.pending += 1;
                    continue;
                }
            };
            match &state {
                PaymentState::Succeeded { .. } => report.succeeded += 1,
                PaymentState::Failed { .. } => report.failed += 1,
                PaymentState::InFlight => report.pending += 1,
            }
            self.finish_payment(&record, &state, Closing::default()).await?;
        }
        Ok(report)
    }

    /// Credits a settled invoice of ours, once. Returns whether it was credited now.
    pub async fn ln_credit_settlement(&self, settled: &SettledInvoice) -> Result<bool, BankError> {
        let hash = settled.payment_hash;
        let Some(invoice) = self.store.ln_invoice(&hash.to_string()).await? else {
            return self.credit_mint_quote(settled).await;
        };
        let amount = Sats::from_msat_down(settled.amount_received_msat)?;
        if amount.get() == 0 {
            tracing::warn!(payment_hash = %hash, msat = settled.amount_received_msat, "settlement below one satoshi; not credited");
            return Ok(false);
        }
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: INVOICE_SCOPE.into(),
                key: hash.to_string(),
            },
            kind: JournalKind::LnReceive,
            op: LedgerOp::Transfer {
                from: SystemAccount::LightningNode.ledger_id(Currency::Btc),
                to: invoice.invoice.wallet_id.into(),
                amount: amount.get(),
                fee: 0,
                fee_to: None,
            },
            memo: invoice.invoice.memo.clone(),
            limit: None,
        };
        let post = PostRequest {
            reference: Some(reference(&hash)),
            records: vec![Record::ln_invoice_paid(
                &hash.to_string(),
                amount.get(),
                PaidVia::Lightning,
                self.store.now_ms(),
            )],
            ..PostRequest::from(journal)
        };
        match self.store.post(post).await? {
            Ok(posted) if !posted.replayed => {
                self.publish_invoice_paid(
                    invoice.account_id,
                    invoice.invoice.wallet_id,
                    posted.journal_id,
                    &hash.to_string(),
                );
                Ok(true)
            }
            Ok(_) => Ok(false),
            Err(LedgerError::IdempotencyKeyReused) => {
                tracing::error!(
                    payment_hash = %hash,
                    sats = amount.get(),
                    "invoice paid over Lightning after it was paid inside Flash; the node keeps the funds for operator review"
                );
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Credits every settlement the node reports, from where the last run stopped, until
    /// `shutdown` resolves. Survives node and database errors by retrying with back-off.
    pub async fn run_ln_settlements(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let Ok(rail) = self.rail() else { return };
        let node_id = loop {
            match rail.node.node_info().await {
                Ok(info) => break info.pubkey,
                Err(e) => {
                    tracing::warn!(error = %e, "Lightning node not ready; retrying");
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        };
        let mut backoff = Duration::from_millis(200);
        loop {
            let mut progressed = false;
            tokio::select! {
                _ = &mut shutdown => return,
                result = self.credit_settlements(rail, &node_id, &mut progressed) => {
                    let Err(e) = result;
                    if progressed {
                        backoff = Duration::from_millis(200);
                    }
                    tracing::warn!(error = %e, retry_in_ms = backoff.as_millis() as u64, "crediting Lightning settlements failed");
                    tokio::select! {
                        _ = &mut shutdown => return,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    }

    /// Follows the node's settlements from the stored cursor, crediting up to
    /// [`SETTLEMENTS_IN_FLIGHT`] at once (their journals commit together), and moves the cursor
    /// past a settlement only once it and every one before it are credited. Runs until an error;
    /// the caller starts it again from the cursor (crediting twice is a replay). `progressed`
    /// turns true once the cursor has moved.
    async fn credit_settlements(
        &self,
        rail: &Rail,
        node_id: &str,
        progressed: &mut bool,
    ) -> Result<std::convert::Infallible, BankError> {
        let mut last_seen = self.store.ln_settle_cursor(node_id).await?;
        let mut next = rail.node.wait_settled(last_seen);
        let mut crediting = futures_util::stream::FuturesOrdered::new();
        loop {
            tokio::select! {
                settled = &mut next, if crediting.len() < SETTLEMENTS_IN_FLIGHT => {
                    let settled = settled.map_err(lightning_error)?;
                    last_seen = settled.settle_index;
                    next = rail.node.wait_settled(last_seen);
                    crediting.push_back(async move {
                        self.ln_credit_settlement(&settled).await.map(|_| settled.settle_index)
                    });
                }
                Some(done) = crediting.next(), if !crediting.is_empty() => {
                    let mut through = done?;
                    while let Some(Some(more)) = crediting.next().now_or_never() {
                        through = more?;
                    }
                    self.store.advance_ln_settle_cursor(node_id, through).await?;
                    *progressed = true;
                }
            }
        }
    }

    /// Reconciles pending payments now and then every configured interval, until `shutdown`.
    pub async fn run_ln_reconciler(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let every = Duration::from_secs(self.config.lightning.reconcile_interval_secs.max(1));
        loop {
            match self.ln_reconcile().await {
                Ok(r) if r.checked > 0 => tracing::info!(
                    checked = r.checked,
                    succeeded = r.succeeded,
                    failed = r.failed,
                    pending = r.pending,
                    "reconciled Lightning payments"
                ),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "Lightning reconciliation failed"),
            }
            tokio::select! {
                _ = &mut shutdown => return,
                _ = tokio::time::sleep(every) => {}
            }
        }
    }

    /// The invoice text and preimage behind a wallet's Lightning transaction (its journal and
    /// payment hash): the invoice this Flash issued, or the one the wallet paid in that
    /// attempt.
    pub async fn ln_details(&self, journal: JournalId, payment_hash: &str) -> Result<LnDetails, BankError> {
        if let Some(invoice) = self.store.ln_invoice(payment_hash).await? {
            return Ok(LnDetails {
                payment_request: Some(invoice.invoice.payment_request),
                preimage: None,
            });
        }
        let payment = self.store.ln_payment_opened_by(journal).await?;
        Ok(LnDetails {
            payment_request: payment.as_ref().map(|p| p.payment.payment_request.clone()),
            preimage: payment.and_then(|p| p.preimage),
        })
    }

    /// Dev/regtest: pays one of our invoices from the simulated outside world. Refused on
    /// mainnet and without a simulator.
    pub async fn dev_ln_pay_from_outside(&self, payment_request: &str, amount: Option<i64>) -> Result<(), BankError> {
        if !self.config.network.allows_dev_features() {
            return Err(BankError::NotOnMainnet);
        }
        let simulator = self
            .rail()?
            .simulator
            .clone()
            .ok_or_else(|| BankError::LightningUnavailable("the Lightning backend is not a simulator".into()))?;
        let amount_msat = amount.map(Sats::positive).transpose()?.map(Sats::msat);
        let settled = simulator
            .pay_from_outside(payment_request.trim(), amount_msat)
            .map_err(|e| match e {
                LightningError::AlreadyPaid => BankError::InvoiceAlreadyPaid,
                LightningError::NotFound => BankError::InvoiceNotFound,
                other => lightning_error(other),
            })?;
        // Credit now rather than waiting for the settlement loop, so the caller sees it.
        self.ln_credit_settlement(&settled).await.map(|_| ())
    }

    /// Dev/regtest: how the simulator's payments to other nodes end from now on.
    pub fn dev_ln_set_outcome(&self, outcome: flash_core::lightning::DevOutcome) -> Result<(), BankError> {
        if !self.config.network.allows_dev_features() {
            return Err(BankError::NotOnMainnet);
        }
        let rail = self.rail()?;
        let simulator = rail
            .simulator
            .as_ref()
            .ok_or_else(|| BankError::LightningUnavailable("the Lightning backend is not a simulator".into()))?;
        simulator.set_outcome(outcome).map_err(lightning_error)
    }
}
