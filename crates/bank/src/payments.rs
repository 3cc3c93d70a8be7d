//! Intraledger payments, the dev faucet, and limits.

use flash_core::ledger::{IdempotencyKey, JournalKind, JournalRequest, LedgerError, LedgerOp, LimitCheck};
use flash_core::limits::LIMIT_WINDOW_SECS;
use flash_core::{
    AccountId, AccountStatus, Currency, JournalId, LedgerAccountId, LimitKind, Memo, Sats, SystemAccount, WalletId,
};
use flash_store::{AccountRecord, Audit, PostRequest};

use crate::allowance::{may_spend, Allowance};
use crate::history::{Direction, Transaction, TxStatus};
use crate::{Bank, BankError};

/// Longest idempotency key accepted.
const IDEMPOTENCY_KEY_MAX_CHARS: usize = 128;
/// Idempotency scope of operator actions.
const ADMIN_SCOPE: &str = "admin";

/// Who is paid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recipient {
    /// A wallet id.
    Wallet(WalletId),
    /// A username (its account's default wallet).
    Username(String),
}

/// An intraledger payment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendRequest {
    /// The paying account (the caller).
    pub account: AccountId,
    /// The paying wallet; must be the account's.
    pub from: WalletId,
    /// Who is paid.
    pub to: Recipient,
    /// Amount in the wallet's minor unit.
    pub amount: i64,
    /// Memo, at most 1,000 characters.
    pub memo: Option<String>,
    /// Makes the request safe to retry; a fresh one is generated when absent.
    pub idempotency_key: Option<String>,
}

/// A payment's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentOutcome {
    /// The journal.
    pub journal_id: JournalId,
    /// True when this repeats an earlier request's answer.
    pub replayed: bool,
    /// The payer's view of the payment.
    pub transaction: Transaction,
}

/// One limit as the account sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitView {
    /// Which limit.
    pub kind: LimitKind,
    /// The limit in satoshis.
    pub total_sats: i64,
    /// What remains in the window, satoshis.
    pub remaining_sats: i64,
    /// The limit in US cents (as configured).
    pub total_cents: i64,
    /// What remains, in cents at the reference rate.
    pub remaining_cents: i64,
    /// The rolling window, seconds.
    pub interval_secs: i64,
}

pub(crate) fn idempotency(scope: String, key: Option<String>) -> Result<IdempotencyKey, BankError> {
    let key = match key {
        Some(k) if k.is_empty() || k.chars().count() > IDEMPOTENCY_KEY_MAX_CHARS || k.chars().any(char::is_control) => {
            return Err(BankError::InvalidIdempotencyKey)
        }
        Some(k) => k,
        // Time-ordered, so generated keys land together in the idempotency index.
        None => uuid::Uuid::now_v7().to_string(),
    };
    Ok(IdempotencyKey { scope, key })
}

impl Bank {
    /// Pays another Flash wallet: no fee, no network. Checks, in order: input, the payer's
    /// wallet and status, the recipient, then (in the ledger, atomically) the idempotency
    /// key, the limit and the balance. A retry of a posted request skips the status checks.
    pub async fn send_intraledger(&self, req: SendRequest) -> Result<PaymentOutcome, BankError> {
        self.send_intraledger_for(req, None).await
    }

    /// [`Bank::send_intraledger`], spending `allowance` too when it is given (taken in the
    /// payment's transaction).
    pub(crate) async fn send_intraledger_for(
        &self,
        req: SendRequest,
        allowance: Option<Allowance<'_>>,
    ) -> Result<PaymentOutcome, BankError> {
        let amount = Sats::positive(req.amount)?;
        let memo = req.memo.as_deref().map(Memo::parse).transpose()?;
        let idempotency = idempotency(req.account.to_string(), req.idempotency_key)?;

        let (to_wallet, to_username) = match &req.to {
            Recipient::Wallet(w) => (Some(*w), None),
            Recipient::Username(name) => (None, Some(flash_core::Username::parse(name)?)),
        };
        let parties = self
            .store
            .payment_parties(req.from, to_wallet, to_username.as_ref(), &idempotency)
            .await?;
        let from = parties
            .payer
            .filter(|p| p.wallet.account_id == req.account && may_spend(&p.wallet, allowance))
            .ok_or(BankError::WalletNotFound)?;
        let to = parties
            .payee
            .filter(|p| !p.wallet.budget)
            .ok_or(BankError::RecipientNotFound)?;
        // A retry of a request that already posted gets the first answer whatever happened
        // since (an account locked in between must not turn a success into a refusal); the
        // ledger still checks that it is the same request.
        if parties.prior.is_none() {
            if from.status != AccountStatus::Active {
                return Err(BankError::AccountNotActive(from.status.as_str()));
            }
            if to.status != AccountStatus::Active {
                return Err(BankError::RecipientNotActive);
            }
        }
        let (payer, recipient) = (from.wallet.account_id, to.wallet.account_id);
        let journal_memo = memo.map(|m| m.as_str().to_string());
        let other_account = recipient != payer;
        let limit = other_account.then(|| LimitCheck {
            subject: payer.to_string(),
            kind: LimitKind::IntraLedger,
            max: self.config.limits.sats(from.level, LimitKind::IntraLedger),
            amount: amount.get(),
        });
        let journal = JournalRequest {
            idempotency,
            kind: JournalKind::IntraLedger,
            op: LedgerOp::Transfer {
                from: from.wallet.id.into(),
                to: to.wallet.id.into(),
                amount: amount.get(),
                fee: 0,
                fee_to: None,
            },
            memo: journal_memo.clone(),
            limit,
        };
        let contact = other_account.then_some((payer, recipient));
        let records = allowance
            .map(|a| a.taken(amount.get(), self.store.now_ms()))
            .unwrap_or_default();
        let posted = self
            .store
            .post(PostRequest {
                contact,
                records,
                ..PostRequest::from(journal)
            })
            .await?
            .map_err(|e| self.payment_error(e, req.from))?;
        if !posted.replayed {
            self.publish_journal(payer, from.wallet.id, posted.journal_id);
            self.publish_journal(recipient, to.wallet.id, posted.journal_id);
        }
        let transaction = Transaction {
            journal_id: posted.journal_id,
            wallet_id: from.wallet.id,
            direction: Direction::Send,
            amount: -amount.get(),
            fee: 0,
            currency: from.wallet.currency,
            status: TxStatus::Success,
            kind: JournalKind::IntraLedger,
            memo: journal_memo,
            counterparty_wallet_id: Some(to.wallet.id),
            counterparty_username: to.username.clone(),
            created_at_ms: posted.created_at_ms,
            payment_hash: None,
            onchain_outpoint: None,
            onchain_payout: None,
        };
        Ok(PaymentOutcome {
            journal_id: posted.journal_id,
            replayed: posted.replayed,
            transaction,
        })
    }

