"""A statement that reads only accelerated products runs again on its kept physical
plan (docs/acceleration.md, "Repeated statements"). What must not change:

- a refresh is followed: after new files are served, the same statement answers from
  the new copy, and no run mixes the two copies;
- governance: each principal (here: each declared purpose, or none) gets their own
  rows and masks on every run, also when runs of the same SQL interleave;
- functions that are not immutable are evaluated at every run (`now()`);
- a prepared statement answers for the parameters bound to each execution.

Every server is a real `meshgate serve`, queried with pyarrow.flight and ADBC.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from mgtest import adbc_connect, cmd_statement_query, flight_sql_query, write_yaml

FILE_ROWS = 400
DEADLINE = 60.0


def write_part(folder, part: int, rows: int = FILE_ROWS) -> None:
    ids = list(range(part * FILE_ROWS, part * FILE_ROWS + rows))
    pq.write_table(
        pa.table({
            "id": pa.array(ids, pa.int64()),
            "region": pa.array(["eu" if i % 2 else "us" for i in ids]),
            "email": pa.array([f"user-{i}@example.com" for i in ids]),
        }),
        folder / f"part-{part}.parquet",
    )


def config(root) -> str:
    training = "principal.purpose = 'ml_training'"
    doc = {
        "catalog": "mesh",
        "auth": {"anonymous": {"name": "ana", "groups": ["analysts"]}},
        "governance": {"policies": [{
            "grants": [{"id": "everyone", "effect": "permit"}],
            "row_filters": [
                {"id": "all-rows", "mode": "permissive", "filter": "true"},
                {"id": "training-eu-only", "mode": "restrictive", "when": training, "filter": "region = 'eu'"},
            ],
            "columns": [
                {"id": "all-columns", "select": "*", "action": "allow"},
                {"id": "no-email-for-training", "select": ["email"], "when": training,
                 "action": {"mask": "redact", "value": "-"}},
            ],
        }]},
        "domains": {"shop": {"owner": "shop-team@example.com", "products": [{
            "name": "users", "location": str(root / "users") + "/", "format": "parquet",
            "acceleration": {"engine": "memory", "refresh": "on_change"},
        }]}},
    }
    return str(write_yaml(root / "mesh.yaml", doc))


@pytest.fixture
def shop(tmp_path, start_server):
    (tmp_path / "users").mkdir()
    for part in range(2):
        write_part(tmp_path / "users", part)
    server = start_server(config(tmp_path), name="plan-reuse", args=["--listing-ttl-secs", "1"])
    yield tmp_path, server
    server.stop(check=True)


def run(client, sql: str, purpose: str | None = None) -> list[dict]:
    headers = [(b"x-meshgate-purpose", purpose.encode())] if purpose else []
    call = flight.FlightCallOptions(headers=headers)
    info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(sql)), call)
    return pa.concat_tables([client.do_get(e.ticket, call).read_all() for e in info.endpoints]).to_pylist()


# Projection, filter and limit over one accelerated product: planned once, run again.
RECENT = "SELECT id, region, email FROM shop.users WHERE id >= {first}"
POINT = "SELECT id, region, email FROM shop.users WHERE id = {id}"


def expected(ids, purpose: str | None) -> list[dict]:
    """Without a declared purpose the training rules apply: a restrictive rule whose
    condition cannot be decided applies."""
    training = purpose != "analytics"
    out = []
    for i in ids:
        region = "eu" if i % 2 else "us"
        if training and region != "eu":
            continue
        out.append({"id": i, "region": region, "email": "-" if training else f"user-{i}@example.com"})
    return out


def test_a_repeated_statement_follows_a_refresh_and_never_mixes_copies(shop):
    root, server = shop
    client = flight.FlightClient(server.uri)
    point = POINT.format(id=2 * FILE_ROWS + 3)  # in the file added below
    tail = "SELECT id FROM shop.users WHERE id >= 790 LIMIT 50"
    for _ in range(5):
        assert run(client, point, "analytics") == []
        assert sorted(r["id"] for r in run(client, tail, "analytics")) == list(range(790, 800))
    seen: list[tuple[int, ...]] = []
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader():
        own = flight.FlightClient(server.uri)
        try:
            while not stop.is_set():
                seen.append(tuple(sorted(r["id"] for r in run(own, tail, "analytics"))))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)
        finally:
            own.close()

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        write_part(root / "users", 2, rows=20)
        deadline = time.monotonic() + DEADLINE
        while run(client, point, "analytics") == [] and time.monotonic() < deadline:
            time.sleep(0.1)
        assert run(client, point, "analytics") == expected([2 * FILE_ROWS + 3], "analytics")
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join(timeout=DEADLINE)
    assert not errors, errors
    old, new = tuple(range(790, 800)), tuple(range(790, 800)) + tuple(range(800, 820))
    assert set(seen) <= {old, new}, f"a run mixed two copies: {sorted(set(seen) - {old, new})[:3]}"
    assert sorted(r["id"] for r in run(client, tail, "analytics")) == list(new)
    # Without a purpose, the same statement: odd ids only, from the new copy too.
    assert sorted(r["id"] for r in run(client, tail)) == [i for i in new if i % 2]
    client.close()


def test_each_principal_gets_their_own_rows_and_masks_on_every_run(shop):
    _, server = shop
    sql = RECENT.format(first=780)
    purposes = [None, "ml_training", "analytics"] * 8

    def one(purpose):
        client = flight.FlightClient(server.uri)
        try:
            return purpose, run(client, sql, purpose)
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(one, purposes))
    for purpose, got in results:
        assert sorted(got, key=lambda r: r["id"]) == expected(range(780, 800), purpose), purpose


def test_now_is_evaluated_at_every_run(shop):
    _, server = shop
    client = flight.FlightClient(server.uri)
    sql = "SELECT id, now() AS at FROM shop.users WHERE id = 5"
    first = run(client, sql)[0]["at"]
    time.sleep(0.05)
    second = run(client, sql)[0]["at"]
    assert second > first
    client.close()


def test_a_prepared_statement_answers_for_each_binding(shop):
    _, server = shop
    conn = adbc_connect(server.uri, db_kwargs={"adbc.flight.sql.rpc.call_header.x-meshgate-purpose": "analytics"})
    cur = conn.cursor()
    try:
        for i in (3, 4, 3, 401, 4):
            cur.execute("SELECT id, region FROM shop.users WHERE id = ?", parameters=(i,))
            assert cur.fetch_arrow_table().to_pylist() == [{"id": i, "region": "eu" if i % 2 else "us"}]
    finally:
        cur.close()
        conn.close()
    client = flight.FlightClient(server.uri)
    assert flight_sql_query(client, POINT.format(id=7)).to_pylist() == expected([7], None)
    assert flight_sql_query(client, POINT.format(id=8)).to_pylist() == expected([8], None) == []
    client.close()
