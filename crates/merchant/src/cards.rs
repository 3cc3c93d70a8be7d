//! Flash Cards: Bolt Cards (NTAG 424 DNA) that spend from their owner's Flash wallet.
//!
//! - **Keys** come from one issuer key, sealed like the other secrets, the card's UID and its
//!   key version ([`CardKeys::derive`]); only the card id derived from the UID is stored.
//! - **Programming**: the owner makes a card and gets a one-time link; the Bolt Card NFC
//!   Programmer app posts the card's UID to it and writes the keys it answers. A physical card
//!   programmed again gets the next key version, so old keys never come back.
//! - **A tap** (`lnurlw://…/boltcard?p=…&c=…`) is checked (`p` under K1, `c` under K2) and its
//!   counter must be strictly above the card's last, stored in the same transaction as the tap
//!   it opens: one tap, one `k1`, one withdrawal, at most the per-tap limit, what is left of the
//!   rolling 24-hour limit and the balance. The withdrawal takes the tap and counts toward the
//!   24-hour limit in the transaction that moves the money.
//! - **Reset** (wipe) hands the keys to the app only for a valid tap of the card itself.
//! - **Pull payment cards** (BTCPay's `POST /api/v1/pull-payments/{id}/boltcards`) spend from
//!   a pull payment: a tap offers at most what the pull payment has left, and the withdrawal is
//!   a payout claimed of it in the transaction that uses the tap up. A card that is live here
//!   already is linked again only for a valid tap of it ([`Cards::link_pull_payment`]).

use std::sync::Arc;

use flash_bank::{
    description_hash, offered_sats, AddressOffer, Bank, BankError, InvoiceCreate, InvoiceFor, LnInvoice, LnPayOutcome,
};

use flash_core::secrets::{hash_token, random_bytes, random_token, KeyEncryptionKey};
use flash_core::text::percent_encode;
use flash_core::{AccountId, WalletId};
use flash_store::{
    Audit, CardSpend, LinkedBoltcard, NewBoltcard, NewBoltcardTap, Record, Store, StoreError, CARD_WINDOW_MS,
};
use serde_json::{Map, Value};

/// A card as stored.
pub use flash_store::BoltcardRecord;

use crate::boltcard::{self, card_id, encryption_key, upper_hex, CardError, CardKeys, PiccData};
use crate::{FieldError, Merchant, MerchantError, PayoutView};

/// The purpose the issuer key is sealed under.
pub const ISSUER_KEY_PURPOSE: &str = "boltcard-issuer-key";
/// How long a programming link works.
const PROGRAM_LINK_MS: i64 = 60 * 60 * 1_000;
/// How long a tap's `k1` may be used.
const TAP_MS: i64 = 10 * 60 * 1_000;
/// The most a card may spend in one tap or in a day, sats (1 BTC).
const LIMIT_MAX_SAT: i64 = 100_000_000;
/// Longest card name.
const NAME_MAX_CHARS: usize = 64;
/// Most cards (not wiped) per account.
const CARDS_MAX: usize = 20;
/// Characters of a programming link's or a tap's secret.
const SECRET_LEN: usize = 43;
/// Characters of a card's top-up link id.
const PAY_ID_LEN: usize = 22;
/// Longest operator comment kept in the audit log.
const COMMENT_MAX_CHARS: usize = 500;
/// Wrong PINs that disable a card.
const PIN_FAILURES_MAX: i64 = 3;
/// Digits of a PIN.
const PIN_DIGITS: std::ops::RangeInclusive<usize> = 4..=8;

/// Why a card operation failed. Each refusal changes nothing.
#[derive(Debug, thiserror::Error)]
pub enum CardsError {
    /// A field is not acceptable.
    #[error("{0}")]
    Invalid(String),
    /// No such card (or not one of the caller's), programming link or tap.
    #[error("card not found")]
    NotFound,
    /// The tap's `p`/`c` do not check out.
    #[error(transparent)]
    Tap(#[from] CardError),
    /// The tap's counter is not above the card's last: a replayed or stale tap.
    #[error("this tap was seen before: tap the card again")]
    Replayed,
    /// The card is disabled or wiped.
    #[error("the card is {0}")]
    NotActive(String),
    /// The PIN is wrong; `left` more tries before the card is disabled.
    #[error("wrong PIN: {left} tries left before the card is disabled")]
    WrongPin {
        /// Tries left.
        left: i64,
    },
    /// This physical card is already programmed as a card that is not wiped.
    #[error("this card is already programmed: reset it first")]
    AlreadyProgrammed,
    /// The bank refused or failed.
    #[error(transparent)]
    Bank(#[from] BankError),
    /// The merchant service (a pull payment card's pull payment) refused or failed.
    #[error(transparent)]
    Merchant(#[from] MerchantError),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(#[from] StoreError),
}

/// A card to make, as its owner asks.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CardCreate {
    /// The wallet it spends from (the account's default when `None`).
    pub wallet_id: Option<WalletId>,
    /// What the owner calls it.
    pub name: String,
    /// Most one tap may spend, sats.
    pub tap_limit_sat: i64,
    /// Most it may spend in any 24 hours, sats.
    pub day_limit_sat: i64,
}

/// A card just made, with the link that programs it (shown once).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedCard {
    /// The card.
    pub card: BoltcardRecord,
    /// The one-time programming URL the app posts the card's UID to.
    pub program_url: String,
}

impl CreatedCard {
    /// The deep link that opens the Bolt Card NFC Programmer app on the programming URL.
    pub fn deeplink(&self) -> String {
        format!("boltcard://program?url={}", percent_encode(&self.program_url))
    }
}

/// What the programming app writes to the card: the LNURL-withdraw base and the five keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProgrammedCard {
    /// `lnurlw://host/boltcard`; the card appends `?p=…&c=…`.
    pub lnurlw: String,
    /// The card's key version.
    pub version: i64,
    /// The keys, in order K0..K4.
    pub keys: [[u8; 16]; 5],
    /// What the owner calls it.
    pub name: String,
}

