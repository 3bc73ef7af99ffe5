"""Governance attack suite, part 2: side doors around the governed scan.

Same four server configurations and principals as test_attacks.py. Covered: statements
that would change the session or read files directly (SET, DDL, COPY, INSERT, PREPARE,
URL tables, file-reading table functions, input_file_name), EXPLAIN, metadata and
information_schema for a principal with hidden products, hidden products failing exactly
like unknown ones (code and message modulo the name) in every query shape, tickets and
prepared-statement handles redeemed by another principal, forged or tampered, JWTs
(alg none, wrong key, expired, wrong audience) and injection through claim values and
user names, and ADBC prepared statements going through the same governance.
"""

from __future__ import annotations

import base64
import json
import os
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import govmodel
from attackkit import (
    HIDDEN_CUSTKEY as KH,
    JWT_SECRET,
    Case,
    assert_no_leak,
    error_or,
    ids,
    jwt_token,
    run_case,
)
from mgtest import (
    DATA,
    SYSTEM_SCHEMA,
    SYSTEM_TABLES,
    adbc_connect,
    adbc_grpc_code,
    adbc_query,
    assert_same_rows,
    auth_options,
    basic_authorization,
    cmd_get_db_schemas,
    cmd_get_primary_keys,
    cmd_get_tables,
    cmd_prepared_statement_query,
    cmd_statement_query,
    create_prepared_statement,
    describe_exc,
    flight_client,
    flight_command,
    flight_grpc_code,
    flight_sql_query,
    pack_any,
    pb_bytes,
    pb_key,
    pb_string,
    pb_varint,
    server_message,
    table_rows,
)

FLIGHT_ERRORS = (flight.FlightError, pa.ArrowException)
CUSTOMER_FILE = DATA / "customers" / "customer" / "customer.parquet"
REFUSED = ("INVALID_ARGUMENT",)
REFUSED_OR_UNKNOWN = ("INVALID_ARGUMENT", "NOT_FOUND")
ECHOED_PATH = ["@example.com"]  # a refused URL table may echo the path the user wrote, nothing else


def _then_missing(name):
    """After a refused CREATE, the object it would have made does not exist."""
    def check(pool, case):
        err = pool.error(case.user, case.sql)
        assert flight_grpc_code(err) in REFUSED, describe_exc(err)
        err = pool.error(case.user, f"SELECT * FROM {name}")
        assert flight_grpc_code(err) in REFUSED_OR_UNKNOWN, describe_exc(err)
        assert_no_leak(err)

    return check


def _copy_refused(pool, case):
    target = Path(tempfile.gettempdir()) / f"meshgate-attack-copy-{os.getpid()}.parquet"  # never written
    err = pool.error(case.user, case.sql.format(target=target))
    assert flight_grpc_code(err) in REFUSED, describe_exc(err)
    assert not target.exists()


def _set_has_no_effect(pool, case):
    err = pool.error(case.user, case.sql)
    assert flight_grpc_code(err) in REFUSED, describe_exc(err)
    sql = f"SELECT count(*) AS n FROM customers.customer WHERE 1/(c_custkey - {KH}) IS NOT NULL"
    assert pool.query(case.user, sql).column("n").to_pylist() == [govmodel.scalar(case.user, "SELECT count(*) "
                                                                                             "FROM customers.customer")]


