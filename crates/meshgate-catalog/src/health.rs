//! Whether a product can serve: schema drift against the declared contract, and
//! turning read failures into [`ProductError`]s that name the product.

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::DataFusionError;

use crate::config::types::{type_name, type_satisfies};
use crate::config::{Column, Format};
use crate::error::{ProblemKind, ProductError, SpillError};

/// A product's state when the snapshot was built.
#[derive(Debug, Clone)]
pub enum Health {
    Healthy,
    Unhealthy(ProductError),
}

impl Health {
    pub fn problem(&self) -> Option<&ProductError> {
        match self {
            Health::Healthy => None,
            Health::Unhealthy(error) => Some(error),
        }
    }
}

/// Differences between the declared columns and the schema found in the files.
pub fn schema_drift(declared: &[Column], found: &Schema, format: Format) -> Vec<String> {
    let mut differences = Vec::new();
    if let Format::Csv { .. } = format {
        let header: Vec<&str> = found.fields().iter().map(|f| f.name().as_str()).collect();
        let names: Vec<&str> = declared.iter().map(|c| c.name.as_str()).collect();
        if header != names {
            differences.push(format!("CSV columns are [{}], declared [{}]", header.join(", "), names.join(", ")));
        }
        return differences;
    }
    for column in declared {
        match found.field_with_name(&column.name) {
            Err(_) => differences.push(format!("column {} is declared but missing from the files", column.name)),
            Ok(field) if !type_satisfies(&column.data_type, field.data_type()) => differences.push(format!(
                "column {} is declared {} but the files have {}",
                column.name,
                type_name(&column.data_type),
                type_name(field.data_type())
            )),
            Ok(_) => {}
        }
    }
    differences
}

/// Turns a failure while opening `product` into an error that names it, without
/// the store's internal paths. At load time every failure is the product's.
pub fn classify(product: &str, location: &str, error: &DataFusionError) -> ProductError {
    read_problem(product, location, error).unwrap_or_else(|| ProductError {
        product: product.to_owned(),
        kind: ProblemKind::Corrupt,
        detail: strip_location(&error.find_root().strip_backtrace(), location),
    })
}

/// An error raised while scanning `product`, carrying a [`ProductError`] when it is
/// about the product's files or store; other errors (and ones already naming a
/// product) pass through unchanged.
pub fn name_read_error(product: &str, location: &str, error: DataFusionError) -> DataFusionError {
    if matches!(&error, DataFusionError::External(inner) if inner.is::<ProductError>()) {
        return error;
    }
    match read_problem(product, location, &error) {
        Some(problem) => DataFusionError::External(Box::new(problem)),
        None => error,
    }
}

/// The product's problem behind an error raised while scanning it, if the error
/// is about its files or store: not for a user's expression evaluated in the scan,
/// nor for running out of memory, which pass through unchanged.
pub fn read_problem(product: &str, location: &str, error: &DataFusionError) -> Option<ProductError> {
    use datafusion::arrow::error::ArrowError;
    let root = error.find_root();
    if disk_full(error) || spill_failure(error).is_some() || evaluating_an_expression(error) {
        // The server's own disk (spilling), or the query's own expression evaluated in
        // the reader (a pushed-down filter dividing by zero): never the product's.
        return None;
    }
    let kind = match root {
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => ProblemKind::Unavailable,
        _ if reaching_the_store(root) => ProblemKind::Unavailable,
        _ if no_data_files(error) => {
            return Some(ProductError {
                product: product.to_owned(),
                kind: ProblemKind::Unavailable,
                detail: "no data files found at its location".to_owned(),
            });
        }
        DataFusionError::ParquetError(_) => ProblemKind::Corrupt,
        DataFusionError::ArrowError(arrow, _) => match arrow.as_ref() {
            ArrowError::IoError(..) => ProblemKind::Unavailable,
            ArrowError::ParseError(_)
            | ArrowError::CsvError(_)
            | ArrowError::JsonError(_)
            | ArrowError::IpcError(_)
            | ArrowError::ParquetError(_) => ProblemKind::Corrupt,
            _ => return None,
        },
        _ => return None,
    };
    Some(ProductError { product: product.to_owned(), kind, detail: strip_location(&root.strip_backtrace(), location) })
}

/// Whether `error` came from reaching the files (the store or the file system failed:
/// down, refusing, erroring, timing out, the file gone) rather than from what they
/// hold: the reader wraps such failures in its own errors.
fn reaching_the_store(error: &DataFusionError) -> bool {
    sources(error).any(|source| source.is::<object_store::Error>() || source.is::<std::io::Error>())
}

/// Whether `error` is a full disk (or quota): the server's spill space, not a product.
pub fn disk_full(error: &DataFusionError) -> bool {
    use std::io::ErrorKind;
    sources(error).any(|source| {
        source
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| matches!(io.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded))
    })
}

/// The failure of the server's spill files behind `error`, if that is what it is. An
/// I/O error hides the error it wraps from `source()` (it skips to that error's own
/// source), so each I/O error is looked into.
pub fn spill_failure(error: &DataFusionError) -> Option<&SpillError> {
    sources(error).find_map(|source| {
        source.downcast_ref::<SpillError>().or_else(|| {
            source
                .downcast_ref::<std::io::Error>()
                .and_then(std::io::Error::get_ref)
                .and_then(|inner| inner.downcast_ref())
        })
    })
}

