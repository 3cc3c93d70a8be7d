//! Nostr Wallet Connect (Flash extensions): a user connects an app to a wallet with
//! `nwcConnectionCreate` (methods, a budget per period, an expiry) and gets a
//! `nostr+walletconnect://` URI, shown once; `nwcConnections` lists them, `nwcConnectionRevoke`
//! cuts one off.

use async_graphql::{Context, Enum, InputObject, Object, SimpleObject, ID};
use flash_auth::Scope as AuthScope;
use flash_nostr::nwc::{NewConnection, NwcError};
use flash_nostr::NwcConnectionRecord;

use super::types::*;
use super::{principal, state};
use crate::error::ApiError;

impl From<NwcError> for ApiError {
    fn from(e: NwcError) -> Self {
        match e {
            NwcError::Bank(b) => b.into(),
            NwcError::Store(s) => flash_bank::BankError::Store(s).into(),
            e => ApiError::new(e.code(), e.to_string()),
        }
    }
}

fn service(ctx: &Context<'_>) -> Result<flash_nostr::WalletConnect, NwcError> {
    state(ctx)
        .nwc
        .clone()
        .ok_or_else(|| NwcError::InvalidInput("this Flash runs no relay, so no wallet connect".into()))
}

/// How often a connection's budget starts afresh. An enum, as Galoy's schema writes such
/// choices; the store keeps the lowercase name (`flash_nostr::nwc::PERIODS`).
#[derive(Enum, Copy, Clone, Debug, Eq, PartialEq)]
pub enum NwcBudgetPeriod {
    /// Every day (UTC).
    Daily,
    /// Every week.
    Weekly,
    /// Every month (the default).
    Monthly,
    /// Every year.
    Yearly,
    /// Never: one budget for the connection's whole life.
    Never,
}

impl NwcBudgetPeriod {
    /// The name the wallet-connect service and the store use.
    fn stored(self) -> &'static str {
        match self {
            NwcBudgetPeriod::Daily => "daily",
            NwcBudgetPeriod::Weekly => "weekly",
            NwcBudgetPeriod::Monthly => "monthly",
            NwcBudgetPeriod::Yearly => "yearly",
            NwcBudgetPeriod::Never => "never",
        }
    }
}

/// `nwcConnectionCreate` input.
#[derive(InputObject)]
pub struct NwcConnectionCreateInput {
    /// What the app is (shown in the list), 1–100 characters.
    pub name: String,
    /// The wallet it may use (the default wallet when absent).
    pub wallet_id: Option<WalletId>,
    /// Methods it may call (all when absent): pay_invoice, make_invoice, lookup_invoice,
    /// list_transactions, get_balance, get_info.
    pub methods: Option<Vec<String>>,
    /// Most sats it may spend per period, fees included (no budget when absent).
    pub budget_sats: Option<SatAmount>,
    /// How often the budget starts afresh (default `MONTHLY`; `NEVER`: one budget for its life).
    pub budget_period: Option<NwcBudgetPeriod>,
    /// When it stops working (Unix seconds).
    pub expires_at: Option<Timestamp>,
}

/// A wallet connection.
#[derive(SimpleObject)]
pub struct NwcConnection {
    /// Its id.
    pub id: ID,
    /// Its name.
    pub name: String,
    /// The wallet it uses.
    pub wallet_id: WalletId,
    /// The app's key, hex.
    pub client_pubkey: String,
    /// Methods it may call.
    pub methods: Vec<String>,
    /// Budget per period, sats.
    pub budget_sats: Option<SatAmount>,
    /// The budget period, lowercase as stored: daily, weekly, monthly, yearly or never.
    pub budget_period: String,
    /// Spent in the current period, sats (payments in flight included).
    pub spent_sats: SatAmount,
    /// Expiry.
    pub expires_at: Option<Timestamp>,
    /// Created.
    pub created_at: Timestamp,
    /// Revoked, if it was.
    pub revoked_at: Option<Timestamp>,
    /// Its last request.
    pub last_used_at: Option<Timestamp>,
}

