"""Distributed execution (docs/distributed.md): a gateway and three `meshgate worker`
processes on loopback, started here.

- every TPC-H query returns the rows single-node meshgate returns, and ran spread over
  the workers (the gateway's query log line says on how many workers, in how many stages);
- governed reads (row filters, masks, keyed hashes) are the same distributed as on one node;
  the attack suites run against a distributed gateway too (attackkit's `-distributed` config);
- EXPLAIN shows a steward the stages, and a restricted principal no more than on one node;
- a worker killed mid-query fails that query with UNAVAILABLE naming the worker, the
  gateway keeps serving, and the next queries run on the workers left;
- the query timeout stops a distributed query, and its stages stop on every worker;
- bad set-up: a worker or a gateway with --workers but no secret, a bad worker address.

A forged stage request sent straight to a worker is refused in crates/meshgate/tests/distributed.rs.
"""

from __future__ import annotations

import threading
import time

import pytest

import distkit
import govmodel
import mgtest
from mgtest import REPO_ROOT, assert_same_rows, flight_grpc_code, server_message

TPCH = sorted((REPO_ROOT / "benches" / "queries").glob("q*.sql"))
STEWARD = "stella"
# Every lineitem row against every other one with the same key remainder: seconds of work on each worker.
HEAVY = ("SELECT count(*) FROM sales.lineitem a JOIN sales.lineitem b "
         "ON a.l_orderkey % 5 = b.l_orderkey % 5 WHERE a.l_quantity + b.l_quantity > 1")


def tpch_sql(path) -> str:
    return path.read_text().strip().rstrip(";")


@pytest.fixture(scope="module")
def cluster(meshgate_bin, log_dir):
    c = distkit.Cluster(meshgate_bin, mgtest.DEMO_CONFIG, log_dir, env=govmodel.MASK_ENV, name="dist").start()
    yield c
    c.stop(check=True)


@pytest.fixture(scope="module")
def single(start_server):
    """One node, with the same mask keys: keyed hashes must agree."""
    srv = start_server(mgtest.DEMO_CONFIG, env=govmodel.MASK_ENV, name="dist-single")
    yield srv
    srv.stop(check=True)


@pytest.fixture(scope="module")
def pools(cluster, single):
    distributed, local = mgtest.ClientPool(cluster.uri), mgtest.ClientPool(single.uri)
    yield distributed, local
    distributed.close()
    local.close()


def test_tpch_queries_are_spread_over_the_workers_and_return_the_single_node_rows(cluster, pools):
    distributed, local = pools
    spread = {}
    for path in TPCH:
        marker = f"/* dist-{path.stem} */"
        sql = f"{marker} {tpch_sql(path)}"
        expected = local.query(STEWARD, sql)
        actual = distributed.query(STEWARD, sql)
        assert_same_rows(actual, expected, rel_tol=1e-9)
        spread[path.stem] = cluster.spread_of(marker)
    assert len(spread) == 22
    single_node = [q for q, (_, stages) in spread.items() if stages < 2]
    assert not single_node, f"these TPC-H queries were not distributed: {single_node} ({spread})"
    assert max(workers for workers, _ in spread.values()) == 3, spread


GOVERNED = [
    # customers' masks (keyed_hash among them) and row filter, joined to orders (ana: EU, BUILDING)
    ("ana", "SELECT o.o_orderkey, c.c_name, c.c_email, c.c_phone, c.c_acctbal, c.c_mktsegment "
            "FROM sales.orders o JOIN customers.customer c ON o.o_custkey = c.c_custkey"),
    # orders' row filter and coarse figures (carl: recent orders only)
    ("carl", "SELECT o_orderkey, o_custkey, o_totalprice, o_orderdate FROM sales.orders"),
    ("sam", "SELECT c.c_email, c.c_phone, count(*) AS n FROM sales.orders o "
            "JOIN customers.customer c ON o.o_custkey = c.c_custkey GROUP BY 1, 2"),
    # joins across domains, aggregated over masked and filtered rows
    ("ana", "SELECT c.c_mktsegment, n.n_name, count(*) AS n, sum(o.o_totalprice) AS total "
            "FROM sales.orders o JOIN customers.customer c ON o.o_custkey = c.c_custkey "
            "JOIN customers.nation n ON c.c_nationkey = n.n_nationkey GROUP BY 1, 2"),
    ("carl", "SELECT o_orderpriority, count(*) AS n FROM sales.orders GROUP BY 1"),
]


