//! A panic anywhere in one call's work (planning, execution, encoding) ends that call
//! with INTERNAL and is logged; the server and every other call go on. Wraps the whole
//! gRPC service: the call's future and its response body are both guarded, so a
//! panic while a result streams ends the stream with an error status, never a
//! truncated result reported as complete.

use std::any::Any;
use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use http::HeaderMap;
use http_body::{Body as HttpBody, Frame, SizeHint};
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower_service::Service;

/// What the client is told; the panic's own message goes to the log only.
const MESSAGE: &str = "internal error in meshgate while running this call; the server log has the details";

/// Guards every call of `inner` against panics.
#[derive(Debug, Clone)]
pub struct CatchPanics<S> {
    inner: S,
}

impl<S> CatchPanics<S> {
    pub fn new(inner: S) -> Self {
        Self { inner }
    }
}

impl<S: NamedService> NamedService for CatchPanics<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<http::Request<Body>> for CatchPanics<S>
where
    S: Service<http::Request<Body>, Response = http::Response<B>, Error = Infallible> + Send + 'static,
    S::Future: Send + 'static,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let call = std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.call(request)));
        Box::pin(async move {
            let outcome = match call {
                Ok(future) => AssertUnwindSafe(future).catch_unwind().await,
                Err(panic) => Err(panic),
            };
            match outcome {
                Ok(Ok(response)) => {
                    Ok(response.map(|body| Body::new(GuardedBody { inner: Box::pin(body), path, ended: false })))
                }
                Ok(Err(never)) => match never {},
                Err(panic) => {
                    log_panic(&path, panic.as_ref());
                    Ok(Status::internal(MESSAGE).into_http())
                }
            }
        })
    }
}

/// A response body that ends with an INTERNAL status if producing it panics.
struct GuardedBody<B> {
    inner: Pin<Box<B>>,
    path: String,
    ended: bool,
}

impl<B> HttpBody for GuardedBody<B>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| self.inner.as_mut().poll_frame(cx)));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(None)) => Poll::Ready(None),
            Ok(Poll::Ready(Some(Ok(frame)))) => Poll::Ready(Some(Ok(frame))),
            Ok(Poll::Ready(Some(Err(error)))) => Poll::Ready(Some(Err(Status::from_error(error.into())))),
            Err(panic) => {
                self.ended = true;
                log_panic(&self.path, panic.as_ref());
                let mut trailers = HeaderMap::new();
                match Status::internal(MESSAGE).add_header(&mut trailers) {
                    Ok(()) => Poll::Ready(Some(Ok(Frame::trailers(trailers)))),
                    Err(status) => Poll::Ready(Some(Err(status))),
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        if self.ended { SizeHint::with_exact(0) } else { self.inner.size_hint() }
    }
}

fn log_panic(path: &str, panic: &(dyn Any + Send)) {
    let message = panic
        .downcast_ref::<&str>()
        .map(|text| (*text).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned());
    tracing::error!(call = %path, %message, "a call panicked; it ended with INTERNAL and the server keeps serving");
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[derive(Clone)]
    struct Panics;

    impl Service<http::Request<Body>> for Panics {
        type Response = http::Response<Body>;
        type Error = Infallible;
        type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: http::Request<Body>) -> Self::Future {
            let in_body = request.uri().path() == "/body";
            Box::pin(async move {
                if !in_body {
                    panic!("planning went wrong");
                }
                let frames = futures::stream::iter([0, 1]).map(|i| {
                    if i == 1 {
                        panic!("execution went wrong");
                    }
                    Ok::<_, Status>(Frame::data(Bytes::from_static(b"row")))
                });
                Ok(http::Response::new(Body::new(http_body_util::StreamBody::new(frames))))
            })
        }
    }

    use futures::StreamExt;

    #[tokio::test]
    async fn a_panic_in_the_call_is_internal() {
        let request = http::Request::builder().uri("/call").body(Body::empty()).unwrap();
        let response = CatchPanics::new(Panics).call(request).await.unwrap();
        assert_eq!(response.headers().get("grpc-status").unwrap(), "13");
    }

    #[tokio::test]
    async fn a_panic_while_streaming_ends_with_internal() {
        let request = http::Request::builder().uri("/body").body(Body::empty()).unwrap();
        let response = CatchPanics::new(Panics).call(request).await.unwrap();
        let collected = response.into_body().collect().await.unwrap();
        assert_eq!(collected.trailers().unwrap().get("grpc-status").unwrap(), "13");
        assert_eq!(collected.to_bytes(), Bytes::from_static(b"row"));
    }
}
