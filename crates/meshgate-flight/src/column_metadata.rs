//! Column metadata in schemas: the Flight SQL keys JDBC, ODBC and the Flight SQL
//! clients read from GetTables' table schemas and from result schemas (SQL type
//! name, precision, scale, the product a column comes from, its description), and
//! for GetTables also the keys the ADBC driver fills `adbc_get_objects` from.
//! Only columns the principal sees are described: schemas here are post-policy
//! (denied columns absent, masked ones with their masked type).

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use meshgate_catalog::config::Product;
use meshgate_engine::{ColumnSource, SYSTEM_SCHEMA, SystemTable};
use meshgate_policy::MeshView;

/// Flight SQL column metadata keys (`FlightSql.proto`; the clients spell the schema
/// key `SCHEMA_NAME`).
pub const CATALOG_NAME: &str = "ARROW:FLIGHT:SQL:CATALOG_NAME";
pub const SCHEMA_NAME: &str = "ARROW:FLIGHT:SQL:SCHEMA_NAME";
pub const TABLE_NAME: &str = "ARROW:FLIGHT:SQL:TABLE_NAME";
pub const TYPE_NAME: &str = "ARROW:FLIGHT:SQL:TYPE_NAME";
pub const PRECISION: &str = "ARROW:FLIGHT:SQL:PRECISION";
pub const SCALE: &str = "ARROW:FLIGHT:SQL:SCALE";
pub const IS_AUTO_INCREMENT: &str = "ARROW:FLIGHT:SQL:IS_AUTO_INCREMENT";
pub const IS_CASE_SENSITIVE: &str = "ARROW:FLIGHT:SQL:IS_CASE_SENSITIVE";
pub const IS_READ_ONLY: &str = "ARROW:FLIGHT:SQL:IS_READ_ONLY";
pub const IS_SEARCHABLE: &str = "ARROW:FLIGHT:SQL:IS_SEARCHABLE";
pub const REMARKS: &str = "ARROW:FLIGHT:SQL:REMARKS";

/// Keys the ADBC Flight SQL driver reads for `adbc_get_objects` columns besides
/// the Flight SQL ones (type name, table, auto-increment).
const XDBC_KEYS: [&str; 7] = [
    "REMARKS",
    "XDBC_COLUMN_SIZE",
    "XDBC_DECIMAL_DIGITS",
    "XDBC_NUM_PREC_RADIX",
    "XDBC_NULLABLE",
    "XDBC_IS_NULLABLE",
    "XDBC_DATETIME_SUB",
];

/// A column's SQL type as meshgate announces it: GetXdbcTypeInfo's type names, with
/// precision and scale in decimal digits (character length for dates and times).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqlType {
    pub name: &'static str,
    pub precision: Option<i32>,
    pub scale: Option<i32>,
    /// ODBC's SQL_DATETIME_SUB: 1 date, 2 time, 3 timestamp.
    datetime_sub: Option<i32>,
    case_sensitive: bool,
}

impl SqlType {
    fn named(name: &'static str) -> Self {
        Self { name, precision: None, scale: None, datetime_sub: None, case_sensitive: false }
    }

    fn numeric(name: &'static str, precision: i32, scale: Option<i32>) -> Self {
        Self { precision: Some(precision), scale, ..Self::named(name) }
    }

    /// Dates, times and timestamps: their length as text and fractional digits.
    fn temporal(name: &'static str, whole: i32, digits: i32, sub: i32) -> Self {
        let precision = if digits > 0 { whole + 1 + digits } else { whole };
        let scale = (sub != 1).then_some(digits);
        Self { precision: Some(precision), scale, datetime_sub: Some(sub), ..Self::named(name) }
    }
}

