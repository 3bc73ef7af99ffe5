//! Flight SQL commands (`Any`) and actions as any client could send them: every
//! command type meshgate knows and unknown ones, with any message inside, through
//! every RPC that takes a command or an action body. Each is answered with a status;
//! a command that is not a query never returns data it should not (the governance
//! targets check that), and nothing panics.

use crate::{Call, harness};
use arbitrary::Arbitrary;
use arrow_flight::sql::Any;
use arrow_flight::{Action, Criteria, FlightData, FlightDescriptor, HandshakeRequest, Ticket};
use prost::Message;

/// The commands of Flight SQL 1.x, and meshgate's own action names.
const COMMANDS: &[&str] = &[
    "CommandStatementQuery",
    "CommandStatementSubstraitPlan",
    "CommandPreparedStatementQuery",
    "CommandStatementUpdate",
    "CommandPreparedStatementUpdate",
    "CommandStatementIngest",
    "CommandGetCatalogs",
    "CommandGetDbSchemas",
    "CommandGetTables",
    "CommandGetTableTypes",
    "CommandGetSqlInfo",
    "CommandGetXdbcTypeInfo",
    "CommandGetPrimaryKeys",
    "CommandGetExportedKeys",
    "CommandGetImportedKeys",
    "CommandGetCrossReference",
    "TicketStatementQuery",
    "ActionCreatePreparedStatementRequest",
    "ActionCreatePreparedSubstraitPlanRequest",
    "ActionClosePreparedStatementRequest",
    "ActionBeginTransactionRequest",
    "ActionBeginSavepointRequest",
    "ActionEndTransactionRequest",
    "ActionEndSavepointRequest",
    "ActionCancelQueryRequest",
];

const ACTIONS: &[&str] = &[
    "CreatePreparedStatement",
    "CreatePreparedSubstraitPlan",
    "ClosePreparedStatement",
    "BeginTransaction",
    "EndTransaction",
    "BeginSavepoint",
    "EndSavepoint",
    "CancelQuery",
    "CancelFlightInfo",
    "RenewFlightEndpoint",
    "SetSessionOptions",
    "GetSessionOptions",
    "CloseSession",
    "meshgate.training_snapshot",
];

#[derive(Arbitrary, Debug)]
enum TypeUrl {
    Known(u8),
    Other(String),
}

#[derive(Arbitrary, Debug)]
enum Rpc {
    GetFlightInfo,
    GetSchema,
    PollFlightInfo,
    DoGet,
    DoPut(Vec<Vec<u8>>),
    DoAction(u8),
    DoActionNamed(String),
    ListFlights,
    ListActions,
    Handshake,
    /// The request body exactly as given (framing included).
    Raw(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    rpc: Rpc,
    type_url: TypeUrl,
    value: Vec<u8>,
    /// Send `value` without wrapping it in an `Any`.
    bare: bool,
}

const RPCS: &[&str] = &[
    "GetFlightInfo",
    "GetSchema",
    "PollFlightInfo",
    "DoGet",
    "DoPut",
    "DoAction",
    "ListFlights",
    "ListActions",
    "Handshake",
    "DoExchange",
];

pub fn run(data: &[u8]) {
    let Ok(input) = <Input>::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else { return };
    let harness = harness();
    let type_url = match &input.type_url {
        TypeUrl::Known(index) => {
            format!("type.googleapis.com/arrow.flight.protocol.sql.{}", COMMANDS[usize::from(*index) % COMMANDS.len()])
        }
        TypeUrl::Other(text) => text.clone(),
    };
    let command: Vec<u8> = if input.bare {
        input.value.clone()
    } else {
        Any { type_url, value: input.value.clone().into() }.encode_to_vec()
    };
    let descriptor = || FlightDescriptor::new_cmd(command.clone()).encode_to_vec();
    let call = match &input.rpc {
        Rpc::GetFlightInfo => Call::unary("GetFlightInfo", &descriptor()),
        Rpc::GetSchema => Call::unary("GetSchema", &descriptor()),
        Rpc::PollFlightInfo => Call::unary("PollFlightInfo", &descriptor()),
        Rpc::DoGet => Call::unary("DoGet", &Ticket { ticket: command.clone().into() }.encode_to_vec()),
        Rpc::DoPut(bodies) => {
            let first = FlightData {
                flight_descriptor: Some(FlightDescriptor::new_cmd(command.clone())),
                ..FlightData::default()
            };
            let mut messages = vec![first.encode_to_vec()];
            messages.extend(bodies.iter().cloned());
            Call::streaming("DoPut", &messages)
        }
        Rpc::DoAction(index) => {
            let kind = ACTIONS[usize::from(*index) % ACTIONS.len()];
            Call::unary("DoAction", &Action { r#type: kind.into(), body: command.clone().into() }.encode_to_vec())
        }
        Rpc::DoActionNamed(kind) => {
            Call::unary("DoAction", &Action { r#type: kind.clone(), body: command.clone().into() }.encode_to_vec())
        }
        Rpc::ListFlights => {
            Call::unary("ListFlights", &Criteria { expression: command.clone().into() }.encode_to_vec())
        }
        Rpc::ListActions => Call::unary("ListActions", &[]),
        Rpc::Handshake => {
            let request = HandshakeRequest { protocol_version: 0, payload: command.clone().into() };
            Call::unary("Handshake", &request.encode_to_vec())
        }
        Rpc::Raw(index) => {
            let method = RPCS[usize::from(*index) % RPCS.len()];
            Call { method, body: input.value.clone().into(), headers: Vec::new() }
        }
    };
    if let Some(outcome) = harness.call(&call) {
        outcome.check(&input);
    }
}
