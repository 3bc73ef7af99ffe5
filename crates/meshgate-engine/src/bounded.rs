//! String functions whose output size is an argument (`repeat`, `lpad`, `rpad`) make
//! their values outside the query memory pool: `repeat('x', 1500000000)` alone takes
//! gigabytes. Each is wrapped to compute, before it runs, how many bytes a batch of its
//! values can take, and to refuse one over [`MAX_BATCH_BYTES`] (RESOURCE_EXHAUSTED
//! naming the function) instead of taking the server's memory.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
};

/// The most bytes one batch of a wrapped function's values may take.
pub(crate) const MAX_BATCH_BYTES: u64 = 256 << 20;

/// How a function's output size follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Size {
    /// `repeat(text, count)`: the text's bytes times the count.
    Repeat,
    /// `lpad`/`rpad(text, length [, fill])`: up to 4 bytes a character of the length.
    Pad,
}

/// `inner`, refusing a batch whose values would be too large.
#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct Bounded {
    inner: Arc<ScalarUDF>,
    size: Size,
}

/// The wrapped `repeat`, `lpad` and `rpad`, to register over DataFusion's own.
pub(crate) fn bounded_functions() -> Vec<Arc<ScalarUDF>> {
    use datafusion::functions::{string, unicode};
    [(string::repeat(), Size::Repeat), (unicode::lpad(), Size::Pad), (unicode::rpad(), Size::Pad)]
        .into_iter()
        .map(|(inner, size)| Arc::new(ScalarUDF::new_from_impl(Bounded { inner, size })))
        .collect()
}

impl Bounded {
    /// The bytes the batch's values can take, at most (saturating).
    fn bytes(&self, args: &ScalarFunctionArgs) -> u64 {
        let rows = args.number_rows.max(1);
        let Some(count) = args.args.get(1) else { return 0 };
        match self.size {
            Size::Repeat => {
                let Some(text) = args.args.first() else { return 0 };
                match (text, count) {
                    (ColumnarValue::Scalar(text), ColumnarValue::Scalar(count)) => {
                        text_len(text).saturating_mul(count_of(count)).saturating_mul(rows as u64)
                    }
                    (ColumnarValue::Scalar(text), ColumnarValue::Array(counts)) => {
                        text_len(text).saturating_mul(sum_counts(counts))
                    }
                    (ColumnarValue::Array(texts), ColumnarValue::Scalar(count)) => {
                        total_bytes(texts).saturating_mul(count_of(count))
                    }
                    (ColumnarValue::Array(texts), ColumnarValue::Array(counts)) => row_products(texts, counts),
                }
            }
            Size::Pad => match count {
                ColumnarValue::Scalar(count) => count_of(count).saturating_mul(4).saturating_mul(rows as u64),
                ColumnarValue::Array(counts) => sum_counts(counts).saturating_mul(4),
            },
        }
    }
}

fn text_len(value: &ScalarValue) -> u64 {
    match value {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s.len() as u64,
        _ => 0,
    }
}

fn count_of(value: &ScalarValue) -> u64 {
    match value.cast_to(&DataType::Int64) {
        Ok(ScalarValue::Int64(Some(n))) => u64::try_from(n).unwrap_or(0),
        _ => 0,
    }
}

fn sum_counts(counts: &dyn Array) -> u64 {
    let Ok(counts) = datafusion::arrow::compute::cast(counts, &DataType::Int64) else { return u64::MAX };
    counts
        .as_primitive::<Int64Type>()
        .iter()
        .flatten()
        .map(|n| u64::try_from(n).unwrap_or(0))
        .fold(0, u64::saturating_add)
}

/// The sum over rows of the text's bytes times the row's count.
fn row_products(texts: &dyn Array, counts: &dyn Array) -> u64 {
    let (Ok(texts), Ok(counts)) = (
        datafusion::arrow::compute::cast(texts, &DataType::LargeUtf8),
        datafusion::arrow::compute::cast(counts, &DataType::Int64),
    ) else {
        return u64::MAX;
    };
    texts
        .as_string::<i64>()
        .iter()
        .zip(counts.as_primitive::<Int64Type>().iter())
        .map(|(text, count)| match (text, count) {
            (Some(text), Some(count)) => (text.len() as u64).saturating_mul(u64::try_from(count).unwrap_or(0)),
            _ => 0,
        })
        .fold(0, u64::saturating_add)
}

/// The bytes of every text in the column.
fn total_bytes(texts: &dyn Array) -> u64 {
    let Ok(texts) = datafusion::arrow::compute::cast(texts, &DataType::LargeUtf8) else { return u64::MAX };
    texts.as_string::<i64>().iter().flatten().map(|s| s.len() as u64).fold(0, u64::saturating_add)
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let bytes = self.bytes(&args);
        if bytes > MAX_BATCH_BYTES {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{}() would make values of more than {} MiB at once (a batch may take at most {} MiB)",
                self.name(),
                bytes >> 20,
                MAX_BATCH_BYTES >> 20
            )));
        }
        self.inner.invoke_with_args(args)
    }
}
