//! Rewards (Flash extensions): a store's owner makes a program with `rewardProgramCreate`
//! (its budget set aside from the store's wallet), follows it with `rewardPrograms`, and ends it
//! with `rewardProgramEnd`. Points of sale ask for a purchase's reward over REST
//! (docs/rewards.md). A user names who invited them with `accountReferrerSet`; the operator runs
//! referral programs (`rewardReferralProgramCreate`, `rewardReferralPrograms`,
//! `rewardReferralProgramEnd`).

use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use flash_auth::Scope as AuthScope;
use flash_merchant::rewards::{ProgramInput, ReferralInput, RewardProgramView};
use flash_merchant::{Caller, MerchantError};

use super::types::*;
use super::{operator, principal, state};
use crate::error::ApiError;

/// A rewards program.
#[derive(SimpleObject)]
pub struct RewardProgram {
    /// Its id.
    pub id: ID,
    /// The store whose purchases it rewards.
    pub store_id: Option<ID>,
    /// Its name, shown in customers' histories.
    pub name: String,
    /// `ACTIVE` or `ENDED`.
    pub status: String,
    /// Its budget, sats.
    pub budget: SatAmount,
    /// Granted so far (paid, or owed as claim links and payouts), sats.
    pub granted: SatAmount,
    /// Left to grant, sats.
    pub left: SatAmount,
    /// What its budget wallet holds now, sats.
    pub held: SatAmount,
    /// What went back to the store's wallet, sats.
    pub returned: SatAmount,
    /// Grants made.
    pub grants: i64,
    /// Cashback rate, basis points (250 = 2.5 %).
    pub rate_basis_points: Option<i64>,
    /// A fixed reward per purchase, sats.
    pub fixed: Option<SatAmount>,
    /// Only purchases paid with a Flash Card.
    pub card_only: bool,
    /// The smallest purchase rewarded, sats.
    pub min_purchase: SatAmount,
    /// The smallest reward, sats.
    pub min_reward: SatAmount,
    /// The largest reward, sats.
    pub max_reward: Option<SatAmount>,
    /// The most one customer gets, sats.
    pub customer_cap: Option<SatAmount>,
    /// The least time between one customer's rewards, seconds.
    pub cooldown_seconds: Option<i64>,
    /// How long a claim link may be claimed, days.
    pub claim_days: i64,
    /// A referral program's level the invitee must reach.
    pub referral_level: Option<i64>,
    /// A referral program's reward to the inviter, sats (its `fixed` is the invitee's).
    pub inviter_reward: Option<SatAmount>,
    /// When it starts.
    pub starts_at: Timestamp,
    /// When it ends, if it has an end time.
    pub ends_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
}

impl From<RewardProgramView> for RewardProgram {
    fn from(v: RewardProgramView) -> Self {
        let left = v.left_sat();
        let r = v.record;
        RewardProgram {
            id: ID(r.id),
            store_id: r.store_id.map(ID),
            name: r.name,
            status: if r.ended { "ENDED" } else { "ACTIVE" }.into(),
            budget: SatAmount(r.budget_sat),
            granted: SatAmount(r.granted_sat),
            left: SatAmount(left),
            held: SatAmount(v.held_sat),
            returned: SatAmount(r.returned_sat),
            grants: v.grants,
            rate_basis_points: r.rate_bps,
            fixed: r.fixed_sat.map(SatAmount),
            card_only: r.card_only,
            min_purchase: SatAmount(r.min_purchase_sat),
            min_reward: SatAmount(r.min_reward_sat),
            max_reward: r.max_reward_sat.map(SatAmount),
            customer_cap: r.customer_cap_sat.map(SatAmount),
            cooldown_seconds: r.cooldown_ms.map(|ms| ms / 1_000),
            claim_days: r.claim_ms / 86_400_000,
            referral_level: r.referral_level,
            inviter_reward: r.inviter_sat.map(SatAmount),
            starts_at: ts(r.starts_at),
            ends_at: r.ends_at.map(ts),
            created_at: ts(r.created_at),
        }
    }
}

