//! Lightning addresses and LNURL-pay (LUD-06, LUD-12, LUD-16), both ways: this Flash's users
//! receive at `name@host`, and pay other services' addresses and links.
//!
//! The metadata an address serves is built from the username and host alone, so the first
//! response and the invoice's description hash always agree.

use flash_core::lightning::Hash32;
use flash_core::{AccountId, AccountStatus, Memo, Sats, Username, ValidationError, WalletId};
use sha2::{Digest, Sha256};

use crate::lightning::{InvoiceCreate, InvoiceFor, LnInvoice, LnPayOutcome, LnPayRequest, PaymentStatus};
use crate::payments::idempotency;
use crate::{Bank, BankError, Recipient, SendRequest};

/// A payment to a Lightning address or LNURL-pay link.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LnurlPayRequest {
    /// The paying account (the caller).
    pub account: AccountId,
    /// The paying wallet; must be the account's.
    pub wallet_id: WalletId,
    /// `name@host`, `lnurl1…` or `lnurlp://…`.
    pub target: String,
    /// Amount, satoshis.
    pub amount: i64,
    /// A comment for the payee (LUD-12), also the payer's memo.
    pub comment: Option<String>,
    /// Makes the request safe to retry.
    pub idempotency_key: Option<String>,
}

/// What a Lightning address of this Flash offers (the first LNURL-pay response).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AddressOffer {
    /// The username, as registered.
    pub username: String,
    /// The metadata JSON text the invoice will commit to.
    pub metadata: String,
    /// Smallest amount, millisatoshis.
    pub min_sendable_msat: u64,
    /// Largest amount, millisatoshis.
    pub max_sendable_msat: u64,
    /// Longest comment accepted.
    pub comment_allowed: u32,
}

impl Bank {
    /// What `name@<our host>` offers, if the user exists and may receive.
    pub async fn lnurl_address_offer(&self, name: &str) -> Result<AddressOffer, BankError> {
        let domain = self
            .config
            .lightning_address_domain
            .clone()
            .ok_or_else(|| BankError::LightningUnavailable("Lightning addresses are not configured".into()))?;
        let username = Username::parse(name).map_err(|_| BankError::RecipientNotFound)?;
        let account = self
            .store
            .account_by_username(&username)
            .await?
            .ok_or(BankError::RecipientNotFound)?;
        if account.status != AccountStatus::Active {
            return Err(BankError::RecipientNotActive);
        }
        let user = self
            .store
            .user(account.user_id)
            .await?
            .ok_or(BankError::RecipientNotFound)?;
        let username = user.username.unwrap_or_else(|| username.as_str().to_string());
        let metadata = serde_json::json!([
            ["text/plain", format!("Payment to {username}")],
            ["text/identifier", format!("{}@{domain}", username.to_ascii_lowercase())],
        ])
        .to_string();
        let cfg = &self.config.lightning;
        Ok(AddressOffer {
            username,
            metadata,
            min_sendable_msat: 1_000,
            max_sendable_msat: Sats::positive(cfg.lnurl_max_sendable_sats)?.msat(),
            comment_allowed: cfg.lnurl_comment_max_chars,
        })
    }

