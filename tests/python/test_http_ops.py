"""The HTTP side's operations endpoints through the real binary (`--http-bind`):
/healthz, /readyz, /metrics (the Prometheus text format, parsed with prometheus_client),
--http-metrics-auth, and bad input (oversized bodies and request heads, malformed
requests, unknown paths) answered with a 4xx while the server keeps serving.

Counters are read before and after what a test does, and compared by difference.
Queries are recorded when their stream ends, just after the client read the last
message, so the tests wait for the counters to move, then check they moved by
exactly the right amounts.
"""

from __future__ import annotations

import json
import shutil
import signal
import socket
import threading
import urllib.error
import urllib.request
from urllib.parse import urlsplit

import pyarrow.flight as flight
import pytest
from prometheus_client.parser import text_string_to_metric_families

from mgtest import (
    DEMO_CONFIG,
    DEMO_PRODUCTS,
    TESTDATA,
    auth_options,
    basic_authorization,
    bearer_for,
    demo_password,
    flight_client,
    flight_grpc_code,
    flight_sql_query,
    wait_for,
    write_broken_mesh,
    write_yaml,
    with_open_governance,
)

HTTP_ARGS = ["--http-bind", "127.0.0.1:0"]
PROMETHEUS_TEXT = "text/plain; version=0.0.4"


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------