/// What one tap offers: a `k1` to withdraw once, up to `max_sat`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TapOffer {
    /// The secret the wallet sends back with its invoice.
    pub k1: String,
    /// Most this tap may withdraw, sats (0 when nothing is available now).
    pub max_sat: i64,
    /// The card's name, as the withdrawal's description.
    pub name: String,
    /// Withdrawals of this much or more need the card's PIN, sats (LUD-21 `pinLimit`).
    pub pin_limit_sat: Option<i64>,
    /// The card's top-up link (LUD-19 `payLink`, `lnurlp://…`); none for a pull payment's card.
    pub pay_link: Option<String>,
}

/// What a card's holder may know of it, shown for a valid tap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CardBalance {
    /// What the owner calls it.
    pub name: String,
    /// Its wallet's balance (a pull payment card's: what its pull payment has left), sats.
    pub balance_sat: i64,
    /// Most one tap may spend, sats.
    pub tap_limit_sat: i64,
    /// Most it may spend in any 24 hours, sats.
    pub day_limit_sat: i64,
    /// What is left of the 24-hour limit now, sats.
    pub day_left_sat: i64,
    /// The card's top-up link (`lnurlp://…`); none for a pull payment's card.
    pub pay_link: Option<String>,
}

/// What a withdrawal did.
#[derive(Clone, Debug, PartialEq)]
pub enum Withdrawal {
    /// A wallet card's payment from its wallet.
    Paid(LnPayOutcome),
    /// A pull payment card's payout, claimed from its pull payment: the payout driver pays it
    /// (at once when the pull payment approves its claims itself, else once the store approves).
    Claimed(PayoutView),
}

/// What to do with a card that is linked already (BTCPay's `onExisting`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnExisting {
    /// Answer the keys the card has.
    KeepVersion,
    /// Answer the next version's keys, to write to the card (BTCPay's default).
    UpdateVersion,
}

/// A request to link a physical card to a pull payment (`PullPayments_LinkBoltcard`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PullPaymentLink {
    /// The card's UID, when given.
    uid: Option<[u8; 7]>,
    /// The link read from the card (`p` and `c`), the proof of possession, when given.
    tap: Option<(String, String)>,
    /// What to do with a card that is linked already.
    on_existing: OnExisting,
    /// Most one tap may spend, sats, when given.
    tap_limit_sat: Option<i64>,
    /// Most the card may spend in any 24 hours, sats, when given.
    day_limit_sat: Option<i64>,
}

impl PullPaymentLink {
    /// Reads the request's body: `UID` (7 bytes of hex) or `LNURLW` (`lnurlw://…?p=…&c=…`, read
    /// from the card), `onExisting` (`KeepVersion` or `UpdateVersion`, the default; the query's
    /// `on_existing`, as BTCPay's deep links give it, wins), and Flash's `tapLimit` and
    /// `dayLimit` (sats). Every bad field is told at once.
    pub fn parse(body: &Value, on_existing: Option<&str>) -> Result<PullPaymentLink, MerchantError> {
        let Some(fields) = body.as_object() else {
            return Err(MerchantError::field("", "the body is a JSON object"));
        };
        let mut errors = Vec::new();
        let text = |name: &str, errors: &mut Vec<FieldError>| match fields.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_string()),
            Some(_) => {
                errors.push(FieldError::new(name, &format!("{name} is a string")));
                None
            }
        };
        let uid = text("UID", &mut errors).and_then(|u| match boltcard::parse_uid(&u) {
            Ok(uid) => Some(uid),
            Err(_) => {
                errors.push(FieldError::new("UID", "the UID is 7 bytes of hex (14 hex digits)"));
                None
            }
        });
        let tap = text("LNURLW", &mut errors).and_then(|link| match tap_params(&link) {
            Ok(pc) => Some(pc),
            Err(e) => {
                errors.push(FieldError::new("LNURLW", &e.to_string()));
                None
            }
        });
        let given = on_existing
            .map(str::to_string)
            .or_else(|| text("onExisting", &mut errors));
        let on_existing = match given.as_deref() {
            None | Some("UpdateVersion") => OnExisting::UpdateVersion,
            Some("KeepVersion") => OnExisting::KeepVersion,
            Some(_) => {
                errors.push(FieldError::new(
                    "onExisting",
                    "onExisting is KeepVersion or UpdateVersion",
                ));
                OnExisting::UpdateVersion
            }
        };
        let tap_limit_sat = limit_field(fields, "tapLimit", &mut errors);
        let day_limit_sat = limit_field(fields, "dayLimit", &mut errors);
        if errors.is_empty() && uid.is_none() && tap.is_none() {
            errors.push(FieldError::new("UID", "UID or LNURLW is required"));
        }
        if !errors.is_empty() {
            return Err(MerchantError::Invalid(errors));
        }
        Ok(PullPaymentLink {
            uid,
            tap,
            on_existing,
            tap_limit_sat,
            day_limit_sat,
        })
    }
}

