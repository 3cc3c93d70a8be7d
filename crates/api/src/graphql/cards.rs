//! Flash Cards (Flash extensions): `cardCreate` makes a card and its one-time programming link
//! for the Bolt Card NFC Programmer app; `cards` lists the caller's; `cardLimitsUpdate`,
//! `cardPinSet`, `cardDisable`, `cardEnable` and `cardWipe` manage one.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use flash_auth::Scope as AuthScope;
use flash_merchant::cards::{BoltcardRecord, CardAction, CardCreate, CardsError};

use super::types::*;
use super::{operator, principal, state};
use crate::error::ApiError;

impl From<CardsError> for ApiError {
    fn from(e: CardsError) -> Self {
        use flash_core::ErrorCode;
        match e {
            CardsError::Bank(b) => b.into(),
            CardsError::Store(s) => flash_bank::BankError::Store(s).into(),
            CardsError::Merchant(m) => m.into(),
            CardsError::NotFound => ApiError::new(ErrorCode::NotFound, e.to_string()),
            e @ (CardsError::Invalid(_) | CardsError::Tap(_)) => ApiError::new(ErrorCode::InvalidInput, e.to_string()),
            e @ (CardsError::Replayed
            | CardsError::NotActive(_)
            | CardsError::AlreadyProgrammed
            | CardsError::WrongPin { .. }) => ApiError::new(ErrorCode::Refused, e.to_string()),
        }
    }
}

/// A Flash Card.
#[derive(SimpleObject)]
pub struct Card {
    /// Its id.
    pub id: ID,
    /// What the owner calls it.
    pub name: String,
    /// The wallet it spends from (a pull payment's card: the pull payment's budget).
    pub wallet_id: WalletId,
    /// The pull payment it spends from, for a card linked to one (`…/pull-payments/{id}/boltcards`).
    pub pull_payment_id: Option<String>,
    /// `programming` (waiting for the app or its first tap), `active`, `disabled` or `wiped`.
    pub state: String,
    /// How many times this physical card was programmed before (its keys change each time).
    pub key_version: i64,
    /// The counter of its last accepted tap.
    pub counter: i64,
    /// Most one tap may spend, sats.
    pub tap_limit: SatAmount,
    /// Most it may spend in any 24 hours, sats.
    pub day_limit: SatAmount,
    /// Withdrawals of this much or more need its PIN, sats (none: it has no PIN).
    pub pin_limit: Option<SatAmount>,
    /// Wrong PINs since the last right one (three disable the card).
    pub pin_failures: i64,
    /// Created.
    pub created_at: Timestamp,
}

impl From<BoltcardRecord> for Card {
    fn from(r: BoltcardRecord) -> Self {
        Card {
            id: ID(r.id),
            name: r.name,
            wallet_id: WalletId(r.wallet_id.to_string()),
            pull_payment_id: r.pull_payment_id,
            state: r.state,
            key_version: r.key_version,
            counter: r.counter,
            tap_limit: SatAmount(r.tap_limit_sat),
            day_limit: SatAmount(r.day_limit_sat),
            pin_limit: r.pin_hash.as_ref().and(r.pin_limit_sat).map(SatAmount),
            pin_failures: r.pin_failures,
            created_at: ts(r.created_at),
        }
    }
}

/// `cardCreate` input.
#[derive(InputObject)]
pub struct CardCreateInput {
    /// What to call it, 1–64 characters.
    pub name: String,
    /// The wallet it spends from (the default wallet when absent).
    pub wallet_id: Option<WalletId>,
    /// Most one tap may spend, sats.
    pub tap_limit: SatAmount,
    /// Most it may spend in any 24 hours, sats (at least the per-tap limit).
    pub day_limit: SatAmount,
}

