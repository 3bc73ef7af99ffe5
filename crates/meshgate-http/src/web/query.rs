//! The catalog as the caller may read it: SQL on the `mesh_catalog` system tables,
//! planned and executed as the caller's principal, so the page is governed exactly
//! like SQL (forbidden products absent, denied columns absent, whole-product figures
//! NULL where rows are hidden). Results are small; they are collected as JSON rows.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, UInt64Type};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::common::ScalarValue;
use futures::TryStreamExt;
use meshgate_engine::{Engine, EngineError};
use meshgate_policy::Principal;
use serde_json::{Map, Value};

/// One result row: column name → value.
pub type Row = Map<String, Value>;

/// Runs `sql` as `principal` with `params` bound to `$1, $2, …` (as text).
pub async fn select(
    engine: &Engine,
    principal: &Arc<Principal>,
    sql: &str,
    params: &[&str],
) -> Result<Vec<Row>, EngineError> {
    let mut query = engine.plan(principal, sql).await?;
    if !params.is_empty() {
        query = query.bind(params.iter().map(|param| ScalarValue::Utf8(Some((*param).to_owned()))).collect())?;
    }
    let batches: Vec<RecordBatch> = query.execute().await?.try_collect().await?;
    let mut rows = Vec::new();
    for batch in &batches {
        let schema = batch.schema();
        for row in 0..batch.num_rows() {
            let mut values = Map::new();
            for (field, column) in schema.fields().iter().zip(batch.columns()) {
                values.insert(field.name().clone(), cell(column.as_ref(), row));
            }
            rows.push(values);
        }
    }
    Ok(rows)
}

/// One value as JSON: numbers, booleans, text, lists; anything else (timestamps) as
/// Arrow displays it (RFC 3339 for the system tables' UTC timestamps).
fn cell(array: &dyn Array, row: usize) -> Value {
    if array.is_null(row) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(row)),
        DataType::Int32 => array.as_primitive::<Int32Type>().value(row).into(),
        DataType::Int64 => array.as_primitive::<Int64Type>().value(row).into(),
        DataType::UInt64 => array.as_primitive::<UInt64Type>().value(row).into(),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row).into(),
        DataType::Utf8 => array.as_string::<i32>().value(row).into(),
        DataType::LargeUtf8 => array.as_string::<i64>().value(row).into(),
        DataType::Utf8View => array.as_string_view().value(row).into(),
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(row);
            (0..items.len()).map(|item| cell(items.as_ref(), item)).collect()
        }
        _ => match ArrayFormatter::try_new(array, &FormatOptions::default()) {
            Ok(formatter) => formatter.value(row).to_string().into(),
            Err(_) => Value::Null,
        },
    }
}

/// A text field of a row ("" when absent or not text).
pub fn text<'a>(row: &'a Row, name: &str) -> &'a str {
    row.get(name).and_then(Value::as_str).unwrap_or("")
}
