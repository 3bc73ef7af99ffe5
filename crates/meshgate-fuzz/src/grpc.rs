//! One gRPC call through the service: request framing, and reading the response to
//! its status the way a client would.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use tonic::Code;
use tonic::body::Body;

/// How long a response may take to end before the call is abandoned (the harness's
/// limit, not a finding: a query the fuzzer makes may be slow; libFuzzer's own
/// `-timeout` catches real hangs).
const PATIENCE: Duration = Duration::from_secs(5);

/// A response body larger than this is dropped unread past it (the client's choice).
const MAX_READ: usize = 16 * 1024 * 1024;

/// A call: the Flight method, the raw request body (gRPC-framed messages), headers.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: &'static str,
    pub body: Bytes,
    pub headers: Vec<(String, String)>,
}

impl Call {
    /// A call of `method` with one message.
    pub fn unary(method: &'static str, message: &[u8]) -> Self {
        Self { method, body: frame(&[message]), headers: Vec::new() }
    }

    /// A call of `method` streaming `messages`.
    pub fn streaming(method: &'static str, messages: &[Vec<u8>]) -> Self {
        let messages: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        Self { method, body: frame(&messages), headers: Vec::new() }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_owned(), value.into()));
        self
    }

    /// The HTTP/2 request tonic would receive, or `None` when a header is not a valid
    /// HTTP header (no client can send it).
    pub fn request(&self) -> Option<http::Request<Body>> {
        let mut builder = http::Request::builder()
            .method("POST")
            .uri(format!("http://meshgate.fuzz/arrow.flight.protocol.FlightService/{}", self.method))
            .header("content-type", "application/grpc")
            .header("te", "trailers");
        for (name, value) in &self.headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).ok()?;
            let value = http::HeaderValue::from_str(value).ok()?;
            builder = builder.header(name, value);
        }
        builder.body(Body::new(Full::new(self.body.clone()))).ok()
    }
}

/// gRPC length-prefixed messages, uncompressed.
pub fn frame(messages: &[&[u8]]) -> Bytes {
    let mut out = BytesMut::new();
    for message in messages {
        out.extend_from_slice(&[0]);
        out.extend_from_slice(&(message.len() as u32).to_be_bytes());
        out.extend_from_slice(message);
    }
    out.freeze()
}

/// How a call ended, as the client sees it.
#[derive(Debug)]
pub struct Outcome {
    /// The gRPC status; `None` when the response was abandoned unread (too slow or too
    /// large for the harness).
    pub code: Option<Code>,
    pub message: String,
    pub headers: http::HeaderMap,
    /// The response's messages (up to [`MAX_READ`] bytes of them).
    pub messages: Vec<Bytes>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.code == Some(Code::Ok)
    }

    /// The invariants of every call: a response that ended carries a status (a stream
    /// cut off without one would be a truncated result), and the status says what
    /// happened (never UNKNOWN: every error meshgate returns is mapped to a code).
    pub fn check(&self, what: &dyn std::fmt::Debug) {
        if self.code == Some(Code::Unknown) {
            panic!("UNKNOWN status ({}) for {what:?}", self.message);
        }
    }

    /// A forged credential, ticket, handle or cookie must never be accepted.
    pub fn refused(&self, what: &dyn std::fmt::Debug) {
        self.check(what);
        if self.ok() {
            panic!("accepted forged input {what:?}");
        }
    }
}

/// Reads a response to its end (or the harness's limits) and its status.
pub async fn read(response: http::Response<Body>) -> Outcome {
    let (parts, mut body) = response.into_parts();
    let mut status = status_of(&parts.headers);
    let mut data = BytesMut::new();
    let reading = async {
        while let Some(frame) = body.frame().await {
            let Ok(frame) = frame else {
                // The body failed: the client sees a broken stream, not a status.
                return Some(None);
            };
            match frame.into_data() {
                Ok(chunk) => {
                    if data.len() < MAX_READ {
                        data.extend_from_slice(&chunk);
                    } else {
                        return None;
                    }
                }
                Err(frame) => {
                    if let Some(trailers) = frame.trailers_ref() {
                        status = status.or_else(|| status_of(trailers));
                    }
                }
            }
        }
        Some(status.take())
    };
    let ended = tokio::time::timeout(PATIENCE, reading).await.ok().flatten();
    let (code, message) = match ended {
        None => (None, String::new()),
        Some(None) => panic!("the response ended without a gRPC status (a truncated result)"),
        Some(Some((code, message))) => (Some(code), message),
    };
    Outcome { code, message, headers: parts.headers, messages: messages(data.freeze()) }
}

fn status_of(headers: &http::HeaderMap) -> Option<(Code, String)> {
    let code = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    let message = headers.get("grpc-message").and_then(|value| value.to_str().ok()).unwrap_or_default();
    Some((Code::from_i32(code), message.to_owned()))
}

/// The messages of a gRPC response body (a partial last one is left out).
pub fn messages(mut data: Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    while data.len() >= 5 {
        let len = u32::from_be_bytes([data[1], data[2], data[3], data[4]]) as usize;
        if data.len() < 5 + len {
            break;
        }
        data.advance(5);
        out.push(data.split_to(len));
    }
    out
}
