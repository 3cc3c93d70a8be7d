//! Flash's HTTP surface: the GraphQL app API (`/graphql`, Galoy/Blink names and shapes,
//! websocket subscriptions), the operator API (`/admin/graphql`), the auth routes
//! (`/auth/...`, as Blink's auth server), Lightning addresses (`/.well-known/lnurlp/...`), and
//! health, readiness and metrics.
//!
//! Handlers are thin: they authenticate, call `flash-auth` or `flash-bank`, and map typed
//! errors to stable codes ([`error`]). Nothing here writes SQL; what it reads of the store
//! (readiness, metrics, ledger verification) goes through the store's typed methods.

// async-graphql's interface attributes repeat `ty = …` per field, which this lint misreads.
#![allow(clippy::duplicated_attributes)]

mod boltcard;
mod error;
mod graphql;
mod greenfield;
mod health;
mod lnurl;
mod metrics;
mod mint;
mod mint_ws;
mod pages;
mod relay;
mod rest;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use axum::Router;
use flash_auth::Auth;
use flash_bank::Bank;
use tower_http::limit::RequestBodyLimitLayer;

pub use graphql::{admin_schema_sdl, public_schema_sdl};
pub use metrics::Metrics;

/// Largest request body accepted, in bytes.
pub const BODY_LIMIT_BYTES: usize = 64 * 1024;
/// Largest request body the mint's routes accept, in bytes.
pub const MINT_BODY_LIMIT_BYTES: usize = 512 * 1024;

/// What `/healthz` reports about this server.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    /// The storage backend (`sqlite` / `postgres`).
    pub backend: &'static str,
    /// Rails that are simulators (named in `/healthz` so nobody mistakes them for real ones).
    pub simulated_rails: Vec<&'static str>,
    /// The URL clients reach this server at, without a trailing slash (LNURL callbacks).
    pub public_url: String,
}

/// Everything the handlers share.
#[derive(Clone)]
pub struct ApiState {
    /// The bank.
    pub bank: Bank,
    /// Authentication.
    pub auth: Auth,
    /// Request metrics.
    pub metrics: Arc<Metrics>,
    /// Facts for `/healthz`.
    pub info: Arc<ServerInfo>,
    /// Merchant services (`/api/v1/…`, BTCPay Greenfield).
    pub merchant: flash_merchant::Merchant,
    /// Flash Cards (`/boltcard…`).
    pub cards: flash_merchant::cards::Cards,
    /// The users' NOSTR names (`userUpdateNpub`, `npubByUsername`, NIP-05).
    pub names: flash_nostr::Names,
    /// The Cashu mint (`/v1/...`, `ecashMint`/`ecashRedeem`), when one runs here.
    pub mint: Option<flash_mint::Mint>,
    /// The NOSTR relay (`/`, `/relay`), when one runs here.
    pub relay: Option<flash_nostr::Relay>,
    /// Nostr Wallet Connect on the relay (`nwcConnection*`), when the relay runs here.
    pub nwc: Option<flash_nostr::WalletConnect>,
    /// Zaps to Lightning addresses (NIP-57), when the relay runs here.
    pub zaps: Option<flash_nostr::Zaps>,
    /// Admission invoices (`/relay/admission`), when the relay runs here and is paid.
    pub admission: Option<flash_nostr::AdmissionFees>,
    /// BTC prices in fiat (`realtimePrice`, `currencyList`, display amounts).
    pub prices: Arc<dyn flash_core::PriceSource>,
}

/// The peer's address, as seen by the listener. Serve the router with
/// `into_make_service_with_connect_info::<SocketAddr>()`.
pub type Peer = axum::extract::ConnectInfo<SocketAddr>;

/// Builds the whole router.
pub fn router(state: ApiState) -> Router {
    let public = graphql::public_schema(state.clone());
    let admin = graphql::admin_schema(state.clone());
    let public = Router::new()
        .route("/graphql", post(graphql::public_http).get(graphql::public_get))
        .with_state((state.clone(), public));
    let admin = Router::new()
        .route("/admin/graphql", post(graphql::admin_http).get(graphql::admin_get))
        .with_state((state.clone(), admin));
    let app = Router::<()>::new()
        .merge(public)
        .merge(admin)
        .merge(rest::routes(state.clone()))
        .merge(greenfield::routes(state.clone()))
        .merge(lnurl::routes(state.clone()))
        .merge(boltcard::routes(state.clone()))
        .merge(health::routes(state.clone()))
        .merge(relay::routes(state.clone()))
        .merge(pages::checkout::routes(state.clone()))
        .merge(pages::pos::routes(state.clone()))
        .merge(pages::payment_request::routes(state.clone()))
        .route("/assets/{name}", get(pages::asset))
        .layer(DefaultBodyLimit::max(BODY_LIMIT_BYTES))
        .layer(RequestBodyLimitLayer::new(BODY_LIMIT_BYTES));
    // Mint requests carry up to the mint's cap of notes, witnesses included.
    let mint = state
        .mint
        .clone()
        .map(|m| mint::routes(m, state.auth.clone()))
        .unwrap_or_default()
        .layer(DefaultBodyLimit::max(MINT_BODY_LIMIT_BYTES))
        .layer(RequestBodyLimitLayer::new(MINT_BODY_LIMIT_BYTES));
    app.merge(mint).layer(axum::middleware::from_fn_with_state(
        state.metrics.clone(),
        metrics::track,
    ))
}
