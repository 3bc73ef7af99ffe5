//! Limits on each client connection, set on tonic's server builder (docs/tls.md,
//! "Connection limits", explains each default).
//!
//! Maximum connection age is graceful only: when a connection reaches it, the server
//! sends HTTP/2 GOAWAY, the client opens a new connection for its next calls, and the
//! calls under way (a DoGet streaming a large result included) finish however long
//! they take. No grace period is set, on purpose: in tonic 0.14.9 a grace period
//! replaces the GOAWAY with a hard close at age + grace, which would cut a stream
//! off mid-result.

use std::time::Duration;

use tokio::net::TcpStream;

/// Per-connection limits.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// HTTP/2 streams (calls) open at once on one connection (tonic: unlimited).
    pub max_concurrent_streams: u32,
    /// Largest header block of a call, in bytes (hyper: 16 KiB); room for large JWTs.
    pub max_header_list_bytes: u32,
    /// An HTTP/2 PING is sent after this long without frames from the client; a client
    /// that does not answer within `http2_keepalive_timeout` is disconnected, and the
    /// query it was streaming stops (tonic: no pings).
    pub http2_keepalive_interval: Duration,
    pub http2_keepalive_timeout: Duration,
    /// After this long a connection is closed gracefully (see the module docs); `None`
    /// keeps connections open for as long as clients use them.
    pub max_connection_age: Option<Duration>,
}

/// Idle time before the kernel's TCP keepalive probes start, on every accepted socket.
const TCP_KEEPALIVE: Duration = Duration::from_secs(60);
/// Time between TCP keepalive probes.
const TCP_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            max_concurrent_streams: 256,
            max_header_list_bytes: 64 * 1024,
            http2_keepalive_interval: Duration::from_secs(60),
            http2_keepalive_timeout: Duration::from_secs(20),
            max_connection_age: Some(Duration::from_secs(3600)),
        }
    }
}

impl ConnectionLimits {
    pub(crate) fn server_builder(&self) -> tonic::transport::Server {
        let builder = tonic::transport::Server::builder()
            .max_concurrent_streams(self.max_concurrent_streams)
            // h2's own limit only stops floods: calls are held to `max_header_list_bytes`
            // one by one (request_limits.rs), so one oversized call never costs the others
            // on its connection.
            .http2_max_header_list_size(self.max_header_list_bytes.saturating_mul(16).max(1 << 20))
            .http2_keepalive_interval(Some(self.http2_keepalive_interval))
            .http2_keepalive_timeout(Some(self.http2_keepalive_timeout));
        match self.max_connection_age {
            Some(age) => builder.max_connection_age(age),
            None => builder,
        }
    }
}

/// Turns on TCP keepalive (tonic's `tcp_keepalive` is ignored for listeners it does
/// not bind itself): a peer that vanished without closing is noticed by the kernel.
pub(crate) fn set_tcp_keepalive(stream: &TcpStream) {
    let keepalive = socket2::TcpKeepalive::new().with_time(TCP_KEEPALIVE).with_interval(TCP_KEEPALIVE_INTERVAL);
    if let Err(error) = socket2::SockRef::from(stream).set_tcp_keepalive(&keepalive) {
        tracing::warn!(%error, "cannot turn on TCP keepalive");
    }
}