/// The SQL type of an Arrow type as results carry it.
pub fn sql_type(data_type: &DataType) -> SqlType {
    let digits = |unit: &TimeUnit| match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    };
    match data_type {
        DataType::Boolean => SqlType { precision: Some(1), ..SqlType::named("BOOLEAN") },
        DataType::Int8 | DataType::UInt8 => SqlType::numeric("TINYINT", 3, Some(0)),
        DataType::Int16 | DataType::UInt16 => SqlType::numeric("SMALLINT", 5, Some(0)),
        DataType::Int32 | DataType::UInt32 => SqlType::numeric("INTEGER", 10, Some(0)),
        DataType::Int64 => SqlType::numeric("BIGINT", 19, Some(0)),
        DataType::UInt64 => SqlType::numeric("BIGINT", 20, Some(0)),
        DataType::Float16 => SqlType::numeric("REAL", 3, None),
        DataType::Float32 => SqlType::numeric("REAL", 7, None),
        DataType::Float64 => SqlType::numeric("DOUBLE", 15, None),
        DataType::Decimal32(p, s) | DataType::Decimal64(p, s) | DataType::Decimal128(p, s) => {
            SqlType::numeric("DECIMAL", i32::from(*p), Some(i32::from(*s)))
        }
        DataType::Decimal256(p, s) => SqlType::numeric("DECIMAL", i32::from(*p), Some(i32::from(*s))),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            SqlType { case_sensitive: true, ..SqlType::named("VARCHAR") }
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => SqlType::named("VARBINARY"),
        DataType::FixedSizeBinary(size) => SqlType { precision: Some(*size), ..SqlType::named("VARBINARY") },
        DataType::Date32 | DataType::Date64 => SqlType::temporal("DATE", 10, 0, 1),
        DataType::Time32(unit) | DataType::Time64(unit) => SqlType::temporal("TIME", 8, digits(unit), 2),
        DataType::Timestamp(unit, _) => SqlType::temporal("TIMESTAMP", 19, digits(unit), 3),
        DataType::Interval(_) | DataType::Duration(_) => SqlType::named("INTERVAL"),
        DataType::List(_)
        | DataType::LargeList(_)
        | DataType::FixedSizeList(..)
        | DataType::ListView(_)
        | DataType::LargeListView(_) => SqlType::named("ARRAY"),
        DataType::Struct(_) => SqlType::named("STRUCT"),
        DataType::Map(..) => SqlType::named("MAP"),
        DataType::Dictionary(_, value) => sql_type(value),
        DataType::RunEndEncoded(_, values) => sql_type(values.data_type()),
        DataType::Null => SqlType::named("NULL"),
        DataType::Union(..) => SqlType::named("UNION"),
    }
}

/// The table a column belongs to, and the column's description.
struct Origin<'a> {
    catalog: &'a str,
    schema: &'a str,
    table: &'a str,
    description: &'a str,
}

impl<'a> Origin<'a> {
    fn new(catalog: &'a str, product: &'a Product, column: &str) -> Self {
        let description = product
            .schema
            .iter()
            .flatten()
            .find(|declared| declared.name == column)
            .map_or("", |declared| declared.description.as_str());
        Self { catalog, schema: &product.domain, table: &product.name, description }
    }
}

/// The Flight SQL metadata of `field`: what a result column or a GetTables column
/// carries. Metadata already on the field under these keys is replaced.
fn flight_sql(field: &Field, origin: Option<&Origin>) -> HashMap<String, String> {
    let mut metadata: HashMap<String, String> = field
        .metadata()
        .iter()
        .filter(|(key, _)| !key.starts_with("ARROW:FLIGHT:SQL:") && !XDBC_KEYS.contains(&key.as_str()))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    let ty = sql_type(field.data_type());
    let flag = |on: bool| if on { "1" } else { "0" }.to_owned();
    metadata.insert(TYPE_NAME.into(), ty.name.into());
    if let Some(precision) = ty.precision {
        metadata.insert(PRECISION.into(), precision.to_string());
    }
    if let Some(scale) = ty.scale {
        metadata.insert(SCALE.into(), scale.to_string());
    }
    metadata.insert(IS_AUTO_INCREMENT.into(), flag(false));
    metadata.insert(IS_CASE_SENSITIVE.into(), flag(ty.case_sensitive));
    metadata.insert(IS_READ_ONLY.into(), flag(true));
    metadata.insert(IS_SEARCHABLE.into(), flag(true));
    if let Some(origin) = origin {
        metadata.insert(CATALOG_NAME.into(), origin.catalog.into());
        metadata.insert(SCHEMA_NAME.into(), origin.schema.into());
        metadata.insert(TABLE_NAME.into(), origin.table.into());
        if !origin.description.is_empty() {
            metadata.insert(REMARKS.into(), origin.description.into());
        }
    }
    metadata
}