SURFACE = [
    Case("set-pushdown", "ana", "SET datafusion.execution.parquet.pushdown_filters = true", expect="check",
         check=_set_has_no_effect),
    Case("set-reorder-filters", "ana", "SET datafusion.execution.parquet.reorder_filters = true", expect="check",
         check=_set_has_no_effect),
    Case("set-skip-stats", "carl", "SET datafusion.execution.collect_statistics = true", expect="error",
         codes=REFUSED),
    Case("create-table-as", "ana", "CREATE TABLE stolen AS SELECT * FROM customers.customer", expect="check",
         check=_then_missing("stolen")),
    Case("create-view", "ana", "CREATE VIEW v_all AS SELECT * FROM customers.customer", expect="check",
         check=_then_missing("v_all")),
    Case("create-external-table", "carl",
         f"CREATE EXTERNAL TABLE raw_customers STORED AS PARQUET LOCATION '{CUSTOMER_FILE.parent}/'",
         expect="check", check=_then_missing("raw_customers")),
    Case("copy-to-file", "ana", "COPY (SELECT * FROM customers.customer) TO '{target}'", expect="check",
         check=_copy_refused),
    Case("insert", "carl", "INSERT INTO sales.orders (o_orderkey, o_custkey) VALUES (1, 1)", expect="error",
         codes=REFUSED),
    Case("sql-prepare", "ana", "PREPARE q(BIGINT) AS SELECT c_email FROM customers.customer WHERE c_custkey = $1",
         expect="error", codes=REFUSED),
    Case("url-table-relative", "carl", "SELECT count(*) FROM 'testdata/data/customers/customer/customer.parquet'",
         expect="error", codes=REFUSED, leaks=ECHOED_PATH),
    Case("url-table-absolute", "ana", f"SELECT * FROM '{CUSTOMER_FILE}'", expect="error", codes=REFUSED,
         leaks=ECHOED_PATH),
    Case("url-table-directory", "carl", f"SELECT count(*) FROM '{DATA}/sales/orders/'", expect="error",
         codes=REFUSED, leaks=ECHOED_PATH),
    Case("url-table-file-scheme", "carl", f"SELECT count(*) FROM 'file://{CUSTOMER_FILE}'", expect="error",
         codes=REFUSED, leaks=ECHOED_PATH),
    Case("read-parquet-function", "carl", f"SELECT count(*) FROM read_parquet('{CUSTOMER_FILE}')", expect="error",
         codes=REFUSED_OR_UNKNOWN),
    Case("read-csv-function", "carl", f"SELECT count(*) FROM read_csv('{DATA}/supply/supplier/supplier.csv')",
         expect="error", codes=REFUSED_OR_UNKNOWN),
    Case("input-file-name", "ana", "SELECT input_file_name() AS f FROM customers.customer", expect="error",
         codes=REFUSED),
    Case("explain-analyze", "carl", "EXPLAIN ANALYZE SELECT count(*) FROM sales.orders", expect="error",
         codes=("INVALID_ARGUMENT", "PERMISSION_DENIED")),
]


def _explain_hides(*needles):
    def check(pool, case):
        text = "\n".join(str(v) for c in pool.query(case.user, case.sql).columns for v in c.to_pylist())
        for needle in [*needles, ".parquet", str(DATA), "testdata/"]:
            assert needle not in text, f"EXPLAIN shows {needle!r}:\n{text}"

    return check


def _only_listed(user):
    """A listing of (table_schema, table_name) rows shows `user` their products and the
    system tables, nothing else (information_schema aside)."""
    def check(t: pa.Table):
        rows = {(r["table_schema"], r["table_name"]) for r in t.to_pylist()}
        assert {r for r in rows if r[0] != "information_schema"} == govmodel.listed_tables(govmodel.DEMO[user]), rows

    return check


def _empty(pool, case):
    assert pool.query(case.user, case.sql).num_rows == 0


def _listed(command, expected):
    """A metadata command lists exactly `expected(principal)` (schema, table) pairs (table
    None for GetDbSchemas), information_schema aside."""
    def check(pool, case):
        _, t, _ = flight_command(pool.client(case.user), command)
        got = {(r["db_schema_name"], r.get("table_name")) for r in t.to_pylist()
               if r["db_schema_name"] != "information_schema"}
        assert got == expected(govmodel.DEMO[case.user]), t.to_pylist()

    return check


def _primary_keys_like_unknown(pool, case):
    client = pool.client(case.user)
    _, hidden, _ = flight_command(client, cmd_get_primary_keys("customer", db_schema="customers"))
    _, unknown, _ = flight_command(client, cmd_get_primary_keys("clients", db_schema="customers"))
    _, own, _ = flight_command(client, cmd_get_primary_keys("orders", db_schema="sales"))
    assert hidden.num_rows == unknown.num_rows == 0 and hidden.schema == unknown.schema
    assert own.column("column_name").to_pylist() == ["o_orderkey"]


