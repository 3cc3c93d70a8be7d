//! One entry point for every payment: [`Bank::pay`] reads where the money goes and picks the
//! rail. A destination inside this Flash (a user, a wallet, an invoice of our node, one of our
//! Lightning or on-chain addresses, a NOSTR user who set their key here) is paid inside the
//! ledger, with no fee and no network hop; anything else goes out over Lightning or on-chain.
//! Each rail keeps its own saga; this module only decides which one runs.

use flash_core::destination::{Destination, PaymentTarget};
use flash_core::ledger::JournalKind;
use flash_core::lnurl::LnurlError;
use flash_core::{AccountId, WalletId};
use flash_store::{EventQuery, Readers};

use crate::allowance::Allowance;
use crate::lightning::{InvoiceCreate, InvoiceFor, LnPayOutcome, LnPayRequest, PaymentStatus};
use crate::lnurl::LnurlPayRequest;
use crate::payouts::{OnchainSend, OnchainSendOutcome, Speed};
use crate::{Bank, BankError, PaymentOutcome, Recipient, SendRequest, Transaction};

/// The NOSTR event kind of a user's profile (NIP-01), where a Lightning address is published
/// (`lud16`, or an LNURL as `lud06`; NIP-57).
const PROFILE_KIND: i64 = 0;

/// A payment to any destination ([`Bank::pay`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayRequest {
    /// The paying account (the caller).
    pub account: AccountId,
    /// The paying wallet; must be the account's.
    pub wallet_id: WalletId,
    /// Where to, as read by [`PaymentTarget::parse`] (or built from a [`Destination`]).
    pub target: PaymentTarget,
    /// Satoshis: required unless the target carries its own (an invoice with an amount, a
    /// BIP21 URI's `amount`), and then it must agree.
    pub amount: Option<i64>,
    /// Memo for the payer's history; the comment of a Lightning address or LNURL payment.
    /// A BIP21 URI's message is used when none is given.
    pub memo: Option<String>,
    /// How fast an on-chain payment should confirm.
    pub speed: Speed,
    /// Makes the request safe to retry: a retry answers with the first payment.
    pub idempotency_key: Option<String>,
}

/// The rail a payment went by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rail {
    /// Inside the ledger, between two wallets of this Flash.
    IntraLedger,
    /// Over the Lightning network.
    Lightning,
    /// An on-chain transaction.
    Onchain,
}

/// How a payment ended, whatever its rail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayOutcome {
    /// The rail it went by.
    pub rail: Rail,
    /// How it ended; `Pending` until a Lightning or on-chain payment is out.
    pub status: PaymentStatus,
    /// The payer's transaction, when one was made (a withdraw link's receipt has none yet).
    pub transaction: Option<Transaction>,
    /// Why it failed, in the node's words.
    pub failure: Option<String>,
}

impl PayOutcome {
    /// The outcome of a payment made by `rail`, reporting the ledger when the rail found the
    /// payee inside this Flash (an invoice of our node, one of our addresses).
    fn by(rail: Rail, status: PaymentStatus, transaction: Option<Transaction>, failure: Option<String>) -> Self {
        let inside = transaction.as_ref().is_some_and(|t| t.kind == JournalKind::IntraLedger);
        PayOutcome {
            rail: if inside { Rail::IntraLedger } else { rail },
            status,
            transaction,
            failure,
        }
    }
}

impl From<LnPayOutcome> for PayOutcome {
    fn from(o: LnPayOutcome) -> Self {
        PayOutcome::by(Rail::Lightning, o.status, o.transaction, o.failure)
    }
}

impl From<PaymentOutcome> for PayOutcome {
    fn from(o: PaymentOutcome) -> Self {
        PayOutcome::by(Rail::IntraLedger, PaymentStatus::Success, Some(o.transaction), None)
    }
}

impl From<OnchainSendOutcome> for PayOutcome {
    fn from(o: OnchainSendOutcome) -> Self {
        PayOutcome::by(Rail::Onchain, o.status, Some(o.transaction), None)
    }
}

