//! SQL functions meshgate adds to DataFusion's, with the meanings analysts know
//! from other engines (README, "SQL dialect"): `date_diff`/`datediff`,
//! `strftime`, `regexp_extract`, `current_user`, `current_schema()`,
//! `current_database()`. Policy expressions do not get them (their functions are a
//! fixed list, planned in the policy crate's own session).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};
use regex::Regex;

use crate::date_diff::DateDiff;

/// Registers the functions that are the same for every session.
pub(crate) fn register_dialect(state: &mut SessionState, catalog: &str) -> Result<()> {
    // DuckDB's strftime(value, format) is DataFusion's to_char: same order, chrono's codes.
    state.register_udf(Arc::new(
        datafusion::functions::datetime::to_char().as_ref().clone().with_aliases(["strftime"]),
    ))?;
    state.register_udf(DateDiff::udf())?;
    state.register_udf(RegexpExtract::udf())?;
    state.register_udf(crate::split_hash::SplitHash::udf())?;
    for function in crate::bounded::bounded_functions() {
        state.register_udf(function)?;
    }
    state.register_udf(SessionValue::udf("current_database", &["current_catalog"], Some(catalog)))?;
    Ok(())
}

/// Registers the functions whose value is the request's: who asks, in which schema.
pub(crate) fn register_session(state: &mut SessionState, user: &str, schema: Option<&str>) -> Result<()> {
    state.register_udf(SessionValue::udf("current_user", &["session_user"], Some(user)))?;
    state.register_udf(SessionValue::udf("current_schema", &[], schema))?;
    Ok(())
}

/// A function without arguments whose value is fixed for the session (NULL when
/// there is none, as `current_schema()` without a session schema).
#[derive(Debug, PartialEq, Eq, Hash)]
struct SessionValue {
    name: &'static str,
    aliases: Vec<String>,
    value: Option<String>,
    signature: Signature,
}

impl SessionValue {
    fn udf(name: &'static str, aliases: &[&str], value: Option<&str>) -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(Self {
            name,
            aliases: aliases.iter().map(|alias| (*alias).to_owned()).collect(),
            value: value.map(str::to_owned),
            signature: Signature::nullary(Volatility::Stable),
        }))
    }
}

impl ScalarUDFImpl for SessionValue {
    fn name(&self) -> &str {
        self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(ScalarValue::Utf8(self.value.clone())))
    }
}

const EXTRACT_USAGE: &str = "regexp_extract takes (text, pattern[, group]), for example \
                             regexp_extract(c_phone, '^([0-9]+)-', 1)";

/// `regexp_extract(text, pattern[, group])`, as DuckDB: capture group `group` (0,
/// the whole match, by default) of the first match; '' when the pattern does not
/// match; NULL when the text is NULL. Patterns use Rust's `regex` syntax.
#[derive(Debug, PartialEq, Eq, Hash)]
struct RegexpExtract {
    signature: Signature,
}

impl RegexpExtract {
    fn udf() -> Arc<ScalarUDF> {
        Arc::new(ScalarUDF::new_from_impl(Self { signature: Signature::user_defined(Volatility::Immutable) }))
    }
}

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexp_extract"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let text =
            |ty: &DataType| matches!(ty, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null);
        match arg_types {
            [value, pattern] if text(value) && text(pattern) => Ok(vec![DataType::Utf8, DataType::Utf8]),
            [value, pattern, group] if text(value) && text(pattern) && (group.is_integer() || group.is_null()) => {
                Ok(vec![DataType::Utf8, DataType::Utf8, DataType::Int64])
            }
            _ => plan_err!("{EXTRACT_USAGE}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (value, pattern, group) = match args.args.as_slice() {
            [value, pattern] => (value, pattern, None),
            [value, pattern, group] => (value, pattern, Some(group)),
            _ => return exec_err!("{EXTRACT_USAGE}"),
        };
        let group = match group {
            None => 0,
            Some(ColumnarValue::Scalar(ScalarValue::Int64(Some(group)))) if *group >= 0 => *group as usize,
            Some(ColumnarValue::Scalar(ScalarValue::Int64(None))) => {
                return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
            }
            Some(_) => return exec_err!("regexp_extract: the group must be a constant number, 0 or more"),
        };
        let pattern = match pattern {
            ColumnarValue::Scalar(ScalarValue::Utf8(Some(pattern))) => pattern,
            ColumnarValue::Scalar(ScalarValue::Utf8(None)) => {
                return Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)));
            }
            _ => return exec_err!("regexp_extract: the pattern must be a constant"),
        };
        let regex = match Regex::new(pattern) {
            Ok(regex) => regex,
            Err(error) => return exec_err!("regexp_extract: invalid pattern '{pattern}': {error}"),
        };
        if group >= regex.captures_len() {
            return exec_err!(
                "regexp_extract: pattern '{pattern}' has {} capture group(s), no group {group}",
                regex.captures_len() - 1
            );
        }
        let scalar = matches!(value, ColumnarValue::Scalar(_));
        let rows = if scalar { 1 } else { args.number_rows };
        let texts = cast(&value.to_array(rows)?, &DataType::Utf8)?;
        let texts = texts.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(texts.len(), texts.len() * 8);
        for text in texts.iter() {
            match text {
                None => out.append_null(),
                Some(text) => {
                    let found = regex.captures(text).and_then(|captures| captures.get(group));
                    out.append_value(found.map_or("", |m| m.as_str()));
                }
            }
        }
        let extracted: ArrayRef = Arc::new(out.finish());
        if scalar {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&extracted, 0)?));
        }
        Ok(ColumnarValue::Array(extracted))
    }
}