def _flight_info_counts(pool, case):
    sql = "SELECT * FROM customers.customer"
    info = pool.client(case.user).get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)))
    assert info.total_records in (-1, govmodel.scalar(case.user, "SELECT count(*) FROM customers.customer")), \
        info.total_records
    for schema in (info.schema, pool.query(case.user, sql).schema):
        text = repr(schema.metadata) + repr([f.metadata for f in schema])
        for needle in ("c_comment", str(DATA), ".parquet"):
            assert needle not in text, text


def _adbc_columns(pool, case):
    conn = adbc_connect(pool.uri, user=case.user)
    try:
        objs = conn.adbc_get_objects(depth="all", catalog_filter="mesh").read_all().to_pylist()
    finally:
        conn.close()
    got = {(s["db_schema_name"], t["table_name"], c["column_name"]) for cat in objs
           for s in cat["catalog_db_schemas"] or [] for t in s["db_schema_tables"] or []
           for c in t["table_columns"] or [] if s["db_schema_name"] != "information_schema"}
    principal = govmodel.DEMO[case.user]
    expected = {(d, p, c) for (d, p) in govmodel.COLUMNS if govmodel.view_sql(principal, d, p)
                for c in govmodel.visible_columns(principal, d, p)}
    products = {x for x in got if x[0] != SYSTEM_SCHEMA}
    assert products == expected, sorted(products ^ expected)
    assert {t for s, t, _ in got if s == SYSTEM_SCHEMA} == SYSTEM_TABLES, sorted(got - products)


def _no_secrets(pool, case):
    text = repr(pool.query(case.user, case.sql).to_pylist())
    for secret in [*govmodel.MASK_KEYS.values(), JWT_SECRET]:
        assert secret not in text


METADATA = [
    Case("flight-info-counts-and-schema-metadata", "ana", "", expect="check", check=_flight_info_counts),
    Case("adbc-get-objects-columns-ana", "ana", "", expect="check", check=_adbc_columns),
    Case("adbc-get-objects-columns-carl", "carl", "", expect="check", check=_adbc_columns),
    Case("settings-hold-no-secrets", "ana", "SELECT * FROM information_schema.df_settings", expect="check",
         check=_no_secrets),
    Case("explain-ana", "ana", "EXPLAIN SELECT * FROM customers.customer WHERE c_custkey > 10", expect="check",
         check=_explain_hides("BUILDING", "c_comment", "overdrawn")),
    Case("explain-carl", "carl", "EXPLAIN VERBOSE SELECT o_totalprice FROM sales.orders", expect="check",
         check=_explain_hides("1-URGENT", "1997-01-01", "o_comment")),
    Case("information-schema-tables", "carl", "SELECT table_schema, table_name FROM information_schema.tables",
         expect="check", check=lambda pool, case: _only_listed(case.user)(pool.query(case.user, case.sql))),
    Case("information-schema-columns", "carl",
         "SELECT * FROM information_schema.columns WHERE table_name IN ('customer', 'lineitem', 'part')",
         expect="check", check=_empty),
    Case("information-schema-views", "carl", "SELECT table_schema, table_name FROM information_schema.views",
         expect="check", check=error_or(_only_listed("carl"))),
    Case("show-tables", "carl", "SHOW TABLES", expect="check", check=error_or(_only_listed("carl"))),
    Case("get-tables-hidden-domain", "carl", "", expect="check",
         check=_listed(cmd_get_tables(catalog="mesh", db_schema_filter_pattern="customers"), lambda p: set())),
    Case("get-tables-all", "carl", "", expect="check",
         check=_listed(cmd_get_tables(table_name_filter_pattern="%", include_schema=True), govmodel.listed_tables)),
    Case("get-db-schemas", "carl", "", expect="check",
         check=_listed(cmd_get_db_schemas(db_schema_filter_pattern="%"),
                       lambda p: {(schema, None) for schema in govmodel.listed_schemas(p)})),
    Case("get-primary-keys-hidden", "carl", "", expect="check", check=_primary_keys_like_unknown),
]


