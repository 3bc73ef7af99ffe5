//! Bound parameters arrive as Arrow IPC messages in FlightData, from any client.
//! arrow-ipc's reader panics on some malformed messages: a schema field whose type
//! table is missing or has an unknown unit, precision or bit width, a list without
//! its child; a batch buffer reaching past the message body; more variadic buffer
//! counts than view arrays. All of those are checked here, before the reader sees the
//! message, so a malformed stream is a bad request like any other.

use arrow::datatypes::DataType;
use arrow::ipc::{
    DateUnit, Endianness, Field, IntervalUnit, MessageHeader, Precision, RecordBatch, TimeUnit, Type, root_as_message,
};
use arrow_flight::FlightData;
use arrow_flight::error::FlightError;

/// Checks the messages of one IPC stream in order (the schema first).
#[derive(Debug, Default)]
pub(crate) struct IpcGuard {
    /// View arrays (Utf8View, BinaryView) in a record batch of the stream's schema.
    views: usize,
}

impl IpcGuard {
    pub(crate) fn check(&mut self, data: &FlightData) -> Result<(), FlightError> {
        if data.data_header.is_empty() {
            return Ok(());
        }
        let message = root_as_message(&data.data_header)
            .map_err(|error| FlightError::DecodeError(format!("not an Arrow IPC message: {error}")))?;
        let body = data.data_body.len();
        match message.header_type() {
            MessageHeader::Schema => {
                if let Some(schema) = message.header_as_schema() {
                    check_schema(&schema).map_err(|problem| {
                        FlightError::DecodeError(format!("the stream's schema cannot be read: {problem}"))
                    })?;
                    let schema = arrow::ipc::convert::fb_to_schema(schema);
                    self.views = schema.fields().iter().map(|field| views_in(field.data_type())).sum();
                }
                Ok(())
            }
            MessageHeader::RecordBatch => match message.header_as_record_batch() {
                Some(batch) => check_batch(&batch, body, self.views, "record batch"),
                None => Ok(()),
            },
            MessageHeader::DictionaryBatch => match message.header_as_dictionary_batch().and_then(|d| d.data()) {
                Some(batch) => check_batch(&batch, body, 0, "dictionary batch"),
                None => Ok(()),
            },
            _ => Ok(()),
        }
    }
}

fn check_batch(batch: &RecordBatch, body: usize, views: usize, what: &str) -> Result<(), FlightError> {
    for (index, buffer) in batch.buffers().iter().flatten().enumerate() {
        let end = usize::try_from(buffer.offset())
            .ok()
            .zip(usize::try_from(buffer.length()).ok())
            .and_then(|(offset, length)| offset.checked_add(length));
        if end.is_none_or(|end| end > body) {
            return Err(FlightError::DecodeError(format!(
                "buffer {index} of the {what} (offset {}, length {}) lies outside its {body}-byte body",
                buffer.offset(),
                buffer.length()
            )));
        }
    }
    let counts = batch.variadicBufferCounts().map_or(0, |counts| counts.len());
    if counts > views {
        return Err(FlightError::DecodeError(format!(
            "the {what} gives {counts} variadic buffer counts for {views} view columns"
        )));
    }
    Ok(())
}

fn check_schema(schema: &arrow::ipc::Schema) -> Result<(), String> {
    let fields = schema.fields().ok_or("it has no fields")?;
    if schema.endianness() == Endianness::Big {
        return Err("big-endian data is not supported".into());
    }
    fields.iter().try_for_each(check_field)
}

/// What arrow-ipc's schema conversion takes for granted about a field.
fn check_field(field: Field) -> Result<(), String> {
    let name = field.name().unwrap_or_default();
    let bad = |what: &str| Err(format!("field {name:?}: {what}"));
    if let Some(dictionary) = field.dictionary() {
        match dictionary.indexType() {
            Some(index) if [8, 16, 32, 64].contains(&index.bitWidth()) => {}
            _ => return bad("its dictionary has no valid index type"),
        }
    }
    let children = field.children().map_or(0, |children| children.len());
    let ok = match field.type_type() {
        Type::Null | Type::Bool | Type::Binary | Type::BinaryView | Type::LargeBinary => true,
        Type::Utf8 | Type::Utf8View | Type::LargeUtf8 | Type::Struct_ => true,
        Type::Int => field.type_as_int().is_some_and(|int| [8, 16, 32, 64].contains(&int.bitWidth())),
        Type::FixedSizeBinary => field.type_as_fixed_size_binary().is_some_and(|fsb| fsb.byteWidth() >= 0),
        Type::FloatingPoint => {
            field.type_as_floating_point().is_some_and(|float| Precision::ENUM_VALUES.contains(&float.precision()))
        }
        Type::Date => field.type_as_date().is_some_and(|date| DateUnit::ENUM_VALUES.contains(&date.unit())),
        Type::Time => field.type_as_time().is_some_and(|time| {
            matches!(
                (time.bitWidth(), time.unit()),
                (32, TimeUnit::SECOND | TimeUnit::MILLISECOND) | (64, TimeUnit::MICROSECOND | TimeUnit::NANOSECOND)
            )
        }),
        Type::Timestamp => field.type_as_timestamp().is_some_and(|ts| TimeUnit::ENUM_VALUES.contains(&ts.unit())),
        Type::Interval => field.type_as_interval().is_some_and(|i| IntervalUnit::ENUM_VALUES.contains(&i.unit())),
        Type::Duration => field.type_as_duration().is_some_and(|d| TimeUnit::ENUM_VALUES.contains(&d.unit())),
        Type::List | Type::LargeList | Type::ListView | Type::LargeListView => children == 1,
        Type::FixedSizeList => children == 1 && field.type_as_fixed_size_list().is_some_and(|l| l.listSize() >= 0),
        Type::Map => children == 1 && field.type_as_map().is_some(),
        Type::RunEndEncoded => children == 2,
        Type::Decimal => field.type_as_decimal().is_some_and(|decimal| {
            [32, 64, 128, 256].contains(&decimal.bitWidth())
                && u8::try_from(decimal.precision()).is_ok()
                && i8::try_from(decimal.scale()).is_ok()
        }),
        // Unions (whose type ids arrow-ipc trusts) and anything newer: not parameters.
        other => return bad(&format!("type {other:?} is not supported")),
    };
    if !ok {
        return bad(&format!("its {:?} type is malformed", field.type_type()));
    }
    field.children().into_iter().flatten().try_for_each(check_field)
}