def http(server, path: str, *, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    """(status, headers, body) of one request to the server's HTTP side."""
    request = urllib.request.Request(server.http_uri + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def raw(server, request: bytes) -> bytes:
    """Sends `request` as is on a new connection; what comes back until the server closes."""
    address = urlsplit(server.http_uri)
    with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def scrape(server, headers: dict | None = None) -> dict:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    status, response_headers, body = http(server, "/metrics", headers=headers)
    assert status == 200, body
    assert response_headers["Content-Type"].startswith(PROMETHEUS_TEXT)
    samples = {}
    for family in text_string_to_metric_families(body.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(samples: dict, name: str, **labels) -> float:
    """One series' value (0 when it does not exist yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: dict, name: str, **labels) -> float:
    """The sum of every series of `name` whose labels include `labels`."""
    return sum(
        v for (n, series), v in samples.items() if n == name and labels.items() <= dict(series).items()
    )


def moved(before: dict, after: dict, name: str, **labels) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def readyz(server) -> tuple[int, dict]:
    status, _, body = http(server, "/readyz")
    return status, json.loads(body)


def degraded_by_name(body: dict) -> dict:
    return {entry["product"]: entry for entry in body["degraded"]}


@pytest.fixture(scope="module")
def demo(start_server):
    """The demo mesh with the HTTP side on (metrics open)."""
    server = start_server(DEMO_CONFIG, name="http-ops", args=HTTP_ARGS)
    yield server
    server.stop()


# --------------------------------------------------------------------------------------
# health and readiness
# --------------------------------------------------------------------------------------


def test_the_http_line_follows_the_ready_line(demo):
    lines = [line.strip() for line in demo._stdout_lines]
    assert lines[0] == f"meshgate listening on {demo.uri}"
    assert lines[1] == f"meshgate http on {demo.http_uri}"


def test_healthz_and_readyz_on_the_demo_mesh(demo):
    status, headers, body = http(demo, "/healthz")
    assert (status, json.loads(body)) == (200, {"status": "ok"})
    assert headers["Cache-Control"] == "no-store"

    status, body = readyz(demo)
    assert status == 200 and body["ready"] is True and body["snapshot_loaded"] is True
    assert body["catalog"] == "mesh"
    assert body["products"] == len(DEMO_PRODUCTS)
    assert body["servable_versions"] == body["product_versions"] >= len(DEMO_PRODUCTS)

    # The demo's contracts: customer fails a warn-level check, orders is stale since
    # 1998 (listed once their background checks have run).
    def both_listed():
        body = readyz(demo)[1]
        listed = degraded_by_name(body)
        ready = {"customers.customer", "sales.orders"} <= listed.keys()
        return ready and listed["sales.orders"]["freshness"] == "stale" and listed
    listed = wait_for(both_listed, "the demo's degraded products in /readyz")
    customer = listed["customers.customer"]
    assert customer["servable"] is True and customer["problem"] is None
    assert customer["quality"] == "warning"
    assert any("acctbal_not_negative" in check for check in customer["failing_checks"])
    orders = listed["sales.orders"]
    assert orders["servable"] is True and orders["freshness_age_seconds"] > 25 * 365 * 86400
    assert not ({f"{d}.{p}" for d, p in DEMO_PRODUCTS} - {"customers.customer", "sales.orders"}) & listed.keys()


def test_readyz_lists_products_that_cannot_serve(start_server, tmp_path):
    server = start_server(write_broken_mesh(tmp_path), name="http-broken", args=HTTP_ARGS)
    try:
        status, body = readyz(server)
        assert status == 200 and body["ready"] is True
        listed = degraded_by_name(body)
        corrupt = listed["broken.corrupt"]
        assert corrupt["servable"] is False and "broken.corrupt" in corrupt["problem"]
        assert "healthy.region" not in listed and "broken.nation" not in listed
        assert body["servable_versions"] == body["product_versions"] - len(
            [entry for entry in body["degraded"] if not entry["servable"]]
        )

        samples = scrape(server)
        assert total(samples, "meshgate_product_healthy", domain="broken", product="corrupt") == 0
        assert total(samples, "meshgate_product_healthy", domain="healthy", product="region") == 1
        unservable = {name.split(".")[1] for name, entry in listed.items() if not entry["servable"]}
        for product in unservable:
            assert total(samples, "meshgate_product_healthy", domain="broken", product=product) == 0
    finally:
        server.stop()


def test_readyz_is_503_when_nothing_can_be_served(start_server, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.parquet").write_bytes(b"not parquet\n" * 100)
    doc = {
        "catalog": "mesh",
        "domains": {"broken": {"owner": "qa@example.com", "products": [
            {"name": "corrupt", "location": f"{bad}/", "format": "parquet"},
        ]}},
    }
    server = start_server(write_yaml(tmp_path / "mesh.yaml", with_open_governance(doc)), name="http-none",
                          args=HTTP_ARGS)
    try:
        status, body = readyz(server)
        assert status == 503 and body["ready"] is False and body["servable_versions"] == 0
        assert degraded_by_name(body)["broken.corrupt"]["servable"] is False
        assert http(server, "/healthz")[0] == 200  # up, just not ready
    finally:
        server.stop()


# --------------------------------------------------------------------------------------
# metrics
# --------------------------------------------------------------------------------------


def test_query_metrics_move_by_what_the_queries_did(demo):
    client = flight_client(demo.uri, "stella")
    flight_sql_query(client, "SELECT 1 AS warm_up")  # the bearer and plans are in place
    wait_for(lambda: value(scrape(demo), "meshgate_active_streams") == 0, "no stream open")
    before = scrape(demo)

    results = [
        flight_sql_query(client, "SELECT o_orderkey FROM sales.orders WHERE o_orderkey < 100"),
        flight_sql_query(client, "SELECT count(*) AS n FROM sales.orders"),
        flight_sql_query(client, "SELECT n_name FROM customers.nation"),
    ]
    rows = sum(table.num_rows for table in results)
    with pytest.raises(Exception) as missing:
        flight_sql_query(client, "SELECT * FROM sales.no_such_product")
    assert flight_grpc_code(missing.value) == "NOT_FOUND"

    def ended():
        after = scrape(demo)
        done = moved(before, after, "meshgate_queries_total") >= 4
        return done and value(after, "meshgate_active_streams") == 0 and after
    after = wait_for(ended, "four queries recorded")

    assert moved(before, after, "meshgate_queries_total", outcome="ok", code="OK") == 3
    assert moved(before, after, "meshgate_queries_total", outcome="refused", code="NOT_FOUND") == 1
    assert moved(before, after, "meshgate_queries_total") == 4
    assert moved(before, after, "meshgate_query_duration_seconds_count") == 4
    assert moved(before, after, "meshgate_query_duration_seconds_sum") > 0
    assert value(after, "meshgate_query_duration_seconds_count") == total(after, "meshgate_queries_total")
    assert moved(before, after, "meshgate_rows_sent_total") == rows
    assert moved(before, after, "meshgate_bytes_sent_total") > 0
    assert moved(before, after, "meshgate_product_queries_total", domain="sales", product="orders") == 2
    assert moved(before, after, "meshgate_product_queries_total", domain="customers", product="nation") == 1
    assert moved(before, after, "meshgate_product_queries_total", domain="sales", product="no_such_product") == 0
    assert value(after, "meshgate_memory_pool_peak_bytes") >= value(after, "meshgate_memory_pool_reserved_bytes")
    assert value(after, "meshgate_spill_bytes") == 0


def test_auth_failures_are_counted_by_reason(demo):
    before = scrape(demo)
    token = bearer_for(demo.uri, "ana")
    forged = token[:-1] + ("A" if token[-1] != "A" else "B")
    for authorization, reason in [
        (None, "missing"),
        (basic_authorization("ana", "not her password"), "bad_basic"),
        (f"Bearer {forged}", "bad_token"),
        ("Bearer not-a-jwt", "bad_jwt"),
        ("Digest username=ana", "bad_header"),
    ]:
        with pytest.raises(Exception) as refused:
            flight_sql_query(flight.FlightClient(demo.uri), "SELECT 1", auth_options(authorization))
        assert flight_grpc_code(refused.value) == "UNAUTHENTICATED", reason
        after = scrape(demo)
        assert moved(before, after, "meshgate_auth_failures_total", reason=reason) == 1, reason
        assert moved(before, after, "meshgate_auth_failures_total") == 1, reason
        before = after
    # Credentials that work are not counted.
    flight_sql_query(flight.FlightClient(demo.uri), "SELECT 1", auth_options(f"Bearer {token}"))
    assert moved(before, scrape(demo), "meshgate_auth_failures_total") == 0


def test_reloads_and_refused_reloads_are_counted(start_server, tmp_path):
    root = tmp_path / "mesh"
    shutil.copytree(TESTDATA, root, ignore=shutil.ignore_patterns("generate*.py", "__pycache__"))
    server = start_server(root / "mesh.yaml", name="http-reload", args=HTTP_ARGS + ["--no-watch"])
    try:
        before = scrape(server)
        assert value(before, "meshgate_reloads_total") == 0
        assert value(before, "meshgate_reload_failures_total") == 0

        server.proc.send_signal(signal.SIGHUP)
        after = wait_for(lambda: (s := scrape(server)) and value(s, "meshgate_reloads_total") == 1 and s,
                         "a reload counted")
        assert value(after, "meshgate_reload_failures_total") == 0
        assert value(after, "meshgate_last_reload_timestamp_seconds") > 0

        descriptor = root / "domains/supply/products/part.yaml"
        descriptor.write_text(descriptor.read_text().replace("format: parquet", "format: [not, a, format]"))
        server.proc.send_signal(signal.SIGHUP)
        refused = wait_for(
            lambda: (s := scrape(server)) and value(s, "meshgate_reload_failures_total") == 1 and s,
            "a refused reload counted")
        assert value(refused, "meshgate_reloads_total") == 1
        status, body = readyz(server)
        assert (status, body["reloads"], body["reload_failures"]) == (200, 1, 1)
        # The previous configuration keeps serving.
        client = flight_client(server.uri, "stella")
        assert flight_sql_query(client, "SELECT count(*) AS n FROM supply.part").column("n")[0].as_py() > 0
    finally:
        server.stop()


def test_metrics_behind_credentials(start_server):
    server = start_server(DEMO_CONFIG, name="http-metrics-auth", args=HTTP_ARGS + ["--http-metrics-auth"])
    try:
        # Health and readiness stay open.
        assert http(server, "/healthz")[0] == 200
        assert readyz(server)[0] == 200

        status, headers, body = http(server, "/metrics")
        assert status == 401 and headers["WWW-Authenticate"].startswith("Basic")
        assert "credentials required" in json.loads(body)["error"]
        wrong = {"Authorization": basic_authorization("stella", "wrong")}
        status, _, body = http(server, "/metrics", headers=wrong)
        assert (status, json.loads(body)) == (401, {"error": "invalid credentials"})

        stella = {"Authorization": basic_authorization("stella", demo_password("stella"))}
        samples = scrape(server, stella)
        assert value(samples, "meshgate_auth_failures_total", reason="missing") == 1
        assert value(samples, "meshgate_auth_failures_total", reason="bad_basic") == 1
        # A bearer token from the Flight handshake works too.
        scrape(server, {"Authorization": f"Bearer {bearer_for(server.uri, 'ana')}"})

        # The web API refuses callers without credentials whatever the metrics setting.
        status, _, _ = http(server, "/api/catalog")
        assert status == 401
    finally:
        server.stop()


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------


def test_bad_requests_are_4xx_and_the_server_keeps_serving(demo):
    def status_of(answer: bytes) -> int:
        return int(answer.split(b" ", 2)[1])

    big_body = raw(demo, b"POST /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000\r\nConnection: close\r\n\r\n")
    assert status_of(big_body) == 413 and b"larger than" in big_body
    status, _, body = http(demo, "/api/login", method="POST", body=b"{" + b" " * 200_000 + b"}",
                           headers={"Content-Type": "application/json"})
    assert status == 413

    filler = b"X-Filler: " + b"y" * 100_000 + b"\r\n"
    assert status_of(raw(demo, b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + filler + b"Connection: close\r\n\r\n")) == 431
    many = b"".join(b"X-H%d: v\r\n" % n for n in range(200))
    assert status_of(raw(demo, b"GET /healthz HTTP/1.1\r\nHost: t\r\n" + many + b"Connection: close\r\n\r\n")) == 431
    assert status_of(raw(demo, b"NOT HTTP AT ALL\r\n\r\n")) == 400
    assert status_of(raw(demo, b"GET /healthz HTTP/1.1\r\nHost t\r\n\r\n")) == 400

    status, headers, body = http(demo, "/no/such/path")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"error": "no such path: /no/such/path"}
    assert http(demo, "/healthz", method="DELETE")[0] == 405
    status, _, _ = http(demo, "/api/me", headers={"Cookie": "meshgate_session=%%%; ===; \x7f"})
    assert 400 <= status < 500

    assert http(demo, "/healthz")[0] == 200
    client = flight_client(demo.uri, "stella")
    assert flight_sql_query(client, "SELECT count(*) AS n FROM customers.region").column("n")[0].as_py() == 5


def test_scraping_in_a_tight_loop_while_queries_run(demo):
    stop = threading.Event()
    scrapes: list[int] = []
    failures: list[BaseException] = []

    def scrape_until_stopped():
        try:
            while not stop.is_set():
                status, _, body = http(demo, "/metrics")
                scrapes.append(status)
                list(text_string_to_metric_families(body.decode()))
        except BaseException as error:  # reported below
            failures.append(error)

    client = flight_client(demo.uri, "stella")
    before = scrape(demo)
    scraper = threading.Thread(target=scrape_until_stopped, name="scraper")
    scraper.start()
    try:
        counts = [
            flight_sql_query(client, "SELECT count(*) AS n FROM sales.lineitem WHERE l_quantity > 10")
            .column("n")[0].as_py()
            for _ in range(30)
        ]
    finally:
        stop.set()
        scraper.join()
    assert not failures, failures
    assert scrapes and set(scrapes) == {200}
    assert len(set(counts)) == 1 and counts[0] > 0
    after = wait_for(
        lambda: (s := scrape(demo)) and moved(before, s, "meshgate_queries_total") >= 30 and s, "30 queries recorded")
    assert moved(before, after, "meshgate_queries_total", outcome="ok", code="OK") == 30
