//! meshgate-http: the HTTP side of meshgate, on its own port (`--http-bind`):
//! `/healthz`, `/readyz`, `/metrics` (Prometheus text format) and the catalog web
//! page with its JSON API. It serves the same [`Current`] snapshot and credentials
//! as the Flight port.

mod ops;
mod state;
mod web;

use std::future::Future;

use axum::Router;
use tokio::net::TcpListener;

pub use state::{HttpOptions, HttpState};

/// Every route of the HTTP side.
pub fn router(state: HttpState) -> Router {
    Router::new().merge(ops::routes()).merge(web::routes()).with_state(state)
}

/// Serves the HTTP side on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: HttpState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, router(state)).with_graceful_shutdown(shutdown).await
}