impl Bank {
    /// Pays any destination from one of the caller's wallets, picking the rail:
    ///
    /// * a username, a wallet id, or a NOSTR user who set their key on this Flash: inside the
    ///   ledger;
    /// * a BOLT11 invoice (also a BIP21 URI's `lightning=`, preferred to its address): inside
    ///   the ledger when our node issued it, else over Lightning;
    /// * a Lightning address or LNURL-pay link: inside the ledger when it is ours, else the
    ///   service's invoice over Lightning; another NOSTR user is paid at the Lightning address
    ///   of their profile as this Flash's relay holds it;
    /// * a Bitcoin address: inside the ledger when it is ours, else on-chain at `speed`;
    /// * an LNURL-withdraw link is the other way round: the service is handed an invoice of the
    ///   wallet for `amount`, and the money arrives like any payment from outside (`Pending`).
    ///
    /// A Cashu token is refused: it is ecash to receive, not somebody to pay.
    pub async fn pay(&self, req: PayRequest) -> Result<PayOutcome, BankError> {
        self.pay_for(req, None).await
    }

    /// [`Bank::pay`], spending `allowance` too when it is given (a payout's attempt).
    pub(crate) async fn pay_for(
        &self,
        req: PayRequest,
        allowance: Option<Allowance<'_>>,
    ) -> Result<PayOutcome, BankError> {
        let asked = req
            .target
            .amount
            .map(i64::try_from)
            .transpose()
            .map_err(|_| BankError::InvalidInput("the payment request's amount is too large".into()))?;
        let amount = match (req.amount, asked) {
            (Some(given), Some(asked)) if given != asked => {
                return Err(BankError::AmountMismatch(format!(
                    "the payment request asks for {asked} sats, not {given}"
                )))
            }
            (given, asked) => given.or(asked),
        };
        let memo = req.memo.or(req.target.memo);
        let described = match &req.target.lightning {
            Some(_) => "a payment request".to_owned(),
            None => req.target.destination.to_string(),
        };
        let needed = || BankError::InvalidInput(format!("paying {described} needs an amount in sats"));
        let (account, wallet_id, key) = (req.account, req.wallet_id, req.idempotency_key);
        let intraledger = |to: Recipient, amount: i64, memo: Option<String>| SendRequest {
            account,
            from: wallet_id,
            to,
            amount,
            memo,
            idempotency_key: key.clone(),
        };
        let lnurl = |target: String, amount: i64, comment: Option<String>| LnurlPayRequest {
            account,
            wallet_id,
            target,
            amount,
            comment,
            idempotency_key: key.clone(),
        };
        // A unified QR's invoice is paid rather than its address.
        let destination = match req.target.lightning {
            Some(bolt11) => Destination::Invoice(bolt11),
            None => req.target.destination,
        };
        match destination {
            Destination::Username(name) => {
                let send = intraledger(Recipient::Username(name), amount.ok_or_else(needed)?, memo);
                Ok(self.send_intraledger_for(send, allowance).await?.into())
            }
            Destination::WalletId(id) => {
                let to = Recipient::Wallet(id.parse().map_err(|_| BankError::RecipientNotFound)?);
                let send = intraledger(to, amount.ok_or_else(needed)?, memo);
                Ok(self.send_intraledger_for(send, allowance).await?.into())
            }
            Destination::Invoice(bolt11) => {
                let pay = LnPayRequest {
                    account,
                    wallet_id,
                    payment_request: bolt11,
                    amount,
                    memo,
                    idempotency_key: key.clone(),
                };
                Ok(self.ln_pay_for(pay, allowance).await?.into())
            }
            Destination::LightningAddress(target) => {
                let pay = lnurl(target, amount.ok_or_else(needed)?, memo);
                Ok(self.lnurl_pay_for(pay, allowance).await?.into())
            }
            Destination::Lnurl(target) => {
                // A bech32 LNURL does not say which kind of link it is until it is read.
                let amount = amount.ok_or_else(needed)?;
                let pay = lnurl(target.clone(), amount, memo.clone());
                match self.lnurl_pay_for(pay, allowance).await {
                    Err(BankError::Lnurl(LnurlError::WithdrawLink)) if allowance.is_none() => {
                        self.withdraw_into(account, wallet_id, &target, amount, memo).await
                    }
                    paid => Ok(paid?.into()),
                }
            }
            Destination::NostrPubkey(pubkey) => {
                let amount = amount.ok_or_else(needed)?;
                if let Some(wallet) = self.store.nostr_key_wallet(&pubkey).await? {
                    let send = intraledger(Recipient::Wallet(wallet), amount, memo);
                    return Ok(self.send_intraledger_for(send, allowance).await?.into());
                }
                let target = self.profile_lightning_address(&pubkey).await?;
                Ok(self.lnurl_pay_for(lnurl(target, amount, memo), allowance).await?.into())
            }
            Destination::OnchainAddress(address) => {
                let send = OnchainSend {
                    account,
                    wallet_id,
                    address,
                    amount: Some(amount.ok_or_else(needed)?),
                    speed: req.speed,
                    memo,
                    idempotency_key: key.clone(),
                };
                Ok(self.onchain_send_for(send, allowance).await?.into())
            }
            Destination::LnurlWithdraw(link) => {
                if allowance.is_some() {
                    return Err(BankError::Lnurl(LnurlError::WithdrawLink));
                }
                let amount = amount.ok_or_else(needed)?;
                self.withdraw_into(account, wallet_id, &link, amount, memo).await
            }
            Destination::CashuToken(_) => Err(BankError::InvalidInput(
                "a Cashu token is ecash to receive into a wallet, not a destination to pay".into(),
            )),
        }
    }

