//! Merchant stores and Greenfield API keys (Flash extensions): the owner makes a store with
//! `merchantStoreCreate` and a key for its integration with `merchantApiKeyCreate` (BTCPay's
//! permission strings, shown once), lists them, and revokes keys. The stores are then served
//! under `/api/v1/…` (docs/merchant.md).

use async_graphql::{Context, InputObject, Object, SimpleObject, ID};
use flash_auth::Scope as AuthScope;
use flash_core::ErrorCode;
use flash_merchant::stores::StoreView;
use flash_merchant::{Caller, MerchantError, MerchantKeyRecord};
use serde_json::json;

use super::types::*;
use super::{principal, state};
use crate::error::ApiError;

impl From<MerchantError> for ApiError {
    fn from(e: MerchantError) -> Self {
        match e {
            MerchantError::Bank(b) => b.into(),
            MerchantError::Store(s) => flash_bank::BankError::Store(s).into(),
            MerchantError::Invalid(_) => ApiError::new(ErrorCode::InvalidInput, e.to_string()),
            MerchantError::StoreNotFound
            | MerchantError::InvoiceNotFound
            | MerchantError::AppNotFound
            | MerchantError::WebhookNotFound
            | MerchantError::DeliveryNotFound
            | MerchantError::PaymentRequestNotFound
            | MerchantError::LightningAddressNotFound
            | MerchantError::PullPaymentNotFound
            | MerchantError::PayoutNotFound
            | MerchantError::RewardProgramNotFound
            | MerchantError::RewardNotFound => ApiError::new(ErrorCode::NotFound, e.to_string()),
            MerchantError::KeyNotFound => ApiError::new(ErrorCode::ApiKeyNotFound, e.to_string()),
            MerchantError::RateUnavailable(_)
            | MerchantError::PaymentRequestClosed(_)
            | MerchantError::PullPaymentClosed(_)
            | MerchantError::CardInUse
            | MerchantError::PayoutState(_)
            | MerchantError::RewardClosed(_) => ApiError::new(ErrorCode::Refused, e.to_string()),
            MerchantError::Forbidden(_) => ApiError::new(ErrorCode::ForbiddenScope, e.to_string()),
        }
    }
}

/// A merchant store.
#[derive(SimpleObject)]
pub struct MerchantStore {
    /// Its id (the Greenfield `storeId`).
    pub id: ID,
    /// Its name.
    pub name: String,
    /// The currency its invoices are priced in by default.
    pub default_currency: String,
    /// Whether it is archived.
    pub archived: bool,
}

impl From<StoreView> for MerchantStore {
    fn from(s: StoreView) -> Self {
        MerchantStore {
            id: ID(s.id),
            name: s.name,
            default_currency: s.default_currency,
            archived: s.archived,
        }
    }
}

/// A Greenfield API key (its secret is shown only when made).
#[derive(SimpleObject)]
pub struct MerchantApiKey {
    /// Its id (to revoke it).
    pub id: ID,
    /// What it is for.
    pub label: String,
    /// BTCPay permission strings.
    pub permissions: Vec<String>,
    /// Created.
    pub created_at: Timestamp,
}

impl From<MerchantKeyRecord> for MerchantApiKey {
    fn from(k: MerchantKeyRecord) -> Self {
        MerchantApiKey {
            id: ID(k.id),
            label: k.label,
            permissions: k.permissions,
            created_at: ts(k.created_at),
        }
    }
}

/// `merchantStoreCreate` input.
#[derive(InputObject)]
pub struct MerchantStoreCreateInput {
    /// Its name, 1–50 characters.
    pub name: String,
    /// Its default currency (`USD` when absent).
    pub default_currency: Option<String>,
}

/// A new store, or errors.
#[derive(SimpleObject)]
pub struct MerchantStoreCreatePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The store.
    pub store: Option<MerchantStore>,
}

/// `merchantApiKeyCreate` input.
#[derive(InputObject)]
pub struct MerchantApiKeyCreateInput {
    /// What it is for, at most 100 characters.
    pub label: String,
    /// BTCPay permission strings, e.g. `btcpay.store.cancreateinvoice:<storeId>`.
    pub permissions: Vec<String>,
}

