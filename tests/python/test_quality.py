"""Data contracts through the real server: quality checks and freshness run in the
background after load and reload; a degraded product is served with a warning the
client reads (FlightInfo app_metadata, DoGet trailer x-meshgate-warning) or refused
with FAILED_PRECONDITION naming the failed check; a broken contract at reload keeps
the previous snapshot; `meshgate check` runs the checks and prints every result.

Each test writes a small mesh in a temporary directory (Parquet files written here):
shop.orders (an amount is NULL), shop.items (passes every check) and shop.events (the
newest event is from 2020).
"""

from __future__ import annotations

import datetime as dt
import json
import signal
import time

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from mgtest import (
    DEMO_CONFIG,
    adbc_connect,
    adbc_query,
    cmd_statement_query,
    flight_client,
    run_meshgate,
    server_message,
    with_open_governance,
    write_yaml,
)

WAIT = 60.0


def write_data(root):
    today = dt.date.today()
    tables = {
        "orders": pa.table({
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "amount": pa.array([10.0, None, 7.5, 3.0], pa.float64()),
            "day": pa.array([today, today, today - dt.timedelta(days=1), today], pa.date32()),
        }),
        "items": pa.table({"id": pa.array([1, 2, 3], pa.int64()), "sku": pa.array(["A-1", "B-2", "C-3"])}),
        "events": pa.table({
            "id": pa.array([1, 2], pa.int64()),
            "seen": pa.array([dt.date(2020, 1, 1), dt.date(2020, 1, 2)], pa.date32()),
        }),
    }
    for name, table in tables.items():
        (root / "data" / name).mkdir(parents=True, exist_ok=True)
        pq.write_table(table, root / "data" / name / "part-0.parquet")


def product(root, name, **contract):
    return {"name": name, "location": f"{root / 'data' / name}/", "format": "parquet", **contract}


ORDERS_CHECKS = [
    {"type": "not_null", "column": "amount", "name": "amount_present"},
    {"type": "row_count", "min": 1},
    {"type": "unique", "column": "id"},
]


def write_mesh(root, on_failure="warn", orders_checks=ORDERS_CHECKS, events_severity="error"):
    doc = {
        "catalog": "mesh",
        "domains": {
            "shop": {
                "owner": "shop@example.com",
                "products": [
                    product(root, "orders", quality=orders_checks, on_failure=on_failure,
                            freshness={"column": "day", "max_age": "2d"}),
                    product(root, "items", quality=[
                        {"type": "regex", "column": "sku", "pattern": "^[A-Z]-[0-9]$"},
                        {"type": "sql", "query": "SELECT count(*) FROM items WHERE id <= 0", "must_be": 0},
                    ], freshness={"max_age": "1h"}),
                    product(root, "events", on_failure="block",
                            freshness={"column": "seen", "max_age": "36h", "severity": events_severity}),
                ],
            }
        },
    }
    return write_yaml(root / "mesh.yaml", with_open_governance(doc))


@pytest.fixture
def shop(tmp_path):
    write_data(tmp_path)
    return tmp_path


def wait_for_log(server, *needles, after=0):
    """Waits for a stderr line past `after` holding every needle; returns the line."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for line in server.stderr_text()[after:].splitlines():
            if all(needle in line for needle in needles):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no log line with {needles} within {WAIT}s:\n{server.stderr_text()[after:][-4000:]}")


def checked(server, product, after=0):
    """Waits until the background checks of `product` have finished; their log line."""
    return wait_for_log(server, "quality checks finished", f"product={product}", after=after)


class Calls(flight.ClientMiddlewareFactory):
    """Records, per call, each batch of response metadata pyarrow hands its client
    middleware: the initial headers, then the trailers (gRPC's own keys removed)."""

    def __init__(self):
        super().__init__()
        self.received: list[dict] = []

    def start_call(self, info):
        self.received = []
        factory = self

        class Middleware(flight.ClientMiddleware):
            def received_headers(self, headers):
                factory.received.append({k.lower(): list(v) for k, v in headers.items()})

        return Middleware()

    def trailers(self) -> dict:
        initial, trailers = self.received
        assert "x-meshgate-warning" not in initial, initial
        return trailers


def failed_precondition(exc) -> bool:
    """pyarrow raises FAILED_PRECONDITION as ArrowInvalid (like INVALID_ARGUMENT); its
    message names the code."""
    return "gRPC returned precondition failed error" in str(exc)


def warnings_of(info) -> list[str]:
    return json.loads(info.app_metadata)["warnings"] if info.app_metadata else []


def test_a_degraded_product_in_warn_mode_is_served_with_a_warning(start_server, shop):
    server = start_server(write_mesh(shop, on_failure="warn"), name="quality-warn")
    line = checked(server, "shop.orders")
    assert 'status="degraded"' in line or "status=degraded" in line, line
    calls = Calls()
    client = flight.FlightClient(server.uri, middleware=[calls])
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query("SELECT * FROM shop.orders")))
    expected = "product shop.orders is degraded: check amount_present (amount is not null) failed: 1 row violates it"
    assert warnings_of(info) == [expected]
    reader = client.do_get(info.endpoints[0].ticket)
    assert reader.read_all().num_rows == 4
    assert calls.trailers().get("x-meshgate-warning") == [expected]
    # Through ADBC too: served.
    conn = adbc_connect(server.uri)
    try:
        assert adbc_query(conn, "SELECT count(*) AS n FROM shop.orders").column("n")[0].as_py() == 4
    finally:
        conn.close()
    # A product whose checks pass carries no warning.
    checked(server, "shop.items")
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query("SELECT * FROM shop.items")))
    assert warnings_of(info) == []
    client.do_get(info.endpoints[0].ticket).read_all()
    assert "x-meshgate-warning" not in calls.trailers()
    client.close()


