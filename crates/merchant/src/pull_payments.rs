//! Greenfield pull payments and payouts. A pull payment sets part of a store's wallet aside in a
//! budget (a budget wallet on the ledger, funded when the pull payment is made); whoever holds
//! it claims payouts from it to any destination a Flash user can pay, up to what the budget
//! holds beyond the other open claims. A store may also pay payouts straight from its wallet.
//!
//! A payout is a saga driven by [`Merchant::run_payout_pass`]: each attempt pays under its own
//! idempotency key and takes the payout to `InProgress` in the transaction that moves its money
//! (see the bank's `budgets`), so retries, crashes and several nodes driving the same payout pay
//! it once; an attempt under way is followed on its rail until it succeeds (`Completed`, with
//! its proof) or fails (back to `AwaitingPayment`, tried again later). When a pull payment is
//! archived or expires, what its budget holds beyond its open claims goes back to the store.

use flash_bank::{PayoutPayment, TxStatus};
use flash_core::destination::{Destination, PaymentTarget};
use flash_core::price::{format_minor, BtcPrice, Decimal};
use flash_core::Sats;
use flash_store::{
    MerchantPayoutRecord, MerchantPayoutState, MerchantStoreRecord, NewMerchantEvent, PayoutAttempt, PullPaymentRecord,
    Record, StoreError,
};
use serde_json::{json, Map, Value};

use crate::invoice_data::{btc, decimal_string, sats_due, InvoiceCurrency, PricingError};
use crate::payment_requests::{decimal_field, text_field};
use crate::permissions::{
    CAN_ARCHIVE_PULL_PAYMENTS, CAN_CREATE_NON_APPROVED_PULL_PAYMENTS, CAN_CREATE_PULL_PAYMENTS,
    CAN_MANAGE_PULL_PAYMENTS, CAN_VIEW_PULL_PAYMENTS,
};
use crate::{Caller, FieldError, Merchant, MerchantError};

/// Greenfield's on-chain payout method.
pub const PAYOUT_ONCHAIN: &str = "BTC-CHAIN";
/// Greenfield's Lightning payout method (also a Flash user's: paid inside the ledger).
pub const PAYOUT_LIGHTNING: &str = "BTC-LN";
/// Longest name.
const MAX_NAME_CHARS: usize = 100;
/// Longest description.
const MAX_DESCRIPTION_CHARS: usize = 5_000;
/// Longest destination.
const MAX_DESTINATION_CHARS: usize = 4_096;
/// Most bytes of a payout's metadata or proof, as JSON.
const MAX_JSON_BYTES: usize = 16 * 1024;
/// BTCPay's default `BOLT11Expiration`, days.
const DEFAULT_BOLT11_EXPIRATION_DAYS: i64 = 30;
/// Longest `BOLT11Expiration`, days.
const MAX_BOLT11_EXPIRATION_DAYS: i64 = 365;
/// Payouts one pass drives, and closed pull payments it empties.
const PASS_BATCH: i64 = 100;
/// Times an archive is tried again when a payout moved on meanwhile.
const ARCHIVE_ATTEMPTS: usize = 5;

/// A pull payment's Greenfield fields besides those stored in columns.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct PullPaymentData {
    name: String,
    description: String,
    bolt11_expiration_days: i64,
    /// The payout methods claims may use.
    payout_methods: Vec<String>,
}

/// A payout's Greenfield fields besides those stored in columns.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct PayoutData {
    /// The claimed amount in the pull payment's currency (or BTC), as a decimal.
    original_amount: String,
    /// That currency.
    original_currency: String,
    /// Metadata given by the store.
    metadata: Value,
}

/// A pull payment as Greenfield shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PullPaymentView {
    /// As stored.
    pub record: PullPaymentRecord,
    data: PullPaymentData,
}

impl PullPaymentView {
    fn of(record: PullPaymentRecord) -> Result<PullPaymentView, MerchantError> {
        let data = serde_json::from_str(&record.data).map_err(|e| decode(format!("pull payment data: {e}")))?;
        Ok(PullPaymentView { record, data })
    }

    /// Greenfield's `PullPaymentData`, its `viewLink` under `base`.
    pub fn to_json(&self, base: &str) -> Value {
        let r = &self.record;
        json!({
            "id": r.id,
            "name": self.data.name,
            "description": self.data.description,
            "currency": r.currency,
            "amount": r.amount,
            "BOLT11Expiration": self.data.bolt11_expiration_days.to_string(),
            "autoApproveClaims": r.auto_approve,
            "archived": r.archived,
            "startsAt": r.starts_at / 1_000,
            "expiresAt": r.expires_at.map(|at| at / 1_000),
            "payoutMethods": self.data.payout_methods,
            "viewLink": format!("{base}/api/v1/pull-payments/{}", r.id),
        })
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.data.name
    }
}

/// A payout as Greenfield shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct PayoutView {
    /// As stored.
    pub record: MerchantPayoutRecord,
    data: PayoutData,
}

impl PayoutView {
    fn of(record: MerchantPayoutRecord) -> Result<PayoutView, MerchantError> {
        let data = serde_json::from_str(&record.data).map_err(|e| decode(format!("payout data: {e}")))?;
        Ok(PayoutView { record, data })
    }

    /// Greenfield's `PayoutData`.
    pub fn to_json(&self) -> Value {
        let r = &self.record;
        let approved = !matches!(
            r.state,
            MerchantPayoutState::AwaitingApproval | MerchantPayoutState::Cancelled
        );
        let proof = r
            .proof
            .as_deref()
            .and_then(|p| serde_json::from_str::<Value>(p).ok())
            .unwrap_or(Value::Null);
        json!({
            "id": r.id,
            "revision": r.revision,
            "pullPaymentId": r.pull_payment_id,
            "date": r.created_at / 1_000,
            "destination": r.destination,
            "originalCurrency": self.data.original_currency,
            "originalAmount": self.data.original_amount,
            "payoutCurrency": "BTC",
            "payoutAmount": approved.then(|| btc(r.amount_sat)),
            "payoutMethodId": r.method,
            "state": r.state.as_str(),
            "paymentProof": proof,
            "metadata": self.data.metadata,
            "lastError": r.last_error,
        })
    }
}