@pytest.mark.parametrize("user,sql", GOVERNED, ids=[f"{u}-{i}" for i, (u, _) in enumerate(GOVERNED)])
def test_governed_reads_are_the_same_distributed(cluster, pools, user, sql):
    distributed, local = pools
    marker = f"/* governed-{user}-{abs(hash(sql))} */"
    expected = local.query(user, f"{marker} {sql}")
    actual = distributed.query(user, f"{marker} {sql}")
    assert_same_rows(actual, expected)
    _, stages = cluster.spread_of(marker)
    assert stages >= 2, f"{sql} ran on the gateway alone"


def test_a_forbidden_product_is_absent_distributed_as_on_one_node(pools):
    distributed, local = pools
    for pool in (distributed, local):
        error = pool.error("carl", "SELECT * FROM customers.customer")
        assert flight_grpc_code(error) == "NOT_FOUND", error
        assert "customers.customer" in server_message(error)


def test_explain_shows_stewards_the_stages_and_others_no_more_than_on_one_node(pools):
    distributed, _ = pools
    sql = "EXPLAIN SELECT o_orderpriority, count(*) FROM sales.orders GROUP BY 1"
    steward_plan = "\n".join(str(v) for v in distributed.query(STEWARD, sql).column("plan").to_pylist())
    assert "DistributedExec" in steward_plan and "NetworkShuffleExec" in steward_plan, steward_plan
    analyst_plan = "\n".join(str(v) for v in distributed.query("ana", sql).column("plan").to_pylist())
    assert "GovernedScan: product=sales.orders" in analyst_plan, analyst_plan
    for raw in ("ProductScanExec", "FilterExec", "DataSourceExec", ".parquet"):
        assert raw not in analyst_plan, (raw, analyst_plan)


def test_a_worker_killed_mid_query_fails_it_with_unavailable_and_the_next_query_runs(meshgate_bin, log_dir):
    c = distkit.Cluster(meshgate_bin, mgtest.DEMO_CONFIG, log_dir, env=govmodel.MASK_ENV, name="dist-kill").start()
    try:
        client = mgtest.flight_client(c.uri, user=STEWARD)
        outcome: dict = {}

        def run():
            try:
                outcome["table"] = mgtest.flight_sql_query(client, HEAVY)
            except Exception as error:  # noqa: BLE001 - inspected below
                outcome["error"] = error

        query = threading.Thread(target=run)
        query.start()
        time.sleep(1.5)
        victim = c.workers[1]
        assert query.is_alive(), "the heavy query finished before a worker could be killed"
        victim.proc.kill()
        victim.proc.wait(timeout=10)
        query.join(timeout=120)
        assert not query.is_alive()
        error = outcome.get("error")
        assert error is not None, "a query whose worker died reported success"
        assert flight_grpc_code(error) == "UNAVAILABLE", mgtest.describe_exc(error)
        assert victim.uri.removeprefix("http://") in server_message(error), server_message(error)
        # The gateway keeps serving, on the workers left.
        for _ in range(3):
            table = mgtest.flight_sql_query(client, "SELECT count(*) AS n FROM sales.lineitem")
            assert table.column("n")[0].as_py() > 0
        marker = "/* after-kill */"
        mgtest.flight_sql_query(client, f"{marker} SELECT l_returnflag, count(*) FROM sales.lineitem GROUP BY 1")
        workers, stages = c.spread_of(marker)
        assert stages >= 2 and workers <= 2, (workers, stages)
        client.close()
    finally:
        c.stop(check=False)


