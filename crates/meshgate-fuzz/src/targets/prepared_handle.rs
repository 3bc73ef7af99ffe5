//! Prepared-statement handles in every call that takes one (GetFlightInfo, GetSchema,
//! DoPut of parameters, ClosePreparedStatement): forged handles are refused; validly
//! signed ones with any contents are answered with a status, never a panic.

use crate::{Call, harness};
use arbitrary::Arbitrary;
use arrow_flight::sql::{ActionClosePreparedStatementRequest, CommandPreparedStatementQuery, ProstMessageExt};
use arrow_flight::{Action, FlightData, FlightDescriptor};
use meshgate_flight::proto::Purpose;
use prost::Message;

#[derive(Arbitrary, Debug)]
enum Handle {
    Forged(Vec<u8>),
    /// Any bytes signed with the server's secret.
    Signed(Vec<u8>),
    /// The real handle's payload, varied.
    Sealed {
        sql: Option<String>,
        parameters: Option<Vec<u8>>,
        default_schema: String,
        purpose: i32,
        expired: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum Rpc {
    GetFlightInfo,
    GetSchema,
    DoPut,
    Close,
}

pub fn run(data: &[u8]) {
    let Ok(input) = <(Handle, Rpc)>::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else { return };
    let harness = harness();
    let (handle, rpc) = &input;
    let (bytes, forged) = match handle {
        Handle::Forged(bytes) => (bytes.clone(), true),
        Handle::Signed(bytes) => (harness.signer.envelope(bytes.clone()).to_vec(), false),
        Handle::Sealed { sql, parameters, default_schema, purpose, expired } => {
            let mut payload = harness.handle.clone();
            if let Some(sql) = sql {
                payload.sql = sql.clone();
            }
            if let Some(parameters) = parameters {
                payload.parameters = parameters.clone();
            }
            payload.default_schema = default_schema.clone();
            payload.purpose = *purpose;
            if *expired {
                payload.expires_at_ms = 1;
            }
            let forged = *expired || *purpose != Purpose::PreparedStatement as i32;
            (harness.signer.envelope(payload.encode_to_vec()).to_vec(), forged)
        }
    };
    let command = CommandPreparedStatementQuery { prepared_statement_handle: bytes.clone().into() };
    let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
    let call = match rpc {
        Rpc::GetFlightInfo => Call::unary("GetFlightInfo", &descriptor.encode_to_vec()),
        Rpc::GetSchema => Call::unary("GetSchema", &descriptor.encode_to_vec()),
        Rpc::DoPut => {
            let first = FlightData { flight_descriptor: Some(descriptor), ..FlightData::default() };
            Call::streaming("DoPut", &[first.encode_to_vec()])
        }
        Rpc::Close => {
            let request = ActionClosePreparedStatementRequest { prepared_statement_handle: bytes.into() };
            let action =
                Action { r#type: "ClosePreparedStatement".into(), body: request.as_any().encode_to_vec().into() };
            Call::unary("DoAction", &action.encode_to_vec())
        }
    };
    if let Some(outcome) = harness.call(&call) {
        if forged {
            outcome.refused(&input);
        } else {
            outcome.check(&input);
        }
    }
}
