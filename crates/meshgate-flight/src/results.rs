//! Streaming a query's batches to the client as Flight data, in the exact schema
//! announced in FlightInfo, and logging one line per query when the stream ends
//! (and recording it in the audit log and lineage).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow_flight::FlightData;
use arrow_flight::encode::FlightDataEncoderBuilder;
use bytes::Bytes;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::memory_pool::MemoryPool;
use futures::{Stream, StreamExt, TryStreamExt, stream};
use meshgate_audit::{Outcome, Planned, QueryAudit, QueryEnd};
use tonic::{Code, Status};

use crate::cancel::{Running, until_cancelled};
use crate::error::{FlightError, code_name, to_status};
use crate::frames::FrameEncoder;
use crate::metrics::{Metrics, ProductLabels};

/// Target size of one encoded Flight message.
const MAX_FLIGHT_MESSAGE_BYTES: usize = 2 * 1024 * 1024;

/// The schema sent on the wire: dictionaries are hydrated, and strings and binaries
/// travel in one form: plain Utf8/Binary, which every Flight SQL client reads, or
/// with `view_types` Utf8View/BinaryView, whatever the column was computed as.
pub fn wire_schema(schema: &Schema, view_types: bool) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| field.as_ref().clone().with_data_type(wire_type(field.data_type(), view_types)))
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// `data_type` as sent, nested types included (a dictionary inside a struct is
/// hydrated too, and strings in a list take the one string form).
fn wire_type(data_type: &DataType, view_types: bool) -> DataType {
    let field =
        |field: &FieldRef| Arc::new(field.as_ref().clone().with_data_type(wire_type(field.data_type(), view_types)));
    match data_type {
        DataType::Utf8View | DataType::Utf8 if !view_types => DataType::Utf8,
        DataType::BinaryView | DataType::Binary if !view_types => DataType::Binary,
        DataType::Utf8View | DataType::Utf8 => DataType::Utf8View,
        DataType::BinaryView | DataType::Binary => DataType::BinaryView,
        DataType::Dictionary(_, value) => wire_type(value, view_types),
        DataType::List(item) => DataType::List(field(item)),
        DataType::LargeList(item) => DataType::LargeList(field(item)),
        DataType::FixedSizeList(item, len) => DataType::FixedSizeList(field(item), *len),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect()),
        DataType::Map(entries, sorted) => DataType::Map(field(entries), *sorted),
        other => other.clone(),
    }
}

/// Rebuilds `batch` in exactly `schema` (casting view columns to plain ones).
fn to_wire(batch: RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, FlightError> {
    if batch.schema_ref() == schema {
        return Ok(batch);
    }
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<ArrayRef>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(schema), columns)?)
}

/// What one query did, logged when its stream ends (finished, failed or dropped).
/// The line also says how many queries are still running and how much of the
/// memory pool all of them hold: when a client goes away mid-stream, its query stops
/// and its memory returns. The same end goes to the audit log, lineage and the
/// metrics.
pub struct QueryLog {
    pool: Arc<dyn MemoryPool>,
    metrics: Arc<Metrics>,
    /// The products planning found the query reads.
    reads: std::sync::OnceLock<Vec<ProductLabels>>,
    principal: String,
    sql: String,
    started: Instant,
    rows: AtomicU64,
    bytes: AtomicU64,
    failed: std::sync::atomic::AtomicBool,
    finished: std::sync::atomic::AtomicBool,
    /// Stopped by CancelFlightInfo.
    cancelled: std::sync::atomic::AtomicBool,
    /// The status that ended the query, when one did (the first).
    ending: std::sync::OnceLock<Status>,
    /// Ended before running (planning failed): refused or failed by its code.
    before_running: std::sync::atomic::AtomicBool,
    audit: std::sync::Mutex<Option<QueryAudit>>,
    /// How the query ran: on how many distributed workers, in how many stages.
    spread: std::sync::OnceLock<meshgate_engine::distributed::SpreadSlot>,
}

impl QueryLog {
    pub fn new(
        principal: &str,
        sql: &str,
        pool: Arc<dyn MemoryPool>,
        audit: QueryAudit,
        metrics: Arc<Metrics>,
    ) -> Arc<Self> {
        metrics.stream_opened();
        Arc::new(Self {
            pool,
            metrics,
            reads: std::sync::OnceLock::new(),
            principal: principal.to_owned(),
            sql: sql.to_owned(),
            started: Instant::now(),
            rows: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            failed: std::sync::atomic::AtomicBool::new(false),
            finished: std::sync::atomic::AtomicBool::new(false),
            cancelled: std::sync::atomic::AtomicBool::new(false),
            ending: std::sync::OnceLock::new(),
            before_running: std::sync::atomic::AtomicBool::new(false),
            audit: std::sync::Mutex::new(Some(audit)),
            spread: std::sync::OnceLock::new(),
        })
    }
}

impl QueryLog {
    /// The query ends with `status` while it runs.
    pub fn fail(&self, status: &Status) {
        let _ = self.ending.set(status.clone());
        self.failed.store(true, Ordering::Relaxed);
    }

