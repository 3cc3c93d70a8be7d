//! Lightning addresses and LNURL-pay (LUD-06, LUD-12, LUD-16), both ways: this Flash's users
//! receive at `name@host`, and pay other services' addresses and links.
//!
//! The metadata an address serves is built from the username and host alone, so the first
//! response and the invoice's description hash always agree.
//!
//! Withdraw links (LUD-03) let whoever holds a link's secret take money from its owner's
//! wallet, within the amounts, uses and time the owner set: the base of vouchers, rewards and
//! Bolt Cards. Only the secret's hash is stored; each withdrawal takes a use in the same
//! transaction as its money, and a failed one gives it back.

use flash_core::lightning::Hash32;
use flash_core::{AccountId, AccountStatus, Memo, Sats, Username, ValidationError, WalletId};
use sha2::{Digest, Sha256};

use flash_store::{CardSpend, NewWithdrawLink, WithdrawLinkRecord};
use rand::RngCore;

use crate::allowance::Allowance;
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

/// Most withdrawals one link allows.
const LINK_USES_MAX: i64 = 10_000;
/// Longest title of a link.
const LINK_TITLE_MAX_CHARS: usize = 200;
/// Why a link cannot be used now.
const LINK_UNUSABLE: &str = "the withdraw link is used up, expired or revoked";

/// A withdraw link to create.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WithdrawLinkCreate {
    /// The wallet it pays from; the caller's.
    pub wallet_id: Option<WalletId>,
    /// Smallest withdrawal, satoshis (default 1).
    pub min_amount: Option<i64>,
    /// Largest withdrawal per use, satoshis.
    pub max_amount: i64,
    /// Withdrawals allowed (default 1).
    pub uses: Option<i64>,
    /// Minutes until it stops working (default: never).
    pub expires_in_mins: Option<i64>,
    /// Shown to whoever withdraws.
    pub title: Option<String>,
}

/// A link just created, with its secret (shown once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedWithdrawLink {
    /// The link.
    pub link: WithdrawLinkRecord,
    /// The secret that makes the link's URL; never stored.
    pub secret: String,
}

