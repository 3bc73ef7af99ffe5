"""pytest fixtures for meshgate's Python client tests.

Run from the repository root:

    MESHGATE_BIN=/path/to/meshgate python -m pytest -q tests/python

MESHGATE_BIN defaults to target/debug/meshgate (relative to the repo root).

The demo mesh has no anonymous access: the shared fixtures connect as the steward
`stella` (every row and column unmasked), so expectations computed from the raw files
hold. Servers on configs written by tests get `mgtest.OPEN_GOVERNANCE` (anonymous
callers see everything) and are used without credentials.
"""

from __future__ import annotations

import stat

import pytest

import attackkit
import distkit
import govmodel
import mgtest
from mgtest import (  # re-exported for tests that prefer fixtures' module
    DEMO_CONFIG,
    REPO_ROOT,
    Server,
    adbc_query,
    duckdb_expected,
    flight_sql_query,
)

__all__ = ["Server", "flight_sql_query", "duckdb_expected", "adbc_query"]

STEWARD = "stella"  # the demo user who sees every row and column unmasked


@pytest.fixture(scope="module")
def moto_endpoint():
    """An S3-compatible server on loopback for the module's tests: its endpoint URL."""
    with mgtest.s3_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def repo_root():
    return REPO_ROOT


@pytest.fixture(scope="session")
def meshgate_bin():
    path = mgtest.meshgate_bin_path()
    if not path.is_file() or not (path.stat().st_mode & stat.S_IXUSR):
        pytest.fail(
            f"meshgate binary not found or not executable at {path}; "
            "build it and/or set MESHGATE_BIN",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("meshgate-logs")


@pytest.fixture(scope="session")
def start_server(meshgate_bin, log_dir):
    """Factory: start_server(config, env=None, name=..., args=()) -> started Server
    (args: more `meshgate serve` flags).

    Servers still running at the end of the session are stopped (and must exit 0).
    Prefer stopping them yourself (server.stop()) in the fixture that started them.
    """
    started: list[Server] = []

    def _start(config, env=None, name="meshgate", args=()):
        srv = Server(meshgate_bin, config, log_dir=log_dir, env=env, name=name, args=args)
        srv.start()
        started.append(srv)
        return srv

    yield _start
    errors = []
    for srv in started:
        if srv.proc is not None and srv.proc.poll() is None:
            try:
                srv.stop(check=True)
            except AssertionError as e:  # pragma: no cover - reported below
                errors.append(str(e))
    assert not errors, "\n\n".join(errors)


@pytest.fixture(scope="session")
def demo_server(start_server):
    """The demo mesh (testdata/mesh.yaml), shared by the whole session."""
    srv = start_server(DEMO_CONFIG, name="demo")
    yield srv
    srv.stop(check=True)


@pytest.fixture
def adbc_conn(demo_server):
    conn = mgtest.adbc_connect(demo_server.uri, user=STEWARD)
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def flight_client(demo_server):
    client = mgtest.flight_client(demo_server.uri, user=STEWARD)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture(params=["adbc", "flight"])
def run_query(request, demo_server):
    """sql -> pyarrow.Table, once through ADBC (prepared statement) and once through
    pyarrow.flight with a hand-built CommandStatementQuery."""
    if request.param == "adbc":
        conn = mgtest.adbc_connect(demo_server.uri, user=STEWARD)
        request.addfinalizer(conn.close)
        return lambda sql: adbc_query(conn, sql)
    client = mgtest.flight_client(demo_server.uri, user=STEWARD)
    request.addfinalizer(client.close)
    return lambda sql: flight_sql_query(client, sql)


@pytest.fixture(scope="session", params=attackkit.CONFIGS, ids=attackkit.config_id)
def attack_server(request, start_server, tmp_path_factory, meshgate_bin, log_dir):
    """The attack suite's server: the demo mesh plus a JWT identity provider, with known
    keyed_hash secrets, in six configurations (filter pushdown x target partitions, every
    product accelerated, and a gateway over three distributed workers)."""
    cfg = attackkit.attack_mesh(tmp_path_factory.mktemp("attack-mesh"), accelerated=request.param[2])
    env = {**govmodel.MASK_ENV, **attackkit.JWT_ENV}
    name = f"attack-{attackkit.config_id(request.param)}"
    if request.param[3]:
        cluster = distkit.Cluster(meshgate_bin, cfg, log_dir, env=env, name=name,
                                  args=attackkit.serve_args(request.param)).start()
        yield cluster.gateway
        cluster.stop(check=True)
        return
    srv = start_server(cfg, env=env, name=name, args=attackkit.serve_args(request.param))
    yield srv
    srv.stop(check=True)


@pytest.fixture(scope="session")
def attack_pool(attack_server):
    """One authenticated client per demo user for the current attack server."""
    pool = mgtest.ClientPool(attack_server.uri)
    yield pool
    pool.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, attach the tail of every running meshgate's stderr to the report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for srv in list(mgtest._LIVE_SERVERS):
            tail = srv.stderr_text()[-4000:]
            report.sections.append((f"meshgate stderr: {srv.name} ({srv.stderr_path})", tail or "<empty>"))