def _alike(case_id, user, template, hidden, unknown):
    return Case(case_id, user, template.format(t=hidden), expect="alike",
                unknown=(hidden, template.format(t=unknown), unknown))


HIDDEN_LIKE_UNKNOWN = [
    _alike("hidden-product-select", "carl", "SELECT * FROM {t}", "customers.customer", "customers.clients"),
    _alike("hidden-product-lineitem", "carl", "SELECT count(*) FROM {t}", "sales.lineitem", "sales.lineitems"),
    _alike("hidden-domain", "carl", "SELECT * FROM {t}", "supply.part", "nowhere.part"),
    _alike("hidden-product-catalog-qualified", "carl", "SELECT * FROM {t}", "mesh.supply.supplier",
           "mesh.supply.vendor"),
    _alike("hidden-product-join", "carl",
           "SELECT count(*) FROM sales.orders o JOIN {t} c ON o.o_custkey = c.c_custkey",
           "customers.customer", "customers.clients"),
    _alike("hidden-product-subquery", "carl",
           "SELECT count(*) FROM sales.orders WHERE o_custkey IN (SELECT c_custkey FROM {t})",
           "customers.customer", "customers.clients"),
    _alike("hidden-product-cte", "carl", "WITH x AS (SELECT * FROM {t}) SELECT count(*) FROM x",
           "customers.nation", "customers.nations"),
    _alike("hidden-product-describe", "carl", "DESCRIBE {t}", "customers.customer", "customers.clients"),
    Case("hidden-product-typo-suggestion", "carl", "SELECT * FROM customers.custome", expect="error",
         codes=("NOT_FOUND",), leaks=["customers.customer", "customer'"]),
    _alike("hidden-product-explain", "carl", "EXPLAIN SELECT * FROM {t}", "supply.partsupp", "supply.partsupply"),
]


# -- tickets and handles ---------------------------------------------------------------------


def _ticket(client, sql):
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)))
    return info.endpoints[0].ticket


def _stolen_ticket(owner, sql):
    def check(pool, case):
        ticket = _ticket(pool.client(owner), sql)
        with pytest.raises(FLIGHT_ERRORS) as ei:
            pool.client(case.user).do_get(ticket).read_all()
        assert flight_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)
        assert_no_leak(ei.value)

    return check


def _all_rejected(pool, user, tickets):
    wrong = []
    for i, bad in enumerate(tickets):
        try:
            t = pool.client(user).do_get(flight.Ticket(bad)).read_all()
            wrong.append((i, bad[:48], f"redeemed: {t.num_rows} rows"))
        except FLIGHT_ERRORS as e:
            if flight_grpc_code(e) not in ("INVALID_ARGUMENT", "UNAUTHENTICATED"):
                wrong.append((i, bad[:48], describe_exc(e)))
    assert not wrong, "\n".join(map(repr, wrong))


def _forged_ticket(pool, case):
    payload = pb_string(1, "SELECT c_email, c_comment FROM customers.customer") + pb_string(2, "stella") + \
        pb_key(3, 0) + pb_varint(2**62) + pb_key(4, 0) + pb_varint(1)
    envelope = pb_key(1, 0) + pb_varint(1) + pb_bytes(2, payload) + pb_bytes(3, bytes(range(32)))
    _all_rejected(pool, case.user, [pack_any("TicketStatementQuery", pb_bytes(1, envelope)), envelope, b"\x0a\x00"])