    /// Claims `amount` from another service's withdraw link into `wallet_id`: an invoice of
    /// the wallet is handed to the service, which pays it in its own time (`Pending`; the
    /// money arrives like any payment from outside).
    async fn withdraw_into(
        &self,
        account: AccountId,
        wallet_id: WalletId,
        link: &str,
        amount: i64,
        memo: Option<String>,
    ) -> Result<PayOutcome, BankError> {
        let invoice = InvoiceCreate {
            wallet_id,
            amount: Some(amount),
            memo,
            description_hash: None,
            expires_in_mins: None,
        };
        let invoice = self.ln_invoice_create(InvoiceFor::Owner(account), invoice).await?;
        self.lnurl_withdraw_from(link, &invoice.payment_request, amount).await?;
        Ok(PayOutcome::by(Rail::Lightning, PaymentStatus::Pending, None, None))
    }

    /// The Lightning address (or LNURL) a NOSTR user published in their newest profile on this
    /// Flash's relay (`lud16`, else `lud06`).
    async fn profile_lightning_address(&self, pubkey: &str) -> Result<String, BankError> {
        let query = EventQuery {
            authors: vec![pubkey.to_owned()],
            kinds: vec![PROFILE_KIND],
            limit: 1,
            ..Default::default()
        };
        let now_s = self.now_ms() / 1_000;
        let events = self.store.nostr_query(&query, &Readers::default(), now_s).await?;
        let address = events.first().and_then(|raw| profile_lnurl(raw));
        address.ok_or_else(|| {
            BankError::InvalidInput(
                "this NOSTR user has no Flash account and no Lightning address in a profile this Flash's relay holds"
                    .into(),
            )
        })
    }
}

/// The `lud16` (else `lud06`) of a profile event's content, when it has one.
fn profile_lnurl(raw_event: &str) -> Option<String> {
    let event: serde_json::Value = serde_json::from_str(raw_event).ok()?;
    let content: serde_json::Value = serde_json::from_str(event.get("content")?.as_str()?).ok()?;
    ["lud16", "lud06"].iter().find_map(|field| {
        let value = content.get(field)?.as_str()?.trim();
        (!value.is_empty()).then(|| value.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::profile_lnurl;

    #[test]
    fn a_profile_names_its_lightning_address() {
        let event = |content: &str| serde_json::json!({ "kind": 0, "content": content }).to_string();
        assert_eq!(
            profile_lnurl(&event(r#"{"name":"bob","lud16":"bob@example.com","lud06":"lnurl1x"}"#)).as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(
            profile_lnurl(&event(r#"{"lud16":" ","lud06":"lnurl1x"}"#)).as_deref(),
            Some("lnurl1x")
        );
        assert_eq!(profile_lnurl(&event(r#"{"name":"bob"}"#)), None);
        assert_eq!(profile_lnurl(&event("not json")), None);
        assert_eq!(profile_lnurl("{}"), None);
    }
}
