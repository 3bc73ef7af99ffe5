//! The feature side of an as-of join, held for lookups: the feature rows' event times
//! sorted by key, event time and creation time, and for each key the range of its
//! rows. A lookup finds, by binary search, the last row of the key at or before a time.
//!
//! The rows stay in the batches they were read in (only the output columns are kept);
//! nothing is concatenated. Feature tables are usually written sorted by key and time:
//! when every batch is sorted and the batches, put in order, follow on from each other,
//! the index is those batches in that order and nothing is sorted. Otherwise the rows'
//! numbers are sorted. A single integer key (the common case: a customer or order id)
//! is sorted and looked up as plain integers; other keys go through Arrow's row format.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int64Array, RecordBatch, new_null_array};
use datafusion::arrow::compute::{cast, concat, interleave};
use datafusion::arrow::datatypes::{DataType, Int64Type, SchemaRef, TimeUnit};
use datafusion::arrow::row::{RowConverter, SortField};
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
    /// The output columns' values.
    outputs: Vec<Output>,
    /// The number of the first row of each batch (rows are numbered across batches).
    starts: Vec<usize>,
    /// Row numbers sorted by (key, time, created), leaving out rows whose key or time
    /// is NULL (they can never match); `None` when the rows are in that order already.
    order: Option<Vec<u32>>,
    /// Event times in microseconds since the epoch, in sorted order.
    times: Vec<i64>,
    keys: KeyRanges,
}

/// One output column of the feature rows.
#[derive(Debug)]
struct Output {
    values: OutputValues,
    /// One NULL: what an entity row without a feature row takes.
    null: ArrayRef,
}

#[derive(Debug)]
enum OutputValues {
    /// The column in every batch, as read.
    Batches(Vec<ArrayRef>),
    /// The column of all the batches in one array: for types `interleave` gathers
    /// slowly from many arrays (dictionaries, booleans, nested types).
    Whole(ArrayRef),
}

/// Each key's range of sorted positions.
#[derive(Debug)]
enum KeyRanges {
    /// Integer keys close together: ranges by `key - min` (an empty range: no rows).
    Dense {
        min: i64,
        ranges: Vec<(u32, u32)>,
    },
    Integer(HashMap<i64, (u32, u32)>),
    Encoded {
        converter: RowConverter,
        ranges: HashMap<Vec<u8>, (u32, u32)>,
    },
}

/// One batch's key, event time and creation time as integers.
struct Part {
    keys: Int64Array,
    times: Int64Array,
    /// Creation times, NULL as `i64::MIN` (it loses every tie); empty: none declared.
    created: Vec<i64>,
}

impl Part {
    fn entry(&self, row: usize) -> (i64, i64, i64) {
        (self.keys.value(row), self.times.value(row), self.created.get(row).copied().unwrap_or(0))
    }

    fn usable(&self, row: usize) -> bool {
        self.keys.is_valid(row) && self.times.is_valid(row)
    }

    /// The rows that can match: key and time not NULL.
    fn usable_rows(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.keys.len()).filter(|&row| self.usable(row))
    }

    fn all_usable(&self) -> bool {
        self.keys.null_count() == 0 && self.times.null_count() == 0
    }

    fn is_sorted(&self) -> bool {
        (1..self.keys.len()).all(|row| self.entry(row - 1) <= self.entry(row))
    }
}

