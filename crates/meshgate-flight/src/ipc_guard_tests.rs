use std::sync::Arc;

use arrow::array::{
    ArrayRef, BooleanArray, DictionaryArray, Int64Array, ListArray, NullArray, RecordBatch as Batch, StringViewArray,
};
use arrow::datatypes::{Field as ArrowField, Int32Type, Schema};
use arrow::ipc::writer::IpcWriteOptions;
use arrow::ipc::{CompressionType, FieldBuilder, FloatingPointBuilder, MessageBuilder, SchemaBuilder};
use arrow_flight::encode::FlightDataEncoderBuilder;
use futures::TryStreamExt;

use super::*;

fn batch(columns: Vec<(&str, ArrayRef)>) -> Batch {
    let fields: Vec<ArrowField> =
        columns.iter().map(|(name, array)| ArrowField::new(*name, array.data_type().clone(), true)).collect();
    Batch::try_new(Arc::new(Schema::new(fields)), columns.into_iter().map(|(_, array)| array).collect())
        .unwrap_or_else(|error| panic!("{error}"))
}

async fn encoded_with(batch: Batch, options: IpcWriteOptions) -> Vec<FlightData> {
    let stream = FlightDataEncoderBuilder::new().with_options(options).build(futures::stream::iter([Ok(batch)]));
    stream.try_collect().await.unwrap_or_else(|error| panic!("{error}"))
}

async fn encoded(batch: Batch) -> Vec<FlightData> {
    encoded_with(batch, IpcWriteOptions::default()).await
}

/// The first message the guard refuses, with its error.
fn first_refusal(messages: &[FlightData]) -> Option<String> {
    let mut guard = IpcGuard::default();
    messages.iter().find_map(|data| guard.check(data).err().map(|error| error.to_string()))
}

#[tokio::test]
async fn what_clients_bind_passes() {
    let dictionary: DictionaryArray<Int32Type> = vec![Some("a"), None, Some("a"), Some("b")].into_iter().collect();
    let messages = encoded(batch(vec![
        ("$1", Arc::new(Int64Array::from(vec![Some(7), None, Some(1), Some(2)]))),
        ("$2", Arc::new(StringViewArray::from(vec![Some("a longer string than twelve"), None, Some("x"), Some("")]))),
        ("$3", Arc::new(BooleanArray::from(vec![Some(true), None, Some(false), Some(true)]))),
        ("$4", Arc::new(NullArray::new(4))),
        ("$5", Arc::new(dictionary)),
    ]))
    .await;
    assert_eq!(first_refusal(&messages), None);
}

#[tokio::test]
async fn union_wrapped_parameters_pass() {
    use arrow::array::{StringArray, UnionArray};
    use arrow::buffer::ScalarBuffer;
    use arrow::datatypes::{DataType, UnionFields};
    let fields = UnionFields::try_new(
        vec![0, 1],
        vec![ArrowField::new("int", DataType::Int64, true), ArrowField::new("str", DataType::Utf8, true)],
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let children: Vec<ArrayRef> = vec![Arc::new(Int64Array::from(vec![7])), Arc::new(StringArray::from(vec!["x"]))];
    let dense = UnionArray::try_new(
        fields.clone(),
        ScalarBuffer::from(vec![0_i8, 1]),
        Some(ScalarBuffer::from(vec![0_i32, 0])),
        children,
    )
    .unwrap_or_else(|error| panic!("{error}"));
    let sparse_children: Vec<ArrayRef> =
        vec![Arc::new(Int64Array::from(vec![Some(7), None])), Arc::new(StringArray::from(vec![None, Some("x")]))];
    let sparse = UnionArray::try_new(fields, ScalarBuffer::from(vec![0_i8, 1]), None, sparse_children)
        .unwrap_or_else(|error| panic!("{error}"));
    let messages = encoded(batch(vec![("$1", Arc::new(dense)), ("$2", Arc::new(sparse))])).await;
    assert_eq!(first_refusal(&messages), None);
}

#[tokio::test]
async fn a_buffer_past_the_body_is_refused() {
    let mut messages = encoded(batch(vec![("$1", Arc::new(Int64Array::from(vec![1, 2, 3])))])).await;
    let last = messages.len() - 1;
    // Three int64 values take 24 bytes: 8 leave the values buffer past the end.
    messages[last].data_body = messages[last].data_body.slice(..8);
    let error = first_refusal(&messages).unwrap_or_default();
    assert!(error.contains("lies outside its"), "{error}");
}

#[tokio::test]
async fn a_validity_bitmap_smaller_than_its_column_is_refused() {
    let values: Vec<Option<bool>> = (0..64).map(|i| (i % 3 != 0).then_some(i % 2 == 0)).collect();
    let mut messages = encoded(batch(vec![("$1", Arc::new(BooleanArray::from(values)))])).await;
    let last = messages.len() - 1;
    // The first buffer's length (offset, then length, 8 bytes each) set to 1 byte.
    let header = messages[last].data_header.to_vec();
    let position = {
        let message = root_as_message(&header).unwrap_or_else(|error| panic!("{error}"));
        let buffers = message.header_as_record_batch().and_then(|b| b.buffers()).unwrap_or_else(|| panic!("buffers"));
        buffers.bytes().as_ptr() as usize - header.as_ptr() as usize
    };
    let mut patched = header.clone();
    patched[position + 8..position + 16].copy_from_slice(&1_i64.to_le_bytes());
    messages[last].data_header = patched.into();
    let error = first_refusal(&messages).unwrap_or_default();
    assert!(error.contains("validity bitmap is smaller than its 64 rows"), "{error}");
}

#[tokio::test]
async fn compressed_batches_are_refused() {
    let options = IpcWriteOptions::default()
        .try_with_compression(Some(CompressionType::LZ4_FRAME))
        .unwrap_or_else(|error| panic!("{error}"));
    let messages = encoded_with(batch(vec![("$1", Arc::new(Int64Array::from(vec![1, 2, 3])))]), options).await;
    let error = first_refusal(&messages).unwrap_or_default();
    assert!(error.contains("is compressed"), "{error}");
}

#[tokio::test]
async fn rows_past_the_limit_are_refused_even_when_they_take_no_bytes() {
    let messages = encoded(batch(vec![("$1", Arc::new(NullArray::new(20_000)))])).await;
    let error = first_refusal(&messages).unwrap_or_default();
    assert!(error.contains("has 20000 rows; at most 10000"), "{error}");
}

#[tokio::test]
async fn nested_parameters_are_refused_by_name() {
    let list = ListArray::from_iter_primitive::<arrow::datatypes::Int64Type, _, _>(vec![Some(vec![Some(1)])]);
    let messages = encoded(batch(vec![("$1", Arc::new(list))])).await;
    let error = first_refusal(&messages).unwrap_or_default();
    assert!(error.contains("field \"$1\" is of type List; parameters are scalar values"), "{error}");
}

#[test]
fn a_schema_field_of_an_unknown_precision_is_refused() {
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
