"""How a principal's row filter is planned (docs/governance.md, "Row filters"): bound
to the principal's attributes, then simplified as DataFusion simplifies a query's own
filters, so that governed scans cost what the same WHERE clause costs.

- `amount >= 0` on a DECIMAL(15,2) column compares decimals as stored: no cast of the
  column on every row.
- A restrictive filter that folds to `true` for this principal (`consent OR
  principal.purpose <> 'ml_training'` for an analytics purpose) hides nothing, and
  what is refused only to principals with hidden rows (provenance columns) is given.
- NULL still counts as false: rows where the filter is NULL stay hidden.

Every server is a real `meshgate serve`, queried with pyarrow.flight by an anonymous
steward (full EXPLAIN), with and without a declared purpose.
"""

from __future__ import annotations

from decimal import Decimal

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from mgtest import cmd_statement_query, describe_exc, flight_client, flight_grpc_code, write_yaml

ROWS = 100


def amount(i: int) -> Decimal | None:
    return None if i % 10 == 3 else Decimal(i - 20) / 4


def consent(i: int) -> bool | None:
    return None if i % 7 == 0 else i % 2 == 0


def write_shop(root) -> None:
    for name in ("payments", "signups", "refunds"):
        (root / name).mkdir()
        pq.write_table(
            pa.table({
                "id": pa.array(range(ROWS), pa.int64()),
                "amount": pa.array([amount(i) for i in range(ROWS)], pa.decimal128(15, 2)),
                "consent": pa.array([consent(i) for i in range(ROWS)], pa.bool_()),
            }),
            root / name / "part-0.parquet",
        )


def config(root) -> str:
    consented = "consent OR principal.purpose <> 'ml_training'"
    doc = {
        "catalog": "mesh",
        "auth": {"anonymous": {"name": "ana", "groups": ["stewards"]}},
        "governance": {
            "stewards": ["stewards"],
            "policies": [{
                "grants": [{"id": "everyone", "effect": "permit"}],
                "row_filters": [
                    {"id": "all-rows", "mode": "permissive", "filter": "true"},
                    {"id": "no-refunds", "mode": "restrictive", "products": ["shop.payments"], "filter": "amount >= 0"},
                    {"id": "consented", "mode": "restrictive", "products": ["shop.payments", "shop.signups"],
                     "filter": consented},
                    # Divides only where the WHEN holds: rows with amount = 0 are hidden, never divided by.
                    {"id": "big-ids-per-amount", "mode": "restrictive", "products": ["shop.refunds"],
                     "filter": "CASE WHEN amount <> 0 THEN id / amount > 1 ELSE false END"},
                ],
                "columns": [{"id": "all-columns", "select": "*", "action": "allow"}],
            }],
        },
        "domains": {"shop": {"owner": "shop-team@example.com", "products": [
            {"name": name, "location": str(root / name) + "/", "format": "parquet"}
            for name in ("payments", "signups", "refunds")
        ]}},
    }
    return str(write_yaml(root / "mesh.yaml", doc))


@pytest.fixture(scope="module")
def server(tmp_path_factory, start_server):
    root = tmp_path_factory.mktemp("row-filter-plans")
    write_shop(root)
    server = start_server(config(root))
    yield server
    server.stop(check=True)


def options(purpose: str | None, **headers: str) -> flight.FlightCallOptions:
    if purpose is not None:
        headers["purpose"] = purpose
    return flight.FlightCallOptions(headers=[(f"x-meshgate-{k}".encode(), v.encode()) for k, v in headers.items()])


def query(server, sql: str, purpose: str | None = None, **headers: str) -> pa.Table:
    client = flight_client(server.uri)
    call = options(purpose, **headers)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)), call)
    tables = [client.do_get(endpoint.ticket, call).read_all() for endpoint in info.endpoints]
    client.close()
    return pa.concat_tables(tables)


def policy_filter(server, sql: str, purpose: str | None) -> str:
    """The predicate of the FilterExec just under the product's barrier."""
    plan = "\n".join(str(v) for v in query(server, "EXPLAIN " + sql, purpose).column("plan").to_pylist())
    lines = plan.splitlines()
    barrier = next(i for i, line in enumerate(lines) if "GovernedScan: product=shop.payments" in line)
    filters = [line for line in lines[barrier:] if "FilterExec" in line]
    assert filters, plan
    return filters[0]


@pytest.mark.parametrize("purpose", [None, "ml_training", "analytics"])
def test_a_row_filter_compares_columns_as_stored_and_null_stays_hidden(server, purpose):
    def kept(i: int) -> bool:
        consented = consent(i) is True or purpose == "analytics"
        return amount(i) is not None and amount(i) >= 0 and consented

    sql = "SELECT id FROM shop.payments ORDER BY id"
    got = query(server, sql, purpose).column("id").to_pylist()
    assert got == [i for i in range(ROWS) if kept(i)], purpose
    predicate = policy_filter(server, sql, purpose)
    assert "amount@" in predicate and "CAST(amount" not in predicate, predicate
    assert "IS NOT DISTINCT FROM" not in predicate, predicate
    # For analytics the consent term is `true` and is gone; otherwise it is the column.
    assert ("consent@" in predicate) == (purpose != "analytics"), predicate


def test_a_row_filter_that_folds_to_true_hides_nothing(server):
    sql = "SELECT id, _source_row FROM shop.signups ORDER BY id"
    rows = query(server, sql, "analytics", provenance="true").to_pylist()
    assert [r["id"] for r in rows] == list(range(ROWS))
    assert [r["_source_row"] for r in rows] == list(range(ROWS))
    # The same filter hides rows from a training purpose, and provenance would tell
    # where they are.
    with pytest.raises(pa.ArrowException) as refused:
        query(server, sql, "ml_training", provenance="true")
    assert flight_grpc_code(refused.value) == "INVALID_ARGUMENT", describe_exc(refused.value)
    assert "a row filter applies to you" in describe_exc(refused.value), describe_exc(refused.value)
    kept = query(server, "SELECT id FROM shop.signups ORDER BY id", "ml_training").column("id").to_pylist()
    assert kept == [i for i in range(ROWS) if consent(i) is True]


def test_a_case_in_a_row_filter_still_guards_its_branches(server):
    """A CASE is kept as written: its THEN never runs on rows its WHEN excludes, so a
    division there cannot fail on (and tell about) a hidden row."""
    def kept(i: int) -> bool:
        a = amount(i)
        return a is not None and a != 0 and Decimal(i) / a > 1

    got = query(server, "SELECT id FROM shop.refunds ORDER BY id", "analytics").column("id").to_pylist()
    assert got == [i for i in range(ROWS) if kept(i)]
    assert any(amount(i) == 0 for i in range(ROWS))