impl FeatureIndex {
    /// Indexes `batches` (rows of the feature product, of `schema`, read in any order);
    /// the result keeps the columns `outputs`.
    pub fn build(
        schema: &SchemaRef,
        batches: Vec<RecordBatch>,
        columns: &FeatureColumns,
        outputs: &[usize],
    ) -> Result<Self> {
        let mut batches: Vec<RecordBatch> = batches.into_iter().filter(|batch| batch.num_rows() > 0).collect();
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        if u32::try_from(rows).is_err() {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "point_in_time: a feature product of {rows} rows is more than one join can index"
            )));
        }
        let (order, times, keys) = match columns.keys.as_slice() {
            [key] if integer_type(schema.field(*key).data_type()) => {
                let mut pairs: Vec<(RecordBatch, Part)> = batches
                    .into_iter()
                    .map(|batch| part(&batch, columns).map(|part| (batch, part)))
                    .collect::<Result<_>>()?;
                let sorted = in_sequence(&mut pairs);
                let parts: Vec<Part>;
                (batches, parts) = pairs.into_iter().unzip();
                if sorted {
                    let times = parts.iter().flat_map(|part| part.times.values().iter().copied()).collect();
                    let keys = KeyRanges::from_sorted(parts.iter().flat_map(|part| part.keys.values().iter().copied()));
                    (None, times, keys)
                } else {
                    let (order, times, keys) = sort_integer(parts);
                    (Some(order), times, keys)
                }
            }
            _ => {
                let (order, times, keys) = sort_encoded(schema, &batches, columns)?;
                (Some(order), times, keys)
            }
        };
        let mut starts = Vec::with_capacity(batches.len());
        let mut first = 0;
        for batch in &batches {
            starts.push(first);
            first += batch.num_rows();
        }
        let outputs = outputs
            .iter()
            .map(|&column| {
                let data_type = schema.field(column).data_type();
                let arrays: Vec<ArrayRef> = batches.iter().map(|batch| Arc::clone(batch.column(column))).collect();
                let values = if gathers_from_batches(data_type) || arrays.len() < 2 {
                    OutputValues::Batches(arrays)
                } else {
                    OutputValues::Whole(concat(&arrays.iter().map(AsRef::as_ref).collect::<Vec<_>>())?)
                };
                Ok(Output { values, null: new_null_array(data_type, 1) })
            })
            .collect::<Result<_>>()?;
        Ok(Self { outputs, starts, order, times, keys })
    }

    /// What building the index may take at most beyond the batches it is given: the
    /// integers of every row, the entries sorted and their merged copy; on keys in
    /// Arrow's row format, the keys twice more.
    pub fn build_bytes(schema: &SchemaRef, batches: &[RecordBatch], columns: &FeatureColumns) -> usize {
        let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
        let integer = matches!(columns.keys.as_slice(), [key] if integer_type(schema.field(*key).data_type()));
        let keys: usize = if integer {
            0
        } else {
            let key_bytes = |batch: &RecordBatch| -> usize {
                columns.keys.iter().map(|&key| batch.column(key).get_array_memory_size()).sum()
            };
            batches.iter().map(key_bytes).sum::<usize>() * 2
        };
        rows * 112 + keys
    }

    /// The memory the index holds: the output columns and the index beside them.
    pub fn bytes(&self) -> usize {
        let arrays: usize = self
            .outputs
            .iter()
            .map(|output| match &output.values {
                OutputValues::Batches(arrays) => arrays.iter().map(|array| array.get_array_memory_size()).sum(),
                OutputValues::Whole(array) => array.get_array_memory_size(),
            })
            .sum();
        let ranges = match &self.keys {
            KeyRanges::Dense { ranges, .. } => ranges.capacity() * 8,
            KeyRanges::Integer(ranges) => ranges.capacity() * 24,
            KeyRanges::Encoded { ranges, .. } => ranges.keys().map(|key| key.capacity() + 32).sum(),
        };
        arrays + self.order.as_ref().map_or(0, |order| order.capacity() * 4) + self.times.capacity() * 8 + ranges
    }

    /// For each entity row: where its feature row is, as (batch, row) for
    /// [`Self::take`]. `keys` are the entities' key columns (cast to the feature keys'
    /// types), `times` their event times; `ttl` in microseconds.
    pub fn lookup(
        &self,
        keys: &[ArrayRef],
        times: &ArrayRef,
        ttl: Option<i64>,
        is_static: bool,
    ) -> Result<Vec<(usize, usize)>> {
        let times = micros(times)?;
        let missing = (self.starts.len(), 0);
        let find = |range: Option<(u32, u32)>, row: usize| -> (usize, usize) {
            let Some((start, end)) = range.map(|(start, end)| (start as usize, end as usize)) else { return missing };
            if start == end {
                return missing;
            }
            let position = if is_static {
                // The newest-created row of the key.
                end - 1
            } else {
                if times.is_null(row) {
                    return missing;
                }
                let at = times.value(row);
                let after = start + self.times[start..end].partition_point(|&t| t <= at);
                if after == start || ttl.is_some_and(|ttl| at.saturating_sub(self.times[after - 1]) > ttl) {
                    return missing;
                }
                after - 1
            };
            self.locate(position)
        };
        let found = match &self.keys {
            KeyRanges::Dense { .. } | KeyRanges::Integer(_) => {
                let ids = cast(&keys[0], &DataType::Int64)?;
                let ids = ids.as_primitive::<Int64Type>();
                (0..times.len())
                    .map(|row| if ids.is_null(row) { missing } else { find(self.keys.integer(ids.value(row)), row) })
                    .collect()
            }
            KeyRanges::Encoded { converter, ranges } => {
                let encoded = converter.convert_columns(keys)?;
                (0..times.len())
                    .map(|row| {
                        if keys.iter().any(|key| key.is_null(row)) {
                            return missing;
                        }
                        find(ranges.get(encoded.row(row).as_ref()).copied(), row)
                    })
                    .collect()
            }
        };
        Ok(found)
    }

    /// The output columns for the rows `found` by [`Self::lookup`].
    pub fn take(&self, found: &[(usize, usize)]) -> Result<Vec<ArrayRef>> {
        let missing = self.starts.len();
        let mut whole_rows: Option<Vec<(usize, usize)>> = None;
        self.outputs
            .iter()
            .map(|output| {
                let gathered = match &output.values {
                    OutputValues::Batches(arrays) => {
                        let mut arrays: Vec<&dyn Array> = arrays.iter().map(AsRef::as_ref).collect();
                        arrays.push(output.null.as_ref());
                        interleave(&arrays, found)?
                    }
                    OutputValues::Whole(values) => {
                        let rows = whole_rows.get_or_insert_with(|| {
                            let at = |(batch, row): (usize, usize)| {
                                if batch == missing { (1, 0) } else { (0, self.starts[batch] + row) }
                            };
                            found.iter().map(|&found| at(found)).collect()
                        });
                        interleave(&[values.as_ref(), output.null.as_ref()], rows)?
                    }
                };
                Ok(gathered)
            })
            .collect()
    }

    /// The (batch, row) of a sorted position.
    fn locate(&self, position: usize) -> (usize, usize) {
        let row = self.order.as_ref().map_or(position, |order| order[position] as usize);
        let batch = self.starts.partition_point(|&start| start <= row) - 1;
        (batch, row - self.starts[batch])
    }
}

