//! The GraphQL endpoints: schema construction, the HTTP and websocket handlers, and the
//! per-request caller context.

mod admin;
mod cold;
mod ecash;
mod lightning;
mod nwc;
mod onchain;
mod public;
mod types;

use std::net::IpAddr;

use async_graphql::http::{GraphiQLSource, ALL_WEBSOCKET_PROTOCOLS};
use async_graphql::{Context, Data, EmptySubscription, MergedObject, MergedSubscription, Schema};
use async_graphql_axum::{GraphQLProtocol, GraphQLResponse, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::FromRequestParts;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
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
);

/// The app API's mutations.
#[derive(MergedObject, Default)]
pub(crate) struct PublicMutation(
    public::Mutation,
    lightning::LightningMutation,
    onchain::OnchainMutation,
    ecash::EcashMutation,
    nwc::NwcMutation,
);

/// The app API's subscriptions.
#[derive(MergedSubscription, Default)]
pub(crate) struct PublicSubscription(public::Subscription, lightning::LightningSubscription);

pub(crate) type PublicSchema = Schema<PublicQuery, PublicMutation, PublicSubscription>;
/// The operator API's mutations.
#[derive(MergedObject, Default)]
pub(crate) struct AdminMutation(
    admin::Mutation,
    onchain::OnchainAdminMutation,
    cold::ColdAdminMutation,
    ecash::EcashAdminMutation,
);

/// The operator API's queries.
#[derive(MergedObject, Default)]
pub(crate) struct AdminQuery(
    admin::Query,
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
    .finish()
}

pub(crate) fn admin_schema(state: ApiState) -> AdminSchema {
    Schema::build(AdminQuery::default(), AdminMutation::default(), EmptySubscription)
        .data(state)
        .limit_depth(QUERY_DEPTH_MAX)
        .limit_complexity(QUERY_COMPLEXITY_MAX)
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
            None => Err(ApiError::new("UNAUTHENTICATED", "not authenticated")),
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
    serde_json::from_slice(body).map_err(|e| ApiError::new("INVALID_INPUT", format!("invalid GraphQL request: {e}")))
}

/// GET `/graphql`: a websocket upgrade runs subscriptions (graphql-ws / graphql-transport-ws,
/// token in the `connection_init` payload as `Authorization: Bearer …`); otherwise GraphiQL.
pub(crate) async fn public_get(
    State((state, schema)): State<(ApiState, PublicSchema)>,
    peer: Peer,
    protocol: Result<GraphQLProtocol, <GraphQLProtocol as FromRequestParts<()>>::Rejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let (Ok(protocol), Ok(upgrade)) = (protocol, upgrade) else {
        return Html(
            GraphiQLSource::build()
                .endpoint("/graphql")
                .subscription_endpoint("/graphql")
                .finish(),
        )
        .into_response();
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
pub(crate) struct Operator(Result<String, ApiError>);

pub(crate) fn operator<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a str> {
    let op = ctx.data::<Operator>()?;
    op.0.as_deref().map_err(ApiError::to_graphql)
}

pub(crate) async fn admin_http(
    State((state, schema)): State<(ApiState, AdminSchema)>,
    peer: Peer,
    headers: HeaderMap,
    body: Bytes,
) -> Result<GraphQLResponse, ApiError> {
    let req = parse_request(&body)?;
    let op = match bearer(&headers) {
        Some(token) => state
            .auth
            .authenticate_admin(&token, peer.0.ip())
            .await
            .map_err(ApiError::from),
        None => Err(ApiError::new("UNAUTHENTICATED", "admin key required")),
    };
    Ok(schema.execute(req.data(Operator(op))).await.into())
}

pub(crate) async fn admin_get() -> Html<String> {
    Html(GraphiQLSource::build().endpoint("/admin/graphql").finish())
}
