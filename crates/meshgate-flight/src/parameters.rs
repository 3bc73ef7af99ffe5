//! Bound parameters of prepared statements: received over DoPut as Arrow batches,
//! carried inside the signed handle as IPC bytes, turned into values.
//!
//! A client may bind several rows (ADBC binds a whole record batch; Flight SQL says
//! every bound parameter set is executed). A query bound to several rows answers
//! with one result: the rows of each parameter row's query, one query after the
//! other, in the order the rows were bound, each streamed as it runs.

use std::future::Future;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use datafusion::common::{DataFusionError, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use crate::error::FlightError;

/// The most parameter bytes a handle carries (the handle travels back to the client
/// and inside every ticket).
const MAX_PARAMETER_BYTES: usize = 1 << 20;

/// The rows of parameters a client bound, as IPC bytes for the handle.
pub fn encode(batches: &[RecordBatch]) -> Result<Bytes, FlightError> {
    let Some(first) = batches.iter().find(|batch| batch.num_rows() > 0) else {
        return Ok(Bytes::new());
    };
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, &first.schema())?;
    for batch in batches.iter().filter(|batch| batch.num_rows() > 0) {
        writer.write(batch)?;
    }
    writer.finish()?;
    drop(writer);
    if bytes.len() > MAX_PARAMETER_BYTES {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        return Err(FlightError::BadRequest(format!(
            "the {rows} bound parameter rows take {} bytes, over the limit of {MAX_PARAMETER_BYTES}; bind fewer \
             rows per execution",
            bytes.len()
        )));
    }
    Ok(Bytes::from(bytes))
}

/// The values of `$1, $2, …` of the first bound row (none when nothing is bound).
pub fn decode(bytes: &[u8]) -> Result<Vec<ScalarValue>, FlightError> {
    Ok(decode_rows(bytes)?.into_iter().next().unwrap_or_default())
}

/// Every bound row's values, in order (none when nothing is bound).
fn decode_rows(bytes: &[u8]) -> Result<Vec<Vec<ScalarValue>>, FlightError> {
    let mut rows = Vec::new();
    for batch in batches(bytes)? {
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|column| ScalarValue::try_from_array(column.as_ref(), row).map(hydrate))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| invalid())?;
            rows.push(values);
        }
    }
    Ok(rows)
}

fn batches(bytes: &[u8]) -> Result<Vec<RecordBatch>, FlightError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(|_| invalid())?;
    reader.map(|batch| batch.map_err(|_| invalid())).collect()
}

fn invalid() -> FlightError {
    FlightError::InvalidTicket("the bound parameters are not valid".into())
}

/// Whether more than one row of parameters is bound.
pub fn several_rows(bytes: &[u8]) -> Result<bool, FlightError> {
    Ok(batches(bytes)?.iter().map(RecordBatch::num_rows).sum::<usize>() > 1)
}

/// The parameter bytes of each bound row after the first, each on its own, for
/// planning that row's query like any single-row statement.
pub fn other_rows(bytes: &[u8]) -> Result<Vec<Vec<u8>>, FlightError> {
    let mut rows = Vec::new();
    for batch in batches(bytes)? {
        for row in 0..batch.num_rows() {
            rows.push(encode(&[batch.slice(row, 1)])?.to_vec());
        }
    }
    Ok(rows.into_iter().skip(1).collect())
}

/// The schema of a result: as planned, but with every column nullable when several
/// rows are bound (another row's values may make NULLs where the first row's did not).
pub fn result_schema(schema: SchemaRef, bytes: &[u8]) -> Result<SchemaRef, FlightError> {
    if !several_rows(bytes)? {
        return Ok(schema);
    }
    let fields: Vec<Field> = schema.fields().iter().map(|field| field.as_ref().clone().with_nullable(true)).collect();
    Ok(Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone())))
}

/// The first row's batches, then those of each other row's query, started by `run`
/// only when the previous one has ended: one query runs at a time and nothing is
/// collected.
pub fn chain_rows<F, Fut>(first: SendableRecordBatchStream, others: Vec<Vec<u8>>, run: F) -> SendableRecordBatchStream
where
    F: Fn(Vec<u8>) -> Fut + Send + 'static,
    Fut: Future<Output = Result<SendableRecordBatchStream, FlightError>> + Send + 'static,
{
    let schema = first.schema();
    let rest = futures::stream::iter(others)
        .then(run)
        .map(|started| match started {
            Ok(batches) => batches.boxed(),
            Err(error) => futures::stream::once(async move { Err(DataFusionError::External(Box::new(error))) }).boxed(),
        })
        .flatten();
    Box::pin(RecordBatchStreamAdapter::new(schema, first.chain(rest)))
}

/// Dictionary-encoded parameters are bound as their values, and so are dense or
/// sparse union values (how some clients send every parameter).
fn hydrate(value: ScalarValue) -> ScalarValue {
    match value {
        ScalarValue::Dictionary(_, inner) => hydrate(*inner),
        ScalarValue::Union(Some((_, inner)), _, _) => hydrate(*inner),
        ScalarValue::Union(None, _, _) => ScalarValue::Null,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Int64Array, StringArray};

    use super::*;

    fn rows(keys: &[i64]) -> RecordBatch {
        let names: Vec<String> = keys.iter().map(|key| format!("n{key}")).collect();
        RecordBatch::try_from_iter(vec![
            ("$1", Arc::new(Int64Array::from(keys.to_vec())) as _),
            ("$2", Arc::new(StringArray::from(names)) as _),
        ])
        .unwrap()
    }

    #[test]
    fn several_rows_round_trip_in_order() {
        let bytes = encode(&[rows(&[1, 2]), rows(&[]), rows(&[3])]).unwrap();
        assert!(several_rows(&bytes).unwrap());
        assert_eq!(decode(&bytes).unwrap(), vec![ScalarValue::Int64(Some(1)), ScalarValue::from("n1")]);
        let others = other_rows(&bytes).unwrap();
        assert_eq!(others.len(), 2);
        assert_eq!(decode(&others[1]).unwrap(), vec![ScalarValue::Int64(Some(3)), ScalarValue::from("n3")]);
        assert!(!several_rows(&others[0]).unwrap());
    }

    #[test]
    fn nothing_bound_is_no_values() {
        let bytes = encode(&[rows(&[])]).unwrap();
        assert!(bytes.is_empty());
        assert!(decode(&bytes).unwrap().is_empty());
        assert!(other_rows(&bytes).unwrap().is_empty());
    }

    #[test]
    fn too_many_bytes_are_refused_with_the_limit() {
        let keys: Vec<i64> = (0..100_000).collect();
        let error = encode(&[rows(&keys)]).unwrap_err().to_string();
        assert!(error.contains("100000 bound parameter rows") && error.contains("bind fewer"), "{error}");
    }
}
