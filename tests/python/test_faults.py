"""Fault injection through the real server and real clients: the object store, the
files, the spill directory and the memory pool (clients misbehaving: test_faults_clients.py).

Every fault must end in a clear error with the right gRPC code, the server must go on
serving, and no client may ever receive fewer rows with an OK status: a result stream
that cannot complete ends with an error. Rows are counted as they stream and compared
with counts computed independently (DuckDB on the same files). Each fault is followed
by a query on the same server that must be answered in full.

- The object store (moto on loopback) behind `faultproxy.FaultProxy`, a TCP proxy
  of the suite's own: killed mid-stream, answering 500s, resetting connections,
  refusing them, slowed, and stalled. A store that is down or failing is UNAVAILABLE
  naming the product; a slow one still delivers every row.
- Files changed between listing and reading (`--listing-ttl-secs` large, so the
  listing and the footers read before the change are reused): truncated, corrupted,
  deleted, replaced. A damaged file fails naming the product, with a code that does
  not blame the query; a replaced or deleted one either fails or answers the files as
  they are now, in full.
- The spill directory unwritable or full (a 1 MiB tmpfs) during a sort that must
  spill; the memory pool exhausted by concurrent heavy queries (RESOURCE_EXHAUSTED
  for those that do not fit, every row for those that do).

Each test checks everything else first and the code last.

Covered elsewhere and not repeated: corrupt files and schema drift found at load and a
store unreachable from the start (test_errors.py).
"""

from __future__ import annotations

import logging
import os
import shutil
import struct
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest

from faultkit import (
    CALL_TIMEOUT,
    REGION,
    STREAM_ERRORS,
    Outcome,
    assert_code,
    assert_failed,
    assert_region_served,
    assert_whole,
    count_parquet,
    events_table,
    grpc_code,
    local_product,
    read_adbc,
    read_stream,
    write_events,
)
from faultproxy import FaultProxy
from mgtest import (
    adbc_connect,
    cmd_statement_query,
    flight_client,
    flight_sql_query,
    free_port,
    query_log_lines,
    s3_client,
    server_message,
    wait_for,
    with_open_governance,
    write_yaml,
)

# --------------------------------------------------------------------------------------
# the object store: moto behind the fault proxy
# --------------------------------------------------------------------------------------

BUCKET = "meshgate-faults-" + uuid.uuid4().hex[:8]
ACCESS_KEY = "AKIAFAULTS" + uuid.uuid4().hex[:8].upper()
SECRET = "faults-secret-" + uuid.uuid4().hex
S3_ENV = {"MESHGATE_TEST_KEY": ACCESS_KEY, "MESHGATE_TEST_SECRET": SECRET}
EVENTS_SQL = "SELECT id, payload, amount FROM store.events"
EVENTS = "store.events"
STORE_DOWN = {"UNAVAILABLE"}
SLOW_STORE_MS = 10  # per chunk of the store's answers: the stream takes seconds, so a fault lands mid-way


class Store:
    """moto on loopback behind a FaultProxy; meshgate's store endpoint is the proxy.
    kill() stops moto and resets its connections (as a dead process's would be);
    revive() starts another moto (its data is process-wide) and points the proxy at it."""

    def __init__(self):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's access log
        self.moto = None
        self._start_moto()
        self.proxy = FaultProxy(self.moto_port).start()

    def _start_moto(self) -> None:
        from moto.server import ThreadedMotoServer

        self.moto_port = free_port()
        self.moto = ThreadedMotoServer(ip_address="127.0.0.1", port=self.moto_port, verbose=False)
        self.moto.start()

    @property
    def moto_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    def kill(self) -> None:
        self.moto.stop()
        self.moto = None
        self.proxy.close_connections(reset=True)

    def revive(self) -> None:
        if self.moto is None:
            self._start_moto()
            self.proxy.upstream_port = self.moto_port
        self.proxy.pass_through()

    def close(self) -> None:
        self.proxy.stop()
        if self.moto is not None:
            self.moto.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    st = Store()
    folder = tmp_path_factory.mktemp("faults-s3-data")
    # 12 files of 30,000 rows in row groups of 5,000: about 18 MB of Parquet
    files = write_events(folder, files=12, rows=30_000, row_group=5_000)
    s3 = s3_client(st.moto_endpoint, ACCESS_KEY, SECRET)
    s3.create_bucket(Bucket=BUCKET)
    for f in files:
        s3.upload_file(str(f), BUCKET, f"events/{f.name}")
    st.files = files
    st.expected = count_parquet(files)
    st.total_bytes = sum(f.stat().st_size for f in files)
    yield st
    st.close()


