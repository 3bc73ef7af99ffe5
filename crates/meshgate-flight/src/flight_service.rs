//! The Flight service as served: the Flight SQL service, plus the plain Flight RPCs
//! arrow-flight's Flight SQL adapter answers with a fixed "unimplemented".
//!
//! - PollFlightInfo: a query is planned when its FlightInfo is made and runs when a
//!   ticket is redeemed, so the answer is complete at once (progress 1, no retry
//!   descriptor).
//! - GetSchema: the schema GetFlightInfo would announce, without running anything.
//! - ListFlights: meshgate has no standing flights; the answer names GetTables.
//! - ListActions: exactly the actions meshgate serves.
//!
//! The adapter reports a command or action body it cannot decode as INTERNAL; that is
//! the client's input, so it becomes INVALID_ARGUMENT here (see [`client_error`]).

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaResult, Ticket,
};
use futures::stream;
use tonic::{Request, Response, Status, Streaming};

use arrow_flight::sql::{ActionCreatePreparedSubstraitPlanRequest, Any, ProstMessageExt};
use prost::Message;

use crate::actions::ACTIONS;
use crate::auth::principal_of;
use crate::error::FlightError;
use crate::service::MeshFlightSqlService;

type Inner = MeshFlightSqlService;

#[derive(Clone)]
pub struct MeshFlightService(pub MeshFlightSqlService);

#[tonic::async_trait]
impl FlightService for MeshFlightService {
    type HandshakeStream = <Inner as FlightService>::HandshakeStream;
    type ListFlightsStream = <Inner as FlightService>::ListFlightsStream;
    type DoGetStream = <Inner as FlightService>::DoGetStream;
    type DoPutStream = <Inner as FlightService>::DoPutStream;
    type DoActionStream = <Inner as FlightService>::DoActionStream;
    type ListActionsStream = <Inner as FlightService>::ListActionsStream;
    type DoExchangeStream = <Inner as FlightService>::DoExchangeStream;

    async fn handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        FlightService::handshake(&self.0, request).await.map_err(client_error)
    }

    async fn list_flights(&self, _request: Request<Criteria>) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(FlightError::Unsupported(
            "ListFlights is not offered: meshgate has no standing flights; list products with the Flight SQL \
             GetTables command (ADBC: adbc_get_objects) and query them with CommandStatementQuery"
                .into(),
        )
        .into())
    }

    async fn get_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<FlightInfo>, Status> {
        FlightService::get_flight_info(&self.0, request).await.map_err(client_error)
    }

    async fn poll_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        let info = FlightService::get_flight_info(&self.0, request).await.map_err(client_error)?.into_inner();
        Ok(Response::new(PollInfo {
            info: Some(info),
            flight_descriptor: None,
            progress: Some(1.0),
            expiration_time: None,
        }))
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let info = FlightService::get_flight_info(&self.0, request).await.map_err(client_error)?.into_inner();
        Ok(Response::new(SchemaResult { schema: info.schema }))
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        FlightService::do_get(&self.0, request).await.map_err(client_error)
    }

    async fn do_put(&self, request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        FlightService::do_put(&self.0, request).await.map_err(client_error)
    }

    async fn do_action(&self, request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        if request.get_ref().r#type == CREATE_PREPARED_SUBSTRAIT_PLAN {
            return self.prepare_substrait(request).await;
        }
        FlightService::do_action(&self.0, request).await.map_err(client_error)
    }

    async fn list_actions(&self, _request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        let prepared = [
            ("CreatePreparedStatement", "Prepare a statement: ActionCreatePreparedStatementRequest"),
            (CREATE_PREPARED_SUBSTRAIT_PLAN, "Prepare a Substrait plan: ActionCreatePreparedSubstraitPlanRequest"),
            ("ClosePreparedStatement", "Close a prepared statement: ActionClosePreparedStatementRequest"),
        ];
        let actions: Vec<Result<ActionType, Status>> = prepared
            .into_iter()
            .chain(ACTIONS)
            .map(|(name, description)| Ok(ActionType { r#type: name.into(), description: description.into() }))
            .collect();
        Ok(Response::new(Box::pin(stream::iter(actions))))
    }

    async fn do_exchange(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        FlightService::do_exchange(&self.0, request).await.map_err(client_error)
    }
}

const CREATE_PREPARED_SUBSTRAIT_PLAN: &str = "CreatePreparedSubstraitPlan";

impl MeshFlightService {
    async fn prepare_substrait(
        &self,
        request: Request<Action>,
    ) -> Result<Response<<Self as FlightService>::DoActionStream>, Status> {
        let principal = principal_of(&request)?;
        let undecodable =
            || FlightError::BadRequest("CreatePreparedSubstraitPlan: the request cannot be decoded".into());
        let command: ActionCreatePreparedSubstraitPlanRequest = Any::decode(request.get_ref().body.as_ref())
            .ok()
            .and_then(|any| any.unpack().ok().flatten())
            .ok_or_else(undecodable)?;
        let result = self.0.prepare_substrait(command, &principal).await?;
        let body = arrow_flight::Result { body: result.as_any().encode_to_vec().into() };
        Ok(Response::new(Box::pin(stream::once(async { Ok(body) }))))
    }
}

/// arrow-flight answers a Flight SQL command (or action body) whose bytes do not
/// decode with INTERNAL and a Debug dump; it is the client's input, so say so.
fn client_error(status: Status) -> Status {
    const UNDECODABLE: &str = "ParseError(\"Unable to decode Any value: ";
    match status.message().strip_prefix(UNDECODABLE) {
        Some(detail) if status.code() == tonic::Code::Internal => {
            let detail = detail.trim_end_matches("\")").replace("\\\"", "\"");
            Status::invalid_argument(format!("the Flight SQL command cannot be decoded: {detail}"))
        }
        _ => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_commands_are_the_clients_error() {
        let status = Status::internal(
            "ParseError(\"Unable to decode Any value: failed to decode Protobuf message: invalid varint\")",
        );
        let mapped = client_error(status);
        assert_eq!(mapped.code(), tonic::Code::InvalidArgument);
        assert_eq!(
            mapped.message(),
            "the Flight SQL command cannot be decoded: failed to decode Protobuf message: invalid varint"
        );
        let ours = Status::internal("internal error in meshgate; the server log has the details");
        assert_eq!(client_error(ours).code(), tonic::Code::Internal);
    }
}
