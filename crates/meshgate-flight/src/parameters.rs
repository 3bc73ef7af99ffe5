//! Bound parameters of prepared statements: received over DoPut as Arrow batches,
//! carried inside the signed handle as IPC bytes (one row), turned into values.

use arrow::array::RecordBatch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use bytes::Bytes;
use datafusion::common::ScalarValue;

use crate::error::FlightError;

/// The one row of parameters a client bound, as IPC bytes for the handle.
pub fn encode(batches: &[RecordBatch]) -> Result<Bytes, FlightError> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let Some(first) = batches.iter().find(|batch| batch.num_rows() > 0) else {
        return Ok(Bytes::new());
    };
    if rows != 1 {
        return Err(FlightError::BadRequest(format!("bind exactly one row of parameters to a query, not {rows}")));
    }
    let mut bytes = Vec::new();
    let mut writer = StreamWriter::try_new(&mut bytes, &first.schema())?;
    writer.write(first)?;
    writer.finish()?;
    drop(writer);
    Ok(Bytes::from(bytes))
}

/// The values of `$1, $2, …` from a handle's parameter bytes (none when empty).
pub fn decode(bytes: &[u8]) -> Result<Vec<ScalarValue>, FlightError> {
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    let invalid = || FlightError::InvalidTicket("the bound parameters are not valid".into());
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None).map_err(|_| invalid())?;
    let mut values = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|_| invalid())?;
        if batch.num_rows() == 0 {
            continue;
        }
        for column in batch.columns() {
            let value = ScalarValue::try_from_array(column.as_ref(), 0).map_err(|_| invalid())?;
            values.push(hydrate(value));
        }
        break;
    }
    Ok(values)
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
