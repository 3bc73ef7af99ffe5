//! Flight actions beyond prepared statements: session options (SetSessionOptions,
//! GetSessionOptions, CloseSession) and CancelFlightInfo.

use arrow_flight::sql::{Any, Command, TicketStatementQuery};
use arrow_flight::{Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus};
use futures::stream;
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status};

use crate::auth::principal_of;
use crate::error::FlightError;
use crate::proto::close_session_result::Status as CloseStatus;
use crate::proto::{
    CloseSessionResult, GetSessionOptionsResult, Purpose, SetSessionOptionsRequest, SetSessionOptionsResult,
};
use crate::service::MeshFlightSqlService;

const SET_SESSION_OPTIONS: &str = "SetSessionOptions";
const GET_SESSION_OPTIONS: &str = "GetSessionOptions";
const CLOSE_SESSION: &str = "CloseSession";
const CANCEL_FLIGHT_INFO: &str = "CancelFlightInfo";
const TRAINING_SNAPSHOT: &str = "meshgate.training_snapshot";

/// Actions served here, with their descriptions (for ListActions).
pub const ACTIONS: [(&str, &str); 5] = [
    (
        SET_SESSION_OPTIONS,
        "Set session options: catalog, schema, query_timeout_seconds, endpoints, time_zone, purpose, shards, provenance",
    ),
    (GET_SESSION_OPTIONS, "Get the session's options"),
    (CLOSE_SESSION, "Close the session"),
    (CANCEL_FLIGHT_INFO, "Cancel the queries behind a FlightInfo"),
    (
        TRAINING_SNAPSHOT,
        "The products a query reads, their files now and a fingerprint of the governing rules (JSON {\"sql\": ...})",
    ),
];

type ActionStream = <MeshFlightSqlService as arrow_flight::flight_service_server::FlightService>::DoActionStream;

impl MeshFlightSqlService {
    /// Actions the Flight SQL dispatcher does not know. Unknown ones are
    /// UNIMPLEMENTED (not INVALID_ARGUMENT), so clients fall back.
    pub(crate) async fn other_action(&self, request: Request<Action>) -> Result<Response<ActionStream>, Status> {
        let principal = principal_of(&request)?;
        let kind = request.get_ref().r#type.clone();
        match kind.as_str() {
            SET_SESSION_OPTIONS => {
                let body = SetSessionOptionsRequest::decode(request.get_ref().body.as_ref())
                    .map_err(|_| FlightError::BadRequest("SetSessionOptions: the request cannot be decoded".into()))?;
                let mut state = self.sessions.current(&request, &principal)?;
                let errors = self.sessions.set(&mut state, body.session_options, &self.engine(), &principal);
                let cookie = self.sessions.cookie(state, &principal);
                Ok(with_cookie(one_result(SetSessionOptionsResult { errors }.encode_to_vec()), &cookie))
            }
            GET_SESSION_OPTIONS => {
                let state = self.sessions.current(&request, &principal)?;
                let session_options = self.sessions.options(&state, &self.engine());
                Ok(one_result(GetSessionOptionsResult { session_options }.encode_to_vec()))
            }
            CLOSE_SESSION => {
                let state = self.sessions.current(&request, &principal)?;
                let cookie = self.sessions.close(&state);
                let result = CloseSessionResult { status: CloseStatus::Closed as i32 };
                Ok(with_cookie(one_result(result.encode_to_vec()), &cookie))
            }
            CANCEL_FLIGHT_INFO => {
                let body = CancelFlightInfoRequest::decode(request.get_ref().body.as_ref())
                    .map_err(|_| FlightError::BadRequest("CancelFlightInfo: the request cannot be decoded".into()))?;
                let status = self.cancel(&body, &principal)?;
                Ok(one_result(CancelFlightInfoResult::new(status).encode_to_vec()))
            }
            TRAINING_SNAPSHOT => {
                let body = crate::training::snapshot(self, &request, &principal).await?;
                Ok(one_result(body))
            }
            other => Err(FlightError::Unsupported(format!(
                "action '{other}' is not supported by meshgate; supported actions: CreatePreparedStatement, \
                 ClosePreparedStatement, {}",
                ACTIONS.map(|(name, _)| name).join(", ")
            ))
            .into()),
        }
    }

    /// Cancels the statement tickets of a FlightInfo issued to `principal`.
    pub(crate) fn cancel(
        &self,
        request: &CancelFlightInfoRequest,
        principal: &meshgate_policy::Principal,
    ) -> Result<CancelStatus, FlightError> {
        let info =
            request.info.as_ref().ok_or_else(|| FlightError::BadRequest("CancelFlightInfo: no FlightInfo".into()))?;
        let mut statements = 0;
        for endpoint in &info.endpoint {
            let Some(ticket) = &endpoint.ticket else { continue };
            let command = Any::decode(ticket.ticket.as_ref())
                .ok()
                .and_then(|any| Command::try_from(any).ok())
                .ok_or_else(|| FlightError::InvalidTicket("CancelFlightInfo: a ticket is not valid".into()))?;
            // Metadata answers are computed at once; there is nothing to cancel.
            let Command::TicketStatementQuery(TicketStatementQuery { statement_handle }) = command else { continue };
            let payload = self.signer().verify(&statement_handle, principal, Purpose::Ticket)?;
            self.cancellations.cancel(&statement_handle, payload.expires_at_ms);
            statements += 1;
        }
        Ok(if statements > 0 { CancelStatus::Cancelled } else { CancelStatus::NotCancellable })
    }
}

fn one_result(body: Vec<u8>) -> Response<ActionStream> {
    let result = arrow_flight::Result { body: body.into() };
    Response::new(Box::pin(stream::once(async { Ok(result) })))
}

fn with_cookie(mut response: Response<ActionStream>, cookie: &str) -> Response<ActionStream> {
    match MetadataValue::try_from(cookie) {
        Ok(value) => {
            response.metadata_mut().insert("set-cookie", value);
        }
        Err(_) => tracing::error!("cannot encode the session cookie"),
    }
    response
}