def test_a_degraded_product_in_block_mode_is_refused_naming_the_check(start_server, shop):
    server = start_server(write_mesh(shop, on_failure="block"), name="quality-block")
    checked(server, "shop.orders")
    client = flight_client(server.uri)
    with pytest.raises(Exception) as refused:
        client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(
            "SELECT o.id FROM shop.items i JOIN shop.orders o ON i.id = o.id")))
    assert failed_precondition(refused.value), refused.value
    assert server_message(refused.value) == (
        "product shop.orders is degraded and blocked by its contract: "
        "check amount_present (amount is not null) failed: 1 row violates it"
    )
    checked(server, "shop.items")
    assert flight_client(server.uri).get_flight_info(
        flight.FlightDescriptor.for_command(cmd_statement_query("SELECT * FROM shop.items"))).endpoints
    client.close()


def test_freshness_breached_by_an_old_newest_event(start_server, shop):
    server = start_server(write_mesh(shop), name="quality-fresh")
    line = checked(server, "shop.events")
    assert "stale" in line, line
    client = flight_client(server.uri)
    with pytest.raises(Exception) as refused:
        client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query("SELECT * FROM shop.events")))
    assert failed_precondition(refused.value), refused.value
    message = server_message(refused.value)
    assert message.startswith(
        "product shop.events is degraded and blocked by its contract: "
        "check freshness (newest seen at most 36h old) failed: the newest data is "
    ), message
    # shop.orders' newest day is today: fresh (its own failing check aside).
    orders = checked(server, "shop.orders")
    assert 'freshness="fresh"' in orders or "freshness=fresh" in orders, orders


def test_a_broken_contract_at_reload_keeps_the_previous_snapshot(start_server, shop):
    mesh = write_mesh(shop, on_failure="block")
    server = start_server(mesh, name="quality-reload")
    checked(server, "shop.orders")
    client = flight_client(server.uri)
    query = flight.FlightDescriptor.for_command(cmd_statement_query("SELECT * FROM shop.orders"))
    with pytest.raises(Exception):
        client.get_flight_info(query)

    broken = {
        "unknown column": [{"type": "not_null", "column": "no_such_column"}],
        "bad regex": [{"type": "regex", "column": "amount", "pattern": "(unclosed"}],
        "another product": [{"type": "sql", "query": "SELECT count(*) = 0 FROM shop.items"}],
        "not parsing": [{"type": "sql", "expression": "amount >"}],
    }
    for what, checks in broken.items():
        write_mesh(shop, on_failure="block", orders_checks=checks)
        mark = len(server.stderr_text())
        server.proc.send_signal(signal.SIGHUP)
        refused = wait_for_log(server, "reload refused", after=mark)
        assert refused, what
        log = server.stderr_text()[mark:]
        assert "domains.shop.products.orders.quality.[0]" in log, (what, log[-2000:])
        # The previous snapshot still serves, with its contract: still blocked.
        with pytest.raises(Exception) as still:
            client.get_flight_info(query)
        assert failed_precondition(still.value), (what, still.value)

    # A contract the data meets: reloaded, checked again, served without a warning.
    write_mesh(shop, on_failure="block", orders_checks=[{"type": "row_count", "min": 1, "max": 10}])
    mark = len(server.stderr_text())
    server.proc.send_signal(signal.SIGHUP)
    wait_for_log(server, "reloaded", after=mark)
    checked(server, "shop.orders", after=mark)
    info = client.get_flight_info(query)
    assert warnings_of(info) == []
    assert client.do_get(info.endpoints[0].ticket).read_all().num_rows == 4
    client.close()