/// An optional limit in sats, 1 to [`LIMIT_MAX_SAT`].
fn limit_field(fields: &Map<String, Value>, name: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    match fields.get(name) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64().filter(|l| (1..=LIMIT_MAX_SAT).contains(l)) {
            Some(limit) => Some(limit),
            None => {
                errors.push(FieldError::new(
                    name,
                    &format!("{name} is a whole number of sats, 1 to {LIMIT_MAX_SAT}"),
                ));
                None
            }
        },
    }
}

/// Card state names.
const PROGRAMMING: &str = "programming";
const ACTIVE: &str = "active";
const DISABLED: &str = "disabled";
const WIPED: &str = "wiped";

/// What an owner may do to a card's state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CardAction {
    /// Let it pay again.
    Enable,
    /// Stop it paying (taps are refused) until enabled again.
    Disable,
    /// Retire it for good (the physical card can then be reset and programmed again).
    Wipe,
}

/// The Flash Cards service.
#[derive(Clone)]
pub struct Cards {
    bank: Bank,
    store: Store,
    merchant: Merchant,
    issuer_key: Arc<[u8; 16]>,
    public_url: Arc<str>,
}

impl Cards {
    /// Opens the service over `merchant` (its bank and database; its pull payments pay pull
    /// payment cards): unseals (or first makes) the issuer key with `kek`. `public_url` is
    /// where this Flash is reached (`https://host`).
    pub async fn open(merchant: &Merchant, kek: &KeyEncryptionKey, public_url: &str) -> Result<Cards, CardsError> {
        let (bank, store) = (merchant.bank.clone(), merchant.store.clone());
        let sealed = store
            .sealed_secret(ISSUER_KEY_PURPOSE, || {
                let key: [u8; 16] = random_bytes();
                kek.seal(ISSUER_KEY_PURPOSE, &key)
            })
            .await?;
        let opened = kek
            .open(ISSUER_KEY_PURPOSE, &sealed)
            .map_err(|e| CardsError::Invalid(format!("the card issuer key does not open with this key: {e}")))?;
        let issuer_key: [u8; 16] = opened
            .as_slice()
            .try_into()
            .map_err(|_| CardsError::Invalid("the sealed card issuer key is not 16 bytes".into()))?;
        Ok(Cards {
            bank,
            store,
            merchant: merchant.clone(),
            issuer_key: Arc::new(issuer_key),
            public_url: Arc::from(public_url.trim_end_matches('/')),
        })
    }

    /// The LNURL-withdraw base written on cards: `lnurlw://host/boltcard`.
    pub fn lnurlw_base(&self) -> String {
        format!("lnurlw://{}/boltcard", self.host())
    }

    /// This Flash's host (and port), from its public URL.
    fn host(&self) -> &str {
        self.public_url
            .split_once("://")
            .map_or(&*self.public_url, |(_, rest)| rest)
    }

    /// Makes a card of `account` and its one-time programming link.
    pub async fn create(&self, account: AccountId, req: CardCreate) -> Result<CreatedCard, CardsError> {
        let name = flash_core::text::label(&req.name, NAME_MAX_CHARS)
            .map_err(|e| CardsError::Invalid(format!("the name {e}")))?
            .to_string();
        check_limits(req.tap_limit_sat, req.day_limit_sat)?;
        let wallet_id = match req.wallet_id {
            Some(wallet) => wallet,
            None => self.bank.account(account).await?.default_wallet_id,
        };
        self.bank.own_wallet(account, wallet_id).await?;
        let live = self
            .store
            .boltcards_of(account)
            .await?
            .iter()
            .filter(|c| c.state != WIPED && c.pull_payment_id.is_none())
            .count();
        if live >= CARDS_MAX {
            return Err(CardsError::Invalid(format!(
                "an account holds at most {CARDS_MAX} cards: wipe one first"
            )));
        }
        let secret = random_token("", SECRET_LEN);
        let id = uuid::Uuid::now_v7().to_string();
        self.store
            .boltcard_create(&NewBoltcard {
                id: id.clone(),
                account_id: account,
                wallet_id,
                name,
                tap_limit_sat: req.tap_limit_sat,
                day_limit_sat: req.day_limit_sat,
                pay_id: random_token("", PAY_ID_LEN),
                program_secret_hash: hash_token(&secret),
                program_expires_at: self.bank.now_ms() + PROGRAM_LINK_MS,
            })
            .await?;
        let card = self.store.boltcard(&id).await?.ok_or(CardsError::NotFound)?;
        Ok(CreatedCard {
            card,
            program_url: format!("{}/boltcard/program/{secret}", self.public_url),
        })
    }

    /// The account's cards, newest first.
    pub async fn list(&self, account: AccountId) -> Result<Vec<BoltcardRecord>, CardsError> {
        Ok(self.store.boltcards_of(account).await?)
    }