/// `rewardProgramCreate` input.
#[derive(InputObject)]
pub struct RewardProgramCreateInput {
    /// The store whose purchases it rewards (one of the caller's).
    pub store_id: ID,
    /// Its name, 1–100 characters.
    pub name: String,
    /// Its budget, sats, set aside from the store's wallet now.
    pub budget: SatAmount,
    /// Cashback rate, basis points (250 = 2.5 %); or give `fixed`.
    pub rate_basis_points: Option<i64>,
    /// A fixed reward per purchase, sats; or give `rateBasisPoints`.
    pub fixed: Option<SatAmount>,
    /// Only purchases paid with a Flash Card (a reward per card tap).
    pub card_only: Option<bool>,
    /// The smallest purchase rewarded, sats.
    pub min_purchase: Option<SatAmount>,
    /// The smallest reward, sats (a smaller cashback is raised to it; default 1).
    pub min_reward: Option<SatAmount>,
    /// The largest reward, sats.
    pub max_reward: Option<SatAmount>,
    /// The most one customer gets, sats (event mode).
    pub customer_cap: Option<SatAmount>,
    /// The least time between one customer's rewards, seconds (event mode).
    pub cooldown_seconds: Option<i64>,
    /// How long a claim link may be claimed, days (default 30).
    pub claim_days: Option<i64>,
    /// When it starts (default now).
    pub starts_at: Option<Timestamp>,
    /// When it ends.
    pub ends_at: Option<Timestamp>,
}

/// `rewardProgramEnd` input.
#[derive(InputObject)]
pub struct RewardProgramEndInput {
    /// The program.
    pub id: ID,
}

/// A program, or errors.
#[derive(SimpleObject)]
pub struct RewardProgramPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The program.
    pub program: Option<RewardProgram>,
}

impl From<Result<RewardProgramView, MerchantError>> for RewardProgramPayload {
    fn from(r: Result<RewardProgramView, MerchantError>) -> Self {
        match r {
            Ok(view) => RewardProgramPayload {
                errors: vec![],
                program: Some(view.into()),
            },
            Err(e) => RewardProgramPayload {
                errors: vec![ApiError::from(e).into()],
                program: None,
            },
        }
    }
}

/// `accountReferrerSet` input.
#[derive(InputObject)]
pub struct AccountReferrerSetInput {
    /// The username of the Flash user who invited the caller.
    pub username: String,
}

/// Whether the inviter was recorded, or errors.
#[derive(SimpleObject)]
pub struct AccountReferrerSetPayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// True once recorded.
    pub success: bool,
}

/// `rewardReferralProgramCreate` input.
#[derive(InputObject)]
pub struct RewardReferralProgramCreateInput {
    /// Its name, 1–100 characters.
    pub name: String,
    /// The account that funds it.
    pub account_id: ID,
    /// Its wallet the budget comes from (default: its BTC wallet).
    pub wallet_id: Option<WalletId>,
    /// Its budget, sats.
    pub budget: SatAmount,
    /// The level an invitee must reach (`TWO` or `THREE`).
    pub level: AccountLevel,
    /// The invitee's reward, sats.
    pub invitee_reward: SatAmount,
    /// The inviter's reward, sats (0: none).
    pub inviter_reward: SatAmount,
    /// When it ends.
    pub ends_at: Option<Timestamp>,
}

/// Rewards queries.
#[derive(Default)]
pub struct RewardsQuery;

#[Object]
impl RewardsQuery {
    /// A store's rewards programs, newest first (scope `read`).
    async fn reward_programs(&self, ctx: &Context<'_>, store_id: ID) -> async_graphql::Result<Vec<RewardProgram>> {
        let p = principal(ctx, AuthScope::Read)?;
        let programs = state(ctx)
            .merchant
            .reward_programs(&Caller::owner(p.account_id), &store_id.0)
            .await;
        programs
            .map(|l| l.into_iter().map(RewardProgram::from).collect())
            .map_err(|e| ApiError::from(e).to_graphql())
    }

    /// One rewards program of the caller's stores (scope `read`).
    async fn reward_program(&self, ctx: &Context<'_>, id: ID) -> async_graphql::Result<RewardProgram> {
        let p = principal(ctx, AuthScope::Read)?;
        let program = state(ctx)
            .merchant
            .reward_program(&Caller::owner(p.account_id), &id.0)
            .await;
        program
            .map(RewardProgram::from)
            .map_err(|e| ApiError::from(e).to_graphql())
    }
}

/// Rewards mutations.
#[derive(Default)]
pub struct RewardsMutation;

