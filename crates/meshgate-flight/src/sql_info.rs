//! GetSqlInfo: what meshgate tells clients about itself. Built once at start-up.

use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use arrow_flight::sql::{SqlInfo, SqlNullOrdering, SqlSupportedCaseSensitivity, SqlSupportedTransaction};
use datafusion::execution::SessionState;
use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;

use crate::error::FlightError;

/// The server version reported to clients.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Builds the SqlInfo answer from the functions the session actually offers.
pub fn sql_info(state: &SessionState) -> Result<SqlInfoData, FlightError> {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "meshgate");
    builder.append(SqlInfo::FlightSqlServerVersion, SERVER_VERSION);
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, false);
    builder.append(SqlInfo::FlightSqlServerTransaction, SqlSupportedTransaction::None as i32);
    builder.append(SqlInfo::FlightSqlServerCancel, false);
    builder.append(SqlInfo::FlightSqlServerBulkIngestion, false);
    builder.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
    builder.append(SqlInfo::FlightSqlServerStatementTimeout, 0_i32);
    builder.append(SqlInfo::FlightSqlServerTransactionTimeout, 0_i32);
    builder.append(SqlInfo::SqlDdlCatalog, false);
    builder.append(SqlInfo::SqlDdlSchema, false);
    builder.append(SqlInfo::SqlDdlTable, false);
    builder.append(SqlInfo::SqlIdentifierCase, SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32);
    builder.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    builder.append(
        SqlInfo::SqlQuotedIdentifierCase,
        SqlSupportedCaseSensitivity::SqlCaseSensitivityCaseInsensitive as i32,
    );
    builder.append(SqlInfo::SqlAllTablesAreSelectable, true);
    builder.append(SqlInfo::SqlNullOrdering, SqlNullOrdering::SqlNullsSortedHigh as i32);
    builder.append(SqlInfo::SqlSearchStringEscape, "\\");
    builder.append(SqlInfo::SqlSchemaTerm, "domain");
    builder.append(SqlInfo::SqlCatalogTerm, "catalog");
    builder.append(SqlInfo::SqlTransactionsSupported, false);
    builder.append(SqlInfo::SqlKeywords, ALL_KEYWORDS.iter().map(|k| (*k).to_owned()).collect::<Vec<String>>());
    let mut numeric = Vec::new();
    let mut string = Vec::new();
    let mut datetime = Vec::new();
    let mut system = Vec::new();
    for (name, udf) in state.scalar_functions() {
        let section = udf.documentation().map(|doc| doc.doc_section.label).unwrap_or_default();
        let list = match section {
            "Math Functions" => &mut numeric,
            "String Functions" | "Binary String Functions" | "Regular Expression Functions" => &mut string,
            "Time and Date Functions" => &mut datetime,
            _ => &mut system,
        };
        list.push(name.clone());
    }
    for list in [&mut numeric, &mut string, &mut datetime, &mut system] {
        list.sort();
    }
    builder.append(SqlInfo::SqlNumericFunctions, numeric);
    builder.append(SqlInfo::SqlStringFunctions, string);
    builder.append(SqlInfo::SqlDatetimeFunctions, datetime);
    builder.append(SqlInfo::SqlSystemFunctions, system);
    builder.build().map_err(|error| FlightError::Encode(error.to_string()))
}