    /// One of the account's cards.
    pub async fn card(&self, account: AccountId, id: &str) -> Result<BoltcardRecord, CardsError> {
        match self.store.boltcard(id).await? {
            Some(card) if card.account_id == account => Ok(card),
            _ => Err(CardsError::NotFound),
        }
    }

    /// Enables, disables or wipes one of the account's cards. A wiped card stays wiped.
    pub async fn act(&self, account: AccountId, id: &str, action: CardAction) -> Result<BoltcardRecord, CardsError> {
        let card = self.card(account, id).await?;
        let state = Self::next_state(&card, action)?;
        if !self.store.boltcard_set_state(account, id, state).await? {
            return Err(CardsError::NotFound);
        }
        self.card(account, id).await
    }

    /// Enables, disables or wipes any card, as the operator `actor` (audited with `comment`).
    pub async fn operator_act(
        &self,
        actor: &str,
        id: &str,
        action: CardAction,
        comment: &str,
    ) -> Result<BoltcardRecord, CardsError> {
        let comment = flash_core::text::multiline(comment.trim(), COMMENT_MAX_CHARS)
            .map_err(|e| CardsError::Invalid(format!("the comment {e}")))?;
        let card = self.store.boltcard(id).await?.ok_or(CardsError::NotFound)?;
        let state = Self::next_state(&card, action)?;
        let audit = Audit {
            actor: actor.to_string(),
            action: "card.state".into(),
            subject: card.account_id.to_string(),
            detail: format!("{id} {state} {comment}").trim().to_string(),
        };
        if !self
            .store
            .boltcard_set_state_audited(card.account_id, id, state, &audit)
            .await?
        {
            return Err(CardsError::NotActive(WIPED.into()));
        }
        self.card(card.account_id, id).await
    }