def _tampered_ticket(pool, case):
    good = _ticket(pool.client(case.user), "SELECT c_custkey FROM customers.customer").ticket
    variants = [good[:i] + bytes([good[i] ^ 0x04]) + good[i + 1:] for i in (len(good) // 3, len(good) // 2, len(good) - 3)]
    if b"c_custkey" in good:
        variants.append(good.replace(b"c_custkey", b"c_comment"))
    _all_rejected(pool, case.user, variants)


def _stolen_handle(owner):
    def check(pool, case):
        handle = create_prepared_statement(pool.client(owner), "SELECT c_email FROM customers.customer")
        desc = flight.FlightDescriptor.for_command(cmd_prepared_statement_query(handle))
        with pytest.raises(FLIGHT_ERRORS) as ei:
            pool.client(case.user).get_flight_info(desc)
        assert flight_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)

    return check


def _concurrent_principals(pool, case):
    """Principals querying at the same time never see each other's view."""
    from concurrent.futures import ThreadPoolExecutor

    sql = "SELECT count(*) AS n, count(DISTINCT c_mktsegment) AS s, max(length(c_email)) AS l FROM customers.customer"
    expected = {u: govmodel.expected(u, sql).rows[0] for u in ("ana", "sam", "stella")}

    def run(user):
        client = flight_client(pool.uri, user=user)
        try:
            return [(user, tuple(flight_sql_query(client, sql).to_pylist()[0].values())) for _ in range(8)]
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=6) as ex:
        results = [r for rs in ex.map(run, ["ana", "stella", "sam", "ana", "stella", "sam"]) for r in rs]
    wrong = [(u, got) for u, got in results if got != expected[u]]
    assert not wrong, (wrong[:5], expected)


def _do_put_update(pool, case):
    command = pack_any("CommandStatementUpdate", pb_string(1, "DELETE FROM sales.orders"))
    client = pool.client(case.user)
    with pytest.raises(FLIGHT_ERRORS):
        writer, _ = client.do_put(flight.FlightDescriptor.for_command(command), pa.schema([]))
        writer.close()


TICKETS = [
    Case("concurrent-principals", "ana", "", expect="check", check=_concurrent_principals),
    Case("do-put-statement-update", "carl", "", expect="check", check=_do_put_update),
    Case("ticket-of-pii-reader-redeemed-by-analyst", "ana", "", expect="check",
         check=_stolen_ticket("sam", "SELECT c_email FROM customers.customer")),
    Case("ticket-of-steward-redeemed-by-contractor", "carl", "", expect="check",
         check=_stolen_ticket("stella", "SELECT * FROM customers.customer")),
    Case("ticket-of-analyst-redeemed-by-pii-reader", "sam", "", expect="check",
         check=_stolen_ticket("ana", "SELECT count(*) FROM sales.orders")),
    Case("ticket-forged", "ana", "", expect="check", check=_forged_ticket),
    Case("ticket-tampered", "ana", "", expect="check", check=_tampered_ticket),
    Case("handle-of-steward-used-by-analyst", "ana", "", expect="check", check=_stolen_handle("stella")),
]


# -- JWTs and credentials ----------------------------------------------------------------------


def _jwt_rejected(token):
    def check(pool, case):
        client = flight_client(pool.uri, bearer=token())
        try:
            with pytest.raises(FLIGHT_ERRORS) as ei:
                flight_sql_query(client, "SELECT count(*) AS n FROM customers.customer")
            assert flight_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)
            assert server_message(ei.value) == "invalid credentials", describe_exc(ei.value)
        finally:
            client.close()

    return check


def _jwt_rows(token, sql, principal):
    def check(pool, case):
        client = flight_client(pool.uri, bearer=token())
        try:
            got = flight_sql_query(client, sql)
        finally:
            client.close()
        assert_same_rows(got, govmodel.expected(principal, sql))

    return check


def _unsigned(claims_token):
    """The token's claims under an `alg: none` header, without a signature."""
    body = claims_token.split(".")[1]
    none = base64.urlsafe_b64encode(json.dumps({"alg": "none", "typ": "JWT"}).encode()).rstrip(b"=").decode()
    return f"{none}.{body}."


def _basic_rejected(user, password):
    def check(pool, case):
        client = flight.FlightClient(pool.uri)
        try:
            with pytest.raises(FLIGHT_ERRORS) as ei:
                client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query("SELECT 1")),
                                       auth_options(basic_authorization(user, password)))
            assert flight_grpc_code(ei.value) == "UNAUTHENTICATED", describe_exc(ei.value)
            assert server_message(ei.value) == "invalid credentials", describe_exc(ei.value)
        finally:
            client.close()

    return check