fn secret_hash(secret: &str) -> String {
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
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

/// An address's LNURL-pay metadata (LUD-06, LUD-16): its description and its identifier
/// `name@host`, as the JSON text the invoice's description hash commits to.
pub fn address_metadata(text: &str, identifier: &str) -> String {
    serde_json::json!([["text/plain", text], ["text/identifier", identifier]]).to_string()
}

/// The description hash of an LNURL-pay invoice: SHA-256 of the metadata text as served.
pub fn description_hash(metadata: &str) -> Hash32 {
    Hash32(Sha256::digest(metadata.as_bytes()).into())
}

/// Checks an LNURL-pay callback's `amount_msat` against `offer` (in range, whole satoshis):
/// the satoshis to invoice.
pub fn offered_sats(offer: &AddressOffer, amount_msat: u64) -> Result<i64, BankError> {
    if !(offer.min_sendable_msat..=offer.max_sendable_msat).contains(&amount_msat) {
        return Err(BankError::AmountMismatch(format!(
            "amount must be {} to {} msat",
            offer.min_sendable_msat, offer.max_sendable_msat
        )));
    }
    if !amount_msat.is_multiple_of(1_000) {
        return Err(BankError::AmountMismatch("amount must be whole satoshis".into()));
    }
    i64::try_from(amount_msat / 1_000).map_err(|_| BankError::Amount(flash_core::MoneyError::TooLarge))
}

impl Bank {
    /// The domain of this Flash's Lightning addresses (`name@<domain>`), when configured.
    pub fn lightning_address_domain(&self) -> Result<String, BankError> {
        self.config
            .lightning_address_domain
            .clone()
            .ok_or_else(|| BankError::LightningUnavailable("Lightning addresses are not configured".into()))
    }

    /// What `name@<our host>` offers, if the user exists and may receive.
    pub async fn lnurl_address_offer(&self, name: &str) -> Result<AddressOffer, BankError> {
        let domain = self.lightning_address_domain()?;
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
        let metadata = address_metadata(
            &format!("Payment to {username}"),
            &format!("{}@{domain}", username.to_ascii_lowercase()),
        );
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
    /// the address's metadata (or to `description` instead, when given: a NIP-57 zap request),
    /// with the payer's comment as its memo.
    pub async fn lnurl_address_invoice(
        &self,
        name: &str,
        amount_msat: u64,
        comment: Option<&str>,
        description: Option<&str>,
    ) -> Result<LnInvoice, BankError> {
        let offer = self.lnurl_address_offer(name).await?;
        let amount = offered_sats(&offer, amount_msat)?;
        let comment = comment.filter(|c| !c.is_empty());
        if comment.is_some_and(|c| c.chars().count() > offer.comment_allowed as usize) {
            return Err(ValidationError::MemoTooLong.into());
        }
        let wallet = self.default_wallet_of(&offer.username).await?;
        let committed = description.unwrap_or(&offer.metadata);
        let hash = description_hash(committed);
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

    /// Has another service's withdraw link (another issuer's Bolt Card tap, a voucher) pay
    /// `payment_request`, one of this bank's invoices, for `amount_sat` (LUD-03). `Ok` once the
    /// service took the invoice; the money arrives as any payment from outside.
    pub async fn lnurl_withdraw_from(
        &self,
        link: &str,
        payment_request: &str,
        amount_sat: i64,
    ) -> Result<(), BankError> {
        let amount = Sats::positive(amount_sat)?;
        let client = self
            .lnurl
            .clone()
            .ok_or_else(|| BankError::LightningUnavailable("no LNURL client is configured".into()))?;
        client.withdraw(link, payment_request, amount.msat()).await?;
        Ok(())
    }

    /// Pays a Lightning address or LNURL-pay link. An address of this Flash is paid inside the
    /// ledger; another service's is asked for an invoice (checked to be for the amount and to
    /// commit to the service's metadata), which is then paid like any invoice. A retry with
    /// the same idempotency key answers with the first payment, without a new invoice.
    pub async fn lnurl_pay(&self, req: LnurlPayRequest) -> Result<LnPayOutcome, BankError> {
        self.lnurl_pay_for(req, None).await
    }

    /// [`Bank::lnurl_pay`], spending `allowance` too when it is given.
    pub(crate) async fn lnurl_pay_for(
        &self,
        req: LnurlPayRequest,
        allowance: Option<Allowance<'_>>,
    ) -> Result<LnPayOutcome, BankError> {
        let amount = Sats::positive(req.amount)?;
        if let Some(name) = self.own_address(&req.target) {
            let sent = self
                .send_intraledger_for(
                    SendRequest {
                        account: req.account,
                        from: req.wallet_id,
                        to: Recipient::Username(name.to_string()),
                        amount: amount.get(),
                        memo: req.comment,
                        idempotency_key: req.idempotency_key,
                    },
                    allowance,
                )
                .await?;
            return Ok(LnPayOutcome {
                status: PaymentStatus::Success,
                transaction: Some(sent.transaction),
                failure: None,
            });
        }
        let idempotency = idempotency(req.account.to_string(), req.idempotency_key.clone())?;
        if let Some(prior) = self.store.journal_for_key(&idempotency).await? {
            let wallet = self.spending_wallet(req.wallet_id, allowance).await?;
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
        let pay = LnPayRequest {
            account: req.account,
            wallet_id: req.wallet_id,
            payment_request,
            amount: None,
            memo: req.comment,
            idempotency_key: Some(idempotency.key),
        };
        self.ln_pay_for(pay, allowance).await
    }

    /// Creates a withdraw link on one of the account's wallets.
    pub async fn lnurl_withdraw_create(
        &self,
        account: AccountId,
        req: WithdrawLinkCreate,
    ) -> Result<CreatedWithdrawLink, BankError> {
        let max = Sats::positive(req.max_amount)?;
        let min = Sats::positive(req.min_amount.unwrap_or(1))?;
        if min > max {
            return Err(BankError::AmountMismatch("minAmount is above maxAmount".into()));
        }
        let uses = req.uses.unwrap_or(1);
        if !(1..=LINK_USES_MAX).contains(&uses) {
            return Err(BankError::InvalidLink(format!("uses must be 1 to {LINK_USES_MAX}")));
        }
        let max_mins = self.config.lightning.invoice_expiry_max_mins * 365;
        let expires_at_ms = match req.expires_in_mins {
            None => None,
            Some(m) if (1..=max_mins).contains(&m) => Some(self.store.now_ms() + m * 60_000),
            Some(_) => return Err(BankError::InvalidExpiry { max_mins }),
        };
        let title = req.title.unwrap_or_else(|| "Flash withdrawal".into());
        flash_core::text::label(&title, LINK_TITLE_MAX_CHARS)
            .map_err(|e| BankError::InvalidLink(format!("the title {e}")))?;
        let account_record = self.store.account(account).await?.ok_or(BankError::AccountNotFound)?;
        if account_record.status != AccountStatus::Active {
            return Err(BankError::AccountNotActive(account_record.status.as_str()));
        }
        let wallet_id = req.wallet_id.unwrap_or(account_record.default_wallet_id);
        let wallet = self.store.wallet(wallet_id).await?;
        if wallet.is_none_or(|w| w.account_id != account) {
            return Err(BankError::WalletNotFound);
        }
        let mut bytes = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut bytes);
        let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let link = NewWithdrawLink {
            id: uuid::Uuid::now_v7().to_string(),
            secret_hash: secret_hash(&secret),
            account_id: account,
            wallet_id,
            title,
            min_sat: min.get(),
            max_sat: max.get(),
            uses,
            expires_at_ms,
        };
        self.store.insert_withdraw_link(&link).await?;
        let link = self
            .store
            .withdraw_link_by_secret(&link.secret_hash)
            .await?
            .ok_or(BankError::WithdrawLinkNotFound)?;
        Ok(CreatedWithdrawLink { link, secret })
    }

    /// The account's withdraw links, newest first.
    pub async fn lnurl_withdraw_links(&self, account: AccountId) -> Result<Vec<WithdrawLinkRecord>, BankError> {
        Ok(self.store.withdraw_links_of(account).await?)
    }

    /// Revokes one of the account's withdraw links (for good).
    pub async fn lnurl_withdraw_revoke(&self, account: AccountId, id: &str) -> Result<(), BankError> {
        if self.store.revoke_withdraw_link(account, id).await? {
            Ok(())
        } else {
            Err(BankError::WithdrawLinkNotFound)
        }
    }

    /// The link a secret opens, if it can be used now.
    pub async fn lnurl_withdraw_offer(&self, secret: &str) -> Result<WithdrawLinkRecord, BankError> {
        let link = self
            .store
            .withdraw_link_by_secret(&secret_hash(secret))
            .await?
            .ok_or(BankError::WithdrawLinkNotFound)?;
        let expired = link.link.expires_at_ms.is_some_and(|t| t <= self.store.now_ms());
        if link.uses_left == 0 || link.revoked_at_ms.is_some() || expired {
            return Err(BankError::Refused(LINK_UNUSABLE));
        }
        Ok(link)
    }

    /// Withdraws through a link: pays `payment_request` (for an amount within the link's
    /// range) from the link's wallet. Repeating the call with the same invoice answers with
    /// the first attempt and takes no other use.
    pub async fn lnurl_withdraw(&self, secret: &str, payment_request: &str) -> Result<LnPayOutcome, BankError> {
        let link = self.lnurl_withdraw_offer(secret).await?;
        let invoice = self.decode(payment_request).await?;
        let msat = invoice
            .amount_msat
            .ok_or_else(|| BankError::AmountMismatch("the invoice must have an amount".into()))?;
        let amount = Sats::from_msat_up(msat)?.get();
        if !(link.link.min_sat..=link.link.max_sat).contains(&amount) {
            return Err(BankError::AmountMismatch(format!(
                "this link pays {} to {} sats",
                link.link.min_sat, link.link.max_sat
            )));
        }
        let req = LnPayRequest {
            account: link.link.account_id,
            wallet_id: link.link.wallet_id,
            payment_request: invoice.payment_request.clone(),
            amount: None,
            memo: Some(link.link.title.clone()),
            idempotency_key: Some(format!("lnurlw:{}:{}", link.link.id, invoice.payment_hash)),
        };
        self.ln_pay_for(req, Some(Allowance::WithdrawLink(&link.link.id))).await
    }

    /// `payment_request` decoded for a Flash Card's tap, with its amount in satoshis: refused
    /// unless it asks for 1 to `max_sat`, and below `pin_from_sat` when that is given (the
    /// card has a PIN that was not given).
    pub async fn card_invoice(
        &self,
        payment_request: &str,
        max_sat: i64,
        pin_from_sat: Option<i64>,
    ) -> Result<(flash_core::lightning::Invoice, i64), BankError> {
        let invoice = self.decode(payment_request).await?;
        let msat = invoice
            .amount_msat
            .ok_or_else(|| BankError::AmountMismatch("the invoice must have an amount".into()))?;
        let amount = Sats::from_msat_up(msat)?.get();
        if amount > max_sat {
            return Err(BankError::AmountMismatch(format!(
                "this tap pays at most {max_sat} sats"
            )));
        }
        if pin_from_sat.is_some_and(|from| amount >= from) {
            return Err(BankError::Refused("this amount needs the card's PIN"));
        }
        Ok((invoice, amount))
    }

    /// Pays `payment_request` from a Flash Card's wallet for one of its taps (`spend`): the
    /// amount must be 1 to `max_sat`, and below `pin_from_sat` when that is given (the card
    /// has a PIN that was not given); the tap is used up, and the amount counted toward the
    /// card's 24-hour limit, in the transaction that moves (or holds) the money (both given
    /// back if the payment fails). Repeating the call with the same invoice (from any tap)
    /// answers with the first attempt.
    pub async fn card_pay(
        &self,
        account: AccountId,
        wallet_id: WalletId,
        spend: &CardSpend,
        max_sat: i64,
        pin_from_sat: Option<i64>,
        payment_request: &str,
    ) -> Result<LnPayOutcome, BankError> {
        let (invoice, _) = self.card_invoice(payment_request, max_sat, pin_from_sat).await?;
        let req = LnPayRequest {
            account,
            wallet_id,
            payment_request: invoice.payment_request.clone(),
            amount: None,
            memo: Some("Flash Card".into()),
            // An invoice is paid once: a second tap for it answers with the first payment.
            idempotency_key: Some(format!("boltcard:{}", invoice.payment_hash)),
        };
        self.ln_pay_for(req, Some(Allowance::Card(spend))).await
    }

    /// The username of a Lightning address of this Flash (`name@our-host`).
    fn own_address<'a>(&self, target: &'a str) -> Option<&'a str> {
        let domain = self.config.lightning_address_domain.as_deref()?;
        let (name, host) = target.trim().split_once('@')?;
        host.eq_ignore_ascii_case(domain).then_some(name)
    }
}
