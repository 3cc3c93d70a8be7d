//! Rewards: programs that give customers satoshis for their purchases at a store, from a budget
//! the store's owner set aside on the ledger.
//!
//! - A **program** is funded from the store's wallet into a budget wallet by one journal
//!   ([`Bank::budget_open`](flash_bank::Bank::budget_open)). It gives cashback (a rate of the
//!   purchase, at least a minimum and at most a maximum, for purchases of at least a minimum) or
//!   a fixed reward, optionally only for purchases paid with a Flash Card; in event mode it has
//!   an end time, a cap per customer and a cooldown between one customer's rewards.
//! - A **grant** is one purchase's reward: paid into the customer's wallet (a Flash user or a
//!   Flash Card that paid inside the ledger, or a Flash username given by the point of sale), as
//!   a payout to a Lightning address, or owed as a claim link (LNURL-withdraw) printed on the
//!   receipt. One per program and invoice, however often it is asked for; the grant's update of
//!   the program is what keeps the program within its budget, so the budget is granted exactly
//!   and never a satoshi more (the last grant gets what is left).
//! - The program ends when it is granted out (webhook `RewardProgramEnded`; at 80 % it sends
//!   `RewardProgramBudgetLow`), at its end time, or by its owner; what its budget holds beyond the
//!   claim links and payouts it owes goes back to the store's wallet.

use flash_bank::BankError;
use flash_core::ledger::LedgerError;
use flash_core::secrets::random_token;
use flash_core::{AccountId, Currency, Sats, WalletId};
use flash_store::{
    GrantEvents, MerchantInvoiceRecord, NewMerchantEvent, Record, RewardGrantRecord, RewardProgramRecord, StoreError,
    WalletRecord, REWARD_CUSTOMER_LIMITED, REWARD_PROGRAM_SHORT,
};
use serde_json::{json, Value};

use crate::invoice_data::LIGHTNING;
use crate::permissions::{CAN_MODIFY_INVOICES, CAN_MODIFY_STORE_SETTINGS, CAN_VIEW_STORE_SETTINGS};
use crate::{Caller, FieldError, Merchant, MerchantError};

/// Longest program name.
const NAME_MAX_CHARS: usize = 100;
/// Most programs of one store that run at once.
const RUNNING_MAX: usize = 20;
/// How long a claim link may be claimed unless the program says otherwise, days.
const CLAIM_DAYS_DEFAULT: i64 = 30;
/// Longest a claim link may be claimed, days.
const CLAIM_DAYS_MAX: i64 = 365;
/// The largest budget or amount, satoshis (21 million BTC).
const SATS_MAX: i64 = 2_100_000_000_000_000;
/// Characters of a claim link's id.
const CLAIM_ID_LEN: usize = 32;
/// Grants retried after another grant took the money first.
const GRANT_ATTEMPTS: usize = 64;
/// Ended programs (and due ones) looked at per pass.
const PASS_BATCH: i64 = 50;

/// What a new program is.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ProgramInput {
    /// Its name, shown to customers in their history.
    pub name: String,
    /// Its budget, satoshis, set aside from the store's wallet now.
    pub budget_sat: i64,
    /// Cashback: basis points of the purchase (250 = 2.5 %). Exactly one of this and
    /// `fixed_sat`.
    pub rate_bps: Option<i64>,
    /// A fixed reward per purchase, satoshis.
    pub fixed_sat: Option<i64>,
    /// Only purchases paid with a Flash Card.
    pub card_only: bool,
    /// The smallest purchase rewarded, satoshis (default 0).
    pub min_purchase_sat: Option<i64>,
    /// The smallest reward, satoshis (default 1): a smaller cashback is raised to it.
    pub min_reward_sat: Option<i64>,
    /// The largest reward, satoshis.
    pub max_reward_sat: Option<i64>,
    /// The most one customer gets from the program, satoshis.
    pub customer_cap_sat: Option<i64>,
    /// The least time between two rewards of one customer, seconds.
    pub cooldown_secs: Option<i64>,
    /// How long a claim link may be claimed, days (default 30).
    pub claim_days: Option<i64>,
    /// When it starts, Unix ms (default now).
    pub starts_at_ms: Option<i64>,
    /// When it ends, Unix ms.
    pub ends_at_ms: Option<i64>,
}

/// What a new referral program is (the operator's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReferralInput {
    /// Its name, shown in the invitee's and inviter's histories.
    pub name: String,
    /// The account that funds it.
    pub account: AccountId,
    /// The wallet it is funded from (default: the account's BTC wallet).
    pub wallet: Option<WalletId>,
    /// Its budget, satoshis.
    pub budget_sat: i64,
    /// The level (2 or 3) an invitee's account must reach.
    pub level: i64,
    /// The invitee's reward, satoshis.
    pub invitee_sat: i64,
    /// The inviter's reward, satoshis (0: none).
    pub inviter_sat: i64,
    /// When it ends, Unix ms.
    pub ends_at_ms: Option<i64>,
}

/// An account may name its inviter only below this level; referral programs reward reaching
/// it or the next, so nobody is paid for a level they had before they were invited.
pub const REFERRAL_BEFORE_LEVEL: i64 = 2;