impl KeyRanges {
    /// The ranges of integer keys given in sorted order.
    fn from_sorted(keys: impl Iterator<Item = i64>) -> Self {
        let mut found: Vec<(i64, u32, u32)> = Vec::new();
        for (position, key) in keys.enumerate() {
            let position = position as u32;
            match found.last_mut() {
                Some((last, _, end)) if *last == key => *end = position + 1,
                _ => found.push((key, position, position + 1)),
            }
        }
        let (Some(&(min, ..)), Some(&(max, ..))) = (found.first(), found.last()) else {
            return Self::Integer(HashMap::default());
        };
        // Dense when the keys fill at least a quarter of their span (or the span is small).
        let span = max.abs_diff(min).saturating_add(1);
        if span <= (found.len() as u64 * 4).max(1 << 16) {
            let mut ranges = vec![(0, 0); span as usize];
            for (key, start, end) in found {
                ranges[key.abs_diff(min) as usize] = (start, end);
            }
            Self::Dense { min, ranges }
        } else {
            Self::Integer(found.into_iter().map(|(key, start, end)| (key, (start, end))).collect())
        }
    }

    fn integer(&self, key: i64) -> Option<(u32, u32)> {
        match self {
            Self::Dense { min, ranges } => {
                if key < *min {
                    return None;
                }
                ranges.get(usize::try_from(key.abs_diff(*min)).ok()?).copied()
            }
            Self::Integer(ranges) => ranges.get(&key).copied(),
            Self::Encoded { .. } => None,
        }
    }
}

/// Whether the rows are already in index order once the batches are put in order of
/// their first rows (which this does): every batch sorted and usable throughout, and
/// each batch following on from the one before.
fn in_sequence(pairs: &mut [(RecordBatch, Part)]) -> bool {
    if !pairs.iter().all(|(_, part)| part.all_usable() && part.is_sorted()) {
        return false;
    }
    pairs.sort_by_key(|(_, part)| part.entry(0));
    pairs.windows(2).all(|pair| {
        let (before, after) = (&pair[0].1, &pair[1].1);
        before.entry(before.keys.len() - 1) <= after.entry(0)
    })
}

