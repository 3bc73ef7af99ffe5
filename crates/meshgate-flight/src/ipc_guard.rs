//! Bound parameters arrive as Arrow IPC messages in FlightData, from any client.
//! arrow-ipc's reader trusts much of what a message says: it panics on a schema field
//! whose type table is missing or has an unknown unit, precision or bit width; on a
//! batch buffer past the message body, or a validity bitmap too small for its column;
//! on variadic buffer counts it does not use; and it allocates what a compressed
//! buffer claims to hold before looking (an allocation that fails aborts the process).
//! Every message is checked here first, so a malformed stream is a bad request like any
//! other. Parameters are scalar values: columns of nested types are refused too, which
//! is what makes each column's buffers known in advance.

use std::collections::HashMap;

use arrow::ipc::{
    DateUnit, Endianness, Field, IntervalUnit, MessageHeader, MetadataVersion, Precision, RecordBatch, TimeUnit, Type,
    UnionMode, root_as_message,
};
use arrow_flight::FlightData;
use arrow_flight::error::FlightError;

/// The most parameter rows one DoPut binds (each row is planned as its own statement).
pub(crate) const MAX_PARAMETER_ROWS: i64 = 10_000;

/// How a column of a scalar type lays out its nodes and buffers in a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Layout {
    /// No buffers (the Null type).
    Null,
    /// Validity and values of this many bytes each (numbers, dates, times, decimals,
    /// fixed-size binary, dictionary indices).
    Fixed(usize),
    /// Validity and a values bitmap.
    Boolean,
    /// Validity, offsets of this many bytes each, and data (strings, binary).
    Variable(usize),
    /// Validity, views and a variadic number of data buffers.
    View,
    /// Type ids (and offsets, when dense), then each child's own node and buffers:
    /// how some clients wrap every parameter.
    Union { dense: bool, children: Vec<Layout> },
}

impl Layout {
    /// Buffers of this column's own node (not its children's).
    fn buffers(&self, variadic: usize) -> usize {
        match self {
            Layout::Null => 0,
            Layout::Fixed(_) | Layout::Boolean => 2,
            Layout::Variable(_) => 3,
            Layout::View => 2 + variadic,
            Layout::Union { dense, .. } => 1 + usize::from(*dense),
        }
    }

    fn views(&self) -> usize {
        match self {
            Layout::View => 1,
            Layout::Union { children, .. } => children.iter().map(Layout::views).sum(),
            _ => 0,
        }
    }
}

/// Checks the messages of one IPC stream in order (the schema first).
#[derive(Debug, Default)]
pub(crate) struct IpcGuard {
    /// The layout of each column of a record batch.
    columns: Vec<Layout>,
    /// The layout of each dictionary's values, by dictionary id.
    dictionaries: HashMap<i64, Layout>,
    /// Rows of record batches so far.
    rows: i64,
}

impl IpcGuard {
    pub(crate) fn check(&mut self, data: &FlightData) -> Result<(), FlightError> {
        if data.data_header.is_empty() {
            return Ok(());
        }
        let message =
            root_as_message(&data.data_header).map_err(|error| bad(format!("not an Arrow IPC message: {error}")))?;
        if message.version() < MetadataVersion::V5 && message.header_type() != MessageHeader::Schema {
            // Older versions lay out some buffers differently; every client of this
            // gateway's Arrow version writes version 5.
            return Err(bad(format!(
                "Arrow IPC metadata version {:?} is not supported; send version 5",
                message.version()
            )));
        }
        let body = data.data_body.len();
        match message.header_type() {
            MessageHeader::Schema => {
                let schema = message.header_as_schema().ok_or_else(|| bad("a schema message without its schema"))?;
                self.schema(&schema).map_err(|problem| bad(format!("the parameters' schema: {problem}")))
            }
            MessageHeader::RecordBatch => {
                let batch =
                    message.header_as_record_batch().ok_or_else(|| bad("a record batch message without its batch"))?;
                check_batch(&batch, &self.columns, body, "record batch").map_err(bad)?;
                self.rows += batch.length();
                if self.rows > MAX_PARAMETER_ROWS {
                    return Err(bad(format!(
                        "over {MAX_PARAMETER_ROWS} rows of parameters; bind fewer rows per execution"
                    )));
                }
                Ok(())
            }
            MessageHeader::DictionaryBatch => {
                let dictionary = message
                    .header_as_dictionary_batch()
                    .ok_or_else(|| bad("a dictionary message without its batch"))?;
                let layout = self
                    .dictionaries
                    .get(&dictionary.id())
                    .ok_or_else(|| bad(format!("a dictionary batch for unknown dictionary {}", dictionary.id())))?
                    .clone();
                let batch = dictionary.data().ok_or_else(|| bad("a dictionary batch without its values"))?;
                check_batch(&batch, std::slice::from_ref(&layout), body, "dictionary batch").map_err(bad)
            }
            _ => Ok(()),
        }
    }