impl From<NwcConnectionRecord> for NwcConnection {
    fn from(r: NwcConnectionRecord) -> Self {
        NwcConnection {
            id: ID(r.id),
            name: r.name,
            wallet_id: WalletId(r.wallet_id.to_string()),
            client_pubkey: r.client_pubkey,
            methods: r.methods,
            budget_sats: r.budget_sats.map(SatAmount),
            budget_period: r.budget_period,
            spent_sats: SatAmount(r.spent_sats),
            expires_at: r.expires_at.map(ts),
            created_at: ts(r.created_at),
            revoked_at: r.revoked_at.map(ts),
            last_used_at: r.last_used_at.map(ts),
        }
    }
}

/// A new connection and its URI, or errors.
#[derive(SimpleObject)]
pub struct NwcConnectionCreatePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// The connection.
    pub connection: Option<NwcConnection>,
    /// `nostr+walletconnect://…`: give it to the app. Shown once; Flash keeps no copy of its
    /// secret.
    pub uri: Option<String>,
}

/// `nwcConnectionRevoke` input.
#[derive(InputObject)]
pub struct NwcConnectionRevokeInput {
    /// The connection.
    pub id: ID,
}

/// Whether it was revoked.
#[derive(SimpleObject)]
pub struct NwcConnectionRevokePayload {
    /// Errors.
    pub errors: Vec<ErrorIface>,
    /// True once revoked.
    pub revoked: bool,
}

/// Wallet-connect queries.
#[derive(Default)]
pub struct NwcQuery;

#[Object]
impl NwcQuery {
    /// The caller's wallet connections, newest first (scope `read`).
    async fn nwc_connections(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<NwcConnection>> {
        let p = principal(ctx, AuthScope::Read)?;
        let list = async { service(ctx)?.list(p.account_id).await }.await;
        list.map(|l| l.into_iter().map(NwcConnection::from).collect())
            .map_err(|e| ApiError::from(e).to_graphql())
    }
}

/// Wallet-connect mutations.
#[derive(Default)]
pub struct NwcMutation;

#[Object]
impl NwcMutation {
    /// Connects an app to a wallet (scope `write`: the app may spend within its budget).
    async fn nwc_connection_create(
        &self,
        ctx: &Context<'_>,
        input: NwcConnectionCreateInput,
    ) -> async_graphql::Result<NwcConnectionCreatePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let result = async {
            let wallet_id = match &input.wallet_id {
                Some(w) => Some(
                    w.0.parse()
                        .map_err(|_| NwcError::InvalidInput("wallet not found".into()))?,
                ),
                None => None,
            };
            let new = NewConnection {
                name: input.name,
                wallet_id,
                methods: input.methods,
                budget_sats: input.budget_sats.map(|b| b.0),
                budget_period: input.budget_period.map(|p| p.stored().to_owned()),
                expires_at_ms: input.expires_at.map(|t| t.0.saturating_mul(1_000)),
            };
            service(ctx)?.create(p.account_id, new).await
        };
        Ok(match result.await {
            Ok((record, uri)) => NwcConnectionCreatePayload {
                errors: vec![],
                connection: Some(record.into()),
                uri: Some(uri),
            },
            Err(e) => NwcConnectionCreatePayload {
                errors: vec![ApiError::from(e).into()],
                connection: None,
                uri: None,
            },
        })
    }

    /// Cuts an app off: its requests are refused from now on (scope `write`).
    async fn nwc_connection_revoke(
        &self,
        ctx: &Context<'_>,
        input: NwcConnectionRevokeInput,
    ) -> async_graphql::Result<NwcConnectionRevokePayload> {
        let p = principal(ctx, AuthScope::Write)?;
        let result = async { service(ctx)?.revoke(p.account_id, &input.id.0).await };
        Ok(match result.await {
            Ok(()) => NwcConnectionRevokePayload {
                errors: vec![],
                revoked: true,
            },
            Err(e) => NwcConnectionRevokePayload {
                errors: vec![ApiError::from(e).into()],
                revoked: false,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_budget_period_is_one_the_service_knows() {
        let all = [
            NwcBudgetPeriod::Daily,
            NwcBudgetPeriod::Weekly,
            NwcBudgetPeriod::Monthly,
            NwcBudgetPeriod::Yearly,
            NwcBudgetPeriod::Never,
        ];
        let stored: Vec<&str> = all.iter().map(|p| p.stored()).collect();
        assert_eq!(stored, flash_nostr::nwc::PERIODS);
    }
}