#[Object]
impl RewardsMutation {
    /// Names the Flash user who invited the caller: once, and only before the caller's account
    /// reaches level two (scope `write`).
    async fn account_referrer_set(
        &self,
        ctx: &Context<'_>,
        input: AccountReferrerSetInput,
    ) -> async_graphql::Result<AccountReferrerSetPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        Ok(
            match state(ctx)
                .merchant
                .set_referrer(p.account_id, input.username.trim())
                .await
            {
                Ok(()) => AccountReferrerSetPayload {
                    errors: vec![],
                    success: true,
                },
                Err(e) => AccountReferrerSetPayload {
                    errors: vec![ApiError::from(e).into()],
                    success: false,
                },
            },
        )
    }

    /// Makes a rewards program for one of the caller's stores and sets its budget aside from
    /// the store's wallet (scope `write`).
    async fn reward_program_create(
        &self,
        ctx: &Context<'_>,
        input: RewardProgramCreateInput,
    ) -> async_graphql::Result<RewardProgramPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let program = ProgramInput {
            name: input.name,
            budget_sat: input.budget.0,
            rate_bps: input.rate_basis_points,
            fixed_sat: input.fixed.map(|s| s.0),
            card_only: input.card_only.unwrap_or(false),
            min_purchase_sat: input.min_purchase.map(|s| s.0),
            min_reward_sat: input.min_reward.map(|s| s.0),
            max_reward_sat: input.max_reward.map(|s| s.0),
            customer_cap_sat: input.customer_cap.map(|s| s.0),
            cooldown_secs: input.cooldown_seconds,
            claim_days: input.claim_days,
            starts_at_ms: input.starts_at.map(|t| t.0 * 1_000),
            ends_at_ms: input.ends_at.map(|t| t.0 * 1_000),
        };
        Ok(state(ctx)
            .merchant
            .create_reward_program(&Caller::owner(p.account_id), &input.store_id.0, &program)
            .await
            .into())
    }

    /// Ends one of the caller's rewards programs now; what it does not owe goes back to the
    /// store's wallet (scope `write`).
    async fn reward_program_end(
        &self,
        ctx: &Context<'_>,
        input: RewardProgramEndInput,
    ) -> async_graphql::Result<RewardProgramPayload> {
        let p = principal(ctx, AuthScope::Write)?;
        Ok(state(ctx)
            .merchant
            .end_reward_program(&Caller::owner(p.account_id), &input.id.0)
            .await
            .into())
    }
}

/// Operator rewards queries.
#[derive(Default)]
pub struct RewardsAdminQuery;

#[Object]
impl RewardsAdminQuery {
    /// The referral programs, newest first.
    async fn reward_referral_programs(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<RewardProgram>> {
        operator(ctx)?;
        let programs = state(ctx).merchant.referral_programs().await;
        programs
            .map(|l| l.into_iter().map(RewardProgram::from).collect())
            .map_err(|e| ApiError::from(e).to_graphql())
    }
}

/// Operator rewards mutations.
#[derive(Default)]
pub struct RewardsAdminMutation;

#[Object]
impl RewardsAdminMutation {
    /// Makes a referral program funded from an account's wallet: an invitee who names their
    /// inviter after it starts and reaches `level` gets `inviteeReward`, the inviter
    /// `inviterReward`, once each.
    async fn reward_referral_program_create(
        &self,
        ctx: &Context<'_>,
        input: RewardReferralProgramCreateInput,
    ) -> async_graphql::Result<RewardProgramPayload> {
        let actor = operator(ctx)?;
        let (Ok(account), Ok(wallet)) = (
            input.account_id.0.parse(),
            input.wallet_id.map(|w| w.0.parse()).transpose(),
        ) else {
            return Ok(Err(MerchantError::field("accountId", "no such account or wallet")).into());
        };
        let referral = ReferralInput {
            name: input.name,
            account,
            wallet,
            budget_sat: input.budget.0,
            level: flash_core::AccountLevel::from(input.level).number(),
            invitee_sat: input.invitee_reward.0,
            inviter_sat: input.inviter_reward.0,
            ends_at_ms: input.ends_at.map(|t| t.0 * 1_000),
        };
        let made = state(ctx).merchant.create_referral_program(&referral).await;
        if let Ok(view) = &made {
            tracing::info!(operator = actor, program = %view.record.id, "referral program made");
        }
        Ok(made.into())
    }

    /// Ends a referral program now; what it does not owe goes back to its account.
    async fn reward_referral_program_end(
        &self,
        ctx: &Context<'_>,
        input: RewardProgramEndInput,
    ) -> async_graphql::Result<RewardProgramPayload> {
        let actor = operator(ctx)?;
        tracing::info!(operator = actor, program = %input.id.0, "referral program ended");
        Ok(state(ctx).merchant.end_referral_program(&input.id.0).await.into())
    }
}