    fn schema(&mut self, schema: &arrow::ipc::Schema) -> Result<(), String> {
        let fields = schema.fields().ok_or("it has no fields")?;
        if schema.endianness() == Endianness::Big {
            return Err("big-endian data is not supported".into());
        }
        self.columns.clear();
        self.dictionaries.clear();
        for field in fields {
            let layout = self.layout(&field)?;
            self.columns.push(layout);
        }
        Ok(())
    }

    /// The layout of `field` in a record batch; a dictionary-encoded field's values
    /// are registered under its dictionary id.
    fn layout(&mut self, field: &Field) -> Result<Layout, String> {
        let values = match field.type_type() {
            Type::Union => self.union_layout(field)?,
            _ => scalar_layout(field)?,
        };
        let Some(dictionary) = field.dictionary() else { return Ok(values) };
        let width = match dictionary.indexType() {
            Some(index) if [8, 16, 32, 64].contains(&index.bitWidth()) => index.bitWidth() as usize / 8,
            _ => return Err(format!("field {:?}: its dictionary has no valid index type", name(field))),
        };
        self.dictionaries.insert(dictionary.id(), values);
        Ok(Layout::Fixed(width))
    }

    /// A sparse or dense union of scalars, with the type ids arrow-ipc expects (one
    /// per child, distinct, 0 to 127).
    fn union_layout(&mut self, field: &Field) -> Result<Layout, String> {
        let malformed = || format!("field {:?}: its Union type is malformed", name(field));
        let union = field.type_as_union().ok_or_else(malformed)?;
        let dense = match union.mode() {
            UnionMode::Dense => true,
            UnionMode::Sparse => false,
            _ => return Err(malformed()),
        };
        let fields: Vec<Field> = field.children().into_iter().flatten().collect();
        if let Some(ids) = union.typeIds() {
            let ids: Vec<i32> = ids.iter().collect();
            let distinct: std::collections::BTreeSet<i32> = ids.iter().copied().collect();
            if ids.len() != fields.len() || distinct.len() != ids.len() || ids.iter().any(|id| !(0..=127).contains(id))
            {
                return Err(malformed());
            }
        } else if fields.len() > 128 {
            return Err(malformed());
        }
        let children = fields.iter().map(|child| self.layout(child)).collect::<Result<_, _>>()?;
        Ok(Layout::Union { dense, children })
    }
}

fn bad(message: impl Into<String>) -> FlightError {
    FlightError::DecodeError(message.into())
}

fn name<'a>(field: &Field<'a>) -> &'a str {
    field.name().unwrap_or_default()
}

