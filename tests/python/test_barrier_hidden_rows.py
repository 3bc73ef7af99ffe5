"""What crosses a product's barrier when the principal's row filter hides rows
(DESIGN.md, docs/governance.md "What the barrier lets through").

- Filters DataFusion derives at run time (a join's bounds and key lists) reach the scan
  below the row filter only when they cannot fail and read unmasked columns: a join on
  a key computed with `1/(id - k)` still succeeds when the one row it would fail on is
  hidden, exactly as it fails when that row is visible.
- An accelerated product reports how many rows the principal sees (what their own
  `count(*)` says), so a join with it is ordered as for a principal who sees every row:
  the small side builds the hash table.

Every server here is a real `meshgate serve`, queried with pyarrow.flight; the
principal is anonymous and a steward (full EXPLAIN), with a row filter that hides rows.
"""

from __future__ import annotations

import re
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mgtest import describe_exc, flight_client, flight_grpc_code, flight_sql_query, write_yaml

ORDERS = 3 * 400
HIDDEN = 7  # the order the row filter hides (among others)


def write_shop(root) -> None:
    """`shop.orders` (three files, 1,200 rows) and `shop.statuses` (three rows, one hidden)."""
    (root / "orders").mkdir()
    (root / "statuses").mkdir()
    for part in range(3):
        ids = list(range(part * 400, (part + 1) * 400))
        pq.write_table(
            pa.table({
                "id": pa.array(ids, pa.int64()),
                "status": pa.array(["open" if i % 3 else "shipped" for i in ids]),
                "secret": pa.array([f"s-{i}" for i in ids]),
            }),
            root / "orders" / f"part-{part}.parquet",
            row_group_size=100,
        )
    pq.write_table(pa.table({"status": ["open", "shipped", "lost"], "label": ["Open", "Shipped", "Lost"]}),
                   root / "statuses" / "part-0.parquet")


ROW_FILTERS = {
    # Hides HIDDEN and the last 200 orders; cannot fail on any row.
    "hide": (f"id <> {HIDDEN} AND id < 1000", lambda i: i != HIDDEN and i < 1000),
    # Shows HIDDEN, hides the same last 200.
    "show": ("id < 1000", lambda i: i < 1000),
    # Hides odd orders with arithmetic: a filter that could fail (on other data).
    "arithmetic": ("id % 2 = 0", lambda i: i % 2 == 0),
}


def visible(i: int, row_filter: str) -> bool:
    return ROW_FILTERS[row_filter][1](i)


def config(root, *, row_filter: str, accelerated: bool) -> str:
    """The shop mesh, the anonymous steward seeing the orders ROW_FILTERS[row_filter] keeps."""
    keep = ROW_FILTERS[row_filter][0]
    products = [
        {"name": name, "location": str(root / name) + "/", "format": "parquet"}
        for name in ("orders", "statuses")
    ]
    doc = {
        "catalog": "mesh",
        "auth": {"anonymous": {"name": "ana", "groups": ["stewards"]}},
        "governance": {
            "stewards": ["stewards"],
            "policies": [{
                "grants": [{"id": "everyone", "effect": "permit"}],
                "row_filters": [
                    {"id": "all-rows", "mode": "permissive", "filter": "true"},
                    {"id": "some-orders", "mode": "restrictive", "products": ["shop.orders"], "filter": keep},
                    {"id": "no-lost", "mode": "restrictive", "products": ["shop.statuses"],
                     "filter": "status <> 'lost'"},
                ],
                "columns": [
                    {"id": "all-columns", "select": "*", "action": "allow"},
                    {"id": "secret", "products": ["shop.orders"], "select": ["secret"],
                     "action": {"mask": "redact", "value": "-"}},
                ],
            }],
        },
        "domains": {"shop": {"owner": "shop-team@example.com", "products": products}},
    }
    if accelerated:
        doc["acceleration"] = {"default": {"engine": "memory", "refresh": "manual"}}
    return str(write_yaml(root / f"mesh-{row_filter}-{int(accelerated)}.yaml", doc))


@pytest.fixture(scope="module")
def shop(tmp_path_factory):
    root = tmp_path_factory.mktemp("hidden-rows")
    write_shop(root)
    return root


def plan_text(client, sql: str) -> str:
    table = flight_sql_query(client, "EXPLAIN " + sql)
    return "\n".join(str(v) for v in table.column("plan").to_pylist())


def orders_scan(client, sql: str) -> tuple[str, str]:
    """The line of the plan that reads the orders' files, and the whole plan."""
    plan = plan_text(client, sql)
    return next(line for line in plan.splitlines() if "DataSourceExec" in line and "orders" in line), plan


def fails_on_hidden(i: int) -> int:
    """100 / (i - HIDDEN), as SQL divides integers (truncating); fails on HIDDEN only."""
    return int(100 / (i - HIDDEN))


# Queries evaluating 100 / (id - HIDDEN) on orders, and how many of the visible
# orders each answers: a join on it (the join's bounds are not let below the row
# filter) and a WHERE clause (the filter is not).
FAILING_ON_HIDDEN = [
    ("SELECT count(*) AS n FROM (VALUES (0), (1), (2), (100)) AS m(v) "
     f"JOIN shop.orders o ON m.v = 100 / (o.id - {HIDDEN})",
     lambda i: fails_on_hidden(i) in (0, 1, 2, 100)),
    (f"SELECT count(*) AS n FROM shop.orders WHERE 100 / (id - {HIDDEN}) = 2", lambda i: fails_on_hidden(i) == 2),
]


