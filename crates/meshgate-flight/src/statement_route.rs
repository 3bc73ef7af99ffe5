//! DoGet of a statement ticket, answered with zero-copy frames ([`crate::frames`]).
//! Every other call, and a DoGet of any other ticket, goes on to the Flight service
//! as usual. Sits behind the authenticating interceptor, so the principal is in the
//! request's extensions as for every RPC.

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use arrow_flight::Ticket;
use arrow_flight::sql::{Any, TicketStatementQuery};
use bytes::Bytes;
use futures::future::BoxFuture;
use futures::{Stream, StreamExt, stream};
use http::header::{CONTENT_TYPE, HeaderValue};
use http_body::Frame;
use http_body_util::{BodyExt, Full, Limited, StreamBody};
use meshgate_policy::Principal;
use prost::Message;
use tonic::Status;
use tonic::body::Body;
use tonic::server::NamedService;
use tower_service::Service;

use crate::auth::AuthError;
use crate::results::frame_stream;
use crate::service::MeshFlightSqlService;

const DO_GET_PATH: &str = "/arrow.flight.protocol.FlightService/DoGet";

/// Wraps the Flight service: statement DoGets are served here.
#[derive(Clone)]
pub struct StatementDoGet<S> {
    inner: S,
    service: MeshFlightSqlService,
    /// The server's message limit: the largest request body read and the largest
    /// message sent.
    max_message_bytes: usize,
}

impl<S> StatementDoGet<S> {
    pub fn new(inner: S, service: MeshFlightSqlService, max_message_bytes: usize) -> Self {
        Self { inner, service, max_message_bytes }
    }
}

impl<S: NamedService> NamedService for StatementDoGet<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<Body>> for StatementDoGet<S>
where
    S: Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        if request.uri().path() != DO_GET_PATH {
            return Box::pin(self.inner.call(request));
        }
        // The service made ready is the one that takes the call.
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let service = self.service.clone();
        let limit = self.max_message_bytes;
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let bytes = match Limited::new(body, limit).collect().await {
                Ok(collected) => collected.to_bytes(),
                Err(error) => {
                    let status = match error.downcast::<Status>() {
                        Ok(status) => *status,
                        Err(_) => Status::resource_exhausted(format!("the DoGet request is larger than {limit} bytes")),
                    };
                    return Ok(status.into_http());
                }
            };
            match statement_handle(&bytes) {
                Some(handle) => {
                    let notes = crate::audit::CallNotes::from_headers(|name| {
                        parts.headers.get(name).and_then(|value| value.to_str().ok()).map(str::to_owned)
                    });
                    Ok(serve_statement(&service, parts.extensions.get(), &handle, limit, notes).await)
                }
                // Not a statement ticket (or not one this route reads): the Flight
                // service answers it, errors included.
                None => inner.call(http::Request::from_parts(parts, Body::new(Full::new(bytes)))).await,
            }
        })
    }
}

/// The statement handle of a DoGet request body: one uncompressed gRPC message, a
/// `Ticket` holding `Any(TicketStatementQuery)`.
fn statement_handle(body: &[u8]) -> Option<Bytes> {
    let (&[compressed], rest) = body.split_first_chunk::<1>()?;
    let (len, message) = rest.split_first_chunk::<4>()?;
    if compressed != 0 || message.len() != u32::from_be_bytes(*len) as usize {
        return None;
    }
    let ticket = Ticket::decode(message).ok()?;
    let any = Any::decode(ticket.ticket).ok()?;
    Some(any.unpack::<TicketStatementQuery>().ok()??.statement_handle)
}

async fn serve_statement(
    service: &MeshFlightSqlService,
    principal: Option<&Arc<Principal>>,
    handle: &[u8],
    max_message_bytes: usize,
    notes: crate::audit::CallNotes,
) -> http::Response<Body> {
    let Some(principal) = principal else { return Status::from(AuthError::Missing).into_http() };
    match service.start_ticket(principal, handle, notes).await {
        Ok(results) => {
            let warnings = results.warnings.clone();
            grpc_response(frame_stream(results, max_message_bytes), warnings)
        }
        Err(status) => status.into_http(),
    }
}

/// A streaming gRPC response: the chunks as data, then the status as trailers (OK,
/// or the error that ended the stream), with the query's warnings.
fn grpc_response(
    chunks: impl Stream<Item = Result<Bytes, Status>> + Send + 'static,
    warnings: Vec<String>,
) -> http::Response<Body> {
    let frames = chunks.map(Some).chain(stream::once(async { None })).scan(false, move |ended, chunk| {
        if *ended {
            return std::future::ready(None);
        }
        let frame = match chunk {
            Some(Ok(bytes)) => Frame::data(bytes),
            Some(Err(status)) => {
                *ended = true;
                Frame::trailers(trailers(&status, &warnings))
            }
            None => {
                *ended = true;
                Frame::trailers(trailers(&Status::ok(""), &warnings))
            }
        };
        std::future::ready(Some(Ok::<_, Status>(frame)))
    });
    let mut response = http::Response::new(Body::new(StreamBody::new(frames)));
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    response
}

fn trailers(status: &Status, warnings: &[String]) -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    if let Err(unencodable) = status.add_header(&mut headers) {
        let _ = Status::internal(unencodable.message().to_owned()).add_header(&mut headers);
    }
    crate::warnings::append_headers(&mut headers, warnings);
    headers
}

#[cfg(test)]
mod tests {
    use arrow_flight::sql::ProstMessageExt;

    use super::*;

    fn request_body(ticket: Bytes) -> Vec<u8> {
        let message = Ticket { ticket }.encode_to_vec();
        let mut body = vec![0];
        body.extend((message.len() as u32).to_be_bytes());
        body.extend(message);
        body
    }

    #[test]
    fn statement_tickets_are_recognised_and_others_left_alone() {
        let handle = Bytes::from_static(b"signed handle");
        let statement = TicketStatementQuery { statement_handle: handle.clone() }.as_any().encode_to_vec();
        assert_eq!(statement_handle(&request_body(statement.clone().into())), Some(handle));
        let tables = arrow_flight::sql::CommandGetTables::default().as_any().encode_to_vec();
        assert_eq!(statement_handle(&request_body(tables.into())), None);
        assert_eq!(statement_handle(&request_body(Bytes::from_static(b"garbage"))), None);
        let mut truncated = request_body(statement.into());
        truncated.pop();
        assert_eq!(statement_handle(&truncated), None);
        assert_eq!(statement_handle(&[]), None);
    }
}