/// Sorts the usable rows of `parts` by (key, time, created).
fn sort_integer(parts: Vec<Part>) -> (Vec<u32>, Vec<i64>, KeyRanges) {
    let usable = parts.iter().flat_map(|part| part.usable_rows().map(|row| part.keys.value(row)));
    let (mut min, mut max, mut rows) = (i64::MAX, i64::MIN, 0u64);
    for key in usable {
        (min, max, rows) = (min.min(key), max.max(key), rows + 1);
    }
    let span = max.abs_diff(min).saturating_add(1);
    if rows > 0 && span <= (rows * 2).max(1 << 16) {
        return sort_by_counting(&parts, min, span as usize);
    }
    let mut entries: Vec<(i64, i64, i64, u32)> = Vec::with_capacity(parts.iter().map(|part| part.keys.len()).sum());
    let mut first = 0u32;
    for part in &parts {
        let rows = part.keys.len();
        entries.extend(part.usable_rows().map(|row| {
            let (key, time, created) = part.entry(row);
            (key, time, created, first + row as u32)
        }));
        first += rows as u32;
    }
    drop(parts);
    sort_in_parallel(&mut entries);
    let keys = KeyRanges::from_sorted(entries.iter().map(|entry| entry.0));
    let times = entries.iter().map(|entry| entry.1).collect();
    (entries.into_iter().map(|entry| entry.3).collect(), times, keys)
}

/// Sorts the usable rows of `parts` when their keys lie close together (`span` values
/// from `min`): one counting pass gives each key its range, the rows are placed in
/// their key's range, and each range is sorted by (time, created) on its own. On
/// millions of rows this is several times faster than sorting them all.
fn sort_by_counting(parts: &[Part], min: i64, span: usize) -> (Vec<u32>, Vec<i64>, KeyRanges) {
    let slot = |key: i64| key.abs_diff(min) as usize;
    // Counts first, in the ranges' ends.
    let mut ranges = vec![(0u32, 0u32); span];
    for part in parts {
        for row in part.usable_rows() {
            ranges[slot(part.keys.value(row))].1 += 1;
        }
    }
    let mut next = 0u32;
    for range in &mut ranges {
        let count = range.1;
        *range = (next, next);
        next += count;
    }
    // Each row into its key's range; the ends move up to where each range stops.
    let mut entries = vec![(0i64, 0i64, 0u32); next as usize];
    let mut first = 0u32;
    for part in parts {
        for row in part.usable_rows() {
            let (key, time, created) = part.entry(row);
            let range = &mut ranges[slot(key)];
            entries[range.1 as usize] = (time, created, first + row as u32);
            range.1 += 1;
        }
        first += part.keys.len() as u32;
    }
    // The ranges sorted on two threads, split at a range boundary near the middle.
    let middle = ranges.partition_point(|range| (range.0 as usize) < entries.len() / 2);
    let split = ranges.get(middle).map_or(entries.len(), |range| range.0 as usize);
    let sort_ranges = |entries: &mut [(i64, i64, u32)], ranges: &[(u32, u32)], offset: usize| {
        for &(start, end) in ranges {
            if end - start > 1 {
                entries[start as usize - offset..end as usize - offset].sort_unstable();
            }
        }
    };
    {
        let (left, right) = entries.split_at_mut(split);
        let (left_ranges, right_ranges) = ranges.split_at(middle);
        std::thread::scope(|scope| {
            scope.spawn(|| sort_ranges(left, left_ranges, 0));
            sort_ranges(right, right_ranges, split);
        });
    }
    let times = entries.iter().map(|entry| entry.0).collect();
    let order = entries.iter().map(|entry| entry.2).collect();
    (order, times, KeyRanges::Dense { min, ranges })
}

