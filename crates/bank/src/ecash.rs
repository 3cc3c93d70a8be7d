//! The ledger side of the Cashu mint (`flash-mint`): what ecash does to Flash wallets and to
//! the Lightning rail. The mint keeps the protocol; the bank moves the money.
//!
//! - Ecash in circulation is the liability `mint:outstanding`; mint quotes paid and not yet
//!   issued are `mint:quotes`.
//! - A mint quote's invoice is credited like a wallet's (idempotency key `("ln-invoice", hash)`),
//!   into `mint:quotes`, whether the network or a Flash wallet pays it.
//! - A melt to an invoice of this Flash (a wallet's or a mint quote's) settles inside the ledger
//!   with no routing fee, under the same key, so the invoice is paid once whoever pays it.
//! - A melt to any other invoice is a Lightning payment like a wallet's send (same
//!   `ln_payments` row, hold, settle and reverse), its hold taken from `mint:outstanding`: the
//!   unique index on live payments per hash lets one of them, whoever pays, go.
//! - Wallet ↔ ecash moves (`ecashMint`, `ecashRedeem`) are journals whose rail records (the
//!   notes signed or redeemed) commit with them.

use flash_core::ledger::{IdempotencyKey, JournalKind, JournalRequest, LedgerError, LedgerOp, LimitCheck};
use flash_core::lightning::{Hash32, Invoice, InvoiceDescription, InvoiceRequest, PaymentState, SettledInvoice};
use flash_core::{AccountId, AccountStatus, Currency, HoldId, JournalId, LimitKind, Sats, SystemAccount, WalletId};
use flash_store::{
    LnPaymentRecord, MintQuoteState, NewLnPayment, PaidVia, PostRequest, Record, StoreError, WalletOwner,
};

use crate::lightning::{
    lightning_error, new_payment_id, reference, Closing, LnPayOutcome, PaymentStatus, Target, INVOICE_SCOPE,
};
use crate::payments::idempotency;
use crate::{Bank, BankError};

/// Memo of the invoices that pay mint quotes.
const MINT_INVOICE_MEMO: &str = "Flash ecash";
/// Idempotency scope of the journals that open a melt's hold (key: the payment id).
const MELT_HOLD_SCOPE: &str = "ecash-melt-hold";
/// How a melt's payment is marked (`origin`), before the quote id.
const MELT_ORIGIN: &str = "melt:";

/// A melt's payment over Lightning, as the mint starts it ([`Bank::melt_pay_start`]).
#[derive(Debug)]
pub struct MeltPayment<'a> {
    /// The payment's id (also its hold's), from [`Bank::melt_payment_id`]; the quote records
    /// it.
    pub id: HoldId,
    /// The melt quote.
    pub quote_id: &'a str,
    /// The invoice, its amount and fee reserve.
    pub target: &'a MeltTarget,
    /// Satoshis held: the value of the notes the melt makes pending (at least amount + fee
    /// reserve).
    pub held: i64,
    /// The mint's rows that commit with the hold: the notes pending, the quote pending.
    pub records: Vec<Record>,
}

/// An invoice a melt would pay, as the bank sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MeltTarget {
    /// The invoice, normalised (no `lightning:` prefix).
    pub payment_request: String,
    /// Its payment hash.
    pub payment_hash: Hash32,
    /// Satoshis paid to it.
    pub amount: i64,
    /// Most the routing fee may be (0 inside Flash).
    pub fee_reserve: i64,
    /// Whether this Flash issued it (settled inside the ledger).
    pub internal: bool,
    /// When it expires, Unix ms.
    pub expires_at_ms: i64,
}

/// A move between the bank's own accounts for the mint (notes issued, a swap's input fee): `amount` from `from` to `to`, and `revenue` more from `from` to
/// `fees:revenue`, once per idempotency key `(scope, key)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MintMove<'a> {
    /// Idempotency scope.
    pub scope: &'a str,
    /// Idempotency key.
    pub key: &'a str,
    /// The account paying.
    pub from: SystemAccount,
    /// The account paid.
    pub to: SystemAccount,
    /// Satoshis to `to`.
    pub amount: i64,
    /// Satoshis to `fees:revenue`.
    pub revenue: i64,
    /// Journal memo.
    pub memo: &'a str,
}