@pytest.mark.parametrize("accelerated", [False, True], ids=["files", "accelerated"])
def test_an_expression_that_fails_never_runs_on_hidden_rows(start_server, shop, accelerated):
    hidden = start_server(config(shop, row_filter="hide", accelerated=accelerated))
    shown = start_server(config(shop, row_filter="show", accelerated=accelerated))
    try:
        for sql, matches in FAILING_ON_HIDDEN:
            expected = sum(1 for i in range(ORDERS) if visible(i, "hide") and matches(i))
            got = flight_sql_query(flight_client(hidden.uri), sql).column("n").to_pylist()
            assert got == [expected], (sql, got)
            # The same query fails for a principal who sees the row: the expression is
            # evaluated, on visible rows only.
            with pytest.raises(Exception) as failed:
                flight_sql_query(flight_client(shown.uri), sql)
            assert "divide by zero" in describe_exc(failed.value).lower(), describe_exc(failed.value)
            assert flight_grpc_code(failed.value) in ("INVALID_ARGUMENT", "FAILED_PRECONDITION"), \
                describe_exc(failed.value)
    finally:
        hidden.stop(check=True)
        shown.stop(check=True)


def test_a_join_filter_reaches_the_files_below_a_hiding_row_filter(start_server, shop):
    server = start_server(config(shop, row_filter="hide", accelerated=False))
    try:
        client = flight_client(server.uri)
        sql = ("SELECT o.id, o.secret FROM (VALUES (CAST(10 AS BIGINT)), (12), (13), (" + str(HIDDEN)
               + ")) AS k(id) JOIN shop.orders o ON o.id = k.id")
        got = sorted(flight_sql_query(client, sql).to_pylist(), key=lambda r: r["id"])
        assert got == [{"id": 10, "secret": "-"}, {"id": 12, "secret": "-"}, {"id": 13, "secret": "-"}], got
        scan, plan = orders_scan(client, sql)
        assert "DynamicFilter" in scan, plan
        # A join on the masked column is not let through: it would compare raw values.
        masked = "SELECT count(*) FROM (VALUES ('s-10')) AS k(s) JOIN shop.orders o ON o.secret = k.s"
        assert flight_sql_query(client, masked).column(0).to_pylist() == [0]
        scan, plan = orders_scan(client, masked)
        assert "DynamicFilter" not in scan, plan
    finally:
        server.stop(check=True)


def test_a_row_filter_that_could_fail_lets_no_filter_below_it(start_server, shop):
    """Else a user's filter below would choose the rows the row filter runs on, and its
    errors would tell about single rows."""
    server = start_server(config(shop, row_filter="arithmetic", accelerated=False))
    try:
        client = flight_client(server.uri)
        sql = "SELECT o.id FROM (VALUES (CAST(10 AS BIGINT)), (13)) AS k(id) JOIN shop.orders o ON o.id = k.id"
        assert flight_sql_query(client, sql).to_pylist() == [{"id": 10}]
        scan, plan = orders_scan(client, sql)
        assert "DynamicFilter" not in scan, plan
    finally:
        server.stop(check=True)


def build_side(plan: str) -> str:
    """The product under the first hash join's build (left) side."""
    lines = plan.splitlines()
    start = next(i for i, line in enumerate(lines) if "HashJoinExec" in line)
    for line in lines[start + 1:]:
        found = re.search(r"GovernedScan: product=(\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError(plan)


def test_an_accelerated_product_with_hidden_rows_is_joined_small_side_first(start_server, shop):
    """Both sides hide rows: read from files, neither size is known and the join
    builds on the side written first (orders); accelerated, each side's visible count
    is, and the two visible statuses build the hash table."""
    server = start_server(config(shop, row_filter="hide", accelerated=True))
    try:
        client = flight_client(server.uri)
        sql = ("SELECT s.label, count(*) AS n FROM shop.orders o JOIN shop.statuses s ON o.status = s.status "
               "GROUP BY s.label ORDER BY s.label")

        def ready():
            copies = flight_sql_query(client, "SELECT name, accelerated_rows FROM mesh_catalog.products "
                                              "WHERE domain = 'shop'").to_pylist()
            return all(row["accelerated_rows"] for row in copies)

        deadline = time.monotonic() + 60
        while not ready():
            assert time.monotonic() < deadline, "the copies were not built within 60 s"
            time.sleep(0.1)
        assert build_side(plan_text(client, sql)) == "shop.statuses", plan_text(client, sql)
        seen = [i for i in range(ORDERS) if visible(i, "hide")]
        expected = [
            {"label": "Open", "n": sum(1 for i in seen if i % 3)},
            {"label": "Shipped", "n": sum(1 for i in seen if i % 3 == 0)},
        ]
        assert flight_sql_query(client, sql).to_pylist() == expected
        # The count the plan was ordered by is the principal's own.
        assert flight_sql_query(client, "SELECT count(*) AS n FROM shop.orders").to_pylist() == [{"n": len(seen)}]
    finally:
        server.stop(check=True)