    /// The query ends with `status` before it runs (planning or starting failed).
    pub fn refuse(&self, status: &Status) {
        self.before_running.store(true, Ordering::Relaxed);
        self.fail(status);
    }

    /// The query is planned: what it reads (lineage's START event).
    pub fn planned(&self, planned: Planned) {
        let reads = planned
            .products
            .iter()
            .map(|read| [read.domain.clone(), read.product.clone(), read.version.clone()])
            .collect();
        let _ = self.reads.set(reads);
        if let Some(audit) = self.audit.lock().unwrap_or_else(std::sync::PoisonError::into_inner).as_mut() {
            audit.planned(planned);
        }
    }

    /// Where the query will say how it ran (its workers and stages, in the log line).
    pub fn spread(&self, slot: meshgate_engine::distributed::SpreadSlot) {
        let _ = self.spread.set(slot);
    }

    /// Hands the query's end to the audit log, lineage and the metrics.
    fn record(&mut self, outcome: &str) {
        let Some(audit) = self.audit.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner).take() else {
            return;
        };
        let ending = self.ending.get();
        let outcome = match outcome {
            "done" => Outcome::Ok,
            "failed" if self.before_running.load(Ordering::Relaxed) => {
                Outcome::before_running(code_name(ending.map_or(Code::Unknown, Status::code)))
            }
            "failed" => Outcome::Failed,
            _ => Outcome::Cancelled,
        };
        let (code, error) = match (outcome, ending) {
            (Outcome::Ok, _) => (Code::Ok, None),
            (_, Some(status)) => (status.code(), Some(status.message().to_owned())),
            (_, None) => (Code::Cancelled, Some("the client stopped reading the results".to_owned())),
        };
        let end = QueryEnd {
            rows: self.rows.load(Ordering::Relaxed),
            bytes: self.bytes.load(Ordering::Relaxed),
            outcome,
            error_code: (outcome != Outcome::Ok).then(|| code_name(code).to_owned()),
            error,
        };
        let reads = self.reads.get().map(Vec::as_slice).unwrap_or_default();
        crate::audit::end(audit, end, code, self.started.elapsed(), reads, &self.metrics);
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        let outcome = if self.cancelled.load(Ordering::Relaxed) {
            "cancelled"
        } else if self.failed.load(Ordering::Relaxed) {
            "failed"
        } else if self.finished.load(Ordering::Relaxed) {
            "done"
        } else {
            "cancelled"
        };
        let active = self.metrics.stream_closed();
        let spread = self.spread.get().and_then(|slot| slot.get().copied()).unwrap_or_default();
        tracing::info!(
            principal = %self.principal,
            duration_ms = self.started.elapsed().as_millis() as u64,
            rows = self.rows.load(Ordering::Relaxed),
            bytes = self.bytes.load(Ordering::Relaxed),
            workers = spread.workers,
            stages = spread.stages,
            outcome,
            active,
            memory_reserved = self.pool.reserved(),
            sql = %self.sql,
            "query"
        );
        self.record(outcome);
    }
}

/// A started query's result on its way to the client: its batches, the schema they
/// travel in, its log line and its cancellation.
pub struct Results {
    pub batches: SendableRecordBatchStream,
    pub schema: SchemaRef,
    pub log: Arc<QueryLog>,
    pub running: Running,
    /// Warnings for the client, sent with the stream's status.
    pub warnings: Vec<String>,
}

impl Results {
    /// The batches in the wire schema, counted in the log, ending early when the
    /// ticket is cancelled (CancelFlightInfo).
    fn wire_batches(
        self,
    ) -> (impl Stream<Item = Result<RecordBatch, FlightError>> + Send + 'static, SchemaRef, Arc<QueryLog>) {
        let Self { batches, schema, log, running, .. } = self;
        let rows_log = Arc::clone(&log);
        let wire = Arc::clone(&schema);
        let batches =
            batches.map(move |batch| batch.map_err(FlightError::from).and_then(|batch| to_wire(batch, &wire)));
        let batches = until_cancelled(batches, running).inspect(move |batch| match batch {
            Ok(batch) => {
                rows_log.rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                rows_log.metrics.rows_sent(batch.num_rows() as u64);
            }
            Err(FlightError::Cancelled) => rows_log.cancelled.store(true, Ordering::Relaxed),
            Err(_) => {}
        });
        (batches, schema, log)
    }
}

/// Encodes the results as `FlightData` messages (arrow-flight's encoder), streaming:
/// each batch is encoded and sent as the plan produces it. The server sends
/// statement results as [`frame_stream`]; this serves the service's own DoGet.
pub fn flight_stream(results: Results) -> impl Stream<Item = Result<FlightData, Status>> + Send + 'static {
    let (batches, schema, log) = results.wire_batches();
    let batches = batches
        .map(|batch| batch.map_err(|error| arrow_flight::error::FlightError::Tonic(Box::new(to_status(&error)))));
    let data = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_max_flight_data_size(MAX_FLIGHT_MESSAGE_BYTES)
        .build(batches)
        .map_err(flight_error_to_status);
    logged(data, log, |data| data.data_body.len() + data.data_header.len())
}

