//! Accepting TLS connections: one task accepts TCP connections, and each handshake
//! runs in a task of its own under a timeout, so a slow, silent or plaintext client
//! never holds up the others. Finished handshakes are handed to tonic as a stream.

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::TlsHandle;
use super::peer::{PeerCertificate, TlsConnectInfo};

/// A handshake that has not finished in this time is abandoned.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused client may go on sending before its connection is closed.
const ALERT_LINGER: Duration = Duration::from_secs(1);
/// Handshakes under way at once; beyond it, accepting waits (the kernel queues).
const MAX_HANDSHAKES: usize = 1024;
/// The first byte of the HTTP/2 connection preface (`PRI * HTTP/2.0`); a TLS
/// ClientHello starts with 0x16.
const HTTP2_PREFACE_START: u8 = b'P';

/// An accepted connection whose TLS handshake is complete.
pub(crate) struct TlsConnection {
    stream: TlsStream<TcpStream>,
    info: TlsConnectInfo,
}

/// The TLS connections accepted on `listener`, each socket set up by `configure`.
/// Accepting stops when the stream is dropped (tonic drops it at shutdown).
pub(crate) fn incoming(
    listener: TcpListener,
    tls: TlsHandle,
    configure: fn(&TcpStream),
) -> ReceiverStream<io::Result<TlsConnection>> {
    let (ready, connections) = mpsc::channel(64);
    tokio::spawn(accept(listener, tls, configure, ready));
    ReceiverStream::new(connections)
}

async fn accept(
    listener: TcpListener,
    tls: TlsHandle,
    configure: fn(&TcpStream),
    ready: mpsc::Sender<io::Result<TlsConnection>>,
) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let permit = tokio::select! {
            () = ready.closed() => return,
            permit = Arc::clone(&handshakes).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
        };
        let (stream, remote) = tokio::select! {
            () = ready.closed() => return,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait a little rather than spin.
                    tracing::warn!(%error, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        configure(&stream);
        let config = tls.config();
        let ready = ready.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(stream, remote, config)).await {
                Ok(Ok(Some(connection))) => {
                    let _ = ready.send(Ok(connection)).await;
                }
                Ok(Ok(None)) => {}
                Ok(Err(error)) => tracing::info!(%remote, %error, "TLS handshake failed"),
                Err(_) => tracing::info!(%remote, "TLS handshake not finished within {HANDSHAKE_TIMEOUT:?}: closed"),
            }
        });
    }
}

/// Completes the handshake; `None` when the client spoke plaintext gRPC and was told
/// to use TLS.
async fn handshake(
    stream: TcpStream,
    remote: SocketAddr,
    config: Arc<rustls::ServerConfig>,
) -> io::Result<Option<TlsConnection>> {
    let mut first = [0u8; 1];
    let peeked = stream.peek(&mut first).await?;
    if peeked == 1 && first[0] == HTTP2_PREFACE_START {
        tracing::info!(%remote, "plaintext gRPC on the TLS port: answered UNAVAILABLE");
        answer_plaintext(stream).await;
        return Ok(None);
    }
    let stream = match TlsAcceptor::from(config).accept(stream).into_fallible().await {
        Ok(stream) => stream,
        Err((error, mut stream)) => {
            close_after_alert(&mut stream).await;
            return Err(error);
        }
    };
    let client_certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|certificate| PeerCertificate::from_der(certificate.as_ref()).unwrap_or_default())
        .map(Arc::new);
    let info = TlsConnectInfo { remote_addr: Some(remote), client_certificate };
    Ok(Some(TlsConnection { stream, info }))
}

/// After a refused handshake, whose alert is written: sends FIN and reads what the
/// client still sends (for a moment) before closing. Closed with unread data, the
/// socket would send a reset, and the client could lose the alert that says why (a
/// TLS 1.3 client learns its certificate was refused after it has started writing).
async fn close_after_alert(stream: &mut TcpStream) {
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    let drain = async { while matches!(stream.read(&mut sink).await, Ok(read) if read > 0) {} };
    let _ = tokio::time::timeout(ALERT_LINGER, drain).await;
}

/// Answers every call of a plaintext HTTP/2 connection with UNAVAILABLE and a message
/// saying the port speaks TLS, so the client shows why rather than a reset socket.
async fn answer_plaintext(stream: TcpStream) {
    let service = hyper::service::service_fn(|_request| async {
        let response = http::Response::builder()
            .header("content-type", "application/grpc")
            .header("grpc-status", "14")
            .header("grpc-message", "this port requires TLS: connect with grpc+tls://")
            .body(http_body_util::Empty::<Bytes>::new())
            .unwrap_or_default();
        Ok::<_, Infallible>(response)
    });
    let connection = hyper::server::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    // Bounded by the caller's handshake timeout.
    if let Err(error) = connection.await {
        tracing::debug!(%error, "plaintext connection on the TLS port ended");
    }
}

impl Connected for TlsConnection {
    type ConnectInfo = TlsConnectInfo;

    fn connect_info(&self) -> TlsConnectInfo {
        self.info.clone()
    }
}

impl AsyncRead for TlsConnection {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsConnection {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
