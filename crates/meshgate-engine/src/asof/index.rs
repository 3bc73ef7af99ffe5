//! The feature side of an as-of join, held for lookups: every feature row sorted by
//! key, event time and creation time, and for each key the range of its rows. A
//! lookup finds, by binary search, the last row of the key at or before a time.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{SortColumn, SortOptions, cast, concat_batches, filter_record_batch, lexsort_to_indices, take_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef, TimeUnit};
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::{DataFusionError, Result};

/// Which columns of the feature rows play which part.
#[derive(Debug, Clone)]
pub(crate) struct FeatureColumns {
    pub keys: Vec<usize>,
    /// The event time (`None`: a static product, one row per key at any time).
    pub time: Option<usize>,
    pub created: Option<usize>,
}

/// The feature rows, sorted, with each key's range.
#[derive(Debug)]
pub(crate) struct FeatureIndex {
    /// All feature rows, sorted by (key, time, created).
    pub rows: RecordBatch,
    /// Event times in microseconds since the epoch, aligned with `rows`.
    times: Vec<i64>,
    ranges: HashMap<Vec<u8>, (usize, usize)>,
    converter: RowConverter,
}

impl FeatureIndex {
    pub fn build(schema: &SchemaRef, batches: &[RecordBatch], columns: &FeatureColumns) -> Result<Self> {
        let all = concat_batches(schema, batches)?;
        // Rows whose key or time is NULL can never match.
        let mut valid = datafusion::arrow::array::BooleanBuilder::with_capacity(all.num_rows());
        let check: Vec<usize> = columns.keys.iter().copied().chain(columns.time).collect();
        for row in 0..all.num_rows() {
            valid.append_value(check.iter().all(|&c| all.column(c).is_valid(row)));
        }
        let all = filter_record_batch(&all, &valid.finish())?;
        let mut sort: Vec<SortColumn> = columns
            .keys
            .iter()
            .map(|&c| SortColumn { values: Arc::clone(all.column(c)), options: None })
            .collect();
        let ascending = Some(SortOptions { descending: false, nulls_first: true });
        for column in columns.time.iter().chain(&columns.created) {
            sort.push(SortColumn { values: Arc::clone(all.column(*column)), options: ascending });
        }
        let rows = if all.num_rows() == 0 {
            all
        } else {
            let order = lexsort_to_indices(&sort, None)?;
            take_record_batch(&all, &order)?
        };
        let times = match columns.time {
            Some(c) => micros(rows.column(c))?.values().to_vec(),
            None => vec![0; rows.num_rows()],
        };
        let key_fields: Vec<SortField> =
            columns.keys.iter().map(|&c| SortField::new(rows.schema().field(c).data_type().clone())).collect();
        let converter = RowConverter::new(key_fields)?;
        let keys: Vec<ArrayRef> = columns.keys.iter().map(|&c| Arc::clone(rows.column(c))).collect();
        let encoded = converter.convert_columns(&keys)?;
        let mut ranges: HashMap<Vec<u8>, (usize, usize)> = HashMap::new();
        let mut start = 0;
        for row in 1..=rows.num_rows() {
            if row == rows.num_rows() || encoded.row(row) != encoded.row(start) {
                ranges.insert(encoded.row(start).as_ref().to_vec(), (start, row));
                start = row;
            }
        }
        Ok(Self { rows, times, ranges, converter })
    }

    /// For each entity row: the index of its feature row, or NULL. `keys` are the
    /// entities' key columns (cast to the feature keys' types), `times` their event
    /// times; `ttl` in microseconds.
    pub fn lookup(&self, keys: &[ArrayRef], times: &ArrayRef, ttl: Option<i64>, is_static: bool) -> Result<UInt32Array> {
        let encoded = self.converter.convert_columns(keys)?;
        let times = micros(times)?;
        let mut found = Vec::with_capacity(times.len());
        for row in 0..times.len() {
            let null_key = keys.iter().any(|key| key.is_null(row));
            let hit = match self.ranges.get(encoded.row(row).as_ref()) {
                Some(&(start, end)) if !null_key => {
                    if is_static {
                        // The newest-created row of the key.
                        Some(end - 1)
                    } else if times.is_null(row) {
                        None
                    } else {
                        let at = times.value(row);
                        let after = start + self.times[start..end].partition_point(|&t| t <= at);
                        (after > start)
                            .then(|| after - 1)
                            .filter(|&index| ttl.is_none_or(|ttl| at - self.times[index] <= ttl))
                    }
                }
                _ => None,
            };
            found.push(hit.map(|index| index as u32));
        }
        Ok(UInt32Array::from(found))
    }
}

/// Dates and timestamps as microseconds since the epoch.
pub(crate) fn micros(values: &ArrayRef) -> Result<Int64Array> {
    let as_micros = match values.data_type() {
        DataType::Timestamp(TimeUnit::Microsecond, None) => Arc::clone(values),
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => {
            cast(values, &DataType::Timestamp(TimeUnit::Microsecond, None))?
        }
        other => {
            return Err(DataFusionError::Plan(format!(
                "point_in_time: event times must be dates or timestamps, not {other}"
            )));
        }
    };
    Ok(cast(&as_micros, &DataType::Int64)?.as_any().downcast_ref::<Int64Array>().cloned().unwrap_or_else(|| {
        Int64Array::from(Vec::<i64>::new())
    }))
}