/// A program as its owner sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RewardProgramView {
    /// As stored.
    pub record: RewardProgramRecord,
    /// Grants made.
    pub grants: i64,
    /// What its budget wallet holds now (granted and not yet paid out included), satoshis.
    pub held_sat: i64,
}

impl RewardProgramView {
    /// What is left to grant, satoshis (0 once it has ended).
    pub fn left_sat(&self) -> i64 {
        if self.record.ended {
            0
        } else {
            self.record.budget_sat - self.record.granted_sat
        }
    }

    /// As the REST routes show it (times in Unix seconds).
    pub fn to_json(&self) -> Value {
        let r = &self.record;
        json!({
            "id": r.id,
            "storeId": r.store_id,
            "name": r.name,
            "status": if r.ended { "Ended" } else { "Active" },
            "budgetSats": r.budget_sat,
            "grantedSats": r.granted_sat,
            "leftSats": self.left_sat(),
            "heldSats": self.held_sat,
            "returnedSats": r.returned_sat,
            "grants": self.grants,
            "rateBasisPoints": r.rate_bps,
            "fixedSats": r.fixed_sat,
            "cardOnly": r.card_only,
            "minPurchaseSats": r.min_purchase_sat,
            "minRewardSats": r.min_reward_sat,
            "maxRewardSats": r.max_reward_sat,
            "customerCapSats": r.customer_cap_sat,
            "cooldownSeconds": r.cooldown_ms.map(|ms| ms / 1_000),
            "claimDays": r.claim_ms / 86_400_000,
            "startsAt": r.starts_at / 1_000,
            "endsAt": r.ends_at.map(|at| at / 1_000),
            "createdAt": r.created_at / 1_000,
        })
    }
}

impl ProgramInput {
    /// Reads the REST body (`name`, `budgetSats`, `rateBasisPoints` or `fixedSats`, `cardOnly`,
    /// `minPurchaseSats`, `minRewardSats`, `maxRewardSats`, `customerCapSats`,
    /// `cooldownSeconds`, `claimDays`, `startsAt` and `endsAt` in Unix seconds); the values are
    /// checked when the program is made.
    pub fn parse(body: &Value) -> Result<ProgramInput, MerchantError> {
        let Some(fields) = body.as_object() else {
            return Err(MerchantError::field("", "the body is a JSON object"));
        };
        let mut errors = Vec::new();
        let mut int = |name: &str| match fields.get(name) {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_i64() {
                Some(n) => Some(n),
                None => {
                    errors.push(FieldError::new(name, &format!("{name} is an integer")));
                    None
                }
            },
        };
        let budget_sat = int("budgetSats");
        let mut input = ProgramInput {
            name: String::new(),
            budget_sat: budget_sat.unwrap_or(0),
            rate_bps: int("rateBasisPoints"),
            fixed_sat: int("fixedSats"),
            card_only: false,
            min_purchase_sat: int("minPurchaseSats"),
            min_reward_sat: int("minRewardSats"),
            max_reward_sat: int("maxRewardSats"),
            customer_cap_sat: int("customerCapSats"),
            cooldown_secs: int("cooldownSeconds"),
            claim_days: int("claimDays"),
            starts_at_ms: int("startsAt").map(|s| s.saturating_mul(1_000)),
            ends_at_ms: int("endsAt").map(|s| s.saturating_mul(1_000)),
        };
        match fields.get("name") {
            Some(Value::String(name)) => input.name = name.clone(),
            _ => errors.push(FieldError::new("name", "name is a string")),
        }
        match fields.get("cardOnly") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(b)) => input.card_only = *b,
            Some(_) => errors.push(FieldError::new("cardOnly", "cardOnly is a boolean")),
        }
        if budget_sat.is_none() && !errors.iter().any(|e| e.path == "budgetSats") {
            errors.push(FieldError::new("budgetSats", "budgetSats is required"));
        }
        if errors.is_empty() {
            Ok(input)
        } else {
            Err(MerchantError::Invalid(errors))
        }
    }
}

/// Who gets a purchase's reward, as the point of sale names them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Customer {
    /// Whoever paid inside the ledger, or a claim link when the payer is not known.
    Payer,
    /// A Flash user, by username (paid into their default wallet).
    Username(String),
    /// A Lightning address (paid as a payout of the store from the program's budget).
    LightningAddress(String),
}

/// One grant, as the point of sale or the customer sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantView {
    /// As stored.
    pub record: RewardGrantRecord,
    /// The program's name.
    pub program_name: String,
}

/// The path of a claim link's LNURL-withdraw on this server.
pub fn claim_path(claim_id: &str) -> String {
    format!("/rewards/claim/{claim_id}")
}

impl GrantView {
    /// As the REST routes show it, with a claim link's LNURL on this server (`base`).
    pub fn to_json(&self, base: &str) -> Value {
        let r = &self.record;
        let paid_to = match (&r.wallet_id, &r.claim_id) {
            (Some(_), _) => "Wallet",
            (None, Some(_)) => "ClaimLink",
            (None, None) => "Payout",
        };
        let claim = r.claim_id.as_ref().map(|id| {
            let url = format!("{base}{}", claim_path(id));
            let uri = match url.split_once("://") {
                Some((_, rest)) => format!("lnurlw://{rest}"),
                None => url.clone(),
            };
            json!({ "url": url, "lnurlUri": uri, "expiresAt": r.expires_at.map(|at| at / 1_000) })
        });
        json!({
            "id": r.id,
            "programId": r.program_id,
            "programName": self.program_name,
            "invoiceId": r.purchase,
            "amountSats": r.amount_sat,
            "customer": r.customer,
            "paidTo": paid_to,
            "payoutId": r.payout_id,
            "claimLink": claim,
            "createdAt": r.created_at / 1_000,
        })
    }
}