/// Whether `error` came from evaluating an expression (a filter pushed into the reader)
/// rather than from the files.
pub fn evaluating_an_expression(error: &DataFusionError) -> bool {
    use datafusion::arrow::error::ArrowError;
    sources(error).any(|source| {
        source.downcast_ref::<ArrowError>().is_some_and(|arrow| {
            matches!(
                arrow,
                ArrowError::DivideByZero
                    | ArrowError::ComputeError(_)
                    | ArrowError::CastError(_)
                    | ArrowError::ArithmeticOverflow(_)
                    | ArrowError::InvalidArgumentError(_)
            )
        })
    })
}

/// `error` and the errors behind it.
fn sources(error: &DataFusionError) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
    std::iter::successors(Some(error as &(dyn std::error::Error + 'static)), |error| error.source())
}

/// Whether `error` says that a product's location holds no data files.
pub(crate) fn no_data_files(error: &DataFusionError) -> bool {
    matches!(error.find_root(), DataFusionError::Plan(message) if message.starts_with("No files found"))
}

pub(crate) fn strip_location(message: &str, location: &str) -> String {
    let path = location.split_once("://").map_or(location, |(_, rest)| rest);
    let path = path.trim_start_matches(|c: char| c != '/').trim_end_matches('/');
    let message = hide_urls(&message.replace(location, ""));
    if path.len() > 1 { message.replace(path, "") } else { message }
}

/// `message` with every URL (a store's endpoint and object paths, as HTTP clients
/// report them) replaced by `<store>`.
fn hide_urls(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(at) = ["http://", "https://"].iter().filter_map(|scheme| rest.find(scheme)).min() {
        out.push_str(&rest[..at]);
        out.push_str("<store>");
        let url = &rest[at..];
        let end =
            url.find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | ',')).unwrap_or(url.len());
        rest = &url[end..];
    }
    out.push_str(rest);
    out
}

/// The schema of a product's table, as given by the contract where declared. A column
/// is nullable if declared so or if Parquet files say it may hold nulls (CSV and
/// NDJSON files carry no nullability, so their declaration stands).
pub fn declared_schema(declared: &[Column], found: Option<&SchemaRef>, format: Format) -> Schema {
    let found = found.filter(|_| format == Format::Parquet);
    use datafusion::arrow::datatypes::Field;
    let fields: Vec<Field> = declared
        .iter()
        .map(|column| {
            let found_nullable = found
                .and_then(|schema| schema.field_with_name(&column.name).ok())
                .is_some_and(|field| field.is_nullable());
            Field::new(&column.name, column.data_type.clone(), column.nullable || found_nullable)
        })
        .collect();
    Schema::new(fields)
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::{DataType, Field};

    use super::*;

    fn column(name: &str, data_type: DataType) -> Column {
        Column {
            name: name.into(),
            data_type,
            nullable: true,
            key: false,
            description: String::new(),
            tags: vec![],
            role: None,
            unit: None,
        }
    }

    #[test]
    fn drift_names_missing_and_mistyped_columns() {
        let found =
            Schema::new(vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Utf8View, true)]);
        let declared = [column("a", DataType::Int32), column("b", DataType::Utf8), column("c", DataType::Int64)];
        assert_eq!(
            schema_drift(&declared, &found, Format::Parquet),
            vec![
                "column a is declared int32 but the files have int64".to_owned(),
                "column c is declared but missing from the files".to_owned(),
            ]
        );
    }

    #[test]
    fn store_failures_inside_reader_errors_are_unavailable_without_urls() {
        let store = object_store::Error::Generic {
            store: "S3",
            source: "Error performing GET http://127.0.0.1:9000/bucket/part-01.parquet in 2s: connection reset".into(),
        };
        let error = DataFusionError::ParquetError(Box::new(datafusion::parquet::errors::ParquetError::External(
            Box::new(store),
        )));
        let named = read_problem("store.events", "s3://bucket/", &error).unwrap();
        assert_eq!(named.kind, ProblemKind::Unavailable);
        assert!(!named.detail.contains("127.0.0.1"), "{}", named.detail);
        assert!(named.detail.contains("connection reset"), "{}", named.detail);
    }

    #[test]
    fn a_full_disk_is_not_the_products_problem() {
        let full = std::io::Error::from(std::io::ErrorKind::StorageFull);
        let error = DataFusionError::ArrowError(
            Box::new(datafusion::arrow::error::ArrowError::IoError("writing a spill file".into(), full)),
            None,
        );
        assert!(read_problem("spill.big", "file:///data/", &error).is_none());
    }

    #[test]
    fn classify_hides_local_paths() {
        let error = DataFusionError::ParquetError(Box::new(datafusion::parquet::errors::ParquetError::General(
            "file /data/lake/sales/orders/x.parquet is bad".into(),
        )));
        let named = classify("sales.orders", "file:///data/lake/sales/orders/", &error);
        assert_eq!(named.kind, ProblemKind::Corrupt);
        assert!(!named.detail.contains("/data/lake"), "{}", named.detail);
        assert!(named.to_string().starts_with("product sales.orders has unreadable files"));
    }
}