    /// The state `action` moves `card` to, if it may.
    fn next_state(card: &BoltcardRecord, action: CardAction) -> Result<&'static str, CardsError> {
        if card.state == WIPED {
            return Err(CardsError::NotActive(WIPED.into()));
        }
        match action {
            CardAction::Enable if card.card_key_id.is_none() => {
                Err(CardsError::Invalid("the card is not programmed yet".into()))
            }
            CardAction::Enable => Ok(ACTIVE),
            CardAction::Disable => Ok(DISABLED),
            CardAction::Wipe => Ok(WIPED),
        }
    }

    /// Sets one of the account's cards' PIN (4 to 8 digits) and the amount from which a
    /// withdrawal needs it, or removes the PIN (`None`).
    pub async fn set_pin(
        &self,
        account: AccountId,
        id: &str,
        pin: Option<(&str, i64)>,
    ) -> Result<BoltcardRecord, CardsError> {
        self.card(account, id).await?;
        if let Some((digits, limit)) = pin {
            if !PIN_DIGITS.contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(CardsError::Invalid("a PIN is 4 to 8 digits".into()));
            }
            if !(1..=LIMIT_MAX_SAT).contains(&limit) {
                return Err(CardsError::Invalid(format!(
                    "the PIN limit is 1 to {LIMIT_MAX_SAT} sats"
                )));
            }
        }
        let hashed = pin.map(|(digits, limit)| (pin_hash(id, digits), limit));
        let changed = self
            .store
            .boltcard_set_pin(account, id, hashed.as_ref().map(|(h, l)| (h.as_str(), *l)))
            .await?;
        if !changed {
            return Err(CardsError::NotActive(WIPED.into()));
        }
        self.card(account, id).await
    }

    /// Sets one of the account's cards' limits.
    pub async fn set_limits(
        &self,
        account: AccountId,
        id: &str,
        tap_limit_sat: i64,
        day_limit_sat: i64,
    ) -> Result<BoltcardRecord, CardsError> {
        check_limits(tap_limit_sat, day_limit_sat)?;
        self.card(account, id).await?;
        if !self
            .store
            .boltcard_set_limits(account, id, tap_limit_sat, day_limit_sat)
            .await?
        {
            return Err(CardsError::NotActive(WIPED.into()));
        }
        self.card(account, id).await
    }

    /// The programming link's answer to the app: binds the card waiting behind `secret` to the
    /// physical card `uid` at the next key version it has under this issuer, and returns its
    /// keys. Until the card's first tap the link answers the same keys again for the same card
    /// (the app may have failed half way) and refuses any other.
    pub async fn program(&self, secret: &str, uid: &str) -> Result<ProgrammedCard, CardsError> {
        let uid = boltcard::parse_uid(uid).map_err(|_| CardsError::Invalid("the UID is 7 bytes of hex".into()))?;
        let hash = hash_token(secret);
        let card = self
            .store
            .boltcard_by_program_secret(&hash)
            .await?
            .filter(|c| c.program_expires_at.is_some_and(|t| t > self.bank.now_ms()))
            .ok_or(CardsError::NotFound)?;
        let key_id = hex_lower(&card_id(&self.issuer_key, &uid));
        let version = match &card.card_key_id {
            // The app trying again with the same card before its first tap: the same keys.
            Some(bound) if *bound == key_id => card.key_version,
            Some(_) => return Err(CardsError::Invalid("this link programmed another card".into())),
            None => {
                if self.store.boltcard_by_key_id(&key_id).await?.is_some() {
                    return Err(CardsError::AlreadyProgrammed);
                }
                self.store
                    .boltcard_last_version(&key_id)
                    .await?
                    .map_or(0, |v| v.saturating_add(1))
            }
        };
        match self.store.boltcard_programmed(&card.id, &hash, &key_id, version).await {
            Ok(true) => {}
            Ok(false) => return Err(CardsError::NotFound),
            Err(e) if e.is_unique_violation() => return Err(CardsError::AlreadyProgrammed),
            Err(e) => return Err(e.into()),
        }
        Ok(self.keys_of(&uid, version, card.name)?)
    }

    /// What the app writes to the card `uid` at key `version`.
    fn keys_of(&self, uid: &[u8; 7], version: i64, name: String) -> Result<ProgrammedCard, StoreError> {
        let keys = CardKeys::derive(&self.issuer_key, uid, key_version(version)?);
        Ok(ProgrammedCard {
            lnurlw: self.lnurlw_base(),
            version,
            keys: [keys.k0, keys.k1, keys.k2, keys.k3, keys.k4],
            name,
        })
    }

    /// The key version a tap of `card` (`p`, `c`) was made with: the card's, or, while the card
    /// is `programming`, the one before (the app may not have written the new keys yet, and the
    /// card must not be bricked for that). Refused when neither checks out.
    fn proven_version(&self, card: &BoltcardRecord, uid: &[u8; 7], p: &str, c: &str) -> Result<i64, CardsError> {
        let earlier = (card.state == PROGRAMMING && card.key_version > 0).then(|| card.key_version - 1);
        for version in std::iter::once(card.key_version).chain(earlier) {
            let keys = CardKeys::derive(&self.issuer_key, uid, key_version(version)?);
            if boltcard::verify_tap(&keys.sun_keys(), p, c).is_ok() {
                return Ok(version);
            }
        }
        Err(CardsError::Tap(CardError::CmacMismatch))
    }

    /// The reset link's answer to the app: for a valid tap of the card (`lnurlw`, read from
    /// it, with its `p` and `c`), the keys it was programmed with, so the app can put the
    /// factory keys back; the card is wiped (a card its owner wiped already is reset too).
    /// Only the card itself proves the right to reset it, and one tap resets once.
    pub async fn reset(&self, lnurlw: &str) -> Result<ProgrammedCard, CardsError> {
        let (p, c) = tap_params(lnurlw)?;
        let picc = boltcard::decrypt_picc(&encryption_key(&self.issuer_key), &boltcard::parse_p(&p)?)?;
        let key_id = hex_lower(&card_id(&self.issuer_key, &picc.uid));
        let card = self
            .store
            .boltcard_latest_by_key_id(&key_id)
            .await?
            .ok_or(CardsError::NotFound)?;
        let version = self.proven_version(&card, &picc.uid, &p, &c)?;
        if !self.store.boltcard_reset(&card.id, i64::from(picc.counter)).await? {
            return Err(CardsError::Replayed);
        }
        Ok(self.keys_of(&picc.uid, version, card.name)?)
    }

    /// Links the physical card `link` names to the pull payment `pull_payment_id` (not archived
    /// nor expired) and answers the keys to write to it (`PullPayments_LinkBoltcard`).
    ///
    /// - A card that is not live here (never programmed, or wiped): a new card of the pull
    ///   payment at the physical card's next key version, `programming` until its first tap.
    ///   Until then the same request answers the same keys (the app may have failed half way)
    ///   and writes nothing.
    /// - A live card, whoever's it is, needs `LNURLW`, a fresh tap of it (its counter is used
    ///   up): `KeepVersion` answers the keys it has and it is `active`, `UpdateVersion` the next
    ///   version's and it is `programming` until tapped with them. A card of this pull payment
    ///   is changed in place (a disabled one stays disabled); any other (a wallet card, another
    ///   pull payment's) is wiped and the pull payment's new card made, in one transaction.
    ///
    /// Limits are `tapLimit` and `dayLimit` when given, else those the card of this pull payment
    /// had, else the pull payment's amount (at most 1 BTC).
    pub async fn link_pull_payment(
        &self,
        pull_payment_id: &str,
        link: &PullPaymentLink,
    ) -> Result<ProgrammedCard, MerchantError> {
        let pp = self.merchant.pull_payment(pull_payment_id).await?;
        let r = &pp.record;
        if r.archived || r.expires_at.is_some_and(|at| at <= self.bank.now_ms()) {
            return Err(MerchantError::PullPaymentNotFound);
        }
        let bad_tap = |e: CardsError| MerchantError::field("LNURLW", &e.to_string());
        let tap = match &link.tap {
            Some((p, c)) => {
                let bytes = boltcard::parse_p(p).map_err(|e| bad_tap(e.into()))?;
                let picc =
                    boltcard::decrypt_picc(&encryption_key(&self.issuer_key), &bytes).map_err(|e| bad_tap(e.into()))?;
                Some((p.as_str(), c.as_str(), picc))
            }
            None => None,
        };
        let uid = match (&tap, link.uid) {
            (Some((_, _, picc)), Some(uid)) if picc.uid != uid => {
                return Err(MerchantError::field(
                    "UID",
                    "the UID is not that of the card LNURLW was read from",
                ))
            }
            (Some((_, _, picc)), _) => picc.uid,
            (None, Some(uid)) => uid,
            (None, None) => return Err(MerchantError::field("UID", "UID or LNURLW is required")),
        };
        let key_id = hex_lower(&card_id(&self.issuer_key, &uid));
        let live = self.store.boltcard_by_key_id(&key_id).await?;
        let ours = live
            .as_ref()
            .filter(|c| c.pull_payment_id.as_deref() == Some(pull_payment_id));
        let (version, state, counter) = match (&live, tap) {
            (None, _) => {
                let next = self
                    .store
                    .boltcard_last_version(&key_id)
                    .await?
                    .map_or(0, |v| v.saturating_add(1));
                (next, PROGRAMMING, 0)
            }
            // The app again, for a card linked here by its UID and never tapped since: the same
            // keys. (Once a tap was seen, only a tap links it again.)
            (Some(card), None) if ours.is_some() && card.state == PROGRAMMING && card.counter == 0 => {
                return Ok(self.keys_of(&uid, card.key_version, card.name.clone())?);
            }
            (Some(_), None) => return Err(MerchantError::CardInUse),
            (Some(card), Some((p, c, picc))) => {
                let proven = self.proven_version(card, &uid, p, c).map_err(bad_tap)?;
                let counter = i64::from(picc.counter);
                if counter <= card.counter {
                    return Err(bad_tap(CardsError::Replayed));
                }
                match link.on_existing {
                    OnExisting::KeepVersion => (proven, ACTIVE, counter),
                    OnExisting::UpdateVersion => (proven.saturating_add(1), PROGRAMMING, counter),
                }
            }
        };
        let default = r.budget_sat.clamp(1, LIMIT_MAX_SAT);
        let day_limit = link.day_limit_sat.or(ours.map(|c| c.day_limit_sat)).unwrap_or(default);
        let tap_limit = link
            .tap_limit_sat
            .unwrap_or_else(|| ours.map_or(default, |c| c.tap_limit_sat).min(day_limit));
        check_limits(tap_limit, day_limit).map_err(|e| MerchantError::field("tapLimit", &e.to_string()))?;
        if let Some(card) = ours {
            if !self
                .store
                .boltcard_relink(&card.id, counter, version, state, tap_limit, day_limit)
                .await?
            {
                return Err(bad_tap(CardsError::Replayed));
            }
            return Ok(self.keys_of(&uid, version, card.name.clone())?);
        }
        let owner = self
            .store
            .merchant_store(&r.store_id)
            .await?
            .ok_or(MerchantError::PullPaymentNotFound)?;
        let name: String = match pp.name().trim() {
            "" => "Pull payment card".to_string(),
            name => name.chars().take(NAME_MAX_CHARS).collect(),
        };
        let card = LinkedBoltcard {
            id: uuid::Uuid::now_v7().to_string(),
            account_id: owner.account_id,
            wallet_id: r.budget_wallet,
            pull_payment_id: r.id.clone(),
            name,
            tap_limit_sat: tap_limit,
            day_limit_sat: day_limit,
            pay_id: random_token("", PAY_ID_LEN),
            card_key_id: key_id,
            key_version: version,
            counter,
            state: state.to_string(),
        };
        match self
            .store
            .boltcard_link(&card, live.as_ref().map(|c| c.id.as_str()))
            .await
        {
            Ok(()) => Ok(self.keys_of(&uid, version, card.name)?),
            Err(StoreError::Refused(_)) => Err(bad_tap(CardsError::Replayed)),
            Err(e) if e.is_unique_violation() => Err(MerchantError::CardInUse),
            Err(e) => Err(e.into()),
        }
    }

    /// A wallet card's top-up link: LNURL-pay (LUD-06) into its wallet, as `lnurlp://`
    /// (LUD-17). A pull payment's card has none (its money is the pull payment's).
    fn pay_link(&self, card: &BoltcardRecord) -> Option<String> {
        card.pull_payment_id
            .is_none()
            .then(|| format!("lnurlp://{}/boltcard/pay/{}", self.host(), card.pay_id))
    }

    /// What the top-up link `pay_id` offers (LUD-06): a payment into the card's wallet of 1
    /// sat up to the bank's LNURL-pay maximum, described as a top-up of the card.
    pub async fn top_up_offer(&self, pay_id: &str) -> Result<AddressOffer, CardsError> {
        let card = self.top_up_card(pay_id).await?;
        Ok(self.top_up_offer_of(&card))
    }

    /// The card (not wiped) whose top-up link is `pay_id`.
    async fn top_up_card(&self, pay_id: &str) -> Result<BoltcardRecord, CardsError> {
        self.store.boltcard_by_pay_id(pay_id).await?.ok_or(CardsError::NotFound)
    }

    /// What `card`'s top-up link offers.
    fn top_up_offer_of(&self, card: &BoltcardRecord) -> AddressOffer {
        let max = self.bank.config().lightning.lnurl_max_sendable_sats;
        AddressOffer {
            username: card.name.clone(),
            metadata: serde_json::json!([["text/plain", format!("Top up the Flash Card {}", card.name)]]).to_string(),
            min_sendable_msat: 1_000,
            max_sendable_msat: u64::try_from(max).unwrap_or(0).saturating_mul(1_000),
            comment_allowed: 0,
        }
    }

    /// An invoice of `amount_msat` into the wallet of the card whose top-up link is `pay_id`,
    /// committing to the offer's metadata.
    pub async fn top_up_invoice(&self, pay_id: &str, amount_msat: u64) -> Result<LnInvoice, CardsError> {
        let card = self.top_up_card(pay_id).await?;
        let offer = self.top_up_offer_of(&card);
        let amount = offered_sats(&offer, amount_msat)?;
        Ok(self
            .bank
            .ln_invoice_create(
                InvoiceFor::Recipient,
                InvoiceCreate {
                    wallet_id: card.wallet_id,
                    amount: Some(amount),
                    memo: None,
                    description_hash: Some(description_hash(&offer.metadata)),
                    expires_in_mins: None,
                },
            )
            .await?)
    }

    /// The deep link that opens the Bolt Card NFC Programmer app to reset a card here.
    pub fn reset_deeplink(&self) -> String {
        format!(
            "boltcard://reset?url={}",
            percent_encode(&format!("{}/boltcard/reset", self.public_url))
        )
    }

    /// A tap: checks `p` and `c`, accepts the counter and opens a withdrawal of at most the
    /// per-tap limit, what is left of the 24-hour limit and the wallet's balance (a pull
    /// payment card's: what its pull payment has left to claim).
    pub async fn tap(&self, p: &str, c: &str) -> Result<TapOffer, CardsError> {
        let (card, picc) = self.checked_tap(p, c).await?;
        let (balance, day_left) = self.room(&card).await?;
        let max_sat = card.tap_limit_sat.min(day_left).min(balance).max(0);
        let k1 = self.accept(&card, &picc, max_sat).await?;
        Ok(TapOffer {
            k1,
            max_sat,
            pin_limit_sat: card.pin_hash.as_ref().and(card.pin_limit_sat),
            pay_link: self.pay_link(&card),
            name: card.name,
        })
    }

    /// A tap given as the card's whole link (`lnurlw://…?p=…&c=…`, as a point of sale reads
    /// it): [`Cards::tap`] on its `p` and `c`.
    pub async fn tap_link(&self, lnurlw: &str) -> Result<TapOffer, CardsError> {
        let (p, c) = tap_params(lnurlw)?;
        self.tap(&p, &c).await
    }

    /// The balance and limits of the card a tap's `p` and `c` come from (a disabled card is
    /// refused as for a payment). The tap is used up (its counter accepted), so a tap read by
    /// someone else shows nothing later.
    pub async fn balance(&self, p: &str, c: &str) -> Result<CardBalance, CardsError> {
        let (card, picc) = self.checked_tap(p, c).await?;
        self.accept(&card, &picc, 0).await?;
        let (balance, day_left) = self.room(&card).await?;
        Ok(CardBalance {
            pay_link: self.pay_link(&card),
            name: card.name,
            balance_sat: balance,
            tap_limit_sat: card.tap_limit_sat,
            day_limit_sat: card.day_limit_sat,
            day_left_sat: day_left.max(0),
        })
    }

    /// What a card may spend beyond its limits (its wallet's balance, or what its pull payment
    /// has left to claim by taps) and what is left of its 24-hour limit.
    async fn room(&self, card: &BoltcardRecord) -> Result<(i64, i64), CardsError> {
        let spent = self
            .store
            .boltcard_spent_since(&card.id, self.bank.now_ms() - CARD_WINDOW_MS)
            .await?;
        let balance = match &card.pull_payment_id {
            Some(pp) => self.merchant.pull_payment_card_left(pp).await?,
            None => self.bank.wallet_balance(card.wallet_id).await?,
        };
        Ok((balance, card.day_limit_sat - spent))
    }

    /// A withdrawal for the tap that handed out `k1`, once: pays `payment_request` from the
    /// card's wallet, or, for a pull payment's card, claims a payout of it from the pull
    /// payment in the transaction that uses the tap up. A card with a PIN needs it (`pin`) from
    /// its PIN limit up; a wrong PIN is counted, and the third disables the card.
    pub async fn withdraw(&self, k1: &str, payment_request: &str, pin: Option<&str>) -> Result<Withdrawal, CardsError> {
        let tap = self
            .store
            .boltcard_tap(&hash_token(k1))
            .await?
            .ok_or(CardsError::NotFound)?;
        let card = self
            .store
            .boltcard(&tap.tap.card_id)
            .await?
            .ok_or(CardsError::NotFound)?;
        if card.state != ACTIVE {
            return Err(CardsError::NotActive(card.state));
        }
        let pin_from_sat = match (&card.pin_hash, pin) {
            (Some(expected), Some(given)) => {
                if pin_hash(&card.id, given) != *expected {
                    let failures = self.store.boltcard_pin_failed(&card.id, PIN_FAILURES_MAX).await?;
                    return Err(CardsError::WrongPin {
                        left: (PIN_FAILURES_MAX - failures).max(0),
                    });
                }
                self.store.boltcard_pin_passed(&card.id).await?;
                None
            }
            (Some(_), None) => card.pin_limit_sat,
            (None, _) => None,
        };
        let spend = CardSpend {
            tap_id: tap.tap.id.clone(),
            card_id: card.id.clone(),
            day_limit_sat: card.day_limit_sat,
        };
        let Some(pull_payment) = &card.pull_payment_id else {
            let paid = self
                .bank
                .card_pay(
                    card.account_id,
                    card.wallet_id,
                    &spend,
                    tap.tap.max_sat,
                    pin_from_sat,
                    payment_request,
                )
                .await?;
            return Ok(Withdrawal::Paid(paid));
        };
        let (_, amount) = self
            .bank
            .card_invoice(payment_request, tap.tap.max_sat, pin_from_sat)
            .await?;
        let taken = Record::boltcard_spend_taken(&spend, amount, self.bank.now_ms());
        let payout = self
            .merchant
            .claim_for_card(pull_payment, payment_request, taken)
            .await?;
        Ok(Withdrawal::Claimed(payout))
    }

    /// The card a tap's `p` and `c` come from, checked; refused before anything is looked up
    /// when `p` does not decrypt under the issuer's K1, and before the card's state is told
    /// when `c` is wrong.
    async fn checked_tap(&self, p: &str, c: &str) -> Result<(BoltcardRecord, PiccData), CardsError> {
        let k1 = encryption_key(&self.issuer_key);
        let p_bytes = boltcard::parse_p(p)?;
        let picc = boltcard::decrypt_picc(&k1, &p_bytes)?;
        let key_id = hex_lower(&card_id(&self.issuer_key, &picc.uid));
        let card = self
            .store
            .boltcard_by_key_id(&key_id)
            .await?
            .ok_or(CardsError::NotFound)?;
        let keys = CardKeys::derive(&self.issuer_key, &picc.uid, key_version(card.key_version)?);
        boltcard::verify_tap(&keys.sun_keys(), p, c)?;
        if card.state != ACTIVE && card.state != PROGRAMMING {
            return Err(CardsError::NotActive(card.state));
        }
        if i64::from(picc.counter) <= card.counter {
            return Err(CardsError::Replayed);
        }
        Ok((card, picc))
    }

    /// Records the tap with the card's new counter; its `k1`.
    async fn accept(&self, card: &BoltcardRecord, picc: &PiccData, max_sat: i64) -> Result<String, CardsError> {
        let k1 = random_token("", SECRET_LEN);
        let tap = NewBoltcardTap {
            id: hash_token(&k1),
            card_id: card.id.clone(),
            counter: i64::from(picc.counter),
            max_sat,
            expires_at: self.bank.now_ms() + TAP_MS,
        };
        match self.store.boltcard_tap_accept(&tap).await {
            Ok(()) => Ok(k1),
            // Another tap with this counter or a later one got in first.
            Err(StoreError::Refused(_)) => Err(CardsError::Replayed),
            Err(e) if e.is_unique_violation() => Err(CardsError::Replayed),
            Err(e) => Err(e.into()),
        }
    }
}