/// Who a grant goes to, resolved.
struct Payee {
    /// `account:<id>`, `card:<id>` or `address:<address>`; `None` for a claim link.
    customer: Option<String>,
    /// How it is paid.
    pay: Pay,
}

enum Pay {
    /// Into this wallet, by the grant's journal.
    Wallet(WalletId),
    /// As an approved payout to this Lightning address.
    Address(String),
    /// As a claim link.
    Claim,
}

/// The events a program's grants may cause, for its store.
fn grant_events(p: &RewardProgramRecord, now_ms: i64) -> GrantEvents {
    let Some(store) = &p.store_id else {
        return GrantEvents::default();
    };
    let event = |kind: &str| NewMerchantEvent {
        store_id: store.clone(),
        event_type: kind.to_string(),
        payload: json!({
            "type": kind,
            "timestamp": now_ms / 1_000,
            "storeId": store,
            "programId": p.id,
            "name": p.name,
            "budgetSats": p.budget_sat,
        })
        .to_string(),
    };
    GrantEvents {
        budget_low: Some(event("RewardProgramBudgetLow")),
        ended: Some(event("RewardProgramEnded")),
    }
}

/// The reward program `p` gives for a purchase of `purchase_sat`, before its budget is counted;
/// `None` when the purchase is too small.
pub fn reward_for(p: &RewardProgramRecord, purchase_sat: i64) -> Option<i64> {
    if purchase_sat < p.min_purchase_sat.max(1) {
        return None;
    }
    let base = match (p.rate_bps, p.fixed_sat) {
        (Some(bps), _) => i64::try_from(i128::from(purchase_sat) * i128::from(bps) / 10_000).unwrap_or(i64::MAX),
        (None, Some(fixed)) => fixed,
        (None, None) => return None,
    };
    let reward = base.max(p.min_reward_sat);
    Some(p.max_reward_sat.map_or(reward, |max| reward.min(max)))
}

/// A program's name, trimmed: 1 to [`NAME_MAX_CHARS`] printable characters.
fn name_field<'a>(name: &'a str, errors: &mut Vec<FieldError>) -> &'a str {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX_CHARS || name.chars().any(char::is_control) {
        errors.push(FieldError::new("name", "name is 1 to 100 printable characters"));
    }
    name
}

/// A positive amount field, at most [`SATS_MAX`].
fn sats_field(name: &str, value: Option<i64>, errors: &mut Vec<FieldError>) {
    if value.is_some_and(|v| !(1..=SATS_MAX).contains(&v)) {
        errors.push(FieldError::new(name, &format!("{name} is 1 to {SATS_MAX} satoshis")));
    }
}

impl Merchant {
    /// Makes a rewards program for `store_id` and sets its budget aside from the store's wallet
    /// (`btcpay.store.canmodifystoresettings`).
    pub async fn create_reward_program(
        &self,
        caller: &Caller,
        store_id: &str,
        input: &ProgramInput,
    ) -> Result<RewardProgramView, MerchantError> {
        let store = self.store_for(caller, store_id, CAN_MODIFY_STORE_SETTINGS).await?;
        let now = self.bank.now_ms();
        let mut errors = Vec::new();
        let name = name_field(&input.name, &mut errors);
        sats_field("budget", Some(input.budget_sat), &mut errors);
        match (input.rate_bps, input.fixed_sat) {
            (Some(bps), None) if (1..=10_000).contains(&bps) => {}
            (Some(_), None) => errors.push(FieldError::new("rate", "rate is 1 to 10000 basis points")),
            (None, Some(fixed)) => sats_field("fixed", Some(fixed), &mut errors),
            _ => errors.push(FieldError::new("rate", "give either a rate or a fixed reward")),
        }
        if input.min_purchase_sat.is_some_and(|v| !(0..=SATS_MAX).contains(&v)) {
            errors.push(FieldError::new(
                "minPurchase",
                "minPurchase is 0 to 21 million BTC in satoshis",
            ));
        }
        sats_field("minReward", input.min_reward_sat, &mut errors);
        sats_field("maxReward", input.max_reward_sat, &mut errors);
        sats_field("customerCap", input.customer_cap_sat, &mut errors);
        if let (Some(min), Some(max)) = (input.min_reward_sat, input.max_reward_sat) {
            if min > max {
                errors.push(FieldError::new("minReward", "minReward is at most maxReward"));
            }
        }
        let cooldown_ms = match input.cooldown_secs {
            None => None,
            Some(secs) if (1..=366 * 86_400).contains(&secs) => Some(secs * 1_000),
            Some(_) => {
                errors.push(FieldError::new("cooldown", "cooldown is 1 second to 366 days"));
                None
            }
        };
        let claim_days = input.claim_days.unwrap_or(CLAIM_DAYS_DEFAULT);
        if !(1..=CLAIM_DAYS_MAX).contains(&claim_days) {
            errors.push(FieldError::new("claimDays", "claimDays is 1 to 365"));
        }
        let starts_at = input.starts_at_ms.unwrap_or(now);
        if starts_at < 0 {
            errors.push(FieldError::new("startsAt", "startsAt is a Unix time"));
        }
        if input.ends_at_ms.is_some_and(|end| end <= starts_at.max(now)) {
            errors.push(FieldError::new("endsAt", "endsAt is after startsAt and now"));
        }
        if !errors.is_empty() {
            return Err(MerchantError::Invalid(errors));
        }
        let running = self.store.reward_programs_running(Some(&store.id), now).await?;
        if running.len() >= RUNNING_MAX {
            return Err(MerchantError::RewardClosed("a store runs at most 20 programs at once"));
        }
        let record = RewardProgramRecord {
            id: uuid::Uuid::now_v7().simple().to_string(),
            account_id: store.account_id,
            store_id: Some(store.id.clone()),
            name: name.to_string(),
            source_wallet: store.wallet_id,
            budget_wallet: store.wallet_id,
            budget_sat: input.budget_sat,
            granted_sat: 0,
            rate_bps: input.rate_bps,
            fixed_sat: input.fixed_sat,
            card_only: input.card_only,
            min_purchase_sat: input.min_purchase_sat.unwrap_or(0),
            min_reward_sat: input.min_reward_sat.unwrap_or(1),
            max_reward_sat: input.max_reward_sat,
            customer_cap_sat: input.customer_cap_sat,
            cooldown_ms,
            referral_level: None,
            inviter_sat: None,
            claim_ms: claim_days * 86_400_000,
            starts_at,
            ends_at: input.ends_at_ms,
            ended: false,
            returned_sat: 0,
            created_at: now,
            updated_at: now,
        };
        self.open_program(record).await
    }