def test_meshgate_check_prints_every_result(meshgate_bin, shop):
    res = run_meshgate(meshgate_bin, "check", "--config", str(write_mesh(shop)))
    out = res.stdout
    assert res.returncode == 1, out + res.stderr
    assert "checking data contracts" in out
    lines = out.splitlines()

    def line(*needles):
        found = [l for l in lines if all(n in l for n in needles)]
        assert found, f"no line with {needles}:\n{out}"
        return found[0]

    assert "1 row violates it" in line("FAIL", "amount_present [error]", "amount is not null")
    assert "measured 4" in line("pass", "row_count [error]")
    line("pass", "unique_id [error]")
    line("pass", "regex_sku [error]", "sku matches '^[A-Z]-[0-9]$'")
    line("pass", "sql [error]")
    assert "the newest data is" in line("FAIL", "freshness [error]", "newest seen at most 36h old")
    assert line("checks:").startswith("8 checks: 6 passed, 2 failed (2 error, 0 warn)")

    # Failing warn-level checks only: reported, and check succeeds.
    warn_only = write_mesh(shop, orders_checks=[dict(ORDERS_CHECKS[0], severity="warn")], events_severity="warn")
    res = run_meshgate(meshgate_bin, "check", "--config", str(warn_only))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "warn  amount_present [warn]" in res.stdout
    assert "warn  freshness [warn]" in res.stdout


def test_meshgate_check_reports_broken_contracts_by_path(meshgate_bin, shop):
    checks = [
        {"type": "not_null", "column": "no_such_column", "name": "a"},
        {"type": "regex", "column": "amount", "pattern": "(unclosed", "name": "b"},
        {"type": "sql", "query": "SELECT count(*) = 0 FROM shop.items", "name": "c"},
        {"type": "sql", "expression": "amount >", "name": "d"},
        {"type": "sql", "query": "SELECT count(*) FROM orders", "name": "e"},
    ]
    res = run_meshgate(meshgate_bin, "check", "--config", str(write_mesh(shop, orders_checks=checks)))
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    path = "domains.shop.products.orders.quality"
    assert f"{path}.b.pattern: invalid regular expression" in out, out
    assert f"{path}.c.query: reads shop.items" in out, out
    assert f"{path}.d.expression: does not parse" in out, out
    # Unknown columns and value-less queries are found by planning the checks against
    # the files' schema (no schema is declared here), once the rest is valid.
    res = run_meshgate(meshgate_bin, "check", "--config", str(write_mesh(shop, orders_checks=[checks[0], checks[4]])))
    out = res.stdout + res.stderr
    assert res.returncode != 0, out
    assert f"{path}.a:" in out and "no_such_column" in out, out
    assert f"{path}.e: returns a number" in out, out


def test_an_odcs_contract_file_supplies_checks(meshgate_bin, shop):
    (shop / "orders.odcs.yaml").write_text(
        "apiVersion: v3.1.0\nkind: DataContract\nid: orders\nversion: 1.0.0\nstatus: active\n"
        "schema:\n  - name: orders\n    properties:\n"
        "      - { name: id, logicalType: integer, physicalType: int64, required: true, primaryKey: true,\n"
        "          quality: [{ type: library, metric: duplicateValues, mustBe: 0 }] }\n"
        "      - { name: amount, logicalType: number,\n"
        "          quality: [{ metric: nullValues, mustBeLessThan: 2, name: few_missing_amounts }] }\n"
        "      - { name: day, logicalType: date }\n"
        "slaProperties:\n  - { property: latency, value: 3, unit: d, element: orders.day }\n"
    )
    doc = {
        "catalog": "mesh",
        "domains": {"shop": {"owner": "shop@example.com",
                             "products": [product(shop, "orders", contract="orders.odcs.yaml")]}},
    }
    res = run_meshgate(meshgate_bin, "check", "--config", str(write_yaml(shop / "odcs.yaml", with_open_governance(doc))))
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert "shop.orders (parquet, 3 columns, 4 rows)" in out, out
    assert "pass  unique_id [error]" in out, out
    assert "pass  few_missing_amounts [error]: amount is not null (violating rows < 2)" in out, out
    assert "pass  freshness [error]: newest day at most 3d old" in out, out


def test_the_demo_mesh_shows_a_failing_warn_check(meshgate_bin):
    res = run_meshgate(meshgate_bin, "check", "--config", str(DEMO_CONFIG))
    out = res.stdout
    assert res.returncode == 0, out + res.stderr
    assert "warn  acctbal_not_negative [warn]: c_acctbal >= 0: 147 rows violate it" in out, out
    assert "pass  one_row_per_customer [error]" in out
    assert "warn  freshness [warn]: newest o_orderdate at most 36h old" in out
    assert "pass  one_row_per_line [error]" in out