/// The ADBC driver's keys for `adbc_get_objects`, added to `metadata`.
fn add_xdbc(metadata: &mut HashMap<String, String>, field: &Field, description: &str) {
    let ty = sql_type(field.data_type());
    if !description.is_empty() {
        metadata.insert("REMARKS".into(), description.into());
    }
    if let Some(precision) = ty.precision {
        metadata.insert("XDBC_COLUMN_SIZE".into(), precision.to_string());
        if ty.datetime_sub.is_none() {
            metadata.insert("XDBC_NUM_PREC_RADIX".into(), "10".into());
        }
    }
    if let Some(scale) = ty.scale {
        metadata.insert("XDBC_DECIMAL_DIGITS".into(), scale.to_string());
    }
    if let Some(sub) = ty.datetime_sub {
        metadata.insert("XDBC_DATETIME_SUB".into(), sub.to_string());
    }
    let nullable = field.is_nullable();
    metadata.insert("XDBC_NULLABLE".into(), if nullable { "1" } else { "0" }.into());
    metadata.insert("XDBC_IS_NULLABLE".into(), if nullable { "YES" } else { "NO" }.into());
}

/// The table schema GetTables sends for `product`: `schema`, the principal's
/// post-policy schema in wire types, with every column described and the product's
/// description as the schema's remarks.
pub fn product_schema(catalog: &str, product: &Product, schema: &Schema) -> Schema {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let origin = Origin::new(catalog, product, field.name());
            let mut metadata = flight_sql(field, Some(&origin));
            add_xdbc(&mut metadata, field, origin.description);
            field.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    let mut metadata = schema.metadata().clone();
    metadata.remove(REMARKS);
    if !product.description.is_empty() {
        metadata.insert(REMARKS.into(), product.description.clone());
    }
    Schema::new_with_metadata(fields, metadata)
}

/// The table schema GetTables sends for a `mesh_catalog` system table, every column
/// described like a product's.
pub fn system_schema(catalog: &str, table: SystemTable) -> Schema {
    let schema = table.schema();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|field| {
            let origin = Origin { catalog, schema: SYSTEM_SCHEMA, table: table.name(), description: "" };
            let mut metadata = flight_sql(field, Some(&origin));
            add_xdbc(&mut metadata, field, "");
            field.as_ref().clone().with_metadata(metadata)
        })
        .collect();
    let metadata = HashMap::from([(REMARKS.to_owned(), table.description().to_owned())]);
    Schema::new_with_metadata(fields, metadata)
}

/// A result schema with every column described; a column that is a product's column
/// passed through (`sources`, from the plan) names its product and carries its
/// description, if the principal may read the product.
pub fn result_schema(view: &MeshView, schema: &Schema, sources: &[Option<ColumnSource>]) -> SchemaRef {
    let catalog = view.snapshot().catalog_name();
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let product = sources
                .get(index)
                .and_then(Option::as_ref)
                .filter(|source| source.catalog == catalog)
                .and_then(|source| Some((view.product(&source.schema, &source.table)?, source)));
            let mut origin = product.map(|(entry, source)| Origin::new(catalog, &entry.product, &source.column));
            // A system table's column: every principal sees those tables.
            if let Some(source) = sources.get(index).and_then(Option::as_ref)
                && source.catalog == catalog
                && source.schema == SYSTEM_SCHEMA
                && let Some(table) = SystemTable::from_name(&source.table)
            {
                origin = Some(Origin { catalog, schema: SYSTEM_SCHEMA, table: table.name(), description: "" });
            }
            field.as_ref().clone().with_metadata(flight_sql(field, origin.as_ref()))
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_are_those_get_xdbc_type_info_announces() {
        assert_eq!(sql_type(&DataType::Int64).name, "BIGINT");
        assert_eq!(
            sql_type(&DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))).name,
            "VARCHAR"
        );
        let decimal = sql_type(&DataType::Decimal128(15, 2));
        assert_eq!((decimal.name, decimal.precision, decimal.scale), ("DECIMAL", Some(15), Some(2)));
        let timestamp = sql_type(&DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!((timestamp.name, timestamp.precision, timestamp.scale), ("TIMESTAMP", Some(26), Some(6)));
        let date = sql_type(&DataType::Date32);
        assert_eq!((date.name, date.precision, date.scale), ("DATE", Some(10), None));
    }

    #[test]
    fn a_computed_column_has_its_type_but_no_table() {
        let field = Field::new("total", DataType::Float64, true)
            .with_metadata([(REMARKS.to_owned(), "stale".to_owned())].into());
        let metadata = flight_sql(&field, None);
        assert_eq!(metadata.get(TYPE_NAME).map(String::as_str), Some("DOUBLE"));
        assert!(!metadata.contains_key(TABLE_NAME));
        assert!(!metadata.contains_key(REMARKS), "only meshgate describes columns");
    }
}
