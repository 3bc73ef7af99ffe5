//! Limits every call's request meets before anything reads it, each answered with
//! RESOURCE_EXHAUSTED and the sizes, the call alone refused:
//! - headers: HTTP/2 itself is given a much larger limit, because past its limit h2
//!   refuses the call with a bare HTTP 431 (clients report UNKNOWN) or, for larger
//!   blocks, closes the whole connection and every call on it;
//! - request messages: each gRPC message's length prefix is read as the body streams
//!   in, so a message over the limit is refused before it is received, the same way
//!   for every method (tonic's own check answers OUT_OF_RANGE, and DoGet's statement
//!   route reads bodies itself).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::{BoxFuture, FutureExt};
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower_service::Service;

/// Refuses calls whose headers take more than `max_header_bytes` (counted as HTTP/2
/// counts them: name, value and 32 bytes per field), and request messages over
/// `max_message_bytes`.
#[derive(Debug, Clone)]
pub struct RequestLimits<S> {
    inner: S,
    max_header_bytes: usize,
    max_message_bytes: usize,
}

impl<S> RequestLimits<S> {
    pub fn new(inner: S, max_header_bytes: usize, max_message_bytes: usize) -> Self {
        Self { inner, max_header_bytes, max_message_bytes }
    }
}

impl<S: NamedService> NamedService for RequestLimits<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for RequestLimits<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let size: usize = request.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 32).sum();
        if size > self.max_header_bytes {
            let status = Status::resource_exhausted(format!(
                "the call's headers take {size} bytes; meshgate accepts at most {} bytes of headers per call",
                self.max_header_bytes
            ));
            return futures::future::ready(Ok(status.into_http())).boxed();
        }
        let limit = self.max_message_bytes;
        let request = request.map(|body| Body::new(MessageLimit::new(body, limit)));
        self.inner.call(request).boxed()
    }
}

/// A request body whose gRPC messages are checked against the limit from their
/// 5-byte prefixes (a flag byte, then the length, big-endian) as the data arrives.
struct MessageLimit {
    inner: Body,
    limit: usize,
    /// Bytes of the current message still to come (0: a prefix is next).
    remaining: usize,
    /// The prefix read so far, when it spans data frames.
    prefix: Vec<u8>,
    refused: bool,
}

impl MessageLimit {
    fn new(inner: Body, limit: usize) -> Self {
        Self { inner, limit, remaining: 0, prefix: Vec::with_capacity(5), refused: false }
    }

    /// Follows the message boundaries through `data`; the first message over the
    /// limit is an error.
    fn check(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let taken = self.remaining.min(data.len());
                self.remaining -= taken;
                data = &data[taken..];
                continue;
            }
            let wanted = 5 - self.prefix.len();
            let taken = wanted.min(data.len());
            self.prefix.extend_from_slice(&data[..taken]);
            data = &data[taken..];
            if self.prefix.len() == 5 {
                let length =
                    u32::from_be_bytes([self.prefix[1], self.prefix[2], self.prefix[3], self.prefix[4]]) as usize;
                self.prefix.clear();
                if length > self.limit {
                    return Err(Status::resource_exhausted(format!(
                        "a request message of {length} bytes is over meshgate's limit of {} bytes",
                        self.limit
                    )));
                }
                self.remaining = length;
            }
        }
        Ok(())
    }
}

impl HttpBody for MessageLimit {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.refused {
            return Poll::Ready(None);
        }
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref()
                    && let Err(status) = self.check(data)
                {
                    self.refused = true;
                    return Poll::Ready(Some(Err(status)));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            other => other,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.refused || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefix(length: u32) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&length.to_be_bytes());
        bytes
    }

    #[test]
    fn messages_within_the_limit_pass_across_frames() {
        let mut limit = MessageLimit::new(Body::empty(), 10);
        let mut stream = prefix(10);
        stream.extend_from_slice(&[7; 10]);
        stream.extend(prefix(3));
        stream.extend_from_slice(&[1, 2, 3]);
        for chunk in stream.chunks(3) {
            assert!(limit.check(chunk).is_ok());
        }
    }

    #[test]
    fn a_message_over_the_limit_is_refused_from_its_prefix() {
        let mut limit = MessageLimit::new(Body::empty(), 10);
        let mut stream = prefix(4);
        stream.extend_from_slice(&[0; 4]);
        stream.extend(prefix(11));
        assert!(limit.check(&stream[..6]).is_ok());
        let status = limit.check(&stream[6..]).err().unwrap_or_else(|| Status::ok(""));
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("11 bytes is over meshgate's limit of 10"), "{}", status.message());
    }
}
