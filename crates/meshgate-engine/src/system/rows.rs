//! Building a system table's batch row by row: each table declares its schema once
//! and pushes one row of [`Cell`]s at a time.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, SchemaRef, TimeUnit};
use datafusion::common::{DataFusionError, Result};

/// One value of a row.
#[derive(Debug, Clone)]
pub(crate) enum Cell<'a> {
    Str(Option<&'a str>),
    Strs(Vec<&'a str>),
    Int(Option<i64>),
    Float(Option<f64>),
    /// Milliseconds since the epoch, UTC.
    Time(Option<i64>),
    Bool(Option<bool>),
}

pub(crate) fn text(value: &str) -> Cell<'_> {
    Cell::Str(Some(value))
}

pub(crate) fn texts<'a>(values: impl IntoIterator<Item = &'a String>) -> Cell<'a> {
    Cell::Strs(values.into_iter().map(String::as_str).collect())
}

/// The field of a column of text lists.
pub(crate) fn text_list(name: &str) -> Field {
    Field::new(name, DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))), false)
}

/// The field of a UTC timestamp column.
pub(crate) fn time(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())), nullable)
}

enum Builder {
    Str(StringBuilder),
    Strs(ListBuilder<StringBuilder>),
    Int(Int64Builder),
    Float(Float64Builder),
    Time(TimestampMillisecondBuilder),
    Bool(BooleanBuilder),
}

/// A batch under construction.
pub(crate) struct Rows {
    schema: SchemaRef,
    builders: Vec<Builder>,
}

impl Rows {
    pub fn new(schema: SchemaRef) -> Self {
        let builders = schema
            .fields()
            .iter()
            .map(|field| match field.data_type() {
                DataType::Int64 => Builder::Int(Int64Builder::new()),
                DataType::Float64 => Builder::Float(Float64Builder::new()),
                DataType::Boolean => Builder::Bool(BooleanBuilder::new()),
                DataType::Timestamp(..) => Builder::Time(TimestampMillisecondBuilder::new().with_timezone("UTC")),
                DataType::List(_) => Builder::Strs(ListBuilder::new(StringBuilder::new())),
                _ => Builder::Str(StringBuilder::new()),
            })
            .collect();
        Self { schema, builders }
    }

    /// Appends one row; its cells must match the schema column by column.
    pub fn push(&mut self, cells: Vec<Cell<'_>>) -> Result<()> {
        if cells.len() != self.builders.len() {
            return Err(DataFusionError::Internal(format!(
                "system table row has {} cells for {} columns",
                cells.len(),
                self.builders.len()
            )));
        }
        for (index, (builder, cell)) in self.builders.iter_mut().zip(cells).enumerate() {
            match (builder, cell) {
                (Builder::Str(b), Cell::Str(v)) => b.append_option(v),
                (Builder::Strs(b), Cell::Strs(values)) => {
                    for value in values {
                        b.values().append_value(value);
                    }
                    b.append(true);
                }
                (Builder::Int(b), Cell::Int(v)) => b.append_option(v),
                (Builder::Float(b), Cell::Float(v)) => b.append_option(v),
                (Builder::Time(b), Cell::Time(v)) => b.append_option(v),
                (Builder::Bool(b), Cell::Bool(v)) => b.append_option(v),
                (_, cell) => {
                    return Err(DataFusionError::Internal(format!(
                        "system table cell {cell:?} does not fit column {}",
                        self.schema.field(index).name()
                    )));
                }
            }
        }
        Ok(())
    }

    pub fn finish(self) -> Result<RecordBatch> {
        let columns: Vec<ArrayRef> = self
            .builders
            .into_iter()
            .map(|builder| -> ArrayRef {
                match builder {
                    Builder::Str(mut b) => Arc::new(b.finish()),
                    Builder::Strs(mut b) => Arc::new(b.finish()),
                    Builder::Int(mut b) => Arc::new(b.finish()),
                    Builder::Float(mut b) => Arc::new(b.finish()),
                    Builder::Time(mut b) => Arc::new(b.finish()),
                    Builder::Bool(mut b) => Arc::new(b.finish()),
                }
            })
            .collect();
        Ok(RecordBatch::try_new(self.schema, columns)?)
    }
}
