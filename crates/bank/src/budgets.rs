//! Budgets and payouts. A budget is money an account sets aside for a purpose (a store's pull
//! payment): a budget wallet it owns, funded from one of its wallets by one journal. Only the
//! payouts of what it funds spend it, each attempt on whatever rail its destination needs, and
//! what is left goes back to the wallet it came from.
//!
//! A payout's attempt `n` pays under the idempotency key `payout:<id>:<n>` and takes the payout
//! from `AwaitingPayment` to `InProgress` in the transaction that moves or holds its money
//! (`Allowance::Payout`); a failed Lightning payment gives it back with the money. So an attempt
//! pays at most once however often it is retried, and a payout has at most one attempt under way.

use flash_core::destination::{Destination, PaymentTarget};
use flash_core::ledger::{IdempotencyKey, JournalKind, JournalRequest, LedgerOp};
use flash_core::{AccountId, Currency, JournalId, Sats, WalletId};
use flash_store::{PayoutAttempt, PostRequest, Record, WalletRecord};

use crate::allowance::Allowance;
use crate::history::TxStatus;
use crate::lightning::{PaymentStatus, INVOICE_SCOPE};
use crate::pay::PayRequest;
use crate::payments::idempotency;
use crate::payouts::Speed;
use crate::{Bank, BankError};

/// Idempotency scope of the journals that fund and empty budgets.
const BUDGET_SCOPE: &str = "budget";

/// A journal out of a budget: its key (in the budget scope), memo and the records it commits.
struct BudgetMovement {
    key: String,
    memo: String,
    records: Vec<Record>,
}

/// A payout's payment, as its saga asks for one attempt. On-chain, the network fee comes out
/// of the amount.
#[derive(Clone, Debug)]
pub struct PayoutPayment<'a> {
    /// The account that owns the paying wallet.
    pub account: AccountId,
    /// The paying wallet: a budget, or one of the account's wallets.
    pub wallet: WalletId,
    /// The attempt (the payout's attempts so far + 1) and the events its start causes.
    pub attempt: &'a PayoutAttempt,
    /// Where to.
    pub destination: &'a Destination,
    /// How much.
    pub amount: Sats,
    /// Memo for the paying wallet's history (and a comment for a Lightning address).
    pub memo: Option<String>,
}

/// Where one payout attempt stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayoutProgress {
    /// Its transaction's status.
    pub status: TxStatus,
    /// The journal that paid or holds it.
    pub journal_id: JournalId,
    /// The Greenfield payment proof (`proofType` and its fields) once there is one.
    pub proof: Option<serde_json::Value>,
}

/// The idempotency key of a payout's attempt.
fn attempt_key(attempt: &PayoutAttempt) -> String {
    format!("payout:{}:{}", attempt.payout_id, attempt.attempt)
}

impl Bank {
    /// Sets `amount` aside for `account` in a new budget wallet, funded from `from` (one of the
    /// account's own BTC wallets) by one journal that commits `records(budget)` too. `key`
    /// names the budget (a retry with the same key and records posts nothing new); refused
    /// with the ledger's reasons (balance, an inactive account).
    pub async fn budget_open(
        &self,
        account: AccountId,
        from: WalletId,
        amount: Sats,
        key: &str,
        records: impl FnOnce(WalletId) -> Vec<Record>,
    ) -> Result<WalletId, BankError> {
        let source = self
            .store
            .wallet(from)
            .await?
            .filter(|w| w.account_id == account && w.currency == Currency::Btc)
            .ok_or(BankError::WalletNotFound)?;
        // The ledger refuses an inactive account and a short balance, with the journal.
        let budget = self.store.budget_wallet_create(account, Currency::Btc).await?;
        let journal = JournalRequest {
            idempotency: idempotency(BUDGET_SCOPE.into(), Some(format!("open:{key}")))?,
            kind: JournalKind::IntraLedger,
            op: LedgerOp::Transfer {
                from: source.id.into(),
                to: budget.id.into(),
                amount: amount.get(),
                fee: 0,
                fee_to: None,
            },
            memo: Some("set aside".into()),
            limit: None,
        };
        let post = PostRequest {
            records: records(budget.id),
            ..PostRequest::from(journal)
        };
        let posted = self
            .store
            .post(post)
            .await?
            .map_err(|e| self.payment_error(e, source.id))?;
        self.publish_journal(account, source.id, posted.journal_id);
        Ok(budget.id)
    }

