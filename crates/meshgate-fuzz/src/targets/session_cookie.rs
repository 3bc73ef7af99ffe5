//! Session cookies on session and query calls: a forged or foreign cookie is refused
//! (never silently dropped), a validly signed state with any options is answered with
//! a status, and SetSessionOptions takes any option names and values without a panic.

use crate::{Call, harness};
use arbitrary::Arbitrary;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use arrow_flight::{Action, FlightDescriptor};
use meshgate_flight::proto::session_option_value::{OptionValue, StringListValue};
use meshgate_flight::proto::{SessionOptionValue, SetSessionOptionsRequest};
use prost::Message;

#[derive(Arbitrary, Debug)]
enum Cookie {
    None,
    /// The whole cookie header as sent.
    Header(String),
    /// The session cookie's value forged.
    Forged(Vec<u8>),
    /// A real session's state, varied.
    Sealed {
        schema: String,
        query_timeout_ms: u64,
        endpoints: String,
        time_zone: String,
        purpose: String,
        shards: u32,
        provenance: bool,
        other_principal: bool,
        expired: bool,
    },
}

#[derive(Arbitrary, Debug)]
enum Value {
    Text(String),
    Flag(bool),
    Whole(i64),
    Real(f64),
    List(Vec<String>),
    Empty,
}

#[derive(Arbitrary, Debug)]
enum Rpc {
    Query(bool),
    Set(Vec<(String, Value)>),
    Get,
    Close,
}

pub fn run(data: &[u8]) {
    let Ok(input) = <(Cookie, Rpc)>::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else { return };
    let harness = harness();
    let (cookie, rpc) = &input;
    let call = match rpc {
        Rpc::Query(cross_domain) => {
            let query = if *cross_domain {
                "SELECT count(*) FROM orders o JOIN customers.customer c ON o.o_custkey = c.c_custkey"
            } else {
                "SELECT o_orderkey, o_totalprice FROM orders ORDER BY o_orderkey LIMIT 3"
            };
            let command = CommandStatementQuery { query: query.into(), transaction_id: None };
            let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
            Call::unary("GetFlightInfo", &descriptor.encode_to_vec())
        }
        Rpc::Set(options) => {
            let session_options = options
                .iter()
                .map(|(name, value)| {
                    let value = match value {
                        Value::Text(text) => Some(OptionValue::StringValue(text.clone())),
                        Value::Flag(flag) => Some(OptionValue::BoolValue(*flag)),
                        Value::Whole(whole) => Some(OptionValue::Int64Value(*whole)),
                        Value::Real(real) => Some(OptionValue::DoubleValue(*real)),
                        Value::List(values) => {
                            Some(OptionValue::StringListValue(StringListValue { values: values.clone() }))
                        }
                        Value::Empty => None,
                    };
                    (name.clone(), SessionOptionValue { option_value: value })
                })
                .collect();
            let request = SetSessionOptionsRequest { session_options };
            action("SetSessionOptions", request.encode_to_vec())
        }
        Rpc::Get => action("GetSessionOptions", Vec::new()),
        Rpc::Close => action("CloseSession", Vec::new()),
    };
    let (call, forged) = match cookie {
        Cookie::None => (call, false),
        Cookie::Header(header) => (call.header("cookie", header.clone()), false),
        Cookie::Forged(bytes) => {
            use base64::Engine as _;
            let value = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
            // An empty value is no cookie: the call starts a fresh session.
            (call.header("cookie", format!("arrow_flight_session_id={value}")), !bytes.is_empty())
        }
        Cookie::Sealed {
            schema,
            query_timeout_ms,
            endpoints,
            time_zone,
            purpose,
            shards,
            provenance,
            other_principal,
            expired,
        } => {
            let mut state = harness.session.clone();
            state.schema = schema.clone();
            state.query_timeout_ms = *query_timeout_ms;
            state.endpoints = endpoints.clone();
            state.time_zone = time_zone.clone();
            state.purpose = purpose.clone();
            state.shards = *shards;
            state.provenance = *provenance;
            if *other_principal {
                state.principal = "0".repeat(32);
            }
            if *expired {
                state.expires_at_ms = 1;
            }
            (call.header("cookie", harness.cookie(&state)), *other_principal || *expired)
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

fn action(kind: &str, body: Vec<u8>) -> Call {
    Call::unary("DoAction", &Action { r#type: kind.into(), body: body.into() }.encode_to_vec())
}