    /// A store's programs, newest first (`btcpay.store.canviewstoresettings`).
    pub async fn reward_programs(
        &self,
        caller: &Caller,
        store_id: &str,
    ) -> Result<Vec<RewardProgramView>, MerchantError> {
        self.store_for(caller, store_id, CAN_VIEW_STORE_SETTINGS).await?;
        let mut views = Vec::new();
        for record in self.store.reward_programs_of_store(store_id).await? {
            views.push(self.program_view(record).await?);
        }
        Ok(views)
    }

    /// A program of a store the caller may see (`btcpay.store.canviewstoresettings`).
    pub async fn reward_program(&self, caller: &Caller, id: &str) -> Result<RewardProgramView, MerchantError> {
        let record = self.own_program(caller, id, CAN_VIEW_STORE_SETTINGS).await?;
        self.program_view(record).await
    }

    /// A program's latest grants, newest first (`btcpay.store.canviewstoresettings`).
    pub async fn reward_grants(
        &self,
        caller: &Caller,
        id: &str,
        limit: i64,
    ) -> Result<Vec<RewardGrantRecord>, MerchantError> {
        let record = self.own_program(caller, id, CAN_VIEW_STORE_SETTINGS).await?;
        Ok(self.store.reward_grants_of(&record.id, limit.clamp(1, 1_000)).await?)
    }

    /// Ends a program now (`btcpay.store.canmodifystoresettings`); what it does not owe goes
    /// back to the store's wallet on the next payout pass.
    pub async fn end_reward_program(&self, caller: &Caller, id: &str) -> Result<RewardProgramView, MerchantError> {
        let record = self.own_program(caller, id, CAN_MODIFY_STORE_SETTINGS).await?;
        let now = self.bank.now_ms();
        let event = grant_events(&record, now).ended;
        if !self.store.reward_program_end(&record.id, event.as_ref(), now).await? {
            return Err(MerchantError::RewardClosed("the program has ended already"));
        }
        self.outbox.notify_one();
        self.payout_wake.notify_one();
        let record = self
            .store
            .reward_program(id)
            .await?
            .ok_or(MerchantError::RewardProgramNotFound)?;
        self.program_view(record).await
    }

    /// Rewards a settled invoice's purchase as the point of sale asks
    /// (`btcpay.store.canmodifyinvoices`): `customer` names who gets it; [`Customer::Payer`] is
    /// whoever paid it inside the ledger, or else a claim link. One grant per program and
    /// invoice: asked again, it answers the grants made.
    pub async fn reward_purchase(
        &self,
        caller: &Caller,
        store_id: Option<&str>,
        invoice_id: &str,
        customer: &Customer,
    ) -> Result<Vec<GrantView>, MerchantError> {
        let invoice = self
            .own_invoice(caller, store_id, invoice_id, CAN_MODIFY_INVOICES)
            .await?;
        // Asked right after the payment, the invoice may not have seen it yet.
        let invoice = self.refresh_record(invoice).await?;
        if invoice.status != "Settled" {
            return Err(MerchantError::RewardClosed("only a settled invoice is rewarded"));
        }
        let payee = match customer {
            Customer::Payer => match self.ledger_payer(&invoice).await? {
                Some(payee) => payee,
                None => Payee {
                    customer: None,
                    pay: Pay::Claim,
                },
            },
            Customer::Username(name) => {
                let unknown = || MerchantError::field("customer", &format!("no Flash user is called {name}"));
                let wallet = self.bank.default_wallet_of(name).await.map_err(|_| unknown())?;
                self.wallet_payee(wallet).await?.ok_or_else(unknown)?
            }
            Customer::LightningAddress(address) => {
                let address = address.trim().to_ascii_lowercase();
                Payee {
                    customer: Some(format!("address:{address}")),
                    pay: Pay::Address(address),
                }
            }
        };
        let running = self
            .store
            .reward_programs_running(Some(&invoice.store_id), self.bank.now_ms())
            .await?;
        self.reward(&invoice, running, &payee, false).await
    }

