//! DoGet tickets: forged bytes at every layer (the Ticket, the Any, the handle, the
//! signed envelope) are refused; validly signed payloads with any contents (SQL,
//! bound parameters, partitions, shards, schema, time zone, purpose) are answered
//! with a status, never a panic or a truncated stream.

use crate::{Call, harness};
use arbitrary::Arbitrary;
use arrow_flight::Ticket;
use arrow_flight::sql::{ProstMessageExt, TicketStatementQuery};
use meshgate_flight::proto::{Purpose, SignedEnvelope};
use prost::Message;

#[derive(Arbitrary, Debug)]
enum Input {
    /// The Ticket's bytes as they come.
    Raw(Vec<u8>),
    /// A statement ticket whose handle is forged.
    Handle(Vec<u8>),
    /// An envelope with a forged signature.
    Envelope { version: u32, payload: Vec<u8>, signature: Vec<u8> },
    /// Any bytes signed with the server's secret (as if it had issued them).
    Signed(Vec<u8>),
    /// A real ticket's payload, varied.
    Sealed(Payload),
}

#[derive(Arbitrary, Debug)]
struct Payload {
    sql: Option<String>,
    parameters: Option<Vec<u8>>,
    partition: u32,
    partitions: u32,
    default_schema: String,
    timeout_ms: u16,
    substrait_plan: Vec<u8>,
    time_zone: String,
    declared_purpose: String,
    prepared: bool,
    shard: u32,
    shards: u32,
    provenance: bool,
    shard_files: Vec<u8>,
    purpose: i32,
    other_principal: bool,
    expired: bool,
}

pub fn run(data: &[u8]) {
    let Ok(input) = <Input>::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else { return };
    let harness = harness();
    let (handle, forged) = match &input {
        Input::Raw(bytes) => {
            let call = Call::unary("DoGet", &Ticket { ticket: bytes.clone().into() }.encode_to_vec());
            if let Some(outcome) = harness.call(&call) {
                outcome.refused(&input);
            }
            return;
        }
        Input::Handle(bytes) => (bytes.clone(), true),
        Input::Envelope { version, payload, signature } => {
            let envelope = SignedEnvelope { version: *version, payload: payload.clone(), signature: signature.clone() };
            (envelope.encode_to_vec(), true)
        }
        Input::Signed(bytes) => (harness.signer.envelope(bytes.clone()).to_vec(), false),
        Input::Sealed(fields) => {
            let mut payload = harness.ticket.clone();
            if let Some(sql) = &fields.sql {
                payload.sql = sql.clone();
            }
            if let Some(parameters) = &fields.parameters {
                payload.parameters = parameters.clone();
            }
            payload.partition = fields.partition;
            payload.partitions = fields.partitions;
            payload.default_schema = fields.default_schema.clone();
            payload.timeout_ms = u64::from(fields.timeout_ms).clamp(1, 2000);
            payload.substrait_plan = fields.substrait_plan.clone();
            payload.time_zone = fields.time_zone.clone();
            payload.declared_purpose = fields.declared_purpose.clone();
            payload.prepared = fields.prepared;
            payload.shard = fields.shard;
            payload.shards = fields.shards;
            payload.provenance = fields.provenance;
            payload.shard_files = fields.shard_files.clone();
            payload.purpose = fields.purpose;
            if fields.other_principal {
                payload.principal = "0".repeat(32);
            }
            if fields.expired {
                payload.expires_at_ms = 1;
            }
            let forged = fields.other_principal || fields.expired || fields.purpose != Purpose::Ticket as i32;
            (harness.signer.envelope(payload.encode_to_vec()).to_vec(), forged)
        }
    };
    let ticket = TicketStatementQuery { statement_handle: handle.into() };
    let call = Call::unary("DoGet", &Ticket { ticket: ticket.as_any().encode_to_vec().into() }.encode_to_vec());
    if let Some(outcome) = harness.call(&call) {
        if forged {
            outcome.refused(&input);
        } else {
            outcome.check(&input);
        }
    }
}