    /// Turns the ledger's refusals into the payment's own terms: a limit with its units, an
    /// inactive account as the payer's or the recipient's.
    pub(crate) fn payment_error(&self, e: LedgerError, payer_wallet: WalletId) -> BankError {
        match e {
            LedgerError::AccountNotActive(wallet) if wallet == payer_wallet.to_string() => {
                BankError::AccountNotActive("locked or closed")
            }
            LedgerError::AccountNotActive(_) => BankError::RecipientNotActive,
            LedgerError::LimitExceeded { kind, limit, remaining } => {
                let cents = self.config.limits.sats_to_cents(limit);
                BankError::LimitExceeded {
                    kind,
                    limit_sats: limit,
                    limit_usd: format!("{}.{:02}", cents / 100, cents % 100),
                    remaining_sats: remaining,
                }
            }
            other => other.into(),
        }
    }

    /// Dev/regtest faucet: credits `wallet` from the `dev:faucet` account, recorded in the
    /// audit log under `actor`. Refused on mainnet.
    pub async fn wallet_fund(
        &self,
        actor: &str,
        wallet: WalletId,
        amount: i64,
        idempotency_key: Option<String>,
    ) -> Result<Transaction, BankError> {
        if !self.config.network.allows_dev_features() {
            return Err(BankError::NotOnMainnet);
        }
        let amount = Sats::positive(amount)?;
        let idempotency = idempotency(ADMIN_SCOPE.to_string(), idempotency_key)?;
        let target = self.store.wallet(wallet).await?.ok_or(BankError::WalletNotFound)?;
        let faucet: LedgerAccountId = SystemAccount::DevFaucet.ledger_id(Currency::Btc);
        let journal = JournalRequest {
            idempotency,
            kind: JournalKind::DevFaucet,
            op: LedgerOp::Transfer {
                from: faucet,
                to: target.id.into(),
                amount: amount.get(),
                fee: 0,
                fee_to: None,
            },
            memo: Some("dev faucet".into()),
            limit: None,
        };
        let audit = Audit {
            actor: actor.to_string(),
            action: "wallet.fund".into(),
            subject: target.id.to_string(),
            detail: format!("{} sats", amount.get()),
        };
        let posted = self
            .store
            .post(PostRequest {
                audit: Some(audit),
                ..PostRequest::from(journal)
            })
            .await??;
        if !posted.replayed {
            self.publish_journal(target.account_id, target.id, posted.journal_id);
        }
        self.transaction(target.id, posted.journal_id).await
    }

    /// The account's limits and what remains of them.
    pub async fn limits(&self, account: &AccountRecord) -> Result<Vec<LimitView>, BankError> {
        let policy = &self.config.limits;
        let mut views = Vec::new();
        for kind in [LimitKind::Withdrawal, LimitKind::IntraLedger] {
            let used = self.store.limit_usage(&account.id.to_string(), kind).await?;
            let total_sats = policy.sats(account.level, kind);
            let remaining_sats = (total_sats - used).max(0);
            views.push(LimitView {
                kind,
                total_sats,
                remaining_sats,
                total_cents: policy.cents(account.level, kind),
                remaining_cents: policy.sats_to_cents(remaining_sats),
                interval_secs: LIMIT_WINDOW_SECS,
            });
        }
        Ok(views)
    }
}