    /// Rewards a settled invoice paid inside the ledger (by a Flash user, or by the Flash Card
    /// `card_id` at the checkout page): every running program of its store that applies gives
    /// its reward into the paying wallet. Nothing for an invoice paid from outside Flash (the
    /// point of sale then asks with [`Merchant::reward_purchase`]).
    pub async fn reward_paid_invoice(
        &self,
        invoice_id: &str,
        card_id: Option<&str>,
    ) -> Result<Vec<GrantView>, MerchantError> {
        let invoice = self
            .store
            .merchant_invoice(invoice_id)
            .await?
            .ok_or(MerchantError::InvoiceNotFound)?;
        if invoice.status != "Settled" {
            return Ok(Vec::new());
        }
        // Most stores run no program: nothing more to read for their invoices.
        let running = self
            .store
            .reward_programs_running(Some(&invoice.store_id), self.bank.now_ms())
            .await?;
        if running.is_empty() {
            return Ok(Vec::new());
        }
        let Some(mut payee) = self.ledger_payer(&invoice).await? else {
            return Ok(Vec::new());
        };
        if let Some(card) = card_id {
            payee.customer = Some(format!("card:{card}"));
        }
        self.reward(&invoice, running, &payee, card_id.is_some()).await
    }

    /// The wallet that paid an invoice's BOLT11 inside the ledger, as a payee.
    async fn ledger_payer(&self, invoice: &MerchantInvoiceRecord) -> Result<Option<Payee>, MerchantError> {
        for method in self.store.merchant_invoice_methods(&invoice.id).await? {
            if method.method != LIGHTNING {
                continue;
            }
            if let Some(wallet) = self.bank.ln_invoice_payer(&method.lookup_key).await? {
                return self.wallet_payee(wallet).await;
            }
        }
        Ok(None)
    }

    /// The owner of `wallet` as a payee, paid into that wallet, or into the account's BTC
    /// wallet when it is not one (rewards are in satoshis); `None` without a BTC wallet.
    async fn wallet_payee(&self, wallet: WalletRecord) -> Result<Option<Payee>, MerchantError> {
        let btc = if wallet.currency == Currency::Btc {
            Some(wallet.id)
        } else {
            self.bank
                .wallets(wallet.account_id)
                .await?
                .into_iter()
                .find(|w| w.wallet.currency == Currency::Btc)
                .map(|w| w.wallet.id)
        };
        Ok(btc.map(|id| Payee {
            customer: Some(format!("account:{}", wallet.account_id)),
            pay: Pay::Wallet(id),
        }))
    }

    /// Gives `invoice`'s reward of every running program of its store that applies to `payee`;
    /// the purchase's grants, made now or before (by programs that may have ended since).
    async fn reward(
        &self,
        invoice: &MerchantInvoiceRecord,
        running: Vec<RewardProgramRecord>,
        payee: &Payee,
        by_card: bool,
    ) -> Result<Vec<GrantView>, MerchantError> {
        let purchase = invoice
            .due_sat
            .map_or(invoice.paid_sat, |due| due.min(invoice.paid_sat));
        let made = self
            .store
            .reward_grants_of_purchase(&invoice.store_id, &invoice.id)
            .await?;
        let mut grants = Vec::new();
        for record in made.iter().cloned() {
            let program_name = match running.iter().find(|p| p.id == record.program_id) {
                Some(p) => p.name.clone(),
                None => match self.store.reward_program(&record.program_id).await? {
                    Some(p) => p.name,
                    None => continue,
                },
            };
            grants.push(GrantView { record, program_name });
        }
        let mut granted = false;
        for program in running {
            // A program rewards purchases made while it ran.
            if made.iter().any(|g| g.program_id == program.id)
                || invoice.created_at < program.starts_at
                || (program.card_only && !by_card)
            {
                continue;
            }
            let Some(reward) = reward_for(&program, purchase) else {
                continue;
            };
            if let Some(grant) = self.grant(program, &invoice.id, payee, reward).await? {
                granted = true;
                grants.push(grant);
            }
        }
        grants.sort_by(|a, b| (a.record.created_at, &a.record.id).cmp(&(b.record.created_at, &b.record.id)));
        if granted {
            self.outbox.notify_one();
            self.payout_wake.notify_one();
        }
        Ok(grants)
    }

