//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`.

use axum::Router;

use crate::state::HttpState;

pub fn routes() -> Router<HttpState> {
    Router::new()
}
