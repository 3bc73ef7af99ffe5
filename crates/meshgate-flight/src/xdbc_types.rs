//! GetXdbcTypeInfo: the SQL types meshgate returns, as ODBC/JDBC clients see them.

use arrow_flight::sql::metadata::{XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder};
use arrow_flight::sql::{Nullable, Searchable, XdbcDataType, XdbcDatetimeSubcode};

use crate::error::FlightError;

/// One row per SQL type a meshgate result column can have.
pub fn xdbc_type_info() -> Result<XdbcTypeInfoData, FlightError> {
    let mut builder = XdbcTypeInfoDataBuilder::new();
    let numeric = |name: &str, data_type: XdbcDataType, size: i32, radix: i32| XdbcTypeInfo {
        type_name: name.to_owned(),
        data_type,
        column_size: Some(size),
        literal_prefix: None,
        literal_suffix: None,
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: false,
        searchable: Searchable::Full,
        unsigned_attribute: Some(false),
        fixed_prec_scale: false,
        auto_increment: Some(false),
        local_type_name: Some(name.to_owned()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: None,
        num_prec_radix: Some(radix),
        interval_precision: None,
    };
    builder.append(numeric("BOOLEAN", XdbcDataType::XdbcBit, 1, 2));
    builder.append(numeric("TINYINT", XdbcDataType::XdbcTinyint, 8, 2));
    builder.append(numeric("SMALLINT", XdbcDataType::XdbcSmallint, 16, 2));
    builder.append(numeric("INTEGER", XdbcDataType::XdbcInteger, 32, 2));
    builder.append(numeric("BIGINT", XdbcDataType::XdbcBigint, 64, 2));
    builder.append(numeric("REAL", XdbcDataType::XdbcReal, 24, 2));
    builder.append(numeric("DOUBLE", XdbcDataType::XdbcDouble, 53, 2));
    builder.append(XdbcTypeInfo {
        create_params: Some(vec!["precision".into(), "scale".into()]),
        fixed_prec_scale: true,
        minimum_scale: Some(0),
        maximum_scale: Some(38),
        ..numeric("DECIMAL", XdbcDataType::XdbcDecimal, 38, 10)
    });
    let text = |name: &str, data_type: XdbcDataType, quote: Option<&str>| XdbcTypeInfo {
        literal_prefix: quote.map(str::to_owned),
        literal_suffix: quote.map(str::to_owned),
        case_sensitive: true,
        unsigned_attribute: None,
        auto_increment: None,
        num_prec_radix: None,
        ..numeric(name, data_type, i32::MAX, 0)
    };
    builder.append(text("VARCHAR", XdbcDataType::XdbcVarchar, Some("'")));
    builder.append(text("VARBINARY", XdbcDataType::XdbcVarbinary, None));
    let datetime = |name: &str, data_type: XdbcDataType, subcode: XdbcDatetimeSubcode, size: i32| XdbcTypeInfo {
        literal_prefix: Some(format!("{name} '")),
        literal_suffix: Some("'".to_owned()),
        unsigned_attribute: None,
        auto_increment: None,
        num_prec_radix: None,
        sql_data_type: XdbcDataType::XdbcDatetime,
        datetime_subcode: Some(subcode),
        ..numeric(name, data_type, size, 0)
    };
    // Subcode 1 is SQL_CODE_DATE; the proto names it XDBC_SUBCODE_YEAR and aliases DATE.
    builder.append(datetime("DATE", XdbcDataType::XdbcDate, XdbcDatetimeSubcode::XdbcSubcodeYear, 10));
    builder.append(datetime("TIMESTAMP", XdbcDataType::XdbcTimestamp, XdbcDatetimeSubcode::XdbcSubcodeTimestamp, 26));
    // Lists (array_agg results, the catalog's tags): ODBC and JDBC have no code for
    // them in Flight SQL's enumeration, so the type is named and its code unknown.
    builder.append(XdbcTypeInfo {
        literal_prefix: None,
        literal_suffix: None,
        searchable: Searchable::None,
        unsigned_attribute: None,
        auto_increment: None,
        num_prec_radix: None,
        column_size: None,
        ..numeric("ARRAY", XdbcDataType::XdbcUnknownType, 0, 0)
    });
    builder.build().map_err(|error| FlightError::Encode(error.to_string()))
}