/// A claim: where, how much (in the pull payment's currency; all that is left when absent and
/// the destination names no amount), on which method.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claim {
    /// The destination as given.
    pub destination: String,
    /// The amount as given, a decimal.
    pub amount: Option<String>,
    /// `BTC-CHAIN` or `BTC-LN` (BTCPay's older names are accepted).
    pub payout_method: Option<String>,
}

impl Claim {
    /// Reads Greenfield's `CreatePayoutRequest`.
    pub fn parse(body: &Value) -> Result<Claim, MerchantError> {
        let Some(body) = body.as_object() else {
            return Err(MerchantError::field("", "the body is a JSON object"));
        };
        let mut errors = Vec::new();
        let destination = text_field(body, "destination", MAX_DESTINATION_CHARS, &mut errors);
        let amount = match body.get("amount") {
            None | Some(Value::Null) => None,
            Some(v) => match decimal_field(v) {
                Some(d) => Some(decimal_string(d)),
                None => {
                    errors.push(FieldError::new("amount", "amount is a decimal"));
                    None
                }
            },
        };
        let payout_method = text_field(body, "payoutMethodId", 50, &mut errors);
        if destination.is_none() && errors.is_empty() {
            errors.push(FieldError::new("destination", "destination is required"));
        }
        match destination {
            Some(destination) if errors.is_empty() => Ok(Claim {
                destination,
                amount,
                payout_method,
            }),
            _ => Err(MerchantError::Invalid(errors)),
        }
    }
}

/// A destination checked for a payout: what it pays, how much it asks (if it does), its method.
struct Checked {
    destination: String,
    asked_sat: Option<i64>,
    method: &'static str,
}

/// BTCPay's names of a payout method, as Flash's.
fn payout_method(name: &str) -> Option<&'static str> {
    match name.to_ascii_uppercase().as_str() {
        "BTC-CHAIN" | "BTC" | "BTC-ONCHAIN" => Some(PAYOUT_ONCHAIN),
        "BTC-LN" | "BTC-LIGHTNINGNETWORK" | "BTC_LIGHTNINGLIKE" | "BTC-LIGHTNING" => Some(PAYOUT_LIGHTNING),
        _ => None,
    }
}

fn decode(why: String) -> MerchantError {
    MerchantError::Store(StoreError::Decode(why))
}

/// A payout event's body (`PayoutCreated`, `PayoutApproved`, `PayoutUpdated`).
fn payout_event(p: &MerchantPayoutRecord, kind: &str, state: MerchantPayoutState, now_ms: i64) -> NewMerchantEvent {
    NewMerchantEvent {
        store_id: p.store_id.clone(),
        event_type: kind.to_string(),
        payload: json!({
            "type": kind,
            "timestamp": now_ms / 1_000,
            "storeId": p.store_id,
            "payoutId": p.id,
            "pullPaymentId": p.pull_payment_id,
            "payoutState": state.as_str(),
        })
        .to_string(),
    }
}

/// A Unix-seconds field, as milliseconds.
fn seconds_field(body: &Map<String, Value>, name: &str, errors: &mut Vec<FieldError>) -> Option<i64> {
    match body.get(name) {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_i64().filter(|s| (0..=253_402_300_799).contains(s)) {
            Some(secs) => Some(secs * 1_000),
            None => {
                errors.push(FieldError::new(name, &format!("{name} is a Unix time in seconds")));
                None
            }
        },
    }
}