/// Refuses limits out of range or a per-tap limit above the daily one.
fn check_limits(tap_limit_sat: i64, day_limit_sat: i64) -> Result<(), CardsError> {
    if !(1..=LIMIT_MAX_SAT).contains(&tap_limit_sat) || !(1..=LIMIT_MAX_SAT).contains(&day_limit_sat) {
        return Err(CardsError::Invalid(format!("limits are 1 to {LIMIT_MAX_SAT} sats")));
    }
    if tap_limit_sat > day_limit_sat {
        return Err(CardsError::Invalid(
            "the per-tap limit is above the 24-hour limit".into(),
        ));
    }
    Ok(())
}

/// A stored key version as the derivation takes it.
fn key_version(version: i64) -> Result<u32, StoreError> {
    u32::try_from(version).map_err(|_| StoreError::Decode(format!("key version {version}")))
}

impl Cards {
    /// The id of the card whose tap gave `k1`.
    pub async fn card_of_tap(&self, k1: &str) -> Result<String, CardsError> {
        let tap = self
            .store
            .boltcard_tap(&hash_token(k1))
            .await?
            .ok_or(CardsError::NotFound)?;
        Ok(tap.tap.card_id)
    }
}

/// `p` and `c` of a card's link: `lnurlw://…?p=…&c=…` (LUD-17), or the same as `https://`.
fn tap_params(link: &str) -> Result<(String, String), CardsError> {
    let invalid = || CardsError::Invalid("the card's link is lnurlw://… with its p= and c= parameters".into());
    let link = link.trim();
    let web = match link.get(..9) {
        Some(scheme) if scheme.eq_ignore_ascii_case("lnurlw://") => format!("https://{}", &link[9..]),
        _ => link.to_string(),
    };
    let url = url::Url::parse(&web)
        .ok()
        .filter(|u| matches!(u.scheme(), "https" | "http"))
        .ok_or_else(invalid)?;
    let find = |name: &str| url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned());
    match (find("p"), find("c")) {
        (Some(p), Some(c)) => Ok((p, c)),
        _ => Err(invalid()),
    }
}

/// What is stored of a card's PIN: a digest of the card and the digits. Four to eight digits
/// are found by trying them all, given the database: the protection is the count of wrong PINs
/// (three disable the card) and, at rest, the database's own.
fn pin_hash(card_id: &str, digits: &str) -> String {
    hash_token(&format!("flash-card-pin:{card_id}:{digits}"))
}

/// Lower-case hex.
fn hex_lower(bytes: &[u8]) -> String {
    upper_hex(bytes).to_ascii_lowercase()
}
