//! The GraphQL endpoints: schema construction, the HTTP and websocket handlers, and the
//! per-request caller context.

mod admin;
mod cards;
mod cold;
mod ecash;
mod lightning;
mod limits;
mod merchant;
mod nwc;
mod onchain;
mod pay;
mod prices;
mod public;
mod rewards;
mod types;

use flash_core::ErrorCode;
use std::net::IpAddr;

use async_graphql::http::ALL_WEBSOCKET_PROTOCOLS;
use async_graphql::{Context, Data, EmptySubscription, MergedObject, MergedSubscription, Schema};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use flash_auth::{Principal, Scope};

use crate::error::ApiError;
use crate::rest::bearer;
use crate::{ApiState, Peer};

/// Deepest query accepted.
const QUERY_DEPTH_MAX: usize = 12;
/// Most complex query accepted.
const QUERY_COMPLEXITY_MAX: usize = 500;

/// The app API's queries: the core bank's and each rail's.
#[derive(MergedObject, Default)]
pub(crate) struct PublicQuery(
    public::Query,
    lightning::LightningQuery,
    onchain::OnchainQuery,
    nwc::NwcQuery,
    cards::CardsQuery,
    merchant::MerchantQuery,
    rewards::RewardsQuery,
    prices::PricesQuery,
);

/// The app API's mutations.
#[derive(MergedObject, Default)]
pub(crate) struct PublicMutation(
    public::Mutation,
    pay::PayMutation,
    lightning::LightningMutation,
    onchain::OnchainMutation,
    ecash::EcashMutation,
    nwc::NwcMutation,
    cards::CardsMutation,
    merchant::MerchantMutation,
    rewards::RewardsMutation,
);

/// The app API's subscriptions.
#[derive(MergedSubscription, Default)]
pub(crate) struct PublicSubscription(public::Subscription, lightning::LightningSubscription);

pub(crate) type PublicSchema = Schema<PublicQuery, PublicMutation, PublicSubscription>;
/// The operator API's mutations.
#[derive(MergedObject, Default)]
pub(crate) struct AdminMutation(
    admin::Mutation,
    cards::CardsAdminMutation,
    rewards::RewardsAdminMutation,
    onchain::OnchainAdminMutation,
    cold::ColdAdminMutation,
    ecash::EcashAdminMutation,
);

/// The operator API's queries.
#[derive(MergedObject, Default)]
pub(crate) struct AdminQuery(
    admin::Query,
    cards::CardsAdminQuery,
    rewards::RewardsAdminQuery,
    onchain::OnchainAdminQuery,
    cold::ColdAdminQuery,
    ecash::EcashAdminQuery,
);

pub(crate) type AdminSchema = Schema<AdminQuery, AdminMutation, EmptySubscription>;

pub(crate) fn public_schema(state: ApiState) -> PublicSchema {
    Schema::build(
        PublicQuery::default(),
        PublicMutation::default(),
        PublicSubscription::default(),
    )
    .data(state)
    .limit_depth(QUERY_DEPTH_MAX)
    .limit_complexity(QUERY_COMPLEXITY_MAX)
    .extension(limits::RequestLimits)
    .finish()
}

/// The app API's schema in GraphQL SDL: what clients generate their types from
/// (`flashd schema`, committed as `crates/sdk/schema/public.graphql`).
pub fn public_schema_sdl() -> String {
    Schema::build(
        PublicQuery::default(),
        PublicMutation::default(),
        PublicSubscription::default(),
    )
    .finish()
    .sdl()
}

/// The operator API's schema in GraphQL SDL (`flashd schema --admin`, committed as
/// `crates/sdk/schema/admin.graphql`).
pub fn admin_schema_sdl() -> String {
    Schema::build(AdminQuery::default(), AdminMutation::default(), EmptySubscription)
        .finish()
        .sdl()
}

pub(crate) fn admin_schema(state: ApiState) -> AdminSchema {
    Schema::build(AdminQuery::default(), AdminMutation::default(), EmptySubscription)
        .data(state)
        .limit_depth(QUERY_DEPTH_MAX)
        .limit_complexity(QUERY_COMPLEXITY_MAX)
        .extension(limits::RequestLimits)
        .finish()
}

/// Who is calling: the result of authenticating the request's token (if any) and its address.
pub(crate) struct Caller {
    principal: Result<Principal, ApiError>,
    token: Option<String>,
    ip: IpAddr,
}

impl Caller {
    async fn from_token(state: &ApiState, token: Option<String>, ip: IpAddr) -> Caller {
        let principal = match &token {
            None => Err(ApiError::new(ErrorCode::Unauthenticated, "not authenticated")),
            Some(t) => state.auth.authenticate(t, ip).await.map_err(ApiError::from),
        };
        Caller { principal, token, ip }
    }
}

pub(crate) fn state<'a>(ctx: &Context<'a>) -> &'a ApiState {
    ctx.data_unchecked::<ApiState>()
}

