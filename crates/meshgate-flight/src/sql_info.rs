//! GetSqlInfo: what meshgate tells clients about itself. Built once at start-up.

use arrow_flight::sql::metadata::{SqlInfoData, SqlInfoDataBuilder};
use std::collections::HashMap;

use arrow_flight::sql::{
    SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel, SqlSupportedCaseSensitivity, SqlSupportedGroupBy,
    SqlSupportedResultSetConcurrency, SqlSupportedResultSetType, SqlSupportedSubqueries, SqlSupportedTransaction,
    SqlSupportedUnions, SqlSupportsConvert, SqlTransactionIsolationLevel, SupportedSqlGrammar,
};
use datafusion::execution::SessionState;
use datafusion::sql::sqlparser::keywords::ALL_KEYWORDS;

use crate::error::FlightError;

/// The server version reported to clients.
pub const SERVER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// What the SQL dialect supports, as JDBC's DatabaseMetaData asks it (ids 514–576).
fn syntax(builder: &mut SqlInfoDataBuilder) {
    builder.append(SqlInfo::SqlExtraNameCharacters, "");
    builder.append(SqlInfo::SqlSupportsColumnAliasing, true);
    builder.append(SqlInfo::SqlNullPlusNullIsNull, true);
    builder.append(SqlInfo::SqlSupportsConvert, convertible());
    builder.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
    builder.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
    builder.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
    builder.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
    builder.append(
        SqlInfo::SqlSupportedGroupBy,
        bits(&[SqlSupportedGroupBy::SqlGroupByUnrelated as i32, SqlSupportedGroupBy::SqlGroupByBeyondSelect as i32]),
    );
    builder.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
    builder.append(SqlInfo::SqlSupportsNonNullableColumns, true);
    builder.append(
        SqlInfo::SqlSupportedGrammar,
        bits(&[SupportedSqlGrammar::SqlMinimumGrammar as i32, SupportedSqlGrammar::SqlCoreGrammar as i32]),
    );
    // SupportedAnsi92SqlGrammarLevel (not exported by arrow-flight): entry 0, intermediate 1.
    builder.append(SqlInfo::SqlAnsi92SupportedLevel, bits(&[0, 1]));
    builder.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
    builder.append(SqlInfo::SqlOuterJoinsSupportLevel, SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32);
    builder.append(SqlInfo::SqlProcedureTerm, "procedure");
    builder.append(SqlInfo::SqlCatalogAtStart, true);
    builder.append(SqlInfo::SqlSchemasSupportedActions, 0_i32);
    builder.append(SqlInfo::SqlCatalogsSupportedActions, 0_i32);
    builder.append(SqlInfo::SqlSupportedPositionedCommands, 0_i32);
    builder.append(SqlInfo::SqlSelectForUpdateSupported, false);
    builder.append(SqlInfo::SqlStoredProceduresSupported, false);
    builder.append(
        SqlInfo::SqlSupportedSubqueries,
        bits(&[
            SqlSupportedSubqueries::SqlSubqueriesInComparisons as i32,
            SqlSupportedSubqueries::SqlSubqueriesInExists as i32,
            SqlSupportedSubqueries::SqlSubqueriesInIns as i32,
        ]),
    );
    builder.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
    builder.append(
        SqlInfo::SqlSupportedUnions,
        bits(&[SqlSupportedUnions::SqlUnion as i32, SqlSupportedUnions::SqlUnionAll as i32]),
    );
    // An int32 ordinal in FlightSql.proto, but JDBC reads it as a bigint (as arrow-java sends it).
    builder.append(SqlInfo::SqlDefaultTransactionIsolation, SqlTransactionIsolationLevel::SqlTransactionNone as i64);
    builder.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0_i32);
    builder.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
    builder.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, false);
    builder.append(
        SqlInfo::SqlSupportedResultSetTypes,
        bits(&[SqlSupportedResultSetType::SqlResultSetTypeForwardOnly as i32]),
    );
    let read_only = bits(&[SqlSupportedResultSetConcurrency::SqlResultSetConcurrencyReadOnly as i32]);
    builder.append(SqlInfo::SqlSupportedConcurrenciesForResultSetUnspecified, read_only);
    builder.append(SqlInfo::SqlSupportedConcurrenciesForResultSetForwardOnly, read_only);
    builder.append(SqlInfo::SqlSupportedConcurrenciesForResultSetScrollSensitive, 0_i32);
    builder.append(SqlInfo::SqlSupportedConcurrenciesForResultSetScrollInsensitive, 0_i32);
    builder.append(SqlInfo::SqlBatchUpdatesSupported, false);
    builder.append(SqlInfo::SqlSavepointsSupported, false);
    builder.append(SqlInfo::SqlNamedParametersSupported, false);
    builder.append(SqlInfo::SqlLocatorsUpdateCopy, false);
    builder.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
}