/// A new card and how to program it, or errors.
#[derive(SimpleObject)]
pub struct CardCreatePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The card.
    pub card: Option<Card>,
    /// The one-time programming URL (valid for an hour; shown once).
    pub program_url: Option<String>,
    /// `boltcard://program?url=…`: opens the Bolt Card NFC Programmer app on it (a QR code of
    /// this is what the app scans).
    pub program_deeplink: Option<String>,
}

/// `cardLimitsUpdate` input.
#[derive(InputObject)]
pub struct CardLimitsUpdateInput {
    /// The card.
    pub id: ID,
    /// Most one tap may spend, sats.
    pub tap_limit: SatAmount,
    /// Most it may spend in any 24 hours, sats.
    pub day_limit: SatAmount,
}

/// `cardPinSet` input.
#[derive(InputObject)]
pub struct CardPinSetInput {
    /// The card.
    pub id: ID,
    /// Its new PIN, 4 to 8 digits; none removes the PIN.
    pub pin: Option<String>,
    /// Withdrawals of this much or more need the PIN, sats (required with a PIN).
    pub pin_limit: Option<SatAmount>,
}

/// Input naming one card.
#[derive(InputObject)]
pub struct CardInput {
    /// The card.
    pub id: ID,
}

/// A card after a change, or errors.
#[derive(SimpleObject)]
pub struct CardPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The card as it is now.
    pub card: Option<Card>,
}

fn card_payload(result: Result<BoltcardRecord, CardsError>) -> CardPayload {
    match result {
        Ok(card) => CardPayload {
            errors: vec![],
            card: Some(card.into()),
        },
        Err(e) => CardPayload {
            errors: vec![ApiError::from(e).into()],
            card: None,
        },
    }
}

/// Card queries.
#[derive(Default)]
pub struct CardsQuery;

#[Object]
impl CardsQuery {
    /// The caller's cards, newest first (scope `read`).
    async fn cards(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Card>> {
        let p = principal(ctx, AuthScope::Read)?;
        let list = state(ctx).cards.list(p.account_id).await;
        list.map(|l| l.into_iter().map(Card::from).collect())
            .map_err(|e| ApiError::from(e).to_graphql())
    }

    /// `boltcard://reset?url=…`: opens the Bolt Card NFC Programmer app to reset a card of
    /// this Flash (a QR code of this is what the app scans); the card's own tap proves it
    /// (scope `read`).
    async fn card_reset_deeplink(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        principal(ctx, AuthScope::Read)?;
        Ok(state(ctx).cards.reset_deeplink())
    }
}

/// Card mutations.
#[derive(Default)]
pub struct CardsMutation;

#[Object]
impl CardsMutation {
    /// Makes a card spending from one of the caller's wallets, and its programming link
    /// (scope `write`).
    async fn card_create(&self, ctx: &Context<'_>, input: CardCreateInput) -> async_graphql::Result<CardCreatePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let result = async {
            let wallet_id = match &input.wallet_id {
                Some(w) => Some(
                    w.0.parse()
                        .map_err(|_| CardsError::Bank(flash_bank::BankError::WalletNotFound))?,
                ),
                None => None,
            };
            let req = CardCreate {
                wallet_id,
                name: input.name,
                tap_limit_sat: input.tap_limit.0,
                day_limit_sat: input.day_limit.0,
            };
            state(ctx).cards.create(p.account_id, req).await
        };
        Ok(match result.await {
            Ok(created) => CardCreatePayload {
                errors: vec![],
                program_deeplink: Some(created.deeplink()),
                program_url: Some(created.program_url),
                card: Some(created.card.into()),
            },
            Err(e) => CardCreatePayload {
                errors: vec![ApiError::from(e).into()],
                card: None,
                program_url: None,
                program_deeplink: None,
            },
        })
    }