/// Sorts the usable rows by their keys in Arrow's row format, then time and created.
fn sort_encoded(
    schema: &SchemaRef,
    batches: &[RecordBatch],
    columns: &FeatureColumns,
) -> Result<(Vec<u32>, Vec<i64>, KeyRanges)> {
    let fields = columns.keys.iter().map(|&c| SortField::new(schema.field(c).data_type().clone())).collect();
    let converter = RowConverter::new(fields)?;
    if batches.is_empty() {
        return Ok((Vec::new(), Vec::new(), KeyRanges::Encoded { converter, ranges: HashMap::default() }));
    }
    let whole = |column: usize| -> Result<ArrayRef> {
        let arrays: Vec<&dyn Array> = batches.iter().map(|batch| batch.column(column).as_ref()).collect();
        Ok(concat(&arrays)?)
    };
    let key_columns: Vec<ArrayRef> = columns.keys.iter().map(|&c| whole(c)).collect::<Result<_>>()?;
    let rows = key_columns.first().map_or(0, |keys| keys.len());
    let zeros = || Int64Array::from(vec![0; rows]);
    let times = match columns.time {
        Some(c) => micros(&whole(c)?)?,
        None => zeros(),
    };
    let created = match columns.created {
        Some(c) => micros(&whole(c)?)?,
        None => zeros(),
    };
    let created_at = |row: usize| if created.is_valid(row) { created.value(row) } else { i64::MIN };
    let encoded = converter.convert_columns(&key_columns)?;
    let usable = |row: usize| times.is_valid(row) && key_columns.iter().all(|keys| keys.is_valid(row));
    let mut order: Vec<u32> = (0..rows).filter(|&row| usable(row)).map(|row| row as u32).collect();
    order.sort_unstable_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        encoded
            .row(a)
            .cmp(&encoded.row(b))
            .then(times.value(a).cmp(&times.value(b)))
            .then(created_at(a).cmp(&created_at(b)))
    });
    let mut ranges: HashMap<Vec<u8>, (u32, u32)> = HashMap::default();
    let mut start = 0;
    for position in 1..=order.len() {
        let key = |p: usize| encoded.row(order[p] as usize);
        if position == order.len() || key(position) != key(start) {
            ranges.insert(key(start).as_ref().to_vec(), (start as u32, position as u32));
            start = position;
        }
    }
    let sorted_times = order.iter().map(|&row| times.value(row as usize)).collect();
    Ok((order, sorted_times, KeyRanges::Encoded { converter, ranges }))
}

