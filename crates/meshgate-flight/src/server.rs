//! Serving the Flight SQL service over gRPC.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use tokio::net::{TcpListener, TcpStream};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::body::Body;
use tonic::server::NamedService;
use tonic::service::interceptor::InterceptedService;
use tower_service::Service;

use crate::connection_limits::ConnectionLimits;
use crate::flight_service::MeshFlightService;
use crate::panic_guard::CatchPanics;
use crate::request_limits::RequestLimits;
use crate::service::MeshFlightSqlService;
use crate::statement_route::StatementDoGet;
use crate::tls::TlsHandle;

/// Transport settings.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Largest gRPC message accepted or sent. Clients send bind batches as single
    /// messages, so this is well above tonic's 4 MiB default.
    pub max_message_bytes: usize,
    /// TLS (and mutual TLS) when set; plaintext gRPC otherwise.
    pub tls: Option<TlsHandle>,
    pub limits: ConnectionLimits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self { max_message_bytes: 64 * 1024 * 1024, tls: None, limits: ConnectionLimits::default() }
    }
}

/// Serves `service` on `listener` until `shutdown` completes; then stops accepting
/// and lets in-flight calls finish.
pub async fn serve(
    listener: TcpListener,
    service: MeshFlightSqlService,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), tonic::transport::Error> {
    let router = options.limits.server_builder().add_service(grpc_service(service, &options));
    match options.tls {
        None => {
            let incoming = TcpListenerStream::new(listener).map(|accepted| accepted.inspect(configure_socket));
            router.serve_with_incoming_shutdown(incoming, shutdown).await
        }
        Some(tls) => {
            let incoming = crate::tls::incoming(listener, tls, configure_socket);
            router.serve_with_incoming_shutdown(incoming, shutdown).await
        }
    }
}

/// The whole gRPC service as `serve` runs it, without a listener: authentication,
/// statement DoGets, the Flight SQL service, panic guard. A call is one HTTP/2
/// request in and one response out (the fuzz targets drive it this way).
pub fn grpc_service(
    service: MeshFlightSqlService,
    options: &ServerOptions,
) -> impl Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible, Future: Send>
+ NamedService
+ Clone
+ Send
+ Sync
+ 'static {
    // Every RPC, Handshake and DoGet included, passes the authenticator first.
    let max_message_bytes = options.max_message_bytes;
    let interceptor = crate::auth::interceptor(service.current().clone(), Arc::clone(service.metrics()));
    let statements = service.clone();
    let flight = FlightServiceServer::new(MeshFlightService(service))
        .max_decoding_message_size(max_message_bytes)
        .max_encoding_message_size(max_message_bytes);
    // Statement results leave as zero-copy frames; every other call goes through tonic.
    // Oversized headers and request messages are refused before anything reads them. A panic in any call
    // ends that call with INTERNAL, not the process.
    let intercepted = InterceptedService::new(StatementDoGet::new(flight, statements, max_message_bytes), interceptor);
    RequestLimits::new(CatchPanics::new(intercepted), options.limits.max_header_list_bytes as usize, max_message_bytes)
}

/// The builder's `tcp_nodelay` and `tcp_keepalive` apply only to listeners tonic binds
/// itself; with our own listener each accepted socket is set here. Without
/// TCP_NODELAY, small responses wait out Nagle's algorithm against delayed ACKs:
/// ~40 ms on every call.
fn configure_socket(stream: &TcpStream) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::warn!(%error, "cannot set TCP_NODELAY");
    }
    crate::connection_limits::set_tcp_keepalive(stream);
}