@pytest.fixture(scope="module")
def store_server(start_server, store, tmp_path_factory):
    doc = with_open_governance({
        "catalog": "mesh",
        "stores": {
            f"s3://{BUCKET}": {
                "endpoint": store.proxy.endpoint,
                "region": "us-east-1",
                "allow_http": "true",
                "path_style": "true",
                "access_key_id": "${MESHGATE_TEST_KEY}",
                "secret_access_key": "${MESHGATE_TEST_SECRET}",
                # a failing store fails a query in seconds: two retries, and a request
                # not answered within 2 s is given up (object_store's own options)
                "max_retries": "2",
                "retry_timeout_secs": "10",
                "timeout": "2s",
            }
        },
        "domains": {
            "store": {
                "owner": "qa@example.com",
                "products": [{"name": "events", "location": f"s3://{BUCKET}/events/", "format": "parquet"}, REGION],
            },
        },
    })
    cfg = write_yaml(tmp_path_factory.mktemp("faults-s3-mesh") / "mesh.yaml", doc)
    srv = start_server(cfg, env=S3_ENV, name="faults-store", args=["--listing-ttl-secs", "3600"])
    yield srv
    srv.stop(check=True)


@pytest.fixture
def s3(store, store_server):
    """The store server with a healthy store, a client; the store healed afterwards."""
    store.revive()
    client = flight_client(store_server.uri)
    yield store, store_server, client
    client.close()
    store.revive()


class MidStream:
    """A fault injected once the first rows arrived, checking the stream is really under
    way: less than half of the product's bytes had come from the store by then."""

    def __init__(self, store: Store, fault):
        self.store, self.fault = store, fault
        self.before = store.proxy.bytes_down
        self.at_fault: int | None = None

    def __call__(self) -> None:
        self.at_fault = self.store.proxy.bytes_down - self.before
        self.fault()

    def assert_mid_stream(self) -> None:
        assert self.at_fault is not None, "the fault was never injected: no rows arrived"
        print(f"\nfault injected after {self.at_fault} of {self.store.total_bytes} bytes from the store")
        assert self.at_fault < self.store.total_bytes / 2, (
            f"{self.at_fault} of {self.store.total_bytes} bytes had come from the store when the fault "
            "was injected: not mid-stream")


def assert_store_recovers(client, store: Store) -> None:
    """With the store healthy again, the same product is answered in full."""
    store.revive()
    assert_whole(read_stream(client, EVENTS_SQL), store.expected, f"{EVENTS} after the store recovered")
    assert_region_served(client, "store")




def test_store_serves_every_row_through_the_proxy(s3):
    """The baseline the faults are measured against."""
    store, _, client = s3
    assert_whole(read_stream(client, EVENTS_SQL), store.expected, EVENTS)


@pytest.mark.parametrize("client_kind", ["flight", "adbc"])
def test_store_killed_mid_stream_ends_stream_with_error(s3, client_kind):
    store, server, client = s3
    store.proxy.delay(SLOW_STORE_MS)
    fault = MidStream(store, store.kill)
    if client_kind == "flight":
        outcome = read_stream(client, EVENTS_SQL, on_first=fault)
    else:
        conn = adbc_connect(server.uri)
        try:
            outcome = read_adbc(conn, EVENTS_SQL, on_first=fault)
        finally:
            conn.close()
    fault.assert_mid_stream()
    assert_failed(outcome, store.expected, (EVENTS,), "store killed mid-stream")
    assert_store_recovers(client, store)
    assert_code(outcome, STORE_DOWN, "store killed mid-stream")


