//! meshgate-http: the HTTP side of meshgate, on its own port (`--http-bind`):
//! `/healthz`, `/readyz`, `/metrics` (Prometheus text format) and the catalog web
//! page with its JSON API. It serves the same [`meshgate_flight::Current`] snapshot
//! and credentials as the Flight port.
//!
//! HTTP/1.1 only, with limits on every request ([`limits`]): headers (size, count,
//! time to arrive), body size, time to answer; a panic in a handler is a 500 and the
//! server goes on; an unknown path is a JSON 404.

mod limits;
mod ops;
mod state;
mod web;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

pub use state::{HttpOptions, HttpState};

/// Largest request head (request line and headers); a larger one is answered 431
/// by hyper.
const MAX_HEAD_BYTES: usize = 64 * 1024;
/// Most headers in a request; more is answered 431.
const MAX_HEADERS: usize = 64;
/// Time a client has to send the request head once it starts a request.
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
/// Wait after a failed accept (out of file descriptors) before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Every route of the HTTP side, behind the limits.
pub fn router(state: HttpState) -> Router {
    limits::apply(Router::new().merge(ops::routes()).merge(web::routes())).with_state(state)
}

/// Serves the HTTP side on `listener` until `shutdown` completes; then stops
/// accepting and lets the requests under way finish.
pub async fn serve(listener: TcpListener, state: HttpState, shutdown: impl Future<Output = ()> + Send + 'static) {
    serve_router(listener, router(state), shutdown).await;
}

async fn serve_router(listener: TcpListener, app: Router, shutdown: impl Future<Output = ()> + Send + 'static) {
    let connections = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "HTTP: cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        if let Err(error) = stream.set_nodelay(true) {
            tracing::warn!(%error, "HTTP: cannot set TCP_NODELAY");
        }
        let connection = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(HEAD_TIMEOUT)
            .max_header_size(MAX_HEAD_BYTES)
            .max_headers(MAX_HEADERS)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = connections.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "HTTP connection ended with an error");
            }
        });
    }
    connections.shutdown().await;
}