    /// The invoice `name@<our host>` issues for `amount_msat` (whole satoshis), committing to
    /// the address's metadata, with the payer's comment as its memo.
    pub async fn lnurl_address_invoice(
        &self,
        name: &str,
        amount_msat: u64,
        comment: Option<&str>,
    ) -> Result<LnInvoice, BankError> {
        let offer = self.lnurl_address_offer(name).await?;
        if !(offer.min_sendable_msat..=offer.max_sendable_msat).contains(&amount_msat) {
            return Err(BankError::AmountMismatch(format!(
                "amount must be {} to {} msat",
                offer.min_sendable_msat, offer.max_sendable_msat
            )));
        }
        if !amount_msat.is_multiple_of(1_000) {
            return Err(BankError::AmountMismatch("amount must be whole satoshis".into()));
        }
        let comment = comment.filter(|c| !c.is_empty());
        if comment.is_some_and(|c| c.chars().count() > offer.comment_allowed as usize) {
            return Err(ValidationError::MemoTooLong.into());
        }
        let wallet = self.default_wallet_of(&offer.username).await?;
        let hash = Hash32(Sha256::digest(offer.metadata.as_bytes()).into());
        let amount =
            i64::try_from(amount_msat / 1_000).map_err(|_| BankError::Amount(flash_core::MoneyError::TooLarge))?;
        self.ln_invoice_create(
            InvoiceFor::Recipient,
            InvoiceCreate {
                wallet_id: wallet.id,
                amount: Some(amount),
                memo: comment.map(str::to_string),
                description_hash: Some(hash),
                expires_in_mins: None,
            },
        )
        .await
    }

    /// Pays a Lightning address or LNURL-pay link. An address of this Flash is paid inside the
    /// ledger; another service's is asked for an invoice (checked to be for the amount and to
    /// commit to the service's metadata), which is then paid like any invoice. A retry with
    /// the same idempotency key answers with the first payment, without a new invoice.
    pub async fn lnurl_pay(&self, req: LnurlPayRequest) -> Result<LnPayOutcome, BankError> {
        let amount = Sats::positive(req.amount)?;
        if let Some(name) = self.own_address(&req.target) {
            let sent = self
                .send_intraledger(SendRequest {
                    account: req.account,
                    from: req.wallet_id,
                    to: Recipient::Username(name.to_string()),
                    amount: amount.get(),
                    memo: req.comment,
                    idempotency_key: req.idempotency_key,
                })
                .await?;
            return Ok(LnPayOutcome {
                status: PaymentStatus::Success,
                transaction: Some(sent.transaction),
                failure: None,
            });
        }
        let idempotency = idempotency(req.account.to_string(), req.idempotency_key.clone())?;
        if let Some(prior) = self.store.journal_for_key(&idempotency).await? {
            let wallet = self.store.wallet(req.wallet_id).await?;
            if wallet.is_none_or(|w| w.account_id != req.account) {
                return Err(BankError::WalletNotFound);
            }
            return self.prior_payment(req.wallet_id, prior, None).await;
        }
        let client = self
            .lnurl
            .clone()
            .ok_or_else(|| BankError::LightningUnavailable("no LNURL client is configured".into()))?;
        let params = client.pay_params(&req.target).await?;
        let msat = amount.msat();
        if !(params.min_sendable_msat..=params.max_sendable_msat).contains(&msat) {
            return Err(BankError::AmountMismatch(format!(
                "{} accepts {} to {} sats",
                params.domain,
                params.min_sendable_msat.div_ceil(1_000),
                params.max_sendable_msat / 1_000
            )));
        }
        if let Some(c) = &req.comment {
            Memo::parse(c)?;
        }
        // Sent only to a service that takes comments (LUD-12); it stays the payer's memo.
        let comment = req
            .comment
            .as_deref()
            .filter(|c| !c.is_empty() && params.comment_allowed > 0);
        if comment.is_some_and(|c| c.chars().count() > params.comment_allowed as usize) {
            return Err(ValidationError::MemoTooLong.into());
        }
        let payment_request = client.invoice(&params, msat, comment).await?;
        self.ln_pay(LnPayRequest {
            account: req.account,
            wallet_id: req.wallet_id,
            payment_request,
            amount: None,
            memo: req.comment,
            idempotency_key: Some(idempotency.key),
        })
        .await
    }

    /// The username of a Lightning address of this Flash (`name@our-host`).
    fn own_address<'a>(&self, target: &'a str) -> Option<&'a str> {
        let domain = self.config.lightning_address_domain.as_deref()?;
        let (name, host) = target.trim().split_once('@')?;
        host.eq_ignore_ascii_case(domain).then_some(name)
    }
}
