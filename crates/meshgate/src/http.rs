//! The HTTP side of `meshgate serve` (`--http-bind`): health, readiness, metrics
//! and the catalog web page on a second port, bound before the server announces
//! itself and announced on stdout right after the Flight ready line.

use std::future::Future;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;

use meshgate_flight::{Current, Metrics};
use meshgate_http::{HttpOptions, HttpState};
use tokio::net::TcpListener;

/// The bound HTTP port, not serving yet.
pub struct HttpSide {
    listener: TcpListener,
    address: SocketAddr,
}

impl HttpSide {
    /// Binds `--http-bind`, if set.
    pub async fn bind(bind: Option<SocketAddr>) -> Result<Option<Self>, String> {
        let Some(bind) = bind else { return Ok(None) };
        let listener =
            TcpListener::bind(bind).await.map_err(|error| format!("cannot listen on {bind} (--http-bind): {error}"))?;
        let address = listener.local_addr().unwrap_or(bind);
        Ok(Some(Self { listener, address }))
    }

    /// Serves until `shutdown`, and says so on `stdout`: `meshgate http on
    /// http://ADDR` (the line after the Flight ready line).
    pub fn start(
        self,
        current: Current,
        metrics: Arc<Metrics>,
        options: HttpOptions,
        shutdown: impl Future<Output = ()> + Send + 'static,
        stdout: &mut impl Write,
    ) {
        let state = HttpState { current, metrics, options: Arc::new(options) };
        tokio::spawn(meshgate_http::serve(self.listener, state, shutdown));
        let address = self.address;
        if writeln!(stdout, "meshgate http on http://{address}").and_then(|()| stdout.flush()).is_err() {
            tracing::warn!("cannot write the HTTP line to stdout");
        }
        tracing::info!(%address, "serving HTTP (health, readiness, metrics, catalog page)");
    }
}