fn caller<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Caller> {
    ctx.data::<Caller>()
}

/// The authenticated caller, who must hold `scope`.
pub(crate) fn principal<'a>(ctx: &Context<'a>, scope: Scope) -> async_graphql::Result<&'a Principal> {
    let p = caller(ctx)?.principal.as_ref().map_err(ApiError::to_graphql)?;
    p.require(scope).map_err(|e| ApiError::from(e).to_graphql())?;
    Ok(p)
}

/// The field guard on everything that shows an account's data (balances, history, contacts,
/// e-mail, keys): mutation payloads return these objects too, and a key without `read` must not
/// read through them. The operator API, which has no caller, passes.
pub(crate) struct NeedsRead;

impl async_graphql::Guard for NeedsRead {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        if ctx.data_opt::<Operator>().is_some() {
            return Ok(());
        }
        principal(ctx, Scope::Read).map(|_| ())
    }
}

/// Counts an unauthenticated Lightning request against the caller's address.
pub(crate) fn public_lightning_rate(ctx: &Context<'_>) -> async_graphql::Result<()> {
    let ip = caller(ctx)?.ip;
    state(ctx)
        .auth
        .check_public_lightning_rate(ip)
        .map_err(|e| ApiError::from(e).to_graphql())
}

/// Maps a bank result to a top-level GraphQL error.
pub(crate) fn gql<T, E: Into<ApiError>>(r: Result<T, E>) -> async_graphql::Result<T> {
    r.map_err(|e| e.into().to_graphql())
}

pub(crate) async fn public_http(
    State((state, schema)): State<(ApiState, PublicSchema)>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<GraphQLResponse, ApiError> {
    let req = parse_request(&body)?;
    let caller = Caller::from_token(&state, bearer(&headers), peer.0.ip()).await;
    Ok(schema.execute(req.data(caller)).await.into())
}

/// A GraphQL request from a JSON body. Reading the body through `Bytes` keeps the size limit's
/// answer a 413; malformed JSON is a 400 with code `INVALID_INPUT`.
fn parse_request(body: &Bytes) -> Result<async_graphql::Request, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::InvalidInput, format!("invalid GraphQL request: {e}")))
}

/// GET `/graphql`: a websocket upgrade runs subscriptions (graphql-ws / graphql-transport-ws,
/// token in the `connection_init` payload as `Authorization: Bearer …`); otherwise the query
/// console.
pub(crate) async fn public_get(
    State((state, schema)): State<(ApiState, PublicSchema)>,
    peer: Peer,
    protocol: Result<GraphQLProtocol, <GraphQLProtocol as FromRequestParts<()>>::Rejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (Ok(protocol), Ok(upgrade)) = (protocol, upgrade) else {
        return crate::pages::console(
            "/graphql",
            "GraphQL",
            "Session token or API key",
            "query {\n  me {\n    id\n    username\n    defaultAccount {\n      wallets {\n        id\n        balance\n      }\n    }\n  }\n}\n",
        );
    };
    let ip = peer.0.ip();
    upgrade
        .protocols(ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            GraphQLWebSocket::new(socket, schema, protocol)
                .on_connection_init(move |payload| async move {
                    let token = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|v| v.as_str())
                        .map(|v| v.strip_prefix("Bearer ").unwrap_or(v).trim().to_string());
                    let mut data = Data::default();
                    data.insert(Caller::from_token(&state, token, ip).await);
                    Ok(data)
                })
                .serve()
        })
        .into_response()
}

/// The operator's key label, for the audit log.
pub(crate) struct Operator(String);

pub(crate) fn operator<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a str> {
    Ok(ctx.data::<Operator>()?.0.as_str())
}

/// POST `/admin/graphql`. The operator key is checked before the body is even parsed: without
/// it nothing (not introspection, not a parse error) is answered but `UNAUTHENTICATED`.
pub(crate) async fn admin_http(
    State((state, schema)): State<(ApiState, AdminSchema)>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<GraphQLResponse, ApiError> {
    let label = match bearer(&headers) {
        Some(token) => state
            .auth
            .authenticate_admin(&token, peer.0.ip())
            .await
            .map_err(ApiError::from),
        None => Err(ApiError::new(ErrorCode::Unauthenticated, "admin key required")),
    };
    let label = match label {
        Ok(label) => label,
        Err(e) => return Ok(async_graphql::Response::from_errors(vec![e.to_server_error()]).into()),
    };
    let req = parse_request(&body)?;
    Ok(schema.execute(req.data(Operator(label))).await.into())
}

/// GET `/admin/graphql`: the query console. The page holds nothing secret; the key typed into
/// it goes only to `/admin/graphql`.
pub(crate) async fn admin_get() -> Response {
    crate::pages::console(
        "/admin/graphql",
        "Operator GraphQL",
        "Operator key",
        "query {\n  ledgerVerify {\n    ok\n    journalsChecked\n  }\n}\n",
    )
}
