//! The catalog web page: login, the embedded static assets and the JSON API the
//! page reads.

use axum::Router;

use crate::state::HttpState;

pub fn routes() -> Router<HttpState> {
    Router::new()
}
