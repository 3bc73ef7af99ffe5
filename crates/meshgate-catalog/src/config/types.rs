//! Column type names as written in descriptors (`int64`, `decimal(15, 2)`, …).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, TimeUnit};

/// Parses a descriptor type name into an Arrow type.
pub fn parse_type(name: &str) -> Result<DataType, String> {
    let normalized = name.trim().to_ascii_lowercase();
    let data_type = match normalized.as_str() {
        "bool" | "boolean" => DataType::Boolean,
        "int8" => DataType::Int8,
        "int16" => DataType::Int16,
        "int32" | "int" => DataType::Int32,
        "int64" | "bigint" | "long" => DataType::Int64,
        "uint8" => DataType::UInt8,
        "uint16" => DataType::UInt16,
        "uint32" => DataType::UInt32,
        "uint64" => DataType::UInt64,
        "float32" | "float" => DataType::Float32,
        "float64" | "double" => DataType::Float64,
        "utf8" | "string" | "text" => DataType::Utf8,
        "binary" => DataType::Binary,
        "date32" | "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "timestamp_tz" => DataType::Timestamp(TimeUnit::Microsecond, Some(Arc::from("UTC"))),
        other => return parse_decimal(other).ok_or_else(|| format!("unknown type '{name}'")),
    };
    Ok(data_type)
}

fn parse_decimal(text: &str) -> Option<DataType> {
    let args = text.strip_prefix("decimal(")?.strip_suffix(')')?;
    let (precision, scale) = args.split_once(',')?;
    let precision: u8 = precision.trim().parse().ok()?;
    let scale: i8 = scale.trim().parse().ok()?;
    if precision == 0 || precision > 38 || scale < 0 || scale as u8 > precision {
        return None;
    }
    Some(DataType::Decimal128(precision, scale))
}

/// Whether a type found in the files satisfies a declared type. String and binary
/// layouts (view, large) are interchangeable; everything else must match exactly.
pub fn type_satisfies(declared: &DataType, found: &DataType) -> bool {
    fn family(data_type: &DataType) -> &DataType {
        match data_type {
            DataType::LargeUtf8 | DataType::Utf8View => &DataType::Utf8,
            DataType::LargeBinary | DataType::BinaryView => &DataType::Binary,
            DataType::Dictionary(_, value) => family(value),
            other => other,
        }
    }
    family(declared) == family(found)
}

/// The descriptor spelling of an Arrow type, for messages and reports.
pub fn type_name(data_type: &DataType) -> String {
    match data_type {
        DataType::Boolean => "bool".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "utf8".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::Decimal128(p, s) => format!("decimal({p}, {s})"),
        DataType::Timestamp(TimeUnit::Microsecond, None) => "timestamp".into(),
        DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => "timestamp_tz".into(),
        other => other.to_string().to_ascii_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_decimals() {
        assert_eq!(parse_type("int64"), Ok(DataType::Int64));
        assert_eq!(parse_type("Decimal(15, 2)"), Ok(DataType::Decimal128(15, 2)));
        assert!(parse_type("decimal(2, 5)").is_err());
        assert_eq!(parse_type("strng"), Err("unknown type 'strng'".to_owned()));
    }

    #[test]
    fn string_layouts_are_interchangeable() {
        assert!(type_satisfies(&DataType::Utf8, &DataType::Utf8View));
        assert!(!type_satisfies(&DataType::Int64, &DataType::Int32));
        assert_eq!(type_name(&DataType::Int32), "int32");
    }
}