    /// Grants `want` (or what is left, if less) of `program` for `purchase` to `payee`; the grant
    /// already made for it, if any; `None` when the program is granted out or the customer
    /// reached its cap or is within its cooldown.
    async fn grant(
        &self,
        mut program: RewardProgramRecord,
        purchase: &str,
        payee: &Payee,
        want: i64,
    ) -> Result<Option<GrantView>, MerchantError> {
        let view = |record: RewardGrantRecord, program: &RewardProgramRecord| GrantView {
            record,
            program_name: program.name.clone(),
        };
        for _ in 0..GRANT_ATTEMPTS {
            if let Some(done) = self.store.reward_grant(&program.id, purchase).await? {
                return Ok(Some(view(done, &program)));
            }
            let left = program.budget_sat - program.granted_sat;
            if program.ended || left < 1 {
                return Ok(None);
            }
            let now = self.bank.now_ms();
            let mut grant = RewardGrantRecord {
                id: uuid::Uuid::now_v7().simple().to_string(),
                program_id: program.id.clone(),
                purchase: purchase.to_string(),
                customer: payee.customer.clone(),
                amount_sat: want.min(left),
                wallet_id: None,
                claim_id: None,
                expires_at: None,
                payout_id: None,
                created_at: now,
            };
            let events = grant_events(&program, now);
            let granted = match &payee.pay {
                Pay::Wallet(wallet) => {
                    grant.wallet_id = Some(*wallet);
                    let records = Record::reward_granted(&grant, &program, &events);
                    let amount = Sats::positive(grant.amount_sat).map_err(BankError::from)?;
                    let key = format!("{}:{}", program.id, purchase);
                    let memo = format!("Reward: {}", program.name);
                    self.bank
                        .budget_reward(program.budget_wallet, *wallet, amount, &key, memo, records)
                        .await
                        .map(|_| ())
                        .map_err(MerchantError::from)
                }
                Pay::Address(address) => {
                    let store = program.store_id.as_deref().ok_or(MerchantError::RewardClosed(
                        "only a store's program pays Lightning addresses",
                    ))?;
                    let (payout, payout_events) = self
                        .approved_payout(
                            store,
                            program.budget_wallet,
                            address,
                            grant.amount_sat,
                            json!({"rewardProgramId": program.id, "invoiceId": purchase}),
                        )
                        .await?;
                    grant.payout_id = Some(payout.id.clone());
                    self.store
                        .reward_grant_owed(&grant, &program, &events, Some((&payout, &payout_events)))
                        .await
                        .map_err(MerchantError::from)
                }
                Pay::Claim => {
                    grant.claim_id = Some(random_token("", CLAIM_ID_LEN));
                    grant.expires_at = Some(now + program.claim_ms);
                    self.store
                        .reward_grant_owed(&grant, &program, &events, None)
                        .await
                        .map_err(MerchantError::from)
                }
            };
            match granted {
                // As stored: a journal replayed for a concurrent twin wrote no row of its own.
                Ok(()) => {
                    let stored = self.store.reward_grant(&program.id, purchase).await?;
                    return Ok(Some(view(stored.unwrap_or(grant), &program)));
                }
                Err(e) if refused_as(&e, REWARD_CUSTOMER_LIMITED) => return Ok(None),
                // Another grant took what was left first (the program's guard, or the budget
                // wallet's balance when that grant's journal came first), or this purchase's
                // grant was made meanwhile: read again and decide again.
                Err(e) if refused_as(&e, REWARD_PROGRAM_SHORT) || is_short(&e) || is_duplicate(&e) => {
                    program = self
                        .store
                        .reward_program(&program.id)
                        .await?
                        .ok_or(MerchantError::RewardProgramNotFound)?;
                }
                Err(e) => return Err(e),
            }
        }
        Err(MerchantError::RewardClosed("the program is too busy: ask again"))
    }

    /// A claim link's grant and its program's name, while it may be claimed.
    pub async fn reward_claimable(&self, claim_id: &str) -> Result<GrantView, MerchantError> {
        let grant = self
            .store
            .reward_grant_by_claim(claim_id)
            .await?
            .ok_or(MerchantError::RewardNotFound)?;
        if grant.payout_id.is_some() {
            return Err(MerchantError::RewardClosed("this reward was claimed already"));
        }
        if grant.expires_at.is_none_or(|at| at <= self.bank.now_ms()) {
            return Err(MerchantError::RewardClosed("this reward's claim link has expired"));
        }
        let program = self
            .store
            .reward_program(&grant.program_id)
            .await?
            .ok_or(MerchantError::RewardNotFound)?;
        Ok(GrantView {
            record: grant,
            program_name: program.name,
        })
    }

    /// Claims a claim link to `payment_request` (a BOLT11 for exactly the reward): it becomes an
    /// approved payout of the store from the program's budget, paid by the payout saga. Once.
    pub async fn reward_claim(&self, claim_id: &str, payment_request: &str) -> Result<(), MerchantError> {
        let grant = self.reward_claimable(claim_id).await?.record;
        let program = self
            .store
            .reward_program(&grant.program_id)
            .await?
            .ok_or(MerchantError::RewardNotFound)?;
        let store_id = program.store_id.as_deref().ok_or(MerchantError::RewardNotFound)?;
        let (payout, events) = self
            .approved_payout(
                store_id,
                program.budget_wallet,
                payment_request,
                grant.amount_sat,
                json!({"rewardProgramId": program.id, "invoiceId": grant.purchase}),
            )
            .await?;
        match self.store.reward_claim(claim_id, &payout, &events).await {
            Ok(()) => {}
            Err(StoreError::Refused(why)) => return Err(MerchantError::RewardClosed(why)),
            Err(e) => return Err(e.into()),
        }
        self.outbox.notify_one();
        self.payout_wake.notify_one();
        Ok(())
    }