    /// What a budget wallet holds, satoshis.
    pub async fn budget_balance(&self, budget: WalletId) -> Result<i64, BankError> {
        self.budget(budget).await?;
        Ok(self.store.wallet_balance(budget).await?)
    }

    /// Gives `amount` of a budget back to `to` (the wallet it came from) by one journal under
    /// `key`, committing `records` too (which may refuse it).
    pub async fn budget_return(
        &self,
        budget: WalletId,
        to: WalletId,
        amount: Sats,
        key: &str,
        records: Vec<Record>,
    ) -> Result<JournalId, BankError> {
        let wallet = self.budget(budget).await?;
        let movement = BudgetMovement {
            key: format!("return:{key}"),
            memo: "returned from a budget".into(),
            records,
        };
        self.budget_move(budget, to, amount, movement, wallet.account_id).await
    }

    /// Pays a reward of `amount` from a budget into `to`, one of a customer's own wallets, by
    /// one journal under `key` (`memo` in both histories), committing `records` too (the grant,
    /// which may refuse it). A retry with the same key answers with the first journal.
    pub async fn budget_reward(
        &self,
        budget: WalletId,
        to: WalletId,
        amount: Sats,
        key: &str,
        memo: String,
        records: Vec<Record>,
    ) -> Result<JournalId, BankError> {
        self.budget(budget).await?;
        let customer = self.store.wallet(to).await?.ok_or(BankError::RecipientNotFound)?;
        let movement = BudgetMovement {
            key: format!("reward:{key}"),
            memo,
            records,
        };
        self.budget_move(budget, to, amount, movement, customer.account_id)
            .await
    }

    /// Moves `amount` out of a budget into `to` by one journal, and tells `notified` (the
    /// receiving wallet's account) when it is new.
    async fn budget_move(
        &self,
        budget: WalletId,
        to: WalletId,
        amount: Sats,
        movement: BudgetMovement,
        notified: AccountId,
    ) -> Result<JournalId, BankError> {
        let journal = JournalRequest {
            idempotency: idempotency(BUDGET_SCOPE.into(), Some(movement.key))?,
            kind: JournalKind::IntraLedger,
            op: LedgerOp::Transfer {
                from: budget.into(),
                to: to.into(),
                amount: amount.get(),
                fee: 0,
                fee_to: None,
            },
            memo: Some(movement.memo),
            limit: None,
        };
        let post = PostRequest {
            records: movement.records,
            ..PostRequest::from(journal)
        };
        let posted = self
            .store
            .post(post)
            .await?
            .map_err(|e| self.payment_error(e, budget))?;
        if !posted.replayed {
            self.publish_journal(notified, to, posted.journal_id);
        }
        Ok(posted.journal_id)
    }

    /// The wallet that paid one of this bank's BOLT11 invoices inside the ledger (a Flash
    /// user's, a Flash Card's), if it was paid that way.
    pub async fn ln_invoice_payer(&self, payment_hash: &str) -> Result<Option<WalletRecord>, BankError> {
        let Some(journal) = self.own_invoice_journal(payment_hash).await? else {
            return Ok(None);
        };
        let Some(from) = self.store.journal(journal).await?.and_then(|j| j.from.wallet()) else {
            return Ok(None);
        };
        Ok(self.store.wallet(from).await?)
    }

    /// Starts one attempt of a payout: pays `destination` from the paying wallet on its rail
    /// (inside the ledger for a Flash user, address or invoice; Lightning; on-chain in the
    /// next batch) under the attempt's idempotency key. A retry of the same attempt answers
    /// with its first payment. Refusals (balance, limits, the destination's) are errors and
    /// leave the payout awaiting payment.
    pub async fn payout_pay(&self, p: PayoutPayment<'_>) -> Result<PayoutProgress, BankError> {
        let mut amount = p.amount.get();
        if let Destination::OnchainAddress(address) = p.destination {
            // The receiver bears the network fee, as in BTCPay: the hold (amount sent + fee
            // reserve) is the payout's amount.
            let fee = self.onchain_fee_to(address, amount, Speed::Medium).await?;
            amount = Sats::positive(amount - fee.get())
                .map_err(|_| BankError::Refused("the payout is too small to pay on-chain after the fee"))?
                .get();
        }
        let req = PayRequest {
            account: p.account,
            wallet_id: p.wallet,
            target: PaymentTarget::from(p.destination.clone()),
            amount: Some(amount),
            memo: p.memo,
            speed: Speed::Medium,
            idempotency_key: Some(attempt_key(p.attempt)),
        };
        if self.pay_for(req, Some(Allowance::Payout(p.attempt))).await?.status == PaymentStatus::AlreadyPaid {
            return Err(BankError::Refused("the invoice was paid already"));
        }
        self.payout_progress(p.account, p.wallet, p.attempt, p.destination)
            .await?
            .ok_or(BankError::Refused("the payout's payment was not recorded"))
    }