    /// Sets a card's limits (scope `write`).
    async fn card_limits_update(
        &self,
        ctx: &Context<'_>,
        input: CardLimitsUpdateInput,
    ) -> async_graphql::Result<CardPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let cards = &state(ctx).cards;
        Ok(card_payload(
            cards
                .set_limits(p.account_id, &input.id.0, input.tap_limit.0, input.day_limit.0)
                .await,
        ))
    }

    /// Sets a card's PIN and the amount from which withdrawals need it, or removes it; wrong
    /// PINs are forgiven (scope `write`).
    async fn card_pin_set(&self, ctx: &Context<'_>, input: CardPinSetInput) -> async_graphql::Result<CardPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let cards = &state(ctx).cards;
        let result = match (input.pin.as_deref(), input.pin_limit) {
            (Some(pin), Some(limit)) => cards.set_pin(p.account_id, &input.id.0, Some((pin, limit.0))).await,
            (Some(_), None) => Err(CardsError::Invalid(
                "a PIN needs a pinLimit: the amount from which it is asked".into(),
            )),
            (None, _) => cards.set_pin(p.account_id, &input.id.0, None).await,
        };
        Ok(card_payload(result))
    }

    /// Stops a card paying until it is enabled again (scope `write`).
    async fn card_disable(&self, ctx: &Context<'_>, input: CardInput) -> async_graphql::Result<CardPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let cards = &state(ctx).cards;
        Ok(card_payload(
            cards.act(p.account_id, &input.id.0, CardAction::Disable).await,
        ))
    }

    /// Lets a disabled card pay again (scope `write`).
    async fn card_enable(&self, ctx: &Context<'_>, input: CardInput) -> async_graphql::Result<CardPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let cards = &state(ctx).cards;
        Ok(card_payload(
            cards.act(p.account_id, &input.id.0, CardAction::Enable).await,
        ))
    }

    /// Retires a card for good; the physical card may then be reset with the app and
    /// programmed again, with new keys (scope `write`).
    async fn card_wipe(&self, ctx: &Context<'_>, input: CardInput) -> async_graphql::Result<CardPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let cards = &state(ctx).cards;
        Ok(card_payload(
            cards.act(p.account_id, &input.id.0, CardAction::Wipe).await,
        ))
    }
}

/// What an operator moves a card to.
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum CardStateChange {
    /// Paying again (a programmed card).
    Active,
    /// Not paying until enabled again.
    Disabled,
    /// Retired for good.
    Wiped,
}

/// `cardUpdateState` input (operator).
#[derive(InputObject)]
pub struct CardUpdateStateInput {
    /// The card.
    pub id: ID,
    /// Its new state.
    pub state: CardStateChange,
    /// Why (kept in the audit log).
    pub comment: Option<String>,
}

/// Operator card queries.
#[derive(Default)]
pub struct CardsAdminQuery;

#[Object]
impl CardsAdminQuery {
    /// An account's cards, newest first.
    async fn cards_by_account(&self, ctx: &Context<'_>, account_id: ID) -> async_graphql::Result<Vec<Card>> {
        operator(ctx)?;
        let account = account_id
            .0
            .parse()
            .map_err(|_| ApiError::from(flash_bank::BankError::AccountNotFound).to_graphql())?;
        let list = state(ctx).cards.list(account).await;
        list.map(|l| l.into_iter().map(Card::from).collect())
            .map_err(|e| ApiError::from(e).to_graphql())
    }
}

/// Operator card mutations.
#[derive(Default)]
pub struct CardsAdminMutation;

#[Object]
impl CardsAdminMutation {
    /// Enables, disables or wipes any card (audited).
    async fn card_update_state(
        &self,
        ctx: &Context<'_>,
        input: CardUpdateStateInput,
    ) -> async_graphql::Result<CardPayload> {
        let actor = operator(ctx)?;
        let action = match input.state {
            CardStateChange::Active => CardAction::Enable,
            CardStateChange::Disabled => CardAction::Disable,
            CardStateChange::Wiped => CardAction::Wipe,
        };
        let comment = input.comment.unwrap_or_default();
        let cards = &state(ctx).cards;
        Ok(card_payload(
            cards.operator_act(actor, &input.id.0, action, &comment).await,
        ))
    }
}