    /// Makes a referral program (the operator's): its budget set aside from `input.account`'s
    /// wallet; an invitee who named their inviter after it started and reaches `input.level`
    /// gets `invitee_sat`, and their inviter `inviter_sat`, once each.
    pub async fn create_referral_program(&self, input: &ReferralInput) -> Result<RewardProgramView, MerchantError> {
        let now = self.bank.now_ms();
        let mut errors = Vec::new();
        let name = name_field(&input.name, &mut errors);
        sats_field("budget", Some(input.budget_sat), &mut errors);
        sats_field("inviteeReward", Some(input.invitee_sat), &mut errors);
        if !(0..=SATS_MAX).contains(&input.inviter_sat) {
            errors.push(FieldError::new(
                "inviterReward",
                "inviterReward is 0 to 21 million BTC in satoshis",
            ));
        }
        if !(REFERRAL_BEFORE_LEVEL..=3).contains(&input.level) {
            errors.push(FieldError::new("level", "level is 2 or 3"));
        }
        if input.ends_at_ms.is_some_and(|end| end <= now) {
            errors.push(FieldError::new("endsAt", "endsAt is after now"));
        }
        if !errors.is_empty() {
            return Err(MerchantError::Invalid(errors));
        }
        let wallets = self.bank.wallets(input.account).await?;
        let wallet = wallets
            .iter()
            .map(|w| &w.wallet)
            .find(|w| w.currency == Currency::Btc && input.wallet.is_none_or(|id| id == w.id))
            .ok_or_else(|| MerchantError::field("walletId", "the account has no such BTC wallet"))?;
        let record = RewardProgramRecord {
            id: uuid::Uuid::now_v7().simple().to_string(),
            account_id: input.account,
            store_id: None,
            name: name.to_string(),
            source_wallet: wallet.id,
            budget_wallet: wallet.id,
            budget_sat: input.budget_sat,
            granted_sat: 0,
            rate_bps: None,
            fixed_sat: Some(input.invitee_sat),
            card_only: false,
            min_purchase_sat: 0,
            min_reward_sat: 1,
            max_reward_sat: None,
            customer_cap_sat: None,
            cooldown_ms: None,
            referral_level: Some(input.level),
            inviter_sat: Some(input.inviter_sat),
            claim_ms: CLAIM_DAYS_DEFAULT * 86_400_000,
            starts_at: now,
            ends_at: input.ends_at_ms,
            ended: false,
            returned_sat: 0,
            created_at: now,
            updated_at: now,
        };
        self.open_program(record).await
    }

    /// The referral programs, newest first.
    pub async fn referral_programs(&self) -> Result<Vec<RewardProgramView>, MerchantError> {
        let mut views = Vec::new();
        for record in self.store.reward_referral_programs().await? {
            views.push(self.program_view(record).await?);
        }
        Ok(views)
    }

    /// Ends a referral program now (the operator's); the rest goes back on the next pass.
    pub async fn end_referral_program(&self, id: &str) -> Result<RewardProgramView, MerchantError> {
        let record = self
            .store
            .reward_program(id)
            .await?
            .filter(|p| p.store_id.is_none())
            .ok_or(MerchantError::RewardProgramNotFound)?;
        if !self
            .store
            .reward_program_end(&record.id, None, self.bank.now_ms())
            .await?
        {
            return Err(MerchantError::RewardClosed("the program has ended already"));
        }
        self.payout_wake.notify_one();
        let record = self
            .store
            .reward_program(id)
            .await?
            .ok_or(MerchantError::RewardProgramNotFound)?;
        self.program_view(record).await
    }

    /// Names `account`'s inviter, the Flash user `inviter`: once, and only while the account is
    /// below level [`REFERRAL_BEFORE_LEVEL`].
    pub async fn set_referrer(&self, account: AccountId, inviter: &str) -> Result<(), MerchantError> {
        let unknown = || MerchantError::field("username", &format!("no Flash user is called {inviter}"));
        let inviter = self
            .bank
            .default_wallet_of(inviter)
            .await
            .map_err(|_| unknown())?
            .account_id;
        if inviter == account {
            return Err(MerchantError::field("username", "an account cannot invite itself"));
        }
        if !self
            .store
            .set_referred_by(account, inviter, REFERRAL_BEFORE_LEVEL)
            .await?
        {
            return Err(MerchantError::RewardClosed(
                "the inviter was named already, or the account is past the level where it may be",
            ));
        }
        Ok(())
    }

    /// Rewards the invitees (and their inviters) that running referral programs still owe.
    async fn reward_referrals(&self, now: i64) -> Result<(), MerchantError> {
        for program in self.store.reward_programs_running(None, now).await? {
            let (Some(level), Some(invitee_sat)) = (program.referral_level, program.fixed_sat) else {
                continue;
            };
            let inviter_sat = program.inviter_sat.unwrap_or(0);
            let last = if inviter_sat > 0 { "inviter:" } else { "referral:" };
            let due = self
                .store
                .referrals_due(&program.id, level, program.starts_at, last, PASS_BATCH)
                .await?;
            for (invitee, inviter) in due {
                let rewards = [(invitee, "referral:", invitee_sat), (inviter, "inviter:", inviter_sat)];
                for (account, prefix, amount) in rewards {
                    if amount < 1 {
                        continue;
                    }
                    let Some(payee) = self.account_payee(account).await? else {
                        continue;
                    };
                    let purchase = format!("{prefix}{invitee}");
                    if self.grant(program.clone(), &purchase, &payee, amount).await?.is_none() {
                        // Granted out: the program has ended.
                        return Ok(());
                    }
                }
            }
        }
        Ok(())
    }