    /// Where a payout's attempt to pay `destination` stands, once it reached the ledger;
    /// `None` before (a crash before its journal committed: the attempt may start again).
    pub async fn payout_progress(
        &self,
        account: AccountId,
        wallet: WalletId,
        attempt: &PayoutAttempt,
        destination: &Destination,
    ) -> Result<Option<PayoutProgress>, BankError> {
        let tx = match self.transaction_by_key(account, wallet, &attempt_key(attempt)).await? {
            Some(tx) => Some(tx),
            None => self.own_invoice_paid_from(wallet, destination).await?,
        };
        let Some(tx) = tx else {
            return Ok(None);
        };
        let proof = match (tx.status, &tx.payment_hash, &tx.onchain_payout) {
            (TxStatus::Success, Some(hash), _) => {
                let details = self.ln_details(tx.journal_id, hash).await?;
                Some(serde_json::json!({
                    "proofType": "PayoutLightningBlob",
                    "paymentHash": hash,
                    "preimage": details.preimage,
                }))
            }
            (TxStatus::Success, None, Some(payout)) => {
                let details = self.onchain_payout_details(payout).await?;
                Some(serde_json::json!({
                    "proofType": "PayoutTransactionOnChainBlob",
                    "transactionId": details.as_ref().and_then(|d| d.txid.clone()),
                    "candidates": details.as_ref().and_then(|d| d.txid.clone()).into_iter().collect::<Vec<_>>(),
                    "destination": details.map(|d| d.address),
                }))
            }
            (TxStatus::Success, None, None) => Some(serde_json::json!({
                "proofType": "FlashIntraLedger",
                "id": tx.journal_id.to_string(),
            })),
            _ => None,
        };
        Ok(Some(PayoutProgress {
            status: tx.status,
            journal_id: tx.journal_id,
            proof,
        }))
    }

    /// The payment from `wallet` of `destination` when it is an invoice of this Flash paid
    /// inside the ledger: such a journal is keyed by the invoice (paid once, by whoever pays
    /// first), not by the payer's idempotency key.
    async fn own_invoice_paid_from(
        &self,
        wallet: WalletId,
        destination: &Destination,
    ) -> Result<Option<crate::history::Transaction>, BankError> {
        let Destination::Invoice(bolt11) = destination else {
            return Ok(None);
        };
        let hash = self.decode(bolt11).await?.payment_hash.to_string();
        let Some(journal) = self.own_invoice_journal(&hash).await? else {
            return Ok(None);
        };
        match self.transaction(wallet, journal).await {
            Ok(tx) if tx.amount < 0 => Ok(Some(tx)),
            Ok(_) | Err(BankError::WalletNotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The journal that paid one of this bank's invoices (inside the ledger, or its credit from
    /// outside), by payment hash: such a journal is keyed by the invoice, paid once by whoever
    /// pays first.
    async fn own_invoice_journal(&self, payment_hash: &str) -> Result<Option<JournalId>, BankError> {
        let key = IdempotencyKey {
            scope: INVOICE_SCOPE.into(),
            key: payment_hash.to_string(),
        };
        Ok(self.store.journal_for_key(&key).await?)
    }

    /// A budget wallet by id.
    async fn budget(&self, id: WalletId) -> Result<WalletRecord, BankError> {
        self.store.budget_wallet(id).await?.ok_or(BankError::WalletNotFound)
    }

    /// The wallet a payment with `allowance` spends from: a budget only for a payout.
    pub(crate) async fn spending_wallet(
        &self,
        id: WalletId,
        allowance: Option<Allowance<'_>>,
    ) -> Result<Option<WalletRecord>, BankError> {
        if let (Some(Allowance::Payout(_)), Some(budget)) = (allowance, self.store.budget_wallet(id).await?) {
            return Ok(Some(budget));
        }
        Ok(self.store.wallet(id).await?)
    }
}