impl MintMove<'_> {
    /// The ledger request: the journal with the mint's `records` (the notes and quotes it
    /// changes).
    fn post_request(self, records: Vec<Record>) -> PostRequest {
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: self.scope.into(),
                key: self.key.into(),
            },
            kind: JournalKind::Ecash,
            op: LedgerOp::Transfer {
                from: self.from.ledger_id(Currency::Btc),
                to: self.to.ledger_id(Currency::Btc),
                amount: self.amount,
                fee: self.revenue,
                fee_to: (self.revenue > 0).then(|| SystemAccount::FeesRevenue.ledger_id(Currency::Btc)),
            },
            memo: Some(self.memo.into()),
            limit: None,
        };
        PostRequest {
            records,
            ..PostRequest::from(journal)
        }
    }
}

/// A movement between a Flash wallet and ecash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EcashMove {
    /// The wallet's account (must own it).
    pub account: AccountId,
    /// The wallet.
    pub wallet_id: WalletId,
    /// Satoshis leaving (mint) or reaching (redeem) the wallet.
    pub amount: i64,
    /// The mint's input fee kept on a redeem (0 on a mint).
    pub fee: i64,
    /// Makes a retry return the first answer.
    pub idempotency_key: String,
    /// The mint's records (notes signed or redeemed) that commit with the journal.
    pub records: Vec<Record>,
}

impl Bank {
    /// Posts `mv` and the mint's `records` in one transaction, once per idempotency key:
    /// `Ok(true)` when this call posted it, `Ok(false)` when the key was used before (nothing of
    /// this call was written). A record the store refuses comes back as [`BankError::Refused`].
    pub async fn post_mint_move(&self, mv: MintMove<'_>, records: Vec<Record>) -> Result<bool, BankError> {
        match self.store.post(mv.post_request(records)).await? {
            Ok(posted) => Ok(!posted.replayed),
            Err(e) => Err(BankError::Ledger(e)),
        }
    }

    /// Issues an invoice for a mint quote of `amount` satoshis; nothing is recorded here (the
    /// mint records its quote with the invoice's hash).
    pub async fn ln_invoice_for_mint(&self, amount: i64, expiry_secs: u64) -> Result<Invoice, BankError> {
        let amount = Sats::positive(amount)?;
        self.issue_invoice(InvoiceRequest {
            amount_msat: Some(amount.msat()),
            description: InvoiceDescription::Memo(MINT_INVOICE_MEMO.into()),
            expiry_secs,
        })
        .await
        .map_err(lightning_error)
    }

    /// What a melt of `payment_request` would pay: the amount, whether it stays inside Flash,
    /// and the fee reserve otherwise.
    pub async fn melt_target(&self, payment_request: &str, amount: Option<i64>) -> Result<MeltTarget, BankError> {
        let target = self.target(payment_request, amount).await?;
        let hash = target.invoice.payment_hash;
        let internal = self.own_invoice(&target.invoice).await?.is_some() || self.mint_invoice(&target.invoice).await?;
        let fee_reserve = if internal {
            0
        } else {
            self.fee_cap(target.amount)?.get()
        };
        let expires_secs = target
            .invoice
            .created_at_secs
            .saturating_add(target.invoice.expiry_secs);
        Ok(MeltTarget {
            payment_request: target.invoice.payment_request,
            payment_hash: hash,
            amount: target.amount.get(),
            fee_reserve,
            internal,
            expires_at_ms: i64::try_from(expires_secs.saturating_mul(1_000)).unwrap_or(i64::MAX),
        })
    }

    /// Whether `invoice` is one this Flash issued for a mint quote.
    pub(crate) async fn mint_invoice(&self, invoice: &Invoice) -> Result<bool, BankError> {
        let quote = self.store.mint_quote_by_hash(&invoice.payment_hash.to_string()).await?;
        Ok(quote.is_some_and(|q| q.request.eq_ignore_ascii_case(&invoice.payment_request)))
    }

