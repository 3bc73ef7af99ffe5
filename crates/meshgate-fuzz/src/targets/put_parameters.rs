//! DoPut of parameter batches (Arrow IPC in FlightData) for a prepared statement:
//! valid batches of every shape, then bytes flipped, cut and added, and the query run
//! with what the server accepted. A batch that does not decode, or does not fit the
//! statement's parameters, is refused with a status; nothing panics.

use std::sync::Arc;

use crate::{Call, harness};
use arbitrary::Arbitrary;
use arrow::array::{ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::sql::{Any, CommandPreparedStatementQuery, DoPutPreparedStatementResult, ProstMessageExt};
use arrow_flight::{FlightData, FlightDescriptor, FlightInfo};
use futures::TryStreamExt;
use prost::Message;

#[derive(Arbitrary, Debug)]
struct Input {
    /// Which valid batch to start from.
    base: u8,
    /// (message, byte, xor) flips in the encoded FlightData messages.
    flips: Vec<(u8, u16, u8)>,
    /// Cut a message short.
    cut: Option<(u8, u16)>,
    /// Messages added after the batch.
    extra: Vec<Vec<u8>>,
    /// Run the statement with the handle the server returned.
    run: bool,
}

fn base_batch(index: u8) -> RecordBatch {
    let column = |name: &str, array: ArrayRef| (name.to_owned(), array);
    let columns: Vec<(String, ArrayRef)> = match index % 7 {
        0 => vec![column("$1", Arc::new(Int64Array::from(vec![1_i64])))],
        1 => vec![column("$1", Arc::new(Int64Array::from(vec![1_i64, 7, 32])))],
        2 => vec![column("$1", Arc::new(StringArray::from(vec!["1"])))],
        3 => vec![column("$1", Arc::new(Int64Array::from(vec![None::<i64>])))],
        4 => vec![column("$1", Arc::new(Float64Array::from(vec![1.5])))],
        5 => vec![column("$1", Arc::new(Int32Array::from(vec![1]))), column("$2", Arc::new(Int32Array::from(vec![2])))],
        _ => vec![column("$1", Arc::new(Int64Array::from(Vec::<i64>::new())))],
    };
    let fields: Vec<Field> =
        columns.iter().map(|(name, array)| Field::new(name, array.data_type().clone(), true)).collect();
    let arrays = columns.into_iter().map(|(_, array)| array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap_or_else(|_| {
        RecordBatch::new_empty(Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, true)])))
    })
}

pub fn run(data: &[u8]) {
    let Ok(input) = <Input>::arbitrary_take_rest(arbitrary::Unstructured::new(data)) else { return };
    let harness = harness();
    let command = CommandPreparedStatementQuery { prepared_statement_handle: harness.handle_bytes.clone().into() };
    let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
    let batch = base_batch(input.base);
    let encoded: Vec<FlightData> = harness
        .runtime
        .block_on(
            FlightDataEncoderBuilder::new()
                .with_flight_descriptor(Some(descriptor.clone()))
                .build(futures::stream::iter([Ok(batch)]))
                .try_collect(),
        )
        .unwrap_or_default();
    let mut messages: Vec<Vec<u8>> = encoded.iter().map(Message::encode_to_vec).collect();
    for (message, byte, xor) in &input.flips {
        let count = messages.len();
        if count == 0 {
            break;
        }
        let bytes = &mut messages[usize::from(*message) % count];
        if !bytes.is_empty() {
            let at = usize::from(*byte) % bytes.len();
            bytes[at] ^= xor;
        }
    }
    if let Some((message, len)) = input.cut {
        let count = messages.len();
        if count > 0 {
            let bytes = &mut messages[usize::from(message) % count];
            bytes.truncate(usize::from(len));
        }
    }
    messages.extend(input.extra.iter().cloned());
    let Some(outcome) = harness.call(&Call::streaming("DoPut", &messages)) else { return };
    outcome.check(&input);
    if !(input.run && outcome.ok()) {
        return;
    }
    // The handle the server answered with (it carries the bound values).
    let Some(handle) = outcome
        .messages
        .first()
        .and_then(|message| arrow_flight::PutResult::decode(message.clone()).ok())
        .and_then(|put| Any::decode(put.app_metadata).ok())
        .and_then(|any| any.unpack::<DoPutPreparedStatementResult>().ok().flatten())
        .and_then(|result| result.prepared_statement_handle)
    else {
        return;
    };
    let command = CommandPreparedStatementQuery { prepared_statement_handle: handle };
    let descriptor = FlightDescriptor::new_cmd(command.as_any().encode_to_vec());
    let Some(info) = harness.call(&Call::unary("GetFlightInfo", &descriptor.encode_to_vec())) else { return };
    info.check(&input);
    let Some(info) = info.messages.first().and_then(|message| FlightInfo::decode(message.clone()).ok()) else {
        return;
    };
    for endpoint in info.endpoint {
        if let Some(ticket) = endpoint.ticket
            && let Some(outcome) = harness.call(&Call::unary("DoGet", &ticket.encode_to_vec()))
        {
            outcome.check(&input);
        }
    }
}
