//! `mesh_split_hash(salt, key, ...)`: a row's place in [0, 1) for deterministic
//! train/validation/test splits. The value depends only on the salt and the key's
//! values, so a row keeps its split when data is added, across runs, ranks and
//! machines, and any client can compute it (docs/ml.md gives the definition):
//! SHA-256 over `salt ‖ 0x1F ‖ text(key1) ‖ 0x1F ‖ text(key2) …`; the first eight
//! bytes as a big-endian integer, shifted right by 11 (its top 53 bits), divided by 2^53. A value's text is its Arrow cast to
//! utf8; NULL is the single byte 0x00.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use sha2::{Digest, Sha256};

/// The separator between the salt and each key value.
const SEPARATOR: u8 = 0x1F;

#[derive(Debug, PartialEq, Eq, Hash)]
pub(crate) struct SplitHash {
    signature: Signature,
}

impl SplitHash {
    pub(crate) fn udf() -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(Self { signature: Signature::variadic_any(Volatility::Immutable) }))
    }
}

impl ScalarUDFImpl for SplitHash {
    fn name(&self) -> &str {
        "mesh_split_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() < 2 {
            return plan_err!("mesh_split_hash(salt, key, ...) takes a salt and at least one key column");
        }
        if !matches!(arg_types[0], DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null) {
            return plan_err!("mesh_split_hash: the salt (first argument) must be text, not {}", arg_types[0]);
        }
        Ok(DataType::Float64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let texts: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|arg| cast(arg.to_array(rows)?.as_ref(), &DataType::Utf8).map_err(Into::into))
            .collect::<Result<_>>()?;
        let mut out = Float64Builder::with_capacity(rows);
        let mut hasher = Sha256::new();
        for row in 0..rows {
            for (index, text) in texts.iter().enumerate() {
                if index > 0 {
                    hasher.update([SEPARATOR]);
                }
                let text = text.as_string::<i32>();
                if text.is_null(row) {
                    hasher.update([0u8]);
                } else {
                    hasher.update(text.value(row).as_bytes());
                }
            }
            let digest = hasher.finalize_reset();
            let mut head = [0u8; 8];
            head.copy_from_slice(&digest[..8]);
            out.append_value(fraction(u64::from_be_bytes(head)));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `value / 2^64`, always below 1 (an f64 rounds u64::MAX up to 2^64; the top 53
/// bits keep it exact and below 1).
fn fraction(value: u64) -> f64 {
    (value >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_stay_below_one() {
        assert_eq!(fraction(0), 0.0);
        assert!(fraction(u64::MAX) < 1.0);
        assert_eq!(fraction(1 << 63), 0.5);
    }
}
