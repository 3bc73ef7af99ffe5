"""Prepared statements with parameters through ADBC (the Go Flight SQL driver):
CreatePreparedStatement reports the parameter schema, DoPut binds, the new handle
carries the values (stateless), execution is governed like any query."""

from __future__ import annotations

import pyarrow as pa
import pytest

from mgtest import adbc_connect, adbc_grpc_code, describe_exc, duckdb_expected, assert_same_rows

NATION_BY_KEY = "SELECT n_nationkey, n_name FROM customers.nation WHERE n_nationkey = $1"


@pytest.fixture
def stella(demo_server):
    conn = adbc_connect(demo_server.uri, "stella")
    yield conn
    conn.close()


def run(conn, sql, parameters):
    with conn.cursor() as cur:
        cur.execute(sql, parameters)
        return cur.fetch_arrow_table()


def test_the_parameter_schema_is_reported(stella):
    with stella.cursor() as cur:
        schema = cur.adbc_prepare("SELECT n_name FROM customers.nation WHERE n_nationkey = $1 AND n_name LIKE $2")
    assert schema.names == ["$1", "$2"]
    assert schema.field("$1").type == pa.int64()
    assert schema.field("$2").type == pa.string()


def test_bound_values_select_rows(stella):
    got = run(stella, NATION_BY_KEY, (7,))
    assert_same_rows(got, duckdb_expected("SELECT n_nationkey, n_name FROM customers.nation WHERE n_nationkey = 7"))
    got = run(stella, "SELECT count(*) AS n FROM customers.nation WHERE n_regionkey = $1 AND n_name LIKE $2", (3, "%A%"))
    expected = duckdb_expected(
        "SELECT count(*) AS n FROM customers.nation WHERE n_regionkey = 3 AND n_name LIKE '%A%'"
    )
    assert got.column("n")[0].as_py() == expected.rows[0][0]


def test_each_execution_uses_its_own_values(stella):
    keys = [0, 7, 24, 7, 3]
    names = [run(stella, NATION_BY_KEY, (k,)).column("n_name")[0].as_py() for k in keys]
    expected = {
        k: duckdb_expected(f"SELECT n_name FROM customers.nation WHERE n_nationkey = {k}").rows[0][0]
        for k in set(keys)
    }
    assert names == [expected[k] for k in keys]


def test_parameters_are_governed(demo_server):
    """ana sees the European nations only: binding a hidden key finds nothing."""
    conn = adbc_connect(demo_server.uri, "ana")
    try:
        assert run(conn, NATION_BY_KEY, (7,)).num_rows == 1  # GERMANY, region 3
        assert run(conn, NATION_BY_KEY, (2,)).num_rows == 0  # BRAZIL, hidden
        injected = run(conn, "SELECT count(*) AS n FROM customers.nation WHERE n_name = $1", ("x' OR '1'='1",))
        assert injected.column("n")[0].as_py() == 0
    finally:
        conn.close()


@pytest.mark.parametrize(
    "sql, parameters, needle",
    [
        (NATION_BY_KEY, (), "1 parameter"),
        (NATION_BY_KEY, (1, 2), "1 parameter"),
        (NATION_BY_KEY, ("seven",), "$1"),
    ],
    ids=["too-few", "too-many", "wrong-type"],
)
def test_wrong_parameters_are_invalid_argument(stella, sql, parameters, needle):
    with pytest.raises(Exception) as caught:
        run(stella, sql, parameters)
    assert adbc_grpc_code(caught.value) == "INVALID_ARGUMENT", describe_exc(caught.value)
    assert needle in str(caught.value)
    assert run(stella, NATION_BY_KEY, (7,)).num_rows == 1  # still serving