/// One batch's integers.
fn part(batch: &RecordBatch, columns: &FeatureColumns) -> Result<Part> {
    let keys = cast(batch.column(columns.keys[0]), &DataType::Int64)?.as_primitive::<Int64Type>().clone();
    let times = match columns.time {
        Some(c) => micros(batch.column(c))?,
        None => Int64Array::from(vec![0; batch.num_rows()]),
    };
    let created = match columns.created {
        Some(c) => {
            let created = micros(batch.column(c))?;
            (0..created.len()).map(|row| if created.is_valid(row) { created.value(row) } else { i64::MIN }).collect()
        }
        None => Vec::new(),
    };
    Ok(Part { keys, times, created })
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

/// Types `interleave` gathers from many arrays as fast as from one.
fn gathers_from_batches(data_type: &DataType) -> bool {
    data_type.is_primitive()
        || matches!(
            data_type,
            DataType::Utf8
                | DataType::LargeUtf8
                | DataType::Binary
                | DataType::LargeBinary
                | DataType::Utf8View
                | DataType::BinaryView
        )
}

/// Integer key types that fit in an `i64`.
fn integer_type(data_type: &DataType) -> bool {
    data_type.is_integer() && !matches!(data_type, DataType::UInt64)
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
    use datafusion::arrow::array::{Date32Array, TimestampMicrosecondArray};
    use datafusion::arrow::datatypes::{Field, Schema};

    use super::*;

    const COLUMNS: FeatureColumns = FeatureColumns { keys: Vec::new(), time: Some(1), created: Some(2) };

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("key", DataType::Int64, true),
            Field::new("day", DataType::Date32, true),
            Field::new("created", DataType::Timestamp(TimeUnit::Microsecond, None), true),
            Field::new("value", DataType::Int64, true),
        ]))
    }

    /// Feature rows (key, day, created, value) cut into batches of `size`.
    fn batches(rows: &[(i64, i32, i64, i64)], size: usize) -> Vec<RecordBatch> {
        let schema = schema();
        rows.chunks(size)
            .map(|chunk| {
                let column = |f: fn(&(i64, i32, i64, i64)) -> i64| Int64Array::from_iter_values(chunk.iter().map(f));
                RecordBatch::try_new(
                    Arc::clone(&schema),
                    vec![
                        Arc::new(column(|row| row.0)),
                        Arc::new(Date32Array::from_iter_values(chunk.iter().map(|row| row.1))),
                        Arc::new(TimestampMicrosecondArray::from_iter_values(chunk.iter().map(|row| row.2))),
                        Arc::new(column(|row| row.3)),
                    ],
                )
                .unwrap()
            })
            .collect()
    }

    /// The value found for each (key, day) probe, with a TTL of `ttl_days`.
    fn probe(index: &FeatureIndex, probes: &[(i64, i32)], ttl_days: i64) -> Vec<Option<i64>> {
        let keys: ArrayRef = Arc::new(Int64Array::from_iter_values(probes.iter().map(|p| p.0)));
        let days: ArrayRef = Arc::new(Date32Array::from_iter_values(probes.iter().map(|p| p.1)));
        let found = index.lookup(&[keys], &days, Some(ttl_days * 86_400_000_000), false).unwrap();
        let values = index.take(&found).unwrap();
        values[0].as_primitive::<Int64Type>().iter().collect()
    }

    /// Rows sorted by (key, day, created), with ties on day broken by created.
    fn sorted_rows(spread: i64) -> Vec<(i64, i32, i64, i64)> {
        let mut rows = Vec::new();
        for key in 0..300i64 {
            for day in (0..40).filter(|day| (key + day) % 3 != 0) {
                for created in 0..=(key % 2) {
                    rows.push((key * spread, day as i32, created, key * 1000 + day * 10 + created));
                }
            }
        }
        rows
    }

    fn columns() -> FeatureColumns {
        FeatureColumns { keys: vec![0], ..COLUMNS }
    }

    #[test]
    fn sorted_batches_in_any_order_and_shuffled_rows_find_the_same_rows() {
        for spread in [1, 1_000_000_007] {
            let rows = sorted_rows(spread);
            let probes: Vec<(i64, i32)> =
                (0..320i64).flat_map(|key| (0..45).map(move |day| (key * spread, day))).collect();
            let mut in_batches = batches(&rows, 97);
            in_batches.reverse();
            let sorted = FeatureIndex::build(&schema(), in_batches, &columns(), &[3]).unwrap();
            assert!(sorted.order.is_none(), "sorted batches are used as they are");
            let mut shuffled = rows.clone();
            // A deterministic shuffle.
            for i in (1..shuffled.len()).rev() {
                shuffled.swap(i, (i * 7919 + 13) % (i + 1));
            }
            let resorted = FeatureIndex::build(&schema(), batches(&shuffled, 97), &columns(), &[3]).unwrap();
            assert!(resorted.order.is_some());
            let expected: Vec<Option<i64>> = probes
                .iter()
                .map(|&(key, day)| {
                    rows.iter()
                        .filter(|row| row.0 == key && row.1 <= day && day - row.1 <= 5)
                        .max_by_key(|row| (row.1, row.2))
                        .map(|row| row.3)
                })
                .collect();
            assert_eq!(probe(&sorted, &probes, 5), expected);
            assert_eq!(probe(&resorted, &probes, 5), expected);
            let dense = matches!(sorted.keys, KeyRanges::Dense { .. });
            assert_eq!(dense, spread == 1, "keys {spread} apart");
        }
    }

    #[test]
    fn overlapping_sorted_batches_are_sorted() {
        let rows = sorted_rows(1);
        // Every batch sorted, but batches interleave: not a sequence.
        let (even, odd): (Vec<_>, Vec<_>) = rows.iter().enumerate().partition(|(i, _)| i % 2 == 0);
        let even: Vec<_> = even.into_iter().map(|(_, row)| *row).collect();
        let odd: Vec<_> = odd.into_iter().map(|(_, row)| *row).collect();
        let mut parts = batches(&even, even.len());
        parts.extend(batches(&odd, odd.len()));
        let index = FeatureIndex::build(&schema(), parts, &columns(), &[3]).unwrap();
        assert!(index.order.is_some());
        let whole = FeatureIndex::build(&schema(), batches(&rows, 50), &columns(), &[3]).unwrap();
        let probes: Vec<(i64, i32)> = (0..300).map(|key| (key, 39)).collect();
        assert_eq!(probe(&index, &probes, 100), probe(&whole, &probes, 100));
    }

    #[test]
    fn text_keys_dictionary_outputs_and_no_rows_at_all() {
        use datafusion::arrow::array::{DictionaryArray, StringArray};
        use datafusion::arrow::datatypes::Int32Type;

        let schema: SchemaRef = Arc::new(Schema::new(vec![
            Field::new("key", DataType::Utf8, true),
            Field::new("day", DataType::Date32, true),
            Field::new("segment", DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)), true),
        ]));
        let batch = |keys: Vec<Option<&str>>, days: Vec<i32>, segments: Vec<&str>| {
            let segments: DictionaryArray<Int32Type> = segments.into_iter().collect();
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![Arc::new(StringArray::from(keys)), Arc::new(Date32Array::from(days)), Arc::new(segments)],
            )
            .unwrap()
        };
        let columns = FeatureColumns { keys: vec![0], time: Some(1), created: None };
        let batches = vec![
            batch(vec![Some("b"), Some("a"), None], vec![5, 1, 0], vec!["late-b", "early-a", "no-key"]),
            batch(vec![Some("a"), Some("b")], vec![3, 2], vec!["late-a", "early-b"]),
        ];
        let index = FeatureIndex::build(&schema, batches, &columns, &[2]).unwrap();
        let keys: ArrayRef =
            Arc::new(StringArray::from(vec![Some("a"), Some("a"), Some("b"), Some("c"), None, Some("b")]));
        let days: ArrayRef = Arc::new(Date32Array::from(vec![2, 9, 4, 9, 9, 1]));
        let found = index.lookup(&[Arc::clone(&keys)], &days, None, false).unwrap();
        let values = index.take(&found).unwrap();
        assert_eq!(values[0].data_type(), schema.field(2).data_type());
        let text = datafusion::arrow::compute::cast(&values[0], &DataType::Utf8).unwrap();
        let text: Vec<Option<&str>> = text.as_string::<i32>().iter().collect();
        assert_eq!(text, vec![Some("early-a"), Some("late-a"), Some("early-b"), None, None, None]);

        // A product without rows: every entity row gets NULLs of the declared types.
        for columns in [columns, FeatureColumns { keys: vec![1], time: None, created: None }] {
            let empty = FeatureIndex::build(&schema, Vec::new(), &columns, &[2]).unwrap();
            let key = if columns.keys == [0] { Arc::clone(&keys) } else { Arc::clone(&days) };
            let found = empty.lookup(&[key], &days, None, columns.time.is_none()).unwrap();
            let values = empty.take(&found).unwrap();
            assert_eq!(values[0].data_type(), schema.field(2).data_type());
            assert_eq!(values[0].null_count(), 6);
        }
    }

    #[test]
    fn rows_without_a_key_or_time_never_match() {
        let schema = schema();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from(vec![Some(7), None, Some(7), Some(7), Some(3)])),
                Arc::new(Date32Array::from(vec![Some(1), Some(2), None, Some(4), Some(9)])),
                Arc::new(TimestampMicrosecondArray::from(vec![Some(0), Some(0), Some(0), None, Some(0)])),
                Arc::new(Int64Array::from(vec![10, 20, 30, 40, 50])),
            ],
        )
        .unwrap();
        // Close keys (counted into ranges) and keys far apart (sorted as tuples).
        for far in [false, true] {
            let batch = if far {
                let keys = batch.column(0).as_primitive::<Int64Type>().unary::<_, Int64Type>(|key| key << 40);
                let mut columns = batch.columns().to_vec();
                columns[0] = Arc::new(keys);
                RecordBatch::try_new(Arc::clone(&schema), columns).unwrap()
            } else {
                batch.clone()
            };
            let index = FeatureIndex::build(&schema, vec![batch], &columns(), &[3]).unwrap();
            assert!(index.order.is_some());
            let key = |k: i64| if far { k << 40 } else { k };
            let probes = [(key(7), 0), (key(7), 3), (key(7), 5), (key(3), 9), (key(5), 9)];
            // The row with a NULL created-at is still found (its creation loses ties only).
            assert_eq!(probe(&index, &probes, 100), vec![None, Some(10), Some(40), Some(50), None]);
        }
    }

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
