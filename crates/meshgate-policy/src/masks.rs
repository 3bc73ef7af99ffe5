//! Column masks as expressions over the raw column, evaluated at the scan right after
//! the row filter. `keyed_hash` is an HMAC-SHA256 with the domain's secret, which
//! lives inside the function and never appears in a plan.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::{Array, ArrayRef, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::functions::expr_fn::{char_length, concat, date_trunc, floor, left, repeat, right};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility, cast as cast_expr, col,
    lit, when,
};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::policy_expr::PolicyExpr;

/// A column mask, compiled.
#[derive(Debug, Clone)]
pub enum Mask {
    Null,
    Redact(ScalarValue),
    ShowFirst(usize),
    ShowLast(usize),
    KeyedHash,
    Truncate(String),
    Bucket(f64),
    Expression(Box<PolicyExpr>),
}

impl Mask {
    /// Strictness among masks: when several apply, the highest wins.
    pub fn strictness(&self) -> u8 {
        match self {
            Mask::Null => 6,
            Mask::Redact(_) => 5,
            Mask::KeyedHash => 4,
            Mask::ShowFirst(_) | Mask::ShowLast(_) => 3,
            Mask::Truncate(_) | Mask::Bucket(_) => 2,
            Mask::Expression(_) => 1,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Mask::Null => "null".into(),
            Mask::Redact(value) => format!("redact with {value}"),
            Mask::ShowFirst(n) => format!("show_first {n}"),
            Mask::ShowLast(n) => format!("show_last {n}"),
            Mask::KeyedHash => "keyed_hash".into(),
            Mask::Truncate(unit) => format!("truncate to {unit}"),
            Mask::Bucket(width) => format!("bucket by {width}"),
            Mask::Expression(expr) => format!("expression {}", expr.text),
        }
    }

    /// Checks that the mask fits a column of type `ty` (expression masks are checked
    /// by planning them).
    pub fn check_type(&self, ty: &DataType) -> Result<(), String> {
        let is_text = matches!(ty, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View);
        match self {
            Mask::ShowFirst(_) | Mask::ShowLast(_) if !is_text => Err(format!("needs a text column, not {ty}")),
            Mask::Truncate(_) if !matches!(ty, DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)) => {
                Err(format!("needs a date or timestamp column, not {ty}"))
            }
            Mask::Bucket(_) if !ty.is_numeric() => Err(format!("needs a numeric column, not {ty}")),
            Mask::Redact(value) => match value.cast_to(ty) {
                Ok(_) => Ok(()),
                Err(_) => Err(format!("value {value} cannot be a {ty}")),
            },
            _ => Ok(()),
        }
    }

    /// The masked value of `column` (of type `ty`). NULL stays NULL except for
    /// expression masks, which decide for themselves.
    pub fn to_expr(&self, column: &str, ty: &DataType, hash: &Arc<ScalarUDF>, custom: Option<Expr>) -> Result<Expr> {
        let raw = col(datafusion::common::Column::from_name(column));
        let keep_nulls = |masked: Expr| {
            when(raw.clone().is_null(), lit(ScalarValue::try_from(masked_type(self, ty))?)).otherwise(masked)
        };
        Ok(match self {
            Mask::Null => lit(ScalarValue::try_from(ty)?),
            Mask::Redact(value) => keep_nulls(lit(value.cast_to(ty)?))?,
            Mask::ShowFirst(n) | Mask::ShowLast(n) => {
                let n64 = i64::try_from(*n).unwrap_or(i64::MAX);
                let length = char_length(raw.clone());
                let stars = repeat(lit("*"), length.clone() - lit(n64));
                let masked = match self {
                    Mask::ShowFirst(_) => concat(vec![left(raw.clone(), lit(n64)), stars]),
                    _ => concat(vec![stars, right(raw.clone(), lit(n64))]),
                };
                when(length.lt_eq(lit(n64)), raw.clone()).otherwise(cast_expr(masked, ty.clone()))?
            }
            Mask::KeyedHash => hash.call(vec![cast_expr(raw, DataType::Utf8)]),
            Mask::Truncate(unit) => cast_expr(date_trunc(lit(unit.as_str()), raw), ty.clone()),
            Mask::Bucket(width) => {
                let width = lit(*width);
                cast_expr(floor(cast_expr(raw, DataType::Float64) / width.clone()) * width, ty.clone())
            }
            Mask::Expression(_) => match custom {
                Some(expr) => expr,
                None => return plan_err!("expression mask on {column} was not compiled"),
            },
        })
    }
}

fn masked_type(mask: &Mask, ty: &DataType) -> DataType {
    match mask {
        Mask::KeyedHash => DataType::Utf8,
        _ => ty.clone(),
    }
}

/// A domain's `keyed_hash` key, and whether it came from the environment (then every
/// process started with the same environment, distributed workers among them,
/// computes the same hashes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DomainKey {
    pub key: Arc<[u8]>,
    pub from_env: bool,
}

