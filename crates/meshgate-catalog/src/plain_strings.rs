//! Parquet strings decoded in the type the table asks for.
//!
//! Files written from string views (DataFusion, tpchgen, arrow-rs writers) carry an
//! Arrow schema hint saying `Utf8View`. DataFusion 55 takes the hint both when it
//! infers a table's schema (views even with `schema_force_view_types` off) and when
//! it decodes a file (views even for a plain `Utf8` column: it coerces plain to view,
//! never view to plain). meshgate sends plain strings unless asked for views, so such
//! files were decoded into views and every batch cast back to `Utf8`: a second pass
//! over every string. Here inferred schemas are made plain ([`plain_schema`]) and
//! the hint's view types are read as plain ones ([`plain_string_reads`]), so the
//! decoder builds what the table holds; a table that holds views (`--view-types`)
//! still gets them, as DataFusion coerces plain to view while opening the file.

use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Fields, Schema};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetFileReaderFactory, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::arrow::{ARROW_SCHEMA_META_KEY, encode_arrow_schema, parquet_to_arrow_schema};
use datafusion::parquet::errors::Result as ParquetResult;
use datafusion::parquet::file::metadata::{FileMetaData, KeyValue, ParquetMetaData, ParquetMetaDataBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;

/// `plan` with its Parquet files read through [`PlainStringHints`]; any other plan
/// as it is.
pub fn plain_string_reads(plan: Arc<dyn ExecutionPlan>) -> Arc<dyn ExecutionPlan> {
    let Some(exec) = plan.downcast_ref::<DataSourceExec>() else { return plan };
    let Some((config, source)) = exec.downcast_to_file_source::<ParquetSource>() else { return plan };
    let Some(factory) = source.parquet_file_reader_factory() else { return plan };
    let source = source.clone().with_parquet_file_reader_factory(Arc::new(PlainStringHints(Arc::clone(factory))));
    DataSourceExec::from_data_source(FileScanConfigBuilder::from(config.clone()).with_source(Arc::new(source)).build())
}

/// Wraps a reader factory: the metadata its readers return has view types in the
/// Arrow schema hint replaced by plain ones.
#[derive(Debug)]
struct PlainStringHints(Arc<dyn ParquetFileReaderFactory>);

impl ParquetFileReaderFactory for PlainStringHints {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> datafusion::error::Result<Box<dyn AsyncFileReader + Send>> {
        let inner = self.0.create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(PlainStringReader(inner)))
    }
}

struct PlainStringReader(Box<dyn AsyncFileReader + Send>);

impl AsyncFileReader for PlainStringReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, ParquetResult<Bytes>> {
        self.0.get_bytes(range)
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, ParquetResult<Vec<Bytes>>> {
        self.0.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, ParquetResult<Arc<ParquetMetaData>>> {
        async move { without_view_hints(self.0.get_metadata(options).await?) }.boxed()
    }
}

/// `metadata` with view types in its Arrow schema hint made plain (itself when the
/// hint has none).
fn without_view_hints(metadata: Arc<ParquetMetaData>) -> ParquetResult<Arc<ParquetMetaData>> {
    let file = metadata.file_metadata();
    let Some(pairs) = file.key_value_metadata() else { return Ok(metadata) };
    if !pairs.iter().any(|pair| pair.key == ARROW_SCHEMA_META_KEY) {
        return Ok(metadata);
    }
    let hinted = parquet_to_arrow_schema(file.schema_descr(), Some(pairs))?;
    let plain = plain_schema(&hinted);
    if plain == hinted {
        return Ok(metadata);
    }
    let hint = encode_arrow_schema(&plain);
    let pairs = pairs
        .iter()
        .map(|pair| {
            if pair.key == ARROW_SCHEMA_META_KEY { KeyValue::new(pair.key.clone(), hint.clone()) } else { pair.clone() }
        })
        .collect();
    let file = FileMetaData::new(
        file.version(),
        file.num_rows(),
        file.created_by().map(str::to_owned),
        Some(pairs),
        file.schema_descr_ptr(),
        file.column_orders().cloned(),
    );
    let mut rest = ParquetMetaDataBuilder::new_from_metadata(metadata.as_ref().clone());
    Ok(Arc::new(
        ParquetMetaDataBuilder::new(file)
            .set_row_groups(rest.take_row_groups())
            .set_column_index(rest.take_column_index())
            .set_offset_index(rest.take_offset_index())
            .build(),
    ))
}

/// `schema` with every view type made plain, nested ones included.
pub fn plain_schema(schema: &Schema) -> Schema {
    Schema::new_with_metadata(plain_fields(schema.fields()), schema.metadata().clone())
}

fn plain_fields(fields: &Fields) -> Fields {
    fields.iter().map(plain_field).collect()
}

fn plain_field(field: &FieldRef) -> FieldRef {
    let plain = match field.data_type() {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(item) => DataType::List(plain_field(item)),
        DataType::LargeList(item) => DataType::LargeList(plain_field(item)),
        DataType::FixedSizeList(item, len) => DataType::FixedSizeList(plain_field(item), *len),
        DataType::Struct(fields) => DataType::Struct(plain_fields(fields)),
        DataType::Map(entries, sorted) => DataType::Map(plain_field(entries), *sorted),
        _ => return Arc::clone(field),
    };
    Arc::new(Field::clone(field).with_data_type(plain))
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{ArrayRef, RecordBatch, StringViewArray};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::reader::{FileReader, SerializedFileReader};

    use super::*;

    #[test]
    fn view_hints_become_plain_and_everything_else_stays() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8View, true),
            Field::new("tags", DataType::List(Arc::new(Field::new("item", DataType::Utf8View, true))), true),
            Field::new("id", DataType::Int64, false),
        ]));
        let plain = Schema::new(plain_fields(schema.fields()));
        assert_eq!(plain.field(0).data_type(), &DataType::Utf8);
        assert_eq!(plain.field(1).data_type(), &DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))));
        assert_eq!(plain.field(2), schema.field(2));

        let names: ArrayRef = Arc::new(StringViewArray::from(vec!["a string longer than twelve bytes", "b"]));
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("name", DataType::Utf8View, true)])),
            vec![names],
        )
        .unwrap();
        let mut file = Vec::new();
        let mut writer = ArrowWriter::try_new(&mut file, batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let metadata = Arc::new(SerializedFileReader::new(Bytes::from(file)).unwrap().metadata().clone());
        let before = parquet_to_arrow_schema(
            metadata.file_metadata().schema_descr(),
            metadata.file_metadata().key_value_metadata(),
        )
        .unwrap();
        assert_eq!(before.field(0).data_type(), &DataType::Utf8View, "the writer left a view hint");
        let rewritten = without_view_hints(Arc::clone(&metadata)).unwrap();
        let after = parquet_to_arrow_schema(
            rewritten.file_metadata().schema_descr(),
            rewritten.file_metadata().key_value_metadata(),
        )
        .unwrap();
        assert_eq!(after.field(0).data_type(), &DataType::Utf8);
        assert_eq!(rewritten.row_groups(), metadata.row_groups());
        let again = without_view_hints(Arc::clone(&rewritten)).unwrap();
        assert!(Arc::ptr_eq(&again, &rewritten), "a hint without views is left as it is");
    }
}
