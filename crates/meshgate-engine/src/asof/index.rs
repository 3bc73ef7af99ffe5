//! The feature side of an as-of join, held for lookups: the feature rows' positions
//! sorted by key, event time and creation time, and for each key the range of its
//! rows. A lookup finds, by binary search, the last row of the key at or before a time.
//!
//! A single integer key (the common case: a customer or order id) is sorted and
//! looked up as plain integers; other keys go through Arrow's row format.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use datafusion::arrow::row::{RowConverter, Rows, SortField};
use datafusion::common::{DataFusionError, HashMap, Result};

/// Which columns of the feature rows play which part.
#[derive(Debug, Clone)]
pub(crate) struct FeatureColumns {
    pub keys: Vec<usize>,
    /// The event time (`None`: a static product, one row per key at any time).
    pub time: Option<usize>,
    pub created: Option<usize>,
}

/// The feature rows and how to find them.
#[derive(Debug)]
pub(crate) struct FeatureIndex {
    /// All feature rows, as read.
    pub rows: RecordBatch,
    /// Row numbers in `rows`, sorted by (key, time, created); rows whose key or time
    /// is NULL are left out (they can never match).
    order: Vec<u32>,
    /// Event times in microseconds since the epoch, aligned with `order`.
    times: Vec<i64>,
    keys: KeyRanges,
}

/// Each key's range in `order`.
#[derive(Debug)]
enum KeyRanges {
    Integer(HashMap<i64, (usize, usize)>),
    Encoded { converter: RowConverter, ranges: HashMap<Vec<u8>, (usize, usize)> },
}

impl FeatureIndex {
    pub fn build(schema: &SchemaRef, batches: &[RecordBatch], columns: &FeatureColumns) -> Result<Self> {
        let rows = concat_batches(schema, batches)?;
        let times = match columns.time {
            Some(c) => micros(rows.column(c))?,
            None => Int64Array::from(vec![0; rows.num_rows()]),
        };
        let created = match columns.created {
            Some(c) => micros(rows.column(c))?,
            None => Int64Array::from(vec![0; rows.num_rows()]),
        };
        let usable = |row: usize| times.is_valid(row) && columns.keys.iter().all(|&c| rows.column(c).is_valid(row));
        // NULL creation times sort first: any row with one loses a tie.
        let created_at = |row: usize| if created.is_valid(row) { created.value(row) } else { i64::MIN };
        let (order, keys) = match integer_key(&rows, columns)? {
            Some(ids) => {
                let mut sorted: Vec<(i64, i64, i64, u32)> = (0..rows.num_rows())
                    .filter(|&row| usable(row))
                    .map(|row| (ids.value(row), times.value(row), created_at(row), row as u32))
                    .collect();
                sort_in_parallel(&mut sorted);
                let mut ranges = HashMap::default();
                let mut start = 0;
                for position in 1..=sorted.len() {
                    if position == sorted.len() || sorted[position].0 != sorted[start].0 {
                        ranges.insert(sorted[start].0, (start, position));
                        start = position;
                    }
                }
                (sorted.into_iter().map(|entry| entry.3).collect::<Vec<u32>>(), KeyRanges::Integer(ranges))
            }
            None => {
                let (converter, encoded) = encode_keys(&rows, &columns.keys)?;
                let mut order: Vec<u32> =
                    (0..rows.num_rows()).filter(|&row| usable(row)).map(|row| row as u32).collect();
                order.sort_unstable_by(|&a, &b| {
                    let (a, b) = (a as usize, b as usize);
                    encoded
                        .row(a)
                        .cmp(&encoded.row(b))
                        .then(times.value(a).cmp(&times.value(b)))
                        .then(created_at(a).cmp(&created_at(b)))
                });
                let mut ranges: HashMap<Vec<u8>, (usize, usize)> = HashMap::default();
                let mut start = 0;
                for position in 1..=order.len() {
                    let key = |p: usize| encoded.row(order[p] as usize);
                    if position == order.len() || key(position) != key(start) {
                        ranges.insert(key(start).as_ref().to_vec(), (start, position));
                        start = position;
                    }
                }
                (order, KeyRanges::Encoded { converter, ranges })
            }
        };
        let sorted_times = order.iter().map(|&row| times.value(row as usize)).collect();
        Ok(Self { rows, order, times: sorted_times, keys })
    }

    /// The memory the index holds beyond the rows.
    pub fn index_bytes(&self) -> usize {
        self.order.capacity() * 4 + self.times.capacity() * 8
    }

