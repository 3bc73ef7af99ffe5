"""Accelerated products (issue 15): a product held in memory answers exactly as its
files do, for every principal and policy; files added are served after a refresh and
never mixed with the old copy within one query; a refresh that fails keeps the previous
copy and says so (catalog and query warnings); the memory budget and `max_bytes` refuse
an oversized product with a clear message, and it is then served from its files; where
the mesh has a spill directory, a copy that does not fit in memory is served from
private local files instead, and they go with the copy.

Every server here is a real `meshgate serve` on loopback, queried with pyarrow.flight.
Nothing waits a fixed time: each step polls for what it expects, with a deadline.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from datetime import date
from decimal import Decimal

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

import govmodel
from mgtest import (
    ClientPool,
    ServerStartError,
    cmd_statement_query,
    demo_mesh_doc,
    flight_sql_query,
    with_open_governance,
    write_yaml,
)

DEADLINE = 60.0
ROWS_PER_FILE = 500


def poll(attempt, what: str, timeout: float = DEADLINE):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return attempt()
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {timeout:.0f}s") from None
            time.sleep(0.1)


def order_file(path, first: int, rows: int = ROWS_PER_FILE) -> None:
    """Orders `first`..`first + rows - 1`: ints, strings with NULLs, decimals, dates."""
    keys = list(range(first, first + rows))
    pq.write_table(
        pa.table({
            "id": pa.array(keys, pa.int64()),
            "customer": pa.array([None if k % 7 == 0 else f"customer-{k % 13}" for k in keys], pa.string()),
            "amount": pa.array([Decimal(k % 1000) / 10 for k in keys], pa.decimal128(12, 2)),
            "day": pa.array([date(2026, 1 + k % 12, 1 + k % 28) for k in keys], pa.date32()),
            "status": pa.array(["open" if k % 3 else "shipped" for k in keys], pa.string()),
        }),
        path,
        row_group_size=128,
    )


def shop_mesh(root, products: dict[str, dict | None], *, acceleration: dict | None = None) -> str:
    """A mesh with one domain `shop`; `products` maps a product name to its folder
    (under root/data) and acceleration section (None: not accelerated)."""
    specs = []
    for name, spec in products.items():
        product = {"name": name, "location": str(root / "data" / spec["dir"]) + "/", "format": "parquet"}
        if spec.get("acceleration") is not None:
            product["acceleration"] = spec["acceleration"]
        specs.append(product)
    doc = {"catalog": "mesh", "domains": {"shop": {"owner": "shop-team@example.com", "products": specs}}}
    if acceleration is not None:
        doc["acceleration"] = acceleration
    return str(write_yaml(root / "mesh.yaml", with_open_governance(doc)))


def rows(client, sql: str) -> list[tuple]:
    table = flight_sql_query(client, sql)
    # NULLs sort first, whatever the column's type.
    return sorted((tuple(row.values()) for row in table.to_pylist()),
                  key=lambda row: tuple((value is not None, value) for value in row))


def product_row(client, name: str) -> dict:
    table = flight_sql_query(
        client,
        "SELECT acceleration, acceleration_refresh, accelerated_at, accelerated_rows, accelerated_bytes, "
        f"accelerated_disk_bytes, acceleration_problem FROM mesh_catalog.products WHERE domain = 'shop' AND name = '{name}'",
    )
    (row,) = table.to_pylist()
    return row


def warnings_of(client, sql: str) -> list[str]:
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)))
    return json.loads(info.app_metadata)["warnings"] if info.app_metadata else []


def wait_for_log(server, *needles: str, after: int = 0) -> str:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        for line in server.stderr_text()[after:].splitlines():
            if all(needle in line for needle in needles):
                return line
        time.sleep(0.05)
    raise AssertionError(f"no log line with {needles}:\n{server.stderr_text()[after:][-4000:]}")


@pytest.fixture
def serve(start_server):
    """start_server, with every server this test started stopped when it ends."""
    started = []

    def _serve(config, **kwargs):
        server = start_server(config, **kwargs)
        started.append(server)
        return server

    yield _serve
    for server in started:
        server.stop(check=True)


@pytest.fixture
def shop(tmp_path):
    for folder in ("orders", "live"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for i in range(3):
            order_file(tmp_path / "data" / folder / f"part-{i}.parquet", first=i * ROWS_PER_FILE)
    return tmp_path


QUERIES = [
    "SELECT * FROM {t}",
    "SELECT id, customer FROM {t} WHERE customer IS NULL",
    "SELECT status, count(*), sum(amount), min(day), max(day) FROM {t} GROUP BY status",
    "SELECT customer, avg(amount) FROM {t} WHERE amount > 50 GROUP BY customer",
    "SELECT a.id, b.id FROM {t} a JOIN {t} b ON a.id = b.id + 1 WHERE a.id < 40",
    "SELECT count(*) FROM {t} WHERE day BETWEEN DATE '2026-03-01' AND DATE '2026-06-30'",
    "SELECT id FROM {t} WHERE id IN (1, 499, 500, 1499, 7000)",
    "SELECT count(DISTINCT customer) FROM {t}",
]


def test_an_accelerated_product_answers_as_its_files(serve, shop):
    mesh = shop_mesh(shop, {
        "orders": {"dir": "orders", "acceleration": {"engine": "memory", "refresh": "manual"}},
        "orders_files": {"dir": "orders"},
    })
    server = serve(mesh, name="accel-same", args=["--target-partitions", "4"])
    client = flight.FlightClient(server.uri)
    status = product_row(client, "orders")
    assert status["acceleration"] == "ready", status
    assert status["acceleration_refresh"] == "manual"
    assert status["accelerated_rows"] == 3 * ROWS_PER_FILE
    assert status["accelerated_bytes"] > 0 and status["accelerated_at"] is not None
    assert status["acceleration_problem"] is None
    assert product_row(client, "orders_files")["acceleration"] is None
    for query in QUERIES:
        accelerated = rows(client, query.format(t="shop.orders"))
        files = rows(client, query.format(t="shop.orders_files"))
        assert accelerated == files, query
        assert accelerated, query
    # The memory copy really serves: a file added under a manual product is not seen
    # until a reload, while the same folder read as files shows it at once.
    order_file(shop / "data" / "orders" / "part-9.parquet", first=9000, rows=10)
    poll(lambda: _assert_count(client, "shop.orders_files", 3 * ROWS_PER_FILE + 10), "files product sees the new file")
    assert rows(client, "SELECT count(*) FROM shop.orders") == [(3 * ROWS_PER_FILE,)]
    mark = len(server.stderr_text())
    server.proc.send_signal(signal.SIGHUP)
    wait_for_log(server, "reloaded", after=mark)
    poll(lambda: _assert_count(client, "shop.orders", 3 * ROWS_PER_FILE + 10), "a reload refreshes a manual product")


def _assert_count(client, table: str, expected: int) -> None:
    assert rows(client, f"SELECT count(*) FROM {table}") == [(expected,)]


def test_a_file_added_is_served_after_refresh_and_never_mixed_within_a_query(serve, shop):
    mesh = shop_mesh(shop, {"live": {"dir": "live", "acceleration": {"refresh": "on_change"}}})
    server = serve(mesh, name="accel-live", args=["--listing-ttl-secs", "1"])
    client = flight.FlightClient(server.uri)
    before = 3 * ROWS_PER_FILE
    assert rows(client, "SELECT count(*) FROM shop.live") == [(before,)]
    seen: list[tuple] = []
    stop = threading.Event()
    errors: list[BaseException] = []

    def reader():
        reader_client = flight.FlightClient(server.uri)
        sql = ("SELECT (SELECT count(*) FROM shop.live) AS a, (SELECT count(*) FROM shop.live WHERE id >= 0) AS b, "
               "(SELECT max(id) FROM shop.live) AS m")
        try:
            while not stop.is_set():
                seen.extend(rows(reader_client, sql))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        order_file(shop / "data" / "live" / "part-3.parquet", first=3 * ROWS_PER_FILE, rows=250)
        poll(lambda: _assert_count(client, "shop.live", before + 250), "the new file is served")
        # Keep reading a little after the swap.
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not errors:
            time.sleep(0.05)
    finally:
        stop.set()
        thread.join(timeout=DEADLINE)
    assert not errors, errors
    assert seen
    old, new = (before, before, before - 1), (before + 250, before + 250, before + 249)
    assert set(seen) <= {old, new}, f"a query mixed two copies: {sorted(set(seen) - {old, new})}"
    status = product_row(client, "live")
    assert status["acceleration"] == "ready" and status["accelerated_rows"] == before + 250, status


def test_a_failed_refresh_keeps_the_previous_copy_and_says_so(serve, shop):
    mesh = shop_mesh(shop, {"live": {"dir": "live", "acceleration": {"refresh": "on_change"}}})
    server = serve(mesh, name="accel-fail", args=["--listing-ttl-secs", "1"])
    client = flight.FlightClient(server.uri)
    before = 3 * ROWS_PER_FILE
    assert warnings_of(client, "SELECT count(*) FROM shop.live") == []
    mark = len(server.stderr_text())
    broken = shop / "data" / "live" / "part-3.parquet"
    broken.write_bytes(b"PAR1 this is not a parquet file PAR1")
    wait_for_log(server, "shop.live could not be accelerated", "previous copy keeps serving", after=mark)
    # The previous copy answers, and the answer says it may be behind.
    assert rows(client, "SELECT count(*) FROM shop.live") == [(before,)]
    (warning,) = warnings_of(client, "SELECT count(*) FROM shop.live")
    assert warning.startswith("shop.live is answered from its accelerated copy of "), warning
    assert "refreshing it failed at" in warning, warning
    status = product_row(client, "live")
    assert status["acceleration"] == "stale", status
    assert "shop.live could not be accelerated" in status["acceleration_problem"], status
    assert status["accelerated_rows"] == before
    # The file fixed: the next refresh succeeds and the warning goes.
    order_file(broken, first=3 * ROWS_PER_FILE, rows=20)
    poll(lambda: _assert_count(client, "shop.live", before + 20), "the fixed file is served")
    assert warnings_of(client, "SELECT count(*) FROM shop.live") == []
    assert product_row(client, "live")["acceleration"] == "ready"


def test_the_budget_and_max_bytes_refuse_an_oversized_product(serve, shop):
    mesh = shop_mesh(
        shop,
        {
            "orders": {"dir": "orders", "acceleration": {}},
            "live": {"dir": "live", "acceleration": {"max_bytes": "100B"}},
        },
        acceleration={"budget": "2KiB"},
    )
    server = serve(mesh, name="accel-budget")
    client = flight.FlightClient(server.uri)
    budget = wait_for_log(server, "shop.orders is not accelerated")
    assert "more than the 2.0 KiB left of the acceleration budget (acceleration.budget: 2.0 KiB" in budget, budget
    limit = wait_for_log(server, "shop.live is not accelerated")
    assert "its data takes more than its max_bytes of 100 B" in limit, limit
    for name in ("orders", "live"):
        status = product_row(client, name)
        assert status["acceleration"] == "refused", status
        assert status["accelerated_rows"] is None and status["accelerated_at"] is None
        assert f"shop.{name} is not accelerated" in status["acceleration_problem"]
        # Served from its files: every row, no warning.
        assert rows(client, f"SELECT count(*) FROM shop.{name}") == [(3 * ROWS_PER_FILE,)]
        assert warnings_of(client, f"SELECT count(*) FROM shop.{name}") == []


def spill_files(server, spill_dir) -> dict[str, str]:
    """The spill files the server holds open, (deleted) ones in the spill directory:
    their names (each file's own) to the /proc path that opens them."""
    found = {}
    for fd in os.listdir(f"/proc/{server.pid}/fd"):
        try:
            target = os.readlink(f"/proc/{server.pid}/fd/{fd}")
        except OSError:
            continue  # closed meanwhile
        if target.startswith(str(spill_dir) + "/") and target.endswith(" (deleted)"):
            found[target] = f"/proc/{server.pid}/fd/{fd}"
    return found


def test_a_copy_too_large_for_memory_is_served_from_private_local_files(serve, shop):
    spill_dir = shop / "spill"
    mesh = shop_mesh(
        shop,
        {
            "orders": {"dir": "orders", "acceleration": {"refresh": "every 1s"}},
            "live": {"dir": "live", "acceleration": {"spill": False}},
        },
        acceleration={"budget": "2KiB", "spill": {"directory": str(spill_dir)}},
    )
    server = serve(mesh, name="accel-spill")
    client = flight.FlightClient(server.uri)
    line = wait_for_log(server, "shop.orders", "served from local files")
    assert "does not fit in memory" in line, line
    status = poll(lambda: _ready(product_row(client, "orders")), "orders spilled")
    assert status["accelerated_rows"] == 3 * ROWS_PER_FILE and status["accelerated_bytes"] == 0, status
    assert status["accelerated_disk_bytes"] > 0, status
    # The product that may not spill is refused, as before.
    assert product_row(client, "live")["acceleration"] == "refused"

    # Same answers as the files (the product not accelerated is read from the same files).
    for sql in QUERIES:
        assert rows(client, sql.format(t="shop.orders")) == rows(client, sql.format(t="shop.live")), sql

    # The rows are on disk under no name: nothing in the spill directory to open; the
    # server holds the files open (one per partition), each created 0600.
    if not os.path.isdir(f"/proc/{server.pid}/fd"):
        pytest.skip("no /proc to see the server's open files")
    assert list(spill_dir.iterdir()) == []
    held = spill_files(server, spill_dir)
    assert held and all(stat.S_IMODE(os.stat(fd).st_mode) == 0o600 for fd in held.values()), held
    blocks = sum(os.stat(fd).st_size for fd in held.values())
    assert blocks >= status["accelerated_disk_bytes"] > 0

    # A file added: a new spilled copy serves it, and the old copy's files are closed.
    order_file(shop / "data" / "orders" / "part-9.parquet", first=9 * ROWS_PER_FILE)
    poll(lambda: _assert_count(client, "shop.orders", 4 * ROWS_PER_FILE), "the new file served")
    poll(lambda: _assert_spill_files(server, spill_dir, held), "the old copy's files closed")
    assert product_row(client, "orders")["accelerated_rows"] == 4 * ROWS_PER_FILE
    assert list(spill_dir.iterdir()) == []


def _ready(status: dict) -> dict:
    assert status["acceleration"] == "ready", status
    return status


def _assert_spill_files(server, spill_dir, old: dict) -> None:
    now = spill_files(server, spill_dir)
    # As many as before (one per partition), none of them the old ones.
    assert len(now) == len(old) and not set(now) & set(old), (now, old)


def test_the_spill_budget_refuses_a_copy_and_leaves_no_file(serve, shop):
    spill_dir = shop / "spill"
    mesh = shop_mesh(
        shop,
        {"orders": {"dir": "orders", "acceleration": {}}},
        acceleration={"budget": "2KiB", "spill": {"directory": str(spill_dir), "budget": "4KiB"}},
    )
    server = serve(mesh, name="accel-spill-budget")
    client = flight.FlightClient(server.uri)
    line = wait_for_log(server, "shop.orders is not accelerated")
    assert "does not fit in memory and takes more than the 4.0 KiB left of the spill budget " \
           "(acceleration.spill.budget: 4.0 KiB" in line, line
    assert product_row(client, "orders")["acceleration"] == "refused"
    assert rows(client, "SELECT count(*) FROM shop.orders") == [(3 * ROWS_PER_FILE,)]
    # Refused before writing (what memory held would not fit): no directory, no file.
    assert not spill_dir.exists() or list(spill_dir.iterdir()) == []
    if os.path.isdir(f"/proc/{server.pid}/fd"):
        poll(lambda: _assert_spill_files(server, spill_dir, {}), "the refused copy's files closed")


def test_a_spill_directory_among_product_data_is_refused(start_server, shop):
    mesh = shop_mesh(shop, {"orders": {"dir": "orders", "acceleration": {}}},
                     acceleration={"spill": {"directory": str(shop / "data")}})
    with pytest.raises(ServerStartError) as failed:
        start_server(mesh, name="accel-bad-spill")
    assert "acceleration.spill.directory" in failed.value.stderr, failed.value.stderr
    assert "overlaps the location of shop.orders" in failed.value.stderr, failed.value.stderr


@pytest.mark.parametrize(
    "section, path, message",
    [
        ({"engine": "duckdb"}, "domains.shop.products.orders.acceleration.engine", "unknown engine 'duckdb'"),
        ({"refresh": "hourly"}, "domains.shop.products.orders.acceleration.refresh", "'hourly' is not a refresh"),
        ({"refresh": "every 0m"}, "domains.shop.products.orders.acceleration.refresh", "must be longer than zero"),
        ({"max_bytes": "lots"}, "domains.shop.products.orders.acceleration.max_bytes", "is not a size"),
        ({"spill": True}, "domains.shop.products.orders.acceleration.spill", "no acceleration.spill directory"),
    ],
)
def test_a_bad_acceleration_section_is_refused_with_its_path(start_server, shop, section, path, message):
    mesh = shop_mesh(shop, {"orders": {"dir": "orders", "acceleration": section}})
    with pytest.raises(ServerStartError) as failed:
        start_server(mesh, name="accel-bad")
    assert path in failed.value.stderr and message in failed.value.stderr, failed.value.stderr


def test_a_bad_budget_is_refused_with_its_path(start_server, shop):
    mesh = shop_mesh(shop, {"orders": {"dir": "orders"}}, acceleration={"budget": "0B"})
    with pytest.raises(ServerStartError) as failed:
        start_server(mesh, name="accel-bad-budget")
    assert "acceleration.budget: must be more than zero" in failed.value.stderr, failed.value.stderr


# -- governance: every principal sees exactly the same, accelerated or not -------------

GOVERNED = [
    ("ana", "SELECT * FROM customers.customer"),
    ("ana", "SELECT c_mktsegment, count(*), sum(c_acctbal) FROM customers.customer GROUP BY c_mktsegment"),
    ("ana", "SELECT n_name, count(*) FROM customers.customer JOIN customers.nation ON c_nationkey = n_nationkey "
            "GROUP BY n_name"),
    ("carl", "SELECT * FROM sales.orders"),
    ("carl", "SELECT o_year, count(*), sum(o_totalprice) FROM sales.orders GROUP BY o_year"),
    ("carl", "SELECT count(*) FROM sales.orders o JOIN sales.lineitem l ON l_orderkey = o_orderkey"),
    ("sam", "SELECT c_name, c_email, c_acctbal FROM customers.customer WHERE c_custkey < 50"),
    ("sam", "SELECT o_orderpriority, count(*) FROM sales.orders GROUP BY o_orderpriority"),
    ("stella", "SELECT count(*), sum(l_extendedprice) FROM sales.lineitem"),
]


@pytest.fixture(scope="module")
def demo_pair(start_server, tmp_path_factory):
    """The demo mesh three times, with the same mask keys: as it is, with every product
    accelerated in memory, and with every product accelerated and spilled to local
    files (a memory budget of one byte)."""
    root = tmp_path_factory.mktemp("accel-demo")
    plain = write_yaml(root / "plain.yaml", demo_mesh_doc())
    doc = demo_mesh_doc()
    doc["acceleration"] = {"default": {"engine": "memory", "refresh": "manual"}}
    accelerated = write_yaml(root / "accelerated.yaml", doc)
    doc["acceleration"] = {"budget": "1B", "spill": {"directory": str(root / "spill")},
                           "default": {"engine": "memory", "refresh": "manual"}}
    spilled = write_yaml(root / "spilled.yaml", doc)
    servers = [start_server(plain, env=govmodel.MASK_ENV, name="demo-plain"),
               start_server(accelerated, env=govmodel.MASK_ENV, name="demo-accelerated"),
               start_server(spilled, env=govmodel.MASK_ENV, name="demo-spilled")]
    pools = [ClientPool(server.uri) for server in servers]
    yield pools
    for pool in pools:
        pool.close()
    for server in servers:
        server.stop(check=True)


def test_every_demo_product_is_accelerated(demo_pair):
    _, accelerated, spilled = demo_pair
    sql = "SELECT domain, name, acceleration, accelerated_disk_bytes FROM mesh_catalog.products " \
          "WHERE status <> 'retired'"
    for pool, on_disk in ((accelerated, False), (spilled, True)):
        table = flight_sql_query(pool.client("stella"), sql)
        states = {(row["domain"], row["name"]): (row["acceleration"], row["accelerated_disk_bytes"] > 0)
                  for row in table.to_pylist()}
        assert states and all(state == ("ready", on_disk) for state in states.values()), states


def outcome(pool, user, sql):
    """The rows, or the error's kind and message."""
    try:
        return ("ok", rows(pool.client(user), sql))
    except pa.ArrowException as error:  # pyarrow.flight raises its codes as these
        return (type(error).__name__, str(error).split(". Detail:")[0])


@pytest.mark.parametrize("user, sql", GOVERNED, ids=[f"{u}-{i}" for i, (u, _) in enumerate(GOVERNED)])
def test_governance_is_the_same_accelerated(demo_pair, user, sql):
    plain, accelerated, spilled = demo_pair
    expected = outcome(plain, user, sql)
    assert outcome(accelerated, user, sql) == expected
    assert outcome(spilled, user, sql) == expected


def test_what_each_principal_may_read_is_the_same_accelerated(demo_pair):
    """Forbidden products stay absent and row filters keep their rows, table by table."""
    plain, *accelerated_ones = demo_pair
    listing = "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema <> 'mesh_catalog'"

    for user in ("ana", "carl", "sam"):
        tables = outcome(plain, user, listing)
        for accelerated in accelerated_ones:
            assert tables == outcome(accelerated, user, listing), user
            for schema, table in tables[1]:
                if schema == "information_schema":
                    continue
                sql = f'SELECT count(*) FROM {schema}."{table}"'
                assert outcome(plain, user, sql) == outcome(accelerated, user, sql), (user, sql)
            for forbidden in ("sales.no_such_product", "customers.customer_secret"):
                sql = f"SELECT count(*) FROM {forbidden}"
                assert outcome(plain, user, sql) == outcome(accelerated, user, sql), (user, sql)