def test_the_query_timeout_stops_a_distributed_query_and_its_stages_on_every_worker(meshgate_bin, log_dir):
    c = distkit.Cluster(meshgate_bin, mgtest.DEMO_CONFIG, log_dir, env=govmodel.MASK_ENV, name="dist-timeout",
                        args=["--query-timeout-secs", "2"]).start()
    try:
        client = mgtest.flight_client(c.uri, user=STEWARD)
        started = time.monotonic()
        with pytest.raises(Exception) as caught:
            mgtest.flight_sql_query(client, HEAVY)
        assert flight_grpc_code(caught.value) == "DEADLINE_EXCEEDED", mgtest.describe_exc(caught.value)
        assert time.monotonic() - started < 15
        # The workers stop too: over the next two seconds they use next to no CPU.
        time.sleep(0.5)
        before = [mgtest.cpu_seconds(w) for w in c.workers]
        time.sleep(2.0)
        busy = [mgtest.cpu_seconds(w) - b for w, b in zip(c.workers, before)]
        assert max(busy) < 0.3, f"workers kept working after the query ended: {busy} CPU s"
        table = mgtest.flight_sql_query(client, "SELECT count(*) AS n FROM sales.orders")
        assert table.column("n")[0].as_py() > 0
        client.close()
    finally:
        c.stop(check=True)


def test_a_gateway_with_an_unreachable_worker_serves_on_the_others(meshgate_bin, log_dir, tmp_path):
    worker = distkit.Worker(meshgate_bin, mgtest.DEMO_CONFIG, log_dir=log_dir, env=distkit.SECRET_ENV,
                            name="dist-one").start()
    dead = f"127.0.0.1:{mgtest.free_port()}"
    gateway = mgtest.Server(meshgate_bin, mgtest.DEMO_CONFIG, log_dir=log_dir, env=distkit.SECRET_ENV, name="dist-half",
                            args=[*distkit.DISTRIBUTE_ARGS, "--workers", f"{worker.uri},{dead}"]).start()
    try:
        client = mgtest.flight_client(gateway.uri, user=STEWARD)
        table = mgtest.flight_sql_query(client, "SELECT count(*) AS n FROM sales.orders")
        assert table.column("n")[0].as_py() > 0
        client.close()
        assert f"http://{dead}/" in gateway.stderr_text() and "unreachable" in gateway.stderr_text()
        check = mgtest.run_meshgate(meshgate_bin, "check", "--config", str(mgtest.DEMO_CONFIG),
                                    "--workers", f"{worker.uri},{dead}")
        assert check.returncode == 1, check.stdout
        assert f"ok    worker {worker.uri}/" in check.stdout, check.stdout
        assert f"FAIL  worker http://{dead}/: unreachable" in check.stdout, check.stdout
    finally:
        gateway.stop(check=True)
        worker.stop(check=True)


def test_distributed_set_up_without_a_secret_or_with_a_bad_address_is_refused(meshgate_bin):
    no_secret = {"MESHGATE_TICKET_SECRET": ""}
    worker = mgtest.run_meshgate(meshgate_bin, "worker", "--bind", "127.0.0.1:0", env=no_secret, timeout=60)
    assert worker.returncode == 2 and "MESHGATE_TICKET_SECRET" in worker.stderr, worker.stderr
    gateway = mgtest.run_meshgate(meshgate_bin, "serve", "--bind", "127.0.0.1:0", "--workers", "127.0.0.1:1",
                                  env=no_secret, timeout=60)
    assert gateway.returncode == 2 and "MESHGATE_TICKET_SECRET" in gateway.stderr, gateway.stderr
    bad = mgtest.run_meshgate(meshgate_bin, "serve", "--bind", "127.0.0.1:0", "--workers", "https://127.0.0.1:1",
                              env=distkit.SECRET_ENV, timeout=60)
    assert bad.returncode == 2 and "https://127.0.0.1:1" in bad.stderr and "http://" in bad.stderr, bad.stderr