/// Encodes the results as gRPC frames of `FlightData` without copying the batches
/// (see [`crate::frames`]), streaming: each batch is sent as the plan produces it.
/// No message exceeds `max_message_bytes`.
pub fn frame_stream(
    results: Results,
    max_message_bytes: usize,
) -> impl Stream<Item = Result<Bytes, Status>> + Send + 'static {
    let (batches, schema, log) = results.wire_batches();
    let encoder = FrameEncoder::new(&schema, MAX_FLIGHT_MESSAGE_BYTES, max_message_bytes);
    // Each step encodes one batch; after the last, or an error, the stream ends.
    let frames = stream::unfold((Box::pin(batches), Some(encoder)), |(mut batches, encoder)| async move {
        let mut encoder = match encoder? {
            Ok(encoder) => encoder,
            Err(error) => return Some((Err(to_status(&error)), (batches, None))),
        };
        match batches.next().await {
            Some(Ok(batch)) => match encoder.encode(&batch) {
                Ok(frames) => Some((Ok(frames), (batches, Some(Ok(encoder))))),
                Err(error) => Some((Err(to_status(&error)), (batches, None))),
            },
            Some(Err(error)) => Some((Err(to_status(&error)), (batches, None))),
            None => Some((encoder.finish().map_err(|error| to_status(&error)), (batches, None))),
        }
    });
    let chunks = frames.map_ok(|chunks| stream::iter(chunks.into_iter().map(Ok))).try_flatten();
    logged(chunks, log, Bytes::len)
}

/// Counts what `items` send in the query's log; once the stream is exhausted (the
/// client read everything) the query is marked finished.
fn logged<T: Send + 'static>(
    items: impl Stream<Item = Result<T, Status>> + Send + 'static,
    log: Arc<QueryLog>,
    size: impl Fn(&T) -> usize + Send + 'static,
) -> impl Stream<Item = Result<T, Status>> + Send + 'static {
    let end_log = Arc::clone(&log);
    items
        .map(move |item| {
            match &item {
                Ok(item) => {
                    let bytes = size(item) as u64;
                    log.bytes.fetch_add(bytes, Ordering::Relaxed);
                    log.metrics.bytes_sent(bytes);
                }
                Err(status) => log.fail(status),
            }
            item
        })
        // Polled only once the items are exhausted: the client read everything.
        .chain(
            stream::once(async move {
                end_log.finished.store(true, Ordering::Relaxed);
                None::<Result<T, Status>>
            })
            .filter_map(std::future::ready),
        )
}

fn flight_error_to_status(error: arrow_flight::error::FlightError) -> Status {
    match error {
        arrow_flight::error::FlightError::Tonic(status) => *status,
        other => to_status(&FlightError::Encode(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, DictionaryArray, StringViewArray, StructArray};
    use arrow::datatypes::Int32Type;

    use super::*;

    #[test]
    fn view_columns_are_sent_plain() {
        let view = Schema::new(vec![Field::new("s", DataType::Utf8View, true)]);
        assert_eq!(wire_schema(&view, true).field(0).data_type(), &DataType::Utf8View);
        let plain = Schema::new(vec![Field::new("s", DataType::Utf8, true)]);
        assert_eq!(wire_schema(&plain, true).field(0).data_type(), &DataType::Utf8View);
        let wire = wire_schema(&view, false);
        assert_eq!(wire.field(0).data_type(), &DataType::Utf8);
        let batch =
            RecordBatch::try_new(Arc::new(view), vec![Arc::new(StringViewArray::from(vec!["a", "b"]))]).unwrap();
        let sent = to_wire(batch, &wire).unwrap();
        assert_eq!(sent.schema(), wire);
    }

    #[test]
    fn nested_dictionaries_and_views_take_the_wire_form() {
        let region: DictionaryArray<Int32Type> = vec!["eu", "us", "eu"].into_iter().collect();
        let struct_field = Field::new("r", region.data_type().clone(), true);
        let nested = StructArray::from(vec![(Arc::new(struct_field), Arc::new(region) as ArrayRef)]);
        let schema = Schema::new(vec![
            Field::new("s", nested.data_type().clone(), true),
            Field::new_list("l", Field::new_list_field(DataType::Utf8View, true), true),
            Field::new_large_list("ll", Field::new_list_field(DataType::BinaryView, true), true),
        ]);
        let wire = wire_schema(&schema, false);
        let plain_struct = DataType::Struct(vec![Field::new("r", DataType::Utf8, true)].into());
        assert_eq!(wire.field(0).data_type(), &plain_struct);
        assert_eq!(wire.field(1).data_type(), &DataType::new_list(DataType::Utf8, true));
        assert_eq!(wire.field(2).data_type(), &DataType::new_large_list(DataType::Binary, true));

        let only_struct = Arc::new(Schema::new(vec![schema.field(0).clone()]));
        let batch = RecordBatch::try_new(only_struct, vec![Arc::new(nested)]).unwrap();
        let wire = wire_schema(&batch.schema(), false);
        let sent = to_wire(batch, &wire).unwrap();
        assert_eq!(sent.schema(), wire);
        assert_eq!(sent.column(0).data_type(), &plain_struct);
    }
}