impl Merchant {
    /// Makes a pull payment of `store_id` and sets its amount aside from the store's wallet
    /// (`btcpay.store.cancreatepullpayments`, or `…cancreatenonapprovedpullpayments` when
    /// claims need approval). A fiat amount is turned into satoshis at today's rate, which
    /// stays the pull payment's rate.
    pub async fn create_pull_payment(
        &self,
        caller: &Caller,
        store_id: &str,
        body: &Value,
    ) -> Result<PullPaymentView, MerchantError> {
        let Some(fields) = body.as_object() else {
            return Err(MerchantError::field("", "the body is a JSON object"));
        };
        let auto_approve = match fields.get("autoApproveClaims") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(MerchantError::field(
                    "autoApproveClaims",
                    "autoApproveClaims is a boolean",
                ))
            }
        };
        let policy = if auto_approve {
            CAN_CREATE_PULL_PAYMENTS
        } else {
            CAN_CREATE_NON_APPROVED_PULL_PAYMENTS
        };
        let store = self.store_for(caller, store_id, policy).await?;
        let now = self.bank.now_ms();
        let mut errors = Vec::new();
        let name = text_field(fields, "name", MAX_NAME_CHARS, &mut errors).unwrap_or_default();
        let description = text_field(fields, "description", MAX_DESCRIPTION_CHARS, &mut errors).unwrap_or_default();
        let currency_code = text_field(fields, "currency", 10, &mut errors).unwrap_or_else(|| "BTC".into());
        let currency = InvoiceCurrency::parse(&currency_code);
        if currency.is_none() {
            errors.push(FieldError::new("currency", "currency is BTC, SATS or an ISO 4217 code"));
        }
        let amount = match fields.get("amount").map(decimal_field) {
            Some(Some(d)) if d.mantissa > 0 => Some(d),
            _ => {
                errors.push(FieldError::new("amount", "amount is a positive decimal"));
                None
            }
        };
        let bolt11_days = match fields.get("BOLT11Expiration") {
            None | Some(Value::Null) => Some(DEFAULT_BOLT11_EXPIRATION_DAYS),
            Some(v) => decimal_field(v)
                .filter(|d| d.scale == 0)
                .and_then(|d| i64::try_from(d.mantissa).ok())
                .filter(|d| (0..=MAX_BOLT11_EXPIRATION_DAYS).contains(d)),
        };
        if bolt11_days.is_none() {
            errors.push(FieldError::new("BOLT11Expiration", "BOLT11Expiration is 0 to 365 days"));
        }
        let starts_at = seconds_field(fields, "startsAt", &mut errors).unwrap_or(now);
        let expires_at = seconds_field(fields, "expiresAt", &mut errors);
        if expires_at.is_some_and(|at| at <= starts_at.max(now)) {
            errors.push(FieldError::new("expiresAt", "expiresAt is after startsAt and now"));
        }
        let offered = self.payout_methods_offered();
        let payout_methods = match fields.get("payoutMethods") {
            None | Some(Value::Null) => offered.iter().map(|m| m.to_string()).collect(),
            Some(Value::Array(items)) => {
                let mut methods: Vec<String> = Vec::new();
                for item in items {
                    match item.as_str().and_then(payout_method) {
                        Some(m) if offered.contains(&m) => {
                            if !methods.iter().any(|have| have == m) {
                                methods.push(m.to_string());
                            }
                        }
                        _ => errors.push(FieldError::new(
                            "payoutMethods",
                            &format!("payout methods offered here: {}", offered.join(", ")),
                        )),
                    }
                }
                if methods.is_empty() && items.is_empty() {
                    errors.push(FieldError::new("payoutMethods", "name at least one payout method"));
                }
                methods
            }
            Some(_) => {
                errors.push(FieldError::new("payoutMethods", "payoutMethods is an array of strings"));
                Vec::new()
            }
        };
        let (Some(currency), Some(amount), Some(bolt11_days), true) =
            (currency, amount, bolt11_days, errors.is_empty())
        else {
            return Err(MerchantError::Invalid(errors));
        };
        let price = match &currency {
            InvoiceCurrency::Fiat(c) => Some(self.price(*c).await?),
            _ => None,
        };
        let budget_sat = priced(amount, &currency, price.as_ref(), "amount")?;
        let data = PullPaymentData {
            name,
            description,
            bolt11_expiration_days: bolt11_days,
            payout_methods,
        };
        let mut record = PullPaymentRecord {
            id: uuid::Uuid::now_v7().simple().to_string(),
            store_id: store.id.clone(),
            source_wallet: store.wallet_id,
            budget_wallet: store.wallet_id,
            currency: currency.code(),
            amount: decimal_string(amount),
            rate: price.as_ref().map(ToString::to_string),
            budget_sat,
            auto_approve,
            starts_at,
            expires_at,
            archived: false,
            returned_sat: 0,
            data: serde_json::to_string(&data).map_err(|e| decode(e.to_string()))?,
            created_at: now,
            updated_at: now,
        };
        let budget = {
            let template = record.clone();
            self.bank
                .budget_open(
                    store.account_id,
                    store.wallet_id,
                    Sats::positive(budget_sat).map_err(|e| MerchantError::field("amount", &e.to_string()))?,
                    &record.id,
                    move |budget| {
                        vec![Record::pull_payment_created(&PullPaymentRecord {
                            budget_wallet: budget,
                            ..template
                        })]
                    },
                )
                .await?
        };
        record.budget_wallet = budget;
        Ok(PullPaymentView { record, data })
    }

    /// A pull payment, for anyone who has its id.
    pub async fn pull_payment(&self, id: &str) -> Result<PullPaymentView, MerchantError> {
        let record = self
            .store
            .pull_payment(id)
            .await?
            .ok_or(MerchantError::PullPaymentNotFound)?;
        PullPaymentView::of(record)
    }

    /// A store's pull payments, newest first (`btcpay.store.canviewpullpayments`).
    pub async fn pull_payments(
        &self,
        caller: &Caller,
        store_id: &str,
        include_archived: bool,
    ) -> Result<Vec<PullPaymentView>, MerchantError> {
        self.store_for(caller, store_id, CAN_VIEW_PULL_PAYMENTS).await?;
        self.store
            .pull_payments_of(store_id, include_archived)
            .await?
            .into_iter()
            .map(PullPaymentView::of)
            .collect()
    }

    /// What is left to claim of a pull payment, satoshis: what its budget holds beyond the
    /// open claims (0 once it is archived or expired).
    pub async fn pull_payment_left(&self, pull_payment: &PullPaymentView) -> Result<i64, MerchantError> {
        let r = &pull_payment.record;
        let now = self.bank.now_ms();
        if r.archived || r.expires_at.is_some_and(|at| at <= now) {
            return Ok(0);
        }
        let held = self.bank.budget_balance(r.budget_wallet).await?;
        let open = self.store.pull_payment_open_claims(&r.id).await?;
        Ok((held - open).max(0))
    }

    /// Archives a pull payment (`btcpay.store.canarchivepullpayments`): its payouts awaiting
    /// approval or payment are cancelled, and what its budget holds goes back to the store.
    pub async fn archive_pull_payment(
        &self,
        caller: &Caller,
        route_store: Option<&str>,
        id: &str,
    ) -> Result<(), MerchantError> {
        let pp = self
            .store
            .pull_payment(id)
            .await?
            .ok_or(MerchantError::PullPaymentNotFound)?;
        self.reach(caller, route_store, &pp.store_id, CAN_ARCHIVE_PULL_PAYMENTS, || {
            MerchantError::PullPaymentNotFound
        })
        .await?;
        for _ in 0..ARCHIVE_ATTEMPTS {
            let now = self.bank.now_ms();
            let open: Vec<MerchantPayoutRecord> = self
                .store
                .merchant_payouts_of_pull_payment(id, false)
                .await?
                .into_iter()
                .filter(|p| {
                    matches!(
                        p.state,
                        MerchantPayoutState::AwaitingApproval | MerchantPayoutState::AwaitingPayment
                    )
                })
                .collect();
            let ids: Vec<&str> = open.iter().map(|p| p.id.as_str()).collect();
            let events: Vec<NewMerchantEvent> = open
                .iter()
                .map(|p| payout_event(p, "PayoutUpdated", MerchantPayoutState::Cancelled, now))
                .collect();
            match self.store.pull_payment_archive(id, &ids, &events).await {
                Ok(()) => {
                    self.outbox.notify_one();
                    self.payout_wake.notify_one();
                    return Ok(());
                }
                Err(StoreError::Refused(_)) => {
                    let again = self.store.pull_payment(id).await?;
                    if again.is_some_and(|p| p.archived) {
                        return Ok(());
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(MerchantError::Bank(flash_bank::BankError::Refused(
            "the pull payment's payouts kept changing: try again",
        )))
    }

    /// Claims a payout from a pull payment (anyone who has its id): refused unless the pull
    /// payment is open and has the amount left beyond its other open claims.
    pub async fn claim_payout(&self, pull_payment_id: &str, claim: &Claim) -> Result<PayoutView, MerchantError> {
        self.claim_with(pull_payment_id, claim, None).await
    }

    /// A pull payment card's withdrawal: claims a payout of `payment_request` (a BOLT11 with
    /// an amount) from the card's pull payment, in one transaction with `tap` (the tap's
    /// spend: the tap is used up and the amount counted toward the card's 24-hour limit).
    /// The invoice need only be unexpired: a claim awaiting approval is paid when the store
    /// approves it, if the invoice is still valid then.
    pub(crate) async fn claim_for_card(
        &self,
        pull_payment_id: &str,
        payment_request: &str,
        tap: Vec<Record>,
    ) -> Result<PayoutView, MerchantError> {
        let claim = Claim {
            destination: payment_request.to_string(),
            amount: None,
            payout_method: Some(PAYOUT_LIGHTNING.into()),
        };
        self.claim_with(pull_payment_id, &claim, Some(tap)).await
    }

    /// What is left to claim of a pull payment by its cards' taps, satoshis: 0 unless it is
    /// open (started, not archived, not expired) and pays over Lightning.
    pub(crate) async fn pull_payment_card_left(&self, pull_payment_id: &str) -> Result<i64, MerchantError> {
        let pp = self.pull_payment(pull_payment_id).await?;
        if pp.record.starts_at > self.bank.now_ms() || !pp.data.payout_methods.iter().any(|m| m == PAYOUT_LIGHTNING) {
            return Ok(0);
        }
        self.pull_payment_left(&pp).await
    }

    /// [`Merchant::claim_payout`], with a card tap's records when `tap` is given (then the
    /// destination's BOLT11 need only be unexpired).
    async fn claim_with(
        &self,
        pull_payment_id: &str,
        claim: &Claim,
        tap: Option<Vec<Record>>,
    ) -> Result<PayoutView, MerchantError> {
        let pp = self.pull_payment(pull_payment_id).await?;
        let now = self.bank.now_ms();
        let r = &pp.record;
        if r.archived {
            return Err(MerchantError::PullPaymentClosed("archived"));
        }
        if r.expires_at.is_some_and(|at| at <= now) {
            return Err(MerchantError::PullPaymentClosed("expired"));
        }
        if r.starts_at > now {
            return Err(MerchantError::PullPaymentClosed("not-started"));
        }
        let checked = self
            .check_destination(
                &claim.destination,
                claim.payout_method.as_deref(),
                r.auto_approve || tap.is_some(),
                pp.data.bolt11_expiration_days,
            )
            .await?;
        if !pp.data.payout_methods.iter().any(|m| m == checked.method) {
            return Err(MerchantError::field(
                "payoutMethodId",
                &format!("this pull payment pays by {}", pp.data.payout_methods.join(", ")),
            ));
        }
        let currency = InvoiceCurrency::parse(&r.currency)
            .ok_or_else(|| decode(format!("pull payment currency {}", r.currency)))?;
        let price = match (&currency, &r.rate) {
            (InvoiceCurrency::Fiat(c), Some(rate)) => Some(
                BtcPrice::from_major_str(*c, rate, r.created_at, "locked")
                    .map_err(|e| decode(format!("pull payment rate: {e}")))?,
            ),
            _ => None,
        };
        let (amount_sat, original_amount) = match claimed_sats(claim, &checked, &currency, price.as_ref())? {
            Some(sats) => (
                sats,
                claim
                    .amount
                    .clone()
                    .unwrap_or_else(|| original_of(sats, &currency, price.as_ref())),
            ),
            None => {
                let left = self.pull_payment_left(&pp).await?;
                if left < 1 {
                    return Err(MerchantError::field("amount", "nothing is left to claim"));
                }
                (left, original_of(left, &currency, price.as_ref()))
            }
        };
        let state = if r.auto_approve {
            MerchantPayoutState::AwaitingPayment
        } else {
            MerchantPayoutState::AwaitingApproval
        };
        let data = PayoutData {
            original_amount,
            original_currency: r.currency.clone(),
            metadata: json!({}),
        };
        let record = new_payout(
            &r.store_id,
            Some(r.id.clone()),
            r.budget_wallet,
            checked,
            amount_sat,
            state,
            &data,
            now,
        )?;
        let mut events = vec![payout_event(&record, "PayoutCreated", state, now)];
        if r.auto_approve {
            events.push(payout_event(&record, "PayoutApproved", state, now));
        }
        match self
            .store
            .merchant_payout_claim(&record, &events, tap.unwrap_or_default())
            .await
        {
            Ok(()) => {}
            Err(StoreError::Refused(why)) => return Err(MerchantError::field("amount", why)),
            Err(e) => return Err(e.into()),
        }
        flash_bank::crash_point("payout.claimed");
        self.outbox.notify_one();
        self.payout_wake.notify_one();
        PayoutView::of(record)
    }

    /// A store's own payout (`POST /stores/{id}/payouts`): a claim on one of its pull payments
    /// when `pullPaymentId` is given, otherwise paid from the store's wallet. `approved`
    /// needs `btcpay.store.cancreatepullpayments`.
    pub async fn create_store_payout(
        &self,
        caller: &Caller,
        store_id: &str,
        body: &Value,
    ) -> Result<PayoutView, MerchantError> {
        let claim = Claim::parse(body)?;
        let fields = body.as_object().cloned().unwrap_or_default();
        let approved = match fields.get("approved") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(MerchantError::field("approved", "approved is a boolean")),
        };
        let metadata = match fields.get("metadata") {
            None | Some(Value::Null) => json!({}),
            Some(Value::Object(m)) if Value::Object(m.clone()).to_string().len() <= MAX_JSON_BYTES => {
                Value::Object(m.clone())
            }
            Some(_) => {
                return Err(MerchantError::field(
                    "metadata",
                    "metadata is a JSON object of at most 16 KiB",
                ))
            }
        };
        let policy = if approved {
            CAN_CREATE_PULL_PAYMENTS
        } else {
            CAN_CREATE_NON_APPROVED_PULL_PAYMENTS
        };
        let store = self.store_for(caller, store_id, policy).await?;
        if let Some(pp) = fields
            .get("pullPaymentId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
        {
            let owner = self.store.pull_payment(pp).await?;
            if owner.is_none_or(|p| p.store_id != store.id) {
                return Err(MerchantError::PullPaymentNotFound);
            }
            let view = self.claim_payout(pp, &claim).await?;
            if approved && view.record.state == MerchantPayoutState::AwaitingApproval {
                return self
                    .approve_payout(caller, Some(store_id), &view.record.id, Some(view.record.revision))
                    .await;
            }
            return Ok(view);
        }
        self.store_payout_from_wallet(&store, &claim, approved, metadata).await
    }

    async fn store_payout_from_wallet(
        &self,
        store: &MerchantStoreRecord,
        claim: &Claim,
        approved: bool,
        metadata: Value,
    ) -> Result<PayoutView, MerchantError> {
        let now = self.bank.now_ms();
        let checked = self
            .check_destination(
                &claim.destination,
                claim.payout_method.as_deref(),
                approved,
                DEFAULT_BOLT11_EXPIRATION_DAYS,
            )
            .await?;
        let amount_sat = claimed_sats(claim, &checked, &InvoiceCurrency::Btc, None)?
            .ok_or_else(|| MerchantError::field("amount", "amount is required for this destination"))?;
        let state = if approved {
            MerchantPayoutState::AwaitingPayment
        } else {
            MerchantPayoutState::AwaitingApproval
        };
        let data = PayoutData {
            original_amount: btc(amount_sat),
            original_currency: "BTC".into(),
            metadata,
        };
        let record = new_payout(&store.id, None, store.wallet_id, checked, amount_sat, state, &data, now)?;
        let mut events = vec![payout_event(&record, "PayoutCreated", state, now)];
        if approved {
            events.push(payout_event(&record, "PayoutApproved", state, now));
        }
        self.store.merchant_payout_claim(&record, &events, Vec::new()).await?;
        self.outbox.notify_one();
        self.payout_wake.notify_one();
        PayoutView::of(record)
    }

    /// An approved payout of `store_id` from `wallet` (a budget) of `amount_sat` over Lightning
    /// to `destination`, checked as a claim's, with the events its creation causes, for the
    /// caller to record; a BOLT11 must ask exactly `amount_sat`.
    pub(crate) async fn approved_payout(
        &self,
        store_id: &str,
        wallet: flash_core::WalletId,
        destination: &str,
        amount_sat: i64,
        metadata: Value,
    ) -> Result<(MerchantPayoutRecord, Vec<NewMerchantEvent>), MerchantError> {
        let now = self.bank.now_ms();
        let checked = self
            .check_destination(destination, Some(PAYOUT_LIGHTNING), true, 0)
            .await?;
        if checked.asked_sat.is_some_and(|asked| asked != amount_sat) {
            return Err(MerchantError::field(
                "destination",
                &format!("the invoice must ask exactly {amount_sat} sats"),
            ));
        }
        let state = MerchantPayoutState::AwaitingPayment;
        let data = PayoutData {
            original_amount: btc(amount_sat),
            original_currency: "BTC".into(),
            metadata,
        };
        let record = new_payout(store_id, None, wallet, checked, amount_sat, state, &data, now)?;
        let events = vec![
            payout_event(&record, "PayoutCreated", state, now),
            payout_event(&record, "PayoutApproved", state, now),
        ];
        Ok((record, events))
    }

    /// A pull payment's payouts (anyone who has its id), oldest first.
    pub async fn pull_payment_payouts(
        &self,
        pull_payment_id: &str,
        include_cancelled: bool,
    ) -> Result<Vec<PayoutView>, MerchantError> {
        self.pull_payment(pull_payment_id).await?;
        self.store
            .merchant_payouts_of_pull_payment(pull_payment_id, include_cancelled)
            .await?
            .into_iter()
            .map(PayoutView::of)
            .collect()
    }

    /// One payout of a pull payment (anyone who has both ids).
    pub async fn pull_payment_payout(
        &self,
        pull_payment_id: &str,
        payout_id: &str,
    ) -> Result<PayoutView, MerchantError> {
        match self.store.merchant_payout(payout_id).await? {
            Some(p) if p.pull_payment_id.as_deref() == Some(pull_payment_id) => PayoutView::of(p),
            _ => Err(MerchantError::PayoutNotFound),
        }
    }

    /// A store's payouts, oldest first (`btcpay.store.canviewpullpayments`).
    pub async fn store_payouts(
        &self,
        caller: &Caller,
        store_id: &str,
        include_cancelled: bool,
    ) -> Result<Vec<PayoutView>, MerchantError> {
        self.store_for(caller, store_id, CAN_VIEW_PULL_PAYMENTS).await?;
        self.store
            .merchant_payouts_of_store(store_id, include_cancelled)
            .await?
            .into_iter()
            .map(PayoutView::of)
            .collect()
    }

    /// One payout of a store the caller manages (`btcpay.store.canmanagepullpayments`).
    pub async fn store_payout(
        &self,
        caller: &Caller,
        route_store: Option<&str>,
        payout_id: &str,
    ) -> Result<PayoutView, MerchantError> {
        PayoutView::of(self.managed_payout(caller, route_store, payout_id).await?)
    }

    /// Approves a payout awaiting approval (at `revision`, when given): it will be paid.
    pub async fn approve_payout(
        &self,
        caller: &Caller,
        route_store: Option<&str>,
        payout_id: &str,
        revision: Option<i64>,
    ) -> Result<PayoutView, MerchantError> {
        let payout = self.managed_payout(caller, route_store, payout_id).await?;
        if payout.state != MerchantPayoutState::AwaitingApproval {
            return Err(MerchantError::PayoutState("the payout is not awaiting approval"));
        }
        let revision = revision.unwrap_or(payout.revision);
        let events = [payout_event(
            &payout,
            "PayoutApproved",
            MerchantPayoutState::AwaitingPayment,
            self.bank.now_ms(),
        )];
        if !self.store.merchant_payout_approve(payout_id, revision, &events).await? {
            return Err(MerchantError::PayoutState(
                "the payout is not awaiting approval at this revision",
            ));
        }
        self.outbox.notify_one();
        self.payout_wake.notify_one();
        self.store_payout(caller, route_store, payout_id).await
    }

    /// Cancels a payout awaiting approval or payment.
    pub async fn cancel_payout(
        &self,
        caller: &Caller,
        route_store: Option<&str>,
        payout_id: &str,
    ) -> Result<(), MerchantError> {
        let payout = self.managed_payout(caller, route_store, payout_id).await?;
        let events = [payout_event(
            &payout,
            "PayoutUpdated",
            MerchantPayoutState::Cancelled,
            self.bank.now_ms(),
        )];
        if !self.store.merchant_payout_cancel(payout_id, &events).await? {
            return Err(MerchantError::PayoutState(
                "only a payout awaiting approval or payment can be cancelled",
            ));
        }
        self.outbox.notify_one();
        Ok(())
    }

    /// Marks a payout awaiting payment as paid outside Flash, with `proof` (a JSON object,
    /// or none): a pull payment's budget gives the amount back to the store.
    pub async fn mark_payout_paid(
        &self,
        caller: &Caller,
        route_store: Option<&str>,
        payout_id: &str,
        proof: Option<&Value>,
    ) -> Result<(), MerchantError> {
        let payout = self.managed_payout(caller, route_store, payout_id).await?;
        if payout.state != MerchantPayoutState::AwaitingPayment {
            return Err(MerchantError::PayoutState(
                "only a payout awaiting payment can be marked paid",
            ));
        }
        let proof = match proof {
            None | Some(Value::Null) => json!({"proofType": "ManualPayoutProof"}),
            Some(Value::Object(m)) if Value::Object(m.clone()).to_string().len() <= MAX_JSON_BYTES => {
                Value::Object(m.clone())
            }
            Some(_) => return Err(MerchantError::field("paymentProof", "paymentProof is a JSON object")),
        }
        .to_string();
        let now = self.bank.now_ms();
        let events = [payout_event(
            &payout,
            "PayoutUpdated",
            MerchantPayoutState::Completed,
            now,
        )];
        let marked = match &payout.pull_payment_id {
            None => self.store.merchant_payout_mark_paid(payout_id, &proof, &events).await?,
            Some(pp) => {
                let pp = self
                    .store
                    .pull_payment(pp)
                    .await?
                    .ok_or(MerchantError::PullPaymentNotFound)?;
                let records = Record::merchant_payout_marked_paid(payout_id, &proof, &events, now);
                let amount = Sats::positive(payout.amount_sat).map_err(flash_bank::BankError::from)?;
                match self
                    .bank
                    .budget_return(
                        pp.budget_wallet,
                        pp.source_wallet,
                        amount,
                        &format!("paid:{payout_id}"),
                        records,
                    )
                    .await
                {
                    Ok(_) => true,
                    Err(flash_bank::BankError::Refused(_)) => false,
                    Err(e) => return Err(e.into()),
                }
            }
        };
        if !marked {
            return Err(MerchantError::PayoutState(
                "only a payout awaiting payment can be marked paid",
            ));
        }
        self.outbox.notify_one();
        Ok(())
    }

    /// A payout of a store the caller holds `btcpay.store.canmanagepullpayments` over.
    async fn managed_payout(
        &self,
        caller: &Caller,
        route_store: Option<&str>,
        payout_id: &str,
    ) -> Result<MerchantPayoutRecord, MerchantError> {
        let payout = self
            .store
            .merchant_payout(payout_id)
            .await?
            .ok_or(MerchantError::PayoutNotFound)?;
        self.reach(caller, route_store, &payout.store_id, CAN_MANAGE_PULL_PAYMENTS, || {
            MerchantError::PayoutNotFound
        })
        .await?;
        Ok(payout)
    }

    /// The payout methods this Flash can pay by.
    fn payout_methods_offered(&self) -> Vec<&'static str> {
        let mut offered = Vec::new();
        if self.bank.onchain_enabled() {
            offered.push(PAYOUT_ONCHAIN);
        }
        offered.push(PAYOUT_LIGHTNING);
        offered
    }

    /// Checks a destination as a payout's: its kind and method, the network of an address
    /// or invoice, a BOLT11's amount and expiry (which must outlast `bolt11_days` days when
    /// the payout waits for approval), that a username exists.
    async fn check_destination(
        &self,
        text: &str,
        method: Option<&str>,
        approved: bool,
        bolt11_days: i64,
    ) -> Result<Checked, MerchantError> {
        let bad = |why: String| MerchantError::field("destination", &why);
        let target = PaymentTarget::parse(text).map_err(|e| bad(e.to_string()))?;
        let (destination, asked_sat, rail) = match &target.destination {
            Destination::OnchainAddress(address) => {
                flash_core::onchain::parse_address(address, self.bank.config().network)
                    .map_err(|e| bad(e.to_string()))?;
                let asked = target
                    .amount
                    .map(|a| i64::try_from(a).map_err(|_| bad("the amount is too large".into())))
                    .transpose()?;
                (address.clone(), asked, PAYOUT_ONCHAIN)
            }
            Destination::Invoice(bolt11) => {
                let invoice = self.bank.decode(bolt11).await.map_err(|e| bad(e.to_string()))?;
                let now_secs = u64::try_from(self.bank.now_ms() / 1_000).unwrap_or(0);
                let expires = invoice.created_at_secs.saturating_add(invoice.expiry_secs);
                if expires <= now_secs {
                    return Err(bad("the invoice has expired".into()));
                }
                let days = u64::try_from(bolt11_days).unwrap_or(0);
                if !approved && expires < now_secs.saturating_add(days.saturating_mul(86_400)) {
                    return Err(bad(format!(
                        "the invoice must stay valid for at least {days} days, as the payout waits for approval"
                    )));
                }
                let msat = invoice
                    .amount_msat
                    .ok_or_else(|| bad("the invoice must have an amount".into()))?;
                let sats = Sats::from_msat_up(msat).map_err(|e| bad(e.to_string()))?.get();
                (bolt11.clone(), Some(sats), PAYOUT_LIGHTNING)
            }
            Destination::Username(name) => {
                self.bank
                    .default_wallet_of(name)
                    .await
                    .map_err(|_| bad(format!("no Flash user is called {name}")))?;
                (format!("@{name}"), None, PAYOUT_LIGHTNING)
            }
            Destination::CashuToken(_) | Destination::LnurlWithdraw(_) | Destination::NostrPubkey(_) => {
                return Err(bad(format!(
                    "{} is not somewhere a payout can be sent",
                    target.destination
                )))
            }
            other => (other.value().to_string(), None, PAYOUT_LIGHTNING),
        };
        if let Some(asked) = method {
            match payout_method(asked) {
                Some(m) if m == rail => {}
                Some(_) => {
                    return Err(MerchantError::field(
                        "payoutMethodId",
                        "the destination is not paid by this method",
                    ))
                }
                None => {
                    return Err(MerchantError::field(
                        "payoutMethodId",
                        "payoutMethodId is BTC-CHAIN or BTC-LN",
                    ))
                }
            }
        }
        Ok(Checked {
            destination,
            asked_sat,
            method: rail,
        })
    }
}

/// The satoshis a claim asks for: its amount in `currency` (which must match what the
/// destination asks, if it does), else the destination's; `None` when neither says.
fn claimed_sats(
    claim: &Claim,
    checked: &Checked,
    currency: &InvoiceCurrency,
    price: Option<&BtcPrice>,
) -> Result<Option<i64>, MerchantError> {
    let Some(given) = &claim.amount else {
        return Ok(checked.asked_sat);
    };
    let d = Decimal::parse(given).map_err(|_| MerchantError::field("amount", "amount is a decimal"))?;
    let sats = priced(d, currency, price, "amount")?;
    if checked.asked_sat.is_some_and(|a| a != sats) {
        return Err(MerchantError::field(
            "amount",
            "the amount differs from what the destination asks for",
        ));
    }
    Ok(Some(sats))
}

/// `amount` of `currency` in satoshis (a fiat amount at `price`), a field error at `path`.
fn priced(
    amount: Decimal,
    currency: &InvoiceCurrency,
    price: Option<&BtcPrice>,
    path: &str,
) -> Result<i64, MerchantError> {
    sats_due(amount, currency, price).map_err(|e| match e {
        PricingError::Invalid(why) => MerchantError::field(path, &why),
        PricingError::NoRate(code) => MerchantError::RateUnavailable(code),
    })
}

/// `sats` in `currency` (a fiat one at `price`), as a payout's original amount.
fn original_of(sats: i64, currency: &InvoiceCurrency, price: Option<&BtcPrice>) -> String {
    match (currency, price) {
        (InvoiceCurrency::Sats, _) => sats.to_string(),
        (InvoiceCurrency::Fiat(c), Some(price)) => price
            .fiat_for_sats(sats)
            .map_or_else(|_| btc(sats), |minor| format_minor(minor, *c)),
        _ => btc(sats),
    }
}

/// A new payout record.
#[allow(clippy::too_many_arguments)]
fn new_payout(
    store_id: &str,
    pull_payment_id: Option<String>,
    wallet_id: flash_core::WalletId,
    checked: Checked,
    amount_sat: i64,
    state: MerchantPayoutState,
    data: &PayoutData,
    now_ms: i64,
) -> Result<MerchantPayoutRecord, MerchantError> {
    Ok(MerchantPayoutRecord {
        id: uuid::Uuid::now_v7().simple().to_string(),
        store_id: store_id.to_string(),
        pull_payment_id,
        wallet_id,
        destination: checked.destination,
        method: checked.method.to_string(),
        amount_sat,
        state,
        revision: 0,
        attempt: 0,
        retry_at: 0,
        last_error: None,
        proof: None,
        data: serde_json::to_string(data).map_err(|e| decode(e.to_string()))?,
        created_at: now_ms,
        updated_at: now_ms,
    })
}

impl Merchant {
    /// A pull payment that pays by LNURL-withdraw (open, auto-approved, Lightning among its
    /// methods), with what is left to claim of it, satoshis.
    pub async fn pull_payment_withdrawable(&self, id: &str) -> Result<(PullPaymentView, i64), MerchantError> {
        let view = self.pull_payment(id).await?;
        if !view.record.auto_approve || !view.data.payout_methods.iter().any(|m| m == PAYOUT_LIGHTNING) {
            return Err(MerchantError::PayoutState(
                "this pull payment's claims need approval or are not paid over Lightning",
            ));
        }
        let left = self.pull_payment_left(&view).await?;
        if left < 1 {
            return Err(MerchantError::PullPaymentClosed("nothing is left to claim"));
        }
        Ok((view, left))
    }

    /// LNURL-withdraw's callback: claims a payout to `payment_request` for its amount.
    pub async fn pull_payment_withdraw(&self, id: &str, payment_request: &str) -> Result<PayoutView, MerchantError> {
        self.pull_payment_withdrawable(id).await?;
        let claim = Claim {
            destination: payment_request.to_string(),
            amount: None,
            payout_method: Some(PAYOUT_LIGHTNING.into()),
        };
        self.claim_payout(id, &claim).await
    }
}

/// What one payout pass did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PayoutPass {
    /// Attempts started.
    pub started: usize,
    /// Payouts completed.
    pub completed: usize,
    /// Attempts that failed (the payout waits for its next one).
    pub failed: usize,
    /// Closed pull payments and ended rewards programs whose budget went back to their store.
    pub returned: usize,
}

impl Merchant {
    /// Drives payouts until `shutdown`: a pass after each wake-up (a claim, an approval) and
    /// at least every `webhook_poll_interval_secs`. Safe on several nodes at once: every step
    /// is conditional and every attempt idempotent.
    pub async fn run_payouts(&self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let interval = std::time::Duration::from_secs(self.config.webhook_poll_interval_secs.max(1));
        loop {
            if let Err(e) = self.run_payout_pass().await {
                tracing::warn!(error = %e, "payout pass failed");
            }
            tokio::select! {
                () = &mut shutdown => return,
                () = self.payout_wake.notified() => {}
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    /// One pass: starts the due attempts of payouts awaiting payment, follows those in
    /// progress, ends rewards programs past their end, and gives closed pull payments' and
    /// ended programs' unowed budget back to their store.
    pub async fn run_payout_pass(&self) -> Result<PayoutPass, MerchantError> {
        let mut pass = PayoutPass::default();
        let now = self.bank.now_ms();
        for payout in self.store.merchant_payouts_to_drive(now, PASS_BATCH).await? {
            if let Err(e) = self.drive_payout(&payout, &mut pass).await {
                tracing::warn!(payout = %payout.id, error = %e, "payout step failed; tried again next pass");
            }
        }
        match self.settle_reward_programs().await {
            Ok(returned) => pass.returned += returned,
            Err(e) => tracing::warn!(error = %e, "rewards pass failed; tried again next pass"),
        }
        for pp in self.store.pull_payments_to_return(now, PASS_BATCH).await? {
            match self.return_budget(&pp).await {
                Ok(true) => pass.returned += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::warn!(pull_payment = %pp.id, error = %e, "budget return failed; tried again next pass")
                }
            }
        }
        if pass != PayoutPass::default() {
            self.outbox.notify_one();
        }
        Ok(pass)
    }

    /// One step of a payout's saga.
    async fn drive_payout(&self, payout: &MerchantPayoutRecord, pass: &mut PayoutPass) -> Result<(), MerchantError> {
        let store = self
            .store
            .merchant_store(&payout.store_id)
            .await?
            .ok_or(MerchantError::StoreNotFound)?;
        let now = self.bank.now_ms();
        let target = PaymentTarget::parse(&payout.destination)
            .map_err(|e| MerchantError::field("destination", &e.to_string()))?;
        let progress = match payout.state {
            MerchantPayoutState::InProgress => {
                let attempt = PayoutAttempt {
                    payout_id: payout.id.clone(),
                    attempt: payout.attempt,
                    events: Vec::new(),
                };
                match self
                    .bank
                    .payout_progress(store.account_id, payout.wallet_id, &attempt, &target.destination)
                    .await?
                {
                    Some(progress) => (attempt.attempt, progress),
                    None => return Ok(()),
                }
            }
            MerchantPayoutState::AwaitingPayment => {
                let attempt = PayoutAttempt {
                    payout_id: payout.id.clone(),
                    attempt: payout.attempt + 1,
                    events: vec![payout_event(
                        payout,
                        "PayoutUpdated",
                        MerchantPayoutState::InProgress,
                        now,
                    )],
                };
                let payment = PayoutPayment {
                    account: store.account_id,
                    wallet: payout.wallet_id,
                    attempt: &attempt,
                    destination: &target.destination,
                    amount: Sats::positive(payout.amount_sat).map_err(flash_bank::BankError::from)?,
                    memo: Some(format!("Payout {} of {}", payout.id, store.name)),
                };
                pass.started += 1;
                match self.bank.payout_pay(payment).await {
                    Ok(progress) => {
                        flash_bank::crash_point("payout.paid");
                        (attempt.attempt, progress)
                    }
                    // Refused, or failed on the way (a crash after the commit leaves the payout
                    // in progress, which `payout_failed` then leaves alone).
                    Err(e) => {
                        pass.failed += 1;
                        return self.payout_failed(&payout.id, &e.to_string()).await;
                    }
                }
            }
            _ => return Ok(()),
        };
        let (attempt, progress) = progress;
        match progress.status {
            TxStatus::Success => {
                let proof = progress.proof.unwrap_or_else(|| json!({})).to_string();
                let events = [payout_event(
                    payout,
                    "PayoutUpdated",
                    MerchantPayoutState::Completed,
                    now,
                )];
                if self
                    .store
                    .merchant_payout_complete(&payout.id, attempt, &proof, &events)
                    .await?
                {
                    pass.completed += 1;
                }
            }
            TxStatus::Failure => {
                pass.failed += 1;
                self.payout_failed(&payout.id, "the payment failed").await?;
            }
            TxStatus::Pending => {}
        }
        Ok(())
    }

    /// Notes a failed attempt on a payout back awaiting payment, and when to try again.
    async fn payout_failed(&self, payout_id: &str, why: &str) -> Result<(), MerchantError> {
        tracing::info!(payout = %payout_id, why, "a payout's attempt did not pay");
        let Some(payout) = self.store.merchant_payout(payout_id).await? else {
            return Ok(());
        };
        if payout.state != MerchantPayoutState::AwaitingPayment {
            return Ok(());
        }
        let wait = flash_store::payout_retry_delay_ms(payout.attempt.max(1));
        let now = self.bank.now_ms();
        let events = [payout_event(
            &payout,
            "PayoutUpdated",
            MerchantPayoutState::AwaitingPayment,
            now,
        )];
        let why: String = why.chars().take(500).collect();
        self.store
            .merchant_payout_failed(payout_id, payout.attempt, &why, now + wait, &events)
            .await?;
        Ok(())
    }

    /// Gives what a closed pull payment's budget holds beyond its open claims back to the
    /// store's wallet; `false` when there was nothing to give or the claims changed meanwhile.
    async fn return_budget(&self, pp: &PullPaymentRecord) -> Result<bool, MerchantError> {
        let held = self.bank.budget_balance(pp.budget_wallet).await?;
        let open = self.store.pull_payment_open_claims(&pp.id).await?;
        let Ok(amount) = Sats::positive(held - open) else {
            return Ok(false);
        };
        let records = Record::pull_payment_returned(&pp.id, amount.get(), self.bank.now_ms());
        let key = format!("closed:{}:{}", pp.id, pp.returned_sat);
        match self
            .bank
            .budget_return(pp.budget_wallet, pp.source_wallet, amount, &key, records)
            .await
        {
            Ok(_) => Ok(true),
            Err(e @ flash_bank::BankError::Store(_)) => Err(e.into()),
            Err(e) => {
                tracing::debug!(pull_payment = %pp.id, error = %e, "budget not returned this pass");
                Ok(false)
            }
        }
    }
}
