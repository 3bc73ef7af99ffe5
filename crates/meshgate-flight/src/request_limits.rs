//! The per-call limit on header size. HTTP/2 itself is given a much larger limit: past
//! its limit h2 refuses the call with a bare HTTP 431 (clients report UNKNOWN) or, for
//! larger blocks, closes the whole connection and every call on it. Checked here, an
//! oversized call is refused alone, with RESOURCE_EXHAUSTED and the sizes.

use std::convert::Infallible;
use std::task::{Context, Poll};

use futures::future::{BoxFuture, FutureExt};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower_service::Service;

/// Refuses calls whose headers take more than `max_bytes` (counted as HTTP/2 counts
/// them: name, value and 32 bytes per field).
#[derive(Debug, Clone)]
pub struct HeaderLimit<S> {
    inner: S,
    max_bytes: usize,
}

impl<S> HeaderLimit<S> {
    pub fn new(inner: S, max_bytes: usize) -> Self {
        Self { inner, max_bytes }
    }
}

impl<S: NamedService> NamedService for HeaderLimit<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for HeaderLimit<S>
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
        if size > self.max_bytes {
            let status = Status::resource_exhausted(format!(
                "the call's headers take {size} bytes; meshgate accepts at most {} bytes of headers per call",
                self.max_bytes
            ));
            return futures::future::ready(Ok(status.into_http())).boxed();
        }
        self.inner.call(request).boxed()
    }
}