/// Size limits (ids 541–561): 0 means none or unknown, as JDBC reads it.
fn limits(builder: &mut SqlInfoDataBuilder) {
    for info in [
        SqlInfo::SqlMaxBinaryLiteralLength,
        SqlInfo::SqlMaxCharLiteralLength,
        SqlInfo::SqlMaxColumnNameLength,
        SqlInfo::SqlMaxColumnsInGroupBy,
        SqlInfo::SqlMaxColumnsInIndex,
        SqlInfo::SqlMaxColumnsInOrderBy,
        SqlInfo::SqlMaxColumnsInSelect,
        SqlInfo::SqlMaxColumnsInTable,
        SqlInfo::SqlMaxConnections,
        SqlInfo::SqlMaxCursorNameLength,
        SqlInfo::SqlMaxIndexLength,
        SqlInfo::SqlDbSchemaNameLength,
        SqlInfo::SqlMaxProcedureNameLength,
        SqlInfo::SqlMaxCatalogNameLength,
        SqlInfo::SqlMaxRowSize,
        SqlInfo::SqlMaxStatementLength,
        SqlInfo::SqlMaxStatements,
        SqlInfo::SqlMaxTableNameLength,
        SqlInfo::SqlMaxTablesInSelect,
        SqlInfo::SqlMaxUsernameLength,
    ] {
        builder.append(info, 0_i64);
    }
    builder.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, false);
}

/// A bitmask with the given bit positions set.
fn bits(positions: &[i32]) -> i32 {
    positions.iter().fold(0, |mask, bit| mask | (1 << bit))
}

/// SQL_SUPPORTS_CONVERT: which types CAST converts to which.
fn convertible() -> HashMap<i32, Vec<i32>> {
    use SqlSupportsConvert as C;
    let numeric = [
        C::SqlConvertBigint,
        C::SqlConvertDecimal,
        C::SqlConvertFloat,
        C::SqlConvertInteger,
        C::SqlConvertNumeric,
        C::SqlConvertReal,
        C::SqlConvertSmallint,
        C::SqlConvertTinyint,
    ];
    let text = [C::SqlConvertChar, C::SqlConvertVarchar, C::SqlConvertLongvarchar];
    let binary = [C::SqlConvertBinary, C::SqlConvertVarbinary, C::SqlConvertLongvarbinary];
    let temporal = [C::SqlConvertDate, C::SqlConvertTime, C::SqlConvertTimestamp];
    let ids = |groups: &[&[C]]| -> Vec<i32> { groups.iter().flat_map(|g| g.iter().map(|c| *c as i32)).collect() };
    let mut map = HashMap::new();
    for from in numeric {
        map.insert(from as i32, ids(&[&numeric, &text, &[C::SqlConvertBit]]));
    }
    for from in text {
        map.insert(from as i32, ids(&[&numeric, &text, &temporal, &binary, &[C::SqlConvertBit]]));
    }
    for from in binary {
        map.insert(from as i32, ids(&[&binary, &text]));
    }
    map.insert(C::SqlConvertBit as i32, ids(&[&numeric, &text, &[C::SqlConvertBit]]));
    map.insert(C::SqlConvertDate as i32, ids(&[&text, &[C::SqlConvertDate, C::SqlConvertTimestamp]]));
    map.insert(C::SqlConvertTime as i32, ids(&[&text, &[C::SqlConvertTime]]));
    map.insert(C::SqlConvertTimestamp as i32, ids(&[&text, &temporal]));
    map
}

/// Builds the SqlInfo answer from the functions the session actually offers.
pub fn sql_info(state: &SessionState) -> Result<SqlInfoData, FlightError> {
    let mut builder = SqlInfoDataBuilder::new();
    builder.append(SqlInfo::FlightSqlServerName, "meshgate");
    builder.append(SqlInfo::FlightSqlServerVersion, SERVER_VERSION);
    builder.append(SqlInfo::FlightSqlServerArrowVersion, "59");
    builder.append(SqlInfo::FlightSqlServerReadOnly, true);
    builder.append(SqlInfo::FlightSqlServerSql, true);
    builder.append(SqlInfo::FlightSqlServerSubstrait, true);
    let substrait = meshgate_engine::substrait_version();
    builder.append(SqlInfo::FlightSqlServerSubstraitMinVersion, substrait.as_str());
    builder.append(SqlInfo::FlightSqlServerSubstraitMaxVersion, substrait.as_str());
    builder.append(SqlInfo::FlightSqlServerTransaction, SqlSupportedTransaction::None as i32);
    builder.append(SqlInfo::FlightSqlServerCancel, true);
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
    syntax(&mut builder);
    limits(&mut builder);
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