/// The layout of a scalar field whose type table says what arrow-ipc's schema
/// conversion takes for granted; anything else is an error naming the field.
fn scalar_layout(field: &Field) -> Result<Layout, String> {
    let malformed = || format!("field {:?}: its {:?} type is malformed", name(field), field.type_type());
    let fixed = |width: Option<usize>| width.map(Layout::Fixed).ok_or_else(malformed);
    let bits = |bits: i32, allowed: &[i32]| allowed.contains(&bits).then_some(bits as usize / 8);
    match field.type_type() {
        Type::Null => Ok(Layout::Null),
        Type::Bool => Ok(Layout::Boolean),
        Type::Binary | Type::Utf8 => Ok(Layout::Variable(4)),
        Type::LargeBinary | Type::LargeUtf8 => Ok(Layout::Variable(8)),
        Type::BinaryView | Type::Utf8View => Ok(Layout::View),
        Type::Int => fixed(field.type_as_int().and_then(|int| bits(int.bitWidth(), &[8, 16, 32, 64]))),
        Type::FixedSizeBinary => fixed(field.type_as_fixed_size_binary().filter(|b| b.byteWidth() > 0).map(|_| 1)),
        Type::FloatingPoint => fixed(field.type_as_floating_point().and_then(|float| match float.precision() {
            Precision::HALF => Some(2),
            Precision::SINGLE => Some(4),
            Precision::DOUBLE => Some(8),
            _ => None,
        })),
        Type::Date => fixed(field.type_as_date().and_then(|date| match date.unit() {
            DateUnit::DAY => Some(4),
            DateUnit::MILLISECOND => Some(8),
            _ => None,
        })),
        Type::Time => fixed(field.type_as_time().and_then(|time| match (time.bitWidth(), time.unit()) {
            (32, TimeUnit::SECOND | TimeUnit::MILLISECOND) => Some(4),
            (64, TimeUnit::MICROSECOND | TimeUnit::NANOSECOND) => Some(8),
            _ => None,
        })),
        Type::Timestamp => {
            fixed(field.type_as_timestamp().filter(|t| TimeUnit::ENUM_VALUES.contains(&t.unit())).map(|_| 8))
        }
        Type::Interval => fixed(field.type_as_interval().and_then(|interval| match interval.unit() {
            IntervalUnit::YEAR_MONTH => Some(4),
            IntervalUnit::DAY_TIME => Some(8),
            IntervalUnit::MONTH_DAY_NANO => Some(16),
            _ => None,
        })),
        Type::Duration => {
            fixed(field.type_as_duration().filter(|d| TimeUnit::ENUM_VALUES.contains(&d.unit())).map(|_| 8))
        }
        Type::Decimal => fixed(field.type_as_decimal().and_then(|decimal| {
            let fits = u8::try_from(decimal.precision()).is_ok() && i8::try_from(decimal.scale()).is_ok();
            bits(decimal.bitWidth(), &[32, 64, 128, 256]).filter(|_| fits)
        })),
        other => Err(format!(
            "field {:?} is of type {other:?}; parameters are scalar values (numbers, strings, binary, booleans, \
             dates, times, timestamps, intervals, durations, decimals, nulls, or unions of those)",
            name(field)
        )),
    }
}