def test_store_500s_from_the_start_fail_the_query_with_unavailable(s3):
    store, server, client = s3
    asked = store.proxy.answered_500
    store.proxy.http_500()
    outcome = read_stream(client, EVENTS_SQL)
    assert store.proxy.answered_500 > asked, "the store was never asked"
    assert_failed(outcome, store.expected, (EVENTS,), "store answering 500")
    conn = adbc_connect(server.uri)
    try:
        adbc_outcome = read_adbc(conn, EVENTS_SQL)
    finally:
        conn.close()
    assert_failed(adbc_outcome, store.expected, (EVENTS,), "store answering 500 (ADBC)")
    assert SECRET not in str(outcome.error) + str(adbc_outcome.error)
    assert_store_recovers(client, store)
    assert_code(outcome, STORE_DOWN, "store answering 500")
    assert_code(adbc_outcome, STORE_DOWN, "store answering 500 (ADBC)")


def test_store_500s_mid_stream_end_stream_with_unavailable(s3):
    store, _, client = s3
    store.proxy.delay(SLOW_STORE_MS)
    fault = MidStream(store, store.proxy.http_500)
    outcome = read_stream(client, EVENTS_SQL, on_first=fault)
    fault.assert_mid_stream()
    assert_failed(outcome, store.expected, (EVENTS,), "store answering 500 mid-stream")
    assert_store_recovers(client, store)
    assert_code(outcome, STORE_DOWN, "store answering 500 mid-stream")


def test_store_connection_reset_mid_stream_ends_stream_with_unavailable(s3):
    """Every connection is reset a kilobyte into the store's answer: bodies cut off."""
    store, _, client = s3
    store.proxy.delay(SLOW_STORE_MS)
    fault = MidStream(store, lambda: store.proxy.reset_after(1_000))
    outcome = read_stream(client, EVENTS_SQL, on_first=fault)
    fault.assert_mid_stream()
    assert store.proxy.resets > 0
    assert_failed(outcome, store.expected, (EVENTS,), "connections reset mid-stream")
    assert_store_recovers(client, store)
    assert_code(outcome, STORE_DOWN, "connections reset mid-stream")


def test_store_refusing_connections_fails_the_query_with_unavailable(s3):
    store, _, client = s3
    store.proxy.refuse()
    outcome = read_stream(client, EVENTS_SQL)
    assert_failed(outcome, store.expected, (EVENTS,), "store refusing connections")
    assert_store_recovers(client, store)
    assert_code(outcome, STORE_DOWN, "store refusing connections")


def test_store_slow_still_delivers_every_row_and_other_products_are_not_held_up(s3):
    """A slow store is not a failure: the stream takes longer and arrives whole, and a
    query on another product is answered at once meanwhile."""
    store, server, client = s3
    store.proxy.delay(SLOW_STORE_MS)
    result: list[Outcome] = []
    reader = threading.Thread(target=lambda: result.append(read_stream(client, EVENTS_SQL)))
    reader.start()
    other = flight_client(server.uri)
    try:
        latencies = []
        while reader.is_alive() and len(latencies) < 20:
            started = time.monotonic()
            assert flight_sql_query(other, "SELECT count(*) AS n FROM store.region").column("n").to_pylist() == [5]
            latencies.append(time.monotonic() - started)
    finally:
        other.close()
    reader.join(CALL_TIMEOUT)
    assert result, "the slow stream never ended"
    assert_whole(result[0], store.expected, "a slow store")
    assert result[0].seconds > 1.0, f"the store was not slow: {result[0].seconds:.2f} s"
    assert latencies and max(latencies) < 2.0, f"queries on a local product waited for the slow store: {latencies}"


def test_store_stalled_mid_stream_ends_stream_with_unavailable(s3):
    """A store that stops answering (connections open, nothing sent) is given up after
    the store's request timeout: an error, not a stream that hangs or ends early."""
    store, _, client = s3
    store.proxy.delay(SLOW_STORE_MS)
    fault = MidStream(store, store.proxy.stall)
    outcome = read_stream(client, EVENTS_SQL, on_first=fault)
    fault.assert_mid_stream()
    assert_failed(outcome, store.expected, (EVENTS,), "store stalled mid-stream")
    assert outcome.seconds < 30, f"the stalled store took {outcome.seconds:.0f} s to be given up"
    assert_store_recovers(client, store)
    assert_code(outcome, STORE_DOWN, "store stalled mid-stream")


class Revealed(AssertionError):
    """An error message carries the server's internal detail."""


