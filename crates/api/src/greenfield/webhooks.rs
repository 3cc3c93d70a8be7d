//! Greenfield's webhooks routes.

use axum::Router;

use crate::ApiState;

pub(super) fn routes() -> Router<ApiState> {
    Router::new()
}
