//! The Flight service as served: the Flight SQL service, plus the plain Flight RPCs
//! arrow-flight's Flight SQL adapter answers with a fixed "unimplemented".
//!
//! - PollFlightInfo: a query is planned when its FlightInfo is made and runs when a
//!   ticket is redeemed, so the answer is complete at once (progress 1, no retry
//!   descriptor).
//! - GetSchema: the schema GetFlightInfo would announce, without running anything.
//! - ListFlights: meshgate has no standing flights; the answer names GetTables.
//! - ListActions: exactly the actions meshgate serves.

use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo, HandshakeRequest, PollInfo,
    SchemaResult, Ticket,
};
use futures::stream;
use tonic::{Request, Response, Status, Streaming};

use crate::actions::ACTIONS;
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
        FlightService::handshake(&self.0, request).await
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
        FlightService::get_flight_info(&self.0, request).await
    }

    async fn poll_flight_info(&self, request: Request<FlightDescriptor>) -> Result<Response<PollInfo>, Status> {
        let info = FlightService::get_flight_info(&self.0, request).await?.into_inner();
        Ok(Response::new(PollInfo {
            info: Some(info),
            flight_descriptor: None,
            progress: Some(1.0),
            expiration_time: None,
        }))
    }

    async fn get_schema(&self, request: Request<FlightDescriptor>) -> Result<Response<SchemaResult>, Status> {
        let info = FlightService::get_flight_info(&self.0, request).await?.into_inner();
        Ok(Response::new(SchemaResult { schema: info.schema }))
    }

    async fn do_get(&self, request: Request<Ticket>) -> Result<Response<Self::DoGetStream>, Status> {
        FlightService::do_get(&self.0, request).await
    }

    async fn do_put(&self, request: Request<Streaming<FlightData>>) -> Result<Response<Self::DoPutStream>, Status> {
        FlightService::do_put(&self.0, request).await
    }

    async fn do_action(&self, request: Request<Action>) -> Result<Response<Self::DoActionStream>, Status> {
        FlightService::do_action(&self.0, request).await
    }

    async fn list_actions(&self, _request: Request<Empty>) -> Result<Response<Self::ListActionsStream>, Status> {
        let prepared = [
            ("CreatePreparedStatement", "Prepare a statement: ActionCreatePreparedStatementRequest"),
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
        FlightService::do_exchange(&self.0, request).await
    }
}