/// A batch whose columns have `layouts`: lengths in range, no compression (whose
/// claimed sizes arrow-ipc allocates before checking), every buffer inside the body,
/// the variadic counts those columns use, and validity and boolean bitmaps as large
/// as their column.
fn check_batch(batch: &RecordBatch, layouts: &[Layout], body: usize, what: &str) -> Result<(), String> {
    if batch.compression().is_some() {
        return Err(format!("the {what} is compressed; send parameters uncompressed"));
    }
    if !(0..=MAX_PARAMETER_ROWS).contains(&batch.length()) {
        return Err(format!("the {what} has {} rows; at most {MAX_PARAMETER_ROWS} are bound", batch.length()));
    }
    let buffers: Vec<(usize, usize)> = batch
        .buffers()
        .iter()
        .flatten()
        .enumerate()
        .map(|(index, buffer)| {
            let offset = usize::try_from(buffer.offset()).ok();
            let length = usize::try_from(buffer.length()).ok();
            match offset.zip(length) {
                Some((offset, length)) if offset.checked_add(length).is_some_and(|end| end <= body) => {
                    Ok((offset, length))
                }
                _ => Err(format!(
                    "buffer {index} of the {what} (offset {}, length {}) lies outside its {body}-byte body",
                    buffer.offset(),
                    buffer.length()
                )),
            }
        })
        .collect::<Result<_, _>>()?;
    let nodes: Vec<(i64, i64)> =
        batch.nodes().iter().flatten().map(|node| (node.length(), node.null_count())).collect();
    let views: usize = layouts.iter().map(Layout::views).sum();
    let variadic: Vec<i64> = batch.variadicBufferCounts().into_iter().flatten().collect();
    if variadic.len() != views {
        return Err(format!("the {what} does not give one variadic buffer count per view column"));
    }
    let mut walk = Walk { nodes: &nodes, buffers: &buffers, variadic: variadic.into_iter(), node: 0, buffer: 0, what };
    for (column, layout) in layouts.iter().enumerate() {
        walk.column(column, layout)?;
    }
    if walk.node != nodes.len() {
        return Err(format!("the {what} has {} nodes for columns that have {}", nodes.len(), walk.node));
    }
    Ok(())
}

/// Each column's node and buffers in order, as arrow-ipc's reader takes them (IPC
/// version 5: unions without a validity buffer).
struct Walk<'a> {
    nodes: &'a [(i64, i64)],
    buffers: &'a [(usize, usize)],
    variadic: std::vec::IntoIter<i64>,
    node: usize,
    buffer: usize,
    what: &'a str,
}

impl Walk<'_> {
    fn column(&mut self, column: usize, layout: &Layout) -> Result<(), String> {
        let what = self.what;
        let &(length, nulls) =
            self.nodes.get(self.node).ok_or_else(|| format!("the {what} has too few nodes for its columns"))?;
        self.node += 1;
        if !(0..=MAX_PARAMETER_ROWS).contains(&length) || !(0..=length).contains(&nulls) {
            return Err(format!("column {column} of the {what} has {length} rows and {nulls} nulls"));
        }
        let extra = match layout {
            Layout::View => usize::try_from(self.variadic.next().unwrap_or(-1))
                .ok()
                .filter(|count| *count <= self.buffers.len())
                .ok_or_else(|| format!("column {column} of the {what} has a bad variadic buffer count"))?,
            _ => 0,
        };
        let count = layout.buffers(extra);
        let own = self
            .buffers
            .get(self.buffer..self.buffer + count)
            .ok_or_else(|| format!("the {what} has {} buffers, too few for its columns", self.buffers.len()))?;
        self.buffer += count;
        let bitmap = (length as usize).div_ceil(8);
        let validity = matches!(layout, Layout::Fixed(_) | Layout::Boolean | Layout::Variable(_) | Layout::View);
        if validity && nulls > 0 && own[0].1 < bitmap {
            return Err(format!(
                "column {column} of the {what}: its validity bitmap is smaller than its {length} rows"
            ));
        }
        // Buffers read as typed values must hold whole values.
        let typed = match layout {
            Layout::Fixed(width) | Layout::Variable(width) => Some((1, *width)),
            Layout::View => Some((1, 16)),
            Layout::Union { dense: true, .. } => Some((1, 4)),
            _ => None,
        };
        if let Some((index, width)) = typed
            && own[index].1 % width != 0
        {
            return Err(format!(
                "column {column} of the {what}: a buffer of {} bytes for {width}-byte values",
                own[index].1
            ));
        }
        if *layout == Layout::Boolean && own[1].1 < bitmap {
            return Err(format!("column {column} of the {what}: its values are fewer than its {length} rows"));
        }
        if let Layout::Union { children, .. } = layout {
            for child in children {
                self.column(column, child)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "ipc_guard_tests.rs"]
mod tests;