    /// An account as a payee, paid into its BTC wallet.
    async fn account_payee(&self, account: AccountId) -> Result<Option<Payee>, MerchantError> {
        let btc = self
            .bank
            .wallets(account)
            .await?
            .into_iter()
            .find(|w| w.wallet.currency == Currency::Btc);
        Ok(btc.map(|w| Payee {
            customer: Some(format!("account:{account}")),
            pay: Pay::Wallet(w.wallet.id),
        }))
    }

    /// Sets a new program's budget aside (one journal that inserts it).
    async fn open_program(&self, record: RewardProgramRecord) -> Result<RewardProgramView, MerchantError> {
        let template = record.clone();
        let budget = Sats::positive(record.budget_sat).map_err(|e| MerchantError::field("budget", &e.to_string()))?;
        let budget_wallet = self
            .bank
            .budget_open(
                record.account_id,
                record.source_wallet,
                budget,
                &record.id,
                move |budget_wallet| {
                    vec![Record::reward_program_created(&RewardProgramRecord {
                        budget_wallet,
                        ..template
                    })]
                },
            )
            .await?;
        Ok(RewardProgramView {
            held_sat: record.budget_sat,
            record: RewardProgramRecord {
                budget_wallet,
                ..record
            },
            grants: 0,
        })
    }

    /// Rewards the referrals due, ends the programs whose end time passed and gives ended
    /// programs' budget beyond what they owe back to their source wallet; how many budgets
    /// went back.
    pub(crate) async fn settle_reward_programs(&self) -> Result<usize, MerchantError> {
        let now = self.bank.now_ms();
        self.reward_referrals(now).await?;
        for due in self.store.reward_programs_due(now, PASS_BATCH).await? {
            let event = grant_events(&due, now).ended;
            self.store.reward_program_end(&due.id, event.as_ref(), now).await?;
        }
        let mut returned = 0;
        for program in self.store.reward_programs_to_return(now, PASS_BATCH).await? {
            let held = self.bank.budget_balance(program.budget_wallet).await?;
            let owed = self.store.reward_program_owed(&program, now).await?;
            let Ok(amount) = Sats::positive(held - owed) else {
                continue;
            };
            let records = vec![Record::reward_program_returned(&program, amount.get(), now)];
            let key = format!("reward:{}:{}", program.id, program.returned_sat);
            match self
                .bank
                .budget_return(program.budget_wallet, program.source_wallet, amount, &key, records)
                .await
            {
                Ok(_) => returned += 1,
                Err(e @ BankError::Store(_)) => return Err(e.into()),
                Err(e) => tracing::debug!(program = %program.id, error = %e, "budget not returned this pass"),
            }
        }
        Ok(returned)
    }

    async fn own_program(
        &self,
        caller: &Caller,
        id: &str,
        policy: &'static str,
    ) -> Result<RewardProgramRecord, MerchantError> {
        let record = self
            .store
            .reward_program(id)
            .await?
            .ok_or(MerchantError::RewardProgramNotFound)?;
        let store = record.store_id.as_deref().ok_or(MerchantError::RewardProgramNotFound)?;
        match self.store_for(caller, store, policy).await {
            Ok(_) => Ok(record),
            Err(MerchantError::Forbidden(_)) if caller.permissions.allows(policy, Some(store)) => {
                Err(MerchantError::RewardProgramNotFound)
            }
            Err(e) => Err(e),
        }
    }

    async fn program_view(&self, record: RewardProgramRecord) -> Result<RewardProgramView, MerchantError> {
        let grants = self.store.reward_grant_count(&record.id).await?;
        let held_sat = self.bank.budget_balance(record.budget_wallet).await?;
        Ok(RewardProgramView {
            record,
            grants,
            held_sat,
        })
    }
}

/// Whether `e` is the store's refusal `why`.
fn refused_as(e: &MerchantError, why: &str) -> bool {
    match e {
        MerchantError::Store(StoreError::Refused(reason)) | MerchantError::Bank(BankError::Refused(reason)) => {
            *reason == why
        }
        _ => false,
    }
}

/// Whether `e` is the budget wallet's balance refusing a grant.
fn is_short(e: &MerchantError) -> bool {
    matches!(
        e,
        MerchantError::Bank(BankError::Ledger(LedgerError::InsufficientBalance { .. }))
    )
}

/// Whether `e` says the purchase's grant exists (its row, or its journal's key).
fn is_duplicate(e: &MerchantError) -> bool {
    match e {
        MerchantError::Store(s) | MerchantError::Bank(BankError::Store(s)) => s.is_unique_violation(),
        MerchantError::Bank(BankError::Ledger(LedgerError::IdempotencyKeyReused)) => true,
        _ => false,
    }
}
