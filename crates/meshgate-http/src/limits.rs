//! What every HTTP request is held to, whatever its route: a body size, a time to
//! answer, and no panic escaping (a handler that panics answers 500 and the server
//! goes on). An unknown path is a JSON 404. Headers are bounded by the connection
//! (see `serve`).

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::{Next, from_fn};
use axum::response::{IntoResponse, Response};
use futures::FutureExt;

/// Largest request body, in bytes: announced larger is refused at once with 413;
/// a body sent without a length is cut there when read (413 too).
pub(crate) const MAX_BODY_BYTES: usize = 64 * 1024;
/// Time a handler has to answer; past it the request is answered 503.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// `routes` with the limits and the 404 fallback.
pub(crate) fn apply<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    within(routes, REQUEST_TIMEOUT)
}

fn within<S: Clone + Send + Sync + 'static>(routes: Router<S>, timeout: Duration) -> Router<S> {
    routes
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(from_fn(move |request: Request, next: Next| guard(request, next, timeout)))
}

/// A JSON error answer: `{"error": "..."}`.
pub(crate) fn error_response(status: StatusCode, message: impl Into<String>) -> Response {
    (status, axum::Json(serde_json::json!({ "error": message.into() }))).into_response()
}

async fn not_found(uri: Uri) -> Response {
    error_response(StatusCode::NOT_FOUND, format!("no such path: {}", uri.path()))
}

async fn guard(request: Request, next: Next, timeout: Duration) -> Response {
    let announced = request.headers().get(header::CONTENT_LENGTH).and_then(|value| value.to_str().ok()?.parse().ok());
    if announced.is_some_and(|length: u64| length > MAX_BODY_BYTES as u64) {
        return error_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
        );
    }
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(timeout, AssertUnwindSafe(next.run(request)).catch_unwind()).await {
        Ok(Ok(response)) => response,
        Ok(Err(panic)) => {
            tracing::error!(path, "HTTP request panicked: {}", panic_message(panic.as_ref()));
            error_response(StatusCode::INTERNAL_SERVER_ERROR, "internal error; the server log has the details")
        }
        Err(_) => {
            let limit = timeout.as_secs_f64();
            tracing::warn!(path, "HTTP request took longer than {limit}s");
            error_response(StatusCode::SERVICE_UNAVAILABLE, format!("the request took longer than {limit}s"))
        }
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::SocketAddr;

    use axum::routing::{get, post};
    use tokio::net::TcpListener;

    use super::*;

    /// Sends `request` on a new connection and reads the answer until the server
    /// closes it.
    async fn send(address: SocketAddr, request: Vec<u8>) -> String {
        tokio::task::spawn_blocking(move || {
            let mut stream = std::net::TcpStream::connect(address).unwrap();
            stream.write_all(&request).unwrap();
            let mut answer = Vec::new();
            let _ = stream.read_to_end(&mut answer);
            String::from_utf8_lossy(&answer).into_owned()
        })
        .await
        .unwrap()
    }

    fn get_request(path: &str, headers: &str) -> Vec<u8> {
        format!("GET {path} HTTP/1.1\r\nHost: test\r\n{headers}Connection: close\r\n\r\n").into_bytes()
    }

    async fn buggy() -> &'static str {
        panic!("a handler bug")
    }

    #[tokio::test]
    async fn every_request_is_bounded_and_the_server_outlives_bad_ones() {
        let routes = Router::new()
            .route("/ok", get(|| async { "fine" }))
            .route("/echo", post(|body: axum::body::Bytes| async move { body.len().to_string() }))
            .route("/panic", get(buggy))
            .route("/slow", get(|| tokio::time::sleep(Duration::from_secs(30))));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(crate::serve_router(listener, within(routes, Duration::from_millis(200)), async {
            let _ = stopped.await;
        }));

        let panicked = send(address, get_request("/panic", "")).await;
        assert!(panicked.starts_with("HTTP/1.1 500"), "{panicked}");
        assert!(panicked.contains(r#"{"error":"internal error; the server log has the details"}"#), "{panicked}");
        assert!(send(address, get_request("/ok", "")).await.ends_with("fine"));

        let slow = send(address, get_request("/slow", "")).await;
        assert!(slow.starts_with("HTTP/1.1 503") && slow.contains("longer than 0.2s"), "{slow}");

        let unknown = send(address, get_request("/nowhere", "")).await;
        assert!(unknown.starts_with("HTTP/1.1 404") && unknown.contains("no such path: /nowhere"), "{unknown}");

        let announced = format!(
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            MAX_BODY_BYTES + 1
        );
        let refused = send(address, announced.into_bytes()).await;
        assert!(refused.starts_with("HTTP/1.1 413"), "{refused}");
        let mut chunked =
            b"POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".to_vec();
        for _ in 0..(MAX_BODY_BYTES / 4096 + 2) {
            chunked.extend(format!("1000\r\n{}\r\n", "x".repeat(4096)).into_bytes());
        }
        chunked.extend(b"0\r\n\r\n");
        let cut = send(address, chunked).await;
        assert!(cut.starts_with("HTTP/1.1 413"), "{cut}");
        let small = b"POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
        assert!(send(address, small.to_vec()).await.ends_with("\r\n\r\n5"));

        let big_header = format!("X-Filler: {}\r\n", "y".repeat(crate::MAX_HEAD_BYTES));
        assert!(send(address, get_request("/ok", &big_header)).await.starts_with("HTTP/1.1 431"));
        let many_headers: String = (0..=crate::MAX_HEADERS).map(|n| format!("X-H{n}: v\r\n")).collect();
        assert!(send(address, get_request("/ok", &many_headers)).await.starts_with("HTTP/1.1 431"));
        let garbage = send(address, b"THIS IS NOT HTTP\r\n\r\n".to_vec()).await;
        assert!(garbage.is_empty() || garbage.starts_with("HTTP/1.1 400"), "{garbage}");

        assert!(send(address, get_request("/ok", "")).await.ends_with("fine"));
        stop.send(()).unwrap();
        server.await.unwrap();
    }
}
