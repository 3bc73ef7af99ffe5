"""The Arrow Flight SQL JDBC driver's calls, made with plain pyarrow.flight.

The driver's jar (arrow-java flight-sql-jdbc-driver) cannot be fetched here, so this module
makes its calls itself, in the same order and with the same arguments. The pattern comes
from arrow-java's ArrowFlightSqlClientHandler, ArrowFlightMetaImpl and ArrowDatabaseMetadata:

- Connecting with user/password: a Flight Handshake with a Basic `authorization` header.
  The `authorization: Bearer` header the server answers with then goes on every call
  (ClientIncomingAuthHeaderMiddleware). `mgtest.flight_client(uri, user=...)` does exactly
  this.
- Every statement is prepared, a plain `Statement.executeQuery` too:
  DoAction CreatePreparedStatement, whose dataset schema becomes the ResultSetMetaData. If
  there are parameters, DoPut(CommandPreparedStatementQuery) with one row built from the
  parameter schema; when the PutResult carries a DoPutPreparedStatementResult handle, that
  handle is used from then on. Then GetFlightInfo(CommandPreparedStatementQuery), DoGet on
  every endpoint, and DoAction ClosePreparedStatement when the statement is closed.
  JDBC users write `?` placeholders; meshgate numbers them `$1, $2, …` in order
  (test_question_mark_placeholders_bind_in_order).
- DatabaseMetaData: the SqlInfo getters share one GetSqlInfo with no id filter. Each getter
  casts its value to a Java class (Boolean, Long, Integer, String, List, Map). A value of
  the wrong union member throws ClassCastException, and a missing one falls back to
  false/0/"". JDBC_SQL_INFO below lists every id the driver reads with the union member
  its cast needs. The other DatabaseMetaData methods are GetCatalogs, GetDbSchemas,
  GetTables (getColumns is GetTables with include_schema, with the column pattern applied
  on the client), GetTableTypes, GetPrimaryKeys, GetImportedKeys, GetExportedKeys and
  GetCrossReference, with the filters a tool passes. GetXdbcTypeInfo is what other Flight
  SQL clients (ODBC) ask for getTypeInfo.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.flight as flight
import pytest
import yaml

import govmodel
from mgtest import (
    current_versions,
    DEMO_CONFIG,
    DEMO_DOMAINS,
    DEMO_PRODUCTS,
    SYSTEM_SCHEMA,
    SYSTEM_TABLE_TYPE,
    SYSTEM_TABLES,
    TESTDATA,
    assert_same_rows,
    cmd_get_catalogs,
    cmd_get_db_schemas,
    cmd_get_primary_keys,
    cmd_get_sql_info,
    cmd_get_table_types,
    cmd_get_tables,
    cmd_prepared_statement_query,
    duckdb_expected,
    flight_client,
    flight_command,
    flight_sql_query,
    load_contract,
    pack_any,
    pb_bytes,
    pb_field,
    pb_fields,
    pb_key,
    pb_string,
    pb_varint,
    with_system_schema,
    with_system_tables,
)

FLIGHT_ERRORS = (flight.FlightError, pa.ArrowException)
CONTRACT = load_contract()


# --------------------------------------------------------------------------------------
# the driver's prepared-statement cycle
# --------------------------------------------------------------------------------------


@dataclass
class Prepared:
    handle: bytes
    dataset_schema: pa.Schema | None
    parameter_schema: pa.Schema | None


def _schema(raw: bytes | None) -> pa.Schema | None:
    return pa.ipc.read_schema(pa.py_buffer(raw)) if raw else None


def prepare(client: flight.FlightClient, sql: str) -> Prepared:
    """DoAction CreatePreparedStatement -> ActionCreatePreparedStatementResult
    {prepared_statement_handle = 1, dataset_schema = 2, parameter_schema = 3}."""
    action = flight.Action("CreatePreparedStatement", pack_any("ActionCreatePreparedStatementRequest", pb_string(1, sql)))
    results = list(client.do_action(action))
    assert len(results) == 1, results
    any_msg = results[0].body.to_pybytes()
    assert pb_field(any_msg, 1).decode().endswith("ActionCreatePreparedStatementResult")
    fields = {f: v for f, _, v in pb_fields(pb_field(any_msg, 2))}
    return Prepared(fields[1], _schema(fields.get(2)), _schema(fields.get(3)))


def bind(client: flight.FlightClient, prepared: Prepared, values: list) -> None:
    """DoPut one row of parameters, typed by the parameter schema (as the driver's
    AvaticaParameterBinder fills the vectors); adopt the handle the server answers with."""
    schema = prepared.parameter_schema
    assert schema is not None and len(schema) == len(values), (schema, values)
    batch = pa.record_batch([pa.array([v], type=f.type) for v, f in zip(values, schema)], schema=schema)
    descriptor = flight.FlightDescriptor.for_command(cmd_prepared_statement_query(prepared.handle))
    writer, reader = client.do_put(descriptor, schema)
    writer.write_batch(batch)
    writer.done_writing()
    meta = reader.read()
    writer.close()
    if meta is not None and meta.size:
        updated = dict((f, v) for f, _, v in pb_fields(meta.to_pybytes())).get(1)  # DoPutPreparedStatementResult
        if updated:
            prepared.handle = updated


def execute_query(client: flight.FlightClient, prepared: Prepared) -> tuple[flight.FlightInfo, pa.Table, list[pa.Schema]]:
    """GetFlightInfo(CommandPreparedStatementQuery), then DoGet every endpoint."""
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_prepared_statement_query(prepared.handle)))
    tables, schemas = [], []
    for endpoint in info.endpoints:
        reader = client.do_get(endpoint.ticket)
        schemas.append(reader.schema)
        tables.append(reader.read_all())
    table = pa.concat_tables(tables) if tables else info.schema.empty_table()
    return info, table, schemas


def close(client: flight.FlightClient, prepared: Prepared) -> None:
    body = pack_any("ActionClosePreparedStatementRequest", pb_bytes(1, prepared.handle))
    list(client.do_action(flight.Action("ClosePreparedStatement", body)))


def jdbc_query(client: flight.FlightClient, sql: str, params: list | None = None) -> tuple[Prepared, pa.Table]:
    """Statement.executeQuery / PreparedStatement.executeQuery, then close()."""
    prepared = prepare(client, sql)
    try:
        if params is not None:
            bind(client, prepared, params)
        info, table, stream_schemas = execute_query(client, prepared)
    finally:
        close(client, prepared)
    assert prepared.dataset_schema is not None, sql
    # ResultSetMetaData comes from the dataset schema, before any row is read
    for schema in [info.schema, *stream_schemas]:
        assert schema.remove_metadata().equals(prepared.dataset_schema.remove_metadata()), \
            f"{sql}\nprepared: {prepared.dataset_schema}\nreturned: {schema}"
    return prepared, table


@pytest.fixture(scope="module")
def jdbc(demo_server):
    """A JDBC-like connection as the steward: Basic handshake, then the bearer on every call."""
    client = flight_client(demo_server.uri, user="stella", fresh=True)
    yield client
    client.close()


STATEMENTS = [
    "SELECT r_regionkey, r_name, r_comment FROM customers.region",
    "SELECT o_orderkey, o_totalprice, o_orderdate, o_year FROM sales.orders WHERE o_orderkey < 100",
    "SELECT n.n_name, count(*) AS n FROM customers.customer c JOIN customers.nation n "
    "ON c.c_nationkey = n.n_nationkey GROUP BY n.n_name",
    "SELECT ps_partkey, ps_supplycost FROM supply.partsupp WHERE ps_availqty < 100",
]


@pytest.mark.parametrize("sql", STATEMENTS, ids=range(len(STATEMENTS)))
def test_statement_is_prepared_executed_and_closed(jdbc, sql):
    prepared, table = jdbc_query(jdbc, sql)
    assert prepared.parameter_schema is None or len(prepared.parameter_schema) == 0, prepared.parameter_schema
    assert_same_rows(table, duckdb_expected(sql))


def test_prepared_statement_with_parameters(jdbc):
    sql = "SELECT n_nationkey, n_name FROM customers.nation WHERE n_regionkey = $1 AND n_name LIKE $2"
    prepared = prepare(jdbc, sql)
    try:
        assert prepared.parameter_schema.names == ["$1", "$2"]
        assert prepared.parameter_schema.types == [pa.int64(), pa.string()]
        first = prepared.handle
        for region, pattern in [(3, "%A%"), (1, "%"), (0, "X%")]:  # re-executed with new values
            bind(jdbc, prepared, [region, pattern])
            _, table, _ = execute_query(jdbc, prepared)
            assert_same_rows(table, duckdb_expected(
                f"SELECT n_nationkey, n_name FROM customers.nation WHERE n_regionkey = {region} "
                f"AND n_name LIKE '{pattern}'"))
        assert prepared.handle != first  # the server answered with a handle carrying the values
    finally:
        close(jdbc, prepared)
    assert flight_sql_query(jdbc, "SELECT 1 AS one").column("one").to_pylist() == [1]


def test_prepared_statements_are_governed(demo_server):
    ana = flight_client(demo_server.uri, user="ana")
    try:
        sql = "SELECT c_custkey, c_acctbal, c_mktsegment FROM customers.customer"
        _, table = jdbc_query(ana, sql)
        assert_same_rows(table, govmodel.expected("ana", sql))
    finally:
        ana.close()


@pytest.mark.parametrize(
    "sql, values, expected",
    [
        ("SELECT n_name FROM customers.nation WHERE n_nationkey = ?", [7], ["GERMANY"]),
        ("SELECT n_name FROM customers.nation WHERE n_regionkey = ? AND n_nationkey = ?", [3, 7], ["GERMANY"]),
    ],
)
def test_question_mark_placeholders_bind_in_order(jdbc, sql, values, expected):
    """JDBC applications write `?`: each one is a parameter, numbered in order."""
    prepared = prepare(jdbc, sql)
    try:
        assert prepared.parameter_schema.names == [f"${i + 1}" for i in range(len(values))]
        bind(jdbc, prepared, values)
        _, table, _ = execute_query(jdbc, prepared)
        assert table.column("n_name").to_pylist() == expected
    finally:
        close(jdbc, prepared)


# --------------------------------------------------------------------------------------
# GetSqlInfo as ArrowDatabaseMetadata reads it
# --------------------------------------------------------------------------------------

# the union members of GetSqlInfo's `value` (FlightSql.proto), by the Java class JDBC casts to
STRING, BOOL, BIGINT, BITMASK, STRING_LIST, INT_MAP = (
    "string_value", "bool_value", "bigint_value", "int32_bitmask", "string_list", "int32_to_int32_list_map")

# id -> (union member the JDBC getter's cast needs, bits of the enum a bitmask/ordinal is over).
# Names from FlightSql.proto's `enum SqlInfo`; the DatabaseMetaData method in brackets.
JDBC_SQL_INFO: dict[int, tuple[str, int | None]] = {
    0: (STRING, None),      # FLIGHT_SQL_SERVER_NAME [getDatabaseProductName]
    1: (STRING, None),      # FLIGHT_SQL_SERVER_VERSION [getDatabaseProductVersion]
    3: (BOOL, None),        # FLIGHT_SQL_SERVER_READ_ONLY [isReadOnly]
    504: (STRING, None),    # SQL_IDENTIFIER_QUOTE_CHAR [getIdentifierQuoteString]
    508: (STRING_LIST, None),  # SQL_KEYWORDS [getSQLKeywords]
    509: (STRING_LIST, None),  # SQL_NUMERIC_FUNCTIONS [getNumericFunctions]
    510: (STRING_LIST, None),  # SQL_STRING_FUNCTIONS [getStringFunctions]
    511: (STRING_LIST, None),  # SQL_SYSTEM_FUNCTIONS [getSystemFunctions]
    512: (STRING_LIST, None),  # SQL_DATETIME_FUNCTIONS [getTimeDateFunctions]
    513: (STRING, None),    # SQL_SEARCH_STRING_ESCAPE [getSearchStringEscape]
    514: (STRING, None),    # SQL_EXTRA_NAME_CHARACTERS [getExtraNameCharacters]
    515: (BOOL, None),      # SQL_SUPPORTS_COLUMN_ALIASING [supportsColumnAliasing]
    516: (BOOL, None),      # SQL_NULL_PLUS_NULL_IS_NULL [nullPlusNonNullIsNull]
    517: (INT_MAP, None),   # SQL_SUPPORTS_CONVERT [supportsConvert(from, to)]: SqlSupportsConvert -> [SqlSupportsConvert]
    518: (BOOL, None),      # SQL_SUPPORTS_TABLE_CORRELATION_NAMES [supportsTableCorrelationNames]
    519: (BOOL, None),      # SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES [supportsDifferentTableCorrelationNames]
    520: (BOOL, None),      # SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY [supportsExpressionsInOrderBy]
    521: (BOOL, None),      # SQL_SUPPORTS_ORDER_BY_UNRELATED [supportsOrderByUnrelated]
    522: (BITMASK, 2),      # SQL_SUPPORTED_GROUP_BY [supportsGroupBy, supportsGroupByUnrelated]: SqlSupportedGroupBy
    523: (BOOL, None),      # SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE [supportsLikeEscapeClause]
    524: (BOOL, None),      # SQL_SUPPORTS_NON_NULLABLE_COLUMNS [supportsNonNullableColumns]
    525: (BITMASK, 3),      # SQL_SUPPORTED_GRAMMAR [supports{Minimum,Core,Extended}SQLGrammar]: SupportedSqlGrammar
    526: (BITMASK, 3),      # SQL_ANSI92_SUPPORTED_LEVEL [supportsANSI92*SQL]: SupportedAnsi92SqlGrammarLevel
    527: (BOOL, None),      # SQL_SUPPORTS_INTEGRITY_ENHANCEMENT_FACILITY [supportsIntegrityEnhancementFacility]
    528: (BITMASK, 3),      # SQL_OUTER_JOINS_SUPPORT_LEVEL [supports{,Full,Limited}OuterJoins]: SqlOuterJoinsSupportLevel
    529: (STRING, None),    # SQL_SCHEMA_TERM [getSchemaTerm]
    530: (STRING, None),    # SQL_PROCEDURE_TERM [getProcedureTerm]
    531: (STRING, None),    # SQL_CATALOG_TERM [getCatalogTerm]
    532: (BOOL, None),      # SQL_CATALOG_AT_START [isCatalogAtStart]
    533: (BITMASK, 3),      # SQL_SCHEMAS_SUPPORTED_ACTIONS [supportsSchemasIn*]: SqlSupportedElementActions
    534: (BITMASK, 3),      # SQL_CATALOGS_SUPPORTED_ACTIONS [supportsCatalogsIn*]: SqlSupportedElementActions
    535: (BITMASK, 2),      # SQL_SUPPORTED_POSITIONED_COMMANDS [supportsPositioned{Delete,Update}]
    536: (BOOL, None),      # SQL_SELECT_FOR_UPDATE_SUPPORTED [supportsSelectForUpdate]
    537: (BOOL, None),      # SQL_STORED_PROCEDURES_SUPPORTED [supportsStoredProcedures]
    538: (BITMASK, 4),      # SQL_SUPPORTED_SUBQUERIES [supportsSubqueriesIn*]: SqlSupportedSubqueries
    539: (BOOL, None),      # SQL_CORRELATED_SUBQUERIES_SUPPORTED [supportsCorrelatedSubqueries]
    540: (BITMASK, 2),      # SQL_SUPPORTED_UNIONS [supportsUnion, supportsUnionAll]: SqlSupportedUnions
    541: (BIGINT, None),    # SQL_MAX_BINARY_LITERAL_LENGTH [getMaxBinaryLiteralLength]
    542: (BIGINT, None),    # SQL_MAX_CHAR_LITERAL_LENGTH [getMaxCharLiteralLength]
    543: (BIGINT, None),    # SQL_MAX_COLUMN_NAME_LENGTH [getMaxColumnNameLength]
    544: (BIGINT, None),    # SQL_MAX_COLUMNS_IN_GROUP_BY [getMaxColumnsInGroupBy]
    545: (BIGINT, None),    # SQL_MAX_COLUMNS_IN_INDEX [getMaxColumnsInIndex]
    546: (BIGINT, None),    # SQL_MAX_COLUMNS_IN_ORDER_BY [getMaxColumnsInOrderBy]
    547: (BIGINT, None),    # SQL_MAX_COLUMNS_IN_SELECT [getMaxColumnsInSelect]
    548: (BIGINT, None),    # SQL_MAX_COLUMNS_IN_TABLE [getMaxColumnsInTable]
    549: (BIGINT, None),    # SQL_MAX_CONNECTIONS [getMaxConnections]
    550: (BIGINT, None),    # SQL_MAX_CURSOR_NAME_LENGTH [getMaxCursorNameLength]
    551: (BIGINT, None),    # SQL_MAX_INDEX_LENGTH [getMaxIndexLength]
    552: (BIGINT, None),    # SQL_DB_SCHEMA_NAME_LENGTH [getMaxSchemaNameLength]
    553: (BIGINT, None),    # SQL_MAX_PROCEDURE_NAME_LENGTH [getMaxProcedureNameLength]
    554: (BIGINT, None),    # SQL_MAX_CATALOG_NAME_LENGTH [getMaxCatalogNameLength]
    555: (BIGINT, None),    # SQL_MAX_ROW_SIZE [getMaxRowSize]
    556: (BOOL, None),      # SQL_MAX_ROW_SIZE_INCLUDES_BLOBS [doesMaxRowSizeIncludeBlobs]
    557: (BIGINT, None),    # SQL_MAX_STATEMENT_LENGTH [getMaxStatementLength]
    558: (BIGINT, None),    # SQL_MAX_STATEMENTS [getMaxStatements]
    559: (BIGINT, None),    # SQL_MAX_TABLE_NAME_LENGTH [getMaxTableNameLength]
    560: (BIGINT, None),    # SQL_MAX_TABLES_IN_SELECT [getMaxTablesInSelect]
    561: (BIGINT, None),    # SQL_MAX_USERNAME_LENGTH [getMaxUserNameLength]
    # the proto calls this an int32 ordinal, but JDBC casts it to Long (and arrow-java's
    # SqlInfoBuilder sends bigint_value): an int32 would be a ClassCastException
    562: (BIGINT, 5),       # SQL_DEFAULT_TRANSACTION_ISOLATION [getDefaultTransactionIsolation]: SqlTransactionIsolationLevel
    563: (BOOL, None),      # SQL_TRANSACTIONS_SUPPORTED [supportsTransactions]
    564: (BITMASK, 5),      # SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS [supportsTransactionIsolationLevel]
    565: (BOOL, None),      # SQL_DATA_DEFINITION_CAUSES_TRANSACTION_COMMIT [dataDefinitionCausesTransactionCommit]
    566: (BOOL, None),      # SQL_DATA_DEFINITIONS_IN_TRANSACTIONS_IGNORED [dataDefinitionIgnoredInTransactions]
    567: (BITMASK, 4),      # SQL_SUPPORTED_RESULT_SET_TYPES [supportsResultSetType]: SqlSupportedResultSetType
    572: (BOOL, None),      # SQL_BATCH_UPDATES_SUPPORTED [supportsBatchUpdates]
    573: (BOOL, None),      # SQL_SAVEPOINTS_SUPPORTED [supportsSavepoints]
    574: (BOOL, None),      # SQL_NAMED_PARAMETERS_SUPPORTED [supportsNamedParameters]
    575: (BOOL, None),      # SQL_LOCATORS_UPDATE_COPY [locatorsUpdateCopy]
    576: (BOOL, None),      # SQL_STORED_FUNCTIONS_USING_CALL_SYNTAX_SUPPORTED [supportsStoredFunctionsUsingCallSyntax]
}
SQL_SUPPORTS_CONVERT_VALUES = range(20)  # enum SqlSupportsConvert: SQL_CONVERT_BIGINT = 0 .. SQL_CONVERT_VARCHAR = 19

SQL_INFO_SCHEMA = pa.schema([
    pa.field("info_name", pa.uint32(), nullable=False),
    pa.field("value", pa.dense_union([
        pa.field(STRING, pa.string(), nullable=False),
        pa.field(BOOL, pa.bool_(), nullable=False),
        pa.field(BIGINT, pa.int64(), nullable=False),
        pa.field(BITMASK, pa.int32(), nullable=False),
        pa.field(STRING_LIST, pa.list_(pa.field("item", pa.string())), nullable=True),
        pa.field(INT_MAP, pa.map_(pa.field("key", pa.int32(), nullable=False),
                                  pa.field("value", pa.list_(pa.field("item", pa.int32())))), nullable=True),
    ], type_codes=[0, 1, 2, 3, 4, 5]), nullable=False),
])


def sql_info_values(client) -> tuple[pa.Schema, dict[int, tuple[str, object]]]:
    """GetSqlInfo with no id filter, as the driver asks: id -> (union member name, value)."""
    info, table, _ = flight_command(client, cmd_get_sql_info())
    out = {}
    for batch in table.to_batches():
        names = batch.column("info_name").to_pylist()
        union = batch.column("value")
        members = {code: union.type.field(i).name for i, code in enumerate(union.type.type_codes)}
        codes = union.type_codes.to_pylist()
        values = union.to_pylist()
        for name, code, value in zip(names, codes, values):
            assert name not in out, f"SqlInfo {name} answered twice"
            out[name] = (members[code], value)
    return info.schema, out


def test_sql_info_schema_is_the_spec(jdbc):
    schema, _ = sql_info_values(jdbc)
    assert schema.remove_metadata().equals(SQL_INFO_SCHEMA), f"{schema}\n!=\n{SQL_INFO_SCHEMA}"


def test_every_sql_info_jdbc_reads_is_present_with_its_kind(jdbc):
    _, values = sql_info_values(jdbc)
    missing = {i: kind for i, (kind, _) in JDBC_SQL_INFO.items() if i not in values}
    wrong = {i: (values[i][0], kind) for i, (kind, _) in JDBC_SQL_INFO.items() if i in values and values[i][0] != kind}
    assert not missing and not wrong, (
        f"{len(missing)} SqlInfo ids the JDBC driver reads are missing (id: union member it needs): {missing}\n"
        f"{len(wrong)} answered with the wrong union member (id: (sent, needed)): {wrong}")


def test_sql_info_values_fit_what_jdbc_does_with_them(jdbc):
    """For the ids present: bitmasks use only their enum's bits, SQL_SUPPORTS_CONVERT maps
    SqlSupportsConvert values, strings and lists are not null, and the server is
    read-only and transactionless."""
    _, values = sql_info_values(jdbc)
    wrong = []
    for i, (kind, bits) in JDBC_SQL_INFO.items():
        if i not in values or values[i][0] != kind:
            continue  # reported by the test above
        v = values[i][1]
        if kind in (BITMASK, BIGINT) and bits is not None:
            limit = (1 << bits) if kind == BITMASK else bits
            if not 0 <= v < limit:
                wrong.append((i, v, f"outside 0..{limit - 1}"))
        elif kind == BIGINT and v < 0:
            wrong.append((i, v, "negative"))
        elif kind == STRING_LIST and (v is None or any(not isinstance(s, str) for s in v)):
            wrong.append((i, v, "not a list of strings"))
        elif kind == INT_MAP:
            bad = [(k, tos) for k, tos in (v or []) if k not in SQL_SUPPORTS_CONVERT_VALUES
                   or any(t not in SQL_SUPPORTS_CONVERT_VALUES for t in tos or [])]
            if bad:
                wrong.append((i, bad, "not SqlSupportsConvert values"))
        elif kind == STRING and v is None:
            wrong.append((i, v, "null"))
    assert not wrong, wrong
    expect = {0: "meshgate", 3: True, 504: '"', 563: False, 573: False, 572: False}
    got = {i: values[i][1] for i in expect if i in values}
    assert got == {i: v for i, v in expect.items() if i in values}, got


# --------------------------------------------------------------------------------------
# DatabaseMetaData methods, with the filters tools pass
# --------------------------------------------------------------------------------------

S = pa.string()
CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", S, False)])
DB_SCHEMAS_SCHEMA = pa.schema([pa.field("catalog_name", S), pa.field("db_schema_name", S, False)])
TABLES_SCHEMA = pa.schema([pa.field("catalog_name", S), pa.field("db_schema_name", S),
                           pa.field("table_name", S, False), pa.field("table_type", S, False)])
TABLES_WITH_SCHEMA_SCHEMA = TABLES_SCHEMA.append(pa.field("table_schema", pa.binary(), False))
TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", S, False)])
PRIMARY_KEYS_SCHEMA = pa.schema([pa.field("catalog_name", S), pa.field("db_schema_name", S),
                                 pa.field("table_name", S, False), pa.field("column_name", S, False),
                                 pa.field("key_name", S), pa.field("key_sequence", pa.int32(), False)])
FOREIGN_KEYS_SCHEMA = pa.schema([
    pa.field("pk_catalog_name", S), pa.field("pk_db_schema_name", S), pa.field("pk_table_name", S, False),
    pa.field("pk_column_name", S, False), pa.field("fk_catalog_name", S), pa.field("fk_db_schema_name", S),
    pa.field("fk_table_name", S, False), pa.field("fk_column_name", S, False),
    pa.field("key_sequence", pa.int32(), False), pa.field("fk_key_name", S), pa.field("pk_key_name", S),
    pa.field("update_rule", pa.uint8(), False), pa.field("delete_rule", pa.uint8(), False)])
XDBC_TYPE_INFO_SCHEMA = pa.schema([
    pa.field("type_name", S, False), pa.field("data_type", pa.int32(), False), pa.field("column_size", pa.int32()),
    pa.field("literal_prefix", S), pa.field("literal_suffix", S),
    pa.field("create_params", pa.list_(pa.field("item", S, False))),
    pa.field("nullable", pa.int32(), False), pa.field("case_sensitive", pa.bool_(), False),
    pa.field("searchable", pa.int32(), False), pa.field("unsigned_attribute", pa.bool_()),
    pa.field("fixed_prec_scale", pa.bool_(), False), pa.field("auto_increment", pa.bool_()),
    pa.field("local_type_name", S), pa.field("minimum_scale", pa.int32()), pa.field("maximum_scale", pa.int32()),
    pa.field("sql_data_type", pa.int32(), False), pa.field("datetime_subcode", pa.int32()),
    pa.field("num_prec_radix", pa.int32()), pa.field("interval_precision", pa.int32())])


def _table_ref(catalog, schema, table, first_field=1) -> bytes:
    out = b""
    for offset, value in enumerate((catalog, schema, table)):
        if value is not None:
            out += pb_string(first_field + offset, value)
    return out


def cmd_imported_keys(catalog, schema, table):
    return pack_any("CommandGetImportedKeys", _table_ref(catalog, schema, table))


def cmd_exported_keys(catalog, schema, table):
    return pack_any("CommandGetExportedKeys", _table_ref(catalog, schema, table))


def cmd_cross_reference(pk_catalog, pk_schema, pk_table, fk_catalog, fk_schema, fk_table):
    return pack_any("CommandGetCrossReference",
                    _table_ref(pk_catalog, pk_schema, pk_table) + _table_ref(fk_catalog, fk_schema, fk_table, 4))


def cmd_xdbc_type_info(data_type: int | None = None):
    return pack_any("CommandGetXdbcTypeInfo", b"" if data_type is None else pb_key(1, 0) + pb_varint(data_type))


def declared_keys() -> dict[tuple[str, str], list[str]]:
    """(domain, product) -> its `key: true` columns, in declaration order (the YAML files)."""
    doc = yaml.safe_load(DEMO_CONFIG.read_text())
    out = {}
    for domain, d in doc["domains"].items():
        products = list(d.get("products") or [])
        if d.get("products_dir"):
            for f in sorted((TESTDATA / d["products_dir"]).glob("*.yaml")):
                products.append(yaml.safe_load(f.read_text()))
        for p in current_versions(products):
            out[(domain, p["name"])] = [c["name"] for c in p.get("schema") or [] if c.get("key")]
    return out


def pairs(t: pa.Table) -> set[tuple[str, str]]:
    return set(zip(t.column("db_schema_name").to_pylist(), t.column("table_name").to_pylist()))


def _mesh_pairs(t: pa.Table) -> set[tuple[str, str]]:
    return {(s, n) for s, n in pairs(t) if s != "information_schema"}


# (DatabaseMetaData call, command, spec schema, check of the rows)
METADATA_CALLS = [
    ("getCatalogs()", cmd_get_catalogs(), CATALOGS_SCHEMA,
     lambda t: t.column("catalog_name").to_pylist() == ["mesh"]),
    ("getSchemas()", cmd_get_db_schemas(), DB_SCHEMAS_SCHEMA,
     lambda t: set(t.column("db_schema_name").to_pylist()) - {"information_schema"}
     == with_system_schema(DEMO_DOMAINS)),
    ("getSchemas(\"mesh\", \"s%\")", cmd_get_db_schemas("mesh", "s%"), DB_SCHEMAS_SCHEMA,
     lambda t: sorted(t.column("db_schema_name").to_pylist()) == ["sales", "supply"]),
    ("getSchemas(null, \"customers\")", cmd_get_db_schemas(None, "customers"), DB_SCHEMAS_SCHEMA,
     lambda t: t.column("db_schema_name").to_pylist() == ["customers"]),
    ("getTables(null, null, null, null)", cmd_get_tables(), TABLES_SCHEMA,
     lambda t: _mesh_pairs(t) == with_system_tables(DEMO_PRODUCTS)),
    ("getTables(null, \"%\", \"%\", {\"TABLE\", \"VIEW\"})",
     cmd_get_tables(None, "%", "%", ["TABLE", "VIEW"]), TABLES_SCHEMA,
     lambda t: _mesh_pairs(t) == DEMO_PRODUCTS and set(t.column("table_type").to_pylist()) == {"TABLE"}),
    ("getTables(\"mesh\", \"sales\", \"%\", {\"TABLE\"})", cmd_get_tables("mesh", "sales", "%", ["TABLE"]),
     TABLES_SCHEMA,
     lambda t: pairs(t) == {("sales", "orders"), ("sales", "lineitem"), ("sales", "customer_features")}),
    ("getTables(null, null, \"part_upp\", null)", cmd_get_tables(None, None, "part_upp"), TABLES_SCHEMA,
     lambda t: pairs(t) == {("supply", "partsupp")}),
    ("getTables(null, null, \"%\", {\"SYSTEM TABLE\"})", cmd_get_tables(None, None, "%", ["SYSTEM TABLE"]),
     TABLES_SCHEMA, lambda t: _mesh_pairs(t) == with_system_tables(set())
     and set(t.column("table_type").to_pylist()) == {SYSTEM_TABLE_TYPE}),
    ("getColumns(null, \"customers\", \"customer\", \"%\")",
     cmd_get_tables(None, "customers", "customer", include_schema=True), TABLES_WITH_SCHEMA_SCHEMA,
     lambda t: pairs(t) == {("customers", "customer")}),
    ("getTableTypes()", cmd_get_table_types(), TABLE_TYPES_SCHEMA,
     lambda t: sorted(t.column("table_type").to_pylist()) == sorted({"TABLE", SYSTEM_TABLE_TYPE})),
    ("getPrimaryKeys(\"mesh\", \"sales\", \"orders\")", cmd_get_primary_keys("orders", "sales", "mesh"),
     PRIMARY_KEYS_SCHEMA, lambda t: t.column("column_name").to_pylist() == declared_keys()[("sales", "orders")]),
    ("getPrimaryKeys(null, null, \"lineitem\")", cmd_get_primary_keys("lineitem"), PRIMARY_KEYS_SCHEMA,
     lambda t: sorted(zip(t.column("key_sequence").to_pylist(), t.column("column_name").to_pylist()))
     == list(enumerate(declared_keys()[("sales", "lineitem")], start=1))),
    ("getPrimaryKeys(\"mesh\", \"sales\", \"nope\")", cmd_get_primary_keys("nope", "sales", "mesh"),
     PRIMARY_KEYS_SCHEMA, lambda t: t.num_rows == 0),
    ("getImportedKeys(\"mesh\", \"sales\", \"orders\")", cmd_imported_keys("mesh", "sales", "orders"),
     FOREIGN_KEYS_SCHEMA, lambda t: t.num_rows == 0),  # the demo declares no relationships
    ("getExportedKeys(null, \"customers\", \"customer\")", cmd_exported_keys(None, "customers", "customer"),
     FOREIGN_KEYS_SCHEMA, lambda t: t.num_rows == 0),
    ("getCrossReference(\"mesh\", \"customers\", \"customer\", \"mesh\", \"sales\", \"orders\")",
     cmd_cross_reference("mesh", "customers", "customer", "mesh", "sales", "orders"), FOREIGN_KEYS_SCHEMA,
     lambda t: t.num_rows == 0),
    ("getTypeInfo() -> GetXdbcTypeInfo", cmd_xdbc_type_info(), XDBC_TYPE_INFO_SCHEMA,
     lambda t: t.num_rows > 0 and len(set(t.column("type_name").to_pylist())) == t.num_rows),
    ("GetXdbcTypeInfo(data_type=INTEGER)", cmd_xdbc_type_info(4), XDBC_TYPE_INFO_SCHEMA,
     lambda t: t.num_rows >= 1 and set(t.column("data_type").to_pylist()) == {4}),
]


@pytest.mark.parametrize("call, command, spec, check", METADATA_CALLS, ids=[c[0] for c in METADATA_CALLS])
def test_database_metadata_call(jdbc, call, command, spec, check):
    info, table, stream_schemas = flight_command(jdbc, command)
    for schema in [info.schema, *stream_schemas]:
        assert schema.remove_metadata().equals(spec), f"{call}:\n{schema}\n!= spec\n{spec}"
    assert check(table), f"{call}: {table.to_pylist()[:20]}"


def _like_regex(pattern: str) -> re.Pattern:
    """ArrowDatabaseMetadata.sqlToRegexLike: % -> .*, _ -> ."""
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern))


@pytest.mark.parametrize("schema_pattern, table_pattern, column_pattern", [
    ("customers", "customer", "%"), ("%", "%", "%key"), (None, "ord%", "o_%"), ("s%", "part%", "%")])
def test_get_columns(jdbc, schema_pattern, table_pattern, column_pattern):
    """getColumns: GetTables(include_schema=true), each table_schema decoded, the column
    pattern matched by the driver."""
    _, t, _ = flight_command(jdbc, cmd_get_tables(None, schema_pattern, table_pattern, include_schema=True))
    col_re = _like_regex(column_pattern)
    got, system = set(), set()
    for row in t.to_pylist():
        if row["db_schema_name"] == "information_schema":
            continue
        schema = pa.ipc.read_schema(pa.py_buffer(row["table_schema"]))
        if row["db_schema_name"] == SYSTEM_SCHEMA:
            assert len(schema) > 0, row["table_name"]
            system.add(row["table_name"])
            continue
        for pos, f in enumerate(schema, start=1):
            if col_re.fullmatch(f.name):
                got.add((row["db_schema_name"], row["table_name"], pos, f.name, str(f.type)))
    schema_re = _like_regex(schema_pattern or "%")
    table_re = _like_regex(table_pattern)
    expected = {(d, p, pos, c.name, str(c.type))
                for (d, p), cols in CONTRACT.items() if schema_re.fullmatch(d) and table_re.fullmatch(p)
                for pos, c in enumerate(cols, start=1) if col_re.fullmatch(c.name)}
    assert got == expected, sorted(got ^ expected)
    # the system tables are described too, wherever the patterns match them
    assert system == {n for n in SYSTEM_TABLES if schema_re.fullmatch(SYSTEM_SCHEMA) and table_re.fullmatch(n)}


def test_metadata_is_governed_for_a_restricted_user(demo_server):
    """carl (contractor) reads sales.orders only: that is all the driver's metadata shows."""
    carl = flight_client(demo_server.uri, user="carl")
    try:
        _, t, _ = flight_command(carl, cmd_get_db_schemas())
        assert set(t.column("db_schema_name").to_pylist()) - {"information_schema"} == with_system_schema({"sales"})
        _, t, _ = flight_command(carl, cmd_get_tables(None, "%", "%", include_schema=True))
        assert _mesh_pairs(t) == with_system_tables({("sales", "orders")})
        _, hidden, _ = flight_command(carl, cmd_get_primary_keys("lineitem", "sales", "mesh"))
        assert hidden.num_rows == 0
    finally:
        carl.close()