    /// Credits a settled invoice that pays a mint quote into `mint:quotes`, once, and marks the
    /// quote paid. Returns whether it was credited now.
    pub(crate) async fn credit_mint_quote(&self, settled: &SettledInvoice) -> Result<bool, BankError> {
        let hash = settled.payment_hash;
        let Some(quote) = self.store.mint_quote_by_hash(&hash.to_string()).await? else {
            tracing::warn!(payment_hash = %hash, "the node settled an invoice Flash did not issue; not credited");
            return Ok(false);
        };
        if quote.state != MintQuoteState::Unpaid {
            return Ok(false);
        }
        let received = Sats::from_msat_down(settled.amount_received_msat)?;
        if received.get() < quote.amount {
            tracing::error!(payment_hash = %hash, received = received.get(), quote = quote.amount,
                "a mint quote's invoice settled for less than the quote; not credited");
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
                to: SystemAccount::MintQuotes.ledger_id(Currency::Btc),
                amount: quote.amount,
                fee: 0,
                fee_to: None,
            },
            memo: Some(MINT_INVOICE_MEMO.into()),
            limit: None,
        };
        let post = PostRequest {
            reference: Some(reference(&hash)),
            records: vec![Record::mint_quote_paid(&quote.id, self.store.now_ms())],
            ..PostRequest::from(journal)
        };
        match self.store.post(post).await {
            Ok(Ok(posted)) => Ok(!posted.replayed),
            Ok(Err(LedgerError::IdempotencyKeyReused)) => {
                tracing::error!(payment_hash = %hash, "mint quote invoice paid over Lightning after it was paid inside Flash; the node keeps the funds for operator review");
                Ok(false)
            }
            Ok(Err(e)) => Err(e.into()),
            Err(StoreError::Refused(_)) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Pays a mint quote's invoice from a Flash wallet inside the ledger (no fee, no hop),
    /// under the withdrawal limit: ecash is bearer money leaving the account.
    pub(crate) async fn pay_mint_quote(
        &self,
        payer: &WalletOwner,
        target: Target,
        memo: Option<String>,
        taken: Vec<Record>,
    ) -> Result<LnPayOutcome, BankError> {
        let hash = target.invoice.payment_hash;
        let quote = self
            .store
            .mint_quote_by_hash(&hash.to_string())
            .await?
            .ok_or_else(|| BankError::InvalidInvoice("not an invoice of this Flash".into()))?;
        if quote.state != MintQuoteState::Unpaid {
            return Ok(LnPayOutcome::already_paid());
        }
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: INVOICE_SCOPE.into(),
                key: hash.to_string(),
            },
            kind: JournalKind::Ecash,
            op: LedgerOp::Transfer {
                from: payer.wallet.id.into(),
                to: SystemAccount::MintQuotes.ledger_id(Currency::Btc),
                amount: quote.amount,
                fee: 0,
                fee_to: None,
            },
            memo: memo.or_else(|| Some(MINT_INVOICE_MEMO.into())),
            limit: Some(LimitCheck {
                subject: payer.wallet.account_id.to_string(),
                kind: LimitKind::Withdrawal,
                max: self.config.limits.sats(payer.level, LimitKind::Withdrawal),
                amount: quote.amount,
            }),
        };
        let post = PostRequest {
            reference: Some(reference(&hash)),
            records: std::iter::once(Record::mint_quote_paid(&quote.id, self.store.now_ms()))
                .chain(taken)
                .collect(),
            ..PostRequest::from(journal)
        };
        let posted = match self.store.post(post).await {
            Ok(Ok(p)) if p.replayed => return Ok(LnPayOutcome::already_paid()),
            Ok(Ok(p)) => p,
            Ok(Err(LedgerError::IdempotencyKeyReused)) | Err(StoreError::Refused(_)) => {
                return Ok(LnPayOutcome::already_paid())
            }
            Ok(Err(e)) => return Err(self.payment_error(e, payer.wallet.id)),
            Err(e) => return Err(e.into()),
        };
        self.publish_journal(payer.wallet.account_id, payer.wallet.id, posted.journal_id);
        if let Err(e) = self.rail()?.node.cancel_invoice(hash).await {
            tracing::warn!(payment_hash = %hash, error = %e, "could not cancel a mint invoice paid inside Flash");
        }
        Ok(LnPayOutcome {
            status: PaymentStatus::Success,
            transaction: Some(self.transaction(payer.wallet.id, posted.journal_id).await?),
            failure: None,
        })
    }

    /// Settles a melt to an invoice of this Flash inside the ledger: `mint:outstanding` pays
    /// the invoice's wallet or mint quote (amount), plus `fee` to revenue; `records` (the notes
    /// spent, the quote paid, the change) commit with it. Returns false when the invoice was
    /// already paid (nothing changed).
    pub async fn melt_internal(&self, target: &MeltTarget, fee: i64, records: Vec<Record>) -> Result<bool, BankError> {
        let hash = target.payment_hash.to_string();
        let now = self.store.now_ms();
        let (to, paid, payee) = match self.store.ln_invoice(&hash).await? {
            Some(inv)
                if inv
                    .invoice
                    .payment_request
                    .eq_ignore_ascii_case(&target.payment_request) =>
            {
                if inv.paid_at_ms.is_some() {
                    return Ok(false);
                }
                let record = Record::ln_invoice_paid(&hash, target.amount, PaidVia::IntraLedger, now);
                let payee = (inv.account_id, inv.invoice.wallet_id);
                (inv.invoice.wallet_id.into(), record, Some(payee))
            }
            _ => match self.store.mint_quote_by_hash(&hash).await? {
                Some(q) if q.request.eq_ignore_ascii_case(&target.payment_request) => (
                    SystemAccount::MintQuotes.ledger_id(Currency::Btc),
                    Record::mint_quote_paid(&q.id, now),
                    None,
                ),
                _ => return Err(BankError::InvalidInvoice("not an invoice of this Flash".into())),
            },
        };
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: INVOICE_SCOPE.into(),
                key: hash.clone(),
            },
            kind: JournalKind::Ecash,
            op: LedgerOp::Transfer {
                from: SystemAccount::MintOutstanding.ledger_id(Currency::Btc),
                to,
                amount: target.amount,
                fee,
                fee_to: (fee > 0).then(|| SystemAccount::FeesRevenue.ledger_id(Currency::Btc)),
            },
            memo: Some("ecash melt".into()),
            limit: None,
        };
        let post = PostRequest {
            reference: Some(reference(&target.payment_hash)),
            records: std::iter::once(paid).chain(records).collect(),
            ..PostRequest::from(journal)
        };
        let posted = match self.store.post(post).await? {
            Ok(p) if !p.replayed => p,
            Ok(_) | Err(LedgerError::IdempotencyKeyReused) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        if let Some((account, wallet)) = payee {
            self.publish_invoice_paid(account, wallet, posted.journal_id, &hash);
        }
        if let Err(e) = self.rail()?.node.cancel_invoice(target.payment_hash).await {
            tracing::warn!(payment_hash = %hash, error = %e, "could not cancel an invoice paid by a melt");
        }
        Ok(true)
    }

    /// Starts paying an invoice outside Flash for a melt, through the Lightning payment saga
    /// a wallet's send goes through: one transaction opens the hold of `held` satoshis (the
    /// value of the notes the melt makes pending) from `mint:outstanding` to
    /// `lightning:pending`, writes the payment row (`ln_payments`, origin `melt:<quote>`) and
    /// commits the mint's `records` (the notes pending, the quote pending with this payment).
    /// A payment of the same hash already in flight or done, a wallet's or a melt's, makes the
    /// unique index on live payments refuse it: [`BankError::PaymentInFlight`], nothing
    /// written.
    pub async fn melt_pay_start(&self, melt: MeltPayment<'_>) -> Result<(), BankError> {
        let target = melt.target;
        let amount = Sats::positive(target.amount)?;
        let max_fee = Sats::non_negative(target.fee_reserve)?;
        let held = Sats::positive(melt.held)?;
        if held.get() < amount.checked_add(max_fee)?.get() {
            return Err(BankError::InvalidInput(format!(
                "{} sats of notes do not cover {} + a fee reserve of {}",
                held.get(),
                amount.get(),
                max_fee.get()
            )));
        }
        let payment = NewLnPayment {
            id: melt.id.clone(),
            payment_hash: target.payment_hash.to_string(),
            wallet_id: None,
            payment_request: target.payment_request.clone(),
            amount_sat: amount.get(),
            max_fee_sat: max_fee.get(),
            origin: Some(format!("{MELT_ORIGIN}{}", melt.quote_id)),
        };
        let journal = JournalRequest {
            idempotency: IdempotencyKey {
                scope: MELT_HOLD_SCOPE.into(),
                key: melt.id.to_string(),
            },
            kind: JournalKind::HoldOpen,
            op: LedgerOp::HoldOpen {
                hold: melt.id.clone(),
                wallet: SystemAccount::MintOutstanding.ledger_id(Currency::Btc),
                pending: SystemAccount::LightningPending.ledger_id(Currency::Btc),
                amount: held.get(),
            },
            memo: Some("ecash melt".into()),
            limit: None,
        };
        let post = PostRequest {
            reference: Some(reference(&target.payment_hash)),
            records: std::iter::once(Record::ln_payment_started(&payment, self.store.now_ms()))
                .chain(melt.records)
                .collect(),
            ..PostRequest::from(journal)
        };
        match self.store.post(post).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(e.into()),
            Err(e) if e.is_unique_violation() => Err(BankError::PaymentInFlight),
            Err(e) => Err(e.into()),
        }
    }

    /// Asks the node to pay a melt's payment started by [`Bank::melt_pay_start`], as a
    /// wallet's send is paid: how it ended, or `InFlight` when the node's answer is unknown.
    pub async fn melt_pay(&self, payment: &HoldId) -> Result<PaymentState, BankError> {
        let rail = self.rail()?;
        let record = self.melt_payment(payment).await?;
        let invoice = self.decode(&record.payment.payment_request).await?;
        Ok(self.send(rail, &record, invoice.amount_msat.is_none()).await)
    }

    /// Ends a melt's payment from the node's answer (in flight: nothing), through the closing
    /// journal every Lightning payment ends with: success settles its hold (amount + routing
    /// fee to `lightning:node`, `keep` to `fees:revenue`, the rest — the change — back to
    /// `mint:outstanding`), failure reverses it. The mint's `records` (notes spent or released,
    /// the quote, the change's signatures) commit with it. Safe to repeat: a payment closes
    /// once, and a second call changes nothing.
    pub async fn melt_finish(
        &self,
        payment: &HoldId,
        state: &PaymentState,
        records: Vec<Record>,
        keep: i64,
    ) -> Result<(), BankError> {
        let keep = Sats::non_negative(keep)?.get();
        let record = self.melt_payment(payment).await?;
        self.finish_payment(&record, state, Closing { records, keep }).await
    }

    /// The routing fee a melt's payment is charged when the node reports `fee_msat`, satoshis:
    /// rounded up, never above the fee reserve (the cap the node was given). The same rule
    /// settles the payment's hold, so the mint's change is computed from what the ledger pays.
    pub fn melt_fee_paid(fee_msat: u64, fee_reserve: i64) -> Result<i64, BankError> {
        Ok(Sats::from_msat_up(fee_msat)?.get().min(fee_reserve))
    }

    async fn melt_payment(&self, payment: &HoldId) -> Result<LnPaymentRecord, BankError> {
        self.store
            .ln_payment(payment)
            .await?
            .filter(|r| r.payment.wallet_id.is_none())
            .ok_or_else(|| BankError::Store(StoreError::Invariant(format!("{payment} is not a melt's payment"))))
    }

    /// A fresh id for a melt's payment, to record with its quote.
    pub fn melt_payment_id(&self) -> HoldId {
        new_payment_id()
    }

    /// Where a melt's Lightning payment stands now. A payment the node never heard of failed
    /// (the process stopped between making the notes pending and calling the node); ask only
    /// once nobody can still be sending it (see `reconcile_grace_secs`).
    pub async fn melt_track(&self, payment_hash: Hash32) -> Result<PaymentState, BankError> {
        match self.rail()?.node.track_payment(payment_hash).await {
            Ok(state) => Ok(state),
            Err(flash_core::lightning::LightningError::NotFound) => Ok(PaymentState::Failed {
                reason: "the node never received the payment".into(),
            }),
            Err(e) => Err(lightning_error(e)),
        }
    }

    /// Turns wallet balance into ecash: the wallet pays `mint:outstanding`, under the
    /// withdrawal limit; the mint's records (the signatures) commit with it. A retry under the
    /// same key is refused (`IDEMPOTENCY_KEY_REUSED`): its records were not written,
    /// so the notes the caller signed for it must not be handed out.
    pub async fn ecash_from_wallet(&self, mv: EcashMove) -> Result<JournalId, BankError> {
        let amount = Sats::positive(mv.amount)?;
        let idempotency = idempotency(mv.account.to_string(), Some(mv.idempotency_key))?;
        let owner = self.ecash_wallet(mv.account, mv.wallet_id).await?;
        let journal = JournalRequest {
            idempotency,
            kind: JournalKind::Ecash,
            op: LedgerOp::Transfer {
                from: mv.wallet_id.into(),
                to: SystemAccount::MintOutstanding.ledger_id(Currency::Btc),
                amount: amount.get(),
                fee: 0,
                fee_to: None,
            },
            memo: Some("ecash minted".into()),
            limit: Some(LimitCheck {
                subject: mv.account.to_string(),
                kind: LimitKind::Withdrawal,
                max: self.config.limits.sats(owner, LimitKind::Withdrawal),
                amount: amount.get(),
            }),
        };
        match self.post_ecash(journal, mv.records, mv.account, mv.wallet_id).await? {
            (_, true) => Err(BankError::Ledger(LedgerError::IdempotencyKeyReused)),
            (journal_id, false) => Ok(journal_id),
        }
    }

    /// Redeems ecash into a wallet: `mint:outstanding` pays the wallet `amount`, plus the
    /// mint's input `fee` to revenue; the records (the notes spent) commit with it.
    pub async fn ecash_to_wallet(&self, mv: EcashMove) -> Result<JournalId, BankError> {
        let amount = Sats::positive(mv.amount)?;
        let fee = Sats::non_negative(mv.fee)?;
        let idempotency = idempotency(mv.account.to_string(), Some(mv.idempotency_key))?;
        self.ecash_wallet(mv.account, mv.wallet_id).await?;
        let journal = JournalRequest {
            idempotency,
            kind: JournalKind::Ecash,
            op: LedgerOp::Transfer {
                from: SystemAccount::MintOutstanding.ledger_id(Currency::Btc),
                to: mv.wallet_id.into(),
                amount: amount.get(),
                fee: fee.get(),
                fee_to: (fee.get() > 0).then(|| SystemAccount::FeesRevenue.ledger_id(Currency::Btc)),
            },
            memo: Some("ecash redeemed".into()),
            limit: None,
        };
        Ok(self.post_ecash(journal, mv.records, mv.account, mv.wallet_id).await?.0)
    }

    /// The level of the active account that owns the BTC wallet `wallet_id`.
    async fn ecash_wallet(
        &self,
        account: AccountId,
        wallet_id: WalletId,
    ) -> Result<flash_core::AccountLevel, BankError> {
        let wallet = self.store.wallet(wallet_id).await?.ok_or(BankError::WalletNotFound)?;
        if wallet.account_id != account || wallet.currency != Currency::Btc {
            return Err(BankError::WalletNotFound);
        }
        let record = self.store.account(account).await?.ok_or(BankError::AccountNotFound)?;
        if record.status != AccountStatus::Active {
            return Err(BankError::AccountNotActive(record.status.as_str()));
        }
        Ok(record.level)
    }

    /// Posts a wallet ↔ ecash journal with the mint's records; its id and whether it was a
    /// replay (records not written again).
    async fn post_ecash(
        &self,
        journal: JournalRequest,
        records: Vec<Record>,
        account: AccountId,
        wallet_id: WalletId,
    ) -> Result<(JournalId, bool), BankError> {
        let post = PostRequest {
            records,
            ..PostRequest::from(journal)
        };
        let posted = self
            .store
            .post(post)
            .await?
            .map_err(|e| self.payment_error(e, wallet_id))?;
        if !posted.replayed {
            self.publish_journal(account, wallet_id, posted.journal_id);
        }
        Ok((posted.journal_id, posted.replayed))
    }
}