def test_store_errors_do_not_reveal_the_store_endpoint(s3):
    """The store's address and bucket are the server's internal detail: an error names
    the product and what went wrong, not the URL meshgate requested."""
    store, _, client = s3
    store.proxy.http_500()
    outcome = read_stream(client, EVENTS_SQL)
    assert_failed(outcome, store.expected, (EVENTS,), "store answering 500")
    message = server_message(outcome.error)
    for detail in (store.proxy.endpoint, f"127.0.0.1:{store.proxy.port}", BUCKET):
        if detail in message:
            raise Revealed(f"the error reveals {detail!r}: {message}")


# --------------------------------------------------------------------------------------
# files changed between listing and reading
# --------------------------------------------------------------------------------------

FILE_FAULTS = ("truncated", "corrupted", "deleted", "replaced")
# A damaged file: the product's data is lost or unreadable. DATA_LOSS says so; a code
# that blames the query (INVALID_ARGUMENT) does not.
DAMAGED = {"DATA_LOSS", "FAILED_PRECONDITION", "INTERNAL"}
# A file gone or changed since it was listed: the listing is stale, a later try may succeed.
CHANGED = {"UNAVAILABLE", "ABORTED", "FAILED_PRECONDITION", "DATA_LOSS"}


@pytest.fixture(scope="module")
def files_server(start_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults-files")
    folders = {}
    for i, name in enumerate(FILE_FAULTS):
        folders[name] = root / name
        write_events(folders[name], files=4, rows=20_000, row_group=4_000, seed=100 * (i + 1))
    doc = with_open_governance({
        "catalog": "mesh",
        "domains": {"files": {"owner": "qa@example.com",
                              "products": [local_product(n, f) for n, f in folders.items()] + [REGION]}},
    })
    cfg = write_yaml(root / "mesh.yaml", doc)
    # listings live for an hour: the files change after the server listed them
    srv = start_server(cfg, name="faults-files", args=["--listing-ttl-secs", "3600"])
    srv.folders = folders
    yield srv
    srv.stop(check=True)


@dataclass
class ChangedFile:
    client: flight.FlightClient
    product: str
    files: list[Path]
    target: Path  # the file the test changes
    before: int  # rows of the product before the change

    def read(self) -> Outcome:
        return read_stream(self.client, f"SELECT * FROM {self.product}")


@pytest.fixture
def changed_file(files_server, request):
    """A product read once in full (its listing and footers are now the server's); the
    file the test changes is restored afterwards, and the product is whole again."""
    name = request.param
    files = sorted(files_server.folders[name].glob("*.parquet"))
    target = files[1]
    original = target.read_bytes()
    client = flight_client(files_server.uri)
    case = ChangedFile(client, f"files.{name}", files, target, count_parquet(files))
    assert_whole(case.read(), case.before, f"{case.product} before the change")
    yield case
    target.write_bytes(original)
    assert_whole(case.read(), case.before, f"{case.product} restored")
    assert_region_served(client, "files")
    client.close()


@pytest.mark.parametrize("changed_file", ["truncated"], indirect=True)
def test_file_truncated_between_listing_and_read(changed_file):
    case = changed_file
    with open(case.target, "r+b") as f:
        f.truncate(case.target.stat().st_size // 2)
    outcome = case.read()
    assert_failed(outcome, case.before, (case.product,), "a file truncated after listing")
    assert_code(outcome, DAMAGED | CHANGED, "a file truncated after listing")


@pytest.mark.parametrize("changed_file", ["corrupted"], indirect=True)
def test_file_corrupted_between_listing_and_read(changed_file):
    """Same size, garbage in place of its pages (the footer intact)."""
    case = changed_file
    content = case.target.read_bytes()
    footer = struct.unpack("<I", content[-8:-4])[0] + 8
    with open(case.target, "r+b") as f:
        f.seek(4)
        f.write(np.random.default_rng(7).bytes(len(content) - footer - 4))
    outcome = case.read()
    assert_failed(outcome, case.before, (case.product,), "a file corrupted after listing")
    assert_code(outcome, DAMAGED, "a file corrupted after listing")


@pytest.mark.parametrize("changed_file", ["deleted"], indirect=True)
def test_file_deleted_between_listing_and_read(changed_file):
    case = changed_file
    case.target.unlink()
    outcome = case.read()
    if outcome.error is None:  # answering the files there are now is right too
        assert_whole(outcome, count_parquet([f for f in case.files if f != case.target]), "after a file was deleted")
        return
    assert_failed(outcome, case.before, (case.product,), "a file deleted after listing")
    assert_code(outcome, CHANGED, "a file deleted after listing")


@pytest.mark.parametrize("changed_file", ["replaced"], indirect=True)
def test_file_replaced_between_listing_and_read(changed_file):
    """A writer publishes a new version of a file (atomic rename): more rows, new values."""
    case = changed_file
    staged = case.target.with_suffix(".staged")
    pq.write_table(events_table(999, 27_000, 10_000_000), staged, row_group_size=4_000)
    os.replace(staged, case.target)
    now = count_parquet(case.files)
    assert now != case.before
    outcome = case.read()
    if outcome.error is None:  # the new version, in full
        assert_whole(outcome, now, "after a file was replaced")
        return
    assert_failed(outcome, now, (case.product,), "a file replaced after listing")
    assert_code(outcome, CHANGED | DAMAGED, "a file replaced after listing")


# --------------------------------------------------------------------------------------
# the spill directory
# --------------------------------------------------------------------------------------

SORT_SQL = "SELECT id, payload FROM spill.big ORDER BY payload"
SPILL_MEMORY = "32MiB"  # the sort needs more: it spills about 12 MB, and fails when it cannot
# A sort that cannot spill: the server's resources ran out (RESOURCE_EXHAUSTED), or
# its own setup failed (INTERNAL). The product is fine: UNAVAILABLE naming it misleads.
CANNOT_SPILL = {"RESOURCE_EXHAUSTED", "INTERNAL"}


@pytest.fixture(scope="module")
def big_product(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults-big") / "big"
    files = write_events(folder, files=4, rows=75_000, row_group=25_000, seed=500)
    return folder, count_parquet(files)


def spill_mesh(root: Path, big: Path) -> Path:
    doc = with_open_governance({
        "catalog": "mesh",
        "domains": {"spill": {"owner": "qa@example.com", "products": [local_product("big", big), REGION]}},
    })
    return write_yaml(root / "mesh.yaml", doc)


def read_sorted(client) -> tuple[Outcome, bool]:
    """The spilling sort; whether what arrived is in order."""
    payloads: list[str] = []
    options = flight.FlightCallOptions(timeout=CALL_TIMEOUT)
    started = time.monotonic()
    try:
        info = client.get_flight_info(flight.FlightDescriptor.for_command(cmd_statement_query(SORT_SQL)), options)
        reader = client.do_get(info.endpoints[0].ticket, options)
        for chunk in reader:
            payloads.extend(chunk.data.column("payload").to_pylist())
    except STREAM_ERRORS as exc:
        return Outcome(len(payloads), exc, grpc_code(exc), time.monotonic() - started), True
    ordered = all(a <= b for a, b in zip(payloads, payloads[1:]))
    return Outcome(len(payloads), None, "OK", time.monotonic() - started), ordered


def assert_sort_spills_and_completes(client, expected: int, what: str) -> None:
    outcome, ordered = read_sorted(client)
    assert_whole(outcome, expected, what)
    assert ordered, f"{what}: the spilled sort arrived out of order"


def test_spill_dir_unwritable_during_spilling_sort(start_server, big_product, tmp_path):
    big, expected = big_product
    spill = tmp_path / "spill"
    spill.mkdir()
    server = start_server(spill_mesh(tmp_path, big), name="faults-spill-unwritable",
                          args=["--memory-limit", SPILL_MEMORY, "--spill-dir", spill])
    client = flight_client(server.uri)
    try:
        assert_sort_spills_and_completes(client, expected, "the spilling sort")
        # the server's working folder inside the spill directory goes, and the directory
        # is made read-only (root ignores the mode; the missing folder fails it all the same)
        made = [p for p in spill.iterdir() if p.is_dir()]
        assert made, f"the server made no working folder in its spill directory {spill}"
        for p in made:
            shutil.rmtree(p)
        spill.chmod(0o500)
        outcome, _ = read_sorted(client)
        assert_failed(outcome, expected, ("spill",), "a sort with an unwritable spill directory")
        assert "spill.big" not in server_message(outcome.error), (
            f"the unwritable spill directory is blamed on the product: {outcome.describe()}")
        assert_region_served(client, "spill")
        spill.chmod(0o700)
        for p in made:
            p.mkdir()
        assert_sort_spills_and_completes(client, expected, "the spilling sort once the directory is writable again")
        assert_code(outcome, CANNOT_SPILL, "a sort with an unwritable spill directory")
    finally:
        spill.chmod(0o700)
        client.close()
        server.stop(check=True)


@pytest.fixture
def tiny_disk(tmp_path):
    """A 1 MiB tmpfs (needs the right to mount; the suite runs as root)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs for the full spill disk: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_spill_dir_full_during_spilling_sort(start_server, big_product, tiny_disk, tmp_path):
    """The spill directory on a 1 MiB disk: the sort, which spills about 12 MB
    (test_spill_dir_unwritable_during_spilling_sort sees it complete under the same
    limit), fails; "the entire file system is out of space" is RESOURCE_EXHAUSTED in
    gRPC's own words."""
    big, expected = big_product
    server = start_server(spill_mesh(tmp_path, big), name="faults-spill-full",
                          args=["--memory-limit", SPILL_MEMORY, "--spill-dir", tiny_disk])
    client = flight_client(server.uri)
    try:
        outcome, _ = read_sorted(client)
        assert_failed(outcome, expected, (), "a sort whose spill disk is full")
        assert "space" in server_message(outcome.error), f"the error does not say the disk is full: {outcome.describe()}"
        assert_region_served(client, "spill")
        # the failed sort's spill files are gone with it
        leftover = sum(f.stat().st_size for f in tiny_disk.rglob("*") if f.is_file())
        assert leftover == 0, f"{leftover} bytes of spill files left behind on the full disk"
        assert_whole(read_stream(client, "SELECT id FROM spill.big ORDER BY id LIMIT 10"), 10, "a sort that fits in memory")
        assert_code(outcome, {"RESOURCE_EXHAUSTED"}, "a sort whose spill disk is full")
    finally:
        client.close()
        server.stop(check=True)


# --------------------------------------------------------------------------------------
# the memory pool
# --------------------------------------------------------------------------------------

# A hash join whose build side (every payload) cannot spill.
HEAVY_JOIN = "SELECT a.id, a.payload, b.amount FROM spill.big a JOIN spill.big b ON a.payload = b.payload"
POOL_LIMIT = "96MiB"
HEAVY_QUERIES = 8


def test_memory_pool_exhausted_by_concurrent_heavy_queries(start_server, big_product, tmp_path):
    big, expected = big_product
    server = start_server(spill_mesh(tmp_path, big), name="faults-memory", args=["--memory-limit", POOL_LIMIT])
    clients = [flight_client(server.uri) for _ in range(HEAVY_QUERIES)]
    try:
        # alone, one fits
        assert_whole(read_stream(clients[0], HEAVY_JOIN), expected, "one heavy join alone")
        outcomes: list[Outcome | None] = [None] * HEAVY_QUERIES
        start = threading.Barrier(HEAVY_QUERIES)

        def run(i):
            start.wait()
            outcomes[i] = read_stream(clients[i], HEAVY_JOIN, pace=0.002)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(HEAVY_QUERIES)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(CALL_TIMEOUT * 2)
        assert all(o is not None for o in outcomes), "a heavy query never ended"
        summary = [o.describe()[:160] for o in outcomes]
        print(f"\n{HEAVY_QUERIES} heavy joins under {POOL_LIMIT}: " + "; ".join(o.code for o in outcomes))
        for o in outcomes:
            if o.error is not None:
                assert_failed(o, expected, ("memory limit",), "a heavy join past the pool")
                assert_code(o, {"RESOURCE_EXHAUSTED"}, "a heavy join past the pool")
            else:
                assert_whole(o, expected, "a heavy join that fit")
        assert any(o.error is not None for o in outcomes), f"the pool was never exhausted: {summary}"
        # the pool is empty again, and the server serves
        probe = "SELECT count(*) AS n FROM spill.region"
        assert flight_sql_query(clients[0], probe).column("n").to_pylist() == [5]
        logged = wait_for(lambda: next(iter(query_log_lines(server, probe)), None), "the probe's log line")
        assert logged == ("done", 0, 0), f"after the heavy queries the pool still holds memory: {logged}"
    finally:
        for c in clients:
            c.close()
        server.stop(check=True)