/// View arrays a column of `data_type` holds in a record batch (dictionary values
/// travel in dictionary batches).
fn views_in(data_type: &DataType) -> usize {
    match data_type {
        DataType::Utf8View | DataType::BinaryView => 1,
        DataType::List(child)
        | DataType::LargeList(child)
        | DataType::ListView(child)
        | DataType::LargeListView(child)
        | DataType::FixedSizeList(child, _)
        | DataType::Map(child, _) => views_in(child.data_type()),
        DataType::Struct(fields) => fields.iter().map(|field| views_in(field.data_type())).sum(),
        DataType::Union(fields, _) => fields.iter().map(|(_, field)| views_in(field.data_type())).sum(),
        DataType::RunEndEncoded(_, values) => views_in(values.data_type()),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch as Batch, StringViewArray};
    use arrow::datatypes::{Field, Schema};
    use arrow_flight::encode::FlightDataEncoderBuilder;
    use futures::TryStreamExt;

    use super::*;

    async fn encoded(batch: Batch) -> Vec<FlightData> {
        let stream = FlightDataEncoderBuilder::new().build(futures::stream::iter([Ok(batch)]));
        stream.try_collect().await.unwrap_or_default()
    }

    fn batch() -> Batch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Int64, true),
            Field::new("$2", DataType::Utf8View, true),
        ]));
        Batch::try_new(
            schema,
            vec![Arc::new(Int64Array::from(vec![7])), Arc::new(StringViewArray::from(vec!["a longer string than twelve"]))],
        )
        .unwrap_or_else(|error| panic!("{error}"))
    }

    #[tokio::test]
    async fn a_valid_stream_passes() {
        let mut guard = IpcGuard::default();
        for data in encoded(batch()).await {
            assert!(guard.check(&data).is_ok());
        }
        assert_eq!(guard.views, 1);
    }

    #[test]
    fn a_schema_field_of_an_unknown_precision_is_refused() {
        use arrow::ipc::{FieldBuilder, FloatingPointBuilder, MessageBuilder, SchemaBuilder};
        let mut fbb = flatbuffers::FlatBufferBuilder::new();
        let float = {
            let mut builder = FloatingPointBuilder::new(&mut fbb);
            builder.add_precision(Precision(16_898));
            builder.finish()
        };
        let name = fbb.create_string("$1");
        let field = {
            let mut builder = FieldBuilder::new(&mut fbb);
            builder.add_name(name);
            builder.add_type_type(Type::FloatingPoint);
            builder.add_type_(float.as_union_value());
            builder.finish()
        };
        let fields = fbb.create_vector(&[field]);
        let schema = {
            let mut builder = SchemaBuilder::new(&mut fbb);
            builder.add_fields(fields);
            builder.finish()
        };
        let message = {
            let mut builder = MessageBuilder::new(&mut fbb);
            builder.add_version(arrow::ipc::MetadataVersion::V5);
            builder.add_header_type(MessageHeader::Schema);
            builder.add_header(schema.as_union_value());
            builder.finish()
        };
        fbb.finish(message, None);
        let data = FlightData { data_header: fbb.finished_data().to_vec().into(), ..FlightData::default() };
        let error = IpcGuard::default().check(&data).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("field \"$1\": its FloatingPoint type is malformed"), "{error}");
    }

    #[tokio::test]
    async fn a_buffer_past_the_body_is_refused() {
        let mut messages = encoded(batch()).await;
        let mut guard = IpcGuard::default();
        assert!(guard.check(&messages[0]).is_ok());
        let last = messages.len() - 1;
        let body = messages[last].data_body.len();
        messages[last].data_body = messages[last].data_body.slice(..body / 2);
        let error = guard.check(&messages[last]).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(error.contains("lies outside its"), "{error}");
    }
}