/// The `keyed_hash` key of each domain: `MESHGATE_MASK_KEY_<DOMAIN>` when set, else a
/// key derived from one random secret drawn once per process, so a domain's hashes
/// stay the same across reloads (they still change on restart and differ between
/// replicas). Every load warns, naming the domains without a key.
pub(crate) fn domain_keys<'a>(domains: impl Iterator<Item = &'a str>) -> BTreeMap<String, DomainKey> {
    let mut keys = BTreeMap::new();
    let mut unset = Vec::new();
    for domain in domains {
        let key = match env_key(domain) {
            Some(key) => DomainKey { key, from_env: true },
            None => {
                unset.push(domain);
                DomainKey { key: Arc::from(fallback_key(domain).to_vec()), from_env: false }
            }
        };
        keys.insert(domain.to_owned(), key);
    }
    if !unset.is_empty() {
        let variables: Vec<String> = unset.iter().map(|domain| mask_key_variable(domain)).collect();
        tracing::warn!(
            domains = %unset.join(", "),
            "no keyed_hash key for domain(s) {}: set {} for stable hashes. Until then their keyed_hash \
             values come from a random key drawn when this process started: the same across reloads, \
             different after a restart and on every other replica",
            unset.join(", "),
            variables.join(", ")
        );
    }
    keys
}

fn env_key(domain: &str) -> Option<Arc<[u8]>> {
    match std::env::var(mask_key_variable(domain)) {
        Ok(key) if !key.is_empty() => Some(Arc::from(key.into_bytes())),
        _ => None,
    }
}

/// The `keyed_hash` function of `domain` from `MESHGATE_MASK_KEY_<DOMAIN>` alone, for
/// a process that must compute the same hashes as the gateway (a distributed worker);
/// `None` when the variable is unset: a random key would give other values.
pub fn keyed_hash_from_env(domain: &str) -> Option<Arc<ScalarUDF>> {
    env_key(domain).map(|key| KeyedHash::udf(key, true))
}

/// The environment variable holding `domain`'s `keyed_hash` key.
pub fn mask_key_variable(domain: &str) -> String {
    format!("MESHGATE_MASK_KEY_{}", domain.to_ascii_uppercase())
}

/// The key of a domain without `MESHGATE_MASK_KEY_<DOMAIN>`: HMAC of its name under
/// this process's random secret, so domains never share a key.
fn fallback_key(domain: &str) -> [u8; 32] {
    static PROCESS_SECRET: OnceLock<[u8; 32]> = OnceLock::new();
    let secret = PROCESS_SECRET.get_or_init(rand::random);
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(b"meshgate keyed_hash fallback key for domain ");
    mac.update(domain.as_bytes());
    let mut key = [0u8; 32];
    key.copy_from_slice(&mac.finalize().into_bytes());
    key
}

/// `keyed_hash(text)`: lowercase hex HMAC-SHA256 of the UTF-8 text under one domain's key.
pub struct KeyedHash {
    signature: Signature,
    key: Arc<[u8]>,
    /// The key came from the environment: other processes can compute the same hashes.
    portable: bool,
    /// The HMAC with the key already absorbed; cloned per value.
    keyed: Hmac<Sha256>,
}

impl KeyedHash {
    pub fn udf(key: Arc<[u8]>, portable: bool) -> Arc<ScalarUDF> {
        // HMAC takes keys of any length.
        let keyed =
            Hmac::<Sha256>::new_from_slice(&key).unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        let signature = Signature::exact(vec![DataType::Utf8], Volatility::Immutable);
        Arc::new(ScalarUDF::new_from_impl(Self { signature, key, portable, keyed }))
    }

    /// `Some(portable)` when `udf` is a `keyed_hash`: whether another process started
    /// with the same environment computes the same values.
    pub fn portable(udf: &ScalarUDF) -> Option<bool> {
        udf.inner().downcast_ref::<Self>().map(|hash| hash.portable)
    }

    /// Appends the hex digest of `text` to `out`.
    fn hash_into(&self, text: &str, out: &mut String) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut mac = self.keyed.clone();
        mac.update(text.as_bytes());
        for byte in mac.finalize().into_bytes() {
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0x0f)] as char);
        }
    }
}

impl std::fmt::Debug for KeyedHash {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyedHash { key: <secret> }")
    }
}

impl PartialEq for KeyedHash {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for KeyedHash {}

impl std::hash::Hash for KeyedHash {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        "keyed_hash".hash(state);
    }
}

impl ScalarUDFImpl for KeyedHash {
    fn name(&self) -> &str {
        "keyed_hash"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [arg] = args.args.as_slice() else { return exec_err!("keyed_hash takes one argument") };
        let array: ArrayRef = arg.to_array(args.number_rows)?;
        let array = cast(&array, &DataType::Utf8)?;
        let Some(text) = array.as_any().downcast_ref::<StringArray>() else {
            return exec_err!("keyed_hash takes text");
        };
        let mut hashed = StringBuilder::with_capacity(text.len(), text.len() * 64);
        let mut digest = String::with_capacity(64);
        for value in text.iter() {
            match value {
                Some(value) => {
                    digest.clear();
                    self.hash_into(value, &mut digest);
                    hashed.append_value(&digest);
                }
                None => hashed.append_null(),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(hashed.finish()) as ArrayRef))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fallback_keys_are_drawn_once_per_process_and_differ_by_domain() {
        let domains = ["meshgate_test_no_key_a", "meshgate_test_no_key_b"];
        let first = domain_keys(domains.into_iter());
        let again = domain_keys(domains.into_iter());
        assert_eq!(first, again, "a reload must not change a domain's fallback key");
        assert_ne!(first[domains[0]], first[domains[1]]);
        assert!(!first[domains[0]].from_env);
    }
}