    /// For each entity row: the row of `rows` that is its feature row, or NULL.
    /// `keys` are the entities' key columns (cast to the feature keys' types),
    /// `times` their event times; `ttl` in microseconds.
    pub fn lookup(
        &self,
        keys: &[ArrayRef],
        times: &ArrayRef,
        ttl: Option<i64>,
        is_static: bool,
    ) -> Result<UInt32Array> {
        let times = micros(times)?;
        let find = |range: Option<&(usize, usize)>, row: usize| -> Option<u32> {
            let &(start, end) = range?;
            let position = if is_static {
                // The newest-created row of the key.
                end - 1
            } else {
                if times.is_null(row) {
                    return None;
                }
                let at = times.value(row);
                let after = start + self.times[start..end].partition_point(|&t| t <= at);
                if after == start || ttl.is_some_and(|ttl| at - self.times[after - 1] > ttl) {
                    return None;
                }
                after - 1
            };
            Some(self.order[position])
        };
        let found: Vec<Option<u32>> = match &self.keys {
            KeyRanges::Integer(ranges) => {
                let ids = cast(&keys[0], &DataType::Int64)?;
                let ids = ids.as_primitive::<Int64Type>();
                (0..times.len())
                    .map(|row| if ids.is_null(row) { None } else { find(ranges.get(&ids.value(row)), row) })
                    .collect()
            }
            KeyRanges::Encoded { converter, ranges } => {
                let encoded = converter.convert_columns(keys)?;
                (0..times.len())
                    .map(|row| {
                        if keys.iter().any(|key| key.is_null(row)) {
                            return None;
                        }
                        find(ranges.get(encoded.row(row).as_ref()), row)
                    })
                    .collect()
            }
        };
        Ok(UInt32Array::from(found))
    }
}

/// Sorts `entries` on up to as many threads as there are cores (halves sorted side
/// by side, then merged): the index is built before the first entity row is joined,
/// so this sort is on every query's critical path.
fn sort_in_parallel(entries: &mut Vec<(i64, i64, i64, u32)>) {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads < 2 || entries.len() < 1 << 16 {
        entries.sort_unstable();
        return;
    }
    let middle = entries.len() / 2;
    {
        let (left, right) = entries.split_at_mut(middle);
        std::thread::scope(|scope| {
            scope.spawn(|| left.sort_unstable());
            right.sort_unstable();
        });
    }
    let mut merged = Vec::with_capacity(entries.len());
    let (left, right) = entries.split_at(middle);
    let (mut i, mut j) = (0, 0);
    while i < left.len() && j < right.len() {
        if left[i] <= right[j] {
            merged.push(left[i]);
            i += 1;
        } else {
            merged.push(right[j]);
            j += 1;
        }
    }
    merged.extend_from_slice(&left[i..]);
    merged.extend_from_slice(&right[j..]);
    *entries = merged;
}

/// The key as 64-bit integers, when there is one integer key column.
fn integer_key(rows: &RecordBatch, columns: &FeatureColumns) -> Result<Option<Int64Array>> {
    let [key] = columns.keys.as_slice() else { return Ok(None) };
    let column = rows.column(*key);
    if !column.data_type().is_integer() || matches!(column.data_type(), DataType::UInt64) {
        return Ok(None);
    }
    Ok(Some(cast(column, &DataType::Int64)?.as_primitive::<Int64Type>().clone()))
}

fn encode_keys(rows: &RecordBatch, keys: &[usize]) -> Result<(RowConverter, Rows)> {
    let fields = keys.iter().map(|&c| SortField::new(rows.schema().field(c).data_type().clone())).collect();
    let converter = RowConverter::new(fields)?;
    let columns: Vec<ArrayRef> = keys.iter().map(|&c| Arc::clone(rows.column(c))).collect();
    let encoded = converter.convert_columns(&columns)?;
    Ok((converter, encoded))
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
    Ok(cast(&as_micros, &DataType::Int64)?.as_primitive::<Int64Type>().clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parallel_sort_sorts() {
        // A deterministic shuffle, large enough to take the parallel path.
        let mut entries: Vec<(i64, i64, i64, u32)> =
            (0..200_000u32).map(|i| (i64::from((i * 7919) % 1013), i64::from(i % 17), -i64::from(i % 3), i)).collect();
        let mut expected = entries.clone();
        expected.sort_unstable();
        sort_in_parallel(&mut entries);
        assert_eq!(entries, expected);
    }
}