JULES = govmodel.principal("jules", ["analyst"], segment="BUILDING", region_key=3)
CREDENTIALS = [
    Case("jwt-valid-control", "ana", "", expect="check",
         check=_jwt_rows(lambda: jwt_token(), "SELECT c_custkey, c_email, c_acctbal FROM customers.customer", JULES)),
    Case("jwt-alg-none-steward", "ana", "", expect="check",
         check=_jwt_rejected(lambda: _unsigned(jwt_token(groups=["steward"])))),
    Case("jwt-wrong-key-steward", "ana", "", expect="check",
         check=_jwt_rejected(lambda: jwt_token(key=JWT_SECRET + "!", groups=["steward"]))),
    Case("jwt-expired", "ana", "", expect="check", check=_jwt_rejected(lambda: jwt_token(exp=1_000_000_000))),
    Case("jwt-wrong-audience", "ana", "", expect="check", check=_jwt_rejected(lambda: jwt_token(aud="grafana"))),
    Case("jwt-segment-injection", "ana", "", expect="check",
         check=_jwt_rows(lambda: jwt_token(segment="BUILDING' OR '1'='1"), "SELECT count(*) AS n FROM "
                         "customers.customer", govmodel.principal("x", ["analyst"], segment="BUILDING' OR '1'='1"))),
    Case("jwt-segment-array", "ana", "", expect="check",
         check=_jwt_rows(lambda: jwt_token(segment=["BUILDING", "AUTOMOBILE"]),
                         "SELECT count(*) AS n FROM customers.customer", govmodel.principal("x", ["analyst"]))),
    Case("jwt-region-as-string", "ana", "", expect="check",
         check=_jwt_rows(lambda: jwt_token(region_key="3 OR true"), "SELECT count(*) AS n FROM customers.nation",
                         govmodel.principal("x", ["analyst"]))),
    Case("basic-user-injection", "ana", "", expect="check", check=_basic_rejected("ana' OR '1'='1", "x")),
    Case("basic-user-comment", "ana", "", expect="check", check=_basic_rejected("stella'--", "ana-demo")),
]


# -- ADBC prepared statements ------------------------------------------------------------------


def _adbc(user, sql, *, error=None):
    def check(pool, case):
        conn = adbc_connect(pool.uri, user=user)
        try:
            if error:
                with pytest.raises(Exception) as ei:
                    adbc_query(conn, sql)
                assert adbc_grpc_code(ei.value) == error, describe_exc(ei.value)
                assert_no_leak(ei.value)
            else:
                assert_same_rows(table_rows(adbc_query(conn, sql)), govmodel.expected(user, sql.replace(
                    f"1/(c_custkey - {KH}) IS NOT NULL", "true")))
        finally:
            conn.close()

    return check


PREPARED = [
    Case("adbc-prepared-governed", "ana", "", expect="check",
         check=_adbc("ana", "SELECT c_custkey, c_email, c_acctbal FROM customers.customer")),
    Case("adbc-prepared-oracle", "ana", "", expect="check",
         check=_adbc("ana", f"SELECT count(*) AS n FROM customers.customer WHERE 1/(c_custkey - {KH}) IS NOT NULL")),
    Case("adbc-prepared-contractor", "carl", "", expect="check",
         check=_adbc("carl", "SELECT o_orderkey, o_totalprice, o_orderdate FROM sales.orders")),
    Case("adbc-prepared-hidden-product", "carl", "", expect="check",
         check=_adbc("carl", "SELECT * FROM customers.customer", error="NOT_FOUND")),
    Case("adbc-prepared-denied-column", "ana", "", expect="check",
         check=_adbc("ana", "SELECT c_comment FROM customers.customer", error="INVALID_ARGUMENT")),
]

CASES = SURFACE + METADATA + HIDDEN_LIKE_UNKNOWN + TICKETS + CREDENTIALS + PREPARED


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_side_door(attack_pool, case):
    run_case(attack_pool, case)