/// A new key and its secret (shown once), or errors.
#[derive(SimpleObject)]
pub struct MerchantApiKeyCreatePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The key.
    pub api_key: Option<MerchantApiKey>,
    /// The secret, for `Authorization: token <secret>`. Flash keeps only its hash.
    pub secret: Option<String>,
}

/// `merchantApiKeyRevoke` input.
#[derive(InputObject)]
pub struct MerchantApiKeyRevokeInput {
    /// The key's id.
    pub id: ID,
}

/// Whether it was revoked.
#[derive(SimpleObject)]
pub struct MerchantApiKeyRevokePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// True once revoked.
    pub revoked: bool,
}

/// Merchant queries.
#[derive(Default)]
pub struct MerchantQuery;

#[Object]
impl MerchantQuery {
    /// The caller's stores (scope `read`).
    async fn merchant_stores(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MerchantStore>> {
        let p = principal(ctx, AuthScope::Read)?;
        let stores = state(ctx).merchant.stores(&Caller::owner(p.account_id)).await;
        stores
            .map(|l| l.into_iter().map(MerchantStore::from).collect())
            .map_err(|e| ApiError::from(e).to_graphql())
    }

    /// The caller's live Greenfield API keys (scope `read`).
    async fn merchant_api_keys(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<MerchantApiKey>> {
        let p = principal(ctx, AuthScope::Read)?;
        let keys = state(ctx).merchant.keys(p.account_id).await;
        keys.map(|l| l.into_iter().map(MerchantApiKey::from).collect())
            .map_err(|e| ApiError::from(e).to_graphql())
    }
}

/// Merchant mutations.
#[derive(Default)]
pub struct MerchantMutation;

#[Object]
impl MerchantMutation {
    /// Makes a store, settled into the caller's default wallet (scope `write`).
    async fn merchant_store_create(
        &self,
        ctx: &Context<'_>,
        input: MerchantStoreCreateInput,
    ) -> async_graphql::Result<MerchantStoreCreatePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let mut body = json!({ "name": input.name });
        if let Some(currency) = input.default_currency {
            body["defaultCurrency"] = json!(currency);
        }
        Ok(
            match state(ctx)
                .merchant
                .create_store(&Caller::owner(p.account_id), &body)
                .await
            {
                Ok(store) => MerchantStoreCreatePayload {
                    errors: vec![],
                    store: Some(store.into()),
                },
                Err(e) => MerchantStoreCreatePayload {
                    errors: vec![ApiError::from(e).into()],
                    store: None,
                },
            },
        )
    }

    /// Makes a Greenfield API key for the caller's stores (scope `write`).
    async fn merchant_api_key_create(
        &self,
        ctx: &Context<'_>,
        input: MerchantApiKeyCreateInput,
    ) -> async_graphql::Result<MerchantApiKeyCreatePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let made = state(ctx)
            .merchant
            .create_key(&Caller::owner(p.account_id), &input.label, &input.permissions)
            .await;
        Ok(match made {
            Ok(made) => MerchantApiKeyCreatePayload {
                errors: vec![],
                api_key: Some(made.key.into()),
                secret: Some(made.secret),
            },
            Err(e) => MerchantApiKeyCreatePayload {
                errors: vec![ApiError::from(e).into()],
                api_key: None,
                secret: None,
            },
        })
    }

    /// Revokes one of the caller's Greenfield API keys (scope `write`).
    async fn merchant_api_key_revoke(
        &self,
        ctx: &Context<'_>,
        input: MerchantApiKeyRevokeInput,
    ) -> async_graphql::Result<MerchantApiKeyRevokePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        Ok(match state(ctx).merchant.revoke_key(p.account_id, &input.id.0).await {
            Ok(()) => MerchantApiKeyRevokePayload {
                errors: vec![],
                revoked: true,
            },
            Err(e) => MerchantApiKeyRevokePayload {
                errors: vec![ApiError::from(e).into()],
                revoked: false,
            },
        })
    }
}
