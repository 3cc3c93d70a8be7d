//! Paid admission to the relay (`write_policy = "paid"`).
//!
//! A pubkey asks for an admission invoice (`/relay/admission?pubkey=…`, NIP-11's
//! `payments_url`): a Lightning invoice for `admission_sats` into the default wallet of the
//! operator's Flash user (`admission_username`). Paid over Lightning or from a Flash wallet,
//! it is credited like any invoice of this Flash, and the pubkey may write from then on: the
//! relay reads admission from the invoice's own payment record, so it holds exactly when the
//! ledger says the fee arrived, on every node, with nothing to replay after a crash.

use flash_core::ErrorCode;
use std::str::FromStr;

use flash_bank::{Bank, BankError, InvoiceCreate, InvoiceFor, LnInvoice};
use flash_core::lightning::Hash32;
use flash_store::{StoreError, WalletRecord};
use nostr::nips::nip19::ToBech32;
use nostr::PublicKey;

use crate::config::WritePolicy;
use crate::names::parse_pubkey;
use crate::relay::Relay;

/// An unpaid invoice is handed out again if it stays payable at least this much longer,
/// milliseconds.
const REUSE_WHILE_VALID_MS: i64 = 10 * 60 * 1_000;

/// Why an admission invoice could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// Not an `npub1…` key (or 64 hex characters).
    #[error("not a NOSTR public key: give an npub1… or 64 hex characters")]
    InvalidPubkey,
    /// The operator's Flash user (`admission_username`) does not exist (yet) or cannot receive.
    #[error("this relay cannot take admission payments yet: its operator's wallet is not set up")]
    NoWallet,
    /// The bank refused (Lightning unavailable, …).
    #[error(transparent)]
    Bank(BankError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AdmissionError {
    /// The stable code the API shows.
    pub fn code(&self) -> ErrorCode {
        match self {
            AdmissionError::InvalidPubkey => ErrorCode::InvalidNpub,
            AdmissionError::NoWallet => ErrorCode::AdmissionUnavailable,
            AdmissionError::Bank(e) => e.code(),
            AdmissionError::Store(_) => ErrorCode::InternalError,
        }
    }
}

impl From<BankError> for AdmissionError {
    fn from(e: BankError) -> Self {
        match e {
            BankError::Store(s) => AdmissionError::Store(s),
            BankError::RecipientNotFound
            | BankError::RecipientNotActive
            | BankError::WalletNotFound
            | BankError::AccountNotFound => AdmissionError::NoWallet,
            e => AdmissionError::Bank(e),
        }
    }
}

/// What a pubkey's admission stands at.
#[derive(Clone, Debug)]
pub struct AdmissionOffer {
    /// The pubkey.
    pub pubkey: PublicKey,
    /// What admission costs, satoshis.
    pub amount_sats: u64,
    /// The invoice to pay; none once the pubkey is admitted.
    pub invoice: Option<LnInvoice>,
}

impl AdmissionOffer {
    /// Whether the pubkey may write.
    pub fn admitted(&self) -> bool {
        self.invoice.is_none()
    }
}

/// Admission invoices of a paid relay. Cheap to clone.
#[derive(Clone)]
pub struct AdmissionFees {
    bank: Bank,
    relay: Relay,
}

impl AdmissionFees {
    /// Admission for `relay`, when its write policy is `paid`.
    pub fn new(bank: Bank, relay: Relay) -> Option<AdmissionFees> {
        (relay.config().write_policy == WritePolicy::Paid).then_some(AdmissionFees { bank, relay })
    }

    /// What admission costs, satoshis.
    pub fn amount_sats(&self) -> u64 {
        self.relay.config().admission_sats
    }

    /// The wallet admission fees go to (the default wallet of `admission_username`).
    pub async fn wallet(&self) -> Result<WalletRecord, AdmissionError> {
        let username = self.relay.config().admission_username.as_deref().unwrap_or_default();
        Ok(self.bank.default_wallet_of(username).await?)
    }

    /// Where a pubkey's admission stands: admitted, or the invoice to pay (an unpaid one
    /// still valid is given again rather than a new one).
    pub async fn offer(&self, pubkey: &str) -> Result<AdmissionOffer, AdmissionError> {
        let pubkey = parse_pubkey(pubkey).map_err(|_| AdmissionError::InvalidPubkey)?;
        let hex = pubkey.to_hex();
        let store = self.relay.store();
        let amount_sats = self.amount_sats();
        let offer = |invoice| AdmissionOffer {
            pubkey,
            amount_sats,
            invoice,
        };
        if store.nostr_admitted(&hex).await? {
            return Ok(offer(None));
        }
        let amount = i64::try_from(amount_sats).map_err(|_| BankError::Amount(flash_core::MoneyError::TooLarge))?;
        let valid_until = store.now_ms().saturating_add(REUSE_WHILE_VALID_MS);
        if let Some(hash) = store.nostr_admission_open(&hex, amount, valid_until).await? {
            let hash =
                Hash32::from_str(&hash).map_err(|e| StoreError::Decode(format!("admission payment hash: {e}")))?;
            return Ok(offer(Some(self.bank.ln_invoice_by_hash(hash).await?)));
        }
        let wallet = self.wallet().await?;
        let npub = pubkey.to_bech32().map_err(|_| AdmissionError::InvalidPubkey)?;
        let invoice = self
            .bank
            .ln_invoice_create(
                InvoiceFor::Recipient,
                InvoiceCreate {
                    wallet_id: wallet.id,
                    amount: Some(amount),
                    memo: Some(format!("Relay admission for {npub}")),
                    description_hash: None,
                    expires_in_mins: None,
                },
            )
            .await?;
        store
            .nostr_admission_create(&invoice.payment_hash.to_string(), &hex)
            .await?;
        Ok(offer(Some(invoice)))
    }
}
